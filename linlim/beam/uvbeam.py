"""Fixed beams from pyuvdata objects (``UVBeam`` / beamfits files, analytic beams).

The beam is interpolated once, at construction, with pyuvdata's own
``BeamInterface.compute_response`` (the call matvis and fftvis make), so the values agree
with what those simulators use; afterwards it is a constant array on the operator's
device. As an operator it is linear in a per-(beam, frequency) amplitude ``g``:
``A[b, d, f] = g[b, f] A0[b, d, f]`` (``g = 1`` reproduces the file).
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np

from ..backend import get_xp
from ..errors import InputError
from ..operators.base import LinearOperator
from ..validation import check_beam_values, check_pyuvdata_beam
from .base import check_directions, check_freqs, to_xp

__all__ = ["PixelBeam", "load_beam"]


def load_beam(beam: Any) -> Any:
    """Return a pyuvdata beam object: a ``UVBeam`` or ``AnalyticBeam`` is passed through, a
    path (str or os.PathLike, e.g. a beamfits file) is read with ``UVBeam.from_file``, and
    a ``BeamInterface`` is unwrapped."""
    from pyuvdata import BeamInterface, UVBeam
    from pyuvdata.analytic_beam import AnalyticBeam

    if isinstance(beam, BeamInterface):
        return beam.beam
    if isinstance(beam, (UVBeam, AnalyticBeam)):
        return beam
    if isinstance(beam, (str, os.PathLike)):
        if not os.path.exists(beam):
            raise InputError(f"PixelBeam: beam file {os.fspath(beam)!r} does not exist")
        try:
            return UVBeam.from_file(os.fspath(beam))
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise InputError(f"PixelBeam: pyuvdata cannot read beam file "
                             f"{os.fspath(beam)!r} as a beam (expected a beamfits/UVBeam "
                             f"file): {exc}") from None
    raise InputError(f"PixelBeam: beam must be a pyuvdata UVBeam, AnalyticBeam, "
                     f"BeamInterface or a file path, received {type(beam).__name__}")


#: scipy ``interp1d`` kinds pyuvdata accepts for frequency interpolation.
_INTERP_KINDS = ("linear", "nearest", "nearest-up", "zero", "slinear", "quadratic", "cubic",
                 "previous", "next")


class PixelBeam(LinearOperator):
    """A pyuvdata beam interpolated to fixed directions; linear in a per-frequency amplitude.

    Parameters
    ----------
    beam : UVBeam, AnalyticBeam, BeamInterface, path, or a list of these
        One beam (Nbeam = 1) or one per antenna (Nbeam = len(list)).
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North, pyuvdata's convention) and zenith angle, radians.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz (inside the UVBeam's band).
    unpolarized : {"power", "efield"}
        How the unpolarised beam ``A`` is formed:

        * ``"power"`` (default): matvis' unpolarised mode, ``A = sqrt(P_ff)`` with ``P`` the
          power beam (an E-field beam is converted with pyuvdata, no cross pols) of feed
          ``feed``, interpolated with pyuvdata. Real, non-negative (negative interpolated
          power, possible with cubic splines, is clipped to 0 where matvis would give NaN).
        * ``"efield"``: pyuvdata's unpolarised feed-aligned response
          ``A = (e_az + e_za) / sqrt(2)`` of feed ``feed``: complex, keeps the sign of
          Airy sidelobes. Needs an E-field beam.
    feed : str
        Feed whose response is used (``"x"`` by default, as matvis).
    interpolation_function : str, optional
        pyuvdata interpolation function; default ``"az_za_map_coordinates"`` for az/za
        UVBeams (matvis' choice), pyuvdata's default for HEALPix beams.
    freq_interp_kind : str
        Frequency interpolation (``scipy.interpolate.interp1d`` kind; pyuvdata's and matvis'
        default ``"cubic"``). Frequencies within 1 Hz of a beam frequency use it directly.
        ``"cubic"`` needs >= 4 beam frequencies (``"quadratic"`` 3), else an InputError.
    spline_opts : dict, optional
        Passed to pyuvdata (``order`` etc. for map_coordinates).
    check_azza_domain : bool
        Let pyuvdata check that the directions are inside the beam's coverage.
    xp : module, optional

    Attributes
    ----------
    values : array (Nbeam, Ndir, Nfreq)
        ``A0``: float64 for ``"power"``, complex128 for ``"efield"``.

    Notes
    -----
    Input ``g``: (Nbeam, Nfreq) float64. Output ``A = g[:, None, :] * A0``. The adjoint
    under ``Re <., .>`` is ``g = Re sum_d conj(A0) y``.
    """

    _abstract = False

    def __init__(self, beam: Any, az: Any, za: Any, freqs: Any, *, unpolarized: str = "power",
                 feed: str = "x", interpolation_function: str | None = None,
                 freq_interp_kind: str = "cubic", spline_opts: dict | None = None,
                 check_azza_domain: bool = True, xp: Any = None) -> None:
        az, za = check_directions(az, za, "PixelBeam")
        freqs = check_freqs(freqs, "PixelBeam")
        if unpolarized not in ("power", "efield"):
            raise InputError(f"PixelBeam: unpolarized must be 'power' or 'efield', "
                             f"received {unpolarized!r}")
        beams = [load_beam(b) for b in (beam if isinstance(beam, (list, tuple)) else [beam])]
        if not beams:
            raise InputError("PixelBeam: received an empty list of beams")
        if freq_interp_kind not in _INTERP_KINDS:
            raise InputError(f"PixelBeam: freq_interp_kind: expected one of {_INTERP_KINDS}, "
                             f"received {freq_interp_kind!r}")
        for k, b in enumerate(beams):
            check_pyuvdata_beam(b, freqs, f"beam[{k}]", "PixelBeam")
            fa = getattr(b, "feed_array", None)
            feeds = [str(f) for f in np.ravel(fa)] if fa is not None else list("xyenrl")
            if feed not in feeds:
                raise InputError(f"PixelBeam: feed: expected one of the beam's feeds {feeds} "
                                 f"(beam[{k}]), received {feed!r}")
        self.beams, self.feed, self.unpolarized = beams, feed, unpolarized
        self._config = dict(unpolarized=unpolarized, feed=feed,
                            interpolation_function=interpolation_function,
                            freq_interp_kind=freq_interp_kind, spline_opts=spline_opts,
                            check_azza_domain=check_azza_domain)
        self.az, self.za, self.freqs = az, za, freqs
        self._interp_kw = {"freq_interp_kind": freq_interp_kind, "spline_opts": spline_opts,
                           "check_azza_domain": check_azza_domain,
                           "interpolation_function": interpolation_function}
        vals = np.stack([self._unpolarized(b) for b in beams])      # (Nbeam, Ndir, Nfreq)
        check_beam_values(vals, "beam", "PixelBeam (values interpolated by pyuvdata)")
        xp = get_xp() if xp is None else xp
        super().__init__((len(beams), freqs.size), vals.shape, np.float64, vals.dtype, xp=xp,
                         name="PixelBeam")
        self.values = to_xp(vals, xp)
        self.default_params = to_xp(np.ones(self.in_shape), xp, np.float64)

    # -- interpolation with pyuvdata (CPU, once) -------------------------------------------
    def _response(self, bi: Any) -> np.ndarray:
        """``compute_response`` at this operator's directions: (Naxes, Nfeed|Npol, Nf, Nd)."""
        kw = dict(self._interp_kw)
        if bi._isuvbeam:
            if kw["interpolation_function"] is None and bi.beam.pixel_coordinate_system == "az_za":
                kw["interpolation_function"] = "az_za_map_coordinates"
            self._check_freq_interp(bi.beam, kw["freq_interp_kind"])
        else:
            kw = {}
        try:
            return bi.compute_response(az_array=self.az.copy(), za_array=self.za.copy(),
                                       freq_array=self.freqs.copy(), **kw)
        except ValueError as exc:
            raise InputError(f"PixelBeam: pyuvdata could not interpolate the beam: {exc}") from exc

    def _check_freq_interp(self, uvb: Any, kind: str) -> None:
        """scipy's ``interp1d`` needs order + 1 beam frequencies (cubic: 4) when any
        requested frequency is not one of the beam's (within 1 Hz)."""
        need = {"quadratic": 3, "cubic": 4}.get(str(kind))
        bf = np.asarray(uvb.freq_array, dtype=np.float64).ravel()
        if need is None or bf.size >= need:
            return
        off = np.abs(self.freqs[:, None] - bf[None, :]).min(axis=1) > 1.0
        if off.any():
            raise InputError(
                f"PixelBeam: freq_interp_kind={kind!r} needs >= {need} beam frequencies, "
                f"received a beam with {bf.size} ({bf.tolist()} Hz) and {int(off.sum())} "
                f"requested frequencies between them; pass freq_interp_kind='linear' (or "
                f"'nearest'), or a beam with more frequencies")

    def _feed_index(self, bi: Any) -> int:
        feeds = [str(f) for f in bi.feed_array]
        if self.feed not in feeds:
            raise InputError(f"PixelBeam: feed {self.feed!r} not in the beam's feeds {feeds}")
        return feeds.index(self.feed)

    def _unpolarized(self, beam: Any) -> np.ndarray:
        from pyuvdata import BeamInterface

        bi = BeamInterface(copy.deepcopy(beam) if self.unpolarized == "power" else beam)
        if self.unpolarized == "efield":
            if bi.beam_type != "efield":
                raise InputError("PixelBeam: unpolarized='efield' needs an E-field beam, "
                                 f"received a {bi.beam_type} beam")
            e = self._response(bi)[:, self._feed_index(bi)]          # (2, Nf, Nd)
            return ((e[0] + e[1]) / np.sqrt(2.0)).T.astype(np.complex128)
        if bi.beam_type == "efield":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                bi = bi.as_power_beam(include_cross_pols=False, allow_beam_mutation=True)
        elif bi.beam_type != "power":
            raise InputError(f"PixelBeam: unsupported beam_type {bi.beam_type!r}")
        if bi.Npols > 1:
            bi = bi.with_feeds([self.feed])
        p = self._response(bi)[0, 0].real                            # (Nf, Nd)
        return np.sqrt(np.clip(p, 0.0, None)).T.astype(np.float64)

    # -- operator ------------------------------------------------------------------------
    def _matvec(self, x: Any) -> Any:
        return self.values * x[:, None, :]

    def _rmatvec(self, y: Any) -> Any:
        return (self.values.conj() * y).sum(axis=1)

    def at(self, az: Any = None, za: Any = None, freqs: Any = None) -> PixelBeam:
        """The same beam(s) and options interpolated at other directions and/or frequencies
        (``None`` keeps this operator's)."""
        return PixelBeam(self.beams, self.az if az is None else az,
                         self.za if za is None else za,
                         self.freqs if freqs is None else freqs, xp=self.xp, **self._config)

    def evaluate(self, params: Any = None, *, az: Any = None, za: Any = None,
                 freqs: Any = None) -> Any:
        """Beam values (Nbeam, Ndir, Nfreq); ``params`` (Nbeam, Nfreq) amplitudes, default 1;
        at ``az``, ``za``, ``freqs`` if given (re-interpolated)."""
        if az is not None or za is not None or freqs is not None:
            return self.at(az, za, freqs).evaluate(params)
        return self.matvec(self.default_params if params is None else params)

    def jones(self) -> Any:
        """Interpolated E-field Jones form (Nbeam, 2 [feed], 2 [component az, za], Ndir,
        Nfreq) complex128, straight from pyuvdata (needs E-field beams with two feeds)."""
        from pyuvdata import BeamInterface

        out = []
        for b in self.beams:
            bi = BeamInterface(b)
            if bi.beam_type != "efield" or bi.Nfeeds != 2:
                raise InputError("PixelBeam.jones: needs E-field beams with two feeds, "
                                 f"received a {bi.beam_type} beam with {bi.Nfeeds} feed(s)")
            e = self._response(bi)                                   # (2 comp, 2 feed, Nf, Nd)
            out.append(np.transpose(e, (1, 0, 3, 2)).astype(np.complex128))
        return to_xp(np.stack(out), self.xp)
