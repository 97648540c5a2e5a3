"""vidstyle: flicker-free neural style transfer for videos, live cameras and film shots.

Importing the package is cheap; the heavy parts (torch, PyAV, OpenCV) load on first use.

>>> import vidstyle
>>> vidstyle.stylize_video("in.mp4", "out.mp4", model="mosaic_tiny")  # doctest: +SKIP
>>> vidstyle.run_live(camera="0", models=["mosaic_tiny"], record="take1.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run_live", "stylize_video", "stylize_image"]


def __getattr__(name: str) -> Any:
    if name == "stylize_video":
        from vidstyle.api import stylize_video

        return stylize_video
    if name == "stylize_image":
        from vidstyle.api import stylize_image

        return stylize_image
    if name == "run_live":
        from vidstyle.live import run_live

        return run_live
    raise AttributeError(f"module 'vidstyle' has no attribute {name!r}")
