"""The live output: preview window, overlay, keys, recording, snapshots and the live statistics.

:class:`LiveOutput` is the sink of the live pipeline; it runs in the caller's thread (the main
thread, where OpenCV's highgui wants to be). For every frame it gets it

1. measures the capture→display latency and the frames dropped since the previous one (gaps in
   ``Frame.index``),
2. shows the frame in the :class:`Preview` window (with the overlay when on) and handles the keys,
3. appends it to the recording, whose timestamps are the capture times (so dropped frames do not
   make the recording play fast).

Keys: ``n``/``→``/``]`` next model, ``p``/``←``/``[`` previous model, ``t`` toggle stabilisation,
``o`` toggle overlay, ``s`` snapshot (PNG of the stylized frame, no overlay), ``q``/``Esc`` quit
(also closing the window).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidstyle.frame import Frame

__all__ = [
    "KEY_HELP",
    "LiveOutput",
    "LiveStatus",
    "Preview",
    "WindowPreview",
    "display_available",
    "draw_overlay",
]

KEY_HELP = "n/p model  t stabilise  o overlay  s snapshot  q quit"

# key codes of waitKeyEx for the arrow keys on the GTK, Qt, Windows and macOS backends
_RIGHT = {65363, 0x1000014, 0x270000, 63235}
_LEFT = {65361, 0x1000012, 0x250000, 63234}
_ESC = 27
KEY_QUIT = -2  # what a Preview returns when its window was closed


def display_available() -> bool:
    """Whether a preview window can be opened: on Linux/BSD an X11 or Wayland display must be
    set (without one, Qt would abort the process); macOS and Windows always have one."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Preview(Protocol):
    """What :class:`LiveOutput` needs from a preview: ``show`` a BGR uint8 image and return the
    key pressed (``-1`` for none, :data:`KEY_QUIT` when the window was closed); ``close``."""

    def show(self, image_bgr: np.ndarray) -> int: ...

    def close(self) -> None: ...


