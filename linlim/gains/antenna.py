"""Antenna-gain operators: direction-independent (DI), per feed, and per source cluster (DD).

One physics kernel, :class:`GainProduct`, applies ``g_a conj(g_b)`` to rows of visibilities;
everything else (solution intervals, feeds, clusters) is composed from the generic blocks of
:mod:`linlim.operators` (``Take`` expands solution cells, ``Transpose``/``Reshape`` move
axes, ``SumAxis`` sums clusters), so the chain rule is never re-written here.

Conventions
-----------
* Baselines are antenna-index pairs ``(ant1[b], ant2[b])`` in pyuvdata order, indices into
  the gain array's antenna axis (``0 .. Nant-1``, not antenna numbers).
* Visibility layout ``(Ntimes, Nfreqs, Nbls)``; with two feeds ``(Npols, Ntimes, Nfreqs,
  Nbls)``; with clusters the model has ``(Nclusters, [Npols,] Ntimes, Nfreqs, Nbls)``.
* Gains ``(Nant, Ntimes_sol, Nfreqs_sol)``; with feeds ``(Nfeeds, Nant, ...)``; with clusters
  ``(Nclusters, [Nfeeds,] Nant, ...)``.
* ``V_cal[p, b] = g[feed1(p), ant1[b]] conj(g[feed2(p), ant2[b]]) V[p, b]`` (diagonal Jones),
  which is pyuvdata's ``gain_convention="divide"`` (raw = g_i conj(g_j) V_true).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import asarray, get_xp
from ..errors import InputError, ShapeError
from ..operators.base import Operator
from ..operators.composite import BlockDiag, FixInput
from ..operators.linear import Identity, Reshape, SumAxis, Take, Transpose

__all__ = [
    "GainProduct",
    "solution_index",
    "di_gains",
    "dd_gains",
    "POL_FEEDS",
]

#: feed index pairs ``(feed of ant1, feed of ant2)`` for the pyuvdata linear polarisations
#: xx (-5), yy (-6), xy (-7), yx (-8), with feed 0 = x, feed 1 = y.
POL_FEEDS = {-5: (0, 0), -6: (1, 1), -7: (0, 1), -8: (1, 0)}


def _sparse_module(xp: Any) -> Any:
    if xp is np:
        import scipy.sparse as sp
    else:  # pragma: no cover - GPU only
        import cupyx.scipy.sparse as sp
    return sp


class GainProduct(Operator):
    """Per-row antenna-gain product ``y[t, f, m] = G[t, f, r1[m]] conj(G[t, f, r2[m]]) V[t, f, m]``.

    The kernel behind every gain operator in :mod:`linlim.gains`. Rows ``m`` are
    (baseline, polarisation, cluster) combinations flattened by the caller; ``r1, r2`` index
    the flattened (cluster, feed, antenna) gain axis. Use :func:`di_gains` or :func:`dd_gains`
    for the natural shapes.

    Parameters
    ----------
    rows1, rows2 : array of int, shape (M,)
        Gain row of the first and second antenna of each visibility row.
    ngains : int
        K, the number of gain rows.
    ntimes, nfreqs : int
        Time and frequency axes (full resolution).
    model : array, shape (ntimes, nfreqs, M), complex, optional
        Fixed model visibilities: then the result is
        ``FixInput(GainProduct(...), 1, model)`` (:class:`~linlim.operators.FixInput`),
        whose input is the gains alone; otherwise the input is the pair ``(G, V)``.
    dtype : dtype
        complex128 (default) or complex64.

    Notes
    -----
    With ``a = G[..., r1]``, ``b = G[..., r2]`` and ``y = a conj(b) V``::

        dy = da conj(b) V + a conj(db) V + a conj(b) dV                       (jvp)

    Under ``<x, y> = Re sum conj(x) y``:
    ``Re conj(da conj(b) V) w = Re conj(da) [b conj(V) w]`` and
    ``Re conj(a conj(db) V) w = Re db [conj(a) conj(V) w] = Re conj(db) [a V conj(w)]``, so::

        dG[..., k] = sum_{m: r1[m]=k} b conj(V) w  +  sum_{m: r2[m]=k} a V conj(w)
        dV         = conj(a) b w                                              (vjp)

    The scatter over rows is a sparse incidence product (scipy/cupyx sparse), K x M.

    Examples
    --------
    >>> import numpy as np
    >>> op = GainProduct([0], [1], 2, 1, 1, model=np.ones((1, 1, 1), complex))
    >>> op(np.array([[[2.0, 1j]]]))
    array([[[0.-2.j]]])
    """

    _abstract = False

    def __new__(cls, rows1: Sequence[int], rows2: Sequence[int], ngains: int,
                ntimes: int, nfreqs: int, model: Any = None, dtype: Any = np.complex128,
                xp: Any = None) -> Operator:
        if model is None:
            return super().__new__(cls)
        # a fixed model is the generic "fix an input" composite, not a branch in here
        full = cls(rows1, rows2, ngains, ntimes, nfreqs, dtype=dtype, xp=xp)
        model = asarray(model, full.xp, dtype=full.out_dtype)
        if tuple(model.shape) != full.out_shape:
            raise ShapeError(f"GainProduct: model must have shape {full.out_shape}, received "
                             f"{tuple(model.shape)}")
        return FixInput(full, 1, model, name="model")

    def __init__(self, rows1: Sequence[int], rows2: Sequence[int], ngains: int,
                 ntimes: int, nfreqs: int, model: Any = None, dtype: Any = np.complex128,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        r1 = np.asarray(rows1, dtype=np.int64).ravel()
        r2 = np.asarray(rows2, dtype=np.int64).ravel()
        if r1.shape != r2.shape:
            raise ShapeError(f"GainProduct: rows1 {r1.shape} and rows2 {r2.shape} differ")
        for name, r in (("rows1", r1), ("rows2", r2)):
            if r.size and (r.min() < 0 or r.max() >= ngains):
                raise InputError(
                    f"GainProduct: {name} must lie in [0, {ngains}), received "
                    f"{r.min()}..{r.max()}"
                )
        dtype = np.dtype(dtype)
        if dtype.kind != "c":
            raise InputError(f"GainProduct: dtype must be complex, received {dtype}")
        gshape = (int(ntimes), int(nfreqs), int(ngains))
        vshape = (int(ntimes), int(nfreqs), r1.size)
        super().__init__((gshape, vshape), vshape, (dtype, dtype), dtype, xp,
                         name="GainProduct")
        self.ngains = int(ngains)
        self.r1, self.r2 = asarray(r1, xp), asarray(r2, xp)
        sp = _sparse_module(xp)
        ones = xp.ones(r1.size, dtype=dtype)
        cols = xp.arange(r1.size)
        # incidence matrices P[k, m] = 1 if r[m] == k (the scatter of the adjoint)
        self._P1 = sp.csr_matrix((ones, (self.r1, cols)), shape=(self.ngains, r1.size))
        self._P2 = sp.csr_matrix((ones, (self.r2, cols)), shape=(self.ngains, r1.size))

    # -- helpers -------------------------------------------------------------------
    def _scatter(self, P: Any, z: Any) -> Any:
        """``out[t, f, k] = sum_m P[k, m] z[t, f, m]``."""
        nt, nf, m = z.shape
        out = P @ z.reshape(nt * nf, m).T
        return self.xp.ascontiguousarray(out.T).reshape(nt, nf, self.ngains)

    # -- forward / jvp / vjp, adjacent ---------------------------------------------
    def _forward(self, x: Any) -> Any:
        G, V = x
        return G[..., self.r1] * G[..., self.r2].conj() * V

    def _jvp(self, x: Any, dx: Any) -> Any:
        (G, V), (dG, dV) = x, dx
        a, b = G[..., self.r1], G[..., self.r2]
        return (dG[..., self.r1] * b.conj() + a * dG[..., self.r2].conj()) * V + a * b.conj() * dV

    def _vjp(self, x: Any, w: Any) -> Any:
        G, V = x
        a, b = G[..., self.r1], G[..., self.r2]
        dG = self._scatter(self._P1, b * V.conj() * w)          # rows1: b conj(V) w
        dG = dG + self._scatter(self._P2, a * V * w.conj())     # rows2: a V conj(w)
        return dG, a.conj() * b * w                              # dV = conj(a) b w


def solution_index(n: int, interval: Any, axis_name: str = "time") -> np.ndarray:
    """Map each of ``n`` samples to its solution cell.

    Parameters
    ----------
    n : int
        Number of samples (times or channels).
    interval : int or array of int, shape (n,)
        Samples per solution cell (consecutive, the last cell may be shorter), or an
        explicit cell index per sample (values 0..Ncells-1, every cell used).

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
    """
    if np.isscalar(interval):
        k = int(interval)
        if k < 1:
            raise InputError(f"{axis_name}_interval must be >= 1, received {interval}")
        return np.arange(n, dtype=np.int64) // k
    idx = np.asarray(interval, dtype=np.int64)
    if idx.shape != (n,):
        raise ShapeError(
            f"{axis_name}_interval as an index map must have shape ({n},), received "
            f"{idx.shape}"
        )
    if idx.min() < 0 or set(np.unique(idx).tolist()) != set(range(int(idx.max()) + 1)):
        raise InputError(
            f"{axis_name}_interval index map must use every cell 0..Ncells-1, received "
            f"values {np.unique(idx)}"
        )
    return idx


def _expand_cells(lead: int, tidx: np.ndarray, fidx: np.ndarray, dtype: Any,
                  xp: Any) -> Operator:
    """(K, Nt_sol, Nf_sol) cells -> (Nt, Nf, K) full resolution (Take, Take, Transpose)."""
    ntsol, nfsol = int(tidx.max()) + 1, int(fidx.max()) + 1
    op: Operator = Identity((lead, ntsol, nfsol), dtype, xp=xp)
    if not np.array_equal(tidx, np.arange(ntsol)):
        op = Take(op.out_shape, tidx, axis=1, dtype=dtype, xp=xp) @ op
    if not np.array_equal(fidx, np.arange(nfsol)):
        op = Take(op.out_shape, fidx, axis=2, dtype=dtype, xp=xp) @ op
    return Transpose(op.out_shape, (1, 2, 0), dtype, xp=xp) @ op


def _rows(ant1: np.ndarray, ant2: np.ndarray, nants: int, pol_feeds: Any,
          nclusters: int | None, nfeeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain rows for visibility rows ordered (cluster, pol, baseline)."""
    pf = [(0, 0)] if pol_feeds is None else list(pol_feeds)
    r1, r2 = [], []
    for c in range(1 if nclusters is None else nclusters):
        for f1, f2 in pf:
            r1.append((c * nfeeds + f1) * nants + ant1)
            r2.append((c * nfeeds + f2) * nants + ant2)
    return np.concatenate(r1), np.concatenate(r2)


