"""Training: loss goes down, checkpoints resume bit-identically, runs are deterministic, the model card
is written, the temporal loss runs, synthetic pairs carry an exact flow, and the CLI fails cleanly.

Everything is tiny: a random-weights VGG19 prefix (Caffe convention), four generated 40×56 photos,
32 px crops, batch 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.cli.common import error_line
from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError
from vidstyle.train import TrainConfig, TrainProgress, synthetic_pair, train

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# torchvision vgg19().features index, out and in channels of conv1_1 … conv3_4
_VGG = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256), (14, 256, 256), (16, 256, 256)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _smooth_noise(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 0.3), (3.0, 0.4), (8.0, 0.5)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    return (np.clip(img / (4 * img.std()) + 0.5, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("train_data")
    content = root / "content"
    content.mkdir()
    for i in range(4):
        cv2.imwrite(str(content / f"photo_{i}.png"), _smooth_noise(40, 56, seed=i))
    (content / "notes.txt").write_text("not an image")  # ignored
    # style: bold diagonal colour stripes
    ys, xs = np.mgrid[0:48, 0:48]
    stripes = ((xs + ys) // 6) % 3
    palette = np.array([[30, 60, 200], [240, 200, 40], [20, 20, 20]], np.uint8)  # BGR
    cv2.imwrite(str(root / "stripes.png"), palette[stripes])
    g = torch.Generator().manual_seed(0)
    sd = {}
    for index, cout, cin in _VGG:
        sd[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        sd[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    save_file(sd, str(root / "vgg.safetensors"), metadata={"convention": "caffe"})
    return {"content": content, "style": root / "stripes.png", "vgg": root / "vgg.safetensors"}


def _config(data: dict[str, Path], out: Path, **kw) -> TrainConfig:
    base = {"style": (str(data["style"]),), "content": str(data["content"]), "output": str(out), "image_size": 32,
            "style_size": 48, "batch_size": 2, "iterations": 4, "checkpoint_every": 2, "vgg_weights": str(data["vgg"]),
            "seed": 3}
    base.update(kw)
    return TrainConfig(**base)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        assert torch.equal(value, b[k]), k


def test_loss_decreases(data: dict[str, Path], tmp_path: Path) -> None:
    totals: list[float] = []

    def progress(p: TrainProgress) -> None:
        assert p.iterations == 20 and p.elapsed >= 0
        totals.append(p.losses["total"])

    result = train(config=_config(data, tmp_path / "m", iterations=20, checkpoint_every=100, lr=1e-2), progress=progress)
    assert len(totals) == 20 and all(math.isfinite(t) for t in totals)
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    assert last < 0.6 * first, (first, last)  # measured: 0.17-0.30 for seeds 3-5
    assert result.final_losses["total"] == totals[-1]
    assert [h["iteration"] for h in result.history] == [10, 20]


@pytest.mark.parametrize("loss", ["mmd-linear", "mmd-gaussian", "bn"])
def test_the_statistics_style_losses_train(data: dict[str, Path], tmp_path: Path, loss: str) -> None:
    """Training takes the non-patch style losses: the style term falls, and the card records the loss."""
    styles: list[float] = []
    result = train(config=_config(data, tmp_path / "m", iterations=16, checkpoint_every=100, lr=1e-2, style_loss=loss,
                                  content_weight=1e-3),
                   progress=lambda p: styles.append(p.losses["style"]))
    assert np.mean(styles[-4:]) < 0.7 * np.mean(styles[:4]), (loss, styles)
    assert json.loads(result.card_path.with_suffix(".json").read_text())["loss_network"]["style_loss"] == loss


def test_resume_reaches_the_identical_state(data: dict[str, Path], tmp_path: Path) -> None:
    straight = train(config=_config(data, tmp_path / "straight"))
    half = train(config=_config(data, tmp_path / "split", iterations=2))
    ckpt_after_2 = _tensors(half.checkpoint_path)
    resumed = train(config=_config(data, tmp_path / "split"), resume=True)
    _assert_identical(_tensors(straight.model_path), _tensors(resumed.model_path))
    _assert_identical(_tensors(straight.checkpoint_path), _tensors(resumed.checkpoint_path))  # Adam moments + RNG too
    assert straight.final_losses == resumed.final_losses
    # the checkpoint really held the state after 2 iterations (not the final one)
    assert not torch.equal(ckpt_after_2["net.head.1.weight"], _tensors(resumed.checkpoint_path)["net.head.1.weight"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda(data: dict[str, Path], tmp_path: Path) -> None:
    """Optimizer state comes back on the parameters' device (GPU kernels need not be bit-exact)."""
    straight = train(config=_config(data, tmp_path / "straight", temporal_weight=1.0), device="cuda")
    train(config=_config(data, tmp_path / "split", iterations=2, temporal_weight=1.0), device="cuda")
    resumed = train(config=_config(data, tmp_path / "split", temporal_weight=1.0), resume=True, device="cuda")
    a, b = _tensors(straight.model_path), _tensors(resumed.model_path)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)


