"""A synthetic observation from a config: array, band, times, foregrounds, beam, signal.

This is what ``linlim simulate`` and ``linlim demo`` observe when no files are given: a
HERA-like hexagon at the HERA site drift-scanning a field of point-source foregrounds with
power-law spectra, through an Airy beam whose diameter follows a power law in frequency
with a small reflection ripple (the "unknown chromatic beam"), plus a mock 21 cm signal (a
Gaussian random field with a power-law P(k), on HEALPix pixels) and thermal noise.

Every random draw comes from one seed, so a config fully determines the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..sky.catalog import PointSourceCatalog
from ..telescope.baselines import cross_antpairs
from ..telescope.coordinates import enu_to_az_za, source_enu
from ..telescope.layout import ArrayLayout, hex_array
from ..telescope.site import get_site
from ..telescope.times import jd_array, lst
from ..units import healpix_pixel_centres

__all__ = ["SCENARIO_DEFAULTS", "Observation", "Scenario", "build_scenario"]

#: Built-in defaults of the synthetic scenario (the ``scenario`` section of a config).
SCENARIO_DEFAULTS: dict[str, Any] = {
    "seed": 2026,
    "array": {"hex_num": 3, "spacing_m": 14.6, "site": "HERA"},
    "band": {"freq_min_hz": 140.0e6, "freq_max_hz": 160.0e6, "nfreq": 96},
    "times": {"start_jd": 2459500.25, "ntimes": 8, "integration_s": 60.0},
    "foregrounds": {
        "nsources": 30,            # brightest sources kept
        "radius_deg": 25.0,        # field radius around the pointing centre
        "flux_min_jy": 2.0,
        "flux_max_jy": 40.0,
        "index_mean": -0.8,
        "index_std": 0.15,
        "catalog": None,           # optional BayesLIM-style YAML catalogue (GLEAM + A-team)
    },
    "beam": {
        "diameter_m": 14.0,
        "spectral_index": 0.05,    # D(f) = D0 (f/f0)^gamma + ripple
        "ripple_delay_s": 650e-9,
        "ripple_cos_m": 0.15,
        "ripple_sin_m": -0.10,
    },
    "signal": {
        "enabled": True,
        "nside": 16,
        "radius_deg": 20.0,
        "rms_mk": 5.0,             # brighter than the real signal so a short demo detects it
        "pk_slope": -2.0,
        "basis": "modes",          # "modes": HEALPix pixels x DCT k_par modes drawn from the
        #                            band-power prior the fit uses (well specified);
        #                            "grf": Gaussian random field with P(k) ~ k^pk_slope;
        #                            "stripe": random stripe-harmonic x frequency-mode field
        "nk": None,                # (modes, stripe) frequency modes (None: 7/12 of the
        #                            channels, 56 of 96; the stripe basis then takes 24)
        "nbands": 7,               # (modes) band powers, contiguous groups of k_par modes
        "lmax": 40,                # (stripe) largest angular degree
    },
    "diffuse": {
        "enabled": True,
        "nside": 8,
        "radius_deg": 25.0,
        "temperature_k": 2.0,      # mean brightness at the band centre
        "fluctuation": 0.3,        # rms of the log-brightness across the field
        "index_mean": -2.55,       # temperature spectral index
        "index_std": 0.1,          # per-pixel index scatter
        "nmodes": 3,               # log-polynomial spectral terms (fit and truth)
        "prior_scale": 10.0,       # prior sd of the amplitudes, in units of temperature_k
    },
    "noise": {"sigma_jy": 0.005},
    "gains": {"enabled": True, "amplitude_rms": 0.05, "phase_rms_rad": 0.2},
}


@dataclass
class Observation:
    """Array, band and times of an observation.

    Attributes
    ----------
    layout : ArrayLayout
    site : astropy.coordinates.EarthLocation
    antpos : ndarray (Nant, 3), ENU metres
    ant1, ant2 : ndarray (Nbl,), antenna indices of the cross-correlations (pyuvdata order)
    freqs : ndarray (Nfreq,), Hz
    times_jd : ndarray (Ntimes,), JD
    """

    layout: ArrayLayout
    site: Any
    antpos: np.ndarray
    ant1: np.ndarray
    ant2: np.ndarray
    freqs: np.ndarray
    times_jd: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Visibility shape (Ntimes, Nfreq, Nbl)."""
        return (self.times_jd.size, self.freqs.size, self.ant1.size)

    def gain_products(self, gains: np.ndarray) -> np.ndarray:
        """What multiplies each baseline's visibility: ``V_raw = g_p conj(g_q) V``.

        Parameters
        ----------
        gains : ndarray, shape (Nant, ...), complex
            Per-antenna gains (any trailing axes, e.g. time and channel).

        Returns
        -------
        ndarray, shape (Nbl, ...), complex
            ``gains[ant1] * conj(gains[ant2])``.
        """
        return gains[self.ant1] * np.conj(gains[self.ant2])

    def directions(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, ...]:
        """ENU unit vectors (Ntimes, 3, Nsrc) and beam angles ``az`` (uvbeam convention)
        and ``za``, each flattened time-major to (Ntimes * Nsrc,)."""
        enu = source_enu(ra, dec, self.times_jd, self.site, method="precise")
        az, za = enu_to_az_za(enu, axis=1, orientation="uvbeam")
        return enu, np.asarray(az).ravel(), np.asarray(za).ravel()


