"""Portrait style transfer (Selim, Elgharib & Doyle 2016): faces found, the painting aligned to the
photo, and the gain-map content term (:mod:`vidstyle.losses.gain`).

* **Faces**: OpenCV's Haar cascade (Viola & Jones) that ships inside opencv-python
  (``cv2.data.haarcascades``, ``haarcascade_frontalface_alt2.xml``), on the grey picture; the largest
  face counts. Haar cascades find frontal faces; profiles, strongly tilted or painted faces may be missed.
* **Alignment**: the similarity transform (scale and shift, no rotation) that maps the painting's face
  box onto the photo's; the painting is resampled onto the photo's frame (reflected at the borders).
  Selim et al. refine this with a dense flow (SIFT flow); vidstyle does not (yet): the gain map is
  taken from the box-aligned painting.
* **No face**: a note and a plain stylisation, or with ``strict`` an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidstyle.options.spec import OptionValueError

__all__ = ["CASCADE", "FaceBox", "PortraitPlan", "align_to_face", "detect_faces", "plan_portrait", "similarity"]

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
    faces), the two face boxes, and a note for the user when the portrait mode was dropped."""

    aligned: np.ndarray | None
    content_face: FaceBox | None
    style_face: FaceBox | None
    note: str | None = None


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


def plan_portrait(content: np.ndarray, style: np.ndarray, *, strict: bool = False) -> PortraitPlan:
    """Find the faces and align the painting to the photo.

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
    aligned = align_to_face(style, faces_s[0], faces_c[0], content.shape[:2])
    return PortraitPlan(aligned=aligned, content_face=faces_c[0], style_face=faces_s[0])
