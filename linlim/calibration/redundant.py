"""Redundant-baseline calibration: one free visibility per redundant group.

A redundant array measures the same sky visibility ``u_g`` on every baseline of group
``g``, so ``V_b = g_i conj(g_j) u_g`` (``u_g`` conjugated for members stored in the
flipped orientation) and gains follow from the data alone, up to the degeneracies of the
model: per (time, channel) the overall amplitude (``g -> e^a g``, ``u -> e^-2a u``), the
overall phase (``g -> e^ic g``) and the phase gradient across the array (``g_i -> e^(i k .
x_i) g_i``, ``u_g -> e^(i k . b_g) u_g``, two real parameters for a planar array): four
real degeneracies per (time, channel) for one polarisation. Reference (sky) information
fixes them; here they are projected out of the solution and reported.

* :class:`RedundantVisibilities` -- ``u (Nt, Nf, Ngroups) -> V (Nt, Nf, Nbl)``, R-linear,
  with its adjoint.
* :func:`drop_small_groups` -- keep groups with at least two baselines (a single-baseline
  group has no redundancy: its visibility absorbs the data exactly and tells nothing about
  the gains, so :class:`RedundantVisibilities` refuses it).
* :func:`logcal` -- linear least squares on log amplitudes and phases.
* :func:`redcal_problem`, :func:`redcal` -- Gauss-Newton ("lincal") on the joint (gains,
  group visibilities) posterior, composed as ``di_gains @ vstack([Select, R @ Select])``.
* :func:`fix_degeneracies` -- move a solution onto a reference's gauge (the truth in
  tests, a sky-calibrated solution in practice, unit gains by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..backend import asarray, get_xp, scatter_add, to_numpy
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator, Operator
from ..operators.composite import vstack
from ..operators.linear import Select
from ..params import ParamBlock, Params
from .gains import di_gains

__all__ = ["RedundantVisibilities", "redundant_visibilities", "drop_small_groups", "logcal",
           "RedcalProblem", "redcal_problem", "RedcalSolution", "redcal", "fix_degeneracies",
           "degeneracy_count"]


class RedundantVisibilities(LinearOperator):
    """Expand one visibility per redundant group to every baseline of the group.

    ``y[t, f, b] = u[t, f, g_b]`` or ``conj(u[t, f, g_b])`` where baseline ``b`` is stored
    flipped relative to its group's representative.

    Parameters
    ----------
    group_of : array of int, shape (Nbl,)
        Group index of each baseline (``0 .. Ngroups-1``, every group used).
    conj_of : array of bool, shape (Nbl,)
        True where the baseline's visibility is the conjugate of the group's.
    ntimes, nfreqs : int
    ngroups : int, optional
        Default ``max(group_of) + 1``.
    dtype : complex dtype

    Raises
    ------
    InputError
        A group with fewer than two baselines (see :func:`drop_small_groups`), or group
        indices out of range.

    Notes
    -----
    R-linear (not C-linear, because of the conjugation). Under ``<x, y> = Re sum conj(x) y``,
    ``Re conj(conj(u)) w = Re conj(u) conj(w)``, so the adjoint scatters::

        u[t, f, g] = sum_{b in g, direct} w[t, f, b] + sum_{b in g, flipped} conj(w[t, f, b])

    Examples
    --------
    >>> import numpy as np
    >>> R = RedundantVisibilities([0, 0, 1, 1], [False, True, False, False], 1, 1)
    >>> R(np.array([[[1 + 2j, 3j]]]))
    array([[[1.+2.j, 1.-2.j, 0.+3.j, 0.+3.j]]])
    """

    _abstract = False

    def __init__(self, group_of: Any, conj_of: Any, ntimes: int, nfreqs: int,
                 ngroups: int | None = None, dtype: Any = np.complex128,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        g = np.asarray(group_of, dtype=np.int64).ravel()
        cj = np.asarray(conj_of, dtype=bool).ravel()
        if g.shape != cj.shape:
            raise ShapeError(f"RedundantVisibilities: group_of {g.shape} and conj_of "
                             f"{cj.shape} must have the same shape")
        if g.size == 0:
            raise InputError("RedundantVisibilities: no baselines")
        ng = int(g.max()) + 1 if ngroups is None else int(ngroups)
        if g.min() < 0 or g.max() >= ng:
            raise InputError(f"RedundantVisibilities: group_of must lie in [0, {ng}), "
                             f"received {g.min()}..{g.max()}")
        counts = np.bincount(g, minlength=ng)
        small = np.flatnonzero(counts < 2)
        if small.size:
            raise InputError(
                f"RedundantVisibilities: every redundant group needs at least 2 baselines; "
                f"group(s) {small[:10].tolist()}{' ...' if small.size > 10 else ''} have "
                f"{counts[small][:10].tolist()}. A single-baseline group's free visibility "
                "fits its one baseline exactly and constrains no gain: drop such groups "
                "with drop_small_groups(red)")
        dtype = np.dtype(dtype)
        if dtype.kind != "c":
            raise InputError(f"RedundantVisibilities: dtype must be complex, received {dtype}")
        super().__init__((int(ntimes), int(nfreqs), ng), (int(ntimes), int(nfreqs), g.size),
                         dtype, dtype, xp, name="RedundantVisibilities")
        self.ngroups, self.counts_per_group = ng, counts
        self.group_of = asarray(g, xp)
        self.conj_of = asarray(cj, xp)

    def _matvec(self, u: Any) -> Any:
        y = u[..., self.group_of]                                  # gather group -> baseline
        return self.xp.where(self.conj_of, y.conj(), y)            # flipped members: conj

    def _rmatvec(self, w: Any) -> Any:
        z = self.xp.where(self.conj_of, w.conj(), w)               # undo the conjugation
        out = self.xp.zeros(self.in_shape, dtype=w.dtype)
        return scatter_add(out, self.group_of, z, axis=2)         # baseline b -> group g_b


def drop_small_groups(red: Any, min_size: int = 2) -> Any:
    """Keep the redundant groups with at least ``min_size`` baselines.

    Parameters
    ----------
    red : linlim.telescope.RedundantGroups
    min_size : int

    Returns
    -------
    RedundantGroups
        Same type, with ``pairs``, ``group_of``, ``conj_of`` restricted to the kept
        baselines (in their original order) and groups renumbered ``0 .. Nkept-1``.
    """
    sizes = np.array([len(m) for m in red.groups])
    keep = np.flatnonzero(sizes >= int(min_size))
    if keep.size == 0:
        raise InputError(f"drop_small_groups: no group has >= {min_size} baselines")
    new = np.full(red.ngroups, -1, dtype=np.int64)
    new[keep] = np.arange(keep.size)
    sel = new[red.group_of] >= 0
    return replace(red, groups=[red.groups[k] for k in keep],
                   conjugated=[red.conjugated[k] for k in keep],
                   representatives=red.representatives[keep], vectors=red.vectors[keep],
                   group_of=new[red.group_of[sel]], conj_of=red.conj_of[sel],
                   pairs=red.pairs[sel])


def redundant_visibilities(red: Any, ntimes: int, nfreqs: int, xp: Any = None
                           ) -> RedundantVisibilities:
    """:class:`RedundantVisibilities` for a :class:`~linlim.telescope.RedundantGroups`
    (baselines in ``red.pairs`` order)."""
    return RedundantVisibilities(red.group_of, red.conj_of, ntimes, nfreqs, red.ngroups,
                                 xp=xp)


def _indices(red: Any, layout: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Antenna indices of ``red.pairs`` and the positions (Nant, 3)."""
    a1 = np.asarray(layout.index_of(red.pairs[:, 0]), dtype=np.int64)
    a2 = np.asarray(layout.index_of(red.pairs[:, 1]), dtype=np.int64)
    if np.any(a1 == a2):
        raise InputError("redundant calibration: auto-correlations carry no redundancy "
                         "information; group the cross-correlations (autos=False)")
    used = np.zeros(layout.nants, dtype=bool)
    used[a1] = used[a2] = True
    if not used.all():
        raise InputError(f"redundant calibration: antennas {np.flatnonzero(~used).tolist()} "
                         "(indices) are in no kept redundant baseline; select the layout's "
                         "antennas that are")
    return a1, a2, np.asarray(layout.antpos, dtype=np.float64)


