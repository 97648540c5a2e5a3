"""Inference-time temporal stabilisation of feed-forward output (docs/architecture.md, "Temporal consistency"), detail-preserving.

Plain exponential blending with the warped previous output removes flicker by blurring the strokes
away: every warp resamples and every blend averages. :func:`stabilize` instead

1. blends the new output ``N`` with the warped previous output ``W = warp(S_{t−1}, w_b)`` where the
   consistency mask says the pixel was visible: ``B = m·W + (1−m)·N`` with ``m = strength · c``
   (``c`` feathered by a small blur so there are no seams), disoccluded pixels taking ``N``;
2. restores the detail that resampling and averaging removed: the high frequencies of ``B`` are
   boosted, ``B + k·(B − G∗B)``, with ``k ≥ 0`` chosen per frame so that the sharpness
   (mean |Laplacian| of luminance) of the result matches that of ``N``. The strokes that survive are
   those that moved with the scene, so boosting them keeps the texture without bringing flicker back.

Function + module pair (:class:`Stabilizer` keeps ``S_{t−1}`` and resets on scene cuts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.colour import luma, luma_torch
from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.filtering import separable_filter

if TYPE_CHECKING:
    from vidstyle.options.curve import Curve

__all__ = ["stabilize", "Stabilizer", "PreparedStep", "sharpness_torch", "DEFAULT_STRENGTH", "DEFAULT_DETAIL", "DEFAULT_MID_BANDS",
           "DEFAULT_CONFIRM", "DEFAULT_METHOD", "METHODS"]

#: chosen by measurement on the real clips (BENCHMARKS.md, "Temporal stabilisation")
DEFAULT_STRENGTH = 0.85
#: the Stabilizer's other defaults, chosen by measurement on the 12 clip/model pairs (BENCHMARKS.md,
#: "Temporal stabilisation"): restore the 1–3 px band's amplitude (brush strokes wider than a pixel,
#: which averaging weakens and the style loss sees) and the per-frame sharpness, and blend pixels the
#: mask rejects where the input's warp error is below 0.01 (2.5 grey levels)
DEFAULT_DETAIL = 1.0
DEFAULT_MID_BANDS: tuple[tuple[float, float], ...] = ((1.0, 3.0),)
DEFAULT_CONFIRM = 0.01
#: ``blend``: :func:`stabilize` (blend with the warped previous output, restore detail); ``resample``:
#: :class:`vidstyle.stylize.resample.TextureTracker` (track where each texel was generated and sample it
#: once from there; issue 16, BENCHMARKS.md "Temporal stabilisation")
METHODS = ("blend", "resample")
DEFAULT_METHOD = "blend"


def _gauss_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(round(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with replicate borders (:func:`vidstyle.filtering.separable_filter`)."""
    return separable_filter(x, _gauss_kernel(sigma, x.device, torch.float64).tolist())


