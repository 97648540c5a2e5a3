"""Feature transforms of arbitrary-style transfer, between a VGG encoder and its decoder
(:mod:`vidstyle.nets.decoder`).

Each is a function plus an ``nn.Module`` whose ``forward`` only calls the function (kornia style).
Features are N×C×H×W (any float dtype; statistics are computed in float64 where a matrix is
decomposed); the style is either features (1×C×H×W) or a :class:`StyleStatistics` from
:func:`prepare_style`, which analyses one or several styles **once** so that every video frame reuses it.

* :func:`adain` (Huang & Belongie 2017): ``σ_s · (c − μ_c) / σ_c + μ_s`` per channel.
* :func:`wct` (Li et al. 2017): whiten the content's feature covariance, colour with the style's:
  ``E_s D_s^{1/2} E_sᵀ · E_c D_c^{−1/2} E_cᵀ (c − μ_c) + μ_s``.
* :func:`style_swap` (Chen & Schmidt 2016): every 3×3 content patch is replaced by the style patch of
  highest normalised cross-correlation (a convolution with the normalised style patches; the content
  patch's own norm does not change the argmax), the chosen patches put back by the transposed
  convolution of the one-hot match map with the style patches (computed as a gather and ``fold``,
  which is the same sum) and averaged by the number of patches overlapping each position.

Controls shared by all: ``strength`` α blends ``α · T(c) + (1 − α) · c`` (α = 0 gives the content
features exactly). Several styles with ``weights``: AdaIN blends the per-channel means and stds (as
AdaIN is affine in them, the same as blending the outputs); WCT blends the means and covariances
(``Σ w_i Σ_i``, the within-style scatter); style swap blends the outputs of a swap against each style
(each style keeps its own patches, so weights mean the same as for the other two and one style's
patches never win every match). Helpers: :func:`style_image_at` (the style analysed at a given long
side: the brush size) and :func:`keep_colours` (luminance-only transfer, :func:`vidstyle.colour.preserve_luminance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError
from vidstyle.options.spec import OptionValueError

if TYPE_CHECKING:
    from vidstyle.stylize.stat_smoothing import ContentStatistics

__all__ = ["StyleStatistics", "StyleRegions", "prepare_style", "channel_var_mean", "adain", "adain_affine", "wct", "style_swap", "AdaIN", "WCT", "StyleSwap",
           "masked_adain", "masked_wct", "region_weights", "regional_transform", "RegionalTransform",
           "style_image_at", "keep_colours", "METHODS"]

METHODS = ("adain", "wct", "swap")
Method = Literal["adain", "wct", "swap"]


@dataclass(frozen=True, slots=True)
class StyleStatistics:
    """What a transform needs of one or several styles, computed once by :func:`prepare_style`.

    Attributes:
        method: ``adain``, ``wct`` or ``swap``.
        mean: C (blended per-channel mean; adain, wct).
        std: C (blended per-channel std; adain).
        colouring: C×C float64 ``Σ^{1/2}`` of the blended covariance (wct).
        patches: per style, K×C×p×p style patches (swap).
        weights: per style, summing to 1 (swap blends its outputs with them).
        patch, stride: swap patch size and stride.
    """

    method: str
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    colouring: torch.Tensor | None = None
    patches: tuple[torch.Tensor, ...] = ()
    weights: tuple[float, ...] = (1.0,)
    patch: int = 3
    stride: int = 1


def _check_feats(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ShapeError(f"{what} must be floating N×C×H×W features, got {getattr(x, 'shape', type(x).__name__)}")


def _weights(n: int, weights: Sequence[float] | None) -> tuple[float, ...]:
    if weights is None:
        return tuple([1.0 / n] * n)
    if len(weights) != n or any(not (w >= 0) for w in weights) or sum(weights) <= 0:
        raise OptionValueError("weights", f"give {n} non-negative style weights with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return tuple(float(w) / total for w in weights)


def _check_strength(strength: float) -> None:
    if not (0.0 <= float(strength) <= 1.0):
        raise OptionValueError("strength", f"strength must be between 0 and 1, got {strength}")


def _blend(content: torch.Tensor, out: torch.Tensor, strength: float) -> torch.Tensor:
    _check_strength(strength)
    if strength == 1.0:
        return out
    if strength == 0.0:
        return content
    return strength * out + (1.0 - strength) * content


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """C-vector mean and C×C covariance (float64, biased: divided by H·W) of 1×C×H×W or C×HW features."""
    mu, _, cov = _centred(f.reshape(f.shape[-3] if f.ndim == 4 else f.shape[0], -1), channel_rows=True)
    return mu, cov  # type: ignore[return-value]


def _channel_matrix(f: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The C×H×W features ``f`` as a matrix without a copy where the memory allows: ``(C×HW, True)``, or
    ``(HW×C, False)`` for channels-last memory."""
    c = f.shape[0]
    if not f.is_contiguous() and f.permute(1, 2, 0).is_contiguous():
        return f.permute(1, 2, 0).reshape(-1, c), False
    return f.reshape(c, -1), True


