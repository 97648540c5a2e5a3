"""The render driver: checks a job, plans the chunks, has an executor run them (here or on Ray),
cross-fades the chunk borders, encodes video outputs, and keeps the manifest.

>>> from vidstyle.render import load_job, render
>>> result = render(load_job("sh010.toml"), resume=False)            # doctest: +SKIP
>>> print(result.frames, result.fps, result.manifest)                 # doctest: +SKIP

Everything that can be checked before work starts is (job keys, input, output, encoder, model),
so a bad job fails at once with one line. The manifest is written at the start (status
``running``), rewritten from the chunk journals every few seconds and at each chunk's start and
end, and finally with status ``complete``, ``interrupted`` or ``failed``.

The steps: :mod:`.shot` (what the input offers, where the files go, the model), :mod:`.plan`
(chunks, what is done), :mod:`.executor` / :mod:`.ray_executor` (running the chunks),
:mod:`.finish` (cross-fades, encoding, clean-up), :mod:`.manifest` (the manifest's records).
"""

from __future__ import annotations

import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError, OutputExistsError
from vidstyle.render.executor import ChunkContext, ChunkExecutor, ChunkOutcome, ChunkWork, LocalExecutor
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import (
    ChunkRecord,
    Journal,
    Manifest,
    OutputRecord,
    RenderLayout,
    RunRecord,
    ShotRecord,
    frame_records,
    journal_records_from_manifest,
    read_journal,
)
from vidstyle.render.plan import JournalState, RenderPlan, finished_chunks, resolve_resources
from vidstyle.render.shot import (
    Shot,
    check_encoder,
    colour_management,
    default_codec,
    model_record,
    probe_shot,
    render_layout,
)

__all__ = ["render", "RenderResult", "RenderProgress", "ChunkStatus", "probe_shot", "Shot", "default_codec"]

_MANIFEST_EVERY = 5.0  # seconds between manifest rewrites while rendering


# --------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class ChunkStatus:
    """Progress of one chunk: ``state`` is pending, running, done, retrying or failed."""

    id: int
    first: int
    last: int
    done: int
    frames: int
    state: str
    attempts: int


@dataclass(frozen=True)
class RenderProgress:
    """Passed to the ``progress`` callback (about twice a second and after each frame).

    ``done`` counts the shot's finished frames (including those of earlier runs when resuming),
    ``fps`` and ``eta`` are of this run; ``phase`` is ``render``, ``crossfade`` or ``encode``.
    """

    done: int
    total: int
    elapsed: float
    fps: float
    eta: float | None
    chunks: tuple[ChunkStatus, ...]
    phase: str = "render"


@dataclass
class RenderResult:
    """What :func:`render` did."""

    output: Path
    manifest: Path
    frames: int
    frames_rendered: int
    seconds: float
    fps: float
    chunks: int
    failures: list[str] = field(default_factory=list)
    resumed: bool = False
    warnings: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------- set-up
def make_executor(job: RenderJob, *, threads: int, workers: int) -> ChunkExecutor:
    """The executor a job asks for: on Ray when ``job.ray`` is set, else in this process."""
    if job.ray:
        from vidstyle.render.ray_executor import RayExecutor

        return RayExecutor(address=job.ray, workers=workers, threads=threads, retries=job.retries)
    return LocalExecutor(retries=job.retries)


def check_same_job(manifest: Manifest, job: RenderJob, model: dict[str, Any]) -> None:
    """Refuse to resume with other parameters (those that change the output) or another model."""
    from vidstyle.render.job import KEYS

    old = manifest.parameters
    new = job.parameters()
    for key in sorted(set(old) | set(new)):
        spec = KEYS.get(key)
        if spec is not None and not spec.affects_output:
            continue
        if old.get(key) != new.get(key):
            raise InvalidOptionError(
                f"--resume: key '{key}' is {old.get(key)!r} in the manifest but {new.get(key)!r} now; resume "
                "with the same value, or start again with --overwrite"
            )
    if manifest.model.get("sha256") != model.get("sha256") or manifest.model.get("styles") != model.get("styles"):
        raise InvalidOptionError(
            "--resume: the model file changed since the render started (different SHA-256); "
            "restore it, or start again with --overwrite"
        )


