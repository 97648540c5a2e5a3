"""Temporal quality of feed-forward video: stabilised vs per-frame output of the same model.

For each clip and model: the warping error (Lai et al., flows and masks on the input), the sharpness
(mean |Laplacian| of luminance) and the standard Gram style loss against the model's style image
(vidstyle.fidelity: squared Frobenius norms summed over relu1_2, relu2_2, relu3_3, painting at 512 px), for the
per-frame output and for the stabilised output at several strengths. The network runs once per frame;
stabilisation post-processes those same outputs, exactly as FeedForwardStage does with flow from
FlowStage (dis-fast on the input frames).

    python benchmarks/bench_temporal.py --shared ../shared [--max-width 640] [--strengths 0.5,0.7,0.85,0.95]
        [--models engstrom2016_wave,engstrom2016_scream,starry_student,scream_student,MULTI.safetensors#STYLE] [--frames 40]
        [--json out.json]
        [--methods blend,resample] [--crops quality/stab_crops.png]

``--methods``: the Stabilizer methods compared (``blend``: blend with the warped previous output and restore
detail; ``resample``: sample each texel once from the output it was generated in, issue 16). ``--crops``
writes a contact sheet of 2× crops (nearest-neighbour) of three consecutive frames, per-frame output and
each method, for the first clip and model.

Targets (issue 16): warping-error ratio ≤ 0.3, sharpness ≥ 0.9× and style loss ≤ 1.1× per-frame; each row says
whether it meets all three. Models whose painting is not in ``../shared/data/styles`` (the engstrom2016 la_muse,
udnie and rain_princess nets) get no style figure (NaN); their rows are judged on warping error and sharpness.
The stabiliser gets the input frame as its guide, as the pipeline's stages give it (``--no-guide``: without).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with

from vidstyle.flow.stage import FORWARD_FLOW, FlowStage  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.io import open_source  # noqa: E402
from vidstyle.fidelity import StyleReference, fidelity_vgg, style_distance  # noqa: E402
from vidstyle.metrics import sharpness, warp_reference, warping_error  # noqa: E402
from vidstyle.nets.registry import load_model  # noqa: E402
from vidstyle.stylize.feedforward import image_to_tensor, tensor_to_image  # noqa: E402
from vidstyle.stylize.temporal import Stabilizer  # noqa: E402

STYLE_OF = {
    "engstrom2016_wave": "hokusai_great_wave.jpg",
    "engstrom2016_scream": "munch_the_scream.jpg",
    "starry_tiny": "vangogh_starry_night.jpg",
    "wave_small": "hokusai_great_wave.jpg",
}


def read_clip(spec: str, *, max_width: int, frames: int) -> list[np.ndarray]:
    out = []
    with open_source(spec) as src:
        for f in src:
            img = f.image
            h, w = img.shape[:2]
            if w > max_width:
                s = max_width / w
                img = cv2.resize(img, (max_width, int(round(h * s / 2)) * 2), interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(img))
            if len(out) >= frames:
                break
    return out


def model_path(name: str, shared: Path, repo: Path) -> Path:
    if name.endswith(".safetensors"):  # any trained model file; its style image comes from its card
        return Path(name)
    if name.startswith("engstrom2016_"):
        return shared / "weights" / f"{name}.safetensors"
    return repo / "models" / f"{name}.safetensors"


def contact_sheet(path: Path, variants: dict[str, list[torch.Tensor]], first: int | None, *, size: int = 96) -> None:
    """Rows: the variants; columns: 2× nearest-neighbour crops (``size`` px of the frame) of three
    consecutive frames, taken around the most textured ``size``-square of the per-frame output."""
    frames = [tensor_to_image(t[0], np.uint8) for t in variants["per-frame"]]
    n = len(frames)
    first = min(max(0, (2 * n) // 3 if first is None else first), n - 3)
    grey = cv2.cvtColor(frames[first], cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.boxFilter(np.abs(cv2.Laplacian(grey, cv2.CV_32F)), -1, (size, size))
    h, w = grey.shape
    half = size // 2
    e = energy[half:h - half, half:w - half]
    y, x = np.unravel_index(int(np.argmax(e)), e.shape)
    rows = []
    for label, outs in variants.items():
        tiles = []
        for i in range(first, first + 3):
            img = tensor_to_image(outs[i][0], np.uint8)[y:y + size, x:x + size]
            tiles.append(cv2.resize(img, (2 * size, 2 * size), interpolation=cv2.INTER_NEAREST))
            tiles.append(np.full((2 * size, 4, 3), 255, np.uint8))
        row = np.concatenate(tiles[:-1], axis=1)
        bar = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, f"{label}   frames {first}-{first + 2}   crop at ({x},{y})", (4, 13), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [bar, row, np.full((6, row.shape[1], 3), 255, np.uint8)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--max-width", type=int, default=640)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--strengths", default="0.85")
    ap.add_argument("--models", default="engstrom2016_wave,engstrom2016_scream,starry_student,scream_student")
    ap.add_argument("--clips", default="cockatoo_60f.mp4,sintel_raft_demo,realshort.mp4")
    ap.add_argument("--json", default=None)
    ap.add_argument("--flow", default="dis-fast", help="flow estimator of the stabiliser (FlowStage)")
    ap.add_argument("--forward-flow", default=None,
                    help="estimator of the forward flow only (FlowStage forward_estimator; default: what "
                         "'vidstyle stylize' uses for --flow, FORWARD_FLOW; 'same' = the --flow estimator)")
    ap.add_argument("--flow-scale", type=float, default=1.0,
                    help="FlowStage work_scale of the stabiliser's flow, mask and cut detection (live mode uses 0.5)")
    ap.add_argument("--mid-bands", default=None,
                    help="DoG bands restored too, e.g. 1:2,2:4 or 'none' (Stabilizer mid_bands; default: the library's)")
    ap.add_argument("--detail", type=float, default=None,
                    help="sharpness to restore, fraction of per-frame (Stabilizer detail; default: the library's)")
    ap.add_argument("--confirm", type=float, default=None, metavar="TAU",
                    help="also blend where the mask is 0 but the input's warp error is below TAU "
                         "(Stabilizer confirm; 0 = the mask alone; default: the library's)")
    ap.add_argument("--methods", default="blend", help="Stabilizer methods, comma-separated: blend, resample")
    ap.add_argument("--kernel", default=None, choices=("bicubic", "lanczos"),
                    help="texture kernel of the resample method (default: the library's)")
    ap.add_argument("--crossfade", type=float, default=None,
                    help="resample: the refresh crossfade, a fraction of the track lifetime (default: the library's)")
    ap.add_argument("--no-guide", action="store_true",
                    help="do not pass the input frame to the stabiliser (resample then checks the output's colour)")
    ap.add_argument("--crops", default=None, metavar="PNG", help="contact sheet of 2x crops (first clip and model)")
    ap.add_argument("--crop-frame", type=int, default=None, help="first frame of the crops (default: 2/3 through)")
    ap.add_argument("--interpolation", default=None, choices=("bilinear", "bicubic"),
                    help="warp of the previous output (Stabilizer interpolation; default: the library's)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    shared = Path(args.shared)
    repo = Path(__file__).resolve().parents[1]
    strengths = [float(s) for s in args.strengths.split(",")]
    vgg = fidelity_vgg(shared / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors")
    rows = []
    methods = args.methods.split(",")
    sheet_done = False
    print(f"{'clip':18s} {'model':20s} {'method':>8s} {'strength':>8s} {'WE':>9s} {'WE ratio':>8s} {'sharp ratio':>11s} {'style ratio':>11s}")
    for clip in args.clips.split(","):
        spec = shared / "data" / "video" / clip
        if spec.is_dir():
            spec = spec / "*.png"
        inputs = read_clip(str(spec), max_width=args.max_width, frames=args.frames)
        ref = warp_reference(inputs, lag=1)
        # flow for the stabiliser, as the pipeline computes it
        forward = FORWARD_FLOW.get(args.flow) if args.forward_flow is None else args.forward_flow
        fs = FlowStage(estimator=args.flow, work_scale=args.flow_scale,
                       forward_estimator=None if forward == "same" else forward)
        annotated = []
        for i, img in enumerate(inputs):
            annotated += fs.process(Frame(index=i, image=img))
        for name in args.models.split(","):
            base, _, style = name.partition("#")  # MODEL#STYLE: one style of a multi-style model
            path = model_path(base, shared, repo)
            if not path.is_file():
                print(f"  (skipping {name}: {path} missing)")
                continue
            model = load_model(path).eval()
            if style:
                from bench_quality import OneStyle

                model = OneStyle(model, style).eval()
            style_name = STYLE_OF.get(name) or (model.metadata.get("style_images") or [None])[0]
            painting = None if style_name is None else shared / "data" / "styles" / style_name
            t0 = time.perf_counter()
            with torch.inference_mode():
                raw = [model(image_to_tensor(img)[None]) for img in inputs]
            net_s = (time.perf_counter() - t0) / len(inputs)
            if painting is not None and painting.is_file():
                grams = StyleReference(painting, vgg=vgg).grams  # painting at 512 px
                reference = "painting"
            else:  # the painting is not in ../shared (la_muse, udnie, rain_princess): flicker and sharpness only
                grams = None
                reference = "none"
                print(f"  ({name}: no painting in ../shared; style loss not measured, targets judged on WE and sharpness)")

            def scores(tensors):
                frames = [tensor_to_image(t[0], np.uint8) for t in tensors]
                we = warping_error(frames, reference=ref).mean
                sh = float(np.mean([sharpness(f) for f in frames]))
                if grams is None:
                    return we, sh, float("nan")
                with torch.no_grad():
                    st = float(np.mean([style_distance(vgg(t), grams) for t in tensors[:: max(1, len(tensors) // 10)]]))
                return we, sh, st

            base = scores(raw)
            rows.append({"clip": clip, "model": name, "style_reference": reference, "strength": 0.0, "we": base[0], "we_ratio": 1.0, "sharp_ratio": 1.0,
                         "style_ratio": 1.0, "sharpness": base[1], "style": base[2], "net_s_per_frame": net_s,
                         "size": f"{inputs[0].shape[1]}x{inputs[0].shape[0]}", "frames": len(inputs)})
            print(f"{clip:18s} {name:20s} {'-':>8s} {0.0:8.2f} {base[0]:9.5f} {1.0:8.3f} {1.0:11.3f} {1.0:11.3f}", flush=True)
            variants = {}
            for method, s in [(m, s) for m in methods for s in strengths]:
                options: dict = {"method": method}
                if method == "resample" and args.kernel is not None:
                    options["kernel"] = args.kernel
                if method == "resample" and args.crossfade is not None:
                    options["crossfade"] = args.crossfade
                if args.mid_bands is not None:
                    options["mid_bands"] = tuple(tuple(float(v) for v in b.split(":"))
                                                 for b in args.mid_bands.split(",") if b and b != "none")
                if args.detail is not None:
                    options["detail"] = args.detail
                if args.confirm is not None:
                    options["confirm"] = args.confirm
                if args.interpolation is not None and method == "blend":
                    options["interpolation"] = args.interpolation
                stab = Stabilizer(strength=s, **options)
                outs = []
                for f, y in zip(annotated, raw):  # as FeedForwardStage does (the input frame as the guide)
                    flow = None if f.flow_bwd is None else torch.from_numpy(f.flow_bwd)[None]
                    cons = None if f.consistency is None else torch.from_numpy(f.consistency)[None, None]
                    err = None if f.warp_error is None else torch.from_numpy(f.warp_error)[None, None]
                    outs.append(stab.step(y, flow_bwd=flow, consistency=cons, scene_cut=f.scene_cut, warp_error=err,
                                          index=f.frame_number, guide=None if args.no_guide else f.image).clone())
                variants[f"{method} {s:g}"] = outs
                we, sh, st = scores(outs)
                row = {"clip": clip, "model": name, "style_reference": reference, "method": method, "strength": s, "we": we, "we_ratio": we / base[0],
                       "sharp_ratio": sh / base[1], "style_ratio": st / base[2], "sharpness": sh, "style": st,
                       "size": f"{inputs[0].shape[1]}x{inputs[0].shape[0]}", "frames": len(inputs)}
                rows.append(row)
                met = row["we_ratio"] <= 0.3 and row["sharp_ratio"] >= 0.9 and (grams is None or row["style_ratio"] <= 1.1)
                row["targets_met"] = met
                print(f"{clip:18s} {name:20s} {method:>8s} {s:8.2f} {we:9.5f} {row['we_ratio']:8.3f} {row['sharp_ratio']:11.3f} "
                      f"{row['style_ratio']:11.3f}  {'all targets' if met else 'MISSES'}", flush=True)
            if args.crops and not sheet_done:
                contact_sheet(Path(args.crops), {"per-frame": raw, **variants}, args.crop_frame)
                sheet_done = True
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
