"""Sky-position geometry of the signal bases: HEALPix pixel centres, drift-scan stripes,
RA/Dec checks, unit vectors and real spherical harmonics."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, ShapeError
from ..units import healpix_pixel_centres

__all__ = ["healpix_radec", "drift_stripe_pixels", "real_spherical_harmonics"]


def healpix_radec(nside: int, pixels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (radians) of HEALPix RING pixel centres (equatorial map).

    Same as :func:`linlim.units.healpix_pixel_centres` (``frame="icrs"``).

    Parameters
    ----------
    nside : int
    pixels : array of int, optional
        RING indices (all pixels by default).

    Returns
    -------
    ra, dec : ndarray, shape (Npix,), float64, radians
    """
    return healpix_pixel_centres(nside, pixels)


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
