"""The optimisation back end through the renderer: job keys reach OptimStage/OptimConfig, renders
are repeatable, and a resume without an exportable temporal state re-warms from earlier frames."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from render_helpers import TESTS, read_frames

optim = pytest.importorskip("vidstyle.stylize.optim")
if not hasattr(optim, "OptimStage"):
    pytest.skip("the optim back end has no OptimStage", allow_module_level=True)

from vidstyle.render import load_job, render  # noqa: E402


@pytest.fixture(scope="module")
def optim_shot(tmp_path_factory: pytest.TempPathFactory, plates: Path) -> Path:
    import cv2

    sys.path.insert(0, str(TESTS / "nets"))
    from nets_helpers import write_fake_vgg

    d = tmp_path_factory.mktemp("optim")
    write_fake_vgg(d / "vgg.safetensors", metadata={"convention": "caffe"})
    cv2.imwrite(str(d / "style.png"), (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    return d


def _job(folder: Path, shot: Path, plates: Path, **more: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = {
        "input": str(plates / "sh.%04d.png"), "output": "out/sh.%04d.png", "frames": "1001-1005",
        "backend": "optim", "style": str(shot / "style.png"), "vgg": str(shot / "vgg.safetensors"),
        "iterations": 2, "size": 32, "threads": 1, "seed": 3, "overlap": 2, "crossfade": 0, **more,
    }
    path = folder / "shot.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in lines.items()))
    return path


def test_optim_render_is_repeatable_and_resumes(tmp_path: Path, optim_shot: Path, plates: Path) -> None:
    a = _job(tmp_path / "a", optim_shot, plates)
    b = _job(tmp_path / "b", optim_shot, plates)
    job = load_job(a, overrides={"style_weight": "5"})
    assert job.optim.style_weight == 5.0 and job.optim.iterations == 2 and job.style_weight == 5.0
    render(job)
    fa = read_frames(tmp_path / "a" / "out")
    assert sorted(fa) == list(range(1001, 1006))
    manifest = json.loads((tmp_path / "a" / "out" / "sh.manifest.json").read_text())
    assert manifest["model"]["styles"][0]["sha256"] and manifest["model"]["vgg"]["sha256"]
    assert manifest["parameters"]["style_weight"] == 5.0

    def stop_after(n: int):
        def progress(info: object) -> None:
            if info.done >= n:  # type: ignore[attr-defined]
                raise KeyboardInterrupt
        return progress

    with pytest.raises(KeyboardInterrupt):
        render(load_job(b, overrides={"style_weight": "5"}), progress=stop_after(3))
    kept = read_frames(tmp_path / "b" / "out")
    render(load_job(b, overrides={"style_weight": "5"}), resume=True)
    fb = read_frames(tmp_path / "b" / "out")
    assert sorted(fb) == list(range(1001, 1006))
    for n in kept:  # finished frames are kept as they were, and equal the uninterrupted run's
        assert np.array_equal(kept[n], fb[n]) and np.array_equal(fa[n], fb[n]), n
    manifest = json.loads((tmp_path / "b" / "out" / "sh.manifest.json").read_text())
    assert manifest["chunks"][0]["last_start"]["state"] == "warmup"
    assert all(f["status"] == "done" for f in manifest["frames"])


def test_optim_keys_are_validated(tmp_path: Path) -> None:
    from vidstyle.errors import InvalidOptionError

    base = 'input = "p/%04d.png"\noutput = "o/%04d.png"\n'
    cases = [
        ("iterations = 3\n", "key 'iterations' is for backend = \"optim\""),
        ('backend = "optim"\n', "needs a style image: add key 'style'"),
        ('backend = "optim"\nstyle = "s.png"\niterations = 0\n', "key 'iterations' must be an integer >= 1"),
        ('backend = "optim"\nstyle = "s.png"\niteratons = 5\n', "did you mean 'iterations'"),
    ]
    for text, words in cases:
        path = tmp_path / "j.toml"
        path.write_text(base + text)
        with pytest.raises(InvalidOptionError) as info:
            load_job(path)
        assert words in str(info.value) and "\n" not in str(info.value), str(info.value)
