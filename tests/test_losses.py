"""Losses of vidstyle.losses against hand-computed references, plus gradchecks (float64)."""

from __future__ import annotations

import pytest
import torch

from vidstyle.errors import ShapeError
from vidstyle.losses import (
    ContentLoss,
    LongTermTemporalLoss,
    StyleLoss,
    TemporalLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    long_term_temporal_loss,
    long_term_weights,
    style_loss,
    temporal_loss,
    tv_loss,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _t(values, device, dtype):
    return torch.tensor(values, device=device, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gram_matrix_by_hand(device, dtype):
    # C=2, H=1, W=2: channel a = (1, 2), channel b = (3, 4); G = F Fᵀ / (C·H·W) = F Fᵀ / 4
    f = _t([[[[1.0, 2.0]], [[3.0, 4.0]]]], device, dtype)
    expected = _t([[[5.0, 11.0], [11.0, 25.0]]], device, dtype) / 4
    torch.testing.assert_close(gram_matrix(f), expected)
    with pytest.raises(ShapeError):
        gram_matrix(f[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_content_loss_by_hand(device, dtype):
    x = _t([[[[1.0, 2.0], [3.0, 4.0]]]], device, dtype)
    y = _t([[[[1.0, 0.0], [5.0, 4.0]]]], device, dtype)
    # squared diffs 0, 4, 4, 0 → mean 2
    assert content_loss(x, y).item() == pytest.approx(2.0)
    assert ContentLoss(y)(x).item() == pytest.approx(2.0)
    # a 1×… target broadcasts over a batch
    assert content_loss(torch.cat([x, y]), y).item() == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        content_loss(x, y[:, :, :1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_style_loss_by_hand(device, dtype):
    f1 = _t([[[[1.0, 2.0]], [[3.0, 4.0]]]], device, dtype)  # Gram [[5,11],[11,25]]/4
    f2 = _t([[[[1.0, 0.0]], [[0.0, 1.0]]]], device, dtype)  # Gram [[1,0],[0,1]]/4
    g1 = gram_matrix(f1)
    g2 = gram_matrix(f2)
    # MSE of Grams: ((4)² + 11² + 11² + 24²)/16/4 = (16+121+121+576)/64 = 834/64
    l = style_loss({"a": f1}, {"a": g2})
    assert l.item() == pytest.approx(834 / 64)
    # two layers with weights: layer b identical → contributes 0; layer a weight 0.5
    l2 = style_loss({"a": f1, "b": f2}, {"a": g2, "b": g2}, layer_weights={"a": 0.5, "b": 3.0})
    assert l2.item() == pytest.approx(0.5 * 834 / 64)
    # StyleLoss blends the targets: mix (1, 3) → target Gram = (g1 + 3 g2)/4
    mod = StyleLoss(style_features=[{"a": f1}, {"a": f2}], mix=[1.0, 3.0])
    torch.testing.assert_close(mod.targets()["a"], (g1 + 3 * g2) / 4)
    target = (g1 + 3 * g2) / 4
    expected = ((g2 - target) ** 2).mean()
    assert mod({"a": f2}).item() == pytest.approx(expected.item())
    with pytest.raises(ShapeError):
        style_loss({"b": f1}, {"a": g2})
    with pytest.raises(ShapeError):
        StyleLoss(style_features=[{"a": f1}], mix=[1.0, 2.0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_loss_by_hand(device, dtype):
    img = _t([[[[1.0, 2.0], [4.0, 8.0]]]], device, dtype)
    # horizontal diffs 1, 4 → mean of squares 8.5; vertical diffs 3, 6 → 22.5
    assert tv_loss(img).item() == pytest.approx(31.0)
    assert TVLoss()(img).item() == pytest.approx(31.0)
    with pytest.raises(ShapeError):
        tv_loss(img[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_temporal_loss_by_hand(device, dtype):
    # N=1, C=2, H=1, W=2 → D = 4
    x = _t([[[[1.0, 2.0]], [[3.0, 4.0]]]], device, dtype)
    w = _t([[[[0.0, 0.0]], [[0.0, 0.0]]]], device, dtype)
    c = _t([[1.0, 0.0]], device, dtype)  # H×W: only the first pixel counts
    # (1/4)·(1² + 3²) = 2.5
    assert temporal_loss(x, w, c).item() == pytest.approx(2.5)
    for shape in [(1, 1, 2), (1, 1, 1, 2)]:
        assert temporal_loss(x, w, c.reshape(shape)).item() == pytest.approx(2.5)
    assert TemporalLoss(warped_prev=w, mask=c)(x).item() == pytest.approx(2.5)
    # full mask: plain mean of squares (1+4+9+16)/4
    assert temporal_loss(x, w, torch.ones_like(c)).item() == pytest.approx(7.5)
    # soft mask weights
    assert temporal_loss(x, w, _t([[0.5, 0.25]], device, dtype)).item() == pytest.approx(
        (0.5 * (1 + 9) + 0.25 * (4 + 16)) / 4
    )
    with pytest.raises(ShapeError):
        temporal_loss(x, w[:, :1], c)
    with pytest.raises(ShapeError):
        temporal_loss(x, w, _t([[1.0, 0.0, 1.0]], device, dtype))


def test_long_term_weights_count_each_pixel_once():
    c1 = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    c2 = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    c4 = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    l1, l2, l4 = long_term_weights([c1, c2, c4])
    torch.testing.assert_close(l1, c1)
    torch.testing.assert_close(l2, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))  # max(c2 − c1, 0)
    torch.testing.assert_close(l4, torch.tensor([[0.0, 0.0, 1.0, 0.0]]))  # max(c4 − c1 − c2, 0)
    total = l1 + l2 + l4
    assert total.max().item() == 1.0
    torch.testing.assert_close(total, torch.clamp(c1 + c2 + c4, max=1.0))
    with pytest.raises(ShapeError):
        long_term_weights([])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_long_term_temporal_loss_by_hand(device, dtype):
    # N=1, C=1, H=1, W=3 → D = 3
    x = _t([[[[1.0, 2.0, 3.0]]]], device, dtype)
    w1 = _t([[[[0.0, 0.0, 0.0]]]], device, dtype)
    w2 = _t([[[[0.0, 1.0, 1.0]]]], device, dtype)
    c1 = _t([[1.0, 0.0, 0.0]], device, dtype)
    c2 = _t([[1.0, 1.0, 0.0]], device, dtype)
    # c_long: lag 1 → (1,0,0); lag 2 → (0,1,0). Loss = (1/3)(1²) + (1/3)((2−1)²) = 2/3
    ref = 2.0 / 3.0
    assert long_term_temporal_loss(x, [w1, w2], [c1, c2]).item() == pytest.approx(ref)
    assert LongTermTemporalLoss(warped_prevs=[w1, w2], masks=[c1, c2])(x).item() == pytest.approx(ref)
    # one lag is the short-term loss
    assert long_term_temporal_loss(x, [w1], [c1]).item() == pytest.approx(temporal_loss(x, w1, c1).item())
    # without the c_long rule the first pixel would count twice: (1 + 1 + 1)/3
    naive = temporal_loss(x, w1, c1) + temporal_loss(x, w2, c2)
    assert naive.item() == pytest.approx(1.0)
    with pytest.raises(ShapeError):
        long_term_temporal_loss(x, [w1, w2], [c1])


def test_long_term_loss_batch_and_channels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    ws = [torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    ms = [(torch.rand(2, 1, 4, 5, generator=g) > 0.4).double() for _ in range(3)]
    got = long_term_temporal_loss(x, ws, ms)
    # reference: explicit loops, each pixel once to the nearest visible lag
    total = 0.0
    d = x.numel()
    for n in range(2):
        for i in range(4):
            for j in range(5):
                for k in range(3):
                    if ms[k][n, 0, i, j] > 0:
                        total += ((x[n, :, i, j] - ws[k][n, :, i, j]) ** 2).sum().item()
                        break
    assert got.item() == pytest.approx(total / d)


def test_gradcheck_temporal_losses():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    m = torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)  # soft mask: also checks the weighting
    assert torch.autograd.gradcheck(lambda a, b: temporal_loss(a, b, m), (x, w))
    assert torch.autograd.gradgradcheck(lambda a, b: temporal_loss(a, b, m), (x, w))
    ws = [torch.rand(1, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ms = [(torch.rand(1, 1, 5, 6, generator=g) > 0.5).double() for _ in range(3)]
    assert torch.autograd.gradcheck(lambda a, *b: long_term_temporal_loss(a, list(b), ms), (x, *ws))
    mod = TemporalLoss(warped_prev=w.detach(), mask=m)
    assert torch.autograd.gradcheck(mod, (x,))
    lmod = LongTermTemporalLoss(warped_prevs=[v.detach() for v in ws], masks=ms)
    assert torch.autograd.gradcheck(lmod, (x,))
    # the analytic gradient: ∂L/∂x = 2 c (x − w) / D
    x.grad = None
    temporal_loss(x, w.detach(), m).backward()
    torch.testing.assert_close(x.grad, 2 * m * (x - w).detach() / x.numel())


def test_gradcheck_feature_losses():
    g = torch.Generator().manual_seed(2)
    f = torch.rand(1, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(1, 3, 3, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: content_loss(a, t), (f,))
    assert torch.autograd.gradcheck(gram_matrix, (f,))
    assert torch.autograd.gradcheck(lambda a: style_loss({"a": a}, {"a": gram_matrix(t)}, layer_weights={"a": 2.0}), (f,))
    assert torch.autograd.gradcheck(tv_loss, (f,))
