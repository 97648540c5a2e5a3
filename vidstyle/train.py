"""Training of feed-forward style networks (Johnson et al. 2016), with an optional temporal loss.

``train(config=TrainConfig(...))`` optimises a :class:`~vidstyle.nets.transformer.TransformerNet`
with Adam on random crops of a folder of photos against

    content_weight · L_content(relu2_2) + style_weight · Σ_l L_style(l) + tv_weight · TV
    (+ temporal_weight · L_temporal) (+ lattice_weight · L_lattice, :mod:`vidstyle.losses.lattice`)

Feature losses are on the Caffe scale of VGG features; TV and temporal losses on 0..255 pixel values,
so the default weights balance whatever the loss network's source.

with a VGG19 prefix as the loss network (:mod:`vidstyle.nets.vgg`). The temporal term (Ruder et al.
2018, Huang et al. 2017) uses synthetic frame pairs: a crop ``x`` and ``x' = warp(x, w) + noise``
for a random smooth flow ``w`` known exactly; it penalises ``c · (f(x') − warp(f(x), w))²`` where
``c`` masks pixels whose source falls outside the frame.

Training is deterministic for a given seed on one machine, checkpoints every N iterations (model,
Adam state, RNG states; safetensors, no pickle) and resumes to the identical state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.errors import InputNotFoundError, InvalidInputError
from vidstyle.io.naming import with_parameter
from vidstyle.losses import STYLE_LOSS_SCALE, content_loss, tv_loss
from vidstyle.losses.lattice import lattice_loss
from vidstyle.nets.transformer import PRESETS
from vidstyle.nets.vgg import VGGFeatures, load_vgg_state
from vidstyle.options.spec import OptionValueError
from vidstyle.io.files import publish
from vidstyle.lr_schedule import SCHEDULE_DEFAULTS, LRSchedule, apply_lr, card_lr
from vidstyle.runtime import describe_hardware
from vidstyle.train_config import TrainConfig
from vidstyle.train_plan import STUDENT_SIZE, StylePlan, multistyle_from

__all__ = ["TrainConfig", "TrainProgress", "TrainResult", "train", "load_image", "synthetic_pair"]

_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True, slots=True)
class TrainProgress:
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float


@dataclass(frozen=True, slots=True)
class TrainResult:
    model_path: Path
    card_path: Path
    checkpoint_path: Path
    iterations: int
    seconds: float
    final_losses: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def _read_rgb8(path: Path) -> np.ndarray:
    """An image file as ``H×W×3`` uint8 RGB (:func:`vidstyle.io.imagefiles.read_image`, 16-bit and float
    files converted to 8 bits)."""
    from vidstyle.io.imagefiles import convert_depth, read_image

    return convert_depth(read_image(path), 8)


def load_image(path: str | os.PathLike, *, max_side: int | None = None) -> torch.Tensor:
    """Read an image file as a 3×H×W float tensor in [0, 1] (RGB), optionally resized."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"image {p} not found; check the path")
    img = _read_rgb8(p)
    if max_side is not None:
        h, w = img.shape[:2]
        s = max_side / max(h, w)
        if abs(s - 1) > 1e-3:
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0


def _content_images(folder: str, *, min_side: int, limit: int | None) -> list[torch.Tensor]:
    import cv2

    root = Path(folder)
    if not root.is_dir():
        raise with_parameter(
            InputNotFoundError(f"content folder {root} not found; pass a folder of photos as `content`"), "content"
        )
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
    if limit:
        files = files[:limit]
    images = []
    for p in files:
        try:
            img = _read_rgb8(p)
        except (InvalidInputError, InputNotFoundError):  # unreadable, unsupported or not a file: skipped
            continue
        h, w = img.shape[:2]
        s = min_side / min(h, w)
        img = cv2.resize(img, (max(min_side, round(w * s)), max(min_side, round(h * s))), interpolation=cv2.INTER_AREA)
        images.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous())
    if not images:
        raise InvalidInputError(f"no readable images in {root}; put JPEG/PNG photos there")
    return images


