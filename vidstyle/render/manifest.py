"""Where a render keeps its files, the journals its chunks append to, and the manifest.

**Layout** (:class:`RenderLayout`), next to the output:

* the **manifest** ``<name>.manifest.json`` (``out/sh010.%04d.exr`` → ``out/sh010.manifest.json``,
  ``out/sh010.mov`` → ``out/sh010.mov.manifest.json``): what was rendered, how, and by which chunk;
* a hidden **work folder** ``.<name>.render/`` with one journal per chunk, the temporal state
  side-car of each chunk, the cross-fade frames and, for video outputs, the lossless frames the
  video is encoded from. It is removed when the render completes.

**Journals** are append-only JSON-lines files, one per chunk (``journal.cNNN.jsonl``) plus the
driver's (``journal.driver.jsonl``). A line is appended after the frame it reports has been
renamed to its final name, with one ``write`` call, so a render killed at any point (SIGINT or
SIGKILL) leaves complete lines for complete frames and at most one torn last line, which readers
ignore. The manifest is rewritten atomically (temp + rename) from the journals by the driver.

**Manifest** (:class:`Manifest`, ``format`` :data:`MANIFEST_FORMAT`): the job (parameters, their
sources, the command), the model's files and hashes, the shot (:class:`ShotRecord`), the output,
the layout, the chunks (:class:`ChunkRecord`), one :class:`RunRecord` per run, one record per
frame (:func:`frame_records`, from the journals), a summary, the environment and the determinism
settings. :meth:`Manifest.from_json` keeps keys it does not know, so a manifest round-trips.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidstyle.colour.spaces import ColourSpace
from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.io.imagefiles import SeqPattern
from vidstyle.render.plan import Chunk
from vidstyle.io.hashing import file_sha256  # the one home; re-exported for render/

if TYPE_CHECKING:
    from vidstyle.render.plan import JournalState, RenderPlan

__all__ = [
    "MANIFEST_FORMAT",
    "RenderLayout",
    "manifest_path_for",
    "Journal",
    "read_journal",
    "write_json_atomic",
    "read_manifest",
    "file_sha256",
    "pixels_sha256",
    "Manifest",
    "ShotRecord",
    "OutputRecord",
    "ChunkRecord",
    "RunRecord",
    "frame_records",
    "journal_records_from_manifest",
]

MANIFEST_FORMAT = "vidstyle-render-manifest/1"


def manifest_path_for(output: str) -> Path:
    """The default manifest path of an output (see the module docstring)."""
    from vidstyle.io import output_kind
    from vidstyle.io.imagefiles import parse_pattern

    if output_kind(output) == "images":
        pattern = parse_pattern(output)
        if pattern is None:  # a folder
            folder = Path(output)
            return folder / "render.manifest.json"
        stem = pattern.prefix.rstrip("._- ") or "render"
        return pattern.folder / f"{stem}.manifest.json"
    p = Path(output)
    return p.with_name(p.name + ".manifest.json")


@dataclass(frozen=True)
class RenderLayout:
    """Paths of one render (plain strings: it travels to Ray workers).

    Attributes:
        manifest: the manifest JSON.
        work: the hidden work folder.
        frames: pattern the chunks write frames to: the output pattern for image-sequence
            outputs, ``work/frames/%08d.<ext>`` (lossless) for video outputs.
        frames_final: ``True`` when :attr:`frames` is the final output (image sequences).
        bit_depth: bits the frames are written with (8, 16, 32; for EXR 16 = half).
        work_dtype: dtype frames are stylized in (``uint8``, ``uint16``, ``float32``).
        shot_first: first frame number of the shot (for ``start_number`` and timecodes).
        start_number: renumbering of the output (``None``: keep the shot's numbers).
        timecode: timecode of the shot's first frame, if known.
        fps: frame rate as a string fraction (``"24"``, ``"24000/1001"``).
        colour: the colour space the output files are in (EXR headers, video tags); ``None``
            for renders made before it was recorded (read as sRGB).
    """

    manifest: str
    work: str
    frames: str
    frames_final: bool
    bit_depth: int
    work_dtype: str
    shot_first: int
    start_number: int | None = None
    timecode: str | None = None
    fps: str | None = None
    colour: ColourSpace | None = None

    # -------------------------------------------------------------------------- paths
    @property
    def pattern(self) -> SeqPattern:
        from vidstyle.io.imagefiles import parse_pattern

        p = parse_pattern(self.frames)
        if p is None:
            raise InvalidOptionError(f"'{self.frames}' is not a frame pattern (no %d or #)")
        return p

    def out_number(self, number: int) -> int:
        """The file number of shot frame ``number``."""
        if self.start_number is None:
            return number
        return self.start_number + (number - self.shot_first)

    def frame_path(self, number: int) -> Path:
        return self.pattern.path(self.out_number(number))

    def journal_path(self, chunk: int | str) -> Path:
        name = f"c{chunk:03d}" if isinstance(chunk, int) else str(chunk)
        return Path(self.work) / f"journal.{name}.jsonl"

    def state_path(self, chunk: int) -> Path:
        return Path(self.work) / "state" / f"c{chunk:03d}.safetensors"

    def xfade_path(self, kind: str, number: int, chunk: int) -> Path:
        return Path(self.work) / "xfade" / f"{kind}.{number:09d}.c{chunk:03d}.npy"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RenderLayout:
        d = dict(d)
        if d.get("colour") is not None:
            d["colour"] = ColourSpace.from_dict(d["colour"])
        return cls(**d)


# --------------------------------------------------------------------------------------- hashes
def pixels_sha256(array: np.ndarray) -> str:
    """SHA-256 of an image's samples (dtype, shape and C-order bytes): independent of the file
    encoder, so two renders can be compared even when their PNG/EXR bytes differ."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.view(np.uint8).reshape(-1).data)
    return h.hexdigest()


# --------------------------------------------------------------------------------------- files
def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON of a render manifest (a one-line :class:`~vidstyle.errors.InvalidInputError` when
    it is unreadable or not a manifest)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"manifest '{path}' is unreadable ({e}); start the render again without --resume") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InvalidInputError(f"'{path}' is not a vidstyle render manifest; start the render again without --resume")
    return data


