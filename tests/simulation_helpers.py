"""Chunk builders for the tests of :mod:`linlim.distributed.simulate` that a child
process must be able to import (``tests.simulation_helpers``)."""

from __future__ import annotations

import os
import signal

import numpy as np

from linlim.distributed.simulate import point_source_chunk


def point_source_chunk_or_die(description: dict, times: slice, freqs: slice) -> np.ndarray:
    """:func:`~linlim.distributed.simulate.point_source_chunk`, except that the process
    kills itself (SIGKILL, no clean-up) when asked for a block that starts at the time
    index in the environment variable ``LINLIM_TEST_DIE_AT``: a driver dying mid-run."""
    if os.environ.get("LINLIM_TEST_DIE_AT") == str(times.start):
        os.kill(os.getpid(), signal.SIGKILL)
    return point_source_chunk(description, times, freqs)
