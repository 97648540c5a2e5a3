"""The fused inference form of the arbitrary back end's decoder: the same function as the trained
:class:`Decoder` (odd and even sizes, batches, the ``size=`` crop, both memory layouts), the multiply-adds it
saves, inference only, and the back end runs it while training and the saved file keep the plain decoder."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidstyle.errors import InvalidOptionError, ModelError
from vidstyle.nets.decoder import Decoder, load_decoder
from vidstyle.nets.fused_decoder import FusedDecoder, fuse_decoder

REPO = Path(__file__).resolve().parents[2]


def _decoder(layer: str, seed: int = 0) -> Decoder:
    """A random decoder whose RGB output spreads over [0, 1] (most pixels unclamped), so the comparison
    sees the values and not the clamp."""
    torch.manual_seed(seed)
    dec = Decoder(layer=layer)
    feats = torch.randn(2, dec.in_channels, 6, 7).abs() * 100
    with torch.no_grad():
        raw = dec.train()(feats)  # training mode: not clamped
        last = dec.body[-1]
        k = 0.25 / float(raw.std())
        last.weight.mul_(k)
        last.bias.copy_(last.bias * k + 0.5 - k * raw.mean(dim=(0, 2, 3)))
    return dec.eval()


@pytest.mark.parametrize("layer", ["relu3_1", "relu2_1", "relu1_1"])
@pytest.mark.parametrize("n,h,w", [(1, 6, 8), (1, 5, 7), (2, 9, 4), (2, 2, 3)])
def test_fused_decoder_equals_the_trained_decoder(layer: str, n: int, h: int, w: int) -> None:
    dec = _decoder(layer)
    fused = fuse_decoder(dec)
    feats = torch.randn(n, dec.in_channels, h, w).abs() * 100
    s = dec.scale
    with torch.no_grad():
        for size in (None, (h * s, w * s), (h * s - 3, w * s - 1), (h * s + 2, w * s + 3)):  # exact, crop, pad
            want, got = dec(feats, size=size), fused(feats, size=size)
            assert got.shape == want.shape
            assert float((got - want).abs().max()) < 1e-5
        inside = ((want > 0) & (want < 1)).float().mean()
        assert inside > 0.5  # the values were compared, not the clamp


def test_fused_decoder_in_channels_last_memory() -> None:
    dec = _decoder("relu3_1", seed=1)
    fused = fuse_decoder(dec).to(memory_format=torch.channels_last)
    feats = (torch.randn(2, 256, 7, 10).abs() * 100).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = dec(feats.contiguous(), size=(27, 38)), fused(feats, size=(27, 38))
    assert float((got - want).abs().max()) < 1e-5


def test_fused_decoder_does_4_9_of_the_upsampled_convs_work() -> None:
    """Counted multiply-adds: each upsample + 3×3 conv becomes 4 taps per output pixel instead of 9 (a stride-2
    transposed conv of the replicate-padded low-resolution map, 16 taps per input pixel; the last block as four
    2×2 phase convs), the RGB conv runs on the space-to-depth image (12 outputs, 2×2 taps); the first conv is
    unchanged. No upsampled feature map is computed."""
    dec = _decoder("relu3_1")
    fused = fuse_decoder(dec)
    h, w = 9, 16
    feats = torch.rand(1, 256, h, w)

    def flops(net: torch.nn.Module) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            net(feats)
        return fc.get_total_flops()

    plain = 2 * h * w * 9 * (256 * 128 + 4 * 128 * 128 + 4 * 128 * 64 + 16 * 64 * 64 + 16 * 64 * 3)
    assert flops(dec) == plain
    want = 2 * (256 * 128 * 9 * h * w + 128 * 128 * 16 * (h + 2) * (w + 2) + 128 * 64 * 9 * 4 * h * w
                + 64 * 256 * 4 * (2 * h + 1) * (2 * w + 1) + 256 * 12 * 4 * 4 * h * w)
    assert flops(fused) == want
    assert want < 0.75 * plain
    assert not any(isinstance(m, torch.nn.Upsample) for m in fused.modules())


def test_upsample_conv_transpose_weight_is_the_upsampled_conv() -> None:
    """The transposed-conv kernel reproduces nearest ×2 + reflection pad + 3×3 conv, borders included."""
    from vidstyle.nets.fused_decoder import upsample_conv_transpose_weight

    torch.manual_seed(4)
    k, x = torch.randn(5, 3, 3, 3), torch.randn(2, 3, 4, 7)
    want = torch.nn.functional.conv2d(torch.nn.functional.pad(torch.nn.functional.interpolate(x, scale_factor=2),
                                                              (1, 1, 1, 1), mode="reflect"), k)
    got = torch.nn.functional.conv_transpose2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                               upsample_conv_transpose_weight(k), stride=2, padding=3)
    assert got.shape == want.shape == (2, 5, 8, 14)
    assert float((got - want).abs().max()) < 1e-5


def test_fused_decoder_is_for_inference_only_and_leaves_the_decoder_alone() -> None:
    dec = _decoder("relu2_1")
    before = copy.deepcopy(dec.state_dict())
    fused = fuse_decoder(dec)
    with pytest.raises(InvalidOptionError, match="inference only"):
        fused.train()
    assert not fused.training
    assert dec.state_dict().keys() == before.keys()
    assert all(torch.equal(dec.state_dict()[k], v) for k, v in before.items())
    with pytest.raises(InvalidOptionError):
        fuse_decoder(torch.nn.Conv2d(3, 3, 3))  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="features"):
        fused(torch.rand(1, 64, 4, 4))


def test_the_arbitrary_back_end_runs_the_fused_decoder(tmp_path: Path) -> None:
    """`FeedForwardStylizer` runs the fused form (same picture to round-off as `fuse=False`, which runs the
    decoder as trained); the model it was given keeps the plain decoder."""
    import cv2

    from nets_helpers import write_fake_vgg
    from vidstyle.nets.decoder import save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state
    from vidstyle.options import StyleImage
    from vidstyle.stylize.arbitrary import build_arbitrary_model
    from vidstyle.stylize.feedforward import FeedForwardStylizer, image_to_tensor

    vgg = write_fake_vgg(tmp_path / "vgg.safetensors", metadata={"convention": "caffe"})
    dec = save_decoder(tmp_path / "dec.safetensors", decoder=_decoder("relu3_1", seed=3), vgg_source=str(vgg),
                       convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "p.png"), (rng.random((60, 80, 3)) * 255).astype(np.uint8))
    frame = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    x = image_to_tensor(frame)[None]
    for method in ("adain", "wct"):
        model = build_arbitrary_model(styles=[StyleImage(path=str(tmp_path / "p.png"))], method=method,
                                      decoder=str(dec), vgg_weights=str(vgg))
        fused = FeedForwardStylizer(model=model, device="cpu")
        plain = FeedForwardStylizer(model=model, device="cpu", fuse=False)
        assert isinstance(fused.model.net.decoder, FusedDecoder)
        assert type(plain.model.net.decoder) is Decoder and type(model.net.decoder) is Decoder
        assert fused.model.net.encoder is model.net.encoder
        a, b = fused(x), plain(x)
        assert a.shape == b.shape == x.shape
        assert float((a - b).abs().max()) < 1e-4
        assert float(b.std()) > 0.01  # a picture, not a constant


def test_shipped_decoder_fused_on_a_real_photo(shared_weights: Path, content_photo: Path) -> None:
    """The shipped decoder on a held-out photo through VGG19 relu3_1 (the real weights): the fused form's
    picture equals the trained decoder's to round-off."""
    from vidstyle.io.imagefiles import read_image
    from vidstyle.nets.decoder import VGGEncoder
    from vidstyle.stylize.feedforward import image_to_tensor

    dec = load_decoder(REPO / "models" / "decoder_relu31.safetensors")
    enc = VGGEncoder(layer="relu3_1", weights=shared_weights / "vgg19_imagenet_conv1_1-conv3_4.safetensors")
    x = image_to_tensor(read_image(content_photo))[None]
    with torch.no_grad():
        f = enc(x)
        want, got = dec(f, size=tuple(x.shape[-2:])), fuse_decoder(dec)(f, size=tuple(x.shape[-2:]))
    assert float((got - want).abs().max()) < 1e-4
    assert float((want - x).abs().mean()) < 0.1  # it is the photo decoded
