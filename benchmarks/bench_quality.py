"""Style fidelity of style models on held-out photos: style ratio, texture ratio, relative content loss.

The standard measure of :mod:`vidstyle.fidelity` (Gram loss summed over relu1_2, relu2_2, relu3_3 of the
Caffe-convention VGG19 prefix, squared Frobenius norms, painting at 512 px on its long side). The photos
are held out from training: the middle frame of each shared clip (cockatoo_60f.mp4, realshort.mp4,
sintel_raft_demo/, middlebury_rubberwhale/; none is in data/content/), resized to 384 px on the long side.

    python benchmarks/bench_quality.py --shared ../shared \\
        --models starry_tiny=vangogh_starry_night.jpg,wave_small=hokusai_great_wave.jpg,engstrom2016_wave=hokusai_great_wave.jpg \\
        [--vgg-weights PATH] [--size 384] [--sheet sheet.png] [--json out.json]

``--models``: comma-separated ``MODEL[#STYLE][=PAINTING]``; a multi-style MODEL (or checkpoint) stands for
each of its styles, ``MODEL#STYLE`` for one. MODEL is a shipped name (``starry_tiny``), a
reference net of ``SHARED/weights`` (``engstrom2016_wave``), a ``.safetensors`` model file, or a training
checkpoint ``*.ckpt.safetensors`` of ``vidstyle train`` (keys ``net.*``, network size in its ``config``
metadata), so a running training can be evaluated. PAINTING is a file, or a name in ``SHARED/data/styles``;
by default the model's own style image (its card's ``style_images``, or the checkpoint's ``style``).

Prints a Markdown table (mean and per-photo values of each model) and, with ``--sheet``, writes a contact
sheet PNG: a header row with each painting's thumbnail, then one row per photo (photo, then each output).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import use_baselines  # noqa: E402

use_baselines()  # starry_tiny and wave_small: the retired models, kept to compare with

from vidstyle.fidelity import StyleReference, StyleScores, fidelity_vgg, mean_scores  # noqa: E402
from vidstyle.io import open_source  # noqa: E402
from vidstyle.stylize.feedforward import image_to_tensor, tensor_to_image  # noqa: E402

CLIPS = ("cockatoo_60f.mp4", "realshort.mp4", "sintel_raft_demo", "middlebury_rubberwhale")
DEFAULT_MODELS = "starry_tiny=vangogh_starry_night.jpg,wave_small=hokusai_great_wave.jpg,engstrom2016_wave=hokusai_great_wave.jpg"
STYLE_OF = {"engstrom2016_wave": "hokusai_great_wave.jpg", "engstrom2016_scream": "munch_the_scream.jpg",
            "engstrom2016_udnie": None, "engstrom2016_la_muse": None, "engstrom2016_rain_princess": None}


def resize_long(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = size / max(h, w)
    if abs(s - 1) < 1e-3:
        return img
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)


def held_out_photos(shared: Path, size: int) -> list[tuple[str, np.ndarray]]:
    """The middle frame of each shared clip, uint8 RGB, ``size`` px on the long side."""
    out = []
    for clip in CLIPS:
        spec = shared / "data" / "video" / clip
        if spec.is_dir():
            spec = spec / "*.png"
        with open_source(str(spec)) as src:
            frames = [f.image for f in src]
        img = frames[len(frames) // 2]
        if img.dtype != np.uint8:
            from vidstyle.io.imagefiles import convert_depth

            img = convert_depth(img, 8)
        out.append((f"{Path(clip).stem}#{len(frames) // 2}", np.ascontiguousarray(resize_long(img, size))))
    return out


def load_checkpoint(path: Path):
    """A ``vidstyle train`` checkpoint as a StyleModel (its ``net.*`` tensors, size from ``config``)."""
    from safetensors import safe_open

    from vidstyle.nets.registry import StyleModel
    from vidstyle.nets.transformer import PRESETS, TransformerNet

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        sd = {k[4:]: f.get_tensor(k) for k in f.keys() if k.startswith("net.")}
    config = json.loads(meta.get("config", "{}"))
    styles = config.get("style") or []
    name = f"{path.name.removesuffix('.ckpt.safetensors')}@{meta.get('iteration', '?')}"
    if config.get("size") == "student":  # the one- or multi-style student (vidstyle.train_plan.STUDENT_SIZE)
        from vidstyle.nets.student import StudentConfig
        from vidstyle.nets.student_multistyle import StudentMultiStyleNet
        from vidstyle.nets.student_style import StudentStyleNet

        arch = StudentConfig(width=sd["decoder.stem.0.weight"].shape[0],
                             blocks=len({k.split(".")[2] for k in sd if k.startswith("decoder.body.")}))
        if sd["gamma"].ndim == 2:
            names = json.loads(meta["styles"]) if "styles" in meta else (
                config.get("style_names") or [Path(s).stem for s in styles])
            net, architecture = StudentMultiStyleNet(config=arch, styles=names), "student-multistyle"
        else:
            net, architecture = StudentStyleNet(config=arch), "student-style"
    elif config.get("multi_style") or config.get("add_style"):
        from vidstyle.nets.multistyle import MultiStyleNet

        names = config.get("style_names") or [Path(s).stem for s in styles]
        base = json.loads(meta["styles"]) if "styles" in meta else names
        net = MultiStyleNet(config=PRESETS[config.get("size", "tiny")], styles=base)
        architecture = "multistyle"
    else:
        net = TransformerNet(config=PRESETS[config.get("size", "tiny")])
        architecture = "transformer"
    net.load_state_dict(sd, strict=True)
    return StyleModel(net=net, name=name, architecture=architecture,
                      metadata={"path": str(path), "style_images": [Path(s).name for s in styles]}).eval()


class OneStyle(torch.nn.Module):
    """One style slot of a multi-style model, as a one-style callable (``MODEL#style`` in ``--models``)."""

    def __init__(self, model, style: str) -> None:
        super().__init__()
        if style not in model.styles[1:]:
            raise SystemExit(f"bench_quality: {model.name} has no style {style!r}; it has {', '.join(model.styles[1:])}")
        self.model, self.style = model, style
        self.name = f"{model.name}#{style}"
        images = model.metadata.get("style_images") or []
        slot = model.styles.index(style)
        self.metadata = {"style_images": [images[slot - 1]] if slot - 1 < len(images) else []}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mix = torch.zeros(len(self.model.styles))
        mix[self.model.styles.index(self.style)] = 1.0
        return self.model(x, mix[None])


def expand_specs(specs: list[str], shared: Path) -> list[tuple[str, str]]:
    """``MODEL[#style][=PAINTING]`` items → (model spec, painting); a multi-style MODEL without ``#`` → each style."""
    out = []
    for item in specs:
        spec, _, painting = item.partition("=")
        base, _, style = spec.partition("#")
        if not style:
            model = resolve_model(base, shared)
            if model.styles:
                out.extend((f"{base}#{s}", "") for s in model.styles[1:])
                continue
        out.append((spec, painting))
    return out


def resolve_model(spec: str, shared: Path):
    from vidstyle.nets.registry import load_model

    base, _, style = spec.partition("#")
    if style:
        return OneStyle(resolve_model(base, shared), style).eval()
    if spec.endswith(".ckpt.safetensors"):
        return load_checkpoint(Path(spec))
    if spec.startswith("engstrom2016_") and not spec.endswith(".safetensors"):
        return load_model(shared / "weights" / f"{spec}.safetensors")
    return load_model(spec)


def resolve_painting(painting: str | None, model_name: str, model, shared: Path) -> Path:
    if painting is None:
        painting = STYLE_OF.get(model_name) or (model.metadata.get("style_images") or [None])[0]
        if painting is None:
            raise SystemExit(f"bench_quality: no painting known for {model_name}; give it as {model_name}=PAINTING")
    p = Path(painting)
    if not p.is_file():
        p = shared / "data" / "styles" / painting
    if not p.is_file():
        raise SystemExit(f"bench_quality: painting {painting} not found (nor in {shared / 'data' / 'styles'})")
    return p


def stylize(model, img: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return tensor_to_image(model(image_to_tensor(img)[None])[0], np.uint8)


def _label(img: np.ndarray, text: str, lines: tuple[str, ...] = ()) -> np.ndarray:
    out = img.copy()
    for i, t in enumerate((text, *lines)):
        y = 18 + 18 * i
        cv2.putText(out, t, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, t, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(path: Path, photos, columns, *, cell: int) -> None:
    """Rows = photos, columns = photo + each model's output; a header row of painting thumbnails."""
    def fit(img: np.ndarray) -> np.ndarray:
        img = resize_long(img, cell)
        canvas = np.full((cell, cell, 3), 40, np.uint8)
        h, w = img.shape[:2]
        canvas[(cell - h) // 2 : (cell - h) // 2 + h, (cell - w) // 2 : (cell - w) // 2 + w] = img
        return canvas

    header = [_label(np.full((cell, cell, 3), 40, np.uint8), "paintings ->")]
    for col in columns:
        header.append(_label(fit(col["painting"]), col["name"], (col["painting_name"],)))
    rows = [np.concatenate(header, axis=1)]
    for i, (name, photo) in enumerate(photos):
        cells = [_label(fit(photo), name)]
        for col in columns:
            s: StyleScores = col["scores"][i]
            cells.append(_label(fit(col["outputs"][i]), col["name"],
                                (f"style {s.style_ratio:.2f} tex {s.texture_ratio:.2f}", f"content {s.content_loss:.2f}")))
        rows.append(np.concatenate(cells, axis=1))
    sheet = np.concatenate(rows, axis=0)
    if not cv2.imwrite(str(path), np.ascontiguousarray(sheet[..., ::-1])):
        raise SystemExit(f"bench_quality: cannot write {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated MODEL[=PAINTING] (see above)")
    ap.add_argument("--vgg-weights", default=None,
                    help="VGG19 weights (default: $VIDSTYLE_VGG_WEIGHTS, else SHARED/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors)")
    ap.add_argument("--size", type=int, default=384, help="long side of the photos in pixels (default 384)")
    ap.add_argument("--sheet", default=None, metavar="PNG", help="write a contact sheet here")
    ap.add_argument("--cell", type=int, default=256, help="contact-sheet cell size in pixels (default 256)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    shared = Path(args.shared)
    import os

    weights = args.vgg_weights or os.environ.get("VIDSTYLE_VGG_WEIGHTS") or \
        str(shared / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors")
    vgg = fidelity_vgg(weights)
    photos = held_out_photos(shared, args.size)
    references: dict[Path, StyleReference] = {}
    columns = []
    for spec, painting in expand_specs(list(filter(None, args.models.split(","))), shared):
        model = resolve_model(spec, shared)
        base, _, style = spec.partition("#")
        name = model.name if base.endswith(".ckpt.safetensors") else \
            Path(base).name.removesuffix(".safetensors") + (f"#{style}" if style else "")
        ppath = resolve_painting(painting or None, name, model, shared)
        if ppath not in references:
            references[ppath] = StyleReference(ppath, vgg=vgg)
        ref = references[ppath]
        outputs = [stylize(model, img) for _, img in photos]
        scores = [ref(out, img) for out, (_, img) in zip(outputs, photos)]
        from vidstyle.train import load_image

        thumb = tensor_to_image(load_image(ppath, max_side=args.cell), np.uint8)
        columns.append({"name": name, "painting_name": ppath.name, "painting": thumb, "outputs": outputs, "scores": scores})
        print(f"  scored {name} against {ppath.name}", file=sys.stderr, flush=True)

    print(f"Style fidelity on {len(photos)} held-out photos at {args.size} px (painting at {StyleReference.__init__.__kwdefaults__['size']} px; "
          "Gram loss summed over relu1_2, relu2_2, relu3_3; style/texture ratio: lower = more of the painting; "
          "content: relative, photo = 0)\n")
    print("| model | painting | style ratio | texture ratio | content | " + " | ".join(n for n, _ in photos) + " |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(photos))
    rows = []
    for col in columns:
        m = mean_scores(col["scores"])
        per = [f"{s.style_ratio:.2f} / {s.texture_ratio:.2f} / {s.content_loss:.2f}" for s in col["scores"]]
        print(f"| {col['name']} | {col['painting_name']} | {m.style_ratio:.3f} | {m.texture_ratio:.3f} | "
              f"{m.content_loss:.3f} | " + " | ".join(per) + " |")
        rows.append({"model": col["name"], "painting": col["painting_name"], "mean": m.__dict__,
                     "per_photo": {n: s.__dict__ for (n, _), s in zip(photos, col["scores"])}})
    print("\n(per-photo cells: style ratio / texture ratio / content)")
    if args.sheet:
        contact_sheet(Path(args.sheet), photos, columns, cell=args.cell)
        print(f"contact sheet: {args.sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
