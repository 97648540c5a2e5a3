"""The keyframe stage: every frame through the trained keyframe network(s), in the streaming pipeline.

It sits where the style network sits in the feed-forward graph (docs/architecture.md, "Stage graph"):
``[flow] → keyframes → [stabilize]``. It reads ``frame.image`` (and, for the ``tracked`` guide, the flow
stage's ``flow_bwd`` and ``scene_cut``) and writes ``frame.stylized``: unquantised float32 when a
stabilise stage follows (``raw_output``), else in the dtype of ``frame.image``.
"""

from __future__ import annotations

import copy

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from vidstyle.frame import Frame, from_float32
from vidstyle.keyframes.carry import BackwardCarry, KeyframeCarry, blend_carry
from vidstyle.keyframes.guides import CoordinateTracker, network_input
from vidstyle.keyframes.model import KeyframeModel
from vidstyle.stylize.feedforward import image_to_tensor

__all__ = ["MAX_HOLD", "KeyframeStage", "apply_model"]

#: frames held back waiting for the next keyframe (its painting is carried back to them); older ones go out
#: with the keyframe behind alone, so memory stays bounded (~10 MB per held 640×360 frame)
MAX_HOLD = 120


def apply_model(model: KeyframeModel, inputs: torch.Tensor, *, index: int) -> torch.Tensor:
    """The model's output ``3×H×W`` for one frame's network input ``C×H×W`` at frame ``index``."""
    out: torch.Tensor | None = None
    # channels-last (NHWC): oneDNN's convolutions of the thin full-resolution maps run ~1.5× faster in it
    # (640×360, 2 cores: 50 → 32 ms with the weights converted too, as KeyframeStage does); same values to
    # float rounding, and the 3×H×W output is then an H×W×3 array in memory
    dtype = next(model.nets[0].parameters()).dtype  # KeyframeStage's precision; the output is float32
    x = inputs[None].to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for net, w in zip(model.nets, model.weights(index)):
            if w == 0:
                continue
            y = net(x)[0] * w
            out = y if out is None else out + y
    assert out is not None
    return out.float().clamp_(0.0, 1.0)


