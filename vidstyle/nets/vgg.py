"""VGG19 loss network: a prefix of torchvision's ``vgg19().features``, from either source.

Sources of weights and their input conventions (the loader must know which one it has):

* ``"torchvision"``: ``torchvision.models.VGG19_Weights.IMAGENET1K_V1`` through the weights API
  (downloaded into the torch cache on first use, only when a :class:`VGGFeatures` is built).
  Convention: RGB in [0, 1], normalised by the ImageNet mean and std.
* a local file (``vgg_weights`` or ``VIDSTYLE_VGG_WEIGHTS``): safetensors (or a
  ``weights_only`` torch file) with keys ``features.N.weight/bias`` (or ``N.weight``) of any prefix of
  VGG19. Convention from the file's metadata (``convention`` = ``caffe``/``torchvision``, or an
  ``input`` description mentioning Caffe), else from the ``convention`` argument. Caffe: RGB in
  [0, 255] minus the mean (123.68, 116.779, 103.939), no std division.

Features are taken after ReLU (``relu3_1``), after conv (``conv3_1``) or after pooling (``pool2``);
layer names are validated against the layers that the loaded weights provide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InputNotFoundError, InvalidOptionError, ModelError, WeightsUnavailableError
from vidstyle.io.naming import with_parameter
from vidstyle.options.spec import OptionValueError

__all__ = ["VGG19_LAYERS", "VGGFeatures", "load_vgg_state", "VGGState", "DEFAULT_STYLE_LAYERS", "DEFAULT_CONTENT_LAYER"]

# (name, torchvision features index) for the convs of VGG19; relus follow at index+1, pools after blocks.
_CONV_BLOCKS = [2, 2, 4, 4, 4]
VGG19_LAYERS: list[str] = []
_CONV_INDEX: dict[str, int] = {}
_idx = 0
for _b, _n in enumerate(_CONV_BLOCKS, start=1):
    for _i in range(1, _n + 1):
        _CONV_INDEX[f"conv{_b}_{_i}"] = _idx
        VGG19_LAYERS += [f"conv{_b}_{_i}", f"relu{_b}_{_i}"]
        _idx += 2
    VGG19_LAYERS.append(f"pool{_b}")
    _idx += 1

DEFAULT_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3")
DEFAULT_CONTENT_LAYER = "relu2_2"

_CAFFE_MEAN = (123.68, 116.779, 103.939)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

Convention = Literal["caffe", "torchvision"]


@dataclass(frozen=True, slots=True)
class VGGState:
    """Loaded VGG19 conv weights: ``convs[name] = (weight, bias)`` for a prefix of VGG19."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    convention: Convention
    source: str

    @property
    def last_conv(self) -> str:
        return list(self.convs)[-1]


def _convs_from_features(sd: dict[str, torch.Tensor], source: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    by_index: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "features":
            parts = parts[1:]
        if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ("weight", "bias"):
            raise with_parameter(ModelError(f"{source} is not VGG19 weights (key {key!r}); pass the ImageNet VGG19 "
                                            "weights as `vgg_weights` (keys like 'features.0.weight'), not a style model"),
                                 "vgg_weights")
        by_index.setdefault(int(parts[0]), {})[parts[1]] = value
    convs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, index in _CONV_INDEX.items():
        if index not in by_index:
            break
        entry = by_index.pop(index)
        if "weight" not in entry or "bias" not in entry or entry["weight"].ndim != 4:
            raise ModelError(f"{source}: layer {name} (features.{index}) is incomplete or not a conv")
        convs[name] = (entry["weight"].float(), entry["bias"].float())
    if by_index:
        raise ModelError(
            f"{source}: keys features.{sorted(by_index)} are not a contiguous prefix of VGG19's conv layers"
        )
    if not convs:
        raise ModelError(f"{source}: no VGG19 conv layers found (expected keys like 'features.0.weight')")
    prev_out = 3
    for name, (w, _b) in convs.items():
        if w.shape[1] != prev_out or w.shape[2:] != (3, 3):
            raise ModelError(f"{source}: {name} has shape {tuple(w.shape)}, which is not VGG19's")
        prev_out = w.shape[0]
    return convs


def load_vgg_state(
    *, weights: str | os.PathLike | None = None, convention: Convention | None = None
) -> VGGState:
    """Load VGG19 conv weights.

    Args:
        weights: a local file, ``"torchvision"`` (download through torchvision's weights API), or
            ``None``: ``$VIDSTYLE_VGG_WEIGHTS`` if set, else torchvision.
        convention: input convention of a local file when its metadata does not say.
    """
    if weights is None:
        weights = os.environ.get("VIDSTYLE_VGG_WEIGHTS") or "torchvision"
    if str(weights) == "torchvision":
        from torchvision.models import VGG19_Weights, vgg19

        try:
            model = vgg19(weights=VGG19_Weights.IMAGENET1K_V1, progress=False)
        except Exception as exc:  # URLError, socket errors, hash mismatch...
            raise with_parameter(WeightsUnavailableError(
                "VGG19 ImageNet weights are not in the torch cache and could not be downloaded "
                f"({type(exc).__name__}); connect to the internet once, or pass a local file as "
                "`vgg_weights` (or set VIDSTYLE_VGG_WEIGHTS)"
            ), "vgg_weights") from exc
        sd = {f"features.{k}": v for k, v in model.features.state_dict().items()}
        return VGGState(convs=_convs_from_features(sd, "torchvision VGG19"), convention="torchvision", source="torchvision:IMAGENET1K_V1")

    path = Path(weights)
    if not path.is_file():
        raise with_parameter(InputNotFoundError(
            f"VGG weights file {path} not found; pass an existing file as `vgg_weights`, or "
            "'torchvision' to download ImageNet VGG19"
        ), "vgg_weights")
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                sd = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path} is not a valid safetensors file ({exc}); re-download or re-convert it") from exc
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"{path} cannot be loaded safely (weights_only): {str(exc).splitlines()[0]}; "
                "convert it to safetensors"
            ) from exc
        if not isinstance(obj, dict):
            raise ModelError(f"{path} does not hold a state dict; expected VGG19 features weights")
        sd = obj
    convs = _convs_from_features(sd, str(path))  # the keys first: a style model is not VGG weights, whatever its metadata
    found = meta.get("convention")
    if found is None and "caffe" in meta.get("input", "").lower():
        found = "caffe"
    conv = found or convention
    if conv is None:
        raise OptionValueError(
            "vgg_convention",
            f"{path} does not say which input convention its weights use; pass `vgg_convention` caffe "
            "(RGB 0..255 minus mean) or torchvision (0..1, ImageNet mean/std)",
        )
    if conv not in ("caffe", "torchvision"):
        raise InvalidOptionError(f"unknown VGG input convention {conv!r}; use 'caffe' or 'torchvision'")
    return VGGState(convs=convs, convention=conv, source=str(path))  # type: ignore[arg-type]


