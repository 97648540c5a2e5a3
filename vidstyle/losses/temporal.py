"""Temporal losses (Ruder et al. 2016), each a function plus an ``nn.Module`` holding its targets.

* short-term: ``(1/D) Σ_x c(x)·(x − w)²`` with ``w = warp(S_{t−1})``, ``c`` the consistency mask and
  ``D`` = pixels × channels (× batch).
* long-term: ``Σ_{j∈J} (1/D) Σ_x c_long_j(x)·(x − w_j)²`` with ``w_j = warp(S_{t−j})`` and
  ``c_long_j = max(c_j − Σ_{k∈J, k<j} c_k, 0)``: each pixel is counted once, against the nearest
  previous frame in which it was visible.
"""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["LongTermTemporalLoss", "TemporalLoss", "long_term_temporal_loss", "long_term_weights", "temporal_loss"]


def _as_mask(mask: torch.Tensor, image: torch.Tensor, what: str) -> torch.Tensor:
    """A mask of shape H×W, N×H×W or N×1×H×W (or already N×C×H×W) → broadcastable to ``image``."""
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[-2:] != image.shape[-2:] or mask.shape[1] not in (1, image.shape[1]) \
            or mask.shape[0] not in (1, image.shape[0]):
        raise ShapeError(
            f"{what}: mask {tuple(mask.shape)} does not fit the image {tuple(image.shape)}; "
            "give H×W, N×H×W or N×1×H×W"
        )
    return mask.to(image.dtype)


def temporal_loss(image: torch.Tensor, warped_prev: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Short-term temporal loss ``(1/D) Σ c·(image − warped_prev)²`` (Ruder et al. 2016).

    Args:
        image: N×C×H×W, the frame being optimised.
        warped_prev: N×C×H×W, the previous output warped into this frame (a fixed target).
        mask: consistency mask ``c`` (H×W, N×H×W or N×1×H×W; 1 = visible in the previous frame).

    ``D`` counts every element of ``image`` (pixels × channels × batch), masked or not.
    """
    if image.ndim != 4 or warped_prev.shape != image.shape:
        raise ShapeError(
            f"temporal_loss: image {tuple(image.shape)} and warped_prev {tuple(warped_prev.shape)} "
            "must be the same N×C×H×W"
        )
    c = _as_mask(mask, image, "temporal_loss")
    return (c * (image - warped_prev).pow(2)).mean()


def long_term_weights(masks: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """``c_long`` from the per-lag consistency masks ``c_j`` ordered by increasing lag j ∈ J.

    ``c_long_j = max(c_j − Σ_{k<j} c_k, 0)``: a pixel's weight goes to the nearest previous frame
    in which it was visible, so with binary masks the ``c_long`` are disjoint and sum to at most 1.
    """
    if not masks:
        raise ShapeError("long_term_weights needs at least one mask")
    out: list[torch.Tensor] = []
    seen: torch.Tensor | None = None
    for m in masks:
        if seen is not None and m.shape != seen.shape:
            raise ShapeError(f"long_term_weights: masks differ in shape ({tuple(m.shape)} vs {tuple(seen.shape)})")
        out.append(m if seen is None else (m - seen).clamp_min(0.0))
        seen = m if seen is None else seen + m
    return out


def long_term_temporal_loss(
    image: torch.Tensor,
    warped_prevs: list[torch.Tensor] | tuple[torch.Tensor, ...],
    masks: list[torch.Tensor] | tuple[torch.Tensor, ...],
) -> torch.Tensor:
    """Long-term temporal loss ``Σ_j (1/D) Σ c_long_j·(image − warp(S_{t−j}))²`` (Ruder et al. 2016).

    Args:
        image: N×C×H×W, the frame being optimised.
        warped_prevs: the outputs of frames t−j warped into frame t, one per lag j, nearest first.
        masks: the consistency masks ``c_j`` of frame t with respect to t−j, same order;
            ``c_long`` is derived from them (:func:`long_term_weights`).
    """
    if len(warped_prevs) != len(masks) or not masks:
        raise ShapeError(
            f"long_term_temporal_loss: {len(warped_prevs)} warped frames but {len(masks)} masks; give one mask per lag"
        )
    cs = [_as_mask(m, image, "long_term_temporal_loss") for m in masks]
    cs = [c.expand(image.shape[0], -1, -1, -1) if c.shape[0] != image.shape[0] else c for c in cs]
    total: torch.Tensor | None = None
    for w, c in zip(warped_prevs, long_term_weights(cs)):
        term = temporal_loss(image, w, c)
        total = term if total is None else total + term
    assert total is not None
    return total


class TemporalLoss(nn.Module):
    """Short-term temporal loss against a fixed warped previous output and its mask (buffers).

    ``TemporalLoss(warped_prev=w, mask=c)(image)`` equals :func:`temporal_loss` ``(image, w, c)``.
    """

    def __init__(self, *, warped_prev: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("warped_prev", warped_prev.detach())
        self.register_buffer("mask", _as_mask(mask.detach(), warped_prev, "TemporalLoss"))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return temporal_loss(image, self.warped_prev, self.mask)


class LongTermTemporalLoss(nn.Module):
    """Long-term temporal loss against warped previous outputs ``S_{t−j}`` (nearest first) and their
    consistency masks; ``c_long`` is computed once here. Equals :func:`long_term_temporal_loss`."""

    def __init__(
        self,
        *,
        warped_prevs: list[torch.Tensor] | tuple[torch.Tensor, ...],
        masks: list[torch.Tensor] | tuple[torch.Tensor, ...],
    ) -> None:
        super().__init__()
        if len(warped_prevs) != len(masks) or not masks:
            raise ShapeError("LongTermTemporalLoss: give one mask per warped previous output (at least one)")
        cs = [_as_mask(m.detach(), w, "LongTermTemporalLoss") for w, m in zip(warped_prevs, masks)]
        cs = [c.expand(w.shape[0], -1, -1, -1) if c.shape[0] != w.shape[0] else c for w, c in zip(warped_prevs, cs)]
        self.lags = len(masks)
        for i, (w, c) in enumerate(zip(warped_prevs, long_term_weights(cs))):
            self.register_buffer(f"warped_{i}", w.detach())
            self.register_buffer(f"weight_{i}", c.contiguous())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        total = temporal_loss(image, self.warped_0, self.weight_0)
        for i in range(1, self.lags):
            total = total + temporal_loss(image, getattr(self, f"warped_{i}"), getattr(self, f"weight_{i}"))
        return total
