"""The style losses of issue 18 against their reference formulas, written out as loops over positions
and patches (tiny random tensors, no weights), plus float64 gradchecks.

MMD (Li et al. 2017), BN statistics, MRF (Li & Wand 2016) with semantic maps (Champandard 2016), guided
Gram matrices (Gatys et al. 2017)."""

from __future__ import annotations

import math

import pytest
import torch

from vidstyle.errors import ShapeError
from vidstyle.losses import (
    STYLE_LOSSES,
    BNStyleLoss,
    GuidedStyleLoss,
    MMDStyleLoss,
    MRFStyleLoss,
    StyleLoss,
    bn_statistics,
    bn_style_loss,
    extract_patches,
    gaussian_bandwidth,
    gram_matrix,
    guided_gram_matrix,
    make_style_loss,
    mmd_loss,
    mrf_loss,
    nearest_patches,
    style_loss,
)

D64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def rand(*shape, seed=0, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def vectors(f):
    """1×C×H×W → the list of C-vectors at the positions."""
    return [f[0, :, i, j] for i in range(f.shape[2]) for j in range(f.shape[3])]


def mmd_by_loops(f, s, k):
    xs, ys = vectors(f), vectors(s)
    kxx = sum(k(a, b) for a in xs for b in xs) / len(xs) ** 2
    kyy = sum(k(a, b) for a in ys for b in ys) / len(ys) ** 2
    kxy = sum(k(a, b) for a in xs for b in ys) / (len(xs) * len(ys))
    return kxx + kyy - 2 * kxy


# ------------------------------------------------------------------------------------------------ MMD
def test_mmd_kernels_match_the_definition_by_loops():
    f, s = rand(1, 3, 3, 4, seed=1), rand(1, 3, 4, 2, seed=2) + 0.5
    torch.testing.assert_close(mmd_loss(f, s, kernel="linear"), mmd_by_loops(f, s, lambda a, b: a @ b))
    torch.testing.assert_close(mmd_loss(f, s, kernel="poly", c=0.7, d=3),
                               mmd_by_loops(f, s, lambda a, b: (a @ b + 0.7) ** 3))
    # σ² = mean squared distance between the painting's vectors, over all ordered pairs
    ys = vectors(s)
    sigma2 = sum((a - b).pow(2).sum() for a in ys for b in ys) / len(ys) ** 2
    torch.testing.assert_close(gaussian_bandwidth(s), sigma2)
    torch.testing.assert_close(mmd_loss(f, s, kernel="gaussian"),
                               mmd_by_loops(f, s, lambda a, b: torch.exp(-(a - b).pow(2).sum() / (2 * sigma2))))
    # linear MMD² is the squared distance of the means
    torch.testing.assert_close(mmd_loss(f, s, kernel="linear"),
                               (f.mean((2, 3)) - s.mean((2, 3))).pow(2).sum())


def test_mmd_poly_is_the_gram_loss_up_to_its_constant():
    """k(x, y) = (xᵀy)²: MMD² = ‖F Fᵀ/M − S Sᵀ/K‖²_F and G = F Fᵀ/(C·M), so MMD² = C²·‖ΔG‖²_F = C⁴·mean(ΔG²)."""
    c = 5
    f, s = rand(2, c, 3, 3, seed=3), rand(1, c, 4, 5, seed=4)
    mmd = mmd_loss(f, s, kernel="poly", c=0.0, d=2)
    gram_sum = style_loss({"l": f}, {"l": gram_matrix(s)}, reduction="sum")
    gram_mean = style_loss({"l": f}, {"l": gram_matrix(s)}, reduction="mean")
    torch.testing.assert_close(mmd, c**2 * gram_sum)
    torch.testing.assert_close(mmd, c**4 * gram_mean)
    # and the module (normalised by C⁴) is the optimisation back end's default Gram loss, exactly
    module = MMDStyleLoss(style_features=[{"l": s}], kernel="poly")
    torch.testing.assert_close(module({"l": f}), StyleLoss(style_features=[{"l": s}])({"l": f}))


@pytest.mark.parametrize("kernel,c,z", [("linear", 0.0, 4), ("poly", 0.5, 4**4), ("gaussian", 0.0, 1)])
def test_mmd_module_equals_the_reference_and_mixes_paintings(kernel, c, z):
    f = rand(2, 4, 3, 3, seed=5)
    a, b = rand(1, 4, 3, 2, seed=6), rand(1, 4, 3, 2, seed=7) * 2 + 1
    one = MMDStyleLoss(style_features=[{"l": a}], kernel=kernel, c=c)
    torch.testing.assert_close(one({"l": f}), mmd_loss(f, a, kernel=kernel, c=c) / z)
    raw = MMDStyleLoss(style_features=[{"l": a}], kernel=kernel, c=c, normalize=False)
    torch.testing.assert_close(raw({"l": f}), mmd_loss(f, a, kernel=kernel, c=c))
    # two paintings of the same size, equal weights: the mixture is the union of their samples
    both = MMDStyleLoss(style_features=[{"l": a}, {"l": b}], kernel=kernel, c=c, normalize=False)
    torch.testing.assert_close(both({"l": f}), mmd_loss(f, torch.cat([a, b], dim=3), kernel=kernel, c=c))
    # a perfect match scores 0 (the output's samples are the painting's)
    assert float(raw({"l": a})) == pytest.approx(0.0, abs=1e-10)


def test_mmd_gaussian_random_features_approximate_the_exact_loss():
    torch.manual_seed(0)
    s = rand(1, 8, 12, 12, seed=8)
    x = (rand(1, 8, 10, 10, seed=9) * 0.7 + 0.4).requires_grad_(True)
    exact = MMDStyleLoss(style_features=[{"l": s}], kernel="gaussian")
    approx = MMDStyleLoss(style_features=[{"l": s}], kernel="gaussian", max_pairs=0, features=8192)
    assert not exact.uses_random_features("l", 100) and approx.uses_random_features("l", 100)
    ve, va = exact({"l": x}), approx({"l": x})
    assert float(va.detach()) == pytest.approx(float(ve.detach()), rel=0.15)
    ge, = torch.autograd.grad(ve, x)
    ga, = torch.autograd.grad(va, x)
    cos = float((ge * ga).sum() / (ge.norm() * ga.norm()))
    assert cos > 0.9, cos


# ------------------------------------------------------------------------------------------------- BN
def test_bn_loss_is_the_mean_and_std_distance():
    f, s = rand(2, 3, 4, 5, seed=10), rand(1, 3, 6, 6, seed=11) * 3 + 1
    mean, std = bn_statistics(f)
    torch.testing.assert_close(mean, f.mean((2, 3)))
    torch.testing.assert_close(std, f.flatten(2).std(2, unbiased=False), atol=1e-7, rtol=1e-6)
    ms, ss = s.mean((2, 3)), s.flatten(2).std(2, unbiased=False)
    expected = sum(((f[n].mean((1, 2)) - ms[0]) ** 2 + (f[n].flatten(1).std(1, unbiased=False) - ss[0]) ** 2).sum() / 3
                   for n in range(2)) / 2
    torch.testing.assert_close(bn_style_loss(f, ms, ss), expected, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(BNStyleLoss(style_features=[{"l": s}])({"l": f}), expected, atol=1e-7, rtol=1e-6)


def test_bn_mixture_is_the_union_of_samples():
    f = rand(1, 3, 4, 4, seed=12)
    a, b = rand(1, 3, 4, 3, seed=13), rand(1, 3, 4, 3, seed=14) * 2 - 1
    both = BNStyleLoss(style_features=[{"l": a}, {"l": b}])
    union = BNStyleLoss(style_features=[{"l": torch.cat([a, b], 3)}])
    torch.testing.assert_close(both({"l": f}), union({"l": f}))


# ------------------------------------------------------------------------------------------------ MRF
def brute_force_mrf(f, s, k=3, extra_f=None, extra_s=None):
    """Every k×k patch of the output against every k×k patch of the painting (stride 1), by loops: the
    nearest by normalised cross-correlation (on the features plus the extra channels, if any), then the
    mean squared difference of the features."""
    def patches(t):
        return [t[0, :, i:i + k, j:j + k] for i in range(t.shape[2] - k + 1) for j in range(t.shape[3] - k + 1)]

    fa = f if extra_f is None else torch.cat([f, extra_f], 1)
    sa = s if extra_s is None else torch.cat([s, extra_s], 1)
    pf, ps, pfa, psa = patches(f), patches(s), patches(fa), patches(sa)
    total, nn = 0.0, []
    for p, pa in zip(pf, pfa):
        ncc = [float((pa * q).sum() / (pa.norm() * q.norm())) for q in psa]
        j = max(range(len(ncc)), key=lambda t: (ncc[t], -t))
        nn.append(j)
        total = total + (p - ps[j]).pow(2).mean()
    return total / len(pf), nn


def test_mrf_equals_a_brute_force_patch_search():
    f, s = rand(1, 4, 6, 7, seed=15), rand(1, 4, 5, 6, seed=16)
    expected, nn = brute_force_mrf(f, s)
    patches = extract_patches(s)
    assert patches.shape == (3 * 4, 4, 3, 3)
    assert nearest_patches(f, patches, chunk=5)[0].tolist() == nn
    torch.testing.assert_close(mrf_loss(f, patches), expected)
    torch.testing.assert_close(MRFStyleLoss(style_features=[{"l": s}])({"l": f}), expected)


def test_mrf_of_the_painting_itself_is_zero_and_patches_are_subsampled():
    s = rand(1, 4, 8, 8, seed=17)
    assert float(MRFStyleLoss(style_features=[{"l": s}])({"l": s})) == pytest.approx(0.0, abs=1e-12)
    small = MRFStyleLoss(style_features=[{"l": s}], max_patches=10)
    assert small.patches("l").shape[0] == 9  # stride 2: 3×3 patches of the 6×6 positions
    assert float(small({"l": s})) > 0


def test_semantic_maps_steer_the_matching_like_appended_channels():
    """With maps, the match is the brute-force NCC over features plus the scaled label channels."""
    f, s = rand(1, 4, 6, 6, seed=18), rand(1, 4, 6, 6, seed=19)
    cm = torch.zeros(1, 2, 6, 6, dtype=D64)
    cm[:, 0, :, :3], cm[:, 1, :, 3:] = 1, 1  # content: left / right
    sm = torch.zeros(1, 2, 6, 6, dtype=D64)
    sm[:, 0, :3], sm[:, 1, 3:] = 1, 1  # painting: top / bottom
    loss = MRFStyleLoss(style_features=[{"l": s}], style_maps=[sm], content_map=cm, map_weight=2.0)
    scale = 2.0 * math.sqrt(float(s.pow(2).mean())) * 2  # map_weight · rms · √C
    expected, nn = brute_force_mrf(f, s, extra_f=cm * scale, extra_s=sm * scale)
    torch.testing.assert_close(loss({"l": f}), expected)
    # a strong map weight keeps every match inside its label: left patches come from the top rows
    strong = MRFStyleLoss(style_features=[{"l": s}], style_maps=[sm], content_map=cm, map_weight=20.0)
    patches = strong.patches("l")
    from vidstyle.losses.mrf import append_map

    idx = nearest_patches(append_map(f, cm, strong.map_scale["l"]), patches)[0].reshape(4, 4)
    rows = idx // 4  # patch row in the painting (4×4 patch grid)
    assert (rows[:, 0] == 0).all() and (rows[:, 3] == 3).all()
    with pytest.raises(ShapeError):
        MRFStyleLoss(style_features=[{"l": s}], style_maps=[sm[:, :1]], content_map=cm)


# --------------------------------------------------------------------------------------------- guided
def test_guided_gram_is_the_gram_of_the_region_normalised_by_its_area():
    f = rand(1, 3, 4, 4, seed=20)
    matte = torch.zeros(4, 4, dtype=D64)
    matte[1:3, :3] = 1
    inside = [f[0, :, i, j] for i in range(4) for j in range(4) if matte[i, j] > 0]
    expected = sum(torch.outer(v, v) for v in inside) / (3 * len(inside))
    torch.testing.assert_close(guided_gram_matrix(f, matte)[0], expected)
    # a constant soft matte gives the plain Gram matrix (the area counts the squared weights)
    torch.testing.assert_close(guided_gram_matrix(f, torch.full((4, 4), 0.4, dtype=D64)), gram_matrix(f))
    # the matte is resized to the layer by area averaging: a 8×8 matte of 2×2 blocks is the 4×4 one
    big = matte.repeat_interleave(2, 0).repeat_interleave(2, 1)
    torch.testing.assert_close(guided_gram_matrix(f, big), guided_gram_matrix(f, matte))


def test_guided_style_loss_sums_the_regions():
    f = rand(1, 3, 4, 4, seed=21)
    a, b = rand(1, 3, 5, 5, seed=22), rand(1, 3, 5, 5, seed=23) + 1
    left = torch.zeros(4, 4, dtype=D64)
    left[:, :2] = 1
    loss = GuidedStyleLoss(style_features=[{"l": a}, {"l": b}], mattes=[left, 1 - left], region_weights=[1.0, 3.0])
    expected = ((guided_gram_matrix(f, left) - gram_matrix(a)) ** 2).mean() \
        + 3.0 * ((guided_gram_matrix(f, 1 - left) - gram_matrix(b)) ** 2).mean()
    torch.testing.assert_close(loss({"l": f}), expected)


# ------------------------------------------------------------------------------------------ gradcheck
def _gradcheck(module, shape, seed):
    x = rand(*shape, seed=seed).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: module({"l": t}), (x,), eps=1e-6, atol=1e-5)


def test_gradcheck_float64():
    s = rand(1, 3, 4, 4, seed=30)
    _gradcheck(MMDStyleLoss(style_features=[{"l": s}], kernel="linear"), (1, 3, 3, 3), 31)
    _gradcheck(MMDStyleLoss(style_features=[{"l": s}], kernel="poly", c=0.3), (1, 3, 3, 3), 32)
    _gradcheck(MMDStyleLoss(style_features=[{"l": s}], kernel="gaussian"), (1, 3, 3, 3), 33)
    _gradcheck(MMDStyleLoss(style_features=[{"l": s}], kernel="gaussian", max_pairs=0, features=64), (1, 3, 3, 3), 34)
    _gradcheck(BNStyleLoss(style_features=[{"l": s}]), (2, 3, 3, 3), 35)
    matte = torch.zeros(4, 4, dtype=D64)
    matte[:, :2] = 1
    _gradcheck(GuidedStyleLoss(style_features=[{"l": s}], mattes=[matte]), (1, 3, 4, 4), 36)
    # MRF: smooth for fixed matches (the matching itself is not differentiated)
    x = rand(1, 3, 5, 5, seed=37)
    patches = extract_patches(s)
    nn = nearest_patches(x, patches)
    assert torch.autograd.gradcheck(lambda t: mrf_loss(t, patches, nearest=nn),
                                    (x.clone().requires_grad_(True),), eps=1e-6, atol=1e-5)
    x = rand(1, 3, 3, 3, seed=38).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: mmd_loss(t, s, kernel="gaussian"), (x,), eps=1e-6, atol=1e-5)


