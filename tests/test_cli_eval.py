"""``vidstyle eval``: table, plot, and one-line errors on tiny clips made with PyAV."""

from __future__ import annotations

import sys

import av
import cv2
import numpy as np
import pytest

from vidstyle.cli.main import main


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((2.0, 0.4), (5.0, 0.5), (12.0, 0.6)):
        n = cv2.GaussianBlur(rng.standard_normal((h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += amp * n / n.std()
    return np.clip(img / (4 * img.std()) + 0.5, 0, 1)


def _write(path, frames):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        s.options = {"qp": "0"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray((f * 255 + 0.5).astype(np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    n, h, w, step = 8, 64, 96, 2
    big = _texture(h, w + n * step)
    frames = [big[:, i * step : i * step + w] for i in range(n)]
    rng = np.random.default_rng(1)

    def flicker(amp):
        return [np.clip(f + amp * rng.choice([-1, 1]) + amp * rng.standard_normal(f.shape), 0, 1) for f in frames]

    return {
        "input": _write(d / "input.mp4", frames),
        "stable": _write(d / "stable.mp4", flicker(0.01)),
        "per_frame": _write(d / "per_frame.mp4", flicker(0.05)),
        "short": _write(d / "short.mp4", frames[:5]),
        "small": _write(d / "small.mp4", [cv2.resize(f, (48, 32)) for f in frames]),
        "dir": d,
    }


def test_table_and_plot(clips, capsys):
    plot = clips["dir"] / "err.png"
    rc = main(
        [
            "eval",
            str(clips["input"]),
            str(clips["stable"]),
            "--per-frame",
            str(clips["per_frame"]),
            "--lag",
            "3",
            "--flow",
            "dis-fast",
            "--plot",
            str(plot),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "warp err (lag 1)" in out and "warp err (lag 3)" in out and "sharpness" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line and not line.startswith("plot")}
    assert set(rows) >= {"input", "stylized", "per-frame", "ratio"}
    ratio_short, ratio_long = float(rows["ratio"][2]), float(rows["ratio"][3])
    assert 0 < ratio_short < 0.5 and 0 < ratio_long < 0.5  # 0.01 vs 0.05 flicker
    assert float(rows["input"][1]) < float(rows["stylized"][1]) < float(rows["per-frame"][1])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lag_longer_than_clip(clips, capsys):
    assert main(["eval", str(clips["input"]), str(clips["stable"]), "--lag", "20", "--flow", "dis-fast"]) == 0
    out = capsys.readouterr().out
    assert "lag 20" in out and "no pair" in out


@pytest.mark.parametrize("other,needle", [("short", "5 frames"), ("small", "48×32")])
def test_mismatched_clips_are_one_line_errors(clips, capsys, other, needle):
    assert main(["eval", str(clips["input"]), str(clips[other])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidstyle: error:") and "\n" not in err and needle in err


def test_errors(clips, capsys, monkeypatch, tmp_path):
    assert main(["eval", str(tmp_path / "nope.mp4"), str(clips["stable"])]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", str(clips["input"]), str(clips["stable"]), "--flow", "pwc"]) == 1
    assert "dis-fast" in capsys.readouterr().err
    assert main(["eval", str(clips["input"]), str(clips["stable"]), "--plot", str(tmp_path / "no" / "p.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert main(["eval", str(clips["input"]), str(clips["stable"]), "--plot", str(tmp_path / "p.png")]) == 1
    assert "pip install" in capsys.readouterr().err


@pytest.fixture(scope="module")
def painting_and_vgg(clips):
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
    from nets_helpers import write_fake_vgg

    d = clips["dir"]
    vgg = write_fake_vgg(d / "vgg.safetensors", n_convs=7, metadata={"convention": "caffe"})
    painting = d / "painting.png"
    cv2.imwrite(str(painting), (_texture(60, 80, seed=5)[..., ::-1] * 255).astype(np.uint8))
    return painting, vgg


def test_style_columns(clips, painting_and_vgg, capsys):
    painting, vgg = painting_and_vgg
    rc = main(["eval", str(clips["input"]), str(clips["stable"]), "--per-frame", str(clips["per_frame"]), "--lag", "3",
               "--flow", "dis-fast", "--style", str(painting), "--vgg-weights", str(vgg), "--style-every", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "style ratio" in out and "texture ratio" in out and "content" in out and "3 frame(s)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:] if line}
    # video, lag 1, lag 3, sharpness, style loss, style ratio, texture ratio, content, file
    assert float(rows["input"][5]) == pytest.approx(1.0) and float(rows["input"][6]) == pytest.approx(1.0)
    assert float(rows["input"][7]) == pytest.approx(0.0, abs=1e-6)
    assert float(rows["per-frame"][7]) > float(rows["stylized"][7]) > 0


def test_style_errors_are_immediate_one_liners(clips, painting_and_vgg, capsys, tmp_path):
    painting, vgg = painting_and_vgg
    base = ["eval", str(clips["input"]), str(clips["stable"])]
    assert main([*base, "--style", str(tmp_path / "none.jpg"), "--vgg-weights", str(vgg)]) == 1
    err = capsys.readouterr().err.strip()
    assert "none.jpg" in err and "does not exist" in err and "\n" not in err
    assert main([*base, "--style", str(painting), "--vgg-weights", str(tmp_path / "none.safetensors")]) == 1
    err = capsys.readouterr().err.strip()
    assert "--vgg-weights" in err and "not found" in err and "\n" not in err
    assert main([*base, "--style", str(painting), "--vgg-weights", str(vgg), "--style-every", "0"]) == 1
    assert "--style-every" in capsys.readouterr().err


def test_plot_extension_checked_first(clips, capsys, tmp_path, monkeypatch):
    import vidstyle.metrics

    def boom(*a, **k):  # the work must not start
        raise AssertionError("compare_videos ran")

    monkeypatch.setattr(vidstyle.metrics, "compare_videos", boom)
    assert main(["eval", str(clips["input"]), str(clips["stable"]), "--plot", str(tmp_path / "x.txt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidstyle: error: --plot") and ".txt" in err and ".png" in err and "\n" not in err
