"""Limited-memory BFGS with box constraints, written against the array module.

The iteration follows L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995; Morales & Nocedal 2011), so
that its iterates, stopping rules and function-evaluation counts track scipy's
``minimize(method="L-BFGS-B")``:

* Unconstrained: the search direction is ``-H g`` from the two-loop recursion with the
  initial scaling ``H0 = (s^T y / y^T y) I`` (the inverse of L-BFGS-B's ``theta I``); the
  first step is ``1 / ||g||`` along ``-g``, later ones start at 1.
* Bounded: the generalised Cauchy point along the projected steepest-descent path of the
  compact-representation quadratic model ``B = theta I - W M W^T`` (``W = [Y, theta S]``),
  then a subspace minimisation over the free variables (Woodbury solve), projected back
  into the box (with the backtracking fallback of L-BFGS-B 3.0). The sequential
  breakpoint search runs on the host on a copy of the n-vectors (it is O(n m) per
  iteration); everything else stays on the array module (NumPy or CuPy).
* Line search: Moré & Thuente's (1994) ``dcsrch`` with cubic/quadratic safeguarded
  interpolation, ``ftol=1e-3``, ``gtol=0.9``, ``xtol=0.1``: the step satisfies the strong
  Wolfe conditions ``f(a) <= f(0) + 1e-3 a f'(0)`` and ``|f'(a)| <= 0.9 |f'(0)|``. The
  maximum step keeps the iterate feasible.
* Updates are skipped when ``s^T y <= eps (-g^T s)``; a failed line search discards the
  memory and retries from the same point with steepest descent, and stops if that fails
  too.

Stopping rules (as scipy's L-BFGS-B):

* ``pgtol``: ``max_i |proj g_i| <= pgtol`` (projected gradient, ``P(x - g) - x``);
* ``ftol``: ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`` (scipy's
  ``factr * eps``; default ``ftol = 2.220446049250313e-09``, i.e. ``factr = 1e7``);
* ``maxiter`` iterations exactly, ``maxfun`` evaluations (checked after each iteration).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import to_numpy
from ..errors import InputError, ShapeError
from .optimize import Objective, OptimizeResult, OptimizerRun, Progress, call_callback, check_count
from .optimize import to_float as _f

__all__ = ["lbfgs", "MoreThuente"]

_EPS = float(np.finfo(np.float64).eps)


# ----------------------------------------------------------------------------------------
# Moré-Thuente line search
# ----------------------------------------------------------------------------------------
def _cubic_step(a: float, da: float, b: float, db: float, theta: float) -> float:
    """Minimiser of the cubic through (a, f_a, f'_a) and (b, f_b, f'_b), with
    ``theta = 3 (f_a - f_b) / (b - a) + f'_a + f'_b`` (MINPACK's ``dcstep`` formula)."""
    s = max(abs(theta), abs(da), abs(db))
    gamma = s * np.sqrt((theta / s) ** 2 - (da / s) * (db / s))
    if b < a:
        gamma = -gamma
    p = (gamma - da) + theta
    q = ((gamma - da) + gamma) + db
    return a + (p / q) * (b - a)


def _cstep(stx: float, fx: float, dx: float, sty: float, fy: float, dy: float, stp: float,
           fp: float, dp: float, brackt: bool, stpmin: float, stpmax: float) -> tuple:
    """One safeguarded step of Moré & Thuente (1994), section 4: update the interval
    ``[stx, sty]`` that brackets a step satisfying the conditions and propose a new trial
    step from cubic/quadratic interpolation of (f, f') at ``stx`` and ``stp``."""
    sgnd = dp * np.sign(dx)
    if fp > fx:
        # case 1: higher function value, the minimum is bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        stpc = _cubic_step(stx, dx, stp, dp, theta)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) < abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:
        # case 2: lower value, derivatives of opposite sign: bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        stpc = _cubic_step(stp, dp, stx, dx, theta)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):
        # case 3: lower value, same-sign derivatives, |f'| decreasing
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * np.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        elif stp > stx:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            if stp > stx:
                stpf = min(stp + 0.66 * (sty - stp), stpf)
            else:
                stpf = max(stp + 0.66 * (sty - stp), stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = min(stpmax, max(stpmin, stpf))
    else:
        # case 4: lower value, same-sign derivatives, |f'| not decreasing
        if brackt:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            stpf = _cubic_step(stp, dp, sty, dy, theta)
        elif stp > stx:
            stpf = stpmax
        else:
            stpf = stpmin
    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    return stx, fx, dx, sty, fy, dy, stpf, brackt


class MoreThuente:
    """Moré-Thuente line search as a state machine (reverse communication).

    ``start(f0, g0, stp)`` returns the first trial step; then ``step(f, g)`` with the
    value and directional derivative at the trial returns ``(task, stp)``, where task is
    ``"FG"`` (evaluate at the new ``stp``), ``"CONV"`` (strong Wolfe conditions hold) or
    ``"WARN..."`` (no further progress possible; ``stp`` is the best point).

    Parameters
    ----------
    ftol, gtol, xtol : float
        Sufficient-decrease, curvature and relative interval-width tolerances.
    stpmin, stpmax : float
        Bounds on the step.
    """

    def __init__(self, ftol: float = 1e-3, gtol: float = 0.9, xtol: float = 0.1,
                 stpmin: float = 0.0, stpmax: float = 1e10) -> None:
        self.ftol, self.gtol, self.xtol = ftol, gtol, xtol
        self.stpmin, self.stpmax = stpmin, stpmax

    def start(self, f0: float, g0: float, stp: float) -> float:
        if g0 >= 0.0:
            raise InputError(f"MoreThuente: the initial derivative must be negative, "
                             f"received {g0}")
        if not self.stpmin <= stp <= self.stpmax:
            raise InputError(f"MoreThuente: initial step {stp} outside [{self.stpmin}, "
                             f"{self.stpmax}]")
        self.brackt, self.stage = False, 1
        self.finit, self.ginit, self.gtest = f0, g0, self.ftol * g0
        self.width = self.stpmax - self.stpmin
        self.width1 = self.width / 0.5
        self.stx = self.sty = 0.0
        self.fx = self.fy = f0
        self.gx = self.gy = g0
        self.stmin, self.stmax = 0.0, stp + 4.0 * stp
        self.stp = stp
        return stp

    def step(self, f: float, g: float) -> tuple[str, float]:
        stp = self.stp
        ftest = self.finit + stp * self.gtest
        if self.stage == 1 and f <= ftest and g >= 0.0:
            self.stage = 2
        task = "FG"
        if self.brackt and (stp <= self.stmin or stp >= self.stmax):
            task = "WARNING: ROUNDING ERRORS PREVENT PROGRESS"
        if self.brackt and self.stmax - self.stmin <= self.xtol * self.stmax:
            task = "WARNING: XTOL TEST SATISFIED"
        if stp == self.stpmax and f <= ftest and g <= self.gtest:
            task = "WARNING: STP = STPMAX"
        if stp == self.stpmin and (f > ftest or g >= self.gtest):
            task = "WARNING: STP = STPMIN"
        if f <= ftest and abs(g) <= self.gtol * (-self.ginit):
            task = "CONV"
        if task != "FG":
            return task, stp
        if self.stage == 1 and f <= self.fx and f > ftest:
            # modified function psi(a) = f(a) - f(0) - ftol a f'(0) in the first stage
            gt = self.gtest
            (stx, fxm, gxm, sty, fym, gym, stp, self.brackt) = _cstep(
                self.stx, self.fx - self.stx * gt, self.gx - gt, self.sty,
                self.fy - self.sty * gt, self.gy - gt, stp, f - stp * gt, g - gt,
                self.brackt, self.stmin, self.stmax)
            self.stx, self.sty = stx, sty
            self.fx, self.fy = fxm + stx * gt, fym + sty * gt
            self.gx, self.gy = gxm + gt, gym + gt
        else:
            (self.stx, self.fx, self.gx, self.sty, self.fy, self.gy, stp,
             self.brackt) = _cstep(self.stx, self.fx, self.gx, self.sty, self.fy, self.gy,
                                   stp, f, g, self.brackt, self.stmin, self.stmax)
        if self.brackt:
            if abs(self.sty - self.stx) >= 0.66 * self.width1:
                stp = self.stx + 0.5 * (self.sty - self.stx)
            self.width1 = self.width
            self.width = abs(self.sty - self.stx)
            self.stmin, self.stmax = min(self.stx, self.sty), max(self.stx, self.sty)
        else:
            self.stmin = stp + 1.1 * (stp - self.stx)
            self.stmax = stp + 4.0 * (stp - self.stx)
        stp = min(max(stp, self.stpmin), self.stpmax)
        if (self.brackt and (stp <= self.stmin or stp >= self.stmax)) or (
                self.brackt and self.stmax - self.stmin <= self.xtol * self.stmax):
            stp = self.stx
        self.stp = stp
        return "FG", stp


# ----------------------------------------------------------------------------------------
# L-BFGS-B pieces
# ----------------------------------------------------------------------------------------
def _projected_grad(x: Any, g: Any, lo: Any, hi: Any, xp: Any) -> Any:
    """L-BFGS-B's projected gradient: components that point out of the box are cut."""
    if lo is None:
        return g
    return xp.where(g < 0, xp.maximum(x - hi, g), xp.minimum(x - lo, g))


def _two_loop(g: Any, S: list, Y: list, xp: Any) -> Any:
    """``H g`` for the L-BFGS inverse Hessian with ``H0 = (s'y / y'y) I`` (newest pair)."""
    q = g.copy()
    rhos = [1.0 / _f(s @ y) for s, y in zip(S, Y)]
    alphas = []
    for s, y, rho in zip(reversed(S), reversed(Y), reversed(rhos)):
        a = rho * _f(s @ q)
        alphas.append(a)
        q -= a * y
    gamma = _f(S[-1] @ Y[-1]) / _f(Y[-1] @ Y[-1])
    r = gamma * q
    for s, y, rho, a in zip(S, Y, rhos, reversed(alphas)):
        b = rho * _f(y @ r)
        r += (a - b) * s
    return r


def _compact(S: list, Y: list, theta: float, xp: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """``W = [Y, theta S]`` (n, 2c), ``M`` and ``M^-1 = [[-D, L^T], [L, theta S^T S]]``."""
    Sm, Ym = xp.stack(S, axis=1), xp.stack(Y, axis=1)
    W = xp.concatenate([Ym, theta * Sm], axis=1)
    SY = np.asarray(to_numpy(Sm.T @ Ym))
    SS = np.asarray(to_numpy(Sm.T @ Sm))
    c = len(S)
    L = np.tril(SY, -1)
    Minv = np.zeros((2 * c, 2 * c))
    Minv[:c, :c] = -np.diag(np.diag(SY))
    Minv[:c, c:] = L.T
    Minv[c:, :c] = L
    Minv[c:, c:] = theta * SS
    return W, np.linalg.inv(Minv), Minv


def _cauchy(x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray, theta: float,
            W: np.ndarray | None, M: np.ndarray | None) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Generalised Cauchy point of the quadratic model along the projected gradient path
    (Byrd et al. 1995, section 4). Host NumPy arrays. Returns ``(xcp, c, free)`` with
    ``c = W^T (xcp - x)`` and ``free`` the variables not at a bound at ``xcp``."""
    n = x.size
    col2 = 0 if W is None else W.shape[1]
    has_lo, has_hi = np.isfinite(lo), np.isfinite(hi)
    tl, tu = x - lo, hi - x
    at_lo = has_lo & (tl <= 0)
    at_hi = has_hi & (tu <= 0)
    constant = has_lo & has_hi & (lo == hi)
    fixed = constant | (at_lo & (g >= 0)) | (~at_lo & at_hi & (g <= 0))
    zero_g = ~at_lo & ~at_hi & (g == 0) & (has_lo | has_hi)
    moving = ~(fixed | zero_g)
    d = np.where(moving, -g, 0.0)
    t = np.full(n, np.inf)
    down = moving & has_lo & (g > 0)
    up = moving & ~down & has_hi & (g < 0)
    t[down] = tl[down] / g[down]
    t[up] = tu[up] / (-g[up])
    hasbp = down | up
    unbounded_moving = moving & ~hasbp
    bnded = not np.any(unbounded_moving & (g != 0))
    free = ~fixed
    xcp = x.copy()
    nbdd = int(hasbp.sum())
    if nbdd == 0 and not np.any(unbounded_moving):
        return xcp, np.zeros(col2), free
    p = W.T @ d if col2 else np.zeros(0)
    c = np.zeros(col2)
    f1 = -float(d @ d)
    f2 = -theta * f1
    f2_org = f2
    if col2:
        f2 -= float(p @ (M @ p))
    dtm = -f1 / f2
    tsum = 0.0
    if nbdd:
        order = np.nonzero(hasbp)[0]
        order = order[np.argsort(t[order], kind="stable")]
        nleft = nbdd
        tj = 0.0
        for ibp in order:
            tj0, tj = tj, t[ibp]
            dt = tj - tj0
            if dtm < dt:
                break
            tsum += dt
            nleft -= 1
            dibp = d[ibp]
            d[ibp] = 0.0
            if dibp > 0:
                zibp = hi[ibp] - x[ibp]
                xcp[ibp] = hi[ibp]
            else:
                zibp = lo[ibp] - x[ibp]
                xcp[ibp] = lo[ibp]
            free[ibp] = False
            if nleft == 0 and nbdd == n:
                if col2:
                    c += dt * p
                return xcp, c, free
            dibp2 = dibp * dibp
            f1 = f1 + dt * f2 + dibp2 - theta * dibp * zibp
            f2 = f2 - theta * dibp2
            if col2:
                c += dt * p
                wbp = W[ibp]
                v = M @ wbp
                wmc, wmp, wmw = float(c @ v), float(p @ v), float(wbp @ v)
                p = p - dibp * wbp
                f1 += dibp * wmc
                f2 += 2.0 * dibp * wmp - dibp2 * wmw
            f2 = max(_EPS * f2_org, f2)
            if nleft > 0:
                dtm = -f1 / f2
            elif bnded:
                dtm = 0.0
            else:
                dtm = -f1 / f2
    dtm = max(dtm, 0.0)
    tsum += dtm
    xcp += tsum * d
    if col2:
        c += dtm * p
    return xcp, c, free


def _subspace_min(x: Any, g: Any, lo: Any, hi: Any, xcp: Any, c: Any, free: Any,
                  theta: float, W: Any, M: np.ndarray, Minv: np.ndarray, xp: Any) -> Any:
    """Minimise the quadratic model over the free variables from the Cauchy point, then
    project into the box (L-BFGS-B 3.0, ``subsm``). ``(Z^T B Z)^-1`` by Woodbury:
    ``(theta I - W_Z M W_Z^T)^-1 = I/theta + W_Z (M^-1 - W_Z^T W_Z / theta)^-1 W_Z^T / theta^2``.
    """
    idx = xp.nonzero(free)[0]
    cx = xp.asarray(c)
    rfull = -(g + theta * (xcp - x) - W @ xp.asarray(M @ np.asarray(c)))
    r = rfull[idx]
    WZ = W[idx]
    K = Minv - np.asarray(to_numpy(WZ.T @ WZ)) / theta
    v = np.linalg.solve(K, np.asarray(to_numpy(WZ.T @ r)))
    du = r / theta + (WZ @ xp.asarray(v)) / theta**2
    del cx
    xf = xcp[idx]
    lof, hif = lo[idx], hi[idx]
    proj = xp.minimum(xp.maximum(xf + du, lof), hif)
    z = xcp.copy()
    hit = bool(((proj == lof) | (proj == hif)).any())
    z[idx] = proj
    if not hit:
        return z
    if _f((z - x) @ g) <= 0.0:
        return z
    # projected point is not a descent direction: backtrack along du from xcp
    with np.errstate(divide="ignore", invalid="ignore"):
        lim = xp.where(du < 0, (lof - xf) / du, xp.where(du > 0, (hif - xf) / du, xp.inf))
    lim = xp.where(xp.isnan(lim), xp.inf, xp.maximum(lim, 0.0))
    ibd = int(to_numpy(xp.argmin(lim)))
    alpha = min(1.0, _f(lim[ibd]))
    z = xcp.copy()
    step = du.copy()
    if alpha < 1.0:
        k = int(to_numpy(idx[ibd]))
        z[k] = hi[k] if _f(du[ibd]) > 0 else lo[k]
        step[ibd] = 0.0
    z[idx] = z[idx] + alpha * step
    return z


def _max_step(x: Any, d: Any, lo: Any, hi: Any, xp: Any) -> float:
    """Largest ``a <= 1e10`` with ``lo <= x + a d <= hi``."""
    big = 1e10
    with np.errstate(divide="ignore", invalid="ignore"):
        lim = xp.where(d < 0, (lo - x) / d, xp.where(d > 0, (hi - x) / d, xp.inf))
    lim = xp.where(xp.isnan(lim), xp.inf, xp.maximum(lim, 0.0))
    return min(big, _f(lim.min())) if lim.shape[0] else big


def _bounds(bounds: Any, n: int, xp: Any) -> tuple[Any, Any]:
    if bounds is None:
        return None, None
    if isinstance(bounds, tuple) and len(bounds) == 2 and not (
            n == 2 and all(isinstance(b, (tuple, list)) for b in bounds)):
        lo, hi = bounds
        try:
            lo = np.broadcast_to(np.asarray(-np.inf if lo is None else to_numpy(lo), float),
                                 (n,))
            hi = np.broadcast_to(np.asarray(np.inf if hi is None else to_numpy(hi), float),
                                 (n,))
        except ValueError:
            raise ShapeError(f"lbfgs: bounds: expected lo and hi as scalars or arrays of "
                             f"shape ({n},), received shapes {np.shape(bounds[0])} and "
                             f"{np.shape(bounds[1])}") from None
    else:
        pairs = list(bounds)
        if len(pairs) != n:
            raise ShapeError(f"lbfgs: bounds must be (lo, hi) or {n} (lo, hi) pairs, "
                             f"received {len(pairs)} pairs")
        lo = np.array([-np.inf if a is None else a for a, _ in pairs], dtype=float)
        hi = np.array([np.inf if b is None else b for _, b in pairs], dtype=float)
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    if np.any(lo > hi):
        raise InputError("lbfgs: bounds need lo <= hi in every component")
    if np.all(np.isinf(lo)) and np.all(np.isinf(hi)):
        return None, None
    return xp.asarray(lo.copy()), xp.asarray(hi.copy())


def lbfgs(fun: Any, x0: Any, *, bounds: Any = None, m: int = 10, maxiter: int = 15000,
          maxfun: int = 15000, ftol: float = 2.220446049250313e-09, pgtol: float = 1e-5,
          maxls: int = 20, progress: bool = False, callback: Callable | None = None,
          checkpoint: Any = None, checkpoint_every: int = 1,
          resume: Any = None) -> OptimizeResult:
    """Minimise with L-BFGS(-B): limited-memory BFGS, strong-Wolfe line search, box bounds.

    Parameters
    ----------
    fun : LogPosterior or callable
        A LogPosterior (``-value`` is minimised), or ``fun(x) -> (loss, grad)``.
    x0 : array (n,) float64
        Starting point (projected into the box; ignored when resuming).
    bounds : None, (lo, hi) or sequence of n (lo, hi) pairs
        Box constraints; ``lo``/``hi`` scalars or (n,) arrays, None or +-inf for none.
    m : int
        Number of correction pairs kept (scipy's ``maxcor``).
    maxiter, maxfun : int
        Iteration limit (exact) and evaluation limit (checked after each iteration).
    ftol, pgtol : float
        scipy's L-BFGS-B stopping rules (module docstring).
    maxls : int
        Maximum evaluations per line search.
    progress, callback, checkpoint, checkpoint_every, resume
        As in :func:`~linlim.inference.gauss_newton.gauss_newton`.

    Returns
    -------
    OptimizeResult
        ``grad_norm`` in the history is the projected-gradient inf-norm.

    Examples
    --------
    >>> import numpy as np
    >>> res = lbfgs(lambda x: (float(x @ x), 2 * x), np.array([1.0, -2.0]))
    >>> bool(res.success), float(abs(res.x).max()) < 1e-8
    (True, True)
    """
    obj = Objective(fun, x0)
    xp = obj.xp
    x = obj.check_x(x0)
    n = x.shape[0]
    lo, hi = _bounds(bounds, n, xp)
    constrained = lo is not None
    boxed = constrained and bool(xp.isfinite(lo).all()) and bool(xp.isfinite(hi).all())
    if int(m) < 1:
        raise InputError(f"lbfgs: m must be >= 1, received {m}")
    maxiter = check_count(maxiter, "maxiter", "lbfgs", 0)
    maxfun = check_count(maxfun, "maxfun", "lbfgs", 1)
    maxls = check_count(maxls, "maxls", "lbfgs", 1)
    run = OptimizerRun("lbfgs", obj, checkpoint, checkpoint_every, resume)
    hist, state = run.hist, run.state
    S: list = []
    Y: list = []
    theta = 1.0
    it = 0
    if state is not None:
        x = xp.asarray(state["x"])
        f, g = float(state["f"]), xp.asarray(state["g"])
        it, theta = int(state["it"]), float(state["theta"])
        ncol = int(state["ncol"])
        S = [xp.asarray(s) for s in state["S"][:ncol]]
        Y = [xp.asarray(y) for y in state["Y"][:ncol]]
        run.restore_counts()
    else:
        if constrained:
            x = xp.minimum(xp.maximum(x, lo), hi)
        f, g = obj(x)
    pg = _projected_grad(x, g, lo, hi, xp)
    pgnorm = _f(xp.abs(pg).max())
    if state is None:
        hist.record(obj, loss=f, grad_norm=pgnorm, step_norm=0.0)
    bar = Progress(progress, maxiter, "lbfgs", initial=it)
    status, message = None, ""

    def state_dict() -> dict:
        zero = np.zeros((0, n))
        return dict(x=x, f=f, g=g, it=it, theta=theta, ncol=len(S),
                    S=np.stack([to_numpy(s) for s in S]) if S else zero,
                    Y=np.stack([to_numpy(y) for y in Y]) if Y else zero, **run.counts())

    try:
        if pgnorm <= pgtol:
            status, message = 0, "converged: projected gradient inf-norm <= pgtol"
        while status is None:
            if it >= maxiter:
                status, message = 1, "maximum number of iterations reached"
                break
            # -- search direction ------------------------------------------------------
            if not constrained:
                d = -g / theta if not S else -_two_loop(g, S, Y, xp)
                z = x + d
            else:
                if S:
                    W, M, Minv = _compact(S, Y, theta, xp)
                    Wh = np.asarray(to_numpy(W))
                else:
                    W = M = Minv = Wh = None
                xcp, c, free = _cauchy(np.asarray(to_numpy(x)), np.asarray(to_numpy(g)),
                                       np.asarray(to_numpy(lo)), np.asarray(to_numpy(hi)),
                                       theta, Wh, M)
                xcp, freex = xp.asarray(xcp), xp.asarray(free)
                if S and free.any():
                    z = _subspace_min(x, g, lo, hi, xcp, c, freex, theta, W, M, Minv, xp)
                else:
                    z = xcp
                d = z - x
            # -- line search -----------------------------------------------------------
            gd = _f(g @ d)
            dnorm = _f(xp.sqrt(d @ d))
            ok = gd < 0.0 and dnorm > 0.0
            x_old, f_old, g_old = x, f, g
            if ok:
                stpmx = 1e10
                if constrained:
                    stpmx = 1.0 if it == 0 else _max_step(x, d, lo, hi, xp)
                stp = min(1.0 / dnorm, stpmx) if (it == 0 and not boxed) else 1.0
                ls = MoreThuente(1e-3, 0.9, 0.1, 0.0, stpmx)
                try:
                    stp = ls.start(f, gd, stp)
                except InputError:
                    ok = False
            if ok:
                nls = 0
                while True:
                    x_try = z if stp == 1.0 else x_old + stp * d
                    if constrained:  # guard against round-off outside the box
                        x_try = xp.minimum(xp.maximum(x_try, lo), hi)
                    f_try, g_try = obj(x_try)
                    nls += 1
                    task, stp_new = ls.step(f_try, _f(g_try @ d))
                    if task != "FG":
                        x, f, g = x_try, f_try, g_try
                        break
                    if nls >= maxls or not np.isfinite(stp_new):
                        ok = False
                        break
                    stp = stp_new
            if not ok:
                x, f, g = x_old, f_old, g_old
                if not S:
                    status, message = 2, "abnormal termination in the line search"
                    it += 1
                    break
                S, Y, theta = [], [], 1.0  # refresh the memory and retry
                continue
            # -- new iterate -------------------------------------------------------------
            it += 1
            s, y = x - x_old, g - g_old
            pg = _projected_grad(x, g, lo, hi, xp)
            pgnorm = _f(xp.abs(pg).max())
            hist.record(obj, loss=f, grad_norm=pgnorm, step_norm=_f(xp.sqrt(s @ s)))
            bar.update(f, pgnorm)
            sy, yy = _f(s @ y), _f(y @ y)
            if sy > _EPS * (-gd * stp):
                if len(S) == m:
                    S.pop(0)
                    Y.pop(0)
                S.append(s)
                Y.append(y)
                theta = yy / sy
            run.checkpoint(it, state_dict)
            if call_callback(callback, x, it, f):
                status, message = 0, "stopped by callback"
            elif pgnorm <= pgtol:
                status, message = 0, "converged: projected gradient inf-norm <= pgtol"
            elif f_old - f <= ftol * max(abs(f_old), abs(f), 1.0):
                status, message = 0, "converged: relative reduction of f <= ftol"
            elif obj.nfev >= maxfun:
                status, message = 1, "maximum number of function evaluations reached"
    finally:
        bar.close()
    return run.finish(state_dict(), x, f, g, status, message, it)
