"""Many paintings in one fast network: the student with one conditional (γ, β) set per style (Dumoulin et al. 2017).

:class:`~vidstyle.nets.student_style.StudentStyleNet` puts one painting's conditional instance norm between the
fast student's encoder and decoder and fine-tunes the decoder for it. Here the decoder is **shared** by N paintings
and each painting has its own conditioning:

* at the features (as AdaIN): ``γ_i``, ``β_i`` (256 each), initialised to the painting's VGG19 relu3_1 std and
  mean, so training starts exactly at the arbitrary back end's AdaIN;
* in the decoder: a per-channel scale and shift after its first conv and after each convolution of its
  residual blocks (``1 + 2·blocks`` sites of ``width`` channels), initialised to 1 and 0. Dumoulin et al.
  condition every normalisation layer of the network; the student's decoder has no normalisation (it would
  undo AdaIN), so the conditional affine sits where the norms would be;
* the decoder's **output head** — its last depthwise 3×3 and the 1×1 to the 4×4 sub-pixel channels, which paint
  the strokes — is per style too (``width·9 + 48·width + 48`` numbers, 2784 for the shipped student). With the
  affines alone the shared decoder had to trade paintings against each other (3 of 8 paintings within 1.2× of
  their one-style models at the same budget); with a head each, 7 of 8 (BENCHMARKS.md, "The multi-style
  student"). A file written before the head was per style loads with every style's head equal to the shared
  one, which is exactly the network it was.

Everything else — the decoder's other convolutions — is shared. One style costs ``2·256 + 2·(1 + 2·blocks)·width``
plus its head (992 + 2784 = 3776 numbers for the shipped student), so a new painting is one more row
(:meth:`StudentMultiStyleNet.add_style`), trained with the rest frozen in minutes (``vidstyle train --add-style``).

**Mixing and strength.** Slot 0 is :data:`~vidstyle.nets.multistyle.IDENTITY`: the frame's own statistics
(feature scale 1, shift 0), the identity decoder affine and the student's own head; it is not stored. A mix ``w``
(one weight per slot, per image, summing to 1) blends the rows linearly — ``Σ w_i γ_i``, ``Σ w_i β_i``, the decoder
affines and the heads' kernels, with slot 0 contributing ``(1, 0)`` and the student's head — which is Dumoulin et
al.'s convex combination; the feature affine is then ``scale = Σ_{i≥1} w_i γ_i / σ_f + w_0``,
``shift = Σ_{i≥1} w_i (β_i − μ_f γ_i / σ_f)``. A style strength ``s`` moves the mix toward slot 0
(:func:`~vidstyle.nets.multistyle.strength_mix`), which for one style is exactly
:class:`StudentStyleNet`'s strength (Ghiasi et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError, ModelError, ShapeError
from vidstyle.nets.decoder import FEATURE_SCALE
from vidstyle.nets.multistyle import slot_names
from vidstyle.nets.student import FEATURE_CHANNELS, Student, StudentConfig, StudentDecoder, StudentEncoder
from vidstyle.stylize.transforms import channel_var_mean

__all__ = ["StudentMultiStyleNet", "film_sites", "HEAD_KEYS"]

#: the per-style output head's tensors (style first): the depthwise 3×3, the 1×1's weight and its bias
HEAD_KEYS = ("head_dw", "head_pw", "head_pb")

#: added to the content features' variance before the square root (as :mod:`vidstyle.nets.student_style`)
EPS = 1e-5


def film_sites(config: StudentConfig) -> int:
    """Decoder sites with a per-style affine: after the first 1×1 conv and after both convs of each block."""
    return 1 + 2 * config.blocks


class StudentMultiStyleNet(nn.Module):
    """``forward(x: N×3×H×W in [0, 1], mix: N×S or S) -> N×3×H×W``: the student with N paintings' conditioning.

    Args:
        config: the student's architecture.
        styles: the style names; slot 0 is always :data:`~vidstyle.nets.multistyle.IDENTITY` (added when missing).

    Attributes:
        gamma, beta: ``(S−1)×256``, each style's feature scale and shift.
        film_scale, film_shift: ``(S−1)×sites×width``, each style's decoder affine (:func:`film_sites`).
        head_dw, head_pw, head_pb: ``(S−1)×width×1×3×3``, ``(S−1)×48×width×1×1``, ``(S−1)×48``: each style's
            output head (the depthwise 3×3 and the 1×1 of ``decoder.head``, which is slot 0's).
    """

    #: forward takes a style strength itself (toward slot 0); in the pipeline StyleControl folds it into the mix
    feature_strength = True

    def __init__(self, *, config: StudentConfig | None = None, styles: Sequence[str]) -> None:
        super().__init__()
        names = self.styles = slot_names(styles)
        self.config = config or StudentConfig()
        self.encoder = StudentEncoder(config=self.config)
        self.decoder = StudentDecoder(config=self.config)
        n, sites, w = len(names) - 1, film_sites(self.config), self.config.width
        self.gamma = nn.Parameter(torch.ones(n, FEATURE_CHANNELS))
        self.beta = nn.Parameter(torch.zeros(n, FEATURE_CHANNELS))
        self.film_scale = nn.Parameter(torch.ones(n, sites, w))
        self.film_shift = nn.Parameter(torch.zeros(n, sites, w))
        dw, pw = _head_convs(self.decoder)
        for key, rows in _shared_head_rows(dw.weight, pw.weight, pw.bias, n=n).items():
            setattr(self, key, nn.Parameter(rows))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # a file from before the per-style head: every style's head is the shared one (the same network)
        if not any(prefix + k in state_dict for k in HEAD_KEYS) and prefix + "gamma" in state_dict:
            n = state_dict[prefix + "gamma"].shape[0]
            keys = [prefix + "decoder.head.0.1.weight", prefix + "decoder.head.0.2.weight", prefix + "decoder.head.0.2.bias"]
            if all(k in state_dict for k in keys):
                rows = _shared_head_rows(*(state_dict[k] for k in keys), n=n)
                state_dict.update({prefix + key: value for key, value in rows.items()})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def n_styles(self) -> int:
        """Number of slots, the identity included."""
        return len(self.styles)

    @classmethod
    def from_student(cls, student: Student, *, style_features: Sequence[torch.Tensor],
                     styles: Sequence[str]) -> StudentMultiStyleNet:
        """The ``student``'s weights; style ``i``'s ``(γ, β)`` the std and mean of ``style_features[i]`` (``1×256×h×w``
        VGG19 relu3_1 features of the painting), its decoder affine the identity: every style starts at AdaIN."""
        if len(style_features) != len(styles) or not styles:
            raise ModelError(f"one relu3_1 feature map per style: {len(style_features)} for {len(styles)} styles")
        net = cls(config=student.config, styles=styles)
        net.encoder.load_state_dict(student.encoder.state_dict())
        net.decoder.load_state_dict(student.decoder.state_dict())
        dw, pw = _head_convs(net.decoder)
        with torch.no_grad():
            for i, feats in enumerate(style_features):
                net.gamma[i], net.beta[i] = _adain_row(feats)
            for key, rows in _shared_head_rows(dw.weight, pw.weight, pw.bias, n=len(styles)).items():
                getattr(net, key).copy_(rows)
        return net

    def add_style(self, name: str, *, style_features: torch.Tensor) -> int:
        """Append a style: ``(γ, β)`` from the painting's relu3_1 ``style_features`` (AdaIN), the decoder affine and
        the output head the mean of the existing styles' (the shared decoder's average painting). Returns its slot."""
        if name in self.styles:
            raise InvalidOptionError(f"the model already has a style named {name!r}; pick another name")
        g, b = _adain_row(style_features)
        with torch.no_grad():
            self.gamma = nn.Parameter(torch.cat([self.gamma, g[None]]))
            self.beta = nn.Parameter(torch.cat([self.beta, b[None]]))
            self.film_scale = nn.Parameter(torch.cat([self.film_scale, self.film_scale.mean(0, keepdim=True)]))
            self.film_shift = nn.Parameter(torch.cat([self.film_shift, self.film_shift.mean(0, keepdim=True)]))
            for key in HEAD_KEYS:
                rows = getattr(self, key)
                setattr(self, key, nn.Parameter(torch.cat([rows, rows.mean(0, keepdim=True)])))
        self.styles.append(name)
        return len(self.styles) - 1

    def style_parameters(self) -> list[nn.Parameter]:
        """The per-style rows (feature and decoder affines, output heads)."""
        return [self.gamma, self.beta, self.film_scale, self.film_shift, self.head_dw, self.head_pw, self.head_pb]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """What training changes: the shared decoder and the decoder affines at ``lr``, ``(γ, β)`` at 30 × ``lr``
        (Caffe-scale feature statistics, tens to hundreds), the per-style heads at ``lr``; the encoder stays as
        distilled, and so does the student's own head (slot 0's: the frame's own look). Parameters frozen
        beforehand (``requires_grad`` off, as ``add_style`` training does) are left out."""
        for p in [*self.encoder.parameters(), *self.decoder.head.parameters()]:
            p.requires_grad_(False)
        shared = [p for name, p in self.decoder.named_parameters() if not name.startswith("head.")]
        groups = [{"params": [*shared, self.film_scale, self.film_shift], "lr": lr},
                  {"params": [self.gamma, self.beta], "lr": 30.0 * lr},
                  {"params": [self.head_dw, self.head_pw, self.head_pb], "lr": lr}]
        for g in groups:
            g["params"] = [p for p in g["params"] if p.requires_grad]
        return [g for g in groups if g["params"]]

    def for_inference(self) -> StudentMultiStyleNet:
        return self

    def _mix(self, mix: torch.Tensor | None, n: int) -> torch.Tensor:
        if mix is None:
            mix = torch.zeros(self.n_styles)
            mix[1 if self.n_styles > 1 else 0] = 1.0
        if mix.ndim == 1:
            mix = mix[None]
        if mix.ndim != 2 or mix.shape[-1] != self.n_styles or mix.shape[0] not in (1, n):
            raise ShapeError(f"mix must be {n}×{self.n_styles} (or {self.n_styles}), got {tuple(mix.shape)}")
        return mix.float().to(self.gamma.device).expand(n, -1)

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None,
                strength: torch.Tensor | float | None = None) -> torch.Tensor:
        """``mix``: slot weights (default: the first style); ``strength`` in [0, 1] (one, or one per image) moves the
        mix toward slot 0 as :func:`~vidstyle.nets.multistyle.strength_mix` does."""
        n = x.shape[0]
        w = self._mix(mix, n)
        if strength is not None:
            s = torch.as_tensor(strength, dtype=torch.float32, device=w.device).reshape(-1, 1)
            if s.shape[0] not in (1, n):
                raise ValueError(f"strength: one value or one per image ({n}), got {s.shape[0]}")
            w = w * s
            w = torch.cat([w[:, :1] + (1.0 - s), w[:, 1:]], dim=1)
        feats = self.encoder(x)
        var, mean = channel_var_mean(feats)  # float32, or float64 for float64 features
        w = w.to(var.dtype)
        w0, ws = w[:, :1], w[:, 1:]
        inv = 1.0 / (var + EPS).sqrt()
        g = ws @ self.gamma.to(w.dtype)  # N×256: the mixed style scale (before the frame's own σ)
        scale = g * inv + w0
        shift = ws @ self.beta.to(w.dtype) - g * inv * mean
        fs = (ws @ self.film_scale.flatten(1).to(w.dtype)).view(n, *self.film_scale.shape[1:]) + w0[:, :, None]
        fb = (ws @ self.film_shift.flatten(1).to(w.dtype)).view(n, *self.film_shift.shape[1:])
        return _decode(self.decoder, feats, scale, shift, fs, fb, self._heads(w), size=(x.shape[-2], x.shape[-1]))

    def _heads(self, w: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each image's output head: slot 0's (the student's) and the styles' kernels blended by its mix ``w``.
        Images with the same mix share one (a clip's frames usually do)."""
        dw, pw = _head_convs(self.decoder)
        heads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for i in range(w.shape[0]):
            if i and torch.equal(w[i], w[i - 1]):
                heads.append(heads[-1])
                continue
            w0, ws = w[i, :1], w[i, 1:]
            heads.append((w0 * dw.weight.to(w.dtype) + torch.einsum("s,sabcd->abcd", ws, self.head_dw.to(w.dtype)),
                          w0 * pw.weight.to(w.dtype) + torch.einsum("s,sabcd->abcd", ws, self.head_pw.to(w.dtype)),
                          w0 * pw.bias.to(w.dtype) + ws @ self.head_pb.to(w.dtype)))
        return heads


