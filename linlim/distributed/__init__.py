"""Scale-out with Dask: chunked log posteriors and chunked simulation.

Needs the ``dist`` extra (``pip install 'linlim[dist]'``); without it everything else in
linlim runs in-process.
"""

from .cluster import LEAN_DASK_CONFIG, local_cluster
from .posterior import DistributedLogPosterior, chunk_call, resident_chunks
from .simulate import (
    ChunkedSimulation,
    plan_chunks,
    point_source_simulation,
    prepare_process,
    prepare_workers,
    scenario_simulation,
    simulate_chunk,
    simulate_uvh5,
)

__all__ = ["LEAN_DASK_CONFIG", "local_cluster", "DistributedLogPosterior", "chunk_call",
           "resident_chunks", "ChunkedSimulation", "plan_chunks", "point_source_simulation",
           "prepare_process", "prepare_workers", "scenario_simulation", "simulate_chunk",
           "simulate_uvh5"]
