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
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.io.imagefiles import SeqPattern

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

    # -------------------------------------------------------------------------- paths
    @property
    def pattern(self) -> SeqPattern:
        from vidstyle.io.imagefiles import parse_pattern

        p = parse_pattern(self.frames)
        assert p is not None, self.frames
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
        return cls(**d)


# --------------------------------------------------------------------------------------- hashes
def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    from vidstyle.errors import InvalidInputError

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
