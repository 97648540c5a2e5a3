"""The arbitrary-style back end: any painting at run time, no training per style.

``output = decoder(transform(encoder(frame), style))``: the frame is encoded by VGG19 up to relu3_1
(:class:`~vidstyle.nets.decoder.VGGEncoder`), its features are moved toward the painting's statistics
(:mod:`vidstyle.stylize.transforms`: AdaIN, WCT or style swap) and a decoder trained by this project
(:class:`~vidstyle.nets.decoder.Decoder`, ``vidstyle train --kind decoder``) turns them back into a
picture. The painting is analysed **once**, when the stage is built (``prepare_style``); frames only pay
for the encoder, the transform and the decoder.

:class:`ArbitraryNet` is an ``nn.Module`` with the interface of a style network, so the feed-forward
stage runs it (batching, precision, stabilisation, keyframed ``style_strength`` = the transform's α).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidstyle.errors import CorruptInputError, InputNotFoundError, ModelError
from vidstyle.io.naming import with_parameter
from vidstyle.options.spec import OptionValueError

__all__ = ["DEFAULT_DECODER", "DEFAULT_STUDENT", "STUDENT_STYLE_STATISTICS", "ArbitraryNet", "build_arbitrary_model",
           "find_decoder"]

#: the decoder the project ships (``models/decoder_relu31.safetensors``)
DEFAULT_DECODER = "decoder_relu31"
#: the fast variant's model file (``models/student_relu31.safetensors``; ``vidstyle train --kind student``)
DEFAULT_STUDENT = "student_relu31"
#: where the fast variant takes a painting's statistics from: ``"vgg"`` (VGG19 relu3_1, once per painting; needs
#: the VGG weights the student was distilled from) or ``"student"`` (its own encoder: no VGG at all). Whichever
#: measures better (``benchmarks/bench_arbitrary.py --student``, rows ``fast_vgg`` and ``fast``): VGG (the shipped
#: student: style ratio 1.13× the VGG variant's with VGG statistics, 1.25× with its own)
STUDENT_STYLE_STATISTICS = "vgg"
#: the long side a painting is analysed at, before ``style_scale``
STYLE_SIZE = 512
#: a painting longer than this (px) is shrunk when read, before it becomes a float tensor, with a note
HUGE_STYLE = 8192


def find_decoder(spec: str | os.PathLike[str] | None, *, fast: bool = False) -> Path:
    """A decoder file (``fast``: a student model file): a path, or a name looked up where shipped models live."""
    from vidstyle.nets.registry import models_dirs, shipped_arbitrary_file

    what, kind = ("student model", "student") if fast else ("decoder", "decoder")
    text = os.fspath(spec) if spec is not None else (DEFAULT_STUDENT if fast else DEFAULT_DECODER)
    p = Path(text)
    if p.suffix == ".safetensors" or os.sep in text:
        if not p.is_file():
            raise with_parameter(InputNotFoundError(f"{what} file {p} not found; check the path, or train one with "
                                                    f"`vidstyle train --kind {kind}`"), "decoder")
        return p
    for folder in models_dirs():
        candidate = folder / f"{text}.safetensors"
        if candidate.is_file():
            return candidate
    shipped = shipped_arbitrary_file(text)  # not installed: the project's decoder or student is downloaded
    if shipped is not None:
        return shipped
    raise with_parameter(ModelError(f"no {what} named {text!r}; give a .safetensors path as `decoder` (train one with "
                                    f"`vidstyle train --kind {kind}`)"), "decoder")


class ArbitraryNet(nn.Module):
    """Encoder → feature transform toward prepared style statistics → decoder; RGB [0, 1] in and out.

    ``forward(x, strength=None)``: ``strength`` (N values in [0, 1], or one) is the transform's α:
    0 gives the decoded photo, 1 the full style.
    """

    styles: list[str] = []  # not a multi-style network
    #: the style strength is applied in feature space (see :mod:`vidstyle.stylize.style_control`)
    feature_strength = True

    def __init__(self, *, encoder: nn.Module, decoder: nn.Module, statistics: Any, method: str,
                 preserve_color: str | None = None, stat_smoothing: float = 0.0) -> None:
        super().__init__()
        from vidstyle.stylize.stat_smoothing import StatSmoother

        self.encoder = encoder
        self.decoder = decoder
        self.statistics = statistics
        self.method = method
        self.preserve_color = preserve_color
        #: the content statistics averaged over the frames of the stream (AdaIN, WCT; temporal state,
        #: see :mod:`vidstyle.stylize.stat_smoothing`); ``None``: each frame's own statistics
        self.smoother = (StatSmoother(smoothing=stat_smoothing)
                         if stat_smoothing > 0 and method in ("adain", "wct") else None)
        #: the frame numbers of the batch about to run (set by the stage): region matte sequences follow them
        self.frame_numbers: list[int] | None = None

    def for_inference(self) -> ArbitraryNet:
        """A copy for inference whose VGG decoder runs in its exact fused form
        (:class:`~vidstyle.nets.fused_decoder.FusedDecoder`: same output to float32 round-off, less work); it shares
        the encoder, the style statistics and the temporal state's settings with this net. Another decoder (the fast
        variant's student) is kept as it is. This net is not modified."""
        import copy

        from vidstyle.nets.decoder import Decoder
        from vidstyle.nets.fused_decoder import fuse_decoder

        if not isinstance(self.decoder, Decoder):
            return self
        net = copy.copy(self)
        net._modules = dict(self._modules)  # noqa: SLF001 - a shallow copy must not share the children's table
        net._parameters, net._buffers = dict(self._parameters), dict(self._buffers)  # noqa: SLF001
        net.smoother = copy.deepcopy(self.smoother)
        net.decoder = fuse_decoder(self.decoder)
        return net.eval()

    def _frame_regions(self, stats: Any, x: torch.Tensor) -> Any:
        """``stats`` with each matte sequence's mattes of this batch's frames (N×H×W at the frames' size;
        :attr:`frame_numbers`, set by the stage before each call); unchanged without sequences."""
        if not stats.sequences:
            return stats
        numbers = self.frame_numbers
        if numbers is None or len(numbers) != x.shape[0]:
            raise RuntimeError("internal error: region matte sequences need the frames' numbers")  # pragma: no cover
        size = (int(x.shape[-2]), int(x.shape[-1]))
        regions = tuple((st, m if seq is None else torch.from_numpy(np.stack([seq.alpha(n, size) for n in numbers])))
                        for (st, m), seq in zip(stats.regions, stats.sequences))
        return dataclasses.replace(stats, regions=regions)

    def reset_temporal(self) -> None:
        """Forget the smoothed content statistics (a new stream starts)."""
        if self.smoother is not None:
            self.smoother.reset()

    def _content_stats(self, feats: torch.Tensor) -> list[Any] | None:
        """Each image's smoothed content statistics, in batch order (= stream order), or ``None``."""
        if self.smoother is None:
            return None
        from vidstyle.stylize.stat_smoothing import content_statistics

        return [self.smoother.update(content_statistics(feats[i], covariance=self.method == "wct"))
                for i in range(feats.shape[0])]

    def forward(self, x: torch.Tensor, strength: torch.Tensor | float | None = None) -> torch.Tensor:
        from vidstyle.stylize import transforms

        feats = self.encoder(x)
        stats = self.statistics
        if self.method == "adain" and hasattr(self.decoder, "decode_affine") \
                and isinstance(stats, transforms.StyleStatistics):
            return self._adain_folded(x, feats, stats, strength)
        fn = {"adain": transforms.adain, "wct": transforms.wct, "swap": transforms.style_swap}[self.method]
        if isinstance(stats, transforms.StyleRegions):
            stats = self._frame_regions(stats, x)
            fn = transforms.regional_transform
            smoothed = None  # per-region statistics are taken inside each matte, frame by frame
        else:
            smoothed = self._content_stats(feats)
        kw: dict[str, Any] = {} if smoothed is None else {"content_stats": smoothed}
        if strength is None or isinstance(strength, float):
            moved = fn(feats, stats, strength=1.0 if strength is None else float(strength), **kw)
        else:
            values = strength.flatten().tolist()
            if len(set(values)) == 1:
                moved = fn(feats, stats, strength=float(values[0]), **kw)
            else:
                moved = torch.cat([fn(feats[i:i + 1], stats, strength=float(v),
                                      **({} if smoothed is None else {"content_stats": smoothed[i:i + 1]}))
                                   for i, v in enumerate(values)])
        y = self.decoder(moved.to(feats.dtype), size=tuple(x.shape[-2:]))
        return self._colours(y, x)

    def _colours(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from vidstyle.stylize import transforms

        if self.preserve_color:
            y = transforms.keep_colours(y.float().clamp(0, 1), x.float()).to(y.dtype)
        return y

    def _adain_folded(self, x: torch.Tensor, feats: torch.Tensor, stats: Any,
                      strength: torch.Tensor | float | None) -> torch.Tensor:
        """AdaIN folded into the decoder's first layer (the fast variant's decoder has ``decode_affine``): the same
        output as decoding the moved features, without writing them (one pass fewer over 256 channels each way)."""
        from vidstyle.stylize import transforms

        smoothed = self._content_stats(feats)
        if strength is None or isinstance(strength, float):
            values = [1.0 if strength is None else float(strength)] * feats.shape[0]
        else:
            values = [float(v) for v in strength.flatten().tolist()]
            values = values * feats.shape[0] if len(values) == 1 else values
        scales, shifts = [], []
        for i, v in enumerate(values):
            a, b = transforms.adain_affine(feats[i:i + 1], stats, strength=v,
                                           content_stats=None if smoothed is None else smoothed[i:i + 1])
            scales.append(a)
            shifts.append(b)
        y = self.decoder.decode_affine(feats, torch.cat(scales), torch.cat(shifts), size=tuple(x.shape[-2:]))
        return self._colours(y, x)


def build_arbitrary_model(*, styles: Sequence[Any], method: str = "adain", decoder: str | None = None,
                          vgg_weights: str | None = None, vgg_convention: str | None = None,
                          preserve_color: str | None = None, style_scale: float = 1.0,
                          style_rotate: float = 0.0, stat_smoothing: float = 0.0, fast: bool = False,
                          style_statistics: str | None = None, analysis_dtype: torch.dtype | None = None) -> Any:
    """A :class:`~vidstyle.nets.registry.StyleModel` running :class:`ArbitraryNet` for ``styles``
    (:class:`~vidstyle.options.StyleImage` entries: paths, blend weights and region mattes).

    Styles with a matte (``a.jpg@matte_a.png``) are per-region styles
    (:func:`~vidstyle.stylize.transforms.regional_transform`): the ones sharing a matte blend by their
    weights, the ones without a matte fill what no matte covers. ``style_scale`` sets the size the
    paintings are analysed at (the brush size: 1 = 512 px on the long side), ``style_rotate`` turns them
    (degrees counter-clockwise: the strokes' direction; :func:`~vidstyle.stylize.style_image.rotate_image`).

    The decoder must decode the encoder's layer, and must have been trained on the same VGG19 weights
    (a decoder learns one encoder's features): a mismatch is refused with a one-line error.

    A painting longer than :data:`HUGE_STYLE` px is shrunk as it is read; the model's
    ``metadata["notes"]`` says so (the stage passes it on as a run warning).

    ``stat_smoothing`` (λ in [0, 1)): AdaIN and WCT use content statistics averaged over the stream's
    frames (:mod:`vidstyle.stylize.stat_smoothing`); 0 uses each frame's own.

    ``fast``: the distilled student (:mod:`vidstyle.nets.student`) replaces VGG19 and the decoder; ``decoder``
    then names a student model file (default :data:`DEFAULT_STUDENT`). The paintings are analysed by
    ``style_statistics`` (default :data:`STUDENT_STYLE_STATISTICS`): ``"student"``, its own encoder (no VGG
    weights needed), or ``"vgg"``, VGG19 relu3_1 once per painting.

    ``analysis_dtype``: ``torch.bfloat16`` runs the paintings' encoder pass under CPU autocast (the run's
    own precision, in which its network then runs): 1.5× faster for a 512 px painting through VGG19;
    the statistics are still computed and kept in float32, channel means and deviations within 0.1 %
    of the float32 pass's. ``None`` or float32: the float32 pass.

    Raises:
        InputNotFoundError, ModelError, OptionValueError: a missing painting or decoder, a decoder of
            another layer or VGG, a painting too small to analyse.
    """
    from vidstyle.io.imagefiles import read_image
    from vidstyle.nets.registry import StyleModel
    from vidstyle.stylize import transforms
    from vidstyle.stylize.feedforward import image_to_tensor

    path = find_decoder(decoder, fast=fast)
    if fast:
        encoder, dec, style_encoder = _student_parts(path, style_statistics=style_statistics or STUDENT_STYLE_STATISTICS,
                                                     vgg_weights=vgg_weights, vgg_convention=vgg_convention)
    else:
        encoder, dec = _vgg_parts(path, vgg_weights=vgg_weights, vgg_convention=vgg_convention)
        style_encoder = encoder
    feats, notes = [], []
    long_side = max(32, round(STYLE_SIZE * style_scale))
    for style in styles:
        if not Path(style.path).is_file():
            raise InputNotFoundError(f"style image {style.path} not found; check the path")
        try:
            image = read_image(style.path)
        except CorruptInputError:
            raise CorruptInputError(f"style image {style.path} is not a readable image; re-export it (PNG, JPEG) or "
                                    "pick another painting") from None
        h, w = image.shape[:2]
        if min(h, w) < 32:
            raise OptionValueError("style", f"style image {style.path} is {w}×{h}; it must be at least 32 px on each side")
        if max(h, w) > HUGE_STYLE:  # shrink the 8-bit (or 16-bit) pixels first: a float copy would take gigabytes
            image = _shrink(image, min(HUGE_STYLE, 2 * long_side))
            notes.append(f"style image {style.path} is {w}×{h} px (more than {HUGE_STYLE} px); it was downscaled "
                         f"and analysed at {long_side} px on its long side, as every painting is (style_scale "
                         f"{style_scale:g})")
        if style_rotate:
            from vidstyle.stylize.style_image import rotate_image

            image = rotate_image(image, style_rotate)
        t = transforms.style_image_at(image_to_tensor(image)[None], long_side=long_side)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=analysis_dtype == torch.bfloat16):
            feats.append(style_encoder(t).float())
    stats = _statistics(styles, feats, method)
    net = ArbitraryNet(encoder=encoder, decoder=dec, statistics=stats, method=method, preserve_color=preserve_color,
                       stat_smoothing=stat_smoothing)
    names = ", ".join(Path(s.path).stem for s in styles)
    return StyleModel(net=net.eval(), name=f"{method}{'-fast' if fast else ''}:{names}", architecture="arbitrary",
                      metadata={"path": str(path), "style": names, "decoder": path.name, "notes": notes,
                                "fast": fast})