def _shared_head_rows(dw: torch.Tensor, pw: torch.Tensor, pb: torch.Tensor, *, n: int) -> dict[str, torch.Tensor]:
    """:data:`HEAD_KEYS` for ``n`` styles that all use the one head ``(dw, pw, pb)`` (new copies)."""
    return {key: t.detach()[None].repeat(n, *([1] * t.ndim)) for key, t in zip(HEAD_KEYS, (dw, pw, pb))}


def _head_convs(dec: StudentDecoder) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The decoder head's depthwise 3×3 and 1×1 (``head = [reflect-pad, dw, pw], depth-to-space, low-pass``)."""
    return dec.head[0][1], dec.head[0][2]


def _head(dec: StudentDecoder, h: torch.Tensor,
          heads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``dec.head`` with image ``i``'s convs from ``heads[i]``; runs of images with the same head go as one batch."""
    h = dec.head[0][0](h)  # reflection padding
    outs, start = [], 0
    for i in range(1, len(heads) + 1):
        if i < len(heads) and heads[i] is heads[start]:
            continue
        kdw, kpw, bpw = (t.to(h.dtype) for t in heads[start])
        outs.append(F.conv2d(F.conv2d(h[start:i], kdw, groups=h.shape[1]), kpw, bpw))
        start = i
    return dec.head[2](dec.head[1](torch.cat(outs)))


def _adain_row(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if feats.ndim != 4 or feats.shape[:2] != (1, FEATURE_CHANNELS):
        raise ModelError(f"style_features must be 1×{FEATURE_CHANNELS}×h×w relu3_1 features, got {tuple(feats.shape)}")
    var, mean = (t[0] for t in channel_var_mean(feats))
    return (var + EPS).sqrt(), mean


def _affine(h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return h * scale.to(h.dtype)[:, :, None, None] + shift.to(h.dtype)[:, :, None, None]


def _decode(dec: StudentDecoder, feats: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
            fs: torch.Tensor, fb: torch.Tensor, heads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], *,
            size: tuple[int, int]) -> torch.Tensor:
    """The student decoder on ``scale·feats + shift`` with the decoder affine ``(fs, fb)`` (N×sites×width) at its sites
    and image ``i``'s output head ``heads[i]`` (depthwise kernel, 1×1 weight, bias) in place of ``dec.head``'s convs.

    The feature affine and the first site's affine are folded into the first 1×1 conv, image by image (as
    :meth:`StudentDecoder.decode_affine`), so the moved 256-channel features are never written."""
    conv: nn.Conv2d = dec.stem[0]
    w = conv.weight.to(scale.dtype)[:, :, 0, 0]  # width × 256
    bias = conv.bias.to(scale.dtype)
    outs = []
    for i in range(feats.shape[0]):
        wi = fs[i, 0][:, None] * w * (FEATURE_SCALE * scale[i])[None]
        bi = fs[i, 0] * (bias + w @ (FEATURE_SCALE * shift[i])) + fb[i, 0]
        outs.append(F.conv2d(feats[i:i + 1], wi.to(feats.dtype)[:, :, None, None], bi.to(feats.dtype)))
    h = torch.relu(torch.cat(outs))
    site = 1
    for block in dec.body:
        t = _affine(block.body[0](h), fs[:, site], fb[:, site])
        t = block.body[2](torch.relu(t))
        h = torch.relu(_affine(h + t, fs[:, site + 1], fb[:, site + 1]))
        site += 2
    out = _head(dec, h, heads) + 0.5
    th, tw = size
    out = out[..., :th, :tw]
    if out.shape[-2] < th or out.shape[-1] < tw:
        out = F.pad(out, (0, tw - out.shape[-1], 0, th - out.shape[-2]), mode="replicate")
    return out if dec.training else out.clamp(0.0, 1.0)
