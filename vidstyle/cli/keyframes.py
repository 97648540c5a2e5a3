"""``vidstyle keyframes``: carry painted keyframes through a shot (see :mod:`vidstyle.keyframes`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle keyframes shot.mp4 --key 0:painted_0000.png --key 48:painted_0048.png -o shot_painted.mp4
  vidstyle keyframes shot.mp4 --key 0:p0.png --key 48:p48.png -o out.mp4 --preview preview.png --save-model shot_look
  vidstyle keyframes shot_take2.mp4 --model shot_look.safetensors -o take2_painted.mp4
  vidstyle keyframes shot.mp4 --model shot_look.safetensors --key 0:p0.png --key 48:p48.png -o again.mp4
  vidstyle keyframes 'frames/%04d.png' --key 0:p0.png -o painted/%04d.png --guides tracked --time-budget 5

A keyframe's FRAME counts from 0 (the clip's first frame) and its IMAGE is that frame painted, at the
frame's size (same aspect: resized with a note). Training stops by itself at a quality plateau or after
--time-budget minutes; then every frame goes through the network and the stabiliser, audio kept.
The output is written under a temporary name and renamed when complete.
"""

_STYLIZE_FIELDS = ("seed", "device", "threads", "precision", "vgg_weights", "vgg_convention", "mask")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.keyframes.options import KEYFRAME_FLOW, KeyframeOptions
    from vidstyle.options import EncodeOptions, StylizeOptions, TemporalOptions, add_arguments, specs

    p = add_command(subparsers, "keyframes", help="carry painted keyframes through a shot (few-shot training)",
                    description="Train a small network on painted keyframes of a clip (Texler et al. 2020) and "
                                "apply it to every frame, stabilised, keeping the audio.", epilog=EPILOG, run=run)
    p.add_argument("input", metavar="INPUT", help="video file or image sequence (frames/%%04d.png, a folder or a glob)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output video file or image-sequence pattern/folder")
    add_arguments(p, KeyframeOptions)
    add_arguments(p, StylizeOptions, exclude=[n for n in specs(StylizeOptions) if n not in _STYLIZE_FIELDS])
    add_arguments(p, TemporalOptions, defaults={"flow": KEYFRAME_FLOW})
    add_arguments(p, EncodeOptions)
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT (and the --save-model file) if they exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary (notes, warnings and errors still shown)")
    return p


def run(args: argparse.Namespace) -> int:
    from vidstyle.cli.common import error_line
    from vidstyle.errors import VidstyleError
    from vidstyle.keyframes.options import KEYFRAME_FLOW, KeyframeOptions
    from vidstyle.keyframes.run import stylize_with_keyframes
    from vidstyle.options import EncodeOptions, StylizeOptions, TemporalOptions, from_args

    kf = from_args(KeyframeOptions, args)
    st = from_args(StylizeOptions, args)
    if getattr(args, "flow", None) is None:
        args.flow = KEYFRAME_FLOW  # the carried keyframe is only as good as its flow
    tm, enc = from_args(TemporalOptions, args), from_args(EncodeOptions, args)
    bars: dict[str, Any] = {}

    def note(text: str) -> None:
        sys.stderr.write(f"vidstyle: note: {text}\n")

    def train_progress(p: Any) -> None:
        from tqdm import tqdm

        key = f"train{p.network}"
        if key not in bars:
            for k in [k for k in bars if k.startswith("train")]:
                bars.pop(k).close()
            desc = "training" if p.networks == 1 else f"training {p.network + 1}/{p.networks}"
            bars[key] = tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True, desc=desc)
        bar = bars[key]
        bar.update(p.step - bar.n)
        if p.step % 5 == 0 or p.step == 1:
            bar.set_postfix_str(f"loss {p.loss:.4f} avg {p.ema:.4f} {p.elapsed:.0f}s")

    def progress(info: Any) -> None:
        from tqdm import tqdm

        for k in [k for k in bars if k.startswith("train")]:
            bars.pop(k).close()
        bar = bars.get("frames")
        if bar is None:
            bar = bars["frames"] = tqdm(total=info.total, unit="frame", file=sys.stderr, dynamic_ncols=True,
                                        desc=os.path.basename(str(args.output)))
        bar.update(info.frames - bar.n)

    def close_bars() -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()

    try:
        result = stylize_with_keyframes(
            args.input, args.output, keyframes=kf, stylize=st, temporal=tm, encode=enc, overwrite=args.overwrite,
            progress=None if args.quiet else progress, train_progress=None if args.quiet else train_progress,
            note=note)
    except KeyboardInterrupt as exc:
        close_bars()
        partial = getattr(exc, "partial_output", None)
        from vidstyle.keyframes.run import checkpoint_paths

        kept = [p for p in checkpoint_paths(kf.save_model, max(len(kf.keys), 1)) if p.is_file()] if kf.save_model else []
        if kept and partial is None:
            sys.stderr.write(f"vidstyle: interrupted; training checkpoint kept at {kept[0]}: run the same command "
                             "again to resume the training\n")
        else:
            sys.stderr.write(f"vidstyle: interrupted{f'; partial output kept at {partial}' if partial else '; nothing was written'}\n")
        return 130
    except VidstyleError as exc:
        close_bars()
        if os.environ.get("VIDSTYLE_DEBUG"):
            raise
        sys.stderr.write(f"vidstyle: error: {error_line(exc)}\n")
        partial = getattr(exc, "partial_output", None)
        if partial:
            sys.stderr.write(f"vidstyle: partial output kept at {partial}\n")
        return 1
    close_bars()
    for warning in result.stats.warnings:
        sys.stderr.write(f"vidstyle: warning: {warning}\n")
    if not args.quiet:
        card = result.model.card
        if result.training_seconds:
            sys.stderr.write(f"vidstyle: trained {card.get('steps')} steps in {result.training_seconds:.0f} s "
                             f"(stopped by {card.get('stopped')}), loss {card.get('final_loss')}\n")
        if result.model_path is not None:
            sys.stderr.write(f"vidstyle: saved the model to {result.model_path} (card beside it)\n")
        s = result.stats
        sys.stderr.write(f"vidstyle: wrote {s.output} ({s.frames} frames in {s.seconds:.1f} s, {s.fps:.1f} fps)\n")
    return 0
