"""The Python API: :func:`stylize_video` (and :func:`stylize_image` for one picture).

>>> import vidstyle
>>> stats = vidstyle.stylize_video("in.mp4", "out.mp4", model="starry_student")  # doctest: +SKIP
>>> print(f"{stats.frames} frames at {stats.fps:.1f} fps -> {stats.output}")  # doctest: +SKIP

Everything is checked before any work starts (option values, output path, input, model), so bad
input fails in well under a second with one :class:`~vidstyle.errors.VidstyleError` and nothing is
written. The output goes to a temporary file next to the final one and is renamed only when complete.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidstyle.errors import InvalidOptionError
from vidstyle.options import (
    EncodeOptions,
    OptimOptions,
    OptionValueError,
    StylizeOptions,
    TemporalOptions,
    route,
    with_backend_defaults,
)
from vidstyle.pipeline import ProgressInfo, RunStats, Stage, run_pipeline

__all__ = ["PictureResult", "build_live_mask", "build_live_stylizer", "build_stages", "check_encoder", "default_codec", "options_from",
           "resolve_model", "stylize_image", "stylize_video", "validate_options"]

#: what each container gets when no codec is given
_CONTAINER_CODEC = {".webm": "vp9"}


def default_codec(output: str | os.PathLike[str]) -> str:
    """The codec a video ``output`` gets when none is given: VP9 in .webm, H.264 elsewhere."""
    return _CONTAINER_CODEC.get(Path(output).suffix.lower(), "h264")


def options_from(
    options: dict[str, Any],
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    encode: EncodeOptions | None = None,
    optim: OptimOptions | None = None,
) -> tuple[StylizeOptions, TemporalOptions, EncodeOptions, OptimOptions]:
    """The four option groups from given group objects and flat keyword ``options`` (``model=``,
    ``stabilize=``, ``codec=``...; each name belongs to exactly one group). A group given as an
    object cannot also get flat values. An unknown name is a ``TypeError`` (as for any function)."""
    given = {StylizeOptions: stylize, TemporalOptions: temporal, EncodeOptions: encode, OptimOptions: optim}
    try:
        built = route(options, where="")
    except InvalidOptionError as exc:
        if str(exc).startswith("unknown key"):
            raise TypeError(str(exc).replace("unknown key", "unexpected keyword argument")) from None
        raise
    out = []
    for cls, flat in zip(given, built):
        obj = given[cls]
        if obj is None:
            out.append(flat)
            continue
        if flat != cls():
            clash = sorted(k for k in options if k in {f for f in cls.__dataclass_fields__})
            raise InvalidOptionError(f"{', '.join(clash)} given both directly and in {cls.__name__}; give one")
        if not isinstance(obj, cls):
            raise InvalidOptionError(f"expected a {cls.__name__}, got {type(obj).__name__}")
        out.append(obj)
    if temporal is None:  # the back end's own defaults for the temporal options not given (file pipeline)
        out[1] = with_backend_defaults(out[1], out[0], given=options)
    return out[0], out[1], out[2], out[3]


def validate_options(
    *,
    output: str | os.PathLike[str] | None = None,
    start: float | int | str | None = None,  # noqa: PYI041 - int means a frame number
    end: float | int | str | None = None,  # noqa: PYI041
    queue_size: int = 8,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    encode: EncodeOptions | None = None,
    optim: OptimOptions | None = None,
    **options: Any,
) -> tuple[StylizeOptions, TemporalOptions, EncodeOptions, OptimOptions]:
    """Check every option before any work and return the option groups; raise
    :class:`~vidstyle.options.OptionValueError` (naming the parameter) with a one-line remedy.
    Encoder options (codec, CRF range per codec, pixel format, preset, codec vs container) are
    checked against ``output`` when it is a video file."""
    groups = options_from(options, stylize=stylize, temporal=temporal, encode=encode, optim=optim)
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise OptionValueError("queue_size", f"queue_size must be an integer >= 1, got {queue_size!r}")
    from vidstyle.io.timespec import parse_time

    t0, t1 = parse_time(start, name="start"), parse_time(end, name="end")
    if t0 is not None and t1 is not None:
        both_seconds = t0.seconds is not None and t1.seconds is not None
        both_frames = t0.frame is not None and t1.frame is not None
        if (both_seconds and t1.seconds <= t0.seconds) or (both_frames and t1.frame <= t0.frame):  # type: ignore[operator]
            raise OptionValueError("end", f"end ({t1}) must be after start ({t0}); swap them or drop end")
    groups[1].uses_flow(groups[0].backend)  # stabilisation without flow
    if output is not None:
        check_encoder(output, groups[2])
    return groups


def check_encoder(output: str | os.PathLike[str], encode: EncodeOptions, *, bit_depth: int | None = None) -> None:
    """Check ``encode`` against a video ``output``'s container (nothing to check for images)."""
    from vidstyle.io.encode import resolve_encoder
    from vidstyle.io.output import VIDEO_EXTS, output_kind

    if output_kind(output) != "video":
        return
    container = VIDEO_EXTS[Path(output).suffix.lower()]
    kw: dict[str, Any] = {} if bit_depth is None else {"bit_depth": bit_depth}
    resolve_encoder(codec=encode.codec or default_codec(output), container_format=container, crf=encode.crf,
                    pix_fmt=encode.pix_fmt, preset=encode.preset, **kw)


