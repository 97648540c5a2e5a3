"""Optical-flow estimators behind one interface.

An estimator is called as ``estimator(prev, next)`` with two RGB images (``H×W×3`` uint8, uint16 or
float32 in 0..1; ``H×W`` grey is accepted too) and returns a float32 ``2×H×W`` flow in pixels of the
input resolution that maps ``prev`` to ``next``: ``prev(x) ≈ next(x + flow(x))`` (the ``.flo``
convention; ``flow[0]`` horizontal, ``flow[1]`` vertical).

Naming (see docs/architecture.md, 'Optical flow'): for frame ``t``, ``w_b(t) = estimator(I_t, I_{t−1})`` and
``w_f(t) = estimator(I_{t−1}, I_t)``; :func:`flow_pair` returns both.

Backends (see :func:`make_flow_estimator`): OpenCV DIS (ultrafast / fast / medium presets), Farneback,
DeepFlow (opencv-contrib ``optflow``) on the CPU, and torchvision RAFT (small / large) for users with
a GPU and the pretrained weights. Every estimator instance owns its state (not thread-safe: use one per
thread).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vidstyle.errors import InvalidOptionError, ShapeError, WeightsUnavailableError
from vidstyle.options.spec import OptionValueError

__all__ = [
    "FlowEstimator",
    "DISFlow",
    "FarnebackFlow",
    "DeepFlow",
    "RAFTFlow",
    "ESTIMATOR_NAMES",
    "NO_FLOW_NAMES",
    "canonical_flow_name",
    "make_flow_estimator",
    "flow_pair",
    "to_gray8",
    "resize_flow",
]

ESTIMATOR_NAMES: tuple[str, ...] = (
    "dis-ultrafast",
    "dis-fast",
    "dis-medium",
    "farneback",
    "deepflow",
    "raft-small",
    "raft-large",
)
_ALIASES = {"dis": "dis-fast", "raft": "raft-small"}
#: names that mean "no optical flow"
NO_FLOW_NAMES = ("none", "off")


def canonical_flow_name(name: str | None) -> str | None:
    """The estimator a name means, aliases resolved (``"dis"`` → ``"dis-fast"``); ``None`` for
    ``None``, ``"none"`` or ``"off"`` (no flow). Raises :class:`InvalidOptionError` for an unknown
    name, listing the valid ones."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidOptionError(f"flow must be an estimator name, got {type(name).__name__}")
    key = name.strip().lower()
    if key in NO_FLOW_NAMES or not key:
        return None
    key = _ALIASES.get(key, key)
    if key not in ESTIMATOR_NAMES:
        raise InvalidOptionError(f"flow must be one of {', '.join(ESTIMATOR_NAMES)} or none "
                                 f"(aliases: dis = dis-fast, raft = raft-small), got {name!r}")
    return key
