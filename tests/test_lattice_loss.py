"""The lattice loss (vidstyle.losses.lattice) against a loop-by-loop reference, its properties, and gradcheck."""

from __future__ import annotations

import pytest
import torch

from vidstyle.errors import ShapeError
from vidstyle.losses.lattice import LatticeLoss, lattice_loss, phase_energies, phase_energy_imbalance

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _reference(image: torch.Tensor, period: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-phase energies and the loss, by explicit loops over phases (the module docstring's formula)."""
    n, c, h, w = image.shape
    wx, hy = (w - 1) // period * period, (h - 1) // period * period
    ex = torch.zeros(n, c, period, dtype=torch.float64)
    ey = torch.zeros(n, c, period, dtype=torch.float64)
    img = image.double().cpu()
    for k in range(period):
        cols = list(range(k, wx, period))
        rows = list(range(k, hy, period))
        ex[..., k] = torch.stack([(img[..., :, x + 1] - img[..., :, x]).pow(2) for x in cols], -1).mean(dim=(-1, -2))
        ey[..., k] = torch.stack([(img[..., y + 1, :] - img[..., y, :]).pow(2) for y in rows], -1).mean(dim=(-1, -2))
    loss = sum(((e - e.mean(-1, keepdim=True)).pow(2).mean(-1) / e.mean(-1).pow(2)).mean() for e in (ex, ey))
    return ex, ey, loss


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("period", [2, 4])
def test_matches_reference(device, dtype, period):
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 19, 23, generator=gen).to(device=device, dtype=dtype)  # sizes not multiples of period
    ex, ey, loss = _reference(image, period)
    got_x, got_y = phase_energies(image, period=period)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(got_x.double().cpu(), ex, **tol)
    torch.testing.assert_close(got_y.double().cpu(), ey, **tol)
    torch.testing.assert_close(lattice_loss(image, period=period).double().cpu(), loss, **tol)
    torch.testing.assert_close(LatticeLoss(period=period)(image).double().cpu(), loss, **tol)


def test_a_grid_locked_texture_scores_high_and_a_free_one_low():
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, 64, 64, generator=gen)
    # columns a b b b in every group of 4: the horizontal steps only at two of the four phases (locked to the grid)
    a, b = noise[..., :, 0::4], noise[..., :, 1::4]
    locked = torch.stack([a, b, b, b], dim=-1).flatten(-2)
    assert lattice_loss(noise).item() < 0.01
    assert lattice_loss(locked).item() > 0.3
    # the measure is phase- and contrast-free: a shift of the image by one pixel or a gain leaves it alike
    assert lattice_loss(torch.roll(locked, 1, dims=-1)).item() == pytest.approx(lattice_loss(locked).item(), rel=0.05)
    assert lattice_loss(0.1 * locked).item() == pytest.approx(lattice_loss(locked).item(), rel=1e-4)
    x, y = phase_energy_imbalance(locked[0])
    assert x > 0.5 and y < 0.1  # only the horizontal differences are grid-locked


def test_flat_image_is_zero_and_finite():
    flat = torch.full((1, 3, 16, 16), 0.5, requires_grad=True)
    loss = lattice_loss(flat)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(flat.grad).all()


def test_gradcheck():
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 2, 10, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: lattice_loss(t, period=2), (image,))


def test_bad_shapes_and_period():
    with pytest.raises(ShapeError, match="N×C×H×W"):
        lattice_loss(torch.rand(3, 16, 16))
    with pytest.raises(ShapeError, match="8×8"):
        lattice_loss(torch.rand(1, 3, 7, 16))
    with pytest.raises(ValueError, match="period"):
        lattice_loss(torch.rand(1, 3, 16, 16), period=1)
    with pytest.raises(ValueError, match="period"):
        LatticeLoss(period=True)
    with pytest.raises(ShapeError, match="RGB"):
        phase_energy_imbalance(torch.rand(1, 16, 16))