def resolve_model(model: str | os.PathLike[str] | Any | None) -> Any:
    """``None`` means the default model of the registry; anything else is returned as it is."""
    if model is not None:
        return model
    from vidstyle.nets import registry

    default = getattr(registry, "DEFAULT_MODEL", None)
    if default:
        return default
    models = registry.list_models()
    if not models:
        from vidstyle.errors import ModelError

        raise ModelError("no shipped model found; pass model=PATH to a .safetensors model file")
    return models[0].name


_resolve_model = resolve_model  # the name render/ used before it was public


def build_stages(
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    optim: OptimOptions | None = None,
    separate_stabilizer: bool = True,
    progress: Callable[[Any], None] | None = None,
    **options: Any,
) -> list[Stage]:
    """The stage graph of a run, for files, render jobs and live mode alike: ``[flow], stylize,
    [stabilize]`` (the flow stage only when some frame is stabilised).

    Options come as groups (``stylize=StylizeOptions(...)``...) or flat (``model="wave_student",
    stabilize=0.5``). The process is set up once here (:func:`vidstyle.runtime.setup`: device,
    precision, CPU threads). Feed-forward on a CPU: the stabiliser runs as a stage of its own
    (:class:`~vidstyle.stylize.stabilize.StabilizeStage`, its own thread: it overlaps the network's
    next frame); ``separate_stabilizer=False``, or another device, keeps it inside the stylize stage
    (same output). Optimisation: ``[flow], OptimStage`` with ``seed`` and ``progress`` (called after
    every iteration; the noise seed is ``seed``). Models and style images are loaded here, so a bad name or file fails before
    any output is created.
    """
    from vidstyle.runtime import setup

    st, tm, _, op = options_from(options, stylize=stylize, temporal=temporal, optim=optim)
    matte = _matte(st)  # a wrong matte path fails before any model is loaded
    rt = setup(device=st.device, precision=st.precision, threads=st.threads)
    curve = tm.strength(st.backend)
    use_flow = tm.uses_flow(st.backend)
    if st.backend == "optim":
        # the mask goes through the loss (OptimStage), and the composite stays last as the safety: exact
        # input outside the matte whatever the working size and the codec (docs/masks.md)
        return _with_mask(_optim_stages(st, tm, op, curve=curve, use_flow=use_flow, progress=progress, matte=matte),
                          matte)
    from vidstyle.stylize.feedforward import FeedForwardStage

    split = use_flow and separate_stabilizer and rt.device.type == "cpu"
    model = resolve_model(st.model) if st.backend == "feedforward" else _arbitrary_model(st, dtype=rt.dtype)
    stage = FeedForwardStage(
        model=model, device=rt.device, batch_size=st.batch_size, compile=st.compile,
        precision=st.precision, stabilize=0.0 if split or not use_flow else curve, raw_output=split,
        style_mix=st.style_mix, style_strength=st.style_strength, stabilizer=tm.stabilizer, crossfade=tm.resample_fade,
        style_scale=st.style_scale if st.backend == "feedforward" else 1.0,  # arbitrary: the painting's size
    )
    stages: list[Stage] = []
    try:
        if use_flow:
            from vidstyle.flow.stage import FORWARD_FLOW, FlowStage

            stages.append(FlowStage(estimator=tm.flow, device=rt.device, forward_estimator=FORWARD_FLOW.get(tm.flow)))
        stages.append(stage)
        if split:
            from vidstyle.stylize.stabilize import StabilizeStage

            # its own Stabilizer: the runner closes (resets) each stage when that stage's thread ends
            stages.append(StabilizeStage(strength=curve, method=tm.stabilizer, crossfade=tm.resample_fade))
    except BaseException:
        stage.close()
        raise
    return _with_mask(stages, matte)


