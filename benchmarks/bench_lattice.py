"""How much of a model's fine texture is a fixed 4×4 pattern (the sub-pixel output's lattice), on the held-out photos.

For each output (the middle frames of the shared clips at 384 px, as ``bench_quality.py``): the luminance's high-pass
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
    print("| model | lattice share (mean) | per photo |\n|---|---:|---|")
    for spec in args.models.split(","):
        path, _, style = spec.partition("#")
        model = load_model(path)
        mix = None
        if style:
            mix = torch.zeros(1, len(model.styles))
            mix[0, model.styles.index(style)] = 1.0
        values = []
        for _, img in photos:
            with torch.inference_mode():
                x = image_to_tensor(img)[None]
                out = model(x, mix) if mix is not None else model(x)
            values.append(lattice_share(tensor_to_image(out[0], np.uint8)))
        print(f"| {spec} | {np.mean(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
