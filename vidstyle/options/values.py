"""Values with a form of their own: frame ranges, frame rates, timecodes (job keys and options)."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from vidstyle.errors import InvalidOptionError

__all__ = ["parse_fps", "parse_frames", "parse_timecode"]

_FRAMES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})$")


def parse_frames(value: Any, *, key: str = "frames") -> tuple[int, int] | None:
    """``"1001-1240"`` → ``(1001, 1240)`` (inclusive); ``"1001"``/``1001`` → one frame;
    ``[1001, 1240]`` also works. ``None``/``""`` → the whole input."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = f"must be a frame range like \"1001-1240\" (first-last, inclusive), got {value!r}"
    if isinstance(value, bool):
        raise InvalidOptionError(f"key '{key}' {bad}")
    if isinstance(value, int):
        first = last = value
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        first, last = int(value[0]), int(value[1])
    elif isinstance(value, str):
        m = _FRAMES.match(value)
        if not m:
            raise InvalidOptionError(f"key '{key}' {bad}")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
    else:
        raise InvalidOptionError(f"key '{key}' {bad}")
    if first < 0:
        raise InvalidOptionError(f"key '{key}': frame numbers must be >= 0, got {first}")
    if last < first:
        raise InvalidOptionError(f"key '{key}': last frame {last} is before first frame {first}; write \"{last}-{first}\"")
    return first, last


def parse_fps(value: Any, *, key: str = "fps") -> Fraction | None:
    """``24``, ``23.976``, ``"24000/1001"``, ``"25"`` → a positive :class:`~fractions.Fraction`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = InvalidOptionError(f"key '{key}' must be a positive frame rate like 24, 25, \"24000/1001\" or 23.976, got {value!r}")
    if isinstance(value, bool):
        raise bad
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise bad
            # 23.976 and 29.97 mean the NTSC rates
            for num in (24000, 30000, 60000, 48000):
                if abs(value - num / 1001) < 5e-3:
                    return Fraction(num, 1001)
            fps = Fraction(value).limit_denominator(1001)
        else:
            fps = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise bad from None
    if fps <= 0 or fps > 1000:
        raise bad
    return fps


def parse_timecode(value: Any, *, key: str = "timecode") -> str | None:
    """``"01:00:00:00"`` (``;`` before the frames for drop-frame) → the same string, checked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    m = _TIMECODE.match(str(value).strip()) if isinstance(value, str) else None
    if not m or int(m.group(2)) >= 60 or int(m.group(3)) >= 60:
        raise InvalidOptionError(f"key '{key}' must be a timecode HH:MM:SS:FF (HH:MM:SS;FF for drop-frame), got {value!r}")
    return str(value).strip()
