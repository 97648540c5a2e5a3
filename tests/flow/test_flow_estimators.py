"""Flow estimators: accuracy on a synthetic pair with known motion, conventions, options, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flow_synth import DEVICES, affine_pair, epe
from vidstyle.errors import InvalidOptionError, ModelError, ShapeError, WeightsUnavailableError
from vidstyle.flow import (
    ESTIMATOR_NAMES,
    FlowEstimator,
    RAFTFlow,
    flow_pair,
    make_flow_estimator,
    resize_flow,
)

CPU_ESTIMATORS = ["dis-ultrafast", "dis-fast", "dis-medium", "farneback", "deepflow"]

# The synthetic pair moves a textured image by translation (3.5, −2.25) px, rotation 2° and
# scale 1.03 about the centre: displacements of 1 to 11 px (zero flow has a median EPE of ~6 px).
# Measured median EPE (px) at full resolution: DIS ultrafast 0.28, fast 0.16, medium 0.06,
# Farneback 0.08, DeepFlow 0.03; at scale 0.5: 0.72 / 0.47 / 0.14 / 0.16 / 0.05.
# Bound: sub-pixel accuracy at the working resolution — 0.5 px at full resolution (a warped
# texture then stays within half a pixel of its place), 1.0 px at half resolution (half a pixel there).
MEDIAN_EPE_BOUND = {1.0: 0.5, 0.5: 1.0}


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("name", CPU_ESTIMATORS)
def test_estimator_recovers_known_motion(name, scale, pair):
    est = make_flow_estimator(name, scale=scale)
    assert isinstance(est, FlowEstimator)
    flow = est(pair.a, pair.b)
    assert flow.shape == (2, *pair.a.shape[:2]) and flow.dtype == np.float32
    err = epe(flow, pair.flow)[pair.valid]
    zero = epe(np.zeros_like(flow), pair.flow)[pair.valid]
    assert np.median(err) < MEDIAN_EPE_BOUND[scale]
    assert np.median(err) < 0.2 * np.median(zero)


def test_flow_direction_convention(pair):
    """prev(x) ≈ next(x + flow(x)): the flow from a to b is the forward motion, the reverse is its opposite."""
    est = make_flow_estimator("dis-medium")
    fwd, bwd = flow_pair(est, pair.a, pair.b)
    assert np.median(epe(fwd, pair.flow)[pair.valid]) < 0.3
    assert np.median(epe(bwd, pair.flow_back)[pair.valid_back]) < 0.3
    # a pure translation to the right: u ≈ +tx everywhere
    t = affine_pair(tx=4.0, ty=1.0, angle=0.0, scale=1.0)
    flow = est(t.a, t.b)
    assert abs(np.median(flow[0]) - 4.0) < 0.1 and abs(np.median(flow[1]) - 1.0) < 0.1


def test_input_dtypes_agree(pair):
    """uint8, uint16 and float32 RGB (and grey) inputs give the same flow."""
    est = make_flow_estimator("dis-fast")
    ref = est(pair.a, pair.b)
    a16, b16 = pair.a.astype(np.uint16) * 257, pair.b.astype(np.uint16) * 257
    af, bf = pair.a.astype(np.float32) / 255, pair.b.astype(np.float32) / 255
    np.testing.assert_allclose(est(a16, b16), ref, atol=1e-5)
    np.testing.assert_allclose(est(af, bf), ref, atol=1e-5)
    import cv2

    ga, gb = cv2.cvtColor(pair.a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(pair.b, cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(est(ga, gb), ref, atol=1e-5)


def test_factory_names_and_errors():
    assert make_flow_estimator("dis").name == "dis-fast"
    assert make_flow_estimator("DIS-Medium").name == "dis-medium"
    assert make_flow_estimator().name == "dis-fast"
    with pytest.raises(InvalidOptionError) as info:
        make_flow_estimator("pwcnet")
    for name in ESTIMATOR_NAMES:
        assert name in str(info.value)
    with pytest.raises(InvalidOptionError):
        make_flow_estimator("dis", scale=0)
    with pytest.raises(InvalidOptionError):
        make_flow_estimator("dis", scale=1.5)


def test_shape_errors(pair):
    est = make_flow_estimator("dis-fast")
    with pytest.raises(ShapeError):
        est(pair.a, pair.b[:-1])
    with pytest.raises(ShapeError):
        est(pair.a[..., :2], pair.b[..., :2])
    with pytest.raises(ShapeError):
        est(pair.a[:4, :4], pair.b[:4, :4])
    with pytest.raises(ShapeError):
        est(pair.a.astype(np.int32), pair.b.astype(np.int32))


def test_resize_flow_rescales_vectors():
    flow = np.stack([np.full((10, 20), 2.0, np.float32), np.full((10, 20), -1.0, np.float32)])
    big = resize_flow(flow, height=30, width=80)
    assert big.shape == (2, 30, 80)
    np.testing.assert_allclose(big[0], 8.0)
    np.testing.assert_allclose(big[1], -3.0)


@pytest.fixture
def one_thread():
    """The RAFT tests run on 128×128 inputs, where intra-op threads only add overhead (and spin
    badly on a busy 2-core machine): run them single-threaded."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", ["small", "large"])
