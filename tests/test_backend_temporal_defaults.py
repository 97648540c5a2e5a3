"""The back ends' own temporal defaults in the file pipeline: resample with dis-medium flow for the arbitrary
back end, VGG and fast variants (at 0.9; BENCHMARKS.md, "Arbitrary style") and for feed-forward networks of at least
HEAVY_PARAMETERS weights ("Temporal stabilisation"); for lighter ones blend at the shipped model's own strength
(the default model's too) or at LIGHT_TEMPORAL's for any other file; filled in where the options are not given, by
the library and the CLI alike, and nowhere else (a model object, options given as an object)."""

from __future__ import annotations

import pytest

from vidstyle.api import options_from
from vidstyle.cli.main import build_parser
from vidstyle.cli.stylize import option_groups
from vidstyle.options import ARBITRARY_TEMPORAL, TemporalOptions, backend_temporal_defaults
from vidstyle.options.curve import Curve

RESAMPLE = TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9))
#: the arbitrary back end's: the same with the longer crossfade of its refreshes
ARBITRARY = TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9), resample_fade=0.85)
#: the default model (starry_student, a student-style network) at its own measured strength of the resample stabiliser
DEFAULT_MODEL_TEMPORAL = TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.75))


def test_the_defaults_are_the_measured_ones() -> None:
    assert ARBITRARY_TEMPORAL == {"flow": "dis-medium", "stabilizer": "resample", "stabilize": 0.9, "resample_fade": 0.85}


@pytest.mark.parametrize(("options", "expected"), [
    ({"backend": "arbitrary", "style": "p.jpg"}, ARBITRARY),
    ({"backend": "arbitrary", "style": "p.jpg", "flow": "dis-fast"},
     TemporalOptions(flow="dis-fast", stabilizer="resample", stabilize=Curve.constant(0.9), resample_fade=0.85)),
    ({"backend": "arbitrary", "style": "p.jpg", "stabilizer": "blend", "stabilize": 0.5},
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.5), resample_fade=0.85)),
    ({"backend": "arbitrary", "style": "p.jpg", "resample_fade": 0.4},
     TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9), resample_fade=0.4)),
    ({"backend": "arbitrary", "style": "p.jpg", "fast": True}, ARBITRARY),
    ({"backend": "arbitrary", "style": "p.jpg", "fast": True, "stabilizer": "blend"},
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.9), resample_fade=0.85)),
    ({}, DEFAULT_MODEL_TEMPORAL),
    ({"model": "wave_student"}, RESAMPLE),
    ({"model": "scream_student", "stabilizer": "blend"},  # a stabiliser given: the model's strength stays
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.9))),
    ({"stabilize": 0.5}, TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.5))),
    ({"stabilizer": "blend"}, TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.75))),
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
    (["--style", "p.jpg"], ARBITRARY),  # a painting alone means the arbitrary back end
    (["--backend", "arbitrary", "--style", "p.jpg", "--stabilizer", "blend"],
     TemporalOptions(flow="dis-medium", stabilizer="blend", stabilize=Curve.constant(0.9), resample_fade=0.85)),
    (["--style", "p.jpg", "--stabilize", "0"], TemporalOptions(flow="dis-medium", stabilizer="resample",
                                                               stabilize=Curve.constant(0.0), resample_fade=0.85)),
    (["--style", "p.jpg", "--fast"], ARBITRARY),
    (["--style", "p.jpg", "--resample-fade", "1"], TemporalOptions(flow="dis-medium", stabilizer="resample",
                                                               stabilize=Curve.constant(0.9), resample_fade=1.0)),
    (["--model", "wave_student", "--resample-fade", "0.85"],
     TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9), resample_fade=0.85)),
    ([], DEFAULT_MODEL_TEMPORAL),
    (["--model", "wave_student", "--flow", "dis-fast"],
     TemporalOptions(flow="dis-fast", stabilizer="resample", stabilize=Curve.constant(0.9))),
    (["--stabilize", "0.9"], TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9))),
    (["--model", "scream_student", "--stabilize", "0.5"],
     TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.5))),
])
def test_the_cli_fills_the_flags_not_given(flags: list[str], expected: TemporalOptions) -> None:
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", *flags])
    assert option_groups(args)["temporal"] == expected


