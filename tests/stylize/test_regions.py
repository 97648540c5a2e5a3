"""Per-region styles of the arbitrary back end, the ``PATH[:W]@MATTE`` syntax, and stroke size and direction
(``style_scale`` for feed-forward networks, ``style_rotate``), against their formulas (issue 18)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "nets"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ff_helpers import random_model  # noqa: E402
from nets_helpers import write_vgg_and_decoder  # noqa: E402

from vidstyle.errors import InputNotFoundError  # noqa: E402
from vidstyle.options import OptionValueError, StyleImage, StylizeOptions  # noqa: E402
from vidstyle.options.groups import parse_styles  # noqa: E402
from vidstyle.stylize import transforms as T  # noqa: E402
from vidstyle.stylize.style_image import inscribed_size, rotate_image  # noqa: E402


# ------------------------------------------------------------------------------------------ syntax
def test_style_syntax_path_weight_and_matte(tmp_path: Path) -> None:
    assert parse_styles("a.jpg@m.png", "style") == (StyleImage("a.jpg", 1.0, "m.png"),)
    assert parse_styles("a.jpg:0.3@mattes/m.png", "style") == (StyleImage("a.jpg", 0.3, "mattes/m.png"),)
    assert parse_styles(["a.jpg:0.3", "b.jpg"], "style") == (StyleImage("a.jpg", 0.3), StyleImage("b.jpg"))
    odd = tmp_path / "me@home.jpg"  # an existing file with '@' in its name stays whole
    odd.write_bytes(b"x")
    assert parse_styles(str(odd), "style") == (StyleImage(str(odd)),)
    for item in ("a.jpg:0.3@m.png", "a.jpg@m.png", "a.jpg:2"):
        (style,) = parse_styles(item, "style")
        assert str(style) == item and parse_styles(str(style), "style") == (style,)
    with pytest.raises(OptionValueError, match="the matte after '@'"):
        parse_styles("a.jpg@ ", "style")


def test_job_files_resolve_style_mattes_next_to_the_file(tmp_path: Path) -> None:
    from vidstyle.render.job import job_from_mapping

    job = job_from_mapping({"input": "in.%04d.png", "output": "out/o.%04d.png", "backend": "arbitrary",
                            "style": ["a.jpg:0.5@m/a.png", "b.jpg"]}, base=tmp_path)
    assert job.stylize.style == (StyleImage(str(tmp_path / "a.jpg"), 0.5, str(tmp_path / "m" / "a.png")),
                                 StyleImage(str(tmp_path / "b.jpg")))


def test_back_ends_without_regions_or_rotation_say_so(tmp_path: Path) -> None:
    from vidstyle.api import build_stages

    with pytest.raises(OptionValueError, match="style_rotate turns the painting"):
        StylizeOptions(style_rotate=30)
    with pytest.raises(OptionValueError, match=r"per-region styles \(STYLE@MATTE\) work with the optim and arbitrary"):
        build_stages(backend="feedforward", style="a.jpg@m.png", device="cpu", stabilize=0)


# ------------------------------------------------------------------------------------------ formulas
def _feats(seed: int, n: int = 1, c: int = 4, h: int = 6, w: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2 + 1


def test_masked_adain_and_wct_use_the_statistics_inside_the_mask() -> None:
    content, style = _feats(0, n=2), _feats(1, h=5, w=7)
    mask = torch.zeros(1, 1, 6, 8, dtype=torch.float64)
    mask[..., 1:5, 2:7] = 1.0
    inside = mask[0, 0].bool()
    for method, masked, plain in (("adain", T.masked_adain, T.adain), ("wct", T.masked_wct, T.wct)):
        stats = T.prepare_style(style, method=method)
        got = masked(content, stats, mask)
        pixels = content[:, :, inside][:, :, None, :]  # N×C×1×K: the region's pixels alone
        ref = plain(pixels, stats)
        torch.testing.assert_close(got[:, :, inside][:, :, None, :], ref)
        torch.testing.assert_close(masked(content, stats, torch.ones_like(mask)), plain(content, stats))


def test_masked_adain_soft_weights_formula() -> None:
    content, style = _feats(2), _feats(3)
    m = torch.rand(1, 1, 6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    stats = T.prepare_style(style, method="adain")
    x = content[0].reshape(4, -1)
    wts = m.reshape(-1)
    mu = (x * wts).sum(1) / wts.sum()
    sd = (((x - mu[:, None]) ** 2 * wts).sum(1) / wts.sum() + 1e-5).sqrt()
    ref = (x - mu[:, None]) / sd[:, None] * stats.std[:, None] + stats.mean[:, None]
    torch.testing.assert_close(T.masked_adain(content, stats, m)[0].reshape(4, -1), ref)


def test_region_weights_share_overlaps_and_leave_the_rest() -> None:
    a = torch.zeros(4, 4)
    a[:, :3] = 1.0
    b = torch.zeros(4, 4)
    b[:, 2:] = 1.0
    (wa, wb), rest = T.region_weights([a, b], (4, 4))
    assert torch.allclose(wa[0, 0, 0], torch.tensor([1, 1, 0.5, 0])) and torch.allclose(wb[0, 0, 0], torch.tensor([0, 0, 0.5, 1]))
    assert torch.all(rest == 0)
    (wa,), rest = T.region_weights([a], (2, 2))  # area-resized to the features
    assert torch.allclose(wa[0, 0], torch.tensor([[1.0, 0.5], [1.0, 0.5]])) and torch.allclose(rest + wa, torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize("method", ["adain", "wct", "swap"])
def test_regional_transform_is_each_regions_transform_inside_it(method: str) -> None:
    content, s1, s2 = _feats(4), _feats(5), _feats(6)
    left = torch.zeros(6, 8, dtype=torch.float64)
    left[:, :3] = 1.0
    right = torch.zeros(6, 8, dtype=torch.float64)
    right[:, 5:] = 1.0  # columns 3-4: no matte
    st1, st2 = T.prepare_style(s1, method=method), T.prepare_style(s2, method=method)
    out = T.regional_transform(content, T.StyleRegions(method=method, regions=((st1, left), (st2, right))))
    for st, m in ((st1, left), (st2, right)):
        ref = (T.masked_adain(content, st, m[None, None]) if method == "adain" else
               T.masked_wct(content, st, m[None, None]) if method == "wct" else T.style_swap(content, st))
        keep = m.bool()
        torch.testing.assert_close(out[:, :, keep], ref[:, :, keep])
    torch.testing.assert_close(out[..., 3:5], content[..., 3:5])  # no style there: the content features
    rest = T.prepare_style(s2, method=method)
    out2 = T.regional_transform(content, T.StyleRegions(method=method, regions=((st1, left),), rest=rest))
    ref2 = T.masked_adain(content, rest, 1 - left[None, None]) if method == "adain" else (
        T.masked_wct(content, rest, 1 - left[None, None]) if method == "wct" else T.style_swap(content, rest))
    torch.testing.assert_close(out2[..., 3:], ref2[..., 3:])
    half = T.regional_transform(content, T.StyleRegions(method=method, regions=((st1, left),)), strength=0.5)
    torch.testing.assert_close(half, 0.5 * T.regional_transform(content, T.StyleRegions(method=method, regions=((st1, left),)))
                               + 0.5 * content)


# ------------------------------------------------------------------------------------------ the back end
@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("regions")
    vgg, dec = write_vgg_and_decoder(d)
    rng = np.random.default_rng(0)
    for name in ("p1", "p2"):
        cv2.imwrite(str(d / f"{name}.png"), (rng.random((60, 80, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(d / "white.png"), np.full((30, 40), 255, np.uint8))
    left = np.zeros((48, 64), np.uint8)
    left[:, :32] = 255
    cv2.imwrite(str(d / "left.png"), left)
    return {"d": d, "vgg": vgg, "dec": dec}


def _model(parts: dict[str, Path], styles: list[str], method: str = "adain") -> object:
    from vidstyle.options.groups import parse_styles
    from vidstyle.stylize.arbitrary import build_arbitrary_model

    return build_arbitrary_model(styles=parse_styles(styles, "style"), method=method, decoder=str(parts["dec"]),
                                 vgg_weights=str(parts["vgg"]))


def _picture(parts: dict[str, Path], styles: list[str], image: np.ndarray, **kw: object) -> np.ndarray:
    from vidstyle.api import build_stages
    from vidstyle.frame import Frame

    stages = build_stages(backend="arbitrary", style=styles, decoder=str(parts["dec"]), vgg_weights=str(parts["vgg"]),
                          device="cpu", threads=1, stabilize=0, **kw)
    out = stages[0].process(Frame(index=0, image=image))[0].stylized
    stages[0].close()
    return out


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_the_back_end_runs_the_regional_transform_of_each_styles_statistics(parts: dict[str, Path], method: str,
                                                                             one_torch_thread: None) -> None:
    """Styles with a matte become regions (statistics of that painting alone), the one without fills the
    rest; the network is decoder(regional_transform(encoder(x))); a region covering the frame is the
    plain style."""
    d = parts["d"]
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    p1, p2 = _model(parts, [str(d / "p1.png")], method), _model(parts, [str(d / "p2.png")], method)
    two = _model(parts, [f"{d / 'p1.png'}@{d / 'left.png'}", str(d / "p2.png")], method)
    regions = two.net.statistics
    assert isinstance(regions, T.StyleRegions) and len(regions.regions) == 1
    (st, matte), rest = regions.regions[0], regions.rest
    for a, b in ((st, p1.net.statistics), (rest, p2.net.statistics)):
        torch.testing.assert_close(a.mean, b.mean)
    assert torch.equal(matte, torch.from_numpy((cv2.imread(str(d / "left.png"), 0) / 255.0).astype(np.float32)))
    with torch.no_grad():
        feats = two.net.encoder(x)
        ref = two.net.decoder(T.regional_transform(feats, regions).to(feats.dtype), size=(48, 64))
        torch.testing.assert_close(two.net(x), ref)
        whole = _model(parts, [f"{d / 'p1.png'}@{d / 'white.png'}"], method)
        plain = (T.adain if method == "adain" else T.wct)(feats, p1.net.statistics)
        torch.testing.assert_close(T.regional_transform(feats, whole.net.statistics), plain, rtol=1e-4, atol=1e-4)


def test_weights_blend_the_paintings_that_share_a_region(parts: dict[str, Path], one_torch_thread: None) -> None:
    d = parts["d"]
    p1, p2 = _model(parts, [str(d / "p1.png")]), _model(parts, [str(d / "p2.png")])
    model = _model(parts, [f"{d / 'p1.png'}@{d / 'left.png'}", f"{d / 'p2.png'}:2", f"{d / 'p1.png'}:1"])
    rest = model.net.statistics.rest
    torch.testing.assert_close(rest.mean, 2 / 3 * p2.net.statistics.mean + 1 / 3 * p1.net.statistics.mean)
    image = (np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)
    out = _picture(parts, [f"{d / 'p1.png'}@{d / 'left.png'}", f"{d / 'p2.png'}:2"], image, method="wct")
    assert out.shape == image.shape and out.dtype == np.uint8  # through the stage


def test_a_missing_style_matte_is_one_error_naming_style(parts: dict[str, Path]) -> None:
    with pytest.raises(InputNotFoundError, match=r"^style: matte '.*nope.png' does not exist; check the `style` path"):
        _picture(parts, [f"{parts['d'] / 'p1.png'}@{parts['d'] / 'nope.png'}"], np.zeros((48, 64, 3), np.uint8))


# ------------------------------------------------------------------------------------------ scale and rotation
def test_feed_forward_style_scale_runs_the_network_at_a_scaled_size(one_torch_thread: None) -> None:
    from vidstyle.stylize.feedforward import FeedForwardStage, image_to_tensor, tensor_to_image

    model = random_model(2)
    image = (np.random.default_rng(2).random((40, 56, 3)) * 255).astype(np.uint8)
    for scale, size in ((2.0, (20, 28)), (0.5, (80, 112))):
        stage = FeedForwardStage(model=model, device="cpu", stabilize=0.0, style_scale=scale)
        got = stage.stylize_image(image)
        x = image_to_tensor(image)[None]
        x = F.interpolate(x, size=size, mode="area") if scale > 1 else \
            F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
        with torch.no_grad():
            y = stage.stylizer(x)
        ref = tensor_to_image(F.interpolate(y, size=(40, 56), mode="bicubic", align_corners=False).clamp(0, 1)[0],
                              np.uint8)
        assert got.shape == image.shape and np.abs(got.astype(int) - ref).max() <= 1, scale
    plain = FeedForwardStage(model=model, device="cpu", stabilize=0.0).stylize_image(image)
    assert np.abs(plain.astype(int) - got).mean() > 5  # a different stroke size is a different picture


def test_inscribed_rectangle_formula() -> None:
    assert inscribed_size(100, 60, 0) == (100, 60) and inscribed_size(100, 60, 90) == (60, 100)
    w, h = inscribed_size(100, 100, 45)
    assert abs(w - 100 / math.sqrt(2)) <= 1 and abs(h - 100 / math.sqrt(2)) <= 1
    for deg in (10, 30, 60, 135, -20):  # the four corners of the rectangle lie inside the turned picture
        w, h = inscribed_size(120, 70, deg)
        a = math.radians(deg)
        for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            x, y = sx * w / 2, sy * h / 2
            u, v = x * math.cos(a) + y * math.sin(a), -x * math.sin(a) + y * math.cos(a)  # back to the picture
            assert abs(u) <= 60 + 1e-6 and abs(v) <= 35 + 1e-6, deg


def _stroke_angle(img: np.ndarray) -> float:
    """Dominant stroke direction (degrees, counter-clockwise from horizontal, image y down) from the
    structure tensor: strokes run across the dominant gradient."""
    g = img.astype(np.float64)
    gx, gy = cv2.Sobel(g, cv2.CV_64F, 1, 0), cv2.Sobel(g, cv2.CV_64F, 0, 1)
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    grad = 0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy))  # gradient direction, y down
    return (-(grad + 90.0)) % 180.0  # strokes, counter-clockwise with y up


def test_rotate_image_turns_the_strokes_and_leaves_no_empty_corner() -> None:
    yy = np.mgrid[0:120, 0:160][0]
    stripes = (127 + 120 * np.sin(yy / 3.0)).astype(np.uint8)[:, :, None].repeat(3, axis=2)  # horizontal strokes
    assert abs(_stroke_angle(stripes[:, :, 0]) % 180) < 1
    assert np.array_equal(rotate_image(stripes, 90), np.rot90(stripes))
    for deg in (30, 60, -45):
        out = rotate_image(stripes, deg)
        assert out.shape[:2] == inscribed_size(160, 120, deg)[::-1]
        diff = (_stroke_angle(out[:, :, 0]) - deg % 180 + 90) % 180 - 90
        assert abs(diff) < 3, (deg, _stroke_angle(out[:, :, 0]))
    flat = np.full((50, 70, 3), 200, np.uint8)
    assert np.all(rotate_image(flat, 17) == 200)  # no border colour comes in
    marker = np.zeros((101, 101, 3), np.uint8)
    marker[45:56, 80:95] = 255  # on the right: a counter-clockwise turn takes it to the top, either code path
    for deg in (80, 90):
        ys, xs = np.nonzero(rotate_image(marker, deg)[:, :, 0] > 128)
        assert ys.mean() < 20 and 35 < xs.mean() < 60, deg


def test_optim_back_end_gets_the_turned_paintings(tmp_path: Path) -> None:
    from vidstyle.api import _optim_styles

    painting = (np.random.default_rng(4).random((30, 50, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), painting[:, :, ::-1])
    assert _optim_styles(StylizeOptions(backend="optim", style=str(tmp_path / "p.png"))) == [str(tmp_path / "p.png")]
    (turned,) = _optim_styles(StylizeOptions(backend="optim", style=str(tmp_path / "p.png"), style_rotate=-90))
    assert np.array_equal(turned, np.rot90(painting, k=-1))
