"""Media I/O: sources that read frames and sinks that write outputs.

>>> from vidstyle.io import open_source, open_sink
>>> with open_source("clip.mp4", start="1.5", end="96f") as src:          # doctest: +SKIP
...     with open_sink("out.mp4", info=src.info, audio_from="clip.mp4") as sink:
...         for frame in src:
...             sink.write(frame)

Sources (:func:`open_source`): any file FFmpeg reads, FFmpeg inputs as ``FORMAT:NAME``
(``lavfi:testsrc2=size=640x360:rate=30``, ``v4l2:/dev/video0``), URLs, and image sequences
(``frames/%04d.png``, ``plates/shot.####.exr``, a folder, a glob).
Sinks (:func:`open_sink`): video files (``.mp4 .m4v .mov .mkv .webm .avi``), image sequences
(a pattern or a folder ending in ``/``) and ``null:``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

from vidstyle.colour.spaces import SRGB, ColourSpace, VideoTags
from vidstyle.errors import InvalidOptionError
from vidstyle.io.avinput import parse_av_spec
from vidstyle.io.base import NullSink, Sink, Source, SourceInfo
from vidstyle.io.encode import CODECS, EncoderSettings, VideoSink, resolve_encoder
from vidstyle.io.imagefiles import read_image, write_image, write_image_atomic
from vidstyle.io.images import ImageSequenceSink, ImageSequenceSource, is_image_spec, list_sequence
from vidstyle.io.output import check_output, output_kind, temp_path_for
from vidstyle.io.timespec import TimeSpec, parse_time
from vidstyle.io.video import VideoSource

__all__ = [
    "SourceInfo",
    "Source",
    "Sink",
    "NullSink",
    "VideoSource",
    "ImageSequenceSource",
    "VideoSink",
    "ImageSequenceSink",
    "EncoderSettings",
    "CODECS",
    "open_source",
    "open_sink",
    "check_output",
    "output_kind",
    "temp_path_for",
    "parse_time",
    "TimeSpec",
    "resolve_encoder",
    "read_image",
    "write_image",
    "write_image_atomic",
    "list_sequence",
]


def open_source(
    spec: str | os.PathLike[str],
    *,
    start: str | int | float | None = None,
    end: str | int | float | None = None,
    latest_only: bool = False,
    frames: tuple[int, int] | None = None,
    fps: Fraction | float | None = None,
    options: Mapping[str, str] | None = None,
) -> Source:
    """Open an input for reading frames.

    Args:
        spec: a video file, ``FORMAT:NAME`` (an FFmpeg input format and its input, e.g.
            ``lavfi:testsrc2=size=640x360:rate=30`` or ``v4l2:/dev/video0``), a URL, or an image
            sequence (``frames/%04d.png``, ``shot.####.exr``, a folder, a glob, one image).
        start: first frame to read: seconds (``2.5``, ``"2.5"``, ``"00:00:02.5"``) or a 0-based
            frame number (``48`` or ``"48f"``). Videos seek to the keyframe before and decode
            forward to the exact frame.
        end: where to stop, exclusive, in the same forms.
        latest_only: live inputs: the caller wants the newest frame only (used by live mode).
        frames: an inclusive range of frame numbers (``(1001, 1240)``): the files' own numbers
            for image sequences, 0-based frame numbers for videos. Combines with start/end.
        fps: frame rate of an image sequence (default 24); ignored for videos.
        options: FFmpeg demuxer options (e.g. ``{"video_size": "1280x720"}`` for a camera).

    Raises:
        InputNotFoundError, CorruptInputError, UnsupportedFormatError, InvalidInputError
        (no video stream, nothing selected, ``start`` after the end), InvalidOptionError
        (bad start/end), CameraError: each with a one-line message naming the remedy.
    """
    start_spec = parse_time(start, name="start")
    end_spec = parse_time(end, name="end")
    if frames is not None:
        a, b = frames
        if is_image_spec(spec):
            return ImageSequenceSource(spec, start=start_spec, end=end_spec, frames=(int(a), int(b)), fps=fps)
        if b < a:
            raise InvalidOptionError(f"frame range {a}-{b} is empty; give FIRST-LAST with FIRST ≤ LAST")
        start_spec = start_spec or TimeSpec(frame=int(a))
        end_spec = end_spec or TimeSpec(frame=int(b) + 1)
    text = os.fspath(spec)
    if parse_av_spec(text).format is None and "://" not in text and is_image_spec(text):
        return ImageSequenceSource(text, start=start_spec, end=end_spec, fps=fps)
    return VideoSource(text, start=start_spec, end=end_spec, latest_only=latest_only, options=options)


def open_sink(
    path: str | os.PathLike[str],
    *,
    info: SourceInfo,
    codec: str = "h264",
    crf: int | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    bit_depth: int | None = None,
    audio_from: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    start_number: int | None = None,
    colour: ColourSpace | None = None,
    colour_tags: VideoTags | None = None,
) -> Sink:
    """Open an output.

    ``path``: a video file (codec options apply; see :func:`resolve_encoder`), an image pattern
    or folder (``bit_depth`` and ``start_number`` apply; see :class:`ImageSequenceSink`), or
    ``null:`` (:class:`NullSink`). ``audio_from``: the input whose audio streams the video
    gets (usually the input file itself; ignored for image sequences). ``colour``: the colour
    space of the frames written (EXR headers; default sRGB, the networks' space);
    ``colour_tags``: a video's colour tags (default: the input's, else BT.709). A half-float EXR
    input gives a half-float EXR output unless ``bit_depth`` says otherwise.

    Raises (before any work): InvalidOptionError (bad codec/container/options), OutputError
    (output is the input, folder missing or unwritable), OutputExistsError (exists and not
    ``overwrite``).
    """
    kind = output_kind(path)
    if kind == "null":
        return NullSink()
    if kind == "images":
        check_output(path, input_spec=info.path, overwrite=overwrite)
        if bit_depth is None and info.half_float and Path(path).suffix.lower() == ".exr":
            bit_depth = 16
        return ImageSequenceSink(path, bit_depth=bit_depth, overwrite=overwrite, start_number=start_number,
                                 colour=colour or SRGB)
    return VideoSink(
        path,
        info=info,
        codec=codec,
        crf=crf,
        pix_fmt=pix_fmt,
        preset=preset,
        bit_depth=bit_depth,
        audio_from=audio_from,
        overwrite=overwrite,
        colour_tags=colour_tags,
    )
