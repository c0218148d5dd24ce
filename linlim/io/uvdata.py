"""Model visibilities to and from pyuvdata ``UVData`` (uvh5).

Layouts: linlim ``(Ntimes, Nfreqs, Nbls)`` for one polarisation, or
``(Npols, Ntimes, Nfreqs, Nbls)``; pyuvdata ``data_array`` ``(Nblts, Nfreqs, Npols)`` with
baseline-time order time-major (all baselines of time 0, then time 1, ...), as
``UVData.new(..., do_blt_outer=True)`` builds it.

Polarisation convention: linlim's XX of an unpolarised sky is ``I |A|^2 / 2``, so that
``I = XX + YY``: in pyuvdata's words ``pol_convention="sum"`` (``"avg"`` means
``I = (XX + YY) / 2``). The convention is written on every file.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ShapeError

__all__ = ["vis_to_uvdata", "uvdata_to_visibilities", "write_uvh5", "read_uvh5",
           "DEFAULT_POL_CONVENTION"]

DEFAULT_POL_CONVENTION = "sum"


def vis_to_uvdata(vis: Any, *, antpos: Any, freqs: Any, times_jd: Any, ant1: Any,
                  ant2: Any, telescope_loc: Any, pols: Sequence[str | int] = ("xx",),
                  ant_numbers: Sequence[int] | None = None,
                  ant_names: Sequence[str] | None = None, antenna_diameter: float = 14.0,
                  telescope_name: str = "linlim", instrument: str = "linlim",
                  integration_time: float | None = None, channel_width: float | None = None,
                  pol_convention: str = DEFAULT_POL_CONVENTION, vis_units: str = "Jy",
                  history: str = "simulated with linlim", x_orientation: str = "east") -> Any:
    """Build a ``UVData`` holding linlim visibilities.

    Parameters
    ----------
    vis : array, shape (Ntimes, Nfreqs, Nbls) or (Npols, Ntimes, Nfreqs, Nbls), complex
        Visibilities in Jy (``vis[t, f, k]`` for baseline ``(ant1[k], ant2[k])``).
    antpos : array, shape (Nant, 3)
        Antenna ENU positions in metres relative to the array centre.
    freqs : array, shape (Nfreqs,), Hz
    times_jd : array, shape (Ntimes,), Julian dates (UTC)
    ant1, ant2 : array, shape (Nbls,), int
        Antenna *indices* (rows of ``antpos``); pyuvdata wants ``ant1 <= ant2`` numbers
        for its conventions (``uvw = x[ant2] - x[ant1]``).
    telescope_loc : astropy.coordinates.EarthLocation
    pols : sequence of str or int
        Polarisations of the leading axis (``"xx"`` = -5, ...).
    ant_numbers, ant_names : optional
        Defaults ``0..Nant-1`` and ``"ant{n}"``.
    antenna_diameter : float
        Dish diameter in metres (pyuvdata wants a float array).
    integration_time, channel_width : float, optional
        Seconds and Hz; default: the time step and channel step (or 1 s / 1 Hz).
    pol_convention : {"sum", "avg"}
        ``"sum"`` (default): ``I = XX + YY``, which is linlim's ``XX = 0.5 I |A|^2``.
    vis_units : str
    history : str
    x_orientation : {"east", "north"}
        Orientation of the x feed (HERA: "east"); sets the Telescope's feed_array and
        feed_angle, which pyuvdata's UVCal needs.

    Returns
    -------
    pyuvdata.UVData
    """
    from pyuvdata import Telescope, UVData
    from pyuvdata.utils.pol import polstr2num

    vis = np.asarray(vis)
    if vis.ndim == 3:
        vis = vis[None]
    antpos = np.asarray(antpos, dtype=np.float64)
    freqs = np.asarray(freqs, dtype=np.float64).ravel()
    times_jd = np.asarray(times_jd, dtype=np.float64).ravel()
    ant1 = np.asarray(ant1, dtype=np.int64).ravel()
    ant2 = np.asarray(ant2, dtype=np.int64).ravel()
    npol, nt, nf, nbl = vis.shape
    if len(pols) != npol or nt != times_jd.size or nf != freqs.size or nbl != ant1.size:
        raise ShapeError(f"vis: expected shape ({len(pols)}, {times_jd.size}, {freqs.size}, "
                         f"{ant1.size}) (Npols, Ntimes, Nfreqs, Nbls), received {vis.shape}")
    if pol_convention not in ("sum", "avg"):
        raise InputError(f"pol_convention: expected 'sum' or 'avg', received {pol_convention!r}")
    na = antpos.shape[0]
    numbers = np.arange(na) if ant_numbers is None else np.asarray(ant_numbers, dtype=int)
    names = [f"ant{n}" for n in numbers] if ant_names is None else list(ant_names)
    from pyuvdata.utils import ECEF_from_ENU

    # pyuvdata stores positions as ECEF relative to the telescope location
    rel_ecef = ECEF_from_ENU(antpos, center_loc=telescope_loc) - np.array(
        [telescope_loc.x.to_value("m"), telescope_loc.y.to_value("m"),
         telescope_loc.z.to_value("m")])
    tel = Telescope.new(location=telescope_loc, name=telescope_name, instrument=instrument,
                        antenna_positions={int(n): p for n, p in zip(numbers, rel_ecef)},
                        antenna_names=names, antenna_numbers=numbers,
                        antenna_diameters=np.full(na, float(antenna_diameter)))
    polnums = [p if isinstance(p, (int, np.integer)) else polstr2num(p) for p in pols]
    # feeds (pyuvdata >= 3.2 keeps them on the Telescope; UVCal.new requires them)
    tel.mount_type = ["fixed"] * na          # drift-scan dishes
    tel.set_feeds_from_x_orientation(x_orientation, polarization_array=np.asarray(polnums))
    itime = integration_time if integration_time is not None else (
        float(np.median(np.diff(times_jd))) * 86400.0 if nt > 1 else 1.0)
    cw = channel_width if channel_width is not None else (
        float(np.median(np.diff(freqs))) if nf > 1 else 1.0)
    antpairs = list(zip(numbers[ant1].tolist(), numbers[ant2].tolist()))
    uv = UVData.new(freq_array=freqs, polarization_array=np.array(polnums), times=times_jd,
                    telescope=tel, antpairs=antpairs, do_blt_outer=True,
                    integration_time=itime, channel_width=cw, empty=True,
                    vis_units=vis_units, time_axis_faster_than_bls=False, history=history)
    # (Npols, Ntimes, Nfreqs, Nbls) -> (Ntimes, Nbls, Nfreqs, Npols) -> (Nblts, ...)
    uv.data_array[:] = np.transpose(vis, (1, 3, 2, 0)).reshape(nt * nbl, nf, npol)
    uv.pol_convention = pol_convention
    uv.check()
    return uv


def uvdata_to_visibilities(uv: Any, antpairs: Sequence[tuple[int, int]] | None = None,
                           pols: Sequence[str | int] | None = None) -> tuple:
    """Extract ``(Npols, Ntimes, Nfreqs, Nbls)`` visibilities from a ``UVData``.

    Parameters
    ----------
    uv : pyuvdata.UVData
        Must be rectangular in (time, baseline).
    antpairs : sequence of (int, int), optional
        Antenna-number pairs to extract (default: the object's, in file order).
    pols : sequence, optional
        Polarisations (default: all).

    Returns
    -------
    vis : complex array, (Npols, Ntimes, Nfreqs, Nbls)
    meta : dict
        ``freqs`` (Hz), ``times_jd``, ``antpairs`` (numbers), ``pols`` (ints),
        ``ant_numbers``, ``antpos`` (ENU m, rows of ``ant_numbers``), ``pol_convention``.
    """
    from pyuvdata.utils.pol import polstr2num

    times = np.unique(uv.time_array)
    pairs = uv.get_antpairs() if antpairs is None else [tuple(p) for p in antpairs]
    polnums = list(uv.polarization_array) if pols is None else [
        p if isinstance(p, (int, np.integer)) else polstr2num(p) for p in pols]
    out = np.empty((len(polnums), times.size, uv.Nfreqs, len(pairs)), dtype=uv.data_array.dtype)
    for k, (a, b) in enumerate(pairs):
        for ip, p in enumerate(polnums):
            d = uv.get_data((a, b, int(p)))
            if d.shape[0] != times.size:
                raise InputError("uv: expected one record per time for each baseline, "
                                 f"received {d.shape[0]} for {(a, b)} ({times.size} times)")
            out[ip, :, :, k] = d
    meta = {"freqs": np.asarray(uv.freq_array).ravel(), "times_jd": times,
            "antpairs": pairs, "pols": [int(p) for p in polnums],
            "ant_numbers": np.asarray(uv.telescope.antenna_numbers),
            "antpos": np.asarray(uv.telescope.get_enu_antpos()),
            "pol_convention": uv.pol_convention}
    return out, meta


def write_uvh5(path: str | os.PathLike, vis: Any, *, clobber: bool = False,
               **kwargs: Any) -> Any:
    """Write linlim visibilities to a uvh5 file (arguments of :func:`vis_to_uvdata`).

    Returns the ``UVData`` written.
    """
    uv = vis_to_uvdata(vis, **kwargs)
    uv.write_uvh5(os.fspath(path), clobber=clobber)
    return uv


def read_uvh5(path: str | os.PathLike, **kwargs: Any) -> tuple:
    """Read a uvh5 file into ``(vis (Npols, Ntimes, Nfreqs, Nbls), meta)``; keyword
    arguments go to :func:`uvdata_to_visibilities`."""
    from pyuvdata import UVData

    uv = UVData.from_file(os.fspath(path))
    return uvdata_to_visibilities(uv, **kwargs)
