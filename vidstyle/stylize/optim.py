"""Optimization back end: Gatys et al. for images, Ruder et al. 2016 for video.

The output image itself is optimised to minimise content, style, TV and (for video) temporal losses
with VGG19 features (docs/architecture.md, 'Loss network'). The back end is split by job:

* :mod:`vidstyle.stylize.optim_config` — the settings (:class:`OptimConfig`, progress, results),
  importable without torch;
* :mod:`vidstyle.colour` — colour maths (luma, YUV, luminance-only transfer, colour matching);
* :mod:`vidstyle.stylize.optim_engine` — :class:`StyleOptimizer` and :func:`optimize_image`
  (coarse-to-fine, colour preservation, style scale, several styles);
* :mod:`vidstyle.stylize.optim_video` — the video sequencer (docs/architecture.md, 'Temporal
  consistency'): warm starts from the warped previous result, short- and long-term temporal losses,
  and the multi-pass :func:`optimize_sequence`;
* this module — :class:`OptimStage` (the pipeline's ``"stylize"`` stage; ``OptimStage(passes=N)``
  runs the multi-pass algorithm on a whole file). The stages of a run are built by :func:`vidstyle.api.build_stages`. It re-exports the
  public names of the modules above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from vidstyle.colour import match_color, preserve_luminance, rgb_to_yuv
from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.frame import Frame, from_float32
from vidstyle.io.imagefiles import read_image
from vidstyle.options.spec import OptionValueError
from vidstyle.stylize.optim_config import (
    DEFAULT_LONG_TERM,
    DEFAULT_STABILIZE,
    DEFAULT_TEMPORAL_WEIGHT,
    OptimConfig,
    OptimProgress,
    OptimResult,
)
from vidstyle.stylize.optim_engine import (
    DEFAULT_CONFIG,
    LevelResult,
    StyleOptimizer,
    default_layers,
    optimize_image,
)
from vidstyle.stylize.optim_video import (
    _check_video_options,
    _make_estimator,
    _output,
    _resize_image,
    _resize_mask,
    _Sequencer,
    _working_size,
    optimize_sequence,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LONG_TERM",
    "DEFAULT_STABILIZE",
    "DEFAULT_TEMPORAL_WEIGHT",
    "LevelResult",
    "OptimConfig",
    "OptimProgress",
    "OptimResult",
    "OptimStage",
    "StyleOptimizer",
    "default_layers",
    "load_image",
    "match_color",
    "optimize_image",
    "optimize_sequence",
    "preserve_luminance",
    "rgb_to_yuv",
]

#: kept for callers of the old name; the image reader is :func:`vidstyle.io.imagefiles.read_image`
load_image = read_image

class OptimStage:
    """Pipeline stage ``"stylize"``: per-frame optimisation made temporally coherent (Ruder et al. 2016).

    Args:
        styles: style images (paths, or ``H×W×3`` arrays).
        style_mix: their blend weights (with ``style_mattes``: the regions' weights).
        style_mattes: per style image, the matte of its region (``H×W`` in [0, 1], one for every
            frame, resized to the frame): per-region styles (:class:`StyleOptimizer`).
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
        vgg, vgg_convention, device: the loss network's weights and device (CPU threads: vidstyle.runtime.setup).
        progress: called after every iteration with an :class:`OptimProgress` (frame, iteration, loss).
        optimizer: a prepared :class:`StyleOptimizer` to reuse (its styles and config win).
        matte: the run's :class:`~vidstyle.io.mattes.Matte` (``mask``): each frame's matte, resized to
            the working size, goes through the loss (:mod:`vidstyle.losses.masked`): the style inside,
            the content held outside, the temporal losses inside only.
        region_mattes: per style image, its region's :class:`~vidstyle.io.mattes.Matte` when any is a
            sequence (``a.jpg@matte.%04d.png``): each frame takes its own region mattes, resized to the
            working size (``style_mattes`` then holds the first frame's, for checks only).

    Temporal state (previous results and inputs) lives in the instance; a scene cut, a size change
    or a frame without flow resets it.
    """

    name = "stylize"

    def __init__(
        self,
        *,
        styles: Sequence[str | os.PathLike[str] | np.ndarray] = (),
        style_mix: Sequence[float] | None = None,
        style_mattes: Sequence[np.ndarray] | None = None,
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
        progress: Callable[[OptimProgress], None] | None = None,
        optimizer: StyleOptimizer | None = None,
        matte: Any = None,
        region_mattes: Sequence[Any] | None = None,
    ) -> None:
        self.long_term = _check_video_options(stabilize=stabilize, temporal_weight=temporal_weight, long_term=long_term,
                                              warm_iterations=warm_iterations, passes=passes, blend=blend,
                                              tolerance=tolerance, fill=fill)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 16):
            raise OptionValueError("size", f"size must be an integer >= 16 (pixels), got {size!r}")
        if optimizer is None:
            images = [read_image(s) if isinstance(s, (str, os.PathLike)) else s for s in styles]
            optimizer = StyleOptimizer(styles=images, style_mix=style_mix, style_mattes=style_mattes, config=config, vgg=vgg,
                                       vgg_convention=vgg_convention, device=device)
        self.optimizer = optimizer
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
        self.matte = matte
        self.region_mattes = list(region_mattes) if region_mattes is not None else None
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
                                      scene_cut=frame.scene_cut, mask=self._alpha(frame, work),
                                      regions=self._regions(frame, work))
        frame.stylized = _output(self.optimizer, raw, content, hw, frame.image.dtype)  # type: ignore[arg-type]
        self.stats.append(self._seq.stats[-1])
        return [frame]

    def _alpha(self, frame: Frame, work: tuple[int, int]) -> np.ndarray | None:
        """Frame ``frame``'s matte at the working size (``None`` without a matte)."""
        if self.matte is None:
            return None
        a = self.matte.alpha(frame.frame_number, (frame.height, frame.width))
        return a if a.shape == work else np.clip(_resize_image(a, work), 0.0, 1.0)

    def _regions(self, frame: Frame, work: tuple[int, int]) -> list[np.ndarray] | None:
        """Frame ``frame``'s region mattes at the working size (``None`` without matte sequences)."""
        if self.region_mattes is None:
            return None
        out = []
        for m in self.region_mattes:
            a = m.alpha(frame.frame_number, (frame.height, frame.width))
            out.append(a if a.shape == work else np.clip(_resize_image(a, work), 0.0, 1.0))
        return out

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
                masks=None if self.matte is None else [self._alpha(f, work) for f in shot],  # type: ignore[misc]
                regions=None if self.region_mattes is None else [self._regions(f, work) for f in shot],  # type: ignore[misc]
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
