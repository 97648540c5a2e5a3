"""What the sub-commands share: turning a library error into one line that names the flag."""

from __future__ import annotations

import argparse
import re
from typing import Any

__all__ = ["add_command", "declared_flags", "error_line", "parameter_to_flag"]


def declared_flags() -> dict[str, str]:
    """``{parameter: flag}`` of every option group (a field may declare its own flag, e.g.
    ``frame_size`` → ``--size``)."""
    from vidstyle.keyframes.options import KeyframeOptions
    from vidstyle.live.options import LiveOptions
    from vidstyle.options import GROUPS, flag_of, specs
    from vidstyle.render.job import ShotOptions

    return {name: flag_of(name, s) for cls in (*GROUPS, ShotOptions, LiveOptions, KeyframeOptions)
            for name, (s, _) in specs(cls).items()}


def parameter_to_flag(message: str, parameter: str) -> str:
    """Name ``parameter`` as its flag: at the start of the message (``"stabilize must be..."``),
    and anywhere as `` `stabilize` `` or ``'stabilize'``."""
    from vidstyle.options import flag_of

    flag = declared_flags().get(parameter) or flag_of(parameter)
    message = re.sub(rf"[`']{re.escape(parameter)}[`']", flag, message)
    return re.sub(rf"^{re.escape(parameter)}(?![\w-])", flag, message)


def error_line(exc: BaseException) -> str:
    """The message of a library error as the command line shows it: parameters named as flags."""
    message = str(exc)
    parameter = getattr(exc, "parameter", None)
    for name in ([parameter] if parameter else []) + list(getattr(exc, "also", ())):
        message = parameter_to_flag(message, name)
    return message


def add_command(subparsers: Any, name: str, *, help: str, description: str, epilog: str | None = None,  # noqa: A002
                run: Any = None) -> argparse.ArgumentParser:
    """A sub-command's parser with the house layout (examples kept as written); ``run`` is what
    ``vidstyle NAME`` calls with the parsed arguments."""
    parser = subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    if run is not None:
        parser.set_defaults(func=run)
    return parser
