"""What each training iteration trains: one style, a multi-style network, or new styles added to one.

:class:`StylePlan` builds the network and the style losses for :func:`vidstyle.train.train` and
gives each iteration its style slot (Dumoulin et al.'s one style per batch for multi-style networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vidstyle.errors import InvalidOptionError
from vidstyle.losses import make_style_loss
from vidstyle.nets.transformer import PRESETS, TransformerNet
from vidstyle.options.spec import OptionValueError

__all__ = ["STUDENT_SIZE", "STUDENT_RECIPE", "student_recipe", "StylePlan", "init_from", "multistyle_from", "existing_slots", "cycle", "student_add_styles", "student_multistyle_net",
           "student_style_net"]

#: the ``size`` that fine-tunes the fast arbitrary-style student for one painting
#: (:class:`vidstyle.nets.student_style.StudentStyleNet`) instead of training a transformer from scratch
STUDENT_SIZE = "student"

#: the measured recipe of ``size`` student (BENCHMARKS.md, "One-style networks fine-tuned from the fast student"):
#: 300 iterations per painting at batch 2, the standard Gram form at style weight 1e-3, the painting analysed at
#: 512 px, total variation 10, lr 1e-3, and the lattice loss at 1e6 (thirteenth session: the strokes no longer line up
#: on the output's 4×4 grid; BENCHMARKS.md, "The default model's lattice"). What :func:`student_recipe` gives for
#: options left at their defaults.
STUDENT_RECIPE: dict[str, Any] = {"iterations": 300, "batch_size": 2, "lr": 1e-3, "style_size": 512,
                                  "style_reduction": "sum", "style_weight": 1e-3, "tv_weight": 10.0,
                                  "lattice_weight": 1e6}


def student_recipe(*, styles: int = 1) -> dict[str, Any]:
    """:data:`STUDENT_RECIPE` for a run over ``styles`` paintings: 300 iterations each (one painting per batch in
    turn, the budget at which the multi-style student was measured against one-style models)."""
    if styles < 1:
        raise OptionValueError("style", f"at least one `style` image is needed, got {styles}")
    return {**STUDENT_RECIPE, "iterations": STUDENT_RECIPE["iterations"] * styles}


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
    ``tune_style``: the model ``init``; only the rows of the styles named learn (more iterations for them).
    """

    def __init__(self, *, net: torch.nn.Module, slots: list[int], losses: list[torch.nn.Module | None],
                 init: str | None = None, base_images: list[str] | None = None) -> None:
        self.net, self.slots, self.losses = net, slots, losses
        #: the file the network started from, where the plan chose it (the student of ``size`` student)
        self.init = init
        #: ``add_style``: the paintings of the styles the model ``init`` already had (its card's), in slot order
        self.base_images = base_images or []

    @classmethod
    def build(cls, config: Any, *, names: list[str], style_feats: list[dict[str, torch.Tensor]],
              device: torch.device) -> StylePlan:
        from vidstyle.nets.multistyle import MultiStyleNet, add_style_row

        def loss(feats: list[dict[str, torch.Tensor]], mix: list[float] | None = None) -> torch.nn.Module:
            return make_style_loss(config.style_loss, style_features=feats, mix=mix,
                                   reduction=config.style_reduction).to(device)

        def per_style() -> list[torch.nn.Module | None]:
            return [loss([f]) for f in style_feats]

        def cycled() -> tuple[list[int], list[torch.nn.Module | None]]:  # a multi-style run's slots and their losses
            slots, losses = cycle(list(range(1, len(names) + 1)), config.style_repeats), per_style()
            return slots, [losses[s - 1] for s in slots]

        if config.size == STUDENT_SIZE and config.multi_style:
            net, init = student_multistyle_net(config, names=names)
            slots, losses = cycled()
            return cls(net=net.to(device), slots=slots, losses=losses, init=init)
        if config.tune_style:
            base = multistyle_from(config.init, size=config.size, param="tune_style")
            net, slots = base.net.train(), existing_slots(base.net, names)
            _train_only_styles(net, slots)
            return cls(net=net.to(device), slots=slots, losses=per_style(), base_images=_images_of(base))
        if config.size == STUDENT_SIZE and config.add_style:
            base = multistyle_from(config.init, size=config.size)
            net, slots = student_add_styles(config, base.net.train(), names=names)
            _train_only_styles(net, slots)
            return cls(net=net.to(device), slots=slots, losses=per_style(), base_images=_images_of(base))
        if config.size == STUDENT_SIZE:
            net, init = student_style_net(config)
            mix = list(config.style_mix) if config.style_mix else None
            return cls(net=net.to(device), slots=[-1], losses=[loss(style_feats, mix)], init=init)
        if not (config.multi_style or config.add_style):
            net = TransformerNet(config=PRESETS[config.size])
            if config.init is not None:
                init_from(net, config.init, size=config.size)
            mix = list(config.style_mix) if config.style_mix else None
            return cls(net=net.to(device), slots=[-1], losses=[loss(style_feats, mix)])
        if config.multi_style:
            net = MultiStyleNet(config=PRESETS[config.size], styles=names)
            if config.init is not None:
                init_from(net.body, config.init, size=config.size, strict=False)
            slots, losses = cycled()
            return cls(net=net.to(device), slots=[0, *slots], losses=[None, *losses])
        base = multistyle_from(config.init, size=config.size)  # type: ignore[arg-type]
        net = base.net
        slots = [add_style_row(net, n) for n in names]
        _train_only_styles(net, slots)
        return cls(net=net.to(device), slots=slots, losses=per_style(), base_images=_images_of(base))

    def step(self, it: int) -> tuple[int, torch.nn.Module | None]:
        k = it % len(self.slots)
        return self.slots[k], self.losses[k]

    def forward(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        if slot < 0:
            return self.net(x)
        mix = torch.zeros(len(self.net.styles), device=x.device)
        mix[slot] = 1.0
        return self.net(x, mix)


def cycle(slots: list[int], repeats: Sequence[int] | None) -> list[int]:
    """One cycle of a multi-style run: every style's slot once in turn, then, in order, the slots of styles with more
    ``repeats`` again, until each has had its count (``repeats`` None: once each)."""
    out = list(slots)
    for k in range(2, max(repeats or [1]) + 1):
        out += [s for s, r in zip(slots, repeats or []) if r >= k]
    return out


def _train_only_styles(net: torch.nn.Module, slots: list[int]) -> None:
    """Freeze the multi-style ``net`` except the per-style rows of ``slots`` (``add_style``, ``tune_style``): the
    student's :meth:`~vidstyle.nets.student_multistyle.StudentMultiStyleNet.style_parameters` (rows from slot 1), or
    the TransformerNet's conditional instance norms (rows from slot 0)."""
    from vidstyle.nets.multistyle import ConditionalInstanceNorm2d

    if callable(getattr(net, "style_parameters", None)):
        _train_only_rows(net, net.style_parameters(), [s - 1 for s in slots])
    else:
        norms = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]
        _train_only_rows(net, [p for m in norms for p in (m.weight, m.bias)], slots)


