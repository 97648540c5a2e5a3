"""The arbitrary back end of two checkouts of vidstyle, timed against each other in one run (A/B).

Each round starts one worker process per checkout, in turn (``PYTHONPATH`` = that checkout), and each worker
times ``--frames`` frames through the feed-forward stage (``stage.process``: uint8 640×360 frame in, uint8 picture
out, float32, batch 1, no stabilisation) after one untimed frame. Alternating whole processes keeps both sides
under the same machine load; the report is each side's median ms per frame and the median of the per-round
ratios. It also checks that both sides give the same picture (max difference in 8-bit levels)::

    python benchmarks/ab_arbitrary_checkouts.py --base /work/main --new . --methods adain,wct --rounds 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"

WORKER = r"""
import json, sys, time
import cv2, numpy as np, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from vidstyle.frame import Frame
from vidstyle.options import StyleImage
from vidstyle.stylize.arbitrary import build_arbitrary_model
from vidstyle.stylize.feedforward import FeedForwardStage
rng = np.random.default_rng(0)
w, h = args["size"]
image = cv2.resize(cv2.imread(args["photo"])[:, :, ::-1], (w, h), interpolation=cv2.INTER_AREA).copy()
model = build_arbitrary_model(styles=[StyleImage(path=args["style"])], method=args["method"], decoder=args["decoder"],
                              vgg_weights=args["vgg"])
stage = FeedForwardStage(model=model, device="cpu", stabilize=0.0)
out = stage.process(Frame(index=0, image=image))[0].stylized
times = []
for i in range(args["frames"]):
    t0 = time.perf_counter()
    stage.process(Frame(index=i + 1, image=image))
    times.append(time.perf_counter() - t0)
stage.close()
np.save(args["out"], out)
print(json.dumps(times))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="checkout A (e.g. /work/main)")
    ap.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="checkout B (default: this one)")
    ap.add_argument("--methods", default="adain,wct")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=3, help="timed frames per worker (after one untimed)")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decoder", default=None, help="default: the base checkout's models/decoder_relu31.safetensors")
    ap.add_argument("--vgg-weights", default=str(SHARED / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"))
    ap.add_argument("--style", default=str(SHARED / "data" / "styles" / "vangogh_starry_night.jpg"))
    ap.add_argument("--photo", default=str(SHARED / "data" / "content" / "urban100_img_095.jpg"),
                    help="a photo the decoder did not train on (its card's held-out list)")
    args = ap.parse_args()
    import numpy as np

    w, h = (int(v) for v in args.size.lower().split("x"))
    decoder = args.decoder or str(Path(args.base) / "models" / "decoder_relu31.safetensors")
    sides = {"base": str(Path(args.base).resolve()), "new": str(Path(args.new).resolve())}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for method in args.methods.split(","):
        per: dict[str, list[float]] = {k: [] for k in sides}
        ratios = []
        for _ in range(args.rounds):
            medians = {}
            for side, root in sides.items():
                spec = {"threads": args.threads, "size": [w, h], "photo": args.photo, "style": args.style,
                        "method": method, "decoder": decoder, "vgg": args.vgg_weights, "frames": args.frames,
                        "out": str(tmp / f"ab_{side}_{method}.npy")}
                env = {**os.environ, "PYTHONPATH": root}
                run = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env, cwd=root,
                                     capture_output=True, text=True, check=True)
                times = json.loads(run.stdout.strip().splitlines()[-1])
                per[side] += times
                medians[side] = statistics.median(times)
            ratios.append(medians["base"] / medians["new"])
        a = np.load(tmp / f"ab_base_{method}.npy").astype(int)
        b = np.load(tmp / f"ab_new_{method}.npy").astype(int)
        print(f"{method}: base {statistics.median(per['base']) * 1e3:.0f} ms/frame, new "
              f"{statistics.median(per['new']) * 1e3:.0f} ms/frame; base ÷ new, median of {args.rounds} rounds: "
              f"{statistics.median(ratios):.2f}x (rounds {', '.join(f'{r:.2f}' for r in ratios)}); pictures differ by "
              f"at most {np.abs(a - b).max()} 8-bit levels ({(np.abs(a - b) > 0).any(-1).mean() * 100:.3f} % of pixels)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
