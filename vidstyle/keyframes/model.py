"""A trained keyframe model: its network(s), what they were trained on, and its file (safetensors + card).

The file (``--save-model PATH``) holds the weights of each network (``net0.…``, ``net1.…``) and, in its
metadata, ``vidstyle.format = "keyframes"`` and the card as JSON. Beside it go ``PATH.json`` (the same card)
and ``PATH.md`` (the card for people). The card records the keyframes (frame numbers and painting files),
the guides, the blend mode, the frame size, the training time and final loss, the steps and why training
stopped. Loading never unpickles: :func:`load_keyframe_model` reads safetensors only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.keyframes.guides import guide_channels
from vidstyle.keyframes.net import KeyframeNet

__all__ = ["FORMAT", "KeyframeModel", "blend_weights", "load_keyframe_model", "render_card", "save_keyframe_model"]

FORMAT = "keyframes"


def blend_weights(index: int, keys: tuple[int, ...]) -> list[float]:
    """Weights of the per-keyframe networks at frame ``index`` (``distance`` mode): between keyframes
    ``a < index < b``, ``(b − index)/(b − a)`` for ``a`` and ``(index − a)/(b − a)`` for ``b``; before the
    first or after the last keyframe, that keyframe alone; at a keyframe, its own network alone."""
    if not keys:
        raise ModelError("a keyframe model without keyframes")
    w = [0.0] * len(keys)
    if index <= keys[0]:
        w[0] = 1.0
    elif index >= keys[-1]:
        w[-1] = 1.0
    else:
        for i in range(len(keys) - 1):
            a, b = keys[i], keys[i + 1]
            if a <= index <= b:
                w[i] = (b - index) / (b - a)
                w[i + 1] = (index - a) / (b - a)
                break
    return w


@dataclass(slots=True)
class KeyframeModel:
    """Networks and their card. ``blend`` ``joint``: one network for all ``keys``; ``distance``: network i
    was trained on keyframe ``keys[i]`` alone and outputs are blended by :func:`blend_weights`."""

    nets: list[KeyframeNet]
    keys: tuple[int, ...]
    guides: tuple[str, ...]
    blend: str
    card: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = 1 if self.blend == "joint" else len(self.keys)
        if len(self.nets) != expected:
            raise ModelError(f"a {self.blend} keyframe model needs {expected} network(s), got {len(self.nets)}")
        for net in self.nets:
            if net.in_channels != guide_channels(self.guides):
                raise ModelError(f"network takes {net.in_channels} channels but guides {self.guides} give "
                                 f"{guide_channels(self.guides)}")

    def weights(self, index: int) -> list[float]:
        return [1.0] if self.blend == "joint" else blend_weights(index, self.keys)

    def to(self, device: torch.device | str) -> KeyframeModel:
        for net in self.nets:
            net.to(device).eval()
        return self


def save_keyframe_model(path: str | os.PathLike[str], model: KeyframeModel) -> Path:
    """Write ``model`` to ``path`` (``.safetensors`` added when missing) atomically, with ``.json`` and ``.md``
    cards beside it; returns the model's path."""
    from safetensors.torch import save_file

    from vidstyle.io.files import publish

    out = Path(path)
    if out.suffix != ".safetensors":
        out = out.with_name(out.name + ".safetensors")
    tensors = {f"net{i}.{k}": v.detach().cpu().contiguous() for i, net in enumerate(model.nets)
               for k, v in net.state_dict().items()}
    card = {**model.card, "keys": list(model.keys), "guides": list(model.guides), "blend": model.blend,
            "widths": list(model.nets[0].widths)}
    meta = {"vidstyle.format": FORMAT, "vidstyle.card": json.dumps(card, sort_keys=True)}
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        publish(tmp, out)
        stem = out.with_suffix("")
        for ext, text in ((".json", json.dumps(card, indent=2, sort_keys=True) + "\n"), (".md", render_card(card))):
            t = stem.with_name(f".{stem.name}{ext}.tmp")
            t.write_text(text)
            os.replace(t, stem.with_suffix(ext))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def load_keyframe_model(path: str | os.PathLike[str]) -> KeyframeModel:
    """Read a file written by :func:`save_keyframe_model` (safetensors only, never a pickle)."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file() and p.suffix != ".safetensors" and p.with_name(p.name + ".safetensors").is_file():
        p = p.with_name(p.name + ".safetensors")
    if not p.is_file():
        raise InputNotFoundError(f"keyframe model '{p}' does not exist; give a file written by --save-model")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"'{p}' is not a safetensors file ({exc}); give a file written by --save-model") from None
    if meta.get("vidstyle.format") != FORMAT:
        raise ModelError(f"'{p}' is not a keyframe model (a style network? use `vidstyle stylize --model` for "
                         "those); give a file written by `vidstyle keyframes --save-model`")
    card = json.loads(meta["vidstyle.card"])
    guides = tuple(card["guides"])
    keys = tuple(int(k) for k in card["keys"])
    nets = []
    count = 1 if card["blend"] == "joint" else len(keys)
    for i in range(count):
        net = KeyframeNet(in_channels=guide_channels(guides), widths=card["widths"])
        try:
            net.load_state_dict({k[len(f"net{i}."):]: v for k, v in tensors.items() if k.startswith(f"net{i}.")})
        except RuntimeError as exc:
            raise ModelError(f"'{p}': network {i} does not match its card ({str(exc).splitlines()[0]})") from None
        nets.append(net.eval())
    return KeyframeModel(nets=nets, keys=keys, guides=guides, blend=card["blend"], card=card)


def render_card(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    frames = ", ".join(f"{k['index']} (`{k['painting']}`)" for k in card.get("keyframes", []))
    size = card.get("frame_size")
    lines = [
        f"# Keyframe model: {card.get('input', '?')}",
        "",
        "Keyframe-guided stylization (Texler et al. 2020 few-shot patch-based training), made by `vidstyle keyframes`.",
        "",
        "| field | value |",
        "|---|---|",
        f"| keyframes | {frames} |",
        f"| guides | frame{''.join(' + ' + g for g in card.get('guides', []))} |",
        f"| networks | {card.get('blend')}: "
        + ("one network on all keyframes" if card.get("blend") == "joint" else "one per keyframe, blended by distance")
        + f"; U-Net widths {card.get('widths')} |",
        f"| frame size | {size[1]}×{size[0]} |" if size else "| frame size | ? |",
        f"| loss | L1 + {card.get('perceptual_weight')} × perceptual "
        + ("(VGG19 relu1_2, relu2_1)" if card.get("perceptual") else "(off: L1 only, no VGG weights)")
        + (f" + {card.get('gram_weight')} × patch Gram" if card.get("gram_weight") else "") + " |",
        f"| training | {card.get('steps')} steps, patches {card.get('patch_size')} px × {card.get('patch_batch')}, "
        f"stopped by {card.get('stopped')}, {card.get('training_seconds')} s on {card.get('hardware')} |",
        f"| final loss (moving average) | {card.get('final_loss')} |",
        f"| seed | {card.get('seed')} |",
        "",
    ]
    return "\n".join(lines)
