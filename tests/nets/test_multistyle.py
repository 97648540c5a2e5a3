"""Multi-style network (conditional instance norm): formula, mixing, strength, files, add-style."""

from __future__ import annotations

import os

import pytest
import torch

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.nets.multistyle import (
    IDENTITY,
    ConditionalInstanceNorm2d,
    MultiStyleNet,
    add_style_row,
    mix_vector,
    strength_mix,
)


def _net(seed: int = 0, styles: tuple[str, ...] = ("a", "b")) -> MultiStyleNet:
    torch.manual_seed(seed)
    net = MultiStyleNet(config="tiny", styles=styles).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.normal_(1.0, 0.5)
                m.bias.normal_(0.0, 0.5)
    return net


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conditional_norm_is_instance_norm_with_the_mixed_affine(dtype: torch.dtype) -> None:
    net = _net().to(dtype)
    norm = next(m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d))
    x = torch.randn(2, norm.weight.shape[1], 5, 6, dtype=dtype)
    mix = torch.tensor([[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]], dtype=dtype)
    norm._cond.mix = mix
    got = norm(x)
    norm._cond.mix = None
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    ref = (x - mean) / torch.sqrt(var + norm.eps)
    g = mix @ norm.weight
    b = mix @ norm.bias
    torch.testing.assert_close(got, ref * g[:, :, None, None] + b[:, :, None, None])


def test_gradcheck_through_the_mix() -> None:
    norm = ConditionalInstanceNorm2d(3, 2, conditioning=_net()._cond).double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)

    def f(mix: torch.Tensor) -> torch.Tensor:
        norm._cond.mix = mix
        return norm(x)

    assert torch.autograd.gradcheck(f, (torch.tensor([[0.3, 0.7]], dtype=torch.float64, requires_grad=True),))


def test_one_hot_mix_selects_a_style_and_a_batch_can_mix_per_image() -> None:
    net = _net()
    x = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        a = net(x, torch.tensor([0.0, 1.0, 0.0]))
        b = net(x, torch.tensor([0.0, 0.0, 1.0]))
        both = net(x, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert (a - b).abs().max() > 1e-3  # different styles, different pictures
    torch.testing.assert_close(both[0], a[0])
    torch.testing.assert_close(both[1], b[1])
    with pytest.raises(ShapeError, match="mix must be 2×3"):
        net(x, torch.ones(2))


def test_mix_vector_and_strength() -> None:
    styles = [IDENTITY, "a", "b"]
    torch.testing.assert_close(mix_vector({"a": 3, "b": 1}, styles), torch.tensor([0.0, 0.75, 0.25]))
    torch.testing.assert_close(strength_mix(torch.tensor([0.0, 0.75, 0.25]), 0.4), torch.tensor([0.6, 0.3, 0.1]))
    with pytest.raises(InvalidOptionError, match="no style 'c'.*choose from a, b"):
        mix_vector({"c": 1}, styles)
    with pytest.raises(InvalidOptionError, match=">= 0"):
        mix_vector({"a": -1, "b": 2}, styles)
    with pytest.raises(InvalidOptionError, match="sum to 0"):
        mix_vector({"a": 0}, styles)


def test_file_round_trip(tmp_path) -> None:
    from vidstyle.nets.registry import load_model, save_model

    net = _net()
    path = save_model(tmp_path / "m.safetensors", net=net, name="m", style="a,b")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file the user writes, not 0600
    model = load_model(tmp_path / "m.safetensors")
    assert model.architecture == "multistyle" and model.styles == [IDENTITY, "a", "b"]
    x = torch.rand(1, 3, 32, 32)
    mix = torch.tensor([0.2, 0.3, 0.5])
    with torch.no_grad():
        torch.testing.assert_close(model(x, mix), net(x, mix).clamp(0, 1))


def test_add_style_row_starts_at_the_mean_of_the_styles() -> None:
    net = _net()
    norm = next(m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d))
    mean = norm.weight[1:].mean(0).detach().clone()
    assert add_style_row(net, "c") == 3 and net.styles[-1] == "c"
    torch.testing.assert_close(norm.weight[3], mean)
    with pytest.raises(InvalidOptionError, match="already has a style named 'a'"):
        add_style_row(net, "a")


def test_strength_zero_is_the_identity_slot() -> None:
    net = _net()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ident = net(x, torch.tensor([1.0, 0.0, 0.0]))
        zero = net(x, strength_mix(torch.tensor([0.0, 1.0, 0.0]), 0.0))
    torch.testing.assert_close(zero, ident)


def test_keyframed_mix_cross_dissolves_in_the_pipeline(tmp_path) -> None:
    """style_mix "a=0:1, 4:0; b=0:0, 4:1": frame 0 is style a, frame 4 style b, frame 2 halfway in γ/β."""
    import numpy as np

    from vidstyle.api import build_stages
    from vidstyle.frame import Frame
    from vidstyle.nets.registry import save_model

    net = _net()
    path = save_model(tmp_path / "m.safetensors", net=net, name="m", style="a,b")
    frame = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)

    def run(mix: str) -> list:
        stages = build_stages(model=str(path), style_mix=mix, stabilize=0, device="cpu", threads=1)
        out = [f.stylized for i in range(5) for f in stages[0].process(Frame(index=i, image=frame))]
        stages[0].close()
        return out

    fade = run("a=0:1, 4:0; b=0:0, 4:1")
    only_a, only_b, half = run("a"), run("b"), run("a:1,b:1")
    assert np.array_equal(fade[0], only_a[0]) and np.array_equal(fade[4], only_b[4])
    assert np.array_equal(fade[2], half[2]) and not np.array_equal(fade[2], fade[0])
