"""Fixtures of the flow tests; helpers live in ``flow_synth``."""

from __future__ import annotations

from pathlib import Path

import pytest

from flow_synth import SHARED, SyntheticPair, affine_pair


@pytest.fixture(scope="session")
def pair() -> SyntheticPair:
    return affine_pair()


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED
