"""Encoder/decoder of arbitrary-style transfer: shapes for every layer and odd sizes, the decoder mirrors
the encoder, save/load round trip with metadata, refusals of wrong files and layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidstyle.errors import ModelError
from vidstyle.nets.decoder import ENCODER_LAYERS, Decoder, VGGEncoder, load_decoder, save_decoder
from vidstyle.options.spec import OptionValueError


@pytest.mark.parametrize("layer,channels,scale", [("relu1_1", 64, 1), ("relu2_1", 128, 2), ("relu3_1", 256, 4)])
def test_encoder_decoder_shapes(fake_vgg_caffe: Path, layer: str, channels: int, scale: int) -> None:
    enc = VGGEncoder(layer=layer, weights=fake_vgg_caffe)
    dec = Decoder(layer=layer).eval()
    x = torch.rand(2, 3, 37, 50)
    f = enc(x)
    assert f.shape == (2, channels, -(-37 // 4) * 4 // scale, -(-50 // 4) * 4 // scale)
    y = dec(f, size=(37, 50))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    convs = [m for m in dec.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[-1].out_channels == 3 and convs[0].in_channels == channels
    assert sum(isinstance(m, torch.nn.Upsample) for m in dec.modules()) == {1: 0, 2: 1, 4: 2}[scale]
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in dec.modules())


def test_encoder_refuses_unknown_layers(fake_vgg_caffe: Path) -> None:
    with pytest.raises(OptionValueError):
        VGGEncoder(layer="relu4_1", weights=fake_vgg_caffe)


def test_decoder_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    dec = Decoder(layer="relu2_1").eval()
    path = save_decoder(tmp_path / "d.safetensors", decoder=dec, vgg_source="/x/vgg.safetensors", convention="caffe",
                        card={"psnr": 30.0})
    loaded = load_decoder(path, layer="relu2_1")
    assert loaded.layer == "relu2_1" and loaded.vgg_source == "vgg.safetensors" and loaded.vgg_convention == "caffe"
    assert loaded.card == {"psnr": 30.0} and not loaded.training
    f = torch.randn(1, 128, 6, 7).abs() * 100
    assert torch.equal(loaded(f), dec(f))
    assert load_decoder(path).layer == "relu2_1"


def test_load_decoder_refusals(tmp_path: Path, fake_vgg_caffe: Path) -> None:
    from safetensors.torch import save_file

    path = save_decoder(tmp_path / "d.safetensors", decoder=Decoder(layer="relu1_1"), vgg_source="v", convention="caffe")
    with pytest.raises(ModelError, match="relu1_1") as info:
        load_decoder(path, layer="relu3_1")
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="not a decoder"):
        load_decoder(fake_vgg_caffe)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError):
        load_decoder(junk)
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad), metadata={"vidstyle.architecture": "decoder", "vidstyle.layer": "relu1_1"})
    with pytest.raises(ModelError, match="do not fit"):
        load_decoder(bad)
    assert ENCODER_LAYERS == ("relu1_1", "relu2_1", "relu3_1")
