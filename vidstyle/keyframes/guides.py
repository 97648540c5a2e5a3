"""Input guides of the keyframe network: what it sees of a frame besides its colours.

Texler et al. 2020 feed their network guiding channels beside the frame: without them, two pixels of the
same colour get the same paint wherever they are. vidstyle offers (docs/keyframes.md, "Guides"):

* ``position``: the pixel's own coordinates ``(x / (W−1), y / (H−1))``, fixed in the image. It lets the
  network paint the sky differently from a wall of the same colour, but is wrong wherever the camera moves.
* ``tracked``: coordinates carried along the optical flow from the first frame of the clip (or the last
  scene cut): ``p_0(x) = x``, ``p_t(x) = p_{t−1}(x + w_b(x))`` (bilinear on the smooth coordinate field,
  borders replicated), normalised like ``position``. A point of the scene keeps its guide value while it
  moves, so the paint follows it; the flow's errors accumulate over time (drift).

The frame itself (RGB in [0, 1]) always comes first; guides follow in the order of
:data:`vidstyle.keyframes.options.GUIDES`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vidstyle.errors import ShapeError

__all__ = ["CoordinateTracker", "guide_channels", "network_input", "position_guide"]


def guide_channels(guides: Sequence[str]) -> int:
    """Input channels of a network with these guides: 3 (RGB) + 2 per guide."""
    return 3 + 2 * len(guides)


def position_guide(height: int, width: int) -> np.ndarray:
    """``2×H×W`` float32: ``[0]`` = ``x / (W−1)``, ``[1]`` = ``y / (H−1)`` (0 on a one-pixel axis)."""
    xs = np.arange(width, dtype=np.float32) / max(width - 1, 1)
    ys = np.arange(height, dtype=np.float32) / max(height - 1, 1)
    out = np.empty((2, height, width), np.float32)
    out[0] = xs[None, :]
    out[1] = ys[:, None]
    return out


class CoordinateTracker:
    """The ``tracked`` guide of a stream of frames: coordinates carried along the backward flows.

    ``step(flow_bwd, restart)`` advances to the next frame and returns its ``2×H×W`` guide in [0, 1]
    (see the module docstring); ``flow_bwd`` ``None`` (first frame, size change) or ``restart`` (a scene
    cut) start again from the frame's own coordinates. One instance per stream.
    """

    def __init__(self) -> None:
        self._coords: np.ndarray | None = None  # 2×H×W, pixels of the reference frame

    def reset(self) -> None:
        self._coords = None

    def step(self, flow_bwd: np.ndarray | None, *, size: tuple[int, int], restart: bool = False) -> np.ndarray:
        import cv2

        from vidstyle.flow.warping import remap_coordinates

        h, w = size
        if self._coords is None or flow_bwd is None or restart or self._coords.shape[1:] != (h, w):
            grid = position_guide(h, w)
            self._coords = np.stack([grid[0] * max(w - 1, 1), grid[1] * max(h - 1, 1)]).astype(np.float32)
        else:
            if flow_bwd.shape != (2, h, w):
                raise ShapeError(f"tracked guide: flow {flow_bwd.shape} does not match the frame {h}×{w}")
            map_x, map_y = remap_coordinates(np.asarray(flow_bwd, np.float32))
            moved = [cv2.remap(self._coords[c], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for c in range(2)]
            self._coords = np.stack(moved).astype(np.float32)
        out = self._coords.copy()
        out[0] /= max(w - 1, 1)
        out[1] /= max(h - 1, 1)
        return out


def network_input(rgb: torch.Tensor, guides: Sequence[str], *, tracked: np.ndarray | None = None) -> torch.Tensor:
    """The network's input for one frame: ``rgb`` (``3×H×W`` in [0, 1]) and its guides stacked to ``C×H×W``.

    ``tracked`` is the frame's ``tracked`` guide (:class:`CoordinateTracker`), needed when that guide is used.
    """
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ShapeError(f"network_input: expected a 3×H×W frame, got {tuple(rgb.shape)}")
    h, w = rgb.shape[1:]
    if not guides:  # the frame alone, in its own memory layout (a frame from image_to_tensor is channels-last
        return rgb  # already, which the network runs in: no copy either way)
    parts = [rgb]
    for g in guides:
        if g == "position":
            parts.append(torch.from_numpy(position_guide(h, w)).to(rgb))
        elif g == "tracked":
            if tracked is None:
                raise ShapeError("network_input: the tracked guide needs the frame's tracked coordinates")
            parts.append(torch.from_numpy(np.ascontiguousarray(tracked)).to(rgb))
        else:
            raise ShapeError(f"network_input: unknown guide {g!r}")
    return torch.cat(parts, 0)
