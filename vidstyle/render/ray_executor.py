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

import threading
from collections.abc import Sequence
from typing import Any

from vidstyle.errors import InvalidOptionError, VidstyleError
from vidstyle.render.executor import ChunkContext, ChunkEvents, ChunkFunction, ChunkOutcome, ChunkWork

__all__ = ["RayExecutor", "ray_chunk_task"]

_POLL = 0.5


def ray_chunk_task(context: ChunkContext, work: ChunkWork, attempt: int,
                   chunk_function: ChunkFunction | None = None) -> Any:
    """Body of the Ray task: render one chunk in the worker process."""
    from vidstyle.render.executor import default_chunk_function
    from vidstyle.runtime import tune_malloc

    tune_malloc()
    fn = chunk_function or default_chunk_function()
    try:
        return fn(context.job, work.chunk, layout=context.layout, numbers=list(context.numbers),
                  next_crossfade_from=work.next_crossfade_from, attempt=attempt, threads=context.threads)
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


class RayExecutor:
    """Renders the chunks as Ray tasks, ``workers`` at once (see the module docstring).

    Args:
        address: ``"local"`` (a Ray on this machine with ``workers × threads`` CPUs), ``"auto"`` or
            ``host:port`` of a cluster; an already initialised Ray is used as it is.
        workers: chunks at once; 0 asks the cluster (its CPUs ÷ ``threads``).
        threads: CPUs each task asks for (the chunks' torch threads).
        retries: attempts after the first of a failed chunk (over all runs of the render).
        chunk_function: what a task calls (default :func:`~vidstyle.render.chunk.render_chunk`);
            it travels to the workers (pickled).
    """

    name = "ray"

    def __init__(self, *, address: str, workers: int, threads: int, retries: int,
                 chunk_function: ChunkFunction | None = None) -> None:
        self.address = address
        self._workers = workers
        self.threads = threads
        self.retries = retries
        self.chunk_function = chunk_function

    @property
    def workers(self) -> int:
        return self._workers

    def _connect(self, ray: Any) -> bool:
        """Initialise Ray if needed; returns whether this call started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if self.address == "local":
                ray.init(num_cpus=self._workers * self.threads, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds
            raise InvalidOptionError(
                f"cannot connect to Ray at '{self.address}' "
                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                "check the address (host:port of 'ray start --head') or use --ray local"
            ) from None
        return True

    def run_chunks(
        self,
        work: Sequence[ChunkWork],
        *,
        context: ChunkContext,
        events: ChunkEvents,
        stop: threading.Event | None = None,
    ) -> None:
        ray = _import_ray()
        started = self._connect(ray)
        try:
            if self._workers == 0:  # a cluster: as many at once as it has CPUs for
                cpus = int(ray.cluster_resources().get("CPU", 1))
                self._workers = max(1, cpus // self.threads)
            self._run(ray, work, context=context, events=events)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, work: Sequence[ChunkWork], *, context: ChunkContext, events: ChunkEvents) -> None:
        from vidstyle.render.manifest import read_journal

        task = ray.remote(ray_chunk_task).options(num_cpus=self.threads, max_retries=0)
        context_ref = ray.put(context)
        attempts = {w.chunk.id: w.attempts for w in work}
        queue = list(work)
        running: dict[Any, ChunkWork] = {}
        offsets: dict[int, int] = {}
        seen: dict[int, set[int]] = {w.chunk.id: set() for w in work}

        def submit(w: ChunkWork) -> None:
            attempts[w.chunk.id] += 1
            events.chunk_started(w.chunk.id, attempt=attempts[w.chunk.id])
            running[task.remote(context_ref, w, attempts[w.chunk.id], self.chunk_function)] = w

        def poll_journals() -> None:
            for w in work:
                c = w.chunk
                path = context.layout.journal_path(c.id)
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                if size == offsets.get(c.id, 0):
                    continue
                offsets[c.id] = size
                for rec in read_journal(path):
                    n = int(rec["n"]) if rec.get("e") == "frame" else None
                    if n is not None and c.first <= n <= c.last and n not in seen[c.id]:
                        seen[c.id].add(n)
                        events.frame_done(c.id, n)

        def ended(w: ChunkWork, state: str, *, error: str | None = None, warnings: tuple[str, ...] = ()) -> None:
            events.chunk_ended(ChunkOutcome(chunk=w.chunk.id, state=state, attempt=attempts[w.chunk.id],
                                            error=error, warnings=warnings))

        try:
            while queue or running:
                while queue and len(running) < self._workers:
                    submit(queue.pop(0))
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL)
                poll_journals()
                for ref in ready:
                    w = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a failed task: retry or report
                        cause = getattr(e, "cause", None) or e
                        if isinstance(cause, VidstyleError) and not isinstance(cause, OSError):
                            ended(w, "failed", error=_line(cause))
                        elif attempts[w.chunk.id] <= self.retries:
                            ended(w, "retrying", error=_line(cause))
                            queue.insert(0, w)
                        else:
                            ended(w, "failed", error=_line(cause))
                        continue
                    ended(w, "done", warnings=tuple(result.warnings))
                events.tick()
            poll_journals()
        except KeyboardInterrupt:
            for ref, w in running.items():
                ended(w, "interrupted")
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001
                    pass
            poll_journals()
            raise


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"
