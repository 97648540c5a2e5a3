"""The render driver: checks a job, plans the chunks, runs them (here or on Ray), cross-fades the
chunk borders, encodes video outputs, and keeps the manifest.

>>> from vidstyle.render import load_job, render
>>> result = render(load_job("sh010.toml"), resume=False)            # doctest: +SKIP
>>> print(result.frames, result.fps, result.manifest)                 # doctest: +SKIP

Everything that can be checked before work starts is (job keys, input, output, encoder, model),
so a bad job fails at once with one line. The manifest is written at the start (status
``running``), rewritten from the chunk journals every few seconds and at each chunk's end, and
finally with status ``complete``, ``interrupted`` or ``failed``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.errors import (
    InputNotFoundError,
    InvalidInputError,
    InvalidOptionError,
    ModelError,
    OutputError,
    OutputExistsError,
)
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import (
    MANIFEST_FORMAT,
    Journal,
    RenderLayout,
    file_sha256,
    manifest_path_for,
    read_journal,
    read_manifest,
    write_json_atomic,
)
from vidstyle.render.plan import Chunk, crossfade_weights, plan_chunks

__all__ = ["render", "RenderResult", "RenderProgress", "ChunkStatus", "probe_shot", "Shot"]

_MANIFEST_EVERY = 5.0  # seconds between manifest rewrites while rendering
_NO_RETRY = (InvalidOptionError, InvalidInputError, InputNotFoundError, ModelError, OutputExistsError)


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


@dataclass(frozen=True)
class Shot:
    """What the input offers for the job (see :func:`probe_shot`)."""

    numbers: list[int]
    kind: str
    width: int
    height: int
    bit_depth: int
    fps: Fraction | None
    timecode: str | None
    has_audio: bool


# --------------------------------------------------------------------------------------- probing
def _exr_header(path: Path) -> dict[str, Any]:
    try:
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            return dict(f.header())
    except Exception:  # noqa: BLE001 - no timing in the header is fine
        return {}


def _timecode_text(tc: Any) -> str | None:
    try:
        sep = ";" if getattr(tc, "dropFrame", False) else ":"
        return f"{tc.hours:02d}:{tc.minutes:02d}:{tc.seconds:02d}{sep}{tc.frame:02d}"
    except AttributeError:
        return None


def probe_shot(job: RenderJob) -> Shot:
    """Frame numbers, size, depth, rate and timecode of the job's input selection."""
    from vidstyle.io import list_sequence, open_source
    from vidstyle.io.images import is_image_spec

    frames = job.frames
    with open_source(job.input, frames=frames, fps=job.fps) as src:
        info = src.info
    fps = job.fps or info.fps
    timecode = job.timecode or info.timecode
    if info.kind == "images" and is_image_spec(job.input):
        entries = list_sequence(job.input)
        nums = [n if n is not None else i for i, (n, _) in enumerate(entries)]
        if frames is not None:
            nums = [n for n in nums if frames[0] <= n <= frames[1]]
        first_path = dict((n if n is not None else i, p) for i, (n, p) in enumerate(entries)).get(nums[0])
        if first_path is not None and first_path.suffix.lower() == ".exr":
            header = _exr_header(first_path)
            if job.fps is None and isinstance(header.get("framesPerSecond"), Fraction):
                fps = header["framesPerSecond"]
            if timecode is None and header.get("timeCode") is not None:
                timecode = _timecode_text(header["timeCode"])
        numbers = nums
    else:
        count = info.frame_count
        if count is None:
            raise InvalidInputError(
                f"cannot tell how many frames '{job.input}' has; give frames = \"FIRST-LAST\" in the job"
            )
        first = frames[0] if frames is not None else 0
        numbers = list(range(first, first + count))
    if not numbers:
        raise InvalidInputError(f"no frames of '{job.input}' are selected; check 'frames'")
    return Shot(
        numbers=numbers,
        kind=info.kind,
        width=info.width,
        height=info.height,
        bit_depth=info.bit_depth,
        fps=Fraction(fps) if fps else None,
        timecode=timecode,
        has_audio=bool(info.audio_streams),
    )


