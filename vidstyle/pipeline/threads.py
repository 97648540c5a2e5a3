"""The threads of one run and the queues between them (:class:`Run`); :func:`~vidstyle.pipeline.run_pipeline`
drives it. Internal to :mod:`vidstyle.pipeline`."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from vidstyle.frame import Frame
from vidstyle.pipeline.stage import Stage
from vidstyle.pipeline.stats import ProgressInfo, SinkLike

__all__ = ["BACKGROUND_NICE", "END", "JOIN_TIMEOUT", "Aborted", "Run", "run_in_background"]

POLL = 0.05  # seconds between checks of the abort flag while waiting on a queue
JOIN_TIMEOUT = 30.0  # seconds to wait for each worker to finish the call it is in
#: how much lower (in nice levels) the runner runs the threads of stages marked ``background`` by
#: default: with the stylize stage at weight 1024 and helpers at 110, the Linux scheduler gives the
#: network ~90 % of a contended core (BENCHMARKS.md, "Temporal stabilisation": the flow and stabilise
#: stages at +10 took the tiny stabilised pipeline from 24-27 to 27-30 fps on 2 cores)
BACKGROUND_NICE = 10


def run_in_background(nice: int) -> bool:
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



class End:
    """End-of-stream marker travelling through the queues."""

    def __repr__(self) -> str:  # pragma: no cover
        return "<end of stream>"


END = End()


class Aborted(Exception):
    """Internal: a queue wait gave up because the run is being aborted."""


def unique_names(stages: Sequence[Stage]) -> list[str]:
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


class Run:
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
        self.names = unique_names(self.stages)
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
    def put(self, i: int, item: Any, *, latest: bool = False) -> None:
        """Queue ``item`` for part ``i``, waiting while the queue is full. ``latest`` (live mode):
        never wait; replace the waiting frame by the newest one (the old one is dropped and counted)."""
        q = self.queues[i]
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                if latest:
                    q.put_nowait(item)
                else:
                    q.put(item, timeout=POLL)
            except queue.Full:
                if latest:
                    self._drop_oldest(q)
                continue
            if item is not END:
                self.queue_peak[i] = max(self.queue_peak[i], q.qsize())
            return

    def _drop_oldest(self, q: queue.Queue[Any]) -> None:
        try:
            q.get_nowait()
        except queue.Empty:
            return
        with self.lock:
            self.dropped += 1

    def get(self, i: int) -> Any:
        q = self.queues[i]
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                return q.get(timeout=POLL)
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
                self.put(0, frame, latest=self.live)
            self.put(0, END)
        except Aborted:
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
            run_in_background(self.background_nice)
        try:
            while True:
                item = self.get(k)
                t0 = time.perf_counter()
                if item is END:
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
                if item is END:
                    self.put(k + 1, END)
                    return
        except Aborted:
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
            if item is END:
                return written
            t0 = time.perf_counter()
            try:
                self.sink.write(item)
            except (KeyboardInterrupt, Aborted):
                raise
            except BaseException as exc:  # noqa: BLE001
                self.fail("sink", item.index, exc)
                raise Aborted from None
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
                except (KeyboardInterrupt, Aborted):
                    raise
                except BaseException as exc:  # noqa: BLE001
                    self.fail("progress", item.index, exc)
                    raise Aborted from None
