"""``vidstyle stylize``: stylize a video file or image sequence with a feed-forward model."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle stylize samples/clip.mp4 -o clip_styled.mp4
  vidstyle stylize in.mov -o out.mov --model wave_student --codec prores
  vidstyle stylize in.mp4 -o out.mkv --model my_style.safetensors --crf 20 --start 10 --end 25
  vidstyle stylize 'frames/%04d.png' -o styled/%04d.png --stabilize 0.8 --flow dis-medium
  vidstyle stylize in.mp4 -o out.mp4 --device cuda --batch-size 4 --compile
  vidstyle stylize in.mp4 -o out.mp4 --backend optim --style starry.jpg --vgg-weights vgg19.safetensors --size 512

The output is written to a temporary file next to OUTPUT and renamed when complete; an interrupted
run (Ctrl-C) keeps a playable partial file under the temporary name and says where.
The audio of the input is carried into the output. See `vidstyle models` for the model names.
Stabilisation: --stabilizer resample with --flow dis-medium where blending would smear the style: the
default model and the other student models (*_student, `vidstyle train --size student`) at 0.9 (the
default model and paintings_student's Starry Night 0.75; a --style-mix gets its styles' weighted
strength), --style (the arbitrary back end) at 0.9, and models of 1M weights or more (--size full, the
engstrom2016 nets). Other light models blend with --flow dis-fast at 0.75. Flags you give win.
"""