def _new_manifest(job: RenderJob, *, shot: Shot, layout: RenderLayout, plan: RenderPlan,
                  model: dict[str, Any]) -> Manifest:
    from vidstyle import __version__

    numbers = list(plan.numbers)
    video = job.output_kind == "video"
    return Manifest(
        vidstyle_version=__version__, status="running", created=_now(), updated=_now(), job_file=job.job_file,
        parameters=job.parameters(), parameter_sources=dict(job.given), command=job.command(), model=model,
        shot=ShotRecord(input=job.input, kind=shot.kind, width=shot.width, height=shot.height,
                        bit_depth=shot.bit_depth, fps=str(shot.fps) if shot.fps else None, timecode=shot.timecode,
                        first=numbers[0], last=numbers[-1], count=len(numbers), numbers=numbers),
        output=OutputRecord(path=job.output, kind=job.output_kind,
                            frames=layout.frames if layout.frames_final else None, bit_depth=layout.bit_depth,
                            dtype=layout.work_dtype, codec=(job.codec or default_codec(job.output)) if video else None),
        layout=layout,
        chunks=[ChunkRecord(chunk=c) for c in plan.chunks],
    )


def _seed_journals(manifest: Manifest, plan: RenderPlan, layout: RenderLayout, job: RenderJob) -> bool:
    """The work folder is gone (the render completed, or it was deleted): rebuild the journals
    from the manifest's records of frames whose files are still there. Returns whether the
    render is complete as it stands."""
    if manifest.status == "complete":
        if not layout.frames_final:
            return Path(job.output).is_file()
        if all(layout.frame_path(n).is_file() for n in plan.numbers):
            return True
    if not layout.frames_final:
        return False  # the lossless frames of a video output went with the work folder
    Path(layout.work).mkdir(parents=True, exist_ok=True)
    on_disk = {n for n in plan.numbers if layout.frame_path(n).is_file()}
    by_chunk, driver_lines = journal_records_from_manifest(manifest, plan, on_disk=on_disk)
    for cid, lines in by_chunk.items():
        with Journal(layout.journal_path(cid)) as journal:
            for line in lines:
                journal.append(line)
    with Journal(layout.journal_path("driver")) as journal:
        for line in driver_lines:
            journal.append(line)
    return False


def _read_journals(plan: RenderPlan, layout: RenderLayout, *, heads: bool = False
                   ) -> tuple[JournalState, dict[int, dict[str, Any]]]:
    """What the journals say is finished, and the last ``start`` line of each chunk's journal."""
    records: dict[int, list[dict[str, Any]]] = {}
    starts: dict[int, dict[str, Any]] = {}
    for c in plan.chunks:
        records[c.id] = list(read_journal(layout.journal_path(c.id)))
        for rec in records[c.id]:
            if rec.get("e") == "start":
                starts[c.id] = rec
    on_disk: frozenset[tuple[int, int]] = frozenset()
    if heads:
        on_disk = frozenset((c.id, n) for c in plan.chunks for n, _ in plan.crossfade_zone(c)
                            if layout.xfade_path("head", n, c.id).is_file())
    state = JournalState.from_records(plan, chunk_records=records,
                                      driver_records=list(read_journal(layout.journal_path("driver"))), heads=on_disk)
    return state, starts


