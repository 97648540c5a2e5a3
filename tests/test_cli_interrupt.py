"""Ctrl-C (and SIGTERM) in every sub-command: exit 130, one line, nothing written under an output name.

``stylize`` and ``render`` have their own tests (partials, resume hints); here are the others, which rely
on the fallback in ``vidstyle.cli.main`` or, for ``train``, name the checkpoint and the resume command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vidstyle.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def _interrupted(capsys) -> None:
    out, err = capsys.readouterr()
    assert err == "vidstyle: interrupted\n", err  # one line, no traceback
    assert out == ""


def test_image_ctrl_c(tmp_path, monkeypatch, capsys):
    import cv2

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((32, 48, 3), 128, np.uint8))
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    monkeypatch.setattr("vidstyle.api.stylize_image", _ctrl_c)
    assert main(["image", str(photo), "--style", str(painting), "-o", str(tmp_path / "out.png")]) == 130
    _interrupted(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["painting.png", "photo.png"]


def test_eval_ctrl_c(tmp_path, monkeypatch, capsys):
    from media import make_video

    a = make_video(tmp_path / "a.mp4", frames=6)
    b = make_video(tmp_path / "b.mp4", frames=6)
    monkeypatch.setattr("vidstyle.metrics.compare_videos", _ctrl_c)
    assert main(["eval", str(a), str(b), "--plot", str(tmp_path / "plot.png")]) == 130
    _interrupted(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_models_ctrl_c(monkeypatch, capsys):
    monkeypatch.setattr("vidstyle.nets.registry.list_models", _ctrl_c)
    assert main(["models"]) == 130
    _interrupted(capsys)


@pytest.mark.parametrize("checkpoint", [True, False], ids=["after-a-checkpoint", "before-the-first"])
def test_train_ctrl_c_names_the_checkpoint_and_the_resume_command(tmp_path, monkeypatch, capsys, checkpoint):
    import cv2

    style = tmp_path / "style.png"
    cv2.imwrite(str(style), np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((64, 64, 3), 100, np.uint8))
    out = tmp_path / "models" / "mine"
    if checkpoint:
        out.parent.mkdir()
        (out.parent / "mine.ckpt.safetensors").write_bytes(b"a checkpoint")
    monkeypatch.setattr("vidstyle.train.train", _ctrl_c)
    argv = ["train", "--style", str(style), "--content", str(photos), "-o", str(out), "--iterations", "10", "--quiet"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    if checkpoint:
        assert lines[0] == (f"vidstyle: interrupted; the last checkpoint is {out.parent / 'mine.ckpt.safetensors'}; "
                            f"continue with: vidstyle {' '.join(argv)} --resume")
    else:
        assert lines[0] == "vidstyle: interrupted before the first checkpoint; nothing to resume from"


def test_sigterm_stops_any_command_like_ctrl_c(tmp_path):
    """A real SIGTERM to a `vidstyle models` that is busy: exit 130 and the one line of Ctrl-C."""
    code = textwrap.dedent("""
        import sys, time
        import vidstyle.nets.registry as registry
        def busy():
            print("busy", flush=True)
            time.sleep(60)
        registry.list_models = busy
        from vidstyle.cli.main import main
        sys.exit(main(["models"]))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VIDSTYLE_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "busy"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err == "vidstyle: interrupted\n"
    assert time.monotonic() - t0 < 30
