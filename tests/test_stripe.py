"""Spherical stripe harmonics and spherical Fourier-Bessel modes (linlim.sky.stripe)."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from linlim.errors import InputError
from linlim.sky.signal import comoving_distance, real_spherical_harmonics
from linlim.sky.stripe import (
    SphericalFourierBesselBasis,
    StripeHarmonicFreqBasis,
    fourier_bessel_k,
    fourier_bessel_radial,
    stripe_degrees,
    stripe_harmonics,
    stripe_radial,
    stripe_theta_range,
)

STRIPE = (0.7, 1.3)
CASES = [((0.0, 0.6), "dirichlet"), ((0.0, 0.6), "neumann"), (STRIPE, "dirichlet"),
         (STRIPE, "neumann"), ((1.9, np.pi), "dirichlet")]


def test_full_sky_integer_modes_equal_real_ylm(rng):
    # independent truth: scipy's sph_harm_y through real_spherical_harmonics
    th, ph = np.arccos(rng.uniform(-1, 1, 300)), rng.uniform(0, 2 * np.pi, 300)
    Y, lm = stripe_harmonics(th, ph, 0.0, np.pi, 7)
    R, lmr = real_spherical_harmonics(7, th, ph)
    assert np.array_equal(lm, lmr.astype(np.float64))
    np.testing.assert_allclose(Y, R, rtol=0, atol=1e-13)
    # and healpy's alm2map of a_lm = (c_lm - i c_l,-m) / sqrt(2) for one (l, m)
    nside, lmax = 16, 7
    tt, pp = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    Yf, lmf = stripe_harmonics(tt, pp, 0.0, np.pi, lmax)
    j = np.nonzero((lmf[:, 0] == 5) & (lmf[:, 1] == 3))[0][0]
    alm = np.zeros(hp.Alm.getsize(lmax), complex)
    alm[hp.Alm.getidx(lmax, 5, 3)] = 1 / np.sqrt(2)
    np.testing.assert_allclose(Yf[:, j], hp.alm2map(alm, nside, lmax=lmax), atol=1e-12)


@pytest.mark.parametrize("bounds, bc", CASES)
def test_orthonormal_on_healpix_stripe(bounds, bc):
    # quadrature over an nside=128 grid restricted to the stripe: the Gram matrix is the
    # identity up to the pixelisation of the edges (Dirichlet modes vanish there:
    # <= 1e-3; Neumann modes do not: <= 3e-2, measured 1.0e-2 and 4.4e-3)
    nside = 128
    tt, pp = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    sel = (tt >= bounds[0]) & (tt <= bounds[1])
    Y, lm = stripe_harmonics(tt[sel], pp[sel], *bounds, 12, bc=bc)
    G = Y.T @ Y * hp.nside2pixarea(nside)
    tol = 1e-3 if bc == "dirichlet" else 3e-2
    assert np.abs(G - np.eye(G.shape[0])).max() < tol


@pytest.mark.parametrize("bounds, bc", CASES)
def test_radial_functions_orthonormal_by_quadrature(bounds, bc):
    # Sturm-Liouville: same m, different nu -> orthogonal with weight sin(theta), exactly
    a, b = bounds
    x, w = np.polynomial.legendre.leggauss(400)
    th = 0.5 * (b - a) * x + 0.5 * (b + a)
    wt = 0.5 * (b - a) * w * np.sin(th)
    for m in (0, 1, 4):
        nus = stripe_degrees(m, a, b, 25, bc)
        assert nus.size >= 2
        F = np.stack([stripe_radial(nu, m, th, a, b, bc) for nu in nus])
        np.testing.assert_allclose((F * wt) @ F.T, np.eye(nus.size), atol=1e-9)


@pytest.mark.parametrize("bounds, bc", CASES)
def test_boundary_conditions_hold(bounds, bc):
    a, b = bounds
    edges = [e for e in (a, b) if 0 < e < np.pi]
    h = 1e-6
    for m in (0, 2, 5):
        for nu in stripe_degrees(m, a, b, 20, bc):
            scale = np.abs(stripe_radial(nu, m, np.linspace(a, b, 200)[1:-1], a, b, bc)).max()
            for e in edges:
                if bc == "dirichlet":
                    assert abs(stripe_radial(nu, m, e, a, b, bc)) < 1e-9 * scale
                else:
                    d = (stripe_radial(nu, m, e + h, a, b, bc)
                         - stripe_radial(nu, m, e - h, a, b, bc)) / (2 * h)
                    assert abs(d) < 1e-5 * scale * (nu + 1)


def test_cap_degrees_are_legendre_zeros():
    # a Dirichlet cap: nu are the zeros in nu of P_nu^m(cos theta_max); for m = 0 and a
    # hemisphere (theta_max = pi/2) they are the odd integers (P_n(0) = 0 for odd n)
    nus = stripe_degrees(0, 0.0, np.pi / 2, 9.5, "dirichlet")
    np.testing.assert_allclose(nus, [1, 3, 5, 7, 9], atol=1e-9)
    nus = stripe_degrees(0, 0.0, np.pi / 2, 9.5, "neumann")  # P_n'(0) = 0 for even n
    np.testing.assert_allclose(nus, [0, 2, 4, 6, 8], atol=1e-9)
    nus = stripe_degrees(1, 0.0, np.pi / 2, 9.5, "dirichlet")  # P_n^1(0) = 0, n - 1 odd
    np.testing.assert_allclose(nus, [2, 4, 6, 8], atol=1e-9)


def test_hemisphere_stripe_modes_match_full_sky_parity():
    # north hemisphere Dirichlet modes are the full-sky Y_lm with l + m odd, times sqrt(2)
    th = np.linspace(0.05, np.pi / 2, 50)
    for m, l in ((0, 3), (2, 5), (1, 4)):
        f = stripe_radial(l, m, th, 0.0, np.pi / 2, "dirichlet")
        g = stripe_radial(l, m, th, 0.0, np.pi, "dirichlet")
        np.testing.assert_allclose(f, np.sqrt(2) * g, atol=1e-11)


def test_fourier_bessel_modes_orthonormal_and_satisfy_bcs():
    r_min, r_max = 6000.0, 6600.0
    x, w = np.polynomial.legendre.leggauss(600)
    r = 0.5 * (r_max - r_min) * x + 0.5 * (r_max + r_min)
    wt = 0.5 * (r_max - r_min) * w * r**2
    for nu, bc in ((0.0, "dirichlet"), (4.7, "dirichlet"), (0.0, "neumann"),
                   (11.3, "neumann")):
        ks = fourier_bessel_k(nu, r_min, r_max, 5, bc)
        assert np.all(np.diff(ks) > 0)
        G = np.stack([fourier_bessel_radial(nu, k, r, r_min, r_max, bc) for k in ks])
        np.testing.assert_allclose((G * wt) @ G.T, np.eye(5), atol=1e-9)
        for k in ks:
            scale = np.abs(fourier_bessel_radial(nu, k, r, r_min, r_max, bc)).max()
            if bc == "dirichlet":
                for e in (r_min, r_max):
                    assert abs(fourier_bessel_radial(nu, k, e, r_min, r_max, bc)) < 1e-9 * scale
            else:
                h = 1e-3
                for e in (r_min, r_max):
                    d = (fourier_bessel_radial(nu, k, e + h, r_min, r_max, bc)
                         - fourier_bessel_radial(nu, k, e - h, r_min, r_max, bc)) / (2 * h)
                    assert abs(d) < 1e-6 * scale * max(k, 1e-3)
    # l = 0 Dirichlet: j0/y0 combination is sin(k (r - r_min)) / r, so k_n = n pi / L
    np.testing.assert_allclose(fourier_bessel_k(0.0, r_min, r_max, 4),
                               np.pi * np.arange(1, 5) / (r_max - r_min), rtol=1e-12)


def test_operators_match_dense_formulas_and_cache(tmp_path, rng):
    a, b = stripe_theta_range(-0.5, -0.1)
    ra, dec = rng.uniform(0, 2 * np.pi, 30), rng.uniform(-0.5, -0.1, 30)
    freqs = 1.5e8 + 2e5 * np.arange(8)
    op = StripeHarmonicFreqBasis(ra, dec, freqs, a, b, lmax=12, nk=3)
    Y, lm = stripe_harmonics(np.pi / 2 - dec, ra, a, b, 12)
    c = rng.standard_normal(op.in_shape)
    np.testing.assert_allclose(op(c), Y @ c @ op.freq_basis.T, atol=1e-13)
    sfb = SphericalFourierBesselBasis(ra, dec, freqs, a, b, lmax=12, nk=3,
                                      cache_dir=tmp_path)
    r = comoving_distance(freqs)
    j = 4
    g = fourier_bessel_radial(lm[j, 0], sfb.k[j, 1], r, r.min(), r.max())
    e = np.zeros(sfb.in_shape)
    e[j, 1] = 1.0
    np.testing.assert_allclose(sfb(e), np.outer(Y[:, j], g), atol=1e-12)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.endswith(".h5") for f in files)
    again = SphericalFourierBesselBasis(ra, dec, freqs, a, b, lmax=12, nk=3,
                                        cache_dir=tmp_path)
    assert np.array_equal(again.radial, sfb.radial) and np.array_equal(again.lm, sfb.lm)
    assert len(list(tmp_path.iterdir())) == 2  # read back, nothing new written
    SphericalFourierBesselBasis(ra, dec, freqs, a, b, lmax=12, nk=2, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3  # a different spec gets its own entry
    hp_op = StripeHarmonicFreqBasis.from_healpix(
        16, np.nonzero(np.abs(np.pi / 2 - hp.pix2ang(16, np.arange(3072))[0] + 0.3) <= 0.2)[0],
        freqs, a, b, lmax=8, nk=2)
    assert hp_op.out_shape[1] == 8


def test_bad_input_errors(rng):
    with pytest.raises(InputError, match="theta_min < theta_max"):
        stripe_degrees(0, 1.2, 0.7, 10)
    with pytest.raises(InputError, match="theta_min < theta_max"):
        stripe_harmonics(np.array([1.0]), np.array([0.0]), -0.1, 1.0, 5)
    with pytest.raises(InputError, match="lmax"):
        stripe_harmonics(np.array([1.0]), np.array([0.0]), 0.7, 1.3, -1)
    with pytest.raises(InputError, match="lmax"):
        stripe_harmonics(np.array([1.0]), np.array([0.0]), 0.7, 1.3, 1000)
    with pytest.raises(InputError, match="mmax"):
        stripe_harmonics(np.array([1.0]), np.array([0.0]), 0.7, 1.3, 5, mmax=6)
    with pytest.raises(InputError, match="no dirichlet mode"):
        stripe_harmonics(np.array([1.0]), np.array([0.0]), 0.95, 1.05, 5)
    with pytest.raises(InputError, match="in the stripe"):
        stripe_harmonics(np.array([0.2]), np.array([0.0]), 0.7, 1.3, 5)
    with pytest.raises(InputError, match="bc"):
        stripe_degrees(0, 0.7, 1.3, 5, bc="robin")
    with pytest.raises(InputError, match="dec_min < dec_max"):
        stripe_theta_range(0.2, -0.2)
    with pytest.raises(InputError, match="r_min"):
        fourier_bessel_k(1.0, 700.0, 600.0, 3)
