"""Time of the resample stabiliser's tracker per frame, by crossfade, against crossfade 0.5 in the same run.

``Stabilizer(method="resample").step`` on a shared clip with DIS-medium flow computed once beforehand; the input
frames stand in for the network's output (the tracker's work does not depend on what it tracks). Each crossfade is
run over the clip in turn, alternating, ``--repeats`` times; the medians are compared. One thread (the file
pipeline's stabiliser runs in a thread of its own).

    python benchmarks/bench_tracker.py --shared ../shared [--clip cockatoo_60f.mp4] [--width 1280] [--frames 24]
        [--crossfades 0.5,0.85] [--strength 0.9] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_temporal import read_clip  # noqa: E402

from vidstyle.flow.stage import FORWARD_FLOW, FlowStage  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.stylize.temporal import Stabilizer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--clip", default="cockatoo_60f.mp4")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--crossfades", default="0.5,0.85", help="the first is the baseline")
    ap.add_argument("--strength", type=float, default=0.9)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    inputs = read_clip(str(Path(args.shared) / "data" / "video" / args.clip), max_width=args.width, frames=args.frames)
    flow_stage = FlowStage(estimator="dis-medium", forward_estimator=FORWARD_FLOW.get("dis-medium"))
    frames: list[Frame] = []
    for i, image in enumerate(inputs):
        frames += flow_stage.process(Frame(index=i, image=image))
    outputs = [torch.from_numpy(f.image.astype(np.float32) / 255.0).permute(2, 0, 1)[None] for f in frames]
    crossfades = [float(c) for c in args.crossfades.split(",")]
    times: dict[float, list[float]] = {c: [] for c in crossfades}
    for _ in range(args.repeats):
        for c in crossfades:
            stab = Stabilizer(strength=args.strength, method="resample", crossfade=c)
            t0 = time.perf_counter()
            for f, y in zip(frames, outputs):
                flow = None if f.flow_bwd is None else torch.from_numpy(f.flow_bwd)[None]
                mask = None if f.consistency is None else torch.from_numpy(f.consistency)[None, None]
                stab.step(y, flow_bwd=flow, consistency=mask, scene_cut=f.scene_cut, index=f.frame_number,
                          guide=f.image)
            times[c].append((time.perf_counter() - t0) / len(frames) * 1000.0)
    h, w = inputs[0].shape[:2]
    base = float(np.median(times[crossfades[0]]))
    print(f"{args.clip} {w}x{h}, {len(frames)} frames, strength {args.strength}, one thread")
    for c in crossfades:
        med = float(np.median(times[c]))
        print(f"crossfade {c:<5g} ms/frame {med:7.1f} (runs {', '.join(f'{t:.0f}' for t in times[c])})  "
              f"x{med / base:.3f} of crossfade {crossfades[0]:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
