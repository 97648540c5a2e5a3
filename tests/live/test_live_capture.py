"""CameraSource: pacing, frame fields, sizes, end of stream, lost device, skips."""

from __future__ import annotations

import errno
import itertools
import time

import av
import numpy as np
import pytest
from live_helpers import PERIOD, SRC

from vidstyle.errors import InvalidOptionError
from vidstyle.live import LIVE_TIME_BASE, CameraSource, open_camera, parse_size


def test_parse_size() -> None:
    assert parse_size("640x360") == (640, 360)
    assert parse_size(" 1280X720 ") == (1280, 720)
    assert parse_size(None) is None and parse_size("auto") is None
    for bad in ("640", "axb", "640x0", "10x10", "99999x10"):
        with pytest.raises(InvalidOptionError, match="^frame_size"):
            parse_size(bad)


def test_frames_are_paced_like_a_camera() -> None:
    with open_camera(SRC) as cam:
        assert cam.realtime and cam.size == (160, 96) and float(cam.fps) == 30
        t0 = time.perf_counter()
        frames = []
        for f in cam:
            frames.append(f)
            if len(frames) == 16:
                break
        elapsed = time.perf_counter() - t0
    # pacing can only make reading slower than the source's own rate, never faster
    assert elapsed >= 15 * PERIOD - 0.01
    idx = [f.index for f in frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    cap = [f.capture_time for f in frames]
    assert all(b > a for a, b in itertools.pairwise(cap))
    # pts: the capture time on the 90 kHz clock, from the first frame
    assert frames[0].pts == 0 and all(f.time_base == LIVE_TIME_BASE for f in frames)
    for f in frames:
        assert f.pts == pytest.approx(
            (f.capture_time - frames[0].capture_time) * 90000, abs=1
        )
        assert (
            f.image.shape == (96, 160, 3)
            and f.image.dtype == np.uint8
            and f.image.flags.c_contiguous
        )
        assert f.extra["source_time"] == pytest.approx(f.index * PERIOD, abs=1e-6)
    assert cam.end_reason == "stopped"


def test_resize_and_max_width() -> None:
    with open_camera(SRC, size="80x48") as cam:
        f = next(iter(cam))
        assert f.image.shape == (48, 80, 3) and (cam.info.width, cam.info.height) == (
            80,
            48,
        )
        assert cam.input_size == (160, 96)
    with open_camera(SRC, max_width=100) as cam:
        assert cam.size == (100, 60)  # aspect kept, even dimensions
        assert next(iter(cam)).image.shape == (60, 100, 3)


def test_unpaced_reads_every_frame_and_ends_normally() -> None:
    with open_camera(
        "lavfi:testsrc2=size=64x48:rate=30:duration=1", realtime=False
    ) as cam:
        frames = list(cam)
    assert [f.index for f in frames] == list(range(30))
    assert cam.end_reason == "ended" and cam.end_message == ""
    assert cam.frames_captured == 30 and cam.frames_skipped == 0


def test_slow_reader_gets_fresh_frames_not_a_backlog() -> None:
    """A reader slower than the source finds the newest frame, as with a camera: the late ones
    are skipped (index gaps), not delivered one after another with growing delay."""
    with open_camera(SRC) as cam:
        it = iter(cam)
        frames = [next(it)]
        for _ in range(5):
            time.sleep(4 * PERIOD)
            frames.append(next(it))
    gaps = [b.index - a.index for a, b in itertools.pairwise(frames)]
    assert all(g >= 2 for g in gaps[1:]), gaps
    assert cam.frames_skipped >= 5


class _Unplugged(CameraSource):
    """A source whose device disappears after ``n`` packets (as a USB camera pulled out)."""

    n = 10

    def _read_packets(self):
        for i, packet in enumerate(super()._read_packets()):
            if i == self.n:
                self._lost(av.error.OSError(errno.ENODEV, "No such device"))
                return
            yield packet


def test_lost_device_ends_iteration_with_a_reason() -> None:
    cam = _Unplugged("lavfi:testsrc2=size=64x48:rate=30", realtime=False)
    try:
        frames = list(cam)
    finally:
        cam.close()
    assert 5 <= len(frames) <= 10
    assert cam.end_reason == "lost" and cam.end_message == "No such device"


def test_close_stops_a_running_iteration() -> None:
    cam = open_camera(SRC)
    it = iter(cam)
    next(it)
    cam.close()
    assert cam.end_reason == "stopped"
    with pytest.raises(StopIteration):
        next(it)


def _as_camera(url: str) -> CameraSource:
    from vidstyle.live import CameraSpec

    return CameraSource(
        CameraSpec(spec="fake-camera", url=url, format="lavfi", kind="camera")
    )


def test_device_timestamps_on_the_monotonic_clock_are_used() -> None:
    from fractions import Fraction
    from types import SimpleNamespace

    with _as_camera("testsrc2=size=64x48:rate=30") as cam:
        assert not cam.realtime  # cameras are not paced
        cam._tb = Fraction(1, 1_000_000)
        fr = SimpleNamespace(pts=int((time.monotonic() - 0.2) * 1e6))
        assert cam._device_time(fr) == pytest.approx(
            time.perf_counter() - 0.2, abs=0.02
        )
        assert cam._device_time(SimpleNamespace(pts=None)) is None
        # a stream clock starting at 0 is not the monotonic clock: arrival times are used
        assert cam._device_time(SimpleNamespace(pts=1000)) is None


def test_stale_buffered_camera_frames_are_skipped() -> None:
    class Buffered(CameraSource):
        calls = 0

        def _device_time(self, fr):
            self.calls += 1
            old = (
                1.0 if self.calls <= 4 else 0.01
            )  # the first 4 frames waited in the driver
            return time.perf_counter() - old

    from vidstyle.live import CameraSpec

    spec = CameraSpec(
        spec="fake-camera",
        url="testsrc2=size=64x48:rate=30",
        format="lavfi",
        kind="camera",
    )
    with Buffered(spec) as cam:
        it = iter(cam)
        first = next(it)
        assert first.index == 4 and cam.frames_skipped == 4
        assert time.perf_counter() - first.capture_time < 0.5


def test_a_video_served_over_http_plays_in_real_time(tmp_path) -> None:
    """A network stream of known duration (a file over HTTP) is paced like a camera and its end is a
    normal end of stream."""
    import functools
    import http.server
    import threading

    import numpy as np

    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(15):
            img = np.full((48, 64, 3), 8 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        with open_camera(url) as cam:
            assert cam.spec.kind == "stream" and cam.realtime
            t0 = time.perf_counter()
            frames = list(cam)
            elapsed = time.perf_counter() - t0
        assert cam.end_reason == "ended"
        assert len(frames) + cam.frames_skipped == 15
        assert elapsed >= 13 * PERIOD  # paced: not faster than the clip's own rate
    finally:
        server.shutdown()
        server.server_close()