class Journal:
    """Append-only JSON-lines log (one ``write`` per record; see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync = fsync
        # a torn last line (killed mid-write) must not glue onto the next record
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps({**record, "time": round(time.time(), 3)}, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a journal; a torn or damaged line is skipped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # torn last line
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    yield rec
    except FileNotFoundError:
        return


# --------------------------------------------------------------------------------------- manifest
def _pick(d: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


@dataclass
class ShotRecord:
    """The shot as the render saw it (``numbers``: every frame number, in order)."""

    input: str
    kind: str
    width: int
    height: int
    bit_depth: int
    fps: str | None
    timecode: str | None
    first: int
    last: int
    count: int
    numbers: list[int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ShotRecord:
        numbers = [int(n) for n in d["numbers"]]
        return cls(input=d.get("input", ""), kind=d.get("kind", ""), width=int(d.get("width", 0)),
                   height=int(d.get("height", 0)), bit_depth=int(d.get("bit_depth", 0)), fps=d.get("fps"),
                   timecode=d.get("timecode"), first=int(d.get("first", numbers[0] if numbers else 0)),
                   last=int(d.get("last", numbers[-1] if numbers else 0)), count=int(d.get("count", len(numbers))),
                   numbers=numbers)


_OUTPUT_KEYS = ("path", "kind", "frames", "bit_depth", "dtype", "codec", "sha256", "encoder", "timecode", "fps")


@dataclass
class OutputRecord:
    """The output: path, kind (``images``/``video``), frame pattern (images), depth, codec; for an
    encoded video also its SHA-256, encoder settings, timecode and rate (``encoded``)."""

    path: str
    kind: str
    frames: str | None
    bit_depth: int
    dtype: str
    codec: str | None
    sha256: str | None = None
    encoded: bool = False
    encoder: dict[str, Any] | None = None
    timecode: str | None = None
    fps: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "kind": self.kind, "frames": self.frames, "bit_depth": self.bit_depth,
                             "dtype": self.dtype, "codec": self.codec, "sha256": self.sha256}
        if self.encoded:
            d.update(encoder=self.encoder, timecode=self.timecode, fps=self.fps)
        return {**d, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> OutputRecord:
        return cls(path=d.get("path", ""), kind=d.get("kind", ""), frames=d.get("frames"),
                   bit_depth=int(d.get("bit_depth", 0)), dtype=d.get("dtype", ""), codec=d.get("codec"),
                   sha256=d.get("sha256"), encoded="encoder" in d, encoder=d.get("encoder"),
                   timecode=d.get("timecode"), fps=d.get("fps"), extra=_pick(d, _OUTPUT_KEYS))


@dataclass
class ChunkRecord:
    """A chunk of the plan, its state (pending, running, done, retrying, failed, interrupted,
    stopped), its attempts over all runs, and what its journal's last ``start`` line says."""

    chunk: Chunk
    status: str = "pending"
    attempts: int = 0
    host: str | None = None
    seconds: float = 0.0
    last_start: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d = {**self.chunk.to_dict(), "status": self.status, "attempts": self.attempts, "host": self.host,
             "seconds": self.seconds}
        if self.last_start is not None:
            d["last_start"] = self.last_start
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ChunkRecord:
        return cls(chunk=Chunk.from_dict(dict(d)), status=d.get("status", "pending"),
                   attempts=int(d.get("attempts", 0)), host=d.get("host"), seconds=float(d.get("seconds", 0.0)),
                   last_start=d.get("last_start"))


_RUN_KEYS = ("started", "resume", "executor", "address", "workers", "threads", "status", "host", "frames",
             "seconds", "ended")


