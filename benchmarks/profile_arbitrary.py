"""Where the arbitrary back end's VGG variant spends a frame: shares of its time by part and operation.

Runs the feed-forward stage on one 640×360 frame (``cockatoo_60f.mp4`` frame 30, halved) the way
``vidstyle stylize --backend arbitrary`` does (uint8 frame in, uint8 picture out, float32, batch 1) under
``torch.profiler`` and prints, for each part (pre-processing, encoder, transform, decoder, post-processing)
and each operation inside it (convolutions, reflection pads, upsampling, ReLUs, pooling, copies…), its share of
the frame's time. Shares, not times: the absolute numbers of a loaded machine mean little, their proportions
hold. ``--plain`` profiles the decoder as trained (:class:`~vidstyle.nets.decoder.Decoder`) instead of its fused
inference form. ``--fast STUDENT`` profiles the fast variant (a student model file) instead; its decoder's
first 1×1 conv, which AdaIN is folded into, counts under "transform"::

    python benchmarks/profile_arbitrary.py --decoder models/decoder_relu31.safetensors \\
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors --threads 2 [--plain]
    python benchmarks/profile_arbitrary.py --fast student_relu31.safetensors --threads 1
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.frame import Frame  # noqa: E402
from vidstyle.options import StyleImage  # noqa: E402
from vidstyle.stylize.arbitrary import build_arbitrary_model  # noqa: E402
from vidstyle.stylize.feedforward import FeedForwardStage  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _frame(width: int, height: int) -> "object":
    import cv2

    from bench_arbitrary import _video_frame

    img = _video_frame(SHARED / "data" / "video" / "cockatoo_60f.mp4", 30)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def _label_hooks(module: torch.nn.Module, label: str) -> list:
    """record_function(label) around ``module``'s forward."""
    ctx: list = []

    def pre(_m: object, _i: object) -> None:
        ctx.append(torch.profiler.record_function(label))
        ctx[-1].__enter__()

    def post(_m: object, _i: object, _o: object) -> None:
        ctx.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]


_PARTS = {"encoder": "encoder", "decoder": "decoder", "net": "transform, colour, clamp",
          "frame": "pre/post-processing (stage)"}


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decoder", default="models/decoder_relu31.safetensors")
    ap.add_argument("--vgg-weights", default=str(SHARED / "weights" / "vgg19_imagenet_conv1_1-conv3_4.safetensors"))
    ap.add_argument("--style", default=str(SHARED / "data" / "styles" / "vangogh_starry_night.jpg"))
    ap.add_argument("--method", default="adain")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="profiled frames (after one untimed warm-up)")
    ap.add_argument("--plain", action="store_true", help="the decoder as trained, not its fused inference form")
    ap.add_argument("--fast", default=None, metavar="STUDENT", help="profile the fast variant with this student model")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    model = build_arbitrary_model(styles=[StyleImage(path=args.style)], method=args.method,
                                  decoder=args.fast or args.decoder, vgg_weights=args.vgg_weights, fast=bool(args.fast))
    stage = FeedForwardStage(model=model, device="cpu", stabilize=0.0, fuse=not args.plain)
    net = stage.stylizer.model.net
    print(f"# decoder: {type(net.decoder).__name__}; encoder: {type(net.encoder).__name__}; "
          f"{torch.get_num_threads()} threads; torch {torch.__version__}")
    # the student's decode_affine is no forward call: label the layers after its first conv
    decoder_parts = [net.decoder.body, net.decoder.head] if args.fast else [net.decoder]
    hooks = _label_hooks(net, "net") + _label_hooks(net.encoder, "encoder")
    for part in decoder_parts:
        hooks += _label_hooks(part, "decoder")
    image = _frame(width, height)
    stage.process(Frame(index=0, image=image))  # warm-up, untimed
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(args.repeats):
            with torch.profiler.record_function("frame"):
                stage.process(Frame(index=i + 1, image=image))
    for h in hooks:
        h.remove()
    stage.close()

    # every top-level aten op (its parent is a label, not another op) is charged to its part and its name
    parts: dict[str, float] = defaultdict(float)
    ops: dict[tuple[str, str], float] = defaultdict(float)
    total = 0.0
    for ev in prof.events():
        if ev.name == "frame":
            total += ev.cpu_time_total
            continue
        if not ev.name.startswith("aten::"):
            continue
        parent, part = ev.cpu_parent, None
        while parent is not None and not parent.name.startswith(("aten::", "frame", "net", "encoder", "decoder")):
            parent = parent.cpu_parent
        if parent is None or parent.name.startswith("aten::"):
            continue  # not a top-level op
        part = _PARTS[parent.name]
        parts[part] += ev.cpu_time_total
        ops[(part, ev.name)] += ev.cpu_time_total
    for part in ("encoder", "decoder"):
        parts[part] = sum(ev.cpu_time_total for ev in prof.events() if ev.name == part)
    other = total - sum(parts.values())
    print(f"frame: {total / args.repeats / 1e3:.0f} ms on this (loaded) machine; shares of it:")
    for part, t in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:30s} {100 * t / total:5.1f} %")
        for (p, name), u in sorted(ops.items(), key=lambda kv: -kv[1]):
            if p == part and u / total >= 0.002:
                print(f"      {name:36s} {100 * u / total:5.1f} %")
    print(f"  {'python and the rest':30s} {100 * other / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
