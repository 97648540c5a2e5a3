"""GPU paths of the feed-forward back end: fp32 vs bf16, channels_last, CUDA graphs, batch size.

Run on a machine with a CUDA GPU (needs only torch + vidstyle's nets; no PyAV):

    python benchmarks/bench_gpu.py [--smoke] [--out results.json]

Prints, per network and resolution, frames/s of each variant and its ratio to the fp32 NCHW eager
baseline measured in the same run, the achieved TFLOP/s, and the max |difference| of bf16 output
against fp32 (RGB in [0, 1]). Also times the stabiliser (warp + blend + detail restore) and one
training iteration of the tiny net. ``--smoke`` runs tiny sizes on the CPU to check the script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.nets.engstrom import Engstrom2016Net  # noqa: E402
from vidstyle.nets.transformer import TransformerNet  # noqa: E402


def gflop(net: torch.nn.Module, h: int, w: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net(torch.rand(1, 3, h, w, device=device))
    return fc.get_total_flops() / 1e9


def timeit(fn, *, sync, warmup: int = 3, iters: int = 20) -> float:
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.backends.cudnn.benchmark = True
    sizes = [(64, 96)] if args.smoke else [(360, 640), (720, 1280), (1080, 1920)]
    nets = {
        "tiny": lambda: TransformerNet(config="tiny"),
        "small": lambda: TransformerNet(config="small"),
        "full": lambda: TransformerNet(config="full"),
        "engstrom2016": Engstrom2016Net,
    }
    iters = 3 if args.smoke else 30
    info = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    print(f"# {info}")
    rows = []
    for name, make in nets.items():
        torch.manual_seed(0)
        net = make().to(dev).eval()
        for h, w in sizes:
            flops = gflop(net, h, w, dev)
            x32 = torch.rand(1, 3, h, w, device=dev)
            with torch.inference_mode():
                ref = net(x32).float()
            variants = {}

            def run(model, x):
                with torch.inference_mode():
                    return model(x)

            base = timeit(lambda: run(net, x32), sync=sync, iters=iters)
            variants["fp32"] = base
            net_cl = make().to(dev).eval()
            net_cl.load_state_dict(net.state_dict())
            net_cl = net_cl.to(memory_format=torch.channels_last)
            xcl = x32.contiguous(memory_format=torch.channels_last)
            variants["fp32+cl"] = timeit(lambda: run(net_cl, xcl), sync=sync, iters=iters)
            maxdiff = float("nan")
            if dev.type == "cuda":
                net_bf = make().to(dev).eval()
                net_bf.load_state_dict(net.state_dict())
                net_bf = net_bf.to(torch.bfloat16)
                xbf = x32.to(torch.bfloat16)
                variants["bf16"] = timeit(lambda: run(net_bf, xbf), sync=sync, iters=iters)
                net_bfcl = net_bf.to(memory_format=torch.channels_last)
                xbfcl = xbf.contiguous(memory_format=torch.channels_last)
                variants["bf16+cl"] = timeit(lambda: run(net_bfcl, xbfcl), sync=sync, iters=iters)
                with torch.inference_mode():
                    maxdiff = float((net_bfcl(xbfcl).float() - ref).abs().max())
                # CUDA graph of the bf16 channels-last net (static input buffer)
                try:
                    static_in = xbfcl.clone()
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s), torch.inference_mode():
                        for _ in range(3):
                            net_bfcl(static_in)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g), torch.inference_mode():
                        static_out = net_bfcl(static_in)
                    variants["bf16+cl+graph"] = timeit(g.replay, sync=sync, iters=iters)
                    graph_diff = float((static_out.float() - ref).abs().max())
                except Exception as exc:  # report, don't die
                    print(f"  cuda graph failed for {name} {w}x{h}: {exc}")
                    graph_diff = float("nan")
                # batch 8, bf16 + channels_last
                xb8 = torch.rand(8, 3, h, w, device=dev, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
                variants["bf16+cl b8 (per frame)"] = timeit(lambda: run(net_bfcl, xb8), sync=sync, iters=max(3, iters // 4)) / 8
                del net_bf, net_bfcl
            for k, t in variants.items():
                rows.append({"net": name, "size": f"{w}x{h}", "variant": k, "ms": t * 1e3, "fps": 1.0 / t,
                             "vs_fp32": base / t, "tflops": flops / t / 1e3, "gflop": flops,
                             "maxdiff_bf16": maxdiff if k.startswith("bf16") else 0.0})
                print(f"{name:13s} {w}x{h:<5d} {k:24s} {t*1e3:8.2f} ms {1/t:8.1f} fps  x{base/t:5.2f}  {flops/t/1e3:6.2f} TFLOP/s"
                      + (f"  max|bf16-fp32| {maxdiff:.4f}" if k.startswith("bf16") else ""), flush=True)
            del net_cl
        del net
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    # stabiliser step (warp + blend + detail restore) at 1080p
    from vidstyle.stylize.temporal import stabilize
    from vidstyle.flow.warping import warp

    h, w = sizes[-1]
    new = torch.rand(1, 3, h, w, device=dev)
    prev = torch.rand(1, 3, h, w, device=dev)
    flow = torch.randn(1, 2, h, w, device=dev)
    cons = (torch.rand(1, 1, h, w, device=dev) > 0.1).float()
    t = timeit(lambda: stabilize(new, warp(prev, flow), cons, strength=0.85), sync=sync, iters=iters)
    print(f"stabiliser step {w}x{h}: {t*1e3:.2f} ms")
    rows.append({"net": "stabiliser", "size": f"{w}x{h}", "variant": "fp32", "ms": t * 1e3, "fps": 1 / t})

    # training iteration of the tiny net (random VGG prefix of the same shapes as conv1_1..conv3_4)
    from vidstyle.losses import StyleLoss, content_loss, tv_loss
    from vidstyle.nets.vgg import VGGFeatures, VGGState

    torch.manual_seed(0)
    shapes = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256), (256, 256)]
    names = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4"]
    state = VGGState(convs={n: (torch.randn(o, i, 3, 3) * 0.05, torch.zeros(o)) for n, (o, i) in zip(names, shapes)},
                     convention="caffe", source="random")
    vgg = VGGFeatures(layers=["relu1_2", "relu2_2", "relu3_3"], state=state).to(dev)
    s = 64 if args.smoke else 256
    with torch.no_grad():
        sf = vgg(torch.rand(1, 3, s, s, device=dev))
    style = StyleLoss(style_features=[{k: sf[k] for k in ["relu1_2", "relu2_2", "relu3_3"]}]).to(dev)
    net = TransformerNet(config="tiny").to(dev).train()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.rand(4, 3, s, s, device=dev)

    def step():
        opt.zero_grad()
        y = net(x)
        f = vgg(y)
        with torch.no_grad():
            c = vgg(x)["relu2_2"]
        loss = content_loss(f["relu2_2"], c) + 10 * style(f) + tv_loss(y * 255)
        loss.backward()
        opt.step()

    t = timeit(step, sync=sync, iters=max(3, iters // 2))
    print(f"training step tiny, batch 4 at {s}px: {t*1e3:.1f} ms")
    rows.append({"net": "train-tiny", "size": f"{s}x{s}x4", "variant": "fp32", "ms": t * 1e3, "fps": 1 / t})
    if args.out:
        Path(args.out).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
