"""Training of the decoder that inverts a VGG19 encoder (arbitrary-style transfer, :mod:`vidstyle.nets.decoder`).

``train_decoder(config=DecoderTrainConfig(...))`` optimises a :class:`~vidstyle.nets.decoder.Decoder`
with Adam on random crops of a folder of photos (no style images: the decoder only learns to give the
photo back from its features) against

    pixel_weight · MSE(y, x) on 0..255 values + perceptual_weight · mean_l MSE(F_l(y), F_l(x))

where ``x`` is the crop, ``y = decoder(encoder(x))`` and ``l`` runs over ``relu1_1, relu2_1, relu3_1`` up to
the encoder layer (Caffe-scale features, as everywhere in vidstyle).

Photos held out from training (``held_out``; by default the last ``held_out_count`` photos of the
folder, in name order) measure the reconstruction PSNR (dB, on [0, 1] images at ``psnr_size`` px long
side) at every checkpoint and in the model card. Training is deterministic for a seed on one machine,
checkpoints every N iterations (decoder, Adam state, RNG; safetensors, no pickle) and resumes to the
identical state.
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

from vidstyle.errors import InputNotFoundError, InvalidInputError
from vidstyle.io.naming import with_parameter
from vidstyle.lr_schedule import SCHEDULE_DEFAULTS, LRSchedule, apply_lr, card_lr
from vidstyle.nets.decoder import ENCODER_LAYERS, Decoder, VGGEncoder, save_decoder
from vidstyle.nets.vgg import load_vgg_state
from vidstyle.options.spec import OptionValueError
from vidstyle.runtime import describe_hardware
from vidstyle.train import (
    _IMAGE_EXTS,
    TrainProgress,
    _content_images,
    _sample_batch,
    _save_checkpoint,
    load_image,
)

__all__ = ["DecoderTrainConfig", "DecoderTrainResult", "train_decoder", "reconstruction_psnr", "held_out_files"]


@dataclass(frozen=True, slots=True)
class DecoderTrainConfig:
    """Everything a decoder training run depends on (recorded in the checkpoint and the model card)."""

    content: str
    output: str
    name: str | None = None
    layer: str = "relu3_1"
    image_size: int = 256
    batch_size: int = 4
    iterations: int = 4000
    lr: float = 3e-4
    #: cosine decay of the rate over this last fraction of the run, to ``lr_final`` × ``lr`` (vidstyle.lr_schedule)
    lr_decay: float = 0.0
    lr_final: float = 0.1
    #: weight of the MSE between output and photo on 0..255 values
    pixel_weight: float = 1.0
    #: weight of the mean over relu1_1 … layer of the feature MSE (Caffe scale)
    perceptual_weight: float = 0.1
    vgg_weights: str | None = None
    vgg_convention: str | None = None
    seed: int = 0
    checkpoint_every: int = 100
    threads: int | None = None
    max_images: int | None = None
    #: stop after this many seconds (the decoder is saved as it is then); None = run every iteration
    time_budget: float | None = None
    #: image files (or folders of them) for the reconstruction PSNR; empty: hold out photos of `content`
    held_out: tuple[str, ...] = ()
    #: photos of `content` (the last ones by name) kept out of training when `held_out` is empty
    held_out_count: int = 8
    #: long side of the held-out images when measuring PSNR
    psnr_size: int = 384

    def validate(self) -> None:
        if self.layer not in ENCODER_LAYERS:
            raise OptionValueError("layer", f"layer must be one of {', '.join(ENCODER_LAYERS)}, got {self.layer!r}")
        for name, value, low in [("image_size", self.image_size, 16), ("batch_size", self.batch_size, 1),
                                 ("iterations", self.iterations, 1), ("checkpoint_every", self.checkpoint_every, 1),
                                 ("held_out_count", self.held_out_count, 0), ("psnr_size", self.psnr_size, 16)]:
            if value < low:
                raise OptionValueError(name, f"{name} must be >= {low}, got {value}")
        LRSchedule(decay=self.lr_decay, final=self.lr_final)  # checks both
        for name, value in [("lr", self.lr), ("pixel_weight", self.pixel_weight), ("perceptual_weight", self.perceptual_weight)]:
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise OptionValueError(name, f"{name} must be a positive finite number, got {value}")
        if self.pixel_weight == 0 and self.perceptual_weight == 0:
            raise OptionValueError("pixel_weight", "pixel_weight and perceptual_weight are both 0: nothing to train",
                                   also=("perceptual_weight",))
        if self.max_images is not None and self.max_images < 1:
            raise OptionValueError("max_images", f"max_images must be >= 1, got {self.max_images}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise OptionValueError("time_budget", f"time_budget must be a positive number of seconds, got {self.time_budget}")


@dataclass(frozen=True, slots=True)
class DecoderTrainResult:
    model_path: Path
    card_path: Path
    checkpoint_path: Path
    iterations: int
    seconds: float
    final_losses: dict[str, float]
    psnr: float | None
    history: list[dict[str, float]] = field(default_factory=list)


def held_out_files(config: DecoderTrainConfig) -> tuple[list[Path], set[str]]:
    """The held-out image files, and the names of content photos to leave out of training."""
    if config.held_out:
        files: list[Path] = []
        for entry in config.held_out:
            p = Path(entry)
            if p.is_dir():
                files += sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_EXTS)
            elif p.is_file():
                files.append(p)
            else:
                raise with_parameter(InputNotFoundError(f"held-out image {p} not found"), "held_out")
        return files, set()
    root = Path(config.content)
    photos = sorted(q for q in root.iterdir() if q.suffix.lower() in _IMAGE_EXTS) if root.is_dir() else []
    n = min(config.held_out_count, max(len(photos) - 1, 0))
    chosen = photos[len(photos) - n:] if n else []
    return chosen, {q.name for q in chosen}


def reconstruction_psnr(*, encoder: VGGEncoder, decoder: Decoder, images: list[torch.Tensor]) -> float:
    """Mean PSNR (dB, peak 1) of ``decoder(encoder(x))`` against ``x`` over 3×H×W images in [0, 1]."""
    was_training = decoder.training
    decoder.eval()
    values = []
    device = next(decoder.parameters()).device
    with torch.no_grad():
        for img in images:
            x = img.unsqueeze(0).to(device)
            y = decoder(encoder(x), size=tuple(x.shape[-2:]))
            mse = float((y - x).pow(2).mean())
            values.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    decoder.train(was_training)
    return sum(values) / len(values) if values else float("nan")


def _loss_layers(layer: str) -> tuple[str, ...]:
    return ENCODER_LAYERS[: ENCODER_LAYERS.index(layer) + 1]


def _load_checkpoint(path: Path, *, net: Decoder, opt: torch.optim.Optimizer, gen: torch.Generator,
                     config: DecoderTrainConfig) -> tuple[int, float, list[dict[str, float]]]:
    from vidstyle.train import restore_checkpoint

    keys = ("layer", "image_size", "batch_size", "content", "seed", "lr", "pixel_weight", "perceptual_weight",
            "max_images", "held_out", "held_out_count", "lr_decay", "lr_final")
    return restore_checkpoint(path, net=net, opt=opt, gen=gen, config=config, keys=keys, kind="decoder_checkpoint",
                              defaults=SCHEDULE_DEFAULTS)


def _mark_checkpoint(path: Path, *, state_source: str, convention: str) -> None:
    """Re-save the checkpoint's metadata with its kind and the encoder it belongs to."""
    from vidstyle.train import mark_checkpoint

    mark_checkpoint(path, kind="decoder_checkpoint", vgg_source=Path(state_source).name, vgg_convention=convention)


