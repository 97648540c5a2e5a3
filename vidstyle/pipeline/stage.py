"""The :class:`Stage` protocol and two small helpers to build stages.

A stage is a small object with one job. The pipeline runs each stage in its own worker thread and
calls, in this order and always from that one thread:

* ``process(frame)`` once per incoming frame, in frame order. It returns the frames that are ready,
  in order: usually ``[frame]``, but a stage may hold frames back (to batch them, or to look ahead)
  and return ``[]`` now and several frames later.
* ``finish()`` once at the end of the stream (not after an error): returns whatever is still held.
* ``close()`` always, last, also after an error or an interrupt: frees resources (models, devices).

A stage may also define ``interrupt()``: the runner calls it (once, from whichever thread noticed
the error or the Ctrl-C) when the run is being aborted, so a stage whose ``process`` can run for a
long time (per-frame optimisation) can return early instead of making the shutdown wait. It must be
thread-safe and quick: set a flag that ``process`` checks.

A stage may set ``background = True``: it is a helper whose work can wait for a free core (the flow
and stabilise stages), and the runner runs its thread at a lower OS priority (Linux: nice +10) so
that the stage that sets the pace, the network, gets the CPU first when the cores are all busy.

Stages must keep frame order: the frames a stage returns over its lifetime have strictly increasing
``index``. Temporal state (previous frames, previous outputs) lives inside the stage, never in globals,
so two pipelines can run in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from vidstyle.frame import Frame

__all__ = ["BaseStage", "MapStage", "Stage"]


@runtime_checkable
class Stage(Protocol):
    """What the pipeline needs from a stage (structural: no need to subclass)."""

    name: str

    def process(self, frame: Frame) -> list[Frame]:
        """Take one frame; return the frames ready now (zero or more, in order)."""
        ...

    def finish(self) -> list[Frame]:
        """End of stream: return the frames still held back (in order)."""
        ...

    def close(self) -> None:
        """Free resources. Always called once, last, also after errors."""
        ...


class BaseStage:
    """Convenience base class: a stage that holds nothing back and owns no resources."""

    name: str = "stage"

    def process(self, frame: Frame) -> list[Frame]:  # pragma: no cover - to be overridden
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        return None


class MapStage(BaseStage):
    """A stage that applies ``fn`` to each frame in place (``fn`` may also return a new frame).

    >>> def invert(frame):
    ...     frame.stylized = 255 - frame.image
    >>> stage = MapStage(name="invert", fn=invert)
    """

    def __init__(self, *, name: str, fn: Callable[[Frame], Frame | None]) -> None:
        self.name = name
        self._fn = fn

    def process(self, frame: Frame) -> list[Frame]:
        out = self._fn(frame)
        return [frame if out is None else out]