def _check_baselines(ant1: Any, ant2: Any, nants: int) -> tuple[np.ndarray, np.ndarray]:
    a1 = np.asarray(ant1, dtype=np.int64).ravel()
    a2 = np.asarray(ant2, dtype=np.int64).ravel()
    if a1.shape != a2.shape:
        raise ShapeError(f"ant1 {a1.shape} and ant2 {a2.shape} must have the same shape")
    for name, a in (("ant1", a1), ("ant2", a2)):
        if a.size and (a.min() < 0 or a.max() >= nants):
            raise InputError(
                f"{name} must hold antenna indices in [0, {nants}) (indices into the gain "
                f"array, not antenna numbers), received {a.min()}..{a.max()}"
            )
    return a1, a2


def _resolve_pols(pols: Any) -> tuple[list | None, int]:
    if pols is None:
        return None, 1
    pf = []
    for p in pols:
        if isinstance(p, (tuple, list)):
            pf.append((int(p[0]), int(p[1])))
        elif int(p) in POL_FEEDS:
            pf.append(POL_FEEDS[int(p)])
        else:
            raise InputError(
                f"pols: expected pyuvdata linear polarisation numbers {sorted(POL_FEEDS)} or "
                f"(feed1, feed2) pairs, received {p!r}"
            )
    return pf, 1 + max(max(a, b) for a, b in pf)


