"""Few-shot patch-based training of the keyframe network (Texler et al. 2020).

Each step draws ``patch_batch`` random ``patch_size`` squares from the (network input, painted keyframe)
pairs (a pair chosen uniformly, then a position uniformly; a seeded generator, so a run repeats exactly
on one machine) and takes one Adam step on :func:`vidstyle.keyframes.losses.keyframe_loss`. Small patches
are the point of the method: the network learns a local mapping "this kind of neighbourhood gets this
paint" from thousands of patches of two pictures, instead of memorising two whole pictures.

**When it stops.** An exponential moving average of the step loss (``EMA_DECAY``) is watched: training
ends at a *plateau*, when the average has not fallen by ``PLATEAU_TOLERANCE`` (1 %) of its best value for
``patience`` steps, or at ``time_budget`` seconds, or after ``max_steps``; the outcome says which.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vidstyle.errors import ShapeError
from vidstyle.keyframes.losses import KeyframeLoss
from vidstyle.keyframes.net import KeyframeNet

__all__ = ["STOP_REASONS", "EMA_DECAY", "PLATEAU_TOLERANCE", "PlateauWatch", "TrainingPair", "TrainOutcome", "TrainProgress",
           "TrainSettings", "masked_target", "matte_pixels", "sample_patches", "train_network"]

EMA_DECAY = 0.98
PLATEAU_TOLERANCE = 0.01
#: why a training stopped (``TrainOutcome.stopped``), in a checkpoint's ``done`` code
STOP_REASONS = ("plateau", "time budget", "max steps")


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """A keyframe ready for training: the network's input ``C×H×W`` (frame + guides) and the painting
    ``3×H×W``, both float32 in [0, 1] on the CPU; ``matte`` (``1×H×W`` in [0, 1], or ``None``) the pixels
    that were painted: training sees only those (patches centred on them, the loss masked)."""

    index: int
    inputs: torch.Tensor
    painted: torch.Tensor
    matte: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.inputs.ndim != 3 or self.painted.ndim != 3 or self.painted.shape[0] != 3:
            raise ShapeError(f"keyframe {self.index}: inputs {tuple(self.inputs.shape)} / painted "
                             f"{tuple(self.painted.shape)} must be C×H×W / 3×H×W")
        if self.inputs.shape[1:] != self.painted.shape[1:]:
            raise ShapeError(f"keyframe {self.index}: the painting is {tuple(self.painted.shape[1:])}, the frame "
                             f"{tuple(self.inputs.shape[1:])}")
        if self.matte is not None and tuple(self.matte.shape) != (1, *self.inputs.shape[1:]):
            raise ShapeError(f"keyframe {self.index}: matte {tuple(self.matte.shape)} does not match the frame "
                             f"{tuple(self.inputs.shape[1:])}")


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How one network is trained (the fields of :class:`~vidstyle.keyframes.options.KeyframeOptions`)."""

    patch_size: int = 32
    patch_batch: int = 16
    learning_rate: float = 2e-3
    max_steps: int = 20000
    time_budget: float = 600.0  # seconds
    patience: int = 400
    seed: int = 0


@dataclass(frozen=True, slots=True)
class TrainProgress:
    """After each step: the step, its loss and parts, the loss's moving average and the time so far."""

    step: int
    loss: float
    ema: float
    parts: dict[str, float]
    elapsed: float
    network: int = 0  # which network (one per keyframe in ``distance`` mode)
    networks: int = 1


@dataclass(slots=True)
class TrainOutcome:
    """A trained network and how its training went; ``stopped`` is ``plateau``, ``time budget`` or ``max steps``."""

    net: KeyframeNet
    steps: int
    seconds: float
    ema: float
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)


class PlateauWatch:
    """The stopping rule: EMA of the loss (decay ``EMA_DECAY``), a plateau after ``patience`` steps without
    a relative improvement of ``PLATEAU_TOLERANCE`` of the best EMA."""

    def __init__(self, *, patience: int) -> None:
        self.patience = int(patience)
        self.ema = math.nan
        self.best = math.inf
        self.best_step = 0
        self.steps = 0

    def update(self, loss: float) -> bool:
        """Feed one step's loss; ``True`` when the plateau is reached."""
        self.steps += 1
        self.ema = loss if self.steps == 1 else EMA_DECAY * self.ema + (1 - EMA_DECAY) * loss
        if self.ema < self.best * (1 - PLATEAU_TOLERANCE):
            self.best, self.best_step = self.ema, self.steps
        return self.steps - self.best_step >= self.patience


