"""``vidstyle image`` end to end on tiny pictures, with random VGG-shaped weights written to a file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidstyle.cli.main import main


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("img")
    g = torch.Generator().manual_seed(0)
    sd, cin = {}, 3
    for idx, c in zip([0, 2, 5, 7, 10, 12, 14, 16], [8, 8, 16, 16, 16, 16, 16, 16]):
        sd[f"features.{idx}.weight"] = torch.randn(c, cin, 3, 3, generator=g) * (2.0 / (9 * cin)) ** 0.5
        sd[f"features.{idx}.bias"] = torch.zeros(c)
        cin = c
    weights = root / "vgg_random.safetensors"
    save_file(sd, str(weights), metadata={"convention": "caffe"})
    rng = np.random.default_rng(0)
    content = cv2.resize((rng.random((10, 12, 3)) * 255).astype(np.uint8), (60, 50), interpolation=cv2.INTER_CUBIC)
    style = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(root / "content.png"), content)
    cv2.imwrite(str(root / "style.png"), style)
    cv2.imwrite(str(root / "style2.jpg"), style[::-1].copy())
    cv2.imwrite(str(root / "content16.png"), content.astype(np.uint16) * 257)
    return root, weights


def test_image_command_writes_a_stylized_picture(files, capsys):
    root, weights = files
    out = root / "out.png"
    rc = main([
        "image", str(root / "content.png"), "--style", str(root / "style.png"), "--style", f"{root / 'style2.jpg'}:0.3",
        "-o", str(out), "--iterations", "4", "--size", "40", "--vgg-weights", str(weights), "--seed", "1",
        "--preserve-color", "luminance", "--style-scale", "0.5", "--device", "cpu",
    ])
    assert rc == 0
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.shape == (33, 40, 3) and img.dtype == np.uint8  # 60×50 scaled to a long side of 40
    assert "wrote" in capsys.readouterr().err
    # existing output without --overwrite: one-line error, exit 1
    rc = main(["image", str(root / "content.png"), "--style", str(root / "style.png"), "-o", str(out),
               "--vgg-weights", str(weights)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("exists; pass --overwrite to replace it or choose another name"), err


def test_image_command_keeps_16_bit_and_takes_an_init_image(files):
    root, weights = files
    out = root / "out16.png"
    rc = main(["image", str(root / "content16.png"), "--style", str(root / "style.png"), "-o", str(out), "-q",
               "--iterations", "2", "--size", "0", "--optimizer", "adam", "--init", str(root / "style.png"),
               "--vgg-weights", str(weights), "--scales", "1"])
    assert rc == 0
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.shape == (50, 60, 3) and img.dtype == np.uint16


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style", "missing.png"], "missing.png"),
        (["--style", "STYLE", "--preserve-color", "luminance", "--style-scale", "0"], "style-scale"),
        (["--style", "STYLE", "--content-layer", "relu5_1"], "deeper than the loaded"),
        (["--style", "STYLE", "--init", "nowhere.png"], "nowhere.png"),
    ],
)
def test_image_command_errors_are_one_line(files, capsys, extra, message):
    root, weights = files
    extra = [str(root / "style.png") if e == "STYLE" else e for e in extra]
    rc = main(["image", str(root / "content.png"), "-o", str(root / "bad.png"), "--vgg-weights", str(weights), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and message in err[0] and err[0].startswith("vidstyle: error:")
    assert not (root / "bad.png").exists()


def test_style_weight_parsing():
    from vidstyle.options import OptionValueError, StyleImage
    from vidstyle.options.groups import parse_styles

    assert parse_styles("a.png", "style") == (StyleImage("a.png", 1.0),)
    assert parse_styles(["dir/a.png:0.3", "b.png"], "style") == (StyleImage("dir/a.png", 0.3), StyleImage("b.png", 1.0))
    assert parse_styles("a:b.png", "style") == (StyleImage("a:b.png", 1.0),)
    assert parse_styles([["a.png", 2]], "style") == (StyleImage("a.png", 2.0),)
    with pytest.raises(OptionValueError, match="weight of a.png must be a positive number"):
        parse_styles("a.png:-1", "style")


# ------------------------------------------------------------------ vidstyle stylize --backend optim


def _sequence(root, n=4, size=(32, 40), shift=2):
    rng = np.random.default_rng(3)
    canvas = cv2.resize((rng.random((10, 16, 3)) * 255).astype(np.uint8), (size[1] + shift * n, size[0]),
                        interpolation=cv2.INTER_CUBIC)
    folder = root / "frames"
    folder.mkdir(exist_ok=True)
    for t in range(n):
        cv2.imwrite(str(folder / f"{t:04d}.png"), canvas[:, t * shift : t * shift + size[1]])
    return folder


@pytest.mark.parametrize("extra", [[], ["--stabilize", "0"], ["--passes", "2"]])
def test_stylize_backend_optim_writes_every_frame(files, tmp_path, capsys, extra):
    root, weights = files
    frames = _sequence(tmp_path)
    out = tmp_path / "out"
    rc = main(["stylize", str(frames / "%04d.png"), "-o", str(out / "%04d.png"), "--backend", "optim",
               "--style", str(root / "style.png"), "--vgg-weights", str(weights), "--iterations", "4",
               "--warm-iterations", "2", "--threads", "1", "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert rc == 0, err
    written = sorted(out.glob("*.png"))
    assert len(written) == 4
    img = cv2.imread(str(written[-1]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 40, 3)
    src = cv2.imread(str(frames / "0003.png"))
    assert np.abs(img.astype(int) - src.astype(int)).mean() > 1  # it was stylized, not copied


@pytest.mark.parametrize(
    "args, message",
    [
        (["--style", "STYLE", "--model", "x"], "--backend arbitrary"),
        (["--backend", "optim"], "--style"),
        (["--backend", "optim", "--style", "STYLE", "--model", "x"], "--model"),
        (["--backend", "optim", "--style", "STYLE", "--flow", "none"], "optical flow"),
    ],
)
def test_stylize_backend_optim_option_errors(files, tmp_path, capsys, args, message):
    root, weights = files
    frames = _sequence(tmp_path, n=2)
    args = [str(root / "style.png") if a == "STYLE" else a for a in args]
    rc = main(["stylize", str(frames / "%04d.png"), "-o", str(tmp_path / "o" / "%04d.png"),
               "--vgg-weights", str(weights), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and message in err[0], err