def _gain_operator(ant1: Any, ant2: Any, nants: int, ntimes: int, nfreqs: int, *,
                   nclusters: int | None, time_interval: Any, freq_interval: Any,
                   pols: Any, model: Any, dtype: Any, xp: Any) -> Operator:
    xp = get_xp() if xp is None else xp
    dtype = np.dtype(dtype)
    a1, a2 = _check_baselines(ant1, ant2, nants)
    nbl = a1.size
    pf, nfeeds = _resolve_pols(pols)
    npol = 1 if pf is None else len(pf)
    ncl = 1 if nclusters is None else int(nclusters)
    tidx = solution_index(ntimes, time_interval, "time")
    fidx = solution_index(nfreqs, freq_interval, "freq")
    ntsol, nfsol = int(tidx.max()) + 1, int(fidx.max()) + 1
    K, C = ncl * nfeeds * nants, ncl * npol
    lead_g = (() if nclusters is None else (ncl,)) + (() if pf is None else (nfeeds,))
    lead_v = (() if nclusters is None else (ncl,)) + (() if pf is None else (npol,))
    gshape = lead_g + (nants, ntsol, nfsol)
    vshape = lead_v + (ntimes, nfreqs, nbl)
    r1, r2 = _rows(a1, a2, nants, pf, nclusters, nfeeds)

    # gains: natural shape -> (K, Nt_sol, Nf_sol) -> (Nt, Nf, K)
    g_in = _expand_cells(K, tidx, fidx, dtype, xp) @ Reshape(gshape, (K, ntsol, nfsol),
                                                            dtype, xp=xp)

    # visibilities: natural shape -> (Nt, Nf, C * Nbl)
    def vis_in() -> Operator:
        if C == 1:
            return Reshape(vshape, (ntimes, nfreqs, nbl), dtype, xp=xp)
        flat = Reshape(vshape, (C, ntimes, nfreqs, nbl), dtype, xp=xp)
        tr = Transpose(flat.out_shape, (1, 2, 0, 3), dtype, xp=xp)
        return Reshape(tr.out_shape, (ntimes, nfreqs, C * nbl), dtype, xp=xp) @ tr @ flat

    v_op = vis_in()
    if model is not None:
        model = asarray(model, xp, dtype=dtype)
        if tuple(model.shape) != vshape:
            raise ShapeError(f"model must have shape {vshape}, received {tuple(model.shape)}")
        core = FixInput(GainProduct(r1, r2, K, ntimes, nfreqs, dtype=dtype, xp=xp), 1,
                        v_op.forward(model), name="model")
        op = core @ g_in
    else:
        core = GainProduct(r1, r2, K, ntimes, nfreqs, dtype=dtype, xp=xp)
        op = core @ BlockDiag([g_in, v_op])

    # output: (Nt, Nf, C * Nbl) -> (ncl, npol, Nt, Nf, Nbl) -> sum clusters
    final = ((npol,) if pf is not None else ()) + (ntimes, nfreqs, nbl)
    if C == 1:
        if final != core.out_shape:
            op = Reshape(core.out_shape, final, dtype, xp=xp) @ op
    else:
        sp = Reshape(core.out_shape, (ntimes, nfreqs, C, nbl), dtype, xp=xp)
        out = Transpose(sp.out_shape, (2, 0, 1, 3), dtype, xp=xp) @ sp
        out = Reshape(out.out_shape, (ncl, npol, ntimes, nfreqs, nbl), dtype, xp=xp) @ out
        out = SumAxis(out.out_shape, 0, dtype, xp=xp) @ out
        if pf is None:
            out = Reshape(out.out_shape, final, dtype, xp=xp) @ out
        op = out @ op
    op.name = ("DDGains" if nclusters is not None else "DIGains") + (
        f"[{ncl}x{nfeeds}x{nants} ants, cells {ntsol}x{nfsol}]")
    op.gain_shape, op.vis_shape = gshape, vshape
    op.time_index, op.freq_index = tidx, fidx
    op.ant1, op.ant2 = a1, a2
    return op


