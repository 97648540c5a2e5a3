"""Running a live session: capture → [flow + stylize] → preview/recording, with latest-frame semantics.

::

    capture thread ──(latest-frame slot: 1 frame, older ones dropped)──► stylize thread ──► caller's
    (CameraSource)                                                       (LiveStylizer)     thread
                                                                                            (LiveOutput:
                                                                                             preview,
                                                                                             recording)

With ``pipelined`` a stabilise thread (:class:`~vidstyle.live.stylizer.LiveStabilizer`) comes between the
stylize thread and the caller's.

Built on :func:`vidstyle.pipeline.run_pipeline` in live mode with queues of one frame: the capture
thread never waits (it replaces the frame waiting in the slot and the replaced one is dropped), so
a model slower than the camera drops frames instead of building latency: a frame waits at most
one capture period in the slot, then goes straight through flow and the network. Latency is bounded
by about one frame period plus one processing time, whatever the run length.

Ending: the ``stop`` event (``q``, closing the window, ``duration`` elapsed, or the caller's Ctrl-C
handler) ends the run gracefully: capture stops, the frames in flight are finished, and the
recording is finalised under its final name. So does the end of the stream and the loss of the
camera (:attr:`LiveStats.end_reason` tells which). Any other error (or a ``KeyboardInterrupt``)
aborts: the recording is kept, playable, under its temporary name.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidstyle.errors import CameraError, InvalidInputError
from vidstyle.frame import Frame
from vidstyle.live.output import LiveOutput
from vidstyle.pipeline import Stage, run_pipeline

__all__ = ["LiveStats", "run_session"]


@dataclass(slots=True)
class LiveStats:
    """What a live session did.

    Attributes:
        shown: frames displayed (and recorded).
        captured: frames the input delivered (shown + dropped).
        dropped: frames captured but never shown (the model was busy, or the pacing skipped them).
        seconds: time from the first frame shown to the last.
        fps: sustained output rate, ``(shown − 1) / seconds``.
        latency_p50, latency_p95, latency_max: capture→display latency percentiles, seconds.
        latencies: the latency of every frame shown, in order (seconds).
        end_reason: ``"stopped"`` (quit key, window closed, ``duration`` reached, stop event),
            ``"ended"`` (the stream or file ended) or ``"lost"`` (camera unplugged, stream lost).
        end_message: what the input reported when it was lost (``""`` otherwise).
        quit_reason: ``"key"``/``"window"`` when the user quit from the preview.
        recording: final path of the recording, if any.
        snapshots: PNG files written with the ``s`` key.
        warnings: non-fatal problems met (undecodable packets, snapshot failures…).
        busy: seconds each part worked (see :class:`vidstyle.pipeline.RunStats`).
    """

    shown: int
    captured: int
    dropped: int
    seconds: float
    fps: float
    latency_p50: float
    latency_p95: float
    latency_max: float
    latencies: list[float] = field(default_factory=list)
    end_reason: str = "stopped"
    end_message: str = ""
    quit_reason: str = ""
    recording: Path | None = None
    snapshots: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    busy: dict[str, float] = field(default_factory=dict)

    @property
    def drop_rate(self) -> float:
        """Fraction of captured frames that were dropped."""
        return self.dropped / self.captured if self.captured else 0.0


def run_session(
    *,
    source: Iterable[Frame],
    stages: Sequence[Stage],
    output: LiveOutput,
    stop: threading.Event | None = None,
    duration: float | None = None,
) -> LiveStats:
    """Run a live session of given parts until the stream ends, the camera is lost, ``stop`` is set or
    ``duration`` seconds have passed.

    Args:
        source: a :class:`~vidstyle.live.capture.CameraSource` (or any iterable of frames with
            increasing ``index`` and a ``capture_time``; ``end_reason``/``end_message``/
            ``frames_captured`` attributes are used when present). Iterated in its own thread.
        stages: the processing stages, e.g. ``LiveStylizer(...).stages`` (flow, network and stabiliser in one
            thread, or with ``pipelined`` the stabiliser in the next); each runs in its own thread.
        output: the :class:`~vidstyle.live.output.LiveOutput` (preview/recording), run in the
            caller's thread.

    :func:`vidstyle.live.run_live` opens the camera, builds these parts from the options and calls this.
        stop: the event that ends the session gracefully (default: ``output.stop``; the output
            sets it on ``q``).
        duration: stop after this many seconds (``None``: no limit).

    Returns:
        :class:`LiveStats`.

    Raises:
        CameraError: the input was lost (or ended) before a single frame was shown.
        InvalidOptionError: ``duration`` is not a positive number.
        VidstyleError, StageError, KeyboardInterrupt: as :func:`~vidstyle.pipeline.run_pipeline`
            (the recording is then kept under its temporary name, ``exc.partial_output``).
    """
    from vidstyle.options import OptionValueError

    if duration is not None and not (
        isinstance(duration, (int, float)) and not isinstance(duration, bool)
        and math.isfinite(duration) and duration > 0
    ):
        raise OptionValueError("duration", f"duration must be a positive number of seconds, got {duration!r}")
    if stop is None:
        stop = output.stop
    elif stop is not output.stop:
        output.stop = stop
    timer = threading.Timer(duration, stop.set) if duration is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        try:
            run = run_pipeline(
                source=source,
                stages=stages,
                sink=output,
                queue_size=1,
                stop=stop,
                live=True,
            )
        except InvalidInputError as exc:
            if output.shown == 0:  # the input ended or was lost before the first frame
                reason = getattr(source, "end_message", "") or "no frames arrived"
                name = getattr(getattr(source, "spec", None), "spec", "the input")
                raise CameraError(
                    f"'{name}' stopped before the first frame was shown ({reason}); check the device"
                ) from exc
            raise
    finally:
        if timer is not None:
            timer.cancel()
    summary = output.summary()
    shown = output.shown
    captured = int(getattr(source, "frames_captured", shown + output.dropped))
    dropped = max(output.dropped, captured - shown)
    end_reason = getattr(source, "end_reason", None) or (
        "stopped" if run.stopped else "ended"
    )
    warnings = [*getattr(source, "warnings", []), *(w for st in stages for w in getattr(st, "warnings", [])),
                *run.warnings, *output.warnings]
    return LiveStats(
        shown=shown,
        captured=max(captured, shown + dropped),
        dropped=dropped,
        seconds=summary["seconds"],
        fps=summary["fps"],
        latency_p50=summary["latency_p50"],
        latency_p95=summary["latency_p95"],
        latency_max=summary["latency_max"],
        latencies=output.latencies,
        end_reason=end_reason,
        end_message=str(getattr(source, "end_message", "") or ""),
        quit_reason=output.quit_reason,
        recording=run.output,
        snapshots=list(output.snapshots),
        warnings=list(dict.fromkeys(warnings)),
        busy=dict(run.busy),
    )
