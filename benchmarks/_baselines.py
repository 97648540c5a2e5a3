"""The retired shipped models (``starry_tiny``, ``wave_small``), kept in ``benchmarks/baselines/`` to measure against.

They missed the model zoo's quality target and are no longer shipped (``vidstyle.nets.registry.RETIRED``), so
``--model starry_tiny`` is an error for users. The benchmarks that compare with them call :func:`use_baselines`,
which puts this folder first among the model folders (``VIDSTYLE_MODELS``), so the names load these files.
"""

from __future__ import annotations

import os
from pathlib import Path

BASELINES = Path(__file__).resolve().parent / "baselines"


def use_baselines() -> Path:
    """Make ``starry_tiny`` and ``wave_small`` load from ``benchmarks/baselines/`` in this process; returns the folder."""
    dirs = [p for p in os.environ.get("VIDSTYLE_MODELS", "").split(os.pathsep) if p]
    if str(BASELINES) not in dirs:
        os.environ["VIDSTYLE_MODELS"] = os.pathsep.join([str(BASELINES), *dirs])
    return BASELINES
