"""The pictures of docs/masks.md: a masked clip, two regions, stroke size and direction.

    python scripts/make_mask_pictures.py \\
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors \\
        --styles-dir ../shared/data/styles --out docs/images

* ``mask_clip.jpg``: the first shot of samples/clip.mp4 (the coffee cup) stylised with ``starry_tiny`` only
  inside a matte of the cup and saucer. The matte is made here: GrabCut on the first frame, blurred (soft
  edge), then carried frame to frame along the clip's optical flow, so it moves with the footage; the run is
  ``vidstyle stylize samples/clip.mp4 --end 45f --mask mattes/matte.%04d.png`` with the default
  stabilisation. Rows: frames 0 and 40 (photo, matte, result), then 2x crops of the cup's rim.
* ``regions_arbitrary.jpg``: one frame, the arbitrary back end (shipped decoder, WCT) with two paintings:
  one inside the cup's matte (``--style A@cup.png``), the other everywhere else (``--style B``).
* ``regions_sequence.jpg``: the same two paintings with the cup's matte as a *sequence* (``--style
  A@cup.%04d.png --style B``, the GrabCut matte carried along the flow, one file per frame), frames 0-40
  through ``vidstyle stylize`` with the default stabilisation; rows: frames 0, 20, 40 (photo, matte, result).
* ``control_scale_orient.jpg``: ``--style-scale`` 0.5 / 1 / 2 for the arbitrary back end (WCT, Van Gogh's
  Starry Night over the Rhone) and for a feed-forward network (``starry_tiny``), and ``--style-rotate`` 0 / 90 for
  the arbitrary back end; 400×300 parts of frame 20 at full resolution.

Every picture is a JPEG of a few hundred KiB; the mattes and frames go to a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # the pictures use starry_tiny, a retired model kept in benchmarks/baselines/

from vidstyle.io import open_source, read_image  # noqa: E402

CLIP = ROOT / "samples" / "clip.mp4"
SHOT = 45  # the coffee cup's frames (0-based 0..44)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 8 + 9 * len(text)), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.round(a * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _crop2x(img: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    return cv2.resize(img[y : y + h, x : x + w], (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)


def cup_mattes(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A soft matte of the cup and saucer for every frame: GrabCut on frame 0, carried along the flow."""
    from vidstyle.flow.estimators import make_flow_estimator
    from vidstyle.flow.warping import warp_numpy

    f0 = frames[0]
    h, w = f0.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    rect = (int(0.05 * w), int(0.0 * h), int(0.78 * w), int(0.98 * h))
    cv2.grabCut(cv2.cvtColor(f0, cv2.COLOR_RGB2BGR), mask, rect, bgd, fgd, 6, cv2.GC_INIT_WITH_RECT)
    hard = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard)  # the largest blob, holes filled
    keep = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8) if n > 1 else hard
    keep = cv2.morphologyEx(keep, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    alpha = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), 3.0)
    est = make_flow_estimator("dis-medium")
    out = [alpha]
    for prev, cur in zip(frames, frames[1:]):
        flow = est(cur, prev)  # backward: where each pixel of cur was in prev
        out.append(np.clip(warp_numpy(np.ascontiguousarray(out[-1]), flow), 0, 1))
    return out


