"""Inference-time re-parametrisation of :class:`~vidstyle.nets.transformer.TransformerNet`.

The decoder's resize-then-conv blocks upsample ×2 (nearest) and then run a 3×3 convolution at the
full resolution. On a CPU that is the most expensive part of the small nets: for ``tiny`` at 640×360
the last block's upsample, reflection pad, 24-channel depthwise conv and pointwise conv over
230 k pixels take more than half of the frame's time, although they hold a tenth of its FLOPs (the
ops are memory-bound). The same result is computed exactly at the *low* resolution:

* a 3×3 conv on a nearest-upsampled image is, for each of the four output phases (row parity a,
  column parity b), a conv of the low-resolution image whose taps are sums of the original taps:
  along one axis phase 0 sees offsets (−1, 0, 0) → low-resolution taps ``[k0, k1 + k2, 0]`` and
  phase 1 sees (0, 0, +1) → ``[0, k0 + k1, k2]``;
* the reflection pad by 1 of the upsampled image equals a replicate pad by 1 of the low-resolution
  image (row −1 of the upsampled image is row 1, a copy of low-resolution row 0);
* depthwise + pointwise convs are folded into one dense kernel ``W[o, c] = P[o, c] · D[c]`` (the
  depthwise conv has no bias), which a CPU runs far more efficiently than a depthwise conv;
* each phase kernel is zero outside a 2×2 window (rows/columns 0–1 for phase 0, 1–2 for phase 1), so
  the block runs as one 2×2 conv (:func:`upsample_conv_weight_2x2`) whose output has one more row and
  column; phase (a, b) is its slice shifted by (a, b). That is 4 instead of 9 taps per phase — 2.25×
  fewer multiply-adds than the trained block — and the four phases are interleaved into the
  full-resolution map (what :func:`torch.nn.functional.pixel_shuffle` does, plus the shift);
* a large output conv (the 9×9 head of ``full``) runs on the 2×2 space-to-depth image
  (:class:`_SpaceToDepthHead`), and after the last up-block that image is built from the phases
  directly, without the full-resolution map in between (:class:`_FusedUpHead`);
* the instance norms of one image run as batch norm in training mode (:class:`_InstanceNorm`).

Measured on `full` at 640×360 (2-core CPU, BENCHMARKS.md): 560 → 373 ms per frame for the 2×2 phase
convs, the head fusion and the norms together, 1.1× the network's compute floor.

:func:`fuse_for_inference` builds a :class:`FusedTransformerNet` from a trained net; its output
equals the net's (eval mode) to float rounding (tested to 1e-5), for any input size. It is what
:class:`vidstyle.stylize.FeedForwardStylizer` runs; training uses the plain net.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError
from vidstyle.nets.transformer import (
    TransformerNet,
    _Up,
    check_image_batch,
    pad_to_multiple,
)

__all__ = [
    "FusedTransformerNet",
    "fuse_for_inference",
    "space_to_depth_conv_weight",
    "upsample_conv_weight",
    "upsample_conv_weight_2x2",
    "with_fast_instance_norms",
]

# Fold a separable up-block into a dense low-resolution conv only while the dense conv needs at most
# this many times the separable conv's multiply-adds: measured on a 2-core AVX-512 CPU (BENCHMARKS.md,
# "Feed-forward speed"), oneDNN runs small dense convs ~10× more efficiently than depthwise ones.
MAX_DENSE_RATIO = 8.0

# Run the output conv on the space-to-depth image from this kernel size on: measured (BENCHMARKS.md), the
# 9×9 head of ``full`` goes from ~90 to ~30 ms at 640×360 (whole net 495 → 442 ms); the 5×5 head of ``small``
# and the 3×3 head of ``tiny`` are no faster that way.
MIN_HEAD_KERNEL = 7

# Rows: low-resolution offsets (−1, 0, +1); columns: taps of the full-resolution 3×3 kernel.
_PHASE_TAPS = (
    ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 0.0)),  # output row/column parity 0
    ((0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)),  # parity 1
)


def upsample_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """Kernel of ``conv3x3(upsample_nearest_x2(x))`` as a conv of ``x``.

    Args:
        weight: ``O×C×3×3`` kernel applied after a nearest ×2 upsample (with a reflection pad of 1).

    Returns:
        ``(4·O)×C×3×3`` kernel for the low-resolution image with a replicate pad of 1; output channel
        ``4·o + 2·a + b`` holds the full-resolution pixels of row parity ``a`` and column parity ``b``
        (the layout :func:`torch.nn.functional.pixel_shuffle` expects).
    """
    if weight.ndim != 4 or tuple(weight.shape[-2:]) != (3, 3):
        raise InvalidOptionError(f"upsample_conv_weight needs an O×C×3×3 kernel, got shape {tuple(weight.shape)}")
    m = [torch.tensor(t, dtype=torch.float64, device=weight.device) for t in _PHASE_TAPS]
    k = weight.to(torch.float64)
    phases = [m[a] @ k @ m[b].T for a in (0, 1) for b in (0, 1)]  # each O×C×3×3
    return torch.stack(phases, dim=1).reshape(-1, k.shape[1], 3, 3).to(weight.dtype)


def upsample_conv_weight_2x2(weight: torch.Tensor) -> torch.Tensor:
    """:func:`upsample_conv_weight` with each phase kernel cut to its non-zero 2×2 window.

    Returns a ``(4·O)×C×2×2`` kernel: ``conv2d(replicate_pad(x, 1), w)`` has size (h + 1)×(w + 1), and
    output phase (a, b) at low-resolution pixel (i, j) is its channel ``4·o + 2·a + b`` at (i + a, j + b).
    """
    w3 = upsample_conv_weight(weight)
    phases = w3.view(-1, 2, 2, w3.shape[1], 3, 3)
    out = torch.stack([torch.stack([phases[:, a, b, :, a:a + 2, b:b + 2] for b in (0, 1)], dim=1) for a in (0, 1)], dim=1)
    return out.reshape(-1, w3.shape[1], 2, 2)


def space_to_depth_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """Kernel of a full-resolution conv as a conv of the image's 2×2 space-to-depth form.

    ``conv2d(x, weight)`` (no padding, O×C×k×k, k odd, x of even height and width + k − 1) equals
    ``pixel_shuffle(conv2d(pixel_unshuffle(x, 2), w), 2)`` with the returned ``w`` of shape
    ``(4·O)×(4·C)×m×m``, ``m = (k + 1) // 2``: output phase (a, b) reads input phase
    ((a + dy) mod 2, (b + dx) mod 2) at offset (⌊(a + dy)/2⌋, ⌊(b + dx)/2⌋). The work runs on a quarter
    of the pixels with four times the channels, which a CPU does far better when O is small (the
    3-channel 9×9 output conv of the ``full`` net: ~3× faster).
    """
    if weight.ndim != 4 or weight.shape[-1] != weight.shape[-2] or weight.shape[-1] % 2 == 0:
        raise InvalidOptionError(f"space_to_depth_conv_weight needs an O×C×k×k kernel with k odd, got {tuple(weight.shape)}")
    o, c, k, _ = weight.shape
    m = (k + 1) // 2
    w = torch.zeros(o, 2, 2, c, 2, 2, m, m, dtype=weight.dtype, device=weight.device)
    for a in (0, 1):
        for b in (0, 1):
            for dy in range(k):
                for dx in range(k):
                    w[:, a, b, :, (a + dy) % 2, (b + dx) % 2, (a + dy) // 2, (b + dx) // 2] = weight[:, :, dy, dx]
    return w.reshape(4 * o, 4 * c, m, m)


class _SpaceToDepthHead(nn.Module):
    """The output conv (reflection pad + k×k conv) computed on the 2×2 space-to-depth image."""

    def __init__(self, head: nn.Sequential) -> None:
        super().__init__()
        conv = head[1]
        self.pad = conv.kernel_size[0] // 2
        self.register_buffer("weight", space_to_depth_conv_weight(conv.weight.detach()).contiguous())
        self.register_buffer("bias", conv.bias.detach().repeat_interleave(4).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        y = F.pixel_unshuffle(F.pad(x, (p, p, p, p), mode="reflect"), 2)
        return F.pixel_shuffle(F.conv2d(y, self.weight, self.bias), 2)


def _dense_kernel(block: _Up) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(kernel O×C×3×3, bias O, dense MACs ÷ separable MACs) of an up-block's conv."""
    conv = block.conv[0]
    if len(conv) == 3:  # reflection pad, depthwise 3×3 (no bias), pointwise 1×1
        dw, pw = conv[1], conv[2]
        o, c = pw.weight.shape[:2]
        kernel = pw.weight[:, :, 0, 0].double()[:, :, None, None] * dw.weight[:, 0].double()[None]
        ratio = (4 * o * c * 9) / (4 * (c * 9 + c * o))
        return kernel.to(pw.weight.dtype), pw.bias.detach().clone(), ratio
    dense = conv[1]
    return dense.weight.detach().clone(), dense.bias.detach().clone(), 1.0


