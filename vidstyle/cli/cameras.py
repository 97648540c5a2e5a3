"""``vidstyle cameras``: list the capture devices ``vidstyle live --camera`` can use."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidstyle.cli.common import add_command

EPILOG = """examples:
  vidstyle cameras
  vidstyle live --camera /dev/video0      # then use one of them

On Linux the V4L2 devices (/dev/video*) are listed with their names (metadata-only nodes left out);
on macOS the AVFoundation devices, on Windows the DirectShow devices, as FFmpeg lists them.
Network streams (rtsp://, udp://, http://) and test sources (lavfi:testsrc2=size=640x360:rate=30)
work with `vidstyle live` too, without being listed.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(subparsers, "cameras", help="list the cameras vidstyle live can use", description="List the capture devices this machine has, as `vidstyle live --camera` takes them.", epilog=EPILOG)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vidstyle.live.devices import list_cameras

    devices = list_cameras()
    if not devices:
        where = {"darwin": "AVFoundation", "win32": "DirectShow"}.get(
            sys.platform, "/dev/video*"
        )
        sys.stdout.write(
            f"no cameras found (looked at {where}).\n"
            "Connect a camera (on Linux check `ls /dev/video*` and that you are in the 'video' group), or use a\n"
            "network stream (vidstyle live --camera rtsp://HOST/PATH) or a test picture\n"
            "(vidstyle live --camera lavfi:testsrc2=size=640x360:rate=30).\n"
        )
        return 0
    width = max(len(d.spec) for d in devices)
    sys.stdout.write(f"{'CAMERA'.ljust(width)}  NAME\n")
    for d in devices:
        extra = f"  [{d.note}]" if d.note else ""
        sys.stdout.write(f"{d.spec.ljust(width)}  {d.name or '-'}{extra}\n")
    sys.stdout.write("\nuse one with: vidstyle live --camera " + devices[0].spec + "\n")
    return 0
