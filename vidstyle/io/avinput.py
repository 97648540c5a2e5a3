"""Opening FFmpeg inputs (files, ``FORMAT:NAME`` devices and generators, URLs) with typed errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidstyle.errors import (
    CameraError,
    CorruptInputError,
    InputNotFoundError,
    InvalidInputError,
    UnsupportedFormatError,
)

__all__ = ["AvSpec", "parse_av_spec", "open_av_input", "describe_streams"]

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_FORMAT_SPEC = re.compile(r"^([A-Za-z0-9_]{2,}):(.+)$", re.DOTALL)
_LIVE_PROTOCOLS = {"rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp"}


@dataclass(frozen=True, slots=True)
class AvSpec:
    """How to open an FFmpeg input: ``url`` (a path, URL or device name), an optional forced
    ``format`` and the source ``kind`` (``"video"`` or ``"device"``)."""

    url: str
    format: str | None
    kind: str


def _is_input_format(name: str) -> bool:
    """Whether FFmpeg has an input format (demuxer or device) of this name (``av.formats_available``
    misses devices such as ``v4l2``)."""
    from av.format import ContainerFormat

    try:
        return bool(ContainerFormat(name, "r").is_input)
    except (ValueError, TypeError):
        return False


def parse_av_spec(spec: str | os.PathLike[str]) -> AvSpec:
    """Classify an FFmpeg input.

    * ``FORMAT:NAME`` where FORMAT is an FFmpeg input format (``lavfi:testsrc2=size=640x360``,
      ``v4l2:/dev/video0``, ``avfoundation:0``, ``dshow:video=Cam``): opened with that format.
      ``lavfi`` generators are kind ``"video"``, everything else ``"device"``.
    * URLs (``rtsp://``, ``http://``...): live protocols are ``"device"``, others ``"video"``.
    * anything else is a file path.
    """
    text = os.fspath(spec)
    m = _URL.match(text)
    if m:
        proto = m.group(1).lower()
        return AvSpec(url=text, format=None, kind="device" if proto in _LIVE_PROTOCOLS else "video")
    m = _FORMAT_SPEC.match(text)
    if m and not os.path.exists(text) and _is_input_format(m.group(1)):
        fmt = m.group(1)
        return AvSpec(url=m.group(2), format=fmt, kind="video" if fmt == "lavfi" else "device")
    return AvSpec(url=text, format=None, kind="video")


def describe_streams(container: Any) -> str:
    kinds = [s.type for s in container.streams]
    if not kinds:
        return "no streams"
    parts = []
    for k in sorted(set(kinds)):
        n = kinds.count(k)
        parts.append(f"{n} {k}" if n > 1 else k)
    return "only " + ", ".join(parts)


def open_av_input(spec: str | os.PathLike[str], *, options: Mapping[str, str] | None = None) -> tuple[Any, AvSpec]:
    """``av.open`` an input for reading; every failure becomes a typed one-line error.

    Raises:
        InputNotFoundError: a file that does not exist.
        CorruptInputError: an empty file, or one FFmpeg cannot parse (random bytes, truncated
            before its index).
        UnsupportedFormatError: FFmpeg recognises nothing it can read.
        CameraError: a device that cannot be opened.
    """
    import av

    parsed = parse_av_spec(spec)
    name = os.fspath(spec)
    if parsed.format is None and parsed.kind == "video" and not _URL.match(parsed.url):
        p = Path(parsed.url)
        if not p.exists():
            raise InputNotFoundError(f"input '{name}' does not exist; check the path")
        if p.is_dir():
            raise InvalidInputError(f"input '{name}' is a folder without images; give a video file or an image folder")
        if p.stat().st_size == 0:
            raise CorruptInputError(f"input '{name}' is empty (0 bytes); re-export or re-copy the file")
    try:
        container = av.open(
            parsed.url,
            mode="r",
            format=parsed.format,
            container_options=dict(options or {}),
            metadata_errors="replace",
        )
    except (av.error.FFmpegError, PermissionError) as e:
        raise _open_error(e, name, parsed) from None
    return container, parsed


def _open_error(e: BaseException, name: str, parsed: AvSpec) -> Exception:
    """The typed one-line error of a failed ``av.open`` of input ``name``."""
    import av

    if not isinstance(e, av.error.FFmpegError):  # a PermissionError before FFmpeg
        return InvalidInputError(f"input '{name}' is not readable (permission denied); fix its permissions")
    missing = isinstance(e, av.error.FileNotFoundError)
    bad_data = isinstance(e, av.error.InvalidDataError)
    if bad_data and parsed.format == "lavfi":
        return InvalidInputError(f"bad lavfi input '{name}' ({e.strerror}); check the filter description")
    if parsed.kind == "device":
        if missing or bad_data:
            remedy = "that it is connected" if missing else "its options"
            return CameraError(f"cannot open '{name}' ({e.strerror}); check the device name and {remedy}")
        return CameraError(f"cannot open '{name}' ({e}); check the device name, permissions and options")
    if missing:
        return InputNotFoundError(f"input '{name}' does not exist; check the path")
    if bad_data:
        return CorruptInputError(
            f"input '{name}' is not a readable video (FFmpeg: {e.strerror}); "
            "the file is damaged, truncated before its index, or not a video — re-export or re-copy it"
        )
    return UnsupportedFormatError(
        f"input '{name}' cannot be opened (FFmpeg: {getattr(e, 'strerror', e)}); "
        "convert it to a common format (e.g. mp4) first"
    )
