"""Partial outputs that play however a run ends (kill, full disk), and MP4/MOV files remuxed from
them with exactly the timestamps and codec parameters of a direct write (vidstyle.io.remux)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import frame_id, frame_image, make_video

from vidstyle.errors import OutputError, OutputExistsError
from vidstyle.frame import Frame
from vidstyle.io import SourceInfo, check_output, open_sink, open_source, temp_path_for
from vidstyle.io import remux as remux_module

REPO = Path(__file__).resolve().parents[2]


def copy(src_path, out_path, **sink_kw):
    with open_source(src_path) as src:
        with open_sink(out_path, info=src.info, audio_from=src_path, overwrite=True, **sink_kw) as sink:
            for f in src:
                sink.write(f)
    return sink


def packets(path) -> dict[int, list[tuple]]:
    """Every packet's (pts, dts, duration) as exact fractions of a second, per stream, in file order."""
    out: dict[int, list[tuple]] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size:
                tb = p.time_base
                out.setdefault(p.stream.index, []).append(
                    (p.pts * tb if p.pts is not None else None, p.dts * tb if p.dts is not None else None,
                     p.duration * tb))
    return out


def streams(path) -> list[dict]:
    with av.open(str(path)) as c:
        result = []
        for s in c.streams:
            cc = s.codec_context
            d = {"type": s.type, "codec": cc.name, "tag": s.codec_tag, "time_base": s.time_base,
                 "extradata": bytes(cc.extradata or b"")}
            if s.type == "video":
                d.update(pix_fmt=cc.pix_fmt, profile=cc.profile, colorspace=cc.colorspace, range=cc.color_range,
                         size=(cc.width, cc.height), rate=s.average_rate)
            else:
                d.update(rate=cc.sample_rate, channels=cc.channels)
            result.append(d)
        return result


def decoded(path) -> list[tuple]:
    with av.open(str(path)) as c:
        return [(f.pts, f.format.name, [bytes(p) for p in f.planes]) for f in c.decode(video=0)]


