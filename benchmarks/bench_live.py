"""Live-mode benchmark: a 640×360 lavfi test source paced to 30 fps (behaving like a camera) through
the live pipeline (capture thread → flow + style network + stabilisation → headless output), for a
fixed wall-clock time per configuration.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_live.py --seconds 60

Per configuration: sustained output fps (frames shown per second), p50/p95/max capture→output latency
(from the moment a frame was due at the source to the moment the output had it), dropped-frame rate,
latency drift (median latency of the last tenth of the run minus that of the first tenth: near 0 when
nothing queues up), the network+flow+stabiliser time per processed frame, and the part of it in the network's
thread (all of it but with ``-pipelined``, where the stabiliser runs beside the next frame). Ratios are against the
``tiny`` row (the tiny model, eager, NCHW, stabilisation 0.85 on dis-ultrafast flow), measured in the
same run; the ``passthrough`` row (no model) shows what capture and output alone cost. Suffixes:
``-fp32`` float32 network (default ``auto``: bfloat16 where the CPU/GPU has it natively),
``-serial``/``-overlap`` flow before the network / in a helper thread while the network runs (the
plain row uses the default: overlapped with 4 cores or more, or when the network leaves a core free),
``-pipelined`` the stabiliser in a stage of its own where the flow overlaps, so the network starts on the
next frame meanwhile (the plain row: in the network's thread), ``-nostab`` no flow and no
stabilisation, ``-cl`` channels-last, ``-compile`` torch.compile, ``-t1`` one torch thread (which
turns the flow helper thread on: network on one core, flow on the other).

Models: the tiny rows use ``benchmarks/baselines/starry_tiny.safetensors`` (the retired tiny model) when it exists, else a random-weights tiny
TransformerNet (speed does not depend on the weights); the full row uses
``../shared/weights/engstrom2016_udnie.safetensors`` when present, else a random "full" TransformerNet.

The ``fast`` rows are the arbitrary-style back end's fast variant (``vidstyle live --style PAINTING --fast``: the
distilled student of ``models/student_relu31.safetensors`` when it exists, else a random-weights student of the same
architecture; the painting ``../shared/data/styles/vangogh_starry_night.jpg`` when present, else a generated one),
with the same suffixes (``fast-fp32``, ``fast-nostab``, ``fast-t1``…). Its targets: ≥ 24 fps, p95 ≤ 80 ms::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_live.py --seconds 30 \
        --configs passthrough,tiny,fast,fast-fp32,fast-nostab
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from vidstyle.frame import Frame
from vidstyle.api import build_live_stylizer
from vidstyle.live import LiveOutput, open_camera, run_session
from vidstyle.options import StylizeOptions, TemporalOptions

SHARED = ROOT.parent / "shared"
CONFIGS = [
    "passthrough",
    "tiny",
    "tiny-serial",
    "tiny-overlap",
    "tiny-pipelined",
    "tiny-nostab",
    "tiny-resample",
    "tiny-cl",
    "tiny-compile",
    "tiny-fp32",
    "tiny-fp32-compile",
    "tiny-halfflow",
    "tiny-fullflow",
    "tiny-t1",
    "full",
    "full-fp32",
    "fast",
    "fast-fp32",
    "fast-nostab",
    "fast-overlap",
    "fast-serial",
    "fast-pipelined",
    "fast-t1",
]
DEFAULT_CONFIGS = [
    "passthrough",
    "tiny",
    "tiny-overlap",
    "tiny-nostab",
    "tiny-cl",
    "tiny-compile",
    "full",
]
BASELINE = "tiny"


class Passthrough:
    """No model: the output is the input (capture + output cost only)."""

    name = "passthrough"

    def process(self, frame: Frame) -> list[Frame]:
        frame.stylized = frame.image
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        pass


def model_paths(tmp: Path) -> dict[str, tuple[Path, str]]:
    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(0)
    shipped = ROOT / "benchmarks" / "baselines" / "starry_tiny.safetensors"  # the retired tiny model
    if shipped.is_file():
        tiny = (shipped, "benchmarks/baselines/starry_tiny")
    else:
        p = tmp / "random_tiny.safetensors"
        save_model(
            p, net=TransformerNet(config="tiny"), name="random_tiny", style="random"
        )
        tiny = (p, "random tiny TransformerNet")
    udnie = SHARED / "weights" / "engstrom2016_udnie.safetensors"
    if udnie.is_file():
        full = (udnie, "engstrom2016_udnie (Johnson-size)")
    else:
        p = tmp / "random_full.safetensors"
        save_model(
            p, net=TransformerNet(config="full"), name="random_full", style="random"
        )
        full = (p, "random full TransformerNet")
    from vidstyle.nets.student import Student, save_student

    shipped_student = ROOT / "models" / "student_relu31.safetensors"
    if shipped_student.is_file():
        fast = (shipped_student, "models/student_relu31 (fast arbitrary-style variant)")
    else:
        p = tmp / "random_student.safetensors"
        save_student(p, student=Student(), vgg_source="random", fingerprint="")
        fast = (p, "random-weights student (fast arbitrary-style variant)")
    return {"tiny": tiny, "full": full, "fast": fast}


def painting(tmp: Path) -> Path:
    """The painting of the fast rows: Starry Night from ../shared, else a generated picture."""
    shared = SHARED / "data" / "styles" / "vangogh_starry_night.jpg"
    if shared.is_file():
        return shared
    import cv2
    import numpy as np

    p = tmp / "painting.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(p), cv2.GaussianBlur((rng.random((384, 512, 3)) * 255).astype(np.uint8), (0, 0), 3))
    return p


def run_config(
    name: str,
    *,
    seconds: float,
    source: str,
    models: dict[str, tuple[Path, str]],
    device: str,
    threads: int | None,
    stabilize: float,
    flow: str,
) -> dict[str, object]:
    with open_camera(source) as cam:
        w, h = cam.size
        if name == "passthrough":
            stage: object = Passthrough()
            label = "no model"
        else:
            kind = "full" if name.startswith("full") else "fast" if name.startswith("fast") else "tiny"
            path, label = models[kind]
            vgg = SHARED / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"  # the painting's statistics
            fast = {"backend": "arbitrary", "fast": True, "style": str(models["painting"][0]), "decoder": str(path),
                    **({"vgg_weights": str(vgg)} if vgg.is_file() else {})} if kind == "fast" else {}
            stage = build_live_stylizer(
                stylize=StylizeOptions(device=device, compile=name.endswith("compile"),
                                       precision="float32" if "-fp32" in name else "auto",
                                       threads=1 if name.endswith("-t1") else threads, **fast),
                temporal=TemporalOptions(stabilize=0.0 if name.endswith("nostab") else stabilize, flow=flow,
                                         stabilizer="resample" if name.endswith("-resample") else "blend"),
                models=None if kind == "fast" else [path],
                channels_last=True if name.endswith("-cl") else None,
                flow_scale=0.5 if name.endswith("halfflow") else 1.0 if name.endswith("fullflow") else None,
                parallel_flow={"overlap": True, "serial": False}.get(name.rsplit("-", 1)[-1]),
                pipelined=name.endswith("-pipelined"),
            )
            t0 = time.perf_counter()
            stage.warmup(width=w, height=h, frames=3)
            label += f"; warm-up {time.perf_counter() - t0:.1f} s"
        stats = run_session(
            source=cam, stages=getattr(stage, "stages", [stage]), output=LiveOutput(), duration=seconds
        )
    lat = stats.latencies
    tenth = max(1, len(lat) // 10)
    network = stats.busy.get("stylize", stats.busy.get("passthrough", 0.0))
    busy = network + stats.busy.get("stabilise", 0.0)
    return {
        "config": name,
        "model": label,
        "seconds": stats.seconds,
        "shown": stats.shown,
        "captured": stats.captured,
        "fps": stats.fps,
        "p50_ms": 1000 * stats.latency_p50,
        "p95_ms": 1000 * stats.latency_p95,
        "max_ms": 1000 * stats.latency_max,
        "drift_ms": 1000
        * (statistics.median(lat[-tenth:]) - statistics.median(lat[:tenth]))
        if lat
        else float("nan"),
        "drop_rate": stats.drop_rate,
        "process_ms": 1000 * busy / max(1, stats.shown),
        "network_ms": 1000 * network / max(1, stats.shown),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="wall-clock seconds per configuration (default 60)",
    )
    ap.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma list from {', '.join(CONFIGS)}",
    )
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: the live default, one fewer than the cores on a CPU)",
    )
    ap.add_argument("--stabilize", type=float, default=0.85)
    ap.add_argument("--flow", default="dis-ultrafast")
    ap.add_argument("--tiny-model", default=None, metavar="PATH",
                    help="the model of the tiny* rows (default: benchmarks/baselines/starry_tiny), e.g. a --size student model")
    ap.add_argument(
        "--json", default=None, metavar="PATH", help="also write the rows as JSON"
    )
    args = ap.parse_args()
    if "mmap_threshold" not in os.environ.get("GLIBC_TUNABLES", ""):
        print(
            "note: GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 is not set (torch is slower without it)"
        )
    source = f"lavfi:testsrc2=size={args.size}:rate={args.fps}"
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = model_paths(Path(tmp))
        models["painting"] = (painting(Path(tmp)), "painting")
        if args.tiny_model:
            models["tiny"] = (Path(args.tiny_model), args.tiny_model)
        for name in configs:
            print(f"running {name} for {args.seconds:.0f} s …", flush=True)
            row = run_config(
                name,
                seconds=args.seconds,
                source=source,
                models=models,
                device=args.device,
                threads=args.threads,
                stabilize=args.stabilize,
                flow=args.flow,
            )
            rows.append(row)
            print(
                f"  {row['fps']:.1f} fps, p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms, "
                f"dropped {100 * row['drop_rate']:.0f}%, {row['process_ms']:.0f} ms/frame ({row['model']})",
                flush=True,
            )
    base = next((r for r in rows if r["config"] == BASELINE), None)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print()
    print(
        f"source {source} (paced), {args.seconds:.0f} s per row, device {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"load average after: {load[0]:.1f}"
    )
    print(
        f"stabilize {args.stabilize} (flow {args.flow}) unless 'nostab'; ratios vs '{BASELINE}'"
    )
    print()
    print(
        "| config | fps | x fps | p50 ms | p95 ms | max ms | drift ms | dropped | process ms/frame | network thread ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['fps'] / base['fps']:.2f}" if base and base["fps"] else "-"
        print(
            f"| {r['config']} | {r['fps']:.1f} | {ratio} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['max_ms']:.0f} | "
            f"{r['drift_ms']:+.0f} | {100 * r['drop_rate']:.0f}% | {r['process_ms']:.1f} | {r['network_ms']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
