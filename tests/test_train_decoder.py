"""Decoder training: loss goes down, checkpoints resume bit-identically (2+2 vs 4 iterations), the model
card holds the held-out PSNR, the decoder file loads, and the CLI routes --kind decoder.

Tiny: a random-weights VGG19 prefix (Caffe convention), six generated 40×56 photos (the last two held
out), 32 px crops, batch 2.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.nets.decoder import load_decoder
from vidstyle.options.spec import OptionValueError
from vidstyle.train_decoder import DecoderTrainConfig, held_out_files, train_decoder

_VGG = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("decoder_data")
    content = root / "content"
    content.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = cv2.GaussianBlur(rng.random((40, 56, 3)).astype(np.float32), (0, 0), 2.0)
        img = (img - img.min()) / (img.max() - img.min())
        cv2.imwrite(str(content / f"photo_{i}.png"), (img * 255).astype(np.uint8))
    g = torch.Generator().manual_seed(0)
    sd = {}
    for index, cout, cin in _VGG:
        sd[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        sd[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    vgg = root / "vgg.safetensors"
    save_file(sd, str(vgg), metadata={"convention": "caffe"})
    return {"content": content, "vgg": vgg}


def _config(data: dict[str, Path], out: Path, **kw: object) -> DecoderTrainConfig:
    base = dict(content=str(data["content"]), output=str(out), layer="relu2_1", image_size=32, batch_size=2,
                iterations=4, lr=1e-3, vgg_weights=str(data["vgg"]), checkpoint_every=2, held_out_count=2,
                psnr_size=40, seed=3)
    base.update(kw)
    return DecoderTrainConfig(**base)  # type: ignore[arg-type]


def test_resume_is_identical_and_card_is_written(data: dict[str, Path], tmp_path: Path) -> None:
    full = train_decoder(config=_config(data, tmp_path / "full"))
    half = train_decoder(config=_config(data, tmp_path / "half", iterations=2))
    resumed = train_decoder(config=_config(data, tmp_path / "half", iterations=4), resume=True)
    a, b = load_decoder(full.model_path), load_decoder(resumed.model_path)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert half.iterations == 2 and resumed.iterations == 4
    card = json.loads((tmp_path / "full.json").read_text())
    assert card["held_out"]["images"] == ["photo_4.png", "photo_5.png"] and card["data"]["images"] == 4
    assert card["held_out"]["psnr_db"] == pytest.approx(full.psnr, abs=1e-3) and card["encoder"]["layer"] == "relu2_1"
    assert "reconstruction PSNR" in (tmp_path / "full.md").read_text()
    assert load_decoder(full.checkpoint_path, layer="relu2_1").layer == "relu2_1"  # a checkpoint loads as a decoder


def test_loss_goes_down(data: dict[str, Path], tmp_path: Path) -> None:
    result = train_decoder(config=_config(data, tmp_path / "m", iterations=30, checkpoint_every=30, layer="relu1_1",
                                          lr=3e-3))
    first, last = result.history[0], result.history[-1]
    assert last["pixel"] < first["pixel"]
    assert result.psnr is not None and result.psnr > 10


def test_validation_and_resume_refusals(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OptionValueError) as info:
        _config(data, tmp_path / "x", layer="relu4_1").validate()
    assert info.value.parameter == "layer"
    with pytest.raises(OptionValueError):
        _config(data, tmp_path / "x", pixel_weight=0.0, perceptual_weight=0.0).validate()
    train_decoder(config=_config(data, tmp_path / "r", iterations=2))
    with pytest.raises(OptionValueError, match="pixel_weight"):
        train_decoder(config=_config(data, tmp_path / "r", iterations=4, pixel_weight=2.0), resume=True)
    with pytest.raises(OptionValueError) as info:
        _config(data, tmp_path / "x", lr_final=1.5).validate()
    assert info.value.parameter == "lr_final"
    with pytest.raises(OptionValueError, match="lr_decay=0.0, not 0.5"):  # the schedule is part of a run
        train_decoder(config=_config(data, tmp_path / "r", iterations=4, lr_decay=0.5), resume=True)
    files, excluded = held_out_files(replace(_config(data, tmp_path / "x"), held_out=(str(data["content"]),)))
    assert len(files) == 6 and not excluded


def test_cli_routes_kind_decoder(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vidstyle.cli.main import main

    args = ["train", "--kind", "decoder", "--layer", "relu1_1", "--content", str(data["content"]),
            "--vgg-weights", str(data["vgg"]), "--iterations", "2", "--batch-size", "1", "--image-size", "32",
            "--quiet"]
    assert main([*args, "-o", str(tmp_path / "dec")]) == 0
    assert "held-out PSNR" in capsys.readouterr().out
    assert load_decoder(tmp_path / "dec.safetensors", layer="relu1_1").layer == "relu1_1"
    assert main([*args, "-o", str(tmp_path / "dec2"), "--style", "x.jpg"]) == 1
    err = capsys.readouterr().err
    assert "--style" in err and err.count("\n") == 1 and "Traceback" not in err
