"""LiveStylizer: flow between the frames actually processed, model switching, stabilisation toggle."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from vidstyle.api import build_live_stylizer
from vidstyle.errors import InvalidOptionError, ModelError
from vidstyle.flow import FlowStage
from vidstyle.frame import Frame
from vidstyle.live import LiveStylizer
from vidstyle.options import StylizeOptions, TemporalOptions


class FakeStage:
    """Stands in for FeedForwardStage: records what it was given, copies the image."""

    def __init__(self, *, model, stabilize, **options) -> None:
        if model == "broken":
            raise ModelError("broken is not a model file")
        self.model_name = f"{model}-net"
        self.stabilize = stabilize
        self.stabilizer = type("S", (), {"strength": stabilize, "resets": 0})()
        self.stabilizer.reset = lambda: setattr(
            self.stabilizer, "resets", self.stabilizer.resets + 1
        )
        self.seen: list[tuple[int, bool, float]] = []
        self.options = options
        self.closed = False

    def process(self, frame: Frame) -> list[Frame]:
        self.seen.append(
            (frame.index, frame.flow_bwd is not None, self.stabilizer.strength)
        )
        frame.stylized = frame.image.copy()
        return [frame]

    def finish(self) -> list[Frame]:
        return []

    def close(self) -> None:
        self.closed = True


def _through(st: LiveStylizer, frame: Frame) -> list[Frame]:
    """``frame`` through every stage of ``st`` (the network's, then the stabiliser's when pipelined), as the
    live runner passes it."""
    out = [frame]
    for stage in st.stages:
        out = [g for f in out for g in stage.process(f)]
    return out


def _texture(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(
        rng.standard_normal((h + 40, w + 40, 3)).astype(np.float32), (0, 0), 2.0
    )
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def _shifted(big: np.ndarray, dx: int, h: int = 96, w: int = 128) -> np.ndarray:
    """The scene seen by a camera panning right by ``dx`` pixels."""
    return np.ascontiguousarray(big[20 : 20 + h, 20 + dx : 20 + dx + w])


def test_flow_is_between_processed_frames_when_frames_are_dropped() -> None:
    big = _texture()
    st = LiveStylizer(models=["a"], stage_factory=FakeStage, flow=FlowStage(estimator="dis-fast"))
    # the scene moves 2 px per captured frame; frames 1, 2, 4, 5, 6 were dropped
    processed = [0, 3, 7]
    frames = [Frame(index=i, image=_shifted(big, 2 * i)) for i in processed]
    for f in frames:
        st.process(f)
    assert frames[0].flow_bwd is None
    for prev, f in itertools.pairwise(frames):
        # content moved left by 2·Δindex px: the pixel x of this frame was at x + 2·Δ in the previous one
        dx = float(np.median(f.flow_bwd[0][8:-8, 8:-8]))
        assert dx == pytest.approx(2 * (f.index - prev.index), abs=0.5)
        assert float(np.median(np.abs(f.flow_bwd[1]))) < 0.5
        assert f.consistency is not None and f.consistency.mean() > 0.6
    assert [s[1] for s in st._stages[0].seen] == [False, True, True]
    st.close()


def test_model_switching_and_wrap_around() -> None:
    st = LiveStylizer(models=["a", "b", "c"], stage_factory=FakeStage, flow=None)
    assert st.model_name == "a-net" and st.model_names == ["a-net", "b", "c"]
    img = np.zeros((32, 32, 3), np.uint8)
    models = []
    for i, step in enumerate([0, 1, 1, 1, -1]):
        st.next_model(step)
        f = Frame(index=i, image=img)
        st.process(f)
        models.append(f.extra["model"])
    assert models == ["a-net", "b-net", "c-net", "a-net", "c-net"]
    assert st.switches == 4
    st.select_model(1)
    f = Frame(index=9, image=img)
    st.process(f)
    assert f.extra["model"] == "b-net"
    st.close()
    assert all(s.closed for s in st._stages.values())


def test_a_model_that_fails_to_load_keeps_the_current_one() -> None:
    st = LiveStylizer(models=["a", "broken"], stage_factory=FakeStage, flow=None)
    st.next_model()
    f = Frame(index=0, image=np.zeros((16, 16, 3), np.uint8))
    st.process(f)
    assert f.extra["model"] == "a-net"
    assert "cannot load broken" in st.notice


def test_stabilisation_toggle_restarts_the_temporal_chain() -> None:
    big = _texture()
    st = LiveStylizer(
        models=["a"], stage_factory=FakeStage, stabilize=0.7, flow=FlowStage(estimator="dis-ultrafast")
    )
    stage = st._stages[0]
    seq = []
    for i in range(8):
        if i in (3, 5):
            st.toggle_stabilize()  # off at frame 3, on again at frame 5
        f = Frame(index=i, image=_shifted(big, i))
        st.process(f)
        seq.append((f.flow_bwd is not None, f.extra["stabilize"]))
    assert seq == [
        (False, 0.7),
        (True, 0.7),
        (True, 0.7),  # on: flow from the 2nd frame
        (False, 0.0),
        (False, 0.0),  # off: no flow computed
        (False, 0.7),
        (True, 0.7),
        (True, 0.7),  # on again: starts afresh (no flow to a stale frame)
    ]
    assert [s[2] for s in stage.seen] == [0.7, 0.7, 0.7, 0.0, 0.0, 0.7, 0.7, 0.7]
    assert stage.stabilizer.resets >= 2


def test_stabilize_zero_starts_off_and_toggles_on_at_the_default() -> None:
    from vidstyle.stylize.temporal import DEFAULT_STRENGTH

    st = LiveStylizer(models=["a"], stage_factory=FakeStage, stabilize=0.0, flow=FlowStage())
    assert not st.stabilizing and st.strength == 0.0
    st.toggle_stabilize()
    assert st.stabilizing and st.strength == DEFAULT_STRENGTH
    with pytest.raises(InvalidOptionError, match="^stabilize must be") as info:
        LiveStylizer(models=["a"], stage_factory=FakeStage, stabilize=1.5)
    assert info.value.parameter == "stabilize"
    with pytest.raises(InvalidOptionError, match="`models`") as info:
        LiveStylizer(models=[], stage_factory=FakeStage)
    assert info.value.parameter == "models"


def test_without_flow_the_toggle_says_why_in_parameter_terms() -> None:
    st = LiveStylizer(models=["a"], stage_factory=FakeStage, flow=None)
    assert not st.stabilizing
    st.toggle_stabilize()
    assert not st.stabilizing and "flow none" in st.notice and "--" not in st.notice


def test_real_network_with_stabilisation(tiny_model) -> None:
    st = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=1),
                             temporal=TemporalOptions(stabilize=0.85, flow="dis-ultrafast"), models=[tiny_model])
    assert st.model_name == "rand_tiny"
    st.warmup(width=64, height=48, frames=1)
    big = _texture(48, 64)
    outs = []
    for i in range(3):
        f = Frame(index=i, image=_shifted(big, i, 48, 64))
        (out,) = _through(st, f)
        outs.append(out.stylized)
        assert out.stylized.shape == (48, 64, 3) and out.stylized.dtype == np.uint8
    assert st._stages[0].stabilizer.previous is not None
    # live mode keeps the cheaper detail restoration (no stroke band), and the input-confirmed mask
    assert st._stages[0].stabilizer.mid_bands == () and st._stages[0].stabilizer.confirm > 0
    st.close()


def test_overlapped_flow_gives_the_same_output_as_flow_then_stage(tiny_model) -> None:
    """The overlapped path (flow, then the warp of the previous output, in a helper thread during the network)
    is the feed-forward stage's own computation, only reordered: outputs are identical."""
    big = _texture(48, 64)
    outs = {}
    for parallel in (True, False):
        st = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=1, precision="auto"),
                                 temporal=TemporalOptions(stabilize=0.85, flow="dis-ultrafast"),
                                 models=[tiny_model], parallel_flow=parallel)
        stabilizer = st._stages[0].stabilizer
        step, given = stabilizer.step, []
        stabilizer.step = lambda *a, **k: given.append(k.get("prepared")) or step(*a, **k)
        frames = [Frame(index=i, image=_shifted(big, 2 * i, 48, 64)) for i in range(4)]
        outs[parallel] = [_through(st, f)[0].stylized for f in frames]
        assert frames[-1].flow_bwd is not None
        # overlapped, the helper thread also warped the previous output (from the second frame on)
        assert [p is not None for p in given] == ([False, True, True, True] if parallel else [False] * 4)
        st.close()
    for a, b in zip(outs[True], outs[False]):
        np.testing.assert_array_equal(a, b)


