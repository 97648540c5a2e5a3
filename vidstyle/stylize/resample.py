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
2. a pixel is regenerated — source ``t``, coordinates ``x`` — where the consistency mask rejects it
   (at once), and by a crossfade where the track is wrong or worn: with a *guide* (the input frame), where
   the input's low-passed luminance where the track started differs from the input now by more than
   ``drift`` (the composed flows lost the content; the output's own disagreement is the flicker to remove,
   so it is not used then); without a guide, where the tracked colour disagrees with the fresh output at
   a coarse scale (``tolerance``, a restart); where the track field's Jacobian, averaged over a 9×9
   patch, deviates from the identity by more than ``tear`` (fast non-rigid motion tears and folds the
   texture); where its track has stretched or shrunk by more than ``max_stretch`` in area (zoom); or when
   it has been tracked for its lifetime. The lifetime follows the strength, ``1/(1 − strength)`` frames
   (the time constant of an exponential blend of that strength) up to ``max_age``, jittered per pixel by
   a smooth random field so that patches refresh at different times;
3. a refresh is a crossfade over ``crossfade`` × the lifetime (at most ``FADE_WINDOW`` of it) from the old
   track to the new one (both tracked, so the crossfade itself does not flicker), spatially feathered where
   it comes from the mask; the mix's local high-frequency energy is set to the weighted energy of its two
   layers (a variance-preserving blend, as in Lagrangian texture advection), so crossfades do not wash the
   texture out.
4. source labels stay in regions: a pixel whose sources differ from the 3×3 median of its neighbours'
   adopts a neighbour's track (moved by their offset), after the composition and after the refreshes, and
   the refresh triggers are median-filtered (``clean``; nearest-neighbour labels on non-rigid motion
   otherwise break into isolated texels and staircase edges).

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
           "DEFAULT_MAX_STRETCH", "DEFAULT_KERNEL", "DEFAULT_DRIFT", "DEFAULT_TEAR", "DEFAULT_CROSSFADE", "lifetime"]

#: sampling kernels of the texture (``cv2.remap``)
KERNELS = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
DEFAULT_KERNEL = "bicubic"
#: longest life of a track in frames (the ring buffer holds ``max_age`` + the longest crossfade + 2 outputs)
DEFAULT_MAX_AGE = 12
#: RMS colour difference (0..1) between the tracked and the fresh output, low-passed at ``_ERR_SIGMA``,
#: above which a pixel starts regenerating (fully at twice this value)
DEFAULT_TOLERANCE = 0.08
#: area ratio of a track's source footprint beyond which it is refreshed (zoom)
DEFAULT_MAX_STRETCH = 1.4
#: with a guide (the input frame): low-passed luminance difference (0..1) between the input where a track
#: started and the input now, above which the track is refreshed by a crossfade
DEFAULT_DRIFT = 0.04
#: mean deviation of the track field's Jacobian from the identity over a 9×9 patch (|∂p/∂x − I|, four
#: terms) above which the patch is refreshed by a crossfade: the composed flows tore or folded the texture
DEFAULT_TEAR = 0.3
#: a refresh's crossfade lasts this fraction of the track's lifetime, lifetimes over ``FADE_WINDOW`` frames counting
#: as ``FADE_WINDOW`` (rounded, at least 1 frame): 0.5 is half the lifetime, at most 4 frames. Longer crossfades flicker
#: less and cost a little style: the arbitrary back end's file defaults take 0.85 (7 frames at strength 0.9;
#: vidstyle.options.ARBITRARY_TEMPORAL; BENCHMARKS.md, "Arbitrary style")
DEFAULT_CROSSFADE = 0.5
FADE_WINDOW = 8
_PAD = 4  # replicate border of each ring slot: Lanczos reads 3 px before and 4 after
_ERR_SIGMA = 2.0
_VAR_SIGMA = 1.5
_FEATHER = 2.0
_MIN_REJECT = 0.25  # weaker rejections leave the track alone (scattered restarts fragment the texture)
_MAX_ATLAS_SIDE = 32000  # cv2.remap's fixed-point maps


