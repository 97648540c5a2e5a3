"""Region mattes as sequences (issue 18): ``--style a.jpg@matte.%04d.png`` follows the frames like ``--mask``.

Without stabilisation every frame is stylised on its own, so frame n of a run with matte sequences must be
the same picture as a run of that frame alone with frame n's mattes as single pictures; and the mattes differ
from frame to frame, so a run that kept one frame's mattes (or took a neighbour's) fails the comparison.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "nets"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ff_helpers import translating_sequence  # noqa: E402
from nets_helpers import write_fake_vgg  # noqa: E402

N, H, W, FIRST = 4, 48, 64, 1001


def _matte(i: int) -> np.ndarray:
    """Region A of frame i: a vertical band moving 12 px a frame (uint8); region B is the rest."""
    a = np.zeros((H, W), np.uint8)
    a[:, 4 + 12 * i : 28 + 12 * i] = 255
    return a


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regionseq")
    for sub in ("plates", "a", "b", "short"):
        (root / sub).mkdir()
    frames, _, _ = translating_sequence(N, H, W, dx=1.5, dy=0.5)
    for i, f in enumerate(frames):
        n = FIRST + i
        cv2.imwrite(str(root / "plates" / f"sh.{n}.png"), np.round(f[:, :, ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "a" / f"m.{n}.png"), _matte(i))
        cv2.imwrite(str(root / "b" / f"m.{n}.png"), 255 - _matte(i))
        if i < 2:
            cv2.imwrite(str(root / "short" / f"m.{n}.png"), _matte(i))
    rng = np.random.default_rng(0)
    for name, cells in (("red.png", (12, 16)), ("blue.png", (3, 4))):  # fine and coarse random paintings
        img = rng.random((*cells, 3))
        cv2.imwrite(str(root / name), cv2.resize((img * 255).astype(np.uint8), (80, 60), interpolation=cv2.INTER_NEAREST))
    vgg = write_fake_vgg(root / "vgg.safetensors", metadata={"convention": "caffe"})
    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    torch.manual_seed(0)
    dec = save_decoder(root / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                       convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    return {"root": root, "plates": root / "plates" / "sh.%d.png", "vgg": vgg, "decoder": dec}


def _options(backend: str, clip: dict[str, Path]) -> dict[str, object]:
    if backend == "arbitrary":
        return {"backend": "arbitrary", "decoder": str(clip["decoder"]), "vgg_weights": str(clip["vgg"]),
                "method": "adain"}
    return {"backend": "optim", "vgg_weights": str(clip["vgg"]), "iterations": 3, "style_weight": 1e3}


def _styles(clip: dict[str, Path], a: str, b: str) -> list[str]:
    r = clip["root"]
    return [f"{r / 'red.png'}@{r / 'a' / a}", f"{r / 'blue.png'}@{r / 'b' / b}"]


def _stylize(stages: list, frames: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """Run built stages on float32 frames ``(number, image)``: the float output of each."""
    from vidstyle.frame import Frame

    outs = []
    for i, (n, img) in enumerate(frames):
        got = [Frame(index=i, image=img, number=n)]
        for s in stages:
            got = [y for x in got for y in s.process(x)]
        outs += got
    for s in stages:
        outs += s.finish()
        s.close()
    return [np.asarray(f.stylized, np.float64) for f in outs]


@pytest.mark.parametrize("backend", ["arbitrary", "optim"])
def test_each_frame_takes_its_own_region_mattes(clip: dict[str, Path], backend: str, one_torch_thread: None) -> None:
    from vidstyle.api import build_stages
    from vidstyle.io import read_image

    opts = _options(backend, clip)
    frames = [(FIRST + i, read_image(clip["root"] / "plates" / f"sh.{FIRST + i}.png").astype(np.float32) / 255)
              for i in range(N)]
    seq = _stylize(build_stages(device="cpu", threads=1, stabilize=0.0, flow="none",
                                style=_styles(clip, "m.%04d.png", "m.%04d.png"), **opts), frames)
    assert len(seq) == N

    def alone(i: int, k: int) -> np.ndarray:
        stages = build_stages(device="cpu", threads=1, stabilize=0.0, flow="none",
                              style=_styles(clip, f"m.{k}.png", f"m.{k}.png"), **opts)
        return _stylize(stages, [frames[i]])[0]

    for i in range(N):
        n = FIRST + i
        assert np.abs(seq[i] - alone(i, n)).max() <= 1e-5, (backend, n)  # frame n's own mattes
        other = FIRST + (i + 1) % N
        assert np.abs(seq[i] - alone(i, other)).max() > 1e-3, (backend, n)  # another frame's: another picture


def test_a_region_sequence_shorter_than_the_input_is_one_error_before_any_output(
    clip: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidstyle.cli.main import main

    out = tmp_path / "out"
    out.mkdir()
    r = clip["root"]
    code = main(["stylize", str(clip["plates"]), "-o", str(out / "o.%04d.png"), "--backend", "arbitrary",
                 "--decoder", str(clip["decoder"]), "--vgg-weights", str(clip["vgg"]), "--fps", "24",
                 "--style", f"{r / 'red.png'}@{r / 'short' / 'm.%04d.png'}", "--style", str(r / "blue.png"), "-q"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("vidstyle: error: --style: no matte for frame 1003:") and "m.1003.png' is missing" in lines[0]
    assert "the sequence has frames 1001-1002 (the input has frames 1001-1004)" in lines[0]
    assert list(out.iterdir()) == []


def test_a_picture_or_a_camera_refuses_a_region_sequence(clip: dict[str, Path], tmp_path: Path) -> None:
    from vidstyle.api import build_live_stylizer, stylize_image
    from vidstyle.options import StylizeOptions
    from vidstyle.options.spec import OptionValueError

    r = clip["root"]
    styles = _styles(clip, "m.%04d.png", "m.%04d.png")
    with pytest.raises(OptionValueError, match="a picture takes one matte image per style, not the sequence"):
        stylize_image(r / "plates" / f"sh.{FIRST}.png", tmp_path / "o.png", style=styles, **_options("optim", clip))
    with pytest.raises(OptionValueError, match="live mode takes one matte image per style"):
        build_live_stylizer(stylize=StylizeOptions(backend="arbitrary", style=styles, decoder=str(clip["decoder"]),
                                                   vgg_weights=str(clip["vgg"])))
    assert list(tmp_path.iterdir()) == []
