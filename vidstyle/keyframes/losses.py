"""The keyframe network's training loss: L1 reconstruction plus a relative perceptual (VGG feature) term.

For the network's output ``y`` and the painted target ``t`` (RGB in [0, 1], ``N×3×H×W``):

    L1(y, t)         = mean |y − t|
    L_perc(y, t)     = Σ_l mean((φ_l(y) − φ_l(t))²) / mean(φ_l(t)²)        l ∈ relu1_2, relu2_1
    L                = L1 + w · L_perc

``φ_l`` are VGG19 features (:class:`vidstyle.nets.vgg.VGGFeatures`). Each layer's squared error is divided
by the target's own mean square, so the term is scale-free (it reads the same for the Caffe and the
torchvision weights) and each layer counts alike; ``w = 1`` puts it on the order of the L1 term.
Pixels alone give the paint's colours but smear its strokes (the L1 optimum of an uncertain stroke is a
blur); the feature term keeps their texture (Texler et al. 2020 use a perceptual loss for the same reason).
relu2_1 rather than relu2_2: conv2_2 would add ~40 % to the loss network's cost per step, which on a CPU
dominates the step (the keyframe network is small).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["PERCEPTUAL_LAYERS", "KeyframeLoss", "keyframe_loss", "relative_feature_loss", "relative_gram_loss"]

PERCEPTUAL_LAYERS = ("relu1_2", "relu2_1")


def relative_feature_loss(features: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                          layers: Sequence[str] = PERCEPTUAL_LAYERS) -> torch.Tensor:
    """``Σ_l mean((F_l − T_l)²) / mean(T_l²)`` over ``layers`` (a target of zeros counts its layer as 0)."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for layer in layers:
        f, t = features[layer], target[layer]
        if f.shape != t.shape:
            raise ShapeError(f"perceptual loss: {layer} features {tuple(f.shape)} and target {tuple(t.shape)} differ")
        denom = t.detach().pow(2).mean()
        if float(denom) > 0:
            total = total + (f - t).pow(2).mean() / denom
    return total


def relative_gram_loss(features: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                       layers: Sequence[str] = PERCEPTUAL_LAYERS) -> torch.Tensor:
    """``Σ_l mean_n ‖G(F_l,n) − G(T_l,n)‖² / mean_n ‖G(T_l,n)‖²``: each patch's Gram matrix (``F Fᵀ / HW``)
    against its painted patch's, relative like :func:`relative_feature_loss`. The feature term compares
    positions, so an output whose strokes are uncertain by a pixel or two is pushed to the blurred average;
    the Gram term compares the patch's statistics (how much dark outline, how much flat colour), which a
    blur changes."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for layer in layers:
        f, t = features[layer], target[layer]
        n, c = f.shape[:2]
        gf = torch.bmm(f.reshape(n, c, -1), f.reshape(n, c, -1).transpose(1, 2)) / f[0, 0].numel()
        gt = torch.bmm(t.reshape(n, c, -1), t.reshape(n, c, -1).transpose(1, 2)) / t[0, 0].numel()
        denom = gt.detach().pow(2).sum(dim=(1, 2)).mean()
        if float(denom) > 0:
            total = total + (gf - gt).pow(2).sum(dim=(1, 2)).mean() / denom
    return total


def keyframe_loss(output: torch.Tensor, target: torch.Tensor, *, vgg: nn.Module | None = None,
                  perceptual_weight: float = 1.0, gram_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """``L1 + w · L_perc + g · L_gram`` (module docstring) and its parts; without ``vgg`` (or ``w = g = 0``),
    L1 alone."""
    if output.shape != target.shape:
        raise ShapeError(f"keyframe loss: output {tuple(output.shape)} and target {tuple(target.shape)} differ")
    l1 = (output - target).abs().mean()
    if vgg is None or (perceptual_weight == 0 and gram_weight == 0):
        return l1, {"l1": l1.item()}
    with torch.no_grad():
        ft = vgg(target)
    fy = vgg(output)
    perc = relative_feature_loss(fy, ft)
    total = l1 + perceptual_weight * perc
    parts = {"l1": l1.item(), "perceptual": perc.item()}
    if gram_weight > 0:
        gram = relative_gram_loss(fy, ft)
        total = total + gram_weight * gram
        parts["gram"] = gram.item()
    return total, parts


class KeyframeLoss(nn.Module):
    """:func:`keyframe_loss` with its loss network: ``forward(output, target) -> (loss, parts)``.

    Args:
        vgg: a :class:`~vidstyle.nets.vgg.VGGFeatures` returning :data:`PERCEPTUAL_LAYERS`, or ``None``
            for the L1 term alone (no loss network available offline).
        perceptual_weight: ``w``.
    """

    def __init__(self, *, vgg: nn.Module | None, perceptual_weight: float = 1.0, gram_weight: float = 0.0) -> None:
        super().__init__()
        self.vgg = vgg
        self.perceptual_weight = float(perceptual_weight)
        self.gram_weight = float(gram_weight)

    @property
    def perceptual(self) -> bool:
        return self.vgg is not None and (self.perceptual_weight > 0 or self.gram_weight > 0)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:  # type: ignore[override]
        return keyframe_loss(output, target, vgg=self.vgg, perceptual_weight=self.perceptual_weight,
                             gram_weight=self.gram_weight)
