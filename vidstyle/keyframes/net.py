"""The keyframe network: a small U-Net-like image-to-image generator (Texler et al. 2020 use a U-Net).

Why this shape (docs/keyframes.md, "The network"):

* **U-Net, not the style networks' residual transformer.** The network must copy the frame's structure
  exactly (a painted keyframe keeps every edge of its frame) while changing its look: skip connections hand
  the full-resolution layout to the decoder, and the coarse path (1/4 resolution, one residual block) sees
  ~40 px around each pixel to decide which paint goes where. Texler et al. found this family generalises
  from a few keyframes when trained on small patches.
* **No normalisation layers.** Training sees 32 px patches, application whole frames: instance or batch
  statistics would differ between the two; plain convolutions behave the same on both.
* **Thin at full resolution.** Widths (8, 24, 48) at 1, 1/2, 1/4 resolution; upsampling by nearest resize
  then convolution (no transposed-convolution checkerboard), additive skips. 2.9 GFLOP per 640×360 frame
  (:func:`flops`; the shipped ``tiny`` style net is 1.1 and runs at ~56 fps alone on 2 cores), so that
  application keeps >= 10 fps at 640×360 on 2 CPU cores, and a training step on 16 patches of 32 px
  costs little next to its VGG loss, so the plateau comes within minutes.
* **Output** ``sigmoid``: RGB in [0, 1].
* **Inference without padded copies.** Without gradients (application) a replicate-padded 3×3 convolution of
  a large map runs as the zero-padded convolution (oneDNN pads for free) with the output's border rows and
  columns recomputed from thin replicate-padded strips (:func:`conv_replicate`): the same values, without
  writing a padded copy of the map; the activations and skip additions then work in place. 640×360, same-minute
  A/B: 63–87 → 45–49 ms per frame on one thread, 30–46 → 26–27 ms on two (BENCHMARKS.md, "Keyframe-guided").

Any frame size: the input is padded (replicate) to a multiple of 4 and the output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEFAULT_WIDTHS", "KeyframeNet", "conv_replicate", "flops"]

DEFAULT_WIDTHS = (8, 24, 48)
#: input maps of at least this many pixels take :func:`conv_replicate` in a stride-1 layer (below it the
#: strips' four extra calls cost more than the padded copy saves; 640×360, one thread: the full-resolution
#: layers gain 1–3 ms each, a 160×90 one loses 1 ms); stride-2 layers take it at any size above 64×64
STRIP_MIN_PIXELS = 100_000


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="replicate" if k > 1 else "zeros")


def conv_replicate(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                   stride: int = 1) -> torch.Tensor:
    """``F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias, stride=stride)`` for a 3×3
    ``weight``, without the padded copy of ``x``: the zero-padded convolution, then the output rows and
    columns that read the padding recomputed from replicate-padded two-pixel strips of ``x`` (the top row and
    left column always; the bottom row and right column where ``(size − 1) % stride == 0``). Equal to the
    padded form up to the convolution's summation order (bit-identical in the layers measured)."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f"conv_replicate: weight must be 3×3, got {tuple(weight.shape[-2:])}")
    h, w = x.shape[-2:]
    if h < 2 or w < 2:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias, stride=stride)
    y = F.conv2d(x, weight, bias, stride=stride, padding=1)
    y[:, :, 0, :] = F.conv2d(F.pad(x[:, :, :2, :], (1, 1, 1, 0), mode="replicate"), weight, bias, stride=stride)[:, :, 0]
    if (h - 1) % stride == 0:
        y[:, :, -1, :] = F.conv2d(F.pad(x[:, :, -2:, :], (1, 1, 0, 1), mode="replicate"), weight, bias,
                                  stride=stride)[:, :, -1]
    y[:, :, :, 0] = F.conv2d(F.pad(x[:, :, :, :2], (1, 0, 1, 1), mode="replicate"), weight, bias,
                             stride=stride)[:, :, :, 0]
    if (w - 1) % stride == 0:
        y[:, :, :, -1] = F.conv2d(F.pad(x[:, :, :, -2:], (0, 1, 1, 1), mode="replicate"), weight, bias,
                                  stride=stride)[:, :, :, -1]
    return y


def _apply(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``; without gradients, a replicate-padded 3×3 layer on a large map through :func:`conv_replicate`."""
    if torch.is_grad_enabled() or conv.padding_mode != "replicate":
        return conv(x)
    stride = conv.stride[0]
    pixels = x.shape[-2] * x.shape[-1]
    if pixels < (4096 if stride > 1 else STRIP_MIN_PIXELS):
        return conv(x)
    return conv_replicate(x, conv.weight, conv.bias, stride=stride)


class KeyframeNet(nn.Module):
    """``forward(x: N×C×H×W) -> N×3×H×W`` in [0, 1]; ``C`` = 3 + 2 per guide (:mod:`vidstyle.keyframes.guides`).

    Args:
        in_channels: input channels (frame + guides).
        widths: channels at full, half and quarter resolution.
    """

    def __init__(self, *, in_channels: int = 3, widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        c0, c1, c2 = (int(w) for w in widths)
        self.in_channels = int(in_channels)
        self.widths = (c0, c1, c2)
        self.enc0 = _conv(in_channels, c0)
        self.enc1 = _conv(c0, c1, stride=2)
        self.enc2 = _conv(c1, c2, stride=2)
        self.res_a = _conv(c2, c2)
        self.res_b = _conv(c2, c2)
        self.up1 = _conv(c2, c1, k=1)
        self.dec1 = _conv(c1, c1)
        self.up0 = _conv(c1, c0, k=1)
        self.dec0 = _conv(c0, c0)
        self.out = _conv(c0, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        # without gradients the activations and the skip additions overwrite fresh outputs (no new map each;
        # the same values, float addition being commutative)
        grad = torch.is_grad_enabled()
        relu = F.relu if grad else torch.relu_
        add = torch.add if grad else torch.Tensor.add_
        e0 = relu(_apply(self.enc0, x))
        e1 = relu(_apply(self.enc1, e0))
        e2 = relu(_apply(self.enc2, e1))
        r = add(self.res_b(relu(self.res_a(e2))), e2)
        d1 = relu(_apply(self.dec1, add(F.interpolate(self.up1(r), scale_factor=2.0, mode="nearest"), e1)))
        d0 = relu(_apply(self.dec0, add(F.interpolate(self.up0(d1), scale_factor=2.0, mode="nearest"), e0)))
        y = torch.sigmoid(_apply(self.out, d0))
        return y[..., :h, :w] if (ph or pw) else y


def flops(net: nn.Module, *, height: int, width: int) -> float:
    """Floating-point operations of one ``height×width`` frame through ``net``'s convolutions (2 per
    multiply-add; the activations and resizes are not counted): the compute floor of a benchmark."""
    total = 0.0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        k = module.kernel_size[0] * module.kernel_size[1]
        total += 2.0 * output.numel() * module.in_channels // module.groups * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        # with gradients enabled every layer runs as its module (the hook sees it); without them KeyframeNet
        # calls the convolution of some layers directly (conv_replicate)
        with torch.enable_grad():
            net(torch.zeros(1, net.in_channels, height, width))  # type: ignore[arg-type]
    finally:
        for h in handles:
            h.remove()
    return total
