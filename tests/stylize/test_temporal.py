"""The detail-preserving stabiliser: blend formula, mask feathering, sharpness restoration, the
Stabilizer's state machine (first frame, scene cuts, size changes) and gradients."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ff_helpers import DEVICES, texture

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.stylize.temporal import Stabilizer, sharpness_torch, stabilize

DTYPES = [torch.float32, torch.float64]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _t(img: np.ndarray, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device, dtype)


def _pair(h: int = 32, w: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    new = texture(h, w, seed)
    prev = texture(h, w, seed + 1)
    return _t(new), _t(prev)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_blend_formula_without_feather(device: str, dtype: torch.dtype) -> None:
    new, prev = (t.to(device, dtype) for t in _pair())
    rng = np.random.default_rng(0)
    c = torch.from_numpy(rng.random((1, 1, 32, 40))).to(device, dtype)
    c[..., :5, :] = 0.0
    for strength in (0.3, 0.85, 1.0):
        out = stabilize(new, prev, c, strength=strength, restore_detail=False, feather=0.0)
        m = strength * c
        assert out.dtype == dtype and out.device.type == device
        torch.testing.assert_close(out, (m * prev + (1 - m) * new).clamp(0, 1))
    # strength 0 is the per-frame output, whatever the mask
    assert torch.equal(stabilize(new, prev, c, strength=0.0), new)


def test_full_strength_keeps_the_warped_previous_where_visible() -> None:
    new, prev = _pair()
    ones = torch.ones(1, 1, 32, 40)
    torch.testing.assert_close(stabilize(new, prev, ones, strength=1.0, restore_detail=False), prev)
    zeros = torch.zeros(1, 32, 40)  # N×H×W masks accepted too
    for restore in (False, True):
        torch.testing.assert_close(stabilize(new, prev, zeros, strength=1.0, restore_detail=restore), new)


def test_feathered_mask_is_a_gaussian_blur() -> None:
    h, w = 24, 30
    c = np.zeros((h, w), np.float32)
    c[4:15, 6:22] = 1.0
    c[18, 3] = 1.0
    new = torch.zeros(1, 3, h, w)
    prev = torch.ones(1, 3, h, w)
    out = stabilize(new, prev, torch.from_numpy(c)[None, None], strength=0.8, restore_detail=False, feather=1.0)
    # with new = 0 and prev = 1 the output is the mask itself: strength · (G_σ=1 ∗ c), replicated borders
    ref = 0.8 * cv2.GaussianBlur(c, (5, 5), 1.0, borderType=cv2.BORDER_REPLICATE)
    for ch in range(3):
        np.testing.assert_allclose(out[0, ch].numpy(), ref, atol=1e-6)


def test_sharpness_torch_matches_the_metric() -> None:
    from vidstyle.metrics import sharpness

    img = texture(48, 64, seed=2)
    ours = float(sharpness_torch(_t(img))[0])
    assert ours == pytest.approx(sharpness(img), rel=0.03)  # borders: replicate here, reflect there
    batch = torch.cat([_t(img), _t(texture(48, 64, seed=3))])
    assert sharpness_torch(batch).shape == (2,)
    assert float(sharpness_torch(torch.full((1, 3, 8, 8), 0.3))[0]) == 0.0


def test_detail_restoration_matches_the_new_frames_sharpness() -> None:
    new_np = texture(48, 64, seed=5)
    prev_np = cv2.GaussianBlur(new_np, (0, 0), 1.2)  # a resampled, softer previous output
    new, prev = _t(new_np), _t(prev_np)
    ones = torch.ones(1, 1, 48, 64)
    target = float(sharpness_torch(new)[0])
    plain = stabilize(new, prev, ones, strength=0.85, restore_detail=False)
    kept = stabilize(new, prev, ones, strength=0.85, restore_detail=True)
    assert float(sharpness_torch(plain)[0]) < 0.75 * target  # the trap: blending blurs
    assert float(sharpness_torch(kept)[0]) == pytest.approx(target, rel=0.1)
    assert kept.min() >= 0 and kept.max() <= 1
    # the restored frame stays the blend at low frequencies
    low = lambda t: torch.nn.functional.avg_pool2d(t, 8)
    assert (low(kept) - low(plain)).abs().mean() < 0.02


def test_bad_shapes_and_strengths() -> None:
    new, prev = _pair()
    ones = torch.ones(1, 1, 32, 40)
    with pytest.raises(ShapeError):
        stabilize(new, prev[..., :-1], ones, strength=0.5)
    with pytest.raises(ShapeError):
        stabilize(new, prev, torch.ones(1, 1, 32, 41), strength=0.5)
    with pytest.raises(ShapeError):
        stabilize(new, prev, torch.ones(2, 1, 32, 40), strength=0.5)
    with pytest.raises(ShapeError):
        stabilize(new[0], prev[0], ones, strength=0.5)
    for bad in (-0.1, 1.01):
        with pytest.raises(InvalidOptionError):
            stabilize(new, prev, ones, strength=bad)
        with pytest.raises(InvalidOptionError):
            Stabilizer(strength=bad)


@pytest.mark.parametrize("restore", [False, True])
def test_gradcheck_float64(restore: bool) -> None:
    g = torch.Generator().manual_seed(0)
    new = (torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64) * 0.6 + 0.2).requires_grad_()
    prev = (torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64) * 0.6 + 0.2).requires_grad_()
    c = torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)

    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return stabilize(a, b, c, strength=0.7, restore_detail=restore)

    assert torch.autograd.gradcheck(f, (new, prev), eps=1e-6, atol=1e-5)


# ---- Stabilizer ---------------------------------------------------------------------------------------


def _shift_flow(h: int, w: int, dx: int, dy: int) -> torch.Tensor:
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


@pytest.mark.parametrize("device", DEVICES)
def test_stabilizer_sequence(device: str) -> None:
    h, w = 20, 24
    frames = [_t(texture(h, w, seed=i), device) for i in range(5)]
    flow = _shift_flow(h, w, 2, 1).to(device)
    ones = torch.ones(1, 1, h, w, device=device)
    st = Stabilizer(strength=1.0, restore_detail=False)
    # first frame: nothing to stabilise against
    assert torch.equal(st.step(frames[0], flow_bwd=flow, consistency=ones), frames[0])
    # full strength, all visible: the previous output moved by the (integer) flow
    out = st.step(frames[1], flow_bwd=flow, consistency=ones)
    expected = frames[0][..., torch.clamp(torch.arange(h) + 1, max=h - 1).to(device), :]
    expected = expected[..., torch.clamp(torch.arange(w) + 2, max=w - 1).to(device)]
    torch.testing.assert_close(out, expected)
    assert st.previous is not None and not st.previous.requires_grad
    # a scene cut, a missing flow or mask, or a new size: restart from the new output
    assert torch.equal(st.step(frames[2], flow_bwd=flow, consistency=ones, scene_cut=True), frames[2])
    assert torch.equal(st.step(frames[3], flow_bwd=None, consistency=ones), frames[3])
    assert torch.equal(st.step(frames[4], flow_bwd=flow, consistency=None), frames[4])
    small = _t(texture(10, 12), device)
    assert torch.equal(st.step(small, flow_bwd=_shift_flow(10, 12, 1, 0).to(device),
                               consistency=torch.ones(1, 1, 10, 12, device=device)), small)
    assert st.previous is small or torch.equal(st.previous, small)
    st.reset()
    assert st.previous is None


def test_stabilizer_strength_zero_passes_through() -> None:
    st = Stabilizer(strength=0.0)
    a, b = _pair()
    st.step(a, flow_bwd=None, consistency=None)
    assert torch.equal(st.step(b, flow_bwd=_shift_flow(32, 40, 1, 0), consistency=torch.ones(1, 1, 32, 40)), b)


def test_stabilizer_blends_partially_with_mask() -> None:
    h, w = 16, 20
    a, b = _t(texture(h, w, 0)), _t(texture(h, w, 1))
    c = torch.zeros(1, 1, h, w)
    c[..., :, : w // 2] = 1.0
    st = Stabilizer(strength=0.5, restore_detail=False)
    st.step(a, flow_bwd=None, consistency=None)
    out = st.step(b, flow_bwd=torch.zeros(1, 2, h, w), consistency=c)
    # far from the mask edge: left half is the 50/50 blend, right half is the new frame
    torch.testing.assert_close(out[..., :, :6], 0.5 * a[..., :, :6] + 0.5 * b[..., :, :6])
    torch.testing.assert_close(out[..., :, -6:], b[..., :, -6:])


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_cpu_warp_fast_path_matches_grid_sample(mode: str) -> None:
    """The Stabilizer warps one float32 CPU frame with cv2.remap; it must agree with warp()."""
    from vidstyle.flow.warping import warp
    from vidstyle.stylize.temporal import _warp_previous

    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 6, 40), torch.linspace(0, 9, 56), indexing="ij")
    img = torch.stack([0.5 + 0.4 * torch.sin(xx + yy), 0.5 + 0.4 * torch.cos(xx - yy), 0.5 + 0.3 * torch.sin(2 * xx)])[None]
    flow = torch.stack([torch.full((40, 56), 1.3) + 0.2 * torch.sin(yy), torch.full((40, 56), -0.7)])[None]
    fast = _warp_previous(img, flow, mode=mode)
    ref = warp(img, flow, mode=mode).clamp(0, 1)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    assert float((fast - ref).abs().max()) < 0.01  # cv2 quantises coordinates to 1/32 px
    assert float((fast - img).abs().mean()) > 0.05  # it did move the picture


def test_detail_fraction_and_mid_bands() -> None:
    from vidstyle.stylize.temporal import _lowpass

    new_np = texture(64, 96, seed=6)
    new = _t(new_np)
    ones = torch.ones(1, 1, 64, 96)
    soft = _t(cv2.GaussianBlur(new_np, (0, 0), 1.2))
    full = stabilize(new, soft, ones, strength=0.85)
    less = stabilize(new, soft, ones, strength=0.85, detail=0.8)
    target = float(sharpness_torch(new)[0])
    assert float(sharpness_torch(less)[0]) == pytest.approx(0.8 * target, rel=0.1)
    assert float(sharpness_torch(less)[0]) < float(sharpness_torch(full)[0])

    prev = _t(cv2.GaussianBlur(new_np, (0, 0), 2.5))  # softer at the stroke scale too
    full = stabilize(new, prev, ones, strength=0.85)

    def band(t: torch.Tensor) -> float:
        return float((_lowpass(t, 1.0) - _lowpass(t, 3.0)).abs().mean())

    banded = stabilize(new, prev, ones, strength=0.85, mid_bands=((1.0, 3.0),))
    # the 1-3 px band gets back (most of) the per-frame output's amplitude; without it, it stays low
    assert band(full) < 0.8 * band(new)
    assert band(banded) == pytest.approx(band(new), rel=0.15)
    with pytest.raises(InvalidOptionError):
        Stabilizer(detail=0.0)


def test_lowpass_is_a_blur_at_every_scale() -> None:
    from vidstyle.stylize.temporal import _lowpass

    x = _t(texture(37, 53, seed=2))
    for sigma in (1.0, 2.0, 3.0, 4.0):
        y = _lowpass(x, sigma)
        assert y.shape == x.shape
        assert abs(float(y.mean()) - float(x.mean())) < 0.01  # keeps the mean
        assert float(sharpness_torch(y)[0]) < float(sharpness_torch(x)[0])  # removes detail
    assert float(sharpness_torch(_lowpass(x, 4.0))[0]) < float(sharpness_torch(_lowpass(x, 1.0))[0])


@pytest.mark.parametrize("hw", [(64, 96), (37, 53)])
@pytest.mark.parametrize("mid_bands", [(), ((1.0, 3.0),), ((1.0, 2.0), (2.0, 4.0))])
def test_opencv_path_equals_the_torch_formula(hw: tuple[int, int], mid_bands: tuple) -> None:
    """One CPU float32 frame runs through OpenCV (_stabilize_hwc, _lowpass_hwc): same numbers as the
    torch reference, step by step and through the Stabilizer."""
    from vidstyle.stylize.temporal import _lowpass, _lowpass_hwc, _stabilize_hwc

    h, w = hw
    new_np = texture(h, w, seed=8)
    prev_np = cv2.GaussianBlur(new_np, (0, 0), 1.5)
    mask = (np.random.default_rng(1).random((h, w)) > 0.2).astype(np.float32)
    new, prev, m = _t(new_np), _t(prev_np), torch.from_numpy(mask)[None, None]
    for sigma in (1.0, 2.0, 3.0, 4.0):
        ref = _lowpass(new, sigma)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(_lowpass_hwc(new_np, sigma), ref, atol=1e-5)
    ref = stabilize(new, prev, m, strength=0.85, detail=0.93, mid_bands=mid_bands)
    got = _stabilize_hwc(new_np, prev_np, mask, strength=0.85, feather=1.0, detail=0.93, mid_bands=mid_bands)
    np.testing.assert_allclose(got, ref[0].permute(1, 2, 0).numpy(), atol=1e-5)
    assert np.abs(got - new_np).mean() > 0.005  # the blend did change the frame
    # through the Stabilizer (zero flow: the warp is the identity up to bicubic rounding)
    st = Stabilizer(strength=0.85, detail=0.93, mid_bands=mid_bands)
    st.step(prev, flow_bwd=None, consistency=None)
    out = st.step(new, flow_bwd=torch.zeros(1, 2, h, w), consistency=m)
    torch.testing.assert_close(out, stabilize(new, prev, m, strength=0.85, detail=0.93, mid_bands=mid_bands),
                               atol=1e-4, rtol=0)


def test_stabilizer_rejects_a_mask_of_another_shape() -> None:
    new = _t(texture(24, 36, seed=3))
    st = Stabilizer()
    st.step(new, flow_bwd=None, consistency=None)
    with pytest.raises(ShapeError, match="consistency"):  # same pixel count, transposed
        st.step(new, flow_bwd=torch.zeros(1, 2, 24, 36), consistency=torch.ones(1, 1, 36, 24))


def test_confirm_blends_rejected_pixels_whose_input_warp_error_is_small() -> None:
    h, w = 16, 40
    prev, new = torch.full((1, 3, h, w), 0.2), torch.full((1, 3, h, w), 0.8)
    rejected = torch.zeros(1, 1, h, w)  # the consistency mask rejects every pixel
    err = torch.ones(1, 1, h, w)
    err[..., : w // 2] = 0.0  # ... but the input matches exactly in the left half
    outs = {}
    for confirm in (0.0, 0.02):
        st = Stabilizer(strength=0.85, restore_detail=False, mid_bands=(), confirm=confirm)
        st.step(prev, flow_bwd=None, consistency=None)
        outs[confirm] = st.step(new, flow_bwd=torch.zeros(1, 2, h, w), consistency=rejected, warp_error=err)
    torch.testing.assert_close(outs[0.0], new)  # the mask alone: per-frame output everywhere
    left, right = outs[0.02][..., : w // 2 - 4], outs[0.02][..., w // 2 + 4 :]
    torch.testing.assert_close(left, torch.full_like(left, 0.85 * 0.2 + 0.15 * 0.8))
    torch.testing.assert_close(right, torch.full_like(right, 0.8))
    with pytest.raises(InvalidOptionError):
        Stabilizer(confirm=1.5)
    with pytest.raises(ShapeError, match="warp_error"):
        Stabilizer().step(new, flow_bwd=torch.zeros(1, 2, h, w), consistency=rejected, warp_error=torch.zeros(1, 1, h, w - 1))


@pytest.mark.parametrize("prepared", [False, True])
def test_confirm_does_not_let_in_pixels_the_flow_brings_from_outside_the_frame(prepared: bool) -> None:
    """Rows entering the picture (the flow leads above the previous frame) are not confirmed by the input check,
    even where the input matches (a smooth sky, replicated at the border): the warp would repeat the previous
    output's edge row there, a band of smeared texture. They take the per-frame output; the rows below blend."""
    h, w, shift = 16, 24, 3
    prev = torch.full((1, 3, h, w), 0.2)
    prev[..., 0, :] = 1.0  # a bright edge row, which the replicated warp would smear into the entering rows
    new = torch.full((1, 3, h, w), 0.6)
    flow = torch.zeros(1, 2, h, w)
    flow[:, 1] = -float(shift)  # the content moved down by 3 px: this frame's top 3 rows come from outside
    rejected = torch.zeros(1, 1, h, w)  # the mask rejects everything; the input check matches everywhere
    st = Stabilizer(strength=0.85, restore_detail=False, mid_bands=(), confirm=0.02)
    st.step(prev, flow_bwd=None, consistency=None)
    ready = st.prepare(flow_bwd=flow, consistency=rejected, warp_error=torch.zeros(1, 1, h, w)) if prepared else None
    out = st.step(new, flow_bwd=flow, consistency=rejected, warp_error=torch.zeros(1, 1, h, w), prepared=ready)
    torch.testing.assert_close(out[..., 0, :], new[..., 0, :])  # the top row: the per-frame output alone
    inner = out[..., shift + 3:, :]  # past the mask's feather, the previous output is blended in
    torch.testing.assert_close(inner, torch.full_like(inner, 0.85 * 0.2 + 0.15 * 0.6))


