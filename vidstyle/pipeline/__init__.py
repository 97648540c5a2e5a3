"""The streaming stage graph: source → stages (flow, stylize, …) → sink.

>>> from vidstyle.pipeline import run_pipeline, MapStage
>>> stats = run_pipeline(source=frames, stages=[MapStage(name="copy", fn=copy)], sink=sink)  # doctest: +SKIP

See :mod:`vidstyle.pipeline.runner` for the threading model, back-pressure, ordering, error and
shutdown rules, and :mod:`vidstyle.pipeline.stage` for the :class:`Stage` protocol.
"""

from __future__ import annotations

from vidstyle.pipeline.runner import ProgressInfo, RunStats, SinkLike, run_pipeline
from vidstyle.pipeline.stage import BaseStage, MapStage, Stage

__all__ = ["BaseStage", "MapStage", "ProgressInfo", "RunStats", "SinkLike", "Stage", "run_pipeline"]
