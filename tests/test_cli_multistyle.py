"""Bad input around multi-style models (issue 14): each is one ``vidstyle: error:`` line that names the
valid choices, exit code 1, no traceback, and nothing under the output name."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.cli.main import main
from vidstyle.nets.multistyle import MultiStyleNet
from vidstyle.nets.registry import save_model
from vidstyle.nets.transformer import TransformerNet


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("multistyle")
    torch.manual_seed(0)
    multi = save_model(d / "two.safetensors", net=MultiStyleNet(config="tiny", styles=["starry", "wave"]),
                       name="two", style="starry,wave")
    single = save_model(d / "one.safetensors", net=TransformerNet(config="tiny"), name="one", style="x.jpg")
    photo = d / "photo.png"
    yy, xx = np.mgrid[0:48, 0:64]
    cv2.imwrite(str(photo), np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.uint8))
    return {"dir": d, "multi": multi, "single": single, "photo": photo}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    errors = [ln for ln in lines if ln.startswith("vidstyle: error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize(("mix", "expect"), [
    ("monet:1", ["no style 'monet'", "starry", "wave"]),
    ("starry:-0.5,wave:1", ["-0.5"]),
    ("starry:0,wave:0", ["sum to 0"]),
])
def test_bad_style_mix_is_one_line_naming_the_choices(files, tmp_path, capsys, mix: str, expect: list[str]) -> None:
    out = tmp_path / "out.png"
    rc = main(["stylize", str(files["photo"]), "-o", str(out), "--model", str(files["multi"]), "--style-mix", mix])
    line = _one_error_line(capsys)
    assert rc == 1 and "--style-mix" in line, line
    for word in expect:
        assert word in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_good_style_mix_works(files, tmp_path) -> None:
    out = tmp_path / "out.png"
    assert main(["stylize", str(files["photo"]), "-o", str(out), "--model", str(files["multi"]),
                 "--style-mix", "starry:0.7,wave:0.3"]) == 0
    assert cv2.imread(str(out)).shape == (48, 64, 3)


def test_style_mix_on_a_one_style_model_is_refused(files, tmp_path, capsys) -> None:
    rc = main(["stylize", str(files["photo"]), "-o", str(tmp_path / "out.png"), "--model", str(files["single"]),
               "--style-mix", "a:1"])
    line = _one_error_line(capsys)
    assert rc == 1 and "multi-style" in line, line
    assert list(tmp_path.iterdir()) == []


def test_add_style_on_a_one_style_model_is_refused(files, tmp_path, capsys) -> None:
    rc = main(["train", "--add-style", str(files["photo"]), "--init", str(files["single"]),
               "--content", str(files["dir"]), "-o", str(tmp_path / "new")])
    line = _one_error_line(capsys)
    assert rc == 1 and "has one style" in line and "--init" in line, line
    assert list(tmp_path.iterdir()) == []
