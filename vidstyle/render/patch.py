"""Patch renders: re-render a range of a finished render and splice it in (``vidstyle render
SHOT.toml --patch --frames 1010-1030``).

The range is rendered as a render of its own (in a hidden folder next to the manifest), whose
first chunk warms up on the ``overlap`` frames of the input before the range — exactly as a
chunk of a Ray render warms up — so its frames equal the full render's within the chunk-seam
tolerance (the stabiliser's memory of the frames before the range is rebuilt, not guessed).
Then each patched frame replaces the old one with one rename (``os.replace``: a reader sees the
old frame or the new one, never half a file), and the manifest's records of those frames are
replaced by the patch's (hashes, attempt) and marked ``"patch": N``; a run record says what was
patched. Parameters that change the output must be the manifest's (the model too), as for
``--resume``; ``frames`` is the range to patch and must lie inside the rendered shot.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidstyle.errors import InputNotFoundError, InvalidOptionError
from vidstyle.options.spec import OptionValueError
from vidstyle.render.executor import ChunkExecutor
from vidstyle.render.job import RenderJob
from vidstyle.render.manifest import Manifest, RunRecord, manifest_path_for

__all__ = ["patch_render", "patch_numbers"]


def patch_numbers(numbers: list[int], frames: tuple[int, int] | None) -> list[int]:
    """The frames of the rendered shot ``numbers`` that the range ``frames`` patches.

    Raises:
        OptionValueError: no range given, or a range reaching outside the shot.
    """
    if frames is None:
        raise OptionValueError("frames", "frames: a patch needs the range to re-render, e.g. frames = \"1010-1030\"")
    first, last = frames
    if first < numbers[0] or last > numbers[-1]:
        raise OptionValueError(
            "frames", f"frames: patch range {first}-{last} is outside the rendered shot {numbers[0]}-{numbers[-1]}; "
                      "choose frames within it")
    chosen = [n for n in numbers if first <= n <= last]
    if not chosen:
        raise OptionValueError("frames", f"frames: patch range {first}-{last} holds no frame of the rendered shot")
    return chosen


def _check_same(manifest: Manifest, job: RenderJob, model: dict[str, Any]) -> None:
    from vidstyle.render.job import KEYS

    old, new = manifest.parameters, job.parameters()
    for key in sorted(set(old) | set(new)):
        spec = KEYS.get(key)
        if key == "frames" or (spec is not None and not spec.affects_output):
            continue
        if old.get(key) != new.get(key):
            raise InvalidOptionError(
                f"--patch: key '{key}' is {old.get(key)!r} in the manifest but {new.get(key)!r} now; a patch must "
                "render with the render's own values (or render the whole shot again with --overwrite)"
            )
    if manifest.model.get("sha256") != model.get("sha256") or manifest.model.get("styles") != model.get("styles"):
        raise InvalidOptionError("--patch: the model file changed since the render (different SHA-256); a patch "
                                 "with another model would not match; render the whole shot again with --overwrite")


def patch_render(
    job: RenderJob,
    *,
    progress: Callable[[Any], None] | None = None,
    stop: threading.Event | None = None,
    executor: ChunkExecutor | None = None,
) -> Any:
    """Re-render ``job.frames`` of the finished render of ``job`` and splice them in.

    Returns the patch's :class:`~vidstyle.render.runner.RenderResult` (its ``output`` and
    ``manifest`` are the patched render's).

    Raises:
        OptionValueError: no ``frames``, or a range outside the rendered shot.
        InvalidOptionError: a video output, other output parameters or another model than the render's.
        InputNotFoundError: no finished render of ``job.output`` to patch.
    """
    import dataclasses
    import os

    from vidstyle.render.runner import _now, render
    from vidstyle.render.shot import model_record

    if job.output_kind != "images":
        raise InvalidOptionError(
            f"--patch replaces frames of an image-sequence render; '{job.output}' is a video: render the shot "
            "to frames (out/sh.%04d.exr), patch those, and encode them"
        )
    manifest_path = Path(job.manifest) if job.manifest else manifest_path_for(job.output)
    if not manifest_path.is_file():
        raise InputNotFoundError(f"no render of '{job.output}' to patch (no manifest at '{manifest_path}'); "
                                 "render the shot first, without --patch")
    manifest = Manifest.load(manifest_path)
    if manifest.status != "complete":
        raise InvalidOptionError(f"the render of '{job.output}' is {manifest.status}, not complete; finish it "
                                 "with --resume before patching it")
    numbers = patch_numbers(list(manifest.shot.numbers), job.frames)
    _check_same(manifest, job, model_record(job))

    layout = manifest.layout
    work = Path(layout.work).with_name(Path(layout.work).name.removesuffix(".render") + ".patch")
    shutil.rmtree(work, ignore_errors=True)
    pattern = layout.pattern
    sub = job.replace(output=str(work / "frames" / f"{pattern.prefix}%0{max(pattern.width, 1)}d{pattern.suffix}"),
                      manifest=str(work / "patch.manifest.json"), overwrite=True)
    sub = dataclasses.replace(sub, given={**job.given})
    started = _now()
    result = render(sub, progress=progress, stop=stop, executor=executor)
    if result.failures:
        return result  # nothing replaced; the patch's own frames stay in its folder for a look
    patched = Manifest.load(work / "patch.manifest.json")
    sub_layout = patched.layout
    by_number = {int(f["number"]): f for f in patched.frames}
    for n in numbers:
        os.replace(sub_layout.frame_path(n), layout.frame_path(n))
    index = 1 + sum(1 for r in manifest.runs if r.extra.get("patch"))
    for rec in manifest.frames:
        n = int(rec["number"])
        if n in by_number:
            new = by_number[n]
            rec.update({k: new.get(k) for k in ("status", "attempt", "sha256", "pixels_sha256", "seconds")})
            rec.pop("crossfade", None)
            rec["patch"] = index
    run = patched.runs[-1]
    manifest.runs.append(RunRecord(started=started, resume=False, executor=run.executor, address=run.address,
                                   workers=run.workers, threads=run.threads, status="complete", host=run.host,
                                   frames=len(numbers), seconds=run.seconds, ended=_now(),
                                   extra={"patch": f"{numbers[0]}-{numbers[-1]}",
                                          "warmup_from": patched.chunks[0].chunk.warmup_from}))
    manifest.updated = _now()
    manifest.save(manifest_path)
    shutil.rmtree(work, ignore_errors=True)
    return dataclasses.replace(result, output=Path(job.output), manifest=manifest_path)
