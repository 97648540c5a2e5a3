"""The audio of a video output: every audio stream of the input, carried over in sync (:class:`AudioMux`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vidstyle.io.avinput import open_av_input

__all__ = ["AudioMux"]

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass
class _AudioTrack:
    src: Any
    out: Any
    copy: bool
    rate: int = 0


class AudioMux:
    """Carries every audio stream of an input into the output, in step with the video.

    Stream copy where the output container takes the codec (PCM into MP4 is re-encoded to AAC
    for player compatibility; WebM takes only Opus/Vorbis, so others become Opus), else
    re-encoded to AAC. Packets are read lazily, up to the time of the last video frame written,
    so memory does not grow with the length of the video, and the muxer interleaves them.

    Timing: output time 0 is the input time ``t0`` of the first video frame; audio before it is
    dropped, except in MP4/MOV the packet that overlaps ``t0`` (AAC's priming packet at pts −1024
    on an untrimmed input), kept at its negative time so that the decoded samples equal the
    input's (the edit list hides the priming samples); audio is cut at the end of the video, a
    packet being kept when at least half of it lies inside (so the audio length matches the video within half a packet, ~21 ms for AAC).
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
        self._edit_lists = container_format in ("mp4", "mov")
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
                # MP4/MOV: a packet that ends at or after output time 0 is kept, with its negative
                # time if it starts before (AAC's priming packet, pts -1024, or after a cut the
                # packet the decoder primes itself with); the muxer's edit list hides it. Other
                # containers cannot store negative times without shifting the video: dropped there.
                first = t + dur if self._edit_lists else t
                if first < -1e-3 or (final and t + dur / 2 > until + 1e-9):
                    continue
                out_pts = round(t / tb)
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
