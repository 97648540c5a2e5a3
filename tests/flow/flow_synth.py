"""Synthetic frames with exactly known motion for the flow tests (imported as ``flow_synth``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent.parent / "shared"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Multi-scale smooth noise, RGB uint8: texture at every scale, like a natural photo."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 0.25), (2.5, 0.35), (6.0, 0.4), (15.0, 0.5)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    img = img / (4 * img.std()) + 0.5
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


@dataclass
class SyntheticPair:
    """``a(x) = b(x + flow(x))`` exactly (up to interpolation) where ``valid``."""

    a: np.ndarray
    b: np.ndarray
    flow: np.ndarray  # a → b
    flow_back: np.ndarray  # b → a
    valid: np.ndarray  # pixels of a whose target lies inside b
    valid_back: np.ndarray  # pixels of b whose source lies inside a


def affine_pair(
    h: int = 192,
    w: int = 256,
    *,
    tx: float = 3.5,
    ty: float = -2.25,
    angle: float = 2.0,
    scale: float = 1.03,
    seed: int = 0,
) -> SyntheticPair:
    """Frame b is frame a moved by a similarity (translation + rotation + scale about the centre)."""
    a = texture(h, w, seed)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += (tx, ty)
    b = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    fx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - xs
    fy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - ys
    mi = cv2.invertAffineTransform(m)
    bx = mi[0, 0] * xs + mi[0, 1] * ys + mi[0, 2] - xs
    by = mi[1, 0] * xs + mi[1, 1] * ys + mi[1, 2] - ys
    valid = (xs + fx >= 0) & (xs + fx <= w - 1) & (ys + fy >= 0) & (ys + fy <= h - 1)
    return SyntheticPair(
        a=a,
        b=b,
        flow=np.stack([fx, fy]).astype(np.float32),
        flow_back=np.stack([bx, by]).astype(np.float32),
        valid=valid,
        valid_back=(xs + bx >= 0) & (xs + bx <= w - 1) & (ys + by >= 0) & (ys + by <= h - 1),
    )


def epe(flow: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.sqrt(((flow.astype(np.float64) - gt) ** 2).sum(0))
