"""The fast arbitrary-style variant's networks: shapes and dtypes, the FLOP count against its formula, the model
file (round trip, refusal of other files), and the fast path moving a picture's statistics toward the painting's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.errors import InputNotFoundError, ModelError
from vidstyle.nets.student import (FEATURE_CHANNELS, Student, StudentConfig, StudentDecoder, StudentEncoder,
                                   is_student_file, load_student, save_student, student_gflop)
from vidstyle.options.spec import OptionValueError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("h, w", [(36, 52), (37, 50), (8, 8)])
def test_shapes_and_ranges(h: int, w: int) -> None:
    torch.manual_seed(0)
    net = Student(config=StudentConfig(width=8, blocks=1)).eval()
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        f = net.encoder(x)
    assert f.shape == (2, FEATURE_CHANNELS, -(-h // 4), -(-w // 4)) and f.dtype == torch.float32
    assert float(f.min()) >= 0  # relu3_1 features are non-negative; so are the student's
    with torch.no_grad():
        y = net.decoder(f, size=(h, w))
    assert y.shape == (2, 3, h, w) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert net(x).shape == x.shape
    net.train()
    assert net.decoder(f * 50, size=(h, w)).abs().max() > 1  # not clamped while training


def test_inference_encoder_folds_the_gain_and_matches_training() -> None:
    """Without gradients the encoder folds FEATURE_GAIN into its head conv; the features equal the training path's
    ``relu(head(h)) · gain`` up to float rounding, and the head's weights are left as they are."""
    torch.manual_seed(0)
    net = Student(config=StudentConfig(width=8, blocks=1)).eval()
    with torch.no_grad():
        net.encoder.head.bias.uniform_(-0.05, 0.05)  # some channels rectified, some not
    before = net.encoder.head.weight.clone()
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        fast = net.encoder(x)
    want = net.encoder(x).detach()
    assert (want == 0).any() and (want > 0).any()
    torch.testing.assert_close(fast, want, rtol=1e-5, atol=1e-3)
    assert torch.equal(net.encoder.head.weight, before)


