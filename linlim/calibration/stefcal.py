"""StEFCal: Statistically Efficient and Fast Calibration (Salvini & Wijnholds 2014).

Direction-independent complex gains per antenna and solution cell, by the alternating
(Jacobi) least-squares sweep with averaging of every second iterate, with per-sample weights,
flags, solution intervals and an explicit gauge.

Notes
-----
Model ``R_pq = g_p conj(g_q) M_pq`` (``R`` the data, ``M`` the model, Hermitian in (p, q)).
Holding all gains but ``g_p`` fixed, the weighted least-squares update over every ordered
pair (p, q), q != p, and every sample s in the cell is::

    g_p <- sum_{s,q} w conj(M_pq) g_q R_pq / sum_{s,q} w |M_pq|^2 |g_q|^2
         = (A g)_p / (B |g|^2)_p,    A = sum_s w conj(M) R,   B = sum_s w |M|^2,

so the per-cell matrices ``A`` and ``B`` are summed over the cell's samples once and every
iteration is a batched matrix-vector product (O(Ncells Nant^2)). The sweep updates all
antennas from the previous iterate (Jacobi). On even iterations the relative change
``||g_i - g_{i-1}|| / ||g_i||`` is tested against ``tol`` and, if not converged, the iterate is
replaced by ``(g_i + g_{i-1}) / 2`` (the paper's Algorithm 1); this averaging removes the
oscillation of the plain Jacobi sweep.

The fixed point is a stationary point of ``sum_{p<q} w |R_pq - g_p conj(g_q) M_pq|^2``, the
Gaussian log-likelihood of the cross-correlations, so StEFCal and Gauss-Newton agree at
convergence. Auto-correlations are excluded (their term is quadratic in ``|g_p|`` and the
sweep would not be the ML update for them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import asarray, to_numpy, xp_of
from ..errors import InputError, ShapeError
from ..validation import check_finite_data, check_not_all_flagged
from .fisher import DegenerateCalibrationError
from .gains import solution_index
from .gauge import apply_gauge
from .weights import clean_data, make_weights

__all__ = ["StefcalResult", "stefcal", "cell_matrices", "check_stefcal_geometry"]


@dataclass
class StefcalResult:
    """Outcome of :func:`stefcal`.

    Attributes
    ----------
    gains : array, complex, shape (Nant, Ntimes_sol, Nfreqs_sol)
        Solutions in the requested gauge (pyuvdata "divide" convention).
    flags : array of bool, same shape
        True where an antenna had no unflagged data in a cell (gain set to 1).
    iterations : array of int, shape (Ntimes_sol, Nfreqs_sol)
        Iterations used per cell.
    converged : array of bool, shape (Ntimes_sol, Nfreqs_sol)
    gauge : str
        The gauge applied (e.g. "reference antenna 0: real positive").
    time_index, freq_index : numpy arrays of int
        Cell of each time and channel.
    """

    gains: Any
    flags: Any
    iterations: Any
    converged: Any
    gauge: str
    time_index: np.ndarray
    freq_index: np.ndarray
    history: list = field(default_factory=list)

    def __str__(self) -> str:
        it = np.asarray(self.iterations)
        return (f"StefcalResult: {self.gains.shape[0]} antennas, {it.size} cells, "
                f"iterations min/median/max {it.min()}/{int(np.median(it))}/{it.max()}, "
                f"{int(np.asarray(self.converged).sum())}/{it.size} converged; gauge: "
                f"{self.gauge}")


def _cell_sum(x: Any, tidx: np.ndarray, fidx: np.ndarray, xp: Any) -> Any:
    """Sum a (Nt, Nf, ...) array into (Nt_sol, Nf_sol, ...) cells."""
    nts, nfs = int(tidx.max()) + 1, int(fidx.max()) + 1
    if nts == x.shape[0] and nfs == x.shape[1] and np.array_equal(tidx, np.arange(nts)) \
            and np.array_equal(fidx, np.arange(nfs)):
        return x
    out = xp.zeros((nts,) + x.shape[1:], dtype=x.dtype)
    for t in range(x.shape[0]):  # time loop: cells are contiguous blocks in practice
        out[tidx[t]] += x[t]
    out2 = xp.zeros((nts, nfs) + x.shape[2:], dtype=x.dtype)
    for f in range(x.shape[1]):
        out2[:, fidx[f]] += out[:, f]
    return out2


def cell_matrices(data: Any, model: Any, w: Any, ant1: Any, ant2: Any, nants: int,
                  tidx: np.ndarray, fidx: np.ndarray) -> tuple[Any, Any]:
    """Per-cell StEFCal matrices ``A = sum_s w conj(M) R`` and ``B = sum_s w |M|^2``.

    Parameters
    ----------
    data, model : array, complex, shape (Ntimes, Nfreqs, Nbl)
    w : array, float, shape (Ntimes, Nfreqs, Nbl)
        Weights (zero for flags and autos).
    ant1, ant2 : array of int, shape (Nbl,)
    nants : int
    tidx, fidx : array of int
        Cell index of each time and channel.

    Returns
    -------
    A : complex array, shape (Nt_sol, Nf_sol, Nant, Nant), Hermitian in the last two axes
    B : float array, same shape, symmetric
    """
    xp = xp_of(data)
    a1 = np.asarray(ant1)
    a2 = np.asarray(ant2)
    cross = a1 != a2
    ab = w * model.conj() * data          # (Nt, Nf, Nbl): entry (p, q) = (ant1, ant2)
    bb = w * (model.real**2 + model.imag**2)
    nt, nf = data.shape[:2]
    A = xp.zeros((nt, nf, nants, nants), dtype=data.dtype)
    B = xp.zeros((nt, nf, nants, nants), dtype=np.float64)
    i1, i2 = asarray(a1[cross], xp), asarray(a2[cross], xp)
    c = asarray(np.nonzero(cross)[0], xp)
    # (p, q) = (ant1, ant2) holds conj(M) R; (q, p) holds its conjugate (R_qp = conj R_pq)
    A[:, :, i1, i2] = ab[:, :, c]
    A[:, :, i2, i1] = ab[:, :, c].conj()
    B[:, :, i1, i2] = bb[:, :, c]
    B[:, :, i2, i1] = bb[:, :, c]
    if len(set(zip(a1[cross].tolist(), a2[cross].tolist()))) != int(cross.sum()) or bool(
            np.any(np.isin(a1[cross] * nants + a2[cross], a2[cross] * nants + a1[cross]))):
        raise InputError("stefcal: each antenna pair must appear once (no duplicate or "
                         "reversed baselines)")
    return _cell_sum(A, tidx, fidx, xp), _cell_sum(B, tidx, fidx, xp)


def _check_nants(nants: Any, ant1: Any, ant2: Any) -> int:
    if isinstance(nants, (bool, np.bool_)) or not isinstance(nants, (int, np.integer)) \
            or nants < 1:
        raise InputError(f"stefcal: nants: expected a positive integer, received {nants!r}")
    for name, a in (("ant1", ant1), ("ant2", ant2)):
        arr = np.asarray(a)
        if arr.dtype.kind not in "iu":
            raise InputError(f"stefcal: {name}: expected integer antenna indices, received "
                             f"dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= nants):
            raise InputError(f"stefcal: {name}: expected antenna indices in [0, {nants}), "
                             f"received values in [{arr.min()}, {arr.max()}]")
    return int(nants)


def check_stefcal_geometry(B: Any, raise_error: bool = True) -> np.ndarray:
    """Find (and by default refuse) solution cells whose baselines cannot fix the gains
    beyond the phase gauge.

    Parameters
    ----------
    B : array, shape (Nt_sol, Nf_sol, Nant, Nant)
        ``sum w |M|^2`` per cell and antenna pair (:func:`cell_matrices`); an edge
        ``p - q`` is constrained where ``B[p, q] > 0``.
    raise_error : bool
        Raise on the first degenerate cell (default); otherwise return them all.

    Returns
    -------
    numpy.ndarray of bool, shape (Nt_sol, Nf_sol)
        True for degenerate cells (all False when ``raise_error`` returns).

    Raises
    ------
    DegenerateCalibrationError
        Naming the first degenerate cell and why.

    Notes
    -----
    In log-gains the data fix ``log|g_p| + log|g_q|`` and ``phi_p - phi_q`` on each edge.
    The phases are fixed up to one offset per connected group (the gauge, when there is
    one group); the amplitudes are fixed iff every group contains an odd cycle (a graph
    with no odd cycle is bipartite, and ``c`` on one side, ``1/c`` on the other leaves the
    data unchanged). Both hold iff the bipartite double cover of the graph of antennas
    with data is connected. Cells sharing a flag pattern are checked once.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    Bh = np.asarray(B.get() if hasattr(B, "get") else B)
    nts, nfs, na = Bh.shape[0], Bh.shape[1], Bh.shape[-1]
    adj = (Bh > 0).reshape(nts * nfs, na * na)
    _, first, inverse = np.unique(np.packbits(adj, axis=1), axis=0, return_index=True,
                                  return_inverse=True)
    degenerate = np.zeros(nts * nfs, dtype=bool)
    for u, k in enumerate(first):
        a = adj[k].reshape(na, na)
        active = np.flatnonzero(a.any(axis=1))
        if active.size == 0:
            continue                      # every antenna flagged in this cell: all flagged
        sub = a[np.ix_(active, active)]
        z = np.zeros_like(sub)
        cover = csr_matrix(np.block([[z, sub], [sub, z]]))
        ncov = connected_components(cover, directed=False)[0]
        if ncov == 1:
            continue
        if not raise_error:
            degenerate[np.ravel(inverse) == u] = True
            continue
        ngroups = connected_components(csr_matrix(sub), directed=False)[0]
        t, f = divmod(int(k), nfs)
        why = (f"its {active.size} antennas with data form {ngroups} separate groups"
               if ngroups > 1 else
               f"its {active.size} antennas with data and {int(sub.sum()) // 2} baseline(s) "
               "contain no closed triangle (odd cycle), so an amplitude per side is free")
        raise DegenerateCalibrationError(
            f"stefcal: ant1, ant2 (with the flags): the calibration problem is degenerate in "
            f"solution cell (time {t}, freq {f}): {why}. The data cannot fix these gains; "
            "StEFCal would report convergence to arbitrary ones. Use more baselines (at "
            "least a triangle of antennas), longer solution intervals, flag the isolated "
            "antennas, or pass degenerate='flag' to flag such cells.")
    return degenerate.reshape(nts, nfs)


