"""Rendering the chunks of a shot in parallel on Ray (``pip install 'vidstyle[ray]'``).

* ``ray = "local"`` (``--ray``): a Ray instance on this machine with ``workers × threads`` CPUs
  (started here and shut down at the end; an already initialised Ray is used as it is).
  ``ray = "host:port"`` / ``"auto"``: an existing cluster (``ray start --head`` on one machine,
  ``ray start --address=…`` on the others).
* Each chunk is one Ray task asking for ``threads`` CPUs; it renders straight into the output's
  folder, so **on a cluster the output (and the input) must be on storage every node mounts at
  the same path** (NFS, a SAN, a parallel file system), and vidstyle (same version) must be
  installed on every node.
* The driver follows each chunk through its journal (a file in the work folder), reports per-chunk
  progress, and retries a failed chunk up to ``retries`` times; a retry continues from the chunk's
  last finished frame (its state side-car), so no finished frame is rendered twice.
* Ctrl-C cancels the tasks; the finished frames stay and ``--resume`` continues.
"""

from __future__ import annotations

from typing import Any

from vidstyle.errors import InvalidOptionError, VidstyleError

__all__ = ["run_on_ray", "ray_chunk_task"]

_POLL = 0.5


def ray_chunk_task(job: Any, chunk: Any, layout: Any, numbers: list[int], next_crossfade_from: int | None,
                   attempt: int, threads: int, hooks: dict[str, str] | None = None) -> Any:
    """Body of the Ray task: render one chunk in the worker process."""
    from vidstyle.render.chunk import render_chunk
    from vidstyle.runtime import tune_malloc

    tune_malloc()
    try:
        return render_chunk(job, chunk, layout=layout, numbers=numbers, next_crossfade_from=next_crossfade_from,
                            attempt=attempt, threads=threads, hooks=hooks)
    except Exception as e:  # noqa: BLE001 - must reach the driver in a form Ray can send
        raise _sendable(e) from None


def _sendable(e: BaseException) -> BaseException:
    """The error itself when it pickles, its cause when that does (a StageError wraps the
    original), else a RuntimeError with the same text."""
    import pickle

    for candidate in (e, getattr(e, "error", None), e.__cause__):
        if isinstance(candidate, Exception):
            try:
                pickle.loads(pickle.dumps(candidate))
            except Exception:  # noqa: BLE001
                continue
            return candidate
    return RuntimeError(f"{type(e).__name__}: {e}")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidOptionError(
            "--ray needs Ray, which is not installed; install it with: pip install 'vidstyle[ray]'"
        ) from None
    return ray


def _connect(ray: Any, render: Any) -> bool:
    """Initialise Ray if needed; returns whether this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    address = render.job.ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == "local":
            ray.init(num_cpus=render.workers * render.threads, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds
        raise InvalidOptionError(
            f"cannot connect to Ray at '{address}' ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
            "check the address (host:port of 'ray start --head') or use --ray local"
        ) from None
    return True


def run_on_ray(render: Any) -> None:
    """Run the pending chunks of ``render`` (a ``vidstyle.render.runner._Render``) on Ray."""
    from vidstyle.render.manifest import read_journal

    ray = _import_ray()
    started = _connect(ray, render)
    try:
        if render.workers == 0:  # a cluster: as many at once as it has CPUs for
            cpus = int(ray.cluster_resources().get("CPU", 1))
            render.workers = max(1, cpus // render.threads)
            render.run_record["workers"] = render.workers
        options: dict[str, Any] = {"num_cpus": render.threads, "max_retries": 0}
        task = ray.remote(ray_chunk_task).options(**options)
        job_ref = ray.put(render.job)
        queue = [c for c in render.chunks if render.chunk_state[c.id] != "done"]
        running: dict[Any, Any] = {}
        offsets: dict[int, int] = {}
        seen: dict[int, set[int]] = {c.id: set() for c in render.chunks}
        base = dict(render._chunk_done)

        def submit(c: Any) -> None:
            render.attempts[c.id] = render.attempts.get(c.id, 0) + 1
            render.chunk_state[c.id] = "running"
            ref = task.remote(job_ref, c, render.layout, render.numbers, render.next_crossfade(c),
                              render.attempts[c.id], render.threads, render.hooks)
            running[ref] = c

        def poll_journals() -> None:
            for c in render.chunks:
                path = render.layout.journal_path(c.id)
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                if size == offsets.get(c.id, 0):
                    continue
                offsets[c.id] = size
                for rec in read_journal(path):
                    if rec.get("e") == "frame" and c.first <= int(rec["n"]) <= c.last:
                        seen[c.id].add(int(rec["n"]))
            total = 0
            for c in render.chunks:
                d = max(base.get(c.id, 0), len(seen[c.id]))
                render._chunk_done[c.id] = d
                total += d
            render.done_run = max(0, total - render.done_before)

        try:
            while queue or running:
                submitted = False
                while queue and len(running) < render.workers:
                    submit(queue.pop(0))
                    submitted = True
                if submitted:
                    render.write_manifest()
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL)
                poll_journals()
                for ref in ready:
                    c = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a failed task: retry or report
                        cause = getattr(e, "cause", None) or e
                        if isinstance(cause, VidstyleError) and not isinstance(cause, OSError):
                            render.chunk_state[c.id] = "failed"
                            render.failures.append(f"chunk {c.id} (frames {c.first}-{c.last}): {_line(cause)}")
                            continue
                        if render.attempts[c.id] <= render.job.retries:
                            render.chunk_state[c.id] = "retrying"
                            render.warnings.append(f"chunk {c.id} failed ({_line(cause)}); retrying")
                            queue.insert(0, c)
                        else:
                            render.chunk_state[c.id] = "failed"
                            render.failures.append(f"chunk {c.id} (frames {c.first}-{c.last}): {_line(cause)}")
                        continue
                    render.warnings.extend(result.warnings)
                    render.chunk_state[c.id] = "done"
                if ready:
                    render.write_manifest()
                render.report()
            poll_journals()
        except KeyboardInterrupt:
            for ref, c in running.items():
                render.chunk_state[c.id] = "interrupted"
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001
                    pass
            poll_journals()
            raise
    finally:
        if started:
            ray.shutdown()


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"

