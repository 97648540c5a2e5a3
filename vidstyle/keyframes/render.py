"""Keyframe-guided stylization in render jobs (``keys = ["1001:paint/sh010.1001.png", ...]`` in a shot's TOML).

A render job with ``keys`` (or ``keyframe_model``) runs the keyframe method instead of a style network
(docs/keyframes.md, "Render jobs"):

* **The record** (:func:`keyframe_record`, the manifest's ``model``): each painting's path and SHA-256 (or
  the given network's), so a resume with other paintings is refused like one with another model.
* **The network** (:func:`ensure_keyframe_network`) is trained once, before any chunk, on the shot's frames
  at the keyframes (keys are the shot's own frame numbers), and kept in the render's work folder
  (``keyframes.safetensors``) — a resumed render, a retried chunk or a Ray worker loads that file, so the
  training is not repeated; ``save_model`` gets a copy with its card. A ``keyframe_model`` is used as it is.
* **The stages** (:func:`keyframe_render_stages`): ``flow → keyframes (network, carried keyframe,
  stabiliser inside) → [mask]``. One stage holds every temporal state (stabiliser, carried keyframe,
  ``tracked`` guide) and exports it after each frame, so a resume continues bit for bit; a chunk starting
  cold reads from the last keyframe before it, so the carried keyframe is the one an uninterrupted render
  carries.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidstyle.errors import InputNotFoundError

if TYPE_CHECKING:
    from vidstyle.render.job import RenderJob

__all__ = ["NETWORK_FILE", "ensure_keyframe_network", "keyframe_network_path", "keyframe_record",
           "keyframe_render_stages"]

#: the trained network, in the render's work folder
NETWORK_FILE = "keyframes.safetensors"


def keyframe_record(job: RenderJob) -> dict[str, Any]:
    """The manifest's ``model`` entry of a keyframe job: the paintings (or the given network) with SHA-256s;
    ``sha256`` hashes them all, so ``check_same_job`` refuses a resume after any of them changed."""
    from vidstyle.render.manifest import file_sha256

    kf = job.keyframes
    if kf.keyframe_model is not None:
        p = Path(kf.keyframe_model)
        if not p.is_file():
            raise InputNotFoundError(f"keyframe network '{p}' does not exist; check key 'keyframe_model'")
        return {"name": "keyframes", "path": str(p), "sha256": file_sha256(p)}
    paintings = []
    for k in kf.keys:
        p = Path(k.path)
        if not p.is_file():
            raise InputNotFoundError(f"keyframe {k.index}: painting '{p}' does not exist; check key 'keys'")
        paintings.append({"frame": k.index, "path": str(p), "sha256": file_sha256(p)})
    joined = hashlib.sha256("".join(f"{p['frame']}:{p['sha256']};" for p in paintings).encode()).hexdigest()
    return {"name": "keyframes", "paintings": paintings, "sha256": joined}


def keyframe_network_path(job: RenderJob, work: str | Path) -> Path:
    """The network the chunks apply: ``keyframe_model``, or the one trained into the work folder."""
    kf = job.keyframes
    return Path(kf.keyframe_model) if kf.keyframe_model is not None else Path(work) / NETWORK_FILE


def ensure_keyframe_network(job: RenderJob, *, work: str | Path, numbers: list[int],
                            note: Any = None) -> tuple[Path, bool]:
    """Train the job's network unless the work folder has it already (a resume); ``(path, trained now)``."""
    from vidstyle.keyframes.model import save_keyframe_model
    from vidstyle.keyframes.run import checkpoint_paths, loss_network, read_keyframes, train_keyframe_model
    from vidstyle.runtime import setup

    path = keyframe_network_path(job, work)
    if job.keyframes.keyframe_model is not None or path.is_file():
        return path, False
    matte = _matte(job)
    keyset = read_keyframes(job.input, job.keyframes.keys, guides=job.keyframes.guides, temporal=_temporal(job),
                            matte=matte, by_number=True, frames_range=(numbers[0], numbers[-1]), fps=job.fps)
    for text in keyset.notes:
        if note is not None:
            note(text)
    st = job.stylize
    rt = setup(device=st.device, precision="float32", threads=st.threads)
    loss = loss_network(weight=job.keyframes.perceptual_weight, vgg_weights=st.vgg_weights,
                        vgg_convention=st.vgg_convention, note=note or (lambda _t: None),
                        gram_weight=job.keyframes.gram_weight)
    stem = Path(work) / "keyframes"
    model = train_keyframe_model(keyset, options=job.keyframes, seed=st.seed, device=rt.device, loss=loss,
                                 input_name=str(job.input), checkpoint=stem, note=note)
    save_keyframe_model(path, model)  # atomic; a kill during training leaves its checkpoint: the resume continues it
    for p in checkpoint_paths(stem, len(model.nets)):
        p.unlink(missing_ok=True)
    if job.keyframes.save_model is not None:
        copy = save_keyframe_model(job.keyframes.save_model, model)
        shutil.copyfile(path, copy)  # the very file the render applies
    return path, True


def _temporal(job: RenderJob) -> Any:
    """The job's temporal options, with the keyframe runs' flow unless the job chose one."""
    import dataclasses

    from vidstyle.keyframes.options import KEYFRAME_FLOW

    tm = job.temporal
    return dataclasses.replace(tm, flow=KEYFRAME_FLOW) if job.given.get("flow", "default") == "default" else tm


def _matte(job: RenderJob) -> Any:
    if job.stylize.mask is None:
        return None
    from vidstyle.io.mattes import Matte

    return Matte(job.stylize.mask)


def keyframe_render_stages(job: RenderJob, *, threads: int, work: str | Path) -> list[Any]:
    """``flow → keyframes (+ stabiliser) → [mask]`` for a chunk (module docstring)."""
    import dataclasses

    import numpy as np

    from vidstyle.keyframes.model import load_keyframe_model
    from vidstyle.keyframes.run import _flow_stage, _painting
    from vidstyle.keyframes.stage import KeyframeStage
    from vidstyle.runtime import setup
    from vidstyle.stylize.mask import MaskStage
    from vidstyle.stylize.stabilize import StabilizeStage

    st = dataclasses.replace(job.stylize, threads=threads)
    rt = setup(device=st.device, precision="float32", threads=st.threads)
    model = load_keyframe_model(keyframe_network_path(job, work))
    tm = _temporal(job)
    paintings: dict[int, np.ndarray] | None = None
    if job.keyframes.keys and job.keyframes.warp_blend > 0:
        h, w = model.card["frame_size"]
        paintings = {k.index: _painting(k, (h, w), []) for k in job.keyframes.keys}
    carry = bool(paintings)
    stabilise = tm.uses_flow("feedforward")
    stages: list[Any] = []
    if stabilise or carry or "tracked" in model.guides:
        stages.append(_flow_stage(tm))
    inner = StabilizeStage(strength=tm.strength("feedforward"), method=tm.stabilizer,
                           crossfade=tm.resample_fade) if stabilise else None
    stages.append(KeyframeStage(model=model, device=rt.device, paintings=paintings, warp_blend=job.keyframes.warp_blend,
                                by_number=True, stabilizer=inner))
    matte = _matte(job)
    if matte is not None:
        stages.append(MaskStage(matte=matte))
    return stages
