"""Input checks shared by every public entry point, and memory estimates.

One checker per kind of input, each returning the cleaned value (a host NumPy array, a
normalised axis, ...) or raising a linlim error (:mod:`linlim.errors`) whose message names
the argument, what was expected and what was received::

    check_freqs          frequencies in Hz: 1-D, finite, > 0 (MHz/GHz recognised and named)
    check_times_jd       Julian dates in a sane range (an MJD or Unix time is recognised)
    check_directions     unit direction vectors: finite, of unit length
    check_axis/axes      an axis (or axes) of an ndim-array, in range, no wrap-around
    check_flags          boolean flags broadcastable to the data
    check_weights        finite, non-negative weights broadcastable to the data
    check_finite_data    the NaN/inf policy: unflagged non-finite data refused (count and
                         first indices) or, with ``nonfinite="flag"``, flagged with a warning
    check_not_all_flagged  every sample flagged (or weight 0) is an error
    check_beam_values    an array of beam values: finite
    check_pyuvdata_beam  a pyuvdata beam: its frequencies in Hz, covering the requested band

Memory: :func:`array_nbytes` (bytes of an array), :func:`available_memory` (free host or
device memory; capped by the ``LINLIM_MEMORY_LIMIT`` environment variable) and
:func:`check_memory`, which raises :class:`~linlim.errors.InsufficientMemoryError` naming
what needs the memory, how much, how much is free and the option that chunks the work.

This module sits at the bottom of the package order (beside ``backend``): it imports no
other linlim module but ``errors`` and ``backend``.

Examples
--------
>>> check_freqs([100e6, 110e6]).tolist()
[100000000.0, 110000000.0]
>>> check_axis(-1, 3)
2
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from .backend import to_numpy
from .errors import InputError, InsufficientMemoryError, ShapeError
from .units import MIN_FREQ_HZ

__all__ = [
    "MIN_FREQ_HZ",
    "JD_MIN",
    "JD_MAX",
    "MJD_OFFSET",
    "NONFINITE_POLICIES",
    "NonFiniteDataWarning",
    "check_freqs",
    "check_times_jd",
    "check_directions",
    "check_axis",
    "check_axes",
    "check_indices",
    "check_flags",
    "check_weights",
    "check_finite_data",
    "check_not_all_flagged",
    "check_beam_values",
    "check_pyuvdata_beam",
    "check_positions",
    "check_rime_inputs",
    "check_simulate_vis_inputs",
    "check_dense_matrix_memory",
    "check_chain_memory",
    "array_nbytes",
    "available_memory",
    "check_memory",
    "format_bytes",
    "first_indices",
    "check_finite",
]

#: Accepted Julian dates: 1858-11-17 (MJD 0) to AD 2406.
JD_MIN = 2400000.5
JD_MAX = 2600000.0
#: ``JD = MJD + MJD_OFFSET``.
MJD_OFFSET = 2400000.5
#: What the NaN/inf policy can do with unflagged non-finite data.
NONFINITE_POLICIES = ("raise", "flag")


class NonFiniteDataWarning(UserWarning):
    """Unflagged NaN/inf data were flagged because the caller asked (``nonfinite="flag"``)."""


def _label(name: str, where: str) -> str:
    return f"{where}: {name}" if where else name


def _strip_unit(a: Any, unit: str, label: str = "") -> Any:
    if hasattr(a, "unit") and hasattr(a, "to_value"):
        try:
            return a.to_value(unit)
        except Exception as err:  # astropy UnitConversionError and friends
            raise InputError(f"{label + ': ' if label else ''}expected a quantity convertible "
                             f"to {unit}, received unit {a.unit}") from err
    return a


def _host_float(a: Any, label: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(to_numpy(a))
    except Exception as err:
        raise InputError(f"{label}: expected {what}, received {type(a).__name__}") from err
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{label}: expected real numbers ({what}), received dtype "
                         f"{arr.dtype}")
    return arr.astype(np.float64)


def first_indices(mask: Any, k: int = 5) -> list:
    """The first ``k`` indices where ``mask`` is True, as tuples (ints for 1-D)."""
    m = np.asarray(to_numpy(mask), dtype=bool)
    idx = np.argwhere(m)[:k]
    if m.ndim == 1:
        return [int(i[0]) for i in idx]
    return [tuple(int(v) for v in i) for i in idx]


def check_finite(arr: Any, name: str, where: str = "", what: str = "values") -> None:
    """Raise :class:`~linlim.errors.InputError` when ``arr`` holds NaN or inf.

    The message names ``where: name``, what was expected (finite ``what``), the count of
    non-finite entries and the first indices.
    """
    bad = ~np.isfinite(np.asarray(to_numpy(arr)))
    if bad.any():
        raise InputError(f"{_label(name, where)}: expected finite {what}, received "
                         f"{int(bad.sum())} NaN/inf (first at indices {first_indices(bad)})")


# ------------------------------------------------------------------------- frequencies
def check_freqs(freqs: Any, name: str = "freqs", where: str = "", *,
                min_channels: int = 1) -> np.ndarray:
    """Validate frequencies in Hz; return them as a float64 NumPy array (Nfreq,).

    Parameters
    ----------
    freqs : array_like or astropy Quantity, shape (Nfreq,)
        Frequencies in Hz (a Quantity is converted to Hz).
    name : str
        Argument name for messages.
    where : str
        Function or class for messages (e.g. ``"AiryBeam"``).
    min_channels : int
        Fewest channels accepted.

    Returns
    -------
    numpy.ndarray, shape (Nfreq,), float64, Hz

    Raises
    ------
    ShapeError
        Not one-dimensional, or fewer than ``min_channels`` values.
    InputError
        NaN/inf (count and first indices), values <= 0, or values below
        :data:`MIN_FREQ_HZ` (named as MHz or GHz with the conversion to make).
    """
    label = _label(name, where)
    f = _host_float(_strip_unit(freqs, "Hz", label), label, "frequencies in Hz")
    if f.ndim != 1 or f.size < max(1, min_channels):
        raise ShapeError(f"{label}: expected a 1-D array of >= {max(1, min_channels)} "
                         f"frequencies in Hz (Nfreq,), received shape {f.shape}")
    bad = ~np.isfinite(f)
    if bad.any():
        raise InputError(f"{label}: expected finite frequencies in Hz, received "
                         f"{int(bad.sum())} NaN/inf values (first at indices "
                         f"{first_indices(bad)})")
    if np.any(f <= 0):
        raise InputError(f"{label}: expected positive frequencies in Hz (> 0), received "
                         f"minimum {f.min()!r} at index {int(np.argmin(f))}")
    if f.min() < MIN_FREQ_HZ:
        lo, hi = float(f.min()), float(f.max())
        unit = "GHz" if hi < 50.0 else "MHz"
        factor = "1e9" if unit == "GHz" else "1e6"
        raise InputError(
            f"{label}: expected frequencies in Hz (>= {MIN_FREQ_HZ:g}), received values in "
            f"[{lo:.6g}, {hi:.6g}], which look like {unit}; multiply by {factor} "
            f"(e.g. {hi:g} {unit} -> {hi * float(factor):g} Hz)"
        )
    return f


# ------------------------------------------------------------------------------- times
def check_times_jd(times: Any, name: str = "times_jd", where: str = "") -> np.ndarray:
    """Validate Julian dates (UTC); return a float64 NumPy array (Ntimes,).

    Parameters
    ----------
    times : array_like of float, or astropy Time
        Julian dates; a ``Time`` is converted with ``.utc.jd`` (its format does not matter).
        Scalars become shape (1,).
    name, where : str
        Argument and function names for messages.

    Returns
    -------
    numpy.ndarray, shape (Ntimes,), float64

    Raises
    ------
    ShapeError
        More than one dimension, or empty.
    InputError
        Not real numbers, NaN/inf, or outside [:data:`JD_MIN`, :data:`JD_MAX`] (AD 1858 to
        2406). A modified Julian date (or a ``Time`` built from one with ``format="jd"``)
        and a Unix time are recognised and named, with the conversion to make.
    """
    label = _label(name, where)
    from astropy.time import Time

    if isinstance(times, Time):
        arr = np.atleast_1d(np.asarray(times.utc.jd, dtype=np.float64))
    else:
        arr = np.atleast_1d(_host_float(times, label, "Julian dates"))
    if arr.ndim != 1 or arr.size == 0:
        raise ShapeError(f"{label}: expected a non-empty 1-D array of Julian dates (Ntimes,), "
                         f"received shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{label}: expected finite Julian dates, received {int(bad.sum())} "
                         f"NaN/inf values (first at indices {first_indices(bad)})")
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= JD_MIN and hi <= JD_MAX:
        return arr
    if lo >= 0 and hi < JD_MAX - MJD_OFFSET:
        raise InputError(
            f"{label}: expected Julian dates (e.g. 2459000.5), received values in "
            f"[{lo:.10g}, {hi:.10g}], which look like modified Julian dates (MJD); use "
            f"JD = MJD + {MJD_OFFSET} (e.g. Time(mjd, format='mjd').jd)")
    if 1e8 <= lo and hi <= 1e10:
        raise InputError(
            f"{label}: expected Julian dates, received values in [{lo:.10g}, {hi:.10g}], "
            "which look like Unix seconds; use Time(seconds, format='unix').jd")
    raise InputError(f"{label}: expected Julian dates in [{JD_MIN}, {JD_MAX}] (AD 1858 to "
                     f"2406), received values in [{lo:.10g}, {hi:.10g}]")


# -------------------------------------------------------------------------- directions
def check_directions(enu: Any, name: str = "enu", where: str = "", *, axis: int = -2,
                     atol: float | None = None) -> np.ndarray:
    """Validate direction vectors (e.g. topocentric east-north-up): finite, unit length.

    Parameters
    ----------
    enu : array_like
        Vectors with their 3 components along ``axis`` (e.g. (Ntimes, 3, Nsrc)).
    name, where : str
        Argument and function names for messages.
    axis : int
        The component axis.
    atol : float, optional
        Tolerance on ``| |v| - 1 |``; default 1e-6 (float64 input) or 1e-4 (float32).

    Returns
    -------
    numpy.ndarray, float64, same shape

    Raises
    ------
    ShapeError
        If ``axis`` is out of range or does not have length 3.
    InputError
        NaN/inf components (a NaN direction is an error, never "below the horizon"), or
        vectors whose length differs from 1 (count, first indices and the worst length).
    """
    label = _label(name, where)
    raw = np.asarray(to_numpy(enu))
    arr = _host_float(raw, label, "unit direction vectors")
    ax = check_axis(axis, arr.ndim, "axis", label) if arr.ndim else 0
    if arr.ndim == 0 or arr.shape[ax] != 3:
        raise ShapeError(f"{label}: expected 3 components (east, north, up) along axis "
                         f"{axis}, received shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=ax)
    if bad.any():
        raise InputError(f"{label}: expected finite unit vectors, received {int(bad.sum())} "
                         f"direction(s) with NaN/inf components (first at indices "
                         f"{first_indices(bad)} with the component axis removed)")
    if atol is None:
        atol = 1e-4 if raw.dtype == np.float32 else 1e-6
    norm = np.sqrt((arr**2).sum(axis=ax))
    off = np.abs(norm - 1.0) > atol
    if off.any():
        worst = float(norm.ravel()[np.argmax(np.abs(norm - 1.0).ravel())])
        raise InputError(f"{label}: expected unit vectors (| |v| - 1 | <= {atol:g}), received "
                         f"{int(off.sum())} of length != 1 (first at indices "
                         f"{first_indices(off)}, worst length {worst:.6g}); normalise them")
    return arr


def check_positions(pos: Any, name: str = "antpos", where: str = "") -> np.ndarray:
    """Validate antenna positions: (Nant, 3) finite metres; return float64."""
    label = _label(name, where)
    arr = _host_float(_strip_unit(pos, "m", label), label, "positions in metres")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ShapeError(f"{label}: expected positions of shape (Nant, 3) in metres, received "
                         f"shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"{label}: expected finite positions, received {int(bad.sum())} "
                         f"antenna(s) with NaN/inf (first {first_indices(bad)})")
    return arr


# -------------------------------------------------------------------------------- axes
def check_axis(axis: Any, ndim: int, name: str = "axis", where: str = "") -> int:
    """Normalise an axis of an ``ndim``-dimensional array to ``0 .. ndim-1``.

    Negative axes count from the end (NumPy); anything outside ``[-ndim, ndim)`` is an
    error (never wrapped around), as is a non-integer.

    Raises
    ------
    InputError
        Not an integer, or out of range.
    """
    label = _label(name, where)
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise InputError(f"{label}: expected an integer axis, received {axis!r}")
    a = int(axis)
    if not -ndim <= a < ndim:
        raise InputError(f"{label}: expected an axis in [{-ndim}, {ndim - 1}] for an array "
                         f"with {ndim} dimensions, received {a}")
    return a % ndim


def check_axes(axes: Any, ndim: int, name: str = "axis", where: str = "") -> tuple[int, ...]:
    """:func:`check_axis` for an int or a sequence of ints; sorted, duplicates refused."""
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, (bool, np.bool_)):
        return (check_axis(axes, ndim, name, where),)
    try:
        seq = tuple(axes)
    except TypeError:
        raise InputError(f"{_label(name, where)}: expected an integer or a sequence of "
                         f"integers, received {axes!r}") from None
    out = tuple(check_axis(a, ndim, name, where) for a in seq)
    if len(set(out)) != len(out):
        raise InputError(f"{_label(name, where)}: expected distinct axes, received {seq} "
                         f"(normalised {out})")
    return tuple(sorted(out))


def check_indices(index: Any, name: str = "index", where: str = "") -> np.ndarray:
    """Validate integer indices (antenna or element indices): integers, or real numbers
    with no fractional part; returns a 1-D int64 NumPy array.

    Raises
    ------
    InputError
        Non-numeric values, or a value with a fractional part (``0.5`` is never truncated
        to ``0``); the message gives the count and the first offending indices.
    """
    label = _label(name, where)
    arr = np.asarray(to_numpy(index))
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).ravel()
    if arr.dtype.kind != "f":
        raise InputError(f"{label}: expected integer indices, received dtype {arr.dtype}")
    bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if bad.any():
        raise InputError(f"{label}: expected integer indices, received {int(bad.sum())} "
                         f"non-integer value(s) (first at indices {first_indices(bad)}: "
                         f"{arr[bad].ravel()[:3].tolist()})")
    return arr.astype(np.int64).ravel()


# ------------------------------------------------------------------- flags and weights
def check_flags(flags: Any, shape: Sequence[int], name: str = "flags",
                where: str = "") -> np.ndarray:
    """Validate flags: booleans (or numbers exactly 0/1) broadcastable to ``shape``.

    Returns
    -------
    numpy.ndarray of bool, ``shape`` (a read-only broadcast view)
    """
    label = _label(name, where)
    f = np.asarray(to_numpy(flags))
    if f.dtype.kind == "b":
        pass
    elif f.dtype.kind in "iuf" and (f.size == 0 or bool(np.all((f == 0) | (f == 1)))):
        f = f.astype(bool)
    else:
        raise InputError(f"{label}: expected booleans (True = flagged) or exactly 0/1, "
                         f"received dtype "
                         f"{f.dtype}" + (f" with values in [{f.min()}, {f.max()}]"
                                         if f.dtype.kind in "iuf" and f.size else ""))
    try:
        return np.broadcast_to(f, tuple(shape))
    except ValueError:
        raise ShapeError(f"{label}: expected a shape broadcastable to {tuple(shape)}, "
                         f"received {f.shape}") from None


def check_weights(weights: Any, shape: Sequence[int], name: str = "weights",
                  where: str = "") -> np.ndarray:
    """Validate weights (inverse variances): finite, >= 0, broadcastable to ``shape``.

    Returns
    -------
    numpy.ndarray of float64, ``shape`` (a copy)
    """
    label = _label(name, where)
    w = _host_float(weights, label, "non-negative weights")
    bad = ~np.isfinite(w)
    if bad.any():
        raise InputError(f"{label}: expected finite weights, received {int(bad.sum())} "
                         f"NaN/inf values (first at indices {first_indices(bad)})")
    if np.any(w < 0):
        raise InputError(f"{label}: expected weights >= 0, received minimum {w.min()!r}")
    try:
        return np.array(np.broadcast_to(w, tuple(shape)), dtype=np.float64)
    except ValueError:
        raise ShapeError(f"{label}: expected a shape broadcastable to {tuple(shape)}, "
                         f"received {w.shape}") from None


def check_finite_data(data: Any, weights: Any, name: str = "data", where: str = "", *,
                      nonfinite: str = "raise") -> np.ndarray:
    """Apply the NaN/inf policy: unflagged non-finite data are refused or flagged.

    Parameters
    ----------
    data : array
        Data (any shape; host or device array).
    weights : array, float, broadcastable to ``data``
        Weights; 0 means flagged. NaN/inf data where the weight is 0 are allowed.
    name, where : str
        Argument and function names for messages.
    nonfinite : {"raise", "flag"}
        ``"raise"`` (default): an :class:`~linlim.errors.InputError` with the count and the
        first indices. ``"flag"``: those samples get weight 0 and a
        :class:`NonFiniteDataWarning` says how many and where.

    Returns
    -------
    numpy.ndarray of float64
        The weights (a host copy of ``data``'s shape), with non-finite samples zeroed under
        ``nonfinite="flag"``.
    """
    label = _label(name, where)
    if nonfinite not in NONFINITE_POLICIES:
        raise InputError(f"{_label('nonfinite', where)}: expected one of "
                         f"{NONFINITE_POLICIES}, received {nonfinite!r}")
    d = np.asarray(to_numpy(data))
    if d.dtype.kind not in "biufc":
        raise InputError(f"{label}: expected numbers (real or complex), received dtype "
                         f"{d.dtype}")
    w = np.array(np.broadcast_to(np.asarray(to_numpy(weights), dtype=np.float64), d.shape))
    bad = ~np.isfinite(d) & (w > 0)
    if not bad.any():
        return w
    n, first = int(bad.sum()), first_indices(bad)
    if nonfinite == "raise":
        raise InputError(f"{label} has {n} NaN/inf sample(s) that are not flagged (of "
                         f"{d.size}; first at indices {first}); expected finite values "
                         "wherever the weight is > 0: flag them (flags=...), give them "
                         "weight 0, or pass nonfinite='flag'")
    warnings.warn(f"{label}: flagged {n} unflagged NaN/inf sample(s) of {d.size} (first at "
                  f"indices {first}) because nonfinite='flag'", NonFiniteDataWarning,
                  stacklevel=3)
    w[bad] = 0.0
    return w


def check_not_all_flagged(weights: Any, name: str = "data", where: str = "") -> int:
    """Refuse data whose every sample is flagged (weight 0); return the unflagged count."""
    n = int(np.count_nonzero(np.asarray(to_numpy(weights)) > 0))
    if n == 0:
        raise InputError(f"{_label(name, where)}: expected some unflagged samples, received "
                         "every sample flagged (or with weight 0); nothing constrains the fit")
    return n


# ------------------------------------------------------------------------------- beams
def check_beam_values(values: Any, name: str = "beams", where: str = "") -> Any:
    """Refuse NaN/inf in an array of beam values (count and first indices); return it."""
    label = _label(name, where)
    a = np.asarray(to_numpy(values))
    if a.dtype.kind not in "biufc":
        raise InputError(f"{label}: expected numeric beam values, received dtype {a.dtype}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise InputError(f"{label}: expected finite beam values, received {int(bad.sum())} "
                         f"NaN/inf (first at indices {first_indices(bad)})")
    return values


def check_pyuvdata_beam(beam: Any, freqs: Any, name: str = "beams", where: str = "") -> None:
    """Check a pyuvdata beam against the requested frequencies (Hz).

    A ``UVBeam``'s own ``freq_array`` must be in Hz and cover ``freqs`` (no silent
    extrapolation); analytic beams accept any frequency in Hz (``freqs`` itself is checked).
    A ``BeamInterface`` is unwrapped.
    """
    label = _label(name, where)
    f = check_freqs(freqs, "freqs", where)
    inner = getattr(beam, "beam", beam)
    fa = getattr(inner, "freq_array", None)
    if fa is None:
        return
    bf = check_freqs(np.ravel(np.asarray(fa)), f"{name}.freq_array", where)
    if bf.size == 1:
        if not np.allclose(f, bf[0], rtol=1e-9, atol=0):
            raise InputError(f"{label}: the beam has one frequency ({bf[0]:.6g} Hz); "
                             f"requested freqs span [{f.min():.6g}, {f.max():.6g}] Hz (it cannot "
                             "interpolate to others)")
        return
    if f.min() < bf.min() * (1 - 1e-9) or f.max() > bf.max() * (1 + 1e-9):
        raise InputError(f"{label}: expected freqs inside the beam's band [{bf.min():.6g}, "
                         f"{bf.max():.6g}] Hz (it cannot interpolate outside it), received "
                         f"[{f.min():.6g}, {f.max():.6g}] Hz")


# ---------------------------------------------------------------------- entry bundles
def check_rime_inputs(enu: Any, antpos: Any, freqs: Any, ant1: Any, *,
                      polarized: bool = False, dtype: Any = "complex128", xp: Any = np,
                      where: str = "RIME") -> None:
    """The checks of the RIME's constructor: unit directions, finite positions, Hz, memory.

    Memory: the output visibilities ``(Nfeed^2, Ntimes, Nfreq, Nbl)`` and one work unit
    (one time, one channel) must fit in the free memory.
    """
    e = check_directions(enu, "enu", where, axis=1)
    if e.ndim != 3:
        raise ShapeError(f"{where}: enu: expected shape (Ntimes, 3, Nsrc), received "
                         f"{e.shape}")
    pos = check_positions(antpos, "antpos", where)
    f = check_freqs(freqs, "freqs", where)
    nbl = int(np.asarray(to_numpy(ant1)).size)
    nfeed = 2 if polarized else 1
    try:
        cd = np.dtype(dtype)
    except TypeError:
        return  # the engine names a bad dtype
    nt, _, ns = e.shape
    out = array_nbytes((nfeed, nfeed, nt, f.size, nbl), cd)
    work = 3 * array_nbytes((pos.shape[0] * nfeed, nfeed * ns), cd)
    check_memory(out + work, f"{where}: output visibilities ({nfeed ** 2} x {nt} times x "
                 f"{f.size} channels x {nbl} baselines, {cd.name}) and one work unit",
                 option="build the operator for fewer times or channels at a time (chunks "
                 "of the time/frequency axes, e.g. linlim.distributed.simulate_uvh5 with "
                 "time_chunk=/freq_chunk=)", xp=xp)


def check_simulate_vis_inputs(fluxes: Any, ra: Any, dec: Any, freqs: Any, times: Any,
                              beams: Any, *, nants: int, npairs: int,
                              polarized: bool = False, precision: int = 2,
                              xp: Any = np) -> None:
    """The checks of ``simulate_vis``'s entry: Hz, JD, finite fluxes, beams, memory."""
    where = "simulate_vis"
    f = check_freqs(freqs, "freqs", where)
    t = check_times_jd(times, "times", where)
    fl = np.asarray(to_numpy(fluxes))
    if fl.dtype.kind in "biufc":
        bad = ~np.isfinite(fl)
        if bad.any():
            raise InputError(f"{where}: fluxes: expected finite flux densities (Jy), received "
                             f"{int(bad.sum())} NaN/inf (first at indices "
                             f"{first_indices(bad)})")
    ns = int(np.asarray(to_numpy(ra)).size)
    cd = np.dtype(np.complex64 if precision == 1 else np.complex128)
    nfeed = 2 if polarized else 1
    blist = None
    shape_err = None                      # raised after the memory check
    if isinstance(beams, np.ndarray) or hasattr(beams, "__cuda_array_interface__"):
        check_beam_values(beams, "beams", where)
        bshape = tuple(int(n) for n in np.shape(beams))
        want = ((2, 2) if polarized else ()) + (t.size, ns, f.size)
        if len(bshape) != 1 + len(want) or bshape[1:] != want:
            shape_err = ShapeError(
                f"{where}: beams: expected an array of beam values of shape (Nbeam, "
                f"{'2, 2, ' if polarized else ''}Ntimes, Nsrc, Nfreq) = (Nbeam, "
                f"{', '.join(str(n) for n in want)}), received shape {bshape}")
        nbeam = bshape[0] if bshape else 1
    else:
        blist = list(beams) if isinstance(beams, (list, tuple)) else [beams]
        nbeam = 0
        for k, b in enumerate(blist):
            is_linlim = callable(getattr(b, "at", None)) and callable(
                getattr(b, "evaluate", None))
            if is_linlim:
                nbeam += int(getattr(b, "nbeam", 1) or 1)
            else:
                check_pyuvdata_beam(b, f, f"beams[{k}]", where)
                nbeam += 1
    beam_bytes = array_nbytes((max(nbeam, 1), nfeed, nfeed, t.size, ns, f.size),
                              np.complex128 if polarized else np.float64)
    out = array_nbytes((f.size, t.size, int(npairs), nfeed, nfeed), cd)
    check_memory(2 * out + beam_bytes,
                 f"{where}: output ({f.size} channels x {t.size} times x {npairs} antenna "
                 f"pairs of {nants} antennas{' x 2 x 2' if polarized else ''}, {cd.name}, "
                 f"held twice while reordered) and beam values ({max(nbeam, 1)} beams x "
                 f"{t.size} times x {ns} sources x channels)",
                 option="call simulate_vis on blocks of times (or channels) and concatenate, "
                 "or use linlim.distributed.simulate_uvh5 with time_chunk=/freq_chunk=", xp=xp)
    if shape_err is not None:
        raise shape_err


