"""The Python API: :func:`stylize_video` (and :func:`stylize_image` for one picture).

>>> import vidstyle
>>> stats = vidstyle.stylize_video("in.mp4", "out.mp4", model="starry_tiny")  # doctest: +SKIP
>>> print(f"{stats.frames} frames at {stats.fps:.1f} fps -> {stats.output}")  # doctest: +SKIP

Everything is checked before any work starts (option values, output path, input, model), so bad
input fails in well under a second with one :class:`~vidstyle.errors.VidstyleError` and nothing is
written. The output goes to a temporary file next to the final one and is renamed only when complete.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidstyle.errors import InvalidOptionError
from vidstyle.pipeline import ProgressInfo, RunStats, Stage, run_pipeline

__all__ = ["build_stages", "stylize_image", "stylize_video", "validate_options"]

#: Flow estimator names that disable the flow stage.
NO_FLOW = ("none", "off", "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_options(
    *,
    output: str | os.PathLike[str] | None = None,
    codec: str = "h264",
    crf: int | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    batch_size: int = 1,
    stabilize: float | None = None,
    start: float | int | str | None = None,  # noqa: PYI041 - int means a frame number
    end: float | int | str | None = None,  # noqa: PYI041
    queue_size: int = 8,
) -> None:
    """Check option values before any work; raise :class:`~vidstyle.errors.InvalidOptionError`
    with a one-line remedy. Encoder options (codec, CRF range per codec, pixel format, preset,
    codec vs container) are checked against ``output`` when it is a video file."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidOptionError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    if stabilize is not None and (not _is_number(stabilize) or math.isnan(stabilize) or not 0.0 <= stabilize <= 1.0):
        raise InvalidOptionError(f"--stabilize must be between 0 (off) and 1 (strongest), got {stabilize!r}")
    if not isinstance(queue_size, int) or isinstance(queue_size, bool) or queue_size < 1:
        raise InvalidOptionError(f"queue_size must be an integer >= 1, got {queue_size!r}")
    from vidstyle.io.timespec import parse_time

    t0, t1 = parse_time(start, name="start"), parse_time(end, name="end")
    if t0 is not None and t1 is not None:
        both_seconds = t0.seconds is not None and t1.seconds is not None
        both_frames = t0.frame is not None and t1.frame is not None
        if (both_seconds and t1.seconds <= t0.seconds) or (both_frames and t1.frame <= t0.frame):  # type: ignore[operator]
            raise InvalidOptionError(f"--end ({t1}) must be after --start ({t0}); swap them or drop --end")
    if not isinstance(codec, str) or not codec:
        raise InvalidOptionError(f"--codec must be a codec name, got {codec!r}")
    if output is not None:
        from vidstyle.io.encode import resolve_encoder
        from vidstyle.io.output import VIDEO_EXTS, output_kind

        if output_kind(output) == "video":
            container = VIDEO_EXTS[Path(output).suffix.lower()]
            resolve_encoder(codec=codec, container_format=container, crf=crf, pix_fmt=pix_fmt, preset=preset)


def _resolve_model(model: str | os.PathLike[str] | Any | None) -> Any:
    """``None`` means the default model of the registry."""
    if model is not None:
        return model
    from vidstyle.nets import registry

    default = getattr(registry, "DEFAULT_MODEL", None)
    if default:
        return default
    models = registry.list_models()
    if not models:
        from vidstyle.errors import ModelError

        raise ModelError("no shipped model found; pass --model PATH to a .safetensors model file")
    return models[0].name


