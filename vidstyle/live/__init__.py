"""Live mode: real-time stylization of a camera, a network stream or a test source.

>>> from vidstyle.live import run_live
>>> stats = run_live(camera="lavfi:testsrc2=size=640x360:rate=30", models=["starry_student"],  # doctest: +SKIP
...                  stabilize=0.85, preview=False, duration=10)
>>> stats.fps, stats.latency_p95, stats.drop_rate                                          # doctest: +SKIP

* :mod:`vidstyle.live.app`: :func:`run_live`, the whole of live mode as one call (what
  ``vidstyle live`` runs), from :class:`LiveOptions` and the shared option groups.
* :mod:`vidstyle.live.options`: :class:`LiveOptions` (camera, models, size, recording, virtual
  camera, preview, duration, flow scale...).
* :mod:`vidstyle.live.devices`: camera specs (index, ``/dev/video0``, ``FORMAT:NAME``, URL, file)
  and device listing (:func:`list_cameras`).
* :mod:`vidstyle.live.capture`: :class:`CameraSource`, the capture side (paces generators and files
  to real time; wall-clock timestamps; tells a normal end from a lost device).
* :mod:`vidstyle.live.stylizer`: :class:`LiveStylizer`, flow + style network, with models and
  stabilisation switchable at run time, and :class:`LiveStabilizer`, the stabiliser's own stage when
  pipelined (``LiveStylizer.stages``; built by :func:`vidstyle.api.build_live_stylizer`).
* :mod:`vidstyle.live.output`: :class:`LiveOutput` (preview window, overlay, keys, recording,
  snapshots, latency statistics).
* :mod:`vidstyle.live.runner`: :func:`run_session` wires given parts with latest-frame semantics.
"""

from __future__ import annotations

from vidstyle.live.app import LiveStart, live_models, live_options, run_live
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
from vidstyle.live.options import LIVE_DEFAULTS, LiveOptions
from vidstyle.live.runner import LiveStats, run_session
from vidstyle.live.stylizer import DEFAULT_LIVE_FLOW, DEFAULT_LIVE_FLOW_SCALE, LiveStabilizer, LiveStylizer

__all__ = [
    "DEFAULT_LIVE_FLOW",
    "LIVE_DEFAULTS",
    "DEFAULT_LIVE_FLOW_SCALE",
    "KEY_HELP",
    "LIVE_TIME_BASE",
    "CameraDevice",
    "CameraSource",
    "CameraSpec",
    "LiveOptions",
    "LiveOutput",
    "LiveStart",
    "LiveStats",
    "LiveStabilizer",
    "LiveStatus",
    "LiveStylizer",
    "Preview",
    "WindowPreview",
    "available_cameras_text",
    "display_available",
    "draw_overlay",
    "list_cameras",
    "live_models",
    "live_options",
    "open_camera",
    "parse_camera",
    "parse_size",
    "run_live",
    "run_session",
]
