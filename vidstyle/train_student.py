"""Distillation of the fast arbitrary-style variant (:mod:`vidstyle.nets.student`) from the VGG variant.

``train_student(config=StudentTrainConfig(...))`` optimises a :class:`~vidstyle.nets.student.Student` (encoder
and decoder together) with Adam on random crops of a folder of photos and of paintings, against
:func:`vidstyle.losses.distill.distillation_loss`: the teacher is VGG19 to relu3_1 and the shipped relu3_1
decoder (``decoder``), each photo crop is paired with a crop of a random training painting for the stylised
term (AdaIN with the painting's teacher statistics). Paintings named in ``held_out_styles`` and the held-out
photos (as :mod:`vidstyle.train_decoder`: the last ``held_out_count`` of the folder by name) are never trained on;
at every checkpoint and in the model card they measure

* ``psnr_db``: the student's reconstruction ``D_s(E_s(x))`` against the photo;
* ``stylised_psnr_db``: ``D_s(AdaIN(E_s(x), E_s(p)))`` against the teacher's ``D_t(AdaIN(E_t(x), E_t(p)))``
  for the held-out paintings: how closely the fast variant reproduces the VGG variant.

Deterministic for a seed on one machine; checkpoints every N iterations (student, Adam state, RNG;
safetensors) and resumes to the identical state; ``time_budget`` stops early and saves the model as it is.
Imports neither PyAV nor kornia (a GPU machine may lack them).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vidstyle.errors import InputNotFoundError, InvalidInputError, ModelError
from vidstyle.io.naming import with_parameter
from vidstyle.losses.distill import DistillWeights, distillation_loss
from vidstyle.lr_schedule import SCHEDULE_DEFAULTS, LRSchedule, apply_lr, card_lr
from vidstyle.nets.student import Student, StudentConfig, load_student, save_student
from vidstyle.options.spec import OptionValueError
from vidstyle.runtime import describe_hardware
from vidstyle.train import _IMAGE_EXTS, TrainProgress, _sample_batch, _save_checkpoint, load_image

__all__ = ["StudentTrainConfig", "StudentTrainResult", "train_student", "adain_pairs", "style_files",
           "match_teacher_statistics",
           "DEFAULT_HELD_OUT_STYLES"]

#: paintings of ``../shared/data/styles`` kept out of training by default (two of the six that
#: ``benchmarks/bench_arbitrary.py`` measures on)
DEFAULT_HELD_OUT_STYLES = ("hokusai_great_wave.jpg", "munch_the_scream.jpg")


@dataclass(frozen=True, slots=True)
class StudentTrainConfig:
    """Everything a student training run depends on (recorded in the checkpoint and the model card)."""

    content: str
    #: painting files or folders of them
    style: tuple[str, ...]
    output: str
    name: str | None = None
    #: the teacher decoder (a shipped name or a .safetensors file; default: the shipped relu3_1 decoder)
    decoder: str | None = None
    width: int = 48
    blocks: int = 2
    image_size: int = 256
    #: long side the paintings are read at before cropping (the size the arbitrary back end analyses them at)
    style_size: int = 512
    batch_size: int = 8
    iterations: int = 4000
    lr: float = 1e-3
    #: cosine decay of the rate over this last fraction of the run, to ``lr_final`` × ``lr`` (vidstyle.lr_schedule)
    lr_decay: float = 0.0
    lr_final: float = 0.1
    feature_weight: float = 1.0
    stats_weight: float = 1.0
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.1
    #: weight of the Gram term between the student's and the teacher's stylised outputs
    #: (:func:`vidstyle.losses.distill.distillation_loss`). 1e-3 brought the shipped student from 1.37× to 1.13× the
    #: VGG variant's style ratio in 342 fine-tuning iterations (3e-4: 1.17×; BENCHMARKS.md, "Arbitrary style");
    #: measured as a fine-tune of a student distilled without it, not from scratch
    texture_weight: float = 1e-3
    #: a trained student (.safetensors) to start from instead of random weights: fine-tuning
    init: str | None = None
    vgg_weights: str | None = None
    vgg_convention: str | None = None
    seed: int = 0
    checkpoint_every: int = 100
    threads: int | None = None
    max_images: int | None = None
    time_budget: float | None = None
    held_out: tuple[str, ...] = ()
    held_out_count: int = 8
    held_out_styles: tuple[str, ...] = DEFAULT_HELD_OUT_STYLES
    psnr_size: int = 384

    def validate(self) -> None:
        StudentConfig(width=self.width, blocks=self.blocks)
        for name, value, low in [("image_size", self.image_size, 32), ("style_size", self.style_size, 32),
                                 ("batch_size", self.batch_size, 1), ("iterations", self.iterations, 1),
                                 ("checkpoint_every", self.checkpoint_every, 1), ("held_out_count", self.held_out_count, 0),
                                 ("psnr_size", self.psnr_size, 16)]:
            if isinstance(value, bool) or value < low:
                raise OptionValueError(name, f"{name} must be >= {low}, got {value}")
        if self.image_size % 4:
            raise OptionValueError("image_size", f"image_size must be a multiple of 4, got {self.image_size}")
        LRSchedule(decay=self.lr_decay, final=self.lr_final)  # checks both
        for name in ("lr", "feature_weight", "stats_weight", "pixel_weight", "perceptual_weight", "texture_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise OptionValueError(name, f"{name} must be a positive finite number, got {value}")
        if not self.style:
            raise OptionValueError("style", "give paintings (files or a folder) for the stylised term: `style`")
        if self.max_images is not None and self.max_images < 1:
            raise OptionValueError("max_images", f"max_images must be >= 1, got {self.max_images}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise OptionValueError("time_budget", f"time_budget must be a positive number of seconds, got {self.time_budget}")


@dataclass(frozen=True, slots=True)
class StudentTrainResult:
    model_path: Path
    card_path: Path
    checkpoint_path: Path
    iterations: int
    seconds: float
    final_losses: dict[str, float]
    psnr: float | None
    stylised_psnr: float | None
    history: list[dict[str, float]] = field(default_factory=list)


def style_files(config: StudentTrainConfig) -> tuple[list[Path], list[Path]]:
    """(training paintings, held-out paintings) from ``style`` (files and folders) and ``held_out_styles``."""
    files: list[Path] = []
    for entry in config.style:
        p = Path(entry)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_EXTS)
        elif p.is_file():
            files.append(p)
        else:
            raise with_parameter(InputNotFoundError(f"painting {p} not found; pass painting files or a folder of them"),
                                 "style")
    held = set(config.held_out_styles)
    train = [p for p in files if p.name not in held]
    if not train:
        raise with_parameter(InvalidInputError(f"no paintings left to train on after holding out {sorted(held)}; "
                                               "add paintings to `style`"), "style")
    return train, [p for p in files if p.name in held]


def adain_pairs(content: torch.Tensor, style: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN of each content image to the style image at the same batch position (N×C×H×W each, any sizes):
    ``σ_s · (c − μ_c) / σ_c + μ_s`` per image and channel (:func:`vidstyle.stylize.transforms.adain`'s formula)."""
    mc = content.mean((2, 3), keepdim=True)
    sc = (content.var((2, 3), unbiased=False, keepdim=True) + eps).sqrt()
    ms = style.mean((2, 3), keepdim=True)
    ss = (style.var((2, 3), unbiased=False, keepdim=True) + eps).sqrt()
    return (content - mc) / sc * ss + ms


