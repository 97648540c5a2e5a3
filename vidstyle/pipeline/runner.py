"""The streaming runner: source → stages → sink over bounded queues, one thread per stage.

::

    source thread ──q0──► stage 0 thread ──q1──► … ──qN──► sink (caller's thread)

* **Back-pressure and bounded memory.** Every queue holds at most ``queue_size`` frames, so at any
  time at most ``(len(stages) + 1) · queue_size`` frames wait in queues, plus one frame in the hands of
  each thread and whatever a stage holds back on purpose (its batch). Memory does not grow with video
  length: a slow stage simply makes the ones before it wait.
* **Order.** Queues are FIFO and each stage runs in one thread, so frames reach the sink in order;
  the runner also checks that every stage emits strictly increasing frame indices.
* **Errors.** The first error from the source, a stage, the sink or the progress callback stops
  everything and is re-raised in the caller: a :class:`~vidstyle.errors.VidstyleError` (bad input,
  bad model…) unchanged, with ``exc.stage`` and ``exc.frame_index`` set and a note added; anything
  else wrapped in :class:`~vidstyle.errors.StageError` naming the stage and frame index (the
  original is its ``__cause__``).
* **Shutdown.** On error or ``KeyboardInterrupt`` every worker sees a shared abort flag (all queue
  waits poll it), finishes the call it is in (stages with an ``interrupt()`` method are told to cut
  long calls short), closes its stage and exits; the caller joins them, then
  *aborts* the sink (its encoder is flushed so the partial file plays; it stays under its temporary
  name) and re-raises. The partial file's path is attached to the exception as ``partial_output``;
  when the sink could not keep a playable one, ``partial_lost`` says why (else ``None``).
  On success the sink is *closed* (finalised and renamed to its final name).
* **Stop.** Setting the ``stop`` event ends the run gracefully: the source stops reading, the frames
  already read go through every stage, and the sink is closed normally (a live recording ends cleanly).
* **Live mode** (``live=True``): the source never waits for a slow consumer; the first queue keeps
  only the newest frame and older ones are dropped and counted (latest-frame semantics).

The sink runs in the caller's thread so that Ctrl-C (``KeyboardInterrupt``, delivered to the main
thread) interrupts the run promptly; all waits in the caller use short timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from vidstyle.errors import InvalidInputError, StageError, VidstyleError
from vidstyle.frame import Frame
from vidstyle.io.naming import with_parameter
from vidstyle.pipeline.stage import Stage
from vidstyle.pipeline.stats import ProgressInfo, RunStats, SinkLike
from vidstyle.pipeline.threads import BACKGROUND_NICE, JOIN_TIMEOUT, Aborted, Run

__all__ = ["BACKGROUND_NICE", "JOIN_TIMEOUT", "ProgressInfo", "RunStats", "SinkLike", "run_pipeline"]


def _describe(where: str, frame_index: int | None) -> str:
    at = f"frame {frame_index}" if frame_index is not None else "start-up"
    return f"in the {where} stage at {at}"


def _attach(exc: BaseException, *, stage: str | None, frame_index: int | None, partial: Path | None,
            lost: str | None = None) -> None:
    if stage is not None and not isinstance(exc, StageError):
        try:
            exc.stage = stage  # type: ignore[attr-defined]
            exc.frame_index = frame_index  # type: ignore[attr-defined]
            exc.add_note(_describe(stage, frame_index))
        except (AttributeError, TypeError):  # pragma: no cover - exotic exception types
            pass
    try:
        exc.partial_output = partial  # type: ignore[attr-defined]
        exc.partial_lost = lost  # type: ignore[attr-defined]
        if partial is not None:
            exc.add_note(f"partial output kept at {partial}")
        elif lost is not None:
            exc.add_note(lost)
    except (AttributeError, TypeError):  # pragma: no cover
        pass


def _as_path(value: Any) -> Path | None:
    if value is None:
        return None
    try:
        return Path(value)
    except TypeError:
        return None


def run_pipeline(
    *,
    source: Iterable[Frame],
    stages: Sequence[Stage],
    sink: SinkLike,
    queue_size: int = 8,
    progress: Callable[[ProgressInfo], None] | None = None,
    stop: threading.Event | None = None,
    total: int | None = None,
    live: bool = False,
    background_nice: int = BACKGROUND_NICE,
) -> RunStats:
    """Run ``source`` through ``stages`` into ``sink``, overlapping them in threads.

    Args:
        source: an iterable of :class:`~vidstyle.frame.Frame` with increasing ``index`` (e.g. a
            ``vidstyle.io`` source). Iterated in its own thread. Its ``warnings`` list (if any) is
            copied into the stats at the end.
        stages: the stages, in order (e.g. flow then stylize); each runs in its own thread and is
            always closed. May be empty. A stage's ``warnings`` list (if any; e.g. a painting that
            was downscaled) is copied into the stats too.
        sink: has ``write(frame)``, ``close()`` (called on success; its return value becomes
            ``RunStats.output``) and ``abort()`` (called on error or interrupt; returns where the
            partial output was kept, attached to the raised exception as ``partial_output``).
            Runs in the caller's thread.
        queue_size: capacity of each queue between two threads (≥ 1).
        progress: called in the caller's thread after each written frame.
        stop: when set, the run ends gracefully (no new frames read; those in flight are finished
            and the sink is closed).
        total: frames expected, for the ETA; defaults to ``source.info.frame_count`` when the
            source has one.
        live: latest-frame semantics for real-time sources: the source never waits, stale frames
            are dropped and counted.
        background_nice: on Linux, the threads of stages marked ``background = True`` (flow,
            stabilise) run this many nice levels below the caller (0 = same priority), so the
            network's stage gets a contended core first. Threads such a stage starts inherit it.

    Returns:
        :class:`RunStats`.

    Raises:
        VidstyleError: the error a part raised because of bad input, unchanged, with ``stage``,
            ``frame_index`` and ``partial_output`` attributes added.
        StageError: any other error, naming the stage and frame index (original as ``__cause__``).
        InvalidInputError: the source produced no frames at all (sink aborted).
        KeyboardInterrupt: re-raised after a clean shutdown, with ``partial_output`` attached.
    """
    if total is None:
        info = getattr(source, "info", None)
        count = getattr(info, "frame_count", None)
        total = count if isinstance(count, int) and count > 0 else None
    run = Run(
        source=source,
        stages=stages,
        sink=sink,
        queue_size=queue_size,
        progress=progress,
        stop=stop,
        total=total,
        live=live,
        background_nice=background_nice,
    )
    t_start = time.perf_counter()
    written = 0
    try:
        run.start()
        try:
            written = run.sink_loop(t_start)
        except Aborted:
            pass
        stuck = run.join()
        if run.error is None and written == 0 and run.source_stopped:
            # stopped before the first frame: nothing to keep, not an error
            _abort_sink(run)
            seconds = time.perf_counter() - t_start
            return RunStats(
                frames=0, seconds=seconds, fps=0.0, dropped=run.dropped, busy=dict(run.busy),
                queue_peak=list(run.queue_peak), stopped=True,
            )
        if run.error is None and written == 0:
            run.fail(
                "source",
                None,
                with_parameter(InvalidInputError(
                    "the input produced no video frames; check that it has a video stream and that "
                    "`start`/`end` select part of it"
                ), "start", also=("end",)),
            )
        if run.error is None:
            t0 = time.perf_counter()
            try:
                output = run.sink.close()
            except BaseException as exc:  # noqa: BLE001
                run.fail("sink", None, exc)
            else:
                run.busy["sink"] += time.perf_counter() - t0
                seconds = time.perf_counter() - t_start
                warnings = [*getattr(source, "warnings", []), *(w for st in stages for w in getattr(st, "warnings", [])),
                            *getattr(sink, "warnings", [])]
                return RunStats(
                    frames=written,
                    seconds=seconds,
                    fps=written / seconds if seconds > 0 else 0.0,
                    dropped=run.dropped + int(getattr(source, "dropped", 0) or 0),
                    busy=dict(run.busy),
                    queue_peak=list(run.queue_peak),
                    stopped=run.source_stopped,
                    output=_as_path(output),
                    warnings=[str(w) for w in warnings],
                    latency_mean=run.latency_sum / run.latency_n if run.latency_n else None,
                    latency_max=run.latency_max,
                )
    except BaseException as interrupt:  # KeyboardInterrupt (or SystemExit) in the caller's thread
        run.stop_all()
        stuck = run.join()
        partial = _abort_sink(run)
        _attach(interrupt, stage=None, frame_index=None, partial=partial, lost=_lost(run))
        if stuck:
            interrupt.add_note(f"worker threads still running after {JOIN_TIMEOUT:.0f} s: {', '.join(stuck)}")
        raise

    # An error was recorded: every worker has been told to stop and joined.
    assert run.error is not None
    where, frame_index, exc = run.error
    partial = _abort_sink(run)
    if isinstance(exc, (VidstyleError, KeyboardInterrupt)):
        error: BaseException = exc  # bad input (or an interrupt seen by a worker): unchanged
    else:
        error = StageError(stage=where, frame_index=frame_index, error=exc)
    _attach(error, stage=where, frame_index=frame_index, partial=partial, lost=_lost(run))
    if stuck:
        error.add_note(f"worker threads still running after {JOIN_TIMEOUT:.0f} s: {', '.join(stuck)}")
    if error is exc:
        raise exc
    raise error from exc


def _lost(run: Run) -> str | None:
    """Why the sink could not keep a playable partial output (``sink.partial_lost``), if it says."""
    lost = getattr(run.sink, "partial_lost", None)
    return lost if isinstance(lost, str) else None


def _abort_sink(run: Run) -> Path | None:
    try:
        return _as_path(run.sink.abort())
    except Exception:  # noqa: BLE001 - the original error matters more
        return None