def test_make_style_loss_names_every_loss_and_refuses_mixed_controls():
    from vidstyle.options.groups import STYLE_LOSSES as OPTION_CHOICES

    assert OPTION_CHOICES == STYLE_LOSSES
    s = rand(1, 3, 5, 5, seed=40)
    kinds = {name: type(make_style_loss(name, style_features=[{"l": s}])).__name__ for name in STYLE_LOSSES}
    assert kinds == {"gram": "StyleLoss", "mmd-linear": "MMDStyleLoss", "mmd-poly": "MMDStyleLoss",
                     "mmd-gaussian": "MMDStyleLoss", "bn": "BNStyleLoss", "mrf": "MRFStyleLoss"}
    f = rand(1, 3, 5, 5, seed=41)
    for name in STYLE_LOSSES:  # every loss is > 0 for another image and 0 for the painting itself
        loss = make_style_loss(name, style_features=[{"l": s}])
        assert float(loss({"l": f})) > 0
        assert float(loss({"l": s})) == pytest.approx(0.0, abs=1e-9), name
    with pytest.raises(ValueError, match="Gram"):
        make_style_loss("bn", style_features=[{"l": s}], mattes=[torch.ones(5, 5)])
    with pytest.raises(ValueError, match="mrf"):
        make_style_loss("gram", style_features=[{"l": s}], style_maps=[torch.ones(1, 1, 5, 5)])
    with pytest.raises(ValueError, match="style loss must be one of"):
        make_style_loss("wasserstein", style_features=[{"l": s}])


