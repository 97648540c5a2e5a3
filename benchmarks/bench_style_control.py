"""Masks, per-region styles, stroke size and direction: what they cost and what they do.

Timings (ratios against a baseline measured in the same run, on the first shot of samples/clip.mp4,
640×360, 45 frames; run on a quiet machine):

* ``--mask``: the feed-forward pipeline (``starry_tiny``, default stabilisation) with and without a matte
  sequence; the compositing stage runs in its own thread, so the ratio should stay near 1.
* ``--style-scale`` S for a feed-forward network: seconds per frame of the network stage at S = 0.5, 1, 2,
  as a ratio to S = 1, next to the compute floor S⁻² (the network's work is proportional to its pixels).
* per-region styles (arbitrary back end, WCT and AdaIN): two regions against one painting.

* ``--losses``: seconds per optimisation iteration at ``--size`` px (512) of each style loss
  (``--style-loss``) and of the controls that change the loss: ``--mask`` through the loss (guided Gram +
  hold term), two regions (guided Grams), two regions with a mask; each as a ratio to ``gram`` and to the
  VGG floor (content only, the style term detached) measured in the same run, interleaved, median of
  ``--repeats`` (one L-BFGS level; frame 20 of samples/clip.mp4 towards Starry Night).

Quality (no timing, ``--quality``): the dominant texture direction of the arbitrary back end's output
(structure tensor of the high-pass luminance, degrees counter-clockwise from horizontal) for
``--style-rotate`` 0, 45, 90, next to the painting's own; it should follow the painting's direction + the angle.

    python benchmarks/bench_style_control.py \\
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors \\
        --styles-dir ../shared/data/styles [--quality | --losses [--size 512 --iterations 10]] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with

from vidstyle.api import build_stages, stylize_video  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.io import open_source, read_image  # noqa: E402

CLIP = ROOT / "samples" / "clip.mp4"
N = 45


def _frames(n: int) -> list[np.ndarray]:
    with open_source(CLIP, end=f"{n}f") as src:
        return [f.image for f in src]


def _seconds_per_frame(stages: list, frames: list[np.ndarray], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i, img in enumerate(frames):
            outs = [Frame(index=i, image=img)]
            for s in stages:
                outs = [y for x in outs for y in s.process(x)]
        best = min(best, (time.perf_counter() - t0) / len(frames))
    for s in stages:
        s.close()
    return best


def bench_mask(frames: list[np.ndarray], repeats: int) -> None:
    n = len(frames)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "m"
        folder.mkdir()
        for i in range(n):
            a = np.zeros((360, 640), np.uint8)
            cv2.ellipse(a, (320 + 2 * i, 180), (160, 120), 0, 0, 360, 255, -1)
            cv2.imwrite(str(folder / f"matte.{i:04d}.png"), cv2.GaussianBlur(a, (0, 0), 4))
        fps = {}
        for name, extra in (("no mask", {}), ("--mask", {"mask": str(folder / "matte.%04d.png")})):
            best = 0.0
            for r in range(repeats):
                out = Path(d) / f"o{r}{len(extra)}.%04d.png"
                stats = stylize_video(CLIP, out, end=f"{n}f", model="starry_tiny", **extra)
                best = max(best, stats.fps)
            fps[name] = best
        print(f"mask: {fps['no mask']:.1f} fps without, {fps['--mask']:.1f} fps with a matte sequence "
              f"(ratio {fps['--mask'] / fps['no mask']:.2f}; 1 = free)")


def bench_scale(frames: list[np.ndarray], repeats: int) -> None:
    base = None
    for s in (1.0, 0.5, 2.0):
        stages = build_stages(model="starry_tiny", style_scale=s, stabilize=0, flow="none")
        spf = _seconds_per_frame(stages, frames[:15], repeats)  # 15 frames: the network alone
        base = spf if base is None else base
        print(f"feed-forward --style-scale {s:g}: {1000 * spf:.1f} ms/frame, ratio {spf / base:.2f} "
              f"(compute floor {s ** -2:.2f})")


def bench_regions(frames: list[np.ndarray], styles_dir: Path, vgg: str, repeats: int) -> None:
    a, b = styles_dir / "vangogh_starry_night.jpg", styles_dir / "munch_the_scream.jpg"
    with tempfile.TemporaryDirectory() as d:
        matte = np.zeros((360, 640), np.uint8)
        matte[:, :320] = 255
        cv2.imwrite(str(Path(d) / "left.png"), cv2.GaussianBlur(matte, (0, 0), 8))
        for method in ("adain", "wct"):
            one = build_stages(backend="arbitrary", style=str(a), method=method, vgg_weights=vgg, stabilize=0, flow="none")
            t_one = _seconds_per_frame(one, frames[:10], repeats)
            two = build_stages(backend="arbitrary", style=[f"{a}@{Path(d) / 'left.png'}", str(b)], method=method,
                               vgg_weights=vgg, stabilize=0, flow="none")
            t_two = _seconds_per_frame(two, frames[:10], repeats)
            print(f"arbitrary {method}: one painting {1000 * t_one:.0f} ms/frame, two regions {1000 * t_two:.0f} "
                  f"ms/frame (ratio {t_two / t_one:.2f})")


def direction(img: np.ndarray) -> tuple[float, float]:
    """(degrees counter-clockwise from horizontal, coherence 0..1) of the strokes: the structure tensor of
    the high-pass luminance; strokes run across the dominant gradient."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    g = g - cv2.GaussianBlur(g, (0, 0), 4)
    gx, gy = cv2.Sobel(g, cv2.CV_64F, 1, 0), cv2.Sobel(g, cv2.CV_64F, 0, 1)
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    angle = (-(0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy)) + 90.0)) % 180.0
    return angle, math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy)


