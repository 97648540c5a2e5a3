"""Running the chunks of a render: the executor protocol and the in-process executor.

An executor gets the chunks that are left (:class:`ChunkWork`), what every chunk needs
(:class:`ChunkContext`: the job, the layout, the shot's frames, threads), and reports back through
:class:`ChunkEvents` — a chunk started, a frame finished, a chunk ended (:class:`ChunkOutcome`:
done, retrying, failed, interrupted, stopped), and "still running" ticks. It retries a failed
chunk up to ``retries`` times (attempts count over all runs of the render); a retry continues from
the chunk's last finished frame. It knows nothing of the manifest or the runner: the runner turns
the events into chunk states, progress and manifest rewrites.

* :class:`LocalExecutor` renders the chunks one after the other in this process;
* :class:`~vidstyle.render.ray_executor.RayExecutor` renders them as Ray tasks.

Both call a *chunk function* with the signature of :func:`vidstyle.render.chunk.render_chunk`
(the default); a test can pass one that wraps it (to fail once, or to slow the frames down).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError, ModelError, OutputExistsError

if TYPE_CHECKING:
    from vidstyle.render.job import RenderJob
    from vidstyle.render.manifest import RenderLayout
    from vidstyle.render.plan import Chunk

__all__ = [
    "ChunkContext",
    "ChunkWork",
    "ChunkOutcome",
    "ChunkEvents",
    "ChunkExecutor",
    "ChunkFunction",
    "LocalExecutor",
    "NO_RETRY",
    "one_line",
]

#: errors of the job itself: a retry cannot help, the in-process render stops at once.
NO_RETRY = (InvalidOptionError, InvalidInputError, InputNotFoundError, ModelError, OutputExistsError)

#: ``render_chunk(job, chunk, *, layout, numbers, next_crossfade_from, attempt, threads, on_frame, stop)``
ChunkFunction = Callable[..., Any]


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk of a render needs (it travels to Ray workers).

    Attributes:
        job: the render job.
        layout: the render's paths and formats.
        numbers: the shot's frame numbers.
        threads: torch threads per chunk.
    """

    job: RenderJob
    layout: RenderLayout
    numbers: tuple[int, ...]
    threads: int


@dataclass(frozen=True)
class ChunkWork:
    """A chunk to render.

    Attributes:
        chunk: the chunk.
        next_crossfade_from: the next chunk's ``crossfade_from`` (this chunk keeps copies of its
            frames from there on), ``None`` when there is none.
        attempts: attempts made on it so far (earlier runs included).
    """

    chunk: Chunk
    next_crossfade_from: int | None
    attempts: int = 0


@dataclass(frozen=True)
class ChunkOutcome:
    """How an attempt on a chunk ended.

    Attributes:
        chunk: the chunk id.
        state: ``done``, ``retrying`` (failed, to be tried again), ``failed`` (no more tries, or an
            error of the job that stops the render), ``interrupted`` or ``stopped``.
        attempt: the attempt's number (1, 2… over all runs).
        error: one line naming the error of a failed attempt (``None`` when the render stops
            with that error raised).
        warnings: what the chunk's input and output reported.
    """

    chunk: int
    state: str
    attempt: int
    error: str | None = None
    warnings: tuple[str, ...] = ()


class ChunkEvents(Protocol):
    """What an executor reports (the runner implements it)."""

    def chunk_started(self, chunk: int, *, attempt: int) -> None: ...

    def frame_done(self, chunk: int, number: int) -> None:
        """Frame ``number`` of ``chunk`` is finished (written and journaled); may repeat."""
        ...

    def chunk_ended(self, outcome: ChunkOutcome) -> None: ...

    def tick(self) -> None:
        """Nothing finished, but time passed (progress and manifest upkeep)."""
        ...


class ChunkExecutor(Protocol):
    """Runs chunks: :class:`LocalExecutor`, :class:`~vidstyle.render.ray_executor.RayExecutor`.

    ``name`` goes to the manifest's run record, and so does ``workers`` (chunks at once; it may
    become known only once the executor runs, e.g. a Ray cluster's size).
    """

    name: str

    @property
    def workers(self) -> int: ...

    def run_chunks(
        self,
        work: Sequence[ChunkWork],
        *,
        context: ChunkContext,
        events: ChunkEvents,
        stop: threading.Event | None = None,
    ) -> None:
        """Render ``work`` (in order of preference), report through ``events``; returns when every
        chunk is done or failed. Raises ``KeyboardInterrupt`` when interrupted or stopped, and the
        errors of the job (:data:`NO_RETRY`) as they are."""
        ...


def one_line(e: BaseException) -> str:
    """``TypeName: first line of the message``."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def default_chunk_function() -> ChunkFunction:
    from vidstyle.render import chunk

    return chunk.render_chunk


class LocalExecutor:
    """Renders the chunks one after the other in this process."""

    name = "local"

    def __init__(self, *, retries: int, chunk_function: ChunkFunction | None = None) -> None:
        self.retries = retries
        self.chunk_function = chunk_function

    @property
    def workers(self) -> int:
        return 1

    def run_chunks(
        self,
        work: Sequence[ChunkWork],
        *,
        context: ChunkContext,
        events: ChunkEvents,
        stop: threading.Event | None = None,
    ) -> None:
        fn = self.chunk_function or default_chunk_function()
        for w in work:
            cid = w.chunk.id
            attempt = w.attempts
            while True:
                attempt += 1
                events.chunk_started(cid, attempt=attempt)
                try:
                    result = fn(
                        context.job, w.chunk, layout=context.layout, numbers=list(context.numbers),
                        next_crossfade_from=w.next_crossfade_from, attempt=attempt, threads=context.threads,
                        on_frame=partial(events.frame_done, cid), stop=stop,
                    )
                except KeyboardInterrupt:
                    events.chunk_ended(ChunkOutcome(chunk=cid, state="interrupted", attempt=attempt))
                    raise
                except NO_RETRY:
                    events.chunk_ended(ChunkOutcome(chunk=cid, state="failed", attempt=attempt))
                    raise
                except Exception as e:  # noqa: BLE001 - retried, then reported
                    state = "retrying" if attempt <= self.retries else "failed"
                    events.chunk_ended(ChunkOutcome(chunk=cid, state=state, attempt=attempt, error=one_line(e)))
                    if state == "retrying":
                        continue
                    break
                warnings = tuple(result.warnings)
                if stop is not None and stop.is_set():
                    events.chunk_ended(ChunkOutcome(chunk=cid, state="stopped", attempt=attempt, warnings=warnings))
                    raise KeyboardInterrupt
                events.chunk_ended(ChunkOutcome(chunk=cid, state="done", attempt=attempt, warnings=warnings))
                break
