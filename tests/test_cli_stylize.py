"""``vidstyle stylize`` / ``vidstyle models`` and ``vidstyle.stylize_video`` end to end on tiny clips.

Every bad input of issue 2 must give one ``vidstyle: error: ...`` line naming the problem and the
remedy, exit code 1, no traceback, and nothing under the final output name.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from vidstyle.cli.main import main

REPO = Path(__file__).resolve().parents[1]
FPS = 12
N_FRAMES = 12
W, H = 64, 48


# ------------------------------------------------------------------------------------------------
# media and model fixtures (made in tmp, tiny)
# ------------------------------------------------------------------------------------------------
def _write_clip(path: Path, *, frames: int = N_FRAMES, video: bool = True, audio: bool = True,
                faststart: bool = False, width: int = W, height: int = H) -> Path:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        vs = None
        if video:
            vs = c.add_stream("libx264", rate=FPS)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.options = {"preset": "ultrafast"}
        aus = None
        if audio:
            aus = c.add_stream("aac", rate=22050)
            aus.layout = "mono"
        if vs is not None:
            yy, xx = np.mgrid[0:height, 0:width]
            for i in range(frames):
                img = np.stack([(xx * 4 + i * 8) % 256, (yy * 5) % 256, np.full_like(xx, (i * 20) % 256)], -1)
                frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, FPS)
                for p in vs.encode(frame):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if aus is not None:
            n = int(22050 * frames / FPS)
            t = np.arange(n) / 22050.0
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, n, 1024):
                chunk = samples[k:k + 1024][None, :]
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = 22050
                af.pts = k
                af.time_base = Fraction(1, 22050)
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode():
                c.mux(p)
    return path


def _probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(v)]
        info = {
            "frames": len(frames),
            "size": (frames[0].width, frames[0].height) if frames else None,
            "fps": float(v.average_rate) if v.average_rate else None,
            "audio": len(c.streams.audio),
        }
    if info["audio"]:
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            end = 0.0
            for pkt in c.demux(a):
                if pkt.pts is not None and pkt.duration:
                    end = max(end, float((pkt.pts + pkt.duration) * a.time_base))
            info["audio_seconds"] = end
    return info


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    clip = _write_clip(d / "clip.mp4")
    long = _write_clip(d / "long.mp4", frames=60, audio=False, faststart=True)
    truncated = d / "truncated.mp4"
    data = long.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    audio_only = _write_clip(d / "audio_only.mp4", video=False)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    noise = d / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return {"clip": clip, "long": long, "truncated": truncated, "audio_only": audio_only, "empty": empty,
            "noise": noise}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import pickle

    import torch
    from safetensors.torch import save_file

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    good = save_model(d / "rand_tiny.safetensors", net=TransformerNet(config="tiny"), name="rand_tiny",
                      style="noise")
    wrong = d / "wrong.safetensors"
    save_file({"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}, str(wrong))
    pickled = d / "model.pt"
    with open(pickled, "wb") as f:
        pickle.dump({"state_dict": {"w": [1, 2, 3]}}, f)
    pickled_named = d / "sneaky.safetensors"
    pickled_named.write_bytes(pickled.read_bytes())
    return {"good": good, "wrong": wrong, "pickle": pickled, "pickle_named": pickled_named}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("vidstyle: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


# ------------------------------------------------------------------------------------------------
# success
# ------------------------------------------------------------------------------------------------
def test_stylize_clip_keeps_frames_fps_size_and_audio(capsys, media, models, tmp_path):
    out = tmp_path / "styled.mp4"
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]),
                        "--stabilize", "0")
    assert code == 0, err
    assert "Traceback" not in err
    assert f"wrote {out}" in err
    src, dst = _probe(media["clip"]), _probe(out)
    assert dst["frames"] == src["frames"] == N_FRAMES
    assert dst["size"] == (W, H)
    assert dst["fps"] == pytest.approx(FPS)
    assert dst["audio"] == 1
    assert dst["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=1.0 / FPS)
    assert [p.name for p in tmp_path.iterdir()] == ["styled.mp4"]  # no temporary left behind


def test_api_stylize_video_returns_stats_and_calls_progress(media, models, tmp_path):
    import vidstyle

    seen = []
    stats = vidstyle.stylize_video(media["clip"], tmp_path / "o.mkv", model=models["good"], stabilize=0.0,
                                   crf=30, preset="ultrafast", progress=seen.append)
    assert stats.frames == N_FRAMES and stats.output == tmp_path / "o.mkv"
    assert [p.frames for p in seen] == list(range(1, N_FRAMES + 1))
    assert set(stats.busy) >= {"source", "stylize", "sink"}
    assert _probe(tmp_path / "o.mkv")["frames"] == N_FRAMES


DEVICES = ["cpu"] + (["cuda"] if __import__("torch").cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_stylized_frames_really_come_from_the_model(media, models, tmp_path, device):
    """What the stylize stage puts in ``frame.stylized`` is the model applied to the decoded frame."""
    import torch

    import vidstyle
    from vidstyle.nets.registry import load_model
    from vidstyle.pipeline import BaseStage

    grabbed = {}

    class Grab(BaseStage):
        name = "grab"

        def process(self, frame):
            grabbed[frame.index] = (frame.image.copy(), frame.stylized.copy())
            return [frame]

    from vidstyle.api import build_stages

    stages = [*build_stages(model=models["good"], device=device, stabilize=0.0, flow="none"), Grab()]
    vidstyle.stylize_video(media["clip"], tmp_path / "o.mp4", stages=stages)
    net = load_model(models["good"], device=device)
    image, stylized = grabbed[5]
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(device) / 255
        ref = (net(x)[0].permute(1, 2, 0).cpu().numpy() * 255).round()
    assert stylized.shape == image.shape and stylized.dtype == np.uint8
    assert np.abs(stylized.astype(np.float32) - ref).max() <= 1.0


def test_stabilize_with_flow_runs(capsys, media, models, tmp_path):
    out = tmp_path / "stab.mp4"
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]),
                        "--stabilize", "0.7", "--flow", "dis-fast", "--quiet")
    assert code == 0, err
    assert err == ""  # quiet: no bar, no summary
    assert _probe(out)["frames"] == N_FRAMES


def test_start_end_selection(capsys, media, models, tmp_path):
    out = tmp_path / "part.mp4"
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]),
                        "--start", "0.25", "--end", "0.75", "--stabilize", "0", "-q")
    assert code == 0, err
    assert _probe(out)["frames"] == pytest.approx(6, abs=1)


def test_existing_output_needs_overwrite(capsys, media, models, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]))
    assert code == 1
    assert "--overwrite" in _one_line_error(err)
    assert out.read_bytes() == b"keep me"
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]),
                        "--overwrite", "-q", "--stabilize", "0")
    assert code == 0, err
    assert _probe(out)["frames"] == N_FRAMES


def test_truncated_mp4_keeps_decoded_part_and_warns(capsys, media, models, tmp_path):
    out = tmp_path / "t.mp4"
    code, _, err = _run(capsys, "stylize", str(media["truncated"]), "-o", str(out), "--model",
                        str(models["good"]), "-q", "--stabilize", "0")
    assert code == 0, err
    assert "vidstyle: warning: " in err and "Traceback" not in err
    n = _probe(out)["frames"]
    assert 0 < n < 60


# ------------------------------------------------------------------------------------------------
# bad input: one line, exit 1, nothing written
# ------------------------------------------------------------------------------------------------
BAD_INPUTS = {
    "missing input": (lambda m, mo, t: [str(t / "nope.mp4")], ["nope.mp4"]),
    "empty file": (lambda m, mo, t: [str(m["empty"])], ["empty"]),
    "random bytes": (lambda m, mo, t: [str(m["noise"])], ["noise.mp4"]),
    "audio only": (lambda m, mo, t: [str(m["audio_only"])], ["video"]),
    "unknown model": (lambda m, mo, t: [str(m["clip"]), "--model", "no_such_style"], ["no_such_style"]),
    "wrong architecture": (lambda m, mo, t: [str(m["clip"]), "--model", str(mo["wrong"])], ["wrong.safetensors"]),
    "pickle file": (lambda m, mo, t: [str(m["clip"]), "--model", str(mo["pickle"])], ["pickle"]),
    "pickle named safetensors": (lambda m, mo, t: [str(m["clip"]), "--model", str(mo["pickle_named"])], ["pickle"]),
    "start after end": (lambda m, mo, t: [str(m["clip"]), "--start", "30"], ["start"]),
    "crf out of range": (lambda m, mo, t: [str(m["clip"]), "--crf", "99"], ["--crf", "51"]),
    "crf with ffv1": (lambda m, mo, t: [str(m["clip"]), "--codec", "ffv1", "--crf", "10"], ["--crf", "ffv1"]),
    "unknown codec": (lambda m, mo, t: [str(m["clip"]), "--codec", "divx"], ["divx"]),
    "batch size 0": (lambda m, mo, t: [str(m["clip"]), "--batch-size", "0"], ["--batch-size"]),
    "stabilize > 1": (lambda m, mo, t: [str(m["clip"]), "--stabilize", "1.5"], ["--stabilize"]),
    "bad time": (lambda m, mo, t: [str(m["clip"]), "--start", "soon"], ["soon"]),
    "end before start": (lambda m, mo, t: [str(m["clip"]), "--start", "2", "--end", "1"], ["--end"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_exit_1_nothing_written(case, capsys, media, models, tmp_path):
    make_args, words = BAD_INPUTS[case]
    args = make_args(media, models, tmp_path)
    if "--model" not in args:
        args += ["--model", str(models["good"])]
    out = tmp_path / "out" / "styled.mp4"
    out.parent.mkdir()
    code, _, err = _run(capsys, "stylize", *args, "-o", str(out))
    assert code == 1, err
    line = _one_line_error(err)
    for word in words:
        assert word.lower() in line.lower(), line
    assert list(out.parent.iterdir()) == []  # nothing written, not even a temporary


def test_unwritable_output_folder(capsys, media, models, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for out in (tmp_path / "missing_dir" / "o.mp4", blocker / "o.mp4"):
        code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]))
        assert code == 1
        _one_line_error(err)
        assert not out.exists()


def test_output_equal_to_input(capsys, media, models, tmp_path):
    clip = tmp_path / "same.mp4"
    clip.write_bytes(media["clip"].read_bytes())
    before = clip.read_bytes()
    code, _, err = _run(capsys, "stylize", str(clip), "-o", str(clip), "--model", str(models["good"]),
                        "--overwrite")
    assert code == 1
    assert "input" in _one_line_error(err).lower()
    assert clip.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["same.mp4"]


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["stylize", "in.mp4"])  # -o missing
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["stylize", "in.mp4", "-o", "o.mp4", "--crf", "high"])
    assert info.value.code == 2


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["stylize", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "vidstyle stylize" in out and "--model" in out


# ------------------------------------------------------------------------------------------------
# real processes: no traceback, Ctrl-C keeps a playable partial file
# ------------------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VIDSTYLE_DEBUG", None)
    return env


def test_subprocess_bad_input_has_no_traceback(media, models, tmp_path):
    out = tmp_path / "o.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "vidstyle", "stylize", str(media["noise"]), "-o", str(out), "--model",
         str(models["good"])],
        capture_output=True, text=True, env=_env(), timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("vidstyle: error: ") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_subprocess_ctrl_c_keeps_playable_partial(models, tmp_path, sig):
    """Ctrl-C, or a SIGTERM from a scheduler or `kill`, stops cleanly and leaves a partial that plays;
    after a SIGKILL (no clean-up at all) the partial plays too, up to the last frames the encoder finished."""
    out = tmp_path / "live.mp4"
    src = "lavfi:testsrc2=size=96x64:rate=25:duration=600"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidstyle", "stylize", src, "-o", str(out), "--model", str(models["good"]),
         "--stabilize", "0", "--preset", "ultrafast"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env(),
    )
    # wait until the progress bar shows frames being written, then press Ctrl-C
    chunks: list[str] = []

    def reader():
        chunks.extend(iter(lambda: proc.stderr.read(1), ""))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    # (a SIGKILL waits for 40 frames: the partial is written a quarter second of video at a time)
    need = 40 if sig == signal.SIGKILL else 1
    deadline = time.monotonic() + 180

    def frames_done() -> int:  # tqdm's "12/15000 [" or "12frame ["
        counts = re.findall(r"(\d+)(?:/\d+|frame) \[", "".join(chunks))
        return int(counts[-1]) if counts else 0

    while time.monotonic() < deadline and proc.poll() is None and frames_done() < need:
        time.sleep(0.1)
    time.sleep(1.0)  # let it write a few more frames
    assert proc.poll() is None, "".join(chunks)
    proc.send_signal(sig)
    code = proc.wait(60)
    t.join(5)
    err = "".join(chunks)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        from vidstyle.io.output import temp_path_for

        partial = temp_path_for(out)
        assert partial.exists() and not out.exists()
        with av.open(str(partial)) as c:  # decodes without an error
            assert sum(1 for _ in c.decode(video=0)) > 0
        return
    assert code == 130, err
    assert "Traceback" not in err
    assert "partial output kept at" in err
    partial = Path(err.split("partial output kept at ")[1].split()[0].rstrip(";"))
    assert partial.exists() and not out.exists()
    assert _probe(partial)["frames"] > 0  # the encoder was flushed: the partial file plays


# ------------------------------------------------------------------------------------------------
# vidstyle models
# ------------------------------------------------------------------------------------------------
def test_models_lists_and_prints_card(capsys, models, tmp_path, monkeypatch):
    import shutil

    d = tmp_path / "zoo"
    d.mkdir()
    shutil.copy(models["good"], d / "rand_tiny.safetensors")
    (d / "rand_tiny.md").write_text("# rand_tiny\n\nA random tiny network for tests.\n")
    monkeypatch.setenv("VIDSTYLE_MODELS", str(d))
    code, out, _ = _run(capsys, "models")
    assert code == 0
    assert "NAME" in out and "rand_tiny" in out and "transformer" in out and "noise" in out
    # GFLOP per 640x360 frame, counted on a meta-device copy: equals a real forward pass's count
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vidstyle.nets.registry import load_model

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        load_model(models["good"])(torch.rand(1, 3, 360, 640))
    row = next(line for line in out.splitlines() if line.startswith("rand_tiny")).split()
    assert f"{counter.get_total_flops() / 1e9:.2f}" in row
    code, out, _ = _run(capsys, "models", "rand_tiny")
    assert code == 0 and "A random tiny network for tests." in out
    code, _, err = _run(capsys, "models", "nope")
    assert code == 1 and "nope" in _one_line_error(err)


# ------------------------------------------------------------------------------------------------
# vidstyle.stylize_image
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_stylize_image_keeps_size_and_depth_and_matches_the_model(models, tmp_path, dtype):
    import cv2
    import torch

    import vidstyle
    from vidstyle.errors import OutputExistsError
    from vidstyle.nets.registry import load_model

    scale = np.iinfo(dtype).max
    rgb = (np.random.default_rng(1).random((37, 53, 3)) * scale).astype(dtype)  # odd size
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = vidstyle.stylize_image(src, tmp_path / "out.png", model=models["good"], device="cpu")
    got = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert got.shape == rgb.shape and got.dtype == dtype
    with torch.inference_mode():
        x = torch.from_numpy(rgb.astype(np.float32) / scale).permute(2, 0, 1)[None]
        ref = load_model(models["good"])(x)[0].permute(1, 2, 0).numpy() * scale
    assert np.abs(got.astype(np.float64) - ref).max() <= 1.0
    with pytest.raises(OutputExistsError):
        vidstyle.stylize_image(src, out, model=models["good"], device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_given_stages_are_closed_when_the_run_cannot_start(media, tmp_path):
    import vidstyle
    from vidstyle.errors import InputNotFoundError, OutputError
    from vidstyle.pipeline import BaseStage

    class Tracked(BaseStage):
        name = "tracked"
        closed = 0

        def close(self):
            self.closed += 1

    for bad in ({"input": tmp_path / "missing.mp4"}, {"output": media["clip"]}):
        stage = Tracked()
        kwargs = {"input": media["clip"], "output": tmp_path / "o.mp4", **bad}
        with pytest.raises((InputNotFoundError, OutputError)):
            vidstyle.stylize_video(kwargs["input"], kwargs["output"], stages=[stage])
        assert stage.closed == 1


def test_one_picture_in_one_picture_out(models, tmp_path, capsys):
    """`vidstyle stylize photo.png -o out.png` stylizes the picture (no frame-number pattern needed)."""
    import cv2

    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), (np.random.default_rng(2).random((40, 52, 3)) * 255).astype(np.uint8))
    code, _, err = _run(capsys, "stylize", str(src), "-o", str(tmp_path / "out.png"), "--model", str(models["good"]))
    assert code == 0 and "wrote" in err
    out = cv2.imread(str(tmp_path / "out.png"))
    assert out.shape == (40, 52, 3)


def test_image_sequence_rate_is_said_and_can_be_given(models, tmp_path, capsys):
    import av
    import cv2

    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f.{i:04d}.png"), (np.random.default_rng(i).random((32, 48, 3)) * 255).astype(np.uint8))
    pattern = str(tmp_path / "f.%04d.png")
    code, _, err = _run(capsys, "stylize", pattern, "-o", str(tmp_path / "a.mp4"), "--model", str(models["good"]))
    assert code == 0 and "assumed to be 24 fps" in err and "--fps" in err
    code, _, err = _run(capsys, "stylize", pattern, "-o", str(tmp_path / "b.mp4"), "--model", str(models["good"]),
                        "--fps", "25")
    assert code == 0 and "assumed" not in err
    with av.open(str(tmp_path / "b.mp4")) as c:
        assert c.streams.video[0].average_rate == 25
    code, _, err = _run(capsys, "stylize", pattern, "-o", str(tmp_path / "c.mp4"), "--fps", "fast")
    assert code == 1 and err.strip().startswith("vidstyle: error: --fps must be a positive frame rate")


def test_rerun_keeps_the_partial_of_an_interrupted_run(models, media, tmp_path, capsys):
    from vidstyle.io.output import temp_path_for

    out = tmp_path / "o.mp4"
    partial = temp_path_for(out)
    partial.write_bytes(b"an interrupted run's frames")
    code, _, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]))
    assert code == 1 and "partial output of an interrupted run" in err and "--overwrite" in err
    assert partial.read_bytes() == b"an interrupted run's frames" and not out.exists()
    code, _, _ = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(models["good"]),
                      "--overwrite")
    assert code == 0 and out.exists() and not partial.exists()