# --------------------------------------------------------------------------------------- driver
class _Render:
    """One run of a render: prepared, then run; it takes the executor's events (ChunkEvents)."""

    def __init__(self, job: RenderJob, *, resume: bool, progress: Callable[[RenderProgress], None] | None,
                 stop: threading.Event | None, executor: ChunkExecutor | None) -> None:
        self.job = job
        self.resume = resume
        self.progress_cb = progress
        self.stop = stop
        self._given_executor = executor
        self.t0 = time.perf_counter()
        self.warnings: list[str] = []
        self.failures: list[str] = []
        self.done_run = 0
        self._last_manifest = 0.0

    # -------------------------------------------------------------------------- set-up
    def prepare(self) -> None:
        from vidstyle.io import check_output
        from vidstyle.render.determinism import environment_info
        from vidstyle.runtime import default_threads

        job = self.job
        self.shot = shot = probe_shot(job)
        management = colour_management(job)  # one line now if a colour space or the config is wrong
        self.layout = layout = render_layout(job, shot, colour=management.output if management else None)
        from vidstyle.io.mattes import Matte

        if job.stylize.mask is not None:  # a matte sequence must cover the shot before any frame is made
            Matte(job.stylize.mask).check_covers(shot.numbers)
        for style in job.stylize.style or ():  # and so must a region's (STYLE@matte.%04d.png)
            if style.matte is not None:
                Matte(style.matte, parameter="style").check_covers(shot.numbers)
        from vidstyle.api import region_matte_notes

        self.warnings.extend(region_matte_notes(job.stylize.style or (), height=shot.height, width=shot.width))
        if job.output_kind == "video":
            check_encoder(job, layout)
        manifest_path = Path(layout.manifest)
        model = model_record(job)
        self.threads, workers = resolve_resources(ray=job.ray, threads=job.threads, workers=job.workers,
                                                  cpus=default_threads())
        if self.resume:
            if not manifest_path.is_file():
                raise InputNotFoundError(
                    f"no manifest at '{manifest_path}' to resume from; start the render without --resume"
                )
            self.manifest = manifest = Manifest.load(manifest_path)
            check_same_job(manifest, job, model)
            self.plan = RenderPlan(numbers=tuple(manifest.shot.numbers), chunks=tuple(c.chunk for c in manifest.chunks))
            if list(self.plan.numbers) != shot.numbers:
                raise InvalidInputError(
                    f"the input frames changed since the render started ({len(self.plan.numbers)} then, "
                    f"{len(shot.numbers)} now); render again with --overwrite"
                )
            for c in manifest.chunks:
                c.status = "pending" if c.status != "done" else "done"
        else:
            if (manifest_path.exists() or Path(layout.work).exists()) and not job.overwrite:
                raise OutputExistsError(
                    f"a render of '{job.output}' exists ('{manifest_path}'); pass --resume to continue it "
                    "or --overwrite to start again"
                )
            if job.overwrite:
                shutil.rmtree(layout.work, ignore_errors=True)
                manifest_path.unlink(missing_ok=True)
            check_output(job.output, input_spec=job.input, overwrite=job.overwrite)
            n_chunks = workers if job.chunk_frames is None and job.ray else 1
            self.plan = RenderPlan.new(shot.numbers, chunk_frames=job.chunk_frames, chunks=n_chunks,
                                       overlap=job.overlap, crossfade=job.crossfade, lead_in=shot.lead_in)
            self.manifest = manifest = _new_manifest(job, shot=shot, layout=layout, plan=self.plan, model=model)
        if self.resume and not Path(layout.work).exists() and _seed_journals(manifest, self.plan, layout, job):
            # a finished render is not an interrupted one: most likely the interrupted render had other
            # options (another --output), and resuming this one would report success having done nothing
            raise InvalidOptionError(
                f"--resume: the render of '{job.output}' is complete (manifest '{manifest_path}'), so there is "
                "nothing to resume; to resume an interrupted render, repeat its options (e.g. --output), or "
                "pass --overwrite to render this one again"
            )
        Path(layout.work).mkdir(parents=True, exist_ok=True)
        self.executor: ChunkExecutor = self._given_executor or make_executor(job, threads=self.threads, workers=workers)
        self.run = RunRecord(started=_now(), resume=self.resume, executor=self.executor.name, address=job.ray,
                             workers=self.executor.workers, threads=self.threads, host=platform.node())
        manifest.runs.append(self.run)
        manifest.environment = environment_info()
        manifest.determinism = {
            "seed": job.seed,
            "torch_threads_per_worker": self.threads,
            "deterministic_algorithms": True,
            "cudnn_deterministic": True,
            "cudnn_benchmark": False,
            "batch_size": job.batch_size,
            "note": "bit-identical on the same machine with the same threads; see vidstyle.render.determinism",
        }
        self.driver_journal = Journal(layout.journal_path("driver"))
        self.chunk_state: dict[int, str] = {c.id: "pending" for c in self.plan.chunks}
        self.attempts: dict[int, int] = {c.chunk.id: c.attempts for c in manifest.chunks}
        state, _ = _read_journals(self.plan, layout)
        self.done_before = len(state.frames)
        self.done: dict[int, set[int]] = {c.id: {n for n in state.frames if c.first <= n <= c.last}
                                          for c in self.plan.chunks}
        self.write_manifest()
        if job.uses_keyframes:  # trained once, before any chunk, after the manifest (a kill during training resumes);
            from vidstyle.keyframes.render import ensure_keyframe_network  # a resume finds its checkpoint or network

            ensure_keyframe_network(job, work=layout.work, numbers=shot.numbers)

    # -------------------------------------------------------------------------- bookkeeping
    def write_manifest(self) -> None:
        state, starts = _read_journals(self.plan, self.layout)
        m = self.manifest
        m.frames = frame_records(self.plan, state, layout=self.layout)
        for c in m.chunks:
            cid = c.chunk.id
            c.attempts = self.attempts.get(cid, 0)
            c.status = self.chunk_state.get(cid, c.status)
            if cid in starts:
                s = starts[cid]
                c.host = s.get("host")
                c.last_start = {k: s.get(k) for k in ("attempt", "from", "read_from", "state", "threads", "device", "pid")}
        done = sum(1 for r in m.frames if r["status"] == "done")
        elapsed = time.perf_counter() - self.t0
        m.summary = {
            "frames_total": len(self.plan.numbers),
            "frames_done": done,
            "frames_this_run": self.done_run,
            "seconds_this_run": round(elapsed, 2),
            "fps_this_run": round(self.done_run / elapsed, 3) if elapsed > 0 else 0.0,
            "failures": list(self.failures),
        }
        m.updated = _now()
        self.run.workers = self.executor.workers
        self.run.frames = self.done_run
        self.run.seconds = round(elapsed, 2)
        m.save(self.layout.manifest)
        self._last_manifest = time.perf_counter()

    def report(self, *, phase: str = "render") -> None:
        now = time.perf_counter()
        if now - self._last_manifest > _MANIFEST_EVERY:
            self.write_manifest()
        if self.progress_cb is None:
            return
        elapsed = now - self.t0
        total = len(self.plan.numbers)
        done = min(total, self.done_before + self.done_run)
        fps = self.done_run / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / fps if fps > 0 else None
        chunks = tuple(
            ChunkStatus(id=c.id, first=c.first, last=c.last, done=len(self.done[c.id]), frames=c.frames,
                        state=self.chunk_state[c.id], attempts=self.attempts.get(c.id, 0))
            for c in self.plan.chunks
        )
        self.progress_cb(RenderProgress(done=done, total=total, elapsed=elapsed, fps=fps, eta=eta, chunks=chunks,
                                        phase=phase))

    # -------------------------------------------------------------------------- executor events
    def chunk_started(self, chunk: int, *, attempt: int) -> None:
        self.attempts[chunk] = attempt
        self.chunk_state[chunk] = "running"
        self.write_manifest()

    def frame_done(self, chunk: int, number: int) -> None:
        if number not in self.done[chunk]:
            self.done[chunk].add(number)
            self.done_run += 1
        self.report()

    def chunk_ended(self, outcome: ChunkOutcome) -> None:
        c = self.plan.chunks[outcome.chunk]
        self.chunk_state[c.id] = outcome.state
        self.warnings.extend(outcome.warnings)
        if outcome.state == "retrying":
            self.warnings.append(f"chunk {c.id} failed ({outcome.error}); retrying")
        elif outcome.state == "failed" and outcome.error is not None:
            self.failures.append(f"chunk {c.id} (frames {c.first}-{c.last}): {outcome.error}")
        if outcome.state != "interrupted" and (outcome.state != "failed" or outcome.error is not None):
            self.write_manifest()  # an interrupted or fatal end: written once, on the way out

    def tick(self) -> None:
        self.report()

    # -------------------------------------------------------------------------- running
    def execute(self) -> RenderResult:
        from vidstyle.render.finish import clean_up, crossfade, encode_video

        job, layout, plan = self.job, self.layout, self.plan
        state, _ = _read_journals(plan, layout, heads=True)
        crossfaded = set(state.crossfaded)
        for cid in finished_chunks(plan, state):
            self.chunk_state[cid] = "done"
        work = [ChunkWork(chunk=c, next_crossfade_from=plan.next_crossfade(c), attempts=self.attempts.get(c.id, 0))
                for c in plan.chunks if self.chunk_state[c.id] != "done"]
        context = ChunkContext(job=job, layout=layout, numbers=plan.numbers, threads=self.threads)
        status = "complete"
        try:
            if work:
                self.executor.run_chunks(work, context=context, events=self, stop=self.stop)
            if self.failures:
                status = "failed"
            else:
                crossfade(plan=plan, layout=layout, done=crossfaded, journal=self.driver_journal,
                          on_frame=lambda: self.report(phase="crossfade"))
                if job.output_kind == "video":
                    video = encode_video(job=job, shot=self.shot, plan=plan, layout=layout,
                                         on_frame=lambda: self.report(phase="encode"))
                    self.warnings.extend(video.warnings)
                    out = self.manifest.output
                    out.sha256, out.encoded, out.encoder = video.sha256, True, video.encoder
                    out.timecode, out.fps = video.timecode, video.fps
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            self.run.status = status
            self.run.ended = _now()
            self.manifest.status = status
            self.driver_journal.close()
            self.write_manifest()
            if status == "complete":
                clean_up(job=job, layout=layout)
        seconds = time.perf_counter() - self.t0
        return RenderResult(
            output=Path(job.output),
            manifest=Path(layout.manifest),
            frames=len(plan.numbers),
            frames_rendered=self.done_run,
            seconds=seconds,
            fps=self.done_run / seconds if seconds > 0 else 0.0,
            chunks=len(plan.chunks),
            failures=list(self.failures),
            resumed=self.resume,
            warnings=self.warnings,
        )


