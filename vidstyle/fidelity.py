"""Style fidelity: how much of a painting is in a stylized image (docs/architecture.md, "Metrics").

The standard Gram style loss of Gatys et al. and Johnson et al., on the Caffe-convention VGG19 prefix:

    G_l(x)  = F_l(x)·F_l(x)ᵀ / (C_l·H_l·W_l)                         (:func:`vidstyle.losses.gram_matrix`)
    L(x)    = Σ_{l ∈ relu1_2, relu2_2, relu3_3} ‖G_l(x) − G_l(painting)‖²_F

(the squared Frobenius norm, i.e. the **sum** of the squared differences of the Gram entries:
:func:`vidstyle.losses.style_loss` with ``reduction="sum"``), the painting analysed at
:data:`PAINTING_SIZE` = 512 px on its long side. Averaging the entries instead would weigh relu3_3,
where the motifs live, C² = 16× less than relu1_2 relative to this form.

The loss network is VGG19 as published, max pooling included (:func:`fidelity_vgg`).

* **style ratio** = ``L(output) / L(photo)``: 1 means no style, lower means more of the painting.
* **texture ratio**: the same ratio with output, photo and painting in grey (BT.601 luma,
  :mod:`vidstyle.colour`, replicated to 3 channels): it ignores the palette, so a colour transfer
  cannot pass it.
* **relative content loss** = mean over relu2_2 and relu3_3 of ``MSE(F(out), F(photo)) / mean(F(photo)²)``
  (the photo itself scores 0). Report it beside the ratios: a style that ate the content can score low.

Example::

    >>> ref = StyleReference("starry_night.jpg", vgg_weights="vgg19_caffe.safetensors")  # doctest: +SKIP
    >>> scores = ref(output_image, photo_image)  # numpy H×W×3, uint8/uint16/float  # doctest: +SKIP
    >>> scores.style_ratio, scores.texture_ratio, scores.content_loss  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidstyle.errors import InputNotFoundError, ShapeError
from vidstyle.options.spec import OptionValueError

__all__ = [
    "CONTENT_LAYERS",
    "FIDELITY_LAYERS",
    "PAINTING_SIZE",
    "StyleReference",
    "StyleScores",
    "fidelity_vgg",
    "gram_targets",
    "mean_scores",
    "style_distance",
    "style_fidelity",
    "to_grey",
    "to_tensor",
]

#: layers of the style loss (Caffe-convention VGG19 prefix)
FIDELITY_LAYERS = ("relu1_2", "relu2_2", "relu3_3")
#: layers of the relative content loss
CONTENT_LAYERS = ("relu2_2", "relu3_3")
#: the painting is analysed at this many pixels on its long side
PAINTING_SIZE = 512


@dataclass(frozen=True)
class StyleScores:
    """Style fidelity of one output against one photo and one painting.

    Attributes:
        style_loss: ``L(output)``, the standard Gram loss against the painting.
        photo_style_loss: ``L(photo)``, the same for the unstylized photo.
        style_ratio: ``style_loss / photo_style_loss`` (1 = no style; lower = more of the painting).
        texture_ratio: the same ratio on luminance only (NaN when no grey Grams were given).
        content_loss: relative content loss (0 for the photo itself).
    """

    style_loss: float
    photo_style_loss: float
    style_ratio: float
    texture_ratio: float
    content_loss: float


def mean_scores(scores: Sequence[StyleScores]) -> StyleScores:
    """Field-wise mean of several :class:`StyleScores` (e.g. over the frames of a video): the ratios are
    means of the per-image ratios. NaN fields when ``scores`` is empty."""
    if not scores:
        return StyleScores(*(math.nan,) * len(fields(StyleScores)))
    return StyleScores(**{f.name: float(np.mean([getattr(s, f.name) for s in scores])) for f in fields(StyleScores)})


# ----------------------------------------------------------------------------------------------- inputs


def to_tensor(image: Any, *, what: str = "image") -> torch.Tensor:
    """``H×W×3`` numpy (uint8, uint16 or float in 0..1), or a torch ``3×H×W`` / ``1×3×H×W`` tensor in
    [0, 1] → a ``1×3×H×W`` float32 tensor."""
    if isinstance(image, torch.Tensor):
        t = image.detach().float()
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[:2] != (1, 3):
            raise ShapeError(f"{what} must be a 3×H×W or 1×3×H×W tensor, got shape {tuple(image.shape)}")
        return t
    from vidstyle.frame import to_float32

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ShapeError(f"{what} must be an H×W×3 RGB image, got shape {arr.shape}")
    try:
        x = np.clip(to_float32(arr), 0.0, 1.0)
    except TypeError as exc:
        raise ShapeError(f"{what}: {exc}") from None
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB → its BT.601 luminance replicated to 3 channels (N×3×H×W)."""
    from vidstyle.colour import luma_torch

    return luma_torch(x).expand(-1, 3, -1, -1).contiguous()


