"""Backward warping: torch (grid_sample) and OpenCV (remap) paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flow_synth import DEVICES, affine_pair
from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.flow import Warp, consistency_mask, warp, warp_numpy


def _smooth(h, w, c=3, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w, c)).astype(np.float32), (0, 0), 3.0)
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32).reshape(h, w, c)


def _reference_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Direct formula: out(x) = bilinear(image, clamp(x + flow(x))) — border padding."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    px = np.clip(xs + flow[0], 0, w - 1)
    py = np.clip(ys + flow[1], 0, h - 1)
    x0 = np.clip(np.floor(px).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(py).astype(int), 0, h - 2)
    ax, ay = (px - x0)[..., None], (py - y0)[..., None]
    im = image.astype(np.float64)
    return (1 - ay) * ((1 - ax) * im[y0, x0] + ax * im[y0, x0 + 1]) + ay * (
        (1 - ax) * im[y0 + 1, x0] + ax * im[y0 + 1, x0 + 1]
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_flow_is_identity(device, dtype):
    img = torch.rand(2, 3, 9, 13, dtype=dtype, device=device)
    out = warp(img, torch.zeros(2, 2, 9, 13, dtype=dtype, device=device))
    torch.testing.assert_close(out, img, atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_matches_reference_formula(device):
    rng = np.random.default_rng(1)
    image = rng.random((11, 14, 3))
    flow = rng.uniform(-4, 4, (2, 11, 14))  # includes samples outside the image (border padding)
    out = warp(torch.from_numpy(image).permute(2, 0, 1)[None].to(device), torch.from_numpy(flow)[None].to(device))
    np.testing.assert_allclose(out[0].permute(1, 2, 0).cpu().numpy(), _reference_warp(image, flow), atol=1e-10)


def test_integer_shift():
    img = torch.arange(20.0).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # out(x) = img(x + 1): content moves left, last column repeats (border)
    out = warp(img, flow)[0, 0]
    assert torch.equal(out[:, :4], img[0, 0, :, 1:])
    assert torch.equal(out[:, 4], img[0, 0, :, 4])


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_image_and_flow(device):
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 5, 6, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    # non-integer displacements (bilinear is not differentiable at integer sample positions)
    flow = torch.rand(2, 2, 5, 6, generator=gen, dtype=torch.float64) * 2.6 - 1.3 + 0.05
    flow = flow.to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, f: warp(i, f), (img, flow), eps=1e-6, atol=1e-5)
    module = Warp()
    assert torch.autograd.gradcheck(lambda i, f: module(i, f), (img, flow), eps=1e-6, atol=1e-5)


def test_agrees_with_cv2_remap():
    image = _smooth(40, 56)
    rng = np.random.default_rng(2)
    flow = rng.uniform(-6, 6, (2, 40, 56)).astype(np.float32)
    ref = warp(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(flow)[None])[0].permute(1, 2, 0).numpy()
    out = warp_numpy(image, flow)
    assert out.shape == image.shape and out.dtype == np.float32
    # cv2.remap quantises bilinear weights to 1/32 px: error ≤ (|∂x| + |∂y|) / 64 of the local step
    step = np.abs(np.diff(image, axis=0)).max() + np.abs(np.diff(image, axis=1)).max()
    assert np.abs(out - ref).max() <= step / 32
    # with displacements on the 1/32 grid the two are the same to float precision
    q = np.round(flow * 32) / 32
    ref_q = warp(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(q)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(warp_numpy(image, q), ref_q, atol=2e-6)


def test_warp_numpy_dtypes_and_shapes():
    image = (_smooth(20, 24) * 255).astype(np.uint8)
    flow = np.zeros((2, 20, 24), np.float32)
    assert np.array_equal(warp_numpy(image, flow), image)
    assert np.array_equal(warp_numpy(image.astype(np.uint16), flow), image.astype(np.uint16))
    assert warp_numpy(image[..., 0], flow).shape == (20, 24)
    assert warp_numpy(image[..., :1], flow).shape == (20, 24, 1)
    six = np.concatenate([image, image], axis=2)
    assert np.array_equal(warp_numpy(six, flow), six)
    assert warp_numpy(image.astype(np.float64) / 255, flow).dtype == np.float32
    with pytest.raises(ShapeError):
        warp_numpy(image, flow[:, :-1])
    with pytest.raises(ShapeError):
        warp_numpy(image, flow.transpose(1, 2, 0))
    with pytest.raises(InvalidOptionError):
        warp_numpy(image, flow, border="wrap")


def test_torch_shape_checks():
    img = torch.rand(1, 3, 8, 8)
    with pytest.raises(ShapeError):
        warp(img[0], torch.zeros(2, 8, 8))
    with pytest.raises(ShapeError):
        warp(img, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ShapeError):
        warp(img, torch.zeros(1, 2, 8, 7))
    with pytest.raises(ShapeError):
        warp(img, torch.zeros(2, 2, 8, 8))
    with pytest.raises(ShapeError):
        warp(img.to(torch.uint8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(InvalidOptionError):
        Warp(padding_mode="wrap")


def test_true_flow_reconstructs_the_other_frame():
    """warp(b, flow a→b) ≈ a on the pixels the consistency mask keeps."""
    p = affine_pair()
    mask = consistency_mask(p.flow_back, p.flow)  # a's mask w.r.t. b, from the exact flows
    assert mask.mean() > 0.9
    a = p.a.astype(np.float32) / 255
    b = p.b.astype(np.float32) / 255
    rec = warp(torch.from_numpy(b).permute(2, 0, 1)[None], torch.from_numpy(p.flow)[None])[0].permute(1, 2, 0).numpy()
    err = np.abs(rec - a).mean(axis=2)
    keep = mask > 0
    # residual = two bilinear resamplings of a sharp texture (b was made by warpAffine)
    assert err[keep].mean() < 0.02  # measured 0.012 (≈3 grey levels)
    identity = np.abs(b - a).mean(axis=2)[keep].mean()
    assert err[keep].mean() < 0.15 * identity  # measured 0.09 × the un-warped difference
    np.testing.assert_allclose(warp_numpy(b, p.flow)[keep], rec[keep], atol=0.01)