_MIN_SIDE = 8


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ShapeError(f"flow: {what} image must be H×W×3 RGB or H×W grey, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64, np.float16):
        raise ShapeError(f"flow: {what} image has dtype {image.dtype}; use uint8, uint16 or float32 in 0..1")
    return image


def to_gray8(image: np.ndarray) -> np.ndarray:
    """RGB (or grey) uint8/uint16/float image → contiguous ``H×W`` uint8 luminance (BT.601)."""
    import cv2

    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(image)


def resize_flow(flow: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Resize a ``2×h×w`` flow to ``2×height×width`` and rescale its vectors to the new pixels."""
    import cv2

    _, h, w = flow.shape
    if (h, w) == (height, width):
        return flow
    u = cv2.resize(flow[0], (width, height), interpolation=cv2.INTER_LINEAR) * (width / w)
    v = cv2.resize(flow[1], (width, height), interpolation=cv2.INTER_LINEAR) * (height / h)
    return np.stack((u, v)).astype(np.float32, copy=False)


class FlowEstimator:
    """Base class: ``estimator(prev, next) -> 2×H×W`` float32 flow with ``prev(x) ≈ next(x + flow(x))``.

    Subclasses implement :meth:`_estimate` on images already resized by ``scale``. With
    ``scale < 1`` the flow is computed on ``INTER_AREA``-downsized images and bilinearly upsampled,
    its vectors multiplied back to full-resolution pixels.

    Attributes:
        name: the registry name (``"dis-fast"``...).
        scale: the resolution factor flow is computed at, in (0, 1].
    """

    name: str = "base"

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = _check_scale(scale)

    def __call__(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:  # noqa: A002 - documented name
        prev = _check_image(prev, "prev")
        next = _check_image(next, "next")
        if prev.shape[:2] != next.shape[:2]:
            raise ShapeError(
                f"flow: prev is {prev.shape[1]}×{prev.shape[0]} but next is {next.shape[1]}×{next.shape[0]}; "
                "both frames must have the same size"
            )
        h, w = prev.shape[:2]
        sh, sw = self._work_size(h, w)
        if (sh, sw) != (h, w):
            import cv2

            prev = cv2.resize(np.ascontiguousarray(prev), (sw, sh), interpolation=cv2.INTER_AREA)
            next = cv2.resize(np.ascontiguousarray(next), (sw, sh), interpolation=cv2.INTER_AREA)
        flow = self._estimate(prev, next)
        return resize_flow(flow, height=h, width=w)

    def pair(self, prev: np.ndarray, next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: A002
        """``(forward, backward) = (self(prev, next), self(next, prev))``."""
        return self(prev, next), self(next, prev)

    def _work_size(self, h: int, w: int) -> tuple[int, int]:
        if min(h, w) < _MIN_SIDE:
            raise ShapeError(f"flow: frames of {w}×{h} are too small; at least {_MIN_SIDE}×{_MIN_SIDE} pixels needed")
        if self.scale == 1.0:
            return h, w
        return max(_MIN_SIDE, round(h * self.scale)), max(_MIN_SIDE, round(w * self.scale))

    def _estimate(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:  # noqa: A002
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scale={self.scale})"


def _check_scale(scale: float) -> float:
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"flow scale must be a number in (0, 1], got {scale!r}") from None
    if not (0.0 < scale <= 1.0):
        raise InvalidOptionError(
            f"flow scale must be in (0, 1], got {scale}; e.g. 0.5 computes flow at half resolution"
        )
    return scale


class _OpenCVFlow(FlowEstimator):
    """Common part of the OpenCV backends: 8-bit grey inputs, H×W×2 output transposed."""

    #: the estimator only sees :func:`to_gray8` of its inputs: handing it 8-bit grey frames gives the same flow
    gray8_input = True

    def _estimate(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:  # noqa: A002
        a, b = to_gray8(prev), to_gray8(next)
        flow = self._calc(a, b)
        return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)

    def _calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class DISFlow(_OpenCVFlow):
    """OpenCV Dense Inverse Search (Kroeger et al. 2016); ``preset`` ultrafast, fast or medium."""

    PRESETS = ("ultrafast", "fast", "medium")

    def __init__(self, *, preset: str = "fast", scale: float = 1.0) -> None:
        super().__init__(scale=scale)
        import cv2

        codes = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        if preset not in codes:
            raise InvalidOptionError(f"DIS preset {preset!r} unknown; use one of {', '.join(self.PRESETS)}")
        self.preset = preset
        self.name = f"dis-{preset}"
        self._dis = cv2.DISOpticalFlow_create(codes[preset])

    def _calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._dis.calc(a, b, None)


class FarnebackFlow(_OpenCVFlow):
    """OpenCV Farneback polynomial-expansion flow (pyramid of ``levels``, window ``winsize``)."""

    name = "farneback"

    def __init__(
        self,
        *,
        scale: float = 1.0,
        pyr_scale: float = 0.5,
        levels: int = 5,
        winsize: int = 15,
        iterations: int = 3,
        poly_n: int = 5,
        poly_sigma: float = 1.2,
    ) -> None:
        super().__init__(scale=scale)
        self.params = dict(
            pyr_scale=pyr_scale,
            levels=levels,
            winsize=winsize,
            iterations=iterations,
            poly_n=poly_n,
            poly_sigma=poly_sigma,
            flags=0,
        )

    def _calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.calcOpticalFlowFarneback(a, b, None, **self.params)


class DeepFlow(_OpenCVFlow):
    """DeepFlow (Weinzaepfel et al. 2013) from opencv-contrib ``optflow`` — the flow Ruder et al. used."""

    name = "deepflow"

    def __init__(self, *, scale: float = 1.0) -> None:
        super().__init__(scale=scale)
        import cv2

        if not hasattr(cv2, "optflow"):
            raise OptionValueError(
                "flow",
                "flow 'deepflow' needs opencv-contrib-python (cv2.optflow is missing); "
                "pip install opencv-contrib-python, or use `flow` dis",
            )
        self._impl = cv2.optflow.createOptFlow_DeepFlow()

    def _calc(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._impl.calc(a, b, None)


_RAFT_WEIGHT_ENV = "VIDSTYLE_RAFT_WEIGHTS"


class RAFTFlow(FlowEstimator):
    """torchvision RAFT (Teed & Deng 2020), ``size`` "small" or "large".

    Args:
        weights: ``"default"`` (torchvision's ``Raft_*_Weights.DEFAULT``: loaded from the torch hub
            cache, downloaded there on first use), a path to a local ``.pth``/``.safetensors`` state
            dict of the same architecture, or ``None`` for random weights (tests: shapes only).
            ``"default"`` first honours ``$VIDSTYLE_RAFT_WEIGHTS`` if set.
        device: torch device; default CUDA when available, else CPU.
        iterations: refinement iterations (``num_flow_updates``; torchvision's default is 12).
    """

    def __init__(
        self,
        *,
        size: str = "small",
        weights: str | os.PathLike[str] | None = "default",
        device: Any = None,
        scale: float = 1.0,
        iterations: int = 12,
    ) -> None:
        super().__init__(scale=scale)
        import torch

        if size not in ("small", "large"):
            raise InvalidOptionError(f"RAFT size {size!r} unknown; use 'small' or 'large'")
        if int(iterations) < 1:
            raise InvalidOptionError(f"RAFT iterations must be ≥ 1, got {iterations}")
        self.size = size
        self.name = f"raft-{size}"
        self.iterations = int(iterations)
        self.device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.model = _build_raft(size=size, weights=weights).to(self.device).eval()

    def _estimate(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:  # noqa: A002
        return self._batch([prev], [next])[0]

    def pair(self, prev: np.ndarray, next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: A002
        """Forward and backward flow in one batched network call."""
        prev = _check_image(prev, "prev")
        next = _check_image(next, "next")
        if prev.shape[:2] != next.shape[:2]:
            raise ShapeError("flow: prev and next must have the same size")
        h, w = prev.shape[:2]
        sh, sw = self._work_size(h, w)
        if (sh, sw) != (h, w):
            import cv2

            prev = cv2.resize(np.ascontiguousarray(prev), (sw, sh), interpolation=cv2.INTER_AREA)
            next = cv2.resize(np.ascontiguousarray(next), (sw, sh), interpolation=cv2.INTER_AREA)
        fwd, bwd = self._batch([prev, next], [next, prev])
        return resize_flow(fwd, height=h, width=w), resize_flow(bwd, height=h, width=w)

    def _to_tensor(self, images: list[np.ndarray]) -> "Any":
        import torch

        from vidstyle.frame import to_float32

        batch = []
        for image in images:
            x = to_float32(image)
            if x.ndim == 2:
                x = np.repeat(x[..., None], 3, axis=2)
            batch.append(np.clip(x, 0.0, 1.0))
        t = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(self.device)
        return t * 2.0 - 1.0  # RAFT expects [-1, 1]

    def _batch(self, firsts: list[np.ndarray], seconds: list[np.ndarray]) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        a = self._to_tensor(firsts)
        b = self._to_tensor(seconds)
        h, w = a.shape[2:]
        # RAFT needs multiples of 8 and at least 128 (its correlation pyramid divides by 8·16)
        ph, pw = max(128 - h, (-h) % 8), max(128 - w, (-w) % 8)
        if ph or pw:
            pad = (0, pw, 0, ph)
            a = F.pad(a, pad, mode="replicate")
            b = F.pad(b, pad, mode="replicate")
        with torch.inference_mode():
            flows = self.model(a, b, num_flow_updates=self.iterations)[-1]
        flows = flows[:, :, :h, :w].float().cpu().numpy()
        return [np.ascontiguousarray(f, dtype=np.float32) for f in flows]


def _raft_builder(size: str) -> tuple[Callable[..., Any], Any]:
    from torchvision.models import optical_flow as tvof

    if size == "small":
        return tvof.raft_small, tvof.Raft_Small_Weights.DEFAULT
    return tvof.raft_large, tvof.Raft_Large_Weights.DEFAULT


def _build_raft(*, size: str, weights: str | os.PathLike[str] | None) -> Any:
    builder, default = _raft_builder(size)
    if weights is None:
        return builder(weights=None, progress=False)
    if isinstance(weights, str) and weights == "default":
        env = os.environ.get(_RAFT_WEIGHT_ENV)
        if env:
            weights = env
        else:
            import contextlib
            import sys

            try:
                # torch.hub announces downloads on stdout; keep stdout for the program's output
                with contextlib.redirect_stdout(sys.stderr):
                    return builder(weights=default, progress=False)
            except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
                import torch.hub

                raise WeightsUnavailableError(
                    f"RAFT-{size} weights could not be loaded ({type(exc).__name__}: {exc}); go online once so "
                    f"torchvision can download {default.url.rsplit('/', 1)[-1]} into "
                    f"{torch.hub.get_dir()}/checkpoints, or pass a local file via ${_RAFT_WEIGHT_ENV}"
                ) from exc
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(
            f"RAFT weights file not found: {path}; pass an existing .pth or .safetensors file"
        )
    model = builder(weights=None, progress=False)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            import torch

            state = torch.load(str(path), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not RAFT-{size}
        from vidstyle.errors import ModelError

        raise ModelError(
            f"{path} is not a RAFT-{size} state dict ({exc}); pass weights of torchvision raft_{size}"
        ) from exc
    return model


def make_flow_estimator(name: str = "dis-fast", *, scale: float = 1.0, device: Any = None) -> FlowEstimator:
    """Build an estimator by name: ``dis-ultrafast``, ``dis-fast`` (alias ``dis``), ``dis-medium``,
    ``farneback``, ``deepflow``, ``raft-small`` (alias ``raft``), ``raft-large``.

    ``scale`` in (0, 1] computes the flow at reduced resolution; ``device`` only matters for RAFT.
    RAFT uses the pretrained torchvision weights (see :class:`RAFTFlow`); offline without them it
    raises :class:`~vidstyle.errors.WeightsUnavailableError`.
    """
    if not isinstance(name, str):
        raise InvalidOptionError(f"flow estimator name must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key.startswith("dis-") and key in ESTIMATOR_NAMES:
        return DISFlow(preset=key[4:], scale=scale)
    if key == "farneback":
        return FarnebackFlow(scale=scale)
    if key == "deepflow":
        return DeepFlow(scale=scale)
    if key in ("raft-small", "raft-large"):
        return RAFTFlow(size=key[5:], scale=scale, device=device)
    valid = ", ".join(ESTIMATOR_NAMES)
    raise InvalidOptionError(f"unknown flow estimator {name!r}; choose one of {valid} (or 'dis' = dis-fast)")


def flow_pair(
    estimator: Callable[[np.ndarray, np.ndarray], np.ndarray],
    prev: np.ndarray,
    next: np.ndarray,  # noqa: A002
) -> tuple[np.ndarray, np.ndarray]:
    """``(forward, backward)`` flows between two frames.

    ``forward`` maps ``prev`` to ``next`` (``prev(x) ≈ next(x + fwd(x))``: the ``w_f`` of frame ``next``),
    ``backward`` maps ``next`` to ``prev`` (``next(x) ≈ prev(x + bwd(x))``: its ``w_b``); naming as in
    docs/architecture.md, 'Optical flow'.
    Uses the estimator's batched ``pair`` method when it has one (RAFT).
    """
    pair = getattr(estimator, "pair", None)
    if callable(pair):
        return pair(prev, next)
    return estimator(prev, next), estimator(next, prev)