def test_same_seed_same_model_other_seed_other_model(data: dict[str, Path], tmp_path: Path) -> None:
    a = train(config=_config(data, tmp_path / "a", iterations=2))
    b = train(config=_config(data, tmp_path / "b", iterations=2))
    c = train(config=_config(data, tmp_path / "c", iterations=2, seed=4))
    _assert_identical(_tensors(a.model_path), _tensors(b.model_path))
    assert a.final_losses == b.final_losses
    assert not torch.equal(_tensors(a.model_path)["head.1.weight"], _tensors(c.model_path)["head.1.weight"])


def test_resume_with_other_options_is_refused(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="^resume: no checkpoint .*run without `resume`") as info:
        train(config=_config(data, tmp_path / "m", iterations=2), resume=True)
    assert error_line(info.value).startswith("--resume: no checkpoint")
    assert "run without --resume" in error_line(info.value)
    train(config=_config(data, tmp_path / "m", iterations=2))
    for change in ({"lr": 5e-3}, {"style_weight": 3.0}, {"image_size": 40}, {"seed": 9}, {"size": "small"}):
        with pytest.raises(InvalidOptionError, match=next(iter(change))):
            train(config=_config(data, tmp_path / "m", iterations=3, **change), resume=True)


def test_model_file_and_card(data: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.nets.registry import load_model

    result = train(config=_config(data, tmp_path / "wavy", iterations=2, name="Wavy One"))
    assert result.model_path == tmp_path / "wavy.safetensors" and result.card_path == tmp_path / "wavy.md"
    assert result.checkpoint_path.is_file() and result.iterations == 2
    card = json.loads((tmp_path / "wavy.json").read_text())
    assert card["name"] == "Wavy One" and card["iterations"] == 2 and card["seed"] == 3
    assert card["architecture"]["size"] == "tiny" and card["architecture"]["space_to_depth"] is True
    assert card["architecture"]["channels"] == [32, 32, 32] and card["architecture"]["n_res"] == 4
    assert card["style_images"] == ["stripes.png"]
    assert card["loss_network"] == {"source": "vgg.safetensors", "convention": "caffe", "content_layer": "relu2_2",
                                    "style_layers": ["relu1_2", "relu2_2", "relu3_3"], "style_reduction": "mean",
                                    "style_loss": "gram"}
    assert card["data"] == {"content": "content", "images": 4, "image_size": 32, "style_size": 48, "batch_size": 2}
    assert set(card["final_losses"]) == {"total", "content", "style", "tv", "temporal"}
    assert card["trained_with"] == "vidstyle train" and card["hardware"] and card["training_seconds"] >= 0
    md = result.card_path.read_text()
    for text in ("# Wavy One", "stripes.png", "caffe", "relu3_3", "`tiny`", "4 photos"):
        assert text in md, text
    model = load_model(result.model_path)
    assert model.name == "Wavy One" and model.metadata["style"] == "stripes" and model.metadata["iterations"] == 2
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        assert model(x).shape == x.shape


def test_temporal_loss_runs_and_is_reported(data: dict[str, Path], tmp_path: Path) -> None:
    plain = train(config=_config(data, tmp_path / "plain", iterations=2))
    assert plain.final_losses["temporal"] == 0.0
    temporal = train(config=_config(data, tmp_path / "tmp", iterations=2, temporal_weight=5.0))
    assert temporal.final_losses["temporal"] > 0.0
    t = temporal.final_losses
    expected = t["content"] + 10.0 * t["style"] + t["tv"] + 5.0 * t["temporal"]
    assert t["total"] == pytest.approx(expected, rel=1e-4)
    assert json.loads((tmp_path / "tmp.json").read_text())["weights"]["temporal"] == 5.0


def test_lattice_loss_enters_the_total_and_the_card(data: dict[str, Path], tmp_path: Path) -> None:
    plain = train(config=_config(data, tmp_path / "plain", iterations=2))
    assert "lattice" not in plain.final_losses
    result = train(config=_config(data, tmp_path / "lat", iterations=2, lattice_weight=300.0))
    t = result.final_losses
    assert 0.0 < t["lattice"] < 3.0  # bounded by 2·(period − 1)
    expected = t["content"] + 10.0 * t["style"] + t["tv"] + 300.0 * t["lattice"]
    assert t["total"] == pytest.approx(expected, rel=1e-4)
    assert json.loads((tmp_path / "lat.json").read_text())["weights"]["lattice"] == 300.0
    assert "temporal 0.0, lattice 300 |" in result.card_path.read_text()
    assert "lattice" not in plain.card_path.read_text()
    # a different weight is a different run: resuming with it is refused
    with pytest.raises(InvalidOptionError, match="lattice_weight"):
        train(config=_config(data, tmp_path / "lat", iterations=3, lattice_weight=30.0), resume=True)


# ---- synthetic pairs --------------------------------------------------------------------------------


def _analytic(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """A smooth RGB picture defined everywhere, so warped values can be computed exactly."""
    return torch.stack([0.5 + 0.4 * torch.sin(xs / 5.0) * torch.cos(ys / 7.0),
                        0.5 + 0.4 * torch.cos((xs + ys) / 9.0),
                        0.5 + 0.3 * torch.sin(ys / 4.0 - xs / 11.0)])


@pytest.mark.parametrize("device", DEVICES)
def test_synthetic_pair_flow_is_exact(device: str) -> None:
    h, w = 40, 52
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    x = _analytic(xs, ys).expand(3, 3, h, w).contiguous().to(device)
    x2, flow, mask = synthetic_pair(x, gen=torch.Generator().manual_seed(1), noise=0.0)
    assert x2.shape == x.shape and flow.shape == (3, 2, h, w) and mask.shape == (3, 1, h, w)
    assert x2.device == x.device and flow.device == x.device and mask.device == x.device
    flow, mask, x2 = flow.cpu(), mask.cpu(), x2.cpu()
    # x2(p) = x(p + flow(p)): compare with the analytic picture at the displaced points
    for i in range(3):
        expected = _analytic(xs + flow[i, 0], ys + flow[i, 1])
        inside = mask[i, 0].bool()
        assert inside.float().mean() > 0.5
        err = (x2[i] - expected).abs()[:, inside]
        assert err.max() < 0.01  # bilinear interpolation of a smooth picture
        sx, sy = xs + flow[i, 0], ys + flow[i, 1]
        outside = (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)
        assert torch.equal(~inside, outside)
    # a real motion, different for each image, of the documented size
    assert flow.abs().amax() > 1.0 and flow.abs().amax() < 6.0 + 3.0 + 0.05 * max(h, w)
    assert not torch.allclose(flow[0], flow[1])


def test_synthetic_pair_noise_and_determinism() -> None:
    x = torch.rand(2, 3, 24, 24) * 0.5 + 0.25
    a = synthetic_pair(x, gen=torch.Generator().manual_seed(5), noise=0.02)
    b = synthetic_pair(x, gen=torch.Generator().manual_seed(5), noise=0.02)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    clean = synthetic_pair(x, gen=torch.Generator().manual_seed(5), noise=0.0)
    torch.testing.assert_close(a[1], clean[1])  # same flow
    residual = a[0] - clean[0]
    assert residual.std() == pytest.approx(0.02, rel=0.1)


# ---- option validation and the CLI -----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"style": ()}, {"size": "huge"}, {"image_size": 16}, {"batch_size": 0}, {"iterations": 0}, {"lr": 0.0},
     {"style_weight": -1.0}, {"tv_weight": float("nan")}, {"checkpoint_every": 0}, {"style_mix": (1.0, 2.0)},
     {"style_size": 0}, {"max_images": -1}, {"style_layers": ()}, {"style_loss": "mrf"}, {"style_loss": "l1"},
     {"lr_decay": -0.5}, {"lr_final": 0.0}, {"lattice_weight": -1.0}, {"lattice_weight": float("inf")}],
)
def test_bad_options(data: dict[str, Path], tmp_path: Path, change: dict) -> None:
    with pytest.raises(InvalidOptionError):
        train(config=replace(_config(data, tmp_path / "m"), **change))


