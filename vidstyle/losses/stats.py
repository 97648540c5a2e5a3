"""BN-statistics style loss (Li, Wang, Liu & Hou 2017, "Demystifying Neural Style Transfer").

Matching the per-channel mean and standard deviation of a layer's features — the statistics a batch
normalisation layer sees — is MMD with a linear kernel on each channel's activations (means) plus its
spread. Per layer with ``C`` channels:

    L_l = (1/C) Σ_c [ (μ_c(x) − μ_c(s))² + (σ_c(x) − σ_c(s))² ]

``μ_c`` and ``σ_c`` over the ``H·W`` positions, ``σ_c = √(var_c + ε)`` (population variance, ``ε = 1e-8``
keeps the gradient finite on a constant channel). Several paintings with mix weights ``w_k`` give the
statistics of their mixture: ``μ = Σ w_k μ_k``, ``σ² = Σ w_k (σ_k² + μ_k²) − μ²``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["BN_EPS", "BNStyleLoss", "bn_statistics", "bn_style_loss"]

#: ε of ``σ = √(var + ε)``
BN_EPS = 1e-8


def bn_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (N×C each) of N×C×H×W features."""
    if features.ndim != 4:
        raise ShapeError(f"bn_statistics expects N×C×H×W features, got shape {tuple(features.shape)}")
    f = features.flatten(2)
    mean = f.mean(2)
    var = (f - mean[..., None]).pow(2).mean(2)
    return mean, (var + BN_EPS).sqrt()


def bn_style_loss(features: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """``(1/C) Σ_c (μ_c − μ_c*)² + (σ_c − σ_c*)²``, averaged over the batch (targets: C, 1×C or N×C)."""
    mean, std = bn_statistics(features)
    if target_mean.shape[-1] != mean.shape[1] or target_std.shape[-1] != std.shape[1]:
        raise ShapeError(f"bn_style_loss: {mean.shape[1]} channels but targets of {target_mean.shape[-1]}")
    return ((mean - target_mean).pow(2) + (std - target_std).pow(2)).mean()


class BNStyleLoss(nn.Module):
    """``Σ_l w_l · L_l`` (see the module docstring) against one or several paintings.

    Args:
        style_features: one ``{layer: 1×C×H×W features}`` mapping per painting.
        mix: the paintings' weights (normalised; default equal): the target is their mixture.
        layer_weights: ``w_l`` (default 1).
    """

    def __init__(
        self,
        *,
        style_features: list[Mapping[str, torch.Tensor]],
        mix: list[float] | None = None,
        layer_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if not style_features:
            raise ShapeError("BNStyleLoss needs at least one painting's features")
        mix = list(mix or [1.0] * len(style_features))
        if len(mix) != len(style_features) or sum(mix) <= 0 or min(mix) < 0:
            raise ShapeError("mix must have one weight >= 0 per painting, not all 0")
        total = float(sum(mix))
        weights = [m / total for m in mix]
        self.layers = list(style_features[0])
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        for layer in self.layers:
            stats = [bn_statistics(sf[layer].detach()[:1]) for sf in style_features]
            mean = sum(w * m for w, (m, _) in zip(weights, stats))
            second = sum(w * (s.pow(2) + m.pow(2)) for w, (m, s) in zip(weights, stats))
            std = (second - mean.pow(2)).clamp_min(BN_EPS).sqrt()  # type: ignore[union-attr]
            self.register_buffer(f"mean_{layer}", mean)
            self.register_buffer(f"std_{layer}", std)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for layer in self.layers:
            if layer not in features:
                raise ShapeError(f"style layer {layer} missing from the features given")
            term = bn_style_loss(features[layer], getattr(self, f"mean_{layer}"), getattr(self, f"std_{layer}"))
            term = term * float(self.layer_weights[layer])
            total = term if total is None else total + term
        assert total is not None
        return total
