"""Virtual-camera output: frames reach an FFmpeg output target; missing devices are one-line errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vidstyle.errors import CameraError, InvalidOptionError
from vidstyle.live.output import LiveOutput
from vidstyle.live.virtualcam import FFmpegDeviceOutput, open_virtual_camera


def _frames(n: int, h: int, w: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_rawvideo_target_gets_every_frame_as_yuv420p(tmp_path) -> None:
    out = tmp_path / "cam.yuv"
    cam = FFmpegDeviceOutput(str(out), width=64, height=48, fps=30, format="rawvideo")
    frames = _frames(5, 48, 64)
    for f in frames:
        cam.send(f)
    cam.close()
    data = np.fromfile(out, np.uint8)
    assert data.size == 5 * 64 * 48 * 3 // 2  # yuv420p: 1.5 bytes per pixel
    y0 = data[: 64 * 48].reshape(48, 64).astype(np.float32)
    luma = (frames[0].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) * 219 / 255 + 16
    assert np.abs(y0 - luma).mean() < 2.0  # the first frame's luminance, limited range


def test_odd_sizes_are_rounded_down_and_float_frames_accepted(tmp_path) -> None:
    out = tmp_path / "cam.yuv"
    cam = FFmpegDeviceOutput(str(out), width=33, height=21, format="rawvideo")
    assert (cam.width, cam.height) == (32, 20)
    cam.send(np.full((21, 33, 3), 0.5, np.float32))
    cam.close()
    assert np.fromfile(out, np.uint8).size == 32 * 20 * 3 // 2


def test_live_output_sends_shown_frames_and_closes_the_camera() -> None:
    from vidstyle.frame import Frame

    class Cam:
        def __init__(self) -> None:
            self.sent: list[np.ndarray] = []
            self.closed = 0

        def send(self, image: np.ndarray) -> None:
            self.sent.append(image)

        def close(self) -> None:
            self.closed += 1

    cam = Cam()
    out = LiveOutput(virtual_camera=cam)
    for i, img in enumerate(_frames(3, 8, 10)):
        f = Frame(index=i, image=img)
        f.stylized = 255 - img
        out.write(f)
    out.close()
    assert len(cam.sent) == 3 and cam.closed == 1
    np.testing.assert_array_equal(cam.sent[1], 255 - _frames(3, 8, 10)[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device paths are Linux-only")
def test_missing_loopback_device_is_a_camera_error(tmp_path) -> None:
    with pytest.raises(CameraError, match="v4l2loopback"):
        open_virtual_camera(str(tmp_path / "video99"), width=64, height=48)


def test_bad_spec_and_missing_pyvirtualcam() -> None:
    with pytest.raises(InvalidOptionError):
        open_virtual_camera("  ", width=64, height=48)
    try:
        import pyvirtualcam  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="pip install pyvirtualcam"):
            open_virtual_camera("auto", width=64, height=48)


def test_cli_virtual_camera_missing_device_is_one_line(tmp_path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "vidstyle", "live", "--camera", "lavfi:testsrc2=size=64x48:rate=10",
         "--no-preview", "--duration", "1", "--virtual-camera", str(tmp_path / "video98")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("vidstyle: error:")]
    assert len(lines) == 1 and "v4l2loopback" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
