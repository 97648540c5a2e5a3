"""Repeatable renders: seeds, deterministic algorithms, a fixed thread count, and a record of the
machine so a render can be audited.

Same machine, same job → bit-identical outputs, because

* every random generator a render may touch (Python, NumPy, torch CPU and CUDA, OpenCV) is seeded
  from the job's ``seed`` at the start of each chunk;
* ``torch.use_deterministic_algorithms(True)`` (``warn_only``: an op without a deterministic
  kernel warns instead of failing, and the warning is recorded), cuDNN benchmarking off and cuDNN
  deterministic, ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` for cuBLAS;
* the torch thread count is fixed and recorded (reductions are split by thread, so results can
  depend on it) and the frames go through the network in the same batches.

What can differ **across machines** (recorded in the manifest's ``environment`` so a difference
can be explained): the CPU's instruction set (oneDNN/MKL pick AVX2, AVX-512 or AMX kernels with
different summation orders), the GPU model and CUDA/cuDNN versions, the torch/OpenCV/FFmpeg
versions (OpenCV's DIS flow, zlib's PNG bytes, the video encoders), and the thread count. Such
differences are at the level of float rounding (|Δ| ≤ 1 LSB of an 8-bit output per frame in
practice) but the temporal recursion carries them forward, so frames are not bit-identical
across machines; the per-frame ``pixels_sha256`` of the manifest tells which frames differ.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import warnings
from typing import Any

__all__ = ["apply_determinism", "environment_info"]


def apply_determinism(*, seed: int, threads: int, device: str | None = None) -> dict[str, Any]:
    """Seed every generator and select deterministic kernels; returns what was set (for the manifest)."""
    import numpy as np
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    try:
        import cv2

        cv2.setRNGSeed(seed % 2**31)
    except Exception:  # noqa: BLE001 - OpenCV is optional here
        pass
    torch.set_num_threads(int(threads))
    strict = True
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:  # noqa: BLE001 - very old torch
        strict = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    warnings.filterwarnings("once", message=".*deterministic.*")
    return {
        "seed": int(seed),
        "torch_threads": int(torch.get_num_threads()),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()) and strict,
        "deterministic_warn_only": True,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "device": device,
    }


def environment_info() -> dict[str, Any]:
    """Versions and hardware that can change the bits of an output (see the module docstring)."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    from importlib import metadata

    for name, dist in (("torch", "torch"), ("numpy", "numpy"), ("opencv", "opencv-contrib-python"), ("av", "av"),
                       ("OpenEXR", "OpenEXR"), ("ray", "ray")):
        try:
            info[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            module = sys.modules.get("cv2" if name == "opencv" else name)
            if module is not None:
                info[name] = str(getattr(module, "__version__", "?"))
    try:
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001
        pass
    try:
        import av

        info["ffmpeg"] = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    except Exception:  # noqa: BLE001
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