def test_backend_temporal_defaults_returns_a_copy() -> None:
    from vidstyle.options import StylizeOptions

    got = backend_temporal_defaults(StylizeOptions(backend="arbitrary", style="p.jpg"))
    got["flow"] = "none"
    assert ARBITRARY_TEMPORAL["flow"] == "dis-medium"


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    heavy, light = root / "heavy.safetensors", root / "light.safetensors"
    save_file({"a.weight": torch.zeros(1000, 1000), "a.bias": torch.zeros(1000)}, str(heavy))
    save_file({"a.weight": torch.zeros(100, 100)}, str(light))
    pickle = root / "old.pth"
    pickle.write_bytes(b"\x80\x04K\x01.")
    return {"heavy": str(heavy), "light": str(light), "pickle": str(pickle), "missing": str(root / "none.safetensors")}


def test_parameter_count_reads_the_header_only(weight_files: dict[str, str]) -> None:
    from vidstyle.nets.registry import parameter_count

    assert parameter_count(weight_files["heavy"]) == 1000 * 1000 + 1000
    assert parameter_count(weight_files["light"]) == 100 * 100
    assert parameter_count(weight_files["pickle"]) is None  # never unpickled: the loader refuses it later
    assert parameter_count(weight_files["missing"]) is None
    assert parameter_count("no_such_model_name") is None  # not downloaded either


@pytest.mark.parametrize(("which", "expected"), [
    ("heavy", TemporalOptions(flow="dis-medium", stabilizer="resample")),  # strength: the feed-forward 0.85
    ("light", TemporalOptions(stabilize=Curve.constant(0.75))),
    ("missing", TemporalOptions()),  # the model loader reports the missing file
    ("pickle", TemporalOptions()),  # neither counted nor hashed as a shipped model: the loader refuses it
])
def test_a_heavy_feed_forward_model_gets_resample(weight_files: dict[str, str], which: str,
                                                  expected: TemporalOptions) -> None:
    from vidstyle.options import HEAVY_PARAMETERS

    assert 10_000 < HEAVY_PARAMETERS <= 1_001_000  # the test files sit on either side of it
    _, tm, _, _ = options_from({"model": weight_files[which]})
    assert tm == expected
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", "--model", weight_files[which]])
    assert option_groups(args)["temporal"] == expected


def test_a_heavy_model_keeps_the_flags_given(weight_files: dict[str, str]) -> None:
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", "--model", weight_files["heavy"],
                                      "--stabilizer", "blend"])
    assert option_groups(args)["temporal"] == TemporalOptions(flow="dis-medium", stabilizer="blend")


def test_light_models_not_shipped_get_the_light_default() -> None:
    from vidstyle.options import LIGHT_TEMPORAL

    assert LIGHT_TEMPORAL == {"stabilize": 0.75}