def _sample_batch(images: list[torch.Tensor], *, size: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(batch):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        h, w = img.shape[1:]
        y = int(torch.randint(h - size + 1, (1,), generator=gen))
        x = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = img[:, y : y + size, x : x + size]
        if bool(torch.rand((), generator=gen) < 0.5):
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out).float() / 255.0


def _warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp ``out(x) = image(x + flow(x))`` (bilinear, border padding)."""
    from vidstyle.flow.warping import warp

    return warp(image, flow)


def synthetic_pair(x: torch.Tensor, *, gen: torch.Generator, max_shift: float = 6.0, noise: float = 0.02) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A second frame for each image of ``x`` by a random smooth motion whose flow is known exactly.

    Returns ``(x2, flow, mask)``: ``x2 = warp(x, flow) + noise``; flow N×2×H×W maps each pixel of x2
    to where it was in x; mask N×1×H×W is 0 where that source lies outside the frame.
    """
    n, _, h, w = x.shape
    # drawn on the CPU (``gen`` is a CPU generator), then moved to x's device
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    cx, cy = (w - 1) / 2, (h - 1) / 2
    flows = []
    for _ in range(n):
        r = torch.rand(6, generator=gen) * 2 - 1
        angle = r[0].item() * math.radians(2.0)
        scale = 1.0 + r[1].item() * 0.03
        tx, ty = r[2].item() * max_shift, r[3].item() * max_shift
        c, s = math.cos(angle) * scale, math.sin(angle) * scale
        u = c * (xs - cx) - s * (ys - cy) + cx + tx - xs
        v = s * (xs - cx) + c * (ys - cy) + cy + ty - ys
        # a smooth non-rigid part: bilinear upsampling of a coarse random field
        coarse = ((torch.rand(1, 2, 4, 4, generator=gen) * 2 - 1) * (max_shift / 3)).to(x.dtype)
        fine = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0]
        flows.append(torch.stack([u, v]) + fine)
    flow = torch.stack(flows)
    sx, sy = xs + flow[:, 0], ys + flow[:, 1]
    mask = ((sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)).to(x.dtype).unsqueeze(1).to(x.device)
    flow = flow.to(x.device)
    x2 = _warp(x, flow)
    if noise > 0:
        x2 = (x2 + torch.randn(x2.shape, generator=gen, dtype=x.dtype).to(x.device) * noise).clamp(0, 1)
    return x2, flow, mask


def _checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt.safetensors")