def _paintings(files: list[Path], *, long_side: int, min_side: int) -> list[torch.Tensor]:
    """uint8 3×H×W paintings at ``long_side`` px on the long side (at least ``min_side`` on the short side)."""
    out = []
    for p in files:
        img = load_image(p, max_side=long_side)
        h, w = img.shape[1:]
        if min(h, w) < min_side:
            s = min_side / min(h, w)
            img = torch.nn.functional.interpolate(img[None], size=(max(min_side, round(h * s)), max(min_side, round(w * s))),
                                                  mode="bicubic", align_corners=False)[0].clamp(0, 1)
        out.append((img * 255 + 0.5).to(torch.uint8).contiguous())
    return out


def _shrunk(path: Path, long_side: int) -> torch.Tensor:
    """An image as 3×H×W in [0, 1], shrunk (never enlarged) to ``long_side`` px on its long side."""
    img = load_image(path)
    return load_image(path, max_side=long_side) if max(img.shape[1:]) > long_side else img


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(float((a - b).pow(2).mean()), 1e-12))


def held_out_psnr(*, student: Student, teacher_encoder: torch.nn.Module, teacher_decoder: torch.nn.Module,
                  photos: list[torch.Tensor], paintings: list[torch.Tensor]) -> tuple[float, float | None]:
    """(mean reconstruction PSNR of the student on ``photos``, mean PSNR of the student's AdaIN output against
    the teacher's over photos × ``paintings``, or ``None`` without paintings); images 3×H×W in [0, 1]."""
    from vidstyle.stylize.transforms import adain, prepare_style

    was = student.training
    student.eval()
    device = next(student.parameters()).device
    rec, sty = [], []
    with torch.no_grad():
        style_stats = [(prepare_style(student.encoder(p[None].to(device)), method="adain"),
                        prepare_style(teacher_encoder(p[None].to(device)), method="adain")) for p in paintings]
        for img in photos:
            x = img[None].to(device)
            size = tuple(x.shape[-2:])
            fs = student.encoder(x)
            rec.append(_psnr(student.decoder(fs, size=size), x))
            if style_stats:
                ft = teacher_encoder(x)
                for s_stats, t_stats in style_stats:
                    target = teacher_decoder(adain(ft, t_stats), size=size)
                    sty.append(_psnr(student.decoder(adain(fs, s_stats), size=size), target))
    student.train(was)
    return sum(rec) / len(rec), (sum(sty) / len(sty) if sty else None)


