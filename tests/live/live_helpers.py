"""Helpers of the live tests (imported as ``live_helpers``; the fixtures are in conftest.py, which test
modules must not import by name: two conftest modules of different folders would collide)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vidstyle.frame import Frame

#: a small paced test source (a camera at 30 fps); small so that the CPU is not the bottleneck
SRC = "lavfi:testsrc2=size=160x96:rate=30"
PERIOD = 1.0 / 30.0


class SlowStage:
    """A deliberately slow "model": sleeps ``delay`` seconds per frame, outputs the inverted image."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.indices: list[int] = []

    def process(self, frame: Frame) -> list[Frame]:
        time.sleep(self.delay)
        frame.stylized = 255 - frame.image
        self.indices.append(frame.index)
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        pass


class ScriptedPreview:
    """A fake preview window: records what it shows, returns ``keys[n]`` for the n-th frame."""

    def __init__(self, keys: dict[int, int] | None = None) -> None:
        self.keys = dict(keys or {})
        self.shown: list[np.ndarray] = []
        self.closed = False

    def show(self, image_bgr: np.ndarray) -> int:
        self.shown.append(image_bgr.copy())
        return self.keys.get(len(self.shown) - 1, -1)

    def close(self) -> None:
        self.closed = True


def decoded_times(path: Path) -> list[float]:
    """Presentation times (seconds) of every frame of a video file, decoded with PyAV."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * f.time_base) for f in c.decode(s)]