def _matte(st: StylizeOptions) -> Any:
    """The run's :class:`~vidstyle.io.mattes.Matte` (``None`` without ``mask``)."""
    if st.mask is None:
        return None
    from vidstyle.io.mattes import Matte

    return Matte(st.mask)


def build_live_mask(stylize: StylizeOptions) -> list[Stage]:
    """Live mode's compositing stage (``[]`` without ``mask``): after the live stylizer, with one matte
    image for every camera frame (a camera has no frame numbers to follow a sequence)."""
    matte = _matte(stylize)
    if matte is not None and matte.is_sequence:
        raise OptionValueError("mask", f"live mode takes one matte image for `mask`, not the sequence '{stylize.mask}'")
    return _with_mask([], matte)


def _with_mask(stages: list[Stage], matte: Any) -> list[Stage]:
    """``stages`` then the compositing stage, last: after the stabiliser, whose history stays the
    un-composited stylised frame (see vidstyle/stylize/mask.py for why)."""
    if matte is None:
        return stages
    from vidstyle.stylize.mask import MaskStage

    return [*stages, MaskStage(matte=matte)]


def _optim_stages(st: StylizeOptions, tm: TemporalOptions, op: OptimOptions, *, curve: Any, use_flow: bool,
                  progress: Callable[[Any], None] | None, matte: Any = None) -> list[Stage]:
    from vidstyle.stylize.optim import OptimStage

    if not curve.is_constant:
        raise OptionValueError("stabilize", "keyframed stabilize works with the feed-forward back end; give the "
                                            "optim back end one number")
    if op.style_map is not None:
        raise OptionValueError("style_map", "semantic maps are for still pictures (`vidstyle image`); drop "
                                            "`style_map` and `content_map`", also=("content_map",))
    if op.portrait:
        raise OptionValueError("portrait", "portrait is for still pictures (`vidstyle image`); drop `portrait`")
    styles = st.style or ()
    stage = OptimStage(styles=_optim_styles(st), style_mix=[s.weight for s in styles],
                       style_mattes=_read_mattes(styles), region_mattes=_region_sequences(styles),
                       config=_optim_config(st, op), stabilize=curve.keys[0][1], vgg=st.vgg_weights,
                       vgg_convention=st.vgg_convention,
                       flow=tm.flow if tm.flow != "none" else None, device=st.device, progress=progress,
                       matte=matte, **op.stage_kwargs())
    stages: list[Stage] = []
    if use_flow:
        from vidstyle.flow.stage import FlowStage

        stages.append(FlowStage(estimator=tm.flow, device=st.device))
    stages.append(stage)
    return stages


def _parse_fps(value: Any) -> Any:
    if value is None:
        return None
    from vidstyle.options.values import parse_fps

    try:
        return parse_fps(value, key="fps")
    except InvalidOptionError as exc:
        raise OptionValueError("fps", str(exc).replace("key 'fps'", "fps")) from None


def _arbitrary_model(st: StylizeOptions, *, dtype: Any = None) -> Any:
    """The arbitrary-style back end as a style model: the painting analysed once, here (in ``dtype``,
    the run's precision)."""
    from vidstyle.stylize.arbitrary import build_arbitrary_model

    return build_arbitrary_model(styles=st.style or (), method=st.method, decoder=st.decoder,
                                 vgg_weights=st.vgg_weights, vgg_convention=st.vgg_convention,
                                 preserve_color=st.preserve_color, style_scale=st.style_scale,
                                 style_rotate=st.style_rotate, stat_smoothing=st.stat_smoothing, fast=st.fast,
                                 analysis_dtype=dtype)