# ------------------------------------------------------------------------------- remux == direct write
CASES = {
    # B-frames (x264 medium): negative dts, an edit list; AAC copied; a 1/90000 time base
    "h264-bframes-mp4": dict(src=dict(frames=30, fps=25, audio=1, time_base=Fraction(1, 90000)), ext=".mp4", kw={}),
    # NTSC rate: 1001/30000 s per frame, which Matroska's milliseconds cannot hold
    "h264-ntsc-mov": dict(src=dict(frames=30, fps=Fraction(30000, 1001), audio=2), ext=".mov", kw={}),
    # variable frame rate with irregular gaps; PCM audio re-encoded to AAC for MP4
    "h264-vfr-mp4": dict(src=dict(frames=10, pts=[0, 40, 70, 150, 160, 300, 310, 420, 600, 633],
                                  time_base=Fraction(1, 1000), fps=Fraction(50, 3), audio=1,
                                  audio_codec="pcm_s16le"), ext=".mp4", kw={}),
    "prores4444-mov": dict(src=dict(frames=8, fps=24, audio=1), ext=".mov", kw=dict(codec="prores", pix_fmt="yuv444p10le")),
    "hevc-mp4": dict(src=dict(frames=12, fps=24), ext=".mp4", kw=dict(codec="hevc", preset="ultrafast")),
    "ffv1-mp4": dict(src=dict(frames=6, fps=24), ext=".mp4", kw=dict(codec="ffv1")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_remuxed_file_equals_a_direct_write(tmp_path, case, monkeypatch):
    c = CASES[case]
    src = make_video(tmp_path / "src.mkv" if "pts" not in c["src"] else tmp_path / "src.mov", **c["src"])
    direct = copy(src, tmp_path / f"direct{c['ext']}", playable_partial=False, **c["kw"]).final_path
    real = remux_module.remux
    kept = tmp_path / "partial_seen.mkv"

    def remux_keeping_the_partial(partial, dst, **kw):  # the Matroska partial, as complete as it gets
        kept.write_bytes(Path(partial).read_bytes())
        return real(partial, dst, **kw)

    monkeypatch.setattr("vidstyle.io.encode.remux", remux_keeping_the_partial)
    sink = copy(src, tmp_path / f"remuxed{c['ext']}", **c["kw"])
    assert sink.temp_path.suffix == ".mkv"
    remuxed = sink.final_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["src" + src.suffix, direct.name, remuxed.name, kept.name])
    # the remux copies every packet: the same pictures as the partial, bit for bit
    assert [f[1:] for f in decoded(remuxed)] == [f[1:] for f in decoded(kept)]  # (timestamps: compared below)
    with av.open(str(remuxed)) as a, av.open(str(kept)) as b:
        assert [bytes(p) for p in a.demux(video=0) if p.size] == [bytes(p) for p in b.demux(video=0) if p.size]
    # the same packets at the same exact times: first pts, B-frame dts, durations, audio
    pd, pr = packets(direct), packets(remuxed)
    assert pr == pd
    assert pr[0][0][0] == 0  # the first frame is shown at 0
    if case.startswith("h264"):  # B-frames: the encoder delay that shifted a fragmented-MP4 attempt
        assert pr[0][0][1] < 0
    if len(pd) > 1:  # audio too, from its first packet
        assert pr[1][0] == pd[1][0]
    # the same codec parameters (pixel format, profile, fourcc, colour, time bases, rates)
    assert streams(remuxed) == streams(direct)
    # and the same pictures as the direct write, up to the encoder: x264 and x265 with several threads
    # need not give the same bits twice, so the two encodes are compared as pictures
    a, b = decoded(remuxed), decoded(direct)
    assert [f[0] for f in a] == [f[0] for f in b]
    deep = a[0][1].endswith("le")  # 10/16-bit planes: two bytes a sample
    dtype, tolerance = (np.uint16, 12.0) if deep else (np.uint8, 3.0)
    diff = [np.abs(np.frombuffer(x[2][0], dtype).astype(int) - np.frombuffer(y[2][0], dtype)).mean()
            for x, y in zip(a, b)]
    assert max(diff) < tolerance, diff


def test_remux_refuses_a_partial_that_does_not_match_the_record(tmp_path, monkeypatch):
    src = make_video(tmp_path / "src.mkv", frames=6, fps=24)
    real = remux_module.remux

    def one_packet_fewer(src_path, dst, *, times, **kw):  # the record lost a packet
        return real(src_path, dst, times={i: list(t)[:-1] for i, t in times.items()}, **kw)

    monkeypatch.setattr("vidstyle.io.encode.remux", one_packet_fewer)
    with pytest.raises(OutputError, match=r"it is kept, playable, at '.*o\.partial\.mkv'") as info:
        copy(src, tmp_path / "o.mp4")
    assert "more packets than were written" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.partial.mkv", "src.mkv"]
    assert len(decoded(tmp_path / "o.partial.mkv")) == 6


def test_full_disk_while_remuxing_keeps_the_complete_partial(tmp_path, monkeypatch):
    src = make_video(tmp_path / "src.mkv", frames=6, fps=24, audio=1)

    def disk_full(*args, **kwargs):
        Path(args[1]).write_bytes(b"half an mp4")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vidstyle.io.encode.remux", disk_full)
    with pytest.raises(OutputError) as info:
        copy(src, tmp_path / "o.mp4")
    message = str(info.value)
    assert "No space left on device; free some disk space" in message
    assert "it is kept, playable, at" in message and "o.partial.mkv" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.partial.mkv", "src.mkv"]  # no half mp4
    assert [frame_id(f.image) for f in open_source(tmp_path / "o.partial.mkv")] == list(range(6))


def test_temp_names_of_a_remuxed_output(tmp_path):
    out = tmp_path / "clip.mp4"
    assert temp_path_for(out) == tmp_path / "clip.partial.mkv"
    assert temp_path_for(out, playable=False) == tmp_path / "clip.partial.mp4"
    assert temp_path_for(tmp_path / "a.MOV") == tmp_path / "a.partial.mkv"
    assert temp_path_for(tmp_path / "a.webm") == tmp_path / "a.partial.webm"  # plays when cut: written directly
    assert temp_path_for(tmp_path / "a.avi") == tmp_path / "a.partial.avi"
    info = SourceInfo(kind="video", path="memory", width=64, height=48, fps=Fraction(24), time_base=Fraction(1, 24),
                      frame_count=None, duration=None, bit_depth=8, rotation=0, audio_streams=0, start_time=0.0,
                      first_number=None)
    sink = open_sink(out, info=info)
    sink.write(Frame(index=0, image=frame_image(0), pts=0, time_base=Fraction(1, 24)))
    assert sink.temp_path.exists() and not out.exists()
    assert sink.close() == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize("leftover", ["o.partial.mkv", "o.partial.mp4"])
def test_a_rerun_refuses_either_partial_name(tmp_path, leftover):
    (tmp_path / leftover).write_bytes(b"an interrupted run's frames")
    with pytest.raises(OutputExistsError, match=f"'{tmp_path / leftover}' is the partial output"):
        check_output(tmp_path / "o.mp4", input_spec=None, overwrite=False)
    check_output(tmp_path / "o.mp4", input_spec=None, overwrite=True)


# ------------------------------------------------------------------------------- abrupt ends
_WRITER = textwrap.dedent("""
    import sys, time
    from fractions import Fraction
    import numpy as np
    sys.path.insert(0, {tests!r})
    from media import frame_image
    from vidstyle.frame import Frame
    from vidstyle.io import SourceInfo, open_sink
    info = SourceInfo(kind="video", path="memory", width=160, height=120, fps=Fraction(24), time_base=Fraction(1, 24),
                      frame_count=None, duration=None, bit_depth=8, rotation=0, audio_streams=0, start_time=0.0,
                      first_number=None)
    sink = open_sink({out!r}, info=info, playable_partial={playable!r}, preset="ultrafast")
    noise = np.random.default_rng(0).integers(0, 24, (120, 160, 3), dtype=np.uint8)  # bulk: data reaches the disk
    for i in range(100000):
        image = frame_image(i % 200, 160, 120) + np.roll(noise, i, axis=1)
        sink.write(Frame(index=i, image=image, pts=i, time_base=Fraction(1, 24)))
        if i == 400:
            print("written", flush=True)
        if i >= 400:
            time.sleep(0.002)
""")


def _kill_writer(tmp_path: Path, *, playable: bool) -> Path:
    out = tmp_path / "killed.mp4"
    code = _WRITER.format(tests=str(REPO / "tests"), out=str(out), playable=playable)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)  # no flush, no trailer, no Python clean-up
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    return temp_path_for(out, playable=playable)


