"""`--style-loss`, per-region styles (STYLE@MATTE) and semantic maps on the command line (issue 18):
tiny pictures, random VGG-shaped weights in a file; every bad input is one line, exit 1, no output."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidstyle.cli.main import main

from test_cli_image import _sequence, files, one_thread  # noqa: F401 - the shared fixtures


@pytest.fixture(scope="module")
def guides(files):  # noqa: F811
    root, weights = files
    left = np.zeros((50, 60), np.uint8)
    left[:, :30] = 255
    cv2.imwrite(str(root / "left.png"), left)
    cv2.imwrite(str(root / "right.png"), 255 - left)
    smap = np.zeros((32, 32, 3), np.uint8)
    smap[:16] = (0, 255, 255)  # BGR: yellow top
    smap[16:] = (255, 0, 0)  # blue bottom
    cv2.imwrite(str(root / "style_map.png"), smap)
    cmap = np.zeros((50, 60, 3), np.uint8)
    cmap[:, :30] = (0, 255, 255)
    cmap[:, 30:] = (255, 0, 0)
    cv2.imwrite(str(root / "content_map.png"), cmap)
    alien = cmap.copy()
    alien[:20] = (0, 255, 0)  # green: not in the style map
    cv2.imwrite(str(root / "alien_map.png"), alien)
    return root, weights


def _image(root, weights, out, *extra):
    return ["image", str(root / "content.png"), "-o", str(out), "--iterations", "3", "--size", "40",
            "--vgg-weights", str(weights), "--device", "cpu", "-q", *extra]


@pytest.mark.parametrize("loss", ["mmd-linear", "mmd-gaussian", "bn", "mrf"])
def test_image_takes_every_style_loss(guides, tmp_path, capsys, loss):
    root, weights = guides
    out = tmp_path / f"{loss}.png"
    rc = main(_image(root, weights, out, "--style", str(root / "style.png"), "--style-loss", loss))
    assert rc == 0, capsys.readouterr().err
    img = cv2.imread(str(out))
    assert img.shape == (33, 40, 3)
    src = cv2.resize(cv2.imread(str(root / "content.png")), (40, 33), interpolation=cv2.INTER_AREA)
    assert np.abs(img.astype(int) - src.astype(int)).mean() > 1


def test_image_regions_and_semantic_maps(guides, tmp_path, capsys):
    root, weights = guides
    rc = main(_image(root, weights, tmp_path / "regions.png", "--style", f"{root / 'style.png'}@{root / 'left.png'}",
                     "--style", f"{root / 'style2.jpg'}@{root / 'right.png'}:0.5"))
    err = capsys.readouterr().err
    assert rc == 0, err
    # the 60x50 mattes are resized to the 40x33 picture, with one note each (the bad-input list)
    notes = [line for line in err.splitlines() if "resized to the frame size" in line]
    assert len(notes) == 2 and "is 60x50, the frames 40x33" in notes[0] and "left.png" in notes[0], err
    rc = main(_image(root, weights, tmp_path / "doodle.png", "--style", str(root / "style.png"),
                     "--style-map", str(root / "style_map.png"), "--content-map", str(root / "content_map.png")))
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "regions.png").is_file() and (tmp_path / "doodle.png").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style", "STYLE", "--style-map", "ROOT/style_map.png", "--content-map", "ROOT/alien_map.png"],
         "the content map has colour #00ff00"),
        (["--style", "STYLE", "--style-map", "ROOT/style_map.png"], "semantic maps come in pairs: add --content-map"),
        (["--style", "STYLE", "--style-map", "ROOT/style_map.png", "--content-map", "ROOT/content_map.png",
          "--style-loss", "bn"], "use --style-loss mrf"),
        (["--style", "STYLE@ROOT/left.png", "--style", "STYLE"], "give every style image a region matte"),
        (["--style", "STYLE@ROOT/left.png", "--style-loss", "bn"], "per-region styles (STYLE@MATTE) use the Gram"),
        (["--style", "STYLE@ROOT/nowhere.png"], "nowhere.png"),
        (["--style", "STYLE", "--style-map", "ROOT/nowhere.png", "--content-map", "ROOT/content_map.png"],
         "nowhere.png"),
    ],
)
def test_image_bad_guides_are_one_line(guides, tmp_path, capsys, extra, message):
    root, weights = guides
    extra = [e.replace("STYLE", str(root / "style.png")).replace("ROOT", str(root)) for e in extra]
    out = tmp_path / "bad.png"
    rc = main(_image(root, weights, out, *extra))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("vidstyle: error:") and message in err[0], err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_stylize_optim_takes_the_style_loss_and_regions(guides, tmp_path, capsys):
    root, weights = guides
    frames = _sequence(tmp_path, n=2)
    for name, extra in {"bn": ["--style", str(root / "style.png"), "--style-loss", "bn"],
                        "regions": ["--style", f"{root / 'style.png'}@{root / 'left.png'}",
                                    "--style", f"{root / 'style2.jpg'}@{root / 'right.png'}"]}.items():
        out = tmp_path / name
        rc = main(["stylize", str(frames / "%04d.png"), "-o", str(out / "%04d.png"), "--backend", "optim",
                   "--vgg-weights", str(weights), "--iterations", "3", "--warm-iterations", "2", "--threads", "1",
                   "--device", "cpu", *extra])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert len(list(out.glob("*.png"))) == 2
        # the 60x50 region mattes are resized to the 40x32 frames, with a note each; no mattes, no note
        assert err.count("is 60x50, the frames 40x32: resized to the frame size") == (2 if name == "regions" else 0), err
    # semantic maps are for still pictures: the video command has no such flag
    with pytest.raises(SystemExit) as info:
        main(["stylize", str(frames / "%04d.png"), "-o", str(tmp_path / "x.mp4"), "--backend", "optim",
              "--style", str(root / "style.png"), "--style-map", str(root / "style_map.png")])
    assert info.value.code == 2
    capsys.readouterr()
    # and a per-region style for a feed-forward model (whose style is fixed) is refused in one line
    rc = main(["stylize", str(frames / "%04d.png"), "-o", str(tmp_path / "ff" / "%04d.png"), "--backend", "feedforward",
               "--style", f"{root / 'style.png'}@{root / 'left.png'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "--backend optim or arbitrary" in err[-1], err
    assert not (tmp_path / "ff").exists() or not any((tmp_path / "ff").iterdir())


def test_portrait_without_a_face_warns_or_fails_in_one_line(guides, tmp_path, capsys):
    root, weights = guides
    out = tmp_path / "plain.png"
    rc = main(_image(root, weights, out, "--style", str(root / "style.png"), "--portrait"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 and out.is_file()
    assert err == ["vidstyle: warning: no face found in the content picture: stylised without the portrait gain map"]
    strict = tmp_path / "strict.png"
    rc = main(_image(root, weights, strict, "--style", str(root / "style.png"), "--portrait", "--portrait-strict"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and not strict.exists(), err
    assert err[0].startswith("vidstyle: error: --portrait: no face found in the content picture") and \
        "--portrait-strict" in err[0]
    rc = main(_image(root, weights, strict, "--style", str(root / "style.png"), "--portrait-strict"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "goes with --portrait: add --portrait" in err[0], err
    rc = main(_image(root, weights, strict, "--style", str(root / "style.png"), "--style", str(root / "style2.jpg"),
                     "--portrait"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "one style portrait" in err[0], err
