"""How much of a model's fine texture is locked to the 4×4 grid of its sub-pixel output (the lattice), on the held-out
photos, by two measures.

**Phase-energy imbalance** (the one that sees it; ``vidstyle.losses.lattice.phase_energy_imbalance``): the luminance's
neighbour differences grouped by ``x mod 4`` (and ``y mod 4``), the mean square of each group, and the coefficient of
variation of the four. Strokes whose contrast sits at the same positions of every block give a high value whatever
their colour or phase; the held-out photos themselves give 0.02–0.26 (the cockatoo frame's codec blocks are the
0.26).

**Fixed-pattern share** (the eighth session's): for each output (the middle frames of the shared clips at 384 px, as ``bench_quality.py``): the luminance's high-pass
(minus a Gaussian blur, σ 4 px), its mean at each of the 16 positions of the 4×4 grid over the whole image, and the
RMS of those 16 means divided by the high-pass std. A texture that does not follow the grid averages out (→ 0); a
pattern the network paints at fixed screen positions does not. It sees a lattice that is the same everywhere, not
one that changes phase from place to place, so the 2× crops stay the judge. White noise gives about 0.008 at
384×512 (the floor: the phase means of random texture), a pure 4×4 pattern 1.0.

    python benchmarks/bench_lattice.py --shared ../shared --models models/starry_student.safetensors,MULTI.safetensors#wave
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import held_out_photos  # noqa: E402

from vidstyle.losses.lattice import phase_energy_imbalance  # noqa: E402
from vidstyle.nets.registry import load_model  # noqa: E402
from vidstyle.stylize.feedforward import image_to_tensor, tensor_to_image  # noqa: E402


def lattice_share(image: np.ndarray, *, period: int = 4, sigma: float = 4.0) -> float:
    """RMS of the high-pass luminance's ``period``×``period`` phase means ÷ its std (RGB uint8 ``image``)."""
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    h, w = (y.shape[0] // period) * period, (y.shape[1] // period) * period
    hp = y[:h, :w] - cv2.GaussianBlur(y, (0, 0), sigma)[:h, :w]
    phases = hp.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(np.sqrt((phases ** 2).mean()) / (hp.std() + 1e-9))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--models", required=True, help="comma-separated MODEL[#STYLE]")
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos = held_out_photos(Path(args.shared), args.size)
    print("| model | imbalance x / y (mean) | per photo (x / y) | fixed-pattern share (mean) |\n|---|---:|---|---:|")
    photo_imb = [phase_energy_imbalance(image_to_tensor(img)) for _, img in photos]
    print(f"| the photos themselves | {np.mean([a for a, _ in photo_imb]):.3f} / {np.mean([b for _, b in photo_imb]):.3f} | "
          f"{', '.join(f'{a:.2f} / {b:.2f}' for a, b in photo_imb)} | "
          f"{np.mean([lattice_share(img) for _, img in photos]):.3f} |")
    for spec in args.models.split(","):
        path, _, style = spec.partition("#")
        model = load_model(path)
        mix = None
        if style:
            mix = torch.zeros(1, len(model.styles))
            mix[0, model.styles.index(style)] = 1.0
        values, imb = [], []
        for _, img in photos:
            with torch.inference_mode():
                x = image_to_tensor(img)[None]
                out = model(x, mix) if mix is not None else model(x)
            out8 = tensor_to_image(out[0], np.uint8)
            values.append(lattice_share(out8))
            imb.append(phase_energy_imbalance(image_to_tensor(out8)))
        print(f"| {spec} | {np.mean([a for a, _ in imb]):.3f} / {np.mean([b for _, b in imb]):.3f} | "
              f"{', '.join(f'{a:.2f} / {b:.2f}' for a, b in imb)} | {np.mean(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
