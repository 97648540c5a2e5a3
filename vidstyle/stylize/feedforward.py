"""Feed-forward back end: a style network applied frame by frame, with temporal stabilisation.

:class:`FeedForwardStage` is the pipeline's stylize stage. It batches frames for the network
(``batch_size``), runs it under ``torch.inference_mode`` on the chosen device (optionally compiled and
channels-last), and, when the flow stage has filled ``Frame.flow_bwd``/``Frame.consistency``, blends
each output with the warped previous output (:mod:`vidstyle.stylize.temporal`). The temporal state
lives in the stage instance.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any
import warnings

import numpy as np
import torch

from vidstyle.errors import InvalidOptionError
from vidstyle.options.curve import Curve
from vidstyle.frame import Frame, chw_to_hwc, from_float32
from vidstyle.nets.fused import fuse_for_inference, with_fast_instance_norms
from vidstyle.nets.registry import DEFAULT_MODEL, StyleModel, load_model
from vidstyle.nets.transformer import TransformerNet
from vidstyle.runtime import PRECISIONS, resolve_device, resolve_precision
from vidstyle.stylize.style_control import StyleControl
from vidstyle.stylize.temporal import DEFAULT_STRENGTH, Stabilizer

__all__ = [
    "FeedForwardStage",
    "FeedForwardStylizer",
    "resolve_device",
    "resolve_precision",
    "PRECISIONS",
    "image_to_tensor",
    "images_to_batch",
    "tensor_to_image",
]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8/uint16/float image → 3×H×W float32 tensor in [0, 1] (CPU)."""
    t = torch.from_numpy(np.ascontiguousarray(image))
    if image.dtype == np.uint8:
        return t.permute(2, 0, 1).float().div_(255.0)
    if image.dtype == np.uint16:
        return t.to(torch.int32).permute(2, 0, 1).float().div_(65535.0)
    # out of place: for a float32 image ``float()`` is the image's own memory, which must not be clipped
    return t.permute(2, 0, 1).float().clamp(0.0, 1.0)


def images_to_batch(images: list[np.ndarray], *, device: torch.device) -> torch.Tensor:
    """Stack H×W×3 images of one size and dtype into an N×3×H×W float32 batch on ``device``.

    8- and 16-bit frames travel to the device as integers (a quarter / half of the bytes) and are
    converted there, which matters on a GPU.
    """
    first = images[0]
    if first.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(np.stack(images))).to(device, non_blocking=True)
        return t.permute(0, 3, 1, 2).float().div_(255.0)
    if first.dtype == np.uint16:
        t = torch.from_numpy(np.ascontiguousarray(np.stack(images)).astype(np.int32)).to(device, non_blocking=True)
        return t.permute(0, 3, 1, 2).float().div_(65535.0)
    return torch.stack([image_to_tensor(im) for im in images]).to(device)


