"""Live capture: frames from a camera, a network stream or a paced test source.

:class:`CameraSource` is an iterable of :class:`~vidstyle.frame.Frame` for
:func:`vidstyle.live.run_live`: iterate it in one thread (the capture thread), which never waits for
anything but the camera. Each frame carries

* ``index``: its position in the captured stream, counting frames the source itself skipped, so gaps
  in ``index`` are exactly the frames that were never shown;
* ``capture_time``: ``time.perf_counter()`` when the frame was captured, the start of the
  capture→display latency: for cameras the time the driver stamped on the frame when it is on the
  monotonic clock (V4L2), else when its packet arrived; for paced sources when it was due. Camera
  frames already older than 0.5 s when read (left in the driver's buffers while the model warmed up)
  are skipped;
* ``pts``/``time_base``: the capture time on a 1/90000 s clock starting at the first frame, so a
  recording of the frames shown plays at true speed whatever was dropped (variable frame rate);
  the input's own timestamp is kept in ``extra["source_time"]``.

**Pacing.** FFmpeg generators (``lavfi:``) and files produce frames as fast as they are read; they
are paced to their timestamps (the thread sleeps until each frame is due) and a frame already more
than one frame period late when it is decoded is skipped, as a camera would overwrite it.

**End of input.** :attr:`CameraSource.end_reason` says why iteration ended: ``"ended"`` (the
stream or file ended normally), ``"lost"`` (a read error: camera unplugged, stream timed out;
:attr:`CameraSource.end_message` says what FFmpeg reported) or ``"stopped"`` (closed by the caller).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

from typing_extensions import Self

from vidstyle.errors import CameraError
from vidstyle.frame import Frame
from vidstyle.io import SourceInfo
from vidstyle.live.devices import CameraSpec, camera_open_error, parse_camera
from vidstyle.options import OptionValueError

__all__ = ["LIVE_TIME_BASE", "CameraSource", "open_camera", "parse_size"]

#: time base of the wall-clock ``pts`` live frames carry (the MPEG 90 kHz clock)
LIVE_TIME_BASE = Fraction(1, 90000)
_MAX_SLEEP = 0.05  # pacing sleeps in slices this long so close() is honoured promptly
_STALE = 0.5  # camera frames older than this when read were buffered, not live: skipped


def parse_size(text: str | tuple[int, int] | None, *, name: str = "frame_size") -> tuple[int, int] | None:
    """``"640x360"`` → ``(640, 360)``; ``None``/``""``/``"auto"`` → ``None``.

    Raises:
        OptionValueError: not ``WxH`` with integers from 16 to 8192 (the error names ``name``).
    """
    if text is None:
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2 \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in text):
        w, h = text
    elif isinstance(text, str):
        s = text.strip().lower()
        if s in ("", "auto", "native"):
            return None
        parts = s.replace("×", "x").split("x")
        try:
            w, h = (int(p) for p in parts)
        except ValueError:
            raise OptionValueError(name, f"{name} must be WIDTHxHEIGHT such as 640x360, got {text!r}") from None
    else:
        raise OptionValueError(name, f"{name} must be WIDTHxHEIGHT such as 640x360, got {text!r}")
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise OptionValueError(name, f"{name} {w}x{h} is out of range; use 16x16 to 8192x8192, e.g. 640x360")
    return int(w), int(h)


def _even(n: float) -> int:
    return max(2, round(n / 2.0) * 2)


class CameraSource:
    """A live input opened for capture (see the module docstring).

    Args:
        spec: a camera spec (see :mod:`vidstyle.live.devices`) or an already parsed
            :class:`~vidstyle.live.devices.CameraSpec`.
        size: ``(width, height)`` of the frames delivered (resized by FFmpeg's scaler); cameras
            are also asked for this size. ``None``: the input's own size, scaled down to at most
            ``max_width`` pixels wide when given (aspect kept, even dimensions).
        max_width: see ``size``.
        realtime: pace frames to their timestamps; ``None`` decides from the kind of input
            (generators, files and streams of known duration, such as a file over HTTP: yes;
            cameras and live network streams: no).
        options: extra FFmpeg demuxer options (``{"input_format": "mjpeg", "framerate": "30"}``).

    Raises:
        CameraError: the input cannot be opened (absent, busy, permission denied, unreachable,
            bad filter) or has no video; the message names it and lists the cameras available.
    """

    def __init__(
        self,
        spec: str | int | CameraSpec,
        *,
        size: tuple[int, int] | None = None,
        max_width: int | None = None,
        realtime: bool | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        import av

        self.spec = spec if isinstance(spec, CameraSpec) else parse_camera(spec)
        self.realtime = self.spec.paced if realtime is None else bool(realtime)
        self._auto_pace = realtime is None
        self.warnings: list[str] = []
        self.frames_read = 0  # frames decoded (including skipped ones)
        self.frames_skipped = (
            0  # frames the pacing skipped because they were already late
        )
        self.end_reason: str | None = None
        self.end_message = ""
        self._closing = threading.Event()
        self._iter: Iterator[Frame] | None = None
        opts = dict(self.spec.options)
        if size is not None and self.spec.format == "v4l2":
            opts.setdefault("video_size", f"{size[0]}x{size[1]}")
        opts.update(options or {})
        try:
            self._container = av.open(
                self.spec.url,
                mode="r",
                format=self.spec.format,
                options=opts,
                metadata_errors="replace",
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise camera_open_error(self.spec, exc) from None
        try:
            self._setup(size, max_width)
        except BaseException:
            self._container.close()
            raise

    def _setup(self, size: tuple[int, int] | None, max_width: int | None) -> None:
        if self._auto_pace and self.spec.kind == "stream" and self._container.duration:
            self.realtime = (
                True  # a file served over HTTP & co.: as fast as the network allows
            )
        streams = list(self._container.streams.video)
        if not streams:
            raise CameraError(
                f"'{self.spec.spec}' has no video stream; give a camera or a video stream"
            )
        stream = streams[0]
        # frame threading holds several frames back: latency; slice threading does not
        stream.thread_type = (
            "SLICE" if self.spec.kind in ("camera", "stream") else "AUTO"
        )
        self._stream = stream
        self._tb = (
            Fraction(stream.time_base) if stream.time_base else Fraction(1, 1_000_000)
        )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = Fraction(rate) if rate else None
        self._packets = self._read_packets()
        self._pending: list[Any] = []
        first = self._next_decoded()
        if first is None:
            reason = self.end_message or "no frame arrived"
            raise CameraError(
                f"'{self.spec.spec}' delivered no video frame ({reason}); check the device and its options"
            )
        self._pending.insert(0, first)
        first = first[0]
        in_w, in_h = first.width, first.height
        if size is not None:
            w, h = size
        elif max_width and in_w > max_width:
            w, h = _even(max_width), _even(in_h * max_width / in_w)
        else:
            w, h = in_w + (in_w % 2), in_h + (in_h % 2)
        self.size = (int(w), int(h))
        self.input_size = (in_w, in_h)
        self.info = SourceInfo(
            kind="device",
            path=self.spec.spec,
            width=self.size[0],
            height=self.size[1],
            fps=self.fps,
            time_base=LIVE_TIME_BASE,
            frame_count=None,
            duration=None,
            bit_depth=8,
            rotation=0,
            audio_streams=0,
            start_time=0.0,
            first_number=None,
            codec=stream.codec_context.name if stream.codec_context else None,
            pix_fmt=first.format.name,
        )

    # ------------------------------------------------------------------------------- reading
    def _read_packets(self) -> Iterator[Any]:
        """The demuxer's packets; a read error ends them with :attr:`end_reason` ``"lost"``.

        Tests replace this method to simulate an unplugged camera."""
        import av

        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as exc:
                self._lost(exc)
                return
            yield packet

    def _lost(self, exc: BaseException) -> None:
        if self._closing.is_set():
            return
        self.end_reason = "lost"
        self.end_message = (
            getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        )

    def _next_decoded(self) -> tuple[Any, float] | None:
        """The next decoded PyAV frame and when its packet arrived, or ``None`` at the end."""
        import av

        while not self._pending:
            packet = next(self._packets, None)
            if packet is None:
                return None
            arrived = time.perf_counter()
            try:
                self._pending.extend((fr, arrived) for fr in packet.decode())
            except av.error.FFmpegError as exc:  # a damaged packet: skip it
                self._decode_errors = getattr(self, "_decode_errors", 0) + 1
                if self._decode_errors in (1, 10, 100):
                    self.warnings.append(
                        f"skipped {self._decode_errors} undecodable packet(s) of '{self.spec.spec}' ({exc})"
                    )
        return self._pending.pop(0)

    def _media_time(self, fr: Any, last: float | None) -> float:
        if fr.pts is not None:
            return float(fr.pts * self._tb)
        step = 1.0 / float(self.fps) if self.fps else 1.0 / 30.0
        return 0.0 if last is None else last + step

    def _device_time(self, fr: Any) -> float | None:
        """The capture time a camera stamped on the frame, on the ``perf_counter`` clock, when it
        is on the same clock (V4L2 stamps frames with ``CLOCK_MONOTONIC``, which is
        ``perf_counter``'s on Linux); ``None`` otherwise (other devices, network streams)."""
        if self.spec.kind != "camera" or fr.pts is None:
            return None
        t = float(fr.pts * self._tb)
        now_mono, now_perf = time.monotonic(), time.perf_counter()
        if not 0.0 <= now_mono - t < 10.0:  # another clock (wall clock, stream time…)
            return None
        return t - now_mono + now_perf

    def _sleep_until(self, due: float) -> None:
        while not self._closing.is_set():
            left = due - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, _MAX_SLEEP))

    def _frames(self) -> Iterator[Frame]:
        period = 1.0 / float(self.fps) if self.fps else 1.0 / 30.0
        w, h = self.size
        same_size = self.size == self.input_size
        clock0: float | None = None  # perf_counter time of media time 0 (paced sources)
        wall0: float | None = None  # capture time of the first frame delivered
        last_media: float | None = None
        last_pts = -1
        index = -1
        try:
            while not self._closing.is_set():
                got = self._next_decoded()
                if got is None:
                    if self.end_reason is None:
                        self.end_reason = "ended"
                    return
                fr, arrived = got
                self.frames_read += 1
                index += 1
                media = self._media_time(fr, last_media)
                last_media = media
                if self.realtime:
                    if clock0 is None:
                        clock0 = time.perf_counter() - media
                    due = clock0 + media
                    now = time.perf_counter()
                    if (
                        now - due > period
                    ):  # already late: a camera would have overwritten it
                        self.frames_skipped += 1
                        continue
                    self._sleep_until(due)
                    if self._closing.is_set():
                        break
                    captured = due
                else:
                    captured = arrived
                    device = self._device_time(fr)
                    if device is not None and device <= arrived:
                        captured = device
                        if (
                            arrived - device > _STALE
                        ):  # left in the driver's buffers (during start-up)
                            self.frames_skipped += 1
                            continue
                if same_size:
                    image = fr.to_ndarray(format="rgb24")
                else:
                    image = fr.to_ndarray(format="rgb24", width=w, height=h)
                if wall0 is None:
                    wall0 = captured
                pts = round((captured - wall0) / LIVE_TIME_BASE)
                if pts <= last_pts:
                    pts = last_pts + 1
                last_pts = pts
                yield Frame(
                    index=index,
                    image=image,
                    pts=pts,
                    time_base=LIVE_TIME_BASE,
                    number=index,
                    capture_time=captured,
                    extra={"source_time": media},
                )
        finally:
            if self.end_reason is None:
                self.end_reason = "stopped"

    # ------------------------------------------------------------------------------- API
    @property
    def frames_captured(self) -> int:
        """Frames the input delivered so far (shown, dropped or skipped)."""
        return self.frames_read

    def __iter__(self) -> Iterator[Frame]:
        if self._iter is None:
            self._iter = self._frames()
        return self._iter

    def close(self) -> None:
        """Stop capturing and release the device (the iterating thread should be stopped first)."""
        self._closing.set()
        if self._iter is not None:
            try:
                self._iter.close()
            except (ValueError, RuntimeError):  # generator running in another thread
                pass
        with contextlib.suppress(
            Exception
        ):  # closing a lost device may fail; nothing to keep
            self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CameraSource {self.spec.spec!r} {self.size[0]}x{self.size[1]} fps={self.fps} realtime={self.realtime}>"


def open_camera(
    spec: str | int | CameraSpec,
    *,
    size: tuple[int, int] | str | None = None,
    max_width: int | None = None,
    realtime: bool | None = None,
    options: Mapping[str, str] | None = None,
) -> CameraSource:
    """Open a camera, network stream, test source or file for live capture (:class:`CameraSource`)."""
    return CameraSource(
        spec,
        size=parse_size(size),
        max_width=max_width,
        realtime=realtime,
        options=options,
    )
