"""The streaming runner: order, back-pressure, error propagation, clean shutdown, stop, live mode."""

from __future__ import annotations

import _thread
import random
import sys
import threading
import time
import weakref
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vidstyle.errors import CorruptInputError, InvalidInputError, StageError
from vidstyle.frame import Frame
from vidstyle.pipeline import (
    BaseStage,
    MapStage,
    ProgressInfo,
    RunStats,
    Stage,
    run_pipeline,
)


# ------------------------------------------------------------------------------------------------
# fakes
# ------------------------------------------------------------------------------------------------
def make_frames(n: int, *, size: int = 4, fail_at: int | None = None, exc: BaseException | None = None):
    for i in range(n):
        if fail_at is not None and i == fail_at:
            raise exc if exc is not None else RuntimeError("decoder exploded")
        yield Frame(index=i, image=np.full((size, size, 3), i % 256, np.uint8))


class FakeSource:
    """Iterable with ``info`` and ``warnings`` like a vidstyle.io source."""

    def __init__(self, n: int, **kwargs) -> None:
        self.n = n
        self.kwargs = kwargs
        self.info = SimpleNamespace(frame_count=n)
        self.warnings = ["input is truncated; kept what decoded"]

    def __iter__(self):
        return make_frames(self.n, **self.kwargs)


class FakeSink:
    def __init__(self, *, delay: float = 0.0, fail_at: int | None = None, fail_exc: BaseException | None = None):
        self.indices: list[int] = []
        self.checks: list[bool] = []
        self.closed = 0
        self.aborted = 0
        self.delay = delay
        self.fail_at = fail_at
        self.fail_exc = fail_exc
        self.threads: set[str] = set()

    def write(self, frame: Frame) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and frame.index == self.fail_at:
            raise self.fail_exc if self.fail_exc is not None else OSError("disk full")
        if self.delay:
            time.sleep(self.delay)
        self.indices.append(frame.index)
        self.checks.append(
            frame.stylized is not None and bool(np.all(frame.stylized == 255 - frame.image))
        )

    def close(self) -> Path:
        self.closed += 1
        return Path("/tmp/final.mp4")

    def abort(self) -> Path:
        self.aborted += 1
        return Path("/tmp/.final.vidstyle-tmp.mp4")


class DelayStage(BaseStage):
    """Random delays, marks frames, tracks close()."""

    def __init__(self, name: str, *, seed: int = 0, max_delay: float = 0.002, fail_at: int | None = None,
                 exc: BaseException | None = None, fail_close: bool = False) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.fail_at = fail_at
        self.exc = exc
        self.fail_close = fail_close
        self.closed = 0
        self.seen: list[int] = []

    def process(self, frame: Frame) -> list[Frame]:
        if frame.index == self.fail_at:
            raise self.exc if self.exc is not None else ValueError(f"{self.name} cannot handle this frame")
        time.sleep(self.rng.random() * self.max_delay)
        self.seen.append(frame.index)
        frame.extra.setdefault("path", []).append(self.name)
        return [frame]

    def close(self) -> None:
        self.closed += 1
        if self.fail_close:
            raise RuntimeError("could not release the device")


class BatchStage(DelayStage):
    """Holds frames back until it has ``batch`` of them (like batched inference), then stylizes."""

    def __init__(self, name: str, *, batch: int = 3, fail_in_finish: bool = False, **kw) -> None:
        super().__init__(name, **kw)
        self.batch = batch
        self.held: list[Frame] = []
        self.fail_in_finish = fail_in_finish

    def _flush(self) -> list[Frame]:
        out, self.held = self.held, []
        for f in out:
            f.stylized = 255 - f.image
        return out

    def process(self, frame: Frame) -> list[Frame]:
        (frame,) = super().process(frame)
        self.held.append(frame)
        return self._flush() if len(self.held) >= self.batch else []

    def finish(self) -> list[Frame]:
        if self.fail_in_finish:
            raise RuntimeError("batch could not be flushed")
        return self._flush()


def vidstyle_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vidstyle-")]


@pytest.fixture(autouse=True)
def no_leftover_threads():
    assert vidstyle_threads() == []
    yield
    assert vidstyle_threads() == [], "worker threads left running"