def match_teacher_statistics(student: Student, x: torch.Tensor, teacher_feats: torch.Tensor, *,
                             std_fraction: float = 0.25) -> None:
    """Rescale the student encoder's last 1×1 conv so that, on ``x``, each channel's pre-activation has the mean of
    the teacher's features ``teacher_feats`` and ``std_fraction`` of their std (data-dependent initialisation: Adam
    starts from the right scale instead of spending hundreds of steps reaching it; a fraction of the std, because a
    fresh student's variations are uncorrelated with the teacher's and would only add to the error)."""
    from vidstyle.nets.student import FEATURE_GAIN

    enc = student.encoder
    head = enc.head
    xp = x - 0.5
    z = head(enc.body(enc.stem(xp)))  # before ReLU and gain
    var_z, mu_z = torch.var_mean(z, dim=(0, 2, 3), unbiased=False)
    var_t, mu_t = torch.var_mean(teacher_feats / FEATURE_GAIN, dim=(0, 2, 3), unbiased=False)
    k = (std_fraction * var_t.sqrt() / (var_z.sqrt() + 1e-8)).clamp(max=1e3)
    head.weight.mul_(k[:, None, None, None])
    head.bias.copy_(k * (head.bias - mu_z) + mu_t)


_RESUME_KEYS = ("content", "style", "decoder", "width", "blocks", "image_size", "style_size", "batch_size", "seed",
                "lr", "feature_weight", "stats_weight", "pixel_weight", "perceptual_weight", "texture_weight", "init",
                "max_images", "held_out", "held_out_count", "held_out_styles", "lr_decay", "lr_final")
#: what checkpoints made before a key existed had in effect
_RESUME_DEFAULTS = {"texture_weight": 0.0, "init": None, **SCHEDULE_DEFAULTS}


