"""Resample-once temporal stabilisation (issue 16; docs/architecture.md, "Temporal consistency").

Blending with the warped previous output (:func:`vidstyle.stylize.temporal.stabilize`) resamples every
texel again each frame: the texture's amplitude can be restored, its structure cannot (the network's
motifs become streaks along the motion). :class:`TextureTracker` instead keeps, per pixel, *where its
texture was generated*: a source frame (one of the last ``K`` network outputs, kept in a ring buffer)
and coordinates in that frame. Each frame

1. the coordinate field is composed with the backward flow, ``coords_t(x) = coords_{t−1}(x + w_b(x))``
   (bilinear on the smooth coordinate field; nearest where neighbouring pixels come from different
   sources), and the texture is sampled **once** from its source frame with a sharp kernel (bicubic or
   Lanczos), never from an earlier output;
2. a pixel is regenerated — source ``t``, coordinates ``x`` — where the consistency mask rejects it,
   where the tracked colour disagrees with the fresh output at a coarse scale (``tolerance``), where its
   track has stretched or shrunk by more than ``max_stretch`` in area (zoom), or when it has been
   tracked for its lifetime. The lifetime follows the strength, ``1/(1 − strength)`` frames (the time
   constant of an exponential blend of that strength) up to ``max_age``, jittered per pixel by a
   smooth random field so that patches refresh at different times;
3. a refresh is a crossfade over a few frames from the old track to the new one (both tracked, so the
   crossfade itself does not flicker), spatially feathered where it comes from the mask; the mix's
   local high-frequency energy is set to the weighted energy of its two layers (a variance-preserving
   blend, as in Lagrangian texture advection), so crossfades do not wash the texture out.

One ``H×W×3`` float32 frame at a time (NumPy/OpenCV); :class:`~vidstyle.stylize.temporal.Stabilizer`
with ``method="resample"`` wraps it for tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vidstyle.errors import ShapeError

__all__ = ["TextureTracker", "ResampleSettings", "KERNELS", "DEFAULT_MAX_AGE", "DEFAULT_TOLERANCE",
           "DEFAULT_MAX_STRETCH", "DEFAULT_KERNEL", "lifetime"]

#: sampling kernels of the texture (``cv2.remap``)
KERNELS = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
DEFAULT_KERNEL = "bicubic"
#: longest life of a track in frames (the ring buffer holds ``max_age + MAX_FADE + 2`` outputs)
DEFAULT_MAX_AGE = 12
#: RMS colour difference (0..1) between the tracked and the fresh output, low-passed at ``_ERR_SIGMA``,
#: above which a pixel starts regenerating (fully at twice this value)
DEFAULT_TOLERANCE = 0.08
#: area ratio of a track's source footprint beyond which it is refreshed (zoom)
DEFAULT_MAX_STRETCH = 1.4
#: longest crossfade of a refresh, frames
MAX_FADE = 4
_PAD = 4  # replicate border of each ring slot: Lanczos reads 3 px before and 4 after
_ERR_SIGMA = 2.0
_VAR_SIGMA = 1.5
_FEATHER = 1.5
_MAX_ATLAS_SIDE = 32000  # cv2.remap's fixed-point maps


def lifetime(strength: float, max_age: int) -> float:
    """Frames a texel is tracked before it is refreshed: ``1/(1 − strength)``, at most ``max_age``."""
    if strength >= 1.0:
        return float(max_age)
    return float(min(max_age, 1.0 / max(1.0 - strength, 1e-6)))


@dataclass(frozen=True, slots=True)
class ResampleSettings:
    """The tracker's parameters (checked by :class:`~vidstyle.stylize.temporal.Stabilizer`)."""

    max_age: int = DEFAULT_MAX_AGE
    tolerance: float = DEFAULT_TOLERANCE
    max_stretch: float = DEFAULT_MAX_STRETCH
    kernel: str = DEFAULT_KERNEL
    seed: int = 0


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def _luma(x: np.ndarray) -> np.ndarray:
    return cv2.transform(x, np.array([[0.299, 0.587, 0.114]], np.float32))