def _layout(job: RenderJob, shot: Shot) -> RenderLayout:
    from vidstyle.io.imagefiles import default_bit_depth, parse_pattern
    from vidstyle.io.output import image_output_pattern

    manifest = Path(job.manifest) if job.manifest else manifest_path_for(job.output)
    work = manifest.with_name("." + manifest.name.removesuffix(".manifest.json") + ".render")
    if job.output_kind == "images":
        pattern = image_output_pattern(job.output, bit_depth=job.bit_depth)
        ext = Path("x" + pattern.suffix).suffix.lower()
        depth = job.bit_depth or default_bit_depth(ext, shot.bit_depth)
        frames = str(pattern)
        final = True
    else:
        depth = job.bit_depth or (16 if shot.bit_depth > 8 else 8)
        ext = ".png"
        frames = str(work / "frames" / "%09d.png")
        final = False
    dtype = "float32" if ext == ".exr" or depth == 32 else ("uint16" if depth == 16 else "uint8")
    assert parse_pattern(frames) is not None
    return RenderLayout(
        manifest=str(manifest),
        work=str(work),
        frames=frames,
        frames_final=final,
        bit_depth=int(depth),
        work_dtype=dtype,
        shot_first=shot.numbers[0],
        start_number=job.start_number,
        timecode=shot.timecode,
        fps=str(shot.fps) if shot.fps else None,
    )


def default_codec(output: str) -> str:
    """Mezzanine defaults: ProRes 422 HQ in .mov, FFV1 in .mkv, H.264 elsewhere."""
    ext = Path(output).suffix.lower()
    return {".mov": "prores", ".mkv": "ffv1"}.get(ext, "h264")


def _check_encoder(job: RenderJob, layout: RenderLayout) -> None:
    from vidstyle.io.encode import resolve_encoder
    from vidstyle.io.output import VIDEO_EXTS

    fmt = VIDEO_EXTS[Path(job.output).suffix.lower()]
    resolve_encoder(codec=job.codec or default_codec(job.output), container_format=fmt, crf=job.crf,
                    pix_fmt=job.pix_fmt, preset=job.preset, bit_depth=layout.bit_depth)


