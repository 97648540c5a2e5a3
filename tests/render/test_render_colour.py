"""Colour-managed renders (OpenColorIO, the ACES studio config): a scene-linear EXR plate with
values 0–4 comes back within half precision when the stylisation is off (style strength 0),
stylised frames keep values above 1.0 where the plate had them, the header names the output
space; bad colour input is one line and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from render_helpers import shot_image, write_job

from vidstyle.io import read_image
from vidstyle.render import load_job, render

pytest.importorskip("PyOpenColorIO")
OpenEXR = pytest.importorskip("OpenEXR")

HALF_REL = 2.0**-11
AP1 = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)


@pytest.fixture(scope="module")
def linear_plates(tmp_path_factory) -> Path:
    """4 half-float ACEScg plates, values 0–4 (83–87 % of the pixels have a channel above 1)."""
    folder = tmp_path_factory.mktemp("linear") / "plates"
    folder.mkdir()
    for i in range(4):
        img = (shot_image(i, np.float32) * 4).astype(np.float16)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"RGB": img}).write(str(folder / f"sh.{1001 + i:04d}.exr"))
    return folder


def _job(folder: Path, plates: Path, model: Path, **keys: object) -> Path:
    job = write_job(folder, plates=plates, model=model, output="out/sh.%04d.exr", stabilize=0.0, **keys)
    job.write_text(job.read_text().replace("sh.%04d.png", "sh.%04d.exr"))
    return job


def test_round_trip_with_stylisation_off_returns_the_plate(tmp_path, linear_plates, tiny_model):
    render(load_job(_job(tmp_path, linear_plates, tiny_model, input_colorspace="ACEScg", style_strength=0.0)))
    for n in range(1001, 1005):
        plate = read_image(linear_plates / f"sh.{n}.exr")
        out = read_image(tmp_path / "out" / f"sh.{n}.exr")
        assert plate.max() > 3.5 and (plate.max(axis=2) > 1).mean() > 0.5  # highlights to keep
        assert np.all(np.abs(out - plate) <= HALF_REL * np.maximum(np.abs(plate), 2.0**-10)), n
    with OpenEXR.File(str(tmp_path / "out" / "sh.1001.exr")) as f:
        header = dict(f.header())
        assert f.channels()["RGB"].pixels.dtype == np.float16  # half in, half out
    assert header["oiio:ColorSpace"] == "ACEScg" and header["colorInteropID"] == "lin_ap1_scene"
    assert header["chromaticities"] == pytest.approx(AP1, abs=1e-6)
    manifest = json.loads((tmp_path / "out" / "sh.manifest.json").read_text())
    assert manifest["layout"]["colour"] == {"name": "ACEScg", "interop_id": "lin_ap1_scene"}


def test_without_colour_management_highlights_are_clipped_as_before(tmp_path, linear_plates, tiny_model):
    render(load_job(_job(tmp_path, linear_plates, tiny_model, style_strength=0.0)))
    out = read_image(tmp_path / "out" / "sh.1001.exr")
    assert out.max() <= 1.0  # today's behaviour, which the header now states: sRGB
    with OpenEXR.File(str(tmp_path / "out" / "sh.1001.exr")) as f:
        assert dict(f.header())["colorInteropID"] == "srgb_rec709_scene"


def test_stylised_output_keeps_highlights(tmp_path, linear_plates, tiny_model):
    render(load_job(_job(tmp_path, linear_plates, tiny_model, input_colorspace="ACEScg")))
    for n in (1001, 1004):
        plate = read_image(linear_plates / f"sh.{n}.exr")
        out = read_image(tmp_path / "out" / f"sh.{n}.exr")
        hot = plate.max(axis=2) > 1
        assert (out.max(axis=2)[hot] > 1).mean() > 0.9  # measured 0.94–0.96 with the random tiny net
        assert np.abs(out - plate).mean() > 0.05  # and it is stylised, not passed through


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidstyle", "render", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(
    "flags, expect",
    [(["--input-colorspace", "ACEScgg"],
      "--input-colorspace: 'ACEScgg' is not a colour space of the config 'ocio://studio-config-latest'; "
      "did you mean 'ACEScg'? it has 'ACEScg'"),
     (["--input-colorspace", "ACEScg", "--output-colorspace", "Rec 709"],
      "--output-colorspace: 'Rec 709' is not a colour space"),
     (["--input-colorspace", "ACEScg", "--ocio-config", "/nowhere/config.ocio"],
      "ocio_config: the OpenColorIO config '/nowhere/config.ocio' does not exist"),
     (["--output-colorspace", "ACEScg"], "--input-colorspace: declare the plates' colour space too")],
)
def test_bad_colour_input_is_one_line_and_writes_nothing(tmp_path, linear_plates, tiny_model, flags, expect):
    job = _job(tmp_path, linear_plates, tiny_model)
    r = _cli(str(job), *flags)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expect in lines[0]
    assert not (tmp_path / "out").exists()
