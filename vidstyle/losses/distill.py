"""Distillation loss of the fast arbitrary-style variant (:mod:`vidstyle.nets.student`).

The teacher is VGG19 to relu3_1 (``E_t``) and its trained decoder (``D_t``); the student is a small encoder
``E_s`` and decoder ``D_s``. For a batch of photo crops ``x`` and painting crops ``p`` (one per photo):

    L = feature_weight · [ MSE(E_s(x), E_t(x)) + MSE(E_s(p), E_t(p)) ]                       (features)
      + stats_weight   · [ S(E_s(x), E_t(x)) + S(E_s(p), E_t(p)) ]                           (AdaIN's statistics)
      + R(D_s(E_t(x)), x) + R(D_s(E_s(x)), x)                                                (reconstruction)
      + R(D_s(AdaIN(E_s(x), E_t(p))), D_t(AdaIN(E_t(x), E_t(p))))                            (stylised)
      + texture_weight · Σ_l ‖G(F_l(y_s)) − G(F_l(y_t))‖²_F                                     (texture)

* features on the Caffe scale (relu3_1 is at 1/4 resolution, as the student's are), MSE over every entry;
* ``S(a, b) = (1/C) Σ_c (μ_c(a) − μ_c(b))² + (σ_c(a) − σ_c(b))²`` averaged over the batch: the per-channel
  mean and std that AdaIN reads and writes (:func:`vidstyle.losses.stats.bn_statistics`);
* ``R(y, t) = pixel_weight · MSE(255·y, 255·t) + perceptual_weight · mean_l MSE(F_l(y), F_l(t))`` with
  ``F_l`` the VGG19 features at ``relu1_1, relu2_1, relu3_1`` (the decoder's own training loss,
  :mod:`vidstyle.train_decoder`);
* the texture term compares the Gram matrices ``G = F·Fᵀ/(C·H·W)`` of the student's and the teacher's
  stylised outputs ``y_s``, ``y_t`` (the two sides of the stylised term) per image, summed over ``F_l``'s
  layers and averaged over the batch: pixel and feature MSE alone let a small decoder hedge with flat
  strokes, which keeps PSNR and loses the painting's texture (:func:`vidstyle.losses.perceptual.style_loss`,
  the standard ``"sum"`` form);
* the stylised term decodes AdaIN-moved features — the path inference takes — against what the teacher
  makes of the same photo and painting, so the decoder learns to decode stylised statistics, not only
  photos; the painting's statistics are the teacher's (``E_t(p)``).

:func:`distillation_loss` takes the tensors already computed and a feature function for ``F_l``, so it
is tested against this formula with any stand-in networks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ShapeError
from vidstyle.losses.perceptual import gram_matrix, style_loss
from vidstyle.losses.stats import bn_statistics

__all__ = ["DistillWeights", "DistillLosses", "statistics_loss", "reconstruction_loss", "distillation_loss",
           "DistillationLoss"]

Features = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass(frozen=True, slots=True)
class DistillWeights:
    """Weights of the terms of :func:`distillation_loss`."""

    feature: float = 1.0
    stats: float = 1.0
    pixel: float = 1.0
    perceptual: float = 0.1
    texture: float = 0.0


@dataclass(frozen=True, slots=True)
class DistillLosses:
    """The terms (unweighted except ``total`` and the reconstruction terms, which include their own weights)."""

    total: torch.Tensor
    feature: torch.Tensor
    stats: torch.Tensor
    recon_teacher: torch.Tensor
    recon_student: torch.Tensor
    stylised: torch.Tensor
    texture: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("total", "feature", "stats", "recon_teacher",
                                                              "recon_student", "stylised", "texture")}


def statistics_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(1/C) Σ_c (μ_c(a) − μ_c(b))² + (σ_c(a) − σ_c(b))²``, mean over the batch (N×C×H×W each)."""
    if a.shape[:2] != b.shape[:2]:
        raise ShapeError(f"statistics_loss: features {tuple(a.shape)} and {tuple(b.shape)} differ in N or C")
    ma, sa = bn_statistics(a)
    mb, sb = bn_statistics(b)
    return ((ma - mb).pow(2) + (sa - sb).pow(2)).mean()


