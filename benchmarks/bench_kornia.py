"""kornia against OpenCV / own torch code for the few operations vidstyle does on the torch side.

One-off micro-measurement at 640×360 (float32, CPU, one thread): median of ``timeit`` repeats, and the
largest absolute difference from the reference implementation. docs/kornia.md holds the numbers.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296 python benchmarks/bench_kornia.py
"""

from __future__ import annotations

import statistics
import timeit

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.filtering import separable_filter
from vidstyle.flow.warping import flow_to_grid


def ms(fn, number: int = 20, repeat: int = 5) -> float:
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def main() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    h, w = 360, 640
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=g)
    hwc = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    weights = (0.299, 0.587, 0.114)
    rows = []

    def row(name: str, ref: tuple[str, object], cand: tuple[str, object], out_ref, out_cand) -> None:
        t_ref, t_cand = ms(ref[1]), ms(cand[1])
        diff = float(np.abs(np.asarray(out_ref, np.float64) - np.asarray(out_cand, np.float64)).max())
        rows.append((name, ref[0], t_ref, cand[0], t_cand, t_cand / t_ref, diff))

    # luma (BT.601) of an N×3×H×W tensor
    own_luma = lambda: x[:, 0:1] * weights[0] + x[:, 1:2] * weights[1] + x[:, 2:3] * weights[2]  # noqa: E731
    k_luma = lambda: kornia.color.rgb_to_grayscale(x)  # noqa: E731
    row("luma (torch)", ("own weighted sum", own_luma), ("kornia.color.rgb_to_grayscale", k_luma),
        own_luma().numpy(), k_luma().numpy())

    # YUV
    def own_yuv() -> torch.Tensor:
        y = own_luma()
        return torch.cat([y, 0.492 * (x[:, 2:3] - y), 0.877 * (x[:, 0:1] - y)], dim=1)

    k_yuv = lambda: kornia.color.rgb_to_yuv(x)  # noqa: E731
    row("rgb→yuv (torch)", ("own", own_yuv), ("kornia.color.rgb_to_yuv", k_yuv), own_yuv().numpy(), k_yuv().numpy())
    from vidstyle.colour import rgb_to_yuv

    row("rgb→yuv (torch)", ("own", own_yuv), ("own U, V on the kornia Y (vidstyle.colour)", lambda: rgb_to_yuv(x)),
        own_yuv().numpy(), rgb_to_yuv(x).numpy())
    small = torch.rand(1, 3, 90, 160, generator=g)
    own_small = lambda: small[:, 0:1] * weights[0] + small[:, 1:2] * weights[1] + small[:, 2:3] * weights[2]  # noqa: E731
    k_small = lambda: kornia.color.rgb_to_grayscale(small)  # noqa: E731
    row("luma (torch) at 160×90", ("own weighted sum", own_small), ("kornia.color.rgb_to_grayscale", k_small),
        own_small().numpy(), k_small().numpy())

    # Gaussian blur σ = 1 (radius 3 taps as vidstyle.stylize.temporal._gauss_kernel), replicate borders
    sigma, radius = 1.0, 3
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-(t * t) / (2 * sigma * sigma))
    taps = (taps / taps.sum()).tolist()
    own_blur = lambda: separable_filter(x, taps)  # noqa: E731
    k_blur = lambda: kornia.filters.gaussian_blur2d(x, (2 * radius + 1, 2 * radius + 1), (sigma, sigma),  # noqa: E731
                                                    border_type="replicate")
    cv_blur = lambda: cv2.GaussianBlur(hwc, (2 * radius + 1, 2 * radius + 1), sigma,  # noqa: E731
                                       borderType=cv2.BORDER_REPLICATE)
    row("gaussian blur σ1 7 taps", ("own separable_filter", own_blur), ("kornia.filters.gaussian_blur2d", k_blur),
        own_blur().numpy(), k_blur().numpy())
    row("gaussian blur σ1 7 taps", ("own separable_filter", own_blur), ("cv2.GaussianBlur (H×W×3)", cv_blur),
        own_blur()[0].permute(1, 2, 0).numpy(), cv_blur())

    # 4-neighbour Laplacian of the luma, replicate borders
    y = own_luma()

    def own_lap() -> torch.Tensor:
        p = F.pad(y, (1, 1, 1, 1), mode="replicate")
        return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4.0 * p[..., 1:-1, 1:-1]

    k4 = torch.tensor([[[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]])
    k_lap4 = lambda: kornia.filters.filter2d(y, k4, border_type="replicate")  # noqa: E731
    k_lap = lambda: kornia.filters.laplacian(y, 3, border_type="replicate", normalized=False)  # noqa: E731
    y_np = np.ascontiguousarray(y[0, 0].numpy())
    cv_lap = lambda: cv2.Laplacian(y_np, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)  # noqa: E731
    row("laplacian 4-nbr", ("own shifted views", own_lap), ("kornia.filters.filter2d 4-nbr kernel", k_lap4),
        own_lap().numpy(), k_lap4().numpy())
    row("laplacian", ("own shifted views (4-nbr)", own_lap), ("kornia.filters.laplacian k=3 (8-nbr)", k_lap),
        own_lap().numpy(), k_lap().numpy())
    row("laplacian 4-nbr", ("own shifted views", own_lap), ("cv2.Laplacian ksize=1", cv_lap),
        own_lap()[0, 0].numpy(), cv_lap())

    # backward warp, bilinear, border padding
    flow = torch.randn(1, 2, h, w, generator=g) * 3.0
    own_warp = lambda: F.grid_sample(x, flow_to_grid(flow), mode="bilinear", padding_mode="border",  # noqa: E731
                                     align_corners=True)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    k_warp = lambda: kornia.geometry.transform.remap(x, (xs + flow[0, 0])[None], (ys + flow[0, 1])[None],  # noqa: E731
                                                     mode="bilinear", padding_mode="border", align_corners=True)
    row("warp bilinear", ("grid_sample + flow_to_grid", own_warp), ("kornia.geometry.transform.remap", k_warp),
        own_warp().numpy(), k_warp().numpy())

    print(f"torch {torch.__version__}, kornia {kornia.__version__}, OpenCV {cv2.__version__}; {w}×{h} float32, 1 thread")
    print("| operation | reference | ms | candidate | ms | candidate / reference | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, rn, rt, cn, ct, ratio, diff in rows:
        print(f"| {name} | {rn} | {rt:.2f} | {cn} | {ct:.2f} | {ratio:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
