"""Masks (issue 18): the style only where the matte is white, for every back end, with stabilisation on.

The synthetic clip: a texture panning 1.5 px per frame (6 frames, 64×48, lossless PNG in and out) and a
soft-edged rectangle matte moving 4 px per frame (``matte.%04d.png`` numbered like the plates). For each
back end the masked run is compared with the same run without a mask:

* outside the matte (alpha 0) the output is the decoded input (within 2/255; in fact exactly);
* inside (alpha 1) it is the unmasked run's stylised frame, which differs clearly from the input;
* on the soft edge it is ``a·S + (1 − a)·I`` with the matte of *that* frame (the matte moves, so a matte
  off by one frame fails), which also shows the stabiliser's history is the un-composited frame: a
  history taken from the composite would make the stylised frames differ from the unmasked run's.

The optimisation back end takes the matte through its loss (tests/stylize/test_optim_mask.py), so its
inside is not the unmasked run's: for it the outside, the style inside and the soft edge are checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "nets"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ff_helpers import random_model, translating_sequence  # noqa: E402
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.errors import InputNotFoundError, InvalidInputError, ShapeError  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.io.mattes import Matte, matte_alpha, read_matte  # noqa: E402
from vidstyle.stylize.mask import MaskStage, composite  # noqa: E402

N, H, W, FIRST = 6, 48, 64, 1001


def _matte(i: int, *, h: int = H, w: int = W) -> np.ndarray:
    """Frame i's matte, uint8: a rectangle moving 4 px per frame, edges blurred (soft)."""
    a = np.zeros((h, w), np.float32)
    a[10 * h // H : 38 * h // H, (8 + 4 * i) * w // W : (32 + 4 * i) * w // W] = 1.0
    return np.round(cv2.GaussianBlur(a, (0, 0), 1.5 * w / W) * 255).astype(np.uint8)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("maskclip")
    (root / "plates").mkdir()
    (root / "mattes").mkdir()
    frames, _, _ = translating_sequence(N, H, W, dx=1.5, dy=0.5)
    for i, f in enumerate(frames):
        cv2.imwrite(str(root / "plates" / f"sh.{FIRST + i}.png"), _u8(f)[:, :, ::-1])
        cv2.imwrite(str(root / "mattes" / f"matte.{FIRST + i}.png"), _matte(i))
    painting = root / "painting.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(painting), cv2.resize((rng.random((12, 16, 3)) * 255).astype(np.uint8), (80, 60),
                                          interpolation=cv2.INTER_NEAREST))
    vgg = write_fake_vgg(root / "vgg.safetensors", metadata={"convention": "caffe"})
    return {"root": root, "plates": root / "plates" / "sh.%d.png", "mattes": root / "mattes" / "matte.%04d.png",
            "painting": painting, "vgg": vgg}


@pytest.fixture(scope="module")
def decoder(clip: dict[str, Path]) -> Path:
    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    torch.manual_seed(0)
    return save_decoder(clip["root"] / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(clip["vgg"]),
                        convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=clip["vgg"])))


def _backend_options(name: str, clip: dict[str, Path], decoder: Path) -> dict[str, object]:
    if name == "feedforward":
        return {"model": random_model(3)}
    if name == "multistyle":
        from vidstyle.nets.multistyle import ConditionalInstanceNorm2d, MultiStyleNet
        from vidstyle.nets.registry import StyleModel

        torch.manual_seed(1)
        net = MultiStyleNet(config="tiny", styles=("a", "b")).eval()
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, ConditionalInstanceNorm2d):
                    m.weight.normal_(1.0, 0.5)
                    m.bias.normal_(0.0, 0.5)
        return {"model": StyleModel(net=net, name="multi", architecture="multistyle"), "style_mix": "a:0.5,b:0.5"}
    if name == "arbitrary":
        return {"backend": "arbitrary", "style": str(clip["painting"]), "decoder": str(decoder),
                "vgg_weights": str(clip["vgg"]), "method": "adain"}
    return {"backend": "optim", "style": str(clip["painting"]), "vgg_weights": str(clip["vgg"]), "iterations": 2,
            "optimizer": "adam", "lr": 0.1,
            "warm_iterations": 1, "style_weight": 1e4}


def _run(clip: dict[str, Path], out: Path, **options: object) -> dict[int, np.ndarray]:
    from vidstyle.api import stylize_video
    from vidstyle.io import read_image

    stylize_video(clip["plates"], out / "o.%04d.png", device="cpu", threads=1, fps=24, flow="dis-fast", **options)
    return {FIRST + i: read_image(out / f"o.{FIRST + i:04d}.png") for i in range(N)}


