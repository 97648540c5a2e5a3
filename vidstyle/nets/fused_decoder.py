"""Inference form of the arbitrary back end's :class:`~vidstyle.nets.decoder.Decoder` (same output, less work).

The trained decoder runs, per level, ``ReflectionPad2d(1) → Conv2d 3×3 → ReLU``, with ``Upsample(×2,
nearest)`` where the encoder pools. Every pad, upsample and ReLU is a pass over a map of 64–256 channels, and the
convs right after an upsample work on four copies of each pixel. :class:`FusedDecoder` computes the same function
with fewer passes and fewer multiply-adds:

* **Upsample + reflection pad + 3×3 conv = one stride-2 transposed conv of the low-resolution map.** Along one
  axis, output row ``2i`` of the 3×3 conv on the upsampled map reads low-resolution rows ``i − 1, i, i`` (taps
  ``k0``, then ``k1 + k2``) and row ``2i + 1`` reads ``i, i, i + 1`` (``k0 + k1``, then ``k2``); at the borders the
  reflection pad of the upsampled map is a *replicate* pad of the low-resolution one (upsampled row −1 reflects
  to row 1, a copy of low-resolution row 0; row 2h reflects to 2h − 2, a copy of row h − 1). That is a transposed
  conv with stride 2 and taps ``(k2, k1 + k2, k0 + k1, k0)`` (:func:`upsample_conv_transpose_weight`) of the
  replicate-padded low-resolution map: 4 taps instead of 9 per output pixel (4/9 of the multiply-adds) and no
  upsampled tensor. (The same phases as :func:`vidstyle.nets.fused.upsample_conv_weight_2x2`; the transposed
  conv writes them interleaved itself, which measured faster than four 2×2 convs plus the interleaving copy.)
* **No pad copy after a fused block**: the transposed conv also writes one more row and column on each side, and
  that ring is overwritten by reflection (four row and column copies), so the next conv reads it unpadded.
* **The last block and the RGB conv together** (:meth:`FusedDecoder._up_head`): the 64→3 conv at full resolution
  runs far below the CPU's conv peak; it runs instead on the 2×2 space-to-depth image (256 → 12 channels, 2×2
  taps, :func:`vidstyle.nets.fused.space_to_depth_conv_weight`). That image is the block's four 2×2 phase convs
  themselves (their channels in the right order, one edge row and column per phase overwritten), so the
  full-resolution 64-channel map is never made and nothing is copied.
* **ReLUs in place**, on the conv outputs and the buffers (no new tensor per ReLU).
* The decoder's input scale (:data:`~vidstyle.nets.decoder.FEATURE_SCALE`) is folded into the first conv's
  weights (a pass over the 256-channel features fewer).

The output equals the trained decoder's to float32 round-off, for any size and batch (``tests/nets/
test_fused_decoder.py``). :func:`fuse_decoder` builds it; the arbitrary back end runs it at inference
(:meth:`vidstyle.stylize.arbitrary.ArbitraryNet.for_inference`), training and the saved file keep the plain
:class:`~vidstyle.nets.decoder.Decoder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError, ModelError
from vidstyle.nets.decoder import FEATURE_SCALE, Decoder
from vidstyle.nets.fused import space_to_depth_conv_weight, upsample_conv_weight_2x2

__all__ = ["FusedDecoder", "fuse_decoder", "upsample_conv_transpose_weight"]


@dataclass(frozen=True, slots=True)
class _Step:
    """One conv of the fused decoder: ``up`` (the conv after a ×2 upsample, run at the low resolution),
    ``relu`` after it, and ``ring``: write its output into a buffer with a reflected one-pixel ring (the next
    conv reads it unpadded)."""

    up: bool
    relu: bool
    ring: bool


def _plan(body: nn.Sequential) -> list[tuple[nn.Conv2d, bool, bool]]:
    """(conv, preceded by an upsample, followed by a ReLU) for each conv of a decoder's body."""
    mods = list(body)
    out: list[tuple[nn.Conv2d, bool, bool]] = []
    up = False
    for i, m in enumerate(mods):
        if isinstance(m, nn.Upsample):
            if m.mode != "nearest" or m.scale_factor not in (2, 2.0, (2.0, 2.0)):
                raise ModelError(f"fuse_decoder handles nearest ×2 upsampling, not {m}")
            up = True
        elif isinstance(m, nn.Conv2d):
            if m.kernel_size != (3, 3) or m.stride != (1, 1) or m.padding != (0, 0) or m.groups != 1:
                raise ModelError(f"fuse_decoder handles reflection-padded 3×3 convs, not {m}")
            if i == 0 or not isinstance(mods[i - 1], nn.ReflectionPad2d) or tuple(mods[i - 1].padding) != (1, 1, 1, 1):
                raise ModelError("fuse_decoder needs ReflectionPad2d(1) before each conv")
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            out.append((m, up, relu))
            up = False
        elif not isinstance(m, (nn.ReflectionPad2d, nn.ReLU)):
            raise ModelError(f"fuse_decoder cannot fuse a {type(m).__name__}")
    if up:
        raise ModelError("fuse_decoder: the decoder ends with an upsample")
    return out


