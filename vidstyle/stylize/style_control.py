"""Which style, and how much of it, each frame gets: style mix and style strength.

Multi-style models (:mod:`vidstyle.nets.multistyle`) take a mix of their styles' ``(γ, β)`` and move
toward their identity slot for a strength below 1. The arbitrary-style back end interpolates its
features (the transform's α). One-style models have no style to mix; their
strength blends the output with the input picture (``s·f(x) + (1 − s)·x``), the nearest thing a
per-style network allows. Both values may be keyframed (:class:`~vidstyle.options.Curve`) and are
sampled at each frame's number.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vidstyle.options.curve import Curve
from vidstyle.options.spec import OptionValueError

__all__ = ["StyleControl"]


class StyleControl:
    """Per-frame style weights of a model with ``styles`` (``[]`` for one-style models).

    Raises:
        OptionValueError: a mix for a one-style model, or a style the model does not have (the
            message lists the valid names).
    """

    def __init__(self, *, styles: Sequence[str], style_mix: tuple[tuple[str, Curve], ...] | None = None,
                 style_strength: Curve | float | None = None) -> None:
        from vidstyle.nets.multistyle import IDENTITY

        self.styles = list(styles)
        if isinstance(style_strength, (int, float)):
            style_strength = Curve.constant(float(style_strength))
        if style_strength is not None and not (0.0 <= style_strength.minimum and style_strength.maximum <= 1.0):
            raise OptionValueError("style_strength", f"style_strength must be in [0, 1], got {style_strength}")
        self.strength = style_strength
        valid = [s for s in self.styles if s != IDENTITY]
        if style_mix is not None and not self.styles:
            raise OptionValueError("style_mix", "style_mix needs a multi-style model; this model has one style "
                                                "(see `vidstyle models` for multi-style ones)")
        for name, _ in style_mix or ():
            if name not in valid:
                raise OptionValueError("style_mix", f"style_mix: the model has no style {name!r}; choose from "
                                                    f"{', '.join(valid)}")
        if self.styles and style_mix is None:
            style_mix = ((valid[0] if valid else IDENTITY, Curve.constant(1.0)),)
        self.mix = style_mix
        self.constant = (all(c.is_constant for _, c in style_mix or ())
                         and (style_strength is None or style_strength.is_constant))

    def weights(self, number: float) -> torch.Tensor:
        """The normalised slot weights at frame ``number`` (multi-style models)."""
        from vidstyle.nets.multistyle import mix_vector, strength_mix

        vec = mix_vector({name: curve.at(number) for name, curve in self.mix or ()}, self.styles)
        s = 1.0 if self.strength is None else self.strength.at(number)
        return strength_mix(vec, s)

    def apply(self, stylizer: object, batch: torch.Tensor, numbers: Sequence[float]) -> torch.Tensor:
        """Run ``stylizer`` on ``batch`` (N×3×H×W in [0, 1]); ``numbers``: each image's frame number."""
        if self.styles:
            rows = [self.weights(numbers[0])] * len(numbers) if self.constant else [self.weights(n) for n in numbers]
            return stylizer(batch, torch.stack(rows))  # type: ignore[operator]
        if getattr(stylizer, "feature_strength", False):  # the network applies it (arbitrary back end)
            if self.strength is None:
                return stylizer(batch)  # type: ignore[operator]
            s = torch.tensor([self.strength.at(n) for n in numbers], dtype=torch.float32)
            return stylizer(batch, strength=s)  # type: ignore[operator]
        y = stylizer(batch)  # type: ignore[operator]
        if self.strength is None:
            return y
        s = torch.tensor([self.strength.at(n) for n in numbers], dtype=y.dtype, device=y.device)[:, None, None, None]
        if bool((s == 1).all()):
            return y
        return s * y + (1 - s) * batch.to(y.device, y.dtype)
