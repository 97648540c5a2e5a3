"""Prototype, measured in BENCHMARKS.md ("The multi-style student", ninth session): the multi-style student with a
per-style output head — each painting its own copy of the decoder's last depthwise 3×3 and 1×1 to the 4×4 sub-pixel
channels (2.8k numbers per painting, on top of the 992 of its (γ, β) and decoder affines), mixed by the style
weights like the other rows; slot 0 keeps the student's own head. It patches
``vidstyle.nets.student_multistyle`` at run time (the class and its ``_decode``) and is not part of the package: a
model it trains loads only through this script. Moving the per-style head into ``StudentMultiStyleNet`` (its file
format, ``add_style``, the fused inference path) is the follow-up.

    python benchmarks/proto_multistyle_head.py train --size student --multi-style --style A --style B ... -o OUT ...
    python benchmarks/proto_multistyle_head.py quality --shared ../shared --models OUT.safetensors [--sheet S]

(the arguments of ``vidstyle train`` and of ``benchmarks/bench_quality.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.nets import student_multistyle as sm  # noqa: E402

Base = sm.StudentMultiStyleNet


class HeadMulti(Base):
    def __init__(self, *, config=None, styles):
        super().__init__(config=config, styles=styles)
        n = len(self.styles) - 1
        dw, pw = self.decoder.head[0][1], self.decoder.head[0][2]
        self.head_dw = nn.Parameter(dw.weight.detach().clone()[None].repeat(n, 1, 1, 1, 1))
        self.head_pw = nn.Parameter(pw.weight.detach().clone()[None].repeat(n, 1, 1, 1, 1))
        self.head_pb = nn.Parameter(pw.bias.detach().clone()[None].repeat(n, 1))

    @classmethod
    def from_student(cls, student, *, style_features, styles):
        net = super().from_student(student, style_features=style_features, styles=styles)
        dw, pw = net.decoder.head[0][1], net.decoder.head[0][2]
        with torch.no_grad():
            net.head_dw.copy_(dw.weight[None].expand_as(net.head_dw))
            net.head_pw.copy_(pw.weight[None].expand_as(net.head_pw))
            net.head_pb.copy_(pw.bias[None].expand_as(net.head_pb))
        return net

    def param_groups(self, lr):
        groups = super().param_groups(lr)
        groups[0]["params"] = [p for p in groups[0]["params"] if p is not self.decoder.head[0][1].weight
                               and p is not self.decoder.head[0][2].weight and p is not self.decoder.head[0][2].bias]
        groups.append({"params": [self.head_dw, self.head_pw, self.head_pb], "lr": lr})
        return groups

    def forward(self, x, mix=None, strength=None):
        n = x.shape[0]
        w = self._mix(mix, n)
        if strength is not None:
            s = torch.as_tensor(strength, dtype=torch.float32).reshape(-1, 1)
            w = torch.cat([w[:, :1] * s + (1.0 - s), w[:, 1:] * s], dim=1)
        self._w = w
        _CURRENT[0] = self
        try:
            return Base.forward(self, x, w)
        finally:
            _CURRENT[0] = None


_orig_decode = sm._decode


def _decode(dec, feats, scale, shift, fs, fb, *, size):
    net = _CURRENT[0]
    if net is None:
        return _orig_decode(dec, feats, scale, shift, fs, fb, size=size)
    w = net._w.to(torch.float32)
    head = dec.head

    class H(nn.Module):
        def forward(self, h):
            outs = []
            dw0, pw0 = head[0][1], head[0][2]
            for i in range(h.shape[0]):
                w0, ws = w[i, :1], w[i, 1:]
                kdw = w0 * dw0.weight + torch.einsum("s,sabcd->abcd", ws, net.head_dw)
                kpw = w0 * pw0.weight + torch.einsum("s,sabcd->abcd", ws, net.head_pw)
                bpw = w0 * pw0.bias + ws @ net.head_pb
                t = F.conv2d(F.pad(h[i:i + 1], (1, 1, 1, 1), mode="reflect"), kdw.to(h.dtype), groups=h.shape[1])
                outs.append(F.conv2d(t, kpw.to(h.dtype), bpw.to(h.dtype)))
            return head[2](head[1](torch.cat(outs)))

    saved = dec.head
    dec.head = H()
    try:
        return _orig_decode(dec, feats, scale, shift, fs, fb, size=size)
    finally:
        dec.head = saved


_CURRENT = [None]
sm._decode = _decode
sm.StudentMultiStyleNet = HeadMulti

if __name__ == "__main__":
    if sys.argv[1] == "quality":
        sys.argv = ["bench_quality", *sys.argv[2:]]
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_quality
        sys.exit(bench_quality.main())
    from vidstyle.cli.main import main
    sys.exit(main(sys.argv[1:]))
