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

__all__ = ["PERCEPTUAL_LAYERS", "KeyframeLoss", "keyframe_loss", "relative_feature_loss"]

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


def keyframe_loss(output: torch.Tensor, target: torch.Tensor, *, vgg: nn.Module | None = None,
                  perceptual_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """``L1 + w · L_perc`` (module docstring) and its parts; without ``vgg`` (or ``w = 0``), L1 alone."""
    if output.shape != target.shape:
        raise ShapeError(f"keyframe loss: output {tuple(output.shape)} and target {tuple(target.shape)} differ")
    l1 = (output - target).abs().mean()
    if vgg is None or perceptual_weight == 0:
        return l1, {"l1": l1.item()}
    with torch.no_grad():
        ft = vgg(target)
    perc = relative_feature_loss(vgg(output), ft)
    return l1 + perceptual_weight * perc, {"l1": l1.item(), "perceptual": perc.item()}


class KeyframeLoss(nn.Module):
    """:func:`keyframe_loss` with its loss network: ``forward(output, target) -> (loss, parts)``.

    Args:
        vgg: a :class:`~vidstyle.nets.vgg.VGGFeatures` returning :data:`PERCEPTUAL_LAYERS`, or ``None``
            for the L1 term alone (no loss network available offline).
        perceptual_weight: ``w``.
    """

    def __init__(self, *, vgg: nn.Module | None, perceptual_weight: float = 1.0) -> None:
        super().__init__()
        self.vgg = vgg
        self.perceptual_weight = float(perceptual_weight)

    @property
    def perceptual(self) -> bool:
        return self.vgg is not None and self.perceptual_weight > 0

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:  # type: ignore[override]
        return keyframe_loss(output, target, vgg=self.vgg, perceptual_weight=self.perceptual_weight)
