"""Masked renders (issue 18): matte ``n`` goes with plate ``n`` through chunks, warm-ups and resumes, and
the stabiliser's state that travels (side-car) is the un-composited stylised frame."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from render_helpers import COUNT, FIRST, H, SEAM_CROSSFADE, SEAM_OVERLAP, SEAM_STABILIZE, W, read_frames, write_job

from vidstyle.errors import InvalidInputError
from vidstyle.render import load_job, render


def _alpha(i: int) -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[6:42, 4 + 2 * i : 24 + 2 * i] = 1.0  # moves 2 px a frame
    return cv2.GaussianBlur(a, (0, 0), 1.2)


@pytest.fixture(scope="module")
def mattes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mattes")
    for i in range(COUNT):
        cv2.imwrite(str(folder / f"m.{FIRST + i}.png"), np.round(_alpha(i) * 65535).astype(np.uint16))
    return folder


def _interrupt_after(n_frames: int):
    def progress(info: object) -> None:
        if info.done >= n_frames:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    return progress


def test_chunked_masked_render_is_the_composite_of_the_unmasked_one(
    tmp_path: Path, plates: Path, tiny_model: Path, mattes: Path
) -> None:
    from vidstyle.io import read_image

    keys = {"bit_depth": 16, "stabilize": SEAM_STABILIZE, "chunk_frames": 8, "overlap": SEAM_OVERLAP,
            "crossfade": SEAM_CROSSFADE}
    render(load_job(write_job(tmp_path / "plain", plates=plates, model=tiny_model, **keys)))
    render(load_job(write_job(tmp_path / "masked", plates=plates, model=tiny_model, mask=str(mattes / "m.####.png"),
                              **keys)))
    plain, masked = read_frames(tmp_path / "plain" / "out"), read_frames(tmp_path / "masked" / "out")
    assert sorted(masked) == list(range(FIRST, FIRST + COUNT))
    for n in masked:
        a = _alpha(n - FIRST)
        a16 = np.round(a * 65535) / 65535  # as stored
        photo = read_image(plates / f"sh.{n:04d}.png").astype(np.float64)
        expect = a16[:, :, None] * plain[n] + (1 - a16[:, :, None]) * photo
        assert np.abs(masked[n] - expect).max() <= 3, n  # 16-bit levels: one quantisation more
        assert np.array_equal(masked[n][a16 == 0], photo[a16 == 0].astype(np.uint16)), n
        assert np.abs(plain[n] - photo)[a16 == 1].mean() > 2000, n  # the style is there (3 % of the range)


def test_a_masked_render_resumes_bit_identical_and_never_from_a_composited_frame(
    tmp_path: Path, plates: Path, tiny_model: Path, mattes: Path
) -> None:
    keys = {"frames": "1001-1012", "bit_depth": 16, "mask": str(mattes / "m.%04d.png")}
    full = write_job(tmp_path / "full", plates=plates, model=tiny_model, **keys)
    render(load_job(full))
    for name, drop_sidecar, state in (("sidecar", False, "sidecar"), ("nosidecar", True, "warmup")):
        part = write_job(tmp_path / name, plates=plates, model=tiny_model, **keys)
        with pytest.raises(KeyboardInterrupt):
            render(load_job(part), progress=_interrupt_after(5))
        if drop_sidecar:
            for p in (tmp_path / name / "out" / ".sh.render" / "state").glob("*.safetensors"):
                p.unlink()
        render(load_job(part), resume=True)
        manifest = json.loads((tmp_path / name / "out" / "sh.manifest.json").read_text())
        assert manifest["chunks"][0]["last_start"]["state"] == state
        a, b = read_frames(tmp_path / "full" / "out"), read_frames(tmp_path / name / "out")
        assert sorted(a) == sorted(b) == list(range(1001, 1013))
        if state == "sidecar":
            assert all(np.array_equal(a[n], b[n]) for n in a)
        else:  # re-rendered warm-up frames: close to, not equal to, the uninterrupted render
            assert max(float(np.abs(a[n].astype(np.int64) - b[n]).mean()) for n in a) / 257 < 2.5


def test_a_matte_sequence_shorter_than_the_shot_fails_before_any_frame(
    tmp_path: Path, plates: Path, tiny_model: Path, mattes: Path
) -> None:
    short = tmp_path / "short"
    short.mkdir()
    for n in range(FIRST, FIRST + 10):
        (short / f"m.{n}.png").write_bytes((mattes / f"m.{n}.png").read_bytes())
    job = write_job(tmp_path / "job", plates=plates, model=tiny_model, mask=str(short / "m.%04d.png"))
    with pytest.raises(InvalidInputError, match=r"no matte for frame 1011: .*m\.1011\.png' is missing"):
        render(load_job(job))
    assert not (tmp_path / "job" / "out").exists()


def test_a_relative_mask_in_a_job_file_is_relative_to_the_file(tmp_path: Path, plates: Path, tiny_model: Path,
                                                               mattes: Path) -> None:
    folder = tmp_path / "job"
    (folder / "mattes").mkdir(parents=True)
    for p in mattes.iterdir():
        (folder / "mattes" / p.name).write_bytes(p.read_bytes())
    job = load_job(write_job(folder, plates=plates, model=tiny_model, mask="mattes/m.%04d.png"))
    assert job.stylize.mask == str(folder / "mattes" / "m.%04d.png")


def test_a_region_matte_sequence_shorter_than_the_shot_fails_before_any_frame(
    tmp_path: Path, plates: Path, tiny_model: Path, mattes: Path
) -> None:
    """``style = ["painting.png@short/m.%04d.png"]`` in a job: checked like ``mask`` before any output."""
    short = tmp_path / "short"
    short.mkdir()
    for n in range(FIRST, FIRST + 10):
        (short / f"m.{n}.png").write_bytes((mattes / f"m.{n}.png").read_bytes())
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), np.full((40, 40, 3), 90, np.uint8))
    job = tmp_path / "job" / "shot.toml"
    job.parent.mkdir()
    job.write_text(f'input = "{plates / "sh.%04d.png"}"\noutput = "out/sh.%04d.png"\nbackend = "optim"\n'
                   f'style = ["{painting}@{short / "m.%04d.png"}"]\nstabilize = 0\nthreads = 1\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"style: no matte for frame 1011: .*m\.1011\.png' is missing"):
        render(load_job(job))
    assert not (tmp_path / "job" / "out").exists()
