"""Visibilities to and from pyuvdata ``UVData`` (uvh5): the one reader and writer of linlim.

Layouts: linlim ``(Ntimes, Nfreqs, Nbls)`` for one polarisation, or
``(Npols, Ntimes, Nfreqs, Nbls)``; pyuvdata ``data_array`` ``(Nblts, Nfreqs, Npols)`` with
baseline-time order time-major (all baselines of time 0, then time 1, ...), as
``UVData.new(..., do_blt_outer=True)`` builds it.

Polarisation convention: linlim's XX of an unpolarised sky is ``I |A|^2 / 2``, so that
``I = XX + YY``: in pyuvdata's words ``pol_convention="sum"`` (``"avg"`` means
``I = (XX + YY) / 2``, every visibility twice as large). The convention is written on every
file, and :func:`read_uvdata` converts a file in the other convention (or refuses it).

Reading checks the file against what the model expects (:func:`read_uvdata`): frequencies,
times, antenna numbers and pairs, polarisations selected by name (``"ee"``/``"nn"`` through
the file's x_orientation; cross-hands refused for an unpolarised model), the phase type
(drift scans; phased data are unprojected with pyuvdata when asked) and the units.
Every mismatch is an :class:`~linlim.errors.InputError` naming both values.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ShapeError

__all__ = ["vis_to_uvdata", "uvdata_to_visibilities", "write_uvh5", "read_uvh5",
           "read_uvdata", "load_uvdata", "check_matches", "pol_numbers", "make_autos_real",
           "DEFAULT_POL_CONVENTION", "PARALLEL_POLS", "CROSS_POLS"]

DEFAULT_POL_CONVENTION = "sum"

#: pyuvdata numbers of parallel-hand and cross-hand polarisations
PARALLEL_POLS = (-5, -6, -1, -2)
CROSS_POLS = (-7, -8, -3, -4)


def pol_numbers(pols: Sequence[str | int], x_orientation: str | None = "east",
                where: str = "pols") -> list[int]:
    """pyuvdata polarisation numbers of ``pols`` (names or numbers).

    Names ``"ee"``/``"nn"``/``"en"``/``"ne"`` are resolved through ``x_orientation``
    (``"east"``: ``ee`` is ``xx``).

    Raises
    ------
    InputError
        For an unknown name, naming it and the accepted names.
    """
    from pyuvdata.utils.pol import polstr2num

    out = []
    for p in pols:
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            out.append(int(p))
            continue
        try:
            out.append(int(polstr2num(str(p), x_orientation=x_orientation)))
        except (KeyError, ValueError):
            raise InputError(
                f"{where}: unknown polarisation {p!r}; expected one of xx, yy, xy, yx, "
                "ee, nn, en, ne (with an x_orientation), rr, ll, rl, lr, pI, pQ, pU, pV "
                "or a pyuvdata number") from None
    return out


def _pol_names(nums: Sequence[int], x_orientation: str | None) -> list[str]:
    from pyuvdata.utils.pol import polnum2str

    return [str(polnum2str(int(n), x_orientation=x_orientation)) for n in nums]


def make_autos_real(uv: Any) -> None:
    """Set the imaginary part of every auto-correlation of ``uv`` to zero in place
    (simulations carry rounding-level imaginary parts that pyuvdata refuses to write)."""
    auto = np.asarray(uv.ant_1_array) == np.asarray(uv.ant_2_array)
    if not np.any(auto):
        return
    pols = np.asarray(uv.polarization_array)
    par = np.isin(pols, PARALLEL_POLS)
    sel = uv.data_array[auto][:, :, par]
    uv.data_array[np.ix_(np.nonzero(auto)[0], np.arange(uv.Nfreqs), np.nonzero(par)[0])] = \
        sel.real.astype(uv.data_array.dtype)


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
        Auto-correlations are made exactly real (their imaginary parts are rounding).
    antpos : array, shape (Nant, 3)
        Antenna ENU positions in metres relative to the array centre.
    freqs : array, shape (Nfreqs,), Hz
    times_jd : array, shape (Ntimes,), Julian dates (UTC)
    ant1, ant2 : array, shape (Nbls,), int
        Antenna *indices* (rows of ``antpos``); pyuvdata wants ``ant1 <= ant2`` numbers
        for its conventions (``uvw = x[ant2] - x[ant1]``).
    telescope_loc : astropy.coordinates.EarthLocation
    pols : sequence of str or int
        Polarisations of the leading axis (``"xx"`` = -5, ``"ee"``/``"nn"`` through
        ``x_orientation``, ...).
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

    vis = np.asarray(vis)
    if vis.ndim == 3:
        vis = vis[None]
    from ..telescope.site import get_site
    from ..validation import check_freqs, check_times_jd

    antpos = np.asarray(antpos, dtype=np.float64)
    freqs = check_freqs(np.ravel(freqs), "freqs", "vis_to_uvdata")
    times_jd = check_times_jd(np.ravel(times_jd), "times_jd", "vis_to_uvdata")
    ant1 = np.asarray(ant1, dtype=np.int64).ravel()
    ant2 = np.asarray(ant2, dtype=np.int64).ravel()
    telescope_loc = get_site(telescope_loc)
    npol, nt, nf, nbl = vis.shape
    if len(pols) != npol or nt != times_jd.size or nf != freqs.size or nbl != ant1.size:
        raise ShapeError(f"vis: expected shape ({len(pols)}, {times_jd.size}, {freqs.size}, "
                         f"{ant1.size}) (Npols, Ntimes, Nfreqs, Nbls), received {vis.shape}")
    if pol_convention not in ("sum", "avg"):
        raise InputError(f"pol_convention: expected 'sum' or 'avg', received {pol_convention!r}")
    if x_orientation not in ("east", "north"):
        raise InputError(f"x_orientation: expected 'east' or 'north', received "
                         f"{x_orientation!r}")
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
    polnums = pol_numbers(pols, x_orientation)
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
    make_autos_real(uv)
    uv.pol_convention = pol_convention
    uv.check()
    return uv


def load_uvdata(src: Any, *, where: str = "data", read_data: bool = True) -> Any:
    """A ``UVData`` from a path (uvh5, miriad, uvfits, ms, ...) or the object itself.

    Raises
    ------
    InputError
        When the file does not exist or pyuvdata cannot read it (message names the path
        and pyuvdata's reason).
    """
    from pyuvdata import UVData

    if isinstance(src, UVData):
        return src
    path = os.fspath(src)
    if not os.path.exists(path):
        raise InputError(f"{where}: file {path!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*auto-correlations.*")
            warnings.filterwarnings("ignore", message="Fixing auto-correlations.*")
            return UVData.from_file(path, read_data=read_data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{where}: pyuvdata cannot read {path!r}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None


def _range(a: np.ndarray, scale: float, unit: str, fmt: str = ".6g") -> str:
    a = np.asarray(a).ravel()
    if a.size == 0:
        return "none"
    return (f"{a.min() / scale:{fmt}}-{a.max() / scale:{fmt}} {unit} ({a.size} "
            f"value{'s' if a.size != 1 else ''})")


def check_matches(what: str, got: Any, expected: Any, *, where: str = "data",
                  model: str = "the model", atol: float = 0.0, rtol: float = 0.0) -> None:
    """Raise :class:`InputError` unless two axes agree (frequencies, times, ...).

    ``what`` is one of ``"frequencies"`` (Hz), ``"times"`` (JD) or any other name (values
    compared exactly). The message names both ranges and the first value that differs.
    """
    g = np.asarray(got, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    scale, unit, fmt = {"frequencies": (1e6, "MHz", ".6f"),
                        "times": (1.0, "JD", ".6f")}.get(what, (1.0, "", "g"))
    if g.size == e.size and np.allclose(g, e, rtol=rtol, atol=atol):
        return
    detail = ""
    if g.size == e.size:
        k = int(np.argmax(~np.isclose(g, e, rtol=rtol, atol=atol)))
        detail = (f"; first difference at index {k}: {g[k] / scale:{fmt}} vs "
                  f"{e[k] / scale:{fmt}} {unit}")
    raise InputError(f"{where}: {what} {_range(g, scale, unit, fmt)} do not match "
                     f"{model}'s {_range(e, scale, unit, fmt)}{detail}")


def _x_orientation(uv: Any) -> str | None:
    tel = uv.telescope
    try:
        xo = tel.get_x_orientation_from_feeds()
    except (AttributeError, ValueError, TypeError):
        xo = getattr(uv, "x_orientation", None)
    return None if xo is None else str(xo).lower()


def read_uvdata(src: Any, *, pols: Sequence[str | int] | None = None,
                polarized_model: bool = False, allow_cross_pols: bool = False,
                antpairs: Sequence[tuple[int, int]] | None = None,
                include_autos: bool = True, freqs: Any = None, times: Any = None,
                ant_numbers: Sequence[int] | None = None, unphase: bool = False,
                pol_convention: str | None = DEFAULT_POL_CONVENTION,
                vis_units: Sequence[str] | str = ("Jy",), where: str = "data",
                model: str = "the model") -> dict:
    """Read visibilities from a file (or ``UVData``) into linlim's layout, checked against
    what the model expects.

    Parameters
    ----------
    src : path or pyuvdata.UVData
    pols : sequence of str or int, optional
        Polarisations to read, by name (``"ee"``, ``"xx"``, ...) or number. Default: every
        parallel-hand polarisation of the file (and the cross-hands too when
        ``polarized_model`` or ``allow_cross_pols``).
    polarized_model : bool
        The model predicts cross-hand polarisations. An unpolarised model refuses them
        unless ``allow_cross_pols``.
    allow_cross_pols : bool
    antpairs : sequence of (int, int), optional
        Antenna-*number* pairs to read, in this order (missing ones are an error).
        Default: the file's pairs in file order (autos dropped unless ``include_autos``).
    include_autos : bool
    freqs : array (Nfreqs,), Hz, optional
        Expected channel frequencies (checked to 1 Hz).
    times : array (Ntimes,), JD, optional
        Expected times (checked to 0.01 s).
    ant_numbers : sequence of int, optional
        Antenna numbers the model has; every antenna of the data must be one of them.
    unphase : bool
        Phased (projected) data are an error unless True, when they are unprojected
        to drift-scan (zenith) coordinates with pyuvdata.
    pol_convention : {"sum", "avg"} or None
        The model's convention; a file in the other one is converted (factor 2), a file
        without one is assumed to be in this one (with a warning). None: no check.
    vis_units : str or sequence of str
        Units accepted (``"Jy"``; ``"K str"`` data are converted to Jy when ``"Jy"`` is
        accepted and ``"K str"`` is not; ``"UNCALIB"`` for raw data).
    where, model : str
        Names used in messages (``"calibrate --data"``, ``"the model file"``).

    Returns
    -------
    dict
        ``data`` (Npols, Ntimes, Nfreqs, Nbl) complex128, ``flags`` (same, bool),
        ``nsamples`` (same, float), ``ant1``, ``ant2`` (Nbl,) indices into
        ``ant_numbers``, ``antpairs`` (numbers), ``ant_numbers``, ``ant_names``, ``antpos``
        (Nant, 3) ENU metres, ``times`` (Ntimes,) JD, ``lsts`` (Ntimes,) rad, ``freqs``
        (Nfreqs,) Hz, ``pols`` (pyuvdata numbers), ``pol_names``, ``x_orientation``,
        ``site`` (EarthLocation), ``pol_convention``, ``vis_units``,
        ``integration_time`` (s), ``channel_width`` (Hz), ``uvdata`` (the object read).

    Raises
    ------
    InputError
        For any mismatch, naming the file's value and the model's.
    """
    uv = load_uvdata(src, where=where)
    # --- phase type
    cat = getattr(uv, "phase_center_catalog", None) or {}
    projected = [c for c in cat.values() if c.get("cat_type") != "unprojected"]
    if projected:
        if not unphase:
            raise InputError(
                f"{where}: phase type is {projected[0].get('cat_type')!r} (phased to "
                f"{projected[0].get('cat_name')!r}), the model needs drift-scan (unprojected) "
                "data; pass unphase (--unphase) to unproject them with pyuvdata")
        uv = uv.copy()
        uv.unproject_phase()
    # --- units
    units = [vis_units] if isinstance(vis_units, str) else list(vis_units)
    vu = str(uv.vis_units)
    unit_factor = None
    if vu not in units:
        if vu.lower().replace(" ", "") in ("ksr", "kstr") and "Jy" in units:
            unit_factor = "ksr"
        else:
            raise InputError(f"{where}: vis_units {vu!r} cannot be used; the model needs "
                             f"{' or '.join(repr(u) for u in units)}")
    # --- polarisations
    xo = _x_orientation(uv)
    allpols = [int(p) for p in uv.polarization_array]
    cross_ok = polarized_model or allow_cross_pols
    if pols is None:
        want = [p for p in allpols if p in PARALLEL_POLS or (cross_ok and p in CROSS_POLS)]
        if not want:
            raise InputError(f"{where}: no parallel-hand polarisation in the file "
                             f"({', '.join(_pol_names(allpols, xo))}); the model needs one "
                             "of xx/yy (ee/nn)")
    else:
        want = pol_numbers(pols, xo, where=f"{where}: pols")
    for p in want:
        if p not in allpols:
            raise InputError(f"{where}: polarisation {_pol_names([p], xo)[0]!r} is not in "
                             f"the file, which has {', '.join(_pol_names(allpols, xo))}")
        if p in CROSS_POLS and not cross_ok:
            raise InputError(f"{where}: polarisation {_pol_names([p], xo)[0]!r} is a "
                             "cross-hand, and the model is unpolarised; choose a "
                             "parallel hand (ee/nn, xx/yy) or allow cross-hands explicitly")
    # --- pol convention
    factor = 1.0
    pc = getattr(uv, "pol_convention", None)
    if pol_convention is not None:
        if pol_convention not in ("sum", "avg"):
            raise InputError(f"pol_convention: expected 'sum' or 'avg', received "
                             f"{pol_convention!r}")
        if pc is None:
            if vu != "UNCALIB":
                warnings.warn(f"{where}: the file states no pol_convention; assuming "
                              f"{pol_convention!r} (I = XX + YY for 'sum')", stacklevel=2)
        elif pc not in ("sum", "avg"):
            raise InputError(f"{where}: pol_convention {pc!r} is not 'sum' or 'avg'")
        elif pc != pol_convention:
            # avg: I = (XX+YY)/2, so every visibility is twice its 'sum' value
            factor = 0.5 if pc == "avg" else 2.0
    # --- antennas and baselines
    tel = uv.telescope
    file_pairs = [tuple(int(a) for a in p) for p in uv.get_antpairs()]
    if antpairs is None:
        pairs = [p for p in file_pairs if include_autos or p[0] != p[1]]
    else:
        pairs = [(int(a), int(b)) for a, b in antpairs]
        have = set(file_pairs)
        missing = [p for p in pairs if p not in have and p[::-1] not in have]
        if missing:
            raise InputError(f"{where}: {len(missing)} of the model's {len(pairs)} antenna "
                             f"pairs are not in the file (first: {missing[:3]}); the file "
                             f"has {len(file_pairs)} pairs")
    if not pairs:
        raise InputError(f"{where}: no baselines to read")
    ants = sorted({a for p in pairs for a in p})
    if ant_numbers is not None:
        allowed = {int(a) for a in ant_numbers}
        extra = [a for a in ants if a not in allowed]
        if extra:
            raise InputError(f"{where}: antenna numbers {extra[:10]} are not in {model} "
                             f"(which has {len(allowed)} antennas, numbers "
                             f"{sorted(allowed)[:10]}{'...' if len(allowed) > 10 else ''})")
    # --- frequencies and times
    fr = np.asarray(uv.freq_array, dtype=np.float64).ravel()
    tt = np.unique(uv.time_array)
    from ..validation import check_freqs, check_times_jd

    if isinstance(src, (str, os.PathLike)):
        src_name = f": file {os.fspath(src)!r}"
    else:   # an object read by pyuvdata remembers its file's name
        fn = getattr(uv, "filename", None)
        fn = [fn] if isinstance(fn, str) else list(fn or [])
        src_name = f": file {', '.join(repr(str(x)) for x in fn)}" if fn else ""
    check_freqs(fr, name=f"{where}{src_name}: freq_array", where="")
    uf, counts = np.unique(fr, return_counts=True)
    if uf.size != fr.size:
        raise InputError(f"{where}{src_name}: freq_array: expected distinct channel "
                         f"frequencies, received {int((counts > 1).sum())} repeated "
                         f"(first {uf[counts > 1][0]:.6f} Hz, {int(counts.max())} times)")
    check_times_jd(tt, name=f"{where}{src_name}: time_array", where="")
    if freqs is not None:
        check_matches("frequencies", fr, freqs, where=where, model=model, atol=1.0)
    if times is not None:
        check_matches("times", tt, times, where=where, model=model, atol=0.01 / 86400)
    # --- data, on a full (time, baseline) grid
    index = {a: i for i, a in enumerate(ants)}
    nt, nf, nb, npol = tt.size, uv.Nfreqs, len(pairs), len(want)
    data = np.zeros((npol, nt, nf, nb), dtype=np.complex128)
    flags = np.ones(data.shape, dtype=bool)
    nsamp = np.zeros(data.shape, dtype=np.float64)
    tpos = np.searchsorted(tt, uv.time_array)
    conj = np.zeros(nb, dtype=bool)
    bl_of = {}
    stored = set(file_pairs)
    for k, (a, b) in enumerate(pairs):
        if (a, b) in stored or a == b:
            bl_of[int(uv.antnums_to_baseline(a, b))] = k
        else:   # stored the other way round: conjugate on read
            bl_of[int(uv.antnums_to_baseline(b, a))] = k
            conj[k] = True
    rows_b = np.array([bl_of.get(int(b), -1) for b in uv.baseline_array])
    seen = np.zeros((nt, nb), dtype=int)
    keep = rows_b >= 0
    np.add.at(seen, (tpos[keep], rows_b[keep]), 1)
    if np.any(seen != 1):
        raise InputError(f"{where}: every baseline must appear exactly once per time "
                         f"({int(np.sum(seen == 0))} missing, {int(np.sum(seen > 1))} "
                         "repeated)")
    pidx = [allpols.index(p) for p in want]
    for k, pi in enumerate(pidx):
        data[k, tpos[keep], :, rows_b[keep]] = uv.data_array[keep, :, pi]
        flags[k, tpos[keep], :, rows_b[keep]] = uv.flag_array[keep, :, pi]
        nsamp[k, tpos[keep], :, rows_b[keep]] = uv.nsample_array[keep, :, pi]
    if np.any(conj):
        data[..., conj] = data[..., conj].conj()
    if factor != 1.0:
        data *= factor
    if unit_factor == "ksr":   # K sr -> Jy: 2 k nu^2 / c^2 * 1e26
        from astropy.constants import c, k_B

        jy = 2 * k_B.value * fr**2 / c.value**2 * 1e26
        data *= jy[None, None, :, None]
    enu = tel.get_enu_antpos()
    tel_nums = [int(n) for n in tel.antenna_numbers]
    for a in ants:
        if a not in tel_nums:
            raise InputError(f"{where}: antenna {a} has data but no position in the file")
    rows = [tel_nums.index(a) for a in ants]
    lsts = np.array([np.asarray(uv.lst_array)[np.nonzero(uv.time_array == t)[0][0]]
                     for t in tt])
    itime = float(np.median(uv.integration_time))
    cw = float(np.median(np.abs(np.asarray(uv.channel_width))))
    return {"data": data, "flags": flags, "nsamples": nsamp,
            "ant1": np.array([index[a] for a, _ in pairs], dtype=np.int64),
            "ant2": np.array([index[b] for _, b in pairs], dtype=np.int64),
            "antpairs": pairs, "ant_numbers": np.array(ants, dtype=np.int64),
            "ant_names": [str(tel.antenna_names[r]) for r in rows],
            "antpos": np.asarray(enu)[rows], "times": tt, "lsts": lsts, "freqs": fr,
            "pols": np.array(want, dtype=np.int64), "pol_names": _pol_names(want, xo),
            "x_orientation": xo, "site": tel.location,
            "pol_convention": pol_convention if pol_convention is not None else pc,
            "vis_units": "Jy" if unit_factor else vu, "integration_time": itime,
            "channel_width": cw, "telescope_name": str(tel.name), "uvdata": uv}


def uvdata_to_visibilities(uv: Any, antpairs: Sequence[tuple[int, int]] | None = None,
                           pols: Sequence[str | int] | None = None, *,
                           where: str = "data") -> tuple:
    """Extract ``(Npols, Ntimes, Nfreqs, Nbls)`` visibilities from a ``UVData``.

    A thin layer over :func:`read_uvdata` without model checks (every polarisation by
    default, cross-hands included).

    Returns
    -------
    vis : complex array, (Npols, Ntimes, Nfreqs, Nbls)
    meta : dict
        ``freqs`` (Hz), ``times_jd``, ``antpairs`` (numbers), ``pols`` (ints),
        ``ant_numbers``, ``antpos`` (ENU m, rows of ``ant_numbers``), ``pol_convention``.
    """
    if pols is None:
        pols = [int(p) for p in uv.polarization_array]
    r = read_uvdata(uv, pols=pols, allow_cross_pols=True, antpairs=antpairs,
                    pol_convention=None, vis_units=[str(uv.vis_units)], where=where)
    vis = r["data"].astype(uv.data_array.dtype)
    meta = {"freqs": r["freqs"], "times_jd": r["times"], "antpairs": r["antpairs"],
            "pols": [int(p) for p in r["pols"]],
            "ant_numbers": np.asarray(uv.telescope.antenna_numbers),
            "antpos": np.asarray(uv.telescope.get_enu_antpos()),
            "pol_convention": uv.pol_convention, "vis_units": str(uv.vis_units)}
    return vis, meta


def write_uvh5(path: str | os.PathLike, vis: Any, *, clobber: bool = False,
               **kwargs: Any) -> Any:
    """Write linlim visibilities to a uvh5 file (arguments of :func:`vis_to_uvdata`).

    Returns the ``UVData`` written.
    """
    if os.path.exists(path) and not clobber:
        raise InputError(f"write_uvh5: path: {os.fspath(path)!r} already exists; pass "
                         "clobber=True to replace it, or choose another path")
    uv = vis_to_uvdata(vis, **kwargs)
    uv.write_uvh5(os.fspath(path), clobber=clobber)
    return uv


def read_uvh5(path: str | os.PathLike, **kwargs: Any) -> tuple:
    """Read a uvh5 file into ``(vis (Npols, Ntimes, Nfreqs, Nbls), meta)``; keyword
    arguments go to :func:`uvdata_to_visibilities` (:func:`read_uvdata` checks a file
    against a model)."""
    where = f"read_uvh5: file {os.fspath(path)!r}"
    kwargs.setdefault("where", where)
    return uvdata_to_visibilities(load_uvdata(path, where=where), **kwargs)
