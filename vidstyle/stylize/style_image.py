"""Preparing a style image before it is analysed: rotation (the strokes' direction).

:func:`rotate_image` turns the painting by ``degrees`` counter-clockwise and keeps the largest upright
rectangle inside the turned picture, so no empty corner enters the style's statistics. Rotating the
painting rotates its strokes: a painting of horizontal strokes, turned by 90°, makes vertical ones. The
arbitrary and optimisation back ends analyse the turned painting (``style_rotate``; ``--style-rotate``).
"""

from __future__ import annotations

import math

import numpy as np

from vidstyle.options.spec import OptionValueError

__all__ = ["inscribed_size", "rotate_image"]


def inscribed_size(width: int, height: int, degrees: float) -> tuple[int, int]:
    """``(w, h)`` of the largest axis-aligned rectangle inside a ``width×height`` picture turned by
    ``degrees`` (centred; the classic closed form: half-constrained when the picture is thin)."""
    a = math.radians(degrees) % math.pi
    if a > math.pi / 2:
        a = math.pi - a
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    if sin_a < 1e-12:
        return width, height
    if cos_a < 1e-12:
        return height, width
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short_side
        wr, hr = (x / sin_a, x / cos_a) if width >= height else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (width * cos_a - height * sin_a) / cos_2a, (height * cos_a - width * sin_a) / cos_2a
    return max(1, int(math.floor(wr + 1e-6))), max(1, int(math.floor(hr + 1e-6)))


def rotate_image(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` (``H×W×C``, any dtype OpenCV warps) turned ``degrees`` counter-clockwise, cropped to the
    largest upright rectangle inside it (bicubic; quarter turns are exact)."""
    import cv2

    if not math.isfinite(degrees):
        raise OptionValueError("style_rotate", f"style_rotate must be a number of degrees, got {degrees!r}")
    turns = degrees / 90.0
    if abs(turns - round(turns)) < 1e-9:
        return np.ascontiguousarray(np.rot90(image, k=int(round(turns)) % 4))
    h, w = image.shape[:2]
    wr, hr = inscribed_size(w, h, degrees)
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
    m[0, 2] += (wr - 1) / 2.0 - (w - 1) / 2.0
    m[1, 2] += (hr - 1) / 2.0 - (h - 1) / 2.0
    out = cv2.warpAffine(image, m, (wr, hr), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(out if out.ndim == image.ndim else out[..., None])
