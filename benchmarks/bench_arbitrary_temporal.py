"""Temporal behaviour of the arbitrary-style transforms: per-frame vs time-smoothed content statistics.

AdaIN and WCT normalise each frame by its own feature statistics, which makes them flicker on video.
``--stat-smoothing λ`` (:mod:`vidstyle.stylize.stat_smoothing`) replaces them by an exponential moving
average over the frames (reset on scene cuts). For each clip, method and λ this reports, for the
network's output **unstabilised** and **stabilised** (``--stabilizer``: the default ``blend`` or ``resample``,
at ``--stabilize`` 0.85; flow as ``vidstyle stylize`` computes it):

* WE: the warping error (Lai et al. 2018; flows and masks on the input, dis-medium);
* sharp: mean |Laplacian| of luminance;
* style: the standard Gram style loss against the painting (vidstyle.fidelity: relu1_2, relu2_2,
  relu3_3, painting at 512 px), mean over every ``--style-every``-th frame;

each also as a ratio to the per-frame (λ = 0), unstabilised output of the same method; and how often the
smoother restarted (``resets``: 1 = only the first frame, i.e. no false scene cut).

    python benchmarks/bench_arbitrary_temporal.py --shared ../shared [--clips realshort.mp4,cockatoo_60f.mp4,sintel_raft_demo]
        [--methods wct,adain] [--smoothing 0,0.5,0.8,0.9] [--style hokusai_great_wave.jpg] [--max-width 384]
        [--frames 40] [--stabilizer blend|resample] [--flow dis-fast|dis-medium] [--json out.json] [--crops crops.png]
        [--fast [--decoder STUDENT]]

``--fast`` measures the fast variant (the shipped student, or the student file given as ``--decoder``) instead of
the VGG variant.

``--calibrate-cuts`` instead prints the cut detector's statistic (relative jump of the per-channel mean and std
at relu3_1) between consecutive frames of each clip and between frames of different clips, the figures
behind ``CUT_THRESHOLD``.

No timings are measured (quality only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_temporal import contact_sheet, read_clip  # noqa: E402

from vidstyle.fidelity import StyleReference, fidelity_vgg, style_distance  # noqa: E402
from vidstyle.flow.stage import FORWARD_FLOW, FlowStage  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.metrics import sharpness, warp_reference, warping_error  # noqa: E402
from vidstyle.options import StyleImage  # noqa: E402
from vidstyle.stylize.arbitrary import build_arbitrary_model  # noqa: E402
from vidstyle.stylize.feedforward import image_to_tensor, tensor_to_image  # noqa: E402
from vidstyle.stylize.stat_smoothing import StatSmoother  # noqa: E402
from vidstyle.options import ARBITRARY_TEMPORAL  # noqa: E402
from vidstyle.stylize.temporal import Stabilizer  # noqa: E402


def calibrate_cuts(args: argparse.Namespace, shared: Path, vgg_path: Path) -> int:
    """The cut statistic within each clip (consecutive frames) and across clips (last frame → first frame)."""
    from vidstyle.nets.decoder import VGGEncoder
    from vidstyle.stylize.stat_smoothing import CUT_THRESHOLD, content_statistics, statistics_distance

    enc = VGGEncoder(layer="relu3_1", weights=str(vgg_path))
    stats = {}
    for clip in args.clips.split(","):
        spec = shared / "data" / "video" / clip
        frames = read_clip(str(spec / "*.png" if spec.is_dir() else spec), max_width=args.max_width, frames=args.frames)
        with torch.no_grad():
            stats[clip] = [content_statistics(enc(image_to_tensor(f)[None]), covariance=False) for f in frames]
        d = [statistics_distance(b, a) for a, b in zip(stats[clip], stats[clip][1:])]
        print(f"{clip:24s} consecutive frames: median {np.median(d):.4f}, max {max(d):.4f} ({len(d)} pairs)")
    cross = [statistics_distance(stats[b][0], stats[a][-1]) for a in stats for b in stats if a != b]
    if cross:
        print(f"{'different clips':24s} min {min(cross):.4f}, median {np.median(cross):.4f} ({len(cross)} pairs); "
              f"threshold {CUT_THRESHOLD}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--clips", default="realshort.mp4,cockatoo_60f.mp4,sintel_raft_demo")
    ap.add_argument("--methods", default="wct,adain")
    ap.add_argument("--smoothing", default="0,0.5,0.8,0.9", help="λ values; 0 (per-frame) is the baseline")
    ap.add_argument("--style", default="hokusai_great_wave.jpg", help="painting in SHARED/data/styles")
    ap.add_argument("--decoder", default=None, help="decoder (default: the shipped decoder_relu31; with --fast, "
                                                     "the shipped student_relu31)")
    ap.add_argument("--fast", action="store_true", help="the fast variant (a distilled student) instead of VGG")
    ap.add_argument("--max-width", type=int, default=384)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--stabilize", type=float, default=0.85)
    ap.add_argument("--flow", default="dis-fast", help="the stabiliser's optical flow (vidstyle stylize --flow)")
    ap.add_argument("--crossfade", type=float, default=ARBITRARY_TEMPORAL["resample_fade"],
                    help="resample: the refresh crossfade, a fraction of the track lifetime (vidstyle stylize "
                         "--resample-fade; default: the arbitrary back end's)")
    ap.add_argument("--stabilizer", default="blend", choices=("blend", "resample"),
                    help="the stabilisation method (vidstyle stylize --stabilizer)")
    ap.add_argument("--style-every", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--calibrate-cuts", action="store_true", help="only the cut detector's statistic on the clips")
    ap.add_argument("--crops", default=None, metavar="PNG", help="2x crops of 3 frames (first clip, first method)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    vgg_path = shared / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"
    painting = shared / "data" / "styles" / args.style
    vgg = fidelity_vgg(vgg_path)
    grams = StyleReference(painting, vgg=vgg).grams
    if args.calibrate_cuts:
        return calibrate_cuts(args, shared, vgg_path)
    lams = [float(v) for v in args.smoothing.split(",")]
    if 0.0 not in lams:
        lams = [0.0, *lams]
    rows: list[dict[str, object]] = []
    print(f"{'clip':18s} {'method':6s} {'λ':>4s} {'output':>10s} {'WE':>9s} {'sharp':>7s} {'style':>9s} "
          f"{'WE×':>6s} {'sharp×':>6s} {'style×':>6s} {'resets':>6s}")
    sheet_done = False
    for clip in args.clips.split(","):
        spec = shared / "data" / "video" / clip
        if spec.is_dir():
            spec = spec / "*.png"
        inputs = read_clip(str(spec), max_width=args.max_width, frames=args.frames)
        ref = warp_reference(inputs, lag=1)
        fs = FlowStage(estimator=args.flow, forward_estimator=FORWARD_FLOW.get(args.flow))
        annotated: list[Frame] = []
        for i, img in enumerate(inputs):
            annotated += fs.process(Frame(index=i, image=img))

        def scores(tensors: list[torch.Tensor]) -> tuple[float, float, float]:
            frames = [tensor_to_image(t[0], np.uint8) for t in tensors]
            we = warping_error(frames, reference=ref).mean
            sh = float(np.mean([sharpness(f) for f in frames]))
            with torch.no_grad():
                st = float(np.mean([style_distance(vgg(t), grams) for t in tensors[:: args.style_every]]))
            return we, sh, st

        for method in args.methods.split(","):
            model = build_arbitrary_model(styles=[StyleImage(path=str(painting))], method=method, decoder=args.decoder,
                                          vgg_weights=str(vgg_path), fast=args.fast)
            net = model.net.eval()
            base: tuple[float, float, float] | None = None
            variants: dict[str, list[torch.Tensor]] = {}
            for lam in lams:
                net.smoother = StatSmoother(smoothing=lam) if lam > 0 else None
                resets = 0
                raw = []
                with torch.inference_mode():
                    for img in inputs:
                        raw.append(net(image_to_tensor(img)[None]).float().clamp(0, 1))
                        resets += int(net.smoother.last_cut) if net.smoother is not None else 1
                stab = Stabilizer(strength=args.stabilize, method=args.stabilizer, crossfade=args.crossfade)
                stabilised = []
                for f, y, img in zip(annotated, raw, inputs):  # as FeedForwardStage does
                    flow = None if f.flow_bwd is None else torch.from_numpy(f.flow_bwd)[None]
                    cons = None if f.consistency is None else torch.from_numpy(f.consistency)[None, None]
                    err = None if f.warp_error is None else torch.from_numpy(f.warp_error)[None, None]
                    stabilised.append(stab.step(y, flow_bwd=flow, consistency=cons, scene_cut=f.scene_cut,
                                                warp_error=err, index=f.frame_number, guide=img).clone())
                for label, outs in (("unstab", raw), (f"{args.stabilizer[:5]} {args.stabilize:g}", stabilised)):
                    we, sh, st = scores(outs)
                    if base is None:
                        base = (we, sh, st)
                    row = {"clip": clip, "method": method, "smoothing": lam, "output": label, "we": we,
                           "sharpness": sh, "style": st, "we_ratio": we / base[0], "sharp_ratio": sh / base[1],
                           "style_ratio": st / base[2], "resets": resets, "frames": len(inputs),
                           "size": f"{inputs[0].shape[1]}x{inputs[0].shape[0]}"}
                    rows.append(row)
                    print(f"{clip:18s} {method:6s} {lam:4.2f} {label:>10s} {we:9.5f} {sh:7.4f} {st:9.1f} "
                          f"{row['we_ratio']:6.3f} {row['sharp_ratio']:6.3f} {row['style_ratio']:6.3f} {resets:6d}",
                          flush=True)
                    variants[f"{method} lambda={lam:g} {label}"] = outs  # ASCII: cv2.putText
            if args.crops and not sheet_done:
                keys = list(variants)  # per λ: unstab, stab
                zero_unstab, zero_stab, top_unstab, top_stab = keys[0], keys[1], keys[-2], keys[-1]
                order = {"per-frame": variants[zero_unstab], top_unstab: variants[top_unstab],
                         zero_stab: variants[zero_stab], top_stab: variants[top_stab]}
                contact_sheet(Path(args.crops), order, None)
                sheet_done = True
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
