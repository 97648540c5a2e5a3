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


def build_parser(*, only: str | None = None) -> argparse.ArgumentParser:
    """The ``vidstyle`` parser; ``only``: just that sub-command's (what a run needs: the others'
    modules are not imported, so a command starts as fast as its own imports allow)."""
    from vidstyle import __version__

    parser = _Parser(
        prog="vidstyle",
        description="Flicker-free neural style transfer for video files, cameras and film shots.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vidstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS if only is None else [only]:
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
    typed = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=typed[0] if typed and typed[0] in COMMANDS else None)
    args = parser.parse_args(typed)
    args.argv = typed  # what the user typed (resume hints repeat it)
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
    finally:
        if argv is None:
            _skip_final_collection()


def _skip_final_collection() -> None:
    """The command is done and this process is about to exit: leave its last garbage collection to the
    OS. With torch loaded, the interpreter's final collection of its ~2×10⁵ objects took 0.3 s, a sixth
    of a `vidstyle image` preview. Only the process's own run does this (``main()`` without ``argv``):
    ``gc.freeze()`` moves every object out of the collector's sight; files are still closed, streams
    flushed, threads joined and ``atexit`` handlers run as at any exit, because those go by reference
    counts and finalisation, not by the cycle collector."""
    import gc

    gc.freeze()


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
