"""Helpers of the render tests (imported as ``render_helpers``; the fixtures are in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from media import frame_image  # noqa: E402

FIRST = 1001
COUNT = 24
W, H = 64, 48

# Chunked renders of the test shot (random tiny net, 3 chunks of 8 frames): warm-up, cross-fade,
# and the tolerance against the single-process render (8-bit levels), as measured on this net.
# The stabiliser's memory decays by ~strength per frame, so a short test shot uses a lower strength;
# the defaults for real shots are measured in benchmarks/bench_render.py.
SEAM_STABILIZE = 0.5
SEAM_OVERLAP = 6
SEAM_CROSSFADE = 3
SEAM_MEAN_LEVELS = 2.5  # measured 1.6
SEAM_MAX_LEVELS = 20.0  # measured 12.6


def shot_image(i: int, dtype: type = np.uint16) -> np.ndarray:
    """Frame i of the test shot: the media test pattern with a little noise texture (so the flow
    has something to track), 64×48."""
    base = frame_image(i, W, H, dtype=np.float32)
    rng = np.random.default_rng(7)
    tex = rng.random((H, W + 2 * COUNT, 1), dtype=np.float32)
    tex = tex[:, i : i + W]  # a texture sliding one pixel per frame
    img = np.clip(0.8 * base + 0.2 * tex, 0, 1)
    if np.dtype(dtype) == np.uint16:
        return np.round(img * 65535).astype(np.uint16)
    if np.dtype(dtype) == np.uint8:
        return np.round(img * 255).astype(np.uint8)
    return img.astype(np.float32)


def write_job(folder: Path, *, plates: Path, model: Path, name: str = "shot.toml", **keys: object) -> Path:
    """A job file in ``folder`` (input/model absolute; output relative to the file)."""
    import json

    data: dict[str, object] = {
        "input": str(plates / "sh.%04d.png"),
        "output": "out/sh.%04d.png",
        "model": str(model),
        "seed": 5,
        "stabilize": 0.85,
        "flow": "dis-fast",
        "threads": 1,
        **keys,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if v is not None]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_frames(pattern_folder: Path, glob: str = "sh.*.png") -> dict[int, np.ndarray]:
    from vidstyle.io import read_image

    out = {}
    for p in sorted(pattern_folder.glob(glob)):
        if ".partial." in p.name:
            continue
        out[int(p.name.split(".")[1])] = read_image(p)
    return out


# ------------------------------------------------------------------------------ fault injection
# Chunk functions with render_chunk's signature, for LocalExecutor / RayExecutor(chunk_function=…).
# They are closures (pickled by value), so they also travel to Ray workers, which cannot import
# this module.
def fail_once(*, chunk: int, after: int, marker: Path):
    """Render chunks as usual, but make chunk ``chunk`` fail once, right after frame ``after`` is
    finished (written and journaled); ``marker`` is created so that the retry passes."""

    def render_chunk(job, c, *, on_frame=None, **kwargs):
        from vidstyle.render.chunk import render_chunk as real

        def frame_done(n: int) -> None:
            if on_frame is not None:
                on_frame(n)
            if c.id == chunk and n == after and not marker.exists():
                marker.touch()
                raise RuntimeError(f"injected fault after frame {n} of chunk {c.id}")

        return real(job, c, on_frame=frame_done, **kwargs)

    return render_chunk


def slow_frames(*, delay: float):
    """Render chunks as usual, sleeping ``delay`` seconds after each finished frame (to kill a
    render mid-way)."""

    def render_chunk(job, c, *, on_frame=None, **kwargs):
        import time

        from vidstyle.render.chunk import render_chunk as real

        def frame_done(n: int) -> None:
            if on_frame is not None:
                on_frame(n)
            time.sleep(delay)

        return real(job, c, on_frame=frame_done, **kwargs)

    return render_chunk
