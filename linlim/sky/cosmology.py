"""21 cm cosmology: redshift, comoving distance and the X, Y conversion scalars.

``z = nu_21 / nu - 1``; :func:`comoving_distance` is astropy's line-of-sight comoving
distance (Planck18 by default); :func:`cosmo_scalars` gives the band-centre transverse
distance ``X = D_M(z_c)`` (Mpc/rad) and ``Y = |dr/dnu| = c (1 + z_c)^2 / (H(z_c) nu_21)``
(Mpc/Hz) that turn angles and frequencies into comoving lengths. Also the frequency-array
checks the signal modules share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..units import F21_HZ, SPEED_OF_LIGHT
from ..validation import check_freqs

__all__ = ["F21_HZ", "redshift_of", "comoving_distance", "cosmo_scalars"]


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
    Y = float(SPEED_OF_LIGHT / 1e3 * (1 + zc) ** 2 / (c.H(zc).to_value("km/(s Mpc)") * F21_HZ))
    return X, Y