def _optim_styles(st: StylizeOptions) -> list[Any]:
    """The optimisation back end's style images: paths, or the pictures turned by ``style_rotate``."""
    styles = st.style or ()
    if not st.style_rotate:
        return [s.path for s in styles]
    from vidstyle.io.imagefiles import read_image
    from vidstyle.stylize.style_image import rotate_image

    return [rotate_image(read_image(s.path), st.style_rotate) for s in styles]


def _read_mattes(styles: Sequence[Any], *, picture: bool = False) -> list[Any] | None:
    """The region mattes of ``STYLE@MATTE`` style images (float H×W in [0, 1]; of a sequence
    ``STYLE@matte.%04d.png``, its first frame's), or ``None``. ``picture``: a sequence is refused."""
    if not any(s.matte for s in styles):
        return None
    from vidstyle.io.mattes import Matte

    out = []
    for s in styles:
        m = Matte(s.matte, parameter="style")
        if picture and m.is_sequence:
            raise OptionValueError("style", f"a picture takes one matte image per style, not the sequence "
                                            f"'{s.matte}' (style {s.path})")
        out.append(m.read(m.first_number()))
    return out


def region_matte_notes(styles: Sequence[Any], *, height: int, width: int) -> list[str]:
    """One note per region matte (``STYLE@MATTE``) whose size is not the frames' ``width``×``height``: it is
    resized to them, like a ``mask`` matte (the note says how to avoid it)."""
    from vidstyle.io.mattes import Matte

    notes = []
    for s in styles:
        if not getattr(s, "matte", None):
            continue
        m = Matte(s.matte, parameter="style")
        h, w = m.read(m.first_number()).shape[:2]
        if (h, w) != (height, width):
            notes.append(f"style: matte '{s.matte}' is {w}x{h}, the frames {width}x{height}: resized to the frame "
                         "size (export the mattes at the plate's size to avoid it)")
    return notes


def _region_sequences(styles: Sequence[Any]) -> list[Any] | None:
    """Per style, the :class:`~vidstyle.io.mattes.Matte` of its region when any region matte is a sequence
    (``a.jpg@matte.%04d.png``: frame-synced like ``mask``), else ``None``."""
    from vidstyle.io.mattes import Matte, MatteSpec

    if not any(s.matte and MatteSpec.parse(s.matte).is_sequence for s in styles):
        return None
    return [Matte(s.matte, parameter="style") if s.matte else None for s in styles]


def _read_maps(op: OptimOptions, styles: Sequence[Any], style_images: list[Any],
               content: Any) -> tuple[list[Any] | None, Any]:
    """Semantic maps as one-hot labels, each map resized (nearest) to its picture: ``(style maps,
    content map)`` or ``(None, None)``."""
    if op.style_map is None or op.content_map is None:
        return None, None
    import cv2

    from vidstyle.io.imagefiles import read_image
    from vidstyle.stylize.guides import map_labels

    def fit(m: Any, like: Any) -> Any:
        h, w = like.shape[:2]
        return m if m.shape[:2] == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)

    style_map = read_image(op.style_map)
    maps, content_map, _ = map_labels([fit(style_map, s) for s in style_images], fit(read_image(op.content_map), content))
    return maps, content_map


def _optim_config(st: StylizeOptions, op: OptimOptions) -> Any:
    return op.config(seed=st.seed, preserve_color=st.preserve_color, style_scale=st.style_scale)


def _check_mattes(stages: Sequence[Stage], source: Any) -> None:
    """A matte sequence must cover every frame the source will give (checked before any output)."""
    numbers = getattr(source, "frame_numbers", None)
    for stage in stages:
        if numbers is None:
            continue
        for matte in (getattr(stage, "matte", None), *(getattr(stage, "region_mattes", None) or ())):
            if matte is not None:
                matte.check_covers(numbers)


def _input_has_audio(info: Any) -> bool:
    audio = getattr(info, "audio_streams", None)
    if isinstance(audio, int):
        return audio > 0
    return bool(audio)


