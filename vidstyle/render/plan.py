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

Everything here is pure: :class:`RenderPlan` (the shot's frames and chunks) answers which frames
a chunk owns, which are cross-faded and with what weight; :class:`JournalState` is what the
journals of a render say was finished (read by the runner, passed in), and :func:`finished_chunks`
/ :func:`done_counts` tell from it what is left to do. :func:`resolve_resources` picks the threads
and workers of a render.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vidstyle.errors import InvalidOptionError

__all__ = [
    "Chunk",
    "plan_chunks",
    "crossfade_weights",
    "RenderPlan",
    "JournalState",
    "done_counts",
    "finished_chunks",
    "resolve_resources",
]


@dataclass(frozen=True)
class Chunk:
    """One chunk of a shot (frame numbers are the shot's own).

    Attributes:
        id: 0, 1, 2… in shot order.
        first, last: the frames this chunk outputs (inclusive).
        warmup_from: the frame the chunk starts rendering at (``== first`` for chunk 0, unless the
            shot is a sub-range of its input: then the frames before it warm the first chunk up).
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
    lead_in: Sequence[int] = (),
) -> list[Chunk]:
    """Split the frames ``numbers`` (increasing) into chunks.

    Args:
        numbers: the shot's frame numbers, in order.
        chunk_frames: frames per chunk; ``None`` splits into ``chunks`` nearly equal chunks.
        chunks: the number of chunks when ``chunk_frames`` is ``None``.
        overlap: warm-up frames each chunk after the first starts early (clipped at the shot's start).
        crossfade: how many of the warm-up frames are cross-faded (≤ overlap; clipped to the
            previous chunk's length).
        lead_in: the input's frames just before ``numbers`` (a sub-range of a longer shot): the
            first chunk warms up on the last ``overlap`` of them, like any later chunk, so the
            range starts as the full render would have it (nothing is cross-faded there).
    """
    n = len(numbers)
    if n == 0:
        raise InvalidOptionError("the shot has no frames to render; check 'input' and 'frames'")
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise InvalidOptionError("frame numbers must increase")
    lead_in = list(lead_in)
    if any(b <= a for a, b in zip(lead_in, lead_in[1:])) or (lead_in and lead_in[-1] >= numbers[0]):
        raise InvalidOptionError("lead-in frame numbers must increase and come before the shot's")
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
            lead = lead_in[len(lead_in) - min(overlap, len(lead_in)):]
            out.append(Chunk(id=0, first=numbers[0], last=numbers[e], warmup_from=lead[0] if lead else numbers[0],
                             crossfade_from=None, frames=e + 1, warmup=len(lead)))
            continue
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


# --------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class RenderPlan:
    """The frames of a shot and the chunks they are split into (see :func:`plan_chunks`).

    Attributes:
        numbers: the shot's frame numbers, in order.
        chunks: the chunks, in shot order (ids 0, 1, 2…).
    """

    numbers: tuple[int, ...]
    chunks: tuple[Chunk, ...]
    _pos: Mapping[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pos", {n: i for i, n in enumerate(self.numbers)})

    @classmethod
    def new(
        cls,
        numbers: Sequence[int],
        *,
        chunk_frames: int | None = None,
        chunks: int = 1,
        overlap: int = 0,
        crossfade: int = 0,
        lead_in: Sequence[int] = (),
    ) -> RenderPlan:
        """Plan a fresh render (arguments as :func:`plan_chunks`)."""
        planned = plan_chunks(numbers, chunk_frames=chunk_frames, chunks=chunks, overlap=overlap, crossfade=crossfade,
                              lead_in=lead_in)
        return cls(numbers=tuple(numbers), chunks=tuple(planned))

    def position(self, number: int) -> int:
        """Index of frame ``number`` in the shot."""
        return self._pos[number]

    def own_frames(self, chunk: Chunk) -> list[int]:
        """The frames ``chunk`` outputs (``first … last``)."""
        return list(self.numbers[self._pos[chunk.first] : self._pos[chunk.last] + 1])

    def owner(self) -> dict[int, int]:
        """Frame number → id of the chunk that outputs it."""
        return {n: c.id for c in self.chunks for n in self.own_frames(c)}

    def next_crossfade(self, chunk: Chunk) -> int | None:
        """The next chunk's ``crossfade_from`` (``None`` for the last chunk)."""
        if chunk.id + 1 < len(self.chunks):
            return self.chunks[chunk.id + 1].crossfade_from
        return None

    def crossfade_zone(self, chunk: Chunk) -> list[tuple[int, float]]:
        """``(frame, weight of chunk)`` of the frames ``chunk`` blends with the previous chunk's
        output (its warm-up frames from ``crossfade_from``), empty when none."""
        if chunk.crossfade_from is None:
            return []
        zone = self.numbers[self._pos[chunk.crossfade_from] : self._pos[chunk.first]]
        return list(zip(zone, crossfade_weights(len(zone))))


@dataclass(frozen=True)
class JournalState:
    """What the journals of a render say is finished.

    Attributes:
        frames: frame number → its latest ``frame`` record of the owning chunk's journal, with the
            driver's ``xfade`` record (``sha256``, ``pixels_sha256``, ``crossfade``) merged in for
            cross-faded frames.
        crossfaded: frames whose cross-fade was written (driver journal).
        heads: ``(chunk, frame)`` of the cross-fade copies (warm-up outputs) that are on disk.
    """

    frames: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    crossfaded: frozenset[int] = frozenset()
    heads: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def from_records(
        cls,
        plan: RenderPlan,
        *,
        chunk_records: Mapping[int, Sequence[Mapping[str, Any]]],
        driver_records: Sequence[Mapping[str, Any]] = (),
        heads: frozenset[tuple[int, int]] = frozenset(),
    ) -> JournalState:
        """Fold the records of the chunk journals (by chunk id) and of the driver's journal."""
        frames: dict[int, Mapping[str, Any]] = {}
        for c in plan.chunks:
            for rec in chunk_records.get(c.id, ()):
                if rec.get("e") == "frame" and c.first <= int(rec["n"]) <= c.last:
                    frames[int(rec["n"])] = rec
        crossfaded: set[int] = set()
        for rec in driver_records:
            if rec.get("e") != "xfade":
                continue
            n = int(rec["n"])
            crossfaded.add(n)
            if n in frames:
                frames[n] = {**frames[n], "sha256": rec["sha256"], "pixels_sha256": rec["pixels_sha256"],
                             "crossfade": rec["crossfade"]}
        return cls(frames=frames, crossfaded=frozenset(crossfaded), heads=heads)


def done_counts(plan: RenderPlan, state: JournalState) -> dict[int, int]:
    """Chunk id → how many of its own frames are finished."""
    return {c.id: sum(1 for n in state.frames if c.first <= n <= c.last) for c in plan.chunks}


def finished_chunks(plan: RenderPlan, state: JournalState) -> set[int]:
    """Ids of the chunks with nothing left to render: all their frames finished, and the
    cross-fade copies of their warm-up frames saved (or the cross-fade already written)."""
    counts = done_counts(plan, state)
    out = set()
    for c in plan.chunks:
        if counts[c.id] != c.frames:
            continue
        if all((c.id, n) in state.heads or n in state.crossfaded for n, _ in plan.crossfade_zone(c)):
            out.add(c.id)
    return out


def resolve_resources(
    *, ray: str | None, threads: int | None, workers: int | None, cpus: int
) -> tuple[int, int]:
    """``(threads per chunk, workers)`` of a render on this machine (``cpus`` cores).

    In process: the job's threads (else all cores), one worker. On a local Ray: ``threads`` 1
    unless given, as many workers as the cores allow unless given. On a cluster: ``threads`` 1
    unless given, ``workers`` 0 (the executor asks the cluster) unless given.
    """
    if not ray:
        return (threads or cpus), 1
    if workers is None and threads is None:
        threads = 1
    if threads is None:
        threads = max(1, cpus // max(1, workers or 1)) if ray == "local" else 1
    if workers is None:
        workers = max(1, cpus // threads) if ray == "local" else 0  # 0: ask the cluster
    return threads, workers
