"""Process-level runtime choices: device, precision, torch threads and glibc malloc behaviour.

The composition root (:func:`vidstyle.api.build_stages`) calls :func:`setup` once, where the stages
are built; stage constructors do not touch process-wide state.

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
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRECISIONS",
    "Runtime",
    "default_threads",
    "describe_hardware",
    "threads_for_load",
    "malloc_is_tuned",
    "reexec_with_malloc_tunable",
    "resolve_device",
    "resolve_precision",
    "setup",
    "tune_malloc",
]

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
    """Stop glibc from returning large blocks to the kernel (``mallopt``). Returns success.

    Call it before torch starts its threads (before ``import torch`` where possible): a thread started
    earlier may already hold a second malloc arena, and the one-arena limit does not move it back. The
    command line avoids the question by re-executing with the ``GLIBC_TUNABLES`` equivalent
    (:func:`reexec_with_malloc_tunable`).
    """
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


def describe_hardware(device: Any) -> str:
    """What a model card records as the training hardware: the GPU's name, or the CPU's model with torch's
    thread count ("…, 1 thread, torch 2.x" / "…, 2 threads, …"), and the torch version."""
    import platform

    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine() or "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"{cpu}, {n} thread{'' if n == 1 else 's'}, torch {torch.__version__}"


def threads_for_load(*, cores: int | None = None, load: float | None = None) -> int:
    """Threads for a run that starts now: the available cores less those other processes keep busy (the
    1-minute load average, rounded down), at least 1.

    Torch's OpenMP threads spin while they wait for each other; on cores another job holds, a thread that
    is not scheduled stalls the rest. Measured on 2 cores under a load of about 20: a training step took
    24 s with 2 threads and 7 s with 1. On an idle machine this is :func:`default_threads`.
    """
    n = default_threads() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available on this system
            return n
    return max(1, min(n, n - int(load)))


# ------------------------------------------------------------------------------ device, precision, threads
PRECISIONS = ("float32", "bfloat16", "float16", "auto")


def resolve_device(device: Any = None) -> Any:
    """``None`` → CUDA when available, else CPU; otherwise the named device, checked."""
    import torch

    from vidstyle.options.spec import OptionValueError

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionValueError("device", f"device must be cpu, cuda, cuda:N or mps, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionValueError("device", f"device {device!r} asked for but no CUDA GPU is available; use device cpu")
    return dev


def resolve_precision(precision: str, *, device: Any) -> Any:
    """The network's dtype for a ``precision`` name on ``device``.

    ``auto`` is bfloat16 on CPUs that compute it natively (AVX512-BF16 or AMX, which oneDNN uses) and
    float32 elsewhere: bfloat16 halves the memory traffic of the memory-bound small nets (~2x faster
    for ``tiny`` on an AVX-512 CPU) at a cost of about half an 8-bit level on average, while on GPUs
    float32 (TF32) was measured faster than bfloat16 for these nets (BENCHMARKS.md).
    """
    import torch

    from vidstyle.options.spec import OptionValueError

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if precision == "auto":
        if device.type == "cpu":
            try:
                native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            except (AttributeError, RuntimeError):  # pragma: no cover - torch builds without oneDNN
                native = False
            return torch.bfloat16 if native else torch.float32
        return torch.float32
    if precision not in dtypes:
        raise OptionValueError("precision", f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float16" and device.type == "cpu":
        raise OptionValueError("precision", "precision float16 is not supported on the CPU; use bfloat16 or float32")
    return dtypes[precision]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What :func:`setup` decided: the torch device, the network's dtype and the CPU threads."""

    device: Any
    dtype: Any
    threads: int | None


def setup(*, device: Any = None, precision: str = "float32", threads: int | None = None) -> Runtime:
    """Choose the device and dtype and set the process up for them, once per run.

    On the CPU this sets torch's intra-op thread count (``threads``; default :func:`threads_for_load`:
    the cores that other processes leave free)
    and tunes malloc (:func:`tune_malloc`); on other devices it changes nothing process-wide.
    """
    import torch

    dev = resolve_device(device)
    dtype = resolve_precision(precision, device=dev)
    n = None
    if dev.type == "cpu":
        n = int(threads) if threads else threads_for_load()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        tune_malloc()
    return Runtime(device=dev, dtype=dtype, threads=n)
