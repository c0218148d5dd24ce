"""The 21 cm signal: sparse bases, mock Gaussian random fields and their prior.

The 21 cm brightness temperature on a set of sky positions over the band,
``T[p, f]`` in **kelvin**, is described by a small real coefficient array through one of
two linear bases (each a :class:`~linlim.operators.LinearOperator` with an exact
adjoint):

* :class:`HealpixFreqBasis` -- a low-resolution HEALPix grid (``nside_low``, RING,
  equatorial/ICRS: ``theta = pi/2 - dec``, ``phi = ra``) times ``nk`` frequency modes,
  interpolated onto the target positions (nearest parent or healpy's bilinear weights):
  ``T = W C B^T`` with ``C`` of shape ``(Nlow, Nk)``;
* :class:`SphericalHarmonicFreqBasis` -- real spherical harmonics ``Y_lm`` (``l <= lmax``)
  evaluated at the target positions times the frequency modes: ``T = Y C B^T`` with
  ``C`` of shape ``(Nlm, Nk)``; optionally orthonormalised over the target pixels.

The frequency modes ``B`` (:func:`frequency_modes`) are the lowest ``nk`` orthonormal
DCT-II or real Fourier modes along frequency, i.e. line-of-sight ``k_par`` modes
(:func:`mode_k_parallel`).

Units: ``T`` is in K. :func:`rayleigh_jeans_factor` gives the Jy/sr per K at each
frequency (``2 k_B nu^2 / c^2``) and :func:`kelvin_to_jy_per_pixel` the linear operator
that turns ``T`` (K) into the intensities the visibility operator takes, ``I[s, f]`` in Jy
per pixel, ``I = T * 2 k_B nu^2 / c^2 * Omega_pix * 1e26``.

Mock signals: :func:`gaussian_random_box` draws a Gaussian random field with a given
3-D power spectrum ``P(k)`` [K^2 Mpc^3] on a periodic Cartesian box of comoving
coordinates, :func:`box_power_spectrum` measures it back, and
:func:`gaussian_random_sky` samples such a box at the true comoving positions
``r(nu) n_hat`` of sky pixels over the band (astropy cosmology, Planck18 by default).
The matching prior on basis coefficients is ``basis.prior_covariance(pk)`` (or its
diagonal ``basis.prior_variance(pk)``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import asarray, get_xp, scatter_add
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator
from ..operators.linear import Diagonal
from ..validation import check_freqs

__all__ = [
    "F21_HZ",
    "frequency_modes",
    "mode_k_parallel",
    "healpix_radec",
    "drift_stripe_pixels",
    "real_spherical_harmonics",
    "HealpixFreqBasis",
    "SphericalHarmonicFreqBasis",
    "dense_coefficient_covariance",
    "rayleigh_jeans_factor",
    "kelvin_to_jy_per_pixel",
    "redshift_of",
    "comoving_distance",
    "cosmo_scalars",
    "gaussian_random_box",
    "box_power_spectrum",
    "gaussian_random_sky",
]

F21_HZ = 1420.405751768e6
"""Rest frequency of the 21 cm hyperfine line, Hz."""

_K_B = 1.380649e-23  # J / K
_C = 299792458.0  # m / s


# -- frequency modes ---------------------------------------------------------------------
def frequency_modes(nfreq: int, nk: int, kind: str = "dct") -> np.ndarray:
    """Lowest ``nk`` orthonormal real modes along frequency.

    Parameters
    ----------
    nfreq : int
        Number of (uniformly spaced) channels.
    nk : int
        Number of modes kept, ``1 <= nk <= nfreq``.
    kind : {"dct", "fourier"}
        ``"dct"``: DCT-II, ``B[n, k] = c_k cos(pi k (n + 1/2) / N)`` with
        ``c_0 = sqrt(1/N)``, ``c_k = sqrt(2/N)``. ``"fourier"``: ``1, cos(2 pi n/N),
        sin(2 pi n/N), cos(4 pi n/N), ...`` normalised to unit norm.

    Returns
    -------
    ndarray, shape (nfreq, nk), float64
        Columns orthonormal: ``B^T B = I``.
    """
    if not (isinstance(nfreq, (int, np.integer)) and nfreq >= 1):
        raise InputError(f"frequency_modes: nfreq must be a positive int, received {nfreq!r}")
    if not (isinstance(nk, (int, np.integer)) and 1 <= nk <= nfreq):
        raise InputError(f"frequency_modes: nk must be an int in [1, {nfreq}], received {nk!r}")
    n = np.arange(nfreq)[:, None]
    if kind == "dct":
        k = np.arange(nk)[None, :]
        B = np.sqrt(2.0 / nfreq) * np.cos(np.pi * k * (n + 0.5) / nfreq)
        B[:, 0] = np.sqrt(1.0 / nfreq)
        return B
    if kind == "fourier":
        cols = []
        for j in range(nk):
            m = (j + 1) // 2
            if j == 0:
                col = np.ones(nfreq)
            elif j % 2 == 1:
                col = np.cos(2 * np.pi * m * n[:, 0] / nfreq)
            else:
                col = np.sin(2 * np.pi * m * n[:, 0] / nfreq)
            cols.append(col / np.linalg.norm(col))
        B = np.stack(cols, axis=1)
        if nk > 1 and not np.allclose(B.T @ B, np.eye(nk), atol=1e-10):
            raise InputError(
                f"frequency_modes: {nk} real Fourier modes are not independent on {nfreq} "
                "channels (a sine at the Nyquist frequency vanishes); use fewer modes"
            )
        return B
    raise InputError(f"frequency_modes: kind must be 'dct' or 'fourier', received {kind!r}")


def _mode_index_wavenumber(nk: int, kind: str) -> np.ndarray:
    """Cycles-per-band index of each mode: DCT mode k -> k/2, Fourier pair m -> m."""
    j = np.arange(nk)
    return j / 2.0 if kind == "dct" else (j + 1) // 2 * 1.0


def _check_freqs(freqs: Any, where: str) -> np.ndarray:
    return check_freqs(freqs, "freqs", where)


def _uniform_spacing(f: np.ndarray, where: str) -> float:
    if f.size < 2:
        raise InputError(f"{where}: needs at least 2 channels, received {f.size}")
    d = np.diff(f)
    if not np.allclose(d, d[0], rtol=1e-6, atol=0):
        raise InputError(f"{where}: freqs must be uniformly spaced (spacings {d.min()} to "
                         f"{d.max()} Hz)")
    return float(abs(d[0]))


def mode_k_parallel(freqs: Any, nk: int, kind: str = "dct", cosmo: Any = None) -> np.ndarray:
    """Line-of-sight wavenumber of each frequency mode, Mpc^-1.

    A mode with ``q`` cycles across the band (DCT mode ``k``: ``q = k/2``; Fourier pair
    ``m``: ``q = m``) has ``k_par = 2 pi q / (N dr)`` with ``dr = |dr/dnu| dnu`` the
    comoving channel depth at the band centre (:func:`cosmo_scalars`).

    Parameters
    ----------
    freqs : array, shape (Nfreq,), Hz (uniform spacing)
    nk : int
    kind : {"dct", "fourier"}
    cosmo : astropy.cosmology.Cosmology, optional
        Planck18 by default.

    Returns
    -------
    ndarray, shape (nk,), float64, Mpc^-1
    """
    f = _check_freqs(freqs, "mode_k_parallel")
    dnu = _uniform_spacing(f, "mode_k_parallel")
    _, Y = cosmo_scalars(f, cosmo)
    return 2 * np.pi * _mode_index_wavenumber(nk, kind) / (f.size * dnu * Y)


# -- sky positions -----------------------------------------------------------------------
def healpix_radec(nside: int, pixels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (radians) of HEALPix RING pixel centres (equatorial map).

    Parameters
    ----------
    nside : int
    pixels : array of int, optional
        RING indices (all pixels by default).

    Returns
    -------
    ra, dec : ndarray, shape (Npix,), float64, radians
    """
    import healpy as hp

    pix = np.arange(hp.nside2npix(nside)) if pixels is None else np.asarray(pixels)
    theta, phi = hp.pix2ang(nside, pix)
    return phi, np.pi / 2 - theta


