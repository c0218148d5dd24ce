"""Point-source catalogues: positions, spectra, selection, file formats.

A :class:`PointSourceCatalog` holds, per source, the ICRS position (radians), the flux
density ``S0`` in Jy at a common reference frequency ``f0`` (Hz), a spectral index
``alpha`` and a curvature ``beta`` (log-parabola)::

    S(f) = S0 (f / f0)^(alpha + beta ln(f / f0)),

and optionally free per-channel fluxes (Jy) on a channel grid, which then take precedence.
:meth:`PointSourceCatalog.fluxes` gives the ``(Nsrc, Nfreq)`` float64 intensities the RIME
consumes, and :meth:`PointSourceCatalog.operator` the matching differentiable spectrum
(:mod:`linlim.sky.spectra`) together with its starting parameters.

Files: CSV (:meth:`~PointSourceCatalog.to_csv`), HDF5 (:meth:`~PointSourceCatalog.to_hdf5`)
and BayesLIM's YAML catalogue format (:meth:`~PointSourceCatalog.from_bayeslim_yaml`, e.g.
its ``GLEAM_ATEAM.yml``).
"""

from __future__ import annotations

import csv
import os
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ShapeError
from ..operators.base import Operator
from .spectra import (
    ChannelAmplitudes,
    LogPolynomialSpectrum,
    PowerLawSpectrum,
    validate_freqs,
    validate_ref_freq,
)

__all__ = ["PointSourceCatalog", "random_catalog", "angular_distance"]

_FORMAT = "linlim.PointSourceCatalog"
_VERSION = 1
_TWO_PI = 2.0 * np.pi


