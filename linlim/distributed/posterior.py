"""A log posterior whose data are chunked across Dask workers.

Each chunk of the data (a block of times and/or frequencies) is a task. A worker keeps its
chunk's likelihood and operators *resident* between iterations (in a worker-local cache),
so an iteration costs one broadcast of ``theta`` and one small reply per chunk. The driver
sums the chunks' values, gradients and Gauss-Newton products and adds the priors, which
live in the driver process.

Worker state is lost when a worker dies, so a chunk is never *only* held in a worker's
memory: it is rebuilt from a small, picklable description (``builder``, ``description``,
``index``) wherever its task lands. Tasks are submitted with retries, so a killed worker is
survived: Dask reruns the task on another worker, which rebuilds the chunk from its
description, and the result is unchanged.

The optimisers and samplers see the same protocol as for an in-process
:class:`linlim.likelihood.LogPosterior`: ``size``, ``xp``, ``value``, ``grad``,
``value_and_grad``, ``gn_product`` and ``linearize_gn``.
"""

from __future__ import annotations

import hashlib
import pickle
import uuid
from typing import Any, Callable

import numpy as np

from ..backend import asarray, to_numpy
from ..errors import InputError
from ..operators.base import LinearOperator

__all__ = ["DistributedLogPosterior", "chunk_call", "resident_chunks"]

# worker-local cache: key -> built chunk (and the last linearisation it made)
_RESIDENT: dict[tuple, Any] = {}
_LINEARIZED: dict[tuple, tuple[int, Any]] = {}


def _key(builder: Callable, description: Any, index: int) -> tuple:
    digest = hashlib.sha1(pickle.dumps(description)).hexdigest()
    return (builder.__module__, builder.__qualname__, digest, int(index))


def resident_chunks() -> list[tuple]:
    """Keys of the chunks resident in this process (for tests and diagnostics)."""
    return list(_RESIDENT)


def chunk_call(builder: Callable, description: Any, index: int, method: str,
               *args: Any) -> Any:
    """Run ``method`` on chunk ``index``, building it from its description if needed.

    This is the task function that workers execute. ``builder(description, index)`` must
    return an object with the LogPosterior protocol for that chunk's data (likelihood only:
    priors are added once, on the driver).

    ``method`` is one of ``"size"``, ``"value"``, ``"value_and_grad"``, ``"gn_product"``
    (args ``theta, v``) and ``"gn_product_cached"`` (args ``token, theta, v``: reuse the
    chunk's linearisation for the driver's linearisation ``token``).
    """
    key = _key(builder, description, index)
    chunk = _RESIDENT.get(key)
    if chunk is None:
        chunk = _RESIDENT[key] = builder(description, index)
    if method == "size":
        return int(chunk.size)
    xp = getattr(chunk, "xp", np)
    if xp is not np:  # a GPU chunk: the driver sends and receives NumPy arrays
        args = tuple(asarray(a, xp) if isinstance(a, np.ndarray) else a for a in args)
    if method == "gn_product_cached":
        token, theta, v = args
        cached = _LINEARIZED.get(key)
        if cached is None or cached[0] != token:
            cached = _LINEARIZED[key] = (token, chunk.linearize_gn(theta))
        return _to_host(cached[1].matvec(v))
    return _to_host(getattr(chunk, method)(*args))


def _to_host(result: Any) -> Any:
    """Results as NumPy (and tuples of them), whatever device the chunk computed on."""
    if isinstance(result, tuple):
        return tuple(_to_host(r) for r in result)
    if isinstance(result, (int, float)):
        return result
    return to_numpy(result)