def test_raft_random_weights_shapes(size, device):
    """Random weights: only shapes/dtypes/padding are meaningful (not the values)."""
    torch.manual_seed(0)
    est = RAFTFlow(size=size, weights=None, device=device, iterations=1)
    assert est.name == f"raft-{size}"
    a = np.random.default_rng(0).integers(0, 256, (100, 124, 3), dtype=np.uint8)  # pads to 128×128
    b = np.roll(a, 3, axis=1)
    flow = est(a, b)
    assert flow.shape == (2, 100, 124) and flow.dtype == np.float32 and np.isfinite(flow).all()
    if size == "large":
        return
    fwd, bwd = flow_pair(est, a, b)  # one batched call
    assert fwd.shape == bwd.shape == (2, 100, 124)
    # batch of 2 vs batch of 1: same maths, other kernels (TF32 convolutions on CUDA: ~3e-3 apart)
    np.testing.assert_allclose(fwd, flow, atol=1e-3 if device == "cpu" else 2e-2)
    est.scale = 0.5  # 136×160 computed at 68×80 (padded to 128×128), upsampled back
    assert est(a[:68, :80].repeat(2, 0).repeat(2, 1), b[:68, :80].repeat(2, 0).repeat(2, 1)).shape == (2, 136, 160)


def test_raft_offline_is_a_clear_error(monkeypatch):
    import urllib.error

    import vidstyle.flow.estimators as mod

    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv("VIDSTYLE_RAFT_WEIGHTS", raising=False)
    real = mod._raft_builder
    monkeypatch.setattr(
        mod,
        "_raft_builder",
        lambda size: (lambda **kw: offline(**kw) if kw.get("weights") else real(size)[0](**kw), real(size)[1]),
    )
    with pytest.raises(WeightsUnavailableError) as info:
        make_flow_estimator("raft-small", device="cpu")
    msg = str(info.value)
    assert "\n" not in msg and "VIDSTYLE_RAFT_WEIGHTS" in msg and "raft_small" in msg


@pytest.mark.usefixtures("one_thread")
def test_raft_local_weights_file(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(1)
    model = raft_small(weights=None)
    path = tmp_path / "raft_small.pth"
    torch.save(model.state_dict(), path)
    est = RAFTFlow(size="small", weights=path, device="cpu")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), est.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    monkeypatch.setenv("VIDSTYLE_RAFT_WEIGHTS", str(path))
    assert isinstance(make_flow_estimator("raft-small", device="cpu"), RAFTFlow)
    with pytest.raises(ModelError):
        RAFTFlow(size="large", weights=path, device="cpu")  # wrong architecture
    with pytest.raises(WeightsUnavailableError):
        RAFTFlow(size="small", weights=tmp_path / "missing.pth", device="cpu")
