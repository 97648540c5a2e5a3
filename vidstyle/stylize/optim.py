"""Optimization back end: Gatys et al. for images, Ruder et al. 2016 for video (DESIGN §3, §5).

The output image itself is optimised (L-BFGS by default, or Adam) to minimise

    α·L_content + β·L_style + τ·TV  (+ γ·(L_short-term + L_long-term) for video frames)

with VGG19 features as the loss network (:mod:`vidstyle.nets.vgg`; Caffe-scale features, Gram
matrices normalised by C·H·W, :mod:`vidstyle.losses`). TV and temporal losses are taken on 0..255
pixel values, like the training losses, so the weights mean the same whatever the VGG source.

Images — :func:`optimize_image`: coarse-to-fine over scales (each level initialised from the
upsampled result of the previous one), init from the content, noise or a given image, colour
preservation (Gatys et al. 2017: ``"luminance"``-only transfer, or ``"histogram"`` matching of the
style's colours to the content's), style scale (the style image's size relative to the content, i.e.
the brush size), several style images blended with weights, and determinism for a given seed.

Video — :class:`OptimStage` (the pipeline's ``"stylize"`` stage, Ruder et al. 2016): each frame
starts from the previous result warped into it (bicubic sampling, which keeps the strokes sharp
where bilinear sampling would blur them; disoccluded pixels from the content), with a
short-term temporal loss (consistency mask of the flow stage) and long-term losses against frames
t−j, j ∈ J (``c_long`` weighting, :func:`vidstyle.losses.long_term_temporal_loss`), fewer iterations
for such warm-started frames, and early stopping when the loss stops falling. ``stabilize`` (the same
option as the feed-forward back end) scales the temporal losses; 0 is independent per-frame
optimisation, the baseline. :func:`optimize_sequence` runs the multi-pass algorithm (alternating
forward and backward passes, blending each frame with its warped neighbour) on a list of frames;
``OptimStage(passes=N)`` does it on a whole file.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.errors import (
    InputNotFoundError,
    InvalidInputError,
    InvalidOptionError,
    ShapeError,
)
from vidstyle.frame import Frame, from_float32, to_float32
from vidstyle.losses import StyleLoss, content_loss, long_term_temporal_loss, tv_loss

__all__ = [
    "DEFAULT_LONG_TERM",
    "DEFAULT_STABILIZE",
    "DEFAULT_TEMPORAL_WEIGHT",
    "OptimConfig",
    "OptimProgress",
    "OptimResult",
    "OptimStage",
    "StyleOptimizer",
    "build_optim_stages",
    "default_layers",
    "load_image",
    "match_color",
    "optimize_image",
    "optimize_sequence",
    "preserve_luminance",
    "rgb_to_yuv",
]

from vidstyle.stylize.optim_config import (  # re-exported
    DEFAULT_LONG_TERM,
    DEFAULT_STABILIZE,
    DEFAULT_TEMPORAL_WEIGHT,
    OptimConfig,
    OptimProgress,
    OptimResult,
)

_LUMA = (0.299, 0.587, 0.114)
#: the default settings (frozen)
DEFAULT_CONFIG = OptimConfig()

# ------------------------------------------------------------------------------------------- helpers


def default_layers(available: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``(content_layer, style_layers)`` for the VGG layers a weights file provides.

    Full VGG19 (conv5_1 available): Gatys et al.'s relu4_2 and relu1_1, 2_1, 3_1, 4_1, 5_1. The
    conv1_1…conv3_4 prefix: relu3_2 and relu1_1, 2_1, 3_1, 3_4 (DESIGN §5). Shorter prefixes: the
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


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``H×W×3`` RGB (uint8, uint16 or float32, as stored)."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{p}: no such image file; check the path")
    image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim not in (2, 3) or image.size == 0:
        raise InvalidInputError(f"{p}: not a readable image; use PNG, JPEG, TIFF or WebP")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise InvalidInputError(f"{p}: {image.shape[2]} channels; use an RGB or grey image")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        image = image.astype(np.float32)
    return np.ascontiguousarray(image)


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


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → YUV (BT.601: Y = 0.299R + 0.587G + 0.114B, U = 0.492(B − Y), V = 0.877(R − Y))."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    return torch.cat([y, 0.492 * (b - y), 0.877 * (r - y)], dim=1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]


def preserve_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the content's chroma (Gatys et al. 2017, luminance-only transfer).

    In YUV, adding the same amount to R, G and B changes Y only, so the result is
    ``content + (Y_stylized − Y_content)`` per channel, clipped to [0, 1].
    """
    return (content + (_luma(stylized) - _luma(content))).clamp(0.0, 1.0)


def _luminance_image(x: torch.Tensor) -> torch.Tensor:
    return _luma(x).expand(-1, 3, -1, -1)