@pytest.mark.parametrize("restore", [True, False])
def test_a_prepared_step_gives_the_same_output_and_is_used_only_for_its_own_step(restore: bool, monkeypatch) -> None:
    """``prepare`` (the warp of the previous output, the checked mask and the blend weight, computed beside the
    network in live mode) then ``step(prepared=...)`` is the plain step, bit for bit; the warp is then not done
    again. A preparation made for another previous output or strength is ignored, not misused."""
    import vidstyle.stylize.temporal as temporal

    h, w = 36, 44
    frames = [_t(texture(h, w, seed=i), "cpu") for i in range(4)]
    flow = _shift_flow(h, w, 2, 1)
    cons = torch.ones(1, 1, h, w)
    cons[..., :8, :] = 0.0
    err = torch.full((1, 1, h, w), 0.01)
    plain = Stabilizer(strength=0.85, restore_detail=restore, mid_bands=())
    ready = Stabilizer(strength=0.85, restore_detail=restore, mid_bands=())
    assert ready.prepare(flow_bwd=flow, consistency=cons) is None  # no previous output yet
    plain.step(frames[0], flow_bwd=None, consistency=None)
    ready.step(frames[0], flow_bwd=None, consistency=None)
    for f in frames[1:3]:
        prepared = ready.prepare(flow_bwd=flow, consistency=cons, warp_error=err)
        assert prepared is not None and (prepared.weight is not None) == restore
        warps = []
        real = temporal._warp_previous
        monkeypatch.setattr(temporal, "_warp_previous", lambda *a, **k: warps.append(1) or real(*a, **k))
        got = ready.step(f, flow_bwd=flow, consistency=cons, warp_error=err, prepared=prepared)
        monkeypatch.setattr(temporal, "_warp_previous", real)
        assert warps == []
        assert torch.equal(got, plain.step(f, flow_bwd=flow, consistency=cons, warp_error=err))
    stale = ready.prepare(flow_bwd=flow, consistency=cons, warp_error=err)
    ready.step(frames[3], flow_bwd=flow, consistency=cons, warp_error=err, prepared=stale)
    plain.step(frames[3], flow_bwd=flow, consistency=cons, warp_error=err)
    # `stale` was made for the previous output before frames[3]: a step after it recomputes
    assert torch.equal(ready.step(frames[1], flow_bwd=flow, consistency=cons, prepared=stale),
                       plain.step(frames[1], flow_bwd=flow, consistency=cons))
    ready.strength = 0.5
    other = ready.prepare(flow_bwd=flow, consistency=cons)
    ready.strength, plain.strength = 0.85, 0.85
    assert torch.equal(ready.step(frames[2], flow_bwd=flow, consistency=cons, prepared=other),
                       plain.step(frames[2], flow_bwd=flow, consistency=cons))
    # nothing to prepare: a scene cut, no mask, strength 0, the resample method
    assert ready.prepare(flow_bwd=flow, consistency=cons, scene_cut=True) is None
    assert ready.prepare(flow_bwd=flow, consistency=None) is None
    assert Stabilizer(strength=0.0).prepare(flow_bwd=flow, consistency=cons) is None
    assert Stabilizer(method="resample").prepare(flow_bwd=flow, consistency=cons) is None
