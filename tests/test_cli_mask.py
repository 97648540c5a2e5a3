"""``--mask`` on the command line (issue 18): a matte for a video with ``--start``, and each bad input as
one ``vidstyle: error:`` line (or one warning line), exit code 1, nothing written under any output name."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from vidstyle.cli.main import main  # noqa: E402

W, H, N = 64, 48, 8


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    from vidstyle.nets.registry import save_model
    from vidstyle.nets.transformer import TransformerNet

    d = tmp_path_factory.mktemp("maskcli")
    torch.manual_seed(0)
    net = TransformerNet(config="tiny")
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim > 1:
                p.mul_(2.0)  # a lively random style
    model = save_model(d / "tiny.safetensors", net=net, name="tiny", style="noise")
    clip = d / "clip.mp4"
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur((rng.random((H, W + 4 * N, 3)) * 255).astype(np.uint8), (0, 0), 2)
    with av.open(str(clip), "w") as c:
        vs = c.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(tex[:, 2 * i : 2 * i + W]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 12)
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    mattes = d / "mattes"
    mattes.mkdir()
    for i in range(N):  # matte.0000.png … matte.0007.png: frame i of the file, a box moving 3 px a frame
        a = np.zeros((H, W), np.uint8)
        a[8:40, 10 + 3 * i : 34 + 3 * i] = 255
        cv2.imwrite(str(mattes / f"matte.{i:04d}.png"), cv2.GaussianBlur(a, (0, 0), 1.5))
    short = d / "short"
    short.mkdir()
    for i in range(5):
        cv2.imwrite(str(short / f"matte.{i:04d}.png"), np.full((H, W), 255, np.uint8))
    big = d / "big.png"
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(mattes / "matte.0000.png")), (2 * W, 2 * H)))
    colour = d / "colour.png"
    col = np.zeros((H, W, 3), np.uint8)
    col[:, W // 2 :] = (0, 0, 255)  # BGR: the right half pure red, luminance 0.299
    cv2.imwrite(str(colour), col)
    return {"dir": d, "model": model, "clip": clip, "mattes": mattes / "matte.%04d.png",
            "short": short / "matte.%04d.png", "big": big, "colour": colour}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def _one_error(err: str) -> str:
    errors = [ln for ln in err.splitlines() if ln.startswith("vidstyle: error: ")]
    assert len(errors) == 1 and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    return errors[0]


def test_a_video_with_start_takes_the_mattes_of_its_own_frame_numbers(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Frames 3-7 of the clip go with matte.0003…0007; through lossless FFV1 the unmasked pixels are
    the decoded input (within 2/255), the masked ones changed."""
    from vidstyle.io import open_source
    from vidstyle.io.mattes import read_matte

    out = tmp_path / "o.mkv"
    code, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out), "--model", str(media["model"]),
                     "--codec", "ffv1", "--start", "3f", "--mask", str(media["mattes"]), "--threads", "1", "-q")
    assert code == 0, err
    with open_source(media["clip"], start="3f") as src:
        photos = [f.image.astype(int) for f in src]
    with open_source(out) as src:
        got = [f.image.astype(int) for f in src]
    assert len(got) == len(photos) == N - 3
    for k, (g, p) in enumerate(zip(got, photos)):
        a = read_matte(media["dir"] / "mattes" / f"matte.{k + 3:04d}.png")
        assert np.abs(g - p)[a == 0].max() <= 2, k
        assert np.abs(g - p)[a == 1].mean() > 10, k


def test_a_sequence_shorter_than_the_video_is_one_error_before_any_output(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(tmp_path / "o.mp4"), "--model",
                     str(media["model"]), "--mask", str(media["short"]), "-q")
    line = _one_error(err)
    assert code == 1
    assert "--mask: no matte for frame 5:" in line and "matte.0005.png' is missing" in line
    assert "has frames 0-4 (the input has frames 0-7)" in line and "must cover every frame" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask, expect", [
    ("nope.png", "--mask: matte '{d}/nope.png' does not exist; check the --mask path"),
    ("gone/matte.%04d.png", "--mask: folder '{d}/gone' of the matte sequence"),
    ("matte.%04d.png", "--mask: no files match the matte sequence"),
])
def test_a_missing_matte_is_one_error(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], mask: str, expect: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(out / "o.mp4"), "--model", str(media["model"]),
                     "--mask", str(tmp_path / mask), "-q")
    assert code == 1 and expect.format(d=tmp_path) in _one_error(err)
    assert list(out.iterdir()) == []


def test_a_matte_of_another_size_is_resized_with_one_warning(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, "stylize", str(media["clip"]), "-o", str(tmp_path / "o.%04d.png"), "--model",
                     str(media["model"]), "--mask", str(media["big"]), "--stabilize", "0", "-q")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("vidstyle: warning: mask:")]
    assert len(warnings) == 1 and "is 128x96, the frames 64x48: resized to the frame size" in warnings[0], err
    assert len(list(tmp_path.glob("o.*.png"))) == N


def test_a_colour_matte_uses_its_luminance_on_a_still(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidstyle.api import stylize_image
    from vidstyle.io import read_image

    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8))
    code, err = _run(capsys, "stylize", str(photo), "-o", str(tmp_path / "m.png"), "--model", str(media["model"]),
                     "--mask", str(media["colour"]), "-q")
    assert code == 0, err
    stylize_image(photo, tmp_path / "full.png", model=str(media["model"]))
    p, m, s = (read_image(tmp_path / f).astype(np.float64) for f in ("p.png", "m.png", "full.png"))
    assert np.array_equal(m[:, : W // 2], p[:, : W // 2])  # black: the photo
    assert np.abs(m[:, W // 2 :] - (0.299 * s + 0.701 * p)[:, W // 2 :]).max() <= 1.0  # red: alpha 0.299


def test_a_still_refuses_a_matte_sequence(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((H, W, 3), np.uint8))
    code, err = _run(capsys, "stylize", str(photo), "-o", str(tmp_path / "m.png"), "--model", str(media["model"]),
                     "--mask", str(media["mattes"]))
    assert code == 1 and "--mask: a picture takes one matte image" not in err
    assert "a picture takes one matte image for --mask, not the sequence" in _one_error(err)
    assert not (tmp_path / "m.png").exists()


def test_a_negative_mask_weight_is_one_error_naming_the_flag(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--mask-weight`` (the optimisation back end's hold term outside the matte) must be >= 0."""
    out = tmp_path / "out"
    out.mkdir()
    photo = out.parent / "photo.png"
    cv2.imwrite(str(photo), np.full((H, W, 3), 128, np.uint8))
    code, err = _run(capsys, "image", str(photo), "--style", str(media["colour"]), "--mask", str(media["big"]),
                     "--mask-weight", "-1", "-o", str(out / "o.png"))
    line = _one_error(err)
    assert code != 0 and "--mask-weight" in line and "-1" in line, line
    assert list(out.iterdir()) == []
