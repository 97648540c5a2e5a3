"""The arbitrary-style back end on the command line: each bad input is one clear line, exit 1, nothing
written; a huge painting is downscaled with one warning line. Random VGG-shaped weights and a random
decoder (no shared data needed)."""

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
    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    root = tmp_path_factory.mktemp("arb")
    vgg = write_fake_vgg(root / "vgg.safetensors", metadata={"convention": "caffe"})
    torch.manual_seed(0)
    fp = vgg_fingerprint(load_vgg_state(weights=vgg))
    decoder = save_decoder(root / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                           convention="caffe", fingerprint=fp)
    # a relu2_1 decoder's weights in a file that says relu3_1: the layers do not match
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    save_decoder(root / "dec21.safetensors", decoder=Decoder(layer="relu2_1"), vgg_source=str(vgg),
                 convention="caffe", fingerprint=fp)
    with safe_open(str(root / "dec21.safetensors"), framework="pt") as f:
        meta = dict(f.metadata())
    save_file(load_file(str(root / "dec21.safetensors")), str(root / "mislabelled.safetensors"),
              metadata={**meta, "vidstyle.layer": "relu3_1"})
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "photo.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "painting.png"), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "tiny.png"), (rng.random((20, 40, 3)) * 255).astype(np.uint8))
    huge = cv2.resize((rng.random((6, 80, 3)) * 255).astype(np.uint8), (8400, 600), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(root / "huge.png"), huge)
    (root / "garbage.png").write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    frames = root / "frames"
    frames.mkdir()
    for t in range(2):
        cv2.imwrite(str(frames / f"{t:04d}.png"), (rng.random((32, 40, 3)) * 255).astype(np.uint8))
    return {"root": root, "vgg": vgg, "decoder": decoder, "mislabelled": root / "mislabelled.safetensors",
            "frames": frames}


def _image(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["image", str(files["root"] / "photo.png"), "-o", str(out), "--vgg-weights", str(files["vgg"]),
            "--device", "cpu", *extra]


@pytest.mark.parametrize(
    "style, extra, message",
    [
        ("missing.png", [], "style image .*missing.png not found; check the path"),
        ("garbage.png", [], "style image .*garbage.png is not a readable image; re-export it"),
        ("tiny.png", [], r"--style image .*tiny.png is 40×20; it must be at least 32 px on each side"),
        ("painting.png", ["--decoder", "MISLABELLED"], "weights do not fit a relu3_1 decoder"),
        ("painting.png", ["--decoder", "VGG"], "is not a decoder"),
        ("painting.png", ["--decoder", "nope.safetensors"], "decoder file nope.safetensors not found"),
        ("painting.png", ["--stat-smoothing", "1"], r"--stat-smoothing must be a number in \[0, 0.99\], got '1'"),
    ],
)
def test_bad_painting_or_decoder_is_one_line_and_writes_nothing(files, tmp_path, capsys, style, extra, message) -> None:
    import re

    out = tmp_path / "out.png"
    extra = [str(files["mislabelled"]) if a == "MISLABELLED" else str(files["vgg"]) if a == "VGG" else a for a in extra]
    rc = main(_image(files, out, "--style", str(files["root"] / style), "--method", "wct",
                     *(extra if "--decoder" in extra else ["--decoder", str(files["decoder"]), *extra])))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("vidstyle: error: ") and re.search(message, err[0]), err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


@pytest.mark.parametrize("flag", [["--method", "wct"], ["--decoder", "d.safetensors"], ["--stat-smoothing", "0.5",
                                                                                          "--method", "adain"]])
def test_arbitrary_flags_without_a_painting_are_one_line(files, tmp_path, capsys, flag) -> None:
    out = tmp_path / "o"
    rc = main(["stylize", str(files["frames"] / "%04d.png"), "-o", str(out / "%04d.png"), "--device", "cpu", *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert f"{flag[-2]} is for the arbitrary back end: give a painting with --style" in err[0], err
    assert not out.exists()


def test_a_huge_painting_is_downscaled_with_one_warning(files, tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    rc = main(_image(files, out, "--style", str(files["root"] / "huge.png"), "--decoder", str(files["decoder"])))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0, err
    warnings = [line for line in err if line.startswith("vidstyle: warning:")]
    assert len(warnings) == 1 and "huge.png is 8400×600 px (more than 8192 px); it was downscaled" in warnings[0]
    assert cv2.imread(str(out)) is not None and not list(tmp_path.glob(".*"))


def test_a_huge_painting_analyses_like_its_downscaled_copy(files, tmp_path) -> None:
    """The shrink happens before the analysis at 512 px: the statistics equal those of a copy
    shrunk by hand to the same long side (area filter)."""
    from vidstyle.options import StyleImage
    from vidstyle.stylize.arbitrary import build_arbitrary_model

    huge = cv2.imread(str(files["root"] / "huge.png"))
    copy = tmp_path / "copy.png"
    cv2.imwrite(str(copy), cv2.resize(huge, (1024, 73), interpolation=cv2.INTER_AREA))  # 2 × 512 px long side
    kw = {"method": "adain", "decoder": str(files["decoder"]), "vgg_weights": str(files["vgg"])}
    a = build_arbitrary_model(styles=[StyleImage(path=str(files["root"] / "huge.png"))], **kw)
    b = build_arbitrary_model(styles=[StyleImage(path=str(copy))], **kw)
    assert a.metadata["notes"] and not b.metadata["notes"]
    torch.testing.assert_close(a.net.statistics.mean, b.net.statistics.mean)
    torch.testing.assert_close(a.net.statistics.std, b.net.statistics.std)


def test_the_image_preview_takes_bfloat16_where_native_and_optimisation_refuses_it(files, tmp_path, capsys) -> None:
    """``vidstyle image --method adain`` defaults to ``--precision auto`` (bfloat16 on CPUs that compute it natively:
    the preview is faster, a fraction of a level off); ``--precision float32`` is exact; the optimisation runs in
    float32 and says so for any other precision."""
    from vidstyle.runtime import resolve_precision

    outs = {}
    for precision in (None, "float32", "bfloat16"):
        out = tmp_path / f"{precision}.png"
        args = ["--style", str(files["root"] / "painting.png"), "--method", "adain", "--decoder", str(files["decoder"]),
                "--quiet", *(["--precision", precision] if precision else [])]
        assert main(_image(files, out, *args)) == 0, capsys.readouterr().err
        outs[precision] = cv2.imread(str(out)).astype(np.float32)
    diff = np.abs(outs["bfloat16"] - outs["float32"])
    assert diff.mean() < 3.0 and diff.max() > 0  # bfloat16 is not float32, but close to it
    native = resolve_precision("auto", device=torch.device("cpu")) == torch.bfloat16
    assert np.array_equal(outs[None], outs["bfloat16" if native else "float32"])
    capsys.readouterr()
    out = tmp_path / "optim.png"
    rc = main(_image(files, out, "--style", str(files["root"] / "painting.png"), "--precision", "bfloat16"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "--precision bfloat16 is for the previews" in err[0], err
    assert not out.exists()
