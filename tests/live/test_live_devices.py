"""Camera specs, device listing and the camera-open error messages."""

from __future__ import annotations

import errno

import av
import pytest

from vidstyle.errors import CameraError
from vidstyle.live import (
    available_cameras_text,
    list_cameras,
    open_camera,
    parse_camera,
)
from vidstyle.live.devices import (
    CameraDevice,
    camera_open_error,
    list_v4l2,
    parse_avfoundation_listing,
    parse_dshow_listing,
)


@pytest.mark.parametrize(
    ("spec", "platform", "url", "fmt", "kind"),
    [
        ("0", "linux", "/dev/video0", "v4l2", "camera"),
        ("2", "linux", "/dev/video2", "v4l2", "camera"),
        ("0", "darwin", "0:none", "avfoundation", "camera"),
        ("/dev/video3", "linux", "/dev/video3", "v4l2", "camera"),
        ("v4l2:/dev/video1", "linux", "/dev/video1", "v4l2", "camera"),
        (
            "lavfi:testsrc2=size=64x48:rate=30",
            "linux",
            "testsrc2=size=64x48:rate=30",
            "lavfi",
            "generator",
        ),
        (
            "rtsp://10.0.0.2:8554/cam",
            "linux",
            "rtsp://10.0.0.2:8554/cam",
            None,
            "stream",
        ),
        ("udp://@:5000", "linux", "udp://@:5000", None, "stream"),
        (
            "http://example.org/live.ts",
            "linux",
            "http://example.org/live.ts",
            None,
            "stream",
        ),
        ("clip.mp4", "linux", "clip.mp4", None, "file"),
    ],
)
def test_parse_camera(
    spec: str, platform: str, url: str, fmt: str | None, kind: str
) -> None:
    c = parse_camera(spec, platform=platform)
    assert (c.url, c.format, c.kind) == (url, fmt, kind)
    assert c.spec == spec
    assert c.paced == (kind in ("generator", "file"))


def test_network_streams_get_an_io_timeout() -> None:
    assert (
        "timeout" in parse_camera("rtsp://h/x").options
    )  # a dead stream ends instead of hanging
    assert "rw_timeout" in parse_camera("udp://@:5000").options


def test_empty_spec_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="empty camera name"):
        parse_camera("  ")


def test_list_v4l2_names_and_order(tmp_path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n in (10, 2, 0):
        (dev / f"video{n}").touch()
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(f"Cam {n}\n")
    (dev / "video-loop").touch()  # not a device node name
    found = list_v4l2(dev_dir=dev, sys_dir=sysfs, query=False)
    assert [d.spec for d in found] == [
        str(dev / "video0"),
        str(dev / "video2"),
        str(dev / "video10"),
    ]
    assert [d.name for d in found] == ["Cam 0", "Cam 2", "Cam 10"]
    assert {d.backend for d in found} == {"v4l2"}


def test_list_v4l2_querycap_on_a_plain_file_keeps_the_node(tmp_path) -> None:
    (
        tmp_path / "video0"
    ).touch()  # not a V4L2 node: the ioctl fails, the node is still listed
    found = list_v4l2(dev_dir=tmp_path, sys_dir=tmp_path / "none")
    assert [d.spec for d in found] == [str(tmp_path / "video0")]


def test_parse_avfoundation_listing() -> None:
    lines = [
        "AVFoundation video devices:\n",
        "[0] FaceTime HD Camera\n",
        "[1] Capture screen 0\n",
        "AVFoundation audio devices:\n",
        "[0] MacBook Pro Microphone\n",
    ]
    found = parse_avfoundation_listing(lines)
    assert [(d.spec, d.name) for d in found] == [
        ("avfoundation:0", "FaceTime HD Camera"),
        ("avfoundation:1", "Capture screen 0"),
    ]


@pytest.mark.parametrize(
    "lines",
    [
        [
            '"Integrated Camera" (video)\n',
            '  Alternative name "@device_pnp_\\\\?\\usb#vid_04f2"\n',
            '"Microphone (Realtek Audio)" (audio)\n',
        ],
        [
            "DirectShow video devices (some may be both video and audio devices)\n",
            ' "Integrated Camera"\n',
            '    Alternative name "@device_pnp_x"\n',
            "DirectShow audio devices\n",
            ' "Microphone"\n',
        ],
    ],
)
def test_parse_dshow_listing(lines: list[str]) -> None:
    found = parse_dshow_listing(lines)
    assert [(d.spec, d.name) for d in found] == [
        ("dshow:video=Integrated Camera", "Integrated Camera")
    ]


def test_available_cameras_text() -> None:
    assert "no cameras found" in available_cameras_text([])
    text = available_cameras_text(
        [CameraDevice(spec="/dev/video0", name="HD Webcam", backend="v4l2")]
    )
    assert text == "available cameras: /dev/video0 (HD Webcam)"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            av.error.FileNotFoundError(errno.ENOENT, "No such file or directory"),
            "does not exist",
        ),
        (
            av.error.PermissionError(errno.EACCES, "Permission denied"),
            "permission denied",
        ),
        (av.error.OSError(errno.EBUSY, "Device or resource busy"), "is busy"),
    ],
)
def test_camera_open_error_messages(exc: Exception, expected: str) -> None:
    devices = [CameraDevice(spec="/dev/video2", name="USB Cam", backend="v4l2")]
    err = camera_open_error(
        parse_camera("/dev/video0", platform="linux"), exc, devices=devices
    )
    text = str(err)
    assert isinstance(err, CameraError) and isinstance(err, OSError)
    assert expected in text and "'/dev/video0'" in text
    assert "available cameras: /dev/video2 (USB Cam)" in text
    assert "\n" not in text


def test_missing_device_is_a_clear_camera_error() -> None:
    if list_cameras():
        pytest.skip("this machine has cameras")
    with pytest.raises(CameraError) as info:
        open_camera("/dev/video9")
    text = str(info.value)
    assert (
        "'/dev/video9'" in text
        and "does not exist" in text
        and "no cameras found" in text
    )


def test_missing_camera_index_and_file() -> None:
    if list_cameras():
        pytest.skip("this machine has cameras")
    with pytest.raises(CameraError, match="'7'.*no cameras found"):
        open_camera("7")
    with pytest.raises(CameraError, match="'no_such_clip.mp4' does not exist"):
        open_camera("no_such_clip.mp4")


def test_bad_test_source_and_refused_stream() -> None:
    with pytest.raises(CameraError, match="test source 'lavfi:nosuchfilter'"):
        open_camera("lavfi:nosuchfilter")
    with pytest.raises(
        CameraError, match="cannot connect to the stream 'tcp://127.0.0.1:9/x'"
    ):
        open_camera("tcp://127.0.0.1:9/x")


def test_avfoundation_asks_for_30_fps() -> None:
    # AVFoundation's own default (29.97) is refused by most Mac cameras
    assert parse_camera("0", platform="darwin").options == {"framerate": "30"}
    if "avfoundation" not in av.formats_available:
        pytest.skip("this FFmpeg has no avfoundation input")
    assert parse_camera("avfoundation:1").options == {"framerate": "30"}