def test_inference_stem_is_one_strided_conv_of_the_image() -> None:
    """Without gradients the stem (space-to-depth, centring, 1×1 conv, ReLU) runs as one 4×4 stride-4 conv of the
    image: the same features as the written-out stem, for a size that needs padding too."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    net = Student(config=StudentConfig(width=8, blocks=0)).eval()
    with torch.no_grad():
        net.encoder.stem[1].bias.uniform_(-0.3, 0.3)
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        fast = net.encoder(x)
    xp = F.pad(x, (0, 2, 0, 3), mode="reflect")  # to multiples of 4, bottom and right
    h = torch.relu(net.encoder.stem[1](F.pixel_unshuffle(xp - 0.5, 4)))
    want = (torch.relu(net.encoder.head(h)) * 1000.0).detach()
    assert (h == 0).any() and (h > 0).any()  # the stem's ReLU cuts some values
    torch.testing.assert_close(fast, want, rtol=1e-5, atol=1e-3)


def test_bfloat16_runs_and_stays_close() -> None:
    torch.manual_seed(0)
    net = Student(config=StudentConfig(width=8, blocks=1)).eval()
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        a = net(x)
        b = net.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert b.dtype == torch.bfloat16 and (a - b.float()).abs().mean() < 0.02


def test_decode_affine_is_decoding_the_moved_features() -> None:
    torch.manual_seed(0)
    dec = StudentDecoder(config=StudentConfig(width=8, blocks=1)).eval()
    f = torch.rand(2, 256, 6, 7) * 400
    scale, shift = torch.rand(2, 256) * 2, torch.randn(2, 256) * 50
    with torch.no_grad():
        want = dec(scale[:, :, None, None] * f + shift[:, :, None, None], size=(22, 27))
        got = dec.decode_affine(f, scale, shift, size=(22, 27))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    with pytest.raises(ModelError, match="decode_affine takes N×256 scale and shift"):
        dec.decode_affine(f, scale[:1], shift[:1])


def test_decoder_refuses_other_features() -> None:
    with pytest.raises(ModelError, match="takes N×256×H×W features"):
        StudentDecoder()(torch.zeros(1, 128, 4, 4))


def test_gflop_matches_the_formula() -> None:
    """Per pixel of the 1/4-resolution grid, width 48, 2 blocks a side: stem 2·48·48, 4 blocks of 2 depthwise-
    separable convs (2·9·48 + 2·48·48), the 1×1s to and from 256 (2·48·256 each) and the output conv (one more
    depthwise-separable conv); 160×90 such pixels at 640×360."""
    w = 48
    dws = 2 * 9 * w + 2 * w * w
    per_pixel = 2 * 48 * w + 4 * 2 * dws + 2 * (2 * w * FEATURE_CHANNELS) + dws
    assert student_gflop(StudentConfig(width=w, blocks=2)) == pytest.approx(per_pixel * 160 * 90 / 1e9, rel=1e-9)
    assert student_gflop() <= 1.5


@pytest.mark.parametrize("kw", [{"width": 2}, {"blocks": -1}, {"layer": "relu2_1"}, {"width": 8.5}])
def test_bad_config_names_the_parameter(kw: dict) -> None:
    with pytest.raises(OptionValueError) as info:
        StudentConfig(**kw)
    assert info.value.parameter == next(iter(kw))


def test_model_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = Student(config=StudentConfig(width=8, blocks=1))
    path = save_student(tmp_path / "s.safetensors", student=net, vgg_source="/x/vgg.safetensors", fingerprint="abc",
                        card={"name": "s"})
    back = load_student(path)
    assert is_student_file(path) and back.config == net.config and not back.training
    assert back.card == {"name": "s"} and back.vgg_source == "vgg.safetensors" and back.vgg_fingerprint == "abc"
    x = torch.rand(1, 3, 24, 28)
    torch.testing.assert_close(back(x), net.eval()(x), rtol=0, atol=0)


def test_wrong_files_are_refused_with_one_line(tmp_path: Path) -> None:
    from vidstyle.nets.decoder import Decoder, save_decoder

    dec = save_decoder(tmp_path / "d.safetensors", decoder=Decoder(layer="relu1_1"), vgg_source="v", convention="caffe")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError, match=r"d.safetensors is a VGG decoder; pass a student model") as info:
        load_student(dec)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="is not a safetensors model file"):
        load_student(junk)
    with pytest.raises(InputNotFoundError, match="train one with `vidstyle train --kind student`"):
        load_student(tmp_path / "missing.safetensors")
    assert not is_student_file(dec) and not is_student_file(junk)


def _colour_student() -> Student:
    """A student whose features are the 4×4 blocks' colours (channels 0–47 of 256, the rest 0) and whose decoder
    gives them back (then the fixed low-pass): AdaIN in its feature space transfers colour statistics per
    sub-pixel position, so its effect on the picture is known."""
    net = Student(config=StudentConfig(width=48, blocks=1))
    eye = torch.eye(48)[:, :, None, None]
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        enc, dec = net.encoder, net.decoder
        enc.stem[1].weight.copy_(eye)
        enc.stem[1].bias.fill_(0.5)  # the stem sees x − 0.5
        enc.head.weight[:48].copy_(eye / 1000.0)  # times FEATURE_GAIN: the colours in [0, 1]
        dec.stem[0].weight[:, :48].copy_(eye * 100.0)  # the decoder multiplies its input by 0.01 first
        dw, pw = dec.head[0][1], dec.head[0][2]
        dw.weight[:, 0, 1, 1] = 1.0
        pw.weight.copy_(eye)
        pw.bias.fill_(-0.5)  # the decoder adds 0.5
    return net.eval()  # the blocks' last convs are zero: each block is the identity on non-negative inputs


def test_the_colour_student_reconstructs() -> None:
    net = _colour_student()
    x = torch.rand(1, 3, 32, 32)
    from vidstyle.filtering import separable_filter

    torch.testing.assert_close(net(x), separable_filter(x, (0.125, 0.25, 0.25, 0.25, 0.125)), rtol=0, atol=1e-5)


def test_fast_path_moves_statistics_toward_the_painting(tmp_path: Path) -> None:
    """`build_arbitrary_model(fast=True)`: the painting analysed once (here by the student); the output's features have
    per-channel means and stds much closer to the painting's than the photo's were."""
    from vidstyle.options import StyleImage
    from vidstyle.stylize.arbitrary import build_arbitrary_model

    path = save_student(tmp_path / "colour.safetensors", student=_colour_student(), vgg_source="v", fingerprint="")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96] / 64.0
    painting = np.stack([0.8 + 0.1 * np.sin(9 * xx), 0.3 + 0.25 * np.cos(7 * yy), 0.1 + 0.05 * rng.random((64, 96))], -1)
    cv2.imwrite(str(tmp_path / "p.png"), (np.clip(painting, 0, 1)[..., ::-1] * 255).astype(np.uint8))
    model = build_arbitrary_model(styles=[StyleImage(path=str(tmp_path / "p.png"))], method="adain", fast=True,
                                  decoder=str(path), style_statistics="student")
    assert model.metadata["fast"] and model.name.startswith("adain-fast:")
    enc = model.net.encoder
    photo = torch.from_numpy(cv2.GaussianBlur(rng.random((48, 64, 3)), (0, 0), 1.5)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        out = model.net(photo)
        style = torch.from_numpy(np.clip(painting, 0, 1)).permute(2, 0, 1)[None].float()
        fp, fx, fo = (enc(t)[:, :48].flatten(2) for t in (style, photo, out))

    def gap(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a.mean(2) - b.mean(2)).abs().mean() + (a.std(2) - b.std(2)).abs().mean())

    assert gap(fo, fp) < 0.35 * gap(fx, fp), (gap(fo, fp), gap(fx, fp))
