"""Feature transforms of arbitrary-style transfer checked against their definitions: AdaIN gives each
channel the style's mean and std, WCT the style's mean and covariance (float64), style swap equals a
brute-force nearest-patch search; strength 0 gives the content back exactly, blended styles behave as
documented, prepared statistics equal the on-the-fly ones, and gradcheck passes where differentiable."""

from __future__ import annotations

import pytest
import torch

from vidstyle.errors import ShapeError
from vidstyle.options.spec import OptionValueError
from vidstyle.stylize.transforms import (
    WCT,
    AdaIN,
    StyleSwap,
    adain,
    keep_colours,
    prepare_style,
    style_image_at,
    style_swap,
    wct,
)

DTYPES = [torch.float32, torch.float64]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _feats(*shape: int, seed: int, dtype: torch.dtype = torch.float64, mix: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    if mix:  # correlated channels with different means, like real features
        c = shape[1]
        a = torch.randn(c, c, generator=g, dtype=torch.float64) + 2 * torch.eye(c, dtype=torch.float64)
        x = torch.einsum("dc,nchw->ndhw", a, x) + torch.randn(1, c, 1, 1, generator=g, dtype=torch.float64) * 3
    return x.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adain_gives_the_style_mean_and_std(dtype: torch.dtype) -> None:
    c, s = _feats(2, 5, 9, 11, seed=0, dtype=dtype), _feats(1, 5, 13, 7, seed=1, dtype=dtype)
    out = adain(c, s, eps=0.0)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for i in range(2):
        torch.testing.assert_close(out[i].mean((1, 2)), s[0].mean((1, 2)), **tol)
        torch.testing.assert_close(out[i].std((1, 2), unbiased=False), s[0].std((1, 2), unbiased=False), **tol)
    assert out.dtype == dtype and out.shape == c.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_wct_gives_the_style_mean_and_covariance(dtype: torch.dtype) -> None:
    c, s = _feats(2, 6, 10, 12, seed=2, dtype=dtype), _feats(1, 6, 11, 9, seed=3, dtype=dtype)
    out = wct(c, s, eps=1e-12 if dtype == torch.float64 else 1e-6)

    def mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = f.reshape(f.shape[0], -1).double()
        d = x - x.mean(1, keepdim=True)
        return x.mean(1), d @ d.T / x.shape[1]

    mu_s, cov_s = mean_cov(s[0])
    tol = dict(rtol=1e-3, atol=1e-3 * float(cov_s.abs().max())) if dtype == torch.float32 else dict(rtol=1e-8, atol=1e-8)
    for i in range(2):
        mu_o, cov_o = mean_cov(out[i])
        torch.testing.assert_close(mu_o, mu_s, **tol)
        torch.testing.assert_close(cov_o, cov_s, **tol)
    assert out.dtype == dtype


def _brute_force_swap(c: torch.Tensor, s: torch.Tensor, p: int = 3) -> torch.Tensor:
    """For every content patch, the style patch of highest normalised cross-correlation, by loops;
    each position averaged over the patches that cover it."""
    _, ch, h, w = c.shape
    _, _, hs, ws = s.shape
    style = [s[0, :, y : y + p, x : x + p] for y in range(hs - p + 1) for x in range(ws - p + 1)]
    out = torch.zeros_like(c[0])
    count = torch.zeros(1, h, w, dtype=c.dtype)
    for y in range(h - p + 1):
        for x in range(w - p + 1):
            q = c[0, :, y : y + p, x : x + p]
            scores = [float((q * sp).sum() / (q.norm() * sp.norm())) for sp in style]
            best = style[max(range(len(style)), key=scores.__getitem__)]
            out[:, y : y + p, x : x + p] += best
            count[:, y : y + p, x : x + p] += 1
    return (out / count).unsqueeze(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_style_swap_matches_a_brute_force_nearest_patch_search(dtype: torch.dtype) -> None:
    c, s = _feats(1, 4, 6, 7, seed=4, dtype=dtype, mix=False), _feats(1, 4, 5, 6, seed=5, dtype=dtype, mix=False)
    expected = _brute_force_swap(c.double(), s.double()).to(dtype)
    torch.testing.assert_close(style_swap(c, s), expected)
    torch.testing.assert_close(style_swap(c, s, chunk=3), expected)  # the running argmax over chunks


def test_style_swap_of_the_style_itself_is_the_style() -> None:
    s = _feats(1, 3, 6, 6, seed=6, mix=False)
    torch.testing.assert_close(style_swap(s, s), s)


@pytest.mark.parametrize("fn", [adain, wct, style_swap])
@pytest.mark.parametrize("dtype", DTYPES)
def test_strength_zero_is_the_content_and_blends_linearly(fn, dtype: torch.dtype) -> None:  # noqa: ANN001
    c, s = _feats(1, 4, 8, 8, seed=7, dtype=dtype), _feats(1, 4, 7, 9, seed=8, dtype=dtype)
    assert torch.equal(fn(c, s, strength=0.0), c)
    full = fn(c, s)
    torch.testing.assert_close(fn(c, s, strength=0.3), 0.3 * full + 0.7 * c)
    with pytest.raises(OptionValueError):
        fn(c, s, strength=1.5)


@pytest.mark.parametrize("method,fn", [("adain", adain), ("wct", wct), ("swap", style_swap)])
def test_prepared_style_equals_on_the_fly(method: str, fn) -> None:  # noqa: ANN001
    c, s = _feats(2, 4, 8, 8, seed=9), _feats(1, 4, 7, 9, seed=10)
    stats = prepare_style(s, method=method)  # type: ignore[arg-type]
    torch.testing.assert_close(fn(c, stats), fn(c, s))
    with pytest.raises(OptionValueError):
        (adain if method != "adain" else wct)(c, stats)


def test_blended_styles() -> None:
    c = _feats(1, 4, 8, 8, seed=11)
    s1, s2 = _feats(1, 4, 7, 9, seed=12), _feats(1, 4, 9, 6, seed=13)
    # AdaIN is affine in (mean, std): blending statistics = blending outputs
    blended = adain(c, prepare_style([s1, s2], method="adain", weights=[3, 1]))
    torch.testing.assert_close(blended, 0.75 * adain(c, s1) + 0.25 * adain(c, s2))
    # WCT: the output's covariance is the weighted covariance of the styles
    out = wct(c, prepare_style([s1, s2], method="wct", weights=[1, 1]), eps=1e-12)

    def cov(f: torch.Tensor) -> torch.Tensor:
        x = f[0].reshape(f.shape[1], -1)
        d = x - x.mean(1, keepdim=True)
        return d @ d.T / x.shape[1]

    torch.testing.assert_close(cov(out), 0.5 * cov(s1) + 0.5 * cov(s2))
    # swap: outputs blended; a weight of 0 gives the other style's swap
    torch.testing.assert_close(style_swap(c, prepare_style([s1, s2], method="swap", weights=[0, 1])), style_swap(c, s2))
    with pytest.raises(OptionValueError):
        prepare_style([s1, s2], method="adain", weights=[1])


def test_gradcheck_adain_and_wct() -> None:
    c = _feats(1, 3, 4, 5, seed=14).requires_grad_(True)
    s = _feats(1, 3, 5, 4, seed=15).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: adain(a, b, strength=0.7), (c, s))
    assert torch.autograd.gradcheck(lambda a, b: wct(a, b), (c, s))


def test_modules_call_the_functions_and_shapes_are_checked() -> None:
    c, s = _feats(1, 4, 8, 8, seed=16), _feats(1, 4, 7, 9, seed=17)
    assert torch.equal(AdaIN(strength=0.5)(c, s), adain(c, s, strength=0.5))
    assert torch.equal(WCT()(c, s), wct(c, s))
    assert torch.equal(StyleSwap()(c, s), style_swap(c, s))
    with pytest.raises(ShapeError):
        adain(c[0], s)
    with pytest.raises(ShapeError):
        wct(c, _feats(1, 5, 7, 9, seed=18))
    with pytest.raises(OptionValueError):
        prepare_style(s, method="nope")  # type: ignore[arg-type]


def test_helpers() -> None:
    img = torch.rand(1, 3, 40, 60)
    assert style_image_at(img, long_side=30).shape == (1, 3, 20, 30)
    assert style_image_at(img, long_side=None) is img
    grey = torch.full((1, 3, 8, 8), 0.5)
    photo = torch.rand(1, 3, 8, 8)
    out = keep_colours(grey, photo)
    assert out.shape == photo.shape and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("fn,method", [(adain, "adain"), (wct, "wct")])
def test_channels_last_features_give_the_same_result_in_the_same_layout(fn, method: str) -> None:  # noqa: ANN001
    """The pipeline's features are channels-last (frames come from H×W×3 pixels): the transforms give the same
    values as for contiguous features, keep that layout (so the decoder does not run on a converted copy) and
    leave their input untouched (WCT centres a float64 copy in place)."""
    c = _feats(2, 6, 9, 11, seed=21)
    s = prepare_style(_feats(1, 6, 8, 7, seed=22), method=method)
    cl = c.contiguous(memory_format=torch.channels_last)
    before = cl.clone()
    want, got = fn(c, s), fn(cl, s)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-10)
    assert torch.equal(cl, before)
    assert got.is_contiguous(memory_format=torch.channels_last)
    one = fn(cl[1:], s)
    assert one.is_contiguous(memory_format=torch.channels_last) and one.stride() == cl[1:].contiguous(
        memory_format=torch.channels_last).stride()  # plain strides: odd ones made the decoder 1.6x slower
    torch.testing.assert_close(one, want[1:], rtol=1e-12, atol=1e-10)


