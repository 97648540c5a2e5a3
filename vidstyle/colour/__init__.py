"""Colour maths in one place: BT.601 luma (numpy and torch), YUV, luminance-only transfer and colour matching.

``Y = 0.299 R + 0.587 G + 0.114 B`` (:data:`LUMA_WEIGHTS`) is the luminance everywhere in vidstyle:
the sharpness metric, the photometric flow check, the stabiliser's detail measure and the colour
preservation of the optimisation back end. Numpy functions take ``H×W×3`` images; torch functions
``N×3×H×W`` tensors in [0, 1]. Importing this module needs neither torch nor OpenCV; the torch luma
is :func:`kornia.color.rgb_to_grayscale` (same weights; measured faster than a weighted sum of
channel slices on a CPU, docs/kornia.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vidstyle.errors import ShapeError

if TYPE_CHECKING:
    import torch

__all__ = [
    "LUMA_WEIGHTS",
    "luma",
    "luma_torch",
    "luminance_image",
    "match_color",
    "preserve_luminance",
    "rgb_to_yuv",
]

#: BT.601 luma weights of R, G, B
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
#: U = 0.492 (B − Y), V = 0.877 (R − Y) (analogue BT.601 YUV)
_U_SCALE, _V_SCALE = 0.492, 0.877

_LUMA_ROW = np.array([LUMA_WEIGHTS], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- numpy


def luma(image: np.ndarray) -> np.ndarray:
    """``H×W`` float32 BT.601 luminance in 0..1 of an ``H×W×3`` RGB or ``H×W`` / ``H×W×1`` grey image
    (uint8, uint16 or float; integers are scaled to 0..1 by their full range)."""
    import cv2

    from vidstyle.frame import to_float32

    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.ascontiguousarray(to_float32(image.reshape(image.shape[0], image.shape[1], 1))[..., 0])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"luma: image must be H×W×3 RGB or H×W grey, got shape {image.shape}")
    x = np.ascontiguousarray(to_float32(image), dtype=np.float32)
    return cv2.transform(x, _LUMA_ROW)


# ----------------------------------------------------------------------------------------------- torch


def _check_nchw(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ShapeError(f"{what}: expected an N×3×H×W tensor, got shape {tuple(x.shape)}")


def luma_torch(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → N×1×H×W BT.601 luminance (differentiable; any float dtype and device)."""
    import kornia

    _check_nchw(x, "luma_torch")
    return kornia.color.rgb_to_grayscale(x)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → YUV (BT.601: Y = 0.299R + 0.587G + 0.114B, U = 0.492(B − Y), V = 0.877(R − Y))."""
    import torch

    y = luma_torch(x)
    return torch.cat([y, _U_SCALE * (x[:, 2:3] - y), _V_SCALE * (x[:, 0:1] - y)], dim=1)


def preserve_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the content's chroma (Gatys et al. 2017, luminance-only transfer).

    In YUV, adding the same amount to R, G and B changes Y only, so the result is
    ``content + (Y_stylized − Y_content)`` per channel, clipped to [0, 1].
    """
    return (content + (luma_torch(stylized) - luma_torch(content))).clamp(0.0, 1.0)


def luminance_image(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W grey picture whose three channels are the luminance of ``x``."""
    return luma_torch(x).expand(-1, 3, -1, -1)


def match_color(style: torch.Tensor, content: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Recolour ``style`` so its colour mean and covariance are the content's (Gatys et al. 2017).

    The linear map ``x' = A(x − μ_s) + μ_c`` with ``A = Σ_c^{1/2} Σ_s^{−1/2}`` (symmetric square roots,
    the "image analogies" variant), clipped to [0, 1]. Both N×3×H×W in [0, 1] (the first image of each
    batch is used).
    """
    import torch

    _check_nchw(style, "match_color: style")
    _check_nchw(content, "match_color: content")

    def stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = img[0].reshape(3, -1).double()
        mu = p.mean(1, keepdim=True)
        d = p - mu
        cov = d @ d.T / max(p.shape[1] - 1, 1) + eps * torch.eye(3, dtype=p.dtype, device=p.device)
        return mu, cov

    def msqrt(m: torch.Tensor, power: float) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag(vals.clamp_min(eps) ** power) @ vecs.T

    mu_s, cov_s = stats(style)
    mu_c, cov_c = stats(content)
    a = msqrt(cov_c, 0.5) @ msqrt(cov_s, -0.5)
    p = style[0].reshape(3, -1).double()
    out = a @ (p - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype).clamp(0.0, 1.0)
