"""Image sequences in and out: ``frames/%04d.png``, ``plates/shot.####.exr``, a folder, a glob."""

from __future__ import annotations

import glob as globlib
import os
import re
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidstyle.colour.spaces import SRGB, ColourSpace
from vidstyle.errors import (
    InputNotFoundError,
    InvalidInputError,
    InvalidOptionError,
    OutputError,
    ShapeError,
)
from vidstyle.frame import Frame
from vidstyle.io.base import Sink, Source, SourceInfo, frame_output
from vidstyle.io.imagefiles import (
    IMAGE_EXTS,
    SeqPattern,
    allowed_bit_depths,
    convert_depth,
    default_bit_depth,
    exr_is_half,
    image_bit_depth,
    parse_pattern,
    read_image,
    write_image_atomic,
)
from vidstyle.io.naming import with_parameter
from vidstyle.io.output import image_output_pattern, refuse_existing_frames
from vidstyle.io.timespec import TimeSpec, check_order

__all__ = ["ImageSequenceSource", "ImageSequenceSink", "list_sequence", "is_image_spec"]

_GLOB_CHARS = re.compile(r"[*?\[]")
_TRAILING_NUMBER = re.compile(r"(\d+)(?!.*\d)")
DEFAULT_FPS = Fraction(24)


def is_image_spec(spec: str | os.PathLike[str]) -> bool:
    """True when ``spec`` names an image sequence: a frame-number pattern, a glob, a folder or
    a single image file."""
    text = os.fspath(spec)
    p = Path(text)
    if p.is_dir():
        return True
    if p.is_file():
        return p.suffix.lower() in IMAGE_EXTS
    if parse_pattern(p) is not None:
        return True
    if _GLOB_CHARS.search(p.name):
        return True
    return p.suffix.lower() in IMAGE_EXTS


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _is_temp(name: str) -> bool:
    return name.startswith(".") or ".partial." in name


def _number_files(files: list[Path]) -> list[tuple[int | None, Path]]:
    """Files sorted by their trailing frame number when every one has a distinct number,
    else in natural name order without numbers."""
    numbers = []
    for f in files:
        m = _TRAILING_NUMBER.search(f.stem)
        numbers.append(int(m.group(1)) if m else None)
    if numbers and None not in numbers and len(set(numbers)) == len(numbers):
        return sorted(zip(numbers, files), key=lambda t: t[0])  # type: ignore[arg-type, return-value]
    return [(None, f) for f in sorted(files, key=_natural_key)]


def list_sequence(spec: str | os.PathLike[str]) -> list[tuple[int | None, Path]]:
    """The files of an image sequence, in order, with their frame numbers (``None`` when the
    names carry none).

    Raises:
        InputNotFoundError: the folder (or the pattern's folder, or a single file) is missing.
        InvalidInputError: nothing matches.
    """
    text = os.fspath(spec)
    p = Path(text)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTS and not _is_temp(f.name)]
        if not files:
            raise InvalidInputError(
                f"folder '{text}' contains no images ({', '.join(sorted(e[1:] for e in IMAGE_EXTS))}); "
                "check the path or give a pattern such as frames/%04d.png"
            )
        exts = [f.suffix.lower() for f in files]
        main_ext = max(set(exts), key=exts.count)  # a stray thumbnail of another type is ignored
        return _number_files([f for f in files if f.suffix.lower() == main_ext])
    if p.is_file():
        return _number_files([p])
    pattern = parse_pattern(p)
    if pattern is not None:
        if not pattern.folder.is_dir():
            raise InputNotFoundError(
                f"folder '{pattern.folder}' of the pattern '{text}' does not exist; check the path"
            )
        found = [(n, f) for n, f in pattern.existing() if not _is_temp(f.name)]
        if not found:
            raise InvalidInputError(f"no images match '{text}'; check the folder, the name and the number of digits")
        return found  # type: ignore[return-value]
    if _GLOB_CHARS.search(text):
        files = [Path(f) for f in globlib.glob(text) if Path(f).is_file() and not _is_temp(Path(f).name)]
        if not files:
            raise InvalidInputError(f"no files match '{text}'; check the folder and the pattern")
        return _number_files(files)
    raise InputNotFoundError(f"input '{text}' does not exist; check the path")


