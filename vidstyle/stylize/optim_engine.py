"""The optimisation engine: Gatys et al. style transfer of one image, coarse-to-fine.

The output image itself is optimised (L-BFGS by default, or Adam) to minimise

    α·L_content + β·L_style + τ·TV  (+ γ·(L_short-term + L_long-term) for video frames)

with VGG19 features as the loss network (:mod:`vidstyle.nets.vgg`; Caffe-scale features, Gram
matrices normalised by C·H·W, :mod:`vidstyle.losses`; docs/architecture.md, 'Loss network'). TV and
temporal losses are taken on 0..255 pixel values, like the training losses, so the weights mean the
same whatever the VGG source.

:class:`StyleOptimizer` holds the loss network and the style targets; its :meth:`~StyleOptimizer.optimize`
runs one optimisation at one size and returns a :class:`LevelResult`. :func:`optimize_image` runs it
coarse-to-fine over scales (each level initialised from the upsampled result of the previous one),
with init from the content, noise or a given image, colour preservation (:mod:`vidstyle.colour`),
style scale, several style images blended with weights, and determinism for a given seed. The video
sequencer (:mod:`vidstyle.stylize.optim_video`) reuses the same optimizer frame after frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.colour import luma_torch, luminance_image, match_color, preserve_luminance
from vidstyle.errors import InvalidInputError, InvalidOptionError, ShapeError
from vidstyle.frame import to_float32
from vidstyle.losses import (
    STYLE_LOSS_SCALE,
    GainContentLoss,
    GuidedStyleLoss,
    content_loss,
    hold_loss,
    long_term_temporal_loss,
    make_style_loss,
    tv_loss,
)
from vidstyle.options.spec import OptionValueError
from vidstyle.stylize.optim_config import OptimConfig, OptimProgress, OptimResult

__all__ = ["DEFAULT_CONFIG", "GUIDED_LOSSES", "LevelResult", "StyleOptimizer", "default_layers", "mrf_layers",
           "optimize_image"]

#: the style losses a mask guides (guided Gram matrices; mmd-poly is the Gram loss): the others keep
#: their statistics over the whole picture, and the hold term alone keeps the outside
GUIDED_LOSSES = ("gram", "mmd-poly")

#: the default settings (frozen)
DEFAULT_CONFIG = OptimConfig()


@dataclass(frozen=True, slots=True)
class LevelResult:
    """What one optimisation at one size (:meth:`StyleOptimizer.optimize`) returns.

    Attributes:
        image: the best iterate, 1×3×H×W (the optimised variable, before colour preservation).
        losses: its weighted loss terms (``total``, ``content``, ``style``, ``tv``, ``temporal``).
        iterations: iterations run (function evaluations for L-BFGS); over all levels for a
            coarse-to-fine run.
        history: ``(seconds since start, total loss, per-frame loss)`` after every iteration, where the
            per-frame loss leaves out the temporal terms (of the finest level for a coarse-to-fine run).
        stopped_early: the tolerance test ended the optimisation before its iteration budget.
    """

    image: torch.Tensor
    losses: dict[str, float]
    iterations: int
    history: list[tuple[float, float, float]]
    stopped_early: bool


# ------------------------------------------------------------------------------------------- helpers

def default_layers(available: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``(content_layer, style_layers)`` for the VGG layers a weights file provides.

    Full VGG19 (conv5_1 available): Gatys et al.'s relu4_2 and relu1_1, 2_1, 3_1, 4_1, 5_1. The
    conv1_1…conv3_4 prefix: relu3_2 and relu1_1, 2_1, 3_1, 3_4 (docs/architecture.md,
    'Loss network'). Shorter prefixes: the
    deepest ``reluN_2`` (or last relu) and every block's first relu plus the last one.
    """
    relus = [name for name in available if name.startswith("relu")]
    if not relus:
        raise InvalidOptionError("the VGG weights provide no relu layer; use VGG19 weights with at least conv1_1")
    if "relu5_1" in relus:
        return "relu4_2", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    if "relu3_4" in relus:
        return "relu3_2", ("relu1_1", "relu2_1", "relu3_1", "relu3_4")
    content = next((c for c in ("relu4_2", "relu3_2", "relu2_2") if c in relus), relus[-1])
    style = [name for name in relus if name.endswith("_1")]
    if relus[-1] not in style:
        style.append(relus[-1])
    return content, tuple(style)


