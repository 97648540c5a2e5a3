"""Keyframe-guided stylization in render jobs: ``keys`` in the TOML, training once into the work folder,
resume bit for bit (the carried keyframe and the stabiliser in the side-car), chunks reading from the last
keyframe, and bad jobs as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from render_helpers import COUNT, FIRST, read_frames

from vidstyle.errors import InputNotFoundError, InvalidOptionError
from vidstyle.render import load_job, render

cv2 = pytest.importorskip("cv2")

FAST = {"max_steps": 25, "perceptual_weight": 0.0, "patch_size": 16, "patch_batch": 8, "threads": 1, "seed": 3,
        "flow": "dis-fast"}


def _paint(plate: Path, out: Path) -> None:
    x = cv2.imread(str(plate), cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float32) / 65535
    p = np.stack([x[..., 1], 1.0 - x[..., 0], 0.5 * x[..., 2] + 0.3], -1)
    cv2.imwrite(str(out), (np.clip(p, 0, 1) * 255 + 0.5).astype(np.uint8)[:, :, ::-1])


def _job(folder: Path, plates: Path, **keys: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in (1001, 1012):
        _paint(plates / f"sh.{n:04d}.png", folder / f"paint.{n}.png")
    data: dict[str, object] = {"input": str(plates / "sh.%04d.png"), "output": "out/sh.%04d.png",
                               "keys": ["1001:paint.1001.png", "1012:paint.1012.png"], **FAST, **keys}
    path = folder / "shot.toml"
    path.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in data.items()) + "\n", encoding="utf-8")
    return path


def _interrupt_after(n_frames: int):
    def progress(info: object) -> None:
        if info.done >= n_frames:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    return progress


def test_keyframe_job_trains_once_and_resumes_bit_for_bit(tmp_path: Path, plates: Path, monkeypatch) -> None:
    full = _job(tmp_path / "full", plates)
    part = _job(tmp_path / "part", plates)
    render(load_job(full))
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part), progress=_interrupt_after(7))
    assert (tmp_path / "part" / "out" / ".sh.render" / "keyframes.safetensors").is_file()

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a resume must reuse the network trained before")

    monkeypatch.setattr("vidstyle.keyframes.run.train_keyframe_model", no_training)
    result = render(load_job(part), resume=True)
    assert result.resumed
    a = read_frames(tmp_path / "full" / "out")
    b = read_frames(tmp_path / "part" / "out")
    assert sorted(a) == sorted(b) == list(range(FIRST, FIRST + COUNT))
    for n in a:
        assert np.array_equal(a[n], b[n]), n
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    assert manifest["chunks"][0]["last_start"]["state"] == "sidecar"
    assert manifest["model"]["name"] == "keyframes" and len(manifest["model"]["paintings"]) == 2
    assert manifest["parameters"]["keys"][0].startswith("1001:")
    # the first frame is a keyframe, carried as painted (the stabiliser starts from it)
    painted = cv2.imread(str(tmp_path / "full" / "paint.1001.png"))[:, :, ::-1].astype(np.float32) / 255
    assert np.abs(a[1001].astype(np.float32) / 65535 - painted).max() <= 1 / 255


def test_changed_painting_refuses_the_resume(tmp_path: Path, plates: Path) -> None:
    part = _job(tmp_path / "part", plates)
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part), progress=_interrupt_after(3))
    _paint(plates / "sh.1002.png", tmp_path / "part" / "paint.1012.png")  # another painting
    with pytest.raises(InvalidOptionError, match="model file changed"):
        render(load_job(part), resume=True)


def test_chunks_read_from_the_last_keyframe_before_them(tmp_path: Path, plates: Path) -> None:
    single = _job(tmp_path / "single", plates, stabilize=0.0)
    chunked = _job(tmp_path / "chunked", plates, stabilize=0.0, chunk_frames=8, overlap=2, crossfade=0)
    render(load_job(single))
    render(load_job(chunked))
    manifest = json.loads((tmp_path / "chunked" / "out" / "sh.manifest.json").read_text())
    starts = {c["id"]: c["last_start"]["read_from"] for c in manifest["chunks"]}
    assert starts == {0: 1001, 1: 1001, 2: 1012}  # 1009 and 1017 would lose the carried keyframe
    a = read_frames(tmp_path / "single" / "out")
    b = read_frames(tmp_path / "chunked" / "out")
    for n in a:  # no stabiliser: the same network, the same carried keyframe, the same flows
        assert np.array_equal(a[n], b[n]), n


@pytest.mark.parametrize("extra, error, words", [
    ({"model": "candy"}, InvalidOptionError, "key 'model' does not go with keyframes"),
    ({"backend": "optim", "style": "s.jpg"}, InvalidOptionError, "replaces the style network"),
    ({"keys": ["1001:nope.png"]}, InputNotFoundError, "keyframe 1001: painting"),
    ({"keys": ["1001:paint.1001.png", "1001:paint.1012.png"]}, InvalidOptionError, "frame 1001 is given twice"),
])
def test_bad_keyframe_jobs_are_one_line(tmp_path: Path, plates: Path, extra: dict, error: type, words: str) -> None:
    job = _job(tmp_path / "j", plates, **extra)
    with pytest.raises(error, match=words) as info:
        render(load_job(job))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "j" / "out").exists() or not any((tmp_path / "j" / "out").glob("sh.*.png"))


def test_keyframe_beyond_the_shot_is_one_line(tmp_path: Path, plates: Path) -> None:
    from vidstyle.errors import InvalidInputError

    job = _job(tmp_path / "j", plates, frames="1001-1010")
    with pytest.raises(InvalidInputError, match="keyframe 1012 is not a frame of the shot"):
        render(load_job(job))


def test_kill_during_training_resumes_the_training(tmp_path: Path, plates: Path, monkeypatch) -> None:
    from vidstyle.keyframes import run as kfrun

    monkeypatch.setattr(kfrun, "CHECKPOINT_SECONDS", 0.0)
    full = _job(tmp_path / "full", plates, stabilize=0.0)
    part = _job(tmp_path / "part", plates, stabilize=0.0)
    render(load_job(full))
    real = kfrun.train_network

    def interrupted(*args: object, **kwargs: object) -> object:
        def stop(p: object) -> None:
            if p.step == 10:  # type: ignore[attr-defined]
                raise KeyboardInterrupt

        return real(*args, **{**kwargs, "progress": stop})

    monkeypatch.setattr(kfrun, "train_network", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part))
    work = tmp_path / "part" / "out" / ".sh.render"
    assert (work / "keyframes.training0.safetensors").is_file() and not (work / "keyframes.safetensors").exists()
    monkeypatch.setattr(kfrun, "train_network", real)
    render(load_job(part), resume=True)
    a = read_frames(tmp_path / "full" / "out")
    b = read_frames(tmp_path / "part" / "out")
    assert sorted(a) == sorted(b) == list(range(FIRST, FIRST + COUNT))
    for n in a:  # the resumed training gave the very same network
        assert np.array_equal(a[n], b[n]), n


def test_a_saved_network_with_its_keys_renders_like_the_training_job(tmp_path: Path, plates: Path) -> None:
    """``keyframe_model`` beside the shot's own ``keys``: the saved network is applied and the paintings carried,
    with no training; the frames equal those of the job that trained it."""
    first = _job(tmp_path / "first", plates, save_model=str(tmp_path / "look"))
    render(load_job(first))
    assert (tmp_path / "look.safetensors").is_file()
    again = _job(tmp_path / "again", plates, keyframe_model=str(tmp_path / "look.safetensors"))
    render(load_job(again))
    a = read_frames(tmp_path / "first" / "out")
    b = read_frames(tmp_path / "again" / "out")
    assert sorted(a) == sorted(b) == list(range(FIRST, FIRST + COUNT))
    for n in a:
        assert np.array_equal(a[n], b[n]), n
