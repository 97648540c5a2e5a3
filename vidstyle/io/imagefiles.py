"""Reading and writing single image files (PNG 8/16-bit, TIFF 8/16/32-bit, JPEG, EXR, and
whatever else OpenCV or FFmpeg decodes, e.g. DPX), and frame-number patterns.

This is the one home of image-file I/O in vidstyle: :func:`read_image`, :func:`write_image` and
:func:`write_image_atomic` (through a temporary name and a rename, never half written).

All images travel as ``H×W×3`` RGB arrays: ``uint8``, ``uint16`` (full 0..65535) or ``float32``.
EXR needs the ``OpenEXR`` package (``pip install vidstyle[exr]``); OpenCV's wheels have no EXR
codec.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidstyle.colour.spaces import ColourSpace
from vidstyle.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidOptionError,
    OutputError,
    UnsupportedFormatError,
)
from vidstyle.frame import from_float32, to_float32

__all__ = [
    "IMAGE_EXTS",
    "WRITABLE_EXTS",
    "SeqPattern",
    "parse_pattern",
    "read_image",
    "write_image",
    "write_image_atomic",
    "convert_depth",
    "default_bit_depth",
    "allowed_bit_depths",
    "image_bit_depth",
    "exr_is_half",
]

#: extensions read as image sequences (decoded by OpenCV, OpenEXR or FFmpeg)
IMAGE_EXTS = frozenset(
    {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".exr", ".bmp", ".webp", ".dpx", ".jp2", ".ppm", ".pgm", ".tga"}
)
#: extensions the image-sequence sink writes, with the bit depths each takes (32 = float)
_DEPTHS: dict[str, tuple[int, ...]] = {
    ".png": (8, 16),
    ".tif": (8, 16, 32),
    ".tiff": (8, 16, 32),
    ".exr": (16, 32),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".bmp": (8,),
    ".webp": (8,),
    ".ppm": (8, 16),
}
WRITABLE_EXTS = frozenset(_DEPTHS)

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+")


@dataclass(frozen=True, slots=True)
class SeqPattern:
    """A frame-number pattern ``folder/prefix<number>suffix``; ``width`` is the zero padding."""

    folder: Path
    prefix: str
    suffix: str
    width: int

    def path(self, number: int) -> Path:
        if number < 0:
            raise InvalidOptionError(f"frame number {number} is negative; image sequences need numbers ≥ 0")
        return self.folder / f"{self.prefix}{number:0{self.width}d}{self.suffix}"

    @property
    def regex(self) -> re.Pattern[str]:
        digits = rf"\d{{{self.width},}}" if self.width > 1 else r"\d+"
        return re.compile(re.escape(self.prefix) + f"({digits})" + re.escape(self.suffix) + "$")

    def existing(self) -> list[tuple[int, Path]]:
        """Files in :attr:`folder` matching the pattern, sorted by number."""
        if not self.folder.is_dir():
            return []
        rx = self.regex
        found = []
        with os.scandir(self.folder) as it:
            for entry in it:
                m = rx.match(entry.name)
                if m and entry.is_file():
                    found.append((int(m.group(1)), Path(entry.path)))
        found.sort()
        return found

    def __str__(self) -> str:
        return str(self.folder / f"{self.prefix}%0{self.width}d{self.suffix}")


def parse_pattern(spec: str | os.PathLike[str]) -> SeqPattern | None:
    """Parse a printf (``shot.%04d.png``) or hash (``shot.####.exr``) pattern in the file name.

    Returns ``None`` when the file name has no pattern.
    """
    path = Path(spec)
    name = path.name
    m = _PRINTF.search(name)
    if m is None:
        m = _HASHES.search(name)
        if m is None:
            return None
        width = len(m.group(0))
        width = width if width > 1 else 0
    else:
        width = int(m.group(2)) if m.group(2) else 0
    return SeqPattern(folder=path.parent, prefix=name[: m.start()], suffix=name[m.end() :], width=width)


def image_bit_depth(image: np.ndarray) -> int:
    """8 for uint8, 16 for uint16, 32 for float images."""
    if image.dtype == np.uint8:
        return 8
    if image.dtype == np.uint16:
        return 16
    if image.dtype.kind == "f":
        return 32
    raise UnsupportedFormatError(f"images of type {image.dtype} are not supported; use 8/16-bit integer or float")


def convert_depth(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Convert an RGB image to ``bit_depth`` (8 → uint8, 16 → uint16, 32 → float32), keeping
    the full range (uint8 ↔ uint16 by ×257, which round-trips exactly)."""
    src = image_bit_depth(image)
    if src == bit_depth:
        return image if bit_depth != 32 else image.astype(np.float32, copy=False)
    if src == 8 and bit_depth == 16:
        return image.astype(np.uint16) * np.uint16(257)
    if src == 16 and bit_depth == 8:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if bit_depth == 32:
        return to_float32(image)
    return from_float32(np.asarray(image, dtype=np.float32), np.uint8 if bit_depth == 8 else np.uint16)


def allowed_bit_depths(ext: str) -> tuple[int, ...]:
    try:
        return _DEPTHS[ext.lower()]
    except KeyError:
        raise InvalidOptionError(
            f"cannot write images of type '{ext}'; use one of {', '.join(sorted(WRITABLE_EXTS))}"
        ) from None


def default_bit_depth(ext: str, image_depth: int) -> int:
    """The bit depth an image of ``image_depth`` is written with as ``ext`` by default."""
    allowed = allowed_bit_depths(ext)
    if image_depth in allowed:
        return image_depth
    if ext.lower() == ".exr":
        return 16  # half float, the usual EXR depth
    return max(d for d in allowed if d <= 16)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] >= 3:
        img = img[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
    else:  # gray + alpha
        img = np.repeat(img[:, :, :1], 3, axis=2)
    if img.dtype.kind == "f":
        img = img.astype(np.float32, copy=False)
    elif img.dtype not in (np.uint8, np.uint16):
        raise UnsupportedFormatError(f"images of type {img.dtype} are not supported; use 8/16-bit or float images")
    return np.ascontiguousarray(img)


def _read_exr(path: Path) -> np.ndarray:
    try:
        import OpenEXR
    except ImportError:
        raise UnsupportedFormatError(
            f"reading EXR '{path}' needs the OpenEXR package; install it with: pip install 'vidstyle[exr]'"
        ) from None
    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            if "RGB" in channels:
                rgb = channels["RGB"].pixels
            elif "RGBA" in channels:
                rgb = channels["RGBA"].pixels[:, :, :3]
            elif all(c in channels for c in "RGB"):
                rgb = np.stack([channels[c].pixels for c in "RGB"], axis=2)
            elif "Y" in channels:
                rgb = np.repeat(channels["Y"].pixels[:, :, None], 3, axis=2)
            else:
                raise UnsupportedFormatError(
                    f"EXR '{path}' has no RGB or Y channels (it has {', '.join(sorted(channels))}); "
                    "write the beauty pass as R, G, B"
                )
    except UnsupportedFormatError:
        raise
    except Exception as e:  # OpenEXR raises plain RuntimeError/OSError
        raise CorruptInputError(f"cannot read EXR '{path}' ({e}); check the file is complete") from None
    return np.ascontiguousarray(rgb, dtype=np.float32)


def exr_is_half(path: str | os.PathLike[str]) -> bool:
    """The EXR file's colour channels are half floats (``False`` when it cannot be read)."""
    try:
        import OpenEXR

        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            for name in ("RGB", "RGBA", "R", "Y"):
                if name in channels:
                    return bool(channels[name].pixels.dtype == np.float16)
    except Exception:  # noqa: BLE001 - unreadable files fail later, with their own message
        return False
    return False


def _read_with_ffmpeg(path: Path) -> np.ndarray | None:
    import av

    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            for frame in c.decode(stream):
                bits = max((comp.bits for comp in frame.format.components), default=8)
                fmt = "rgb48le" if bits > 8 else "rgb24"
                return np.ascontiguousarray(frame.to_ndarray(format=fmt))
    except (av.error.FFmpegError, IndexError):
        return None
    return None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one image as ``H×W×3`` RGB (uint8, uint16 or float32); alpha is dropped, gray is
    replicated to RGB.

    Raises:
        InputNotFoundError: there is no file at ``path``.
        CorruptInputError: the file cannot be decoded.
        UnsupportedFormatError: EXR without the OpenEXR package, or an unusual sample type.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"image '{path}' does not exist; check the path")
    if path.suffix.lower() == ".exr":
        return _read_exr(path)
    data = np.fromfile(path, dtype=np.uint8)  # works for any file name on every platform
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        img = _read_with_ffmpeg(path) if data.size else None
        if img is None:
            what = "is empty" if not data.size else "is not a readable image"
            raise CorruptInputError(f"image '{path}' {what}; re-export it or remove it from the sequence")
        return img
    return _to_rgb(img)


