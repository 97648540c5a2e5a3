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
  name) and re-raises. The partial file's path is attached to the exception as ``partial_output``.
  On success the sink is *closed* (finalised and renamed to its final name).
* **Stop.** Setting the ``stop`` event ends the run gracefully: the source stops reading, the frames
  already read go through every stage, and the sink is closed normally (a live recording ends cleanly).
* **Live mode** (``live=True``): the source never waits for a slow consumer; the first queue keeps
  only the newest frame and older ones are dropped and counted (latest-frame semantics).

The sink runs in the caller's thread so that Ctrl-C (``KeyboardInterrupt``, delivered to the main
thread) interrupts the run promptly; all waits in the caller use short timeouts.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidstyle.errors import InvalidInputError, StageError, VidstyleError
from vidstyle.frame import Frame
from vidstyle.io.naming import with_parameter
from vidstyle.pipeline.stage import Stage

__all__ = ["ProgressInfo", "RunStats", "SinkLike", "run_pipeline"]

_POLL = 0.05  # seconds between checks of the abort flag while waiting on a queue
JOIN_TIMEOUT = 30.0  # seconds to wait for each worker to finish the call it is in
#: how much lower (in nice levels) the runner runs the threads of stages marked ``background`` by
#: default: with the stylize stage at weight 1024 and helpers at 110, the Linux scheduler gives the
#: network ~90 % of a contended core (BENCHMARKS.md, "Temporal stabilisation": the flow and stabilise
#: stages at +10 took the tiny stabilised pipeline from 24-27 to 27-30 fps on 2 cores)
BACKGROUND_NICE = 10


