"""Video sources: anything FFmpeg reads (files, ``FORMAT:NAME`` inputs, URLs), through PyAV."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from vidstyle.colour.spaces import VideoTags
from vidstyle.errors import (
    CorruptInputError,
    InvalidInputError,
    InvalidOptionError,
    UnsupportedFormatError,
)
from vidstyle.frame import Frame
from vidstyle.io.avinput import describe_streams, open_av_input
from vidstyle.io.base import Source, SourceInfo
from vidstyle.io.naming import with_parameter
from vidstyle.io.timespec import TimeSpec, check_order

__all__ = ["VideoSource", "offset_timecode"]


def offset_timecode(timecode: str | None, frames: int, fps: Fraction | None) -> str | None:
    """``"01:00:00:00"`` plus ``frames`` at ``fps`` (non-drop-frame arithmetic); drop-frame
    timecodes (``;``) are returned unchanged when ``frames`` is 0 and dropped otherwise."""
    if not timecode or frames == 0:
        return timecode
    if ";" in timecode or not fps:
        return None
    try:
        hh, mm, ss, ff = (int(x) for x in timecode.split(":"))
    except ValueError:
        return None
    base = round(fps)
    total = ((hh * 60 + mm) * 60 + ss) * base + ff + frames
    ff, total = total % base, total // base
    ss, total = total % 60, total // 60
    mm, hh = total % 60, (total // 60) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def _duration_tag(metadata: Mapping[str, str]) -> float | None:
    """Seconds from a ``DURATION`` tag (``"00:01:02.500000000"``), as Matroska muxers write."""
    text = metadata.get("DURATION") or metadata.get("duration")
    if not text:
        return None
    try:
        parts = [float(x) for x in text.strip().split(":")]
    except ValueError:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds if seconds > 0 else None


def _pix_bits(fmt: Any) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except (AttributeError, ValueError):
        return 8


class VideoSource(Source):
    """Frames of a video file, stream or FFmpeg device, decoded by PyAV (threaded decoding).

    * Frames come in presentation order with their own ``pts`` and ``time_base`` (variable
      frame rate stays variable).
    * Rotation metadata (display matrix or ``rotate`` tag) is applied to the pixels;
      :attr:`SourceInfo.rotation` says how much, and width/height are the rotated size.
    * 8-bit inputs decode to ``rgb24`` (uint8); inputs with more than 8 bits per sample
      (yuv420p10le, ProRes, 16-bit PNG in MOV...) decode to ``rgb48le`` (uint16, ``bit_depth=16``).
      YUV → RGB uses the matrix and range the stream is tagged with (BT.601 when untagged).
    * ``start``/``end`` select a range: seek to the keyframe before ``start``, then decode
      forward to the exact frame; ``end`` is exclusive.

    **Damaged input**: a file whose index is readable but whose data is cut short (a truncated
    download or an interrupted recording) is decoded as far as possible; iteration then ends
    normally and a message ``"input truncated: ..."`` is appended to :attr:`warnings`. Damaged
    packets in the middle are skipped (counted in a warning). If not a single frame can be
    decoded, :class:`~vidstyle.errors.CorruptInputError` is raised when the source is opened.
    """

    def __init__(
        self,
        spec: str | os.PathLike[str],
        *,
        start: TimeSpec | None = None,
        end: TimeSpec | None = None,
        latest_only: bool = False,
        options: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.latest_only = latest_only
        self._spec = os.fspath(spec)
        self._container, self._parsed = open_av_input(spec, options=options)
        try:
            self._setup(start, end)
        except BaseException:
            self._container.close()
            raise

    # ----------------------------------------------------------------------------- set-up
    def _setup(self, start: TimeSpec | None, end: TimeSpec | None) -> None:
        import av

        c = self._container
        name = self._spec
        attached = av.stream.Disposition.attached_pic
        streams = [s for s in c.streams.video if not (s.disposition & attached)]
        if not streams:
            raise InvalidInputError(
                f"input '{name}' has no video stream ({describe_streams(c)}); "
                "give a video file, an image sequence or a camera"
            )
        stream = streams[0]
        self._stream = stream
        if self._parsed.kind == "device" and self.latest_only:
            stream.thread_type = "SLICE"  # frame threading adds frames of latency
        else:
            stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 1_000_000)
        self._tb = Fraction(tb)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._fps = Fraction(fps) if fps else None
        if stream.start_time is not None:
            first_time = float(stream.start_time * self._tb)
        elif c.start_time is not None:
            first_time = c.start_time / 1e6
        else:
            first_time = 0.0
        self._first_time = first_time
        total_duration: float | None = None
        if stream.duration:
            total_duration = float(stream.duration * self._tb)
        else:
            total_duration = _duration_tag(stream.metadata)  # Matroska/WebM keep it as a tag
        if total_duration is None and c.duration and len(c.streams) == 1:
            # the container's duration is the longest stream's: only the video's when it is alone
            total_duration = c.duration / 1e6
        if self._parsed.kind == "device":
            total_duration = None
        total_frames = stream.frames or (
            round(total_duration * self._fps) if total_duration is not None and self._fps else None
        )
        self._total_duration = total_duration

        # --- selection
        for spec in (start, end):
            if spec is not None and spec.frame is not None and not self._fps:
                raise InvalidOptionError(
                    f"cannot select frame {spec.frame} of '{name}': its frame rate is unknown; give seconds instead"
                )
        start_rel = start.to_seconds(self._fps) if start is not None else None
        end_rel = end.to_seconds(self._fps) if end is not None else None
        check_order(start, end, start_rel, end_rel)
        half = 0.5 / float(self._fps) if self._fps else 0.0005
        tol = min(1e-3, half)

        def threshold(spec: TimeSpec | None, rel: float | None) -> float | None:
            if spec is None or rel is None:
                return None
            return first_time + rel - (half if spec.frame is not None else tol)

        self._start_abs = threshold(start, start_rel)
        self._end_abs = threshold(end, end_rel)
        if start_rel and total_duration is not None and start_rel >= total_duration - tol:
            raise self._past_end(start, total_duration, total_frames)

        self._decoded = 0
        self._decode_errors = 0
        self._last_error = ""
        self._stopped_early = False
        self._last_time: float | None = None
        self._demux_failed = ""
        if start_rel and self._parsed.format != "lavfi" and self._parsed.kind != "device":
            target = self._start_abs - 2 * half  # type: ignore[operator]
            if target > first_time:
                try:
                    c.seek(int(math.floor(target / self._tb)), stream=stream, backward=True, any_frame=False)
                except av.error.FFmpegError:
                    pass  # not seekable: decode forward from the start
        self._raw = self._decode_raw()

        # --- the first selected frame: validates the input, gives size, depth, rotation
        first = None
        for fr in self._raw:
            t = self._time_of(fr)
            if self._start_abs is not None and t < self._start_abs:
                continue
            first = fr
            break
        if first is None:
            if self._decoded == 0 and "decoder" in self._last_error.lower():
                raise UnsupportedFormatError(
                    f"input '{name}': no decoder for its video codec ({self._last_error}); "
                    "convert it to a common format (e.g. H.264 mp4) first"
                )
            if self._decoded == 0:
                why = self._last_error or self._demux_failed or "no frames"
                raise CorruptInputError(
                    f"input '{name}' has no decodable video frame ({why}); the file is damaged or truncated — "
                    "re-export or re-copy it"
                )
            raise self._past_end(start, total_duration, total_frames)
        self._first = first
        first_time_sel = self._time_of(first)

        bits = _pix_bits(first.format)
        self._rgb_fmt = "rgb48le" if bits > 8 else "rgb24"
        self._coded_size = (first.width, first.height)
        rotation = self._rotation(first, stream)
        self._rot_k = -(rotation // 90)  # np.rot90 turns counter-clockwise for positive k
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width

        # --- counts and durations of the selection
        sel_start = start_rel or 0.0
        frame_count: int | None = None
        if total_frames is not None and self._fps:
            n0 = round(sel_start * self._fps)
            n1 = total_frames if end_rel is None else min(total_frames, round(end_rel * self._fps))
            frame_count = max(0, n1 - n0)
        elif end_rel is not None and self._fps:
            frame_count = max(0, round((end_rel - sel_start) * self._fps))
        if end_rel is not None and (total_duration is None or end_rel < total_duration):
            duration: float | None = end_rel - sel_start
        elif total_duration is not None:
            duration = total_duration - sel_start
        else:
            duration = None
        self._number0 = round(sel_start * self._fps) if (start_rel and self._fps) else 0
        timecode = stream.metadata.get("timecode") or c.metadata.get("timecode")
        self.info = SourceInfo(
            kind=self._parsed.kind,
            path=name,
            width=width,
            height=height,
            fps=self._fps,
            time_base=self._tb,
            frame_count=frame_count,
            duration=duration,
            bit_depth=16 if bits > 8 else 8,
            rotation=rotation,
            audio_streams=len(c.streams.audio),
            start_time=first_time_sel,
            first_number=None,
            end_time=(first_time + end_rel) if end_rel is not None else None,
            codec=stream.codec_context.name if stream.codec_context else None,
            pix_fmt=first.format.name,
            timecode=offset_timecode(timecode, self._number0, self._fps),
            colour_tags=VideoTags(primaries=int(first.color_primaries), transfer=int(first.color_trc),
                                  matrix=int(first.colorspace)),
        )
        self._iter = self._frames()

    def _past_end(self, start: TimeSpec | None, total_duration: float | None, total_frames: int | None) -> Exception:
        if total_duration is not None:
            frames = f", {total_frames} frames" if total_frames else ""
            return with_parameter(InvalidInputError(
                f"start {start} is after the end of '{self._spec}' (duration {total_duration:.2f} s{frames}); "
                f"choose a start before {total_duration:.2f} s"
            ), "start")
        return with_parameter(InvalidInputError(
            f"start {start} is after the end of '{self._spec}' (no frame at or after it); choose an earlier start"
        ), "start")

    @staticmethod
    def _rotation(frame: Any, stream: Any) -> int:
        """Clockwise degrees to rotate the coded picture for display (0, 90, 180, 270)."""
        ccw = None
        try:
            ccw = frame.rotation  # display matrix side data, counter-clockwise degrees
        except Exception:  # pragma: no cover - older PyAV
            ccw = None
        if ccw:
            cw = -float(ccw)
        else:
            tag = stream.metadata.get("rotate")
            try:
                cw = float(tag) if tag else 0.0
            except ValueError:
                cw = 0.0
        return int(round(cw / 90.0)) % 4 * 90

    # ----------------------------------------------------------------------------- decoding
    def _time_of(self, fr: Any) -> float:
        if fr.pts is not None:
            t = float(fr.pts * self._tb)
        elif self._last_time is not None and self._fps:
            t = self._last_time + 1.0 / float(self._fps)
        else:
            t = self._first_time
        return t

    def _decode_raw(self) -> Iterator[Any]:
        """Decoded PyAV frames; damaged packets are skipped, a failing demuxer ends the stream.

        The flush packets the demuxer yields at the end (``dts is None``) are decoded too, so
        the decoder's delayed last frames are not lost."""
        import av

        stream = self._stream
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:  # read error: truncated or broken file, lost device
                self._demux_failed = getattr(e, "strerror", None) or str(e)
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self._decode_errors += 1
                self._last_error = getattr(e, "strerror", None) or str(e)
                continue
            for fr in frames:
                self._decoded += 1
                yield fr
                self._last_time = self._time_of(fr)
        self._check_complete()

    def _check_complete(self) -> None:
        if self._stopped_early:
            return
        name = self._spec
        fps = float(self._fps) if self._fps else None
        total = self._total_duration
        last = self._last_time
        if total is not None and last is not None and fps:
            end_abs = self._first_time + total
            if self._end_abs is not None:
                end_abs = min(end_abs, self._end_abs)
            if last + 1.5 / fps < end_abs:
                self.warnings.append(
                    f"input truncated: decoded {self.frames_read} frames up to {last - self._first_time:.2f} s "
                    f"of {total:.2f} s in '{name}', the rest is unreadable; re-copy the file for the rest"
                )
                return
        if self._decode_errors:
            self.warnings.append(
                f"input damaged: skipped {self._decode_errors} unreadable packet(s) in '{name}' "
                f"({self._last_error}); the output may miss frames there"
            )
        elif self._demux_failed:
            self.warnings.append(f"input '{name}' ended with a read error ({self._demux_failed})")

    def _frames(self) -> Iterator[Frame]:
        fr = self._first
        self._first = None
        tb = self._tb
        frame_step = round(1 / (self._fps * tb)) if self._fps else 1
        index = 0
        last_pts: int | None = None
        while fr is not None:
            if fr.pts is not None:
                pts = int(fr.pts)
            elif last_pts is not None:
                pts = last_pts + frame_step
            else:
                pts = round(self._first_time / tb)
            last_pts = pts
            yield Frame(
                index=index,
                image=self._to_rgb(fr),
                pts=pts,
                time_base=tb,
                number=self._number0 + index,
                capture_time=time.perf_counter(),
            )
            index += 1
            self.frames_read = index
            fr = next(self._raw, None)
            if fr is not None and self._end_abs is not None and self._time_of(fr) >= self._end_abs:
                self._stopped_early = True
                break

    def _to_rgb(self, fr: Any) -> np.ndarray:
        w, h = self._coded_size
        if (fr.width, fr.height) != (w, h):  # resolution change mid-stream: keep the first size
            arr = fr.to_ndarray(format=self._rgb_fmt, width=w, height=h)
        else:
            arr = fr.to_ndarray(format=self._rgb_fmt)
        if self._rot_k:
            arr = np.rot90(arr, k=self._rot_k)
        return np.ascontiguousarray(arr)

    # ----------------------------------------------------------------------------- API
    def __iter__(self) -> Iterator[Frame]:
        return self._iter

    @property
    def frame_numbers(self) -> range | None:
        """Positions in the file of the selected frames, when the selection's frame count is known."""
        if self.info.frame_count is None or self.info.kind != "video":
            return None
        return range(self._number0, self._number0 + self.info.frame_count)

    def close(self) -> None:
        try:
            self._iter.close()
        except (AttributeError, ValueError):
            pass
        self._container.close()