def _train_only_rows(net: torch.nn.Module, params: list[torch.nn.Parameter], rows: list[int]) -> None:
    """Freeze ``net`` except ``rows`` of the per-style ``params`` (first dimension = style): Dumoulin's fine-tuning."""
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
        keep = torch.zeros(p.shape[0], *([1] * (p.ndim - 1)))
        keep[rows] = 1.0
        p.register_hook(lambda g, k=keep: g * k.to(g.device, g.dtype))  # only the new rows learn


def _images_of(model: Any) -> list[str]:
    return list(model.metadata.get("style_images") or [])


def existing_slots(net: Any, names: list[str]) -> list[int]:
    """``tune_style``: the slots of the styles ``names`` in the multi-style ``net``; one clear error naming its styles
    for a name it does not have."""
    styles = list(net.styles)
    for name in names:
        if name not in styles[1:]:
            raise OptionValueError("style_names", f"init has no style named {name!r} to tune; its styles: "
                                                  f"{', '.join(styles[1:])} (name the painting file after one, or give "
                                                  "`style_names`)", also=("tune_style", "style"))
    if len(set(names)) != len(names):
        raise OptionValueError("style_names", f"tune each style once, got {', '.join(names)}", also=("tune_style",))
    return [styles.index(n) for n in names]


def multistyle_from(spec: str, *, size: str, param: str = "add_style") -> Any:
    """The multi-style model ``spec`` (a :class:`~vidstyle.nets.registry.StyleModel`) that ``add_style`` extends (or
    ``tune_style`` trains further: ``param``), checked against ``size``; one clear error for a one-style model or a
    size that does not fit."""
    from vidstyle.nets.registry import STUDENT_MULTISTYLE, list_models, load_model

    model = load_model(spec)
    if size == STUDENT_SIZE or model.architecture == STUDENT_MULTISTYLE:
        if model.architecture != STUDENT_MULTISTYLE:
            raise OptionValueError("init", f"{param} with size student needs a multi-style student model as `init` "
                                           f"(`vidstyle train --size student --multi-style`); {spec!r} is a "
                                           f"{model.architecture} model", also=(param, "size"))
        if size != STUDENT_SIZE:
            raise OptionValueError("size", f"{spec!r} is a multi-style student: {param} needs size student, "
                                           f"got {size!r}", also=("init",))
        return model
    if not model.styles:
        multi = [m.name for m in list_models() if getattr(m, "architecture", "") in ("multistyle", STUDENT_MULTISTYLE)]
        hint = f"; multi-style models: {', '.join(multi)}" if multi else "; train one with `multi_style`"
        raise OptionValueError("init", f"{param} needs a multi-style model as `init`; {spec!r} has one style{hint}",
                               also=(param, "multi_style"))
    if model.net.config != PRESETS[size]:
        raise OptionValueError("size", f"size must match the model {spec!r} ({model.net.config}), got {size!r}")
    return model