def _run_in_background(nice: int) -> bool:
    """Lower the calling thread's scheduling priority by ``nice`` levels (Linux, where a thread id
    names one thread for ``setpriority``); False where that is not possible or ``nice`` is 0.

    Threads the helper starts inherit its priority; this includes OpenCV's worker pool when a helper
    is the first to run a parallel OpenCV function in the process."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:  # pragma: no cover - a sandbox that forbids it: run at the normal priority
        return False
    return True


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


class _End:
    """End-of-stream marker travelling through the queues."""

    def __repr__(self) -> str:  # pragma: no cover
        return "<end of stream>"


_END = _End()


class _Aborted(Exception):
    """Internal: a queue wait gave up because the run is being aborted."""


def _unique_names(stages: Sequence[Stage]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for stage in stages:
        name = getattr(stage, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"stage {stage!r} has no 'name' string attribute")
        for method in ("process", "finish", "close"):
            if not callable(getattr(stage, method, None)):
                raise TypeError(f"stage {name!r} has no {method}() method; see vidstyle.pipeline.Stage")
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names


class _Run:
    """State shared by the threads of one run."""

    def __init__(
        self,
        *,
        source: Iterable[Frame],
        stages: Sequence[Stage],
        sink: SinkLike,
        queue_size: int,
        progress: Callable[[ProgressInfo], None] | None,
        stop: threading.Event | None,
        total: int | None,
        live: bool,
        background_nice: int = BACKGROUND_NICE,
    ) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        if isinstance(background_nice, bool) or not isinstance(background_nice, int) or not 0 <= background_nice <= 19:
            raise ValueError(f"background_nice must be an integer from 0 to 19, got {background_nice!r}")
        self.background_nice = background_nice
        self.source = source
        self.stages = list(stages)
        self.names = _unique_names(self.stages)
        self.sink = sink
        self.progress = progress
        self.stop = stop if stop is not None else threading.Event()
        self.total = total
        self.live = live
        self.queues: list[queue.Queue[Any]] = [
            queue.Queue(maxsize=1 if (live and i == 0) else queue_size) for i in range(len(self.stages) + 1)
        ]
        self.queue_peak = [0] * len(self.queues)
        self.abort = threading.Event()
        self.lock = threading.Lock()
        self.error: tuple[str, int | None, BaseException] | None = None
        self.busy: dict[str, float] = {"source": 0.0, **{n: 0.0 for n in self.names}, "sink": 0.0}
        self.dropped = 0
        self.latency_sum = 0.0
        self.latency_n = 0
        self.latency_max: float | None = None
        self.source_stopped = False
        self.threads: list[threading.Thread] = []

    # -- errors -------------------------------------------------------------------------------
    def fail(self, where: str, frame_index: int | None, exc: BaseException) -> None:
        """Record the first error and tell every thread to stop."""
        with self.lock:
            if self.error is None:
                self.error = (where, frame_index, exc)
        self.stop_all()

    def stop_all(self) -> None:
        """Set the abort flag and call each stage's optional ``interrupt()`` (once)."""
        with self.lock:
            first = not self.abort.is_set()
            self.abort.set()
        if not first:
            return
        for stage in self.stages:
            hook = getattr(stage, "interrupt", None)
            if callable(hook):
                try:
                    hook()
                except Exception:  # noqa: BLE001, S110 - best effort; the shutdown goes on
                    pass

    # -- queues -------------------------------------------------------------------------------
    def put(self, i: int, item: Any) -> None:
        q = self.queues[i]
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                q.put(item, timeout=_POLL)
            except queue.Full:
                continue
            if item is not _END:
                n = q.qsize()
                self.queue_peak[i] = max(self.queue_peak[i], n)
            return

    def put_latest(self, i: int, item: Any) -> None:
        """Live mode: never wait; replace the waiting frame by the newest one."""
        q = self.queues[i]
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                q.put_nowait(item)
            except queue.Full:
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                else:
                    with self.lock:
                        self.dropped += 1
                continue
            n = q.qsize()
            self.queue_peak[i] = max(self.queue_peak[i], n)
            return

    def get(self, i: int) -> Any:
        q = self.queues[i]
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue

    # -- workers ------------------------------------------------------------------------------
    def source_worker(self) -> None:
        produced = 0
        last_index: int | None = None
        it: Any = None
        try:
            it = iter(self.source)
            while not self.abort.is_set():
                if self.stop.is_set():
                    self.source_stopped = True
                    break
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                finally:
                    self.busy["source"] += time.perf_counter() - t0
                if not isinstance(frame, Frame):
                    raise TypeError(f"the source yielded {type(frame).__name__}, not a vidstyle Frame")
                if last_index is not None and frame.index <= last_index:
                    raise RuntimeError(
                        f"the source yielded frame {frame.index} after frame {last_index}; "
                        "frame indices must increase"
                    )
                last_index = frame.index
                produced += 1
                if self.live:
                    self.put_latest(0, frame)
                else:
                    self.put(0, frame)
            self.put(0, _END)
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            self.fail("source", last_index + 1 if last_index is not None else produced, exc)
        finally:
            if isinstance(it, types.GeneratorType):
                try:
                    it.close()
                except BaseException as exc:  # noqa: BLE001
                    self.fail("source", last_index, exc)

    def stage_worker(self, k: int) -> None:
        stage = self.stages[k]
        name = self.names[k]
        current: int | None = None  # index of the frame being processed (for error reports)
        last_out: int | None = None
        if getattr(stage, "background", False):
            _run_in_background(self.background_nice)
        try:
            while True:
                item = self.get(k)
                t0 = time.perf_counter()
                if item is _END:
                    outs = stage.finish()
                else:
                    current = item.index
                    outs = stage.process(item)
                self.busy[name] += time.perf_counter() - t0
                if outs is None:
                    raise TypeError(f"{type(stage).__name__}.process()/finish() returned None; return a list of frames")
                for out in outs:
                    if not isinstance(out, Frame):
                        raise TypeError(f"the stage emitted {type(out).__name__}, not a vidstyle Frame")
                    if last_out is not None and out.index <= last_out:
                        raise RuntimeError(
                            f"the stage emitted frame {out.index} after frame {last_out}; stages must keep frame order"
                        )
                    last_out = out.index
                    self.put(k + 1, out)
                if item is _END:
                    self.put(k + 1, _END)
                    return
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            self.fail(name, current, exc)
        finally:
            try:
                stage.close()
            except BaseException as exc:  # noqa: BLE001
                self.fail(name, current, exc)

    # -- the caller's part --------------------------------------------------------------------
    def start(self) -> None:
        self.threads.append(threading.Thread(target=self.source_worker, name="vidstyle-source", daemon=True))
        for k, name in enumerate(self.names):
            self.threads.append(
                threading.Thread(target=self.stage_worker, args=(k,), name=f"vidstyle-stage-{name}", daemon=True)
            )
        for t in self.threads:
            t.start()

    def join(self) -> list[str]:
        """Join every worker; returns the names of those still running after the timeout."""
        deadline = time.monotonic() + JOIN_TIMEOUT
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if self.abort.is_set() and not stuck:
            self.drain()
        return stuck

    def drain(self) -> None:
        """Drop the frames still queued (after an abort), so an exception that keeps this run
        alive through its traceback does not keep their images in memory."""
        for q in self.queues:
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break

    def sink_loop(self, t_start: float) -> int:
        last = len(self.queues) - 1
        written = 0
        recent: deque[tuple[float, int]] = deque([(t_start, 0)])
        while True:
            item = self.get(last)
            if item is _END:
                return written
            t0 = time.perf_counter()
            try:
                self.sink.write(item)
            except (KeyboardInterrupt, _Aborted):
                raise
            except BaseException as exc:  # noqa: BLE001
                self.fail("sink", item.index, exc)
                raise _Aborted from None
            finally:
                self.busy["sink"] += time.perf_counter() - t0
            written += 1
            now = time.perf_counter()
            latency = None
            if item.capture_time is not None:
                latency = now - item.capture_time
                self.latency_sum += latency
                self.latency_n += 1
                self.latency_max = latency if self.latency_max is None else max(self.latency_max, latency)
            if self.progress is not None:
                recent.append((now, written))
                while len(recent) > 2 and now - recent[1][0] >= 1.0:
                    recent.popleft()
                span = now - recent[0][0]
                fps = (written - recent[0][1]) / span if span > 0 else 0.0
                eta = None
                if self.total is not None and fps > 0:
                    eta = max(0, self.total - written) / fps
                info = ProgressInfo(
                    frames=written, total=self.total, elapsed=now - t_start, fps=fps, eta=eta, dropped=self.dropped,
                    latency=latency,
                )
                try:
                    self.progress(info)
                except (KeyboardInterrupt, _Aborted):
                    raise
                except BaseException as exc:  # noqa: BLE001
                    self.fail("progress", item.index, exc)
                    raise _Aborted from None


