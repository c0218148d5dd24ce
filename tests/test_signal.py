"""Physics tests of the 21 cm signal bases, the GRF generator and the coefficient prior."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
import scipy.fft
from astropy import units as u
from astropy.cosmology import Planck18

from linlim.errors import InputError
from linlim.sky.signal import (
    F21_HZ,
    HealpixFreqBasis,
    SphericalHarmonicFreqBasis,
    box_power_spectrum,
    comoving_distance,
    cosmo_scalars,
    drift_stripe_pixels,
    frequency_modes,
    gaussian_random_box,
    gaussian_random_sky,
    healpix_radec,
    kelvin_to_jy_per_pixel,
    mode_k_parallel,
    rayleigh_jeans_factor,
    real_spherical_harmonics,
)

FREQS = 1.5e8 + 1e5 * np.arange(32)


@pytest.mark.parametrize("kind", ["dct", "fourier"])
def test_frequency_modes_orthonormal(kind):
    B = frequency_modes(32, 9, kind)
    np.testing.assert_allclose(B.T @ B, np.eye(9), atol=1e-13)


def test_dct_modes_match_scipy(rng):
    x = rng.standard_normal(32)
    B = frequency_modes(32, 7, "dct")
    np.testing.assert_allclose(B.T @ x, scipy.fft.dct(x, norm="ortho")[:7], atol=1e-13)


def test_real_harmonics_match_healpy_alm2map(rng):
    lmax, nside = 6, 16
    theta, phi = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    Y, lm = real_spherical_harmonics(lmax, theta, phi)
    c = rng.standard_normal(lm.shape[0])
    alm = np.zeros(hp.Alm.getsize(lmax), complex)
    for (l, m), v in zip(lm, c):
        i = hp.Alm.getidx(lmax, l, abs(m))
        if m == 0:
            alm[i] += v
        elif m > 0:
            alm[i] += v / np.sqrt(2)
        else:
            alm[i] += -1j * v / np.sqrt(2)
    ref = hp.alm2map(alm, nside, lmax=lmax)
    np.testing.assert_allclose(Y @ c, ref, atol=1e-10 * np.abs(ref).max())
    # orthonormal on the sphere (HEALPix quadrature, exact enough at lmax << 3 nside)
    G = Y.T @ Y * hp.nside2pixarea(nside)
    np.testing.assert_allclose(G, np.eye(lm.shape[0]), atol=5e-3)


def test_bilinear_basis_matches_healpy_interpolation(rng):
    nside_low = 8
    ra, dec = rng.uniform(0, 2 * np.pi, 50), np.arcsin(rng.uniform(-1, 1, 50))
    op = HealpixFreqBasis(nside_low, ra, dec, FREQS, nk=1,
                          low_pixels=np.arange(hp.nside2npix(nside_low)))
    m = rng.standard_normal(hp.nside2npix(nside_low))
    T = op(m[:, None] * np.sqrt(FREQS.size))  # DCT mode 0 is constant 1/sqrt(N)
    ref = hp.get_interp_val(m, np.pi / 2 - dec, ra)
    np.testing.assert_allclose(T, np.repeat(ref[:, None], FREQS.size, 1), atol=1e-12)


def test_nearest_parent_round_trip(rng):
    """Targets = all children at 2 * nside_low: W^T W = 4 I, so A^H A c = 4 c."""
    nside_low = 4
    low = np.arange(20, 60)
    child = hp.nest2ring(2 * nside_low, (hp.ring2nest(nside_low, low)[:, None] * 4
                                         + np.arange(4)).ravel())
    ra, dec = healpix_radec(2 * nside_low, child)
    op = HealpixFreqBasis(nside_low, ra, dec, FREQS, nk=6, interp="nearest")
    np.testing.assert_array_equal(op.low_pixels, low)
    c = rng.standard_normal(op.in_shape)
    np.testing.assert_allclose(op.H(op(c)), 4 * c, atol=1e-12)
    # a map constant over each parent with a DCT spectrum is reproduced exactly
    T = op(c)
    np.testing.assert_allclose(op(op.H(T) / 4), T, atol=1e-12)


def test_sparse_and_gather_paths_agree(rng):
    ra, dec = healpix_radec(16, drift_stripe_pixels(16, np.radians(-30.7), 0.15))
    a = HealpixFreqBasis(8, ra, dec, FREQS, nk=5, method="sparse")
    b = HealpixFreqBasis(8, ra, dec, FREQS, nk=5, method="gather")
    c = rng.standard_normal(a.in_shape)
    t = rng.standard_normal(a.out_shape)
    np.testing.assert_allclose(a(c), b(c), atol=1e-13)
    np.testing.assert_allclose(a.H(t), b.H(t), atol=1e-12)


def test_missing_low_pixels_raise():
    ra, dec = healpix_radec(8, np.arange(10))
    with pytest.raises(InputError, match="low_pixels"):
        HealpixFreqBasis(4, ra, dec, FREQS, nk=2, low_pixels=[0])


def test_orthonormal_harmonic_basis_round_trip(rng):
    ra, dec = healpix_radec(16, drift_stripe_pixels(16, np.radians(-30.7), np.radians(15)))
    op = SphericalHarmonicFreqBasis(6, ra, dec, FREQS, nk=6, orthonormalize=True)
    c = rng.standard_normal(op.in_shape)
    np.testing.assert_allclose(op.H(op(c)), c, atol=1e-12)
    # and the raw basis spans the same space: its output is reproduced by the projection
    raw = SphericalHarmonicFreqBasis(6, ra, dec, FREQS, nk=6)
    T = raw(rng.standard_normal(raw.in_shape))
    np.testing.assert_allclose(op(op.H(T)), T, atol=1e-10 * np.abs(T).max())


def test_rayleigh_jeans_against_astropy():
    om = hp.nside2pixarea(64)
    ref = (1 * u.K).to(u.Jy / u.sr, equivalencies=u.brightness_temperature(FREQS * u.Hz))
    np.testing.assert_allclose(rayleigh_jeans_factor(FREQS), ref.value, rtol=1e-12)
    D = kelvin_to_jy_per_pixel(3, FREQS, om)
    T = np.ones((3, FREQS.size))
    np.testing.assert_allclose(D(T), np.broadcast_to(ref.value * om, (3, FREQS.size)),
                               rtol=1e-12)


def test_cosmo_scalars_against_numerical_derivative():
    X, Y = cosmo_scalars(FREQS)
    fc = 0.5 * (FREQS[0] + FREQS[-1])
    zc = F21_HZ / fc - 1
    assert X == pytest.approx(Planck18.comoving_transverse_distance(zc).to_value("Mpc"))
    r = comoving_distance(np.array([fc - 1e4, fc + 1e4]))
    assert Y == pytest.approx(-(r[1] - r[0]) / 2e4, rel=1e-6)
    k = mode_k_parallel(FREQS, 3, "dct")
    np.testing.assert_allclose(k, 2 * np.pi * np.array([0, 0.5, 1]) / (32 * 1e5 * Y))


def _pk(k):
    return 50.0 * (k / 0.1) ** -1.5


def test_grf_box_recovers_power_spectrum(rng):
    shape, L = (48, 40, 64), (300.0, 250.0, 200.0)  # anisotropic cells
    box = gaussian_random_box(_pk, shape, L, rng)
    edges = np.geomspace(0.04, 1.0, 12)
    kmean, power, err, n = box_power_spectrum(box, L, edges)
    # expected: the mean of P over the modes in each bin (independent of the generator)
    kx = [2 * np.pi * np.fft.fftfreq(s, l / s) for s, l in zip(shape, L)]
    kk = np.sqrt(sum(g**2 for g in np.meshgrid(*kx, indexing="ij"))).ravel()
    b = np.digitize(kk, edges) - 1
    ok = (b >= 0) & (b < edges.size - 1) & (kk > 0)
    expect = np.bincount(b[ok], _pk(kk[ok]), edges.size - 1) / np.bincount(b[ok], None,
                                                                         edges.size - 1)
    z = (power - expect) / (expect / np.sqrt(n / 2))
    assert np.all(n > 20)
    assert np.all(np.abs(z) < 4), z
    assert np.mean(z**2) < 2.5, z
    # and a spectrum twice as large would be detected
    assert np.mean(((power - 2 * expect) / (expect / np.sqrt(n / 2))) ** 2) > 25


def test_grf_sky_and_projected_prior(rng):
    """Coefficients fitted to mock skies scatter as prior_covariance predicts."""
    nlow, ntar = 128, 256
    low = hp.query_disc(nlow, hp.ang2vec(np.pi / 2 + 0.52, 0.3), np.radians(1.6))
    child = hp.nest2ring(ntar, (hp.ring2nest(nlow, low)[:, None] * 4 + np.arange(4)).ravel())
    ra, dec = healpix_radec(ntar, child)
    f = 1.5e8 + 1e5 * np.arange(40)
    op = HealpixFreqBasis(nlow, ra, dec, f, nk=4, interp="nearest")

    def pk(k):
        return 1e3 * np.exp(-((k / 0.12) ** 2))

    cov = op.prior_covariance(pk, kperp_max=1.0)
    chi2, dof = 0.0, 0
    for _ in range(4):
        T = gaussian_random_sky(pk, ra, dec, f, rng, cell_size=(4.0, 4.0, 0.6))
        c = op.H(T) / 4  # least-squares coefficients (W^T W = 4 I)
        for k in range(op.nk):
            L = np.linalg.cholesky(cov[k])
            chi2 += np.sum(np.linalg.solve(L, c[:, k]) ** 2)
            dof += c.shape[0]
    # measured 0.91-1.03 over 6 seeds (trilinear smoothing of the mock costs ~5%)
    assert 0.8 < chi2 / dof < 1.2, chi2 / dof
    v_disc = op.prior_variance(pk, method="disc")
    assert v_disc.shape == op.in_shape and np.all(v_disc > 0)


def test_harmonic_prior_white_noise_scaling():
    """For constant P the thin-shell C_l,k = P / (r^2 dr) for every l, m, k."""
    ra, dec = healpix_radec(8, drift_stripe_pixels(8, -0.5, 0.3))
    op = SphericalHarmonicFreqBasis(3, ra, dec, FREQS, nk=3)
    X, Y = cosmo_scalars(FREQS)
    v = op.prior_variance(lambda k: np.full_like(np.asarray(k, float), 7.0))
    np.testing.assert_allclose(v, 7.0 / (X**2 * Y * 1e5), rtol=1e-12)
    with pytest.raises(InputError, match="'projection' or 'harmonic', received 'disc'"):
        op.prior_covariance(lambda k: k, method="disc")


def test_prior_composes_with_gaussian_prior(rng):
    from linlim.priors import GaussianPrior
    from linlim.sky.signal import dense_coefficient_covariance

    ra, dec = healpix_radec(16, drift_stripe_pixels(16, np.radians(-30.7), 0.05))
    op = HealpixFreqBasis(8, ra, dec, FREQS, nk=3, interp="nearest")
    cov = op.prior_covariance(lambda k: 1e3 * np.exp(-((k / 0.05) ** 2)))
    full = dense_coefficient_covariance(cov)
    c = rng.standard_normal(op.in_shape) * np.sqrt(np.diagonal(cov, axis1=1, axis2=2).T)
    ref = -0.5 * sum(c[:, k] @ np.linalg.solve(cov[k], c[:, k]) for k in range(3))
    prior = GaussianPrior(mean=np.zeros(c.size), cov=full)
    assert prior.logpdf(c.ravel()) == pytest.approx(ref, rel=1e-8)


def test_split_modules_keep_every_public_name():
    """sky.signal was split by concern; every name stays importable from it and linlim.sky."""
    import linlim.sky as sky
    import linlim.sky.signal as sig
    from linlim.sky import bases, cosmology, freq_modes, geometry, random_fields

    homes = (bases, cosmology, freq_modes, geometry, random_fields)
    for name in sig.__all__:
        assert getattr(sky, name) is getattr(sig, name), name
        if name not in ("F21_HZ", "rayleigh_jeans_factor"):  # these live in linlim.units
            assert any(getattr(m, name, None) is getattr(sig, name) for m in homes), name


def test_prior_covariance_bands_and_sparse_projection():
    """Several spectra at once equal one at a time; the sparse normal-equation projection
    of HealpixFreqBasis equals the pseudo-inverse one."""
    from linlim.sky.bases import _SignalBasis

    ra, dec = healpix_radec(8, drift_stripe_pixels(8, np.radians(-30.7), np.radians(10)))
    basis = HealpixFreqBasis(4, ra, dec, FREQS, nk=3)
    pks = [lambda k: 1e-6 / (1 + (k / 0.1) ** 2), lambda k: 2e-6 * np.exp(-k / 0.3)]
    both = basis.prior_covariance_bands(pks)
    for i, pk in enumerate(pks):
        np.testing.assert_allclose(both[i], basis.prior_covariance(pk), rtol=1e-12,
                                   atol=1e-14 * np.abs(both[i]).max())
    pinv = _SignalBasis._projector(basis)
    basis._projector = lambda: pinv
    ref = basis.prior_covariance(pks[0])
    np.testing.assert_allclose(both[0], ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