def test_sigkill_leaves_a_partial_that_plays(tmp_path):
    partial = _kill_writer(tmp_path, playable=True)
    with av.open(str(partial)) as c:  # decodes from the first frame on, without an error
        ids = [frame_id(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    assert len(ids) > 100 and ids[:200] == list(range(200))[: len(ids[:200])]


def test_sigkill_of_a_direct_mp4_write_leaves_nothing_playable(tmp_path):
    """The control: why partials are Matroska. An MP4 cut before its index does not open."""
    partial = _kill_writer(tmp_path, playable=False)
    assert partial.stat().st_size > 100_000
    assert remux_module.unplayable_reason(partial) is not None


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    from vidstyle.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def _stylize_with_a_small_disk(tmp_path: Path, model: Path, limit: int) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "o.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VIDSTYLE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK.format(limit=limit), "stylize",
         "lavfi:testsrc2=size=96x64:rate=25:duration=40,noise=alls=60:allf=t",
         "-o", str(out), "--model", str(model), "--stabilize", "0", "--preset", "ultrafast", "-q"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    return proc, out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("m") / "rand_tiny.safetensors", net=TransformerNet(config="tiny"),
                      name="rand_tiny", style="noise")


def test_full_disk_mid_encode_keeps_a_partial_that_plays(tmp_path, tiny_model):
    proc, out = _stylize_with_a_small_disk(tmp_path, tiny_model, limit=60_000)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("vidstyle: error: ")]
    assert len(errors) == 1 and "File too large; free some disk space" in errors[0], err
    assert "codec options" not in err
    partial = temp_path_for(out)
    assert f"partial output kept at {partial} (it plays)" in err
    assert not out.exists() and partial.exists()
    with av.open(str(partial)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0


def test_a_partial_that_does_not_play_is_removed_and_said(tmp_path, tiny_model, capsys, monkeypatch):
    """The disk is full from the first packet on: the partial holds a header and no frame."""
    from vidstyle.cli.main import main

    def disk_full(self, packet):
        av.error.err_check(-errno.ENOSPC)

    monkeypatch.setattr(remux_module.PacketLog, "mux", disk_full)
    out = tmp_path / "o.mp4"
    for frames, where, lost in [
        # the encoder still holds every frame when the clip ends: the first packet comes while finishing
        (8, "finishing", "; the partial file does not play (it holds no complete frame), so it was removed"),
        # the first packet comes mid-run: the pipeline stops and the sink says why no partial is kept
        (40, "encoding frame", f"\nvidstyle: the partial output '{temp_path_for(out)}' does not play "
                               "(it holds no complete frame), so it was removed"),
    ]:
        code = main(["stylize", f"lavfi:testsrc2=size=96x64:rate=25,trim=end_frame={frames}", "-o", str(out),
                     "--model", str(tiny_model), "--stabilize", "0", "-q", "--preset", "veryfast"])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        assert err.startswith(f"vidstyle: error: {where}") and "No space left on device; free some" in err, err
        assert err.rstrip().endswith(lost) and err.count("\n") == 1 + lost.count("\n"), err
        assert "kept" not in err
        assert list(tmp_path.iterdir()) == []
