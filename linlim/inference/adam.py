"""Adam (Kingma & Ba 2015) for noisy objectives (e.g. stochastic, chunk-subsampled losses)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import InputError
from .lbfgs import _bounds
from .optimize import Objective, OptimizeResult, OptimizerRun, Progress, call_callback, check_count
from .optimize import to_float as _f

__all__ = ["adam"]


def _check_lr(rate: Any, name: str) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise InputError(f"adam: {name}: expected a finite number > 0, received "
                         f"{rate!r}") from None
    if not (np.isfinite(r) and r > 0):
        raise InputError(f"adam: {name}: expected a finite number > 0, received {rate!r}")
    return r


def adam(fun: Any, x0: Any, *, lr: float | Callable[[int], float] = 1e-3, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, maxiter: int = 1000, gtol: float = 0.0,
         xtol: float = 0.0, bounds: Any = None, progress: bool = False,
         callback: Callable | None = None, checkpoint: Any = None, checkpoint_every: int = 1,
         resume: Any = None) -> OptimizeResult:
    """Minimise with Adam.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``x <- x - lr_k (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)``, then projected into
    the box if ``bounds`` are given.

    Parameters
    ----------
    fun : LogPosterior or callable
        A LogPosterior (``-value`` is minimised) or ``fun(x) -> (loss, grad)``; may be noisy.
    x0 : array (n,) float64
    lr : float or callable
        Step size, or a schedule ``lr(k)`` of the iteration ``k >= 1``.
    beta1, beta2, eps : float
    maxiter : int
        Iterations (exact; one evaluation each, plus the initial one).
    gtol : float
        Stop when ``||g||_inf <= gtol`` (0 disables: noisy gradients rarely get small).
    xtol : float
        Stop when the step inf-norm ``<= xtol`` (0 disables).
    bounds : None, (lo, hi) or sequence of (lo, hi)
        Box constraints by projection.
    progress, callback, checkpoint, checkpoint_every, resume
        As in :func:`~linlim.inference.gauss_newton.gauss_newton`.

    Returns
    -------
    OptimizeResult
        ``fun`` and ``x`` are the last iterate (not the best seen; noisy losses are not
        comparable between iterations).
    """
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise InputError(f"adam: betas must lie in [0, 1), received {beta1}, {beta2}")
    maxiter = check_count(maxiter, "maxiter", "adam", 0)
    if not callable(lr):
        _check_lr(lr, "lr")
    obj = Objective(fun, x0)
    xp = obj.xp
    x = obj.check_x(x0)
    lo, hi = _bounds(bounds, x.shape[0], xp)
    run = OptimizerRun("adam", obj, checkpoint, checkpoint_every, resume)
    hist = run.hist
    m, v, it = xp.zeros_like(x), xp.zeros_like(x), 0
    if run.state is not None:
        state = run.state
        x, m, v = xp.asarray(state["x"]), xp.asarray(state["m"]), xp.asarray(state["v"])
        it = int(state["it"])
        f, g = float(state["f"]), xp.asarray(state["g"])
        run.restore_counts()
    else:
        if lo is not None:
            x = xp.minimum(xp.maximum(x, lo), hi)
        f, g = obj(x)
        hist.record(obj, loss=f, grad_norm=_f(xp.abs(g).max()), step_norm=0.0)
    bar = Progress(progress, maxiter, "adam", initial=it)
    status, message = None, ""

    def state_dict() -> dict:
        return dict(x=x, m=m, v=v, it=it, f=f, g=g, **run.counts())

    try:
        while True:
            gnorm = _f(xp.abs(g).max())
            if gnorm <= gtol:
                status, message = 0, "converged: gradient inf-norm <= gtol"
                break
            if it >= maxiter:
                status, message = 1, "maximum number of iterations reached"
                break
            it += 1
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * g * g
            rate = _check_lr(lr(it), f"lr({it})") if callable(lr) else lr
            step = -rate * (m / (1.0 - beta1**it)) / (xp.sqrt(v / (1.0 - beta2**it)) + eps)
            x_new = x + step
            if lo is not None:
                x_new = xp.minimum(xp.maximum(x_new, lo), hi)
            dx = x_new - x
            snorm = _f(xp.abs(dx).max())
            x = x_new
            f, g = obj(x)
            hist.record(obj, loss=f, grad_norm=_f(xp.abs(g).max()),
                        step_norm=_f(xp.sqrt(dx @ dx)))
            if not (np.isfinite(f) and bool(xp.isfinite(g).all())):
                status, message = 2, (f"stopped: the loss or its gradient became non-finite "
                                      f"(loss {f!r}) at iteration {it}; lower lr")
                break
            bar.update(f, _f(xp.abs(g).max()))
            run.checkpoint(it, state_dict)
            if call_callback(callback, x, it, f):
                status, message = 0, "stopped by callback"
                break
            if snorm <= xtol:
                status, message = 0, "converged: step inf-norm <= xtol"
                break
    finally:
        bar.close()
    return run.finish(state_dict(), x, f, g, status, message, it)

