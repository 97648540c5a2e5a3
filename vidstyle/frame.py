"""The one thing that travels through the pipeline: :class:`Frame`."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["Frame", "chw_to_hwc", "to_float32", "from_float32"]


@dataclass(slots=True)
class Frame:
    """One video frame and what the stages add to it.

    Attributes:
        index: position in the stream as decoded, 0-based, after ``start`` selection
            (the pipeline keeps frames in this order).
        image: the input picture, RGB, ``H×W×3``, C-contiguous. ``uint8`` for 8-bit sources,
            ``uint16`` for 16-bit sources (full 0..65535 range) and ``float32`` for float sources
            (nominal range 0..1, may exceed it: EXR).
        pts: presentation timestamp in units of ``time_base`` (``None`` for image sequences
            without timing: sinks then use ``index`` at the stream's frame rate).
        time_base: the unit of ``pts`` as a fraction of a second.
        number: the frame number of image sequences (e.g. 1001 for ``shot.1001.exr``); equals
            ``index`` for videos unless the source says otherwise.
        capture_time: ``time.perf_counter()`` when the frame was captured or decoded (live
            latency is measured from it).
        flow_bwd: flow from this frame back to the previous processed one, ``2×H×W`` float32 in
            pixels: for each pixel x of this frame, ``x + flow_bwd(x)`` is where it was in the
            previous frame. ``None`` for the first frame or when no flow stage runs.
        flow_fwd: flow from the previous processed frame to this one, ``2×H×W`` float32.
        consistency: ``H×W`` float32 mask, 1 where the pixel was visible in the previous frame
            (forward-backward check and motion boundaries), 0 where disoccluded.
        scene_cut: ``True`` where the flow stage detected a cut between the previous frame and
            this one (temporal state must not carry across it).
        warp_error: ``H×W`` float32, ``|Y_t(x) − Y_{t−1}(x + flow_bwd(x))|``: how far this input frame's
            luminance (0..1) is from the previous one warped by ``flow_bwd`` (the flow stage's photometric
            check, also used for cut detection); ``None`` with the flow.
        stylized: the output picture, same layout and dtype rules as ``image``.
        extra: free-form per-stage annotations (kept small).
    """

    index: int
    image: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None
    number: int | None = None
    capture_time: float | None = None
    flow_bwd: np.ndarray | None = None
    flow_fwd: np.ndarray | None = None
    consistency: np.ndarray | None = None
    scene_cut: bool = False
    warp_error: np.ndarray | None = None
    stylized: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_number(self) -> int:
        """``number`` when the source gave one, else ``index``: what keyframed options are keyed by."""
        return self.index if self.number is None else self.number

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or ``None`` if unknown."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def to_float32(image: np.ndarray) -> np.ndarray:
    """Convert an ``H×W×C`` uint8/uint16/float image to float32 in nominal 0..1."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * (1.0 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * (1.0 / 65535.0)
    if image.dtype in (np.float32, np.float16, np.float64):
        return image.astype(np.float32, copy=False)
    raise TypeError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def from_float32(image: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Convert a float image in nominal 0..1 to ``dtype`` (uint8, uint16: rounded and clipped)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(image * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    if dtype.kind == "f":
        return image.astype(dtype, copy=False)
    raise TypeError(f"unsupported image dtype {dtype}; expected uint8, uint16 or float")


def chw_to_hwc(planes: np.ndarray) -> np.ndarray:
    """``C×H×W`` planes → a contiguous ``H×W×C`` picture, the same values.

    For 1–4 planes of uint8, uint16 or float32 this interleaves with OpenCV's ``merge``, about 7× faster
    than numpy's strided copy (0.12 vs 0.85 ms for a 640×360 float32 RGB frame).
    """
    planes = np.asarray(planes)
    if planes.ndim != 3:
        raise ValueError(f"chw_to_hwc: expected C×H×W planes, got shape {planes.shape}")
    if 1 <= planes.shape[0] <= 4 and planes.dtype in (np.uint8, np.uint16, np.float32):
        import cv2

        out = cv2.merge([np.ascontiguousarray(p) for p in planes])
        return out if out.ndim == 3 else out[..., None]
    return np.ascontiguousarray(planes.transpose(1, 2, 0))
