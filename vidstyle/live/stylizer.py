"""The live processing stages: optical flow + feed-forward stylization, then the stabiliser, with models
and stabilisation that can be switched while it runs.

Flow and the network run on the same frame (at once where a core is free: the flow in a helper thread), so
a frame taken from the latest-frame slot goes straight through: no queue where a frame could wait for the
model. Flow is computed between the frames this stage actually processes (the ones that were not dropped), which is
exactly what the stabiliser needs to warp its previous output. On request (``pipelined``), the stabiliser
runs as a second stage (:class:`LiveStabilizer`, ``LiveStylizer.stages``) in its own thread, so the network
starts on the next frame while the stabiliser finishes this one.

Controls (:meth:`LiveStylizer.select_model`, :meth:`LiveStylizer.next_model`,
:meth:`LiveStylizer.set_stabilize`, :meth:`LiveStylizer.toggle_stabilize`) may be called from any
thread (the preview's key handler); they take effect at the next frame.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidstyle.errors import VidstyleError
from vidstyle.frame import Frame
from vidstyle.options import DEFAULT_STABILIZE, OptionValueError

__all__ = ["DEFAULT_LIVE_FLOW", "DEFAULT_LIVE_FLOW_SCALE", "DEFAULT_STRENGTH", "LiveStabilizer", "LiveStylizer"]

#: the stabilisation strength of live mode when none is given (the feed-forward default)
DEFAULT_STRENGTH = DEFAULT_STABILIZE["feedforward"]

#: flow estimator of live mode: the cheapest DIS preset (a few ms at 640×360)
DEFAULT_LIVE_FLOW = "dis-ultrafast"
#: live mode skips the stabiliser's stroke-band restoration (files keep it): ~1-2 ms per frame on the
#: one network thread of a 2-core machine, where 30 fps leaves no slack (BENCHMARKS.md, "Live mode").
LIVE_MID_BANDS: tuple[tuple[float, float], ...] = ()

#: flow, consistency mask and cut detection run at this fraction of the frame size (FlowStage.work_scale).
#: Full size: with the network on cores - 1 threads it keeps 30 fps on 2 cores as well as half size does, and
#: half-size flow stabilises far less (warping-error ratio 0.29-0.77 instead of 0.07-0.32 on the real clips;
#: BENCHMARKS.md, "Live mode" and "Temporal stabilisation").
DEFAULT_LIVE_FLOW_SCALE = 1.0

ModelRef = Any  # a model name, a path, or a loaded StyleModel

#: ``Frame.extra`` key of the work a pipelined :class:`LiveStylizer` hands to its :class:`LiveStabilizer`
PENDING = "live_pending"


@dataclass(slots=True)
class _Pending:
    """What the stabiliser stage needs to finish a frame: the stage (model) that stylised it, the network's output,
    the stabilisation strength in force for the frame, and whether the temporal chain restarts at it."""

    stage: Any
    output: Any
    strength: float
    restart: bool


def _model_label(model: ModelRef) -> str:
    name = getattr(model, "name", None)
    if isinstance(name, str):
        return name
    text = os.fspath(model) if isinstance(model, (str, os.PathLike)) else str(model)
    base = os.path.basename(text)
    return base.removesuffix(".safetensors")


class LiveStylizer:
    """Pipeline stage for live mode: flow, then a feed-forward style network with temporal
    stabilisation (:class:`~vidstyle.stylize.feedforward.FeedForwardStage`).

    It is given its parts: build one with :func:`vidstyle.api.build_live_stylizer`, which sets the
    process up (:func:`vidstyle.runtime.setup`) and makes the flow stage and the network stages from
    the option groups. This class touches no process-wide state.

    Args:
        models: the models to cycle through (names, ``.safetensors`` paths or loaded
            :class:`~vidstyle.nets.registry.StyleModel` objects); the first is built now (so a
            bad model fails before the camera opens), the others when first selected.
        stage_factory: ``stage_factory(model=..., stabilize=strength)`` builds the stylize stage of
            one model (a :class:`~vidstyle.stylize.feedforward.FeedForwardStage`; tests inject fakes).
        flow: the :class:`~vidstyle.flow.stage.FlowStage` computing the flow between processed
            frames, or ``None`` for no flow (and no stabilisation).
        stabilize: stabilisation strength in [0, 1] (``None``: the default, 0.85; 0 starts with it
            off, the toggle then turns it on at the default strength).
        threads: the network's CPU threads as set up for the run (``None``: not on a CPU); with
            ``parallel_flow`` ``None`` it decides whether the flow overlaps the network.
        parallel_flow: compute the flow of a frame in a helper thread while the network runs on
            it (the stabiliser needs both only afterwards), so flow costs no latency when a core is
            free. ``None``: on when the process has at least 4 CPU cores or ``threads`` leaves one
            free (on 2 busy cores with 2 network threads the extra thread made frames stall for
            seconds; BENCHMARKS.md, "Live mode"). Applies to feed-forward stages; other stages get
            flow first, then ``process``.
        pipelined: run the stabiliser in a stage of its own after this one (:attr:`stages`), so the network
            starts on the next frame while the stabiliser finishes this one; the output is the same. More
            frames per second on a saturated CPU, more latency: on 2 cores 28.8-30.0 fps at p95 50-92 ms
            against 26.7-30.0 fps at p95 40-73 ms in one stage (BENCHMARKS.md, "Live mode"), so it is off
            unless asked for, and applies only where the flow overlaps (``parallel_flow``). The caller must
            then run every stage of :attr:`stages`, in order.

    Attributes:
        notice: the last problem met while switching models (``""`` if none), for the overlay.
    """

    name = "stylize"

    def __init__(
        self,
        *,
        models: Sequence[ModelRef],
        stage_factory: Callable[..., Any],
        flow: Any = None,
        stabilize: float | None = None,
        threads: int | None = None,
        parallel_flow: bool | None = None,
        pipelined: bool = False,
    ) -> None:
        models = list(models)
        if not models:
            raise OptionValueError(
                "models", "live mode needs at least one model; give `models` NAME (see 'vidstyle models')"
            )
        strength = DEFAULT_STRENGTH if stabilize is None else float(stabilize)
        if not 0.0 <= strength <= 1.0:
            raise OptionValueError(
                "stabilize", f"stabilize must be between 0 (off) and 1 (strongest), got {stabilize}"
            )
        self._models = models
        self._labels = [_model_label(m) for m in models]
        #: the network's CPU threads (``None`` on other devices), as set up for the run
        self.threads = threads
        self._factory = stage_factory
        self._on_strength = strength if strength > 0 else DEFAULT_STRENGTH
        self._flow: Any = flow
        if parallel_flow is None:
            from vidstyle.runtime import default_threads

            cores = default_threads()
            parallel_flow = cores >= 4 or (threads is not None and threads < cores)
        self.parallel_flow = bool(parallel_flow)
        #: the stabiliser runs in :class:`LiveStabilizer`, the second of :attr:`stages`
        self.pipelined = bool(pipelined) and self.parallel_flow
        self._finisher = LiveStabilizer() if self.pipelined else None
        self._restart = False  # the next pipelined frame restarts the stabiliser's chain
        self._pool: Any = None
        self._lock = threading.Lock()
        self._stages: dict[int, Any] = {}
        self._current = 0
        self._wanted = 0
        self._stab_on = strength > 0 and self._flow is not None
        self._stab_wanted = self._stab_on
        self.notice = ""
        self.switches = 0
        self._stages[0] = self._build(0)

    @property
    def stages(self) -> list[Any]:
        """The pipeline stages to run, in order: this one, then (:attr:`pipelined`) the stabiliser's."""
        return [self] if self._finisher is None else [self, self._finisher]

    # ------------------------------------------------------------------------------ controls
    @property
    def model_names(self) -> list[str]:
        return list(self._labels)

    @property
    def warnings(self) -> list[str]:
        """Notes about the models built so far (e.g. a huge painting was downscaled)."""
        return [w for stage in self._stages.values() for w in getattr(stage, "warnings", [])]

    @property
    def model_name(self) -> str:
        """Name of the model in use."""
        return self._labels[self._current]

    @property
    def stabilizing(self) -> bool:
        """Whether stabilisation is on (as requested; applied from the next frame)."""
        return self._stab_wanted

    @property
    def strength(self) -> float:
        return self._on_strength if self._stab_wanted else 0.0

    def select_model(self, index: int) -> None:
        """Use model ``index`` (modulo the number of models) from the next frame."""
        with self._lock:
            self._wanted = index % len(self._models)

    def next_model(self, step: int = 1) -> None:
        """Move ``step`` models forward (negative: back) in the list, wrapping around."""
        with self._lock:
            self._wanted = (self._wanted + step) % len(self._models)

    def set_stabilize(self, on: bool) -> None:
        """Turn stabilisation on (at the configured strength) or off, from the next frame."""
        with self._lock:
            self._stab_wanted = bool(on) and self._flow is not None
            if on and self._flow is None:
                self.notice = "no optical flow (flow none): stabilisation unavailable"

    def toggle_stabilize(self) -> None:
        self.set_stabilize(not self._stab_wanted)

    # ------------------------------------------------------------------------------ stage
    def _build(self, index: int) -> Any:
        stage = self._factory(model=self._models[index], stabilize=self._on_strength)
        stabilizer = getattr(stage, "stabilizer", None)
        if stabilizer is not None:
            stabilizer.mid_bands = LIVE_MID_BANDS
        name = getattr(stage, "model_name", None)
        if isinstance(name, str) and name:
            self._labels[index] = name
        return stage

    def _apply_controls(self) -> None:
        with self._lock:
            wanted, stab = self._wanted, self._stab_wanted
        if wanted != self._current:
            if wanted not in self._stages:
                try:
                    self._stages[wanted] = self._build(wanted)
                except VidstyleError as exc:  # keep the current model
                    self.notice = f"cannot load {self._labels[wanted]}: {exc}"
                    with self._lock:
                        self._wanted = self._current
                    wanted = self._current
            if wanted != self._current:
                self._current = wanted
                self.switches += 1
                self._restart_temporal()
        if stab != self._stab_on:
            self._stab_on = stab
            self._restart_temporal()

    def _restart_temporal(self) -> None:
        """Forget the previous frame and output: the next frame starts the temporal chain."""
        if self._flow is not None:
            self._flow.close()
        stage = self._stages[self._current]
        if self._pipelines(stage):  # the stabiliser is the other thread's: it restarts at the next frame
            stage.reset_network()
            self._restart = True
        elif callable(getattr(stage, "reset_temporal", None)):
            stage.reset_temporal()
        elif getattr(stage, "stabilizer", None) is not None:
            stage.stabilizer.reset()

    def _configure(self, stage: Any) -> None:
        strength = self._on_strength if self._stab_on else 0.0
        if hasattr(stage, "stabilize"):
            stage.stabilize = strength
        stabilizer = getattr(stage, "stabilizer", None)
        if stabilizer is not None:
            stabilizer.strength = strength

    @staticmethod
    def _splits(stage: Any) -> bool:
        """Whether ``stage`` runs its network and its stabiliser as separate calls (a FeedForwardStage; tests'
        fakes do not), which the overlapped and pipelined paths need."""
        return hasattr(stage, "network_output") and hasattr(stage, "finish_frame")

    def _pipelines(self, stage: Any) -> bool:
        return self.pipelined and self._splits(stage)

    def process(self, frame: Frame) -> list[Frame]:
        self._apply_controls()
        stage = self._stages[self._current]
        if self._pipelines(stage):
            out = self._network_part(stage, frame)
        else:
            out = self._whole(stage, frame)
        for f in out:
            f.extra["model"] = self._labels[self._current]
            f.extra["stabilize"] = self._on_strength if self._stab_on else 0.0
        return out

    def _network_part(self, stage: Any, frame: Frame) -> list[Frame]:
        """Flow (helper thread, when stabilising) and network (this thread) at once; the stabiliser's part goes to
        :class:`LiveStabilizer` with the frame, with the strength and restart decided here, in frame order."""
        flows = self._stab_on and self._flow is not None
        pending = self._flow_pool().submit(self._flow.process, frame) if flows else None
        try:
            (y,) = stage.network_output([frame])
        finally:
            if pending is not None:
                pending.result()
        strength = self._on_strength if flows else 0.0
        frame.extra[PENDING] = _Pending(stage=stage, output=y, strength=strength, restart=self._restart)
        self._restart = False
        return [frame]

    def _flow_pool(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidstyle-live-flow")
        return self._pool

    def _whole(self, stage: Any, frame: Frame) -> list[Frame]:
        """Flow, network and stabiliser of ``frame`` in this stage."""
        self._configure(stage)
        if self._stab_on and self._flow is not None:
            if self.parallel_flow and self._splits(stage):
                out = self._overlapped(stage, frame)
            else:
                self._flow.process(frame)
                out = stage.process(frame)
        else:
            out = stage.process(frame)
        return out

    def _overlapped(self, stage: Any, frame: Frame) -> list[Frame]:
        """Flow (helper thread) and network (this thread) at once, then the stabiliser: the
        steps of :meth:`FeedForwardStage.process <vidstyle.stylize.feedforward.FeedForwardStage.process>`
        for one frame, with the flow overlapped."""
        pending = self._flow_pool().submit(self._flow_and_warp, stage, frame)
        try:
            # the stage's own network call: its style mix, style strength and brush size at this frame, and a real
            # batch (`image_to_tensor(...)[None]` has a batch stride of 3, which oneDNN runs 1.4-1.8x slower)
            (y,) = stage.network_output([frame])
        finally:
            prepared = pending.result()
        return [stage.finish_frame(frame, y, prepared=prepared)]

    def _flow_and_warp(self, stage: Any, frame: Frame) -> Any:
        """The helper thread's part of a frame: its flow, then the stabiliser's work that needs only the flow and the
        previous output (the previous output warped, the mask), which then costs the network's thread nothing."""
        self._flow.process(frame)
        prepare = getattr(stage, "prepare_frame", None)
        return prepare(frame) if callable(prepare) else None

    def warmup(self, *, width: int, height: int, frames: int = 2) -> None:
        """Run the current model (and flow) on blank frames so the first camera frame does not
        pay for lazy initialisation or ``torch.compile``; the temporal state is reset after."""
        stage = self._stages[self._current]
        rng = np.random.default_rng(0)
        for i in range(max(1, frames)):
            image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            for f in self.process(Frame(index=i, image=image)):
                if self._finisher is not None:
                    self._finisher.process(f)
            stage.finish()
        self._restart_temporal()

    def finish(self) -> list[Frame]:
        stage = self._stages[self._current]
        out = stage.finish()
        for f in out:
            f.extra["model"] = self._labels[self._current]
        return out

    def close(self) -> None:
        for stage in self._stages.values():
            with contextlib.suppress(
                Exception
            ):  # closing must not hide the real outcome
                stage.close()
        if self._flow is not None:
            self._flow.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class LiveStabilizer:
    """The second live stage of a pipelined :class:`LiveStylizer` (``LiveStylizer.stages``): the stabiliser step
    and the conversion to the output picture, in a thread of their own. Frames arrive in order with their network
    output, the strength in force and whether the chain restarts there; frames without (another stage made
    them whole) pass through."""

    name = "stabilise"

    def process(self, frame: Frame) -> list[Frame]:
        job = frame.extra.pop(PENDING, None)
        if job is None:
            return [frame]
        stabilizer = job.stage.stabilizer
        if job.restart:
            stabilizer.reset()
        stabilizer.strength = job.strength
        job.stage.finish_frame(frame, job.output, stabilize=job.strength > 0)
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        pass
