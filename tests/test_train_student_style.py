"""One-style networks fine-tuned from the fast arbitrary-style student (``vidstyle train --size student``).

The network is the student's decoder of its encoder's features under conditional instance norm with the
painting's (γ, β); at the start it is exactly AdaIN with the painting's relu3_1 statistics. Training changes only
the decoder and (γ, β); the file round-trips through the model registry and stylizes in the pipeline. A random
student (width 8) and random VGG-shaped weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.options.spec import OptionValueError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vidstyle.nets.decoder import vgg_fingerprint
    from vidstyle.nets.student import Student, StudentConfig, save_student
    from vidstyle.nets.vgg import load_vgg_state

    root = tmp_path_factory.mktemp("student_style")
    vgg = write_fake_vgg(root / "vgg.safetensors", n_convs=8, metadata={"convention": "caffe"})
    torch.manual_seed(0)
    student = save_student(root / "student.safetensors", student=Student(config=StudentConfig(width=8, blocks=1)),
                           vgg_source=str(vgg), fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    content = root / "content"
    content.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = cv2.GaussianBlur((rng.random((48, 64, 3)) * 255).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(str(content / f"photo_{i}.png"), img)
    ys, xs = np.mgrid[0:64, 0:64]
    palette = np.array([[30, 60, 200], [240, 200, 40], [20, 20, 20]], np.uint8)
    cv2.imwrite(str(root / "stripes.png"), palette[((xs + ys) // 6) % 3])
    return {"vgg": vgg, "student": student, "content": content, "style": root / "stripes.png", "root": root}


def _net(data: dict[str, Path], seed: int = 1):
    from vidstyle.nets.student import load_student
    from vidstyle.nets.student_style import StudentStyleNet

    g = torch.Generator().manual_seed(seed)
    style = torch.rand(1, 256, 9, 11, generator=g) * 300.0
    return StudentStyleNet.from_student(load_student(data["student"]), style_features=style), style


def test_it_starts_as_adain_with_the_paintings_statistics(data: dict[str, Path]) -> None:
    from vidstyle.stylize.transforms import adain

    net, style = _net(data)
    assert torch.allclose(net.gamma, style.var(dim=(0, 2, 3), unbiased=False).add(1e-5).sqrt(), rtol=1e-4)
    assert torch.allclose(net.beta, style.mean(dim=(0, 2, 3)), rtol=1e-5)
    x = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(2))  # odd size
    net.eval()
    with torch.no_grad():
        y = net(x)
        feats = net.encoder(x)
        ref = net.decoder(adain(feats, style), size=(37, 53))
    assert y.shape == (2, 3, 37, 53)
    assert torch.allclose(y, ref, atol=2e-4)


def test_forward_is_the_decoder_of_conditionally_normalised_features(data: dict[str, Path]) -> None:
    net, _ = _net(data)
    with torch.no_grad():
        net.gamma.mul_(torch.linspace(0.5, 2.0, 256))
        net.beta.add_(torch.linspace(-20.0, 20.0, 256))
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    net.eval()
    with torch.no_grad():
        f = net.encoder(x)
        var, mean = torch.var_mean(f, dim=(2, 3), unbiased=False, keepdim=True)
        moved = (f - mean) / (var + 1e-5).sqrt() * net.gamma[None, :, None, None] + net.beta[None, :, None, None]
        ref = net.decoder(moved, size=(32, 48))
        assert torch.allclose(net(x), ref, atol=2e-4)


def test_model_file_round_trip(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import STUDENT_STYLE, load_model, save_model

    net, _ = _net(data)
    path = save_model(tmp_path / "s.safetensors", net=net, name="s", style="stripes")
    model = load_model(path)
    assert model.architecture == STUDENT_STYLE and type(model.net) is type(net)
    x = torch.rand(1, 3, 24, 40)
    net.eval()
    with torch.no_grad():
        assert torch.equal(model(x), net(x))


def _config(data: dict[str, Path], out: Path, **kw):
    from vidstyle.train import TrainConfig

    base = {"style": (str(data["style"]),), "content": str(data["content"]), "output": str(out), "size": "student",
            "init": str(data["student"]), "image_size": 32, "style_size": 64, "batch_size": 2, "iterations": 3,
            "checkpoint_every": 10, "vgg_weights": str(data["vgg"]), "style_reduction": "sum", "style_weight": 1e-3,
            "seed": 0}
    base.update(kw)
    return TrainConfig(**base)


def test_training_changes_only_the_decoder_and_the_style_and_writes_a_card(data: dict[str, Path], tmp_path: Path) -> None:
    import json

    from vidstyle.nets.registry import load_model
    from vidstyle.nets.student import load_student
    from vidstyle.stylize.feedforward import FeedForwardStylizer
    from vidstyle.train import train

    result = train(config=_config(data, tmp_path / "m"))
    model = load_model(result.model_path)
    student = load_student(data["student"])
    for k, v in student.encoder.state_dict().items():
        assert torch.equal(model.net.encoder.state_dict()[k], v), k  # the encoder stays as distilled
    changed = [k for k, v in student.decoder.state_dict().items() if not torch.equal(model.net.decoder.state_dict()[k], v)]
    assert changed  # the decoder learns
    start, _ = _net(data)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["architecture"]["family"] == "student-style" and card["architecture"]["width"] == 8
    assert card["initialised_from"] == "student.safetensors" and card["iterations"] == 3
    assert "student" in (tmp_path / "m.md").read_text()
    x = torch.rand(1, 3, 30, 44, generator=torch.Generator().manual_seed(4))
    out = FeedForwardStylizer(model=model, device="cpu")(x)
    with torch.no_grad():
        assert torch.allclose(out, model.net.eval()(x), atol=1e-5) and out.shape == x.shape


@pytest.mark.parametrize("change, word", [
    ({"style": ("a.png", "b.png")}, "size"),
    ({"style": ("a.png", "b.png"), "style_mix": (0.5, 0.5), "multi_style": True}, "style_mix"),
])
def test_bad_combinations_name_the_parameter(data: dict[str, Path], tmp_path: Path, change: dict, word: str) -> None:
    with pytest.raises(OptionValueError, match=word):
        _config(data, tmp_path / "m", **change).validate()


def test_init_that_is_not_a_student_is_one_clear_error(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.errors import InputNotFoundError, ModelError
    from vidstyle.train import train

    with pytest.raises(InputNotFoundError, match="^init: .*not found") as info:
        train(config=_config(data, tmp_path / "m", init=str(tmp_path / "none.safetensors")))
    assert info.value.parameter == "init"
    with pytest.raises(ModelError, match="init"):
        train(config=_config(data, tmp_path / "m", init=str(data["vgg"])))


def test_strength_interpolates_the_style_toward_the_frames_own_statistics(data: dict[str, Path]) -> None:
    """s = 1 is the style, s = 0 the decoder of the frame's own features, between them (γ, β) move linearly
    (Ghiasi et al.); one value or one per image."""
    net, _ = _net(data)
    net.eval()
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        f = net.encoder(x)
        var, mean = torch.var_mean(f, dim=(2, 3), unbiased=False, keepdim=True)
        styled = (f - mean) / (var + 1e-5).sqrt() * net.gamma[None, :, None, None] + net.beta[None, :, None, None]
        assert torch.allclose(net(x, strength=1.0), net(x), atol=1e-6)
        assert torch.allclose(net(x, strength=0.0), net.decoder(f, size=(32, 40)), atol=2e-4)
        half = net.decoder(0.5 * styled + 0.5 * f, size=(32, 40))
        assert torch.allclose(net(x, strength=0.5), half, atol=2e-4)
        both = net(x, strength=torch.tensor([0.0, 1.0]))
        assert torch.allclose(both[0], net(x[:1], strength=0.0)[0], atol=1e-6)
        assert torch.allclose(both[1], net(x[1:])[0], atol=1e-6)
        with pytest.raises(ValueError, match="strength"):
            net(x, strength=torch.tensor([0.1, 0.2, 0.3]))
    assert net.feature_strength


def test_init_from_a_one_style_student_model_goes_on_training_it(data: dict[str, Path], tmp_path: Path) -> None:
    import json

    from vidstyle.nets.registry import load_model, save_model
    from vidstyle.train import train

    net, _ = _net(data)
    with torch.no_grad():
        net.gamma.mul_(1.5)  # not where a fresh start from the student would be
    start = save_model(tmp_path / "start.safetensors", net=net, name="start", style="stripes")
    result = train(config=_config(data, tmp_path / "more", init=str(start), iterations=2))
    more = load_model(result.model_path).net
    assert torch.equal(more.encoder.state_dict()["head.weight"], net.encoder.state_dict()["head.weight"])
    assert torch.allclose(more.gamma, net.gamma, rtol=0.2) and not torch.equal(more.gamma, net.gamma)
    card = json.loads((tmp_path / "more.json").read_text())
    assert card["initialised_from"] == "start.safetensors"


@pytest.mark.parametrize(("argv", "want"), [
    (["--size", "student"], {"iterations": 300, "batch_size": 2, "style_size": 512, "style_reduction": "sum",
                             "style_weight": 1e-3, "tv_weight": 10.0, "lr": 1e-3, "lattice_weight": 1e6}),
    (["--size", "student", "--lattice-weight", "0"], {"lattice_weight": 0.0, "tv_weight": 10.0}),  # 0 said is 0
    (["--size", "student", "--lattice-weight", "2e5"], {"lattice_weight": 2e5}),
    (["--lattice-weight", "3"], {"lattice_weight": 3.0, "style_weight": 10.0}),
    (["--size", "student", "--style-weight", "0.01", "--iterations", "50"],
     {"iterations": 50, "style_weight": 0.01, "style_reduction": "sum", "tv_weight": 10.0}),
    (["--size", "student", "--multi-style", "--style", "b.jpg", "--style", "c.jpg"], {"iterations": 900, "batch_size": 2}),
    (["--size", "student", "--time-budget", "10"], {"iterations": 1_000_000, "time_budget": 600.0, "batch_size": 2}),
    (["--size", "student", "--multi-style", "--style", "b.jpg", "--style-repeats", "b=2"],  # a, b, b per cycle
     {"iterations": 900, "style_repeats": (1, 2)}),
    (["--size", "student", "--multi-style", "--style", "b.jpg", "--style-names", "x,y", "--style-repeats", "x=3"],
     {"iterations": 1200, "style_repeats": (3, 1), "style_names": ("x", "y")}),
    ([], {"iterations": 2000, "batch_size": 4, "style_size": 384, "style_reduction": "mean", "style_weight": 10.0,
          "lattice_weight": 0.0, "style_lattice": None}),
    (["--size", "student", "--multi-style", "--style", "b.jpg", "--style-lattice", "a=0"],  # b keeps the recipe's
     {"lattice_weight": 1e6, "style_lattice": (0.0, 1e6)}),
    (["--size", "student", "--multi-style", "--style", "b.jpg", "--style-names", "x,y", "--lattice-weight", "5",
      "--style-lattice", "y=2.5"], {"lattice_weight": 5.0, "style_lattice": (5.0, 2.5)}),
])
def test_cli_size_student_defaults_to_the_measured_recipe(argv: list[str], want: dict, tmp_path: Path,
                                                           monkeypatch) -> None:
    """``vidstyle train --size student`` without the recipe's flags trains what the shipped student models are
    (300 iterations per painting, batch 2, painting at 512 px, standard Gram form, style 1e-3, tv 10, lattice 1e6); a
    flag given wins (``--lattice-weight 0`` too, though 0 is the other sizes' default); with a time budget the budget decides; other sizes keep their own defaults."""
    import vidstyle.train
    from vidstyle.cli.main import main

    seen = {}

    def capture(*, config, **kw):
        seen["config"] = config
        raise KeyboardInterrupt

    monkeypatch.setattr(vidstyle.train, "train", capture)
    assert main(["train", "--style", "a.jpg", "--content", "photos", "-o", str(tmp_path / "m"), "--quiet", *argv]) == 130
    assert {k: getattr(seen["config"], k) for k in want} == want


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--style-repeats", "z=2", "names 'z', which is not among the styles: a, b"),
    ("--style-repeats", "b=two", "NAME=N with N a whole number"),
    ("--style-lattice", "z=0", "names 'z', which is not among the styles: a, b"),
    ("--style-lattice", "b=none", "NAME=W with W a number"),
    ("--style-lattice", "b=-1", "finite numbers >= 0"),
])
def test_cli_per_style_values_bad(flag: str, value: str, message: str, tmp_path: Path, capsys) -> None:
    """``--style-repeats`` and ``--style-lattice``: a name not among the paintings or a bad value is one line naming
    the flag, and nothing is written."""
    from vidstyle.cli.main import main

    assert main(["train", "--size", "student", "--multi-style", "--style", "a.jpg", "--style", "b.jpg", "--content",
                 "photos", "-o", str(tmp_path / "m"), "--quiet", flag, value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and flag in err[0], err
    assert not list(tmp_path.iterdir())
