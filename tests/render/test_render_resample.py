"""Render jobs with the resample stabiliser: its state (a ring buffer of network outputs and per-pixel tracks) is
not exported to the side-car, so a resume replays the chunk from its first frame and the resumed frames are
bit-identical to an uninterrupted render; the back ends' temporal defaults of ``vidstyle stylize`` apply to jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from render_helpers import read_frames, write_job

from vidstyle.render import load_job, render


def _interrupt_after(n_frames: int):
    def progress(info: object) -> None:
        if info.done >= n_frames:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    return progress


def test_resample_resume_replays_the_chunk_and_is_bit_identical(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    keys = {"frames": "1001-1014", "bit_depth": 16, "stabilizer": "resample"}
    full = write_job(tmp_path / "full", plates=plates, model=tiny_model, **keys)
    part = write_job(tmp_path / "part", plates=plates, model=tiny_model, **keys)
    render(load_job(full))
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part), progress=_interrupt_after(6))
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    done = [f["number"] for f in manifest["frames"] if f["status"] == "done"]
    assert 6 <= len(done) < 14
    result = render(load_job(part), resume=True)
    assert result.resumed and result.frames_rendered == 14 - len(done)
    a = read_frames(tmp_path / "full" / "out")
    b = read_frames(tmp_path / "part" / "out")
    assert sorted(a) == sorted(b) == list(range(1001, 1015))
    for n in a:
        assert np.array_equal(a[n], b[n]), n
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    assert manifest["chunks"][0]["last_start"]["state"] == "replay"


@pytest.fixture(scope="module")
def heavy_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("heavy") / "heavy.safetensors"
    save_file({"a.weight": torch.zeros(1100, 1000)}, str(path))  # counted from the header only
    return str(path)


#: a light TransformerNet file (the retired tiny model, kept as a benchmark baseline): blend at LIGHT_TEMPORAL's strength
LIGHT_FILE = str(Path(__file__).resolve().parents[2] / "benchmarks" / "baselines" / "starry_tiny.safetensors")


def _job(**keys: object):
    from vidstyle.render.job import job_from_mapping

    overrides = keys.pop("overrides", None)
    return job_from_mapping({"input": "/plates/sh.%04d.png", "output": "/out/sh.%04d.png", **keys},
                            overrides=overrides)  # type: ignore[arg-type]


def test_jobs_get_the_stylize_commands_temporal_defaults(heavy_file: str) -> None:
    from vidstyle.options import TemporalOptions
    from vidstyle.options.curve import Curve

    # the default model (starry_student) at its own strength of the resample stabiliser
    assert _job().temporal == TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.75))
    assert _job(model="scream_student").temporal == TemporalOptions(flow="dis-medium", stabilizer="resample",
                                                                    stabilize=Curve.constant(0.9))
    assert _job(model=LIGHT_FILE).temporal == TemporalOptions(stabilize=Curve.constant(0.75))  # a light TransformerNet
    assert _job(model=heavy_file).temporal == TemporalOptions(flow="dis-medium", stabilizer="resample")
    # keys in the file and flags win
    assert _job(model=heavy_file, stabilizer="blend").temporal == TemporalOptions(flow="dis-medium", stabilizer="blend")
    assert _job(model=heavy_file, overrides={"flow": "dis-fast"}).temporal == \
        TemporalOptions(flow="dis-fast", stabilizer="resample")
    assert _job(model=LIGHT_FILE, stabilize=0.85).temporal == TemporalOptions(stabilize=Curve.constant(0.85))
    job = _job(stabilize={"1001": 0.3, "1048": 0.85})
    assert job.temporal.stabilize == Curve(keys=((1001.0, 0.3), (1048.0, 0.85)))
    assert job.given["stabilize"] == "file" and job.given["stabilizer"] == "default"
