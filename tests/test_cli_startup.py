"""How the ``vidstyle`` command starts and ends: what it imports before the work, and its exit."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from vidstyle.cli.main import COMMANDS, build_parser, main


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_the_full_parser_and_every_help_text_need_no_torch() -> None:
    # `vidstyle --help`, `vidstyle train --help` and a usage error answer in a fraction of a second:
    # importing torch alone takes 1-2 s on a small machine
    loaded = _modules_after("from vidstyle.cli.main import build_parser\np = build_parser()\n"
                            "for c in p._subparsers._group_actions[0].choices.values(): c.format_help()")
    assert "torch" not in loaded
    assert {f"vidstyle.cli.{c}" for c in COMMANDS} <= loaded


def test_a_command_builds_only_its_own_parser() -> None:
    loaded = _modules_after("from vidstyle.cli.main import build_parser\nbuild_parser(only='image')")
    assert "vidstyle.cli.image" in loaded
    assert not {"vidstyle.cli.train", "vidstyle.cli.keyframes", "vidstyle.cli.live"} & loaded
    sub = build_parser(only="models")._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(sub) == ["models"]


def test_an_existing_output_is_refused_before_torch_is_imported(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    run = subprocess.run([sys.executable, "-c", "import sys\nfrom vidstyle.cli.main import main\n"
                          "code = main(['image', 'photo.png', '--style', 'p.jpg', '--method', 'adain', '-o', sys.argv[1]])\n"
                          "print(code, 'torch' in sys.modules)", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["1", "False"]
    assert "exists" in run.stderr and "--overwrite" in run.stderr
    assert out.read_bytes() == b"keep me"


def test_only_the_process_own_run_skips_the_final_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    try:
        assert main(["models"]) == 0  # called by an application or a test: the collector is left alone
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(sys, "argv", ["vidstyle", "models"])
        monkeypatch.setenv("GLIBC_TUNABLES", "")  # no re-exec of the test process
        monkeypatch.setattr("vidstyle.cli.main.reexec_with_malloc_tunable", lambda: None)
        assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