def tensor_to_image(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """3×H×W tensor in [0, 1] → H×W×3 array of ``dtype`` (uint8, uint16 or float32).

    A planar (NCHW) tensor is quantised plane by plane and then interleaved (:func:`chw_to_hwc`): 0.4
    instead of 1.3 ms for a 640×360 frame, the same values."""
    t = t.detach().float().clamp(0.0, 1.0).cpu()
    hwc = t.permute(1, 2, 0)
    if hwc.is_contiguous():  # already H×W×C memory (the stabiliser's output)
        return np.ascontiguousarray(from_float32(hwc.numpy(), dtype))
    return chw_to_hwc(from_float32(t.contiguous().numpy(), dtype))


class FeedForwardStylizer:
    """A style network ready for inference: ``__call__(batch N×3×H×W in [0,1]) -> same``.

    Arguments as :class:`FeedForwardStage`, plus ``fuse``: run a :class:`TransformerNet` in its exact
    inference form (:func:`vidstyle.nets.fused.fuse_for_inference`, on by default); the caller's model
    is not modified.
    """

    def __init__(
        self,
        *,
        model: str | os.PathLike | StyleModel = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        compile: bool = False,
        channels_last: bool | None = None,
        precision: str = "float32",
        fuse: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, device=self.device)
        m = model if isinstance(model, StyleModel) else load_model(model)
        if fuse and isinstance(m.net, TransformerNet):
            # exact inference form: the decoder's upsample + conv run at the low resolution
            # (vidstyle.nets.fused; 1.3-1.6x faster for tiny/small on a CPU, BENCHMARKS.md)
            m = StyleModel(net=fuse_for_inference(copy.deepcopy(m.net)), name=m.name,
                           architecture=m.architecture, metadata=m.metadata)
        elif fuse and callable(getattr(m.net, "for_inference", None)):
            # the arbitrary back end: its VGG decoder's upsample + conv run at the low resolution
            # (vidstyle.nets.fused_decoder; same output to float32 round-off)
            m = StyleModel(net=m.net.for_inference(), name=m.name, architecture=m.architecture, metadata=m.metadata)
        elif fuse and not m.styles and not getattr(m.net, "feature_strength", False):  # other nets (engstrom2016): their instance norms as one-image batch norms
            m = StyleModel(net=with_fast_instance_norms(m.net), name=m.name,
                           architecture=m.architecture, metadata=m.metadata)
        self.model = m.to(self.device, self.dtype).eval()
        self.name = m.name
        if channels_last is None:
            # measured (BENCHMARKS.md): NHWC helps the depthwise pyramid nets on the CPU; it is slower
            # for the all-1/4-resolution tiny net in float32 (18 vs 20 ms, equal in bfloat16) and for
            # every net on an H200 (cuDNN, fp32/TF32)
            config = getattr(m.net, "config", None)
            channels_last = (self.device.type == "cpu" and bool(getattr(config, "depthwise", False))
                             and not getattr(config, "space_to_depth", False))
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._fn = self.model
        if compile:
            try:
                self._fn = torch.compile(self.model, dynamic=False)
            except Exception as exc:  # pragma: no cover - depends on the toolchain
                warnings.warn(f"torch.compile unavailable ({exc}); running eagerly", RuntimeWarning, stacklevel=2)

    @property
    def styles(self) -> list[str]:
        """The style names of a multi-style model (slot 0: the identity), else ``[]``."""
        return self.model.styles

    @property
    def feature_strength(self) -> bool:
        """Whether the network applies the style strength itself (the arbitrary-style back end)."""
        return bool(getattr(self.model.net, "feature_strength", False))

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor, mix: torch.Tensor | None = None,
                 strength: torch.Tensor | None = None) -> torch.Tensor:
        """``mix``: ``N×S`` style weights of a multi-style model (see :mod:`vidstyle.nets.multistyle`);
        ``strength``: N style strengths for a network with :attr:`feature_strength`."""
        x = batch.to(self.device, self.dtype, non_blocking=True)
        if x.dim() == 4 and x.shape[0] == 1 and x.stride(0) != x[0].numel():
            # a `[None]` view of a 3×H×W image (batch stride 3): the same memory with the batch stride of a real
            # batch, a layout oneDNN runs 1.4-1.8× faster (measured: tiny net, fast arbitrary variant)
            x = x.as_strided(x.shape, (x[0].numel(), *x.stride()[1:]))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if strength is not None:
            return self._fn(x, strength=strength).float()
        if self.styles:
            return self._fn(x, mix).float()
        return self._fn(x).float()


def _batched(a: np.ndarray | None, dims: int, device: torch.device) -> torch.Tensor | None:
    """``a`` as a tensor on ``device`` with ``dims`` leading axes of size 1 (``None`` stays ``None``)."""
    if a is None:
        return None
    return torch.from_numpy(np.ascontiguousarray(a))[(None,) * dims].to(device)


def _flow_of(frame: Frame, device: torch.device) -> dict[str, Any]:
    """The stabiliser's per-frame inputs from ``frame`` (flow back, mask, input warp error, scene cut), as tensors."""
    return {"flow_bwd": _batched(frame.flow_bwd, 1, device), "consistency": _batched(frame.consistency, 2, device),
            "warp_error": _batched(frame.warp_error, 2, device), "scene_cut": frame.scene_cut}


