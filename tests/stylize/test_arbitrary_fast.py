"""The fast arbitrary-style variant (`fast`, a distilled student) in the pipeline: the output is the student's decoder
of AdaIN-moved student features with the painting analysed once, the stabiliser works with it, style statistics may
come from VGG, and wrong files are one line. A random student and random VGG-shaped weights."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nets"))
from nets_helpers import write_fake_vgg  # noqa: E402

from vidstyle.errors import ModelError  # noqa: E402
from vidstyle.frame import Frame  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def parts(tmp_path: Path) -> dict[str, Path]:
    from vidstyle.nets.decoder import Decoder, save_decoder, vgg_fingerprint
    from vidstyle.nets.student import Student, StudentConfig, save_student
    from vidstyle.nets.vgg import load_vgg_state

    vgg = write_fake_vgg(tmp_path / "vgg.safetensors", n_convs=5, metadata={"convention": "caffe"})
    fp = vgg_fingerprint(load_vgg_state(weights=vgg))
    torch.manual_seed(0)
    student = save_student(tmp_path / "student.safetensors", student=Student(config=StudentConfig(width=8, blocks=1)),
                           vgg_source=str(vgg), fingerprint=fp)
    decoder = save_decoder(tmp_path / "dec.safetensors", decoder=Decoder(layer="relu3_1"), vgg_source=str(vgg),
                           convention="caffe", fingerprint=fp)
    rng = np.random.default_rng(0)
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), (rng.random((60, 80, 3)) * 255).astype(np.uint8))
    return {"vgg": vgg, "student": student, "decoder": decoder, "painting": painting}


def _stages(parts: dict[str, Path], **kw: object) -> list:
    from vidstyle.api import build_stages

    options = {"backend": "arbitrary", "style": str(parts["painting"]), "fast": True, "decoder": str(parts["student"]),
               "vgg_weights": str(parts["vgg"]), "device": "cpu", "threads": 1, "stabilize": 0, **kw}
    return build_stages(**options)


def _run(stages: list, frames: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for i, image in enumerate(frames):
        todo = [Frame(index=i, image=image)]
        for stage in stages:
            todo = [g for f in todo for g in stage.process(f)]
        out += [f.stylized for f in todo]
    for stage in stages:
        stage.close()
    return out


def _painting_tensor(path: Path) -> torch.Tensor:
    from vidstyle.io.imagefiles import read_image
    from vidstyle.stylize import transforms
    from vidstyle.stylize.feedforward import image_to_tensor

    return transforms.style_image_at(image_to_tensor(read_image(path))[None], long_side=512)


def test_the_output_is_the_students_decoder_of_adain_features(parts) -> None:
    from vidstyle.nets.decoder import VGGEncoder
    from vidstyle.nets.student import load_student
    from vidstyle.stylize import transforms
    from vidstyle.stylize.feedforward import image_to_tensor

    frame = (np.random.default_rng(2).random((37, 53, 3)) * 255).astype(np.uint8)  # odd size
    (out,) = _run(_stages(parts), [frame])
    student = load_student(parts["student"])
    with torch.no_grad():  # the painting analysed once by VGG19 (STUDENT_STYLE_STATISTICS)
        stats = transforms.prepare_style(VGGEncoder(weights=str(parts["vgg"]))(_painting_tensor(parts["painting"])),
                                         method="adain")
        x = image_to_tensor(frame)[None]
        want = student.decoder(transforms.adain(student.encoder(x), stats), size=(37, 53))
    want8 = (want[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(np.int16) - want8).max() <= 1


@pytest.mark.parametrize("strength", [1.0, 0.4])
def test_adain_affine_is_adain(strength: float) -> None:
    from vidstyle.stylize import transforms
    from vidstyle.stylize.stat_smoothing import content_statistics

    g = torch.Generator().manual_seed(4)
    c, s = torch.rand(2, 16, 5, 6, generator=g) * 300, torch.rand(1, 16, 7, 8, generator=g) * 200
    st = transforms.prepare_style(s, method="adain")
    a, b = transforms.adain_affine(c, st, strength=strength)
    want = transforms.adain(c, st, strength=strength)
    torch.testing.assert_close(a[:, :, None, None] * c + b[:, :, None, None], want, rtol=1e-5, atol=1e-3)
    stats = [content_statistics(c[1], covariance=False), content_statistics(c[0], covariance=False)]  # someone else's statistics: the smoothed path
    a, b = transforms.adain_affine(c, st, strength=strength, content_stats=stats)
    want = transforms.adain(c, st, strength=strength, content_stats=stats)
    torch.testing.assert_close(a[:, :, None, None] * c + b[:, :, None, None], want, rtol=1e-5, atol=1e-3)


def test_folded_adain_equals_the_plain_path_per_image_strengths(parts) -> None:
    """The fast variant folds AdaIN into its decoder's first layer; per-image strengths give each image its own
    map, as the generic path (decode the moved features) does."""
    from vidstyle.options import StyleImage
    from vidstyle.stylize import transforms
    from vidstyle.stylize.arbitrary import build_arbitrary_model

    model = build_arbitrary_model(styles=[StyleImage(path=str(parts["painting"]))], method="adain", fast=True,
                                  decoder=str(parts["student"]), style_statistics="student")
    net = model.net
    x = torch.rand(2, 3, 24, 36)
    strength = torch.tensor([1.0, 0.3])
    with torch.no_grad():
        got = net(x, strength)
        f = net.encoder(x)
        want = torch.cat([net.decoder(transforms.adain(f[i:i + 1], net.statistics, strength=float(v)), size=(24, 36))
                          for i, v in enumerate(strength)])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_style_statistics_from_the_student(parts) -> None:
    from vidstyle.nets.student import load_student
    from vidstyle.options import StyleImage
    from vidstyle.stylize.arbitrary import build_arbitrary_model
    from vidstyle.stylize.transforms import prepare_style

    model = build_arbitrary_model(styles=[StyleImage(path=str(parts["painting"]))], method="adain", fast=True,
                                  decoder=str(parts["student"]), style_statistics="student")  # no VGG weights needed
    with torch.no_grad():
        want = prepare_style(load_student(parts["student"]).encoder(_painting_tensor(parts["painting"])), method="adain")
    torch.testing.assert_close(model.net.statistics.mean, want.mean)
    torch.testing.assert_close(model.net.statistics.std, want.std)


def test_style_statistics_from_vgg(parts) -> None:
    from vidstyle.nets.decoder import VGGEncoder
    from vidstyle.options import StyleImage
    from vidstyle.stylize.arbitrary import build_arbitrary_model
    from vidstyle.stylize.transforms import prepare_style

    model = build_arbitrary_model(styles=[StyleImage(path=str(parts["painting"]))], method="adain", fast=True,
                                  decoder=str(parts["student"]), vgg_weights=str(parts["vgg"]), style_statistics="vgg")
    with torch.no_grad():
        want = prepare_style(VGGEncoder(weights=str(parts["vgg"]))(_painting_tensor(parts["painting"])), method="adain")
    torch.testing.assert_close(model.net.statistics.mean, want.mean)
    torch.testing.assert_close(model.net.statistics.std, want.std)
    other = write_fake_vgg(parts["vgg"].with_name("other.safetensors"), n_convs=5, seed=1, metadata={"convention": "caffe"})
    with pytest.raises(ModelError, match="was distilled from the VGG19 weights vgg.safetensors"):
        build_arbitrary_model(styles=[StyleImage(path=str(parts["painting"]))], method="adain", fast=True,
                              decoder=str(parts["student"]), vgg_weights=str(other), style_statistics="vgg")


def test_the_stabiliser_works_with_the_fast_variant(parts) -> None:
    """As with the other back ends: flow, network, stabiliser; the first frame is the network's output, later
    frames blend the warped previous output (so they differ from per-frame output)."""
    from vidstyle.flow.stage import FlowStage
    from vidstyle.stylize.feedforward import FeedForwardStage
    from vidstyle.stylize.stabilize import StabilizeStage

    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur((rng.random((48, 80, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    frames = [np.roll(base, 2 * t, axis=1) for t in range(3)]
    stages = _stages(parts, stabilize=0.85, flow="dis-ultrafast")
    assert [type(s) for s in stages] == [FlowStage, FeedForwardStage, StabilizeStage]
    # the arbitrary back end's resample crossfade (ARBITRARY_TEMPORAL) reaches the tracker; one given wins
    tracker = _stages(parts, stabilize=0.85, flow="dis-ultrafast", stabilizer="resample")[-1].stabilizer.tracker
    assert tracker.settings.crossfade == 0.85
    given = _stages(parts, stabilize=0.85, flow="dis-ultrafast", stabilizer="resample", resample_fade=0.3)
    assert given[-1].stabilizer.tracker.settings.crossfade == 0.3
    steady = _run(stages, frames)
    plain = _run(_stages(parts), frames)
    assert np.array_equal(steady[0], plain[0])
    assert all(np.abs(steady[t].astype(int) - plain[t]).mean() > 0.1 for t in (1, 2))


def test_fast_with_a_vgg_decoder_and_a_student_without_fast_are_one_line(parts) -> None:
    with pytest.raises(ModelError, match="dec.safetensors is a VGG decoder, not a student model: drop `fast`") as a:
        _stages(parts, decoder=str(parts["decoder"]))
    with pytest.raises(ModelError, match="student.safetensors is a student model .*: add `fast`") as b:
        _stages(parts, fast=False, vgg_weights=str(parts["vgg"]))
    assert a.value.parameter == "decoder" and b.value.parameter == "decoder"