def drift_stripe_pixels(nside: int, dec_center: float, half_width: float) -> np.ndarray:
    """RING pixels whose centres lie in the declination band a drift scan sees.

    Parameters
    ----------
    nside : int
    dec_center : float
        Centre of the stripe (the array latitude for a zenith drift scan), radians.
    half_width : float
        Half-width in declination (e.g. the beam's half-power radius), radians.

    Returns
    -------
    ndarray of int64, sorted RING indices with ``|dec - dec_center| <= half_width``.
    """
    if not half_width > 0:
        raise InputError(f"drift_stripe_pixels: half_width must be > 0, received {half_width}")
    _, dec = healpix_radec(nside)
    return np.nonzero(np.abs(dec - dec_center) <= half_width)[0].astype(np.int64)


def _radec(ra: Any, dec: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    def rad(a: Any) -> np.ndarray:
        return np.asarray(a.to_value("rad") if hasattr(a, "to_value") else a, np.float64)

    ra, dec = rad(ra), rad(dec)
    if ra.ndim != 1 or ra.shape != dec.shape or ra.size == 0:
        raise ShapeError(f"{where}: ra and dec must be 1-D arrays of equal length, received "
                         f"shapes {ra.shape} and {dec.shape}")
    if np.any(np.abs(dec) > np.pi / 2 + 1e-12) or not np.all(np.isfinite(ra)):
        raise InputError(f"{where}: dec must lie in [-pi/2, pi/2] radians (received values up "
                         f"to {np.abs(dec).max():.4g}); pass radians or astropy Quantities")
    return np.mod(ra, 2 * np.pi), np.clip(dec, -np.pi / 2, np.pi / 2)


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


def real_spherical_harmonics(lmax: int, theta: Any, phi: Any, mmax: int | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Real, orthonormal spherical harmonics at the given angles.

    ``Y_l0 = Y_l^0``; for ``m > 0``: ``sqrt(2) Re Y_l^m``; for ``m < 0``:
    ``sqrt(2) Im Y_l^|m|`` (complex ``Y_l^m`` from ``scipy.special``, Condon-Shortley
    phase included), so ``int Y_a Y_b dOmega = delta_ab``. A real map with these
    coefficients ``c`` equals healpy's ``alm2map`` of ``a_l0 = c_l0``,
    ``a_lm = (c_lm - i c_l,-m) / sqrt(2)`` (``m > 0``).

    Parameters
    ----------
    lmax : int
    theta, phi : array, shape (N,)
        Colatitude and azimuth, radians.
    mmax : int, optional
        Largest ``|m|`` (default ``lmax``).

    Returns
    -------
    Y : ndarray, shape (N, Nlm), float64
    lm : ndarray, shape (Nlm, 2), int
        ``(l, m)`` of each column, ordered by ``l`` then ``m`` from ``-min(l, mmax)``.
    """
    import scipy.special as sps

    mmax = lmax if mmax is None else mmax
    if lmax < 0 or not 0 <= mmax <= lmax:
        raise InputError(f"real_spherical_harmonics: need 0 <= mmax <= lmax, received "
                         f"lmax={lmax}, mmax={mmax}")
    theta, phi = np.asarray(theta, np.float64), np.asarray(phi, np.float64)
    if hasattr(sps, "sph_harm_y"):
        def ylm(l: int, m: int) -> np.ndarray:
            return sps.sph_harm_y(l, m, theta, phi)
    else:  # pragma: no cover - scipy < 1.15
        def ylm(l: int, m: int) -> np.ndarray:
            return sps.sph_harm(m, l, phi, theta)
    cols, lm = [], []
    for l in range(lmax + 1):
        mm = min(l, mmax)
        cache = {m: ylm(l, m) for m in range(mm + 1)}
        for m in range(-mm, mm + 1):
            if m == 0:
                cols.append(cache[0].real)
            elif m > 0:
                cols.append(np.sqrt(2.0) * cache[m].real)
            else:
                cols.append(np.sqrt(2.0) * cache[-m].imag)
            lm.append((l, m))
    return np.stack(cols, axis=-1), np.asarray(lm, dtype=np.int64)


# -- the bases ---------------------------------------------------------------------------
class _SignalBasis(LinearOperator):
    """Shared pieces of the ``spatial x frequency`` bases: ``T = S C B^T``."""

    _abstract = True

    def _setup_freq(self, freqs: Any, nk: int, freq_modes: str, where: str) -> np.ndarray:
        self.freqs = _check_freqs(freqs, where)
        self.nk, self.freq_kind = int(nk), freq_modes
        B = frequency_modes(self.freqs.size, nk, freq_modes)
        self.freq_basis = B
        return B

    def k_parallel(self, cosmo: Any = None) -> np.ndarray:
        """Line-of-sight wavenumber of each frequency mode, shape (Nk,), Mpc^-1."""
        return mode_k_parallel(self.freqs, self.nk, self.freq_kind, cosmo)

    def _spatial_dense(self) -> np.ndarray:
        """The spatial matrix ``S`` (Ntarget, Nspace) of ``T = S C B^T``, NumPy."""
        raise NotImplementedError

    def _projected_covariance(self, pk: Callable, cosmo: Any, kperp_max: float | None,
                              max_targets: int) -> np.ndarray:
        """``Cov C[., k] = S^+ xi_k(|x_p - x_q|) S^+T`` (see ``prior_covariance``)."""
        from scipy.special import j0

        where = f"{self.name}.prior_covariance"
        nt = self.ra.size
        if nt > max_targets:
            raise InputError(f"{where}: {nt} targets exceed max_targets={max_targets} "
                             "(the target covariance is dense); raise it or use another method")
        X, _ = cosmo_scalars(self.freqs, cosmo)
        n = _unit_vectors(self.ra, self.dec)
        sep = X * np.sqrt(np.maximum(((n[:, None, :] - n[None, :, :]) ** 2).sum(-1), 0.0))
        pos = sep[sep > 0]
        smin = pos.min() if pos.size else X * 1e-3
        smax = max(sep.max(), smin)
        kmax = np.pi / smin if kperp_max is None else float(kperp_max)
        dk = np.pi / (4 * smax)
        k1 = min(kmax, 4000 * dk)
        kp = np.unique(np.concatenate([np.linspace(0, k1, int(round(k1 / dk)) + 2),
                                       np.geomspace(max(k1, 1e-12), max(kmax, k1), 2000)]))
        sg = np.concatenate([[0.0], np.geomspace(smin / 4, smax * 1.001, 600)])
        J = j0(np.outer(sg, kp))  # (Ns, Nkp)
        Splus = np.linalg.pinv(self._spatial_dense())  # (Nspace, Ntarget)
        peff = self._los_power(pk, kp, cosmo, kmax)  # (Nk, Nkp)
        cov = []
        for k in range(self.nk):
            xi = np.trapezoid(J * (kp * peff[k] / (2 * np.pi))[None, :], kp, axis=1)
            cov.append(Splus @ np.interp(sep, sg, xi) @ Splus.T)
        return np.stack(cov)

    def _los_power(self, pk: Callable, kperp: np.ndarray, cosmo: Any,
                   kmax: float | None = None) -> np.ndarray:
        """Line-of-sight-projected power of each frequency mode, K^2 Mpc^2.

        ``P_k(k_perp) = int dk_z / (2 pi) |B~_k(k_z)|^2 P(sqrt(k_perp^2 + k_z^2))`` with
        ``B~_k(k_z) = sum_n B[n, k] exp(i k_z n dr)`` the mode's line-of-sight window
        (``int dk_z / 2 pi |B~_k|^2 = 1 / dr`` over one alias period), so a coefficient's
        transverse 2-D power is ``P_k``. The ``k_z`` integral runs over
        ``|k_z| <= max(kmax, pi / dr)``: by default the field is taken as band-limited at
        the channel resolution (one alias period; white noise then gives ``P / dr``);
        a larger ``kmax`` adds the aliases of finer line-of-sight structure.

        Returns
        -------
        ndarray, shape (Nk, Nkperp)
        """
        dnu = _uniform_spacing(self.freqs, f"{self.name}.prior_covariance")
        _, Y = cosmo_scalars(self.freqs, cosmo)
        dr = Y * dnu
        nf = self.freqs.size
        kzmax = max(np.pi / dr, 0.0 if kmax is None else float(kmax))
        dkz = 2 * np.pi / (nf * dr) / 16
        kz = np.linspace(0.0, kzmax, int(np.ceil(kzmax / dkz)) + 1)
        win = np.abs(np.exp(1j * np.outer(kz, np.arange(nf) * dr)) @ self.freq_basis) ** 2
        out = np.empty((self.nk, np.size(kperp)))
        for i0 in range(0, np.size(kperp), 256):
            kp = np.asarray(kperp, np.float64)[i0:i0 + 256]
            pkk = np.asarray(pk(np.sqrt(kp[:, None] ** 2 + kz[None, :] ** 2)), np.float64)
            # symmetric in k_z: twice the integral over k_z >= 0
            out[:, i0:i0 + 256] = 2 * np.trapezoid(
                pkk[None, :, :] * win.T[:, None, :], kz, axis=-1) / (2 * np.pi)
        return out


class HealpixFreqBasis(_SignalBasis):
    """Low-resolution HEALPix grid times frequency modes, interpolated to target positions.

    ``T[p, f] = sum_j W[p, j] sum_k C[j, k] B[f, k]``, K.

    Parameters
    ----------
    nside_low : int
        ``nside`` of the coefficient grid (RING ordering, equatorial coordinates).
    ra, dec : array, shape (Ntarget,)
        Target positions (radians or astropy Quantities), e.g. the centres of a
        higher-``nside`` HEALPix region (:func:`healpix_radec`) or point sources.
    freqs : array, shape (Nfreq,)
        Channel frequencies, Hz (uniform spacing for ``k_parallel``/``prior_variance``).
    nk : int
        Number of frequency (line-of-sight) modes kept.
    freq_modes : {"dct", "fourier"}
        See :func:`frequency_modes`.
    interp : {"bilinear", "nearest"}
        ``"bilinear"``: ``healpy.get_interp_weights`` (4 neighbours, weights sum to 1);
        ``"nearest"``: the parent pixel containing the target (weight 1).
    low_pixels : array of int, optional
        RING indices of the coefficient pixels; by default every pixel the targets touch.
        Each target's interpolation neighbours must be in this set.
    dtype : dtype
        Coefficient (and output) dtype: float64 (default) or complex128.
    method : {"auto", "sparse", "gather"}
        How the interpolation is applied: a ``scipy.sparse`` CSR matrix (NumPy only) or
        ``take``/``scatter_add`` on index/weight arrays (any backend). ``"auto"`` picks
        sparse on NumPy. Both give the same numbers.

    Attributes
    ----------
    low_pixels : ndarray (Nlow,) int64
    index, weights : arrays (Ntarget, 4)
        Positions in ``low_pixels`` and weights of each target's neighbours (padding
        entries have weight 0).
    freq_basis : ndarray (Nfreq, Nk)

    Notes
    -----
    Forward and adjoint (``W`` and ``B`` are real)::

        S = C B^T               (Nlow, Nfreq)
        T[p] = sum_j w[p, j] S[index[p, j]]
        adjoint:  G[index[p, j]] += w[p, j] T'[p]   (scatter-add, = W^T T')
                  C' = G B

    ``<W C B^T, T'> = Re tr((W C B^T)^H T') = Re tr(C^H W^T T' B) = <C, W^T T' B>``.
    With ``interp="nearest"`` and every target's parent a distinct set of ``n`` children
    per low pixel, ``W^T W = n I``, so ``A^H A = n I`` on the coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> ra, dec = healpix_radec(8, np.arange(40))
    >>> op = HealpixFreqBasis(4, ra, dec, np.linspace(1e8, 1.1e8, 16), nk=3)
    >>> op.out_shape
    (40, 16)
    """

    _abstract = False

    def __init__(self, nside_low: int, ra: Any, dec: Any, freqs: Any, nk: int,
                 freq_modes: str = "dct", interp: str = "bilinear",
                 low_pixels: Any = None, dtype: Any = np.float64, xp: Any = None,
                 method: str = "auto") -> None:
        import healpy as hp

        where = "HealpixFreqBasis"
        xp = get_xp() if xp is None else xp
        if not hp.isnsideok(nside_low):
            raise InputError(f"{where}: nside_low must be a power of 2, received {nside_low!r}")
        ra, dec = _radec(ra, dec, where)
        theta, phi = np.pi / 2 - dec, ra
        if interp == "bilinear":
            pix, w = hp.get_interp_weights(nside_low, theta, phi)
            pix, w = pix.T.astype(np.int64), w.T.astype(np.float64)
        elif interp == "nearest":
            pix = hp.ang2pix(nside_low, theta, phi)[:, None].astype(np.int64)
            w = np.ones(pix.shape)
        else:
            raise InputError(f"{where}: interp must be 'bilinear' or 'nearest', received "
                             f"{interp!r}")
        w = np.where(np.abs(w) < 1e-15, 0.0, w)  # zero weights: neighbour not needed
        if low_pixels is None:
            low = np.unique(pix[w != 0])
        else:
            low = np.unique(np.asarray(low_pixels, dtype=np.int64))
            missing = np.setdiff1d(pix[w != 0], low)
            if missing.size:
                raise InputError(
                    f"{where}: low_pixels misses {missing.size} pixels the targets "
                    f"interpolate from (e.g. {missing[:5].tolist()}); leave low_pixels=None "
                    "to take them all"
                )
        local = np.searchsorted(low, pix)
        local = np.where(w != 0, np.minimum(local, low.size - 1), 0)
        if method not in ("auto", "sparse", "gather"):
            raise InputError(f"{where}: method must be 'auto', 'sparse' or 'gather', "
                             f"received {method!r}")
        if method == "sparse" and xp is not np:
            raise InputError(f"{where}: method='sparse' needs the numpy backend")
        B = self._setup_freq(freqs, nk, freq_modes, where)
        super().__init__((low.size, nk), (ra.size, self.freqs.size), dtype, dtype, xp=xp,
                         name=where)
        self.nside_low, self.interp, self.low_pixels = int(nside_low), interp, low
        self.ra, self.dec = ra, dec
        self._idx_np, self._w_np = local, w
        self.index, self.weights = asarray(local, xp), asarray(w, xp)
        self._B = asarray(B, xp)
        self.method = ("sparse" if xp is np else "gather") if method == "auto" else method
        if self.method == "sparse":
            self._W = self.interpolation_matrix()
            self._WT = self._W.T.tocsr()

    def interpolation_matrix(self) -> Any:
        """The interpolation matrix ``W`` as ``scipy.sparse.csr_matrix`` (Ntarget, Nlow)."""
        import scipy.sparse as sp

        n, k = self._idx_np.shape
        rows = np.repeat(np.arange(n), k)
        return sp.csr_matrix((self._w_np.ravel(), (rows, self._idx_np.ravel())),
                             shape=(n, self.low_pixels.size))

    def _matvec(self, c: Any) -> Any:
        S = c @ self._B.T  # (Nlow, Nfreq)
        if self.method == "sparse":
            return self._W @ S
        return (self.weights[:, :, None] * self.xp.take(S, self.index, axis=0)).sum(axis=1)

    def _rmatvec(self, t: Any) -> Any:
        if self.method == "sparse":
            G = self._WT @ t
        else:
            nf = t.shape[1]
            G = self.xp.zeros((self.low_pixels.size, nf), dtype=t.dtype)
            vals = (self.weights[:, :, None] * t[:, None, :]).reshape(-1, nf)
            G = scatter_add(G, self.index.reshape(-1), vals, axis=0)
        return G @ self._B  # (Nlow, Nk)

    def _spatial_dense(self) -> np.ndarray:
        return self.interpolation_matrix().toarray()

    def prior_covariance(self, pk: Callable, cosmo: Any = None, method: str = "projection",
                         kperp_max: float | None = None, max_targets: int = 8000
                         ) -> np.ndarray:
        """Prior covariance of the coefficients implied by a 3-D power spectrum, K^2.

        Separable line-of-sight treatment (band-centre distances, no light-cone
        evolution, frequency modes uncorrelated): frequency mode ``k`` sees the projected
        power ``P_k(k_perp) = int dk_z / 2 pi |B~_k(k_z)|^2 P(sqrt(k_perp^2 + k_z^2))``
        (``B~_k`` the mode's window in ``k_z``; ``P / dr`` for white noise, ``dr`` the
        channel depth), and transversely the field at the targets has, for chord
        separation ``s``, the correlation::

            xi_k(s) = int_0^kmax k dk / (2 pi) P_k(k) J0(k s)

        ``method="projection"`` (default): the coefficients are the least-squares
        projection of the target field, ``C = W^+ T``, so
        ``Cov C[., ., k] = W^+ xi_k(S) W^+T`` (dense in the targets: at most
        ``max_targets``). ``kmax`` (``kperp_max``, Mpc^-1) defaults to ``pi / s_min``
        (the targets' own sampling scale); set it to the resolution of the field.

        ``method="disc"``: diagonal, each low pixel a disc of equal area
        ``pi R^2 = Omega_low r_c^2`` averaging the field:
        ``Var = int d^2k / (2 pi)^2 P_k(k) |2 J1(k R) / (k R)|^2``. Cheaper and
        coarser: it models a pixel average, not the point samples the fit sees.

        Parameters
        ----------
        pk : callable
            ``pk(k)`` with ``k`` in Mpc^-1 (array) returning K^2 Mpc^3.
        cosmo : astropy.cosmology.Cosmology, optional (Planck18)
        method : {"projection", "disc"}
        kperp_max : float, optional
        max_targets : int

        Returns
        -------
        ndarray, shape (Nk, Nlow, Nlow), float64, K^2
        """
        if method == "projection":
            return self._projected_covariance(pk, cosmo, kperp_max, max_targets)
        if method != "disc":
            raise InputError(f"{self.name}.prior_covariance: method must be 'projection' or "
                             f"'disc', received {method!r}")
        import healpy as hp
        from scipy.special import j1

        X, _ = cosmo_scalars(self.freqs, cosmo)
        R = X * np.sqrt(hp.nside2pixarea(self.nside_low) / np.pi)
        kp = np.geomspace(1e-4 / R, 200.0 / R, 4000)
        x = kp * R
        win = (2 * j1(x) / x) ** 2

        peff = self._los_power(pk, kp, cosmo)  # (Nk, Nkp)
        f = kp[None, :] * peff * win[None, :] / (2 * np.pi)
        # int f dk = int k f dln k, plus the small-k end (f ~ const k)
        v = np.trapezoid(f * kp, np.log(kp), axis=1) + f[:, 0] * kp[0] / 2
        eye = np.eye(self.low_pixels.size)
        return v[:, None, None] * eye[None]

    def prior_variance(self, pk: Callable, cosmo: Any = None, **kwargs: Any) -> np.ndarray:
        """Diagonal of :meth:`prior_covariance`, shape (Nlow, Nk), K^2."""
        cov = self.prior_covariance(pk, cosmo, **kwargs)
        return np.diagonal(cov, axis1=1, axis2=2).T.copy()


class SphericalHarmonicFreqBasis(_SignalBasis):
    """Real spherical harmonics times frequency modes at target positions.

    ``T[p, f] = sum_lm Y_lm(p) sum_k C[lm, k] B[f, k]``, K.

    Parameters
    ----------
    lmax : int
    ra, dec : array, shape (Ntarget,)
        Target positions, typically the pixels of the drift-scan stripe
        (:func:`drift_stripe_pixels`, :func:`healpix_radec`), radians.
    freqs : array, shape (Nfreq,), Hz
    nk : int
    freq_modes : {"dct", "fourier"}
    mmax : int, optional
        Largest ``|m|`` kept (default ``lmax``).
    orthonormalize : bool
        Replace the ``Y_lm`` columns by an orthonormal basis of their span over the target
        pixels (``Y = Q R``, thin QR; the basis is ``Q``, ``Q^T Q = I``), so that the
        adjoint inverts the operator on its range. Over a partial-sky stripe the ``Y_lm``
        are not orthogonal and can be ill-conditioned; this fixes both.
    dtype : dtype
        float64 (default) or complex128.

    Attributes
    ----------
    lm : ndarray (Nlm, 2) int
        ``(l, m)`` of each raw ``Y_lm`` column (see :func:`real_spherical_harmonics`).
    matrix : ndarray (Ntarget, Nlm)
        The spatial matrix used (``Y`` or ``Q``), on the backend.
    R : ndarray (Nlm, Nlm) or None
        The triangular factor when ``orthonormalize`` (``C_Y = R^-1 C_Q``).

    Notes
    -----
    Dense mode matrices are built once; ``T = M C B^T`` and ``C' = M^T T' B`` (both
    real), since ``Re tr((M C B^T)^H T') = Re tr(C^H M^T T' B)``.
    """

    _abstract = False

    def __init__(self, lmax: int, ra: Any, dec: Any, freqs: Any, nk: int,
                 freq_modes: str = "dct", mmax: int | None = None,
                 orthonormalize: bool = False, dtype: Any = np.float64,
                 xp: Any = None) -> None:
        where = "SphericalHarmonicFreqBasis"
        xp = get_xp() if xp is None else xp
        ra, dec = _radec(ra, dec, where)
        Y, lm = real_spherical_harmonics(lmax, np.pi / 2 - dec, ra, mmax)
        R = None
        if orthonormalize:
            if ra.size < Y.shape[1]:
                raise InputError(f"{where}: orthonormalize needs at least as many targets "
                                 f"({ra.size}) as harmonics ({Y.shape[1]})")
            Q, R = np.linalg.qr(Y)
            cond = np.abs(np.diag(R))
            if cond.min() <= 1e-10 * cond.max():
                raise InputError(
                    f"{where}: the Y_lm are linearly dependent over these {ra.size} targets "
                    f"(|R_ii| ratio {cond.min() / cond.max():.2g}); lower lmax/mmax or widen "
                    "the stripe"
                )
            M = Q
        else:
            M = Y
        B = self._setup_freq(freqs, nk, freq_modes, where)
        super().__init__((lm.shape[0], nk), (ra.size, self.freqs.size), dtype, dtype, xp=xp,
                         name=where)
        self.lmax, self.mmax = int(lmax), int(lmax if mmax is None else mmax)
        self.lm, self.R, self.orthonormalize = lm, R, bool(orthonormalize)
        self.ra, self.dec = ra, dec
        self._M_np = M
        self.matrix = asarray(M, xp)
        self._MT = asarray(np.ascontiguousarray(M.T), xp)
        self._B = asarray(B, xp)

    def _matvec(self, c: Any) -> Any:
        return self.matrix @ (c @ self._B.T)

    def _rmatvec(self, t: Any) -> Any:
        return (self._MT @ t) @ self._B

    def _spatial_dense(self) -> np.ndarray:
        return self._M_np

    def prior_covariance(self, pk: Callable, cosmo: Any = None, method: str = "harmonic",
                         kperp_max: float | None = None, max_targets: int = 8000
                         ) -> np.ndarray:
        """Prior covariance of the coefficients for each frequency mode, K^2.

        ``method="projection"``: as :meth:`HealpixFreqBasis.prior_covariance` (least-squares
        projection of the target field's correlation, ``M^+ xi_k(S) M^+T``).

        ``method="harmonic"`` (default): flat-sky, thin-shell relation at the
        band-centre distance ``r_c``: the raw ``Y_lm`` coefficient of frequency mode
        ``k`` has variance ``C_l,k = P_k((l + 1/2) / r_c) / r_c^2``, independent of
        ``m`` and uncorrelated, with ``P_k`` the mode's line-of-sight-projected power
        (``_los_power``: ``P(sqrt(k_perp^2 + k_z^2))`` weighted by the mode's window in
        ``k_z``; ``P / dr`` for white noise). With ``orthonormalize`` the coefficients are
        ``R C_Y``, with covariance ``R diag(C_l,k) R^T``.

        Parameters
        ----------
        pk : callable
            ``pk(k)``, k in Mpc^-1, returning K^2 Mpc^3.
        cosmo : astropy.cosmology.Cosmology, optional

        Returns
        -------
        ndarray, shape (Nk, Nlm, Nlm), float64, K^2
        """
        if method == "projection":
            return self._projected_covariance(pk, cosmo, kperp_max, max_targets)
        if method != "harmonic":
            raise InputError(f"{self.name}.prior_covariance: method must be 'harmonic' or "
                             f"'projection', received {method!r}")
        X, _ = cosmo_scalars(self.freqs, cosmo)
        kperp = (self.lm[:, 0] + 0.5) / X
        diag = self._los_power(pk, kperp, cosmo).T / X**2  # (Nlm, Nk)
        cov = np.stack([np.diag(diag[:, k]) for k in range(self.nk)])
        if self.R is not None:
            cov = self.R[None] @ cov @ self.R.T[None]
        return cov

    def prior_variance(self, pk: Callable, cosmo: Any = None, **kwargs: Any) -> np.ndarray:
        """Diagonal of :meth:`prior_covariance`, shape (Nlm, Nk), K^2."""
        cov = self.prior_covariance(pk, cosmo, **kwargs)
        return np.diagonal(cov, axis1=1, axis2=2).T.copy()


def dense_coefficient_covariance(cov_blocks: Any) -> np.ndarray:
    """Full covariance of the flattened coefficients from per-mode blocks.

    Coefficients ``C`` of shape ``(Nspace, Nk)`` flatten (C order) to index
    ``j * Nk + k``; modes are uncorrelated, so the result is
    ``Cov[j Nk + k, j' Nk + k'] = delta_kk' cov_blocks[k, j, j']``. Feed it to
    ``linlim.priors.GaussianPrior(cov=...)``.

    Parameters
    ----------
    cov_blocks : array, shape (Nk, Nspace, Nspace), K^2
        From ``basis.prior_covariance(pk)``.

    Returns
    -------
    ndarray, shape (Nspace * Nk, Nspace * Nk), float64, K^2
    """
    c = np.asarray(cov_blocks, np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2]:
        raise ShapeError(f"dense_coefficient_covariance: expected (Nk, Ns, Ns), received "
                         f"{c.shape}")
    nk, ns = c.shape[0], c.shape[1]
    out = np.zeros((ns, nk, ns, nk))
    for k in range(nk):
        out[:, k, :, k] = c[k]
    return out.reshape(ns * nk, ns * nk)


# -- units -------------------------------------------------------------------------------
def rayleigh_jeans_factor(freqs: Any) -> np.ndarray:
    """Jy/sr per K in the Rayleigh-Jeans limit, ``2 k_B nu^2 / c^2 * 1e26``.

    Parameters
    ----------
    freqs : array, shape (Nfreq,), Hz

    Returns
    -------
    ndarray, shape (Nfreq,), float64, Jy sr^-1 K^-1
    """
    f = _check_freqs(freqs, "rayleigh_jeans_factor")
    return 2 * _K_B * f**2 / _C**2 * 1e26


def kelvin_to_jy_per_pixel(npix: int, freqs: Any, pixel_solid_angle: Any,
                           dtype: Any = np.float64, xp: Any = None) -> Diagonal:
    """Linear operator from brightness temperature (K) to intensity per pixel (Jy).

    ``I[p, f] = T[p, f] * 2 k_B nu_f^2 / c^2 * Omega_p * 1e26``: compose it after a signal
    basis to feed the visibility operator (``I[s, f]``, Jy).

    Parameters
    ----------
    npix : int
        Number of pixels (rows of ``T``).
    freqs : array, shape (Nfreq,), Hz
    pixel_solid_angle : float or array (npix,)
        Solid angle of each pixel, sr (``healpy.nside2pixarea(nside)`` for HEALPix).
    dtype : dtype
        Input dtype.

    Returns
    -------
    Diagonal
        ``(npix, Nfreq) -> (npix, Nfreq)``.
    """
    om = np.asarray(pixel_solid_angle, dtype=np.float64)
    if om.ndim > 1 or (om.ndim == 1 and om.size != npix) or np.any(om <= 0):
        raise InputError(f"kelvin_to_jy_per_pixel: pixel_solid_angle must be a positive "
                         f"scalar or ({npix},) array, received shape {om.shape}")
    fac = rayleigh_jeans_factor(freqs)[None, :] * (om[:, None] if om.ndim else om)
    return Diagonal(fac, in_shape=(npix, fac.shape[1]), in_dtype=dtype, xp=xp)


# -- cosmology ---------------------------------------------------------------------------
def _cosmo(cosmo: Any) -> Any:
    if cosmo is None:
        from astropy.cosmology import Planck18

        return Planck18
    return cosmo


def redshift_of(freqs: Any) -> np.ndarray:
    """21 cm redshift ``z = nu_21 / nu - 1`` of frequencies in Hz."""
    return F21_HZ / _check_freqs(freqs, "redshift_of") - 1.0


def comoving_distance(freqs: Any, cosmo: Any = None) -> np.ndarray:
    """Line-of-sight comoving distance to 21 cm emission at ``freqs`` (Hz), Mpc.

    Parameters
    ----------
    freqs : array (Nfreq,), Hz (must be below 1420.405751768 MHz)
    cosmo : astropy.cosmology.Cosmology, optional (Planck18)

    Returns
    -------
    ndarray (Nfreq,), float64, Mpc
    """
    z = redshift_of(freqs)
    if np.any(z < 0):
        raise InputError("comoving_distance: freqs must be below the 21 cm rest frequency "
                         f"{F21_HZ} Hz")
    return np.asarray(_cosmo(cosmo).comoving_distance(z).to_value("Mpc"), dtype=np.float64)


def cosmo_scalars(freqs: Any, cosmo: Any = None) -> tuple[float, float]:
    """Conversion scalars at the band centre.

    Returns
    -------
    X : float
        Transverse comoving distance ``D_M(z_c)``, Mpc per radian.
    Y : float
        ``|dr/dnu| = c (1 + z_c)^2 / (H(z_c) nu_21)``, Mpc per Hz.
    """
    f = _check_freqs(freqs, "cosmo_scalars")
    c = _cosmo(cosmo)
    zc = F21_HZ / (0.5 * (f.min() + f.max())) - 1.0
    X = float(c.comoving_transverse_distance(zc).to_value("Mpc"))
    Y = float(_C / 1e3 * (1 + zc) ** 2 / (c.H(zc).to_value("km/(s Mpc)") * F21_HZ))
    return X, Y


# -- Gaussian random fields --------------------------------------------------------------
def _box_k(shape: tuple, box_size: tuple, real: bool) -> np.ndarray:
    ks = []
    for i, (n, L) in enumerate(zip(shape, box_size)):
        d = L / n
        if real and i == len(shape) - 1:
            ks.append(2 * np.pi * np.fft.rfftfreq(n, d))
        else:
            ks.append(2 * np.pi * np.fft.fftfreq(n, d))
    grids = np.meshgrid(*ks, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))


def _box_args(shape: Any, box_size: Any, where: str) -> tuple[tuple, tuple]:
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    L = np.broadcast_to(np.asarray(box_size, np.float64), (len(shape),))
    if len(shape) != 3 or min(shape) < 2 or np.any(L <= 0):
        raise InputError(f"{where}: need a 3-D shape of sizes >= 2 and positive box sizes, "
                         f"received shape {shape}, box_size {tuple(L)}")
    return shape, tuple(float(v) for v in L)


def gaussian_random_box(pk: Callable, shape: Any, box_size: Any,
                        rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with power spectrum ``P(k)`` on a periodic box.

    With ``delta_k = dV sum_x delta(x) exp(-i k.x)`` the convention is
    ``<|delta_k|^2> = V P(k)``. The field is ``delta = IFFT(FFT(w) sqrt(P(k) / dV))``
    with ``w`` unit white noise; the ``k = 0`` mode is set to zero (zero mean).

    Parameters
    ----------
    pk : callable
        ``pk(k)``, ``k`` in Mpc^-1 (array), returning K^2 Mpc^3.
    shape : tuple of 3 int
        Cells per axis.
    box_size : float or tuple of 3 float
        Side lengths, Mpc (cells may be anisotropic).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape ``shape``, float64, K
    """
    shape, L = _box_args(shape, box_size, "gaussian_random_box")
    dV = float(np.prod([l / n for l, n in zip(L, shape)]))
    k = _box_k(shape, L, real=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = np.sqrt(np.where(k > 0, np.asarray(pk(np.where(k > 0, k, 1.0))), 0.0) / dV)
    if not np.all(np.isfinite(amp)) or np.any(amp < 0):
        raise InputError("gaussian_random_box: pk(k) must be finite and >= 0 for k > 0")
    wk = np.fft.rfftn(rng.standard_normal(shape))
    return np.fft.irfftn(wk * amp, s=shape, axes=(0, 1, 2))


def box_power_spectrum(field: Any, box_size: Any, k_edges: Any
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spherically averaged power spectrum of a box, with sample-variance errors.

    ``P_hat(k_b) = mean_{k in bin b} |delta_k|^2 / V``. For a Gaussian field each
    ``|delta_k|^2 / V`` is exponential with mean ``P`` and the modes ``k`` and ``-k`` are
    the same, so the error of the bin mean is ``P_hat / sqrt(N_b / 2)``.

    Parameters
    ----------
    field : array, shape (Nx, Ny, Nz), K
    box_size : float or tuple of 3 floats, Mpc
    k_edges : array (Nbins + 1,), Mpc^-1

    Returns
    -------
    k_mean : (Nbins,) mean |k| of the modes in each bin (nan if empty)
    power : (Nbins,) K^2 Mpc^3
    error : (Nbins,) K^2 Mpc^3
    nmodes : (Nbins,) int, Fourier modes counted (each +-k pair twice)
    """
    f = np.asarray(field, np.float64)
    shape, L = _box_args(f.shape, box_size, "box_power_spectrum")
    dV = float(np.prod([l / n for l, n in zip(L, shape)]))
    V = float(np.prod(L))
    p = (np.abs(np.fft.fftn(f)) * dV) ** 2 / V
    k = np.broadcast_to(_box_k(shape, L, real=False), shape)
    edges = np.asarray(k_edges, np.float64)
    b = np.digitize(k.ravel(), edges) - 1
    ok = (b >= 0) & (b < edges.size - 1) & (k.ravel() > 0)
    nb = edges.size - 1
    n = np.bincount(b[ok], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.bincount(b[ok], p.ravel()[ok], minlength=nb) / n
        kmean = np.bincount(b[ok], k.ravel()[ok], minlength=nb) / n
        err = power / np.sqrt(n / 2.0)
    return kmean, power, err, n


def gaussian_random_sky(pk: Callable, ra: Any, dec: Any, freqs: Any,
                        rng: np.random.Generator, cosmo: Any = None,
                        cell_size: Any = None, pad: float = 0.1,
                        max_cells: int = 2**25) -> np.ndarray:
    """Mock 21 cm signal ``T[p, f]`` (K) at sky positions over the band.

    Each (pixel, channel) sits at its comoving position ``r(nu) n_hat`` (astropy
    cosmology), expressed in a Cartesian frame whose third axis points at the mean
    direction of the targets. A periodic box covering those positions (plus ``pad`` of
    its extent on each side) is drawn with :func:`gaussian_random_box` and sampled by
    trilinear interpolation.

    Approximations: one ``P(k)`` for the whole band (no light-cone evolution); periodic
    box (modes longer than the box are missing); trilinear interpolation smooths the
    field at the cell scale, so choose ``cell_size`` below the pixel spacing and the
    channel depth.

    Parameters
    ----------
    pk : callable
        ``pk(k)``, Mpc^-1 -> K^2 Mpc^3.
    ra, dec : array (Npix,), radians (or Quantities)
    freqs : array (Nfreq,), Hz
    rng : numpy.random.Generator
    cosmo : astropy.cosmology.Cosmology, optional (Planck18)
    cell_size : float or (3,) floats, Mpc, optional
        Cell sizes (transverse, transverse, line of sight); default: the channel depth
        ``|dr/dnu| dnu`` on every axis.
    pad : float
        Extra box length on each side, as a fraction of the extent.
    max_cells : int
        Refuse boxes larger than this (memory guard).

    Returns
    -------
    ndarray, shape (Npix, Nfreq), float64, K (NumPy; move it to the device yourself)
    """
    from scipy.ndimage import map_coordinates

    where = "gaussian_random_sky"
    ra, dec = _radec(ra, dec, where)
    f = _check_freqs(freqs, where)
    r = comoving_distance(f, cosmo)
    n = _unit_vectors(ra, dec)
    ez = n.mean(axis=0)
    if np.linalg.norm(ez) < 1e-3:
        raise InputError(f"{where}: targets span the whole sky; the box method needs a patch")
    ez /= np.linalg.norm(ez)
    ex = np.cross([0.0, 0.0, 1.0], ez)
    if np.linalg.norm(ex) < 1e-8:
        ex = np.array([1.0, 0.0, 0.0])
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    pos = (n @ np.stack([ex, ey, ez], axis=1))[:, None, :] * r[None, :, None]  # (P, F, 3)
    lo, hi = pos.reshape(-1, 3).min(0), pos.reshape(-1, 3).max(0)
    ext = hi - lo
    if cell_size is None:
        dnu = _uniform_spacing(f, where) if f.size > 1 else 1e5
        cell = np.full(3, cosmo_scalars(f, cosmo)[1] * dnu)
    else:
        cell = np.broadcast_to(np.asarray(cell_size, np.float64), (3,)).copy()
    if np.any(cell <= 0):
        raise InputError(f"{where}: cell_size must be positive, received {cell}")
    L = ext * (1 + 2 * pad) + 2 * cell
    shape = np.maximum(np.ceil(L / cell).astype(int), 2)
    if int(np.prod(shape)) > max_cells:
        raise InputError(f"{where}: the box would have {tuple(shape)} cells (> max_cells "
                         f"{max_cells}); use a larger cell_size or a smaller patch")
    L = shape * cell
    box = gaussian_random_box(pk, tuple(shape), tuple(L), rng)
    origin = lo - (L - ext) / 2
    coords = ((pos - origin) / cell).reshape(-1, 3).T
    vals = map_coordinates(box, coords, order=1, mode="grid-wrap")
    return vals.reshape(ra.size, f.size)
