"""Losses, each a function plus an ``nn.Module`` holding its targets (kornia style), tested against their
reference formulas in ``tests/test_losses.py`` and ``tests/losses/``.

* :mod:`~vidstyle.losses.perceptual` — content, Gram style and total variation (Gatys et al. 2016;
  Johnson et al. 2016);
* :mod:`~vidstyle.losses.mmd` — MMD style losses with linear, polynomial and Gaussian kernels
  (Li et al. 2017); the polynomial case with ``c = 0, d = 2`` is Gram matching;
* :mod:`~vidstyle.losses.stats` — BN statistics, per-channel mean and std (Li et al. 2017);
* :mod:`~vidstyle.losses.mrf` — MRF patch matching (Li & Wand 2016) and semantic maps (Champandard 2016);
* :mod:`~vidstyle.losses.guided` — guided Gram matrices, one style per region (Gatys et al. 2017);
* :mod:`~vidstyle.losses.gain` — the gain-map content loss of portraits (Selim et al. 2016);
* :mod:`~vidstyle.losses.masked` — the mask through the loss: the hold term outside a matte;
* :mod:`~vidstyle.losses.select` — choosing a style loss by name (``--style-loss``);
* :mod:`~vidstyle.losses.temporal` — short- and long-term temporal losses (Ruder et al. 2016);
* :mod:`~vidstyle.losses.lattice` — the lattice loss: fine texture equally strong at every phase of a
  depth-to-space output's pixel grid.
"""

from vidstyle.losses.gain import GAIN_RANGE, GainContentLoss, gain_content_loss, gain_map
from vidstyle.losses.masked import HOLD_OUTSIDE, HoldLoss, hold_loss, hold_weight
from vidstyle.losses.lattice import LatticeLoss, lattice_loss, phase_energies, phase_energy_imbalance
from vidstyle.losses.guided import GuidedStyleLoss, guided_gram_matrix, resize_matte
from vidstyle.losses.mmd import MMD_KERNELS, MMDStyleLoss, gaussian_bandwidth, mmd_loss
from vidstyle.losses.mrf import MRFStyleLoss, extract_patches, mrf_loss, nearest_patches
from vidstyle.losses.perceptual import (
    STYLE_REDUCTIONS,
    ContentLoss,
    StyleLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    style_loss,
    tv_loss,
)
from vidstyle.losses.select import PATCH_LOSSES, STYLE_LOSS_SCALE, STYLE_LOSSES, make_style_loss
from vidstyle.losses.stats import BNStyleLoss, bn_statistics, bn_style_loss
from vidstyle.losses.temporal import (
    LongTermTemporalLoss,
    TemporalLoss,
    long_term_temporal_loss,
    long_term_weights,
    temporal_loss,
)

__all__ = [
    "LatticeLoss",
    "lattice_loss",
    "phase_energies",
    "phase_energy_imbalance",
    "GAIN_RANGE",
    "GainContentLoss",
    "gain_content_loss",
    "gain_map",
    "MMD_KERNELS",
    "PATCH_LOSSES",
    "STYLE_LOSSES",
    "STYLE_LOSS_SCALE",
    "STYLE_REDUCTIONS",
    "BNStyleLoss",
    "ContentLoss",
    "GuidedStyleLoss",
    "HOLD_OUTSIDE",
    "HoldLoss",
    "LongTermTemporalLoss",
    "MMDStyleLoss",
    "MRFStyleLoss",
    "StyleLoss",
    "TVLoss",
    "TemporalLoss",
    "bn_statistics",
    "bn_style_loss",
    "content_loss",
    "extract_patches",
    "gaussian_bandwidth",
    "gram_matrix",
    "guided_gram_matrix",
    "hold_loss",
    "hold_weight",
    "long_term_temporal_loss",
    "long_term_weights",
    "make_style_loss",
    "mmd_loss",
    "mrf_loss",
    "nearest_patches",
    "resize_matte",
    "style_loss",
    "temporal_loss",
    "tv_loss",
]
