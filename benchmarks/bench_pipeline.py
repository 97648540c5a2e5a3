"""Feed-forward speed: each model alone vs the whole pipeline, GFLOP per frame and compute floor.

For each frame size and model it measures, in one run on this machine:

* **GFLOP/frame**: the network's FLOPs on one frame, counted by ``torch.utils.flop_counter``
  (convolutions and matrix products; 1 multiply-add = 2 FLOP).
* **conv peak**: the best GFLOP/s of a dense 3×3 conv2d microbenchmark (128→128 channels at ¼ of
  the frame size — the residual blocks that dominate the full net) measured in this run; the
  **floor** is GFLOP/frame ÷ peak, the time a frame would take if every FLOP ran at that speed.
  **Executed GFLOP** counts the inference form the stylizer actually runs (``fuse_for_inference``:
  the up-blocks as 2×2 phase convs skip the zero taps, so it is lower for the pyramid nets); the
  last column is the time ÷ that smaller floor.
* **model alone**: frames already in memory through :class:`FeedForwardStage` (uint8 → tensor →
  network → uint8), steady state after warm-up frames.
* **pipeline**: ``vidstyle.stylize_video`` from an H.264 file to an H.264 file (decode + stylize +
  encode with the default settings: libx264 CRF 18 preset medium, audio none), per-frame
  stabilisation off, steady state from the progress callback; also each part's busy time.
* **malloc**: the full net at the largest size in child processes (the raw network, no stage, run
  in a worker thread as the pipeline runs it), plain glibc vs the mmap threshold alone vs mmap and
  trim thresholds (the earlier CLI tunable) vs the ``GLIBC_TUNABLES`` malloc tunable the CLI sets by
  re-executing itself (also no mmap and one arena) vs ``mallopt`` at run time (what
  ``FeedForwardStage`` does on CPU), with the system CPU time and page faults per frame.

Models: ``tiny`` and ``full`` with random weights (speed does not depend on the values) and
``engstrom2016`` from ``../shared/weights/engstrom2016_udnie.safetensors`` (skipped when absent).

Usage::

    python benchmarks/bench_pipeline.py                      # all sizes and models (~5-10 min on 2 cores)
    python benchmarks/bench_pipeline.py --sizes 640x360 --models tiny --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ENGSTROM = SHARED / "weights" / "engstrom2016_udnie.safetensors"
sys.path.insert(0, str(REPO))
from vidstyle.runtime import _TUNABLE as TUNABLE


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


# ------------------------------------------------------------------------------------------------
# models, inputs
# ------------------------------------------------------------------------------------------------
def model_file(name: str, folder: Path, engstrom: str = str(ENGSTROM)) -> Path | None:
    """A model file for ``name``: random weights for tiny/full (and for engstrom2016 when
    ``engstrom`` is ``"random"``), else the given engstrom2016 weights (``None`` if missing)."""
    import torch

    from vidstyle.nets.engstrom import Engstrom2016Net
    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    if name == "engstrom2016" and engstrom != "random":
        return Path(engstrom) if Path(engstrom).is_file() else None
    path = folder / f"bench_{name}.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        net = Engstrom2016Net() if name == "engstrom2016" else TransformerNet(config=name)
        save_model(path, net=net, name=f"bench_{name}", style="random")
    return path


def make_clip(path: Path, *, width: int, height: int, frames: int, fps: int = 30) -> Path:
    """An H.264 file of moving test-pattern frames (lavfi testsrc2), made once per size."""
    import av

    with av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi") as src, av.open(str(path), "w") as dst:
        out = dst.add_stream("libx264", rate=fps)
        out.width, out.height, out.pix_fmt = width, height, "yuv420p"
        out.options = {"preset": "fast", "crf": "18"}
        for n, frame in enumerate(src.decode(video=0)):
            if n >= frames:
                break
            frame.pts = n
            frame.time_base = Fraction(1, fps)
            for p in out.encode(frame.reformat(format="yuv420p")):
                dst.mux(p)
        for p in out.encode():
            dst.mux(p)
    return path


def decoded_frames(path: Path, n: int) -> list:
    import numpy as np

    from vidstyle.io import open_source

    images = []
    with open_source(path) as src:
        for f in src:
            images.append(np.ascontiguousarray(f.image))
            if len(images) >= n:
                break
    return images


# ------------------------------------------------------------------------------------------------
# measurements
# ------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def conv_peak(width: int, height: int, device: str, seconds: float = 1.5) -> float:
    """Best GFLOP/s of dense 3×3 convs typical of the nets at this frame size."""
    import torch
    import torch.nn.functional as F

    best = 0.0
    for c, scale in ((128, 4), (64, 2)):
        h, w = height // scale, width // scale
        for channels_last in (False, True):
            x = torch.randn(1, c, h, w, device=device)
            k = torch.randn(c, c, 3, 3, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                k = k.contiguous(memory_format=torch.channels_last)
            flop = 2.0 * c * c * 9 * h * w
            with torch.inference_mode():
                for _ in range(2):
                    F.conv2d(x, k, padding=1)
                sync(device)
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds / 4:
                    F.conv2d(x, k, padding=1)
                    n += 1
                sync(device)
                dt = (time.perf_counter() - t0) / n
            best = max(best, flop / dt / 1e9)
    return best


def gflop_per_frame(model_path: Path, width: int, height: int, *, executed: bool = False) -> float:
    """The network's GFLOP on one frame; ``executed``: of the inference form the stylizer runs
    (:func:`vidstyle.nets.fused.fuse_for_inference`: its 2×2 phase up-convs skip the trained
    kernels' zero taps, its space-to-depth head adds some)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vidstyle.nets.registry import load_model
    from vidstyle.stylize.feedforward import FeedForwardStylizer

    model = FeedForwardStylizer(model=model_path, device="cpu").model if executed else load_model(model_path)
    x = torch.rand(1, 3, height, width)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


VARIANTS = {
    "fp32": {},
    "unfused": {"fuse": False},
    "compile": {"compile": True},
    "bf16": {"precision": "bfloat16"},
    "bf16+compile": {"precision": "bfloat16", "compile": True},
    "stab": {"stabilize": 0.85},
    "stab-resample": {"stabilize": 0.85, "stabilizer": "resample"},  # issue 16's resample-once stabiliser
    # the resample stabiliser with the flow that meets issue 16's quality targets on every clip/model pair
    "stab-resample-medium": {"stabilize": 0.85, "stabilizer": "resample", "flow": "dis-medium"},
    "bf16+stab": {"precision": "bfloat16", "stabilize": 0.85},
    "t1": {"threads": 1},
    "stab+t1": {"stabilize": 0.85, "threads": 1},
    # the stabilised pipeline's earlier layouts, to measure what each step of the current one brings:
    "stab-inline": {"stabilize": 0.85, "_layout": "inline"},  # the stabiliser inside the stylize stage
    "stab-fair": {"stabilize": 0.85, "_layout": "fair"},  # its own stage, helpers at the normal priority
}


def make_stage(model_path: Path, *, device: str, variant: str):
    from vidstyle.runtime import setup
    from vidstyle.stylize.feedforward import FeedForwardStage

    options = {"stabilize": 0.0, **VARIANTS[variant]}
    options.pop("_layout", None)
    setup(device=device, threads=options.pop("threads", None))  # the process-wide part, as build_stages does
    return FeedForwardStage(model=model_path, device=device, **options)


def make_stages(model_path: Path, *, device: str, variant: str) -> list:
    """The stylize stage alone, or for a stabilising variant what 'vidstyle stylize' runs
    (:func:`vidstyle.api.build_stages`: flow, stylize and, on the CPU, stabilise); ``_layout`` rebuilds
    the earlier layouts (``inline``: the stabiliser inside the stylize stage; ``fair``: helpers at the
    normal priority)."""
    from vidstyle.api import build_stages

    spec = {"stabilize": 0.0, **VARIANTS[variant]}
    if spec["stabilize"] <= 0:
        return [make_stage(model_path, device=device, variant=variant)]
    stages = build_stages(model=model_path, device=device, stabilize=spec["stabilize"], flow=spec.get("flow", "dis-fast"),
                          separate_stabilizer=spec.get("_layout") != "inline",
                          **{k: spec[k] for k in ("compile", "threads", "precision", "stabilizer") if k in spec})
    if spec.get("_layout") == "fair":
        for stage in stages:
            stage.background = False
    return stages


def model_alone(model_path: Path, images: list, *, device: str, warm: int, seconds: float,
                max_frames: int, variant: str = "fp32") -> tuple[float, int]:
    """Steady-state fps of FeedForwardStage on in-memory frames; returns (fps, frames timed)."""
    from vidstyle.frame import Frame

    stages = make_stages(model_path, device=device, variant=variant)

    def run(frame: Frame) -> None:
        frames = [frame]
        for stage in stages:
            frames = [out for f in frames for out in stage.process(f)]

    try:
        for i in range(warm):
            run(Frame(index=i, image=images[i % len(images)]))
        sync(device)
        n, t0 = 0, time.perf_counter()
        while n < 3 or (time.perf_counter() - t0 < seconds and n < max_frames):
            run(Frame(index=warm + n, image=images[n % len(images)]))
            n += 1
        sync(device)
        return n / (time.perf_counter() - t0), n
    finally:
        for stage in stages:
            stage.close()


def pipeline(model_path: Path, clip: Path, out: Path, *, device: str, warm: int,
             preset: str | None = None, variant: str = "fp32") -> tuple[float, dict[str, float], int]:
    """Steady-state fps of decode + stylize + encode (file to file); returns (fps, busy per frame, frames)."""
    import vidstyle

    stamps: list[float] = []
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    stats = vidstyle.stylize_video(
        clip, out, device=device, overwrite=True, preset=preset,
        stages=make_stages(model_path, device=device, variant=variant),
        progress=lambda info: stamps.append(time.perf_counter()),
    )
    n = len(stamps) - warm
    fps = (n - 1) / (stamps[-1] - stamps[warm]) if n > 1 else stats.fps
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    busy = {k: v / stats.frames for k, v in stats.busy.items()}
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    busy["_process"] = {  # the whole run (warm-up included): CPU per frame, cores kept busy, context switches
        "cpu_ms": 1e3 * cpu / stats.frames, "sys_ms": 1e3 * (r1.ru_stime - r0.ru_stime) / stats.frames,
        "cores": cpu / (w1 - w0), "vcsw": (r1.ru_nvcsw - r0.ru_nvcsw) / stats.frames,
    }
    return fps, busy, stats.frames


def bf16_error(images: list, *, device: str) -> dict[str, float]:
    """8-bit output levels between float32 and bfloat16 runs of the default shipped model."""
    import numpy as np

    from vidstyle.nets.registry import DEFAULT_MODEL
    from vidstyle.stylize.feedforward import FeedForwardStylizer, images_to_batch

    outs = []
    for precision in ("float32", "bfloat16"):
        stylizer = FeedForwardStylizer(model=DEFAULT_MODEL, device=device, precision=precision)
        outs.append(np.concatenate([
            (stylizer(images_to_batch([im], device=stylizer.device)).cpu().numpy() * 255).round()
            for im in images[:8]
        ]))
    d = np.abs(outs[0] - outs[1])
    return {"model": DEFAULT_MODEL, "mean": float(d.mean()), "p99": float(np.percentile(d, 99)), "max": float(d.max())}


# ------------------------------------------------------------------------------------------------
# malloc probe (child process)
# ------------------------------------------------------------------------------------------------
def malloc_probe(model_path: str, width: int, height: int, mallopt: bool, seconds: float) -> dict[str, float]:
    import torch

    from vidstyle.nets.registry import load_model
    from vidstyle.runtime import default_threads, tune_malloc

    torch.set_num_threads(default_threads())
    if mallopt:
        tune_malloc()
    model = load_model(model_path)
    x = torch.rand(1, 3, height, width)
    result: dict[str, object] = {}

    def work() -> None:  # in a worker thread, as the pipeline's stylize stage runs it
        with torch.inference_mode():
            model(x)
            result["r0"] = resource.getrusage(resource.RUSAGE_SELF)
            n, t0 = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - t0 < seconds:
                model(x)
                n += 1
            result["dt"], result["n"] = time.perf_counter() - t0, n
            result["r1"] = resource.getrusage(resource.RUSAGE_SELF)

    import threading

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    r0, r1, n, dt = result["r0"], result["r1"], result["n"], result["dt"]
    return {
        "fps": n / dt,
        "sys_per_frame": (r1.ru_stime - r0.ru_stime) / n,
        "user_per_frame": (r1.ru_utime - r0.ru_utime) / n,
        "minflt_per_frame": (r1.ru_minflt - r0.ru_minflt) / n,
    }


def run_probe(model_path: Path, width: int, height: int, variant: str, seconds: float) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["VIDSTYLE_NO_REEXEC"] = "1"
    if variant == "tunable":
        env["GLIBC_TUNABLES"] = TUNABLE
    elif variant == "threshold":  # the first version of the tunable: mmap threshold only
        env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=4294967296"
    elif variant == "threshold+trim":  # the second version: no arena limit, mmap still allowed
        env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"
    args = [sys.executable, __file__, "--probe", str(model_path), f"{width}x{height}", "--seconds", str(seconds)]
    if variant == "mallopt":
        args.append("--mallopt")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="640x360,1280x720")
    ap.add_argument("--models", default="tiny,full,engstrom2016")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", default="fp32",
                    help=f"comma-separated ways to run each model: {', '.join(VARIANTS)} (default fp32: "
                         "fused, float32, eager — what 'vidstyle stylize' does by default)")
    ap.add_argument("--seconds", type=float, default=6.0, help="time budget of each model-alone measurement")
    ap.add_argument("--warm", type=int, default=2, help="warm-up frames before timing")
    ap.add_argument("--max-frames", type=int, default=150)
    ap.add_argument("--no-malloc", action="store_true", help="skip the malloc comparison")
    ap.add_argument("--preset", default=None, help="x264 preset of the pipeline's encoder (default: medium)")
    ap.add_argument("--engstrom", default=str(ENGSTROM),
                    help="engstrom2016 weights file, or 'random' (same speed; for machines without ../shared)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--probe", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--mallopt", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.probe:
        w, h = _size(args.probe[1])
        print(json.dumps(malloc_probe(args.probe[0], w, h, args.mallopt, args.seconds)))
        return

    from vidstyle.runtime import reexec_with_malloc_tunable

    reexec_with_malloc_tunable()  # like the CLI: time what users get
    import av
    import torch

    sizes = [_size(s) for s in args.sizes.split(",") if s]
    names = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidstyle-bench-") as tmp_:
        tmp = Path(tmp_)
        for width, height in sizes:
            peak = conv_peak(width, height, args.device)
            print(f"# {width}x{height}: conv peak {peak:.1f} GFLOP/s", file=sys.stderr, flush=True)
            clip = make_clip(tmp / f"in_{width}x{height}.mp4", width=width, height=height, frames=16)
            images = decoded_frames(clip, 16)
            for name, variant in [(m, v) for m in names for v in variants]:
                path = model_file(name, tmp, args.engstrom)
                if path is None:
                    print(f"# {name}: weights not found at {ENGSTROM}; skipped", file=sys.stderr)
                    continue
                g = gflop_per_frame(path, width, height)
                g_run = gflop_per_frame(path, width, height, executed=True)
                floor = g / peak
                alone, n = model_alone(path, images, device=args.device, warm=args.warm, seconds=args.seconds,
                                       max_frames=args.max_frames, variant=variant)
                n_pipe = min(max(n, 8), args.max_frames)
                short = tmp / f"in_{width}x{height}_{n_pipe}.mp4"
                if not short.exists():
                    make_clip(short, width=width, height=height, frames=n_pipe + args.warm)
                pipe, busy, frames = pipeline(path, short, tmp / "out.mp4", device=args.device, warm=args.warm,
                                              preset=args.preset, variant=variant)
                row = {
                    "size": f"{width}x{height}", "model": name if variant == "fp32" else f"{name} [{variant}]",
                    "variant": variant, "gflop": g, "gflop_executed": g_run, "peak_gflops": peak,
                    "floor_ms": floor * 1e3, "floor_fps": 1 / floor, "alone_fps": alone, "pipeline_fps": pipe,
                    "pipeline_vs_alone": pipe / alone, "alone_vs_floor": (1 / alone) / floor,
                    "alone_vs_executed_floor": (1 / alone) / (g_run / peak),
                    "busy_ms": {k: v * 1e3 for k, v in busy.items() if k != "_process"}, "process": busy["_process"],
                    "frames_alone": n, "frames_pipeline": frames,
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        accuracy = None
        if any("bf16" in v for v in variants):
            accuracy = bf16_error(decoded_frames(make_clip(tmp / "acc.mp4", width=sizes[0][0], height=sizes[0][1],
                                                           frames=8), 8), device=args.device)
        malloc = []
        if not args.no_malloc and args.device == "cpu":
            width, height = sizes[-1]
            name = "full" if "full" in names else names[-1]
            path = model_file(name, tmp, args.engstrom)
            assert path is not None
            for variant in ("plain", "threshold", "threshold+trim", "tunable", "mallopt"):
                r = run_probe(path, width, height, variant, max(3.0, args.seconds / 2))
                r.update(variant=variant, model=name, size=f"{width}x{height}")
                malloc.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"({len(os.sched_getaffinity(0))} usable), torch {torch.__version__}, av {av.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}, encoder preset {args.preset or 'medium'}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, malloc tunable "
          f"{'on' if 'mmap_threshold' in os.environ.get('GLIBC_TUNABLES', '') else 'off'}")
    print(f"Command: python benchmarks/bench_pipeline.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| size | model | GFLOP/frame | conv peak GFLOP/s | floor fps | model alone fps | pipeline fps "
          "| pipeline ÷ alone | alone time ÷ floor | executed GFLOP | alone ÷ executed floor "
          "| busy ms/frame: decode / stylize / encode |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        b = r["busy_ms"]
        flow_note = (f" (flow {b['flow']:.1f}" + (f", stabilise {b['stabilize']:.1f}" if "stabilize" in b else "") + ")"
                     if "flow" in b else "")
        print(f"| {r['size']} | {r['model']} | {r['gflop']:.2f} | {r['peak_gflops']:.1f} | {r['floor_fps']:.2f} "
              f"| {r['alone_fps']:.2f} | {r['pipeline_fps']:.2f} | {r['pipeline_vs_alone']:.2f} "
              f"| {r['alone_vs_floor']:.2f} | {r['gflop_executed']:.2f} | {r['alone_vs_executed_floor']:.2f} "
              f"| {b.get('source', 0):.1f} / {b.get('stylize', 0):.1f} / "
              f"{b.get('sink', 0):.1f}{flow_note} |")
    pairs = []  # each stabilised row against the latest per-frame row of the same size, model and precision
    for i, r in enumerate(rows):
        plain = {"stab": "fp32", "bf16+stab": "bf16", "stab+t1": "t1", "stab-inline": "fp32",
                 "stab-fair": "fp32", "stab-resample": "fp32",
                 "stab-resample-medium": "fp32"}.get(r["variant"])
        base = next((q for q in reversed(rows[:i]) if plain and q["variant"] == plain and q["size"] == r["size"]
                     and q["model"].split(" [")[0] == r["model"].split(" [")[0]), None)
        if base is not None:
            pairs.append(f"{r['model']} {r['size']}: {base['pipeline_fps']:.2f} -> {r['pipeline_fps']:.2f} fps "
                         f"= {r['pipeline_fps'] / base['pipeline_fps']:.2f}")
    if pairs:
        print("\nflow + stabilised pipeline ÷ per-frame pipeline (issue target ≥ 0.7): " + "; ".join(pairs))
    print("\nwhole process during each pipeline run, per frame: " + "; ".join(
        f"{r['model']} {r['size']}: CPU {r['process']['cpu_ms']:.1f} ms (system {r['process']['sys_ms']:.1f}), "
        f"{r['process']['cores']:.2f} cores busy, {r['process']['vcsw']:.0f} voluntary context switches"
        for r in rows))
    if accuracy:
        print(f"\nbfloat16 vs float32, shipped model {accuracy['model']} on 8 test frames: |difference| in 8-bit "
              f"levels mean {accuracy['mean']:.2f}, 99th percentile {accuracy['p99']:.0f}, max {accuracy['max']:.0f}")
    if malloc:
        base = malloc[0]["fps"]
        print()
        print("| malloc setting | model, size | fps | × plain | system CPU s/frame | user CPU s/frame | minor faults/frame |")
        print("|---|---|---:|---:|---:|---:|---:|")
        labels = {"plain": "plain glibc", "threshold": "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 only",
                  "threshold+trim": "mmap and trim thresholds (the earlier CLI tunable)",
                  "tunable": f"GLIBC_TUNABLES={TUNABLE} (CLI)",
                  "mallopt": "mallopt at run time (library)"}
        for r in malloc:
            print(f"| {labels[r['variant']]} | {r['model']}, {r['size']} | {r['fps']:.2f} | {r['fps'] / base:.2f} "
                  f"| {r['sys_per_frame']:.3f} | {r['user_per_frame']:.3f} | {r['minflt_per_frame']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "malloc": malloc, "bf16_error": accuracy}, indent=2))


if __name__ == "__main__":
    main()
