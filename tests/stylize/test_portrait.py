"""Portrait mode (Selim et al. 2016): Haar faces, box alignment, gain-map content loss, no-face handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidstyle.errors import InvalidOptionError
from vidstyle.losses import GainContentLoss
from vidstyle.stylize.optim import OptimConfig, StyleOptimizer
from vidstyle.stylize.portrait import FaceBox, align_to_face, detect_faces, plan_portrait, similarity

from test_optim import STATE, texture  # noqa: E402


def hopper() -> np.ndarray:
    """Grace Hopper's portrait (public domain, US Navy), a sample file matplotlib ships; skip without it."""
    mpl = pytest.importorskip("matplotlib.cbook")
    path = Path(mpl.get_sample_data("grace_hopper.jpg", asfileobj=False))
    if not path.is_file():
        pytest.skip("matplotlib's sample data are not installed")
    from vidstyle.io.imagefiles import read_image

    return read_image(path)


def test_finds_a_real_face_and_no_face_in_noise():
    faces = detect_faces(hopper())
    assert faces, "no face in Grace Hopper's portrait"
    f = faces[0]  # the face: about 240 px, centred near (265, 220) in the 512×600 picture
    assert 180 < f.w < 300 and abs(f.center[0] - 265) < 40 and abs(f.center[1] - 220) < 50
    assert detect_faces(texture(120, 160, 3)) == []


def test_similarity_maps_box_onto_box_and_alignment_moves_the_painting():
    src, dst = FaceBox(10, 20, 40, 40), FaceBox(60, 30, 20, 20)
    m = similarity(src, dst)
    for px, py, qx, qy in [(10, 20, 60, 30), (50, 60, 80, 50), (30, 40, 70, 40)]:
        np.testing.assert_allclose(m @ np.array([px, py, 1.0]), [qx, qy])
    style = np.zeros((100, 100, 3), np.float32)
    style[20:60, 10:50] = 1.0  # a white square on the style's face box
    out = align_to_face(style, src, dst, (80, 120))
    assert out.shape == (80, 120, 3)
    # the square lands on the content's box; beyond it (and beyond its reflection at the border) is black
    assert out[32:48, 62:78].min() > 0.9 and out[32:48, 82:118].max() < 0.1 and out[55:, 62:78].max() < 0.1


def test_plan_portrait_notes_or_refuses_without_a_face():
    face = hopper()
    noise = (texture(120, 160, 4) * 255).astype(np.uint8)
    plan = plan_portrait(noise, face)
    assert plan.aligned is None and plan.note == "no face found in the content picture: stylised without the portrait gain map"
    with pytest.raises(InvalidOptionError, match="portrait: no face found in the style image") as info:
        plan_portrait(face, noise, strict=True)
    assert info.value.parameter == "portrait"
    # the "painting": the same face cropped off-centre and at half the size
    import cv2

    painting = face[60:, 90:][::2, ::2].copy()
    plan = plan_portrait(face, painting)
    assert plan.aligned is not None and plan.aligned.shape == face.shape
    # the painting's face now lies on the photo's: found again there, where the stretched painting's is not
    target = detect_faces(face)[0]

    def offset(image: np.ndarray) -> float:
        found = detect_faces((np.clip(image, 0, 1) * 255).astype(np.uint8))[0]
        return float(np.hypot(found.center[0] - target.center[0], found.center[1] - target.center[1]))

    stretched = cv2.resize(painting, (face.shape[1], face.shape[0])).astype(np.float32) / 255
    assert offset(plan.aligned) < 12 and offset(stretched) > 40, (offset(plan.aligned), offset(stretched))


def test_gain_reference_makes_the_content_term_the_gain_map_loss():
    content = texture(32, 40, 1)
    painting = np.clip(texture(32, 40, 2) * 1.3, 0, 1).astype(np.float32)
    cfg = OptimConfig(iterations=1, scales=1, content_weight=2.0)
    opt = StyleOptimizer(styles=[painting], config=cfg, vgg=STATE, device="cpu", gain_reference=painting)
    assert opt.gain_layers == ("relu2_1", "relu3_1")
    c = torch.from_numpy(content).permute(2, 0, 1)[None]
    r = opt.optimize(c, init=c.clone(), iterations=1, style=opt.style_target((32, 40)))
    with torch.no_grad():
        fc = opt.vgg(c)
        fs = opt.vgg(torch.from_numpy(painting).permute(2, 0, 1)[None])
        expected = GainContentLoss(content_features={k: fc[k] for k in opt.gain_layers},
                                   style_features={k: fs[k] for k in opt.gain_layers})(fc)
    assert r.losses["content"] == pytest.approx(2.0 * float(expected), rel=1e-5)
    assert r.losses["content"] > 0  # the plain content loss would be 0 at the content itself
    plain = StyleOptimizer(styles=[painting], config=cfg, vgg=STATE, device="cpu")
    assert plain.optimize(c, init=c.clone(), iterations=1, style=plain.style_target((32, 40))).losses["content"] == 0
