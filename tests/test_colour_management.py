"""Colour management: the sRGB curve against its formula, the highlight-ratio carry (exact
round trip, network input in range, display-range pixels untouched), OpenColorIO conversions
within half precision, and one clear line for each bad colour input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vidstyle.cli.common import error_line
from vidstyle.colour.management import from_network, srgb_decode, srgb_encode, to_network
from vidstyle.errors import InputNotFoundError, UnsupportedFormatError
from vidstyle.options.spec import OptionValueError

#: half float's relative precision (round to nearest)
HALF_REL = 2.0**-11


def linear_plate(seed: int = 0, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    """A scene-linear test plate: values 0–4, a third of the pixels with a negative channel
    (wide-gamut colours seen in Rec.709)."""
    rng = np.random.default_rng(seed)
    plate = rng.random((*shape, 3), dtype=np.float32) * 4
    neg = rng.random(shape) < 0.3
    plate[neg, 2] = -0.2 * rng.random(int(neg.sum()), dtype=np.float32)
    return plate


def test_srgb_curve_matches_iec_61966_2_1():
    x = np.array([0.0, 0.0031308, 0.18, 0.5, 1.0], dtype=np.float32)
    expected = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    assert srgb_encode(x) == pytest.approx(expected, abs=1e-6)
    assert srgb_encode(np.float32(0.18)) == pytest.approx(0.4613561, abs=1e-6)
    v = np.linspace(0, 1, 4097, dtype=np.float32)
    assert np.abs(srgb_decode(srgb_encode(v)) - v).max() < 1e-6


def test_carry_round_trip_is_exact_and_the_network_sees_its_range():
    plate = linear_plate()
    assert plate.max() > 3.5 and plate.min() < 0  # the test covers highlights and negatives
    net_in, carry = to_network(plate)
    assert net_in.min() >= 0 and net_in.max() <= 1
    assert carry.ratio.min() == 1 and carry.ratio.max() == pytest.approx(plate.max(axis=2).max())
    back = from_network(net_in, carry)  # the identity network
    assert np.abs(back - plate).max() <= 4 * 2.0**-23 * 4 * 8  # float32 rounding of a few operations on values ≤ 4


def test_display_range_pixels_reach_the_network_as_plain_srgb():
    plate = np.random.default_rng(1).random((8, 8, 3), dtype=np.float32)  # all in [0, 1]
    net_in, carry = to_network(plate)
    assert np.array_equal(net_in, srgb_encode(plate)) and np.all(carry.ratio == 1) and np.all(carry.residual == 0)


def test_a_stylised_highlight_keeps_its_ratio():
    plate = np.full((2, 2, 3), [4.0, 2.0, 1.0], dtype=np.float32)
    net_in, carry = to_network(plate)
    stylised = srgb_encode(np.full((2, 2, 3), [0.5, 0.5, 0.25], dtype=np.float32))  # what a network might paint
    out = from_network(stylised, carry)
    assert out[0, 0] == pytest.approx([2.0, 2.0, 1.0], rel=1e-5)  # 4 × the stylised linear colour


# ------------------------------------------------------------------------------------- OpenColorIO
ocio = pytest.importorskip("PyOpenColorIO")


def test_ocio_round_trip_within_half_precision():
    from vidstyle.colour.management import ColourManagement

    cm = ColourManagement(input="ACEScg", output="ACEScg")
    assert cm.input.interop_id == "lin_ap1_scene" and cm.working == "Linear Rec.709 (sRGB)"
    plate = linear_plate(2).astype(np.float16).astype(np.float32)
    net_in, carry = cm.plate_to_network(plate)
    assert net_in.min() >= 0 and net_in.max() <= 1
    back = cm.network_to_output(net_in, carry)
    assert np.all(np.abs(back - plate) <= HALF_REL * np.maximum(np.abs(plate), 2.0**-10))


def test_ocio_converts_between_spaces_like_the_reference_matrix():
    """ACEScg → linear Rec.709 through the config equals the AP1 → Rec.709 matrix (D60 → D65 Bradford)."""
    from vidstyle.colour.management import ColourManagement

    cm = ColourManagement(input="ACEScg", output="Linear Rec.709 (sRGB)")
    ap1_to_709 = np.array([[1.70505, -0.62179, -0.08326], [-0.13026, 1.14080, -0.01055], [-0.02400, -0.12897, 1.15297]])
    plate = np.random.default_rng(3).random((4, 4, 3), dtype=np.float32) * 0.9
    net_in, carry = cm.plate_to_network(plate)
    out = cm.network_to_output(net_in, carry)
    assert out == pytest.approx(plate @ ap1_to_709.T, abs=2e-4)


def test_unknown_colour_space_lists_the_configs_spaces():
    from vidstyle.colour.management import ColourManagement

    with pytest.raises(OptionValueError) as info:
        ColourManagement(input="ACEScgg")
    line = error_line(info.value)
    assert line.startswith("--input-colorspace: 'ACEScgg' is not a colour space of the config")
    assert "did you mean 'ACEScg'?" in line and "'ACES2065-1'" in line and "more;" in line and "\n" not in line


def test_missing_config_file(tmp_path):
    from vidstyle.colour.management import ColourManagement

    with pytest.raises(InputNotFoundError, match="does not exist; give an existing .ocio file"):
        ColourManagement(input="ACEScg", config=tmp_path / "nope.ocio")


def test_without_opencolorio_the_error_says_how_to_install_it(monkeypatch):
    from vidstyle.colour.management import ColourManagement

    monkeypatch.setitem(sys.modules, "PyOpenColorIO", None)  # import fails
    with pytest.raises(UnsupportedFormatError, match=r"pip install 'vidstyle\[color\]'"):
        ColourManagement(input="ACEScg")
