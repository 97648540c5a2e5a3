"""Optical-flow benchmark: average end-point error (EPE) and time per pair of each estimator on the
7 ground-truth pairs of ../shared/data/flow (3 MPI Sintel clean pairs at 1024×436, 4 FlyingChairs
pairs at 512×384), with ratios against the default estimator (DIS fast) measured in the same run.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_flow.py

EPE = mean over all pixels of ‖flow − ground truth‖₂ (px). Time = median over --repeats of the whole
call (input conversion, resizing at scale < 1, flow, upsampling), after one warm-up call per pair.
RAFT rows need the pretrained torchvision weights (torch hub cache or $VIDSTYLE_RAFT_WEIGHTS); without
them they are skipped with a note.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidstyle.errors import WeightsUnavailableError  # noqa: E402
from vidstyle.flow import make_flow_estimator, read_flo  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "flow"
BASELINE = ("dis-fast", 1.0)
CONFIGS = [
    ("dis-ultrafast", 1.0),
    ("dis-fast", 1.0),
    ("dis-medium", 1.0),
    ("dis-ultrafast", 0.5),
    ("dis-fast", 0.5),
    ("dis-medium", 0.5),
    ("farneback", 1.0),
    ("deepflow", 1.0),
    ("raft-small", 1.0),
    ("raft-large", 1.0),
]


def load_pairs(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    import cv2

    def rgb(p: Path) -> np.ndarray:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"cannot read {p}")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    pairs = []
    for gt in sorted(folder.glob("sintel_*_flow_*.flo")):
        scene, frame = gt.stem.split("_flow_")
        n = int(frame)
        a = folder / f"{scene}_clean_frame_{n:04d}.png"
        b = folder / f"{scene}_clean_frame_{n + 1:04d}.png"
        pairs.append((scene, rgb(a), rgb(b), read_flo(gt)))
    for gt in sorted(folder.glob("chairs_*_flow.flo")):
        stem = gt.name[: -len("_flow.flo")]
        pairs.append((stem, rgb(folder / f"{stem}_img0.png"), rgb(folder / f"{stem}_img1.png"), read_flo(gt)))
    return pairs


def epe(flow: np.ndarray, gt: np.ndarray) -> float:
    return float(np.sqrt(((flow.astype(np.float64) - gt) ** 2).sum(0)).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the .flo pairs")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per pair (median); DeepFlow/RAFT use 1")
    ap.add_argument("--only", nargs="*", help="estimator names to run (default: all)")
    ap.add_argument("--device", default=None, help="torch device for RAFT")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no data folder {args.data}; pass --data")
        return 1

    import cv2
    import torch
    import torchvision

    pairs = load_pairs(args.data)
    print(f"{len(pairs)} pairs: " + ", ".join(f"{n} {a.shape[1]}×{a.shape[0]}" for n, a, _, _ in pairs))
    print(
        f"python {platform.python_version()}, opencv {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__}; "
        f"{platform.processor() or platform.machine()}"
    )
    zero = [epe(np.zeros_like(gt), gt) for _, _, _, gt in pairs]
    results: dict[tuple[str, float], tuple[list[float], list[float]]] = {}
    notes = []
    for name, scale in CONFIGS:
        if args.only and name not in args.only:
            continue
        try:
            est = make_flow_estimator(name, scale=scale, device=args.device)
        except WeightsUnavailableError as exc:
            notes.append(f"{name}: skipped — {exc}")
            continue
        repeats = 1 if name.startswith(("deepflow", "raft")) else max(1, args.repeats)
        errors, times = [], []
        for _, a, b, gt in pairs:
            flow = est(a, b)  # warm-up (and the EPE)
            errors.append(epe(flow, gt))
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                est(a, b)
                ts.append(time.perf_counter() - t0)
            times.append(statistics.median(ts) * 1000)
        results[(name, scale)] = (errors, times)
        print(f"  {name} @ {scale}: EPE {np.mean(errors):.3f}, {np.mean(times):.1f} ms/pair", file=sys.stderr)

    n_sintel = sum(1 for n, *_ in pairs if n.startswith("sintel"))
    base = results.get(BASELINE)
    header = (
        f"| estimator | scale | EPE all 7 | EPE Sintel ({n_sintel}) | EPE Chairs ({len(pairs) - n_sintel}) "
        "| ms/pair | EPE ÷ dis-fast | time ÷ dis-fast |"
    )
    print()
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| zero flow (reference) | – | {np.mean(zero):.2f} | {np.mean(zero[:n_sintel]):.2f} | "
        f"{np.mean(zero[n_sintel:]):.2f} | – | – | – |"
    )
    for (name, scale), (errors, times) in results.items():
        e, t = float(np.mean(errors)), float(np.mean(times))
        re = f"{e / np.mean(base[0]):.2f}" if base else "–"
        rt = f"{t / np.mean(base[1]):.2f}" if base else "–"
        print(
            f"| {name} | {scale:g} | {e:.2f} | {np.mean(errors[:n_sintel]):.2f} | {np.mean(errors[n_sintel:]):.2f} "
            f"| {t:.1f} | {re} | {rt} |"
        )
    print()
    print(
        "per pair EPE: "
        + "; ".join(
            f"{name}@{scale:g}: " + " ".join(f"{x:.2f}" for x in errors)
            for (name, scale), (errors, _) in results.items()
        )
    )
    print("pairs: " + " ".join(n for n, *_ in pairs))
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