def mask_picture(frames: list[np.ndarray], mattes: list[np.ndarray], tmp: Path, out: Path) -> None:
    from vidstyle.api import stylize_video

    folder = tmp / "mattes"
    folder.mkdir()
    for i, a in enumerate(mattes):
        cv2.imwrite(str(folder / f"matte.{i:04d}.png"), np.round(a * 65535).astype(np.uint16))
    stylize_video(CLIP, tmp / "masked" / "o.%04d.png", end=f"{SHOT}f", model="starry_tiny",
                  mask=str(folder / "matte.%04d.png"))
    rows = []
    for i in (0, 40):
        res = read_image(tmp / "masked" / f"o.{i:04d}.png")
        rows.append(np.concatenate([_label(frames[i], f"frame {i}"), _label(_grey(mattes[i]), "matte (soft)"),
                                    _label(res, "--mask: starry_tiny inside")], axis=1))
    res = read_image(tmp / "masked" / "o.0040.png")
    ys, xs = np.nonzero((mattes[40] > 0.2) & (mattes[40] < 0.8))
    y, x = int(np.clip(np.median(ys[xs > np.median(xs)]) - 80, 0, 360 - 160)), int(np.clip(xs.max() - 240, 0, 640 - 320))
    crops = [_crop2x(img, y, x, 160, 320) for img in (frames[40], _grey(mattes[40]), res)]
    rows.append(np.concatenate([_label(crops[0], "2x crop: photo"), _label(crops[1], "matte"),
                                _label(crops[2], "result: soft edge")], axis=1)[:, : rows[0].shape[1]])
    sheet = np.concatenate([r[:, : rows[0].shape[1]] for r in rows], axis=0)
    cv2.imwrite(str(out / "mask_clip.jpg"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def _arbitrary(image: np.ndarray, styles: list[str], *, vgg: str, method: str = "wct", **kw: object) -> np.ndarray:
    from vidstyle.api import build_stages
    from vidstyle.frame import Frame

    stages = build_stages(backend="arbitrary", style=styles, method=method, vgg_weights=vgg, stabilize=0, **kw)
    try:
        return stages[0].process(Frame(index=0, image=image))[0].stylized
    finally:
        stages[0].close()


def regions_picture(frame: np.ndarray, matte: np.ndarray, styles_dir: Path, vgg: str, tmp: Path, out: Path) -> None:
    a, b = styles_dir / "vangogh_starry_night.jpg", styles_dir / "munch_the_scream.jpg"
    cv2.imwrite(str(tmp / "cup.png"), np.round(matte * 255).astype(np.uint8))
    two = _arbitrary(frame, [f"{a}@{tmp / 'cup.png'}", str(b)], vgg=vgg)
    only_a, only_b = _arbitrary(frame, [str(a)], vgg=vgg), _arbitrary(frame, [str(b)], vgg=vgg)

    def thumb(path: Path) -> np.ndarray:
        img = read_image(path)
        s = 360 / img.shape[0]
        return cv2.resize(img, (round(img.shape[1] * s), 360), interpolation=cv2.INTER_AREA)[:, :320]

    top = np.concatenate([_label(frame, "photo"), _label(_grey(matte), "region matte (cup)"),
                          _label(two, "--style A@cup.png --style B")], axis=1)
    bottom = np.concatenate([_label(thumb(a), "A: Van Gogh"), _label(thumb(b), "B: Munch"),
                             _label(only_a, "A everywhere"), _label(only_b, "B everywhere")], axis=1)
    bottom = cv2.resize(bottom, (top.shape[1], round(bottom.shape[0] * top.shape[1] / bottom.shape[1])),
                        interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero((matte > 0.3) & (matte < 0.7))
    y, x = int(np.clip(np.median(ys[xs > np.median(xs)]) - 80, 0, 360 - 160)), int(np.clip(xs.max() - 240, 0, 640 - 320))
    crop = np.concatenate([_label(_crop2x(frame, y, x, 160, 320), "2x crop: photo"),
                           _label(_crop2x(_grey(matte), y, x, 160, 320), "matte"),
                           _label(_crop2x(two, y, x, 160, 320), "two regions")], axis=1)[:, : top.shape[1]]
    sheet = np.concatenate([top, crop, bottom], axis=0)
    cv2.imwrite(str(out / "regions_arbitrary.jpg"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def regions_sequence_picture(frames: list[np.ndarray], mattes: list[np.ndarray], styles_dir: Path, vgg: str,
                             tmp: Path, out: Path) -> None:
    from vidstyle.api import stylize_video

    a, b = styles_dir / "vangogh_starry_night.jpg", styles_dir / "munch_the_scream.jpg"
    (tmp / "seq").mkdir(exist_ok=True)
    for i, m in enumerate(mattes[:41]):
        cv2.imwrite(str(tmp / "seq" / f"cup.{i:04d}.png"), np.round(m * 255).astype(np.uint8))
    stylize_video(CLIP, tmp / "seq" / "o.%04d.png", end="41f", backend="arbitrary", method="wct", vgg_weights=vgg,
                  style=[f"{a}@{tmp / 'seq' / 'cup.%04d.png'}", str(b)])
    rows = []
    for i in (0, 20, 40):
        rows.append(np.concatenate([_label(frames[i], f"frame {i}"), _label(_grey(mattes[i]), f"cup.{i:04d}.png"),
                                    _label(read_image(tmp / "seq" / f"o.{i:04d}.png"), "A@cup.%04d.png + B")], axis=1))
    sheet = np.concatenate(rows, axis=0)
    cv2.imwrite(str(out / "regions_sequence.jpg"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def control_picture(frame: np.ndarray, styles_dir: Path, vgg: str, out: Path) -> None:
    """Cells are a 400×300 part of the frame at full resolution (the saucer's rim and the table), so
    stroke size and direction show without resampling."""
    from vidstyle.api import stylize_image

    y, x, h, w = 30, 240, 300, 400
    painting = styles_dir / "vangogh_starry_night_over_the_rhone.png"

    def cell(img: np.ndarray, text: str) -> np.ndarray:
        return _label(np.ascontiguousarray(img[y : y + h, x : x + w]), text)

    row1 = [cell(_arbitrary(frame, [str(painting)], vgg=vgg, style_scale=s), f"arbitrary wct --style-scale {s:g}")
            for s in (0.5, 1.0, 2.0)]
    row2 = []
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "f.png"
        cv2.imwrite(str(src), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        for s in (0.5, 1.0, 2.0):
            stylize_image(src, Path(d) / f"s{s}.png", model="starry_tiny", style_scale=s)
            row2.append(cell(read_image(Path(d) / f"s{s}.png"), f"starry_tiny --style-scale {s:g}"))
    turned = [_arbitrary(frame, [str(painting)], vgg=vgg, style_rotate=deg) for deg in (0, 90)]
    row3 = [cell(img, f"arbitrary wct --style-rotate {deg}") for img, deg in zip(turned, (0, 90))]
    # 2x crops of the saucer (y 180-330, x 440-640 of the frame): the fine strokes turn with the painting
    row4 = [_label(_crop2x(img, 180, 440, 150, 200), f"2x crop, --style-rotate {deg}") for img, deg in zip(turned, (0, 90))]
    sty = read_image(painting)
    k = max(w / sty.shape[1], h / sty.shape[0])
    sty = cv2.resize(sty, (max(w, round(sty.shape[1] * k)), max(h, round(sty.shape[0] * k))), interpolation=cv2.INTER_AREA)
    row3.append(_label(np.ascontiguousarray(sty[:h, :w]), "the painting (Van Gogh, Rhone)"))
    row4.append(_label(_crop2x(sty, h - 150, 0, 150, 200), "2x crop of the painting"))
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in (row1, row2, row3, row4)], axis=0)
    cv2.imwrite(str(out / "control_scale_orient.jpg"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgg-weights", required=True)
    ap.add_argument("--styles-dir", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "images"))
    ap.add_argument("--only", choices=("mask", "regions", "sequence", "control"), default=None)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open_source(CLIP, end=f"{SHOT}f") as src:
        frames = [f.image for f in src]
    mattes = cup_mattes(frames)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "mask"):
            mask_picture(frames, mattes, tmp, out)
        if args.only in (None, "regions"):
            regions_picture(frames[20], mattes[20], Path(args.styles_dir), args.vgg_weights, tmp, out)
        if args.only in (None, "sequence"):
            regions_sequence_picture(frames, mattes, Path(args.styles_dir), args.vgg_weights, tmp, out)
    if args.only in (None, "control"):
        control_picture(frames[20], Path(args.styles_dir), args.vgg_weights, out)


if __name__ == "__main__":
    main()
