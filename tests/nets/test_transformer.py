"""TransformerNet: any size in, same size out in [0, 1]; FLOPs per preset; config validation."""

from __future__ import annotations

import json

import pytest
import torch
from nets_helpers import DEVICES
from torch.utils.flop_counter import FlopCounterMode

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.nets.transformer import (
    PRESETS,
    NetConfig,
    TransformerNet,
    check_image_batch,
    pad_to_multiple,
)

DTYPES = [torch.float32, torch.float64]
SIZES = [(1, 1), (2, 3), (4, 4), (1, 9), (5, 7), (37, 51)]


def _net(config: NetConfig | str, *, seed: int = 0, device: str = "cpu", dtype: torch.dtype = torch.float32) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(config=config)
    # random affine norms so the net is not close to the identity (fresh InstanceNorm: weight 1, bias 0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    return net.to(device, dtype).eval()


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_any_size_gives_same_size_in_unit_range(preset: str, device: str, dtype: torch.dtype) -> None:
    net = _net(preset, device=device, dtype=dtype)
    with torch.no_grad():
        for h, w in SIZES:
            x = torch.rand(2, 3, h, w, device=device, dtype=dtype)
            y = net(x)
            assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
            assert torch.isfinite(y).all()
            assert y.min() >= 0.0 and y.max() <= 1.0


def test_output_depends_on_input_and_is_per_image() -> None:
    net = _net("tiny")
    x = torch.rand(3, 3, 37, 51)
    with torch.no_grad():
        y = net(x)
        singles = torch.cat([net(x[i : i + 1]) for i in range(3)])
    # instance norm: each image of a batch is processed independently
    torch.testing.assert_close(y, singles, atol=1e-5, rtol=0)
    assert (y[0] - y[1]).abs().mean() > 1e-3


def test_eval_clamps_train_does_not() -> None:
    net = _net("tiny")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        net.train()
        raw = net(x)
        net.eval()
        out = net(x)
    # the random net's raw output leaves [0, 1] somewhere; eval mode clamps exactly that
    assert raw.min() < 0.0 or raw.max() > 1.0
    torch.testing.assert_close(out, raw.clamp(0, 1))


def test_odd_size_crops_the_padded_result() -> None:
    """A 37×51 frame gives the top-left crop of what the net makes of the reflection-padded 40×52 frame."""
    net = _net("small")
    x = torch.rand(1, 3, 37, 51, dtype=torch.float64)
    net = net.double()
    xp = torch.nn.functional.pad(x, (0, 1, 0, 3), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(xp)[..., :37, :51])


@pytest.mark.parametrize("multiple,min_size", [(4, 1), (4, 8), (4, 12), (1, 5)])
def test_pad_to_multiple(multiple: int, min_size: int) -> None:
    for h, w in [(1, 1), (3, 10), (37, 51), (8, 8)]:
        x = torch.rand(1, 3, h, w)
        xp, h0, w0 = pad_to_multiple(x, multiple, min_size=min_size)
        assert (h0, w0) == (h, w)
        H, W = xp.shape[-2:]
        assert H % multiple == 0 and W % multiple == 0
        assert H >= max(h, min_size) and W >= max(w, min_size)
        assert H < max(h, min_size) + multiple and W < max(w, min_size) + multiple
        torch.testing.assert_close(xp[..., :h, :w], x)  # the image is kept, padding goes bottom/right
        if H - h < h and W - w < w and (H > h or W > w):  # reflection: row h+i mirrors row h-2-i
            if H > h:
                torch.testing.assert_close(xp[..., h, :w], x[..., h - 2, :])
            if W > w:
                torch.testing.assert_close(xp[..., :h, w], x[..., :, w - 2])


# ---- FLOPs at 640×360 against the count of multiply-adds written out by hand --------------------


def _reference_flops(cfg: NetConfig, h: int, w: int) -> int:
    """2 × multiply-adds of the convs (the convention of torch.utils.flop_counter; biases not counted)."""
    c1, c2, c3 = cfg.channels
    full, half, quarter = h * w, (h // 2) * (w // 2), (h // 4) * (w // 4)

    def conv(cin: int, cout: int, k: int, pixels: int, depthwise: bool) -> int:
        if depthwise and cin > 3 and k > 1:
            return (k * k * cin + cin * cout) * pixels
        return k * k * cin * cout * pixels

    dw = cfg.depthwise
    macs = 2 * cfg.n_res * conv(c3, c3, 3, quarter, dw)
    if cfg.space_to_depth:  # 48 = 3 × 4 × 4 channels of the space-to-depth image, all at 1/4 resolution
        macs += conv(48, c3, cfg.kernel_in, quarter, False) + conv(c3, 48, cfg.kernel_out, quarter, False)
        return 2 * macs
    macs += conv(3, c1, cfg.kernel_in, full, False)
    macs += conv(c1, c2, 3, half, dw) + conv(c2, c3, 3, quarter, dw)
    macs += conv(c3, c2, 3, half, dw) + conv(c2, c1, 3, full, dw)
    macs += conv(c1, 3, cfg.kernel_out, full, False)
    return 2 * macs


def _counted_flops(net: torch.nn.Module, h: int, w: int) -> int:
    net = net.to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.empty(1, 3, h, w, device="meta"))
    return counter.get_total_flops()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_flops_at_640x360_match_the_reference_count(preset: str) -> None:
    net = TransformerNet(config=preset).eval()
    counted = _counted_flops(net, 360, 640)
    assert counted == _reference_flops(PRESETS[preset], 360, 640)


