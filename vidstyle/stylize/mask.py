"""Masks: the style only where the matte is white (see docs/masks.md).

:func:`composite` is ``out = a·S + (1 − a)·I`` with the matte's alpha ``a`` in [0, 1], the stylised
picture ``S`` and the input ``I``; :class:`MaskStage` applies it to every frame, after every other stage.

Why after the stabiliser, and not inside it: the stabiliser's history is the *un-composited* stylised
frame (the stage before this one keeps it), so

* no style can reach the unmasked area, whatever the warp does: those pixels are the input's, exactly
  (``a = 0`` gives ``I`` bit for bit);
* when the matte moves, the area it uncovers already has a stabilised stylised history, so the style
  there is as steady as anywhere else. Masking the warp instead would put photo pixels into the
  history along the matte's edge, and the next frames would drag them into the style as the matte moves.

The network and the stabiliser still run on the whole frame (their receptive fields need the context
around the matte); only the output is composited.
"""

from __future__ import annotations

import numpy as np

from vidstyle.errors import ShapeError
from vidstyle.frame import Frame, chw_to_hwc, from_float32, to_float32
from vidstyle.io.mattes import Matte

__all__ = ["MaskStage", "composite"]


def composite(stylized: np.ndarray, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha·stylized + (1 − alpha)·image`` in the dtype of ``image``: ``H×W×3`` pictures (uint8, uint16
    or float), ``alpha`` ``H×W`` in [0, 1]. Where ``alpha`` is 0 the result is ``image`` exactly."""
    if stylized.shape != image.shape or alpha.shape != image.shape[:2]:
        raise ShapeError(f"mask: picture {stylized.shape}, input {image.shape} and matte {alpha.shape} differ in size")
    a = np.asarray(alpha, dtype=np.float32)[:, :, None]
    s, i = to_float32(stylized), to_float32(image)
    out = from_float32(a * s + (1.0 - a) * i, image.dtype)  # a = 0 gives i, a = 1 gives s, exactly
    if image.dtype.kind != "f":
        out[a[:, :, 0] <= 0] = image[a[:, :, 0] <= 0]  # exact where unmasked, whatever the conversions
    return out


class MaskStage:
    """Pipeline stage: ``frame.stylized`` composited over ``frame.image`` through the matte of
    ``frame.frame_number`` (:class:`~vidstyle.io.mattes.Matte`); the last stage of a masked run.

    Frames without a stylized picture pass unchanged (a render's primer frame). ``warnings`` collects
    the matte's notes (a resized matte), for the run's summary.
    """

    name = "mask"

    def __init__(self, *, matte: Matte) -> None:
        self.matte = matte

    @property
    def warnings(self) -> list[str]:
        return self.matte.warnings

    def process(self, frame: Frame) -> list[Frame]:
        y = frame.stylized
        if y is None:
            return [frame]
        if y.dtype == np.float32 and y.ndim == 3 and y.transpose(2, 0, 1).flags.c_contiguous:  # a raw planar view
            y = chw_to_hwc(y.transpose(2, 0, 1))
        alpha = self.matte.alpha(frame.frame_number, (frame.height, frame.width))
        frame.stylized = composite(y, frame.image, alpha)
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MaskStage(matte={self.matte.spec.text!r})"
