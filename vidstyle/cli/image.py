"""``vidstyle image``: stylize one picture by optimisation (Gatys et al.), the highest-quality path."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EPILOG = """examples:
  vidstyle image photo.jpg --style starry_night.jpg -o out.png --vgg-weights vgg19.safetensors
  vidstyle image photo.jpg --style a.jpg --style b.jpg:0.3 -o blend.png          # 70/30 blend of two styles
  vidstyle image photo.jpg --style wave.jpg -o out.png --preserve-color luminance  # keep the photo's colours
  vidstyle image photo.jpg --style wave.jpg -o out.png --style-scale 0.5 --size 768 --iterations 500

The output is --size pixels on its long side (default 512; 0 keeps the photo's size) and is written
to a temporary file first, then renamed. VGG19 weights: --vgg-weights PATH or $VIDSTYLE_VGG_WEIGHTS,
else torchvision's ImageNet weights (downloaded once into the torch cache).
"""


def _style(text: str) -> tuple[str, float]:
    """``PATH`` or ``PATH:WEIGHT``."""
    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head and not os.path.exists(text):
        try:
            weight = float(tail)
        except ValueError:
            pass
        else:
            path = head
    if not 0 < weight < float("inf"):
        raise argparse.ArgumentTypeError(f"style weight must be a positive number, got {tail!r} in {text!r}")
    return path, weight


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from vidstyle.stylize.optim_config import OptimConfig

    d = OptimConfig()
    p = subparsers.add_parser(
        "image",
        help="stylize one picture by optimisation (slow, highest quality)",
        description="Stylize a picture by optimising it directly (Gatys et al.): any style image, no training.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("content", metavar="CONTENT", help="the picture to stylize (PNG, JPEG, TIFF, WebP; 8 or 16 bit)")
    p.add_argument("-s", "--style", action="append", type=_style, required=True, metavar="STYLE[:W]",
                   help="style image, optionally with a blend weight (repeat to blend several: --style b.jpg:0.3)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output picture (.png, .jpg, .tif, .webp)")
    q = p.add_argument_group("optimisation")
    q.add_argument("--iterations", type=_positive_int, default=d.iterations, metavar="N",
                   help=f"iterations per scale level (default {d.iterations})")
    q.add_argument("--size", type=_positive_int, default=512, metavar="PX",
                   help="long side of the output in pixels (default 512; 0 = the content's size)")
    q.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer, help="default lbfgs")
    q.add_argument("--lr", type=float, default=None, metavar="LR", help="Adam step size (default 0.02)")
    q.add_argument("--init", default=d.init, metavar="content|noise|PATH",
                   help="starting image: the content (default), noise, or an image file")
    q.add_argument("--scales", type=_positive_int, default=None, metavar="N",
                   help="coarse-to-fine levels (default: enough for a coarsest level of ~256 px)")
    q.add_argument("--seed", type=int, default=d.seed, metavar="N", help="seed of the noise init (default 0)")
    q.add_argument("--tolerance", type=float, default=d.tolerance, metavar="F",
                   help="stop a level early when the loss fell by less than F over 10 iterations (default 0: off)")
    st = p.add_argument_group("style")
    st.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None,
                    help="keep the content's colours: luminance-only transfer, or match the style's colours first")
    st.add_argument("--style-scale", type=float, default=d.style_scale, metavar="S",
                    help="style image size relative to the output (brush size; default 1.0)")
    st.add_argument("--content-weight", type=float, default=d.content_weight, metavar="A", help=f"default {d.content_weight:g}")
    st.add_argument("--style-weight", type=float, default=d.style_weight, metavar="B",
                    help=f"default {d.style_weight:g}; higher = more style, less content")
    st.add_argument("--tv-weight", type=float, default=d.tv_weight, metavar="T", help=f"smoothness (default {d.tv_weight:g})")
    st.add_argument("--content-layer", default=None, metavar="LAYER", help="VGG19 layer, e.g. relu3_2 (default: by weights)")
    st.add_argument("--style-layers", default=None, metavar="L1,L2,...",
                    help="VGG19 layers, e.g. relu1_1,relu2_1,relu3_1 (default: by weights)")
    st.add_argument("--pooling", choices=("avg", "max"), default=d.pooling, help="VGG pooling (default avg)")
    net = p.add_argument_group("loss network and device")
    net.add_argument("--vgg-weights", default=None, metavar="PATH",
                     help="VGG19 weights (.safetensors), or 'torchvision' (default: $VIDSTYLE_VGG_WEIGHTS, else torchvision)")
    net.add_argument("--vgg-convention", choices=("caffe", "torchvision"), default=None,
                     help="input convention of a weights file whose metadata does not say")
    net.add_argument("--device", default=None, metavar="D", help="cpu, cuda, cuda:1, mps (default: best available)")
    net.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _check_output(src: str, dst: str, overwrite: bool) -> None:
    from pathlib import Path

    from vidstyle.errors import OutputError, OutputExistsError

    out = Path(dst)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"):
        raise OutputError(f"{out}: unsupported image extension; use .png, .jpg, .tif or .webp")
    if out.exists() and Path(src).exists() and out.resolve() == Path(src).resolve():
        raise OutputError(f"{out} is the input; choose a different output path")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite (-y) to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write into {parent}: folder missing or not writable; choose another output")


def run(args: argparse.Namespace) -> int:
    import math

    import cv2
    import numpy as np
    import torch

    from vidstyle.errors import InvalidOptionError, OutputError
    from vidstyle.frame import from_float32
    from vidstyle.stylize.optim import (
        OptimConfig,
        StyleOptimizer,
        load_image,
        optimize_image,
    )

    _check_output(args.content, args.output, args.overwrite)
    if args.threads is not None:
        if args.threads < 1:
            raise InvalidOptionError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    init: Any = args.init
    init_image = None
    if init not in ("content", "noise"):
        init_image = load_image(init)
        init = "content"
    style_layers = None
    if args.style_layers:
        style_layers = tuple(s.strip() for s in args.style_layers.split(",") if s.strip())
    for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "tolerance"):
        if not math.isfinite(getattr(args, name)):
            raise InvalidOptionError(f"--{name.replace('_', '-')} must be a finite number")
    config = OptimConfig(
        iterations=args.iterations, optimizer=args.optimizer, lr=args.lr, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, content_layer=args.content_layer,
        style_layers=style_layers, pooling=args.pooling, scales=args.scales, init=init,
        preserve_color=args.preserve_color, style_scale=args.style_scale, seed=args.seed, tolerance=args.tolerance,
    )
    config.validate()
    content = load_image(args.content)
    if args.size:
        h, w = content.shape[:2]
        s = args.size / max(h, w)
        if abs(s - 1) > 1e-6:
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
            content = cv2.resize(content, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)
    styles = [load_image(path) for path, _ in args.style]
    mix = [weight for _, weight in args.style]
    optimizer = StyleOptimizer(styles=styles, style_mix=mix, config=config, vgg=args.vgg_weights,
                               vgg_convention=args.vgg_convention, device=args.device)
    levels = len(optimizer.levels_for(content.shape[:2]))
    bar: Any = None

    def progress(p: Any) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=levels * config.iterations, unit="it", file=sys.stderr, dynamic_ncols=True,
                       desc=os.path.basename(args.output), leave=True)
        bar.n = p.level * config.iterations + p.iteration
        bar.set_postfix_str(f"level {p.level + 1}/{p.levels} loss {p.loss:.4g}", refresh=False)
        bar.refresh()

    try:
        result = optimize_image(content, styles=styles, optimizer=optimizer, init_image=init_image, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    dtype = content.dtype if args.output.lower().endswith((".png", ".tif", ".tiff")) else np.uint8
    out = from_float32(result.image, np.uint16 if dtype == np.uint16 else np.uint8)
    from pathlib import Path

    dst = Path(args.output)
    tmp = dst.with_name(f".{dst.stem}.vidstyle-tmp{dst.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(out, cv2.COLOR_RGB2BGR)):
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {dst}; check the extension (.png, .jpg, .tif) and the disk")
    os.replace(tmp, dst)
    if not args.quiet:
        terms = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items() if k != "total")
        sys.stderr.write(
            f"vidstyle: wrote {dst} ({out.shape[1]}×{out.shape[0]}, {result.iterations} iterations in "
            f"{result.seconds:.1f} s; loss {result.losses.get('total', float('nan')):.4g}: {terms})\n"
        )
    return 0


# ---------------------------------------------------------------- `vidstyle stylize --backend optim`


def add_optim_video_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the optimisation back end for ``vidstyle stylize`` (used with ``--backend optim``)."""
    from vidstyle.stylize.optim_config import DEFAULT_TEMPORAL_WEIGHT, OptimConfig

    d = OptimConfig()
    g = p.add_argument_group("optimisation back end (--backend optim; Ruder et al. 2016)")
    g.add_argument("-s", "--style", action="append", type=_style, default=None, metavar="STYLE[:W]",
                   help="style image, optionally with a blend weight (repeat to blend several)")
    g.add_argument("--iterations", type=_positive_int, default=None, metavar="N",
                   help=f"iterations of a frame started from scratch (default {d.iterations})")
    g.add_argument("--warm-iterations", type=_positive_int, default=None, metavar="N",
                   help="iterations of a frame started from the warped previous result (default iterations/4)")
    g.add_argument("--passes", type=_positive_int, default=1, metavar="N",
                   help="multi-pass: N alternating forward/backward passes over the whole file (default 1)")
    g.add_argument("--size", type=_positive_int, default=None, metavar="PX",
                   help="optimise at most at this long side; the output is resized back (default: frame size)")
    g.add_argument("--fill", choices=("content", "warped"), default="content",
                   help="start of disoccluded pixels in a warm-started frame: the input (default) or the warped result")
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer, help="default lbfgs")
    g.add_argument("--content-weight", type=float, default=d.content_weight, metavar="A", help=f"default {d.content_weight:g}")
    g.add_argument("--style-weight", type=float, default=d.style_weight, metavar="B", help=f"default {d.style_weight:g}")
    g.add_argument("--tv-weight", type=float, default=d.tv_weight, metavar="T", help=f"default {d.tv_weight:g}")
    g.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT, metavar="G",
                   help=f"temporal loss weight at --stabilize 1 (default {DEFAULT_TEMPORAL_WEIGHT:g})")
    g.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None, help="keep the input's colours")
    g.add_argument("--style-scale", type=float, default=d.style_scale, metavar="S", help="style size relative to the frame")
    g.add_argument("--vgg-weights", default=None, metavar="PATH",
                   help="VGG19 weights (.safetensors) or 'torchvision' (default: $VIDSTYLE_VGG_WEIGHTS, else torchvision)")
    g.add_argument("--vgg-convention", choices=("caffe", "torchvision"), default=None,
                   help="input convention of a weights file whose metadata does not say")


