"""HEALPix diffuse sky: pixels treated as point sources.

Each HEALPix pixel (RING order, any ``nside``) becomes a "source" at its pixel centre with
intensity ``I[p, f] = B[p, f] * Omega_pix`` in Jy, where ``B`` is the surface brightness in
Jy/sr and ``Omega_pix = 4 pi / Npix`` sr. Maps in kelvin are converted with the
Rayleigh-Jeans factor ``2 k_B f^2 / c^2`` (Jy/sr per K) at each frequency. The RIME then
sums pixels exactly as it sums point sources; this is accurate when a pixel is small
compared with the fringe spacing of the longest baseline (``nside`` large enough that
``sqrt(Omega_pix) << lambda / |b|``).

Galactic maps are not resampled: the *pixel centres* are converted from galactic to ICRS
with astropy (``SkyCoord(l, b, frame="galactic").icrs``), so each pixel keeps its value and
solid angle and only its position is expressed in ICRS (exact, no interpolation).
:func:`rotate_map` is offered for the other choice (resampling onto an ICRS grid with
``healpy.Rotator``), which smooths the map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_xp
from ..errors import InputError, ShapeError
from ..operators.base import Operator
from ..units import (
    K_BOLTZMANN,
    galactic_to_icrs,
    healpix_pixel_centres,
    pixel_solid_angle,
    rayleigh_jeans_factor,
)
from ..units import SPEED_OF_LIGHT as C_LIGHT
from .spectra import (
    AmplitudePowerLawSpectrum,
    ChannelAmplitudes,
    FixedIndexSpectrum,
    validate_freqs,
    validate_ref_freq,
)

__all__ = [
    "K_BOLTZMANN",
    "C_LIGHT",
    "rayleigh_jeans_factor",
    "pixel_area",
    "pixel_coords",
    "galactic_to_icrs",
    "rotate_map",
    "HealpixSky",
]

_UNITS = ("Jy/sr", "K")
_FRAMES = ("icrs", "galactic")


def _check_nside(nside: Any) -> int:
    import healpy as hp

    if not isinstance(nside, (int, np.integer)) or not hp.isnsideok(int(nside)):
        raise InputError(f"nside: expected a power of 2 >= 1, received {nside!r}")
    return int(nside)


def pixel_area(nside: int) -> float:
    """Solid angle of one pixel, ``4 pi / (12 nside^2)`` sr."""
    return pixel_solid_angle(_check_nside(nside))


def pixel_coords(nside: int, frame: str = "icrs") -> tuple[np.ndarray, np.ndarray]:
    """ICRS ``(ra, dec)`` in radians of every pixel centre (RING order), shape (Npix,).

    Parameters
    ----------
    nside : int
    frame : {"icrs", "galactic"}
        Frame of the map's pixelisation. For ``"galactic"`` the pixel centres ``(l, b)``
        are converted to ICRS with astropy.
    """
    nside = _check_nside(nside)
    if frame not in _FRAMES:
        raise InputError(f"pixel_coords(frame): expected one of {_FRAMES}, received {frame!r}")
    return healpix_pixel_centres(nside, frame=frame)


def rotate_map(m: Any, frame_in: str = "galactic", frame_out: str = "icrs") -> np.ndarray:
    """Resample a RING map (Npix,) or (Npix, Nfreq) between galactic and equatorial grids
    with ``healpy.Rotator.rotate_map_pixel`` (bilinear interpolation: smooths the map).

    healpy's equatorial frame is FK5-like; it differs from ICRS by < 0.1 arcsec, far below
    a pixel. Prefer :class:`HealpixSky` with ``frame="galactic"``, which moves pixel
    centres instead of resampling.
    """
    import healpy as hp

    codes = {"galactic": "G", "icrs": "C"}
    if frame_in not in codes or frame_out not in codes:
        raise InputError(f"rotate_map: frames must be in {tuple(codes)}, received "
                         f"{frame_in!r} -> {frame_out!r}")
    a = np.asarray(m, dtype=np.float64)
    rot = hp.Rotator(coord=[codes[frame_in], codes[frame_out]])
    if a.ndim == 1:
        return rot.rotate_map_pixel(a)
    return np.stack([rot.rotate_map_pixel(a[:, j]) for j in range(a.shape[1])], axis=1)


class HealpixSky:
    """A diffuse sky on a HEALPix grid (RING order), per channel or as a power law.

    Parameters
    ----------
    maps : array_like, shape (Npix, Nfreq) or (Npix,)
        Surface brightness in ``unit``: one column per frequency of ``freqs`` (channel
        mode), or one map at ``ref_freq`` (power-law mode, with ``spectral_index``).
    freqs : array_like, shape (Nfreq,), optional
        Frequencies of the columns in Hz (channel mode).
    ref_freq : float, optional
        Reference frequency in Hz (power-law mode).
    spectral_index : float or array_like, shape (Npix,), optional
        Power-law index of the map *in its own unit* (for K, a brightness-temperature
        index, e.g. -2.55 for synchrotron; the flux index is 2 higher). Default 0.
    unit : {"Jy/sr", "K"}
        Unit of ``maps`` (K: Rayleigh-Jeans brightness temperature).
    frame : {"icrs", "galactic"}
        Frame of the pixelisation (see the module notes).
    nest : bool
        True if ``maps`` are in NESTED order; they are reordered to RING once.

    Examples
    --------
    >>> import numpy as np
    >>> sky = HealpixSky(np.full(12, 2.0), ref_freq=150e6)
    >>> round(float(sky.total_flux([150e6])[0] / (4 * np.pi)), 12)  # 4 pi sr x 2 Jy/sr
    2.0
    """

    def __init__(self, maps: Any, freqs: Any = None, *, ref_freq: Any = None,
                 spectral_index: Any = None, unit: str = "Jy/sr", frame: str = "icrs",
                 nest: bool = False) -> None:
        import healpy as hp

        m = np.asarray(maps, dtype=np.float64)
        if m.ndim not in (1, 2):
            raise ShapeError(f"HealpixSky(maps): expected shape (Npix,) or (Npix, Nfreq), "
                             f"received {m.shape}")
        if not hp.isnpixok(m.shape[0]):
            raise ShapeError(f"HealpixSky(maps): {m.shape[0]} is not a valid HEALPix pixel "
                             "count 12 nside^2 (pixels go along axis 0)")
        if not np.all(np.isfinite(m)):
            raise InputError(f"HealpixSky(maps): expected finite values, received "
                             f"{int((~np.isfinite(m)).sum())} NaN/inf (masked pixels? fill "
                             "hp.UNSEEN/NaN with 0)")
        if unit not in _UNITS:
            raise InputError(f"HealpixSky(unit): expected one of {_UNITS}, received {unit!r}")
        if frame not in _FRAMES:
            raise InputError(f"HealpixSky(frame): expected one of {_FRAMES}, received "
                             f"{frame!r}")
        self.nside = hp.npix2nside(m.shape[0])
        if nest:
            idx = hp.nest2ring(self.nside, np.arange(m.shape[0]))
            ring = np.empty_like(m)
            ring[idx] = m
            m = ring
        self.unit, self.frame = unit, frame
        if m.ndim == 2:
            if freqs is None or ref_freq is not None or spectral_index is not None:
                raise InputError("HealpixSky: a 2-D map (Npix, Nfreq) needs freqs (Hz) and "
                                 "no ref_freq/spectral_index")
            self.freqs = validate_freqs(freqs)
            if self.freqs.size != m.shape[1]:
                raise ShapeError(f"HealpixSky(freqs): expected {m.shape[1]} frequencies "
                                 f"(columns of maps), received {self.freqs.size}")
            self.ref_freq, self.spectral_index = None, None
        else:
            if ref_freq is None or freqs is not None:
                raise InputError("HealpixSky: a 1-D map (Npix,) needs ref_freq (Hz) and "
                                 "no freqs")
            self.freqs = None
            self.ref_freq = validate_ref_freq(ref_freq)
            idx = np.zeros(m.shape[0]) if spectral_index is None else np.broadcast_to(
                np.asarray(spectral_index, dtype=np.float64), (m.shape[0],)).copy()
            if not np.all(np.isfinite(idx)):
                raise InputError("HealpixSky(spectral_index): expected finite values")
            self.spectral_index = idx
        self.maps = m
        self._coords: tuple[np.ndarray, np.ndarray] | None = None

    # -- geometry ------------------------------------------------------------------------
    @property
    def npix(self) -> int:
        """Number of pixels ``12 nside^2``."""
        return self.maps.shape[0]

    @property
    def pixel_area(self) -> float:
        """Pixel solid angle in sr, ``4 pi / Npix``."""
        return 4.0 * np.pi / self.npix

    @property
    def is_powerlaw(self) -> bool:
        """True for a map at ``ref_freq`` with a spectral index (1-D ``maps``)."""
        return self.maps.ndim == 1

    def _radec(self) -> tuple[np.ndarray, np.ndarray]:
        if self._coords is None:
            self._coords = pixel_coords(self.nside, self.frame)
        return self._coords

    @property
    def ra(self) -> np.ndarray:
        """ICRS right ascension of the pixel centres, radians, shape (Npix,)."""
        return self._radec()[0]

    @property
    def dec(self) -> np.ndarray:
        """ICRS declination of the pixel centres, radians, shape (Npix,)."""
        return self._radec()[1]

    def __repr__(self) -> str:
        mode = (f"power law at {self.ref_freq / 1e6:g} MHz" if self.is_powerlaw
                else f"{self.freqs.size} channels")
        return f"HealpixSky(nside={self.nside}, {mode}, unit={self.unit!r}, frame={self.frame!r})"

    # -- values --------------------------------------------------------------------------
    def _to_jy_per_sr(self, freqs: np.ndarray) -> np.ndarray:
        return rayleigh_jeans_factor(freqs) if self.unit == "K" else np.ones(freqs.size)

    def jy_per_unit(self, freqs: Any) -> np.ndarray:
        """Pixel intensity in Jy per unit of the map, shape (Nfreq,): ``Omega_pix`` times
        the K -> Jy/sr factor for K maps."""
        f = validate_freqs(freqs)
        return self.pixel_area * self._to_jy_per_sr(f)

    def _check_channel_freqs(self, f: np.ndarray) -> None:
        if f.shape != self.freqs.shape or not np.allclose(f, self.freqs, rtol=1e-12, atol=0):
            raise InputError(
                f"HealpixSky: this map is given per channel at {self.freqs.size} frequencies "
                f"({self.freqs[0]:.6g} to {self.freqs[-1]:.6g} Hz); received other freqs")

    def map_values(self, freqs: Any = None) -> np.ndarray:
        """Map in its own unit at ``freqs`` (Hz), shape (Npix, Nfreq)."""
        if not self.is_powerlaw:
            if freqs is not None:
                self._check_channel_freqs(validate_freqs(freqs))
            return self.maps.copy()
        if freqs is None:
            raise InputError("HealpixSky.map_values: freqs (Hz) are required for a "
                             "power-law map")
        x = np.log(validate_freqs(freqs) / self.ref_freq)
        return self.maps[:, None] * np.exp(self.spectral_index[:, None] * x[None, :])

    def intensities(self, freqs: Any = None) -> np.ndarray:
        """Per-pixel intensities in Jy (brightness in Jy/sr times pixel solid angle),
        shape (Npix, Nfreq) float64 (``freqs`` in Hz; optional in channel mode)."""
        if freqs is None:
            if self.is_powerlaw:
                raise InputError("HealpixSky.intensities: freqs (Hz) are required for a "
                                 "power-law map")
            f = self.freqs
        else:
            f = validate_freqs(freqs)
        return self.map_values(f) * self.jy_per_unit(f)[None, :]

    def total_flux(self, freqs: Any = None) -> np.ndarray:
        """Sum of the pixel intensities, Jy, shape (Nfreq,)."""
        return self.intensities(freqs).sum(axis=0)

    def operator(self, freqs: Any = None, model: str = "channel", xp: Any = None
                 ) -> tuple[Operator, Any]:
        """Differentiable map from pixel parameters to intensities ``I`` (Npix, Nfreq) in Jy.

        Parameters
        ----------
        freqs : array_like, shape (Nfreq,), optional
            Frequencies in Hz (default: the map's channels).
        model : {"channel", "powerlaw", "fixed_index"}
            ``"channel"``: :class:`~linlim.sky.spectra.ChannelAmplitudes`, parameters are
            the map values (Npix, Nfreq) in ``unit``; ``"powerlaw"``:
            :class:`~linlim.sky.spectra.AmplitudePowerLawSpectrum`, parameters ``(m0,
            index)`` (Npix,) each, ``m0`` in ``unit`` at ``ref_freq``; ``"fixed_index"``:
            :class:`~linlim.sky.spectra.FixedIndexSpectrum`, parameter ``m0`` with the
            map's spectral indices held fixed (linear).
        xp : module, optional

        Returns
        -------
        op : Operator
        x0 : array or tuple
            Parameters of this map (on ``xp``); ``op(x0)`` equals :meth:`intensities`.
        """
        xp = get_xp() if xp is None else xp
        if freqs is None:
            if self.is_powerlaw:
                raise InputError("HealpixSky.operator: freqs (Hz) are required for a "
                                 "power-law map")
            freqs = self.freqs
        f = validate_freqs(freqs)
        scale = self.jy_per_unit(f)
        if model == "channel":
            op = ChannelAmplitudes(self.npix, f.size, reference=scale, xp=xp)
            return op, xp.asarray(self.map_values(f))
        if not self.is_powerlaw:
            raise InputError(f"HealpixSky.operator(model={model!r}) needs a power-law map "
                             "(1-D maps with ref_freq); use model='channel'")
        if model == "powerlaw":
            op = AmplitudePowerLawSpectrum(f, self.ref_freq, self.npix, scale=scale, xp=xp)
            return op, (xp.asarray(self.maps), xp.asarray(self.spectral_index))
        if model == "fixed_index":
            op = FixedIndexSpectrum(f, self.ref_freq, self.spectral_index, scale=scale, xp=xp)
            return op, xp.asarray(self.maps)
        raise InputError(f"HealpixSky.operator(model): expected 'channel', 'powerlaw' or "
                         f"'fixed_index', received {model!r}")

    # -- resolution ----------------------------------------------------------------------
    def ud_grade(self, nside_out: int) -> HealpixSky:
        """Change resolution with ``healpy.ud_grade`` (averaging/repeating pixels), which
        keeps the mean surface brightness and hence the total flux. Spectral indices are
        averaged too (exact only where they are uniform within the coarse pixel)."""
        import healpy as hp

        nside_out = _check_nside(nside_out)
        grade = lambda a: hp.ud_grade(a, nside_out, order_in="RING")  # noqa: E731
        if self.is_powerlaw:
            return HealpixSky(grade(self.maps), ref_freq=self.ref_freq,
                              spectral_index=grade(self.spectral_index), unit=self.unit,
                              frame=self.frame)
        cols = np.stack([grade(self.maps[:, j]) for j in range(self.maps.shape[1])], axis=1)
        return HealpixSky(cols, self.freqs, unit=self.unit, frame=self.frame)
