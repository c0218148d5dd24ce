"""Gain solutions to and from pyuvdata ``UVCal`` (calfits, calh5); gains on ``UVData``.

Convention: ``gain_convention="divide"``, i.e. ``raw = g_i conj(g_j) V_true``, which is what
:func:`linlim.calibration.di_gains` computes; calibrating divides, undoing multiplies.

Layouts
-------
linlim gains: ``(Njones, Nant, Ntimes_sol, Nfreqs_sol)`` complex (feed/Jones axis first, as
in :func:`~linlim.calibration.di_gains` with ``pols``). pyuvdata ``gain_array``:
``(Nants_data, Nfreqs, Ntimes, Njones)``. Visibilities from ``UVData``:
``(Npols, Ntimes, Nfreqs, Nbl)`` with antenna *indices* into ``ant_numbers``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ShapeError

__all__ = [
    "POL_TO_JONES",
    "gains_to_uvcal",
    "uvcal_to_gains",
    "write_uvcal",
    "read_uvcal",
    "uvdata_to_vis",
    "calibrate_uvdata",
]

#: visibility polarisation number -> (Jones of antenna 1, Jones of antenna 2)
POL_TO_JONES = {-5: (-5, -5), -6: (-6, -6), -7: (-5, -6), -8: (-6, -5),
                -1: (-1, -1), -2: (-2, -2), -3: (-1, -2), -4: (-2, -1)}


def gains_to_uvcal(gains: Any, *, telescope: Any, times: Any, freqs: Any,
                   ant_numbers: Sequence[int], jones: Sequence[int] = (-5,),
                   flags: Any = None, integration_time: Any = None,
                   channel_width: Any = None, ref_antenna_name: str | None = None,
                   sky_catalog: str = "linlim model", gain_scale: str | None = "Jy",
                   pol_convention: str | None = "sum", history: str = "",
                   quality: Any = None, total_quality: Any = None,
                   time_range: Any = None, spw_id: int | None = None) -> Any:
    """Build a ``UVCal`` (sky calibration, ``gain_convention="divide"``) from linlim gains.

    Parameters
    ----------
    gains : complex array, shape (Njones, Nant, Ntimes_sol, Nfreqs_sol) or (Nant, ...)
        Solutions (a 3-D array means one Jones term).
    telescope : pyuvdata.Telescope
        Array metadata (e.g. ``uvdata.telescope``).
    times : array, shape (Ntimes_sol,)
        Julian dates of the solution cells (their centres).
    freqs : array, shape (Nfreqs_sol,)
        Frequencies of the solution cells in Hz.
    ant_numbers : sequence of int, length Nant
        Antenna numbers of the gain array's antenna axis.
    jones : sequence of int
        Jones numbers (-5 Jxx, -6 Jyy, ...), one per leading entry of ``gains``.
    flags : bool array, same shape as gains, optional
    integration_time, channel_width : float or array, optional
        Cell durations (s) and widths (Hz); by default from the spacing.
    ref_antenna_name : str, optional
    sky_catalog : str
    gain_scale : str or None
        Units of the calibrated data ("Jy").
    pol_convention : {"sum", "avg"} or None
        linlim's ``XX = 0.5 I |A|^2`` means ``I = XX + YY``, pyuvdata's "sum" (needs
        ``gain_scale``).

    Returns
    -------
    pyuvdata.UVCal
    """
    from pyuvdata import UVCal

    g = np.asarray(gains)
    if g.ndim == 3:
        g = g[None]
    if g.ndim != 4:
        raise ShapeError(f"gains_to_uvcal: gains must be (Njones, Nant, Ntimes, Nfreqs), "
                         f"received shape {np.asarray(gains).shape}")
    nj, nant, nt, nf = g.shape
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    if times.shape != (nt,) or freqs.shape != (nf,) or len(ant_numbers) != nant or \
            len(jones) != nj:
        raise ShapeError(
            f"gains_to_uvcal: gains {g.shape} need {nj} jones, {nant} ant_numbers, {nt} "
            f"times, {nf} freqs; received {len(jones)}, {len(ant_numbers)}, "
            f"{times.size}, {freqs.size}")
    f = np.zeros(g.shape, dtype=bool) if flags is None else np.asarray(flags, dtype=bool)
    if f.ndim == 3:
        f = f[None]
    if f.shape != g.shape:
        raise ShapeError(f"gains_to_uvcal: flags {f.shape} must match gains {g.shape}")
    if integration_time is None:
        integration_time = float(np.median(np.diff(times)) * 86400.0) if nt > 1 else 1.0
    if channel_width is None:
        channel_width = float(np.median(np.diff(freqs))) if nf > 1 else 1.0
    if ref_antenna_name is None:
        names = list(telescope.antenna_names)
        nums = list(telescope.antenna_numbers)
        ref_antenna_name = names[nums.index(int(ant_numbers[0]))]
    uvc = UVCal.new(
        cal_style="sky", gain_convention="divide", jones_array=np.asarray(jones),
        telescope=telescope, freq_array=freqs,
        **({"time_array": times} if time_range is None else
           {"time_range": np.asarray(time_range, dtype=np.float64).reshape(nt, 2)}),
        integration_time=integration_time, channel_width=channel_width,
        ant_array=np.asarray(ant_numbers), ref_antenna_name=ref_antenna_name,
        sky_catalog=sky_catalog, update_telescope_from_known=False,
        history=history or "linlim calibration",
        **({"gain_scale": gain_scale} if gain_scale else {}),
        **({"pol_convention": pol_convention} if gain_scale and pol_convention else {}),
        data={"gain_array": np.transpose(g, (1, 3, 2, 0)).astype(np.complex128),
              "flag_array": np.transpose(f, (1, 3, 2, 0))},
    )
    if spw_id is not None:
        uvc.spw_array = np.array([int(spw_id)])
        uvc.flex_spw_id_array = np.full(nf, int(spw_id))
    if quality is not None:
        q = np.asarray(quality, dtype=np.float64)
        q = q[None] if q.ndim == 3 else q
        if q.shape != g.shape:
            raise ShapeError(f"gains_to_uvcal: quality {q.shape} must match gains {g.shape}")
        uvc.quality_array = np.transpose(q, (1, 3, 2, 0))
    if total_quality is not None:
        tq = np.asarray(total_quality, dtype=np.float64)
        tq = tq[None] if tq.ndim == 2 else tq
        if tq.shape != (nj, nt, nf):
            raise ShapeError(f"gains_to_uvcal: total_quality {tq.shape} must be "
                             f"{(nj, nt, nf)} (Njones, Ntimes, Nfreqs)")
        uvc.total_quality_array = np.transpose(tq, (2, 1, 0))
    uvc.check()
    return uvc


def uvcal_to_gains(uvc: Any, ant_numbers: Sequence[int] | None = None) -> dict:
    """Gains and metadata from a ``UVCal`` (converted to the "divide" convention).

    Parameters
    ----------
    uvc : pyuvdata.UVCal
        A gain-type (``cal_type="gain"``) calibration with per-channel frequencies.
    ant_numbers : sequence of int, optional
        Antenna order wanted on the gain axis (default ``uvc.ant_array``); antennas missing
        from the file get gain 1 and a flag.

    Returns
    -------
    dict
        ``gains`` (Njones, Nant, Ntimes, Nfreqs) complex128, ``flags`` (same, bool),
        ``ant_numbers``, ``times`` (JD), ``freqs`` (Hz), ``jones``.
    """
    if uvc.cal_type != "gain" or uvc.gain_array is None:
        raise InputError(f"uvcal_to_gains: need a gain calibration, received cal_type "
                         f"{uvc.cal_type!r}")
    g = np.transpose(uvc.gain_array, (3, 0, 2, 1)).astype(np.complex128)
    fl = np.transpose(uvc.flag_array, (3, 0, 2, 1)).astype(bool)
    if uvc.gain_convention == "multiply":
        g = np.where(g != 0, 1.0 / np.where(g != 0, g, 1.0), 0.0)
    have = [int(a) for a in uvc.ant_array]
    want = have if ant_numbers is None else [int(a) for a in ant_numbers]
    out_g = np.ones(g.shape[:1] + (len(want),) + g.shape[2:], dtype=np.complex128)
    out_f = np.ones(out_g.shape, dtype=bool)
    for k, a in enumerate(want):
        if a in have:
            out_g[:, k] = g[:, have.index(a)]
            out_f[:, k] = fl[:, have.index(a)]
    if uvc.time_array is not None:
        times = np.asarray(uvc.time_array, dtype=np.float64)
    else:   # HERA files store one solution per time range: its middle
        times = np.asarray(uvc.time_range, dtype=np.float64).reshape(-1, 2).mean(axis=1)
    quality = None
    if getattr(uvc, "quality_array", None) is not None:
        q = np.transpose(uvc.quality_array, (3, 0, 2, 1)).astype(np.float64)
        quality = np.zeros(out_g.shape)
        for k, a in enumerate(want):
            if a in have:
                quality[:, k] = q[:, have.index(a)]
    return {"gains": out_g, "flags": out_f, "ant_numbers": np.asarray(want),
            "times": times, "freqs": np.asarray(uvc.freq_array).ravel(),
            "jones": np.asarray(uvc.jones_array), "quality": quality,
            "time_range": None if uvc.time_range is None else np.asarray(uvc.time_range)}


def _calfits_times(uvc: Any) -> Any:
    """``uvc`` in a form calfits can hold: calfits stores one time range at most, so several
    per-time solutions (one ``time_range`` each) are written as a ``time_array`` of the
    ranges' middles (and ``lst_array``), without ``time_range``."""
    tr = getattr(uvc, "time_range", None)
    if tr is None or np.asarray(tr).reshape(-1, 2).shape[0] <= 1:
        return uvc
    out = uvc.copy()
    out.time_array = np.asarray(tr, dtype=np.float64).reshape(-1, 2).mean(axis=1)
    out.time_range = None
    out.lst_range = None
    out.set_lsts_from_time_array()
    out.check()
    return out


