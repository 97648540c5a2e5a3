"""Scene-cut detection: thresholds checked on real motion and real cuts, and on synthetic pairs."""

from __future__ import annotations

import glob

import cv2
import numpy as np
import pytest

from flow_synth import affine_pair, texture
from vidstyle.flow import consistency_mask, cut_statistics, flow_pair, is_scene_cut, make_flow_estimator


def _cut(prev, cur, est):
    fwd, bwd = flow_pair(est, prev, cur)
    mask = consistency_mask(fwd, bwd)
    return is_scene_cut(prev, cur, bwd, mask), cut_statistics(prev, cur, bwd, mask)


def test_synthetic_motion_is_not_a_cut():
    est = make_flow_estimator("dis-fast")
    p = affine_pair()
    assert not _cut(p.a, p.b, est)[0]
    assert not _cut(p.a, p.a, est)[0]


def test_unrelated_textures_are_a_cut():
    est = make_flow_estimator("dis-fast")
    cut, stats = _cut(texture(120, 160, seed=3), texture(120, 160, seed=4), est)
    assert cut and stats.inconsistent_fraction > 0.8


def test_same_layout_new_colours_is_a_cut():
    """Static shots that differ in brightness/colour: the flow passes, the photometric test does not."""
    a = texture(120, 160, seed=3)
    b = (255 - a).copy()
    flow = np.zeros((2, 120, 160), np.float32)
    assert is_scene_cut(a, b, flow, np.ones((120, 160), np.float32))
    assert not is_scene_cut(a, a, flow, np.ones((120, 160), np.float32))
    assert is_scene_cut(a, a, flow, np.zeros((120, 160), np.float32))  # nothing consistent


def _video(path, n):
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= n:
                break
    return frames


def _pngs(folder):
    return [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in sorted(glob.glob(str(folder / "*.png")))]


@pytest.mark.shared
def test_real_motion_vs_real_cuts(shared):
    """Consecutive frames of real clips are not cuts; a switch between two clips is.

    Real motion includes the cockatoo clip (1280×720, camera pan of 20+ px per frame), whose
    inconsistent fraction reaches 0.41; cuts give ≥ 0.93 (see CUT_* in vidstyle.flow.consistency)."""
    video = shared / "data" / "video"
    est = make_flow_estimator("dis-fast")
    clips = {
        "realshort": _video(video / "realshort.mp4", 6)[::2],
        "sintel": _pngs(video / "sintel_raft_demo")[:3],
        "cockatoo": [
            cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in _video(video / "cockatoo_60f.mp4", 3)
        ],
    }
    for name, frames in clips.items():
        for a, b in zip(frames, frames[1:]):
            cut, stats = _cut(a, b, est)
            assert not cut, (name, stats)
    names = list(clips)
    for i, first in enumerate(names):
        second = names[(i + 1) % len(names)]
        a = clips[first][-1]
        b = cv2.resize(clips[second][0], (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
        cut, stats = _cut(a, b, est)
        assert cut, (first, second, stats)
