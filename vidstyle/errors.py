"""Typed exceptions of vidstyle.

Every error a user can cause subclasses :class:`VidstyleError` *and* the builtin exception that
matches it, so callers can catch either. Messages name the problem and the remedy in one line;
the CLI prints ``str(error)`` and exits with code 1, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "VidstyleError",
    "InvalidInputError",
    "InputNotFoundError",
    "UnsupportedFormatError",
    "CorruptInputError",
    "InvalidOptionError",
    "ModelError",
    "WeightsUnavailableError",
    "OutputError",
    "OutputExistsError",
    "StageError",
    "CameraError",
    "ShapeError",
]


class VidstyleError(Exception):
    """Base class of all vidstyle errors."""


class InvalidInputError(VidstyleError, ValueError):
    """The input (file, frames, option values) is not usable."""


class InputNotFoundError(VidstyleError, FileNotFoundError):
    """An input file, folder or device does not exist."""


class UnsupportedFormatError(InvalidInputError):
    """The input exists but its format or codec cannot be handled."""


class CorruptInputError(InvalidInputError):
    """The input is damaged (random bytes, truncated, unreadable frames)."""


class InvalidOptionError(VidstyleError, ValueError):
    """An option has a bad value (out of range, wrong type, unknown name)."""


class ShapeError(VidstyleError, ValueError):
    """A tensor or array has the wrong shape, dtype or layout."""


class ModelError(VidstyleError, ValueError):
    """A model name is unknown or a model file is of the wrong kind or architecture."""


class WeightsUnavailableError(VidstyleError, RuntimeError):
    """Pretrained weights are needed but can neither be found locally nor downloaded."""


class OutputError(VidstyleError, OSError):
    """The output cannot be written (folder missing or not writable, same as input...)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and overwriting was not asked for."""


class CameraError(VidstyleError, OSError):
    """A camera or stream cannot be opened, or was lost."""


class StageError(VidstyleError, RuntimeError):
    """A pipeline stage failed; names the stage and the frame index.

    The original exception is kept as ``__cause__`` and as :attr:`error`.
    """

    def __init__(self, *, stage: str, frame_index: int | None, error: BaseException) -> None:
        where = f"frame {frame_index}" if frame_index is not None else "start-up"
        super().__init__(f"{stage} stage failed at {where}: {error}")
        self.stage = stage
        self.frame_index = frame_index
        self.error = error