class VGGFeatures(nn.Module):
    """Frozen VGG19 prefix returning the requested layers' activations.

    ``forward(x)`` takes RGB in [0, 1] (N×3×H×W) and returns ``{layer: activation}``. Activations
    are on the Caffe scale whatever the source (torchvision-convention features are multiplied by
    255·0.226), so loss weights mean the same for both.

    Args:
        layers: names such as ``relu2_2``, ``conv3_1``, ``pool1`` (validated).
        state: loaded weights (:func:`load_vgg_state`).
        pooling: ``"avg"`` (smoother gradients, as Gatys et al. recommend) or ``"max"``.
    """

    def __init__(self, *, layers: list[str] | tuple[str, ...], state: VGGState, pooling: Literal["avg", "max"] = "avg") -> None:
        super().__init__()
        if pooling not in ("avg", "max"):
            raise InvalidOptionError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        if not layers:
            raise InvalidOptionError("VGGFeatures needs at least one layer name, e.g. relu2_2")
        available = []
        for name in VGG19_LAYERS:
            block = name[4:] if name.startswith(("conv", "relu")) else None
            if block is not None and f"conv{block}" not in state.convs:
                break
            if name.startswith("pool") and f"conv{name[4]}_1" not in state.convs:
                break
            available.append(name)
        for layer in layers:
            if layer not in VGG19_LAYERS:
                raise InvalidOptionError(f"unknown VGG19 layer {layer!r}; names look like relu3_1, conv2_2, pool1")
            if layer not in available:
                raise InvalidOptionError(
                    f"layer {layer} is deeper than the loaded VGG weights ({state.source} ends at {state.last_conv}); "
                    f"choose from {', '.join(n for n in available if n.startswith('relu'))}, or use full VGG19 weights"
                )
        self.layers = tuple(layers)
        self.convention = state.convention
        self.pooling = pooling
        last = max(VGG19_LAYERS.index(layer) for layer in layers)
        self._plan = VGG19_LAYERS[: last + 1]
        self.convs = nn.ModuleDict()
        for name in self._plan:
            if name.startswith("conv"):
                w, b = state.convs[name]
                conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(w)
                    conv.bias.copy_(b)
                self.convs[name] = conv
        if state.convention == "caffe":
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
            self.register_buffer("shift", -torch.tensor(_CAFFE_MEAN).view(1, 3, 1, 1), persistent=False)
            self.feature_gain = 1.0
        else:
            std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("scale", 1.0 / std, persistent=False)
            self.register_buffer("shift", -torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) / std, persistent=False)
            # Bring features to the Caffe scale (inputs there are ~255·0.226 times larger) so that loss
            # weights calibrated once hold for both sources.
            self.feature_gain = 255.0 * 0.226
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.addcmul(self.shift, x, self.scale)  # x·scale + shift in one pass
        out: dict[str, torch.Tensor] = {}
        wanted = set(self.layers)
        previous = ""
        for name in self._plan:
            if name.startswith("conv"):
                h = self.convs[name](h)
            elif name.startswith("relu"):
                # in place on the conv's fresh output (a conv's backward needs its input, not its output), unless
                # that output was asked for
                h = F.relu(h, inplace=previous not in wanted)
            else:
                h = F.avg_pool2d(h, 2) if self.pooling == "avg" else F.max_pool2d(h, 2)
            if name in wanted:
                out[name] = h if self.feature_gain == 1.0 else h * self.feature_gain
            previous = name
        return out