def test_preset_budgets() -> None:
    flops = {p: _counted_flops(TransformerNet(config=p).eval(), 360, 640) / 1e9 for p in PRESETS}
    assert flops["tiny"] <= 1.2  # real time on a laptop CPU
    assert flops["tiny"] < flops["small"] < flops["full"]
    assert flops["tiny_pyramid"] < flops["small"]
    # Johnson et al. 2016 at 640×360: 35.4 G multiply-adds of its convs (≈ 71 GFLOP)
    assert flops["full"] == pytest.approx(71.0, rel=0.02)


# ---- config validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"channels": (8, 16)},
        {"channels": (8, 16, 32, 64)},
        {"channels": (8, 0, 32)},
        {"channels": (8, -4, 32)},
        {"n_res": -1},
        {"kernel_in": 4},
        {"kernel_out": 0},
        {"kernel_out": -3},
    ],
)
def test_netconfig_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(InvalidOptionError):
        NetConfig(**kwargs)


def test_netconfig_json_round_trip_and_unknown_keys() -> None:
    for cfg in PRESETS.values():
        assert NetConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(InvalidOptionError, match="width"):
        NetConfig.from_dict({"channels": [8, 16, 32], "width": 3})
    with pytest.raises(InvalidOptionError, match="tiny"):
        TransformerNet(config="huge")


def test_custom_config_with_large_kernels_accepts_tiny_frames() -> None:
    cfg = NetConfig(channels=(4, 4, 4), n_res=0, depthwise=False, kernel_in=17, kernel_out=15)
    net = _net(cfg)
    with torch.no_grad():
        for h, w in [(1, 1), (3, 2), (9, 20)]:
            assert net(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(3, 8, 8),  # no batch dim
        torch.rand(1, 4, 8, 8),  # RGBA
        torch.rand(1, 1, 8, 8),  # grey
        torch.zeros(1, 3, 8, 8, dtype=torch.uint8),  # not float
        torch.rand(1, 3, 8, 8, 1),
    ],
)
def test_bad_batches_raise_shape_error(bad: torch.Tensor) -> None:
    with pytest.raises(ShapeError):
        check_image_batch(bad)
    with pytest.raises(ShapeError):
        TransformerNet(config="tiny")(bad)


def test_non_tensor_raises_shape_error() -> None:
    import numpy as np

    with pytest.raises(ShapeError, match="torch.Tensor"):
        check_image_batch(np.zeros((1, 3, 8, 8), np.float32))  # type: ignore[arg-type]


# ---- gradients -------------------------------------------------------------------------------------


def test_gradcheck_small_net_float64() -> None:
    cfg = NetConfig(channels=(2, 3, 3), n_res=1, depthwise=True, kernel_in=3, kernel_out=3)
    net = _net(cfg, dtype=torch.float64).train()  # training mode: no clamp
    x = torch.rand(1, 3, 9, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_every_parameter_gets_a_gradient() -> None:
    net = _net("tiny").train()
    y = net(torch.rand(2, 3, 20, 24))
    y.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_space_to_depth_net_runs_at_quarter_resolution_only() -> None:
    """Every conv of the space-to-depth ``tiny`` sees a 1/4-resolution map, and its output is the
    depth-to-space of a 48-channel map added to the input."""
    net = _net("tiny")
    seen: list[tuple[int, int]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
             for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 96))
    for h in hooks:
        h.remove()
    assert len(seen) == 2 + 2 * net.config.n_res * 2  # depthwise + pointwise in each residual conv
    assert all(hw in {(16, 24), (18, 26)} for hw in seen)  # 1/4 resolution, with or without its reflection pad
    assert net.head[1].out_channels == 48 and isinstance(net.head[2], torch.nn.PixelShuffle)
    assert net.head[3].taps == (0.125, 0.25, 0.25, 0.25, 0.125)  # the grid filter (tests/test_filtering.py)



def test_grid_filter_keeps_16_bit_dtypes() -> None:
    """On a CPU the tiny net's output filter computes 16-bit inputs in float32 and returns their dtype."""
    f = _net("tiny").head[3]
    x = torch.rand(1, 3, 20, 24)
    ref = f(x)
    for dt in (torch.bfloat16, torch.float16):
        out = f(x.to(dt))
        assert out.dtype == dt
        torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=1e-2)