class FeedForwardStage:
    """Pipeline stage: fills ``frame.stylized`` using a feed-forward network.

    Args:
        model: shipped model name, model file path, or a loaded :class:`StyleModel`.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps``; ``None`` picks CUDA when available.
        batch_size: frames per network call (the stage holds frames back until a batch is full).
        compile: ``torch.compile`` the network (first call takes seconds; later calls are faster).
        channels_last: NHWC memory layout (default: on for depthwise nets on the CPU only, as measured).
        precision: ``float32`` (default, exact), ``bfloat16`` (GPUs; CPUs with AVX512-BF16 or AMX),
            ``float16`` (GPUs) or ``auto`` (bfloat16 where native, see :func:`resolve_precision`).
        stabilize: temporal stabilisation strength in [0, 1] (0 = per-frame), or a keyframed
            :class:`~vidstyle.options.Curve` over frame numbers; needs the flow stage.
        fuse: run a :class:`TransformerNet` in its exact fused inference form
            (:func:`vidstyle.nets.fused.fuse_for_inference`); ``False`` runs the net as trained.
        raw_output: write ``frame.stylized`` as the network's unquantised float32 ``H×W×3`` output
            (not clamped; a strided view) for a following stage, e.g.
            :class:`~vidstyle.stylize.stabilize.StabilizeStage`; the stage then does not stabilise
            itself (``stabilize`` must be 0).
        style_mix: a multi-style model's styles and weights (``((name, Curve), ...)``, see
            :class:`~vidstyle.options.StylizeOptions`), sampled at each frame's number.
        style_strength: 0 (the photo) to 1 (the full style), a number or a Curve.
        stabilizer: the stabilisation method, ``"blend"`` or ``"resample"`` (see :class:`Stabilizer`).
        style_scale: the brush size: the network runs on the frame resized by ``1 / style_scale`` and its
            output is resized back (bicubic), so strokes come out ``style_scale`` times their trained size
            (``> 1``: bigger strokes and less work; ``< 1``: finer strokes, ``style_scale⁻²`` times the work).
    """

    name = "stylize"

    def __init__(
        self,
        *,
        model: str | os.PathLike | StyleModel = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        batch_size: int = 1,
        compile: bool = False,
        channels_last: bool | None = None,
        precision: str = "float32",
        stabilize: float | Curve = DEFAULT_STRENGTH,
        fuse: bool = True,
        raw_output: bool = False,
        style_mix: tuple[tuple[str, Curve], ...] | None = None,
        style_strength: Curve | float | None = None,
        stabilizer: str = "blend",
        crossfade: float | None = None,
        style_scale: float = 1.0,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidOptionError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(style_scale, bool) or not isinstance(style_scale, (int, float)) or not 0.05 <= style_scale <= 8:
            raise InvalidOptionError(f"style_scale must be between 0.05 and 8, got {style_scale!r}")
        self.style_scale = float(style_scale)
        self.stabilizer = Stabilizer(strength=stabilize, method=stabilizer, crossfade=crossfade)  # checks the range
        top = stabilize.maximum if isinstance(stabilize, Curve) else float(stabilize)
        if raw_output and top > 0:
            raise InvalidOptionError("raw_output hands the output to a later stage: use stabilize=0 with it")
        self.raw_output = bool(raw_output)
        self.stylizer = FeedForwardStylizer(
            model=model, device=device, compile=compile, channels_last=channels_last, precision=precision, fuse=fuse,
        )
        self.batch_size = batch_size
        #: the strongest stabilisation of any frame (0 = per-frame output only)
        self.stabilize = top
        self.style = StyleControl(styles=self.stylizer.styles, style_mix=style_mix, style_strength=style_strength)
        self._held: list[Frame] = []
        #: notes about the model for the user (e.g. a huge painting was downscaled); the runner reports them
        self.warnings: list[str] = [str(n) for n in self.stylizer.model.metadata.get("notes", ())]

    @property
    def model_name(self) -> str:
        return self.stylizer.name

    @property
    def region_mattes(self) -> list[Any]:
        """The region matte sequences of the arbitrary back end's per-region styles (checked to cover the
        input before a run starts); ``[]`` for other models."""
        stats = getattr(self.stylizer.model.net, "statistics", None)
        return [m for m in getattr(stats, "sequences", ()) if m is not None]

    def process(self, frame: Frame) -> list[Frame]:
        self._held.append(frame)
        if len(self._held) < self.batch_size:
            return []
        return self._run()

    def finish(self) -> list[Frame]:
        return self._run() if self._held else []

    def close(self) -> None:
        self._held.clear()
        self.reset_temporal()

    def reset_temporal(self) -> None:
        """Forget the temporal state: the stabiliser's previous output and a network's own (the
        arbitrary back end's smoothed content statistics); the next frame starts a new chain."""
        self.stabilizer.reset()
        self.reset_network()

    def reset_network(self) -> None:
        """Forget the network's own temporal state only (the arbitrary back end's smoothed content statistics), for a
        caller that runs the stabiliser elsewhere (live mode's pipelined stabiliser resets it in its own thread)."""
        reset = getattr(getattr(self.stylizer.model, "net", None), "reset_temporal", None)
        if callable(reset):
            reset()

    def _run(self) -> list[Frame]:
        frames, self._held = self._held, []
        for f, y in zip(frames, self.network_output(frames)):
            self.finish_frame(f, y)
        return frames

    def network_output(self, frames: Sequence[Frame]) -> list[torch.Tensor]:
        """The network's output for ``frames``, one ``1×3×H×W`` tensor each, before stabilisation: the style mix and
        strength sampled at each frame's number, at ``style_scale``. Frames of different sizes run in separate
        batches (image sequences may change size)."""
        groups: dict[tuple[int, int, str], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault((*f.image.shape[:2], f.image.dtype.str), []).append(i)
        outs: list[torch.Tensor | None] = [None] * len(frames)
        for idx in groups.values():
            batch = images_to_batch([frames[i].image for i in idx], device=self.stylizer.device)
            numbers = [frames[i].frame_number for i in idx]
            if hasattr(self.stylizer.model.net, "frame_numbers"):  # region matte sequences follow the frames
                self.stylizer.model.net.frame_numbers = numbers
            y = self._at_scale(batch, lambda b: self.style.apply(self.stylizer, b, numbers))
            for j, i in enumerate(idx):
                outs[i] = y[j : j + 1]
        if any(y is None for y in outs):  # pragma: no cover - every index is in one group
            raise RuntimeError("internal error: frame without network output")
        return outs  # type: ignore[return-value]

    def finish_frame(self, frame: Frame, y: torch.Tensor, *, stabilize: bool | None = None,
                     prepared: Any = None) -> Frame:
        """Stabilise ``y``, the network output of ``frame`` (:meth:`network_output`), along the frame's flow, and fill
        ``frame.stylized``. ``stabilize``: step the stabiliser (default: when the stage's strength is above 0);
        ``prepared``: :meth:`prepare_frame` of this frame, computed beside the network (the result is the same)."""
        if stabilize is None:
            stabilize = self.stabilize > 0
        if stabilize:
            y = self.stabilizer.step(y, **_flow_of(frame, y.device), index=frame.frame_number, guide=frame.image,
                                     prepared=prepared)
        if self.raw_output:
            frame.stylized = y[0].detach().float().cpu().permute(1, 2, 0).numpy()
        else:
            frame.stylized = tensor_to_image(y[0], frame.image.dtype)
        return frame

    def prepare_frame(self, frame: Frame) -> Any:
        """The stabiliser's work on ``frame`` that needs only its flow and the previous output
        (:meth:`Stabilizer.prepare <vidstyle.stylize.temporal.Stabilizer.prepare>`), to run beside the network once
        the flow is in; ``None`` where there is nothing to prepare. Call it after the previous frame's
        :meth:`finish_frame`, and hand the result to this frame's."""
        if not self.stabilize > 0:
            return None
        return self.stabilizer.prepare(**_flow_of(frame, self.stylizer.device))

    def stylize_image(self, image: np.ndarray) -> np.ndarray:
        """One picture, no temporal state: H×W×3 in, same dtype out."""
        y = self._at_scale(images_to_batch([image], device=self.stylizer.device),
                           lambda b: self.style.apply(self.stylizer, b, [0]))
        return tensor_to_image(y[0], image.dtype)

    def _at_scale(self, batch: torch.Tensor, net: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``net(batch)`` run at ``1 / style_scale`` of the batch's size and resized back (``style_scale``)."""
        if self.style_scale == 1.0:
            return net(batch)
        import torch.nn.functional as F

        h, w = batch.shape[-2:]
        size = (max(8, round(h / self.style_scale)), max(8, round(w / self.style_scale)))
        if size == (h, w):
            return net(batch)
        small = size[0] < h
        x = F.interpolate(batch.float(), size=size, mode="area") if small else \
            F.interpolate(batch.float(), size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)
        y = net(x.to(batch.dtype))
        return F.interpolate(y.float(), size=(h, w), mode="bicubic", align_corners=False).clamp(0.0, 1.0)

