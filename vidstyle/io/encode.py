"""Video file sink: encoding through PyAV, with the input's audio carried over in sync.

The codec settings are resolved in :mod:`vidstyle.io.codecs`, the audio is carried over by
:mod:`vidstyle.io.audio_mux`; both are re-exported here.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.colour.spaces import BT709_TAGS, VideoTags
from vidstyle.errors import InvalidOptionError, OutputError, ShapeError, UnsupportedFormatError
from vidstyle.frame import Frame, from_float32
from vidstyle.io.audio_mux import AudioMux
from vidstyle.io.base import Sink, SourceInfo, frame_output
from vidstyle.io.codecs import CODECS, CONTAINER_CODECS, EncoderSettings, resolve_encoder
from vidstyle.io.output import VIDEO_EXTS, check_output, temp_path_for

__all__ = ["EncoderSettings", "resolve_encoder", "VideoSink", "CODECS", "CONTAINER_CODECS"]


_BT2020_NCL = 9


def _output_tags(given: VideoTags | None, input_tags: VideoTags | None) -> VideoTags:
    """The tags a video output gets: ``given`` (the declared output space), else the input's,
    else BT.709; the matrix is always one the encoder applies (BT.709, or BT.2020 for BT.2020)."""
    if given is not None:
        tags = given  # as declared: primaries without an H.273 code (ACES AP0/AP1) stay unspecified
    elif input_tags is not None and input_tags.specified:
        tags = input_tags.completed(BT709_TAGS)
    else:
        tags = BT709_TAGS
    matrix = _BT2020_NCL if tags.matrix == _BT2020_NCL else 1
    return VideoTags(primaries=tags.primaries, transfer=tags.transfer, matrix=matrix)


class VideoSink(Sink):
    """Encodes frames into a video file with PyAV.

    * Timing: same frame rate and time base as the input; each frame keeps its ``pts``
      (shifted so the first written frame is at 0), so variable frame rate stays variable.
      Frames without ``pts`` are placed at ``index / fps`` (25 fps when the input has no rate).
    * Colour: RGB → YUV with the BT.709 matrix (BT.2020's for a BT.2020 input), limited range.
      The stream and every frame are tagged with ``colour_tags`` (the declared output space),
      else the input's primaries and transfer (``info.colour_tags``), else BT.709; RGB codecs
      (ffv1's default bgr0) store the RGB values losslessly.
    * High bit depth: uint16 (and float) frames are handed to the encoder as ``rgb48le`` when
      the pixel format has more than 8 bits (no 8-bit quantisation on the way).
    * Odd sizes: chroma-subsampled formats (yuv420p needs even width and height) get the last
      row/column replicated up to the next even size (never a crash); the output is then one
      pixel wider/taller than the input.
    * Audio: every audio stream of ``audio_from`` is carried over in sync (see :class:`~vidstyle.io.audio_mux.AudioMux`).
    * Safety: everything goes to ``<stem>.partial<suffix>`` in the target folder;
      :meth:`close` renames it to the final name; :meth:`abort` flushes and closes it so it plays,
      and leaves it under the temporary name.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        info: SourceInfo,
        codec: str = "h264",
        crf: int | None = None,
        pix_fmt: str | None = None,
        preset: str | None = None,
        bit_depth: int | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        colour_tags: VideoTags | None = None,
    ) -> None:
        import av

        super().__init__()
        self.final_path = Path(path)
        self.temp_path = temp_path_for(path)
        ext = self.final_path.suffix.lower()
        if ext not in VIDEO_EXTS:
            raise InvalidOptionError(f"unknown video type '{ext}'; use one of {', '.join(VIDEO_EXTS)}")
        self._format = VIDEO_EXTS[ext]
        self.settings = resolve_encoder(
            codec=codec, container_format=self._format, crf=crf, pix_fmt=pix_fmt, preset=preset, bit_depth=bit_depth
        )
        check_output(path, input_spec=info.path, overwrite=overwrite)
        self._info = info
        self.colour_tags = _output_tags(colour_tags, info.colour_tags)
        self._fps = Fraction(info.fps) if info.fps else Fraction(25)
        self._tb = Fraction(info.time_base) if info.time_base else 1 / self._fps
        self._frame_dur = max(1, round(1 / (self._fps * self._tb)))
        self._audio_from = audio_from
        self._high = self.settings.high_bit_depth
        self._stream: Any = None
        self._audio: AudioMux | None = None
        self._t0: Fraction | None = None
        self._last_pts = -1
        self._end_time = 0.0  # output seconds covered by the video so far
        self._size: tuple[int, int] | None = None
        self._pad = (0, 0)
        self._closed = False
        if self.settings.codec == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner unless told otherwise
        container_options = {}
        if self._format in ("mp4", "mov") and self._tb.numerator == 1 and self._tb.denominator < 2**31:
            # keep the input's time base (movenc would otherwise pick a multiple of it ≥ 10000)
            container_options["video_track_timescale"] = str(self._tb.denominator)
        try:
            self._container = av.open(
                str(self.temp_path), mode="w", format=self._format, container_options=container_options
            )
        except (OSError, av.error.FFmpegError) as e:
            raise OutputError(
                f"cannot create '{self.temp_path}' ({getattr(e, 'strerror', None) or e}); check the folder is writable"
            ) from None

    # ----------------------------------------------------------------------------- set-up
    def _open_streams(self, width: int, height: int) -> None:
        import av

        s = self.settings
        fmt = av.VideoFormat(s.pix_fmt)
        align_w = 1 if fmt.is_rgb else max(1, 64 // fmt.chroma_width(64))
        align_h = 1 if fmt.is_rgb else max(1, 64 // fmt.chroma_height(64))
        self._pad = ((-height) % align_h, (-width) % align_w)
        self._size = (width, height)
        try:
            stream = self._container.add_stream(s.encoder, rate=self._fps, options=dict(s.options))
        except Exception as e:
            raise UnsupportedFormatError(f"cannot add a {s.codec} stream to '{self.final_path}' ({e})") from None
        stream.width = width + self._pad[1]
        stream.height = height + self._pad[0]
        stream.pix_fmt = s.pix_fmt
        stream.time_base = self._tb
        stream.codec_context.time_base = self._tb
        if s.codec_tag:
            stream.codec_tag = s.codec_tag
        if not s.is_rgb:
            tags = self.colour_tags
            cc = stream.codec_context
            cc.colorspace = tags.matrix
            cc.color_primaries = tags.primaries
            cc.color_trc = tags.transfer
            cc.color_range = 1  # limited ("tv") range
        if s.codec in ("prores", "ffv1"):
            stream.codec_context.thread_type = "AUTO"
        if self._info.timecode:
            stream.metadata["timecode"] = self._info.timecode
        self._stream = stream
        if self._audio_from is not None and self._info.kind != "images":
            try:
                self._audio = AudioMux(
                    spec=self._audio_from,
                    container=self._container,
                    container_format=self._format,
                    warnings=self.warnings,
                )
            except Exception as e:  # no audio rather than no video
                self.warnings.append(f"audio: cannot read '{self._audio_from}' ({e}); the output has no audio")
                self._audio = None
        try:
            self._container.start_encoding()  # writes the header: the temporary file exists from here on
        except av.error.FFmpegError as e:
            raise OutputError(
                f"cannot start writing '{self.temp_path}' ({getattr(e, 'strerror', None) or e}); "
                "check the codec options and the folder"
            ) from None

    # ----------------------------------------------------------------------------- writing
    def _to_video_frame(self, image: np.ndarray, index: int) -> Any:
        import av
        from av.video.reformatter import ColorRange, Colorspace

        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ShapeError(
                f"frame {index}: expected an H×W×3 RGB array, got {getattr(image, 'shape', type(image).__name__)}"
            )
        if image.shape[2] == 4:
            image = image[:, :, :3]
        h, w = image.shape[:2]
        if (w, h) != self._size:
            assert self._size is not None
            raise ShapeError(
                f"frame {index} is {w}x{h} but the output is {self._size[0]}x{self._size[1]}; "
                "all frames of a video must have one size"
            )
        if image.dtype == np.uint8 and self._high:
            image = image.astype(np.uint16) * np.uint16(257)  # exact 8 → 16 bit (swscale shifts by 8)
            fmt = "rgb48le"
        elif image.dtype == np.uint8:
            fmt = "rgb24"
        elif image.dtype == np.uint16:
            fmt = "rgb48le"
        elif image.dtype.kind == "f":
            image = from_float32(image, np.uint16 if self._high else np.uint8)
            fmt = "rgb48le" if self._high else "rgb24"
        else:
            raise ShapeError(
                f"frame {index}: images of type {image.dtype} cannot be encoded; use uint8, uint16 or float32"
            )
        if fmt == "rgb48le" and image.dtype.byteorder == ">":
            image = image.astype("<u2")
        ph, pw = self._pad
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        if self.settings.is_rgb:
            return vf.reformat(format=self.settings.pix_fmt)
        tags = self.colour_tags
        matrix = Colorspace.BT2020 if tags.matrix == _BT2020_NCL else Colorspace.ITU709
        out = vf.reformat(format=self.settings.pix_fmt, dst_colorspace=matrix, dst_color_range=ColorRange.MPEG)
        # some encoders (prores_ks) write the frame's tags, not the stream's, into each frame header
        out.color_primaries = tags.primaries
        out.color_trc = tags.transfer
        out.colorspace = tags.matrix
        return out

    def _pts_for(self, frame: Frame) -> int:
        if frame.pts is not None:
            ftb = Fraction(frame.time_base) if frame.time_base is not None else self._tb
            t = frame.pts * ftb
            if self._t0 is None:
                self._t0 = t
            pts = round((t - self._t0) / self._tb)
        else:
            if self._t0 is None:
                self._t0 = Fraction(self._info.start_time).limit_denominator(1_000_000)
            pts = self.frames_written * self._frame_dur
        if pts <= self._last_pts:  # encoders need strictly increasing timestamps
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def write(self, frame: Frame) -> None:
        import av

        if self._closed:
            raise OutputError(f"'{self.final_path}' is already closed; open a new sink")
        image = frame_output(frame)
        if self._stream is None:
            if not isinstance(image, np.ndarray) or image.ndim != 3:
                raise ShapeError(
                    f"frame {frame.index}: expected an H×W×3 RGB array, got {getattr(image, 'shape', image)}"
                )
            self._open_streams(int(image.shape[1]), int(image.shape[0]))
        vf = self._to_video_frame(image, frame.index)  # type: ignore[arg-type]
        pts = self._pts_for(frame)
        vf.pts = pts
        vf.time_base = self._tb
        vf.duration = self._frame_dur
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except av.error.FFmpegError as e:
            raise OutputError(
                f"encoding frame {frame.index} into '{self.temp_path}' failed ({getattr(e, 'strerror', None) or e}); "
                "check the disk space and the codec options"
            ) from None
        if self._audio is not None:
            if self.frames_written == 0:
                self._audio.start(float(self._t0 or 0))
            self._audio.pump(float(pts * self._tb))
        self._end_time = float((pts + self._frame_dur) * self._tb)
        self.frames_written += 1

    # ----------------------------------------------------------------------------- ending
    def _finish(self) -> None:
        """Flush the encoder, write the remaining audio up to the end of the video, close."""
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                if self._audio is not None:
                    if self.frames_written and self._packets_started():
                        self._audio.pump(self._end_time, final=True)
        finally:
            if self._audio is not None:
                self._audio.close()
            self._container.close()
            self._closed = True

    def _packets_started(self) -> bool:
        return self._audio is not None and self._audio._packets is not None

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns the final path.

        Raises:
            OutputError: nothing was written (no file is left), or finishing the file failed.
        """
        if self._closed:
            return self.final_path
        if self.frames_written == 0:
            self._discard()
            raise OutputError(
                f"no frames were written to '{self.final_path}'; the input had no frames in the selected range"
            )
        try:
            self._finish()
        except Exception as e:
            raise OutputError(
                f"finishing '{self.temp_path}' failed ({e}); the partial file is kept under that name"
            ) from None
        try:
            os.replace(self.temp_path, self.final_path)
        except OSError as e:
            raise OutputError(f"cannot rename '{self.temp_path}' to '{self.final_path}' ({e.strerror})") from None
        return self.final_path

    def abort(self) -> Path | None:
        """Stop: flush what was encoded, close the container so the file plays, keep it under
        :attr:`temp_path` (returned). Returns ``None`` (and leaves no file) if no frame was written."""
        if self._closed:
            return self.temp_path if self.temp_path.exists() else None
        if self.frames_written == 0:
            self._discard()
            return None
        try:
            self._finish()
        except Exception as e:  # keep going: the container is closed in _finish's finally
            self.warnings.append(f"while stopping: {e}")
        return self.temp_path if self.temp_path.exists() else None

    def _discard(self) -> None:
        try:
            if self._audio is not None:
                self._audio.close()
            self._container.close()
        except Exception:
            pass
        self._closed = True
        self.temp_path.unlink(missing_ok=True)
