"""Imaging through the adjoint: dirty maps, point-spread functions and their normalisations.

The RIME at fixed beams is linear in the pixel intensities, ``V = K I``
(:class:`linlim.rime.RIMEIntensity`, one feed), with

    V_b(t, nu) = 1/2 sum_p A_i(p) conj(A_j(p)) I_p(nu) exp(+2 pi i nu (x_j - x_i) . s_p(t) / c)

over the pixels above the horizon. The *dirty map* of visibilities ``V`` with weights ``w``
(``1 / sigma^2``, 0 where flagged) is the adjoint applied to the weighted data,

    M(p, nu) = [K^H W V](p, nu)
             = 1/2 Re sum_{t, b} w_b conj(A_i(p)) A_j(p) exp(-2 pi i nu b . s_p(t) / c) V_b,

``b = x_j - x_i``: the gradient of ``-1/2 sum w |V - K I|^2`` at ``I = 0``. It is computed by
``RIMEIntensity.rmatvec`` (per-antenna GEMMs), so it is exact to round-off.

Normalisations (``normalization=``), all per (pixel, frequency), ``pf = 1/2``:

* ``"none"``: ``M`` itself (Jy times the weights' units).
* ``"weights"`` (the sampling normalisation): ``M / N_w``, ``N_w(nu) = pf^2 sum_{t, b} w``.
  ``N_w`` is the peak of the PSF of a unit source when ``A = 1``: a point source of flux
  ``S`` then appears with peak ``S`` at its position, and with beams with peak ``S`` times
  the ``w``-weighted mean of ``|A_i A_j|^2`` there (the sky seen through the beam squared,
  the usual "dirty image" in Jy/beam).
* ``"apparent"``: ``M / N_a``, ``N_a(p, nu) = pf^2 sum_{t, b} w |A_i(p) A_j(p)|``: a point
  source appears with its apparent flux, ``S |A(p)|`` for identical real beams (a flat-noise
  map of the sky times the beam).
* ``"aw"``: ``M / N_aw``, ``N_aw = diag(K^H W K)(p, nu) = pf^2 sum_{t, b} w |A_i(p)|^2
  |A_j(p)|^2`` (the "A w" normalisation): the map of a point source of flux ``S`` at pixel
  ``p`` is exactly ``S`` at ``p``, whatever the beams and weights. The diagonal costs
  ``O(Ntimes Nfreq Npix Nbeam^2)``: ``|exp(.)| = 1`` drops the phases, so only per
  beam-pair weight sums ``sum_{b: beam(i) = beta, beam(j) = gamma} w_b`` are needed.

Normalised maps are NaN where the normalisation is 0 (pixels never above the horizon, or
all data flagged).

Directions: :func:`healpix_directions` (HEALPix pixel centres through astropy, ICRS to
topocentric per time) and :func:`lm_directions` (a local (l, m) grid, built directly in ENU
around zenith or around a phase centre that tracks the sky).

Examples
--------
>>> import numpy as np
>>> from linlim.imaging import DirtyImager, lm_grid, lm_directions
>>> l, m = lm_grid(33, 0.4)
>>> antpos = np.array([[0.0, 0, 0], [14.6, 0, 0], [0, 14.6, 0], [10.0, -8, 0]])
>>> a1, a2 = np.triu_indices(4, 1)
>>> im = DirtyImager(lm_directions(l, m), antpos, np.array([1.5e8]), a1, a2)
>>> vis = np.full((1, 1, a1.size), 0.5 + 0j)   # 1 Jy at zenith (XX = I / 2)
>>> m_aw = im.dirty_map(vis, "aw")
>>> round(float(m_aw[np.argmax(m_aw[:, 0]), 0]), 6), int(np.argmax(m_aw[:, 0])) == 33 * 16 + 16
(1.0, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import asarray, get_xp, to_numpy
from .errors import InputError, ShapeError
from .operators.base import LinearOperator
from .operators.linear import Diagonal
from .rime.operator import RIMEIntensity
from .validation import check_finite

__all__ = [
    "NORMALIZATIONS",
    "DirtyImager",
    "healpix_directions",
    "lm_grid",
    "lm_directions",
]

NORMALIZATIONS = ("none", "weights", "apparent", "aw")
_PF = 0.5   # the RIME's feed factor (XX = I |A|^2 / 2)


# ------------------------------------------------------------------------- directions
def healpix_directions(nside: int, times_jd: Any, site: Any = "HERA", *,
                       pixels: Any = None, nest: bool = False,
                       method: str = "precise") -> np.ndarray:
    """Topocentric unit vectors of HEALPix pixel centres (ICRS, equatorial) at each time.

    Parameters
    ----------
    nside : int
        HEALPix resolution (power of 2).
    times_jd : array_like, shape (Ntimes,), float, JD (UTC)
    site : str, EarthLocation or (lat_deg, lon_deg, height_m)
        See :func:`linlim.telescope.site.get_site`.
    pixels : array_like of int, shape (Npix,), optional
        Pixel indices (default: all ``12 nside^2``).
    nest : bool
        NESTED ordering (default RING).
    method : {"precise", "fast"}
        Passed to :func:`linlim.telescope.coordinates.source_enu`.

    Returns
    -------
    ndarray, shape (Ntimes, 3, Npix), float64
        (east, north, up) unit vectors; the RA and Dec of pixel ``p`` are healpy's
        ``phi`` and ``pi/2 - theta``.
    """
    import healpy as hp

    from .telescope.coordinates import source_enu
    from .units import healpix_pixel_centres

    if not hp.isnsideok(nside, nest=nest):
        raise InputError(f"healpix_directions: nside must be a valid HEALPix nside, "
                         f"received {nside!r}")
    npix_all = hp.nside2npix(nside)
    pix = np.arange(npix_all) if pixels is None else np.asarray(pixels).ravel()
    if pix.size == 0 or pix.dtype.kind not in "iu" or pix.min() < 0 or pix.max() >= npix_all:
        raise InputError(f"healpix_directions: pixels must be non-empty integers in "
                         f"[0, {npix_all}) for nside={nside}")
    ra, dec = healpix_pixel_centres(nside, pix, nest=nest)
    return source_enu(ra, dec, times_jd, site, method=method)


def lm_grid(npix: int, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a square (l, m) image, flattened row-major.

    Parameters
    ----------
    npix : int
        Pixels per side (odd puts a pixel on the centre).
    extent : float
        Full width of the image in direction cosines (``l`` from ``-extent/2`` to
        ``+extent/2``); at most 2.

    Returns
    -------
    l, m : ndarray, shape (npix * npix,), float64
        ``image.reshape(npix, npix)[i_m, i_l]`` is at ``(l[i_l], m[i_m])``: rows run in
        ``m`` (south to north), columns in ``l`` (west to east).
    """
    if not (isinstance(npix, (int, np.integer)) and npix >= 1):
        raise InputError(f"lm_grid: npix must be a positive integer, received {npix!r}")
    if not (0 < float(extent) <= 2.0):
        raise InputError(f"lm_grid: extent must lie in (0, 2], received {extent!r}")
    c = (np.arange(npix) - (npix - 1) / 2.0) * (float(extent) / npix)
    mm, ll = np.meshgrid(c, c, indexing="ij")
    return ll.ravel(), mm.ravel()


