"""VGG19 encoder up to one ReLU layer and the decoder that inverts it (arbitrary-style transfer).

The encoder is a frozen :class:`~vidstyle.nets.vgg.VGGFeatures` prefix (max pooling, as in AdaIN, WCT
and style swap) ending at ``relu3_1`` (default), ``relu2_1`` or ``relu1_1``; the decoder mirrors it:
each conv of the encoder becomes a 3×3 conv with reflection padding from its output width back to its
input width, followed by a ReLU (none after the last conv, which gives RGB), and nearest-neighbour
upsampling ×2 where the encoder pools. No normalisation layers. The decoder is trained by
:mod:`vidstyle.train_decoder` to give the photo back from its features; the feature transforms of
:mod:`vidstyle.stylize.transforms` act between the two.

Decoder files are safetensors with metadata (``vidstyle.architecture = decoder``, the layer, the VGG
source and convention the decoder was trained against, and the model card as JSON); loaded without pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.nets.transformer import check_image_batch, pad_to_multiple
from vidstyle.nets.vgg import VGG19_LAYERS, VGGFeatures, VGGState, load_vgg_state
from vidstyle.options.spec import OptionValueError
from vidstyle.io.files import publish

__all__ = ["ENCODER_LAYERS", "VGGEncoder", "Decoder", "save_decoder", "load_decoder", "decoder_plan", "DECODER_FORMAT",
           "FEATURE_SCALE", "vgg_fingerprint"]

#: layers a decoder can invert (the first ReLU of blocks 1–3)
ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
DECODER_FORMAT = "1"
#: features (Caffe scale, RMS ~400 at relu3_1) are multiplied by this before the first conv, so a freshly
#: initialised decoder starts with outputs of order 1 (a fixed constant, part of the architecture)
FEATURE_SCALE = 0.01

# (in, out) widths of the VGG19 convs conv1_1 … conv3_1
_WIDTHS = {"conv1_1": (3, 64), "conv1_2": (64, 64), "conv2_1": (64, 128), "conv2_2": (128, 128), "conv3_1": (128, 256)}


def _check_layer(layer: str) -> None:
    if layer not in ENCODER_LAYERS:
        raise OptionValueError("layer", f"layer must be one of {', '.join(ENCODER_LAYERS)}, got {layer!r}")


def decoder_plan(layer: str) -> list[tuple[str, int, int] | tuple[str]]:
    """The decoder's layers for an encoder ending at ``layer``: ``("conv", cin, cout)``, ``("relu",)``,
    ``("up",)``, in the order they run (the encoder's, reversed)."""
    _check_layer(layer)
    enc = VGG19_LAYERS[: VGG19_LAYERS.index(layer) + 1]
    plan: list[tuple[str, int, int] | tuple[str]] = []
    for name in reversed(enc):
        if name.startswith("conv"):
            cin, cout = _WIDTHS[name]
            plan += [("conv", cout, cin), ("relu",)]
        elif name.startswith("pool"):
            plan.append(("up",))
    if plan and plan[-1] == ("relu",):
        plan.pop()  # RGB out: no ReLU after the last conv
    # the encoder's first ReLU (at `layer`) has no mirror: the decoder starts with a conv
    return plan


class VGGEncoder(nn.Module):
    """VGG19 (frozen, max pooling) up to ``layer``: RGB [0, 1] N×3×H×W → N×C×H/s×W/s features.

    Args:
        layer: ``relu3_1`` (default), ``relu2_1`` or ``relu1_1``.
        state: loaded VGG weights; if ``None``, :func:`~vidstyle.nets.vgg.load_vgg_state` with
            ``weights`` and ``convention`` (a local file, ``"torchvision"``, or ``$VIDSTYLE_VGG_WEIGHTS``).
        extra_layers: further (shallower) layers whose activations :meth:`features` also returns.
    """

    def __init__(self, *, layer: str = "relu3_1", state: VGGState | None = None,
                 weights: str | os.PathLike | None = None, convention: Literal["caffe", "torchvision"] | None = None,
                 extra_layers: tuple[str, ...] = ()) -> None:
        super().__init__()
        _check_layer(layer)
        if state is None:
            state = load_vgg_state(weights=weights, convention=convention)
        self.layer = layer
        self.source = state.source
        self.convention = state.convention
        self.fingerprint = vgg_fingerprint(state)
        for extra in extra_layers:
            if extra not in VGG19_LAYERS or VGG19_LAYERS.index(extra) > VGG19_LAYERS.index(layer):
                raise OptionValueError("extra_layers", f"extra layer {extra!r} is not a VGG19 layer at or before {layer}")
        self.vgg = VGGFeatures(layers=tuple(dict.fromkeys((*extra_layers, layer))), state=state, pooling="max")

    @property
    def downsampling(self) -> int:
        return 2 ** int(self.layer[4]) // 2

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every requested layer's activations (``layer`` and ``extra_layers``) of ``x`` reflection-padded
        at the bottom/right to a multiple of 4, so a :class:`Decoder` can crop its output back to H×W."""
        check_image_batch(x, name="VGGEncoder input")
        return self.vgg(pad_to_multiple(x, 4)[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[self.layer]


class Decoder(nn.Module):
    """The mirror of :class:`VGGEncoder` up to ``layer``: features → RGB (N×3×H×W, clamped to [0, 1]
    in eval mode only).

    Any size: the encoder pads its input to a multiple of 4 (:func:`~vidstyle.nets.transformer.pad_to_multiple`);
    ``forward(feats, size=(H, W))`` crops the output back to the image's size (without ``size``: the
    features' size times the encoder's downsampling).
    """

    def __init__(self, *, layer: str = "relu3_1") -> None:
        super().__init__()
        self.layer = layer
        mods: list[nn.Module] = []
        for step in decoder_plan(layer):
            if step[0] == "conv":
                mods += [nn.ReflectionPad2d(1), nn.Conv2d(step[1], step[2], 3)]  # type: ignore[misc]
            elif step[0] == "relu":
                mods.append(nn.ReLU())
            else:
                mods.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.body = nn.Sequential(*mods)
        self.in_channels = _WIDTHS[f"conv{layer[4]}_1"][1]
        self.scale = 2 ** int(layer[4]) // 2

    def forward(self, feats: torch.Tensor, *, size: tuple[int, int] | None = None) -> torch.Tensor:
        if feats.ndim != 4 or feats.shape[1] != self.in_channels:
            raise ModelError(f"a {self.layer} decoder takes N×{self.in_channels}×H×W features, got {tuple(feats.shape)}")
        out = self.body(feats * FEATURE_SCALE)
        if size is not None:
            th, tw = size
            out = out[..., :th, :tw]
            if out.shape[-2] < th or out.shape[-1] < tw:  # features of an unpadded image: edge rows repeated
                out = F.pad(out, (0, tw - out.shape[-1], 0, th - out.shape[-2]), mode="replicate")
        return out if self.training else out.clamp(0.0, 1.0)


def vgg_fingerprint(state: VGGState) -> str:
    """A short hash of the VGG19 weights' first conv layer: which encoder a decoder belongs to, whatever
    the weights file is called."""
    import hashlib

    weight = state.convs["conv1_1"][0].detach().float().cpu().contiguous()
    return hashlib.sha256(weight.numpy().tobytes()).hexdigest()[:16]


def save_decoder(path: str | os.PathLike, *, decoder: Decoder, vgg_source: str, convention: str,
                 card: dict[str, Any] | None = None, fingerprint: str | None = None) -> Path:
    """Write a decoder file (safetensors with metadata) atomically; returns its path. ``fingerprint``:
    :func:`vgg_fingerprint` of the encoder's weights."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {
        "vidstyle.format": DECODER_FORMAT,
        "vidstyle.architecture": "decoder",
        "vidstyle.layer": decoder.layer,
        "vidstyle.vgg_source": Path(vgg_source).name if os.sep in vgg_source else vgg_source,
        "vidstyle.vgg_convention": convention,
        "vidstyle.card": json.dumps(card or {}, sort_keys=True),
        **({"vidstyle.vgg_fingerprint": fingerprint} if fingerprint else {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    publish(tmp, path)
    return path


def load_decoder(path: str | os.PathLike, *, layer: str | None = None) -> Decoder:
    """Load a decoder file (or a :mod:`vidstyle.train_decoder` checkpoint) in eval mode.

    The returned decoder has ``vgg_source``, ``vgg_convention`` and ``card`` attributes. Raises
    :class:`~vidstyle.errors.ModelError` when the file is not a decoder or was trained for another
    layer than ``layer`` (when given).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"decoder file {path} not found; train one with `vidstyle train --kind decoder`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a safetensors decoder file ({str(exc).splitlines()[0]})") from exc
    if meta.get("vidstyle.architecture") == "decoder":
        saved_layer, card = meta.get("vidstyle.layer", ""), json.loads(meta.get("vidstyle.card", "{}"))
        source, convention = meta.get("vidstyle.vgg_source", ""), meta.get("vidstyle.vgg_convention", "")
        fingerprint = meta.get("vidstyle.vgg_fingerprint", "")
    elif meta.get("kind") == "decoder_checkpoint":  # a training checkpoint: the decoder so far
        config = json.loads(meta.get("config", "{}"))
        saved_layer, card = config.get("layer", ""), {"checkpoint_iteration": int(meta.get("iteration", "0"))}
        source, convention = meta.get("vgg_source", ""), meta.get("vgg_convention", "")
        fingerprint = meta.get("vgg_fingerprint", "")
        tensors = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    else:
        got = meta.get("vidstyle.architecture") or "no vidstyle architecture"
        raise ModelError(f"{path} is not a decoder ({got}); pass a file written by `vidstyle train --kind decoder`")
    if saved_layer not in ENCODER_LAYERS:
        raise ModelError(f"{path}: decoder layer {saved_layer!r} is not one of {', '.join(ENCODER_LAYERS)}")
    if layer is not None and layer != saved_layer:
        raise ModelError(f"{path} decodes {saved_layer} features, not {layer}; use a {layer} decoder or encode at {saved_layer}")
    decoder = Decoder(layer=saved_layer)
    try:
        decoder.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit a {saved_layer} decoder ({str(exc).splitlines()[0]})") from exc
    decoder.vgg_source, decoder.vgg_convention, decoder.card = source, convention, card
    decoder.vgg_fingerprint = fingerprint
    return decoder.eval()