def sample_patches(pairs: Sequence[TrainingPair], *, size: int, batch: int, gen: torch.Generator,
                   inside: Sequence[torch.Tensor | None] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``batch`` random ``size``-pixel squares: (inputs ``N×C×s×s``, paintings ``N×3×s×s``, mattes ``N×1×s×s``
    or ``None`` when no pair has a matte). A frame smaller than ``size`` gives its whole extent (all squares
    then share that smaller size). With a matte, each square is centred on a random matte pixel (alpha ≥ 0.5,
    or > 0 when none is; ``inside`` = :func:`matte_pixels` of each pair, computed here when not given), so
    training is not spent on what was not painted."""
    h, w = pairs[0].inputs.shape[1:]
    s = min(size, h, w)
    which = torch.randint(len(pairs), (batch,), generator=gen)
    ys = torch.randint(h - s + 1, (batch,), generator=gen)
    xs = torch.randint(w - s + 1, (batch,), generator=gen)
    if any(p.matte is not None for p in pairs):  # (no extra draws without mattes: unmasked runs unchanged)
        inside = [matte_pixels(p) for p in pairs] if inside is None else inside
        picks = torch.rand(batch, generator=gen)
        for j, k in enumerate(which.tolist()):
            cand = inside[k]
            if cand is not None and len(cand):
                at = min(int(picks[j] * len(cand)), len(cand) - 1)
                cy, cx = int(cand[at]) // w, int(cand[at]) % w
                ys[j] = min(max(cy - s // 2, 0), h - s)
                xs[j] = min(max(cx - s // 2, 0), w - s)
    xin = torch.stack([pairs[int(k)].inputs[:, y:y + s, x:x + s] for k, y, x in zip(which, ys, xs)])
    tgt = torch.stack([pairs[int(k)].painted[:, y:y + s, x:x + s] for k, y, x in zip(which, ys, xs)])
    if all(p.matte is None for p in pairs):
        return xin, tgt, None
    ones = torch.ones(1, h, w)
    mat = torch.stack([(pairs[int(k)].matte if pairs[int(k)].matte is not None else ones)[:, y:y + s, x:x + s]
                       for k, y, x in zip(which, ys, xs)])
    return xin, tgt, mat


def matte_pixels(pair: TrainingPair) -> torch.Tensor | None:
    """Flat indices of the pair's matte pixels (alpha ≥ 0.5, or > 0 when none is); ``None`` without a matte."""
    if pair.matte is None:
        return None
    flat = pair.matte.reshape(-1)
    inside = torch.nonzero(flat >= 0.5).reshape(-1)
    return inside if len(inside) else torch.nonzero(flat > 0).reshape(-1)


def masked_target(output: torch.Tensor, target: torch.Tensor, matte: torch.Tensor | None) -> torch.Tensor:
    """The painting where the matte is (soft edges weighted), the network's own output (no gradient) elsewhere:
    ``a·t + (1 − a)·sg(y)``. Every loss term then pulls only on the painted pixels, and an unpainted pixel
    (``a = 0``) has no effect on training whatever the painting holds there."""
    if matte is None:
        return target
    return matte * target + (1.0 - matte) * output.detach()


def train_network(pairs: Sequence[TrainingPair], *, settings: TrainSettings, loss: KeyframeLoss,
                  device: torch.device | str = "cpu", progress: Callable[[TrainProgress], None] | None = None,
                  preview: Callable[[KeyframeNet], None] | None = None, preview_every: float = 15.0,
                  network: int = 0, networks: int = 1, initial: dict[str, torch.Tensor] | None = None,
                  resume: Mapping[str, torch.Tensor] | None = None,
                  checkpoint: Callable[[dict[str, torch.Tensor]], None] | None = None,
                  checkpoint_every: float = 30.0) -> TrainOutcome:
    """Train one :class:`KeyframeNet` on ``pairs`` (module docstring). ``preview(net)`` is called every
    ``preview_every`` seconds and at the end (the network in eval mode, no gradients).

    ``checkpoint(state)`` receives, every ``checkpoint_every`` seconds, the whole training state as tensors
    (weights, Adam's moments, the patch generator, the plateau watch, the step and the seconds so far);
    ``resume`` = such a state continues the training exactly where it was taken: the same patches, the
    same updates, bit for bit on one machine (a test holds it)."""
    if not pairs:
        raise ShapeError("train_network needs at least one keyframe")
    sizes = {tuple(p.inputs.shape) for p in pairs}
    if len(sizes) != 1:
        raise ShapeError(f"keyframes of different sizes: {sorted(sizes)}")
    device = torch.device(device)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    net = KeyframeNet(in_channels=pairs[0].inputs.shape[0])
    if initial is not None:  # continue from trained weights (fine-tuning; the optimiser starts afresh)
        net.load_state_dict(initial)
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    loss = loss.to(device)
    watch = PlateauWatch(patience=settings.patience)
    inside = [matte_pixels(p) for p in pairs]
    history: list[dict[str, float]] = []
    first, before = 1, 0.0
    if resume is not None:
        first, before = _restore(resume, net=net, opt=opt, gen=gen, watch=watch, device=device)
        if "done" in resume:  # this network had finished: nothing left to train
            net.eval()
            return TrainOutcome(net=net, steps=first - 1, seconds=before, ema=watch.ema,
                                stopped=STOP_REASONS[int(resume["done"][0])], history=[])
    t0 = time.perf_counter() - before
    last_preview = last_checkpoint = time.perf_counter()
    stopped = "max steps"
    step = first - 1
    for step in range(first, settings.max_steps + 1):
        xin, tgt, mat = sample_patches(pairs, size=settings.patch_size, batch=settings.patch_batch, gen=gen,
                                       inside=inside)
        opt.zero_grad(set_to_none=True)
        y = net(xin.to(device))
        total, parts = loss(y, masked_target(y, tgt.to(device), None if mat is None else mat.to(device)))
        total.backward()
        opt.step()
        value = total.item()
        if not np.isfinite(value):
            raise FloatingPointError(f"keyframe training diverged at step {step} (loss {value}); lower the learning rate")
        plateau = watch.update(value)
        elapsed = time.perf_counter() - t0
        if step % 10 == 0:
            history.append({"step": step, "loss": value, "ema": watch.ema, "seconds": round(elapsed, 2)})
        if progress is not None:
            progress(TrainProgress(step=step, loss=value, ema=watch.ema, parts=parts, elapsed=elapsed,
                                   network=network, networks=networks))
        if preview is not None and time.perf_counter() - last_preview >= preview_every:
            _call_preview(preview, net)
            last_preview = time.perf_counter()
        if checkpoint is not None and time.perf_counter() - last_checkpoint >= checkpoint_every:
            checkpoint(_snapshot(net=net, opt=opt, gen=gen, watch=watch, step=step, elapsed=elapsed))
            last_checkpoint = time.perf_counter()
        if plateau:
            stopped = "plateau"
            break
        if elapsed >= settings.time_budget:
            stopped = "time budget"
            break
    net.eval()
    if checkpoint is not None:  # the finished state: a resume returns this network at once
        final = _snapshot(net=net, opt=opt, gen=gen, watch=watch, step=step, elapsed=time.perf_counter() - t0)
        checkpoint({**final, "done": torch.tensor([STOP_REASONS.index(stopped)], dtype=torch.int64)})
    if preview is not None:
        _call_preview(preview, net)
    return TrainOutcome(net=net, steps=step, seconds=time.perf_counter() - t0, ema=watch.ema, stopped=stopped,
                        history=history)


def _snapshot(*, net: KeyframeNet, opt: torch.optim.Optimizer, gen: torch.Generator, watch: PlateauWatch,
              step: int, elapsed: float) -> dict[str, torch.Tensor]:
    """The training state as flat CPU tensors (safetensors-friendly: no pickle)."""
    out = {f"net.{k}": v.detach().cpu().clone() for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        st = opt.state.get(p, {})
        for name in ("exp_avg", "exp_avg_sq", "step"):
            if name in st:
                out[f"adam.{i}.{name}"] = torch.as_tensor(st[name]).detach().cpu().clone().reshape(-1)
    out["generator"] = gen.get_state().clone()
    out["watch"] = torch.tensor([watch.ema, watch.best, float(watch.best_step), float(watch.steps)], dtype=torch.float64)
    out["progress"] = torch.tensor([float(step), float(elapsed)], dtype=torch.float64)
    return out


def _restore(state: Mapping[str, torch.Tensor], *, net: KeyframeNet, opt: torch.optim.Optimizer, gen: torch.Generator,
             watch: PlateauWatch, device: torch.device) -> tuple[int, float]:
    """Put a :func:`_snapshot` back; returns (the next step, the seconds already spent)."""
    net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")})
    params = list(net.parameters())
    for i, p in enumerate(params):
        if f"adam.{i}.step" not in state:
            continue
        opt.state[p] = {"step": state[f"adam.{i}.step"].reshape(()).clone(),
                        "exp_avg": state[f"adam.{i}.exp_avg"].reshape(p.shape).to(device).clone(),
                        "exp_avg_sq": state[f"adam.{i}.exp_avg_sq"].reshape(p.shape).to(device).clone()}
    gen.set_state(state["generator"].clone())
    ema, best, best_step, steps = (float(v) for v in state["watch"])
    watch.ema, watch.best, watch.best_step, watch.steps = ema, best, int(best_step), int(steps)
    step, elapsed = (float(v) for v in state["progress"])
    return int(step) + 1, elapsed


def _call_preview(preview: Callable[[KeyframeNet], None], net: KeyframeNet) -> None:
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            preview(net)
    finally:
        net.train(was_training)
