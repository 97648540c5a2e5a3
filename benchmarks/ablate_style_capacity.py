"""Ablation: how much does a style of the multi-style student gain from more per-style capacity?

Starts from a multi-style student (default: the shipped ``paintings_student``), gives every style its own copy of
the decoder's body convolutions (``--per-style dw``: the four depthwise 3×3 kernels of its two residual blocks;
``dwpw``: those and the four 1×1 convs; ``row``: nothing more, exactly ``vidstyle train --tune-style``), initialised
to the shared ones so the network starts unchanged, then trains only one style's rows for ``--iterations`` with
``vidstyle train``'s loop and the student recipe, and prints that style's held-out style / texture ratio and content
loss (the measure of ``bench_quality.py``). The wider network exists only in this script (a prototype, not a model
format), so nothing is saved.

    python benchmarks/ablate_style_capacity.py --shared ../shared --style kandinsky \\
        --painting kandinsky_composition_vii.jpg --iterations 300 --per-style dwpw --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_quality as BQ  # noqa: E402
import vidstyle.train as T  # noqa: E402
import vidstyle.train_plan as TP  # noqa: E402
from vidstyle.fidelity import StyleReference, fidelity_vgg, mean_scores  # noqa: E402
from vidstyle.nets.decoder import FEATURE_SCALE  # noqa: E402
from vidstyle.nets.registry import load_model  # noqa: E402
from vidstyle.nets.student_multistyle import StudentMultiStyleNet, _affine, _head  # noqa: E402
from vidstyle.stylize.transforms import channel_var_mean  # noqa: E402


class PerStyleBody(StudentMultiStyleNet):
    """The multi-style student with per-style copies of the decoder body's depthwise (and 1×1) convolutions. A batch
    shares one mix (training: one style per batch; evaluation: one image)."""

    def widen(self, per_style: str) -> None:
        self.per_style = per_style
        n = len(self.styles) - 1
        dws = [m.weight.detach() for blk in self.decoder.body for m in (blk.body[0][1], blk.body[2][1])]
        pws = [m for blk in self.decoder.body for m in (blk.body[0][2], blk.body[2][2])]
        self.body_dw = nn.Parameter(torch.stack(dws)[None].repeat(n, 1, 1, 1, 1, 1).clone())
        self.body_pw = nn.Parameter(torch.stack([p.weight.detach() for p in pws])[None].repeat(n, 1, 1, 1, 1, 1).clone())
        self.body_pb = nn.Parameter(torch.stack([p.bias.detach() for p in pws])[None].repeat(n, 1, 1).clone())

    def extra(self) -> list[nn.Parameter]:
        return {"row": [], "dw": [self.body_dw], "dwpw": [self.body_dw, self.body_pw, self.body_pb]}[self.per_style]

    def style_parameters(self) -> list[nn.Parameter]:
        return [*super().style_parameters(), *self.extra()]

    def param_groups(self, lr: float) -> list[dict]:
        groups = super().param_groups(lr)
        extra = [p for p in self.extra() if p.requires_grad]
        return groups + ([{"params": extra, "lr": lr}] if extra else [])

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None, strength: object = None) -> torch.Tensor:
        n = x.shape[0]
        w = self._mix(mix, n)
        feats = self.encoder(x)
        var, mean = channel_var_mean(feats)
        w = w.to(var.dtype)
        w0, ws = w[:, :1], w[:, 1:]
        inv = 1.0 / (var + 1e-5).sqrt()
        g = ws @ self.gamma
        scale, shift = g * inv + w0, ws @ self.beta - g * inv * mean
        fs = (ws @ self.film_scale.flatten(1)).view(n, *self.film_scale.shape[1:]) + w0[:, :, None]
        fb = (ws @ self.film_shift.flatten(1)).view(n, *self.film_shift.shape[1:])
        dec = self.decoder
        dws = [m for blk in dec.body for m in (blk.body[0][1], blk.body[2][1])]
        pws = [m for blk in dec.body for m in (blk.body[0][2], blk.body[2][2])]
        kd = [w0[0] * d.weight + torch.einsum("s,sabcd->abcd", ws[0], self.body_dw[:, k]) for k, d in enumerate(dws)]
        kp = [w0[0] * p.weight + torch.einsum("s,sabcd->abcd", ws[0], self.body_pw[:, k]) for k, p in enumerate(pws)]
        bp = [w0[0] * p.bias + ws[0] @ self.body_pb[:, k] for k, p in enumerate(pws)]
        conv = dec.stem[0]
        wt = conv.weight[:, :, 0, 0]
        h = torch.relu(torch.cat([F.conv2d(feats[i:i + 1], (fs[i, 0][:, None] * wt * (FEATURE_SCALE * scale[i])[None])[:, :, None, None],
                                           fs[i, 0] * (conv.bias + wt @ (FEATURE_SCALE * shift[i])) + fb[i, 0])
                                  for i in range(n)]))
        site = 1
        for b, blk in enumerate(dec.body):
            k = 2 * b
            c = h.shape[1]
            t = F.conv2d(F.conv2d(blk.body[0][0](h), kd[k], groups=c), kp[k], bp[k])
            t = torch.relu(_affine(t, fs[:, site], fb[:, site]))
            t = F.conv2d(F.conv2d(blk.body[2][0](t), kd[k + 1], groups=c), kp[k + 1], bp[k + 1])
            h = torch.relu(_affine(h + t, fs[:, site + 1], fb[:, site + 1]))
            site += 2
        out = (_head(dec, h, self._heads(w)) + 0.5)[..., :x.shape[-2], :x.shape[-1]]
        return out if dec.training else out.clamp(0.0, 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--init", default=str(ROOT / "models" / "paintings_student.safetensors"))
    ap.add_argument("--style", required=True, help="the style's name in --init")
    ap.add_argument("--painting", required=True, help="its painting (a file, or a name in SHARED/data/styles)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--per-style", choices=("row", "dw", "dwpw"), default="dwpw")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    shared = Path(args.shared)
    painting = Path(args.painting) if Path(args.painting).is_file() else shared / "data" / "styles" / args.painting
    vgg_weights = str(shared / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors")

    base = load_model(args.init)
    net = PerStyleBody(config=base.net.config, styles=list(base.net.styles))
    net.load_state_dict(base.net.state_dict())
    net.widen(args.per_style)

    class Init:  # what TrainConfig.tune_style's plan loads: this network instead of the file's
        def __init__(self) -> None:
            self.net, self.metadata, self.styles, self.architecture = net, base.metadata, net.styles, base.architecture

    T.multistyle_from = TP.multistyle_from = lambda *a, **k: Init()
    with tempfile.TemporaryDirectory() as tmp:
        config = T.TrainConfig(style=(str(painting),), style_names=(args.style,), tune_style=True, size="student",
                               init=args.init, content=str(shared / "data" / "content"), output=str(Path(tmp) / "m"),
                               vgg_weights=vgg_weights, temporal_weight=0.0, threads=args.threads,
                               checkpoint_every=10**9, seed=0, **{**TP.student_recipe(styles=1), "iterations": args.iterations})
        t0 = time.perf_counter()
        T.train(config=config)
    minutes = (time.perf_counter() - t0) / 60

    slot = net.styles.index(args.style)
    photos = BQ.held_out_photos(shared, 384)
    ref = StyleReference(painting, vgg=fidelity_vgg(vgg_weights))

    class One(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mix = torch.zeros(1, len(net.styles))
            mix[0, slot] = 1.0
            return net.eval()(x, mix)

    scores = mean_scores([ref(BQ.stylize(One(), img), img) for _, img in photos])
    print(f"{args.style}, per-style {args.per_style}, {args.iterations} iterations of its rows ({minutes:.1f} min): "
          f"style {scores.style_ratio:.3f} / texture {scores.texture_ratio:.3f} / content {scores.content_loss:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