def write_uvcal(uvc: Any, path: str | os.PathLike, clobber: bool = False) -> None:
    """Write a ``UVCal`` to ``.calfits`` / ``.fits`` (calfits) or ``.calh5`` / ``.h5``.

    calfits holds evenly spaced solution times of one integration time, and at most one
    time range: per-time solutions with a time range each are written with their middle
    times (:func:`_calfits_times`); solutions calfits cannot hold at all (uneven cells)
    raise :class:`InputError` naming the file and suggesting ``.calh5``.
    """
    p = os.fspath(path)
    if p.endswith((".calfits", ".fits")):
        try:
            _calfits_times(uvc).write_calfits(p, clobber=clobber)
        except ValueError as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "calfits" not in msg:
                raise
            raise InputError(f"write_uvcal: cannot write {p!r} as calfits: {msg}; write a "
                             ".calh5 file instead (it holds any solution times)") from None
    elif p.endswith((".calh5", ".h5", ".hdf5")):
        uvc.write_calh5(p, clobber=clobber)
    else:
        raise InputError(f"write_uvcal: extension of {p!r} must be .calfits/.fits or "
                         ".calh5/.h5/.hdf5")


def read_uvcal(path: str | os.PathLike, *, where: str = "read_uvcal") -> Any:
    """Read a calfits or calh5 file into a ``UVCal``.

    Raises
    ------
    InputError
        When the file does not exist or pyuvdata cannot read it as a calibration (names
        ``where``, the path and pyuvdata's reason).
    """
    from pyuvdata import UVCal

    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"{where}: no such file {p!r}")
    if os.path.isdir(p):
        raise InputError(f"{where}: {p!r} is a folder, expected a calfits or calh5 file")
    try:
        uvc = UVCal.from_file(p)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{where}: pyuvdata cannot read {p!r} as a calibration (expected a "
                         f"calfits or calh5 gain file): {reason}") from None
    from ..validation import check_freqs, check_times_jd

    # the metadata the gains are matched by: Hz (not MHz) and Julian dates (not MJD)
    if getattr(uvc, "freq_array", None) is not None:
        check_freqs(np.ravel(uvc.freq_array), f"{p!r}: freq_array", where)
    for attr in ("time_array", "time_range"):
        if getattr(uvc, attr, None) is not None:
            check_times_jd(np.ravel(uvc.time_array if attr == "time_array"
                                    else uvc.time_range), f"{p!r}: {attr}", where)
    return uvc


