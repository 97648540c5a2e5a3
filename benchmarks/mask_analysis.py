"""Where the stabilised output's remaining warping error comes from: the stabiliser's mask vs the metric's.

For one clip and model it prints

* which criterion of the stabiliser's consistency mask (dis-fast flow; see docs/architecture.md,
  'Temporal consistency') rejects how many pixels: forward-backward occlusion check, motion boundary,
  out of frame;
* the share of the metric's consistent pixels (dis-medium flow, ``vidstyle.metrics``) that the
  stabiliser's mask rejects, and the share of the per-frame and stabilised outputs' warping error
  that sits on them (the stabiliser keeps the per-frame output there);
* the stabilised ÷ per-frame error on each part.

    python benchmarks/mask_analysis.py --clip cockatoo_60f.mp4 --model engstrom2016_scream
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_temporal import model_path, read_clip  # noqa: E402

from vidstyle.flow import consistency as C  # noqa: E402
from vidstyle.flow.stage import FlowStage  # noqa: E402
from vidstyle.flow.warping import remap_coordinates, warp_numpy  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.metrics import warp_reference  # noqa: E402
from vidstyle.nets.registry import load_model  # noqa: E402
from vidstyle.stylize.feedforward import image_to_tensor, tensor_to_image  # noqa: E402
from vidstyle.stylize.temporal import Stabilizer  # noqa: E402


def criteria(fwd: np.ndarray, bwd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three rejection criteria of :func:`vidstyle.flow.consistency.consistency_mask`, separately."""
    h, w = bwd.shape[1:]
    mx, my = remap_coordinates(bwd)
    wf = [cv2.remap(np.ascontiguousarray(fwd[i]), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
          for i in (0, 1)]
    u, v = bwd
    occluded = (wf[0] + u) ** 2 + (wf[1] + v) ** 2 > 0.01 * (wf[0] ** 2 + wf[1] ** 2 + u * u + v * v) + 0.5
    boundary = C._gradient_energy(u, v) > 0.01 * (u * u + v * v) + 0.002
    outside = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
    return occluded, boundary, outside


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--clip", default="cockatoo_60f.mp4")
    ap.add_argument("--model", default="engstrom2016_scream")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--strength", type=float, default=0.85)
    args = ap.parse_args()
    torch.set_num_threads(2)
    shared, repo = Path(args.shared), Path(__file__).resolve().parents[1]
    spec = shared / "data" / "video" / args.clip
    inputs = read_clip(str(spec / "*.png") if spec.is_dir() else str(spec), max_width=640, frames=args.frames)
    ref = warp_reference(inputs, lag=1)
    stage = FlowStage(estimator="dis-fast")
    frames = []
    for i, img in enumerate(inputs):
        frames += stage.process(Frame(index=i, image=img))
    shares = np.zeros(3)
    for f in frames[1:]:
        shares += [c.mean() for c in criteria(f.flow_fwd, f.flow_bwd)]
    shares /= max(1, len(frames) - 1)
    print(f"{args.clip}: stabiliser mask rejects, per frame: occluded {shares[0]:.3f}, motion boundary "
          f"{shares[1]:.3f}, out of frame {shares[2]:.3f}; scene cuts {sum(f.scene_cut for f in frames)}")

    model = load_model(model_path(args.model, shared, repo)).eval()
    with torch.inference_mode():
        raw = [model(image_to_tensor(img)[None]) for img in inputs]
    stab = Stabilizer(strength=args.strength)
    outs = []
    for f, y in zip(frames, raw):
        flow = None if f.flow_bwd is None else torch.from_numpy(f.flow_bwd)[None]
        cons = None if f.consistency is None else torch.from_numpy(f.consistency)[None, None]
        outs.append(stab.step(y, flow_bwd=flow, consistency=cons, scene_cut=f.scene_cut))

    def rgb(ts: list[torch.Tensor]) -> list[np.ndarray]:
        return [tensor_to_image(t[0], np.uint8).astype(np.float32) / 255.0 for t in ts]

    per_frame, stabilised = rgb(raw), rgb(outs)
    err = {k: np.zeros(2) for k in ("per-frame", "stabilised")}
    count = np.zeros(2)
    for t, (flow, mask) in enumerate(zip(ref.flows, ref.masks)):
        # the stabiliser's mask of frame t+1 brought to frame t, where the metric compares
        ours = warp_numpy(frames[t + 1].consistency, flow) > 0.5
        counted = mask > 0.5
        parts = (counted & ours, counted & ~ours)
        count += [p.sum() for p in parts]
        for name, video in (("per-frame", per_frame), ("stabilised", stabilised)):
            sq = ((video[t] - warp_numpy(video[t + 1], flow)) ** 2).sum(axis=2)
            err[name] += [sq[p].sum() for p in parts]
    print(f"{args.model}: metric-consistent pixels the stabiliser's mask rejects: {count[1] / count.sum():.3f}")
    for name, e in err.items():
        print(f"  {name}: warping error {e.sum() / count.sum():.5f}, share on rejected pixels {e[1] / e.sum():.3f}")
    ratio = err["stabilised"] / err["per-frame"]
    print(f"  stabilised ÷ per-frame: on accepted pixels {ratio[0]:.3f}, on rejected pixels {ratio[1]:.3f}, "
          f"all {err['stabilised'].sum() / err['per-frame'].sum():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