def stefcal(data: Any, model: Any, ant1: Any, ant2: Any, nants: int, *, noise: Any = None,
            weights: Any = None, flags: Any = None, time_interval: Any = 1,
            freq_interval: Any = 1, gains0: Any = None, gauge: str = "ref_antenna",
            ref_ant: int = 0, tol: float = 1e-10, maxiter: int = 500,
            nonfinite: str = "raise", degenerate: str = "raise") -> StefcalResult:
    """Solve for DI complex gains with StEFCal (module Notes).

    Parameters
    ----------
    data : array, complex128, shape (Ntimes, Nfreqs, Nbl)
        Observed visibilities (Jy), ``data ~ g_i conj(g_j) model``.
    model : array, complex128, shape (Ntimes, Nfreqs, Nbl)
        Model visibilities (Jy).
    ant1, ant2 : array of int, shape (Nbl,)
        Antenna indices in 0..nants-1, each pair once; autos are ignored.
    nants : int
    noise : float or array, optional
        sigma per complex sample (``E|n|^2 = sigma^2``); weights ``1/sigma^2``.
    weights : array, optional
        Explicit weights instead of ``noise``.
    flags : bool array, optional
        Flagged samples get zero weight; their data are never read.
    time_interval, freq_interval : int or array of int
        Solution cells (:func:`~linlim.calibration.gains.solution_index`).
    gains0 : array, shape (Nant, Ntimes_sol, Nfreqs_sol), optional
        Starting gains (default 1).
    gauge : {"ref_antenna", "mean_phase", "none"}
        Phase gauge applied to the solution (:func:`~linlim.calibration.gauge.apply_gauge`).
    ref_ant : int
        Reference antenna index for ``gauge="ref_antenna"``.
    tol : float
        Convergence threshold on the relative change between iterates.
    maxiter : int
    nonfinite : {"raise", "flag"}
        Unflagged NaN/inf in ``data`` or ``model``: refused with their count and first
        indices (default), or flagged with a warning
        (:func:`linlim.validation.check_finite_data`).
    degenerate : {"raise", "flag"}
        Cells whose unflagged baselines cannot determine the gains beyond the phase gauge
        (see Raises): refused (default), or flagged with a warning (every gain of the cell
        flagged, set to 1 and reported ``converged=False``).

    Returns
    -------
    StefcalResult

    Raises
    ------
    InputError
        Unflagged NaN/inf data, or every sample flagged (autos do not count); a model that
        is zero on every unflagged baseline (an antenna whose baselines all have a zero
        model is flagged with a warning); ``tol`` not finite and >= 0, or ``maxiter`` not
        an integer >= 1.
    DegenerateCalibrationError
        In some solution cell the antennas with unflagged cross-correlations do not form
        one connected graph containing an odd cycle (a triangle): a single baseline, a
        chain or any bipartite layout leaves an amplitude ``g_p -> c g_p, g_q -> g_q / c``
        unconstrained, and separate groups leave a phase per group, so StEFCal would report
        convergence to arbitrary gains. :func:`~linlim.calibration.solve_gains` detects the
        same problems through the Fisher matrix.
    """
    try:
        tol_ok = float(tol) >= 0 and np.isfinite(float(tol))
    except (TypeError, ValueError):
        tol_ok = False
    if not tol_ok:
        raise InputError(f"stefcal: tol: expected a finite number >= 0, received {tol!r}")
    if isinstance(maxiter, (bool, np.bool_)) or not isinstance(maxiter, (int, np.integer)) \
            or maxiter < 1:
        raise InputError(f"stefcal: maxiter: expected an integer >= 1, received {maxiter!r}")
    xp = xp_of(data)
    if np.dtype(getattr(data, "dtype", np.asarray(data).dtype)).kind in "biuf" and \
            np.dtype(getattr(model, "dtype", np.asarray(model).dtype)).kind == "c":
        raise InputError("stefcal: data: expected complex visibilities like the model, "
                         f"received real dtype {getattr(data, 'dtype', np.asarray(data).dtype)}"
                         " (amplitudes only? pass the complex data)")
    data = asarray(data, xp, dtype=np.complex128)
    model = asarray(model, xp, dtype=np.complex128)
    if data.ndim != 3 or data.shape != model.shape:
        raise ShapeError(f"stefcal: data and model must both be (Ntimes, Nfreqs, Nbl); "
                         f"received {tuple(data.shape)} and {tuple(model.shape)}")
    nt, nf, nbl = data.shape
    if np.asarray(ant1).shape != (nbl,):
        raise ShapeError(f"stefcal: ant1 must have shape ({nbl},), received "
                         f"{np.asarray(ant1).shape}")
    nants = _check_nants(nants, ant1, ant2)
    w = make_weights(data.shape, noise=noise, weights=weights, flags=flags, ant1=ant1,
                     ant2=ant2, include_autos=False, xp=xp)
    w = check_finite_data(data, w, "data", "stefcal", nonfinite=nonfinite)
    w = check_finite_data(model, w, "model", "stefcal", nonfinite=nonfinite)
    check_not_all_flagged(w, "data", "stefcal (auto-correlations are not used)")
    w = asarray(w, xp)
    data = clean_data(data, w)
    model = clean_data(model, w)
    tidx = solution_index(nt, time_interval, "time")
    fidx = solution_index(nf, freq_interval, "freq")
    A, B = cell_matrices(data, model, w, ant1, ant2, nants, tidx, fidx)
    nts, nfs = A.shape[:2]
    if degenerate not in ("raise", "flag"):
        raise InputError(f"stefcal: degenerate: expected 'raise' or 'flag', received "
                         f"{degenerate!r}")
    # unflagged baselines whose model is zero carry no information on the gains
    Bw = cell_matrices(data, xp.ones_like(model), w, ant1, ant2, nants, tidx, fidx)[1]
    has_w = np.asarray(to_numpy(Bw.sum(axis=-1) > 0))
    has_m = np.asarray(to_numpy(B.sum(axis=-1) > 0))
    if has_w.any() and not has_m.any():
        raise InputError("stefcal: model: expected a non-zero model on the unflagged "
                         "baselines, received a model that is zero on every one of them "
                         "(no information on the gains)")
    if has_w.any() and not bool(to_numpy(xp.any((data != 0) & (w > 0)))):
        raise InputError("stefcal: data: expected non-zero visibilities on the unflagged "
                         "baselines, received data that are zero on every one of them (a "
                         "blank file? the gains would be zero and their phases undefined)")
    zero_model = has_w & ~has_m                      # (nts, nfs, nants)
    if zero_model.any():
        ants = np.flatnonzero(zero_model.any(axis=(0, 1))).tolist()
        warnings.warn(f"stefcal: model is zero on every unflagged baseline of antenna(s) "
                      f"{ants[:10]} in {int(zero_model.any(axis=-1).sum())} solution "
                      "cell(s); their gains are unconstrained and flagged", UserWarning,
                      stacklevel=2)
    degen = check_stefcal_geometry(B, raise_error=degenerate == "raise")
    # antennas with no data in a cell: flagged, gain fixed to 1
    bad = B.sum(axis=-1) <= 0                       # (nts, nfs, nants)
    if degen.any():
        warnings.warn(f"stefcal: {int(degen.sum())} of {degen.size} solution cells are "
                      "degenerate (too few baselines to fix the gains); their gains are "
                      "flagged", UserWarning, stacklevel=2)
        bad = bad | asarray(degen[..., None], xp)
    if gains0 is None:
        g = xp.ones((nts, nfs, nants), dtype=np.complex128)
    else:
        g0 = asarray(gains0, xp, dtype=np.complex128)
        if tuple(g0.shape) != (nants, nts, nfs):
            raise ShapeError(f"stefcal: gains0 must have shape {(nants, nts, nfs)}, received "
                             f"{tuple(g0.shape)}")
        g = xp.moveaxis(g0, 0, -1).copy()
    g = xp.where(bad, 1.0 + 0j, g)
    iters = np.zeros((nts, nfs), dtype=np.int64)
    done = xp.zeros((nts, nfs), dtype=bool)
    for i in range(1, maxiter + 1):
        num = (A @ g[..., None])[..., 0]
        den = (B @ (g.real**2 + g.imag**2)[..., None])[..., 0]
        gnew = xp.where(bad, 1.0 + 0j, num / xp.where(bad, 1.0, den))
        if i % 2 == 0:
            diff = xp.sqrt(((gnew - g).real**2 + (gnew - g).imag**2).sum(axis=-1))
            size = xp.sqrt((gnew.real**2 + gnew.imag**2).sum(axis=-1))
            newly = (diff <= tol * size) & ~done
            gnew = xp.where(newly[..., None], gnew, 0.5 * (gnew + g))
        else:
            newly = xp.zeros_like(done)
        g = xp.where(done[..., None], g, gnew)
        iters[~np.asarray(done.get() if hasattr(done, "get") else done)] = i
        done = done | newly
        if bool(done.all()):
            break
    gains = xp.moveaxis(g, -1, 0)                   # (nants, nts, nfs)
    flags_out = xp.moveaxis(bad, -1, 0)
    gains, desc = apply_gauge(gains, gauge, ref_ant=ref_ant, flags=flags_out)
    conv = (done.get() if hasattr(done, "get") else np.asarray(done)) & ~degen
    return StefcalResult(gains, flags_out, iters, conv, desc, tidx, fidx)