def mrf_layers(available: Sequence[str]) -> tuple[str, ...]:
    """The MRF loss's layers: Li & Wand's relu3_1 and relu4_1 with the full VGG19, relu2_1 and relu3_1
    on the conv1–3 prefix (else the deepest two ``reluN_1``)."""
    firsts = [name for name in available if name.startswith("relu") and name.endswith("_1")]
    if "relu4_1" in firsts:
        return ("relu3_1", "relu4_1")
    return tuple(firsts[-2:]) if firsts else default_layers(available)[1]


def _available_layers(state: Any) -> list[str]:
    from vidstyle.nets.vgg import VGG19_LAYERS

    out = []
    for name in VGG19_LAYERS:
        if name.startswith(("conv", "relu")) and f"conv{name[4:]}" not in state.convs:
            break
        if name.startswith("pool") and f"conv{name[4]}_1" not in state.convs:
            break
        out.append(name)
    return out


def _to_tensor(image: np.ndarray | torch.Tensor, *, what: str) -> torch.Tensor:
    """``H×W×3`` array (any supported dtype) or ``3×H×W``/``1×3×H×W`` tensor → 1×3×H×W float32 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        t = image.detach().float()
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[:2] != (1, 3):
            raise ShapeError(f"{what}: expected a 3×H×W or 1×3×H×W tensor, got {tuple(image.shape)}")
        return t.clamp(0.0, 1.0)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ShapeError(f"{what}: expected an H×W×3 RGB image, got shape {arr.shape}")
    try:
        f = to_float32(arr)
    except TypeError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None
    return torch.from_numpy(np.ascontiguousarray(np.clip(f, 0.0, 1.0))).permute(2, 0, 1)[None].contiguous()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=down)


def _fit_long_side(hw: tuple[int, int], long_side: float) -> tuple[int, int]:
    h, w = hw
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _mask_tensor(mask: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """An ``H×W`` matte in [0, 1] → 1×1×H×W float32 on ``device``; it must have the picture's ``size``."""
    arr = np.asarray(mask, dtype=np.float32)
    if arr.shape != tuple(size):
        raise ShapeError(f"mask: matte {arr.shape} does not match the picture {tuple(size)}; resize it first")
    return torch.from_numpy(np.clip(arr, 0.0, 1.0))[None, None].to(device)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    from vidstyle.stylize.feedforward import resolve_device

    return resolve_device(device)

# ----------------------------------------------------------------------------------------- optimizer


#: size of the first L-BFGS step: the most-changed pixel moves by this much (0..1 units)
_FIRST_STEP = 0.02


class _Stop(Exception):
    """Ends an optimisation from inside the closure (early stop, divergence, budget)."""


