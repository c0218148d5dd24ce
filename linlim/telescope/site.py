"""Observatory sites as astropy :class:`~astropy.coordinates.EarthLocation` objects.

Sites are built from numbers (geodetic latitude, longitude and height on the WGS84
ellipsoid), never with ``EarthLocation.of_site``, which downloads a registry and so fails
offline.

Examples
--------
>>> from linlim.telescope.site import get_site, hera_site
>>> loc = hera_site()
>>> round(float(loc.lat.deg), 6), round(float(loc.lon.deg), 6)
(-30.721526, 21.428304)
>>> bool(get_site("hera") == loc)
True
>>> round(float(get_site((-30.0, 21.0, 1000.0)).height.to_value("m")), 3)
1000.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

from ..errors import InputError

__all__ = [
    "HERA_LAT_DEG",
    "HERA_LON_DEG",
    "HERA_HEIGHT_M",
    "SitePreset",
    "SITES",
    "SiteLike",
    "hera_site",
    "get_site",
    "site_from_geodetic",
]

#: HERA geodetic latitude in degrees (the value pyuvsim and hera_sim use).
HERA_LAT_DEG = -30.72152612068957
#: HERA geodetic (east) longitude in degrees.
HERA_LON_DEG = 21.428303826863015
#: HERA height above the WGS84 ellipsoid in metres.
HERA_HEIGHT_M = 1051.6900000218302


@dataclass(frozen=True)
class SitePreset:
    """A named observatory position.

    Parameters
    ----------
    name : str
        Canonical (upper-case) name, e.g. ``"HERA"``.
    lat_deg, lon_deg : float
        Geodetic latitude and east longitude, degrees (WGS84).
    height_m : float
        Height above the WGS84 ellipsoid, metres.
    citation : str
        Where the numbers come from.
    """

    name: str
    lat_deg: float
    lon_deg: float
    height_m: float
    citation: str

    def location(self) -> EarthLocation:
        """The site as an astropy ``EarthLocation`` (WGS84 geodetic)."""
        return site_from_geodetic(self.lat_deg, self.lon_deg, self.height_m)


#: Named site presets, keyed by upper-case name. Only positions with a traceable source are
#: listed; pass an ``EarthLocation`` or ``(lat_deg, lon_deg, height_m)`` for anything else.
SITES: dict[str, SitePreset] = {
    "HERA": SitePreset(
        "HERA", HERA_LAT_DEG, HERA_LON_DEG, HERA_HEIGHT_M,
        "pyuvsim / hera_sim HERA location (hera_mc geo.py survey; agrees with pyuvdata's "
        "KNOWN_TELESCOPES['HERA'] to < 1 mm)",
    ),
    "PAPER": SitePreset(
        "PAPER", -(30.0 + 43.0 / 60.0 + 17.5 / 3600.0), 21.0 + 25.0 / 60.0 + 41.9 / 3600.0,
        1073.0,
        "pyuvdata KNOWN_TELESCOPES['PAPER'] (-30d43m17.5s, 21d25m41.9s, 1073 m; "
        "capo/cals/hsa7458_v000.py)",
    ),
    "OVRO-LWA": SitePreset(
        "OVRO-LWA", 37.239777271, -118.281666695, 1183.48,
        "pyuvdata KNOWN_TELESCOPES['OVRO-LWA'] (OVRO Sharepoint documentation)",
    ),
}

#: What :func:`get_site` accepts.
SiteLike = Union[str, EarthLocation, tuple, list]


def site_from_geodetic(lat_deg: Any, lon_deg: Any, height_m: Any) -> EarthLocation:
    """Build an ``EarthLocation`` from geodetic coordinates, with validation.

    Parameters
    ----------
    lat_deg : float or astropy Quantity/Angle
        Geodetic latitude; degrees if a plain number, in [-90, 90].
    lon_deg : float or astropy Quantity/Angle
        East longitude; degrees if a plain number, finite.
    height_m : float or astropy Quantity
        Height above the WGS84 ellipsoid; metres if a plain number, finite.

    Returns
    -------
    EarthLocation
        The site, WGS84 ellipsoid.

    Raises
    ------
    InputError
        If a value is not a finite scalar, or the latitude is outside [-90, 90] deg.
    """
    lat = _scalar(lat_deg, u.deg, "lat_deg")
    lon = _scalar(lon_deg, u.deg, "lon_deg")
    height = _scalar(height_m, u.m, "height_m")
    if not -90.0 <= lat <= 90.0:
        raise InputError(f"site latitude 'lat_deg' must lie in [-90, 90] degrees; got {lat!r}")
    return EarthLocation.from_geodetic(lon=lon * u.deg, lat=lat * u.deg, height=height * u.m)


def hera_site() -> EarthLocation:
    """The HERA site (Karoo, South Africa) as an ``EarthLocation``.

    Returns
    -------
    EarthLocation
        Latitude -30.72152612068957 deg, longitude 21.428303826863015 deg,
        height 1051.6900000218302 m (WGS84), the numbers pyuvsim and hera_sim use.
    """
    return site_from_geodetic(HERA_LAT_DEG, HERA_LON_DEG, HERA_HEIGHT_M)


def get_site(site: SiteLike) -> EarthLocation:
    """Resolve a site name, location or ``(lat, lon, height)`` triple to an ``EarthLocation``.

    Parameters
    ----------
    site : str, EarthLocation or sequence of 3
        A preset name from :data:`SITES` (case-insensitive, e.g. ``"HERA"``), an astropy
        ``EarthLocation`` (returned as is, if scalar), or ``(lat_deg, lon_deg, height_m)``
        (plain numbers in degrees/metres, or astropy Quantities).

    Returns
    -------
    EarthLocation
        A scalar location.

    Raises
    ------
    InputError
        Unknown name (the message lists the known ones), a non-scalar ``EarthLocation``,
        a sequence of the wrong length, or invalid numbers.
    """
    if isinstance(site, EarthLocation):
        if site.shape != ():
            raise InputError(
                f"'site' must be a scalar EarthLocation; got one with shape {site.shape}"
            )
        return site
    if isinstance(site, str):
        key = site.strip().upper()
        if key not in SITES:
            raise InputError(
                f"unknown site name 'site'={site!r}; known names: {sorted(SITES)}; or pass an "
                "EarthLocation or (lat_deg, lon_deg, height_m)"
            )
        return SITES[key].location()
    if isinstance(site, (tuple, list)):
        if len(site) != 3:
            raise InputError(
                f"'site' as a sequence must be (lat_deg, lon_deg, height_m); got {len(site)} "
                f"values: {site!r}"
            )
        return site_from_geodetic(*site)
    raise InputError(
        "'site' must be a site name, an astropy EarthLocation or (lat_deg, lon_deg, height_m); "
        f"got {type(site).__name__}"
    )


def _scalar(value: Any, unit: u.UnitBase, name: str) -> float:
    """A finite float from a number or a Quantity (converted to ``unit``)."""
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(unit)
        except u.UnitConversionError as err:
            raise InputError(f"'{name}' must have units convertible to {unit}; got "
                             f"{value.unit}") from err
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind not in "iuf":
        raise InputError(f"'{name}' must be a real scalar; got {value!r}")
    out = float(arr)
    if not math.isfinite(out):
        raise InputError(f"'{name}' must be finite; got {out!r}")
    return out
