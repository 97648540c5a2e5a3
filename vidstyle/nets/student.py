"""The fast arbitrary-style variant: a small encoder and decoder distilled from VGG19 relu3_1 and its decoder.

The VGG variant (:mod:`vidstyle.nets.decoder`) costs about 104 GFLOP per 640×360 frame; live mode on two
CPU cores affords about 1.5. The student keeps the VGG variant's interface — RGB → 256 features at 1/4
resolution, the feature transforms of :mod:`vidstyle.stylize.transforms` in between, features → RGB —
in the layout of the ``tiny`` :class:`~vidstyle.nets.transformer.TransformerNet`, where every layer runs
at 1/4 resolution:

* :class:`StudentEncoder`: a 4×4 space-to-depth of the image (48 channels), a 1×1 conv to ``width``
  channels (a patchify stem: a 4×4 stride-4 conv), ``blocks`` depthwise-separable residual blocks and a
  1×1 conv to 256 channels, ReLU, times :data:`FEATURE_GAIN` (the Caffe scale of VGG features).
* :class:`StudentDecoder`: the features times :data:`~vidstyle.nets.decoder.FEATURE_SCALE`, a 1×1 conv to
  ``width``, ReLU, ``blocks`` residual blocks, a depthwise-separable 3×3 conv to 48 channels, a
  depth-to-space and the tiny net's fixed [1, 2, 2, 2, 1]/8 low-pass (it removes the 4-pixel grid a
  sub-pixel output paints at fixed screen positions).

No normalisation layers: AdaIN moves the features' per-channel mean and std, which an instance norm
would take away again.

**Width, by FLOPs** (2·C_in·C_out·k² per output pixel, per pixel of the 1/4-resolution grid; 14 400 such
pixels at 640×360). The 256 channels of relu3_1 are what AdaIN's statistics live in; computing them
directly from a 256-wide network would cost tens of GFLOP. A narrow body plus learned 1×1 convs to and from
256 costs 2·w·256 per pixel each: with ``width`` 48 and 2 blocks per side, the stem 4.6k, the blocks
4 × 2 × 5.5k = 44k, the two 1×1s 2 × 24.6k and the output conv 5.5k: about 103k FLOP per pixel,
**1.48 GFLOP** per 640×360 frame (:func:`student_gflop`; the ``tiny`` net: 1.1). A dense 3×3 stem like the
tiny net's would cost 41k alone, so the stem is 1×1 and the receptive field comes from the blocks
(4 + 4·2·4 = 36 px; VGG's relu3_1 sees 24 px).

Model files are safetensors with metadata ``vidstyle.kind = student``, the architecture
(:class:`StudentConfig` as JSON), the VGG19 weights the student was distilled from (name and
fingerprint; they analyse paintings when the style statistics come from VGG) and the model card;
:func:`load_student` refuses any other file with one line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.io.files import publish
from vidstyle.nets.decoder import FEATURE_SCALE
from vidstyle.nets.transformer import S2D_BLOCK, _GridFilter, check_image_batch, pad_to_multiple
from vidstyle.options.spec import OptionValueError

__all__ = ["StudentConfig", "StudentEncoder", "StudentDecoder", "Student", "save_student", "load_student",
           "is_student_file", "student_gflop", "STUDENT_KIND", "STUDENT_FORMAT", "FEATURE_CHANNELS", "FEATURE_GAIN"]

STUDENT_KIND = "student"
STUDENT_FORMAT = "1"
#: channels of VGG19 relu3_1, which the student's features imitate
FEATURE_CHANNELS = 256
#: the student encoder's output is multiplied by this (a fixed constant, part of the architecture), so a
#: freshly initialised encoder produces features of the order of VGG's Caffe-scale ones (RMS ~320 at
#: relu3_1 on photos; ~100 at initialisation) and Adam's steps move them by about 1 % each
FEATURE_GAIN = 1000.0


@dataclass(frozen=True, slots=True)
class StudentConfig:
    """Architecture of a student encoder/decoder pair.

    Attributes:
        width: channels of the body (both sides).
        blocks: depthwise-separable residual blocks on each side.
        layer: the VGG19 layer the features imitate (only ``relu3_1``: 1/4 resolution, 256 channels).
    """

    width: int = 48
    blocks: int = 2
    layer: str = "relu3_1"

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 4:
            raise OptionValueError("width", f"width must be an integer >= 4, got {self.width!r}")
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 0:
            raise OptionValueError("blocks", f"blocks must be an integer >= 0, got {self.blocks!r}")
        if self.layer != "relu3_1":
            raise OptionValueError("layer", f"a student imitates relu3_1 features, got layer {self.layer!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StudentConfig":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ModelError(f"unknown student architecture {text!r}")
        return cls(**data)


def _dw_sep(c_in: int, c_out: int) -> nn.Sequential:
    """3×3 depthwise (reflection padding) then 1×1 pointwise."""
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_in, 3, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1))


class _Block(nn.Module):
    """``x + dwsep(relu(dwsep(x)))``, then ReLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_dw_sep(c, c), nn.ReLU(inplace=True), _dw_sep(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class StudentEncoder(nn.Module):
    """RGB [0, 1] N×3×H×W → N×256×⌈H/4⌉×⌈W/4⌉ features imitating VGG19 relu3_1 (Caffe scale, ≥ 0).

    Like :class:`~vidstyle.nets.decoder.VGGEncoder`, the input is reflection-padded at the bottom/right to a
    multiple of 4, so a decoder can crop its output back to H×W.
    """

    downsampling = S2D_BLOCK

    def __init__(self, *, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        w = self.config.width
        cs = 3 * S2D_BLOCK * S2D_BLOCK
        self.stem = nn.Sequential(nn.PixelUnshuffle(S2D_BLOCK), nn.Conv2d(cs, w, 1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[_Block(w) for _ in range(self.config.blocks)])
        self.head = nn.Conv2d(w, FEATURE_CHANNELS, 1)
        self.layer = self.config.layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, name="StudentEncoder input")
        xp = pad_to_multiple(x, S2D_BLOCK)[0]
        if torch.is_grad_enabled():
            # centred input (the mean of a photo is ~0.45): a bias-free start for the stem
            return F.relu(self.head(self.body(self.stem(xp - 0.5)))) * FEATURE_GAIN
        # inference, equal up to float rounding: the stem's space-to-depth, centring and 1×1 conv are one 4×4
        # stride-4 conv of the image (no centred copy, no 48-channel rearrangement: 3.2 -> 0.7 ms per 640×360
        # frame in bfloat16 on one thread), and the gain is folded into the head (relu(g·f) = g·relu(f) for g > 0),
        # so the 256 channels are written once and rectified in place, with no pass to scale them
        h = self.body(torch.relu_(F.conv2d(xp, *_stem_as_conv(self.stem[1]), stride=S2D_BLOCK)))
        w, b = self.head.weight, self.head.bias
        return torch.relu_(F.conv2d(h, w * FEATURE_GAIN, None if b is None else b * FEATURE_GAIN))


def _stem_as_conv(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of the 4×4 stride-4 conv that equals ``conv(pixel_unshuffle(x, 4) − 0.5)`` (``conv``: the
    stem's 1×1 conv over the 48 space-to-depth channels, channel ``c·16 + i·4 + j`` = pixel ``(i, j)`` of colour ``c``)."""
    w = conv.weight
    bias = -0.5 * w.float().sum(dim=(1, 2, 3)) + (0.0 if conv.bias is None else conv.bias.float())
    return w.reshape(w.shape[0], 3, S2D_BLOCK, S2D_BLOCK), bias.to(w.dtype)


class StudentDecoder(nn.Module):
    """N×256×h×w features (Caffe scale) → RGB N×3×4h×4w, cropped to ``size`` when given; clamped to [0, 1]
    in eval mode only (the interface of :class:`~vidstyle.nets.decoder.Decoder`)."""

    in_channels = FEATURE_CHANNELS
    scale = S2D_BLOCK

    def __init__(self, *, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        w = self.config.width
        cs = 3 * S2D_BLOCK * S2D_BLOCK
        self.layer = self.config.layer
        self.stem = nn.Sequential(nn.Conv2d(FEATURE_CHANNELS, w, 1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[_Block(w) for _ in range(self.config.blocks)])
        self.head = nn.Sequential(_dw_sep(w, cs), nn.PixelShuffle(S2D_BLOCK), _GridFilter())

    def forward(self, feats: torch.Tensor, *, size: tuple[int, int] | None = None) -> torch.Tensor:
        self._check(feats)
        return self._finish(self.stem[0](feats * FEATURE_SCALE), size)

    def decode_affine(self, feats: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, *,
                      size: tuple[int, int] | None = None) -> torch.Tensor:
        """``forward(scale · feats + shift, size=size)`` (``scale``, ``shift``: N×256, per image and channel, e.g.
        :func:`vidstyle.stylize.transforms.adain_affine`) without writing the moved features: the affine map is
        folded into the first 1×1 conv's weights, image by image (equal up to float rounding)."""
        self._check(feats)
        if scale.shape != (feats.shape[0], FEATURE_CHANNELS) or shift.shape != scale.shape:
            raise ModelError(f"decode_affine takes N×{FEATURE_CHANNELS} scale and shift, got {tuple(scale.shape)} and "
                             f"{tuple(shift.shape)} for {feats.shape[0]} images")
        conv: nn.Conv2d = self.stem[0]
        w = conv.weight.float()[:, :, 0, 0]  # width × 256
        outs = []
        for i in range(feats.shape[0]):
            wi = (w * (FEATURE_SCALE * scale[i].float())[None]).to(feats.dtype)[:, :, None, None]
            bi = (conv.bias.float() + w @ (FEATURE_SCALE * shift[i].float())).to(feats.dtype)
            outs.append(F.conv2d(feats[i:i + 1], wi, bi))
        return self._finish(torch.cat(outs), size)

    def _check(self, feats: torch.Tensor) -> None:
        if feats.ndim != 4 or feats.shape[1] != FEATURE_CHANNELS:
            raise ModelError(f"a student decoder takes N×{FEATURE_CHANNELS}×H×W features, got {tuple(feats.shape)}")

    def _finish(self, h: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
        """Everything after the first 1×1 conv: ReLU, blocks, output conv, depth-to-space, low-pass, crop."""
        out = self.head(self.body(self.stem[1:](h))) + 0.5
        if size is not None:
            th, tw = size
            out = out[..., :th, :tw]
            if out.shape[-2] < th or out.shape[-1] < tw:
                out = F.pad(out, (0, tw - out.shape[-1], 0, th - out.shape[-2]), mode="replicate")
        return out if self.training else out.clamp(0.0, 1.0)


class Student(nn.Module):
    """The pair, as one module (what training optimises and a model file holds): ``encoder``, ``decoder``.

    ``forward(x)`` is the reconstruction ``decoder(encoder(x))`` at x's size."""

    def __init__(self, *, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        self.encoder = StudentEncoder(config=self.config)
        self.decoder = StudentDecoder(config=self.config)
        #: set by :func:`load_student`: the model card, the VGG19 weights it was distilled from
        self.card: dict[str, Any] = {}
        self.vgg_source = ""
        self.vgg_fingerprint = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x), size=tuple(x.shape[-2:]))


def student_gflop(config: StudentConfig | None = None, *, height: int = 360, width: int = 640) -> float:
    """GFLOP of one frame through encoder and decoder, counted from the conv shapes (2·C_in/groups·C_out·k²
    per output pixel; the same count as ``benchmarks/bench_arbitrary.py``'s ``conv_gflop``)."""
    net = Student(config=config).eval()
    total = 0.0
    hooks = []

    def count(mod: nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += 2.0 * mod.in_channels // mod.groups * mod.out_channels * kh * kw * out[0, 0].numel() * out.shape[0]

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(count))
    try:
        with torch.enable_grad():  # the training path calls every conv as a module (inference folds the gain in)
            net.requires_grad_(False)
            net(torch.zeros(1, 3, height, width))
    finally:
        for h in hooks:
            h.remove()
    return total / 1e9


def save_student(path: str | os.PathLike, *, student: Student, vgg_source: str, fingerprint: str,
                 card: dict[str, Any] | None = None) -> Path:
    """Write a student model file (safetensors + metadata) atomically; returns its path."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {
        "vidstyle.kind": STUDENT_KIND,
        "vidstyle.architecture": STUDENT_KIND,
        "vidstyle.format": STUDENT_FORMAT,
        "vidstyle.layer": student.config.layer,
        "vidstyle.config": student.config.to_json(),
        "vidstyle.vgg_source": Path(vgg_source).name if os.sep in vgg_source else vgg_source,
        "vidstyle.vgg_fingerprint": fingerprint,
        "vidstyle.card": json.dumps(card or {}, sort_keys=True),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    publish(tmp, path)
    return path


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a safetensors model file ({str(exc).splitlines()[0]}); pass a file written "
                         "by `vidstyle train --kind student`") from exc


def is_student_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a student model file or a student training checkpoint (reads only the header)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return False
    return meta.get("vidstyle.kind") == STUDENT_KIND or meta.get("kind") == "student_checkpoint"


def load_student(path: str | os.PathLike) -> Student:
    """Load a student model file (or a ``vidstyle train --kind student`` checkpoint) in eval mode.

    Raises:
        InputNotFoundError: no such file.
        ModelError: not a student (a VGG decoder, a style network, not safetensors) or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"student model {path} not found; train one with `vidstyle train --kind student`")
    meta, tensors = _read(path)
    if meta.get("vidstyle.kind") == STUDENT_KIND:
        config_text, card = meta.get("vidstyle.config", "{}"), json.loads(meta.get("vidstyle.card", "{}"))
        source, fingerprint = meta.get("vidstyle.vgg_source", ""), meta.get("vidstyle.vgg_fingerprint", "")
    elif meta.get("kind") == "student_checkpoint":  # a training checkpoint: the student so far
        saved = json.loads(meta.get("config", "{}"))
        config_text = json.dumps({"width": saved.get("width"), "blocks": saved.get("blocks")})
        card = {"checkpoint_iteration": int(meta.get("iteration", "0")),
                "held_out": {"paintings": list(saved.get("held_out_styles") or [])}}
        source, fingerprint = meta.get("vgg_source", ""), meta.get("vgg_fingerprint", "")
        tensors = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    else:
        got = meta.get("vidstyle.architecture") or meta.get("kind") or "no vidstyle kind"
        what = "a VGG decoder" if got == "decoder" else f"not a student ({got})"
        raise ModelError(f"{path} is {what}; pass a student model written by `vidstyle train --kind student`")
    try:
        student = Student(config=StudentConfig.from_json(config_text))
    except (OptionValueError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad student architecture ({exc})") from None
    try:
        student.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the student architecture ({str(exc).splitlines()[0]})") from exc
    student.card, student.vgg_source, student.vgg_fingerprint = card, source, fingerprint
    return student.eval()
