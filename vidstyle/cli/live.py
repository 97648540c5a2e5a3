"""``vidstyle live``: stylize a camera or a network stream in real time, with preview and recording.

The options come from the groups live mode shares with the rest of vidstyle
(:class:`~vidstyle.options.StylizeOptions`, :class:`~vidstyle.options.TemporalOptions`) and its own
(:class:`~vidstyle.live.LiveOptions`); the work is :func:`vidstyle.live.run_live`. This module only
parses, handles signals, prints and picks the exit status.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle live                                   # camera 0, default model, preview window
  vidstyle live --camera /dev/video2 --model wave_student --record take1.mp4
  vidstyle live --camera rtsp://192.168.1.20:8554/cam --no-preview --record cam.mkv --duration 600
  vidstyle live --camera lavfi:testsrc2=size=640x360:rate=30 --no-preview --duration 10
  vidstyle live --camera avfoundation:0           # macOS;  Windows: --camera "dshow:video=Integrated Camera"
  vidstyle live --camera 0 --camera-option input_format=mjpeg --size 1280x720

keys in the preview: n/p (or arrows) next/previous model, t stabilisation on/off, o overlay on/off,
s snapshot (PNG), q or Esc quit. Without a display (no DISPLAY, or --no-preview) it runs headless.
Ctrl-C (or SIGTERM), q, --duration and the end of a stream finalise the recording under its name;
frames keep their capture times, so a recording with dropped frames still plays at true speed.
Exit status: 0 when stopped or when the stream ended, 1 when the camera was lost or on errors.
"""

#: StylizeOptions fields that do not apply to live mode (feed-forward, one frame at a time; the
#: models are LiveOptions.models, a repeatable --model)
EXCLUDED = ("backend", "model", "batch_size")
THREADS_HELP = "CPU threads for the network (default: one fewer than the cores, so capture and flow keep one)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.live.options import LIVE_DEFAULTS, LiveOptions
    from vidstyle.options import StylizeOptions, TemporalOptions, add_arguments

    p = add_command(subparsers, "live", help="stylize a camera or network stream in real time", description="Stylize a camera, network stream or test source in real time: preview window with an " "fps/latency overlay, optional recording. A slow model drops frames instead of falling behind.", epilog=EPILOG)
    add_arguments(p, LiveOptions)
    add_arguments(p, StylizeOptions, exclude=EXCLUDED, defaults=LIVE_DEFAULTS)
    add_arguments(p, TemporalOptions, defaults=LIVE_DEFAULTS)
    for action in p._actions:  # live mode's own default thread count
        if action.dest == "threads":
            action.help = THREADS_HELP
    p.add_argument("-y", "--overwrite", action="store_true", help="replace the recording if it exists")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no status lines (errors and the end message still shown)")
    p.set_defaults(func=run)
    return p


def error_line(exc: BaseException) -> str:
    """A library error's message with its parameters named as this command's flags
    (``models`` → ``--model``, ``frame_size`` → ``--size``)."""
    from vidstyle.cli.common import error_line as common_error_line

    return common_error_line(exc)


def _install_stop_handlers(stop: threading.Event, say: Any) -> dict[int, Any]:
    """SIGINT/SIGTERM: the first stops gracefully (recording finalised); a second one aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        say("stopping (Ctrl-C again to abort at once)")

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)
    return old


def run(args: argparse.Namespace) -> int:
    from vidstyle.errors import InvalidOptionError, VidstyleError

    try:
        return _run(args)
    except VidstyleError as exc:
        if getattr(exc, "parameter", None) is None:
            raise
        raise InvalidOptionError(error_line(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    from vidstyle.live import LIVE_DEFAULTS, LiveOptions, run_live
    from vidstyle.options import StylizeOptions, TemporalOptions, from_args

    tty = sys.stderr.isatty()
    status_shown = False

    def say(text: str) -> None:
        nonlocal status_shown
        if status_shown and tty:
            sys.stderr.write("\n")
            status_shown = False
        sys.stderr.write(f"vidstyle live: {text}\n")
        sys.stderr.flush()

    def unset(cls: Any) -> dict[str, Any]:  # live defaults of the options not given
        return {k: v for k, v in LIVE_DEFAULTS.items() if k in cls.__dataclass_fields__ and getattr(args, k) is None}

    from vidstyle.live.options import LIVE_FAST_DEFAULT

    painting: dict[str, Any] = {}
    if args.style:  # a painting: the arbitrary back end, the fast variant where that is live mode's default
        painting["backend"] = "arbitrary"
        if LIVE_FAST_DEFAULT and args.fast is None and args.decoder is None:
            painting["fast"] = True
    stylize = from_args(StylizeOptions, args, **unset(StylizeOptions), **painting)
    temporal = from_args(TemporalOptions, args, **unset(TemporalOptions))
    live = from_args(LiveOptions, args)

    def on_start(start: Any) -> None:
        if start.headless == "no display" and not args.quiet:
            say("no display (DISPLAY is not set): running headless; use --record to keep the result")
        if not args.quiet:
            fps = f"{start.fps:.3g} fps" if start.fps else "unknown fps"
            say(f"{start.camera}: {start.input_size[0]}x{start.input_size[1]} {fps}, processing at "
                f"{start.size[0]}x{start.size[1]} with {start.model}" + (" (compiling…)" if start.compiling else ""))
        if start.headless and not args.quiet:
            say("running headless; Ctrl-C stops" + (f" and finalises {start.record}" if start.record else ""))

    def on_status(st: Any) -> None:
        nonlocal status_shown
        if args.quiet:
            return
        line = (f"{st.elapsed:6.1f} s  {st.fps:5.1f} fps  latency {st.latency * 1000:4.0f} ms  "
                f"dropped {st.dropped}  {st.model}" + ("" if st.stabilize > 0 else " (stabilisation off)"))
        sys.stderr.write("\r" + line.ljust(78) if tty else line + "\n")
        sys.stderr.flush()
        status_shown = tty

    stop = threading.Event()
    old = _install_stop_handlers(stop, say)
    try:
        stats = run_live(stylize=stylize, temporal=temporal, live=live, overwrite=args.overwrite,
                         on_start=on_start, on_status=on_status, on_message=say, stop=stop)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial_output", None)
        say("interrupted" + (f"; the recording is kept at {partial}" if partial else ""))
        return 130
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    if status_shown:
        sys.stderr.write("\n")
    for warning in stats.warnings:
        say(f"warning: {warning}")
    rec = f"; recording saved to {stats.recording}" if stats.recording else ""
    if stats.end_reason == "lost":
        say(f"lost the camera '{live.camera}' ({stats.end_message}) after {stats.seconds:.1f} s{rec}")
    elif stats.end_reason == "ended":
        say(f"the stream '{live.camera}' ended after {stats.seconds:.1f} s{rec}")
    elif stats.recording:
        say(f"stopped{rec}")
    if not args.quiet:
        say(f"{stats.shown} frames shown in {stats.seconds:.1f} s ({stats.fps:.1f} fps), dropped {stats.dropped} "
            f"({100 * stats.drop_rate:.0f}%), latency p50 {stats.latency_p50 * 1000:.0f} ms "
            f"p95 {stats.latency_p95 * 1000:.0f} ms")
    return 1 if stats.end_reason == "lost" else 0
