"""Middlebury .flo read/write."""

from __future__ import annotations

import numpy as np
import pytest

from vidstyle.errors import CorruptInputError, InputNotFoundError, ShapeError
from vidstyle.flow import read_flo, write_flo


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 5, (2, 7, 11)).astype(np.float32)
    path = tmp_path / "f.flo"
    write_flo(path, flow)
    assert path.stat().st_size == 12 + 7 * 11 * 2 * 4
    back = read_flo(path)
    assert back.shape == (2, 7, 11) and back.dtype == np.float32
    assert np.array_equal(back, flow)
    write_flo(path, flow.astype(np.float64))  # converted
    assert np.array_equal(read_flo(path), flow)


def test_layout_is_interleaved_uv(tmp_path):
    """Header 'PIEH', width, height, then (u, v) per pixel in row-major order."""
    flow = np.zeros((2, 2, 3), np.float32)
    flow[0] = np.arange(6).reshape(2, 3)
    flow[1] = -np.arange(6).reshape(2, 3)
    path = tmp_path / "f.flo"
    write_flo(path, flow)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH"
    assert np.frombuffer(raw[4:12], "<i4").tolist() == [3, 2]
    assert np.frombuffer(raw[12:], "<f4").tolist() == [0, 0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5]


def test_errors(tmp_path):
    with pytest.raises(InputNotFoundError):
        read_flo(tmp_path / "missing.flo")
    bad = tmp_path / "bad.flo"
    bad.write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(CorruptInputError, match="magic"):
        read_flo(bad)
    bad.write_bytes(b"PIE")
    with pytest.raises(CorruptInputError):
        read_flo(bad)
    good = tmp_path / "good.flo"
    write_flo(good, np.zeros((2, 4, 4), np.float32))
    bad.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(CorruptInputError, match="truncated"):
        read_flo(bad)
    bad.write_bytes(b"PIEH" + np.array([-3, 4], "<i4").tobytes())
    with pytest.raises(CorruptInputError, match="size"):
        read_flo(bad)
    with pytest.raises(ShapeError):
        write_flo(tmp_path / "x.flo", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ShapeError):
        write_flo(tmp_path / "x.flo", np.zeros((2, 4, 4), np.int32))


@pytest.mark.shared
def test_reads_shared_ground_truth(shared):
    import cv2

    flow_dir = shared / "data" / "flow"
    flow = read_flo(flow_dir / "chairs_0000000_flow.flo")
    image = cv2.imread(str(flow_dir / "chairs_0000000_img0.png"))
    assert flow.shape == (2, *image.shape[:2])
    assert np.isfinite(flow).all() and np.abs(flow).max() > 1
