"""Band-power prior and estimator (linlim.sky.bandpower, linlim.priors.BandPowerPrior)."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError
from linlim.priors import BandPowerPrior, GaussianPrior
from linlim.sky.bandpower import (
    BandPowerCovariance,
    check_basis_frequencies,
    estimate_band_powers,
    quadratic_band_powers,
)
from linlim.sky.signal import HealpixFreqBasis, drift_stripe_pixels, healpix_radec

FREQS = 1.5e8 + 2e5 * np.arange(16)
EDGES = [0.0, 0.06, 0.15, 0.4]  # h/Mpc
POWER = np.array([2e5, 1e5, 5e4])  # mK^2 Mpc^3


@pytest.fixture(scope="module")
def bands():
    ra, dec = healpix_radec(8, drift_stripe_pixels(8, np.radians(-30.7), np.radians(10)))
    basis = HealpixFreqBasis(4, ra, dec, FREQS, nk=5)
    return BandPowerCovariance(basis, EDGES)


def _noise(bands, rng, blockwise=False):
    """A dense (or per-mode block) SPD noise covariance comparable to the signal."""
    s = np.diag(bands.dense_covariance(POWER)).mean()
    if blockwise:
        Q = rng.standard_normal((bands.nk, bands.nspace, bands.nspace)) / np.sqrt(bands.nspace)
        return s * (np.eye(bands.nspace) + 0.5 * Q @ np.swapaxes(Q, 1, 2))
    n = bands.size
    Q = rng.standard_normal((n, n)) / np.sqrt(n)
    return s * (np.eye(n) + 0.5 * Q @ Q.T)


def _draws(bands, power, N, rng, m):
    n = bands.size
    S = bands.dense_covariance(power) if np.any(power > 0) else np.zeros((n, n))
    Ls = np.linalg.cholesky(S + 1e-12 * max(np.diag(S).mean(), 1e-30) * np.eye(n))
    Ln = np.linalg.cholesky(N)
    return (Ls @ rng.standard_normal((n, m)) + Ln @ rng.standard_normal((n, m))).T


def test_bands_add_up_to_the_basis_prior(bands):
    """sum_b P S_b over bands covering every k equals the basis's prior for white P."""
    lo, hi = 0.0, 1e3
    allk = BandPowerCovariance(bands.basis, [lo, 0.06, 0.15, hi], k_unit="h/Mpc")
    ref = bands.basis.prior_covariance(lambda k: np.full(np.shape(k), 7e-6))
    got = allk.covariance_blocks(np.full(3, 7.0))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
    # h/Mpc and 1/Mpc edges agree
    h = allk.h
    assert np.allclose(BandPowerCovariance(bands.basis, np.array(EDGES) * h,
                                           k_unit="1/Mpc").blocks, bands.blocks)
    np.testing.assert_allclose(bands.k_centers, [0.03, 0.105, 0.275])


def test_quadratic_estimator_unbiased_and_errors_match_scatter(bands, rng):
    N = _noise(bands, rng)
    m = 3000
    c = _draws(bands, POWER, N, rng, m)
    est, F, sigma = quadratic_band_powers(c, N, bands, POWER)
    z = (est.mean(0) - POWER) / (est.std(0) / np.sqrt(m))
    assert np.all(np.abs(z) < 4), z
    ratio = est.std(0) / sigma  # MC error of a std over 3000 draws ~ 2-3%
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(F))), sigma)
    # a wrong fiducial stays unbiased (larger errors)
    est2, _, _ = quadratic_band_powers(c, N, bands, POWER * 3)
    z2 = (est2.mean(0) - POWER) / (est2.std(0) / np.sqrt(m))
    assert np.all(np.abs(z2) < 4), z2


def test_null_quadratic_estimate_is_standard_normal(bands, rng):
    N = _noise(bands, rng)
    m = 3000
    c = _draws(bands, np.zeros(3), N, rng, m)
    est, _, sigma = quadratic_band_powers(c, N, bands, np.zeros(3))
    z = est / sigma
    assert np.all(np.abs(z.mean(0)) < 4 / np.sqrt(m)), z.mean(0)
    assert np.all(np.abs(z.std(0) - 1) < 0.08), z.std(0)


