"""The flow stage of the pipeline: optical flow, consistency mask and scene cuts on the input frames."""

from __future__ import annotations

import numpy as np

from vidstyle.errors import InvalidOptionError
from vidstyle.frame import Frame

__all__ = ["FlowStage", "FORWARD_FLOW"]

#: the forward flow only feeds the forward-backward check: for these estimators the file pipeline
#: computes it with a cheaper one. Measured (BENCHMARKS.md, "Temporal stabilisation"): dis-ultrafast
#: takes 2.3 instead of 5.0 ms per 640×360 flow; with the stabiliser's confirmed pixels the 12 clip/model
#: pairs keep warping-error ratios ≤ 0.283, sharpness ≥ 0.994× and style within +8.9 %.
FORWARD_FLOW = {"dis-fast": "dis-ultrafast"}


class FlowStage:
    """Fills ``flow_bwd``, ``flow_fwd``, ``consistency``, ``warp_error`` and ``scene_cut`` of each frame.

    Flow is computed between each frame and the previous frame this stage processed, on the input
    images (``frame.image``). The first frame, and a frame whose size differs from the previous one,
    get ``None`` for all three arrays (the size change is also flagged as a scene cut). A detected
    cut keeps the computed flow and mask but sets ``scene_cut = True``: temporal state must not
    carry across it.

    Args:
        estimator: a :class:`~vidstyle.flow.estimators.FlowEstimator` (or any callable
            ``(prev, next) -> 2×H×W``) or a name for
            :func:`~vidstyle.flow.estimators.make_flow_estimator` (default ``"dis-fast"``).
        scale: resolution factor for a named estimator (default 1.0); not allowed with an instance
            (build it with the scale instead).
        compute_forward: compute ``w_f`` too and use the forward-backward check (see docs/architecture.md,
            'Temporal consistency'). With ``False`` only ``w_b`` is computed (half the cost), ``flow_fwd``
            stays ``None`` and the mask is :func:`~vidstyle.flow.consistency.photometric_mask` (motion
            boundaries + brightness constancy), which is weaker at occlusions.
        detect_cuts: run :func:`~vidstyle.flow.consistency.is_scene_cut` on each pair.
        device: torch device for learned (RAFT) estimators given by name.
        work_scale: compute flows, consistency mask and cut detection on images downsized by this
            factor (INTER_AREA), then upsample the flows (vectors rescaled) and the mask (nearest) to the
            frame size. Unlike ``scale`` (the estimator's own resolution) this also makes the mask
            cheaper: live mode uses 0.5.
        forward_estimator: a different estimator (or name) for the forward flow ``w_f``, which only
            feeds the forward-backward check; ``None`` uses ``estimator`` for both.

    One instance per pipeline: it keeps the previous frame; not thread-safe.
    """

    name = "flow"
    #: a helper: the runner runs it at a lower OS priority than the network (vidstyle.pipeline.stage)
    background = True

    def __init__(
        self,
        *,
        estimator: object = "dis-fast",
        scale: float | None = None,
        compute_forward: bool = True,
        detect_cuts: bool = True,
        device: object = None,
        work_scale: float = 1.0,
        forward_estimator: object = None,
    ) -> None:
        if isinstance(estimator, str):
            from vidstyle.flow.estimators import make_flow_estimator

            estimator = make_flow_estimator(estimator, scale=1.0 if scale is None else scale, device=device)
        elif not callable(estimator):
            raise InvalidOptionError(
                f"FlowStage: estimator must be a flow estimator name or callable, got {type(estimator).__name__}"
            )
        elif scale is not None and scale != getattr(estimator, "scale", None):
            raise InvalidOptionError(
                "FlowStage: scale applies to an estimator given by name; build the estimator with "
                "make_flow_estimator(name, scale=...) instead"
            )
        if not isinstance(work_scale, (int, float)) or not 0.0 < float(work_scale) <= 1.0:
            raise InvalidOptionError(f"FlowStage: work_scale must be in (0, 1], got {work_scale!r}")
        self.work_scale = float(work_scale)
        self.estimator = estimator
        if isinstance(forward_estimator, str):
            from vidstyle.flow.estimators import make_flow_estimator

            forward_estimator = make_flow_estimator(forward_estimator, scale=getattr(estimator, "scale", 1.0),
                                                    device=device)
        elif forward_estimator is not None and not callable(forward_estimator):
            raise InvalidOptionError(
                f"FlowStage: forward_estimator must be a flow estimator name or callable, got {type(forward_estimator).__name__}"
            )
        self.forward_estimator = forward_estimator
        # OpenCV estimators convert each RGB frame to 8-bit grey per call (twice per frame for the two
        # flows), and the warp error compares 8-bit grey too: convert 8-bit frames once instead
        self._gray8 = all(getattr(e, "gray8_input", False) for e in (estimator, forward_estimator) if e is not None)
        self.compute_forward = bool(compute_forward)
        self.detect_cuts = bool(detect_cuts)
        self._prev: np.ndarray | None = None
        self.frames = 0
        self.cuts = 0

    def process(self, frame: Frame) -> list[Frame]:
        """Annotate ``frame`` in place and return ``[frame]``."""
        from vidstyle.flow.consistency import consistency_mask, is_scene_cut, photometric_mask, warp_error
        from vidstyle.flow.estimators import flow_pair, to_gray8

        full = frame.image
        image = self._small(full)
        if self._gray8 and image.dtype == np.uint8 and image.ndim == 3:
            image = to_gray8(image)  # what the estimators and warp_error compute from 8-bit RGB
        prev = self._prev
        self.frames += 1
        frame.flow_bwd = frame.flow_fwd = frame.consistency = frame.warp_error = None
        frame.scene_cut = False
        if prev is not None and prev.shape[:2] != image.shape[:2]:
            frame.scene_cut = True  # resolution change: nothing carries over
            self.cuts += 1
        elif prev is not None:
            if self.compute_forward and self.forward_estimator is not None:
                fwd, bwd = self.forward_estimator(prev, image), self.estimator(image, prev)
                mask = consistency_mask(fwd, bwd)
                frame.flow_fwd = fwd
            elif self.compute_forward:
                fwd, bwd = flow_pair(self.estimator, prev, image)
                mask = consistency_mask(fwd, bwd)
                frame.flow_fwd = fwd
            else:
                bwd = self.estimator(image, prev)
                mask = None
            err = warp_error(image, prev, bwd)  # also the photometric mask's and the cut check's input
            if mask is None:
                mask = photometric_mask(image, prev, bwd, warp_error=err)
            if self.detect_cuts and is_scene_cut(prev, image, bwd, mask, warp_error=err):
                frame.scene_cut = True
                self.cuts += 1
            if image.shape[:2] != full.shape[:2]:
                import cv2

                from vidstyle.flow.estimators import resize_flow

                h, w = full.shape[:2]
                bwd = resize_flow(bwd, height=h, width=w)
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
                err = cv2.resize(err, (w, h), interpolation=cv2.INTER_LINEAR)
                if frame.flow_fwd is not None:
                    frame.flow_fwd = resize_flow(frame.flow_fwd, height=h, width=w)
            frame.flow_bwd = bwd
            frame.consistency = mask
            frame.warp_error = err
        self._prev = image
        return [frame]

    def _small(self, image: np.ndarray) -> np.ndarray:
        if self.work_scale == 1.0:
            return image
        import cv2

        h, w = image.shape[:2]
        size = (max(8, round(w * self.work_scale)), max(8, round(h * self.work_scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def finish(self) -> list[Frame]:
        """End of stream: nothing is held back."""
        return []

    def close(self) -> None:
        """Drop the previous frame (the stage can be reused for a new stream afterwards)."""
        self._prev = None

    def __repr__(self) -> str:
        return (
            f"FlowStage(estimator={self.estimator!r}, compute_forward={self.compute_forward}, "
            f"detect_cuts={self.detect_cuts})"
        )