class KeyframeStage:
    """Pipeline stage applying a :class:`~vidstyle.keyframes.model.KeyframeModel` to each frame.

    Args:
        model: the trained networks (moved to ``device`` here).
        device: torch device.
        raw_output: write float32 ``H×W×3`` (for a following :class:`~vidstyle.stylize.stabilize.StabilizeStage`).
        paintings: frame index → painted keyframe (``H×W×3`` float32), for ``warp_blend``.
        warp_blend: ``s`` of :mod:`vidstyle.keyframes.carry`: the last keyframe's painting carried along the
            flow (``frame.flow_bwd``) replaces the network's output where the flow explains the frame
            (0: the network alone; needs ``paintings``).
        by_number: keyframes (``paintings``, a ``distance`` model's keys) are the input's own frame numbers
            (``frame.frame_number``, render jobs) instead of positions in the stream (``frame.index``).
        stabilizer: a :class:`~vidstyle.stylize.stabilize.StabilizeStage` run inside this stage (render jobs:
            one stage then holds all the temporal state, which :meth:`temporal_state` exports for a resume).
        dtype: the networks' number format (``torch.bfloat16`` about halves their time on CPUs with AMX, a
            fraction of a level off; the model passed in is left as it is).

    One instance per stream (the ``tracked`` guide keeps the previous coordinates); not thread-safe.
    """

    name = "keyframes"

    def __init__(self, *, model: KeyframeModel, device: torch.device | str = "cpu", raw_output: bool = False,
                 paintings: Mapping[int, np.ndarray] | None = None, warp_blend: float = 0.0,
                 by_number: bool = False, stabilizer: Any = None, dtype: torch.dtype = torch.float32) -> None:
        self.by_number = by_number
        self.stabilize_stage = stabilizer
        self.device = torch.device(device)
        if dtype != torch.float32:
            model = copy.deepcopy(model)
        self.model = model.to(self.device)
        for net in self.model.nets:  # apply_model's memory layout (saving still writes contiguous tensors)
            net.to(dtype=dtype, memory_format=torch.channels_last)
        self.raw_output = raw_output
        self._tracker = CoordinateTracker() if "tracked" in model.guides else None
        self.warp_blend = float(warp_blend) if paintings else 0.0
        self._carry = KeyframeCarry(paintings=paintings) if paintings and warp_blend > 0 else None
        self._held: list[tuple[Frame, np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = []

    def _key(self, frame: Frame) -> int:
        return frame.frame_number if self.by_number else frame.index

    def _next_keyframe(self, key: int) -> int | None:
        assert self._carry is not None
        later = [k for k in self._carry.paintings if k > key]
        return min(later) if later else None

    def process(self, frame: Frame) -> list[Frame]:
        y = self._network(frame)
        if self._carry is None:
            return self._emit(frame, y)
        key = self._key(frame)
        carried = self._carry.step(key, frame.image, frame.flow_bwd, scene_cut=frame.scene_cut)
        if key in self._carry.paintings:  # the keyframe ahead of the held frames has come: carry it back to them
            out = self._resolve(frame, self._carry.paintings[key])
            return out + self._emit(frame, blend_carry(y, carried, strength=self.warp_blend))
        out = []
        if self._next_keyframe(key) is not None:
            if frame.scene_cut:  # the next keyframe cannot reach back across a cut
                out = self._flush()
            self._held.append((frame, y, carried))
            if len(self._held) > MAX_HOLD:
                old, oy, oc = self._held.pop(0)
                out += self._emit(old, blend_carry(oy, oc, strength=self.warp_blend))
            return out
        return self._flush() + self._emit(frame, blend_carry(y, carried, strength=self.warp_blend))

    def _resolve(self, keyframe: Frame, painting: np.ndarray) -> list[Frame]:
        """The held frames, each from the more reliable of the keyframes behind and ahead (or the network)."""
        back = BackwardCarry()
        back.start(painting, keyframe.image)
        nxt = keyframe
        ahead: list[tuple[np.ndarray, np.ndarray] | None] = []
        for held, _, _ in reversed(self._held):
            ok = not nxt.scene_cut and nxt.flow_fwd is not None
            ahead.append(back.step(nxt.flow_fwd if ok else None, held.image))
            nxt = held
        out = []
        for (held, y, behind), other in zip(self._held, reversed(ahead)):
            out += self._emit(held, blend_carry(y, behind, strength=self.warp_blend, other=other))
        self._held = []
        return out

    def _flush(self) -> list[Frame]:
        """The held frames with the keyframe behind alone (no keyframe ahead reached them)."""
        out = []
        for held, y, behind in self._held:
            out += self._emit(held, blend_carry(y, behind, strength=self.warp_blend))
        self._held = []
        return out

    def finish(self) -> list[Frame]:
        return self._flush()

    def _network(self, frame: Frame) -> np.ndarray:
        h, w = frame.image.shape[:2]
        tracked = None
        if self._tracker is not None:
            tracked = self._tracker.step(frame.flow_bwd, size=(h, w), restart=frame.scene_cut)
        x = network_input(image_to_tensor(frame.image), self.model.guides, tracked=tracked).to(self.device)
        y = apply_model(self.model, x, index=self._key(frame)).permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(y, dtype=np.float32)

    def _emit(self, frame: Frame, y: np.ndarray) -> list[Frame]:
        if self.stabilize_stage is not None:
            frame.stylized = y
            return self.stabilize_stage.process(frame)
        frame.stylized = y if self.raw_output else from_float32(y, frame.image.dtype)
        return [frame]

    def temporal_state(self) -> dict[str, torch.Tensor]:
        """What the next frame depends on (render resume, vidstyle.render.state): the inner stabiliser's
        previous output, the carried keyframe (its number, input frame and coordinates) and the ``tracked``
        guide's coordinates."""
        out: dict[str, torch.Tensor] = {}
        if self.stabilize_stage is not None and self.stabilize_stage.stabilizer.previous is not None:
            out["previous"] = self.stabilize_stage.stabilizer.previous
        if self._carry is not None:
            out.update({f"carry.{k}": v for k, v in self._carry.state().items()})
        if self._tracker is not None and self._tracker._coords is not None:
            out["tracked"] = torch.from_numpy(self._tracker._coords.copy())
        return out

    def load_temporal_state(self, state: dict[str, torch.Tensor]) -> None:
        if self.stabilize_stage is not None:
            self.stabilize_stage.stabilizer.reset()
            if "previous" in state:
                self.stabilize_stage.stabilizer.previous = state["previous"].to(self.device)
        if self._carry is not None:
            self._carry.load_state({k[len("carry."):]: v for k, v in state.items() if k.startswith("carry.")})
        if self._tracker is not None:
            self._tracker.reset()
            if "tracked" in state:
                self._tracker._coords = state["tracked"].numpy().astype(np.float32)

    def read_until(self, number: int) -> int:
        """Where a chunk ending at frame ``number`` must read to, so that its last frames get the keyframe
        ahead carried back as in an uninterrupted run: the first keyframe after ``number`` (``number`` itself
        without a carry, or after the last keyframe)."""
        if self._carry is None:
            return number
        nxt = self._next_keyframe(number)
        return number if nxt is None else nxt

    def warmup_start(self, number: int) -> int:
        """Where a chunk starting cold at frame ``number`` must start reading so that the carried keyframe is
        the one an uninterrupted run would carry: the last keyframe at or before ``number`` (``number``
        itself without a carry, or before the first keyframe)."""
        if self._carry is None:
            return number
        before = [k for k in self._carry.paintings if k <= number]
        return max(before) if before else number

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.reset()
        if self._carry is not None:
            self._carry.reset()
        self._held = []
        if self.stabilize_stage is not None:
            self.stabilize_stage.close()