@dataclass
class Scenario:
    """The truth of a synthetic observation (what a fit should recover).

    Attributes
    ----------
    obs : Observation
    catalog : PointSourceCatalog
        Foreground point sources (fluxes at ``ref_freq``, power-law indices).
    ref_freq : float
        Reference frequency of spectra and beam (Hz), the band centre.
    beam_params : ndarray (1, 4)
        True ``(D0 [m], gamma, ripple_cos [m], ripple_sin [m])``.
    ripple_delay : float
        Ripple delay (s).
    gains : ndarray (Nant,) complex or None
        True direction-independent gains.
    signal_ra, signal_dec : ndarray (Npix,)
        Signal pixel centres (radians); empty when the signal is disabled.
    signal_jy : ndarray (Npix, Nfreq)
        Signal intensity per pixel (Jy).
    signal_pixel_sr : float
        Solid angle of a signal pixel.
    signal_field : SignalField or None
        The signal's basis, bands, prior and true coefficients (``basis: modes``).
    diffuse : DiffuseField or None
        The diffuse foreground's pixels, spectra, prior and truth.
    sigma : float
        Noise rms per complex visibility (Jy), ``E|n|^2 = sigma^2``.
    rng : numpy.random.Generator
        The generator after the truth was drawn (for noise).
    """

    obs: Observation
    catalog: PointSourceCatalog
    ref_freq: float
    beam_params: np.ndarray
    ripple_delay: float
    gains: np.ndarray | None
    signal_ra: np.ndarray
    signal_dec: np.ndarray
    signal_jy: np.ndarray
    signal_pixel_sr: float
    sigma: float
    rng: np.random.Generator = field(repr=False)
    signal_field: Any = None
    diffuse: Any = None


def _observation(cfg: dict) -> Observation:
    site = get_site(cfg["array"]["site"])
    layout = hex_array(int(cfg["array"]["hex_num"]), float(cfg["array"]["spacing_m"]),
                       site=site)
    pairs = cross_antpairs(layout)
    index = {int(n): i for i, n in enumerate(layout.antnums)}
    ant1 = np.array([index[int(a)] for a in pairs[:, 0]])
    ant2 = np.array([index[int(b)] for b in pairs[:, 1]])
    band = cfg["band"]
    if band["freq_min_hz"] < 1e6 or band["freq_max_hz"] <= band["freq_min_hz"]:
        raise InputError(
            f"config scenario.band: expected 1e6 <= freq_min_hz < freq_max_hz (Hz), received "
            f"{band['freq_min_hz']!r}, {band['freq_max_hz']!r}")
    freqs = np.linspace(float(band["freq_min_hz"]), float(band["freq_max_hz"]),
                        int(band["nfreq"]))
    t = cfg["times"]
    times_jd = jd_array(float(t["start_jd"]), float(t["integration_s"]), int(t["ntimes"]))
    return Observation(layout, site, np.asarray(layout.antpos, float), ant1, ant2, freqs,
                       times_jd)


