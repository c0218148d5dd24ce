"""Shared pieces of the optimisers: the objective wrapper, the result object, history,
progress bar and checkpoint plumbing.

Optimisers minimise ``loss(theta) = -post.value(theta)`` of a
:class:`~linlim.likelihood.LogPosterior` (or any object with ``value_and_grad``), or a plain
callable ``fun(x) -> (f, g)`` returning the loss and its gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..backend import asarray, get_xp, to_numpy, xp_of
from ..errors import InputError, ShapeError
from . import checkpoint as _ckpt

__all__ = ["OptimizeResult", "Objective", "HISTORY_KEYS"]

HISTORY_KEYS = ("loss", "grad_norm", "step_norm", "nfev", "ngev", "njvp", "nvjp", "time")


def check_count(value: Any, name: str, where: str, minimum: int = 1) -> int:
    """An integer argument (``maxiter``, ``maxfun``, ...) ``>= minimum``; else InputError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise InputError(f"{where}: {name}: expected an integer >= {minimum}, received "
                          f"{value!r}")
    return int(value)


@dataclass
class OptimizeResult:
    """Outcome of an optimiser.

    Attributes
    ----------
    x : array (n,) float64
        The final parameters (on the optimiser's array module).
    fun : float
        Final loss ``-log posterior`` (or ``fun``'s value).
    grad : array (n,)
        Gradient of the loss at ``x``.
    success : bool
        True when a documented tolerance was met (not on maxiter/maxfun).
    status : int
        0 converged, 1 maxiter/maxfun reached, 2 stalled/line search failed.
    message : str
    nit : int
        Iterations done (counting those before a resume).
    nfev, ngev : int
        Loss and gradient evaluations.
    njvp, nvjp : int
        J and J^H products (Gauss-Newton solvers; from a LogPosterior's counters).
    method : str
    history : dict of numpy arrays
        Per iteration (entry 0 is the starting point): ``loss``, ``grad_norm`` (inf-norm;
        projected for bounded L-BFGS), ``step_norm`` (2-norm of the step), cumulative
        ``nfev``, ``ngev``, ``njvp``, ``nvjp``, wall ``time`` (s, not restored on resume),
        plus method-specific keys (``lambda`` for LM, ``cg_iters`` for GN/LM).
    """

    x: Any
    fun: float
    grad: Any
    success: bool
    status: int
    message: str
    nit: int
    nfev: int
    ngev: int
    njvp: int = 0
    nvjp: int = 0
    method: str = ""
    history: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"OptimizeResult(method={self.method!r}, success={self.success}, "
                f"message={self.message!r}, fun={self.fun:.10g}, nit={self.nit}, "
                f"nfev={self.nfev}, njvp={self.njvp}, nvjp={self.nvjp})")


class Objective:
    """Loss ``f = -value`` and its gradient, with evaluation counters.

    Parameters
    ----------
    target : LogPosterior-like or callable
        An object with ``value_and_grad(theta) -> (log posterior, grad)`` (maximised), or a
        callable ``fun(x) -> (loss, grad)`` (minimised).
    x0 : array
        Starting point; fixes the array module for callables.
    """

    def __init__(self, target: Any, x0: Any) -> None:
        self.target = target
        self.is_post = hasattr(target, "value_and_grad")
        if not self.is_post and not callable(target):
            raise InputError("optimiser: expected a LogPosterior (with value_and_grad) or a "
                             f"callable fun(x) -> (loss, grad), received {type(target).__name__}")
        self.xp = target.xp if self.is_post else (xp_of(x0) if hasattr(x0, "shape")
                                                    else get_xp())
        self.nfev = self.ngev = 0
        self._c0 = self._counts()

    def _counts(self) -> tuple[int, int]:
        c = getattr(self.target, "counts", None)
        return (c["jvp"], c["vjp"]) if self.is_post and c is not None else (0, 0)

    @property
    def njvp(self) -> int:
        return self._counts()[0] - self._c0[0] + self._jvp_offset

    @property
    def nvjp(self) -> int:
        return self._counts()[1] - self._c0[1] + self._vjp_offset

    _jvp_offset = 0
    _vjp_offset = 0

    def restore_counts(self, nfev: int, ngev: int, njvp: int, nvjp: int) -> None:
        """Continue counting from a checkpoint's totals."""
        self.nfev, self.ngev = int(nfev), int(ngev)
        self._c0 = self._counts()
        self._jvp_offset, self._vjp_offset = int(njvp), int(nvjp)

    def check_x(self, x0: Any, n: int | None = None) -> Any:
        x = asarray(x0, self.xp, np.float64) if not hasattr(x0, "dtype") or \
            xp_of(x0) is not self.xp else x0.astype(np.float64, copy=True)
        if x.ndim != 1:
            raise ShapeError(f"optimiser: theta0 must be 1-D, received shape {tuple(x.shape)}")
        size = getattr(self.target, "size", None) if n is None else n
        if size is not None and x.shape[0] != size:
            raise ShapeError(f"optimiser: theta0 must have shape ({size},), received "
                             f"{tuple(x.shape)}")
        if not bool(self.xp.isfinite(x).all()):
            raise InputError("optimiser: theta0 contains non-finite values")
        return x

    def __call__(self, x: Any) -> tuple[float, Any]:
        """``(loss, gradient)`` at ``x``."""
        self.nfev += 1
        self.ngev += 1
        if self.is_post:
            v, g = self.target.value_and_grad(x)
            return -float(v), -g
        f, g = self.target(x)
        return float(f), g