def quality_rotation(frames: list[np.ndarray], styles_dir: Path, vgg: str) -> None:
    frame = frames[20]
    for name in ("vangogh_starry_night_over_the_rhone.png", "monet_charing_cross_bridge.jpg"):
        painting = read_image(styles_dir / name)
        if painting.dtype != np.uint8:
            painting = (painting // 257).astype(np.uint8)
        p_angle, p_coh = direction(painting)
        cells = []
        for deg in (0, 45, 90):
            stages = build_stages(backend="arbitrary", style=str(styles_dir / name), method="wct", vgg_weights=vgg,
                                  style_rotate=deg, stabilize=0, flow="none")
            out = stages[0].process(Frame(index=0, image=frame))[0].stylized
            stages[0].close()
            angle, coh = direction(out)
            cells.append(f"rotate {deg}: {angle:.0f}° (coherence {coh:.2f}; expected {(p_angle + deg) % 180:.0f}°)")
        print(f"{name}: painting {p_angle:.0f}° (coherence {p_coh:.2f}); " + "; ".join(cells))


def bench_losses(frames: list[np.ndarray], styles_dir: Path, vgg: str, *, size: int, iterations: int, warmup: int,
                 repeats: int) -> None:
    import statistics

    import torch

    from vidstyle.losses import STYLE_LOSSES
    from vidstyle.nets.vgg import load_vgg_state
    from vidstyle.stylize.optim import OptimConfig, StyleOptimizer
    from vidstyle.stylize.optim_engine import _to_tensor

    state = load_vgg_state(weights=vgg)
    photo = frames[min(20, len(frames) - 1)]
    h, w = photo.shape[:2]
    s = size / max(h, w)
    photo = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    c = _to_tensor(photo, what="photo")
    hh, ww = c.shape[-2:]
    yy, xx = np.mgrid[0:hh, 0:ww]
    matte = np.clip((1.15 - ((xx - 0.42 * ww) / (0.3 * ww)) ** 2 - ((yy - 0.5 * hh) / (0.42 * hh)) ** 2) / 0.3, 0, 1)
    matte = matte.astype(np.float32)
    m = torch.from_numpy(matte)[None, None]
    starry = read_image(styles_dir / "vangogh_starry_night.jpg")
    scream = read_image(styles_dir / "munch_the_scream.jpg")
    #: name → (style loss, region mattes, mask)
    cases: dict[str, tuple[str, list[np.ndarray] | None, torch.Tensor | None]] = {"content-only": ("gram", None, None)}
    cases.update({k: (k, None, None) for k in STYLE_LOSSES})
    cases["gram + mask"] = ("gram", None, m)
    cases["gram, 2 regions"] = ("gram", [matte, 1 - matte], None)
    cases["2 regions + mask"] = ("gram", [matte, 1 - matte], m)
    times: dict[str, list[float]] = {k: [] for k in cases}
    first = StyleOptimizer(styles=[starry], config=OptimConfig(iterations=2, scales=1), vgg=state, device="cpu")
    first.optimize(c, init=c.clone(), iterations=2, style=first.style_target((hh, ww)))  # one-time set-up, untimed
    for _ in range(repeats):
        for name, (kind, regions, mask) in cases.items():
            cfg = OptimConfig(style_loss=kind, iterations=iterations + warmup, scales=1)
            styles = [starry, scream] if regions is not None else [starry]
            opt = StyleOptimizer(styles=styles, config=cfg, vgg=state, device="cpu", style_mattes=regions)
            style = opt.style_target((hh, ww), mask=mask)
            if name == "content-only":
                real = style

                def style(feats, _real=real):  # noqa: ANN001 - the VGG pass only: the style term is detached
                    with torch.no_grad():
                        return _real(feats)
            stamps: list[float] = []
            opt.optimize(c, init=c.clone(), iterations=iterations + warmup, style=style, mask=mask,
                         progress=lambda i, loss, terms: stamps.append(time.perf_counter()))
            times[name].append((stamps[-1] - stamps[warmup - 1]) / max(1, len(stamps) - warmup))
    gram = statistics.median(times["gram"])
    floor = statistics.median(times["content-only"])
    print(f"seconds per iteration at {hh}x{ww} ({torch.get_num_threads()} threads, median of {repeats}, "
          f"{iterations} iterations after {warmup})")
    for name in cases:
        t = statistics.median(times[name])
        print(f"  {name:18s} {t:8.3f} s/it   x{t / gram:5.2f} vs gram   x{t / floor:5.2f} vs the VGG floor", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgg-weights", required=True)
    ap.add_argument("--styles-dir", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=N, help=f"frames of the shot to use (default {N})")
    ap.add_argument("--quality", action="store_true", help="only the (untimed) rotation measurement")
    ap.add_argument("--losses", action="store_true", help="only the seconds per iteration of the style losses")
    ap.add_argument("--size", type=int, default=512, help="--losses: long side in pixels")
    ap.add_argument("--iterations", type=int, default=10, help="--losses: timed iterations per case")
    ap.add_argument("--warmup", type=int, default=2, help="--losses: untimed iterations first")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.losses:
        bench_losses(_frames(21), Path(args.styles_dir), args.vgg_weights, size=args.size,
                     iterations=args.iterations, warmup=max(1, args.warmup), repeats=args.repeats)
        return
    frames = _frames(max(3, min(N, args.frames)))
    if args.quality:
        quality_rotation(frames, Path(args.styles_dir), args.vgg_weights)
        return
    bench_mask(frames, args.repeats)
    bench_scale(frames, args.repeats)
    bench_regions(frames, Path(args.styles_dir), args.vgg_weights, args.repeats)


if __name__ == "__main__":
    main()