# rows: the 4 taps of the transposed conv (stride 2) along one axis; columns: the trained 3×3 kernel's taps
_TRANSPOSE_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def upsample_conv_transpose_weight(weight: torch.Tensor) -> torch.Tensor:
    """Kernel of ``conv3x3(reflect_pad(upsample_nearest_x2(x), 1))`` as a transposed conv of ``x``.

    ``weight`` is the ``O×C×3×3`` kernel; the result, ``C×O×4×4`` as :func:`torch.nn.functional.conv_transpose2d`
    wants it, gives the same ``2h×2w`` map as ``conv_transpose2d(replicate_pad(x, 1), w, stride=2, padding=3)``
    (``padding=2``: the same map with one more row and column on each side, whose values are not the reflection).
    Along one axis output ``2i`` is ``k0·x[i − 1] + (k1 + k2)·x[i]`` and ``2i + 1`` is ``(k0 + k1)·x[i] + k2·x[i + 1]``,
    so the 4 taps are ``(k2, k1 + k2, k0 + k1, k0)``: 16 multiply-adds per input pixel and channel pair, which is
    4 per output pixel instead of 9.
    """
    if weight.ndim != 4 or tuple(weight.shape[-2:]) != (3, 3):
        raise InvalidOptionError(f"upsample_conv_transpose_weight needs an O×C×3×3 kernel, got {tuple(weight.shape)}")
    m = torch.tensor(_TRANSPOSE_TAPS, dtype=torch.float64, device=weight.device)
    return (m @ weight.to(torch.float64) @ m.T).transpose(0, 1).to(weight.dtype)


def _reflect_ring(buf: torch.Tensor) -> None:
    """Fill the outer one-pixel ring of ``buf`` (N×C×(H+2)×(W+2)) by reflecting its interior, in place: the same
    as ``F.pad(interior, (1, 1, 1, 1), mode="reflect")``."""
    buf[..., 0, 1:-1] = buf[..., 2, 1:-1]
    buf[..., -1, 1:-1] = buf[..., -3, 1:-1]
    buf[..., :, 0] = buf[..., :, 2]
    buf[..., :, -1] = buf[..., :, -3]


