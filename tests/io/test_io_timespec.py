"""start / end parsing."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidstyle.cli.common import error_line
from vidstyle.errors import InvalidOptionError
from vidstyle.io import TimeSpec, parse_time


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, None),
        (2.5, TimeSpec(seconds=2.5)),
        ("2.5", TimeSpec(seconds=2.5)),
        ("2.5s", TimeSpec(seconds=2.5)),
        ("00:00:02.5", TimeSpec(seconds=2.5)),
        ("1:02.5", TimeSpec(seconds=62.5)),
        ("01:01:01", TimeSpec(seconds=3661.0)),
        (48, TimeSpec(frame=48)),
        ("48f", TimeSpec(frame=48)),
        (" 7F ", TimeSpec(frame=7)),
        (0, TimeSpec(frame=0)),
        ("0", TimeSpec(seconds=0.0)),
    ],
)
def test_parse(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    "value", ["", "abc", "-1", -1, -0.5, "1:60", "1:60:00", "nan", float("inf"), True, "4.5f", [1]]
)
def test_bad(value):
    with pytest.raises(InvalidOptionError, match="^end must be seconds") as info:
        parse_time(value, name="end")
    assert info.value.parameter == "end"
    assert error_line(info.value).startswith("--end must be seconds")  # the command line names the flag


def test_to_seconds():
    assert TimeSpec(frame=48).to_seconds(Fraction(24)) == 2.0
    assert TimeSpec(frame=3).to_seconds(None) is None
    assert TimeSpec(seconds=1.5).to_seconds(None) == 1.5
    assert str(TimeSpec(frame=3)) == "frame 3" and str(TimeSpec(seconds=1.5)) == "1.5 s"
