"""Film formats: lossless round trips of the frame writer (PNG 8/16, TIFF 16, EXR float; EXR half
within its rounding), EXR plates with timecode and rate, gaps in a numbering, ProRes 4444."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from render_helpers import read_frames, shot_image, write_job

from vidstyle.render import load_job, render
from vidstyle.render.chunk import read_frame, write_frame
from vidstyle.render.manifest import RenderLayout, pixels_sha256

#: largest relative error of a value in [2⁻¹⁴, 65504] stored as half float: 2⁻¹¹ (round to nearest)
HALF_REL_ERROR = 2.0**-11


def _layout(tmp_path: Path, ext: str, depth: int, dtype: str) -> RenderLayout:
    return RenderLayout(manifest=str(tmp_path / "m.json"), work=str(tmp_path / "w"),
                        frames=str(tmp_path / f"f.%04d.{ext}"), frames_final=True, bit_depth=depth,
                        work_dtype=dtype, shot_first=1, timecode=None, fps="24")


@pytest.mark.parametrize(
    "ext, depth, dtype",
    [("png", 8, "uint8"), ("png", 16, "uint16"), ("tif", 16, "uint16"), ("tif", 32, "float32"), ("exr", 32, "float32")],
)
def test_frame_round_trips_are_exact(tmp_path: Path, ext: str, depth: int, dtype: str) -> None:
    """Max error 0: what the renderer writes is what it reads back (and what the hash says)."""
    rng = np.random.default_rng(1)
    if dtype == "uint8":
        image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    elif dtype == "uint16":
        image = rng.integers(0, 65536, (17, 23, 3), dtype=np.uint16)
    else:
        image = (rng.random((17, 23, 3), dtype=np.float32) * 4 - 1).astype(np.float32)  # HDR, negatives
    layout = _layout(tmp_path, ext, depth, dtype)
    path = layout.frame_path(7)
    pix = write_frame(path, image, layout=layout, number=7)
    back = read_frame(path, layout=layout)
    assert back.dtype == image.dtype
    assert np.array_equal(back, image)
    assert pix == pixels_sha256(image)
    assert not list(tmp_path.glob("*partial*"))


def test_exr_half_round_trip_within_half_precision(tmp_path: Path) -> None:
    image = (np.random.default_rng(2).random((9, 11, 3), dtype=np.float32) * 8 + 1e-3).astype(np.float32)
    layout = _layout(tmp_path, "exr", 16, "float32")
    write_frame(layout.frame_path(1), image, layout=layout, number=1)
    back = read_frame(layout.frame_path(1), layout=layout)
    rel = np.abs(back - image) / np.abs(image)
    assert rel.max() <= HALF_REL_ERROR
    assert np.array_equal(back, image.astype(np.float16).astype(np.float32))


def test_exr_plates_timecode_rate_and_float_output(tmp_path: Path, tiny_model: Path) -> None:
    """Float EXR plates (values above 1 kept in the input), timecode and rate from the first
    plate's header carried to every output frame."""
    import OpenEXR

    plates = tmp_path / "plates"
    plates.mkdir()
    for i in range(4):
        img = shot_image(i, np.float32) * 1.5  # HDR highlights
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        if i == 0:
            tc = OpenEXR.TimeCode()
            tc.hours, tc.minutes, tc.seconds, tc.frame = 1, 2, 3, 23
            header["timeCode"] = tc
            from fractions import Fraction

            header["framesPerSecond"] = Fraction(25)
        OpenEXR.File(header, {"RGB": np.ascontiguousarray(img)}).write(str(plates / f"sh.{1001 + i:04d}.exr"))
    job = write_job(tmp_path / "job", plates=plates, model=tiny_model, output="out/sh.%04d.exr", bit_depth=32,
                    stabilize=0.0)
    job.write_text(job.read_text().replace("sh.%04d.png", "sh.%04d.exr"))
    render(load_job(job))
    out = tmp_path / "job" / "out"
    with OpenEXR.File(str(out / "sh.1004.exr")) as f:
        header = dict(f.header())
        tc = header["timeCode"]
        assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == (1, 2, 4, 1)  # 01:02:03:23 + 3 frames at 25 fps
        assert header["framesPerSecond"] == 25
        assert f.channels()["RGB"].pixels.dtype == np.float32
    manifest = json.loads((out / "sh.manifest.json").read_text())
    assert manifest["shot"]["bit_depth"] == 32 and manifest["shot"]["timecode"] == "01:02:03:23"
    assert manifest["shot"]["fps"] == "25"