class StyleOptimizer:
    """The loss network and style targets, reusable across images and frames.

    Args:
        styles: one or more style images (``H×W×3`` arrays or tensors in [0, 1]).
        style_mix: weight of each style image (blends their Gram matrices; default equal).
        config: :class:`OptimConfig`.
        vgg: VGG19 weights: a loaded ``VGGState``, a file path, ``"torchvision"``, or ``None``
            (``$VIDSTYLE_VGG_WEIGHTS``, else torchvision's download).
        vgg_convention: input convention of a local weights file whose metadata does not say.
        device: torch device (``None``: CUDA when available, else CPU).
        style_mattes: per style image, the matte of its region on the output (``H×W`` in [0, 1],
            any size with the output's aspect ratio): one style per region through guided Gram
            matrices (Gatys et al. 2017; ``style_loss`` gram). Give every style a matte or none.
        style_maps, content_map: semantic maps as one-hot label masks (K×H×W arrays, one per style
            image at its aspect ratio, and the content's; :func:`vidstyle.stylize.guides.map_labels`):
            MRF matching guided by the maps (Champandard 2016; ``style_loss`` mrf).
        gain_reference: a painted portrait aligned to the content (``H×W×3``, the content's size;
            :func:`vidstyle.stylize.portrait.plan_portrait`): the content loss becomes Selim et al.'s
            gain-map loss (:class:`~vidstyle.losses.GainContentLoss`) on :func:`mrf_layers` (relu2_1 and
            relu3_1 on the conv1–3 prefix) — the photo's features times the clamped ratio of the
            painting's to the photo's.
    """

    def __init__(
        self,
        *,
        styles: Sequence[np.ndarray | torch.Tensor],
        style_mix: Sequence[float] | None = None,
        config: OptimConfig = DEFAULT_CONFIG,
        style_mattes: Sequence[np.ndarray | torch.Tensor] | None = None,
        style_maps: Sequence[np.ndarray | torch.Tensor] | None = None,
        content_map: np.ndarray | torch.Tensor | None = None,
        gain_reference: np.ndarray | torch.Tensor | None = None,
        vgg: Any = None,
        vgg_convention: str | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        from vidstyle.nets.vgg import VGGFeatures, VGGState, load_vgg_state

        config.validate()
        if not styles:
            raise OptionValueError("style", "at least one style image is needed (`style` PATH)")
        if style_mix is not None:
            if len(style_mix) != len(styles):
                raise InvalidOptionError(f"{len(style_mix)} style weights for {len(styles)} style images; give one each")
            if any((not math.isfinite(m)) or m < 0 for m in style_mix) or sum(style_mix) <= 0:
                raise InvalidOptionError("style weights must be >= 0 and not all 0")
        self.config = config
        self.device = _resolve_device(device)
        state = vgg if isinstance(vgg, VGGState) else load_vgg_state(weights=vgg, convention=vgg_convention)  # type: ignore[arg-type]
        available = _available_layers(state)
        d_content, d_style = default_layers(available)
        self.content_layer = config.content_layer or d_content
        if config.style_loss == "mrf" and not config.style_layers:
            d_style = mrf_layers(available)
        self.style_layers = tuple(config.style_layers or d_style)
        if config.style_layer_weights is not None and len(config.style_layer_weights) != len(self.style_layers):
            raise InvalidOptionError(
                f"{len(config.style_layer_weights)} style layer weights for {len(self.style_layers)} style layers"
            )
        lw = config.style_layer_weights or (1.0,) * len(self.style_layers)
        self.layer_weights = dict(zip(self.style_layers, (float(w) for w in lw)))
        #: the layers of the portrait gain-map content loss (empty without a gain reference)
        self.gain_layers = mrf_layers(available) if gain_reference is not None else ()
        layers = list(dict.fromkeys([self.content_layer, *self.style_layers, *self.gain_layers]))
        self.vgg = VGGFeatures(layers=layers, state=state, pooling=config.pooling).to(self.device)
        self.vgg_source = state.source
        self.styles = [_to_tensor(s, what=f"style image {i + 1}").to(self.device) for i, s in enumerate(styles)]
        self.style_mix = list(style_mix) if style_mix is not None else None
        self.gain_reference = None if gain_reference is None else _to_tensor(gain_reference, what="gain reference").to(self.device)
        self.style_mattes = self._guides(style_mattes, styles, "style_mattes", matte=True)
        self.style_maps = self._guides(style_maps, styles, "style_maps", matte=False)
        self.content_map = None if content_map is None else torch.as_tensor(np.asarray(content_map, np.float32))[None].to(self.device)
        if self.style_mattes is not None and config.style_loss != "gram":
            raise OptionValueError("style_loss", f"per-region styles (STYLE@MATTE) use the Gram loss; drop "
                                                 f"`style_loss` {config.style_loss}", also=("style",))
        if (self.style_maps is None) != (self.content_map is None):
            raise OptionValueError("style_map", "semantic maps need both `style_map` and `content_map`",
                                   also=("content_map",))
        if self.style_maps is not None and config.style_loss != "mrf":
            raise OptionValueError("style_loss", f"semantic maps guide the mrf loss; use `style_loss` mrf, not "
                                                 f"{config.style_loss}", also=("style_map",))
        #: β is multiplied by this for the chosen loss (vidstyle.losses.select.STYLE_LOSS_SCALE)
        self.style_loss_scale = STYLE_LOSS_SCALE[config.style_loss]
        self._targets: dict[tuple[Any, ...], torch.nn.Module] = {}
        self._style_feats: dict[tuple[Any, ...], list[dict[str, torch.Tensor]]] = {}

    def _guides(self, guides: Sequence[Any] | None, styles: Sequence[Any], name: str, *,
                matte: bool) -> list[torch.Tensor] | None:
        if guides is None:
            return None
        if len(guides) != len(styles):
            raise OptionValueError(name, f"{len(guides)} {name} for {len(styles)} style images; give one each")
        out = []
        for g in guides:
            t = torch.as_tensor(np.asarray(g, np.float32)) if not isinstance(g, torch.Tensor) else g.float()
            out.append((t[None, None] if matte and t.ndim == 2 else t[None] if t.ndim == 3 else t).to(self.device))
        return out

    # -- targets ---------------------------------------------------------------------------------

    def style_target(self, size: tuple[int, int], *, color_ref: torch.Tensor | None = None,
                     key: Any = None, mask: torch.Tensor | None = None,
                     regions: Sequence[torch.Tensor] | None = None) -> torch.nn.Module:
        """The style loss (``config.style_loss``) for an output of ``size`` (cached by size and ``key``).

        Each style image is resized to ``style_scale`` × the output's long side; with colour
        preservation it is first converted (luminance, matched to ``color_ref``'s mean and spread)
        or recoloured (:func:`match_color` to ``color_ref``).

        ``mask`` (1×1×H×W in [0, 1], the output's size): the style of the matted region only, by
        guided Gram matrices with the matte as guidance channel (times the region mattes of per-region
        styles); several paintings without mattes share the matte with their weights normalised, which
        has the gradient of their blended Gram target. Not cached (a matte changes from frame to frame);
        the style features are. Losses other than :data:`GUIDED_LOSSES` are returned unguided.

        ``regions`` (one 1×1×H×W matte per style image, any size of the output's aspect): this frame's
        region mattes of per-region styles, in place of ``style_mattes`` (matte sequences, frame by frame).
        """
        cfg = self.config
        if regions is not None and self.style_mattes is None:
            raise OptionValueError("style", "per-frame region mattes need per-region styles (`style_mattes`)")
        if regions is not None or (mask is not None and cfg.style_loss in GUIDED_LOSSES):
            feats = self._features_for(size, color_ref=color_ref, key=key)
            m = None if mask is None else mask.to(self.device).float()
            if self.style_mattes is not None:
                base = self._region_mattes(size, regions)
                mattes = base if m is None else [m * r for r in base]
                weights = self.style_mix
            else:
                assert m is not None
                mattes = [m] * len(feats)
                mix = self.style_mix or [1.0] * len(feats)
                weights = [w / sum(mix) for w in mix]
            return GuidedStyleLoss(style_features=feats, mattes=mattes, region_weights=weights,
                                   layer_weights=self.layer_weights).to(self.device)
        cache_key = (tuple(size), key)
        hit = self._targets.get(cache_key)
        if hit is not None:
            return hit
        feats = self._features_for(size, color_ref=color_ref, key=key)
        mattes = None if self.style_mattes is None else self._region_mattes(size)
        loss = make_style_loss(cfg.style_loss, style_features=feats, mix=self.style_mix,
                               layer_weights=self.layer_weights, mattes=mattes, style_maps=self.style_maps,
                               content_map=self.content_map, map_weight=cfg.map_weight).to(self.device)
        if len(self._targets) > 8:
            self._targets.clear()
        self._targets[cache_key] = loss
        return loss

    def _region_mattes(self, size: tuple[int, int],
                       regions: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        mattes = self.style_mattes if regions is None else [r.to(self.device).float() for r in regions]
        assert mattes is not None
        if len(mattes) != len(self.styles):
            raise OptionValueError("style", f"{len(mattes)} region mattes for {len(self.styles)} style images")
        return [F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
                for m in mattes]

    def _features_for(self, size: tuple[int, int], *, color_ref: torch.Tensor | None,
                      key: Any) -> list[dict[str, torch.Tensor]]:
        """The style images' features for an output of ``size`` (cached by size and ``key``)."""
        cache_key = (tuple(size), key)
        hit = self._style_feats.get(cache_key)
        if hit is not None:
            return hit
        cfg = self.config
        feats = []
        with torch.no_grad():
            for s in self.styles:
                st = _resize(s, _fit_long_side(tuple(s.shape[-2:]), max(size) * cfg.style_scale))
                if cfg.preserve_color == "histogram" and color_ref is not None:
                    st = match_color(st, color_ref)
                elif cfg.preserve_color == "luminance":
                    y = luma_torch(st)
                    if color_ref is not None:
                        yc = luma_torch(color_ref)
                        y = (y - y.mean()) * (yc.std() / y.std().clamp_min(1e-6)) + yc.mean()
                    st = y.clamp(0.0, 1.0).expand(-1, 3, -1, -1)
                f = self.vgg(st)
                feats.append({k: f[k] for k in self.style_layers})
        if len(self._style_feats) > 8:
            self._style_feats.clear()
        self._style_feats[cache_key] = feats
        return feats

    def prepare_content(self, content: torch.Tensor) -> torch.Tensor:
        """The image the content loss compares against (the luminance image in luminance mode)."""
        return luminance_image(content) if self.config.preserve_color == "luminance" else content

    def finish(self, raw: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """Turn the optimised variable into the output picture (colour preservation, clipping)."""
        if self.config.preserve_color == "luminance":
            return preserve_luminance(raw, content)
        return raw.clamp(0.0, 1.0)

    def levels_for(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        """Sizes of the coarse-to-fine levels for an output of ``size``, coarsest first."""
        n = self.config.scales
        if n is None:
            n = 1
            while max(size) / 2**n >= 256 and n < 6:
                n += 1
        out = []
        for i in range(n - 1, -1, -1):
            s = 2**i
            out.append((max(8, round(size[0] / s)), max(8, round(size[1] / s))))
        return out

    def initial(self, content: torch.Tensor, init: str | torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """The starting image for ``content`` (1×3×H×W): content, seeded noise, or a given image."""
        init = self.config.init if init is None else init
        if isinstance(init, str):
            if init == "content":
                return self.prepare_content(content).clone()
            if init == "noise":
                g = torch.Generator().manual_seed(int(self.config.seed))
                noise = torch.rand(content.shape, generator=g, dtype=torch.float32).to(content.device, content.dtype)
                return luminance_image(noise) if self.config.preserve_color == "luminance" else noise
            raise InvalidOptionError(f"init must be 'content', 'noise' or an image, got {init!r}")
        t = _to_tensor(init, what="init image").to(content.device, content.dtype)
        t = _resize(t, tuple(content.shape[-2:]))
        return self.prepare_content(t) if self.config.preserve_color == "luminance" else t

    # -- the optimisation --------------------------------------------------------------------------

    def optimize(
        self,
        content: torch.Tensor,
        *,
        init: torch.Tensor,
        iterations: int,
        style: torch.nn.Module,
        temporal: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
        temporal_weight: float = 0.0,
        mask: torch.Tensor | None = None,
        tolerance: float | None = None,
        progress: Callable[[int, float, dict[str, float]], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        t0: float | None = None,
    ) -> LevelResult:
        """Optimise one image at one size.

        Args:
            content: 1×3×H×W content image in [0, 1] (what the content loss compares against is
                :meth:`prepare_content` of it).
            init: 1×3×H×W starting image.
            iterations: at most this many iterations.
            style: the style loss (:meth:`style_target`).
            temporal: ``(warped previous result, consistency mask)`` pairs, nearest previous frame
                first, for the long-term temporal loss (one pair = the short-term loss).
            temporal_weight: γ.
            mask: 1×1×H×W matte in [0, 1] (the content's size), the mask through the loss
                (:mod:`vidstyle.losses.masked`): adds the hold term ``config.mask_weight ·
                hold_loss`` outside the matte and weights the temporal losses by the matte. The style
                loss ``style`` should be guided by the same matte (:meth:`style_target` with ``mask``).
            tolerance: early-stop fraction (default: the config's).
            progress: ``progress(iteration, total loss, weighted terms)`` after each iteration.

        Returns a :class:`LevelResult`: the best iterate, its weighted losses, the iterations run, the
        loss history and whether the tolerance test stopped it early.
        """
        cfg = self.config
        tol = cfg.tolerance if tolerance is None else tolerance
        t0 = clock() if t0 is None else t0
        gain: GainContentLoss | None = None
        with torch.no_grad():
            content_feats = self.vgg(self.prepare_content(content))
            target = content_feats[self.content_layer].detach()
            if self.gain_reference is not None:
                ref = self.vgg(self.prepare_content(_resize(self.gain_reference, tuple(content.shape[-2:]))))
                gain = GainContentLoss(content_features={k: content_feats[k] for k in self.gain_layers},
                                       style_features={k: ref[k] for k in self.gain_layers})
        warped = [w.detach() * 255.0 for w, _ in temporal]
        alpha = None if mask is None else mask.detach().to(content.device, content.dtype)
        masks = [m.detach() if alpha is None else m.detach() * alpha for _, m in temporal]
        use_tmp = bool(temporal) and temporal_weight > 0
        held = None if alpha is None else self.prepare_content(content).detach() * 255.0

        def evaluate(img: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            feats = self.vgg(img)
            terms: dict[str, torch.Tensor] = {}
            if gain is not None:
                terms["content"] = cfg.content_weight * gain(feats)
            else:
                terms["content"] = cfg.content_weight * content_loss(feats[self.content_layer], target)
            terms["style"] = (cfg.style_weight * self.style_loss_scale) * style(feats)
            if cfg.tv_weight > 0:
                terms["tv"] = cfg.tv_weight * tv_loss(img * 255.0)
            if use_tmp:
                terms["temporal"] = temporal_weight * long_term_temporal_loss(img * 255.0, warped, masks)
            if held is not None and cfg.mask_weight > 0:
                terms["hold"] = cfg.mask_weight * hold_loss(img * 255.0, held, alpha)  # type: ignore[arg-type]
            total = sum(terms.values())
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["total"] = float(total.detach())
            return total, values  # type: ignore[return-value]

        state: dict[str, Any] = {"done": 0, "best": math.inf, "best_x": init.detach().clone(), "values": {},
                                 "stopped": False}
        history: list[tuple[float, float, float]] = []
        totals: list[float] = []

        def record(image: torch.Tensor, values: dict[str, float]) -> None:
            """Book-keeping after one evaluation; raises _Stop to end the optimisation."""
            loss = values["total"]
            if not math.isfinite(loss):
                raise _Stop  # diverged: keep the best iterate so far
            state["done"] += 1
            done = state["done"]
            if loss < state["best"]:
                state["best"], state["values"] = loss, values
                state["best_x"] = image.detach().clone()
            history.append((clock() - t0, loss, loss - values.get("temporal", 0.0)))
            totals.append(loss)
            if progress is not None:
                progress(done, loss, values)
            if tol > 0 and len(totals) > cfg.patience:
                old = totals[-1 - cfg.patience]
                if old > 0 and (old - min(totals[-cfg.patience:])) / old < tol:
                    state["stopped"] = done < iterations
                    raise _Stop

        # The optimised variable is y = k·x. With k = 1 that is the image itself (Adam). For L-BFGS,
        # k sets the size of the very first step, the one step that is not scale-free (torch takes
        # t = min(1, 1/|g|₁), far too short for these badly scaled losses, and the line search then
        # spends several evaluations extrapolating): k is chosen from the gradient at the start so
        # that the first step moves the most-changed pixel by _FIRST_STEP. Later steps are
        # quasi-Newton steps, which do not depend on k.
        k = 1.0
        first: dict[str, Any] = {}
        if cfg.optimizer == "lbfgs":
            x0 = init.detach().clone().requires_grad_(True)
            total0, values0 = evaluate(x0)
            total0.backward()
            g = x0.grad.detach()  # type: ignore[union-attr]
            try:
                record(x0, values0)
            except _Stop:
                return LevelResult(image=state["best_x"], losses=state["values"], iterations=state["done"],
                                   history=history, stopped_early=state["stopped"])
            g1, gmax = float(g.abs().sum()), float(g.abs().max())
            if gmax > 0 and math.isfinite(g1):
                k = gmax / (_FIRST_STEP * g1)
                if k >= g1:  # then torch takes t = 1 and the step is −g/k²
                    k = math.sqrt(gmax / _FIRST_STEP)
            first = {"grad": g / k, "total": total0.detach()}
        y = (init.detach() * k).clone().requires_grad_(True)

        def closure() -> torch.Tensor:
            if first:  # L-BFGS's first call is at the start point, already evaluated above
                y.grad = first.pop("grad")
                return first.pop("total")
            if state["done"] >= iterations:  # Adam's final check or an L-BFGS overrun
                raise _Stop
            opt.zero_grad(set_to_none=True)
            image = y / k if k != 1.0 else y
            total, values = evaluate(image)
            if math.isfinite(values["total"]):
                total.backward()
            record(image, values)
            return total

        if cfg.optimizer == "lbfgs":
            # Strong-Wolfe line search: robust to the huge, badly scaled gradients of Caffe-scale
            # losses (without it the first steps overshoot). Every function evaluation counts as
            # one iteration; the best evaluated iterate is kept.
            opt: torch.optim.Optimizer = torch.optim.LBFGS(
                [y], lr=cfg.lr or 1.0, max_iter=iterations, max_eval=iterations + 1, history_size=50,
                tolerance_grad=-1.0, tolerance_change=-1.0, line_search_fn="strong_wolfe",
            )
            try:
                if state["done"] < iterations:
                    opt.step(closure)
            except _Stop:
                pass
        else:
            opt = torch.optim.Adam([y], lr=cfg.lr or 0.02)
            try:
                while state["done"] < iterations:
                    closure()
                    opt.step()
            except _Stop:
                pass
            if not state["stopped"]:
                with torch.no_grad():  # the last step's result was never evaluated
                    final = y.detach()
                    if torch.isfinite(final).all():
                        _, values = evaluate(final)
                        if values["total"] < state["best"]:
                            state["best"], state["values"], state["best_x"] = values["total"], values, final.clone()
        return LevelResult(image=state["best_x"], losses=state["values"], iterations=state["done"], history=history,
                           stopped_early=state["stopped"])


def _optimize_levels(
    opt: StyleOptimizer,
    content: torch.Tensor,
    *,
    init: str | np.ndarray | torch.Tensor | None,
    iterations: int,
    color_ref: torch.Tensor | None,
    key: Any,
    progress: Callable[[OptimProgress], None] | None,
    frame: int | None = None,
    pass_index: int = 0,
    t0: float | None = None,
    mask: torch.Tensor | None = None,
    regions: Sequence[torch.Tensor] | None = None,
) -> LevelResult:
    """Coarse-to-fine optimisation of ``content`` (1×3×H×W) from a cold start: the finest level's
    result, with ``iterations`` counted over all levels; ``mask`` (1×1×H×W) is resized to each level."""
    size = tuple(content.shape[-2:])
    levels = opt.levels_for(size)  # type: ignore[arg-type]
    x: torch.Tensor | None = None
    results: list[LevelResult] = []
    for li, lsize in enumerate(levels):
        c = _resize(content, lsize)
        x = opt.initial(c, init) if x is None else _resize(x, lsize)
        ref = None if color_ref is None else _resize(color_ref, lsize)
        m = None if mask is None else _resize(mask, lsize).clamp(0.0, 1.0)
        style = opt.style_target(lsize, color_ref=ref, key=key, mask=m, regions=regions)

        def cb(i: int, loss: float, terms: dict[str, float], _li: int = li) -> None:
            if progress is not None:
                progress(OptimProgress(frame=frame, level=_li, levels=len(levels), iteration=i, iterations=iterations,
                                       loss=loss, losses=terms, warm=False, pass_index=pass_index))

        results.append(opt.optimize(c, init=x, iterations=iterations, style=style, progress=cb, t0=t0, mask=m))
        x = results[-1].image
    # levels_for gives at least one level
    return replace(results[-1], iterations=sum(r.iterations for r in results))


def optimize_image(
    content: np.ndarray | torch.Tensor,
    *,
    styles: Sequence[np.ndarray | torch.Tensor],
    style_mix: Sequence[float] | None = None,
    config: OptimConfig = DEFAULT_CONFIG,
    init_image: np.ndarray | torch.Tensor | None = None,
    vgg: Any = None,
    vgg_convention: str | None = None,
    device: str | torch.device | None = None,
    optimizer: StyleOptimizer | None = None,
    progress: Callable[[OptimProgress], None] | None = None,
    mask: np.ndarray | None = None,
) -> OptimResult:
    """Stylize one image by optimisation (Gatys et al.), coarse-to-fine.

    Args:
        content: ``H×W×3`` RGB (uint8/uint16/float) or a 3×H×W tensor in [0, 1]; the output has its size.
        styles, style_mix: style images and their blend weights.
        config: :class:`OptimConfig`.
        init_image: start from this image (resized to the content) instead of ``config.init``.
        vgg, vgg_convention, device: see :class:`StyleOptimizer`.
        optimizer: a prepared :class:`StyleOptimizer` (its styles, config and device are used and
            the other arguments above are ignored), to reuse the loss network across calls.
        progress: called after every iteration with an :class:`OptimProgress`.
        mask: ``H×W`` matte in [0, 1] of the content's size: the style only inside it, through the loss
            (:mod:`vidstyle.losses.masked`); outside, the picture is held to the content.
    """
    t_start = time.perf_counter()
    opt = optimizer or StyleOptimizer(styles=styles, style_mix=style_mix, config=config, vgg=vgg,
                                      vgg_convention=vgg_convention, device=device)
    c = _to_tensor(content, what="content image").to(opt.device)
    m = None if mask is None else _mask_tensor(mask, tuple(c.shape[-2:]), opt.device)
    # style targets depend on the content only with colour preservation; otherwise they are cached
    key = None if opt.config.preserve_color is None else ("image", id(c))
    result = _optimize_levels(
        opt, c, init=init_image, iterations=opt.config.iterations, color_ref=c, key=key, progress=progress, t0=t_start,
        mask=m,
    )
    if key is not None:
        opt._targets = {k: v for k, v in opt._targets.items() if k[1] != key}
        opt._style_feats = {k: v for k, v in opt._style_feats.items() if k[1] != key}
    out = opt.finish(result.image, c)
    image = out[0].permute(1, 2, 0).detach().cpu().numpy().astype(np.float32)
    return OptimResult(image=np.ascontiguousarray(image), losses=result.losses, iterations=result.iterations,
                       seconds=time.perf_counter() - t_start, history=result.history,
                       stopped_early=result.stopped_early, raw=result.image.detach())
