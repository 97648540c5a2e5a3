"""LiveOutput: keys, overlay, snapshots, dropped-frame counting; display detection."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from live_helpers import ScriptedPreview

from vidstyle.frame import Frame
from vidstyle.live import LiveOutput, display_available, draw_overlay
from vidstyle.live.output import KEY_QUIT


class Controls:
    def __init__(self) -> None:
        self.model_names = ["a", "b"]
        self._wanted = 0
        self.model_name = "a"
        self.steps: list[int] = []
        self.stabilizing = True
        self.strength = 0.85
        self.notice = ""

    def next_model(self, step: int = 1) -> None:
        self.steps.append(step)
        self._wanted = (self._wanted + step) % 2

    def toggle_stabilize(self) -> None:
        self.stabilizing = not self.stabilizing


def _frame(i: int, value: int = 0) -> Frame:
    img = np.full((48, 64, 3), value, np.uint8)
    img[:, :, 0] = np.arange(64, dtype=np.uint8)[None, :] * 3
    f = Frame(index=i, image=img, capture_time=0.0)
    f.stylized = 255 - img
    return f


def test_draw_overlay_draws_only_in_its_band() -> None:
    img = np.full((180, 320, 3), 200, np.uint8)
    out = draw_overlay(img, ["12.0 fps   latency 40 ms", "model"])
    assert out is not img and (img == 200).all()  # a copy
    changed = np.argwhere((out != img).any(axis=2))
    assert len(changed) > 100
    assert changed[:, 0].max() < 90 and changed[:, 1].max() < 320


def test_keys_act_on_controls_overlay_snapshot_and_quit(tmp_path) -> None:
    keys = {0: ord("n"), 1: ord("t"), 2: ord("o"), 3: ord("s"), 4: 65361, 5: ord("Q")}
    preview = ScriptedPreview(keys)
    controls = Controls()
    stop = threading.Event()
    messages: list[str] = []
    out = LiveOutput(
        preview=preview,
        controls=controls,
        stop=stop,
        snapshot_dir=tmp_path / "snaps",
        on_message=messages.append,
    )
    frames = [_frame(i, 10 * i) for i in range(6)]
    for f in frames[:5]:
        out.write(f)
        assert not stop.is_set()
    out.write(frames[5])
    assert stop.is_set() and out.quit_reason == "key"
    assert controls.steps == [1, -1]  # n, then left arrow
    assert not controls.stabilizing
    # overlay on for frames 0-2, off from frame 3 ('o' pressed on frame 2): shown exactly as stylized
    assert not np.array_equal(preview.shown[0], frames[0].stylized[:, :, ::-1])
    assert np.array_equal(preview.shown[3], frames[3].stylized[:, :, ::-1])
    (snap,) = out.snapshots
    saved = cv2.imread(str(snap))[:, :, ::-1]
    assert np.array_equal(
        saved, frames[3].stylized
    )  # the stylized frame, without the overlay
    assert any("snapshot saved" in m for m in messages) and any(
        "model: b" in m for m in messages
    )
    out.close()
    assert preview.closed


def test_window_closed_quits() -> None:
    out = LiveOutput(preview=ScriptedPreview({0: KEY_QUIT}))
    out.write(_frame(0))
    assert out.stop.is_set() and out.quit_reason == "window"


def test_escape_quits_and_unknown_keys_do_nothing() -> None:
    out = LiveOutput(preview=ScriptedPreview({0: ord("x"), 1: 27}))
    out.write(_frame(0))
    assert not out.stop.is_set()
    out.write(_frame(1))
    assert out.stop.is_set()


def test_dropped_frames_are_the_index_gaps() -> None:
    out = LiveOutput()
    for i in (0, 1, 4, 5, 9):
        out.write(_frame(i))
    assert out.shown == 5 and out.dropped == 5  # 2, 3 and 6, 7, 8
    s = out.summary()
    assert s["shown"] == 5 and s["dropped"] == 5


def test_headless_status_callback() -> None:
    seen = []
    out = LiveOutput(on_status=seen.append)
    out.write(_frame(0))
    assert len(seen) == 1 and seen[0].shown == 1 and seen[0].dropped == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"DISPLAY": ":0"}, True), ({"WAYLAND_DISPLAY": "wayland-0"}, True)],
)
def test_display_available(monkeypatch, env, expected) -> None:
    import sys

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert display_available() is expected
