"""A one-style network made from the fast arbitrary-style variant (the student), fine-tuned on one painting.

Why (BENCHMARKS.md, "Style fidelity"): a per-style network trained from scratch on this CPU stays a colour
filter for thousands of iterations, while the student already puts any painting's statistics into a photo
(AdaIN at its relu3_1-like features). Starting from it, the standard Gram loss only has to sharpen what is
there: a few hundred iterations of the decoder (and of the style's (γ, β)) on one CPU thread reach style
ratios that from-scratch nets did not reach in an hour (Starry Night: 0.51 → 0.15 in 240 iterations).

The network: the student's encoder (frozen when training), conditional instance normalisation of its features
with the style's ``(γ, β)`` (initialised to the painting's relu3_1 standard deviation and mean, as AdaIN), and
the student's decoder: ``y = D(γ · (f − μ_f) / σ_f + β)``, ``f = E(x)``, with ``μ_f``, ``σ_f`` the frame's own
per-channel statistics. It is Dumoulin et al.'s conditional instance norm at one layer, the form AdaIN
generalises (Huang & Belongie 2017).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vidstyle.errors import ModelError
from vidstyle.nets.student import FEATURE_CHANNELS, Student, StudentConfig, StudentDecoder, StudentEncoder
from vidstyle.stylize.transforms import channel_var_mean

__all__ = ["StudentStyleNet"]

#: added to the content features' variance before the square root
EPS = 1e-5


class StudentStyleNet(nn.Module):
    """``forward(x: N×3×H×W in [0, 1]) -> N×3×H×W``: one painting's style through the student's encoder and decoder.

    Args:
        config: the student's architecture.

    Attributes:
        gamma, beta: the style's per-channel scale and shift (``FEATURE_CHANNELS`` each).
    """

    def __init__(self, *, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        self.encoder = StudentEncoder(config=self.config)
        self.decoder = StudentDecoder(config=self.config)
        self.gamma = nn.Parameter(torch.ones(FEATURE_CHANNELS))
        self.beta = nn.Parameter(torch.zeros(FEATURE_CHANNELS))

    @classmethod
    def from_student(cls, student: Student, *, style_features: torch.Tensor) -> StudentStyleNet:
        """The ``student``'s weights with ``(γ, β)`` set to the standard deviation and mean of ``style_features``
        (``1×256×h×w``: the painting's VGG19 relu3_1 features, as the student's AdaIN uses)."""
        if style_features.ndim != 4 or style_features.shape[:2] != (1, FEATURE_CHANNELS):
            raise ModelError(f"style_features must be 1×{FEATURE_CHANNELS}×h×w relu3_1 features, got "
                             f"{tuple(style_features.shape)}")
        net = cls(config=student.config)
        net.encoder.load_state_dict(student.encoder.state_dict())
        net.decoder.load_state_dict(student.decoder.state_dict())
        var, mean = (t[0] for t in channel_var_mean(style_features))
        with torch.no_grad():
            net.gamma.copy_((var + EPS).sqrt())
            net.beta.copy_(mean)
        return net

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """What fine-tuning trains: the decoder at ``lr`` and ``(γ, β)`` at 30 × ``lr`` (they are on the features'
        Caffe scale, tens to hundreds); the encoder stays as distilled."""
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        return [{"params": list(self.decoder.parameters()), "lr": lr},
                {"params": [self.gamma, self.beta], "lr": 30.0 * lr}]

    def for_inference(self) -> StudentStyleNet:
        """Already in its inference form (the student encoder folds its gain when gradients are off)."""
        return self

    #: the network applies a style strength itself (:mod:`vidstyle.stylize.style_control`): its (γ, β) interpolated
    #: toward the frame's own statistics (Ghiasi et al. 2017), not a crossfade of output and photo
    feature_strength = True

    def forward(self, x: torch.Tensor, strength: torch.Tensor | float | None = None) -> torch.Tensor:
        """``strength`` ``s`` in [0, 1] (one number or one per image): the features move ``s`` of the way from their
        own statistics to the style's, ``scale = s·γ/σ_f + 1 − s``, ``shift = s·(β − μ_f·γ/σ_f)``; 0 decodes the
        frame's own features (the student's reconstruction, as this network's decoder now paints it)."""
        feats = self.encoder(x)
        var, mean = channel_var_mean(feats)
        a = self.gamma.float()[None] / (var + EPS).sqrt()
        scale, shift = a, self.beta.float()[None] - a * mean
        if strength is not None:
            s = torch.as_tensor(strength, dtype=torch.float32, device=a.device).reshape(-1, 1)
            if s.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"strength: one value or one per image ({x.shape[0]}), got {s.shape[0]}")
            scale, shift = s * a + (1.0 - s), s * shift
        return self.decoder.decode_affine(feats, scale.expand_as(a).contiguous(), shift.expand_as(a).contiguous(),
                                          size=(x.shape[-2], x.shape[-1]))
