"""Backward warping of images by optical flow.

``warp(image, flow)(x) = image(x + flow(x))``: for every pixel ``x`` of the *output* frame, fetch the
input image where ``flow`` says that pixel came from (bilinear interpolation, border padding: samples
outside the image take the nearest edge value). With ``flow = w_b(t)`` (frame t back to t−1) this
moves the previous output ``S_{t−1}`` into frame ``t`` (docs/architecture.md, "Temporal consistency").

Two implementations of the same operation:

* :func:`warp` / :class:`Warp` — torch, ``N×C×H×W`` images and ``N×2×H×W`` flows, differentiable
  with respect to both (``grid_sample``, ``align_corners=True``), on whatever device/dtype the inputs
  have.
* :func:`warp_numpy` — numpy/OpenCV (``cv2.remap``), ``H×W×C`` or ``H×W`` images and a ``2×H×W``
  flow, for the inference path. ``cv2.remap`` quantises the bilinear weights to 1/32 pixel, so it
  differs from :func:`warp` by at most ~1/64 of the local intensity step.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidstyle.errors import InvalidOptionError, ShapeError

__all__ = ["warp", "Warp", "warp_numpy", "flow_to_grid", "remap_coordinates"]

_PADDING = ("border", "zeros", "reflection")
_MODES = ("bilinear", "nearest", "bicubic")


def _check_pair(image: torch.Tensor, flow: torch.Tensor) -> None:
    if image.ndim != 4:
        raise ShapeError(
            f"warp: image must be N×C×H×W, got shape {tuple(image.shape)}; add a batch dim with image[None]"
        )
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ShapeError(f"warp: flow must be N×2×H×W, got shape {tuple(flow.shape)}; add a batch dim with flow[None]")
    if flow.shape[0] != image.shape[0] or flow.shape[2:] != image.shape[2:]:
        raise ShapeError(
            f"warp: flow {tuple(flow.shape)} does not match image {tuple(image.shape)} "
            "(same N, H, W needed); resize the flow and scale its vectors"
        )
    if not image.is_floating_point() or not flow.is_floating_point():
        raise ShapeError(
            f"warp: image and flow must be floating point, got {image.dtype} and {flow.dtype}; convert with .float()"
        )
    if image.device != flow.device:
        raise ShapeError(f"warp: image on {image.device} but flow on {flow.device}; move them to one device")


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Turn an ``N×2×H×W`` pixel flow into a ``grid_sample`` grid (``N×H×W×2``, align_corners=True).

    Pixel ``x`` (0..W−1) maps to normalised ``2x/(W−1) − 1``; a 1-pixel-wide axis maps to 0.
    """
    n, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    gx = xs.view(1, 1, w) + flow[:, 0]
    gy = ys.view(1, h, 1) + flow[:, 1]
    gx = gx * (2.0 / (w - 1)) - 1.0 if w > 1 else gx * 0.0
    gy = gy * (2.0 / (h - 1)) - 1.0 if h > 1 else gy * 0.0
    return torch.stack((gx, gy), dim=-1)


def warp(
    image: torch.Tensor,
    flow: torch.Tensor,
    *,
    padding_mode: str = "border",
    mode: str = "bilinear",
) -> torch.Tensor:
    """Backward-warp ``image`` (N×C×H×W) by ``flow`` (N×2×H×W, pixels): ``out(x) = image(x + flow(x))``.

    The flow is cast to the image dtype. Differentiable with respect to image and flow.
    """
    if padding_mode not in _PADDING:
        raise InvalidOptionError(f"warp: padding_mode {padding_mode!r} unknown; use one of {', '.join(_PADDING)}")
    if mode not in _MODES:
        raise InvalidOptionError(f"warp: mode {mode!r} unknown; use one of {', '.join(_MODES)}")
    _check_pair(image, flow)
    grid = flow_to_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


class Warp(nn.Module):
    """Module form of :func:`warp`: ``Warp()(image, flow)``; no parameters."""

    def __init__(self, *, padding_mode: str = "border", mode: str = "bilinear") -> None:
        super().__init__()
        if padding_mode not in _PADDING:
            raise InvalidOptionError(f"Warp: padding_mode {padding_mode!r} unknown; use one of {', '.join(_PADDING)}")
        if mode not in _MODES:
            raise InvalidOptionError(f"Warp: mode {mode!r} unknown; use one of {', '.join(_MODES)}")
        self.padding_mode = padding_mode
        self.mode = mode

    def forward(self, image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return warp(image, flow, padding_mode=self.padding_mode, mode=self.mode)

    def extra_repr(self) -> str:
        return f"padding_mode={self.padding_mode!r}, mode={self.mode!r}"


def remap_coordinates(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling maps ``(x + u, y + v)`` for ``cv2.remap`` from a ``2×H×W`` flow."""
    _, h, w = flow.shape
    map_x = np.add(flow[0], np.arange(w, dtype=np.float32)[None, :], dtype=np.float32)
    map_y = np.add(flow[1], np.arange(h, dtype=np.float32)[:, None], dtype=np.float32)
    return map_x, map_y


def warp_numpy(image: np.ndarray, flow: np.ndarray, *, border: str = "replicate") -> np.ndarray:
    """Backward-warp an ``H×W×C`` (or ``H×W``) image by a ``2×H×W`` flow with ``cv2.remap``.

    Bilinear; ``border="replicate"`` (same as :func:`warp`'s border padding) or ``"constant"`` (zeros).
    Returns the image's dtype (uint8, uint16, float32; float64 is computed in float32).
    """
    import cv2

    image = np.asarray(image)
    flow = np.asarray(flow)
    if image.ndim not in (2, 3):
        raise ShapeError(f"warp_numpy: image must be H×W×C or H×W, got shape {image.shape}")
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ShapeError(f"warp_numpy: flow must be 2×H×W, got shape {flow.shape}; transpose H×W×2 flows first")
    if flow.shape[1:] != image.shape[:2]:
        raise ShapeError(
            f"warp_numpy: flow {flow.shape[1]}×{flow.shape[2]} does not match image "
            f"{image.shape[0]}×{image.shape[1]}; resize the flow and scale its vectors"
        )
    modes = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
    if border not in modes:
        raise InvalidOptionError(f"warp_numpy: border {border!r} unknown; use 'replicate' or 'constant'")
    src = image
    if src.dtype == np.float64 or src.dtype == np.float16:
        src = src.astype(np.float32)
    elif src.dtype not in (np.uint8, np.uint16, np.float32):
        raise ShapeError(f"warp_numpy: unsupported image dtype {image.dtype}; use uint8, uint16 or float32")
    map_x, map_y = remap_coordinates(flow)
    channels = 1 if src.ndim == 2 else src.shape[2]
    if channels <= 4:
        out = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=modes[border], borderValue=0)
    else:  # cv2.remap handles at most 4 channels
        out = np.stack(
            [
                cv2.remap(
                    np.ascontiguousarray(src[..., c]),
                    map_x,
                    map_y,
                    cv2.INTER_LINEAR,
                    borderMode=modes[border],
                    borderValue=0,
                )
                for c in range(channels)
            ],
            axis=-1,
        )
    if src.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
        out = out[..., None]
    return out
