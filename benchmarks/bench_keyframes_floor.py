"""Keyframe-guided stylization, temporal: the floors of the warping-error target and what each setting trades.

Issue 19 asks for a warping-error ratio ≤ 0.3 against the per-frame application (the keyframe network alone,
frame by frame) at ≥ 0.9× its sharpness, *and* for a prediction of the held-out frame M that beats the best
warped keyframe on L1 and on the Gram style loss. This script measures, on the held-out protocol of
``bench_keyframes.py`` (same clips, paintings, networks and ``--cache``; quality only, not a timing):

* **floors**: the warping-error ratio of the input video itself (a perfectly consistent video, with the input's
  sharpness) and of the carried keyframes without a stabiliser;
* **where the carry's warping error is**: the share at pixels whose source (the keyframe behind, the keyframe
  ahead, or the network) changes between two frames;
* **the trade** of each stabiliser setting: warping-error ratio, sharpness ratio, and L1 / Gram (×10⁹) of the
  output at M, marked ``wins`` where it beats the best warped keyframe on both;
* a **temporal fade** of the two carried paintings (a prototype, not in the library): per pixel the weights
  ``(1 − α)·r_A⁴`` and ``α·r_B⁴`` (``α`` the frame's position between the keyframes, ``r`` the carry's
  reliability), blended with the variance-preserving rule of Heitz & Neyret 2018 about a 4 px local mean
  (so two strokes do not average into a blur), and the network where neither is trusted (soft, r/0.3).

Every warping error uses the metric's own flows (dis-medium on the input, ``vidstyle.metrics``).

    python benchmarks/bench_keyframes_floor.py --shared ../shared --cache /tmp/kfcache \\
        [--clips cockatoo,realshort] [--methods stylization,optim,posterize] [--json out.jsonl] \\
        [--picture docs/images/keyframes_stabiliser_trade.jpg]

``--picture``: per case, the painted M, then M from the carry alone, the stabiliser at 0.5, at the default 0.85
and at the steadiest setting (the first of the two without detail restoration that meets the warping target,
else the last), each with a 2× crop of its centre below.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_keyframes as bk  # noqa: E402

import vidstyle.keyframes.stage as keyframe_stage  # noqa: E402
from vidstyle.fidelity import fidelity_vgg  # noqa: E402
from vidstyle.flow.warping import remap_coordinates, warp_numpy  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402
from vidstyle.keyframes import carry  # noqa: E402
from vidstyle.keyframes.options import Keyframe, KeyframeOptions  # noqa: E402
from vidstyle.keyframes.run import KeyframeSet, _flow_stage, build_keyframe_stages  # noqa: E402
from vidstyle.metrics import sharpness, warp_reference, warping_error  # noqa: E402
from vidstyle.options import TemporalOptions  # noqa: E402
from vidstyle.stylize.stabilize import StabilizeStage  # noqa: E402
from vidstyle.stylize.temporal import Stabilizer  # noqa: E402

#: (name, Stabilizer settings or None for none) of the stabiliser rows
STABILIZERS: list[tuple[str, dict | None]] = [
    ("none", None),
    ("blend 0.5", {"strength": 0.5}),
    ("blend 0.7", {"strength": 0.7}),
    ("blend 0.85 (default)", {"strength": 0.85}),
    ("blend 0.95", {"strength": 0.95}),
    ("blend 0.95, no detail restoration", {"strength": 0.95, "restore_detail": False}),
    ("blend 0.99, bilinear, no detail restoration", {"strength": 0.99, "restore_detail": False,
                                                     "interpolation": "bilinear"}),
]
#: stabiliser rows also run after the temporal fade
FADE_STABILIZERS = ("none", "blend 0.7", "blend 0.85 (default)")


def record_carry() -> list:
    """Make the keyframe stage record what it blends: ``(network, behind, ahead)`` per emitted frame."""
    parts: list = []
    original = carry.blend_carry

    def recording(network, carried, *, strength, other=None):  # noqa: ANN001, ANN202
        parts.append((network, carried, other))
        return original(network, carried, strength=strength, other=other)

    keyframe_stage.blend_carry = recording
    return parts


def labels(parts: list) -> list[np.ndarray]:
    """Each frame's source per pixel, as :func:`vidstyle.keyframes.carry.blend_carry` picks it
    (:func:`~vidstyle.keyframes.carry.choose_source`): 0 the network, 1 the keyframe behind, 2 the keyframe ahead."""
    out = []
    for network, behind, ahead in parts:
        h, w = network.shape[:2]
        ra = behind[1] if behind is not None else np.zeros((h, w), np.float32)
        rb = ahead[1] if ahead is not None else np.zeros((h, w), np.float32)
        use_ahead, keep = carry.choose_source(ra, rb)
        out.append(np.where(keep, np.where(use_ahead, 2, 1), 0).astype(np.uint8))
    return out


def switch_share(outputs: list[np.ndarray], labs: list[np.ndarray], reference) -> tuple[float, float]:  # noqa: ANN001
    """(share of the warping error, share of the compared pixels) at pixels whose source changes between frames."""
    err = [0.0, 0.0]
    pix = [0.0, 0.0]
    for t, (flow, mask) in enumerate(zip(reference.flows, reference.masks)):
        sq = ((outputs[t] - warp_numpy(outputs[t + 1], flow)) ** 2).sum(2) * mask
        nxt = cv2.remap(labs[t + 1], *remap_coordinates(flow), cv2.INTER_NEAREST)
        switched = labs[t] != nxt
        for k, sel in enumerate((switched, ~switched)):
            err[k] += float(sq[sel].sum())
            pix[k] += float(mask[sel].sum())
    return err[0] / sum(err), pix[0] / sum(pix)


def fade(parts: list, *, soft: float = 0.3, sigma: float = 4.0, power: float = 4.0) -> list[np.ndarray]:
    """The temporal-fade prototype (module docstring) from the recorded carry parts."""
    out = []
    n = len(parts)
    for t, (network, behind, ahead) in enumerate(parts):
        if behind is None or ahead is None:
            out.append(carry.blend_carry(network, behind or ahead, strength=1.0))
            continue
        (wa, ra), (wb, rb) = behind, ahead
        alpha = t / (n - 1)
        pa, pb = (1 - alpha) * ra ** power + 1e-12, alpha * rb ** power + 1e-12
        a = (pa / (pa + pb))[..., None]
        scale = 1 / np.sqrt(a ** 2 + (1 - a) ** 2)
        ma, mb = cv2.GaussianBlur(wa, (0, 0), sigma), cv2.GaussianBlur(wb, (0, 0), sigma)
        painted = a * (ma + scale * (wa - ma)) + (1 - a) * (mb + scale * (wb - mb))
        cover = np.clip(np.maximum(ra, rb) / soft, 0, 1)[..., None]
        out.append(np.clip(cover * painted + (1 - cover) * network, 0, 1).astype(np.float32))
    return out


def stabilised(outputs: list[np.ndarray], frames: list[np.ndarray], settings: dict | None) -> list[np.ndarray]:
    """``outputs`` through the stabiliser with ``settings`` (the application's dis-medium flow stage)."""
    if settings is None:
        return outputs
    flow = _flow_stage(TemporalOptions(flow="dis-medium"))
    stage = StabilizeStage(stabilizer=Stabilizer(**settings))
    res = []
    try:
        for i, (img, y) in enumerate(zip(frames, outputs)):
            f = flow.process(Frame(index=i, image=img))[0]
            f.stylized = np.ascontiguousarray(y, dtype=np.float32)
            z = stage.process(f)[0].stylized
            res.append(z.astype(np.float32) / 255 if z.dtype == np.uint8 else z)
    finally:
        flow.close()
        stage.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--clips", default="cockatoo,realshort")
    ap.add_argument("--methods", default="stylization,optim,posterize")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1000, help="training steps of the joint network (cache key)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="bench_keyframes.py's cache: paintings and trained networks")
    ap.add_argument("--json", default=None, help="write the rows here, one JSON object per line")
    ap.add_argument("--picture", default=None, help="contact sheet of M per setting (module docstring)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    vgg = str(shared / "weights/vgg19_imagenet_conv1_1-conv3_4.safetensors")
    metric_vgg = fidelity_vgg(vgg)
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    parts = record_carry()
    rows = []
    sheet: list[tuple[str, list[np.ndarray]]] = []
    for clip in args.clips.split(","):
        frames, m, b = bk.protocol_clip(shared, clip, width=args.width)
        frames = frames[: b + 1]
        reference = warp_reference(frames)
        for method in args.methods.split(","):
            tag = f"{clip}_{method}_{args.width}"
            painted, _ = bk._cached_paintings(cache, tag, frames, (0, m, b), method, shared=shared, vgg=vgg)
            score = bk.scorer(metric_vgg, painted[m])
            keyset = KeyframeSet(keys=(Keyframe(0, "A"), Keyframe(b, "B")), frames=[frames[0], frames[b]],
                                 paintings=[painted[0], painted[b]], tracked=[None, None])
            opts = KeyframeOptions(keys=keyset.keys, keyframe_blend="joint", max_steps=args.steps, time_budget=1000.0)
            mfile = cache / f"model_{tag}_joint_{args.steps}_frame_default.safetensors" if cache else None
            model = bk.cached_model(mfile, keyset, options=opts, vgg=vgg)
            warped = min((bk.warped_keyframe(frames, painted[k], src=k, dst=m) for k in (0, b)),
                         key=lambda w: score(w)[0])
            base_l1, base_gram = score(warped)

            per_frame = bk.run_stages(build_keyframe_stages(model, temporal=TemporalOptions(stabilize=0.0, flow="none")),
                                      frames)
            we_pf = warping_error(per_frame, reference=reference).mean
            sh_pf = float(np.mean([sharpness(x) for x in per_frame]))
            parts.clear()
            stages = build_keyframe_stages(model, temporal=TemporalOptions(stabilize=0.0, flow="dis-medium"),
                                           paintings={0: painted[0], b: painted[b]}, warp_blend=1.0)
            stages[1].raw_output = True
            carried = bk.run_stages(stages, frames)
            recorded = list(parts)
            share_err, share_pix = switch_share(carried, labels(recorded), reference)
            head = {"clip": clip, "method": method, "warped_keyframe": {"l1": round(base_l1, 4),
                                                                         "gram": round(base_gram / 1e9, 3)},
                    "input_video_ratio": round(warping_error(frames, reference=reference).mean / we_pf, 3),
                    "carry_switch_share": {"error": round(share_err, 3), "pixels": round(share_pix, 3)}}
            print(json.dumps(head), flush=True)
            rows.append(head)
            faded = fade(recorded)
            shown: dict[str, np.ndarray] = {}
            for carry_name, outputs, names in (("switch (default)", carried, [s[0] for s in STABILIZERS]),
                                               ("fade (prototype)", faded, list(FADE_STABILIZERS))):
                for name in names:
                    out = stabilised(outputs, frames, dict(STABILIZERS)[name])
                    l1, gram = score(out[m])
                    row = {"clip": clip, "method": method, "carry": carry_name, "stabiliser": name,
                           "warping_ratio": round(warping_error(out, reference=reference).mean / we_pf, 3),
                           "sharpness_ratio": round(float(np.mean([sharpness(x) for x in out])) / sh_pf, 3),
                           "l1": round(l1, 4), "gram": round(gram / 1e9, 3),
                           "wins": l1 < base_l1 and gram < base_gram}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    if carry_name.startswith("switch"):
                        shown[name] = out[m]
                        if "no detail" in name and "steadiest" not in shown and row["warping_ratio"] <= 0.3 \
                                and row["sharpness_ratio"] >= 0.9:
                            shown["steadiest"] = out[m]
            steadiest = shown.pop("steadiest", shown[STABILIZERS[-1][0]])
            sheet.append((f"{clip} / {method}", [painted[m], shown["none"], shown["blend 0.5"],
                                                 shown["blend 0.85 (default)"], steadiest]))
    if args.json:
        Path(args.json).write_text("".join(json.dumps(r) + "\n" for r in rows))
    if args.picture:
        write_sheet(args.picture, sheet)


def write_sheet(path: str, cases: list[tuple[str, list[np.ndarray]]]) -> None:
    """``--picture``: a labelled row per case and, below it, 2× crops of the pictures' centres."""
    labels = ["painted M (held out)", "carry, no stabiliser", "stabiliser 0.5", "0.85 (default)", "steadiest"]

    def u8(x: np.ndarray) -> np.ndarray:
        return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)

    def text_band(text: str, width: int) -> np.ndarray:
        band = np.full((18, width, 3), 255, np.uint8)
        cv2.putText(band, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        return band

    tiles = []
    for title, pics in cases:
        h, w = pics[0].shape[:2]
        crops = [cv2.resize(u8(p)[h // 4: h // 4 + h // 2, w // 3: w // 3 + w // 3], None, fx=2, fy=2,
                            interpolation=cv2.INTER_NEAREST) for p in pics]
        row, zoom = np.concatenate([u8(p) for p in pics], 1), np.concatenate(crops, 1)
        width = max(row.shape[1], zoom.shape[1])
        pad = [np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)), constant_values=255) for x in (row, zoom)]
        tiles += [text_band(title, width), *pad]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    head = np.full((18, width, 3), 255, np.uint8)
    step = cases[0][1][0].shape[1]
    for i, lab in enumerate(labels):
        cv2.putText(head, lab, (i * step + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, np.concatenate([head, *tiles], 0)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
