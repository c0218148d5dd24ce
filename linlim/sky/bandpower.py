"""Band powers of the 21 cm signal: prior covariance blocks and the quadratic estimator.

A signal basis (:class:`~linlim.sky.signal.HealpixFreqBasis`,
:class:`~linlim.sky.signal.SphericalHarmonicFreqBasis`, or any basis with a
``prior_covariance(pk, cosmo, **kwargs)`` returning per-frequency-mode blocks) turns a 3-D
power spectrum into a Gaussian prior on its coefficients ``C`` (shape ``(Nspace, Nk)``,
kelvin). That map is linear in ``P(k)``, so with a piecewise-constant spectrum of band
powers ``P_b`` (mK^2 Mpc^3) on bands ``k_b <= |k| < k_{b+1}``::

    S(P) = sum_b P_b S_b,        S_b = prior covariance of the top-hat band b (K^2 per mK^2 Mpc^3)

with every ``S_b`` block-diagonal over the frequency modes (modes are uncorrelated in the
separable line-of-sight treatment). :class:`BandPowerCovariance` computes and holds the
``S_b``; :class:`~linlim.priors.BandPowerPrior` is the Gaussian prior built from them.

:func:`estimate_band_powers` is the maximum-likelihood band-power estimator for
``c_hat ~ N(0, S(P) + N_c)`` (Bond, Jaffe & Knox 1998; Tegmark 1997): the Newton/Fisher
iteration ``P <- P + F^-1 q`` with::

    q_b   = 1/2 c^T C^-1 S_b C^-1 c - 1/2 tr(C^-1 S_b)
    F_bb' = 1/2 tr(C^-1 S_b C^-1 S_b'),        C = S(P) + N_c

One step from a fixed fiducial is the quadratic estimator ``P_hat = F^-1 (y - n)``,
``y_b = 1/2 c^T C^-1 S_b C^-1 c``, ``n_b = 1/2 tr(C^-1 S_b C^-1 N_c)``: unbiased for any
fiducial, with covariance ``F^-1`` when the fiducial is the truth. Estimates may be
negative (a noise fluctuation); the fiducial of the next iteration is floored at a small
positive value so ``C`` stays positive definite.

Units and conventions: band powers in mK^2 Mpc^3 (no ``h``); k in h/Mpc at the API (the
``summary.json`` convention; ``k_unit="1/Mpc"`` accepted) and 1/Mpc inside, converted with
the cosmology's ``h``. Coefficients flatten in C order, index ``j * Nk + k`` (as
:func:`~linlim.sky.signal.dense_coefficient_covariance` and ``Params``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..backend import asarray, get_xp, to_numpy
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator

__all__ = [
    "BandPowerCovariance",
    "BandPowerEstimate",
    "ModeBlockMatrix",
    "estimate_band_powers",
    "quadratic_band_powers",
    "estimate_band_powers_from_map",
    "check_basis_frequencies",
    "band_power_step_precision",
]

_K_UNITS = ("h/Mpc", "1/Mpc")


def _cosmo(cosmo: Any) -> Any:
    if cosmo is None:
        from astropy.cosmology import Planck18

        return Planck18
    return cosmo


def check_basis_frequencies(basis: Any, freqs: Any, rtol: float = 1e-9,
                            where: str | None = None) -> None:
    """Raise unless a signal basis was built on the observation's frequencies.

    Parameters
    ----------
    basis : signal basis with a ``freqs`` attribute (Hz), or the basis's frequencies
    freqs : array (Nfreq,), Hz
        The observation's channels.
    rtol : float
        Relative tolerance per channel.
    where : str, optional
        Prefix of the error message (the caller's name).

    Raises
    ------
    InputError
        Naming both sets (channel count and range).
    """
    fb = np.asarray(getattr(basis, "freqs", basis), dtype=np.float64)
    fo = np.asarray(getattr(freqs, "to_value", lambda u: freqs)("Hz"), dtype=np.float64)
    fo = np.atleast_1d(fo)

    def desc(f: np.ndarray) -> str:
        if f.ndim != 1 or f.size == 0:
            return f"shape {f.shape}"
        return f"{f.size} channels {f[0]:.9g}..{f[-1]:.9g} Hz"

    if fb.ndim != 1 or fb.shape != fo.shape or not np.allclose(fb, fo, rtol=rtol, atol=0):
        pre = f"{where}: " if where else ""
        raise InputError(
            f"{pre}signal basis frequencies ({desc(fb)}) do not match the observation's "
            f"frequencies ({desc(fo)}); build the basis on the observation's channels"
        )


class BandPowerCovariance:
    """Per-band prior covariance blocks ``S_b`` of a signal basis's coefficients.

    Parameters
    ----------
    basis : signal basis
        Any basis with ``in_shape = (Nspace, Nk)``, ``freqs`` (Hz) and
        ``prior_covariance(pk, cosmo, **kwargs) -> (Nk, Nspace, Nspace)`` (K^2 for ``pk`` in
        K^2 Mpc^3), e.g. :class:`~linlim.sky.signal.HealpixFreqBasis`.
    k_edges : array (Nband + 1,)
        Increasing, finite band edges in ``k_unit``; band ``b`` is
        ``k_edges[b] <= |k| < k_edges[b + 1]``.
    cosmo : astropy.cosmology.Cosmology, optional
        Planck18 by default (also gives ``h``).
    k_unit : {"h/Mpc", "1/Mpc"}
    freqs : array (Nfreq,), Hz, optional
        The observation's channels: checked against the basis's
        (:func:`check_basis_frequencies`).
    **cov_kwargs
        Passed to ``basis.prior_covariance`` (e.g. ``method``, ``kperp_max``).

    Attributes
    ----------
    blocks : ndarray (Nband, Nk, Nspace, Nspace), float64
        ``S_b``, K^2 per (mK^2 Mpc^3) of band power.
    k_edges, k_centers : ndarray, h/Mpc (whatever ``k_unit`` was given is converted)
        Band edges and centres (arithmetic midpoints of the edges).
    k_edges_mpc : ndarray, 1/Mpc
    nspace, nk, nband, size : int
        ``size = Nspace * Nk`` coefficients.

    Notes
    -----
    ``S_b = basis.prior_covariance(pk_b)`` with ``pk_b(k) = 1e-6 [K^2 / mK^2]`` inside the
    band and 0 outside, so that ``sum_b P_b S_b`` is exactly the basis's prior for the
    piecewise-constant spectrum (same quadratures). Bands the basis cannot see (no
    support) are refused: their Fisher information would be zero.

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.sky.signal import HealpixFreqBasis, healpix_radec
    >>> ra, dec = healpix_radec(8, np.arange(60, 100))
    >>> basis = HealpixFreqBasis(2, ra, dec, 1.5e8 + 1e5 * np.arange(8), nk=3)
    >>> bp = BandPowerCovariance(basis, [0.02, 0.2, 2.0])
    >>> bp.blocks.shape[:2]
    (2, 3)
    """

    def __init__(self, basis: Any, k_edges: Sequence[float], cosmo: Any = None,
                 k_unit: str = "h/Mpc", freqs: Any = None, **cov_kwargs: Any) -> None:
        where = "BandPowerCovariance"
        if not hasattr(basis, "prior_covariance") or len(getattr(basis, "in_shape", ())) != 2:
            raise InputError(f"{where}: basis must be a signal basis with in_shape (Nspace, "
                             f"Nk) and prior_covariance(); received {type(basis).__name__}")
        if freqs is not None:
            check_basis_frequencies(basis, freqs)
        if k_unit not in _K_UNITS:
            raise InputError(f"{where}: k_unit must be one of {_K_UNITS}, received {k_unit!r}")
        e = np.asarray(k_edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(e < 0) \
                or np.any(np.diff(e) <= 0):
            raise InputError(f"{where}: k_edges must be >= 2 finite, non-negative, strictly "
                             f"increasing values ({k_unit}), received {e.tolist()}")
        self.cosmo = _cosmo(cosmo)
        self.h = float(self.cosmo.h)
        self.k_edges_mpc = e * self.h if k_unit == "h/Mpc" else e.copy()
        self.k_edges = self.k_edges_mpc / self.h
        self.k_centers = 0.5 * (self.k_edges[1:] + self.k_edges[:-1])
        self.basis = basis
        self.freqs = np.asarray(basis.freqs, dtype=np.float64)
        self.nspace, self.nk = (int(n) for n in basis.in_shape)
        self.nband = e.size - 1
        self.size = self.nspace * self.nk
        pks = []
        for b in range(self.nband):
            lo, hi = self.k_edges_mpc[b], self.k_edges_mpc[b + 1]

            def pk(k: Any, lo: float = lo, hi: float = hi) -> np.ndarray:
                k = np.asarray(k, dtype=np.float64)
                return np.where((k >= lo) & (k < hi), 1e-6, 0.0)

            pks.append(pk)
        if hasattr(basis, "prior_covariance_bands"):
            allS = basis.prior_covariance_bands(pks, self.cosmo, **cov_kwargs)
        else:
            allS = [basis.prior_covariance(pk, self.cosmo, **cov_kwargs) for pk in pks]
        blocks = []
        for b, S in enumerate(allS):
            S = np.asarray(S, np.float64)
            if S.shape != (self.nk, self.nspace, self.nspace):
                raise ShapeError(f"{where}: basis.prior_covariance returned {S.shape}, "
                                 f"expected {(self.nk, self.nspace, self.nspace)}")
            S = 0.5 * (S + np.swapaxes(S, 1, 2))
            if not np.trace(S, axis1=1, axis2=2).sum() > 0:
                raise InputError(
                    f"{where}: band {b} ({self.k_edges[b]:.4g} to {self.k_edges[b + 1]:.4g} "
                    "h/Mpc) has no support in this basis (zero prior variance); choose "
                    "k_edges within the basis's k range"
                )
            blocks.append(S)
        self.blocks = np.stack(blocks)

    @classmethod
    def from_blocks(cls, blocks: Any, k_edges: Sequence[float] | None = None
                    ) -> BandPowerCovariance:
        """Band covariances given directly as ``S_b`` blocks, without a basis.

        Parameters
        ----------
        blocks : array (Nband, Nk, Nspace, Nspace)
            ``S_b`` per frequency mode (symmetrised here), any units.
        k_edges : array (Nband + 1,), h/Mpc, optional
            Labels only (default ``0, 1, ..., Nband``).
        """
        S = np.asarray(blocks, dtype=np.float64)
        if S.ndim != 4 or S.shape[2] != S.shape[3] or not np.all(np.isfinite(S)):
            raise ShapeError("BandPowerCovariance.from_blocks: blocks must be a finite "
                             f"(Nband, Nk, Nspace, Nspace) array, received {S.shape}")
        self = cls.__new__(cls)
        self.cosmo, self.h, self.basis = None, 1.0, None
        self.nband, self.nk, self.nspace = (int(n) for n in S.shape[:3])
        self.size = self.nspace * self.nk
        e = np.arange(self.nband + 1.0) if k_edges is None else np.asarray(k_edges, float)
        self.k_edges = self.k_edges_mpc = e
        self.k_centers = 0.5 * (e[1:] + e[:-1])
        self.freqs = np.zeros(0)
        self.blocks = 0.5 * (S + np.swapaxes(S, 2, 3))
        return self

    def __repr__(self) -> str:
        return (f"BandPowerCovariance(nband={self.nband}, nspace={self.nspace}, nk={self.nk},"
                f" k_edges={np.round(self.k_edges, 4).tolist()} h/Mpc)")

    def check_power(self, power: Any, name: str = "power") -> np.ndarray:
        """Band powers as a (Nband,) float64 array, refused unless finite and positive."""
        p = np.atleast_1d(np.asarray(to_numpy(power), dtype=np.float64))
        if p.shape != (self.nband,):
            raise ShapeError(f"{name}: expected {self.nband} band powers (mK^2 Mpc^3), "
                             f"received shape {p.shape}")
        bad = ~np.isfinite(p) | (p <= 0)
        if np.any(bad):
            b = int(np.nonzero(bad)[0][0])
            raise InputError(
                f"{name}: band powers must be finite and > 0 mK^2 Mpc^3; band {b} "
                f"(k {self.k_edges[b]:.4g} to {self.k_edges[b + 1]:.4g} h/Mpc) received "
                f"{float(p[b])!r}"
            )
        return p

    def covariance_blocks(self, power: Any, allow_zero: bool = False) -> np.ndarray:
        """``S(P)`` per frequency mode, shape (Nk, Nspace, Nspace), K^2.

        ``power`` (Nband,) in mK^2 Mpc^3; positive unless ``allow_zero`` (then >= 0)."""
        if allow_zero:
            p = np.atleast_1d(np.asarray(to_numpy(power), dtype=np.float64))
            if p.shape != (self.nband,) or not np.all(np.isfinite(p)) or np.any(p < 0):
                raise InputError(f"power: expected {self.nband} finite band powers >= 0 "
                                 f"mK^2 Mpc^3, received {p.tolist()}")
        else:
            p = self.check_power(power)
        return np.tensordot(p, self.blocks, axes=(0, 0))

    def dense_covariance(self, power: Any) -> np.ndarray:
        """``S(P)`` as a dense (Nspace * Nk, Nspace * Nk) matrix in the flat C order, K^2."""
        from .signal import dense_coefficient_covariance

        return dense_coefficient_covariance(self.covariance_blocks(power))

    def cholesky_blocks(self, power: Any, jitter: float = 0.0) -> np.ndarray:
        """Lower Cholesky factors ``L_k`` of ``S(P)``'s blocks, (Nk, Nspace, Nspace), K.

        ``jitter`` adds ``jitter * mean(diag)`` to each block's diagonal (for blocks that
        are positive semi-definite only)."""
        S = self.covariance_blocks(power)
        out = np.empty_like(S)
        for k in range(self.nk):
            M = S[k]
            if jitter:
                M = M + jitter * np.mean(np.diag(M)) * np.eye(self.nspace)
            try:
                out[k] = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                raise InputError(
                    f"BandPowerCovariance: the prior covariance of frequency mode {k} is not "
                    "positive definite (the basis has more coefficients than the bands "
                    "constrain); pass jitter > 0 (e.g. 1e-10) or fewer coefficients"
                ) from None
        return out

    def draw(self, power: Any, rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
        """A draw of the coefficients from ``N(0, S(P))``, shape (Nspace, Nk), K."""
        L = self.cholesky_blocks(power, jitter)
        z = rng.standard_normal((self.nspace, self.nk))
        return np.einsum("kij,jk->ik", L, z)

    def flat(self, c: Any, name: str = "c_hat") -> np.ndarray:
        """Coefficients (Nspace, Nk) or (Nspace * Nk,) as a flat (C order) float64 array."""
        a = np.asarray(to_numpy(c), dtype=np.float64)
        if a.shape not in ((self.nspace, self.nk), (self.size,)):
            raise ShapeError(f"{name}: expected shape ({self.nspace}, {self.nk}) or "
                             f"({self.size},), received {a.shape}")
        return a.reshape(-1)


class ModeBlockMatrix(LinearOperator):
    """Multiply each frequency mode's column of coefficients by its own matrix.

    ``y[:, k] = M[k] x[:, k]`` with ``x`` (Nin, Nk) and ``y`` (Nout, Nk); e.g. the
    whitening transform ``c = S^{1/2} z`` of a band-power prior (``M[k] = L_k``, the
    Cholesky factor of mode ``k``'s covariance), usable as a preconditioner.

    Parameters
    ----------
    matrices : array (Nk, Nout, Nin), real or complex
    in_dtype : dtype, optional
        Default: the matrices' dtype.

    Notes
    -----
    ``<M x, y> = Re sum_k conj(M_k x_k) . y_k = Re sum_k conj(x_k) . (M_k^H y_k)``: the
    adjoint applies ``M_k^H`` to each column.
    """

    _abstract = False

    def __init__(self, matrices: Any, in_dtype: Any = None, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        M = np.asarray(to_numpy(matrices))
        if M.ndim != 3:
            raise ShapeError(f"ModeBlockMatrix: matrices must be (Nk, Nout, Nin), received "
                             f"shape {M.shape}")
        nk, nout, nin = M.shape
        in_dtype = M.dtype if in_dtype is None else np.dtype(in_dtype)
        super().__init__((nin, nk), (nout, nk), in_dtype, np.result_type(M.dtype, in_dtype),
                         xp=xp, name="ModeBlockMatrix")
        self.matrices = asarray(M, xp)
        self._MH = asarray(np.ascontiguousarray(np.conj(np.swapaxes(M, 1, 2))), xp)

    def _matvec(self, x: Any) -> Any:
        return self.xp.einsum("kij,jk->ik", self.matrices, x)

    def _rmatvec(self, y: Any) -> Any:
        return self.xp.einsum("kij,jk->ik", self._MH, y)


@dataclass
class BandPowerEstimate:
    """Maximum-likelihood band powers and their Fisher errors.

    Attributes
    ----------
    k : ndarray (Nband,), h/Mpc
        Band centres.
    k_edges : ndarray (Nband + 1,), h/Mpc
    estimate : ndarray (Nband,), mK^2 Mpc^3
        May be negative.
    sigma : ndarray (Nband,), mK^2 Mpc^3
        ``sqrt(diag F^-1)`` at the final fiducial.
    sigma_null : ndarray (Nband,), mK^2 Mpc^3
        ``sqrt(diag F_0^-1)`` with ``F_0`` the Fisher matrix at ``P = 0`` (noise only):
        the errors under the null hypothesis.
    fisher : ndarray (Nband, Nband), (mK^2 Mpc^3)^-2
    covariance : ndarray (Nband, Nband), (mK^2 Mpc^3)^2, ``F^-1``
    fiducial : ndarray (Nband,)
        The band powers at which ``C`` (hence ``F``) was last evaluated.
    iterations : int
    converged : bool
    """

    k: np.ndarray
    k_edges: np.ndarray
    estimate: np.ndarray
    sigma: np.ndarray
    sigma_null: np.ndarray
    fisher: np.ndarray
    covariance: np.ndarray
    fiducial: np.ndarray
    iterations: int
    converged: bool

    def as_dict(self) -> dict:
        """JSON-ready dict (lists) with keys ``k`` (h/Mpc), ``estimate``, ``sigma``, ..."""
        return {key: (v.tolist() if isinstance(v, np.ndarray) else v)
                for key, v in self.__dict__.items()}


def _mode_major(bp: BandPowerCovariance) -> np.ndarray:
    """Permutation ``perm[new] = old`` from flat C order (j Nk + k) to mode-major order
    (k Nspace + j), where ``S_b`` is block-diagonal with contiguous blocks."""
    return np.arange(bp.size).reshape(bp.nspace, bp.nk).T.ravel()


def _quadratic_step_blocks(bp: BandPowerCovariance, c: np.ndarray, N: np.ndarray,
                           P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y``, noise bias ``n`` and ``F`` when ``N_c`` is block-diagonal over modes."""
    from scipy.linalg import cho_factor, cho_solve

    nb, ns = bp.nband, bp.nspace
    y, nbias, F = np.zeros(nb), np.zeros(nb), np.zeros((nb, nb))
    Sfid = np.tensordot(P, bp.blocks, axes=(0, 0))
    for k in range(bp.nk):
        C = Sfid[k] + N[k]
        cf = cho_factor(C, lower=True)
        G = cho_solve(cf, np.eye(ns))
        Gc = c[..., k] @ G
        A = np.matmul(G[None], bp.blocks[:, k])  # G S_b, (Nb, Ns, Ns)
        y = y + 0.5 * np.einsum("...i,bij,...j->...b", Gc, bp.blocks[:, k], Gc, optimize=True)
        GN = G @ N[k]
        nbias += 0.5 * (A.reshape(nb, -1) @ GN.T.reshape(-1))
        At = np.swapaxes(A, 1, 2).reshape(nb, -1)
        F += 0.5 * (A.reshape(nb, -1) @ At.T)
    return y, nbias, F


def _dense_terms(bp: BandPowerCovariance, G: np.ndarray, Gc: np.ndarray, P: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y``, ``n`` and ``F`` from ``G = C^-1`` (dense, mode-major) and ``G c``.

    ``F_ab = 1/2 tr(G S_a G S_b) = 1/2 sum_{k, k'} sum((G S_a)[k, k'] * (G S_b)[k', k]^T)``
    with ``(G S_b)[k, k'] = G[k, k'] S_b[k']``: for each pair of mode blocks, two GEMMs
    against all bands at once (``2 nk^2 Nband Ns^3`` flops in all, memory
    ``O(Nband Ns^2)``). The noise bias follows from
    ``tr(G S_b) = tr(G S_b G C) = 2 (F P)_b + 2 n_b``."""
    nb, ns, nk = bp.nband, bp.nspace, bp.nk
    diag = _diagonal_bands(bp)
    if diag is not None:
        return _diagonal_terms(diag, G, Gc, P)
    # S_b[k] of all bands side by side: (Nk, Ns, Nband * Ns)
    scat = np.ascontiguousarray(np.transpose(bp.blocks, (1, 2, 0, 3)).reshape(nk, ns, nb * ns))
    y, F, tr = np.zeros(nb), np.zeros((nb, nb)), np.zeros(nb)
    for k in range(nk):
        R = slice(k * ns, (k + 1) * ns)
        gk = Gc[..., R]
        y = y + 0.5 * np.einsum("...i,bij,...j->...b", gk, bp.blocks[:, k], gk,
                                 optimize=True)
        tr += np.einsum("ij,bji->b", G[R, R], bp.blocks[:, k])
        for k2 in range(k, nk):
            R2 = slice(k2 * ns, (k2 + 1) * ns)
            # A1[b] = (G S_b)[k, k2], A2[b] = (G S_b)[k2, k], each (Ns, Ns)
            A1 = (G[R, R2] @ scat[k2]).reshape(ns, nb, ns).transpose(1, 0, 2)
            if k2 == k:
                A1t = np.swapaxes(A1, 1, 2).reshape(nb, -1)
                F += 0.5 * (A1.reshape(nb, -1) @ A1t.T)
            else:
                A2 = (G[R2, R] @ scat[k]).reshape(ns, nb, ns).transpose(1, 0, 2)
                X = A1.reshape(nb, -1) @ np.swapaxes(A2, 1, 2).reshape(nb, -1).T
                F += 0.5 * (X + X.T)
    nbias = 0.5 * tr - F @ P
    return y, nbias, F


def _diagonal_bands(bp: BandPowerCovariance) -> np.ndarray | None:
    """``D[i, b]``, the diagonal of ``S_b`` in mode-major order (n, Nband), when every block
    ``S_b[k]`` is diagonal (white bands, e.g. the joint fit's whitened signal); else None."""
    blocks = bp.blocks
    d = np.diagonal(blocks, axis1=2, axis2=3)                    # (Nb, Nk, Ns)
    off = blocks.copy()
    idx = np.arange(bp.nspace)
    off[:, :, idx, idx] = 0.0
    if np.any(off):
        return None
    return np.ascontiguousarray(d.reshape(bp.nband, -1).T)      # (Nk * Ns, Nb), mode-major


def _diagonal_terms(D: np.ndarray, G: np.ndarray, Gc: np.ndarray, P: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_dense_terms` for diagonal ``S_b = diag(D[:, b])``: then
    ``tr(G S_a G S_b) = sum_ij D_ia G_ij^2 D_jb``, so ``F = 1/2 D^T (G o G) D``,
    ``tr(G S_b) = diag(G) . D_b`` and ``y_b = 1/2 (G c)^2 . D_b`` (``O(n^2 Nband)``
    flops instead of ``O(Nk^2 Nband Ns^3)``)."""
    F = 0.5 * (D.T @ ((G * G) @ D))
    F = 0.5 * (F + F.T)
    y = 0.5 * (Gc * Gc) @ D
    nbias = 0.5 * (np.diagonal(G) @ D) - F @ P
    return y, nbias, F


def _spd_inverse(A: np.ndarray, what: str) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix (LAPACK potrf + potri), or an
    InputError naming ``what``."""
    from scipy.linalg import lapack

    c, info = lapack.dpotrf(A, lower=True, clean=True, overwrite_a=False)
    if info != 0:
        raise InputError(f"{what} is not positive definite")
    inv, info = lapack.dpotri(c, lower=True, overwrite_c=True)
    if info != 0:
        raise InputError(f"{what} is singular")
    inv = np.tril(inv)
    return inv + np.tril(inv, -1).T


def _quadratic_step_dense(bp: BandPowerCovariance, c: np.ndarray, N: np.ndarray,
                          P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y``, ``n`` and ``F`` for a dense ``N_c`` (mode-major order): one Cholesky of
    ``C = S(P) + N_c``."""
    ns, nk = bp.nspace, bp.nk
    C = N.copy()
    Sfid = np.tensordot(P, bp.blocks, axes=(0, 0))
    for k in range(nk):
        C[k * ns:(k + 1) * ns, k * ns:(k + 1) * ns] += Sfid[k]
    G = _spd_inverse(C, "estimate_band_powers: S(P) + noise_cov (noise_cov must be "
                        "symmetric positive definite)")
    return _dense_terms(bp, G, c @ G, P)


def _block_inverses(bp: BandPowerCovariance, P: np.ndarray, jitter: float) -> np.ndarray:
    """``S(P)_k^-1`` per mode, (Nk, Ns, Ns)."""
    L = bp.cholesky_blocks(P, jitter)
    eye = np.eye(bp.nspace)
    Li = np.stack([np.linalg.solve(Lk, eye) for Lk in L])
    Si = np.einsum("kji,kjl->kil", Li, Li)
    return 0.5 * (Si + np.swapaxes(Si, 1, 2))


def _quadratic_step_precision(bp: BandPowerCovariance, b: np.ndarray, Ninv: np.ndarray,
                              P: np.ndarray, jitter: float
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same step in precision form, from ``b = N_c^-1 c`` and ``N_c^-1`` (which may be
    singular: modes the data do not constrain): with ``H = (S^-1 + N_c^-1)^-1``,
    ``G = S^-1 - S^-1 H S^-1`` and ``G c = S^-1 H b`` (Woodbury)."""
    ns, nk = bp.nspace, bp.nk
    if not np.any(P > 0):  # the null hypothesis: C = N_c, G = N_c^-1
        return _dense_terms(bp, Ninv, b, P)
    Si = _block_inverses(bp, P, jitter)
    A = Ninv.copy()
    for k in range(nk):
        A[k * ns:(k + 1) * ns, k * ns:(k + 1) * ns] += Si[k]
    H = _spd_inverse(A, "estimate_band_powers_from_map: S(P)^-1 + N_c^-1 (check that "
                        "posterior_cov is the posterior covariance of the fit made with "
                        "this prior)")
    Hb = b @ H
    M = H
    for k in range(nk):
        R = slice(k * ns, (k + 1) * ns)
        M[R] = Si[k] @ M[R]
    for k in range(nk):
        R = slice(k * ns, (k + 1) * ns)
        M[:, R] = M[:, R] @ Si[k]
    G = -M
    Gc = np.empty_like(Hb)
    for k in range(nk):
        R = slice(k * ns, (k + 1) * ns)
        G[R, R] += Si[k]
        Gc[..., R] = Hb[..., R] @ Si[k]
    G = 0.5 * (G + G.T)
    return _dense_terms(bp, G, Gc, P)


def band_power_step_precision(b: Any, n_inv: Any, bands: BandPowerCovariance, fiducial: Any,
                              jitter: float = 0.0, where: str = "band_power_step_precision"
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Newton/Fisher step of the band-power likelihood in precision form.

    For coefficients ``c ~ N(0, S(P) + N_c)`` known only through ``b = N_c^-1 c`` and
    ``N_c^-1`` (which may be singular), returns ``F^-1 (y - n)`` at ``P = fiducial``, the
    Fisher matrix ``F`` and ``F^-1`` (see :func:`estimate_band_powers`; Woodbury, never
    inverting ``N_c``). :func:`estimate_band_powers_from_map` iterates this step.

    Parameters
    ----------
    b : array (n,), flat C order
    n_inv : array (n, n)
    bands : BandPowerCovariance
    fiducial : array (Nband,), > 0
    jitter : float
        Relative diagonal loading of ``S(P)``'s blocks before inverting them.

    Returns
    -------
    estimate : ndarray (Nband,)
    fisher, covariance : ndarray (Nband, Nband)
    """
    perm = _mode_major(bands)
    bv = np.asarray(b, dtype=np.float64)[perm]
    Ni = np.asarray(n_inv, dtype=np.float64)[np.ix_(perm, perm)]
    P = bands.check_power(fiducial, "fiducial")
    return _fisher_solve(*_quadratic_step_precision(bands, bv, Ni, P, jitter), where)


def _prepare(c_hat: Any, noise_cov: Any, bands: BandPowerCovariance, where: str
             ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Coefficients (..., n) and ``N_c`` in the order the step functions use."""
    if not isinstance(bands, BandPowerCovariance):
        raise InputError(f"{where}: bands must be a BandPowerCovariance, received "
                         f"{type(bands).__name__}")
    n, ns, nk = bands.size, bands.nspace, bands.nk
    a = np.asarray(to_numpy(c_hat), dtype=np.float64)
    if a.shape[-2:] == (ns, nk):
        a = a.reshape(a.shape[:-2] + (n,))
    if a.ndim not in (1, 2) or a.shape[-1] != n:
        raise ShapeError(f"{where}: c_hat must have shape ({ns}, {nk}) or ({n},) (or a "
                         f"leading axis of draws), received {np.shape(c_hat)}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{where}: c_hat contains non-finite values")
    N = np.asarray(to_numpy(noise_cov), dtype=np.float64)
    if not np.all(np.isfinite(N)):
        raise InputError(f"{where}: noise_cov contains non-finite values")
    if N.shape == (nk, ns, ns):
        return a.reshape(a.shape[:-1] + (ns, nk)), 0.5 * (N + np.swapaxes(N, 1, 2)), True
    if N.shape == (n, n):
        perm = _mode_major(bands)
        N = N[np.ix_(perm, perm)]
        return a[..., perm], 0.5 * (N + N.T), False
    raise ShapeError(f"{where}: noise_cov must have shape ({n}, {n}) or ({nk}, {ns}, {ns}),"
                     f" received {N.shape}")


def _solve_step(bands: BandPowerCovariance, c: np.ndarray, N: np.ndarray, blockwise: bool,
                P: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = _quadratic_step_blocks if blockwise else _quadratic_step_dense
    return _fisher_solve(*step(bands, c, N, P), where)


def quadratic_band_powers(c_hat: Any, noise_cov: Any, bands: BandPowerCovariance,
                          fiducial: Any, allow_zero: bool = True
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadratic estimator of band powers at a fixed fiducial, for one or many draws.

    ``P_hat = F^-1 (y - n)`` with ``y_b = 1/2 c^T G S_b G c``, ``n_b = 1/2 tr(G S_b G
    N_c)``, ``F_ab = 1/2 tr(G S_a G S_b)``, ``G = (S(P_fid) + N_c)^-1``. Unbiased for any
    fiducial; covariance ``F^-1`` when the fiducial is the truth.

    Parameters
    ----------
    c_hat : array (Nspace, Nk), (n,), or (Ndraw, n) / (Ndraw, Nspace, Nk), K
    noise_cov : array (n, n) or (Nk, Nspace, Nspace), K^2
    bands : BandPowerCovariance
    fiducial : array (Nband,), mK^2 Mpc^3
        ``>= 0`` (``0``: noise-only weighting, the null hypothesis) unless
        ``allow_zero=False`` (then ``> 0``).

    Returns
    -------
    estimate : ndarray (Nband,) or (Ndraw, Nband), mK^2 Mpc^3
    fisher : ndarray (Nband, Nband)
    sigma : ndarray (Nband,), ``sqrt(diag F^-1)``
    """
    where = "quadratic_band_powers"
    c, N, blockwise = _prepare(c_hat, noise_cov, bands, where)
    if allow_zero:
        bands.covariance_blocks(fiducial, allow_zero=True)  # validates
        P = np.asarray(to_numpy(fiducial), dtype=np.float64).reshape(bands.nband)
    else:
        P = bands.check_power(fiducial, "fiducial")
    est, F, cov = _solve_step(bands, c, N, blockwise, P, where)
    return est, F, np.sqrt(np.maximum(np.diag(cov), 0.0))


def estimate_band_powers(c_hat: Any, noise_cov: Any, bands: BandPowerCovariance,
                         fiducial: Any = None, n_iter: int = 30, tol: float = 0.05,
                         floor: float = 0.05) -> BandPowerEstimate:
    """Maximum-likelihood band powers of ``c_hat ~ N(0, S(P) + N_c)`` (Newton/Fisher).

    Parameters
    ----------
    c_hat : array (Nspace, Nk) or (Nspace * Nk,), K
        Estimated signal coefficients (flat in C order).
    noise_cov : array (n, n) or (Nk, Nspace, Nspace), K^2
        Their error covariance ``N_c`` (may include marginalised nuisance covariance; the
        inverse of a Fisher/Hessian block). A (Nk, Nspace, Nspace) array means
        block-diagonal over the frequency modes (fast path).
    bands : BandPowerCovariance
    fiducial : array (Nband,), mK^2 Mpc^3, optional
        Starting band powers (> 0). Default: for each band, the power whose prior
        variance equals the mean noise variance of the coefficients.
    n_iter : int
        Maximum Newton steps; ``n_iter=1`` is the quadratic estimator at ``fiducial``.
    tol : float
        Stop when every band moves by less than ``tol`` sigma.
    floor : float
        The next fiducial is ``max(estimate, floor * sigma)`` (keeps ``C`` positive).

    Returns
    -------
    BandPowerEstimate
        ``estimate`` is ``F^-1 (y - n)`` at the last fiducial (may be negative),
        ``sigma = sqrt(diag F^-1)`` there (includes the signal's own sample variance, so
        it grows with the estimate), and ``sigma_null`` the errors under ``P = 0``
        (noise-only Fisher): use ``estimate / sigma_null`` for null tests.

    Notes
    -----
    With ``G = C^-1``: ``q_b = y_b - n_b - (F P)_b`` where ``y_b = 1/2 c^T G S_b G c`` and
    ``n_b = 1/2 tr(G S_b G N_c)``, so the Newton step ``P + F^-1 q = F^-1 (y - n)``. Cost
    per step: one Cholesky of the ``n x n`` matrix ``C`` and ``2 Nband n^2 Nspace`` flops
    for ``F`` (dense ``N_c``), or ``Nk`` Cholesky of ``Nspace x Nspace`` blocks.
    """
    where = "estimate_band_powers"
    c, N, blockwise = _prepare(c_hat, noise_cov, bands, where)
    if c.ndim != (2 if blockwise else 1):
        raise ShapeError(f"{where}: one set of coefficients at a time (use "
                         "quadratic_band_powers for many draws)")
    if not (isinstance(n_iter, (int, np.integer)) and n_iter >= 1):
        raise InputError(f"{where}: n_iter must be an int >= 1, received {n_iter!r}")
    if fiducial is None:
        ndiag = np.mean(np.diagonal(N, axis1=-2, axis2=-1))
        svar = np.trace(bands.blocks, axis1=2, axis2=3).sum(1) / bands.size
        P = np.maximum(ndiag, 1e-300) / svar
    else:
        P = bands.check_power(fiducial, "fiducial")
    return _iterate(bands, lambda P: _solve_step(bands, c, N, blockwise, P, where), P,
                    n_iter, tol, floor)


def _fisher_solve(y: np.ndarray, nbias: np.ndarray, F: np.ndarray, where: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        cov = np.linalg.inv(F)
    except np.linalg.LinAlgError:
        raise InputError(f"{where}: the band-power Fisher matrix is singular; the bands are "
                         "not separately constrained by these coefficients") from None
    return (y - nbias) @ cov.T, F, cov


def _iterate(bands: BandPowerCovariance, step: Any, P: np.ndarray, n_iter: int, tol: float,
             floor: float) -> BandPowerEstimate:
    """Newton/Fisher iteration ``P <- max(F^-1 (y - n), floor sigma)`` until it moves by
    less than ``tol`` sigma; then the null (``P = 0``) errors."""
    converged, iterations = False, 0
    for _ in range(n_iter):
        iterations += 1
        fid = P.copy()
        est, F, cov = step(fid)
        sig = np.sqrt(np.maximum(np.diag(cov), 0.0))
        P = np.maximum(est, floor * sig)
        if np.all(np.abs(P - fid) <= tol * sig):
            converged = True
            break
    _, _, cov0 = step(np.zeros(bands.nband))
    return BandPowerEstimate(
        k=bands.k_centers.copy(), k_edges=bands.k_edges.copy(), estimate=est, sigma=sig,
        sigma_null=np.sqrt(np.maximum(np.diag(cov0), 0.0)), fisher=F, covariance=cov,
        fiducial=fid, iterations=iterations, converged=converged,
    )


def estimate_band_powers_from_map(c_map: Any, posterior_cov: Any,
                                  bands: BandPowerCovariance, prior_power: Any,
                                  fiducial: Any = None, n_iter: int = 30, tol: float = 0.05,
                                  floor: float = 0.05, jitter: float = 0.0
                                  ) -> BandPowerEstimate:
    """Band powers from the MAP of a fit made *with* the band-power prior.

    A joint fit with the Gaussian prior ``S0 = S(P0)`` on the signal coefficients returns a
    Wiener-filtered MAP ``c_map = Sigma N_c^-1 c_ML`` and the posterior covariance
    ``Sigma = (S0^-1 + N_c^-1)^-1`` of the signal block (the inverse Hessian, nuisance
    marginalised). Both determine the likelihood's information about the signal without
    ever inverting ``N_c`` (which may be singular: modes the data do not see)::

        N_c^-1 = Sigma^-1 - S0^-1,        b = N_c^-1 c_ML = Sigma^-1 c_map

    and the estimator of :func:`estimate_band_powers` is run in precision form
    (Woodbury), giving the same numbers as feeding ``c_ML`` and ``N_c`` to it.

    Parameters
    ----------
    c_map : array (Nspace, Nk) or (n,), K
        MAP signal coefficients of the fit with prior ``BandPowerPrior(bands, prior_power)``.
    posterior_cov : array (n, n), K^2
        Their posterior covariance (flat C order), nuisance parameters marginalised (the
        signal block of the inverse Gauss-Newton Hessian / Fisher + prior).
    bands : BandPowerCovariance
    prior_power : array (Nband,), mK^2 Mpc^3, > 0
        The band powers of the prior used in the fit.
    fiducial, n_iter, tol, floor
        As in :func:`estimate_band_powers` (default fiducial: ``prior_power``).
    jitter : float
        Relative diagonal loading of the prior blocks before inverting them.

    Returns
    -------
    BandPowerEstimate
    """
    where = "estimate_band_powers_from_map"
    c, Sig, blockwise = _prepare(c_map, posterior_cov, bands, where)
    if blockwise or c.ndim != 1:
        raise ShapeError(f"{where}: posterior_cov must be a dense ({bands.size}, "
                         f"{bands.size}) matrix and c_map one set of coefficients")
    P0 = bands.check_power(prior_power, "prior_power")
    Sig_inv = _spd_inverse(Sig, f"{where}: posterior_cov")
    b = c @ Sig_inv
    S0i = _block_inverses(bands, P0, jitter)
    Ninv = Sig_inv
    ns = bands.nspace
    for k in range(bands.nk):
        R = slice(k * ns, (k + 1) * ns)
        Ninv[R, R] -= S0i[k]
    Ninv = 0.5 * (Ninv + Ninv.T)
    if not (isinstance(n_iter, (int, np.integer)) and n_iter >= 1):
        raise InputError(f"{where}: n_iter must be an int >= 1, received {n_iter!r}")
    P = P0.copy() if fiducial is None else bands.check_power(fiducial, "fiducial")
    return _iterate(
        bands,
        lambda Pf: _fisher_solve(*_quadratic_step_precision(bands, b, Ninv, Pf, jitter),
                                 where),
        P, n_iter, tol, floor)