class DistributedLogPosterior:
    """Sum of per-chunk log likelihoods evaluated on Dask workers, plus local priors.

    Parameters
    ----------
    client : distributed.Client
        The cluster to use (e.g. the client of
        :func:`~linlim.distributed.cluster.local_cluster`; dask-cuda's
        ``LocalCUDACluster`` gives one worker per GPU).
    builder : callable
        ``builder(description, index) -> chunk posterior``; a top-level (importable)
        function, so that any worker can rebuild any chunk.
    description : picklable
        Small description shared by all chunks (a config dict, file paths).
    nchunks : int
        Number of chunks; chunk ``i`` is pinned to worker ``i % nworkers`` but may run
        elsewhere if that worker dies.
    priors : sequence of linlim.priors.Prior, optional
        Priors evaluated in the driver process and added to the chunks' sum.
    params : Params, optional
        Parameter layout, for priors that name a block.
    retries : int
        How many times a failed task (e.g. its worker was killed) is retried.

    Notes
    -----
    ``value = sum_c value_c + prior``, ``grad = sum_c grad_c + grad_prior``, and the
    Gauss-Newton product ``sum_c 2 Re(J_c^H W_c J_c) v + H_prior v``. Chunks are disjoint
    blocks of data, so the sums are exact.
    """

    def __init__(self, client: Any, builder: Callable, description: Any, nchunks: int,
                 priors: Any = (), params: Any = None, retries: int = 3) -> None:
        if int(nchunks) < 1:
            raise InputError(f"DistributedLogPosterior: nchunks must be >= 1, received {nchunks}")
        self.client, self.builder, self.description = client, builder, description
        self.nchunks, self.retries = int(nchunks), int(retries)
        self.xp = np
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise InputError("DistributedLogPosterior: the client has no workers")
        self._placement = [workers[i % len(workers)] for i in range(self.nchunks)]
        sizes = self._map("size")
        if len(set(sizes)) != 1:
            raise InputError(f"DistributedLogPosterior: chunks disagree on size: {sizes}")
        self.size = sizes[0]
        self.priors = [p.bind(self.size, params) for p in (priors or ())]
        # J / J^H products summed over chunks count once each (as for LogPosterior)
        self.counts = dict.fromkeys(("value", "grad", "forward", "jvp", "vjp"), 0)

    def _map(self, method: str, *args: Any) -> list:
        futures = [
            self.client.submit(chunk_call, self.builder, self.description, i, method, *args,
                               workers=[self._placement[i]], allow_other_workers=True,
                               retries=self.retries, pure=False)
            for i in range(self.nchunks)
        ]
        return self.client.gather(futures)

    def _broadcast(self, a: np.ndarray) -> Any:
        return self.client.scatter(np.asarray(a), broadcast=True, hash=False)

    def value(self, theta: np.ndarray) -> float:
        """Log posterior at ``theta`` (sum over chunks plus priors)."""
        self.counts["value"] += 1
        self.counts["forward"] += 1
        total = float(sum(self._map("value", self._broadcast(theta))))
        return total + sum(float(p.logpdf(theta)) for p in self.priors)

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior and its gradient (one forward + one vjp per chunk)."""
        for k in ("value", "grad", "forward", "vjp"):
            self.counts[k] += 1
        parts = self._map("value_and_grad", self._broadcast(theta))
        value = float(sum(p[0] for p in parts))
        grad = np.sum([np.asarray(p[1]) for p in parts], axis=0)
        for p in self.priors:
            value, grad = value + float(p.logpdf(theta)), grad + np.asarray(p.grad(theta))
        return value, grad

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of the log posterior."""
        return self.value_and_grad(theta)[1]

    def gn_product(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Gauss-Newton Hessian of the negative log posterior times ``v``."""
        self.counts["jvp"] += 1
        self.counts["vjp"] += 1
        th = self._broadcast(theta)
        out = np.sum([np.asarray(p) for p in self._map("gn_product", th, np.asarray(v))],
                     axis=0)
        return out + self._prior_hess(theta, v)

    def _prior_hess(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray | float:
        return sum((np.asarray(p.hess_product(theta, v)) for p in self.priors), 0.0)

    def linearize_gn(self, theta: np.ndarray) -> LinearOperator:
        """The Gauss-Newton Hessian at ``theta`` as a LinearOperator; each worker keeps its
        chunk's linearisation for the operator's lifetime (CG loops reuse it)."""
        return _DistributedGN(self, np.asarray(theta), uuid.uuid4().hex)


class _DistributedGN(LinearOperator):
    """Gauss-Newton Hessian of a :class:`DistributedLogPosterior` at a fixed point."""

    _abstract = True  # built by DistributedLogPosterior.linearize_gn; tested through it

    def __init__(self, post: DistributedLogPosterior, theta: np.ndarray, token: str) -> None:
        super().__init__((post.size,), (post.size,), np.float64, np.float64, np,
                         name="GN[distributed]")
        self.post, self.theta, self.token = post, theta, token
        self._theta_future = post._broadcast(theta)

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        self.post.counts["jvp"] += 1
        self.post.counts["vjp"] += 1
        parts = self.post._map("gn_product_cached", self.token, self._theta_future, v)
        out = np.sum([np.asarray(p) for p in parts], axis=0)
        return out + self.post._prior_hess(self.theta, v)

    _rmatvec = _matvec  # the Gauss-Newton Hessian is symmetric
