"""Portrait style transfer (Selim, Elgharib & Doyle 2016): faces found, the painting aligned to the
photo, and the gain-map content term (:mod:`vidstyle.losses.gain`).

* **Faces**: OpenCV's Haar cascade (Viola & Jones) that ships inside opencv-python
  (``cv2.data.haarcascades``, ``haarcascade_frontalface_alt2.xml``), on the grey picture; the largest
  face counts. Haar cascades find frontal faces; profiles, strongly tilted or painted faces may be missed.
* **Alignment**: the similarity transform (scale and shift, no rotation) that maps the painting's face
  box onto the photo's; the painting is resampled onto the photo's frame (reflected at the borders).
  Then, as Selim et al. do with SIFT flow, a **dense flow refines it** (:func:`refine_with_flow`): DIS
  flow (:mod:`vidstyle.flow`) from the photo to the aligned painting, on both pictures' locally
  normalised luminance (a painting and a photo differ in brightness and contrast, not in where the
  eyes are), smoothed, limited to a quarter of the face's width and faded out away from the face, so
  the eyes, nose and mouth of the painting land on the photo's. The gain map is taken from the result.
* **No face**: a note and a plain stylisation, or with ``strict`` an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidstyle.options.spec import OptionValueError

__all__ = ["CASCADE", "FaceBox", "PortraitPlan", "align_to_face", "alignment_error", "detect_faces", "plan_portrait",
           "refine_with_flow", "similarity"]

#: the cascade file inside cv2.data.haarcascades
CASCADE = "haarcascade_frontalface_alt2.xml"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face's box in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0


@dataclass(frozen=True)
class PortraitPlan:
    """What :func:`plan_portrait` found: the painting aligned to the photo's frame (``None`` without
    faces; refined by flow unless ``refine=False``), the two face boxes, a note for the user when the
    portrait mode was dropped, and the box-only alignment and the refining flow (``2×H×W``) for
    inspection."""

    aligned: np.ndarray | None
    content_face: FaceBox | None
    style_face: FaceBox | None
    note: str | None = None
    affine: np.ndarray | None = None
    flow: np.ndarray | None = None


def _grey_u8(image: np.ndarray) -> np.ndarray:
    from vidstyle.colour import luma
    from vidstyle.frame import to_float32

    arr = np.asarray(image)
    f = to_float32(arr if arr.ndim == 3 else arr[..., None].repeat(3, axis=2))
    return (np.clip(luma(f[..., :3]), 0, 1) * 255 + 0.5).astype(np.uint8)


def detect_faces(image: np.ndarray, *, min_fraction: float = 0.1) -> list[FaceBox]:
    """Frontal faces of an ``H×W×3`` picture, largest first (boxes at least ``min_fraction`` of the
    shorter side)."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if cascade.empty():  # pragma: no cover - a broken OpenCV install
        raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded from {cv2.data.haarcascades}")
    grey = _grey_u8(image)
    side = max(24, int(min_fraction * min(grey.shape)))
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    boxes = [FaceBox(int(x), int(y), int(w), int(h)) for x, y, w, h in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: -b.w * b.h)


def similarity(src: FaceBox, dst: FaceBox) -> np.ndarray:
    """The 2×3 matrix of ``p ↦ s·p + t`` that maps box ``src`` onto ``dst`` (centres coincide, ``s``
    the ratio of the boxes' geometric-mean sides)."""
    s = float(np.sqrt((dst.w * dst.h) / (src.w * src.h)))
    (cx, cy), (dx, dy) = src.center, dst.center
    return np.array([[s, 0.0, dx - s * cx], [0.0, s, dy - s * cy]], np.float64)