def train_decoder(*, config: DecoderTrainConfig, resume: bool = False,
                  progress: Callable[[TrainProgress], None] | None = None,
                  device: str | torch.device = "cpu") -> DecoderTrainResult:
    """Train a decoder; see the module docstring. Returns paths, final losses and the held-out PSNR."""
    from vidstyle.train import start_run

    config.validate()
    device, output = start_run(device=device, threads=config.threads, output=config.output)
    name = config.name or output.name
    ckpt = output.with_name(output.name + ".ckpt.safetensors")

    state = load_vgg_state(weights=config.vgg_weights, convention=config.vgg_convention)  # type: ignore[arg-type]
    loss_layers = _loss_layers(config.layer)
    encoder = VGGEncoder(layer=config.layer, state=state, extra_layers=loss_layers).to(device)

    held_files, excluded = held_out_files(config)
    held = [load_image(p, max_side=config.psnr_size) for p in held_files]
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    images = _training_images(config, excluded)
    net = Decoder(layer=config.layer).to(device)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    start, elapsed, history = 0, 0.0, []
    if resume:
        if not ckpt.is_file():
            raise with_parameter(InputNotFoundError(f"resume: no checkpoint {ckpt}; run without `resume` to start training"),
                                 "resume")
        start, elapsed, history = _load_checkpoint(ckpt, net=net, opt=opt, gen=gen, config=config)

    t0 = time.perf_counter() - elapsed
    losses: dict[str, float] = {}
    psnr: float | None = None
    done = start
    schedule = LRSchedule(decay=config.lr_decay, final=config.lr_final)
    for it in range(start, config.iterations):
        x = _sample_batch(images, size=config.image_size, batch=config.batch_size, gen=gen).to(device)
        opt.zero_grad(set_to_none=True)
        apply_lr(opt, schedule.factor(it, iterations=config.iterations))
        with torch.no_grad():
            target = encoder.features(x)
        y = net(target[config.layer])
        l_pixel = (y - x).mul(255.0).pow(2).mean()
        if config.perceptual_weight > 0:
            feats = encoder.features(y)
            l_feat = sum(torch.nn.functional.mse_loss(feats[k], target[k]) for k in loss_layers) / len(loss_layers)
        else:
            l_feat = torch.zeros((), device=device)
        total = config.pixel_weight * l_pixel + config.perceptual_weight * l_feat
        total.backward()
        opt.step()
        losses = {"total": total.item(), "pixel": l_pixel.item(), "perceptual": float(l_feat.detach())}
        done = it + 1
        out_of_time = config.time_budget is not None and time.perf_counter() - t0 >= config.time_budget
        if done % config.checkpoint_every == 0 or done == config.iterations or out_of_time:
            if held:
                psnr = reconstruction_psnr(encoder=encoder, decoder=net, images=held)
                losses["psnr"] = psnr
            history.append({"iteration": done, **losses})
            _save_checkpoint(ckpt, net=net, opt=opt, gen=gen, iteration=done, elapsed=time.perf_counter() - t0,
                             config=config, history=history)  # type: ignore[arg-type]
            _mark_checkpoint(ckpt, state_source=state.source, convention=state.convention)
        elif done % 10 == 0:
            history.append({"iteration": done, **losses})
        if progress is not None:
            progress(TrainProgress(iteration=done, iterations=config.iterations, losses=losses,
                                   elapsed=time.perf_counter() - t0))
        if out_of_time:
            break
    if not losses and history:  # exported from a finished checkpoint: its last recorded losses
        losses = {k: v for k, v in history[-1].items() if k not in ("iteration", "psnr")}
    if psnr is None and held:
        psnr = reconstruction_psnr(encoder=encoder, decoder=net, images=held)

    seconds = time.perf_counter() - t0
    card = {
        "name": name,
        "description": f"decoder of VGG19 {config.layer} features (arbitrary-style transfer: AdaIN, WCT, style swap)",
        "architecture": {"family": "decoder", "layer": config.layer},
        "encoder": {"source": Path(state.source).name if os.sep in state.source else state.source,
                    "convention": state.convention, "layer": config.layer, "pooling": "max"},
        "weights": {"pixel": config.pixel_weight, "perceptual": config.perceptual_weight,
                    "perceptual_layers": list(loss_layers)},
        "data": {"content": Path(config.content).name, "images": len(images), "image_size": config.image_size,
                 "batch_size": config.batch_size},
        "held_out": {"images": [p.name for p in held_files], "psnr_size": config.psnr_size,
                     "psnr_db": None if psnr is None else round(psnr, 3)},
        "iterations": done,
        "time_budget_s": config.time_budget,
        "lr": config.lr,
        "lr_schedule": schedule.describe(),
        "seed": config.seed,
        "training_seconds": round(seconds, 1),
        "hardware": describe_hardware(device),
        "final_losses": {k: float(f"{v:.6g}") for k, v in losses.items()},
        "trained_with": "vidstyle train --kind decoder",
    }
    from vidstyle.nets.decoder import vgg_fingerprint

    model_path = save_decoder(output.with_suffix(".safetensors"), decoder=net, vgg_source=state.source,
                              fingerprint=vgg_fingerprint(state),
                              convention=state.convention, card=card)
    card_path = output.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    md = output.with_suffix(".md")
    md.write_text(render_decoder_card(card))
    return DecoderTrainResult(model_path=model_path, card_path=md, checkpoint_path=ckpt, iterations=done,
                              seconds=seconds, final_losses=losses, psnr=psnr, history=history)


