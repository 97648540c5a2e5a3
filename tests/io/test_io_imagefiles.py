"""vidstyle.io.imagefiles as the one home of image-file I/O, and vidstyle.io.hashing."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest

from vidstyle.errors import CorruptInputError, InputNotFoundError, InvalidOptionError, OutputError
from vidstyle.io.hashing import file_sha256
from vidstyle.io.imagefiles import read_image, write_image_atomic


def _ramp(dtype: type, h: int = 9, w: int = 13) -> np.ndarray:
    top = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * top // (w - 1), yy * top // (h - 1), (xx + yy) * top // (h + w - 2)], axis=-1)
    return img.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_written_atomically(tmp_path, dtype):
    img = _ramp(dtype)
    img[0, 0] = (1, 2, 3)  # R, G, B distinct: a channel swap would show
    dst = tmp_path / "out.png"
    assert write_image_atomic(dst, img) == dst
    back = read_image(dst)
    assert back.dtype == dtype and back.shape == img.shape
    np.testing.assert_array_equal(back, img)
    assert back[0, 0].tolist() == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temporary file left


def test_atomic_write_replaces_an_existing_file_and_takes_a_bit_depth(tmp_path):
    dst = tmp_path / "x.png"
    write_image_atomic(dst, np.zeros((4, 5, 3), np.uint8))
    img = _ramp(np.uint8, 4, 5)
    write_image_atomic(dst, img, bit_depth=16, temp=tmp_path / ".x.tmp.png")
    back = read_image(dst)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img.astype(np.uint16) * 257)
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


def test_atomic_write_failures_leave_nothing(tmp_path):
    img = _ramp(np.uint8)
    with pytest.raises(InvalidOptionError, match="bit depth"):
        write_image_atomic(tmp_path / "x.jpg", img, bit_depth=16)
    with pytest.raises(OutputError, match="missing"):
        write_image_atomic(tmp_path / "missing" / "x.png", img)
    assert os.listdir(tmp_path) == []


def test_read_image_errors(tmp_path):
    with pytest.raises(InputNotFoundError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(CorruptInputError, match="not a readable image"):
        read_image(bad)


def test_optim_load_image_is_the_one_reader():
    from vidstyle.stylize import optim

    assert optim.load_image is read_image


def test_file_sha256(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # several read blocks
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(p)) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(InputNotFoundError):
        file_sha256(tmp_path / "missing.bin")


def test_damaged_png_is_named_before_libpng_prints_anything(tmp_path, capfd):
    import cv2

    from vidstyle.errors import CorruptInputError
    from vidstyle.io.imagefiles import png_damage, read_image

    good = tmp_path / "good.png"
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(good), img)
    data = good.read_bytes()
    assert png_damage(data) is None and png_damage(b"GIF89a...") is None  # not a PNG: not judged here
    idat = data.index(b"IDAT")
    flipped = bytearray(data)
    flipped[idat + 20] ^= 0x55
    cases = {
        "truncated.png": (data[: len(data) // 2], "chunk IDAT runs past the end of the file: the file is truncated"),
        "no_end.png": (data[:-12], "it ends before its last chunk (IEND): the file is truncated"),
        "flipped.png": (bytes(flipped), "chunk IDAT fails its checksum"),
        "header.png": (data[:8] + b"\0\0\0\0JUNK" + data[8:], "its first chunk is not the header (IHDR)"),
    }
    for name, (content, reason) in cases.items():
        assert png_damage(content) == reason, name
        (tmp_path / name).write_bytes(content)
        capfd.readouterr()
        with pytest.raises(CorruptInputError, match=re.escape(f"is damaged: {reason}")):
            read_image(tmp_path / name)
        out, err = capfd.readouterr()
        assert err == "" and out == "", name  # no libpng / OpenCV lines of their own
    assert np.array_equal(read_image(good), img[:, :, ::-1])