def _resize_long_side(x: torch.Tensor, size: int) -> torch.Tensor:
    import cv2

    h, w = x.shape[-2:]
    s = size / max(h, w)
    if abs(s - 1) <= 1e-3:
        return x
    img = x[0].permute(1, 2, 0).numpy()
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)
    return torch.from_numpy(np.clip(img, 0.0, 1.0)).permute(2, 0, 1)[None].contiguous()


# ----------------------------------------------------------------------------------------------- maths


def gram_targets(features: Mapping[str, torch.Tensor], layers: Sequence[str] = FIDELITY_LAYERS) -> dict[str, torch.Tensor]:
    """``{layer: G}`` (1×C×C) of the painting's features."""
    from vidstyle.losses import gram_matrix

    missing = [layer for layer in layers if layer not in features]
    if missing:
        raise ShapeError(f"gram_targets: layers {', '.join(missing)} missing from the features given")
    return {layer: gram_matrix(features[layer]).detach() for layer in layers}


def style_distance(features: Mapping[str, torch.Tensor], grams: Mapping[str, torch.Tensor]) -> float:
    """``Σ_l ‖G_l(features) − grams_l‖²_F`` over the layers of ``grams`` (the standard form)."""
    from vidstyle.losses import style_loss

    return float(style_loss(features, grams, reduction="sum"))


def _content(features: Mapping[str, torch.Tensor], photo: Mapping[str, torch.Tensor]) -> float:
    terms = []
    for layer in CONTENT_LAYERS:
        f, p = features[layer].double(), photo[layer].double()
        if f.shape != p.shape:
            raise ShapeError(f"content loss: {layer} features {tuple(f.shape)} and the photo's {tuple(p.shape)} differ")
        denom = float(p.pow(2).mean())
        terms.append(float((f - p).pow(2).mean()) / denom if denom > 0 else math.nan)
    return float(np.mean(terms))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def fidelity_vgg(
    vgg_weights: str | os.PathLike | None = None,
    *,
    convention: str | None = None,
    pooling: str = "max",
    device: str | torch.device | None = None,
) -> nn.Module:
    """The loss network of the metric: :class:`~vidstyle.nets.vgg.VGGFeatures` for relu1_2 … relu3_3.

    ``vgg_weights``: a local file, ``"torchvision"``, or ``None`` for ``$VIDSTYLE_VGG_WEIGHTS``
    (:func:`~vidstyle.nets.vgg.load_vgg_state`); the standard figures use the Caffe-convention weights.
    ``pooling`` is ``"max"``, VGG19's own: the average pooling that the optimisation back end and training
    may use is a synthesis choice, and it changes the figures (e.g. 0.07 instead of 0.12 for a style ratio).
    """
    from vidstyle.nets.vgg import VGGFeatures, load_vgg_state

    state = load_vgg_state(weights=vgg_weights, convention=convention)  # type: ignore[arg-type]
    vgg = VGGFeatures(layers=FIDELITY_LAYERS, state=state, pooling=pooling)  # type: ignore[arg-type]
    return vgg.to(device) if device is not None else vgg


def _check_vgg(vgg: Any) -> None:
    layers = set(getattr(vgg, "layers", ()))
    missing = [layer for layer in FIDELITY_LAYERS if layer not in layers]
    if missing:
        raise OptionValueError("vgg", f"vgg must return the layers {', '.join(FIDELITY_LAYERS)}; it lacks {', '.join(missing)}")