def _layout(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and not x.is_contiguous() and \
        x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


class FusedDecoder(nn.Module):
    """Inference-only form of a :class:`~vidstyle.nets.decoder.Decoder` (see the module docstring).

    ``forward(feats, size=None)`` as the decoder's (output clamped to [0, 1]). Built by :func:`fuse_decoder`;
    it holds its own re-parametrised weights (buffers), so the decoder it came from is not modified.
    """

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        if not isinstance(decoder, Decoder):
            raise InvalidOptionError(f"fuse_decoder needs a Decoder, got {type(decoder).__name__}")
        self.layer, self.in_channels, self.scale = decoder.layer, decoder.in_channels, decoder.scale
        for name in ("vgg_source", "vgg_convention", "card", "vgg_fingerprint"):
            if hasattr(decoder, name):
                setattr(self, name, getattr(decoder, name))
        plan = _plan(decoder.body)
        #: the last fused block and the RGB conv after it run together on the space-to-depth image
        self.head_fused = len(plan) >= 2 and plan[-2][1] and not plan[-1][1] and not plan[-1][2]
        steps: list[_Step] = []
        with torch.no_grad():
            for i, (conv, up, relu) in enumerate(plan):
                w = conv.weight.detach().double()
                if i == 0:
                    w = w * FEATURE_SCALE
                if up and self.head_fused and i == len(plan) - 2:  # phases for the space-to-depth RGB conv
                    o = w.shape[0]
                    w2 = upsample_conv_weight_2x2(w)  # channel 4·o + 2·a + b → block (1 − a, 1 − b): (3 − 2a − b)·O + o
                    w = w2.view(o, 4, *w2.shape[1:]).transpose(0, 1).flip(0).reshape(w2.shape)
                    b = conv.bias.detach().repeat(4)
                elif up:
                    w = upsample_conv_transpose_weight(w)
                    b = conv.bias.detach().clone()
                elif self.head_fused and i == len(plan) - 1:  # input channel 4·c + 2·A + B → (2·A + B)·C + c
                    ws = space_to_depth_conv_weight(w)
                    w = ws.view(ws.shape[0], -1, 4, *ws.shape[2:]).transpose(1, 2).reshape(ws.shape)
                    b = conv.bias.detach().repeat_interleave(4)
                else:
                    b = conv.bias.detach().clone()
                self.register_buffer(f"weight{i}", w.to(conv.weight.dtype).contiguous())
                self.register_buffer(f"bias{i}", b.contiguous())
                ring = i + 1 < len(plan) and up  # a fused block is always followed by a conv in a decoder
                steps.append(_Step(up=up, relu=relu, ring=ring))
        self.steps = tuple(steps)
        self.out_channels = [int(conv.out_channels) for conv, _, _ in plan]
        self.eval()

    def train(self, mode: bool = True) -> FusedDecoder:
        if mode:
            raise InvalidOptionError("a fused decoder is for inference only; train the Decoder it came from")
        return super().train(False)

    def _up(self, x: torch.Tensor, i: int, step: _Step) -> torch.Tensor:
        """The i-th conv (after a ×2 upsample) as a transposed conv of the low-resolution map (with a ring)."""
        r = 1 if step.ring else 0
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), getattr(self, f"weight{i}"),
                               getattr(self, f"bias{i}"), stride=2, padding=3 - r)
        if step.relu:
            y.relu_()  # the ring is filled from the interior after: relu commutes with the copy
        if step.ring:
            _reflect_ring(y)
        return y

    def _up_head(self, x: torch.Tensor, i: int, step: _Step) -> torch.Tensor:
        """The i-th conv (a fused block) and the RGB conv after it, without the full-resolution map between them.

        The RGB conv runs on the 2×2 space-to-depth image ``S`` of the block's reflection-padded output ``P``
        (:func:`~vidstyle.nets.fused.space_to_depth_conv_weight`): ``S[A, B][I, J] = P[2I + A, 2J + B]``. With
        ``P[r] = X[r − 1]`` reflected at the borders, the parity flips: ``S[0, ·]`` is the block's odd-row phase
        with its first row repeated on top, ``S[1, ·]`` its even-row phase with its last row repeated at the bottom
        (the same for columns). The block's 2×2 conv of the replicate-padded map (:func:`~vidstyle.nets.fused.
        upsample_conv_weight_2x2`) gives phase (a, b) at rows ``a … a + h − 1`` and columns ``b … b + w − 1`` of an
        (h + 1)×(w + 1) map: exactly where ``S[1 − a, 1 − b]`` wants it. So with its output channels ordered by
        ``(1 − a, 1 − b)`` that map *is* ``S`` once its one extra row and column per phase (values of the extended
        image, not the reflection) are overwritten by their neighbours: no copy of the map at all.
        """
        n, _, h, w = x.shape
        o = self.out_channels[i]
        s = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), getattr(self, f"weight{i}"), getattr(self, f"bias{i}"))
        sv = s.view(n, 2, 2, o, h + 1, w + 1)
        sv[:, 0, :, :, 0] = sv[:, 0, :, :, 1]
        sv[:, 1, :, :, h] = sv[:, 1, :, :, h - 1]
        sv[:, :, 0, :, :, 0] = sv[:, :, 0, :, :, 1]
        sv[:, :, 1, :, :, w] = sv[:, :, 1, :, :, w - 1]
        if step.relu:
            s.relu_()
        j = i + 1
        return F.pixel_shuffle(F.conv2d(s, getattr(self, f"weight{j}"), getattr(self, f"bias{j}")), 2)

    def forward(self, feats: torch.Tensor, *, size: tuple[int, int] | None = None) -> torch.Tensor:
        if feats.ndim != 4 or feats.shape[1] != self.in_channels:
            raise ModelError(f"a {self.layer} decoder takes N×{self.in_channels}×H×W features, got {tuple(feats.shape)}")
        x, padded = feats, False
        for i, step in enumerate(self.steps):
            if step.up and self.head_fused and i == len(self.steps) - 2:
                x = self._up_head(x, i, step)
                break
            if step.up:
                x = self._up(x, i, step)
                padded = step.ring
                continue
            if not padded:
                x = F.pad(x, (1, 1, 1, 1), mode="reflect")
            x = F.conv2d(x, getattr(self, f"weight{i}"), getattr(self, f"bias{i}"))
            padded = False
            if step.relu:
                x = x.relu_()
        out = x
        if size is not None:
            th, tw = size
            out = out[..., :th, :tw]
            if out.shape[-2] < th or out.shape[-1] < tw:  # features of an unpadded image: edge rows repeated
                out = F.pad(out, (0, tw - out.shape[-1], 0, th - out.shape[-2]), mode="replicate")
        return out.clamp(0.0, 1.0)


def fuse_decoder(decoder: Decoder) -> FusedDecoder:
    """The inference form of ``decoder`` (see the module docstring); ``decoder`` itself is not modified."""
    return FusedDecoder(decoder)
