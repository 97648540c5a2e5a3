"""Rendering one chunk of a shot (in the driver's process, or in a Ray worker).

:func:`render_chunk` renders the frames ``chunk.first … chunk.last`` into the frame store of the
render (the output pattern, or the lossless frames of a video output), starting
``chunk.warmup`` frames early, and continuing from the chunk's journal when part of it was done
already (resume, retry): the last finished frame is the *primer* whose temporal state is
restored (:mod:`vidstyle.render.state`).

Each finished frame: the image is written under a temporary name and renamed; then a line goes
to the chunk's journal; then the state side-car is replaced. A kill at any point loses at most the
frame in progress.

The executors (:mod:`vidstyle.render.executor`) call :func:`render_chunk`, or a function with its
signature that a caller gives them (tests wrap it to fail once or to slow the frames down).
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.colour.management import ColourManagement
from vidstyle.colour.spaces import SRGB
from vidstyle.colour.stages import ToNetworkStage, restore_output
from vidstyle.errors import InvalidInputError, OutputError, ShapeError
from vidstyle.frame import Frame
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import Journal, RenderLayout, file_sha256, pixels_sha256, read_journal
from vidstyle.render.plan import Chunk
from vidstyle.render.shot import colour_management
from vidstyle.render.state import (
    PRIMER_KEY,
    STATE_KEY,
    StatefulStage,
    has_state,
    load_state,
    replays,
    save_state,
    state_from_output,
)

__all__ = [
    "render_chunk",
    "ChunkResult",
    "chunk_progress",
    "write_frame",
    "read_frame",
    "build_render_stages",
]


@dataclass
class ChunkResult:
    """What :func:`render_chunk` did."""

    chunk: int
    frames: int
    seconds: float
    resumed_from: int | None
    state_from: str
    host: str
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------- frames
def _dtype_of(layout: RenderLayout) -> np.dtype:
    return np.dtype(layout.work_dtype)


def write_frame(path: Path, image: np.ndarray, *, layout: RenderLayout, number: int) -> str:
    """Write ``image`` to ``path`` through a temporary name; returns the pixel hash of what the
    file holds. EXR frames get the output colour space (``chromaticities``, ``colorInteropID``,
    ``oiio:ColorSpace``) and ``timeCode`` and ``framesPerSecond`` attributes when known."""
    from vidstyle.io import temp_path_for, write_image
    from vidstyle.io.imagefiles import convert_depth

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    ext = path.suffix.lower()
    try:
        if ext == ".exr":
            stored = _write_exr(tmp, image, layout=layout, number=number)
        else:
            write_image(tmp, image, bit_depth=layout.bit_depth)
            stored = convert_depth(image, layout.bit_depth)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write '{path}' ({e.strerror or e}); check the disk space and permissions") from None
    return pixels_sha256(stored)


def _write_exr(path: Path, image: np.ndarray, *, layout: RenderLayout, number: int) -> np.ndarray:
    import OpenEXR

    from vidstyle.io.imagefiles import convert_depth

    pixels = convert_depth(image, 32)
    pixels = np.ascontiguousarray(pixels.astype(np.float16) if layout.bit_depth == 16 else pixels)
    header: dict[str, Any] = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    header.update((layout.colour or SRGB).exr_attributes())
    from fractions import Fraction

    fps = Fraction(layout.fps) if layout.fps else None
    if fps is not None:
        header["framesPerSecond"] = fps
    if layout.timecode:
        from vidstyle.io.video import offset_timecode

        tc = offset_timecode(layout.timecode, number - layout.shot_first, fps)
        if tc:
            hh, mm, ss, ff = (int(x) for x in tc.replace(";", ":").split(":"))
            t = OpenEXR.TimeCode()
            t.hours, t.minutes, t.seconds, t.frame = hh, mm, ss, ff
            t.dropFrame = ";" in tc
            header["timeCode"] = t
    OpenEXR.File(header, {"RGB": pixels}).write(str(path))
    return pixels


def read_frame(path: Path, *, layout: RenderLayout) -> np.ndarray:
    """Read a written frame back in the render's working dtype."""
    from vidstyle.io import read_image
    from vidstyle.io.imagefiles import convert_depth

    image = read_image(path)
    return convert_depth(image, {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(_dtype_of(layout), 32))


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------- progress
def chunk_progress(layout: RenderLayout, chunk: Chunk) -> tuple[list[int], set[int]]:
    """``(done, heads)``: finished frames of ``chunk`` in order (the prefix of the chunk that is
    complete and still on disk) and the warm-up frames whose cross-fade copy was saved."""
    done: dict[int, dict[str, Any]] = {}
    heads: set[int] = set()
    for rec in read_journal(layout.journal_path(chunk.id)):
        kind = rec.get("e")
        if kind == "frame":
            done[int(rec["n"])] = rec
        elif kind == "head":
            heads.add(int(rec["n"]))
    prefix: list[int] = []
    for n in sorted(done):
        if n < chunk.first or n > chunk.last:
            continue
        if not layout.frame_path(n).is_file():
            break
        prefix.append(n)
    # the prefix must be contiguous in the chunk's own frames; the caller checks against numbers
    heads = {n for n in heads if layout.xfade_path("head", n, chunk.id).is_file()}
    return prefix, heads


# --------------------------------------------------------------------------------------- stages
class _DepthStage:
    """Converts input frames to the render's working dtype (so a 16-bit or float output is
    stylized at that precision, never through 8 bits)."""

    name = "depth"

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(self.dtype, 32)

    def process(self, frame: Frame) -> list[Frame]:
        from vidstyle.io.imagefiles import convert_depth

        if frame.image.dtype != self.dtype:
            frame.image = np.ascontiguousarray(convert_depth(frame.image, self.bits))
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        return None


def build_render_stages(job: RenderJob, *, threads: int, work: str | None = None) -> list[Any]:
    """The job's stage graph, from the one composition root (:func:`vidstyle.api.build_stages`):
    every stylizing option of the job (precision included) reaches the stages; the stage that
    keeps the temporal state is last, or last but one before the compositing stage of a masked job.
    A keyframe job (``keys``) applies the network trained into the render's ``work`` folder
    (:func:`vidstyle.keyframes.render.keyframe_render_stages`)."""
    import dataclasses

    from vidstyle.api import build_stages

    if job.uses_keyframes:
        from vidstyle.keyframes.render import keyframe_render_stages

        return keyframe_render_stages(job, threads=threads, work=work or ".")

    return build_stages(stylize=dataclasses.replace(job.stylize, threads=threads), temporal=job.temporal,
                        optim=job.optim)


# --------------------------------------------------------------------------------------- sink
class _ChunkSink:
    """Writes a chunk's frames, cross-fade copies, journal lines and state side-cars."""

    def __init__(
        self,
        *,
        layout: RenderLayout,
        chunk: Chunk,
        journal: Journal,
        write_from: int,
        tail_from: int | None,
        heads_done: set[int],
        attempt: int,
        on_frame: Callable[[int], None] | None,
        colour: ColourManagement | None = None,
    ) -> None:
        self.layout = layout
        self.colour = colour
        self.chunk = chunk
        self.journal = journal
        self.write_from = write_from
        self.tail_from = tail_from
        self.heads_done = heads_done
        self.attempt = attempt
        self.on_frame = on_frame
        self.frames_written = 0
        self.warnings: list[str] = []
        self._t = time.perf_counter()

    def write(self, frame: Frame) -> None:
        if frame.extra.get(PRIMER_KEY):
            return
        n = frame.number if frame.number is not None else frame.index
        image = frame.stylized if frame.stylized is not None else frame.image
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ShapeError(f"frame {n}: the stylizer returned {getattr(image, 'shape', type(image).__name__)}, not H×W×3")
        chunk = self.chunk
        if self.colour is not None and n >= min(chunk.crossfade_from or chunk.first, self.write_from):
            image = restore_output(frame, image, self.colour)  # to the output space, highlights restored
        if n < chunk.first:  # warm-up
            if chunk.crossfade_from is not None and n >= chunk.crossfade_from and n not in self.heads_done:
                _save_npy(self.layout.xfade_path("head", n, chunk.id), image)
                self.journal.append({"e": "head", "n": n, "chunk": chunk.id})
                self.heads_done.add(n)
            return
        if n < self.write_from:  # re-rendered only to rebuild the temporal state
            return
        if n > chunk.last:  # read past the chunk only for what it carries back (a keyframe job's next keyframe)
            return
        if self.tail_from is not None and n >= self.tail_from:
            _save_npy(self.layout.xfade_path("tail", n, chunk.id), image)
        path = self.layout.frame_path(n)
        pix = write_frame(path, image, layout=self.layout, number=n)
        now = time.perf_counter()
        self.journal.append(
            {
                "e": "frame",
                "n": n,
                "chunk": chunk.id,
                "attempt": self.attempt,
                "file": path.name,
                "sha256": file_sha256(path),
                "pixels_sha256": pix,
                "seconds": round(now - self._t, 4),
            }
        )
        self._t = now
        state = frame.extra.get(STATE_KEY)
        if state is not None:
            save_state(self.layout.state_path(chunk.id), state, number=n, chunk=chunk.id)
        frame.extra.pop(STATE_KEY, None)
        self.frames_written += 1
        if self.on_frame is not None:
            self.on_frame(n)

    def close(self) -> Path:
        return Path(self.layout.frames)

    def abort(self) -> Path | None:
        return Path(self.layout.frames) if self.frames_written else None


# --------------------------------------------------------------------------------------- chunk
def render_chunk(
    job: RenderJob,
    chunk: Chunk,
    *,
    layout: RenderLayout,
    numbers: list[int],
    next_crossfade_from: int | None,
    attempt: int = 1,
    threads: int,
    on_frame: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> ChunkResult:
    """Render (the rest of) one chunk; see the module docstring.

    Args:
        job: the render job.
        chunk: which chunk.
        layout: the render's paths and formats.
        numbers: the shot's frame numbers (to find the frame before a resume point).
        next_crossfade_from: the next chunk's ``crossfade_from`` (this chunk keeps a copy of its
            frames from there on for the cross-fade), ``None`` when there is none.
        attempt: 1 for the first run of the chunk, then 2, 3… for retries and resumes.
        threads: torch threads.
        on_frame: called with each finished frame number.
        stop: set to end the chunk early and cleanly (finished frames are kept).
    """
    from vidstyle.io import open_source
    from vidstyle.pipeline import run_pipeline
    from vidstyle.render.determinism import apply_determinism

    t0 = time.perf_counter()
    host = platform.node()
    apply_determinism(seed=job.seed, threads=threads, device=job.device)
    pos = {n: i for i, n in enumerate(numbers)}
    own = numbers[pos[chunk.first] : pos[chunk.last] + 1]
    done, heads = chunk_progress(layout, chunk)
    # the finished prefix must be the chunk's first frames, contiguous
    k = 0
    while k < len(done) and k < len(own) and done[k] == own[k]:
        k += 1
    done = own[:k]
    if k == len(own):
        return ChunkResult(chunk=chunk.id, frames=0, seconds=0.0, resumed_from=None, state_from="complete", host=host)

    management = colour_management(job)
    colour_in = [ToNetworkStage(management)] if management is not None else []
    stages = build_render_stages(job, threads=threads, work=layout.work)
    # a masked render ends with the compositing stage; the stage with the temporal state is the one before
    tail = stages[-1:] if getattr(stages[-1], "name", None) == "mask" else []
    stages = stages[: len(stages) - len(tail)]
    stylize = stages[-1]
    primer: tuple[int, dict[str, Any]] | None = None
    state_from = "cold"
    if not done:
        read_from = chunk.warmup_from
        write_from = chunk.first
    else:
        last = done[-1]
        write_from = own[k]
        saved = load_state(layout.state_path(chunk.id))
        if has_state(stylize) and saved is not None and saved[1] == chunk.id and chunk.first <= saved[0] <= last:
            number, _, state = saved
            primer = (number, state)
            write_from = numbers[pos[number] + 1]
            state_from = "sidecar"
        elif has_state(stylize) and management is None and not tail:
            # a colour-managed frame is not in the network's space; a composited one is not the stylizer's state
            image = read_frame(layout.frame_path(last), layout=layout)
            rebuilt = state_from_output(stylize, image)
            if rebuilt is not None:
                primer = (last, rebuilt)
                state_from = "output"
        if primer is not None:
            read_from = primer[0]
        elif replays(stylize):  # its state is rebuilt by the same frames: replay the chunk from its start (exact)
            state_from = "replay"
            read_from = chunk.warmup_from
        else:  # no exportable state: warm up again like at a chunk border
            state_from = "warmup"
            back = pos[write_from] - job.overlap
            if chunk.warmup_from in pos:
                read_from = numbers[max(back, pos[chunk.warmup_from])]
            else:  # the first chunk of a sub-range warms up on the input's frames before it
                read_from = numbers[back] if back >= 0 else chunk.warmup_from
    hook = getattr(stylize, "warmup_start", None)
    if primer is None and callable(hook) and hook(write_from) in pos:
        # a keyframe job's carried keyframe: read from the last keyframe before the first frame to write
        read_from = min(read_from, hook(write_from))
    read_to = chunk.last
    until = getattr(stylize, "read_until", None)
    if callable(until) and until(chunk.last) in pos:
        read_to = until(chunk.last)  # a keyframe job: the next keyframe is carried back to the chunk's last frames
    stylize_stage = StatefulStage(stylize, primer=primer)
    stages = [*colour_in, _DepthStage(np.dtype(layout.work_dtype)), *stages[:-1], stylize_stage, *tail]

    journal = Journal(layout.journal_path(chunk.id))
    journal.append(
        {"e": "start", "chunk": chunk.id, "attempt": attempt, "from": write_from, "read_from": read_from,
         "state": state_from, "host": host, "pid": os.getpid(), "threads": threads,
         "device": str(getattr(getattr(stylize, "stylizer", None), "device", job.device))}
    )
    sink = _ChunkSink(
        layout=layout,
        chunk=chunk,
        journal=journal,
        write_from=write_from,
        tail_from=next_crossfade_from,
        heads_done=heads,
        attempt=attempt,
        on_frame=on_frame,
        colour=management,
    )
    try:
        try:
            source = open_source(job.input, frames=(read_from, read_to), fps=job.fps)
        except BaseException:
            for s in stages:
                s.close()
            raise
        with source:
            if source.info.frame_count is not None and source.info.frame_count == 0:  # pragma: no cover
                raise InvalidInputError(f"no frames {read_from}-{chunk.last} in '{job.input}'")
            # queue_size 1: a kill loses the frame being written and at most one finished frame
            # waiting for the writer (only when writing is slower than stylizing)
            stats = run_pipeline(source=source, stages=stages, sink=sink, stop=stop, queue_size=1)
        journal.append({"e": "end", "chunk": chunk.id, "attempt": attempt, "frames": sink.frames_written,
                        "stopped": bool(stats.stopped)})
    finally:
        journal.close()
    return ChunkResult(
        chunk=chunk.id,
        frames=sink.frames_written,
        seconds=time.perf_counter() - t0,
        resumed_from=write_from if done else None,
        state_from=state_from,
        host=host,
        warnings=list(stats.warnings),
    )
