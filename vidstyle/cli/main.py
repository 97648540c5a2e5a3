"""Entry point of the ``vidstyle`` command.

Each sub-command lives in its own module of this package exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Heavy imports happen inside ``run`` so ``vidstyle --help`` is instant.
Exit codes: 0 success, 1 error (one line on stderr, no traceback), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vidstyle.runtime import reexec_with_malloc_tunable

COMMANDS = ["stylize", "image", "keyframes", "live", "cameras", "render", "train", "eval", "models"]

EPILOG = """examples:
  vidstyle stylize samples/clip.mp4 -o clip_styled.mp4
  vidstyle stylize in.mov -o out.mov --model wave_student --codec prores
  vidstyle image photo.jpg --style samples/styles/swirls.jpg -o photo_styled.png
  vidstyle live --camera 0 --model wave_student
  vidstyle render shot.toml --resume
  vidstyle train --style style.jpg --content photos/ --vgg-weights vgg19.safetensors -o mystyle
  vidstyle models
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from vidstyle import __version__

    parser = _Parser(
        prog="vidstyle",
        description="Flicker-free neural style transfer for video files, cameras and film shots.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vidstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vidstyle.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vidstyle.cli.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        reexec_with_malloc_tunable()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what the user typed (resume hints repeat it)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from vidstyle.errors import VidstyleError

    _sigterm_like_ctrl_c()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("vidstyle: interrupted\n")
        return 130
    except VidstyleError as exc:
        from vidstyle.cli.common import error_line

        sys.stderr.write(f"vidstyle: error: {error_line(exc)}\n")
        if os.environ.get("VIDSTYLE_DEBUG"):
            raise
        return 1
    except BrokenPipeError:
        return 1


def _sigterm_like_ctrl_c() -> None:
    """A SIGTERM (``kill``, a scheduler, a container stopping) stops every command the way Ctrl-C
    does: partial outputs kept and playable, training checkpoints named, exit 130. ``vidstyle live``
    installs its own handler (the first signal finalises the recording)."""
    import signal

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (main() called by an embedding application)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