def stylize_video(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    encode: EncodeOptions | None = None,
    optim: OptimOptions | None = None,
    start: float | int | str | None = None,  # noqa: PYI041 - int means a frame number
    end: float | int | str | None = None,  # noqa: PYI041
    fps: Any = None,
    overwrite: bool = False,
    progress: Callable[[ProgressInfo], None] | None = None,
    optim_progress: Callable[[Any], None] | None = None,
    queue_size: int = 8,
    stop: threading.Event | None = None,
    stages: Sequence[Stage] | None = None,
    **options: Any,
) -> RunStats:
    """Stylize a video (or image sequence) into a new video (or image sequence), keeping its audio.

    Args:
        input: a video file, an image sequence (``frames/%04d.png``, a folder or a glob), or an
            FFmpeg input ``format:name`` (e.g. ``lavfi:testsrc2=size=640x360:rate=30``).
        output: a video file (container from the extension) or an image-sequence pattern/folder.
        stylize, temporal, encode, optim: option groups (:mod:`vidstyle.options`); or give their
            fields flat, e.g. ``model="wave_student"``, ``device="cuda"``, ``precision="bfloat16"``,
            ``stabilize=0.85`` (or keyframes ``"0:0.3, 48:0.85"``), ``flow="dis-fast"``,
            ``codec="prores"``, ``crf=20``, ``backend="optim", style="painting.jpg"``.
        start, end: the part to process, in seconds (float), frames (int) or a string the source
            understands (``"1.5"``, ``"00:00:01.5"``, ``"45f"``).
        fps: frame rate of an image-sequence input (``24``, ``"24000/1001"``, ``23.976``); without it
            a sequence plays at 24 fps and the result's ``warnings`` say so. Ignored for videos.
        overwrite: replace an existing output.
        progress: called after each written frame with a :class:`~vidstyle.pipeline.ProgressInfo`.
        optim_progress: the optimisation back end's per-iteration callback.
        queue_size: frames each queue between two stages may hold.
        stop: set it (from another thread) to end the run early but cleanly; the output is kept.
        stages: custom stages replacing the default ones (model options are then ignored).

    Returns:
        :class:`~vidstyle.pipeline.RunStats` (``output`` is the final path, ``warnings`` what the
        input reader noticed, e.g. a truncated file).

    Raises:
        VidstyleError: bad options, input, model or output, one line with a remedy (option errors
            name the parameter). If the run fails half-way, the exception's ``partial_output``
            names the playable partial file.
        KeyboardInterrupt: after a clean shutdown, with ``partial_output`` attached.
    """
    from vidstyle.io import check_output, open_sink, open_source

    stage_list: list[Stage] = list(stages) if stages is not None else []
    handed_over = False  # once run_pipeline has the stages, it closes them
    try:
        st, tm, enc, op = validate_options(output=output, start=start, end=end, queue_size=queue_size, stylize=stylize,
                                           temporal=temporal, encode=encode, optim=optim, **options)
        rate = _parse_fps(fps)
        with open_source(input, start=start, end=end, fps=rate) as source:
            check_output(output, input_spec=input, overwrite=overwrite)
            if stages is None:
                stage_list = build_stages(stylize=st, temporal=tm, optim=op, progress=optim_progress)
                _check_mattes(stage_list, source)
            info = source.info
            audio_from = input if getattr(info, "kind", None) in ("video", "file") and _input_has_audio(info) else None
            sink = open_sink(output, info=info, codec=enc.codec or default_codec(output), crf=enc.crf,
                             pix_fmt=enc.pix_fmt, preset=enc.preset, audio_from=audio_from, overwrite=overwrite)
            handed_over = True
            stats = run_pipeline(source=source, stages=stage_list, sink=sink, queue_size=queue_size,
                                 progress=progress, stop=stop)
            if getattr(info, "kind", None) == "images" and rate is None:
                stats.warnings.append(f"image sequence assumed to be {info.fps} fps; pass fps (the --fps option) for another rate")
            if stages is None:
                stats.warnings.extend(region_matte_notes(st.style or (), height=info.height, width=info.width))
            return stats
    except BaseException:
        if not handed_over:
            for stage in stage_list:
                try:
                    stage.close()
                except Exception:  # noqa: BLE001, S110 - the first error matters more
                    pass
        raise


