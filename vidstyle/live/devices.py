"""Camera specs and capture-device discovery for live mode.

A *camera spec* is what the user types after ``--camera``:

==========================================  =====================================================
``0``, ``1`` …                              a camera index: ``/dev/videoN`` (Linux, v4l2),
                                            AVFoundation device N (macOS), the N-th DirectShow
                                            video device (Windows)
``/dev/video0``                             a V4L2 device node (Linux)
``FORMAT:NAME``                             any FFmpeg input format and its input:
                                            ``v4l2:/dev/video2``, ``avfoundation:0``,
                                            ``dshow:video=Integrated Camera``, ``x11grab::0.0``,
                                            ``lavfi:testsrc2=size=640x360:rate=30`` (test picture)
``rtsp://…``, ``udp://…``, ``http://…``     a network stream
a file path                                 a video file, played in real time like a camera
==========================================  =====================================================

:func:`parse_camera` turns a spec into a :class:`CameraSpec` (what ``av.open`` needs) and
:func:`list_cameras` finds the capture devices this machine has (``/dev/video*`` with their names on
Linux, FFmpeg's device listing of AVFoundation/DirectShow elsewhere).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vidstyle.errors import CameraError

__all__ = [
    "LIVE_PROTOCOLS",
    "CameraDevice",
    "CameraSpec",
    "available_cameras_text",
    "camera_open_error",
    "list_cameras",
    "parse_camera",
]

#: URL schemes of live network streams (never paced, read as they come, with an I/O timeout)
LIVE_PROTOCOLS = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp"}
)
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_FORMAT_SPEC = re.compile(r"^([A-Za-z0-9_]{2,}):(.*)$", re.DOTALL)
#: AVFoundation refuses its own default rate (29.97) on most Mac cameras; 30 is what they offer
_AVFOUNDATION_DEFAULTS = {"framerate": "30"}
#: seconds of silence after which a network stream counts as lost
NETWORK_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """How to open a live input.

    Attributes:
        spec: the input exactly as the user gave it.
        url: what FFmpeg opens (a device node, a device name, a URL, a filter graph, a path).
        format: the FFmpeg input format to force (``v4l2``, ``avfoundation``, ``dshow``, ``lavfi``…),
            ``None`` to let FFmpeg probe (URLs, files).
        kind: ``"camera"`` (a capture device), ``"stream"`` (a network URL), ``"generator"``
            (an FFmpeg source filter such as ``lavfi:testsrc2``) or ``"file"`` (a video file).
        options: FFmpeg demuxer/protocol options added for this kind of input.
    """

    spec: str
    url: str
    format: str | None
    kind: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def paced(self) -> bool:
        """Whether frames must be paced to their timestamps to behave like a camera.

        Generators (lavfi) and files produce frames as fast as they are read; cameras and live
        streams deliver them in real time by themselves."""
        return self.kind in ("generator", "file")

    @property
    def label(self) -> str:
        return self.spec


@dataclass(frozen=True, slots=True)
class CameraDevice:
    """A capture device found by :func:`list_cameras`.

    Attributes:
        spec: what to pass to ``--camera`` (``/dev/video0``, ``avfoundation:0``, ``dshow:video=…``).
        name: the device's own name (``"Integrated Camera"``), or ``""`` when unknown.
        backend: ``v4l2``, ``avfoundation`` or ``dshow``.
        note: extra information (driver, ``"permission denied"``, ``"metadata only"``…).
    """

    spec: str
    name: str
    backend: str
    note: str = ""

    def describe(self) -> str:
        parts = [self.spec]
        if self.name:
            parts.append(f"({self.name})")
        if self.note:
            parts.append(f"[{self.note}]")
        return " ".join(parts)


# ------------------------------------------------------------------------------------ parsing
def _is_input_format(name: str) -> bool:
    import av

    try:
        return bool(av.ContainerFormat(name).is_input)
    except (ValueError, av.error.FFmpegError):
        return False


def _windows_index(index: int) -> CameraSpec:
    devices = [d for d in list_cameras() if d.backend == "dshow"]
    if index >= len(devices):
        raise CameraError(
            f"camera {index} not found; {available_cameras_text()} — or give the camera by name as "
            "dshow:video=NAME"
        )
    d = devices[index]
    return CameraSpec(
        spec=str(index), url=d.spec.split(":", 1)[1], format="dshow", kind="camera"
    )


def parse_camera(
    spec: str | int | os.PathLike[str], *, platform: str | None = None
) -> CameraSpec:
    """Classify a ``--camera`` value (see the module docstring). Never opens anything, except
    that a camera index on Windows is looked up in the DirectShow device list.

    Raises:
        CameraError: an empty spec, or a Windows camera index beyond the devices present.
    """
    platform = platform or sys.platform
    text = str(spec).strip() if isinstance(spec, int) else os.fspath(spec).strip()
    if not text:
        raise CameraError(
            f"empty camera name; give an index (0), a device or a URL — {available_cameras_text()}"
        )
    if text.isdigit():
        n = int(text)
        if platform.startswith("linux"):
            return CameraSpec(
                spec=text, url=f"/dev/video{n}", format="v4l2", kind="camera"
            )
        if platform == "darwin":
            return CameraSpec(
                spec=text,
                url=f"{n}:none",
                format="avfoundation",
                kind="camera",
                options=dict(_AVFOUNDATION_DEFAULTS),
            )
        if platform in ("win32", "cygwin"):
            return _windows_index(n)
        raise CameraError(
            f"camera indices are not supported on {platform}; give FORMAT:NAME or a URL"
        )
    m = _URL.match(text)
    if m:
        proto = m.group(1).lower()
        if proto in LIVE_PROTOCOLS:
            micros = str(int(NETWORK_TIMEOUT_S * 1_000_000))
            options = {"rw_timeout": micros}
            if proto.startswith("rtsp"):
                options = {"timeout": micros}
            return CameraSpec(
                spec=text, url=text, format=None, kind="stream", options=options
            )
        if proto == "file":
            return CameraSpec(spec=text, url=text, format=None, kind="file")
        return CameraSpec(spec=text, url=text, format=None, kind="stream")
    if text.startswith("/dev/video"):
        return CameraSpec(spec=text, url=text, format="v4l2", kind="camera")
    m = _FORMAT_SPEC.match(text)
    if m and not os.path.exists(text) and _is_input_format(m.group(1)):
        fmt = m.group(1)
        options = dict(_AVFOUNDATION_DEFAULTS) if fmt == "avfoundation" else {}
        return CameraSpec(
            spec=text,
            url=m.group(2),
            format=fmt,
            kind="generator" if fmt == "lavfi" else "camera",
            options=options,
        )
    return CameraSpec(spec=text, url=text, format=None, kind="file")


# ------------------------------------------------------------------------------------ listing
_VIDIOC_QUERYCAP = 0x80685600  # _IOR('V', 0, struct v4l2_capability) (104 bytes)
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_CAP_DEVICE_CAPS = 0x80000000


def _v4l2_querycap(path: Path) -> tuple[str, str, int] | None:
    """``(card, driver, device_caps)`` of a V4L2 node, ``None`` when the ioctl is unavailable.

    Raises OSError when the node cannot be opened (permission, busy…)."""
    import fcntl
    import struct

    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        buf = bytearray(104)
        try:
            fcntl.ioctl(fd, _VIDIOC_QUERYCAP, buf)
        except OSError:
            return None
    finally:
        os.close(fd)
    driver = bytes(buf[0:16]).split(b"\0", 1)[0].decode("utf-8", "replace")
    card = bytes(buf[16:48]).split(b"\0", 1)[0].decode("utf-8", "replace")
    capabilities, device_caps = struct.unpack_from("<II", buf, 84)
    caps = device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities
    return card, driver, caps


def _natural_key(p: Path) -> tuple[str, int]:
    m = re.search(r"(\d+)$", p.name)
    return (p.name[: m.start()] if m else p.name, int(m.group(1)) if m else -1)


def list_v4l2(
    *,
    dev_dir: str | os.PathLike[str] = "/dev",
    sys_dir: str | os.PathLike[str] = "/sys/class/video4linux",
    query: bool = True,
) -> list[CameraDevice]:
    """V4L2 capture devices: ``/dev/video*`` nodes, named from sysfs, with metadata-only nodes
    (the second node many UVC webcams expose) left out when the capability query says so."""
    found: list[CameraDevice] = []
    for node in sorted(Path(dev_dir).glob("video*"), key=_natural_key):
        if not re.fullmatch(r"video\d+", node.name):
            continue
        name = ""
        name_file = Path(sys_dir) / node.name / "name"
        try:
            name = name_file.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            pass
        note = ""
        if query:
            try:
                info = _v4l2_querycap(node)
            except PermissionError:
                note = "permission denied: add yourself to the 'video' group"
                info = None
            except OSError as e:
                note = os.strerror(e.errno) if e.errno else str(e)
                info = None
            if info is not None:
                card, driver, caps = info
                if not caps & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE):
                    continue  # metadata or output node: not a camera
                name = name or card
                note = driver
        found.append(CameraDevice(spec=str(node), name=name, backend="v4l2", note=note))
    return found


def parse_avfoundation_listing(lines: list[str]) -> list[CameraDevice]:
    """Video devices from the log lines of ``-f avfoundation -list_devices true -i ""``."""
    out: list[CameraDevice] = []
    in_video = False
    for line in lines:
        text = line.strip()
        if "video devices" in text.lower():
            in_video = True
            continue
        if "audio devices" in text.lower():
            in_video = False
            continue
        m = re.search(r"\[(\d+)\]\s+(.+)$", text)
        if in_video and m:
            out.append(
                CameraDevice(
                    spec=f"avfoundation:{m.group(1)}",
                    name=m.group(2).strip(),
                    backend="avfoundation",
                )
            )
    return out


def parse_dshow_listing(lines: list[str]) -> list[CameraDevice]:
    """Video devices from the log lines of ``-f dshow -list_devices true -i dummy`` (old and new
    FFmpeg wordings)."""
    out: list[CameraDevice] = []
    section = None
    for line in lines:
        text = line.strip()
        low = text.lower()
        if "directshow video devices" in low:
            section = "video"
            continue
        if "directshow audio devices" in low:
            section = "audio"
            continue
        m = re.search(
            r'"([^"]+)"\s*(\((video|audio|none|video,audio|audio,video)\))?\s*$', text
        )
        if not m or "alternative name" in low:
            continue
        kind = m.group(3)
        is_video = ("video" in kind) if kind else section == "video"
        if is_video:
            out.append(
                CameraDevice(
                    spec=f"dshow:video={m.group(1)}", name=m.group(1), backend="dshow"
                )
            )
    return out


def _ffmpeg_listing(fmt: str, url: str) -> list[str]:
    import av
    import av.logging

    if not _is_input_format(fmt):
        return []
    old = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with (
            av.logging.Capture() as logs,
            contextlib.suppress(Exception),
        ):  # listing always "fails" after printing
            av.open(url, format=fmt, options={"list_devices": "true"}).close()
    finally:
        av.logging.set_level(old)
    return [str(entry[2]) for entry in logs]


def list_cameras(*, platform: str | None = None) -> list[CameraDevice]:
    """The capture devices this machine shows: ``/dev/video*`` on Linux, FFmpeg's AVFoundation
    listing on macOS, its DirectShow listing on Windows. Empty when there are none (or the
    listing is not possible); never raises."""
    platform = platform or sys.platform
    try:
        if platform.startswith("linux"):
            return list_v4l2()
        if platform == "darwin":
            return parse_avfoundation_listing(_ffmpeg_listing("avfoundation", ""))
        if platform in ("win32", "cygwin"):
            return parse_dshow_listing(_ffmpeg_listing("dshow", "dummy"))
    except Exception:  # noqa: BLE001 - listing is best effort
        return []
    return []


def available_cameras_text(devices: list[CameraDevice] | None = None) -> str:
    """``"available cameras: /dev/video0 (HD Webcam), …"`` or a clear "none found" sentence."""
    devices = list_cameras() if devices is None else devices
    if not devices:
        return (
            "no cameras found on this machine (run 'vidstyle cameras'); a network stream URL or "
            "lavfi:testsrc2=size=640x360:rate=30 (a test picture) also work"
        )
    return "available cameras: " + ", ".join(d.describe() for d in devices)


def camera_open_error(
    spec: CameraSpec, exc: BaseException, *, devices: list[CameraDevice] | None = None
) -> CameraError:
    """A one-line :class:`CameraError` for a failure to open ``spec``: says what went wrong
    (absent, busy, permission denied, refused, timed out, bad filter…) and lists what is available."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    name = spec.spec
    if spec.kind == "generator":
        return CameraError(
            f"cannot open the test source '{name}' ({reason}); check the filter description, "
            "e.g. lavfi:testsrc2=size=640x360:rate=30"
        )
    if spec.kind == "file" and code == _errno.ENOENT:
        what = f"camera '{name}' does not exist"
        return CameraError(
            f"{what}; give a camera index, a device, a URL or a video file — {available_cameras_text(devices)}"
        )
    if spec.kind == "stream":
        if code in (
            _errno.ECONNREFUSED,
            _errno.ETIMEDOUT,
            _errno.EHOSTUNREACH,
            _errno.ENETUNREACH,
        ):
            return CameraError(
                f"cannot connect to the stream '{name}' ({reason}); check the URL and that the sender is running"
            )
        return CameraError(
            f"cannot open the stream '{name}' ({reason}); check the URL, the protocol and the network"
        )
    if code == _errno.ENOENT or code == _errno.ENODEV or code == _errno.ENXIO:
        what = f"camera '{name}' does not exist or is not connected"
    elif code in (_errno.EACCES, _errno.EPERM):
        hint = (
            " (add your user to the 'video' group, then log in again)"
            if sys.platform.startswith("linux")
            else ""
        )
        what = f"permission denied opening camera '{name}'{hint}"
    elif code == _errno.EBUSY:
        what = (
            f"camera '{name}' is busy: another program is using it; close that program"
        )
    else:
        what = f"cannot open camera '{name}' ({reason}); check the device name and its options"
    return CameraError(f"{what} — {available_cameras_text(devices)}")