def style_fidelity(
    output: Any,
    photo: Any,
    painting_grams: Mapping[str, torch.Tensor],
    *,
    vgg: nn.Module,
    grey_grams: Mapping[str, torch.Tensor] | None = None,
) -> StyleScores:
    """Style loss, style ratio, texture ratio and relative content loss of ``output`` (module docstring).

    Args:
        output: the stylized image (``H×W×3`` numpy uint8/uint16/float, or a 3×H×W / 1×3×H×W tensor in [0, 1]).
        photo: the photo it was made from, same size.
        painting_grams: ``{layer: 1×C×C}`` Gram matrices of the painting for relu1_2, relu2_2, relu3_3
            (:func:`gram_targets`, or :attr:`StyleReference.grams`).
        vgg: a loss network returning at least those layers (:func:`fidelity_vgg`).
        grey_grams: the same for the painting in grey; without them ``texture_ratio`` is NaN.

    Shape:
        - output, photo: ``H×W×3`` or ``(1, 3, H, W)``.
    """
    _check_vgg(vgg)
    missing = [layer for layer in FIDELITY_LAYERS if layer not in painting_grams]
    if missing:
        raise OptionValueError("painting_grams", f"painting_grams lacks the layers {', '.join(missing)}")
    out_t, photo_t = to_tensor(output, what="output"), to_tensor(photo, what="photo")
    if out_t.shape != photo_t.shape:
        raise ShapeError(
            f"output is {out_t.shape[-1]}×{out_t.shape[-2]} but photo is {photo_t.shape[-1]}×{photo_t.shape[-2]}; "
            "compare an output with the photo it was made from, at one size"
        )
    param = next(iter(vgg.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    grams = {layer: painting_grams[layer].to(device) for layer in FIDELITY_LAYERS}
    with torch.no_grad():
        both = torch.cat([out_t, photo_t]).to(device)
        feats = vgg(both)
        f_out = {k: v[:1] for k, v in feats.items()}
        f_photo = {k: v[1:] for k, v in feats.items()}
        loss = style_distance(f_out, grams)
        photo_loss = style_distance(f_photo, grams)
        content = _content(f_out, f_photo)
        texture = math.nan
        if grey_grams is not None:
            g = {layer: grey_grams[layer].to(device) for layer in FIDELITY_LAYERS}
            grey_feats = vgg(to_grey(both))
            texture = _ratio(
                style_distance({k: v[:1] for k, v in grey_feats.items()}, g),
                style_distance({k: v[1:] for k, v in grey_feats.items()}, g),
            )
    return StyleScores(
        style_loss=loss,
        photo_style_loss=photo_loss,
        style_ratio=_ratio(loss, photo_loss),
        texture_ratio=texture,
        content_loss=content,
    )


class StyleReference(nn.Module):
    """A painting's Gram matrices (colour and grey) for one loss network, computed once.

    ``StyleReference(painting, vgg_weights=...)(output, photo)`` equals :func:`style_fidelity`
    ``(output, photo, ref.grams, vgg=ref.vgg, grey_grams=ref.grey_grams)``.

    Args:
        painting: an image file path, or an ``H×W×3`` numpy image (uint8/uint16/float), or a tensor.
        vgg: a loss network returning relu1_2, relu2_2 and relu3_3; default :func:`fidelity_vgg` ``(vgg_weights)``.
        vgg_weights: the VGG19 weights file when ``vgg`` is not given (``None``: ``$VIDSTYLE_VGG_WEIGHTS``).
        size: the painting's long side in pixels for the analysis (default 512, the standard figure).
    """

    def __init__(
        self,
        painting: str | os.PathLike | np.ndarray | torch.Tensor,
        *,
        vgg: nn.Module | None = None,
        vgg_weights: str | os.PathLike | None = None,
        size: int = PAINTING_SIZE,
    ) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 16:
            raise OptionValueError("size", f"size must be an integer ≥ 16 (pixels on the long side), got {size!r}")
        if isinstance(painting, (str, os.PathLike)):
            path = Path(painting)
            if not path.is_file():
                raise InputNotFoundError(f"painting {path} not found; pass an existing image file as `painting`")
            from vidstyle.train import load_image

            image = load_image(path)[None]
            self.source = str(path)
        else:
            image = to_tensor(painting, what="painting")
            self.source = "array"
        if vgg is None:
            vgg = fidelity_vgg(vgg_weights)
        _check_vgg(vgg)
        self.vgg = vgg
        self.size = size
        image = _resize_long_side(image, size)
        self.painting_size = (int(image.shape[-2]), int(image.shape[-1]))
        param = next(iter(vgg.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            colour = gram_targets(vgg(image.to(device)))
            grey = gram_targets(vgg(to_grey(image).to(device)))
        for layer in FIDELITY_LAYERS:
            self.register_buffer(f"gram_{layer}", colour[layer], persistent=False)
            self.register_buffer(f"grey_{layer}", grey[layer], persistent=False)

    @property
    def grams(self) -> dict[str, torch.Tensor]:
        """``{layer: 1×C×C}`` Gram matrices of the painting."""
        return {layer: getattr(self, f"gram_{layer}") for layer in FIDELITY_LAYERS}

    @property
    def grey_grams(self) -> dict[str, torch.Tensor]:
        """The same for the painting in grey (luma replicated to 3 channels)."""
        return {layer: getattr(self, f"grey_{layer}") for layer in FIDELITY_LAYERS}

    def forward(self, output: Any, photo: Any) -> StyleScores:  # type: ignore[override]
        return style_fidelity(output, photo, self.grams, vgg=self.vgg, grey_grams=self.grey_grams)
