"""MMD style losses (Li, Wang, Liu & Hou 2017, "Demystifying Neural Style Transfer").

A layer's features are a set of samples: the ``C``-vectors ``f_i`` at its ``M = H·W`` positions. The
style loss is the squared maximum mean discrepancy between the output's samples ``{f_i}`` and the
painting's ``{s_j}`` (``K`` positions), the biased (V-statistic) estimate:

    MMD²(f, s) = (1/M²) Σ_ij k(f_i, f_j) + (1/K²) Σ_ij k(s_i, s_j) − (2/(M·K)) Σ_ij k(f_i, s_j)

with the kernels

* linear ``k(x, y) = xᵀy``: ``MMD² = ‖μ_f − μ_s‖²`` (the means only);
* polynomial ``k(x, y) = (xᵀy + c)^d``; with ``d = 2``:
  ``MMD² = ‖M2_f − M2_s‖²_F + 2c·‖μ_f − μ_s‖²`` where ``M2 = (1/M) Σ_i f_i f_iᵀ``. With ``c = 0`` this is
  Gram matching: ``G = F·Fᵀ/(C·H·W) = M2/C``, so ``MMD²_poly = C²·‖G_f − G_s‖²_F = C⁴·mean((G_f − G_s)²)``
  — the Gram loss up to the constant ``C⁴`` (``reduction="mean"``) or ``C²`` (``"sum"``);
* Gaussian ``k(x, y) = exp(−‖x − y‖² / (2σ²))``, ``σ²`` the mean squared distance between the
  painting's features (Li et al.), ``= 2·(E‖s‖² − ‖E s‖²)`` in closed form, so the kernel is fixed
  during an optimisation.

:func:`mmd_loss` is the reference: it builds the kernel matrices. :class:`MMDStyleLoss` uses the closed
forms for the linear and polynomial (``d = 2``) kernels, which cost ``O(M·C²)``; for the Gaussian
kernel it builds the kernel matrices while ``M·K`` stays under ``max_pairs`` and otherwise uses
random Fourier features (Rahimi & Recht 2007: ``k(x, y) ≈ φ(x)ᵀφ(y)``, ``φ(x) = √(2/D)·cos(Wx + b)``,
``W ~ N(0, I/σ²)``, ``b ~ U(0, 2π)``, drawn once with a fixed seed, so the objective is the same at
every iteration), ``MMD² ≈ ‖mean φ(f) − mean φ(s)‖²``.

Several paintings with mix weights ``w_k`` make one target distribution, their mixture: its mean
embedding is ``Σ_k w_k·(mean embedding of painting k)`` (for the closed forms: the weighted means of
``μ`` and ``M2``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from vidstyle.errors import ShapeError

__all__ = ["MMD_KERNELS", "MMDStyleLoss", "gaussian_bandwidth", "mmd_loss"]

#: the kernels of :func:`mmd_loss`
MMD_KERNELS = ("linear", "poly", "gaussian")


def _samples(features: torch.Tensor, what: str) -> torch.Tensor:
    """N×C×H×W → N×(H·W)×C."""
    if features.ndim != 4:
        raise ShapeError(f"{what}: expected N×C×H×W features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    return features.reshape(n, c, h * w).transpose(1, 2)


def gaussian_bandwidth(target: torch.Tensor) -> torch.Tensor:
    """``σ²`` = the mean squared distance between the target's feature vectors (all ordered pairs,
    i = j included), ``2·(E‖s‖² − ‖E s‖²)``, from 1×C×H×W features."""
    s = _samples(target, "gaussian_bandwidth")[0]
    return (2.0 * (s.pow(2).sum(1).mean() - s.mean(0).pow(2).sum())).clamp_min(1e-12)


def _kernel(x: torch.Tensor, y: torch.Tensor, kernel: str, *, c: float, d: int, sigma2: torch.Tensor | None) -> torch.Tensor:
    dot = x @ y.transpose(-1, -2)
    if kernel == "linear":
        return dot
    if kernel == "poly":
        return (dot + c).pow(d)
    assert sigma2 is not None
    sq = x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1).unsqueeze(-2) - 2.0 * dot
    return torch.exp(-sq.clamp_min(0.0) / (2.0 * sigma2))


def mmd_loss(
    features: torch.Tensor,
    target: torch.Tensor,
    *,
    kernel: str = "poly",
    c: float = 0.0,
    d: int = 2,
    sigma2: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared MMD (biased estimate, kernel matrices built in full) between the position samples of
    ``features`` (N×C×H×W; averaged over N) and of ``target`` (1×C×H'×W').

    ``kernel``: ``"linear"``, ``"poly"`` (``(xᵀy + c)^d``) or ``"gaussian"`` (``σ²`` default:
    :func:`gaussian_bandwidth` of the target). Memory grows with ``(H·W)²``: this is the reference
    form, for small inputs; :class:`MMDStyleLoss` is the one to optimise with.
    """
    if kernel not in MMD_KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(MMD_KERNELS)}, got {kernel!r}")
    if features.shape[1] != target.shape[1] or target.shape[0] != 1:
        raise ShapeError(f"mmd_loss: features {tuple(features.shape)} and target {tuple(target.shape)} must have the "
                         "same channels, target a single image")
    s2 = None
    if kernel == "gaussian":
        s2 = gaussian_bandwidth(target) if sigma2 is None else torch.as_tensor(sigma2, dtype=features.dtype)
    x = _samples(features, "mmd_loss")
    y = _samples(target, "mmd_loss").expand(x.shape[0], -1, -1)
    kxx = _kernel(x, x, kernel, c=c, d=d, sigma2=s2).mean((1, 2))
    kyy = _kernel(y, y, kernel, c=c, d=d, sigma2=s2).mean((1, 2))
    kxy = _kernel(x, y, kernel, c=c, d=d, sigma2=s2).mean((1, 2))
    return (kxx + kyy - 2.0 * kxy).mean()