def _save_checkpoint(path: Path, *, net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     iteration: int, elapsed: float, config: TrainConfig, history: list[dict[str, float]]) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {f"net.{k}": v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    steps = {}
    for i, p in enumerate(net.parameters()):
        st = opt.state.get(p, {})
        if st:
            tensors[f"opt.{i}.exp_avg"] = st["exp_avg"].contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = st["exp_avg_sq"].contiguous()
            steps[str(i)] = float(st["step"])
    tensors["rng.data"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "iteration": str(iteration),
        "elapsed": repr(elapsed),
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "steps": json.dumps(steps),
        "history": json.dumps(history[-200:]),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    publish(tmp, path)


#: what a checkpoint written before a setting existed had in effect
_OLD_CHECKPOINT_DEFAULTS = {"style_reduction": "mean", "style_loss": "gram", "multi_style": False, "add_style": False,
                            "tune_style": False, "style_repeats": None, "style_lattice": None,
                            "identity_weight": 10.0, "lattice_weight": 0.0, **SCHEDULE_DEFAULTS}


def mark_checkpoint(path: Path, **metadata: str) -> None:
    """Re-save the checkpoint at ``path`` with ``metadata`` added to its header (its ``kind``, the loss network
    it belongs to), through a temporary file, so a reader never sees it half-written."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(metadata)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    publish(tmp, path)


def _load_checkpoint(path: Path, *, net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     config: TrainConfig) -> tuple[int, float, list[dict[str, float]]]:
    keys = ("size", "image_size", "batch_size", "style", "content", "seed", "lr", "content_weight", "style_weight",
            "tv_weight", "temporal_weight", "content_layer", "style_layers", "style_mix", "style_size", "init",
            "style_reduction", "multi_style", "add_style", "tune_style", "style_repeats", "style_names", "identity_weight", "style_loss",
            "lr_decay", "lr_final", "lattice_weight", "style_lattice")
    return restore_checkpoint(path, net=net, opt=opt, gen=gen, config=config, keys=keys, defaults=_OLD_CHECKPOINT_DEFAULTS)


def restore_checkpoint(path: Path, *, net: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                       config: Any, keys: tuple[str, ...], defaults: dict[str, Any] | None = None,
                       kind: str | None = None) -> tuple[int, float, list[dict[str, float]]]:
    """Restore a training checkpoint (network, Adam state, RNG states) after checking that it was made
    with the same ``keys`` of ``config`` (``defaults``: what older checkpoints had in effect) and, when
    given, that its metadata ``kind`` matches. Returns ``(iteration, elapsed seconds, loss history)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if kind is not None and meta.get("kind") != kind:
        raise OptionValueError("resume", f"resume: {path} is not a {kind.replace('_', ' ')}; start fresh")
    saved, mine = json.loads(meta.get("config", "{}")), dataclasses.asdict(config)
    for key in keys:
        a, b = saved.get(key, (defaults or {}).get(key)), mine.get(key)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            raise OptionValueError("resume", f"resume: checkpoint {path} was made with {key}={a!r}, not {b!r}; "
                                   "use the same options or start fresh")
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    steps = json.loads(meta.get("steps", "{}"))
    for i, p in enumerate(net.parameters()):
        if str(i) in steps:
            opt.state[p] = {"step": torch.tensor(steps[str(i)]),
                            "exp_avg": tensors[f"opt.{i}.exp_avg"].to(p.device, copy=True),
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(p.device, copy=True)}
    gen.set_state(tensors["rng.data"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["iteration"]), float(meta.get("elapsed", "0")), json.loads(meta.get("history", "[]"))


def start_run(*, device: str | torch.device, threads: int | None, output: str | os.PathLike[str]) -> tuple[torch.device, Path]:
    """What every training run does first: the device, the CPU threads (a training owns its process),
    and the output path without its extension, whose folder must exist."""
    from vidstyle.runtime import resolve_device

    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    out = Path(output)
    if out.suffix == ".safetensors":
        out = out.with_suffix("")
    if not out.parent.is_dir():
        raise InputNotFoundError(f"output folder {out.parent} does not exist; create it first")
    return dev, out


def train(*, config: TrainConfig, resume: bool = False, progress: Callable[[TrainProgress], None] | None = None,
          device: str | torch.device = "cpu") -> TrainResult:
    """Train a style network; see the module docstring. Returns paths and final losses."""
    config.validate()
    device, output = start_run(device=device, threads=config.threads, output=config.output)
    name = config.name or output.name
    ckpt = _checkpoint_path(output)
    if config.add_style or config.tune_style:  # a wrong init fails before the loss network loads
        multistyle_from(config.init, size=config.size,  # type: ignore[arg-type]
                        param="tune_style" if config.tune_style else "add_style")

    state = load_vgg_state(weights=config.vgg_weights, convention=config.vgg_convention)  # type: ignore[arg-type]
    layers = list(dict.fromkeys([config.content_layer, *config.style_layers]))
    vgg = VGGFeatures(layers=layers, state=state).to(device)

    style_feats = []
    for s in config.style:
        img = load_image(s, max_side=config.style_size).unsqueeze(0).to(device)
        with torch.no_grad():
            feats = vgg(img)
        style_feats.append({k: feats[k] for k in config.style_layers})

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    images = _content_images(config.content, min_side=config.image_size, limit=config.max_images)
    names = list(config.style_names or [Path(s).stem for s in config.style])
    plan = StylePlan.build(config, names=names, style_feats=style_feats, device=device)
    net = plan.net
    net.train()
    if callable(getattr(net, "param_groups", None)):  # a network that says what fine-tuning trains, and at what rate
        opt = torch.optim.Adam(net.param_groups(config.lr), lr=config.lr)
    else:
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.lr)
    start, elapsed, history = 0, 0.0, []
    if resume:
        if not ckpt.is_file():
            raise with_parameter(InputNotFoundError(
                f"resume: no checkpoint {ckpt}; run without `resume` to start training"
            ), "resume")
        start, elapsed, history = _load_checkpoint(ckpt, net=net, opt=opt, gen=gen, config=config)

    t0 = time.perf_counter() - elapsed
    losses: dict[str, float] = {}
    done = start
    schedule = LRSchedule(decay=config.lr_decay, final=config.lr_final)
    for it in range(start, config.iterations):
        x = _sample_batch(images, size=config.image_size, batch=config.batch_size, gen=gen).to(device)
        opt.zero_grad(set_to_none=True)
        apply_lr(opt, schedule.factor(it, iterations=config.iterations))
        slot, style = plan.step(it)
        if config.temporal_weight > 0:
            x2, flow, mask = synthetic_pair(x, gen=gen)
            y_all = plan.forward(torch.cat([x, x2.to(device)]), slot)
            y, y2 = y_all[: len(x)], y_all[len(x):]
            # on 0..255 pixel values, like the Caffe-scale feature losses (docs/architecture.md, "Loss network")
            l_tmp = ((y2 - _warp(y, flow.to(device))).mul(255.0).pow(2) * mask.to(device)).mean()
        else:
            y = plan.forward(x, slot)
            l_tmp = torch.zeros((), device=device)
        with torch.no_grad():
            target = vgg(x)[config.content_layer]
        feats = vgg(y)
        l_content = content_loss(feats[config.content_layer], target)
        l_tv = tv_loss(y * 255.0)
        w_lattice = lattice_weight_of(config, slot)
        l_lattice = lattice_loss(y) if w_lattice > 0 else torch.zeros((), device=device)
        if style is None:  # the identity slot of a multi-style model: give the photo back
            l_style = (y - x).mul(255.0).pow(2).mean()
            style_term = config.identity_weight * l_style
        else:
            l_style = style(feats)
            style_term = (config.style_weight * STYLE_LOSS_SCALE[config.style_loss]) * l_style
        total = (config.content_weight * l_content + style_term + config.tv_weight * l_tv
                 + config.temporal_weight * l_tmp + w_lattice * l_lattice)
        total.backward()
        opt.step()
        losses = {"total": total.item(), "content": l_content.item(), "style": l_style.item(), "tv": l_tv.item(),
                  "temporal": l_tmp.item(), **({"lattice": l_lattice.item()}
                                                  if config.lattice_weight > 0 or config.style_lattice else {})}
        if (it + 1) % 10 == 0 or it + 1 == config.iterations:
            history.append({"iteration": it + 1, **losses})
        done = it + 1
        out_of_time = config.time_budget is not None and time.perf_counter() - t0 >= config.time_budget
        if done % config.checkpoint_every == 0 or done == config.iterations or out_of_time:
            _save_checkpoint(ckpt, net=net, opt=opt, gen=gen, iteration=done, elapsed=time.perf_counter() - t0,
                             config=config, history=history)
        if progress is not None:
            progress(TrainProgress(iteration=done, iterations=config.iterations, losses=losses, elapsed=time.perf_counter() - t0))
        if out_of_time:
            break

    seconds = time.perf_counter() - t0
    from vidstyle.nets.registry import save_model

    multi = bool(getattr(net, "styles", None))
    card = {
        "name": name,
        "description": (f"{config.size} multi-style network: {', '.join(net.styles[1:])}" if multi
                        else f"{config.size} network in the style of {Path(config.style[0]).stem}"),
        "architecture": ({"family": "student-multistyle" if multi else "student-style", "size": config.size,
                          **dataclasses.asdict(net.config)}
                         if config.size == STUDENT_SIZE else
                         {"family": "multistyle" if multi else "transformer", "size": config.size,
                          **dataclasses.asdict(PRESETS[config.size])}),
        "styles": list(net.styles) if multi else None,
        "trained_styles": names if config.add_style or config.tune_style else None,
        "style_images": [*plan.base_images, *([] if config.tune_style else [Path(s).name for s in config.style])],
        "style_mix": list(config.style_mix) if config.style_mix else None,
        "style_repeats": list(config.style_repeats) if config.style_repeats else None,
        "style_lattice": list(config.style_lattice) if config.style_lattice is not None else None,
        "loss_network": {"source": Path(state.source).name if os.sep in state.source else state.source,
                         "convention": state.convention, "content_layer": config.content_layer,
                         "style_layers": list(config.style_layers),
                         "style_reduction": config.style_reduction, "style_loss": config.style_loss},
        "weights": {"content": config.content_weight, "style": config.style_weight, "tv": config.tv_weight,
                    "temporal": config.temporal_weight, "lattice": config.lattice_weight},
        "data": {"content": Path(config.content).name, "images": len(images), "image_size": config.image_size,
                 "style_size": config.style_size, "batch_size": config.batch_size},
        "iterations": done if start < config.iterations else config.iterations,
        "time_budget_s": config.time_budget,
        "initialised_from": plan.init or (Path(config.init).name if config.init and Path(config.init).is_file()
                                          else config.init),  # a file by its name, not where it was here
        "lr": config.lr,
        "lr_schedule": schedule.describe(),
        "seed": config.seed,
        "training_seconds": round(seconds, 1),
        "hardware": describe_hardware(device),
        "final_losses": {k: float(f"{v:.6g}") for k, v in losses.items()},
        "trained_with": "vidstyle train",
        "lineage": lineage_of(_init_card(config, plan)),
    }
    style_label = ",".join(net.styles[1:]) if multi else Path(config.style[0]).stem
    model_path = save_model(output.with_suffix(".safetensors"), net=net, name=name, style=style_label, card=card)
    card_path = output.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    md = output.with_suffix(".md")
    md.write_text(render_card_markdown(card))
    return TrainResult(model_path=model_path, card_path=md, checkpoint_path=ckpt, iterations=card["iterations"],
                       seconds=seconds, final_losses=losses, history=history)


#: what a card keeps of each earlier training step behind a model (its ``lineage``)
LINEAGE_FIELDS = ("name", "initialised_from", "trained_styles", "style_images", "style_repeats", "style_lattice",
                  "weights", "iterations", "lr", "lr_schedule", "seed", "training_seconds", "hardware")


def lineage_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The training steps behind a model trained from the model whose card is ``card``, oldest first: that card's own
    ``lineage``, then its step (its :data:`LINEAGE_FIELDS`). ``[]`` for a card not written by ``vidstyle train``
    (a downloaded net, a distilled student: their cards say how they were made)."""
    if card.get("trained_with") != "vidstyle train":
        return []
    earlier = card.get("lineage")
    return [*(earlier if isinstance(earlier, list) else []), _step_of(card)]


def _step_of(card: dict[str, Any]) -> dict[str, Any]:
    """What a lineage keeps of the training step a card describes: its :data:`LINEAGE_FIELDS` that are set."""
    return {k: card[k] for k in LINEAGE_FIELDS if card.get(k) is not None}


def _init_card(config: TrainConfig, plan: StylePlan) -> dict[str, Any]:
    """The card of the model the run started from: ``init``, or the student the plan chose by name."""
    from vidstyle.nets.registry import card_of

    if config.init:
        return card_of(config.init)
    return card_of(Path(plan.init).stem) if plan.init else {}


def lattice_weight_of(config: TrainConfig, slot: int) -> float:
    """The lattice weight of the batch that trains ``slot``: the painting's own ``style_lattice`` weight in a
    multi-style run (slot ``k`` is its ``k``-th painting; slot 0, the identity, has none), else ``lattice_weight``."""
    if config.style_lattice is None or not config.multi_style or slot < 1:
        return config.lattice_weight
    return float(config.style_lattice[slot - 1])


def render_card_markdown(card: dict) -> str:
    """The model card as Markdown (kept in sync with the JSON card)."""
    arch = card["architecture"]
    lines = [
        f"# {card['name']}",
        "",
        card.get("description", ""),
        "",
        "| field | value |",
        "|---|---|",
        (f"| architecture | the fast arbitrary-style student (width {arch['width']}, {arch['blocks']} blocks a side, "
         f"{arch['layer']}-like features) with this painting's conditional instance norm (γ, β), fine-tuned |"
         if arch.get("family") == "student-style" else
         f"| architecture | the fast arbitrary-style student (width {arch['width']}, {arch['blocks']} blocks a side, "
         f"{arch['layer']}-like features), its decoder shared by all styles; each style has its own conditional "
         "instance norm (γ, β), decoder affines and output head |"
         if arch.get("family") == "student-multistyle" else
         f"| architecture | TransformerNet `{arch['size']}`: "
         + (f"4×4 space-to-depth, every layer at 1/4 resolution, width {arch['channels'][2]}"
            if arch.get("space_to_depth") else f"channels {arch['channels']}")
         + f", {arch['n_res']} residual blocks, depthwise={arch['depthwise']} |"),
        f"| style image(s) | {', '.join(card['style_images'])} |",
        *([f"| styles (slot 0 gives the photo back) | {', '.join(card['styles'])} |"] if card.get("styles") else []),
        f"| loss network | VGG19 ({card['loss_network']['source']}, {card['loss_network']['convention']} convention); content {card['loss_network']['content_layer']}; style {', '.join(card['loss_network']['style_layers'])} |",
        f"| loss weights | content {card['weights']['content']}, style {card['weights']['style']}, tv {card['weights']['tv']}, temporal {card['weights']['temporal']}"
        + (f", lattice {card['weights']['lattice']:g}" if card['weights'].get("lattice") else "")
        + (", lattice per style " + ", ".join(f"{n} {w:g}" for n, w in zip(card.get("styles", [])[1:], card["style_lattice"]))
           if card.get("style_lattice") is not None else "") + " |",
        f"| data | {card['data']['images']} photos from `{card['data']['content']}`, {card['data']['image_size']} px crops, batch {card['data']['batch_size']} |",
        f"| iterations | {card['iterations']} (Adam, {card_lr(card)}, seed {card['seed']})"
        + (f", initialised from `{card['initialised_from']}`" if card.get("initialised_from") else "") + " |",
        f"| training time | {card['training_seconds'] / 60:.1f} min on {card['hardware']} |",
        f"| final losses | {', '.join(f'{k} {v:.4g}' for k, v in card['final_losses'].items())} |",
        f"| trained with | `{card['trained_with']}` |",
        "",
        *_lineage_markdown(card.get("lineage") or [], card),
    ]
    return "\n".join(lines)


def _lineage_markdown(steps: list[dict[str, Any]], card: dict[str, Any]) -> list[str]:
    """The card's "Training steps" section: each step behind the model, oldest first, then this one."""
    if not steps:
        return []

    def line(n: int, step: dict[str, Any]) -> str:
        w = step.get("weights") or {}
        what = (f"styles {', '.join(step['trained_styles'])} only" if step.get("trained_styles")
                else f"{len(step.get('style_images') or [])} painting(s)")
        extra = [f"style weight {w['style']:g}" if "style" in w else "",
                 f"lattice {w['lattice']:g}" if w.get("lattice") else "",
                 f"repeats {', '.join(step['style_repeats'])}" if step.get("style_repeats") else ""]
        src = f" from `{step['initialised_from']}`" if step.get("initialised_from") else ""
        secs = step.get("training_seconds")
        took = f", {secs / 60:.1f} min on {step.get('hardware', '?')}" if isinstance(secs, (int, float)) else ""
        return (f"{n}. `{step.get('name', '?')}`{src}: {step.get('iterations', '?')} iterations, {what}, "
                f"{', '.join(e for e in extra if e) or 'default weights'}, {card_lr(step) if 'lr' in step else 'lr ?'}"
                f"{took}")

    out = ["## Training steps", "", "The steps that made this model, oldest first (`vidstyle train`, each from the one "
           "before):", ""]
    out += [line(i, st) for i, st in enumerate(steps, start=1)]
    out += [line(len(steps) + 1, _step_of(card)) + " (this card)", ""]
    return out
