"""Consistency mask (see docs/architecture.md, 'Temporal consistency'): formula, occlusions, translations,
torch agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flow_synth import DEVICES, affine_pair, texture
from vidstyle.errors import ShapeError
from vidstyle.flow import (
    consistency_mask,
    consistency_mask_torch,
    flow_pair,
    make_flow_estimator,
    photometric_mask,
)


def _reference_mask(w_f: np.ndarray, w_b: np.ndarray) -> np.ndarray:
    """Pixel-by-pixel transcription of the mask formulas in docs/architecture.md, 'Temporal consistency'
    (including out-of-frame), float64."""
    _, h, w = w_b.shape
    w_f = w_f.astype(np.float64)
    w_b = w_b.astype(np.float64)
    gu = np.gradient(w_b[0], axis=1) ** 2 + np.gradient(w_b[0], axis=0) ** 2
    gv = np.gradient(w_b[1], axis=1) ** 2 + np.gradient(w_b[1], axis=0) ** 2
    c = np.ones((h, w))
    for y in range(h):
        for x in range(w):
            u, v = w_b[0, y, x], w_b[1, y, x]
            px, py = x + u, y + v
            if not (0 <= px <= w - 1 and 0 <= py <= h - 1):
                c[y, x] = 0
                continue
            x0, y0 = min(int(px), w - 2), min(int(py), h - 2)
            ax, ay = px - x0, py - y0
            wf = (1 - ay) * ((1 - ax) * w_f[:, y0, x0] + ax * w_f[:, y0, x0 + 1]) + ay * (
                (1 - ax) * w_f[:, y0 + 1, x0] + ax * w_f[:, y0 + 1, x0 + 1]
            )
            occluded = (wf[0] + u) ** 2 + (wf[1] + v) ** 2 > 0.01 * (wf @ wf + u * u + v * v) + 0.5
            boundary = gu[y, x] + gv[y, x] > 0.01 * (u * u + v * v) + 0.002
            if occluded or boundary:
                c[y, x] = 0
    return c


def _random_flows(h=14, w=17, seed=0):
    """A smooth affine w_b with a sharp bump (motion boundary), pixels leaving the frame on the
    right, and a w_f that is its inverse up to noise plus a clearly inconsistent patch."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = 2.0 + 0.05 * (xs - w / 2) + 4.0 * np.exp(-((xs - 10) ** 2 + (ys - 7) ** 2) / 3.0)
    v = -1.5 + 0.04 * (ys - h / 2)
    w_b = np.stack([u, v]).astype(np.float32)
    w_f = -w_b + rng.normal(0, 0.5, (2, h, w)).astype(np.float32)  # ≈ inverse (both vary slowly)
    w_f[:, 4:8, 1:5] += 3.0  # a clearly inconsistent patch
    return np.ascontiguousarray(w_f), np.ascontiguousarray(w_b)


def test_matches_formula_pixel_by_pixel():
    for seed in range(3):
        w_f, w_b = _random_flows(seed=seed)
        mask = consistency_mask(w_f, w_b)
        ref = _reference_mask(w_f, w_b)
        assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
        assert 0.05 < ref.mean() < 0.95  # the case exercises both outcomes
        # cv2.remap samples w_f with 1/32-px weights: allow a stray pixel at a threshold
        assert (mask != ref).sum() <= 2


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_version_agrees(device, dtype):
    pairs = [_random_flows(seed=s) for s in range(3)]
    w_f = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device, dtype)
    w_b = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device, dtype)
    out = consistency_mask_torch(w_f, w_b)
    assert out.shape == (3, 1, 14, 17) and out.dtype == dtype
    for i, (f, b) in enumerate(pairs):
        assert (out[i, 0].cpu().numpy() != _reference_mask(f, b)).sum() <= 1


def test_exact_translation_is_consistent_except_entering_border():
    h, w = 40, 50
    w_b = np.zeros((2, h, w), np.float32)
    w_b[0], w_b[1] = -3.0, 2.0  # frame t content came from 3 px right... x + w_b = (x − 3, y + 2)
    mask = consistency_mask(-w_b, w_b)
    assert mask[: h - 2, 3:].all()  # fully consistent where the source is inside frame t−1
    assert not mask[:, :3].any() and not mask[h - 2 :, :].any()  # came from outside the picture


def test_estimated_translation_interior_is_consistent():
    """≥ 95% of a purely translated interior passes with estimated (DIS) flows."""
    p = affine_pair(tx=5.0, ty=-3.0, angle=0.0, scale=1.0)
    fwd, bwd = flow_pair(make_flow_estimator("dis-fast"), p.a, p.b)
    mask = consistency_mask(fwd, bwd)  # mask of frame b (t) w.r.t. a (t−1)
    interior = mask[12:-12, 12:-12]
    assert interior.mean() >= 0.95


def _occlusion_scene(shift: int = 8):
    """Frame t−1: a textured square over a static background; frame t: the square moved right."""
    h, w = 96, 128
    bg = texture(h, w, seed=1)
    fg = texture(32, 32, seed=2)
    y0, x0 = 32, 40
    prev = bg.copy()
    prev[y0 : y0 + 32, x0 : x0 + 32] = fg
    cur = bg.copy()
    cur[y0 : y0 + 32, x0 + shift : x0 + shift + 32] = fg
    w_b = np.zeros((2, h, w), np.float32)  # t → t−1
    w_b[0, y0 : y0 + 32, x0 + shift : x0 + shift + 32] = -shift
    w_f = np.zeros((2, h, w), np.float32)  # t−1 → t
    w_f[0, y0 : y0 + 32, x0 : x0 + 32] = shift
    disoccluded = np.zeros((h, w), bool)  # background visible at t, hidden under the square at t−1
    disoccluded[y0 : y0 + 32, x0 : x0 + shift] = True
    square = np.zeros((h, w), bool)
    square[y0 + 2 : y0 + 30, x0 + shift + 2 : x0 + shift + 30] = True
    return prev, cur, w_f, w_b, disoccluded, square


def test_disoccluded_region_is_marked_exact_flows():
    prev, cur, w_f, w_b, disoccluded, square = _occlusion_scene()
    mask = consistency_mask(w_f, w_b)
    assert not mask[disoccluded].any()
    assert mask[square].all()  # the moved object's interior is consistent
    far = np.ones_like(disoccluded)
    far[24:72, 32:88] = False
    assert mask[far].all()


def test_disoccluded_region_is_marked_estimated_flows():
    prev, cur, _, _, disoccluded, _ = _occlusion_scene()
    fwd, bwd = flow_pair(make_flow_estimator("dis-medium"), prev, cur)
    mask = consistency_mask(fwd, bwd)
    assert mask[disoccluded].mean() <= 0.2  # most of the uncovered strip is flagged
    assert mask[:20].mean() >= 0.9  # static background far from the object stays consistent


def test_photometric_mask_marks_disocclusion():
    prev, cur, _, w_b, disoccluded, square = _occlusion_scene()
    mask = photometric_mask(cur, prev, w_b)
    assert mask[disoccluded].mean() < 0.2 and mask[square].all()


def test_shape_errors():
    with pytest.raises(ShapeError):
        consistency_mask(np.zeros((2, 5, 5)), np.zeros((2, 5, 6)))
    with pytest.raises(ShapeError):
        consistency_mask(np.zeros((5, 5, 2)), np.zeros((5, 5, 2)))
    with pytest.raises(ShapeError):
        consistency_mask_torch(torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 5, 6))
