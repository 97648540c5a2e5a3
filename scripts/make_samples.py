#!/usr/bin/env python
"""Make the files in ``samples/``: a short clip with audio, and two procedural style images.

    pip install scikit-image      # only this script needs it (for its bundled CC0/public-domain photos)
    python scripts/make_samples.py [--out samples]

``samples/clip.mp4``: 640×360, 30 fps, 4.5 s, H.264 (yuv420p, BT.709) + AAC stereo. Three shots
of 1.5 s, each a slow camera move (pan + zoom, with a little hand-held sway) over a photo that
scikit-image ships: "coffee" (CC0, Rachel Michetti), "chelsea" (CC0, Stefan van der Walt) and
"astronaut" (NASA, public domain). The audio is synthetic: one chord per shot, each starting
exactly at its cut (1.5 s and 3.0 s), so the clip doubles as an audio/video sync check.

``samples/styles/``: two style images rendered from code here (no source images): a stained-glass
mosaic (Voronoi cells) and swirling brush strokes (a flow field); released with the project.

Everything is deterministic (fixed seeds).
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np

W, H, FPS = 640, 360, 30
SHOT_SECONDS = 1.5
RATE = 48000


# ----------------------------------------------------------------------------------- video
def _smooth(t: np.ndarray | float) -> np.ndarray | float:
    return t * t * (3 - 2 * t)


def _shots() -> list[dict]:
    from skimage import data

    return [
        # photo, start (cx, cy, scale), end (cx, cy, scale) in photo pixels / output px per photo px
        {"name": "coffee", "image": data.coffee(), "a": (300, 205, 1.08), "b": (330, 190, 1.45)},
        {"name": "chelsea", "image": data.chelsea(), "a": (290, 150, 1.50), "b": (195, 135, 1.62)},
        {"name": "astronaut", "image": data.astronaut(), "a": (250, 150, 2.0), "b": (250, 230, 1.28)},
    ]


def render_frames() -> list[np.ndarray]:
    import cv2

    frames = []
    per_shot = round(SHOT_SECONDS * FPS)
    for k, shot in enumerate(_shots()):
        img = shot["image"].astype(np.float32)
        h, w = img.shape[:2]
        for i in range(per_shot):
            t = _smooth(i / (per_shot - 1))
            cx, cy, s = (a + (b - a) * t for a, b in zip(shot["a"], shot["b"]))
            # hand-held sway: a fraction of a pixel to a few pixels, different per shot
            phase = 1.7 * k
            cx += 1.6 * np.sin(2 * np.pi * 0.7 * i / FPS + phase) / s
            cy += 1.2 * np.sin(2 * np.pi * 0.45 * i / FPS + 2 * phase) / s
            # keep the window inside the photo
            cx = float(np.clip(cx, W / (2 * s), w - W / (2 * s)))
            cy = float(np.clip(cy, H / (2 * s), h - H / (2 * s)))
            m = np.array([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]], dtype=np.float64)
            out = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            frames.append(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    return frames


# ----------------------------------------------------------------------------------- audio
def _note(freq: float, seconds: float, *, attack: float = 0.02, release: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(a * np.sin(2 * np.pi * freq * m * t) for m, a in ((1, 1.0), (2, 0.35), (3, 0.12)))
    env = np.minimum(1.0, t / attack) * np.exp(-1.2 * t)
    tail = np.clip((seconds - t) / release, 0, 1)
    return wave * env * tail


def render_audio(seconds: float) -> np.ndarray:
    """Stereo float32 (2 × samples): one chord per shot plus a soft arpeggio."""
    n = int(round(seconds * RATE))
    out = np.zeros((2, n))
    midi = lambda m: 440.0 * 2 ** ((m - 69) / 12)  # noqa: E731
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60, 65)]  # C major, A minor, F major
    for k, chord in enumerate(chords):
        start = int(round(k * SHOT_SECONDS * RATE))
        for j, m in enumerate(chord):
            tone = _note(midi(m), SHOT_SECONDS) * 0.12
            pan = 0.3 + 0.4 * j / max(1, len(chord) - 1)
            seg = slice(start, start + len(tone))
            out[0, seg] += tone[: n - start] * (1 - pan)
            out[1, seg] += tone[: n - start] * pan
        for b in range(1, 6):  # arpeggio on the quarter beats after the chord
            m = chord[b % len(chord)] + 12
            at = start + int(round(b * 0.25 * RATE))
            tone = _note(midi(m), 0.22, attack=0.005, release=0.08) * 0.06
            end = min(n, at + len(tone))
            out[:, at:end] += tone[: end - at]
    return np.clip(out, -1, 1).astype(np.float32)


def write_clip(path: Path) -> None:
    import av

    frames = render_frames()
    seconds = len(frames) / FPS
    audio = render_audio(seconds)
    with av.open(str(path), "w", container_options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=FPS, options={"crf": "21", "preset": "slow", "tune": "film"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        cc = vs.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709
        cc.color_range = 1
        vs.metadata["title"] = "vidstyle sample: coffee, chelsea, astronaut (scikit-image data)"
        aus = out.add_stream("aac", rate=RATE, layout="stereo")
        aus.bit_rate = 128_000
        from av.video.reformatter import ColorRange, Colorspace

        # audio and video interleaved as we go (the muxer also interleaves)
        chunk = 1024
        a_pos = 0
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            for p in vs.encode(vf):
                out.mux(p)
            while a_pos < audio.shape[1] and a_pos / RATE <= (i + 1) / FPS:
                block = np.ascontiguousarray(audio[:, a_pos : a_pos + chunk])
                af = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                af.sample_rate = RATE
                af.pts = a_pos
                af.time_base = Fraction(1, RATE)
                for p in aus.encode(af):
                    out.mux(p)
                a_pos += chunk
        for p in vs.encode(None):
            out.mux(p)
        for p in aus.encode(None):
            out.mux(p)


# ----------------------------------------------------------------------------------- styles
def stained_glass(size: int = 512, cells: int = 140, seed: int = 7) -> np.ndarray:
    """Voronoi cells in saturated glass colours, dark lead lines, a little grain."""
    import cv2

    rng = np.random.default_rng(seed)
    pts = rng.random((cells, 2)) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.full((size, size), np.inf, np.float32)
    d2 = np.full((size, size), np.inf, np.float32)
    label = np.zeros((size, size), np.int32)
    for k, (px, py) in enumerate(pts):
        dist = (xx - px) ** 2 + (yy - py) ** 2
        closer = dist < d
        d2 = np.where(closer, d, np.minimum(d2, dist))
        label = np.where(closer, k, label)
        d = np.where(closer, dist, d)
    palette_h = rng.choice([0, 15, 35, 55, 100, 120, 200, 220, 270, 300], size=cells).astype(np.float32)
    hsv = np.stack([palette_h / 2, rng.uniform(150, 255, cells), rng.uniform(120, 240, cells)], axis=1).astype(
        np.uint8
    )[None]
    rgb_palette = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32)
    img = rgb_palette[label]
    # brighter toward each cell's centre, like light through glass
    img *= (0.75 + 0.25 * np.exp(-d / (0.02 * size * size)))[..., None]
    edge = np.sqrt(d2) - np.sqrt(d)  # distance to the nearest border
    lead = np.clip((edge - 1.5) / 2.0, 0, 1)[..., None]
    img = img * lead + 25 * (1 - lead)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def swirls(size: int = 512, seed: int = 3) -> np.ndarray:
    """Short curved brush strokes following a swirling flow field, in night-sky blues and yellows."""
    import cv2

    rng = np.random.default_rng(seed)
    # smooth random angle field from a few vortices
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = np.zeros((size, size), np.float32)
    for _ in range(7):
        cx, cy = rng.random(2) * size
        strength = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0)
        w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.22 * size) ** 2))
        angle += strength * w * (np.arctan2(yy - cy, xx - cx) + np.pi / 2)
    angle += 0.3 * np.sin(xx / size * 6) + 0.3 * np.cos(yy / size * 5)
    base = np.stack([30 + 60 * yy / size, 50 + 70 * yy / size, 120 + 90 * (1 - yy / size)], -1)
    canvas = base.astype(np.float32).copy()
    colours = np.array(
        [[250, 215, 80], [240, 240, 200], [70, 110, 200], [30, 60, 150], [120, 170, 230], [255, 180, 40]], np.float32
    )
    for _ in range(5200):
        x, y = rng.random(2) * (size - 1)
        col = colours[rng.integers(len(colours))] * rng.uniform(0.8, 1.1)
        pts = []
        for _ in range(int(rng.integers(6, 14))):
            pts.append((x, y))
            a = angle[int(y), int(x)]
            x = float(np.clip(x + 3.0 * np.cos(a), 0, size - 1))
            y = float(np.clip(y + 3.0 * np.sin(a), 0, size - 1))
        cv2.polylines(canvas, [np.array(pts, np.int32)], False, col.tolist(), int(rng.integers(2, 5)), cv2.LINE_AA)
    canvas += rng.normal(0, 4, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    args = ap.parse_args()
    import cv2

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "styles").mkdir(exist_ok=True)
    write_clip(args.out / "clip.mp4")
    cv2.imwrite(
        str(args.out / "styles" / "stained_glass.jpg"),
        cv2.cvtColor(stained_glass(), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 92],
    )
    cv2.imwrite(
        str(args.out / "styles" / "swirls.jpg"),
        cv2.cvtColor(swirls(), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 92],
    )
    for p in sorted(args.out.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(args.out)}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
