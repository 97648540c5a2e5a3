"""vidstyle.colour: the one home of the BT.601 luma and the colour maths (numpy and torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidstyle.colour import (
    LUMA_WEIGHTS,
    luma,
    luma_torch,
    luminance_image,
    match_color,
    preserve_luminance,
    rgb_to_yuv,
)
from vidstyle.errors import ShapeError


def test_luma_weights_are_bt601():
    assert LUMA_WEIGHTS == (0.299, 0.587, 0.114)
    assert sum(LUMA_WEIGHTS) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [((255, 0, 0), 0.299), ((0, 255, 0), 0.587), ((0, 0, 255), 0.114), ((255, 255, 255), 1.0),
     ((200, 100, 50), (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255)],
)
def test_luma_of_known_pixels_uint8_uint16_float(rgb, expected):
    px8 = np.array([[rgb]], dtype=np.uint8)
    assert luma(px8).shape == (1, 1) and luma(px8).dtype == np.float32
    assert luma(px8)[0, 0] == pytest.approx(expected, abs=1e-6)
    assert luma(px8.astype(np.uint16) * 257)[0, 0] == pytest.approx(expected, abs=1e-6)
    assert luma(px8.astype(np.float32) / 255)[0, 0] == pytest.approx(expected, abs=1e-6)
    t = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255
    assert luma_torch(t).shape == (1, 1, 1, 1)
    assert float(luma_torch(t)) == pytest.approx(expected, abs=1e-6)


def test_luma_numpy_and_torch_agree_with_the_formula():
    rng = np.random.default_rng(0)
    img = rng.random((17, 23, 3), dtype=np.float32)
    ref = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    np.testing.assert_allclose(luma(img), ref, atol=1e-6)
    got = luma_torch(torch.from_numpy(img).permute(2, 0, 1)[None])[0, 0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_luma_of_grey_is_the_grey_and_bad_shapes_fail():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_allclose(luma(grey), grey / 255.0, atol=1e-7)
    np.testing.assert_allclose(luma(grey[..., None]), grey / 255.0, atol=1e-7)
    with pytest.raises(ShapeError, match="H×W×3"):
        luma(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ShapeError, match="N×3×H×W"):
        luma_torch(torch.zeros(1, 4, 2, 2))


def test_luma_torch_is_differentiable():
    x = torch.rand(2, 3, 5, 6, requires_grad=True)
    luma_torch(x).sum().backward()
    assert x.grad is not None
    for c, w in enumerate(LUMA_WEIGHTS):
        torch.testing.assert_close(x.grad[:, c], torch.full((2, 5, 6), w))


def test_yuv_of_known_pixels():
    # pure red: Y = 0.299, U = 0.492 (0 − 0.299), V = 0.877 (1 − 0.299)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    y, u, v = rgb_to_yuv(red).flatten().tolist()
    assert y == pytest.approx(0.299, abs=1e-6)
    assert u == pytest.approx(0.492 * -0.299, abs=1e-6)
    assert v == pytest.approx(0.877 * 0.701, abs=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.4)
    torch.testing.assert_close(rgb_to_yuv(grey)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6, rtol=0)


def test_preserve_luminance_and_luminance_image():
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 8, 8, generator=g) * 0.2 + 0.4
    stylized = torch.rand(1, 3, 8, 8, generator=g) * 0.2 + 0.4
    out = preserve_luminance(stylized, content)
    # the stylized luminance, the content's chroma (no clipping in this range)
    torch.testing.assert_close(luma_torch(out), luma_torch(stylized), atol=1e-6, rtol=0)
    torch.testing.assert_close(out - luma_torch(out), content - luma_torch(content), atol=1e-6, rtol=0)
    li = luminance_image(content)
    assert li.shape == (1, 3, 8, 8)
    torch.testing.assert_close(li[:, 0], luma_torch(content)[:, 0])
    torch.testing.assert_close(li[:, 2], luma_torch(content)[:, 0])


def test_match_color_copies_mean_and_covariance():
    g = torch.Generator().manual_seed(2)
    style = torch.rand(1, 3, 16, 16, generator=g) * 0.3 + 0.1
    content = torch.rand(1, 3, 16, 16, generator=g) * 0.2 + torch.tensor([0.6, 0.4, 0.3]).view(1, 3, 1, 1)
    out = match_color(style, content)
    p, c = out[0].reshape(3, -1).double(), content[0].reshape(3, -1).double()
    torch.testing.assert_close(p.mean(1), c.mean(1), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(p), torch.cov(c), atol=1e-4, rtol=0)
