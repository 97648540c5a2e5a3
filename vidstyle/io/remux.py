"""Partial outputs that play after any end: MP4/MOV are written as Matroska and remuxed when complete.

An MP4 or MOV file keeps its index at the end: a kill, a power cut or a full disk before the end
leaves a file nothing can play. A Matroska file is readable up to its last written cluster. So a
video sink that writes MP4/MOV encodes into ``NAME.partial.mkv`` (:data:`PARTIAL_FORMAT`) and, when
the run completes, copies the packets into the final container (:func:`remux`): no re-encoding.

Matroska stores timestamps in milliseconds, which would round an input's exact ones (1001/30000 s,
1/90000 s). :class:`PacketLog` therefore records every packet's exact ``pts``, ``dts``, ``duration``
and time base as it is muxed, and :func:`remux` gives each packet those values back, so the final
file has the timestamps a direct write would have had (first pts, B-frame dts, edit list).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["PARTIAL_FORMAT", "PARTIAL_EXT", "PARTIAL_OPTIONS", "REMUXED_FORMATS", "PacketTimes", "StreamSetup", "PacketLog",
           "RemuxError", "remux", "unplayable_reason"]

#: the container a partial is written in when the final one does not survive an abrupt end
PARTIAL_FORMAT = "matroska"
PARTIAL_EXT = ".mkv"
#: a cluster (Matroska's unit of writing) every quarter second of video, handed to the OS when complete:
#: a kill loses the frames the encoder still holds (H.264's default preset looks 40 frames ahead) plus
#: at most a quarter second, never the file
PARTIAL_OPTIONS = {"cluster_time_limit": "250", "flush_packets": "1"}
#: final containers written through a Matroska partial (their index is written last). Matroska,
#: WebM and AVI files play up to the point where they were cut, so those are written directly.
REMUXED_FORMATS = frozenset({"mp4", "mov"})


class RemuxError(RuntimeError):
    """The complete partial file could not be copied into the final container."""


@dataclass(frozen=True, slots=True)
class PacketTimes:
    """The exact timing of one muxed packet, in ``time_base`` units."""

    pts: int | None
    dts: int | None
    duration: int
    time_base: Fraction


@dataclass(frozen=True, slots=True)
class StreamSetup:
    """What the final container's stream needs beyond the codec parameters the partial carries."""

    time_base: Fraction | None = None
    rate: Fraction | None = None  # video frame rate (lets the muxer time the last frame)
    codec_tag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    extradata: bool = True  # False: the encoder made none (Matroska may add some, e.g. ProRes's fourcc)


class PacketLog:
    """An output container that records the exact timing of every packet muxed into it.

    Stands in for the container wherever packets are muxed (the video sink, the audio mux);
    everything else is passed through. ``supported_codecs`` is what both the partial and the
    final container take, so a stream copied into the partial can be copied into the final file.
    """

    def __init__(self, container: Any, *, final_format: str) -> None:
        import io

        import av

        self._container = container
        self.times: dict[int, list[PacketTimes]] = {}
        with av.open(io.BytesIO(), "w", format=final_format) as probe:  # writes nothing: no stream
            final_codecs = set(probe.supported_codecs)
        self.supported_codecs = set(container.supported_codecs) & final_codecs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def mux(self, packet: Any) -> None:
        if packet.size:  # the muxer drops empty packets; the remux must not count them
            self.times.setdefault(packet.stream.index, []).append(
                PacketTimes(packet.pts, packet.dts, int(packet.duration or 0), Fraction(packet.time_base))
            )
        self._container.mux(packet)


def remux(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    container_format: str,
    streams: Sequence[StreamSetup],
    times: Mapping[int, Sequence[PacketTimes]],
    container_options: Mapping[str, str] | None = None,
) -> None:
    """Copy every packet of the finished partial ``src`` into ``dst`` (``container_format``), with
    the exact timing recorded in ``times`` (per stream index, in mux order).

    Raises:
        RemuxError: the partial's packets do not match the record, or FFmpeg refused the copy
            (``dst`` is then incomplete; the caller removes it).
        OSError: reading or writing failed (a full disk).
    """
    import av

    with av.open(str(src)) as inp:
        if len(inp.streams) != len(streams):
            raise RemuxError(f"the partial has {len(inp.streams)} streams, {len(streams)} were written")
        out = av.open(str(dst), "w", format=container_format, container_options=dict(container_options or {}))
        ok = False
        try:
            mapping: dict[int, Any] = {}
            for s, setup in zip(inp.streams, streams):
                o = out.add_stream_from_template(s, opaque=True)
                if setup.time_base is not None:
                    o.time_base = setup.time_base
                if setup.rate is not None:
                    o.codec_context.framerate = setup.rate
                if setup.codec_tag:
                    o.codec_tag = setup.codec_tag
                if not setup.extradata:
                    o.codec_context.extradata = None
                o.metadata.update(dict(setup.metadata))
                mapping[s.index] = o
            seen = {i: 0 for i in mapping}
            for packet in inp.demux():
                if not packet.size:  # the demuxer's end-of-stream marker
                    continue
                i = packet.stream.index
                log = times.get(i, ())
                k = seen[i]
                if k >= len(log):
                    raise RemuxError(f"stream {i} has more packets than were written ({len(log)})")
                t = log[k]
                seen[i] = k + 1
                packet.time_base = t.time_base
                packet.pts, packet.dts, packet.duration = t.pts, t.dts, t.duration
                packet.stream = mapping[i]
                out.mux(packet)
            for i, n in seen.items():
                if n != len(times.get(i, ())):
                    raise RemuxError(f"stream {i}: {n} packets in the partial, {len(times.get(i, ()))} written")
            out.close()  # writes the index
            ok = True
        except av.error.FFmpegError as e:
            if isinstance(e, OSError) and e.errno is not None and e.errno < 1000:
                raise OSError(e.errno, e.strerror or str(e)) from None
            raise RemuxError(str(e)) from None
        finally:
            if not ok:
                try:
                    out.close()
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass


def unplayable_reason(path: str | os.PathLike[str]) -> str | None:
    """``None`` when the first video frame of ``path`` decodes, else why not (one phrase)."""
    import av

    try:
        with av.open(str(Path(path))) as c:
            if not c.streams.video:
                return "it has no video stream"
            for _ in c.decode(video=0):
                return None
        return "it holds no complete frame"
    except av.error.EOFError:  # the file ends before a frame does
        return "it holds no complete frame"
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return getattr(e, "strerror", None) or str(e)