def align_to_face(style: np.ndarray, style_face: FaceBox, content_face: FaceBox,
                  size: tuple[int, int]) -> np.ndarray:
    """The painting resampled onto a frame of ``size`` = (h, w) so that its face box lies on the
    content's (float32, 0..1)."""
    import cv2

    from vidstyle.frame import to_float32

    m = similarity(style_face, content_face)
    interp = cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_CUBIC
    out = cv2.warpAffine(to_float32(np.asarray(style)), m, (size[1], size[0]), flags=interp,
                         borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _normalised_grey(image: np.ndarray, sigma: float) -> np.ndarray:
    """Luminance with its local mean removed and local contrast divided out (Gaussian windows of
    ``sigma``), mapped to 8 bits: what a painting and a photo of a face share is where the edges are."""
    import cv2

    g = _grey_u8(image).astype(np.float32) / 255.0
    mean = cv2.GaussianBlur(g, (0, 0), sigma)
    var = cv2.GaussianBlur((g - mean) ** 2, (0, 0), sigma)
    z = (g - mean) / np.sqrt(var + 1e-4)
    return np.clip(z * 40.0 + 128.0, 0, 255).astype(np.uint8)


def _face_window(face: FaceBox, size: tuple[int, int]) -> np.ndarray:
    """1 on the face box grown by half its size, fading to 0 over a quarter of its width outside."""
    import cv2

    h, w = size
    win = np.zeros((h, w), np.float32)
    cx, cy = face.center
    x0, x1 = int(cx - 0.75 * face.w), int(cx + 0.75 * face.w)
    y0, y1 = int(cy - 0.75 * face.h), int(cy + 0.75 * face.h)
    win[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 1.0
    return np.clip(cv2.GaussianBlur(win, (0, 0), max(1.0, face.w / 8)), 0.0, 1.0)


def refine_with_flow(aligned: np.ndarray, content: np.ndarray, face: FaceBox, *,
                     estimator: str = "dis-medium") -> tuple[np.ndarray, np.ndarray]:
    """The box-aligned painting warped so that its face's features land on the photo's:
    ``(refined, flow)``, ``refined(x) = aligned(x + flow(x))``.

    The flow is DIS (``estimator``) from the photo to the aligned painting, both as locally normalised
    luminance (:func:`_normalised_grey`, windows of an eighth of the face's width); then smoothed (a
    Gaussian of a tenth of the face's width: a face deforms smoothly), its vectors limited to a quarter
    of the face's width, and faded out away from the face (``face``, the photo's box): the background
    keeps the box alignment. ``aligned`` and ``content`` have one size; ``refined`` is float32 in [0, 1].
    """
    import cv2

    from vidstyle.flow.estimators import make_flow_estimator
    from vidstyle.flow.warping import warp_numpy
    from vidstyle.frame import to_float32

    h, w = content.shape[:2]
    if aligned.shape[:2] != (h, w):
        raise ValueError(f"refine_with_flow: aligned {aligned.shape[:2]} and content {(h, w)} differ in size")
    sigma = max(1.0, face.w / 8)
    flow = make_flow_estimator(estimator)(_normalised_grey(content, sigma), _normalised_grey(aligned, sigma))
    flow = np.stack([cv2.GaussianBlur(f, (0, 0), max(1.0, face.w / 10)) for f in flow])
    limit = face.w / 4
    norm = np.sqrt((flow ** 2).sum(0))
    flow = flow * np.minimum(1.0, limit / np.maximum(norm, 1e-6))[None]
    flow = (flow * _face_window(face, (h, w))[None]).astype(np.float32)
    refined = warp_numpy(to_float32(np.asarray(aligned)), flow)
    return np.clip(refined, 0.0, 1.0).astype(np.float32), flow


def alignment_error(a: np.ndarray, b: np.ndarray, face: FaceBox) -> float:
    """Mean absolute difference of the two pictures' locally normalised luminance (0..1 units of its
    8-bit code) inside the face box: how well their features line up, whatever their colours."""
    sigma = max(1.0, face.w / 8)
    za = _normalised_grey(a, sigma).astype(np.float32) / 255
    zb = _normalised_grey(b, sigma).astype(np.float32) / 255
    ys, xs = slice(max(0, face.y), face.y + face.h), slice(max(0, face.x), face.x + face.w)
    return float(np.abs(za[ys, xs] - zb[ys, xs]).mean())


def plan_portrait(content: np.ndarray, style: np.ndarray, *, strict: bool = False, refine: bool = True) -> PortraitPlan:
    """Find the faces and align the painting to the photo (box similarity, then with ``refine`` the
    dense-flow refinement :func:`refine_with_flow`).

    Raises:
        OptionValueError: (``portrait``) a picture without a face, with ``strict``.
    """
    faces_c, faces_s = detect_faces(content), detect_faces(style)
    if not faces_c or not faces_s:
        where = "the content picture" if not faces_c else "the style image"
        if strict:
            raise OptionValueError("portrait", f"portrait: no face found in {where} (OpenCV's frontal-face Haar "
                                               "cascade); give a frontal face, or drop `portrait_strict` for a plain "
                                               "stylisation", also=("portrait_strict",))
        return PortraitPlan(aligned=None, content_face=faces_c[0] if faces_c else None,
                            style_face=faces_s[0] if faces_s else None,
                            note=f"no face found in {where}: stylised without the portrait gain map")
    affine = align_to_face(style, faces_s[0], faces_c[0], content.shape[:2])
    if not refine:
        return PortraitPlan(aligned=affine, content_face=faces_c[0], style_face=faces_s[0], affine=affine)
    refined, flow = refine_with_flow(affine, content, faces_c[0])
    return PortraitPlan(aligned=refined, content_face=faces_c[0], style_face=faces_s[0], affine=affine, flow=flow)