class ImageSequenceSource(Source):
    """Frames of an image sequence (PNG 8/16-bit, TIFF, JPEG, EXR → float32, DPX via FFmpeg...).

    Files are ordered by frame number (numbers come from the pattern, or from the trailing digits
    of the names). Timing: ``time_base = 1/fps`` and ``pts = number − first number of the
    sequence``, so gaps in the numbering keep their time (a warning lists them). ``Frame.number``
    is the file's frame number. All images must have the size of the first; depths are converted
    to the first image's. Images are read ahead by a small thread pool.
    """

    def __init__(
        self,
        spec: str | os.PathLike[str],
        *,
        start: TimeSpec | None = None,
        end: TimeSpec | None = None,
        frames: tuple[int, int] | None = None,
        fps: Fraction | float | None = None,
        prefetch: int = 4,
    ) -> None:
        super().__init__()
        self._spec = os.fspath(spec)
        self._fps = Fraction(fps).limit_denominator(1_000_000) if fps else DEFAULT_FPS
        if self._fps <= 0:
            raise InvalidOptionError(f"frame rate {fps} must be positive")
        entries = list_sequence(spec)
        numbered = entries[0][0] is not None
        base = entries[0][0] if numbered else 0
        items = [(i if n is None else n, i if n is None else n - base, f) for i, (n, f) in enumerate(entries)]
        # items: (number, pts, path)
        total = len(items)
        total_duration = float((items[-1][1] + 1) / self._fps)
        if frames is not None:
            a, b = frames
            if b < a:
                raise InvalidOptionError(f"frame range {a}-{b} is empty; give FIRST-LAST with FIRST ≤ LAST")
            sel = [it for it in items if a <= it[0] <= b]
            if not sel:
                raise InvalidInputError(
                    f"frames {a}-{b} are not in '{self._spec}' (it has frames {items[0][0]}-{items[-1][0]}); "
                    "choose a range inside it"
                )
            items = sel
        if start is not None or end is not None:
            items = self._select(items, start, end, total, total_duration)
        gaps = [(p[0], q[0]) for p, q in zip(items, items[1:]) if q[0] - p[0] > 1]
        if gaps and numbered:
            missing = sum(q - p - 1 for p, q in gaps)
            where = ", ".join(f"{p + 1}-{q - 1}" if q - p > 2 else str(p + 1) for p, q in gaps[:5])
            self.warnings.append(
                f"{missing} frame(s) missing from '{self._spec}' (numbers {where}); their time is kept empty"
            )
        self._items = items
        first = read_image(items[0][2])
        self._shape = first.shape
        self._depth = image_bit_depth(first)
        self._first_image: np.ndarray | None = first
        self._prefetch = max(1, prefetch)
        n_sel = len(items)
        self.info = SourceInfo(
            kind="images",
            path=self._spec,
            width=int(first.shape[1]),
            height=int(first.shape[0]),
            fps=self._fps,
            time_base=1 / self._fps,
            frame_count=n_sel,
            duration=float((items[-1][1] - items[0][1] + 1) / self._fps),
            bit_depth=self._depth,
            rotation=0,
            audio_streams=0,
            start_time=float(items[0][1] / self._fps),
            first_number=items[0][0],
            end_time=None if end is None else float((items[-1][1] + 1) / self._fps),
            codec=items[0][2].suffix.lower().lstrip("."),
            pix_fmt=None,
            half_float=items[0][2].suffix.lower() == ".exr" and exr_is_half(items[0][2]),
        )
        self._pool: ThreadPoolExecutor | None = None
        self._iter = self._frames()

    def _select(
        self,
        items: list[tuple[int, int, Path]],
        start: TimeSpec | None,
        end: TimeSpec | None,
        total: int,
        total_duration: float,
    ) -> list[tuple[int, int, Path]]:
        def keep_from(i: int, it: tuple[int, int, Path]) -> bool:
            if start is None:
                return True
            if start.frame is not None:
                return i >= start.frame
            return it[1] / self._fps >= start.seconds - 1e-6  # type: ignore[operator]

        def keep_until(i: int, it: tuple[int, int, Path]) -> bool:
            if end is None:
                return True
            if end.frame is not None:
                return i < end.frame
            return it[1] / self._fps < end.seconds - 1e-6  # type: ignore[operator]

        s0, e0 = (start.to_seconds(self._fps) if start else None), (end.to_seconds(self._fps) if end else None)
        check_order(start, end, s0, e0)
        sel = [it for i, it in enumerate(items) if keep_from(i, it) and keep_until(i, it)]
        if not sel:
            raise with_parameter(InvalidInputError(
                f"start {start} is after the end of '{self._spec}' ({total} frames, duration "
                f"{total_duration:.2f} s at {float(self._fps):g} fps); choose an earlier start"
            ), "start")
        return sel

    def _frames(self) -> Iterator[Frame]:
        tb = 1 / self._fps
        self._pool = ThreadPoolExecutor(max_workers=min(self._prefetch, 4), thread_name_prefix="vidstyle-imgread")
        pending: deque[Future[np.ndarray]] = deque()
        items = self._items
        nxt = 1
        for index, (number, pts, path) in enumerate(items):
            while nxt < len(items) and len(pending) < self._prefetch:
                pending.append(self._pool.submit(read_image, items[nxt][2]))
                nxt += 1
            if index == 0:
                image = self._first_image
                self._first_image = None
            else:
                image = pending.popleft().result()
            assert image is not None
            if image.shape != self._shape:
                raise InvalidInputError(
                    f"image '{path}' is {image.shape[1]}x{image.shape[0]} but the sequence is "
                    f"{self._shape[1]}x{self._shape[0]}; all frames must have the same size"
                )
            if image_bit_depth(image) != self._depth:
                image = convert_depth(image, self._depth)
            yield Frame(
                index=index, image=image, pts=pts, time_base=tb, number=number, capture_time=time.perf_counter()
            )
            self.frames_read = index + 1
        self._pool.shutdown(wait=False)

    def __iter__(self) -> Iterator[Frame]:
        return self._iter

    @property
    def frame_numbers(self) -> list[int]:
        """The frame number of every selected file, in order."""
        return [number for number, _, _ in self._items]

    def close(self) -> None:
        self._iter.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class ImageSequenceSink(Sink):
    """Writes each frame as an image named by a frame-number pattern (``out/%04d.png``,
    ``out/shot.####.exr``) or into a folder (``out/`` → ``out/000000.png``, ``.exr`` when
    ``bit_depth=32``).

    * The number of each file is ``start_number + frame.index`` when ``start_number`` is given,
      else ``frame.number`` (image-sequence inputs keep their own numbers), else ``frame.index``.
    * ``bit_depth``: 8 or 16 for PNG, 8/16/32 for TIFF, 16 (half) or 32 (float) for EXR, 8 for
      JPEG; ``None`` keeps the frames' own depth where the format has it (float → 16-bit PNG,
      uint16 → half EXR).
    * ``colour``: the colour space written into EXR headers (default :data:`~vidstyle.colour.spaces.SRGB`,
      the networks' space: without colour management the stylised frames are sRGB-encoded).
    * Every image is written under a temporary name (``0001.partial.png``) and renamed when
      complete, so no file under a final name is ever half written. The folder is created if
      missing. Existing frames matching the pattern are an error unless ``overwrite``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        bit_depth: int | None = None,
        overwrite: bool = False,
        start_number: int | None = None,
        colour: ColourSpace | None = SRGB,
    ) -> None:
        super().__init__()
        self.colour = colour
        self.pattern: SeqPattern = image_output_pattern(path, bit_depth=bit_depth)
        self._ext = Path("x" + self.pattern.suffix).suffix.lower()
        if bit_depth is not None and bit_depth not in allowed_bit_depths(self._ext):
            raise InvalidOptionError(
                f"{self._ext} images cannot be written with bit depth {bit_depth}; {self._ext} takes "
                f"{', '.join(map(str, allowed_bit_depths(self._ext)))}"
            )
        self._bit_depth = bit_depth
        self._start_number = start_number
        self.final_path = Path(str(self.pattern))
        self.temp_path = self.final_path
        if not overwrite:
            refuse_existing_frames(self.pattern)
        try:
            self.pattern.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(
                f"cannot create output folder '{self.pattern.folder}' ({e.strerror}); choose a writable place"
            ) from None
        self.last_written: Path | None = None

    def write(self, frame: Frame) -> None:
        image = frame_output(frame)
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ShapeError(
                f"frame {frame.index}: expected an H×W×3 RGB array, got {getattr(image, 'shape', type(image).__name__)}"
            )
        if self._start_number is not None:
            number = self._start_number + frame.index
        else:
            number = frame.number if frame.number is not None else frame.index
        final = self.pattern.path(number)
        depth = self._bit_depth or default_bit_depth(self._ext, image_bit_depth(image))
        write_image_atomic(final, image, bit_depth=depth, colour=self.colour)
        self.last_written = final
        self.frames_written += 1

    def close(self) -> Path:
        return self.final_path

    def abort(self) -> Path | None:
        """Every image written so far is complete; returns the pattern (``None`` if none was written)."""
        return self.final_path if self.frames_written else None