def stylize_image(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    stylize: StylizeOptions | None = None,
    optim: OptimOptions | None = None,
    size: int | None = None,
    init: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: Callable[[Any], None] | None = None,
    **options: Any,
) -> Any:
    """Stylize one picture with any back end; returns a :class:`PictureResult`.

    Feed-forward (the default): the model's output at the picture's size. Optimisation
    (``backend="optim", style="painting.jpg"``; Gatys et al.): ``size`` is the output's long side
    (``None``: the picture's size), ``init`` a starting image file (default: ``optim.init``, the
    content or noise), ``progress`` gets an :class:`~vidstyle.stylize.optim_config.OptimProgress`
    after every iteration. Reads and writes anything OpenCV does (PNG/JPEG/TIFF/WebP…, 8 or 16 bit;
    16-bit stays 16-bit in PNG/TIFF); the output is written under a temporary name and renamed.
    """
    import numpy as np

    from vidstyle.errors import OutputError, OutputExistsError
    from vidstyle.io.imagefiles import read_image, write_image_atomic

    st, _, _, op = options_from(options, stylize=stylize, optim=optim)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 16):
        raise OptionValueError("size", f"size must be an integer >= 16 (pixels), got {size!r}")
    src, dst = Path(input), Path(output)
    if dst.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr"):
        raise OutputError(f"{dst}: unsupported image extension; use .png, .jpg, .tif or .webp")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst} is the input; choose a different output path")
    if dst.exists() and not overwrite:
        from vidstyle.io.naming import with_parameter

        raise with_parameter(OutputExistsError(f"{dst} exists; pass `overwrite` to replace it or choose another name"),
                             "overwrite")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write into {parent}: folder missing or not writable; choose another output")
    matte = _matte(st)
    if matte is not None and matte.is_sequence:
        raise OptionValueError("mask", f"a picture takes one matte image for `mask`, not the sequence '{st.mask}'")
    from vidstyle.io.mattes import MatteSpec

    for s in st.style or ():
        if s.matte and MatteSpec.parse(s.matte).is_sequence:
            raise OptionValueError("style", f"a picture takes one matte image per style, not the sequence "
                                            f"'{s.matte}' (style {s.path})")
    import dataclasses
    import time

    import torch  # noqa: F401  (imported before the clock starts: ``seconds`` is the work, not the import)

    t0 = time.perf_counter()
    image = read_image(src)
    if size and st.backend != "optim":
        image = _fit_long_side(image, size)
    if st.backend == "optim":
        result, notes = _optimize_picture(image, st, op, size=size, init=init, progress=progress, matte=matte)
        out, extra = result.image, {"iterations": result.iterations, "seconds": result.seconds,
                                    "losses": dict(result.losses), "warnings": tuple(notes)}
        if dst.suffix.lower() not in (".png", ".tif", ".tiff") or image.dtype != np.uint16:
            out_dtype = np.uint8
        else:
            out_dtype = np.uint16
        from vidstyle.frame import from_float32

        out = from_float32(out, out_dtype)
    else:
        out, notes = _feedforward_picture(image, dataclasses.replace(st, mask=None))
        extra = {"seconds": time.perf_counter() - t0, "warnings": tuple(notes)}
    extra["warnings"] = (*extra.get("warnings", ()),
                         *region_matte_notes(st.style or (), height=out.shape[0], width=out.shape[1]))
    if matte is not None:  # the style only where the matte is white, over the picture at the output's size
        from vidstyle.io.imagefiles import convert_depth, image_bit_depth
        from vidstyle.stylize.mask import composite

        base = image
        if image.shape[:2] != out.shape[:2]:
            import cv2

            base = cv2.resize(image, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_AREA)
        base = convert_depth(base, image_bit_depth(out))
        out = composite(out, base, matte.alpha(0, out.shape[:2]))
        extra["warnings"] = (*extra.get("warnings", ()), *matte.warnings)
    write_image_atomic(dst, out, temp=dst.with_name(f".{dst.stem}.vidstyle-tmp{dst.suffix}"))
    return PictureResult(output=dst, width=int(out.shape[1]), height=int(out.shape[0]), **extra)