def test_iterated_ml_coverage_and_null(bands, rng):
    """The Newton iteration from the default fiducial: errors cover the truth at about
    the Gaussian rates, and a null input gives estimate / sigma_null ~ N(0, 1)."""
    N = _noise(bands, rng, blockwise=True)
    Nd = np.zeros((bands.size, bands.size))
    perm = np.arange(bands.size).reshape(bands.nspace, bands.nk)
    for k in range(bands.nk):
        Nd[np.ix_(perm[:, k], perm[:, k])] = N[k]
    m = 80
    zs, zn = [], []
    csig = _draws(bands, POWER, Nd, rng, m)
    cnull = _draws(bands, np.zeros(3), Nd, rng, m)
    for i in range(m):
        r = estimate_band_powers(csig[i], N, bands)
        assert r.converged
        zs.append((r.estimate - POWER) / r.sigma)
        zn.append(estimate_band_powers(cnull[i], N, bands).estimate / r.sigma_null)
    zs, zn = np.array(zs), np.array(zn)
    within1 = np.mean(np.abs(zs) < 1)
    assert 0.6 < within1 < 0.77, within1       # 240 values: 68% +- 3%
    assert np.mean(np.abs(zs) < 2) > 0.9
    assert np.all(np.abs(zn.mean(0)) < 0.45), zn.mean(0)  # 4 / sqrt(80) ~ 0.45
    assert np.all(np.abs(zn.std(0) - 1) < 0.2), zn.std(0)
    # the block fast path and the dense path agree
    rb = estimate_band_powers(csig[0], N, bands, fiducial=POWER, n_iter=1)
    rd = estimate_band_powers(csig[0], Nd, bands, fiducial=POWER, n_iter=1)
    np.testing.assert_allclose(rb.estimate, rd.estimate, rtol=1e-8)
    np.testing.assert_allclose(rb.fisher, rd.fisher, rtol=1e-8)


def test_bad_inputs_name_both_values(bands):
    with pytest.raises(InputError, match=r"band 1 .* received -5\.0"):
        BandPowerPrior(bands, [1e5, -5.0, 1e4])
    with pytest.raises(InputError, match=r"band 2 .* received 0\.0"):
        bands.covariance_blocks([1.0, 1.0, 0.0])
    other = FREQS + 1e5
    with pytest.raises(InputError, match=r"signal basis frequencies \(16 channels "
                                         r"150000000\.\.153000000 Hz\).*observation's "
                                         r"frequencies \(16 channels 150100000\.\."):
        check_basis_frequencies(bands.basis, other)
    with pytest.raises(InputError, match="do not match"):
        BandPowerCovariance(bands.basis, EDGES, freqs=FREQS[:8])
    with pytest.raises(InputError, match="no support"):
        BandPowerCovariance(bands.basis, [0.0, 0.06, 50.0, 60.0])
    with pytest.raises(InputError, match="increasing"):
        BandPowerCovariance(bands.basis, [0.1, 0.05])


def test_band_power_prior_matches_dense_gaussian_and_whitens(bands, rng):
    prior = BandPowerPrior(bands, POWER)
    S = bands.dense_covariance(POWER)
    ref = GaussianPrior(cov=S)
    theta = rng.standard_normal(bands.size) * np.sqrt(np.diag(S))
    v = rng.standard_normal(bands.size)
    assert prior.logpdf(theta) == pytest.approx(ref.logpdf(theta), rel=1e-8)
    np.testing.assert_allclose(prior.grad(theta), ref.grad(theta), rtol=1e-7,
                               atol=1e-9 * np.abs(ref.grad(theta)).max())
    np.testing.assert_allclose(prior.hess_product(theta, v), ref.hess_product(theta, v),
                               rtol=1e-7, atol=1e-9 * np.abs(ref.hess_product(theta, v)).max())
    np.testing.assert_allclose(prior.hessian_diagonal(theta), np.diag(ref.hessian_dense(theta)),
                               rtol=1e-7)
    # whitening: c = L z has covariance S; whiten inverts color
    L = np.stack([prior.whitening.matvec(e.reshape(prior.shape)).reshape(-1)
                  for e in np.eye(bands.size)], axis=1)
    np.testing.assert_allclose(L @ L.T, S, rtol=1e-9, atol=1e-12 * np.abs(S).max())
    c = theta.reshape(prior.shape)
    np.testing.assert_allclose(prior.color(prior.whiten(c)), c, rtol=1e-9, atol=1e-15)
    z = prior.whiten(c).reshape(-1)
    assert prior.logpdf(theta) == pytest.approx(-0.5 * z @ z, rel=1e-8)


