"""Adds a before/after picture (frames of samples/clip.mp4) to each shipped model's card.

    python scripts/make_model_cards.py [--models models] [--times 0.7,2.2,3.7]

Writes ``models/NAME_before_after.jpg`` (input row above the stylized row, ~640 px wide) and
(re)writes the "Before / after" section of ``models/NAME.md``; idempotent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidstyle.io import open_source  # noqa: E402
from vidstyle.stylize.feedforward import FeedForwardStylizer, image_to_tensor, tensor_to_image  # noqa: E402

MARK = "## Before / after"


def sample_frames(times: list[float]) -> list[np.ndarray]:
    frames = []
    with open_source(ROOT / "samples" / "clip.mp4") as src:
        for f in src:
            t = f.time or 0.0
            if times and t + 1e-6 >= times[0]:
                frames.append(f.image)
                times = times[1:]
            if not times:
                break
    return frames


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--times", default="0.7,2.2,3.7")
    args = ap.parse_args()
    frames = sample_frames([float(t) for t in args.times.split(",")])
    small = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in frames]
    for path in sorted(Path(args.models).glob("*.safetensors")):
        stylizer = FeedForwardStylizer(model=path, device="cpu")
        outs = [tensor_to_image(stylizer(image_to_tensor(f)[None])[0], np.uint8) for f in frames]
        outs = [cv2.resize(o, (320, 180), interpolation=cv2.INTER_AREA) for o in outs]
        sheet = np.concatenate([np.concatenate(small, 1), np.concatenate(outs, 1)], 0)
        pic = path.with_name(f"{path.stem}_before_after.jpg")
        cv2.imwrite(str(pic), sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        card = path.with_suffix(".md")
        text = card.read_text() if card.is_file() else f"# {path.stem}\n"
        text = text.split(MARK)[0].rstrip() + "\n\n"
        text += (f"{MARK}\n\nFrames of `samples/clip.mp4` at {args.times} s (top) and this model's output "
                 f"(bottom, per frame, no stabilisation):\n\n![before and after]({pic.name})\n")
        card.write_text(text)
        print(f"{card}: {pic.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
