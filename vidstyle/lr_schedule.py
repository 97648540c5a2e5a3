"""The trainers' learning-rate schedule: constant, then a cosine decay over the last part of the run.

Why (BENCHMARKS.md, "The multi-style student"): at a constant rate the shared decoder of a multi-style network keeps
trading one painting against another from checkpoint to checkpoint; 10 % more iterations at a fifth of the rate
settled it (7 of 8 styles within 1.2× of their one-style models instead of 3 of 8). A decay inside the run does that
within the same budget, for the painting that had been traded away (a three-painting net: The Scream's held-out style
ratio 0.272 → 0.226; the other two unchanged).

With ``decay`` ``d`` and ``final`` ``r``, iteration ``i`` (0-based) of ``n`` runs at ``lr × factor(i)``::

    s = n · (1 − d)                       # where the decay starts
    p = clamp((i + 1 − s) / (n − s), 0, 1)
    factor(i) = r + (1 − r) · (1 + cos(π p)) / 2

so the rate is ``lr`` until ``s``, falls smoothly, and the last iteration runs at exactly ``r × lr``. ``d = 0`` is a
constant rate (the default); ``d = 1`` is a cosine over the whole run (Loshchilov & Hutter 2017, without restarts).
The factor depends only on the iteration, so a resumed run continues the same schedule. With a time budget the
schedule is still planned over ``n`` iterations: a run stopped early by the budget stops wherever it is on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vidstyle.options.spec import OptionValueError

__all__ = ["LRSchedule", "lr_factor", "apply_lr", "card_lr", "SCHEDULE_DEFAULTS"]

#: what a checkpoint written before the schedule existed had in effect (a constant rate)
SCHEDULE_DEFAULTS = {"lr_decay": 0.0, "lr_final": 0.1}


@dataclass(frozen=True, slots=True)
class LRSchedule:
    """``decay``: the fraction of the iterations, at the end, over which the rate falls (0 = constant, 1 = the whole
    run); ``final``: the last iteration's rate as a fraction of the initial one (in (0, 1])."""

    decay: float = 0.0
    final: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.decay, bool) or not (isinstance(self.decay, (int, float)) and 0.0 <= self.decay <= 1.0):
            raise OptionValueError("lr_decay", f"`lr_decay` is the fraction of the run the rate decays over, in [0, 1]; "
                                               f"got {self.decay!r}")
        if isinstance(self.final, bool) or not (isinstance(self.final, (int, float)) and 0.0 < self.final <= 1.0):
            raise OptionValueError("lr_final", f"`lr_final` is the last rate as a fraction of lr, in (0, 1]; "
                                               f"got {self.final!r}")

    def factor(self, iteration: int, *, iterations: int) -> float:
        """The rate of 0-based ``iteration`` of ``iterations``, as a fraction of the initial rate."""
        return lr_factor(iteration, iterations=iterations, decay=self.decay, final=self.final)

    def describe(self) -> str:
        """``constant``, or e.g. ``cosine decay to 0.1× over the last 30 %`` (for model cards)."""
        if self.decay == 0.0 or self.final == 1.0:
            return "constant"
        return f"cosine decay to {self.final:g}× over the last {self.decay * 100:g} %"


def lr_factor(iteration: int, *, iterations: int, decay: float, final: float) -> float:
    """The schedule's factor for 0-based ``iteration`` of ``iterations`` (the module docstring's formula)."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    start = iterations * (1.0 - decay)
    if decay == 0.0 or iteration + 1 <= start:
        return 1.0
    p = min(max((iteration + 1 - start) / (iterations - start), 0.0), 1.0)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))


def apply_lr(opt: torch.optim.Optimizer, factor: float) -> None:
    """Set every parameter group's rate to ``factor`` times its rate when first seen here (kept as the group's
    ``initial_lr``, the key torch's own schedulers use), so groups with their own rates keep their ratios."""
    for group in opt.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor


def card_lr(card: dict) -> str:
    """``lr 0.001`` or ``lr 0.001, cosine decay to 0.1× over the last 30 %``: a model card's rate, for its Markdown."""
    schedule = card.get("lr_schedule", "constant")
    return f"lr {card['lr']}" + (f", {schedule}" if schedule != "constant" else "")
