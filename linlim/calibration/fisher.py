"""Fisher matrices and Cramér-Rao bounds for gain solutions; degeneracy detection.

Noise convention (DESIGN.md): ``E|n|^2 = sigma^2`` per complex sample, ``w = 1/sigma^2``,
``log L = -sum w |d - m(theta)|^2``, so over real parameters::

    F = 2 Re(J^H W J),        Cov(theta_hat) >= F^+   (in the minimum-norm gauge).

Complex parameters are split into interleaved ``(Re, Im)`` pairs (as :class:`linlim.Params`
stores them): a complex array of ``n`` entries gives a ``2n x 2n`` real Fisher matrix.

Gauge: the Fisher matrix of antenna gains is singular along the gauge direction ``i g`` (one
per cell, cluster and feed). ``F^+`` (the pseudo-inverse) is the bound on the error component
orthogonal to the null space, which is what :func:`~linlim.calibration.gauge.align_phase`
leaves to first order. :func:`gauge_covariance` gives the bound in another gauge (e.g.
reference antenna) by the oblique projection ``P F^+ P^T``, ``P = I - u c^T / (c^T u)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import asarray, to_numpy, xp_of
from ..errors import InputError
from ..inference.fisher import operator_fisher as _operator_fisher
from ..operators.base import Operator

__all__ = [
    "operator_fisher",
    "di_fisher",
    "crb_covariance",
    "antenna_variance",
    "gauge_covariance",
    "null_space_dimension",
    "DegenerateCalibrationError",
]


class DegenerateCalibrationError(InputError):
    """A calibration problem with more unconstrained directions than its gauge.

    Raised, never silently answered, e.g. for direction-dependent gains of point-source
    clusters solved on one time and one channel (any unitary mix of the clusters' rank-one
    terms fits the data equally well).
    """


def operator_fisher(op: Operator, x: Any, weights: Any) -> np.ndarray:
    """Dense Fisher matrix ``F = 2 Re(J^H W J)`` of ``op`` at ``x`` by Jacobian columns.

    One ``jvp`` per real parameter (two per complex entry; applied in batches where the
    linearised operator supports it): for small problems and for checking structured
    Fisher matrices. A host copy of :func:`linlim.inference.fisher.operator_fisher`, the
    package's one Fisher builder.

    Parameters
    ----------
    op : Operator
        Single-array input (real or complex) to single-array complex or real output.
    x : array
        Linearisation point.
    weights : array, broadcastable to ``op.out_shape``
        ``1/sigma^2`` per output sample (0 for flags).

    Returns
    -------
    numpy.ndarray, float64, shape (P, P)
        ``P = x.size`` (real x) or ``2 x.size`` (complex x, interleaved Re, Im).
    """
    return to_numpy(_operator_fisher(op, x, weights))


def di_fisher(gains: Any, model: Any, weights: Any, ant1: Any, ant2: Any,
              time_index: Any, freq_index: Any) -> Any:
    """Per-cell Fisher matrices of DI complex gains, assembled baseline by baseline.

    Parameters
    ----------
    gains : complex array, shape (Nant, Ntimes_sol, Nfreqs_sol)
    model : complex array, shape (Ntimes, Nfreqs, Nbl)
    weights : float array, shape (Ntimes, Nfreqs, Nbl)
        ``1/sigma^2``, zero for flags.
    ant1, ant2 : int arrays, shape (Nbl,)
    time_index, freq_index : int arrays
        Cell of each time and channel.

    Returns
    -------
    array, float64, shape (Ntimes_sol, Nfreqs_sol, 2 Nant, 2 Nant)
        Interleaved (Re g_a, Im g_a) order.

    Notes
    -----
    For ``m = g_p conj(g_q) M`` the real-parameter derivatives are ``alpha = conj(g_q) M``
    (Re g_p), ``i alpha`` (Im g_p), ``beta = g_p M`` (Re g_q), ``-i beta`` (Im g_q). With
    ``F_kl = 2 sum w Re(conj(d_k) d_l)`` and ``c = w conj(alpha) beta`` a baseline adds
    ``2 w |alpha|^2`` to (Re p, Re p) and (Im p, Im p), ``2 w |beta|^2`` to the q diagonal,
    and ``2 Re c``, ``2 Im c``, ``2 Im c``, ``-2 Re c`` to (Re p, Re q), (Re p, Im q),
    (Im p, Re q), (Im p, Im q) (and their transposes). Autos (p = q) are included as the
    full non-holomorphic derivative ``d |g_p|^2``.
    """
    from .stefcal import _cell_sum

    xp = xp_of(gains)
    nant, nts, nfs = gains.shape
    tidx = np.asarray(time_index)
    fidx = np.asarray(freq_index)
    a1 = np.asarray(ant1)
    a2 = np.asarray(ant2)
    G = xp.moveaxis(gains, 0, -1)[tidx][:, fidx]        # (Nt, Nf, Nant)
    alpha = G[..., a2].conj() * model
    beta = G[..., a1] * model
    w = weights
    s_aa = _cell_sum(w * xp.abs(alpha) ** 2, tidx, fidx, xp)   # (nts, nfs, Nbl)
    s_bb = _cell_sum(w * xp.abs(beta) ** 2, tidx, fidx, xp)
    c = _cell_sum(w * alpha.conj() * beta, tidx, fidx, xp)
    F = xp.zeros((nts, nfs, 2 * nant, 2 * nant), dtype=np.float64)
    rp, ip, rq, iq = 2 * a1, 2 * a1 + 1, 2 * a2, 2 * a2 + 1

    def add(i: np.ndarray, j: np.ndarray, v: Any) -> None:
        # scatter-add over baselines (repeated (i, j) pairs sum)
        flat = F.reshape(nts, nfs, -1)
        idx = asarray(i * 2 * nant + j, xp)
        for b in range(idx.shape[0]):
            flat[:, :, int(idx[b])] += v[..., b]

    add(rp, rp, 2 * s_aa)
    add(ip, ip, 2 * s_aa)
    add(rq, rq, 2 * s_bb)
    add(iq, iq, 2 * s_bb)
    for i, j, v in ((rp, rq, 2 * c.real), (rp, iq, 2 * c.imag), (ip, rq, 2 * c.imag),
                    (ip, iq, -2 * c.real)):
        add(i, j, v)
        add(j, i, v)
    return F


def crb_covariance(F: Any, rcond: float = 1e-10) -> Any:
    """Cramér-Rao covariance ``F^+`` (pseudo-inverse over the last two axes).

    Eigenvalues below ``rcond * max`` are treated as the gauge null space.
    """
    xp = xp_of(F)
    lam, U = xp.linalg.eigh(F)
    cut = rcond * lam.max(axis=-1, keepdims=True)
    inv = xp.where(lam > cut, 1.0 / xp.where(lam > cut, lam, 1.0), 0.0)
    return (U * inv[..., None, :]) @ xp.swapaxes(U, -1, -2)


def antenna_variance(cov: Any) -> Any:
    """Per-antenna ``E|dg_a|^2 = Var(Re g_a) + Var(Im g_a)`` from an interleaved covariance.

    Returns an array of shape ``cov.shape[:-2] + (Nant,)``.
    """
    d = cov.diagonal(axis1=-2, axis2=-1)
    return d[..., 0::2] + d[..., 1::2]


def gauge_covariance(F: Any, null: Any, constraint: Any, rcond: float = 1e-10) -> Any:
    """Bound in the gauge ``constraint . delta = 0``: ``P F^+ P^T``, ``P = I - u c^T/(c^T u)``.

    Parameters
    ----------
    F : array, shape (..., P, P)
    null : array, shape (..., P)
        The gauge direction ``u`` (e.g. interleaved ``i g``: ``(-Im g, Re g)``).
    constraint : array, shape (..., P)
        The linearised gauge condition ``c`` (e.g. ``e_{Im g_ref}`` for a real reference).
    """
    xp = xp_of(F)
    C = crb_covariance(F, rcond)
    cu = (constraint * null).sum(axis=-1)[..., None, None]
    P = xp.eye(F.shape[-1]) - null[..., :, None] * constraint[..., None, :] / cu
    return P @ C @ xp.swapaxes(P, -1, -2)


def null_space_dimension(F: Any, rcond: float = 1e-9) -> Any:
    """Number of eigenvalues of ``F`` (last two axes) below ``rcond * max``."""
    lam = np.linalg.eigvalsh(to_numpy(F))
    return (lam <= rcond * lam.max(axis=-1, keepdims=True)).sum(axis=-1)
