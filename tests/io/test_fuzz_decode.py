"""A seeded part of the decode-path fuzzing (scripts/fuzz_decode.py runs 500 cases): every mutated
input ends in a correct output or one clean error line, never a traceback, crash, hang or leftover."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_decode", REPO / "scripts" / "fuzz_decode.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["fuzz_decode"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_mutations_are_seeded_and_do_what_they_say():
    import random

    fuzz = _fuzz()
    data = bytes(range(256)) * 40
    for m in fuzz.MUTATIONS:
        a, b = fuzz.mutate(data, m, random.Random(3)), fuzz.mutate(data, m, random.Random(3))
        assert a == b, m  # reproducible from the seed
    assert len(fuzz.mutate(data, "truncate", random.Random(1))) < len(data)
    assert fuzz.mutate(data, "zero_length", random.Random(1)) == b""
    assert fuzz.mutate(data, "wrong_ext", random.Random(1)) == data
    flipped = fuzz.mutate(data, "header", random.Random(1))
    assert flipped[1024:] == data[1024:] and flipped[:1024] != data[:1024]
    assert len(fuzz.mutate(data, "insert", random.Random(1))) > len(data)


def test_twenty_seeded_cases_end_cleanly(tmp_path):
    fuzz = _fuzz()
    results = fuzz.run_cases(n=20, seed=2017, work=tmp_path, timeout=240, nice=0, keep=None)
    failures = [(r.case, r.seed_kind, r.seed_file, r.mutation, r.verdict, r.why, r.stderr[-400:])
                for r in results if r.verdict not in ("output", "error")]
    assert failures == []
    verdicts = {r.verdict for r in results}
    assert verdicts == {"output", "error"}  # the seed gives both kinds of ending: the judge is exercised
    assert len({r.mutation for r in results}) >= 5
    assert not any(p.name.startswith("case") for p in tmp_path.iterdir())  # every case cleaned up


def test_the_judge_tells_clean_endings_from_failures(tmp_path):
    fuzz = _fuzz()
    out = tmp_path / "out"
    out.mkdir()
    case = fuzz.Case(0, "video", "clip.mp4", "flip", [], [], str(out), str(out / "o.mp4"))

    def verdict(status, answer):
        return fuzz.judge(case, status, answer, 1.0).verdict

    error = "vidstyle: error: input 'x.mp4' is not a readable video (...); re-export it\n"
    assert verdict("ok", {"code": 1, "stderr": error, "plays": None}) == "error"
    assert verdict("ok", {"code": 1, "stderr": error * 2, "plays": None}) == "bad"
    assert verdict("ok", {"code": 1, "stderr": "Traceback (most recent call last):\n  ...", "plays": None}) == "traceback"
    assert verdict("ok", {"code": 0, "stderr": "", "plays": "no frames"}) == "bad"
    assert verdict("crash", {"code": -11}) == "crash"
    assert verdict("hang", None) == "hang"
    (out / "o.partial.mkv").write_bytes(b"x")  # left behind without a word
    assert verdict("ok", {"code": 1, "stderr": error, "plays": None}) == "bad"
    said = error + f"vidstyle: partial output kept at {out / 'o.partial.mkv'} (it plays)\n"
    assert verdict("ok", {"code": 1, "stderr": said, "plays": None}) == "error"  # announced, not silent
    (out / "o.partial.mkv").unlink()
    (out / "0001.png").write_bytes(b"x")  # a finished frame of an image-sequence output
    assert verdict("ok", {"code": 1, "stderr": error, "plays": None}) == "bad"
    said = error + f"vidstyle: the frames finished so far are kept at {out / '%04d.png'}\n"
    assert verdict("ok", {"code": 1, "stderr": said, "plays": None}) == "error"


def test_the_table_counts_each_case_once(tmp_path):
    fuzz = _fuzz()
    rows = [fuzz.Outcome(case=i, seed_kind="video", seed_file="a.mp4", mutation="flip", verdict=v, code=1,
                         stderr="libpng error: x\nvidstyle: error: y\n" if i == 0 else "vidstyle: error: y\n")
            for i, v in enumerate(["error", "error", "output"])]
    all_row = fuzz.table(rows).splitlines()[-1].split()
    assert all_row == ["all", "3", "1", "2", "0", "0", "0", "0", "1"]  # cases, output, error, …, noise