def di_gains(ant1: Any, ant2: Any, nants: int, ntimes: int, nfreqs: int, *,
             time_interval: Any = 1, freq_interval: Any = 1, pols: Any = None,
             model: Any = None, dtype: Any = np.complex128, xp: Any = None) -> Operator:
    """Direction-independent gain operator ``V_ij -> g_i conj(g_j) V_ij`` (composed).

    Parameters
    ----------
    ant1, ant2 : array of int, shape (Nbl,)
        Antenna indices (0..nants-1) of each baseline, pyuvdata order.
    nants, ntimes, nfreqs : int
        Number of antennas, times and channels of the visibilities.
    time_interval, freq_interval : int or array of int
        Samples per solution cell, or an explicit cell index per sample
        (:func:`solution_index`).
    pols : sequence, optional
        Two-feed (diagonal Jones) mode: pyuvdata polarisation numbers (-5 xx, -6 yy,
        -7 xy, -8 yx) or ``(feed1, feed2)`` pairs, one per visibility polarisation.
    model : array, optional
        Fixed model visibilities; the operator then takes the gains only.
    dtype : complex dtype

    Returns
    -------
    Operator
        Input gains ``([Nfeeds,] Nant, Ntimes_sol, Nfreqs_sol)`` complex (and, without a
        fixed model, the model ``([Npols,] Ntimes, Nfreqs, Nbl)`` as a second part);
        output ``([Npols,] Ntimes, Nfreqs, Nbl)``. Attributes ``gain_shape``,
        ``vis_shape``, ``time_index``, ``freq_index``, ``ant1``, ``ant2``.

    Examples
    --------
    >>> import numpy as np
    >>> op = di_gains([0, 0, 1], [1, 2, 2], 3, ntimes=2, nfreqs=4, freq_interval=2)
    >>> op.in_shape
    ((3, 2, 2), (2, 4, 3))
    """
    return _gain_operator(ant1, ant2, nants, ntimes, nfreqs, nclusters=None,
                          time_interval=time_interval, freq_interval=freq_interval,
                          pols=pols, model=model, dtype=dtype, xp=xp)