def lm_directions(l: Any, m: Any, ntimes: int = 1, *, centre: Any = None,
                  latitude: float | None = None) -> np.ndarray:
    """ENU unit vectors of (l, m) image pixels, around zenith or a tracked phase centre.

    Parameters
    ----------
    l, m : array_like, shape (Npix,), float
        Direction cosines (SIN projection) east and north of the centre.
    ntimes : int
        Number of times (zenith images: the same directions at every time, a drift scan).
    centre : array_like, shape (Ntimes, 3) or (3,), optional
        ENU unit vector of the phase centre per time (e.g. ``source_enu(ra0, dec0, times,
        site)[:, :, 0]``). Default: zenith, with ``l`` east and ``m`` north.
    latitude : float, radians
        Site latitude, needed with ``centre``: ``l`` points along ``pole x centre`` (east
        on the sky) and ``m`` along ``centre x l`` (north on the sky), a frame that turns
        with the sky, so the image tracks the phase centre.

    Returns
    -------
    ndarray, shape (Ntimes, 3, Npix), float64
        ``l e_l + m e_m + sqrt(1 - l^2 - m^2) s_0``. Pixels with ``l^2 + m^2 >= 1`` get
        ``(0, 0, -1)`` (below the horizon: they see nothing and normalised maps are NaN).
    """
    l = np.asarray(l, dtype=np.float64).ravel()
    m = np.asarray(m, dtype=np.float64).ravel()
    if l.shape != m.shape or l.size == 0:
        raise ShapeError(f"lm_directions: l and m must be non-empty and of one shape, "
                         f"received {l.shape} and {m.shape}")
    check_finite(l, "l", "lm_directions", "direction cosines")   # never "below the horizon"
    check_finite(m, "m", "lm_directions", "direction cosines")
    r2 = l * l + m * m
    inside = r2 < 1.0
    n = np.sqrt(np.where(inside, 1.0 - r2, 0.0))
    if centre is None:
        if not (isinstance(ntimes, (int, np.integer)) and ntimes >= 1):
            raise InputError(f"lm_directions: ntimes must be a positive integer, "
                             f"received {ntimes!r}")
        s0 = np.tile([0.0, 0.0, 1.0], (ntimes, 1))
        el = np.tile([1.0, 0.0, 0.0], (ntimes, 1))
        em = np.tile([0.0, 1.0, 0.0], (ntimes, 1))
    else:
        if latitude is None:
            raise InputError("lm_directions: latitude (radians) is required with centre")
        s0 = np.atleast_2d(np.asarray(centre, dtype=np.float64))
        if s0.ndim != 2 or s0.shape[1] != 3:
            raise ShapeError(f"lm_directions: centre must have shape (Ntimes, 3), received "
                             f"{np.shape(centre)}")
        s0 = s0 / np.linalg.norm(s0, axis=1, keepdims=True)
        pole = np.array([0.0, np.cos(latitude), np.sin(latitude)])
        el = np.cross(pole, s0)
        norm = np.linalg.norm(el, axis=1, keepdims=True)
        if np.any(norm < 1e-12):
            raise InputError("lm_directions: the phase centre is at a celestial pole; the "
                             "east axis is undefined there")
        el = el / norm
        em = np.cross(s0, el)
    enu = (l[None, None, :] * el[:, :, None] + m[None, None, :] * em[:, :, None]
           + n[None, None, :] * s0[:, :, None])
    enu[:, :, ~inside] = np.array([0.0, 0.0, -1.0])[None, :, None]
    return enu


