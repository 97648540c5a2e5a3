"""Process-level tuning: glibc malloc behaviour and torch thread counts.

glibc serves large allocations (≥ 32 MiB by default, dynamically raised) with fresh ``mmap``
regions and returns them on ``free``; torch allocates and frees a few large activations per network
call, so every call page-faults its whole working set again (seconds of system time per minute of
video on a 2-core machine). Two remedies, both used:

* :func:`reexec_with_malloc_tunable` (CLI only): re-executes the process once with
  ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.mmap_max=0:``
  ``glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1`` so large blocks come from the
  heap and are reused. The trim threshold matters too: without it the
  freed top of the heap is handed back after each call and faulted in again (measured at 720p). So
  does the arena count: the pipeline runs the network in a worker thread, and a thread other than the
  main one allocates from its own arena, whose heaps are at most 64 MiB — anything larger is mmapped
  whatever the threshold (the full net at 1280×720 ran 25–37 % slower in a worker thread than in the
  main thread, with 355 000 page faults per frame; one arena and no mmap remove the difference). Nothing to do where it is already set, or
  tcmalloc/jemalloc is preloaded.
* :func:`tune_malloc` (library users): the same effect at run time through ``mallopt`` (mmap off
  for new blocks, no trimming, one arena for threads that allocate for the first time afterwards),
  for processes that cannot be restarted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["reexec_with_malloc_tunable", "tune_malloc", "malloc_is_tuned", "default_threads"]

_TUNABLE = (
    "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.mmap_max=0"
    ":glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1"
)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_tuned_at_runtime = False


def _is_glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import platform

    return platform.libc_ver()[0] == "glibc"


def malloc_is_tuned() -> bool:
    """True when large allocations will not page-fault on every call."""
    if _tuned_at_runtime:
        return True
    preload = os.environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preload or "jemalloc" in preload or "mimalloc" in preload:
        return True
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "mmap_threshold" in tunables and "arena_max" in tunables


def reexec_with_malloc_tunable(argv: list[str] | None = None) -> None:
    """Re-execute this Python process with the malloc tunable set (returns only if not needed).

    Skipped when not on glibc, when already tuned, or when ``VIDSTYLE_NO_REEXEC`` is set.
    """
    if not _is_glibc() or malloc_is_tuned() or os.environ.get("VIDSTYLE_NO_REEXEC"):
        return
    env = dict(os.environ)
    current = env.get("GLIBC_TUNABLES", "")
    env["GLIBC_TUNABLES"] = f"{current}:{_TUNABLE}" if current else _TUNABLE
    env["VIDSTYLE_NO_REEXEC"] = "1"  # never loop
    args = [sys.executable, *(sys.orig_argv[1:] if argv is None else argv)]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, args, env)
    except OSError:
        tune_malloc()  # could not restart: fall back to the run-time switch


def tune_malloc() -> bool:
    """Stop glibc from returning large blocks to the kernel (``mallopt``). Returns success."""
    global _tuned_at_runtime
    if _tuned_at_runtime:
        return True
    if not _is_glibc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, 2**30) == 1 and ok
        ok = libc.mallopt(_M_ARENA_MAX, 1) == 1 and ok
    except (OSError, AttributeError):
        return False
    _tuned_at_runtime = ok
    return ok


def default_threads() -> int:
    """Threads for torch intra-op work: physical-ish cores available to this process."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, n)
