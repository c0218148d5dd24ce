"""Gain solutions through the shared posterior and optimisers (Gauss-Newton / LM).

:func:`gain_problem` builds the model ``theta -> Params -> parameterisation -> gains ->
V_cal`` from the composed operators, a :class:`~linlim.likelihood.GaussianLikelihood` with
weights from noise and flags (flagged data zeroed, so they never pull the solution) and the
:class:`~linlim.likelihood.LogPosterior` that every optimiser sees. :func:`solve_gains`
runs the shared Gauss-Newton or Levenberg-Marquardt optimiser on it (DI or DD gains, any
parameterisation), checks the problem for degeneracies beyond the gauge, applies and reports
the gauge, and returns Cramér-Rao errors.

Gauge dimension of the complex-gain parameterisations: one phase per solution cell, per
cluster (DD), and per feed unless cross-hand data tie the feeds. Any further null direction
of the Fisher matrix is a degeneracy: :class:`DegenerateCalibrationError` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import asarray, get_xp, to_numpy
from ..errors import InputError
from ..operators.base import Operator
from ..operators.linear import Select
from ..params import ParamBlock, Params
from ..validation import first_indices
from .fisher import DegenerateCalibrationError, null_space_dimension
from .gains import dd_gains, di_gains
from .gauge import apply_gauge
from .weights import clean_data, make_weights

__all__ = ["GainProblem", "gain_problem", "GainSolution", "solve_gains", "check_degeneracy",
           "CellSolution", "gauss_newton_cells", "gauge_null_space"]


@dataclass
class GainProblem:
    """A calibration problem ready for the shared optimisers.

    Attributes
    ----------
    posterior : linlim.likelihood.LogPosterior
        Over the flat real ``theta``.
    params : linlim.Params
        One block ``"gains"`` (complex gains) or ``"gain_params"`` (a real parameterisation).
    gain_op : Operator
        Fixed-model DI/DD gain operator (gains -> model visibilities).
    param_op : Operator or None
        Parameterisation (parameters -> gains), None for free complex gains.
    theta_to_gains : Operator
        ``theta`` -> gains.
    gauge_dim : int or None
        Expected number of gauge null directions of the Fisher matrix.
    weights : array
        Weights used (0 for flags and autos).
    """

    posterior: Any
    params: Params
    gain_op: Operator
    param_op: Operator | None
    theta_to_gains: Operator
    gauge_dim: int | None
    weights: Any

    def theta_from_gains(self, gains: Any) -> Any:
        """``theta`` for free complex gains (only without a parameterisation)."""
        if self.param_op is not None:
            raise InputError("theta_from_gains: this problem has a parameterisation; pack its "
                             "parameters with problem.params.pack({'gain_params': ...})")
        return self.params.pack({"gains": gains})


def gain_problem(data: Any, model: Any, ant1: Any, ant2: Any, nants: int, *,
                 nclusters: int | None = None, parameterization: Operator | None = None,
                 gauge_dim: int | None = None, noise: Any = None, weights: Any = None,
                 flags: Any = None, time_interval: Any = 1, freq_interval: Any = 1,
                 pols: Any = None, include_autos: bool = False, priors: Any = ()) -> GainProblem:
    """Build the posterior of a DI (``nclusters=None``) or DD gain problem.

    Parameters
    ----------
    data : complex array, shape ([Npols,] Ntimes, Nfreqs, Nbl)
        Observed visibilities (Jy).
    model : complex array
        DI: same shape as ``data``; DD: ``(Nclusters, [Npols,] Ntimes, Nfreqs, Nbl)``.
    ant1, ant2 : int arrays, shape (Nbl,)
    nants : int
    nclusters : int, optional
        Number of clusters for direction-dependent gains.
    parameterization : Operator, optional
        Real parameters -> complex gains of the gain operator's input shape (see
        :mod:`~linlim.calibration.parameterizations`); default free complex gains.
    gauge_dim : int, optional
        Expected gauge null-space dimension for a custom parameterisation (computed for
        free complex gains).
    noise, weights, flags, include_autos
        As in :func:`~linlim.calibration.weights.make_weights`.
    time_interval, freq_interval, pols
        As in :func:`~linlim.calibration.gains.di_gains`.
    priors : sequence of linlim priors, optional

    Returns
    -------
    GainProblem
    """
    from ..likelihood import GaussianLikelihood, LogPosterior

    xp = get_xp()
    data = asarray(data, xp, dtype=np.complex128)
    w = make_weights(tuple(data.shape), noise=noise, weights=weights, flags=flags, ant1=ant1,
                     ant2=ant2, include_autos=include_autos, xp=xp)
    data = clean_data(data, w)
    nt, nf = data.shape[-3], data.shape[-2]
    if nclusters is None:
        gop = di_gains(ant1, ant2, nants, nt, nf, time_interval=time_interval,
                       freq_interval=freq_interval, pols=pols, model=model, xp=xp)
        ncl = 1
    else:
        gop = dd_gains(ant1, ant2, nants, nt, nf, nclusters, time_interval=time_interval,
                       freq_interval=freq_interval, pols=pols, model=model, xp=xp)
        ncl = int(nclusters)
    if parameterization is None:
        params = Params([ParamBlock("gains", gop.in_shape, "complex128")])
        inner: Operator = Select(params.out_shape, params.out_dtype, 0, xp=xp)
        ncells = int(gop.time_index.max() + 1) * int(gop.freq_index.max() + 1)
        feeds = 1
        if pols is not None:
            cross = any(p in (-7, -8) or (isinstance(p, (tuple, list)) and p[0] != p[1])
                        for p in pols)
            feeds = 1 if cross else gop.in_shape[-4]
        gauge_dim = ncells * ncl * feeds if gauge_dim is None else gauge_dim
    else:
        if parameterization.out_shape != gop.in_shape:
            raise InputError(f"gain_problem: the parameterisation returns "
                             f"{parameterization.out_shape}, the gain operator takes "
                             f"{gop.in_shape}")
        params = Params([ParamBlock("gain_params", parameterization.in_shape, "float64")])
        inner = parameterization @ Select(params.out_shape, params.out_dtype, 0, xp=xp)
    theta_to_gains = inner @ params
    lik = GaussianLikelihood(gop @ theta_to_gains, data, weights=w)
    post = LogPosterior(lik, priors=priors, params=params)
    return GainProblem(post, params, gop, parameterization, theta_to_gains, gauge_dim, w)


def check_degeneracy(problem: GainProblem, theta: Any, rcond: float = 1e-9,
                     max_params: int = 6000) -> int | None:
    """Count the Fisher null directions at ``theta``; raise if more than the gauge.

    Returns the null-space dimension, or None when the problem has more than
    ``max_params`` parameters (check skipped; the result says so).

    Raises
    ------
    DegenerateCalibrationError
        If the null space is larger than ``problem.gauge_dim``.
    """
    from ..inference.fisher import fisher_matrix

    if problem.params.size > max_params:
        return None
    F = fisher_matrix(problem.posterior, theta, include_prior=False)
    null = int(null_space_dimension(to_numpy(F), rcond))
    if problem.gauge_dim is not None and null > problem.gauge_dim:
        raise DegenerateCalibrationError(
            f"calibration problem is degenerate: the Fisher matrix has {null} null directions "
            f"but the gauge accounts for only {problem.gauge_dim} (one phase per cell"
            f"{', cluster' if problem.gain_op.name.startswith('DD') else ''} and feed). The "
            "data cannot tell these gains apart. Causes: an antenna with all its data flagged "
            "in a cell (flag or drop it), or, for direction-dependent gains of point-source "
            "clusters, solution intervals of one time and one channel (use intervals spanning "
            "several times or channels, or fewer clusters).")
    return null


@dataclass
class GainSolution:
    """Outcome of :func:`solve_gains`.

    Attributes
    ----------
    gains : complex array
        The gain operator's input shape, in the applied gauge.
    theta : array (n,)
        Final parameters (before the gauge rotation).
    result : OptimizeResult
        From the shared optimiser (iterations, J/J^H products, history).
    gauge : str
    null_dim : int or None
        Fisher null-space dimension found by the degeneracy check.
    chi2 : float
        ``sum w |d - m|^2`` at the solution.
    """

    gains: Any
    theta: Any
    result: Any
    gauge: str
    null_dim: int | None
    chi2: float
    problem: GainProblem = field(repr=False)


def solve_gains(problem: GainProblem, theta0: Any = None, *, method: str = "gn",
                gauge: str = "ref_antenna", ref_ant: int = 0, check: bool = True,
                **options: Any) -> GainSolution:
    """Maximise the gain posterior with the shared Gauss-Newton or LM optimiser.

    Parameters
    ----------
    problem : GainProblem
    theta0 : array (n,), optional
        Start (default: unit gains for free complex gains, zeros for a parameterisation).
    method : {"gn", "lm"}
    gauge : {"ref_antenna", "mean_phase", "none"}
        Applied to the complex gains after the solve (antenna axis -3).
    check : bool
        Run :func:`check_degeneracy` at ``theta0`` (raises on a degenerate problem).
    **options
        Passed to the optimiser (``tol``, ``maxiter``, ...).
    """
    from ..inference.gauss_newton import gauss_newton, levenberg_marquardt

    p = problem.params
    if theta0 is None:
        if problem.param_op is None:
            theta0 = p.pack({"gains": np.ones(problem.gain_op.in_shape, dtype=np.complex128)})
        else:
            theta0 = p.xp.zeros(p.size, dtype=np.float64)
    theta0 = problem.posterior._check(theta0, "theta0")
    bad = ~np.isfinite(np.asarray(to_numpy(theta0)))
    if bad.any():
        raise InputError(f"solve_gains: theta0: expected finite starting parameters, received "
                         f"{int(bad.sum())} NaN/inf values (first at indices "
                         f"{first_indices(bad)})")
    null = check_degeneracy(problem, theta0) if check else None
    if problem.param_op is None and problem.gauge_dim and "null_space" not in options:
        # the phase gauge, projected out of the CG right-hand side and iterates
        options["null_space"] = gauge_null_space(problem)
    if method == "gn":
        res = gauss_newton(problem.posterior, theta0, **options)
    elif method == "lm":
        res = levenberg_marquardt(problem.posterior, theta0, **options)
    else:
        raise InputError(f"solve_gains: method must be 'gn' or 'lm', received {method!r}")
    gains = problem.theta_to_gains.forward(res.x)
    gains, desc = apply_gauge(gains, gauge, ref_ant=ref_ant)
    chi2 = float(problem.posterior.likelihood.chi2(res.x))
    return GainSolution(gains, res.x, res, desc, null, chi2, problem)


def gauge_null_space(problem: GainProblem) -> Any:
    """The phase-gauge directions of a free-complex-gain problem, as a callable
    ``theta -> N (n, gauge_dim)`` for the shared optimisers' ``null_space=``.

    Each column rotates the phases of one gauge group (a solution cell, per cluster, and
    per feed unless cross-hands tie the feeds): ``d gains = i gains`` on that group and 0
    elsewhere, packed like ``theta``. The columns have disjoint supports.
    """
    if problem.param_op is not None:
        raise InputError("gauge_null_space: only for free complex gains (no "
                         "parameterisation); give null_space= for a parameterisation")
    shape = tuple(problem.gain_op.in_shape)
    lead, cells = shape[:-3], shape[-2:]
    ngroups = int(np.prod(lead + cells))
    tied = problem.gauge_dim is not None and problem.gauge_dim != ngroups and len(lead) >= 1
    group_shape = (lead[:-1] if tied else lead) + cells

    def null(theta: Any) -> Any:
        g = to_numpy(problem.theta_to_gains.forward(theta))
        cols = []
        for idx in np.ndindex(*group_shape):
            *li, t, f = idx
            mask = np.zeros(shape, dtype=bool)
            sel = tuple(li) + ((slice(None),) if tied else ()) + (slice(None), t, f)
            mask[sel] = True
            cols.append(to_numpy(problem.params.pack({"gains": np.where(mask, 1j * g, 0)})))
        return asarray(np.stack(cols, axis=1), problem.params.xp)

    return null


@dataclass
class CellSolution:
    """Outcome of :func:`gauss_newton_cells`.

    Attributes
    ----------
    gains : complex array, shape (Nant, Ntimes_sol, Nfreqs_sol)
        Solutions in the requested gauge ("divide" convention).
    flags : bool array, same shape
        Antennas with no unflagged data in a cell (gain 1).
    iterations : int array, shape (Ntimes_sol, Nfreqs_sol)
    converged : bool array, shape (Ntimes_sol, Nfreqs_sol)
    chi2 : float array, shape (Ntimes_sol, Nfreqs_sol)
        ``sum w |d - g_p conj(g_q) m|^2`` over the cell's cross-correlations.
    step_history : list of float
        Largest relative step ``|dg| / |g|`` over the cells at each iteration (quadratic
        convergence shows as the exponent doubling).
    gauge : str
    """

    gains: Any
    flags: Any
    iterations: Any
    converged: Any
    chi2: Any
    step_history: list
    gauge: str


def _rank_one_start(A: Any, B: Any) -> Any:
    """Starting gains per cell from the leading eigenvector of ``X_pq = A_pq / B_pq``
    (the weighted mean of ``R / M``, which is ``g_p conj(g_q)`` without noise), with the
    unknown diagonal filled by the rows' mean magnitude. Non-iterative, so the
    Gauss-Newton iterations start inside the basin of the maximum-likelihood solution
    even when the true phases span the whole circle."""
    X = np.where(B > 0, A / np.where(B > 0, B, 1.0), 0.0)
    cnt = (B > 0).sum(axis=-1)
    diag = np.abs(X).sum(axis=-1) / np.maximum(cnt, 1)
    n = X.shape[-1]
    X = X + diag[..., None] * np.eye(n)
    lam, vec = np.linalg.eigh(X)
    v = vec[..., -1] * np.sqrt(np.maximum(lam[..., -1], 0.0))[..., None]
    v = np.where(np.abs(v) > 0, v, 1.0)
    return v.astype(np.complex128)


def _cell_chi2(D: Any, A: Any, B: Any, g: Any) -> Any:
    """``chi^2 = D - Re(g^H A g) + |g|^2 . B |g|^2 / 2`` per cell (module Notes of
    :func:`gauss_newton_cells`)."""
    a = g.real**2 + g.imag**2
    gAg = np.einsum("...p,...pq,...q->...", g.conj(), A, g).real
    aBa = np.einsum("...p,...pq,...q->...", a, B, a)
    return D - gAg + 0.5 * aBa


def gauss_newton_cells(data: Any, model: Any, ant1: Any, ant2: Any, nants: int, *,
                       noise: Any = None, weights: Any = None, flags: Any = None,
                       time_interval: Any = 1, freq_interval: Any = 1, gains0: Any = None,
                       gauge: str = "ref_antenna", ref_ant: int = 0, tol: float = 1e-12,
                       maxiter: int = 100) -> CellSolution:
    """Gauss-Newton for free complex DI gains, every solution cell at once and separately.

    The cells (time interval x channel interval) are independent problems, so the normal
    matrix is block diagonal: each cell's ``2 Nant x 2 Nant`` Wirtinger system is formed in
    closed form from the StEFCal cell matrices and all cells are solved in one batched
    dense solve. The gauge (one phase per cell) is removed from the system: the right-hand
    side is projected orthogonal to the gauge direction ``(i g, -i conj g)`` and that
    direction is given a positive eigenvalue, so near convergence the system stays
    consistent and the step has no gauge component (quadratic convergence on noise-free
    data). Each step is backtracked until the cell's chi^2 does not increase.

    Parameters
    ----------
    data, model : complex array, shape (Ntimes, Nfreqs, Nbl)
        Observed and model visibilities (Jy), ``data ~ g_p conj(g_q) model``.
    ant1, ant2 : int array, shape (Nbl,)
        Antenna indices; autos are ignored.
    nants : int
    noise, weights, flags
        As in :func:`~linlim.calibration.weights.make_weights`.
    time_interval, freq_interval : int or array of int
    gains0 : complex array, shape (Nant, Ntimes_sol, Nfreqs_sol), optional
        Start; default unit phases with the least-squares amplitude of the cell.
    gauge : {"ref_antenna", "mean_phase", "none"}
    ref_ant : int
    tol : float
        A cell has converged when its step ``|dg| <= tol |g|``.
    maxiter : int

    Returns
    -------
    CellSolution

    Notes
    -----
    With ``A = sum_s w conj(M) R`` and ``B = sum_s w |M|^2`` summed over a cell (ordered
    antenna pairs, both Hermitian), ``D = sum w |R|^2`` over its cross-correlations:
    ``chi^2(g) = D - g^H A g + |g|^2.B|g|^2 / 2``. Its conjugate gradient is
    ``c = A g - g * (B |g|^2)`` and the Gauss-Newton matrix of ``(dg, conj dg)`` is
    ``[[diag(B|g|^2), diag(g) B diag(g)], [conj, conj]]``; the step solves
    ``H (dg, conj dg) = (c, conj c)``.
    """
    from .gains import solution_index
    from .stefcal import cell_matrices

    data = np.asarray(data, dtype=np.complex128)
    model = np.asarray(model, dtype=np.complex128)
    if data.ndim != 3 or data.shape != model.shape:
        raise InputError(f"gauss_newton_cells: data and model must both be (Ntimes, Nfreqs, "
                         f"Nbl); received {data.shape} and {model.shape}")
    nt, nf, nbl = data.shape
    from ..validation import check_finite_data, check_not_all_flagged
    from .stefcal import check_stefcal_geometry

    w = np.asarray(make_weights(data.shape, noise=noise, weights=weights, flags=flags,
                                ant1=ant1, ant2=ant2, include_autos=False, xp=np))
    w = np.asarray(check_finite_data(data, w, "data", "gauss_newton_cells"))
    w = np.asarray(check_finite_data(model, w, "model", "gauss_newton_cells"))
    check_not_all_flagged(w, "data", "gauss_newton_cells (auto-correlations are not used)")
    data = np.asarray(clean_data(data, w))
    model = np.asarray(clean_data(model, w))
    tidx = solution_index(nt, time_interval, "time")
    fidx = solution_index(nf, freq_interval, "freq")
    A, B = cell_matrices(data, model, w, ant1, ant2, nants, tidx, fidx)
    A, B = np.asarray(A), np.asarray(B)
    check_stefcal_geometry(B)     # degenerate cells (no odd cycle, split groups) refused
    nts, nfs = A.shape[:2]
    Dt = np.zeros((nts, nf))
    np.add.at(Dt, tidx, (w * (data.real**2 + data.imag**2)).sum(axis=-1))
    D = np.zeros((nts, nfs))
    np.add.at(D.T, fidx, Dt.T)
    bad = B.sum(axis=-1) <= 0                                    # (nts, nfs, N)
    if gains0 is None:
        g = _rank_one_start(A, B)
    else:
        g0 = np.asarray(gains0, dtype=np.complex128)
        if g0.shape != (nants, nts, nfs):
            raise InputError(f"gauss_newton_cells: gains0 must have shape "
                             f"{(nants, nts, nfs)}, received {g0.shape}")
        g = np.moveaxis(g0, 0, -1).copy()
    g = np.where(bad, 1.0 + 0j, g)
    chi = _cell_chi2(D, A, B, g)
    done = np.zeros((nts, nfs), dtype=bool)
    iters = np.zeros((nts, nfs), dtype=np.int64)
    eye = np.eye(nants)
    hist: list[float] = []
    prev = np.full((nts, nfs), np.inf)
    for it in range(1, maxiter + 1):
        act = ~done
        ga, Aa, Ba, bada = g[act], A[act], B[act], bad[act]
        a = ga.real**2 + ga.imag**2
        s = np.einsum("cpq,cq->cp", Ba, a)
        c = np.einsum("cpq,cq->cp", Aa, ga) - ga * s
        H11 = s[..., None] * eye
        H12 = ga[:, :, None] * Ba * ga[:, None, :]
        H = np.concatenate([np.concatenate([H11, H12], axis=2),
                            np.concatenate([H12.conj(), H11], axis=2)], axis=1)
        rhs = np.concatenate([c, c.conj()], axis=1)
        z = np.concatenate([1j * ga, -1j * ga.conj()], axis=1)     # gauge direction
        z = np.where(np.concatenate([bada, bada], axis=1), 0.0, z)
        zz = np.einsum("cn,cn->c", z.conj(), z).real
        z = z / np.sqrt(np.where(zz > 0, zz, 1.0))[:, None]
        rhs = rhs - z * np.einsum("cn,cn->c", z.conj(), rhs)[:, None]
        scale = s.mean(axis=1)
        H = H + scale[:, None, None] * z[:, :, None] * z.conj()[:, None, :]
        b2 = np.concatenate([bada, bada], axis=1)                 # fixed antennas
        H = np.where(b2[:, :, None] | b2[:, None, :], 0.0, H)
        H[:, np.arange(2 * nants), np.arange(2 * nants)] += np.where(b2, 1.0, 0.0)
        rhs = np.where(b2, 0.0, rhs)
        x = np.linalg.solve(H, rhs[..., None])[..., 0]
        dg = 0.5 * (x[:, :nants] + x[:, nants:].conj())
        # backtracking on chi^2, per cell, while far from the solution; once the full
        # step is small (the quadratic region) it is taken as is, because chi^2 computed
        # from the cell sums cancels to rounding there and cannot rank the iterates
        chi_a = chi[act]
        t = np.ones(ga.shape[0])
        gn = ga + dg
        cn = _cell_chi2(D[act], Aa, Ba, gn)
        full = np.sqrt((np.abs(dg) ** 2).sum(1) / (np.abs(ga) ** 2).sum(1))
        for _ in range(30):
            worse = (cn > chi_a * (1 + 1e-15) + 1e-300) & (full > 1e-3)
            if not worse.any():
                break
            t = np.where(worse, 0.5 * t, t)
            gn = np.where(worse[:, None], ga + t[:, None] * dg, gn)
            cn = np.where(worse, _cell_chi2(D[act], Aa, Ba, gn), cn)
        rel = t * full
        hist.append(float(rel.max()) if rel.size else 0.0)
        g[act] = gn
        chi[act] = np.where(full > 1e-3, np.minimum(cn, chi_a), cn)
        iters[act] = it
        # stagnation guard: a step at the rounding floor that no longer shrinks
        floor = (rel < 1e-7) & (rel > 0.25 * prev[act])
        prev[act] = rel
        newly = (rel <= tol) | (t < 1e-8) | floor
        done[act] = newly
        if done.all():
            break
    conv = done.copy()
    gains = np.moveaxis(g, -1, 0)
    flags_out = np.moveaxis(bad, -1, 0)
    gains, desc = apply_gauge(gains, gauge, ref_ant=ref_ant, flags=flags_out)
    return CellSolution(np.asarray(gains), flags_out, iters, conv,
                        np.maximum(chi, 0.0), hist, desc)
