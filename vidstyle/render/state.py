"""Temporal state of the stylize stage: export after each frame, save losslessly, restore on resume.

A resumed render (or a retried chunk) must continue exactly where the interrupted one stopped.
The stylize stage carries state from frame to frame (the feed-forward stabiliser keeps the
previous output ``S_{t−1}`` as a float tensor, the flow stage the previous input). The flow
stage's state is rebuilt by letting the last finished frame (the *primer*) through it again; the
stylize stage's state is restored from a **side-car** ``state/cNNN.safetensors`` that the chunk
rewrites (temp + rename) after each finished frame: the exact float tensor, so the resumed frames
are bit-identical to an uninterrupted render whatever the output bit depth.

When the side-car is missing or older than the last finished frame, the state is read back from
that frame's output file instead (:func:`state_from_output`): then it differs from the in-memory
state by the output's quantisation — ≤ 0.5/255 for 8-bit outputs, ≤ 0.5/65535 for 16-bit, ~2⁻¹¹
relative for half-float EXR, 0 for float EXR/TIFF — and, the stabiliser being a contraction,
the difference it leaves in later frames is at most that and fades out (measured in the tests).

Stages supported:

* :class:`~vidstyle.stylize.feedforward.FeedForwardStage` (state: ``stabilizer.previous``, and for the
  arbitrary back end with ``stat_smoothing`` its smoothed content statistics, keys ``stats.*``);
* any stage with ``temporal_state() -> dict[str, Tensor]`` and
  ``load_temporal_state(dict[str, Tensor])`` (the protocol for other back ends).

The ``resample`` stabiliser's state is not exported (:func:`replays`): a resume replays the chunk from its first
(warm-up) frame, writing nothing before the first missing frame, which is exact and costs the finished frames once
more. Other stages have no exportable state: a resume then re-renders ``overlap`` warm-up frames before the
first missing frame (like a chunk border), which is close to, not equal to, an uninterrupted run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.frame import Frame

__all__ = [
    "STATE_KEY",
    "PRIMER_KEY",
    "has_state",
    "replays",
    "export_state",
    "import_state",
    "save_state",
    "load_state",
    "state_from_output",
    "StatefulStage",
]

STATE_KEY = "vidstyle.render.state"
PRIMER_KEY = "vidstyle.render.primer"


def has_state(stage: Any) -> bool:
    """True when :func:`export_state` / :func:`import_state` work for ``stage`` (not for the ``resample``
    stabiliser: see :func:`replays`)."""
    if callable(getattr(stage, "temporal_state", None)) and callable(getattr(stage, "load_temporal_state", None)):
        return True
    return hasattr(stage, "stabilizer") and hasattr(stage.stabilizer, "previous") and not replays(stage)


def replays(stage: Any) -> bool:
    """True when a resume must replay the chunk from its first frame to continue exactly: the ``resample``
    stabiliser's state is a ring buffer of up to 18 network outputs plus per-pixel tracks (tens of floats per pixel,
    rewritten after every frame), so it is rebuilt by running the same frames again instead of being saved."""
    return getattr(getattr(stage, "stabilizer", None), "tracker", None) is not None


def export_state(stage: Any) -> dict[str, Any]:
    """The stage's temporal state as CPU tensors (a copy)."""
    if callable(getattr(stage, "temporal_state", None)):
        state = stage.temporal_state() or {}
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items() if v is not None}
    prev = stage.stabilizer.previous
    out = {} if prev is None else {"previous": prev.detach().to("cpu", copy=True).contiguous()}
    smoother = _smoother(stage)
    if smoother is not None:  # the arbitrary back end's smoothed content statistics
        out.update({f"stats.{k}": v.detach().to("cpu", copy=True).contiguous()
                    for k, v in smoother.state_tensors().items()})
    return out


def _smoother(stage: Any) -> Any:
    """The :class:`~vidstyle.stylize.stat_smoothing.StatSmoother` of a stage's network, if it has one."""
    model = getattr(getattr(stage, "stylizer", None), "model", None)
    return getattr(getattr(model, "net", None), "smoother", None)


def import_state(stage: Any, state: Mapping[str, Any]) -> None:
    """Put a state exported by :func:`export_state` back into ``stage``."""
    if callable(getattr(stage, "load_temporal_state", None)):
        stage.load_temporal_state(dict(state))
        return
    smoother = _smoother(stage)
    if smoother is not None:
        smoother.load_state_tensors({k[len("stats."):]: v for k, v in state.items() if k.startswith("stats.")})
    prev = state.get("previous")
    if prev is None:
        stage.stabilizer.previous = None
        return
    device = getattr(getattr(stage, "stylizer", None), "device", None)
    stage.stabilizer.previous = prev.to(device) if device is not None else prev


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any], *, number: int, chunk: int) -> None:
    """Write a side-car atomically (safetensors; metadata: frame number, chunk)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    meta = {"number": str(number), "chunk": str(chunk), "empty": "1" if not state else "0"}
    tensors = dict(state) if state else {"_empty": _empty()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _empty() -> Any:
    import torch

    return torch.zeros(0)


def load_state(path: str | os.PathLike[str]) -> tuple[int, int, dict[str, Any]] | None:
    """``(number, chunk, state)`` of a side-car, or ``None`` if missing or unreadable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
        number, chunk = int(meta["number"]), int(meta["chunk"])
    except Exception:  # noqa: BLE001 - a damaged side-car is as good as none
        return None
    if meta.get("empty") == "1":
        state = {}
    return number, chunk, state


def state_from_output(stage: Any, image: np.ndarray) -> dict[str, Any] | None:
    """A state rebuilt from a written output frame (``None`` when the stage's state is not just
    the previous output)."""
    if callable(getattr(stage, "temporal_state", None)) or not hasattr(stage, "stabilizer"):
        return None
    if getattr(stage, "stabilize", 0.0) <= 0:
        return {}
    from vidstyle.stylize.feedforward import image_to_tensor

    return {"previous": image_to_tensor(image)[None].contiguous()}


class StatefulStage:
    """Wraps the stylize stage: restores the state at the *primer* frame and attaches the state
    after each finished batch to the batch's last frame (``frame.extra[STATE_KEY]``).

    The primer (the last finished frame before a resume point) goes through the stages before
    this one (so the flow stage keeps it as its previous frame) but not through the wrapped
    stage: its state is imported instead, and the frame is marked ``extra[PRIMER_KEY]`` so the
    sink drops it.
    """

    def __init__(self, inner: Any, *, primer: tuple[int, Mapping[str, Any]] | None = None, export: bool = True) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "stylize")
        self._primer = primer
        self._export = export and has_state(inner)

    def process(self, frame: Frame) -> list[Frame]:
        if self._primer is not None and frame.number == self._primer[0]:
            import_state(self.inner, self._primer[1])
            self._primer = None
            frame.extra[PRIMER_KEY] = True
            return [frame]
        return self._tag(self.inner.process(frame))

    def finish(self) -> list[Frame]:
        return self._tag(self.inner.finish())

    def close(self) -> None:
        self.inner.close()

    def _tag(self, outs: list[Frame]) -> list[Frame]:
        if outs and self._export:
            outs[-1].extra[STATE_KEY] = export_state(self.inner)
        return outs