def test_the_pipelined_stabiliser_gives_the_same_output_through_toggles_and_switches(tiny_model) -> None:
    """The stabiliser in a stage of its own (the network already on the next frame) is the same computation in
    the same frame order: outputs are identical to the one-stage path, also where stabilisation is switched off
    and on and where the model changes (both restart the temporal chain, now in the stabiliser's thread)."""
    big = _texture(48, 64)
    outs, stages = {}, {}
    for pipelined in (True, False):
        st = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=1, precision="float32"),
                                 temporal=TemporalOptions(stabilize=0.85, flow="dis-ultrafast"),
                                 models=[tiny_model, tiny_model], parallel_flow=True, pipelined=pipelined)
        stages[pipelined] = [type(s).__name__ for s in st.stages]
        seq = []
        for i in range(10):
            if i in (3, 5):
                st.toggle_stabilize()  # off at frame 3, on again at 5
            if i == 7:
                st.next_model()
            f = Frame(index=i, image=_shifted(big, 2 * i, 48, 64))
            if pipelined:
                (half,) = st.process(f)
                assert half.stylized is None and "live_pending" in half.extra  # the second stage's work
            (out,) = _through(st, f) if not pipelined else st.stages[1].process(f)
            assert "live_pending" not in out.extra
            seq.append(out.stylized)
        outs[pipelined] = seq
        st.close()
    assert stages == {True: ["LiveStylizer", "LiveStabilizer"], False: ["LiveStylizer"]}
    for i, (a, b) in enumerate(zip(outs[True], outs[False])):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
    # the stabiliser did work: stabilised frames differ from the network's own output of the frame
    assert not np.array_equal(outs[True][2], outs[True][3])