def test_gaps_in_the_numbering_are_kept(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    import shutil

    gappy = tmp_path / "gappy"
    gappy.mkdir()
    for n in [1001, 1002, 1003, 1006, 1007, 1009]:
        shutil.copy(plates / f"sh.{n}.png", gappy / f"sh.{n}.png")
    job = write_job(tmp_path / "job", plates=gappy, model=tiny_model, chunk_frames=3, overlap=1, crossfade=1)
    result = render(load_job(job))
    assert sorted(read_frames(tmp_path / "job" / "out")) == [1001, 1002, 1003, 1006, 1007, 1009]
    assert result.chunks == 2
    manifest = json.loads((tmp_path / "job" / "out" / "sh.manifest.json").read_text())
    assert [c["first"] for c in manifest["chunks"]] == [1001, 1006]
    assert manifest["chunks"][1]["warmup_from"] == 1003


def test_prores_4444(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    from vidstyle.io import open_source

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1003", output="sh.mov", codec="prores",
                    preset="4444", bit_depth=16, stabilize=0.0)
    render(load_job(job))
    with open_source(tmp_path / "sh.mov") as src:
        assert src.info.codec == "prores" and src.info.bit_depth == 16
        assert "444" in (src.info.pix_fmt or "")
    manifest = json.loads((tmp_path / "sh.mov.manifest.json").read_text())
    assert manifest["output"]["encoder"]["options"]["profile"] == "4444"


def test_half_exr_plates_give_half_exr_with_colour_attributes(tmp_path: Path, tiny_model: Path) -> None:
    """Half in, half out by default (the help says: the input's depth), and the header says which
    colour space the frames are in: sRGB-encoded Rec.709 without colour management."""
    import OpenEXR

    plates = tmp_path / "plates"
    plates.mkdir()
    for i in range(3):
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"RGB": np.ascontiguousarray(shot_image(i, np.float32).astype(np.float16))}
                     ).write(str(plates / f"sh.{1001 + i:04d}.exr"))
    job = write_job(tmp_path / "job", plates=plates, model=tiny_model, output="out/sh.%04d.exr", stabilize=0.0)
    job.write_text(job.read_text().replace("sh.%04d.png", "sh.%04d.exr"))
    render(load_job(job))
    with OpenEXR.File(str(tmp_path / "job" / "out" / "sh.1003.exr")) as f:
        header = dict(f.header())
        assert f.channels()["RGB"].pixels.dtype == np.float16
    assert header["chromaticities"] == pytest.approx((0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290))
    assert header["colorInteropID"] == "srgb_rec709_scene"
    assert header["oiio:ColorSpace"] == "sRGB Encoded Rec.709 (sRGB)"
    manifest = json.loads((tmp_path / "job" / "out" / "sh.manifest.json").read_text())
    assert manifest["layout"]["bit_depth"] == 16


def test_prores_render_keeps_the_inputs_colour_tags(tmp_path: Path, tiny_model: Path) -> None:
    import av
    from media import make_video

    src = make_video(tmp_path / "in.mp4", frames=3, colour_tags=(9, 14, 9))
    job = write_job(tmp_path, plates=tmp_path, model=tiny_model, output="sh.mov", stabilize=0.0)
    job.write_text(job.read_text().replace(str(tmp_path / "sh.%04d.png"), str(src)))
    render(load_job(job))
    with av.open(str(tmp_path / "sh.mov")) as c:
        cc = c.streams.video[0].codec_context
        frame = next(c.decode(video=0))
        assert (cc.color_primaries, cc.color_trc, cc.colorspace) == (9, 14, 9)
        assert (frame.color_primaries, frame.color_trc, frame.colorspace) == (9, 14, 9)
