"""Settings of the optimisation back end, importable without torch (the CLI builds its options from them).

See :mod:`vidstyle.stylize.optim` for the algorithms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from vidstyle.errors import InvalidOptionError
from vidstyle.options.spec import OptionValueError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "DEFAULT_LONG_TERM",
    "DEFAULT_MASK_WEIGHT",
    "DEFAULT_STABILIZE",
    "DEFAULT_TEMPORAL_WEIGHT",
    "OptimConfig",
    "OptimProgress",
    "OptimResult",
]

#: γ of the temporal losses at ``stabilize = 1`` (0..255 pixels; content weight 1). See BENCHMARKS.md.
DEFAULT_TEMPORAL_WEIGHT = 200.0
#: default ``stabilize`` of the optimisation back end (1 = the full temporal weight)
DEFAULT_STABILIZE = 1.0
#: λ of the hold term outside a mask (0..255 pixels; content weight 1; docs/masks.md)
DEFAULT_MASK_WEIGHT = 100.0
#: the previous frames j of the long-term temporal loss (Ruder et al. 2016)
DEFAULT_LONG_TERM = (1, 2, 4)

_OPTIMIZERS = ("lbfgs", "adam")
_INITS = ("content", "noise")
_COLORS = ("luminance", "histogram")
#: the style losses (vidstyle.losses.select.STYLE_LOSSES; repeated here so that this module needs no torch)
_STYLE_LOSSES = ("gram", "mmd-linear", "mmd-poly", "mmd-gaussian", "bn", "mrf")


# --------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class OptimConfig:
    """Settings of one optimisation (image or video frame).

    Attributes:
        iterations: iterations per scale level (L-BFGS: one function evaluation each).
        optimizer: ``"lbfgs"`` (default, Gatys et al.) or ``"adam"``.
        lr: Adam step size in 0..1 pixel units (L-BFGS: the step scale, 1.0).
        content_weight, style_weight, tv_weight: α, β, τ.
        content_layer, style_layers: VGG19 layer names; ``None`` = :func:`default_layers` for the
            weights loaded (Gatys' layers with full VGG19, relu1_1…relu3_4 with the conv1–3 prefix).
        style_layer_weights: weight of each style layer (default 1 each).
        pooling: ``"avg"`` (smoother, as Gatys et al. recommend) or ``"max"``.
        scales: coarse-to-fine levels, each half the size of the next; ``None`` = as many as keep
            the coarsest level's long side ≥ 256 px (1 for small images).
        init: ``"content"`` or ``"noise"`` (a given image: ``init_image=`` of :func:`optimize_image`).
        preserve_color: ``None``, ``"luminance"`` (style transfer on luminance only, the content's
            chroma kept) or ``"histogram"`` (the style's colours matched to the content first).
        style_scale: the style image's long side relative to the content's (brush size; 1 = same).
        seed: seeds the noise init (runs are deterministic for a given seed and device).
        tolerance: early stop when the loss fell by less than this fraction over the last
            ``patience`` iterations (0 = always run every iteration).
        patience: the window of the early-stop test, in iterations.
        style_loss: the style loss (:mod:`vidstyle.losses.select`): ``"gram"`` (Gatys et al.),
            ``"mmd-linear"``, ``"mmd-poly"``, ``"mmd-gaussian"`` (Li et al. 2017), ``"bn"`` (per-channel
            mean and std) or ``"mrf"`` (3×3 patches, Li & Wand 2016; default layers relu2_1 and relu3_1,
            relu3_1 and relu4_1 with the full VGG19).
        map_weight: weight of semantic maps in the MRF matching (1: as much as the features).
        mask_weight: λ of the hold term with a mask (:mod:`vidstyle.losses.masked`): how firmly the
            picture is held to the content outside the matte (0..255 pixels, weighted by 1 − matte).
    """

    iterations: int = 300
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float | None = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e-3
    content_layer: str | None = None
    style_layers: tuple[str, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None
    pooling: Literal["avg", "max"] = "avg"
    scales: int | None = None
    init: Literal["content", "noise"] = "content"
    preserve_color: Literal["luminance", "histogram"] | None = None
    style_scale: float = 1.0
    seed: int = 0
    tolerance: float = 0.0
    patience: int = 10
    style_loss: str = "gram"
    map_weight: float = 1.0
    mask_weight: float = DEFAULT_MASK_WEIGHT

    def validate(self) -> None:
        """Raise :class:`InvalidOptionError` (with a remedy) for a bad value."""
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise OptionValueError("iterations", f"iterations must be an integer >= 1, got {self.iterations!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise OptionValueError("optimizer", f"optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr is not None and (not math.isfinite(self.lr) or self.lr <= 0):
            raise OptionValueError("lr", f"lr must be a positive number, got {self.lr!r}")
        for name, value in (("content_weight", self.content_weight), ("style_weight", self.style_weight),
                            ("tv_weight", self.tv_weight), ("tolerance", self.tolerance)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise OptionValueError(name, f"{name} must be a finite number >= 0, got {value!r}")
        if self.content_weight == 0 and self.style_weight == 0:
            raise OptionValueError("content_weight", "`content_weight` and `style_weight` are both 0; give at least one a "
                                   "positive weight", also=("style_weight",))
        if self.pooling not in ("avg", "max"):
            raise InvalidOptionError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        if self.scales is not None and (isinstance(self.scales, bool) or not isinstance(self.scales, int) or not 1 <= self.scales <= 6):
            raise OptionValueError("scales", f"scales must be an integer from 1 to 6, got {self.scales!r}")
        if self.init not in _INITS:
            raise InvalidOptionError(f"init must be 'content', 'noise' or an image file, got {self.init!r}")
        if self.preserve_color not in (None, *_COLORS):
            raise OptionValueError(
                "preserve_color", f"preserve_color must be 'luminance' or 'histogram', got {self.preserve_color!r}"
            )
        if not isinstance(self.style_scale, (int, float)) or not 0.05 <= self.style_scale <= 8:
            raise OptionValueError("style_scale", f"style_scale must be between 0.05 and 8, got {self.style_scale!r}")
        if self.style_loss not in _STYLE_LOSSES:
            raise OptionValueError("style_loss", f"style_loss must be one of {', '.join(_STYLE_LOSSES)}, "
                                                 f"got {self.style_loss!r}")
        if not isinstance(self.map_weight, (int, float)) or not math.isfinite(self.map_weight) or self.map_weight < 0:
            raise OptionValueError("map_weight", f"map_weight must be a finite number >= 0, got {self.map_weight!r}")
        if not isinstance(self.mask_weight, (int, float)) or not math.isfinite(self.mask_weight) or self.mask_weight < 0:
            raise OptionValueError("mask_weight", f"mask_weight must be a finite number >= 0, got {self.mask_weight!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise InvalidOptionError(f"patience must be an integer >= 1, got {self.patience!r}")
        if self.style_layers is not None and not self.style_layers:
            raise InvalidOptionError("style_layers is empty; give at least one layer or None for the defaults")
        if self.style_layer_weights is not None:
            n = len(self.style_layers) if self.style_layers is not None else None
            if n is not None and len(self.style_layer_weights) != n:
                raise InvalidOptionError("give one style layer weight per style layer")
            if any((not math.isfinite(w)) or w < 0 for w in self.style_layer_weights):
                raise InvalidOptionError("style layer weights must be finite numbers >= 0")


@dataclass(frozen=True, slots=True)
class OptimProgress:
    """What the progress callback gets after every iteration.

    Attributes:
        frame: the frame index (``None`` for a single image).
        level: coarse-to-fine level (0 = coarsest) and ``levels`` their number.
        iteration: iterations done at this level (1-based) of at most ``iterations``.
        loss: the total loss at the iterate just evaluated; ``losses`` its weighted terms.
        warm: whether the frame was initialised from the warped previous result.
        pass_index: pass of :func:`optimize_sequence` (0 = the first).
    """

    frame: int | None
    level: int
    levels: int
    iteration: int
    iterations: int
    loss: float
    losses: dict[str, float]
    warm: bool = False
    pass_index: int = 0


@dataclass
class OptimResult:
    """Result of one optimisation.

    Attributes:
        image: ``H×W×3`` float32 RGB in [0, 1] (colour preservation applied).
        losses: weighted loss terms at the final image (``total``, ``content``, ``style``, ``tv``,
            ``temporal``); ``style`` etc. are already multiplied by their weights.
        iterations: iterations run in all (over all levels).
        seconds: wall-clock time.
        history: ``(seconds since start, total loss, per-frame loss)`` after every iteration of the
            finest level, where the per-frame loss leaves out the temporal terms.
        stopped_early: the tolerance test ended the last level before ``iterations``.
        raw: the optimised variable (``1×3×H×W``, before colour preservation) — what temporal
            losses and warm starts work on.
    """

    image: np.ndarray
    losses: dict[str, float]
    iterations: int
    seconds: float
    history: list[tuple[float, float, float]] = field(default_factory=list)
    stopped_early: bool = False
    raw: torch.Tensor | None = None
