"""Virtual-camera output for live mode: other programs (video calls, OBS) see the stylized stream as a
camera.

* **Linux**: a v4l2loopback device written through FFmpeg's ``v4l2`` output device (PyAV; no extra
  package). Create one with ``sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=vidstyle
  exclusive_caps=1`` and use ``/dev/video10`` (``vidstyle live --virtual-camera /dev/video10``).
* **Windows / macOS** (and Linux too): ``auto`` uses the optional `pyvirtualcam`
  package (``pip install pyvirtualcam``; OBS Studio's virtual camera on Windows and macOS).

:class:`FFmpegDeviceOutput` writes RGB frames to any FFmpeg output device or raw format (``v4l2`` for
a loopback device; tests use ``rawvideo`` into a file). :func:`open_virtual_camera` picks the backend.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from vidstyle.errors import CameraError, InvalidOptionError
from vidstyle.options import OptionValueError

__all__ = ["LOOPBACK_HELP", "FFmpegDeviceOutput", "PyVirtualCamOutput", "VirtualCamera", "open_virtual_camera"]

LOOPBACK_HELP = (
    "create a loopback camera with 'sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=vidstyle "
    "exclusive_caps=1' and use /dev/video10 as the virtual camera (or install pyvirtualcam and use auto)"
)


class VirtualCamera(Protocol):
    """What :class:`~vidstyle.live.output.LiveOutput` needs: ``send`` one H×W×3 RGB uint8 frame, ``close``."""

    def send(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


class FFmpegDeviceOutput:
    """RGB frames into an FFmpeg output device (``v4l2``) or raw-video target, as ``pix_fmt`` frames.

    Args:
        target: device path (``/dev/video10``) or file name.
        width, height: frame size; frames of another size are resized to it.
        fps: nominal frame rate announced to the device.
        format: FFmpeg muxer/device name (``"v4l2"``; ``"rawvideo"`` for a file).
        pix_fmt: pixel format written (``yuv420p`` is what most camera consumers accept).
    """

    def __init__(self, target: str, *, width: int, height: int, fps: float = 30.0, format: str = "v4l2",
                 pix_fmt: str = "yuv420p") -> None:
        import av

        if width < 2 or height < 2:
            raise InvalidOptionError(f"virtual camera size must be at least 2x2, got {width}x{height}")
        # yuv420p needs even sizes: round down (consumers of a camera expect exact, even sizes)
        self.width, self.height = width - width % 2, height - height % 2
        self.target = target
        self.frames = 0
        try:
            self._container = av.open(target, "w", format=format)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise CameraError(f"cannot open virtual camera {target} ({exc}); {LOOPBACK_HELP}") from exc
        try:
            self._stream = self._container.add_stream("rawvideo", rate=Fraction(fps).limit_denominator(1001))
            self._stream.width, self._stream.height, self._stream.pix_fmt = self.width, self.height, pix_fmt
        except Exception as exc:
            self._container.close()
            raise CameraError(f"virtual camera {target} rejected {self.width}x{self.height} {pix_fmt} ({exc}); "
                              f"{LOOPBACK_HELP}") from exc

    def send(self, image: np.ndarray) -> None:
        import av

        if image.dtype != np.uint8:
            image = np.clip(np.asarray(image, np.float32) * (255.0 if image.dtype.kind == "f" else 1 / 257), 0, 255)
            image = image.astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:, :, :3]), format="rgb24")
        frame = frame.reformat(width=self.width, height=self.height, format=self._stream.pix_fmt)
        frame.pts = self.frames
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise CameraError(f"writing to virtual camera {self.target} failed ({exc}); is it still there?") from exc
        self.frames += 1

    def close(self) -> None:
        import av

        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except (av.FFmpegError, OSError):
            pass
        finally:
            self._container.close()


class PyVirtualCamOutput:
    """The optional ``pyvirtualcam`` package (OBS virtual camera on Windows/macOS, v4l2loopback on Linux)."""

    def __init__(self, *, width: int, height: int, fps: float = 30.0, device: str | None = None) -> None:
        try:
            import pyvirtualcam  # type: ignore[import-not-found]
        except ImportError as exc:
            raise CameraError("virtual camera 'auto' needs the pyvirtualcam package: pip install pyvirtualcam "
                              "(on Linux you can instead give a v4l2loopback device: " + LOOPBACK_HELP + ")") from exc
        try:
            self._cam: Any = pyvirtualcam.Camera(width=width, height=height, fps=fps, device=device)
        except Exception as exc:
            raise CameraError(f"no virtual camera available ({exc}); {LOOPBACK_HELP}") from exc
        self.width, self.height = width, height
        self.frames = 0

    def send(self, image: np.ndarray) -> None:
        import cv2

        if image.dtype != np.uint8:
            image = np.clip(np.asarray(image, np.float32) * 255.0, 0, 255).astype(np.uint8)
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self._cam.send(np.ascontiguousarray(image[:, :, :3]))
        self.frames += 1

    def close(self) -> None:
        self._cam.close()


def open_virtual_camera(spec: str, *, width: int, height: int, fps: float = 30.0) -> VirtualCamera:
    """A virtual camera for ``spec`` (the ``virtual_camera`` option): ``auto`` (pyvirtualcam) or a
    v4l2loopback device path."""
    if not isinstance(spec, str) or not spec.strip():
        raise OptionValueError("virtual_camera", "virtual_camera needs 'auto' or a device such as /dev/video10")
    spec = spec.strip()
    if spec == "auto":
        return PyVirtualCamOutput(width=width, height=height, fps=fps)
    if not sys.platform.startswith("linux"):
        raise OptionValueError("virtual_camera", f"virtual_camera {spec}: device paths are for Linux (v4l2loopback); "
                                                 "use `virtual_camera` auto with pyvirtualcam (OBS virtual camera)")
    if not os.path.exists(spec):
        raise CameraError(f"virtual camera device {spec} does not exist; {LOOPBACK_HELP}")
    return FFmpegDeviceOutput(spec, width=width, height=height, fps=fps, format="v4l2")
