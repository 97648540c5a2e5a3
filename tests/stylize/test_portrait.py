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


def _drawn_face(h: int, w: int, box: FaceBox, *, eyes_dx: float = 0.0, eyes_dy: float = 0.0, mouth_dy: float = 0.0,
                skin: tuple[float, float, float] = (0.85, 0.65, 0.5), seed: int = 0) -> np.ndarray:
    """A face-like picture: a skin ellipse filling ``box``, two eyes, brows, a nose and a mouth placed
    relative to the box (features moved by ``eyes_*``/``mouth_dy`` pixels), on a textured background."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.ascontiguousarray(np.broadcast_to(np.linspace(0.3, 0.6, w, dtype=np.float32)[None, :, None], (h, w, 3)))
    img = np.clip(img + cv2.GaussianBlur(rng.normal(0, 0.08, (h, w, 3)).astype(np.float32), (0, 0), 2), 0, 1)
    cx, cy = box.center
    cv2.ellipse(img, (round(cx), round(cy)), (box.w // 2, box.h // 2), 0, 0, 360, skin, -1, cv2.LINE_AA)
    for side in (-1, 1):
        ex, ey = cx + side * (0.2 * box.w + eyes_dx), cy - 0.12 * box.h + eyes_dy
        cv2.ellipse(img, (round(ex), round(ey)), (round(0.09 * box.w), round(0.05 * box.h)), 0, 0, 360,
                    (0.1, 0.1, 0.12), -1, cv2.LINE_AA)
        cv2.line(img, (round(ex - 0.1 * box.w), round(ey - 0.1 * box.h)), (round(ex + 0.1 * box.w), round(ey - 0.12 * box.h)),
                 (0.2, 0.12, 0.08), max(1, box.w // 40), cv2.LINE_AA)
    cv2.line(img, (round(cx), round(cy - 0.02 * box.h)), (round(cx + 0.03 * box.w), round(cy + 0.12 * box.h)),
             (0.45, 0.3, 0.25), max(1, box.w // 50), cv2.LINE_AA)
    cv2.ellipse(img, (round(cx), round(cy + 0.27 * box.h + mouth_dy)), (round(0.16 * box.w), round(0.04 * box.h)),
                0, 0, 360, (0.55, 0.1, 0.12), -1, cv2.LINE_AA)
    return np.clip(img, 0, 1).astype(np.float32)


def test_flow_refinement_lines_up_the_features_the_boxes_miss():
    """The painting's face is another size and place (the box alignment fixes that) and its eyes sit
    wider and higher and its mouth lower inside the box (which no box alignment can fix); the flow
    refinement brings the features onto the photo's: the alignment error inside the face falls
    clearly below the box-only one, and the background far from the face is left as the boxes put it."""
    from vidstyle.stylize.portrait import alignment_error, refine_with_flow

    h, w = 200, 240
    face_c = FaceBox(70, 40, 100, 120)
    content = _drawn_face(h, w, face_c, seed=1)
    face_s = FaceBox(40, 30, 80, 96)  # smaller, elsewhere; features displaced by up to 8 px (photo scale)
    painting = _drawn_face(170, 200, face_s, eyes_dx=5, eyes_dy=-5, mouth_dy=6, skin=(0.7, 0.75, 0.9), seed=2)
    painting = np.clip(painting * 0.8 + 0.1, 0, 1)  # another palette and contrast, as a painting has
    affine = align_to_face(painting, face_s, face_c, (h, w))
    refined, flow = refine_with_flow(affine, content, face_c)
    before, after = alignment_error(affine, content, face_c), alignment_error(refined, content, face_c)
    assert after < 0.8 * before, (before, after)
    mag = np.sqrt((flow ** 2).sum(0))
    assert mag[face_c.y:face_c.y + face_c.h, face_c.x:face_c.x + face_c.w].max() > 2
    assert mag[:, :15].max() < 0.5 and np.abs(refined[:, :5] - affine[:, :5]).max() < 0.02
    assert mag.max() <= face_c.w / 4 + 1e-3  # limited to a quarter of the face's width


def test_plan_portrait_refines_by_default_and_keeps_the_box_alignment_on_request():
    face = hopper()
    painting = face[60:, 90:][::2, ::2].copy()
    plain = plan_portrait(face, painting, refine=False)
    refined = plan_portrait(face, painting)
    assert plain.flow is None and np.array_equal(plain.aligned, plain.affine)
    assert refined.flow is not None and refined.flow.shape == (2, *face.shape[:2])
    np.testing.assert_array_equal(refined.affine, plain.aligned)
    assert not np.array_equal(refined.aligned, refined.affine)
