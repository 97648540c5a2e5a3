"""Fixtures of the render tests: a random tiny model and a 16-bit image sequence (helpers in
``render_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent):  # render_helpers, and tests/media.py
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from render_helpers import COUNT, FIRST, shot_image  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(config="tiny")
    with torch.no_grad():  # livelier random output than the default init
        for p in net.parameters():
            if p.ndim > 1:
                p.mul_(2.0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, net=net, name="tiny_random", style="random")


@pytest.fixture(scope="session")
def plates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames 1001–1024 of 16-bit PNG: plates/sh.%04d.png."""
    import cv2

    folder = tmp_path_factory.mktemp("shot") / "plates"
    folder.mkdir()
    for i in range(COUNT):
        cv2.imwrite(str(folder / f"sh.{FIRST + i:04d}.png"), shot_image(i)[:, :, ::-1])
    return folder
