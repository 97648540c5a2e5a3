"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016) and temporal losses (Ruder et al. 2016).

Each loss is a function plus an ``nn.Module`` holding its targets, kornia style. Reference formulas
(tested against hand computations in ``tests/test_losses.py``):

* Gram matrix of features ``F`` (N×C×H×W): ``G = F·Fᵀ / (C·H·W)`` (N×C×C).
* content: ``mean((F(x) − F(c))²)`` on one layer.
* style: ``Σ_l w_l · mean((G_l(x) − G_l(s))²)`` over the style layers (``reduction="mean"``), or the
  standard form of Gatys et al. and Johnson et al., ``Σ_l w_l · ‖G_l(x) − G_l(s)‖²_F``
  (``reduction="sum"``), which weighs a layer of C channels C² times more: relu3_3 (256 channels),
  where the painting's motifs live, counts 16× more against relu1_2 than in the mean form.
* total variation: ``mean(|∂x I|²) + mean(|∂y I|²)``... here the smooth L2 variant, averaged.
* short-term temporal (Ruder et al. 2016): ``(1/D) Σ_x c(x)·(x − w)²`` with ``w = warp(S_{t−1})``,
  ``c`` the consistency mask and ``D`` = pixels × channels (× batch).
* long-term temporal: ``Σ_{j∈J} (1/D) Σ_x c_long_j(x)·(x − w_j)²`` with ``w_j = warp(S_{t−j})`` and
  ``c_long_j = max(c_j − Σ_{k∈J, k<j} c_k, 0)``: each pixel is counted once, against the nearest
  previous frame in which it was visible.
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
    "LongTermTemporalLoss",
    "StyleLoss",
    "TVLoss",
    "TemporalLoss",
    "content_loss",
    "gram_matrix",
    "long_term_temporal_loss",
    "long_term_weights",
    "style_loss",
    "temporal_loss",
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


def _as_mask(mask: torch.Tensor, image: torch.Tensor, what: str) -> torch.Tensor:
    """A mask of shape H×W, N×H×W or N×1×H×W (or already N×C×H×W) → broadcastable to ``image``."""
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[-2:] != image.shape[-2:] or mask.shape[1] not in (1, image.shape[1]) \
            or mask.shape[0] not in (1, image.shape[0]):
        raise ShapeError(
            f"{what}: mask {tuple(mask.shape)} does not fit the image {tuple(image.shape)}; "
            "give H×W, N×H×W or N×1×H×W"
        )
    return mask.to(image.dtype)


def temporal_loss(image: torch.Tensor, warped_prev: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Short-term temporal loss ``(1/D) Σ c·(image − warped_prev)²`` (Ruder et al. 2016).

    Args:
        image: N×C×H×W, the frame being optimised.
        warped_prev: N×C×H×W, the previous output warped into this frame (a fixed target).
        mask: consistency mask ``c`` (H×W, N×H×W or N×1×H×W; 1 = visible in the previous frame).

    ``D`` counts every element of ``image`` (pixels × channels × batch), masked or not.
    """
    if image.ndim != 4 or warped_prev.shape != image.shape:
        raise ShapeError(
            f"temporal_loss: image {tuple(image.shape)} and warped_prev {tuple(warped_prev.shape)} "
            "must be the same N×C×H×W"
        )
    c = _as_mask(mask, image, "temporal_loss")
    return (c * (image - warped_prev).pow(2)).mean()


def long_term_weights(masks: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """``c_long`` from the per-lag consistency masks ``c_j`` ordered by increasing lag j ∈ J.

    ``c_long_j = max(c_j − Σ_{k<j} c_k, 0)``: a pixel's weight goes to the nearest previous frame
    in which it was visible, so with binary masks the ``c_long`` are disjoint and sum to at most 1.
    """
    if not masks:
        raise ShapeError("long_term_weights needs at least one mask")
    out: list[torch.Tensor] = []
    seen: torch.Tensor | None = None
    for m in masks:
        if seen is not None and m.shape != seen.shape:
            raise ShapeError(f"long_term_weights: masks differ in shape ({tuple(m.shape)} vs {tuple(seen.shape)})")
        out.append(m if seen is None else (m - seen).clamp_min(0.0))
        seen = m if seen is None else seen + m
    return out


def long_term_temporal_loss(
    image: torch.Tensor,
    warped_prevs: list[torch.Tensor] | tuple[torch.Tensor, ...],
    masks: list[torch.Tensor] | tuple[torch.Tensor, ...],
) -> torch.Tensor:
    """Long-term temporal loss ``Σ_j (1/D) Σ c_long_j·(image − warp(S_{t−j}))²`` (Ruder et al. 2016).

    Args:
        image: N×C×H×W, the frame being optimised.
        warped_prevs: the outputs of frames t−j warped into frame t, one per lag j, nearest first.
        masks: the consistency masks ``c_j`` of frame t with respect to t−j, same order;
            ``c_long`` is derived from them (:func:`long_term_weights`).
    """
    if len(warped_prevs) != len(masks) or not masks:
        raise ShapeError(
            f"long_term_temporal_loss: {len(warped_prevs)} warped frames but {len(masks)} masks; give one mask per lag"
        )
    cs = [_as_mask(m, image, "long_term_temporal_loss") for m in masks]
    cs = [c.expand(image.shape[0], -1, -1, -1) if c.shape[0] != image.shape[0] else c for c in cs]
    total: torch.Tensor | None = None
    for w, c in zip(warped_prevs, long_term_weights(cs)):
        term = temporal_loss(image, w, c)
        total = term if total is None else total + term
    assert total is not None
    return total


class TemporalLoss(nn.Module):
    """Short-term temporal loss against a fixed warped previous output and its mask (buffers).

    ``TemporalLoss(warped_prev=w, mask=c)(image)`` equals :func:`temporal_loss` ``(image, w, c)``.
    """

    def __init__(self, *, warped_prev: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("warped_prev", warped_prev.detach())
        self.register_buffer("mask", _as_mask(mask.detach(), warped_prev, "TemporalLoss"))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return temporal_loss(image, self.warped_prev, self.mask)


class LongTermTemporalLoss(nn.Module):
    """Long-term temporal loss against warped previous outputs ``S_{t−j}`` (nearest first) and their
    consistency masks; ``c_long`` is computed once here. Equals :func:`long_term_temporal_loss`."""

    def __init__(
        self,
        *,
        warped_prevs: list[torch.Tensor] | tuple[torch.Tensor, ...],
        masks: list[torch.Tensor] | tuple[torch.Tensor, ...],
    ) -> None:
        super().__init__()
        if len(warped_prevs) != len(masks) or not masks:
            raise ShapeError("LongTermTemporalLoss: give one mask per warped previous output (at least one)")
        cs = [_as_mask(m.detach(), w, "LongTermTemporalLoss") for w, m in zip(warped_prevs, masks)]
        cs = [c.expand(w.shape[0], -1, -1, -1) if c.shape[0] != w.shape[0] else c for w, c in zip(warped_prevs, cs)]
        self.lags = len(masks)
        for i, (w, c) in enumerate(zip(warped_prevs, long_term_weights(cs))):
            self.register_buffer(f"warped_{i}", w.detach())
            self.register_buffer(f"weight_{i}", c.contiguous())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        total = temporal_loss(image, self.warped_0, self.weight_0)
        for i in range(1, self.lags):
            total = total + temporal_loss(image, getattr(self, f"warped_{i}"), getattr(self, f"weight_{i}"))
        return total
