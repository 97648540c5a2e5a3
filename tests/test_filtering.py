import pytest
import torch
import torch.nn.functional as F

from vidstyle.filtering import separable_filter

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("taps", [(1.0,), (0.25, 0.5, 0.25), (0.125, 0.25, 0.25, 0.25, 0.125), (0.1, -0.2, 0.4, 0.3, 0.2, 0.1, 0.1)])
def test_matches_a_depthwise_conv_with_replicate_padding(dtype: torch.dtype, taps: tuple[float, ...]) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 11, 17, dtype=dtype)
    r = len(taps) // 2
    k = torch.tensor(taps, dtype=dtype)
    kernel = (k[:, None] * k[None, :]).expand(3, 1, len(taps), len(taps))
    ref = F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), kernel, groups=3)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(separable_filter(x, taps), ref, atol=tol, rtol=tol)


def test_gradcheck_and_input_untouched() -> None:
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    assert torch.autograd.gradcheck(lambda t: separable_filter(t, (0.2, 0.5, 0.3)), (x,))
    torch.testing.assert_close(x.detach(), before)


def test_grid_filter_removes_a_4_pixel_pattern() -> None:
    """[1, 2, 2, 2, 1]/8 has zeros at 1/4, 1/2 and 3/4 cycles per pixel: any pattern repeating every
    4 pixels becomes its mean (away from the borders), a smooth ramp passes unchanged."""
    torch.manual_seed(1)
    tile = torch.rand(3, 4, 4)
    pattern = tile.repeat(1, 8, 8)[None]  # 1×3×32×32
    out = separable_filter(pattern, (0.125, 0.25, 0.25, 0.25, 0.125))
    inner = out[..., 2:-2, 2:-2]
    torch.testing.assert_close(inner, tile.mean(dim=(1, 2)).view(1, 3, 1, 1).expand_as(inner), atol=1e-6, rtol=0)
    ramp = torch.arange(32.0).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    torch.testing.assert_close(separable_filter(ramp, (0.125, 0.25, 0.25, 0.25, 0.125))[..., 2:-2], ramp[..., 2:-2])


def test_even_taps_rejected() -> None:
    with pytest.raises(ValueError, match="odd"):
        separable_filter(torch.zeros(1, 1, 4, 4), (0.5, 0.5))


@pytest.mark.parametrize("shape", [(2, 3, 11, 17), (1, 1, 1, 1), (1, 2, 2, 3), (3, 4, 5), (1, 3, 40, 3)])
def test_the_opencv_path_equals_the_shifted_views(shape: tuple[int, ...]) -> None:
    """A float32 CPU tensor without gradient goes through OpenCV; it must give the shifted-view sum (the path a
    tensor that requires grad takes), at any size (smaller than the kernel too), for C×H×W as for N×C×H×W, and for a
    non-contiguous input, which it leaves untouched."""
    torch.manual_seed(2)
    taps = (0.125, 0.25, 0.25, 0.25, 0.125)
    x = torch.rand(*shape)
    ref = separable_filter(x.clone().requires_grad_(True), taps).detach()
    fast = separable_filter(x, taps)
    assert fast.shape == x.shape and fast.dtype == torch.float32
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-6)
    t = x.transpose(-1, -2)  # non-contiguous view
    before = t.clone()
    torch.testing.assert_close(separable_filter(t, taps),
                               separable_filter(t.clone().requires_grad_(True), taps).detach(), atol=1e-6, rtol=1e-6)
    assert torch.equal(t, before)