def _init_weights(config: StudentTrainConfig, *, fingerprint: str) -> Student:
    """The student ``config.init`` names, checked against the architecture and teacher of this run."""
    init = load_student(config.init)  # type: ignore[arg-type]
    if (init.config.width, init.config.blocks) != (config.width, config.blocks):
        raise with_parameter(ModelError(
            f"init: {config.init} has width {init.config.width} and {init.config.blocks} blocks, not {config.width} and "
            f"{config.blocks}; pass the same `width` or start fresh"), "init")
    if init.vgg_fingerprint and init.vgg_fingerprint != fingerprint:
        raise with_parameter(ModelError(
            f"init: {config.init} was distilled from the VGG19 weights {init.vgg_source}; pass those as `vgg_weights`"),
            "init")
    return init


def _mark_checkpoint(path: Path, *, source: str, fingerprint: str) -> None:
    """Re-save the checkpoint's metadata with its kind and the VGG19 weights it was distilled from."""
    from vidstyle.train import mark_checkpoint

    mark_checkpoint(path, kind="student_checkpoint", vgg_source=Path(source).name, vgg_fingerprint=fingerprint)


def train_student(*, config: StudentTrainConfig, resume: bool = False,
                  progress: Callable[[TrainProgress], None] | None = None,
                  device: str | torch.device = "cpu") -> StudentTrainResult:
    """Distil a student; see the module docstring. Returns paths, final losses and the held-out PSNRs."""
    from vidstyle.nets.decoder import VGGEncoder, load_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state
    from vidstyle.stylize.arbitrary import find_decoder
    from vidstyle.train import restore_checkpoint, start_run
    from vidstyle.train_decoder import _training_images, held_out_files

    config.validate()
    train_styles, held_styles = style_files(config)
    device, output = start_run(device=device, threads=config.threads, output=config.output)
    name = config.name or output.name
    ckpt = output.with_name(output.name + ".ckpt.safetensors")

    state = load_vgg_state(weights=config.vgg_weights, convention=config.vgg_convention)  # type: ignore[arg-type]
    fingerprint = vgg_fingerprint(state)
    teacher_path = find_decoder(config.decoder)
    teacher_decoder = load_decoder(teacher_path, layer="relu3_1")
    if teacher_decoder.vgg_fingerprint and teacher_decoder.vgg_fingerprint != fingerprint:
        raise with_parameter(ModelError(
            f"teacher decoder {teacher_path.name} was trained on the VGG19 weights {teacher_decoder.vgg_source}, not "
            f"{Path(state.source).name}; pass those as `vgg_weights`"), "decoder")
    teacher_decoder = teacher_decoder.to(device).eval().requires_grad_(False)
    encoder = VGGEncoder(layer="relu3_1", state=state, extra_layers=("relu1_1", "relu2_1")).to(device).eval()
    encoder.requires_grad_(False)

    held_files, excluded = held_out_files(config)  # type: ignore[arg-type]
    held = [_shrunk(p, config.psnr_size) for p in held_files]
    held_paintings = [_shrunk(p, config.style_size) for p in held_styles]
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    images = _training_images(config, excluded)  # type: ignore[arg-type]
    paintings = _paintings(train_styles, long_side=config.style_size, min_side=config.image_size)
    net = Student(config=StudentConfig(width=config.width, blocks=config.blocks)).to(device)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    start, elapsed, history = 0, 0.0, []
    # fine-tuning: a trained student of the same architecture and teacher (its card goes into this one's)
    init = _init_weights(config, fingerprint=fingerprint) if config.init is not None else None
    if resume:
        if not ckpt.is_file():
            raise with_parameter(InputNotFoundError(f"resume: no checkpoint {ckpt}; run without `resume` to start training"),
                                 "resume")
        start, elapsed, history = restore_checkpoint(ckpt, net=net, opt=opt, gen=gen, config=config, keys=_RESUME_KEYS,
                                                     defaults=_RESUME_DEFAULTS, kind="student_checkpoint")
    elif init is not None:
        net.load_state_dict(init.state_dict())
    else:  # a fresh student's features start with the teacher's per-channel mean and std
        with torch.no_grad():
            probe = torch.cat([_sample_batch(images, size=config.image_size, batch=config.batch_size, gen=gen),
                               _sample_batch(paintings, size=config.image_size, batch=config.batch_size, gen=gen)])
            match_teacher_statistics(net, probe.to(device), encoder(probe.to(device)))
    weights = DistillWeights(feature=config.feature_weight, stats=config.stats_weight, pixel=config.pixel_weight,
                             perceptual=config.perceptual_weight, texture=config.texture_weight)
    perceptual = (lambda y: encoder.features(y)) if config.perceptual_weight > 0 or config.texture_weight > 0 else None

    t0 = time.perf_counter() - elapsed
    losses: dict[str, float] = {}
    psnr: float | None = None
    sty_psnr: float | None = None
    done = start
    schedule = LRSchedule(decay=config.lr_decay, final=config.lr_final)
    for it in range(start, config.iterations):
        x = _sample_batch(images, size=config.image_size, batch=config.batch_size, gen=gen).to(device)
        p = _sample_batch(paintings, size=config.image_size, batch=config.batch_size, gen=gen).to(device)
        opt.zero_grad(set_to_none=True)
        apply_lr(opt, schedule.factor(it, iterations=config.iterations))
        with torch.no_grad():
            tx = encoder.features(x)
            ft, fp = tx["relu3_1"], encoder(p)
            teacher_stylised = teacher_decoder(adain_pairs(ft, fp))
            tst_feats = encoder.features(teacher_stylised) if perceptual is not None else None
        fs, fps = net.encoder(x), net.encoder(p)
        result = distillation_loss(
            student_content=fs, teacher_content=ft, student_style=fps, teacher_style=fp, photo=x,
            from_teacher=net.decoder(ft), from_student=net.decoder(fs), stylised=net.decoder(adain_pairs(fs, fp)),
            teacher_stylised=teacher_stylised, features=perceptual, weights=weights,
            photo_features=tx, teacher_stylised_features=tst_feats)
        result.total.backward()
        opt.step()
        losses = result.as_floats()
        done = it + 1
        out_of_time = config.time_budget is not None and time.perf_counter() - t0 >= config.time_budget
        if done % config.checkpoint_every == 0 or done == config.iterations or out_of_time:
            if held:
                psnr, sty_psnr = held_out_psnr(student=net, teacher_encoder=encoder, teacher_decoder=teacher_decoder,
                                               photos=held, paintings=held_paintings)
                losses["psnr"] = psnr
                if sty_psnr is not None:
                    losses["stylised_psnr"] = sty_psnr
            history.append({"iteration": done, **losses})
            _save_checkpoint(ckpt, net=net, opt=opt, gen=gen, iteration=done, elapsed=time.perf_counter() - t0,
                             config=config, history=history)  # type: ignore[arg-type]
            _mark_checkpoint(ckpt, source=state.source, fingerprint=fingerprint)
        elif done % 10 == 0:
            history.append({"iteration": done, **losses})
        if progress is not None:
            progress(TrainProgress(iteration=done, iterations=config.iterations, losses=losses,
                                   elapsed=time.perf_counter() - t0))
        if out_of_time:
            break
    if not losses and history:  # exported from a finished checkpoint: its last recorded losses
        losses = {k: v for k, v in history[-1].items() if k not in ("iteration", "psnr", "stylised_psnr")}
    if psnr is None and held:
        psnr, sty_psnr = held_out_psnr(student=net, teacher_encoder=encoder, teacher_decoder=teacher_decoder,
                                       photos=held, paintings=held_paintings)

    seconds = time.perf_counter() - t0
    from vidstyle.nets.student import student_gflop

    card = {
        "name": name,
        "kind": "student",
        "description": "fast arbitrary-style encoder and decoder distilled from VGG19 relu3_1 and its decoder "
                       "(AdaIN; no VGG at inference)",
        "architecture": {"family": "student", "layer": "relu3_1", "width": config.width, "blocks": config.blocks,
                         "gflop_640x360": round(student_gflop(net.config), 3)},
        "teacher": {"decoder": teacher_path.name, "vgg": Path(state.source).name if os.sep in state.source else state.source,
                    "convention": state.convention, "vgg_fingerprint": fingerprint},
        "weights": {"feature": config.feature_weight, "stats": config.stats_weight, "pixel": config.pixel_weight,
                    "perceptual": config.perceptual_weight, "texture": config.texture_weight},
        "init": None if config.init is None else Path(config.init).name,
        #: the card of the student it was fine-tuned from (its recipe and iterations)
        "init_card": None if init is None else init.card,
        "data": {"content": Path(config.content).name, "images": len(images), "image_size": config.image_size,
                 "batch_size": config.batch_size, "paintings": [p.name for p in train_styles],
                 "style_size": config.style_size},
        "held_out": {"images": [p.name for p in held_files], "paintings": [p.name for p in held_styles],
                     "psnr_size": config.psnr_size,
                     "psnr_db": None if psnr is None else round(psnr, 3),
                     "stylised_psnr_db": None if sty_psnr is None else round(sty_psnr, 3)},
        "iterations": done,
        "time_budget_s": config.time_budget,
        "lr": config.lr,
        "lr_schedule": schedule.describe(),
        "seed": config.seed,
        "training_seconds": round(seconds, 1),
        "hardware": describe_hardware(device),
        "final_losses": {k: float(f"{v:.6g}") for k, v in losses.items()},
        "trained_with": "vidstyle train --kind student",
    }
    model_path = save_student(output.with_suffix(".safetensors"), student=net, vgg_source=state.source,
                              fingerprint=fingerprint, card=card)
    card_path = output.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    md = output.with_suffix(".md")
    md.write_text(render_student_card(card))
    return StudentTrainResult(model_path=model_path, card_path=md, checkpoint_path=ckpt, iterations=done,
                              seconds=seconds, final_losses=losses, psnr=psnr, stylised_psnr=sty_psnr, history=history)


