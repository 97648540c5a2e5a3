"""Keyframed parameters: a number that may change over the frames of a shot.

A :class:`Curve` is a constant (``0.85``) or a list of ``(frame, value)`` keys with linear
interpolation between them and the end values held outside them::

    >>> c = Curve.parse("0:0.3, 48:0.85")
    >>> c.at(0), c.at(24), c.at(100)
    (0.3, 0.575, 0.85)

The same forms work on the command line (``--stabilize "0:0.3, 48:0.85"``) and in render jobs
(``stabilize = "0:0.3, 48:0.85"``, or ``stabilize = [[0, 0.3], [48, 0.85]]``). Frames are keyed by
:attr:`vidstyle.frame.Frame.frame_number`: an image sequence's own frame numbers (``shot.1001.exr`` is
1001; render jobs), otherwise the frame's position in the stream.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vidstyle.errors import InvalidOptionError

__all__ = ["Curve", "CurveLike", "value_at"]


@dataclass(frozen=True, slots=True)
class Curve:
    """Piecewise-linear ``(frame, value)`` keys, sorted by frame; one key means a constant."""

    keys: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise InvalidOptionError("a curve needs at least one key")
        frames = [k[0] for k in self.keys]
        if frames != sorted(frames) or len(set(frames)) != len(frames):
            raise InvalidOptionError(f"curve keys must have distinct, increasing frame numbers, got {frames}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def constant(cls, value: float) -> Curve:
        return cls(keys=((0.0, float(value)),))

    @classmethod
    def parse(cls, value: Any, *, name: str = "value") -> Curve:
        """A curve from a number, a string (``"0.8"`` or ``"0:0.3, 48:0.85"``), a sequence of
        ``(frame, value)`` pairs or a ``{frame: value}`` mapping. Errors name ``name``."""
        if isinstance(value, Curve):
            return value
        form = f'{name} must be a number or keyframes "FRAME:VALUE, FRAME:VALUE" (e.g. "0:0.3, 48:0.85")'
        if isinstance(value, bool):
            raise InvalidOptionError(f"{form}, got {value!r}")
        if isinstance(value, (int, float)):
            return cls.constant(_finite(value, name=name, form=form))
        pairs: list[tuple[Any, Any]]
        if isinstance(value, str):
            text = value.strip()
            if ":" not in text:
                try:
                    return cls.constant(_finite(float(text), name=name, form=form))
                except ValueError:
                    raise InvalidOptionError(f"{form}, got {value!r}") from None
            pairs = []
            for part in text.replace(";", ",").split(","):
                if not part.strip():
                    continue
                f, sep, v = part.partition(":")
                if not sep:
                    raise InvalidOptionError(f"{form}, got {value!r}")
                pairs.append((f.strip(), v.strip()))
        elif isinstance(value, Mapping):
            pairs = list(value.items())
        elif isinstance(value, Sequence) and all(isinstance(p, Sequence) and len(p) == 2 for p in value):
            pairs = [(p[0], p[1]) for p in value]
        else:
            raise InvalidOptionError(f"{form}, got {value!r}")
        keys: dict[float, float] = {}
        for f, v in pairs:
            try:
                frame, val = float(f), float(v)
            except (TypeError, ValueError):
                raise InvalidOptionError(f"{form}, got {value!r}") from None
            if not math.isfinite(frame) or frame < 0:
                raise InvalidOptionError(f"{name}: keyframe numbers must be >= 0, got {f!r}")
            if frame in keys:
                raise InvalidOptionError(f"{name}: frame {f} is keyed twice; give each frame one value")
            keys[frame] = _finite(val, name=name, form=form)
        if not keys:
            raise InvalidOptionError(f"{form}, got {value!r}")
        return cls(keys=tuple(sorted(keys.items())))

    def __eq__(self, other: object) -> bool:
        """A one-key curve equals its number; curves are equal when their keys are."""
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return len(self.keys) == 1 and self.keys[0][1] == float(other)
        if isinstance(other, Curve):
            return self.keys == other.keys
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.keys[0][1]) if len(self.keys) == 1 else hash(self.keys)

    # ------------------------------------------------------------------ values
    def at(self, frame: float) -> float:
        """The value at ``frame``: linear between keys, the end values outside them."""
        frames = [k[0] for k in self.keys]
        i = bisect.bisect_right(frames, frame)
        if i == 0:
            return self.keys[0][1]
        if i == len(frames):
            return self.keys[-1][1]
        (f0, v0), (f1, v1) = self.keys[i - 1], self.keys[i]
        t = (frame - f0) / (f1 - f0)
        return v0 + t * (v1 - v0)

    @property
    def is_constant(self) -> bool:
        return len({v for _, v in self.keys}) == 1

    @property
    def minimum(self) -> float:
        """The smallest value the curve takes (a key, since it is piecewise linear)."""
        return min(v for _, v in self.keys)

    @property
    def maximum(self) -> float:
        return max(v for _, v in self.keys)

    def __str__(self) -> str:
        if len(self.keys) == 1:
            return _num(self.keys[0][1])
        return ", ".join(f"{_num(f)}:{_num(v)}" for f, v in self.keys)

    def to_json(self) -> float | str:
        """A number for a one-key curve, else the ``"F:V, F:V"`` string (what manifests record)."""
        return self.keys[0][1] if len(self.keys) == 1 else str(self)


#: what a curve-valued parameter accepts
CurveLike = Curve | float | int | str


def value_at(value: Curve | float | None, frame: float, *, default: float) -> float:
    """``value`` at ``frame``: a curve is sampled, a number is itself, ``None`` is ``default``."""
    if value is None:
        return default
    if isinstance(value, Curve):
        return value.at(frame)
    return float(value)


def _finite(value: float, *, name: str, form: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidOptionError(f"{form}, got {value!r}")
    return v


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
