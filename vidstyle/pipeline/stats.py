"""What the runner reports and what it needs from a sink: :class:`ProgressInfo`, :class:`RunStats`,
:class:`SinkLike`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidstyle.frame import Frame

__all__ = ["ProgressInfo", "RunStats", "SinkLike"]


class SinkLike(Protocol):
    """What the runner needs from a sink (``vidstyle.io`` sinks satisfy it)."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> Any: ...

    def abort(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    """Progress of a run, passed to the ``progress`` callback after each frame reaches the sink.

    Attributes:
        frames: frames written so far.
        total: frames expected in all, when known.
        elapsed: seconds since the run started.
        fps: recent throughput (frames per second, smoothed over the last second or so).
        eta: estimated seconds left, when ``total`` is known.
        dropped: frames dropped so far (live mode only).
        latency: seconds from the last frame's ``capture_time`` to the end of its write, when
            the source stamps ``capture_time`` (live sources do).
    """

    frames: int
    total: int | None
    elapsed: float
    fps: float
    eta: float | None
    dropped: int = 0
    latency: float | None = None


@dataclass(slots=True)
class RunStats:
    """What a run did.

    Attributes:
        frames: frames written to the sink.
        seconds: wall-clock duration of the run.
        fps: ``frames / seconds``.
        dropped: frames dropped (live mode, or reported by the source as ``dropped``).
        busy: seconds each part spent working (not waiting): keys ``"source"``, each stage's
            name (``"name#2"`` for a repeated name) and ``"sink"``. The largest is the bottleneck.
        queue_peak: the most frames each queue held at once (``queue_peak[i]`` feeds stage ``i``;
            the last one feeds the sink); never above the ``queue_size`` bound.
        stopped: ``True`` when the run ended because ``stop`` was set.
        output: what the sink's ``close()`` returned (the final path for file sinks).
        warnings: messages the source and sink collected (e.g. a truncated input).
        latency_mean, latency_max: capture → written latency in seconds, over the frames whose
            ``capture_time`` was set (``None`` when none was).
    """

    frames: int
    seconds: float
    fps: float
    dropped: int = 0
    busy: dict[str, float] = field(default_factory=dict)
    queue_peak: list[int] = field(default_factory=list)
    stopped: bool = False
    output: Path | None = None
    warnings: list[str] = field(default_factory=list)
    latency_mean: float | None = None
    latency_max: float | None = None