# ------------------------------------------------------------------------------------------------
# order, stats, progress
# ------------------------------------------------------------------------------------------------
def test_stages_satisfy_protocol():
    assert isinstance(DelayStage("a"), Stage)
    assert isinstance(MapStage(name="m", fn=lambda f: None), Stage)
    assert not isinstance(object(), Stage)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_background_stages_run_at_a_lower_priority():
    import os

    from vidstyle.flow.stage import FlowStage
    from vidstyle.pipeline.runner import BACKGROUND_NICE
    from vidstyle.stylize.stabilize import StabilizeStage

    assert FlowStage.background and StabilizeStage.background  # the helpers of the stabilised pipeline

    class Probe(BaseStage):
        def __init__(self, name: str, background: bool) -> None:
            self.name, self.background, self.nice = name, background, []

        def process(self, frame: Frame) -> list[Frame]:
            self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            frame.stylized = 255 - frame.image
            return [frame]

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    helper, net = Probe("helper", True), Probe("net", False)
    sink = FakeSink()
    run_pipeline(source=FakeSource(5), stages=[helper, net], sink=sink)
    assert sink.indices == list(range(5)) and all(sink.checks)
    assert set(net.nice) == {main}
    assert set(helper.nice) == {min(19, main + BACKGROUND_NICE)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main  # the caller's thread is untouched
    same = Probe("helper", True)
    run_pipeline(source=FakeSource(3), stages=[same], sink=FakeSink(), background_nice=0)
    assert set(same.nice) == {main}
    with pytest.raises(ValueError, match="background_nice"):
        run_pipeline(source=FakeSource(3), stages=[], sink=FakeSink(), background_nice=25)


@pytest.mark.parametrize("queue_size", [1, 2, 8])
def test_order_kept_with_holding_stage_and_random_delays(queue_size):
    n = 61  # not a multiple of the batch: finish() must emit the rest
    a = DelayStage("a", seed=1)
    b = BatchStage("b", batch=4, seed=2)
    c = DelayStage("c", seed=3)
    sink = FakeSink()
    stats = run_pipeline(source=FakeSource(n), stages=[a, b, c], sink=sink, queue_size=queue_size)
    assert sink.indices == list(range(n))
    assert all(sink.checks)
    assert a.seen == b.seen == c.seen == list(range(n))
    assert (a.closed, b.closed, c.closed) == (1, 1, 1)
    assert (sink.closed, sink.aborted) == (1, 0)
    assert isinstance(stats, RunStats)
    assert stats.frames == n
    assert stats.output == Path("/tmp/final.mp4")
    assert stats.warnings == ["input is truncated; kept what decoded"]
    assert set(stats.busy) == {"source", "a", "b", "c", "sink"}
    assert all(v >= 0 for v in stats.busy.values())
    assert stats.busy["b"] > 0
    assert stats.fps == pytest.approx(stats.frames / stats.seconds)
    assert len(stats.queue_peak) == 4 and max(stats.queue_peak) <= queue_size
    assert not stats.stopped and stats.dropped == 0
    # the sink runs in the caller's thread
    assert sink.threads == {threading.current_thread().name}


def test_no_stages_and_repeated_names():
    sink = FakeSink()
    stats = run_pipeline(source=make_frames(5), stages=[], sink=sink)
    assert sink.indices == list(range(5)) and stats.frames == 5
    stats = run_pipeline(source=make_frames(5), stages=[DelayStage("x"), DelayStage("x")], sink=FakeSink())
    assert set(stats.busy) == {"source", "x", "x#2", "sink"}


def test_progress_reports_every_frame_with_total_and_eta():
    infos: list[ProgressInfo] = []
    run_pipeline(source=FakeSource(20), stages=[DelayStage("a")], sink=FakeSink(), progress=infos.append)
    assert [i.frames for i in infos] == list(range(1, 21))
    assert all(i.total == 20 for i in infos)
    assert all(i.fps >= 0 and i.elapsed >= 0 for i in infos)
    assert all(i.eta is None or i.eta >= 0 for i in infos)
    assert infos[-1].eta in (None, 0.0)


def test_explicit_total_wins():
    infos: list[ProgressInfo] = []
    run_pipeline(source=FakeSource(3), stages=[], sink=FakeSink(), progress=infos.append, total=7)
    assert infos[0].total == 7


def test_two_pipelines_run_concurrently():
    results = {}

    def go(key, n):
        sink = FakeSink()
        run_pipeline(source=make_frames(n), stages=[BatchStage(f"b{key}", batch=2)], sink=sink, queue_size=2)
        results[key] = sink.indices

    threads = [threading.Thread(target=go, args=(k, 10 + k)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {k: list(range(10 + k)) for k in range(3)}


# ------------------------------------------------------------------------------------------------
# bounded memory
# ------------------------------------------------------------------------------------------------
def test_memory_bounded_by_queues_not_video_length():
    """A fast source and a slow sink: frames alive at once never exceed the queue bound."""
    n, qsize, n_stages = 300, 3, 2
    alive = {"now": 0, "max": 0}
    lock = threading.Lock()

    def gone() -> None:
        with lock:
            alive["now"] -= 1

    def source():
        for i in range(n):
            image = np.zeros((8, 8, 3), np.uint8)
            weakref.finalize(image, gone)
            with lock:
                alive["now"] += 1
                alive["max"] = max(alive["max"], alive["now"])
            yield Frame(index=i, image=image)

    stages = [DelayStage("a", max_delay=0), DelayStage("b", max_delay=0)]
    stats = run_pipeline(source=source(), stages=stages, sink=FakeSink(delay=0.0005), queue_size=qsize)
    assert stats.frames == n
    # queued frames + one in the hands of each thread (source, stages, sink) + one being created
    bound = qsize * (n_stages + 1) + 2 * (n_stages + 2) + 1
    assert alive["max"] <= bound, alive
    assert max(stats.queue_peak) <= qsize
    assert stats.queue_peak[0] == qsize  # the fast source did hit the bound: back-pressure worked


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def _run_failing(where: str):
    stages = [DelayStage("flow"), BatchStage("stylize", batch=3)]
    source = FakeSource(20)
    sink = FakeSink()
    if where == "source":
        source = FakeSource(20, fail_at=7)
    elif where == "flow":
        stages[0].fail_at = 7
    elif where == "stylize":
        stages[1].fail_at = 7
    elif where == "sink":
        sink.fail_at = 7
    elif where == "finish":
        stages[1].fail_in_finish = True
    with pytest.raises(StageError) as info:
        run_pipeline(source=source, stages=stages, sink=sink, queue_size=2)
    return info.value, stages, sink


@pytest.mark.parametrize(
    "where, stage, index",
    [("source", "source", 7), ("flow", "flow", 7), ("stylize", "stylize", 7), ("sink", "sink", 7),
     ("finish", "stylize", 19)],
)
def test_error_anywhere_reraised_with_stage_and_frame(where, stage, index):
    err, stages, sink = _run_failing(where)
    assert err.stage == stage
    assert err.frame_index == index
    assert err.__cause__ is err.error
    assert f"{stage} stage failed at frame {index}" in str(err)
    assert err.partial_output == Path("/tmp/.final.vidstyle-tmp.mp4")
    assert (sink.closed, sink.aborted) == (0, 1)
    assert [s.closed for s in stages] == [1, 1]
    assert all(i < index or where == "finish" for i in sink.indices)


def test_bad_input_error_reraised_unchanged_with_stage_recorded():
    bad = CorruptInputError("clip.mp4: cannot decode frame 4; the file is damaged, re-encode it")
    sink = FakeSink()
    with pytest.raises(CorruptInputError) as info:
        run_pipeline(source=FakeSource(10, fail_at=4, exc=bad), stages=[DelayStage("a")], sink=sink)
    assert info.value is bad
    assert str(bad) == "clip.mp4: cannot decode frame 4; the file is damaged, re-encode it"
    assert bad.stage == "source" and bad.frame_index == 4
    assert any("source stage at frame 4" in n for n in bad.__notes__)
    assert sink.aborted == 1 and all(i < 4 for i in sink.indices)


def test_bad_input_from_a_stage_reraised_unchanged():
    from vidstyle.errors import ShapeError

    bad = ShapeError("frame is 2x2; the model needs at least 4x4 pixels")
    with pytest.raises(ShapeError) as info:
        run_pipeline(source=make_frames(5), stages=[DelayStage("stylize", fail_at=0, exc=bad)], sink=FakeSink())
    assert info.value is bad and bad.stage == "stylize" and bad.frame_index == 0


def test_close_error_on_success_path_is_reported():
    sink = FakeSink()
    with pytest.raises(StageError) as info:
        run_pipeline(source=make_frames(5), stages=[DelayStage("gpu", fail_close=True)], sink=sink)
    assert info.value.stage == "gpu"
    assert sink.aborted == 1 and sink.closed == 0


def test_first_error_wins():
    stages = [DelayStage("a", fail_at=3), DelayStage("b", fail_close=True)]
    with pytest.raises(StageError) as info:
        run_pipeline(source=make_frames(10), stages=stages, sink=FakeSink())
    assert info.value.stage == "a" and info.value.frame_index == 3


def test_out_of_order_stage_is_an_error():
    class Reorder(BaseStage):
        name = "reorder"

        def __init__(self):
            self.held = None

        def process(self, frame):
            if self.held is None:
                self.held = frame
                return []
            out, self.held = [frame, self.held], None
            return out

    with pytest.raises(StageError, match="keep frame order") as info:
        run_pipeline(source=make_frames(4), stages=[Reorder()], sink=FakeSink())
    assert info.value.stage == "reorder"


def test_stage_returning_none_is_an_error():
    with pytest.raises(StageError, match="returned None"):
        run_pipeline(source=make_frames(2), stages=[_NoneStage()], sink=FakeSink())


class _NoneStage(BaseStage):
    name = "none"

    def process(self, frame):
        return None


def test_empty_source_is_bad_input_and_sink_aborted():
    sink = FakeSink()
    with pytest.raises(InvalidInputError, match="no video frames"):
        run_pipeline(source=make_frames(0), stages=[DelayStage("a")], sink=sink)
    assert (sink.closed, sink.aborted) == (0, 1)


def test_sink_close_error_wrapped():
    class BadClose(FakeSink):
        def close(self):
            raise OSError("mux failed")

    sink = BadClose()
    with pytest.raises(StageError) as info:
        run_pipeline(source=make_frames(3), stages=[], sink=sink)
    assert info.value.stage == "sink" and sink.aborted == 1


def test_bad_arguments():
    with pytest.raises(ValueError):
        run_pipeline(source=make_frames(1), stages=[], sink=FakeSink(), queue_size=0)
    with pytest.raises(TypeError):
        run_pipeline(source=make_frames(1), stages=[object()], sink=FakeSink())


# ------------------------------------------------------------------------------------------------
# interrupts and stop
# ------------------------------------------------------------------------------------------------
def test_keyboard_interrupt_in_sink_shuts_down_cleanly():
    stages = [DelayStage("a"), BatchStage("b", batch=2)]
    sink = FakeSink(fail_at=5, fail_exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt) as info:
        run_pipeline(source=FakeSource(1000), stages=stages, sink=sink, queue_size=2)
    assert info.value.partial_output == Path("/tmp/.final.vidstyle-tmp.mp4")
    assert (sink.closed, sink.aborted) == (0, 1)
    assert [s.closed for s in stages] == [1, 1]
    assert len(stages[0].seen) < 1000  # the source stopped early


def test_real_ctrl_c_while_waiting_on_a_slow_stage():
    """SIGINT-style interrupt of the main thread while it waits for frames."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    slow = DelayStage("slow")
    slow.max_delay = 0
    orig = slow.process

    def process(frame):
        time.sleep(0.05)
        return orig(frame)

    slow.process = process
    sink = FakeSink()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(source=FakeSource(10_000), stages=[slow], sink=sink)
    finally:
        timer.cancel()
    assert sink.aborted == 1 and sink.closed == 0 and slow.closed == 1
    assert 0 < len(sink.indices) < 100


def test_interrupt_from_progress_callback():
    def progress(info):
        if info.frames == 3:
            raise KeyboardInterrupt

    sink = FakeSink()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(source=make_frames(100), stages=[DelayStage("a")], sink=sink, progress=progress)
    assert sink.aborted == 1


def test_progress_callback_error_is_stage_error():
    def progress(info):
        raise ZeroDivisionError

    with pytest.raises(StageError) as info:
        run_pipeline(source=make_frames(5), stages=[], sink=FakeSink(), progress=progress)
    assert info.value.stage == "progress" and info.value.frame_index == 0


def test_stop_event_ends_gracefully():
    stop = threading.Event()
    produced = []

    def source():
        for f in make_frames(10_000):
            produced.append(f.index)
            yield f

    def progress(info):
        if info.frames == 10:
            stop.set()

    stages = [DelayStage("a"), BatchStage("b", batch=4)]
    sink = FakeSink()
    stats = run_pipeline(source=source(), stages=stages, sink=sink, stop=stop, progress=progress, queue_size=2)
    assert stats.stopped
    assert (sink.closed, sink.aborted) == (1, 0)
    assert sink.indices == produced  # everything read was finished and written, in order
    assert 10 <= stats.frames < 10_000
    assert all(sink.checks)


def test_stop_before_first_frame_is_not_an_error():
    stop = threading.Event()
    stop.set()
    sink = FakeSink()
    stats = run_pipeline(source=make_frames(10), stages=[DelayStage("a")], sink=sink, stop=stop)
    assert stats.frames == 0 and stats.stopped and sink.closed == 0


def test_live_mode_drops_stale_frames_keeps_order():
    slow = DelayStage("slow", max_delay=0)
    orig = slow.process
    slow.process = lambda f: (time.sleep(0.003), orig(f))[1]

    def source():  # a camera: 1 frame every 0.5 ms, never waits
        for f in make_frames(200):
            time.sleep(0.0005)
            f.capture_time = time.perf_counter()
            yield f

    sink = FakeSink()
    stats = run_pipeline(source=source(), stages=[slow], sink=sink, live=True)
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == 200
    assert sink.indices == sorted(sink.indices) and sink.indices[-1] == 199
    assert stats.queue_peak[0] <= 1
    assert stats.latency_mean is not None and 0 < stats.latency_mean <= stats.latency_max


def test_live_mode_hands_the_newest_frame_on_deterministically():
    """Latest-frame semantics without timing: while the stage is busy with frame 0, the camera
    delivers frames 1..5; the stage must get frame 5 next (1..4 dropped), never a stale one."""
    busy, delivered = threading.Event(), threading.Event()

    class Blocking:
        name = "net"

        def process(self, frame):
            if frame.index == 0:
                busy.set()
                assert delivered.wait(10)
            return [_invert(frame)]

        def finish(self):
            return []

        def close(self):
            pass

    def camera():
        frames = make_frames(6)
        yield next(frames)
        assert busy.wait(10)  # the stage holds frame 0
        yield from frames  # 1..5, each replacing the one waiting
        delivered.set()  # (frame 5 is queued: the source asks for the next one only after putting it)

    sink = FakeSink()
    stats = run_pipeline(source=camera(), stages=[Blocking()], sink=sink, live=True)
    assert sink.indices == [0, 5]
    assert stats.dropped == 4 and stats.frames == 2


def _invert(frame):
    frame.stylized = 255 - frame.image
    return frame


def test_no_latency_without_capture_times():
    infos = []
    stats = run_pipeline(source=make_frames(3), stages=[], sink=FakeSink(), progress=infos.append)
    assert stats.latency_mean is None and stats.latency_max is None
    assert all(i.latency is None for i in infos)


def test_keyboard_interrupt_inside_a_stage_stays_an_interrupt():
    sink = FakeSink()
    with pytest.raises(KeyboardInterrupt) as info:
        run_pipeline(source=make_frames(20), stages=[DelayStage("a", fail_at=3, exc=KeyboardInterrupt())], sink=sink)
    assert info.value.stage == "a" and info.value.frame_index == 3
    assert sink.aborted == 1


class _LongCall(BaseStage):
    """A stage whose process() takes 'forever' unless interrupted (like a per-frame optimisation)."""

    name = "optim"

    def __init__(self):
        self.cut = threading.Event()
        self.started = threading.Event()
        self.cut_short = None
        self.interrupts = 0
        self.closed = 0

    def process(self, frame):
        self.started.set()
        self.cut_short = self.cut.wait(60)
        return [frame]

    def interrupt(self):
        self.interrupts += 1
        self.cut.set()

    def close(self):
        self.closed += 1


def test_interrupt_hook_cuts_a_long_call_short_on_ctrl_c():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    stage = _LongCall()
    sink = FakeSink()

    def press_ctrl_c():
        stage.started.wait(10)
        _thread.interrupt_main()

    t = threading.Thread(target=press_ctrl_c)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(source=make_frames(5), stages=[stage], sink=sink)
    t.join()
    assert stage.cut_short is True and stage.interrupts == 1 and stage.closed == 1
    assert sink.aborted == 1


def test_interrupt_hook_called_on_error_elsewhere():
    stage = _LongCall()
    failing = DelayStage("before", fail_at=1)
    with pytest.raises(StageError) as info:
        run_pipeline(source=make_frames(5), stages=[failing, stage], sink=FakeSink())
    assert info.value.stage == "before"
    assert stage.interrupts == 1 and stage.closed == 1


def test_queued_frames_are_released_after_an_error():
    """The exception's traceback keeps the runner alive; the frames that were queued must not be."""
    alive = {"n": 0}
    lock = threading.Lock()

    def gone():
        with lock:
            alive["n"] -= 1

    def source():
        for i in range(100):
            image = np.zeros((8, 8, 3), np.uint8)
            weakref.finalize(image, gone)
            with lock:
                alive["n"] += 1
            yield Frame(index=i, image=image)

    stuck = threading.Event()

    def slow(frame):
        if frame.index == 0:
            stuck.wait(0.3)  # let the queues fill up
            raise RuntimeError("boom")

    with pytest.raises(StageError) as info:
        run_pipeline(source=source(), stages=[MapStage(name="slow", fn=slow)], sink=FakeSink(), queue_size=4)
    err = info.value
    assert err.frame_index == 0
    # only the frame the failing stage held (referenced by the traceback) may still be alive
    assert alive["n"] <= 1
