"""Honest colour metadata: video outputs carry the input's primaries and transfer (or the
declared space's) in the stream and in every frame header; EXR outputs carry chromaticities,
the interop ID and the colour-space name; a half-float EXR input gives a half-float output."""

from __future__ import annotations

import av
import numpy as np
import pytest
from media import frame_image, make_video

from vidstyle.colour.spaces import BT709_TAGS, SRGB, ColourSpace, VideoTags
from vidstyle.io import open_sink, open_source

OpenEXR = pytest.importorskip("OpenEXR")

BT2020_PQ = (9, 16, 9)  # primaries BT.2020, transfer SMPTE ST 2084, matrix BT.2020 non-constant


def _copy(src_path, out_path, **sink_kw):
    with open_source(src_path) as src, open_sink(out_path, info=src.info, **sink_kw) as sink:
        for f in src:
            sink.write(f)


def _tags(path):
    """(stream tags, first decoded frame's tags) as (primaries, transfer, matrix)."""
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        frame = next(c.decode(video=0))
        return ((int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace)),
                (int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)))


@pytest.fixture(scope="module")
def tagged_clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("tags") / "pq.mp4", frames=4, colour_tags=BT2020_PQ)


@pytest.mark.parametrize("ext,codec", [(".mov", "prores"), (".mp4", "h264"), (".mkv", "hevc")])
def test_video_outputs_carry_the_inputs_colour_tags(tagged_clip, tmp_path, ext, codec):
    assert _tags(tagged_clip)[0] == BT2020_PQ  # the input really is tagged
    out = tmp_path / f"out{ext}"
    _copy(tagged_clip, out, codec=codec)
    stream, frame = _tags(out)
    assert stream == BT2020_PQ and frame == BT2020_PQ  # prores_ks writes the frame's tags into each frame


@pytest.mark.parametrize("ext,codec", [(".mov", "prores"), (".mp4", "h264")])
def test_untagged_input_gives_bt709_tags_everywhere(tmp_path, ext, codec):
    src = make_video(tmp_path / "plain.mp4", frames=3)
    assert _tags(src)[0][:2] == (2, 2)  # unspecified
    out = tmp_path / f"out{ext}"
    _copy(src, out, codec=codec)
    assert _tags(out) == ((1, 1, 1), (1, 1, 1))


def test_declared_tags_win_over_the_inputs(tagged_clip, tmp_path):
    out = tmp_path / "declared.mov"
    _copy(tagged_clip, out, codec="prores", colour_tags=SRGB.video_tags())
    assert _tags(out) == ((1, 13, 1), (1, 13, 1))  # BT.709 primaries, sRGB transfer, BT.709 matrix
    acescg = tmp_path / "acescg.mov"
    _copy(tagged_clip, acescg, codec="prores", colour_tags=ColourSpace("ACEScg", "lin_ap1_scene").video_tags())
    assert _tags(acescg)[0] == (2, 8, 1)  # AP1 has no H.273 code: unspecified, not a false BT.709; linear


def test_bt2020_matrix_is_applied_not_only_tagged(tmp_path):
    """A BT.2020-matrix output is encoded with that matrix: decoding it gives the pixels back."""
    src = make_video(tmp_path / "c.mkv", frames=2, codec="ffv1", pix_fmt="bgr0")
    with open_source(src) as s:
        original = next(iter(s)).image.astype(np.float32)
    out = tmp_path / "m.mkv"
    _copy(src, out, codec="h264", crf=0, pix_fmt="yuv444p", colour_tags=VideoTags(9, 14, 9))
    with open_source(out) as s:
        back = next(iter(s)).image.astype(np.float32)
    # measured: mean 0.33 levels with the BT.2020 matrix, 1.58 when BT.709 is applied but BT.2020 tagged
    assert np.abs(back - original).mean() < 0.75


def test_colour_space_from_interop_id():
    aces_cg = ColourSpace(name="ACEScg", interop_id="lin_ap1_scene")
    assert aces_cg.linear and aces_cg.chromaticities == pytest.approx(
        (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767))
    assert aces_cg.chromaticities == pytest.approx(OpenEXR.colorInteropIDToChromaticities("lin_ap1_scene"), abs=1e-6)
    assert SRGB.video_tags() == VideoTags(1, 13, 1) and not SRGB.linear
    assert ColourSpace(name="Linear Rec.2020", interop_id="lin_rec2020_scene").video_tags() == VideoTags(9, 8, 9)
    assert ColourSpace(name="ARRI LogC4").chromaticities is None and ColourSpace(name="x").video_tags() is None
    assert VideoTags(2, 2, 2).completed(BT709_TAGS) == BT709_TAGS


def _write_plate(path, image, dtype):
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": np.ascontiguousarray(image.astype(dtype))}).write(str(path))


@pytest.mark.parametrize("dtype,expect", [(np.float16, np.float16), (np.float32, np.float32)])
def test_exr_sequence_keeps_half_and_writes_colour_attributes(tmp_path, dtype, expect):
    plates = tmp_path / "plates"
    plates.mkdir()
    for n in (1, 2):
        _write_plate(plates / f"p.{n:04d}.exr", frame_image(n, 16, 12, dtype=np.float32) * 3, dtype)
    out = tmp_path / "out" / "o.%04d.exr"
    with open_source(plates / "p.%04d.exr") as src:
        assert src.info.half_float == (dtype == np.float16) and src.info.bit_depth == 32
        with open_sink(out, info=src.info) as sink:
            for f in src:
                sink.write(f)
    with OpenEXR.File(str(tmp_path / "out" / "o.0002.exr")) as f:
        header = dict(f.header())
        assert f.channels()["RGB"].pixels.dtype == expect
    assert header["chromaticities"] == pytest.approx((0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290))
    assert header["oiio:ColorSpace"] == SRGB.name and header["colorInteropID"] == "srgb_rec709_scene"
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
