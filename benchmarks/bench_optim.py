"""Optimization back end benchmark (Gatys et al. images, Ruder et al. video).

Quality (``--frames`` frames of ``sintel_raft_demo`` at ``--width`` px wide, each style of ``--styles``):

* per-frame: every frame optimised independently (``stabilize = 0``; the baseline);
* video: single pass, warm start from the warped previous result, short+long-term temporal losses;
* multi-pass (``--passes N`` > 1): Ruder's alternating passes on top of the single pass;
* warm (no temporal loss): warm start only, to time how fast a warm-started frame reaches the
  per-frame-from-scratch final loss.

Scores from :func:`vidstyle.metrics.compare_videos` on the **input** frames' flows (DIS medium):
warping error (ratio vs per-frame), sharpness (mean |Laplacian| of luminance, ratio vs per-frame),
the final content and style losses (weighted, mean over frames), seconds per frame (cold and warm).
"reach" = time until a warm-started frame's per-frame loss (content + style + TV, temporal term
excluded) first falls to the per-frame run's final loss for that frame, over that run's time.

Timing (``--timing-sizes``): seconds per iteration and per frame at each width, cold and warm.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_optim.py \\
        --device cuda --out /work/out            # quality at 512 px (GPU: minutes; CPU: hours)
    python benchmarks/bench_optim.py --skip-quality --timing-sizes 256,512 --timing-iterations 6

A contact sheet (``optim_contact.png``) and ``optim_results.json`` are written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vidstyle.io.imagefiles import read_image as load_image  # noqa: E402
from vidstyle.stylize.optim import (  # noqa: E402
    DEFAULT_TEMPORAL_WEIGHT,
    OptimConfig,
    StyleOptimizer,
    optimize_sequence,
)

DEFAULT_SHARED = ROOT.parent / "shared"
WEIGHTS = "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
CLIP = "data/video/sintel_raft_demo"


def load_frames(shared: Path, n: int, width: int) -> list[np.ndarray]:
    import cv2

    files = sorted((shared / CLIP).glob("*.png"))[:n]
    if len(files) < n:
        raise SystemExit(f"{shared / CLIP} has {len(files)} frames, {n} wanted")
    out = []
    for f in files:
        img = load_image(f)
        h, w = img.shape[:2]
        out.append(cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA))
    return out


def reach_ratios(per_frame: list[dict], warm: list[dict]) -> list[float]:
    """Per warm frame: time to reach the per-frame run's final loss / that run's time (inf if never)."""
    ratios = []
    for pf, st in zip(per_frame, warm):
        if not st["warm"]:
            continue
        target = pf["losses"]["total"]
        hit = next((t for t, _total, frame_loss in st["history"] if frame_loss <= target), None)
        ratios.append(float("inf") if hit is None else hit / pf["seconds"])
    return ratios


def frame_losses(stats: list[dict], frames: int) -> dict[str, float]:
    last: dict[int, dict] = {}
    for s in stats:
        last[s["frame"]] = s["losses"]  # later passes overwrite earlier ones
    keys = ("content", "style", "tv", "temporal")
    return {k: float(np.mean([last[i].get(k, 0.0) for i in range(frames)])) for k in keys}


def contact_sheet(path: Path, inputs: list[np.ndarray], rows: list[tuple[str, list[np.ndarray]]],
                  columns: list[int], thumb_w: int = 320) -> None:
    import cv2

    def label(img: np.ndarray, text: str) -> np.ndarray:
        img = img.copy()
        cv2.rectangle(img, (0, 0), (8 + 8 * len(text), 18), (0, 0, 0), -1)
        cv2.putText(img, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        return img

    def thumb(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return cv2.resize(img, (thumb_w, round(h * thumb_w / w)), interpolation=cv2.INTER_AREA)

    lines = []
    for name, frames in [("input", inputs), *rows]:
        cells = [label(thumb(frames[c]), f"{name}  t={c}") for c in columns]
        lines.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(lines, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def flicker_maps(frames: list[np.ndarray], ref) -> list[np.ndarray]:
    """|O_t − warp(O_{t+1})| on consistent pixels as a heat map (for the contact sheet)."""
    import cv2

    from vidstyle.flow.warping import warp_numpy

    out = []
    for t in range(len(frames)):
        if t >= len(ref.flows):
            out.append(np.zeros_like(frames[0]))
            continue
        a = frames[t].astype(np.float32) / 255
        b = warp_numpy(frames[t + 1].astype(np.float32) / 255, ref.flows[t])
        err = np.sqrt(((a - b) ** 2).sum(2)) * ref.masks[t]
        heat = cv2.applyColorMap(np.clip(err * 2 * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        out.append(cv2.cvtColor(heat, cv2.COLOR_BGR2RGB))
    return out


def run_quality(args: argparse.Namespace, results: dict) -> None:
    from vidstyle.flow.estimators import flow_pair, make_flow_estimator
    from vidstyle.metrics import compare_videos, warp_reference

    shared = Path(args.shared)
    frames = load_frames(shared, args.frames, args.width)
    est = make_flow_estimator(args.flow)
    flows = [flow_pair(est, frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
    ref = warp_reference(frames, lag=1)
    cfg = OptimConfig(iterations=args.iterations, scales=args.scales)
    sheet_rows: list[tuple[str, list[np.ndarray]]] = []
    table = []
    for style_name in args.styles.split(","):
        style = load_image(shared / "data" / "styles" / style_name)
        opt = StyleOptimizer(styles=[style], config=cfg, vgg=str(shared / WEIGHTS), device=args.device)
        runs: dict[str, tuple[list[np.ndarray], list[dict]]] = {}

        def go(name: str, *, _opt=opt, _runs=runs, _style=style_name, **kw) -> None:
            st: list[dict] = []
            t = time.perf_counter()
            outs = optimize_sequence(frames, optimizer=_opt, flows=flows, flow=args.flow, stats=st,
                                     warm_iterations=args.warm_iterations, **kw)
            _runs[name] = (outs, st)
            print(f"  {_style} {name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)

        go("per-frame", stabilize=0.0)
        go("video", stabilize=1.0, temporal_weight=args.temporal_weight)
        go("warm, no temporal loss", stabilize=1.0, temporal_weight=0.0, long_term=(1,))
        if args.passes > 1:
            go(f"multi-pass ({args.passes})", stabilize=1.0, temporal_weight=args.temporal_weight, passes=args.passes)
        for tw in args.temporal_sweep:
            go(f"video γ={tw:g}", stabilize=1.0, temporal_weight=tw)
        scores = compare_videos(frames, {k: v[0] for k, v in runs.items()}, lags=(1,))
        base = scores["per-frame"]
        pf_stats = runs["per-frame"][1]
        for name, (outs, st) in runs.items():
            sc = scores[name]
            cold = [s["seconds"] for s in st if not s["warm"] and "pass" not in s]
            warm = [s["seconds"] for s in st if s["warm"] and "pass" not in s]
            extra = [s["seconds"] for s in st if "pass" in s]
            total = sum(s["seconds"] for s in st)
            ratios = reach_ratios(pf_stats, [s for s in st if "pass" not in s]) if name != "per-frame" else []
            row = {
                "style": style_name, "mode": name,
                "warping_error": sc.warping[1].mean, "we_ratio": sc.warping[1].mean / base.warping[1].mean,
                "sharpness": sc.sharpness, "sharp_ratio": sc.sharpness / base.sharpness,
                "losses": frame_losses(st, len(frames)),
                "s_per_frame": total / len(frames), "s_cold": statistics.mean(cold) if cold else None,
                "s_warm": statistics.mean(warm) if warm else None, "s_passes": sum(extra),
                "iterations": [s["iterations"] for s in st],
                "reach_median": statistics.median(ratios) if ratios else None,
                "reach_max": max(ratios) if ratios else None,
                "reach_all": ratios,
            }
            table.append(row)
        sheet_rows += [(f"{style_name.split('.')[0][:18]} per-frame", runs["per-frame"][0]),
                       (f"{style_name.split('.')[0][:18]} video", runs["video"][0])]
        if args.passes > 1:
            sheet_rows.append((f"{style_name.split('.')[0][:18]} multi-pass", runs[f"multi-pass ({args.passes})"][0]))
        sheet_rows += [("flicker per-frame", flicker_maps(runs["per-frame"][0], ref)),
                       ("flicker video", flicker_maps(runs["video"][0], ref))]
    results["quality"] = table
    out = Path(args.out)
    cols = sorted({0, 1, len(frames) // 2, len(frames) - 2})
    contact_sheet(out / "optim_contact.png", frames, sheet_rows, cols)
    print(f"contact sheet: {out / 'optim_contact.png'} (columns t = {cols})", file=sys.stderr)
    print()
    print(f"frames {len(frames)} at {frames[0].shape[1]}×{frames[0].shape[0]}, device {args.device}, "
          f"{args.iterations} iterations per cold frame, warm {args.warm_iterations or args.iterations // 4}, "
          f"γ = {args.temporal_weight:g}, flow {args.flow}")
    print("| style | mode | warping error | × per-frame | sharpness | × per-frame | content | style | temporal | "
          "s/frame | s cold | s warm | reach (median / max) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        f = lambda v, p=".2f": "–" if v is None else format(v, p)  # noqa: E731
        reach = "–" if r["reach_median"] is None else f"{r['reach_median']:.3f} / {r['reach_max']:.3f}"
        print(f"| {r['style'].split('.')[0]} | {r['mode']} | {r['warping_error']:.5f} | {r['we_ratio']:.3f} | "
              f"{r['sharpness']:.4f} | {r['sharp_ratio']:.3f} | {r['losses']['content']:.0f} | {r['losses']['style']:.0f} | "
              f"{r['losses']['temporal']:.0f} | {f(r['s_per_frame'])} | {f(r['s_cold'])} | {f(r['s_warm'])} | {reach} |")


def _frame_pair(args: argparse.Namespace, iterations: int):  # noqa: ANN202
    """Frames a = ``--reach-frame`` and a+1 at ``--width``, an optimiser with ``iterations`` per level
    (no early stop), and the flows and consistency mask between the two frames."""
    from vidstyle.flow.consistency import consistency_mask
    from vidstyle.flow.estimators import flow_pair, make_flow_estimator

    shared = Path(args.shared)
    a = args.reach_frame
    frames = load_frames(shared, a + 2, args.width)[a:]
    style = load_image(shared / "data" / "styles" / args.styles.split(",")[0])
    cfg = OptimConfig(iterations=iterations, scales=args.scales, tolerance=0.0)
    opt = StyleOptimizer(styles=[style], config=cfg, vgg=str(shared / WEIGHTS), device=args.device)
    fwd, bwd = flow_pair(make_flow_estimator(args.flow), frames[0], frames[1])
    return a, frames, opt, fwd, bwd, consistency_mask(fwd, bwd)


def run_reach(args: argparse.Namespace, results: dict) -> None:
    """How fast a warm-started frame reaches the from-scratch loss, at a realistic iteration budget.

    Frame a is optimised from scratch (``--reach-iterations`` per level, coarse-to-fine); frame b = a+1
    from scratch gives the target loss L* and its time T*; then frame b warm-started from the warped
    result of a runs for the same budget, and we record when its per-frame loss (content + style + TV)
    first reaches L*: with γ = 0 (the same objective as from scratch: what the warm start alone buys)
    and with the video mode's temporal loss (j = 1), for both disocclusion fills.
    """
    from vidstyle.stylize.optim import _Sequencer, optimize_image

    a, frames, opt, _fwd, bwd, mask = _frame_pair(args, args.reach_iterations)
    cold_b = optimize_image(frames[1], styles=(), optimizer=opt)
    target, t_star = cold_b.losses["total"], cold_b.seconds
    rows = []
    seq = _Sequencer(optimizer=opt, warm_iterations=args.reach_iterations, stabilize=1.0,
                     temporal_weight=args.temporal_weight, long_term=(1,), estimator=None, tolerance=0.0, progress=None)
    seq.step(index=0, image=frames[0], flow_bwd=None, consistency=None, scene_cut=False)
    past = list(seq.past)
    for gamma in (0.0, args.temporal_weight):
        for fill in ("content", "warped"):
            seq.fill, seq.temporal_weight = fill, gamma
            seq.past.clear()
            seq.past.extend(past)
            seq.step(index=1, image=frames[1], flow_bwd=bwd, consistency=mask, scene_cut=False)
            hist = seq.stats[-1]["history"]
            hit = next(((t, i + 1) for i, (t, _tot, fl) in enumerate(hist) if fl <= target), None)
            rows.append({"fill": fill, "temporal_weight": gamma, "init_loss": hist[0][2], "target": target,
                         "t_star": t_star, "reach_s": None if hit is None else hit[0],
                         "reach_iterations": None if hit is None else hit[1],
                         "ratio": None if hit is None else hit[0] / t_star, "final_loss": hist[-1][2]})
            print(f"  reach {fill} γ={gamma:g}: {rows[-1]['ratio']}", file=sys.stderr, flush=True)
    results["reach"] = rows
    print()
    print(f"reach: frames {a}→{a + 1} at {frames[0].shape[1]}×{frames[0].shape[0]}, {args.reach_iterations} iterations "
          f"per level from scratch (T* = {t_star:.1f} s, L* = {target:.0f})")
    print("| disocclusion fill | temporal weight γ | per-frame loss at start | iterations to L* | seconds to L* | × T* | "
          "final per-frame loss |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        reach = ("never", "–", "–") if r["ratio"] is None else (r["reach_iterations"], f"{r['reach_s']:.1f}", f"{r['ratio']:.3f}")
        print(f"| {r['fill']} | {r['temporal_weight']:g} | {r['init_loss']:.0f} | {reach[0]} | {reach[1]} | {reach[2]} | "
              f"{r['final_loss']:.0f} |")


def run_init_loss(args: argparse.Namespace, results: dict) -> None:
    """Per-frame loss of frame a's optimised result carried into frame a+1 by different warps.

    Shows how much of the fine texture (relu1/relu2 Gram terms) survives resampling: the result is
    evaluated against frame a+1 after a bicubic, nearest or bilinear warp by the backward flow, and
    with only its low frequencies warped; references: the same result on frame a (zero flow) and
    frame a+1 optimised from scratch.
    """
    import torch.nn.functional as F

    import vidstyle.stylize.optim_video as optim_mod
    from vidstyle.flow.warping import flow_to_grid
    from vidstyle.stylize.optim import _Sequencer, optimize_image
    from vidstyle.stylize.temporal import _blur

    a, frames, opt, _fwd, bwd, mask = _frame_pair(args, args.init_loss_iterations)
    seq = _Sequencer(optimizer=opt, warm_iterations=1, stabilize=1.0, temporal_weight=0.0, long_term=(1,),
                     estimator=None, tolerance=0.0, progress=None)
    seq.step(index=0, image=frames[0], flow_bwd=None, consistency=None, scene_cut=False)
    past = list(seq.past)
    original = optim_mod._warp_sharp

    def sampled(mode: str):
        return lambda image, flow: F.grid_sample(image, flow_to_grid(flow.to(image.dtype)), mode=mode,
                                                 padding_mode="border", align_corners=True)

    def low_only(image, flow):  # noqa: ANN001, ANN202
        low = _blur(image, 2.0)
        return original(low, flow) + (image - low)

    rows = [{"case": "frame a's result on frame a (no warp)", "flow": "zero"}]
    cases = [("bicubic warp (what the video mode uses)", original), ("nearest warp", sampled("nearest")),
             ("bilinear warp", sampled("bilinear")), ("low frequencies warped (σ 2), high kept", low_only)]
    try:
        seq.past.clear()
        seq.past.extend(past)
        seq.step(index=1, image=frames[0], flow_bwd=np.zeros_like(bwd), consistency=np.ones_like(mask), scene_cut=False)
        rows[0]["losses"] = seq.stats[-1]["losses"]
        for name, fn in cases:
            optim_mod._warp_sharp = fn
            seq.past.clear()
            seq.past.extend(past)
            seq.step(index=1, image=frames[1], flow_bwd=bwd, consistency=mask, scene_cut=False)
            rows.append({"case": name, "flow": "w_b", "losses": seq.stats[-1]["losses"]})
    finally:
        optim_mod._warp_sharp = original
    cold = optimize_image(frames[1], styles=(), optimizer=opt)
    rows.append({"case": "frame a+1 from scratch", "flow": "–", "losses": cold.losses})
    results["init_loss"] = rows
    print()
    print(f"init loss: frames {a}→{a + 1} at {frames[0].shape[1]}×{frames[0].shape[0]}, mean |flow| "
          f"{float(np.abs(bwd).mean()):.2f} px, {args.init_loss_iterations} iterations per level from scratch")
    print("| frame a's result … | content | style | total |")
    print("|---|---|---|---|")
    for r in rows:
        lo = r["losses"]
        print(f"| {r['case']} | {lo['content']:.0f} | {lo['style']:.0f} | {lo['total']:.0f} |")


def run_timing(args: argparse.Namespace, results: dict) -> None:
    shared = Path(args.shared)
    style = load_image(shared / "data" / "styles" / args.styles.split(",")[0])
    rows = []
    for width in args.timing_sizes:
        frames = load_frames(shared, 3, width)
        cfg = OptimConfig(iterations=args.timing_iterations, scales=1)
        opt = StyleOptimizer(styles=[style], config=cfg, vgg=str(shared / WEIGHTS), device=args.device)
        optimize_sequence(frames[:1], optimizer=opt, flow=args.flow, warm_iterations=1)  # warm-up
        st: list[dict] = []
        optimize_sequence(frames, optimizer=opt, flow=args.flow, stats=st, tolerance=0.0,
                          warm_iterations=args.timing_iterations)
        cold = [s for s in st if not s["warm"]]
        warm = [s for s in st if s["warm"]]
        per_it_cold = statistics.mean(s["seconds"] / s["iterations"] for s in cold)
        per_it_warm = statistics.mean(s["seconds"] / s["iterations"] for s in warm)
        rows.append({"width": width, "height": frames[0].shape[0], "s_per_it_cold": per_it_cold,
                     "s_per_it_warm": per_it_warm, "iterations": args.timing_iterations})
    results["timing"] = rows
    print()
    print(f"timing on {args.device} ({torch.get_num_threads()} threads), {args.timing_iterations} iterations per frame")
    print("| size | s/iteration cold | s/iteration warm (incl. flows, long-term) | s/frame at 300 cold | s/frame at 75 warm |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']}×{r['height']} | {r['s_per_it_cold']:.3f} | {r['s_per_it_warm']:.3f} | "
              f"{300 * r['s_per_it_cold']:.1f} | {75 * r['s_per_it_warm']:.1f} |")


def run_calibration(args: argparse.Namespace, results: dict) -> None:
    """Style-weight sweep on a few pictures (for choosing defaults by looking)."""
    import cv2

    shared = Path(args.shared)
    contents = [load_frames(shared, 1, args.width)[0]]
    for name in args.calibrate_content:
        img = load_image(shared / "data" / "content" / name)
        h, w = img.shape[:2]
        contents.append(cv2.resize(img, (args.width, round(h * args.width / w)), interpolation=cv2.INTER_AREA))
    lines = []
    info = []
    for style_name in args.styles.split(","):
        style = load_image(shared / "data" / "styles" / style_name)
        for content in contents:
            cells = []
            for sw in args.calibrate_weights:
                cfg = OptimConfig(iterations=args.iterations, style_weight=sw, scales=args.scales)
                opt = StyleOptimizer(styles=[style], config=cfg, vgg=str(shared / WEIGHTS), device=args.device)
                from vidstyle.stylize.optim import optimize_image

                r = optimize_image(content, styles=(), optimizer=opt)
                img = (r.image * 255 + 0.5).astype(np.uint8)
                img = cv2.resize(img, (320, round(img.shape[0] * 320 / img.shape[1])), interpolation=cv2.INTER_AREA)
                cv2.putText(img, f"sw={sw:g}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
                cells.append(img)
                info.append({"style": style_name, "style_weight": sw, "losses": r.losses})
            h = max(c.shape[0] for c in cells)
            cells = [np.pad(c, ((0, h - c.shape[0]), (0, 0), (0, 0))) for c in cells]
            lines.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(lines, axis=0)
    cv2.imwrite(str(Path(args.out) / "optim_calibration.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    results["calibration"] = info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(DEFAULT_SHARED))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="/work/out")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--styles", default="vangogh_starry_night.jpg,hokusai_great_wave.jpg")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--warm-iterations", type=int, default=None)
    p.add_argument("--scales", type=int, default=None)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT)
    p.add_argument("--temporal-sweep", type=lambda s: [float(x) for x in s.split(",") if x], default=[])
    p.add_argument("--flow", default="dis-fast")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--reach-iterations", type=int, default=0, help="run the reach experiment with this budget")
    p.add_argument("--reach-frame", type=int, default=3)
    p.add_argument("--init-loss-iterations", type=int, default=0,
                   help="run the init-loss experiment (how warps change the loss) with this budget")
    p.add_argument("--timing-sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[])
    p.add_argument("--timing-iterations", type=int, default=10)
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--calibrate-content", type=lambda s: [x for x in s.split(",") if x], default=["urban100_img_065.jpg"])
    p.add_argument("--calibrate-weights", type=lambda s: [float(x) for x in s.split(",") if x], default=[3, 10, 30, 100])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results: dict = {"device": args.device, "torch": torch.__version__, "python": platform.python_version(),
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() and "cuda" in args.device else None,
                     "args": vars(args)}
    if args.calibrate:
        run_calibration(args, results)
    if not args.skip_quality:
        run_quality(args, results)
    if args.reach_iterations:
        run_reach(args, results)
    if args.init_loss_iterations:
        run_init_loss(args, results)
    if args.timing_sizes:
        run_timing(args, results)
    (Path(args.out) / "optim_results.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
