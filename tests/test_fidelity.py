"""Style fidelity (vidstyle.fidelity) against hand computations, on a small random VGG (offline)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.errors import InputNotFoundError, ShapeError  # noqa: E402
from vidstyle.fidelity import (  # noqa: E402
    FIDELITY_LAYERS,
    StyleReference,
    StyleScores,
    fidelity_vgg,
    gram_targets,
    mean_scores,
    style_fidelity,
    to_grey,
    to_tensor,
)
from vidstyle.options.spec import OptionValueError  # noqa: E402


def _image(h, w, seed, grey=False):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 0.3), (3.0, 0.5)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    img = np.clip(img / (4 * img.std()) + 0.5, 0, 1)
    if grey:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    return (img * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    path = write_fake_vgg(tmp_path_factory.mktemp("vgg") / "vgg.safetensors", n_convs=7, metadata={"convention": "caffe"})
    return fidelity_vgg(path)


def _gram(f):  # by hand: F·Fᵀ / (C·H·W)
    n, c, h, w = f.shape
    m = f.reshape(c, h * w).double()
    return m @ m.T / (c * h * w)


def test_style_loss_is_the_sum_of_squared_frobenius_norms(vgg):
    out, photo, painting = _image(40, 48, 1), _image(40, 48, 2), _image(56, 36, 3)
    with torch.no_grad():
        fp = vgg(to_tensor(painting))
        fo = vgg(to_tensor(out))
        fph = vgg(to_tensor(photo))
    grams = gram_targets(fp)
    s = style_fidelity(out, photo, grams, vgg=vgg)
    by_hand = sum(float(((_gram(fo[l]) - _gram(fp[l])) ** 2).sum()) for l in FIDELITY_LAYERS)
    photo_hand = sum(float(((_gram(fph[l]) - _gram(fp[l])) ** 2).sum()) for l in FIDELITY_LAYERS)
    assert s.style_loss == pytest.approx(by_hand, rel=1e-4)
    assert s.photo_style_loss == pytest.approx(photo_hand, rel=1e-4)
    assert s.style_ratio == pytest.approx(by_hand / photo_hand, rel=1e-4)
    assert math.isnan(s.texture_ratio)  # no grey Grams given
    content = np.mean([float(((fo[l] - fph[l]) ** 2).mean() / (fph[l] ** 2).mean()) for l in ("relu2_2", "relu3_3")])
    assert s.content_loss == pytest.approx(content, rel=1e-4)


def test_not_the_mean_of_entries(vgg):
    # relu3_3 has 256 channels, relu1_2 64: the sum form weighs relu3_3 (256/64)² = 16× more than the mean form
    out, painting = _image(32, 32, 4), _image(32, 32, 5)
    with torch.no_grad():
        fo, fp = vgg(to_tensor(out)), vgg(to_tensor(painting))
    grams = gram_targets(fp)
    total = style_fidelity(out, out, grams, vgg=vgg).style_loss
    per_layer = {l: float(((_gram(fo[l]) - _gram(fp[l])) ** 2).sum()) for l in FIDELITY_LAYERS}
    mean_form = {l: per_layer[l] / fo[l].shape[1] ** 2 for l in FIDELITY_LAYERS}
    assert total == pytest.approx(sum(per_layer.values()), rel=1e-4)
    assert total != pytest.approx(sum(mean_form.values()), rel=1e-2)
    # relu3_3 alone, through one-layer Grams: exactly C² times its mean-of-entries value
    only = {"relu3_3": grams["relu3_3"]}
    from vidstyle.fidelity import style_distance
    from vidstyle.losses import style_loss

    assert style_distance(fo, only) == pytest.approx(256**2 * float(style_loss(fo, only, reduction="mean")), rel=1e-4)


def test_photo_against_itself(vgg):
    photo, painting = _image(36, 44, 6), _image(50, 50, 7)
    ref = StyleReference(painting, vgg=vgg)
    s = ref(photo, photo)
    assert isinstance(s, StyleScores)
    assert s.style_ratio == pytest.approx(1.0) and s.texture_ratio == pytest.approx(1.0)
    assert s.content_loss == pytest.approx(0.0, abs=1e-9)
    assert s.style_loss == pytest.approx(s.photo_style_loss)


def test_grey_image_and_grey_painting(vgg):
    photo, out, painting = _image(36, 44, 8, grey=True), _image(36, 44, 9, grey=True), _image(48, 40, 10, grey=True)
    s = StyleReference(painting, vgg=vgg)(out, photo)
    assert s.texture_ratio == pytest.approx(s.style_ratio, rel=1e-3)
    assert s.style_ratio != pytest.approx(1.0, rel=1e-3)


def test_reference_matches_function_and_painting_size(vgg, tmp_path):
    painting = _image(300, 600, 11)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), painting[..., ::-1])
    ref = StyleReference(path, vgg=vgg)
    assert ref.painting_size == (256, 512)
    small = StyleReference(path, vgg=vgg, size=64)
    assert small.painting_size == (32, 64)
    out, photo = _image(32, 40, 12), _image(32, 40, 13)
    a = ref(out, photo)
    b = style_fidelity(out, photo, ref.grams, vgg=vgg, grey_grams=ref.grey_grams)
    assert a == b
    # uint16, float and tensor inputs give the same scores as uint8
    c = ref(out.astype(np.uint16) * 257, photo.astype(np.float32) / 255)
    assert c.style_loss == pytest.approx(a.style_loss, rel=1e-4)
    d = ref(torch.from_numpy(out).permute(2, 0, 1).float() / 255, photo)
    assert d.style_ratio == pytest.approx(a.style_ratio, rel=1e-4)


def test_errors(vgg, tmp_path):
    ref = StyleReference(_image(32, 32, 14), vgg=vgg)
    with pytest.raises(ShapeError, match="40×32"):
        ref(_image(32, 40, 1), _image(32, 32, 2))
    with pytest.raises(ShapeError, match="H×W×3"):
        ref(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(InputNotFoundError, match="painting"):
        StyleReference(tmp_path / "nope.jpg", vgg=vgg)
    with pytest.raises(OptionValueError) as e:
        StyleReference(_image(32, 32, 14), vgg=vgg, size=4)
    assert e.value.parameter == "size"
    with pytest.raises(InputNotFoundError) as e2:
        StyleReference(_image(32, 32, 14), vgg_weights=tmp_path / "none.safetensors")
    assert getattr(e2.value, "parameter", None) == "vgg_weights"


def test_helpers(vgg):
    x = to_tensor(_image(8, 8, 1))
    g = to_grey(x)
    assert g.shape == x.shape and torch.equal(g[:, 0], g[:, 2])
    m = mean_scores([StyleScores(1, 2, 0.5, 0.7, 0.1), StyleScores(3, 2, 1.5, 0.9, 0.3)])
    assert m == StyleScores(2.0, 2.0, 1.0, 0.8, pytest.approx(0.2))
    assert math.isnan(mean_scores([]).style_ratio)