def _time(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty time; give seconds (12.5), [HH:]MM:SS(.ms) or a frame number (300f)")
    return text.strip()


#: options of still pictures (`vidstyle image`) only
_IMAGE_ONLY = ("style_map", "content_map", "map_weight", "portrait", "portrait_strict")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.options import EncodeOptions, OptimOptions, StylizeOptions, TemporalOptions, add_arguments

    p = add_command(subparsers, "stylize", help="stylize a video file or image sequence", description="Stylize a video (or image sequence) with a feed-forward style network, keeping its audio.", epilog=EPILOG)
    p.add_argument("input", metavar="INPUT",
                   help="video file, image sequence (frames/%%04d.png, a folder or a glob) or FORMAT:NAME FFmpeg input")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output video file (container from the extension) or image-sequence pattern/folder")
    add_arguments(p, StylizeOptions)
    add_arguments(p, TemporalOptions)
    add_arguments(p, EncodeOptions)
    sel = p.add_argument_group("selection")
    sel.add_argument("--start", type=_time, default=None, metavar="T",
                     help="start at T: seconds (12.5), [HH:]MM:SS(.ms) or a frame number (300f)")
    sel.add_argument("--end", type=_time, default=None, metavar="T", help="stop before T (same forms as --start)")
    sel.add_argument("--fps", default=None, metavar="RATE",
                     help="frame rate of an image-sequence input: 24, 25, 24000/1001 or 23.976 (default 24, with a note)")
    add_arguments(p, OptimOptions, exclude=_IMAGE_ONLY)
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary (warnings and errors still shown)")
    p.set_defaults(func=run)
    return p


def option_groups(args: argparse.Namespace) -> dict[str, Any]:
    """The option groups of ``vidstyle stylize``'s parsed flags; the temporal flags not given take the back end's
    own defaults (:func:`vidstyle.options.backend_temporal_defaults`), as :func:`vidstyle.api.stylize_video` does."""
    from vidstyle.options import (EncodeOptions, OptimOptions, StylizeOptions, TemporalOptions, from_args,
                                  with_backend_defaults)
    from vidstyle.options.spec import given_args

    if args.style and args.backend is None and not args.model:
        args.backend = "arbitrary"  # a painting without a back end: any-style, no training
    stylize = from_args(StylizeOptions, args)
    temporal = with_backend_defaults(from_args(TemporalOptions, args), stylize,
                                     given=given_args(TemporalOptions, args))
    return {"stylize": stylize, "temporal": temporal,
            "encode": from_args(EncodeOptions, args), "optim": from_args(OptimOptions, args)}


def run(args: argparse.Namespace) -> int:
    from vidstyle.api import stylize_video, validate_options
    from vidstyle.cli.common import error_line
    from vidstyle.errors import VidstyleError

    # every value checked before any work; an error names the flag (vidstyle.cli.main)
    groups = option_groups(args)
    if _one_picture(args.input, args.output):
        return _run_picture(args, groups)
    validate_options(output=args.output, start=args.start, end=args.end, **groups)

    bar: Any = None

    def new_bar(total: int | None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
                    desc=os.path.basename(str(args.output)), leave=True)

    def progress(info: Any) -> None:
        nonlocal bar
        if bar is None:
            bar = new_bar(info.total)
        elif bar.total is None and info.total:
            bar.total = info.total
        bar.update(info.frames - bar.n)

    def optim_progress(p: Any) -> None:  # frame, iteration and loss of the optimisation
        nonlocal bar
        if bar is None:
            bar = new_bar(None)
        where = f"pass {p.pass_index + 1} " if groups["optim"].passes > 1 else ""
        bar.set_postfix_str(f"{where}frame {p.frame} it {p.iteration}/{p.iterations} loss {p.loss:.4g}")

    def close_bar() -> None:
        if bar is not None:
            bar.close()

    try:  # (a SIGTERM arrives as KeyboardInterrupt too: vidstyle.cli.main)
        stats = stylize_video(
            args.input, args.output, start=args.start, end=args.end, fps=args.fps, overwrite=args.overwrite,
            progress=None if args.quiet else progress, optim_progress=None if args.quiet else optim_progress,
            **groups,
        )
    except KeyboardInterrupt as exc:
        close_bar()
        sys.stderr.write(f"vidstyle: interrupted; {_partial_said(exc, nothing='nothing was written')}\n")
        return 130
    except VidstyleError as exc:
        close_bar()
        if os.environ.get("VIDSTYLE_DEBUG"):
            raise
        sys.stderr.write(f"vidstyle: error: {error_line(exc)}\n")
        said = _partial_said(exc, nothing="")
        if said:
            sys.stderr.write(f"vidstyle: {said}\n")
        return 1
    close_bar()
    for warning in stats.warnings:
        sys.stderr.write(f"vidstyle: warning: {warning}\n")
    if not args.quiet:
        sys.stderr.write(
            f"vidstyle: wrote {stats.output} ({stats.frames} frames in {stats.seconds:.1f} s, {stats.fps:.1f} fps)\n"
        )
    return 0


def _partial_said(exc: BaseException, *, nothing: str) -> str:
    """Where the partial output of a stopped run is, or why none could be kept."""
    from vidstyle.io.output import output_kind

    partial = getattr(exc, "partial_output", None)
    if partial and output_kind(partial) == "images":
        return f"the frames finished so far are kept at {partial}"
    if partial:
        return f"partial output kept at {partial} (it plays)"
    return getattr(exc, "partial_lost", None) or nothing

_PICTURE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".exr")


def _one_picture(source: str, output: str) -> bool:
    """One picture in and one picture out (no frame-number pattern): stylize it as a picture."""
    from pathlib import Path

    src, dst = Path(source), Path(output)
    return (src.is_file() and src.suffix.lower() in _PICTURE_EXTS and dst.suffix.lower() in _PICTURE_EXTS
            and "%" not in output and "#" not in output)


def _run_picture(args: argparse.Namespace, groups: dict[str, Any]) -> int:
    from vidstyle.api import stylize_image

    result = stylize_image(args.input, args.output, stylize=groups["stylize"], optim=groups["optim"],
                           size=groups["optim"].size, overwrite=args.overwrite)
    for warning in result.warnings:
        sys.stderr.write(f"vidstyle: warning: {warning}\n")
    if not args.quiet:
        sys.stderr.write(f"vidstyle: wrote {result.output} ({result.width}×{result.height})\n")
    return 0
