"""Video sinks: timing, audio, codecs, bit depth, odd sizes, safety (temp names, abort, overwrite)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from media import audio_onsets, frame_id, frame_image, make_video, probe

from vidstyle.cli.common import error_line
from vidstyle.errors import InvalidOptionError, OutputError, OutputExistsError, ShapeError
from vidstyle.frame import Frame
from vidstyle.io import SourceInfo, open_sink, open_source, temp_path_for


def copy(src_path, out_path, *, start=None, end=None, audio=True, **sink_kw):
    """Read ``src_path`` and write it to ``out_path`` (the pipeline's job, without stages)."""
    with open_source(src_path, start=start, end=end) as src:
        with open_sink(out_path, info=src.info, audio_from=src_path if audio else None, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return sink


def info_for(width=64, height=48, fps=24, path="memory", bit_depth=8, start_time=0.0):
    return SourceInfo(
        kind="video",
        path=str(path),
        width=width,
        height=height,
        fps=Fraction(fps),
        time_base=1 / Fraction(fps),
        frame_count=None,
        duration=None,
        bit_depth=bit_depth,
        rotation=0,
        audio_streams=0,
        start_time=start_time,
        first_number=None,
    )


@pytest.fixture(scope="module")
def av_clip(tmp_path_factory):
    """2 s, 24 fps, 64×48 H.264 with two audio streams (stereo AAC + mono AAC)."""
    return make_video(tmp_path_factory.mktemp("sink") / "clip.mp4", frames=48, fps=24, audio=2)


# ------------------------------------------------------------------------------- timing + audio
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_passthrough_keeps_frames_fps_duration_and_all_audio(av_clip, tmp_path, ext):
    out = tmp_path / f"out{ext}"
    sink = copy(av_clip, out)
    assert sink.final_path == out and out.exists() and not temp_path_for(out).exists()
    src, dst = probe(av_clip), probe(out)
    assert dst["frames"] == 48 and dst["fps"] == 24 and dst["size"] == (64, 48)
    assert dst["duration"] == pytest.approx(2.0, abs=1e-3)  # mkv stores milliseconds
    assert len(dst["audio"]) == 2
    for a_in, a_out in zip(src["audio"], dst["audio"]):
        assert a_out["codec"] == "aac"  # copied
        assert abs(a_out["duration"] - dst["duration"]) <= 1 / 24
        assert abs(a_out["duration"] - a_in["duration"]) <= 1 / 24
    with av.open(str(out)) as c:  # the audio packets are copied, not re-encoded
        assert c.streams.audio[0].codec_context.channels == 2 and c.streams.audio[1].codec_context.channels == 1
    assert sink.warnings == []


def test_pts_and_time_base_kept_for_vfr(tmp_path):
    tb = Fraction(1, 1000)
    pts = [0, 40, 70, 150, 160, 300, 310, 420, 600, 633]
    src_path = make_video(tmp_path / "vfr.mov", frames=len(pts), pts=pts, time_base=tb, fps=Fraction(50, 3))
    for ext in (".mov", ".mkv", ".mp4"):
        out = copy(src_path, tmp_path / f"out{ext}").final_path
        p = probe(out)
        assert [x * p["time_base"] for x in p["pts"]] == [x * tb for x in pts], ext
    # the time base itself is kept where the container allows (Matroska always counts milliseconds)
    src_tb = probe(src_path)["time_base"]
    assert probe(tmp_path / "out.mov")["time_base"] == src_tb and probe(tmp_path / "out.mp4")["time_base"] == src_tb


def _audio_packets(path, n=3):
    with av.open(str(path)) as c:
        return [(p.pts, p.duration, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.pts is not None][:n]


def _decoded_audio(path):
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_stream_copy_keeps_the_aac_priming_packet(av_clip, tmp_path, ext):
    # PyAV's AAC encoder writes a priming packet at pts -1024 (hidden by the MP4 edit list); dropping
    # it made the first 1024 decoded samples differ from the input's
    src_packets = _audio_packets(av_clip)
    assert src_packets[0][0] == -1024  # the synthetic track has one, or the test proves nothing
    out = copy(av_clip, tmp_path / f"primed{ext}").final_path
    assert _audio_packets(out) == src_packets  # same first packets: times, durations, bytes
    a, b = _decoded_audio(av_clip), _decoded_audio(out)
    assert a.shape[1] >= 2048 and np.array_equal(a[:, :2048], b[:, :2048])
    assert b.shape == a.shape


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_start_end_trims_audio_in_sync(tmp_path, ext):
    # audio bursts at known times: after trimming they must move with the video
    bursts = [(0.25, 0.35), (1.0, 1.1), (1.5, 1.6)]
    src_path = make_video(tmp_path / "b.mkv", frames=48, fps=24, audio=1, bursts=bursts)
    out = tmp_path / f"trim{ext}"
    copy(src_path, out, start="0.75", end="1.75")
    p = probe(out)
    assert p["frames"] == 24 and [frame_id(f.image) for f in open_source(out)] == list(range(18, 42))
    assert abs(p["audio"][0]["duration"] - p["duration"]) <= 1 / 24
    onsets = audio_onsets(out)
    assert onsets == pytest.approx([0.25, 0.75], abs=1 / 24)


def test_frame_selection_trims_audio(av_clip, tmp_path):
    out = tmp_path / "f.mkv"
    copy(av_clip, out, start="12f", end="36f")
    p = probe(out)
    assert p["frames"] == 24 and p["duration"] == pytest.approx(1.0, abs=1e-3)
    for a in p["audio"]:
        assert abs(a["duration"] - 1.0) <= 1 / 24


@pytest.mark.parametrize(
    "audio_codec,ext,expect",
    [("pcm_s16le", ".mp4", "aac"), ("pcm_s16le", ".mov", "pcm_s16le"), ("aac", ".webm", "opus")],
)
def test_audio_reencoded_where_the_container_needs_it(tmp_path, audio_codec, ext, expect):
    src_path = make_video(tmp_path / "pcm.mkv", frames=24, fps=24, audio=1, audio_codec=audio_codec)
    out = tmp_path / f"out{ext}"
    copy(src_path, out, codec="vp9" if ext == ".webm" else "h264")
    p = probe(out)
    assert p["audio"][0]["codec"] == expect
    assert abs(p["audio"][0]["duration"] - 1.0) <= 1 / 24 + 0.01


def test_no_audio_when_not_asked(av_clip, tmp_path):
    out = copy(av_clip, tmp_path / "silent.mp4", audio=False).final_path
    assert probe(out)["audio"] == []


def test_longer_audio_is_cut_to_the_video(tmp_path):
    src_path = make_video(tmp_path / "long.mkv", frames=12, fps=24, audio=1, audio_seconds=2.0)
    p = probe(copy(src_path, tmp_path / "o.mp4").final_path)
    assert abs(p["audio"][0]["duration"] - 0.5) <= 1 / 24


# ------------------------------------------------------------------------------- codecs
CODEC_CASES = [
    ("h264", ".mp4", {}, "yuv420p", 4.0),
    ("hevc", ".mp4", {}, "yuv420p", 4.0),
    ("prores", ".mov", {}, "yuv422p10le", 2.0),
    ("prores", ".mov", {"pix_fmt": "yuv444p10le"}, "yuv444p12le", 2.0),  # decoders report 4444 as 12-bit
    ("ffv1", ".mkv", {}, "bgr0", 0.0),
    ("vp9", ".webm", {}, "yuv420p", 5.0),
    ("av1", ".mkv", {}, "yuv420p", 5.0),
    ("h264", ".mkv", {"crf": 0, "preset": "ultrafast", "pix_fmt": "yuv444p"}, "yuv444p", 1.0),
]


@pytest.mark.parametrize("codec,ext,kw,pix_fmt,tol", CODEC_CASES)
def test_codecs(tmp_path, codec, ext, kw, pix_fmt, tol):
    out = tmp_path / f"c{ext}"
    with open_sink(out, info=info_for(), codec=codec, **kw) as sink:
        for i in range(6):
            sink.write(Frame(index=i, image=frame_image(i), pts=i, time_base=Fraction(1, 24)))
    p = probe(out)
    assert p["frames"] == 6 and p["pix_fmt"] == pix_fmt and p["size"] == (64, 48)
    assert p["duration"] == pytest.approx(0.25, abs=1e-3)
    with open_source(out) as src:
        frames = list(src)
    assert [frame_id(f.image) for f in frames] == list(range(6))
    scale = 257.0 if frames[0].image.dtype == np.uint16 else 1.0
    err = np.mean([np.abs(f.image / scale - frame_image(i)).mean() for i, f in enumerate(frames)])
    assert err <= tol + 1e-9


def test_sixteen_bit_frames_are_not_quantised(tmp_path):
    frames16 = [frame_image(i, dtype=np.uint16) + np.uint16(i * 3 + 1) for i in range(4)]  # not 8-bit values
    out = tmp_path / "hi.mkv"
    with open_sink(out, info=info_for(bit_depth=16), codec="ffv1", bit_depth=16) as sink:
        for i, img in enumerate(frames16):
            sink.write(Frame(index=i, image=img, pts=i, time_base=Fraction(1, 24)))
    with open_source(out) as src:
        assert src.info.bit_depth == 16
        back = [f.image for f in src]
    for a, b in zip(frames16, back):
        np.testing.assert_array_equal(a, b)  # ffv1 gbrp16le: bit-exact


def test_prores_keeps_ten_bits(tmp_path):
    img = frame_image(0, dtype=np.uint16)
    ramp = (np.linspace(20000, 20000 + 64 * 64, 64)).astype(np.uint16)  # steps of 64/65535: finer than 8 bits
    img[24:, :, :] = ramp[None, :, None]
    out = tmp_path / "p.mov"
    with open_sink(out, info=info_for(bit_depth=16), codec="prores") as sink:
        sink.write(Frame(index=0, image=img, pts=0, time_base=Fraction(1, 24)))
    back = next(iter(open_source(out))).image.astype(float)
    row = back[36, 4:-4, 1]
    assert len(np.unique(np.round(row / 257))) < len(np.unique(np.round(row / 64)))  # more levels than 8-bit
    assert np.abs(back[30:44, 4:-4] - img[30:44, 4:-4]).mean() < 80  # ~1/800 of full scale


def test_float_frames(tmp_path):
    out = tmp_path / "f.mkv"
    with open_sink(out, info=info_for(), codec="ffv1") as sink:
        sink.write(Frame(index=0, image=frame_image(0).astype(np.float32) / 255, pts=0, time_base=Fraction(1, 24)))
    np.testing.assert_array_equal(next(iter(open_source(out))).image, frame_image(0))


@pytest.mark.parametrize("size", [(321, 239), (65, 47)])
def test_odd_sizes_are_padded(tmp_path, size):
    w, h = size
    out = tmp_path / "odd.mp4"
    with open_sink(out, info=info_for(w, h)) as sink:
        for i in range(3):
            sink.write(Frame(index=i, image=frame_image(i, w, h), pts=i, time_base=Fraction(1, 24)))
    p = probe(out)
    assert p["frames"] == 3 and p["size"] == (w + w % 2, h + h % 2)
    img = next(iter(open_source(out))).image
    assert np.abs(img[:h, :w].astype(int) - frame_image(0, w, h)).mean() < 4
    np.testing.assert_allclose(img[:h, -1].astype(int), img[:h, -2].astype(int), atol=12)  # replicated column


def test_odd_size_rgb_codec_not_padded(tmp_path):
    out = tmp_path / "odd.mkv"
    with open_sink(out, info=info_for(65, 47), codec="ffv1") as sink:
        sink.write(Frame(index=0, image=frame_image(0, 65, 47), pts=0, time_base=Fraction(1, 24)))
    assert probe(out)["size"] == (65, 47)


def test_frames_without_pts_use_index_at_fps(tmp_path):
    out = tmp_path / "nopts.mp4"
    with open_sink(out, info=info_for(fps=Fraction(30000, 1001))) as sink:
        for i in range(5):
            sink.write(Frame(index=i, image=frame_image(i)))
    p = probe(out)
    assert [x * p["time_base"] for x in p["pts"]] == [Fraction(1001, 30000) * i for i in range(5)]


def test_timecode_carried(tmp_path):
    src_path = make_video(tmp_path / "tc.mov", frames=24, fps=24)
    with av.open(str(src_path)) as c:
        assert "timecode" not in c.streams.video[0].metadata
    info = info_for()
    info = SourceInfo(**{**{f: getattr(info, f) for f in info.__slots__}, "timecode": "01:00:00:00"})
    out = tmp_path / "tc_out.mov"
    with open_sink(out, info=info) as sink:
        sink.write(Frame(index=0, image=frame_image(0), pts=0, time_base=Fraction(1, 24)))
    with open_source(out) as src:
        assert src.info.timecode == "01:00:00:00"


# ------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "name,kw,match",
    [
        ("a.mp4", {"codec": "prores"}, r"prores cannot be written into \.mp4 files; use \.mov or \.mkv"),
        ("a.mov", {"codec": "ffv1"}, r"ffv1 cannot be written into \.mov files; use \.mp4 or \.mkv"),
        ("a.webm", {"codec": "h264"}, r"h264 cannot be written into \.webm"),
        ("a.mp4", {"codec": "divx"}, "unknown codec"),
        ("a.mp4", {"crf": 60}, r"^crf must be 0 \(best\) to 51 \(smallest\) for h264, got 60"),
        ("a.mkv", {"codec": "ffv1", "crf": 10}, "^crf does not apply to ffv1"),
        ("a.mp4", {"pix_fmt": "rgb24"}, "does not take pixel format"),
        ("a.mp4", {"preset": "ludicrous"}, "^preset must be one of ultrafast.* for h264, got 'ludicrous'"),
        ("a.mov", {"codec": "prores", "preset": "4444", "pix_fmt": "yuv422p10le"}, "needs pixel format yuv444p10le"),
        ("a.webm", {"codec": "vp9", "bit_depth": 16}, "above 8 bits"),
        ("a.xyz", {}, "unknown output type"),
        ("a.png", {}, "needs a frame-number pattern"),
    ],
)
def test_bad_options(tmp_path, name, kw, match):
    with pytest.raises(InvalidOptionError, match=match):
        open_sink(tmp_path / name, info=info_for(), **kw)
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape(tmp_path):
    sink = open_sink(tmp_path / "x.mp4", info=info_for())
    sink.write(Frame(index=0, image=frame_image(0)))
    with pytest.raises(ShapeError, match="frame 1 is 32x48"):
        sink.write(Frame(index=1, image=frame_image(1)[:, :32]))
    with pytest.raises(ShapeError):
        sink.write(Frame(index=2, image=np.zeros((48, 64), np.uint8)))
    sink.close()


# ------------------------------------------------------------------------------- safety
def test_temp_name_until_close(tmp_path):
    out = tmp_path / "clip.mp4"
    sink = open_sink(out, info=info_for())
    assert sink.temp_path == tmp_path / "clip.partial.mp4"
    sink.write(Frame(index=0, image=frame_image(0), pts=0, time_base=Fraction(1, 24)))
    assert sink.temp_path.exists() and not out.exists()
    assert sink.close() == out
    assert out.exists() and not sink.temp_path.exists()


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_abort_leaves_a_playable_partial_file(av_clip, tmp_path, ext):
    out = tmp_path / f"stopped{ext}"
    with pytest.raises(RuntimeError, match="boom"):
        with open_source(av_clip) as src:
            with open_sink(out, info=src.info, audio_from=av_clip) as sink:
                for f in src:
                    if f.index == 20:
                        raise RuntimeError("boom")
                    sink.write(f)
    assert not out.exists()
    partial = temp_path_for(out)
    assert partial.exists()
    p = probe(partial)
    assert p["frames"] == 20  # every written frame is in it: the encoder was flushed
    assert [frame_id(f.image) for f in open_source(partial)] == list(range(20))
    assert all(abs(a["duration"] - p["duration"]) <= 1 / 24 for a in p["audio"]) and len(p["audio"]) == 2


def test_abort_without_frames_leaves_nothing(tmp_path):
    sink = open_sink(tmp_path / "x.mp4", info=info_for())
    assert sink.abort() is None
    assert list(tmp_path.iterdir()) == []


def test_close_without_frames_is_an_error(tmp_path):
    sink = open_sink(tmp_path / "x.mp4", info=info_for())
    with pytest.raises(OutputError, match="no frames"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


def test_overwrite_protection(av_clip, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="pass `overwrite`") as info:
        open_sink(out, info=info_for())
    assert "pass --overwrite" in error_line(info.value)
    assert out.read_bytes() == b"precious"
    copy(av_clip, out, overwrite=True)
    assert probe(out)["frames"] == 48


def test_output_is_input(av_clip):
    with pytest.raises(OutputError, match="is the input"):
        open_sink(av_clip, info=info_for(path=av_clip), overwrite=True)


def test_missing_output_folder(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        open_sink(tmp_path / "nope" / "x.mp4", info=info_for())


def test_null_sink():
    sink = open_sink("null:", info=info_for())
    with sink:
        for i in range(3):
            sink.write(Frame(index=i, image=frame_image(i)))
    assert sink.frames_written == 3


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_small_time_base_kept_in_mp4_and_mov(tmp_path, ext):
    info = SourceInfo(**{**{f: getattr(info_for(), f) for f in SourceInfo.__slots__}, "time_base": Fraction(1, 1000)})
    out = tmp_path / f"ms{ext}"
    with open_sink(out, info=info) as sink:
        for i, t in enumerate([0, 40, 90, 125]):
            sink.write(Frame(index=i, image=frame_image(i), pts=t, time_base=Fraction(1, 1000)))
    p = probe(out)
    assert p["time_base"] == Fraction(1, 1000) and p["pts"] == [0, 40, 90, 125]


def test_timecode_follows_the_start_selection(tmp_path):
    from vidstyle.io.video import offset_timecode

    assert offset_timecode("01:00:00:00", 30, Fraction(24)) == "01:00:01:06"
    assert offset_timecode("00:59:59:23", 1, Fraction(24)) == "01:00:00:00"
    assert offset_timecode("01:00:00;00", 0, Fraction(30000, 1001)) == "01:00:00;00"
    info = SourceInfo(**{**{f: getattr(info_for(), f) for f in SourceInfo.__slots__}, "timecode": "10:00:00:00"})
    tc_clip = tmp_path / "tc.mov"
    with open_sink(tc_clip, info=info) as sink:
        for i in range(30):
            sink.write(Frame(index=i, image=frame_image(i), pts=i, time_base=Fraction(1, 24)))
    with open_source(tc_clip, start="12f") as src:
        assert src.info.timecode == "10:00:00:12"
