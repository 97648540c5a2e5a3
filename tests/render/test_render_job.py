"""Render jobs: TOML parsing, validation errors naming the key, CLI overrides, paths, chunk plans."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vidstyle.errors import InputNotFoundError, InvalidInputError, InvalidOptionError
from vidstyle.render.job import load_job, parse_fps, parse_frames, parse_timecode
from vidstyle.render.plan import crossfade_weights, plan_chunks


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "shot.toml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """
input = "plates/sh.%04d.exr"
output = "out/sh.%04d.exr"
frames = "1001-1240"
backend = "feedforward"
model = "models/x.safetensors"
seed = 1234
bit_depth = 32
batch-size = 1
stabilize = 0.5
"""


def test_a_good_job_is_parsed_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    job = load_job(_write(tmp_path, GOOD))
    assert job.input == str(tmp_path / "plates" / "sh.%04d.exr")
    assert job.output == str(tmp_path / "out" / "sh.%04d.exr")
    assert job.model == str(tmp_path / "models" / "x.safetensors")
    assert job.frames == (1001, 1240)
    assert (job.seed, job.bit_depth, job.batch_size, job.stabilize) == (1234, 32, 1, 0.5)
    assert job.backend == "feedforward"
    assert job.given["seed"] == "file" and job.given["overlap"] == "default"
    assert job.output_kind == "images"
    params = job.parameters()
    assert params["frames"] == [1001, 1240] and params["bit_depth"] == 32


def test_cli_options_override_the_file(tmp_path: Path) -> None:
    job = load_job(
        _write(tmp_path, GOOD),
        overrides={"frames": "1001-1010", "bit_depth": "16", "seed": "7", "output": "o/x.%04d.exr", "stabilize": None},
    )
    assert job.frames == (1001, 1010)
    assert job.bit_depth == 16 and job.seed == 7
    assert job.stabilize == 0.5  # None = option not given
    assert job.output == str(Path.cwd() / "o" / "x.%04d.exr")  # CLI paths: relative to the working directory
    assert job.given["seed"] == "cli"
    cmd = job.command()
    assert cmd.startswith(f"vidstyle render {tmp_path / 'shot.toml'} ")
    assert "--frames 1001-1010" in cmd and "--bit-depth 16" in cmd and "--seed 7" in cmd


@pytest.mark.parametrize(
    "line, words",
    [
        ("bitdepth = 16", ["unknown key 'bitdepth'", "did you mean 'bit_depth'"]),
        ("bit_depth = 12", ["key 'bit_depth'", "one of 8, 16, 32"]),
        ('frames = "1240-1001"', ["key 'frames'", "before first frame"]),
        ('frames = "10 to 20"', ["key 'frames'", "1001-1240"]),
        ('seed = "abc"', ["key 'seed'", "integer"]),
        ("seed = -1", ["key 'seed'", ">= 0"]),
        ("stabilize = 2.0", ["key 'stabilize'", "in [0, 1]"]),
        ('stabilize = "1001:0.2, 1010:1.5"', ["key 'stabilize'", "in [0, 1]"]),
        ('backend = "magic"', ["key 'backend'", "one of feedforward, optim"]),
        ('fps = "fast"', ["key 'fps'", "frame rate"]),
        ('timecode = "25:00"', ["key 'timecode'", "HH:MM:SS:FF"]),
        ("overlap = 4\ncrossfade = 8", ["key 'crossfade'", "overlap"]),
        ('codec = "prores"', ["key 'codec'", "video outputs"]),
        ('style = "s.jpg"', ["key 'style'", "optim"]),
        ("[render]\nx = 1", ["key 'render'", "flat"]),
    ],
)
def test_bad_keys_and_values_give_one_line_naming_the_key(tmp_path: Path, line: str, words: list[str]) -> None:
    base = 'input = "p/%04d.png"\noutput = "o/%04d.png"\n'
    path = _write(tmp_path, base + line + "\n")
    with pytest.raises(InvalidOptionError) as info:
        load_job(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_bit_depth_must_fit_the_output_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match=r"key 'bit_depth' = 32 cannot be written as \.png.*\.exr or \.tif"):
        load_job(_write(tmp_path, 'input = "p/%04d.png"\noutput = "o/%04d.png"\nbit_depth = 32\n'))
    with pytest.raises(InvalidOptionError, match="video codecs take 8 or 16"):
        load_job(_write(tmp_path, 'input = "p/%04d.png"\noutput = "o.mov"\nbit_depth = 32\n'))
    job = load_job(_write(tmp_path, 'input = "p/%04d.png"\noutput = "o.mov"\nbit_depth = 16\ncodec = "prores"\n'))
    assert job.output_kind == "video" and job.codec == "prores"


def test_missing_required_keys_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match=r"key 'output' is missing.*--output"):
        load_job(_write(tmp_path, 'input = "p/%04d.png"\n'))
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_job(_write(tmp_path, "input = \n"))
    with pytest.raises(InputNotFoundError, match="does not exist"):
        load_job(tmp_path / "nope.toml")
    # CLI values are checked the same way
    with pytest.raises(InvalidOptionError, match="^threads must be an integer") as info:
        load_job(_write(tmp_path, 'input = "p/%04d.png"\noutput = "o/%04d.png"\n'), overrides={"threads": "two"})
    assert info.value.parameter == "threads"  # the CLI shows it as --threads


@pytest.mark.parametrize(
    "value, expected",
    [("1001-1240", (1001, 1240)), ("  7 - 9 ", (7, 9)), ("1001", (1001, 1001)), (12, (12, 12)), ([3, 5], (3, 5)), ("", None)],
)
def test_parse_frames(value: object, expected: tuple[int, int] | None) -> None:
    assert parse_frames(value) == expected


def test_parse_fps_and_timecode() -> None:
    assert parse_fps(24) == 24
    assert parse_fps("24000/1001") == Fraction(24000, 1001)
    assert parse_fps(23.976) == Fraction(24000, 1001)
    assert parse_fps(29.97) == Fraction(30000, 1001)
    assert parse_timecode("01:00:00:00") == "01:00:00:00"
    assert parse_timecode("00:59:59;29") == "00:59:59;29"
    with pytest.raises(InvalidOptionError):
        parse_fps(0)
    with pytest.raises(InvalidOptionError):
        parse_timecode("1:00:61:00")


def test_chunk_plan_warmup_and_crossfade() -> None:
    numbers = list(range(1001, 1025))  # 24 frames
    chunks = plan_chunks(numbers, chunk_frames=8, overlap=6, crossfade=3)
    assert [(c.first, c.last) for c in chunks] == [(1001, 1008), (1009, 1016), (1017, 1024)]
    assert [c.warmup_from for c in chunks] == [1001, 1003, 1011]
    assert [c.crossfade_from for c in chunks] == [None, 1006, 1014]
    assert [c.warmup for c in chunks] == [0, 6, 6]
    # even split over workers, warm-up clipped at the shot's start, cross-fade clipped to the previous chunk
    chunks = plan_chunks(numbers, chunks=3, overlap=30, crossfade=10)
    assert [c.frames for c in chunks] == [8, 8, 8]
    assert chunks[1].warmup_from == 1001 and chunks[1].crossfade_from == 1001
    assert chunks[2].crossfade_from == 1009
    # gaps in the numbering count frames that exist
    gappy = [1, 2, 3, 10, 11, 12]
    chunks = plan_chunks(gappy, chunk_frames=3, overlap=2, crossfade=1)
    assert (chunks[1].first, chunks[1].warmup_from, chunks[1].crossfade_from) == (10, 2, 3)
    assert crossfade_weights(3) == [0.25, 0.5, 0.75]
