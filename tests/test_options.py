"""Typed options: curves against their formula, one check per field, errors that name parameters,
and every command-line flag and job key mapped to exactly one options field."""

from __future__ import annotations

import argparse

import pytest

from vidstyle.errors import InvalidOptionError
from vidstyle.options import (
    GROUPS,
    Curve,
    OptimOptions,
    OptionValueError,
    StylizeOptions,
    TemporalOptions,
    flag_of,
    route,
    specs,
)

# ------------------------------------------------------------------------------ curves


def test_curve_is_piecewise_linear_and_holds_its_ends() -> None:
    c = Curve.parse("0:0.3, 48:0.85, 96:0.5")
    for frame in (0, 12, 24, 47.5, 48, 60, 96):
        f0, v0, f1, v1 = (0, 0.3, 48, 0.85) if frame <= 48 else (48, 0.85, 96, 0.5)
        assert c.at(frame) == pytest.approx(v0 + (frame - f0) / (f1 - f0) * (v1 - v0))
    assert c.at(-5) == 0.3 and c.at(1000) == 0.5
    assert (c.minimum, c.maximum, c.is_constant) == (0.3, 0.85, False)
    assert str(c) == "0:0.3, 48:0.85, 96:0.5" and Curve.parse(str(c)) == c


@pytest.mark.parametrize("value", [0.7, "0.7", "3:0.7", [[3, 0.7]], {"3": 0.7}, Curve.constant(0.7)])
def test_curve_forms(value: object) -> None:
    c = Curve.parse(value)
    assert c.at(0) == c.at(99) == 0.7 and c.is_constant


def test_curve_forms_with_keys_agree() -> None:
    a = Curve.parse("10:0, 20:1")
    assert a == Curve.parse([[20, 1], [10, 0]]) == Curve.parse({"10": 0, "20": 1})
    assert a.at(15) == 0.5
    assert Curve.constant(0.5) == 0.5 and a != 0.5


@pytest.mark.parametrize("value, words", [
    ("0:0.3, 0:0.5", "keyed twice"),
    ("-1:0.3", ">= 0"),
    ("a:b", "FRAME:VALUE"),
    ("fast", "FRAME:VALUE"),
    ("0:nan", "FRAME:VALUE"),
    (True, "FRAME:VALUE"),
])
def test_curve_errors(value: object, words: str) -> None:
    with pytest.raises(InvalidOptionError, match=words):
        Curve.parse(value, name="stabilize")


# ------------------------------------------------------------------------------ groups


def test_each_value_is_checked_once_with_the_parameter_named() -> None:
    with pytest.raises(OptionValueError) as info:
        TemporalOptions(stabilize=2)
    assert info.value.parameter == "stabilize" and str(info.value) == "stabilize must be a number in [0, 1], got 2"
    with pytest.raises(OptionValueError, match=r"^stabilize must be a number in \[0, 1\], got 1.5"):
        TemporalOptions(stabilize="0:0.2, 10:1.5")
    with pytest.raises(OptionValueError, match="^batch_size must be an integer >= 1, got 0"):
        StylizeOptions(batch_size=0)
    with pytest.raises(OptionValueError, match="^precision must be one of float32, bfloat16, float16, auto"):
        StylizeOptions(precision="fp8")
    with pytest.raises(OptionValueError, match="^iterations must be an integer >= 1"):
        OptimOptions(iterations=0)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name, flow", [("dis", "dis-fast"), ("DIS-Fast", "dis-fast"), ("raft", "raft-small"),
                                        ("off", "none"), ("none", "none"), ("", "none"), ("farneback", "farneback")])
def test_no_flow_and_aliases_are_parsed_in_one_place(name: str, flow: str) -> None:
    assert TemporalOptions(flow=name).flow == flow


def test_unknown_flow_lists_the_valid_names() -> None:
    with pytest.raises(OptionValueError, match="dis-fast.*farneback.*got 'fancy'"):
        TemporalOptions(flow="fancy")


def test_stabilisation_without_flow_is_refused_and_zero_is_allowed() -> None:
    with pytest.raises(OptionValueError, match="needs optical flow"):
        TemporalOptions(flow="off").uses_flow("feedforward")
    assert TemporalOptions(flow="off", stabilize=0).uses_flow("feedforward") is False
    assert TemporalOptions(stabilize="0:0, 10:0.5").uses_flow("feedforward") is True


def test_one_default_per_back_end() -> None:
    t = TemporalOptions()
    assert t.strength("feedforward") == 0.85 and t.strength("optim") == 1.0
    assert TemporalOptions(stabilize=0.3).strength("optim") == 0.3


