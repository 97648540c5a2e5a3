"""The stabilise stage: temporal stabilisation of the network's output as a pipeline stage of its own.

The pipeline runs each stage in its own thread, so on a CPU this stage works on frame t while the
network already computes frame t+1 (measured in BENCHMARKS.md, "Temporal stabilisation": the
stabiliser's ~8 ms per 640×360 frame no longer adds to the network's stage, which is the pipeline's
slowest). :class:`~vidstyle.stylize.feedforward.FeedForwardStage` with ``raw_output=True`` hands it
the unquantised output; the result is the same, to the bit, as stabilising inside that stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from vidstyle.errors import ShapeError
from vidstyle.frame import Frame, chw_to_hwc, to_float32
from vidstyle.stylize.feedforward import tensor_to_image
from vidstyle.stylize.temporal import DEFAULT_METHOD, DEFAULT_STRENGTH, Stabilizer

if TYPE_CHECKING:
    from vidstyle.options.curve import Curve

__all__ = ["StabilizeStage"]


class StabilizeStage:
    """Pipeline stage: :class:`~vidstyle.stylize.temporal.Stabilizer` on ``frame.stylized``.

    Reads ``frame.stylized`` (the network's output, best unquantised float32 from
    ``FeedForwardStage(raw_output=True)``; 8/16-bit pictures work too) and the flow stage's
    ``flow_bwd``, ``consistency``, ``warp_error`` and ``scene_cut``, and writes the stabilised picture
    back in the dtype of ``frame.image``. Frames without a stylized picture pass unchanged.

    Args:
        strength: blend strength in [0, 1] (0 = per-frame: the picture is only converted), or a
            :class:`~vidstyle.options.Curve` over frame numbers (``Frame.index``).
        method: ``"blend"`` or ``"resample"`` (:class:`~vidstyle.stylize.temporal.Stabilizer`'s method).
        crossfade: ``resample``: a refresh's crossfade as a fraction of the track's lifetime (None: the
            stabiliser's default).
        stabilizer: a configured :class:`Stabilizer` to use instead (``strength``, ``method`` and ``crossfade``
            are then ignored).

    One instance per stream: it keeps the previous output; not thread-safe.
    """

    name = "stabilize"
    #: a helper: the runner runs it at a lower OS priority than the network (vidstyle.pipeline.stage)
    background = True

    def __init__(self, *, strength: float | Curve = DEFAULT_STRENGTH, method: str = DEFAULT_METHOD,
                 crossfade: float | None = None, stabilizer: Stabilizer | None = None) -> None:
        self.stabilizer = (stabilizer if stabilizer is not None
                           else Stabilizer(strength=strength, method=method, crossfade=crossfade))

    @property
    def stabilize(self) -> float:
        """The blend strength (as ``FeedForwardStage.stabilize``)."""
        return self.stabilizer.strength

    def process(self, frame: Frame) -> list[Frame]:
        y = frame.stylized
        if y is None:
            return [frame]
        if y.ndim != 3 or y.shape[2] != 3 or y.shape[:2] != frame.image.shape[:2]:
            raise ShapeError(f"stabilize: stylized picture {y.shape} does not match the frame {frame.image.shape}")
        if y.dtype == np.float32 and y.transpose(2, 0, 1).flags.c_contiguous:  # raw_output: planar memory
            y = chw_to_hwc(y.transpose(2, 0, 1))
        new = torch.from_numpy(np.ascontiguousarray(to_float32(y))).permute(2, 0, 1)[None]

        def tensor(a: np.ndarray | None, lead: tuple[None, ...]) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a))[lead]

        out = self.stabilizer.step(
            new,
            flow_bwd=tensor(frame.flow_bwd, (None,)),
            consistency=tensor(frame.consistency, (None, None)),
            scene_cut=frame.scene_cut,
            warp_error=tensor(frame.warp_error, (None, None)),
            index=frame.frame_number,
            guide=frame.image,
        )
        frame.stylized = tensor_to_image(out[0], frame.image.dtype)
        return [frame]

    def finish(self) -> list[Frame]:
        """End of stream: nothing is held back."""
        return []

    def close(self) -> None:
        """Forget the previous output (the stage can start a new stream afterwards)."""
        self.stabilizer.reset()

    def __repr__(self) -> str:
        return f"StabilizeStage(strength={self.stabilizer.strength}, method={self.stabilizer.method!r})"
