"""The keyframe package's parts against their formulas: options, guides, blend weights, losses, network,
plateau rule, patch sampling, model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.keyframes.guides import CoordinateTracker, guide_channels, network_input, position_guide
from vidstyle.keyframes.losses import KeyframeLoss, keyframe_loss, relative_feature_loss
from vidstyle.keyframes.model import KeyframeModel, blend_weights, load_keyframe_model, save_keyframe_model
from vidstyle.keyframes.net import KeyframeNet, flops
from vidstyle.keyframes.options import Keyframe, KeyframeOptions, parse_keys
from vidstyle.keyframes.trainer import EMA_DECAY, PlateauWatch, TrainingPair, sample_patches
from vidstyle.options import OptionValueError


# ------------------------------------------------------------------------------------------------ options
def test_keys_are_parsed_and_sorted() -> None:
    opts = KeyframeOptions(keys=["48:b.png", "0:a.png", (24, "c.png")])
    assert opts.keys == (Keyframe(0, "a.png"), Keyframe(24, "c.png"), Keyframe(48, "b.png"))


@pytest.mark.parametrize("keys, words", [
    (["0:a.png", "0:b.png"], ["frame 0 is given twice", "a.png", "b.png"]),
    (["x:a.png"], ["not a frame number"]),
    (["a.png"], ["FRAME:IMAGE"]),
    (["-3:a.png"], ["negative"]),
])
def test_bad_keys_name_the_parameter(keys: list[str], words: list[str]) -> None:
    with pytest.raises(OptionValueError) as info:
        parse_keys(keys, "keys")
    assert info.value.parameter == "keys"
    for w in words:
        assert w in str(info.value)


def test_keys_or_model_or_both() -> None:
    assert not KeyframeOptions().active  # (a render job without keyframes)
    with pytest.raises(OptionValueError, match="at least one painted keyframe"):
        KeyframeOptions().require_source()
    both = KeyframeOptions(keys=["0:a.png"], keyframe_model="m.safetensors")  # a saved network + its paintings
    assert both.active and both.keys[0].index == 0 and both.keyframe_model == "m.safetensors"
    assert KeyframeOptions(keyframe_model="m.safetensors").keys == ()


def test_guides_canonical_order_and_unknown() -> None:
    assert KeyframeOptions(keys=["0:a.png"], guides="tracked,position,tracked").guides == ("position", "tracked")
    assert KeyframeOptions(keys=["0:a.png"], guides="none").guides == ()
    with pytest.raises(OptionValueError, match="unknown guide 'depth'"):
        KeyframeOptions(keys=["0:a.png"], guides="depth")


# ------------------------------------------------------------------------------------------------ guides
def test_position_guide_formula() -> None:
    g = position_guide(3, 5)
    assert g.shape == (2, 3, 5)
    np.testing.assert_allclose(g[0, 1], np.arange(5) / 4)
    np.testing.assert_allclose(g[1, :, 2], np.arange(3) / 2)


def test_tracked_guide_follows_a_translation() -> None:
    h, w = 20, 30
    tracker = CoordinateTracker()
    first = tracker.step(None, size=(h, w))
    np.testing.assert_allclose(first, position_guide(h, w))
    flow = np.zeros((2, h, w), np.float32)
    flow[0] = -2.0  # each pixel was 2 px to the left in the previous frame: the scene moves right
    second = tracker.step(flow, size=(h, w))
    third = tracker.step(flow, size=(h, w))
    # p_t(x) = p_{t-1}(x + w_b(x)): after two steps, x - 4 (inside the frame)
    np.testing.assert_allclose(second[0][:, 5:] * (w - 1), np.broadcast_to(np.arange(5, w) - 2.0, (h, w - 5)), atol=1e-4)
    np.testing.assert_allclose(third[0][:, 5:] * (w - 1), np.broadcast_to(np.arange(5, w) - 4.0, (h, w - 5)), atol=1e-4)
    np.testing.assert_allclose(third[1], first[1], atol=1e-6)
    restarted = tracker.step(flow, size=(h, w), restart=True)  # a scene cut
    np.testing.assert_allclose(restarted, first)


def test_network_input_stacks_frame_and_guides() -> None:
    rgb = torch.rand(3, 4, 6)
    tracked = np.full((2, 4, 6), 0.25, np.float32)
    x = network_input(rgb, ("position", "tracked"), tracked=tracked)
    assert x.shape == (guide_channels(("position", "tracked")), 4, 6) == (7, 4, 6)
    assert torch.equal(x[:3], rgb)
    assert torch.allclose(x[3:5], torch.from_numpy(position_guide(4, 6)))
    assert torch.all(x[5:] == 0.25)


# ------------------------------------------------------------------------------------------------ blend
@pytest.mark.parametrize("index, keys, expected", [
    (24, (0, 48), [0.5, 0.5]),
    (12, (0, 48), [0.75, 0.25]),
    (0, (0, 48), [1.0, 0.0]),
    (60, (0, 48), [0.0, 1.0]),
    (5, (10, 20, 40), [1.0, 0.0, 0.0]),
    (30, (10, 20, 40), [0.0, 0.5, 0.5]),
    (20, (10, 20, 40), [0.0, 1.0, 0.0]),
])
def test_blend_weights_are_linear_in_temporal_distance(index: int, keys: tuple[int, ...], expected: list[float]) -> None:
    assert blend_weights(index, keys) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------------ losses
def test_relative_feature_loss_formula() -> None:
    g = torch.Generator().manual_seed(0)
    f = {"a": torch.rand(2, 4, 5, 5, generator=g), "b": torch.rand(2, 8, 3, 3, generator=g)}
    t = {"a": torch.rand(2, 4, 5, 5, generator=g), "b": torch.rand(2, 8, 3, 3, generator=g)}
    expected = sum(float(((f[k] - t[k]) ** 2).mean() / (t[k] ** 2).mean()) for k in "ab")
    assert float(relative_feature_loss(f, t, layers=("a", "b"))) == pytest.approx(expected, rel=1e-5)
    assert float(relative_feature_loss(t, t, layers=("a", "b"))) == 0.0
    # scale-free: features of another convention (scaled) give the same loss
    assert float(relative_feature_loss({k: 7 * v for k, v in f.items()}, {k: 7 * v for k, v in t.items()},
                                       layers=("a", "b"))) == pytest.approx(expected, rel=1e-5)


def test_keyframe_loss_is_l1_plus_weighted_perceptual() -> None:
    y, t = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    l1 = float((y - t).abs().mean())
    loss, parts = keyframe_loss(y, t, vgg=None)
    assert float(loss) == pytest.approx(l1) and parts == {"l1": pytest.approx(l1)}

    class Fake(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"relu1_2": x * 2, "relu2_1": x[:, :1]}

    perc = float(relative_feature_loss(Fake()(y), Fake()(t)))
    loss, parts = KeyframeLoss(vgg=Fake(), perceptual_weight=0.5)(y, t)
    assert float(loss) == pytest.approx(l1 + 0.5 * perc, rel=1e-5)
    assert parts["perceptual"] == pytest.approx(perc, rel=1e-5)


# ------------------------------------------------------------------------------------------------ network
@pytest.mark.parametrize("h, w", [(32, 32), (37, 50), (5, 7)])
def test_network_any_size_output_in_range(h: int, w: int) -> None:
    net = KeyframeNet(in_channels=5)
    with torch.no_grad():
        y = net(torch.rand(2, 5, h, w))
    assert y.shape == (2, 3, h, w)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_flops_counts_two_per_multiply_add() -> None:
    net = KeyframeNet(in_channels=3, widths=(8, 24, 48))
    h, w = 360, 640
    px = [h * w, h * w // 4, h * w // 16]
    c0, c1, c2 = 8, 24, 48
    macs = (px[0] * 3 * c0 * 9 + px[1] * c0 * c1 * 9 + px[2] * c1 * c2 * 9 + 2 * px[2] * c2 * c2 * 9
            + px[2] * c2 * c1 + px[1] * c1 * c1 * 9 + px[1] * c1 * c0 + px[0] * c0 * c0 * 9 + px[0] * c0 * 3 * 9)
    assert flops(net, height=h, width=w) == pytest.approx(2 * macs)
    assert flops(net, height=h, width=w) < 3.0e9  # the budget that keeps 640x360 at >= 10 fps on 2 cores


# ------------------------------------------------------------------------------------------------ training parts
def test_plateau_watch_ema_and_stop() -> None:
    w = PlateauWatch(patience=20)
    assert not w.update(1.0) and w.ema == 1.0
    w.update(0.0)
    assert w.ema == pytest.approx(EMA_DECAY)
    flat = PlateauWatch(patience=20)
    stops = [flat.update(0.5) for _ in range(25)]
    assert stops.index(True) == 20  # 20 steps after the first (best) value without a 1 % gain
    falling = PlateauWatch(patience=20)
    assert not any(falling.update(0.97 ** k) for k in range(300))


def test_patches_are_crops_of_the_pairs_and_seeded() -> None:
    g = torch.Generator().manual_seed(0)
    pairs = [TrainingPair(index=i, inputs=torch.rand(5, 20, 30, generator=g), painted=torch.rand(3, 20, 30, generator=g))
             for i in range(2)]
    a = sample_patches(pairs, size=8, batch=6, gen=torch.Generator().manual_seed(3))[:2]
    b = sample_patches(pairs, size=8, batch=6, gen=torch.Generator().manual_seed(3))[:2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (6, 5, 8, 8) and a[1].shape == (6, 3, 8, 8)
    for xin, tgt in zip(*a):  # each patch is a crop, the input and its painting from the same place
        found = False
        for p in pairs:
            for y in range(20 - 8 + 1):
                for x in range(30 - 8 + 1):
                    if torch.equal(p.inputs[:, y:y + 8, x:x + 8], xin):
                        assert torch.equal(p.painted[:, y:y + 8, x:x + 8], tgt)
                        found = True
        assert found


# ------------------------------------------------------------------------------------------------ model file
def test_model_file_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    nets = [KeyframeNet(in_channels=5), KeyframeNet(in_channels=5)]
    model = KeyframeModel(nets=nets, keys=(0, 48), guides=("position",), blend="distance",
                          card={"keyframes": [{"index": 0, "painting": "a.png"}, {"index": 48, "painting": "b.png"}],
                                "steps": 10, "training_seconds": 1.5, "final_loss": 0.1})
    path = save_keyframe_model(tmp_path / "look", model)
    assert path.name == "look.safetensors"
    card = json.loads((tmp_path / "look.json").read_text())
    assert card["keys"] == [0, 48] and card["guides"] == ["position"] and card["training_seconds"] == 1.5
    assert "a.png" in (tmp_path / "look.md").read_text()
    assert not list(tmp_path.glob(".*tmp"))
    loaded = load_keyframe_model(tmp_path / "look")
    assert (loaded.keys, loaded.guides, loaded.blend) == ((0, 48), ("position",), "distance")
    x = torch.rand(1, 5, 16, 16)
    for a, b in zip(nets, loaded.nets):
        assert torch.equal(a.eval()(x), b(x))


def test_loading_other_files_is_one_clear_error(tmp_path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(InputNotFoundError, match="does not exist"):
        load_keyframe_model(tmp_path / "none.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "style.safetensors"), metadata={"vidstyle.format": "1"})
    with pytest.raises(ModelError, match="not a keyframe model"):
        load_keyframe_model(tmp_path / "style.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_keyframe_model(tmp_path / "junk.safetensors")


def test_training_stops_at_a_plateau_or_the_time_budget_and_previews(one_torch_thread) -> None:
    from vidstyle.keyframes.losses import KeyframeLoss
    from vidstyle.keyframes.trainer import TrainSettings, train_network

    g = torch.Generator().manual_seed(1)
    pairs = [TrainingPair(index=0, inputs=torch.rand(3, 16, 16, generator=g), painted=torch.rand(3, 16, 16, generator=g))]
    seen = []
    # a learning rate too small to move the loss: the moving average is flat, a plateau after `patience` steps
    flat = train_network(pairs, settings=TrainSettings(patch_size=8, patch_batch=2, learning_rate=1e-12, patience=10,
                                                       max_steps=500), loss=KeyframeLoss(vgg=None),
                         preview=lambda net: seen.append(net.training))
    assert flat.stopped == "plateau" and flat.steps == 11
    assert seen == [False]  # the final preview, in eval mode
    budget = train_network(pairs, settings=TrainSettings(patch_size=8, patch_batch=2, time_budget=1e-9, max_steps=500),
                           loss=KeyframeLoss(vgg=None))
    assert budget.stopped == "time budget" and budget.steps == 1
    again = train_network(pairs, settings=TrainSettings(patch_size=8, patch_batch=2, max_steps=5), loss=KeyframeLoss(vgg=None))
    again2 = train_network(pairs, settings=TrainSettings(patch_size=8, patch_batch=2, max_steps=5), loss=KeyframeLoss(vgg=None))
    assert again.stopped == "max steps"
    for a, b in zip(again.net.parameters(), again2.net.parameters()):  # seeded: the same run twice
        assert torch.equal(a, b)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("h, w", [(2, 2), (7, 5), (8, 12), (33, 20)])
def test_conv_replicate_is_the_replicate_padded_convolution(h: int, w: int, stride: int) -> None:
    from vidstyle.keyframes.net import conv_replicate

    g = torch.Generator().manual_seed(h * 100 + w + stride)
    x = torch.rand(2, 4, h, w, generator=g)
    weight, bias = torch.randn(5, 4, 3, 3, generator=g), torch.randn(5, generator=g)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias,
                                     stride=stride)
    for layout in (torch.contiguous_format, torch.channels_last):
        y = conv_replicate(x.contiguous(memory_format=layout), weight, bias, stride=stride)
        assert y.shape == ref.shape
        assert torch.allclose(y, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="weight must be 3×3"):
        conv_replicate(x, torch.randn(5, 4, 1, 1), None)


@pytest.mark.parametrize("h, w", [(360, 640), (333, 301)])
def test_network_without_gradients_equals_its_trained_form(h: int, w: int) -> None:
    """Inference (strips instead of padded copies, in-place activations and skips) gives the values of the
    forward that training differentiates, in both memory layouts."""
    torch.manual_seed(0)
    net = KeyframeNet(in_channels=3)
    x = torch.rand(1, 3, h, w)
    with torch.enable_grad():
        ref = net(x).detach()
    for layout in (torch.contiguous_format, torch.channels_last):
        net = net.to(memory_format=layout)
        with torch.no_grad():
            y = net(x.contiguous(memory_format=layout))
        assert torch.allclose(y, ref, atol=1e-6)
