"""Foreground sky: point sources and diffuse pixels as one list of sources.

The RIME sees one set of sources: ICRS positions ``ra, dec`` (Nsrc,) in radians and
intensities ``I`` (Nsrc, Nfreq) float64 in Jy. :class:`ForegroundSky` puts a
:class:`~linlim.sky.catalog.PointSourceCatalog` first and the pixels of a
:class:`~linlim.sky.healpix.HealpixSky` after it (pixel intensity = brightness times pixel
solid angle), both as values (:meth:`ForegroundSky.sources`) and as a differentiable
operator (:meth:`ForegroundSky.operator`) built from :class:`BlockConcat`, which
concatenates the outputs of several operators along the source axis.

:func:`synthetic_diffuse_sky` makes a *synthetic* diffuse foreground (a power law in
frequency with a random spatial field of angular power spectrum ``C_ell ~ ell^-2.5`` and an
optional galactic-plane enhancement). It is **not** a model of the real sky (no GSM, no
Haslam map is read); it is for offline tests, demos and benchmarks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..backend import get_xp
from ..errors import DtypeError, InputError, ShapeError
from ..operators.base import LinearOperator, Operator
from ..operators.composite import LinearSum, Sum, vstack
from ..operators.linear import Select, ZeroPad
from ..operators.spaces import is_product_shape
from ..units import healpix_pixel_centres
from .catalog import PointSourceCatalog
from .healpix import HealpixSky
from .spectra import validate_freqs, validate_ref_freq

__all__ = [
    "BlockConcat",
    "LinearBlockConcat",
    "SourceSet",
    "ForegroundSky",
    "gaussian_random_field",
    "synthetic_diffuse_sky",
]


class _BlockConcatBase:
    """Shared set-up of :class:`BlockConcat` and :class:`LinearBlockConcat`: checks the
    operators and builds the terms ``ZeroPad_i @ F_i @ Select_i`` whose sum is the
    concatenation (so the chain rule is the composition's and the sum's, not written
    here)."""

    def _concat_terms(self, ops: Sequence[Operator], axis: int) -> tuple[list, str]:
        ops = tuple(ops)
        if not ops:
            raise ShapeError("BlockConcat: needs at least one operator")
        if len({op.xp for op in ops}) != 1:
            raise ShapeError("BlockConcat: operators were built under different backends")
        outs = [op.out_shape for op in ops]
        if any(is_product_shape(s) for s in outs):
            raise ShapeError("BlockConcat: every operator must return a single array")
        ndim = len(outs[0])
        if any(len(s) != ndim for s in outs) or ndim == 0:
            raise ShapeError(f"BlockConcat: output shapes {outs} differ in dimension")
        axis = axis % ndim
        rest = {s[:axis] + s[axis + 1:] for s in outs}
        if len(rest) != 1:
            raise ShapeError(f"BlockConcat: output shapes {outs} must agree except along "
                             f"axis {axis}")
        in_shapes: list = []
        in_dtypes: list = []
        parts = []
        for op in ops:
            start = len(in_shapes)
            if is_product_shape(op.in_shape):
                in_shapes += list(op.in_shape)
                in_dtypes += list(op.in_dtype)
            else:
                in_shapes.append(op.in_shape)
                in_dtypes.append(op.in_dtype)
            parts.append(range(start, len(in_shapes)) if is_product_shape(op.in_shape)
                         else start)
        bounds = np.concatenate([[0], np.cumsum([s[axis] for s in outs])]).astype(int)
        xp, total = ops[0].xp, int(bounds[-1])
        dtype = np.result_type(*[op.out_dtype for op in ops])  # a real part embeds in it
        shapes, dtypes = tuple(in_shapes), tuple(in_dtypes)
        terms = []
        for op, part, lo, hi in zip(ops, parts, bounds[:-1], bounds[1:]):
            sel = (Select(shapes, dtypes, part, xp=xp) if isinstance(part, int) else
                   vstack([Select(shapes, dtypes, k, xp=xp) for k in part]))
            pad = [(0, 0)] * ndim
            pad[axis] = (int(lo), total - int(hi))
            terms.append(ZeroPad(op.out_shape, pad, dtype, xp=xp) @ op @ sel)
        self.ops, self.axis = ops, axis
        return terms, "concat[" + ", ".join(op.name for op in ops) + "]"

    @staticmethod
    def _flatten(parts: Sequence[Any]) -> tuple:
        out: list = []
        for p in parts:
            out += list(p) if isinstance(p, tuple) else [p]
        return tuple(out)


class BlockConcat(_BlockConcatBase, Sum):
    """Concatenate the outputs of operators with separate inputs along one axis.

    ``(x_1, ..., x_k) -> concatenate([F_1(x_1), ..., F_k(x_k)], axis)``. The input is the
    *flat* tuple of all the operators' input parts in order (an operator whose input is a
    tuple ``(a, b)`` contributes two parts), since linlim's spaces are one level deep.

    Parameters
    ----------
    ops : sequence of Operator
        Operators returning single arrays whose shapes agree except along ``axis``.
    axis : int
        Concatenation axis (0: the source axis of ``I[s, f]``).

    Notes
    -----
    Composed from existing operators: ``sum_i ZeroPad_i @ F_i @ Select_i`` (``Select_i``
    picks ``F_i``'s input parts, ``ZeroPad_i`` places its output in its slice). Hence the
    block-diagonal Jacobian ``J dx = concat(J_i dx_i)`` and ``J^H dy = (J_1^H dy_1, ...,
    J_k^H dy_k)`` with ``dy_i`` the slice of ``dy`` that ``F_i`` produced, from the
    composition and sum rules alone.
    """

    _abstract = False

    def __init__(self, ops: Sequence[Operator], axis: int = 0) -> None:
        terms, name = self._concat_terms(ops, axis)
        Sum.__init__(self, terms)
        self.name = name


class LinearBlockConcat(_BlockConcatBase, LinearSum):
    """Linear twin of :class:`BlockConcat`: ``A x = concat(A_i x_i)``,
    ``A^H y = (A_1^H y_1, ..., A_k^H y_k)`` (the slices of ``y``)."""

    _abstract = False

    def __init__(self, ops: Sequence[LinearOperator], axis: int = 0) -> None:
        if not all(op.is_linear for op in ops):
            raise DtypeError("LinearBlockConcat: every operator must be linear; use "
                             "BlockConcat")
        terms, name = self._concat_terms(ops, axis)
        LinearSum.__init__(self, terms)
        self.name = name


@dataclass
class SourceSet:
    """Sources as the RIME consumes them.

    Attributes
    ----------
    ra : numpy.ndarray, shape (Nsrc,)
        ICRS right ascensions, radians.
    dec : numpy.ndarray, shape (Nsrc,)
        ICRS declinations, radians.
    intensity : numpy.ndarray, shape (Nsrc, Nfreq), float64
        Intensities in Jy (pixels: Jy/sr times pixel solid angle).
    freqs : numpy.ndarray, shape (Nfreq,)
        Frequencies in Hz.
    n_point : int
        The first ``n_point`` sources are point sources, the rest pixels.
    """

    ra: np.ndarray
    dec: np.ndarray
    intensity: np.ndarray
    freqs: np.ndarray
    n_point: int = 0

    @property
    def n_sources(self) -> int:
        """Total number of sources (points + pixels)."""
        return self.ra.size

    def __iter__(self):  # allows ``ra, dec, I = sources``
        return iter((self.ra, self.dec, self.intensity))


class ForegroundSky:
    """A point-source catalogue and/or a HEALPix diffuse sky seen as one set of sources.

    Parameters
    ----------
    catalog : PointSourceCatalog, optional
    diffuse : HealpixSky, optional

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.sky import PointSourceCatalog, HealpixSky
    >>> fg = ForegroundSky(PointSourceCatalog([0.0], [0.0], [1.0], 150e6),
    ...                    HealpixSky(np.zeros(12), ref_freq=150e6))
    >>> fg.sources([150e6]).intensity.shape
    (13, 1)
    """

    def __init__(self, catalog: PointSourceCatalog | None = None,
                 diffuse: HealpixSky | None = None) -> None:
        if catalog is None and diffuse is None:
            raise InputError("ForegroundSky: give a catalog, a diffuse sky, or both")
        if catalog is not None and not isinstance(catalog, PointSourceCatalog):
            raise InputError(f"ForegroundSky(catalog): expected a PointSourceCatalog, "
                             f"received {type(catalog).__name__}")
        if diffuse is not None and not isinstance(diffuse, HealpixSky):
            raise InputError(f"ForegroundSky(diffuse): expected a HealpixSky, received "
                             f"{type(diffuse).__name__}")
        self.catalog, self.diffuse = catalog, diffuse

    @property
    def n_point(self) -> int:
        """Number of point sources (first in the source list)."""
        return 0 if self.catalog is None else self.catalog.n_sources

    @property
    def n_pixel(self) -> int:
        """Number of diffuse pixels (after the point sources)."""
        return 0 if self.diffuse is None else self.diffuse.npix

    @property
    def ra(self) -> np.ndarray:
        """ICRS RA of all sources, radians, (n_point + n_pixel,)."""
        parts = [c.ra for c in (self.catalog, self.diffuse) if c is not None]
        return np.concatenate(parts)

    @property
    def dec(self) -> np.ndarray:
        """ICRS Dec of all sources, radians, (n_point + n_pixel,)."""
        parts = [c.dec for c in (self.catalog, self.diffuse) if c is not None]
        return np.concatenate(parts)

    def sources(self, freqs: Any) -> SourceSet:
        """Positions and intensities (Jy) at ``freqs`` (Hz)."""
        f = validate_freqs(freqs)
        parts = []
        if self.catalog is not None:
            parts.append(self.catalog.fluxes(f))
        if self.diffuse is not None:
            parts.append(self.diffuse.intensities(f))
        return SourceSet(self.ra, self.dec, np.concatenate(parts, axis=0), f, self.n_point)

    def operator(self, freqs: Any, point_model: str = "powerlaw",
                 diffuse_model: str = "channel", xp: Any = None) -> tuple[Operator, tuple]:
        """Differentiable foreground model: (point params..., diffuse params...) ->
        ``I`` (n_point + n_pixel, Nfreq) Jy.

        Parameters
        ----------
        freqs : array_like, shape (Nfreq,)
            Frequencies in Hz.
        point_model : str
            ``model`` of :meth:`PointSourceCatalog.operator`.
        diffuse_model : str
            ``model`` of :meth:`HealpixSky.operator`.
        xp : module, optional

        Returns
        -------
        op : BlockConcat
            Input: the flat tuple of the catalogue's parameters followed by the diffuse
            ones (e.g. ``(lnS0, alpha, m)``).
        x0 : tuple
            Parameters reproducing :meth:`sources`.
        """
        xp = get_xp() if xp is None else xp
        f = validate_freqs(freqs)
        ops, x0 = [], []
        if self.catalog is not None:
            op, x = self.catalog.operator(f, point_model, xp=xp)
            ops.append(op)
            x0.append(x)
        if self.diffuse is not None:
            op, x = self.diffuse.operator(f, diffuse_model, xp=xp)
            ops.append(op)
            x0.append(x)
        full = BlockConcat(ops, axis=0)
        return full, full._flatten(x0)


def gaussian_random_field(nside: int, cl: Any, rng: np.random.Generator | int | None = None
                          ) -> np.ndarray:
    """Gaussian random HEALPix map (RING) with angular power spectrum ``cl``.

    Like ``healpy.synfast`` but drawn from a NumPy ``Generator`` (healpy uses the global
    RNG): ``a_lm = sqrt(C_l) (g1 + i g2) / sqrt(2)`` for ``m > 0``, ``sqrt(C_l) g1`` for
    ``m = 0``, then ``healpy.alm2map``.

    Parameters
    ----------
    nside : int
    cl : array_like, shape (lmax + 1,)
        Angular power spectrum (``lmax <= 3 nside - 1``).
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    numpy.ndarray, shape (12 nside^2,)
    """
    import healpy as hp

    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cl = np.asarray(cl, dtype=np.float64)
    lmax = cl.size - 1
    if cl.ndim != 1 or lmax < 0 or np.any(cl < 0) or not np.all(np.isfinite(cl)):
        raise InputError("gaussian_random_field(cl): expected a 1-D finite non-negative "
                         "power spectrum")
    if not hp.isnsideok(int(nside)):
        raise InputError(f"gaussian_random_field(nside): expected a power of 2, received "
                         f"{nside!r}")
    ell, m = hp.Alm.getlm(lmax)
    amp = np.sqrt(cl[ell])
    g1, g2 = rng.standard_normal(ell.size), rng.standard_normal(ell.size)
    alm = amp * (g1 + 1j * g2) / np.sqrt(2.0)
    alm[m == 0] = amp[m == 0] * g1[m == 0]
    return hp.alm2map(alm, int(nside), lmax=lmax, pol=False)


def synthetic_diffuse_sky(nside: int, rng: np.random.Generator | int | None = None, *,
                          ref_freq: float = 150e6, mean_temperature: float = 300.0,
                          spectral_index: float = -2.55, index_rms: float = 0.05,
                          fluctuation_rms: float = 0.3, ell_index: float = -2.5,
                          galactic_plane: float = 3.0, plane_width: float = np.radians(10.0)
                          ) -> HealpixSky:
    """A **synthetic** galaxy-like diffuse foreground in kelvin (not the real sky).

    ``T(p, f) = T0(p) (f / f0)^beta(p)`` on a galactic-frame HEALPix grid, with

    * ``T0 = mean_temperature * (1 + galactic_plane * exp(-b^2 / (2 plane_width^2)))
      * exp(g - fluctuation_rms^2 / 2)``, ``g`` a Gaussian field (:func:`gaussian_random_field`)
      with ``C_ell ~ ell^ell_index`` (``ell >= 2``), scaled to rms ``fluctuation_rms``
      (log-normal, so ``T0 > 0``);
    * ``beta = spectral_index + index_rms * h``, ``h`` an independent unit-rms field with
      the same spectrum.

    Defaults give a few hundred K at 150 MHz off the plane (synchrotron-like, index -2.55);
    ``galactic_plane=0`` removes the plane.

    Parameters
    ----------
    nside : int
    rng : numpy.random.Generator or int, optional
    ref_freq : float
        Hz.
    mean_temperature : float
        K, off-plane mean at ``ref_freq``.
    spectral_index, index_rms : float
        Brightness-temperature index and its spatial rms.
    fluctuation_rms : float
        rms of the log-normal fluctuations.
    ell_index : float
        Slope of ``C_ell``.
    galactic_plane : float
        Peak fractional enhancement at ``b = 0``.
    plane_width : float
        Gaussian width of the plane in latitude, radians.

    Returns
    -------
    HealpixSky
        Power-law map in K, ``frame="galactic"``.
    """
    import healpy as hp

    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    nside = int(nside)
    if not hp.isnsideok(nside):
        raise InputError(f"synthetic_diffuse_sky(nside): expected a power of 2, received "
                         f"{nside!r}")
    ref_freq = validate_ref_freq(ref_freq)
    if mean_temperature <= 0 or fluctuation_rms < 0 or index_rms < 0 or plane_width <= 0:
        raise InputError("synthetic_diffuse_sky: mean_temperature and plane_width must be "
                         "> 0, fluctuation_rms and index_rms >= 0")
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** float(ell_index)

    def unit_field() -> np.ndarray:
        if lmax < 2:
            return np.zeros(12 * nside**2)
        g = gaussian_random_field(nside, cl, rng)
        g -= g.mean()
        s = g.std()
        return g / s if s > 0 else g

    _, b = healpix_pixel_centres(nside)  # latitude on the map's own (galactic) grid
    plane = 1.0 + galactic_plane * np.exp(-0.5 * (b / plane_width) ** 2)
    t0 = mean_temperature * plane * np.exp(fluctuation_rms * unit_field()
                                           - 0.5 * fluctuation_rms**2)
    beta = spectral_index + index_rms * unit_field()
    return HealpixSky(t0, ref_freq=ref_freq, spectral_index=beta, unit="K",
                      frame="galactic")
