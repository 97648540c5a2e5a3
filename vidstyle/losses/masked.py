"""The mask through the loss: the optimisation back end's ``mask`` (Gatys et al. 2017, spatial control;
Castillo et al. 2017, one object stylised through a matte).

With a matte ``a`` (``H×W`` in [0, 1], white = stylise) the objective of a picture ``x`` with content
``c`` becomes

    α·L_content(x, c) + β·L_style^a(x) + λ·L_hold(x, c, a)  (+ τ·TV + γ·L_temporal^a)

* ``L_style^a`` is the style loss of the matted region only: for the Gram loss (and ``mmd-poly``, the
  same loss) the guided Gram matrix with the matte as guidance channel,
  ``G^a = (F ⊙ a_l)(F ⊙ a_l)ᵀ / (C·Σ a_l²)``, ``a_l`` the matte area-averaged to layer ``l``
  (:func:`~vidstyle.losses.guided.guided_gram_matrix`); with per-region styles the region mattes are
  multiplied by ``a``. The painting's statistics are matched inside the matte, the outside does not
  enter them.
* ``L_hold`` holds the picture to the content outside the matte, pixel by pixel:
  :func:`hold_loss` ``= (1/D) Σ_x h(x) · ‖x(x) − c(x)‖²`` with ``D`` = pixels × channels (the temporal
  losses' normalisation), on 0..255 values, and the hold weight ``h = 1 − a`` on the soft edge
  (``a > 0``), ``h = K`` (``outside``, default 100) where the matte is black. On the soft edge the two
  terms share the pixel in proportion, so (with λ balanced against the style, the default) the style
  fades with the matte; outside, ``K`` makes the hold firm enough that the style loss's receptive field
  (relu3_1 sees ~40 px) cannot pull a halo past the matte's edge (measured in docs/masks.md).
* the temporal losses (video) are weighted by ``a`` as well (their consistency masks times the matte),
  so the warped previous result, stylised where the matte *was*, cannot pull style into pixels the matte
  has left: there only the hold term speaks.
"""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["HOLD_OUTSIDE", "HoldLoss", "hold_loss", "hold_weight"]


def _alpha(matte: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``H×W``, ``N×H×W`` or ``N×1×H×W`` → ``N×1×H×W`` of the image's size and dtype."""
    if matte.ndim == 2:
        matte = matte[None, None]
    elif matte.ndim == 3:
        matte = matte[:, None]
    if matte.ndim != 4 or matte.shape[1] != 1 or matte.shape[-2:] != image.shape[-2:]:
        raise ShapeError(f"hold_loss: matte {tuple(matte.shape)} does not fit the image {tuple(image.shape)}; "
                         "give H×W, N×H×W or N×1×H×W of the image's size")
    return matte.to(image.dtype)


#: the hold weight where the matte is black, relative to ``1 − a`` on its soft edge
HOLD_OUTSIDE = 100.0


def hold_weight(matte: torch.Tensor, *, outside: float = HOLD_OUTSIDE) -> torch.Tensor:
    """``h = 1 − a`` where ``a > 0``, ``outside`` where ``a = 0``."""
    return torch.where(matte > 0, 1.0 - matte, torch.full_like(matte, float(outside)))


def hold_loss(image: torch.Tensor, content: torch.Tensor, matte: torch.Tensor, *,
              outside: float = HOLD_OUTSIDE) -> torch.Tensor:
    """``(1/D) Σ h·(image − content)²`` over every element (``D`` = N·C·H·W), ``h`` the
    :func:`hold_weight` of the matte ``a``: ``image`` held firmly to ``content`` where the matte is
    black, in proportion ``1 − a`` on its soft edge, not at all where it is white.

    Shape: ``image``, ``content``: N×C×H×W; ``matte``: H×W, N×H×W or N×1×H×W in [0, 1].
    """
    if image.ndim != 4 or content.shape[-3:] != image.shape[-3:]:
        raise ShapeError(f"hold_loss: image {tuple(image.shape)} and content {tuple(content.shape)} must be "
                         "N×C×H×W of one size")
    h = hold_weight(_alpha(matte, image), outside=outside)
    return (h * (image - content).pow(2)).mean()


class HoldLoss(nn.Module):
    """:func:`hold_loss` with its content and matte held as buffers.

    Example:
        >>> loss = HoldLoss(content=torch.zeros(1, 3, 4, 4), matte=torch.ones(4, 4))
        >>> float(loss(torch.ones(1, 3, 4, 4)))  # white everywhere: nothing is held
        0.0
    """

    def __init__(self, *, content: torch.Tensor, matte: torch.Tensor, outside: float = HOLD_OUTSIDE) -> None:
        super().__init__()
        self.outside = float(outside)
        self.register_buffer("content", content.detach())
        self.register_buffer("matte", _alpha(matte.detach(), content))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return hold_loss(image, self.content, self.matte, outside=self.outside)
