"""Small separable filters as weighted sums of shifted views.

On a CPU a 1–3-channel ``conv2d`` runs ~30× below a plain elementwise pass (oneDNN is built for many
channels): 16 ms vs 0.5 ms for a Gaussian blur of a 640×360 RGB frame. These filters are exact, work
with autograd, any dtype and device, and any N×C×H×W tensor.

A float32 CPU tensor that needs no gradient goes through OpenCV's ``sepFilter2D`` plane by plane instead,
with the same replicate borders: one SIMD pass where the shifted views take ``2·taps`` passes over memory
(the 5-tap output filter of the ``tiny`` net on a 640×360 RGB frame, one thread: 2.8 ms → 0.4 ms). The result
equals the shifted-view sum up to float rounding (~1e-7).
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
    if _opencv_path(x):
        return _opencv_filter(x, taps)
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


def _opencv_path(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.ndim >= 2 and x.numel() > 0
            and not (x.requires_grad and torch.is_grad_enabled()))


def _opencv_filter(x: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    import cv2
    import numpy as np

    h, w = x.shape[-2:]
    src = x.detach().contiguous().reshape(-1, h, w)
    out = torch.empty_like(src)
    k = np.asarray(taps, dtype=np.float32)
    a, o = src.numpy(), out.numpy()
    for i in range(a.shape[0]):
        cv2.sepFilter2D(a[i], cv2.CV_32F, k, k, dst=o[i], borderType=cv2.BORDER_REPLICATE)
    return out.reshape(x.shape)
