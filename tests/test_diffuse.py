"""Diffuse foregrounds (linlim.sky.diffuse) against astropy and analytic cases."""

from __future__ import annotations

import astropy.units as u
import healpy as hp
import numpy as np
import pytest

from linlim.errors import InputError, ShapeError
from linlim.sky.diffuse import (
    DiffuseSky,
    global_spectral_modes,
    log_polynomial_modes,
    synthetic_foreground_sky,
)
from linlim.sky.healpix import HealpixSky

FREQS = 1.4e8 + 1e6 * np.arange(16)
F0 = 1.475e8


def test_kelvin_to_jy_per_pixel_matches_astropy():
    op = DiffuseSky(4, FREQS, F0, n_modes=1, beta0=0.0)
    a = np.ones(op.in_shape)  # 1 K at every frequency
    I = op(a)
    om = hp.nside2pixarea(4) * u.sr
    ref = [(1 * u.K).to(u.Jy / u.sr, u.brightness_temperature(f * u.Hz)) * om
           for f in FREQS]
    np.testing.assert_allclose(I[0], u.Quantity(ref).to_value(u.Jy), rtol=1e-12)


def test_total_flux_of_a_uniform_power_law_sky():
    """Uniform T0 (f/f0)^beta over the whole sky: S(f) = 4 pi 2 k_B f^2 T(f) / c^2."""
    T0, beta = 250.0, -2.6
    op = DiffuseSky(8, FREQS, F0, n_modes=2, beta0=beta)
    a = np.zeros(op.in_shape)
    a[:, 0] = T0
    flux = op(a).sum(axis=0)
    kb, c = 1.380649e-23, 299792458.0
    ref = 4 * np.pi * 2 * kb * FREQS**2 / c**2 * T0 * (FREQS / F0) ** beta / 1e-26
    np.testing.assert_allclose(flux, ref, rtol=1e-12)
    # the same sky through HealpixSky (pixels as sources) agrees pixel by pixel
    hs = HealpixSky(np.full(hp.nside2npix(8), T0), ref_freq=F0, spectral_index=beta,
                    unit="K")
    np.testing.assert_allclose(op(a), hs.intensities(FREQS), rtol=1e-12)
    np.testing.assert_allclose(op.ra, hs.ra, atol=1e-12)
    np.testing.assert_allclose(op.dec, hs.dec, atol=1e-12)


def test_log_polynomial_modes_absorb_a_varying_index(rng):
    """T0 (f/f0)^(beta0 + dbeta) is matched by 4 modes to 1e-6 for |dbeta| < 0.2."""
    op = DiffuseSky(2, FREQS, F0, n_modes=4, beta0=-2.55)
    T0 = rng.uniform(100, 500, op.in_shape[0])
    dbeta = rng.uniform(-0.2, 0.2, op.in_shape[0])
    T = T0[:, None] * (FREQS / F0)[None, :] ** (-2.55 + dbeta[:, None])
    a = op.fit_amplitudes(T)
    np.testing.assert_allclose(op.temperature(a), T, rtol=1e-6)
    np.testing.assert_allclose(a[:, 0], T0, rtol=1e-4)
    np.testing.assert_allclose(a[:, 1], T0 * dbeta, rtol=1e-2, atol=1e-3)
    phi = log_polynomial_modes(FREQS, F0, 4, -2.55)
    np.testing.assert_allclose(phi[:, 1], (FREQS / F0) ** -2.55 * np.log(FREQS / F0))


def test_synthetic_sky_with_global_modes():
    T, ra, dec = synthetic_foreground_sky(8, FREQS, 3)
    assert T.shape == (hp.nside2npix(8), FREQS.size) and np.all(T > 0)
    V = global_spectral_modes(T, 3)
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-12)
    op = DiffuseSky(8, FREQS, spectral_modes=V, frame="galactic")
    a = op.fit_amplitudes(T)
    assert np.abs(op.temperature(a) - T).max() < 1e-5 * T.max()
    np.testing.assert_allclose(op.ra, ra)
    np.testing.assert_allclose(op.dec, dec)


def test_bad_inputs():
    with pytest.raises(InputError, match="Hz"):
        DiffuseSky(2, FREQS / 1e6, n_modes=2)
    with pytest.raises(InputError, match="n_modes"):
        DiffuseSky(2, FREQS, n_modes=0)
    with pytest.raises(InputError, match=r"pixels .* \[0, 48\)"):
        DiffuseSky(2, FREQS, pixels=[0, 48])
    with pytest.raises(InputError, match="nside"):
        DiffuseSky(0, FREQS)
    with pytest.raises(ShapeError, match="spectral_modes"):
        DiffuseSky(2, FREQS, spectral_modes=np.ones((3, 2)))
