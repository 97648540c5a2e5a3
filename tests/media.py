"""Tiny test media made with PyAV and numpy, for any test of the project.

Import it from a test with ``from media import make_video, frame_id, probe`` (the ``tests/io``
conftest puts ``tests/`` on ``sys.path``; other test folders can do the same in their conftest:
``sys.path.insert(0, str(Path(__file__).resolve().parents[1]))``).

Every frame made here carries its index as an 8-bit barcode of 8×8 blocks on its top row
(:func:`frame_id` reads it back after lossy coding), over a smooth gradient with a moving square.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["frame_image", "frame_id", "make_video", "make_audio_only", "make_images", "probe", "audio_onsets"]

_BLOCK = 8


def frame_image(index: int, width: int = 64, height: int = 48, *, dtype: Any = np.uint8) -> np.ndarray:
    """Frame ``index`` of the test pattern, ``H×W×3`` RGB of ``dtype`` (uint8, uint16, float32).

    Needs ``width ≥ 64`` for all 8 bits of the barcode (fewer bits otherwise) and ``height ≥ 8``.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack(
        [
            40 + 150 * xx / max(width - 1, 1),
            40 + 150 * yy / max(height - 1, 1),
            40 + 75 * (xx + yy) / max(width + height - 2, 1) + 20 * np.sin(index * 0.3),
        ],
        axis=-1,
    )
    # a moving square
    s = max(4, min(width, height) // 5)
    x0 = (index * 3) % max(1, width - s)
    y0 = _BLOCK + (index * 2) % max(1, height - s - _BLOCK)
    img[y0 : y0 + s, x0 : x0 + s] = (220, 60, 60)
    # the barcode
    for bit in range(min(8, width // _BLOCK)):
        img[:_BLOCK, bit * _BLOCK : (bit + 1) * _BLOCK] = 235.0 if (index >> bit) & 1 else 16.0
    img /= 255.0
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.round(img * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(img * 65535).astype(np.uint16)
    return img.astype(dtype)


def frame_id(image: np.ndarray) -> int:
    """Read back the index written by :func:`frame_image` (works after lossy coding)."""
    scale = 255.0 if image.dtype == np.uint8 else 65535.0 if image.dtype == np.uint16 else 1.0
    bits = min(8, image.shape[1] // _BLOCK)
    value = 0
    for bit in range(bits):
        block = image[2 : _BLOCK - 2, bit * _BLOCK + 2 : (bit + 1) * _BLOCK - 2].astype(np.float64) / scale
        if block.mean() > 0.5:
            value |= 1 << bit
    return value


def _tone(t: np.ndarray, freq: float, bursts: list[tuple[float, float]] | None) -> np.ndarray:
    wave = 0.3 * np.sin(2 * np.pi * freq * t)
    if bursts is not None:
        gate = np.zeros_like(t)
        for a, b in bursts:
            gate[(t >= a) & (t < b)] = 1.0
        wave = wave * gate
    return wave


def make_video(
    path: str | Path,
    *,
    frames: int = 24,
    width: int = 64,
    height: int = 48,
    fps: int | Fraction = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: int = 0,
    audio_codec: str = "aac",
    audio_rate: int = 48000,
    audio_seconds: float | None = None,
    bursts: list[tuple[float, float]] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    high_bit: bool | None = None,
    colour_tags: tuple[int, int, int] | None = None,
) -> Path:
    """Write a test video. ``pts`` (in ``time_base`` units) makes it variable-frame-rate;
    ``audio`` adds that many sine-tone audio streams (440, 660, ... Hz) lasting the video's
    duration (or ``audio_seconds``), gated to ``bursts`` ``[(start_s, end_s), ...]`` if given;
    ``rotation`` writes a display matrix (counter-clockwise degrees, PyAV's convention);
    ``colour_tags`` = (primaries, transfer, matrix) tags the stream and its frames (H.273 codes)."""
    import av

    path = Path(path)
    fps = Fraction(fps)
    tb = time_base or (1 / fps)
    if pts is None:
        pts = [round(i / fps / tb) for i in range(frames)]
    assert len(pts) == frames
    out = av.open(str(path), "w", container_options=container_options or {})
    vs = out.add_stream(codec, rate=fps, options=options or {})
    vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
    vs.time_base = tb
    vs.codec_context.time_base = tb
    if rotation is not None:
        vs.set_display_rotation(rotation)
    if colour_tags is not None:
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace = colour_tags
    a_streams = []
    for k in range(audio):
        a = out.add_stream(audio_codec, rate=audio_rate, layout="stereo" if k == 0 else "mono")
        a_streams.append(a)
    if high_bit is None:
        high_bit = max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
    end_time = float((pts[-1] + round(1 / fps / tb)) * tb)
    # audio first (all of it is small), then video: the muxer interleaves
    for k, a in enumerate(a_streams):
        seconds = audio_seconds if audio_seconds is not None else end_time
        n = int(round(seconds * audio_rate))
        t = np.arange(n) / audio_rate
        wave = _tone(t, 440.0 * (1 + 0.5 * k), bursts).astype(np.float32)
        channels = 2 if k == 0 else 1
        chunk = 1024
        for i in range(0, n, chunk):
            block = np.repeat(wave[None, i : i + chunk], channels, axis=0)
            fmt = "fltp"
            if audio_codec.startswith("pcm_s16"):
                block = np.round(block * 32767).astype(np.int16).T.reshape(1, -1)
                fmt = "s16"
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block), format=fmt, layout="stereo" if channels == 2 else "mono"
            )
            af.sample_rate = audio_rate
            af.pts = i
            af.time_base = Fraction(1, audio_rate)
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    for i, p_ in enumerate(pts):
        img = frame_image(i, width, height, dtype=np.uint16 if high_bit else np.uint8)
        vf = av.VideoFrame.from_ndarray(img, format="rgb48le" if high_bit else "rgb24")
        if colour_tags is not None:
            vf = vf.reformat(format=pix_fmt)
            vf.color_primaries, vf.color_trc, vf.colorspace = colour_tags
        vf.pts = p_
        vf.time_base = tb
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    return path


def make_audio_only(path: str | Path, *, seconds: float = 0.5) -> Path:
    import av

    path = Path(path)
    out = av.open(str(path), "w")
    a = out.add_stream("aac", rate=48000, layout="mono")
    n = int(seconds * 48000)
    wave = (0.2 * np.sin(np.arange(n) / 48000 * 2 * np.pi * 440)).astype(np.float32)[None]
    af = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
    af.sample_rate = 48000
    af.pts = 0
    for p in a.encode(af):
        out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()
    return path


def make_images(
    folder: str | Path,
    *,
    pattern: str = "%04d.png",
    numbers: range | list[int] = range(1, 6),
    width: int = 64,
    height: int = 48,
    dtype: Any = np.uint8,
) -> list[Path]:
    """Write frames ``frame_image(number)`` as image files named by ``pattern % number``."""
    from vidstyle.io import write_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in numbers:
        p = folder / (pattern % n)
        write_image(p, frame_image(n, width, height, dtype=dtype))
        paths.append(p)
    return paths


def probe(path: str | Path) -> dict[str, Any]:
    """Decode a whole file: video frame count, pts, time base, average rate, size, pixel format,
    duration (first pts to last pts + one frame), and per audio stream its codec and decoded
    duration in seconds."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = Fraction(vs.time_base)
        pts = []
        size = None
        fmt = None
        for fr in c.decode(vs):
            pts.append(fr.pts)
            size = (fr.width, fr.height)
            fmt = fr.format.name
        fps = Fraction(vs.average_rate) if vs.average_rate else None
    audio = []
    with av.open(str(path)) as c:
        for s in c.streams.audio:
            samples = 0
            first = None
            for fr in c.decode(s):
                if first is None and fr.pts is not None:
                    first = float(fr.pts * fr.time_base)
                samples += fr.samples
            audio.append(
                {
                    "codec": s.codec_context.name,
                    "duration": samples / s.codec_context.sample_rate,
                    "start": first or 0.0,
                }
            )
            c.seek(0)
    frame_dur = float(1 / fps) if fps else 0.0
    duration = float((pts[-1] - pts[0]) * tb) + frame_dur if pts else 0.0
    return {
        "frames": len(pts),
        "pts": pts,
        "time_base": tb,
        "fps": fps,
        "size": size,
        "pix_fmt": fmt,
        "duration": duration,
        "audio": audio,
    }


def audio_onsets(path: str | Path, *, stream: int = 0, threshold: float = 0.05) -> list[float]:
    """Times (seconds, output timeline) where the audio of ``stream`` goes from silent to loud
    (10 ms resolution)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[stream]
        chunks = []
        start = None
        for fr in c.decode(s):
            if start is None:
                start = float(fr.pts * fr.time_base) if fr.pts is not None else 0.0
            arr = np.abs(fr.to_ndarray().astype(np.float64))
            if fr.format.is_planar:
                chunks.append(arr.max(axis=0))
            else:
                chunks.append(arr.reshape(-1, len(fr.layout.channels)).max(axis=1))
        rate = s.codec_context.sample_rate
    env = np.concatenate(chunks)
    if env.max() > 2:  # integer samples
        env = env / 32768.0
    hop = rate // 100
    loud = np.array([env[i : i + hop].max() > threshold for i in range(0, len(env), hop)])
    onsets = [i for i in range(len(loud)) if loud[i] and (i == 0 or not loud[i - 1])]
    return [(start or 0.0) + i * hop / rate for i in onsets]