def uvdata_to_vis(uvd: Any, pols: Sequence[int] | None = None,
                  include_autos: bool = True) -> dict:
    """Visibilities of a ``UVData`` in linlim's layout (:func:`linlim.io.uvdata.read_uvdata`
    without model checks; kept for existing callers).

    Returns
    -------
    dict
        ``data`` (Npols, Ntimes, Nfreqs, Nbl) complex128, ``flags`` (same, bool),
        ``nsamples`` (same, float), ``ant1``, ``ant2`` (Nbl,) indices into
        ``ant_numbers``, ``ant_numbers``, ``antpos`` (Nant, 3) ENU metres, ``times``
        (Ntimes,) JD, ``freqs`` (Nfreqs,) Hz, ``pols`` (pyuvdata numbers), and the other
        keys of :func:`~linlim.io.uvdata.read_uvdata`.

    Raises
    ------
    InputError
        If some baseline is missing at some time (the layout needs a full grid), or a
        polarisation is not in the data.
    """
    from .uvdata import read_uvdata

    pols = [int(p) for p in uvd.polarization_array] if pols is None else pols
    return read_uvdata(uvd, pols=pols, allow_cross_pols=True, include_autos=include_autos,
                       pol_convention=None, vis_units=[str(uvd.vis_units)],
                       where="uvdata_to_vis")