@dataclass(frozen=True, slots=True)
class PictureResult:
    """What :func:`stylize_image` wrote; ``iterations``, ``seconds`` and ``losses`` come from the
    optimisation back end."""

    output: Path
    width: int
    height: int
    iterations: int | None = None
    seconds: float | None = None
    losses: dict[str, float] | None = None
    #: notes for the user (e.g. a matte resized to the picture, a huge painting downscaled, ``portrait`` without
    #: a face found); the CLI shows them as warnings
    warnings: tuple[str, ...] = ()

    def __fspath__(self) -> str:  # a PictureResult works where its path did
        return str(self.output)

    def __str__(self) -> str:
        return str(self.output)


def _fit_long_side(image: Any, size: int) -> Any:
    import cv2

    h, w = image.shape[:2]
    s = size / max(h, w)
    if abs(s - 1) <= 1e-6:
        return image
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)


def _feedforward_picture(image: Any, st: StylizeOptions) -> Any:
    from vidstyle.frame import Frame

    stages = build_stages(stylize=st, stabilize=0.0, flow="none")
    frame = Frame(index=0, image=image)
    try:
        outs: list[Any] = [frame]
        for stage in stages:
            outs = [out for f in outs for out in stage.process(f)] + stage.finish()
    finally:
        for stage in stages:
            stage.close()
    result = outs[0].stylized
    if result is None:
        raise RuntimeError("the stylizer returned no picture")  # pragma: no cover - stylizer bug
    return result, [w for stage in stages for w in getattr(stage, "warnings", [])]


def _optimize_picture(image: Any, st: StylizeOptions, op: OptimOptions, *, size: int | None,
                      init: str | os.PathLike[str] | None, progress: Callable[[Any], None] | None,
                      matte: Any = None) -> Any:
    from vidstyle.io.imagefiles import read_image
    from vidstyle.runtime import setup
    from vidstyle.stylize.optim import StyleOptimizer, optimize_image

    rt = setup(device=st.device, precision="float32", threads=st.threads)
    if size:
        image = _fit_long_side(image, size)
    styles = st.style or ()
    style_images = [read_image(s) if isinstance(s, str) else s for s in _optim_styles(st)]
    style_maps, content_map = _read_maps(op, styles, style_images, image)
    gain_reference, notes = None, []
    if op.portrait:
        from vidstyle.stylize.portrait import plan_portrait

        if len(styles) != 1 or style_maps is not None or styles[0].matte:
            raise OptionValueError("portrait", "portrait takes one style portrait: one `style` PATH, without mattes "
                                               "or maps", also=("style",))
        plan = plan_portrait(image, style_images[0], strict=op.portrait_strict)
        gain_reference = plan.aligned
        notes = [plan.note] if plan.note else []
    optimizer = StyleOptimizer(styles=style_images, style_mix=[s.weight for s in styles],
                               style_mattes=_read_mattes(styles, picture=True), style_maps=style_maps,
                               content_map=content_map,
                               gain_reference=gain_reference,
                               config=_optim_config(st, op), vgg=st.vgg_weights, vgg_convention=st.vgg_convention,
                               device=rt.device)
    init_image = None if init is None else read_image(init)
    mask = None if matte is None else matte.alpha(0, image.shape[:2])  # through the loss (vidstyle.losses.masked)
    result = optimize_image(image, styles=style_images, optimizer=optimizer, init_image=init_image, progress=progress,
                            mask=mask)
    return result, notes


