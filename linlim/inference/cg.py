"""Preconditioned conjugate gradients for symmetric positive (semi-)definite operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["CGResult", "conjugate_gradient"]


@dataclass
class CGResult:
    """Outcome of :func:`conjugate_gradient`.

    Attributes
    ----------
    x : array (n,)
        Approximate solution of ``A x = b``.
    niter : int
        Iterations (= operator products) done.
    residual_norm : float
        ``||b - A x||_2`` (recursively updated).
    converged : bool
        ``residual_norm <= tol * ||b||``.
    negative_curvature : bool
        Stopped because ``p^T A p <= 0`` (A not positive definite along ``p``).
    """

    x: Any
    niter: int
    residual_norm: float
    converged: bool
    negative_curvature: bool = False


def _dot(a: Any, b: Any) -> float:
    v = a @ b
    return float(v.get() if hasattr(v, "get") else v)


def conjugate_gradient(matvec: Callable[[Any], Any], b: Any, *, x0: Any = None,
                       tol: float = 1e-10, maxiter: int | None = None,
                       precond: Callable[[Any], Any] | None = None) -> CGResult:
    """Solve ``A x = b`` for a symmetric positive definite ``A`` given as ``matvec``.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` on real (n,) vectors (NumPy or CuPy).
    b : array (n,) float64
    x0 : array (n,), optional
        Starting guess (zero by default).
    tol : float
        Relative residual ``||b - A x|| / ||b||`` to reach.
    maxiter : int, optional
        Maximum iterations (default ``2 n``).
    precond : callable, optional
        ``r -> M^-1 r`` with ``M`` SPD approximating ``A``.

    Returns
    -------
    CGResult

    Notes
    -----
    Standard PCG (Hestenes-Stiefel with ``z = M^-1 r``). On a positive *semi*-definite
    ``A`` with a consistent ``b`` (a gauge freedom) CG stays in the range of ``A`` when
    started from zero and returns the solution of least norm in the ``M`` metric.
    """
    n = b.shape[0]
    maxiter = 2 * n if maxiter is None else int(maxiter)
    x = b * 0.0 if x0 is None else x0.copy()
    r = b - matvec(x) if x0 is not None else b.copy()
    bnorm = np.sqrt(_dot(b, b))
    if bnorm == 0.0:
        return CGResult(x, 0, 0.0, True)
    z = precond(r) if precond is not None else r
    p = z.copy()
    rz = _dot(r, z)
    rnorm = np.sqrt(_dot(r, r))
    it = 0
    while it < maxiter and rnorm > tol * bnorm:
        Ap = matvec(p)
        pAp = _dot(p, Ap)
        it += 1
        if pAp <= 0.0:
            return CGResult(x, it, rnorm, False, True)
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rnorm = np.sqrt(_dot(r, r))
        z = precond(r) if precond is not None else r
        rz_new = _dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(x, it, rnorm, rnorm <= tol * bnorm)