class History:
    """Per-iteration records, checkpointable."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.keys = HISTORY_KEYS + tuple(extra)
        self.data: dict[str, list] = {k: [] for k in self.keys}
        self.t0 = time.perf_counter()
        self.t_offset = 0.0

    def record(self, obj: Objective, **values: float) -> None:
        values.setdefault("nfev", obj.nfev)
        values.setdefault("ngev", obj.ngev)
        values.setdefault("njvp", obj.njvp)
        values.setdefault("nvjp", obj.nvjp)
        values.setdefault("time", self.t_offset + time.perf_counter() - self.t0)
        for k in self.keys:
            self.data[k].append(float(values.get(k, np.nan)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.data.items()}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        for k in self.keys:
            self.data[k] = [float(a) for a in arrays.get(k, [])]
        if self.data["time"]:
            self.t_offset = self.data["time"][-1]


class Progress:
    """A tqdm progress bar over iterations (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int, desc: str, initial: int = 0) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, initial=initial, leave=True)

    def update(self, loss: float, gnorm: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.6g}", grad=f"{gnorm:.2e}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def to_host(a: Any) -> np.ndarray:
    """Copy an array to host NumPy memory (for checkpoints)."""
    return np.asarray(to_numpy(a))


def to_float(a: Any) -> float:
    """A 0-d array of any backend (or a number) as a Python float."""
    return float(to_numpy(a))


COUNT_KEYS = ("nfev", "ngev", "njvp", "nvjp")


class OptimizerRun:
    """The bookkeeping every optimiser loop shares: history, checkpoints, resume, result.

    Parameters
    ----------
    method : str
        Optimiser name (checkpoint format and result).
    obj : Objective
        The wrapped objective, whose counters are saved and restored.
    checkpoint : path or None
        Where to write checkpoints (None: none).
    checkpoint_every : int
        Write one every this many iterations (and at the end).
    resume : path or None
        Checkpoint to resume from.
    extra : tuple of str
        History keys beyond :data:`HISTORY_KEYS`.

    Attributes
    ----------
    hist : History
        Loaded from the resume file when resuming.
    state : dict or None
        The resumed optimiser state (None for a fresh start).
    """

    def __init__(self, method: str, obj: Objective, checkpoint: Any, checkpoint_every: int,
                 resume: Any, extra: tuple[str, ...] = ()) -> None:
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise InputError(f"optimiser: checkpoint_every must be >= 1, received "
                             f"{checkpoint_every}")
        self.method, self.obj = method, obj
        self.path, self.every = checkpoint, int(checkpoint_every or 1)
        self.hist = History(extra)
        self.state: dict | None = None
        if resume is not None:
            self.state, harr = _ckpt.load_checkpoint(resume, method)
            self.hist.load(harr)

    def restore_counts(self) -> None:
        """Set the objective's evaluation counters to the resumed run's."""
        if self.state is not None:
            self.obj.restore_counts(*(self.state[k] for k in COUNT_KEYS))

    def counts(self) -> dict[str, int]:
        """The objective's counters, for the state dict of a checkpoint."""
        return {k: getattr(self.obj, k) for k in COUNT_KEYS}

    def save(self, state: dict) -> None:
        """Write ``state`` and the history to the checkpoint file."""
        _ckpt.save_checkpoint(self.path, self.method, state, self.hist.arrays())

    def checkpoint(self, it: int, state: Callable[[], dict]) -> None:
        """Write ``state()`` if checkpointing and iteration ``it`` is due."""
        if self.path is not None and it % self.every == 0:
            self.save(state())

    def finish(self, state: dict, x: Any, f: float, g: Any, status: int, message: str,
               it: int) -> OptimizeResult:
        """Write the final checkpoint (if checkpointing) and assemble the
        :class:`OptimizeResult` from the objective's counters and the history."""
        if self.path is not None:
            self.save(state)
        obj = self.obj
        return OptimizeResult(x, f, g, status == 0, status, message, it, obj.nfev, obj.ngev,
                              obj.njvp, obj.nvjp, self.method, self.hist.arrays())


def call_callback(callback: Callable | None, x: Any, it: int, loss: float) -> bool:
    """Call ``callback(x, iteration, loss)``; a True return stops the optimiser."""
    return bool(callback(x, it, loss)) if callback is not None else False

