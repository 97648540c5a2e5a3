"""The trainers' learning-rate schedule (vidstyle.lr_schedule) against its formula, and in a real training run."""

from __future__ import annotations

import math

import pytest
import torch

from vidstyle.errors import InvalidOptionError
from vidstyle.lr_schedule import LRSchedule, apply_lr, lr_factor


def _reference(i: int, n: int, d: float, r: float) -> float:
    """The module docstring's formula, written out once more."""
    s = n * (1 - d)
    if i + 1 <= s:
        return 1.0
    p = min(1.0, (i + 1 - s) / (n - s))
    return r + (1 - r) * (1 + math.cos(math.pi * p)) / 2


@pytest.mark.parametrize("n,d,r", [(10, 0.3, 0.1), (300, 0.25, 0.2), (7, 1.0, 0.05), (1, 1.0, 0.5), (40, 0.5, 1.0)])
def test_factor_follows_the_formula(n: int, d: float, r: float) -> None:
    got = [lr_factor(i, iterations=n, decay=d, final=r) for i in range(n)]
    assert got == pytest.approx([_reference(i, n, d, r) for i in range(n)], abs=1e-12)
    assert got[-1] == pytest.approx(r)  # the last iteration runs at exactly final × lr
    assert all(a >= b for a, b in zip(got, got[1:]))  # never rises
    flat = int(n * (1 - d))
    assert got[:flat] == [1.0] * flat  # untouched before the decay starts


def test_constant_is_the_default() -> None:
    sched = LRSchedule()
    assert [sched.factor(i, iterations=50) for i in range(50)] == [1.0] * 50
    assert sched.describe() == "constant"
    assert LRSchedule(decay=0.3, final=0.1).describe() == "cosine decay to 0.1× over the last 30 %"


def test_halfway_through_the_decay_is_halfway_in_rate() -> None:
    # n = 100, decay over the last 40: iteration 79 is p = 0.5, where the cosine is at its midpoint
    assert lr_factor(79, iterations=100, decay=0.4, final=0.2) == pytest.approx(0.6)


@pytest.mark.parametrize("kw,param", [({"decay": -0.1}, "lr_decay"), ({"decay": 1.5}, "lr_decay"),
                                      ({"decay": True}, "lr_decay"), ({"final": 0.0}, "lr_final"),
                                      ({"final": 2.0}, "lr_final"), ({"final": float("nan")}, "lr_final")])
def test_bad_values_name_the_parameter(kw: dict, param: str) -> None:
    with pytest.raises(InvalidOptionError, match=param):
        LRSchedule(**kw)


def test_apply_lr_keeps_each_groups_ratio() -> None:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 3e-2}])
    apply_lr(opt, 0.5)
    apply_lr(opt, 0.25)  # relative to the first rates, not compounded
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2.5e-4, 7.5e-3])
    apply_lr(opt, 1.0)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 3e-2])
