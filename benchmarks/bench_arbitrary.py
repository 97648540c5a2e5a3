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

**The fast variant** (``--student models/student_relu31.safetensors``, a file or checkpoint of ``vidstyle train
--kind student``) adds two rows: ``fast`` (the student's encoder and decoder, the painting analysed by the student:
what ``--fast`` runs) and ``fast_vgg`` (the same with the painting's statistics from VGG19), next to ``adain`` (the
VGG variant), and the ratio of their style ratios (target: fast ≤ 1.3× adain); the means are also given over the
paintings the student never saw (its card's held-out paintings)::

    python benchmarks/bench_arbitrary.py --methods adain --student models/student_relu31.safetensors \
        --decoder models/decoder_relu31.safetensors \
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors --sheet /tmp/fast.png

With ``--speed --student …`` the student's GFLOP per frame and time per frame (AdaIN, float32; bfloat16 too)
are measured next to the VGG variant's.

**Speed against the compute floor** (``--speed``; timings, so run it on a quiet machine): the VGG variant's
GFLOP per frame counted from the conv shapes (encoder to relu3_1 plus the mirrored decoder, 2·C_in·C_out·k²
per output pixel; cross-checked with ``torch.utils.flop_counter``), the conv2d peak measured in the same run
(``bench_pipeline.conv_peak``: dense 3×3 convs at this frame size), the floor = GFLOP ÷ peak, and for AdaIN and
WCT (float32) the measured time per frame and its ratio to the floor (target ≤ 1.3×). The network runs as the back
end runs it (the decoder in its fused inference form, :mod:`vidstyle.nets.fused_decoder`; the frame built from
uint8 pixels as the stage builds it); the floor stays the trained network's GFLOP. Each variant gets ``--warmup``
untimed calls (the first call of a run does one-off work), then ``--repeats`` timed calls interleaved across the
variants, and the **median** is reported. ``--ab`` also times the decoder as trained and prints plain ÷ fused from
the same interleaved repeats. On a GPU, also bfloat16 + channels-last and batches (``--batches 1,8``):

    python benchmarks/bench_arbitrary.py --speed --decoder models/decoder_relu31.safetensors \
        --vgg-weights ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors --threads 2 --repeats 9 --ab
    python benchmarks/bench_arbitrary.py --speed --device cuda --speed-sizes 640x360,1920x1080 --batches 1,8 ...
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def conv_gflop(encoder: torch.nn.Module, decoder: torch.nn.Module, height: int, width: int) -> float:
    """GFLOP of one frame through ``encoder`` and ``decoder``, counted from their conv shapes: each conv costs
    2·C_in·C_out·k_h·k_w multiply-adds per output pixel (biases, ReLUs, pooling and the transform left out)."""
    total = 0.0
    p = next(encoder.parameters())  # the models move between devices and dtypes during the speed loop
    x = torch.zeros(1, 3, height, width, device=p.device, dtype=p.dtype)
    hooks = []

    def count(mod: torch.nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        total += 2.0 * mod.in_channels // mod.groups * mod.out_channels * kh * kw * out.shape[-2] * out.shape[-1] * out.shape[0]

    for m in (*encoder.modules(), *decoder.modules()):
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(count))
    try:
        with torch.no_grad():
            decoder(encoder(x), size=(height, width))
    finally:
        for h in hooks:
            h.remove()
    return total / 1e9


def _median_times(calls: dict[str, object], *, repeats: int, warmup: int, sync: object,
                  min_seconds: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each of ``calls`` (name → no-argument function): ``warmup`` untimed calls each (the
    first call of a run does one-off work: allocations, oneDNN primitive creation), then rounds timing every call
    once, interleaved, so that a change of machine load hits all of them alike: ``repeats`` rounds, more while
    less than ``min_seconds`` have passed (fast GPU calls)."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()  # type: ignore[operator]
    sync()  # type: ignore[operator]
    times: dict[str, list[float]] = {k: [] for k in calls}
    start, rounds = time.perf_counter(), 0
    while rounds < repeats or (time.perf_counter() - start < min_seconds and rounds < 10_000):
        rounds += 1
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            sync()  # type: ignore[operator]
            times[name].append(time.perf_counter() - t0)
    return times


def speed(args: argparse.Namespace) -> int:
    """Time per frame of AdaIN and WCT against the compute floor (see the module docstring)."""
    import statistics

    from torch.utils.flop_counter import FlopCounterMode

    from bench_pipeline import conv_peak
    from vidstyle.stylize.arbitrary import ArbitraryNet
    from vidstyle.stylize.feedforward import images_to_batch

    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.backends.cudnn.benchmark = True
    state = load_vgg_state(weights=args.vgg_weights)
    encoder = VGGEncoder(layer="relu3_1", state=state).eval()
    decoder = load_decoder(args.decoder, layer="relu3_1").eval()
    painting = style_image_at(load_image(Path(args.styles_dir) / STYLES[0]).unsqueeze(0), long_side=args.style_size)
    with torch.no_grad():
        sf = encoder(painting)
    rows = []
    info = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"# device: {info}; torch {torch.__version__}; median of ≥ {args.repeats} interleaved repeats after "
          f"{args.warmup} untimed call(s) per variant")
    for size in args.speed_sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        g = conv_gflop(encoder, decoder, height, width)
        p = next(encoder.parameters())
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            decoder(encoder(torch.zeros(1, 3, height, width, device=p.device, dtype=p.dtype)), size=(height, width))
        g_counter = fc.get_total_flops() / 1e9
        fused_net = ArbitraryNet(encoder=encoder, decoder=decoder, statistics=prepare_style(sf, method="adain"),
                                 method="adain").for_inference()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            fused_net.decoder(encoder(torch.zeros(1, 3, height, width, device=p.device, dtype=p.dtype)),
                              size=(height, width))
        g_fused = fc.get_total_flops() / 1e9
        peak = conv_peak(width, height, str(dev))
        floor = g / peak
        print(f"{width}x{height}: {g:.1f} GFLOP/frame from the conv shapes (flop counter {g_counter:.1f}; with the fused "
              f"decoder the network executes {g_fused:.1f}); conv2d peak {peak:.1f} GFLOP/s measured now; floor "
              f"{floor * 1e3:.1f} ms/frame ({1 / floor:.2f} fps) = {g:.1f} GFLOP / peak", flush=True)
        variants = [("float32", torch.float32, False)]
        if dev.type == "cuda":
            variants += [("bfloat16+cl", torch.bfloat16, True)]
        for method in args.speed_methods.split(","):
            stats = prepare_style(sf, method=method)  # type: ignore[arg-type]
            for label, dtype, channels_last in variants:
                base = ArbitraryNet(encoder=encoder, decoder=decoder, statistics=stats, method=method)
                nets = {"fused": base.for_inference()}  # what the back end runs (FeedForwardStylizer)
                if args.ab:
                    nets["plain"] = base  # the decoder as trained
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                nets = {k: n.to(dev, dtype).to(memory_format=fmt).eval() for k, n in nets.items()}
                for batch in [int(b) for b in args.batches.split(",")]:
                    rng = np.random.default_rng(0)  # uint8 frames → float as the stage builds them (NHWC memory)
                    frames = [(rng.random((height, width, 3)) * 255).astype(np.uint8) for _ in range(batch)]
                    x = images_to_batch(frames, device=dev).to(dtype).contiguous(memory_format=fmt) \
                        if channels_last else images_to_batch(frames, device=dev).to(dtype)
                    with torch.inference_mode():
                        times = _median_times({k: (lambda n=n: n(x)) for k, n in nets.items()}, repeats=args.repeats,
                                              warmup=args.warmup, sync=sync, min_seconds=args.speed_seconds)
                    for name, ts in times.items():
                        per_frame = statistics.median(ts) / batch
                        row = {"size": f"{width}x{height}", "method": method, "decoder": name, "precision": label,
                               "batch": batch, "gflop": g, "gflop_counter": g_counter, "gflop_fused": g_fused,
                               "peak_gflops": peak, "floor_ms": floor * 1e3, "ms_per_frame": per_frame * 1e3,
                               "fps": 1 / per_frame, "vs_floor": per_frame / floor, "repeats_ms": [t * 1e3 for t in ts],
                               "device": info}
                        rows.append(row)
                        print(f"  {method:5s} {name:5s} {label:12s} batch {batch}: {per_frame * 1e3:8.2f} ms/frame "
                              f"{1 / per_frame:8.1f} fps  {row['vs_floor']:.2f}x the floor", flush=True)
                    if "plain" in times:
                        ratio = statistics.median(p / f for p, f in zip(times["plain"], times["fused"]))
                        print(f"  {method:5s} plain ÷ fused, median of the paired repeats: {ratio:.2f}x", flush=True)
                del nets
    if args.student:
        rows += student_speed(args, dev, sync, painting, info)
    if args.json:
        Path(args.json).write_text(json.dumps({"speed": rows}, indent=1) + "\n")
    return 0


def student_speed(args: argparse.Namespace, dev: torch.device, sync: object, painting: torch.Tensor,
                  info: str) -> list[dict[str, object]]:
    """Time per frame of the fast variant (AdaIN through the student), float32 and bfloat16, against its FLOPs."""
    import statistics

    from bench_pipeline import conv_peak
    from vidstyle.nets.student import load_student
    from vidstyle.stylize.arbitrary import ArbitraryNet

    student = load_student(args.student)
    with torch.no_grad():
        stats = prepare_style(student.encoder(painting), method="adain")
    rows = []
    for size in args.speed_sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        g = conv_gflop(student.encoder, student.decoder, height, width)
        peak = conv_peak(width, height, str(dev))
        print(f"{width}x{height} fast variant: {g:.2f} GFLOP/frame; floor {g / peak * 1e3:.2f} ms/frame at the dense "
              f"conv2d peak ({peak:.1f} GFLOP/s; depthwise convs run far below it)", flush=True)
        for label, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            net = ArbitraryNet(encoder=student.encoder, decoder=student.decoder, statistics=stats,
                               method="adain").to(dev, dtype).eval()
            for batch in [int(b) for b in args.batches.split(",")]:
                x = torch.rand(batch, 3, height, width, device=dev, dtype=dtype)
                with torch.inference_mode():
                    times = _median_times({"fast": lambda: net(x)}, repeats=args.repeats, warmup=args.warmup, sync=sync,
                                          min_seconds=args.speed_seconds)
                per_frame = statistics.median(times["fast"]) / batch
                rows.append({"size": f"{width}x{height}", "method": "fast", "precision": label, "batch": batch,
                             "gflop": g, "peak_gflops": peak, "ms_per_frame": per_frame * 1e3, "fps": 1 / per_frame,
                             "device": info})
                print(f"  fast  {label:12s} batch {batch}: {per_frame * 1e3:8.2f} ms/frame {1 / per_frame:8.1f} fps",
                      flush=True)
            student.float()
    return rows


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
    ap.add_argument("--cascade", default=None, metavar="DEC21,DEC11",
                    help="relu2_1 and relu1_1 decoders (files or checkpoints): adds the coarse-to-fine cascade of Li et "
                         "al. 2017 (relu3_1 → relu2_1 → relu1_1; method wct_cascade, and adain_cascade with adain)")
    ap.add_argument("--student", default=None, metavar="PATH",
                    help="the fast variant's student model (file or checkpoint): adds the rows fast and fast_vgg")
    ap.add_argument("--speed", action="store_true", help="only the speed vs compute floor measurement (timings)")
    ap.add_argument("--speed-sizes", default="640x360", help="WxH,... of the speed measurement")
    ap.add_argument("--speed-methods", default="adain,wct")
    ap.add_argument("--batches", default="1", help="batch sizes of the speed measurement, e.g. 1,8")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per speed variant (the median is reported)")
    ap.add_argument("--speed-seconds", type=float, default=0.0,
                    help="keep repeating (interleaved) until this many seconds have passed per speed measurement")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls per speed variant before the repeats")
    ap.add_argument("--ab", action="store_true",
                    help="also time the decoder as trained (plain) against the fused form the back end runs, "
                         "interleaved, and print their ratio")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed:
        return speed(args)
    dev = torch.device(args.device)
    state = load_vgg_state(weights=args.vgg_weights)
    encoder = VGGEncoder(layer="relu3_1", state=state).to(dev)
    decoder = load_decoder(args.decoder, layer="relu3_1").to(dev)
    loss_net = VGGFeatures(layers=tuple(dict.fromkeys(STYLE_LAYERS + CONTENT_LAYERS)), state=state, pooling="max").to(dev)  # as vidstyle.fidelity: the published VGG19
    frames = held_out_frames(Path(args.video), args.frame_size)
    styles = [s for s in args.styles.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    levels: list[tuple[VGGEncoder, torch.nn.Module]] = []  # the cascade's finer levels, coarse to fine
    if args.cascade:
        for layer, path in zip(("relu2_1", "relu1_1"), args.cascade.split(",")):
            levels.append((VGGEncoder(layer=layer, state=state).to(dev), load_decoder(path, layer=layer).to(dev)))
        methods += [f"{m}_cascade" for m in ("wct", "adain") if m in methods]

    student, held_paintings = None, set()
    if args.student:
        from vidstyle.nets.student import load_student

        student = load_student(args.student).to(dev)
        held_paintings = set(student.card.get("held_out", {}).get("paintings", []) or [])
        if "adain" not in methods:
            methods.insert(0, "adain")
        methods += ["fast", "fast_vgg"]

    def feats(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return loss_net(x.to(dev))

    def style_dist(x: torch.Tensor, targets: dict[str, torch.Tensor]) -> float:
        return float(style_loss(feats(x), targets, reduction="sum"))

    rows: list[dict[str, object]] = []
    tiles: dict[tuple[str, str, str], np.ndarray] = {}
    psnrs: list[float] = []
    student_psnrs: list[float] = []
    with torch.no_grad():
        paintings = {s: style_image_at(load_image(Path(args.styles_dir) / s).unsqueeze(0), long_side=args.style_size) for s in styles}
        stats = {}
        for s, img in paintings.items():
            f = encoder(img.to(dev))
            stats[s] = {m: prepare_style(f, method=m) for m in methods if m in METHODS}  # once per painting
            if student is not None:
                stats[s]["fast"] = prepare_style(student.encoder(img.to(dev)), method="adain")
                stats[s]["fast_vgg"] = stats[s]["adain"]
            for i, (enc, _) in enumerate(levels):  # the finer levels' statistics, also once
                fl = enc(img.to(dev))
                for m in ("wct", "adain"):
                    if f"{m}_cascade" in methods:
                        stats[s][f"{m}_cascade.{i}"] = prepare_style(fl, method=m)
        for fname, photo in frames.items():
            x = photo.to(dev)
            cf = encoder(x)
            size = tuple(x.shape[-2:])
            rec = decoder(cf, size=size)
            psnrs.append(10 * math.log10(1 / max(float((rec - x).pow(2).mean()), 1e-12)))
            if student is not None:
                sf = student.encoder(x)
                srec = student.decoder(sf, size=size)
                student_psnrs.append(10 * math.log10(1 / max(float((srec - x).pow(2).mean()), 1e-12)))
                tiles[(fname, "student recon", "")] = _to_bgr8(srec.cpu())
            fp = feats(x)
            grey_photo = luminance_image(x)
            for s, img in paintings.items():
                targets = {k: gram_matrix(v) for k, v in feats(img).items() if k in STYLE_LAYERS}
                grey_targets = {k: gram_matrix(v) for k, v in feats(luminance_image(img.to(dev))).items() if k in STYLE_LAYERS}
                base, grey_base = style_dist(x, targets), style_dist(grey_photo, grey_targets)
                for m in methods:
                    t0 = time.perf_counter()
                    if m in ("fast", "fast_vgg"):  # the student: its encoder, AdaIN, its decoder
                        out = student.decoder(adain(sf, stats[s][m]), size=size)
                    elif m.endswith("_cascade"):  # Li et al. 2017: transform and decode level by level, coarse to fine
                        base_m = m.split("_")[0]
                        out = decoder(METHODS[base_m](cf, stats[s][base_m]), size=size)
                        for i, (enc, dec) in enumerate(levels):
                            out = dec(METHODS[base_m](enc(out), stats[s][f"{m}.{i}"]), size=size)
                    else:
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
    if student is not None:
        print(f"student {args.student}: reconstruction PSNR {sum(student_psnrs) / len(student_psnrs):.2f} dB; "
              f"fast ÷ adain style ratio {summary['fast']['style_ratio'] / summary['adain']['style_ratio']:.2f} "
              f"(painting statistics from VGG: {summary['fast_vgg']['style_ratio'] / summary['adain']['style_ratio']:.2f}); "
              "target ≤ 1.3")
        unseen = [s for s in styles if s in held_paintings]
        if unseen:
            print(f"paintings the student never saw ({', '.join(unseen)}):")
            for m in ("adain", "fast", "fast_vgg"):
                sel = [r for r in rows if r["method"] == m and r["style"] in unseen]
                mean = {k: sum(float(r[k]) for r in sel) / len(sel) for k in ("style_ratio", "texture_ratio", "content")}
                summary[f"{m}_unseen"] = mean
                print(f"{m:8s} {mean['style_ratio']:12.3f} {mean['texture_ratio']:14.3f} {mean['content']:9.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"psnr": psnrs, "student_psnr": student_psnrs, "summary": summary,
                                               "rows": rows}, indent=1) + "\n")
    if args.sheet:
        t = 160
        header = [_tile(np.full((t, t, 3), 255, np.uint8), t, "")] * 2 + [_tile(_to_bgr8(paintings[s]), t, Path(s).stem) for s in styles]
        lines = [np.hstack(header)]
        for fname in frames:
            for m in methods:
                recon = "student recon" if m.startswith("fast") else "recon"
                first = [_tile(tiles[(fname, "photo", "")], t, fname),
                         _tile(tiles[(fname, recon, "")], t, "student decoded" if m.startswith("fast") else "decoded")]
                lines.append(np.hstack(first + [_tile(tiles[(fname, m, s)], t, m) for s in styles]))
        cv2.imwrite(args.sheet, np.vstack(lines))
        print(f"sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
