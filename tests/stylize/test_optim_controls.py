"""Style losses, per-region styles and semantic maps in the optimisation back end (issue 18), on a
small random VGG-shaped network and tiny pictures (no weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.frame import Frame
from vidstyle.losses import STYLE_LOSSES, make_style_loss
from vidstyle.options import OptimOptions, StylizeOptions
from vidstyle.options.groups import parse_styles
from vidstyle.stylize.guides import map_labels, matte_of
from vidstyle.stylize.optim import OptimConfig, OptimStage, StyleOptimizer, optimize_image

from test_optim import STATE, texture  # noqa: E402 - the shared random network and pictures


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    yield


def flat_texture(h: int, w: int, colour: tuple[float, float, float], seed: int) -> np.ndarray:
    """Stripes and noise around one colour."""
    t = texture(h, w, seed)
    return np.clip(0.35 * t + 0.65 * np.array(colour, np.float32), 0, 1).astype(np.float32)


RED = flat_texture(32, 32, (0.9, 0.15, 0.1), 3)
BLUE = flat_texture(32, 32, (0.1, 0.2, 0.9), 4)
GREY = np.full((24, 32, 3), 0.5, np.float32) + 0.05 * texture(24, 32, 5) - 0.025


@pytest.mark.parametrize("kind", STYLE_LOSSES)
def test_every_style_loss_drives_the_optimisation(kind):
    """Each loss falls during the optimisation, and its own value at the result is well below its value
    at the content picture. (MRF on relu1_1 and relu2_1 here: on this random network the colour is not
    recoverable from relu3_1 patches, for the Gram loss either.)"""
    default = StyleOptimizer(styles=[RED], config=OptimConfig(style_loss=kind), vgg=STATE, device="cpu")
    if kind == "mrf":
        assert default.style_layers == ("relu2_1", "relu3_1")  # Li & Wand's layers on the conv1–3 prefix
    else:
        assert default.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu3_4")
    layers = ("relu1_1", "relu2_1") if kind == "mrf" else None
    cfg = OptimConfig(iterations=20, scales=1, style_loss=kind, style_weight=100.0, style_layers=layers)
    opt = StyleOptimizer(styles=[RED], config=cfg, vgg=STATE, device="cpu")
    seen = []
    r = optimize_image(GREY, styles=(), optimizer=opt, progress=lambda p: seen.append(p.losses["style"]))
    loss = opt.style_target(GREY.shape[:2])
    with torch.no_grad():
        before = float(loss(opt.vgg(torch.from_numpy(GREY).permute(2, 0, 1)[None])))
        after = float(loss(opt.vgg(torch.from_numpy(r.image).permute(2, 0, 1)[None])))
    assert after < 0.5 * before, (kind, before, after)
    assert min(seen[10:]) < 0.6 * seen[0]
    # the output took the painting's colour: redder than the grey start
    assert r.image[..., 0].mean() - r.image[..., 2].mean() > 0.1


def test_mmd_poly_optimises_exactly_like_gram():
    a = optimize_image(GREY, styles=[RED], config=OptimConfig(iterations=5, scales=1), vgg=STATE, device="cpu")
    b = optimize_image(GREY, styles=[RED], config=OptimConfig(iterations=5, scales=1, style_loss="mmd-poly"),
                       vgg=STATE, device="cpu")
    np.testing.assert_allclose(a.image, b.image, atol=2e-4)


def test_video_mode_takes_the_style_loss():
    frames = [Frame(index=i, image=(np.roll(GREY, 2 * i, axis=1) * 255).astype(np.uint8)) for i in range(2)]
    outs = {}
    for kind in ("gram", "bn"):
        stage = OptimStage(optimizer=StyleOptimizer(styles=[RED], vgg=STATE, device="cpu",
                                                    config=OptimConfig(iterations=6, scales=1, style_loss=kind)),
                           stabilize=0.0, flow=None)
        outs[kind] = [f.stylized for fr in frames for f in stage.process(Frame(index=fr.index, image=fr.image))]
        stage.close()
        assert len(outs[kind]) == 2 and outs[kind][0].shape == GREY.shape
    assert np.abs(outs["gram"][0].astype(float) - outs["bn"][0].astype(float)).mean() > 1.0


def test_two_regions_take_their_own_styles():
    left = np.zeros(GREY.shape[:2], np.float32)
    left[:, :16] = 1.0
    cfg = OptimConfig(iterations=30, scales=1, style_weight=100.0)
    r = optimize_image(GREY, styles=[RED, BLUE], config=cfg, vgg=STATE, device="cpu",
                       optimizer=StyleOptimizer(styles=[RED, BLUE], style_mattes=[left, 1 - left], config=cfg,
                                                vgg=STATE, device="cpu"))
    red_left = r.image[:, 2:14, 0].mean() - r.image[:, 2:14, 2].mean()
    red_right = r.image[:, 18:30, 0].mean() - r.image[:, 18:30, 2].mean()
    assert red_left > 0.1 and red_right < -0.1, (red_left, red_right)
    # with no mattes the two paintings blend: both halves end up alike
    blend = optimize_image(GREY, styles=[RED, BLUE], config=cfg, vgg=STATE, device="cpu").image
    a = blend[:, 2:14, 0].mean() - blend[:, 2:14, 2].mean()
    b = blend[:, 18:30, 0].mean() - blend[:, 18:30, 2].mean()
    assert abs(a - b) < 0.5 * (red_left - red_right)


def test_semantic_maps_lay_out_the_paintings_texture():
    """The painting is red on top, blue below; its map says so. The content map asks for the top
    label on the left and the bottom one on the right: the output is red left, blue right."""
    painting = np.concatenate([RED[:16], BLUE[:16]], axis=0)
    smap = np.zeros((32, 32, 3), np.uint8)
    smap[:16] = (255, 255, 0)
    smap[16:] = (0, 128, 255)
    cmap = np.zeros((24, 32, 3), np.uint8)
    cmap[:, :16] = (255, 255, 0)
    cmap[:, 16:] = (0, 128, 255)
    style_masks, content_mask, colours = map_labels([smap], cmap)
    assert len(colours) == 2 and content_mask.shape == (2, 24, 32)
    cfg = OptimConfig(iterations=30, scales=1, style_loss="mrf", style_weight=100.0, map_weight=3.0,
                      style_layers=("relu1_1", "relu2_1"))
    opt = StyleOptimizer(styles=[painting], style_maps=style_masks, content_map=content_mask, config=cfg, vgg=STATE,
                         device="cpu")
    r = optimize_image(GREY, styles=(), optimizer=opt)
    red_left = r.image[:, 2:14, 0].mean() - r.image[:, 2:14, 2].mean()
    red_right = r.image[:, 18:30, 0].mean() - r.image[:, 18:30, 2].mean()
    assert red_left > 0.1 and red_right < -0.1, (red_left, red_right)


def test_map_labels_tolerate_noise_and_refuse_unknown_colours():
    rng = np.random.default_rng(0)
    smap = np.zeros((20, 20, 3), np.uint8)
    smap[:, 10:] = (200, 30, 30)
    noisy = np.clip(smap.astype(int) + rng.integers(-6, 7, smap.shape), 0, 255).astype(np.uint8)  # JPEG-like
    masks, cmask, colours = map_labels([noisy], smap[:, ::-1].copy())
    assert len(colours) == 2
    assert cmask.sum(0).min() == 1.0  # one label per pixel
    np.testing.assert_array_equal(cmask[:, :, ::-1], masks[0])
    alien = smap.copy()
    alien[:5] = (0, 255, 0)
    with pytest.raises(InvalidInputError, match="#00ff00.*same colours"):
        map_labels([smap], alien)


def test_matte_of_uses_luminance_and_resizes():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, 10:] = (255, 255, 255)
    rgb[:, :5] = (255, 0, 0)
    m = matte_of(rgb)
    assert m.shape == (10, 20) and m.dtype == np.float32
    assert m[0, 15] == pytest.approx(1.0) and m[0, 7] == 0.0 and m[0, 2] == pytest.approx(0.299, abs=2e-3)
    assert matte_of(rgb, (5, 10)).shape == (5, 10)


def test_style_option_parses_mattes_and_keeps_weights():
    assert parse_styles("a.jpg:0.3", "style")[0] == parse_styles(["a.jpg:0.3"], "style")[0]
    s = parse_styles(["a.jpg@left.png:0.3", "b.jpg@right.png"], "style")
    assert [(x.path, x.weight, x.matte) for x in s] == [("a.jpg", 0.3, "left.png"), ("b.jpg", 1.0, "right.png")]
    assert parse_styles("a.jpg", "style")[0].matte is None
    # the weight before the matte reads the same
    assert parse_styles("a.jpg:0.3@left.png", "style")[0] == s[0]
    with pytest.raises(InvalidOptionError, match="every style image a region matte"):
        StylizeOptions(backend="optim", style=["a.jpg@m.png", "b.jpg"])
    with pytest.raises(InvalidOptionError, match="optim and arbitrary back ends"):
        StylizeOptions(backend="feedforward", style=["a.jpg@m.png"])
    assert StylizeOptions(backend="optim", style=["a.jpg@m.png"]).style[0].matte == "m.png"
    # the arbitrary back end lets unmatted paintings fill what no matte covers
    assert [x.matte for x in StylizeOptions(backend="arbitrary", style=["a.jpg@m.png", "b.jpg"]).style] == ["m.png", None]


def test_optim_options_resolve_the_style_loss_and_check_maps():
    assert OptimOptions().style_loss == "gram"
    assert OptimOptions(style_map="s.png", content_map="c.png").style_loss == "mrf"
    assert OptimOptions(style_loss="bn").config().style_loss == "bn"
    with pytest.raises(InvalidOptionError, match="content_map"):
        OptimOptions(style_map="s.png")
    with pytest.raises(InvalidOptionError, match="mrf"):
        OptimOptions(style_map="s.png", content_map="c.png", style_loss="gram")
    with pytest.raises(InvalidOptionError, match="style_loss must be one of"):
        OptimOptions(style_loss="l2")
    with pytest.raises(InvalidOptionError, match="Gram loss"):
        StyleOptimizer(styles=[RED], style_mattes=[np.ones((4, 4))], config=OptimConfig(style_loss="bn"), vgg=STATE,
                       device="cpu")
    with pytest.raises(InvalidOptionError, match="one each"):
        StyleOptimizer(styles=[RED, BLUE], style_mattes=[np.ones((4, 4))], vgg=STATE, device="cpu")
    assert make_style_loss  # re-exported for the engine


def test_render_jobs_take_the_style_loss_and_region_mattes(tmp_path):
    from vidstyle.render.job import job_from_mapping

    job = job_from_mapping({"input": "in.mp4", "output": "out.mov", "backend": "optim", "style_loss": "mmd-gaussian",
                            "style": ["a.jpg@mattes/a.png:0.5", "b.jpg@mattes/b.png"]}, base=tmp_path)
    assert job.optim.style_loss == "mmd-gaussian"
    assert [(s.path, s.weight, s.matte) for s in job.stylize.style] == [
        (str(tmp_path / "a.jpg"), 0.5, str(tmp_path / "mattes/a.png")),
        (str(tmp_path / "b.jpg"), 1.0, str(tmp_path / "mattes/b.png"))]