def _centred(m: torch.Tensor, *, channel_rows: bool,
             mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(μ, x − μ, covariance)`` in float64 of a :func:`_channel_matrix`: ``μ`` and the biased covariance are the
    features' own, or ``mean`` is subtracted and no covariance computed (one float64 copy either way)."""
    d = m.to(torch.float64, copy=True)  # centred in place below: never the caller's tensor
    axis = 1 if channel_rows else 0
    mu = d.mean(axis) if mean is None else mean.to(d)
    d.sub_(mu[:, None] if channel_rows else mu[None])
    if mean is not None:
        return mu, d, None
    return mu, d, (d @ d.T if channel_rows else d.T @ d) / d.shape[axis]


def content_mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (float64, biased) of one image's C×H×W features, as :func:`wct` takes them (any memory
    layout; :func:`vidstyle.stylize.stat_smoothing.content_statistics` uses it too, so that both agree to the bit)."""
    m, channel_rows = _channel_matrix(f)
    mu, _, cov = _centred(m, channel_rows=channel_rows)
    return mu, cov  # type: ignore[return-value]


def _eigh(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``; on the CPU with this thread's torch thread count set to 1 for the call.

    MKL's threaded symmetric eigensolver stalls when its threads do not all get a core: a 256×256 float64
    ``eigh`` (WCT at relu3_1, once per frame) took 2.9 s with 2 threads on a 2-core machine kept busy by other
    processes, 6 ms with 1 (and ~5 ms with 2 on an idle machine); in the pipeline the flow and stabiliser
    threads compete for the same cores. The thread count is per calling thread, so other stages are not affected.
    """
    if m.device.type != "cpu":
        return torch.linalg.eigh(m)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(m)
    finally:
        torch.set_num_threads(n)