def build_live_stylizer(
    *,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    models: Sequence[str | os.PathLike[str] | Any] | None = None,
    flow_scale: float | None = None,
    channels_last: bool | None = None,
    parallel_flow: bool | None = None,
    pipelined: bool = False,
) -> Any:
    """The stage graph of live mode: a :class:`~vidstyle.live.LiveStylizer` (flow + network + stabiliser, or
    with ``pipelined`` the stabiliser in a stage of its own; models and stabilisation switchable while it
    runs). Run the stages of its ``stages`` attribute, in order.

    Args:
        stylize: device, precision, compile, threads (and ``model``); default: live mode's
            ``StylizeOptions(precision="auto")``. Live mode is feed-forward, one frame at a time.
        temporal: ``stabilize`` (one number; ``None``: 0.85, or off when ``flow`` is ``"none"``) and
            ``flow``; default: live mode's ``TemporalOptions(flow="dis-ultrafast")``.
        models: the models to cycle through (names, paths or loaded models); ``stylize.model`` is
            put first when it is not among them. Default: ``[stylize.model]`` (the default model).
        flow_scale: compute the flow at this fraction of the frame size, in (0, 1] (default 1).
        channels_last: NHWC layout for the network (``None``: the stage's default).
        parallel_flow: overlap the flow with the network (``None``: decided from the cores).
        pipelined: run the stabiliser in a second stage, beside the network's next frame, where the flow
            overlaps (more fps on a saturated CPU, more latency; off by default).

    The process is set up once here (:func:`vidstyle.runtime.setup`); on a CPU the network gets one
    fewer thread than the cores unless ``stylize.threads`` says otherwise, so that capture and the
    flow keep a core. The first model is loaded here, so a bad one fails before a camera opens.
    """
    from vidstyle.live.stylizer import DEFAULT_LIVE_FLOW, DEFAULT_LIVE_FLOW_SCALE, LiveStylizer
    from vidstyle.runtime import default_threads, resolve_device, setup

    st = stylize if stylize is not None else StylizeOptions(precision="auto")
    tm = temporal if temporal is not None else TemporalOptions(flow=DEFAULT_LIVE_FLOW)
    if st.backend == "optim":
        raise OptionValueError("backend", "live mode uses the feed-forward or arbitrary back end; drop `backend` optim")
    if st.batch_size != 1:
        raise OptionValueError("batch_size", "live mode processes one frame at a time; drop `batch_size`")
    scale = DEFAULT_LIVE_FLOW_SCALE if flow_scale is None else flow_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 < scale <= 1.0:
        raise OptionValueError("flow_scale", f"flow_scale must be in (0, 1] (1 = full frame size), got {flow_scale!r}")
    if tm.stabilize is not None and not tm.stabilize.is_constant:
        raise OptionValueError("stabilize", "stabilize must be one number in live mode, not keyframes")
    use_flow = tm.flow != "none"
    if tm.stabilize is not None:
        tm.uses_flow(st.backend)  # a strength > 0 needs flow
        strength = tm.stabilize.keys[0][1]
    else:
        strength = tm.strength(st.backend).keys[0][1] if use_flow else 0.0
    from vidstyle.io.mattes import MatteSpec

    if any(s.matte and MatteSpec.parse(s.matte).is_sequence for s in st.style or ()):
        raise OptionValueError("style", "live mode takes one matte image per style, not a sequence (a camera has no "
                                        "frame numbers to follow)")
    if st.backend == "arbitrary":  # the painting is analysed once, here; other models stay selectable
        cycle = [_arbitrary_model(st), *(list(models) if models is not None else [])]
    else:
        cycle = list(models) if models is not None else [resolve_model(st.model)]
        if st.model is not None and st.model not in cycle:
            cycle.insert(0, st.model)
    threads = st.threads
    if threads is None and resolve_device(st.device).type == "cpu":
        threads = max(1, default_threads() - 1)
    rt = setup(device=st.device, precision=st.precision, threads=threads)

    def stage_factory(*, model: Any, stabilize: float) -> Stage:
        from vidstyle.stylize.feedforward import FeedForwardStage

        return FeedForwardStage(model=model, device=rt.device, compile=st.compile, channels_last=channels_last,
                                precision=st.precision, stabilize=stabilize, style_mix=st.style_mix,
                                style_strength=st.style_strength, stabilizer=tm.stabilizer, crossfade=tm.resample_fade,
                                style_scale=st.style_scale if st.backend == "feedforward" else 1.0)

    flow = None
    if use_flow:
        from vidstyle.flow.stage import FlowStage

        flow = FlowStage(estimator=tm.flow, work_scale=float(scale), device=rt.device)
    try:
        return LiveStylizer(models=cycle, stage_factory=stage_factory, flow=flow, stabilize=strength,
                            threads=rt.threads, parallel_flow=parallel_flow, pipelined=pipelined)
    except BaseException:
        if flow is not None:
            flow.close()
        raise
