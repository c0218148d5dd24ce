"""The one preconditioned conjugate-gradient solver of linlim.

Every symmetric positive (semi-)definite solve in the package goes through
:func:`conjugate_gradient`: the Gauss-Newton / Levenberg-Marquardt inner solves, Fisher
Schur complements, covariance-operator priors (:mod:`linlim.priors`) and the low-rank
posterior's probes.

What it adds to textbook PCG (Hestenes-Stiefel with ``z = M^-1 r``):

* the real inner product ``<a, b> = Re sum conj(a) b`` of DESIGN.md, so vectors may be real or
  complex arrays of any shape (NumPy or CuPy);
* a **stagnation guard**: when the residual has not reached a new minimum for ``window``
  iterations the solve stops and returns its best iterate (``reason="stagnated"``) instead of
  running to ``maxiter`` -- on an inconsistent semi-definite system (a rounding-level gauge
  component in the right-hand side) CG otherwise drifts along the null space;
* breakdown checks: ``p^T A p <= 0`` (``"negative_curvature"``) or a non-finite product
  (``"non_finite"``) stop with the last good iterate and say why;
* an optional **projection** onto the complement of a known null space (a gauge), applied to
  the right-hand side and to every preconditioned residual (deflated PCG), so the system
  stays consistent to rounding;
* :func:`forcing_term`, the Eisenstat-Walker tolerance of an inexact Newton method, so the
  inner solve is only as accurate as the outer iteration needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..backend import xp_of
from ..errors import InputError

__all__ = ["CGResult", "conjugate_gradient", "forcing_term", "null_space_projector"]

REASONS = ("converged", "zero_rhs", "maxiter", "stagnated", "negative_curvature", "non_finite")


@dataclass
class CGResult:
    """Outcome of :func:`conjugate_gradient`.

    Attributes
    ----------
    x : array, shape of ``b``
        Approximate solution of ``A x = b`` (the best iterate when the solve stagnated;
        ``M^-1 b`` when the very first direction has non-positive curvature, as Newton-CG
        does).
    niter : int
        Iterations done (= operator products, plus one when ``x0`` is given).
    residual_norm : float
        ``||b - A x||_2`` of the returned ``x`` (recursively updated).
    converged : bool
        ``residual_norm <= max(tol * ||b||, atol)``.
    negative_curvature : bool
        Stopped because ``p^T A p <= 0`` (``A`` not positive definite along ``p``).
    reason : str
        One of ``"converged"``, ``"zero_rhs"``, ``"maxiter"``, ``"stagnated"``,
        ``"negative_curvature"``, ``"non_finite"``.
    residuals : list of float
        ``||r_k||`` per iteration (entry 0 is ``||r_0||``).
    """

    x: Any
    niter: int
    residual_norm: float
    converged: bool
    negative_curvature: bool = False
    reason: str = "converged"
    residuals: list = field(default_factory=list, repr=False)


def _dot(a: Any, b: Any) -> float:
    """Real inner product ``Re sum conj(a) b`` as a host float."""
    xp = xp_of(a)
    v = xp.vdot(a, b)
    v = v.real if np.iscomplexobj(v) else v
    return float(v.get() if hasattr(v, "get") else v)


def null_space_projector(null: Any) -> Callable[[Any], Any]:
    """Orthogonal projector ``v -> v - Q (Q^T v)`` onto the complement of ``span(null)``.

    Parameters
    ----------
    null : array (n,) or (n, k)
        Vectors spanning the null space (any scaling; orthonormalised here by a thin QR).

    Returns
    -------
    callable
        ``project(v)`` for real vectors ``v`` of shape (n,).
    """
    xp = xp_of(null)
    N = null[:, None] if null.ndim == 1 else null
    if N.ndim != 2:
        raise InputError(f"null_space_projector: null must have shape (n,) or (n, k), "
                         f"received {tuple(null.shape)}")
    Q, _ = xp.linalg.qr(N)

    def project(v: Any) -> Any:
        return v - Q @ (Q.T @ v)

    return project


def forcing_term(grad_norm: float, grad_norm0: float | None = None, *, eta_max: float = 0.5,
                 c: float = 1.0, exponent: float = 1.0, eta_min: float = 0.0) -> float:
    """Eisenstat-Walker forcing term: the relative CG tolerance of an inexact Newton step.

    ``eta = clip(c * (||g_k|| / ||g_0||)^exponent, eta_min, eta_max)``.

    Parameters
    ----------
    grad_norm : float
        ``||g_k||``, the gradient norm at the current outer iterate.
    grad_norm0 : float, optional
        Scale ``||g_0||`` (the first outer gradient); 1 if omitted (absolute form,
        ``eta = min(eta_max, c ||g_k||^exponent)``).
    eta_max : float
        Loosest tolerance (early iterations), < 1.
    c, exponent : float
        ``exponent = 1`` keeps Newton's local quadratic convergence (inexact Newton theory:
        ``eta_k = O(||g_k||)``), ``exponent = 1/2`` gives superlinear convergence for fewer
        inner iterations.
    eta_min : float
        Tightest tolerance (a floor near working precision).

    Returns
    -------
    float

    Examples
    --------
    >>> forcing_term(1e-3, 1.0)
    0.001
    >>> forcing_term(10.0, 1.0)
    0.5
    """
    scale = 1.0 if not grad_norm0 else float(grad_norm0)
    eta = float(c) * (float(grad_norm) / scale) ** float(exponent)
    return float(min(eta_max, max(eta_min, eta)))


def conjugate_gradient(matvec: Any, b: Any, *, x0: Any = None, tol: float = 1e-10,
                       atol: float = 0.0, maxiter: int | None = None,
                       precond: Callable[[Any], Any] | None = None,
                       project: Callable[[Any], Any] | None = None, null_space: Any = None,
                       window: int | None = 100, callback: Callable | None = None) -> CGResult:
    """Solve ``A x = b`` for a symmetric positive (semi-)definite ``A`` given by products.

    Parameters
    ----------
    matvec : callable or LinearOperator
        ``v -> A v`` (a LinearOperator's ``matvec`` is used). Vectors are real or complex
        arrays of ``b``'s shape, NumPy or CuPy; ``A`` must be self-adjoint under
        ``Re <., .>``.
    b : array
        Right-hand side.
    x0 : array, optional
        Starting guess (zero by default; then no product is spent on ``r_0``).
    tol, atol : float
        Stop when ``||r|| <= max(tol * ||b||, atol)`` (``b`` after projection).
    maxiter : int, optional
        Iteration cap (default ``2 * b.size``).
    precond : callable, optional
        ``r -> M^-1 r`` with ``M`` symmetric positive definite approximating ``A``.
    project : callable, optional
        Orthogonal projector onto the complement of ``A``'s null space (a gauge); applied
        to ``b``, ``x0`` and every preconditioned residual, so the iterates stay in the
        range of ``A`` and the system stays consistent.
    null_space : array (n,) or (n, k), optional
        Alternatively, vectors spanning the null space (builds ``project``).
    window : int or None
        Stagnation guard: stop when ``||r||`` has not reached a new minimum for ``window``
        iterations and return the best iterate. None disables it.
    callback : callable, optional
        ``callback(x, k, rnorm)`` after every iteration.

    Returns
    -------
    CGResult

    Notes
    -----
    Standard PCG. On a positive *semi*-definite ``A`` with a consistent ``b`` (a gauge
    freedom) CG started from zero stays in the range of ``A`` and returns the solution of
    least norm in the ``M`` metric; with an inconsistent ``b`` (a rounding-level component
    along the null space) the recursion drifts: ``project`` removes that component and the
    stagnation guard catches what is left.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> r = conjugate_gradient(lambda v: A @ v, np.array([1.0, 2.0]), tol=1e-12)
    >>> bool(np.allclose(A @ r.x, [1.0, 2.0])), r.reason
    (True, 'converged')
    """
    if hasattr(matvec, "matvec"):
        matvec = matvec.matvec
    if not callable(matvec):
        raise InputError(f"conjugate_gradient: matvec must be callable or a LinearOperator, "
                         f"received {type(matvec).__name__}")
    if project is None and null_space is not None:
        project = null_space_projector(null_space)
    if window is not None and int(window) < 1:
        raise InputError(f"conjugate_gradient: window must be >= 1 or None, received {window}")
    maxiter = 2 * int(b.size) if maxiter is None else int(maxiter)
    if project is not None:
        b = project(b)
    bnorm = np.sqrt(_dot(b, b))
    it = 0
    if x0 is None:
        x = b * 0.0
        r = b.copy()
    else:
        x = project(x0) if project is not None else x0.copy()
        r = b - matvec(x)
        it = 1
    rnorm = np.sqrt(_dot(r, r))
    residuals = [rnorm]
    stop = max(float(tol) * bnorm, float(atol))
    if bnorm == 0.0 and rnorm == 0.0:
        return CGResult(x, it, 0.0, True, reason="zero_rhs", residuals=residuals)
    if not np.isfinite(rnorm):
        return CGResult(x, it, rnorm, False, reason="non_finite", residuals=residuals)

    def apply_m(v: Any) -> Any:
        z = precond(v) if precond is not None else v
        return project(z) if project is not None else z

    z = apply_m(r)
    p = z.copy()
    rz = _dot(r, z)
    best = (rnorm, x, 0)  # (residual, iterate, iteration index of the best)
    k = 0
    reason = "maxiter"
    while True:
        if rnorm <= stop:
            reason = "converged"
            break
        if k >= maxiter:
            reason = "maxiter"
            break
        Ap = matvec(p)
        pAp = _dot(p, Ap)
        k += 1
        if not np.isfinite(pAp):
            reason = "non_finite"
            break
        if pAp <= 0.0:
            reason = "negative_curvature"
            if k == 1 and x0 is None:  # Newton-CG convention: the preconditioned gradient
                x = p
            break
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rnorm = np.sqrt(_dot(r, r))
        residuals.append(rnorm)
        if not np.isfinite(rnorm):
            reason = "non_finite"
            break
        if callback is not None:
            callback(x, k, rnorm)
        if rnorm < best[0]:
            best = (rnorm, x, k)
        elif window is not None and k - best[2] >= int(window):
            reason = "stagnated"
            break
        z = apply_m(r)
        rz_new = _dot(r, z)
        if rz_new <= 0.0 or not np.isfinite(rz_new):  # M not positive definite, or r = 0
            reason = "converged" if rnorm <= stop else "non_finite"
            break
        p = z + (rz_new / rz) * p
        rz = rz_new
    if reason in ("stagnated", "non_finite", "maxiter") and best[0] < rnorm:
        rnorm, x = best[0], best[1]
    return CGResult(x, it + k, float(rnorm), bool(rnorm <= stop),
                    reason == "negative_curvature", reason, residuals)