def build_stages(
    *,
    model: str | os.PathLike[str] | Any | None = None,
    device: str | None = None,
    batch_size: int = 1,
    compile: bool = False,
    stabilize: float | None = None,
    flow: str | None = "dis-fast",
    threads: int | None = None,
    precision: str = "float32",
    separate_stabilizer: bool = True,
) -> list[Stage]:
    """The stages of a feed-forward run: ``[flow], stylize, [stabilize]`` (flow only when stabilising).

    On a CPU the stabiliser runs as a stage of its own
    (:class:`~vidstyle.stylize.stabilize.StabilizeStage`, its own thread: it overlaps the network's
    next frame); ``separate_stabilizer=False``, or another device, keeps it inside the stylize stage.
    The output is the same either way. The model is loaded here, so an unknown name or a bad file
    fails before any output is created.
    """
    from vidstyle.stylize.feedforward import FeedForwardStage, resolve_device
    from vidstyle.stylize.temporal import DEFAULT_STRENGTH

    strength = DEFAULT_STRENGTH if stabilize is None else float(stabilize)
    use_flow = strength > 0 and flow is not None and str(flow).strip().lower() not in NO_FLOW
    split = use_flow and separate_stabilizer and resolve_device(device).type == "cpu"
    stylize = FeedForwardStage(
        model=_resolve_model(model), device=device, batch_size=batch_size, compile=compile, threads=threads,
        precision=precision, stabilize=0.0 if split else strength, raw_output=split,
    )
    stages: list[Stage] = []
    try:
        if stabilize and stabilize > 0 and not use_flow:
            raise InvalidOptionError(
                "--stabilize needs optical flow; pick a --flow estimator (e.g. dis-fast) or use --stabilize 0"
            )
        if use_flow:
            from vidstyle.flow.stage import FORWARD_FLOW, FlowStage

            stages.append(FlowStage(estimator=str(flow), device=device,
                                    forward_estimator=FORWARD_FLOW.get(str(flow).strip().lower())))
        stages.append(stylize)
        if split:
            from vidstyle.stylize.stabilize import StabilizeStage

            # its own Stabilizer: the runner closes (resets) each stage when that stage's thread ends
            stages.append(StabilizeStage(strength=strength))
    except BaseException:
        stylize.close()
        raise
    return stages


def _input_has_audio(info: Any) -> bool:
    audio = getattr(info, "audio_streams", None)
    if isinstance(audio, int):
        return audio > 0
    return bool(audio)


