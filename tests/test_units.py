"""linlim.units against astropy and healpy."""

from __future__ import annotations

import astropy.constants as ac
import astropy.units as u
import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from linlim import units
from linlim.errors import InputError


def test_constants_match_astropy():
    assert units.SPEED_OF_LIGHT == ac.c.to_value(u.m / u.s)
    assert units.K_BOLTZMANN == ac.k_B.to_value(u.J / u.K)
    assert units.JY == (1 * u.Jy).to_value(u.W / u.m**2 / u.Hz)
    assert units.F21_HZ == pytest.approx(1420405751.768, rel=1e-12)
    assert units.MIN_FREQ_HZ == 1e6


def test_kelvin_jy_round_trip_matches_astropy():
    f = np.array([50e6, 150e6, 1.4e9])
    ref = [(1 * u.K).to_value(u.Jy / u.sr, u.brightness_temperature(x * u.Hz)) for x in f]
    np.testing.assert_allclose(units.rayleigh_jeans_factor(f), ref, rtol=1e-12)
    np.testing.assert_allclose(units.rayleigh_jeans_factor(f * u.Hz), ref, rtol=1e-12)
    T = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(units.jy_per_sr_to_kelvin(units.kelvin_to_jy_per_sr(T, f), f),
                               T, rtol=1e-14)
    with pytest.raises(InputError, match="freqs"):
        units.rayleigh_jeans_factor([-1.0])
    with pytest.raises(InputError, match="MHz"):
        units.rayleigh_jeans_factor([150.0])


def test_pixel_centres_match_healpy_and_astropy():
    nside = 8
    ra, dec = units.healpix_pixel_centres(nside)
    lon, lat = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), lonlat=True)
    np.testing.assert_allclose(np.degrees(ra), lon % 360, atol=1e-10)
    np.testing.assert_allclose(np.degrees(dec), lat, atol=1e-10)
    rn, dn = units.healpix_pixel_centres(nside, [0, 5], nest=True)
    ln, bn = hp.pix2ang(nside, [0, 5], nest=True, lonlat=True)
    np.testing.assert_allclose(np.degrees(dn), bn, atol=1e-10)
    rg, dg = units.healpix_pixel_centres(nside, [3, 100], frame="galactic")
    c = SkyCoord(l=lon[[3, 100]] * u.deg, b=lat[[3, 100]] * u.deg, frame="galactic").icrs
    np.testing.assert_allclose(rg, c.ra.rad, atol=1e-12)
    np.testing.assert_allclose(dg, c.dec.rad, atol=1e-12)
    assert units.pixel_solid_angle(nside) == pytest.approx(hp.nside2pixarea(nside), rel=1e-14)
    with pytest.raises(InputError, match=r"\[0, 768\)"):
        units.healpix_pixel_centres(nside, [768])
    with pytest.raises(InputError, match="frame"):
        units.healpix_pixel_centres(nside, frame="fk5")
