"""Video sources: info, order, timing, rotation, bit depth, selection and bad input."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from media import frame_id, frame_image, make_audio_only, make_video

from vidstyle.cli.common import error_line
from vidstyle.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidInputError,
    InvalidOptionError,
    VidstyleError,
)
from vidstyle.io import open_source


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """48 frames, 64×48, 24 fps, H.264 + one AAC stream."""
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", frames=48, fps=24, audio=1)


def test_info_and_frames(clip):
    with open_source(clip) as src:
        info = src.info
        frames = list(src)
    assert (info.kind, info.width, info.height, info.bit_depth, info.rotation) == ("video", 64, 48, 8, 0)
    assert info.fps == 24 and info.frame_count == 48 and info.audio_streams == 1
    assert info.duration == pytest.approx(2.0, abs=1 / 24)
    assert info.start_time == pytest.approx(0.0)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert len(frames) == 48
    assert [f.index for f in frames] == list(range(48))
    assert [frame_id(f.image) for f in frames] == list(range(48))
    f = frames[10]
    assert f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3) and f.image.flags.c_contiguous
    assert f.time == pytest.approx(10 / 24)
    assert f.number == 10 and f.capture_time is not None
    # the pixels are those written (lossy, so on average close)
    assert np.abs(f.image.astype(int) - frame_image(10)).mean() < 4
    assert src.warnings == []


def test_vfr_pts_kept(tmp_path):
    tb = Fraction(1, 1000)
    pts = [0, 40, 70, 150, 160, 300, 310, 420, 600, 633]
    path = make_video(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=tb, fps=Fraction(50, 3))
    with open_source(path) as src:
        frames = list(src)
    assert [f.pts * f.time_base for f in frames] == [p * tb for p in pts]
    assert [frame_id(f.image) for f in frames] == list(range(len(pts)))


@pytest.mark.parametrize("size", [(321, 239), (65, 47)])
def test_odd_sizes(tmp_path, size):
    w, h = size
    path = make_video(tmp_path / "odd.mkv", frames=3, width=w, height=h, codec="ffv1", pix_fmt="bgr0")
    with open_source(path) as src:
        assert (src.info.width, src.info.height) == (w, h)
        frames = list(src)
    assert frames[0].image.shape == (h, w, 3)
    np.testing.assert_array_equal(frames[2].image, frame_image(2, w, h))  # ffv1 RGB is lossless


def test_ten_bit_input_gives_uint16(tmp_path):
    path = make_video(tmp_path / "10bit.mkv", frames=4, pix_fmt="yuv420p10le")
    with open_source(path) as src:
        assert src.info.bit_depth == 16 and src.info.pix_fmt == "yuv420p10le"
        frames = list(src)
    img = frames[1].image
    assert img.dtype == np.uint16 and img.shape == (48, 64, 3)
    # real 10-bit precision is carried (values are not multiples of 257, i.e. not 8-bit expanded)
    assert np.mean(img % 257 != 0) > 0.5
    ref = frame_image(1, dtype=np.uint16).astype(float)
    assert np.abs(img.astype(float) - ref).mean() / 65535 < 0.03
    assert frame_id(img) == 1


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv422p"])
def test_chroma_formats_to_rgb(tmp_path, pix_fmt):
    path = make_video(tmp_path / f"{pix_fmt}.mkv", frames=2, pix_fmt=pix_fmt)
    with open_source(path) as src:
        frames = list(src)
    assert src.info.pix_fmt == pix_fmt and frames[0].image.dtype == np.uint8
    assert np.abs(frames[1].image.astype(int) - frame_image(1)).mean() < 4


@pytest.mark.parametrize("ccw,cw", [(90, 270), (-90, 90), (180, 180)])
def test_rotation_applied(tmp_path, ccw, cw):
    path = make_video(tmp_path / "rot.mp4", frames=2, width=64, height=48, rotation=ccw)
    with open_source(path) as src:
        info = src.info
        img = next(iter(src)).image
    assert info.rotation == cw
    if cw in (90, 270):
        assert (info.width, info.height) == (48, 64) and img.shape == (64, 48, 3)
    else:
        assert img.shape == (48, 64, 3)
    # undo the rotation and compare with what was coded
    unrotated = np.rot90(img, k=cw // 90)
    assert np.abs(unrotated.astype(int) - frame_image(0)).mean() < 4


def test_lavfi_input():
    with open_source("lavfi:testsrc2=size=96x64:rate=30", end="10f") as src:
        assert (src.info.kind, src.info.width, src.info.height, src.info.fps) == ("video", 96, 64, 30)
        frames = list(src)
    assert len(frames) == 10 and src.info.frame_count == 10


# ------------------------------------------------------------------------------- selection
@pytest.mark.parametrize(
    "start,end,expected",
    [
        ("1.0", None, range(24, 48)),
        (1.0, "1.5", range(24, 36)),
        ("00:00:00.5", "00:00:01", range(12, 24)),
        ("30f", "40f", range(30, 40)),
        (30, 40, range(30, 40)),
        (None, "5f", range(0, 5)),
        ("47f", None, range(47, 48)),
    ],
)
def test_start_end_selection(clip, start, end, expected):
    with open_source(clip, start=start, end=end) as src:
        frames = list(src)
        info = src.info
    assert [frame_id(f.image) for f in frames] == list(expected)
    assert [f.index for f in frames] == list(range(len(expected)))
    assert info.frame_count == len(expected)
    assert info.start_time == pytest.approx(expected[0] / 24)
    assert info.duration == pytest.approx(len(expected) / 24, abs=1e-6)
    assert frames[0].number == expected[0]


def test_frames_range(clip):
    with open_source(clip, frames=(10, 19)) as src:
        assert [frame_id(f.image) for f in src] == list(range(10, 20))


def test_start_after_end(clip):
    with pytest.raises(InvalidInputError, match=r"^start 3\.5 s is after the end.*duration 2\.00 s") as info:
        open_source(clip, start="3.5")
    assert error_line(info.value).startswith("--start 3.5 s is after the end")
    with pytest.raises(InvalidInputError, match="after the end"):
        open_source(clip, start="48f")


@pytest.mark.parametrize("bad", ["abc", "-1", "1:99", "12x"])
def test_bad_time_values(clip, bad):
    with pytest.raises(InvalidOptionError, match="^start must be") as info:
        open_source(clip, start=bad)
    assert error_line(info.value).startswith("--start must be")


def test_end_before_start(clip):
    with pytest.raises(InvalidOptionError, match=r"^end \(0\.5 s\) must come after `start`") as info:
        open_source(clip, start="1.0", end="0.5")
    assert error_line(info.value).startswith("--end (0.5 s) must come after --start (1 s)")


# ------------------------------------------------------------------------------- bad input
def _one_line(err: BaseException) -> str:
    msg = str(err)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError, match="does not exist") as e:
        open_source(tmp_path / "nope.mp4")
    _one_line(e.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(CorruptInputError, match="empty") as e:
        open_source(p)
    _one_line(e.value)


def test_random_bytes(tmp_path):
    p = tmp_path / "random.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptInputError, match="not a readable video") as e:
        open_source(p)
    _one_line(e.value)


def test_audio_only(tmp_path):
    p = make_audio_only(tmp_path / "sound.m4a")
    with pytest.raises(InvalidInputError, match="has no video stream") as e:
        open_source(p)
    assert "audio" in _one_line(e.value)


def test_truncated_with_index_decodes_what_it_can(tmp_path):
    full = make_video(tmp_path / "fs.mp4", frames=60, width=128, height=96, container_options={"movflags": "faststart"})
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    with open_source(cut) as src:
        frames = list(src)
    assert 5 < len(frames) < 60
    assert [frame_id(f.image) for f in frames] == list(range(len(frames)))
    assert len(src.warnings) == 1 and src.warnings[0].startswith("input truncated")


def test_truncated_mkv_warns(tmp_path):
    full = make_video(tmp_path / "full.mkv", frames=60, width=128, height=96)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with open_source(cut) as src:
        n = sum(1 for _ in src)
    assert 5 < n < 60 and src.warnings and "truncated" in src.warnings[0]


def test_truncated_without_index_is_corrupt(tmp_path):
    full = make_video(tmp_path / "plain.mp4", frames=30)  # index (moov) at the end
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInputError) as e:
        open_source(cut)
    _one_line(e.value)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="no images"):
        open_source(tmp_path)


def test_errors_are_vidstyle_errors(tmp_path):
    for spec in [tmp_path / "missing.mov", "lavfi:nonexistentfilter=1"]:
        with pytest.raises(VidstyleError):
            open_source(spec)


def test_close_is_idempotent_and_partial_iteration(clip):
    src = open_source(clip)
    it = iter(src)
    next(it)
    next(it)
    src.close()
    src.close()
    assert os.path.exists(clip)


@pytest.mark.parametrize("start", ["0f", "11f", "12f", "13f", "30f", "59f", "1.0", "2.45"])
def test_seek_lands_on_the_exact_frame(tmp_path_factory, start):
    """Short GOPs with B-frames: the seek goes to a keyframe, decoding forward finds the frame."""
    path = tmp_path_factory.getbasetemp() / "gop.mp4"
    if not path.exists():
        make_video(path, frames=60, fps=24, options={"g": "12", "bf": "3", "keyint_min": "12"})
    with open_source(path, start=start, end="60f") as src:
        ids = [frame_id(f.image) for f in src]
    first = int(start[:-1]) if start.endswith("f") else int(np.ceil(float(start) * 24 - 1e-9))
    assert ids == list(range(first, 60))


def test_missing_camera_is_a_camera_error():
    from av.format import ContainerFormat

    from vidstyle.errors import CameraError

    try:
        ContainerFormat("v4l2", "r")
    except ValueError:
        pytest.skip("this FFmpeg build has no v4l2 input")
    with pytest.raises(CameraError, match="cannot open 'v4l2:/dev/video987'") as e:
        open_source("v4l2:/dev/video987")
    _one_line(e.value)
    assert isinstance(e.value, OSError)


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_audio_longer_than_video_is_not_truncation(tmp_path, ext):
    path = make_video(tmp_path / f"longaudio{ext}", frames=12, fps=24, audio=1, audio_seconds=2.0)
    with open_source(path) as src:
        assert src.info.duration == pytest.approx(0.5) and src.info.frame_count == 12
        assert sum(1 for _ in src) == 12
    assert src.warnings == []
