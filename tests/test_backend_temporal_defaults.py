"""The arbitrary back end's own temporal defaults in the file pipeline (resample at 0.9 with dis-medium flow:
BENCHMARKS.md, "Arbitrary style"): filled in where the options are not given, by the library and the CLI alike,
and nowhere else (other back ends, the fast variant, options given as an object)."""

from __future__ import annotations

import pytest

from vidstyle.api import options_from
from vidstyle.cli.main import build_parser
from vidstyle.cli.stylize import option_groups
from vidstyle.options import ARBITRARY_TEMPORAL, TemporalOptions, backend_temporal_defaults
from vidstyle.options.curve import Curve

RESAMPLE = TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9))


def test_the_defaults_are_the_measured_ones() -> None:
    assert ARBITRARY_TEMPORAL == {"flow": "dis-medium", "stabilizer": "resample", "stabilize": 0.9}


@pytest.mark.parametrize(("options", "expected"), [
    ({"backend": "arbitrary", "style": "p.jpg"}, RESAMPLE),
    ({"backend": "arbitrary", "style": "p.jpg", "flow": "dis-fast"},
     TemporalOptions(flow="dis-fast", stabilizer="resample", stabilize=Curve.constant(0.9))),
    ({"backend": "arbitrary", "style": "p.jpg", "stabilizer": "blend", "stabilize": 0.5},
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.5))),
    ({"backend": "arbitrary", "style": "p.jpg", "fast": True}, TemporalOptions()),
    ({}, TemporalOptions()),
    ({"backend": "optim", "style": "p.jpg"}, TemporalOptions()),
])
def test_the_library_fills_what_is_not_given(options: dict, expected: TemporalOptions) -> None:
    _, tm, _, _ = options_from(options)
    assert tm == expected


def test_a_temporal_object_is_used_as_it_is() -> None:
    given = TemporalOptions()
    _, tm, _, _ = options_from({"backend": "arbitrary", "style": "p.jpg"}, temporal=given)
    assert tm is given


@pytest.mark.parametrize(("flags", "expected"), [
    (["--style", "p.jpg"], RESAMPLE),  # a painting alone means the arbitrary back end
    (["--backend", "arbitrary", "--style", "p.jpg", "--stabilizer", "blend"],
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.9))),
    (["--style", "p.jpg", "--stabilize", "0"], TemporalOptions(flow="dis-medium", stabilizer="resample",
                                                               stabilize=Curve.constant(0.0))),
    (["--style", "p.jpg", "--fast"], TemporalOptions()),
    ([], TemporalOptions()),
])
def test_the_cli_fills_the_flags_not_given(flags: list[str], expected: TemporalOptions) -> None:
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", *flags])
    assert option_groups(args)["temporal"] == expected


def test_backend_temporal_defaults_returns_a_copy() -> None:
    from vidstyle.options import StylizeOptions

    got = backend_temporal_defaults(StylizeOptions(backend="arbitrary", style="p.jpg"))
    got["flow"] = "none"
    assert ARBITRARY_TEMPORAL["flow"] == "dis-medium"
