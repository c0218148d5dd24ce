"""Observation times (Julian dates, UTC) and local sidereal times.

Times are Julian dates on the UTC scale, as in pyuvdata's ``time_array`` (the centre of each
integration). Sidereal angles are in radians. A float64 JD resolves ~40 microseconds
(~3e-9 rad of Earth rotation); pass an astropy ``Time`` where exact two-part times matter.

astropy needs IERS Earth-orientation data for UT1: times inside the bundled IERS-B table
(roughly 1962 to a few months before the astropy release) work offline; later times need
downloaded IERS-A data (astropy's ``iers.conf``), which this module never changes.

Examples
--------
>>> from linlim.telescope.times import jd_array
>>> t = jd_array(2459000.25, 10.0, 3)
>>> ((t - 2459000.25) * 86400.0).round(3).tolist()
[0.0, 10.0, 20.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.time import Time

from ..errors import InputError
from ..validation import check_times_jd
from .site import SiteLike, get_site

__all__ = [
    "SECONDS_PER_DAY",
    "jd_array",
    "jd_span",
    "as_time",
    "validate_times_jd",
    "lst",
    "earth_rotation_angle",
]

SECONDS_PER_DAY = 86400.0


def jd_array(start_jd: float, integration_s: float, ntimes: int) -> np.ndarray:
    """Evenly spaced times ``start_jd + k * integration_s / 86400``, ``k = 0 .. ntimes-1``.

    Parameters
    ----------
    start_jd : float
        First time (the first integration's centre), JD (UTC).
    integration_s : float
        Spacing (integration time), seconds, > 0.
    ntimes : int
        Number of times, >= 1.

    Returns
    -------
    ndarray, shape (ntimes,), float64
        JD (UTC).
    """
    start = _finite_float(start_jd, "start_jd")
    check_times_jd(start, "start_jd", "jd_array")
    dt = _finite_float(integration_s, "integration_s")
    if dt <= 0:
        raise InputError(f"'integration_s' must be > 0 seconds; got {integration_s!r}")
    if isinstance(ntimes, (bool, np.bool_)) or not isinstance(ntimes, (int, np.integer)) \
            or ntimes < 1:
        raise InputError(f"'ntimes' must be an integer >= 1; got {ntimes!r}")
    return start + np.arange(int(ntimes), dtype=np.float64) * (dt / SECONDS_PER_DAY)


def jd_span(start_jd: float, duration_s: float, integration_s: float) -> np.ndarray:
    """Integration centres covering ``duration_s`` seconds from ``start_jd``.

    Parameters
    ----------
    start_jd : float
        First integration's centre, JD (UTC).
    duration_s : float
        Length of the observation, seconds (> 0).
    integration_s : float
        Integration time, seconds (> 0).

    Returns
    -------
    ndarray, shape (ceil(duration_s / integration_s),), float64
        ``jd_array(start_jd, integration_s, n)``.
    """
    dur = _finite_float(duration_s, "duration_s")
    dt = _finite_float(integration_s, "integration_s")
    if dur <= 0 or dt <= 0:
        raise InputError(f"'duration_s' and 'integration_s' must be > 0; got {duration_s!r}, "
                         f"{integration_s!r}")
    n = max(1, int(np.ceil(dur / dt - 1e-9)))
    return jd_array(start_jd, dt, n)


def validate_times_jd(times_jd: Any, name: str = "times_jd") -> np.ndarray:
    """Check and convert times to a 1-D float64 JD (UTC) array.

    Parameters
    ----------
    times_jd : array_like of float or astropy Time
        Julian dates (UTC). A ``Time`` is converted with ``.utc.jd``. Scalars become (1,).
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    ndarray, shape (Ntimes,), float64

    Raises
    ------
    ShapeError
        More than one dimension, or empty.
    InputError
        Non-finite values, or values outside AD 1858-2406; a modified Julian date or a Unix
        time is recognised and named (:func:`linlim.validation.check_times_jd`).
    """
    return check_times_jd(times_jd, name)


def as_time(times_jd: Any) -> Time:
    """An astropy ``Time`` from JD floats (scale UTC) or a ``Time`` (kept exactly).

    Parameters
    ----------
    times_jd : array_like of float, shape (Ntimes,), or astropy Time
        A ``Time`` is returned unchanged (only flattened to 1-D), so its two-part JD and
        scale reach astropy untouched: pass the same ``Time`` you give matvis to get the
        same vectors bit for bit (a float JD carries only ~40 microseconds of resolution).

    Returns
    -------
    astropy.time.Time, shape (Ntimes,)

    Raises
    ------
    ShapeError, InputError
        See :func:`validate_times_jd`.
    """
    if isinstance(times_jd, Time):
        validate_times_jd(times_jd)
        return times_jd.reshape(-1) if times_jd.ndim != 1 else times_jd
    return Time(validate_times_jd(times_jd), format="jd", scale="utc")


def lst(times_jd: Any, site: SiteLike = "HERA") -> np.ndarray:
    """Local apparent sidereal time at the site, radians in [0, 2 pi).

    Parameters
    ----------
    times_jd : array_like of float, shape (Ntimes,), or astropy Time
        JD (UTC).
    site : str, EarthLocation or (lat_deg, lon_deg, height_m), optional

    Returns
    -------
    ndarray, shape (Ntimes,), float64
        ``Time.sidereal_time("apparent", longitude)`` (IAU 2006/2000A), radians. Agrees with
        pyuvdata's ``get_lst_for_time(..., astrometry_library="astropy")`` exactly and its
        default ERFA path to ~1e-12 rad (tested to 1e-9).
    """
    loc = get_site(site)
    t = as_time(times_jd)
    return np.mod(np.asarray(t.sidereal_time("apparent", longitude=loc.lon).rad,
                             dtype=np.float64), 2.0 * np.pi)


def earth_rotation_angle(times_jd: Any, site: SiteLike | None = None) -> np.ndarray:
    """Earth rotation angle (plus the site's east longitude if given), radians.

    The ERA is the angle of Earth's rotation about the celestial intermediate pole; its
    differences are the pure rotation used by the ``fast`` coordinate path.

    Parameters
    ----------
    times_jd : array_like of float, shape (Ntimes,), or astropy Time
        JD (UTC).
    site : str, EarthLocation or (lat_deg, lon_deg, height_m), optional
        If given, the site's east longitude is added (a "local" ERA).

    Returns
    -------
    ndarray, shape (Ntimes,), float64
        Radians in [0, 2 pi).

    Notes
    -----
    ``ERA(UT1) = 2 pi (0.7790572732640 + 1.00273781191135448 (JD_UT1 - 2451545.0))``
    (IERS Conventions 2010, eq. 5.15), from ERFA's ``era00`` on the two-part UT1 JD.
    """
    import erfa

    t = as_time(times_jd).ut1
    era = np.asarray(erfa.era00(t.jd1, t.jd2), dtype=np.float64)
    if site is not None:
        era = era + float(get_site(site).lon.rad)
    return np.mod(era, 2.0 * np.pi)


def _finite_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"'{name}' must be a real number; got {value!r}") from err
    if not np.isfinite(out):
        raise InputError(f"'{name}' must be finite; got {value!r}")
    return out
