"""What every source and sink shares: :class:`SourceInfo`, and the :class:`Source` / :class:`Sink` bases."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from vidstyle.colour.spaces import VideoTags
from vidstyle.frame import Frame

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = ["SourceInfo", "Source", "Sink", "NullSink"]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source knows about its frames before they are read.

    Attributes:
        kind: ``"video"`` (a file or stream FFmpeg reads, including ``lavfi:`` inputs),
            ``"images"`` (an image sequence) or ``"device"`` (a camera or other FFmpeg input
            device given as ``FORMAT:NAME``, or a live network stream).
        path: the input exactly as the user gave it.
        width, height: frame size in pixels, **after** rotation metadata is applied.
        fps: average (nominal) frame rate; image sequences use the rate given to
            :func:`open_source` (default 24). ``None`` if unknown.
        time_base: unit of :attr:`Frame.pts` in seconds.
        frame_count: number of frames in the selection (exact for image sequences and
            frame-number selections of constant-rate files, an estimate otherwise), ``None`` if
            unknown (live inputs, infinite generators).
        duration: seconds covered by the selection, ``None`` if unknown.
        bit_depth: what :attr:`Frame.image` carries: 8 (uint8), 16 (uint16, full 0..65535) or
            32 (float32).
        rotation: degrees the coded pictures were rotated **clockwise** to display them
            (0/90/180/270; the convention of the classic ``rotate`` tag: a portrait phone clip
            says 90). Frames are already rotated.
        audio_streams: number of audio streams in the input.
        start_time: input-timeline time (seconds, ``pts × time_base``) of the first selected
            frame; sinks trim the audio from here.
        first_number: image sequences: frame number of the first selected file.
        end_time: input-timeline time (seconds) where the selection ends (exclusive), ``None``
            when it runs to the end of the input.
        codec: the input's video codec name (``"h264"``, ``"prores"``, ``"png"``...), if known.
        pix_fmt: the input's pixel format as decoded (``"yuv420p10le"``...), if known.
        timecode: the input's start timecode (``"01:00:00:00"``) where the container has one,
            already offset to the first selected frame.
        colour_tags: the video stream's colour tags (primaries, transfer, matrix), ``None`` for
            image sequences; video outputs carry them over.
        half_float: the frames are half floats in the file (EXR ``HALF``; :attr:`bit_depth` is 32
            because they travel as float32): an EXR output is written as half by default.
    """

    kind: str
    path: str
    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction | None
    frame_count: int | None
    duration: float | None
    bit_depth: int
    rotation: int
    audio_streams: int
    start_time: float
    first_number: int | None
    end_time: float | None = None
    codec: str | None = None
    pix_fmt: str | None = None
    timecode: str | None = None
    colour_tags: VideoTags | None = None
    half_float: bool = False


class _Managed:
    """A context manager that ends with :meth:`_leave` (``ok``: the block ended without an exception)."""

    def _leave(self, ok: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave(exc_type is None)


class Source(_Managed):
    """A source of frames: a context manager; iterating yields :class:`~vidstyle.frame.Frame`
    objects in presentation order, each with ``index`` counting from 0 within the selection.

    A source is iterated once (a second ``iter()`` continues where the first stopped).
    ``warnings`` collects non-fatal problems found while reading (e.g. a truncated file), as
    one-line messages for the caller to show.
    """

    info: SourceInfo

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def frame_numbers(self) -> Sequence[int] | None:
        """The :attr:`Frame.frame_number` of every frame the source will give, in order, where it
        knows them before reading (``None`` otherwise: cameras, unknown lengths)."""
        return None

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _leave(self, ok: bool) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"<{type(self).__name__} {i.path!r} {i.width}x{i.height} fps={i.fps} frames={i.frame_count}>"


class Sink(_Managed):
    """Where frames go: a context manager. Leaving the ``with`` block normally calls
    :meth:`close` (the output appears under its final name); leaving it with an exception calls
    :meth:`abort` (what was written is kept, playable, under :attr:`temp_path`)."""

    final_path: Path
    temp_path: Path

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.frames_written = 0

    def write(self, frame: Frame) -> None:  # pragma: no cover - abstract
        """Write ``frame.stylized`` (or ``frame.image`` when ``stylized`` is ``None``)."""
        raise NotImplementedError

    def close(self) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    def abort(self) -> Path | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _leave(self, ok: bool) -> None:
        if ok:
            self.close()
        else:
            self.abort()


class NullSink(Sink):
    """Discards frames (benchmarks, dry runs); counts them in :attr:`frames_written`."""

    def __init__(self) -> None:
        super().__init__()
        self.final_path = Path(os.devnull)
        self.temp_path = Path(os.devnull)

    def write(self, frame: Frame) -> None:
        self.frames_written += 1

    def close(self) -> Path:
        return self.final_path

    def abort(self) -> Path | None:
        return None


def frame_output(frame: Frame) -> object:
    """The picture a sink writes for ``frame``: ``stylized`` when set, else ``image``."""
    return frame.stylized if frame.stylized is not None else frame.image
