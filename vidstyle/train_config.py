"""What a style-network training run depends on (:class:`TrainConfig`), kept apart from the training
code so that reading its defaults (``vidstyle train --help``) does not import torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidstyle.options.spec import OptionValueError

__all__ = ["TrainConfig"]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything a training run depends on (recorded in the checkpoint and the model card)."""

    style: tuple[str, ...]
    content: str
    output: str
    name: str | None = None
    size: str = "tiny"
    style_mix: tuple[float, ...] | None = None
    image_size: int = 256
    style_size: int | None = 384
    batch_size: int = 4
    iterations: int = 2000
    lr: float = 1e-3
    #: the last part of the run, as a fraction, over which the rate decays (cosine) to ``lr_final`` × ``lr``;
    #: 0 = a constant rate (vidstyle.lr_schedule)
    lr_decay: float = 0.0
    lr_final: float = 0.1
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    temporal_weight: float = 0.0
    #: weight of the lattice loss (vidstyle.losses.lattice): the output's fine texture equally strong at every
    #: phase of the 4×4 grid its depth-to-space layer paints (0 = off)
    lattice_weight: float = 0.0
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3")
    #: "mean" (Gram entries averaged per layer) or "sum" (the standard squared Frobenius norm)
    style_reduction: str = "mean"
    #: the style loss: gram, mmd-linear, mmd-poly, mmd-gaussian or bn (vidstyle.losses.select; mrf is
    #: optimisation only); β is multiplied by its STYLE_LOSS_SCALE
    style_loss: str = "gram"
    vgg_weights: str | None = None
    vgg_convention: str | None = None
    seed: int = 0
    checkpoint_every: int = 100
    threads: int | None = None
    max_images: int | None = None
    init: str | None = None
    #: train one network for all ``style`` images (conditional instance norm, Dumoulin et al.)
    multi_style: bool = False
    #: train only new (γ, β) rows for ``style`` in the multi-style model ``init`` (the rest frozen)
    add_style: bool = False
    #: train further only the rows of the ``style`` paintings' styles, which the multi-style model ``init`` already
    #: has (named by ``style_names`` or the files' stems); every other style stays bit-identical
    tune_style: bool = False
    #: ``multi_style``: batches per cycle for each ``style`` painting (default one each). Each cycle trains every painting
    #: once in turn, then, in order, those given more again: a painting that needs more iterations than its share
    #: gets them (BENCHMARKS.md, "The multi-style student")
    style_repeats: tuple[int, ...] | None = None
    #: ``multi_style``: a lattice weight per ``style`` painting, in place of ``lattice_weight`` for its batches (None:
    #: ``lattice_weight`` for all). The loss spreads a painting's strokes over the 4×4 grid; paintings whose line work
    #: the measure rewards on the grid (the Great Wave, Composition VII) keep 0 (BENCHMARKS.md, "The default model's
    #: lattice")
    style_lattice: tuple[float, ...] | None = None
    #: names of the styles of a multi-style model (default: the image files' stems)
    style_names: tuple[str, ...] | None = None
    #: stop after this many seconds (the model is saved as it is then); None = run every iteration
    time_budget: float | None = None
    #: weight of the pixel loss that teaches a multi-style model's identity slot to give the photo back
    identity_weight: float = 10.0

    def validate(self) -> None:
        from vidstyle.losses import PATCH_LOSSES, STYLE_LOSSES, STYLE_REDUCTIONS
        from vidstyle.lr_schedule import LRSchedule
        from vidstyle.nets.transformer import PRESETS
        from vidstyle.train_plan import STUDENT_SIZE

        if not self.style:
            raise OptionValueError("style", "at least one `style` image is needed")
        if not self.style_layers:
            raise OptionValueError("style_layers",
                                   "style_layers needs at least one VGG19 layer, e.g. relu1_2,relu2_2,relu3_3")
        if self.size not in PRESETS and self.size != STUDENT_SIZE:
            raise OptionValueError("size", f"size must be one of {sorted([*PRESETS, STUDENT_SIZE])}, got {self.size!r}")
        if self.size == STUDENT_SIZE and not (self.multi_style or self.add_style or self.tune_style) and len(self.style) != 1:
            raise OptionValueError("size", "size student fine-tunes the fast arbitrary-style student for one painting: "
                                           "give one `style` image, or add multi_style for one network of several",
                                   also=("style", "multi_style"))
        for name, value, low in [("image_size", self.image_size, 32), ("batch_size", self.batch_size, 1),
                                 ("iterations", self.iterations, 1), ("checkpoint_every", self.checkpoint_every, 1)]:
            if value < low:
                raise OptionValueError(name, f"{name} must be >= {low}, got {value}")
        for name, value in [("lr", self.lr), ("content_weight", self.content_weight), ("style_weight", self.style_weight),
                            ("tv_weight", self.tv_weight), ("temporal_weight", self.temporal_weight),
                            ("lattice_weight", self.lattice_weight)]:
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise OptionValueError(name, f"{name} must be a positive finite number, got {value}")
        LRSchedule(decay=self.lr_decay, final=self.lr_final)  # checks both
        if self.style_reduction not in STYLE_REDUCTIONS:
            raise OptionValueError("style_reduction", f"style_reduction must be one of {', '.join(STYLE_REDUCTIONS)}, "
                                   f"got {self.style_reduction!r}")
        if self.style_loss in PATCH_LOSSES:
            raise OptionValueError("style_loss", f"style_loss {self.style_loss} matches patches of one picture at a "
                                                 "time (vidstyle image, or the optim back end); training takes "
                                                 f"{', '.join(k for k in STYLE_LOSSES if k not in PATCH_LOSSES)}")
        if self.style_loss not in STYLE_LOSSES:
            raise OptionValueError("style_loss", f"style_loss must be one of {', '.join(STYLE_LOSSES)}, "
                                                 f"got {self.style_loss!r}")
        if self.style_size is not None and self.style_size < 32:
            raise OptionValueError("style_size", "style_size must be >= 32 (or unset for the image's own size), "
                                   f"got {self.style_size}")
        if self.max_images is not None and self.max_images < 1:
            raise OptionValueError("max_images", f"max_images must be >= 1, got {self.max_images}")
        if self.multi_style and self.add_style:
            raise OptionValueError("add_style", "add_style extends an existing multi-style model (`init`); "
                                                "multi_style trains a new one: give one of them")
        if self.add_style and not self.init:
            raise OptionValueError("add_style", "add_style needs the multi-style model to extend: give `init` MODEL",
                                   also=("init",))
        if self.tune_style and (self.multi_style or self.add_style):
            raise OptionValueError("tune_style", "tune_style trains styles a multi-style model (`init`) already has; "
                                                 "multi_style and add_style make new ones: give one of them",
                                   also=("multi_style", "add_style"))
        if self.tune_style and not self.init:
            raise OptionValueError("tune_style", "tune_style needs the multi-style model whose styles it trains: give "
                                                 "`init` MODEL", also=("init",))
        if self.style_names is not None and len(self.style_names) != len(self.style):
            raise OptionValueError("style_names", "give one `style_names` entry per `style` image", also=("style",))
        if self.style_repeats is not None:
            if not self.multi_style:
                raise OptionValueError("style_repeats", "style_repeats sets how often each painting of a multi-style "
                                                        "run is trained: add multi_style", also=("multi_style",))
            if len(self.style_repeats) != len(self.style):
                raise OptionValueError("style_repeats", "give one `style_repeats` count per `style` image", also=("style",))
            if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.style_repeats):
                raise OptionValueError("style_repeats", f"style_repeats are whole numbers >= 1, got {self.style_repeats}")
        if self.style_lattice is not None:
            if not self.multi_style:
                raise OptionValueError("style_lattice", "style_lattice sets the lattice weight of each painting of a "
                                                        "multi-style run: add multi_style, or give lattice_weight",
                                       also=("multi_style", "lattice_weight"))
            if len(self.style_lattice) != len(self.style):
                raise OptionValueError("style_lattice", "give one `style_lattice` weight per `style` image", also=("style",))
            if any(isinstance(w, bool) or not math.isfinite(w) or w < 0 for w in self.style_lattice):
                raise OptionValueError("style_lattice", f"style_lattice weights are finite numbers >= 0, got "
                                                        f"{self.style_lattice}")
        if (self.multi_style or self.add_style or self.tune_style) and self.style_mix is not None:
            raise OptionValueError("style_mix", "style_mix blends styles into one network's single style; a "
                                                "multi-style model keeps them apart: drop `style_mix`")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise OptionValueError("time_budget", f"time_budget must be a positive number of seconds, got {self.time_budget}")
        if self.style_mix is not None and len(self.style_mix) != len(self.style):
            raise OptionValueError("style_mix", "give one `style_mix` weight per `style` image", also=("style",))
