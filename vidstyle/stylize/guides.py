"""Guidance images of the optimisation back end: semantic maps (doodles) and region mattes.

* **Semantic maps** (Champandard 2016): a map is a picture painted in a few flat colours, one per
  label (sky, tree, face…), for the painting (``style_map``) and for the content (``content_map``).
  :func:`map_labels` turns them into one-hot label masks: the painting's map defines the labels (its
  colours that cover at least ``min_share`` of it, each channel rounded to 16 levels, so JPEG noise
  and anti-aliased edges do not create labels), and every pixel of either map takes the label of the
  nearest label colour (colours within ``tolerance / 2`` of a more frequent one are merged into it).
  A content colour (covering ``min_share`` of the content map) farther than
  ``tolerance`` from every label is a label the painting's map does not have: one clear error.
* **Mattes**: :func:`matte_of` turns a matte image into a float H×W in [0, 1] (its luminance when it is
  in colour), resized to the output's size.
"""

from __future__ import annotations

import numpy as np

from vidstyle.errors import InvalidInputError

__all__ = ["map_labels", "matte_of"]


def _to_unit(image: np.ndarray) -> np.ndarray:
    from vidstyle.frame import to_float32

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None].repeat(3, axis=2)
    return np.clip(to_float32(arr[..., :3]), 0.0, 1.0)


def _hex(colour: np.ndarray) -> str:
    r, g, b = (int(round(float(v) * 255)) for v in colour)
    return f"#{r:02x}{g:02x}{b:02x}"


def _clusters(quant: np.ndarray, *, min_share: float, merge: float) -> np.ndarray:
    """The main colours of quantised pixels: the most frequent first, each absorbing the colours
    within ``merge`` of it (noise splits a flat colour over neighbouring bins); those covering at
    least ``min_share`` of the pixels are the labels (count-weighted mean colour)."""
    colours, counts = np.unique(quant, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    colours, counts = colours[order], counts[order]
    taken = np.zeros(len(colours), bool)
    labels = []
    for i in range(len(colours)):
        if taken[i]:
            continue
        near = (~taken) & (np.sqrt(((colours - colours[i]) ** 2).sum(1)) <= merge)
        taken |= near
        total = counts[near].sum()
        if total >= min_share * quant.shape[0] or not labels:
            labels.append((colours[near] * counts[near, None]).sum(0) / total)
    return np.asarray(labels, np.float32)


def map_labels(style_maps: list[np.ndarray], content_map: np.ndarray, *, min_share: float = 0.005,
               tolerance: float = 0.2) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One-hot label masks of the painting maps and of the content map.

    Returns ``(style_masks, content_mask, colours)``: K×H×W float32 arrays (each map at its own size)
    and the K label colours (K×3 in 0..1).

    Raises:
        InvalidInputError: the content map has a colour that no painting map has.
    """
    style = [_to_unit(m) for m in style_maps]
    content = _to_unit(content_map)
    quant = np.concatenate([np.round(s.reshape(-1, 3) * 15) / 15 for s in style])
    colours = _clusters(quant, min_share=min_share, merge=tolerance / 2)

    def nearest(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = image.reshape(-1, 3)
        d = ((px[:, None, :] - colours[None].astype(np.float32)) ** 2).sum(2)
        return d.argmin(1), np.sqrt(d.min(1))

    cq = np.round(content.reshape(-1, 3) * 15) / 15
    c_colours, c_counts = np.unique(cq, axis=0, return_counts=True)
    main = c_colours[c_counts >= min_share * cq.shape[0]]
    _, dist = nearest(main.reshape(1, -1, 3)) if len(main) else (None, np.zeros(0))
    missing = main[dist > tolerance]
    if len(missing):
        raise InvalidInputError(
            f"the content map has colour{'s' if len(missing) > 1 else ''} {', '.join(_hex(c) for c in missing[:4])} "
            f"that the style map does not (its labels: {', '.join(_hex(c) for c in colours[:8])}); paint both maps "
            "with the same colours")

    def one_hot(image: np.ndarray) -> np.ndarray:
        idx, _ = nearest(image)
        h, w = image.shape[:2]
        out = np.zeros((len(colours), h * w), np.float32)
        out[idx, np.arange(h * w)] = 1.0
        return out.reshape(len(colours), h, w)

    return [one_hot(s) for s in style], one_hot(content), colours.astype(np.float32)


def matte_of(image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """A matte picture as float32 H×W in [0, 1]: grey as it is, colour by its BT.601 luminance;
    resized (area or cubic) to ``size`` = (h, w) when given."""
    import cv2

    from vidstyle.colour import luma
    from vidstyle.frame import to_float32

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    f = to_float32(arr)
    m = f if f.ndim == 2 else luma(f[..., :3])
    m = np.clip(m.astype(np.float32), 0.0, 1.0)
    if size is not None and m.shape != tuple(size):
        interp = cv2.INTER_AREA if size[0] < m.shape[0] else cv2.INTER_CUBIC
        m = np.clip(cv2.resize(m, (size[1], size[0]), interpolation=interp), 0.0, 1.0)
    return m
