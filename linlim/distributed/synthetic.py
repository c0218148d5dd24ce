"""Chunk builders for a synthetic linear-Gaussian problem (tests, tutorials, overhead
benchmarks of the scale-out layer).

A chunk ``i`` holds its own complex design matrix ``A_i`` (Nrow, n), heteroscedastic
noise and data ``d_i = A_i x_true + n_i``, all generated from ``description["seed"]`` and
``i``, so any worker can rebuild any chunk from the description alone.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..likelihood import GaussianLikelihood, LogPosterior
from ..operators.linear import MatrixMult

__all__ = ["linear_gaussian_chunk", "linear_gaussian_truth"]


def linear_gaussian_truth(description: dict[str, Any]) -> np.ndarray:
    """The true parameter vector ``x_true`` (n,) shared by all chunks."""
    rng = np.random.default_rng([int(description["seed"]), 2**31 - 1])
    return rng.standard_normal(int(description["nparams"]))


def linear_gaussian_chunk(description: dict[str, Any], index: int) -> LogPosterior:
    """Build chunk ``index`` of the synthetic problem as a likelihood-only LogPosterior.

    Parameters
    ----------
    description : dict
        ``{"seed": int, "nparams": int, "nrows": int, "build_delay_s": float (optional),
        "call_delay_s": float (optional)}``; the delays simulate expensive chunks.
    index : int
        Chunk number.
    """
    rng = np.random.default_rng([int(description["seed"]), int(index)])
    n, m = int(description["nparams"]), int(description["nrows"])
    A = (rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))) / np.sqrt(n)
    sigma = 0.1 * (1.0 + rng.random(m))
    noise = sigma / np.sqrt(2) * (rng.standard_normal(m) + 1j * rng.standard_normal(m))
    data = A @ linear_gaussian_truth(description) + noise
    time.sleep(float(description.get("build_delay_s", 0.0)))
    model = MatrixMult(A, in_dtype=np.float64)
    post = LogPosterior(GaussianLikelihood(model, data, sigma=sigma))
    delay = float(description.get("call_delay_s", 0.0))
    if delay:
        post = _Slow(post, delay)
    return post


class _Slow:
    """Delays every call of a chunk posterior (to exercise worker failures mid-task)."""

    def __init__(self, post: LogPosterior, delay: float) -> None:
        self.post, self.delay, self.size, self.xp = post, delay, post.size, post.xp

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.post, name)
        if not callable(attr):
            return attr

        def slow(*args: Any) -> Any:
            time.sleep(self.delay)
            return attr(*args)

        return slow
