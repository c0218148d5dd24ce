"""Band powers of the signal from the Laplace posterior of the joint fit.

At the joint MAP, the linearised (Laplace) posterior gives the signal's whitened
coefficients ``z_hat`` and the signal block of the likelihood Fisher matrix with every other
parameter (point sources, diffuse, beam, gains) marginalised:

    G = F_ss - F_sr (F_rr + H_r)^{-1} F_rs          (Schur complement, H_r their prior)

For a Gaussian model this is exact: the data compress to ``b = (I + G) z_hat`` (the MAP
equation with the fiducial prior ``I``), distributed as ``b ~ N(0, G (S + G^{-1}) G)`` with
``S = diag(P_b / P0_b)`` the signal covariance in the fit's whitened units. The band powers
then follow from the quadratic (Bond-Jaffe-Knox) iteration, a Newton-Raphson ascent of
the likelihood of ``P`` that never inverts ``G`` (which is singular: modes outside the beam
are not measured)::

    Q = (S^{-1} + G)^{-1};  y = Q b;  u = S^{-1} y  (= C^{-1} x)
    C^{-1} = S^{-1} - S^{-1} Q S^{-1}
    q_b = 1/2 sum_{i in b} u_i^2 / P0_b,   t_b = 1/2 sum_{i in b} (C^{-1})_ii / P0_b
    F_bb' = 1/2 sum_{i in b, j in b'} (C^{-1})_ij^2 / (P0_b P0_b')
    P <- P + F^{-1} (q - t)

This is :func:`linlim.sky.bandpower.band_power_step_precision` (the library's estimator in
precision form, ``N_c^-1 = G``, ``S_b = diag(1[band == b] / P0_b)``); this module keeps only
the fiducial schedule. ``F`` is the Fisher matrix of the band powers (cosmic variance
included); the errors are ``sqrt(diag F^{-1})``. Estimates may be negative (a signal-free
field gives estimates scattered about zero); the fiducial of the next iteration is floored
at a small positive fraction of ``P0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import to_numpy
from ..errors import InputError, ShapeError
from ..sky.bandpower import BandPowerCovariance, band_power_step_precision
from ..validation import check_finite

__all__ = ["BandPowers", "PriorHessian", "marginal_signal_fisher", "band_powers"]


@dataclass
class BandPowers:
    """Band powers and their Fisher errors (units of ``P0``'s)."""

    estimate: np.ndarray
    sigma: np.ndarray
    fisher: np.ndarray
    covariance: np.ndarray
    iterations: int
    fiducial: np.ndarray


def marginal_signal_fisher(F: np.ndarray, prior: Any, sig: np.ndarray) -> np.ndarray:
    """Signal block of the likelihood Fisher with the other parameters marginalised.

    Parameters
    ----------
    F : ndarray (n, n)
        Data Fisher matrix ``2 Re(J^H W J)``.
    prior : PriorHessian
        Prior precision (``add_to(H, idx)``); the other parameters' priors are what
        marginalises them.
    sig : ndarray of int
        Indices of the signal coefficients.
    """
    rest = np.setdiff1d(np.arange(F.shape[0]), sig)
    Frr = F[np.ix_(rest, rest)].copy()
    prior.add_to(Frr, rest)
    Frs = F[np.ix_(rest, sig)]
    c = sla.cho_factor(Frr)
    G = F[np.ix_(sig, sig)] - Frs.T @ sla.cho_solve(c, Frs)
    return 0.5 * (G + G.T)


class PriorHessian:
    """Hessian of ``-log prior``: a diagonal plus small dense blocks (e.g. gauge-fixed
    gains), from a LogPosterior's priors at ``theta``."""

    def __init__(self, post: Any, theta: np.ndarray, max_dense: int = 512) -> None:
        n = int(theta.size)
        self.diag = np.zeros(n)
        self.blocks: list = []
        for p in post.priors:
            idx = np.arange(n) if p._sel is None else np.arange(n)[p._sel]
            if idx.size <= max_dense:
                B = np.asarray(p._hess_dense(p._select(theta)), float)
                if np.count_nonzero(B - np.diag(np.diag(B))):
                    self.blocks.append((idx, B))
                    continue
                self.diag[idx] += np.diag(B)
            else:
                self.diag += np.asarray(p.hessian_diagonal(theta), float)

    def add_to(self, H: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Add the prior Hessian restricted to ``idx`` (all by default) to ``H`` in place."""
        if idx is None:
            idx = np.arange(self.diag.size)
        H[np.diag_indices_from(H)] += self.diag[idx]
        pos = np.full(self.diag.size, -1)
        pos[idx] = np.arange(idx.size)
        for bidx, B in self.blocks:
            sel = pos[bidx] >= 0
            if sel.any():
                j = pos[bidx][sel]
                H[np.ix_(j, j)] += B[np.ix_(sel, sel)]
        return H


def _whitened_bands(band: np.ndarray, p0: np.ndarray) -> BandPowerCovariance:
    """``S_b = diag(1[band == b] / P0_b)`` as library band blocks. When ``band`` repeats
    with period ``m < Ns`` (the signal fit's ``(pixel, mode)`` order: ``m`` = its modes)
    the coefficients are laid out as ``(Ns / m, m)`` and every block is a scaled identity;
    otherwise as one mode with a diagonal ``(Ns, Ns)`` block per band."""
    n, nb = band.size, p0.size
    nk = 1
    for m in range(1, n):
        if n % m == 0 and np.array_equal(band.reshape(-1, m), np.tile(band[:m], (n // m, 1))):
            nk = m
            break
    if nk > 1 or np.all(band == band[0]):
        onehot = (band[:nk][None, :] == np.arange(nb)[:, None]) / p0[:, None]  # (Nb, Nk)
        blocks = onehot[:, :, None, None] * np.eye(n // nk)[None, None]
    else:
        onehot = (band[None, :] == np.arange(nb)[:, None]) / p0[:, None]       # (Nb, Ns)
        blocks = np.zeros((nb, 1, n, n))
        blocks[:, 0, np.arange(n), np.arange(n)] = onehot
    return BandPowerCovariance.from_blocks(blocks)


def band_powers(G: np.ndarray, z_hat: np.ndarray, band: np.ndarray, p0: np.ndarray, *,
                iterations: int = 8, floor: float = 1e-3, start: np.ndarray | None = None,
                tol: float = 0.02) -> BandPowers:
    """Quadratic-estimator (BJK) band powers from the Laplace-compressed signal.

    The step is :func:`linlim.sky.bandpower.band_power_step_precision` with ``N_c^-1 = G``,
    ``b = (I + G) z_hat`` and ``S_b = diag(1[band == b] / P0_b)`` (whitened units); this
    function sets the fiducial schedule.

    Parameters
    ----------
    G : ndarray (Ns, Ns)
        Marginalised likelihood Fisher of the whitened signal coefficients.
    z_hat : ndarray (Ns,)
        Whitened signal coefficients at the MAP (fiducial prior ``N(0, I)``).
    band : ndarray (Ns,) int
        Band of each coefficient.
    p0 : ndarray (Nb,)
        The fiducial band powers the whitening used (any units; results are in these).
    iterations : int
        Most Newton-Raphson steps (the fiducial is the previous estimate, moved at most a
        factor 10 per step); stops when the fiducial moves less than ``tol`` sigma.
    floor : float
        Smallest fiducial, as a fraction of ``p0``.
    start : ndarray (Nb,), optional
        First fiducial (default ``p0``).
    tol : float
        Convergence: every fiducial change below ``tol`` times the band's sigma.
    """
    p0 = np.asarray(p0, float)
    if np.any(~np.isfinite(p0)) or np.any(p0 <= 0):
        raise InputError(f"band_powers: fiducial band powers must be positive, received "
                         f"{p0.tolist()}")
    nb = p0.size
    z_hat = np.asarray(to_numpy(z_hat))
    G = np.asarray(to_numpy(G))
    band = np.asarray(to_numpy(band))
    if z_hat.ndim != 1:
        raise ShapeError(f"band_powers: z_hat: expected shape (Ns,), received {z_hat.shape}")
    ns = z_hat.size
    if G.shape != (ns, ns):
        raise ShapeError(f"band_powers: G: expected shape (Ns, Ns) = {(ns, ns)} to match "
                         f"z_hat, received {G.shape}")
    if band.shape != (ns,) or band.dtype.kind not in "iu":
        raise ShapeError(f"band_powers: band: expected integer band indices of shape "
                         f"({ns},), received dtype {band.dtype}, shape {band.shape}")
    for name, arr in (("G", G), ("z_hat", z_hat)):
        check_finite(arr, name, "band_powers")
    if ns and (band.min() < 0 or band.max() >= nb):
        raise InputError(f"band_powers: band: expected indices in [0, {nb - 1}] (len(p0) = "
                         f"{nb} bands), received values in [{band.min()}, {band.max()}]")
    empty = np.flatnonzero(np.bincount(band, minlength=nb) == 0)
    if empty.size:
        raise InputError(f"band_powers: band: every band needs >= 1 coefficient, received "
                         f"none for band(s) {empty[:10].tolist()} of {nb}")
    if start is not None:
        st = np.asarray(to_numpy(start), float)
        if st.shape != (nb,) or not np.all(np.isfinite(st)):
            raise InputError(f"band_powers: start: expected {nb} finite values, received "
                             f"shape {st.shape}" + ("" if st.shape != (nb,) else
                                                    " with NaN/inf"))
    bands = _whitened_bands(band, p0)
    b = z_hat + G @ z_hat
    P = p0.copy() if start is None else np.maximum(np.asarray(start, float), floor * p0)
    niter = 0
    for _ in range(max(1, int(iterations))):
        niter += 1
        est, Fb, cov = band_power_step_precision(b, G, bands, P, where="band_powers")
        # next fiducial: the estimate, floored, and at most a factor 10 from this one
        # (a Newton step from a fiducial far below the truth overshoots)
        newP = np.clip(np.maximum(est, floor * p0), P / 10.0, P * 10.0)
        sig = np.sqrt(np.maximum(np.diag(cov), 0.0))
        done = bool(np.all(np.abs(newP - P) <= tol * sig))
        P = newP
        if done:
            break
    return BandPowers(est, np.sqrt(np.diag(cov)), Fb, cov, niter, P)