def angular_distance(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Great-circle distance in radians (Vincenty's formula, stable at all separations).

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : array_like
        Positions in radians (broadcast together).
    """
    dra = np.asarray(ra2, dtype=float) - np.asarray(ra1, dtype=float)
    s1, c1 = np.sin(dec1), np.cos(dec1)
    s2, c2 = np.sin(dec2), np.cos(dec2)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    return np.arctan2(num, s1 * s2 + c1 * c2 * np.cos(dra))


def _vector(a: Any, name: str, n: int | None) -> np.ndarray:
    v = np.atleast_1d(np.asarray(a, dtype=np.float64))
    if v.ndim != 1:
        raise ShapeError(f"PointSourceCatalog({name}): expected a 1-D array, received shape "
                         f"{v.shape}")
    if n is not None and v.size != n:
        raise ShapeError(f"PointSourceCatalog({name}): expected {n} values (one per source, "
                         f"like ra), received {v.size}")
    if not np.all(np.isfinite(v)):
        raise InputError(f"PointSourceCatalog({name}): expected finite values, received "
                         f"{int((~np.isfinite(v)).sum())} NaN/inf")
    return v


class PointSourceCatalog:
    """Point sources with (curved) power-law or per-channel spectra.

    Parameters
    ----------
    ra, dec : array_like, shape (Nsrc,)
        ICRS right ascension in [0, 2 pi) and declination in [-pi/2, pi/2], radians.
    flux : array_like, shape (Nsrc,)
        Flux density ``S0`` in Jy at ``ref_freq`` (finite; may be negative, e.g. CLEAN
        residual components, but then log-amplitude spectra refuse it).
    ref_freq : float
        Reference frequency ``f0`` in Hz.
    spectral_index : array_like, shape (Nsrc,), optional
        ``alpha`` (default 0).
    curvature : array_like, shape (Nsrc,), optional
        ``beta`` of the log-parabola (default 0).
    channel_flux : array_like, shape (Nsrc, Nchan), optional
        Free per-channel fluxes in Jy at ``channel_freqs``; if given, :meth:`fluxes`
        interpolates these instead of using the power law.
    channel_freqs : array_like, shape (Nchan,), optional
        Frequencies of ``channel_flux`` in Hz (required with it, increasing).
    names : sequence of str, optional
        Source names (default ``"src0"``, ``"src1"``, ...).

    Raises
    ------
    InputError, ShapeError
        With the offending argument named.

    Examples
    --------
    >>> import numpy as np
    >>> cat = PointSourceCatalog([0.1], [-0.5], [2.0], 150e6, spectral_index=[-1.0])
    >>> cat.fluxes([150e6, 300e6])
    array([[2., 1.]])
    """

    def __init__(self, ra: Any, dec: Any, flux: Any, ref_freq: float,
                 spectral_index: Any = None, curvature: Any = None,
                 channel_flux: Any = None, channel_freqs: Any = None,
                 names: Sequence[str] | None = None) -> None:
        self.ra = _vector(ra, "ra", None)
        n = self.ra.size
        self.dec = _vector(dec, "dec", n)
        if np.any((self.ra < 0) | (self.ra >= _TWO_PI)):
            bad = self.ra[(self.ra < 0) | (self.ra >= _TWO_PI)]
            raise InputError(
                f"PointSourceCatalog(ra): expected radians in [0, 2 pi), received values "
                f"from {bad.min()!r} to {bad.max()!r} (degrees? use np.radians; negative RA? "
                "wrap with np.mod(ra, 2 * np.pi))")
        if np.any(np.abs(self.dec) > np.pi / 2):
            raise InputError(
                f"PointSourceCatalog(dec): expected radians in [-pi/2, pi/2], received "
                f"values up to {np.abs(self.dec).max()!r} in magnitude (degrees? use "
                "np.radians)")
        self.flux = _vector(flux, "flux", n)
        self.ref_freq = validate_ref_freq(ref_freq)
        self.spectral_index = (np.zeros(n) if spectral_index is None
                               else _vector(spectral_index, "spectral_index", n))
        self.curvature = (np.zeros(n) if curvature is None
                          else _vector(curvature, "curvature", n))
        if (channel_flux is None) != (channel_freqs is None):
            raise InputError("PointSourceCatalog: channel_flux and channel_freqs must be "
                             "given together")
        self.channel_flux = self.channel_freqs = None
        if channel_flux is not None:
            cf = np.asarray(channel_freqs, dtype=np.float64)
            self.channel_freqs = validate_freqs(cf, "channel_freqs")
            if self.channel_freqs.size > 1 and np.any(np.diff(self.channel_freqs) <= 0):
                raise InputError("PointSourceCatalog(channel_freqs): expected strictly "
                                 "increasing frequencies")
            s = np.asarray(channel_flux, dtype=np.float64)
            if s.shape != (n, self.channel_freqs.size):
                raise ShapeError(
                    f"PointSourceCatalog(channel_flux): expected shape "
                    f"({n}, {self.channel_freqs.size}) (sources, channel_freqs), received "
                    f"{s.shape}")
            if not np.all(np.isfinite(s)):
                raise InputError("PointSourceCatalog(channel_flux): expected finite values")
            self.channel_flux = s
        if names is None:
            names = [f"src{i}" for i in range(n)]
        names = [str(s) for s in names]
        if len(names) != n:
            raise ShapeError(f"PointSourceCatalog(names): expected {n} names, received "
                             f"{len(names)}")
        self.names = names

    # -- basics --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.ra.size

    @property
    def n_sources(self) -> int:
        """Number of sources."""
        return self.ra.size

    @property
    def has_channels(self) -> bool:
        """True if free per-channel fluxes are stored."""
        return self.channel_flux is not None

    def __repr__(self) -> str:
        mode = f"channel ({self.channel_freqs.size} freqs)" if self.has_channels else (
            "power law")
        return (f"PointSourceCatalog({self.n_sources} sources, ref_freq="
                f"{self.ref_freq / 1e6:g} MHz, {mode})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PointSourceCatalog):
            return NotImplemented
        same = (self.ref_freq == other.ref_freq and self.names == other.names
                and self.has_channels == other.has_channels)
        arrays = ("ra", "dec", "flux", "spectral_index", "curvature")
        if self.has_channels:
            arrays += ("channel_flux", "channel_freqs")
        return same and all(
            np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)

    __hash__ = None  # mutable container

    # -- spectra -------------------------------------------------------------------------
    def fluxes(self, freqs: Any, extrapolate: bool = False) -> np.ndarray:
        """Flux densities ``S[s, f]`` in Jy, shape (Nsrc, Nfreq) float64.

        Parameters
        ----------
        freqs : array_like, shape (Nfreq,)
            Frequencies in Hz.
        extrapolate : bool
            Only for per-channel catalogues: allow linear extrapolation outside
            ``channel_freqs`` (refused by default).

        Notes
        -----
        Power law: ``S0 (f/f0)^(alpha + beta ln(f/f0))``. Per channel: linear interpolation
        in frequency between the stored channels (exact at the stored frequencies).
        """
        f = validate_freqs(freqs)
        if not self.has_channels:
            x = np.log(f / self.ref_freq)[None, :]
            expo = (self.spectral_index[:, None] + self.curvature[:, None] * x) * x
            return self.flux[:, None] * np.exp(expo)
        cf, cs = self.channel_freqs, self.channel_flux
        if cf.size == 1:
            if not np.allclose(f, cf[0], rtol=1e-12, atol=0):
                raise InputError(f"fluxes(freqs): this catalogue has one channel at "
                                 f"{cf[0]!r} Hz only; received other frequencies")
            return np.repeat(cs, f.size, axis=1)
        outside = (f < cf[0] * (1 - 1e-12)) | (f > cf[-1] * (1 + 1e-12))
        if outside.any() and not extrapolate:
            raise InputError(
                f"fluxes(freqs): frequencies from {f.min():.6g} to {f.max():.6g} Hz extend "
                f"outside the catalogue's channels [{cf[0]:.6g}, {cf[-1]:.6g}] Hz; pass "
                "extrapolate=True to extrapolate linearly")
        j = np.clip(np.searchsorted(cf, f) - 1, 0, cf.size - 2)
        w = (f - cf[j]) / (cf[j + 1] - cf[j])
        return cs[:, j] * (1.0 - w) + cs[:, j + 1] * w

    def log_flux(self) -> np.ndarray:
        """``ln S0`` (Nsrc,); raises :class:`InputError` if any flux is <= 0."""
        if np.any(self.flux <= 0):
            bad = np.flatnonzero(self.flux <= 0)
            raise InputError(
                f"PointSourceCatalog.log_flux: log-amplitude spectra need positive fluxes; "
                f"{bad.size} sources have flux <= 0 (first: {self.names[bad[0]]!r} with "
                f"{self.flux[bad[0]]!r} Jy); use model='channel' or drop them with "
                "flux_cut(min_flux=...)")
        return np.log(self.flux)

    def with_ref_freq(self, ref_freq: float) -> PointSourceCatalog:
        """The same power-law spectra expressed at another reference frequency (exact).

        With ``d = ln(f0' / f0)``: ``S0' = S0 exp(alpha d + beta d^2)``,
        ``alpha' = alpha + 2 beta d``, ``beta' = beta``.
        """
        f1 = validate_ref_freq(ref_freq)
        d = np.log(f1 / self.ref_freq)
        a, b = self.spectral_index, self.curvature
        return PointSourceCatalog(
            self.ra, self.dec, self.flux * np.exp(a * d + b * d * d), f1, a + 2 * b * d, b,
            self.channel_flux, self.channel_freqs, self.names)

    def operator(self, freqs: Any, model: str = "powerlaw", n_coef: int = 3,
                 xp: Any = None) -> tuple[Operator, Any]:
        """Differentiable spectrum for these sources and its starting parameters.

        Parameters
        ----------
        freqs : array_like, shape (Nfreq,)
            Frequencies in Hz.
        model : {"powerlaw", "curved", "logpoly", "channel", "channel_relative"}
            ``"powerlaw"``: :class:`~linlim.sky.spectra.PowerLawSpectrum`, parameters
            ``(ln S0, alpha)``; ``"curved"``: also ``beta``; ``"logpoly"``:
            :class:`~linlim.sky.spectra.LogPolynomialSpectrum` with ``n_coef``
            coefficients (Nsrc, n_coef) ``(ln S0, alpha, beta, 0, ...)``; ``"channel"``:
            :class:`~linlim.sky.spectra.ChannelAmplitudes`, parameters ``S[s, f]`` in Jy;
            ``"channel_relative"``: ChannelAmplitudes around :meth:`fluxes` as reference,
            parameters starting at 1.
        n_coef : int
            Number of log-polynomial coefficients (``model="logpoly"``, at least 2).
        xp : module, optional
            Array module (the active backend by default).

        Returns
        -------
        op : Operator
            Parameters -> ``I`` (Nsrc, Nfreq) float64 Jy.
        x0 : array or tuple of arrays
            Parameters reproducing :meth:`fluxes` (on ``xp``); ``op(x0)`` equals
            ``fluxes(freqs)`` to rounding (power-law models need a power-law catalogue).
        """
        from ..backend import get_xp

        xp = get_xp() if xp is None else xp
        f = validate_freqs(freqs)
        n = self.n_sources
        if model in ("powerlaw", "curved", "logpoly") and self.has_channels:
            raise InputError(f"operator(model={model!r}): this catalogue has per-channel "
                             "fluxes; use model='channel' or 'channel_relative'")
        if model == "powerlaw":
            if np.any(self.curvature != 0):
                raise InputError("operator(model='powerlaw'): the catalogue has non-zero "
                                 "curvature; use model='curved'")
            op = PowerLawSpectrum(f, self.ref_freq, n, xp=xp)
            x0 = (self.log_flux(), self.spectral_index)
        elif model == "curved":
            op = PowerLawSpectrum(f, self.ref_freq, n, curvature=True, xp=xp)
            x0 = (self.log_flux(), self.spectral_index, self.curvature)
        elif model == "logpoly":
            if not isinstance(n_coef, (int, np.integer)) or n_coef < 2:
                raise InputError(f"operator(n_coef): expected an integer >= 2, received "
                                 f"{n_coef!r}")
            if n_coef == 2 and np.any(self.curvature != 0):
                raise InputError("operator(model='logpoly', n_coef=2): the catalogue has "
                                 "non-zero curvature; use n_coef >= 3")
            op = LogPolynomialSpectrum(f, self.ref_freq, n, n_coef, xp=xp)
            c = np.zeros((n, n_coef))
            c[:, 0], c[:, 1] = self.log_flux(), self.spectral_index
            if n_coef > 2:
                c[:, 2] = self.curvature
            x0 = c
        elif model == "channel":
            op = ChannelAmplitudes(n, f.size, xp=xp)
            x0 = self.fluxes(f)
        elif model == "channel_relative":
            op = ChannelAmplitudes(n, f.size, reference=self.fluxes(f), xp=xp)
            x0 = np.ones((n, f.size))
        else:
            raise InputError(
                f"operator(model): expected 'powerlaw', 'curved', 'logpoly', 'channel' or "
                f"'channel_relative', received {model!r}")
        x0 = tuple(xp.asarray(a) for a in x0) if isinstance(x0, tuple) else xp.asarray(x0)
        return op, x0

    # -- selection -----------------------------------------------------------------------
    def select(self, index: Any) -> PointSourceCatalog:
        """Sub-catalogue from a boolean mask (Nsrc,) or integer indices (order kept)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (self.n_sources,):
                raise ShapeError(f"select(index): boolean mask must have shape "
                                 f"({self.n_sources},), received {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = np.atleast_1d(idx).astype(np.int64)
        if idx.size and (idx.min() < -self.n_sources or idx.max() >= self.n_sources):
            raise InputError(f"select(index): indices must lie in [0, {self.n_sources})")
        return PointSourceCatalog(
            self.ra[idx], self.dec[idx], self.flux[idx], self.ref_freq,
            self.spectral_index[idx], self.curvature[idx],
            None if self.channel_flux is None else self.channel_flux[idx],
            self.channel_freqs, [self.names[i] for i in idx])

    def flux_cut(self, min_flux: float | None = None, max_flux: float | None = None,
                 freq: float | None = None) -> PointSourceCatalog:
        """Sources with ``min_flux <= S(freq) <= max_flux`` (Jy; ``freq`` in Hz, default the
        reference frequency, or the first channel for per-channel catalogues)."""
        if freq is None:
            freq = self.channel_freqs[0] if self.has_channels else self.ref_freq
        s = self.fluxes([freq])[:, 0]
        keep = np.ones(self.n_sources, dtype=bool)
        if min_flux is not None:
            keep &= s >= float(min_flux)
        if max_flux is not None:
            keep &= s <= float(max_flux)
        return self.select(keep)

    def brightest(self, n: int, freq: float | None = None) -> PointSourceCatalog:
        """The ``n`` brightest sources at ``freq`` (Hz; default as :meth:`flux_cut`),
        brightest first."""
        if freq is None:
            freq = self.channel_freqs[0] if self.has_channels else self.ref_freq
        order = np.argsort(-self.fluxes([freq])[:, 0], kind="stable")
        return self.select(order[: int(n)])

    def within_radius(self, ra0: float, dec0: float, radius: float) -> PointSourceCatalog:
        """Sources within ``radius`` (radians) of the ICRS position ``(ra0, dec0)``
        (radians)."""
        if not np.isfinite(radius) or radius < 0:
            raise InputError(f"within_radius(radius): expected a non-negative angle in "
                             f"radians, received {radius!r}")
        if abs(dec0) > np.pi / 2:
            raise InputError(f"within_radius(dec0): expected radians in [-pi/2, pi/2], "
                             f"received {dec0!r}")
        return self.select(angular_distance(ra0, dec0, self.ra, self.dec) <= radius)

    def dec_band(self, dec_min: float, dec_max: float) -> PointSourceCatalog:
        """Sources with ``dec_min <= dec <= dec_max`` (radians)."""
        if dec_min > dec_max:
            raise InputError(f"dec_band: dec_min {dec_min!r} > dec_max {dec_max!r}")
        return self.select((self.dec >= dec_min) & (self.dec <= dec_max))

    @staticmethod
    def concatenate(catalogs: Sequence[PointSourceCatalog]) -> PointSourceCatalog:
        """Join catalogues; spectra are re-expressed at the first one's reference
        frequency (exact, :meth:`with_ref_freq`). Per-channel catalogues must share their
        channel frequencies."""
        cats = list(catalogs)
        if not cats:
            raise InputError("concatenate: expected at least one catalogue")
        f0 = cats[0].ref_freq
        cats = [c if c.ref_freq == f0 else c.with_ref_freq(f0) for c in cats]
        chans = {c.has_channels for c in cats}
        if len(chans) != 1:
            raise InputError("concatenate: cannot mix per-channel and power-law catalogues")
        cf = cs = None
        if cats[0].has_channels:
            cf = cats[0].channel_freqs
            if any(not np.array_equal(c.channel_freqs, cf) for c in cats):
                raise InputError("concatenate: per-channel catalogues need identical "
                                 "channel_freqs")
            cs = np.concatenate([c.channel_flux for c in cats])
        cat = lambda a: np.concatenate([getattr(c, a) for c in cats])  # noqa: E731
        return PointSourceCatalog(cat("ra"), cat("dec"), cat("flux"), f0,
                                  cat("spectral_index"), cat("curvature"), cs, cf,
                                  sum((c.names for c in cats), []))

    # -- CSV -----------------------------------------------------------------------------
    def to_csv(self, path: str | os.PathLike) -> None:
        """Write a CSV file (exact round trip with :meth:`from_csv`).

        Header comment lines ``# key = value`` carry the format, ``ref_freq_hz`` and (for
        per-channel catalogues) ``channel_freqs_hz``; the columns are ``name, ra_rad,
        dec_rad, flux_jy, spectral_index, curvature`` and ``channel_flux_jy_<i>``.
        """
        cols = ["name", "ra_rad", "dec_rad", "flux_jy", "spectral_index", "curvature"]
        nchan = 0 if not self.has_channels else self.channel_freqs.size
        cols += [f"channel_flux_jy_{i}" for i in range(nchan)]
        with open(path, "w", newline="") as fh:
            fh.write(f"# format = {_FORMAT}\n# version = {_VERSION}\n")
            fh.write(f"# ref_freq_hz = {self.ref_freq!r}\n")
            if nchan:
                fh.write("# channel_freqs_hz = "
                         + " ".join(repr(float(v)) for v in self.channel_freqs) + "\n")
            w = csv.writer(fh)
            w.writerow(cols)
            for i in range(self.n_sources):
                row = [self.names[i]] + [repr(float(getattr(self, a)[i])) for a in (
                    "ra", "dec", "flux", "spectral_index", "curvature")]
                if nchan:
                    row += [repr(float(v)) for v in self.channel_flux[i]]
                w.writerow(row)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, ref_freq: float | None = None
                 ) -> PointSourceCatalog:
        """Read a CSV catalogue written by :meth:`to_csv`.

        Other CSV files work too if they have ``ra_rad``/``dec_rad`` (or ``ra_deg``/
        ``dec_deg``, converted) and ``flux_jy`` columns, optional ``name``,
        ``spectral_index`` and ``curvature``; ``ref_freq`` (Hz) must then be passed
        unless a ``# ref_freq_hz = ...`` header line is present.
        """
        meta: dict[str, str] = {}
        with open(path, newline="") as fh:
            lines = fh.read().splitlines()
        body = []
        for line in lines:
            if line.startswith("#"):
                if "=" in line:
                    k, v = line[1:].split("=", 1)
                    meta[k.strip()] = v.strip()
            elif line.strip():
                body.append(line)
        rows = list(csv.reader(body))
        if not rows:
            raise InputError(f"from_csv: {os.fspath(path)!r} has no header row")
        head, data = rows[0], rows[1:]
        col = {h.strip(): i for i, h in enumerate(head)}

        def column(name: str) -> np.ndarray | None:
            return None if name not in col else np.array(
                [float(r[col[name]]) for r in data], dtype=np.float64)

        if "ra_rad" in col:
            ra, dec = column("ra_rad"), column("dec_rad")
        elif "ra_deg" in col:
            ra, dec = np.radians(column("ra_deg")), np.radians(column("dec_deg"))
        else:
            raise InputError(f"from_csv: {os.fspath(path)!r} needs ra_rad/dec_rad or "
                             f"ra_deg/dec_deg columns, found {head}")
        if dec is None or "flux_jy" not in col:
            raise InputError(f"from_csv: {os.fspath(path)!r} needs dec and flux_jy "
                             f"columns, found {head}")
        if ref_freq is None:
            if "ref_freq_hz" not in meta:
                raise InputError(f"from_csv: {os.fspath(path)!r} has no '# ref_freq_hz = "
                                 "...' header line; pass ref_freq (Hz)")
            ref_freq = float(meta["ref_freq_hz"])
        chan_cols = sorted((int(h.rsplit("_", 1)[1]), i) for h, i in col.items()
                           if h.startswith("channel_flux_jy_"))
        cs = cf = None
        if chan_cols:
            if "channel_freqs_hz" not in meta:
                raise InputError(f"from_csv: {os.fspath(path)!r} has channel columns but "
                                 "no '# channel_freqs_hz = ...' header line")
            cf = np.array([float(v) for v in meta["channel_freqs_hz"].split()])
            cs = np.array([[float(r[i]) for _, i in chan_cols] for r in data],
                          dtype=np.float64).reshape(len(data), len(chan_cols))
        names = [r[col["name"]] for r in data] if "name" in col else None
        return cls(ra, dec, column("flux_jy"), ref_freq, column("spectral_index"),
                   column("curvature"), cs, cf, names)

    # -- HDF5 ----------------------------------------------------------------------------
    def to_hdf5(self, path: str | os.PathLike, group: str = "catalog",
                mode: str = "a") -> None:
        """Write to an HDF5 file (``h5py``) under ``group`` (replaced if present).

        Datasets ``ra``, ``dec`` (rad), ``flux`` (Jy), ``spectral_index``, ``curvature``,
        ``names`` (UTF-8) and optionally ``channel_flux`` (Jy), ``channel_freqs`` (Hz);
        attributes ``format``, ``version``, ``ref_freq`` (Hz).
        """
        import h5py

        with h5py.File(path, mode) as fh:
            if group in fh:
                del fh[group]
            g = fh.create_group(group)
            g.attrs["format"], g.attrs["version"] = _FORMAT, _VERSION
            g.attrs["ref_freq"] = self.ref_freq
            for a in ("ra", "dec", "flux", "spectral_index", "curvature"):
                g.create_dataset(a, data=getattr(self, a))
            g.create_dataset("names", data=np.array(self.names, dtype=object),
                             dtype=h5py.string_dtype("utf-8"))
            if self.has_channels:
                g.create_dataset("channel_flux", data=self.channel_flux)
                g.create_dataset("channel_freqs", data=self.channel_freqs)
            g["ra"].attrs["unit"] = g["dec"].attrs["unit"] = "rad"
            g["flux"].attrs["unit"] = "Jy"

    @classmethod
    def from_hdf5(cls, path: str | os.PathLike, group: str = "catalog"
                  ) -> PointSourceCatalog:
        """Read a catalogue written by :meth:`to_hdf5`."""
        import h5py

        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"from_hdf5: cannot read {os.fspath(path)!r} as an HDF5 "
                             f"catalogue (h5/hdf5): {exc}") from None
        with fh:
            if group not in fh:
                raise InputError(f"from_hdf5: no group {group!r} in {os.fspath(path)!r}")
            g = fh[group]
            if g.attrs.get("format") != _FORMAT:
                raise InputError(f"from_hdf5: group {group!r} is not a {_FORMAT} (format "
                                 f"attribute {g.attrs.get('format')!r})")
            get = lambda a: g[a][()] if a in g else None  # noqa: E731
            names = [s.decode() if isinstance(s, bytes) else str(s) for s in g["names"][()]]
            return cls(get("ra"), get("dec"), get("flux"), float(g.attrs["ref_freq"]),
                       get("spectral_index"), get("curvature"), get("channel_flux"),
                       get("channel_freqs"), names)

    # -- BayesLIM YAML -------------------------------------------------------------------
    @classmethod
    def from_bayeslim_yaml(cls, path: str | os.PathLike) -> PointSourceCatalog:
        """Read a point-source catalogue in BayesLIM's YAML format.

        The file has ``freq_mode`` (``'powerlaw'`` or ``'channel'``), ``mode_kwargs:
        {f0: Hz}`` and a ``sources`` mapping of lists: ``name``, ``ra``, ``dec`` (J2000
        degrees; negative RA is wrapped into [0, 360)), then ``amp`` (Jy at ``f0``) and
        ``alpha`` for power laws, or ``freq0``, ``freq1``, ... (Jy at the top-level
        ``freqs`` list, Hz) for channel catalogues. Numbers written like ``200e6`` (which
        YAML reads as strings) are converted.

        Channel catalogues keep their fluxes as ``channel_flux``; their ``flux`` is the
        first channel's and ``spectral_index`` a least-squares log-log slope through it (0
        where a flux is <= 0), at ``ref_freq`` = the first channel.
        """
        import yaml

        where = f"from_bayeslim_yaml({os.fspath(path)!r})"
        try:
            with open(path) as fh:
                d = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(f"{where}: the catalogue file is not valid YAML{at}: "
                             f"{problem}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: cannot read the catalogue file: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        if not isinstance(d, dict) or "sources" not in d or "freq_mode" not in d:
            raise InputError(f"{where}: expected a mapping with 'freq_mode' and 'sources'")
        src = d["sources"]
        for key in ("ra", "dec"):
            if key not in src:
                raise InputError(f"{where}: sources has no {key!r} list")

        def num(v: Any, what: str) -> np.ndarray:
            try:
                return np.asarray([float(s) for s in np.atleast_1d(v)], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}: {what} must be numbers, received {v!r}") from exc

        ra = np.mod(num(src["ra"], "ra"), 360.0)
        dec = num(src["dec"], "dec")
        names = src.get("name")
        mode = str(d["freq_mode"]).strip("'\"")
        if mode == "powerlaw":
            f0 = (d.get("mode_kwargs") or {}).get("f0")
            if f0 is None or str(f0) == "None":
                raise InputError(f"{where}: powerlaw catalogue needs mode_kwargs.f0 (Hz)")
            for key in ("amp", "alpha"):
                if key not in src:
                    raise InputError(f"{where}: powerlaw sources need an {key!r} list")
            return cls(np.radians(ra), np.radians(dec), num(src["amp"], "amp"),
                       float(f0), num(src["alpha"], "alpha"), names=names)
        if mode == "channel":
            if "freqs" not in d:
                raise InputError(f"{where}: channel catalogue needs a top-level 'freqs' list")
            freqs = num(d["freqs"], "freqs")
            keys = [f"freq{i}" for i in range(freqs.size)]
            missing = [k for k in keys if k not in src]
            if missing:
                raise InputError(f"{where}: channel sources miss {missing}")
            s = np.stack([num(src[k], k) for k in keys], axis=1)
            x = np.log(freqs / freqs[0])
            alpha = np.zeros(s.shape[0])
            ok = np.all(s > 0, axis=1)
            if freqs.size > 1 and ok.any():
                y = np.log(s[ok]) - np.log(s[ok, :1])
                alpha[ok] = (y @ x) / (x @ x)
            return cls(np.radians(ra), np.radians(dec), s[:, 0], freqs[0], alpha,
                       channel_flux=s, channel_freqs=freqs, names=names)
        raise InputError(f"{where}: freq_mode must be 'powerlaw' or 'channel', received "
                         f"{mode!r}")

    def to_bayeslim_yaml(self, path: str | os.PathLike) -> None:
        """Write BayesLIM's YAML format (RA/Dec in degrees): ``channel`` mode for
        per-channel catalogues, else ``powerlaw`` (which cannot store curvature: refused
        if any is non-zero)."""
        import yaml

        src: dict[str, Any] = {"name": list(self.names),
                               "ra": np.degrees(self.ra).tolist(),
                               "dec": np.degrees(self.dec).tolist()}
        if self.has_channels:
            d: dict[str, Any] = {"freq_mode": "channel", "mode_kwargs": {"f0": None},
                                 "freqs": self.channel_freqs.tolist()}
            for i in range(self.channel_freqs.size):
                src[f"freq{i}"] = self.channel_flux[:, i].tolist()
        else:
            if np.any(self.curvature != 0):
                raise InputError("to_bayeslim_yaml: the BayesLIM powerlaw format has no "
                                 "curvature; this catalogue has non-zero curvature")
            d = {"freq_mode": "powerlaw", "mode_kwargs": {"f0": self.ref_freq}}
            src["amp"] = self.flux.tolist()
            src["alpha"] = self.spectral_index.tolist()
        d["sources"] = src
        with open(path, "w") as fh:
            yaml.safe_dump(d, fh, sort_keys=False)


def random_catalog(n: int, rng: np.random.Generator | int | None = None,
                   ref_freq: float = 150e6, flux_range: tuple[float, float] = (0.1, 100.0),
                   count_index: float = 1.8, alpha_mean: float = -0.8,
                   alpha_std: float = 0.2, curvature_std: float = 0.0,
                   dec_range: tuple[float, float] = (-np.pi / 2, np.pi / 2)
                   ) -> PointSourceCatalog:
    """Random sources, uniform on the sphere (within a declination band), with power-law
    source counts; for benchmarks and demos.

    Parameters
    ----------
    n : int
        Number of sources.
    rng : numpy.random.Generator or int, optional
        Generator or seed.
    ref_freq : float
        Reference frequency in Hz.
    flux_range : (float, float)
        Flux limits ``(S_min, S_max)`` in Jy at ``ref_freq``.
    count_index : float
        Differential counts ``dN/dS ~ S^-count_index`` (1.8 is typical at 150 MHz above
        ~0.1 Jy).
    alpha_mean, alpha_std : float
        Gaussian spectral indices.
    curvature_std : float
        Gaussian curvature (0: straight power laws).
    dec_range : (float, float)
        Declination band in radians (uniform in ``sin(dec)`` inside it).

    Returns
    -------
    PointSourceCatalog
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"random_catalog(n): expected a positive integer, received {n!r}")
    smin, smax = (float(v) for v in flux_range)
    if not 0 < smin < smax:
        raise InputError(f"random_catalog(flux_range): expected 0 < S_min < S_max, received "
                         f"{flux_range!r}")
    dmin, dmax = (float(v) for v in dec_range)
    if not -np.pi / 2 <= dmin < dmax <= np.pi / 2:
        raise InputError(f"random_catalog(dec_range): expected -pi/2 <= min < max <= pi/2 "
                         f"radians, received {dec_range!r}")
    ra = rng.uniform(0.0, _TWO_PI, n)
    ra[ra >= _TWO_PI] = 0.0
    dec = np.arcsin(rng.uniform(np.sin(dmin), np.sin(dmax), n))
    u = rng.uniform(0.0, 1.0, n)
    g = 1.0 - float(count_index)
    if abs(g) < 1e-12:  # dN/dS ~ 1/S: log-uniform
        flux = smin * (smax / smin) ** u
    else:  # inverse CDF of S^-count_index on [smin, smax]
        flux = (smin ** g + u * (smax ** g - smin ** g)) ** (1.0 / g)
    alpha = rng.normal(alpha_mean, alpha_std, n)
    beta = rng.normal(0.0, curvature_std, n) if curvature_std > 0 else np.zeros(n)
    return PointSourceCatalog(ra, dec, flux, ref_freq, alpha, beta)
