"""Patch renders: a sub-range warms up on the frames before it, so it equals the full render
within the chunk-seam tolerance (a cold start does not), and ``--patch`` splices it into the
finished render, updating the manifest; bad ranges are one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from render_helpers import SEAM_MAX_LEVELS, SEAM_MEAN_LEVELS, SEAM_OVERLAP, SEAM_STABILIZE, read_frames, write_job

from vidstyle.io.hashing import file_sha256
from vidstyle.render import load_job, render

KEYS = {"bit_depth": 16, "stabilize": SEAM_STABILIZE, "overlap": SEAM_OVERLAP}
FIRST, LAST = 1012, 1018  # the patched range inside the 1001-1024 test shot


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.float64) - b.astype(np.float64)) / 257  # 16-bit → 8-bit levels


@pytest.fixture(scope="module")
def full(tmp_path_factory, plates: Path, tiny_model: Path) -> tuple[Path, dict[int, np.ndarray]]:
    folder = tmp_path_factory.mktemp("full")
    job = write_job(folder, plates=plates, model=tiny_model, **KEYS)
    render(load_job(job))
    return job, read_frames(folder / "out")


def test_sub_range_warms_up_on_the_frames_before_it(tmp_path: Path, plates: Path, tiny_model: Path, full) -> None:
    _, whole = full
    warm = write_job(tmp_path / "warm", plates=plates, model=tiny_model, frames=f"{FIRST}-{LAST}", **KEYS)
    cold = write_job(tmp_path / "cold", plates=plates, model=tiny_model, frames=f"{FIRST}-{LAST}",
                     **{**KEYS, "overlap": 0, "crossfade": 0})
    render(load_job(warm))
    render(load_job(cold))
    manifest = json.loads((tmp_path / "warm" / "out" / "sh.manifest.json").read_text())
    assert manifest["chunks"][0]["warmup_from"] == FIRST - SEAM_OVERLAP and manifest["chunks"][0]["warmup"] == 6
    w, c = read_frames(tmp_path / "warm" / "out"), read_frames(tmp_path / "cold" / "out")
    assert sorted(w) == list(range(FIRST, LAST + 1))
    d_warm, d_cold = _levels(w[FIRST], whole[FIRST]), _levels(c[FIRST], whole[FIRST])
    assert d_warm.mean() <= SEAM_MEAN_LEVELS and d_warm.max() <= SEAM_MAX_LEVELS
    assert d_cold.mean() > 2 * SEAM_MEAN_LEVELS  # the cold start is what the warm-up fixes
    assert max(_levels(w[n], whole[n]).mean() for n in w) <= SEAM_MEAN_LEVELS


def test_patch_replaces_the_range_and_updates_the_manifest(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    job = write_job(tmp_path, plates=plates, model=tiny_model, **KEYS)
    render(load_job(job))
    out = tmp_path / "out"
    before = read_frames(out)
    old_bytes = {n: (out / f"sh.{n}.png").read_bytes() for n in before}
    # damage the range, as an artist's fix would change it: the patch must put rendered frames back
    for n in range(FIRST, LAST + 1):
        (out / f"sh.{n}.png").write_bytes(old_bytes[1001])
    result = render(load_job(job, overrides={"frames": (FIRST, LAST)}), patch=True)
    assert result.frames_rendered == LAST - FIRST + 1
    after = read_frames(out)
    for n in before:
        if FIRST <= n <= LAST:
            d = _levels(after[n], before[n])
            assert d.mean() <= SEAM_MEAN_LEVELS and d.max() <= SEAM_MAX_LEVELS, n
        else:
            assert (out / f"sh.{n}.png").read_bytes() == old_bytes[n], n  # untouched
    manifest = json.loads((out / "sh.manifest.json").read_text())
    for rec in manifest["frames"]:
        n = rec["number"]
        assert rec["sha256"] == file_sha256(out / rec["file"]), n  # every hash tells the truth
        assert ("patch" in rec) == (FIRST <= n <= LAST)
    assert manifest["runs"][-1]["patch"] == f"{FIRST}-{LAST}" and manifest["runs"][-1]["warmup_from"] == FIRST - 6
    assert manifest["status"] == "complete"
    assert not list(tmp_path.glob("out/.*.patch"))  # the patch's folder is gone
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".png")) == sorted(f"sh.{n}.png" for n in before)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidstyle", "render", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(
    "frames, expect",
    [("1020-1030", "--frames: patch range 1020-1030 is outside the rendered shot 1001-1024"),
     ("990-1005", "--frames: patch range 990-1005 is outside the rendered shot 1001-1024")],
)
def test_patch_range_outside_the_shot_is_one_line(tmp_path: Path, plates: Path, tiny_model: Path, full,
                                                  frames: str, expect: str) -> None:
    job, _ = full
    out = job.parent / "out"
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = _cli(str(job), "--patch", "--frames", frames)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "Traceback" not in r.stderr
    assert expect in lines[0] and "choose frames within it" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp  # nothing written


def test_patch_without_a_render_is_one_line(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    job = write_job(tmp_path, plates=plates, model=tiny_model, **KEYS)
    r = _cli(str(job), "--patch", "--frames", "1010-1012")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "no render of" in r.stderr and "render the shot first" in r.stderr
    assert not (tmp_path / "out").exists()


def test_patch_of_a_video_or_with_resume_is_refused(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    from vidstyle.errors import InvalidOptionError

    video = load_job(write_job(tmp_path, plates=plates, model=tiny_model, output="sh.mov", frames="1010-1012"))
    with pytest.raises(InvalidOptionError, match="image-sequence render"):
        render(video, patch=True)
    frames = load_job(write_job(tmp_path, plates=plates, model=tiny_model, name="b.toml", frames="1010-1012"))
    with pytest.raises(InvalidOptionError, match="--patch and --resume"):
        render(frames, patch=True, resume=True)
    assert not list(tmp_path.glob("**/*.png")) and not list(tmp_path.glob("*.mov"))
