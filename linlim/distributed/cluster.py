"""A local Dask cluster for linlim's CPU-bound tasks: single-threaded worker processes,
one BLAS/OpenMP/numba thread each, Dask's periodic housekeeping turned down and glibc's
allocator left as NumPy expects it.

Why: on a small machine Dask's defaults cost a visible share of the CPU the blocks need.
Measured on this project's 2-core VM (docs/benchmarks.md, "Scale-out with Dask"):

- an idle 2-worker ``LocalCluster`` used 0.18 core-s/s with Dask's defaults (the driver
  0.07, each worker 0.05-0.06), 0.02 under :data:`LEAN_DASK_CONFIG`;
- a worker computed the demo's simulation blocks 1.47x slower than the same blocks in
  the driver's process (0.286 s against 0.195 s for two blocks), and as fast once the
  nanny no longer set ``MALLOC_TRIM_THRESHOLD_`` (below).
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InputError

__all__ = ["LEAN_DASK_CONFIG", "WORKER_THREAD_ENV", "local_cluster"]

#: Dask settings applied by :func:`local_cluster` (``lean=True``). None of them changes
#: what a task computes; they trade diagnostics (the dashboard's profile and system
#: plots, event-loop stall warnings), reaction time and prompt return of freed memory to
#: the operating system for CPU:
#:
#: - ``distributed.worker.profile.enabled``: the statistical profiler walks every worker
#:   thread's stack every 10 ms; off.
#: - ``distributed.admin.tick.interval``: the event-loop health check of every process
#:   (scheduler, workers, nannies, client), 20 ms by default; 1 s.
#: - ``distributed.admin.system-monitor.interval``: psutil readings (CPU, memory,
#:   network) for the dashboard, 500 ms by default; 5 s.
#: - ``distributed.worker.memory.monitor-interval``: the worker's memory-limit check,
#:   100 ms by default; 1 s (a runaway allocation is caught up to 1 s later).
#: - ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_``: unset (Dask sets
#:   65536 in every worker so that freed memory goes back to the system sooner). Setting
#:   it switches off glibc's dynamic mmap threshold, so every NumPy temporary above
#:   128 KiB is a fresh ``mmap`` that page-faults on first touch; the RIME's per-block
#:   temporaries are of that size.
#: - ``distributed.client.direct-to-workers``: the client fetches results from the
#:   workers themselves rather than through the scheduler (which, in a ``LocalCluster``,
#:   runs in the driver's process: each result would cross the driver's sockets twice).
#:   Only for clients that can reach the workers, which a local cluster's can.
#:
#: Work stealing stays on: it balances uneven blocks and costs little when idle.
LEAN_DASK_CONFIG: dict[str, Any] = {
    "distributed.client.direct-to-workers": True,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

#: Environment of every worker process: one BLAS, OpenMP and numba thread (a worker
#: process runs one task at a time per Dask thread; more threads inside it would
#: oversubscribe the cores the other workers use).
WORKER_THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


def local_cluster(n_workers: int = 2, *, threads_per_worker: int = 1, lean: bool = True,
                  **kwargs: Any) -> tuple[Any, Any]:
    """Start a ``LocalCluster`` of worker processes and a ``Client`` on it.

    Parameters
    ----------
    n_workers : int
        Worker processes (>= 1).
    threads_per_worker : int
        Dask threads per worker (>= 1); each task still runs with one BLAS, OpenMP and
        numba thread (:data:`WORKER_THREAD_ENV`).
    lean : bool
        Start the scheduler, workers and client under :data:`LEAN_DASK_CONFIG` (kept by
        the workers for their lifetime, restarted ones included); ``False`` uses Dask's
        configuration as it is.
    **kwargs
        Passed to ``distributed.LocalCluster`` (e.g. ``memory_limit``,
        ``dashboard_address``; the default here is no dashboard). ``env`` entries are
        added to :data:`WORKER_THREAD_ENV`.

    Returns
    -------
    (distributed.LocalCluster, distributed.Client)
        Close both when done (``client.close(); cluster.close()``).

    Examples
    --------
    >>> from linlim.distributed import local_cluster, prepare_workers, simulate_uvh5
    >>> cluster, client = local_cluster(2)                        # doctest: +SKIP
    >>> prepare_workers(client, sim)                              # doctest: +SKIP
    >>> simulate_uvh5("sim.uvh5", sim, client=client)             # doctest: +SKIP
    """
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"local_cluster: {name} must be an integer >= 1, received "
                             f"{value!r}")
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise InputError("local_cluster: needs dask.distributed (install 'linlim[dist]')"
                         ) from err
    env = {**WORKER_THREAD_ENV, **kwargs.pop("env", {})}
    kwargs.setdefault("dashboard_address", None)
    settings = LEAN_DASK_CONFIG if lean else {}
    with dask.config.set(settings):   # the scheduler and client read them at start-up
        if settings:   # the whole configuration with them (and a ``config`` passed in):
            #            each nanny hands it to the worker processes it (re)starts
            kwargs["config"] = dask.config.merge(copy.deepcopy(dask.config.config),
                                                 kwargs.get("config") or {})
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, env=env, **kwargs)
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
    return cluster, client

