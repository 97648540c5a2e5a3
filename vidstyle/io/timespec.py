"""Parsing ``start`` / ``end`` values (a time in seconds or a frame number) and checking their order."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from vidstyle.options.spec import OptionValueError

__all__ = ["TimeSpec", "parse_time", "check_order"]

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
_FRAME = re.compile(r"^(\d+)\s*f$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """A point of an input: ``seconds`` from its first frame, or a 0-based ``frame`` number."""

    seconds: float | None = None
    frame: int | None = None

    def to_seconds(self, fps: Fraction | float | None) -> float | None:
        """Seconds from the first frame (frames at the nominal ``fps``); ``None`` if unknown."""
        if self.seconds is not None:
            return self.seconds
        assert self.frame is not None
        if not fps:
            return None
        return float(self.frame / Fraction(fps))

    def __str__(self) -> str:
        return f"{self.seconds:g} s" if self.seconds is not None else f"frame {self.frame}"


def parse_time(value: str | int | float | None, *, name: str = "start") -> TimeSpec | None:
    """Parse a time selection.

    Accepted: seconds (``2.5``, ``"2.5"``, ``"2.5s"``), a clock time (``"00:00:02.5"``,
    ``"1:02.5"``), or a 0-based frame number (an ``int``, or a string with an ``f`` suffix:
    ``"48f"``). ``None`` means no selection.

    Raises:
        OptionValueError: the value is negative or not in one of these forms (names ``name``).
    """
    if value is None:
        return None
    bad = OptionValueError(
        name,
        f"{name} must be seconds (2.5), a clock time (00:01:02.5) or a frame number with an f suffix (48f), "
        f"got {value!r}",
    )
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        if value < 0:
            raise bad
        return TimeSpec(frame=int(value))
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise bad
        return TimeSpec(seconds=float(value))
    if not isinstance(value, str):
        raise bad
    text = value.strip()
    m = _FRAME.match(text)
    if m:
        return TimeSpec(frame=int(m.group(1)))
    m = _CLOCK.match(text)
    if m:
        hours = int(m.group(1) or 0)
        minutes = int(m.group(2))
        seconds = float(m.group(3))
        if seconds >= 60 or (m.group(1) is not None and minutes >= 60):
            raise bad
        return TimeSpec(seconds=hours * 3600 + minutes * 60 + seconds)
    if text.lower().endswith("s"):
        text = text[:-1].strip()
    try:
        seconds = float(text)
    except ValueError:
        raise bad from None
    if not math.isfinite(seconds) or seconds < 0:
        raise bad
    return TimeSpec(seconds=seconds)


def check_order(
    start: TimeSpec | None, end: TimeSpec | None, start_seconds: float | None, end_seconds: float | None
) -> None:
    """Refuse an ``end`` at or before ``start`` (both in seconds from the first frame, ``None`` if not given).

    Raises:
        OptionValueError: ``end`` does not come after ``start``.
    """
    if start_seconds is not None and end_seconds is not None and end_seconds <= start_seconds:
        raise OptionValueError(
            "end", f"end ({end}) must come after `start` ({start}); swap or fix them", also=("start",)
        )
