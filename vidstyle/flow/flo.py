"""Read and write Middlebury ``.flo`` optical-flow files.

Format (little-endian): float32 magic ``202021.25`` (the bytes ``PIEH``), int32 width, int32 height,
then ``height × width × 2`` float32 values ``(u, v)`` in row-major order. In vidstyle a flow is a
``2×H×W`` float32 array (``flow[0] = u``, horizontal, ``flow[1] = v``, vertical, in pixels) that maps
frame A to frame B: ``A(x) ≈ B(x + flow(x))``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidstyle.errors import CorruptInputError, InputNotFoundError, OutputError, ShapeError

__all__ = ["FLO_MAGIC", "read_flo", "write_flo"]

FLO_MAGIC = 202021.25
_HEADER = 12
_MAX_SIDE = 1 << 16  # no real flow file is wider/taller; guards against garbage headers


def read_flo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a Middlebury ``.flo`` file into a ``2×H×W`` float32 array (pixels, A→B)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputNotFoundError(f"flow file not found: {path}; check the path") from None
    except IsADirectoryError:
        raise InputNotFoundError(f"{path} is a folder, not a .flo file; pass a file") from None
    if len(data) < _HEADER:
        raise CorruptInputError(f"{path} is too short to be a .flo file ({len(data)} bytes); re-export the flow")
    magic = float(np.frombuffer(data, "<f4", count=1)[0])
    if magic != FLO_MAGIC:
        raise CorruptInputError(
            f"{path} is not a Middlebury .flo file (magic {magic!r}, expected {FLO_MAGIC}); pass a .flo file"
        )
    width, height = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise CorruptInputError(f"{path} has an invalid size {width}×{height} in its header; re-export the flow")
    expected = _HEADER + 4 * 2 * width * height
    if len(data) != expected:
        raise CorruptInputError(
            f"{path} has {len(data)} bytes but a {width}×{height} flow needs {expected}; "
            "the file is truncated or damaged, re-export it"
        )
    uv = np.frombuffer(data, "<f4", offset=_HEADER).reshape(height, width, 2)
    return np.ascontiguousarray(uv.transpose(2, 0, 1), dtype=np.float32)


def write_flo(path: str | os.PathLike[str], flow: np.ndarray) -> None:
    """Write a ``2×H×W`` flow (pixels, A→B) as a Middlebury ``.flo`` file."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2 or flow.shape[1] < 1 or flow.shape[2] < 1:
        raise ShapeError(f"flow must be 2×H×W, got shape {flow.shape}; transpose H×W×2 flows first")
    if flow.dtype.kind != "f":
        raise ShapeError(f"flow must be floating point, got {flow.dtype}; convert with .astype(np.float32)")
    _, height, width = flow.shape
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    body = np.ascontiguousarray(flow.transpose(1, 2, 0), dtype="<f4").tobytes()
    path = Path(path)
    try:
        path.write_bytes(header + body)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}; check the folder exists and is writable"
        ) from None
