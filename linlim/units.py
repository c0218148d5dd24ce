"""Physical constants and unit conversions, defined once for all of linlim.

* :data:`SPEED_OF_LIGHT` (m/s), :data:`K_BOLTZMANN` (J/K), :data:`F21_HZ` (Hz),
  :data:`JY` (W m^-2 Hz^-1): exact SI / CODATA values, the ones astropy and pyuvdata use.
* :data:`MIN_FREQ_HZ`: the smallest frequency linlim accepts as being in Hz (1 MHz).
  Radio frequencies given in MHz or GHz by mistake (150, 0.15) fall below it. (Two values
  existed, 1e3 in ``sky.spectra`` and 1e6 in ``beam.base``; 1e6 catches MHz values up to
  1e6 MHz and no radio-interferometric band lies below 1 MHz, so 1e6 is the one kept.)
* Brightness: :func:`rayleigh_jeans_factor` (Jy/sr per K), :func:`kelvin_to_jy_per_sr`,
  :func:`jy_per_sr_to_kelvin` (Rayleigh-Jeans, as astropy's
  ``u.brightness_temperature`` equivalency).
* HEALPix geometry: :func:`healpix_pixel_centres` (ICRS RA/Dec of RING or NESTED pixel
  centres, galactic maps converted with astropy), :func:`pixel_solid_angle`,
  :func:`galactic_to_icrs`.

This module sits at the bottom of the package (beside ``backend``): it imports
:mod:`linlim.errors` and, inside :func:`rayleigh_jeans_factor`, the frequency checker of
:mod:`linlim.validation` (same layer; that module imports this one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "SPEED_OF_LIGHT",
    "K_BOLTZMANN",
    "F21_HZ",
    "JY",
    "MIN_FREQ_HZ",
    "rayleigh_jeans_factor",
    "kelvin_to_jy_per_sr",
    "jy_per_sr_to_kelvin",
    "pixel_solid_angle",
    "galactic_to_icrs",
    "healpix_pixel_centres",
]

#: Speed of light in vacuum, m/s (exact).
SPEED_OF_LIGHT = 299792458.0
#: Boltzmann constant, J/K (exact, SI 2019).
K_BOLTZMANN = 1.380649e-23
#: Rest frequency of the 21 cm hyperfine line of neutral hydrogen, Hz.
F21_HZ = 1420.405751768e6
#: One jansky, W m^-2 Hz^-1.
JY = 1e-26
#: Smallest frequency accepted as Hz (see the module notes).
MIN_FREQ_HZ = 1.0e6


def rayleigh_jeans_factor(freqs: Any) -> np.ndarray:
    """Jy/sr per kelvin of Rayleigh-Jeans brightness temperature, ``2 k_B f^2 / c^2 / 1e-26``.

    Parameters
    ----------
    freqs : array_like (Nfreq,), Hz (or an astropy Quantity)

    Returns
    -------
    ndarray (Nfreq,), float64, Jy sr^-1 K^-1
        E.g. 6.9e5 at 150 MHz (astropy's ``u.brightness_temperature`` agrees to 1e-12).
    """
    from .validation import check_freqs  # same layer; imported late (it imports units)

    f = check_freqs(freqs, "freqs", "rayleigh_jeans_factor")
    return 2.0 * K_BOLTZMANN * f * f / (SPEED_OF_LIGHT * SPEED_OF_LIGHT) / JY


def kelvin_to_jy_per_sr(temperature: Any, freqs: Any) -> np.ndarray:
    """Surface brightness (Jy/sr) of a Rayleigh-Jeans temperature (K) at ``freqs`` (Hz).

    ``temperature`` broadcasts against ``freqs`` along its last axis."""
    return np.asarray(temperature, dtype=np.float64) * rayleigh_jeans_factor(freqs)


def jy_per_sr_to_kelvin(brightness: Any, freqs: Any) -> np.ndarray:
    """Rayleigh-Jeans temperature (K) of a surface brightness (Jy/sr) at ``freqs`` (Hz)."""
    return np.asarray(brightness, dtype=np.float64) / rayleigh_jeans_factor(freqs)


def _check_nside(nside: Any, where: str) -> int:
    import healpy as hp

    if not isinstance(nside, (int, np.integer)) or not hp.isnsideok(int(nside)):
        raise InputError(f"{where}: nside must be a valid HEALPix nside (a positive int; a "
                         f"power of 2 for NESTED), received {nside!r}")
    return int(nside)


def pixel_solid_angle(nside: int) -> float:
    """Solid angle of one HEALPix pixel, ``4 pi / (12 nside^2)`` sr."""
    return 4.0 * np.pi / (12 * _check_nside(nside, "pixel_solid_angle") ** 2)


def galactic_to_icrs(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Galactic ``(l, b)`` to ICRS ``(ra, dec)``, radians in and out (astropy), with RA
    wrapped into [0, 2 pi)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(l=np.asarray(lon) * u.rad, b=np.asarray(lat) * u.rad, frame="galactic").icrs
    ra = np.mod(np.asarray(c.ra.rad, dtype=np.float64), 2 * np.pi)
    ra[ra >= 2 * np.pi] = 0.0
    return ra, np.asarray(c.dec.rad, dtype=np.float64)


_FRAMES = ("icrs", "galactic")


def healpix_pixel_centres(nside: int, pixels: Any = None, frame: str = "icrs",
                          nest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ICRS right ascension and declination (radians) of HEALPix pixel centres.

    Parameters
    ----------
    nside : int
    pixels : array of int, optional
        Pixel indices (all ``12 nside^2`` by default).
    frame : {"icrs", "galactic"}
        Frame of the map's pixelisation: for ``"galactic"`` the centres ``(l, b)`` are
        converted to ICRS with astropy (each pixel keeps its value and solid angle).
    nest : bool
        NESTED indices (RING by default).

    Returns
    -------
    ra : ndarray (Npix,), float64, radians in [0, 2 pi)
    dec : ndarray (Npix,), float64, radians (``pi/2 - theta``)
    """
    import healpy as hp

    where = "healpix_pixel_centres"
    nside = _check_nside(nside, where)
    if frame not in _FRAMES:
        raise InputError(f"{where}: frame must be one of {_FRAMES}, received {frame!r}")
    npix = 12 * nside**2
    if pixels is None:
        pix = np.arange(npix)
    else:
        pix = np.asarray(pixels)
        if pix.dtype.kind not in "iu" or (pix.size and (pix.min() < 0 or pix.max() >= npix)):
            raise InputError(f"{where}: pixels must be integers in [0, {npix}) for "
                             f"nside={nside}, received dtype {pix.dtype} and range "
                             f"[{pix.min() if pix.size else '-'}, "
                             f"{pix.max() if pix.size else '-'}]")
    theta, phi = hp.pix2ang(nside, pix, nest=nest)
    lon = np.mod(np.asarray(phi, dtype=np.float64), 2 * np.pi)
    lon[lon >= 2 * np.pi] = 0.0
    lat = np.pi / 2 - np.asarray(theta, dtype=np.float64)
    if frame == "galactic":
        return galactic_to_icrs(lon, lat)
    return lon, lat