def render(
    job: RenderJob,
    *,
    resume: bool = False,
    progress: Callable[[RenderProgress], None] | None = None,
    stop: threading.Event | None = None,
    executor: ChunkExecutor | None = None,
    patch: bool = False,
) -> RenderResult:
    """Render a shot.

    Args:
        job: a validated job (:func:`~vidstyle.render.load_job`).
        resume: continue the render recorded in the manifest (same job), keeping its finished frames.
        patch: re-render ``job.frames`` of the finished render of ``job.output`` and replace those
            frames in it, updating its manifest (:func:`vidstyle.render.patch.patch_render`).
        progress: called with a :class:`RenderProgress` as frames finish (and about twice a second under Ray).
        stop: set it to end the render early and cleanly (resumable).
        executor: what runs the chunks (:class:`~vidstyle.render.executor.ChunkExecutor`); by
            default in this process, or on Ray when the job says ``ray``.

    Returns:
        :class:`RenderResult`; ``failures`` lists chunks that failed after their retries (their frames
        are missing; ``--resume`` renders them).

    Raises:
        VidstyleError: a bad job, input, model or output (nothing rendered), one line with a remedy.
        KeyboardInterrupt: after the finished frames and the manifest are saved (resumable).
    """
    if patch:
        if resume:
            raise InvalidOptionError("--patch and --resume do not go together; a patch renders its range afresh")
        from vidstyle.render.patch import patch_render

        return patch_render(job, progress=progress, stop=stop, executor=executor)  # type: ignore[no-any-return]
    r = _Render(job, resume=resume, progress=progress, stop=stop, executor=executor)
    r.prepare()
    return r.execute()
