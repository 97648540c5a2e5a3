"""Film production rendering: per-shot TOML jobs, manifests, deterministic and resumable renders,
chunked rendering on Ray.

>>> from vidstyle.render import load_job, render
>>> job = load_job("sh010.toml", overrides={"bit_depth": 16})           # doctest: +SKIP
>>> result = render(job)                                                 # doctest: +SKIP
>>> result = render(job, resume=True)          # after a crash or Ctrl-C   # doctest: +SKIP

* :mod:`.job` — the job keys (each also a ``vidstyle render`` option), parsing and validation;
* :mod:`.runner` — the driver (:func:`render`): prepare → execute → cross-fade → encode → clean up;
* :mod:`.shot` — probing the input, the render's file layout, the encoder and model checks;
* :mod:`.plan` — chunks, warm-up and cross-fade, what the journals say is done (pure);
* :mod:`.manifest` — layout of the files, journals, the typed manifest;
* :mod:`.executor` — the executor protocol and the in-process executor (retries);
* :mod:`.ray_executor` — chunks as Ray tasks, retries, per-chunk progress;
* :mod:`.chunk` — rendering one chunk (resume from its journal and state side-car);
* :mod:`.finish` — cross-fading the chunk borders, encoding a video output, clean-up;
* :mod:`.state` — exporting and restoring the stylizer's temporal state;
* :mod:`.determinism` — seeds, deterministic kernels, what differs across machines;
* :mod:`.seam` — measuring chunk seams (warping error at the borders vs elsewhere).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RenderJob",
    "load_job",
    "job_from_mapping",
    "render",
    "RenderResult",
    "RenderProgress",
    "ChunkStatus",
    "Chunk",
    "plan_chunks",
    "RenderPlan",
    "Manifest",
    "ChunkExecutor",
    "LocalExecutor",
]

_LAZY = {
    "RenderJob": "vidstyle.render.job",
    "load_job": "vidstyle.render.job",
    "job_from_mapping": "vidstyle.render.job",
    "render": "vidstyle.render.runner",
    "RenderResult": "vidstyle.render.runner",
    "RenderProgress": "vidstyle.render.runner",
    "ChunkStatus": "vidstyle.render.runner",
    "Chunk": "vidstyle.render.plan",
    "plan_chunks": "vidstyle.render.plan",
    "RenderPlan": "vidstyle.render.plan",
    "Manifest": "vidstyle.render.manifest",
    "ChunkExecutor": "vidstyle.render.executor",
    "LocalExecutor": "vidstyle.render.executor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidstyle.render' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
