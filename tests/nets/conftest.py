"""Fixtures of the network tests (helpers in ``nets_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nets_helpers import CONTENT, WEIGHTS, write_fake_vgg


@pytest.fixture(scope="session")
def fake_vgg_caffe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conv1_1 … conv3_4 with random weights, metadata saying the Caffe convention."""
    return write_fake_vgg(tmp_path_factory.mktemp("vgg") / "vgg_caffe.safetensors", metadata={"convention": "caffe"})


@pytest.fixture
def shared_weights() -> Path:
    if not WEIGHTS.is_dir():
        pytest.skip("../shared/weights is absent")
    return WEIGHTS


@pytest.fixture
def content_photo() -> Path:
    photos = sorted(CONTENT.glob("*.jpg")) if CONTENT.is_dir() else []
    if not photos:
        pytest.skip("../shared/data/content is absent")
    return photos[0]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Small tensors: one intra-op thread (the shared ``one_torch_thread`` fixture) for every nets test."""
    yield