def _lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-like low-pass of scale ``sigma``: exact :func:`_blur` below 2 px; above, a box
    downsample by the largest power of two ``f`` ≤ sigma (the frame replicate-padded to a multiple of
    ``f``), a blur of the rest, and a bilinear upsample (half-pixel centres) cropped back to the frame
    (~10× cheaper at σ = 4 than a 21-tap blur; only the band's scale matters here).
    :func:`_lowpass_hwc` computes the same with OpenCV."""
    if sigma < 2.0:
        return _blur(x, sigma)
    f = 2 ** int(math.floor(math.log2(sigma)))
    h, w = x.shape[-2:]
    hp, wp = -(-h // f) * f, -(-w // f) * f
    xp = F.pad(x, (0, wp - w, 0, hp - h), mode="replicate") if (hp, wp) != (h, w) else x
    small = _blur(F.avg_pool2d(xp, f), sigma / f)
    return F.interpolate(small, size=(hp, wp), mode="bilinear", align_corners=False)[..., :h, :w]


def _half(x: torch.Tensor) -> torch.Tensor:
    """2×2 box average (the frame replicate-padded to even sides); :func:`_half_hwc` with OpenCV."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def _double(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear ×2 upsample (half-pixel centres) cropped to ``h×w``; :func:`_double_hwc` with OpenCV."""
    return F.interpolate(x, size=(2 * x.shape[-2], 2 * x.shape[-1]), mode="bilinear", align_corners=False)[..., :h, :w]


def sharpness_torch(image: torch.Tensor) -> torch.Tensor:
    """Mean |Laplacian| of luminance per image (N×3×H×W in [0, 1] → N).

    The 4-neighbour Laplacian with replicate borders, computed from shifted views (a 1-channel
    ``conv2d`` took ~3 ms at 640×360 on a CPU, this ~0.3 ms).
    """
    return _luma_laplacian(image).abs().mean(dim=(1, 2, 3))


def _luma_laplacian(image: torch.Tensor) -> torch.Tensor:
    """N×1×H×W 4-neighbour Laplacian (replicate borders) of the luminance of N×3×H×W ``image``;
    linear in ``image``."""
    y = F.pad(luma_torch(image), (1, 1, 1, 1), mode="replicate")
    c = y[..., 1:-1, 1:-1]
    return y[..., :-2, 1:-1] + y[..., 2:, 1:-1] + y[..., 1:-1, :-2] + y[..., 1:-1, 2:] - 4.0 * c


def stabilize(
    new: torch.Tensor,
    warped_prev: torch.Tensor,
    consistency: torch.Tensor,
    *,
    strength: float,
    restore_detail: bool = True,
    feather: float = 1.0,
    detail: float = 1.0,
    mid_bands: tuple[tuple[float, float], ...] = (),
) -> torch.Tensor:
    """Blend ``new`` with the warped previous output where visible, then restore detail.

    Args:
        new: this frame's per-frame output, N×3×H×W in [0, 1].
        warped_prev: the previous output warped into this frame, same shape.
        consistency: N×1×H×W or N×H×W mask in [0, 1] (1 = visible in the previous frame).
        strength: 0 = per-frame output, 1 = keep the warped previous output wherever visible.
        restore_detail: match the sharpness of ``new`` (see the module docstring).
        feather: sigma in pixels of the mask's blur.
        detail: the sharpness to restore, as a fraction of the per-frame output's (1 = the same).
        mid_bands: difference-of-Gaussian bands ``(σ_lo, σ_hi)`` (full-size pixels) whose mean amplitude
            is also restored to the per-frame output's before the sharpness step (computed at half size).
    """
    if not 0.0 <= strength <= 1.0:
        raise InvalidOptionError(f"stabilisation strength must be in [0, 1], got {strength}")
    if new.shape != warped_prev.shape or new.ndim != 4:
        raise ShapeError(f"new {tuple(new.shape)} and warped_prev {tuple(warped_prev.shape)} must be the same N×C×H×W")
    if consistency.ndim == 3:
        consistency = consistency.unsqueeze(1)
    if consistency.shape[0] != new.shape[0] or consistency.shape[-2:] != new.shape[-2:]:
        raise ShapeError(f"consistency {tuple(consistency.shape)} does not match the image {tuple(new.shape)}")
    if strength == 0.0:
        return new
    m = consistency.to(new.dtype)
    if feather > 0:
        m = _blur(m, feather)
    m = m * strength
    blend = m * warped_prev + (1.0 - m) * new
    if not restore_detail:
        return blend.clamp(0.0, 1.0)
    out = blend
    if mid_bands:
        # mid-frequency bands (strokes wider than a pixel) lose energy in the average too: give each band
        # of the blend the mean amplitude it has in the per-frame output (its layout stays the blend's).
        # The bands lie below half the sampling rate, so they are computed on 2×2-averaged images
        # (σ halved) and the correction is upsampled bilinearly: ~5× cheaper than at full size.
        h, w = out.shape[-2:]
        out_h, new_h = _half(out), _half(new)
        new_low: dict[float, torch.Tensor] = {}  # lowpasses of the per-frame output, shared by adjacent bands
        for lo, hi in mid_bands:
            band = _lowpass(out_h, lo / 2) - _lowpass(out_h, hi / 2)
            for sigma in (lo, hi):
                if sigma not in new_low:
                    new_low[sigma] = _lowpass(new_h, sigma / 2)
            ref = new_low[lo] - new_low[hi]
            g = (ref.abs().mean(dim=(1, 2, 3)) / band.abs().mean(dim=(1, 2, 3)).clamp_min(1e-8)).clamp(1.0, 3.0)
            gain = g.view(-1, 1, 1, 1) - 1.0
            out = out + gain * _double(band, h, w)
            out_h = out_h + gain * band
    target = sharpness_torch(new) * detail
    hf = out - _blur(out, 1.0)
    lap_out = _luma_laplacian(out)
    have = lap_out.abs().mean(dim=(1, 2, 3))
    # the Laplacian of luminance is linear: that of out + hf without forming out + hf
    probe = (lap_out + _luma_laplacian(hf)).abs().mean(dim=(1, 2, 3))
    gain = (probe - have).clamp_min(1e-8)
    k = ((target - have) / gain).clamp(0.0, 3.0).view(-1, 1, 1, 1)
    return (out + k * hf).clamp(0.0, 1.0)


def _blur_hwc(x: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`_blur` of an ``H×W`` or ``H×W×C`` float32 array (``cv2.sepFilter2D``, same taps and borders)."""
    import cv2

    k = np.asarray(_gauss_kernel(sigma, torch.device("cpu"), torch.float64).tolist(), dtype=np.float32)
    return cv2.sepFilter2D(x, -1, k, k, borderType=cv2.BORDER_REPLICATE)


def _lowpass_hwc(x: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`_lowpass` of an ``H×W×C`` float32 array with OpenCV (INTER_AREA at an integer factor is the
    box average; INTER_LINEAR on float32 is the half-pixel bilinear of ``F.interpolate``)."""
    import cv2

    if sigma < 2.0:
        return _blur_hwc(x, sigma)
    f = 2 ** int(math.floor(math.log2(sigma)))
    h, w = x.shape[:2]
    hp, wp = -(-h // f) * f, -(-w // f) * f
    xp = cv2.copyMakeBorder(x, 0, hp - h, 0, wp - w, cv2.BORDER_REPLICATE) if (hp, wp) != (h, w) else x
    small = _blur_hwc(cv2.resize(xp, (wp // f, hp // f), interpolation=cv2.INTER_AREA), sigma / f)
    up = cv2.resize(small, (wp, hp), interpolation=cv2.INTER_LINEAR)
    return up[:h, :w] if up.ndim == 3 else up[:h, :w, None]


def _half_hwc(x: np.ndarray) -> np.ndarray:
    """:func:`_half` of an ``H×W×C`` float32 array (bilinear at exactly ½ scale is the 2×2 mean)."""
    import cv2

    h, w = x.shape[:2]
    if h % 2 or w % 2:
        x = cv2.copyMakeBorder(x, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.resize(x, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_LINEAR)


def _double_hwc(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """:func:`_double` of an ``h'×w'×C`` float32 array."""
    import cv2

    return cv2.resize(x, (2 * x.shape[1], 2 * x.shape[0]), interpolation=cv2.INTER_LINEAR)[:h, :w]


def _luma_laplacian_hwc(x: np.ndarray) -> np.ndarray:
    """:func:`_luma_laplacian` of an ``H×W×3`` float32 array (``H×W``)."""
    import cv2

    y = luma(x)
    return cv2.Laplacian(y, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)


def _mean_abs(x: np.ndarray) -> float:
    import cv2

    return float(cv2.norm(x, cv2.NORM_L1)) / x.size


def _blend_weight_hwc(consistency: np.ndarray, *, strength: float, feather: float) -> np.ndarray:
    """The ``H×W×3`` weight of the warped previous output in :func:`_stabilize_hwc`: the ``H×W`` mask
    feathered and scaled by ``strength``."""
    import cv2

    m = consistency.astype(np.float32, copy=False)
    if feather > 0:
        m = _blur_hwc(m, feather)
    return cv2.merge([m * np.float32(strength)] * 3)


def _stabilize_hwc(new: np.ndarray, warped_prev: np.ndarray, consistency: np.ndarray, *,
                   strength: float, feather: float, detail: float,
                   mid_bands: tuple[tuple[float, float], ...], weight: np.ndarray | None = None) -> np.ndarray:
    """:func:`stabilize` (``restore_detail=True``) of one ``H×W×3`` float32 frame with OpenCV.

    The same formula step by step; OpenCV's filters run many times faster than the equivalent chain of
    small torch ops on a CPU (BENCHMARKS.md, "Temporal stabilisation"). Tested equal to
    :func:`stabilize` to float rounding. ``weight``: :func:`_blend_weight_hwc` of the same mask, computed
    beforehand (:meth:`Stabilizer.prepare`)."""
    import cv2

    m = _blend_weight_hwc(consistency, strength=strength, feather=feather) if weight is None else weight
    out = cv2.add(new, cv2.multiply(m, cv2.subtract(warped_prev, new)))  # m·W + (1 − m)·N
    if mid_bands:
        h, w = out.shape[:2]
        out_h, new_h = _half_hwc(out), _half_hwc(new)
        new_low: dict[float, np.ndarray] = {}
        for lo, hi in mid_bands:
            band = cv2.subtract(_lowpass_hwc(out_h, lo / 2), _lowpass_hwc(out_h, hi / 2))
            for sigma in (lo, hi):
                if sigma not in new_low:
                    new_low[sigma] = _lowpass_hwc(new_h, sigma / 2)
            ref = cv2.subtract(new_low[lo], new_low[hi])
            g = min(max(_mean_abs(ref) / max(_mean_abs(band), 1e-8), 1.0), 3.0)
            out = cv2.scaleAdd(_double_hwc(band, h, w), g - 1.0, out)
            out_h = cv2.scaleAdd(band, g - 1.0, out_h)
    target = _mean_abs(_luma_laplacian_hwc(new)) * detail
    hf = cv2.subtract(out, _blur_hwc(out, 1.0))
    lap_out = _luma_laplacian_hwc(out)
    have = _mean_abs(lap_out)
    probe = _mean_abs(cv2.add(lap_out, _luma_laplacian_hwc(hf)))
    k = min(max((target - have) / max(probe - have, 1e-8), 0.0), 3.0)
    result = cv2.scaleAdd(hf, k, out)
    return np.clip(result, 0.0, 1.0, out=result)


def _warp_previous(prev: torch.Tensor, flow_bwd: torch.Tensor, *, mode: str) -> torch.Tensor:
    """``warp(prev, flow_bwd)`` clamped to [0, 1]; one float32 CPU frame goes through ``cv2.remap``
    (same bicubic/bilinear kernel and replicate border, 1/32-pixel coordinates; ~1 ms instead of
    ~6 ms for ``grid_sample`` at 640×360), anything else through :func:`vidstyle.flow.warping.warp`."""
    from vidstyle.flow.warping import warp

    if prev.device.type == "cpu" and prev.dtype == torch.float32 and prev.shape[0] == 1 and not prev.requires_grad:
        import cv2

        from vidstyle.flow.warping import remap_coordinates

        flow = flow_bwd[0].detach().to(torch.float32).numpy()
        map_x, map_y = remap_coordinates(flow)
        image = np.ascontiguousarray(prev[0].permute(1, 2, 0).numpy())
        interp = cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR
        out = cv2.remap(image, map_x, map_y, interp, borderMode=cv2.BORDER_REPLICATE)
        if out.ndim == 2:
            out = out[:, :, None]
        return torch.from_numpy(out).permute(2, 0, 1)[None].clamp_(0.0, 1.0)
    return warp(prev, flow_bwd.to(prev.dtype), mode=mode).clamp(0.0, 1.0)


#: the mask's feather (Gaussian sigma, pixels) of the OpenCV blend, in a step and in its preparation alike
_FEATHER = 1.0


@dataclass(slots=True)
class PreparedStep:
    """The part of a :meth:`Stabilizer.step` that needs no new output (:meth:`Stabilizer.prepare`): the mask after
    the input check, the previous output warped along the flow and, on the OpenCV path, the blend weight. Valid
    for the step after the one that made ``previous``, at ``strength``."""

    previous: torch.Tensor
    strength: float
    consistency: torch.Tensor
    warped: torch.Tensor
    weight: np.ndarray | None


class Stabilizer:
    """Keeps the previous output and applies :func:`stabilize` frame after frame.

    ``step(new, flow_bwd, consistency, scene_cut, warp_error)`` takes tensors for one frame (1×3×H×W
    output, 1×2×H×W flow back to the previous processed frame, 1×1×H×W mask, optionally the input's
    1×1×H×W warp error, :attr:`vidstyle.frame.Frame.warp_error`) and returns the stabilised output,
    which becomes the new previous output. Without flow (first frame) or on a scene cut it returns
    ``new`` unchanged and restarts from it.

    ``confirm``: a pixel the consistency mask rejects is blended all the same where the input frame
    matches the previous one warped by the flow to within this luminance difference (0..1): the
    forward-backward check of a fast flow rejects many pixels whose backward flow is right (13 % of
    a fast-moving clip, carrying half the remaining flicker; BENCHMARKS.md). 0 turns it off.

    ``method``: ``"blend"`` (the above) or ``"resample"`` (:mod:`vidstyle.stylize.resample`: each texel
    is sampled once from the network output it was generated in, and refreshed after
    ``1/(1 − strength)`` frames, at most ``max_age``, or where the mask rejects it, its tracked colour
    differs from the fresh output by more than ``tolerance`` or its footprint stretched by more than
    ``max_stretch``; ``kernel`` ``"bicubic"`` or ``"lanczos"``). With ``step(guide=...)`` (the input
    frame, as the pipeline's stages pass it) a track is refreshed by a crossfade where the input's
    low-passed luminance drifted by more than ``drift`` from where the track started, instead of where the
    output's colour disagrees; ``tear`` refreshes patches whose track field tore (0 = off); a refresh crossfades
    over ``crossfade`` × the lifetime (lifetimes over 8 frames count as 8). ``restore_detail``, ``interpolation``,
    ``detail`` and ``mid_bands`` apply to ``blend`` only. ``resample`` works on one frame (N = 1) at a
    time, on the CPU with OpenCV (other devices and dtypes are converted there and back).
    """

    def __init__(self, *, strength: float | Curve = DEFAULT_STRENGTH, restore_detail: bool = True, interpolation: str = "bicubic",
                 detail: float = DEFAULT_DETAIL, mid_bands: tuple[tuple[float, float], ...] = DEFAULT_MID_BANDS,
                 confirm: float = DEFAULT_CONFIRM, method: str = DEFAULT_METHOD, max_age: int | None = None,
                 tolerance: float | None = None, max_stretch: float | None = None, kernel: str | None = None,
                 drift: float | None = None, tear: float | None = None, crossfade: float | None = None) -> None:
        from vidstyle.options.curve import Curve
        from vidstyle.options.spec import OptionValueError
        from vidstyle.stylize import resample

        #: keyframed strength (``step(index=...)`` samples it), or ``None`` for a constant one
        self.curve = strength if isinstance(strength, Curve) and not strength.is_constant else None
        if isinstance(strength, Curve):
            low, high, strength = strength.minimum, strength.maximum, strength.keys[0][1]
        else:
            low = high = strength
        if not (0.0 <= low and high <= 1.0):
            raise InvalidOptionError(f"stabilize must be in [0, 1], got {low if low < 0 else high}")
        if interpolation not in ("bilinear", "bicubic"):
            raise InvalidOptionError(f"interpolation must be bilinear or bicubic, got {interpolation!r}")
        self.strength = strength
        self.restore_detail = restore_detail
        self.interpolation = interpolation
        if not 0.0 < detail <= 2.0:
            raise InvalidOptionError(f"detail must be in (0, 2], got {detail}")
        self.detail = detail
        self.mid_bands = tuple(mid_bands)
        if not 0.0 <= confirm < 1.0:
            raise InvalidOptionError(f"confirm must be in [0, 1), got {confirm}")
        self.confirm = confirm
        if method not in METHODS:
            raise OptionValueError("method", f"stabilisation method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        settings = resample.ResampleSettings(
            max_age=resample.DEFAULT_MAX_AGE if max_age is None else max_age,
            tolerance=resample.DEFAULT_TOLERANCE if tolerance is None else tolerance,
            max_stretch=resample.DEFAULT_MAX_STRETCH if max_stretch is None else max_stretch,
            kernel=resample.DEFAULT_KERNEL if kernel is None else kernel,
            drift=resample.DEFAULT_DRIFT if drift is None else drift,
            tear=resample.DEFAULT_TEAR if tear is None else tear,
            crossfade=resample.DEFAULT_CROSSFADE if crossfade is None else crossfade,
        )
        if not (isinstance(settings.max_age, int) and 1 <= settings.max_age <= 120):
            raise OptionValueError("max_age", f"max_age must be an integer in [1, 120], got {settings.max_age!r}")
        if not 0.0 < settings.tolerance <= 1.0:
            raise OptionValueError("tolerance", f"tolerance must be in (0, 1], got {settings.tolerance}")
        if not settings.max_stretch > 1.0:
            raise OptionValueError("max_stretch", f"max_stretch must be > 1, got {settings.max_stretch}")
        if not 0.0 < settings.drift <= 1.0:
            raise OptionValueError("drift", f"drift must be in (0, 1], got {settings.drift}")
        if not settings.tear >= 0.0:
            raise OptionValueError("tear", f"tear must be >= 0 (0 = off), got {settings.tear}")
        if not 0.0 < settings.crossfade <= 1.0:
            raise OptionValueError("crossfade", f"crossfade must be in (0, 1] (a fraction of the track's lifetime), "
                                                f"got {settings.crossfade}")
        if settings.kernel not in resample.KERNELS:
            raise OptionValueError("kernel", f"kernel must be one of {', '.join(resample.KERNELS)}, got {settings.kernel!r}")
        #: the resample method's state (``None`` with ``method="blend"``)
        self.tracker = resample.TextureTracker(settings) if method == "resample" else None
        self.previous: torch.Tensor | None = None

    def reset(self) -> None:
        self.previous = None
        if self.tracker is not None:
            self.tracker.reset()

    def step(
        self,
        new: torch.Tensor,
        *,
        flow_bwd: torch.Tensor | None,
        consistency: torch.Tensor | None,
        scene_cut: bool = False,
        warp_error: torch.Tensor | None = None,
        index: float | None = None,
        guide: np.ndarray | None = None,
        prepared: PreparedStep | None = None,
    ) -> torch.Tensor:
        """Stabilise ``new`` (N×3×H×W) against the previous output; ``index`` is the frame number a
        keyframed strength is sampled at; ``guide`` the input frame (H×W×3 uint8, uint16 or float 0..1;
        used by ``resample`` only, ignored when its size differs from the output's); ``prepared``:
        :meth:`prepare` of the same flow and mask, made since the last step (the result is the same)."""
        if self.curve is not None and index is not None:
            self.strength = self.curve.at(index)
        prev = self.previous
        if prepared is not None and (prepared.previous is not prev or prepared.strength != self.strength):
            prepared = None  # made for another previous output or strength: not this step's
        if prepared is not None:
            consistency = prepared.consistency
        else:
            consistency = self._confirmed(consistency, warp_error, flow_bwd)
        if self.tracker is not None:
            return self._step_resample(new, flow_bwd, consistency, scene_cut, guide)
        if (
            self.strength == 0.0
            or prev is None
            or flow_bwd is None
            or consistency is None
            or scene_cut
            or prev.shape != new.shape
        ):
            out = new
        else:
            warped = prepared.warped if prepared is not None else _warp_previous(prev, flow_bwd, mode=self.interpolation)
            if _hwc_eligible(new) and self.restore_detail:
                out = self._step_hwc(new, warped, consistency, weight=None if prepared is None else prepared.weight)
            else:
                out = stabilize(new, warped, consistency, strength=self.strength,
                                restore_detail=self.restore_detail, detail=self.detail, mid_bands=self.mid_bands)
        self.previous = out.detach()
        return out

    def _confirmed(self, consistency: torch.Tensor | None, warp_error: torch.Tensor | None,
                   flow_bwd: torch.Tensor | None) -> torch.Tensor | None:
        """The mask with the pixels the input check confirms (``confirm``) let through, except where the flow
        leads outside the previous frame: there the warp repeats the previous output's edge, which the input
        check can match (a smooth sky) while the output's texture smears into a band."""
        if consistency is not None and warp_error is not None and self.confirm > 0:
            if warp_error.shape[-2:] != consistency.shape[-2:]:
                raise ShapeError(f"warp_error {tuple(warp_error.shape)} does not match the mask {tuple(consistency.shape)}")
            confirmed = (warp_error.reshape(consistency.shape) < self.confirm).to(consistency.dtype)
            if flow_bwd is not None and flow_bwd.ndim == 4 and flow_bwd.shape[-2:] == consistency.shape[-2:]:
                confirmed = confirmed * _inside(flow_bwd).reshape(consistency.shape).to(consistency.dtype)
            consistency = torch.maximum(consistency, confirmed)
        return consistency

    def prepare(self, *, flow_bwd: torch.Tensor | None, consistency: torch.Tensor | None,
                warp_error: torch.Tensor | None = None, scene_cut: bool = False) -> PreparedStep | None:
        """The part of the next :meth:`step` that needs only the flow and the previous output: the checked mask,
        the previous output warped and (OpenCV path) the blend weight, to compute beside the network (live mode's
        flow helper does) and hand to ``step(prepared=...)``. ``None`` where the step will not blend (no previous
        output, no flow, a scene cut, strength 0, the ``resample`` method). Not with a keyframed strength: it
        is sampled at the step."""
        prev = self.previous
        if (self.tracker is not None or self.curve is not None or self.strength == 0.0 or prev is None
                or flow_bwd is None or consistency is None or scene_cut):
            return None
        consistency = self._confirmed(consistency, warp_error, flow_bwd)
        warped = _warp_previous(prev, flow_bwd, mode=self.interpolation)
        weight = None
        h, w = prev.shape[-2:]
        if _hwc_eligible(prev) and self.restore_detail and consistency.numel() == h * w:
            weight = _blend_weight_hwc(np.ascontiguousarray(consistency.reshape(h, w).to(torch.float32).numpy()),
                                       strength=self.strength, feather=_FEATHER)
        return PreparedStep(previous=prev, strength=float(self.strength), consistency=consistency, warped=warped,
                            weight=weight)

    def _step_resample(self, new: torch.Tensor, flow_bwd: torch.Tensor | None, consistency: torch.Tensor | None,
                       scene_cut: bool, guide: np.ndarray | None = None) -> torch.Tensor:
        """:class:`~vidstyle.stylize.resample.TextureTracker` on one frame; returns an N×C×H×W view of
        H×W×C memory on ``new``'s device and dtype."""
        if new.ndim != 4 or new.shape[0] != 1 or new.shape[1] != 3:
            raise ShapeError(f"the resample stabiliser takes one 1×3×H×W frame at a time, got {tuple(new.shape)}")
        h, w = new.shape[-2:]
        image = np.ascontiguousarray(new[0].detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())
        flow = cons = None
        if flow_bwd is not None and consistency is not None:
            if flow_bwd.shape[-3:] != (2, h, w) or consistency.numel() != h * w:
                raise ShapeError(f"flow {tuple(flow_bwd.shape)} / consistency {tuple(consistency.shape)} do not match "
                                 f"the image {tuple(new.shape)}")
            flow = np.ascontiguousarray(flow_bwd.reshape(2, h, w).detach().to("cpu", torch.float32).numpy())
            cons = np.ascontiguousarray(consistency.reshape(h, w).detach().to("cpu", torch.float32).numpy())
        out = self.tracker.step(image, flow_bwd=flow, consistency=cons, strength=float(self.strength),
                                scene_cut=scene_cut, guide=_guide_float(guide, (h, w)))
        result = torch.from_numpy(out).permute(2, 0, 1)[None]
        if result.device != new.device or result.dtype != new.dtype:
            result = result.to(new.device, new.dtype)
        self.previous = result
        return result

    def _step_hwc(self, new: torch.Tensor, warped: torch.Tensor, consistency: torch.Tensor, *,
                  weight: np.ndarray | None = None) -> torch.Tensor:
        """:func:`_stabilize_hwc` on one CPU float32 frame; the result is an N×C×H×W view of H×W×C
        memory (what the next :func:`_warp_previous` and the sink read without a copy)."""
        h, w = new.shape[-2:]
        if consistency.shape[-2:] != (h, w) or consistency.numel() != h * w or warped.shape != new.shape:
            raise ShapeError(f"consistency {tuple(consistency.shape)} does not match the image {tuple(new.shape)}")
        c = consistency.reshape(h, w)
        out = _stabilize_hwc(
            np.ascontiguousarray(new[0].permute(1, 2, 0).numpy()),
            np.ascontiguousarray(warped[0].permute(1, 2, 0).numpy()),
            np.ascontiguousarray(c.to(torch.float32).numpy()),
            strength=self.strength, feather=_FEATHER, detail=self.detail, mid_bands=self.mid_bands, weight=weight,
        )
        return torch.from_numpy(out).permute(2, 0, 1)[None]


def _inside(flow_bwd: torch.Tensor) -> torch.Tensor:
    """Where ``x + flow_bwd(x)`` lies inside the frame (N×H×W bool; the consistency mask's out-of-frame test)."""
    h, w = flow_bwd.shape[-2:]
    fx = flow_bwd[:, 0] + torch.arange(w, dtype=flow_bwd.dtype, device=flow_bwd.device)
    fy = flow_bwd[:, 1] + torch.arange(h, dtype=flow_bwd.dtype, device=flow_bwd.device)[:, None]
    return (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)


def _guide_float(guide: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """The input frame (H×W×3 uint8/uint16/float) as float32 in 0..1, or ``None`` when absent or of
    another size than the output (e.g. a model that changes the size)."""
    if guide is None:
        return None
    g = np.asarray(guide)
    if g.shape[:2] != size:
        return None
    if g.dtype == np.uint8:
        return g.astype(np.float32) * np.float32(1.0 / 255.0)
    if g.dtype == np.uint16:
        return g.astype(np.float32) * np.float32(1.0 / 65535.0)
    return g.astype(np.float32, copy=False)


def _hwc_eligible(x: torch.Tensor) -> bool:
    """One RGB float32 CPU frame without autograd: the OpenCV paths apply."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.ndim == 4 and x.shape[0] == 1
            and x.shape[1] == 3 and not x.requires_grad)