def _field_centre(obs: Observation) -> tuple[float, float]:
    """RA/Dec (radians) of the zenith at the middle of the observation."""
    mid = obs.times_jd[obs.times_jd.size // 2]
    return float(lst(np.array([mid]), obs.site)[0]), float(obs.site.lat.rad)


def _cap(rng: np.random.Generator, n: int, ra0: float, dec0: float, radius: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` directions uniform inside a spherical cap."""
    cosr = rng.uniform(np.cos(radius), 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sinr = np.sqrt(1 - cosr**2)
    # cap around the pole, then rotate the pole to (ra0, dec0)
    v = np.stack([sinr * np.cos(phi), sinr * np.sin(phi), cosr])
    th = np.pi / 2 - dec0
    ry = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    rz = np.array([[np.cos(ra0), -np.sin(ra0), 0], [np.sin(ra0), np.cos(ra0), 0], [0, 0, 1]])
    x, y, z = rz @ ry @ v
    return np.mod(np.arctan2(y, x), 2 * np.pi), np.arcsin(np.clip(z, -1, 1))


def _foregrounds(cfg: dict, obs: Observation, ref_freq: float, rng: np.random.Generator
                 ) -> PointSourceCatalog:
    fg = cfg["foregrounds"]
    ra0, dec0 = _field_centre(obs)
    radius = np.deg2rad(float(fg["radius_deg"]))
    n = int(fg["nsources"])
    if fg["catalog"]:
        cat = PointSourceCatalog.from_bayeslim_yaml(fg["catalog"])
        cat = cat.within_radius(ra0, dec0, radius).with_ref_freq(ref_freq).brightest(n)
        return cat
    ra, dec = _cap(rng, n, ra0, dec0, radius)
    lo, hi = np.log(float(fg["flux_min_jy"])), np.log(float(fg["flux_max_jy"]))
    flux = np.exp(rng.uniform(lo, hi, n))
    index = rng.normal(float(fg["index_mean"]), float(fg["index_std"]), n)
    return PointSourceCatalog(ra=ra, dec=dec, flux=flux, ref_freq=ref_freq,
                              spectral_index=index)


def _signal(cfg: dict, obs: Observation, rng: np.random.Generator) -> tuple:
    sig = cfg["signal"]
    if sig["basis"] == "modes":
        from .skymodel import make_signal_field

        sig = {**sig, "nk": signal_nk(sig, obs.freqs.size, "modes")}
        sf = make_signal_field(sig, obs, _field_centre(obs), rng if sig["enabled"] else None)
        if not sig["enabled"]:
            return np.zeros(0), np.zeros(0), np.zeros((0, obs.freqs.size)), 0.0, sf
        jy = sf.temperature(sf.coeffs) * sf.jy_per_kelvin()[None, :]
        return sf.ra, sf.dec, jy, sf.omega, sf
    if not sig["enabled"]:
        return np.zeros(0), np.zeros(0), np.zeros((0, obs.freqs.size)), 0.0, None
    import healpy as hp

    from ..sky.signal import kelvin_to_jy_per_pixel

    nside = int(sig["nside"])
    ra0, dec0 = _field_centre(obs)
    vec = hp.ang2vec(np.pi / 2 - dec0, ra0)
    pix = hp.query_disc(nside, vec, np.deg2rad(float(sig["radius_deg"])))
    ra, dec = healpix_pixel_centres(nside, pix)
    omega = hp.nside2pixarea(nside)
    if sig["basis"] == "stripe":
        T = _stripe_signal(sig, ra, dec, obs.freqs, rng)
    elif sig["basis"] == "grf":
        T = _grf_signal(sig, ra, dec, obs.freqs, omega, rng)
    else:
        raise InputError(f"config scenario.signal.basis: expected 'modes', 'grf' or "
                         f"'stripe', received {sig['basis']!r}")
    T *= 1e-3 * float(sig["rms_mk"]) / T.std()
    jy = kelvin_to_jy_per_pixel(ra.size, obs.freqs, omega).matvec(T)
    return ra, dec, np.asarray(jy), float(omega), None


def signal_nk(sig: dict, nfreq: int, basis: str) -> int:
    """Frequency modes of the signal basis: ``signal.nk``, or by default 7/12 of the
    channels (modes) or 24 (stripe)."""
    if sig["nk"] is not None:
        return int(sig["nk"])
    return max(1, (7 * nfreq) // 12) if basis == "modes" else min(24, nfreq)


def _stripe_signal(sig: dict, ra: np.ndarray, dec: np.ndarray, freqs: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """A random field in the stripe-harmonic x frequency-mode basis over the declination
    band the pixels span: coefficients ~ N(0, 1) / (1 + nu) (a red angular spectrum)."""
    from ..sky.stripe import StripeHarmonicFreqBasis

    theta = np.pi / 2 - dec
    pad = 1e-6
    op = StripeHarmonicFreqBasis(ra, dec, freqs, float(theta.min()) - pad,
                                 float(theta.max()) + pad, lmax=float(sig["lmax"]),
                                 nk=signal_nk(sig, freqs.size, "stripe"))
    nu = np.asarray(op.lm)[:, 0]
    coeffs = rng.standard_normal(op.in_shape) / (1.0 + nu)[:, None]
    return np.asarray(op.matvec(coeffs))


def _grf_signal(sig: dict, ra: np.ndarray, dec: np.ndarray, freqs: np.ndarray, omega: float,
                rng: np.random.Generator) -> np.ndarray:
    """A Gaussian random field with P(k) ~ k^pk_slope sampled at the pixels (K)."""
    from ..sky.signal import comoving_distance, gaussian_random_sky

    slope = float(sig["pk_slope"])

    def pk(k: np.ndarray) -> np.ndarray:  # K^2 Mpc^3, normalised below
        return np.where(k > 0, (np.maximum(k, 1e-3) / 0.1) ** slope, 0.0)

    # cells: half a pixel across, one channel deep along the line of sight
    r = comoving_distance(freqs)
    cell_los = float(np.abs(np.diff(r)).mean())
    cell_t = 0.5 * float(r.mean()) * np.sqrt(omega)
    return gaussian_random_sky(pk, ra, dec, freqs, rng, cell_size=(cell_t, cell_t, cell_los))


def build_scenario(cfg: dict, obs: Observation | None = None) -> Scenario:
    """Draw the truth of a synthetic observation from the ``scenario`` config section
    (on ``obs``, e.g. a file's geometry, instead of the config's array, band and times)."""
    rng = np.random.default_rng(int(cfg["seed"]))
    obs = _observation(cfg) if obs is None else obs
    ref_freq = float(np.mean(obs.freqs))
    cat = _foregrounds(cfg, obs, ref_freq, rng)
    b = cfg["beam"]
    beam_params = np.array([[b["diameter_m"], b["spectral_index"], b["ripple_cos_m"],
                             b["ripple_sin_m"]]], dtype=float)
    g = cfg["gains"]
    gains = None
    if g["enabled"]:
        na = obs.antpos.shape[0]
        amp = 1 + float(g["amplitude_rms"]) * rng.standard_normal(na)
        phase = float(g["phase_rms_rad"]) * rng.standard_normal(na)
        # gauge convention (as in the fit): mean log-amplitude and mean phase zero
        lnamp = np.log(amp) - np.log(amp).mean()
        gains = np.exp(lnamp + 1j * (phase - phase.mean()))
    sra, sdec, sjy, omega, sfield = _signal(cfg, obs, rng)
    diffuse = None
    if cfg["diffuse"]["enabled"]:
        from .skymodel import make_diffuse_field

        diffuse = make_diffuse_field(cfg["diffuse"], obs, _field_centre(obs), ref_freq, rng)
    sigma = float(cfg["noise"]["sigma_jy"])
    if not sigma > 0:
        raise InputError(f"config scenario.noise.sigma_jy: expected > 0 Jy, received {sigma!r}")
    return Scenario(obs, cat, ref_freq, beam_params, float(b["ripple_delay_s"]), gains,
                    sra, sdec, sjy, omega, sigma, rng, sfield, diffuse)
