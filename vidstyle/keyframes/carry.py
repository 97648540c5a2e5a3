"""Carrying the last painted keyframe along the flow, where the flow explains the frame (``warp_blend``).

The network repaints every frame from its colours: it has the painting's palette and layout, but a small
network trained for minutes softens the strokes (docs/keyframes.md, "Measured"). The painting itself, moved
along the optical flow, has every stroke but goes wrong wherever the flow does (occlusions, non-rigid
motion, what enters the frame). :class:`KeyframeCarry` takes the best of both, per pixel:

* **Warp.** From the last keyframe ``k`` passed, the coordinates are carried along the backward flows,
  ``p_k(x) = x``, ``p_t(x) = p_{t−1}(x + w_b(x))`` (bilinear on the smooth coordinate field, as the
  ``tracked`` guide), and the painting is sampled once: ``W_t = P_k(p_t)`` (bicubic), so strokes are not
  blurred by repeated resampling.
* **Reliability.** The keyframe's *input* frame is carried the same way, ``Î_t = I_k(p_t)``. Where it
  matches the current input, the flow explained that pixel and the carried paint belongs there:
  ``r = clip(1 − G_σ ∗ mean_c|I_t − Î_t| / τ, 0, 1)`` (``τ`` = :data:`TOLERANCE`, ``σ`` = :data:`FEATHER` px),
  and 0 where ``p_t`` left the frame.
* **Blend.** ``out = s·r·W_t + (1 − s·r)·N_t`` with ``N_t`` the network's output and ``s`` = ``warp_blend``.

At a keyframe, ``W = P_k`` and ``r = 1``: with ``s = 1`` the painting comes out exactly. Before the first
keyframe, after a scene cut (until the next keyframe) and on a frame without flow, ``r = 0``: the network
alone. Only the past keyframe is carried, so the stage streams (a later keyframe would need frames not yet
decoded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from vidstyle.errors import ShapeError

__all__ = ["FEATHER", "TOLERANCE", "KeyframeCarry", "blend_carry"]

#: colour difference (mean over RGB in 0..1) at which the carried paint is no longer trusted at all
TOLERANCE = 0.08
#: Gaussian σ (pixels) smoothing the colour difference: one noisy pixel does not switch the paint
FEATHER = 2.0
_OUTSIDE = -1.0e6


class KeyframeCarry:
    """The last keyframe's painting carried to each frame, with its per-pixel reliability (module docstring).

    Args:
        paintings: frame index → the painting of that keyframe (``H×W×3`` float32 in [0, 1], frame size).
        tolerance: ``τ``.
        feather: ``σ``.

    ``step(index, image, flow_bwd, scene_cut)`` is called once per frame in order; it returns
    ``(W, r)`` (``H×W×3``, ``H×W`` float32) or ``None`` where nothing is carried. One instance per stream.
    """

    def __init__(self, *, paintings: Mapping[int, np.ndarray], tolerance: float = TOLERANCE,
                 feather: float = FEATHER) -> None:
        self.paintings = {int(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in paintings.items()}
        self.tolerance = float(tolerance)
        self.feather = float(feather)
        self.reset()

    def reset(self) -> None:
        self._painting: np.ndarray | None = None
        self._source: np.ndarray | None = None  # the keyframe's input frame, float32
        self._coords: np.ndarray | None = None  # 2×H×W pixels of the keyframe
        self._key: int | None = None

    def state(self) -> dict[str, "torch.Tensor"]:
        """The carry as tensors (a render's resume side-car); empty when nothing is carried."""
        import torch

        if self._coords is None or self._key is None:
            return {}
        return {"key": torch.tensor([self._key], dtype=torch.int64), "source": torch.from_numpy(self._source.copy()),
                "coords": torch.from_numpy(self._coords.copy())}

    def load_state(self, state: Mapping[str, "torch.Tensor"]) -> None:
        """Undo :meth:`state` (an empty state: nothing carried)."""
        self.reset()
        if not state:
            return
        key = int(state["key"][0])
        if key not in self.paintings:
            raise ShapeError(f"keyframe carry: the saved state carries keyframe {key}, which this run does not have")
        self._key, self._painting = key, self.paintings[key]
        self._source = state["source"].numpy().astype(np.float32)
        self._coords = state["coords"].numpy().astype(np.float32)

    def step(self, index: int, image: np.ndarray, flow_bwd: np.ndarray | None, *,
             scene_cut: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        import cv2

        from vidstyle.flow.warping import remap_coordinates

        h, w = image.shape[:2]
        img = _float_rgb(image)
        if index in self.paintings:
            p = self.paintings[index]
            if p.shape[:2] != (h, w):
                raise ShapeError(f"keyframe {index}: painting {p.shape[:2]} but the frame is {h}×{w}")
            self._painting, self._source, self._key = p, img, index
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._coords = np.stack([xs, ys])
            return p.copy(), np.ones((h, w), np.float32)
        if self._coords is None or flow_bwd is None or scene_cut or self._coords.shape[1:] != (h, w):
            self.reset()
            return None
        if flow_bwd.shape != (2, h, w):
            raise ShapeError(f"keyframe carry: flow {flow_bwd.shape} does not match the frame {h}×{w}")
        map_x, map_y = remap_coordinates(np.asarray(flow_bwd, np.float32))
        # a pixel whose source left the frame gets a far-off coordinate, and keeps it: never trusted again
        self._coords = np.stack([cv2.remap(self._coords[c], map_x, map_y, cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_CONSTANT, borderValue=_OUTSIDE) for c in range(2)])
        cx, cy = self._coords
        assert self._painting is not None and self._source is not None
        warped = cv2.remap(self._painting, cx, cy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        seen = cv2.remap(self._source, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(img - seen).mean(axis=2)
        if self.feather > 0:
            diff = cv2.GaussianBlur(diff, (0, 0), self.feather)
        r = np.clip(1.0 - diff / self.tolerance, 0.0, 1.0)
        r[(cx < 0) | (cx > w - 1) | (cy < 0) | (cy > h - 1)] = 0.0
        return np.clip(warped, 0.0, 1.0).astype(np.float32), r.astype(np.float32)


def blend_carry(network: np.ndarray, carried: tuple[np.ndarray, np.ndarray] | None, *, strength: float) -> np.ndarray:
    """``s·r·W + (1 − s·r)·N`` (float32 ``H×W×3``); the network's output alone without a carry or at ``s = 0``."""
    if carried is None or strength <= 0:
        return network
    warped, r = carried
    a = (float(strength) * r)[:, :, None]
    return (a * warped + (1.0 - a) * network).astype(np.float32)


def _float_rgb(image: np.ndarray) -> np.ndarray:
    from vidstyle.frame import to_float32

    return np.clip(to_float32(np.asarray(image)), 0.0, 1.0).astype(np.float32)