def reconstruction_loss(y: torch.Tensor, target: torch.Tensor, *, features: Features | None,
                        pixel_weight: float = 1.0, perceptual_weight: float = 0.1,
                        target_features: Mapping[str, torch.Tensor] | None = None,
                        output_features: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``pixel_weight · MSE(255·y, 255·t) + perceptual_weight · mean_l MSE(F_l(y), F_l(t))``.

    ``target_features`` (``F(t)``, e.g. computed without gradient) and ``output_features`` (``F(y)``) save a
    pass each when given."""
    if y.shape != target.shape:
        raise ShapeError(f"reconstruction_loss: output {tuple(y.shape)} and target {tuple(target.shape)} differ")
    loss = pixel_weight * (y - target).mul(255.0).pow(2).mean()
    if perceptual_weight > 0 and features is not None:
        fy = output_features if output_features is not None else features(y)
        ft = target_features if target_features is not None else features(target)
        loss = loss + perceptual_weight * sum(F.mse_loss(fy[k], ft[k]) for k in fy) / len(fy)
    return loss


def distillation_loss(*, student_content: torch.Tensor, teacher_content: torch.Tensor,
                      student_style: torch.Tensor, teacher_style: torch.Tensor, photo: torch.Tensor,
                      from_teacher: torch.Tensor, from_student: torch.Tensor, stylised: torch.Tensor,
                      teacher_stylised: torch.Tensor, features: Features | None,
                      weights: DistillWeights = DistillWeights(),
                      photo_features: Mapping[str, torch.Tensor] | None = None,
                      teacher_stylised_features: Mapping[str, torch.Tensor] | None = None) -> DistillLosses:
    """The loss of the module docstring from computed tensors.

    Args:
        student_content, teacher_content: ``E_s(x)``, ``E_t(x)`` (N×256×h×w).
        student_style, teacher_style: ``E_s(p)``, ``E_t(p)``.
        photo: ``x``; ``from_teacher``: ``D_s(E_t(x))``; ``from_student``: ``D_s(E_s(x))``.
        stylised: ``D_s(AdaIN(E_s(x), E_t(p)))``; ``teacher_stylised``: ``D_t(AdaIN(E_t(x), E_t(p)))``.
        features: ``F`` of the perceptual terms (layer → features), or ``None`` for pixel terms only.
        photo_features, teacher_stylised_features: ``F(x)`` and ``F(teacher_stylised)`` when already computed.
    """
    for a, b, what in ((student_content, teacher_content, "content features"),
                       (student_style, teacher_style, "style features")):
        if a.shape != b.shape:
            raise ShapeError(f"distillation_loss: student and teacher {what} differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    feat = F.mse_loss(student_content, teacher_content) + F.mse_loss(student_style, teacher_style)
    stats = statistics_loss(student_content, teacher_content) + statistics_loss(student_style, teacher_style)
    rw = {"features": features, "pixel_weight": weights.pixel, "perceptual_weight": weights.perceptual}
    r_t = reconstruction_loss(from_teacher, photo, target_features=photo_features, **rw)
    r_s = reconstruction_loss(from_student, photo, target_features=photo_features, **rw)
    fy = ft = None
    if features is not None and (weights.perceptual > 0 or weights.texture > 0):
        fy = features(stylised)
        ft = teacher_stylised_features if teacher_stylised_features is not None else features(teacher_stylised)
    r_st = reconstruction_loss(stylised, teacher_stylised, target_features=ft, output_features=fy, **rw)
    texture = stylised.new_zeros(())
    if weights.texture > 0:
        if fy is None or ft is None:
            raise ValueError("distillation_loss: the texture term needs `features`")
        texture = style_loss(fy, {k: gram_matrix(v) for k, v in ft.items()}, reduction="sum")
    total = weights.feature * feat + weights.stats * stats + r_t + r_s + r_st + weights.texture * texture
    return DistillLosses(total=total, feature=feat, stats=stats, recon_teacher=r_t, recon_student=r_s, stylised=r_st,
                         texture=texture)


class DistillationLoss(nn.Module):
    """:func:`distillation_loss` with its feature function and weights held (``forward`` takes the tensors)."""

    def __init__(self, *, features: Features | None, weights: DistillWeights = DistillWeights()) -> None:
        super().__init__()
        self.features = features
        self.weights = weights

    def forward(self, **tensors: torch.Tensor) -> DistillLosses:
        return distillation_loss(features=self.features, weights=self.weights, **tensors)
