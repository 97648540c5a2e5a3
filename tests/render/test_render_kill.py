"""A render killed mid-way (SIGKILL or SIGINT, in a subprocess) and resumed gives the same frames
as an uninterrupted render, bit for bit, and never leaves a damaged file under a final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from render_helpers import read_frames, write_job

from vidstyle.render import load_job, render


def _final_frames(folder: Path) -> list[Path]:
    return [p for p in folder.glob("sh.*.png") if ".partial." not in p.name] if folder.is_dir() else []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_render_resumes_to_the_same_frames(tmp_path: Path, plates: Path, tiny_model: Path, sig: int) -> None:
    keys = {"frames": "1001-1016", "bit_depth": 16}
    full = write_job(tmp_path / "full", plates=plates, model=tiny_model, **keys)
    part = write_job(tmp_path / "part", plates=plates, model=tiny_model, **keys)
    render(load_job(full))

    env = {**os.environ, "VIDSTYLE_NO_REEXEC": "1", "PYTHONUNBUFFERED": "1"}
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    driver = Path(__file__).resolve().parent / "slow_render_driver.py"  # the CLI, 0.25 s after each frame
    proc = subprocess.Popen(
        [sys.executable, str(driver), "0.25", "render", str(part), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out = tmp_path / "part" / "out"
    deadline = time.monotonic() + 180
    try:
        while len(_final_frames(out)) < 5:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the render did not start in time"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "--resume" in err
        assert json.loads((out / "sh.manifest.json").read_text())["status"] == "interrupted"
    else:
        assert proc.returncode == -signal.SIGKILL
    written = _final_frames(out)
    assert 5 <= len(written) < 16
    for p in written:  # every file under a final name is complete
        from vidstyle.io import read_image

        assert read_image(p).shape == (48, 64, 3)

    result = render(load_job(part), resume=True)
    assert result.resumed and 0 < result.frames_rendered <= 16 - 4
    a = read_frames(tmp_path / "full" / "out")
    b = read_frames(out)
    assert sorted(a) == sorted(b) == list(range(1001, 1017))
    for n in a:
        assert np.array_equal(a[n], b[n]), n
    assert not list(out.glob("*.partial.*"))
    manifest = json.loads((out / "sh.manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert all(f["status"] == "done" for f in manifest["frames"])
