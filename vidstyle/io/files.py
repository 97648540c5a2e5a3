"""Publishing a finished file: the rename that makes it visible, with the permissions users expect."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["publish"]


def publish(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
    """Rename the complete file ``tmp`` to ``final`` in one step, with ordinary permissions.

    Some writers (safetensors) create files readable by their owner only (mode 0600); a model, decoder
    or checkpoint that the project ships or a user shares must be readable like any file the user
    writes, so the mode becomes ``0666`` minus the process's umask (0644 usually).
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)
    return Path(final)
