"""``vidstyle live`` and ``vidstyle cameras`` from the command line (headless, lavfi sources)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch
from live_helpers import decoded_times

from vidstyle.cli.main import main
from vidstyle.live import CameraSource

SRC = "lavfi:testsrc2=size=128x72:rate=30"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_headless_run_with_recording(tmp_path, tiny_model, capsys) -> None:
    out = tmp_path / "rec.mp4"
    rc = main(
        [
            "live",
            "--camera",
            SRC,
            "-m",
            str(tiny_model),
            "--duration",
            "1.5",
            "--record",
            str(out),
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "no display" in err and "running headless" in err
    assert f"recording saved to {out}" in err and "frames shown" in err
    times = decoded_times(out)
    assert len(times) >= 2 and times == sorted(times)


def test_stream_end_exits_0(tmp_path, tiny_model, capsys) -> None:
    rc = main(
        [
            "live",
            "--camera",
            "lavfi:testsrc2=size=64x48:rate=30:duration=1",
            "-m",
            str(tiny_model),
            "--no-preview",
            "--stabilize",
            "0",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "the stream 'lavfi:testsrc2=size=64x48:rate=30:duration=1' ended" in err


def test_lost_camera_exits_1_with_the_recording_finalised(
    tmp_path, tiny_model, capsys, monkeypatch
) -> None:
    original = CameraSource._read_packets

    def unplugged(self):
        for i, packet in enumerate(original(self)):
            if i == 25:
                self._lost(av.error.OSError(errno.ENODEV, "No such device"))
                return
            yield packet

    monkeypatch.setattr(CameraSource, "_read_packets", unplugged)
    out = tmp_path / "lost.mkv"
    rc = main(
        [
            "live",
            "--camera",
            SRC,
            "-m",
            str(tiny_model),
            "--record",
            str(out),
            "--threads",
            "1",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1, err
    assert (
        f"lost the camera '{SRC}' (No such device)" in err
        and f"recording saved to {out}" in err
    )
    assert err.count("lost the camera") == 1
    assert len(decoded_times(out)) >= 1


def test_bad_device_is_one_clear_error(tiny_model, capsys) -> None:
    from vidstyle.live import list_cameras

    if list_cameras():
        pytest.skip("this machine has cameras")
    rc = main(
        ["live", "--camera", "/dev/video5", "-m", str(tiny_model), "--no-preview"]
    )
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("vidstyle: error: camera '/dev/video5' does not exist")
    assert "no cameras found" in lines[-1]
    assert "Traceback" not in err


def test_existing_recording_needs_overwrite(tmp_path, tiny_model, capsys) -> None:
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"x")
    rc = main(["live", "--camera", SRC, "-m", str(tiny_model), "--record", str(out)])
    assert rc == 1 and "exists" in capsys.readouterr().err
    rc = main(
        [
            "live",
            "--camera",
            SRC,
            "-m",
            str(tiny_model),
            "--record",
            str(tmp_path / "x.txt"),
        ]
    )
    assert rc == 1 and "--record needs a video file" in capsys.readouterr().err


def test_cameras_lists_or_says_none(monkeypatch, capsys) -> None:
    from vidstyle.live import devices

    monkeypatch.setattr(devices, "list_cameras", lambda **kw: [])
    assert main(["cameras"]) == 0
    assert "no cameras found" in capsys.readouterr().out
    found = [
        devices.CameraDevice(
            spec="/dev/video0", name="HD Webcam", backend="v4l2", note="uvcvideo"
        )
    ]
    monkeypatch.setattr(devices, "list_cameras", lambda **kw: found)
    assert main(["cameras"]) == 0
    out = capsys.readouterr().out
    assert "/dev/video0  HD Webcam  [uvcvideo]" in out and "--camera /dev/video0" in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_finalises_the_recording(tmp_path, tiny_model) -> None:
    out = tmp_path / "sigint.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    cmd = [
        sys.executable,
        "-m",
        "vidstyle",
        "live",
        "--camera",
        SRC,
        "-m",
        str(tiny_model),
        "--record",
        str(out),
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    lines = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if (
                sum(" fps " in x for x in lines) >= 2
            ):  # two status lines: frames are being recorded
                break
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "stopping" in err and f"recording saved to {out}" in err
    assert not list(tmp_path.glob("*.partial*"))
    assert len(decoded_times(out)) >= 2


@pytest.mark.parametrize("scale", ["0", "1.5", "-0.5"])
def test_bad_flow_scale_is_one_clear_error(tiny_model, capsys, scale: str) -> None:
    rc = main(["live", "--camera", SRC, "-m", str(tiny_model), "--no-preview", "--flow-scale", scale])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines()[-1].startswith("vidstyle: error: --flow-scale must be in (0, 1]")
    assert "Traceback" not in err


def test_flow_scale_reaches_the_flow_stage(tiny_model) -> None:
    from vidstyle.api import build_live_stylizer
    from vidstyle.live import DEFAULT_LIVE_FLOW_SCALE

    assert build_live_stylizer(models=[str(tiny_model)])._flow.work_scale == DEFAULT_LIVE_FLOW_SCALE == 1.0
    assert build_live_stylizer(models=[str(tiny_model)], flow_scale=0.5)._flow.work_scale == 0.5


@pytest.mark.parametrize("cores,threads,parallel", [(1, 1, False), (2, 1, True), (8, 7, True)])
def test_live_leaves_a_core_for_capture_and_flow(monkeypatch, tiny_model, cores: int, threads: int, parallel: bool) -> None:
    import vidstyle.runtime
    from vidstyle.api import build_live_stylizer
    from vidstyle.options import StylizeOptions

    monkeypatch.setattr(vidstyle.runtime, "default_threads", lambda: cores)
    before = torch.get_num_threads()
    try:
        live = build_live_stylizer(stylize=StylizeOptions(device="cpu"), models=[str(tiny_model)])
        assert live.threads == threads == torch.get_num_threads()  # set once, by vidstyle.runtime.setup
        assert live.parallel_flow is parallel
        again = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=cores), models=[str(tiny_model)])
        assert again.threads == cores
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flow", ["off", "none", "OFF"])
def test_flow_off_runs_without_stabilisation(tiny_model, capsys, flow: str) -> None:
    """``--flow off`` used to look up an estimator called "off"; it means no flow, no stabilisation."""
    rc = main(["live", "--camera", "lavfi:testsrc2=size=64x48:rate=30:duration=0.5", "-m", str(tiny_model),
               "--no-preview", "--flow", flow, "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "ended" in err and "Traceback" not in err


def test_flow_off_with_a_stabilize_strength_is_one_clear_error(tiny_model, capsys) -> None:
    rc = main(["live", "--camera", SRC, "-m", str(tiny_model), "--no-preview", "--flow", "off", "--stabilize", "0.5"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines()[-1] == ("vidstyle: error: --stabilize needs optical flow; pick an estimator "
                                            "(e.g. --flow dis-fast) or use --stabilize 0")


@pytest.mark.parametrize("argv,start", [
    (["--size", "abc"], "--size must be WIDTHxHEIGHT"),
    (["--size", "8x8"], "--size 8x8 is out of range"),
    (["--stabilize", "2"], "--stabilize must be a number in [0, 1]"),
    (["--duration", "0"], "--duration must be a number > 0"),
    (["--camera-option", "mjpeg"], "--camera-option must be KEY=VALUE"),
    (["--model", " "], "--model must not contain an empty name"),
    (["--threads", "0"], "--threads must be an integer >= 1"),
    (["--flow", "bogus"], "--flow must be one of"),
    (["--virtual-camera", "  "], "--virtual-camera must not be empty"),
])
def test_bad_values_name_the_flag(tiny_model, capsys, argv: list[str], start: str) -> None:
    rc = main(["live", "--camera", SRC, "--no-preview", *argv])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.strip().splitlines()[-1].startswith("vidstyle: error: " + start), err
    assert "Traceback" not in err


def test_every_flag_maps_to_exactly_one_field() -> None:
    """The live command is generated from the groups: each flag is one field, no field name is shared."""
    import argparse

    from vidstyle.cli.live import EXCLUDED, add_parser
    from vidstyle.live import LiveOptions
    from vidstyle.options import GROUPS, StylizeOptions, TemporalOptions, specs

    live_fields = set(specs(LiveOptions))
    for group in GROUPS:
        assert not live_fields & set(specs(group)), group
    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    dests = [a.dest for a in parser._actions if a.dest not in ("help", "overwrite", "quiet")]
    assert len(dests) == len(set(dests))
    fields = live_fields | {n for n in specs(StylizeOptions) if n not in EXCLUDED} | set(specs(TemporalOptions))
    assert set(dests) == fields