@pytest.fixture(scope="module")
def two_style_model(tmp_path_factory) -> str:
    """A tiny multi-style model whose two styles differ (random (γ, β) rows)."""
    import torch

    from vidstyle.nets.multistyle import MultiStyleNet
    from vidstyle.nets.registry import save_model

    torch.manual_seed(3)
    net = MultiStyleNet(config="tiny", styles=["starry", "wave"])
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 2 and p.shape[0] == 3:  # one row per style (+ identity)
                p.add_(0.5 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("two") / "two.safetensors"
    save_model(path, net=net, name="two", style="starry,wave")
    return str(path)


@pytest.mark.parametrize("path", ["pipelined", "overlapped", "serial"])
@pytest.mark.parametrize("control", ["style_mix", "style_strength", "style_scale"])
def test_live_applies_the_style_controls(two_style_model, tiny_model, path, control) -> None:
    """Style mix, style strength and brush size reach the network on every live path: a first frame (nothing
    to stabilise against) is exactly the stage's own picture with the same controls, and not the plain one."""
    from vidstyle.options import Curve

    model = two_style_model if control == "style_mix" else str(tiny_model)
    given = {"style_mix": {"style_mix": (("wave", Curve.constant(1.0)),)},
             "style_strength": {"style_strength": Curve.constant(0.4)},
             "style_scale": {"style_scale": 2.0}}[control]
    st = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=1, precision="float32", **given),
                             temporal=TemporalOptions(stabilize=0.85, flow="dis-ultrafast"), models=[model],
                             parallel_flow=path != "serial", pipelined=path == "pipelined")
    image = _texture(48, 64)
    (out,) = _through(st, Frame(index=0, image=image.copy()))
    stage = st._stages[0]
    np.testing.assert_array_equal(out.stylized, stage.stylize_image(image))
    plain = build_live_stylizer(stylize=StylizeOptions(device="cpu", threads=1, precision="float32"),
                                models=[model])._stages[0].stylize_image(image)
    assert np.abs(out.stylized.astype(int) - plain.astype(int)).mean() > 2.0
    st.close()
