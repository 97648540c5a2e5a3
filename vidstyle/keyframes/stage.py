"""The keyframe stage: every frame through the trained keyframe network(s), in the streaming pipeline.

It sits where the style network sits in the feed-forward graph (docs/architecture.md, "Stage graph"):
``[flow] → keyframes → [stabilize]``. It reads ``frame.image`` (and, for the ``tracked`` guide, the flow
stage's ``flow_bwd`` and ``scene_cut``) and writes ``frame.stylized``: unquantised float32 when a
stabilise stage follows (``raw_output``), else in the dtype of ``frame.image``.
"""

from __future__ import annotations

import numpy as np
import torch

from vidstyle.frame import Frame, from_float32
from vidstyle.keyframes.guides import CoordinateTracker, network_input
from vidstyle.keyframes.model import KeyframeModel
from vidstyle.stylize.feedforward import image_to_tensor

__all__ = ["KeyframeStage", "apply_model"]


def apply_model(model: KeyframeModel, inputs: torch.Tensor, *, index: int) -> torch.Tensor:
    """The model's output ``3×H×W`` for one frame's network input ``C×H×W`` at frame ``index``."""
    out: torch.Tensor | None = None
    with torch.no_grad():
        for net, w in zip(model.nets, model.weights(index)):
            if w == 0:
                continue
            y = net(inputs[None])[0] * w
            out = y if out is None else out + y
    assert out is not None
    return out.clamp_(0.0, 1.0)


class KeyframeStage:
    """Pipeline stage applying a :class:`~vidstyle.keyframes.model.KeyframeModel` to each frame.

    Args:
        model: the trained networks (moved to ``device`` here).
        device: torch device.
        raw_output: write float32 ``H×W×3`` (for a following :class:`~vidstyle.stylize.stabilize.StabilizeStage`).

    One instance per stream (the ``tracked`` guide keeps the previous coordinates); not thread-safe.
    """

    name = "keyframes"

    def __init__(self, *, model: KeyframeModel, device: torch.device | str = "cpu", raw_output: bool = False) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.raw_output = raw_output
        self._tracker = CoordinateTracker() if "tracked" in model.guides else None

    def process(self, frame: Frame) -> list[Frame]:
        h, w = frame.image.shape[:2]
        tracked = None
        if self._tracker is not None:
            tracked = self._tracker.step(frame.flow_bwd, size=(h, w), restart=frame.scene_cut)
        x = network_input(image_to_tensor(frame.image), self.model.guides, tracked=tracked).to(self.device)
        y = apply_model(self.model, x, index=frame.index).permute(1, 2, 0).cpu().numpy()
        y = np.ascontiguousarray(y, dtype=np.float32)
        frame.stylized = y if self.raw_output else from_float32(y, frame.image.dtype)
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.reset()
