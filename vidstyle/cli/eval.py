"""``vidstyle eval``: temporal warping error, sharpness and style fidelity of stylized videos of one input."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from vidstyle.cli.common import add_command

DESCRIPTION = """\
Measure how stable a stylized video is: the temporal warping error (Lai et al. 2018; optical flow
and occlusion masks computed on the INPUT video, RGB in [0,1]) at lag 1 (short-term) and lag K
(long-term), next to the sharpness of each video (mean |Laplacian| of the luminance), since a
blurred or frozen video also has a low warping error. With --per-frame, the same numbers for a
per-frame stylization of the same input, and the ratio (stabilized ÷ per-frame: lower is better,
while sharpness should stay close to 1.0). With --style PAINTING, the style fidelity too (the standard
Gram style loss against the painting: squared Frobenius norms of Gram differences summed over
relu1_2, relu2_2, relu3_3 of VGG19, painting at 512 px): the style loss, the style ratio (÷ the
input frame's loss: 1 = no style, lower = more of the painting), the texture ratio (the same in
grey) and the relative content loss (0 = the input), on every Nth frame (--style-every)."""

EXAMPLES = """\
examples:
  vidstyle eval clip.mp4 clip_styled.mp4
  vidstyle eval clip.mp4 clip_stable.mp4 --per-frame clip_perframe.mp4 --lag 5 --plot err.png
  vidstyle eval clip.mp4 clip_styled.mp4 --style starry_night.jpg --vgg-weights vgg19_caffe.safetensors
"""


def add_parser(subparsers: Any) -> None:
    p = add_command(subparsers, "eval", help="temporal warping error and sharpness of stylized videos", description=DESCRIPTION, epilog=EXAMPLES)
    p.add_argument("input", metavar="INPUT", help="the input (unstylized) video or image sequence")
    p.add_argument("stylized", metavar="STYLIZED", help="a stylization of INPUT (same frames and size)")
    p.add_argument("--per-frame", metavar="OTHER", help="a per-frame stylization of INPUT to compare with")
    p.add_argument(
        "--lag", metavar="K", type=int, default=5, help="frame distance of the long-term warping error (default: 5)"
    )
    p.add_argument(
        "--flow",
        metavar="NAME",
        default=None,
        help="flow estimator: dis-ultrafast, dis-fast, dis-medium (default), farneback, deepflow, "
        "raft-small, raft-large",
    )
    p.add_argument(
        "--flow-scale",
        metavar="S",
        type=float,
        default=1.0,
        help="compute the flow at this fraction of the resolution (default: 1.0)",
    )
    p.add_argument("--plot", metavar="PNG", help="write a plot of the per-frame warping error (needs matplotlib)")
    p.add_argument("--style", metavar="PAINTING", help="also score the style fidelity against this painting")
    p.add_argument(
        "--vgg-weights",
        metavar="PATH",
        default=None,
        help="VGG19 weights of the style measure (default: $VIDSTYLE_VGG_WEIGHTS, else torchvision's)",
    )
    p.add_argument(
        "--style-every",
        metavar="N",
        type=int,
        default=None,
        help="score the style of every Nth frame (default: the step that scores at most 30 frames)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidstyle.errors import InvalidOptionError
    from vidstyle.flow.estimators import make_flow_estimator
    from vidstyle.metrics import DEFAULT_METRIC_FLOW, compare_videos

    if args.lag < 1:
        raise InvalidOptionError(f"--lag must be ≥ 1, got {args.lag}")
    if args.style_every is not None and args.style_every < 1:
        raise InvalidOptionError(f"--style-every must be ≥ 1, got {args.style_every}")
    if args.plot:
        _check_plot_target(Path(args.plot))
    estimator = make_flow_estimator(args.flow or DEFAULT_METRIC_FLOW, scale=args.flow_scale)
    style = _style_reference(args) if args.style else None

    inputs = _read_frames(args.input)
    candidates = {"stylized": _read_frames(args.stylized)}
    if args.per_frame:
        candidates["per-frame"] = _read_frames(args.per_frame)
    _check_same(args, inputs, candidates)
    candidates = {"input": inputs, **candidates}

    progress = _Progress()
    try:
        scores = compare_videos(
            inputs,
            candidates,
            lags=(1, args.lag),
            estimator=estimator,
            progress=progress,
            style=style,
            style_every=args.style_every,
        )
    finally:
        progress.close()
    sys.stdout.write(_table(args, scores, frames=len(inputs), estimator=estimator.name))
    if args.plot:
        _plot(Path(args.plot), scores, lag=args.lag)
        sys.stdout.write(f"plot: {args.plot}\n")
    return 0


def _style_reference(args: argparse.Namespace) -> Any:
    """The painting's Grams (checked before any video is read: a missing painting or VGG fails at once)."""
    from vidstyle.errors import InputNotFoundError
    from vidstyle.fidelity import StyleReference

    if not Path(args.style).is_file():
        raise InputNotFoundError(f"--style: painting {args.style} does not exist; give an image file")
    return StyleReference(args.style, vgg_weights=args.vgg_weights)


# --------------------------------------------------------------------------------------- reading
def _read_frames(path: str) -> list:
    """All frames of a video file or image sequence as RGB arrays (uint8/uint16/float32)."""
    from vidstyle.io import open_source

    with open_source(path) as source:
        return [frame.image for frame in source]


