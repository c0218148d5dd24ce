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
from .fisher import DegenerateCalibrationError, null_space_dimension
from .gains import dd_gains, di_gains
from .gauge import apply_gauge
from .weights import clean_data, make_weights

__all__ = ["GainProblem", "gain_problem", "GainSolution", "solve_gains", "check_degeneracy"]


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
    null = check_degeneracy(problem, theta0) if check else None
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
