"""Rendering shots in process: frame ranges and numbering, bit depth carried through, the manifest,
determinism, resume (state side-car and read-back), chunks with warm-up and cross-fade, retries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from render_helpers import (
    COUNT,
    FIRST,
    SEAM_CROSSFADE,
    SEAM_MAX_LEVELS,
    SEAM_MEAN_LEVELS,
    SEAM_OVERLAP,
    SEAM_STABILIZE,
    fail_once,
    read_frames,
    shot_image,
    write_job,
)

from vidstyle.errors import InvalidOptionError, OutputExistsError
from vidstyle.render import load_job, render
from vidstyle.render.executor import LocalExecutor
from vidstyle.render.manifest import file_sha256, pixels_sha256


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


DEVICES = _devices()


def _render(job_path: Path, **overrides: object):
    return render(load_job(job_path, overrides=overrides or None))


def test_frame_range_numbering_manifest_and_16_bit(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1003-1014", bit_depth=16)
    result = _render(job)
    out = read_frames(tmp_path / "out")
    assert sorted(out) == list(range(1003, 1015))  # the shot's own numbers, exactly the range
    assert result.frames == result.frames_rendered == 12
    img = out[1003]
    assert img.dtype == np.uint16
    # 16 bits carried through: far more than 256 levels, not a multiple-of-257 (8-bit) ladder
    assert np.unique(img).size > 256 and np.any(img % 257 != 0)

    manifest = json.loads((tmp_path / "out" / "sh.manifest.json").read_text())
    from vidstyle import __version__

    assert manifest["status"] == "complete"
    assert manifest["vidstyle_version"] == __version__
    assert manifest["parameters"]["seed"] == 5 and manifest["parameters"]["frames"] == [1003, 1014]
    assert manifest["parameters"]["bit_depth"] == 16
    assert manifest["model"]["sha256"] == file_sha256(tiny_model)
    assert manifest["shot"]["numbers"] == list(range(1003, 1015))
    assert manifest["determinism"]["seed"] == 5 and manifest["determinism"]["torch_threads_per_worker"] == 1
    assert "torch" in manifest["environment"] and "cpu" in manifest["environment"]
    frames = manifest["frames"]
    assert [f["number"] for f in frames] == list(range(1003, 1015))
    for f in frames:
        assert f["status"] == "done" and f["chunk"] == 0 and f["attempt"] == 1
        path = tmp_path / "out" / f["file"]
        assert f["sha256"] == file_sha256(path)
        assert f["pixels_sha256"] == pixels_sha256(out[f["number"]])
    assert manifest["runs"][-1]["status"] == "complete"
    assert manifest["summary"]["frames_done"] == 12 and manifest["summary"]["failures"] == []
    assert not (tmp_path / "out" / ".sh.render").exists()  # work folder removed when complete
    assert not list((tmp_path / "out").glob("*partial*"))


def test_16_bit_and_float_outputs_are_not_quantised_to_8_bits(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    """The render's outputs equal the network's float output within the output's own quantisation."""
    import torch

    from vidstyle.nets.registry import load_model
    from vidstyle.stylize.feedforward import image_to_tensor

    model = load_model(tiny_model).eval()
    torch.set_num_threads(1)
    with torch.inference_mode():
        expect = model(image_to_tensor(shot_image(2))[None])[0].permute(1, 2, 0).numpy()

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1003-1004", stabilize=0.0, bit_depth=16)
    _render(job)
    got16 = read_frames(tmp_path / "out")[1003].astype(np.float64) / 65535
    # 16-bit rounding (0.5/65535) plus float noise of the network call: within 1 step of 16 bits, 1/257 of an 8-bit step
    assert np.abs(got16 - expect).max() <= 1.0 / 65535

    job = write_job(tmp_path / "f", plates=plates, model=tiny_model, frames="1003-1004", stabilize=0.0, bit_depth=32,
                    output="out/sh.%04d.exr")
    _render(job)
    got32 = read_frames(tmp_path / "f" / "out", "sh.*.exr")[1003]
    assert got32.dtype == np.float32
    assert np.abs(got32 - expect).max() <= 2e-5  # float: the network's own float noise


