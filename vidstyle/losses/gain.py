"""The gain-map content loss of portrait style transfer (Selim, Elgharib & Doyle 2016, "Painting Style
Transfer for Head Portraits using Convolutional Neural Networks").

The painting's portrait is first aligned to the photo's face. At a layer, the **gain map** is the
element-wise ratio of the aligned painting's features to the photo's,

    Γ = clamp( F(s) / (F(c) + ε), g_min, g_max )          (ε = 1e-4, [g_min, g_max] = [0.7, 5])

and the content target is the photo's features multiplied by it, ``F(c) ⊙ Γ``: the photo's spatial
layout (where the eyes and the mouth are) with the painting's local feature energy (its brush texture).
The loss is ``mean((F(x) − F(c) ⊙ Γ)²)``. The clamp keeps the gain from erasing features (below 0.7)
or amplifying noise where the photo's features are near zero (above 5).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["GAIN_RANGE", "GainContentLoss", "gain_content_loss", "gain_map"]

#: Selim et al.'s clamp of the gain
GAIN_RANGE = (0.7, 5.0)


def gain_map(content: torch.Tensor, style: torch.Tensor, *, low: float = GAIN_RANGE[0], high: float = GAIN_RANGE[1],
             eps: float = 1e-4) -> torch.Tensor:
    """``clamp(style / (content + ε), low, high)`` of features of the same shape."""
    if content.shape != style.shape:
        raise ShapeError(f"gain_map: content features {tuple(content.shape)} and aligned style features "
                         f"{tuple(style.shape)} differ; align the painting to the content first")
    return (style / (content + eps)).clamp(low, high)


def gain_content_loss(features: torch.Tensor, content: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``mean((features − content ⊙ gain)²)``."""
    return F.mse_loss(features, (content * gain).expand_as(features))


class GainContentLoss(nn.Module):
    """``Σ_l w_l · mean((F_l(x) − F_l(c) ⊙ Γ_l)²)`` with the gains fixed from the photo's and the aligned
    painting's features (one ``{layer: features}`` mapping each)."""

    def __init__(self, *, content_features: Mapping[str, torch.Tensor], style_features: Mapping[str, torch.Tensor],
                 layer_weights: Mapping[str, float] | None = None, low: float = GAIN_RANGE[0],
                 high: float = GAIN_RANGE[1]) -> None:
        super().__init__()
        self.layers = list(content_features)
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        for layer in self.layers:
            c = content_features[layer].detach()
            self.register_buffer(f"target_{layer}", c * gain_map(c, style_features[layer].detach(), low=low, high=high))

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for layer in self.layers:
            term = F.mse_loss(features[layer], getattr(self, f"target_{layer}").expand_as(features[layer]))
            term = term * float(self.layer_weights[layer])
            total = term if total is None else total + term
        assert total is not None
        return total
