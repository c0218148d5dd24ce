"""Diffuse foregrounds: a low-resolution HEALPix map times a few smooth spectral modes.

The model, linear in its amplitudes ``a[p, m]`` (K)::

    T(p, f)  = sum_m a[p, m] phi_m(f)                          (K, Rayleigh-Jeans)
    I[p, f]  = T(p, f) * 2 k_B f^2 / c^2 * 1e26 * Omega_pix      (Jy per pixel)

with ``phi_m(f) = (f / f0)^beta0 ln(f / f0)^m`` (log-polynomial modes about a power law
of index ``beta0``; a map ``T0 (f/f0)^(beta0 + dbeta(p))`` is ``sum_m T0 dbeta^m / m!``
times these modes, so a few of them absorb a spatially varying spectral index), or any
user-given global spectral modes (e.g. the leading SVD modes of a sky model's spectra,
:func:`global_spectral_modes`). Each pixel is a source for the RIME at its centre
(``ra``, ``dec`` ICRS; a galactic map's pixel centres are converted with astropy), as in
:mod:`linlim.sky.healpix`.

:class:`DiffuseSky` is a :class:`~linlim.operators.linear.MatrixMult` along the mode axis
(adjoint, JVP, VJP and ``linearize`` come with it); :func:`synthetic_foreground_sky` makes
the default scenario's synthetic sky (no download).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, ShapeError
from ..operators.linear import MatrixMult
from ..units import healpix_pixel_centres, pixel_solid_angle, rayleigh_jeans_factor
from .spectra import validate_freqs, validate_ref_freq

__all__ = [
    "log_polynomial_modes",
    "global_spectral_modes",
    "DiffuseSky",
    "synthetic_foreground_sky",
]

_KINDS = ("logpoly", "custom")


def log_polynomial_modes(freqs: Any, ref_freq: float, n_modes: int,
                         beta0: float = -2.55) -> np.ndarray:
    """Spectral modes ``phi_m(f) = (f / f0)^beta0 ln(f / f0)^m``, ``m = 0 .. n_modes-1``.

    Parameters
    ----------
    freqs : array (Nfreq,), Hz
    ref_freq : float, Hz
    n_modes : int, >= 1
    beta0 : float
        Brightness-temperature spectral index of the zeroth mode.

    Returns
    -------
    ndarray (Nfreq, n_modes), float64, dimensionless
    """
    f = validate_freqs(freqs)
    f0 = validate_ref_freq(ref_freq)
    if not (isinstance(n_modes, (int, np.integer)) and n_modes >= 1):
        raise InputError(f"log_polynomial_modes: n_modes must be an int >= 1, received "
                         f"{n_modes!r}")
    x = np.log(f / f0)
    return (f / f0)[:, None] ** float(beta0) * x[:, None] ** np.arange(n_modes)[None, :]


def global_spectral_modes(spectra: Any, n_modes: int) -> np.ndarray:
    """Leading right-singular vectors of a set of spectra (global spectral modes).

    Parameters
    ----------
    spectra : array (Nspec, Nfreq)
        E.g. a sky model's pixel spectra ``T(p, f)`` (K).
    n_modes : int

    Returns
    -------
    ndarray (Nfreq, n_modes), orthonormal columns, sign fixed so each mode's largest
    entry is positive.
    """
    s = np.asarray(spectra, dtype=np.float64)
    if s.ndim != 2 or not np.all(np.isfinite(s)):
        raise InputError(f"global_spectral_modes: spectra must be a finite (Nspec, Nfreq) "
                         f"array, received shape {s.shape}")
    if not (isinstance(n_modes, (int, np.integer)) and 1 <= n_modes <= min(s.shape)):
        raise InputError(f"global_spectral_modes: n_modes must be in [1, {min(s.shape)}], "
                         f"received {n_modes!r}")
    _, _, vt = np.linalg.svd(s, full_matrices=False)
    V = vt[:n_modes].T
    sign = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(n_modes)])
    return V * sign[None, :]


class DiffuseSky(MatrixMult):
    """Pixel intensities (Jy) of a HEALPix map times smooth spectral modes, linear.

    ``I[p, f] = sum_m a[p, m] phi_m(f) K_RJ(f) Omega_pix`` with ``a`` (Npix, Nmodes) in K.

    Parameters
    ----------
    nside : int
        HEALPix resolution of the map (RING ordering).
    freqs : array (Nfreq,), Hz
    ref_freq : float, Hz
        ``f0`` of the log-polynomial modes (default: the band centre).
    n_modes : int
        Number of log-polynomial modes (``kind="logpoly"``).
    beta0 : float
        Temperature spectral index of the zeroth mode (synchrotron-like -2.55).
    pixels : array of int, optional
        RING indices modelled (default: every pixel), e.g. those above the horizon.
    frame : {"icrs", "galactic"}
        Frame of the pixelisation; :attr:`ra`/:attr:`dec` are ICRS either way.
    spectral_modes : array (Nfreq, Nmodes), optional
        Use these modes instead (``kind="custom"``; e.g. :func:`global_spectral_modes`).
    dtype : dtype
        Amplitude dtype (float64; complex128 for the operator checks).

    Attributes
    ----------
    modes : ndarray (Nfreq, Nmodes)
        ``phi_m(f)``, dimensionless.
    jy_per_kelvin : ndarray (Nfreq,)
        ``K_RJ(f) Omega_pix``, Jy per K per pixel.
    ra : ndarray (Npix,)
        ICRS right ascension of the pixel centres, radians.
    dec : ndarray (Npix,)
        ICRS declination of the pixel centres, radians.
    pixels : ndarray (Npix,) int64

    Notes
    -----
    A :class:`~linlim.operators.linear.MatrixMult` with ``M[f, m] = phi_m(f) K_RJ(f)
    Omega_pix`` along axis 1 of ``a``; its adjoint is ``a'[p, m] = sum_f M[f, m] I'[p, f]``.

    Examples
    --------
    >>> import numpy as np
    >>> op = DiffuseSky(2, np.linspace(1.0e8, 1.2e8, 5), n_modes=3)
    >>> op.in_shape, op.out_shape
    ((48, 3), (48, 5))
    """

    _abstract = False

    def __init__(self, nside: int, freqs: Any, ref_freq: float | None = None,
                 n_modes: int = 3, beta0: float = -2.55, pixels: Any = None,
                 frame: str = "icrs", spectral_modes: Any = None,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        where = "DiffuseSky"
        f = validate_freqs(freqs)
        f0 = 0.5 * (f.min() + f.max()) if ref_freq is None else validate_ref_freq(ref_freq)
        if spectral_modes is None:
            phi = log_polynomial_modes(f, f0, n_modes, beta0)
            kind = "logpoly"
        else:
            phi = np.asarray(spectral_modes, dtype=np.float64)
            if phi.ndim != 2 or phi.shape[0] != f.size or not np.all(np.isfinite(phi)):
                raise ShapeError(f"{where}: spectral_modes must be a finite ({f.size}, "
                                 f"Nmodes) array, received shape {phi.shape}")
            kind = "custom"
        ra, dec = healpix_pixel_centres(nside, frame=frame)
        npix_all = ra.size
        if pixels is None:
            pix = np.arange(npix_all, dtype=np.int64)
        else:
            pix = np.asarray(pixels, dtype=np.int64).ravel()
            if pix.size == 0 or pix.min() < 0 or pix.max() >= npix_all \
                    or np.unique(pix).size != pix.size:
                raise InputError(f"{where}: pixels must be distinct RING indices in [0, "
                                 f"{npix_all}) for nside={nside}, received "
                                 f"{pix.size} values in [{pix.min() if pix.size else '-'}, "
                                 f"{pix.max() if pix.size else '-'}]")
        jy = rayleigh_jeans_factor(f) * pixel_solid_angle(nside)
        M = phi * jy[:, None]
        super().__init__(M, in_shape=(pix.size, phi.shape[1]), axis=1, in_dtype=dtype, xp=xp)
        self.name = where
        self.nside, self.freqs, self.ref_freq, self.beta0 = int(nside), f, f0, float(beta0)
        self.kind, self.frame = kind, frame
        self.modes, self.jy_per_kelvin = phi, jy
        self.pixels = pix
        self.ra, self.dec = ra[pix], dec[pix]
        self.n_modes = phi.shape[1]

    def __repr__(self) -> str:
        return (f"DiffuseSky(nside={self.nside}, Npix={self.pixels.size}, "
                f"Nmodes={self.n_modes} ({self.kind}), Nfreq={self.freqs.size})")

    def temperature(self, a: Any) -> np.ndarray:
        """Brightness temperature ``T = a phi^T`` (Npix, Nfreq), K (NumPy)."""
        a = np.asarray(a, dtype=np.float64)
        if a.shape != self.in_shape:
            raise ShapeError(f"{self.name}.temperature: expected amplitudes of shape "
                             f"{self.in_shape}, received {a.shape}")
        return a @ self.modes.T

    def fit_amplitudes(self, temperature: Any) -> np.ndarray:
        """Least-squares amplitudes (Npix, Nmodes), K, of maps ``T`` (Npix, Nfreq) in K.

        Per pixel, ``a = argmin |T - a phi^T|^2`` (the model's best approximation, e.g.
        the truth of a synthetic sky for a demo or a starting point for a fit)."""
        T = np.asarray(temperature, dtype=np.float64)
        if T.shape != (self.pixels.size, self.freqs.size):
            raise ShapeError(f"{self.name}.fit_amplitudes: expected maps of shape "
                             f"{(self.pixels.size, self.freqs.size)}, received {T.shape}")
        sol, *_ = np.linalg.lstsq(self.modes, T.T, rcond=None)
        return sol.T


def synthetic_foreground_sky(nside: int, freqs: Any, rng: Any = None, *,
                             ref_freq: float | None = None, **kwargs: Any
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The default scenario's synthetic diffuse sky, made in-project (no download).

    A galaxy-like map from :func:`linlim.sky.foregrounds.synthetic_diffuse_sky` (log-normal
    fluctuations with ``C_ell ~ ell^-2.5``, a galactic-plane enhancement, spectral index
    ``-2.55`` varying across the sky with rms 0.05), evaluated at ``freqs``.

    Parameters
    ----------
    nside : int
    freqs : array (Nfreq,), Hz
    rng : numpy.random.Generator or int, optional
    ref_freq : float, Hz, optional
        Reference frequency of the map (default: the band centre).
    **kwargs
        Passed to ``synthetic_diffuse_sky`` (``mean_temperature``, ``index_rms``, ...).

    Returns
    -------
    temperature : ndarray (Npix, Nfreq), K
        RING order, galactic pixelisation (use ``DiffuseSky(..., frame="galactic")``).
    ra, dec : ndarray (Npix,), radians, ICRS pixel centres
    """
    from .foregrounds import synthetic_diffuse_sky

    f = validate_freqs(freqs)
    f0 = 0.5 * (f.min() + f.max()) if ref_freq is None else validate_ref_freq(ref_freq)
    sky = synthetic_diffuse_sky(nside, rng, ref_freq=f0, **kwargs)
    return sky.map_values(f), sky.ra, sky.dec