@pytest.mark.parametrize("backend", ["feedforward", "multistyle", "arbitrary", "optim"])
def test_every_back_end_styles_only_inside_the_moving_matte_with_stabilisation(
    clip: dict[str, Path], decoder: Path, tmp_path: Path, backend: str, one_torch_thread: None
) -> None:
    from vidstyle.io import read_image

    opts = _backend_options(backend, clip, decoder)
    stabilize = 1.0 if backend == "optim" else 0.85
    plain = _run(clip, tmp_path / "plain", stabilize=stabilize, **opts)
    masked = _run(clip, tmp_path / "masked", stabilize=stabilize, mask=str(clip["mattes"]), **opts)
    for i in range(N):
        n = FIRST + i
        photo = read_image(clip["root"] / "plates" / f"sh.{n}.png").astype(np.float64)
        a = _matte(i).astype(np.float64) / 255
        got, styled = masked[n].astype(np.float64), plain[n].astype(np.float64)
        outside, inside, edge = a == 0, a == 1, (a > 0.1) & (a < 0.9)
        assert outside.sum() > 500 and inside.sum() > 200 and edge.sum() > 50
        assert np.abs(got - photo)[outside].max() <= 2, (backend, n)  # the input, after the (lossless) codec
        assert np.abs(styled - photo)[inside].mean() > 8, (backend, n)  # the back end does style the frame
        if backend == "optim":  # the matte went through the loss: styled inside, partly on the soft edge
            d = np.abs(got - photo).max(axis=2)
            assert d[inside].mean() > 8, n
            assert 2 < d[(a > 0.3) & (a < 0.7)].mean() < d[inside].mean(), n
            continue
        assert np.abs(got - styled)[inside].max() <= 1, (backend, n)  # inside: the stylised frame itself
        expect = a[:, :, None] * styled + (1 - a[:, :, None]) * photo  # frame n's matte, soft edge
        assert np.abs(got - expect).max() <= 1.5, (backend, n)
        # the edge is soft: halfway pixels are neither the photo nor the style
        mid = (a > 0.3) & (a < 0.7) & (np.abs(styled - photo).max(axis=2) > 20)
        assert mid.sum() > 5
        assert (np.abs(got - photo).max(axis=2)[mid] > 4).all() and (np.abs(got - styled).max(axis=2)[mid] > 4).all()


def test_the_stabiliser_inside_the_stylize_stage_gives_the_same_masked_frames(
    clip: dict[str, Path], tmp_path: Path, one_torch_thread: None
) -> None:
    """The stabiliser in its own stage (CPU default) or inside the network's stage: the compositing
    stage comes after either, with the same result."""
    from vidstyle.api import build_stages
    from vidstyle.flow.stage import FlowStage
    from vidstyle.io import open_source

    def frames(separate: bool) -> list[np.ndarray]:
        stages = build_stages(model=random_model(3), device="cpu", threads=1, stabilize=0.85,
                              mask=str(clip["mattes"]), separate_stabilizer=separate)
        assert isinstance(stages[0], FlowStage) and isinstance(stages[-1], MaskStage)
        out = []
        with open_source(clip["plates"]) as src:
            for f in src:
                got = [f]
                for s in stages:
                    got = [y for x in got for y in s.process(x)]
                out += [g.stylized for g in got]
        for s in stages:
            s.close()
        return out

    a, b = frames(True), frames(False)
    assert len(a) == len(b) == N
    for x, y in zip(a, b):
        assert np.abs(x.astype(int) - y).max() <= 1


def test_composite_formula_dtypes_and_exact_outside() -> None:
    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)):
        img = (rng.random((5, 7, 3)) * top).astype(dtype)
        sty = (rng.random((5, 7, 3)) * top).astype(dtype)
        a = rng.random((5, 7)).astype(np.float32)
        a[0] = 0.0
        a[1] = 1.0
        out = composite(sty, img, a)
        assert out.dtype == img.dtype
        ref = a[:, :, None] * sty.astype(np.float64) + (1 - a[:, :, None]) * img.astype(np.float64)
        assert np.abs(out.astype(np.float64) - ref).max() <= (0.5 if top > 1 else 1e-6)
        assert np.array_equal(out[0], img[0]) and np.array_equal(out[1], sty[1])
    with pytest.raises(ShapeError):
        composite(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4), np.float32))


def test_matte_alpha_grey_colour_luminance_and_alpha_channel() -> None:
    grey = np.array([[0, 128, 255]], np.uint8)
    assert np.allclose(matte_alpha(grey), [[0, 128 / 255, 1]])
    assert np.allclose(matte_alpha(np.array([[0, 65535]], np.uint16)), [[0, 1]])
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]]], np.uint8)
    assert np.allclose(matte_alpha(rgb), [[0.299, 0.587, 0.114, 200 / 255]], atol=1e-3)  # BT.601 luminance
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[..., 3] = [0, 255]  # black colour, alpha 0 and 1: the alpha is the matte
    assert np.allclose(matte_alpha(rgba), [[0, 1]])
    opaque = np.full((1, 1, 4), 255, np.uint8)
    opaque[..., :3] = 51  # opaque: the colour's luminance
    assert np.allclose(matte_alpha(opaque), [[0.2]])
    assert np.allclose(matte_alpha(np.array([[[-0.5, -0.5, -0.5], [2.0, 2.0, 2.0]]], np.float32)), [[0, 1]])


