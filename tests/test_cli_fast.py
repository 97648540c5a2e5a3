"""The fast arbitrary-style variant (`--fast`) on the command line: `vidstyle image`, `stylize` (with the stabiliser)
and `live`, and each wrong model file or missing painting is one clear line with nothing written. A random student
(no shared data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vidstyle.nets.decoder import Decoder, save_decoder
    from vidstyle.nets.student import Student, StudentConfig, save_student

    root = tmp_path_factory.mktemp("fast")
    vgg = write_fake_vgg(root / "vgg.safetensors", n_convs=5, metadata={"convention": "caffe"})
    torch.manual_seed(0)
    student = save_student(root / "student.safetensors", student=Student(config=StudentConfig(width=8, blocks=1)),
                           vgg_source="vgg.safetensors", fingerprint="")
    decoder = save_decoder(root / "dec.safetensors", decoder=Decoder(layer="relu1_1"), vgg_source="v", convention="caffe")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "photo.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "painting.png"), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    frames = root / "frames"
    frames.mkdir()
    base = cv2.GaussianBlur((rng.random((32, 48, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    for t in range(3):
        cv2.imwrite(str(frames / f"{t:04d}.png"), np.roll(base, t, axis=1))
    return {"root": root, "student": student, "decoder": decoder, "frames": frames, "vgg": vgg}


def test_image_fast_writes_the_picture(files, tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    rc = main(["image", str(files["root"] / "photo.png"), "-o", str(out), "--style", str(files["root"] / "painting.png"),
               "--fast", "--decoder", str(files["student"]), "--vgg-weights", str(files["vgg"]), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (427, 512)  # `vidstyle image` works at 512 px on the long side


def test_stylize_fast_with_the_stabiliser(files, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    rc = main(["stylize", str(files["frames"] / "%04d.png"), "-o", str(out / "%04d.png"), "--style",
               str(files["root"] / "painting.png"), "--fast", "--decoder", str(files["student"]), "--stabilize", "0.85",
               "--vgg-weights", str(files["vgg"]),
               "--device", "cpu", "--threads", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    written = sorted(out.glob("*.png"))
    assert len(written) == 3 and cv2.imread(str(written[-1])).shape == (32, 48, 3)


@pytest.mark.parametrize("extra, message", [
    (["--fast", "--decoder", "DEC"], "dec.safetensors is a VGG decoder, not a student model: drop --fast, or give a "
                                     "student model (`vidstyle train --kind student`) as --decoder"),
    (["--decoder", "STUDENT"], "student.safetensors is a student model (the fast variant): add --fast"),
    (["--fast", "--decoder", "no_such_student"], "no student model named 'no_such_student'; give a .safetensors path "
                                                 "as --decoder"),
    (["--fast", "--decoder", "gone/student.safetensors"], "student model file gone/student.safetensors not found"),
])
def test_wrong_model_files_are_one_line(files, tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "out.png"
    extra = [str(files["decoder"]) if a == "DEC" else str(files["student"]) if a == "STUDENT" else a for a in extra]
    rc = main(["image", str(files["root"] / "photo.png"), "-o", str(out), "--style", str(files["root"] / "painting.png"),
               "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"vidstyle: error: {message}"), err
    assert list(tmp_path.iterdir()) == []


def test_fast_without_a_painting_is_one_line(files, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    rc = main(["stylize", str(files["frames"] / "%04d.png"), "-o", str(out / "%04d.png"), "--fast", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "--fast is for the arbitrary back end: give a painting with --style" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("switch, given, want", [(False, [], False), (True, [], True), (True, ["--no-fast"], False),
                                                 (False, ["--fast"], True)])
def test_live_uses_the_fast_variant_when_the_switch_says_so(monkeypatch, files, switch, given, want) -> None:
    """`vidstyle live --style P`: LIVE_FAST_DEFAULT decides unless --fast/--no-fast (or --decoder) is given."""
    import vidstyle.api
    import vidstyle.live.options

    seen = {}

    def fake_model(st):  # noqa: ANN001, ANN202 - stop where the options reach the back end
        seen["fast"] = st.fast
        raise SystemExit(0)

    monkeypatch.setattr(vidstyle.live.options, "LIVE_FAST_DEFAULT", switch)
    monkeypatch.setattr(vidstyle.api, "_arbitrary_model", fake_model)
    with pytest.raises(SystemExit):
        main(["live", "--camera", "lavfi:testsrc2=size=64x48:rate=30", "--style", str(files["root"] / "painting.png"),
              "--duration", "0.1", "--threads", "1", *given])
    assert seen == {"fast": want}


def test_a_student_given_as_a_style_model_is_one_line(files, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    rc = main(["stylize", str(files["frames"] / "%04d.png"), "-o", str(out / "%04d.png"), "-m", str(files["student"]),
               "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert "student.safetensors is the fast arbitrary-style variant (a student), not a style model; use it with " \
           "--style PAINTING --fast --decoder student" in err[0]
    assert not out.exists()
