"""Distillation of the fast variant: the loss against its formula, AdaIN of pairs against the transform, a 2-iteration
training writes a loadable model and card, resume continues bit-identically, and `vidstyle train --kind student`'s
bad input is one line.

Tiny: random VGG19-shaped weights (Caffe convention), a random teacher decoder, six generated 40×56 photos (the last
two held out), three generated paintings (one held out), 32 px crops, batch 2, a width-8 student.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidstyle.cli.main import main
from vidstyle.losses.distill import DistillWeights, distillation_loss, reconstruction_loss, statistics_loss
from vidstyle.nets.student import load_student
from vidstyle.options.spec import OptionValueError
from vidstyle.train_student import StudentTrainConfig, adain_pairs, style_files, train_student

sys.path.insert(0, str(Path(__file__).resolve().parent / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------------------------------- the loss
def _feats(y: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"a": y * 3.0, "b": y.mean(1, keepdim=True) ** 2}


def test_statistics_loss_is_the_formula() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 5, 6, 7, generator=g), torch.rand(2, 5, 6, 7, generator=g) * 3
    want = 0.0
    for n in range(2):
        for c in range(5):
            x, y = a[n, c].flatten().double(), b[n, c].flatten().double()
            want += (x.mean() - y.mean()) ** 2 + (x.var(unbiased=False).sqrt() - y.var(unbiased=False).sqrt()) ** 2
    assert float(statistics_loss(a, b)) == pytest.approx(float(want) / 10, rel=1e-5)
    assert float(statistics_loss(a, a + 0.0)) == 0.0


def test_reconstruction_loss_is_the_formula() -> None:
    g = torch.Generator().manual_seed(1)
    y, t = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    fy, ft = _feats(y), _feats(t)
    want = 2.0 * ((y - t) * 255).pow(2).mean() + 0.3 * (F.mse_loss(fy["a"], ft["a"]) + F.mse_loss(fy["b"], ft["b"])) / 2
    got = reconstruction_loss(y, t, features=_feats, pixel_weight=2.0, perceptual_weight=0.3)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(reconstruction_loss(y, t, features=None, pixel_weight=1.0, perceptual_weight=0.3),
                               ((y - t) * 255).pow(2).mean())


def test_distillation_loss_is_the_formula() -> None:
    g = torch.Generator().manual_seed(2)

    def r(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    sc, tc, ss, ts = r(2, 6, 4, 4) * 400, r(2, 6, 4, 4) * 400, r(2, 6, 4, 4) * 300, r(2, 6, 4, 4) * 300
    x, d_t, d_s, sty, t_sty = (r(2, 3, 16, 16) for _ in range(5))
    w = DistillWeights(feature=0.7, stats=0.2, pixel=1.5, perceptual=0.25)
    out = distillation_loss(student_content=sc, teacher_content=tc, student_style=ss, teacher_style=ts, photo=x,
                            from_teacher=d_t, from_student=d_s, stylised=sty, teacher_stylised=t_sty, features=_feats,
                            weights=w)

    def rec(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        fy, ft = _feats(y), _feats(t)
        return 1.5 * ((y - t) * 255).pow(2).mean() + 0.25 * sum(((fy[k] - ft[k]) ** 2).mean() for k in fy) / 2

    feature = ((sc - tc) ** 2).mean() + ((ss - ts) ** 2).mean()
    stats = statistics_loss(sc, tc) + statistics_loss(ss, ts)
    want = 0.7 * feature + 0.2 * stats + rec(d_t, x) + rec(d_s, x) + rec(sty, t_sty)
    torch.testing.assert_close(out.total, want)
    torch.testing.assert_close(out.feature, feature)
    torch.testing.assert_close(out.stylised, rec(sty, t_sty))
    assert set(out.as_floats()) == {"total", "feature", "stats", "recon_teacher", "recon_student", "stylised", "texture"}
    assert out.texture.item() == 0.0  # off by default

    textured = distillation_loss(student_content=sc, teacher_content=tc, student_style=ss, teacher_style=ts, photo=x,
                                 from_teacher=d_t, from_student=d_s, stylised=sty, teacher_stylised=t_sty,
                                 features=_feats, weights=DistillWeights(feature=0.7, stats=0.2, pixel=1.5,
                                                                         perceptual=0.25, texture=0.4))

    def gram(f: torch.Tensor) -> torch.Tensor:  # F·Fᵀ/(C·H·W), written out per image
        n, c, h, w = f.shape
        return torch.stack([f[i].reshape(c, -1) @ f[i].reshape(c, -1).T / (c * h * w) for i in range(n)])

    fs, ft = _feats(sty), _feats(t_sty)
    texture = sum(((gram(fs[k]) - gram(ft[k])) ** 2).sum(dim=(1, 2)).mean() for k in fs)
    assert texture > 0
    torch.testing.assert_close(textured.texture, texture)
    torch.testing.assert_close(textured.total, want + 0.4 * texture)
    with pytest.raises(ValueError, match="texture term needs `features`"):
        distillation_loss(student_content=sc, teacher_content=tc, student_style=ss, teacher_style=ts, photo=x,
                          from_teacher=d_t, from_student=d_s, stylised=sty, teacher_stylised=t_sty, features=None,
                          weights=DistillWeights(texture=1.0))


def test_adain_pairs_is_adain_per_image() -> None:
    from vidstyle.stylize.transforms import adain

    g = torch.Generator().manual_seed(3)
    c, s = torch.rand(3, 8, 5, 6, generator=g), torch.rand(3, 8, 7, 4, generator=g) * 2
    got = adain_pairs(c, s)
    for i in range(3):
        torch.testing.assert_close(got[i:i + 1], adain(c[i:i + 1], s[i:i + 1]))


# ------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.vgg import load_vgg_state

    root = tmp_path_factory.mktemp("student_data")
    content, styles = root / "content", root / "styles"
    content.mkdir()
    styles.mkdir()
    rng = np.random.default_rng(0)
    for folder, n, shape in ((content, 6, (40, 56, 3)), (styles, 3, (48, 64, 3))):
        for i in range(n):
            img = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 2.0)
            img = (img - img.min()) / (img.max() - img.min())
            cv2.imwrite(str(folder / f"{folder.name}_{i}.png"), (img * 255).astype(np.uint8))
    vgg = write_fake_vgg(root / "vgg.safetensors", n_convs=5, metadata={"convention": "caffe"})
    torch.manual_seed(0)
    teacher = save_decoder(root / "teacher.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                           convention="caffe", fingerprint=vgg_fingerprint(load_vgg_state(weights=vgg)))
    return {"content": content, "styles": styles, "vgg": vgg, "teacher": teacher}


def _config(data: dict[str, Path], out: Path, **kw: object) -> StudentTrainConfig:
    base = dict(content=str(data["content"]), style=(str(data["styles"]),), output=str(out), decoder=str(data["teacher"]),
                width=8, blocks=1, image_size=32, style_size=48, batch_size=2, iterations=4, lr=1e-3,
                vgg_weights=str(data["vgg"]), checkpoint_every=2, held_out_count=2, held_out_styles=("styles_2.png",),
                psnr_size=40, seed=3)
    base.update(kw)
    return StudentTrainConfig(**base)  # type: ignore[arg-type]


def test_two_iterations_write_a_loadable_model_and_card(data: dict[str, Path], tmp_path: Path) -> None:
    result = train_student(config=_config(data, tmp_path / "s", iterations=2))
    student = load_student(result.model_path)
    assert result.iterations == 2 and student.config.width == 8 and student.config.blocks == 1
    card = json.loads((tmp_path / "s.json").read_text())
    assert card["kind"] == "student" and card["held_out"]["images"] == ["content_4.png", "content_5.png"]
    assert card["held_out"]["paintings"] == ["styles_2.png"] and card["data"]["paintings"] == ["styles_0.png", "styles_1.png"]
    assert card["held_out"]["psnr_db"] == pytest.approx(result.psnr, abs=1e-3) and result.stylised_psnr is not None
    assert card["teacher"]["decoder"] == "teacher.safetensors" and card["data"]["images"] == 4
    assert "stylised PSNR vs the VGG variant" in (tmp_path / "s.md").read_text()
    x = torch.rand(1, 3, 40, 56)
    assert student(x).shape == x.shape
    ckpt = load_student(result.checkpoint_path)  # a checkpoint loads as a student
    assert ckpt.config.width == 8 and ckpt.card["held_out"]["paintings"] == ["styles_2.png"]
    assert ckpt.card["checkpoint_iteration"] == 2


def test_resume_continues_identically(data: dict[str, Path], tmp_path: Path) -> None:
    full = train_student(config=_config(data, tmp_path / "full"))
    train_student(config=_config(data, tmp_path / "half", iterations=2))
    resumed = train_student(config=_config(data, tmp_path / "half", iterations=4), resume=True)
    a, b = load_student(full.model_path), load_student(resumed.model_path)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert resumed.iterations == 4
    with pytest.raises(OptionValueError, match="was made with lr=0.001, not 0.002"):
        train_student(config=_config(data, tmp_path / "half", iterations=6, lr=2e-3), resume=True)


def test_lr_decay_is_recorded_and_resumed(data: dict[str, Path], tmp_path: Path) -> None:
    """The student trainer takes the schedule: the card says it, a resumed run continues it to the same weights."""
    full = train_student(config=_config(data, tmp_path / "full", lr_decay=1.0, lr_final=0.05))
    train_student(config=_config(data, tmp_path / "half", iterations=2, lr_decay=1.0, lr_final=0.05))
    card = json.loads((tmp_path / "full.json").read_text())
    assert card["lr_schedule"] == "cosine decay to 0.05× over the last 100 %"
    assert "cosine decay to 0.05×" in (tmp_path / "full.md").read_text()
    with pytest.raises(OptionValueError, match="lr_decay=1.0, not 0.0"):
        train_student(config=_config(data, tmp_path / "half", iterations=4), resume=True)
    assert full.iterations == 4


def test_init_fine_tunes_a_trained_student(data: dict[str, Path], tmp_path: Path) -> None:
    """``init`` starts from the given student's weights: one Adam step at a tiny learning rate stays next to them
    (a fresh start does not); the texture term is on; a student of another width is refused, naming ``init``."""
    base = train_student(config=_config(data, tmp_path / "base", iterations=2))
    tuned = train_student(config=_config(data, tmp_path / "tuned", iterations=1, lr=1e-7, init=str(base.model_path),
                                         texture_weight=0.5))
    fresh = train_student(config=_config(data, tmp_path / "fresh", iterations=1, lr=1e-7))
    a, b, c = (load_student(r.model_path).state_dict() for r in (base, tuned, fresh))
    near = max(float((a[k] - b[k]).abs().max()) for k in a)
    far = max(float((a[k] - c[k]).abs().max()) for k in a)
    assert near < 1e-5 < far, (near, far)
    card = json.loads((tmp_path / "tuned.json").read_text())
    assert card["init"] == "base.safetensors" and card["weights"]["texture"] == 0.5
    assert card["init_card"]["iterations"] == 2 and card["init_card"]["weights"]["texture"] == 0.001
    assert "fine-tuned from base.safetensors (2 iterations, texture weight 0.001)" in (tmp_path / "tuned.md").read_text()
    assert tuned.final_losses["texture"] > 0
    with pytest.raises(Exception, match="init: .* has width 8 and 1 blocks, not 12 and 1") as info:
        train_student(config=_config(data, tmp_path / "wide", width=12, init=str(base.model_path)))
    assert getattr(info.value, "parameter", None) == "init"


def test_checkpoints_from_before_the_texture_term_resume(data: dict[str, Path], tmp_path: Path) -> None:
    """A checkpoint whose config has no ``texture_weight`` or ``init`` (older runs) resumes with what they had in
    effect (no texture term), and the new default is refused with the usual line."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    train_student(config=_config(data, tmp_path / "old", iterations=2, texture_weight=0.0))
    ckpt = tmp_path / "old.ckpt.safetensors"
    with safe_open(str(ckpt), framework="pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    saved = json.loads(meta["config"])
    del saved["texture_weight"], saved["init"]
    meta["config"] = json.dumps(saved)
    save_file(tensors, str(ckpt), metadata=meta)
    resumed = train_student(config=_config(data, tmp_path / "old", iterations=3, texture_weight=0.0), resume=True)
    assert resumed.iterations == 3
    with pytest.raises(OptionValueError, match="texture_weight=0.0, not 0.001"):
        train_student(config=_config(data, tmp_path / "old", iterations=4), resume=True)


def test_loss_goes_down(data: dict[str, Path], tmp_path: Path) -> None:
    """The total falls, most of all the stylised term (the encoder starts at the teacher's channel means, so its
    feature term starts near a constant predictor's and falls slowly against a random teacher)."""
    result = train_student(config=_config(data, tmp_path / "m", iterations=50, checkpoint_every=50, lr=3e-3))
    first, last = result.history[0], result.history[-1]
    assert last["total"] < 0.75 * first["total"] and last["stylised"] < 0.5 * first["stylised"], (first, last)


def test_held_out_paintings_are_not_trained_on(data: dict[str, Path], tmp_path: Path) -> None:
    train, held = style_files(_config(data, tmp_path / "x", held_out_styles=("styles_0.png", "absent.png")))
    assert [p.name for p in train] == ["styles_1.png", "styles_2.png"] and [p.name for p in held] == ["styles_0.png"]


# ------------------------------------------------------------------------------------------- the CLI
def _cli(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--kind", "student", "--content", str(data["content"]), "-o", str(out), "--vgg-weights",
            str(data["vgg"]), "--decoder", str(data["teacher"]), "--quiet", "--image-size", "32", "--style-size", "48",
            "--batch-size", "2", "--threads", "1", "--held-out-styles", "styles_2.png", *extra]


def test_cli_trains_a_student(data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(_cli(data, tmp_path / "cli", "--style", str(data["styles"]), "--iterations", "1", "--width", "8"))
    out = capsys.readouterr().out
    assert rc == 0 and "student:" in out and "stylised PSNR vs the VGG variant" in out
    assert load_student(tmp_path / "cli.safetensors").config.width == 8


@pytest.mark.parametrize("extra, message", [
    ([], "--kind student needs paintings for its stylised term: add --style FOLDER"),
    (["--style", "STYLES", "--held-out-styles", "styles_0.png,styles_1.png,styles_2.png"],
     "no paintings left to train on after holding out"),
    (["--style", "STYLES", "--decoder", "VGG"], "is not a decoder"),
    (["--style", "nowhere/"], "painting nowhere not found"),
    (["--style", "STYLES", "--image-size", "34"], "--image-size must be a multiple of 4, got 34"),
    (["--style", "STYLES", "--resume"], "resume: no checkpoint"),
    (["--style", "STYLES", "--lr-decay", "2"], "--lr-decay is the fraction of the run the rate decays over, in [0, 1]"),
])
def test_cli_bad_input_is_one_line(data, tmp_path, capsys, extra, message) -> None:
    extra = [str(data["styles"]) if a == "STYLES" else str(data["vgg"]) if a == "VGG" else a for a in extra]
    args = _cli(data, tmp_path / "bad", *extra)
    if "--decoder" in extra:  # replace the teacher
        i = args.index("--decoder")
        del args[i:i + 2]
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("vidstyle: error: ") and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_student_flags_with_another_kind_are_one_line(data, tmp_path, capsys) -> None:
    rc = main(["train", "--style", str(data["styles"] / "styles_0.png"), "--content", str(data["content"]), "-o",
               str(tmp_path / "m"), "--width", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "are for --kind student" in err[0], err