def test_matte_files_colour_is_luminance_in_rgb_order(tmp_path: Path) -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255  # BGR on disk: pure red
    cv2.imwrite(str(tmp_path / "red.png"), red)
    assert np.allclose(read_matte(tmp_path / "red.png"), 0.299, atol=2e-3)
    with pytest.raises(InputNotFoundError, match="does not exist"):
        read_matte(tmp_path / "nope.png")


def test_matte_sequence_follows_frame_numbers_and_names_the_first_missing(tmp_path: Path) -> None:
    for n in (1001, 1002, 1003):
        cv2.imwrite(str(tmp_path / f"m.{n}.png"), np.full((4, 6), (n - 1000) * 50, np.uint8))
    matte = Matte(str(tmp_path / "m.####.png"))
    assert matte.is_sequence
    assert np.allclose(matte.alpha(1002, (4, 6)), 100 / 255)
    matte.check_covers([1001, 1002, 1003])
    with pytest.raises(InvalidInputError, match=r"no matte for frame 1004: '.*m\.1004\.png' is missing; the sequence "
                                                r"has frames 1001-1003 \(the input has frames 1001-1005\)"):
        matte.check_covers(range(1001, 1006))
    with pytest.raises(InvalidInputError, match="no matte for frame 1009"):
        matte.alpha(1009, (4, 6))
    with pytest.raises(InputNotFoundError, match="no files match"):
        Matte(str(tmp_path / "other.%04d.png"))
    with pytest.raises(InputNotFoundError, match="folder"):
        Matte(str(tmp_path / "missing" / "m.%04d.png"))


def test_a_matte_of_another_size_is_resized_with_one_note(tmp_path: Path) -> None:
    big = _matte(0, h=2 * H, w=2 * W)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    matte = Matte(tmp_path / "big.png")
    stage = MaskStage(matte=matte)
    img = np.full((H, W, 3), 100, np.uint8)
    for i in range(2):
        f = Frame(index=i, image=img, stylized=np.full((H, W, 3), 200, np.uint8))
        out = stage.process(f)[0].stylized
    a = cv2.resize(big.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(np.float64) - (100 + 100 * a[:, :, None])).max() <= 1
    assert len(stage.warnings) == 1 and "is 128x96, the frames 64x48: resized" in stage.warnings[0]


def test_frames_without_a_stylized_picture_pass(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((4, 4), np.uint8))
    f = Frame(index=0, image=np.zeros((4, 4, 3), np.uint8))
    assert MaskStage(matte=Matte(tmp_path / "m.png")).process(f)[0].stylized is None


def test_live_mode_takes_one_matte_image_and_refuses_a_sequence(clip: dict[str, Path]) -> None:
    from vidstyle.api import build_live_mask
    from vidstyle.options import OptionValueError, StylizeOptions

    assert build_live_mask(StylizeOptions()) == []
    (stage,) = build_live_mask(StylizeOptions(mask=str(clip["root"] / "mattes" / "matte.1003.png")))
    assert isinstance(stage, MaskStage) and not stage.matte.is_sequence
    with pytest.raises(OptionValueError, match="live mode takes one matte image for `mask`, not the sequence"):
        build_live_mask(StylizeOptions(mask=str(clip["mattes"])))


def test_a_still_with_the_optim_back_end_is_held_outside_at_the_output_size(
    clip: dict[str, Path], tmp_path: Path, one_torch_thread: None
) -> None:
    from vidstyle.api import stylize_image
    from vidstyle.io import read_image

    photo = clip["root"] / "plates" / f"sh.{FIRST}.png"
    matte = clip["root"] / "mattes" / f"matte.{FIRST}.png"  # 64×48, the output 32×24: resized, with a note
    opts = {k: v for k, v in _backend_options("optim", clip, Path()).items() if k != "warm_iterations"}
    plain = stylize_image(photo, tmp_path / "plain.png", size=32, **opts)
    masked = stylize_image(photo, tmp_path / "masked.png", size=32, mask=str(matte), **opts)
    assert (masked.width, masked.height) == (32, 24) and plain.warnings == ()
    assert len(masked.warnings) == 1 and "resized to the frame size" in masked.warnings[0]
    small = cv2.resize(read_image(photo), (32, 24), interpolation=cv2.INTER_AREA).astype(np.float64)
    a = cv2.resize(_matte(0).astype(np.float32) / 255, (32, 24), interpolation=cv2.INTER_AREA)[:, :, None]
    got, styled = read_image(tmp_path / "masked.png").astype(np.float64), read_image(tmp_path / "plain.png")
    # the matte goes through the loss (tests/stylize/test_optim_mask.py); the composite at the output's size
    # keeps the outside exactly the (resized) photo
    assert np.abs(got - small)[a[:, :, 0] == 0].max() == 0
    assert np.abs(got - small)[a[:, :, 0] > 0.99].mean() > 8
    assert np.abs(styled - small)[a[:, :, 0] > 0.99].mean() > 8
