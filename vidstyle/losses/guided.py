"""Guided Gram matrices: one style per region (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017,
"Controlling Perceptual Factors in Neural Style Transfer", spatial control).

Each region ``r`` of the output has a matte ``T_r`` (values in [0, 1], white = the region) and a
painting. At a layer with features ``F`` (C×H×W) the matte is resized to H×W by area averaging, and

    G_r(x) = (F ⊙ T_r)(F ⊙ T_r)ᵀ / (C · Σ_x T_r(x)²)

the Gram matrix of the masked features normalised by the region's area (the matte's squared values
summed: a binary matte's pixel count, and a soft matte of constant value ``a`` gives the same ``G`` as
the unmasked features). The painting's target is its ordinary Gram matrix ``F_s F_sᵀ/(C·H_s·W_s)``; the
loss of a layer is ``Σ_r w_r · mean((G_r(x) − G(s_r))²)``, the ``reduction="mean"`` Gram loss of each
region. A region whose matte is empty at a layer adds nothing there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError
from vidstyle.losses.perceptual import gram_matrix

__all__ = ["GuidedStyleLoss", "guided_gram_matrix", "resize_matte"]


def resize_matte(matte: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A matte (H×W, 1×H×W or N×1×H×W) resized to ``size`` by area averaging → N×1×h×w."""
    if matte.ndim == 2:
        matte = matte[None, None]
    elif matte.ndim == 3:
        matte = matte[None]
    if matte.ndim != 4 or matte.shape[1] != 1:
        raise ShapeError(f"a matte must be H×W, 1×H×W or N×1×H×W, got shape {tuple(matte.shape)}")
    if tuple(matte.shape[-2:]) == tuple(size):
        return matte
    return F.adaptive_avg_pool2d(matte, size)


def guided_gram_matrix(features: torch.Tensor, matte: torch.Tensor) -> torch.Tensor:
    """``(F ⊙ T)(F ⊙ T)ᵀ / (C · Σ T²)`` of N×C×H×W features; ``matte`` at any size (resized by area
    averaging to the features'). An empty matte gives zeros."""
    if features.ndim != 4:
        raise ShapeError(f"guided_gram_matrix expects N×C×H×W features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    t = resize_matte(matte.to(features.dtype), (h, w))
    masked = (features * t).reshape(n, c, h * w)
    area = t.pow(2).flatten(1).sum(1).clamp_min(1e-12)  # N (or 1)
    return torch.bmm(masked, masked.transpose(1, 2)) / (c * area)[:, None, None]


class GuidedStyleLoss(nn.Module):
    """Per-region Gram loss (see the module docstring).

    Args:
        style_features: one ``{layer: 1×C×H×W features}`` mapping per region's painting.
        mattes: the regions' mattes on the output, one per painting (H×W or 1×1×H×W, in [0, 1], any
            size with the output's aspect ratio).
        region_weights: ``w_r`` (default 1 each).
        layer_weights: weight of each layer (default 1).
    """

    def __init__(
        self,
        *,
        style_features: list[Mapping[str, torch.Tensor]],
        mattes: Sequence[torch.Tensor],
        region_weights: Sequence[float] | None = None,
        layer_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if not style_features or len(mattes) != len(style_features):
            raise ShapeError(f"GuidedStyleLoss needs one matte per painting, got {len(mattes)} for "
                             f"{len(style_features)}")
        self.regions = len(style_features)
        self.region_weights = [float(w) for w in (region_weights or [1.0] * self.regions)]
        if len(self.region_weights) != self.regions:
            raise ShapeError("give one region weight per painting")
        self.layers = list(style_features[0])
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        for r, (sf, m) in enumerate(zip(style_features, mattes)):
            self.register_buffer(f"matte_{r}", resize_matte(m.detach().float(), tuple(m.shape[-2:])))
            for layer in self.layers:
                self.register_buffer(f"gram_{layer}_{r}", gram_matrix(sf[layer].detach()[:1]))

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for layer in self.layers:
            if layer not in features:
                raise ShapeError(f"style layer {layer} missing from the features given")
            f = features[layer]
            for r in range(self.regions):
                matte = getattr(self, f"matte_{r}")
                g = guided_gram_matrix(f, matte)
                term = (g - getattr(self, f"gram_{layer}_{r}")).pow(2).mean()
                term = term * (self.region_weights[r] * float(self.layer_weights[layer]))
                total = term if total is None else total + term
        assert total is not None
        return total
