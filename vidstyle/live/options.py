"""The options of live mode that the other groups do not have: :class:`LiveOptions`.

Live mode (:func:`vidstyle.live.run_live`, ``vidstyle live``) takes three groups: the shared
:class:`~vidstyle.options.StylizeOptions` (device, precision, compile, threads) and
:class:`~vidstyle.options.TemporalOptions` (stabilize, flow), and :class:`LiveOptions` (the input,
the outputs, the preview). Field names are unique across all groups; a field whose command-line flag
is not ``--`` + its name says so in its spec (``models`` is ``--model``, ``frame_size`` is ``--size``).

Live mode's own defaults of the shared groups (:data:`LIVE_DEFAULTS`): ``precision`` ``auto``
(bfloat16 where the CPU has it natively: real time matters more than the ~0.5/255 it costs) and
``flow`` ``dis-ultrafast`` (the cheapest DIS preset).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidstyle.live.stylizer import DEFAULT_LIVE_FLOW, DEFAULT_LIVE_FLOW_SCALE
from vidstyle.options import OptionValueError, option
from vidstyle.options.spec import check_group

__all__ = ["LIVE_DEFAULTS", "LIVE_FAST_DEFAULT", "LiveOptions", "parse_camera_options", "parse_frame_size", "parse_models"]

#: live mode's defaults of fields of the shared groups, applied where they are not given
LIVE_DEFAULTS: dict[str, Any] = {"precision": "auto", "flow": DEFAULT_LIVE_FLOW}
#: the one switch: whether `vidstyle live --style PAINTING` uses the fast arbitrary-style variant (the distilled
#: student, ``models/student_relu31``) when neither ``fast`` nor ``decoder`` is given. On: the shipped student is
#: 1.13x the VGG variant's style ratio (target <= 1.3x) and runs 25.2-28.4 fps stabilised at 640x360 on 2 CPU
#: cores, p95 68-76 ms (targets >= 24 fps, <= 80 ms), where the VGG variant runs under 3 fps (375 ms per frame
#: alone; BENCHMARKS.md, "Live mode"); ``--no-fast`` picks the VGG variant
LIVE_FAST_DEFAULT = True

_LIVE = "live"


def parse_frame_size(value: Any, name: str) -> tuple[int, int] | None:
    """``"640x360"`` or ``(640, 360)`` → ``(640, 360)``; ``"auto"`` → ``None`` (the camera's size)."""
    from vidstyle.live.capture import parse_size

    return parse_size(value, name=name)


def parse_camera_options(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    """FFmpeg input options: ``"KEY=VALUE"`` strings (or a list of them), ``(key, value)`` pairs or a mapping."""
    if isinstance(value, dict):
        items: list[Any] = list(value.items())
    elif isinstance(value, (str, tuple, list)):
        items = [value] if isinstance(value, str) else list(value)
    else:
        raise OptionValueError(name, f"{name} must be KEY=VALUE FFmpeg input options, got {value!r}")
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, str):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise OptionValueError(name, f"{name} must be KEY=VALUE (an FFmpeg input option such as "
                                             f"input_format=mjpeg), got {item!r}")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            key, val = str(item[0]), str(item[1])
            if not key.strip():
                raise OptionValueError(name, f"{name}: empty option name in {item!r}")
        else:
            raise OptionValueError(name, f"{name} must be KEY=VALUE FFmpeg input options, got {item!r}")
        out.append((key.strip(), val.strip()))
    return tuple(out)


def parse_models(value: Any, name: str) -> tuple[Any, ...]:
    """Model names, ``.safetensors`` paths or loaded models (one, or a list)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise OptionValueError(name, f"{name} needs at least one model name or path")
    out: list[Any] = []
    for item in items:
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if isinstance(item, str):
            if not item.strip():
                raise OptionValueError(name, f"{name} must not contain an empty name")
            out.append(item.strip())
        elif hasattr(item, "net"):  # a loaded StyleModel
            out.append(item)
        else:
            raise OptionValueError(name, f"{name} must be model names or .safetensors paths, got {item!r}")
    return tuple(dict.fromkeys(out)) if all(isinstance(m, str) for m in out) else tuple(out)


def parse_camera(value: Any, name: str) -> str:
    """A camera spec: an index (``0``), a device, ``FORMAT:NAME``, a URL or a file."""
    if isinstance(value, bool) or not isinstance(value, (str, int, os.PathLike)):
        raise OptionValueError(name, f"{name} must be a camera index, device, FORMAT:NAME, URL or file, got {value!r}")
    text = str(value) if isinstance(value, int) else os.fspath(value).strip()
    if not text:
        raise OptionValueError(name, f"{name} must not be empty; give an index (0), a device or a URL "
                                     "(see 'vidstyle cameras')")
    return text


def _flow_scale(value: Any, name: str) -> float:
    bad = OptionValueError(name, f"{name} must be in (0, 1] (1 = full frame size, the default), got {value!r}")
    if isinstance(value, bool):
        raise bad
    try:
        scale = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise bad from None
    if not 0.0 < scale <= 1.0:  # also rejects NaN
        raise bad
    return scale


@dataclass(frozen=True)
class LiveOptions:
    """What live mode reads, shows and writes (see the module docstring for the other groups).

    ``models``: the models to cycle through with the n/p keys, before the other installed ones
    (``None``: ``StylizeOptions.model``, else the default model, then the installed ones).
    ``frame_size``: the processing size, ``(width, height)`` (``None``: the camera's, at most 640
    wide). ``record``: also record the stylized frames to this video file. ``virtual_camera``:
    also send them to a virtual camera (``auto`` or a v4l2loopback device). ``preview``: show a
    window (falls back to headless without a display). ``duration``: stop after this many seconds.
    ``pipelined``: the stabiliser in a stage of its own (:class:`~vidstyle.live.stylizer.LiveStylizer`).
    """

    camera: str = option("0", kind="custom", parse=parse_camera, group=_LIVE, metavar="DEVICE",
                         help="camera index (0), device (/dev/video0), FFmpeg input FORMAT:NAME (avfoundation:0, "
                              "dshow:video=NAME, lavfi:testsrc2=...), stream URL (rtsp://, udp://, http://) or a "
                              "video file (see `vidstyle cameras`)")
    camera_options: tuple[tuple[str, str], ...] = option((), kind="custom", parse=parse_camera_options, group=_LIVE,
                                                         flag="--camera-option", repeat=True, metavar="KEY=VALUE",
                                                         help="FFmpeg input option for the camera, e.g. "
                                                              "input_format=mjpeg, framerate=30 (repeatable)")
    models: tuple[Any, ...] | None = option(None, kind="custom", parse=parse_models, group=_LIVE, flag="--model",
                                            short="-m", repeat=True, metavar="NAME|PATH",
                                            help="style model (repeat to have several; n/p switch between them and "
                                                 "the other installed models; default: the default model)")
    frame_size: tuple[int, int] | None = option(None, kind="custom", parse=parse_frame_size, group=_LIVE,
                                                flag="--size", metavar="WxH",
                                                help="processing size, e.g. 640x360 (default: the camera's size, at "
                                                     "most 640 pixels wide)")
    record: str | None = option(None, kind="path", group=_LIVE, metavar="OUT",
                                help="also record the stylized frames to OUT (.mp4, .mkv, .mov: H.264; .webm: VP9)")
    virtual_camera: str | None = option(None, kind="str", group=_LIVE, metavar="DEV",
                                        help="also send the stylized stream to a virtual camera for other programs: "
                                             "a v4l2loopback device on Linux (/dev/video10; see 'sudo modprobe "
                                             "v4l2loopback') or 'auto' (needs pip install pyvirtualcam: OBS virtual "
                                             "camera on Windows/macOS)")
    preview: bool = option(True, kind="bool", group=_LIVE,
                           help="show a preview window (--no-preview: headless; also without a display)")
    overlay: bool = option(True, kind="bool", group=_LIVE,
                           help="start with the fps/latency overlay shown (o toggles it)")
    duration: float | None = option(None, kind="float", above=0.0, group=_LIVE, metavar="S",
                                    help="stop after S seconds")
    flow_scale: float = option(DEFAULT_LIVE_FLOW_SCALE, kind="custom", parse=_flow_scale, group=_LIVE, metavar="F",
                               help="compute flow and occlusion mask at this fraction of the frame size, in (0, 1] "
                                    "(1: full size; 0.5 is cheaper but stabilises less)")
    snapshot_dir: str = option(".", kind="path", group=_LIVE, metavar="DIR",
                               help="folder for snapshots (s key)")
    pipelined: bool = option(False, kind="bool", group=_LIVE,
                             help="run the stabiliser in a thread of its own while the network starts on the next "
                                  "frame: more frames per second on a busy CPU, more latency (default: off)")

    def __post_init__(self) -> None:
        check_group(self)
        if self.record is not None:
            from vidstyle.errors import InvalidOptionError
            from vidstyle.io import output_kind

            try:
                kind = output_kind(self.record)
            except InvalidOptionError:
                kind = None
            if kind != "video":
                raise OptionValueError("record", f"record needs a video file name (.mp4, .mkv, .mov, .webm), "
                                                 f"got '{self.record}'")
