"""The arbitrary-style back end in the pipeline: any painting, analysed once, through the feed-forward stage."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.errors import InputNotFoundError, ModelError  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.options import OptionValueError  # noqa: E402


@pytest.fixture()
def parts(tmp_path: Path) -> dict[str, Path]:
    from vidstyle.nets.decoder import Decoder, save_decoder

    from vidstyle.nets.decoder import vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    vgg = write_fake_vgg(tmp_path / "vgg.safetensors", metadata={"convention": "caffe"})
    torch.manual_seed(0)
    decoder = save_decoder(tmp_path / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                           convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    rng = np.random.default_rng(0)
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), (rng.random((60, 80, 3)) * 255).astype(np.uint8))
    return {"vgg": vgg, "decoder": decoder, "painting": painting, "tmp": tmp_path}


def _stages(parts: dict[str, Path], **kw: object) -> list:
    from vidstyle.api import build_stages

    options = {"backend": "arbitrary", "style": str(parts["painting"]), "decoder": str(parts["decoder"]),
               "vgg_weights": str(parts["vgg"]), "device": "cpu", "threads": 1, "stabilize": 0, **kw}
    return build_stages(**options)


def _run(stages: list, frames: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for i, image in enumerate(frames):
        for stage in stages:
            got = stage.process(Frame(index=i, image=image))
            out += [f.stylized for f in got]
    for stage in stages:
        out += [f.stylized for f in stage.finish()]
        stage.close()
    return out


@pytest.mark.parametrize("method", ["adain", "wct", "swap"])
def test_every_method_runs_in_the_stage_and_keeps_the_frame_size(parts, method: str) -> None:
    frame = (np.random.default_rng(1).random((37, 53, 3)) * 255).astype(np.uint8)  # odd size
    (out,) = _run(_stages(parts, method=method), [frame])
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_the_output_is_decoder_of_transformed_features(parts) -> None:
    """Strength 0 gives decoder(encoder(x)); strength 1 gives decoder(adain(encoder(x), style))."""
    from vidstyle.io.imagefiles import read_image
    from vidstyle.nets.decoder import VGGEncoder, load_decoder
    from vidstyle.stylize import transforms
    from vidstyle.stylize.feedforward import image_to_tensor

    frame = (np.random.default_rng(2).random((32, 48, 3)) * 255).astype(np.uint8)
    enc = VGGEncoder(layer="relu3_1", weights=str(parts["vgg"]))
    dec = load_decoder(parts["decoder"])
    x = image_to_tensor(frame)[None]
    style = transforms.style_image_at(image_to_tensor(read_image(parts["painting"]))[None], long_side=512)
    with torch.no_grad():
        f = enc(x)
        plain = dec(f, size=(32, 48)).clamp(0, 1)
        styled = dec(transforms.adain(f, enc(style)), size=(32, 48)).clamp(0, 1)
    for strength, ref in ((0.0, plain), (1.0, styled)):
        (out,) = _run(_stages(parts, style_strength=strength), [frame])
        expect = (ref[0].permute(1, 2, 0).numpy() * 255).round()
        assert np.abs(out.astype(np.float64) - expect).max() <= 1.0


def test_keyframed_strength_moves_from_the_photo_to_the_style(parts) -> None:
    frame = (np.random.default_rng(3).random((32, 32, 3)) * 255).astype(np.uint8)
    outs = _run(_stages(parts, style_strength="0:0, 2:1"), [frame, frame, frame])
    (plain,) = _run(_stages(parts, style_strength=0.0), [frame])
    (full,) = _run(_stages(parts, style_strength=1.0), [frame])
    assert np.array_equal(outs[0], plain) and np.array_equal(outs[2], full)
    assert not np.array_equal(outs[1], plain) and not np.array_equal(outs[1], full)


def test_bad_inputs_are_one_clear_error(parts) -> None:
    with pytest.raises(InputNotFoundError, match="decoder file .* not found"):
        _stages(parts, decoder=str(parts["tmp"] / "none.safetensors"))
    with pytest.raises(InputNotFoundError):
        _stages(parts, style=str(parts["tmp"] / "none.png"))
    tiny = parts["tmp"] / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(OptionValueError, match="at least 32 px"):
        _stages(parts, style=str(tiny))
    other = write_fake_vgg(parts["tmp"] / "other_vgg.safetensors", metadata={"convention": "caffe"}, seed=1)
    with pytest.raises(ModelError, match="trained on the VGG19 weights vgg.safetensors"):
        _stages(parts, vgg_weights=str(other))
    renamed = parts["tmp"] / "renamed.safetensors"  # the same weights under another name: accepted
    renamed.write_bytes(parts["vgg"].read_bytes())
    assert _stages(parts, vgg_weights=str(renamed))
    with pytest.raises(OptionValueError, match="needs a style image"):
        _stages(parts, style=None)


def test_method_and_decoder_need_a_painting() -> None:
    from vidstyle.options import StylizeOptions

    assert StylizeOptions(backend="arbitrary", style="p.jpg").method == "adain"
    for kw in ({"method": "wct"}, {"decoder": "d.safetensors"}):
        with pytest.raises(OptionValueError, match="is for the arbitrary back end") as info:
            StylizeOptions(**kw)
        assert info.value.parameter in kw


def test_one_style_model_strength_blends_with_the_input() -> None:
    """A per-style network has no style space to interpolate: strength s gives s·f(x) + (1 − s)·x."""
    from vidstyle.options import Curve
    from vidstyle.stylize.style_control import StyleControl

    x = torch.rand(2, 3, 8, 8)

    def net(batch: torch.Tensor) -> torch.Tensor:
        return 1.0 - batch

    ctl = StyleControl(styles=[], style_strength=Curve.parse("0:0, 10:1"))
    torch.testing.assert_close(ctl.apply(net, x, [0, 10]), torch.stack([x[0], 1 - x[1]]))
    torch.testing.assert_close(ctl.apply(net, x, [5, 5]), 0.5 * (1 - x) + 0.5 * x)
    with pytest.raises(OptionValueError, match="needs a multi-style model"):
        StyleControl(styles=[], style_mix=(("a", Curve.constant(1.0)),))