@dataclass
class RunRecord:
    """One run of the render (the first, then each ``--resume``)."""

    started: str
    resume: bool
    executor: str
    address: str | None
    workers: int
    threads: int
    status: str = "running"
    host: str = ""
    frames: int | None = None
    seconds: float | None = None
    ended: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in _RUN_KEYS[:8]}
        for k in ("frames", "seconds", "ended"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return {**d, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunRecord:
        return cls(started=d.get("started", ""), resume=bool(d.get("resume", False)), executor=d.get("executor", ""),
                   address=d.get("address"), workers=int(d.get("workers") or 0), threads=int(d.get("threads") or 0),
                   status=d.get("status", ""), host=d.get("host", ""), frames=d.get("frames"),
                   seconds=d.get("seconds"), ended=d.get("ended"), extra=_pick(d, _RUN_KEYS))


_MANIFEST_KEYS = ("format", "vidstyle_version", "status", "created", "updated", "job_file", "parameters",
                  "parameter_sources", "command", "model", "shot", "output", "layout", "chunks", "runs", "frames",
                  "summary", "environments", "environment", "determinism")


@dataclass
class Manifest:
    """The manifest of a render (see the module docstring); :meth:`to_json` gives the JSON object
    in the order of the fields, :meth:`from_json` reads one back."""

    vidstyle_version: str
    status: str
    created: str
    updated: str
    job_file: str | None
    parameters: dict[str, Any]
    parameter_sources: dict[str, Any]
    command: str
    model: dict[str, Any]
    shot: ShotRecord
    output: OutputRecord
    layout: RenderLayout
    chunks: list[ChunkRecord]
    runs: list[RunRecord] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    environments: list[Any] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    determinism: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "vidstyle_version": self.vidstyle_version,
            "status": self.status,
            "created": self.created,
            "updated": self.updated,
            "job_file": self.job_file,
            "parameters": self.parameters,
            "parameter_sources": self.parameter_sources,
            "command": self.command,
            "model": self.model,
            "shot": self.shot.to_json(),
            "output": self.output.to_json(),
            "layout": self.layout.to_dict(),
            "chunks": [c.to_json() for c in self.chunks],
            "runs": [r.to_json() for r in self.runs],
            "frames": self.frames,
            "summary": self.summary,
            "environments": self.environments,
            "environment": self.environment,
            "determinism": self.determinism,
            **self.extra,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        try:
            return cls(
                format=d["format"],
                vidstyle_version=d.get("vidstyle_version", ""),
                status=d.get("status", ""),
                created=d.get("created", ""),
                updated=d.get("updated", ""),
                job_file=d.get("job_file"),
                parameters=dict(d.get("parameters", {})),
                parameter_sources=dict(d.get("parameter_sources", {})),
                command=d.get("command", ""),
                model=dict(d.get("model", {})),
                shot=ShotRecord.from_json(d["shot"]),
                output=OutputRecord.from_json(d.get("output", {})),
                layout=RenderLayout.from_dict(d["layout"]),
                chunks=[ChunkRecord.from_json(c) for c in d["chunks"]],
                runs=[RunRecord.from_json(r) for r in d.get("runs", [])],
                frames=list(d.get("frames", [])),
                summary=dict(d.get("summary", {})),
                environments=list(d.get("environments", [])),
                environment=dict(d.get("environment", {})),
                determinism=dict(d.get("determinism", {})),
                extra=_pick(d, _MANIFEST_KEYS),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise InvalidInputError(
                f"the manifest is damaged ({type(e).__name__}: {e}); start the render again without --resume"
            ) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read and check a manifest file."""
        return cls.from_json(read_manifest(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the manifest atomically."""
        write_json_atomic(path, self.to_json())


def frame_records(plan: RenderPlan, state: JournalState, *, layout: RenderLayout) -> list[dict[str, Any]]:
    """The manifest's record of every frame of the shot, from what the journals say."""
    owner = plan.owner()
    records = []
    for i, n in enumerate(plan.numbers):
        rec = state.frames.get(n)
        entry: dict[str, Any] = {"number": n, "chunk": owner[n]}
        if layout.frames_final:
            entry["file"] = layout.frame_path(n).name
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
    return records


def journal_records_from_manifest(
    manifest: Manifest, plan: RenderPlan, *, on_disk: set[int]
) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The journal lines that re-create what the manifest says was finished, for the frames whose
    files are still there (``on_disk``): ``(lines by chunk id, driver lines)`` — to rebuild a
    removed work folder."""
    owner = plan.owner()
    chunks: dict[int, list[dict[str, Any]]] = {c.id: [] for c in plan.chunks}
    driver: list[dict[str, Any]] = []
    for f in manifest.frames:
        n = int(f["number"])
        if f.get("status") != "done" or n not in on_disk:
            continue
        chunks[owner[n]].append({"e": "frame", "n": n, "chunk": owner[n], "attempt": f.get("attempt"),
                                 "file": f.get("file"), "sha256": f.get("sha256"),
                                 "pixels_sha256": f.get("pixels_sha256"), "seconds": f.get("seconds")})
        if "crossfade" in f:
            driver.append({"e": "xfade", "n": n, "sha256": f.get("sha256"),
                           "pixels_sha256": f.get("pixels_sha256"), "crossfade": f["crossfade"]})
    return chunks, driver
