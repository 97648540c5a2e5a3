"""Film rendering benchmark: one shot rendered in a single process vs in chunks on a local Ray
cluster, the seams that chunking leaves, and the warm-up length K that hides them.

1. Generates a shot: 240 frames of 640×360, 16-bit PNG numbered 1001–1240 — a camera moving over
   a photo (pan, slow zoom, a little roll) with a textured disc crossing in front (occlusions).
   The photo is one of ``../shared/data/content`` when present, else a procedural texture.
2. Renders it with ``vidstyle.render`` in one process (``threads`` = all cores) and on local Ray
   with 2 workers × 1 thread (2 chunks, warm-up K and cross-fade F as configured), and prints the
   times and the speed-up.
3. Measures the seam of the Ray render (warping error at the border pair vs the single render's at
   the same pair, vidstyle.render.seam) on a window around the border.
4. K sweep: for each K, re-renders K warm-up frames + M frames after a border from a cold start,
   splices them into the single render (cross-fading the last F warm-up frames) and measures the
   worst pair ratio (warping error ÷ the single render's) around the border, and the difference
   to the single render after the border — the measurement that picks the default K and F.

Usage::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_render.py \\
        [--frames 240] [--size 640x360] [--model PATH] [--work /tmp/vidstyle-bench-render] \\
        [--sweep 0,8,16,24,32] [--skip-ray] [--skip-sweep]

The model defaults to ``../shared/weights/engstrom2016_udnie.safetensors`` (a real style network:
its strokes are what a seam would show) and falls back to a random tiny network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDSTYLE_SHARED", str(REPO.parent / "shared")))
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------------------- the shot
def _world(width: int, height: int, seed: int = 3) -> tuple[np.ndarray, str]:
    import cv2

    photos = sorted((SHARED / "data" / "content").glob("*.jpg")) if (SHARED / "data" / "content").is_dir() else []
    big = []
    for p in photos:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None and img.shape[0] * img.shape[1] >= 400 * 300:
            big.append((img.shape[0] * img.shape[1], p, img))
    if big:
        big.sort(key=lambda t: (-t[0], t[1].name))
        _, path, img = big[seed % len(big)]
        img = cv2.resize(img[:, :, ::-1], (width, height), interpolation=cv2.INTER_CUBIC)
        return img.astype(np.float32) / 255.0, f"photo {path.name} (../shared/data/content), resized"
    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width, 3), np.float32)
    for octave in range(6):
        h, w = max(2, height >> (6 - octave)), max(2, width >> (6 - octave))
        acc += cv2.resize(rng.random((h, w, 3), dtype=np.float32), (width, height), interpolation=cv2.INTER_CUBIC) / (
            1.6**octave
        )
    acc -= acc.min()
    acc /= acc.max()
    return acc, "procedural multi-octave noise"


def make_shot(folder: Path, *, frames: int, width: int, height: int, first: int = 1001) -> str:
    """Writes ``folder/sh.%04d.png`` (16-bit); returns a description of the content."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    world, what = _world(int(width * 2.5), int(height * 2.5))
    wh, ww = world.shape[:2]
    disc_tex = world[: height // 2, : height // 2].copy()
    r = height // 7
    for t in range(frames):
        cx = ww / 2 + 0.25 * ww * np.sin(2 * np.pi * t / 240)
        cy = wh / 2 + 0.12 * wh * np.sin(2 * np.pi * t / 160)
        zoom = 1.0 + 0.15 * np.sin(2 * np.pi * t / 300)
        angle = 3.0 * np.sin(2 * np.pi * t / 200)
        m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
        m[0, 2] += width / 2 - cx
        m[1, 2] += height / 2 - cy
        img = cv2.warpAffine(world, m, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        # a textured disc crossing in front (occlusions and disocclusions)
        x = int(-r + (width + 2 * r) * (t / max(1, frames - 1)))
        y = int(height * 0.6 + 0.1 * height * np.sin(2 * np.pi * t / 60))
        mask = np.zeros((height, width), np.float32)
        cv2.circle(mask, (x, y), r, 1.0, -1, lineType=cv2.LINE_AA)
        tex = cv2.resize(disc_tex, (width, height), interpolation=cv2.INTER_LINEAR)
        tex = np.roll(tex, (y - height // 2, x - width // 2), axis=(0, 1))
        img = img * (1 - mask[..., None]) + tex * mask[..., None]
        out = np.clip(img, 0, 1)
        cv2.imwrite(str(folder / f"sh.{first + t:04d}.png"), np.round(out[:, :, ::-1] * 65535).astype(np.uint16))
    return what


# --------------------------------------------------------------------------------------- helpers
def _job(folder: Path, *, plates: Path, model: str, **keys: object) -> Path:
    data = {"input": str(plates / "sh.%04d.png"), "output": "out/sh.%04d.png", "model": model, "seed": 1,
            "bit_depth": 16, **keys}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shot.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items() if v is not None))
    return path


def _read(folder: Path, numbers: list[int]) -> dict[int, np.ndarray]:
    from vidstyle.io import read_image

    return {n: read_image(folder / f"sh.{n:04d}.png") for n in numbers}


def _seam(inputs: dict[int, np.ndarray], test: dict[int, np.ndarray], single: dict[int, np.ndarray],
          window: list[int], border: int) -> dict[str, float]:
    """Warping errors on ``window`` (consecutive shot numbers) around ``border`` (first frame of the
    later chunk): the border pair's ratio to the single render, the worst ratio over the window's
    pairs, and the difference to the single render from the border on (8-bit levels)."""
    from vidstyle.metrics import warp_reference, warping_error

    ref = warp_reference([inputs[n] for n in window], lag=1, estimator="dis-medium")
    e_t = warping_error([test[n] for n in window], reference=ref).per_frame
    e_s = warping_error([single[n] for n in window], reference=ref).per_frame
    b = window.index(border) - 1
    ratios = e_t / np.maximum(e_s, 1e-12)
    after = [n for n in window if n >= border]
    diff = [np.abs(test[n].astype(np.float64) - single[n]) / 257.0 for n in after]
    return {
        "border": float(e_t[b]),
        "border_single": float(e_s[b]),
        "ratio": float(ratios[b]),
        "worst_ratio": float(np.nanmax(ratios)),
        "elsewhere_single": float(np.nanmean(np.delete(e_s, b))),
        "diff_mean_at_border": float(diff[0].mean()),
        "diff_max_at_border": float(diff[0].max()),
        "diff_mean_after": float(np.mean([d.mean() for d in diff])),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--model", default=None)
    ap.add_argument("--work", default="/tmp/vidstyle-bench-render")
    ap.add_argument("--overlap", type=int, default=None, help="K of the Ray render (default: the job default)")
    ap.add_argument("--crossfade", type=int, default=None, help="F of the Ray render (default: the job default)")
    ap.add_argument("--sweep", default="0,8,16,24,32", help="K values of the sweep")
    ap.add_argument("--sweep-after", type=int, default=8, help="frames rendered after each border in the sweep")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the rendered frames")
    args = ap.parse_args()

    import torch

    from vidstyle.render import load_job, render
    from vidstyle.render.job import DEFAULT_CROSSFADE, DEFAULT_OVERLAP
    from vidstyle.render.plan import crossfade_weights

    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    plates = work / "plates"
    model = args.model
    if model is None:
        udnie = SHARED / "weights" / "engstrom2016_udnie.safetensors"
        if udnie.is_file():
            model = str(udnie)
        else:
            from vidstyle.nets.registry import save_model
            from vidstyle.nets.transformer import TransformerNet

            torch.manual_seed(0)
            model = str(save_model(work / "random_tiny.safetensors", net=TransformerNet(config="tiny"), name="random",
                                   style="random"))
            print("warning: ../shared/weights absent; using a random tiny network (seams are then not representative)")
    t = time.perf_counter()
    what = make_shot(plates, frames=args.frames, width=width, height=height)
    print(f"shot: {args.frames} frames {width}x{height} 16-bit PNG, {what} ({time.perf_counter() - t:.1f} s to make)")
    print(f"model: {model}")
    numbers = list(range(1001, 1001 + args.frames))
    from vidstyle.runtime import default_threads

    cores = default_threads()
    print(f"machine: {os.cpu_count()} CPUs, {cores} available to this process; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at start")

    # ---------------------------------------------------------------- single process
    t = time.perf_counter()
    res_single = render(load_job(_job(work / "single", plates=plates, model=model, threads=cores)))
    t_single = time.perf_counter() - t
    print(f"single process ({cores} threads): {t_single:.1f} s, {res_single.frames / t_single:.3f} fps")
    rows = [("single process", f"1 × {cores} threads", t_single, 1.0, "–", "–")]
    results: dict[str, object] = {"single": {"seconds": t_single, "threads": cores}}

    single = _read(work / "single" / "out", numbers)
    inputs = None

    def load_inputs() -> dict[int, np.ndarray]:
        from vidstyle.io import read_image

        return {n: read_image(plates / f"sh.{n:04d}.png") for n in numbers}

    # ---------------------------------------------------------------- Ray, 2 workers
    if not args.skip_ray:
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        t_init = time.perf_counter() - t
        K = DEFAULT_OVERLAP if args.overlap is None else args.overlap
        F = DEFAULT_CROSSFADE if args.crossfade is None else args.crossfade
        t = time.perf_counter()
        render(load_job(_job(work / "ray", plates=plates, model=model, ray="local", workers=2, threads=1,
                                       overlap=K, crossfade=F)))
        t_ray = time.perf_counter() - t
        ray.shutdown()
        print(f"ray (2 workers × 1 thread, 2 chunks, K={K}, F={F}): {t_ray:.1f} s (+{t_init:.1f} s Ray start-up), "
              f"speed-up {t_single / t_ray:.2f}× ({t_single / (t_ray + t_init):.2f}× with start-up)")
        chunked = _read(work / "ray" / "out", numbers)
        inputs = load_inputs()
        border = json.loads((work / "ray" / "out" / "sh.manifest.json").read_text())["chunks"][1]["first"]
        w0, w1 = numbers.index(border) - 24, numbers.index(border) + 24
        window = numbers[max(0, w0) : min(len(numbers), w1)]
        seam = _seam(inputs, chunked, single, window, border)
        print(f"  seam at {border}: border pair error {seam['border']:.5f} vs single {seam['border_single']:.5f} "
              f"(ratio {seam['ratio']:.2f}, worst pair in ±24 frames {seam['worst_ratio']:.2f}); single elsewhere "
              f"{seam['elsewhere_single']:.5f}; |Δ| vs single at the border mean {seam['diff_mean_at_border']:.2f} "
              f"max {seam['diff_max_at_border']:.1f} levels")
        rows.append(("local Ray", "2 × 1 thread", t_ray, t_single / t_ray, f"{seam['ratio']:.2f}",
                     f"{seam['diff_mean_at_border']:.2f}"))
        results["ray"] = {"seconds": t_ray, "ray_init": t_init, "K": K, "F": F, "seam": seam, "border": border}

    # ---------------------------------------------------------------- K sweep
    sweep_rows = []
    if not args.skip_sweep:
        inputs = inputs or load_inputs()
        n = len(numbers)
        borders = [numbers[n // 3], numbers[2 * n // 3]]
        M = args.sweep_after
        for K in [int(k) for k in args.sweep.split(",") if k.strip()]:
            per_border: dict[int, dict[int, dict[str, float]]] = {}
            for b in borders:
                bi = numbers.index(b)
                first = numbers[max(0, bi - K)]
                last = numbers[min(n - 1, bi + M - 1)]
                folder = work / f"sweep_K{K}_{b}"
                t = time.perf_counter()
                render(load_job(_job(folder, plates=plates, model=model, threads=cores, frames=f"{first}-{last}",
                                     overlap=0, crossfade=0)))  # cold: no lead-in warm-up of its own
                cold = _read(folder / "out", numbers[max(0, bi - K) : bi + M])
                if not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)
                window = numbers[max(0, bi - 24) : bi + M]
                per_border[b] = {}
                for F in sorted({0, min(K, 4), min(K, 8), min(K, 16)}):
                    test = dict(single)
                    zone = numbers[bi - F : bi]
                    for nz, alpha in zip(zone, crossfade_weights(len(zone))):
                        blend = (1 - alpha) * single[nz].astype(np.float64) + alpha * cold[nz]
                        test[nz] = np.clip(np.rint(blend), 0, 65535).astype(np.uint16)
                    for na in numbers[bi : bi + M]:
                        test[na] = cold[na]
                    per_border[b][F] = _seam(inputs, test, single, window, b)
                print(f"  sweep K={K} border {b}: {time.perf_counter() - t:.1f} s; " + "; ".join(
                    f"F={F}: ratio {s['ratio']:.2f} worst {s['worst_ratio']:.2f} |Δ| {s['diff_mean_at_border']:.2f}"
                    for F, s in per_border[b].items()))
            for F in per_border[borders[0]]:
                vals = [per_border[b][F] for b in borders]
                sweep_rows.append((K, F, np.mean([v["ratio"] for v in vals]), max(v["worst_ratio"] for v in vals),
                                   np.mean([v["diff_mean_at_border"] for v in vals]),
                                   max(v["diff_max_at_border"] for v in vals),
                                   np.mean([v["diff_mean_after"] for v in vals])))
        results["sweep"] = [dict(zip(("K", "F", "ratio", "worst_ratio", "diff_mean", "diff_max", "diff_mean_after"),
                                     map(float, r))) for r in sweep_rows]

    # ---------------------------------------------------------------- tables
    print()
    print("| run | workers | seconds | speed-up | seam ratio | mean |Δ| at border (8-bit levels) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, workers, secs, speed, ratio, diff in rows:
        print(f"| {name} | {workers} | {secs:.1f} | {speed:.2f}× | {ratio} | {diff} |")
    if sweep_rows:
        print()
        print("| K (warm-up) | F (cross-fade) | border ratio | worst pair ratio | mean |Δ| at border "
              "| max |Δ| at border | mean |Δ| next frames |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for K, F, ratio, worst, dmean, dmax, dafter in sweep_rows:
            print(f"| {K} | {F} | {ratio:.2f} | {worst:.2f} | {dmean:.2f} | {dmax:.1f} | {dafter:.2f} |")
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nresults: {work / 'results.json'}")
    if not args.keep:
        for sub in ("single", "ray"):
            shutil.rmtree(work / sub, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
