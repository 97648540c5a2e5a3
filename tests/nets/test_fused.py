"""The fused inference form of TransformerNet computes the same function as the net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError
from vidstyle.nets.fused import (
    _InstanceNorm,
    FusedTransformerNet,
    fuse_for_inference,
    space_to_depth_conv_weight,
    upsample_conv_weight,
    upsample_conv_weight_2x2,
)
from vidstyle.nets.transformer import NetConfig, TransformerNet

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _random_net(config: NetConfig | str, seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(config=config)
    with torch.no_grad():
        for p in net.parameters():  # trained-like scales: norm affines away from (1, 0)
            p.normal_(0.0, 0.3)
    return net.eval()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_upsample_conv_weight_matches_upsample_then_conv(device: str, dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 5, 7, 9, device=device, dtype=dtype)
    k = torch.randn(4, 5, 3, 3, device=device, dtype=dtype)
    ref = F.conv2d(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect"), k)
    w = upsample_conv_weight(k)
    assert w.shape == (16, 5, 3, 3) and w.dtype == dtype
    out = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w), 2)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)


def test_upsample_conv_weight_phase_taps_by_hand() -> None:
    # one channel, kernel rows k0, k1, k2 (columns all equal): phase 0 rows see (k0, k1+k2, 0), phase 1 (0, k0+k1, k2)
    k = torch.tensor([[1.0, 1.0, 1.0], [10.0, 10.0, 10.0], [100.0, 100.0, 100.0]]).view(1, 1, 3, 3)
    w = upsample_conv_weight(k).view(4, 3, 3)
    assert w[0].sum(dim=1).tolist() == [3.0, 330.0, 0.0]  # phase (0, 0): rows (k0, k1+k2, 0)
    assert w[3].sum(dim=1).tolist() == [0.0, 33.0, 300.0]  # phase (1, 1): rows (0, k0+k1, k2)
    assert w.sum(dim=(1, 2)).tolist() == [k.sum().item()] * 4  # every phase keeps the kernel's total weight


def test_upsample_conv_weight_rejects_other_kernels() -> None:
    with pytest.raises(InvalidOptionError, match="3×3"):
        upsample_conv_weight(torch.zeros(2, 2, 5, 5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_space_to_depth_conv_weight_matches_conv(device: str, dtype: torch.dtype, k: int) -> None:
    torch.manual_seed(k)
    x = torch.rand(2, 3, 12 + k - 1, 10 + k - 1, device=device, dtype=dtype)
    w = torch.randn(2, 3, k, k, device=device, dtype=dtype)
    ws = space_to_depth_conv_weight(w)
    assert ws.shape == (8, 12, (k + 1) // 2, (k + 1) // 2)
    # every tap lands once: the total weight is kept per output phase
    torch.testing.assert_close(ws.view(2, 4, -1).sum(-1), w.sum(dim=(1, 2, 3))[:, None].expand(2, 4))
    out = F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(x, 2), ws), 2)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(out, F.conv2d(x, w), atol=tol, rtol=tol)


def test_space_to_depth_conv_weight_rejects_even_kernels() -> None:
    with pytest.raises(InvalidOptionError, match="k odd"):
        space_to_depth_conv_weight(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("min_head_kernel", [1, 99])
def test_space_to_depth_head_equals_the_head(min_head_kernel: int) -> None:
    net = _random_net("small")  # 5×5 head
    x = torch.rand(1, 3, 30, 42)
    with torch.inference_mode():
        fused = fuse_for_inference(net, min_head_kernel=min_head_kernel)
        assert (fused.head is net.head) == (min_head_kernel == 99)
        torch.testing.assert_close(fused(x), net(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", ["tiny", "tiny_pyramid", "small", "full"])
@pytest.mark.parametrize("hw", [(64, 96), (37, 53), (5, 6)])
def test_fused_net_equals_net(device: str, size: str, hw: tuple[int, int]) -> None:
    net = _random_net(size).to(device)
    x = torch.rand(2, 3, *hw, device=device)
    with torch.inference_mode():
        ref = net(x)
        fused = fuse_for_inference(net)
        out = fused(x)
    # the space-to-depth tiny net has no up-blocks: it runs as trained
    assert fused.fused_blocks == (0 if net.config.space_to_depth else 2)
    assert out.shape == ref.shape == x.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("size", ["tiny_pyramid", "full"])
def test_fused_net_float64_exact(size: str) -> None:
    net = _random_net(size).double()
    x = torch.rand(1, 3, 40, 44, dtype=torch.float64)
    with torch.inference_mode():
        fused = fuse_for_inference(net)
        torch.testing.assert_close(fused(x), net(x), atol=1e-12, rtol=1e-12)
    # full: the last up-block and the 9×9 head run as one module on the phase images
    assert (type(fused.head).__name__ == "_FusedUpHead") == (size == "full")


@pytest.mark.parametrize("size", ["tiny_pyramid", "full"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_net_channels_last(size: str, batch: int, dtype: torch.dtype) -> None:
    net = _random_net(size).to(dtype)
    x = torch.rand(batch, 3, 48, 66, dtype=dtype)
    with torch.inference_mode():
        ref = net(x)
        fused = fuse_for_inference(net).to(memory_format=torch.channels_last)
        out = fused(x.contiguous(memory_format=torch.channels_last))
    # float32: the plain net itself differs by ~2.4e-5 between NCHW and channels-last (summation order)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_instance_norm_as_batch_norm(channels_last: bool, batch: int) -> None:
    torch.manual_seed(3)
    norm = nn.InstanceNorm2d(5, affine=True)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.5)
        norm.bias.normal_(0.0, 0.5)
    x = torch.randn(batch, 5, 9, 11) * 3 + 2
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = _InstanceNorm(norm)(x)
        ref = F.instance_norm(x.contiguous(), weight=norm.weight, bias=norm.bias, eps=norm.eps)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # by hand: each image's channel has mean bias and standard deviation |weight|
    torch.testing.assert_close(out.mean(dim=(2, 3)), norm.bias.detach().expand(batch, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3), correction=0), norm.weight.detach().abs().expand(batch, 5), atol=1e-4, rtol=0)


def test_fused_net_bfloat16() -> None:
    net = _random_net("tiny_pyramid")
    x = torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        ref = net(x)
        low = fuse_for_inference(_random_net("tiny_pyramid")).to(torch.bfloat16)(x.bfloat16()).float()
    assert (low - ref).abs().mean() < 0.02  # bf16 keeps ~3 significant digits


def test_max_dense_ratio_keeps_separable_blocks() -> None:
    net = _random_net("tiny_pyramid")
    kept = fuse_for_inference(net, max_dense_ratio=0.5)
    assert kept.fused_blocks == 0  # both depthwise up-blocks cost more than 0.5x as dense kernels
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(kept(x), net(x), atol=1e-6, rtol=1e-6)


def test_fuse_leaves_the_net_alone_and_refuses_training() -> None:
    net = _random_net("tiny_pyramid")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = fuse_for_inference(net)
    assert isinstance(fused, FusedTransformerNet)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(InvalidOptionError, match="inference only"):
        fused.train()
    with pytest.raises(InvalidOptionError, match="TransformerNet"):
        fuse_for_inference(torch.nn.Conv2d(3, 3, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_upsample_conv_weight_2x2_is_the_non_zero_window(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    x = torch.rand(2, 5, 7, 9, dtype=dtype)
    k = torch.randn(4, 5, 3, 3, dtype=dtype)
    w3, w2 = upsample_conv_weight(k).view(4, 2, 2, 5, 3, 3), upsample_conv_weight_2x2(k)
    assert w2.shape == (16, 5, 2, 2)
    # outside its 2×2 window every phase kernel is zero: nothing is dropped
    for a in (0, 1):
        for b in (0, 1):
            window = torch.zeros(3, 3, dtype=torch.bool)
            window[a:a + 2, b:b + 2] = True
            assert float(w3[:, a, b][..., ~window].abs().max()) == 0.0
    # phase (a, b) is the 2×2 conv's output shifted by (a, b)
    ref = F.conv2d(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect"), k)
    z = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w2).view(2, 4, 2, 2, 8, 10)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a in (0, 1):
        for b in (0, 1):
            torch.testing.assert_close(z[:, :, a, b, a:a + 7, b:b + 9], ref[:, :, a::2, b::2], atol=tol, rtol=tol)
