"""Gauss-Newton and Levenberg-Marquardt for a :class:`~linlim.likelihood.LogPosterior`.

Both minimise ``loss = -log posterior`` with **one loop** (:func:`newton_loop`); they differ
only in the globalisation strategy passed to it:

* :class:`LineSearch` (Gauss-Newton): solve ``H dx = -grad`` and backtrack along ``dx``;
* :class:`Damping` (Levenberg-Marquardt): solve ``(H + lambda D) dx = -grad``, accept or
  reject by the gain ratio and update ``lambda`` (Nielsen's rule).

Each iteration linearises the model once (``post.linearize``: value, gradient and a
Gauss-Newton operator that caches ``J``), then solves with ``H = 2 Re(J^H W J) + H_prior``

* matrix-free (``solver="cg"``, the default): preconditioned conjugate gradients
  (:func:`~linlim.inference.conjugate_gradient`), each iteration one jvp + one vjp; ``J``
  is never formed. Preconditioners: :mod:`linlim.inference.preconditioners` (prior,
  Jacobi, block, low-rank Lanczos);
* densely (``solver="dense"``, small problems only): the Fisher matrix from n jvps, then a
  Cholesky solve.

The CG tolerance is fixed (``cg_tol``) or tied to the gradient (``cg_tol="adaptive"``: the
Eisenstat-Walker forcing term ``eta_k = min(0.5, ||g_k|| / ||g_0||)``, floored at
``cg_tol_min``), and CG stops early when its residual stagnates. A known null space
(a gauge, ``null_space=``) is projected out of the right-hand side and the iterates.

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

from ..errors import InputError
from ..operators.cg import conjugate_gradient, forcing_term, null_space_projector
from .fisher import fisher_matrix
from .optimize import Objective, OptimizeResult, OptimizerRun, Progress, call_callback
from .optimize import to_float as _f
from .preconditioners import make_preconditioner

__all__ = ["gauss_newton", "levenberg_marquardt", "newton_loop", "LineSearch", "Damping",
           "InnerSolver"]


def _inf_norm(v: Any, xp: Any) -> float:
    return _f(xp.abs(v).max()) if v.shape[0] else 0.0


def _dense_from_products(matvec: Callable, n: int, xp: Any) -> Any:
    eye = xp.eye(n, dtype=np.float64)
    F = xp.stack([matvec(eye[k]) for k in range(n)], axis=1)
    return 0.5 * (F + F.T)


class InnerSolver:
    """The inner linear solve ``(H + lam D) dx = rhs`` of a Newton-type iteration.

    Parameters
    ----------
    kind : {"cg", "dense"}
        Matrix-free preconditioned CG, or the dense Fisher matrix and Cholesky.
    cg_tol : float or "adaptive"
        Relative CG residual, fixed, or the Eisenstat-Walker forcing term
        ``min(cg_eta_max, ||g_k|| / ||g_0||)`` floored at ``cg_tol_min``.
    cg_maxiter : int, optional
        CG iteration cap (default ``2 n``).
    preconditioner : None, str, array, callable or Preconditioner
        See :func:`~linlim.inference.preconditioners.make_preconditioner`.
    null_space : None, array (n,) / (n, k), or callable ``theta -> array``
        Directions ``H`` does not constrain (a gauge); projected out of the right-hand side
        and the CG iterates, and out of ``dx``.
    cg_window : int or None
        CG stagnation window (see :func:`~linlim.inference.conjugate_gradient`).
    cg_tol_min, cg_eta_max : float
        Bounds of the adaptive tolerance.
    """

    def __init__(self, kind: str = "cg", cg_tol: Any = 1e-10, cg_maxiter: int | None = None,
                 preconditioner: Any = None, null_space: Any = None,
                 cg_window: int | None = 100, cg_tol_min: float = 1e-12,
                 cg_eta_max: float = 0.5) -> None:
        if kind not in ("cg", "dense"):
            raise InputError(f"solver must be 'cg' or 'dense', received {kind!r}")
        if not (cg_tol == "adaptive" or (isinstance(cg_tol, (int, float)) and cg_tol > 0)):
            raise InputError(f"cg_tol must be a positive number or 'adaptive', received "
                             f"{cg_tol!r}")
        self.kind, self.cg_tol, self.cg_maxiter = kind, cg_tol, cg_maxiter
        self.cg_window, self.cg_tol_min, self.cg_eta_max = cg_window, cg_tol_min, cg_eta_max
        self.precond = make_preconditioner(preconditioner) if kind == "cg" else None
        self.null_space = null_space
        self.F = None
        self._stale = False
        self.project = None
        self.gnorm0: float | None = None
        self.last: Any = None  # the last CGResult

    def prepare(self, post: Any, theta: Any, H: Any) -> None:
        """Set up at a new linearisation point (dense matrix or preconditioner, gauge)."""
        self.post, self.theta, self.H, self.xp = post, theta, H, post.xp
        ns = self.null_space(theta) if callable(self.null_space) else self.null_space
        self.project = null_space_projector(ns) if ns is not None else None
        if self.kind == "dense":
            if hasattr(H, "J") and hasattr(post, "likelihood"):
                self.F = fisher_matrix(post, theta, J=H.J)
            else:  # a posterior-like object without a visible Jacobian: n GN products
                self.F = _dense_from_products(H.matvec, post.size, self.xp)
        self._stale = self.precond is not None  # updated lazily, at the first solve here

    def state(self) -> dict:
        """What a checkpoint needs to resume the same inner solves (the adaptive
        tolerance's scale)."""
        return {"cg_gnorm0": float("nan") if self.gnorm0 is None else float(self.gnorm0)}

    def load(self, state: dict) -> None:
        g0 = state.get("cg_gnorm0")
        self.gnorm0 = None if g0 is None or not np.isfinite(float(g0)) else float(g0)

    def diag(self) -> Any:
        """``diag(H)`` (dense solver only)."""
        return self.xp.diag(self.F) if self.F is not None else None

    def tolerance(self, gnorm: float) -> float:
        """The relative CG tolerance for a right-hand side of norm ``gnorm``."""
        if self.cg_tol != "adaptive":
            return float(self.cg_tol)
        if self.gnorm0 is None:
            self.gnorm0 = gnorm
        return forcing_term(gnorm, self.gnorm0, eta_max=self.cg_eta_max,
                            eta_min=self.cg_tol_min)

    def solve(self, rhs: Any, lam: float = 0.0, D: Any = None) -> tuple[Any, int]:
        """``(dx, cg iterations)`` for ``(H + lam diag(D)) dx = rhs``."""
        xp = self.xp
        if self.kind == "dense":
            A = self.F if lam == 0.0 else self.F + lam * xp.diag(D)
            x = None
            try:
                L = xp.linalg.cholesky(A)
                x = xp.linalg.solve(L.T, xp.linalg.solve(L, rhs))
                if not bool(xp.isfinite(x).all()):  # CuPy returns NaN instead of raising
                    x = None
            except Exception:  # numpy: not positive definite
                x = None
            if x is None:
                x = xp.linalg.lstsq(A, rhs, rcond=None)[0]  # singular: least squares
            return (self.project(x) if self.project is not None else x), 0
        if self._stale:
            self.precond.update(self.post, self.theta, self.H)
            self._stale = False
        if lam == 0.0:
            mv = self.H.matvec
        else:
            def mv(v: Any) -> Any:
                return self.H.matvec(v) + lam * D * v
        tol = self.tolerance(_f(xp.sqrt(rhs @ rhs)))
        res = conjugate_gradient(mv, rhs, tol=tol, maxiter=self.cg_maxiter,
                                 precond=self.precond, project=self.project,
                                 window=self.cg_window)
        self.last = res
        return res.x, res.niter


class LineSearch:
    """Gauss-Newton globalisation: the full step ``H dx = -grad``, then backtracking
    (halving, Armijo constant 1e-4) when it does not reduce the loss.

    Parameters
    ----------
    line_search : bool
        False always takes the full step.
    max_backtracks : int
    """

    method = "gauss_newton"
    extra = ("cg_iters",)

    def __init__(self, line_search: bool = True, max_backtracks: int = 30) -> None:
        self.line_search, self.max_backtracks = bool(line_search), int(max_backtracks)

    def start(self, loop: Any) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        pass

    def stalled(self) -> tuple[int, str] | None:
        return None

    def damping(self, loop: Any) -> tuple[float, Any]:
        return 0.0, None

    def attempt(self, loop: Any, dx: Any) -> dict:
        """Backtrack along ``dx``; returns the accepted trial or a stop reason."""
        slope = _f(loop.grad @ dx)
        t, f_new = 1.0, None
        for _ in range(self.max_backtracks + 1):
            trial = loop.theta + t * dx
            f_new = loop.loss(trial)
            if not self.line_search or (np.isfinite(f_new)
                                        and f_new <= loop.f + 1e-4 * t * slope):
                return dict(accepted=True, theta=trial, f=f_new, step=t * dx)
            t *= 0.5
        if -slope <= loop.ftol * max(abs(loop.f), 1.0):
            return dict(stop=(0, "converged: predicted reduction of the loss <= ftol"))
        return dict(stop=(2, "line search could not reduce the loss"))

    def record(self) -> dict:
        return {}


class Damping:
    """Levenberg-Marquardt globalisation: ``(H + lambda D) dx = -grad``, accepted when the
    loss decreases; ``lambda`` follows Nielsen's rule (``lambda *= max(1/3,
    1 - (2 rho - 1)^3)`` on success, ``lambda *= nu, nu *= 2`` on failure), ``rho`` being
    the ratio of actual to predicted reduction ``-grad.dx/2 + lambda dx.D dx/2``.

    Parameters
    ----------
    kind : {"marquardt", "identity"}
        ``D = diag(H)`` (dense solver) or ``D = I``.
    lambda0 : float, optional
        Initial damping; default ``tau * max(diag(H))`` (Marquardt) or ``tau`` times the
        Rayleigh quotient of ``H`` along the gradient (identity).
    tau : float
    """

    method = "levenberg_marquardt"
    extra = ("lambda", "cg_iters")

    def __init__(self, kind: str = "identity", lambda0: float | None = None,
                 tau: float = 1e-3) -> None:
        if kind not in ("marquardt", "identity"):
            raise InputError(f"levenberg_marquardt: damping must be 'auto', 'marquardt' or "
                             f"'identity', received {kind!r}")
        self.kind, self.lam, self.tau, self.nu = kind, lambda0, float(tau), 2.0

    def start(self, loop: Any) -> None:
        if self.lam is None:
            xp = loop.xp
            if self.kind == "marquardt":
                self.lam = self.tau * _f(xp.diag(loop.inner.F).max())
            else:
                gg = _f(loop.grad @ loop.grad)
                self.lam = self.tau * (_f(loop.grad @ loop.H.matvec(loop.grad)) / gg
                                       if gg > 0 else 1.0)

    def state(self) -> dict:
        return dict(lam=self.lam, nu=self.nu)

    def load(self, state: dict) -> None:
        self.lam, self.nu = float(state["lam"]), float(state["nu"])

    def stalled(self) -> tuple[int, str] | None:
        if not np.isfinite(self.lam) or self.lam > 1e300:
            return 2, "damping diverged: no step reduces the loss"
        return None

    def damping(self, loop: Any) -> tuple[float, Any]:
        xp = loop.xp
        D = loop.inner.diag() if self.kind == "marquardt" else xp.ones_like(loop.theta)
        self.D = xp.where(D > 0, D, 1.0)
        return self.lam, self.D

    def attempt(self, loop: Any, dx: Any) -> dict:
        pred = 0.5 * (-_f(loop.grad @ dx) + self.lam * _f(dx @ (self.D * dx)))
        trial = loop.theta + dx
        f_trial = loop.loss(trial)
        rho = (loop.f - f_trial) / pred if pred > 0 else -1.0
        if bool(np.isfinite(f_trial) and rho > 0):
            self.lam *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            self.nu = 2.0
            return dict(accepted=True, theta=trial, f=f_trial, step=dx, pred=pred)
        self.lam *= self.nu
        self.nu *= 2.0
        return dict(accepted=False, pred=pred)

    def record(self) -> dict:
        return {"lambda": self.lam}


class _Loop:
    """State shared by the strategy and the loop (theta, loss, gradient, H, counters)."""

    def __init__(self, post: Any, obj: Objective, inner: InnerSolver, ftol: float) -> None:
        self.post, self.obj, self.inner, self.ftol, self.xp = post, obj, inner, ftol, obj.xp

    def loss(self, theta: Any) -> float:
        self.obj.nfev += 1
        return -self.post.value(theta)

    def linearize(self) -> None:
        obj, post = self.obj, self.post
        obj.nfev += 1
        obj.ngev += 1
        if hasattr(post, "linearize"):
            val, g, H = post.linearize(self.theta)
        else:
            val, g = post.value_and_grad(self.theta)
            H = post.linearize_gn(self.theta)
        self.f, self.grad, self.H = -float(val), -g, H
        self.gnorm = _inf_norm(self.grad, self.xp)
        self.inner.prepare(post, self.theta, H)


def newton_loop(post: Any, theta0: Any, strategy: Any, inner: InnerSolver, *,
                maxiter: int, gtol: float, ftol: float, xtol: float, progress: bool,
                callback: Callable | None, checkpoint: Any, checkpoint_every: int,
                resume: Any) -> OptimizeResult:
    """The loop Gauss-Newton and Levenberg-Marquardt share.

    Each iteration: check ``gtol``/``maxiter``, ask the strategy for the damping, solve
    ``(H + lam D) dx = -grad`` with ``inner``, let the strategy accept/reject (line search
    or gain ratio), re-linearise on acceptance, record history, checkpoint, call back, and
    test ``ftol``/``xtol``.

    Parameters
    ----------
    post : LogPosterior
    theta0 : array (n,)
    strategy : LineSearch or Damping
        The globalisation (``method`` names the checkpoint format and the result).
    inner : InnerSolver
    maxiter, gtol, ftol, xtol, progress, callback, checkpoint, checkpoint_every, resume
        As in :func:`gauss_newton`.

    Returns
    -------
    OptimizeResult
    """
    method = strategy.method
    if not hasattr(post, "linearize_gn"):
        raise InputError(f"{method}: post must be a LogPosterior (with linearize_gn), received "
                         f"{type(post).__name__}")
    for name, tol in (("gtol", gtol), ("ftol", ftol), ("xtol", xtol)):
        if not (isinstance(tol, (int, float, np.integer, np.floating)) and tol >= 0
                and np.isfinite(tol)):
            raise InputError(f"{method}: {name}: expected a finite number >= 0, received "
                             f"{tol!r}")
    obj = Objective(post, theta0)
    theta = obj.check_x(theta0)
    run = OptimizerRun(method, obj, checkpoint, checkpoint_every, resume, strategy.extra)
    hist, state = run.hist, run.state
    loop = _Loop(post, obj, inner, ftol)
    it = 0
    if state is not None:
        theta = obj.xp.asarray(state["theta"])
        it = int(state["it"])
        strategy.load(state)
        inner.load(state)
    loop.theta = theta
    loop.linearize()
    if state is not None:  # the re-linearisation above repeats work already counted
        run.restore_counts()
    else:
        strategy.start(loop)
        hist.record(obj, loss=loop.f, grad_norm=loop.gnorm, step_norm=0.0, cg_iters=0,
                    **strategy.record())
    bar = Progress(progress, maxiter, method, initial=it)
    status, message = None, ""
    xp = obj.xp

    def state_dict() -> dict:
        return dict(theta=loop.theta, it=it, **run.counts(), **strategy.state(),
                    **inner.state())

    try:
        while True:
            if loop.gnorm <= gtol:
                status, message = 0, "converged: gradient inf-norm <= gtol"
                break
            if it >= maxiter:
                status, message = 1, "maximum number of iterations reached"
                break
            stall = strategy.stalled()
            if stall is not None:
                status, message = stall
                break
            lam, D = strategy.damping(loop)
            dx, ncg = inner.solve(-loop.grad, lam, D)
            out = strategy.attempt(loop, dx)
            if "stop" in out:
                status, message = out["stop"]
                break
            it += 1
            f_old = loop.f
            if out["accepted"]:
                loop.theta = out["theta"]
                loop.linearize()
                snorm = _f(xp.sqrt(out["step"] @ out["step"]))
            else:
                snorm = 0.0
            hist.record(obj, loss=loop.f, grad_norm=loop.gnorm, step_norm=snorm,
                        cg_iters=ncg, **strategy.record())
            bar.update(loop.f, loop.gnorm)
            run.checkpoint(it, state_dict)
            if call_callback(callback, loop.theta, it, loop.f):
                status, message = 0, "stopped by callback"
                break
            f = loop.f
            if not out["accepted"]:
                if out["pred"] <= ftol * max(abs(f), 1.0):
                    status, message = 0, "converged: predicted reduction of the loss <= ftol"
                    break
                continue
            if f_old - f <= ftol * max(abs(f_old), abs(f), 1.0) and f <= f_old:
                status, message = 0, "converged: relative reduction of the loss <= ftol"
                break
            if snorm <= xtol * (_f(xp.sqrt(loop.theta @ loop.theta)) + xtol):
                status, message = 0, "converged: step norm <= xtol"
                break
    finally:
        bar.close()
    return run.finish(state_dict(), loop.theta, loop.f, loop.grad, status, message, it)


_DOC_COMMON = """
    post : LogPosterior
        Provides ``linearize`` (or ``value_and_grad`` + ``linearize_gn``) and ``value``.
    theta0 : array (n,) float64
        Starting point (ignored when resuming).
    maxiter : int
        Maximum number of iterations (honoured exactly, counting those before a resume).
    solver : {"cg", "dense"}
        Inner solve: matrix-free preconditioned CG (default; ``J`` is never formed), or
        the dense Fisher matrix (n jvps per iteration) and a Cholesky solve (small
        problems).
    gtol, ftol, xtol : float
        Stopping tolerances (module docstring).
    cg_tol : float or "adaptive"
        Relative residual of the CG inner solve, or the Eisenstat-Walker forcing term
        ``min(0.5, ||g_k|| / ||g_0||)`` (floored at ``cg_tol_min``): loose far from the
        optimum, tight near it, keeping Newton's fast local convergence.
    cg_maxiter : int, optional
        CG iteration cap (default ``2 n``).
    preconditioner : None, str, array, callable or Preconditioner
        For CG: ``"prior"`` (the prior precision; whitens a Gaussian prior),
        ``"lowrank"`` (prior + Lanczos deflation of the data term), ``"jacobi"`` (exact
        ``diag(H)``, n jvps per outer iteration: small problems), ``"jacobi-probe"``
        (``diag(H)`` by Hutchinson probing), an array (a fixed ``diag(H)``), a callable
        ``r -> M^-1 r``, or a :class:`~linlim.inference.preconditioners.Preconditioner`.
    null_space : array (n,) or (n, k), or callable ``theta -> array``, optional
        A gauge: directions the posterior does not constrain. Projected out of the CG
        right-hand side and iterates (a rounding-level component would otherwise make CG
        diverge near convergence).
    cg_window : int or None
        CG stagnation window (iterations without a new best residual).
    cg_tol_min : float
        Floor of the adaptive CG tolerance.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(theta, iteration, loss)``; returning True stops the run.
    checkpoint : path, optional
        HDF5 file written every ``checkpoint_every`` iterations and at the end.
    checkpoint_every : int
    resume : path, optional
        Checkpoint to continue from (its theta, iteration count, counters, history and
        the adaptive CG tolerance's scale). The resumed run is bit-identical to an
        uninterrupted one when the preconditioner depends only on the current point (all
        built-in ones; ``LowRankPreconditioner`` with ``refresh_every=1``).
"""


def gauss_newton(post: Any, theta0: Any, *, maxiter: int = 50, solver: str = "cg",
                 gtol: float = 0.0, ftol: float = 1e-14, xtol: float = 1e-12,
                 cg_tol: Any = 1e-10, cg_maxiter: int | None = None,
                 preconditioner: Any = None, null_space: Any = None,
                 cg_window: int | None = 100, cg_tol_min: float = 1e-12,
                 line_search: bool = True, max_backtracks: int = 30, progress: bool = False,
                 callback: Callable | None = None, checkpoint: Any = None,
                 checkpoint_every: int = 1, resume: Any = None) -> OptimizeResult:
    """Gauss-Newton minimisation of ``-log posterior``.

    Parameters
    ----------%s
    line_search : bool
        Backtrack (halving, Armijo constant 1e-4) when the full step does not reduce the
        loss; with False the full step is always taken.
    max_backtracks : int

    Returns
    -------
    OptimizeResult
        ``history`` has ``loss``, ``grad_norm``, ``step_norm``, ``cg_iters`` and the
        cumulative evaluation and J/J^H counters per iteration.
    """
    inner = InnerSolver(solver, cg_tol, cg_maxiter, preconditioner, null_space, cg_window,
                        cg_tol_min)
    return newton_loop(post, theta0, LineSearch(line_search, max_backtracks), inner,
                       maxiter=maxiter, gtol=gtol, ftol=ftol, xtol=xtol, progress=progress,
                       callback=callback, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, resume=resume)


gauss_newton.__doc__ = gauss_newton.__doc__ % _DOC_COMMON


def levenberg_marquardt(post: Any, theta0: Any, *, maxiter: int = 100, solver: str = "cg",
                        damping: str = "auto", lambda0: float | None = None, tau: float = 1e-3,
                        gtol: float = 0.0, ftol: float = 1e-14, xtol: float = 1e-12,
                        cg_tol: Any = 1e-10, cg_maxiter: int | None = None,
                        preconditioner: Any = None, null_space: Any = None,
                        cg_window: int | None = 100, cg_tol_min: float = 1e-12,
                        progress: bool = False, callback: Callable | None = None,
                        checkpoint: Any = None, checkpoint_every: int = 1,
                        resume: Any = None) -> OptimizeResult:
    """Levenberg-Marquardt minimisation of ``-log posterior``.

    Solves ``(H + lambda D) dx = -grad`` and accepts the step when the loss decreases,
    updating ``lambda`` by Nielsen's rule (:class:`Damping`). ``maxiter`` counts accepted
    and rejected steps.

    Parameters
    ----------%s
    damping : {"auto", "marquardt", "identity"}
        ``D = diag(H)`` (Marquardt; dense solver) or ``D = I``; "auto" picks Marquardt for
        the dense solver and the identity for CG.
    lambda0 : float, optional
        Initial damping; default ``tau * max(diag(H))`` (dense) or ``tau`` times the Rayleigh
        quotient of ``H`` along the gradient (CG).
    tau : float

    Returns
    -------
    OptimizeResult
        ``history`` adds ``lambda`` and ``cg_iters``; a rejected step records the unchanged
        loss and ``step_norm = 0``.
    """
    if damping == "auto":
        damping = "marquardt" if solver == "dense" else "identity"
    if damping == "marquardt" and solver != "dense":
        raise InputError("levenberg_marquardt: damping='marquardt' needs solver='dense' "
                         "(diag(H) is not available matrix-free)")
    strategy = Damping(damping, lambda0, tau)
    inner = InnerSolver(solver, cg_tol, cg_maxiter, preconditioner, null_space, cg_window,
                        cg_tol_min)
    return newton_loop(post, theta0, strategy, inner, maxiter=maxiter, gtol=gtol, ftol=ftol,
                       xtol=xtol, progress=progress, callback=callback, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, resume=resume)


levenberg_marquardt.__doc__ = levenberg_marquardt.__doc__ % _DOC_COMMON
