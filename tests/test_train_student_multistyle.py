"""Many paintings in one fast network (``vidstyle train --size student --multi-style``, ``--add-style``).

Each style is a (γ, β) row at the features (AdaIN's place), a decoder affine row and its own output head; the
decoder's other convolutions are shared. Checked against the written-out formulas: one style is exactly the one-style student network, mixes blend
the rows linearly, slot 0 is the frame's own statistics, a new row starts at AdaIN and leaves the other styles
alone, and training changes only what it should. A random student (width 8) and random VGG-shaped weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_student_style import _config, data  # noqa: F401  (the shared fixture)

from vidstyle.errors import ModelError, ShapeError
from vidstyle.nets.student_multistyle import HEAD_KEYS
from vidstyle.options.spec import OptionValueError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _styles(n: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 256, 9, 11, generator=g) * (100.0 + 100.0 * i) for i in range(n)]


def _multi(data: dict[str, Path], n: int = 2, *, random_affine: bool = False):
    from vidstyle.nets.student import load_student
    from vidstyle.nets.student_multistyle import StudentMultiStyleNet

    feats = _styles(n)
    net = StudentMultiStyleNet.from_student(load_student(data["student"]), style_features=feats,
                                            styles=[f"s{i}" for i in range(n)])
    if random_affine:
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            net.film_scale.copy_(0.5 + torch.rand(net.film_scale.shape, generator=g))
            net.film_shift.copy_(torch.randn(net.film_shift.shape, generator=g) * 0.1)
            for key in HEAD_KEYS:  # each style's head its own
                rows = getattr(net, key)
                rows.add_(torch.randn(rows.shape, generator=g) * 0.3 * rows.std())
    return net.eval(), feats


def _single(data: dict[str, Path], feats: torch.Tensor):
    from vidstyle.nets.student import load_student
    from vidstyle.nets.student_style import StudentStyleNet

    return StudentStyleNet.from_student(load_student(data["student"]), style_features=feats).eval()


def _x(seed: int = 3, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 30, 46, generator=torch.Generator().manual_seed(seed))  # not a multiple of 4


def _reference(net, x: torch.Tensor, w: torch.Tensor, *, shared_head: bool = False) -> torch.Tensor:
    """The written-out network: features moved by the mixed (γ, β) (slot 0 = the frame's own statistics), decoded
    with each site's output times the mixed scale plus the mixed shift (slot 0 = 1, 0), and each image's output head
    the mixed kernels (slot 0 = the decoder's own head; ``shared_head``: the decoder's head for every style, the
    network before heads were per style)."""
    from vidstyle.nets.decoder import FEATURE_SCALE

    dec = net.decoder
    f = net.encoder(x)
    var, mean = torch.var_mean(f, dim=(2, 3), unbiased=False, keepdim=True)
    norm = (f - mean) / (var + 1e-5).sqrt()
    ws = w[:, 1:]
    g = (ws @ net.gamma)[:, :, None, None]
    b = (ws @ net.beta)[:, :, None, None]
    moved = w[:, :1, None, None] * f + g * norm + b
    fs = torch.einsum("ns,skc->nkc", ws, net.film_scale) + w[:, :1, None]
    fb = torch.einsum("ns,skc->nkc", ws, net.film_shift)

    def aff(h: torch.Tensor, k: int) -> torch.Tensor:
        return h * fs[:, k, :, None, None] + fb[:, k, :, None, None]

    h = torch.relu(aff(dec.stem[0](moved * FEATURE_SCALE), 0))
    for i, block in enumerate(dec.body):
        t = block.body[2](torch.relu(aff(block.body[0](h), 1 + 2 * i)))
        h = torch.relu(aff(h + t, 2 + 2 * i))
    if shared_head:
        return (dec.head(h) + 0.5)[..., : x.shape[-2], : x.shape[-1]].clamp(0, 1)
    dw, pw = dec.head[0][1], dec.head[0][2]
    outs = []
    for i in range(x.shape[0]):
        kdw = w[i, 0] * dw.weight + sum(w[i, s + 1] * net.head_dw[s] for s in range(w.shape[1] - 1))
        kpw = w[i, 0] * pw.weight + sum(w[i, s + 1] * net.head_pw[s] for s in range(w.shape[1] - 1))
        bpw = w[i, 0] * pw.bias + sum(w[i, s + 1] * net.head_pb[s] for s in range(w.shape[1] - 1))
        padded = torch.nn.functional.pad(h[i:i + 1], (1, 1, 1, 1), mode="reflect")
        outs.append(torch.nn.functional.conv2d(torch.nn.functional.conv2d(padded, kdw, groups=h.shape[1]), kpw, bpw))
    out = dec.head[2](torch.nn.functional.pixel_shuffle(torch.cat(outs), 4)) + 0.5
    return out[..., : x.shape[-2], : x.shape[-1]].clamp(0, 1)


def test_each_style_alone_is_the_one_style_network_at_its_start(data: dict[str, Path]) -> None:
    net, feats = _multi(data, 3)
    x = _x()
    with torch.no_grad():
        for i in range(3):
            w = torch.zeros(4)
            w[i + 1] = 1.0
            assert torch.allclose(net(x, w), _single(data, feats[i])(x), atol=1e-5), i
        assert torch.allclose(net(x), net(x, torch.tensor([0.0, 1.0, 0.0, 0.0])))  # default: the first style


@pytest.mark.parametrize("mix", [[0.0, 0.3, 0.7], [0.25, 0.5, 0.25], [1.0, 0.0, 0.0]])
def test_forward_is_the_written_out_formula_for_any_mix(data: dict[str, Path], mix: list[float]) -> None:
    net, _ = _multi(data, 2, random_affine=True)
    x = _x()
    w = torch.tensor([mix, [0.0, 0.0, 1.0]])  # one mix per image
    with torch.no_grad():
        assert torch.allclose(net(x, w), _reference(net, x, w), atol=1e-4)


def test_slot_zero_and_strength_zero_decode_the_frames_own_features(data: dict[str, Path]) -> None:
    net, _ = _multi(data, 2, random_affine=True)
    x = _x()
    with torch.no_grad():
        own = net.decoder(net.encoder(x), size=tuple(x.shape[-2:]))
        assert torch.allclose(net(x, torch.tensor([1.0, 0.0, 0.0])), own, atol=1e-4)
        assert torch.allclose(net(x, strength=0.0), own, atol=1e-4)
        w = torch.tensor([0.0, 0.2, 0.8])
        half = torch.tensor([0.5, 0.1, 0.4])
        assert torch.allclose(net(x, w, strength=0.5), net(x, half), atol=1e-5)
        both = net(x, w, strength=torch.tensor([0.0, 1.0]))
        assert torch.allclose(both[0], own[0], atol=1e-4) and torch.allclose(both[1], net(x, w)[1], atol=1e-6)


def test_one_style_strength_matches_the_one_style_network(data: dict[str, Path]) -> None:
    net, feats = _multi(data, 1)
    one = _single(data, feats[0])
    x = _x()
    with torch.no_grad():
        for s in (0.0, 0.4, 1.0):
            assert torch.allclose(net(x, strength=s), one(x, strength=s), atol=1e-5), s


def test_add_style_starts_at_adain_and_leaves_the_other_styles_alone(data: dict[str, Path]) -> None:
    net, _ = _multi(data, 2, random_affine=True)
    x = _x()
    new = _styles(3, seed=9)[2]
    with torch.no_grad():
        before = net(x, torch.tensor([0.0, 0.3, 0.7]))
        slot = net.add_style("new", style_features=new)
        assert slot == 3 and net.styles == ["identity", "s0", "s1", "new"]
        assert torch.allclose(net(x, torch.tensor([0.0, 0.3, 0.7, 0.0])), before, atol=1e-6)
        assert torch.allclose(net.gamma[2], new.var(dim=(0, 2, 3), unbiased=False).add(1e-5).sqrt(), rtol=1e-4)
        assert torch.allclose(net.film_scale[2], net.film_scale[:2].mean(0))
        for key in HEAD_KEYS:
            assert torch.allclose(getattr(net, key)[2], getattr(net, key)[:2].mean(0)), key
        assert torch.allclose(net(x, torch.tensor([0.0, 0.0, 0.0, 1.0])), _reference(net, x, torch.tensor(
            [[0.0, 0.0, 0.0, 1.0]] * 2)), atol=1e-4)
    with pytest.raises(ValueError, match="already has a style named 's0'"):
        net.add_style("s0", style_features=new)


def test_bad_shapes_are_one_clear_error(data: dict[str, Path]) -> None:
    net, _ = _multi(data, 2)
    with pytest.raises(ShapeError, match="mix must be 2×3"):
        net(_x(), torch.ones(4))
    with pytest.raises(ModelError, match="relu3_1"):
        net.add_style("x", style_features=torch.rand(1, 64, 4, 4))
    with pytest.raises(ValueError, match="strength"):
        net(_x(), strength=torch.tensor([0.1, 0.2, 0.3]))


def test_gradients_reach_every_row_in_the_mix_and_match_finite_differences(data: dict[str, Path]) -> None:
    net, _ = _multi(data, 2, random_affine=True)
    net = net.double()
    net.train()
    x = _x(n=1).double()
    mix = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)

    net.zero_grad()
    net(x, mix).sum().backward()
    for name, idx, eps in [("gamma", (1, 5), 1e-2), ("film_scale", (0, 1, 3), 1e-4), ("head_pw", (1, 7, 2, 0, 0), 1e-4),
                           ("head_dw", (0, 3, 0, 1, 2), 1e-4), ("head_pb", (1, 11), 1e-4)]:
        p = getattr(net, name)
        assert p.grad.flatten(1).abs().sum(1).gt(0).all(), name  # every style in the mix gets a gradient
        base = p.detach().clone()
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                p.copy_(base)
                p[idx] += sign * eps
                values.append(net(x, mix).sum())
        with torch.no_grad():
            p.copy_(base)
        numeric = (values[0] - values[1]) / (2 * eps)
        assert torch.allclose(numeric, p.grad[idx], rtol=1e-4, atol=1e-8), name


def test_model_file_round_trip(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import STUDENT_MULTISTYLE, architecture_of, load_model, save_model

    net, _ = _multi(data, 2, random_affine=True)
    path = save_model(tmp_path / "m.safetensors", net=net, name="m", style="s0,s1")
    model = load_model(path)
    assert model.architecture == STUDENT_MULTISTYLE == architecture_of(path)
    assert model.styles == ["identity", "s0", "s1"]
    x = _x()
    w = torch.tensor([0.1, 0.6, 0.3])
    with torch.no_grad():
        assert torch.equal(model(x, w[None].expand(2, -1)), net(x, w))


def test_a_file_from_before_the_per_style_head_loads_as_the_network_it_was(data: dict[str, Path], tmp_path: Path) -> None:
    """Files written before each style had its own output head (the shipped model of the eighth session) have no
    ``head_*`` tensors: every style's head is the shared decoder's, so they decode exactly as before."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from vidstyle.nets.registry import load_model, save_model

    net, _ = _multi(data, 2, random_affine=True)
    path = save_model(tmp_path / "m.safetensors", net=net, name="m", style="s0,s1")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file({k: v for k, v in load_file(str(path)).items() if k not in HEAD_KEYS}, str(tmp_path / "old.safetensors"),
              metadata=meta)
    model = load_model(tmp_path / "old.safetensors").net
    assert torch.equal(model.head_pw, net.decoder.head[0][2].weight[None].expand(2, -1, -1, -1, -1))
    x = _x()
    w = torch.tensor([[0.1, 0.6, 0.3], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        old = _reference(net, x, w, shared_head=True)
        assert torch.allclose(model(x, w), old, atol=1e-5)
        assert not torch.allclose(net(x, w), old, atol=1e-3)  # with their own heads the styles differ from that


def test_multi_style_training_shares_the_decoder_and_cycles_the_styles(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import load_model
    from vidstyle.nets.student import load_student
    from vidstyle.train import train

    style2 = data["root"] / "flip.png"
    import cv2

    cv2.imwrite(str(style2), cv2.imread(str(data["style"]))[::-1, :, ::-1].copy())
    result = train(config=_config(data, tmp_path / "m", style=(str(data["style"]), str(style2)), multi_style=True,
                                  style_names=("stripes", "flip"), iterations=4))
    model = load_model(result.model_path)
    assert model.styles == ["identity", "stripes", "flip"]
    student = load_student(data["student"])
    for k, v in student.encoder.state_dict().items():
        assert torch.equal(model.net.encoder.state_dict()[k], v), k
    assert any(not torch.equal(model.net.decoder.state_dict()[k], v) for k, v in student.decoder.state_dict().items())
    assert not torch.equal(model.net.film_scale[0], model.net.film_scale[1])  # each style learnt its own affine
    for key in HEAD_KEYS:  # and its own output head, from the student's
        assert not torch.equal(getattr(model.net, key)[0], getattr(model.net, key)[1]), key
    for k, v in student.decoder.head.state_dict().items():  # slot 0's head stays the student's own
        assert torch.equal(model.net.decoder.head.state_dict()[k], v), k
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["architecture"]["family"] == "student-multistyle" and card["styles"] == model.styles
    assert "shared by all styles" in (tmp_path / "m.md").read_text()


def test_add_style_trains_only_the_new_row(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import load_model, save_model
    from vidstyle.train import train

    net, _ = _multi(data, 2, random_affine=True)
    base = save_model(tmp_path / "base.safetensors", net=net, name="base", style="s0,s1")
    result = train(config=_config(data, tmp_path / "added", add_style=True, init=str(base), style_names=("mine",),
                                  iterations=3))
    added = load_model(result.model_path).net
    assert added.styles == ["identity", "s0", "s1", "mine"]
    for k, v in net.state_dict().items():
        new = added.state_dict()[k]
        if k in ("gamma", "beta", "film_scale", "film_shift", *HEAD_KEYS):
            assert torch.equal(new[:2], v), k  # the old styles are untouched
        else:
            assert torch.equal(new, v), k  # so is the shared network
    card = json.loads((tmp_path / "added.json").read_text())
    assert card["trained_styles"] == ["mine"] and card["architecture"]["family"] == "student-multistyle"
    assert card["style_images"] == ["stripes.png"]  # the base file had no card: only the new painting is known


def test_add_style_needs_a_multi_style_student(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import save_model
    from vidstyle.train import train

    one = save_model(tmp_path / "one.safetensors", net=_single(data, _styles(1)[0]), name="one", style="s")
    with pytest.raises(OptionValueError, match="multi-style student") as info:
        train(config=_config(data, tmp_path / "x", add_style=True, init=str(one)))
    assert info.value.parameter == "init"
    net, _ = _multi(data, 2)
    multi = save_model(tmp_path / "multi.safetensors", net=net, name="multi", style="s0,s1")
    with pytest.raises(OptionValueError, match="size student") as info:
        train(config=_config(data, tmp_path / "x", add_style=True, init=str(multi), size="tiny"))
    assert info.value.parameter == "size"
    with pytest.raises(OptionValueError, match="already has a style named 's0'") as info:
        train(config=_config(data, tmp_path / "x", add_style=True, init=str(multi), style_names=("s0",)))
    assert not (tmp_path / "x.safetensors").exists()


def test_style_repeats_cycle() -> None:
    """Each painting once in turn, then, in order, those given more again (``style_repeats``)."""
    from vidstyle.train_plan import cycle

    assert cycle([1, 2, 3], None) == [1, 2, 3]
    assert cycle([1, 2, 3], [1, 2, 1]) == [1, 2, 3, 2]
    assert cycle([1, 2, 3, 4], [1, 3, 1, 2]) == [1, 2, 3, 4, 2, 4, 2]


def test_style_repeats_train_a_painting_more_often(data: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """A multi-style run with ``style_repeats`` (1, 2) trains s0, s1, s1 per cycle: the style loss of s1's painting
    runs twice as often (each style's loss is its own module), and the card records the counts; the counts need
    ``multi_style``, one per painting, whole numbers >= 1."""
    import cv2

    from vidstyle.train import train

    style2 = data["root"] / "flip3.png"
    cv2.imwrite(str(style2), cv2.imread(str(data["style"]))[::-1].copy())
    calls: list[int] = []
    import vidstyle.train_plan as plan_module

    build = plan_module.StylePlan.build.__func__

    def spy(cls, config, **kw):  # noqa: ANN001, ANN202
        plan = build(cls, config, **kw)
        for slot, loss in dict(zip(plan.slots, plan.losses)).items():  # one hook per style's loss
            loss.register_forward_hook(lambda *a, slot=slot: calls.append(slot))
        return plan

    monkeypatch.setattr(plan_module.StylePlan, "build", classmethod(spy))
    result = train(config=_config(data, tmp_path / "rep", style=(str(data["style"]), str(style2)), multi_style=True,
                                  style_names=("s0", "s1"), style_repeats=(1, 2), iterations=6))
    assert calls == [1, 2, 2, 1, 2, 2]
    card = json.loads((tmp_path / "rep.json").read_text())
    assert card["style_repeats"] == [1, 2] and card["iterations"] == result.iterations == 6
    for kw, match in [({"multi_style": False, "style": (str(data["style"]),)}, "add multi_style"),
                      ({"style_repeats": (1,)}, "one `style_repeats` count per `style`"),
                      ({"style_repeats": (1, 0)}, "whole numbers >= 1")]:
        config = {"style": (str(data["style"]), str(style2)), "multi_style": True, "style_repeats": (1, 2), **kw}
        with pytest.raises(OptionValueError, match=match) as info:
            train(config=_config(data, tmp_path / "x", **config))
        assert info.value.parameter == "style_repeats"


def test_style_lattice_weighs_each_paintings_batches(data: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """``style_lattice`` (0, 400): the lattice loss runs only on the second painting's batches and enters their total
    at 400; the card records the weights; resuming with others is refused; the weights need ``multi_style``, one
    per painting, finite and >= 0."""
    import cv2

    import vidstyle.train
    from vidstyle.errors import InvalidOptionError
    from vidstyle.train import lattice_weight_of, train
    from vidstyle.train_config import TrainConfig

    style2 = data["root"] / "flip4.png"
    cv2.imwrite(str(style2), cv2.imread(str(data["style"]))[::-1].copy())
    calls: list[float] = []
    real = vidstyle.train.lattice_loss
    monkeypatch.setattr(vidstyle.train, "lattice_loss", lambda y: calls.append(1.0) or real(y))
    styles = (str(data["style"]), str(style2))
    result = train(config=_config(data, tmp_path / "lat", style=styles, multi_style=True, style_names=("s0", "s1"),
                                  style_lattice=(0.0, 400.0), iterations=4))
    assert len(calls) == 2  # slots 1, 2, 1, 2: the second painting's two batches
    t = result.final_losses  # the last batch is the second painting's
    assert t["lattice"] > 0.0
    assert t["total"] == pytest.approx(t["content"] + 1e-3 * t["style"] + t["tv"] + 400.0 * t["lattice"],
                                       rel=1e-4)
    card = json.loads((tmp_path / "lat.json").read_text())
    assert card["style_lattice"] == [0.0, 400.0]
    assert "lattice per style s0 0, s1 400 |" in result.card_path.read_text()
    with pytest.raises(InvalidOptionError, match="style_lattice"):
        train(config=_config(data, tmp_path / "lat", style=styles, multi_style=True, style_names=("s0", "s1"),
                             style_lattice=(0.0, 40.0), iterations=6), resume=True)
    config = TrainConfig(style=styles, content="c", output="o", multi_style=True, lattice_weight=7.0,
                         style_lattice=(0.0, 400.0))
    assert [lattice_weight_of(config, k) for k in (0, 1, 2)] == [7.0, 0.0, 400.0]  # slot 0 (identity): the global
    assert lattice_weight_of(TrainConfig(style=styles, content="c", output="o", lattice_weight=7.0), 1) == 7.0
    for kw, match in [({"multi_style": False, "style": (str(data["style"]),), "style_lattice": (1.0,)}, "add multi_style"),
                      ({"style_lattice": (1.0,)}, "one `style_lattice` weight per `style`"),
                      ({"style_lattice": (1.0, -2.0)}, ">= 0"), ({"style_lattice": (1.0, float("nan"))}, ">= 0")]:
        with pytest.raises(OptionValueError, match=match) as info:
            train(config=_config(data, tmp_path / "x", **{"style": styles, "multi_style": True, **kw}))
        assert info.value.parameter == "style_lattice"


def test_tune_style_trains_only_that_styles_row(data: dict[str, Path], tmp_path: Path) -> None:
    """``tune_style``: more iterations for one style the model has; its rows (feature and decoder affines, head)
    change, every other style and the shared network stay bit-identical, and no style is added."""
    from vidstyle.nets.registry import load_model, save_model
    from vidstyle.train import train

    net, _ = _multi(data, 3, random_affine=True)
    base = save_model(tmp_path / "base.safetensors", net=net, name="base", style="s0,s1,s2")
    result = train(config=_config(data, tmp_path / "tuned", tune_style=True, init=str(base), style_names=("s1",),
                                  iterations=3))
    tuned = load_model(result.model_path).net
    assert tuned.styles == net.styles == ["identity", "s0", "s1", "s2"]
    rows = ("gamma", "beta", "film_scale", "film_shift", *HEAD_KEYS)
    for k, v in net.state_dict().items():
        new = tuned.state_dict()[k]
        if k in rows:
            assert torch.equal(new[[0, 2]], v[[0, 2]]), k  # s0 and s2 untouched
            assert not torch.equal(new[1], v[1]), k  # s1 (row 1: slot 2) learned, in every per-style tensor
        else:
            assert torch.equal(new, v), k  # the shared network too
    card = json.loads((tmp_path / "tuned.json").read_text())
    assert card["trained_styles"] == ["s1"] and card["styles"] == net.styles
    assert card["style_images"] == []  # the base file had no card, and tuning adds no painting


def test_tune_style_needs_a_style_the_model_has(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import save_model
    from vidstyle.train import train

    net, _ = _multi(data, 2)
    multi = save_model(tmp_path / "multi.safetensors", net=net, name="multi", style="s0,s1")
    with pytest.raises(OptionValueError, match="no style named 'stripes' to tune; its styles: s0, s1") as info:
        train(config=_config(data, tmp_path / "x", tune_style=True, init=str(multi)))
    assert info.value.parameter == "style_names"
    one = save_model(tmp_path / "one.safetensors", net=_single(data, _styles(1)[0]), name="one", style="s")
    with pytest.raises(OptionValueError, match="tune_style with size student needs a multi-style student") as info:
        train(config=_config(data, tmp_path / "x", tune_style=True, init=str(one), style_names=("s",)))
    assert info.value.parameter == "init"
    for extra, param in [({"add_style": True}, "tune_style"), ({"multi_style": True}, "tune_style"),
                         ({"init": None}, "tune_style")]:
        with pytest.raises(OptionValueError) as info:
            train(config=_config(data, tmp_path / "x", **{"tune_style": True, "init": str(multi), **extra}))
        assert info.value.parameter == param, extra
    assert not (tmp_path / "x.safetensors").exists()


def test_cli_tune_style(data: dict[str, Path], tmp_path: Path, capsys) -> None:
    """``vidstyle train --tune-style PAINTING --init MULTI`` (no ``--size``): the named style trains further; a name
    the model lacks is one line naming its styles, exit 1, nothing written."""
    from vidstyle.cli.main import main
    from vidstyle.nets.registry import load_model, save_model

    net, _ = _multi(data, 2)
    base = save_model(tmp_path / "base.safetensors", net=net, name="base", style="s0,s1")
    args = ["train", "--tune-style", str(data["style"]), "--init", str(base), "--content", str(data["content"]),
            "--vgg-weights", str(data["vgg"]), "--iterations", "2", "--image-size", "32", "--style-size", "64",
            "--batch-size", "1", "--quiet", "--threads", "1"]
    assert main([*args, "-o", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no style named 'stripes'" in err[0] and "s0, s1" in err[0] and "--style-names" in err[0], err
    assert not list(tmp_path.glob("bad*"))
    assert main([*args, "-o", str(tmp_path / "tuned"), "--style-names", "s1"]) == 0, capsys.readouterr().err
    tuned = load_model(tmp_path / "tuned.safetensors").net
    assert tuned.styles == net.styles and not torch.equal(tuned.gamma[1], net.gamma[1])
    assert torch.equal(tuned.gamma[0], net.gamma[0])


def test_stylize_cross_dissolves_between_styles_frame_by_frame(data: dict[str, Path], tmp_path: Path) -> None:
    """``vidstyle stylize --style-mix "s0=1:1, 5:0; s1=1:0, 5:1"`` on an image sequence, per frame (no stabiliser):
    each output is the network with that frame's mix, to 8-bit rounding."""
    import cv2
    from media import make_images

    from vidstyle.cli.main import main
    from vidstyle.nets.registry import save_model
    from vidstyle.stylize.feedforward import image_to_tensor

    net, _ = _multi(data, 2, random_affine=True)
    model = save_model(tmp_path / "m.safetensors", net=net, name="m", style="s0,s1")
    frames = make_images(tmp_path / "in", numbers=range(1, 6))
    out = tmp_path / "out"
    assert main(["stylize", str(tmp_path / "in" / "%04d.png"), "-o", str(out / "%04d.png"), "--model", str(model),
                 "--style-mix", "s0=1:1, 5:0; s1=1:0, 5:1", "--stabilize", "0", "--quiet"]) == 0
    for k, frame in enumerate(frames):
        t = k / 4.0
        got = cv2.imread(str(out / f"{k + 1:04d}.png"))[:, :, ::-1].astype(np.float32) / 255.0
        x = image_to_tensor(cv2.imread(str(frame))[:, :, ::-1].copy())[None]
        with torch.no_grad():
            want = net(x, torch.tensor([0.0, 1.0 - t, t]))[0].permute(1, 2, 0).numpy()
        assert np.abs(got - want).max() <= 1.5 / 255.0, k
    with torch.no_grad():  # the two ends differ: the dissolve did something
        x = image_to_tensor(cv2.imread(str(frames[0]))[:, :, ::-1].copy())[None]
        assert (net(x, torch.tensor([0.0, 1.0, 0.0])) - net(x, torch.tensor([0.0, 0.0, 1.0]))).abs().max() > 0.05


def test_cli_add_style_to_a_multi_style_student_needs_no_size(data: dict[str, Path], tmp_path: Path, capsys) -> None:
    """``vidstyle train --add-style PAINTING --init MULTI`` (the issue's command, no ``--size``): the size is the
    student's when ``init`` is a multi-style student."""
    from vidstyle.cli.main import main
    from vidstyle.nets.registry import load_model, save_model

    net, _ = _multi(data, 2)
    base = save_model(tmp_path / "base.safetensors", net=net, name="base", style="s0,s1")
    rc = main(["train", "--add-style", str(data["style"]), "--init", str(base), "--content", str(data["content"]),
               "-o", str(tmp_path / "added"), "--vgg-weights", str(data["vgg"]), "--iterations", "2", "--image-size", "32",
               "--style-size", "64", "--batch-size", "1", "--quiet", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert load_model(tmp_path / "added.safetensors").styles == ["identity", "s0", "s1", "stripes"]


def test_init_from_a_multi_style_student_goes_on_training_it(data: dict[str, Path], tmp_path: Path) -> None:
    """``multi_style`` with ``init`` a multi-style student of the same styles trains that network further (e.g. a
    lower learning rate at the end); other styles are one clear error naming them."""
    import cv2

    from vidstyle.nets.registry import load_model, save_model
    from vidstyle.train import train

    style2 = data["root"] / "flip2.png"
    cv2.imwrite(str(style2), cv2.imread(str(data["style"]))[:, ::-1].copy())
    net, _ = _multi(data, 2, random_affine=True)
    start = save_model(tmp_path / "start.safetensors", net=net, name="start", style="s0,s1")
    styles = (str(data["style"]), str(style2))
    result = train(config=_config(data, tmp_path / "more", style=styles, multi_style=True, init=str(start),
                                  style_names=("s0", "s1"), iterations=2, lr=1e-4))
    more = load_model(result.model_path).net
    assert more.styles == net.styles
    assert torch.allclose(more.film_scale, net.film_scale, atol=1e-2) and not torch.equal(more.film_scale, net.film_scale)
    assert torch.allclose(more.head_pw, net.head_pw, atol=1e-2) and not torch.equal(more.head_pw, net.head_pw)
    with pytest.raises(OptionValueError, match="has the styles s0, s1") as info:
        train(config=_config(data, tmp_path / "x", style=styles, multi_style=True, init=str(start),
                             style_names=("a", "b")))
    assert info.value.parameter == "style_names"
