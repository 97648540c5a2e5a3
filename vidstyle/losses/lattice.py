"""The lattice loss: how unevenly an image's fine texture falls on the phases of a fixed pixel grid.

A network whose output layer is a depth-to-space (sub-pixel) convolution paints each ``period``×``period`` block
of output pixels from one low-resolution feature vector, with weights of its own for each position in the block.
Trained for texture, such a network learns to put its strongest strokes at the same positions of every block:
the output's fine contrast is then a function of ``x mod period`` and ``y mod period``, which shows at 100 % zoom
as fine strokes locked to a grid (BENCHMARKS.md, "The default model's lattice"). A blur does not remove it
without removing the texture, and the pattern's phase changes with the content, so a fixed 4×4 pattern's
energy does not measure it either.

What does measure it is the *energy* of the neighbour differences per phase. For the horizontal differences
``dx = I[:, x + 1] − I[:, x]`` grouped by ``x mod period`` (and the vertical ones by ``y mod period``), natural
images have the same mean square in every group; a latticed output does not. The loss is the squared
coefficient of variation of those per-phase energies, per image and channel, averaged::

    E_k = mean over (y, x ≡ k) of dx²,  L_x = var_k(E_k) / (mean_k E_k)²   (the same for dy), L = mean(L_x + L_y)

It is 0 for an image whose differences are equally strong at every phase, does not depend on the image's
contrast (so it cannot be lowered by flattening the texture; a flat image has no energy to compare and scores
0), and a network can only lower it by spreading its strokes over the phases.
:func:`phase_energy_imbalance` is the same measure as a number for benchmarks (the coefficient of variation,
its square root).
"""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.colour import luma_torch
from vidstyle.errors import ShapeError

__all__ = ["phase_energies", "lattice_loss", "LatticeLoss", "phase_energy_imbalance"]


def _check_period(period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an integer >= 2, got {period!r}")


def _check(image: torch.Tensor, period: int, name: str) -> None:
    if image.ndim != 4:
        raise ShapeError(f"{name} expects N×C×H×W, got shape {tuple(image.shape)}")
    _check_period(period)
    if image.shape[-1] < 2 * period or image.shape[-2] < 2 * period:
        raise ShapeError(f"{name} needs at least {2 * period}×{2 * period} pixels for period {period}, "
                         f"got {tuple(image.shape[-2:])}")


def phase_energies(image: torch.Tensor, *, period: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared neighbour difference at each grid phase: (horizontal, vertical), each N×C×``period``.

    Entry ``k`` of the horizontal ones is the mean of ``(I[..., y, x + 1] − I[..., y, x])²`` over the columns
    ``x ≡ k (mod period)``; of the vertical ones, of ``(I[..., y + 1, x] − I[..., y, x])²`` over the rows
    ``y ≡ k``. Only whole periods are used, so every phase averages the same number of differences.
    """
    _check(image, period, "phase_energies")
    w = (image.shape[-1] - 1) // period * period
    h = (image.shape[-2] - 1) // period * period
    dx = (image[..., :, 1:w + 1] - image[..., :, :w]).pow(2)
    dy = (image[..., 1:h + 1, :] - image[..., :h, :]).pow(2)
    n, c = image.shape[:2]
    ex = dx.reshape(n, c, dx.shape[-2], w // period, period).mean(dim=(2, 3))
    ey = dy.reshape(n, c, h // period, period, dy.shape[-1]).mean(dim=(2, 4))
    return ex, ey


def lattice_loss(image: torch.Tensor, *, period: int = 4, eps: float = 1e-12) -> torch.Tensor:
    """Mean over images and channels of ``var_k(E_k) / (mean_k E_k)² `` for the horizontal and the vertical
    per-phase energies of :func:`phase_energies` (summed); 0 when the differences are equally strong at
    every phase. ``eps`` keeps a flat image finite (its loss is 0); the ratio is at most ``period − 1`` whatever
    the contrast, so a faint texture weighs no more than a strong one."""
    _check(image, period, "lattice_loss")
    total = image.new_zeros(())
    for e in phase_energies(image, period=period):
        mean = e.mean(dim=-1)
        total = total + (e.var(dim=-1, unbiased=False) / (mean.pow(2) + eps)).mean()
    return total


class LatticeLoss(nn.Module):
    """:func:`lattice_loss` as a module (no targets: the reference is "every phase alike")."""

    def __init__(self, *, period: int = 4) -> None:
        super().__init__()
        _check_period(period)
        self.period = period

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return lattice_loss(image, period=self.period)


def phase_energy_imbalance(image: torch.Tensor, *, period: int = 4) -> tuple[float, float]:
    """(horizontal, vertical) coefficient of variation of the per-phase energies of the luminance
    (:func:`vidstyle.colour.luma_torch`, 0.299 R + 0.587 G + 0.114 B) of a 3×H×W or 1×3×H×W image: the benchmark form of the lattice loss.
    Photos give 0.02–0.1 (a video frame shrunk 2× keeps its codec's 8-pixel blocks as a 4-pixel grid: up to 0.26);
    the student models trained without the lattice loss 0.25–0.70, with it 0.03–0.08 (BENCHMARKS.md)."""
    x = image if image.ndim == 4 else image[None]
    if x.shape[1] != 3:
        raise ShapeError(f"phase_energy_imbalance expects RGB, got shape {tuple(image.shape)}")
    y = luma_torch(x.double())
    out = []
    for e in phase_energies(y, period=period):
        out.append(float((e.std(dim=-1, unbiased=False) / e.mean(dim=-1).clamp_min(1e-12)).mean()))
    return out[0], out[1]
