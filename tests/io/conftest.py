"""Fixtures for the media I/O tests; puts ``tests/`` on ``sys.path`` so ``import media`` works."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

SHARED = TESTS.parent.parent / "shared"


@pytest.fixture(scope="session")
def shared_video() -> Path:
    folder = SHARED / "data" / "video"
    if not folder.is_dir():
        pytest.skip("../shared/data/video is absent")
    return folder
