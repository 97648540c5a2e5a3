"""Content statistics smoothed over time, for AdaIN and WCT on video (issue 15, item 6).

AdaIN and WCT normalise each frame by its **own** feature statistics: per-channel mean and std (AdaIN),
mean and covariance (WCT). Those statistics change a little from frame to frame, and WCT's whitening
``Σ_c^{−1/2}`` amplifies the change along the covariance's weak directions, so the stylisation of a
still scene flickers (Li et al. 2017 say so). :class:`StatSmoother` replaces each frame's statistics by
an exponential moving average over the frames so far,

    ``μ̄_t = λ·μ̄_{t−1} + (1 − λ)·μ_t``,   ``Σ̄_t = λ·Σ̄_{t−1} + (1 − λ)·Σ_t``   (AdaIN: ``σ̄²`` likewise),

with ``μ̄_0 = μ_0``, ``Σ̄_0 = Σ_0`` after every reset; the transform then whitens the frame with
``(μ̄_t, Σ̄_t)`` instead of ``(μ_t, Σ_t)``. ``λ = 0`` is the per-frame transform exactly.

**Scene cuts.** Statistics must not carry across a cut. A frame whose statistics are far from the
previous frame's, ``‖[μ_t, σ_t] − [μ_{t−1}, σ_{t−1}]‖ / ‖[μ_{t−1}, σ_{t−1}]‖ > cut_threshold`` (σ the
per-channel std; default 0.25), restarts the average from its own statistics; so does a change of frame
size. Calibrated at relu3_1 on the development clips (384 px): consecutive frames differ by at most 0.19
(the cockatoo's fastest frame; medians 0.006–0.035), frames of two different clips by at least 0.32 (median 0.40).

The style's statistics are not affected: they are computed once per run (:func:`~vidstyle.stylize.transforms.prepare_style`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vidstyle.errors import ShapeError
from vidstyle.options.spec import OptionValueError

__all__ = ["CUT_THRESHOLD", "ContentStatistics", "StatSmoother", "content_statistics", "statistics_distance",
           "blend_statistics"]

#: relative jump of the per-channel mean and std that counts as a scene cut (see the module docstring)
CUT_THRESHOLD = 0.25


@dataclass(frozen=True, slots=True)
class ContentStatistics:
    """One frame's feature statistics, float64.

    Attributes:
        mean: C per-channel mean.
        var: C per-channel variance (biased, divided by H·W).
        cov: C×C covariance (biased), for WCT; ``None`` for AdaIN (its diagonal is ``var``).
        size: the feature map's H×W (a size change restarts the average).
    """

    mean: torch.Tensor
    var: torch.Tensor
    cov: torch.Tensor | None = None
    size: tuple[int, int] = (0, 0)


def content_statistics(feats: torch.Tensor, *, covariance: bool) -> ContentStatistics:
    """The statistics of one image's features (C×H×W or 1×C×H×W), with the C×C covariance when
    ``covariance`` (WCT), else the per-channel variance only (AdaIN)."""
    if not (feats.ndim == 3 or (feats.ndim == 4 and feats.shape[0] == 1)):
        raise ShapeError(f"content statistics need one image's C×H×W features, got {tuple(feats.shape)}")
    f = feats[0] if feats.ndim == 4 else feats
    c, h, w = f.shape
    if covariance:  # exactly as wct computes a frame's own statistics
        from vidstyle.stylize.transforms import content_mean_cov

        mean, cov = content_mean_cov(f)
        return ContentStatistics(mean=mean, var=cov.diagonal().clone(), cov=cov, size=(h, w))
    x = f.reshape(c, -1).double()
    mean = x.mean(1)
    d = x - mean[:, None]
    return ContentStatistics(mean=mean, var=(d * d).mean(1), cov=None, size=(h, w))


def statistics_distance(a: ContentStatistics, b: ContentStatistics) -> float:
    """``‖[μ_a, σ_a] − [μ_b, σ_b]‖ / ‖[μ_b, σ_b]‖`` (σ = √var): how far ``a`` is from ``b``."""
    va = torch.cat([a.mean, a.var.clamp_min(0).sqrt()])
    vb = torch.cat([b.mean, b.var.clamp_min(0).sqrt()]).to(va)  # a restored state may sit on another device
    return float((va - vb).norm() / vb.norm().clamp_min(1e-12))


def blend_statistics(previous: ContentStatistics, current: ContentStatistics, *, smoothing: float) -> ContentStatistics:
    """``λ·previous + (1 − λ)·current`` for the mean, the variance and (when both have it) the covariance."""
    lam = float(smoothing)
    like = current.mean  # a restored state may sit on another device
    mean = lam * previous.mean.to(like) + (1 - lam) * current.mean
    var = lam * previous.var.to(like) + (1 - lam) * current.var
    cov = None
    if previous.cov is not None and current.cov is not None:
        cov = lam * previous.cov.to(like) + (1 - lam) * current.cov
    return ContentStatistics(mean=mean, var=var, cov=cov, size=current.size)


class StatSmoother:
    """The temporal state: an exponential moving average of content statistics, reset on scene cuts.

    ``update(stats)`` takes one frame's :class:`ContentStatistics` (in stream order) and returns the
    smoothed statistics the transform should use for that frame. ``last_cut`` says whether that frame
    restarted the average (the first frame, a cut, a size change). One instance per stream: its state
    lives here, never in a global.

    Args:
        smoothing: λ in [0, 1): the weight of the past (0 = per-frame statistics).
        cut_threshold: relative jump of ``[μ, σ]`` from the previous frame that restarts the average.
    """

    def __init__(self, *, smoothing: float, cut_threshold: float = CUT_THRESHOLD) -> None:
        if not (0.0 <= float(smoothing) < 1.0):
            raise OptionValueError("stat_smoothing", f"stat_smoothing must be in [0, 1), got {smoothing}")
        if not (float(cut_threshold) > 0.0):
            raise OptionValueError("cut_threshold", f"cut_threshold must be > 0, got {cut_threshold}")
        self.smoothing = float(smoothing)
        self.cut_threshold = float(cut_threshold)
        self.average: ContentStatistics | None = None
        self.previous: ContentStatistics | None = None
        self.last_cut = False

    def reset(self) -> None:
        """Forget the past: the next frame starts a new average."""
        self.average = None
        self.previous = None
        self.last_cut = False

    def update(self, stats: ContentStatistics) -> ContentStatistics:
        prev, avg = self.previous, self.average
        cut = (prev is None or avg is None or prev.size != stats.size or (prev.cov is None) != (stats.cov is None)
               or statistics_distance(stats, prev) > self.cut_threshold)
        self.previous = stats
        self.last_cut = cut
        self.average = stats if cut or avg is None else blend_statistics(avg, stats, smoothing=self.smoothing)
        return self.average

    # render resume (vidstyle.render.state): the state as tensors
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The state as named tensors (empty when there is none)."""
        out: dict[str, torch.Tensor] = {}
        for key, st in (("average", self.average), ("previous", self.previous)):
            if st is None:
                continue
            out[f"{key}.mean"], out[f"{key}.var"] = st.mean, st.var
            out[f"{key}.size"] = torch.tensor(st.size, dtype=torch.int64)
            if st.cov is not None:
                out[f"{key}.cov"] = st.cov
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore a state written by :meth:`state_tensors`."""
        self.reset()
        for key in ("average", "previous"):
            if f"{key}.mean" not in tensors:
                continue
            size = tuple(int(v) for v in tensors[f"{key}.size"].tolist())
            st = ContentStatistics(mean=tensors[f"{key}.mean"].double(), var=tensors[f"{key}.var"].double(),
                                   cov=tensors[f"{key}.cov"].double() if f"{key}.cov" in tensors else None,
                                   size=size)  # type: ignore[arg-type]
            setattr(self, key, st)
