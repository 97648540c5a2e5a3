"""Seconds per optimisation iteration of each style loss (``--style-loss``), as a ratio to the Gram loss.

Each loss optimises the same photo towards the same painting at ``--size`` px (long side, 512 by
default), one scale level, L-BFGS, for ``--iterations`` function evaluations after ``--warmup`` ones,
on the conv1_1…conv3_4 VGG19 (the default layers of each loss: relu1_1, 2_1, 3_1, 3_4 for the
statistics losses; relu2_1 and relu3_1 for mrf). Every loss is timed ``--repeats`` times, interleaved
(gram, mmd-linear, …, gram, …), and the median is reported. The VGG forward and backward pass alone
(content loss only, ``--style-weight 0`` would be refused, so ``content-only`` runs with the style term
detached) is the floor no style loss can go below.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_style_losses.py \\
        --shared ../shared --size 512 --iterations 10 --repeats 3 --threads 2

``--calibrate`` prints, instead of timings, each loss's weighted initial value (the photo against the
painting) over the Gram loss's on several photo/painting pairs: the numbers behind
``vidstyle.losses.select.STYLE_LOSS_SCALE`` (not a timing; cheap).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vidstyle.io.imagefiles import read_image  # noqa: E402
from vidstyle.losses import STYLE_LOSS_SCALE, STYLE_LOSSES  # noqa: E402
from vidstyle.stylize.optim import OptimConfig, StyleOptimizer  # noqa: E402
from vidstyle.stylize.optim_engine import _resize, _to_tensor  # noqa: E402

WEIGHTS = "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
PHOTOS = ("bsd68_101087.jpg", "bsd68_108005.jpg", "bsd68_119082.jpg")
PAINTINGS = ("vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "munch_the_scream.jpg")


def fit(image: np.ndarray, size: int) -> torch.Tensor:
    t = _to_tensor(image, what="image")
    h, w = t.shape[-2:]
    s = size / max(h, w)
    return _resize(t, (round(h * s), round(w * s)))


def calibrate(shared: Path, size: int) -> None:
    from vidstyle.nets.vgg import load_vgg_state

    state = load_vgg_state(weights=str(shared / WEIGHTS))
    print(f"initial style loss (β·scale·L at the photo) / Gram's, {size} px, current scales {STYLE_LOSS_SCALE}")
    rows: dict[str, list[float]] = {k: [] for k in STYLE_LOSSES}
    for photo, painting in zip(PHOTOS, PAINTINGS):
        c = fit(read_image(shared / "data/content" / photo), size)
        s = read_image(shared / "data/styles" / painting)
        for kind in STYLE_LOSSES:
            opt = StyleOptimizer(styles=[s], config=OptimConfig(style_loss=kind, iterations=1), vgg=state, device="cpu")
            loss = opt.style_target(tuple(c.shape[-2:]))
            with torch.no_grad():
                rows[kind].append(float(loss(opt.vgg(c))))
    for kind in STYLE_LOSSES:
        ratios = [g / v for g, v in zip(rows["gram"], rows[kind])]
        print(f"  {kind:13s} raw {statistics.median(rows[kind]):.4g}   Gram/raw: "
              + ", ".join(f"{r:.3g}" for r in ratios) + f"   (median {statistics.median(ratios):.3g})")


def time_losses(shared: Path, size: int, iterations: int, warmup: int, repeats: int) -> None:
    from vidstyle.nets.vgg import load_vgg_state

    state = load_vgg_state(weights=str(shared / WEIGHTS))
    c = fit(read_image(shared / "data/content" / PHOTOS[0]), size)
    s = read_image(shared / "data/styles" / PAINTINGS[0])
    kinds = ["content-only", *STYLE_LOSSES]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            cfg = OptimConfig(style_loss="gram" if kind == "content-only" else kind, iterations=iterations + warmup,
                              scales=1)
            opt = StyleOptimizer(styles=[s], config=cfg, vgg=state, device="cpu")
            style = opt.style_target(tuple(c.shape[-2:]))
            if kind == "content-only":
                real = style

                def style(feats, _real=real):  # noqa: ANN001 - the VGG pass only: the style term is detached
                    with torch.no_grad():
                        return _real(feats)
            stamps: list[float] = []
            opt.optimize(c, init=c.clone(), iterations=iterations + warmup, style=style,
                         progress=lambda i, loss, terms: stamps.append(time.perf_counter()))
            times[kind].append((stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup))
    gram = statistics.median(times["gram"])
    floor = statistics.median(times["content-only"])
    print(f"seconds per iteration at {tuple(c.shape[-2:])} ({torch.get_num_threads()} threads, median of {repeats})")
    for kind in kinds:
        t = statistics.median(times[kind])
        print(f"  {kind:13s} {t:8.3f} s/it   ×{t / gram:5.2f} vs gram   ×{t / floor:5.2f} vs the VGG floor")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calibrate", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.shared / WEIGHTS).is_file():
        sys.exit(f"no VGG weights at {args.shared / WEIGHTS}; give --shared")
    if args.calibrate:
        calibrate(args.shared, args.size)
    else:
        time_losses(args.shared, args.size, args.iterations, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
