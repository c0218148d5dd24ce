"""Gauss-Newton and Levenberg-Marquardt for a :class:`~linlim.likelihood.LogPosterior`.

Both minimise ``loss = -log posterior``. Each iteration linearises the model once
(``post.linearize``: value, gradient and a Gauss-Newton operator that caches ``J``), then
solves ``(H + lambda D) dx = -grad`` with ``H = 2 Re(J^H W J) + H_prior`` either densely
(``solver="dense"``: the Fisher matrix from n jvps, then a Cholesky solve; for small
problems) or matrix-free (``solver="cg"``: preconditioned conjugate gradients, each
iteration one jvp + one vjp).

Convergence: Gauss-Newton is quadratic on zero-residual problems (the neglected second-order
term vanishes at the solution) and only linear when residuals are non-zero (noisy data);
on a linear model with a Gaussian prior one dense step is exact.

Stopping rules (any one ends the run; ``success`` is True for the first three):

* ``gtol``: ``||grad loss||_inf <= gtol``;
* ``ftol``: ``(f_k - f_{k+1}) <= ftol * max(|f_k|, |f_{k+1}|, 1)`` on an accepted step,
  or a rejected step whose predicted reduction is below ``ftol * max(|f_k|, 1)`` (the
  loss cannot decrease at working precision);
* ``xtol``: ``||dx||_2 <= xtol * (||theta||_2 + xtol)`` on an accepted step;
* ``maxiter`` iterations (exactly), or a line search / damping that cannot reduce the loss.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import to_numpy
from ..errors import InputError
from .cg import conjugate_gradient
from .fisher import fisher_matrix, jacobian_columns
from .optimize import (
    CheckpointPlan,
    History,
    Objective,
    OptimizeResult,
    Progress,
    call_callback,
    finish,
    load_resume,
)

__all__ = ["gauss_newton", "levenberg_marquardt"]


def _f(a: Any) -> float:
    return float(to_numpy(a))


def _inf_norm(v: Any, xp: Any) -> float:
    return _f(xp.abs(v).max()) if v.shape[0] else 0.0


def _preconditioner(spec: Any, post: Any, theta: Any, H: Any, xp: Any) -> Callable | None:
    if spec is None:
        return None
    if callable(spec):
        return spec
    if isinstance(spec, str):
        if spec != "jacobi":
            raise InputError(f"preconditioner must be None, 'jacobi', an array or a callable, "
                             f"received {spec!r}")
        if hasattr(H, "J") and hasattr(post, "likelihood"):
            A = jacobian_columns(post, theta, J=H.J)
            d = 2.0 * (A.real**2 + (A.imag**2 if A.dtype.kind == "c" else 0.0)).sum(axis=1)
            d = d + post.prior_hessian_diagonal(theta)
        else:
            d = xp.diag(_dense_from_products(H.matvec, post.size, xp))
    else:
        d = xp.asarray(spec, dtype=np.float64)
    d = xp.where(d > 0, d, 1.0)
    return lambda r: r / d


def _dense_from_products(matvec: Callable, n: int, xp: Any) -> Any:
    eye = xp.eye(n, dtype=np.float64)
    F = xp.stack([matvec(eye[k]) for k in range(n)], axis=1)
    return 0.5 * (F + F.T)


class _Solver:
    """The inner linear solve ``(H + lam D) dx = rhs``, dense or CG."""

    def __init__(self, kind: str, cg_tol: float, cg_maxiter: int | None, precond: Any) -> None:
        if kind not in ("cg", "dense"):
            raise InputError(f"solver must be 'cg' or 'dense', received {kind!r}")
        self.kind, self.cg_tol, self.cg_maxiter, self.precond = kind, cg_tol, cg_maxiter, precond
        self.F = None

    def prepare(self, post: Any, theta: Any, H: Any) -> None:
        self.post, self.theta, self.H, self.xp = post, theta, H, post.xp
        if self.kind == "dense":
            if hasattr(H, "J") and hasattr(post, "likelihood"):
                self.F = fisher_matrix(post, theta, J=H.J)
            else:  # a posterior-like object without a visible Jacobian: n GN products
                self.F = _dense_from_products(H.matvec, post.size, self.xp)
            self.M = None
        else:
            self.M = _preconditioner(self.precond, post, theta, H, self.xp)

    def diag(self) -> Any:
        return self.xp.diag(self.F) if self.F is not None else None

    def solve(self, rhs: Any, lam: float = 0.0, D: Any = None) -> tuple[Any, int]:
        xp = self.xp
        if self.kind == "dense":
            A = self.F if lam == 0.0 else self.F + lam * xp.diag(D)
            try:
                L = xp.linalg.cholesky(A)
                x = xp.linalg.solve(L.T, xp.linalg.solve(L, rhs))
                if bool(xp.isfinite(x).all()):  # CuPy returns NaN instead of raising
                    return x, 0
            except Exception:  # numpy: not positive definite
                pass
            return xp.linalg.lstsq(A, rhs, rcond=None)[0], 0  # singular: least squares
        if lam == 0.0:
            mv = self.H.matvec
            M = self.M
        else:
            def mv(v: Any) -> Any:
                return self.H.matvec(v) + lam * D * v

            M = self.M
        res = conjugate_gradient(mv, rhs, tol=self.cg_tol, maxiter=self.cg_maxiter, precond=M)
        return res.x, res.niter


def _setup(post: Any, theta0: Any, method: str, checkpoint: Any, checkpoint_every: int,
           resume: Any, extra: tuple) -> tuple:
    if not hasattr(post, "linearize_gn"):
        raise InputError(f"{method}: post must be a LogPosterior (with linearize_gn), received "
                         f"{type(post).__name__}")
    obj = Objective(post, theta0)
    theta = obj.check_x(theta0)
    hist = History(extra)
    plan = CheckpointPlan(checkpoint, checkpoint_every, method)
    loaded = load_resume(resume, method)
    return obj, theta, hist, plan, loaded


def _linearize(post: Any, theta: Any, obj: Objective) -> tuple[float, Any, Any]:
    obj.nfev += 1
    obj.ngev += 1
    if hasattr(post, "linearize"):
        val, g, H = post.linearize(theta)
    else:
        val, g = post.value_and_grad(theta)
        H = post.linearize_gn(theta)
    return -float(val), -g, H


def gauss_newton(post: Any, theta0: Any, *, maxiter: int = 50, solver: str = "cg",
                 gtol: float = 0.0, ftol: float = 1e-14, xtol: float = 1e-12,
                 cg_tol: float = 1e-10, cg_maxiter: int | None = None,
                 preconditioner: Any = None, line_search: bool = True,
                 max_backtracks: int = 30, progress: bool = False,
                 callback: Callable | None = None, checkpoint: Any = None,
                 checkpoint_every: int = 1, resume: Any = None) -> OptimizeResult:
    """Gauss-Newton minimisation of ``-log posterior``.

    Parameters
    ----------
    post : LogPosterior
        Provides ``linearize`` (or ``value_and_grad`` + ``linearize_gn``) and ``value``.
    theta0 : array (n,) float64
        Starting point (ignored when resuming).
    maxiter : int
        Maximum number of iterations (honoured exactly, counting those before a resume).
    solver : {"cg", "dense"}
        Inner solve: matrix-free preconditioned CG, or the dense Fisher matrix (n jvps per
        iteration) and a Cholesky solve.
    gtol, ftol, xtol : float
        Stopping tolerances (module docstring).
    cg_tol, cg_maxiter : float, int
        Relative residual and iteration cap of the CG inner solve.
    preconditioner : None, "jacobi", array (n,) or callable
        For CG: ``"jacobi"`` uses ``diag(H)`` (n jvps per outer iteration), an array is a
        fixed approximation of ``diag(H)``, a callable maps ``r -> M^-1 r``.
    line_search : bool
        Backtrack (halving, Armijo constant 1e-4) when the full step does not reduce the
        loss; with False the full step is always taken.
    max_backtracks : int
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(theta, iteration, loss)``; returning True stops the run.
    checkpoint : path, optional
        HDF5 file written every ``checkpoint_every`` iterations and at the end.
    resume : path, optional
        Checkpoint to continue from (its theta, iteration count, counters and history).

    Returns
    -------
    OptimizeResult
        ``history`` has ``loss``, ``grad_norm``, ``step_norm``, ``cg_iters`` and the
        cumulative evaluation and J/J^H counters per iteration.
    """
    obj, theta, hist, plan, loaded = _setup(post, theta0, "gauss_newton", checkpoint,
                                            checkpoint_every, resume, ("cg_iters",))
    xp = obj.xp
    it = 0
    if loaded is not None:
        state, harr = loaded
        theta = xp.asarray(state["theta"])
        it = int(state["it"])
        hist.load(harr)
    f, grad, H = _linearize(post, theta, obj)
    if loaded is not None:
        obj.restore_counts(state["nfev"], state["ngev"], state["njvp"], state["nvjp"])
    gnorm = _inf_norm(grad, xp)
    if loaded is None:
        hist.record(obj, loss=f, grad_norm=gnorm, step_norm=0.0, cg_iters=0)
    inner = _Solver(solver, cg_tol, cg_maxiter, preconditioner)
    bar = Progress(progress, maxiter, "gauss_newton", initial=it)
    status, message = None, ""

    def state_dict() -> dict:
        return dict(theta=theta, it=it, nfev=obj.nfev, ngev=obj.ngev, njvp=obj.njvp,
                    nvjp=obj.nvjp)

    try:
        while True:
            if gnorm <= gtol:
                status, message = 0, "converged: gradient inf-norm <= gtol"
                break
            if it >= maxiter:
                status, message = 1, "maximum number of iterations reached"
                break
            inner.prepare(post, theta, H)
            dx, ncg = inner.solve(-grad)
            slope = _f(grad @ dx)
            t, f_new = 1.0, None
            for _ in range(max_backtracks + 1):
                trial = theta + t * dx
                obj.nfev += 1
                f_new = -post.value(trial)
                if not line_search or (np.isfinite(f_new) and f_new <= f + 1e-4 * t * slope):
                    break
                t *= 0.5
            else:
                if -slope <= ftol * max(abs(f), 1.0):
                    status, message = 0, "converged: predicted reduction of the loss <= ftol"
                else:
                    status, message = 2, "line search could not reduce the loss"
                break
            step = t * dx
            theta = trial
            it += 1
            f_old = f
            f, grad, H = _linearize(post, theta, obj)
            gnorm = _inf_norm(grad, xp)
            snorm = _f(xp.sqrt(step @ step))
            hist.record(obj, loss=f, grad_norm=gnorm, step_norm=snorm, cg_iters=ncg)
            bar.update(f, gnorm)
            if plan.due(it):
                plan.save(state_dict(), hist)
            if call_callback(callback, theta, it, f):
                status, message = 0, "stopped by callback"
                break
            if f_old - f <= ftol * max(abs(f_old), abs(f), 1.0) and f <= f_old:
                status, message = 0, "converged: relative reduction of the loss <= ftol"
                break
            if snorm <= xtol * (_f(xp.sqrt(theta @ theta)) + xtol):
                status, message = 0, "converged: step norm <= xtol"
                break
    finally:
        bar.close()
    return finish(plan, state_dict(), hist, theta, f, grad, status, message, it, obj,
                  "gauss_newton")


def levenberg_marquardt(post: Any, theta0: Any, *, maxiter: int = 100, solver: str = "cg",
                        damping: str = "auto", lambda0: float | None = None, tau: float = 1e-3,
                        gtol: float = 0.0, ftol: float = 1e-14, xtol: float = 1e-12,
                        cg_tol: float = 1e-10, cg_maxiter: int | None = None,
                        preconditioner: Any = None, progress: bool = False,
                        callback: Callable | None = None, checkpoint: Any = None,
                        checkpoint_every: int = 1, resume: Any = None) -> OptimizeResult:
    """Levenberg-Marquardt minimisation of ``-log posterior``.

    Solves ``(H + lambda D) dx = -grad`` and accepts the step when the loss decreases,
    updating ``lambda`` by Nielsen's rule (``lambda *= max(1/3, 1 - (2 rho - 1)^3)`` on
    success, ``lambda *= nu, nu *= 2`` on failure), where ``rho`` is the ratio of actual to
    predicted reduction ``-grad.dx - dx.H dx / 2``.

    Parameters
    ----------
    post, theta0, maxiter, solver, gtol, ftol, xtol, cg_tol, cg_maxiter, preconditioner,
    progress, callback, checkpoint, checkpoint_every, resume
        As in :func:`gauss_newton` (``maxiter`` counts accepted and rejected steps).
    damping : {"auto", "marquardt", "identity"}
        ``D = diag(H)`` (Marquardt; dense solver) or ``D = I``; "auto" picks Marquardt for
        the dense solver and the identity for CG.
    lambda0 : float, optional
        Initial damping; default ``tau * max(diag(H))`` (dense) or ``tau`` times the Rayleigh
        quotient of ``H`` along the gradient (CG).

    Returns
    -------
    OptimizeResult
        ``history`` adds ``lambda`` and ``cg_iters``; a rejected step records the unchanged
        loss and ``step_norm = 0``.
    """
    obj, theta, hist, plan, loaded = _setup(post, theta0, "levenberg_marquardt", checkpoint,
                                            checkpoint_every, resume, ("lambda", "cg_iters"))
    xp = obj.xp
    if damping == "auto":
        damping = "marquardt" if solver == "dense" else "identity"
    if damping not in ("marquardt", "identity"):
        raise InputError(f"levenberg_marquardt: damping must be 'auto', 'marquardt' or "
                         f"'identity', received {damping!r}")
    if damping == "marquardt" and solver != "dense":
        raise InputError("levenberg_marquardt: damping='marquardt' needs solver='dense' "
                         "(diag(H) is not available matrix-free)")
    it, lam, nu = 0, lambda0, 2.0
    if loaded is not None:
        state, harr = loaded
        theta = xp.asarray(state["theta"])
        it, lam, nu = int(state["it"]), float(state["lam"]), float(state["nu"])
        hist.load(harr)
    f, grad, H = _linearize(post, theta, obj)
    inner = _Solver(solver, cg_tol, cg_maxiter, preconditioner)
    inner.prepare(post, theta, H)
    if loaded is not None:  # the re-linearisation above repeats work already counted
        obj.restore_counts(state["nfev"], state["ngev"], state["njvp"], state["nvjp"])
    gnorm = _inf_norm(grad, xp)
    if lam is None:
        if solver == "dense":
            lam = tau * _f(xp.diag(inner.F).max())
        else:
            gg = _f(grad @ grad)
            lam = tau * (_f(grad @ H.matvec(grad)) / gg if gg > 0 else 1.0)
    if loaded is None:
        hist.record(obj, loss=f, grad_norm=gnorm, step_norm=0.0, cg_iters=0, **{"lambda": lam})
    bar = Progress(progress, maxiter, "levenberg_marquardt", initial=it)
    status, message = None, ""

    def state_dict() -> dict:
        return dict(theta=theta, it=it, lam=lam, nu=nu, nfev=obj.nfev, ngev=obj.ngev,
                    njvp=obj.njvp, nvjp=obj.nvjp)

    try:
        while True:
            if gnorm <= gtol:
                status, message = 0, "converged: gradient inf-norm <= gtol"
                break
            if it >= maxiter:
                status, message = 1, "maximum number of iterations reached"
                break
            if not np.isfinite(lam) or lam > 1e300:
                status, message = 2, "damping diverged: no step reduces the loss"
                break
            D = inner.diag() if damping == "marquardt" else xp.ones_like(theta)
            D = xp.where(D > 0, D, 1.0)
            dx, ncg = inner.solve(-grad, lam, D)
            pred = 0.5 * (-_f(grad @ dx) + lam * _f(dx @ (D * dx)))
            trial = theta + dx
            obj.nfev += 1
            f_trial = -post.value(trial)
            rho = (f - f_trial) / pred if pred > 0 else -1.0
            it += 1
            f_old = f
            accepted = bool(np.isfinite(f_trial) and rho > 0)
            if accepted:
                theta = trial
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                nu = 2.0
                f, grad, H = _linearize(post, theta, obj)
                gnorm = _inf_norm(grad, xp)
                inner.prepare(post, theta, H)
                snorm = _f(xp.sqrt(dx @ dx))
            else:
                lam *= nu
                nu *= 2.0
                snorm = 0.0
            hist.record(obj, loss=f, grad_norm=gnorm, step_norm=snorm, cg_iters=ncg,
                        **{"lambda": lam})
            bar.update(f, gnorm)
            if plan.due(it):
                plan.save(state_dict(), hist)
            if call_callback(callback, theta, it, f):
                status, message = 0, "stopped by callback"
                break
            if not accepted and pred <= ftol * max(abs(f), 1.0):
                status, message = 0, "converged: predicted reduction of the loss <= ftol"
                break
            if accepted and f_old - f <= ftol * max(abs(f_old), abs(f), 1.0):
                status, message = 0, "converged: relative reduction of the loss <= ftol"
                break
            if accepted and snorm <= xtol * (_f(xp.sqrt(theta @ theta)) + xtol):
                status, message = 0, "converged: step norm <= xtol"
                break
    finally:
        bar.close()
    return finish(plan, state_dict(), hist, theta, f, grad, status, message, it, obj,
                  "levenberg_marquardt")
