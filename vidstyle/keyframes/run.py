"""Keyframe-guided stylization end to end: read the keyframes, train, apply in the streaming pipeline.

:func:`stylize_with_keyframes` is the library entry point of ``vidstyle keyframes``. Everything that can be
checked is checked before training starts (option values, painted images: present, readable, of the clip's
size or aspect; keyframe numbers inside the clip; the output path), so bad input fails in seconds with one
:class:`~vidstyle.errors.VidstyleError` and nothing is written. The video then goes through the same
pipeline as ``vidstyle stylize`` (:func:`vidstyle.api.stylize_video` with the stages of
:func:`build_keyframe_stages`): decode, flow, the keyframe network, the stabiliser, encode with the
input's audio, under a temporary name renamed when complete.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidstyle.errors import InvalidInputError, WeightsUnavailableError
from vidstyle.keyframes.guides import CoordinateTracker, network_input
from vidstyle.keyframes.losses import PERCEPTUAL_LAYERS, KeyframeLoss
from vidstyle.keyframes.model import KeyframeModel, load_keyframe_model, save_keyframe_model
from vidstyle.keyframes.options import KEYFRAME_FLOW, Keyframe, KeyframeOptions
from vidstyle.keyframes.trainer import TrainingPair, TrainProgress, TrainSettings, train_network
from vidstyle.options import EncodeOptions, StylizeOptions, TemporalOptions
from vidstyle.pipeline import RunStats, Stage
from vidstyle.runtime import describe_hardware

__all__ = ["ASPECT_TOLERANCE", "KEYFRAME_FLOW", "checkpoint_paths", "training_fingerprint", "KeyframeResult", "KeyframeSet", "build_keyframe_stages", "read_keyframes",
           "stylize_with_keyframes", "train_keyframe_model"]

#: a painting whose aspect ratio is within this fraction of the frame's is resized (with a note)
ASPECT_TOLERANCE = 0.01
#: how often a training writes its checkpoint (beside ``save_model``, or in a render's work folder)
CHECKPOINT_SECONDS = 30.0


@dataclass(slots=True)
class KeyframeSet:
    """Keyframes read and checked: the clip's frames at the keyframes, the paintings (float32 ``H×W×3``,
    resized to the frames where needed), the ``tracked`` guide at each keyframe, and notes for the user."""

    keys: tuple[Keyframe, ...]
    frames: list[np.ndarray]
    paintings: list[np.ndarray]
    tracked: list[np.ndarray | None]
    notes: list[str] = field(default_factory=list)
    mattes: list[np.ndarray] | None = None  # H×W alpha per keyframe: what was painted (``mask``)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].shape[:2]  # type: ignore[return-value]

    def pairs(self, guides: Sequence[str], which: Sequence[int] | None = None) -> list[TrainingPair]:
        from vidstyle.stylize.feedforward import image_to_tensor

        out = []
        for i in (range(len(self.keys)) if which is None else which):
            x = network_input(image_to_tensor(self.frames[i]), guides, tracked=self.tracked[i])
            t = torch.from_numpy(np.ascontiguousarray(self.paintings[i])).permute(2, 0, 1).float()
            a = None if self.mattes is None else torch.from_numpy(np.ascontiguousarray(self.mattes[i], np.float32))[None]
            out.append(TrainingPair(index=self.keys[i].index, inputs=x, painted=t, matte=a))
        return out

    def painting_map(self) -> dict[int, np.ndarray]:
        """Keyframe number → painting, for :mod:`vidstyle.keyframes.carry`."""
        return {k.index: p for k, p in zip(self.keys, self.paintings)}


@dataclass(slots=True)
class KeyframeResult:
    """What :func:`stylize_with_keyframes` did: the pipeline's :class:`~vidstyle.pipeline.RunStats`, the model
    and where it was saved, the training's seconds (0 with a given model) and the notes shown to the user."""

    stats: RunStats
    model: KeyframeModel
    model_path: Path | None
    training_seconds: float
    notes: list[str]


