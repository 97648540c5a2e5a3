"""The arbitrary back end's analysis of the paintings in the run's precision (``analysis_dtype``)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
if str(HERE.parent / "nets") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "nets"))

from nets_helpers import write_vgg_and_decoder  # noqa: E402

from vidstyle.options.groups import parse_styles  # noqa: E402
from vidstyle.stylize.arbitrary import build_arbitrary_model  # noqa: E402


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("analysis")
    vgg, dec = write_vgg_and_decoder(d)
    yy, xx = np.mgrid[0:96, 0:128]
    painting = np.stack([128 + 100 * np.sin(xx / 5.0), 128 + 90 * np.cos(yy / 7.0), (xx * 2 + yy) % 256], -1)
    cv2.imwrite(str(d / "painting.png"), painting.astype(np.uint8))
    return {"d": d, "vgg": vgg, "dec": dec}


def _stats(parts: dict[str, Path], method: str, dtype: torch.dtype | None) -> object:
    model = build_arbitrary_model(styles=parse_styles([str(parts["d"] / "painting.png")], "style"), method=method,
                                  decoder=str(parts["dec"]), vgg_weights=str(parts["vgg"]), analysis_dtype=dtype,
                                  style_scale=0.25)  # analysed at 128 px
    return model.net.statistics  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_bfloat16_analysis_is_float32_statistics_close_to_the_float32_ones(parts: dict[str, Path], method: str,
                                                                           one_torch_thread: None) -> None:
    exact = _stats(parts, method, None)
    same = _stats(parts, method, torch.float32)
    fast = _stats(parts, method, torch.bfloat16)
    for name in ("mean", "std", "colouring"):
        a, b, c = getattr(exact, name), getattr(same, name), getattr(fast, name)
        if a is None:
            continue
        assert torch.equal(a, b)  # float32 is the float32 analysis itself
        assert c.dtype == a.dtype  # the statistics stay in float32 (float64 for WCT's colouring)
        rel = ((c - a).abs().max() / a.abs().max()).item()
        assert 0 < rel < 0.02, (name, rel)  # bfloat16 convolutions: ~3 significant digits, not the same numbers