def fade_frames(crossfade: float, life: float) -> int:
    """Frames of a refresh's crossfade: ``crossfade`` × the lifetime, lifetimes over ``FADE_WINDOW`` counting as
    ``FADE_WINDOW`` (rounded, at least 1)."""
    return max(1, int(round(crossfade * min(life, FADE_WINDOW))))


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
    drift: float = DEFAULT_DRIFT
    tear: float = DEFAULT_TEAR
    #: keep the source labels in regions (3×3 median of the labels and of the refresh triggers)
    clean: bool = True
    #: a refresh's crossfade as a fraction of the lifetime (``DEFAULT_CROSSFADE``)
    crossfade: float = DEFAULT_CROSSFADE


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


class TextureTracker:
    """Per-pixel texture tracks over a ring buffer of network outputs (see the module docstring).

    ``step(new, flow_bwd=..., consistency=..., strength=..., scene_cut=..., guide=...)`` takes one
    ``H×W×3`` float32 output in [0, 1], the ``2×H×W`` backward flow and the ``H×W`` mask in [0, 1] (or
    ``None`` for the first frame), optionally the input frame (``H×W×3`` or ``H×W`` float32 in 0..1) as the
    guide of the drift check, and returns the stabilised frame. Scene cuts, size changes, a missing flow and
    strength 0 restart from ``new``.
    """

    def __init__(self, settings: ResampleSettings = ResampleSettings()) -> None:
        self.settings = settings
        self.slots = settings.max_age + fade_frames(settings.crossfade, FADE_WINDOW) + 2
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.shape: tuple[int, int] | None = None
        self.atlas: np.ndarray | None = None
        #: the two tracks' sampling positions, H×W×2 (x, y) in atlas pixels (the source slot's origin added)
        self.track_a: np.ndarray | None = None
        self.track_b: np.ndarray | None = None
        #: H×W×4: source frame of a and b, progress of the crossfade a→b (0 = none), and a key that differs
        #: between neighbours with different sources
        self.meta: np.ndarray | None = None
        #: H×W×2: the guide's (input's) low-passed luminance where tracks a and b started
        self.lum: np.ndarray | None = None

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
        self.grid = cv2.merge([np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w)),
                               np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))])

    def _origin(self, src: int) -> tuple[int, int]:
        slot = src % self.slots
        return (slot // self.rows) * self.cell[1] + _PAD, (slot % self.rows) * self.cell[0] + _PAD

    def _store(self, new: np.ndarray) -> np.ndarray:
        """Put ``new`` in frame ``t``'s ring slot; returns its identity track (atlas positions)."""
        ox, oy = self._origin(self.t)
        ch, cw = self.cell
        self.atlas[oy - _PAD:oy - _PAD + ch, ox - _PAD:ox - _PAD + cw] = cv2.copyMakeBorder(
            new, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_REPLICATE)
        return self.grid + np.array([ox, oy], np.float32)

    def _guide_luma(self, guide: np.ndarray | None) -> np.ndarray | None:
        if guide is None:
            return None
        g = cv2.cvtColor(np.asarray(guide, np.float32), cv2.COLOR_RGB2GRAY) if guide.ndim == 3 else guide
        return _blur(g.astype(np.float32, copy=False), _ERR_SIGMA)

    def _restart(self, new: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        h, w = new.shape[:2]
        if self.shape != (h, w):
            self._layout(h, w)
            self.shape = (h, w)
        self.t = 0
        self.track_a = self._store(new)
        self.track_b = self.track_a.copy()
        self.meta = np.zeros((h, w, 4), np.float32)
        self.lum = None if g is None else cv2.merge([g, g])
        return new

    def _sample(self, track: np.ndarray) -> np.ndarray:
        return cv2.remap(self.atlas, track, None, KERNELS[self.settings.kernel], borderMode=cv2.BORDER_REPLICATE)

    def _sample_points(self, points: np.ndarray) -> np.ndarray:
        """Samples at N×2 atlas positions (remapped as rows of 1024: cv2.remap's sides stay < 2¹⁵)."""
        n = points.shape[0]
        rows = -(-n // 1024)
        grid = np.zeros((rows * 1024, 2), np.float32)
        grid[:n] = points
        return self._sample(grid.reshape(rows, 1024, 2)).reshape(-1, 3)[:n]

    # -- one frame -------------------------------------------------------------------------------------
    def step(self, new: np.ndarray, *, flow_bwd: np.ndarray | None, consistency: np.ndarray | None,
             strength: float, scene_cut: bool = False, guide: np.ndarray | None = None) -> np.ndarray:
        if new.ndim != 3 or new.shape[2] != 3 or new.dtype != np.float32:
            raise ShapeError(f"resample stabiliser: expected an H×W×3 float32 frame, got {new.shape} {new.dtype}")
        h, w = new.shape[:2]
        g = self._guide_luma(guide)
        if (strength <= 0.0 or flow_bwd is None or consistency is None or scene_cut or self.shape != (h, w)
                or self.track_a is None):
            return self._restart(new, g)
        if flow_bwd.shape != (2, h, w) or consistency.shape != (h, w):
            raise ShapeError(f"resample stabiliser: flow {flow_bwd.shape} / mask {consistency.shape} do not match {w}×{h}")
        s = self.settings
        life = lifetime(strength, s.max_age)
        fade = fade_frames(s.crossfade, life)
        # 1. compose the tracks with the backward flow: coords_t(x) = coords_{t−1}(x + w_b(x))
        maps = cv2.merge([flow_bwd[0], flow_bwd[1]])
        maps += self.grid
        lin, near, rep = cv2.INTER_LINEAR, cv2.INTER_NEAREST, cv2.BORDER_REPLICATE
        track_a = cv2.remap(self.track_a, maps, None, lin, borderMode=rep)
        track_b = cv2.remap(self.track_b, maps, None, lin, borderMode=rep)
        meta = cv2.remap(self.meta, maps, None, near, borderMode=rep)
        lum = None if (g is None or self.lum is None) else cv2.remap(self.lum, maps, None, lin, borderMode=rep)
        # where neighbours come from different sources their coordinates do not interpolate: there, take
        # the nearest pixel's track moved by the sub-pixel remainder (its Jacobian taken as 1). Detected as
        # a disagreement of the two by more than half a pixel (a smooth track field agrees to well below)
        frac = maps - cv2.remap(self.grid, maps, None, near, borderMode=rep)
        for track, old in ((track_a, self.track_a), (track_b, self.track_b)):
            nearest = cv2.remap(old, maps, None, near, borderMode=rep)
            nearest += frac
            jump = np.flatnonzero(cv2.transform(np.abs(track - nearest), np.ones((1, 2), np.float32)) > 0.5)
            _put(track, nearest, jump)
        if self.settings.clean:
            _clean_labels(track_a, track_b, meta, lum)
        self.t += 1
        t = self.t
        fresh = self._store(new)
        src_a, src_b, a = meta[..., 0], meta[..., 1], np.ascontiguousarray(meta[..., 2])
        flat_meta = meta.reshape(-1, 4)
        # 2. advance the crossfades; finished ones promote b to a
        fading = a > 0
        a += fading * np.float32(1.0 / fade)
        done = np.flatnonzero(a >= 1.0)
        if done.size:
            _put(track_a, track_b, done)
            _put(meta, meta, done, (0, 1))
            if lum is not None:
                _put(lum, lum, done, (0, 1))
            a.reshape(-1)[done] = 0.0
        sample_a = self._sample(track_a)
        fading = a > 0
        any_fading = bool(fading.any())
        if any_fading:  # the incoming layer only where a crossfade runs
            idx = np.flatnonzero(fading)
            sample_b = sample_a.copy()
            sample_b.reshape(-1, 3)[idx] = self._sample_points(track_b.reshape(-1, 2)[idx])
        else:
            sample_b = sample_a
        mix = sample_a + a[..., None] * (sample_b - sample_a) if any_fading else sample_a
        # 3. where to regenerate: mask, colour disagreement (at half size), stretch, age
        # the mask rejects regions, not single pixels: an isolated regenerated texel would be a speckle
        # of another texture for the whole life of its track (blurred rejection below 0.3 is ignored)
        reject = 1.0 - _blur(np.clip(consistency.astype(np.float32, copy=False), 0.0, 1.0), _FEATHER)
        reject = np.clip((reject - np.float32(0.3)) * np.float32(1.0 / 0.4), 0.0, 1.0)
        if lum is None:  # no guide: the output's colour disagreement (at half size) restarts the track
            hw2 = (max(1, w // 2), max(1, h // 2))
            diff = _blur(cv2.resize(mix - new, hw2, interpolation=cv2.INTER_AREA), _ERR_SIGMA / 2)
            err = cv2.resize(np.sqrt(cv2.transform(np.square(diff), np.full((1, 3), 1.0 / 3.0, np.float32))),
                             (w, h), interpolation=cv2.INTER_LINEAR)
            np.maximum(reject, np.clip(err * np.float32(1.0 / s.tolerance) - 1.0, 0.0, 1.0), out=reject)
        age = np.float32(t) - src_a
        stale = (age >= self.slots - 2) | (fading & (t - src_b >= self.slots - 2))
        # tracks from outside the previous frame cannot be followed (as the mask's out-of-frame rule)
        mx, my = maps[..., 0], maps[..., 1]
        stale |= (mx < 0.0) | (mx > w - 1.0) | (my < 0.0) | (my > h - 1.0)
        np.maximum(reject, stale.view(np.uint8), out=reject)
        reject *= reject >= _MIN_REJECT
        limit = np.clip(self.phase * np.float32(life) + np.float32(0.5 * life), 1.0, s.max_age)
        trigger = (age >= limit) | self._stretched(track_a, meta[..., 3])
        if lum is not None:  # the input moved away from where the track started: the flow was wrong
            trigger |= np.abs(lum[..., 0] - g) > np.float32(s.drift)
        if s.tear > 0:  # the composed flows tore or folded the texture in this patch
            trigger |= self._torn(track_a, meta[..., 3]) > np.float32(s.tear)
        if s.clean and h >= 3 and w >= 3:  # refreshes begin in regions: a per-pixel threshold of a noisy
            # field (drift, tear) would start isolated texels of the new frame's texture
            trigger = cv2.medianBlur(trigger.view(np.uint8), 3).view(bool)
        # a steady pixel restarts where rejected; a fading one, with crossfades of up to half the lifetime, only
        # where rejected strongly (dropping its older layer is a jump). With longer ones most pixels are fading at
        # any time, and letting them finish dragged a moving block's texture over the background it uncovered
        # (tests/stylize/test_resample.py: Gram 0.04 -> 0.13), so there any rejection restarts
        restart = (reject > 0) if s.crossfade > 0.5 else ((reject >= 0.5) | (~fading & (reject > 0)))
        begin = ~fading & trigger & ~restart
        start = restart | begin
        if start.any():
            promote = np.flatnonzero(restart & fading)  # drop the old layer of an interrupted crossfade
            if promote.size:
                _put(sample_a, sample_b, promote)
                _put(meta, meta, promote, (0, 1))
                _put(track_a, track_b, promote)
                if lum is not None:
                    _put(lum, lum, promote, (0, 1))
            flat_a = a.reshape(-1)
            begin_i, restart_i = np.flatnonzero(begin), np.flatnonzero(restart)
            flat_a[begin_i] = np.float32(1.0 / fade)
            flat_a[restart_i] = reject.reshape(-1)[restart_i]
            if not any_fading:
                sample_b = sample_a.copy()
            start_i = np.flatnonzero(start)
            np.copyto(sample_b, new, where=start[..., None])
            flat_meta[start_i, 1] = t
            np.copyto(track_b, fresh, where=start[..., None])
            if lum is not None:
                lum.reshape(-1, 2)[start_i, 1] = g.reshape(-1)[start_i]
            hard = np.flatnonzero(reject >= 0.999)  # a full rejection regenerates at once
            _put(sample_a, new, hard)
            flat_meta[hard, 0] = t
            _put(track_a, fresh, hard)
            if lum is not None:
                lum.reshape(-1, 2)[hard, 0] = g.reshape(-1)[hard]
            flat_a[hard] = 0.0
            np.minimum(a, np.float32(1.0 - 1e-3), out=a)
        fading = a > 0
        keep = np.flatnonzero(fading)
        # the incoming layer where a crossfade runs, the current one elsewhere (whole-image selections: the
        # crossfading pixels are half to most of a frame)
        track_b = np.where(fading[..., None], track_b, track_a)
        meta[..., 1] = np.where(fading, meta[..., 1], meta[..., 0])
        out = _variance_preserving_mix(sample_a, sample_b, a, keep) if keep.size else sample_a
        meta[..., 2] = a
        # exact while frames since the restart < 2¹⁸; only needs to differ between neighbouring tracks
        meta[..., 3] = src_a * np.float32(64.0) + (meta[..., 1] - src_a)
        if lum is not None:
            lum[..., 1] = np.where(fading, lum[..., 1], lum[..., 0])
        elif g is not None:
            lum = cv2.merge([g, g])
        if s.clean:  # the refreshes just begun leave a few texels apart from their region's sources
            _clean_labels(track_a, track_b, meta, lum)
        self.track_a, self.track_b, self.meta, self.lum = track_a, track_b, meta, lum
        return np.clip(out, 0.0, 1.0, out=out)

    def _torn(self, track: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Mean deviation of the track field's local Jacobian from the identity over 9×9 patches
        (neighbours from one source only): where the composed flows tore or folded the texture."""
        h, w = track.shape[:2]
        dev = np.zeros((h, w), np.float32)
        dx = track[:, 1:] - track[:, :-1]
        same = (key[:, 1:] == key[:, :-1])
        ex = (np.abs(dx[..., 0] - 1.0) + np.abs(dx[..., 1])) * same
        dy = track[1:] - track[:-1]
        same_y = (key[1:] == key[:-1])
        ey = (np.abs(dy[..., 1] - 1.0) + np.abs(dy[..., 0])) * same_y
        dev[:, :-1] += ex
        dev[:-1] += ey
        return cv2.boxFilter(dev, -1, (9, 9), borderType=cv2.BORDER_REPLICATE)

    def _stretched(self, track: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Where the track's footprint has grown or shrunk beyond ``max_stretch`` in area (at half size)."""
        h, w = track.shape[:2]
        if h < 4 or w < 4:
            return np.zeros((h, w), bool)
        x, y, k = track[::2, ::2, 0], track[::2, ::2, 1], key[::2, ::2]
        dxx, dyx, dkx = x[:-1, 1:] - x[:-1, :-1], y[:-1, 1:] - y[:-1, :-1], k[:-1, 1:] - k[:-1, :-1]
        dxy, dyy, dky = x[1:, :-1] - x[:-1, :-1], y[1:, :-1] - y[:-1, :-1], k[1:, :-1] - k[:-1, :-1]
        det = (dxx * dyy - dxy * dyx) * 0.25
        bound = self.settings.max_stretch
        bad = ((det > bound) | (det < 1.0 / bound)) & (dkx == 0) & (dky == 0)
        return cv2.resize(bad.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)


#: neighbour offsets (dy, dx) tried in this order when a pixel adopts a neighbour's track
_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _clean_labels(track_a: np.ndarray, track_b: np.ndarray, meta: np.ndarray, lum: np.ndarray | None) -> None:
    """Where a pixel's track state (its sources, ``meta[..., 3]``) differs from the 3×3 median of its
    neighbours', it adopts the state of a neighbour that has the median's: that neighbour's positions moved by
    the offset between them (the track field is smooth within one source), its sources, crossfade and guide
    luminance. Composing the tracks with nearest-neighbour source labels fragments the label regions on
    non-rigid motion into isolated pixels and staircase edges (texels of another frame's texture, which
    flicker as they move); a median each frame removes the isolated ones and smooths the edges, as a
    curvature flow does."""
    h, w = meta.shape[:2]
    if h < 3 or w < 3:
        return
    key = np.ascontiguousarray(meta[..., 3])
    med = cv2.medianBlur(key, 3)
    idx = np.flatnonzero(med != key)
    if not idx.size:
        return
    flat_key, want = key.reshape(-1), med.reshape(-1)[idx]
    ys, xs = np.divmod(idx, w)
    src = np.full(idx.size, -1, np.int64)
    off = np.zeros((idx.size, 2), np.float32)
    for dy, dx in _NEIGHBOURS:
        open_ = src < 0
        y2, x2 = ys + dy, xs + dx
        inside = open_ & (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
        nb = np.where(inside, y2 * w + x2, 0)
        hit = inside & (flat_key[nb] == want)
        src[hit] = nb[hit]
        off[hit] = (dx, dy)
    ok = src >= 0
    idx, src, off = idx[ok], src[ok], off[ok]
    for track in (track_a, track_b):
        flat = track.reshape(-1, 2)
        flat[idx] = flat[src] - off
    flat_meta = meta.reshape(-1, meta.shape[-1])
    flat_meta[idx] = flat_meta[src]
    if lum is not None:
        flat_lum = lum.reshape(-1, lum.shape[-1])
        flat_lum[idx] = flat_lum[src]


def _put(dst: np.ndarray, src: np.ndarray, index: np.ndarray, channels: tuple[int, int] | None = None) -> None:
    """``dst[p] = src[p]`` for the flat pixel indices ``index`` (both H×W×C, C-contiguous); with
    ``channels=(i, j)``: ``dst[p, i] = src[p, j]``."""
    if not index.size:
        return
    d, s_ = dst.reshape(-1, dst.shape[-1]), src.reshape(-1, src.shape[-1])
    if channels is None:
        d[index] = s_[index]
    else:
        d[index, channels[0]] = s_[index, channels[1]]


def _variance_preserving_mix(sample_a: np.ndarray, sample_b: np.ndarray, a: np.ndarray,
                             index: np.ndarray) -> np.ndarray:
    """``(1 − a)·A + a·B`` at the flat pixel indices ``index`` (``A`` elsewhere; ``a`` is 0 there), with the mix's
    high frequencies scaled to the energy of one layer: averaging two textures lowers their contrast by
    ``√((1 − a)² + a² + 2a(1 − a)ρ)``, ``ρ`` the correlation of their high frequencies (luminance,
    estimated over the crossfading pixels).

    Computed on whole images and selected by a mask: the crossfading pixels are half to most of a frame, where
    gathering and scattering them by index cost more than the arithmetic (68 → ~30 ms per 1280×720 frame)."""
    h, w = a.shape
    mask = np.zeros(h * w, bool)
    mask[index] = True
    mask = mask.reshape(h, w)
    a3 = a[..., None]
    out = np.subtract(sample_b, sample_a)  # A + a·(B − A), in place: exactly A where a == 0
    out *= a3
    out += sample_a
    low = cv2.GaussianBlur(out, (7, 7), _VAR_SIGMA, borderType=cv2.BORDER_REPLICATE)
    luma = np.array([[0.299, 0.587, 0.114]], np.float32)
    ha = cv2.transform(sample_a - low, luma).reshape(-1)[index]
    hb = cv2.transform(sample_b - low, luma).reshape(-1)[index]
    rho = float(np.dot(ha, hb)) / max(math.sqrt(float(np.dot(ha, ha)) * float(np.dot(hb, hb))), 1e-12)
    rho = min(max(rho, 0.0), 1.0)
    energy = np.square(1.0 - a) + np.square(a) + np.float32(2.0 * rho) * a * (1.0 - a)
    gain = np.clip(1.0 / np.sqrt(np.maximum(energy, np.float32(1e-6))), 1.0, 1.5).astype(np.float32, copy=False)
    mixed = np.subtract(out, low)  # low + gain·(out − low), in place
    mixed *= gain[..., None]
    mixed += low
    np.copyto(out, mixed, where=mask[..., None])
    return out