def test_a_shipped_model_is_known_by_its_bytes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of a shipped file elsewhere is that model (same SHA-256); a file that differs by one byte under the
    shipped name is not (it gets the light default); a shipped name not installed is its entry (the loader
    downloads it and checks that hash)."""
    import shutil

    from vidstyle.nets import registry

    entry = registry.ShippedWeights.WAVE_STUDENT
    shipped = registry._find_named(entry.model_name)
    assert shipped is not None
    copy = tmp_path / "my_copy.safetensors"
    shutil.copyfile(shipped, copy)
    assert registry.shipped_entry(copy) is entry
    assert registry.shipped_entry(str(copy)) is entry
    _, tm, _, _ = options_from({"model": str(copy)})
    assert tm == TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(entry.stabilize))

    data = bytearray(copy.read_bytes())
    data[-1] ^= 1  # one weight's last byte: still a readable safetensors file
    other = tmp_path / "retrained" / "wave_student.safetensors"
    other.parent.mkdir()
    other.write_bytes(bytes(data))
    assert registry.parameter_count(other) == registry.parameter_count(copy)
    assert registry.shipped_entry(other) is None
    monkeypatch.setenv("VIDSTYLE_MODELS", str(other.parent))  # found first under the shipped name
    assert registry.shipped_entry("wave_student") is None
    _, tm, _, _ = options_from({"model": "wave_student"})
    assert tm == RESAMPLE  # a student-style file not shipped: the student default (the same 0.9 for this one)

    monkeypatch.setattr(registry, "models_dirs", lambda: [])  # installed nowhere
    assert registry.shipped_entry("wave_student") is entry
    assert registry.shipped_entry("not_a_model") is None


def test_shipped_strengths_are_the_measured_ones() -> None:
    from vidstyle.nets.registry import ShippedWeights

    strengths = {e.model_name: e.stabilize for e in ShippedWeights}
    assert all(k.endswith("_student") for k in strengths)  # no TransformerNet is shipped since the tiny and small retired
    students = {k: v for k, v in strengths.items() if k.endswith("_student")}
    assert students.pop("starry_student") == 0.75  # the default model: the strength that keeps WE <= 0.3x (BENCHMARKS.md)
    assert len(students) >= 5 and set(students.values()) == {0.9}  # the resample stabiliser's measured default


def test_a_shipped_student_style_model_gets_resample_at_its_strength() -> None:
    from vidstyle.nets.registry import ShippedWeights

    entry = next(e for e in ShippedWeights if e.meta["architecture"] == "student-style")
    _, tm, _, _ = options_from({"model": entry.model_name})
    assert tm == TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(entry.stabilize))


def test_a_student_style_model_gets_the_fast_variants_defaults(tmp_path) -> None:
    """A network fine-tuned from the student (``--size student``) is known by its header's architecture (a light
    file by its weights, it would otherwise get the blend default that smeared the fast variant's strokes)."""
    import torch
    from safetensors.torch import save_file

    from vidstyle.nets.registry import architecture_of
    from vidstyle.options import ARBITRARY_TEMPORAL, STUDENT_TEMPORAL

    path = tmp_path / "painted.safetensors"
    save_file({"a.weight": torch.zeros(10, 10)}, str(path), metadata={"vidstyle.architecture": "student-style"})
    other = tmp_path / "other.safetensors"
    save_file({"a.weight": torch.zeros(10, 10)}, str(other), metadata={"vidstyle.architecture": "transformer"})
    assert architecture_of(path) == "student-style" and architecture_of(other) == "transformer"
    assert architecture_of(tmp_path / "none.safetensors") is None
    assert STUDENT_TEMPORAL == {"flow": "dis-medium", "stabilizer": "resample", "stabilize": 0.9}
    assert ARBITRARY_TEMPORAL == {**STUDENT_TEMPORAL, "resample_fade": 0.85}  # the students keep the stabiliser's own
    _, tm, _, _ = options_from({"model": str(path)})
    assert tm == TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9))
    _, tm, _, _ = options_from({"model": str(path), "stabilizer": "blend"})
    assert tm.stabilizer == "blend" and tm.flow == "dis-medium"
    _, tm, _, _ = options_from({"model": str(other)})
    assert tm == TemporalOptions(stabilize=Curve.constant(0.75))
    multi = tmp_path / "multi.safetensors"  # the multi-style student: the same network and look
    save_file({"a.weight": torch.zeros(10, 10)}, str(multi), metadata={"vidstyle.architecture": "student-multistyle"})
    _, tm, _, _ = options_from({"model": str(multi)})
    assert tm == TemporalOptions(flow="dis-medium", stabilizer="resample", stabilize=Curve.constant(0.9))


@pytest.mark.parametrize("mix,expected", [
    (None, Curve.constant(0.75)),  # no mix: the model's first style, Starry Night, at its own strength
    ("wave", Curve.constant(0.9)),
    ("starry:0.5,wave:0.5", Curve.constant(0.825)),
    ("starry:1,wave:3", Curve.constant(0.8625)),
    ("starry=0:1, 48:0; wave=0:0, 48:1", Curve(keys=((0.0, 0.75), (48.0, 0.9)))),  # a cross-dissolve: frame by frame
])
def test_a_shipped_multi_style_student_takes_each_styles_own_strength(mix, expected) -> None:
    """paintings_student has Starry Night at 0.75 (its fine strokes smear at 0.9) and its other styles at 0.9: the
    default strength is the normalised-weight average of the mixed styles' strengths, at each key frame of the mix."""
    from vidstyle.nets.registry import ShippedWeights

    assert ShippedWeights.PAINTINGS_STUDENT.style_stabilize == {"starry": 0.75}
    _, tm, _, _ = options_from({"model": "paintings_student", **({"style_mix": mix} if mix else {})})
    assert tm.stabilizer == "resample" and tm.flow == "dis-medium"
    got = [v for key in tm.stabilize.keys for v in key]
    assert got == pytest.approx([v for key in expected.keys for v in key])
    _, tm, _, _ = options_from({"model": "paintings_student", "stabilize": 0.6, **({"style_mix": mix} if mix else {})})
    assert tm.stabilize == Curve.constant(0.6)  # given: kept


def test_the_cli_gives_a_multi_style_students_style_its_strength() -> None:
    for argv, strength in [(["--style-mix", "wave"], 0.9), (["--style-mix", "starry"], 0.75), ([], 0.75)]:
        args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", "--model", "paintings_student", *argv])
        assert option_groups(args)["temporal"].stabilize == Curve.constant(strength), argv