class WindowPreview:
    """An OpenCV highgui window (``cv2.imshow``); create and use it in one thread."""

    def __init__(
        self, *, title: str = "vidstyle live", size: tuple[int, int] | None = None
    ) -> None:
        import cv2

        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | getattr(cv2, "WINDOW_KEEPRATIO", 0))
        if size is not None:
            cv2.resizeWindow(title, int(size[0]), int(size[1]))
        self._shown = False

    def show(self, image_bgr: np.ndarray) -> int:
        import cv2

        if self._shown:
            try:
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    return KEY_QUIT
            except cv2.error:
                return KEY_QUIT
        cv2.imshow(self.title, image_bgr)
        self._shown = True
        return int(cv2.waitKeyEx(1))

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A snapshot of the live statistics (passed to the ``on_status`` callback about once a second).

    Attributes:
        shown: frames displayed/recorded so far.
        dropped: frames captured but never shown (the model was busy), so far.
        elapsed: seconds since the first frame was shown.
        fps: frames shown per second over the last second or so.
        latency: capture→display latency of the last frame, seconds.
        model: name of the model in use (``""`` without a stylizer).
        stabilize: stabilisation strength in use (0 = off).
    """

    shown: int
    dropped: int
    elapsed: float
    fps: float
    latency: float
    model: str = ""
    stabilize: float = 0.0


def draw_overlay(image_bgr: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw ``lines`` of text on a dark band at the top-left of a copy of ``image_bgr``."""
    import cv2

    out = np.ascontiguousarray(image_bgr).copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(1.0, w / 1100.0))
    thick = 1
    line_h = round(22 * scale) + 4
    widths = [
        cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines
    ]
    box_w = min(w, max(widths, default=0) + 12)
    box_h = min(h, line_h * len(lines) + 8)
    band = out[:box_h, :box_w]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(
        np.uint8
    )  # darken: text readable on any picture
    for i, text in enumerate(lines):
        y = line_h * (i + 1) + 1
        cv2.putText(
            out,
            text,
            (6, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class _Counters:
    shown: int = 0
    dropped: int = 0
    last_index: int = -1
    first_time: float | None = None
    last_time: float | None = None
    latencies: list[float] = field(default_factory=list)


class LiveOutput:
    """The live sink (see the module docstring). Satisfies the pipeline's sink protocol.

    Args:
        preview: a :class:`Preview` (e.g. :class:`WindowPreview`) or ``None`` for headless runs.
        recorder: a ``vidstyle.io`` sink (``open_sink(...)``) the shown frames are written to, or
            ``None``. It is closed (finalised under its final name) by :meth:`close` and aborted
            (kept playable under its temporary name) by :meth:`abort`.
        controls: the :class:`~vidstyle.live.stylizer.LiveStylizer` the model/stabilisation keys
            act on (``None``: those keys do nothing).
        stop: set by ``q``/``Esc``/closing the window; the pipeline then ends gracefully.
        overlay: start with the overlay shown.
        snapshot_dir: where ``s`` writes ``vidstyle-snapshot-YYYYmmdd-HHMMSS-N.png``.
        on_status: called with a :class:`LiveStatus` about once a second (headless progress).
        on_message: called with one-line messages (snapshot saved, model switched…).
        keep_latencies: keep at most this many latency samples for the percentiles (the most
            recent ones).
        virtual_camera: a :class:`~vidstyle.live.virtualcam.VirtualCamera` each shown frame is also
            sent to (closed with the output), or ``None``.
    """

    def __init__(
        self,
        *,
        preview: Preview | None = None,
        recorder: Any = None,
        controls: Any = None,
        stop: threading.Event | None = None,
        overlay: bool = True,
        snapshot_dir: str | os.PathLike[str] = ".",
        on_status: Callable[[LiveStatus], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        keep_latencies: int = 1_000_000,
        virtual_camera: Any = None,
    ) -> None:
        self.preview = preview
        self.virtual_camera = virtual_camera
        self.recorder = recorder
        self.controls = controls
        self.stop = stop if stop is not None else threading.Event()
        self.overlay = overlay
        self.snapshot_dir = Path(snapshot_dir)
        self.on_status = on_status
        self.on_message = on_message
        self.snapshots: list[Path] = []
        self.warnings: list[str] = []
        self._c = _Counters()
        self._keep = keep_latencies
        self._recent: deque[float] = deque()
        self._last_status = 0.0
        self._last_image: np.ndarray | None = None
        self._quit_reason = ""

    # ------------------------------------------------------------------------------ stats
    @property
    def shown(self) -> int:
        return self._c.shown

    @property
    def dropped(self) -> int:
        return self._c.dropped

    @property
    def latencies(self) -> list[float]:
        """Capture→display latency of each frame shown, seconds (oldest first)."""
        return list(self._c.latencies)

    @property
    def quit_reason(self) -> str:
        """``"key"`` or ``"window"`` when the user quit from the preview, else ``""``."""
        return self._quit_reason

    def _fps(self, now: float) -> float:
        recent = self._recent
        recent.append(now)
        while len(recent) > 2 and now - recent[0] > 1.0:
            recent.popleft()
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def status(self, now: float | None = None) -> LiveStatus:
        c = self._c
        now = time.perf_counter() if now is None else now
        recent = self._recent
        span = (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
        return LiveStatus(
            shown=c.shown,
            dropped=c.dropped,
            elapsed=(now - c.first_time) if c.first_time is not None else 0.0,
            fps=(len(recent) - 1) / span if span > 0 else 0.0,
            latency=c.latencies[-1] if c.latencies else float("nan"),
            model=getattr(self.controls, "model_name", "")
            if self.controls is not None
            else "",
            stabilize=float(getattr(self.controls, "strength", 0.0))
            if self.controls is not None
            else 0.0,
        )

    # ------------------------------------------------------------------------------ sink
    def write(self, frame: Frame) -> None:
        c = self._c
        image = frame.stylized if frame.stylized is not None else frame.image
        if frame.index > c.last_index:
            c.dropped += frame.index - c.last_index - 1
        c.last_index = frame.index
        if self.preview is not None:
            bgr = np.ascontiguousarray(image[:, :, ::-1])
            if self.overlay:
                bgr = draw_overlay(bgr, self._overlay_lines(frame))
            key = self.preview.show(bgr)
        else:
            key = -1
        now = time.perf_counter()
        latency = (
            now - frame.capture_time if frame.capture_time is not None else float("nan")
        )
        c.latencies.append(latency)
        if len(c.latencies) > self._keep:
            del c.latencies[: len(c.latencies) - self._keep]
        c.shown += 1
        if c.first_time is None:
            c.first_time = now
        c.last_time = now
        self._fps(now)
        self._last_image = image
        if key != -1:
            self.handle_key(key)
        if self.recorder is not None:
            self.recorder.write(frame)
        if self.virtual_camera is not None:
            self.virtual_camera.send(image)
        if self.on_status is not None and now - self._last_status >= 1.0:
            self._last_status = now
            self.on_status(self.status(now))

    def _overlay_lines(self, frame: Frame) -> list[str]:
        c = self._c
        st = self.status()
        lat = c.latencies[-1] * 1000 if c.latencies else float("nan")
        total = c.shown + c.dropped
        rate = 100.0 * c.dropped / total if total else 0.0
        lines = [
            f"{st.fps:4.1f} fps   latency {lat:4.0f} ms   dropped {c.dropped} ({rate:.0f}%)"
        ]
        if self.controls is not None:
            stab = (
                f"stabilise {st.stabilize:.2f}" if st.stabilize > 0 else "stabilise off"
            )
            lines.append(f"{st.model}   {stab}")
            notice = getattr(self.controls, "notice", "")
            if notice:
                lines.append(notice[:80])
        if self.recorder is not None:
            lines.append(f"REC {getattr(self.recorder, 'final_path', '')}")
        lines.append(KEY_HELP)
        return lines

    def handle_key(self, key: int) -> None:
        """Act on one key code (as returned by ``cv2.waitKeyEx``)."""
        if key == KEY_QUIT:
            self._quit("window")
            return
        if key in _RIGHT or key in _LEFT:
            ch = ""
        else:
            low = key & 0xFFFF  # some backends add modifier flags above 16 bits
            ch = chr(low).lower() if 32 <= low < 127 else ""
        if key == _ESC or ch == "q":
            self._quit("key")
        elif ch in ("n", "]") or key in _RIGHT:
            if self.controls is not None:
                self.controls.next_model(1)
                self._message(f"model: {self._wanted_model()}")
        elif ch in ("p", "[") or key in _LEFT:
            if self.controls is not None:
                self.controls.next_model(-1)
                self._message(f"model: {self._wanted_model()}")
        elif ch == "t":
            if self.controls is not None:
                self.controls.toggle_stabilize()
                self._message(
                    "stabilisation " + ("on" if self.controls.stabilizing else "off")
                )
        elif ch == "o":
            self.overlay = not self.overlay
        elif ch == "s":
            self.snapshot()

    def _wanted_model(self) -> str:
        names = getattr(self.controls, "model_names", None)
        wanted = getattr(self.controls, "_wanted", None)
        if names and isinstance(wanted, int):
            return names[wanted]
        return getattr(self.controls, "model_name", "")

    def _quit(self, reason: str) -> None:
        if not self._quit_reason:
            self._quit_reason = reason
        self.stop.set()

    def _message(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)

    def snapshot(self) -> Path | None:
        """Save the last frame shown (stylized, without overlay) as a PNG; returns its path."""
        if self._last_image is None:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = len(self.snapshots) + 1
        path = self.snapshot_dir / f"vidstyle-snapshot-{stamp}-{n:03d}.png"
        image = self._last_image
        if image.dtype != np.uint8:
            from vidstyle.frame import from_float32, to_float32

            image = from_float32(to_float32(image), np.uint8)
        from vidstyle.errors import OutputError
        from vidstyle.io import write_image_atomic

        try:
            write_image_atomic(path, np.ascontiguousarray(image))
        except OutputError:
            self.warnings.append(f"could not write the snapshot {path}")
            self._message(f"could not write the snapshot {path}")
            return None
        self.snapshots.append(path)
        self._message(f"snapshot saved: {path}")
        return path

    def close(self) -> Path | None:
        """End of the run: finalise the recording (returns its final path) and close the window."""
        try:
            if self.recorder is not None:
                try:
                    return self.recorder.close()
                finally:
                    self.warnings.extend(getattr(self.recorder, "warnings", []))
            return None
        finally:
            self._close_preview()

    def abort(self) -> Path | None:
        """Error or hard interrupt: keep what was recorded, playable, under its temporary name."""
        try:
            if self.recorder is not None:
                return self.recorder.abort()
            return None
        finally:
            self._close_preview()

    def _close_preview(self) -> None:
        try:
            if self.preview is not None:
                try:
                    self.preview.close()
                finally:
                    self.preview = None
        finally:
            if self.virtual_camera is not None:
                camera, self.virtual_camera = self.virtual_camera, None
                camera.close()

    # ------------------------------------------------------------------------------ summary
    def summary(self) -> dict[str, float]:
        c = self._c
        lat = [x for x in c.latencies if not math.isnan(x)]
        seconds = (
            (c.last_time - c.first_time)
            if (c.first_time is not None and c.last_time is not None)
            else 0.0
        )
        return {
            "shown": float(c.shown),
            "dropped": float(c.dropped),
            "seconds": seconds,
            "fps": (c.shown - 1) / seconds if seconds > 0 and c.shown > 1 else 0.0,
            "latency_p50": _percentile(lat, 50),
            "latency_p95": _percentile(lat, 95),
            "latency_max": max(lat) if lat else float("nan"),
        }
