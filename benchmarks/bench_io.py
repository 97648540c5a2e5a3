#!/usr/bin/env python
"""Media I/O speed: vidstyle.io sources and sinks against raw PyAV, at 640×360 and 1280×720.

    python benchmarks/bench_io.py [--frames 120]

Rows (frames per second, and ratio to the baseline measured in the same run):
* decode: raw PyAV ``container.decode`` (baseline, no pixel conversion) vs ``VideoSource``
  (threaded decode + RGB conversion + Frame) — the cost the pipeline pays to read;
* encode: ``VideoSink`` per codec from RGB frames, vs raw PyAV libx264 from ready-made yuv420p
  frames (baseline: the encoder alone).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidstyle.frame import Frame
from vidstyle.io import open_sink, open_source


def make_clip(path: Path, w: int, h: int, n: int) -> None:
    with open_source(f"lavfi:testsrc2=size={w}x{h}:rate=30", end=f"{n}f") as src:
        with open_sink(path, info=src.info, preset="veryfast", overwrite=True) as sink:
            for f in src:
                sink.write(f)


def bench_decode(path: Path) -> tuple[float, float]:
    t = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n = sum(1 for _ in c.decode(s))
    raw = n / (time.perf_counter() - t)
    t = time.perf_counter()
    with open_source(path) as src:
        n = sum(1 for _ in src)
    ours = n / (time.perf_counter() - t)
    return raw, ours


def bench_encode_raw(frames: list[np.ndarray], out: Path) -> float:
    h, w = frames[0].shape[:2]
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]
    t = time.perf_counter()
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"crf": "18", "preset": "medium"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i, vf in enumerate(yuv):
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return len(frames) / (time.perf_counter() - t)


def bench_encode(frames: list[np.ndarray], info, out: Path, **kw) -> float:
    t = time.perf_counter()
    with open_sink(out, info=info, overwrite=True, **kw) as sink:
        for i, img in enumerate(frames):
            sink.write(Frame(index=i, image=img, pts=i, time_base=Fraction(1, 30)))
    return len(frames) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=120)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, PyAV {av.__version__}, frames={args.frames}")
    print("| size | what | fps | x baseline |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for w, h in [(640, 360), (1280, 720)]:
            clip = tmp / f"clip{w}.mp4"
            make_clip(clip, w, h, args.frames)
            raw, ours = bench_decode(clip)
            print(f"| {w}x{h} | decode: raw PyAV (baseline) | {raw:.0f} | 1.00 |")
            print(f"| {w}x{h} | decode: VideoSource (RGB frames) | {ours:.0f} | {ours / raw:.2f} |")
            with open_source(clip) as src:
                info = src.info
                frames = [f.image for f in src]
            base = bench_encode_raw(frames, tmp / "raw.mp4")
            print(f"| {w}x{h} | encode: raw PyAV libx264 medium from yuv420p (baseline) | {base:.0f} | 1.00 |")
            for label, ext, kw in [
                ("h264 medium (default)", ".mp4", {}),
                ("h264 veryfast", ".mp4", {"preset": "veryfast"}),
                ("hevc medium", ".mp4", {"codec": "hevc"}),
                ("prores hq", ".mov", {"codec": "prores"}),
                ("ffv1", ".mkv", {"codec": "ffv1"}),
                ("vp9", ".webm", {"codec": "vp9"}),
                ("av1 (svt preset 8)", ".mkv", {"codec": "av1"}),
            ]:
                fps = bench_encode(frames, info, tmp / f"o{ext}", **kw)
                print(f"| {w}x{h} | encode: VideoSink {label} | {fps:.0f} | {fps / base:.2f} |")


if __name__ == "__main__":
    main()