def check_dense_matrix_memory(n: int, what: str = "fisher_matrix", *, xp: Any = np,
                              copies: int = 3) -> int:
    """Memory check before a dense (n, n) float64 matrix such as the Fisher matrix
    (``copies`` of it alive at once: the matrix, its transpose sum, a prior term)."""
    need = copies * array_nbytes((n, n), np.float64)
    return check_memory(need, f"{what}: dense {n} x {n} float64 matrix ({copies} copies)",
                        option="use a block-diagonal Fisher (fisher_block_diagonal), the "
                        "matrix-free GaussNewtonOperator, or fewer parameters", xp=xp)


def check_chain_memory(chains: int, draws: int, n: int, what: str = "chains") -> int:
    """Memory check before holding ``(chains, draws, n)`` float64 draws in memory."""
    return check_memory(array_nbytes((chains, draws, n), np.float64),
                        f"{what}: {chains} chains x {draws} draws x {n} parameters float64",
                        option="read the chain file in parts with h5py (datasets 'draws' "
                        "and 'sample_stats/*') or thin the chains")


# ------------------------------------------------------------------------------ memory
def array_nbytes(shape: Sequence[int], dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (Python ints: no overflow)."""
    n = 1
    for s in shape:
        n *= int(s)
    return n * np.dtype(dtype).itemsize


def _parse_bytes(text: str) -> int:
    t = text.strip().lower().replace(" ", "")
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3,
             "mb": 10**6, "gb": 10**9, "tb": 10**12, "k": 2**10, "m": 2**20, "g": 2**30,
             "t": 2**40, "b": 1}
    for u in sorted(units, key=len, reverse=True):
        if t.endswith(u):
            return int(float(t[: -len(u)]) * units[u])
    return int(float(t))


def available_memory(xp: Any = np) -> int:
    """Free memory in bytes: host ``MemAvailable`` (NumPy) or free device memory (CuPy).

    The environment variable ``LINLIM_MEMORY_LIMIT`` (bytes, or e.g. ``"8GiB"``) caps it,
    to keep a run inside a share of a machine.
    """
    free = None
    if getattr(xp, "__name__", "numpy").startswith("cupy"):  # pragma: no cover - GPU only
        free = int(xp.cuda.runtime.memGetInfo()[0])
    else:
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        free = int(line.split()[1]) * 1024
                        break
        except OSError:  # pragma: no cover - non-Linux
            pass
        if free is None:  # pragma: no cover - non-Linux
            try:
                free = int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
            except (ValueError, OSError, AttributeError):
                free = 2**62
    limit = os.environ.get("LINLIM_MEMORY_LIMIT")
    if limit:
        try:
            free = min(free, _parse_bytes(limit))
        except ValueError:
            raise InputError(f"LINLIM_MEMORY_LIMIT: expected bytes (e.g. 8GiB), received "
                             f"{limit!r}") from None
    return int(free)


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(nbytes: int, what: str, *, option: str, xp: Any = np,
                 fraction: float = 0.9, available: int | None = None) -> int:
    """Refuse an allocation that cannot fit before making it.

    Parameters
    ----------
    nbytes : int
        Bytes needed.
    what : str
        What needs them (shapes included), for the message.
    option : str
        The option that chunks the work, for the message.
    xp : module
        NumPy (host memory) or CuPy (device memory).
    fraction : float
        Share of the free memory that may be used.
    available : int, optional
        Free bytes (default :func:`available_memory`).

    Returns
    -------
    int
        ``nbytes``.

    Raises
    ------
    InsufficientMemoryError
        If ``nbytes > fraction * available``.
    """
    free = available_memory(xp) if available is None else int(available)
    if nbytes > fraction * free:
        dev = "device" if getattr(xp, "__name__", "").startswith("cupy") else "host"
        raise InsufficientMemoryError(
            f"{what}: needs {format_bytes(nbytes)} but {format_bytes(free)} of {dev} memory is "
            f"available (using at most {fraction:.0%}); to proceed, {option}")
    return int(nbytes)
