"""``vidstyle live``: stylize a camera or a network stream in real time, with preview and recording."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from typing import Any

EPILOG = """examples:
  vidstyle live                                   # camera 0, default model, preview window
  vidstyle live --camera /dev/video2 --model wave_small --record take1.mp4
  vidstyle live --camera rtsp://192.168.1.20:8554/cam --no-preview --record cam.mkv --duration 600
  vidstyle live --camera lavfi:testsrc2=size=640x360:rate=30 --no-preview --duration 10
  vidstyle live --camera avfoundation:0           # macOS;  Windows: --camera "dshow:video=Integrated Camera"
  vidstyle live --camera 0 --camera-option input_format=mjpeg --size 1280x720

keys in the preview: n/p (or arrows) next/previous model, t stabilisation on/off, o overlay on/off,
s snapshot (PNG), q or Esc quit. Without a display (no DISPLAY, or --no-preview) it runs headless.
Ctrl-C, q, --duration and the end of a stream finalise the recording under its name; frames keep their
capture times, so a recording with dropped frames still plays at true speed.
Exit status: 0 when stopped or when the stream ended, 1 when the camera was lost or on errors.
"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds, got {text!r}"
        )
    return value


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (an FFmpeg input option), got {text!r}"
        )
    return key.strip(), value.strip()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "live",
        help="stylize a camera or network stream in real time",
        description="Stylize a camera, network stream or test source in real time: preview window with an "
        "fps/latency overlay, optional recording. A slow model drops frames instead of falling behind.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--camera",
        default="0",
        metavar="DEVICE",
        help="camera index (0), device (/dev/video0), FFmpeg input FORMAT:NAME (avfoundation:0, "
        "dshow:video=NAME, lavfi:testsrc2=...), stream URL (rtsp://, udp://, http://) or a video "
        "file (default 0; see `vidstyle cameras`)",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=None,
        metavar="NAME|PATH",
        help="style model (repeat to have several; n/p switch between them and the other installed "
        "models; default: the default model)",
    )
    p.add_argument(
        "--size",
        default=None,
        metavar="WxH",
        help="processing size, e.g. 640x360 (default: the camera's size, at most 640 pixels wide)",
    )
    p.add_argument(
        "--record",
        default=None,
        metavar="OUT",
        help="also record the stylized frames to OUT (.mp4, .mkv, .mov: H.264; .webm: VP9)",
    )
    p.add_argument(
        "-y", "--overwrite", action="store_true", help="replace OUT if it exists"
    )
    p.add_argument("--no-preview", action="store_true", help="no window (headless)")
    p.add_argument(
        "--no-overlay",
        action="store_true",
        help="start with the fps/latency overlay hidden",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=None,
        metavar="S",
        help="stop after S seconds",
    )
    p.add_argument(
        "--stabilize",
        type=float,
        default=None,
        metavar="S",
        help="temporal stabilisation strength, 0 (off) to 1 (default 0.85); t toggles it",
    )
    p.add_argument(
        "--flow",
        default=None,
        metavar="NAME",
        help="optical flow for stabilisation: dis-ultrafast (default), dis-fast, none",
    )
    p.add_argument(
        "--flow-scale",
        type=float,
        default=None,
        metavar="F",
        help="compute flow and occlusion mask at this fraction of the frame size, in (0, 1] (default 1: full size; 0.5 is cheaper but stabilises less)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (slow start, then faster)",
    )
    p.add_argument(
        "--virtual-camera",
        default=None,
        metavar="DEV",
        help="also send the stylized stream to a virtual camera for other programs: a v4l2loopback device "
        "on Linux (/dev/video10; see 'sudo modprobe v4l2loopback') or 'auto' (needs pip install pyvirtualcam: "
        "OBS virtual camera on Windows/macOS)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="network number format: auto (default: bfloat16 on CPUs that have it natively, about 2x "
        "faster there; float32 elsewhere), float32 (exact), bfloat16, float16 (GPUs)",
    )
    p.add_argument(
        "--device",
        default=None,
        metavar="D",
        help="torch device: cpu, cuda, mps (default: best available)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for the network (default: one fewer than the cores, so capture and flow keep one)",
    )
    p.add_argument(
        "--camera-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="FFmpeg input option for the camera, e.g. input_format=mjpeg, framerate=30 (repeatable)",
    )
    p.add_argument(
        "--snapshot-dir",
        default=".",
        metavar="DIR",
        help="folder for snapshots (s key; default: here)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no status lines (errors and the end message still shown)",
    )
    p.set_defaults(func=run)
    return p


def _models(given: list[str] | None) -> list[str]:
    """The models to cycle through: those given, then the other installed ones."""
    from vidstyle.errors import ModelError
    from vidstyle.nets.registry import DEFAULT_MODEL, list_models

    installed = [m.name for m in list_models()]
    if given:
        return [*given, *[n for n in installed if n not in given]]
    if not installed:
        raise ModelError(
            f"no style models are installed (and {DEFAULT_MODEL} is not here); give --model PATH.safetensors, "
            "train one with 'vidstyle train', or put models in $VIDSTYLE_MODELS"
        )
    if DEFAULT_MODEL in installed:
        installed.remove(DEFAULT_MODEL)
        installed.insert(0, DEFAULT_MODEL)
    return installed


def _recorder_codec(path: str) -> tuple[str, str]:
    if path.lower().endswith(".webm"):
        return "vp9", "ultrafast"
    return (
        "h264",
        "ultrafast",
    )  # no B-frames: decode order = capture order, exact VFR durations


def _install_sigint(stop: threading.Event, say: Any) -> Any:
    """First Ctrl-C: stop gracefully (recording finalised); second: interrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        say("stopping (Ctrl-C again to abort at once)")

    return signal.signal(signal.SIGINT, handler)


def run(args: argparse.Namespace) -> int:
    from vidstyle.errors import InvalidOptionError
    from vidstyle.io import check_output, open_sink, output_kind
    from vidstyle.live import (
        DEFAULT_LIVE_FLOW,
        DEFAULT_LIVE_FLOW_SCALE,
        LiveOutput,
        LiveStylizer,
        WindowPreview,
        display_available,
        open_camera,
        parse_size,
        run_live,
    )

    def say(text: str) -> None:
        sys.stderr.write(f"vidstyle live: {text}\n")
        sys.stderr.flush()

    size = parse_size(args.size)
    if args.stabilize is not None and not 0.0 <= args.stabilize <= 1.0:
        raise InvalidOptionError(
            f"--stabilize must be between 0 (off) and 1 (strongest), got {args.stabilize}"
        )
    if args.threads is not None and args.threads < 1:
        raise InvalidOptionError(f"--threads must be >= 1, got {args.threads}")
    if args.flow_scale is not None and not 0.0 < args.flow_scale <= 1.0:
        raise InvalidOptionError(
            f"--flow-scale must be in (0, 1] (1 = full frame size, the default), got {args.flow_scale}"
        )
    if args.record is not None:
        try:
            kind = output_kind(args.record)
        except InvalidOptionError:
            kind = None
        if kind != "video":
            raise InvalidOptionError(
                f"--record needs a video file name (.mp4, .mkv, .mov, .webm), got '{args.record}'"
            )
        check_output(args.record, input_spec=args.camera, overwrite=args.overwrite)
    preview_wanted = not args.no_preview
    if preview_wanted and not display_available():
        if not args.quiet:
            say(
                "no display (DISPLAY is not set): running headless; use --record to keep the result"
            )
        preview_wanted = False

    stylizer = LiveStylizer(
        models=_models(args.model),
        device=args.device,
        compile=args.compile,
        precision=args.precision,
        stabilize=args.stabilize,
        flow=args.flow or DEFAULT_LIVE_FLOW,
        flow_scale=DEFAULT_LIVE_FLOW_SCALE if args.flow_scale is None else args.flow_scale,
        threads=args.threads,
    )
    try:
        with open_camera(
            args.camera,
            size=size,
            max_width=None if size else 640,
            options=dict(args.camera_option),
        ) as camera:
            w, h = camera.size
            if not args.quiet:
                fps = f"{float(camera.fps):.3g} fps" if camera.fps else "unknown fps"
                say(
                    f"{args.camera}: {camera.input_size[0]}x{camera.input_size[1]} {fps}, processing at {w}x{h} "
                    f"with {stylizer.model_name}"
                    + (" (compiling…)" if args.compile else "")
                )
            stylizer.warmup(width=w, height=h)
            virtual_camera = None
            if args.virtual_camera is not None:
                from vidstyle.live.virtualcam import open_virtual_camera

                fps_nominal = float(camera.fps) if camera.fps else 30.0
                virtual_camera = open_virtual_camera(args.virtual_camera, width=w, height=h, fps=fps_nominal)
            recorder = None
            if args.record is not None:
                codec, preset = _recorder_codec(args.record)
                recorder = open_sink(
                    args.record,
                    info=camera.info,
                    codec=codec,
                    preset=preset,
                    overwrite=args.overwrite,
                )
            preview = None
            if preview_wanted:
                try:
                    preview = WindowPreview(
                        title=f"vidstyle live — {args.camera}", size=(w, h)
                    )
                except Exception as exc:  # noqa: BLE001 - a broken GUI backend must not stop a recording
                    say(f"cannot open a preview window ({exc}); running headless")
            stop = threading.Event()

            def status(st: Any) -> None:
                if args.quiet:
                    return
                line = (
                    f"{st.elapsed:6.1f} s  {st.fps:5.1f} fps  latency {st.latency * 1000:4.0f} ms  "
                    f"dropped {st.dropped}  {st.model}"
                    + ("" if st.stabilize > 0 else " (stabilisation off)")
                )
                if sys.stderr.isatty():
                    sys.stderr.write("\r" + line.ljust(78))
                else:
                    sys.stderr.write(line + "\n")
                sys.stderr.flush()

            def message(text: str) -> None:
                if sys.stderr.isatty() and not args.quiet:
                    sys.stderr.write("\n")
                say(text)

            output = LiveOutput(
                preview=preview,
                recorder=recorder,
                controls=stylizer,
                stop=stop,
                overlay=not args.no_overlay,
                snapshot_dir=args.snapshot_dir,
                on_status=None if preview is not None else status,
                on_message=message,
                virtual_camera=virtual_camera,
            )
            if preview is None and not args.quiet:
                say(
                    "running headless; Ctrl-C stops"
                    + (f" and finalises {args.record}" if args.record else "")
                )
            old = _install_sigint(stop, message)
            try:
                stats = run_live(
                    source=camera,
                    stages=[stylizer],
                    output=output,
                    stop=stop,
                    duration=args.duration,
                )
            except KeyboardInterrupt as exc:
                partial = getattr(exc, "partial_output", None)
                if sys.stderr.isatty() and not args.quiet:
                    sys.stderr.write("\n")
                say(
                    "interrupted"
                    + (f"; the recording is kept at {partial}" if partial else "")
                )
                return 130
            finally:
                if old is not None:
                    signal.signal(signal.SIGINT, old)
    finally:
        stylizer.close()

    if sys.stderr.isatty() and not args.quiet and preview is None:
        sys.stderr.write("\n")
    for warning in stats.warnings:
        say(f"warning: {warning}")
    rec = f"; recording saved to {stats.recording}" if stats.recording else ""
    if stats.end_reason == "lost":
        say(
            f"lost the camera '{args.camera}' ({stats.end_message}) after {stats.seconds:.1f} s{rec}"
        )
    elif stats.end_reason == "ended":
        say(f"the stream '{args.camera}' ended after {stats.seconds:.1f} s{rec}")
    elif stats.recording:
        say(f"stopped{rec}")
    if not args.quiet:
        say(
            f"{stats.shown} frames shown in {stats.seconds:.1f} s ({stats.fps:.1f} fps), dropped {stats.dropped} "
            f"({100 * stats.drop_rate:.0f}%), latency p50 {stats.latency_p50 * 1000:.0f} ms "
            f"p95 {stats.latency_p95 * 1000:.0f} ms"
        )
    return 1 if stats.end_reason == "lost" else 0
