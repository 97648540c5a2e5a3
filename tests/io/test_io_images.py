"""Image sequences in and out, single image files, and output checks."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from media import frame_id, frame_image, make_images

from vidstyle.cli.common import error_line
from vidstyle.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidInputError,
    InvalidOptionError,
    OutputError,
    OutputExistsError,
)
from vidstyle.frame import Frame
from vidstyle.io import check_output, list_sequence, open_sink, open_source, read_image, write_image


# ------------------------------------------------------------------------------- single files
@pytest.mark.parametrize(
    "ext,dtype,depth",
    [
        (".png", np.uint8, 8),
        (".png", np.uint16, 16),
        (".tif", np.uint16, 16),
        (".tiff", np.uint8, 8),
        (".tif", np.float32, 32),
        (".exr", np.float32, 32),
        (".ppm", np.uint16, 16),
    ],
)
def test_lossless_round_trips(tmp_path, ext, dtype, depth):
    img = frame_image(3, 67, 41, dtype=dtype)
    if dtype == np.uint16:
        img = img + np.arange(67, dtype=np.uint16)[None, :, None]  # values that are not 8-bit ones
    p = tmp_path / f"x{ext}"
    write_image(p, img, bit_depth=depth)
    back = read_image(p)
    assert back.dtype == img.dtype and back.shape == (41, 67, 3)
    np.testing.assert_array_equal(back, img)


def test_exr_half_error_bound(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((20, 30, 3), dtype=np.float32) * 4.0  # HDR values above 1 are kept
    p = tmp_path / "h.exr"
    write_image(p, img, bit_depth=16)
    back = read_image(p)
    assert back.dtype == np.float32 and back.max() > 1.0
    rel = np.abs(back - img) / np.maximum(np.abs(img), 2.0**-14)
    assert rel.max() <= 2.0**-11  # half precision: 11 significant bits, rounding to nearest


def test_jpeg_is_close(tmp_path):
    img = frame_image(0)
    write_image(tmp_path / "x.jpg", img)
    assert np.abs(read_image(tmp_path / "x.jpg").astype(int) - img).mean() < 3


def test_gray_and_alpha_become_rgb(tmp_path):
    import cv2

    gray = (np.arange(48 * 64) % 251).astype(np.uint8).reshape(48, 64)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    back = read_image(tmp_path / "g.png")
    assert back.shape == (48, 64, 3) and (back == gray[:, :, None]).all()
    bgra = np.dstack([np.full((4, 5), v, np.uint8) for v in (10, 20, 30, 40)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [30, 20, 10]


def test_unreadable_image(tmp_path):
    p = tmp_path / "bad.png"
    p.write_bytes(b"not a png at all")
    with pytest.raises(CorruptInputError, match="not a readable image"):
        read_image(p)


def test_bad_depth_for_format(tmp_path):
    with pytest.raises(InvalidOptionError, match="bit depth 16"):
        write_image(tmp_path / "x.jpg", frame_image(0), bit_depth=16)
    with pytest.raises(InvalidOptionError, match="use .exr or .tif for float"):
        write_image(tmp_path / "x.png", frame_image(0), bit_depth=32)


# ------------------------------------------------------------------------------- sequences in
@pytest.fixture()
def seq(tmp_path):
    make_images(tmp_path / "plates", pattern="shot.%04d.png", numbers=range(1001, 1011))
    return tmp_path / "plates"


@pytest.mark.parametrize("spec", ["shot.%04d.png", "shot.####.png", "shot.*.png", ""])
def test_sequence_forms(seq, spec):
    src = open_source(seq / spec if spec else seq)
    with src:
        info = src.info
        frames = list(src)
    assert (info.kind, info.width, info.height, info.bit_depth, info.frame_count) == ("images", 64, 48, 8, 10)
    assert info.first_number == 1001 and info.fps == 24 and info.time_base == Fraction(1, 24)
    assert info.duration == pytest.approx(10 / 24) and info.audio_streams == 0
    assert [f.number for f in frames] == list(range(1001, 1011))
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts for f in frames] == list(range(10))
    assert all(f.time_base == Fraction(1, 24) for f in frames)
    for f in frames:
        np.testing.assert_array_equal(f.image, frame_image(f.number))


def test_sequence_fps_and_16_bit(tmp_path):
    make_images(tmp_path, pattern="%03d.png", numbers=range(0, 4), dtype=np.uint16)
    with open_source(tmp_path / "%03d.png", fps=30) as src:
        assert src.info.bit_depth == 16 and src.info.fps == 30
        imgs = [f.image for f in src]
    assert imgs[2].dtype == np.uint16
    np.testing.assert_array_equal(imgs[2], frame_image(2, dtype=np.uint16))


def test_exr_sequence_is_float(tmp_path):
    for n in range(3):
        write_image(tmp_path / f"f.{n:04d}.exr", frame_image(n, dtype=np.float32), bit_depth=32)
    with open_source(tmp_path / "f.####.exr") as src:
        assert src.info.bit_depth == 32
        img = next(iter(src)).image
    assert img.dtype == np.float32
    np.testing.assert_array_equal(img, frame_image(0, dtype=np.float32))


@pytest.mark.parametrize(
    "kw,numbers",
    [
        ({"frames": (1003, 1006)}, range(1003, 1007)),
        ({"start": "2f", "end": "5f"}, range(1003, 1006)),
        ({"start": 0.25}, range(1007, 1011)),  # 0.25 s at 24 fps = position 6
        ({"end": "0.125"}, range(1001, 1004)),
    ],
)
def test_sequence_selection(seq, kw, numbers):
    with open_source(seq / "shot.%04d.png", **kw) as src:
        frames = list(src)
        assert src.info.frame_count == len(numbers) and src.info.first_number == numbers[0]
    assert [f.number for f in frames] == list(numbers)
    assert [f.index for f in frames] == list(range(len(numbers)))


def test_sequence_selection_errors(seq):
    with pytest.raises(InvalidInputError, match="after the end"):
        open_source(seq / "shot.%04d.png", start="10f")
    with pytest.raises(InvalidInputError, match="not in"):
        open_source(seq / "shot.%04d.png", frames=(2000, 2010))
    with pytest.raises(InvalidOptionError, match="empty"):
        open_source(seq / "shot.%04d.png", frames=(1005, 1001))


def test_gaps_keep_time_and_warn(tmp_path):
    make_images(tmp_path, pattern="%04d.png", numbers=[1, 2, 3, 6, 7])
    with open_source(tmp_path / "%04d.png") as src:
        pts = [f.pts for f in src]
    assert pts == [0, 1, 2, 5, 6]
    assert len(src.warnings) == 1 and "2 frame(s) missing" in src.warnings[0] and "4-5" in src.warnings[0]


def test_folder_uses_the_main_extension_and_skips_partials(tmp_path):
    make_images(tmp_path, pattern="img_%02d.png", numbers=range(3))
    write_image(tmp_path / "thumb.jpg", frame_image(0))
    (tmp_path / "img_03.partial.png").write_bytes(b"half")
    assert [p.name for _, p in list_sequence(tmp_path)] == ["img_00.png", "img_01.png", "img_02.png"]


def test_names_without_numbers_sort_naturally(tmp_path):
    for name in ["b.png", "a.png", "c.png"]:
        write_image(tmp_path / name, frame_image(0))
    entries = list_sequence(tmp_path)
    assert [p.name for _, p in entries] == ["a.png", "b.png", "c.png"] and entries[0][0] is None


def test_bad_sequences(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="contains no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="no images match"):
        open_source(tmp_path / "empty" / "%04d.png")
    with pytest.raises(InputNotFoundError, match="does not exist"):
        open_source(tmp_path / "nowhere" / "%04d.png")
    with pytest.raises(InvalidInputError, match="no files match"):
        open_source(tmp_path / "empty" / "*.png")
    with pytest.raises(InputNotFoundError):
        open_source(tmp_path / "missing.png")


def test_size_change_in_sequence(tmp_path):
    make_images(tmp_path, pattern="%02d.png", numbers=range(2))
    write_image(tmp_path / "02.png", frame_image(2, 32, 32))
    with pytest.raises(InvalidInputError, match="same size"):
        list(open_source(tmp_path / "%02d.png"))


def test_single_image_is_a_one_frame_sequence(tmp_path):
    write_image(tmp_path / "still.png", frame_image(5))
    with open_source(tmp_path / "still.png") as src:
        frames = list(src)
    assert len(frames) == 1 and frame_id(frames[0].image) == 5


# ------------------------------------------------------------------------------- sequences out
@pytest.mark.parametrize(
    "pattern,depth,dtype,exact",
    [
        ("out/%04d.png", None, np.uint8, True),
        ("out/%04d.png", 16, np.uint16, True),
        ("out/f.####.tif", 16, np.uint16, True),
        ("out/f.####.exr", 32, np.float32, True),
        ("out/f.####.exr", 16, np.float32, False),
    ],
)
def test_sequence_round_trip(seq, tmp_path, pattern, depth, dtype, exact):
    out = tmp_path / pattern
    with open_source(seq / "shot.%04d.png") as src:
        with open_sink(out, info=src.info, bit_depth=depth) as sink:
            for f in src:
                f.stylized = frame_image(f.number, dtype=dtype)
                sink.write(f)
    files = sorted(os.listdir(tmp_path / "out"))
    assert len(files) == 10 and ".partial." not in "".join(files)
    assert "1001" in files[0] and "1010" in files[-1]  # the source's own frame numbers
    with open_source(out) as back:
        assert back.info.first_number == 1001 and back.info.frame_count == 10
        for f in back:
            ref = frame_image(f.number, dtype=dtype)
            assert f.image.dtype == ref.dtype
            if exact:
                np.testing.assert_array_equal(f.image, ref)
            else:  # EXR half: relative error ≤ 2^-11
                assert np.abs(f.image - ref).max() <= 2.0**-11 * np.abs(ref).max()


def test_sequence_from_video_frames_numbered_by_index(tmp_path):
    out = tmp_path / "frames"
    with open_sink(str(out) + "/", info=open_source("lavfi:testsrc2=size=64x48:rate=10", end="3f").info) as sink:
        for i in range(3):
            sink.write(Frame(index=i, image=frame_image(i), number=None))
    assert sorted(os.listdir(out)) == ["000000.png", "000001.png", "000002.png"]


def test_start_number(tmp_path):
    info = open_source("lavfi:testsrc2=size=64x48:rate=10", end="1f").info
    with open_sink(tmp_path / "o_%03d.png", info=info, start_number=1) as sink:
        sink.write(Frame(index=0, image=frame_image(0), number=57))
    assert os.listdir(tmp_path) == ["o_001.png"]


def test_sequence_overwrite_protection(seq, tmp_path):
    make_images(tmp_path / "out", pattern="%04d.png", numbers=[1005])
    with open_source(seq / "shot.%04d.png") as src:
        with pytest.raises(OutputExistsError, match="pass `overwrite`") as info:
            open_sink(tmp_path / "out" / "%04d.png", info=src.info)
        assert "pass --overwrite" in error_line(info.value)
        with open_sink(tmp_path / "out" / "%04d.png", info=src.info, overwrite=True) as sink:
            for f in src:
                sink.write(f)
    assert len(os.listdir(tmp_path / "out")) == 10


def test_sequence_output_onto_input(seq):
    with open_source(seq / "shot.%04d.png") as src:
        with pytest.raises(OutputError, match="overwrite the input"):
            open_sink(seq / "shot.####.png", info=src.info, overwrite=True)


def test_sequence_output_creates_folder(tmp_path):
    info = open_source("lavfi:testsrc2=size=64x48:rate=10", end="1f").info
    with open_sink(tmp_path / "a" / "b" / "%04d.png", info=info) as sink:
        sink.write(Frame(index=0, image=frame_image(0)))
    assert (tmp_path / "a" / "b" / "0000.png").exists()


# ------------------------------------------------------------------------------- check_output
def test_check_output(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    check_output(tmp_path / "out.mp4", input_spec=src, overwrite=False)
    check_output("null:", input_spec=src, overwrite=False)
    with pytest.raises(OutputError, match="is the input"):
        check_output(src, input_spec=src, overwrite=True)
    with pytest.raises(OutputError, match="is the input"):
        check_output(src, input_spec=str(tmp_path / "." / "in.mp4"), overwrite=True)
    with pytest.raises(OutputError, match="is the input"):  # its temporary name would be the input
        check_output(tmp_path / "a.mp4", input_spec=tmp_path / "a.partial.mp4", overwrite=True)
    with pytest.raises(OutputExistsError, match="pass `overwrite`") as info:
        check_output(src, input_spec=None, overwrite=False)
    assert "pass --overwrite" in error_line(info.value)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4", input_spec=src, overwrite=False)
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path / "d.mp4", input_spec=src, overwrite=True)
    with pytest.raises(InvalidOptionError, match="unknown output type"):
        check_output(tmp_path / "x.doc", input_spec=src, overwrite=False)


def test_check_output_unwritable(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.name == "posix" and os.geteuid() != 0:
        ro.chmod(0o555)
    else:  # root writes anywhere: simulate the permission check
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if os.fspath(p) == str(ro) else real(p, m))
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_output(ro / "out.mp4", input_spec=None, overwrite=False)
        with pytest.raises(OutputError, match="permission denied"):
            check_output(ro / "sub" / "%04d.png", input_spec=None, overwrite=False)
    finally:
        ro.chmod(0o755)


def test_dpx_sequence_read_through_ffmpeg(tmp_path):
    import av

    for n in range(1001, 1004):
        with av.open(str(tmp_path / f"shot.{n}.dpx"), "w", format="image2") as c:
            s = c.add_stream("dpx", rate=24)
            s.width, s.height, s.pix_fmt = 64, 48, "gbrp10le"
            vf = av.VideoFrame.from_ndarray(frame_image(n, dtype=np.uint16), format="rgb48le").reformat(
                format="gbrp10le"
            )
            vf.pts = 0
            for p in [*s.encode(vf), *s.encode(None)]:
                c.mux(p)
    with open_source(tmp_path / "shot.####.dpx") as src:
        assert src.info.bit_depth == 16 and src.info.first_number == 1001
        frames = list(src)
    assert [f.number for f in frames] == [1001, 1002, 1003]
    err = np.abs(frames[1].image.astype(float) - frame_image(1002, dtype=np.uint16)).max() / 65535
    assert err <= 1 / 1023  # 10-bit DPX
