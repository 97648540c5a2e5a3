"""Chunk seams and patch seams on real clips (a quality measurement; no timing).

For each clip (a path, or a name in ``../shared/data/video``: ``cockatoo_60f.mp4``, ``realshort.mp4`` by
default; ``samples/clip.mp4`` is the project's own), a clip shorter than 2·K + 2 frames only measures
something with a smaller ``--overlap`` (its chunk would warm up from the first frame, i.e. render the
single render's frames exactly),
the frames are resized to ``--width`` and written as 16-bit PNG plates numbered 1001…; then

* a single-process render of the whole clip (the reference),
* a render in 2 chunks (what ``--ray`` with 2 workers renders; the same bits on Ray workers, as
  tests/render/test_render_ray.py checks), warm-up K = ``--overlap``, cross-fade F = ``--crossfade``,
* a sub-range render of the second half (``frames = "MID-LAST"``: what ``--patch`` renders),
  warming up on the K frames before it,

and reports, in 8-bit levels against the single render: the max and mean |Δ| at the seam frames
(the chunk's cross-fade zone and first frame; the patch's first frame) and the mean |Δ| elsewhere,
and the warping-error ratio of the border pair (chunked ÷ single, vidstyle.render.seam).

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_seam.py \\
        [--clips cockatoo_60f.mp4,realshort.mp4] [--width 480] [--model PATH|NAME]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDSTYLE_SHARED", str(REPO.parent / "shared")))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with


def make_plates(clip: Path, folder: Path, width: int) -> list[int]:
    import cv2

    from vidstyle.io import open_source

    folder.mkdir(parents=True, exist_ok=True)
    numbers = []
    with open_source(clip) as src:
        for i, f in enumerate(src):
            img = f.image
            h = round(img.shape[0] * width / img.shape[1] / 2) * 2
            img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
            img16 = img.astype(np.uint16) * 257 if img.dtype == np.uint8 else img
            cv2.imwrite(str(folder / f"sh.{1001 + i:04d}.png"), img16[:, :, ::-1])
            numbers.append(1001 + i)
    return numbers


def job(folder: Path, plates: Path, model: str, **keys: object) -> Path:
    data = {"input": str(plates / "sh.%04d.png"), "output": "out/sh.%04d.png", "model": model, "seed": 5,
            "bit_depth": 16, "threads": 2, **keys}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shot.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items()), encoding="utf-8")
    return path


def read(folder: Path) -> dict[int, np.ndarray]:
    from vidstyle.io import read_image

    return {int(p.name.split(".")[1]): read_image(p).astype(np.float64) / 257
            for p in sorted(folder.glob("sh.*.png")) if ".partial." not in p.name}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", default="cockatoo_60f.mp4,realshort.mp4")
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--model", default=None, help="default: ../shared/weights/engstrom2016_udnie.safetensors, "
                                                  "else starry_tiny")
    ap.add_argument("--overlap", type=int, default=24)
    ap.add_argument("--crossfade", type=int, default=4)
    ap.add_argument("--work", default="/tmp/vidstyle-bench-seam")
    args = ap.parse_args()

    from vidstyle.io import read_image
    from vidstyle.render import load_job, render
    from vidstyle.render.seam import border_positions, seam_report

    model = args.model
    if model is None:
        udnie = SHARED / "weights" / "engstrom2016_udnie.safetensors"
        model = str(udnie) if udnie.is_file() else "starry_tiny"
    work = Path(args.work)
    rows = []
    for name in args.clips.split(","):
        clip = Path(name) if Path(name).is_file() else SHARED / "data" / "video" / name
        if not clip.is_file():
            print(f"skipping {name}: not in {clip.parent}")
            continue
        base = work / Path(name).stem
        shutil.rmtree(base, ignore_errors=True)
        numbers = make_plates(clip, base / "plates", args.width)
        n = len(numbers)
        half = math.ceil(n / 2)
        mid = numbers[half]
        keys = {"overlap": args.overlap, "crossfade": args.crossfade}
        render(load_job(job(base / "single", base / "plates", model, **keys)))
        render(load_job(job(base / "chunks", base / "plates", model, chunk_frames=half, **keys)))
        render(load_job(job(base / "patch", base / "plates", model, frames=f"{mid}-{numbers[-1]}", **keys)))
        single, chunks, patch = (read(base / x / "out") for x in ("single", "chunks", "patch"))
        manifest = json.loads((base / "chunks" / "out" / "sh.manifest.json").read_text())
        c1 = manifest["chunks"][1]
        seam_frames = [m for m in numbers if (c1["crossfade_from"] or c1["first"]) <= m <= c1["first"]]

        def stats(test: dict[int, np.ndarray], at: list[int]) -> tuple[float, float, float]:
            d_at = [np.abs(test[m] - single[m]) for m in at]
            rest = [np.abs(test[m] - single[m]).mean() for m in test if m not in at]
            return max(float(d.max()) for d in d_at), float(np.mean([d.mean() for d in d_at])), float(np.mean(rest))

        inputs = [read_image(base / "plates" / f"sh.{m}.png") for m in numbers]
        rep = seam_report(inputs=inputs, chunked=[chunks[m] / 255 for m in numbers],
                          borders=border_positions([c1["first"]], numbers), single=[single[m] / 255 for m in numbers])
        ch = stats(chunks, seam_frames)
        pa = stats(patch, [mid])
        rows.append((name, n, args.width, ch, rep.ratio_single, pa, c1["warmup"]))
        print(f"{name}: {n} frames, chunk 1 warm-up {c1['warmup']} (cross-fade {seam_frames[0]}-{seam_frames[-1]}); "
              f"chunked seam max {ch[0]:.1f} mean {ch[1]:.2f} (elsewhere {ch[2]:.2f}), border warping-error "
              f"ratio {rep.ratio_single:.2f}; patch {mid}-{numbers[-1]} first frame max {pa[0]:.1f} mean {pa[1]:.2f} "
              f"(elsewhere {pa[2]:.2f})", flush=True)
    print(f"\nmodel {model}, K = {args.overlap}, F = {args.crossfade}; |Δ| in 8-bit levels against the single render")
    print("| clip | frames | width | chunk seam max | chunk seam mean | elsewhere mean | border ratio | "
          "patch first frame max | patch first frame mean | patch elsewhere mean |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, w, ch, ratio, pa, _ in rows:
        print(f"| {name} | {n} | {w} | {ch[0]:.1f} | {ch[1]:.2f} | {ch[2]:.2f} | {ratio:.2f} | {pa[0]:.1f} | "
              f"{pa[1]:.2f} | {pa[2]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
