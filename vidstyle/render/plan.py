"""Splitting a shot into chunks that render independently (in parallel under Ray).

A chunk owns the frames ``first … last`` (its output). It starts ``overlap`` frames earlier
(``warmup_from``): those warm-up frames only build up the temporal state, and their outputs are
dropped — except the last ``crossfade`` of them, which are blended with the previous chunk's own
output of the same frames, with weights rising linearly to the border::

    chunk c-1:  … ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ┤ last
    chunk c:            warmup_from ┈ ┈ ┈ ┈ ┈ ┈ ╳ ╳ ╳ ╳ ├ first ─ ─ ─ …
                                    (dropped)    (cross-faded: output = (1-α)·S_{c-1} + α·S_c,
                                                  α = 1/(F+1) … F/(F+1))

The frames are the shot's own frame numbers (gaps in a numbering are kept: positions count
frames that exist, not numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vidstyle.errors import InvalidOptionError

__all__ = ["Chunk", "plan_chunks", "crossfade_weights"]


@dataclass(frozen=True)
class Chunk:
    """One chunk of a shot (frame numbers are the shot's own).

    Attributes:
        id: 0, 1, 2… in shot order.
        first, last: the frames this chunk outputs (inclusive).
        warmup_from: the frame the chunk starts rendering at (``== first`` for chunk 0).
        crossfade_from: the first warm-up frame whose output is blended with the previous chunk
            (``None`` when nothing is cross-faded); the blend covers ``crossfade_from … first-1``.
        frames: how many frames the chunk outputs.
        warmup: how many warm-up frames it renders first.
    """

    id: int
    first: int
    last: int
    warmup_from: int
    crossfade_from: int | None
    frames: int
    warmup: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chunk:
        return cls(**{k: d[k] for k in ("id", "first", "last", "warmup_from", "crossfade_from", "frames", "warmup")})


def crossfade_weights(n: int) -> list[float]:
    """Weights of the *later* chunk for ``n`` cross-faded frames: 1/(n+1), 2/(n+1), …, n/(n+1)."""
    return [(j + 1) / (n + 1) for j in range(n)]


def plan_chunks(
    numbers: Sequence[int],
    *,
    chunk_frames: int | None = None,
    chunks: int = 1,
    overlap: int = 0,
    crossfade: int = 0,
) -> list[Chunk]:
    """Split the frames ``numbers`` (increasing) into chunks.

    Args:
        numbers: the shot's frame numbers, in order.
        chunk_frames: frames per chunk; ``None`` splits into ``chunks`` nearly equal chunks.
        chunks: the number of chunks when ``chunk_frames`` is ``None``.
        overlap: warm-up frames each chunk after the first starts early (clipped at the shot's start).
        crossfade: how many of the warm-up frames are cross-faded (≤ overlap; clipped to the
            previous chunk's length).
    """
    n = len(numbers)
    if n == 0:
        raise InvalidOptionError("the shot has no frames to render; check 'input' and 'frames'")
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise InvalidOptionError("frame numbers must increase")
    if overlap < 0 or crossfade < 0 or crossfade > overlap:
        raise InvalidOptionError(f"need 0 <= crossfade ({crossfade}) <= overlap ({overlap})")
    if chunk_frames is None:
        chunks = max(1, min(int(chunks), n))
        chunk_frames = math.ceil(n / chunks)
    if chunk_frames < 1:
        raise InvalidOptionError(f"chunk_frames must be >= 1, got {chunk_frames}")
    starts = list(range(0, n, chunk_frames))
    out: list[Chunk] = []
    for cid, s in enumerate(starts):
        e = min(n, s + chunk_frames) - 1
        if cid == 0:
            warm = 0
            xf = 0
        else:
            warm = min(overlap, s)
            prev_len = s - starts[cid - 1]
            xf = min(crossfade, warm, prev_len)
        out.append(
            Chunk(
                id=cid,
                first=numbers[s],
                last=numbers[e],
                warmup_from=numbers[s - warm],
                crossfade_from=numbers[s - xf] if xf > 0 else None,
                frames=e - s + 1,
                warmup=warm,
            )
        )
    return out
