"""Linear sky components of the joint model: the 21 cm signal and the diffuse foreground.

Both are linear in their coefficients and sit in the RIME beside the point sources, at the
centres of low-resolution HEALPix pixels (RING, equatorial) inside the observed field.

**Signal** (:class:`SignalField`). Brightness temperature on ``Npix`` pixels over the band,
``T[p, f] = sum_k c[p, k] B[f, k]`` (K), with ``B`` the lowest ``nk`` orthonormal DCT-II
modes along frequency (line-of-sight ``k_par`` modes, :func:`linlim.sky.signal.frequency_modes`).
The prior is a Gaussian random field described by band powers: each coefficient is
independent with variance ``P_b(k) / V_cell``, where ``b(k)`` is the band of mode ``k`` and
``V_cell = Omega_pix X^2 |dr/dnu| dnu`` the comoving volume of a (pixel, channel) cell
(astropy Planck18 at the band centre). This is the power of a field that is white across
the transverse scales the pixels resolve: at these baselines ``k_perp`` (< 0.01 Mpc^-1) is
well below the ``k_par`` of every mode but the first, so ``k ~ k_par`` and each band is a
group of contiguous ``k_par`` modes. The mock signal is drawn from this same prior (the
model is well specified); its band powers are the input power law ``P(k) = A (k / 0.1)^n``
averaged over the modes of each band, with ``A`` set by the requested rms.

The fit uses whitened coefficients ``z = c / sqrt(P0_b / V_cell)`` (prior ``N(0, 1)``) for a
fiducial ``P0``: the prior is then the identity and is the natural CG preconditioner.

**Diffuse foreground** (:class:`DiffuseField`). Intensity per pixel (Jy) of a smooth
synchrotron-like map, ``I[p, f] = sum_m a[p, m] (f / f0)^beta (ln f / f0)^m`` (a log-polynomial
spectrum, ``nmodes`` terms: :class:`linlim.sky.diffuse.DiffuseSky`'s operator in units of Jy
per pixel at ``f0``), on an ``nside`` grid coarser than the signal's. The synthetic
truth is a positive map (mean brightness ``temperature_k`` at ``f0`` with smooth
fluctuations) and per-pixel spectral-index offsets, expanded to the same modes, so the model
represents it exactly. Prior: ``a[p, m] ~ N(0, sigma_m^2)``, broad; fitted whitened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..operators import Select
from ..operators.linear import MatrixMult
from ..sky.diffuse import DiffuseSky
from ..sky.signal import (
    cosmo_scalars,
    frequency_modes,
    mode_k_parallel,
    rayleigh_jeans_factor,
)
from ..units import SPEED_OF_LIGHT, healpix_pixel_centres

__all__ = ["SignalField", "DiffuseField", "field_pixels", "make_signal_field",
           "make_diffuse_field", "component_operator"]


def field_pixels(nside: int, ra0: float, dec0: float, radius_deg: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """HEALPix (RING) pixels whose centres lie within ``radius_deg`` of (ra0, dec0).

    Returns ``(pix, ra, dec, omega)``: indices, centres (radians) and the pixel solid angle (sr).
    """
    import healpy as hp

    if not hp.isnsideok(int(nside)):
        raise InputError(f"field_pixels: nside must be a power of 2, received {nside!r}")
    vec = hp.ang2vec(np.pi / 2 - dec0, ra0)
    pix = hp.query_disc(int(nside), vec, np.deg2rad(float(radius_deg)))
    if pix.size == 0:
        raise InputError(f"field_pixels: no nside={nside} pixel centre within "
                         f"{radius_deg} deg of the field centre")
    ra, dec = healpix_pixel_centres(int(nside), pix)
    return pix, ra, dec, float(hp.nside2pixarea(int(nside)))


@dataclass
class SignalField:
    """The 21 cm signal component: pixels, frequency modes, bands and prior.

    Attributes
    ----------
    pix, ra, dec : ndarray (Npix,)
        HEALPix indices and centres (radians).
    omega : float
        Pixel solid angle (sr).
    freqs : ndarray (Nfreq,), Hz
    modes : ndarray (Nfreq, Nk)
        Orthonormal DCT-II modes ``B``.
    band : ndarray (Nk,) int
        Band of each mode.
    k_mode : ndarray (Nk,), Mpc^-1
        ``sqrt(k_par^2 + k_perp^2)`` of each mode (``k_perp`` the median of the baselines').
    k_band : ndarray (Nbands,), Mpc^-1 (and ``k_band_h``, h Mpc^-1)
    v_cell : float
        Comoving cell volume (Mpc^3).
    truth_power : ndarray (Nbands,), K^2 Mpc^3
        Band powers the mock was drawn with (zeros when no signal was injected).
    coeffs : ndarray (Npix, Nk), K
        True coefficients ``c``.
    """

    pix: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    omega: float
    freqs: np.ndarray
    modes: np.ndarray
    band: np.ndarray
    k_mode: np.ndarray
    k_band: np.ndarray
    k_band_h: np.ndarray
    v_cell: float
    truth_power: np.ndarray
    coeffs: np.ndarray
    pk_amplitude: float = 0.0
    pk_slope: float = -2.0

    @property
    def npix(self) -> int:
        return int(self.pix.size)

    @property
    def nk(self) -> int:
        return int(self.modes.shape[1])

    @property
    def nbands(self) -> int:
        return int(self.k_band.size)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.npix, self.nk)

    def band_of_coeff(self) -> np.ndarray:
        """Band index of each flattened coefficient (``(p, k)`` with ``k`` fastest)."""
        return np.tile(self.band, self.npix)

    def coeff_std(self, power: np.ndarray) -> np.ndarray:
        """Prior standard deviation of each mode, ``sqrt(P_b / V_cell)`` (Nk,), K."""
        p = np.asarray(power, float)
        if p.shape != (self.nbands,) or np.any(~np.isfinite(p)) or np.any(p <= 0):
            raise InputError(f"signal prior: band powers must be {self.nbands} positive "
                             f"finite values (K^2 Mpc^3), received {np.round(p, 12).tolist()}")
        return np.sqrt(p[self.band] / self.v_cell)

    def temperature(self, coeffs: np.ndarray) -> np.ndarray:
        """``T = c B^T`` (Npix, Nfreq), K."""
        return np.asarray(coeffs) @ self.modes.T

    def jy_per_kelvin(self) -> np.ndarray:
        """Jy per pixel per K at each channel, (Nfreq,)."""
        return rayleigh_jeans_factor(self.freqs) * self.omega

    def spectral_matrix(self, power: np.ndarray) -> np.ndarray:
        """``E[f, k]``: Jy per pixel per unit whitened coefficient (fiducial ``power``)."""
        return self.jy_per_kelvin()[:, None] * self.modes * self.coeff_std(power)[None, :]


def make_signal_field(cfg: dict, obs: Any, centre: tuple[float, float],
                      rng: np.random.Generator | None) -> SignalField:
    """Pixels, modes and bands of the signal from the ``scenario.signal`` config; draws the
    mock coefficients from the prior when ``rng`` is given and the signal is enabled."""
    nside, nk, nb = int(cfg["nside"]), int(cfg["nk"]), int(cfg["nbands"])
    freqs = np.asarray(obs.freqs, float)
    if not 1 <= nk <= freqs.size:
        raise InputError(f"config scenario.signal.nk: expected 1 <= nk <= {freqs.size} "
                         f"(the channels), received {nk}")
    if not 1 <= nb <= nk:
        raise InputError(f"config scenario.signal.nbands: expected 1 <= nbands <= nk = {nk}, "
                         f"received {nb}")
    pix, ra, dec, omega = field_pixels(nside, centre[0], centre[1], float(cfg["radius_deg"]))
    modes = frequency_modes(freqs.size, nk, "dct")
    X, Y = cosmo_scalars(freqs)
    dnu = float(np.abs(np.diff(freqs)).mean())
    v_cell = omega * X**2 * Y * dnu
    kpar = mode_k_parallel(freqs, nk, "dct")
    bl = np.linalg.norm(obs.antpos[obs.ant2] - obs.antpos[obs.ant1], axis=1)
    kperp = 2 * np.pi * float(np.median(bl)) * float(freqs.mean()) / SPEED_OF_LIGHT / X
    k_mode = np.sqrt(kpar**2 + kperp**2)
    band = np.minimum((np.arange(nk) * nb) // nk, nb - 1)
    k_band = np.array([k_mode[band == b].mean() for b in range(nb)])
    from astropy.cosmology import Planck18

    h = float(Planck18.h)
    slope = float(cfg["pk_slope"])
    shape = np.array([np.mean((k_mode[band == b] / 0.1) ** slope) for b in range(nb)])
    # rms^2 = mean over (p, f) of T^2 = sum_k P_b(k) / (Nfreq V_cell)   (B orthonormal)
    rms = 1e-3 * float(cfg["rms_mk"])
    amp = rms**2 * freqs.size * v_cell / float(np.sum(shape[band]))
    enabled = bool(cfg["enabled"]) and rng is not None
    truth = amp * shape if enabled else np.zeros(nb)
    coeffs = np.zeros((pix.size, nk))
    if enabled:
        coeffs = rng.standard_normal((pix.size, nk)) * np.sqrt(truth[band] / v_cell)
    return SignalField(pix, ra, dec, omega, freqs, modes, band, k_mode, k_band, k_band / h,
                       v_cell, truth, coeffs, amp, slope)


@dataclass
class DiffuseField:
    """The diffuse foreground component (see the module docstring).

    Attributes
    ----------
    pix, ra, dec : ndarray (Npix,)
    omega : float, sr
    freqs : ndarray (Nfreq,), Hz
    ref_freq : float, Hz
    spectra : ndarray (Nfreq, Nmodes)
        ``(f / f0)^beta (ln f / f0)^m``.
    prior_sigma : ndarray (Nmodes,), Jy
    coeffs : ndarray (Npix, Nmodes), Jy (truth; zeros when disabled)
    """

    pix: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    omega: float
    freqs: np.ndarray
    ref_freq: float
    spectra: np.ndarray
    prior_sigma: np.ndarray
    coeffs: np.ndarray = field(repr=False)

    @property
    def npix(self) -> int:
        return int(self.pix.size)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.npix, int(self.spectra.shape[1]))

    def intensity(self, coeffs: np.ndarray) -> np.ndarray:
        """``I = a S^T`` (Npix, Nfreq), Jy per pixel."""
        return np.asarray(coeffs) @ self.spectra.T

    def spectral_matrix(self) -> np.ndarray:
        """Jy per pixel per unit whitened coefficient, (Nfreq, Nmodes)."""
        return self.spectra * self.prior_sigma[None, :]


def make_diffuse_field(cfg: dict, obs: Any, centre: tuple[float, float], ref_freq: float,
                       rng: np.random.Generator) -> DiffuseField:
    """The diffuse component from the ``scenario.diffuse`` config (synthetic truth)."""
    import healpy as hp

    nm = int(cfg["nmodes"])
    if not 1 <= nm <= 4:
        raise InputError(f"config scenario.diffuse.nmodes: expected 1-4, received {nm}")
    nside = int(cfg["nside"])
    pix, ra, dec, omega = field_pixels(nside, centre[0], centre[1], float(cfg["radius_deg"]))
    freqs = np.asarray(obs.freqs, float)
    # the library's diffuse operator (log-polynomial modes about the temperature index,
    # times K -> Jy per pixel), rescaled so the coefficients are Jy per pixel at ref_freq:
    # spectra = (f / f0)^(index_mean + 2) ln(f / f0)^m
    sky = DiffuseSky(nside, freqs, ref_freq, n_modes=nm, beta0=float(cfg["index_mean"]),
                     pixels=pix)
    jy0 = float(rayleigh_jeans_factor(np.array([ref_freq]))[0]) * omega
    spectra = np.asarray(sky.matrix, float) / jy0
    t0 = float(cfg["temperature_k"])
    # smooth positive map: a few random large-scale dipole/quadrupole-like terms
    vec = np.stack(hp.pix2vec(nside, pix), axis=1)
    cen = hp.ang2vec(np.pi / 2 - centre[1], centre[0])
    g = rng.standard_normal(3)
    q = rng.standard_normal((3, 3))
    q = 0.5 * (q + q.T)
    fl = vec @ g + 0.5 * np.einsum("pi,ij,pj->p", vec - cen, q, vec - cen)
    fl = (fl - fl.mean()) / max(fl.std(), 1e-12)
    amp = t0 * jy0 * np.exp(float(cfg["fluctuation"]) * fl)
    dbeta = float(cfg["index_std"]) * rng.standard_normal(pix.size)
    from math import factorial

    coeffs = np.stack([amp * dbeta**m / factorial(m) for m in range(nm)], axis=1)
    if not cfg["enabled"]:
        coeffs = np.zeros_like(coeffs)
    scale = float(cfg["prior_scale"]) * max(t0, 1e-3) * jy0
    spread = max(float(cfg["index_std"]), 0.05) * 3
    sigma = np.array([scale * spread**m / factorial(m) for m in range(nm)])
    return DiffuseField(pix, ra, dec, omega, freqs, float(ref_freq), spectra, sigma, coeffs)


def component_operator(spectral: np.ndarray, npix: int, select: Select) -> Any:
    """``theta -> I[p, f] = sum_m x[p, m] E[f, m]`` (Jy per pixel) for one linear block."""
    return MatrixMult(np.asarray(spectral, float), in_shape=(npix, spectral.shape[1]),
                      axis=1) @ select
