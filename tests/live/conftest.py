"""Fixtures of the live-mode tests (a tiny random model); helpers are in live_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights tiny TransformerNet saved as a vidstyle model file."""
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "rand_tiny.safetensors"
    save_model(
        path, net=TransformerNet(config="tiny"), name="rand_tiny", style="random"
    )
    return path
