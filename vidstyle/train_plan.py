"""What each training iteration trains: one style, a multi-style network, or new styles added to one.

:class:`StylePlan` builds the network and the style losses for :func:`vidstyle.train.train` and
gives each iteration its style slot (Dumoulin et al.'s one style per batch for multi-style networks).
"""

from __future__ import annotations

from typing import Any

import torch

from vidstyle.losses import make_style_loss
from vidstyle.nets.transformer import PRESETS, TransformerNet
from vidstyle.options.spec import OptionValueError

__all__ = ["StylePlan", "init_from", "multistyle_from"]


def init_from(net: TransformerNet, spec: str, *, size: str, strict: bool = True) -> None:
    """Start from a trained model's weights (fine-tuning); it must be a TransformerNet of the same size."""
    from vidstyle.nets.registry import load_model

    model = load_model(spec)
    src = model.net
    if not isinstance(src, TransformerNet) or src.config != net.config:
        got = getattr(src, "config", type(src).__name__)
        raise OptionValueError("init", f"init {spec}: not a '{size}' TransformerNet ({got}); pick a model of the "
                               "same `size`, or drop `init` to train from scratch", also=("size",))
    if strict:
        net.load_state_dict(src.state_dict(), strict=True)
        return
    # a multi-style body from a one-style net: the convolutions as they are, each style's (γ, β) from its norms
    own = net.state_dict()
    with torch.no_grad():
        for key, value in src.state_dict().items():
            if key not in own:
                continue
            if own[key].shape == value.shape:
                own[key].copy_(value)
            elif own[key].ndim == 2 and value.ndim == 1 and own[key].shape[1] == value.shape[0]:
                own[key].copy_(value.expand_as(own[key]))
    net.load_state_dict(own, strict=True)


class StylePlan:
    """What each iteration trains: the network, the style slot and its loss.

    One style (``TransformerNet``): every iteration the same (blended) style loss. ``multi_style``: a
    :class:`~vidstyle.nets.multistyle.MultiStyleNet`; iterations cycle through the identity slot (the
    photo back, pixel loss) and each style in turn, one style per batch (Dumoulin et al.).
    ``add_style``: the model ``init`` plus one new (γ, β) row per style; only those rows learn.
    """

    def __init__(self, *, net: torch.nn.Module, slots: list[int], losses: list[torch.nn.Module | None]) -> None:
        self.net, self.slots, self.losses = net, slots, losses

    @classmethod
    def build(cls, config: Any, *, names: list[str], style_feats: list[dict[str, torch.Tensor]],
              device: torch.device) -> StylePlan:
        from vidstyle.nets.multistyle import ConditionalInstanceNorm2d, MultiStyleNet, add_style_row

        def loss(feats: list[dict[str, torch.Tensor]], mix: list[float] | None = None) -> torch.nn.Module:
            return make_style_loss(config.style_loss, style_features=feats, mix=mix,
                                   reduction=config.style_reduction).to(device)

        if not (config.multi_style or config.add_style):
            net = TransformerNet(config=PRESETS[config.size])
            if config.init is not None:
                init_from(net, config.init, size=config.size)
            mix = list(config.style_mix) if config.style_mix else None
            return cls(net=net.to(device), slots=[-1], losses=[loss(style_feats, mix)])
        per_style = [loss([f]) for f in style_feats]
        if config.multi_style:
            net = MultiStyleNet(config=PRESETS[config.size], styles=names)
            if config.init is not None:
                init_from(net.body, config.init, size=config.size, strict=False)
            return cls(net=net.to(device), slots=[0, *range(1, len(names) + 1)], losses=[None, *per_style])
        net = multistyle_from(config.init, size=config.size)  # type: ignore[arg-type]
        slots = [add_style_row(net, n) for n in names]
        for p in net.parameters():
            p.requires_grad_(False)
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                for p in (m.weight, m.bias):
                    p.requires_grad_(True)
                    keep = torch.zeros(p.shape[0], 1)
                    keep[slots] = 1.0
                    p.register_hook(lambda g, k=keep: g * k.to(g.device, g.dtype))  # only the new rows learn
        return cls(net=net.to(device), slots=slots, losses=per_style)

    def step(self, it: int) -> tuple[int, torch.nn.Module | None]:
        k = it % len(self.slots)
        return self.slots[k], self.losses[k]

    def forward(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        if slot < 0:
            return self.net(x)
        mix = torch.zeros(len(self.net.styles), device=x.device)
        mix[slot] = 1.0
        return self.net(x, mix)

def multistyle_from(spec: str, *, size: str) -> torch.nn.Module:
    from vidstyle.nets.registry import list_models, load_model

    model = load_model(spec)
    if not model.styles:
        multi = [m.name for m in list_models() if getattr(m, "architecture", "") == "multistyle"]
        hint = f"; multi-style models: {', '.join(multi)}" if multi else "; train one with `multi_style`"
        raise OptionValueError("init", f"add_style needs a multi-style model as `init`; {spec!r} has one style{hint}",
                               also=("add_style", "multi_style"))
    if model.net.config != PRESETS[size]:
        raise OptionValueError("size", f"size must match the model {spec!r} ({model.net.config}), got {size!r}")
    return model.net