def calibrate_uvdata(uvd: Any, gains: Any, *, undo: bool = False, inplace: bool = False,
                     flag_missing: bool = True, where: str = "calibrate_uvdata") -> Any:
    """Apply (divide out) or undo (multiply in) antenna gains on a ``UVData``.

    ``calibrated = raw / (g_i conj(g_j))`` ("divide" convention); ``undo=True`` computes
    ``raw = calibrated g_i conj(g_j)`` (corrupting with the gains). Each data time uses the
    solution whose time is nearest; channels must match the solution's frequencies.

    Parameters
    ----------
    uvd : pyuvdata.UVData
    gains : pyuvdata.UVCal or dict
        A ``UVCal`` or the dict of :func:`uvcal_to_gains`.
    undo : bool
    inplace : bool
        Modify ``uvd`` (else a copy is returned).
    flag_missing : bool
        Flag samples whose antennas have flagged, missing, zero or NaN/inf gains (else
        raise). A warning counts the samples so flagged.
    where : str
        Name used in messages (``"simulate --gains 'g.calfits'"``).

    Returns
    -------
    pyuvdata.UVData

    Raises
    ------
    InputError
        When the gains flag every sample that was not flagged already (no antenna in
        common, all gains zero or NaN, ...), or an antenna has no solution and not
        ``flag_missing``.
    """
    sol = uvcal_to_gains(gains) if not isinstance(gains, dict) else gains
    out = uvd if inplace else uvd.copy()
    freqs = np.asarray(out.freq_array).ravel()
    if sol["freqs"].size != freqs.size or not np.allclose(sol["freqs"], freqs, rtol=0,
                                                          atol=1e-3):
        raise InputError(f"{where}: the solutions' {sol['freqs'].size} frequencies do "
                         f"not match the data's {freqs.size} channels")
    stimes = np.asarray(sol["times"])
    tsel = np.abs(out.time_array[:, None] - stimes[None, :]).argmin(axis=1)   # (Nblts,)
    ants = list(int(a) for a in sol["ant_numbers"])
    jones = list(int(j) for j in sol["jones"])
    a1 = np.array([ants.index(a) if a in ants else -1 for a in out.ant_1_array])
    a2 = np.array([ants.index(a) if a in ants else -1 for a in out.ant_2_array])
    missing = (a1 < 0) | (a2 < 0)
    if np.any(missing) and not flag_missing:
        lack = sorted({int(a) for a, i in zip(out.ant_1_array, a1) if i < 0}
                      | {int(a) for a, i in zip(out.ant_2_array, a2) if i < 0})
        raise InputError(f"{where}: antennas {lack[:10]} of the data have no solution "
                         f"(the solutions have antennas {ants[:10]})")
    was_flagged = np.asarray(out.flag_array, dtype=bool).copy()
    n_missing = n_badgain = 0
    a1c, a2c = np.where(a1 < 0, 0, a1), np.where(a2 < 0, 0, a2)
    for ip, pol in enumerate(out.polarization_array):
        j1, j2 = POL_TO_JONES[int(pol)]
        if j1 not in jones or j2 not in jones:
            raise InputError(f"{where}: polarisation {pol} needs Jones {j1}, {j2}; "
                             f"the solutions have {jones}")
        k1, k2 = jones.index(j1), jones.index(j2)
        g1 = sol["gains"][k1, a1c, tsel, :]                 # (Nblts, Nfreqs)
        g2 = sol["gains"][k2, a2c, tsel, :]
        f = sol["flags"][k1, a1c, tsel, :] | sol["flags"][k2, a2c, tsel, :]
        f |= missing[:, None]
        gg = g1 * g2.conj()
        if k1 == k2:  # autos: exactly real |g|^2 (pyuvdata refuses complex autos)
            same = (a1c == a2c)[:, None]
            gg = np.where(same, np.abs(g1) ** 2 + 0j, gg)
        bad = f | (gg == 0) | ~np.isfinite(gg)
        new = bad & ~was_flagged[:, :, ip]
        n_missing += int(np.sum(new & missing[:, None]))
        n_badgain += int(np.sum(new & ~missing[:, None]))
        if undo:
            out.data_array[:, :, ip] *= np.where(bad, 1.0, gg)
        else:
            out.data_array[:, :, ip] /= np.where(bad, 1.0, gg)
        out.flag_array[:, :, ip] |= bad
    if n_missing or n_badgain:
        total = int(out.flag_array.size)
        lack = sorted({int(a) for a, i in zip(out.ant_1_array, a1) if i < 0}
                      | {int(a) for a, i in zip(out.ant_2_array, a2) if i < 0})
        parts = []
        if n_missing:
            parts.append(f"{n_missing} for data antennas without a solution {lack[:10]}, "
                         f"the solutions have antennas {ants[:10]}")
        if n_badgain:
            parts.append(f"{n_badgain} for flagged, zero or NaN/inf gains")
        detail = "; ".join(parts)
        if np.all(out.flag_array) and not np.all(was_flagged):
            raise InputError(f"{where}: the gains flag every sample of the data "
                             f"({n_missing + n_badgain} of {total}: {detail}); expected "
                             "finite, nonzero, unflagged gains for the data's antennas")
        import warnings

        warnings.warn(f"{where}: flagged {n_missing + n_badgain} of {total} samples "
                      f"({detail})", stacklevel=2)
    return out
