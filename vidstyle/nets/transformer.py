"""Feed-forward image transformation networks (Johnson et al. 2016 family).

Downsampling convs, residual blocks, resize-then-conv upsampling (no checkerboard), instance
norm, reflection padding. One class, :class:`TransformerNet`, sized by :class:`NetConfig`:

* ``full``: the size of Johnson et al. (32-64-128 channels, 5 residual blocks, 9×9 end convs).
* ``small``: depthwise-separable, 16-32-64 channels, 4 residual blocks.
* ``tiny``: every layer at 1/4 resolution: a 4×4 space-to-depth of the image (48 channels), a 3×3
  conv to 32 channels, 4 depthwise-separable residual blocks, a 3×3 conv back to 48 channels and a
  depth-to-space (sub-pixel output, Shi et al. 2016), then a fixed [1,2,2,2,1]/8 low-pass that removes
  the 4-pixel grid a sub-pixel output otherwise paints at fixed screen positions — real time on a
  laptop CPU (1.1 GFLOP per 640×360 frame). A CPU runs the small full- and half-resolution layers
  of a classic pyramid far below its peak (they are memory-bound), so removing them is what makes it
  fast; the output stays a residual to the full-resolution input, so edges keep their sharpness.
* ``tiny_pyramid``: the previous ``tiny`` (depthwise-separable, 8-24-48 channels, 3 residual blocks,
  3×3 end convs; ~2.7× slower on a 2-core CPU), kept so that models trained with it are reproducible.

Input and output are RGB in [0, 1], N×3×H×W, any H and W (padded to a multiple of 4 by reflection
and cropped back). The raw output is not clamped during training; :meth:`TransformerNet.forward`
clamps only in eval mode.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.filtering import separable_filter

__all__ = ["NetConfig", "TransformerNet", "PRESETS", "pad_to_multiple", "check_image_batch"]


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Architecture of a :class:`TransformerNet`.

    Attributes:
        channels: widths at full, 1/2 and 1/4 resolution.
        n_res: residual blocks at 1/4 resolution.
        depthwise: use depthwise-separable convs (3×3 depthwise + 1×1 pointwise) inside the net.
        kernel_in: kernel of the first conv (full resolution).
        kernel_out: kernel of the last conv (full resolution).
        space_to_depth: encode by a 4×4 space-to-depth (pixel unshuffle) and decode by a conv to 48
            channels and a depth-to-space, so every layer runs at 1/4 resolution; only ``channels[2]``
            is used, and both end convs run at 1/4 resolution.
    """

    channels: tuple[int, int, int] = (32, 64, 128)
    n_res: int = 5
    depthwise: bool = False
    kernel_in: int = 9
    kernel_out: int = 9
    space_to_depth: bool = False

    def __post_init__(self) -> None:
        if len(self.channels) != 3 or any(int(c) < 1 for c in self.channels):
            raise InvalidOptionError(f"channels must be three positive widths, got {self.channels!r}")
        if self.n_res < 0:
            raise InvalidOptionError(f"n_res must be >= 0, got {self.n_res}")
        for k in (self.kernel_in, self.kernel_out):
            if k < 1 or k % 2 == 0:
                raise InvalidOptionError(f"kernels must be odd and positive, got {k}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidOptionError(f"unknown network config keys {sorted(unknown)}; known: {sorted(known)}")
        data = dict(data)
        if "channels" in data:
            data["channels"] = tuple(int(c) for c in data["channels"])
        return cls(**data)


PRESETS: dict[str, NetConfig] = {
    "full": NetConfig(channels=(32, 64, 128), n_res=5, depthwise=False, kernel_in=9, kernel_out=9),
    "small": NetConfig(channels=(16, 32, 64), n_res=4, depthwise=True, kernel_in=5, kernel_out=5),
    "tiny": NetConfig(channels=(32, 32, 32), n_res=4, depthwise=True, kernel_in=3, kernel_out=3, space_to_depth=True),
    "tiny_pyramid": NetConfig(channels=(8, 24, 48), n_res=3, depthwise=True, kernel_in=3, kernel_out=3),
}

# Side of the space-to-depth blocks of a ``space_to_depth`` net (its only resolution is 1/BLOCK).
S2D_BLOCK = 4


def check_image_batch(x: torch.Tensor, *, name: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is a floating N×3×H×W tensor."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ShapeError(f"{name} must be N×3×H×W, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be floating point, got {x.dtype}")


def pad_to_multiple(x: torch.Tensor, multiple: int, *, min_size: int = 1) -> tuple[torch.Tensor, int, int]:
    """Reflection-pad bottom/right so H and W are multiples of ``multiple`` and at least ``min_size``
    (replicate padding where the image is too small to reflect); returns (x, H, W)."""
    h, w = x.shape[-2:]
    th = -(-max(h, min_size) // multiple) * multiple
    tw = -(-max(w, min_size) // multiple) * multiple
    ph, pw = th - h, tw - w
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _conv(cin: int, cout: int, k: int, stride: int, depthwise: bool) -> nn.Module:
    pad = k // 2
    if depthwise and cin > 3 and k > 1:
        return nn.Sequential(
            nn.ReflectionPad2d(pad),
            nn.Conv2d(cin, cin, k, stride, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, 1, bias=True),
        )
    return nn.Sequential(nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, k, stride))


class _ConvNormAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int, depthwise: bool, act: bool = True) -> None:
        layers: list[nn.Module] = [_conv(cin, cout, k, stride, depthwise), nn.InstanceNorm2d(cout, affine=True)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    def __init__(self, c: int, depthwise: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _ConvNormAct(c, c, 3, 1, depthwise, act=True), _ConvNormAct(c, c, 3, 1, depthwise, act=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class _GridFilter(nn.Module):
    """Separable ``[1, 2, 2, 2, 1] / 8`` low-pass (replicate borders) after the depth-to-space output.

    Its frequency response is zero at 1/4, 1/2 and 3/4 cycles per pixel: exactly the harmonics of a
    pattern repeating every 4 pixels, which is what a 4×4 sub-pixel output otherwise paints into
    every frame at fixed screen positions (measured: it does not move with the scene, so temporal
    stabilisation cannot remove it; warping-error ratio 0.58 on cockatoo without this filter).
    """

    taps = (0.125, 0.25, 0.25, 0.25, 0.125)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16):
            # CPU elementwise ops on 16-bit floats are ~3.5x slower than on float32 (0.9 vs 3.2 ms at 640x360)
            return separable_filter(x.float(), self.taps).to(x.dtype)
        return separable_filter(x, self.taps)


class _Up(nn.Module):
    """Nearest ×2 then conv (resize-then-conv: no checkerboard artefacts)."""

    def __init__(self, cin: int, cout: int, depthwise: bool) -> None:
        super().__init__()
        self.conv = _ConvNormAct(cin, cout, 3, 1, depthwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformerNet(nn.Module):
    """Image transformation network; RGB [0,1] in, RGB [0,1] out, any size.

    Args:
        config: a :class:`NetConfig` or a preset name (``"tiny"``, ``"small"``, ``"full"``).
    """

    input_multiple = 4

    def __init__(self, *, config: NetConfig | str = "tiny") -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in PRESETS:
                raise InvalidOptionError(f"unknown network size {config!r}; choose one of {sorted(PRESETS)}")
            config = PRESETS[config]
        self.config = config
        # Smallest padded side for which every reflection pad fits and the 1/4-resolution maps have
        # more than one pixel (instance norm needs it): smaller frames are padded up, then cropped back.
        s2d, cs = config.space_to_depth, 3 * S2D_BLOCK * S2D_BLOCK
        pads = max(config.kernel_in // 2 + 1, config.kernel_out // 2 + 1)
        self.min_input = S2D_BLOCK * max(2, pads) if s2d else max(8, pads)
        c1, c2, c3 = config.channels
        dw = config.depthwise
        # encoder, residuals, decoder/head are created in this order for both layouts, so a seed gives
        # the pyramid nets the same initial weights as before the space-to-depth layout existed
        if s2d:
            self.encoder = nn.Sequential(nn.PixelUnshuffle(S2D_BLOCK), _ConvNormAct(cs, c3, config.kernel_in, 1, False))
        else:
            self.encoder = nn.Sequential(
                _ConvNormAct(3, c1, config.kernel_in, 1, False),
                _ConvNormAct(c1, c2, 3, 2, dw),
                _ConvNormAct(c2, c3, 3, 2, dw),
            )
        self.residuals = nn.Sequential(*[_Residual(c3, dw) for _ in range(config.n_res)])
        if s2d:
            self.decoder = nn.Sequential()
            self.head = nn.Sequential(
                nn.ReflectionPad2d(config.kernel_out // 2),
                nn.Conv2d(c3, cs, config.kernel_out),
                nn.PixelShuffle(S2D_BLOCK),
                _GridFilter(),
            )
        else:
            self.decoder = nn.Sequential(_Up(c3, c2, dw), _Up(c2, c1, dw))
            self.head = nn.Sequential(nn.ReflectionPad2d(config.kernel_out // 2), nn.Conv2d(c1, 3, config.kernel_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        xp, h, w = pad_to_multiple(x, self.input_multiple, min_size=self.min_input)
        y = self.head(self.decoder(self.residuals(self.encoder(xp))))
        # Residual to the input keeps colours and layout easy to learn; the net adds the style.
        y = y + xp
        y = y[..., :h, :w]
        if not self.training:
            y = y.clamp(0.0, 1.0)
        return y
