"""Small separable filters as weighted sums of shifted views.

On a CPU a 1–3-channel ``conv2d`` runs ~30× below a plain elementwise pass (oneDNN is built for many
channels): 16 ms vs 0.5 ms for a Gaussian blur of a 640×360 RGB frame. These filters are exact, work
with autograd, any dtype and device, and any N×C×H×W tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["separable_filter"]


def separable_filter(x: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """``x`` filtered along rows and columns by the odd-length 1-D kernel ``taps`` (centred),
    replicate borders; same shape as ``x``."""
    n = len(taps)
    if n % 2 == 0:
        raise ValueError(f"separable_filter needs an odd number of taps, got {n}")
    r = n // 2
    h, w = x.shape[-2:]
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    rows = xp[..., :, 0:w] * taps[0]
    for i in range(1, n):
        rows = rows.add_(xp[..., :, i : i + w], alpha=taps[i])
    out = rows[..., 0:h, :] * taps[0]
    for i in range(1, n):
        out = out.add_(rows[..., i : i + h, :], alpha=taps[i])
    return out
