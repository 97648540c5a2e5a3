"""After the chunks: blending the cross-faded frames, encoding a video output, removing the work
folder. Each step picks up where an interrupted one stopped (cross-fades already in the driver's
journal are not redone)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.errors import OutputError
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import Journal, RenderLayout, file_sha256
from vidstyle.render.plan import RenderPlan
from vidstyle.render.shot import Shot, default_codec

__all__ = ["crossfade", "encode_video", "EncodedVideo", "clean_up"]


def crossfade(
    *,
    plan: RenderPlan,
    layout: RenderLayout,
    done: set[int],
    journal: Journal,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Blend every cross-faded frame not in ``done`` from the two chunks' saved copies, write it
    under its final name and journal it (``xfade`` line); ``done`` is updated."""
    from vidstyle.render.chunk import write_frame

    for c in plan.chunks:
        for n, alpha in plan.crossfade_zone(c):
            if n in done:
                continue
            tail_path = layout.xfade_path("tail", n, c.id - 1)
            head_path = layout.xfade_path("head", n, c.id)
            if not (tail_path.is_file() and head_path.is_file()):
                raise OutputError(
                    f"cross-fade data of frame {n} is missing from '{layout.work}'; render again with --overwrite"
                )
            a = np.load(tail_path)
            b = np.load(head_path)
            blend = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
            if a.dtype.kind == "u":
                blend = np.clip(np.rint(blend), 0, np.iinfo(a.dtype).max)
            out = np.ascontiguousarray(blend.astype(a.dtype))
            path = layout.frame_path(n)
            pix = write_frame(path, out, layout=layout, number=n)
            journal.append({"e": "xfade", "n": n, "sha256": file_sha256(path), "pixels_sha256": pix,
                            "crossfade": {"with_chunk": c.id, "weight": round(alpha, 6)}})
            done.add(n)
            if on_frame is not None:
                on_frame()


@dataclass(frozen=True)
class EncodedVideo:
    """What :func:`encode_video` wrote: the file, its SHA-256, the encoder settings."""

    path: Path
    sha256: str
    encoder: dict[str, Any]
    timecode: str | None
    fps: str
    warnings: list[str] = field(default_factory=list)


def encode_video(
    *,
    job: RenderJob,
    shot: Shot,
    plan: RenderPlan,
    layout: RenderLayout,
    on_frame: Callable[[], None] | None = None,
) -> EncodedVideo:
    """Encode the rendered frames (``layout.frames``) into the job's video output, with the
    input's audio, start time and timecode."""
    from vidstyle.frame import Frame
    from vidstyle.io import SourceInfo, open_source
    from vidstyle.io.encode import VideoSink
    from vidstyle.render.chunk import read_frame

    numbers = plan.numbers
    fps = shot.fps or Fraction(24)
    start_time = 0.0
    audio_from = None
    if shot.kind == "video":
        with open_source(job.input, frames=(numbers[0], numbers[-1])) as src:
            start_time = src.info.start_time
        audio_from = job.input if shot.has_audio else None
    info = SourceInfo(
        kind=shot.kind, path=job.input, width=shot.width, height=shot.height, fps=fps, time_base=1 / fps,
        frame_count=len(numbers), duration=len(numbers) / float(fps), bit_depth=layout.bit_depth,
        rotation=0, audio_streams=1 if audio_from else 0, start_time=start_time, first_number=numbers[0],
        timecode=shot.timecode, colour_tags=shot.colour_tags,
    )
    declared = layout.colour.video_tags() if layout.colour is not None else None
    sink = VideoSink(job.output, info=info, codec=job.codec or default_codec(job.output), crf=job.crf,
                     pix_fmt=job.pix_fmt, preset=job.preset, bit_depth=layout.bit_depth,
                     audio_from=audio_from, overwrite=True, colour_tags=declared)
    try:
        for i, n in enumerate(numbers):
            image = read_frame(layout.frame_path(n), layout=layout)
            sink.write(Frame(index=i, image=image, number=n))
            if i % 8 == 0 and on_frame is not None:
                on_frame()
    except BaseException:
        sink.abort()
        Path(sink.temp_path).unlink(missing_ok=True)
        raise
    path = sink.close()
    encoder = {"codec": sink.settings.codec, "encoder": sink.settings.encoder,
               "pix_fmt": sink.settings.pix_fmt, "options": dict(sink.settings.options)}
    return EncodedVideo(path=Path(path), sha256=file_sha256(path), encoder=encoder, timecode=shot.timecode,
                        fps=str(fps), warnings=list(sink.warnings))


def clean_up(*, job: RenderJob, layout: RenderLayout) -> None:
    """Remove the work folder of a completed render (keeping the lossless frames of a video
    output when ``keep_frames``)."""
    work = Path(layout.work)
    if job.output_kind == "video" and job.keep_frames:
        for sub in ("state", "xfade"):
            shutil.rmtree(work / sub, ignore_errors=True)
        return
    shutil.rmtree(work, ignore_errors=True)
