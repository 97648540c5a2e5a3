"""Video by optimisation (Ruder et al. 2016; docs/architecture.md, 'Temporal consistency').

Each frame starts from the previous result warped into it (bicubic sampling, which keeps the strokes
sharp where bilinear sampling would blur them; disoccluded pixels from the content), with a
short-term temporal loss (consistency mask of the flow stage) and long-term losses against frames
t−j, j ∈ J (``c_long`` weighting, :func:`vidstyle.losses.long_term_temporal_loss`), fewer iterations
for such warm-started frames, and early stopping when the loss stops falling. ``stabilize`` scales
the temporal losses; 0 is independent per-frame optimisation, the baseline.

:class:`_Sequencer` is the single pass, frame by frame (what :class:`vidstyle.stylize.optim.OptimStage`
runs on a stream); :func:`optimize_sequence` runs the multi-pass algorithm (alternating forward and
backward passes, blending each frame with its warped neighbour) on a list of frames.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.frame import from_float32
from vidstyle.options.spec import OptionValueError
from vidstyle.stylize.optim_config import (
    DEFAULT_LONG_TERM,
    DEFAULT_STABILIZE,
    DEFAULT_TEMPORAL_WEIGHT,
    OptimConfig,
    OptimProgress,
)
from vidstyle.stylize.optim_engine import (
    DEFAULT_CONFIG,
    LevelResult,
    StyleOptimizer,
    _fit_long_side,
    _optimize_levels,
    _resize,
    _to_tensor,
)

__all__ = ["optimize_sequence"]

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
        mask: np.ndarray | None = None,
        regions: Sequence[np.ndarray] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Optimise one frame (``image`` at working size); returns ``(raw, content tensor)``.

        ``mask``: this frame's matte at working size (``H×W`` in [0, 1]): the mask through the loss
        (:mod:`vidstyle.losses.masked`); a warm start takes the content outside it. ``regions``: this
        frame's region mattes of per-region styles (matte sequences), one ``H×W`` array per style."""
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
        alpha = None if mask is None else _mask_tensor(np.clip(mask, 0.0, 1.0), dev)
        regs = None if regions is None else [_mask_tensor(np.clip(r, 0.0, 1.0), dev) for r in regions]
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
                if alpha is not None:  # outside the matte: the content, which the hold term keeps
                    init = alpha * init + (1.0 - alpha) * opt.prepare_content(content)
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
            style = opt.style_target(hw, color_ref=self.color_ref, key=key, mask=alpha,  # type: ignore[arg-type]
                                     regions=regs)

            def cb(i: int, loss: float, terms: dict[str, float]) -> None:
                if self.progress is not None:
                    self.progress(OptimProgress(frame=index, level=0, levels=1, iteration=i,
                                                iterations=self.warm_iterations, loss=loss, losses=terms, warm=True,
                                                pass_index=pass_index))

            result: LevelResult = opt.optimize(
                content, init=init, iterations=self.warm_iterations, style=style, temporal=temporal,
                temporal_weight=self.stabilize * self.temporal_weight, tolerance=self.tolerance, progress=cb, t0=t0,
                mask=alpha,
            )
        else:
            result = _optimize_levels(
                opt, content, init=None, iterations=opt.config.iterations, color_ref=self.color_ref, key=key,
                progress=self.progress, frame=index, pass_index=pass_index, t0=t0, mask=alpha, regions=regs,
            )
        self.stats.append({"frame": index, "warm": init is not None, "iterations": result.iterations,
                           "losses": result.losses, "seconds": time.perf_counter() - t0,
                           "stopped_early": result.stopped_early, "history": result.history, "lags": len(temporal)})
        self.past.append(_Past(index=index, image=image, raw=result.image.detach()))
        return result.image, content


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
        raise OptionValueError("stabilize", f"stabilize must be between 0 (per-frame) and 1 (strongest), got {stabilize!r}")
    if not isinstance(temporal_weight, (int, float)) or not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise OptionValueError("temporal_weight", f"temporal_weight must be a finite number >= 0, got {temporal_weight!r}")
    lags = tuple(sorted({int(j) for j in long_term}))
    if not lags or lags[0] != 1 or any(j < 1 or j > 16 for j in lags):
        raise InvalidOptionError(f"long-term lags must include 1 and lie in 1..16, got {tuple(long_term)!r}")
    if warm_iterations is not None and (isinstance(warm_iterations, bool) or not isinstance(warm_iterations, int)
                                        or warm_iterations < 1):
        raise OptionValueError("warm_iterations", f"warm_iterations must be an integer >= 1, got {warm_iterations!r}")
    if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= 50:
        raise OptionValueError("passes", f"passes must be an integer from 1 to 50, got {passes!r}")
    if not isinstance(blend, (int, float)) or not 0.0 <= blend <= 1.0:
        raise OptionValueError("blend", f"blend must be between 0 and 1, got {blend!r}")
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
    masks: Sequence[np.ndarray] | None = None,
    regions: Sequence[Sequence[np.ndarray]] | None = None,
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
        masks: one matte per frame (``H×W`` in [0, 1], the frames' size): the mask through the loss
            (:mod:`vidstyle.losses.masked`), in every pass.
        regions: per frame, its region mattes of per-region styles (one ``H×W`` array per style image).

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
    if masks is not None and (len(masks) != len(frames) or any(np.asarray(m).shape != shape[:2] for m in masks)):
        raise InvalidInputError(f"give one matte of the frames' size {shape[:2]} per frame ({len(frames)})")
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
        raw, content = seq.step(index=i, image=np.asarray(image), flow_bwd=fb, consistency=cons, scene_cut=False,
                                mask=None if masks is None else masks[i],
                                regions=None if regions is None else regions[i])
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
                if link is None:  # pragma: no cover - only the first frame of a pass has no neighbour
                    continue
                flow_t, c = link
                wn = _warp_sharp(raws[n], flow_t)
                init = blend * c * wn + (1.0 - blend * c) * raws[i]
                alpha = None if masks is None else _mask_tensor(np.clip(masks[i], 0.0, 1.0), dev)
                if alpha is not None:
                    init = alpha * init + (1.0 - alpha) * opt.prepare_content(contents[i])
                regs = None if regions is None else [_mask_tensor(np.clip(r, 0.0, 1.0), dev) for r in regions[i]]
                style = opt.style_target(tuple(contents[i].shape[-2:]), color_ref=seq.color_ref, key=key,  # type: ignore[arg-type]
                                         mask=alpha, regions=regs)

                def cb(it: int, loss: float, terms: dict[str, float], _i: int = i, _p: int = p) -> None:
                    if progress is not None:
                        progress(OptimProgress(frame=_i, level=0, levels=1, iteration=it, iterations=p_its, loss=loss,
                                               losses=terms, warm=True, pass_index=_p))

                result = opt.optimize(contents[i], init=init, iterations=p_its, style=style, temporal=[(wn, c)],
                                      temporal_weight=gamma, tolerance=tolerance, progress=cb, mask=alpha)
                raws[i] = result.image.detach()
                if stats is not None:
                    stats.append({"frame": i, "warm": True, "iterations": result.iterations, "losses": result.losses,
                                  "pass": p, "seconds": time.perf_counter() - t0,
                                  "stopped_early": result.stopped_early})
    hw = shape[:2]
    return [_output(opt, r, c, hw, np.asarray(f).dtype) for r, c, f in zip(raws, contents, frames)]
