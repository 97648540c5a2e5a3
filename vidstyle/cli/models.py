"""``vidstyle models``: list the shipped style models, or print one model's card."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle models               # table of shipped models
  vidstyle models starry_student   # the model card of one model
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(subparsers, "models", help="list shipped style models or show a model card", description="List the style models shipped with vidstyle, or print the card of one of them.", epilog=EPILOG)
    p.add_argument("name", nargs="?", metavar="NAME|PATH", help="a model name or a model file: print its card")
    p.set_defaults(func=run)
    return p


def _gflop(info: Any) -> str:
    """GFLOP per 640×360 frame: from the card if it says, else counted on a meta-device copy of
    the architecture (no weights loaded, no arithmetic done)."""
    meta = getattr(info, "metadata", None) or {}
    arch_card = meta.get("architecture") if isinstance(meta, dict) else None  # a student's card nests it
    for key in ("gflop_640x360", "gflop", "gflops"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if value is None and isinstance(arch_card, dict):
            value = arch_card.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{value:.2f}"
    try:
        import json

        import torch
        from safetensors import safe_open
        from torch.utils.flop_counter import FlopCounterMode

        from vidstyle.nets.registry import build_net
        from vidstyle.nets.transformer import NetConfig

        with safe_open(str(info.path), framework="pt") as f:
            header = dict(f.metadata() or {})
        arch = header.get("vidstyle.architecture", info.architecture)
        config = None
        if arch == "transformer":
            config = NetConfig.from_dict(json.loads(header["vidstyle.config"]))
        with torch.device("meta"):
            net = build_net(arch, config).eval()
            x = torch.empty(1, 3, 360, 640)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            net(x)
        return f"{counter.get_total_flops() / 1e9:.2f}"
    except Exception:  # noqa: BLE001 - a listing must not fail on one odd file
        return "-"


def _name(info: Any) -> str:
    from vidstyle.nets.registry import DEFAULT_MODEL

    return f"{info.name} (default)" if info.name == DEFAULT_MODEL else info.name


def _description(info: Any) -> str:
    """The card's description, after the shipped entry's note (a model kept for comparison says so)."""
    from vidstyle.nets.registry import shipped_entry

    entry = shipped_entry(str(info.path)) if getattr(info, "path", None) else None
    note = entry.meta.get("note") if entry is not None else None
    text = str(info.description or "")
    return f"{note}; {text}" if note else text


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vidstyle.errors import ModelError
    from vidstyle.nets.registry import list_models

    models = list_models()
    if args.name is None:
        if not models:
            sys.stdout.write("no shipped models found; train one with `vidstyle train` or pass --model PATH\n")
            return 0
        rows = [[_name(m), str(m.architecture), str(m.style or "-"), _gflop(m), _description(m)] for m in models]
        sys.stdout.write(_table(rows, ["NAME", "ARCHITECTURE", "STYLE", "GFLOP@640x360", "DESCRIPTION"]) + "\n")
        sys.stdout.write("\n`vidstyle models NAME` prints a model's card; use a name with `vidstyle stylize --model NAME`.\n")
        return 0
    for m in models:
        if m.name == args.name:
            card = getattr(m, "card_path", None)
            if card is not None:
                try:
                    with open(card, encoding="utf-8") as fh:
                        text = fh.read()
                except OSError:
                    text = None
                if text is not None:
                    sys.stdout.write(text if text.endswith("\n") else text + "\n")
                    return 0
            sys.stdout.write(
                f"{m.name}: {m.architecture}, style {m.style or '-'}; {m.description or ''}\n(no model card found)\n"
            )
            return 0
    from pathlib import Path

    path = Path(args.name)
    if path.is_file():  # a model file given by path, as --model takes it
        card = path.with_name(path.name.removesuffix(".safetensors") + ".md")
        if card.is_file():
            sys.stdout.write(card.read_text(encoding="utf-8"))
            return 0
        from vidstyle.nets.registry import load_model

        model = load_model(path)
        sys.stdout.write(f"{model.name}: {model.architecture}, style {model.metadata.get('style', '-')}\n"
                         "(no model card next to the file)\n")
        return 0
    from vidstyle.nets.registry import RETIRED, retired_error

    if args.name in RETIRED:
        raise retired_error(args.name)
    names = ", ".join(m.name for m in models) or "none shipped"
    raise ModelError(f"unknown model {args.name!r}; choose one of: {names}, or give a model file's path")