def optim_stages_from_args(args: argparse.Namespace, *, progress: Any = None) -> list[Any]:
    """Build the ``[flow], stylize`` stages of ``vidstyle stylize --backend optim`` from its options."""
    import math

    from vidstyle.errors import InvalidOptionError
    from vidstyle.stylize.optim import OptimConfig, build_optim_stages

    if not args.style:
        raise InvalidOptionError("--backend optim needs a style image: add --style PATH")
    if getattr(args, "model", None):
        raise InvalidOptionError("--model is for the feed-forward back end; drop it or leave out --backend optim")
    for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "style_scale"):
        if not math.isfinite(getattr(args, name)):
            raise InvalidOptionError(f"--{name.replace('_', '-')} must be a finite number")
    config = OptimConfig(
        iterations=args.iterations or OptimConfig().iterations, optimizer=args.optimizer,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        preserve_color=args.preserve_color, style_scale=args.style_scale,
    )
    config.validate()
    return build_optim_stages(
        styles=[path for path, _ in args.style], style_mix=[w for _, w in args.style], config=config,
        stabilize=args.stabilize, flow=args.flow, device=args.device, threads=args.threads, progress=progress,
        vgg=args.vgg_weights, vgg_convention=args.vgg_convention, size=args.size, passes=args.passes,
        warm_iterations=args.warm_iterations, temporal_weight=args.temporal_weight, fill=args.fill,
    )