def stylize_video(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | Any | None = None,
    device: str | None = None,
    codec: str = "h264",
    crf: int | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    start: float | int | str | None = None,  # noqa: PYI041 - int means a frame number
    end: float | int | str | None = None,  # noqa: PYI041
    overwrite: bool = False,
    batch_size: int = 1,
    compile: bool = False,
    stabilize: float | None = None,
    flow: str | None = "dis-fast",
    progress: Callable[[ProgressInfo], None] | None = None,
    queue_size: int = 8,
    threads: int | None = None,
    precision: str = "float32",
    stop: threading.Event | None = None,
    stages: Sequence[Stage] | None = None,
) -> RunStats:
    """Stylize a video (or image sequence) into a new video (or image sequence), keeping its audio.

    Args:
        input: a video file, an image sequence (``frames/%04d.png``, a folder or a glob), or an
            FFmpeg input ``format:name`` (e.g. ``lavfi:testsrc2=size=640x360:rate=30``).
        output: a video file (container from the extension) or an image-sequence pattern/folder.
        model: a shipped model name (see ``vidstyle models``), a ``.safetensors`` path, or a loaded
            ``StyleModel``; ``None`` = the default shipped model.
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); ``None`` = best available.
        codec, crf, pix_fmt, preset: encoder settings (defaults: H.264, CRF 18, yuv420p, medium).
        start, end: the part to process, in seconds (float), frames (int) or a string the source
            understands (``"1.5"``, ``"00:00:01.5"``, ``"45f"``).
        overwrite: replace an existing output.
        batch_size: frames per network call.
        compile: use ``torch.compile`` (slow first call, faster after).
        stabilize: temporal stabilisation strength in [0, 1] (``None`` = the stylizer's default);
            uses optical flow from ``flow``.
        flow: flow estimator for stabilisation (``"dis-fast"``, ``"farneback"``, ``"raft"``…) or ``"none"``.
        progress: called after each written frame with a :class:`~vidstyle.pipeline.ProgressInfo`.
        queue_size: frames each queue between two stages may hold.
        threads: torch intra-op threads (``None`` = sensible default).
        precision: the network's number format: ``"float32"`` (exact), ``"bfloat16"``, ``"float16"``
            (GPUs) or ``"auto"`` (bfloat16 on CPUs that have it natively: ~2x faster, ~0.5 of 255 levels off).
        stop: set it (from another thread) to end the run early but cleanly; the output is kept.
        stages: custom stages replacing the default ``[flow], stylize`` (model options are then ignored).

    Returns:
        :class:`~vidstyle.pipeline.RunStats` (``output`` is the final path, ``warnings`` what the
        input reader noticed, e.g. a truncated file).

    Raises:
        VidstyleError: bad options, input, model or output, one line with a remedy. If the run
            fails half-way, the exception's ``partial_output`` names the playable partial file.
        KeyboardInterrupt: after a clean shutdown, with ``partial_output`` attached.
    """
    from vidstyle.io import check_output, open_sink, open_source

    stage_list: list[Stage] = list(stages) if stages is not None else []
    handed_over = False  # once run_pipeline has the stages, it closes them
    try:
        validate_options(output=output, codec=codec, crf=crf, pix_fmt=pix_fmt, preset=preset, batch_size=batch_size,
                         stabilize=stabilize, start=start, end=end, queue_size=queue_size)
        with open_source(input, start=start, end=end) as source:
            check_output(output, input_spec=input, overwrite=overwrite)
            if stages is None:
                stage_list = build_stages(model=model, device=device, batch_size=batch_size, compile=compile,
                                          stabilize=stabilize, flow=flow, threads=threads, precision=precision)
            info = source.info
            audio_from = input if getattr(info, "kind", None) in ("video", "file") and _input_has_audio(info) else None
            sink = open_sink(output, info=info, codec=codec, crf=crf, pix_fmt=pix_fmt, preset=preset,
                             audio_from=audio_from, overwrite=overwrite)
            handed_over = True
            return run_pipeline(source=source, stages=stage_list, sink=sink, queue_size=queue_size,
                                progress=progress, stop=stop)
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
    model: str | os.PathLike[str] | Any | None = None,
    device: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Stylize one picture with a feed-forward model; returns the written path.

    Reads and writes anything OpenCV does (PNG/JPEG/TIFF/WebP…, 8 or 16 bit; 16-bit stays 16-bit).
    """
    import cv2
    import numpy as np

    from vidstyle.errors import (
        CorruptInputError,
        InputNotFoundError,
        OutputError,
        OutputExistsError,
    )
    from vidstyle.frame import Frame

    src, dst = Path(input), Path(output)
    if not src.is_file():
        raise InputNotFoundError(f"{src}: no such file; check the path")
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"{dst} is the input; choose a different output path")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst} exists; pass overwrite=True (--overwrite) to replace it")
    if not dst.parent.is_dir() or not os.access(dst.parent, os.W_OK):
        raise OutputError(f"cannot write into {dst.parent}: folder missing or not writable; choose another output")
    image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim not in (2, 3) or image.size == 0:
        raise CorruptInputError(f"{src}: not a readable image; check the file (PNG, JPEG, TIFF, WebP...)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    stages = build_stages(model=model, device=device, stabilize=0.0, flow="none")
    frame = Frame(index=0, image=np.ascontiguousarray(image))
    try:
        outs: list[Frame] = [frame]
        for stage in stages:
            outs = [out for f in outs for out in stage.process(f)] + stage.finish()
    finally:
        for stage in stages:
            stage.close()
    result = outs[0].stylized
    if result is None:
        raise RuntimeError("the stylizer returned no picture")  # pragma: no cover - stylizer bug
    tmp = dst.with_name(f".{dst.stem}.vidstyle-tmp{dst.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(result, cv2.COLOR_RGB2BGR)):
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {dst}: unsupported image extension; use .png, .jpg or .tif")
    os.replace(tmp, dst)
    return dst
