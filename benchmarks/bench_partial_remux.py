"""What a playable partial costs: an MP4/MOV written through a Matroska partial and remuxed at the end,
against the same frames written directly into the final container (``playable_partial=False``).

For each case it encodes the same frames both ways (interleaved, best of ``--repeats``) and reports

* ``direct`` — seconds to encode and write the final container directly;
* ``via mkv`` — seconds to encode into ``NAME.partial.mkv`` and remux into the final container;
* ``remux`` — of which the remux alone (stream copy, no decoding or encoding);
* ``ratio`` — via mkv ÷ direct (the cost of the feature; the floor is 1.0), and remux ÷ direct.

The frames are made before timing (no decoding in the timed part). Run on a quiet machine:

    python benchmarks/bench_partial_remux.py                     # 1920×1080, 240 frames, h264 + prores
    python benchmarks/bench_partial_remux.py --size 1280x720 --frames 120 --codecs h264 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.frame import Frame  # noqa: E402
from vidstyle.io import SourceInfo, open_sink  # noqa: E402
from vidstyle.io import encode as encode_module  # noqa: E402

CASES = {"h264": (".mp4", {"codec": "h264", "preset": "veryfast"}), "prores": (".mov", {"codec": "prores"}),
         "hevc": (".mp4", {"codec": "hevc", "preset": "ultrafast"})}


def make_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], -1)
    noise = rng.integers(0, 32, (height, width, 3))
    return [((base + np.roll(noise, 7 * i, axis=1) + 3 * i) % 256).astype(np.uint8) for i in range(n)]


def write(frames: list[np.ndarray], out: Path, *, playable: bool, kw: dict) -> tuple[float, float]:
    """Seconds for the whole write, and of it the remux (0 for a direct write)."""
    h, w = frames[0].shape[:2]
    info = SourceInfo(kind="video", path="memory", width=w, height=h, fps=Fraction(24), time_base=Fraction(1, 24),
                      frame_count=len(frames), duration=None, bit_depth=8, rotation=0, audio_streams=0,
                      start_time=0.0, first_number=None)
    remux_seconds = [0.0]
    real = encode_module.remux

    def timed_remux(*args, **kwargs):
        t = time.perf_counter()
        real(*args, **kwargs)
        remux_seconds[0] += time.perf_counter() - t

    encode_module.remux = timed_remux
    try:
        t0 = time.perf_counter()
        sink = open_sink(out, info=info, overwrite=True, playable_partial=playable, **kw)
        for i, image in enumerate(frames):
            sink.write(Frame(index=i, image=image, pts=i, time_base=Fraction(1, 24)))
        sink.close()
        total = time.perf_counter() - t0
    finally:
        encode_module.remux = real
    out.unlink()
    return total, remux_seconds[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--codecs", default="h264,prores")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder", default=None, help="where the files are written (default: a temporary folder)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = make_frames(args.frames, w, h)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_remux_"))
    print(f"{args.frames} frames {w}x{h}, best of {args.repeats}, files in {folder}")
    print(f"{'codec':8} {'direct s':>9} {'via mkv s':>10} {'remux s':>8} {'via/direct':>11} {'remux/direct':>13}")
    for name in args.codecs.split(","):
        ext, kw = CASES[name]
        direct, via, remux_s = [], [], []
        for _ in range(args.repeats):  # interleaved, so a change of machine load hits both
            direct.append(write(frames, folder / f"d{ext}", playable=False, kw=kw)[0])
            t, r = write(frames, folder / f"r{ext}", playable=True, kw=kw)
            via.append(t)
            remux_s.append(r)
        d, v, r = min(direct), min(via), min(remux_s)
        print(f"{name:8} {d:9.2f} {v:10.2f} {r:8.3f} {v / d:11.3f} {r / d:13.4f}")
    if args.folder is None:
        folder.rmdir()


if __name__ == "__main__":
    main()
