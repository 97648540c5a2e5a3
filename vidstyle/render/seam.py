"""Measuring chunk seams: is a border between two chunks visible?

A seam shows as a temporal jump between the last frame of one chunk and the first of the next.
:func:`seam_report` measures it with the temporal warping error (Lai et al. 2018,
:mod:`vidstyle.metrics`): the error ``E_t`` of each pair of frames (t, t+1), flows and masks on
the **input**. It reports

* ``border``: mean ``E_t`` over the border pairs (last frame of chunk c−1, first of chunk c),
* ``elsewhere``: mean ``E_t`` over every other pair of the chunked render,
* ``border_single``: the same border pairs in a single-process render of the same shot, when given
  (the honest baseline: some pairs are harder than others whatever the chunking),
* the largest and mean absolute difference to the single-process render (8-bit levels, 0–255).

A seam is invisible when ``border / border_single`` is close to 1 (and ``border / elsewhere`` is
in the range of the ordinary frame-to-frame variation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SeamReport", "seam_report", "border_positions"]


@dataclass(frozen=True)
class SeamReport:
    """See the module docstring. Errors are warping errors (RGB in [0, 1], squared, summed over channels)."""

    border: float
    elsewhere: float
    border_single: float | None
    elsewhere_single: float | None
    max_abs_diff: float | None
    mean_abs_diff: float | None
    border_pairs: list[int] = field(default_factory=list)
    per_pair: list[float] = field(default_factory=list)

    @property
    def ratio_elsewhere(self) -> float:
        return self.border / self.elsewhere if self.elsewhere > 0 else float("nan")

    @property
    def ratio_single(self) -> float | None:
        if self.border_single is None or self.border_single <= 0:
            return None
        return self.border / self.border_single


def border_positions(chunk_firsts: Sequence[int], numbers: Sequence[int]) -> list[int]:
    """Positions t (in ``numbers``) of the pairs (t, t+1) that cross a chunk border."""
    pos = {n: i for i, n in enumerate(numbers)}
    return [pos[f] - 1 for f in chunk_firsts if pos.get(f, 0) > 0]


def _to_levels(image: np.ndarray) -> np.ndarray:
    from vidstyle.frame import to_float32

    return np.clip(to_float32(np.asarray(image)), 0.0, 1.0) * 255.0


def seam_report(
    *,
    inputs: Sequence[np.ndarray],
    chunked: Sequence[np.ndarray],
    borders: Sequence[int],
    single: Sequence[np.ndarray] | None = None,
    estimator: str = "dis-medium",
) -> SeamReport:
    """Measure the seams of a chunked render (``borders``: pair positions from :func:`border_positions`)."""
    from vidstyle.metrics import warp_reference, warping_error

    ref = warp_reference(list(inputs), lag=1, estimator=estimator)
    err = warping_error(list(chunked), reference=ref).per_frame
    mask = np.zeros(len(err), bool)
    for t in borders:
        if 0 <= t < len(err):
            mask[t] = True

    def mean(values: np.ndarray) -> float:
        v = values[np.isfinite(values)]
        return float(v.mean()) if v.size else float("nan")

    border = mean(err[mask])
    elsewhere = mean(err[~mask])
    border_single = elsewhere_single = max_diff = mean_diff = None
    if single is not None:
        err_s = warping_error(list(single), reference=ref).per_frame
        border_single = mean(err_s[mask])
        elsewhere_single = mean(err_s[~mask])
        diffs = [np.abs(_to_levels(a) - _to_levels(b)) for a, b in zip(chunked, single)]
        max_diff = float(max(d.max() for d in diffs))
        mean_diff = float(np.mean([d.mean() for d in diffs]))
    return SeamReport(
        border=border,
        elsewhere=elsewhere,
        border_single=border_single,
        elsewhere_single=elsewhere_single,
        max_abs_diff=max_diff,
        mean_abs_diff=mean_diff,
        border_pairs=[int(t) for t in borders],
        per_pair=[float(e) for e in err],
    )