def _moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N×C) and second moment ``(1/M) Σ f fᵀ`` (N×C×C) of the position samples."""
    x = _samples(features, "MMDStyleLoss")
    m = x.shape[1]
    return x.mean(1), x.transpose(1, 2) @ x / m


class MMDStyleLoss(nn.Module):
    """``Σ_l w_l · MMD²_l / Z_l`` against one or several paintings (see the module docstring).

    Args:
        style_features: one ``{layer: 1×C×H×W features}`` mapping per painting.
        mix: the paintings' weights in the target mixture (normalised; default equal).
        layer_weights: ``w_l`` (default 1).
        kernel: ``"linear"``, ``"poly"`` or ``"gaussian"``.
        c, d: of the polynomial kernel (``d`` must be 2 here; :func:`mmd_loss` takes any ``d``).
        normalize: divide each layer's MMD² by ``Z_l``: ``C`` for the linear kernel (then it is the
            mean squared difference of the channel means), ``C⁴`` for the polynomial one (then ``c = 0``
            gives exactly the ``reduction="mean"`` Gram loss), 1 for the Gaussian one (MMD² is already
            in [0, 2]). ``False``: the raw MMD².
        max_pairs: the Gaussian kernel's matrices are built while ``M·K`` is at most this; beyond,
            random Fourier features (``features`` of them, seeded by ``seed``).
    """

    def __init__(
        self,
        *,
        style_features: list[Mapping[str, torch.Tensor]],
        mix: list[float] | None = None,
        layer_weights: Mapping[str, float] | None = None,
        kernel: str = "poly",
        c: float = 0.0,
        d: int = 2,
        normalize: bool = True,
        max_pairs: int = 4096 * 4096,
        features: int = 2048,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kernel not in MMD_KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(MMD_KERNELS)}, got {kernel!r}")
        if kernel == "poly" and d != 2:
            raise ValueError(f"MMDStyleLoss computes the polynomial kernel in closed form for d = 2 only, got d={d}")
        if not style_features:
            raise ShapeError("MMDStyleLoss needs at least one painting's features")
        mix = list(mix or [1.0] * len(style_features))
        if len(mix) != len(style_features) or sum(mix) <= 0 or min(mix) < 0:
            raise ShapeError("mix must have one weight >= 0 per painting, not all 0")
        total = float(sum(mix))
        self.mix = [m / total for m in mix]
        self.kernel, self.c, self.normalize, self.max_pairs = kernel, float(c), normalize, int(max_pairs)
        self.layers = list(style_features[0])
        self.layer_weights = dict(layer_weights) if layer_weights else {k: 1.0 for k in self.layers}
        self._counts: dict[str, int] = {}
        gen = torch.Generator().manual_seed(int(seed))
        for layer in self.layers:
            fs = [sf[layer].detach()[:1] for sf in style_features]
            ch = fs[0].shape[1]
            if kernel in ("linear", "poly"):
                moments = [_moments(f) for f in fs]
                self.register_buffer(f"mean_{layer}", sum(m * mo[0] for m, mo in zip(self.mix, moments)))
                self.register_buffer(f"m2_{layer}", sum(m * mo[1] for m, mo in zip(self.mix, moments)))
                continue
            # Gaussian: σ² of the mixture (E‖s‖² − ‖E s‖², weighted), the samples, and the RFF directions
            samples = [_samples(f, "MMDStyleLoss")[0] for f in fs]
            e_sq = sum(m * s.pow(2).sum(1).mean() for m, s in zip(self.mix, samples))
            e_s = sum(m * s.mean(0) for m, s in zip(self.mix, samples))
            sigma2 = (2.0 * (e_sq - e_s.pow(2).sum())).clamp_min(1e-12)  # type: ignore[union-attr]
            self.register_buffer(f"sigma2_{layer}", sigma2.reshape(()))
            self._counts[layer] = len(samples)
            for k, s in enumerate(samples):
                self.register_buffer(f"samples_{layer}_{k}", s.contiguous())
            w = torch.randn(ch, features, generator=gen, dtype=torch.float64) / math.sqrt(float(sigma2))
            b = torch.rand(features, generator=gen, dtype=torch.float64) * (2 * math.pi)
            self.register_buffer(f"rff_w_{layer}", w.to(fs[0].dtype))
            self.register_buffer(f"rff_b_{layer}", b.to(fs[0].dtype))
            rff_mean = sum(m * self._rff(s, layer).mean(0) for m, s in zip(self.mix, samples))
            self.register_buffer(f"rff_mean_{layer}", rff_mean)
            # the constant term (1/K²) Σ k(s_i, s_j) of the exact form, mixture-weighted (its RFF
            # estimate for big paintings: only the reported value depends on it, not the gradient)
            if sum(s.shape[0] for s in samples) ** 2 <= self.max_pairs:
                kyy = sum(mi * mj * _kernel(si, sj, "gaussian", c=0.0, d=2, sigma2=sigma2).mean()
                          for mi, si in zip(self.mix, samples) for mj, sj in zip(self.mix, samples))
            else:
                kyy = rff_mean.pow(2).sum()
            self.register_buffer(f"kyy_{layer}", torch.as_tensor(kyy).reshape(()))

    def _rff(self, samples: torch.Tensor, layer: str) -> torch.Tensor:
        w, b = getattr(self, f"rff_w_{layer}"), getattr(self, f"rff_b_{layer}")
        return math.sqrt(2.0 / w.shape[1]) * torch.cos(samples @ w + b)

    def _style_samples(self, layer: str) -> list[torch.Tensor]:
        return [getattr(self, f"samples_{layer}_{k}") for k in range(self._counts[layer])]

    def uses_random_features(self, layer: str, positions: int) -> bool:
        """Whether an output with ``positions`` samples at ``layer`` is scored with random Fourier features."""
        return self.kernel == "gaussian" and positions * sum(s.shape[0] for s in self._style_samples(layer)) > self.max_pairs

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        """MMD² (normalised when ``normalize``) of one layer, averaged over the batch."""
        ch = features.shape[1]
        if self.kernel in ("linear", "poly"):
            mean, m2 = _moments(features)
            dmean = (mean - getattr(self, f"mean_{layer}")).pow(2).sum(1)
            if self.kernel == "linear":
                value, z = dmean, ch
            else:
                value = (m2 - getattr(self, f"m2_{layer}")).pow(2).sum((1, 2))
                if self.c != 0.0:
                    value = value + 2.0 * self.c * dmean
                z = ch**4
            value = value.mean()
        else:
            x = _samples(features, "MMDStyleLoss")
            sigma2 = getattr(self, f"sigma2_{layer}")
            if self.uses_random_features(layer, x.shape[1]):
                value = (self._rff(x, layer).mean(1) - getattr(self, f"rff_mean_{layer}")).pow(2).sum(1).mean()
            else:
                kxx = _kernel(x, x, "gaussian", c=0.0, d=2, sigma2=sigma2).mean((1, 2))
                kxy = sum(m * _kernel(x, s[None], "gaussian", c=0.0, d=2, sigma2=sigma2).mean((1, 2))
                          for m, s in zip(self.mix, self._style_samples(layer)))
                value = (kxx + getattr(self, f"kyy_{layer}") - 2.0 * kxy).mean()
            z = 1
        return value / z if self.normalize else value

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for layer in self.layers:
            if layer not in features:
                raise ShapeError(f"style layer {layer} missing from the features given")
            term = self.layer_loss(layer, features[layer]) * float(self.layer_weights[layer])
            total = term if total is None else total + term
        assert total is not None
        return total