def match_color(style: torch.Tensor, content: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Recolour ``style`` so its colour mean and covariance are the content's (Gatys et al. 2017).

    The linear map ``x' = A(x − μ_s) + μ_c`` with ``A = Σ_c^{1/2} Σ_s^{−1/2}`` (symmetric square roots,
    the "image analogies" variant), clipped to [0, 1]. Both N×3×H×W in [0, 1].
    """

    def stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = img[0].reshape(3, -1).double()
        mu = p.mean(1, keepdim=True)
        d = p - mu
        cov = d @ d.T / max(p.shape[1] - 1, 1) + eps * torch.eye(3, dtype=p.dtype, device=p.device)
        return mu, cov

    def msqrt(m: torch.Tensor, power: float) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag(vals.clamp_min(eps) ** power) @ vecs.T

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    a = msqrt(cov_c, 0.5) @ msqrt(cov_s, -0.5)
    p = style[0].reshape(3, -1).double()
    out = a @ (p - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype).clamp(0.0, 1.0)


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
    """

    def __init__(
        self,
        *,
        styles: Sequence[np.ndarray | torch.Tensor],
        style_mix: Sequence[float] | None = None,
        config: OptimConfig = DEFAULT_CONFIG,
        vgg: Any = None,
        vgg_convention: str | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        from vidstyle.nets.vgg import VGGFeatures, VGGState, load_vgg_state

        config.validate()
        if not styles:
            raise InvalidOptionError("at least one style image is needed (--style PATH)")
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
        self.style_layers = tuple(config.style_layers or d_style)
        if config.style_layer_weights is not None and len(config.style_layer_weights) != len(self.style_layers):
            raise InvalidOptionError(
                f"{len(config.style_layer_weights)} style layer weights for {len(self.style_layers)} style layers"
            )
        lw = config.style_layer_weights or (1.0,) * len(self.style_layers)
        self.layer_weights = dict(zip(self.style_layers, (float(w) for w in lw)))
        layers = list(dict.fromkeys([self.content_layer, *self.style_layers]))
        self.vgg = VGGFeatures(layers=layers, state=state, pooling=config.pooling).to(self.device)
        self.vgg_source = state.source
        self.styles = [_to_tensor(s, what=f"style image {i + 1}").to(self.device) for i, s in enumerate(styles)]
        self.style_mix = list(style_mix) if style_mix is not None else None
        self._targets: dict[tuple[Any, ...], StyleLoss] = {}

    # -- targets ---------------------------------------------------------------------------------

    def style_target(self, size: tuple[int, int], *, color_ref: torch.Tensor | None = None, key: Any = None) -> StyleLoss:
        """The style loss for an output of ``size`` (cached by size and ``key``).

        Each style image is resized to ``style_scale`` × the output's long side; with colour
        preservation it is first converted (luminance, matched to ``color_ref``'s mean and spread)
        or recoloured (:func:`match_color` to ``color_ref``).
        """
        cache_key = (tuple(size), key)
        hit = self._targets.get(cache_key)
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
                    y = _luma(st)
                    if color_ref is not None:
                        yc = _luma(color_ref)
                        y = (y - y.mean()) * (yc.std() / y.std().clamp_min(1e-6)) + yc.mean()
                    st = y.clamp(0.0, 1.0).expand(-1, 3, -1, -1)
                f = self.vgg(st)
                feats.append({k: f[k] for k in self.style_layers})
        loss = StyleLoss(style_features=feats, mix=self.style_mix, layer_weights=self.layer_weights).to(self.device)
        if len(self._targets) > 8:
            self._targets.clear()
        self._targets[cache_key] = loss
        return loss

    def prepare_content(self, content: torch.Tensor) -> torch.Tensor:
        """The image the content loss compares against (the luminance image in luminance mode)."""
        return _luminance_image(content) if self.config.preserve_color == "luminance" else content

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
                return _luminance_image(noise) if self.config.preserve_color == "luminance" else noise
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
        style: StyleLoss,
        temporal: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
        temporal_weight: float = 0.0,
        tolerance: float | None = None,
        progress: Callable[[int, float, dict[str, float]], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        t0: float | None = None,
    ) -> tuple[torch.Tensor, dict[str, float], int, list[tuple[float, float, float]], bool]:
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
            tolerance: early-stop fraction (default: the config's).
            progress: ``progress(iteration, total loss, weighted terms)`` after each iteration.

        Returns ``(best image, its weighted losses, iterations run, history, stopped early)``.
        """
        cfg = self.config
        tol = cfg.tolerance if tolerance is None else tolerance
        t0 = clock() if t0 is None else t0
        with torch.no_grad():
            target = self.vgg(self.prepare_content(content))[self.content_layer].detach()
        warped = [w.detach() * 255.0 for w, _ in temporal]
        masks = [m.detach() for _, m in temporal]
        use_tmp = bool(temporal) and temporal_weight > 0

        def evaluate(img: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            feats = self.vgg(img)
            terms: dict[str, torch.Tensor] = {}
            terms["content"] = cfg.content_weight * content_loss(feats[self.content_layer], target)
            terms["style"] = cfg.style_weight * style(feats)
            if cfg.tv_weight > 0:
                terms["tv"] = cfg.tv_weight * tv_loss(img * 255.0)
            if use_tmp:
                terms["temporal"] = temporal_weight * long_term_temporal_loss(img * 255.0, warped, masks)
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
                return state["best_x"], state["values"], state["done"], history, state["stopped"]
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
        best_x, best_values, done, stopped = state["best_x"], state["values"], state["done"], state["stopped"]
        return best_x, best_values, done, history, stopped


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
) -> tuple[torch.Tensor, dict[str, float], int, list[tuple[float, float, float]], bool]:
    """Coarse-to-fine optimisation of ``content`` (1×3×H×W) from a cold start."""
    size = tuple(content.shape[-2:])
    levels = opt.levels_for(size)  # type: ignore[arg-type]
    x: torch.Tensor | None = None
    total = 0
    result: Any = None
    for li, lsize in enumerate(levels):
        c = _resize(content, lsize)
        x = opt.initial(c, init) if x is None else _resize(x, lsize)
        ref = None if color_ref is None else _resize(color_ref, lsize)
        style = opt.style_target(lsize, color_ref=ref, key=key)

        def cb(i: int, loss: float, terms: dict[str, float], _li: int = li) -> None:
            if progress is not None:
                progress(OptimProgress(frame=frame, level=_li, levels=len(levels), iteration=i, iterations=iterations,
                                       loss=loss, losses=terms, warm=False, pass_index=pass_index))

        result = opt.optimize(c, init=x, iterations=iterations, style=style, progress=cb, t0=t0)
        x = result[0]
        total += result[2]
    assert result is not None
    return result[0], result[1], total, result[3], result[4]


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
    """
    t_start = time.perf_counter()
    opt = optimizer or StyleOptimizer(styles=styles, style_mix=style_mix, config=config, vgg=vgg,
                                      vgg_convention=vgg_convention, device=device)
    c = _to_tensor(content, what="content image").to(opt.device)
    # style targets depend on the content only with colour preservation; otherwise they are cached
    key = None if opt.config.preserve_color is None else ("image", id(c))
    x, losses, its, history, stopped = _optimize_levels(
        opt, c, init=init_image, iterations=opt.config.iterations, color_ref=c, key=key, progress=progress, t0=t_start,
    )
    if key is not None:
        opt._targets = {k: v for k, v in opt._targets.items() if k[1] != key}
    out = opt.finish(x, c)
    image = out[0].permute(1, 2, 0).detach().cpu().numpy().astype(np.float32)
    return OptimResult(image=np.ascontiguousarray(image), losses=losses, iterations=its,
                       seconds=time.perf_counter() - t_start, history=history, stopped_early=stopped, raw=x.detach())


# --------------------------------------------------------------------------------------------- video


def _warp_sharp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``warp(image, flow)`` with bicubic sampling (border padding).

    Bilinear sampling low-pass filters the strokes at every frame, and the losses notice: on Sintel at
    512 px a bilinear warp of a stylized frame more than doubled its style loss (×2.7 total loss),
    a bicubic one kept its sharpness (BENCHMARKS.md). Used for warm starts and temporal targets.
    """
    from vidstyle.flow.warping import flow_to_grid

    grid = flow_to_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode="bicubic", padding_mode="border", align_corners=True)


def _flow_tensor(flow: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))[None].to(device)


def _mask_tensor(mask: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None].to(device)


def _resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == hw:
        return mask
    return cv2.resize(np.ascontiguousarray(mask, dtype=np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


@dataclass
class _Past:
    """What the sequencer remembers of one processed frame."""

    index: int
    image: np.ndarray  # the input at working size (for long-term flows)
    raw: torch.Tensor  # the optimised variable, 1×3×H×W


class _Sequencer:
    """Single-pass video optimisation (Ruder et al. 2016): the per-frame logic of :class:`OptimStage`."""

    def __init__(
        self,
        *,
        optimizer: StyleOptimizer,
        warm_iterations: int,
        stabilize: float,
        temporal_weight: float,
        long_term: tuple[int, ...],
        estimator: Any,
        tolerance: float,
        progress: Callable[[OptimProgress], None] | None,
        fill: str = "content",
    ) -> None:
        self.opt = optimizer
        self.fill = fill
        self.warm_iterations = warm_iterations
        self.stabilize = stabilize
        self.temporal_weight = temporal_weight
        self.long_term = long_term
        self.estimator = estimator
        self.tolerance = tolerance
        self.progress = progress
        self.past: deque[_Past] = deque(maxlen=max(long_term) if long_term else 1)
        self.segment = 0
        self.color_ref: torch.Tensor | None = None
        self.stats: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.past.clear()
        self.color_ref = None
        self.segment += 1

    def _estimate(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if self.estimator is None:
            return None
        from vidstyle.flow.estimators import flow_pair

        return flow_pair(self.estimator, a, b)

    def step(
        self,
        *,
        index: int,
        image: np.ndarray,
        flow_bwd: np.ndarray | None,
        consistency: np.ndarray | None,
        scene_cut: bool,
        pass_index: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Optimise one frame (``image`` at working size); returns ``(raw, content tensor)``."""
        from vidstyle.flow.consistency import consistency_mask
        opt = self.opt
        dev = opt.device
        t0 = time.perf_counter()
        content = _to_tensor(image, what=f"frame {index}").to(dev)
        hw = tuple(content.shape[-2:])
        if scene_cut or (self.past and tuple(self.past[-1].raw.shape[-2:]) != hw):
            self.reset()
        if self.color_ref is None:
            self.color_ref = content
        key = None if opt.config.preserve_color is None else ("video", self.segment)
        temporal: list[tuple[torch.Tensor, torch.Tensor]] = []
        init: torch.Tensor | None = None
        if self.stabilize > 0 and self.past:
            prev = self.past[-1]
            if flow_bwd is None or consistency is None:
                pair = self._estimate(prev.image, image)
                if pair is not None:
                    flow_bwd, consistency = pair[1], consistency_mask(pair[0], pair[1])
            if flow_bwd is not None and consistency is not None:
                w1 = _warp_sharp(prev.raw, _flow_tensor(flow_bwd, dev))
                c1 = _mask_tensor(consistency, dev)
                if self.fill == "warped":  # the warped result everywhere (border pixels stretched into holes)
                    init = w1.clone()
                else:  # disoccluded pixels from the content (or noise, as config.init says)
                    init = c1 * w1 + (1.0 - c1) * opt.initial(content)
                temporal.append((w1, c1))
                # long-term: frames t−j, j ∈ J, j ≥ 2, with flows computed directly on the inputs
                for j in self.long_term:
                    if j < 2 or j > len(self.past):
                        continue
                    old = self.past[-j]
                    pair = self._estimate(old.image, image)
                    if pair is None:
                        continue
                    fwd, bwd = pair
                    temporal.append((_warp_sharp(old.raw, _flow_tensor(bwd, dev)), _mask_tensor(consistency_mask(fwd, bwd), dev)))
        if init is not None:
            style = opt.style_target(hw, color_ref=self.color_ref, key=key)  # type: ignore[arg-type]

            def cb(i: int, loss: float, terms: dict[str, float]) -> None:
                if self.progress is not None:
                    self.progress(OptimProgress(frame=index, level=0, levels=1, iteration=i,
                                                iterations=self.warm_iterations, loss=loss, losses=terms, warm=True,
                                                pass_index=pass_index))

            raw, losses, its, history, stopped = opt.optimize(
                content, init=init, iterations=self.warm_iterations, style=style, temporal=temporal,
                temporal_weight=self.stabilize * self.temporal_weight, tolerance=self.tolerance, progress=cb, t0=t0,
            )
        else:
            raw, losses, its, history, stopped = _optimize_levels(
                opt, content, init=None, iterations=opt.config.iterations, color_ref=self.color_ref, key=key,
                progress=self.progress, frame=index, pass_index=pass_index, t0=t0,
            )
        self.stats.append({"frame": index, "warm": init is not None, "iterations": its, "losses": losses,
                           "seconds": time.perf_counter() - t0, "stopped_early": stopped, "history": history,
                           "lags": len(temporal)})
        self.past.append(_Past(index=index, image=image, raw=raw.detach()))
        return raw, content


def _make_estimator(flow: Any) -> Any:
    if flow is None or (isinstance(flow, str) and flow.strip().lower() in ("none", "off", "")):
        return None
    if isinstance(flow, str):
        from vidstyle.flow.estimators import make_flow_estimator

        return make_flow_estimator(flow)
    if not callable(flow):
        raise InvalidOptionError(f"flow must be an estimator name or callable, got {type(flow).__name__}")
    return flow


def _check_video_options(*, stabilize: float, temporal_weight: float, long_term: Sequence[int], warm_iterations: int | None,
                         passes: int, blend: float, tolerance: float, fill: str = "content") -> tuple[int, ...]:
    if fill not in ("content", "warped"):
        raise InvalidOptionError(f"disocclusion fill must be 'content' or 'warped', got {fill!r}")
    if isinstance(stabilize, bool) or not isinstance(stabilize, (int, float)) or not 0.0 <= stabilize <= 1.0:
        raise InvalidOptionError(f"--stabilize must be between 0 (per-frame) and 1 (strongest), got {stabilize!r}")
    if not isinstance(temporal_weight, (int, float)) or not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise InvalidOptionError(f"--temporal-weight must be a finite number >= 0, got {temporal_weight!r}")
    lags = tuple(sorted({int(j) for j in long_term}))
    if not lags or lags[0] != 1 or any(j < 1 or j > 16 for j in lags):
        raise InvalidOptionError(f"long-term lags must include 1 and lie in 1..16, got {tuple(long_term)!r}")
    if warm_iterations is not None and (isinstance(warm_iterations, bool) or not isinstance(warm_iterations, int)
                                        or warm_iterations < 1):
        raise InvalidOptionError(f"--warm-iterations must be an integer >= 1, got {warm_iterations!r}")
    if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= 50:
        raise InvalidOptionError(f"--passes must be an integer from 1 to 50, got {passes!r}")
    if not isinstance(blend, (int, float)) or not 0.0 <= blend <= 1.0:
        raise InvalidOptionError(f"--blend must be between 0 and 1, got {blend!r}")
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidOptionError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    return lags


def _output(opt: StyleOptimizer, raw: torch.Tensor, content: torch.Tensor, hw: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    out = opt.finish(raw, content)
    out = _resize(out, hw).clamp(0.0, 1.0)
    arr = out[0].permute(1, 2, 0).detach().cpu().numpy().astype(np.float32)
    return np.ascontiguousarray(from_float32(arr, dtype))


def _working_size(hw: tuple[int, int], size: int | None) -> tuple[int, int]:
    if size is None or max(hw) <= size:
        return hw
    return _fit_long_side(hw, size)


def _resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    if image.shape[:2] == hw:
        return image
    return cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def optimize_sequence(
    frames: Sequence[np.ndarray],
    *,
    styles: Sequence[np.ndarray | torch.Tensor] | None = None,
    style_mix: Sequence[float] | None = None,
    config: OptimConfig = DEFAULT_CONFIG,
    stabilize: float = DEFAULT_STABILIZE,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    long_term: Sequence[int] = DEFAULT_LONG_TERM,
    warm_iterations: int | None = None,
    tolerance: float = 1e-3,
    passes: int = 1,
    pass_iterations: int | None = None,
    blend: float = 0.5,
    fill: str = "content",
    flows: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    flow: Any = "dis-fast",
    vgg: Any = None,
    vgg_convention: str | None = None,
    device: str | torch.device | None = None,
    optimizer: StyleOptimizer | None = None,
    progress: Callable[[OptimProgress], None] | None = None,
    stats: list[dict[str, Any]] | None = None,
) -> list[np.ndarray]:
    """Stylize a list of frames (one shot, no scene cuts) by optimisation, single- or multi-pass.

    Pass 0 is the single pass of :class:`OptimStage` (warm start from the warped previous result,
    short- and long-term temporal losses). Each further pass (``passes`` > 1, Ruder et al.'s
    multi-pass algorithm) runs in the opposite direction to the one before: frame i starts from
    ``blend·c·warp(x_n) + (1 − blend·c)·x_i``, with ``x_n`` the neighbour just updated in this pass,
    ``c`` the consistency mask of i with respect to n and ``x_i`` frame i's previous result, and is
    optimised for ``pass_iterations`` with a short-term temporal loss towards the warped neighbour.

    Args:
        frames: ``H×W×3`` RGB frames of one size (uint8/uint16/float32); outputs have the same dtype.
        flows: ``(forward, backward)`` flows for each adjacent pair (``len(frames) − 1``): forward maps
            frame i to i+1, backward i+1 to i. Default: computed on the frames with ``flow``.
        flow: estimator (name or callable) for missing flows, including the long-term ones;
            ``None`` disables long-term lags beyond 1 when ``flows`` is given.
        stats: if a list is given, per-frame statistics (iterations, losses, seconds) are appended.

    The other arguments are those of :class:`OptimStage`.
    """
    from vidstyle.flow.consistency import consistency_mask

    lags = _check_video_options(stabilize=stabilize, temporal_weight=temporal_weight, long_term=long_term,
                                warm_iterations=warm_iterations, passes=passes, blend=blend, tolerance=tolerance,
                                fill=fill)
    if not frames:
        return []
    shape = np.asarray(frames[0]).shape
    for i, f in enumerate(frames):
        if np.asarray(f).shape != shape:
            raise InvalidInputError(f"frame {i} is {np.asarray(f).shape} but frame 0 is {shape}; all frames must have one size")
    if flows is not None and len(flows) != len(frames) - 1:
        raise InvalidInputError(f"{len(flows)} flow pairs for {len(frames)} frames; give one (forward, backward) pair per adjacent pair")
    if styles is None and optimizer is None:
        raise InvalidOptionError("give styles= (or a prepared optimizer=)")
    opt = optimizer or StyleOptimizer(styles=styles or [], style_mix=style_mix, config=config, vgg=vgg,
                                      vgg_convention=vgg_convention, device=device)
    estimator = _make_estimator(flow)
    if flows is None:
        if estimator is None:
            raise InvalidOptionError("optimize_sequence needs flows= or a flow estimator (flow='dis-fast')")
        from vidstyle.flow.estimators import flow_pair

        flows = [flow_pair(estimator, frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
    warm = warm_iterations or max(1, opt.config.iterations // 4)
    seq = _Sequencer(optimizer=opt, warm_iterations=warm, stabilize=float(stabilize), temporal_weight=float(temporal_weight),
                     long_term=lags, estimator=estimator, tolerance=float(tolerance), progress=progress, fill=fill)
    raws: list[torch.Tensor] = []
    contents: list[torch.Tensor] = []
    for i, image in enumerate(frames):
        fb = cons = None
        if i > 0:
            fwd, bwd = flows[i - 1]
            fb, cons = bwd, consistency_mask(fwd, bwd)
        raw, content = seq.step(index=i, image=np.asarray(image), flow_bwd=fb, consistency=cons, scene_cut=False)
        raws.append(raw)
        contents.append(content)
    if stats is not None:
        stats.extend(seq.stats)
    if passes > 1 and len(frames) > 1 and stabilize > 0:
        dev = opt.device
        p_its = pass_iterations or max(1, warm // 2)
        gamma = float(stabilize) * float(temporal_weight)
        # masks of frame i w.r.t. its previous (i−1) and next (i+1) neighbour, and the flows to them
        to_prev = [None] + [(_flow_tensor(flows[i - 1][1], dev), _mask_tensor(consistency_mask(flows[i - 1][0], flows[i - 1][1]), dev))
                            for i in range(1, len(frames))]
        to_next = [(_flow_tensor(flows[i][0], dev), _mask_tensor(consistency_mask(flows[i][1], flows[i][0]), dev))
                   for i in range(len(frames) - 1)] + [None]
        key = None if opt.config.preserve_color is None else ("video", seq.segment)
        for p in range(1, passes):
            backward = p % 2 == 1
            order = range(len(frames) - 1, -1, -1) if backward else range(len(frames))
            for k, i in enumerate(order):
                t0 = time.perf_counter()
                if k == 0:
                    continue  # the first frame of a pass has no updated neighbour: unchanged
                n = i + 1 if backward else i - 1
                link = to_next[i] if backward else to_prev[i]
                assert link is not None
                flow_t, c = link
                wn = _warp_sharp(raws[n], flow_t)
                init = blend * c * wn + (1.0 - blend * c) * raws[i]
                style = opt.style_target(tuple(contents[i].shape[-2:]), color_ref=seq.color_ref, key=key)  # type: ignore[arg-type]

                def cb(it: int, loss: float, terms: dict[str, float], _i: int = i, _p: int = p) -> None:
                    if progress is not None:
                        progress(OptimProgress(frame=_i, level=0, levels=1, iteration=it, iterations=p_its, loss=loss,
                                               losses=terms, warm=True, pass_index=_p))

                raw, losses, its, _h, stopped = opt.optimize(contents[i], init=init, iterations=p_its, style=style,
                                                             temporal=[(wn, c)], temporal_weight=gamma,
                                                             tolerance=tolerance, progress=cb)
                raws[i] = raw.detach()
                if stats is not None:
                    stats.append({"frame": i, "warm": True, "iterations": its, "losses": losses, "pass": p,
                                  "seconds": time.perf_counter() - t0, "stopped_early": stopped})
    hw = shape[:2]
    return [_output(opt, r, c, hw, np.asarray(f).dtype) for r, c, f in zip(raws, contents, frames)]


class OptimStage:
    """Pipeline stage ``"stylize"``: per-frame optimisation made temporally coherent (Ruder et al. 2016).

    Args:
        styles: style images (paths, or ``H×W×3`` arrays).
        style_mix: their blend weights.
        config: :class:`OptimConfig` (``iterations`` is the budget of a cold-started frame, per level).
        stabilize: temporal strength in [0, 1], the same option as the feed-forward back end: it
            scales γ = ``stabilize × temporal_weight``. 0 = independent per-frame optimisation (every
            frame cold-started with ``config.iterations``, no temporal loss).
        temporal_weight: γ at ``stabilize = 1``.
        long_term: the previous frames J of the temporal loss (must contain 1; ``(1,)`` = short-term only).
        warm_iterations: budget of a frame initialised from the warped previous result (default
            ``config.iterations // 4``).
        tolerance: early stop of warm-started frames when the loss fell by less than this fraction
            over ``config.patience`` iterations.
        size: optimise at most at this long side (the output is resized back to the frame size).
        flow: estimator (name or callable) for flows the flow stage does not provide: the long-term
            pairs (t, t−j), and frame-to-frame flows when no flow stage runs. ``None``: long-term
            lags are skipped and frames without flow are cold-started.
        passes: 1 = single pass, frame by frame (works for live input). More: the multi-pass
            algorithm (:func:`optimize_sequence`) — the stage holds every frame until the end of
            the stream, so use it for files only.
        pass_iterations, blend: of the multi-pass algorithm.
        fill: what a warm-started frame starts from where the pixel was not visible in the previous
            frame: ``"content"`` (the input frame, or noise with ``config.init="noise"``) or
            ``"warped"`` (the warped previous result everywhere, stretched from the nearest visible
            pixels; closer to the optimum, so fewer iterations are needed).
        vgg, vgg_convention, device, threads: the loss network's weights, device and CPU threads.
        progress: called after every iteration with an :class:`OptimProgress` (frame, iteration, loss).
        optimizer: a prepared :class:`StyleOptimizer` to reuse (its styles and config win).

    Temporal state (previous results and inputs) lives in the instance; a scene cut, a size change
    or a frame without flow resets it.
    """

    name = "stylize"

    def __init__(
        self,
        *,
        styles: Sequence[str | os.PathLike[str] | np.ndarray] = (),
        style_mix: Sequence[float] | None = None,
        config: OptimConfig = DEFAULT_CONFIG,
        stabilize: float = DEFAULT_STABILIZE,
        temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
        long_term: Sequence[int] = DEFAULT_LONG_TERM,
        warm_iterations: int | None = None,
        tolerance: float = 1e-3,
        size: int | None = None,
        flow: Any = "dis-fast",
        passes: int = 1,
        pass_iterations: int | None = None,
        blend: float = 0.5,
        fill: str = "content",
        vgg: Any = None,
        vgg_convention: str | None = None,
        device: str | torch.device | None = None,
        threads: int | None = None,
        progress: Callable[[OptimProgress], None] | None = None,
        optimizer: StyleOptimizer | None = None,
    ) -> None:
        self.long_term = _check_video_options(stabilize=stabilize, temporal_weight=temporal_weight, long_term=long_term,
                                              warm_iterations=warm_iterations, passes=passes, blend=blend,
                                              tolerance=tolerance, fill=fill)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 16):
            raise InvalidOptionError(f"--size must be an integer >= 16 (pixels), got {size!r}")
        if threads is not None:
            torch.set_num_threads(int(threads))
        if optimizer is None:
            images = [load_image(s) if isinstance(s, (str, os.PathLike)) else s for s in styles]
            optimizer = StyleOptimizer(styles=images, style_mix=style_mix, config=config, vgg=vgg,
                                       vgg_convention=vgg_convention, device=device)
        self.optimizer = optimizer
        if self.optimizer.device.type == "cpu":
            from vidstyle.runtime import default_threads, tune_malloc

            tune_malloc()
            if threads is None:
                torch.set_num_threads(default_threads())
        self.stabilize = float(stabilize)
        self.temporal_weight = float(temporal_weight)
        self.warm_iterations = warm_iterations or max(1, self.optimizer.config.iterations // 4)
        self.tolerance = float(tolerance)
        self.size = size
        self.flow = flow
        self.passes = passes
        self.pass_iterations = pass_iterations
        self.blend = float(blend)
        self.fill = fill
        self.progress = progress
        self._estimator = _make_estimator(flow)
        self._seq = self._new_sequencer()
        self._held: list[Frame] = []
        self.stats: list[dict[str, Any]] = []

    def _new_sequencer(self) -> _Sequencer:
        return _Sequencer(optimizer=self.optimizer, warm_iterations=self.warm_iterations, stabilize=self.stabilize,
                          temporal_weight=self.temporal_weight, long_term=self.long_term, estimator=self._estimator,
                          tolerance=self.tolerance, progress=self.progress, fill=self.fill)

    def process(self, frame: Frame) -> list[Frame]:
        if self.passes > 1:
            self._held.append(frame)
            return []
        hw = frame.image.shape[:2]
        work = _working_size(hw, self.size)  # type: ignore[arg-type]
        image = _resize_image(frame.image, work)
        flow_bwd, cons = frame.flow_bwd, frame.consistency
        if flow_bwd is not None and cons is not None and work != hw:
            from vidstyle.flow.estimators import resize_flow

            flow_bwd = resize_flow(flow_bwd, height=work[0], width=work[1])
            cons = _resize_mask(cons, work)  # type: ignore[arg-type]
        if flow_bwd is not None and flow_bwd.shape[1:] != work:
            raise ShapeError(f"frame {frame.index}: flow {flow_bwd.shape} does not match the frame {hw}")
        raw, content = self._seq.step(index=frame.index, image=image, flow_bwd=flow_bwd, consistency=cons,
                                      scene_cut=frame.scene_cut)
        frame.stylized = _output(self.optimizer, raw, content, hw, frame.image.dtype)  # type: ignore[arg-type]
        self.stats.append(self._seq.stats[-1])
        return [frame]

    def finish(self) -> list[Frame]:
        if not self._held:
            return []
        frames, self._held = self._held, []
        # shots: split at scene cuts and size changes
        shots: list[list[Frame]] = []
        for f in frames:
            if not shots or f.scene_cut or f.image.shape != shots[-1][-1].image.shape:
                shots.append([f])
            else:
                shots[-1].append(f)
        for shot in shots:
            hw = shot[0].image.shape[:2]
            work = _working_size(hw, self.size)  # type: ignore[arg-type]
            images = [_resize_image(f.image, work) for f in shot]
            flows: list[tuple[np.ndarray, np.ndarray]] | None = []
            for f in shot[1:]:
                if f.flow_fwd is None or f.flow_bwd is None:
                    flows = None
                    break
                fwd, bwd = f.flow_fwd, f.flow_bwd
                if work != hw:
                    from vidstyle.flow.estimators import resize_flow

                    fwd = resize_flow(fwd, height=work[0], width=work[1])
                    bwd = resize_flow(bwd, height=work[0], width=work[1])
                flows.append((fwd, bwd))  # type: ignore[union-attr]
            if flows is None and self._estimator is None:
                raise InvalidOptionError("multi-pass needs forward and backward flow; run the flow stage or give flow=")
            outs = optimize_sequence(
                images, optimizer=self.optimizer, stabilize=self.stabilize, temporal_weight=self.temporal_weight,
                long_term=self.long_term, warm_iterations=self.warm_iterations, tolerance=self.tolerance,
                passes=self.passes, pass_iterations=self.pass_iterations, blend=self.blend, fill=self.fill, flows=flows,
                flow=self._estimator, progress=self._progress_for(shot), stats=self.stats,
            )
            for f, out in zip(shot, outs):
                f.stylized = _resize_image(out, hw) if out.shape[:2] != hw else out
        return frames

    def _progress_for(self, shot: list[Frame]) -> Callable[[OptimProgress], None] | None:
        if self.progress is None:
            return None
        cb = self.progress

        def relabel(p: OptimProgress) -> None:  # optimize_sequence counts frames from 0
            cb(replace(p, frame=shot[p.frame].index if p.frame is not None else None))

        return relabel

    def close(self) -> None:
        self._held.clear()
        self._seq.reset()

    def stylize_image(self, image: np.ndarray) -> np.ndarray:
        """One picture, no temporal state: ``H×W×3`` in, same dtype out."""
        hw = image.shape[:2]
        work = _working_size(hw, self.size)  # type: ignore[arg-type]
        r = optimize_image(_resize_image(image, work), styles=(), optimizer=self.optimizer, progress=self.progress)
        return _resize_image(from_float32(r.image, image.dtype), hw)  # type: ignore[arg-type]


def build_optim_stages(
    *,
    styles: Sequence[str | os.PathLike[str] | np.ndarray],
    style_mix: Sequence[float] | None = None,
    config: OptimConfig = DEFAULT_CONFIG,
    stabilize: float | None = None,
    flow: str | None = "dis-fast",
    device: str | None = None,
    threads: int | None = None,
    progress: Callable[[OptimProgress], None] | None = None,
    **stage_options: Any,
) -> list[Any]:
    """The stages of an optimisation run: ``[flow], stylize`` — pass them as ``stages=`` to
    :func:`vidstyle.api.stylize_video`.

    ``stabilize``: ``None`` = :data:`DEFAULT_STABILIZE`; 0 = per-frame (no flow stage). ``flow``: the
    estimator of the flow stage and of the stage's own long-term flows (``"none"`` is only allowed
    with ``stabilize = 0``). Other keyword arguments go to :class:`OptimStage` (``size``, ``passes``,
    ``warm_iterations``, ``temporal_weight``, ``long_term``, ``vgg``…). Everything is loaded and
    checked here, before any output exists.
    """
    strength = DEFAULT_STABILIZE if stabilize is None else float(stabilize)
    use_flow = flow is not None and str(flow).strip().lower() not in ("none", "off", "")
    if strength > 0 and not use_flow:
        raise InvalidOptionError(
            "--stabilize needs optical flow; pick a --flow estimator (e.g. dis-fast) or use --stabilize 0"
        )
    stage = OptimStage(styles=styles, style_mix=style_mix, config=config, stabilize=strength,
                       flow=flow if use_flow else None, device=device, threads=threads, progress=progress,
                       **stage_options)
    stages: list[Any] = []
    if strength > 0:
        from vidstyle.flow.stage import FlowStage

        stages.append(FlowStage(estimator=str(flow), device=device))
    stages.append(stage)
    return stages
