"""Live mode as one library call: :func:`run_live` (what ``vidstyle live`` runs).

>>> from vidstyle.live import run_live
>>> stats = run_live(camera="lavfi:testsrc2=size=640x360:rate=30", models=["starry_student"],   # doctest: +SKIP
...                  preview=False, duration=10, record="take1.mp4")
>>> stats.fps, stats.latency_p95, stats.drop_rate                                           # doctest: +SKIP

It checks every option, the recording's path and the first model before the camera opens, builds
the stage graph through :func:`vidstyle.api.build_live_stylizer` (which sets the process up once),
then runs capture → flow + network → preview/recording (:func:`~vidstyle.live.runner.run_session`).
It prints nothing: what a front end shows comes through ``on_start``, ``on_status`` and
``on_message``; the run ends when ``stop`` is set, the stream ends, the camera is lost, ``q`` is
pressed in the preview, or ``duration`` has passed (:attr:`LiveStats.end_reason` tells which).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidstyle.errors import InvalidOptionError
from vidstyle.live.options import LIVE_DEFAULTS, LiveOptions
from vidstyle.live.runner import LiveStats, run_session
from vidstyle.options import OptionValueError, StylizeOptions, TemporalOptions, from_mapping, specs

__all__ = ["LiveStart", "live_models", "live_options", "run_live"]

#: the size live mode scales a camera down to when no ``frame_size`` is given
MAX_AUTO_WIDTH = 640


@dataclass(frozen=True, slots=True)
class LiveStart:
    """What a live session opened (passed to ``on_start`` before the network warms up).

    Attributes:
        camera: the camera spec as given.
        input_size: the input's own ``(width, height)``.
        size: the processing size ``(width, height)``.
        fps: the input's nominal frame rate (``None`` if unknown).
        model: the model in use first; ``models``: all the models n/p cycle through.
        compiling: ``torch.compile`` is on (the warm-up takes a while).
        headless: why no preview window is shown (``"preview off"``, ``"no display"``), or ``""``.
        record: the recording's final path, if any.
    """

    camera: str
    input_size: tuple[int, int]
    size: tuple[int, int]
    fps: float | None
    model: str
    models: tuple[str, ...]
    compiling: bool
    headless: str
    record: str | None


def live_models(given: Sequence[Any] | None) -> list[Any]:
    """The models to cycle through: those ``given``, then the other installed ones (the default
    model first when none is given)."""
    from vidstyle.nets.registry import DEFAULT_MODEL, list_models

    installed = [m.name for m in list_models()]
    if given:
        return [*given, *[n for n in installed if n not in given]]
    if not installed:
        raise OptionValueError("models", f"no style models are installed (and {DEFAULT_MODEL} is not here); give "
                                         "`models` PATH.safetensors, train one with 'vidstyle train', or put models "
                                         "in $VIDSTYLE_MODELS")
    if DEFAULT_MODEL in installed:
        installed.remove(DEFAULT_MODEL)
        installed.insert(0, DEFAULT_MODEL)
    return installed


def live_options(
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    live: LiveOptions | None = None,
    **options: Any,
) -> tuple[StylizeOptions, TemporalOptions, LiveOptions]:
    """The three groups of live mode from group objects and flat keyword ``options`` (``camera=``,
    ``models=``, ``stabilize=``, ``device=``...; each name belongs to exactly one group). A group
    built here from flat options gets live mode's defaults (:data:`~vidstyle.live.options.LIVE_DEFAULTS`:
    precision ``auto``, flow ``dis-ultrafast``); a group given as an object is used as it is.

    Raises:
        TypeError: an unknown keyword (the message suggests the closest known one).
        OptionValueError: a bad value, naming the parameter.
    """
    classes: tuple[Any, ...] = (StylizeOptions, TemporalOptions, LiveOptions)
    try:
        parts = from_mapping(classes, {k: v for k, v in options.items() if v is not None})
    except OptionValueError:
        raise
    except InvalidOptionError as exc:
        if str(exc).startswith("unknown key"):
            raise TypeError(str(exc).replace("unknown key", "unexpected keyword argument")) from None
        raise
    out: list[Any] = []
    for cls, obj, part in zip(classes, (stylize, temporal, live), parts):
        if obj is None:
            defaults = {k: v for k, v in LIVE_DEFAULTS.items() if k in specs(cls)}
            out.append(cls(**{**defaults, **part}))
            continue
        if part:
            raise InvalidOptionError(f"{', '.join(sorted(part))} given both directly and in {cls.__name__}; give one")
        if not isinstance(obj, cls):
            raise InvalidOptionError(f"expected a {cls.__name__}, got {type(obj).__name__}")
        out.append(obj)
    return out[0], out[1], out[2]


def _recorder_codec(path: str) -> tuple[str, str]:
    """VP9 in .webm, H.264 elsewhere; ultrafast: no B-frames, so decode order = capture order and the
    variable frame durations stay exact."""
    if path.lower().endswith(".webm"):
        return "vp9", "ultrafast"
    return "h264", "ultrafast"


def run_live(
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    live: LiveOptions | None = None,
    overwrite: bool = False,
    on_start: Callable[[LiveStart], None] | None = None,
    on_status: Callable[[Any], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> LiveStats:
    """Stylize a camera, network stream, test source or file in real time until it ends or is stopped.

    Args:
        stylize, temporal, live: the option groups (:class:`~vidstyle.options.StylizeOptions`:
            device, precision, compile, threads, model; :class:`~vidstyle.options.TemporalOptions`:
            stabilize, flow; :class:`~vidstyle.live.options.LiveOptions`: camera, models, frame_size,
            record, virtual_camera, preview, overlay, duration, flow_scale, snapshot_dir...); or
            give their fields flat (``camera="0", models=["wave_student"], preview=False``), which
            also applies live mode's defaults (see :func:`live_options`).
        overwrite: replace an existing recording.
        on_start: called once with a :class:`LiveStart` when the input is open, before the warm-up.
        on_status: called about once a second with a :class:`~vidstyle.live.output.LiveStatus`
            when no preview window is shown (headless progress).
        on_message: called with one-line messages (no window could be opened, model switched,
            snapshot saved…).
        stop: set it (from another thread or a signal handler) to end the run gracefully: the
            frames in flight are finished and the recording is finalised.

    Returns:
        :class:`~vidstyle.live.runner.LiveStats` (``end_reason`` ``"stopped"``, ``"ended"`` or
        ``"lost"``; ``recording`` the final path; ``warnings`` what went wrong without stopping it).

    Raises:
        OptionValueError: a bad option value, naming the parameter; TypeError: an unknown keyword.
        OutputExistsError: the recording exists and ``overwrite`` is false.
        ModelError, CameraError: a bad model; a camera that cannot be opened or stopped before the
            first frame. All before anything is recorded.
        KeyboardInterrupt: the recording is kept, playable, under ``exc.partial_output``.
    """
    from vidstyle.api import build_live_mask, build_live_stylizer
    from vidstyle.io import check_output, open_sink
    from vidstyle.live.capture import open_camera
    from vidstyle.live.output import LiveOutput, WindowPreview, display_available

    st, tm, lv = live_options(stylize=stylize, temporal=temporal, live=live, **options)
    if lv.record is not None:
        check_output(lv.record, input_spec=lv.camera, overwrite=overwrite)
    headless = "" if lv.preview else "preview off"
    if not headless and not display_available():
        headless = "no display"
    given = [*([st.model] if st.model is not None else []), *(lv.models or ())]
    models = live_models(list(dict.fromkeys(given)) if all(isinstance(m, str) for m in given) else given)
    stop = stop if stop is not None else threading.Event()

    def message(text: str) -> None:
        if on_message is not None:
            on_message(text)

    masks = build_live_mask(st)  # a bad matte fails before a camera opens
    stylizer = build_live_stylizer(stylize=st, temporal=tm, models=models, flow_scale=lv.flow_scale,
                                   pipelined=lv.pipelined)
    try:
        size = lv.frame_size
        with open_camera(lv.camera, size=size, max_width=None if size else MAX_AUTO_WIDTH,
                         options=dict(lv.camera_options)) as camera:
            w, h = camera.size
            if on_start is not None:
                on_start(LiveStart(camera=lv.camera, input_size=tuple(camera.input_size), size=(w, h),
                                   fps=float(camera.fps) if camera.fps else None, model=stylizer.model_name,
                                   models=tuple(stylizer.model_names), compiling=st.compile, headless=headless,
                                   record=lv.record))
            stylizer.warmup(width=w, height=h)
            virtual_camera = None
            if lv.virtual_camera is not None:
                from vidstyle.live.virtualcam import open_virtual_camera

                virtual_camera = open_virtual_camera(lv.virtual_camera, width=w, height=h,
                                                     fps=float(camera.fps) if camera.fps else 30.0)
            recorder = None
            try:
                if lv.record is not None:
                    codec, preset = _recorder_codec(lv.record)
                    recorder = open_sink(lv.record, info=camera.info, codec=codec, preset=preset, overwrite=overwrite)
                preview = None
                if not headless:
                    try:
                        preview = WindowPreview(title=f"vidstyle live — {lv.camera}", size=(w, h))
                    except Exception as exc:  # noqa: BLE001 - a broken GUI backend must not stop a recording
                        message(f"cannot open a preview window ({exc}); running headless")
            except BaseException:
                if virtual_camera is not None:
                    virtual_camera.close()
                raise
            output = LiveOutput(preview=preview, recorder=recorder, controls=stylizer, stop=stop, overlay=lv.overlay,
                                snapshot_dir=lv.snapshot_dir, on_status=None if preview is not None else on_status,
                                on_message=message, virtual_camera=virtual_camera)
            return run_session(source=camera, stages=[*stylizer.stages, *masks], output=output, stop=stop, duration=lv.duration)
    finally:
        stylizer.close()
