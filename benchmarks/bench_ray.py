"""When Ray pays: one shot rendered in a single process and on a local Ray cluster with 1, 2 and 4
workers, and a model of N machines from what those runs measure.

Runs (same shot, same model, same machine, one after the other; wall-clock seconds):

* ``single``: ``vidstyle.render`` in this process, all cores as torch threads (the baseline);
* ``ray W``: on a local Ray cluster with W workers (W chunks, warm-up K, cross-fade F), each worker
  ``cores / W`` threads (at least 1); the Ray start-up (``ray.init`` to the first task) is timed
  separately and reported beside it.

From them (printed with the formula):

* ``c``  — seconds per frame of one single-process frame: ``t_single / T``;
* ``c_w`` — seconds per frame of one worker, from the ``ray W`` run: ``(t_ray − finish) / (T/W + K)``
  (every worker renders its T/W frames plus K warm-up frames, in parallel);
* ``S`` — Ray start-up (cluster connect, worker processes, model load per worker);
* the model for N machines, one worker each with all its cores (``c`` per frame):
  ``t(N) = S + (T/N + K)·c`` for N > 1, speed-up ``T·c / t(N)``, and the shortest shot for which
  Ray pays on N machines: ``T > (S + K·c) / (c·(1 − 1/N))``.

Do not run it on a loaded machine: the numbers are ratios against the single run of the same
invocation and only mean something on a quiet one.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_ray.py \\
        [--frames 96] [--size 640x360] [--model PATH] [--workers 1,2,4] [--shots 240,2000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDSTYLE_SHARED", str(REPO.parent / "shared")))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with


def model_table(*, c: float, S: float, K: int, shots: list[int], machines: list[int]) -> list[str]:
    """The N-machine model as Markdown rows (see the module docstring)."""
    lines = ["| shot (frames) | " + " | ".join(f"N = {n}" for n in machines) + " |",
             "|---:|" + "---:|" * len(machines)]
    for T in shots:
        cells = []
        for n in machines:
            t_n = T * c if n == 1 else S + (T / n + K) * c
            cells.append(f"{T * c / t_n:.2f}×")
        lines.append(f"| {T} | " + " | ".join(cells) + " |")
    pays = ", ".join(f"N = {n}: {math.ceil((S + K * c) / (c * (1 - 1 / n)))}" for n in machines if n > 1)
    lines.append(f"\nRay pays (speed-up > 1) from a shot of: {pays} frames")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--model", default=None, help="default: ../shared/weights/engstrom2016_udnie.safetensors, "
                                                  "else starry_tiny")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--crossfade", type=int, default=None)
    ap.add_argument("--shots", default="240,2000", help="shot lengths of the N-machine model")
    ap.add_argument("--machines", default="1,2,4,8,16")
    ap.add_argument("--work", default="/tmp/vidstyle-bench-ray")
    ap.add_argument("--json", default=None, help="also write the measurements here")
    args = ap.parse_args()

    from bench_render import _job, make_shot

    from vidstyle.render import load_job, render
    from vidstyle.render.job import DEFAULT_CROSSFADE, DEFAULT_OVERLAP
    from vidstyle.runtime import default_threads

    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    plates = work / "plates"
    model = args.model
    if model is None:
        udnie = SHARED / "weights" / "engstrom2016_udnie.safetensors"
        model = str(udnie) if udnie.is_file() else "starry_tiny"
    K = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    F = DEFAULT_CROSSFADE if args.crossfade is None else args.crossfade
    T = args.frames
    what = make_shot(plates, frames=T, width=width, height=height)
    cores = default_threads()
    print(f"shot: {T} frames {width}x{height} 16-bit PNG ({what}); model {model}; K={K}, F={F}")
    print(f"machine: {os.cpu_count()} CPUs, {cores} for this process; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at start")

    t = time.perf_counter()
    render(load_job(_job(work / "single", plates=plates, model=model, threads=cores)))
    t_single = time.perf_counter() - t
    c = t_single / T
    print(f"single ({cores} threads): {t_single:.1f} s = {c:.3f} s/frame  [baseline 1.00×]")
    results: dict[str, object] = {"frames": T, "size": args.size, "model": model, "K": K, "F": F,
                                  "cores": cores, "single": t_single}

    import ray

    rows = [f"| single process | 1 × {cores} threads | {t_single:.1f} | – | 1.00× | – |"]
    S_values = []
    for w in [int(x) for x in args.workers.split(",") if x.strip()]:
        threads = max(1, cores // w)
        t = time.perf_counter()
        ray.init(num_cpus=max(cores, w * threads), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        t_init = time.perf_counter() - t
        t = time.perf_counter()
        render(load_job(_job(work / f"ray{w}", plates=plates, model=model, ray="local", workers=w, threads=threads,
                             overlap=K, crossfade=F)))
        t_ray = time.perf_counter() - t
        ray.shutdown()
        chunk_frames = math.ceil(T / w) + (K if w > 1 else 0)
        c_w = t_ray / chunk_frames
        S_values.append(t_init)
        print(f"ray {w} worker(s) × {threads} thread(s): {t_ray:.1f} s (+{t_init:.1f} s ray.init) -> "
              f"{t_single / t_ray:.2f}× ({t_single / (t_ray + t_init):.2f}× with start-up); "
              f"per worker {c_w:.3f} s/frame over {chunk_frames} frames (incl. warm-up and the worker's start)")
        rows.append(f"| local Ray | {w} × {threads} thread(s) | {t_ray:.1f} | +{t_init:.1f} | "
                    f"{t_single / t_ray:.2f}× | {t_single / (t_ray + t_init):.2f}× |")
        results[f"ray{w}"] = {"seconds": t_ray, "ray_init": t_init, "threads": threads, "c_w": c_w}
    print("\n| run | workers | seconds | Ray start-up (s) | speed-up | with start-up |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))

    # start-up inside the render: the 1-worker Ray run renders the same frames as the single run
    r1 = results.get("ray1")
    S = (r1["seconds"] - t_single) + r1["ray_init"] if isinstance(r1, dict) else (max(S_values) if S_values else 15.0)
    S = max(S, 0.0)
    shots = [int(x) for x in args.shots.split(",") if x.strip()]
    machines = [int(x) for x in args.machines.split(",") if x.strip()]
    print(f"\nmodel for N machines (one Ray worker each, all cores): c = {c:.3f} s/frame, S = {S:.1f} s "
          f"(ray1 − single + ray.init), K = {K}")
    print("t(N) = S + (T/N + K)·c; speed-up = T·c / t(N); Ray pays when T > (S + K·c) / (c·(1 − 1/N))")
    print("\n".join(model_table(c=c, S=S, K=K, shots=shots, machines=machines)))
    results["model"] = {"c": c, "S": S}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
