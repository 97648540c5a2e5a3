"""FlowStage: fills Frame.flow_bwd / flow_fwd / consistency / scene_cut."""

from __future__ import annotations

import numpy as np
import pytest

from flow_synth import texture
from vidstyle.errors import InvalidOptionError
from vidstyle.flow import FlowStage, make_flow_estimator
from vidstyle.frame import Frame


def _panning(n=4, h=96, w=128, step=3):
    big = texture(h, w + n * step, seed=5)
    # frame i shows the window starting at i·step: content moves left by `step` px per frame
    return [np.ascontiguousarray(big[:, i * step : i * step + w]) for i in range(n)]


def test_fills_fields_in_order():
    stage = FlowStage(estimator="dis-fast")
    assert stage.name == "flow"
    frames = [Frame(index=i, image=img) for i, img in enumerate(_panning())]
    out = [f for fr in frames for f in stage.process(fr)]
    assert [f.index for f in out] == [0, 1, 2, 3] and out[1] is frames[1]
    first = out[0]
    assert first.flow_bwd is None and first.flow_fwd is None and first.consistency is None and not first.scene_cut
    for f in out[1:]:
        assert f.flow_bwd.shape == f.flow_fwd.shape == (2, 96, 128) and f.flow_bwd.dtype == np.float32
        assert f.consistency.shape == (96, 128) and f.consistency.dtype == np.float32
        assert not f.scene_cut
        # frame t shows frame t−1's content moved 3 px left: w_b = +3, w_f = −3
        assert abs(np.median(f.flow_bwd[0]) - 3) < 0.2 and abs(np.median(f.flow_fwd[0]) + 3) < 0.2
        assert f.consistency[:, :-8].mean() > 0.95  # the right edge enters the picture
        # the input warp error: the pan is explained inside, not where the right edge enters
        assert f.warp_error.shape == (96, 128) and f.warp_error.dtype == np.float32
        assert np.median(f.warp_error[:, 8:-8]) < 0.02 and f.warp_error[:, -3:].mean() > f.warp_error[:, 8:-8].mean()
    assert first.warp_error is None
    assert stage.finish() == []
    stage.close()
    again = stage.process(Frame(index=0, image=frames[0].image))[0]
    assert again.flow_bwd is None  # close() dropped the previous frame


def test_scene_cut_and_size_change():
    stage = FlowStage(estimator=make_flow_estimator("dis-fast"))
    a, b = _panning(2)
    other = texture(96, 128, seed=9)
    flags = [stage.process(Frame(index=i, image=img))[0].scene_cut for i, img in enumerate([a, b, other])]
    assert flags == [False, False, True]
    resized = stage.process(Frame(index=3, image=texture(64, 80, seed=9)))[0]
    assert resized.scene_cut and resized.flow_bwd is None and resized.consistency is None
    assert stage.cuts == 2
    no_cuts = FlowStage(estimator="dis-fast", detect_cuts=False)
    no_cuts.process(Frame(index=0, image=a))
    assert not no_cuts.process(Frame(index=1, image=other))[0].scene_cut


def test_backward_only():
    stage = FlowStage(estimator="dis-fast", scale=0.5, compute_forward=False)
    frames = [stage.process(Frame(index=i, image=img))[0] for i, img in enumerate(_panning(3))]
    f = frames[2]
    assert f.flow_fwd is None and f.flow_bwd.shape == (2, 96, 128)
    assert abs(np.median(f.flow_bwd[0]) - 3) < 0.3
    assert f.consistency[:, :-8].mean() > 0.9


def test_options_are_checked():
    with pytest.raises(InvalidOptionError):
        FlowStage(estimator="nope")
    with pytest.raises(InvalidOptionError):
        FlowStage(estimator=make_flow_estimator("dis"), scale=0.5)
    with pytest.raises(InvalidOptionError):
        FlowStage(estimator=42)


def test_two_stages_are_independent():
    a, b, c = _panning(3)
    s1, s2 = FlowStage(), FlowStage()
    s1.process(Frame(index=0, image=a))
    s2.process(Frame(index=0, image=c))
    f1 = s1.process(Frame(index=1, image=b))[0]
    f2 = s2.process(Frame(index=1, image=b))[0]
    assert np.median(f1.flow_bwd[0]) > 2 and np.median(f2.flow_bwd[0]) < -2


def test_runs_in_the_pipeline():
    from vidstyle.pipeline import Stage, run_pipeline

    class Collect:
        def __init__(self):
            self.frames = []

        def write(self, frame):
            self.frames.append(frame)

        def close(self):
            return None

        def abort(self):
            return None

    stage = FlowStage(estimator="dis-ultrafast")
    assert isinstance(stage, Stage)
    sink = Collect()
    frames = [Frame(index=i, image=img) for i, img in enumerate(_panning(5))]
    run_pipeline(source=frames, stages=[stage], sink=sink, queue_size=2)
    assert [f.index for f in sink.frames] == [0, 1, 2, 3, 4]
    assert sink.frames[0].flow_bwd is None
    assert all(f.flow_bwd is not None and f.consistency is not None and not f.scene_cut for f in sink.frames[1:])


