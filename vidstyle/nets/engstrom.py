"""The exact ``engstrom2016`` architecture (Logan Engstrom's fast-style-transfer networks).

Described in ``shared/weights/README.md``: Johnson et al. layout, convs without bias, instance
norm (eps 1e-3) after each, TensorFlow "SAME" zero padding, transposed convs for upsampling, input
RGB in [0, 255], output ``tanh(norm_out(conv_out(x)))·150 + 127.5`` clamped to [0, 255]. :class:`Engstrom2016Net`
wraps it to the project convention (RGB in [0, 1] in and out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.nets.transformer import check_image_batch

__all__ = ["Engstrom2016Net", "same_pad"]

_EPS = 1e-3


def same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """Zero-pad like TensorFlow "SAME" for a k×k conv of stride s (extra pixel bottom/right)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.k, self.s = k, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(same_pad(x, self.k, self.s), self.weight, stride=self.s)


class _Deconv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cin, cout, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = F.conv_transpose2d(x, self.weight, stride=self.s)
        return y[..., : h * self.s, : w * self.s]


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True, eps=_EPS)


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = _Conv(c, c, 3, 1), _norm(c)
        self.conv2, self.norm2 = _Conv(c, c, 3, 1), _norm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))


class Engstrom2016Net(nn.Module):
    """Engstrom's fast style network; RGB [0, 1] in and out (scaled to [0, 255] inside)."""

    input_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.norm1 = _Conv(3, 32, 9, 1), _norm(32)
        self.conv2, self.norm2 = _Conv(32, 64, 3, 2), _norm(64)
        self.conv3, self.norm3 = _Conv(64, 128, 3, 2), _norm(128)
        for i in range(1, 6):
            self.add_module(f"res{i}", _Res(128))
        self.deconv1, self.denorm1 = _Deconv(128, 64), _norm(64)
        self.deconv2, self.denorm2 = _Deconv(64, 32), _norm(32)
        self.conv_out, self.norm_out = _Conv(32, 3, 9, 1), _norm(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        h, w = x.shape[-2:]
        if h <= 4 and w <= 4:  # the 1/4-resolution maps would be 1×1, which instance norm rejects
            x = F.pad(x, (0, 8 - w, 0, 8 - h), mode="replicate")
        y = x * 255.0
        y = F.relu(self.norm1(self.conv1(y)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = F.relu(self.norm3(self.conv3(y)))
        for i in range(1, 6):
            y = getattr(self, f"res{i}")(y)
        y = F.relu(self.denorm1(self.deconv1(y)))
        y = F.relu(self.denorm2(self.deconv2(y)))
        y = torch.tanh(self.norm_out(self.conv_out(y))) * 150.0 + 127.5
        y = y[..., :h, :w]
        return (y.clamp(0.0, 255.0)) / 255.0
