"""Optical flow, consistency masks, warping and the flow pipeline stage.

Algorithms and naming: see docs/architecture.md, 'Temporal consistency' and 'Optical flow'.

Conventions: a flow is a float32 ``2×H×W`` array (``[0]`` horizontal, ``[1]`` vertical, pixels)
that maps image A to image B, ``A(x) ≈ B(x + flow(x))``. For frame t, ``w_b`` maps t back to t−1
and ``w_f`` maps t−1 to t; ``warp(S_{t−1}, w_b)`` moves the previous output into frame t.

Submodules load lazily (``import vidstyle.flow`` does not import torch or OpenCV):

* :mod:`~vidstyle.flow.estimators` — :func:`make_flow_estimator`, :class:`FlowEstimator`, :func:`flow_pair`
* :mod:`~vidstyle.flow.consistency` — :func:`consistency_mask`, :func:`is_scene_cut`
* :mod:`~vidstyle.flow.warping` — :func:`warp` / :class:`Warp` (torch), :func:`warp_numpy` (OpenCV)
* :mod:`~vidstyle.flow.flo` — :func:`read_flo`, :func:`write_flo`
* :mod:`~vidstyle.flow.stage` — :class:`FlowStage`
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FlowEstimator": "estimators",
    "DISFlow": "estimators",
    "FarnebackFlow": "estimators",
    "DeepFlow": "estimators",
    "RAFTFlow": "estimators",
    "ESTIMATOR_NAMES": "estimators",
    "make_flow_estimator": "estimators",
    "flow_pair": "estimators",
    "resize_flow": "estimators",
    "consistency_mask": "consistency",
    "consistency_mask_torch": "consistency",
    "photometric_mask": "consistency",
    "is_scene_cut": "consistency",
    "cut_statistics": "consistency",
    "CutStats": "consistency",
    "warp": "warping",
    "Warp": "warping",
    "warp_numpy": "warping",
    "flow_to_grid": "warping",
    "read_flo": "flo",
    "write_flo": "flo",
    "FlowStage": "stage",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidstyle.flow' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vidstyle.flow.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