def _model_record(job: RenderJob) -> dict[str, Any]:
    if job.backend == "feedforward":
        from vidstyle.api import _resolve_model
        from vidstyle.nets.registry import load_model

        model = load_model(_resolve_model(job.model))
        path = Path(model.metadata.get("path", ""))
        return {
            "name": model.name,
            "path": str(path),
            "sha256": file_sha256(path) if path.is_file() else None,
            "architecture": model.architecture,
        }
    styles = []
    for s in job.style or ():
        p = Path(s)
        if not p.is_file():
            raise InputNotFoundError(f"style image '{s}' does not exist; check key 'style'")
        styles.append({"path": str(p), "sha256": file_sha256(p)})
    rec: dict[str, Any] = {"styles": styles}
    vgg = job.extra.get("vgg")
    if isinstance(vgg, str) and Path(vgg).is_file():
        rec["vgg"] = {"path": vgg, "sha256": file_sha256(Path(vgg))}
    return rec


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------- driver
class _Render:
    def __init__(
        self,
        job: RenderJob,
        *,
        resume: bool,
        progress: Callable[[RenderProgress], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.job = job
        self.resume = resume
        self.progress_cb = progress
        self.stop = stop
        self.t0 = time.perf_counter()
        self.warnings: list[str] = []
        from vidstyle.render.chunk import testing_hooks

        self.hooks = testing_hooks()

    # -------------------------------------------------------------------------- set-up
    def prepare(self) -> None:
        from vidstyle import __version__
        from vidstyle.io import check_output
        from vidstyle.render.determinism import environment_info

        job = self.job
        self.shot = shot = probe_shot(job)
        self.layout = layout = _layout(job, shot)
        if job.output_kind == "video":
            _check_encoder(job, layout)
        manifest_path = Path(layout.manifest)
        self.model = _model_record(job)
        self.executor = "ray" if job.ray else "local"
        self.threads, self.workers = self._resources()
        if self.resume:
            if not manifest_path.is_file():
                raise InputNotFoundError(
                    f"no manifest at '{manifest_path}' to resume from; start the render without --resume"
                )
            self.manifest = read_manifest(manifest_path)
            self._check_same_job()
            self.chunks = [Chunk.from_dict(c) for c in self.manifest["chunks"]]
            self.numbers = list(self.manifest["shot"]["numbers"])
            if self.numbers != shot.numbers:
                raise InvalidInputError(
                    f"the input frames changed since the render started ({len(self.numbers)} then, "
                    f"{len(shot.numbers)} now); render again with --overwrite"
                )
            for c in self.manifest["chunks"]:
                c["status"] = "pending" if c.get("status") != "done" else "done"
        else:
            exists = manifest_path.exists() or Path(layout.work).exists()
            if exists and not job.overwrite:
                raise OutputExistsError(
                    f"a render of '{job.output}' exists ('{manifest_path}'); pass --resume to continue it "
                    "or --overwrite to start again"
                )
            if job.overwrite:
                shutil.rmtree(layout.work, ignore_errors=True)
                manifest_path.unlink(missing_ok=True)
            check_output(job.output, input_spec=job.input, overwrite=job.overwrite)
            self.numbers = shot.numbers
            n_chunks = 1
            if job.chunk_frames is None and self.executor == "ray":
                n_chunks = self.workers
            self.chunks = plan_chunks(
                self.numbers,
                chunk_frames=job.chunk_frames,
                chunks=n_chunks,
                overlap=job.overlap,
                crossfade=job.crossfade,
            )
            self.manifest = {
                "format": MANIFEST_FORMAT,
                "vidstyle_version": __version__,
                "status": "running",
                "created": _now(),
                "updated": _now(),
                "job_file": job.job_file,
                "parameters": job.parameters(),
                "parameter_sources": dict(job.given),
                "command": job.command(),
                "model": self.model,
                "shot": {
                    "input": job.input,
                    "kind": shot.kind,
                    "width": shot.width,
                    "height": shot.height,
                    "bit_depth": shot.bit_depth,
                    "fps": str(shot.fps) if shot.fps else None,
                    "timecode": shot.timecode,
                    "first": self.numbers[0],
                    "last": self.numbers[-1],
                    "count": len(self.numbers),
                    "numbers": self.numbers,
                },
                "output": {
                    "path": job.output,
                    "kind": job.output_kind,
                    "frames": layout.frames if layout.frames_final else None,
                    "bit_depth": layout.bit_depth,
                    "dtype": layout.work_dtype,
                    "codec": (job.codec or default_codec(job.output)) if job.output_kind == "video" else None,
                    "sha256": None,
                },
                "layout": layout.to_dict(),
                "chunks": [{**c.to_dict(), "status": "pending", "attempts": 0, "host": None, "seconds": 0.0}
                           for c in self.chunks],
                "runs": [],
                "frames": [],
                "summary": {},
            }
        self.already_complete = False
        if self.resume and not Path(layout.work).exists():
            self.already_complete = self._seed_journals()
        Path(layout.work).mkdir(parents=True, exist_ok=True)
        self.manifest.setdefault("environments", [])
        self.run_record: dict[str, Any] = {
            "started": _now(),
            "resume": self.resume,
            "executor": self.executor,
            "address": self.job.ray,
            "workers": self.workers,
            "threads": self.threads,
            "status": "running",
            "host": __import__("platform").node(),
        }
        self.manifest["runs"].append(self.run_record)
        self.manifest["environment"] = environment_info()
        self.manifest["determinism"] = {
            "seed": job.seed,
            "torch_threads_per_worker": self.threads,
            "deterministic_algorithms": True,
            "cudnn_deterministic": True,
            "cudnn_benchmark": False,
            "batch_size": job.batch_size,
            "note": "bit-identical on the same machine with the same threads; see vidstyle.render.determinism",
        }
        self.pos = {n: i for i, n in enumerate(self.numbers)}
        self.driver_journal = Journal(layout.journal_path("driver"))
        self.chunk_state: dict[int, str] = {c.id: "pending" for c in self.chunks}
        self.attempts: dict[int, int] = {c["id"]: int(c.get("attempts", 0)) for c in self.manifest["chunks"]}
        self.done_before = self._count_done()
        self.done_run = 0
        self.failures: list[str] = []
        self._last_manifest = 0.0
        if not self.already_complete:
            self.write_manifest()

    def _seed_journals(self) -> bool:
        """The work folder is gone (the render completed, or it was deleted): rebuild the journals
        from the manifest's records of frames whose files are still there. Returns whether the
        render is complete as it stands."""
        layout = self.layout
        if self.manifest.get("status") == "complete":
            if not layout.frames_final:
                return Path(self.job.output).is_file()
            if all(layout.frame_path(n).is_file() for n in self.numbers):
                return True
        if not layout.frames_final:
            return False  # the lossless frames of a video output went with the work folder
        Path(layout.work).mkdir(parents=True, exist_ok=True)
        owner = {}
        for c in self.chunks:
            for n in self.numbers[self.numbers.index(c.first) : self.numbers.index(c.last) + 1]:
                owner[n] = c.id
        journals = {c.id: Journal(layout.journal_path(c.id)) for c in self.chunks}
        driver = Journal(layout.journal_path("driver"))
        try:
            for f in self.manifest.get("frames", []):
                n = int(f["number"])
                if f.get("status") != "done" or not layout.frame_path(n).is_file():
                    continue
                journals[owner[n]].append({"e": "frame", "n": n, "chunk": owner[n], "attempt": f.get("attempt"),
                                           "file": f.get("file"), "sha256": f.get("sha256"),
                                           "pixels_sha256": f.get("pixels_sha256"), "seconds": f.get("seconds")})
                if "crossfade" in f:
                    driver.append({"e": "xfade", "n": n, "sha256": f.get("sha256"),
                                   "pixels_sha256": f.get("pixels_sha256"), "crossfade": f["crossfade"]})
        finally:
            for j in journals.values():
                j.close()
            driver.close()
        return False

    def _resources(self) -> tuple[int, int]:
        from vidstyle.runtime import default_threads

        job = self.job
        cpus = default_threads()
        if self.executor == "local":
            return (job.threads or cpus), 1
        workers = job.workers
        threads = job.threads
        if workers is None and threads is None:
            threads = 1
        if threads is None:
            threads = max(1, cpus // max(1, workers or 1)) if job.ray == "local" else 1
        if workers is None:
            workers = max(1, cpus // threads) if job.ray == "local" else 0  # 0: ask the cluster
        return threads, workers

    def _check_same_job(self) -> None:
        old = self.manifest.get("parameters", {})
        new = self.job.parameters()
        from vidstyle.render.job import KEYS

        for key in sorted(set(old) | set(new)):
            spec = KEYS.get(key)
            if spec is not None and not spec.affects_output:
                continue
            if old.get(key) != new.get(key):
                raise InvalidOptionError(
                    f"--resume: key '{key}' is {old.get(key)!r} in the manifest but {new.get(key)!r} now; resume "
                    "with the same value, or start again with --overwrite"
                )
        if self.manifest.get("model", {}).get("sha256") != self.model.get("sha256") or (
            self.manifest.get("model", {}).get("styles") != self.model.get("styles")
        ):
            raise InvalidOptionError(
                "--resume: the model file changed since the render started (different SHA-256); "
                "restore it, or start again with --overwrite"
            )

    # -------------------------------------------------------------------------- bookkeeping
    def _journal_frames(self) -> dict[int, dict[str, Any]]:
        """Latest frame record of every shot frame, from the chunk journals (and cross-fades)."""
        frames: dict[int, dict[str, Any]] = {}
        for c in self.chunks:
            for rec in read_journal(self.layout.journal_path(c.id)):
                if rec.get("e") == "frame" and c.first <= int(rec["n"]) <= c.last:
                    frames[int(rec["n"])] = rec
        for rec in read_journal(self.layout.journal_path("driver")):
            if rec.get("e") == "xfade" and int(rec["n"]) in frames:
                frames[int(rec["n"])] = {**frames[int(rec["n"])], "sha256": rec["sha256"],
                                         "pixels_sha256": rec["pixels_sha256"], "crossfade": rec["crossfade"]}
        return frames

    def _count_done(self) -> int:
        return len(self._journal_frames())

    def _starts(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for c in self.chunks:
            for rec in read_journal(self.layout.journal_path(c.id)):
                if rec.get("e") == "start":
                    out[c.id] = rec
        return out

    def write_manifest(self) -> None:
        frames = self._journal_frames()
        owner = {}
        for c in self.chunks:
            for n in self.numbers[self.pos[c.first] : self.pos[c.last] + 1]:
                owner[n] = c.id
        records = []
        for i, n in enumerate(self.numbers):
            rec = frames.get(n)
            entry: dict[str, Any] = {"number": n, "chunk": owner[n]}
            if self.layout.frames_final:
                entry["file"] = self.layout.frame_path(n).name
            else:
                entry["video_index"] = i
            if rec is None:
                entry["status"] = "pending"
            else:
                entry.update(status="done", attempt=rec.get("attempt"), sha256=rec.get("sha256"),
                             pixels_sha256=rec.get("pixels_sha256"), seconds=rec.get("seconds"))
                if "crossfade" in rec:
                    entry["crossfade"] = rec["crossfade"]
            records.append(entry)
        self.manifest["frames"] = records
        starts = self._starts()
        for c in self.manifest["chunks"]:
            c["attempts"] = self.attempts.get(c["id"], 0)
            c["status"] = self.chunk_state.get(c["id"], c.get("status", "pending"))
            if c["id"] in starts:
                s = starts[c["id"]]
                c["host"] = s.get("host")
                c["last_start"] = {k: s.get(k) for k in ("attempt", "from", "read_from", "state", "threads", "device", "pid")}
        done = sum(1 for r in records if r["status"] == "done")
        elapsed = time.perf_counter() - self.t0
        self.manifest["summary"] = {
            "frames_total": len(self.numbers),
            "frames_done": done,
            "frames_this_run": self.done_run,
            "seconds_this_run": round(elapsed, 2),
            "fps_this_run": round(self.done_run / elapsed, 3) if elapsed > 0 else 0.0,
            "failures": list(self.failures),
        }
        self.manifest["updated"] = _now()
        self.run_record["frames"] = self.done_run
        self.run_record["seconds"] = round(elapsed, 2)
        write_json_atomic(self.layout.manifest, self.manifest)
        self._last_manifest = time.perf_counter()

    def report(self, *, phase: str = "render", done_by_chunk: dict[int, int] | None = None, force: bool = False) -> None:
        now = time.perf_counter()
        if now - self._last_manifest > _MANIFEST_EVERY:
            self.write_manifest()
        if self.progress_cb is None:
            return
        elapsed = now - self.t0
        done = min(len(self.numbers), self.done_before + self.done_run)
        fps = self.done_run / elapsed if elapsed > 0 else 0.0
        left = len(self.numbers) - done
        eta = left / fps if fps > 0 else None
        chunks = []
        for c in self.chunks:
            d = (done_by_chunk or {}).get(c.id, self._chunk_done.get(c.id, 0))
            chunks.append(ChunkStatus(id=c.id, first=c.first, last=c.last, done=d, frames=c.frames,
                                      state=self.chunk_state[c.id], attempts=self.attempts.get(c.id, 0)))
        self.progress_cb(RenderProgress(done=done, total=len(self.numbers), elapsed=elapsed, fps=fps, eta=eta,
                                        chunks=tuple(chunks), phase=phase))

    # -------------------------------------------------------------------------- running
    def next_crossfade(self, chunk: Chunk) -> int | None:
        if chunk.id + 1 < len(self.chunks):
            return self.chunks[chunk.id + 1].crossfade_from
        return None

    def run(self) -> RenderResult:
        if self.already_complete:
            self.run_record.update(status="complete", ended=_now(), frames=0)
            self.driver_journal.close()
            shutil.rmtree(self.layout.work, ignore_errors=True)
            write_json_atomic(self.layout.manifest, self.manifest)
            return RenderResult(output=Path(self.job.output), manifest=Path(self.layout.manifest),
                                frames=len(self.numbers), frames_rendered=0, seconds=time.perf_counter() - self.t0,
                                fps=0.0, chunks=len(self.chunks), resumed=True)
        self._xfaded = {int(r["n"]) for r in read_journal(self.layout.journal_path("driver")) if r.get("e") == "xfade"}
        frames = self._journal_frames()
        self._chunk_done = {c.id: sum(1 for n in frames if c.first <= n <= c.last) for c in self.chunks}
        for c in self.chunks:
            if self._chunk_done[c.id] == c.frames and self._heads_complete(c):
                self.chunk_state[c.id] = "done"
        status = "complete"
        try:
            if self.executor == "ray":
                from vidstyle.render.ray_executor import run_on_ray

                run_on_ray(self)
            else:
                self._run_local()
            if self.failures:
                status = "failed"
            else:
                self._crossfade()
                if self.job.output_kind == "video":
                    self._encode_video()
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            self.run_record["status"] = status
            self.run_record["ended"] = _now()
            self.manifest["status"] = status
            self.driver_journal.close()
            self.write_manifest()
            if status == "complete":
                self._clean_up()
        seconds = time.perf_counter() - self.t0
        return RenderResult(
            output=Path(self.job.output),
            manifest=Path(self.layout.manifest),
            frames=len(self.numbers),
            frames_rendered=self.done_run,
            seconds=seconds,
            fps=self.done_run / seconds if seconds > 0 else 0.0,
            chunks=len(self.chunks),
            failures=list(self.failures),
            resumed=self.resume,
            warnings=self.warnings,
        )

    def _heads_complete(self, c: Chunk) -> bool:
        if c.crossfade_from is None:
            return True
        need = self.numbers[self.pos[c.crossfade_from] : self.pos[c.first]]
        return all(self.layout.xfade_path("head", n, c.id).is_file() or self._xfade_done(n) for n in need)

    def _xfade_done(self, n: int) -> bool:
        return n in self._xfaded

    def _run_local(self) -> None:
        from vidstyle.render.chunk import render_chunk

        for c in self.chunks:
            if self.chunk_state[c.id] == "done":
                continue
            while True:
                self.attempts[c.id] = self.attempts.get(c.id, 0) + 1
                self.chunk_state[c.id] = "running"
                self.write_manifest()

                def on_frame(n: int, cid: int = c.id) -> None:
                    self.done_run += 1
                    self._chunk_done[cid] = self._chunk_done.get(cid, 0) + 1
                    self.report()

                try:
                    result = render_chunk(
                        self.job, c, layout=self.layout, numbers=self.numbers,
                        next_crossfade_from=self.next_crossfade(c), attempt=self.attempts[c.id],
                        threads=self.threads, on_frame=on_frame, stop=self.stop, hooks=self.hooks,
                    )
                except KeyboardInterrupt:
                    self.chunk_state[c.id] = "interrupted"
                    raise
                except _NO_RETRY:
                    self.chunk_state[c.id] = "failed"
                    raise
                except Exception as e:  # noqa: BLE001 - retried, then reported
                    if self.attempts[c.id] <= self.job.retries:
                        self.chunk_state[c.id] = "retrying"
                        self.warnings.append(f"chunk {c.id} failed ({_one_line(e)}); retrying")
                        self._recount(c)
                        continue
                    self.chunk_state[c.id] = "failed"
                    self.failures.append(f"chunk {c.id} (frames {c.first}-{c.last}): {_one_line(e)}")
                    break
                self.warnings.extend(result.warnings)
                if self.stop is not None and self.stop.is_set():
                    self.chunk_state[c.id] = "stopped"
                    raise KeyboardInterrupt
                self.chunk_state[c.id] = "done"
                break
            self.write_manifest()

    def _recount(self, c: Chunk) -> None:
        frames = self._journal_frames()
        self._chunk_done[c.id] = sum(1 for n in frames if c.first <= n <= c.last)

    # -------------------------------------------------------------------------- after the chunks
    def _crossfade(self) -> None:
        from vidstyle.render.chunk import write_frame

        done = self._xfaded
        for c in self.chunks:
            if c.crossfade_from is None:
                continue
            zone = self.numbers[self.pos[c.crossfade_from] : self.pos[c.first]]
            weights = crossfade_weights(len(zone))
            for n, alpha in zip(zone, weights):
                if n in done:
                    continue
                tail_path = self.layout.xfade_path("tail", n, c.id - 1)
                head_path = self.layout.xfade_path("head", n, c.id)
                if not (tail_path.is_file() and head_path.is_file()):
                    raise OutputError(
                        f"cross-fade data of frame {n} is missing from '{self.layout.work}'; render again with --overwrite"
                    )
                a = np.load(tail_path)
                b = np.load(head_path)
                blend = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
                if a.dtype.kind == "u":
                    blend = np.clip(np.rint(blend), 0, np.iinfo(a.dtype).max)
                out = np.ascontiguousarray(blend.astype(a.dtype))
                path = self.layout.frame_path(n)
                pix = write_frame(path, out, layout=self.layout, number=n)
                self.driver_journal.append({"e": "xfade", "n": n, "sha256": file_sha256(path), "pixels_sha256": pix,
                                            "crossfade": {"with_chunk": c.id, "weight": round(alpha, 6)}})
                done.add(n)
                self.report(phase="crossfade")

    def _encode_video(self) -> None:
        from vidstyle.frame import Frame
        from vidstyle.io import SourceInfo
        from vidstyle.io.encode import VideoSink
        from vidstyle.render.chunk import read_frame

        job, shot = self.job, self.shot
        fps = shot.fps or Fraction(24)
        start_time = 0.0
        audio_from = None
        if shot.kind == "video":
            with __import__("vidstyle.io", fromlist=["open_source"]).open_source(
                job.input, frames=(self.numbers[0], self.numbers[-1])
            ) as src:
                start_time = src.info.start_time
            audio_from = job.input if shot.has_audio else None
        info = SourceInfo(
            kind=shot.kind, path=job.input, width=shot.width, height=shot.height, fps=fps, time_base=1 / fps,
            frame_count=len(self.numbers), duration=len(self.numbers) / float(fps), bit_depth=self.layout.bit_depth,
            rotation=0, audio_streams=1 if audio_from else 0, start_time=start_time, first_number=self.numbers[0],
            timecode=shot.timecode,
        )
        sink = VideoSink(job.output, info=info, codec=job.codec or default_codec(job.output), crf=job.crf,
                         pix_fmt=job.pix_fmt, preset=job.preset, bit_depth=self.layout.bit_depth,
                         audio_from=audio_from, overwrite=True)
        try:
            for i, n in enumerate(self.numbers):
                image = read_frame(self.layout.frame_path(n), layout=self.layout)
                sink.write(Frame(index=i, image=image, number=n))
                if i % 8 == 0:
                    self.report(phase="encode")
        except BaseException:
            sink.abort()
            Path(sink.temp_path).unlink(missing_ok=True)
            raise
        path = sink.close()
        self.warnings.extend(sink.warnings)
        self.manifest["output"]["sha256"] = file_sha256(path)
        self.manifest["output"]["encoder"] = {"codec": sink.settings.codec, "encoder": sink.settings.encoder,
                                              "pix_fmt": sink.settings.pix_fmt, "options": dict(sink.settings.options)}
        self.manifest["output"]["timecode"] = shot.timecode
        self.manifest["output"]["fps"] = str(fps)

    def _clean_up(self) -> None:
        work = Path(self.layout.work)
        if self.job.output_kind == "video" and self.job.keep_frames:
            for sub in ("state", "xfade"):
                shutil.rmtree(work / sub, ignore_errors=True)
            return
        shutil.rmtree(work, ignore_errors=True)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def render(
    job: RenderJob,
    *,
    resume: bool = False,
    progress: Callable[[RenderProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> RenderResult:
    """Render a shot.

    Args:
        job: a validated job (:func:`~vidstyle.render.load_job`).
        resume: continue the render recorded in the manifest (same job), keeping its finished frames.
        progress: called with a :class:`RenderProgress` as frames finish (and about twice a second under Ray).
        stop: set it to end the render early and cleanly (resumable).

    Returns:
        :class:`RenderResult`; ``failures`` lists chunks that failed after their retries (their frames
        are missing; ``--resume`` renders them).

    Raises:
        VidstyleError: a bad job, input, model or output (nothing rendered), one line with a remedy.
        KeyboardInterrupt: after the finished frames and the manifest are saved (resumable).
    """
    r = _Render(job, resume=resume, progress=progress, stop=stop)
    r.prepare()
    return r.run()
