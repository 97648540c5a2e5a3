"""Consistency (occlusion) masks and scene-cut detection.

docs/architecture.md, "Temporal consistency" (Sundaram et al. 2010; Ruder et al. 2016; Lai et al. 2018). For frame ``t`` with
``w_b`` = flow from t back to t−1 and ``w_f`` = flow from t−1 to t, and ``w̃_f(x) = w_f(x + w_b(x))``
(bilinear):

* **occluded** (the pixel was not visible in t−1): ``|w̃_f + w_b|² > 0.01 (|w̃_f|² + |w_b|²) + 0.5``
  — following the flow back and forth does not return to ``x``;
* **motion boundary**: ``|∇u|² + |∇v|² > 0.01 |w_b|² + 0.002`` with ``(u, v) = w_b`` (central
  differences) — flow near object edges is unreliable;
* **out of frame**: ``x + w_b(x)`` falls outside frame t−1 (the pixel entered the picture), as in
  Ruder et al.'s reference ``consistencyChecker``.

``c(x) = 0`` where any holds, else 1. The mask belongs to the frame the backward flow starts from;
for any pair of frames A, B use ``consistency_mask(flow_fwd=flow B→A, flow_bwd=flow A→B)`` to get
A's mask with respect to B. Flows are in pixels of the frame they were computed on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidstyle.errors import ShapeError

__all__ = [
    "consistency_mask",
    "consistency_mask_torch",
    "photometric_mask",
    "CutStats",
    "cut_statistics",
    "is_scene_cut",
    "CUT_INCONSISTENT_FRACTION",
    "CUT_PHOTOMETRIC_ERROR",
    "warp_error",
]

_OCC_REL = 0.01
_OCC_ABS = 0.5
_MB_REL = 0.01
_MB_ABS = 0.002


def _check_flow(flow: np.ndarray, what: str) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ShapeError(f"{what} must be a 2×H×W flow, got shape {flow.shape}; transpose H×W×2 flows first")
    return flow.astype(np.float32, copy=False)


def consistency_mask(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Consistency mask of frame t (``H×W`` float32 in {0, 1}; 1 = visible in t−1, flow reliable).

    Args:
        flow_fwd: ``w_f``, ``2×H×W`` flow from frame t−1 to frame t.
        flow_bwd: ``w_b``, ``2×H×W`` flow from frame t to frame t−1.
    """
    import cv2

    from vidstyle.flow.warping import remap_coordinates

    w_f = _check_flow(flow_fwd, "flow_fwd")
    w_b = _check_flow(flow_bwd, "flow_bwd")
    if w_f.shape != w_b.shape:
        raise ShapeError(f"flow_fwd {w_f.shape} and flow_bwd {w_b.shape} must have the same shape")
    _, h, w = w_b.shape
    map_x, map_y = remap_coordinates(w_b)
    # w̃_f = w_f sampled at x + w_b(x) (cv2.remap: bilinear, weights quantised to 1/32 px)
    wf_u = cv2.remap(np.ascontiguousarray(w_f[0]), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wf_v = cv2.remap(np.ascontiguousarray(w_f[1]), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    u, v = w_b[0], w_b[1]
    diff = (wf_u + u) ** 2 + (wf_v + v) ** 2
    mag_b = u * u + v * v
    occluded = diff > _OCC_REL * (wf_u * wf_u + wf_v * wf_v + mag_b) + _OCC_ABS
    boundary = _gradient_energy(u, v) > _MB_REL * mag_b + _MB_ABS
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


_CENTRAL = np.array([[-0.5, 0.0, 0.5]], np.float32)


def _gradient_energy(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``|∇u|² + |∇v|²`` with central differences (one-sided at the borders), as ``np.gradient``."""
    import cv2

    energy = np.zeros(u.shape, np.float32)
    for comp in (u, v):
        comp = np.ascontiguousarray(comp, dtype=np.float32)
        for kernel, axis in ((_CENTRAL, 1), (_CENTRAL.T, 0)):
            if comp.shape[axis] < 2:
                continue
            # replicate border turns the edge's central difference into half the one-sided one
            g = cv2.filter2D(comp, -1, kernel, borderType=cv2.BORDER_REPLICATE)
            if axis == 1:
                g[:, 0] *= 2.0
                g[:, -1] *= 2.0
            else:
                g[0] *= 2.0
                g[-1] *= 2.0
            energy += g * g
    return energy


def consistency_mask_torch(flow_fwd: "torch.Tensor", flow_bwd: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """Torch version of :func:`consistency_mask` on ``N×2×H×W`` flows → ``N×1×H×W`` mask (flow dtype).

    Same formula; ``w̃_f`` is sampled with :func:`vidstyle.flow.warping.warp` (``grid_sample``, exact
    bilinear), so it can differ from the OpenCV version only on pixels within float rounding of a
    threshold. Not differentiable (a mask); computed under ``no_grad``.
    """
    import torch

    from vidstyle.flow.warping import warp

    if flow_fwd.ndim != 4 or flow_fwd.shape[1] != 2 or flow_fwd.shape != flow_bwd.shape:
        raise ShapeError(
            "consistency_mask_torch: flows must both be N×2×H×W, "
            f"got {tuple(flow_fwd.shape)} and {tuple(flow_bwd.shape)}"
        )
    with torch.no_grad():
        w_b = flow_bwd
        w_f = warp(flow_fwd.to(w_b.dtype), w_b)
        h, w = w_b.shape[2:]
        diff = ((w_f + w_b) ** 2).sum(1, keepdim=True)
        mag_b = (w_b**2).sum(1, keepdim=True)
        mag_f = (w_f**2).sum(1, keepdim=True)
        occluded = diff > _OCC_REL * (mag_f + mag_b) + _OCC_ABS
        energy = torch.zeros_like(mag_b)
        for dim in (2, 3):
            if w_b.shape[dim] > 1:
                g = torch.gradient(w_b, dim=dim)[0]
                energy = energy + (g**2).sum(1, keepdim=True)
        boundary = energy > _MB_REL * mag_b + _MB_ABS
        xs = torch.arange(w, device=w_b.device, dtype=w_b.dtype).view(1, 1, 1, w) + w_b[:, :1]
        ys = torch.arange(h, device=w_b.device, dtype=w_b.dtype).view(1, 1, h, 1) + w_b[:, 1:]
        outside = (xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)
        return (~(occluded | boundary | outside)).to(w_b.dtype)


def photometric_mask(
    image: np.ndarray, prev: np.ndarray, flow_bwd: np.ndarray, *, threshold: float = 0.05,
    warp_error: np.ndarray | None = None,
) -> np.ndarray:
    """A cheaper mask when no forward flow is computed: motion boundaries + out-of-frame (as in
    :func:`consistency_mask`) + photometric check ``|Y_t(x) − Y_{t−1}(x + w_b(x))| > threshold``
    (luminance in 0..1). Less exact than the forward-backward check at occlusions. ``warp_error``:
    :func:`warp_error` of the pair when already computed."""
    from vidstyle.flow.warping import remap_coordinates

    w_b = _check_flow(flow_bwd, "flow_bwd")
    err = _warped_luma_error(image, prev, w_b) if warp_error is None else warp_error
    u, v = w_b[0], w_b[1]
    boundary = _gradient_energy(u, v) > _MB_REL * (u * u + v * v) + _MB_ABS
    _, h, w = w_b.shape
    map_x, map_y = remap_coordinates(w_b)
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    return (~((err > threshold) | boundary | outside)).astype(np.float32)


def warp_error(image: np.ndarray, prev: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """``|Y_t(x) − Y_{t−1}(x + w_b(x))|`` (``H×W`` float32, luminance in 0..1): how well the backward flow
    explains frame t (``image``) from frame t−1 (``prev``); 8-bit inputs are compared in 8 bits."""
    return _warped_luma_error(image, prev, _check_flow(flow_bwd, "flow_bwd"))


def _warped_luma_error(image: np.ndarray, prev: np.ndarray, w_b: np.ndarray) -> np.ndarray:
    """``|Y_t(x) − Y_{t−1}(x + w_b(x))|`` in 0..1 (``H×W`` float32); 8-bit fast path for uint8 input."""
    import cv2

    from vidstyle.colour import luma
    from vidstyle.flow.estimators import to_gray8
    from vidstyle.flow.warping import warp_numpy

    image, prev = np.asarray(image), np.asarray(prev)
    if image.shape[:2] != w_b.shape[1:] or prev.shape[:2] != w_b.shape[1:]:
        raise ShapeError(f"frames {image.shape[:2]} / {prev.shape[:2]} and flow {w_b.shape[1:]} must have the same H×W")
    if image.dtype == np.uint8 and prev.dtype == np.uint8:  # OpenCV's 8-bit BT.601 grey, compared in 8 bits
        diff = cv2.absdiff(to_gray8(image), warp_numpy(to_gray8(prev), w_b))
        return diff.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.abs(luma(image) - warp_numpy(luma(prev), w_b))


# Thresholds measured with DIS-fast on ../shared/data/video (tests/flow/test_scene_cut.py):
# real motion, consecutive frames: inconsistent ≤ 0.41 (cockatoo, 1280×720 pan of 20+ px/frame),
#   ≤ 0.14 elsewhere; photometric ≤ 0.023. Even 5 frames apart (70 px): ≤ 0.67 and ≤ 0.022.
# cuts between any two of the 4 clips (48 pairs): inconsistent ≥ 0.93 (mean 0.98), photometric
#   ≥ 0.039 (mean 0.22). The fraction separates them; the photometric test catches cuts between
#   similar-looking, nearly static shots (flow ≈ 0 passes the check, but the pictures differ).
CUT_INCONSISTENT_FRACTION = 0.8
CUT_PHOTOMETRIC_ERROR = 0.06


@dataclass(frozen=True, slots=True)
class CutStats:
    """What :func:`is_scene_cut` looks at.

    Attributes:
        inconsistent_fraction: share of pixels of frame t with ``c = 0``.
        photometric_error: mean ``|Y_t − warp(Y_{t−1}, w_b)|`` over the consistent pixels
            (luminance in 0..1; 1.0 when no pixel is consistent).
    """

    inconsistent_fraction: float
    photometric_error: float


def cut_statistics(
    prev: np.ndarray, next: np.ndarray, flow_bwd: np.ndarray, consistency: np.ndarray | None,  # noqa: A002
    *, warp_error: np.ndarray | None = None,
) -> CutStats:
    """Statistics of a frame pair used by :func:`is_scene_cut` (``next`` = frame t, ``prev`` = t−1);
    ``warp_error``: :func:`warp_error` of the pair when already computed."""
    w_b = _check_flow(flow_bwd, "flow_bwd")
    err = _warped_luma_error(next, prev, w_b) if warp_error is None else warp_error
    if consistency is None:
        c = np.ones(err.shape, np.float32)
    else:
        c = np.asarray(consistency, dtype=np.float32)
        if c.shape != err.shape:
            raise ShapeError(f"is_scene_cut: consistency mask {c.shape} does not match the frames {err.shape}")
    n = float(np.count_nonzero(c > 0.5))
    photometric = float(np.dot(err.ravel(), (c > 0.5).ravel().astype(np.float32)) / n) if n else 1.0
    return CutStats(inconsistent_fraction=1.0 - n / c.size, photometric_error=photometric)


def is_scene_cut(
    prev: np.ndarray,
    next: np.ndarray,  # noqa: A002
    flow_bwd: np.ndarray,
    consistency: np.ndarray | None,
    *,
    max_inconsistent: float = CUT_INCONSISTENT_FRACTION,
    max_photometric: float = CUT_PHOTOMETRIC_ERROR,
    warp_error: np.ndarray | None = None,
) -> bool:
    """True when frame ``next`` (t) starts a new shot relative to ``prev`` (t−1).

    A cut is declared when the flow explains too little of the new frame: more than
    ``max_inconsistent`` of its pixels fail the consistency check, **or** the previous frame warped by
    ``w_b`` still differs from it by more than ``max_photometric`` (mean absolute luminance error on
    the pixels the mask calls consistent). On real motion the flow is consistent almost everywhere
    and the warped frame matches to within a few grey levels; across a cut the flow is noise, the
    check fails on large areas, and whatever "consistent" pixels remain still do not match.
    """
    stats = cut_statistics(prev, next, flow_bwd, consistency, warp_error=warp_error)
    return stats.inconsistent_fraction > max_inconsistent or stats.photometric_error > max_photometric
