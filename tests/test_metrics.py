"""Metrics: temporal warping error (Lai et al. 2018) and sharpness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidstyle.errors import InvalidInputError, InvalidOptionError
from vidstyle.metrics import WarpReference, sharpness, warp_reference, warping_error


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.5, 0.3), (4.0, 0.5), (10.0, 0.6)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    return (np.clip(img / (4 * img.std()) + 0.5, 0, 1) * 255 + 0.5).astype(np.uint8)


def _panning_video(n=5, h=72, w=96, step=2):
    big = _texture(h, w + n * step, seed=7)
    return [np.ascontiguousarray(big[:, i * step : i * step + w]) for i in range(n)]


def test_hand_computed_value_zero_flow():
    o0 = np.zeros((2, 3, 3), np.float32)
    o1 = np.zeros((2, 3, 3), np.float32)
    o1[..., 0] = 0.5
    ref = WarpReference(
        lag=1,
        flows=[np.zeros((2, 2, 3), np.float32)] * 2,
        masks=[np.array([[1, 1, 0], [1, 0, 0]], np.float32), np.ones((2, 3), np.float32)],
        size=(2, 3),
    )
    r = warping_error([o0, o1, o1], reference=ref)
    # pair 0: 3 consistent pixels, each ‖(0.5, 0, 0)‖² = 0.25 → 0.25; pair 1: identical → 0
    np.testing.assert_allclose(r.per_frame, [0.25, 0.0])
    assert r.mean == pytest.approx(0.125)
    np.testing.assert_allclose(r.consistent_fraction, [0.5, 1.0])


def test_hand_computed_value_with_motion():
    row = np.array([0.0, 0.2, 0.6], np.float32)
    o0 = np.repeat(np.tile(row, (2, 1))[..., None], 3, axis=2)  # grey, 2×3
    o1 = np.empty_like(o0)
    o1[:, 1:] = o0[:, :-1]  # content moved one pixel right: O_0(x) = O_1(x + 1)
    o1[:, 0] = 0.9
    flow = np.zeros((2, 2, 3), np.float32)
    flow[0] = 1.0
    full = WarpReference(lag=1, flows=[flow], masks=[np.ones((2, 3), np.float32)], size=(2, 3))
    # warp(O_1)(x) = O_1(x + 1) = O_0(x) except the last column (border: O_1(2) = 0.2 vs 0.6):
    # 2 pixels × 3 channels × 0.4² = 0.96 over 6 pixels
    assert warping_error([o0, o1], reference=full).mean == pytest.approx(0.16, abs=1e-6)
    masked = np.ones((2, 3), np.float32)
    masked[:, 2] = 0  # what the consistency mask says: that column leaves the picture
    ref = WarpReference(lag=1, flows=[flow], masks=[masked], size=(2, 3))
    assert warping_error([o0, o1], reference=ref).mean == pytest.approx(0.0, abs=1e-12)


def test_identical_frames_give_zero():
    frame = _texture(64, 80)
    video = [frame] * 4
    r = warping_error(video, inputs=video)
    assert r.mean == 0.0 and r.per_frame.shape == (3,)
    assert np.all(r.consistent_fraction > 0.99)
    other = [_texture(64, 80, seed=3)] * 4  # a frozen stylization of a static input: also 0
    assert warping_error(other, inputs=video).mean == 0.0


def test_rises_monotonically_with_flicker():
    video = _panning_video()
    ref = warp_reference(video, lag=1, estimator="dis-medium")
    rng = np.random.default_rng(0)
    offsets = rng.choice([-1.0, 1.0], size=len(video))  # per-frame brightness flicker
    noise = [rng.standard_normal(video[0].shape).astype(np.float32) for _ in video]  # texture flicker
    values = []
    for amp in (0.0, 0.01, 0.03, 0.06, 0.1):
        flick = [
            np.clip(f / 255.0 + amp * (o + 0.5 * n), 0, 1).astype(np.float32) for f, o, n in zip(video, offsets, noise)
        ]
        values.append(warping_error(flick, reference=ref).mean)
    assert values[0] < 0.002  # the video itself: only interpolation residue
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[-1] > 20 * values[0]


def test_stylized_with_motion_matches_inputs():
    video = _panning_video()
    r = warping_error(video, inputs=video, estimator="dis-fast")
    assert 0 <= r.mean < 0.002 and np.all(r.consistent_fraction > 0.9)


def test_long_term_lag():
    video = _panning_video(n=6)
    r = warping_error(video, inputs=video, lag=3)
    assert r.lag == 3 and r.per_frame.shape == (3,) and r.mean < 0.005


def test_errors():
    video = _panning_video(n=3)
    with pytest.raises(InvalidInputError):
        warping_error(video[:2], inputs=video)
    with pytest.raises(InvalidInputError):
        warping_error([f[:-2] for f in video], inputs=video)
    with pytest.raises(InvalidOptionError):
        warping_error(video, inputs=video, lag=0)
    with pytest.raises(InvalidInputError):
        warping_error(video, inputs=video, lag=3)
    with pytest.raises(InvalidOptionError):
        warping_error(video)
    with pytest.raises(InvalidInputError):
        warping_error([f[..., 0] for f in video], inputs=video)


def test_sharpness_reference():
    assert sharpness(np.full((10, 12, 3), 77, np.uint8)) == 0.0
    # 1-px checkerboard of 0/1: every interior pixel has |Laplacian| = 4
    board = (np.indices((16, 16)).sum(0) % 2).astype(np.float32)
    rgb = np.repeat(board[..., None], 3, axis=2)
    padded = np.pad(board, 1, mode="symmetric")  # = cv2.BORDER_REFLECT
    lap = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * board
    assert sharpness(rgb) == pytest.approx(np.abs(lap).mean(), rel=1e-6)
    assert sharpness(board) == pytest.approx(sharpness(rgb), rel=1e-6)
    assert np.abs(lap[1:-1, 1:-1]).mean() == 4.0
    # dtype-independent units (0..1), and blur lowers it
    img = _texture(48, 64)
    assert sharpness(img) == pytest.approx(sharpness(img.astype(np.uint16) * 257), rel=1e-5)
    assert sharpness(cv2.GaussianBlur(img, (0, 0), 2)) < 0.5 * sharpness(img)
    with pytest.raises(InvalidInputError):
        sharpness(np.zeros((4, 4, 2)))


def test_style_frames_and_compare_videos_style(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
    from nets_helpers import write_fake_vgg

    from vidstyle.fidelity import StyleReference
    from vidstyle.metrics import compare_videos, style_frames
    from vidstyle.options.spec import OptionValueError

    assert style_frames(10) == list(range(10))
    assert len(style_frames(100)) <= 30 and style_frames(100)[:2] == [0, 4]
    assert style_frames(7, 3) == [0, 3, 6]
    with pytest.raises(OptionValueError) as e:
        style_frames(5, 0)
    assert e.value.parameter == "style_every"
    video = _panning_video(n=4, h=40, w=48)
    vgg = write_fake_vgg(tmp_path / "vgg.safetensors", n_convs=7, metadata={"convention": "caffe"})
    ref = StyleReference(_texture(50, 40, seed=3), vgg_weights=vgg)
    noisy = [np.clip(f.astype(np.int16) + 20, 0, 255).astype(np.uint8) for f in video]
    s = compare_videos(video, {"input": video, "other": noisy}, estimator="dis-fast", style=ref, style_every=2)
    assert s["input"].style_frames == (0, 2)
    assert s["input"].style.style_ratio == pytest.approx(1.0) and s["input"].style.content_loss == pytest.approx(0.0, abs=1e-9)
    assert s["other"].style.content_loss > 0
    assert compare_videos(video, {"other": noisy}, estimator="dis-fast")["other"].style is None
