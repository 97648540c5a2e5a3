"""File hashing: the one SHA-256 of a file's bytes (model registry, render manifests, shipped weights)."""

from __future__ import annotations

import hashlib
import os

from vidstyle.errors import InputNotFoundError

__all__ = ["file_sha256"]

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the bytes of ``path``, read in 1 MiB blocks.

    Raises:
        InputNotFoundError: ``path`` is not a file.
    """
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
    except (FileNotFoundError, IsADirectoryError):
        raise InputNotFoundError(f"cannot hash '{os.fspath(path)}': no such file; check the path") from None
    return h.hexdigest()