def _vgg_parts(path: Path, *, vgg_weights: str | None, vgg_convention: str | None) -> tuple[nn.Module, nn.Module]:
    """The VGG variant: (VGG19 encoder, decoder), after checking that the decoder belongs to these VGG weights."""
    from vidstyle.nets.decoder import VGGEncoder, load_decoder
    from vidstyle.nets.student import is_student_file

    if is_student_file(path):
        raise with_parameter(ModelError(f"{path.name} is a student model (the fast variant): add `fast`, or give a VGG "
                                        "decoder as `decoder`"), "decoder", also=("fast",))
    dec = load_decoder(path)
    encoder = VGGEncoder(layer=dec.layer, weights=vgg_weights, convention=vgg_convention)  # type: ignore[arg-type]
    wanted = getattr(dec, "vgg_source", "") or ""
    have = Path(str(encoder.source)).name
    known = getattr(dec, "vgg_fingerprint", "")  # the weights themselves, whatever the file is called
    mismatch = known != encoder.fingerprint if known else (bool(wanted) and wanted != have)
    if mismatch and not os.environ.get("VIDSTYLE_ANY_VGG"):
        raise ModelError(f"decoder {path.name} was trained on the VGG19 weights {wanted}, but the encoder has {have}; "
                         f"pass vgg_weights (--vgg-weights) pointing to {wanted}, or train a decoder for yours with "
                         "`vidstyle train --kind decoder`")
    return encoder, dec


