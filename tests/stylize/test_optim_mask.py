"""The optimisation back end's mask through the loss (issue 18): guided Gram style inside the matte, the
content held outside by the hold term ``(1/D) Σ h (x − c)²`` (``h = 1 − a`` on the soft edge, 100 where
``a = 0``), temporal losses weighted by the matte.

Formula tests compare with the objective written out by hand; the optimisation tests run real (small)
optimisations with a random VGG, for a still and for a clip whose matte moves.
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

from ff_helpers import translating_sequence  # noqa: E402
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.errors import ShapeError  # noqa: E402
from vidstyle.losses import HoldLoss, hold_loss  # noqa: E402
from vidstyle.stylize.optim import OptimConfig, StyleOptimizer, optimize_image  # noqa: E402

H, W = 48, 64


def _matte(i: int = 0) -> np.ndarray:
    """A soft rectangle moving 12 px per frame, float32 in [0, 1]."""
    a = np.zeros((H, W), np.float32)
    a[10:38, 8 + 12 * i : 32 + 12 * i] = 1.0
    return np.clip(cv2.GaussianBlur(a, (0, 0), 1.5), 0, 1)


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_vgg(tmp_path_factory.mktemp("vgg") / "vgg.safetensors", metadata={"convention": "caffe"})


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.resize(rng.random((12, 16, 3)).astype(np.float32), (80, 60), interpolation=cv2.INTER_NEAREST)


def test_hold_loss_is_its_formula_and_differentiable() -> None:
    rng = np.random.default_rng(1)
    x, c = rng.random((2, 3, 5, 4)), rng.random((2, 3, 5, 4))
    a = rng.random((5, 4))
    a[0, :2] = 0.0  # black: held 100 times as firmly as 1 − a says
    ref = 0.0
    for n in range(2):
        for ch in range(3):
            for i in range(5):
                for j in range(4):
                    h = 100.0 if a[i, j] == 0 else 1 - a[i, j]
                    ref += h * (x[n, ch, i, j] - c[n, ch, i, j]) ** 2
    ref /= 2 * 3 * 5 * 4
    xt, ct, at = (torch.from_numpy(v) for v in (x, c, a))
    assert float(hold_loss(xt, ct, at)) == pytest.approx(ref, rel=1e-12)
    assert float(HoldLoss(content=ct, matte=at)(xt)) == pytest.approx(ref, rel=1e-12)
    assert float(hold_loss(xt, ct, torch.ones(5, 4, dtype=torch.float64))) == 0.0  # white: nothing held
    xg = xt.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: hold_loss(v, ct, at), (xg,))
    with pytest.raises(ShapeError, match="does not fit the image"):
        hold_loss(xt, ct, torch.ones(4, 5))


def test_the_masked_style_target_is_the_guided_gram_of_the_matte(vgg: Path, painting: np.ndarray,
                                                                 one_torch_thread: None) -> None:
    """``Σ_l mean((G_l^a(x) − G_l(s))²)`` with ``G^a = Σ_x a_l² F Fᵀ / (C Σ a_l²)``, ``a_l`` the matte
    averaged over each layer's pixel blocks; two paintings share the matte with normalised weights."""
    opt = StyleOptimizer(styles=[painting, painting[::-1].copy()], style_mix=[1.0, 3.0],
                         config=OptimConfig(scales=1), vgg=str(vgg), device="cpu")
    a = _matte(1)
    m = torch.from_numpy(a)[None, None]
    loss = opt.style_target((H, W), mask=m)
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.random((1, 3, H, W)).astype(np.float32))
    with torch.no_grad():
        got = float(loss(opt.vgg(x)))
        feats = {k: v[0].double().numpy() for k, v in opt.vgg(x).items()}
        ref = 0.0
        for style, w in zip(opt.styles, (0.25, 0.75)):
            sf = opt.vgg(torch.nn.functional.interpolate(style, size=(48, 64), mode="bilinear", antialias=True))
            for layer in opt.style_layers:
                f = feats[layer]
                c, h, wd = f.shape
                al = a.astype(np.float64).reshape(h, H // h, wd, W // wd).mean(axis=(1, 3))  # block means
                g = np.einsum("ihw,jhw,hw->ij", f, f, al**2) / (c * (al**2).sum())
                s = sf[layer][0].double().numpy().reshape(c, -1)
                gs = s @ s.T / (c * s.shape[1])
                ref += w * ((g - gs) ** 2).mean()
    assert got == pytest.approx(ref, rel=1e-4)


def test_the_objective_adds_the_hold_term_and_masks_the_temporal_loss(vgg: Path, painting: np.ndarray,
                                                                        one_torch_thread: None) -> None:
    cfg = OptimConfig(scales=1, mask_weight=7.0, tv_weight=0.0)
    opt = StyleOptimizer(styles=[painting], config=cfg, vgg=str(vgg), device="cpu")
    rng = np.random.default_rng(3)
    content = torch.from_numpy(rng.random((1, 3, H, W)).astype(np.float32))
    x0 = torch.from_numpy(rng.random((1, 3, H, W)).astype(np.float32))
    warped = torch.from_numpy(rng.random((1, 3, H, W)).astype(np.float32))
    cons = torch.from_numpy((rng.random((1, 1, H, W)) > 0.3).astype(np.float32))
    a = torch.from_numpy(_matte(2))[None, None]
    seen: list[dict[str, float]] = []
    opt.optimize(content, init=x0, iterations=1, style=opt.style_target((H, W), mask=a), temporal=[(warped, cons)],
                 temporal_weight=3.0, mask=a, progress=lambda i, loss, terms: seen.append(terms))
    terms = seen[0]  # the first evaluation is at x0
    x, c, wp, av, cv = (t.double().numpy() for t in (x0, content, warped, a, cons))
    h = np.where(av > 0, 1 - av, 100.0)
    hold = 7.0 * (h * ((x - c) * 255) ** 2).mean()
    temporal = 3.0 * (cv * av * ((x - wp) * 255) ** 2).mean()
    assert terms["hold"] == pytest.approx(hold, rel=1e-4)
    assert terms["temporal"] == pytest.approx(temporal, rel=1e-4)
    with torch.no_grad():
        style = float(opt.style_target((H, W), mask=a)(opt.vgg(x0))) * cfg.style_weight
    assert terms["style"] == pytest.approx(style, rel=1e-4)
    assert terms["total"] == pytest.approx(terms["content"] + terms["style"] + hold + temporal, rel=1e-4)


def _run_still(vgg: Path, painting: np.ndarray, **weights: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames, _, _ = translating_sequence(1, H, W, dx=1.0)
    content, a = frames[0], _matte(0)
    cfg = OptimConfig(iterations=30, scales=1, style_weight=1e3, **weights)
    r = optimize_image(content, styles=[painting], config=cfg, vgg=str(vgg), device="cpu", mask=a)
    return r.image, content, a


def test_a_still_keeps_the_input_outside_the_matte_and_styles_inside(vgg: Path, painting: np.ndarray,
                                                                     one_torch_thread: None) -> None:
    out, content, a = _run_still(vgg, painting)  # the default mask_weight
    d = np.abs(out - content).max(axis=2) * 255
    assert d[a == 0].max() <= 1.5 and d[a == 0].mean() <= 0.1  # held within a level or so, without a composite
    assert d[a > 0.999].mean() > 20  # styled inside
    mid = (a > 0.3) & (a < 0.7)  # the soft edge: partly styled
    assert 0.1 * d[a > 0.999].mean() < d[mid].mean() < 0.9 * d[a > 0.999].mean()
    # without the hold term the style loss's receptive field reaches out of the matte
    free, _, _ = _run_still(vgg, painting, mask_weight=0.0)
    assert (np.abs(free - content).max(axis=2) * 255)[a == 0].max() > 10


def test_the_still_api_passes_the_matte_through_the_loss(vgg: Path, painting: np.ndarray, tmp_path: Path,
                                                         one_torch_thread: None) -> None:
    from vidstyle.api import stylize_image
    from vidstyle.io import read_image

    frames, _, _ = translating_sequence(1, H, W, dx=1.0)
    photo, paint, matte = tmp_path / "p.png", tmp_path / "s.png", tmp_path / "m.png"
    cv2.imwrite(str(photo), np.round(frames[0][:, :, ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(paint), np.round(painting[:, :, ::-1] * 255).astype(np.uint8))
    cv2.imwrite(str(matte), np.round(_matte(0) * 255).astype(np.uint8))
    opts = {"backend": "optim", "style": str(paint), "vgg_weights": str(vgg), "iterations": 30, "style_weight": 1e3,
            "device": "cpu", "threads": 1}
    plain = read_image(stylize_image(photo, tmp_path / "plain.png", **opts)).astype(float)
    masked = read_image(stylize_image(photo, tmp_path / "masked.png", mask=str(matte), **opts)).astype(float)
    a = np.round(_matte(0) * 255) / 255
    inside = a == 1
    # the matte's region is optimised on its own statistics: not the unmasked picture cut out
    assert np.abs(masked - plain)[inside].mean() > 3
    d = np.abs(masked - read_image(photo).astype(float)).max(axis=2)
    assert d[a == 0].max() == 0 and d[inside].mean() > 20  # the input exactly outside (the final composite)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, painting: np.ndarray) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("optimmask")
    (root / "plates").mkdir()
    (root / "mattes").mkdir()
    frames, _, _ = translating_sequence(5, H, W, dx=1.5, dy=0.5)
    for i, f in enumerate(frames):
        cv2.imwrite(str(root / "plates" / f"sh.{1001 + i}.png"), np.round(f[:, :, ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "mattes" / f"matte.{1001 + i}.png"), np.round(_matte(i) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "painting.png"), np.round(painting[:, :, ::-1] * 255).astype(np.uint8))
    return {"plates": root / "plates" / "sh.%d.png", "mattes": root / "mattes" / "matte.%04d.png",
            "painting": root / "painting.png"}


@pytest.mark.parametrize("passes", [1, 2])
def test_video_keeps_the_input_outside_the_moving_matte_with_stabilisation(
    clip: dict[str, Path], vgg: Path, passes: int, one_torch_thread: None
) -> None:
    """The optim stage itself (before the final composite): outside each frame's own matte the frame is
    held to its input, also where the matte was the frame before (no style dragged along by the warm
    start or the temporal loss); inside it is styled."""
    from vidstyle.api import build_stages
    from vidstyle.io import open_source
    from vidstyle.stylize.mask import MaskStage
    from vidstyle.stylize.optim import OptimStage

    stages = build_stages(backend="optim", style=str(clip["painting"]), vgg_weights=str(vgg), iterations=30,
                          warm_iterations=15, style_weight=1e3, stabilize=1.0, mask=str(clip["mattes"]),
                          passes=passes, device="cpu", threads=1)
    assert isinstance(stages[-1], MaskStage) and isinstance(stages[-2], OptimStage)
    assert stages[-2].matte is stages[-1].matte
    outs, inputs = [], []
    with open_source(clip["plates"]) as src:
        for f in src:
            inputs.append(f.image.astype(np.float64))
            got = [f]
            for s in stages[:-1]:
                got = [y for x in got for y in s.process(x)]
            outs += got
    for s in stages[:-1]:
        outs += s.finish()
        s.close()
    assert len(outs) == 5
    for i, f in enumerate(outs):
        a, d = np.round(_matte(i) * 255) / 255, np.abs(f.stylized.astype(np.float64) - inputs[i]).max(axis=2)
        assert d[a == 0].max() <= 4, i
        assert d[a > 0.999].mean() > 20, i
        if i:
            left = (_matte(i - 1) > 0.999) & (a == 0)  # the matte was here one frame ago, now it is not
            assert left.sum() >= 50 and d[left].max() <= 4, i


def test_with_regions_each_region_matte_is_multiplied_by_the_mask(vgg: Path, painting: np.ndarray,
                                                                  one_torch_thread: None) -> None:
    from vidstyle.losses import GuidedStyleLoss

    left = np.zeros((H, W), np.float32)
    left[:, : W // 2] = 1.0
    opt = StyleOptimizer(styles=[painting, painting[::-1].copy()], style_mix=[1.0, 2.0], style_mattes=[left, 1 - left],
                         config=OptimConfig(scales=1), vgg=str(vgg), device="cpu")
    a = torch.from_numpy(_matte(1))[None, None]
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.random((1, 3, H, W)).astype(np.float32))
    with torch.no_grad():
        feats = opt.vgg(x)
        got = float(opt.style_target((H, W), mask=a)(feats))
        regions = [torch.from_numpy(m)[None, None] for m in (left, 1 - left)]
        ref = GuidedStyleLoss(style_features=opt._features_for((H, W), color_ref=None, key=None),
                              mattes=[r * a for r in regions], region_weights=[1.0, 2.0],
                              layer_weights=opt.layer_weights)(feats)
        unmasked = float(opt.style_target((H, W))(feats))
    assert got == pytest.approx(float(ref), rel=1e-5)
    assert abs(got - unmasked) > 1e-3 * abs(unmasked)  # the mask does change the regions' statistics
