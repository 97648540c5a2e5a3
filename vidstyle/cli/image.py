"""``vidstyle image``: stylize one picture by optimisation (Gatys et al.), the highest-quality path."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle image photo.jpg --style starry_night.jpg -o out.png --vgg-weights vgg19.safetensors
  vidstyle image photo.jpg --style a.jpg --style b.jpg:0.3 -o blend.png          # 70/30 blend of two styles
  vidstyle image photo.jpg --style wave.jpg -o out.png --preserve-color luminance  # keep the photo's colours
  vidstyle image photo.jpg --style wave.jpg -o out.png --style-scale 0.5 --size 768 --iterations 500

The previews (--method adain|wct|swap, --decoder, --fast) run in bfloat16 where the CPU computes it natively
(--precision auto; about 0.4 of 255 levels off, 1.5x faster here); --precision float32 for the exact numbers.
The output is --size pixels on its long side (default 512; 0 keeps the photo's size) and is written
to a temporary file first, then renamed. VGG19 weights: --vgg-weights PATH or $VIDSTYLE_VGG_WEIGHTS,
else torchvision's ImageNet weights (downloaded once into the torch cache).
"""


#: `vidstyle image` defaults that differ from the video back end's
IMAGE_DEFAULTS = {"tolerance": 0.0}
#: the option fields `vidstyle image` does not take (video-only, or feed-forward settings)
_NOT_FOR_IMAGES = ("backend", "model", "batch_size", "compile", "warm_iterations", "temporal_weight",
                   "long_term", "passes", "pass_iterations", "blend", "fill", "size", "init")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.options import OptimOptions, StylizeOptions, add_arguments

    p = add_command(subparsers, "image", help="stylize one picture by optimisation (slow, highest quality)", description="Stylize a picture by optimising it directly (Gatys et al.): any style image, no training.", epilog=EPILOG)
    p.add_argument("content", metavar="CONTENT", help="the picture to stylize (PNG, JPEG, TIFF, WebP; 8 or 16 bit)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output picture (.png, .jpg, .tif, .webp)")
    add_arguments(p, StylizeOptions, exclude=_NOT_FOR_IMAGES)
    add_arguments(p, OptimOptions, exclude=_NOT_FOR_IMAGES, defaults=IMAGE_DEFAULTS, every=True)
    q = p.add_argument_group("picture")
    q.add_argument("--size", dest="picture_size", type=int, default=512, metavar="PX",
                   help="long side of the output in pixels (default 512; 0 = the content's size)")
    q.add_argument("--init", dest="init_from", default=None, metavar="content|noise|PATH",
                   help="starting image: the content (default), noise, or an image file")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vidstyle.api import stylize_image
    from vidstyle.errors import InvalidOptionError
    from vidstyle.options import OptimOptions, StylizeOptions, from_args

    if not args.style:
        raise InvalidOptionError("a style image is needed: add --style PATH")
    if args.picture_size < 0:
        raise InvalidOptionError(f"--size must be 0 (the content's size) or a positive number of pixels, got {args.picture_size}")
    init_mode: dict[str, Any] = {}
    init_file = None
    if args.init_from in ("content", "noise"):
        init_mode["init"] = args.init_from
    elif args.init_from is not None:
        init_file = args.init_from
    # --method (adain, wct, swap), --decoder or --fast: the arbitrary back end's preview in seconds; else optimisation
    arbitrary = args.method is not None or args.decoder is not None or bool(args.fast)
    if not arbitrary and args.precision not in (None, "float32"):
        raise InvalidOptionError(f"--precision {args.precision} is for the previews (--method, --decoder, --fast); "
                                 "the optimisation runs in float32: drop --precision")
    # a preview: bfloat16 where the CPU computes it natively (~0.4 of 255 levels off), unless --precision says otherwise
    fast_numbers = {"precision": "auto"} if arbitrary and args.precision is None else {}
    stylize = from_args(StylizeOptions, args, backend="arbitrary" if arbitrary else "optim", **fast_numbers)
    optim = from_args(OptimOptions, args, **{**{k: v for k, v in IMAGE_DEFAULTS.items() if getattr(args, k) is None},
                                            **init_mode})
    bar: Any = None

    def progress(p: Any) -> None:
        nonlocal bar
        if args.quiet:
            return
        total = p.levels * optim.iterations
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="it", file=sys.stderr, dynamic_ncols=True,
                       desc=os.path.basename(args.output), leave=True)
        bar.n = p.level * optim.iterations + p.iteration
        bar.set_postfix_str(f"level {p.level + 1}/{p.levels} loss {p.loss:.4g}", refresh=False)
        bar.refresh()

    try:
        result = stylize_image(args.content, args.output, stylize=stylize, optim=optim, size=args.picture_size or None,
                               init=init_file, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for warning in result.warnings:
        sys.stderr.write(f"vidstyle: warning: {warning}\n")
    if not args.quiet and result.iterations is None:
        sys.stderr.write(f"vidstyle: wrote {result.output} ({result.width}×{result.height}, {stylize.method} in "
                         f"{result.seconds:.1f} s)\n")
    elif not args.quiet:
        losses = result.losses or {}
        terms = ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if k != "total")
        sys.stderr.write(
            f"vidstyle: wrote {result.output} ({result.width}×{result.height}, {result.iterations} iterations in "
            f"{result.seconds:.1f} s; loss {losses.get('total', float('nan')):.4g}: {terms})\n"
        )
    return 0


