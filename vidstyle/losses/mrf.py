"""MRF (patch) style loss (Li & Wand 2016, "Combining Markov Random Fields and Convolutional Neural
Networks for Image Synthesis"), with semantic maps (Champandard 2016, "Semantic Style Transfer and
Turning Two-Bit Doodles into Fine Artworks").

A layer's features are cut into ``k×k`` patches (``k = 3``). Every patch ``Ψ_i(x)`` of the output is
matched to the painting's patch of highest normalised cross-correlation,

    NN(i) = argmax_j  ⟨Ψ_i(x), Ψ_j(s)⟩ / (‖Ψ_i(x)‖·‖Ψ_j(s)‖)

computed for all ``i`` at once as a convolution of the output's features with the painting's
normalised patches as filters (``‖Ψ_i(x)‖`` does not change the argmax over ``j``). The loss is the mean
squared difference to the matched patches,

    L = (1 / (L·C·k²)) Σ_i ‖Ψ_i(x) − Ψ_NN(i)(s)‖²

(``L`` output patches; averaged over the batch). The matching is redone at every evaluation and is not
differentiated (Li & Wand). The painting's patches are taken with the smallest stride that keeps their
number at most ``max_patches``.

**Semantic maps.** With a map of the painting and one of the output (the content), each label (a colour
of the map) becomes a channel: its one-hot mask, resized to the layer by area averaging, is appended to
the features before the patches are cut, scaled by ``map_weight · rms_l · √C`` (``rms_l`` the painting's
feature RMS at the layer), so that ``map_weight = 1`` gives the map as much energy in a patch as the
features. Patches then match within the same label: a rough colour map lays the painting's texture out.
The loss is taken on the feature channels only (the maps are fixed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError

__all__ = [
    "MRFStyleLoss",
    "append_map",
    "extract_patches",
    "mrf_loss",
    "nearest_patches",
    "patch_stride",
]


def extract_patches(features: torch.Tensor, *, size: int = 3, stride: int = 1) -> torch.Tensor:
    """The ``size×size`` patches of 1×C×H×W features, row-major → K×C×size×size."""
    if features.ndim != 4 or features.shape[0] != 1:
        raise ShapeError(f"extract_patches expects 1×C×H×W features, got shape {tuple(features.shape)}")
    _, c, h, w = features.shape
    if h < size or w < size:
        raise ShapeError(f"features of {h}×{w} are smaller than a {size}×{size} patch")
    cols = F.unfold(features, kernel_size=size, stride=stride)  # 1×(C·k²)×K
    return cols[0].transpose(0, 1).reshape(-1, c, size, size)


def patch_stride(h: int, w: int, *, size: int = 3, max_patches: int) -> int:
    """The smallest stride that cuts at most ``max_patches`` patches from an ``h×w`` map."""
    stride = 1
    while ((h - size) // stride + 1) * ((w - size) // stride + 1) > max_patches:
        stride += 1
    return stride


@torch.no_grad()
def nearest_patches(features: torch.Tensor, patches: torch.Tensor, *, chunk: int = 512) -> torch.Tensor:
    """For every ``k×k`` patch of N×C×H×W ``features`` (stride 1, row-major), the index of the
    patch of ``patches`` (K×C×k×k) of highest normalised cross-correlation → N×L (int64).

    A convolution with the normalised patches as filters, ``chunk`` filters at a time; ties go to the
    lowest index."""
    if features.ndim != 4 or patches.ndim != 4 or features.shape[1] != patches.shape[1]:
        raise ShapeError(f"nearest_patches: features {tuple(features.shape)} and patches {tuple(patches.shape)} "
                         "must have the same channels")
    norms = patches.flatten(1).norm(dim=1).clamp_min(1e-12)
    filters = patches / norms[:, None, None, None]
    best: torch.Tensor | None = None
    index: torch.Tensor | None = None
    for start in range(0, filters.shape[0], chunk):
        scores = F.conv2d(features, filters[start:start + chunk]).flatten(2)  # N×k×L
        value, arg = scores.max(dim=1)
        arg = arg + start
        if best is None:
            best, index = value, arg
        else:
            better = value > best
            best = torch.where(better, value, best)
            index = torch.where(better, arg, index)  # type: ignore[arg-type]
    assert index is not None
    return index


def mrf_loss(features: torch.Tensor, patches: torch.Tensor, *, nearest: torch.Tensor | None = None) -> torch.Tensor:
    """``(1/(L·C·k²)) Σ_i ‖Ψ_i(features) − patches[NN(i)]‖²``, averaged over the batch.

    ``nearest``: the matches (N×L, :func:`nearest_patches` of ``features`` when not given; give them
    when matching used other channels, e.g. semantic maps). ``patches`` may then carry more channels
    than ``features``: only the first ``C`` are compared."""
    if features.ndim != 4:
        raise ShapeError(f"mrf_loss expects N×C×H×W features, got shape {tuple(features.shape)}")
    n, c = features.shape[:2]
    k = patches.shape[-1]
    if nearest is None:
        nearest = nearest_patches(features, patches)
    cols = F.unfold(features, kernel_size=k).transpose(1, 2)  # N×L×(C·k²)
    if nearest.shape != cols.shape[:2]:
        raise ShapeError(f"mrf_loss: {tuple(nearest.shape)} matches for {tuple(cols.shape[:2])} patches")
    target = patches[:, :c].reshape(patches.shape[0], -1)[nearest]  # N×L×(C·k²)
    return (cols - target).pow(2).mean()


def append_map(features: torch.Tensor, labels: torch.Tensor | None, scale: float) -> torch.Tensor:
    """Features with the label masks (1×K×H×W at any size, resized to the features' by area
    averaging) times ``scale`` appended as channels."""
    if labels is None:
        return features
    if labels.ndim == 3:
        labels = labels[None]
    maps = F.adaptive_avg_pool2d(labels.to(features.dtype), features.shape[-2:]) * scale
    return torch.cat([features, maps.expand(features.shape[0], -1, -1, -1)], dim=1)


class MRFStyleLoss(nn.Module):
    """``Σ_l w_l · L_l`` (see the module docstring) against the patches of one or several paintings.

    Args:
        style_features: one ``{layer: 1×C×H×W features}`` mapping per painting; their patches are pooled
            (mix weights do not apply to patches).
        layer_weights: ``w_l`` (default 1).
        size: patch size ``k``.
        max_patches: at most this many patches per painting and layer (stride chosen to fit).
        style_maps: per painting, its semantic map as 1×K×H×W one-hot label masks (any size); with
            ``content_map`` (1×K×H×W, the output's) the matching is semantic.
        content_map: the output's label masks; the output must have this aspect ratio.
        map_weight: the maps' weight in the matching (1: as much energy as the features).
    """

    def __init__(
        self,
        *,
        style_features: list[Mapping[str, torch.Tensor]],
        layer_weights: Mapping[str, float] | None = None,
        size: int = 3,
        max_patches: int = 2048,
        style_maps: Sequence[torch.Tensor] | None = None,
        content_map: torch.Tensor | None = None,
        map_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not style_features:
            raise ShapeError("MRFStyleLoss needs at least one painting's features")
        if (style_maps is None) != (content_map is None):
            raise ShapeError("semantic MRF needs both the paintings' maps and the content map")
        if style_maps is not None and len(style_maps) != len(style_features):
            raise ShapeError(f"{len(style_maps)} style maps for {len(style_features)} paintings; give one each")
        if style_maps is not None and content_map is not None and any(
                m.shape[-3] != content_map.shape[-3] for m in style_maps):
            raise ShapeError("the style and content maps must have the same labels (channels)")
        self.size = size
        self.layers = list(style_features[0])
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        self.map_scale: dict[str, float] = {}
        for layer in self.layers:
            feats = [sf[layer].detach()[:1] for sf in style_features]
            rms = math.sqrt(float(sum(f.pow(2).mean() for f in feats)) / len(feats))
            scale = float(map_weight) * rms * math.sqrt(feats[0].shape[1])
            self.map_scale[layer] = scale
            parts = []
            for i, f in enumerate(feats):
                aug = append_map(f, None if style_maps is None else style_maps[i], scale)
                stride = patch_stride(aug.shape[-2], aug.shape[-1], size=size, max_patches=max_patches)
                parts.append(extract_patches(aug, size=size, stride=stride))
            self.register_buffer(f"patches_{layer}", torch.cat(parts).contiguous())
        if content_map is not None:
            self.register_buffer("content_map", content_map.detach()[None] if content_map.ndim == 3
                                 else content_map.detach())
        else:
            self.content_map = None

    def patches(self, layer: str) -> torch.Tensor:
        return getattr(self, f"patches_{layer}")

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for layer in self.layers:
            if layer not in features:
                raise ShapeError(f"style layer {layer} missing from the features given")
            f = features[layer]
            patches = self.patches(layer)
            with torch.no_grad():
                nearest = nearest_patches(append_map(f.detach(), self.content_map, self.map_scale[layer]), patches)
            term = mrf_loss(f, patches, nearest=nearest) * float(self.layer_weights[layer])
            total = term if total is None else total + term
        assert total is not None
        return total
