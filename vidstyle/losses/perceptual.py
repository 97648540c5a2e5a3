"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016): content, Gram style, total variation.

Each loss is a function plus an ``nn.Module`` holding its targets, kornia style. Reference formulas
(tested against hand computations in ``tests/test_losses.py``):

* Gram matrix of features ``F`` (N×C×H×W): ``G = F·Fᵀ / (C·H·W)`` (N×C×C).
* content: ``mean((F(x) − F(c))²)`` on one layer.
* style: ``Σ_l w_l · mean((G_l(x) − G_l(s))²)`` over the style layers (``reduction="mean"``), or the
  standard form of Gatys et al. and Johnson et al., ``Σ_l w_l · ‖G_l(x) − G_l(s)‖²_F``
  (``reduction="sum"``), which weighs a layer of C channels C² times more: relu3_3 (256 channels),
  where the painting's motifs live, counts 16× more against relu1_2 than in the mean form.
* total variation: ``mean(|∂x I|²) + mean(|∂y I|²)``... here the smooth L2 variant, averaged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError

__all__ = [
    "STYLE_REDUCTIONS",
    "ContentLoss",
    "StyleLoss",
    "TVLoss",
    "content_loss",
    "gram_matrix",
    "style_loss",
    "tv_loss",
]


#: ``reduction`` values of :func:`style_loss`
STYLE_REDUCTIONS = ("mean", "sum")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``F·Fᵀ / (C·H·W)`` of N×C×H×W features → N×C×C."""
    if features.ndim != 4:
        raise ShapeError(f"gram_matrix expects N×C×H×W features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between features and target features of the same shape."""
    if features.shape[1:] != target.shape[1:]:
        raise ShapeError(f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ")
    return F.mse_loss(features, target.expand_as(features))


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    *,
    layer_weights: Mapping[str, float] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Weighted sum over layers of the distance between Gram matrices (targets: 1×C×C or N×C×C).

    ``reduction="mean"`` averages the squared differences of each layer's Gram entries (and over the
    batch); ``"sum"`` is the squared Frobenius norm per image, averaged over the batch (the standard form).
    """
    if reduction not in STYLE_REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(STYLE_REDUCTIONS)}, got {reduction!r}")
    total: torch.Tensor | None = None
    for layer, target in target_grams.items():
        if layer not in features:
            raise ShapeError(f"style layer {layer} missing from the features given")
        g = gram_matrix(features[layer])
        if g.shape[1:] != target.shape[1:]:
            raise ShapeError(f"Gram of {layer} is {tuple(g.shape)} but its target is {tuple(target.shape)}")
        if reduction == "mean":
            dist = F.mse_loss(g, target.expand_as(g))
        else:
            dist = (g - target).pow(2).sum(dim=(1, 2)).mean()
        term = dist * (1.0 if layer_weights is None else float(layer_weights[layer]))
        total = term if total is None else total + term
    if total is None:
        raise ShapeError("style_loss needs at least one layer")
    return total


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation (squared differences of neighbours, averaged) of an N×C×H×W image."""
    if image.ndim != 4:
        raise ShapeError(f"tv_loss expects N×C×H×W, got shape {tuple(image.shape)}")
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


class ContentLoss(nn.Module):
    """Content loss against fixed target features (stored as a buffer)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """Style loss against the Gram matrices of one or several style images.

    Args:
        style_features: one ``{layer: features}`` mapping per style image.
        mix: weights of the style images (normalised to sum 1): the target Gram of each layer is
            their weighted mean, which blends the styles.
        layer_weights: weight of each layer (default 1).
        reduction: ``"mean"`` or ``"sum"`` (the standard form), see :func:`style_loss`.
    """

    def __init__(
        self,
        *,
        style_features: list[Mapping[str, torch.Tensor]],
        mix: list[float] | None = None,
        layer_weights: Mapping[str, float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in STYLE_REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(STYLE_REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction
        if not style_features:
            raise ShapeError("StyleLoss needs at least one style image's features")
        mix = mix or [1.0] * len(style_features)
        if len(mix) != len(style_features) or sum(mix) <= 0:
            raise ShapeError("mix must have one positive weight per style image")
        total = float(sum(mix))
        self.layers = list(style_features[0])
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        for layer in self.layers:
            g = sum((m / total) * gram_matrix(sf[layer].detach()).mean(0, keepdim=True) for m, sf in zip(mix, style_features))
            self.register_buffer(f"gram_{layer}", g)

    def targets(self) -> dict[str, torch.Tensor]:
        return {layer: getattr(self, f"gram_{layer}") for layer in self.layers}

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return style_loss(features, self.targets(), layer_weights=self.layer_weights, reduction=self.reduction)


class TVLoss(nn.Module):
    """Module form of :func:`tv_loss`."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image)
