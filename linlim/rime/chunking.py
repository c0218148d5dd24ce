"""Memory budgets and (time, frequency) chunk plans for the RIME.

The RIME works one time at a time (coordinates and beams are per time) and, within a
time, on blocks of consecutive channels whose working arrays fit a memory budget.

Examples
--------
>>> plan_frequency_chunks(nfreq=10, bytes_per_channel=100, budget=350)
[slice(0, 3, None), slice(3, 6, None), slice(6, 9, None), slice(9, 10, None)]
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["available_memory", "default_memory_budget", "plan_frequency_chunks",
           "DEFAULT_FRACTION", "DEFAULT_CPU_CAP"]

#: Fraction of the free memory used when no budget is given.
DEFAULT_FRACTION = 0.1
#: On the CPU the default budget is also capped at this many bytes: blocks beyond a few
#: hundred MiB gain nothing in GEMM speed and cost page faults on every call.
DEFAULT_CPU_CAP = 256 * 2**20


def available_memory(xp: Any = np) -> int:
    """Free memory in bytes: host ``MemAvailable`` for NumPy, free device memory for CuPy."""
    if xp.__name__.startswith("cupy"):  # pragma: no cover - GPU only
        return int(xp.cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_memory_budget(xp: Any = np, fraction: float = DEFAULT_FRACTION) -> int:
    """Default working-memory budget in bytes: ``fraction`` of the free memory (capped at
    :data:`DEFAULT_CPU_CAP` on the CPU)."""
    budget = int(fraction * available_memory(xp))
    if not xp.__name__.startswith("cupy"):
        budget = min(budget, DEFAULT_CPU_CAP)
    return max(budget, 1)


def plan_frequency_chunks(nfreq: int, bytes_per_channel: int, budget: int,
                          max_channels: int | None = None) -> list[slice]:
    """Split ``range(nfreq)`` into consecutive blocks whose working set fits ``budget``.

    Parameters
    ----------
    nfreq : int
        Number of channels.
    bytes_per_channel : int
        Working memory one channel needs (bytes).
    budget : int
        Memory budget (bytes); at least one channel per block is always allowed.
    max_channels : int, optional
        Upper bound on the block length.

    Returns
    -------
    list of slice
    """
    if budget <= 0:
        raise InputError(f"memory_budget: expected a positive number of bytes, received {budget}")
    n = max(1, min(nfreq, int(budget // max(bytes_per_channel, 1))))
    if max_channels is not None:
        n = max(1, min(n, int(max_channels)))
    return [slice(i, min(i + n, nfreq)) for i in range(0, nfreq, n)]