def _student_and_vgg(config: Any) -> tuple[Any, str, Any]:
    """The student ``config.init`` (default: the shipped one, downloaded if need be), its file name and the VGG19
    relu3_1 encoder that analyses the paintings (the one the student was distilled from)."""
    import os

    from vidstyle.errors import InputNotFoundError, ModelError
    from vidstyle.io.naming import with_parameter
    from vidstyle.nets.decoder import VGGEncoder
    from vidstyle.nets.student import load_student
    from vidstyle.stylize.arbitrary import find_decoder

    try:
        path = find_decoder(config.init, fast=True)
    except (InputNotFoundError, ModelError) as exc:  # found as the arbitrary back end finds it; here it is `init`
        raise with_parameter(type(exc)(f"init: {exc}"), "init", also=("size",)) from None
    try:
        student = load_student(path)
    except ModelError as exc:
        raise with_parameter(ModelError(f"init {path.name}: {exc}; size student starts from a student model "
                                        "(`vidstyle train --kind student`, or drop `init` for the shipped one)"),
                             "init", also=("size",)) from None
    vgg = VGGEncoder(layer="relu3_1", weights=config.vgg_weights, convention=config.vgg_convention)
    if student.vgg_fingerprint and vgg.fingerprint != student.vgg_fingerprint and not os.environ.get("VIDSTYLE_ANY_VGG"):
        raise OptionValueError("vgg_weights", f"student {path.name} was distilled from the VGG19 weights "
                                              f"{student.vgg_source}, but vgg_weights gives {Path(str(vgg.source)).name}; "
                                              f"pass {student.vgg_source}", also=("init",))
    return student, path.name, vgg


def painting_relu31(vgg: Any, image: str, *, style_size: int | None) -> torch.Tensor:
    """A painting's VGG19 relu3_1 features (``1×256×h×w``) at ``style_size`` on its long side."""
    from vidstyle.train import load_image

    painting = load_image(image, max_side=style_size).unsqueeze(0)
    with torch.no_grad():
        return vgg(painting)


def student_style_net(config: Any) -> tuple[torch.nn.Module, str]:
    """``size`` student: the student ``config.init`` (default: the shipped one, downloaded if need be) as a one-style
    network, its (γ, β) from the painting's VGG19 relu3_1 statistics at ``config.style_size``; or, when ``init`` is
    such a one-style network already, that network, to train further. Returns the network and the file's name (for
    the card)."""
    from vidstyle.nets.registry import STUDENT_STYLE, architecture_of, load_model
    from vidstyle.nets.student_style import StudentStyleNet

    if config.init is not None and architecture_of(config.init) == STUDENT_STYLE:  # go on fine-tuning that network
        model = load_model(config.init)
        return model.net.train(), Path(model.metadata.get("path", str(config.init))).name
    student, name, vgg = _student_and_vgg(config)
    feats = painting_relu31(vgg, config.style[0], style_size=config.style_size)
    return StudentStyleNet.from_student(student, style_features=feats), name


def student_multistyle_net(config: Any, *, names: list[str]) -> tuple[torch.nn.Module, str]:
    """``size`` student with ``multi_style``: one network for all ``config.style`` paintings, each starting at AdaIN
    with its own (γ, β) and an identity decoder affine (:mod:`vidstyle.nets.student_multistyle`); or, when ``init``
    is such a network with the same styles, that network, to train further (e.g. at a lower learning rate)."""
    from vidstyle.nets.registry import STUDENT_MULTISTYLE, architecture_of, load_model
    from vidstyle.nets.student_multistyle import StudentMultiStyleNet

    if config.init is not None and architecture_of(config.init) == STUDENT_MULTISTYLE:  # go on training that network
        model = load_model(config.init)
        if model.styles[1:] != names:
            raise OptionValueError("style_names", f"init {Path(str(config.init)).name} has the styles "
                                                  f"{', '.join(model.styles[1:])}; to train it further give the same "
                                                  f"`style` images and `style_names`, in that order",
                                   also=("init", "style"))
        return model.net.train(), Path(model.metadata.get("path", str(config.init))).name
    student, name, vgg = _student_and_vgg(config)
    feats = [painting_relu31(vgg, s, style_size=config.style_size) for s in config.style]
    return StudentMultiStyleNet.from_student(student, style_features=feats, styles=names), name


def student_add_styles(config: Any, net: Any, *, names: list[str]) -> tuple[torch.nn.Module, list[int]]:
    """``size`` student with ``add_style``: the multi-style student ``net`` (``config.init``'s) with one new row per
    painting (AdaIN start); only the new rows will learn. Returns the network and the new slots."""
    from vidstyle.nets.decoder import VGGEncoder

    vgg = VGGEncoder(layer="relu3_1", weights=config.vgg_weights, convention=config.vgg_convention)
    slots = []
    for name, image in zip(names, config.style):
        try:
            slots.append(net.add_style(name, style_features=painting_relu31(vgg, image, style_size=config.style_size)))
        except InvalidOptionError as exc:
            raise OptionValueError("style_names", f"{exc} (`style_names`, or rename the painting)",
                                   also=("style",)) from None
    return net, slots