def dd_gains(ant1: Any, ant2: Any, nants: int, ntimes: int, nfreqs: int, nclusters: int, *,
             time_interval: Any = 1, freq_interval: Any = 1, pols: Any = None,
             model: Any = None, dtype: Any = np.complex128, xp: Any = None) -> Operator:
    """Direction-dependent gains: ``V_ij = sum_c g_ci conj(g_cj) V_c,ij`` (composed).

    Each cluster's model visibilities are corrupted by that cluster's gains, then the
    clusters are summed (``SumAxis`` after the shared :class:`GainProduct` kernel).

    Parameters
    ----------
    ant1, ant2, nants, ntimes, nfreqs, time_interval, freq_interval, pols, dtype
        As in :func:`di_gains`.
    nclusters : int
        Number of source clusters.
    model : array, shape (Nclusters, [Npols,] Ntimes, Nfreqs, Nbl), optional
        Fixed per-cluster model visibilities (else a second input part).

    Returns
    -------
    Operator
        Input gains ``(Nclusters, [Nfeeds,] Nant, Ntimes_sol, Nfreqs_sol)``; output
        ``([Npols,] Ntimes, Nfreqs, Nbl)``.
    """
    if int(nclusters) < 1:
        raise InputError(f"dd_gains: nclusters must be >= 1, received {nclusters}")
    return _gain_operator(ant1, ant2, nants, ntimes, nfreqs, nclusters=int(nclusters),
                          time_interval=time_interval, freq_interval=freq_interval,
                          pols=pols, model=model, dtype=dtype, xp=xp)