def test_bad_layers_and_inputs(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="relu3_4"):
        train(config=_config(data, tmp_path / "m", style_layers=("relu4_1",)))
    with pytest.raises(InputNotFoundError):
        train(config=_config(data, tmp_path / "m", content=str(tmp_path / "none")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError):
        train(config=_config(data, tmp_path / "m", content=str(empty)))
    with pytest.raises(InputNotFoundError):
        train(config=_config(data, tmp_path / "m", style=(str(tmp_path / "nope.png"),)))
    with pytest.raises(InputNotFoundError):
        train(config=_config(data, tmp_path / "no_dir" / "m"))
    with pytest.raises(InvalidOptionError, match="device"):
        train(config=_config(data, tmp_path / "m"), device="warp-drive")


def _cli(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--style", str(data["style"]), "--content", str(data["content"]), "-o", str(out),
            "--vgg-weights", str(data["vgg"]), "--image-size", "32", "--style-size", "48", "--batch-size", "2",
            "--threads", "1", "--quiet", *extra]


@pytest.mark.parametrize(
    "extra,code",
    [(["--size", "huge"], 1), (["--image-size", "8"], 1), (["--iterations", "0"], 1), (["--resume"], 1),
     (["--device", "warp-drive"], 1), (["--style-layers", "relu5_1"], 1), (["--lr", "x"], 2),
     (["--vgg-convention", "bgr"], 2), (["--style-mix", "1,a"], 2), (["--style-loss", "mrf"], 1),
     (["--style-loss", "wasserstein"], 1), (["--lr-decay", "1.5"], 1), (["--lr-final", "0"], 1),
     (["--lattice-weight", "-3"], 1), (["--lattice-weight", "x"], 2)],
)
def test_cli_bad_options_exit_cleanly(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
                                      extra: list[str], code: int) -> None:
    from vidstyle.cli.main import main

    try:
        rc = main(_cli(data, tmp_path / "m", *extra))
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    assert rc == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("vidstyle: error: ") and err.count("\n") == 1


def test_cli_missing_required_option(capsys: pytest.CaptureFixture) -> None:
    from vidstyle.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--content", "x", "-o", "y"])
    assert info.value.code == 2 and "--style" in capsys.readouterr().err


def test_cli_trains_a_model(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vidstyle.cli.main import main

    assert main(_cli(data, tmp_path / "cli_model", "--iterations", "2", "--seed", "1")) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "cli_model.safetensors") in out and "2 iterations" in out
    assert (tmp_path / "cli_model.md").is_file() and (tmp_path / "cli_model.json").is_file()


def test_init_fine_tunes_from_a_trained_model(data: dict[str, Path], tmp_path: Path) -> None:
    first = train(config=_config(data, tmp_path / "first", iterations=6, lr=1e-2))
    start = _tensors(first.model_path)
    tuned = train(config=_config(data, tmp_path / "tuned", iterations=1, lr=1e-6, seed=9, init=str(first.model_path)))
    fresh = train(config=_config(data, tmp_path / "fresh", iterations=1, lr=1e-6, seed=9))
    after, scratch = _tensors(tuned.model_path), _tensors(fresh.model_path)
    key = "net.head.1.weight" if "net.head.1.weight" in after else next(k for k in after if k.endswith("weight"))
    # one tiny step from the given weights stays next to them; the same step from scratch does not
    assert torch.allclose(after[key], start[key], atol=1e-4)
    assert not torch.allclose(scratch[key], start[key], atol=1e-2)
    card = json.loads(tuned.card_path.with_suffix(".json").read_text())
    assert card["initialised_from"] == first.model_path.name  # the file, not where it was on this machine


def test_the_card_keeps_every_training_step_behind_the_model(data: dict[str, Path], tmp_path: Path) -> None:
    """A chain of fine-tunings (``init``) keeps its history: each card's ``lineage`` is its init's lineage plus the
    init's own step, oldest first, and the Markdown card lists them; a model trained from scratch has none."""
    first = train(config=_config(data, tmp_path / "first", iterations=3))
    second = train(config=_config(data, tmp_path / "second", iterations=2, lr=5e-4, init=str(first.model_path)))
    third = train(config=_config(data, tmp_path / "third", iterations=1, style_weight=2e-3,
                                  init=str(second.model_path)))
    cards = [json.loads(r.card_path.with_suffix(".json").read_text()) for r in (first, second, third)]
    assert cards[0]["lineage"] == []
    assert [s["name"] for s in cards[2]["lineage"]] == ["first", "second"]
    assert [s["iterations"] for s in cards[2]["lineage"]] == [3, 2]
    assert cards[2]["lineage"][1]["lr"] == 5e-4 and cards[2]["lineage"][1]["initialised_from"] == "first.safetensors"
    assert cards[2]["lineage"][0] == cards[1]["lineage"][0]  # the same step, as the second card had it
    # the card in the model file is the JSON card
    from vidstyle.nets.registry import card_of

    assert card_of(third.model_path)["lineage"] == cards[2]["lineage"]
    md = third.card_path.read_text()
    assert "## Training steps" in md and "## Training steps" not in first.card_path.read_text()
    steps = [ln for ln in md.splitlines() if ln[:3] in ("1. ", "2. ", "3. ")]
    assert [ln.split("`")[1] for ln in steps] == ["first", "second", "third"]
    assert "3 iterations" in steps[0] and "from `first.safetensors`: 2 iterations" in steps[1]
    assert "style weight 0.002" in steps[2] and steps[2].endswith("(this card)")


def test_init_of_another_size_is_refused(data: dict[str, Path], tmp_path: Path) -> None:
    first = train(config=_config(data, tmp_path / "first", iterations=1))
    with pytest.raises(InvalidOptionError, match="^init .*same `size`, or drop `init`") as info:
        train(config=_config(data, tmp_path / "other", iterations=1, size="small", init=str(first.model_path)))
    assert error_line(info.value).startswith("--init ") and "same --size, or drop --init" in error_line(info.value)


def test_cli_ctrl_c_says_where_the_checkpoint_is(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    import vidstyle.train
    from vidstyle.cli.main import main

    def interrupted(**kw: object) -> None:
        (tmp_path / "mine.ckpt.safetensors").write_bytes(b"checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(vidstyle.train, "train", interrupted)
    rc = main(["train", "--style", "s.jpg", "--content", "photos", "-o", str(tmp_path / "mine"), "--iterations", "7"])
    err = capsys.readouterr().err
    assert rc == 130
    assert str(tmp_path / "mine.ckpt.safetensors") in err and "--iterations 7 --resume" in err


def test_multi_style_training_and_add_style_change_only_the_new_row(data: dict[str, Path], tmp_path: Path) -> None:
    """--multi-style trains one network for several styles (plus the identity slot); --add-style then
    trains one new (γ, β) row and leaves every other weight exactly as it was."""
    from vidstyle.nets.registry import load_model

    style2 = tmp_path / "style2.png"
    cv2.imwrite(str(style2), np.full((48, 48, 3), (40, 160, 60), np.uint8))
    base = train(config=_config(data, tmp_path / "multi", style=(str(data["style"]), str(style2)), multi_style=True,
                                style_names=("stripes", "green"), iterations=3))
    model = load_model(base.model_path)
    assert model.styles == ["identity", "stripes", "green"]
    card = json.loads((tmp_path / "multi.json").read_text())
    assert card["architecture"]["family"] == "multistyle" and card["styles"] == ["identity", "stripes", "green"]
    more = train(config=_config(data, tmp_path / "more", style=(str(style2),), add_style=True, style_names=("green2",),
                                init=str(base.model_path), iterations=2))
    before, after = _tensors(base.model_path), _tensors(more.model_path)
    for key, old in before.items():
        new = after[key]
        if new.ndim == 2 and new.shape[0] == old.shape[0] + 1:  # a (γ, β) matrix: one row more
            assert torch.equal(new[:-1], old), key
        else:
            assert torch.equal(new, old), key
    assert any(not torch.equal(after[k][-1], after[k][1:-1].mean(0)) for k in after if after[k].ndim == 2)
    tuned = train(config=_config(data, tmp_path / "tuned", style=(str(data["style"]),), tune_style=True,
                                 style_names=("stripes",), init=str(base.model_path), iterations=2))
    again = _tensors(tuned.model_path)
    changed = [key for key, old in before.items() if not torch.equal(again[key], old)]
    assert changed and all(before[k].ndim == 2 and before[k].shape[0] == 3 for k in changed), changed  # (γ, β) only
    for key in changed:  # --tune-style stripes: its row (slot 1) learned, the identity and green rows did not
        assert torch.equal(again[key][[0, 2]], before[key][[0, 2]]), key


def test_time_budget_stops_and_saves(data: dict[str, Path], tmp_path: Path) -> None:
    result = train(config=_config(data, tmp_path / "quick", iterations=10_000, time_budget=1e-6))
    card = json.loads((tmp_path / "quick.json").read_text())
    assert result.model_path.is_file() and card["iterations"] == 1 and result.iterations == 1 and card["time_budget_s"] == 1e-6


def test_lr_decay_sets_the_rate_of_every_step_and_resumes(data: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate each Adam step runs at is the schedule's (lr × factor(i)); a run resumed halfway continues the
    same schedule to the same model; the card records it; a constant-rate checkpoint cannot be resumed with a decay."""
    from vidstyle.lr_schedule import lr_factor

    rates: list[float] = []
    step = torch.optim.Adam.step

    def spy(self, *a, **k):  # noqa: ANN001, ANN202
        rates.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = dict(iterations=6, lr=1e-2, lr_decay=0.5, lr_final=0.2)
    straight = train(config=_config(data, tmp_path / "straight", **cfg))
    assert rates == pytest.approx([1e-2 * lr_factor(i, iterations=6, decay=0.5, final=0.2) for i in range(6)])
    assert rates[-1] == pytest.approx(2e-3) and rates[0] == 1e-2
    rates.clear()

    class Stop(Exception):
        pass

    def stop_after_4(p: TrainProgress) -> None:
        if p.iteration == 4:  # the checkpoint of iteration 4 is written (checkpoint_every 2)
            raise Stop

    with pytest.raises(Stop):
        train(config=_config(data, tmp_path / "split", **cfg), progress=stop_after_4)
    resumed = train(config=_config(data, tmp_path / "split", **cfg), resume=True)
    assert rates == pytest.approx([1e-2 * lr_factor(i, iterations=6, decay=0.5, final=0.2) for i in (0, 1, 2, 3, 4, 5)])
    _assert_identical(_tensors(straight.model_path), _tensors(resumed.model_path))
    card = json.loads(straight.card_path.with_suffix(".json").read_text())
    assert card["lr_schedule"] == "cosine decay to 0.2× over the last 50 %"
    assert "cosine decay to 0.2×" in straight.card_path.read_text()
    with pytest.raises(InvalidOptionError, match="lr_decay"):
        train(config=_config(data, tmp_path / "split", **{**cfg, "lr_decay": 0.0}), resume=True)
    assert straight.iterations == resumed.iterations == 6
