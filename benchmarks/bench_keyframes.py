"""Keyframe-guided stylization: the held-out keyframe protocol (quality) and the speed figures (timing).

**Quality** (issue 19; not a timing benchmark). For each clip and painting method, frames A, M, B (0, 24, 48;
for a shorter clip 0, its middle and its last-but-one) are painted with a deterministic stylization:

* ``stylization``: OpenCV's edge-preserving ``cv2.stylization`` (a classical filter, a flat watercolour look);
* ``posterize``: ``cv2.edgePreservingFilter`` then each channel posterised to 6 levels (flat cel shading);
* ``optim``: vidstyle's optimisation back end (Gatys et al.) against a painting, at the clip's small size and
  few iterations, content init (deterministic on one machine).

The keyframe network is trained on A and B only and predicts M. Scores against the painted M: per-pixel L1
(RGB in 0..1) and the standard Gram style loss (vidstyle.fidelity: Σ ‖G − G(painted M)‖²_F over relu1_2,
relu2_2, relu3_3, max pooling, Caffe weights). Baselines: the nearest keyframe's painting warped into M by
the flow (chained frame-to-frame dis-medium flows, the coordinates composed and the painting sampled once;
both A and B are tried and the better kept: ``warped (best)``), and the unpainted frame itself. Both
networks modes are measured: ``joint`` (one network on A and B) and ``distance`` (one per keyframe, blended
by temporal distance; at M, 50/50).

Temporal: every frame 0..B through the joint network per frame (the reference), with the carried keyframes
(``--warp-blend``) alone, and with the carried keyframes and the default stabiliser; warping-error ratio
(÷ per-frame, dis-medium flows on the input) and sharpness ratio.

    python benchmarks/bench_keyframes.py --shared ../shared --width 256 --steps 300 \
        [--clips cockatoo,realshort] [--methods stylization,optim] [--modes joint,distance] \
        [--guides ""] [--json out.json] [--picture docs/images/keyframes_cockatoo.jpg]

Training runs a fixed number of steps (``--steps``; the plateau rule may stop it earlier), so the figures
do not depend on how busy the machine is; ``--steps 0`` trains with the defaults of ``vidstyle keyframes``
(until the plateau, or 10 minutes).

**Speed** (timing; run on a quiet machine): ``--speed`` prints, at 640×360 on ``--threads`` threads, the
network's fps alone (frames through the network only) against the compute floor (its GFLOP per frame ÷ the
measured GFLOP/s of a dense 3×3 conv2d), the time to the plateau of a two-keyframe training with the
default options (a 640×360 clip, cockatoo by default), the serial application (every stage in one thread)
and ``vidstyle keyframes``' own threaded pipeline (decode, flow, network and carry, stabiliser, encode) with
its written frames per second and each stage's busy seconds:

    python benchmarks/bench_keyframes.py --shared ../shared --speed --threads 2 [--application-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.fidelity import fidelity_vgg, gram_targets, style_distance, to_tensor  # noqa: E402
from vidstyle.flow.estimators import make_flow_estimator  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.io import open_source  # noqa: E402
from vidstyle.keyframes.guides import CoordinateTracker  # noqa: E402
from vidstyle.keyframes.options import Keyframe, KeyframeOptions  # noqa: E402
from vidstyle.keyframes.run import KeyframeSet, build_keyframe_stages, loss_network, train_keyframe_model  # noqa: E402
from vidstyle.metrics import sharpness, warping_error  # noqa: E402
from vidstyle.options import TemporalOptions  # noqa: E402

CLIPS = {"cockatoo": "data/video/cockatoo_60f.mp4", "realshort": "data/video/realshort.mp4"}
PAINTINGS = {"optim": "data/styles/"}


def read_clip(path: Path, *, width: int, last: int) -> list[np.ndarray]:
    frames = []
    with open_source(path) as src:
        for f in src:
            img = f.image
            h, w = img.shape[:2]
            hh = int(round(h * width / w / 2) * 2)
            frames.append(cv2.resize(img, (width, hh), interpolation=cv2.INTER_AREA))
            if f.index >= last:
                break
    return frames


def paint(image: np.ndarray, method: str, *, shared: Path, vgg: str) -> np.ndarray:
    """A deterministic stylization of ``image`` (uint8 RGB) → float32 RGB in 0..1."""
    if method == "stylization":
        out = cv2.stylization(image[:, :, ::-1].copy(), sigma_s=40, sigma_r=0.35)[:, :, ::-1]
        return out.astype(np.float32) / 255.0
    if method == "posterize":
        smooth = cv2.edgePreservingFilter(image[:, :, ::-1].copy(), flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.3)
        levels = 6
        q = np.floor(smooth.astype(np.float32) / 256.0 * levels)
        return (q / (levels - 1))[:, :, ::-1].astype(np.float32).clip(0, 1)
    if method == "optim":
        from vidstyle.api import _optimize_picture
        from vidstyle.options import OptimOptions, StylizeOptions

        styles = sorted((shared / "data/styles").glob("*"))
        style = next(s for s in styles if s.name.startswith("vangogh_starry_night."))
        st = StylizeOptions(backend="optim", style=str(style), vgg_weights=vgg, seed=0)
        st = StylizeOptions(backend="optim", style=str(style), vgg_weights=vgg, seed=0, threads=torch.get_num_threads())
        res, _ = _optimize_picture(image, st, OptimOptions(iterations=60), size=None, init=None, progress=None)
        return np.clip(res.image, 0, 1).astype(np.float32)
    raise SystemExit(f"unknown painting method {method}")


def warped_keyframe(frames: list[np.ndarray], painting: np.ndarray, *, src: int, dst: int) -> np.ndarray:
    """``painting`` (of frame ``src``) carried to frame ``dst`` along chained dis-medium flows, sampled once."""
    est = make_flow_estimator("dis-medium")
    tracker = CoordinateTracker()
    step = 1 if dst > src else -1
    h, w = frames[0].shape[:2]
    coords = tracker.step(None, size=(h, w))
    for t in range(src + step, dst + step, step):
        coords = tracker.step(est(frames[t], frames[t - step]), size=(h, w))
    map_x = (coords[0] * (w - 1)).astype(np.float32)
    map_y = (coords[1] * (h - 1)).astype(np.float32)
    return cv2.remap(painting, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).clip(0, 1)


def _log_progress(p) -> None:  # noqa: ANN001
    if p.step % 100 == 0:
        print(f"  network {p.network + 1}/{p.networks} step {p.step} loss {p.loss:.4f} avg {p.ema:.4f} "
              f"{p.elapsed:.0f} s", file=sys.stderr, flush=True)


def run_stages(stages: list, frames: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    try:
        for i, img in enumerate(frames):
            fr = [Frame(index=i, image=img)]
            for s in stages:
                fr = [o for f in fr for o in s.process(f)]
            out.extend(f.stylized for f in fr)
        for k, s in enumerate(stages):  # what a stage held back (the keyframes stage, waiting for a keyframe)
            fr = s.finish()
            for later in stages[k + 1:]:
                fr = [o for f in fr for o in later.process(f)]
            out.extend(f.stylized for f in fr)
    finally:
        for s in stages:
            s.close()
    return out


def _cached_paintings(cache: Path | None, key: str, frames: list[np.ndarray], which: tuple[int, ...], method: str,
                      *, shared: Path, vgg: str) -> tuple[dict[int, np.ndarray], float]:
    f = cache / f"paint_{key}.npz" if cache else None
    if f is not None and f.is_file():
        data = np.load(f)
        return {int(k): data[k] for k in data.files}, 0.0
    t0 = time.perf_counter()
    painted = {i: paint(frames[i], method, shared=shared, vgg=vgg) for i in which}
    seconds = time.perf_counter() - t0
    if f is not None:
        np.savez(f, **{str(k): v for k, v in painted.items()})
    return painted, seconds


def protocol_clip(shared: Path, clip: str, *, width: int) -> tuple[list[np.ndarray], int, int]:
    """The protocol's frames 0..B of ``clip`` at ``width`` px, with M and B (0, 24, 48; for a shorter clip its
    middle and last-but-one)."""
    path = shared / CLIPS[clip]
    with open_source(path) as src:
        n = src.info.frame_count or 60
    b = min(48, n - 2)
    return read_clip(path, width=width, last=b), b // 2, b


def scorer(metric_vgg: torch.nn.Module, painted: np.ndarray):  # noqa: ANN201
    """``score(img) -> (L1, Gram style loss)`` of a picture against the painted held-out frame."""
    with torch.no_grad():
        target_grams = gram_targets(metric_vgg(to_tensor(painted)))

    def score(img: np.ndarray) -> tuple[float, float]:
        x = np.clip(np.asarray(img, np.float32) if img.dtype != np.uint8 else img.astype(np.float32) / 255, 0, 1)
        with torch.no_grad():
            g = style_distance(metric_vgg(to_tensor(x)), target_grams)
        return float(np.abs(x - painted).mean()), g

    return score


def cached_model(path: Path | None, keyset: KeyframeSet, *, options: KeyframeOptions, vgg: str):  # noqa: ANN201
    """The keyframe network trained on ``keyset`` with ``options``, loaded from ``path`` when it is there (and
    saved there when it was trained)."""
    from vidstyle.keyframes.model import load_keyframe_model, save_keyframe_model

    if path is not None and path.is_file():
        return load_keyframe_model(path)
    loss = loss_network(weight=options.perceptual_weight, vgg_weights=vgg, vgg_convention=None, note=print)
    model = train_keyframe_model(keyset, options=options, loss=loss, progress=_log_progress)
    if path is not None:
        save_keyframe_model(path, model)
    return model


def quality(args: argparse.Namespace) -> list[dict]:
    from vidstyle.keyframes import carry as carry_module

    if args.carry_rule:
        carry_module.RULE = args.carry_rule

    shared = Path(args.shared)
    vgg_path = str(shared / "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors")
    metric_vgg = fidelity_vgg(vgg_path)
    torch.set_num_threads(args.threads)
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    rows = []
    picture_rows = []
    for clip in args.clips.split(","):
        frames, m, b = protocol_clip(shared, clip, width=args.width)
        for method in args.methods.split(","):
            tag = f"{clip}_{method}_{args.width}"
            painted, paint_s = _cached_paintings(cache, tag, frames, (0, m, b), method, shared=shared, vgg=vgg_path)
            score = scorer(metric_vgg, painted[m])
            cands: dict[str, np.ndarray] = {"frame itself": frames[m]}
            wa = warped_keyframe(frames, painted[0], src=0, dst=m)
            wb = warped_keyframe(frames, painted[b], src=b, dst=m)
            cands["warped from A"], cands["warped from B"] = wa, wb
            keyset = KeyframeSet(keys=(Keyframe(0, "A"), Keyframe(b, "B")), frames=[frames[0], frames[b]],
                                 paintings=[painted[0], painted[b]], tracked=[None, None])
            if "tracked" in args.guides:
                # the tracked guide at the keyframes, as the application's flow stage computes it
                stages_flow = build_keyframe_stages.__globals__["_flow_stage"](TemporalOptions())
                tr = CoordinateTracker()
                for i, img in enumerate(frames):
                    f = stages_flow.process(Frame(index=i, image=img))[0]
                    c = tr.step(f.flow_bwd, size=img.shape[:2], restart=f.scene_cut)
                    if i == 0:
                        keyset.tracked[0] = c
                    if i == b:
                        keyset.tracked[1] = c
                stages_flow.close()
            paintings = {0: painted[0], b: painted[b]}
            models = {}
            train_s = {}
            first = args.modes.split(",")[0]
            for mode in args.modes.split(","):
                limits = {"max_steps": args.steps, "time_budget": 1000.0} if args.steps else {}  # 0: the defaults
                if args.lr:
                    limits["learning_rate"] = args.lr
                if args.perceptual_weight is not None:
                    limits["perceptual_weight"] = args.perceptual_weight
                opts = KeyframeOptions(keys=keyset.keys, keyframe_blend=mode, guides=args.guides, **limits)
                mfile = cache / f"model_{tag}_{mode}_{args.steps}_{args.guides or 'frame'}_{args.variant}.safetensors" if cache else None
                t1 = time.perf_counter()
                models[mode] = cached_model(mfile, keyset, options=opts, vgg=vgg_path)
                train_s[mode] = time.perf_counter() - t1
                tm0 = TemporalOptions(stabilize=0.0, flow="none") if "tracked" not in args.guides else TemporalOptions(stabilize=0.0)
                outs = run_stages(build_keyframe_stages(models[mode], temporal=tm0), frames[: b + 1])
                cands[f"network ({mode})"] = outs[m]
                if mode == first:
                    per_frame = outs
                    carried_first = None
                    for s in args.warp_blend:
                        carried = run_stages(build_keyframe_stages(models[mode], temporal=TemporalOptions(stabilize=0.0, flow=args.flow),
                                                                   paintings=paintings, warp_blend=s), frames[: b + 1])
                        cands[f"network ({mode}) + carry {s:g}"] = carried[m]
                        carried_first = carried if carried_first is None else carried_first
                    stab = run_stages(build_keyframe_stages(models[mode], temporal=TemporalOptions(
                        flow=args.flow, stabilizer=args.stabilizer,
                        **({"stabilize": args.stabilize} if args.stabilize is not None else {}),
                        **({"resample_fade": args.crossfade} if args.crossfade is not None else {})),
                                                            paintings=paintings, warp_blend=args.warp_blend[0]),
                                      frames[: b + 1])
                    cands[f"network ({mode}) + carry {args.warp_blend[0]:g} + stabiliser"] = stab[m]
            scores = {k: score(v) for k, v in cands.items()}
            best_w = min(("warped from A", "warped from B"), key=lambda k: scores[k][0])
            scores["warped (best)"] = scores[best_w]
            we_pf = warping_error(per_frame, inputs=frames[: b + 1]).mean
            we_st = warping_error(stab, inputs=frames[: b + 1]).mean
            sh = float(np.mean([sharpness(x) for x in stab]) / np.mean([sharpness(x) for x in per_frame]))
            we_cy = warping_error(carried_first, inputs=frames[: b + 1]).mean
            sh_cy = float(np.mean([sharpness(x) for x in carried_first]) / np.mean([sharpness(x) for x in per_frame]))
            row = {"clip": clip, "method": method, "frames": [0, m, b], "size": list(frames[0].shape[:2]),
                   "scores": {k: {"l1": round(v[0], 4), "gram": float(f"{v[1]:.4g}")} for k, v in scores.items()},
                   "steps": {k: v.card["steps"] for k, v in models.items()},
                   "stopped": {k: v.card["stopped"] for k, v in models.items()},
                   "train_seconds_busy_machine": {k: round(v, 1) for k, v in train_s.items()},
                   "warping_ratio": round(we_st / we_pf, 3), "sharpness_ratio": round(sh, 3),
                   "warping_ratio_carry_only": round(we_cy / we_pf, 3), "sharpness_ratio_carry_only": round(sh_cy, 3),
                   "paint_seconds": round(paint_s, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            carry_key = f"network ({first}) + carry {args.warp_blend[0]:g}"
            picture_rows.append((f"{clip} / {method}: A={0}, M={m}, B={b}",
                                 [painted[0], painted[m], cands[carry_key], cands[best_w], cands[f"network ({first})"],
                                  painted[b]]))
    if args.picture:
        write_picture(args.picture, picture_rows)
    return rows


def write_picture(path: str, rows: list) -> None:
    labels = ["painted A (trained on)", "painted M (held out)", "prediction at M", "best warped keyframe at M",
              "network alone at M", "painted B (trained on)"]
    tiles = []
    for title, imgs in rows:
        line = []
        for img in imgs:
            x = img if img.dtype == np.uint8 else (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
            line.append(cv2.resize(x, (rows[0][1][0].shape[1], rows[0][1][0].shape[0]), interpolation=cv2.INTER_AREA))
        strip = np.concatenate(line, 1)
        band = np.full((18, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(band, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles += [band, strip]
    head = np.full((18, tiles[1].shape[1], 3), 255, np.uint8)
    tw = rows[0][1][0].shape[1]
    for i, lab in enumerate(labels):
        cv2.putText(head, lab, (i * tw + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([head, *tiles], 0)
    cv2.imwrite(path, sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(str(Path(path).with_suffix(".png")), sheet[:, :, ::-1])  # lossless, to look at
    print(f"wrote {path}")


def speed(args: argparse.Namespace) -> None:
    from vidstyle.keyframes.net import KeyframeNet, flops

    torch.set_num_threads(args.threads)
    net = KeyframeNet().eval()
    gflop = flops(net, height=360, width=640) / 1e9
    net = net.to(memory_format=torch.channels_last)  # as the application runs it (vidstyle.keyframes.stage)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).eval()
    x = torch.rand(1, 128, 90, 160)
    with torch.no_grad():
        for _ in range(3):
            conv(x)
        t0 = time.perf_counter()
        for _ in range(10):
            conv(x)
        peak = 10 * 2 * 128 * 128 * 9 * 90 * 160 / (time.perf_counter() - t0) / 1e9
        frame = torch.rand(1, 3, 360, 640).contiguous(memory_format=torch.channels_last)
        for _ in range(3):
            net(frame)
        t0 = time.perf_counter()
        for _ in range(20):
            net(frame)
        fps = 20 / (time.perf_counter() - t0)
    floor = peak / gflop
    print(f"network alone at 640x360, {args.threads} threads: {fps:.1f} fps; {gflop:.2f} GFLOP/frame; conv peak "
          f"{peak:.1f} GFLOP/s -> floor {floor:.1f} fps; time / floor {floor / fps:.2f}")
    shared = Path(args.shared)
    vgg_path = str(shared / "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors")
    frames = read_clip(shared / CLIPS[args.clips.split(",")[0]], width=640, last=48)
    painted = [paint(frames[i], "stylization", shared=shared, vgg=vgg_path) for i in (0, 48)]
    keyset = KeyframeSet(keys=(Keyframe(0, "A"), Keyframe(48, "B")), frames=[frames[0], frames[48]],
                         paintings=painted, tracked=[None, None])
    opts = KeyframeOptions(keys=keyset.keys, **({"max_steps": 30} if args.application_only else {}))
    loss = loss_network(weight=opts.perceptual_weight, vgg_weights=vgg_path, vgg_convention=None, note=print)
    t0 = time.perf_counter()
    model = train_keyframe_model(keyset, options=opts, loss=loss)
    if not args.application_only:
        print(f"training, two keyframes at 640x360, default options: {time.perf_counter() - t0:.0f} s, "
              f"{model.card['steps']} steps, stopped by {model.card['stopped']} (target <= 600 s)")
    from vidstyle.keyframes.run import KEYFRAME_FLOW

    for flow in (KEYFRAME_FLOW, "dis-fast"):
        stages = build_keyframe_stages(model, temporal=TemporalOptions(flow=flow), paintings={0: painted[0], 48: painted[1]},
                                       warp_blend=1.0)
        t0 = time.perf_counter()
        run_stages(stages, frames)
        print(f"network + carried keyframes + flow ({flow}) + stabiliser, one thread for all, 640x360: "
              f"{len(frames) / (time.perf_counter() - t0):.1f} fps")
    threaded_application(frames, painted, shared=shared, vgg=vgg_path, precision=args.precision)


def threaded_application(frames: list[np.ndarray], painted: list[np.ndarray], *, shared: Path, vgg: str,
                         precision: str = "float32") -> None:
    """``vidstyle keyframes`` itself (its threaded pipeline: decode, flow, network and carry, stabiliser, encode)
    on a 640×360 clip of 145 frames (the 49 frames forward, back and forward again, so the motion stays
    continuous) with four keyframes; a 30-step training, since training does not change the application's
    speed. Prints the written frames per second and each stage's busy seconds."""
    import tempfile

    import av

    from vidstyle.io.imagefiles import write_image_atomic
    from vidstyle.keyframes.run import stylize_with_keyframes
    from vidstyle.options import StylizeOptions

    seq = frames + frames[-2:0:-1] + frames
    back = len(frames) + len(frames) - 2
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        with av.open(str(clip), "w") as out:
            stream = out.add_stream("libx264", rate=20)
            stream.width, stream.height, stream.pix_fmt = seq[0].shape[1], seq[0].shape[0], "yuv420p"
            for img in seq:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            out.mux(stream.encode())
        files = []
        for i, p in enumerate(painted):
            files.append(Path(tmp) / f"p{i}.png")
            write_image_atomic(str(files[-1]), (np.clip(p, 0, 1) * 255 + 0.5).astype(np.uint8))
        last = len(frames) - 1
        keys = (Keyframe(0, str(files[0])), Keyframe(last, str(files[1])), Keyframe(back, str(files[0])),
                Keyframe(back + last, str(files[1])))
        res = stylize_with_keyframes(clip, Path(tmp) / "out.mp4", keyframes=KeyframeOptions(keys=keys, max_steps=30),
                                     stylize=StylizeOptions(vgg_weights=vgg, threads=torch.get_num_threads(),
                                                            precision=precision))
    st = res.stats
    busy = ", ".join(f"{k} {v:.1f}" for k, v in st.busy.items())
    print(f"vidstyle keyframes (threaded pipeline, dis-medium flow, carried keyframes, stabiliser, encode, {precision}), "
          f"640x360, {st.frames} frames: {st.fps:.1f} fps (target >= 10); busy seconds: {busy}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--clips", default="cockatoo,realshort")
    ap.add_argument("--methods", default="stylization,optim")
    ap.add_argument("--modes", default="joint,distance")
    ap.add_argument("--guides", default="")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the command's)")
    ap.add_argument("--perceptual-weight", type=float, default=None, help="(default: the command's)")
    ap.add_argument("--warp-blend", type=lambda t: [float(v) for v in t.split(",")], default=[1.0],
                    help="carry strengths to score (the first also goes through the stabiliser)")
    ap.add_argument("--stabilize", type=float, default=None, help="the stabiliser's strength (default: the command's)")
    ap.add_argument("--stabilizer", default="blend", choices=("blend", "resample"), help="the stabiliser's method")
    ap.add_argument("--crossfade", type=float, default=None, help="with --stabilizer resample: its crossfade")
    ap.add_argument("--carry-rule", default=None, help="reliable | behind (vidstyle.keyframes.carry.RULE)")
    ap.add_argument("--flow", default="dis-medium", help="the application's flow (carry and stabiliser)")
    ap.add_argument("--cache", default=None, help="folder keeping the paintings and trained networks between runs")
    ap.add_argument("--variant", default="default", help="a name for the training variant (cache key)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--picture", default=None)
    ap.add_argument("--precision", default="float32", help="with --speed: the application's --precision")
    ap.add_argument("--speed", action="store_true", help="the timing figures (quiet machine only)")
    ap.add_argument("--application-only", action="store_true",
                    help="with --speed: a 30-step network instead of the training to the plateau (the application's "
                         "speed does not depend on training; saves ~5 minutes)")
    args = ap.parse_args()
    if args.speed:
        speed(args)
        return
    rows = quality(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