def test_wct_eigendecomposition_runs_on_one_thread_and_restores_the_count() -> None:
    """MKL's threaded eigensolver stalls on a busy machine (see transforms._eigh): it runs with one thread, and the
    caller's thread count is back afterwards."""
    from unittest import mock

    from vidstyle.stylize import transforms

    seen: list[int] = []
    real = torch.linalg.eigh

    def spy(m: torch.Tensor) -> object:
        seen.append(torch.get_num_threads())
        return real(m)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with mock.patch.object(torch.linalg, "eigh", spy):
            wct(_feats(1, 4, 6, 6, seed=23), _feats(1, 4, 5, 5, seed=24))
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
        assert transforms._eigh(torch.eye(3, dtype=torch.float64))[0].tolist() == [1.0, 1.0, 1.0]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_channel_var_mean_is_the_population_variance_and_mean(dtype: torch.dtype) -> None:
    from vidstyle.stylize.transforms import channel_var_mean

    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 5, 9, 13, generator=g, dtype=torch.float64) * 1.5 + 0.8).relu()
    x[:, 4] = 0.7  # a constant channel: variance 0, not a tiny negative number
    feats = x.to(dtype).contiguous(memory_format=torch.channels_last)
    var, mean = channel_var_mean(feats)
    ref_var, ref_mean = torch.var_mean(feats.double(), dim=(2, 3), unbiased=False)
    assert var.shape == mean.shape == (2, 5)
    assert var.dtype == mean.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(mean.double(), ref_mean, rtol=tol, atol=tol)
    torch.testing.assert_close(var.double(), ref_var, rtol=tol * 10, atol=tol)
    assert bool((var[:, 4] >= 0).all()) and float(var[:, 4].abs().max()) < 1e-6