def _check_same(args: argparse.Namespace, inputs: list, candidates: dict) -> None:
    from vidstyle.errors import InvalidInputError

    paths = {"stylized": args.stylized, "per-frame": args.per_frame}
    h, w = inputs[0].shape[:2]
    for name, frames in candidates.items():
        if len(frames) != len(inputs):
            raise InvalidInputError(
                f"{paths[name]} has {len(frames)} frames but {args.input} has {len(inputs)}; "
                "evaluate a stylization of the whole input (same frame count)"
            )
        fh, fw = frames[0].shape[:2]
        if (fh, fw) != (h, w):
            raise InvalidInputError(
                f"{paths[name]} is {fw}×{fh} but {args.input} is {w}×{h}; evaluate a stylization at the input's size"
            )
    if len(inputs) < 2:
        raise InvalidInputError(f"{args.input} has {len(inputs)} frame; the warping error needs at least 2")


# --------------------------------------------------------------------------------------- output
class _Progress:
    """A tqdm bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self) -> None:
        self._bar = None
        self._label = None
        self._enabled = sys.stderr.isatty()

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        if label != self._label:
            self.close()
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="pair", leave=False, file=sys.stderr)
            self._label = label
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._label = None


def _fmt(x: float | None, spec: str = ".5f") -> str:
    import math

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def _table(args: argparse.Namespace, scores: dict, *, frames: int, estimator: str) -> str:
    lags = [1] if args.lag == 1 else [1, args.lag]
    paths = {"input": args.input, "stylized": args.stylized, "per-frame": args.per_frame}

    def err(s: Any, k: int) -> float | None:
        return s.warping[k].mean if k in s.warping else None

    styled = getattr(args, "style", None) is not None

    def style_cells(s: Any) -> list[str]:
        if not styled:
            return []
        f = s.style
        return [_fmt(f.style_loss, ".4g"), _fmt(f.style_ratio, ".3f"), _fmt(f.texture_ratio, ".3f"), _fmt(f.content_loss, ".3f")]

    rows = [
        [
            name,
            *(_fmt(err(s, k)) for k in lags),
            _fmt(s.sharpness, ".4f"),
            *style_cells(s),
            os.path.basename(str(paths[name]).rstrip("/")),
        ]
        for name, s in scores.items()
    ]
    if "per-frame" in scores:
        a, b = scores["stylized"], scores["per-frame"]

        def ratio(x: float | None, y: float | None) -> str:
            return _fmt(x / y if x is not None and y else None, ".3f")

        rows.append(
            [
                "ratio stylized/per-frame",
                *(ratio(err(a, k), err(b, k)) for k in lags),
                ratio(a.sharpness, b.sharpness),
                *([ratio(a.style.style_loss, b.style.style_loss), "-", ratio(a.style.texture_ratio, b.style.texture_ratio), "-"]
                  if styled else []),
                "",
            ]
        )
    style_header = ["style loss", "style ratio", "texture ratio", "content"] if styled else []
    header = ["video", *(f"warp err (lag {k})" for k in lags), "sharpness", *style_header, "file"]
    left = {0, len(header) - 1}
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list) -> str:
        return "  ".join(
            str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [
        f"{frames} frames, flow {estimator}; warping error = mean over frame pairs of "
        "Σ c·‖O_t − warp(O_t+k)‖² / Σ c (RGB in [0,1])",
        line(header),
        *(line(r) for r in rows),
    ]
    if styled:
        sampled = next(iter(scores.values())).style_frames
        out.insert(
            1,
            f"style vs {os.path.basename(args.style)} (painting at 512 px) on {len(sampled)} frame(s) "
            f"(step {sampled[1] - sampled[0] if len(sampled) > 1 else frames}): loss = Σ over relu1_2, relu2_2, "
            "relu3_3 of ‖G(out) − G(painting)‖²_F; ratios ÷ the input frame's (1 = no style); content relative (0 = input)",
        )
    if args.lag not in next(iter(scores.values())).warping:
        out.append(f"(lag {args.lag}: no pair of frames that far apart in {frames} frames)")
    return "\n".join(out) + "\n"


def _check_plot_target(path: Path) -> None:
    from vidstyle.errors import InvalidOptionError, OutputError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidOptionError(
            "--plot needs matplotlib, which is not installed; pip install 'vidstyle[plot]' (or matplotlib)"
        ) from None
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise InvalidOptionError(
            f"--plot {path}: {'.' + suffix if suffix else 'no extension'} is not an image format matplotlib "
            f"writes; end the name in one of {', '.join('.' + k for k in kinds)}"
        )
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write the plot {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write the plot {path}: folder {folder} is not writable")


def _plot(path: Path, scores: dict, *, lag: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidstyle.errors import OutputError

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    colours = {"input": "0.55", "stylized": "tab:blue", "per-frame": "tab:orange"}
    for name, s in scores.items():
        for k in sorted(s.warping):
            r = s.warping[k]
            ax.plot(
                range(len(r.per_frame)),
                r.per_frame,
                "-" if k == 1 else "--",
                color=colours.get(name),
                label=f"{name}, lag {k} (mean {r.mean:.4g})",
            )
    ax.set_xlabel("frame t")
    ax.set_ylabel("warping error  Σ c‖O_t − warp(O_{t+k})‖² / Σ c")
    ax.set_title("Temporal warping error per frame (lower = more stable)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise OutputError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
