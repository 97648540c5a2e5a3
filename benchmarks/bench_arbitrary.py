"""Arbitrary-style transfer at relu3_1: AdaIN, WCT and style swap with a trained decoder.

Stylizes the 4 held-out frames (cockatoo_60f.mp4 frame 30 and realshort.mp4 frame 18, 0-based; the 6th
PNG of sintel_raft_demo/ and the 5th of middlebury_rubberwhale/; each at 384 px long side) with 6
paintings analysed at 512 px, and reports per method (means over frames × styles):

* style ratio: Σ_l ‖G(out) − G(painting)‖²_F over relu1_2, relu2_2, relu3_3 (G = F·Fᵀ/(C·H·W),
  ``vidstyle.losses.style_loss(..., reduction="sum")``), the output's ÷ the photo's;
* texture ratio: the same on grey images (luminance replicated to 3 channels);
* content: mean over relu2_2, relu3_3 of MSE(F(out), F(photo)) / mean(F(photo)²);

plus the decoder's reconstruction PSNR on the frames, and writes a contact sheet (``--sheet``).

    python benchmarks/bench_arbitrary.py --decoder /work/train/decoder_relu31.safetensors \\
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors --sheet /tmp/arbitrary.png

``--decoder`` may also be a training checkpoint (``NAME.ckpt.safetensors``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.colour import luminance_image  # noqa: E402
from vidstyle.io import open_source  # noqa: E402
from vidstyle.losses import gram_matrix, style_loss  # noqa: E402
from vidstyle.nets.decoder import VGGEncoder, load_decoder  # noqa: E402
from vidstyle.nets.vgg import VGGFeatures, load_vgg_state  # noqa: E402
from vidstyle.stylize.transforms import adain, prepare_style, style_image_at, style_swap, wct  # noqa: E402
from vidstyle.train import load_image  # noqa: E402

STYLES = ("hokusai_great_wave.jpg", "vangogh_starry_night.jpg", "munch_the_scream.jpg",
          "kandinsky_composition_vii.jpg", "monet_charing_cross_bridge.jpg", "gauguin_te_fare.jpg")
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3")
CONTENT_LAYERS = ("relu2_2", "relu3_3")
METHODS = {"adain": adain, "wct": wct, "swap": style_swap}


def _video_frame(path: Path, index: int) -> np.ndarray:
    from vidstyle.io.imagefiles import convert_depth

    with open_source(str(path)) as src:
        for i, f in enumerate(src):
            if i == index:
                img = f.image
                return convert_depth(img, 8) if img.dtype != np.uint8 else img
    raise SystemExit(f"{path} has fewer than {index + 1} frames")


def held_out_frames(video: Path, long_side: int) -> dict[str, torch.Tensor]:
    """The 4 held-out frames as 1×3×H×W in [0, 1] at ``long_side`` px."""
    raw = {
        "cockatoo_f30": _video_frame(video / "cockatoo_60f.mp4", 30),
        "realshort_f18": _video_frame(video / "realshort.mp4", 18),
    }
    out = {}
    for name, img in raw.items():
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        out[name] = style_image_at(t, long_side=long_side)
    for name, folder, k in (("sintel_6th", "sintel_raft_demo", 5), ("rubberwhale_5th", "middlebury_rubberwhale", 4)):
        png = sorted((video / folder).glob("*.png"))[k]
        out[name] = load_image(png, max_side=long_side).unsqueeze(0)
    return out


def _to_bgr8(x: torch.Tensor) -> np.ndarray:
    return cv2.cvtColor((x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def _tile(img: np.ndarray, size: int, label: str) -> np.ndarray:
    h, w = img.shape[:2]
    s = size / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 255, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    cv2.putText(canvas, label[:28], (3, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(canvas, label[:28], (3, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decoder", required=True, help="relu3_1 decoder file or training checkpoint")
    ap.add_argument("--vgg-weights", default=None)
    ap.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "video"))
    ap.add_argument("--styles-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "styles"))
    ap.add_argument("--styles", default=",".join(STYLES), help="comma-separated painting files in --styles-dir")
    ap.add_argument("--methods", default="adain,wct,swap")
    ap.add_argument("--frame-size", type=int, default=384)
    ap.add_argument("--style-size", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sheet", default=None, help="contact sheet PNG")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    state = load_vgg_state(weights=args.vgg_weights)
    encoder = VGGEncoder(layer="relu3_1", state=state).to(dev)
    decoder = load_decoder(args.decoder, layer="relu3_1").to(dev)
    loss_net = VGGFeatures(layers=tuple(dict.fromkeys(STYLE_LAYERS + CONTENT_LAYERS)), state=state, pooling="max").to(dev)  # as vidstyle.fidelity: the published VGG19
    frames = held_out_frames(Path(args.video), args.frame_size)
    styles = [s for s in args.styles.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]

    def feats(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return loss_net(x.to(dev))

    def style_dist(x: torch.Tensor, targets: dict[str, torch.Tensor]) -> float:
        return float(style_loss(feats(x), targets, reduction="sum"))

    rows: list[dict[str, object]] = []
    tiles: dict[tuple[str, str, str], np.ndarray] = {}
    psnrs = []
    with torch.no_grad():
        paintings = {s: style_image_at(load_image(Path(args.styles_dir) / s).unsqueeze(0), long_side=args.style_size) for s in styles}
        stats = {}
        for s, img in paintings.items():
            f = encoder(img.to(dev))
            stats[s] = {m: prepare_style(f, method=m) for m in methods}  # once per painting, reused for every frame
        for fname, photo in frames.items():
            x = photo.to(dev)
            cf = encoder(x)
            size = tuple(x.shape[-2:])
            rec = decoder(cf, size=size)
            psnrs.append(10 * math.log10(1 / max(float((rec - x).pow(2).mean()), 1e-12)))
            fp = feats(x)
            grey_photo = luminance_image(x)
            for s, img in paintings.items():
                targets = {k: gram_matrix(v) for k, v in feats(img).items() if k in STYLE_LAYERS}
                grey_targets = {k: gram_matrix(v) for k, v in feats(luminance_image(img.to(dev))).items() if k in STYLE_LAYERS}
                base, grey_base = style_dist(x, targets), style_dist(grey_photo, grey_targets)
                for m in methods:
                    t0 = time.perf_counter()
                    out = decoder(METHODS[m](cf, stats[s][m]), size=size)
                    seconds = time.perf_counter() - t0
                    fo = feats(out)
                    content = sum(float(((fo[k] - fp[k]) ** 2).mean() / (fp[k] ** 2).mean()) for k in CONTENT_LAYERS) / len(CONTENT_LAYERS)
                    rows.append({"frame": fname, "style": s, "method": m, "seconds": round(seconds, 3),
                                 "style_ratio": style_dist(out, targets) / base,
                                 "texture_ratio": style_dist(luminance_image(out), grey_targets) / grey_base,
                                 "content": content})
                    tiles[(fname, m, s)] = _to_bgr8(out.cpu())
            tiles[(fname, "photo", "")] = _to_bgr8(x.cpu())
            tiles[(fname, "recon", "")] = _to_bgr8(rec.cpu())

    print(f"decoder {args.decoder}: reconstruction PSNR {sum(psnrs) / len(psnrs):.2f} dB on {len(frames)} frames")
    print(f"{'method':8s} {'style ratio':>12s} {'texture ratio':>14s} {'content':>9s} {'s/frame':>8s}")
    summary = {}
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        mean = {k: sum(float(r[k]) for r in sel) / len(sel) for k in ("style_ratio", "texture_ratio", "content", "seconds")}
        summary[m] = mean
        print(f"{m:8s} {mean['style_ratio']:12.3f} {mean['texture_ratio']:14.3f} {mean['content']:9.3f} {mean['seconds']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"psnr": psnrs, "summary": summary, "rows": rows}, indent=1) + "\n")
    if args.sheet:
        t = 160
        header = [_tile(np.full((t, t, 3), 255, np.uint8), t, "")] * 2 + [_tile(_to_bgr8(paintings[s]), t, Path(s).stem) for s in styles]
        lines = [np.hstack(header)]
        for fname in frames:
            for m in methods:
                first = [_tile(tiles[(fname, "photo", "")], t, fname), _tile(tiles[(fname, "recon", "")], t, "decoded")]
                lines.append(np.hstack(first + [_tile(tiles[(fname, m, s)], t, m) for s in styles]))
        cv2.imwrite(args.sheet, np.vstack(lines))
        print(f"sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