def _training_images(config: DecoderTrainConfig, excluded: set[str]) -> list[torch.Tensor]:
    """The content photos minus the held-out ones (read through :func:`vidstyle.train._content_images`)."""
    if not excluded:
        return _content_images(config.content, min_side=config.image_size, limit=config.max_images)
    import tempfile

    root = Path(config.content)
    if not root.is_dir():
        raise with_parameter(InputNotFoundError(f"content folder {root} not found; pass a folder of photos as `content`"),
                             "content")
    keep = [p for p in sorted(root.iterdir()) if p.suffix.lower() in _IMAGE_EXTS and p.name not in excluded]
    if not keep:
        raise InvalidInputError(f"no training photos left in {root} after holding out {len(excluded)}")
    with tempfile.TemporaryDirectory(prefix="vidstyle_decoder_") as tmp:  # links: the folder minus the held-out photos
        for p in keep:
            os.symlink(p.resolve(), Path(tmp) / p.name)
        return _content_images(tmp, min_side=config.image_size, limit=config.max_images)


def render_decoder_card(card: dict) -> str:
    """The decoder's model card as Markdown (kept in sync with the JSON card)."""
    held = card["held_out"]
    psnr = "n/a" if held["psnr_db"] is None else f"{held['psnr_db']:.2f} dB"
    enc = card["encoder"]
    lines = [
        f"# {card['name']}", "", card["description"], "",
        "| field | value |", "|---|---|",
        f"| architecture | mirror of VGG19 up to {enc['layer']} (reflection-padded 3×3 convs, ReLU, nearest ×2 upsampling, no norms) |",
        f"| encoder | VGG19 {enc['layer']} ({enc['source']}, {enc['convention']} convention, {enc['pooling']} pooling) |",
        f"| loss weights | pixel {card['weights']['pixel']}, perceptual {card['weights']['perceptual']} "
        f"({', '.join(card['weights']['perceptual_layers'])}) |",
        f"| data | {card['data']['images']} photos from `{card['data']['content']}`, {card['data']['image_size']} px crops, "
        f"batch {card['data']['batch_size']} |",
        f"| iterations | {card['iterations']} (Adam, {card_lr(card)}, seed {card['seed']}) |",
        f"| training time | {card['training_seconds'] / 60:.1f} min on {card['hardware']} |",
        f"| reconstruction PSNR | {psnr} mean over {len(held['images'])} held-out images at {held['psnr_size']} px long side |",
        f"| final losses | {', '.join(f'{k} {v:.4g}' for k, v in card['final_losses'].items())} |",
        f"| trained with | `{card['trained_with']}` |", "",
    ]
    return "\n".join(lines)