def degeneracy_count(antpos: Any) -> int:
    """Real degeneracies per (time, channel): amplitude + phase + rank of the positions
    (4 for a planar 2-D array, 3 for a linear one)."""
    x = np.asarray(antpos, dtype=np.float64)
    x = x - x.mean(axis=0)
    s = np.linalg.svd(x, compute_uv=False)
    return 2 + int((s > 1e-9 * max(s.max(), 1.0)).sum())


def logcal(data: Any, red: Any, layout: Any, *, weights: Any = None) -> tuple[Any, Any]:
    """Logarithmic redundant calibration: a linear least-squares solve per (time, channel).

    With ``d'_b = d_b`` (or ``conj(d_b)`` for flipped members), ``eta = log|g|`` and
    ``phi = arg g``::

        log|d_b|  = eta_i + eta_j + log|u_g|
        psi_b     = s_b (phi_i - phi_j) + delta_g,     s_b = -1 for flipped members

    where ``psi_b = arg(d'_b conj(ubar_g))`` is measured from the group's vector mean
    ``ubar_g`` and ``arg u_g = arg ubar_g + delta_g``. Both systems share one matrix per
    sample mask; the minimum-norm solution (pseudo-inverse) leaves the degeneracies at zero
    mean. The solve is unweighted (zero weights only drop samples).

    Limits: referencing phases to the group mean removes the sky phase, so only the gain
    phase differences ``phi_i - phi_j`` must stay within ``(-pi, pi)`` on every baseline
    (after removing any common phase gradient). Large delays or phase gradients wrap and
    bias logcal; remove them first (e.g. a delay/"firstcal" step). Noise biases ``log|d|``
    at low signal-to-noise; Gauss-Newton (:func:`redcal`) removes these biases.

    Parameters
    ----------
    data : complex array, shape (Ntimes, Nfreqs, Nbl)
        Visibilities on ``red.pairs`` (cross-correlations only).
    red : RedundantGroups
        Groups with >= 2 baselines each (:func:`drop_small_groups`).
    layout : ArrayLayout
    weights : array, optional
        Broadcastable to ``data``; only ``w > 0`` matters.

    Returns
    -------
    gains : complex array, shape (Nant, Ntimes, Nfreqs)
    vis : complex array, shape (Ntimes, Nfreqs, Ngroups)
    """
    a1, a2, _ = _indices(red, layout)
    d = np.asarray(to_numpy(data), dtype=np.complex128)
    nbl = a1.size
    if d.ndim != 3 or d.shape[-1] != nbl:
        raise ShapeError(f"logcal: data must have shape (Ntimes, Nfreqs, {nbl}), received "
                         f"{d.shape}")
    nt, nf = d.shape[:2]
    n, ng = int(layout.nants), red.ngroups
    RedundantVisibilities(red.group_of, red.conj_of, 1, 1, ng)          # validates groups
    g_of, cj = red.group_of, red.conj_of
    mask = np.isfinite(d) & (np.abs(d) > 0)       # log|d| finite on every kept sample
    if weights is not None:
        w = np.asarray(to_numpy(weights))
        mask &= np.broadcast_to(np.isfinite(w) & (w > 0), d.shape)
    d = np.where(mask, d, 0.0)
    da = np.where(cj, d.conj(), d)
    ubar = np.zeros((nt, nf, ng), complex)
    np.add.at(ubar, (slice(None), slice(None), g_of), np.where(mask, da, 0))
    psi = np.angle(da * ubar[..., g_of].conj())
    loga = np.log(np.where(mask, np.abs(d), 1.0))
    rows = np.arange(nbl)
    Aamp = np.zeros((nbl, n + ng))
    Aph = np.zeros((nbl, n + ng))
    s = np.where(cj, -1.0, 1.0)
    Aamp[rows, a1] += 1.0
    Aamp[rows, a2] += 1.0
    Aamp[rows, n + g_of] = 1.0
    Aph[rows, a1] += s
    Aph[rows, a2] -= s
    Aph[rows, n + g_of] = 1.0
    xa = np.zeros((nt, nf, n + ng))
    xph = np.zeros((nt, nf, n + ng))
    masks = mask.reshape(nt * nf, nbl)
    # group cells by sample mask (bytes keys: no dependence on np.unique's axis handling)
    groups: dict = {}
    for c in range(nt * nf):
        groups.setdefault(masks[c].tobytes(), []).append(c)
    for cells in groups.values():
        pattern = masks[cells[0]].astype(bool)
        ti, fi = np.unravel_index(np.asarray(cells), (nt, nf))
        pa, pp = _pinv(Aamp[pattern]), _pinv(Aph[pattern])
        xa[ti, fi] = loga[ti, fi][:, pattern] @ pa.T
        xph[ti, fi] = psi[ti, fi][:, pattern] @ pp.T
    gains = np.exp(xa[..., :n] + 1j * xph[..., :n]).transpose(2, 0, 1)
    vis = np.exp(xa[..., n:]) * np.exp(1j * (np.angle(ubar) + xph[..., n:]))
    xp = get_xp()
    return asarray(gains, xp), asarray(vis, xp)


