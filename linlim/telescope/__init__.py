"""Telescope geometry: sites, antenna layouts, baselines, times and source directions.

Everything here is metadata computed on the host with NumPy and astropy: operators that
need these arrays on a device move them once at construction.

* :mod:`~linlim.telescope.site` -- sites as astropy ``EarthLocation`` (HERA preset, no
  downloads).
* :mod:`~linlim.telescope.layout` -- :class:`ArrayLayout` (ENU antenna positions), hexagonal
  arrays, layouts from pyuvdata objects or files.
* :mod:`~linlim.telescope.baselines` -- antenna pairs in pyuvdata's order, baseline vectors
  ``x[ant2] - x[ant1]``, redundant groups with conjugation.
* :mod:`~linlim.telescope.times` -- JD time grids, local sidereal time, Earth rotation angle.
* :mod:`~linlim.telescope.coordinates` -- ICRS to topocentric ENU unit vectors
  (``precise``: astropy per time, as matvis; ``fast``: rotation between astropy references),
  az/za conversions in astropy and UVBeam conventions.
"""

from .baselines import (
    RedundantGroups,
    antpairs,
    baseline_vectors,
    cross_antpairs,
    redundant_groups,
)
from .coordinates import (
    angular_separation,
    az_za_to_enu,
    enu_to_az_za,
    equatorial_to_enu_matrix,
    horizon_mask,
    pole_rotation_matrix,
    source_enu,
    validate_radec,
)
from .layout import ArrayLayout, hex_array, hex_positions
from .site import SITES, SitePreset, get_site, hera_site, site_from_geodetic
from .times import as_time, earth_rotation_angle, jd_array, jd_span, lst, validate_times_jd

__all__ = [
    "SITES", "SitePreset", "get_site", "hera_site", "site_from_geodetic",
    "ArrayLayout", "hex_array", "hex_positions",
    "antpairs", "cross_antpairs", "baseline_vectors", "RedundantGroups", "redundant_groups",
    "jd_array", "jd_span", "as_time", "validate_times_jd", "lst", "earth_rotation_angle",
    "source_enu", "validate_radec", "enu_to_az_za", "az_za_to_enu", "horizon_mask",
    "equatorial_to_enu_matrix", "pole_rotation_matrix", "angular_separation",
]
