"""Live mode: real-time stylization of a camera, a network stream or a test source.

>>> from vidstyle.live import open_camera, LiveStylizer, LiveOutput, run_live
>>> with open_camera("lavfi:testsrc2=size=640x360:rate=30") as cam:           # doctest: +SKIP
...     stylizer = LiveStylizer(models=["starry_tiny"], stabilize=0.85)
...     stylizer.warmup(width=cam.size[0], height=cam.size[1])
...     stats = run_live(source=cam, stages=[stylizer], output=LiveOutput(), duration=10)
>>> stats.fps, stats.latency_p95, stats.drop_rate                           # doctest: +SKIP

* :mod:`vidstyle.live.devices`: camera specs (index, ``/dev/video0``, ``FORMAT:NAME``, URL, file)
  and device listing (:func:`list_cameras`).
* :mod:`vidstyle.live.capture`: :class:`CameraSource`, the capture side (paces generators and files
  to real time; wall-clock timestamps; tells a normal end from a lost device).
* :mod:`vidstyle.live.stylizer`: :class:`LiveStylizer`, flow + style network in one thread, with
  models and stabilisation switchable at run time.
* :mod:`vidstyle.live.output`: :class:`LiveOutput` (preview window, overlay, keys, recording,
  snapshots, latency statistics).
* :mod:`vidstyle.live.runner`: :func:`run_live` wires them with latest-frame semantics.
"""

from __future__ import annotations

from vidstyle.live.capture import LIVE_TIME_BASE, CameraSource, open_camera, parse_size
from vidstyle.live.devices import (
    CameraDevice,
    CameraSpec,
    available_cameras_text,
    list_cameras,
    parse_camera,
)
from vidstyle.live.output import (
    KEY_HELP,
    LiveOutput,
    LiveStatus,
    Preview,
    WindowPreview,
    display_available,
    draw_overlay,
)
from vidstyle.live.runner import LiveStats, run_live
from vidstyle.live.stylizer import DEFAULT_LIVE_FLOW, DEFAULT_LIVE_FLOW_SCALE, LiveStylizer

__all__ = [
    "DEFAULT_LIVE_FLOW",
    "DEFAULT_LIVE_FLOW_SCALE",
    "KEY_HELP",
    "LIVE_TIME_BASE",
    "CameraDevice",
    "CameraSource",
    "CameraSpec",
    "LiveOutput",
    "LiveStats",
    "LiveStatus",
    "LiveStylizer",
    "Preview",
    "WindowPreview",
    "available_cameras_text",
    "display_available",
    "draw_overlay",
    "list_cameras",
    "open_camera",
    "parse_camera",
    "parse_size",
    "run_live",
]
