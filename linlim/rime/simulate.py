"""``simulate_vis``: a matvis-style entry point onto :class:`~linlim.rime.RIME`.

Takes what a matvis or fftvis user has (antenna positions, fluxes, RA/Dec, frequencies,
astropy times, pyuvdata beams, a site) and returns visibilities in matvis' layout, so the
two can be compared element by element.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import get_xp, to_numpy
from ..errors import InputError, ShapeError
from ..validation import check_simulate_vis_inputs
from .operator import RIME

__all__ = ["simulate_vis", "evaluate_beams"]


def _source_enu(ra: np.ndarray, dec: np.ndarray, times: Any, site: Any,
                method: str) -> np.ndarray:
    """Topocentric unit vectors (Ntimes, 3, Nsrc) from ``linlim.telescope.coordinates``.

    ``times`` is passed as the astropy ``Time`` the caller gave: a float JD loses up to
    ~20 microseconds, enough to move source vectors by ~1e-9 (far above the 1e-10 at which
    we agree with matvis)."""
    from ..telescope.coordinates import source_enu

    return np.asarray(source_enu(ra, dec, times, site, method=method), dtype=np.float64)


def _prepare_beam(beam: Any, polarized: bool, use_feed: str) -> Any:
    """A pyuvdata ``BeamInterface`` prepared as matvis does (power beam of one feed for
    the unpolarised case, E-field beam otherwise)."""
    from pyuvdata import BeamInterface

    bi = beam if isinstance(beam, BeamInterface) else BeamInterface(beam)
    if polarized:
        if bi.beam_type != "efield":
            raise InputError("beams: polarized=True needs E-field beams, received a "
                             f"{bi.beam_type} beam")
        return bi
    if bi.beam_type == "power" and bi.Npols == 1:
        return bi
    if bi.beam_type == "efield":
        bi = bi.as_power_beam(include_cross_pols=False, allow_beam_mutation=False)
    if bi.Npols > 1:
        bi = bi.with_feeds([use_feed])
    return bi


def _is_linlim_beam(beam: Any) -> bool:
    return callable(getattr(beam, "at", None)) and callable(getattr(beam, "evaluate", None))


def _linlim_beam_values(beam: Any, enu: np.ndarray, freqs: np.ndarray,
                        polarized: bool) -> np.ndarray:
    """Values of a linlim beam (``linlim.beam``) at every source and time:
    (Nb, Ntimes, Nsrc, Nfreq), or (Nb, 2, 2, Ntimes, Nsrc, Nfreq) Jones when polarised
    (zero below the horizon, as the linlim beams define)."""
    from ..backend import to_numpy
    from ..telescope.coordinates import enu_to_az_za

    nt, _, ns = enu.shape
    az, za = enu_to_az_za(enu, axis=1, orientation="uvbeam")
    b = beam.at(np.ravel(az), np.ravel(za), freqs)
    vals = np.asarray(to_numpy(b.jones() if polarized else b.evaluate()))
    return vals.reshape(vals.shape[:-2] + (nt, ns, freqs.size))


def evaluate_beams(beams: Sequence[Any], enu: np.ndarray, freqs: np.ndarray, *,
                   polarized: bool = False, use_feed: str = "x",
                   spline_opts: dict | None = None) -> np.ndarray:
    """Evaluate beams at the sources above the horizon, as matvis does.

    pyuvdata beams go through ``BeamInterface.compute_response`` exactly as in matvis; a
    linlim beam (:mod:`linlim.beam`, e.g. ``AiryBeam``) is evaluated at its default
    parameters and contributes its ``Nbeam`` beams in order.

    Parameters
    ----------
    beams : sequence of pyuvdata beams (AnalyticBeam, UVBeam or BeamInterface) or linlim
        beams
    enu : array, shape (Ntimes, 3, Nsrc), float64
    freqs : array, shape (Nfreq,), Hz
    polarized : bool
    use_feed : {"x", "y"}
        Feed of the unpolarised power beam.
    spline_opts : dict, optional
        Passed to UVBeam interpolation.

    Returns
    -------
    array
        (Nbeam, Ntimes, Nsrc, Nfreq) float64 (``sqrt`` of the power beam) when unpolarised,
        else (Nbeam, 2, 2, Ntimes, Nsrc, Nfreq) complex128 Jones ``J[feed, axis]``; zero
        below the horizon.

    Notes
    -----
    Azimuth in the UVBeam convention (east = 0, north = 90 deg) and zenith angle from the
    direction cosines exactly as ``matvis.coordinates.enu_to_az_za(orientation="uvbeam")``.
    """
    if any(_is_linlim_beam(b) for b in beams):
        parts = [_linlim_beam_values(b, enu, freqs, polarized) if _is_linlim_beam(b) else
                 evaluate_beams([b], enu, freqs, polarized=polarized, use_feed=use_feed,
                                spline_opts=spline_opts) for b in beams]
        dtype = np.complex128 if polarized else np.result_type(*parts)
        return np.concatenate([p.astype(dtype) for p in parts], axis=0)
    nt, _, ns = enu.shape
    nf = freqs.size
    prepared = [_prepare_beam(b, polarized, use_feed) for b in beams]
    shape = (len(beams), 2, 2, nt, ns, nf) if polarized else (len(beams), nt, ns, nf)
    out = np.zeros(shape, dtype=np.complex128 if polarized else np.float64)
    kw = {"reuse_spline": True, "check_azza_domain": False,
          "interpolation_function": "az_za_map_coordinates", "spline_opts": spline_opts or {}}
    for t in range(nt):
        up = np.nonzero(enu[t, 2] > 0)[0]
        if up.size == 0:
            continue
        e, n = enu[t, 0, up], enu[t, 1, up]
        lsqr = n**2.0 + e**2.0
        zeta = np.zeros_like(lsqr)
        m = lsqr < 1
        zeta[m] = np.sqrt(1 - lsqr[m])
        az = np.mod(0.5 * np.pi - np.arctan2(e, n), 2 * np.pi)
        za = 0.5 * np.pi - np.arcsin(zeta)
        for b, bi in enumerate(prepared):
            r = bi.compute_response(az_array=az, za_array=za, freq_array=freqs, **kw)
            if polarized:   # r: (Naxes_vec, Nfeeds, Nfreq, Ndir) -> J[feed, axis]
                out[b, :, :, t, up, :] = np.transpose(r, (3, 1, 0, 2))
            else:
                out[b, t, up, :] = np.sqrt(np.real(r[0, 0])).T
    return out


def simulate_vis(ants: Any, fluxes: Any, ra: Any, dec: Any, freqs: Any, times: Any,
                 beams: Any, telescope_loc: Any, *, polarized: bool = False,
                 precision: int = 2, beam_idx: Any = None, antpairs: Any = None,
                 use_feed: str = "x", beam_spline_opts: dict | None = None,
                 coord_method: str = "precise", method: str = "auto",
                 memory_budget: int | None = None, xp: Any = None) -> np.ndarray:
    """Simulate visibilities of point sources, matvis-style.

    Parameters
    ----------
    ants : dict {int: (3,) array} or array (Nant, 3)
        Antenna ENU positions in metres (a dict as matvis takes, or an array).
    fluxes : array, shape (Nsrc, Nfreq)
        Stokes I flux densities in Jy (split evenly between the two linear feeds).
    ra, dec : array, shape (Nsrc,)
        ICRS right ascension and declination in radians.
    freqs : array, shape (Nfreq,)
        Frequencies in Hz.
    times : astropy.time.Time, shape (Ntimes,)
        Observation times.
    beams : pyuvdata or linlim beam, or sequence of them
        ``AiryBeam``, ``GaussianBeam``, ``UVBeam`` or ``BeamInterface`` objects, one per
        distinct beam (see ``beam_idx``), evaluated through ``BeamInterface`` exactly as
        matvis does; linlim beams (``linlim.beam.AiryBeam(...)`` etc., at their default
        parameters; a per-antenna one counts as its ``Nbeam`` beams); or an array of beam
        values already shaped for :class:`RIME`
        ((Nbeam, Ntimes, Nsrc, Nfreq), or with (2, 2) feed/axis after Nbeam).
    telescope_loc : astropy.coordinates.EarthLocation
        Array centre.
    polarized : bool
        Two feeds (returns the 2 x 2 feed products).
    precision : {1, 2}
        1: complex64, 2: complex128 (matvis' convention).
    beam_idx : array, shape (Nant,), int, optional
        Beam of each antenna (default: one shared beam, or one per antenna).
    antpairs : sequence of (int, int), optional
        Antenna pairs (indices into ``ants``); default all ``Nant^2`` ordered pairs in
        matvis' order ``(i, j)`` for ``i`` then ``j``.
    use_feed : {"x", "y"}
        Feed of the unpolarised simulation.
    beam_spline_opts : dict, optional
    coord_method : {"precise", "fast"}
        Passed to ``linlim.telescope.coordinates.source_enu``; ``"precise"`` is astropy
        AltAz per time, as matvis' default.
    method, memory_budget, xp
        As in :class:`RIME`.

    Returns
    -------
    numpy.ndarray
        (Nfreq, Ntimes, Npairs) complex, or (Nfreq, Ntimes, Npairs, 2, 2) when polarized,
        matvis' layout (``[..., p, q]`` pairs feed ``q`` of the first antenna with feed
        ``p`` of the second).
    """
    if isinstance(ants, dict):
        antpos = np.array([ants[k] for k in ants], dtype=np.float64)
    else:
        antpos = np.asarray(ants, dtype=np.float64)
    if antpos.ndim != 2 or antpos.shape[1] != 3:
        raise ShapeError(f"ants: expected (Nant, 3) positions, received {antpos.shape}")
    na = antpos.shape[0]
    times = times if hasattr(times, "jd") else np.asarray(times)   # a list of JDs too
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    freqs = np.asarray(freqs, dtype=np.float64).ravel()
    fluxes = np.asarray(fluxes)
    if fluxes.shape != (ra.size, freqs.size):
        raise ShapeError(f"fluxes: expected shape {(ra.size, freqs.size)} (Nsrc, Nfreq), "
                         f"received {fluxes.shape}")
    if precision not in (1, 2):
        raise InputError(f"precision: expected 1 or 2, received {precision!r}")
    dtype = np.complex64 if precision == 1 else np.complex128
    rdtype = np.float32 if precision == 1 else np.float64
    if antpairs is None:
        a1, a2 = np.divmod(np.arange(na * na), na)
    else:
        ap = np.asarray(antpairs, dtype=np.int64).reshape(-1, 2)
        a1, a2 = ap[:, 0], ap[:, 1]
    check_simulate_vis_inputs(fluxes, ra, dec, freqs, times, beams, nants=na, npairs=a1.size,
                              polarized=polarized, precision=precision, xp=xp or np)
    enu = _source_enu(ra, dec, times if times.ndim else times.reshape(1), telescope_loc,
                      coord_method)

    if isinstance(beams, np.ndarray):
        A = beams
        nbeam = A.shape[0]
    else:
        blist = list(beams) if isinstance(beams, (list, tuple)) else [beams]
        A = evaluate_beams(blist, enu, freqs, polarized=polarized, use_feed=use_feed,
                           spline_opts=beam_spline_opts)
        nbeam = A.shape[0]
    if beam_idx is None:
        if nbeam not in (1, na):
            raise InputError(f"beam_idx: required when the number of beams ({nbeam}) is "
                             f"neither 1 nor Nant ({na})")
        beam_idx = np.zeros(na, dtype=np.int64) if nbeam == 1 else np.arange(na)
    xp = get_xp() if xp is None else xp
    cplx = np.iscomplexobj(A)
    op = RIME(enu, antpos, freqs, a1, a2, beam_index=beam_idx, nbeam=nbeam,
              beam_dtype=dtype if cplx else rdtype, polarized=polarized, dtype=dtype,
              method=method, memory_budget=memory_budget, xp=xp)
    V = to_numpy(op((xp.asarray(fluxes.astype(rdtype)), xp.asarray(A.astype(
        dtype if cplx else rdtype)))))
    if polarized:   # (p, q, t, f, bl) -> matvis (f, t, bl, q', p') with [.., a, b] = V[b, a]
        return np.ascontiguousarray(np.transpose(V, (3, 2, 4, 1, 0)))
    return np.ascontiguousarray(np.transpose(V, (1, 0, 2)))
