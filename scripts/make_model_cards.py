"""Adds a before/after picture (frames of samples/clip.mp4) to each shipped model's card.

    python scripts/make_model_cards.py [--models models] [--times 0.7,2.2,3.7] [--vgg-weights VGG]
        [--quality ../shared] [--only NAME,...]

Writes ``models/NAME_before_after.jpg`` (input row above the stylized row, ~640 px wide) and
(re)writes the "Before / after" section of ``models/NAME.md``; idempotent. With ``--quality SHARED`` (and
``--vgg-weights``), a model whose paintings are in ``SHARED/data/styles`` also gets the issue's quality
figures on the held-out photos (``benchmarks/bench_quality.py``: the middle frames of the shared clips at 384 px,
painting at 512 px) and ``models/NAME_heldout.jpg`` (photos above outputs; for a multi-style model one row per
photo, one column per style), in a "Quality on held-out photos" section. The arbitrary-style back end's
files (the decoder, the fast variant's student) are shown with ``samples/styles/stained_glass.jpg`` (AdaIN)
when ``--vgg-weights`` is given (they need VGG19 for the painting), and skipped otherwise.
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
QUALITY = "## Quality on held-out photos"


def quality_section(path: Path, stylizer: FeedForwardStylizer, shared: Path, vgg: str) -> str | None:
    """The held-out figures and picture of a one-style model (``None`` when its painting is not in ``shared``)."""
    import json

    from safetensors import safe_open

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_quality import held_out_photos

    from vidstyle.fidelity import StyleReference, mean_scores

    with safe_open(str(path), framework="pt") as f:
        card = json.loads((f.metadata() or {}).get("vidstyle.card", "{}"))
    images = card.get("style_images") or []
    painting = shared / "data" / "styles" / images[0] if len(images) == 1 else None
    if painting is None or not painting.is_file():
        return None
    ref = StyleReference(painting, vgg_weights=vgg)
    photos = held_out_photos(shared, 384)
    scores, tops, bottoms = [], [], []
    for _, img in photos:
        out = tensor_to_image(stylizer(image_to_tensor(img)[None])[0], np.uint8)
        scores.append(ref(out, img))
        size = (288, round(288 * img.shape[0] / img.shape[1]))
        tops.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        bottoms.append(cv2.resize(out, size, interpolation=cv2.INTER_AREA))
    height = max(t.shape[0] for t in tops)

    def row(cells: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0))) for c in cells], 1)

    sheet = np.concatenate([row(tops), row(bottoms)], 0)
    pic = path.with_name(f"{path.stem}_heldout.jpg")
    cv2.imwrite(str(pic), sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    m = mean_scores(scores)
    rows = "\n".join(f"| {name} | {s.style_ratio:.3f} | {s.texture_ratio:.3f} | {s.content_loss:.3f} |"
                     for (name, _), s in zip(photos, scores))
    return (f"{QUALITY}\n\nThe middle frames of the shared clips (never in training) at 384 px, painting "
            f"`{painting.name}` at 512 px (`python scripts/make_model_cards.py --quality ../shared --vgg-weights VGG`; "
            "definitions in docs/architecture.md, \"Metrics\"; lower style and texture ratios are more of the "
            "painting, 1 is none):\n\n| photo | style ratio | texture ratio | content |\n|---|---:|---:|---:|\n"
            f"{rows}\n| **mean** | **{m.style_ratio:.3f}** | **{m.texture_ratio:.3f}** | **{m.content_loss:.3f}** |\n\n"
            f"![held-out photos and outputs]({pic.name})\n")


def multi_quality_section(path: Path, shared: Path, vgg: str) -> str | None:
    """The held-out figures of each style of a multi-style model, and a sheet: one row per photo (the photo, then
    each style's output), a header row with the paintings (``None`` when a painting is not in ``shared``)."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_quality import held_out_photos

    from vidstyle.fidelity import StyleReference, mean_scores
    from vidstyle.nets.registry import load_model

    model = load_model(path)
    styles, images = model.styles[1:], model.metadata.get("style_images") or []
    paintings = [shared / "data" / "styles" / name for name in images]
    if len(paintings) != len(styles) or not all(p.is_file() for p in paintings):
        return None
    photos = held_out_photos(shared, 384)
    cell = 200
    size = (cell, round(cell * photos[0][1].shape[0] / photos[0][1].shape[1]))

    def fit(img: np.ndarray) -> np.ndarray:  # inside cell × size[1], aspect kept, padded white
        k = min(cell / img.shape[1], size[1] / img.shape[0])
        out = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_AREA)
        return np.pad(out, ((0, size[1] - out.shape[0]), (0, cell - out.shape[1]), (0, 0)), constant_values=255)

    rows = [[np.full((size[1], cell, 3), 255, np.uint8)] + [fit(cv2.imread(str(p))[:, :, ::-1]) for p in paintings]]
    for _, img in photos:
        rows.append([fit(img)])
    lines = []
    for slot, (style, painting) in enumerate(zip(styles, paintings), start=1):
        ref = StyleReference(painting, vgg_weights=vgg)
        mix = torch.zeros(len(model.styles))
        mix[slot] = 1.0
        scores = []
        for k, (_, img) in enumerate(photos):
            with torch.inference_mode():
                out = tensor_to_image(model(image_to_tensor(img)[None], mix[None])[0], np.uint8)
            scores.append(ref(out, img))
            rows[k + 1].append(fit(out))
        m = mean_scores(scores)
        lines.append(f"| {style} | `{painting.name}` | {m.style_ratio:.3f} | {m.texture_ratio:.3f} | {m.content_loss:.3f} |")
    sheet = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    pic = path.with_name(f"{path.stem}_heldout.jpg")
    cv2.imwrite(str(pic), sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return (f"{QUALITY}\n\nEach style alone (`--style-mix NAME`) on the middle frames of the shared clips (never in "
            "training) at 384 px, the painting at 512 px; means over the four photos (`python scripts/make_model_cards.py "
            "--quality ../shared --vgg-weights VGG`; definitions in docs/architecture.md, \"Metrics\"; lower style and "
            "texture ratios are more of the painting, 1 is none):\n\n| style | painting | style ratio | texture ratio | "
            "content |\n|---|---|---:|---:|---:|\n" + "\n".join(lines) +
            f"\n\n![the paintings (top) and each held-out photo (left) in each style]({pic.name})\n")


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
    ap.add_argument("--vgg-weights", default=None, help="VGG19 weights for the decoder and student files")
    ap.add_argument("--quality", default=None, metavar="SHARED", help="add the held-out quality figures (needs --vgg-weights)")
    ap.add_argument("--only", default=None, metavar="NAME,...", help="only these models")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    frames = sample_frames([float(t) for t in args.times.split(",")])
    small = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in frames]
    from safetensors import safe_open

    from vidstyle.nets.student import is_student_file

    def arbitrary_file(path: Path) -> bool:  # the arbitrary back end's decoder or student, not a style network
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("vidstyle.architecture") in ("decoder", "student")

    painting = ROOT / "samples" / "styles" / "stained_glass.jpg"
    for path in sorted(Path(args.models).glob("*.safetensors")):
        if only is not None and path.stem not in only:
            continue
        arbitrary = arbitrary_file(path)
        if arbitrary and not args.vgg_weights:
            print(f"{path.name}: skipped (an arbitrary-style file: give --vgg-weights)")
            continue
        what = "this model's output"
        if arbitrary:
            from vidstyle.options import StyleImage
            from vidstyle.stylize.arbitrary import build_arbitrary_model

            model = build_arbitrary_model(styles=[StyleImage(path=str(painting))], method="adain", decoder=str(path),
                                          vgg_weights=args.vgg_weights, fast=is_student_file(path))
            stylizer = FeedForwardStylizer(model=model, device="cpu")
            what = f"the output with `samples/styles/{painting.name}` (AdaIN)"
        else:
            stylizer = FeedForwardStylizer(model=path, device="cpu")
        outs = [tensor_to_image(stylizer(image_to_tensor(f)[None])[0], np.uint8) for f in frames]
        outs = [cv2.resize(o, (320, 180), interpolation=cv2.INTER_AREA) for o in outs]
        sheet = np.concatenate([np.concatenate(small, 1), np.concatenate(outs, 1)], 0)
        pic = path.with_name(f"{path.stem}_before_after.jpg")
        cv2.imwrite(str(pic), sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        card = path.with_suffix(".md")
        text = card.read_text() if card.is_file() else f"# {path.stem}\n"
        quality = text.split(QUALITY)[1].split(MARK)[0].strip() if QUALITY in text else None
        text = text.split(QUALITY)[0].split(MARK)[0].rstrip() + "\n\n"
        if args.quality and args.vgg_weights and not arbitrary:
            fresh = (multi_quality_section(path, Path(args.quality), args.vgg_weights) if stylizer.styles else
                     quality_section(path, stylizer, Path(args.quality), args.vgg_weights))
            quality = fresh.split(QUALITY)[1].strip() if fresh else quality
        if quality:
            text += f"{QUALITY}\n\n{quality}\n\n"
        if stylizer.styles:
            what = f"its first style, {stylizer.styles[1]}"
        text += (f"{MARK}\n\nFrames of `samples/clip.mp4` at {args.times} s (top) and {what} "
                 f"(bottom, per frame, no stabilisation):\n\n![before and after]({pic.name})\n")
        card.write_text(text)
        print(f"{card}: {pic.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
