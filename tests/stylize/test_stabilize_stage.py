"""StabilizeStage: the stabiliser as a stage of its own gives, to the bit, what the stylize stage gives
when it stabilises itself; the file pipeline uses it on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ff_helpers import (
    frames_with_flow,
    random_model,
    run_stage,
    translating_sequence,
)

from vidstyle.errors import InvalidOptionError, ShapeError
from vidstyle.frame import Frame, from_float32
from vidstyle.stylize.feedforward import FeedForwardStage
from vidstyle.stylize.stabilize import StabilizeStage
from vidstyle.stylize.temporal import Stabilizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(**kw) -> FeedForwardStage:
    return FeedForwardStage(model=random_model(0), device="cpu", **kw)


def _chain(stages, frames: list[Frame]) -> list[Frame]:
    for stage in stages:
        frames = run_stage(stage, frames)
    return frames


def _sequence(dtype: type, n: int = 7) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    images, flow, cons = translating_sequence(n, 40, 56, dx=1.5, noise=0.02, seed=3)
    return [from_float32(im, dtype) for im in images], flow, cons


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_same_output_as_stabilising_inside_the_stylize_stage(dtype: type, batch_size: int) -> None:
    images, flow, cons = _sequence(dtype)

    def frames() -> list[Frame]:
        out = frames_with_flow(images, flow, cons)
        for i, f in enumerate(out[1:], 1):
            f.warp_error = np.full(f.image.shape[:2], 0.002 * i, np.float32)  # some pixels get confirmed
            f.consistency = f.consistency.copy()
            f.consistency[:, 20:24] = 0.0
        out[4].scene_cut = True
        return out

    inside = _chain([_net(batch_size=batch_size, stabilize=0.85)], frames())
    split = _chain([_net(batch_size=batch_size, stabilize=0.0, raw_output=True), StabilizeStage(strength=0.85)],
                   frames())
    per_frame = _chain([_net(batch_size=batch_size, stabilize=0.0)], frames())
    assert [f.index for f in split] == list(range(len(images)))
    for a, b, p in zip(inside, split, per_frame):
        assert b.stylized.dtype == np.dtype(dtype) and b.stylized.shape == b.image.shape
        np.testing.assert_array_equal(a.stylized, b.stylized)
    # it did stabilise: frames after the first (and after the cut at 4) differ from per-frame output
    assert not np.array_equal(split[2].stylized, per_frame[2].stylized)
    np.testing.assert_array_equal(split[4].stylized, per_frame[4].stylized)


def test_raw_output_is_the_unquantised_network_output() -> None:
    images, _, _ = _sequence(np.uint8, n=2)
    raw = run_stage(_net(stabilize=0.0, raw_output=True), [Frame(index=0, image=images[0])])[0].stylized
    quantised = run_stage(_net(stabilize=0.0), [Frame(index=0, image=images[0])])[0].stylized
    assert raw.dtype == np.float32 and raw.shape == (40, 56, 3)
    np.testing.assert_array_equal(from_float32(np.clip(raw, 0, 1), np.uint8), quantised)
    with pytest.raises(InvalidOptionError, match="stabilize=0"):
        _net(stabilize=0.5, raw_output=True)


def test_without_flow_or_picture_it_only_converts() -> None:
    images, _, _ = _sequence(np.uint8, n=3)
    stage = StabilizeStage()
    assert stage.name == "stabilize" and stage.stabilize == pytest.approx(0.85)
    bare = Frame(index=0, image=images[0])
    assert stage.process(bare) == [bare] and bare.stylized is None
    f = Frame(index=1, image=images[1], stylized=images[2].astype(np.float32) / 255.0)
    (out,) = stage.process(f)
    np.testing.assert_array_equal(out.stylized, images[2])  # first frame: nothing to blend with
    with pytest.raises(ShapeError, match="does not match"):
        stage.process(Frame(index=2, image=images[0], stylized=images[0][:20]))
    custom = Stabilizer(strength=0.3)
    assert StabilizeStage(stabilizer=custom).stabilizer is custom
    stage.close()
    assert stage.stabilizer.previous is None and stage.finish() == []


def test_the_file_pipeline_stabilises_in_its_own_stage_on_the_cpu() -> None:
    from vidstyle.api import build_stages

    threads = torch.get_num_threads()
    try:
        flow, stylize, stab = build_stages(device="cpu", stabilize=0.85, flow="dis-fast", threads=1)
        assert [s.name for s in (flow, stylize, stab)] == ["flow", "stylize", "stabilize"]
        assert stylize.raw_output and stylize.stabilize == 0.0 and stab.stabilize == pytest.approx(0.85)
        # not shared: the runner closes the stylize stage while the last frame may still be stabilised
        assert stab.stabilizer is not stylize.stabilizer
        stages = build_stages(device="cpu", stabilize=0.85, flow="dis-fast", threads=1, separate_stabilizer=False)
        assert [s.name for s in stages] == ["flow", "stylize"] and stages[1].stabilize == pytest.approx(0.85)
        assert [s.name for s in build_stages(device="cpu", stabilize=0.0, threads=1)] == ["stylize"]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_resample_gets_the_input_frame_as_its_guide(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both places that stabilise (the stylize stage and the stage of its own) hand the tracker the
    frame's input picture, as float32 in 0..1, for its drift check; the two give the same output."""
    from vidstyle.stylize import resample

    images, flow, cons = _sequence(dtype, n=4)
    seen: list[np.ndarray | None] = []
    step = resample.TextureTracker.step

    def spy(self, new, **kw):
        seen.append(kw.get("guide"))
        return step(self, new, **kw)

    monkeypatch.setattr(resample.TextureTracker, "step", spy)
    inside = _chain([_net(stabilize=0.85, stabilizer="resample")], frames_with_flow(images, flow, cons))
    split = _chain([_net(stabilize=0.0, raw_output=True), StabilizeStage(strength=0.85, method="resample")],
                   frames_with_flow(images, flow, cons))
    assert len(seen) == 8 and all(g is not None and g.dtype == np.float32 for g in seen)
    expected = images[2].astype(np.float32) / np.float32(np.iinfo(dtype).max if dtype != np.float32 else 1.0)
    np.testing.assert_allclose(seen[2], expected, atol=1e-6)
    for a, b in zip(inside, split):
        np.testing.assert_array_equal(a.stylized, b.stylized)
