"""Passthrough copies of the real clips in ../shared/data/video keep frames, rate, duration, audio.

(realshort.mp4 is labelled 29.97 fps but its timestamps step by 2998/90000 s: 30.02 fps on average.)
"""

from __future__ import annotations

import pytest
from media import probe

from vidstyle.io import open_sink, open_source

pytestmark = pytest.mark.shared


@pytest.mark.parametrize(
    "name,frames,fps,ext",
    [
        ("realshort.mp4", 36, 45000 / 1499, ".mp4"),
        ("realshort.mp4", 36, 45000 / 1499, ".mkv"),
        ("realshort.mp4", 36, 45000 / 1499, ".mov"),
        ("cockatoo_60f.mp4", 60, 20, ".mp4"),  # 720p: one container is enough
    ],
)
def test_passthrough(shared_video, tmp_path, name, frames, fps, ext):
    src_path = shared_video / name
    if not src_path.exists():
        pytest.skip(f"{src_path} is absent")
    out = tmp_path / f"copy{ext}"
    with open_source(src_path) as src:
        info = src.info
        assert info.frame_count == frames and float(info.fps) == pytest.approx(fps, rel=1e-3)
        with open_sink(out, info=info, audio_from=src_path, preset="ultrafast") as sink:
            n = 0
            for f in src:
                sink.write(f)
                n += 1
    assert n == frames and src.warnings == [] and sink.warnings == []
    a, b = probe(src_path), probe(out)
    assert b["frames"] == frames and b["size"] == a["size"]
    assert float(b["fps"]) == pytest.approx(float(a["fps"]), rel=1e-3) == pytest.approx(fps, rel=1e-3)
    assert b["duration"] == pytest.approx(a["duration"], abs=1e-3)
    assert [x * b["time_base"] for x in b["pts"]] == pytest.approx([x * a["time_base"] for x in a["pts"]], abs=1e-3)
    assert len(b["audio"]) == len(a["audio"])
    for aa, ab in zip(a["audio"], b["audio"]):
        assert ab["codec"] == aa["codec"]
        assert abs(ab["duration"] - b["duration"]) <= 1 / fps