def test_from_map_equals_the_estimate_from_the_likelihood(bands, rng):
    """A fit with the band-power prior returns the Wiener-filtered MAP and the posterior
    covariance; the precision-form estimator on them gives the same band powers, errors
    and null errors as the covariance form on (c_ML, N_c)."""
    from linlim.sky.bandpower import estimate_band_powers_from_map

    N = _noise(bands, rng)
    c_ml = _draws(bands, POWER, N, rng, 1)[0]
    P0 = np.array([1e5, 2e5, 1e5])
    S0 = bands.dense_covariance(P0)
    Sig = np.linalg.inv(np.linalg.inv(S0) + np.linalg.inv(N))
    Sig = 0.5 * (Sig + Sig.T)
    c_map = Sig @ np.linalg.solve(N, c_ml)
    a = estimate_band_powers_from_map(c_map, Sig, bands, P0)
    b = estimate_band_powers(c_ml, N, bands, fiducial=P0)
    assert a.iterations == b.iterations and a.converged
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-6, atol=1e-6 * b.sigma.max())
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-6)
    np.testing.assert_allclose(a.sigma_null, b.sigma_null, rtol=1e-6)
    with pytest.raises(InputError, match=r"prior_power.*band 0"):
        estimate_band_powers_from_map(c_map, Sig, bands, [0.0, 1.0, 1.0])


@pytest.mark.parametrize("diagonal", [True, False])
def test_dense_terms_equal_direct_traces(diagonal: bool) -> None:
    """The quadratic-step terms (white-band fast path and general block path) equal the
    direct traces ``y_b = 1/2 c^T G S_b G c``, ``F_ab = 1/2 tr(G S_a G S_b)`` and
    ``n_b = 1/2 tr(G S_b) - (F P)_b`` with ``S_b`` written out as dense matrices."""
    from linlim.sky.bandpower import BandPowerCovariance, _dense_terms

    rng = np.random.default_rng(3)
    nb, nk, ns = 3, 4, 5
    blocks = np.zeros((nb, nk, ns, ns))
    for k in range(nk):
        b = k % nb
        if diagonal:
            blocks[b, k] = np.diag(rng.uniform(0.5, 2.0, ns))
        else:
            X = rng.standard_normal((ns, ns))
            blocks[b, k] = X @ X.T + ns * np.eye(ns)
    bp = BandPowerCovariance.from_blocks(blocks)
    n = nk * ns
    X = rng.standard_normal((n, n))
    G = X @ X.T / n + np.eye(n)
    c = rng.standard_normal(n)
    P = rng.uniform(0.5, 2.0, nb)
    S = np.zeros((nb, n, n))                      # S_b in mode-major order
    for b in range(nb):
        for k in range(nk):
            R = slice(k * ns, (k + 1) * ns)
            S[b, R, R] = blocks[b, k]
    Gc = c @ G
    y, nbias, F = _dense_terms(bp, G, Gc, P)
    F_ref = 0.5 * np.einsum("ij,ajk,kl,bli->ab", G, S, G, S)
    y_ref = 0.5 * np.einsum("i,bij,j->b", Gc, S, Gc)
    n_ref = 0.5 * np.einsum("ij,bji->b", G, S) - F_ref @ P
    np.testing.assert_allclose(F, F_ref, rtol=1e-12)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12)
    np.testing.assert_allclose(nbias, n_ref, rtol=1e-10, atol=1e-12 * np.abs(n_ref).max())
