"""``vidstyle stylize``: stylize a video file or image sequence with a feed-forward model."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EPILOG = """examples:
  vidstyle stylize samples/clip.mp4 -o clip_styled.mp4
  vidstyle stylize in.mov -o out.mov --model wave_small --codec prores
  vidstyle stylize in.mp4 -o out.mkv --model my_style.safetensors --crf 20 --start 10 --end 25
  vidstyle stylize 'frames/%04d.png' -o styled/%04d.png --stabilize 0.8 --flow dis-medium
  vidstyle stylize in.mp4 -o out.mp4 --device cuda --batch-size 4 --compile
  vidstyle stylize in.mp4 -o out.mp4 --backend optim --style starry.jpg --vgg-weights vgg19.safetensors --size 512

The output is written to a temporary file next to OUTPUT and renamed when complete; an interrupted
run (Ctrl-C) keeps a playable partial file under the temporary name and says where.
The audio of the input is carried into the output. See `vidstyle models` for the model names.
"""


def _time(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty time; give seconds (12.5), [HH:]MM:SS(.ms) or a frame number (300f)")
    return text.strip()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stylize",
        help="stylize a video file or image sequence",
        description="Stylize a video (or image sequence) with a feed-forward style network, keeping its audio.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="INPUT",
                   help="video file, image sequence (frames/%%04d.png, a folder or a glob) or FORMAT:NAME FFmpeg input")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output video file (container from the extension) or image-sequence pattern/folder")
    p.add_argument("-m", "--model", metavar="NAME|PATH", default=None,
                   help="shipped model name (see `vidstyle models`) or a .safetensors file (default: the default model)")
    enc = p.add_argument_group("encoding")
    enc.add_argument("--codec", default="h264", metavar="CODEC",
                     help="h264 (default), hevc, prores, ffv1, vp9 or av1")
    enc.add_argument("--crf", type=int, default=None, metavar="N",
                     help="quality, lower is better: h264 0-51 (default 18), hevc 0-51 (20), vp9 0-63 (31), av1 0-63 (35)")
    enc.add_argument("--pix-fmt", default=None, metavar="FMT", help="pixel format, e.g. yuv420p, yuv444p10le")
    enc.add_argument("--preset", default=None, metavar="P", help="encoder speed preset, e.g. medium, slow")
    sel = p.add_argument_group("selection")
    sel.add_argument("--start", type=_time, default=None, metavar="T",
                     help="start at T: seconds (12.5), [HH:]MM:SS(.ms) or a frame number (300f)")
    sel.add_argument("--end", type=_time, default=None, metavar="T", help="stop before T (same forms as --start)")
    proc = p.add_argument_group("processing")
    proc.add_argument("--device", default=None, metavar="D", help="torch device: cpu, cuda, cuda:1, mps (default: best available)")
    proc.add_argument("--batch-size", type=int, default=1, metavar="N", help="frames per network call (default 1)")
    proc.add_argument("--compile", action="store_true", help="use torch.compile (slow start, faster afterwards)")
    proc.add_argument("--stabilize", type=float, default=None, metavar="S",
                     help="temporal stabilisation strength, 0 (off) to 1 (default: the model's default)")
    proc.add_argument("--flow", default="dis-fast", metavar="NAME",
                     help="optical flow used for stabilisation: dis-fast (default), dis-medium, farneback, raft, none")
    proc.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for the network")
    proc.add_argument("--precision", choices=("float32", "bfloat16", "float16", "auto"), default="float32",
                      help="network number format: float32 (default, exact); bfloat16 (about 2x faster on CPUs "
                           "with AVX512-BF16/AMX, ~0.5 of 255 levels off on average); float16 (GPUs); "
                           "auto (bfloat16 on such CPUs, else float32)")
    proc.add_argument("--backend", choices=("feedforward", "optim"), default="feedforward",
                      help="feedforward: a trained network (fast, default); optim: per-frame optimisation "
                           "(Ruder et al.; slow, any --style)")
    from vidstyle.cli.image import add_optim_video_arguments

    add_optim_video_arguments(p)
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary (warnings and errors still shown)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vidstyle.api import stylize_video, validate_options
    from vidstyle.errors import InvalidOptionError, VidstyleError

    start, end = args.start, args.end  # strings; parsed (and checked) by vidstyle.io.timespec.parse_time
    if args.threads is not None and args.threads < 1:
        raise InvalidOptionError(f"--threads must be >= 1, got {args.threads}")
    validate_options(output=args.output, codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt, preset=args.preset,
                     batch_size=args.batch_size, stabilize=args.stabilize, start=start, end=end)

    bar: Any = None

    def progress(info: Any) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=info.total, unit="frame", file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
                       desc=os.path.basename(str(args.output)), leave=True)
        elif bar.total is None and info.total:
            bar.total = info.total
        bar.update(info.frames - bar.n)

    def close_bar() -> None:
        if bar is not None:
            bar.close()

    stages = None
    if args.backend == "optim":
        from vidstyle.cli.image import optim_stages_from_args

        def optim_progress(p: Any) -> None:  # frame, iteration and loss of the optimisation
            nonlocal bar
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=None, unit="frame", file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
                           desc=os.path.basename(str(args.output)), leave=True)
            where = f"pass {p.pass_index + 1} " if args.passes > 1 else ""
            bar.set_postfix_str(f"{where}frame {p.frame} it {p.iteration}/{p.iterations} loss {p.loss:.4g}")

        stages = optim_stages_from_args(args, progress=None if args.quiet else optim_progress)
    elif args.style:
        raise InvalidOptionError("--style is for --backend optim; add --backend optim, or use --model NAME")

    try:
        stats = stylize_video(
            args.input, args.output, model=args.model, device=args.device, codec=args.codec, crf=args.crf,
            pix_fmt=args.pix_fmt, preset=args.preset, start=start, end=end, overwrite=args.overwrite,
            batch_size=args.batch_size, compile=args.compile, stabilize=args.stabilize, flow=args.flow,
            threads=args.threads, precision=args.precision, progress=None if args.quiet else progress, stages=stages,
        )
    except KeyboardInterrupt as exc:
        close_bar()
        partial = getattr(exc, "partial_output", None)
        where = f"; partial output kept at {partial}" if partial else "; nothing was written"
        sys.stderr.write(f"vidstyle: interrupted{where}\n")
        return 130
    except VidstyleError as exc:
        close_bar()
        if os.environ.get("VIDSTYLE_DEBUG"):
            raise
        sys.stderr.write(f"vidstyle: error: {exc}\n")
        partial = getattr(exc, "partial_output", None)
        if partial:
            sys.stderr.write(f"vidstyle: partial output kept at {partial}\n")
        return 1
    close_bar()
    for warning in stats.warnings:
        sys.stderr.write(f"vidstyle: warning: {warning}\n")
    if not args.quiet:
        sys.stderr.write(
            f"vidstyle: wrote {stats.output} ({stats.frames} frames in {stats.seconds:.1f} s, {stats.fps:.1f} fps)\n"
        )
    return 0

