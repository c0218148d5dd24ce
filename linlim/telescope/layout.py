"""Antenna array layouts: positions in local East-North-Up metres about the array centre.

An :class:`ArrayLayout` is plain metadata (NumPy arrays on the host): antenna positions
``antpos`` of shape ``(Nant, 3)`` in ENU metres relative to the array centre (the site's
``EarthLocation``), integer antenna numbers, antenna names and the site. Operators that need
positions on a device move them once at construction.

Examples
--------
>>> from linlim.telescope.layout import hex_array
>>> lay = hex_array(4)            # a HERA-37-like filled hexagon, 14.6 m spacing
>>> lay.nants, lay.antpos.shape
(37, (37, 3))
>>> lay.antnums[:3].tolist(), lay.names[:2]
([0, 1, 2], ['ANT0', 'ANT1'])
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from astropy.coordinates import EarthLocation

from ..errors import InputError, ShapeError
from .site import SiteLike, get_site

__all__ = ["ArrayLayout", "hex_array", "hex_positions"]


class ArrayLayout:
    """Antenna positions, numbers and names of an array at a site.

    Parameters
    ----------
    antpos : array_like, shape (Nant, 3), float
        Antenna positions in metres, local East-North-Up about the array centre ``site``.
    antnums : array_like, shape (Nant,), int, optional
        Antenna numbers (unique, >= 0). Default ``0 .. Nant-1``.
    names : sequence of str, length Nant, optional
        Antenna names (unique). Default ``"ANT{num}"``.
    site : str, EarthLocation or (lat_deg, lon_deg, height_m), optional
        The array centre; see :func:`linlim.telescope.site.get_site`. Default ``"HERA"``.

    Attributes
    ----------
    antpos : ndarray, shape (Nant, 3), float64
        ENU positions, metres (read-only).
    antnums : ndarray, shape (Nant,), int64
        Antenna numbers (read-only).
    names : list of str
        Antenna names.
    site : EarthLocation
        Array centre.

    Raises
    ------
    ShapeError
        ``antpos`` is not ``(Nant, 3)`` with Nant >= 1, or ``antnums``/``names`` lengths differ.
    InputError
        Non-finite positions, negative or repeated antenna numbers, repeated names.
    """

    def __init__(
        self,
        antpos: Any,
        antnums: Any = None,
        names: Sequence[str] | None = None,
        site: SiteLike = "HERA",
    ) -> None:
        pos = np.array(antpos, dtype=np.float64, copy=True)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
            raise ShapeError(f"'antpos' must have shape (Nant, 3) with Nant >= 1; got {pos.shape}")
        if not np.all(np.isfinite(pos)):
            bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
            raise InputError(f"'antpos' must be finite; rows {bad.tolist()[:10]} contain NaN/inf")
        nant = pos.shape[0]
        if antnums is None:
            nums = np.arange(nant, dtype=np.int64)
        else:
            raw = np.asarray(antnums)
            if raw.shape != (nant,):
                raise ShapeError(f"'antnums' must have shape ({nant},) to match 'antpos'; "
                                 f"got {raw.shape}")
            if raw.dtype.kind not in "iu" and not (
                raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))
            ):
                raise InputError(f"'antnums' must be integers; got dtype {raw.dtype}")
            nums = raw.astype(np.int64)
            if np.any(nums < 0):
                raise InputError(f"'antnums' must be >= 0; got min {int(nums.min())}")
            if np.unique(nums).size != nant:
                raise InputError("'antnums' must be unique; got repeated numbers")
        if names is None:
            name_list = [f"ANT{int(n)}" for n in nums]
        else:
            name_list = [str(n) for n in names]
            if len(name_list) != nant:
                raise ShapeError(f"'names' must have {nant} entries to match 'antpos'; "
                                 f"got {len(name_list)}")
            if len(set(name_list)) != nant:
                raise InputError("'names' must be unique; got repeated names")
        pos.setflags(write=False)
        nums.setflags(write=False)
        self.antpos: np.ndarray = pos
        self.antnums: np.ndarray = nums
        self.names: list[str] = name_list
        self.site: EarthLocation = get_site(site)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_enu(
        cls,
        antpos: Any,
        antnums: Any = None,
        names: Sequence[str] | None = None,
        site: SiteLike = "HERA",
        *,
        recentre: bool = False,
    ) -> ArrayLayout:
        """A layout from an ENU position array.

        Parameters
        ----------
        antpos : array_like, shape (Nant, 3), float
            ENU positions in metres.
        antnums, names, site
            As for :class:`ArrayLayout`.
        recentre : bool, optional
            Subtract the mean position first (then ``site`` is taken to be the centroid).

        Returns
        -------
        ArrayLayout
        """
        pos = np.asarray(antpos, dtype=np.float64)
        if recentre and pos.ndim == 2 and pos.shape[0] > 0:
            pos = pos - pos.mean(axis=0)
        return cls(pos, antnums, names, site)

    @classmethod
    def from_uvdata(
        cls,
        uvd: Any,
        *,
        data_antennas_only: bool = False,
    ) -> ArrayLayout:
        """A layout from a pyuvdata ``UVData`` object or a file pyuvdata can read.

        Positions are ``uvd.telescope.get_enu_antpos()`` (ENU metres about
        ``uvd.telescope.location``), numbers and names come from ``uvd.telescope``
        (pyuvdata >= 3.2), and the site is the telescope location.

        Parameters
        ----------
        uvd : pyuvdata.UVData or str or os.PathLike
            The object, or a path to a file (uvh5, uvfits, ...). A file is read without
            its data arrays (metadata only).
        data_antennas_only : bool, optional
            Keep only antennas that appear in the data's baselines (default: every antenna
            of the telescope, in the telescope's order).

        Returns
        -------
        ArrayLayout

        Raises
        ------
        InputError
            ``uvd`` is neither a ``UVData`` nor a path, or the telescope lacks positions.
        """
        from pyuvdata import UVData

        if isinstance(uvd, (str, os.PathLike)):
            path = os.fspath(uvd)
            if not os.path.exists(path):
                raise InputError(f"'uvd' file does not exist: {path!r}")
            obj = UVData()
            obj.read(path, read_data=False)
            uvd = obj
        if not isinstance(uvd, UVData):
            raise InputError(f"'uvd' must be a pyuvdata UVData or a file path; got "
                             f"{type(uvd).__name__}")
        tel = uvd.telescope
        if tel.antenna_positions is None or tel.location is None:
            raise InputError("'uvd.telescope' has no antenna positions or location")
        enu = np.asarray(tel.get_enu_antpos(), dtype=np.float64)
        nums = np.asarray(tel.antenna_numbers, dtype=np.int64)
        names = [str(n) for n in tel.antenna_names]
        if data_antennas_only:
            keep = np.isin(nums, np.asarray(uvd.get_ants()))
            enu, nums = enu[keep], nums[keep]
            names = [n for n, k in zip(names, keep) if k]
        return cls(enu, nums, names, tel.location)

    # ----------------------------------------------------------------- properties
    @property
    def nants(self) -> int:
        """Number of antennas."""
        return int(self.antpos.shape[0])

    def __len__(self) -> int:
        return self.nants

    def __repr__(self) -> str:
        lat, lon = float(self.site.lat.deg), float(self.site.lon.deg)
        span = np.ptp(self.antpos[:, :2], axis=0)
        return (f"ArrayLayout(nants={self.nants}, site=(lat={lat:.4f} deg, lon={lon:.4f} deg), "
                f"extent_EN=({span[0]:.1f} m, {span[1]:.1f} m))")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArrayLayout):
            return NotImplemented
        return (
            np.array_equal(self.antpos, other.antpos)
            and np.array_equal(self.antnums, other.antnums)
            and self.names == other.names
            and self.site == other.site
        )

    __hash__ = None  # mutable-looking container of arrays: not hashable

    # ----------------------------------------------------------------- helpers
    def index_of(self, antnums: Any) -> np.ndarray:
        """Row indices into ``antpos`` of the given antenna numbers.

        Parameters
        ----------
        antnums : array_like of int, any shape
            Antenna numbers present in the layout.

        Returns
        -------
        ndarray of int64, same shape as ``antnums``

        Raises
        ------
        InputError
            If a number is not in the layout.
        """
        req = np.asarray(antnums, dtype=np.int64)
        order = np.argsort(self.antnums, kind="stable")
        sorted_nums = self.antnums[order]
        pos = np.searchsorted(sorted_nums, req)
        pos_clipped = np.minimum(pos, sorted_nums.size - 1)
        found = sorted_nums[pos_clipped] == req
        if not np.all(found):
            missing = np.unique(req[~found]).tolist()[:10]
            raise InputError(f"antenna numbers {missing} are not in this layout "
                             f"(antnums {self.antnums.min()}..{self.antnums.max()})")
        return order[pos_clipped]

    def antpos_dict(self) -> dict[int, np.ndarray]:
        """``{antnum: ENU position (3,) float64 metres}``, as hera_sim / matvis-style dicts."""
        return {int(n): self.antpos[i].copy() for i, n in enumerate(self.antnums)}

    def select(self, antnums: Any) -> ArrayLayout:
        """The sub-layout with the given antennas, in the given order.

        Parameters
        ----------
        antnums : array_like of int, shape (M,)
            Antenna numbers to keep.

        Returns
        -------
        ArrayLayout
        """
        idx = np.atleast_1d(self.index_of(antnums))
        return ArrayLayout(self.antpos[idx], self.antnums[idx],
                           [self.names[i] for i in idx], self.site)

    def to_pyuvdata_telescope(
        self,
        name: str = "HERA",
        *,
        instrument: str | None = None,
        antenna_diameter: float = 14.0,
        x_orientation: str = "east",
    ) -> Any:
        """This layout as a ``pyuvdata.Telescope`` (ECEF positions relative to the site).

        Parameters
        ----------
        name : str, optional
            Telescope name written to files.
        instrument : str, optional
            Instrument name (default: ``name``).
        antenna_diameter : float, optional
            Dish diameter in metres, the same for every antenna.
        x_orientation : str, optional
            Feed x orientation ("east" or "north"); feeds are x and y on a fixed
            (drift-scan) mount.

        Returns
        -------
        pyuvdata.Telescope
            ``get_enu_antpos()`` on it returns ``antpos`` to ~1e-9 m.
        """
        from pyuvdata import Telescope
        from pyuvdata.utils import ECEF_from_ENU

        ecef = ECEF_from_ENU(self.antpos, center_loc=self.site)
        rel = ecef - np.asarray(self.site.itrs.cartesian.xyz.to_value("m"))
        return Telescope.new(
            name=name,
            location=self.site,
            antenna_positions=rel,
            antenna_names=list(self.names),
            antenna_numbers=np.asarray(self.antnums),
            instrument=instrument or name,
            antenna_diameters=np.full(self.nants, float(antenna_diameter)),
            x_orientation=x_orientation,
            mount_type="fixed",
            update_from_known=False,
        )


def hex_positions(hex_num: int, spacing: float = 14.6) -> np.ndarray:
    """ENU positions of a filled hexagon with ``hex_num`` antennas per side.

    Parameters
    ----------
    hex_num : int
        Antennas per side (>= 1); the hexagon has ``3 hex_num (hex_num - 1) + 1`` antennas
        (1, 7, 19, 37, 61, ...).
    spacing : float, optional
        Nearest-neighbour distance in metres (HERA: 14.6 m).

    Returns
    -------
    ndarray, shape (Nant, 3), float64
        Positions in metres, centred on the middle antenna (0, 0, 0), up = 0. Rows run from
        north to south, and within a row from west to east (the order hera_sim's
        ``hex_array(..., split_core=False, outriggers=0)`` uses). Rows are east-west, so
        the hexagon has corners pointing east and west.
    """
    n = _positive_int(hex_num, "hex_num")
    sep = _positive_float(spacing, "spacing")
    row_sep = sep * np.sqrt(3.0) / 2.0
    rows = []
    for row in range(n - 1, -n, -1):                  # north (+) to south (-)
        count = 2 * n - 1 - abs(row)
        x = sep * (np.arange(count) - (count - 1) / 2.0)
        rows.append(np.stack([x, np.full(count, row * row_sep), np.zeros(count)], axis=1))
    return np.concatenate(rows, axis=0)


def hex_array(
    hex_num: int,
    spacing: float = 14.6,
    *,
    jitter: float = 0.0,
    rng: np.random.Generator | int | None = None,
    site: SiteLike = "HERA",
) -> ArrayLayout:
    """A filled hexagonal array (HERA-style), optionally with random position errors.

    Parameters
    ----------
    hex_num : int
        Antennas per side; ``hex_num=4`` gives the 37 antennas of HERA-37.
    spacing : float, optional
        Nearest-neighbour distance, metres.
    jitter : float, optional
        Standard deviation (metres) of independent Gaussian offsets added to the east and
        north coordinates of every antenna (default 0: exact grid).
    rng : numpy Generator or int seed, optional
        Random source for ``jitter``; required (for reproducibility) when ``jitter > 0``.
    site : str, EarthLocation or (lat_deg, lon_deg, height_m), optional
        Array centre (default HERA).

    Returns
    -------
    ArrayLayout
        Antenna numbers ``0 .. Nant-1`` in the order of :func:`hex_positions`, names
        ``"ANT{n}"``.

    Raises
    ------
    InputError
        Non-positive ``hex_num``/``spacing``, negative ``jitter``, or ``jitter > 0``
        without ``rng``.
    """
    pos = hex_positions(hex_num, spacing)
    jit = float(jitter)
    if not np.isfinite(jit) or jit < 0:
        raise InputError(f"'jitter' must be a finite value >= 0 metres; got {jitter!r}")
    if jit > 0:
        if rng is None:
            raise InputError("'rng' (a numpy Generator or an int seed) is required when "
                             "'jitter' > 0, so layouts are reproducible")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        pos[:, :2] += jit * gen.standard_normal((pos.shape[0], 2))
    return ArrayLayout(pos, site=site)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"'{name}' must be a positive integer; got {value!r}")
    if value < 1:
        raise InputError(f"'{name}' must be >= 1; got {value}")
    return int(value)


def _positive_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"'{name}' must be a positive number; got {value!r}") from err
    if not np.isfinite(out) or out <= 0:
        raise InputError(f"'{name}' must be a finite number > 0; got {value!r}")
    return out