class _InstanceNorm(nn.Module):
    """Instance norm computed as batch norm in training mode when the batch holds one image.

    For one image both normalise each channel by its own mean and (biased) variance; PyTorch's
    ``instance_norm`` reshapes its input to 1×(N·C)×H×W, which copies a channels-last tensor, while
    ``batch_norm`` has channels-last kernels: measured on a 2-core CPU (BENCHMARKS.md), 3.2 vs 10 ms
    for a 128×90×160 map in channels-last and 1.0 vs 3.8 ms (NCHW ``instance_norm``) for 64×180×320.
    """

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def with_fast_instance_norms(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (for inference) whose affine ``InstanceNorm2d`` layers compute the same
    function faster for one image (:class:`_InstanceNorm`, same parameters); ``module`` is not modified."""
    module = copy.deepcopy(module)
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d) and child.affine and not child.track_running_stats:
                setattr(parent, name, _InstanceNorm(child))
    return module


class _FusedUp(nn.Module):
    """Resize-then-conv block computed at the low resolution (see the module docstring).

    The 2×2 conv's output channels are ordered phase-major (``(2·a + b)·O + o``), so that each phase
    is a block of whole channels in either memory layout: in channels-last one pixel's channels of a
    phase are contiguous, which makes the interleave a copy of runs of O values.
    """

    def __init__(self, block: _Up, kernel: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        o = kernel.shape[0]
        w2 = upsample_conv_weight_2x2(kernel)  # channel 4·o + 2·a + b
        self.register_buffer("weight", w2.view(o, 4, *w2.shape[1:]).transpose(0, 1).reshape(w2.shape).contiguous())
        self.register_buffer("bias", bias.repeat(4).contiguous())
        self.norm = _InstanceNorm(block.conv[1])
        self.out_channels = o

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The 2×2 conv's output as ``N×2×2×O×(h+1)×(w+1)``: phase (a, b) is ``[:, a, b, :, a:a+h, b:b+w]``."""
        n, _, h, w = x.shape
        z = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias)
        return z.view(n, 2, 2, self.out_channels, h + 1, w + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        z = self.phases(x)
        y = torch.empty(n, self.out_channels, 2 * h, 2 * w, dtype=z.dtype, device=z.device, memory_format=_layout(x))
        grid = y.view(n, self.out_channels, h, 2, w, 2)  # (row, row parity, column, column parity)
        for a in (0, 1):
            for b in (0, 1):
                grid[:, :, :, a, :, b] = z[:, a, b, :, a:a + h, b:b + w]
        return F.relu(self.norm(y), inplace=True)


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format to give a tensor computed from ``x``: channels-last when ``x`` is."""
    return torch.contiguous_format if x.is_contiguous() else torch.channels_last


class _FusedUpHead(nn.Module):
    """The last up-block and a space-to-depth head, without the full-resolution map in between.

    :class:`_SpaceToDepthHead` reads ``pixel_unshuffle(reflect_pad(y, p), 2)`` where ``y`` is the
    up-block's output; that is built here from the up-block's phases directly, which saves the
    interleave and the unshuffle passes over the largest map of the net. Instance norm over the
    full-resolution channel is instance norm over its four phases together. For an even pad ``p = 2q``
    the reflection keeps each row's parity, so the padded space-to-depth image is the phase image
    padded row by row from the same phase: padded row ``I < q`` of phase ``A`` is row ``q − I − A``,
    padded row ``q + h + d`` is row ``h − 1 − d − A`` (the same for columns). The head reads its
    input channels phase-major, like :class:`_FusedUp` writes them.
    """

    def __init__(self, up: _FusedUp, head: _SpaceToDepthHead) -> None:
        super().__init__()
        if head.pad % 2:
            raise InvalidOptionError(f"_FusedUpHead needs an even head pad, got {head.pad}")
        self.up, self.q = up, head.pad // 2
        w = head.weight  # input channel 4·c + 2·A + B
        self.register_buffer("weight", w.view(w.shape[0], -1, 4, *w.shape[2:]).transpose(1, 2).reshape(w.shape).contiguous())
        self.register_buffer("bias", head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        o, q, fmt = self.up.out_channels, self.q, _layout(x)
        z = self.up.phases(x)
        kw = {"dtype": z.dtype, "device": z.device}
        if fmt == torch.channels_last:
            # memory (n, h, w, a, b, o): the channel-o instance norm is a channels-last map of n×o×h×4w
            s = torch.empty(n, 4 * o, h, w, memory_format=fmt, **kw)
            phases = s.view(n, 2, 2, o, h, w)
            norm_in = s.as_strided((n, o, h, 4 * w), (h * w * 4 * o, 1, w * 4 * o, o))
        else:
            s = torch.empty(n, o, 2, 2, h, w, **kw)
            phases = s.permute(0, 2, 3, 1, 4, 5)
            norm_in = s.view(n, o, 4 * h, w)
        for a in (0, 1):
            for b in (0, 1):
                phases[:, a, b] = z[:, a, b, :, a:a + h, b:b + w]
        t = F.relu(self.up.norm(norm_in), inplace=True)
        if fmt == torch.channels_last:
            t = t.view(n, o, h, w, 2, 2).permute(0, 4, 5, 1, 2, 3)
        else:
            t = t.view(n, o, 2, 2, h, w).permute(0, 2, 3, 1, 4, 5)
        padded = torch.empty(n, 4 * o, h + 2 * q, w + 2 * q, memory_format=fmt, **kw)
        p = padded.view(n, 2, 2, o, h + 2 * q, w + 2 * q)
        p[..., q:q + h, q:q + w] = t
        for a in (0, 1):
            for i in range(q):
                p[:, a, :, :, i, q:q + w] = t[:, a, :, :, q - i - a]
                p[:, a, :, :, q + h + i, q:q + w] = t[:, a, :, :, h - 1 - i - a]
        for b in (0, 1):
            for j in range(q):
                p[:, :, b, :, :, j] = p[:, :, b, :, :, 2 * q - j - b]
                p[:, :, b, :, :, q + w + j] = p[:, :, b, :, :, q + w - 1 - j - b]
        return F.pixel_shuffle(F.conv2d(padded, self.weight, self.bias), 2)


class FusedTransformerNet(nn.Module):
    """Inference-only form of a :class:`TransformerNet` (same output, fewer memory passes).

    Built by :func:`fuse_for_inference`; holds copies of the net's encoder and residual blocks (their
    instance norms as :class:`_InstanceNorm`) and shares its head. Gradients are not supported (it is made for ``torch.inference_mode``).
    """

    def __init__(self, net: TransformerNet, *, max_dense_ratio: float = MAX_DENSE_RATIO,
                 min_head_kernel: int = MIN_HEAD_KERNEL) -> None:
        super().__init__()
        if not isinstance(net, TransformerNet):
            raise InvalidOptionError(f"fuse_for_inference needs a TransformerNet, got {type(net).__name__}")
        self.config = net.config
        self.input_multiple = net.input_multiple
        self.min_input = net.min_input
        # copies whose instance norms run as one-image batch norms (_InstanceNorm): the net is not modified
        self.encoder, self.residuals = with_fast_instance_norms(net.encoder), with_fast_instance_norms(net.residuals)
        self.head = net.head
        blocks: list[nn.Module] = []
        with torch.no_grad():
            for block in net.decoder:
                kernel, bias, ratio = _dense_kernel(block)
                blocks.append(_FusedUp(block, kernel, bias) if ratio <= max_dense_ratio else block)
        self.decoder = nn.Sequential(*blocks)
        self.fused_blocks = sum(isinstance(b, _FusedUp) for b in blocks)
        if net.config.kernel_out >= min_head_kernel and not net.config.space_to_depth:
            with torch.no_grad():
                self.head = _SpaceToDepthHead(net.head)
            if blocks and isinstance(blocks[-1], _FusedUp) and self.head.pad % 2 == 0:
                self.head = _FusedUpHead(blocks[-1], self.head)
                self.decoder = nn.Sequential(*blocks[:-1])
        self.eval()

    def train(self, mode: bool = True) -> FusedTransformerNet:
        if mode:
            raise InvalidOptionError("a fused network is for inference only; train the TransformerNet it came from")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        xp, h, w = pad_to_multiple(x, self.input_multiple, min_size=self.min_input)
        y = self.head(self.decoder(self.residuals(self.encoder(xp)))) + xp
        return y[..., :h, :w].clamp(0.0, 1.0)


def fuse_for_inference(net: TransformerNet, *, max_dense_ratio: float = MAX_DENSE_RATIO,
                       min_head_kernel: int = MIN_HEAD_KERNEL) -> FusedTransformerNet:
    """The inference form of ``net`` (see the module docstring); ``net`` itself is not modified.

    Args:
        net: a trained :class:`TransformerNet`.
        max_dense_ratio: fold a depthwise-separable up-block into a dense kernel only while that costs
            at most this many times its multiply-adds (dense up-blocks are always folded).
        min_head_kernel: run the output conv on the space-to-depth image when its kernel is at least
            this large (:func:`space_to_depth_conv_weight`).
    """
    return FusedTransformerNet(net, max_dense_ratio=max_dense_ratio, min_head_kernel=min_head_kernel)
