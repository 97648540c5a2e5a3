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
  and 0 where the source left the frame (an inside-the-frame mask is carried beside the coordinates).
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

__all__ = ["FEATHER", "TOLERANCE", "TRUST", "BackwardCarry", "KeyframeCarry", "blend_carry", "choose_source"]

#: colour difference (mean over RGB in 0..1) at which the carried paint is no longer trusted at all
TOLERANCE = 0.08
#: Gaussian σ (pixels) smoothing the colour difference: one noisy pixel does not switch the paint
FEATHER = 2.0
#: reliability above which a carried painting is kept whole (chosen on the held-out protocol, docs/keyframes.md)
TRUST = 0.1
#: which carried painting a pixel takes when both are trusted: "reliable" (the higher r) or "behind" (the
#: keyframe behind while it is trusted); "behind" measured no steadier and tied the warp on one clip (docs)
RULE = "reliable"


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
        self._inside: np.ndarray | None = None  # H×W: 1 where the source is inside the keyframe

    def state(self) -> dict[str, "torch.Tensor"]:
        """The carry as tensors (a render's resume side-car); empty when nothing is carried."""
        import torch

        if self._coords is None or self._key is None:
            return {}
        assert self._source is not None and self._inside is not None
        return {"key": torch.tensor([self._key], dtype=torch.int64), "source": torch.from_numpy(self._source.copy()),
                "coords": torch.from_numpy(self._coords.copy()), "inside": torch.from_numpy(self._inside.copy())}

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
        self._inside = state["inside"].numpy().astype(np.float32)

    def step(self, index: int, image: np.ndarray, flow_bwd: np.ndarray | None, *,
             scene_cut: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        h, w = image.shape[:2]
        img = _float_rgb(image)
        if index in self.paintings:
            p = self.paintings[index]
            if p.shape[:2] != (h, w):
                raise ShapeError(f"keyframe {index}: painting {p.shape[:2]} but the frame is {h}×{w}")
            self._painting, self._source, self._key = p, img, index
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._coords = np.stack([xs, ys])
            self._inside = np.ones((h, w), np.float32)
            return p.copy(), np.ones((h, w), np.float32)
        if self._coords is None or flow_bwd is None or scene_cut or self._coords.shape[1:] != (h, w):
            self.reset()
            return None
        if flow_bwd.shape != (2, h, w):
            raise ShapeError(f"keyframe carry: flow {flow_bwd.shape} does not match the frame {h}×{w}")
        # coordinates as the tracked guide (borders replicated: a pixel entering the frame takes its neighbour's
        # source), and beside them where the source is inside the frame: a pixel that left it is never trusted again
        assert self._painting is not None and self._source is not None and self._inside is not None
        self._coords, self._inside, warped, r = _carry_step(self._coords, self._inside, flow_bwd, self._painting,
                                                            self._source, img, self.tolerance, self.feather)
        return warped, r


class BackwardCarry:
    """The *next* keyframe's painting carried back to the frames before it, once that keyframe arrives.

    ``start(painting, image)`` at the keyframe; then ``step(flow_fwd_next, image)`` for each earlier frame,
    newest first, with ``flow_fwd_next`` the forward flow *into* the frame after it (``w_f`` of that frame, in
    this frame's pixels): ``q_t(x) = q_{t+1}(x + w_f(x))``. Returns ``(W, r)`` as :meth:`KeyframeCarry.step`;
    ``flow_fwd_next`` ``None`` (a cut, a size change) ends the chain: ``None`` from there on.
    """

    def __init__(self, *, tolerance: float = TOLERANCE, feather: float = FEATHER) -> None:
        self.tolerance, self.feather = float(tolerance), float(feather)
        self._painting: np.ndarray | None = None
        self._source: np.ndarray | None = None
        self._coords: np.ndarray | None = None
        self._inside: np.ndarray | None = None

    def start(self, painting: np.ndarray, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        self._painting = np.ascontiguousarray(painting, dtype=np.float32)
        self._source = _float_rgb(image)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self._coords = np.stack([xs, ys])
        self._inside = np.ones((h, w), np.float32)

    def step(self, flow_fwd_next: np.ndarray | None, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if self._coords is None or flow_fwd_next is None or flow_fwd_next.shape[1:] != self._coords.shape[1:]:
            self._coords = None
            return None
        assert self._painting is not None and self._source is not None and self._inside is not None
        self._coords, self._inside, warped, r = _carry_step(self._coords, self._inside, flow_fwd_next, self._painting,
                                                            self._source, _float_rgb(image), self.tolerance,
                                                            self.feather)
        return warped, r


def _carry_step(coords: np.ndarray, inside: np.ndarray, flow: np.ndarray, painting: np.ndarray, source: np.ndarray,
                img: np.ndarray, tolerance: float, feather: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One link of a carry chain: coordinates and inside-mask composed with ``flow``, the painting sampled once
    at them, and the reliability ``r`` (module docstring)."""
    import cv2

    from vidstyle.flow.warping import remap_coordinates

    map_x, map_y = remap_coordinates(np.asarray(flow, np.float32))
    coords = np.stack([cv2.remap(coords[c], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                       for c in range(2)])
    inside = cv2.remap(inside, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    cx, cy = coords
    warped = cv2.remap(painting, cx, cy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    seen = cv2.remap(source, cx, cy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the mean over RGB of |I_t − Î_t| with OpenCV: numpy's ``np.abs(a − b).mean(axis=2)`` took 4.2 of the
    # step's 12 ms at 640×360 (the coordinates stay one remap per channel: a two-channel float remap rounds
    # the coordinates to 1/32 px, and the chain would accumulate it)
    diff = cv2.transform(cv2.absdiff(img, seen), _CHANNEL_MEAN)
    if feather > 0:
        diff = cv2.GaussianBlur(diff, (0, 0), feather)
    r = np.clip(np.multiply(diff, np.float32(-1.0 / tolerance)) + np.float32(1.0), 0.0, 1.0)
    r *= np.clip(inside * np.float32(2.0) - np.float32(1.0), 0.0, 1.0)
    np.clip(warped, 0.0, 1.0, out=warped)
    return coords, inside, warped, r


#: ``cv2.transform`` matrix averaging the three colour channels into one
_CHANNEL_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)


def blend_carry(network: np.ndarray, carried: tuple[np.ndarray, np.ndarray] | None, *, strength: float,
                other: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The frame's output (float32 ``H×W×3``) from the network's ``N`` and the carried keyframe(s) ``(W, r)``:
    per pixel the more reliable carried painting ``S`` (the one behind, ``carried``, or the one ahead,
    ``other``), kept whole where its reliability exceeds :data:`TRUST` (a mix would average two strokes into
    a blur), the network where neither does: ``m = s·[max r > TRUST]``, ``out = m·S + (1 − m)·N``. The switch
    is hard on purpose: even a 1 px feather of ``m`` raised the held-out Gram loss from 1.13 to 1.86 (×10⁹,
    cockatoo; docs/keyframes.md). The network alone without a carry or at ``s = 0``."""
    parts = [c for c in (carried, other) if c is not None]
    if not parts or strength <= 0:
        return network
    if strength >= 1 and all(p[0].dtype == np.float32 and p[0].shape == network.shape for p in parts) \
            and network.dtype == np.float32:
        # m is 0 or 1: masked copies with OpenCV, the same values as the selection below at a third of its time
        # (640×360, two carried paintings: 7.8 → 2.7 ms)
        return _select_carry(network, parts)
    if len(parts) == 1:
        chosen, best = parts[0]
        keep = best > TRUST
    else:
        (wa, ra), (wb, rb) = parts
        ahead, keep = choose_source(ra, rb)
        chosen = np.where(ahead[:, :, None], wb, wa)
    if strength >= 1:  # m is 0 or 1: a selection, the same values as the formula without its arithmetic
        return np.where(keep[:, :, None], chosen, network).astype(np.float32, copy=False)
    m = (keep.astype(np.float32) * float(strength))[:, :, None]
    return (m * chosen + (1.0 - m) * network).astype(np.float32)


def choose_source(r_behind: np.ndarray, r_ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, from the reliabilities of the keyframe behind and the keyframe ahead: ``(ahead, keep)``, where
    ``ahead`` takes the painting ahead (:data:`RULE`) and ``keep`` a carried painting at all (the better
    reliability above :data:`TRUST`; elsewhere the network)."""
    ahead = (r_behind <= TRUST) & (r_ahead > TRUST) if RULE == "behind" else r_ahead > r_behind
    return ahead, np.maximum(r_behind, r_ahead) > TRUST


def _select_carry(network: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """:func:`blend_carry` at ``s ≥ 1``: the network's output with the chosen carried painting copied over it
    wherever that painting is trusted."""
    import cv2

    out = np.array(network, dtype=np.float32, order="C", copy=True)
    if len(parts) == 1:
        (wa, ra), = parts
        cv2.copyTo(np.ascontiguousarray(wa), (ra > TRUST).view(np.uint8), out)
        return out
    (wa, ra), (wb, rb) = parts
    ahead, keep = choose_source(ra, rb)
    cv2.copyTo(np.ascontiguousarray(wa), (keep & ~ahead).view(np.uint8), out)
    cv2.copyTo(np.ascontiguousarray(wb), (keep & ahead).view(np.uint8), out)
    return out


def _float_rgb(image: np.ndarray) -> np.ndarray:
    from vidstyle.frame import to_float32

    return np.clip(to_float32(np.asarray(image)), 0.0, 1.0).astype(np.float32)