def test_route_sends_each_flat_name_to_its_group_and_refuses_unknown_names() -> None:
    st, tm, enc, op = route({"model": "wave_student", "stabilize": "0:0, 5:1", "crf": 20, "iterations": 7})
    assert (st.model, tm.stabilize.at(5), enc.crf, op.iterations) == ("wave_student", 1.0, 20, 7)
    with pytest.raises(InvalidOptionError, match="unknown key 'stabelize'; did you mean 'stabilize'"):
        route({"stabelize": 0.5})


def _all_groups() -> list[type]:
    from vidstyle.render.job import ShotOptions

    groups: list[type] = [*GROUPS, ShotOptions]
    try:
        from vidstyle.live.options import LiveOptions
    except ImportError:  # pragma: no cover - before live mode had its options group
        pass
    else:
        groups.append(LiveOptions)
    from vidstyle.keyframes.options import KeyframeOptions

    groups.append(KeyframeOptions)
    return groups


def test_field_names_are_unique_across_all_groups() -> None:
    seen: dict[str, str] = {}
    for cls in _all_groups():
        for name in specs(cls):
            assert name not in seen, f"{name} is a field of both {seen[name]} and {cls.__name__}"
            seen[name] = cls.__name__


# CLI options that are not option values: what to do with the result, not how to stylize
_COMMAND_FLAGS = {"help", "quiet", "overwrite", "resume", "patch", "output", "start", "end", "version", "input", "job"}


def _subparser(name: str) -> argparse.ArgumentParser:
    from vidstyle.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("command", ["stylize", "render", "live"])
def test_every_flag_maps_to_exactly_one_options_field(command: str) -> None:
    fields: dict[str, list[str]] = {}
    for cls in _all_groups():
        for name, (spec, _) in specs(cls).items():
            fields.setdefault(name, []).append(cls.__name__)
    parser = _subparser(command)
    dests = [a.dest for a in parser._actions if a.option_strings]
    unmapped = [d for d in dests if d not in fields and d not in _COMMAND_FLAGS]
    if command == "live" and unmapped and not any(c.__name__ == "LiveOptions" for c in _all_groups()):
        pytest.skip("live mode's options are not a group yet")
    assert not unmapped, f"flags of `vidstyle {command}` with no options field: {unmapped}"
    from vidstyle.cli.render import _RENAMED

    for d in dests:
        if d in fields:
            assert len(fields[d]) == 1
            flags = [a.option_strings for a in parser._actions if a.dest == d]
            if command == "render" and d in _RENAMED:  # `vidstyle keyframes`' --model/--blend: taken in a render
                assert any("--" + d.replace("_", "-") in f for f in flags)
                continue
            assert any(flag_of(d, specs(next(c for c in _all_groups() if c.__name__ == fields[d][0]))[d][0]) in f
                       for f in flags)


def test_every_job_key_is_one_field_and_a_render_flag() -> None:
    from vidstyle.render.job import JOB_GROUPS, KEYS

    assert sorted(KEYS) == sorted(name for cls in JOB_GROUPS for name in specs(cls))
    render_dests = {a.dest for a in _subparser("render")._actions if a.option_strings}
    assert set(KEYS) <= render_dests


def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, capsys) -> None:
    import vidstyle
    from vidstyle.cli.main import main

    with pytest.raises(ValueError, match="^stabilize must be") as info:
        vidstyle.stylize_video("samples/clip.mp4", tmp_path / "o.mp4", stabilize=2)
    assert "--" not in str(info.value)
    with pytest.raises(TypeError, match="stabelize"):
        vidstyle.stylize_video("samples/clip.mp4", tmp_path / "o.mp4", stabelize=0.5)
    assert main(["stylize", "samples/clip.mp4", "-o", str(tmp_path / "o.mp4"), "--stabilize", "2"]) == 1
    assert capsys.readouterr().err.strip() == "vidstyle: error: --stabilize must be a number in [0, 1], got '2'"
    assert main(["stylize", "samples/clip.mp4", "-o", str(tmp_path / "o.mp4"), "--flow", "off"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidstyle: error: --stabilize needs optical flow") and "--flow dis-fast" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("name", ["dis", "DIS-FAST", " dis-fast "])
def test_flow_alias_gets_the_cheap_forward_estimator(name: str) -> None:
    """api looked FORWARD_FLOW up with the name as typed, so `--flow dis` missed dis-ultrafast."""
    import torch

    from vidstyle.api import build_stages

    before = torch.get_num_threads()
    stages = build_stages(device="cpu", flow=name, threads=1)
    try:
        flow = stages[0]
        assert flow.name == "flow" and "dis-fast" in repr(flow.estimator)
        assert "dis-ultrafast" in repr(flow.forward_estimator)
    finally:
        for s in stages:
            s.close()
        torch.set_num_threads(before)