def _read_painting(key: Keyframe) -> np.ndarray:
    from vidstyle.errors import CorruptInputError, InputNotFoundError, VidstyleError
    from vidstyle.io.imagefiles import read_image

    try:
        return read_image(key.path)
    except InputNotFoundError:
        raise InputNotFoundError(f"keyframe {key.index}: painting '{key.path}' does not exist; check the path") from None
    except CorruptInputError:
        raise CorruptInputError(f"keyframe {key.index}: painting '{key.path}' is not a readable image; export it "
                                "as PNG, JPEG or TIFF") from None
    except VidstyleError as exc:
        raise type(exc)(f"keyframe {key.index}: {exc}") from None


def _painting(key: Keyframe, size: tuple[int, int], notes: list[str]) -> np.ndarray:
    import cv2

    from vidstyle.frame import to_float32

    img = _read_painting(key)
    h, w = size
    ph, pw = img.shape[:2]
    out = np.clip(to_float32(img), 0.0, 1.0).astype(np.float32)
    if (ph, pw) == (h, w):
        return out
    if abs((pw / ph) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise InvalidInputError(f"keyframe {key.index}: painting '{key.path}' is {pw}×{ph} but the frames are {w}×{h}, "
                                "another aspect ratio; paint over the frame itself (export it at the frame's size)")
    notes.append(f"keyframe {key.index}: painting '{key.path}' is {pw}×{ph}; resized to the frames' {w}×{h}")
    interp = cv2.INTER_AREA if pw > w else cv2.INTER_CUBIC
    return np.clip(cv2.resize(out, (w, h), interpolation=interp), 0.0, 1.0)


def read_keyframes(input: str | os.PathLike[str], keys: Sequence[Keyframe], *, guides: Sequence[str] = (),
                   temporal: TemporalOptions | None = None, matte: Any = None, by_number: bool = False,
                   frames_range: tuple[int, int] | None = None, fps: Any = None) -> KeyframeSet:
    """Check and read the keyframes of clip ``input`` (module docstring). The clip is decoded up to the last
    keyframe; with the ``tracked`` guide every frame up to it goes through the same flow stage as the
    application, so the guide at a keyframe is the one the network will see there. ``matte``
    (:class:`~vidstyle.io.mattes.Matte`) gives each keyframe's painted area. Keys count frames from 0, or
    are the input's own frame numbers with ``by_number`` (render jobs, which read ``frames_range``)."""
    from vidstyle.io import open_source

    for key in keys:  # a missing or unreadable painting fails before the clip is decoded
        _read_painting(key)
    wanted = {k.index: i for i, k in enumerate(keys)}
    last = max(wanted)
    frames: list[np.ndarray | None] = [None] * len(keys)
    tracked: list[np.ndarray | None] = [None] * len(keys)
    flow = _flow_stage(temporal or TemporalOptions()) if "tracked" in guides else None
    tracker = CoordinateTracker() if flow is not None else None
    count = 0
    alphas: list[np.ndarray | None] = [None] * len(keys)
    first_seen = None
    try:
        with open_source(input, frames=frames_range, fps=fps) as source:
            for frame in source:
                count += 1
                here = frame.frame_number if by_number else frame.index
                first_seen = here if first_seen is None else first_seen
                if flow is not None and tracker is not None:
                    frame = flow.process(frame)[0]
                    coords = tracker.step(frame.flow_bwd, size=frame.image.shape[:2], restart=frame.scene_cut)
                if here in wanted:
                    i = wanted[here]
                    frames[i] = np.ascontiguousarray(frame.image)
                    if tracker is not None:
                        tracked[i] = coords
                    if matte is not None:
                        alphas[i] = matte.alpha(frame.frame_number, frame.image.shape[:2])
                if here >= last:
                    break
    finally:
        if flow is not None:
            flow.close()
    missing = [k.index for k, f in zip(keys, frames) if f is None]
    if missing and by_number:
        span = f"{first_seen}–{first_seen + count - 1}" if first_seen is not None else "none"
        raise InvalidInputError(f"keyframe {missing[0]} is not a frame of the shot (frames {span}); key the "
                                "paintings by the shot's own frame numbers")
    if missing:
        raise InvalidInputError(f"keyframe {missing[0]} is beyond the clip: '{input}' has {count} frames "
                                f"(0–{count - 1}); number keyframes from 0 within the clip")
    notes: list[str] = []
    size = frames[0].shape[:2]  # type: ignore[union-attr]
    paintings = [_painting(k, size, notes) for k in keys]
    mattes = None
    if matte is not None:
        mattes = [np.asarray(a, np.float32) for a in alphas]
        for k, a in zip(keys, mattes):
            if float(a.max()) <= 0:
                raise InvalidInputError(f"keyframe {k.index}: its matte is black (nothing painted there to learn "
                                        "from); check `mask`, or drop this keyframe")
    return KeyframeSet(keys=tuple(keys), frames=frames, paintings=paintings, tracked=tracked, notes=notes,  # type: ignore[arg-type]
                       mattes=mattes)


def _flow_stage(temporal: TemporalOptions) -> Any:
    from vidstyle.flow.stage import FORWARD_FLOW, FlowStage

    name = temporal.flow if temporal.flow != "none" else "dis-fast"
    return FlowStage(estimator=name, forward_estimator=FORWARD_FLOW.get(name))


def loss_network(*, weight: float, vgg_weights: str | None, vgg_convention: str | None,
                 note: Callable[[str], None], gram_weight: float = 0.0) -> KeyframeLoss:
    """The training loss; without VGG weights (none given, none in the cache, offline), L1 alone with a note."""
    if weight == 0 and gram_weight == 0:
        return KeyframeLoss(vgg=None, perceptual_weight=0.0)
    from vidstyle.nets.vgg import VGGFeatures, load_vgg_state

    try:
        state = load_vgg_state(weights=vgg_weights, convention=vgg_convention)  # type: ignore[arg-type]
    except WeightsUnavailableError:
        if vgg_weights is not None:
            raise
        note("no VGG19 weights (none given, none in the torch cache, no internet): training with the L1 loss only, "
             "strokes come out softer; pass --vgg-weights FILE or set VIDSTYLE_VGG_WEIGHTS for the perceptual loss")
        return KeyframeLoss(vgg=None, perceptual_weight=0.0)
    return KeyframeLoss(vgg=VGGFeatures(layers=PERCEPTUAL_LAYERS, state=state, pooling="avg"),
                        perceptual_weight=weight, gram_weight=gram_weight)


def training_fingerprint(keyset: KeyframeSet, options: KeyframeOptions, seed: int, loss: KeyframeLoss) -> str:
    """What a training checkpoint must match to be resumed: the frames, paintings and mattes, and every option
    that changes the updates (not the stopping limits)."""
    import hashlib
    import json

    h = hashlib.sha256()
    for arrays in (keyset.frames, keyset.paintings, keyset.mattes or []):
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps({"keys": [k.index for k in keyset.keys], "guides": list(options.guides),
                         "blend": options.keyframe_blend, "patch": [options.patch_size, options.patch_batch],
                         "lr": options.learning_rate, "perceptual": loss.perceptual_weight if loss.perceptual else 0,
                         "gram": loss.gram_weight if loss.perceptual else 0, "seed": seed}, sort_keys=True).encode())
    return h.hexdigest()


