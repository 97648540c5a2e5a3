"""run_session end to end on paced lavfi sources: latest-frame semantics, bounded latency, recordings
with true timestamps, and the quit / end-of-stream / lost-camera / interrupt paths.

Timing bounds are deliberately generous (a busy 2-core machine must not make them flake) but
still fail if frames queue up: with a model 3× slower than the source, a queue would make the
latency grow by ~2 frame periods per processed frame (over a second within this run)."""

from __future__ import annotations

import errno
import statistics

import av
import pytest
from live_helpers import PERIOD, SRC, ScriptedPreview, SlowStage, decoded_times

from vidstyle.errors import CameraError
from vidstyle.io import open_sink
from vidstyle.live import CameraSource, LiveOutput, open_camera, run_session


def test_slow_model_drops_frames_instead_of_queueing() -> None:
    slow = SlowStage(3 * PERIOD)  # the "model" is 3× slower than the camera
    with open_camera(SRC) as cam:
        stats = run_session(source=cam, stages=[slow], output=LiveOutput(), duration=3.0)
    assert stats.end_reason == "stopped"
    assert stats.shown >= 6
    assert stats.captured == stats.shown + stats.dropped
    # ~2 of every 3 frames must be dropped; a queue would drop none
    assert stats.dropped >= stats.shown
    assert stats.drop_rate >= 0.4
    # the frames processed are spread over the whole stream, not the first ones only
    assert slow.indices[-1] >= 0.6 * stats.captured
    lat = stats.latencies
    assert len(lat) == stats.shown and all(x > 0 for x in lat)
    third = max(2, len(lat) // 3)
    first, last = statistics.median(lat[:third]), statistics.median(lat[-third:])
    # bounded by a few frame periods + one model time, not growing with the run
    assert last <= first + 0.25, (first, last)
    assert max(lat[-third:]) <= 0.8, lat


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_recording_keeps_true_timestamps(tmp_path, ext) -> None:
    path = tmp_path / f"rec{ext}"
    slow = SlowStage(3 * PERIOD)
    with open_camera(SRC) as cam:
        recorder = open_sink(path, info=cam.info, codec="h264", preset="ultrafast")
        stats = run_session(
            source=cam,
            stages=[slow],
            output=LiveOutput(recorder=recorder),
            duration=2.0,
        )
    assert stats.recording == path and path.exists()
    assert not list(tmp_path.glob("*.partial*"))
    times = decoded_times(path)
    assert len(times) == stats.shown
    span = times[-1] - times[0]
    # the recording spans the wall-clock time between the first and the last frame shown …
    assert span == pytest.approx(stats.seconds, abs=0.2)
    assert span >= 1.0
    # … while the same frames at a constant 30 fps would play 3× too fast
    assert (len(times) - 1) * PERIOD < 0.7 * span
    with av.open(str(path)) as c:
        assert c.duration / 1e6 == pytest.approx(span + PERIOD, abs=0.05)


def test_quit_key_finalises_a_playable_recording(tmp_path) -> None:
    path = tmp_path / "quit.mp4"
    preview = ScriptedPreview({4: ord("q")})
    with open_camera(SRC) as cam:
        recorder = open_sink(path, info=cam.info, codec="h264", preset="ultrafast")
        stats = run_session(
            source=cam,
            stages=[SlowStage(0.0)],
            output=LiveOutput(preview=preview, recorder=recorder),
        )
    assert stats.end_reason == "stopped" and stats.quit_reason == "key"
    assert preview.closed
    # the frames already in flight when q was pressed are still shown and recorded
    assert 5 <= stats.shown <= 8
    assert len(decoded_times(path)) == stats.shown


def test_end_of_stream_finalises_the_recording(tmp_path) -> None:
    path = tmp_path / "end.mkv"
    with open_camera("lavfi:testsrc2=size=96x64:rate=30:duration=1") as cam:
        recorder = open_sink(path, info=cam.info, codec="h264", preset="ultrafast")
        stats = run_session(
            source=cam, stages=[SlowStage(0.0)], output=LiveOutput(recorder=recorder)
        )
    assert stats.end_reason == "ended"
    assert stats.captured == 30
    times = decoded_times(path)
    assert len(times) == stats.shown >= 10
    assert times[-1] == pytest.approx(29 * PERIOD, abs=0.1)  # paced: true speed


class _Unplugged(CameraSource):
    after = 20

    def _read_packets(self):
        for i, packet in enumerate(super()._read_packets()):
            if i == self.after:
                self._lost(av.error.OSError(errno.ENODEV, "No such device"))
                return
            yield packet


def test_lost_camera_finalises_the_recording(tmp_path) -> None:
    path = tmp_path / "lost.mp4"
    with _Unplugged(SRC) as cam:
        recorder = open_sink(path, info=cam.info, codec="h264", preset="ultrafast")
        stats = run_session(
            source=cam, stages=[SlowStage(PERIOD)], output=LiveOutput(recorder=recorder)
        )
    assert stats.end_reason == "lost" and stats.end_message == "No such device"
    assert stats.recording == path
    assert len(decoded_times(path)) == stats.shown >= 3


def test_camera_lost_before_the_first_frame_is_a_camera_error() -> None:
    class Dead(_Unplugged):
        after = 1

    with Dead(SRC) as cam:
        # the first frame was read when opening; make it vanish too
        cam._pending.clear()
        with pytest.raises(
            CameraError, match="stopped before the first frame.*No such device"
        ):
            run_session(source=cam, stages=[SlowStage(0.0)], output=LiveOutput())


class _Interrupting(SlowStage):
    def process(self, frame):
        if len(self.indices) == 5:
            raise KeyboardInterrupt
        return super().process(frame)


def test_hard_interrupt_keeps_a_playable_partial_recording(tmp_path) -> None:
    path = tmp_path / "int.mp4"
    with open_camera(SRC) as cam:
        recorder = open_sink(path, info=cam.info, codec="h264", preset="ultrafast")
        with pytest.raises(KeyboardInterrupt) as info:
            run_session(
                source=cam,
                stages=[_Interrupting(0.0)],
                output=LiveOutput(recorder=recorder),
            )
    partial = info.value.partial_output
    assert partial is not None and partial.exists() and ".partial" in partial.name
    assert len(decoded_times(partial)) == 5


def test_bad_duration() -> None:
    from vidstyle.errors import InvalidOptionError

    with open_camera(SRC) as cam, pytest.raises(InvalidOptionError, match="^duration must be") as info:
        run_session(source=cam, stages=[], output=LiveOutput(), duration=0)
    assert info.value.parameter == "duration"
