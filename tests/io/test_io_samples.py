"""The shipped sample clip: what samples/README.md says about it, and audio sync through a trim."""

from __future__ import annotations

from pathlib import Path

import pytest
from media import audio_onsets, probe

from vidstyle.io import open_sink, open_source

CLIP = Path(__file__).resolve().parents[2] / "samples" / "clip.mp4"
pytestmark = pytest.mark.skipif(not CLIP.exists(), reason="samples/clip.mp4 not generated")


def test_sample_clip_properties():
    with open_source(CLIP) as src:
        info = src.info
    assert (info.width, info.height, info.fps, info.frame_count, info.audio_streams) == (640, 360, 30, 135, 1)
    assert info.duration == pytest.approx(4.5)
    p = probe(CLIP)
    assert p["audio"][0]["codec"] == "aac" and p["audio"][0]["duration"] == pytest.approx(4.5, abs=1 / 30)
    assert audio_onsets(CLIP, threshold=0.02) == pytest.approx([0.0, 1.5, 3.0], abs=0.011)


def test_trimmed_copy_stays_in_sync(tmp_path):
    out = tmp_path / "trim.mp4"
    with open_source(CLIP, start="1.2", end="4.2") as src:
        with open_sink(out, info=src.info, audio_from=CLIP, preset="ultrafast", crf=30) as sink:
            for f in src:
                sink.write(f)
    p = probe(out)
    assert p["frames"] == 90 and p["duration"] == pytest.approx(3.0)
    assert abs(p["audio"][0]["duration"] - 3.0) <= 1 / 30
    # the chords start at the cuts (1.5 s and 3.0 s of the input): 0.3 s and 1.8 s after a 1.2 s trim
    assert audio_onsets(out, threshold=0.02)[-2:] == pytest.approx([0.3, 1.8], abs=1 / 30)
