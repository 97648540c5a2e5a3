"""Training speed: seconds per iteration of ``vidstyle train`` for each network size on this machine.

Each row runs the real :func:`vidstyle.train.train` (VGG19 loss network, the standard Gram form, batch and crop as
given) for ``--warmup`` + ``--iterations`` iterations and times the last ``--iterations`` from the progress
callback, so start-up (loading photos, the style targets) is not counted. Rows: one-style ``tiny``, ``small``,
``full`` and ``student`` nets (the last fine-tunes the shipped fast student), 6-style multi-style ``tiny`` and
``student`` nets, and ``--add-style`` to each (only a new style's rows learn, Dumoulin et al.'s fine-tuning; the
"new style in ten minutes" path). The ratio column is against the one-style
tiny net of the same run.

    python benchmarks/bench_train.py --shared ../shared [--threads 2] [--batch-size 2] [--image-size 256]

Do not run it while anything else uses the CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.train import TrainConfig, TrainProgress, train  # noqa: E402

STYLES = ("vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "munch_the_scream.jpg",
          "kandinsky_composition_vii.jpg", "turner_shipwreck_of_the_minotaur.jpg", "gauguin_te_fare.jpg")


def timed(config: TrainConfig, *, warmup: int) -> tuple[float, Path]:
    marks: dict[int, float] = {}

    def progress(p: TrainProgress) -> None:
        marks[p.iteration] = time.perf_counter()

    result = train(config=config, progress=progress)
    last = max(marks)
    return (marks[last] - marks[warmup]) / (last - warmup), result.model_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--sizes", default="tiny,small,full,student",
                    help="one-style sizes; with student also the multi-style student and --add-style to it")
    args = ap.parse_args()
    shared = Path(args.shared)
    styles = tuple(str(shared / "data" / "styles" / s) for s in STYLES)
    common = dict(content=str(shared / "data" / "content"), image_size=args.image_size, batch_size=args.batch_size,
                  iterations=args.warmup + args.iterations, style_reduction="sum", style_weight=3e-3,
                  style_size=512, tv_weight=10.0, temporal_weight=10.0, threads=args.threads, max_images=16,
                  checkpoint_every=10_000, vgg_weights=str(shared / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"))
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in filter(None, args.sizes.split(",")):
            s, _ = timed(TrainConfig(style=styles[:1], size=size, output=str(Path(tmp) / size), **common),
                         warmup=args.warmup)
            rows.append((f"{size}, one style", s))
            print(f"  {rows[-1][0]}: {s:.3f} s/it", file=sys.stderr, flush=True)
        new_style = (str(shared / "data" / "styles" / "monet_san_giorgio_maggiore_at_dusk.jpg"),)
        for size, what in (("tiny", "6 styles + identity"), ("student", "6 styles")):
            if size not in args.sizes.split(",") and size != "tiny":
                continue
            s, multi = timed(TrainConfig(style=styles, size=size, multi_style=True,
                                         output=str(Path(tmp) / f"multi_{size}"), **common), warmup=args.warmup)
            rows.append((f"{size}, multi-style ({what})", s))
            s, _ = timed(TrainConfig(style=new_style, size=size, add_style=True, init=str(multi),
                                     output=str(Path(tmp) / f"add_{size}"), **common), warmup=args.warmup)
            rows.append((f"{size}, --add-style (the new style's rows only)", s))
    base = next((t for n, t in rows if n.startswith("tiny, one")), rows[0][1])
    print(f"Training speed, {args.image_size} px crops, batch {args.batch_size}, {args.threads} threads, "
          f"VGG19 conv1_1–conv3_4 loss network; mean of {args.iterations} iterations after {args.warmup}\n")
    print("| network | s / iteration | iterations / s | × tiny | iterations in 10 min |")
    print("|---|---:|---:|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.3f} | {1 / s:.2f} | {s / base:.2f} | {int(600 / s)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