class TextureTracker:
    """Per-pixel texture tracks over a ring buffer of network outputs (see the module docstring).

    ``step(new, flow_bwd=..., consistency=..., strength=..., scene_cut=...)`` takes one ``H×W×3``
    float32 output in [0, 1], the ``2×H×W`` backward flow and the ``H×W`` mask in [0, 1] (or ``None``
    for the first frame) and returns the stabilised frame. Scene cuts, size changes, a missing flow and
    strength 0 restart from ``new``.
    """

    def __init__(self, settings: ResampleSettings = ResampleSettings()) -> None:
        self.settings = settings
        self.slots = settings.max_age + MAX_FADE + 2
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.shape: tuple[int, int] | None = None
        self.atlas: np.ndarray | None = None
        self.coords: np.ndarray | None = None  # H×W×4: x_a, y_a, x_b, y_b (source-frame pixels)
        self.meta: np.ndarray | None = None  # H×W×4: src_a, src_b, a (progress of a→b), unused

    # -- state ---------------------------------------------------------------------------------------
    def _layout(self, h: int, w: int) -> None:
        ch, cw = h + 2 * _PAD, w + 2 * _PAD
        rows = max(1, min(self.slots, _MAX_ATLAS_SIDE // ch))
        cols = -(-self.slots // rows)
        if cols * cw > _MAX_ATLAS_SIDE:
            raise ShapeError(f"resample stabiliser: frame {w}×{h} too large for its ring buffer")
        self.rows, self.cell = rows, (ch, cw)
        self.atlas = np.empty((rows * ch, cols * cw, 3), np.float32)
        rng = np.random.default_rng(self.settings.seed)
        coarse = rng.random((max(2, -(-h // 24)), max(2, -(-w // 24)))).astype(np.float32)
        field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).ravel()
        phase = np.empty(h * w, np.float32)
        phase[np.argsort(field, kind="stable")] = np.linspace(0.0, 1.0, h * w, endpoint=False, dtype=np.float32)
        self.phase = phase.reshape(h, w)  # smooth, uniform in [0, 1): staggers the refreshes
        self.grid_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
        self.grid_y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))

    def _origin(self, src: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        slot = np.mod(src, self.slots)
        row = np.mod(slot, self.rows)
        col = np.floor_divide(slot, self.rows)
        return col * self.cell[1] + _PAD, row * self.cell[0] + _PAD

    def _store(self, new: np.ndarray) -> None:
        ox, oy = self._origin(self.t)
        x0, y0 = int(ox) - _PAD, int(oy) - _PAD
        ch, cw = self.cell
        self.atlas[y0:y0 + ch, x0:x0 + cw] = cv2.copyMakeBorder(new, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_REPLICATE)

    def _restart(self, new: np.ndarray) -> np.ndarray:
        h, w = new.shape[:2]
        if self.shape != (h, w):
            self._layout(h, w)
            self.shape = (h, w)
        self.t = 0
        self._store(new)
        self.coords = cv2.merge([self.grid_x, self.grid_y, self.grid_x, self.grid_y])
        self.meta = np.zeros((h, w, 4), np.float32)
        return new

    def _sample(self, x: np.ndarray, y: np.ndarray, src: np.ndarray) -> np.ndarray:
        h, w = self.shape
        ox, oy = self._origin(src)
        mx = np.clip(x, 0.0, w - 1.0) + ox
        my = np.clip(y, 0.0, h - 1.0) + oy
        out = cv2.remap(self.atlas, mx.astype(np.float32), my.astype(np.float32), KERNELS[self.settings.kernel],
                        borderMode=cv2.BORDER_REPLICATE)
        return out

    # -- one frame -------------------------------------------------------------------------------------
    def step(self, new: np.ndarray, *, flow_bwd: np.ndarray | None, consistency: np.ndarray | None,
             strength: float, scene_cut: bool = False) -> np.ndarray:
        if new.ndim != 3 or new.shape[2] != 3 or new.dtype != np.float32:
            raise ShapeError(f"resample stabiliser: expected an H×W×3 float32 frame, got {new.shape} {new.dtype}")
        h, w = new.shape[:2]
        if (strength <= 0.0 or flow_bwd is None or consistency is None or scene_cut or self.shape != (h, w)
                or self.coords is None):
            return self._restart(new)
        if flow_bwd.shape != (2, h, w) or consistency.shape != (h, w):
            raise ShapeError(f"resample stabiliser: flow {flow_bwd.shape} / mask {consistency.shape} do not match {w}×{h}")
        s = self.settings
        life = lifetime(strength, s.max_age)
        fade = max(1, min(MAX_FADE, int(round(life / 2))))
        # 1. compose the tracks with the backward flow
        map_x = np.add(flow_bwd[0], self.grid_x, dtype=np.float32)
        map_y = np.add(flow_bwd[1], self.grid_y, dtype=np.float32)
        coords = cv2.remap(self.coords, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        meta = cv2.remap(self.meta, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        src_lin = cv2.remap(np.ascontiguousarray(self.meta[..., :2]), map_x, map_y, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        mixed = (np.abs(src_lin - meta[..., :2]) > 1e-3).any(axis=2)
        if mixed.any():
            # neighbours from different sources: their coordinates do not interpolate. Take the nearest
            # pixel's track and move it by the sub-pixel remainder (the track's Jacobian taken as 1)
            iy, ix = np.nonzero(mixed)
            px, py = map_x[iy, ix], map_y[iy, ix]
            jx = np.clip(np.rint(px), 0, w - 1).astype(np.intp)
            jy = np.clip(np.rint(py), 0, h - 1).astype(np.intp)
            near = self.coords[jy, jx]
            near[:, 0::2] += (np.clip(px, 0, w - 1) - jx)[:, None]
            near[:, 1::2] += (np.clip(py, 0, h - 1) - jy)[:, None]
            coords[iy, ix] = near
            meta[iy, ix] = self.meta[jy, jx]
        self.t += 1
        t = self.t
        self._store(new)
        src_a, src_b, a = meta[..., 0], meta[..., 1], meta[..., 2]
        # 2. advance the crossfades; finished ones promote b to a
        a = np.where(a > 0, a + 1.0 / fade, 0.0).astype(np.float32)
        done = a >= 1.0
        if done.any():
            src_a = np.where(done, src_b, src_a)
            coords[..., 0:2][done] = coords[..., 2:4][done]
            a[done] = 0.0
        # the ring slot about to be reused must not be read
        stale = (t - src_a >= self.slots - 1) | ((a > 0) & (t - src_b >= self.slots - 1))
        sample_a = self._sample(coords[..., 0], coords[..., 1], src_a)
        fading = a > 0
        sample_b = self._sample(coords[..., 2], coords[..., 3], src_b) if fading.any() else sample_a
        mix = sample_a + a[..., None] * (sample_b - sample_a)
        # 3. where to regenerate: mask, colour disagreement, stretch, age
        reject = 1.0 - _blur(np.clip(consistency.astype(np.float32, copy=False), 0.0, 1.0), _FEATHER)
        diff = _blur(mix - new, _ERR_SIGMA)
        err = np.sqrt(np.square(diff).mean(axis=2))
        reject = np.maximum(reject, np.clip(err / s.tolerance - 1.0, 0.0, 1.0))
        reject[stale] = 1.0
        reject[reject < 0.02] = 0.0
        age = t - src_a
        trigger = (age >= np.clip(life * (0.5 + self.phase), 1.0, s.max_age)) | self._stretched(coords, src_a)
        # a fading pixel restarts only when rejected strongly; a steady one starts fading where rejected
        restart = (reject >= 0.5) | ((a == 0) & (reject > 0))
        begin = (a == 0) & trigger & ~restart
        hard = reject >= 0.999
        if restart.any() or begin.any():
            promote = restart & (a > 0)  # drop the old layer of an interrupted crossfade
            sample_a = np.where(promote[..., None], sample_b, sample_a)
            src_a = np.where(promote, src_b, src_a)
            coords[..., 0:2][promote] = coords[..., 2:4][promote]
            start = restart | begin
            a = np.where(restart, reject, np.where(begin, 1.0 / fade, a)).astype(np.float32)
            sample_b = np.where(start[..., None], new, sample_b)
            src_b = np.where(start, np.float32(t), src_b)
            coords[..., 2][start] = self.grid_x[start]
            coords[..., 3][start] = self.grid_y[start]
            # a full rejection regenerates at once
            sample_a = np.where(hard[..., None], new, sample_a)
            src_a = np.where(hard, np.float32(t), src_a)
            coords[..., 0][hard] = self.grid_x[hard]
            coords[..., 1][hard] = self.grid_y[hard]
            a[hard] = 0.0
            if a.max() >= 1.0:
                a = np.minimum(a, 1.0 - 1e-3)
        fading = a > 0
        src_b = np.where(fading, src_b, src_a)
        coords[..., 2:4][~fading] = coords[..., 0:2][~fading]
        out = _variance_preserving_mix(sample_a, sample_b, a) if fading.any() else sample_a
        self.coords = coords
        self.meta = cv2.merge([src_a.astype(np.float32), src_b.astype(np.float32), a, np.zeros_like(a)])
        return np.clip(out, 0.0, 1.0, out=out)

    def _stretched(self, coords: np.ndarray, src: np.ndarray) -> np.ndarray:
        """Where the track's footprint has grown or shrunk beyond ``max_stretch`` in area."""
        x, y = coords[..., 0], coords[..., 1]
        dxx = np.diff(x, axis=1, append=x[:, -1:] + 1.0)
        dyx = np.diff(y, axis=1, append=y[:, -1:])
        dxy = np.diff(x, axis=0, append=x[-1:, :])
        dyy = np.diff(y, axis=0, append=y[-1:, :] + 1.0)
        det = _blur(dxx * dyy - dxy * dyx, 1.0)
        same = (np.diff(src, axis=1, append=src[:, -1:]) == 0) & (np.diff(src, axis=0, append=src[-1:, :]) == 0)
        bound = math.log(self.settings.max_stretch)
        return same & (np.abs(np.log(np.maximum(det, 1e-3))) > bound)


def _variance_preserving_mix(sample_a: np.ndarray, sample_b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``(1 − a)·A + a·B`` with the local high-frequency energy (luminance) of the mix set to the
    weighted energy of ``A`` and ``B``: averaging two textures would otherwise halve their contrast."""
    a3 = a[..., None]
    mix = sample_a + a3 * (sample_b - sample_a)
    low = _blur(mix, _VAR_SIGMA)
    hf = mix - low
    ya, yb = _luma(sample_a), _luma(sample_b)
    va = _blur(np.square(ya - _blur(ya, _VAR_SIGMA)), 2 * _VAR_SIGMA)
    vb = _blur(np.square(yb - _blur(yb, _VAR_SIGMA)), 2 * _VAR_SIGMA)
    ym = _luma(mix)
    vm = _blur(np.square(ym - _blur(ym, _VAR_SIGMA)), 2 * _VAR_SIGMA)
    gain = np.sqrt(((1.0 - a) * va + a * vb + 1e-8) / (vm + 1e-8))
    gain = np.clip(gain, 1.0, 1.5)
    gain[a <= 0] = 1.0
    return low + gain[..., None] * hf
