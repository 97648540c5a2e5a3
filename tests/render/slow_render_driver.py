"""Test-only driver: ``python slow_render_driver.py DELAY vidstyle-args…`` runs the ``vidstyle``
command line with every finished frame followed by DELAY seconds of sleep, so that a test can kill
the render mid-way (test_render_kill.py). The delay is installed by monkeypatching the chunk
function the in-process executor calls; nothing in vidstyle reads a test setting."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_helpers import slow_frames  # noqa: E402


def main(argv: list[str]) -> int:
    import vidstyle.render.executor as executor
    from vidstyle.cli.main import main as vidstyle_main

    slow = slow_frames(delay=float(argv[0]))
    executor.default_chunk_function = lambda: slow  # type: ignore[assignment]
    return vidstyle_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
