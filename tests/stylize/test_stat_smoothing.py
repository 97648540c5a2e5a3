"""Content statistics smoothed over time (AdaIN and WCT on video): the average follows its formula, a
constant clip keeps its statistics, a scene cut or a size change restarts it, the smoothed whitening equals
``C_s^{1/2} (Σ̄ + εI)^{−1/2} (x − μ̄) + μ_s`` computed by hand, and the back end uses it frame by frame."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidstyle.errors import ShapeError
from vidstyle.options.spec import OptionValueError
from vidstyle.stylize.stat_smoothing import (
    CUT_THRESHOLD,
    StatSmoother,
    content_statistics,
    statistics_distance,
)
from vidstyle.stylize.transforms import adain, prepare_style, wct

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_transforms import _feats  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = f.reshape(f.shape[-3], -1).double()
    d = x - x.mean(1, keepdim=True)
    return x.mean(1), d @ d.T / x.shape[1]


def _sym_power(m: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return vecs @ torch.diag((vals + eps) ** p) @ vecs.T


def test_content_statistics_are_the_biased_mean_and_covariance() -> None:
    f = _feats(1, 5, 7, 9, seed=0)
    st = content_statistics(f, covariance=True)
    mu, cov = _cov(f)
    torch.testing.assert_close(st.mean, mu)
    torch.testing.assert_close(st.cov, cov)
    torch.testing.assert_close(st.var, f[0].reshape(5, -1).var(1, unbiased=False))
    assert st.size == (7, 9)
    light = content_statistics(f[0], covariance=False)
    assert light.cov is None
    torch.testing.assert_close(light.var, st.var)
    with pytest.raises(ShapeError, match="one image"):
        content_statistics(_feats(2, 5, 7, 9, seed=0), covariance=True)


def test_a_constant_clip_keeps_its_statistics() -> None:
    st = content_statistics(_feats(1, 6, 8, 8, seed=1), covariance=True)
    sm = StatSmoother(smoothing=0.9)
    for _ in range(20):
        out = sm.update(st)
    assert not sm.last_cut
    torch.testing.assert_close(out.mean, st.mean, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(out.cov, st.cov, rtol=1e-13, atol=1e-13)


def test_the_average_follows_the_formula_between_cuts() -> None:
    lam = 0.7
    f0 = _feats(1, 4, 10, 10, seed=2)
    frames = [f0 + 0.05 * _feats(1, 4, 10, 10, seed=10 + t, mix=False) for t in range(4)]  # small changes
    stats = [content_statistics(f, covariance=True) for f in frames]
    sm = StatSmoother(smoothing=lam)
    got = [sm.update(s) for s in stats]
    mean, cov = stats[0].mean, stats[0].cov
    for t in range(1, 4):
        mean = lam * mean + (1 - lam) * stats[t].mean
        cov = lam * cov + (1 - lam) * stats[t].cov
        torch.testing.assert_close(got[t].mean, mean)
        torch.testing.assert_close(got[t].cov, cov)
    assert got[0] is stats[0]  # the first frame: its own statistics


def test_a_scene_cut_or_a_size_change_restarts_the_average() -> None:
    a = content_statistics(_feats(1, 5, 9, 9, seed=3), covariance=True)
    b = content_statistics(_feats(1, 5, 9, 9, seed=4) * 3 + 5, covariance=True)  # another scene
    assert statistics_distance(b, a) > CUT_THRESHOLD
    sm = StatSmoother(smoothing=0.9)
    for _ in range(3):
        sm.update(a)
    assert sm.update(b) is b and sm.last_cut  # b's own statistics, nothing of a
    blended = sm.update(b)
    assert not sm.last_cut
    torch.testing.assert_close(blended.cov, b.cov)
    other_size = content_statistics(_feats(1, 5, 9, 9, seed=4)[..., :7] * 3 + 5, covariance=True)
    assert sm.update(other_size) is other_size and sm.last_cut
    sm.reset()
    assert sm.update(a) is a and sm.last_cut


def test_smoothed_wct_whitens_with_the_average_as_the_formula_says() -> None:
    lam, eps = 0.6, 1e-5
    c0, c1 = _feats(1, 5, 8, 9, seed=5), _feats(1, 5, 8, 9, seed=5) * 1.02 + 0.01 * _feats(1, 5, 8, 9, seed=6)
    style = _feats(1, 5, 11, 10, seed=7)
    sm = StatSmoother(smoothing=lam)
    sm.update(content_statistics(c0, covariance=True))
    smoothed = sm.update(content_statistics(c1, covariance=True))
    assert not sm.last_cut
    got = wct(c1, prepare_style(style, method="wct"), eps=eps, content_stats=[smoothed])

    (m0, s0), (m1, s1), (ms, ss) = _cov(c0), _cov(c1), _cov(style)
    mu, cov = lam * m0 + (1 - lam) * m1, lam * s0 + (1 - lam) * s1
    x = c1[0].reshape(5, -1) - mu[:, None]
    expect = _sym_power(ss, 0.5, 0.0) @ _sym_power(cov, -0.5, eps) @ x + ms[:, None]
    torch.testing.assert_close(got[0].reshape(5, -1), expect, rtol=1e-9, atol=1e-9)
    # λ = 0 statistics are the frame's own: the per-frame transform exactly
    own = wct(c1, prepare_style(style, method="wct"), eps=eps, content_stats=[content_statistics(c1, covariance=True)])
    torch.testing.assert_close(own, wct(c1, style, eps=eps), rtol=1e-12, atol=1e-12)


def test_smoothed_adain_normalises_with_the_average() -> None:
    lam, eps = 0.8, 1e-5
    c0, c1, style = _feats(1, 4, 6, 6, seed=8), _feats(1, 4, 6, 6, seed=8) * 1.1, _feats(1, 4, 7, 5, seed=9)
    sm = StatSmoother(smoothing=lam)
    sm.update(content_statistics(c0, covariance=False))
    smoothed = sm.update(content_statistics(c1, covariance=False))
    got = adain(c1, style, eps=eps, content_stats=[smoothed])
    v = lambda f: f[0].reshape(4, -1).var(1, unbiased=False)  # noqa: E731
    m = lambda f: f[0].reshape(4, -1).mean(1)  # noqa: E731
    mu, var = lam * m(c0) + (1 - lam) * m(c1), lam * v(c0) + (1 - lam) * v(c1)
    sd_s = (v(style) + eps).sqrt()
    expect = (c1[0] - mu[:, None, None]) / (var + eps).sqrt()[:, None, None] * sd_s[:, None, None] + m(style)[:, None, None]
    torch.testing.assert_close(got[0], expect)


def test_bad_values_and_shapes_are_refused() -> None:
    for bad in (1.0, -0.1):
        with pytest.raises(OptionValueError, match="stat_smoothing must be in"):
            StatSmoother(smoothing=bad)
    c = _feats(2, 4, 5, 5, seed=0)
    with pytest.raises(ShapeError, match="one content statistics per image"):
        wct(c, _feats(1, 4, 5, 5, seed=1), content_stats=[content_statistics(c[:1], covariance=True)])
    with pytest.raises(ShapeError, match="with covariances"):
        wct(c[:1], _feats(1, 4, 5, 5, seed=1), content_stats=[content_statistics(c[:1], covariance=False)])


def test_the_state_round_trips_through_tensors() -> None:
    sm = StatSmoother(smoothing=0.5)
    f = _feats(1, 3, 6, 6, seed=11)
    sm.update(content_statistics(f, covariance=True))
    sm.update(content_statistics(f * 1.01, covariance=True))
    again = StatSmoother(smoothing=0.5)
    again.load_state_tensors(sm.state_tensors())
    nxt = content_statistics(f * 1.02, covariance=True)
    a, b = sm.update(nxt), again.update(nxt)
    assert sm.last_cut == again.last_cut is False
    torch.testing.assert_close(a.cov, b.cov, rtol=0, atol=0)
    assert StatSmoother(smoothing=0.5).state_tensors() == {}


# ------------------------------------------------------------------------------ in the back end
@pytest.fixture()
def parts(tmp_path: Path) -> dict[str, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nets"))
    from nets_helpers import write_fake_vgg

    import cv2

    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    vgg = write_fake_vgg(tmp_path / "vgg.safetensors", metadata={"convention": "caffe"})
    torch.manual_seed(0)
    decoder = save_decoder(tmp_path / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                           convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    return {"vgg": vgg, "decoder": decoder, "painting": painting}


def test_the_back_end_smooths_frame_by_frame_and_resets_between_streams(parts) -> None:
    from vidstyle.api import build_stages
    from vidstyle.frame import Frame

    rng = np.random.default_rng(1)
    base = rng.random((32, 40, 3))
    frames = [(np.clip(base + 0.03 * rng.standard_normal(base.shape), 0, 1) * 255).astype(np.uint8) for _ in range(4)]
    (stage,) = build_stages(backend="arbitrary", style=str(parts["painting"]), decoder=str(parts["decoder"]),
                            vgg_weights=str(parts["vgg"]), device="cpu", threads=1, stabilize=0, method="wct",
                            stat_smoothing=0.9, batch_size=2)
    net = stage.stylizer.model.net
    smoother = net.smoother
    assert smoother is not None and smoother.smoothing == 0.9

    def run(clip: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, img in enumerate(clip):
            out += [f.stylized for f in stage.process(Frame(index=i, image=img))]
        out += [f.stylized for f in stage.finish()]
        return out

    smoothed = run(frames)
    assert smoother.average is not None
    stage.close()  # closing the stage forgets the statistics
    assert smoother.average is None and smoother.previous is None
    net.smoother = None  # each frame's own statistics
    per_frame = run(frames)
    net.smoother = smoother
    assert np.array_equal(smoothed[0], per_frame[0])  # the first frame: its own statistics
    assert all(not np.array_equal(a, b) for a, b in zip(smoothed[1:], per_frame[1:]))
    stage.reset_temporal()
    still = run([frames[0]] * 3)  # a constant clip: every frame as its per-frame output
    assert all(np.abs(s.astype(int) - per_frame[0].astype(int)).max() <= 1 for s in still)


def test_the_option_is_checked_with_its_flag(tmp_path: Path) -> None:
    from vidstyle.options import StylizeOptions

    assert StylizeOptions(backend="arbitrary", style="p.jpg", stat_smoothing=0.5).stat_smoothing == 0.5
    with pytest.raises(OptionValueError, match=r"stat_smoothing must be .*\[0, 0.99\]"):
        StylizeOptions(backend="arbitrary", style="p.jpg", stat_smoothing=1.0)


def test_a_resumed_render_continues_the_smoothed_statistics_exactly(parts) -> None:
    """vidstyle.render.state exports the smoother with the stage's state: a stage restored from it gives
    the next frame bit-identical to the uninterrupted stage."""
    from vidstyle.api import build_stages
    from vidstyle.frame import Frame
    from vidstyle.render.state import export_state, import_state

    rng = np.random.default_rng(2)
    base = rng.random((32, 32, 3))
    frames = [(np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1) * 255).astype(np.uint8) for _ in range(3)]

    def stage() -> object:
        (s,) = build_stages(backend="arbitrary", style=str(parts["painting"]), decoder=str(parts["decoder"]),
                            vgg_weights=str(parts["vgg"]), device="cpu", threads=1, stabilize=0, method="adain",
                            stat_smoothing=0.8)
        return s

    first = stage()
    for i in range(2):
        first.process(Frame(index=i, image=frames[i]))
    state = export_state(first)
    assert {"stats.average.mean", "stats.previous.var"} <= set(state)
    resumed = stage()
    import_state(resumed, state)
    (a,) = first.process(Frame(index=2, image=frames[2]))
    (b,) = resumed.process(Frame(index=2, image=frames[2]))
    fresh = stage()
    (c,) = fresh.process(Frame(index=2, image=frames[2]))
    assert np.array_equal(a.stylized, b.stylized)
    assert not np.array_equal(a.stylized, c.stylized)  # without the state the frame differs: the test can fail