def write_image(
    path: str | os.PathLike[str], image: np.ndarray, *, bit_depth: int | None = None, colour: ColourSpace | None = None
) -> None:
    """Write an RGB image. The format follows the extension; ``bit_depth`` (8, 16 or 32 = float;
    for EXR 16 = half, 32 = float) defaults to the image's own depth where the format takes it.
    ``colour``: the colour space the pixels are in, written into EXR headers (``chromaticities``,
    ``colorInteropID``, ``oiio:ColorSpace``); ``None`` writes no colour attributes.

    The file is written as given (callers wanting atomic replacement write to a temporary name
    and rename).
    """
    import cv2

    path = Path(path)
    ext = path.suffix.lower()
    depth = default_bit_depth(ext, image_bit_depth(image)) if bit_depth is None else bit_depth
    if depth not in allowed_bit_depths(ext):
        raise InvalidOptionError(
            f"{ext} images cannot be written with bit depth {depth}; "
            f"{ext} takes {', '.join(map(str, allowed_bit_depths(ext)))}"
            + ("; use .exr or .tif for float" if depth == 32 else "")
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidOptionError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if ext == ".exr":
        try:
            import OpenEXR
        except ImportError:
            raise UnsupportedFormatError(
                "writing EXR needs the OpenEXR package; install it with: pip install 'vidstyle[exr]'"
            ) from None
        pixels = convert_depth(image, 32)
        pixels = np.ascontiguousarray(pixels.astype(np.float16) if depth == 16 else pixels)
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        if colour is not None:
            header.update(colour.exr_attributes())
        OpenEXR.File(header, {"RGB": pixels}).write(str(path))
        return
    pixels = np.ascontiguousarray(convert_depth(image, depth)[:, :, ::-1])  # RGB -> BGR
    params: list[int] = []
    if ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    elif ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    ok, buf = cv2.imencode(ext, pixels, params)
    if not ok:
        raise UnsupportedFormatError(f"OpenCV cannot encode '{ext}' images of depth {depth}; try .png or .tif")
    buf.tofile(path)


def write_image_atomic(
    path: str | os.PathLike[str], image: np.ndarray, *, bit_depth: int | None = None,
    temp: str | os.PathLike[str] | None = None, colour: ColourSpace | None = None,
) -> Path:
    """:func:`write_image` under a temporary name in the same folder, then renamed to ``path``
    (``os.replace``): a file under the final name is always complete, and an existing one is
    replaced in one step. ``temp``: the temporary name (default ``name.partial.ext``, which the
    image-sequence reader skips). Returns ``path``.

    Raises:
        OutputError: the file cannot be written (disk full, no permission, folder missing).
        InvalidOptionError, UnsupportedFormatError: as :func:`write_image`.
    """
    from vidstyle.io.output import temp_path_for

    final = Path(path)
    tmp = Path(temp) if temp is not None else temp_path_for(final)
    try:
        write_image(tmp, image, bit_depth=bit_depth, colour=colour)
        os.replace(tmp, final)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write '{final}' ({e.strerror or e}); check the disk space and permissions"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final
