"""Mattes: where to stylise, one grey picture per frame (``matte.%04d.png``) or one for all frames.

A matte is read as an alpha in [0, 1] (``H×W`` float32): a grey picture gives its value, a colour one
its BT.601 luminance (:func:`vidstyle.colour.luma`), a picture with a non-opaque alpha channel that
alpha (what keyers export). Soft values are kept: they make the soft edge of the composite.

Frame ``n`` of the input goes with matte ``n`` of the sequence: the input's own frame numbers for an
image sequence (``shot.1001.exr`` takes ``matte.1001.png``), the position in the file (0-based, ``--start``
included) for a video. A sequence that lacks a frame the input has is an error naming the first missing
file: a held or guessed matte would put the style in the wrong place without a word.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidstyle.errors import InputNotFoundError, InvalidInputError
from vidstyle.io.imagefiles import SeqPattern, parse_pattern
from vidstyle.io.naming import with_parameter

__all__ = ["Matte", "MatteSpec", "matte_alpha", "read_matte"]


def matte_alpha(image: np.ndarray) -> np.ndarray:
    """``H×W`` float32 alpha in [0, 1] of a matte picture: grey ``H×W`` / ``H×W×1`` as it is, RGB by
    its luminance, RGBA by its alpha channel when that is not fully opaque (else by the RGB luminance).
    Integers are scaled by their full range (uint8 by 255, uint16 by 65535); floats are clipped."""
    from vidstyle.colour import luma

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        top = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(image.dtype, 1.0)
        alpha = image[:, :, 3]
        if float(alpha.min()) < top:
            return np.clip(luma(np.ascontiguousarray(alpha)), 0.0, 1.0)
        image = np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 2:  # grey + alpha
        image = np.ascontiguousarray(image[:, :, :1])
    return np.clip(luma(image), 0.0, 1.0).astype(np.float32, copy=False)


def read_matte(path: str | os.PathLike[str], *, parameter: str = "mask") -> np.ndarray:
    """The alpha (:func:`matte_alpha`) of the matte file at ``path``; a missing or unreadable file is
    a one-line error naming it and the option (``parameter``) that gave it."""
    import cv2

    from vidstyle.io.imagefiles import read_image

    p = Path(path)
    if not p.is_file():
        raise with_parameter(InputNotFoundError(
            f"{parameter}: matte '{p}' does not exist; check the `{parameter}` path"), parameter)
    if p.suffix.lower() != ".exr":
        data = np.fromfile(p, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if img is not None:
            if img.ndim == 3 and img.shape[2] >= 3:  # OpenCV's BGR(A) to RGB(A); luminance needs the order
                img = np.ascontiguousarray(img[:, :, [2, 1, 0, *range(3, img.shape[2])]])
            return matte_alpha(img)
    try:
        return matte_alpha(read_image(p))  # EXR, and what only FFmpeg decodes
    except InvalidInputError as exc:
        raise with_parameter(InvalidInputError(f"{parameter}: {exc}"), parameter) from None


@dataclass(frozen=True, slots=True)
class MatteSpec:
    """What ``mask`` names: one picture for every frame, or a sequence ``matte.%04d.png`` / ``matte.####.png``."""

    text: str
    pattern: SeqPattern | None

    @classmethod
    def parse(cls, value: str | os.PathLike[str]) -> MatteSpec:
        text = os.fspath(value)
        p = Path(text)
        pattern = None if p.is_file() else parse_pattern(p)
        return cls(text=text, pattern=pattern)

    @property
    def is_sequence(self) -> bool:
        return self.pattern is not None

    def path(self, number: int) -> Path:
        """The file of frame ``number`` (the one picture when this is not a sequence)."""
        return self.pattern.path(number) if self.pattern is not None else Path(self.text)