# ----------------------------------------------------------------------------------------- gain map
def test_gain_map_and_loss_follow_selim_et_al():
    from vidstyle.losses import GAIN_RANGE, GainContentLoss, gain_content_loss, gain_map

    c = torch.tensor([[[[0.0, 1.0, 2.0, 4.0]]]], dtype=D64)
    s = torch.tensor([[[[3.0, 0.5, 2.0, 40.0]]]], dtype=D64)
    # 3/(0+1e-4) → clamped to 5; 0.5/1 → clamped to 0.7; 2/2 = 1 (up to ε); 40/4 → 5
    expected = torch.tensor([[[[5.0, 0.7, 2 / (2 + 1e-4), 5.0]]]], dtype=D64)
    torch.testing.assert_close(gain_map(c, s), expected)
    assert GAIN_RANGE == (0.7, 5.0)
    x = rand(1, 1, 1, 4, seed=50)
    torch.testing.assert_close(gain_content_loss(x, c, expected), ((x - c * expected) ** 2).mean())
    module = GainContentLoss(content_features={"l": c}, style_features={"l": s})
    torch.testing.assert_close(module({"l": x}), ((x - c * expected) ** 2).mean())
    f = rand(1, 2, 3, 3, seed=51).abs()
    g = GainContentLoss(content_features={"l": f}, style_features={"l": f * 2})
    assert torch.autograd.gradcheck(lambda t: g({"l": t}), (rand(1, 2, 3, 3, seed=52).requires_grad_(True),))
    with pytest.raises(ShapeError, match="align"):
        gain_map(c, s[..., :2])
