"""Quality metrics for stylized video: temporal warping error and texture sharpness (docs/architecture.md, "Metrics").

**Warping error** (Lai et al. 2018, "Learning Blind Video Temporal Consistency"), for a stylized
video ``O`` of an input video ``I``, lag ``k`` (1 = short-term):

    E_t = Σ_x c_t(x) · ‖O_t(x) − warp(O_{t+k}, w_{t→t+k})(x)‖² / Σ_x c_t(x)
    E   = mean over t = 0 … T−k−1 of E_t

with RGB in [0, 1], ``‖·‖²`` summed over the three channels, ``w_{t→t+k}`` the flow from ``I_t`` to
``I_{t+k}`` (``I_t(x) ≈ I_{t+k}(x + w(x))``) and ``c_t`` the consistency mask of frame t with respect to
t+k (:func:`vidstyle.flow.consistency.consistency_mask`), both computed on the **input** video —
so two stylizations of one input are compared on the same flows (:func:`warp_reference`).

A low warping error alone proves nothing: a blurred or frozen video has one too. Report it next to a
texture measure: :func:`sharpness` (mean |Laplacian| of the luminance) and the Gram style loss
(:mod:`vidstyle.fidelity`: style ratio, texture ratio and relative content loss against a painting,
which :func:`compare_videos` reports when given a :class:`~vidstyle.fidelity.StyleReference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.options.spec import OptionValueError

if TYPE_CHECKING:
    from vidstyle.fidelity import StyleReference, StyleScores

__all__ = [
    "WarpReference",
    "WarpingErrorResult",
    "warp_reference",
    "warping_error",
    "sharpness",
    "VideoScores",
    "compare_videos",
    "DEFAULT_METRIC_FLOW",
    "MAX_STYLE_FRAMES",
    "style_frames",
]

DEFAULT_METRIC_FLOW = "dis-medium"
#: by default :func:`compare_videos` scores the style of at most this many frames
MAX_STYLE_FRAMES = 30


@dataclass(frozen=True)
class WarpReference:
    """Flows and masks of an input video for one lag, reusable across stylizations.

    Attributes:
        lag: frame distance k.
        flows: ``T−k`` flows ``2×H×W``, ``flows[t]`` maps input frame t to frame t+k.
        masks: ``T−k`` consistency masks ``H×W`` (1 = frame t's pixel is visible in frame t+k).
        size: ``(height, width)`` of the frames.
    """

    lag: int
    flows: list[np.ndarray]
    masks: list[np.ndarray]
    size: tuple[int, int]

    @property
    def frames(self) -> int:
        """Number of frames of the video the reference was computed on."""
        return len(self.flows) + self.lag


@dataclass(frozen=True)
class WarpingErrorResult:
    """Result of :func:`warping_error`.

    Attributes:
        mean: the warping error ``E`` (mean of the finite per-pair errors; NaN if none).
        per_frame: ``E_t`` for t = 0 … T−k−1 (NaN where no pixel is consistent).
        consistent_fraction: share of consistent pixels of each pair (how much of frame t counts).
        lag: the frame distance k.
    """

    mean: float
    per_frame: np.ndarray
    consistent_fraction: np.ndarray
    lag: int
    extra: dict = field(default_factory=dict)


def _as_rgb01(image: np.ndarray, *, what: str) -> np.ndarray:
    from vidstyle.frame import to_float32

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"{what} must be an H×W×3 RGB image, got shape {image.shape}")
    try:
        return np.clip(to_float32(image), 0.0, 1.0)
    except TypeError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None


def _check_lag(lag: int, frames: int) -> int:
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise InvalidOptionError(f"lag must be an integer ≥ 1, got {lag!r}")
    if frames <= lag:
        raise InvalidInputError(
            f"a video of {frames} frame(s) has no pair of frames {lag} apart; use a longer clip or a smaller lag"
        )
    return int(lag)


def warp_reference(
    inputs: Sequence[np.ndarray],
    *,
    lag: int = 1,
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray] | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WarpReference:
    """Flows ``I_t → I_{t+k}`` and consistency masks of an input video (for :func:`warping_error`).

    ``estimator``: a flow estimator, a name for :func:`vidstyle.flow.make_flow_estimator`, or ``None``
    for :data:`DEFAULT_METRIC_FLOW`. ``progress(done, total)`` is called after each pair.
    """
    from vidstyle.flow.consistency import consistency_mask
    from vidstyle.flow.estimators import flow_pair, make_flow_estimator

    lag = _check_lag(lag, len(inputs))
    if estimator is None or isinstance(estimator, str):
        estimator = make_flow_estimator(estimator or DEFAULT_METRIC_FLOW)
    size = tuple(np.asarray(inputs[0]).shape[:2])
    flows, masks = [], []
    total = len(inputs) - lag
    for t in range(total):
        a, b = np.asarray(inputs[t]), np.asarray(inputs[t + lag])
        for i, img in ((t, a), (t + lag, b)):
            if img.shape[:2] != size:
                raise InvalidInputError(
                    f"input frame {i} is {img.shape[1]}×{img.shape[0]} but frame 0 is {size[1]}×{size[0]}; "
                    "all frames must have one size"
                )
        to_next, to_this = flow_pair(estimator, a, b)  # a→b, b→a
        flows.append(to_next)
        masks.append(consistency_mask(to_this, to_next))  # mask of frame t w.r.t. t+k
        if progress is not None:
            progress(t + 1, total)
    return WarpReference(lag=lag, flows=flows, masks=masks, size=size)  # type: ignore[arg-type]


def warping_error(
    stylized: Sequence[np.ndarray],
    *,
    inputs: Sequence[np.ndarray] | None = None,
    lag: int = 1,
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray] | str | None = None,
    reference: WarpReference | None = None,
) -> WarpingErrorResult:
    """Temporal warping error of ``stylized`` (Lai et al. 2018; formula in the module docstring).

    Give either ``inputs`` (the input video the flows are computed on, with ``lag`` and
    ``estimator``) or a precomputed ``reference`` from :func:`warp_reference`. Frames are ``H×W×3`` RGB
    (uint8, uint16 or float in 0..1), stylized and input of the same size and count.
    """
    from vidstyle.flow.warping import warp_numpy

    if reference is None:
        if inputs is None:
            raise InvalidOptionError("warping_error needs inputs= (the input video) or reference=")
        if len(inputs) != len(stylized):
            raise InvalidInputError(
                f"stylized video has {len(stylized)} frames but the input has {len(inputs)}; "
                "compare videos of the same length"
            )
        _check_lag(lag, len(stylized))
        if len(stylized) and np.asarray(stylized[0]).shape[:2] != np.asarray(inputs[0]).shape[:2]:
            s, i = np.asarray(stylized[0]).shape, np.asarray(inputs[0]).shape
            raise InvalidInputError(
                f"stylized frames are {s[1]}×{s[0]} but input frames are {i[1]}×{i[0]}; resize them to one size first"
            )
        reference = warp_reference(inputs, lag=lag, estimator=estimator)
    elif inputs is not None:
        raise InvalidOptionError("warping_error: pass inputs= or reference=, not both")
    lag = reference.lag
    if len(stylized) != reference.frames:
        raise InvalidInputError(
            f"stylized video has {len(stylized)} frames but the reference was computed on {reference.frames}"
        )
    errors = np.full(len(reference.flows), np.nan, np.float64)
    fractions = np.zeros(len(reference.flows), np.float64)
    for t, (flow, mask) in enumerate(zip(reference.flows, reference.masks)):
        o_t = _as_rgb01(stylized[t], what=f"stylized frame {t}")
        o_n = _as_rgb01(stylized[t + lag], what=f"stylized frame {t + lag}")
        if o_t.shape[:2] != reference.size or o_n.shape[:2] != reference.size:
            raise InvalidInputError(
                f"stylized frame {t} is {o_t.shape[1]}×{o_t.shape[0]} but the input frames are "
                f"{reference.size[1]}×{reference.size[0]}; resize them to one size first"
            )
        warped = warp_numpy(o_n, flow)
        sq = ((o_t - warped) ** 2).sum(axis=2, dtype=np.float64)
        n = float(mask.sum(dtype=np.float64))
        fractions[t] = n / mask.size
        if n > 0:
            errors[t] = float((sq * mask).sum()) / n
    finite = errors[np.isfinite(errors)]
    mean = float(finite.mean()) if finite.size else float("nan")
    return WarpingErrorResult(mean=mean, per_frame=errors, consistent_fraction=fractions, lag=lag)


def sharpness(image: np.ndarray) -> float:
    """Mean absolute Laplacian of the luminance (BT.601), image in 0..1 units.

    The 4-neighbour Laplacian ``[[0,1,0],[1,−4,1],[0,1,0]]`` with reflected borders; higher = more
    fine texture. Accepts ``H×W×3`` RGB or ``H×W`` grey, uint8/uint16/float.
    """
    import cv2

    from vidstyle.colour import luma

    image = np.asarray(image)
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise InvalidInputError(f"sharpness: image must be H×W×3 RGB or H×W grey, got shape {image.shape}")
    y = luma(image)
    lap = cv2.Laplacian(np.ascontiguousarray(y, dtype=np.float32), cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(np.abs(lap).mean(dtype=np.float64))


@dataclass(frozen=True)
class VideoScores:
    """Scores of one video (a stylization, or the input itself) against one input video.

    Attributes:
        warping: warping-error result per lag (``{1: ..., k: ...}``).
        sharpness: mean :func:`sharpness` over the frames.
        style: style fidelity against the painting (:class:`~vidstyle.fidelity.StyleScores`, field-wise
            mean over the sampled frames, each compared with the input frame of the same index), or
            ``None`` when no painting was given.
        style_frames: indices of the frames whose style was scored.
    """

    warping: dict[int, WarpingErrorResult]
    sharpness: float
    style: "StyleScores | None" = None
    style_frames: tuple[int, ...] = ()


def style_frames(n: int, every: int | None = None) -> list[int]:
    """Indices of the frames of an ``n``-frame video whose style is scored: every ``every``-th frame
    from 0; by default the step that keeps at most :data:`MAX_STYLE_FRAMES` frames."""
    if every is None:
        every = max(1, -(-n // MAX_STYLE_FRAMES))
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise OptionValueError("style_every", f"style_every must be an integer ≥ 1, got {every!r}")
    return list(range(0, n, int(every)))


def compare_videos(
    inputs: Sequence[np.ndarray],
    candidates: "dict[str, Sequence[np.ndarray]]",
    *,
    lags: Sequence[int] = (1,),
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray] | str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    style: "StyleReference | None" = None,
    style_every: int | None = None,
) -> dict[str, VideoScores]:
    """Score several stylizations of one input video on the **same** flows and masks.

    Returns ``{name: VideoScores}`` for every candidate (and nothing for the input unless it is
    passed as a candidate). Lags longer than the video are skipped. ``progress(label, done,
    total)`` reports the flow computation and the style scoring.

    With ``style`` (a :class:`~vidstyle.fidelity.StyleReference` of the painting), each candidate's
    style loss, style ratio, texture ratio and relative content loss are scored too, on every
    ``style_every``-th frame (default: at most :data:`MAX_STYLE_FRAMES` frames, :func:`style_frames`).
    """
    from vidstyle.flow.estimators import make_flow_estimator

    if estimator is None or isinstance(estimator, str):
        estimator = make_flow_estimator(estimator or DEFAULT_METRIC_FLOW)
    n = len(inputs)
    size = np.asarray(inputs[0]).shape[:2] if n else None
    for name, frames in candidates.items():
        if len(frames) != n:
            raise InvalidInputError(
                f"{name} has {len(frames)} frames but the input has {n}; compare videos of the same length"
            )
        shape = np.asarray(frames[0]).shape[:2] if n else None
        if shape != size:
            raise InvalidInputError(
                f"{name} frames are {shape[1]}×{shape[0]} but the input frames are {size[1]}×{size[0]}; "
                "compare videos of the same size"
            )
    sampled = style_frames(n, style_every) if style is not None else []
    refs: dict[int, WarpReference] = {}
    for lag in dict.fromkeys(lags):
        if n <= lag:
            continue
        cb = (lambda d, t, _l=lag: progress(f"flow lag {_l}", d, t)) if progress else None
        refs[lag] = warp_reference(inputs, lag=lag, estimator=estimator, progress=cb)
    out: dict[str, VideoScores] = {}
    for name, frames in candidates.items():
        warping = {lag: warping_error(frames, reference=ref) for lag, ref in refs.items()}
        sharp = float(np.mean([sharpness(f) for f in frames])) if n else float("nan")
        fidelity = None
        if style is not None:
            from vidstyle.fidelity import mean_scores

            per = []
            for j, i in enumerate(sampled):
                per.append(style(frames[i], inputs[i]))
                if progress is not None:
                    progress(f"style {name}", j + 1, len(sampled))
            fidelity = mean_scores(per)
        out[name] = VideoScores(warping=warping, sharpness=sharp, style=fidelity, style_frames=tuple(sampled))
    return out
