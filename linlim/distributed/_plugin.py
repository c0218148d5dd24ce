"""The Dask worker plugin behind :func:`linlim.distributed.simulate.prepare_workers`.

Kept apart from :mod:`linlim.distributed.simulate` so that importing linlim never imports
``distributed`` (an optional dependency, the ``dist`` extra).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["SimulationPreparer"]


class SimulationPreparer(WorkerPlugin):
    """Prepare a worker process for one chunked simulation.

    On every worker of the cluster when registered, and on every worker that joins later
    (a restarted one included): store the description under its digest and compute one
    1 x 1 block, which builds the builder's per-process state (the scenario of
    :func:`~linlim.distributed.simulate.scenario_chunk`) and pays the first calls (numba
    compilation, astropy's tables). Runs in the worker's executor thread, so the worker
    stays responsive to the scheduler meanwhile.

    Parameters
    ----------
    builder : callable
        The simulation's chunk builder (a top-level function).
    description : picklable
        Its description.
    digest : str
        :attr:`ChunkedSimulation.digest` of the simulation.
    """

    def __init__(self, builder: Callable, description: Any, digest: str) -> None:
        self.builder = builder
        self.description = description
        self.digest = digest

    async def setup(self, worker: Any) -> None:
        from .simulate import prepare_process

        await asyncio.get_running_loop().run_in_executor(
            None, prepare_process, self.builder, self.description, self.digest)
