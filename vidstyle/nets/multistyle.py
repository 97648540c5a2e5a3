"""One network, many styles: conditional instance normalisation (Dumoulin et al. 2017).

:class:`MultiStyleNet` is a :class:`~vidstyle.nets.transformer.TransformerNet` whose every instance
norm has one ``(γ, β)`` pair per style (:class:`ConditionalInstanceNorm2d`); everything else is shared.
A *mix* — one weight per style, per image — selects a style or blends several: the norms use
``γ = Σ_i w_i γ_i`` and ``β = Σ_i w_i β_i`` (Dumoulin et al.'s convex combination).

Slot 0 is the **identity** style, trained to give the photo back. Style *strength* ``s`` moves the mix
toward it: ``w' = s·w + (1 − s)·e_0``, so ``s = 0`` gives the photo and ``s = 1`` the full style
(the strength control of Ghiasi et al. 2017, done in γ/β space).

A new style is one more ``(γ, β)`` row, trained with the rest frozen (:func:`add_style_row`;
``vidstyle train --add-style``): Dumoulin et al.'s fine-tuning, minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.nets.transformer import PRESETS, NetConfig, TransformerNet

__all__ = [
    "IDENTITY",
    "ConditionalInstanceNorm2d",
    "MultiStyleNet",
    "add_style_row",
    "mix_vector",
    "slot_names",
    "strength_mix",
]

#: the name of slot 0, the style that gives the photo back
IDENTITY = "identity"


class _Conditioning:
    """The mix the norms of one network use for the current call (B×N, set by :class:`MultiStyleNet`)."""

    def __init__(self) -> None:
        self.mix: torch.Tensor | None = None


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm with one affine ``(γ, β)`` per style, blended per image by the current mix.

    Shape: x ``N×C×H×W``, the mix ``N×S`` (or ``1×S``) → ``N×C×H×W``.
    """

    def __init__(self, channels: int, n_styles: int, *, eps: float = 1e-5, conditioning: _Conditioning) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_styles, channels))
        self.bias = nn.Parameter(torch.zeros(n_styles, channels))
        self.eps = eps
        self._cond = conditioning

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mix = self._cond.mix
        if mix is None:
            raise ShapeError("ConditionalInstanceNorm2d called without a style mix; call MultiStyleNet, not its parts")
        mix = mix.to(device=x.device, dtype=self.weight.dtype)
        g = mix @ self.weight  # N×C
        b = mix @ self.bias
        y = F.instance_norm(x, eps=self.eps)
        return y * g.to(x.dtype)[:, :, None, None] + b.to(x.dtype)[:, :, None, None]


class MultiStyleNet(nn.Module):
    """A TransformerNet with conditional instance norms: ``forward(x, mix)``.

    Args:
        config: the network size (a :class:`NetConfig` or a preset name).
        styles: the style names; slot 0 is always :data:`IDENTITY` (added when missing).
    """

    def __init__(self, *, config: NetConfig | str = "tiny", styles: Sequence[str]) -> None:
        super().__init__()
        names = self.styles = slot_names(styles)
        self._cond = _Conditioning()
        self.body = TransformerNet(config=PRESETS[config] if isinstance(config, str) else config)
        self.config = self.body.config
        for parent in list(self.body.modules()):
            for name, child in parent.named_children():
                if isinstance(child, nn.InstanceNorm2d):
                    setattr(parent, name, ConditionalInstanceNorm2d(child.num_features, len(names), eps=child.eps,
                                                                    conditioning=self._cond))
        self.min_input = self.body.min_input

    @property
    def n_styles(self) -> int:
        """Number of slots, the identity included."""
        return len(self.styles)

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        """``mix``: ``N×S`` or ``S`` weights (default: the first real style)."""
        if mix is None:
            mix = torch.zeros(self.n_styles)
            mix[1 if self.n_styles > 1 else 0] = 1.0
        if mix.ndim == 1:
            mix = mix[None]
        if mix.shape[-1] != self.n_styles or mix.shape[0] not in (1, x.shape[0]):
            raise ShapeError(f"mix must be {x.shape[0]}×{self.n_styles} (or {self.n_styles}), got {tuple(mix.shape)}")
        self._cond.mix = mix.expand(x.shape[0], -1)
        try:
            return self.body(x)
        finally:
            self._cond.mix = None


def slot_names(styles: Sequence[str]) -> list[str]:
    """A multi-style network's slots: :data:`IDENTITY` first (added when missing), then the style names.

    Raises:
        InvalidOptionError: two styles with the same name.
    """
    names = list(styles)
    if names[:1] != [IDENTITY]:
        names = [IDENTITY, *names]
    if len(set(names)) != len(names):
        raise InvalidOptionError(f"style names must be distinct, got {names[1:]}")
    return names


def mix_vector(weights: Mapping[str, float], styles: Sequence[str]) -> torch.Tensor:
    """``{name: weight}`` → the normalised weight vector over ``styles`` (slot order).

    Raises:
        InvalidOptionError: an unknown name (the message lists the valid ones), a negative weight
            or weights that sum to 0.
    """
    vec = torch.zeros(len(styles))
    for name, w in weights.items():
        if name not in styles:
            valid = ", ".join(s for s in styles if s != IDENTITY)
            raise InvalidOptionError(f"style_mix: no style {name!r} in this model; choose from {valid}")
        if w < 0:
            raise InvalidOptionError(f"style_mix: the weight of {name!r} must be >= 0, got {w}")
        vec[styles.index(name)] += float(w)
    total = float(vec.sum())
    if total <= 0:
        raise InvalidOptionError("style_mix: the weights sum to 0; give at least one style a positive weight")
    return vec / total


def strength_mix(mix: torch.Tensor, strength: float) -> torch.Tensor:
    """Move a mix toward the identity slot: ``s·mix + (1 − s)·e_0``."""
    if not 0.0 <= strength <= 1.0:
        raise InvalidOptionError(f"style_strength must be in [0, 1], got {strength}")
    out = mix * strength
    out[..., 0] += 1.0 - strength
    return out


def add_style_row(net: MultiStyleNet, name: str) -> int:
    """Append a style slot initialised to the mean of the existing styles' ``(γ, β)``; returns its index."""
    if name in net.styles:
        raise InvalidOptionError(f"the model already has a style named {name!r}; pick another name")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                real = slice(1, None) if m.weight.shape[0] > 1 else slice(0, None)
                m.weight = nn.Parameter(torch.cat([m.weight, m.weight[real].mean(0, keepdim=True)]))
                m.bias = nn.Parameter(torch.cat([m.bias, m.bias[real].mean(0, keepdim=True)]))
    net.styles.append(name)
    return len(net.styles) - 1
