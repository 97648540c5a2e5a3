"""Output paths: what kind of sink a path asks for, its temporary name, and the early checks."""

from __future__ import annotations

import os
from pathlib import Path

from vidstyle.errors import InvalidOptionError, OutputError, OutputExistsError
from vidstyle.io.imagefiles import IMAGE_EXTS, WRITABLE_EXTS, SeqPattern, parse_pattern
from vidstyle.io.naming import with_parameter

__all__ = ["VIDEO_EXTS", "output_kind", "temp_path_for", "check_output", "image_output_pattern", "is_null",
           "refuse_existing_frames"]

#: video file extensions and the FFmpeg muxer each one uses
VIDEO_EXTS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}
_NULL = {"null:", "null", os.devnull}


def is_null(path: str | os.PathLike[str]) -> bool:
    return str(path) in _NULL


def output_kind(path: str | os.PathLike[str]) -> str:
    """``"null"``, ``"images"`` (a frame-number pattern or a folder) or ``"video"``.

    Raises:
        InvalidOptionError: the extension is neither a video container nor an image type.
    """
    text = str(path)
    if is_null(text):
        return "null"
    p = Path(text)
    if parse_pattern(p) is not None:
        return "images"
    ext = p.suffix.lower()
    if text.endswith(("/", os.sep)) or (p.is_dir() and ext not in VIDEO_EXTS):
        return "images"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        raise InvalidOptionError(
            f"image output '{text}' needs a frame-number pattern, e.g. "
            f"'{p.with_name(p.stem + '.%04d' + p.suffix)}', or a folder ending in '/'"
        )
    raise InvalidOptionError(
        f"unknown output type '{ext or text}'; use a video file ({', '.join(VIDEO_EXTS)}), "
        "an image pattern such as out/%04d.png, or null: to discard frames"
    )


def temp_path_for(path: str | os.PathLike[str], *, playable: bool = True) -> Path:
    """The temporary name an output is written under, which an interrupted run leaves behind:
    ``clip.mkv`` → ``clip.partial.mkv`` in the same folder. MP4 and MOV outputs are written as
    Matroska, which plays however the run ends (``clip.mp4`` → ``clip.partial.mkv``; see
    :mod:`vidstyle.io.remux`) unless ``playable`` is false."""
    from vidstyle.io.remux import PARTIAL_EXT, REMUXED_FORMATS

    p = Path(path)
    suffix = p.suffix
    if playable and VIDEO_EXTS.get(suffix.lower()) in REMUXED_FORMATS:
        suffix = PARTIAL_EXT
    return p.with_name(f"{p.stem}.partial{suffix}")


def _partial_names(path: Path) -> list[Path]:
    """Every temporary name an earlier run may have left for ``path`` (the partial, and the
    final container being written from it)."""
    names = [temp_path_for(path), temp_path_for(path, playable=False)]
    return list(dict.fromkeys(names))


def image_output_pattern(path: str | os.PathLike[str], *, bit_depth: int | None = None) -> SeqPattern:
    """The pattern an image-sequence output writes: the given one, or ``folder/%06d.png``
    (``.exr`` for float) for a folder."""
    pattern = parse_pattern(path)
    if pattern is None:
        ext = ".exr" if bit_depth == 32 else ".png"
        pattern = SeqPattern(folder=Path(path), prefix="", suffix=ext, width=6)
    ext = Path(pattern.suffix).suffix.lower() or pattern.suffix.lower()
    if ext not in WRITABLE_EXTS:
        raise InvalidOptionError(
            f"cannot write images of type '{pattern.suffix}'; use one of {', '.join(sorted(WRITABLE_EXTS))}"
        )
    return pattern


def _same_path(a: Path, b: str | os.PathLike[str] | None) -> bool:
    if b is None:
        return False
    b = Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        return False
    return a.resolve() == b.resolve()


def _writable_folder(folder: Path, *, create_ok: bool) -> None:
    probe = folder
    while not probe.exists():
        if not create_ok:
            raise OutputError(f"output folder '{folder}' does not exist; create it first or choose another output path")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"'{probe}' is not a folder; choose an output path inside a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to folder '{probe}' (permission denied); choose a writable folder")


def check_output(
    path: str | os.PathLike[str],
    *,
    input_spec: str | os.PathLike[str] | None,
    overwrite: bool,
) -> None:
    """Fail early, before any work, when an output cannot or must not be written.

    Raises:
        InvalidOptionError: unknown output type.
        OutputError: the output is the input, its folder is missing (video files; image
            sequences create their folder) or not writable, or it is a folder.
        OutputExistsError: the output (or, for image sequences, any frame matching the
            pattern) exists and ``overwrite`` is false.
    """
    kind = output_kind(path)
    if kind == "null":
        return
    if kind == "video":
        p = Path(path)
        if p.is_dir():
            raise OutputError(f"output '{p}' is a folder; give a file name such as '{p / 'out.mp4'}'")
        if _same_path(p, input_spec) or any(_same_path(t, input_spec) for t in _partial_names(p)):
            raise OutputError(f"output '{p}' is the input file; choose another output name")
        _writable_folder(p.parent, create_ok=False)
        if p.exists() and not overwrite:
            raise with_parameter(OutputExistsError(
                f"output '{p}' exists; pass `overwrite` to replace it or choose another name"
            ), "overwrite")
        for partial in _partial_names(p):
            if partial.exists() and not overwrite:  # an interrupted run's work: never deleted silently
                raise with_parameter(OutputExistsError(
                    f"'{partial}' is the partial output of an interrupted run; keep it by renaming it, or pass "
                    "`overwrite` to start again"
                ), "overwrite")
        return
    pattern = image_output_pattern(path)
    if input_spec is not None:
        in_pattern = parse_pattern(input_spec)
        same_pattern = (
            in_pattern is not None
            and in_pattern.folder.resolve() == pattern.folder.resolve()
            and (in_pattern.prefix, in_pattern.suffix) == (pattern.prefix, pattern.suffix)
        )
        same_folder = Path(input_spec).is_dir() and _same_path(pattern.folder, input_spec)
        if same_pattern or same_folder:
            raise OutputError(
                f"output '{path}' would overwrite the input frames '{input_spec}'; choose another folder or name"
            )
    _writable_folder(pattern.folder, create_ok=True)
    if not overwrite:
        refuse_existing_frames(pattern)


def refuse_existing_frames(pattern: SeqPattern) -> None:
    """Raise :class:`OutputExistsError` (naming ``overwrite``) when any frame matching ``pattern`` exists."""
    existing = pattern.existing()
    if existing:
        raise with_parameter(OutputExistsError(
            f"output frames exist ('{existing[0][1]}' and {len(existing) - 1} more); "
            "pass `overwrite` to replace them or choose another folder"
        ), "overwrite")