class Matte:
    """The mattes of a run: :meth:`alpha` gives frame ``number``'s alpha at a frame size.

    Construction checks that the matte exists (the one picture, or at least one file of the sequence),
    so a wrong path fails before any output is created; :meth:`check_covers` checks a whole frame range.
    A matte of another size than the frames is resized to them (bilinear; area when shrinking) and the
    first such resize is reported once in :attr:`warnings` (the command line prints it as a warning).
    Thread-safe; the one picture of a still matte is read once.
    """

    def __init__(self, spec: str | os.PathLike[str] | MatteSpec, *, parameter: str = "mask") -> None:
        self.spec = spec if isinstance(spec, MatteSpec) else MatteSpec.parse(spec)
        #: the option that gave the matte, named in errors and notes (``mask``; ``style`` for region mattes)
        self.parameter = parameter
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._still: np.ndarray | None = None
        self._resized: dict[tuple[int, int], np.ndarray] = {}
        pattern = self.spec.pattern
        if pattern is None:
            self._still = read_matte(self.spec.text, parameter=parameter)
        else:
            if not pattern.folder.is_dir():
                raise with_parameter(InputNotFoundError(
                    f"{parameter}: folder '{pattern.folder}' of the matte sequence '{self.spec.text}' does not exist; "
                    f"check the `{parameter}` path"), parameter)
            if not pattern.existing():
                raise with_parameter(InputNotFoundError(
                    f"{parameter}: no files match the matte sequence '{self.spec.text}'; check the folder, the name "
                    f"and the number of digits of `{parameter}`"), parameter)

    @property
    def is_sequence(self) -> bool:
        return self.spec.is_sequence

    def first_number(self) -> int:
        """The first frame number the sequence has (0 for one picture)."""
        if self.spec.pattern is None:
            return 0
        return min(n for n, _ in self.spec.pattern.existing())

    def check_covers(self, numbers: Iterable[int]) -> None:
        """Raise (naming the first missing file) unless the sequence has a matte for every frame number."""
        if self.spec.pattern is None:
            return
        have = {n for n, _ in self.spec.pattern.existing()}
        wanted = list(numbers)
        missing = [n for n in wanted if n not in have]
        if missing:
            raise self._missing(missing[0], wanted, have)

    def _missing(self, number: int, wanted: list[int] | None, have: set[int] | None) -> InvalidInputError:
        path = self.spec.path(number)
        if have is None and self.spec.pattern is not None:
            have = {n for n, _ in self.spec.pattern.existing()}
        span = f"; the sequence has frames {min(have)}-{max(have)}" if have else ""
        need = f" (the input has frames {wanted[0]}-{wanted[-1]})" if wanted else ""
        return with_parameter(InvalidInputError(
            f"{self.parameter}: no matte for frame {number}: '{path}' is missing{span}{need}; the matte sequence "
            "must cover every frame of the input"), self.parameter)

    def read(self, number: int) -> np.ndarray:
        """Frame ``number``'s alpha at the matte file's own size."""
        if self._still is not None:
            return self._still
        path = self.spec.path(number)
        if not path.is_file():
            raise self._missing(number, None, None)
        return read_matte(path, parameter=self.parameter)

    def alpha(self, number: int, size: tuple[int, int]) -> np.ndarray:
        """Frame ``number``'s alpha, ``H×W`` float32 in [0, 1] at ``size = (H, W)``."""
        base = self.read(number)
        if base.shape[:2] == tuple(size):
            return base
        with self._lock:
            cached = self._resized.get(size) if self._still is not None else None
        if cached is not None:
            return cached
        out = self._resize(base, size, number=number)
        if self._still is not None:
            with self._lock:
                self._resized[size] = out
        return out

    def _resize(self, base: np.ndarray, size: tuple[int, int], *, number: int) -> np.ndarray:
        import cv2

        h, w = size
        bh, bw = base.shape[:2]
        with self._lock:
            if not self.warnings:
                self.warnings.append(
                    f"{self.parameter}: matte '{self.spec.path(number)}' is {bw}x{bh}, the frames {w}x{h}: resized to the "
                    "frame size (export the mattes at the plate's size to avoid it)")
        interp = cv2.INTER_AREA if bw > w and bh > h else cv2.INTER_LINEAR
        return np.clip(cv2.resize(base, (w, h), interpolation=interp), 0.0, 1.0).astype(np.float32, copy=False)
