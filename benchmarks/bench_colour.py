"""Scene-linear highlights through a network trained on sRGB photos: three ways compared on a
linear test plate (values 0–4). A quality measurement (no timing).

The plate: frame 0 of ``samples/clip.mp4`` (the coffee cup, CC0), linearised and exposed up two
stops (×4), so its values run 0–4 and its bright parts lie above display white; converted to
ACEScg by the ACES studio config, as a film plate would arrive.

Ways of getting it to the network (sRGB in [0, 1]) and back:

* ``clip``: what vidstyle did without colour management: values above 1 cut off.
* ``tonemap``: extended Reinhard per channel, white at 4 (``y = x(1 + x/16)/(1 + x)``), inverted
  after the network.
* ``carry``: the shipped highlight-ratio carry (:mod:`vidstyle.colour.management`).

Measured for each, in linear Rec.709:

* round trip with the identity network (exact output): max relative error over all pixels and
  over the highlights (plate > 1);
* the same when the network's output is 8-bit (the identity rounded to 1/255): how much a
  network's smallest error grows on the way back (mean relative error on highlights, mid-tones);
* with a real model (``--model``, default ``starry_tiny``): the share of highlight pixels still
  above 1.0, the highlights' mean luminance ÷ the rest's (plate: the same ratio), and how much the
  picture the network sees changes in the un-clipped part (mean |Δ| in 8-bit levels against the
  plain sRGB of the plate's display range: 0 means the network sees the photo as it would
  without any highlight handling).

Writes ``--out`` (a contact sheet: plate, the three stylisations, at exposure 0 and −2 stops, with
a 2× crop of the brightest part).

    python benchmarks/bench_colour.py --out docs/images/colour_highlights.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with

from vidstyle.colour.management import ColourManagement, from_network, srgb_decode, srgb_encode, to_network

WHITE = 4.0


def reinhard(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 0)
    return x * (1 + x / WHITE**2) / (1 + x)


def reinhard_inverse(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0, 1)
    a, b, c = 1 / WHITE**2, 1 - y, -y
    return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)


def ways() -> dict[str, tuple]:
    def clip_in(lin: np.ndarray):
        return srgb_encode(np.clip(lin, 0, 1)), None

    def clip_out(s: np.ndarray, _: object) -> np.ndarray:
        return srgb_decode(s)

    def tm_in(lin: np.ndarray):
        return srgb_encode(reinhard(lin)), np.minimum(lin, 0)  # negatives carried as they are

    def tm_out(s: np.ndarray, neg: np.ndarray) -> np.ndarray:
        return reinhard_inverse(srgb_decode(s)) + neg

    return {"clip": (clip_in, clip_out), "tonemap": (tm_in, tm_out), "carry": (to_network, from_network)}


def luminance(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def display(lin: np.ndarray, stops: float) -> np.ndarray:
    return np.round(srgb_encode(np.clip(lin * 2.0**stops, 0, 1)) * 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="starry_tiny")
    ap.add_argument("--clip", default="samples/clip.mp4")
    ap.add_argument("--out", default=None, help="contact sheet (JPEG/PNG)")
    args = ap.parse_args()

    from vidstyle.io import open_source
    from vidstyle.stylize.feedforward import FeedForwardStage

    with open_source(args.clip) as src:
        photo = next(iter(src)).image
    lin709 = srgb_decode(photo.astype(np.float32) / 255) * WHITE
    cm = ColourManagement(input="Linear Rec.709 (sRGB)", output="ACEScg")
    plate = cm._apply(cm._out, lin709)  # the ACEScg plate (values 0–4)
    back_cm = ColourManagement(input="ACEScg", output="Linear Rec.709 (sRGB)")
    lin = back_cm._apply(back_cm._in, plate)  # what the shipped path works on
    hot = lin.max(axis=2) > 1
    print(f"plate {plate.shape[1]}x{plate.shape[0]} ACEScg, max {plate.max():.2f}, {hot.mean():.1%} of pixels above 1")
    stage = FeedForwardStage(model=args.model, stabilize=0.0, device="cpu")
    plain = srgb_encode(np.clip(lin, 0, 1))
    shown = {"plate": lin}
    print(f"{'way':8} | identity max rel (all / highlights) | 8-bit net: mean rel err highlights / mid-tones | "
          f"stylised: highlights > 1 | highlight÷rest luminance (plate {luminance(lin)[hot].mean() / luminance(lin)[~hot].mean():.2f}) | "
          "net input change in display range (levels)")
    for name, (into, back) in ways().items():
        net_in, carry = into(lin)
        ident = back(net_in, carry)
        rel = np.abs(ident - lin) / np.maximum(np.abs(lin), 1e-3)
        q = back(np.round(net_in * 255) / 255, carry)
        qrel = np.abs(q - lin).max(axis=2) / np.maximum(np.abs(lin).max(axis=2), 1e-3)
        mid = (~hot) & (lin.max(axis=2) > 0.05)
        styl = back(stage.stylize_image(np.ascontiguousarray(net_in, dtype=np.float32)), carry)
        kept = (styl.max(axis=2)[hot] > 1).mean()
        ratio = luminance(styl)[hot].mean() / luminance(styl)[~hot].mean()
        change = np.abs(net_in - plain)[~hot].mean() * 255
        print(f"{name:8} | {rel.max():.2e} / {rel[hot].max():.2e} | {qrel[hot].mean():.4f} / {qrel[mid].mean():.4f} | "
              f"{kept:.1%} | {ratio:.2f} | {change:.2f}")
        shown[name] = styl
    if args.out:
        import cv2

        rows = [np.concatenate([display(v, stops) for v in shown.values()], axis=1) for stops in (0, -2)]
        ys, xs = np.nonzero(hot)
        cy, cx = int(np.median(ys)), int(np.median(xs))
        H, W = lin.shape[:2]
        h, w = H // 2, W // 2  # a 2× crop fills a tile
        y0, x0 = min(max(0, cy - h // 2), H - h), min(max(0, cx - w // 2), W - w)
        crops = [cv2.resize(display(v, -2)[y0:y0 + h, x0:x0 + w], (W, H), interpolation=cv2.INTER_NEAREST)
                 for v in shown.values()]
        sheet = np.concatenate([*rows, np.concatenate(crops, axis=1)], axis=0)
        scale = 1200 / sheet.shape[1]
        sheet = cv2.resize(sheet, (1200, round(sheet.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(args.out, sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"columns: {', '.join(shown)}; rows: exposure 0, -2 stops, 2x crop at -2 stops -> {args.out}")


if __name__ == "__main__":
    main()
