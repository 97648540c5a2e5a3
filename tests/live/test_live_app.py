"""run_live used from Python (headless, lavfi sources, a few frames), LiveOptions validation, and the
rules of the live library: parameters (not flags) in errors, public imports only."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from live_helpers import decoded_times

import vidstyle
from vidstyle.errors import InvalidOptionError, OutputExistsError
from vidstyle.live import LIVE_DEFAULTS, LiveOptions, LiveStart, live_options, run_live
from vidstyle.options import OptionValueError, StylizeOptions, TemporalOptions

SHORT = "lavfi:testsrc2=size=64x48:rate=30:duration=0.7"  # ends by itself after ~20 frames
SRC = "lavfi:testsrc2=size=64x48:rate=30"
LIVE_DIR = Path(vidstyle.__file__).parent / "live"


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_run_live_from_python_with_flat_options(tmp_path, tiny_model) -> None:
    out = tmp_path / "take.mkv"
    starts: list[LiveStart] = []
    statuses: list = []
    stats = run_live(camera=SHORT, models=[str(tiny_model)], preview=False, record=out, threads=1,
                     on_start=starts.append, on_status=statuses.append)
    assert stats.end_reason == "ended" and stats.shown >= 2
    assert stats.recording == out and len(decoded_times(out)) == stats.shown
    (start,) = starts
    assert start.camera == SHORT and start.size == (64, 48) and start.model == "rand_tiny"
    assert start.headless == "preview off" and start.record == str(out)
    assert statuses and all(s.stabilize == pytest.approx(0.85) for s in statuses)  # the default, with flow


@pytest.mark.parametrize("pipelined", [True, False])
def test_run_live_pipelined_runs_the_stabiliser_in_its_own_stage(tmp_path, tiny_model, pipelined: bool) -> None:
    """``pipelined`` (``vidstyle live --pipelined``) adds the stabiliser's stage where the flow overlaps the network
    (a core left free: ``threads=1`` on 2 or more cores); every frame shown is stabilised and recorded either way."""
    from vidstyle.runtime import default_threads

    out = tmp_path / "take.mkv"
    statuses: list = []
    stats = run_live(camera=SHORT, models=[str(tiny_model)], preview=False, record=out, threads=1,
                     pipelined=pipelined, on_status=statuses.append)
    assert stats.end_reason == "ended" and stats.shown >= 2 and len(decoded_times(out)) == stats.shown
    assert ("stabilise" in stats.busy) == (pipelined and default_threads() >= 2)
    assert statuses and all(s.stabilize == pytest.approx(0.85) for s in statuses)


@pytest.mark.parametrize("flow", ["off", "none"])
def test_run_live_with_flow_off_does_not_stabilise(tiny_model, flow: str) -> None:
    statuses: list = []
    stats = run_live(stylize=StylizeOptions(device="cpu", threads=1), temporal=TemporalOptions(flow=flow),
                     live=LiveOptions(camera=SHORT, models=(str(tiny_model),), preview=False),
                     on_status=statuses.append)
    assert stats.end_reason == "ended" and stats.shown >= 2
    assert statuses and all(s.stabilize == 0.0 for s in statuses)


def test_stop_event_ends_the_run_gracefully(tiny_model) -> None:
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        stats = run_live(camera=SRC, models=[str(tiny_model)], preview=False, threads=1, stop=stop)
    finally:
        timer.cancel()
    assert stats.end_reason == "stopped" and stats.shown >= 1


def test_existing_recording_fails_before_the_camera_opens(tmp_path, tiny_model) -> None:
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"x")
    started: list = []
    with pytest.raises(OutputExistsError):
        run_live(camera=SRC, models=[str(tiny_model)], preview=False, record=out, on_start=started.append)
    assert not started and out.read_bytes() == b"x"


def test_vidstyle_run_live_is_the_library_entry_point() -> None:
    assert vidstyle.run_live is run_live and "run_live" in vidstyle.__all__


# ------------------------------------------------------------------------------ options
def test_live_defaults_apply_to_flat_options_only() -> None:
    st, tm, lv = live_options(camera="1", stabilize=0.5)
    assert st.precision == LIVE_DEFAULTS["precision"] == "auto"
    assert tm.flow == LIVE_DEFAULTS["flow"] == "dis-ultrafast" and tm.stabilize.keys[0][1] == 0.5
    assert lv.camera == "1" and lv.preview is True and lv.flow_scale == 1.0
    st, tm, _ = live_options(stylize=StylizeOptions(), temporal=TemporalOptions())
    assert st.precision == "float32" and tm.flow == "dis-fast"  # objects are used as they are


def test_unknown_or_doubled_keywords() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'camra'; did you mean 'camera'"):
        live_options(camra="0")
    with pytest.raises(InvalidOptionError, match="camera given both directly and in LiveOptions"):
        live_options(live=LiveOptions(), camera="0")


def test_live_options_values_are_coerced() -> None:
    lv = LiveOptions(camera=2, frame_size="640x360", camera_options=["input_format=mjpeg", "framerate = 30"],
                     models="a", duration="2.5", flow_scale="0.5", preview="no")
    assert lv.camera == "2" and lv.frame_size == (640, 360)
    assert lv.camera_options == (("input_format", "mjpeg"), ("framerate", "30"))
    assert lv.models == ("a",) and lv.duration == 2.5 and lv.flow_scale == 0.5 and lv.preview is False
    assert LiveOptions(frame_size="auto").frame_size is None
    assert LiveOptions(camera_options={"k": "v"}).camera_options == (("k", "v"),)


@pytest.mark.parametrize("field,value,start", [
    ("camera", "  ", "camera must not be empty"),
    ("camera", 1.5, "camera must be a camera index"),
    ("frame_size", "big", "frame_size must be WIDTHxHEIGHT"),
    ("frame_size", "10x10", "frame_size 10x10 is out of range"),
    ("camera_options", ["mjpeg"], "camera_options must be KEY=VALUE"),
    ("models", [], "models needs at least one model"),
    ("models", [3], "models must be model names"),
    ("record", "notes.txt", "record needs a video file name"),
    ("virtual_camera", "", "virtual_camera must not be empty"),
    ("preview", "maybe", "preview must be true or false"),
    ("duration", 0, "duration must be a number > 0"),
    ("duration", float("nan"), "duration must be a number > 0"),
    ("flow_scale", 0, "flow_scale must be in (0, 1]"),
    ("flow_scale", 1.5, "flow_scale must be in (0, 1]"),
    ("flow_scale", float("nan"), "flow_scale must be in (0, 1]"),
])
def test_bad_live_options_name_the_parameter(field: str, value, start: str) -> None:
    with pytest.raises(OptionValueError) as info:
        LiveOptions(**{field: value})
    assert info.value.parameter == field
    assert str(info.value).startswith(start), str(info.value)
    assert "--" not in str(info.value)


@pytest.mark.parametrize("options,parameter", [
    ({"stabilize": "0:0.2, 10:0.8"}, "stabilize"),  # keyframes: over frame numbers of a file
    ({"flow": "off", "stabilize": 0.5}, "stabilize"),  # a strength needs flow
    ({"backend": "optim", "style": "x.jpg"}, "backend"),
    ({"batch_size": 2}, "batch_size"),
    ({"models": ["nope_not_a_model"]}, None),  # a ModelError
])
def test_bad_combinations_fail_before_the_camera_opens(tiny_model, options: dict, parameter) -> None:
    started: list = []
    options = {"models": [str(tiny_model)], **options}
    with pytest.raises(vidstyle.errors.VidstyleError) as info:
        run_live(camera=SRC, preview=False, on_start=started.append, **options)
    assert getattr(info.value, "parameter", None) == parameter
    assert not started and "--" not in str(info.value)


def test_cli_error_line_names_the_flags() -> None:
    from vidstyle.cli.live import error_line

    assert error_line(OptionValueError("models", "models needs x")) == "--model needs x"
    assert error_line(OptionValueError("frame_size", "frame_size 1x1 bad")) == "--size 1x1 bad"
    assert error_line(OptionValueError("camera_options", "give `camera_options` k=v")) == "give --camera-option k=v"
    assert error_line(OptionValueError("stabilize", "stabilize x; `flow` y", also=("flow",))) == "--stabilize x; --flow y"


# ------------------------------------------------------------------------------ library rules
def _live_sources() -> list[Path]:
    return sorted(LIVE_DIR.glob("*.py"))


def test_live_imports_only_public_api() -> None:
    bad = []
    for path in _live_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidstyle."):
                if node.module.startswith("vidstyle.live"):
                    continue
                private = [p for p in node.module.split(".") if p.startswith("_")]
                private += [a.name for a in node.names if a.name.startswith("_")]
                if private or node.module.startswith(("vidstyle.cli", "vidstyle.io.", "vidstyle.flow.stage")):
                    bad.append(f"{path.name}: from {node.module} import {[a.name for a in node.names]}")
    assert not bad, bad


def test_no_printing_exit_or_flags_in_the_library() -> None:
    for path in _live_sources():
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", path.name
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
                assert node.attr not in ("exit", "stderr", "stdout"), f"{path.name}: sys.{node.attr}"
        for node in ast.walk(tree):  # error messages: parameters, not flags
            if isinstance(node, ast.Raise) and node.exc is not None:
                for const in ast.walk(node.exc):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        assert " --" not in f" {const.value}", f"{path.name}: {const.value}"