def _sym_power(m: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    vals, vecs = _eigh(m)
    return (vecs * (vals.clamp_min(0.0) + eps).pow(power)) @ vecs.T


def prepare_style(style_feats: torch.Tensor | Sequence[torch.Tensor], *, method: Method,
                  weights: Sequence[float] | None = None, eps: float = 1e-5, patch: int = 3,
                  stride: int = 1) -> StyleStatistics:
    """Analyse one style's features (1×C×H×W) or several (a sequence) for ``method``, blended by ``weights``."""
    feats = [style_feats] if isinstance(style_feats, torch.Tensor) else list(style_feats)
    if method not in METHODS:
        raise OptionValueError("method", f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not feats:
        raise OptionValueError("style", "give at least one style's features")
    for f in feats:
        _check_feats(f, "style features")
        if f.shape[0] != 1 or f.shape[1] != feats[0].shape[1]:
            raise ShapeError(f"style features must be 1×C×H×W with one C, got {tuple(f.shape)}")
    w = _weights(len(feats), weights)
    if method == "adain":
        flat = [f.reshape(f.shape[1], -1) for f in feats]
        mean = sum(wi * x.mean(1) for wi, x in zip(w, flat))
        std = sum(wi * (x.var(1, unbiased=False) + eps).sqrt() for wi, x in zip(w, flat))
        return StyleStatistics(method="adain", mean=mean, std=std, weights=w)  # type: ignore[arg-type]
    if method == "wct":
        stats = [_mean_cov(f) for f in feats]
        mean = sum(wi * m for wi, (m, _) in zip(w, stats))
        cov = sum(wi * c for wi, (_, c) in zip(w, stats))
        return StyleStatistics(method="wct", mean=mean.to(feats[0].dtype), colouring=_sym_power(cov, 0.5, 0.0),  # type: ignore[union-attr]
                               weights=w)
    if patch < 1 or stride < 1:
        raise OptionValueError("patch", f"patch and stride must be >= 1, got {patch} and {stride}", also=("stride",))
    patches = []
    for f in feats:
        if f.shape[-2] < patch or f.shape[-1] < patch:
            raise ShapeError(f"style features {tuple(f.shape)} are smaller than a {patch}×{patch} patch")
        p = F.unfold(f, patch, stride=stride)[0].T  # K × (C·p·p)
        patches.append(p.reshape(-1, f.shape[1], patch, patch).contiguous())
    return StyleStatistics(method="swap", patches=tuple(patches), weights=w, patch=patch, stride=stride)


def _as_stats(style: torch.Tensor | StyleStatistics, method: Method, **kw: object) -> StyleStatistics:
    if isinstance(style, StyleStatistics):
        if style.method != method:
            raise OptionValueError("style", f"these style statistics were prepared for {style.method}, not {method}")
        return style
    return prepare_style(style, method=method, **kw)  # type: ignore[arg-type]


def channel_var_mean(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, the variance (biased, ÷ H·W) and the mean of N×C×H×W ``feats`` over H×W (float32; float64
    for float64 features).

    As ``E[x²] − E[x]²`` (clamped at 0) from two plain reductions: on the CPU ``torch.var_mean``'s Welford pass took
    27 ms for 256×90×160 features (relu3_1 of a 640×360 frame) on one thread, these 4 ms; the relative error of the
    variance is ~1e-6 for features whose mean is within a few standard deviations of 0 (ReLU features), and it
    is computed in float32 whatever the features' dtype (``var_mean`` in bfloat16 was off by 3e-3)."""
    x = feats if feats.dtype == torch.float64 else feats.float()
    mean = x.mean(dim=(2, 3))
    var = (x.square().mean(dim=(2, 3)) - mean.square()).clamp_min_(0.0)
    return var, mean


def adain(content_feats: torch.Tensor, style_feats: torch.Tensor | StyleStatistics, *, eps: float = 1e-5,
          strength: float = 1.0, content_stats: Sequence[ContentStatistics] | None = None) -> torch.Tensor:
    """Adaptive instance normalisation: each channel of each image gets the style's mean and std.

    ``content_stats`` (one per image, e.g. smoothed over time by
    :class:`~vidstyle.stylize.stat_smoothing.StatSmoother`) replaces each image's own mean and variance."""
    _check_feats(content_feats, "content features")
    st = _as_stats(style_feats, "adain", eps=eps)
    if st.mean.shape[0] != content_feats.shape[1]:  # type: ignore[union-attr]
        raise ShapeError(f"style has {st.mean.shape[0]} channels, content {content_feats.shape[1]}")  # type: ignore[union-attr]
    if content_stats is not None:
        _check_content_stats(content_stats, content_feats)
        mu = torch.stack([s.mean for s in content_stats]).to(content_feats)[:, :, None, None]
        sigma = (torch.stack([s.var for s in content_stats]) + eps).sqrt().to(content_feats)[:, :, None, None]
    else:
        var, mu = channel_var_mean(content_feats)
        mu, sigma = mu.to(content_feats)[:, :, None, None], (var + eps).sqrt().to(content_feats)[:, :, None, None]
    shape = (1, -1, 1, 1)
    # (x − μ_c)/σ_c·σ_s + μ_s as one affine pass over the features: x·a + (μ_s − μ_c·a), a = σ_s/σ_c
    scale = st.std.to(content_feats).view(shape) / sigma  # type: ignore[union-attr]
    out = torch.addcmul(st.mean.to(content_feats).view(shape) - mu * scale, content_feats, scale)  # type: ignore[union-attr]
    return _blend(content_feats, out, strength)


def adain_affine(content_feats: torch.Tensor, style: StyleStatistics, *, eps: float = 1e-5, strength: float = 1.0,
                 content_stats: Sequence[ContentStatistics] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaIN (with ``strength``) as the per-image, per-channel affine map it is: ``(scale, shift)``, N×C float32
    each, with ``adain(c, style, strength=α) = scale · c + shift``: ``a = σ_s / σ_c``, ``scale = α·a + 1 − α``,
    ``shift = α·(μ_s − a·μ_c)``. A network whose next layer is linear (the fast variant's decoder) folds it into
    that layer's weights instead of writing the moved features (:meth:`vidstyle.nets.student.StudentDecoder.decode_affine`)."""
    _check_feats(content_feats, "content features")
    _check_strength(strength)
    st = _as_stats(style, "adain", eps=eps)
    if st.mean.shape[0] != content_feats.shape[1]:  # type: ignore[union-attr]
        raise ShapeError(f"style has {st.mean.shape[0]} channels, content {content_feats.shape[1]}")  # type: ignore[union-attr]
    if content_stats is not None:
        _check_content_stats(content_stats, content_feats)
        mu = torch.stack([s.mean for s in content_stats]).float().to(content_feats.device)
        var = torch.stack([s.var for s in content_stats]).float().to(content_feats.device)
    else:
        var, mu = channel_var_mean(content_feats)
    a = st.std.float().to(mu.device)[None] / (var + eps).sqrt()  # type: ignore[union-attr]
    shift = st.mean.float().to(mu.device)[None] - a * mu  # type: ignore[union-attr]
    return strength * a + (1.0 - strength), strength * shift


def wct(content_feats: torch.Tensor, style_feats: torch.Tensor | StyleStatistics, *, eps: float = 1e-5,
        strength: float = 1.0, content_stats: Sequence[ContentStatistics] | None = None) -> torch.Tensor:
    """Whitening and colouring transform: each image's feature mean and covariance become the style's
    (``eps`` is added to the content covariance's eigenvalues before whitening).

    ``content_stats`` (one per image, with covariances; e.g. smoothed over time by
    :class:`~vidstyle.stylize.stat_smoothing.StatSmoother`) whitens with those instead of each image's own."""
    _check_feats(content_feats, "content features")
    st = _as_stats(style_feats, "wct", eps=eps)
    n, c, h, w = content_feats.shape
    if st.colouring.shape[0] != c:  # type: ignore[union-attr]
        raise ShapeError(f"style has {st.colouring.shape[0]} channels, content {c}")  # type: ignore[union-attr]
    if content_stats is not None:
        _check_content_stats(content_stats, content_feats, covariance=True)
    # the features' own memory layout (a tensor with odd strides, e.g. from unsqueezing a permuted view, made
    # the decoder 1.6x slower)
    moved = torch.empty_like(content_feats)
    for i in range(n):
        m, channel_rows = _channel_matrix(content_feats[i])
        if content_stats is not None:
            mu_c, cov_c = content_stats[i].mean.double(), content_stats[i].cov.double()  # type: ignore[union-attr]
            _, d, _ = _centred(m, channel_rows=channel_rows, mean=mu_c)
        else:
            _, d, cov_c = _centred(m, channel_rows=channel_rows)
        # colour ∘ whiten as one C×C map applied once: M·(x − μ_c) + μ_s, in float64 (M's entries can be large and
        # cancel when the content's covariance is nearly singular: float32 is not enough there)
        mat = st.colouring.to(cov_c.device) @ _sym_power(cov_c, -0.5, eps)  # type: ignore[union-attr, arg-type]
        mu_s = st.mean.to(mat)  # type: ignore[union-attr]
        if channel_rows:  # C×HW
            out = torch.addmm(mu_s[:, None], mat, d).view(c, h, w)
        else:  # HW×C: the channels-last memory of the features, no copy
            out = torch.addmm(mu_s[None], d, mat.T).view(h, w, c).permute(2, 0, 1)
        moved[i].copy_(out)  # to the features' dtype, in the same pass
    return _blend(content_feats, moved, strength)


def _check_content_stats(stats: Sequence[ContentStatistics], feats: torch.Tensor, *, covariance: bool = False) -> None:
    if len(stats) != feats.shape[0]:
        raise ShapeError(f"give one content statistics per image: {len(stats)} for {feats.shape[0]} images")
    for s in stats:
        if s.mean.shape[0] != feats.shape[1] or (covariance and s.cov is None):
            what = "with covariances " if covariance else ""
            raise ShapeError(f"content statistics must be {what}of {feats.shape[1]} channels, got {s.mean.shape[0]}")


def _swap_one(content: torch.Tensor, patches: torch.Tensor, *, stride: int, chunk: int) -> torch.Tensor:
    """Style swap of N×C×H×W content against one style's K×C×p×p patches."""
    p = patches.shape[-1]
    patches = patches.to(content)
    norms = patches.flatten(1).norm(dim=1).clamp_min(1e-8)
    best_val: torch.Tensor | None = None
    best_idx: torch.Tensor | None = None
    for start in range(0, patches.shape[0], chunk):  # running argmax over chunks of patches (memory)
        filt = patches[start : start + chunk] / norms[start : start + chunk].view(-1, 1, 1, 1)
        score = F.conv2d(content, filt, stride=stride)  # N × k × H' × W'
        val, idx = score.max(dim=1)
        if best_val is None:
            best_val, best_idx = val, idx + start
        else:
            better = val > best_val
            best_val = torch.where(better, val, best_val)
            best_idx = torch.where(better, idx + start, best_idx)
    n, c, h, w = content.shape
    idx = best_idx.flatten(1)  # type: ignore[union-attr]  # N × L
    cols = patches.flatten(1)[idx].transpose(1, 2)  # N × (C·p·p) × L: the one-hot map's transposed convolution
    summed = F.fold(cols, (h, w), p, stride=stride)
    count = F.fold(torch.ones_like(cols[:1, :1].expand(1, p * p, -1)), (h, w), p, stride=stride)
    count = count.expand(1, 1, h, w)
    out = summed / count.clamp_min(1.0)
    return torch.where(count > 0, out, content)  # positions no patch covers (stride > 1): the content


def style_swap(content_feats: torch.Tensor, style_feats: torch.Tensor | StyleStatistics, *, patch: int = 3,
               stride: int = 1, strength: float = 1.0, chunk: int = 4096) -> torch.Tensor:
    """Style swap: each content patch replaced by its best-correlated style patch (overlaps averaged).

    Not differentiable in the match (an argmax); ``chunk`` bounds the memory of the correlation.
    """
    _check_feats(content_feats, "content features")
    st = _as_stats(style_feats, "swap", patch=patch, stride=stride)
    if st.patches[0].shape[1] != content_feats.shape[1]:
        raise ShapeError(f"style has {st.patches[0].shape[1]} channels, content {content_feats.shape[1]}")
    if content_feats.shape[-2] < st.patch or content_feats.shape[-1] < st.patch:
        raise ShapeError(f"content features {tuple(content_feats.shape)} are smaller than a {st.patch}×{st.patch} patch")
    out = sum(wi * _swap_one(content_feats, pt, stride=st.stride, chunk=chunk) for wi, pt in zip(st.weights, st.patches))
    return _blend(content_feats, out, strength)  # type: ignore[arg-type]


class AdaIN(nn.Module):
    """:func:`adain` as a module."""

    def __init__(self, *, eps: float = 1e-5, strength: float = 1.0) -> None:
        super().__init__()
        self.eps, self.strength = eps, strength

    def forward(self, content_feats: torch.Tensor, style: torch.Tensor | StyleStatistics) -> torch.Tensor:
        return adain(content_feats, style, eps=self.eps, strength=self.strength)


class WCT(nn.Module):
    """:func:`wct` as a module."""

    def __init__(self, *, eps: float = 1e-5, strength: float = 1.0) -> None:
        super().__init__()
        self.eps, self.strength = eps, strength

    def forward(self, content_feats: torch.Tensor, style: torch.Tensor | StyleStatistics) -> torch.Tensor:
        return wct(content_feats, style, eps=self.eps, strength=self.strength)


class StyleSwap(nn.Module):
    """:func:`style_swap` as a module."""

    def __init__(self, *, patch: int = 3, stride: int = 1, strength: float = 1.0) -> None:
        super().__init__()
        self.patch, self.stride, self.strength = patch, stride, strength

    def forward(self, content_feats: torch.Tensor, style: torch.Tensor | StyleStatistics) -> torch.Tensor:
        return style_swap(content_feats, style, patch=self.patch, stride=self.stride, strength=self.strength)


# ------------------------------------------------------------------------------------ per-region styles
@dataclass(frozen=True, slots=True)
class StyleRegions:
    """Per-region styles (``--style a.jpg@matte_a.png``): each region's :class:`StyleStatistics` with its
    matte (``H×W`` float in [0, 1], any size: resized to the features), and ``rest``, the statistics of
    the styles without a matte, for what no matte covers (``None``: the content's own features there)."""

    method: str
    regions: tuple[tuple[StyleStatistics, torch.Tensor], ...]
    rest: StyleStatistics | None = None
    #: per region, its matte sequence (:class:`~vidstyle.io.mattes.Matte`, ``None`` for one picture); empty
    #: when no region has one. The network takes each frame's mattes from it (N×H×W in ``regions``).
    sequences: tuple[Any, ...] = ()


def _masked_mean_var(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and (biased) variance of N×C×H×W ``x`` weighted by N×1×H×W ``m``."""
    total = m.sum((2, 3), keepdim=True).clamp_min(1e-12)
    mu = (m * x).sum((2, 3), keepdim=True) / total
    var = (m * (x - mu) ** 2).sum((2, 3), keepdim=True) / total
    return mu, var


def masked_adain(content_feats: torch.Tensor, style: StyleStatistics, mask: torch.Tensor, *,
                 eps: float = 1e-5) -> torch.Tensor:
    """AdaIN with the content's statistics taken inside ``mask`` (N×1×H×W or 1×1×H×W weights in [0, 1]):
    ``σ_s · (c − μ_m) / σ_m + μ_s`` with ``μ_m = Σ m·c / Σ m`` and ``σ_m² = Σ m·(c − μ_m)² / Σ m``, per image
    and channel; computed everywhere (the caller keeps it where the mask is)."""
    _check_feats(content_feats, "content features")
    st = _as_stats(style, "adain", eps=eps)
    mu, var = _masked_mean_var(content_feats, mask.to(content_feats))
    shape = (1, -1, 1, 1)
    return ((content_feats - mu) / (var + eps).sqrt() * st.std.to(content_feats).view(shape)  # type: ignore[union-attr]
            + st.mean.to(content_feats).view(shape))  # type: ignore[union-attr]


def masked_wct(content_feats: torch.Tensor, style: StyleStatistics, mask: torch.Tensor, *,
               eps: float = 1e-5) -> torch.Tensor:
    """WCT with the content's mean and covariance taken inside ``mask`` (weights as in :func:`masked_adain`):
    ``Σ_s^{1/2} Σ_m^{−1/2} (c − μ_m) + μ_s``, ``Σ_m = Σ m·(c − μ_m)(c − μ_m)ᵀ / Σ m``."""
    _check_feats(content_feats, "content features")
    st = _as_stats(style, "wct", eps=eps)
    n, c, h, w = content_feats.shape
    m = mask.to(torch.float64).expand(n, 1, h, w).reshape(n, 1, -1)
    outs = []
    for i in range(n):
        x = content_feats[i].reshape(c, -1).double()
        total = m[i].sum().clamp_min(1e-12)
        mu = (m[i] * x).sum(1) / total
        d = x - mu[:, None]
        cov = (m[i] * d) @ d.T / total
        coloured = st.colouring.to(d.device) @ (_sym_power(cov, -0.5, eps) @ d) + st.mean.to(d)[:, None]  # type: ignore[union-attr]
        outs.append(coloured.reshape(c, h, w).to(content_feats.dtype))
    return torch.stack(outs)


def region_weights(mattes: Sequence[torch.Tensor], size: tuple[int, int]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each matte (``H×W`` in [0, 1], or ``N×H×W``: one per image of a batch) area-resized to the features'
    ``size`` as ``1×1×h×w`` (``N×1×h×w``) weights, divided by their sum where that exceeds 1 (overlapping mattes
    share), and the rest ``1 − Σ`` (what no matte covers)."""
    weights = [F.interpolate(m.float()[:, None] if m.ndim == 3 else m.float()[None, None], size=size, mode="area" if m.shape[-2] >= size[0] else "bilinear",
                             **({} if m.shape[-2] >= size[0] else {"align_corners": False})).clamp(0.0, 1.0)
               for m in mattes]
    if weights:
        weights = list(torch.broadcast_tensors(*weights))  # 1×1×h×w and N×1×h×w mattes together
    total = torch.stack(weights).sum(0) if weights else torch.zeros(1, 1, *size)
    scale = total.clamp_min(1.0)
    weights = [w / scale for w in weights]
    return weights, (1.0 - total / scale).clamp(0.0, 1.0)


def regional_transform(content_feats: torch.Tensor, regions: StyleRegions, *, strength: float = 1.0,
                       eps: float = 1e-5) -> torch.Tensor:
    """Per-region styles: ``Σ_r m_r · T_r(c) + m_rest · T_rest(c)``, with ``T_r`` the method's transform toward
    region r's style using the content's statistics *inside* ``m_r`` (:func:`masked_adain`, :func:`masked_wct`;
    style swap needs none), ``m_r`` from :func:`region_weights`; where no matte is and no style without a matte
    was given, the content features. Then blended with the content by ``strength`` like the other transforms."""
    _check_feats(content_feats, "content features")
    size = (content_feats.shape[-2], content_feats.shape[-1])
    weights, rest = region_weights([m for _, m in regions.regions], size)
    parts = [(st, w) for (st, _), w in zip(regions.regions, weights)]
    out = torch.zeros_like(content_feats)
    if regions.rest is not None:
        parts.append((regions.rest, rest))
    else:
        out = out + rest.to(content_feats) * content_feats
    for st, w in parts:
        w = w.to(content_feats)
        if float(w.sum()) <= 1e-6:  # the region is not in this frame
            continue
        if regions.method == "adain":
            moved = masked_adain(content_feats, st, w, eps=eps)
        elif regions.method == "wct":
            moved = masked_wct(content_feats, st, w, eps=eps)
        else:
            moved = style_swap(content_feats, st)
        out = out + w * moved
    return _blend(content_feats, out, strength)


class RegionalTransform(nn.Module):
    """:func:`regional_transform` as a module."""

    def __init__(self, *, eps: float = 1e-5, strength: float = 1.0) -> None:
        super().__init__()
        self.eps, self.strength = eps, strength

    def forward(self, content_feats: torch.Tensor, regions: StyleRegions) -> torch.Tensor:
        return regional_transform(content_feats, regions, strength=self.strength, eps=self.eps)


def style_image_at(image: torch.Tensor, *, long_side: int | None) -> torch.Tensor:
    """The style image (N×3×H×W in [0, 1]) resized so its longer side is ``long_side`` (area filter
    when shrinking, bicubic when enlarging): the scale at which the style is analysed sets the brush
    size in the output. ``None`` keeps it as it is."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ShapeError(f"style image must be N×3×H×W, got {tuple(image.shape)}")
    if long_side is None:
        return image
    if long_side < 8:
        raise OptionValueError("style_size", f"style size must be >= 8 px, got {long_side}")
    h, w = image.shape[-2:]
    s = long_side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    if size == (h, w):
        return image
    mode = "area" if s < 1 else "bicubic"
    return F.interpolate(image, size=size, mode=mode).clamp(0.0, 1.0)


def keep_colours(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer: the stylized image's luminance with the photo's colours
    (:func:`vidstyle.colour.preserve_luminance`; both N×3×H×W in [0, 1]). For a stronger effect, also
    analyse the style on its luminance (:func:`vidstyle.colour.luminance_image`)."""
    from vidstyle.colour import preserve_luminance

    return preserve_luminance(stylized, content)