def _pinv(a: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Minimum-norm pseudo-inverse with an explicit relative cut-off (the logcal matrices
    have exact null spaces, the degeneracies; numpy's ``pinv`` default cut-off has changed
    between versions)."""
    if a.size == 0:
        return np.zeros(a.shape[::-1])
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > rtol * s.max()
    return (vt[keep].T / s[keep]) @ u[:, keep].T


def fix_degeneracies(gains: Any, vis: Any, red: Any, layout: Any,
                     reference: Any = None) -> tuple[Any, Any, dict]:
    """Move a redundant solution onto the gauge of ``reference`` gains.

    Per (time, channel), fits ``log(g_i / g_ref,i) ~ A + i (c + k . x_i)`` (``A`` the mean
    log-amplitude ratio, ``c, k`` by least squares on the wrapped phase ratios, ``k`` the
    min-norm solution over the position's span) and applies the exact degeneracy
    transformation::

        g_i -> g_i exp(-A - i (c + k . x_i)),   u_g -> u_g exp(2 A - i k . b_g)

    which leaves every model visibility ``g_i conj(g_j) u_g`` unchanged.

    Parameters
    ----------
    gains : complex array, shape (Nant, Ntimes, Nfreqs)
    vis : complex array, shape (Ntimes, Nfreqs, Ngroups)
    red : RedundantGroups
    layout : ArrayLayout
    reference : complex array, shape (Nant, Ntimes, Nfreqs), optional
        Default unit gains (mean log amplitude 0, mean phase 0, no phase gradient).

    Returns
    -------
    gains, vis
        In the reference's gauge.
    degeneracies : dict
        ``amplitude`` (Nt, Nf), ``phase`` (Nt, Nf) rad, ``gradient`` (3, Nt, Nf) rad/m
        (ENU): the removed offsets relative to the reference.

    Notes
    -----
    The phase fit works on wrapped phase ratios; it is exact when the solution and the
    reference differ by less than ``pi`` on every antenna after the fit (the usual case
    after Gauss-Newton from logcal).
    """
    g = np.asarray(to_numpy(gains), dtype=np.complex128)
    u = np.asarray(to_numpy(vis), dtype=np.complex128)
    ref = np.ones_like(g) if reference is None else np.asarray(to_numpy(reference),
                                                                 dtype=np.complex128)
    if ref.shape != g.shape:
        raise ShapeError(f"fix_degeneracies: reference must have the gains' shape {g.shape}, "
                         f"received {ref.shape}")
    x = np.asarray(layout.antpos, dtype=np.float64)
    xc = x - x.mean(axis=0)
    ratio = g / ref
    A = np.log(np.abs(ratio)).mean(axis=0)                           # (Nt, Nf)
    dphi = np.angle(ratio)                                           # (Nant, Nt, Nf)
    X = np.concatenate([np.ones((x.shape[0], 1)), xc], axis=1)       # c' + k . (x - xbar)
    coef = np.linalg.lstsq(X, dphi.reshape(x.shape[0], -1), rcond=1e-9)[0]
    k = coef[1:].reshape((3,) + g.shape[1:])
    c = coef[0].reshape(g.shape[1:]) - np.einsum("k,k...->...", x.mean(axis=0), k)
    phase_i = c[None] + np.einsum("ak,k...->a...", x, k)
    g2 = g * np.exp(-A[None] - 1j * phase_i)
    b = np.asarray(red.vectors, dtype=np.float64)                   # (Ngroups, 3)
    kb = np.einsum("gk,k...->...g", b, k)                            # (Nt, Nf, Ngroups)
    u2 = u * np.exp(2.0 * A[..., None] - 1j * kb)
    xp = get_xp()
    return (asarray(g2, xp), asarray(u2, xp),
            dict(amplitude=A, phase=c, gradient=k))


@dataclass
class RedcalProblem:
    """The joint (gains, group visibilities) posterior of redundant calibration.

    Attributes
    ----------
    posterior : LogPosterior
    params : Params
        Blocks ``"gains"`` (Nant, Ntimes, Nfreqs) and ``"vis"`` (Ntimes, Nfreqs, Ngroups),
        complex128, interleaved in ``theta``.
    model : Operator
        ``theta -> V (Ntimes, Nfreqs, Nbl)``.
    red : RedundantGroups
    layout : ArrayLayout
    ant1, ant2 : int arrays (Nbl,)
        Antenna indices of ``red.pairs``.
    gauge_dim : int
        Expected Fisher null-space dimension, ``degeneracy_count * Ntimes * Nfreqs``.
    weights : array
    """

    posterior: Any
    params: Params
    model: Operator
    red: Any
    layout: Any
    ant1: np.ndarray
    ant2: np.ndarray
    gauge_dim: int
    weights: Any

    def pack(self, gains: Any, vis: Any) -> Any:
        """``theta`` from gains and group visibilities."""
        return self.params.pack({"gains": gains, "vis": vis})

    def unpack(self, theta: Any) -> tuple[Any, Any]:
        """``(gains, vis)`` from ``theta``."""
        p = self.params.unpack(theta)
        return p["gains"], p["vis"]


def redcal_problem(data: Any, red: Any, layout: Any, *, noise: Any = None,
                   weights: Any = None, priors: Any = ()) -> RedcalProblem:
    """Build the redundant-calibration posterior ``V_b = g_i conj(g_j) u_(g_b)``.

    Parameters
    ----------
    data : complex array, shape (Ntimes, Nfreqs, Nbl)
        Visibilities (Jy) on ``red.pairs`` (cross-correlations, groups of >= 2 baselines).
    red : RedundantGroups
    layout : ArrayLayout
    noise : float or array, optional
        ``sigma`` per complex sample (``E|n|^2 = sigma^2``); or give ``weights``.
    weights : array, optional
        ``1 / sigma^2`` (0 = flagged), broadcastable to ``data``.
    priors : sequence of linlim priors, optional

    Returns
    -------
    RedcalProblem
    """
    from ..likelihood import GaussianLikelihood, LogPosterior, noise_weights

    xp = get_xp()
    a1, a2, pos = _indices(red, layout)
    d = asarray(data, xp, dtype=np.complex128)
    nbl = a1.size
    if d.ndim != 3 or d.shape[-1] != nbl:
        raise ShapeError(f"redcal_problem: data must have shape (Ntimes, Nfreqs, {nbl}), "
                         f"received {tuple(d.shape)}")
    nt, nf = int(d.shape[0]), int(d.shape[1])
    n = int(layout.nants)
    if (noise is None) == (weights is None):
        raise InputError("redcal_problem: give exactly one of noise= and weights=")
    w = noise_weights(noise, weights=weights, shape=d.shape, where="redcal_problem")
    R = redundant_visibilities(red, nt, nf, xp=xp)
    params = Params([ParamBlock("gains", (n, nt, nf), "complex128"),
                     ParamBlock("vis", R.in_shape, "complex128")])
    shapes, dtypes = params.out_shape, params.out_dtype
    gop = di_gains(a1, a2, n, nt, nf, xp=xp)
    joint = vstack([Select(shapes, dtypes, 0, xp=xp), R @ Select(shapes, dtypes, 1, xp=xp)])
    model = gop @ joint @ params
    lik = GaussianLikelihood(model, d, weights=w)
    post = LogPosterior(lik, priors=priors, params=params)
    return RedcalProblem(post, params, model, red, layout, a1, a2,
                         degeneracy_count(pos) * nt * nf, w)


@dataclass
class RedcalSolution:
    """Outcome of :func:`redcal`.

    Attributes
    ----------
    gains : complex array (Nant, Ntimes, Nfreqs)
        In the reference gauge (:func:`fix_degeneracies`).
    vis : complex array (Ntimes, Nfreqs, Ngroups)
    degeneracies : dict
        The removed amplitude, phase and phase-gradient offsets (see
        :func:`fix_degeneracies`).
    gain_errors : array (Nant, Ntimes, Nfreqs) or None
        Cramér-Rao ``sqrt(E|dg|^2)`` with the degenerate directions projected out
        (pseudo-inverse of the Fisher matrix), or None when the Fisher check was skipped.
    null_dim, expected_null_dim : int or None, int
        Fisher null-space dimension found at the solution, and the degeneracy count.
    chi2, dof : float, int
        ``sum w |d - m|^2`` and ``2 Nbl Nt Nf - (Nparams - null)`` real degrees of freedom
        (``chi2`` is the complex-sample sum, whose expectation is ``dof / 2``).
    theta : array
        Gauss-Newton solution (before the gauge move).
    result : OptimizeResult
    """

    gains: Any
    vis: Any
    degeneracies: dict
    gain_errors: Any
    null_dim: int | None
    expected_null_dim: int
    chi2: float
    dof: int
    theta: Any
    result: Any
    problem: RedcalProblem = field(repr=False)


def redcal(data: Any, red: Any, layout: Any, *, noise: Any = None, weights: Any = None,
           reference: Any = None, fisher: bool = True, max_params: int = 4000,
           rcond: float = 1e-9, **options: Any) -> RedcalSolution:
    """Redundant calibration: logcal, then Gauss-Newton on the joint posterior.

    Parameters
    ----------
    data, red, layout, noise, weights
        As in :func:`redcal_problem`.
    reference : complex array (Nant, Ntimes, Nfreqs), optional
        Gains whose gauge the solution takes (:func:`fix_degeneracies`); default unit gains.
    fisher : bool
        Compute the Fisher matrix at the solution (when it has at most ``max_params``
        parameters): null-space dimension (compared with the degeneracy count) and gain
        errors with the degeneracies projected out.
    rcond : float
        Relative eigenvalue cut for the null space.
    **options
        Passed to :func:`linlim.inference.gauss_newton.gauss_newton` (``maxiter``, ...).

    Returns
    -------
    RedcalSolution
    """
    from ..inference.fisher import fisher_matrix
    from ..inference.gauss_newton import gauss_newton
    from .fisher import crb_covariance, null_space_dimension

    prob = redcal_problem(data, red, layout, noise=noise, weights=weights)
    g0, u0 = logcal(data, red, layout, weights=prob.weights)
    options.setdefault("maxiter", 30)
    res = gauss_newton(prob.posterior, prob.pack(g0, u0), **options)
    g, u = prob.unpack(res.x)
    g, u, degen = fix_degeneracies(g, u, red, layout, reference)
    theta = prob.pack(g, u)
    null, errs = None, None
    if fisher and prob.params.size <= max_params:
        F = to_numpy(fisher_matrix(prob.posterior, theta, include_prior=False))
        null = int(null_space_dimension(F, rcond))
        var = np.diag(crb_covariance(F, rcond))
        ng2 = 2 * int(np.prod(prob.params.blocks[0].shape))
        errs = np.sqrt(var[:ng2:2] + var[1:ng2:2]).reshape(prob.params.blocks[0].shape)
    chi2 = float(prob.posterior.likelihood.chi2(res.x))
    ndata = int(prob.posterior.likelihood.ndata)
    dof = ndata - (prob.params.size - prob.gauge_dim)
    return RedcalSolution(g, u, degen, errs, null, prob.gauge_dim, chi2, dof, res.x, res,
                          prob)
