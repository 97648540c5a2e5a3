"""Choosing a style loss by name: ``gram``, ``mmd-linear``, ``mmd-poly``, ``mmd-gaussian``, ``bn``, ``mrf``.

:func:`make_style_loss` builds the module; :data:`STYLE_LOSS_SCALE` is the factor the optimisation back
end and training multiply the style weight β by, so that one β means about the same balance for every
loss. Each factor is the ratio of the Gram loss to that loss for the photo against the painting at the
start of an optimisation, measured on the project's reference pair (the conv1_1…conv3_4 VGG19, default
layers of each back end, ``benchmarks/bench_style_losses.py --calibrate``: three photo/painting pairs at
256 px, the median ratio), rounded to one significant figure. mmd-poly is the Gram loss exactly (factor
1). The losses grow with different powers of the features, so no exact equivalence exists: the
factors make β=10 a reasonable start for each, not an identical balance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from vidstyle.losses.guided import GuidedStyleLoss
from vidstyle.losses.mmd import MMDStyleLoss
from vidstyle.losses.mrf import MRFStyleLoss
from vidstyle.losses.perceptual import StyleLoss
from vidstyle.losses.stats import BNStyleLoss

__all__ = ["PATCH_LOSSES", "STYLE_LOSSES", "STYLE_LOSS_SCALE", "make_style_loss"]

#: the style losses, by name
STYLE_LOSSES = ("gram", "mmd-linear", "mmd-poly", "mmd-gaussian", "bn", "mrf")
#: the losses that match patches (not feature statistics): optimisation only, not training
PATCH_LOSSES = ("mrf",)
#: multiplies β for each loss (see the module docstring)
STYLE_LOSS_SCALE = {"gram": 1.0, "mmd-poly": 1.0, "mmd-linear": 5.0, "mmd-gaussian": 7e5, "bn": 3.0, "mrf": 4.0}


def make_style_loss(
    kind: str,
    *,
    style_features: list[Mapping[str, torch.Tensor]],
    mix: list[float] | None = None,
    layer_weights: Mapping[str, float] | None = None,
    reduction: str = "mean",
    mattes: Sequence[torch.Tensor] | None = None,
    style_maps: Sequence[torch.Tensor] | None = None,
    content_map: torch.Tensor | None = None,
    map_weight: float = 1.0,
    **kwargs: Any,
) -> nn.Module:
    """The style loss ``kind`` against ``style_features`` (one mapping per painting).

    ``mattes`` (one per painting): per-region Gram matrices (:class:`GuidedStyleLoss`, ``gram`` only).
    ``style_maps``/``content_map``: semantic MRF (``mrf`` only). ``reduction`` applies to ``gram``.
    """
    if kind not in STYLE_LOSSES:
        raise ValueError(f"style loss must be one of {', '.join(STYLE_LOSSES)}, got {kind!r}")
    if mattes is not None and kind != "gram":
        raise ValueError(f"per-region styles use the Gram loss, not {kind}")
    if (style_maps is not None or content_map is not None) and kind != "mrf":
        raise ValueError(f"semantic maps work with the mrf loss, not {kind}")
    if kind == "gram":
        if mattes is not None:
            return GuidedStyleLoss(style_features=style_features, mattes=mattes, region_weights=mix,
                                   layer_weights=layer_weights)
        return StyleLoss(style_features=style_features, mix=mix, layer_weights=layer_weights, reduction=reduction)
    if kind.startswith("mmd-"):
        return MMDStyleLoss(style_features=style_features, mix=mix, layer_weights=layer_weights,
                            kernel=kind[4:], **kwargs)
    if kind == "bn":
        return BNStyleLoss(style_features=style_features, mix=mix, layer_weights=layer_weights)
    return MRFStyleLoss(style_features=style_features, layer_weights=layer_weights, style_maps=style_maps,
                        content_map=content_map, map_weight=map_weight, **kwargs)
