"""Optimization back end (vidstyle.stylize.optim): images (Gatys et al.) and video (Ruder et al.).

Everything runs on a small random VGG-like network (no real weights needed) and tiny images; the
one real-data check skips when ../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidstyle.cli.common import error_line
from vidstyle.errors import InvalidOptionError, WeightsUnavailableError
from vidstyle.flow.consistency import consistency_mask
from vidstyle.frame import Frame
from vidstyle.losses import gram_matrix
from vidstyle.metrics import WarpReference, sharpness, warping_error
from vidstyle.nets.vgg import VGGState
from vidstyle.stylize.optim import (
    OptimConfig,
    OptimStage,
    StyleOptimizer,
    default_layers,
    match_color,
    optimize_image,
    optimize_sequence,
    preserve_luminance,
    rgb_to_yuv,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # tests/stylize/ → repo → ../shared
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions are fastest on one thread (and a busy machine makes more threads spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_state(seed: int = 0, widths=(8, 8, 16, 16, 24, 24, 24, 24), names=_NAMES) -> VGGState:
    """A VGG19-shaped prefix with random (He-initialised) weights and narrow layers."""
    g = torch.Generator().manual_seed(seed)
    convs, cin = {}, 3
    for name, c in zip(names, widths):
        convs[name] = (torch.randn(c, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5, torch.zeros(c))
        cin = c
    return VGGState(convs=convs, convention="caffe", source="random")


STATE = random_state()


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A colourful smooth-noise-plus-stripes picture in [0, 1] (float32 H×W×3)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.random((max(2, h // 4), max(2, w // 4), 3)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    img = img * 0.6 + 0.4 * (0.5 + 0.5 * np.sin(xx[..., None] * 0.7 + yy[..., None] * 0.3 + np.array([0, 1, 2])))
    return np.clip(img, 0, 1).astype(np.float32)


CONTENT = texture(40, 48, 1)
STYLE = texture(48, 48, 7)[..., ::-1].copy()


# ------------------------------------------------------------------------------------------- images


def test_default_layers_follow_the_weights():
    from vidstyle.nets.vgg import VGG19_LAYERS

    full = [n for n in VGG19_LAYERS]
    assert default_layers(full) == ("relu4_2", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    prefix = full[: full.index("relu3_4") + 1]
    assert default_layers(prefix) == ("relu3_2", ("relu1_1", "relu2_1", "relu3_1", "relu3_4"))
    short = full[: full.index("relu2_2") + 1]
    assert default_layers(short) == ("relu2_2", ("relu1_1", "relu2_1", "relu2_2"))
    opt = StyleOptimizer(styles=[STYLE], vgg=random_state(names=_NAMES[:4], widths=(4, 4, 8, 8)), device="cpu")
    assert opt.content_layer == "relu2_2"
    with pytest.raises(InvalidOptionError, match="deeper than the loaded"):
        StyleOptimizer(styles=[STYLE], vgg=STATE, config=OptimConfig(content_layer="relu4_2"), device="cpu")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimizer_reduces_the_loss(device, optimizer):
    cfg = OptimConfig(iterations=25, optimizer=optimizer, init="noise", scales=1)
    seen = []
    r = optimize_image(CONTENT, styles=[STYLE], config=cfg, vgg=STATE, device=device,
                       progress=lambda p: seen.append(p.loss))
    assert r.iterations == 25 and len(seen) == 25
    assert r.image.shape == CONTENT.shape and r.image.dtype == np.float32
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0
    # monotone enough: the loss falls to a fraction of its start, and the second half stays below the first
    assert r.losses["total"] < 0.35 * seen[0]
    assert max(seen[13:]) < max(seen[:12])
    best = np.minimum.accumulate(seen)
    assert (np.diff(best) < 0).mean() > 0.5  # a new best on most iterations
    assert set(r.losses) >= {"total", "content", "style", "tv"}
    assert r.losses["total"] == pytest.approx(sum(v for k, v in r.losses.items() if k != "total"), rel=1e-5)


def test_deterministic_for_a_seed():
    cfg = OptimConfig(iterations=6, init="noise", seed=3, scales=1)
    a = optimize_image(CONTENT, styles=[STYLE], config=cfg, vgg=STATE, device="cpu").image
    b = optimize_image(CONTENT, styles=[STYLE], config=cfg, vgg=STATE, device="cpu").image
    c = optimize_image(CONTENT, styles=[STYLE], config=OptimConfig(iterations=6, init="noise", seed=4, scales=1),
                       vgg=STATE, device="cpu").image
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05


def test_init_from_content_noise_and_image():
    opt = StyleOptimizer(styles=[STYLE], vgg=STATE, config=OptimConfig(iterations=1, scales=1), device="cpu")
    c = torch.from_numpy(CONTENT).permute(2, 0, 1)[None]
    torch.testing.assert_close(opt.initial(c, "content"), c)
    noise = opt.initial(c, "noise")
    assert noise.shape == c.shape and 0.2 < noise.std().item() < 0.4
    given = texture(20, 24, 5)  # resized to the content
    r = optimize_image(CONTENT, styles=(), optimizer=opt, init_image=given)
    # one function evaluation: the result is the starting image itself
    import cv2

    expected = cv2.resize(given, (48, 40), interpolation=cv2.INTER_LINEAR)
    assert np.abs(r.image - expected).mean() < 0.03
    assert np.abs(r.image - CONTENT).mean() > 0.1


def _chroma_error(out: np.ndarray, content: np.ndarray) -> float:
    yuv = lambda a: rgb_to_yuv(torch.from_numpy(a).permute(2, 0, 1)[None])[0, 1:]
    return float((yuv(out) - yuv(content)).abs().mean())


def test_color_preservation_keeps_the_content_chroma():
    # a reddish content and a blue style: plain transfer drifts the chroma towards the style's
    content = np.clip(CONTENT * np.array([1.0, 0.55, 0.35], np.float32) + np.array([0.1, 0, 0], np.float32), 0, 1)
    style = np.clip(STYLE * np.array([0.3, 0.5, 1.0], np.float32), 0, 1)
    results = {}
    for mode in (None, "luminance", "histogram"):
        cfg = OptimConfig(iterations=20, preserve_color=mode, scales=1, style_weight=100.0)
        results[mode] = optimize_image(content, styles=[style], config=cfg, vgg=STATE, device="cpu").image
    plain = _chroma_error(results[None], content)
    lum = _chroma_error(results["luminance"], content)
    hist = _chroma_error(results["histogram"], content)
    assert plain > 0.02  # the style did change the colours
    assert lum < 0.004  # only clipping can move the chroma
    assert hist < 0.6 * plain
    # and the luminance did change: it is still a style transfer
    y = lambda a: rgb_to_yuv(torch.from_numpy(a).permute(2, 0, 1)[None])[0, 0]
    assert float((y(results["luminance"]) - y(content)).abs().mean()) > 0.005


def test_color_helpers():
    c = torch.from_numpy(CONTENT).permute(2, 0, 1)[None]
    s = torch.from_numpy(STYLE).permute(2, 0, 1)[None]
    out = preserve_luminance(s[..., :40, :48], c)
    yuv_o, yuv_c, yuv_s = rgb_to_yuv(out), rgb_to_yuv(c), rgb_to_yuv(s[..., :40, :48])
    inside = ((out > 0.001) & (out < 0.999)).all(1, keepdim=True).expand(-1, 2, -1, -1)
    torch.testing.assert_close(yuv_o[:, 1:][inside], yuv_c[:, 1:][inside], atol=1e-5, rtol=0)
    torch.testing.assert_close(yuv_o[:, :1][inside[:, :1]], yuv_s[:, :1][inside[:, :1]], atol=1e-5, rtol=0)
    # histogram (linear colour) matching: the recoloured style has the content's mean and covariance
    m = match_color(s * 0.5 + 0.2, c)
    p, q = m[0].reshape(3, -1).double(), c[0].reshape(3, -1).double()
    torch.testing.assert_close(p.mean(1), q.mean(1), atol=5e-3, rtol=0)
    torch.testing.assert_close(torch.cov(p), torch.cov(q), atol=2e-3, rtol=0)


def test_style_scale_resizes_the_style_image():
    style = texture(64, 96, 3)
    for scale in (0.5, 1.0):
        opt = StyleOptimizer(styles=[style], vgg=STATE, config=OptimConfig(style_scale=scale), device="cpu")
        target = opt.style_target((40, 48), key=None).targets()
        # long side of the style = scale × the output's long side (48)
        import torch.nn.functional as F

        s = torch.from_numpy(style).permute(2, 0, 1)[None]
        h, w = round(64 * 48 * scale / 96), round(48 * scale)
        ref = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        feats = opt.vgg(ref)
        for layer in opt.style_layers:
            torch.testing.assert_close(target[layer], gram_matrix(feats[layer]))
    a = StyleOptimizer(styles=[style], vgg=STATE, config=OptimConfig(style_scale=0.5), device="cpu").style_target((40, 48))
    b = StyleOptimizer(styles=[style], vgg=STATE, config=OptimConfig(style_scale=2.0), device="cpu").style_target((40, 48))
    assert not torch.allclose(a.targets()["relu1_1"], b.targets()["relu1_1"], rtol=0.05)


def test_several_styles_blend_with_weights():
    other = texture(48, 48, 11)
    one = StyleOptimizer(styles=[STYLE], vgg=STATE, device="cpu").style_target((40, 48)).targets()
    two = StyleOptimizer(styles=[other], vgg=STATE, device="cpu").style_target((40, 48)).targets()
    mix = StyleOptimizer(styles=[STYLE, other], style_mix=[0.7, 0.3], vgg=STATE, device="cpu").style_target((40, 48)).targets()
    for layer in one:
        torch.testing.assert_close(mix[layer], 0.7 * one[layer] + 0.3 * two[layer])
    only = StyleOptimizer(styles=[STYLE, other], style_mix=[1.0, 0.0], vgg=STATE, device="cpu").style_target((40, 48)).targets()
    for layer in one:
        torch.testing.assert_close(only[layer], one[layer])
    with pytest.raises(InvalidOptionError):
        StyleOptimizer(styles=[STYLE, other], style_mix=[1.0], vgg=STATE, device="cpu")


def test_coarse_to_fine_levels():
    opt = StyleOptimizer(styles=[STYLE], vgg=STATE, device="cpu")
    assert opt.levels_for((300, 700)) == [(150, 350), (300, 700)]
    assert opt.levels_for((200, 250)) == [(200, 250)]
    opt3 = StyleOptimizer(styles=[STYLE], vgg=STATE, config=OptimConfig(scales=3, iterations=3), device="cpu")
    assert opt3.levels_for((40, 48)) == [(10, 12), (20, 24), (40, 48)]
    seen = []
    r = optimize_image(CONTENT, styles=(), optimizer=opt3, progress=lambda p: seen.append((p.level, p.levels, p.iteration)))
    assert [s[0] for s in seen] == [0, 0, 0, 1, 1, 1, 2, 2, 2] and {s[1] for s in seen} == {3}
    assert r.iterations == 9 and r.image.shape == CONTENT.shape


def test_invalid_options_fail_early():
    for bad in ({"iterations": 0}, {"optimizer": "sgd"}, {"preserve_color": "yuv"}, {"style_scale": 0.0},
                {"init": "zeros"}, {"scales": 0}, {"style_weight": -1.0}, {"content_weight": 0.0, "style_weight": 0.0}):
        with pytest.raises(InvalidOptionError):
            OptimConfig(**bad).validate()
    with pytest.raises(InvalidOptionError):
        StyleOptimizer(styles=[], vgg=STATE, device="cpu")
    with pytest.raises(InvalidOptionError, match="stabilize"):
        OptimStage(optimizer=StyleOptimizer(styles=[STYLE], vgg=STATE, device="cpu"), stabilize=1.5)
    with pytest.raises(InvalidOptionError, match="lags"):
        OptimStage(optimizer=StyleOptimizer(styles=[STYLE], vgg=STATE, device="cpu"), long_term=(2, 4))
    with pytest.raises(InvalidOptionError, match="fill"):
        OptimStage(optimizer=StyleOptimizer(styles=[STYLE], vgg=STATE, device="cpu"), fill="noise")


def test_offline_without_weights_is_one_clear_error(monkeypatch):
    import torchvision.models

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "vgg19", offline)
    monkeypatch.delenv("VIDSTYLE_VGG_WEIGHTS", raising=False)
    with pytest.raises(WeightsUnavailableError, match="`vgg_weights`") as info:
        StyleOptimizer(styles=[STYLE], vgg=None, device="cpu")
    assert "--vgg-weights" in error_line(info.value)


# -------------------------------------------------------------------------------------------- video


def translating_sequence(frames: int = 4, size: int = 48, shift: int = 2, seed: int = 1):
    """A textured photo sliding left by ``shift`` px per frame, with its exact flows and masks."""
    canvas = texture(size, size + shift * frames, seed)
    images = [np.ascontiguousarray(canvas[:, t * shift : t * shift + size]) for t in range(frames)]
    bwd = np.zeros((2, size, size), np.float32)
    bwd[0] = shift  # frame t → t−1: I_t(x) = I_{t−1}(x + shift)
    fwd = -bwd  # frame t−1 → t
    ref = WarpReference(lag=1, flows=[fwd] * (frames - 1), masks=[consistency_mask(bwd, fwd)] * (frames - 1),
                        size=(size, size))
    return images, [(fwd, bwd)] * (frames - 1), ref


@pytest.mark.parametrize("init, fill", [("content", "content"), ("noise", "content"), ("content", "warped")])
def test_video_mode_is_temporally_consistent_without_losing_texture(init, fill):
    images, flows, ref = translating_sequence()
    cfg = OptimConfig(iterations=16, init=init, scales=1)
    opt = StyleOptimizer(styles=[STYLE], config=cfg, vgg=STATE, device="cpu")
    per_frame = optimize_sequence(images, optimizer=opt, stabilize=0.0, flows=flows, flow=None)
    video = optimize_sequence(images, optimizer=opt, stabilize=1.0, flows=flows, flow=None, fill=fill)
    e_pf = warping_error(per_frame, reference=ref).mean
    e_v = warping_error(video, reference=ref).mean
    s_pf = np.mean([sharpness(f) for f in per_frame])
    s_v = np.mean([sharpness(f) for f in video])
    assert e_pf > 1e-4  # independent optimisation does flicker
    assert e_v <= 0.3 * e_pf
    assert s_v >= 0.9 * s_pf


def test_stage_warm_starts_long_term_lags_and_scene_cuts():
    images, flows, _ = translating_sequence(frames=6, size=32)
    cons = consistency_mask(flows[0][0], flows[0][1])
    seen = []
    opt = StyleOptimizer(styles=[STYLE], config=OptimConfig(iterations=8, scales=1), vgg=STATE, device="cpu")
    stage = OptimStage(optimizer=opt, warm_iterations=3, long_term=(1, 2, 4), flow="dis-fast",
                       progress=lambda p: seen.append((p.frame, p.iteration, p.warm)))
    out = []
    for t, img in enumerate(images):
        u8 = (img * 255 + 0.5).astype(np.uint8)
        f = Frame(index=t, image=u8)
        if t > 0:
            f.flow_bwd, f.flow_fwd, f.consistency = flows[0][1], flows[0][0], cons
        f.scene_cut = t == 5
        out += stage.process(f)
    out += stage.finish()
    stage.close()
    assert [f.index for f in out] == list(range(6))
    assert all(f.stylized is not None and f.stylized.dtype == np.uint8 and f.stylized.shape == (32, 32, 3) for f in out)
    stats = stage.stats
    assert [s["warm"] for s in stats] == [False, True, True, True, True, False]  # frame 5 follows a cut
    assert [s["lags"] for s in stats] == [0, 1, 2, 2, 3, 0]  # J = {1, 2, 4} as far back as there are frames
    assert [s["iterations"] for s in stats][1:5] == [3, 3, 3, 3]
    assert {(fr, it) for fr, it, warm in seen if warm} >= {(1, 3), (4, 3)}
    assert (0, 8, False) in seen


def test_stage_per_frame_when_stabilize_is_zero_and_resizes():
    images, flows, _ = translating_sequence(frames=2, size=40)
    opt = StyleOptimizer(styles=[STYLE], config=OptimConfig(iterations=4, scales=1), vgg=STATE, device="cpu")
    stage = OptimStage(optimizer=opt, stabilize=0.0, size=24)
    frames = [Frame(index=i, image=(img * 65535).astype(np.uint16)) for i, img in enumerate(images)]
    frames[1].flow_bwd, frames[1].flow_fwd = flows[0][1], flows[0][0]
    frames[1].consistency = consistency_mask(flows[0][0], flows[0][1])
    out = [g for f in frames for g in stage.process(f)]
    assert [s["warm"] for s in stage.stats] == [False, False]
    assert all(f.stylized.shape == (40, 40, 3) and f.stylized.dtype == np.uint16 for f in out)


def test_multipass_holds_frames_and_does_not_flicker_more():
    images, flows, ref = translating_sequence(frames=4, size=40)
    opt = StyleOptimizer(styles=[STYLE], config=OptimConfig(iterations=10, init="noise", scales=1), vgg=STATE,
                         device="cpu")
    passes_seen = set()
    stage = OptimStage(optimizer=opt, passes=3, warm_iterations=4, long_term=(1,), flow=None,
                       progress=lambda p: passes_seen.add((p.pass_index, p.frame)))
    held = []
    for t, img in enumerate(images):
        f = Frame(index=10 + t, image=img.copy())
        if t:
            f.flow_fwd, f.flow_bwd = flows[0]
        held += stage.process(f)
    assert held == []  # multi-pass waits for the whole shot
    out = stage.finish()
    assert [f.index for f in out] == [10, 11, 12, 13]
    assert {p for p, _ in passes_seen} == {0, 1, 2}
    assert (1, 13) not in passes_seen and (1, 12) in passes_seen  # backward pass starts at the last frame
    multi = [f.stylized for f in out]
    single = optimize_sequence(images, optimizer=opt, warm_iterations=4, long_term=(1,), flows=flows, flow=None)
    per_frame = optimize_sequence(images, optimizer=opt, stabilize=0.0, flows=flows, flow=None)
    e_multi = warping_error(multi, reference=ref).mean
    e_single = warping_error(single, reference=ref).mean
    e_pf = warping_error(per_frame, reference=ref).mean
    assert e_multi <= 0.3 * e_pf and e_single <= 0.3 * e_pf
    assert np.mean([sharpness(f) for f in multi]) >= 0.9 * np.mean([sharpness(f) for f in per_frame])


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is absent")
def test_real_weights_stylize_a_real_photo():
    import cv2

    weights = SHARED / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"
    from vidstyle.io.imagefiles import read_image as load_image

    content = cv2.resize(load_image(SHARED / "data" / "video" / "sintel_raft_demo" / "frame_0016.png"), (64, 28),
                         interpolation=cv2.INTER_AREA)
    style = load_image(SHARED / "data" / "styles" / "vangogh_starry_night.jpg")
    seen = []
    r = optimize_image(content, styles=[style], config=OptimConfig(iterations=12, scales=1), vgg=str(weights),
                       device="cpu", progress=lambda p: seen.append(p.losses))
    assert r.losses["style"] < 0.2 * seen[0]["style"]
    assert r.image.shape == (28, 64, 3)


def test_warm_start_keeps_subpixel_motion_sharp():
    """A half-pixel shift: the bicubic warm start keeps the texture; a bilinear one would blur it."""
    from vidstyle.flow.warping import warp
    from vidstyle.stylize.optim_video import _warp_sharp

    img = torch.from_numpy(texture(32, 32, 4)).permute(2, 0, 1)[None]
    img = img + 0.3 * (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) - 0.5)  # fine strokes
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, 0] = 0.5
    as_np = lambda t: t[0].permute(1, 2, 0).clamp(0, 1).numpy()  # noqa: E731
    s0 = sharpness(as_np(img))
    cubic, linear = sharpness(as_np(_warp_sharp(img, flow))), sharpness(as_np(warp(img, flow)))
    assert linear < 0.7 * s0  # bilinear at half a pixel averages neighbours: a low-pass filter
    assert cubic > 1.15 * linear and cubic > 0.72 * s0


def test_optimize_returns_a_frozen_level_result():
    """StyleOptimizer.optimize returns a LevelResult with named fields, not a tuple."""
    import dataclasses

    from vidstyle.stylize.optim_engine import LevelResult

    opt = StyleOptimizer(styles=[STYLE], config=OptimConfig(iterations=4, scales=1), vgg=STATE, device="cpu")
    content = torch.from_numpy(CONTENT).permute(2, 0, 1)[None].contiguous()
    seen = []
    r = opt.optimize(content, init=opt.initial(content), iterations=4, style=opt.style_target((40, 48)),
                     progress=lambda i, loss, terms: seen.append(loss))
    assert isinstance(r, LevelResult)
    assert r.image.shape == (1, 3, 40, 48)
    assert r.iterations == len(seen) == len(r.history) and 1 <= r.iterations <= 4
    assert r.losses["total"] == pytest.approx(min(seen))
    assert set(r.losses) >= {"total", "content", "style", "tv"}
    assert r.stopped_early is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.iterations = 0  # type: ignore[misc]