def _student_parts(path: Path, *, style_statistics: str, vgg_weights: str | None,
                   vgg_convention: str | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The fast variant: (student encoder, student decoder, the encoder that analyses the paintings)."""
    from vidstyle.nets.student import load_student

    if style_statistics not in ("student", "vgg"):
        raise OptionValueError("style_statistics", f"style_statistics must be 'student' or 'vgg', got {style_statistics!r}")
    try:
        student = load_student(path)
    except ModelError as exc:
        if "a VGG decoder" in str(exc):
            raise with_parameter(ModelError(f"{path.name} is a VGG decoder, not a student model: drop `fast`, or give a "
                                            "student model (`vidstyle train --kind student`) as `decoder`"),
                                 "decoder", also=("fast",)) from None
        raise with_parameter(exc, "decoder") from None
    if style_statistics == "student":
        return student.encoder, student.decoder, student.encoder
    from vidstyle.nets.decoder import VGGEncoder

    vgg = VGGEncoder(layer="relu3_1", weights=vgg_weights, convention=vgg_convention)  # type: ignore[arg-type]
    if student.vgg_fingerprint and vgg.fingerprint != student.vgg_fingerprint and not os.environ.get("VIDSTYLE_ANY_VGG"):
        raise ModelError(f"student {path.name} was distilled from the VGG19 weights {student.vgg_source}, but "
                         f"vgg_weights (--vgg-weights) gives {Path(str(vgg.source)).name}; pass {student.vgg_source}")
    return student.encoder, student.decoder, vgg


def _statistics(styles: Sequence[Any], feats: list[torch.Tensor], method: str) -> Any:
    """One style blend (:class:`~vidstyle.stylize.transforms.StyleStatistics`), or per-region styles
    (:class:`~vidstyle.stylize.transforms.StyleRegions`) when any style has a matte."""
    from vidstyle.io.mattes import Matte
    from vidstyle.stylize import transforms

    groups: dict[str | None, list[int]] = {}
    for i, style in enumerate(styles):
        groups.setdefault(getattr(style, "matte", None), []).append(i)

    def prepare(idx: list[int]) -> Any:
        return transforms.prepare_style([feats[i] for i in idx], method=method,  # type: ignore[arg-type]
                                        weights=[styles[i].weight for i in idx])

    if list(groups) == [None]:
        return prepare(groups[None])
    mattes = {m: Matte(m, parameter="style") for m in groups if m is not None}
    # a sequence's first frame stands in until the frames' numbers are known (ArbitraryNet.frame_numbers)
    regions = tuple((prepare(idx), torch.from_numpy(mattes[m].read(mattes[m].first_number())))
                    for m, idx in groups.items() if m is not None)
    rest = prepare(groups[None]) if None in groups else None
    sequences = tuple(mattes[m] if mattes[m].is_sequence else None for m in groups if m is not None)
    return transforms.StyleRegions(method=method, regions=regions, rest=rest,
                                   sequences=sequences if any(sequences) else ())


def _shrink(image: Any, long_side: int) -> Any:
    """``image`` (H×W×3 array) resized with an area filter so its long side is ``long_side``."""
    import cv2

    h, w = image.shape[:2]
    s = long_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