@pytest.mark.parametrize("device", DEVICES)
def test_two_renders_are_bit_identical(tmp_path: Path, plates: Path, tiny_model: Path, device: str) -> None:
    a = write_job(tmp_path / "a", plates=plates, model=tiny_model, frames="1001-1012", device=device)
    b = write_job(tmp_path / "b", plates=plates, model=tiny_model, frames="1001-1012", device=device)
    _render(a)
    _render(b)
    fa, fb = read_frames(tmp_path / "a" / "out"), read_frames(tmp_path / "b" / "out")
    assert sorted(fa) == sorted(fb) == list(range(1001, 1013))
    for n in fa:
        assert np.array_equal(fa[n], fb[n]), n
    ma = json.loads((tmp_path / "a" / "out" / "sh.manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "out" / "sh.manifest.json").read_text())
    assert [f["pixels_sha256"] for f in ma["frames"]] == [f["pixels_sha256"] for f in mb["frames"]]
    assert [f["sha256"] for f in ma["frames"]] == [f["sha256"] for f in mb["frames"]]


def test_existing_render_needs_resume_or_overwrite(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1003")
    _render(job)
    with pytest.raises(OutputExistsError, match="--resume.*--overwrite"):
        _render(job)
    result = _render(job, overwrite=True)
    assert result.frames_rendered == 3
    # a finished render is not an interrupted one: --resume refuses it (it would "succeed" doing nothing);
    # a changed parameter refuses to resume
    with pytest.raises(InvalidOptionError, match=r"--resume: the render of '.*' is complete .*nothing to resume"):
        render(load_job(job), resume=True)
    with pytest.raises(InvalidOptionError, match="key 'seed' is 5 in the manifest but 6 now"):
        render(load_job(job, overrides={"seed": 6}), resume=True)


def test_resume_refuses_a_changed_model_file(
    tmp_path: Path, plates: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import torch

    from vidstyle.cli.main import main
    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    model = tmp_path / "model" / "tiny.safetensors"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    job = write_job(tmp_path, plates=plates, model=model, frames="1001-1002", stabilize=0.0)
    _render(job)
    torch.manual_seed(1)  # the same name and architecture, other weights
    save_model(model, net=TransformerNet(config="tiny"), name="tiny_random", style="random")
    assert file_sha256(model) != file_sha256(tiny_model)
    capsys.readouterr()
    assert main(["render", str(job), "--resume", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vidstyle: error: --resume: the model file changed since the render started (different SHA-256); "
                   "restore it, or start again with --overwrite"]
    shutil.copy(tiny_model, model)  # restored: the model check passes (and the finished render has nothing to resume)
    with pytest.raises(InvalidOptionError, match="is complete"):
        render(load_job(job), resume=True)


def _interrupt_after(n_frames: int):
    """A progress callback raising KeyboardInterrupt (as Ctrl-C does) after n frames."""

    def progress(info: object) -> None:
        if info.done >= n_frames:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize(
    "bit_depth, ext, device",
    [(8, "png", "cpu"), (16, "png", "cpu"), (16, "exr", "cpu")] + [(16, "png", d) for d in DEVICES if d != "cpu"],
)
def test_interrupted_then_resumed_equals_uninterrupted(
    tmp_path: Path, plates: Path, tiny_model: Path, bit_depth: int, ext: str, device: str
) -> None:
    """With the state side-car the resumed frames are bit-identical, whatever the output depth."""
    keys = {"frames": "1001-1016", "bit_depth": bit_depth, "output": f"out/sh.%04d.{ext}", "device": device}
    full = write_job(tmp_path / "full", plates=plates, model=tiny_model, **keys)
    part = write_job(tmp_path / "part", plates=plates, model=tiny_model, **keys)
    _render(full)
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part), progress=_interrupt_after(6))
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    done = [f["number"] for f in manifest["frames"] if f["status"] == "done"]
    assert 6 <= len(done) < 16
    result = render(load_job(part), resume=True)
    assert result.resumed and result.frames_rendered == 16 - len(done)
    a = read_frames(tmp_path / "full" / "out", f"sh.*.{ext}")
    b = read_frames(tmp_path / "part" / "out", f"sh.*.{ext}")
    assert sorted(a) == sorted(b) == list(range(1001, 1017))
    for n in a:
        assert np.array_equal(a[n], b[n]), n
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["runs"]) == 2
    assert manifest["chunks"][0]["last_start"]["state"] == "sidecar"
    attempts = {f["number"]: f["attempt"] for f in manifest["frames"]}
    assert all(attempts[n] == 1 for n in done) and attempts[1016] == 2


def test_resume_without_side_car_reads_the_state_back_from_the_output(
    tmp_path: Path, plates: Path, tiny_model: Path
) -> None:
    """Read-back of a 16-bit frame: the state differs by ≤ 0.5/65535, the resumed frames by ≤ 2 levels of 65535."""
    keys = {"frames": "1001-1016", "bit_depth": 16}
    full = write_job(tmp_path / "full", plates=plates, model=tiny_model, **keys)
    part = write_job(tmp_path / "part", plates=plates, model=tiny_model, **keys)
    _render(full)
    with pytest.raises(KeyboardInterrupt):
        render(load_job(part), progress=_interrupt_after(6))
    for p in (tmp_path / "part" / "out" / ".sh.render" / "state").glob("*.safetensors"):
        p.unlink()
    render(load_job(part), resume=True)
    manifest = json.loads((tmp_path / "part" / "out" / "sh.manifest.json").read_text())
    assert manifest["chunks"][0]["last_start"]["state"] == "output"
    a = read_frames(tmp_path / "full" / "out")
    b = read_frames(tmp_path / "part" / "out")
    worst = max(int(np.abs(a[n].astype(np.int64) - b[n]).max()) for n in a)
    assert worst <= 2, worst


def test_local_chunks_with_warmup_crossfade_and_a_retry(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    """Three chunks in one process (the Ray code path without Ray): close to the single render,
    every frame attributed to its chunk, a failing chunk retried from where it stopped."""
    keys = {"bit_depth": 16, "stabilize": SEAM_STABILIZE}
    single = write_job(tmp_path / "single", plates=plates, model=tiny_model, **keys)
    chunked = write_job(tmp_path / "chunked", plates=plates, model=tiny_model, chunk_frames=8,
                        overlap=SEAM_OVERLAP, crossfade=SEAM_CROSSFADE, **keys)
    _render(single)
    marker = tmp_path / "fault-marker"
    job = load_job(chunked)
    faulty = LocalExecutor(retries=job.retries, chunk_function=fail_once(chunk=1, after=1011, marker=marker))
    result = render(job, executor=faulty)
    assert marker.exists() and not result.failures
    assert any("chunk 1 failed" in w and "injected fault" in w for w in result.warnings), result.warnings
    a = read_frames(tmp_path / "single" / "out")
    b = read_frames(tmp_path / "chunked" / "out")
    assert sorted(a) == sorted(b) == list(range(FIRST, FIRST + COUNT))
    for n in range(1001, 1006):  # chunk 0 before the cross-fade is the single render's computation
        assert np.array_equal(a[n], b[n]), n
    levels = {n: np.abs(a[n].astype(np.float64) - b[n]) / 257 for n in a}
    assert max(float(d.mean()) for d in levels.values()) <= SEAM_MEAN_LEVELS
    assert max(float(d.max()) for d in levels.values()) <= SEAM_MAX_LEVELS
    manifest = json.loads((tmp_path / "chunked" / "out" / "sh.manifest.json").read_text())
    by_n = {f["number"]: f for f in manifest["frames"]}
    assert [by_n[n]["chunk"] for n in range(1001, 1025)] == [0] * 8 + [1] * 8 + [2] * 8
    assert by_n[1006]["crossfade"] == {"with_chunk": 1, "weight": 0.25}
    assert by_n[1008]["crossfade"]["weight"] == 0.75 and "crossfade" not in by_n[1009]
    assert by_n[1012]["attempt"] == 2 and by_n[1011]["attempt"] == 1  # the retry continued at 1012
    assert manifest["chunks"][1]["attempts"] == 2 and manifest["chunks"][1]["status"] == "done"
    assert manifest["chunks"][1]["last_start"]["state"] == "sidecar"
    for f in manifest["frames"]:
        assert f["sha256"] == file_sha256(tmp_path / "chunked" / "out" / f["file"])


def test_video_output_prores_with_timecode_and_16_bit(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    from vidstyle.io import open_source

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1008", output="sh010.mov",
                    bit_depth=16, fps="24000/1001", timecode="01:00:10:00", stabilize=0.0)
    result = _render(job)
    assert result.output == tmp_path / "sh010.mov" and result.output.is_file()
    with open_source(result.output) as src:
        info = src.info
        frames = [f.image for f in src]
    assert info.codec == "prores" and info.bit_depth == 16 and "422" in (info.pix_fmt or "")
    assert info.fps == pytest.approx(24000 / 1001)
    assert info.timecode == "01:00:10:00"
    assert len(frames) == 8
    manifest = json.loads((tmp_path / "sh010.mov.manifest.json").read_text())
    assert manifest["output"]["sha256"] == file_sha256(result.output)
    assert manifest["output"]["encoder"]["pix_fmt"] == "yuv422p10le"
    assert [f["video_index"] for f in manifest["frames"]] == list(range(8))


def test_video_input_exact_frames_chunks_and_timecode(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    """A ProRes master as input: frame numbers are 0-based frame indices; a range starts exactly
    there (chunks seek into the file and get the same frames); the timecode follows the range."""
    from vidstyle.io import open_source

    master = write_job(tmp_path / "m", plates=plates, model=tiny_model, frames="1001-1012", output="master.mov",
                       bit_depth=16, timecode="01:00:00:00", fps=24, stabilize=0.0)
    mov = _render(master).output
    keys = {"input": str(mov), "frames": "3-10", "bit_depth": 16, "stabilize": 0.0, "fps": None}
    single = write_job(tmp_path / "s", plates=plates, model=tiny_model, **keys)
    chunked = write_job(tmp_path / "c", plates=plates, model=tiny_model, chunk_frames=3, overlap=2, crossfade=0, **keys)
    _render(single)
    _render(chunked)
    a, b = read_frames(tmp_path / "s" / "out"), read_frames(tmp_path / "c" / "out")
    assert sorted(a) == sorted(b) == list(range(3, 11))
    for n in a:  # per-frame stylization: identical only if every chunk decoded exactly the same frames
        assert np.array_equal(a[n], b[n]), n
    to_mov = write_job(tmp_path / "v", plates=plates, model=tiny_model, output="part.mov", **keys)
    out = _render(to_mov).output
    with open_source(out) as src:
        assert src.info.timecode == "01:00:00:03"
        assert src.info.frame_count == 8


def test_ffv1_mkv_is_lossless_16_bit(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    from vidstyle.io import open_source

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1004", output="sh.mkv",
                    bit_depth=16, keep_frames=True, stabilize=0.0)
    _render(job)
    frames_dir = tmp_path / ".sh.mkv.render" / "frames"
    from vidstyle.io import read_image

    kept = [read_image(p) for p in sorted(frames_dir.glob("*.png"))]
    with open_source(tmp_path / "sh.mkv") as src:
        decoded = [f.image for f in src]
    assert len(kept) == len(decoded) == 4
    for k, d in zip(kept, decoded):
        assert k.dtype == d.dtype == np.uint16
        assert np.array_equal(k, d)


def test_exr_outputs_carry_timecode_and_rate(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    import OpenEXR

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1003", output="out/sh.%04d.exr",
                    bit_depth=16, fps=25, timecode="10:00:00:00", stabilize=0.0)
    _render(job)
    with OpenEXR.File(str(tmp_path / "out" / "sh.1003.exr")) as f:
        header = dict(f.header())
        pixels = f.channels()["RGB"].pixels
        tc = header["timeCode"]
        assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == (10, 0, 0, 2)
        assert header["framesPerSecond"] == 25
    assert pixels.dtype == np.float16  # bit_depth 16 in EXR = half


def test_start_number_renumbers_the_output(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1005-1007", start_number=1, stabilize=0.0)
    _render(job)
    assert sorted(read_frames(tmp_path / "out")) == [1, 2, 3]


def test_cli_render_and_errors(tmp_path: Path, plates: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vidstyle.cli.main import main

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1003")
    assert main(["render", str(job), "--frames", "1002-1003", "--bit-depth", "8", "--quiet"]) == 0
    assert sorted(read_frames(tmp_path / "out")) == [1002, 1003]
    assert read_frames(tmp_path / "out")[1002].dtype == np.uint8
    capsys.readouterr()
    assert main(["render", str(job), "--bit-depth", "12"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidstyle: error: --bit-depth must be one of 8, 16, 32, got '12'")
    assert main(["render", str(job)]) == 1
    assert "--resume" in capsys.readouterr().err
    # the same options: the job is found, and it is finished, so there is nothing to resume (issue 17)
    assert main(["render", str(job), "--frames", "1002-1003", "--bit-depth", "8", "--resume", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is complete" in err[0] and "nothing to resume" in err[0]


def test_precision_reaches_the_stages_manifest_and_output(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    """A render job's precision was validated and recorded but never given to the stages (bfloat16
    jobs ran in float32): now the network runs in it, and the output differs from float32's."""
    import torch

    from vidstyle.render.chunk import build_render_stages

    outputs = {}
    for precision in ("float32", "bfloat16"):
        folder = tmp_path / precision
        folder.mkdir()
        job = load_job(write_job(folder, plates=plates, model=tiny_model, frames="1001-1004", precision=precision))
        stages = build_render_stages(job, threads=1)
        try:
            stylize = next(s for s in stages if getattr(s, "name", "") == "stylize")
            assert stylize.stylizer.dtype == getattr(torch, precision)
        finally:
            for s in stages:
                s.close()
        result = render(job)
        manifest = json.loads(Path(result.manifest).read_text())
        assert manifest["parameters"]["precision"] == precision
        outputs[precision] = read_frames(folder / "out")
    diffs = [np.abs(outputs["float32"][n].astype(np.int64) - outputs["bfloat16"][n].astype(np.int64)).max()
             for n in outputs["float32"]]
    assert sorted(outputs["float32"]) == sorted(outputs["bfloat16"]) == [1001, 1002, 1003, 1004]
    assert max(diffs) > 0  # bfloat16 rounds differently ...
    assert max(diffs) < 0.1 * 65535  # ... but it is the same picture


def test_keyframed_stabilize_in_a_job(tmp_path: Path, plates: Path, tiny_model: Path) -> None:
    """stabilize keyframed over the shot's frame numbers: per-frame output where the curve is 0,
    stabilised output where it is 1; the manifest records the curve."""
    outs = {}
    for name, value in (("per_frame", 0.0), ("stable", 0.9), ("curve", "1001:0, 1003:0, 1004:0.9")):
        folder = tmp_path / name
        folder.mkdir()
        job = load_job(write_job(folder, plates=plates, model=tiny_model, frames="1001-1008", stabilize=value))
        result = render(job)
        outs[name] = read_frames(folder / "out")
        if name == "curve":
            assert json.loads(Path(result.manifest).read_text())["parameters"]["stabilize"] == "1001:0, 1003:0, 1004:0.9"
    for n in (1001, 1002, 1003):  # strength 0: exactly the per-frame output
        assert np.array_equal(outs["curve"][n], outs["per_frame"][n])
    late = [n for n in range(1005, 1009) if not np.array_equal(outs["curve"][n], outs["per_frame"][n])]
    assert late == [1005, 1006, 1007, 1008]  # stabilised from 1004 on


def test_resume_hint_repeats_overrides_and_a_finished_job_is_not_resumed(
    tmp_path: Path, plates: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: after Ctrl-C on `render shot.toml --output other/…`, the hint must name --output, and
    `render shot.toml --resume` (the finished default job) must refuse instead of "succeeding"."""
    import shlex

    import vidstyle.render.runner as runner
    from vidstyle.cli.main import main

    job = write_job(tmp_path, plates=plates, model=tiny_model, frames="1001-1004", stabilize=0.0)
    assert main(["render", str(job), "-q"]) == 0  # the default output, finished
    real = runner.render
    monkeypatch.setattr(runner, "render", lambda job, **kw: real(job, **{**kw, "progress": _interrupt_after(1)}))
    other = tmp_path / "other" / "sh.%04d.png"
    capsys.readouterr()
    assert main(["render", str(job), "--output", str(other)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidstyle: interrupted; finished frames are kept; continue with: ")
    hint = err[0].split("continue with: ")[1]
    assert "--output" in hint and str(other) in hint and hint.endswith(" --resume")
    monkeypatch.setattr(runner, "render", real)
    assert main(["render", str(job), "--resume", "-q"]) == 1  # the job it finds is the finished one
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is complete" in err[0] and "nothing to resume" in err[0] and "--output" in err[0]
    argv = shlex.split(hint)[1:]  # the hint as typed, without "vidstyle"
    assert main(argv) == 0
    out = capsys.readouterr().err
    rendered = int(out.split("(")[1].split(" this run")[0])
    assert 0 < rendered < 4 and sorted(p.name for p in other.parent.glob("sh.*.png")) == [
        f"sh.{n}.png" for n in range(1001, 1005)]
