"""Video file sink: encoding through PyAV, with the input's audio carried over in sync."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.errors import InvalidOptionError, OutputError, ShapeError, UnsupportedFormatError
from vidstyle.frame import Frame, from_float32
from vidstyle.io.avinput import open_av_input
from vidstyle.io.base import Sink, SourceInfo, frame_output
from vidstyle.io.naming import with_parameter
from vidstyle.io.output import VIDEO_EXTS, check_output, temp_path_for
from vidstyle.options.spec import OptionValueError

__all__ = ["EncoderSettings", "resolve_encoder", "VideoSink", "CODECS", "CONTAINER_CODECS"]

_X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
_VP9_CPU_USED = dict(zip(_X26X_PRESETS, ("8", "7", "6", "5", "4", "3", "2", "1", "0", "0")))
_SVT_PRESET = dict(zip(_X26X_PRESETS, ("12", "11", "10", "9", "8", "7", "5", "4", "2", "0")))
_PRORES_PROFILES = ("proxy", "lt", "standard", "hq", "4444", "4444xq")
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass(frozen=True, slots=True)
class _Codec:
    name: str
    encoder: str
    pix8: str
    pix16: str | None
    crf_default: int | None
    crf_max: int | None


#: the codecs a video sink writes: ``codec`` name → encoder and default pixel formats
CODECS: dict[str, _Codec] = {
    "h264": _Codec("h264", "libx264", "yuv420p", "yuv420p10le", 18, 51),
    "hevc": _Codec("hevc", "libx265", "yuv420p", "yuv420p10le", 20, 51),
    "prores": _Codec("prores", "prores_ks", "yuv422p10le", "yuv422p10le", None, None),
    "ffv1": _Codec("ffv1", "ffv1", "bgr0", "gbrp16le", None, None),
    "vp9": _Codec("vp9", "libvpx-vp9", "yuv420p", None, 31, 63),
    "av1": _Codec("av1", "libsvtav1", "yuv420p", "yuv420p10le", 35, 63),
}
_ALIASES = {
    "x264": "h264",
    "libx264": "h264",
    "avc": "h264",
    "h265": "hevc",
    "x265": "hevc",
    "libx265": "hevc",
    "prores_ks": "prores",
    "libvpx-vp9": "vp9",
    "vp09": "vp9",
    "libsvtav1": "av1",
    "svtav1": "av1",
    "svt-av1": "av1",
}
#: which codecs each muxer takes (checked on this FFmpeg build; ProRes is not allowed in MP4,
#: FFV1 not in MOV)
CONTAINER_CODECS: dict[str, frozenset[str]] = {
    "mp4": frozenset({"h264", "hevc", "ffv1", "vp9", "av1"}),
    "mov": frozenset({"h264", "hevc", "prores", "vp9", "av1"}),
    "matroska": frozenset(CODECS),
    "webm": frozenset({"vp9", "av1"}),
    "avi": frozenset({"h264", "ffv1", "vp9", "av1"}),
}
_EXT_OF = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """Everything needed to open the video encoder."""

    codec: str
    encoder: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    codec_tag: str | None = None

    @property
    def high_bit_depth(self) -> bool:
        import av

        return max(c.bits for c in av.VideoFormat(self.pix_fmt).components) > 8

    @property
    def is_rgb(self) -> bool:
        import av

        return bool(av.VideoFormat(self.pix_fmt).is_rgb)


def resolve_encoder(
    *,
    codec: str,
    container_format: str,
    crf: int | None = None,
    pix_fmt: str | None = None,
    preset: str | None = None,
    bit_depth: int | None = None,
) -> EncoderSettings:
    """Validate the codec options against the codec, the container and this FFmpeg build.

    Defaults: h264 → libx264 yuv420p CRF 18 preset medium; hevc → libx265 yuv420p CRF 20;
    prores → prores_ks yuv422p10le profile HQ (``pix_fmt`` yuv444p10le/yuva444p10le → 4444;
    ``preset`` picks the profile: proxy, lt, standard, hq, 4444, 4444xq); ffv1 → lossless RGB
    (bgr0, gbrp16le for 16-bit): the decoded frames are bit-identical to what was written;
    vp9 → libvpx-vp9 yuv420p CRF 31 (``preset`` → cpu-used); av1 → libsvtav1 yuv420p CRF 35
    (``preset`` → SVT preset 0–13). ``bit_depth`` > 8 picks the codec's 10/16-bit format.

    Raises:
        InvalidOptionError: unknown codec, a codec the container cannot hold, a pixel format
            the encoder does not take, a CRF out of range or for a codec without CRF, an
            unknown preset.
        UnsupportedFormatError: the encoder is missing from this FFmpeg build.
    """
    import av

    key = _ALIASES.get(codec.lower(), codec.lower())
    if key not in CODECS:
        raise InvalidOptionError(f"unknown codec '{codec}'; use one of {', '.join(CODECS)}")
    spec = CODECS[key]
    allowed = CONTAINER_CODECS.get(container_format, frozenset(CODECS))
    if key not in allowed:
        good = [_EXT_OF[f] for f, cs in CONTAINER_CODECS.items() if key in cs]
        ext = _EXT_OF.get(container_format, container_format)
        raise InvalidOptionError(
            f"{key} cannot be written into {ext} files; use {' or '.join(good)} for {key}, "
            f"or another codec ({', '.join(sorted(allowed))}) for {ext}"
        )
    try:
        av_codec = av.Codec(spec.encoder, "w")
    except Exception:
        raise with_parameter(UnsupportedFormatError(
            f"this FFmpeg build has no {spec.encoder} encoder for {key}; choose another `codec`"
        ), "codec") from None
    formats = [f.name for f in (av_codec.video_formats or ())]

    # pixel format
    if pix_fmt is None:
        if key == "prores" and preset in ("4444", "4444xq"):
            pix_fmt = "yuv444p10le"
        elif bit_depth is not None and bit_depth > 8:
            if spec.pix16 is None or spec.pix16 not in formats:
                raise OptionValueError(
                    "codec",
                    f"{key} cannot be encoded above 8 bits with this FFmpeg build; "
                    "use `codec` hevc, av1, prores or ffv1 for high bit depth",
                )
            pix_fmt = spec.pix16
        else:
            pix_fmt = spec.pix8
    elif formats and pix_fmt not in formats:
        raise InvalidOptionError(f"{key} does not take pixel format '{pix_fmt}'; use one of {', '.join(formats)}")

    # quality
    options: dict[str, str] = {}
    if crf is not None and spec.crf_default is None:
        raise OptionValueError(
            "crf",
            f"crf does not apply to {key} ({'fixed-quality profiles' if key == 'prores' else 'lossless'}); "
            "drop `crf`" + (", or pick a profile with `preset`" if key == "prores" else ""),
            also=("preset",),
        )
    if spec.crf_default is not None:
        value = spec.crf_default if crf is None else crf
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= (spec.crf_max or 51):
            raise OptionValueError(
                "crf", f"crf must be 0 (best) to {spec.crf_max} (smallest) for {key}, got {crf}"
            )
        options["crf"] = str(value)

    # preset / profile and codec specifics
    def bad_preset(choices: tuple[str, ...] | list[str]) -> OptionValueError:
        return OptionValueError("preset", f"preset must be one of {', '.join(choices)} for {key}, got '{preset}'")

    codec_tag = None
    if key in ("h264", "hevc"):
        p = preset or "medium"
        if p not in _X26X_PRESETS:
            raise bad_preset(_X26X_PRESETS)
        options["preset"] = p
        if key == "hevc":
            options["x265-params"] = "log-level=error"
            if container_format in ("mp4", "mov"):
                codec_tag = "hvc1"  # what Apple players expect
    elif key == "vp9":
        p = preset or "fast"
        cpu = _VP9_CPU_USED.get(p, p)
        if not (cpu.isdigit() and 0 <= int(cpu) <= 8):
            raise bad_preset([*_X26X_PRESETS, "0-8"])
        options.update({"b": "0", "cpu-used": cpu, "row-mt": "1", "deadline": "good"})
    elif key == "av1":
        p = preset or "fast"
        level = _SVT_PRESET.get(p, p)
        if not (level.isdigit() and 0 <= int(level) <= 13):
            raise bad_preset([*_X26X_PRESETS, "0-13"])
        options["preset"] = level
    elif key == "prores":
        is444 = pix_fmt in ("yuv444p10le", "yuva444p10le")
        p = preset or ("4444" if is444 else "hq")
        if p not in _PRORES_PROFILES:
            raise bad_preset(_PRORES_PROFILES)
        if p.startswith("4444") != is444:
            raise OptionValueError(
                "pix_fmt",
                f"prores profile {p} needs pixel format {'yuv444p10le' if p.startswith('4444') else 'yuv422p10le'} "
                f"(got {pix_fmt}); drop `pix_fmt` or choose a matching profile with `preset`",
                also=("preset",),
            )
        options.update({"profile": p, "vendor": "apl0"})
    elif key == "ffv1":
        if preset is not None:
            raise OptionValueError("preset", "preset does not apply to ffv1 (lossless); drop it")
        options.update({"level": "3", "slicecrc": "1", "g": "1"})
    return EncoderSettings(codec=key, encoder=spec.encoder, pix_fmt=pix_fmt, options=options, codec_tag=codec_tag)


# --------------------------------------------------------------------------------------- audio
@dataclass
class _AudioTrack:
    src: Any
    out: Any
    copy: bool
    rate: int = 0


class _AudioMux:
    """Carries every audio stream of an input into the output, in step with the video.

    Stream copy where the output container takes the codec (PCM into MP4 is re-encoded to AAC
    for player compatibility; WebM takes only Opus/Vorbis, so others become Opus), else
    re-encoded to AAC. Packets are read lazily, up to the time of the last video frame written,
    so memory does not grow with the length of the video, and the muxer interleaves them.

    Timing: output time 0 is the input time ``t0`` of the first video frame; audio before it is
    dropped, and audio is cut at the end of the video, a packet being kept when at least half
    of it lies inside (so the audio length matches the video within half a packet, ~21 ms for AAC).
    """

    def __init__(
        self, *, spec: str | os.PathLike[str], container: Any, container_format: str, warnings: list[str]
    ) -> None:
        self._in, _ = open_av_input(spec)
        self._warnings = warnings
        self._tracks: dict[int, _AudioTrack] = {}
        supported = container.supported_codecs
        for s in self._in.streams.audio:
            name = s.codec_context.name
            copy = name in supported and not (container_format == "mp4" and name.startswith("pcm_"))
            if copy:
                out = container.add_stream_from_template(s)
                self._tracks[s.index] = _AudioTrack(src=s, out=out, copy=True)
            else:
                target = "libopus" if container_format == "webm" else "aac"
                rate = 48000 if target == "libopus" else (s.codec_context.sample_rate or 48000)
                channels = min(s.codec_context.channels or 2, 2 if target == "libopus" else 8)
                layout = _LAYOUTS[channels]  # a named layout ("2 channels" is refused by aac)
                out = container.add_stream(target, rate=rate, layout=layout)
                self._tracks[s.index] = _AudioTrack(src=s, out=out, copy=False, rate=rate)
            out.metadata.update({k: v for k, v in s.metadata.items() if k in ("language", "title", "handler_name")})
        self._packets: Iterator[Any] | None = None
        self._pending: Any = None
        self._t0 = 0.0
        self._exhausted = not self._tracks
        self._container = container
        self.packets_written = 0

    @property
    def tracks(self) -> int:
        return len(self._tracks)

    def start(self, t0: float) -> None:
        """Output time 0 is input time ``t0`` (seconds)."""
        self._t0 = t0
        if not self._tracks:
            return
        if t0 > 1.0:
            try:
                self._in.seek(int((t0 - 1.0) * 1_000_000), backward=True)
            except Exception:
                pass
        self._packets = self._in.demux(*[t.src for t in self._tracks.values()])

    def _next_packet(self) -> Any:
        if self._pending is not None:
            pkt, self._pending = self._pending, None
            return pkt
        if self._exhausted or self._packets is None:
            return None
        try:
            return next(self._packets)
        except StopIteration:
            self._exhausted = True
        except Exception as e:  # a damaged audio track must not stop the video
            self._exhausted = True
            self._warnings.append(f"audio: stopped reading '{self._in.name}' ({e}); the rest of the audio is missing")
        return None

    def pump(self, until: float, *, final: bool = False) -> None:
        """Write the audio up to output time ``until`` (seconds). ``final``: ``until`` is the
        end of the video; audio beyond it is dropped and encoders are flushed."""
        while True:
            pkt = self._next_packet()
            if pkt is None:
                break
            track = self._tracks[pkt.stream.index]
            if pkt.dts is None and pkt.pts is None:  # flush packet at the end of the input
                if not track.copy:
                    self._encode(track, pkt, until if final else None)
                continue
            tb = pkt.time_base
            t = float((pkt.pts if pkt.pts is not None else pkt.dts) * tb) - self._t0
            if not final and t > until:
                self._pending = pkt
                return
            if final and t > until + 1.0:
                break
            if track.copy:
                dur = float((pkt.duration or 0) * tb)
                if t < -1e-3 or (final and t + dur / 2 > until + 1e-9):
                    continue
                out_pts = max(0, round(t / tb))
                pkt.pts = out_pts
                pkt.dts = out_pts
                pkt.stream = track.out
                self._mux(pkt)
            else:
                self._encode(track, pkt, until if final else None)
        if final:
            for track in self._tracks.values():
                if not track.copy:
                    try:
                        for p in track.out.encode(None):
                            self._mux(p)
                    except Exception as e:
                        self._warnings.append(f"audio: could not flush the encoder ({e})")

    def _encode(self, track: _AudioTrack, pkt: Any, limit: float | None) -> None:
        try:
            frames = pkt.decode()
        except Exception as e:
            self._warnings.append(f"audio: skipped an undecodable packet ({e})")
            return
        for af in frames:
            if af.pts is None:
                continue
            t = float(af.pts * af.time_base) - self._t0
            dur = af.samples / (af.sample_rate or 1)
            if t < -1e-3 or (limit is not None and t + dur / 2 > limit + 1e-9):
                continue
            af.pts = round(t * af.sample_rate)
            af.time_base = Fraction(1, af.sample_rate)
            for p in track.out.encode(af):
                self._mux(p)

    def _mux(self, pkt: Any) -> None:
        self._container.mux(pkt)
        self.packets_written += 1

    def close(self) -> None:
        self._in.close()


# --------------------------------------------------------------------------------------- video
class VideoSink(Sink):
    """Encodes frames into a video file with PyAV.

    * Timing: same frame rate and time base as the input; each frame keeps its ``pts``
      (shifted so the first written frame is at 0), so variable frame rate stays variable.
      Frames without ``pts`` are placed at ``index / fps`` (25 fps when the input has no rate).
    * Colour: RGB → YUV with the BT.709 matrix, limited range, tagged as such; RGB codecs
      (ffv1's default bgr0) store the RGB values losslessly.
    * High bit depth: uint16 (and float) frames are handed to the encoder as ``rgb48le`` when
      the pixel format has more than 8 bits (no 8-bit quantisation on the way).
    * Odd sizes: chroma-subsampled formats (yuv420p needs even width and height) get the last
      row/column replicated up to the next even size (never a crash); the output is then one
      pixel wider/taller than the input.
    * Audio: every audio stream of ``audio_from`` is carried over in sync (see :class:`_AudioMux`).
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
        self._fps = Fraction(info.fps) if info.fps else Fraction(25)
        self._tb = Fraction(info.time_base) if info.time_base else 1 / self._fps
        self._frame_dur = max(1, round(1 / (self._fps * self._tb)))
        self._audio_from = audio_from
        self._high = self.settings.high_bit_depth
        self._stream: Any = None
        self._audio: _AudioMux | None = None
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
            cc = stream.codec_context
            cc.colorspace = 1  # AVCOL_SPC_BT709
            cc.color_primaries = 1
            cc.color_trc = 1
            cc.color_range = 1  # limited ("tv") range
        if s.codec in ("prores", "ffv1"):
            stream.codec_context.thread_type = "AUTO"
        if self._info.timecode:
            stream.metadata["timecode"] = self._info.timecode
        self._stream = stream
        if self._audio_from is not None and self._info.kind != "images":
            try:
                self._audio = _AudioMux(
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
        return vf.reformat(
            format=self.settings.pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )

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