def _checkpointer(path: Path, fingerprint: str) -> Callable[[dict[str, torch.Tensor]], None]:
    def write(state: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        tmp = path.with_name(f".{path.name}.tmp")
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"fingerprint": fingerprint})
        os.replace(tmp, path)

    return write


def _read_checkpoint(path: Path, fingerprint: str) -> dict[str, torch.Tensor] | None:
    """The checkpoint at ``path`` if it belongs to this very training (else ``None``; a damaged one too)."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("fingerprint") != fingerprint:
                return None
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # noqa: BLE001 - a damaged checkpoint is as good as none
        return None


def checkpoint_paths(stem: str | os.PathLike[str], networks: int) -> list[Path]:
    """The training checkpoints of a model saved as ``stem`` (one per network): ``stem.trainingN.safetensors``."""
    base = Path(stem)
    if base.suffix == ".safetensors":
        base = base.with_suffix("")
    return [base.with_name(f"{base.name}.training{n}.safetensors") for n in range(networks)]


def train_keyframe_model(keyset: KeyframeSet, *, options: KeyframeOptions, seed: int = 0,
                         device: torch.device | str = "cpu", loss: KeyframeLoss,
                         progress: Callable[[TrainProgress], None] | None = None,
                         input_name: str = "", checkpoint: str | os.PathLike[str] | None = None,
                         note: Callable[[str], None] | None = None) -> KeyframeModel:
    """Train the model of ``options.keyframe_blend`` on ``keyset``: one network on all keyframes (``joint``) or one per
    keyframe (``distance``; the time budget is shared between them). Writes ``options.training_preview`` as it goes.

    ``checkpoint`` (a model path's stem): the training state is written beside it every 30 s and at the end of each
    network (:func:`checkpoint_paths`), and a checkpoint of this very training (:func:`training_fingerprint`) is
    resumed, exactly, instead of starting again; the caller removes them once the model is saved."""
    device = torch.device(device)
    guides = options.guides
    groups = [list(range(len(keyset.keys)))] if options.keyframe_blend == "joint" else [[i] for i in range(len(keyset.keys))]
    budget = options.time_budget * 60.0 / len(groups)
    nets, steps, seconds, emas, stopped = [], 0, 0.0, [], []
    fingerprint = training_fingerprint(keyset, options, seed, loss) if checkpoint is not None else ""
    saved = checkpoint_paths(checkpoint, len(groups)) if checkpoint is not None else []
    for n, group in enumerate(groups):
        pairs = keyset.pairs(guides, group)
        settings = TrainSettings(patch_size=options.patch_size, patch_batch=options.patch_batch,
                                 learning_rate=options.learning_rate, max_steps=options.max_steps,
                                 time_budget=budget, patience=options.patience, seed=seed + n)
        preview = None if options.training_preview is None or n else _previewer(options.training_preview, pairs[0], device)
        resume = _read_checkpoint(saved[n], fingerprint) if saved else None
        if resume is not None and note is not None:
            done = "done" in resume
            note(f"{'network' if len(groups) == 1 else f'network {n + 1}/{len(groups)}'}: "
                 + ("finished before, reused" if done else f"training resumed at step {int(resume['progress'][0]) + 1}")
                 + f" from {saved[n]}")
        outcome = train_network(pairs, settings=settings, loss=loss, device=device, progress=progress,
                                preview=preview, network=n, networks=len(groups), resume=resume,
                                checkpoint=_checkpointer(saved[n], fingerprint) if saved else None,
                                checkpoint_every=CHECKPOINT_SECONDS)
        nets.append(outcome.net)
        steps += outcome.steps
        seconds += outcome.seconds
        emas.append(outcome.ema)
        stopped.append(outcome.stopped)
    h, w = keyset.size
    card = {
        "input": Path(str(input_name)).name,
        "keyframes": [{"index": k.index, "painting": Path(k.path).name} for k in keyset.keys],
        "frame_size": [h, w],
        "perceptual": loss.perceptual,
        "perceptual_weight": loss.perceptual_weight,
        "gram_weight": loss.gram_weight,
        "patch_size": options.patch_size,
        "patch_batch": options.patch_batch,
        "learning_rate": options.learning_rate,
        "steps": steps,
        "stopped": ", ".join(dict.fromkeys(stopped)),
        "training_seconds": round(seconds, 1),
        "final_loss": float(f"{float(np.mean(emas)):.5g}"),
        "seed": seed,
        "hardware": describe_hardware(device),
        "made_with": "vidstyle keyframes",
    }
    return KeyframeModel(nets=[n.cpu() for n in nets], keys=tuple(k.index for k in keyset.keys), guides=guides,
                         blend=options.keyframe_blend, card=card)


def _previewer(path: str, pair: TrainingPair, device: torch.device) -> Callable[[Any], None]:
    """Writes ``frame | painted | network`` for the first keyframe to ``path`` (atomically)."""
    from vidstyle.frame import from_float32
    from vidstyle.io.imagefiles import write_image_atomic

    def preview(net: Any) -> None:
        y = net(pair.inputs[None].to(device))[0].cpu()
        row = torch.cat([pair.inputs[:3], pair.painted, y], dim=2).permute(1, 2, 0).numpy()
        write_image_atomic(path, from_float32(np.ascontiguousarray(row), np.uint8))

    return preview


def build_keyframe_stages(model: KeyframeModel, *, temporal: TemporalOptions | None = None,
                          device: torch.device | str = "cpu", paintings: dict[int, np.ndarray] | None = None,
                          warp_blend: float = 0.0, matte: Any = None, by_number: bool = False,
                          dtype: torch.dtype = torch.float32) -> list[Stage]:
    """``[flow] → keyframes → [stabilize] → [mask]``: the flow stage when stabilising, for the ``tracked``
    guide or to carry the ``paintings`` (``warp_blend`` > 0), the stabiliser as its own stage (as
    :func:`vidstyle.api.build_stages` does on a CPU), and with a ``matte`` the compositing stage last, so
    the stabiliser's history stays the un-composited frame (docs/masks.md). ``by_number``: keyframes are
    the input's own frame numbers (render jobs), not positions in the stream. ``dtype``: the networks' number
    format (:class:`~vidstyle.keyframes.stage.KeyframeStage`)."""
    from vidstyle.keyframes.stage import KeyframeStage

    tm = temporal or TemporalOptions()
    curve = tm.strength("feedforward")
    stabilise = tm.uses_flow("feedforward")
    carry = bool(paintings) and warp_blend > 0
    stages: list[Stage] = []
    if stabilise or "tracked" in model.guides or carry:
        stages.append(_flow_stage(tm))
    stages.append(KeyframeStage(model=model, device=device, raw_output=stabilise,
                                paintings=paintings if carry else None, warp_blend=warp_blend, by_number=by_number,
                                dtype=dtype))
    if stabilise:
        from vidstyle.stylize.stabilize import StabilizeStage

        stages.append(StabilizeStage(strength=curve, method=tm.stabilizer, crossfade=tm.resample_fade))
    if matte is not None:
        from vidstyle.stylize.mask import MaskStage

        stages.append(MaskStage(matte=matte))
    return stages


def stylize_with_keyframes(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    keyframes: KeyframeOptions,
    stylize: StylizeOptions | None = None,
    temporal: TemporalOptions | None = None,
    encode: EncodeOptions | None = None,
    overwrite: bool = False,
    progress: Callable[[Any], None] | None = None,
    train_progress: Callable[[TrainProgress], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> KeyframeResult:
    """Stylize ``input`` into ``output`` from painted keyframes (or a saved keyframe model); see the module
    docstring. ``note`` receives what the user should know (a resized painting, L1-only training);
    ``train_progress`` every training step; ``progress`` every written frame."""
    from vidstyle.api import stylize_video, validate_options
    from vidstyle.io import check_output
    from vidstyle.runtime import setup

    st = stylize or StylizeOptions()
    tm = temporal or TemporalOptions(flow=KEYFRAME_FLOW)
    enc = encode or EncodeOptions()
    notes: list[str] = []

    def tell(text: str) -> None:
        notes.append(text)
        if note is not None:
            note(text)

    keyframes.require_source()
    validate_options(output=output, temporal=tm, encode=enc)
    tm.uses_flow("feedforward")
    matte = None
    if st.mask is not None:
        from vidstyle.io.mattes import Matte

        matte = Matte(st.mask)  # a wrong matte path fails before anything is decoded
    rt = setup(device=st.device, precision=st.precision, threads=st.threads)  # training itself stays float32
    paintings: dict[int, np.ndarray] | None = None
    if keyframes.keyframe_model is not None:
        model = load_keyframe_model(keyframes.keyframe_model)
        if keyframes.keys:  # the same shot again: its paintings are carried as in the training run (no training)
            keyset = read_keyframes(input, keyframes.keys, temporal=tm, matte=matte)
            paintings = keyset.painting_map()
            for text in keyset.notes:
                tell(text)
        check_output(output, input_spec=input, overwrite=overwrite)
        seconds = 0.0
        model_path = None
    else:
        keyset = read_keyframes(input, keyframes.keys, guides=keyframes.guides, temporal=tm, matte=matte)
        paintings = keyset.painting_map()
        for text in keyset.notes:
            tell(text)
        check_output(output, input_spec=input, overwrite=overwrite)
        if keyframes.save_model is not None:
            _check_model_path(keyframes.save_model, overwrite=overwrite)
        if keyframes.training_preview is not None:
            _check_preview_path(keyframes.training_preview)
        loss = loss_network(weight=keyframes.perceptual_weight, vgg_weights=st.vgg_weights,
                            vgg_convention=st.vgg_convention, note=tell, gram_weight=keyframes.gram_weight)
        t0 = time.perf_counter()
        model = train_keyframe_model(keyset, options=keyframes, seed=st.seed, device=rt.device, loss=loss,
                                     progress=train_progress, input_name=str(input), checkpoint=keyframes.save_model,
                                     note=tell)
        seconds = time.perf_counter() - t0
        model_path = save_keyframe_model(keyframes.save_model, model) if keyframes.save_model else None
        if keyframes.save_model is not None:
            for p in checkpoint_paths(keyframes.save_model, len(model.nets)):
                p.unlink(missing_ok=True)
    stages = build_keyframe_stages(model, temporal=tm, device=rt.device, paintings=paintings,
                                   warp_blend=keyframes.warp_blend, matte=matte, dtype=rt.dtype)
    stats = stylize_video(input, output, stages=stages, encode=enc, overwrite=overwrite, progress=progress)
    return KeyframeResult(stats=stats, model=model, model_path=model_path, training_seconds=seconds, notes=notes)


def _check_model_path(path: str, *, overwrite: bool) -> None:
    from vidstyle.errors import OutputError, OutputExistsError
    from vidstyle.io.naming import with_parameter

    p = Path(path)
    p = p if p.suffix == ".safetensors" else p.with_name(p.name + ".safetensors")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise with_parameter(OutputError(f"save_model: cannot write into {parent} (missing or not writable); "
                                         "create it or choose another path"), "save_model")
    if p.exists() and not overwrite:
        raise with_parameter(OutputExistsError(f"save_model: '{p}' exists; pass `overwrite` or choose another name"),
                             "save_model", also=("overwrite",))


def _check_preview_path(path: str) -> None:
    from vidstyle.errors import OutputError
    from vidstyle.io.naming import with_parameter

    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"):
        raise with_parameter(OutputError(f"training_preview: '{p}' needs an image extension (.png, .jpg)"),
                             "training_preview")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise with_parameter(OutputError(f"training_preview: cannot write into {parent} (missing or not writable); "
                                         "create it or choose another path"), "training_preview")
