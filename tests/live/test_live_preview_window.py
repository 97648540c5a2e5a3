"""The real preview window (OpenCV highgui) driven by real key presses, through ``vidstyle live``.

Needs an X display: the one in ``$DISPLAY``, or a private ``Xvfb`` started here; and ``xdotool`` to
press the keys. Skipped cleanly when either is missing (the headless paths are tested elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_helpers import decoded_times

REPO = Path(__file__).resolve().parents[2]
SRC = "lavfi:testsrc2=size=160x96:rate=30"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="X11 test")


@pytest.fixture(scope="module")
def display():
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (needed to press keys)")
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no DISPLAY and no Xvfb")
    name = f":{90 + os.getpid() % 100}"
    proc = subprocess.Popen(
        ["Xvfb", name, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{name[1:]}").exists():
                break
            time.sleep(0.1)
        else:
            pytest.skip("Xvfb did not start")
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _xdotool(display: str, *args: str, timeout: float = 30) -> str:
    r = subprocess.run(
        ["xdotool", *args],
        check=False,
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return r.stdout


@pytest.fixture(scope="module")
def second_model(tiny_model: Path) -> Path:
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(1)
    path = tiny_model.parent / "rand_tiny2.safetensors"
    save_model(
        path, net=TransformerNet(config="tiny"), name="rand_tiny2", style="random"
    )
    return path


def test_window_keys_switch_model_toggle_snapshot_and_quit(
    display, tiny_model, second_model, tmp_path
) -> None:
    out = tmp_path / "rec.mkv"
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "vidstyle",
        "live",
        "--camera",
        SRC,
        "-m",
        str(tiny_model),
        "-m",
        str(second_model),
        "--record",
        str(out),
        "--snapshot-dir",
        str(tmp_path / "snaps"),
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wid = ""
        deadline = time.monotonic() + 90
        while not wid and time.monotonic() < deadline and proc.poll() is None:
            found = _xdotool(display, "search", "--name", "vidstyle live").split()
            wid = found[0] if found else ""
            time.sleep(0.3)
        assert wid, "the preview window did not appear"
        time.sleep(1.0)  # a few frames shown
        _xdotool(display, "windowfocus", "--sync", wid)
        for key in ("n", "t", "s"):
            _xdotool(display, "key", key)
            time.sleep(0.7)
        _xdotool(display, "key", "q")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "model: rand_tiny2" in err
    assert "stabilisation off" in err
    assert "snapshot saved" in err
    snaps = list((tmp_path / "snaps").glob("vidstyle-snapshot-*.png"))
    assert len(snaps) == 1
    assert f"recording saved to {out}" in err
    assert len(decoded_times(out)) >= 3