def render_student_card(card: dict) -> str:
    """The student's model card as Markdown (kept in sync with the JSON card)."""
    held, arch = card["held_out"], card["architecture"]

    def db(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} dB"

    lines = [
        f"# {card['name']}", "", card["description"], "",
        "| field | value |", "|---|---|",
        f"| architecture | 4×4 space-to-depth, width {arch['width']}, {arch['blocks']} depthwise-separable blocks per side, "
        f"1×1 to/from 256 channels; {arch['gflop_640x360']} GFLOP per 640×360 frame |",
        f"| teacher | VGG19 relu3_1 ({card['teacher']['vgg']}, {card['teacher']['convention']}) and {card['teacher']['decoder']} |",
        f"| loss weights | feature {card['weights']['feature']}, statistics {card['weights']['stats']}, pixel "
        f"{card['weights']['pixel']}, perceptual {card['weights']['perceptual']}, texture "
        f"{card['weights'].get('texture', 0.0)} |",
        f"| data | {card['data']['images']} photos from `{card['data']['content']}`, {len(card['data']['paintings'])} paintings, "
        f"{card['data']['image_size']} px crops, batch {card['data']['batch_size']} |",
        f"| iterations | {card['iterations']} (Adam, {card_lr(card)}, seed {card['seed']})"
        + (f", fine-tuned from {card['init']}" if card.get("init") else "")
        + (f" ({card['init_card']['iterations']} iterations, texture weight "
           f"{card['init_card'].get('weights', {}).get('texture', 0.0)})" if (card.get("init_card") or {}).get("iterations")
           else "") + " |",
        f"| training time | {card['training_seconds'] / 60:.1f} min on {card['hardware']} |",
        f"| reconstruction PSNR | {db(held['psnr_db'])} mean over {len(held['images'])} held-out photos at {held['psnr_size']} px |",
        f"| stylised PSNR vs the VGG variant | {db(held['stylised_psnr_db'])} (AdaIN, held-out paintings: "
        f"{', '.join(held['paintings']) or 'none'}) |",
        f"| final losses | {', '.join(f'{k} {v:.4g}' for k, v in card['final_losses'].items())} |",
        f"| trained with | `{card['trained_with']}` |", "",
    ]
    return "\n".join(lines)
