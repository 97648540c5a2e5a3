"""Make the pictures of docs/control.md (issue 18): the style-loss family side by side, two regions,
a doodle (semantic maps), a portrait with and without the gain map (and its flow refinement), and the
optimisation back end's mask through the loss (``mask``: it also prints the soft edge's profile).

Content pictures are frames of samples/clip.mp4 (the project's own, CC0 photos); paintings are the
public-domain ones in ../shared/data/styles; the loss network is ../shared's conv1_1…conv3_4 VGG19.
Small sizes (``--size`` 256 px long side) and few iterations: the CPU is shared.

    python scripts/make_control_gallery.py --shared ../shared --only losses,regions,doodle,portrait,mask
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidstyle.io.imagefiles import read_image  # noqa: E402
from vidstyle.losses import STYLE_LOSSES  # noqa: E402
from vidstyle.stylize.guides import map_labels  # noqa: E402
from vidstyle.stylize.optim import OptimConfig, StyleOptimizer, optimize_image  # noqa: E402

OUT = ROOT / "docs" / "images"
FRAMES = {"coffee": 20, "cat": 70, "astronaut": 115}


def frame(name: str, size: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(ROOT / "samples" / "clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, FRAMES[name])
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("cannot read samples/clip.mp4")
    return fit(np.ascontiguousarray(bgr[..., ::-1]), size)


def fit(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = size / max(h, w)
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def to_u8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = to_u8(image).copy()
    cv2.rectangle(out, (0, 0), (8 + 7 * len(text), 16), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = []
    for r in range(0, len(tiles), cols):
        row = [np.pad(to_u8(t), ((0, h - t.shape[0]), (0, w - t.shape[1]), (0, 0)), constant_values=255)
               for t in tiles[r:r + cols]]
        row += [np.full((h, w, 3), 255, np.uint8)] * (cols - len(row))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def save(name: str, image: np.ndarray) -> None:
    path = OUT / name
    cv2.imwrite(str(path), cv2.cvtColor(to_u8(image), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path} {image.shape[1]}x{image.shape[0]}", flush=True)


def run(content: np.ndarray, styles: list[np.ndarray], cfg: OptimConfig, state: object, **kw: object) -> np.ndarray:
    t = time.perf_counter()
    opt = StyleOptimizer(styles=styles, config=cfg, vgg=state, device="cpu", **kw)  # type: ignore[arg-type]
    r = optimize_image(content, styles=(), optimizer=opt)
    print(f"  {cfg.style_loss}: {r.iterations} it, {time.perf_counter() - t:.0f} s, losses "
          + ", ".join(f"{k} {v:.3g}" for k, v in r.losses.items()), flush=True)
    return r.image


def losses(shared: Path, state: object, size: int, iterations: int) -> None:
    content = frame("cat", size)
    painting = read_image(shared / "data/styles/vangogh_starry_night.jpg")
    tiles = [label(content, "photo"), label(fit(painting, size), "painting")]
    for kind in STYLE_LOSSES:
        cfg = OptimConfig(iterations=iterations, scales=1, style_loss=kind)
        tiles.append(label(run(content, [painting], cfg, state), kind))
    save("control_losses.jpg", grid(tiles, 4))


def regions(shared: Path, state: object, size: int, iterations: int) -> None:
    content = frame("coffee", size)
    h, w = content.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    # a soft ellipse around the cup (left of centre in this frame), the rest for the other painting
    inside = ((xx - 0.42 * w) / (0.3 * w)) ** 2 + ((yy - 0.5 * h) / (0.42 * h)) ** 2
    matte = np.clip((1.15 - inside) / 0.3, 0, 1).astype(np.float32)
    # two paintings of opposite palettes, so the regions show: blue swirls in, orange-red bands out
    starry = read_image(shared / "data/styles/vangogh_starry_night.jpg")
    scream = read_image(shared / "data/styles/munch_the_scream.jpg")
    cfg = OptimConfig(iterations=iterations, scales=1)
    out = run(content, [starry, scream], cfg, state, style_mattes=[matte, 1 - matte])
    blend = run(content, [starry, scream], cfg, state)
    tiles = [label(content, "photo"), label(np.repeat(matte[..., None], 3, 2), "matte: starry / scream"),
             label(out, "two regions (guided Gram)"), label(blend, "no mattes: the styles blend")]
    save("control_regions.jpg", grid(tiles, 2))


def doodle(shared: Path, state: object, size: int, iterations: int) -> None:
    """The painting's map: its colours clustered into three labels (k-means), painted flat. The
    content map: a doodle with the same three colours; the content picture: the doodle painted with
    each label's mean colour in the painting."""
    painting = fit(read_image(shared / "data/styles/hokusai_great_wave.jpg"), size)
    blur = cv2.GaussianBlur(painting, (0, 0), 3).reshape(-1, 3).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.5)
    cv2.setRNGSeed(0)
    _, lab, centres = cv2.kmeans(blur, 3, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    palette = np.array([(230, 60, 60), (60, 200, 80), (60, 90, 230)], np.uint8)
    smap = palette[lab.reshape(painting.shape[:2])]
    h, w = 176, 256
    yy, xx = np.mgrid[0:h, 0:w]
    # which k-means label is sky (lightest), which foam/wave, which deep sea: by brightness
    order = np.argsort(centres.sum(1))  # dark → light
    sea, wave, sky = (int(order[0]), int(order[1]), int(order[2]))
    doodle_lab = np.full((h, w), sky)
    crest = 0.45 * h + 0.18 * h * np.sin(xx / w * 2 * np.pi * 1.2)
    doodle_lab[yy > crest] = wave
    doodle_lab[yy > crest + 0.22 * h] = sea
    cmap = palette[doodle_lab]
    masks, cmask, _ = map_labels([smap], cmap)
    content = centres[doodle_lab].astype(np.float32) / 255.0
    cfg = OptimConfig(iterations=iterations, scales=1, style_loss="mrf", content_weight=0.05)
    out = run(content, [painting], cfg, state, style_maps=masks, content_map=cmask)
    tiles = [label(painting, "painting"), label(smap, "its map (3 labels)"), label(cmap, "doodle (content map)"),
             label(out, "mrf + semantic maps")]
    save("control_doodle.jpg", grid(tiles, 2))


def edge_profile(out: np.ndarray, content: np.ndarray, matte: np.ndarray) -> str:
    """How much of the style each part of the soft edge has: mean |out − photo| in bins of the matte's
    value, over that inside (a matte-true ramp reads 0.1 0.3 0.5 0.7 0.9), and the outside's max."""
    d = np.abs(to_u8(out).astype(float) - to_u8(content).astype(float)).max(axis=2)
    inside = d[matte >= 0.999].mean()
    bins = ((0, 0.05), (0.05, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.999))
    prof = " ".join(f"{d[(matte > lo) & (matte <= hi)].mean() / inside:.2f}" for lo, hi in bins)
    return f"outside max {d[matte == 0].max():.0f} mean {d[matte == 0].mean():.2f} levels; edge (a in 0-.05, " \
           f".05-.2, .2-.4, .4-.6, .6-.8, .8-1) / inside: {prof}; inside {inside:.1f}"


def mask(shared: Path, state: object, size: int, iterations: int) -> None:
    """--mask in the optimisation back end: through the loss, with and without the final composite,
    against the old way (stylise everything, then composite)."""
    from vidstyle.stylize.mask import composite

    content = frame("coffee", size)
    c = content.astype(np.float32) / 255
    h, w = content.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - 0.42 * w) / (0.3 * w)) ** 2 + ((yy - 0.5 * h) / (0.42 * h)) ** 2
    matte = np.clip((1.15 - inside) / 0.3, 0, 1).astype(np.float32)
    starry = read_image(shared / "data/styles/vangogh_starry_night.jpg")
    cfg = OptimConfig(iterations=iterations, scales=1)
    plain = run(content, [starry], cfg, state)
    t = time.perf_counter()
    opt = StyleOptimizer(styles=[starry], config=cfg, vgg=state, device="cpu")  # type: ignore[arg-type]
    r = optimize_image(c, styles=(), optimizer=opt, mask=matte)
    print(f"  masked loss: {r.iterations} it, {time.perf_counter() - t:.0f} s, losses "
          + ", ".join(f"{k} {v:.3g}" for k, v in r.losses.items()), flush=True)
    outs = {"stylise all, composite (old)": composite(plain, c, matte), "through the loss only": r.image,
            "through the loss + composite (shipped)": composite(r.image, c, matte)}
    for name, out in outs.items():
        print(f"  {name}: {edge_profile(out, c, matte)}", flush=True)
    tiles = [label(content, "photo"), label(np.repeat(matte[..., None], 3, 2), "matte")]
    tiles += [label(o, n) for n, o in outs.items()]
    tiles.append(label(plain, "no mask"))
    ys, xs = slice(round(0.25 * h), round(0.75 * h)), slice(round(0.58 * w), round(0.84 * w))  # the right edge
    crops = [cv2.resize(to_u8(t)[ys, xs], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
             for t in (np.repeat(matte[..., None], 3, 2), *outs.values())]
    top = grid(tiles, 3)
    bottom = grid([label(crops[0], "2x: matte"), *(label(cr, n) for cr, n in
                                                   zip(crops[1:], ("old", "loss only", "loss+composite")))], 4)
    pad = top.shape[1] - bottom.shape[1]
    if pad > 0:
        bottom = np.pad(bottom, ((0, 0), (0, pad), (0, 0)), constant_values=255)
    else:
        top = np.pad(top, ((0, 0), (0, -pad), (0, 0)), constant_values=255)
    save("control_mask_optim.jpg", np.concatenate([top, bottom], axis=0))


def portrait(shared: Path, state: object, size: int, iterations: int) -> None:
    """No painted head portrait is available to the project, so the style portrait is made here: Grace
    Hopper's photo (public domain, US Navy; a sample file of matplotlib) painted by the arbitrary back
    end (WCT, Starry Night). The content is the astronaut frame of samples/clip.mp4."""
    import tempfile

    import matplotlib.cbook as cbook

    import vidstyle
    from vidstyle.stylize.portrait import plan_portrait

    cap = cv2.VideoCapture(str(ROOT / "samples" / "clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 92)
    ok, bgr = cap.read()
    content = fit(np.ascontiguousarray(bgr[..., ::-1]), size)
    hopper = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    with tempfile.TemporaryDirectory() as tmp:
        painted_path = Path(tmp) / "hopper_painted.png"
        vidstyle.stylize_image(hopper, painted_path, backend="arbitrary", method="wct",
                               style=str(shared / "data/styles/vangogh_starry_night.jpg"),
                               vgg_weights=str(shared / "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"))
        painted = fit(read_image(painted_path), 320)
    plan = plan_portrait(content, painted)
    if plan.aligned is None or plan.affine is None:
        raise SystemExit(f"portrait: {plan.note}")
    from vidstyle.stylize.portrait import alignment_error

    f = plan.content_face
    print(f"  alignment error in the face box: boxes {alignment_error(plan.affine, content, f):.4f}, "
          f"+ flow {alignment_error(plan.aligned, content, f):.4f}; flow max "
          f"{float(np.sqrt((plan.flow ** 2).sum(0)).max()):.1f} px", flush=True)
    cfg = OptimConfig(iterations=iterations, scales=1)
    plain = run(content, [painted], cfg, state)
    boxes_only = run(content, [painted], cfg, state, gain_reference=plan.affine)
    gained = run(content, [painted], cfg, state, gain_reference=plan.aligned)
    boxed = to_u8(content).copy()
    cv2.rectangle(boxed, (f.x, f.y), (f.x + f.w, f.y + f.h), (0, 255, 0), 1)
    h, w = content.shape[:2]
    shown = fit(painted, h)  # the portrait at the tiles' height, centred on a white tile
    pad = max(0, w - shown.shape[1])
    shown = np.pad(to_u8(shown)[:, :w], ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), constant_values=255)
    def over(x: np.ndarray) -> np.ndarray:  # half photo, half aligned painting: doubled features = misaligned
        return 0.5 * to_u8(x).astype(np.float32) / 255 + 0.5 * to_u8(content).astype(np.float32) / 255

    tiles = [label(boxed, "photo + Haar face"), label(shown, "painted portrait (style)"),
             label(plan.affine, "aligned by the boxes"), label(plan.aligned, "+ flow refinement"),
             label(over(plan.affine), "boxes over the photo"), label(over(plan.aligned), "+ flow over the photo"),
             label(plain, "Gram only (no gain map)"), label(boxes_only, "gain map, boxes only"),
             label(gained, "--portrait: gain map + flow")]
    save("control_portrait.jpg", grid(tiles, 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--only", default="losses,regions,doodle")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: no spinning on a busy machine)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from vidstyle.nets.vgg import load_vgg_state

    state = load_vgg_state(weights=str(args.shared / "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"))
    for part in args.only.split(","):
        print(part, flush=True)
        {"losses": losses, "regions": regions, "doodle": doodle, "portrait": portrait, "mask": mask}[part](args.shared, state, args.size, args.iterations)


if __name__ == "__main__":
    main()
