"""Shared pieces of the beam models: conventions, input checks, Bessel functions, Jones.

Conventions (fixed for every beam in :mod:`linlim.beam`)
--------------------------------------------------------
* Directions are zenith angle ``za`` (radians, 0 at zenith, ``pi/2`` at the horizon) and
  azimuth ``az`` (radians) in **pyuvdata's UVBeam convention: measured from East towards
  North** (East = 0, North = pi/2). This is what
  ``pyuvdata.BeamInterface.compute_response(az_array=, za_array=, freq_array=)`` expects
  and what matvis and fftvis pass to it (matvis converts with
  ``enu_to_az_za(..., orientation="uvbeam")``, i.e. ``az_uvbeam = pi/2 - az_astropy``).
  It is *not* astropy's AltAz azimuth (North = 0, East = pi/2); convert with
  :func:`az_from_astropy`. In this convention the direction cosines are
  ``l = sin(za) cos(az)`` (East) and ``m = sin(za) sin(az)`` (North).
* Frequencies are in Hz.
* A beam operator returns the unpolarised E-field beam ``A`` of shape
  ``(Nbeam, Ndir, Nfreq)``; ``Nbeam`` is 1 for one shared beam or ``Nant`` for per-antenna
  beams. ``A`` is normalised so that, for an unpolarised source of Stokes I, the
  visibility of one linear feed pair is ``V_xx = 0.5 I A_i conj(A_j) exp(...)`` (the
  convention of matvis, fftvis and pyuvsim, DESIGN.md). For pyuvdata's unpolarised
  analytic beams, ``A = sqrt(2) * e`` where ``e`` is the value pyuvdata puts in *each* of
  the two E-field components (az, za) of each feed; equivalently ``A**2`` is pyuvdata's
  ``power`` beam (xx) and ``A`` is its ``feed_aligned_response``.
* Sources below the horizon (``za > pi/2``) have ``A = 0`` (and zero derivative): they
  contribute nothing. pyuvdata's analytic beams do not cut at the horizon (the Airy
  pattern is continued symmetrically in ``sin(za)``); matvis and fftvis drop those
  sources before evaluating the beam, so their visibilities agree with ours.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..backend import asarray, get_xp
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator
from ..units import MIN_FREQ_HZ, SPEED_OF_LIGHT
from ..validation import check_freqs as _check_freqs

__all__ = [
    "SPEED_OF_LIGHT",
    "MIN_FREQ_HZ",
    "az_from_astropy",
    "az_za_from_enu",
    "check_directions",
    "check_freqs",
    "bessel_j0_j1",
    "airy_and_derivative",
    "UnpolarizedJones",
]

# Speed of light (m/s) and the smallest accepted frequency (Hz) live in linlim.units.


def _strip_unit(a: Any, unit: str) -> Any:
    """Convert an astropy Quantity to a plain array in ``unit``; pass arrays through."""
    if hasattr(a, "unit") and hasattr(a, "to_value"):
        return a.to_value(unit)
    return a


def az_from_astropy(az_astropy: Any) -> np.ndarray:
    """Convert an astropy AltAz azimuth (N = 0, E = pi/2) to the beam azimuth used here.

    Parameters
    ----------
    az_astropy : array_like or Quantity
        Azimuth East of North in radians (or an angle Quantity).

    Returns
    -------
    numpy.ndarray
        Azimuth North of East (East = 0, North = pi/2), radians in ``[0, 2 pi)``:
        ``(pi/2 - az_astropy) mod 2 pi``.
    """
    a = np.asarray(_strip_unit(az_astropy, "rad"), dtype=np.float64)
    return np.mod(0.5 * np.pi - a, 2.0 * np.pi)


def az_za_from_enu(e: Any, n: Any, u: Any) -> tuple[np.ndarray, np.ndarray]:
    """Beam azimuth and zenith angle of unit vectors given in East-North-Up components.

    Parameters
    ----------
    e, n, u : array_like, shape (N,)
        ENU components of the direction (need not be normalised).

    Returns
    -------
    az, za : numpy.ndarray, shape (N,), float64, radians
        ``az = arctan2(n, e) mod 2 pi`` (East towards North), ``za = arccos(u / |v|)``.
    """
    e, n, u = (np.asarray(v, dtype=np.float64) for v in (e, n, u))
    r = np.sqrt(e * e + n * n + u * u)
    az = np.mod(np.arctan2(n, e), 2.0 * np.pi)
    za = np.arccos(np.clip(u / r, -1.0, 1.0))
    return az, za


def check_directions(az: Any, za: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(az, za)`` as float64 NumPy arrays of shape (Ndir,).

    Raises
    ------
    ShapeError
        If either is not one-dimensional or their lengths differ.
    InputError
        If a value is NaN/inf, or ``za`` is outside ``[0, pi]``.
    """
    az = np.asarray(_strip_unit(az, "rad"), dtype=np.float64)
    za = np.asarray(_strip_unit(za, "rad"), dtype=np.float64)
    for name, a in (("az", az), ("za", za)):
        if a.ndim != 1:
            raise ShapeError(
                f"{where}: {name} must be one-dimensional (Ndir,), received shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise InputError(f"{where}: {name} must be finite, received NaN or inf")
    if az.shape != za.shape:
        raise ShapeError(
            f"{where}: az and za must have the same shape, received {az.shape} and {za.shape}"
        )
    if za.size and (za.min() < 0.0 or za.max() > np.pi):
        raise InputError(
            f"{where}: za (zenith angle, radians) must lie in [0, pi], received values in "
            f"[{za.min():.6g}, {za.max():.6g}]; degrees given instead of radians?"
        )
    return az, za


def check_freqs(freqs: Any, where: str) -> np.ndarray:
    """Validate and return frequencies in Hz as a float64 NumPy array of shape (Nfreq,).

    Delegates to :func:`linlim.validation.check_freqs` (the one frequency check).

    Raises
    ------
    ShapeError
        If ``freqs`` is not one-dimensional or is empty.
    InputError
        If a value is not finite, <= 0, or below :data:`MIN_FREQ_HZ` (frequencies in MHz/GHz).
    """
    return _check_freqs(freqs, "freqs", where)


def bessel_j0_j1(xp: ModuleType) -> tuple[Any, Any]:
    """Return ``(j0, j1)`` Bessel functions of the first kind for the array module ``xp``.

    ``scipy.special`` on NumPy, ``cupyx.scipy.special`` on CuPy (both accurate to a few
    ulp; torch's ``bessel_j1`` is not, see DESIGN.md).
    """
    if xp is np:
        from scipy.special import j0, j1
    else:  # pragma: no cover - GPU only
        from cupyx.scipy.special import j0, j1
    return j0, j1


#: Below this |x| the Airy derivative is evaluated from its Taylor series (the closed form
#: 2 J0/x - 4 J1/x**2 loses about eps/x**2 to cancellation there).
_AIRY_SERIES_X = 0.1


def airy_and_derivative(x: Any, xp: ModuleType, derivative: bool = True) -> tuple[Any, Any]:
    """The Airy amplitude ``a(x) = 2 J1(x) / x`` and its derivative ``a'(x) = -2 J2(x) / x``.

    Parameters
    ----------
    x : array, float64
        Argument (any shape), on the device of ``xp``.
    xp : module
    derivative : bool
        Also return ``a'(x)`` (else ``None``).

    Returns
    -------
    a, da : arrays like ``x``
        ``a(0) = 1`` and ``a'(0) = 0`` exactly.

    Notes
    -----
    ``d/dx [J1(x)/x] = J1'(x)/x - J1(x)/x^2`` with ``J1' = J0 - J1/x``, so
    ``a'(x) = 2 J0(x)/x - 4 J1(x)/x^2 = -2 J2(x)/x`` (``J2 = 2 J1/x - J0``). For
    ``|x| < 0.1`` the series ``a'(x) = -(x/2) sum_k (-1)^k (x/2)^(2k) / (k! (k+2)!)`` (four
    terms, truncation error below 1e-14 relative) replaces the closed form, which loses
    about ``eps / x^2`` to cancellation there.
    """
    j0, j1 = bessel_j0_j1(xp)
    small = xp.abs(x) < _AIRY_SERIES_X
    xs = xp.where(x == 0.0, 1.0, x)
    a = xp.where(x == 0.0, 1.0, 2.0 * j1(xs) / xs)
    if not derivative:
        return a, None
    closed = (2.0 * j0(xs) - 2.0 * a) / xs
    h2 = 0.25 * x * x
    series = -0.5 * x * (0.5 + h2 * (-1.0 / 6.0 + h2 * (1.0 / 48.0 - h2 / 720.0)))
    da = xp.where(small, series, closed)
    return a, da


class UnpolarizedJones(LinearOperator):
    """Jones matrices of an unpolarised beam for two linear feeds, the way pyuvdata fills them.

    ``J[b, p, c, d, f] = A[b, d, f] / sqrt(2)`` for both feeds ``p`` (x, y) and both E-field
    components ``c`` (az, za): pyuvdata's ``efield`` response of its unpolarised analytic
    beams, transposed to (feed, component).

    Parameters
    ----------
    nbeam, ndir, nfreq : int
        Shape of the unpolarised beam ``A`` (input).
    in_dtype : dtype
        float64 (analytic beams) or complex128 (complex basis beams).
    xp : module, optional

    Notes
    -----
    Forward ``J = A / sqrt(2)`` broadcast over (feed, component); adjoint
    ``A^H y = sum_{p,c} y[b, p, c, d, f] / sqrt(2)`` (real part kept for a real input
    space). The output is complex128 (pyuvdata's efield dtype). With the unpolarised
    coherency ``C = (I/2) 1``, ``V_xx = J_i C J_j^H = 0.5 I A_i conj(A_j)``.
    """

    _abstract = False

    def __init__(self, nbeam: int, ndir: int, nfreq: int, in_dtype: Any = np.float64,
                 xp: Any = None) -> None:
        super().__init__((nbeam, ndir, nfreq), (nbeam, 2, 2, ndir, nfreq), in_dtype,
                         np.complex128, xp=xp, name="UnpolarizedJones")

    def _matvec(self, x: Any) -> Any:
        out = self.xp.empty(self.out_shape, dtype=np.complex128)
        out[...] = (x / np.sqrt(2.0))[:, None, None]
        return out

    def _rmatvec(self, y: Any) -> Any:
        return y.sum(axis=(1, 2)) / np.sqrt(2.0)


def to_xp(a: Any, xp: ModuleType | None, dtype: Any = None) -> Any:
    """Move a set-up array to the backend ``xp`` (the active one if ``None``)."""
    return asarray(a, get_xp() if xp is None else xp, dtype=dtype)
