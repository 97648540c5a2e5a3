"""Helpers of the stylize tests: a random style network, textures and a translating sequence with
exactly known flow."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vidstyle.frame import Frame
from vidstyle.nets.registry import StyleModel
from vidstyle.nets.transformer import TransformerNet

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])




def random_model(seed: int = 0, config: str = "tiny") -> StyleModel:
    """A randomly initialised network with non-trivial norms: it makes texture, and flickers."""
    torch.manual_seed(seed)
    net = TransformerNet(config=config)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    return StyleModel(net=net.eval(), name=f"random{seed}", architecture="transformer")


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Multi-scale smooth noise, RGB float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 0.25), (2.5, 0.35), (6.0, 0.4)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    return np.clip(img / (4 * img.std()) + 0.5, 0, 1).astype(np.float32)


def translating_sequence(n: int, h: int, w: int, *, dx: float, dy: float = 0.0, noise: float = 0.0,
                         seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Frames ``I_t(x) = B(x + t·d)`` of a camera panning over a texture ``B``, float32 RGB.

    Returns ``(frames, flow_bwd, consistency)``: the exact backward flow (frame t → t−1) is the
    constant ``d``, and the mask is 1 where ``x + d`` lies inside the frame. ``noise`` adds fresh
    Gaussian noise to every frame (sensor noise: what makes per-frame networks flicker).
    """
    margin = int(np.ceil(max(abs(dx), abs(dy)) * n)) + 2
    big = texture(h + 2 * margin, w + 2 * margin, seed)
    rng = np.random.default_rng(seed + 1000)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, margin + t * dx], [0, 1, margin + t * dy]])  # out(x) = big(x + offset)
        f = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if noise:
            f = np.clip(f + rng.normal(0, noise, f.shape).astype(np.float32), 0, 1)
        frames.append(f)
    flow = np.empty((2, h, w), np.float32)
    flow[0], flow[1] = dx, dy
    ys, xs = np.mgrid[0:h, 0:w]
    cons = ((xs + dx >= 0) & (xs + dx <= w - 1) & (ys + dy >= 0) & (ys + dy <= h - 1)).astype(np.float32)
    return frames, flow, cons


def frames_with_flow(images: list[np.ndarray], flow: np.ndarray | None, cons: np.ndarray | None) -> list[Frame]:
    out = []
    for i, img in enumerate(images):
        f = Frame(index=i, image=img)
        if i > 0 and flow is not None:
            f.flow_bwd, f.consistency = flow.copy(), cons.copy()
        out.append(f)
    return out


def run_stage(stage, frames: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for f in frames:
        out += stage.process(f)
    out += stage.finish()
    return out