# ------------------------------------------------------------------------- the imager
class DirtyImager:
    """Dirty maps ``K^H W V``, PSFs and normalisations on a set of pixel directions.

    Parameters
    ----------
    enu : array, shape (Ntimes, 3, Npix), float64
        Pixel directions per time (:func:`healpix_directions`, :func:`lm_directions`).
    antpos : array, shape (Nant, 3), float64, ENU metres
    freqs : array, shape (Nfreq,), float64, Hz
    ant1, ant2 : array, shape (Nbl,), int
        Baselines (pyuvdata order, ``b = x[ant2] - x[ant1]``).
    beam : array, callable or None
        Beam values at the pixels, shape (Nbeam, Ntimes, Npix, Nfreq), real or complex
        (dimensionless); a callable ``beam(enu) -> array`` of that shape; or ``None``
        (``A = 1``).
    weights : array, optional
        Non-negative weights broadcastable to (Ntimes, Nfreq, Nbl), ``1 / sigma^2``
        (Jy^-2), 0 where flagged. Default 1.
    beam_index : array, shape (Nant,), int, optional
        Beam of each antenna.
    dtype : {"complex128", "complex64"}
    xp : module, optional
        Array module (default: the active backend).
    **rime_kwargs
        Passed to :class:`linlim.rime.RIMEIntensity` (``method``, ``memory_budget``,
        ``cache_budget``).

    Attributes
    ----------
    K : RIMEIntensity
        The forward model (pixels -> visibilities).
    weights : array, shape (Ntimes, Nfreq, Nbl), float

    Notes
    -----
    See the module docstring for the maps and normalisations. One feed only (the Stokes-I
    part of XX); a polarised imager would use the Jones-matrix RIME and is not provided.
    """

    def __init__(self, enu: Any, antpos: Any, freqs: Any, ant1: Any, ant2: Any,
                 beam: Any = None, *, weights: Any = None, beam_index: Any = None,
                 dtype: Any = "complex128", xp: Any = None, **rime_kwargs: Any) -> None:
        xp = get_xp() if xp is None else xp
        self.xp = xp
        enu_h = np.asarray(to_numpy(enu), dtype=np.float64)
        if callable(beam):
            beam = beam(enu_h)
        self.K = RIMEIntensity(enu_h, antpos, freqs, ant1, ant2, beam, beam_index=beam_index,
                               dtype=dtype, xp=xp, **rime_kwargs)
        eng = self.K.engine
        self.npix, self.nfreq, self.ntimes, self.nbl = eng.ns, eng.nf, eng.nt, eng.nbl
        vshape = (eng.nt, eng.nf, eng.nbl)
        if weights is None:
            w = np.ones(vshape)
        else:
            w = np.asarray(to_numpy(weights), dtype=np.float64)
            try:
                w = np.broadcast_to(w, vshape).copy()
            except ValueError as exc:
                raise ShapeError(f"DirtyImager: weights of shape {w.shape} do not broadcast "
                                 f"to (Ntimes, Nfreq, Nbl) = {vshape}") from exc
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise InputError("DirtyImager: weights must be finite and >= 0")
        self.weights = asarray(w, xp, dtype=eng.rdtype)
        self._up = asarray(enu_h[:, 2, :] > 0, xp)          # (Nt, Npix)
        self._norms: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"DirtyImager(Npix={self.npix}, Nfreq={self.nfreq}, Ntimes={self.ntimes}, "
                f"Nbl={self.nbl})")

    # -- alternative constructors ------------------------------------------------------
    @classmethod
    def healpix(cls, nside: int, times_jd: Any, site: Any, antpos: Any, freqs: Any,
                ant1: Any, ant2: Any, beam: Any = None, *, pixels: Any = None,
                nest: bool = False, coord_method: str = "precise",
                **kwargs: Any) -> DirtyImager:
        """An imager on HEALPix pixel centres (see :func:`healpix_directions`).

        ``beam`` may be a callable ``beam(enu) -> (Nbeam, Ntimes, Npix, Nfreq)``; other
        keywords as in :class:`DirtyImager`. The attributes ``nside``, ``nest`` and
        ``pixels`` are kept for plotting.
        """
        enu = healpix_directions(nside, times_jd, site, pixels=pixels, nest=nest,
                                 method=coord_method)
        im = cls(enu, antpos, freqs, ant1, ant2, beam, **kwargs)
        im.nside, im.nest = int(nside), bool(nest)
        im.pixels = None if pixels is None else np.asarray(pixels).ravel()
        return im

    @classmethod
    def lm(cls, npix: int, extent: float, antpos: Any, freqs: Any, ant1: Any, ant2: Any,
           beam: Any = None, *, ntimes: int = 1, centre: Any = None,
           latitude: float | None = None, **kwargs: Any) -> DirtyImager:
        """An imager on a square (l, m) grid (:func:`lm_grid`, :func:`lm_directions`).

        The attributes ``l``, ``m`` and ``image_shape = (npix, npix)`` are kept for
        reshaping and plotting (``map[:, f].reshape(image_shape)``).
        """
        l, m = lm_grid(npix, extent)
        nt = ntimes if centre is None else np.atleast_2d(centre).shape[0]
        enu = lm_directions(l, m, nt, centre=centre, latitude=latitude)
        im = cls(enu, antpos, freqs, ant1, ant2, beam, **kwargs)
        im.l, im.m, im.image_shape = l, m, (int(npix), int(npix))
        return im

    # -- normalisations ------------------------------------------------------------------
    def _pair_weight_sums(self) -> list[tuple[int, int, Any]]:
        """``[(beta, gamma, sum_{b: beam(i)=beta, beam(j)=gamma} w_b  (Nt, Nf))]``."""
        eng = self.K.engine
        out = []
        b1, b2 = eng.beam_index_h[eng.ant1_h], eng.beam_index_h[eng.ant2_h]
        for beta, gamma in sorted(set(zip(b1.tolist(), b2.tolist()))):
            sel = asarray(np.flatnonzero((b1 == beta) & (b2 == gamma)), self.xp)
            out.append((beta, gamma, self.weights[:, :, sel].sum(axis=2)))
        return out

    def _beam_sum(self, power: int) -> Any:
        """``pf^2 sum_{t, b} w |A_i|^p |A_j|^p`` over times with the pixel up, (Npix, Nf)."""
        xp, eng = self.xp, self.K.engine
        absA = xp.abs(self.K.A6[:, 0, 0])                     # (Nbeam, Nt, Npix, Nf)
        Ap = absA ** power if power != 1 else absA
        out = xp.zeros((eng.ns, eng.nf), dtype=eng.rdtype)
        pairs = self._pair_weight_sums()
        for t in range(eng.nt):
            up = self._up[t][:, None]
            for beta, gamma, ws in pairs:
                out += up * Ap[beta, t] * Ap[gamma, t] * ws[t][None, :]
        return (_PF * _PF) * out

    def normalization(self, kind: str = "aw") -> Any:
        """The normalisation ``N`` of a dirty map, shape (Npix, Nfreq), float.

        Parameters
        ----------
        kind : {"none", "weights", "apparent", "aw"}
            See the module docstring; ``"aw"`` is ``diag(K^H W K)``.

        Returns
        -------
        array, shape (Npix, Nfreq), float (Jy^-2 with weights ``1 / sigma^2``)
            Cached after the first call.
        """
        if kind not in NORMALIZATIONS:
            raise InputError(f"normalization: expected one of {NORMALIZATIONS}, received "
                             f"{kind!r}")
        if kind in self._norms:
            return self._norms[kind]
        xp, eng = self.xp, self.K.engine
        if kind == "none":
            n = xp.ones((eng.ns, eng.nf), dtype=eng.rdtype)
        elif kind == "weights":
            n = xp.broadcast_to((_PF * _PF) * self.weights.sum(axis=(0, 2))[None, :],
                                (eng.ns, eng.nf)).copy()
        else:
            n = self._beam_sum(1 if kind == "apparent" else 2)
        self._norms[kind] = n
        return n

    def _inverse_norm(self, kind: str) -> Any:
        n = self.normalization(kind)
        xp = self.xp
        return xp.where(n > 0, 1.0 / xp.where(n > 0, n, 1.0), xp.nan).astype(n.dtype)

    # -- maps ----------------------------------------------------------------------------
    def operator(self, normalization: str = "none") -> LinearOperator:
        """The dirty-map operator ``diag(1 / N) K^H W``: (Ntimes, Nfreq, Nbl) complex ->
        (Npix, Nfreq) real, a composition of foundation operators (exact adjoint
        ``W K diag(1 / N)``). Only ``"none"`` and the normalisations without NaN (every
        pixel seen) give an operator usable in solvers."""
        eng = self.K.engine
        ops = self.K.H @ Diagonal(self.weights.astype(eng.cdtype), xp=self.xp)
        if normalization == "none":
            return ops
        inv = self._inverse_norm(normalization)
        if bool(self.xp.any(self.xp.isnan(inv))):
            raise InputError(f"operator: normalization {normalization!r} is 0 at some "
                             "pixels (never above the horizon or fully flagged); restrict "
                             "the pixels or use 'none'")
        return Diagonal(inv, xp=self.xp) @ ops

    def dirty_map(self, vis: Any, normalization: str = "aw", mfs: bool = False) -> Any:
        """The dirty map of visibilities.

        Parameters
        ----------
        vis : array, shape (Ntimes, Nfreq, Nbl), complex, Jy
        normalization : {"none", "weights", "apparent", "aw"}
        mfs : bool
            Multi-frequency synthesis: ``sum_nu M / sum_nu N`` (shape (Npix,)).

        Returns
        -------
        array, shape (Npix, Nfreq) (or (Npix,) with ``mfs``), float
            Jy for the normalised maps; NaN where the normalisation is 0.
        """
        raw = self.K.rmatvec(self.weights * vis)
        if normalization not in NORMALIZATIONS:
            raise InputError(f"normalization: expected one of {NORMALIZATIONS}, received "
                             f"{normalization!r}")
        if normalization == "none":
            return raw.sum(axis=1) if mfs else raw
        if mfs:
            n = self.normalization(normalization).sum(axis=1)
            return self.xp.where(n > 0, raw.sum(axis=1) / self.xp.where(n > 0, n, 1.0),
                                 self.xp.nan)
        return raw * self._inverse_norm(normalization)

    def psf(self, pixel: int | None = None, normalization: str = "weights",
            mfs: bool = False) -> Any:
        """The point-spread function: the dirty map of a unit point source.

        Parameters
        ----------
        pixel : int, optional
            Source pixel: the PSF is ``K^H W K e_p`` (the beam and horizon included).
            Default: the map of ``V = 1/2`` on every baseline (XX of a unit source at
            the phase centre with ``A = 1``; the usual "map of V = 1" up to the feed
            factor).
        normalization, mfs
            As in :meth:`dirty_map`. With ``pixel`` and ``"aw"``, the PSF is exactly 1 at
            ``pixel``.

        Returns
        -------
        array, shape (Npix, Nfreq) or (Npix,), float
        """
        eng = self.K.engine
        if pixel is None:
            vis = self.xp.full((eng.nt, eng.nf, eng.nbl), _PF, dtype=eng.cdtype)
        else:
            if not (isinstance(pixel, (int, np.integer)) and 0 <= pixel < eng.ns):
                raise InputError(f"psf: pixel must be an integer in [0, {eng.ns}), "
                                 f"received {pixel!r}")
            src = self.xp.zeros((eng.ns, eng.nf), dtype=eng.rdtype)
            src[pixel] = 1.0
            vis = self.K.matvec(src)
        return self.dirty_map(vis, normalization, mfs)

    def image(self, values: Any) -> np.ndarray:
        """Reshape a (Npix, ...) map from :meth:`lm` into (..., npix_m, npix_l) on the host."""
        shape = getattr(self, "image_shape", None)
        if shape is None:
            raise InputError("image: only imagers built with DirtyImager.lm have an image "
                             "shape")
        v = to_numpy(values)
        return np.moveaxis(v, 0, -1).reshape(v.shape[1:] + shape)