def test_work_scale_gives_full_size_fields():
    stage = FlowStage(estimator="dis-fast", work_scale=0.5)
    frames = [Frame(index=i, image=img) for i, img in enumerate(_panning(step=4))]
    out = [f for fr in frames for f in stage.process(fr)]
    for f in out[1:]:
        assert f.flow_bwd.shape == f.flow_fwd.shape == (2, 96, 128)
        assert f.consistency.shape == (96, 128) and set(np.unique(f.consistency)) <= {0.0, 1.0}
        # computed at half size, the vectors are rescaled to full-size pixels: still +4 / −4
        assert abs(np.median(f.flow_bwd[0]) - 4) < 0.4 and abs(np.median(f.flow_fwd[0]) + 4) < 0.4
        assert f.consistency[:, :-16].mean() > 0.9
        assert not f.scene_cut
    with pytest.raises(InvalidOptionError, match="work_scale"):
        FlowStage(work_scale=0.0)


def test_forward_flow_from_another_estimator():
    calls = []

    def zero_forward(prev, nxt):  # a stand-in estimator: records its calls, returns no motion
        calls.append(prev.shape)
        return np.zeros((2, *prev.shape[:2]), np.float32)

    stage = FlowStage(estimator="dis-fast", forward_estimator=zero_forward)
    out = [stage.process(Frame(index=i, image=img))[0] for i, img in enumerate(_panning(3))]
    assert len(calls) == 2 and all(np.all(f.flow_fwd == 0) for f in out[1:])
    for f in out[1:]:  # the backward flow still comes from dis-fast (3 px), and the check sees the mismatch
        assert abs(np.median(f.flow_bwd[0]) - 3) < 0.2
        assert f.consistency.mean() < 0.05
    by_name = FlowStage(estimator="dis-fast", forward_estimator="dis-ultrafast")
    assert by_name.forward_estimator.name == "dis-ultrafast"
    with pytest.raises(InvalidOptionError, match="forward_estimator"):
        FlowStage(forward_estimator=3)


def test_file_pipeline_computes_the_forward_flow_with_the_cheaper_estimator():
    import torch

    from vidstyle.api import build_stages
    from vidstyle.flow.stage import FORWARD_FLOW

    threads = torch.get_num_threads()
    try:
        flow, stylize, stab = build_stages(device="cpu", stabilize=0.85, flow="dis-fast", threads=1)
        assert stab.name == "stabilize" and stylize.raw_output
        assert flow.estimator.name == "dis-fast" and flow.forward_estimator.name == FORWARD_FLOW["dis-fast"]
        other, _ = build_stages(device="cpu", stabilize=0.85, flow="farneback", threads=1, separate_stabilizer=False)
        assert other.forward_estimator is None  # only the mapped estimators change
        stylize.close()
    finally:
        torch.set_num_threads(threads)


def test_8bit_frames_are_converted_to_grey_once_with_the_same_results():
    from vidstyle.flow.consistency import consistency_mask, warp_error

    frames = [(img * 255 + 0.5).astype(np.uint8) for img in _panning(n=3)]
    stage = FlowStage(estimator="dis-fast", forward_estimator="dis-ultrafast")
    assert stage._gray8
    out = [f for i, img in enumerate(frames) for f in stage.process(Frame(index=i, image=img))]
    fast, ultra = make_flow_estimator("dis-fast"), make_flow_estimator("dis-ultrafast")
    for t in (1, 2):
        bwd, fwd = fast(frames[t], frames[t - 1]), ultra(frames[t - 1], frames[t])  # from the RGB frames
        np.testing.assert_array_equal(out[t].flow_bwd, bwd)
        np.testing.assert_array_equal(out[t].flow_fwd, fwd)
        np.testing.assert_array_equal(out[t].consistency, consistency_mask(fwd, bwd))
        np.testing.assert_array_equal(out[t].warp_error, warp_error(frames[t], frames[t - 1], bwd))
    assert out[1].image is frames[1]  # the frame keeps its RGB picture

    class Learned:  # an estimator that needs colour (RAFT): it gets the RGB frames
        def __init__(self) -> None:
            self.seen: list[int] = []

        def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            self.seen.append(prev.ndim)
            return np.zeros((2, *prev.shape[:2]), np.float32)

    learned = Learned()
    stage = FlowStage(estimator=learned)
    assert not stage._gray8
    for i, img in enumerate(frames):
        stage.process(Frame(index=i, image=img))
    assert set(learned.seen) == {3}