def _describe(where: str, frame_index: int | None) -> str:
    at = f"frame {frame_index}" if frame_index is not None else "start-up"
    return f"in the {where} stage at {at}"


def _attach(exc: BaseException, *, stage: str | None, frame_index: int | None, partial: Path | None) -> None:
    if stage is not None and not isinstance(exc, StageError):
        try:
            exc.stage = stage  # type: ignore[attr-defined]
            exc.frame_index = frame_index  # type: ignore[attr-defined]
            exc.add_note(_describe(stage, frame_index))
        except (AttributeError, TypeError):  # pragma: no cover - exotic exception types
            pass
    try:
        exc.partial_output = partial  # type: ignore[attr-defined]
        if partial is not None:
            exc.add_note(f"partial output kept at {partial}")
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
            always closed. May be empty.
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
    run = _Run(
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
        except _Aborted:
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
                warnings = [*getattr(source, "warnings", []), *getattr(sink, "warnings", [])]
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
        _attach(interrupt, stage=None, frame_index=None, partial=partial)
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
    _attach(error, stage=where, frame_index=frame_index, partial=partial)
    if stuck:
        error.add_note(f"worker threads still running after {JOIN_TIMEOUT:.0f} s: {', '.join(stuck)}")
    if error is exc:
        raise exc
    raise error from exc


def _abort_sink(run: _Run) -> Path | None:
    try:
        return _as_path(run.sink.abort())
    except Exception:  # noqa: BLE001 - the original error matters more
        return None

