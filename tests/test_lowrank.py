"""Low-rank Laplace posteriors: factors, Lanczos, covariance against dense, samples, metric."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError, ShapeError
from linlim.inference.fisher import fisher_matrix
from linlim.inference.lowrank import (
    BlockFactor,
    DenseFactor,
    DiagonalFactor,
    FourierFactor,
    LowRankPosterior,
    factor_from_state,
    lanczos_eigsh,
    low_rank_laplace,
    prior_factor,
    randomized_eigsh,
)
from linlim.likelihood import GaussianLikelihood, LogPosterior
from linlim.operators import MatrixMult
from linlim.priors import GaussianPrior, GRFPrior, SmoothnessPrior


def _power(shape):
    ks = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    k = np.sqrt(sum(a**2 for a in ks))
    return 1.0 / (k**2 + 0.05) ** 1.2


def mixed_posterior(rng, m=40):
    """Four parameter blocks: a 2-D GRF (6 x 5), a dense-covariance block (4), a sigma block
    (5) and two parameters with no prior; complex data from a random matrix."""
    n = 30 + 4 + 5 + 2
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    sigma = rng.uniform(0.5, 2.0, m)
    d = A @ rng.standard_normal(n)
    X = rng.standard_normal((4, 4))
    C = X @ X.T + np.eye(4)
    priors = [GRFPrior(_power((6, 5)), (6, 5), index=slice(0, 30)),
              GaussianPrior(0.0, cov=C, index=slice(30, 34)),
              GaussianPrior(0.0, sigma=rng.uniform(0.5, 2.0, 5), index=slice(34, 39))]
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"), d, sigma=sigma),
                        priors)
    return post


def test_factors_are_square_roots_of_the_prior_covariance(rng):
    post = mixed_posterior(rng)
    theta = np.zeros(post.size)
    f = prior_factor(post, theta, fallback_diag=np.full(post.size, 4.0))
    assert isinstance(f, BlockFactor)
    n = post.size
    eye = np.eye(n)
    L = np.stack([f.apply(eye[k]) for k in range(n)], axis=1)
    Lt = np.stack([f.apply_t(eye[k]) for k in range(n)], axis=1)
    Linv = np.stack([f.inv(eye[k]) for k in range(n)], axis=1)
    np.testing.assert_allclose(Lt, L.T, atol=1e-13)
    np.testing.assert_allclose(Linv @ L, eye, atol=1e-10)
    # on the prior-covered parameters L L^T is the prior covariance, i.e. (H_prior)^-1
    Hp = post.prior_hessian_dense(theta)[:39, :39]
    np.testing.assert_allclose((L @ L.T)[:39, :39] @ Hp, np.eye(39), atol=1e-9)
    # the uncovered parameters get 1 / sqrt(fallback)
    np.testing.assert_allclose(np.diag(L)[39:], 0.5, rtol=1e-14)
    np.testing.assert_allclose(f.cov_diagonal(), np.diag(L @ L.T), rtol=1e-12)
    g = factor_from_state("block", f.state())
    np.testing.assert_allclose(g.apply(eye[3] + eye[35]), f.apply(eye[3] + eye[35]), rtol=0)


def test_fourier_factor_matches_grf_prior(rng):
    shape = (8, 6)
    P = _power(shape)
    f = FourierFactor(shape, np.sqrt(P))
    prior = GRFPrior(P, shape)
    z = rng.standard_normal(48)
    np.testing.assert_allclose(f.precision_product(z), prior.hess_product(np.zeros(48), z),
                               rtol=1e-12)
    np.testing.assert_allclose(f.covariance_product(f.precision_product(z)), z, rtol=1e-12)
    with pytest.raises(ShapeError):
        FourierFactor(shape, np.ones(5))
    with pytest.raises(InputError):
        DiagonalFactor(np.array([1.0, -1.0]))


def test_lanczos_and_randomized_eigenpairs(rng):
    n = 50
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([np.geomspace(1e4, 10, 8), np.full(n - 8, 1.0)])
    A = (Q * lam) @ Q.T
    top, V, res = lanczos_eigsh(lambda v: A @ v, n, 8, rng=1)
    np.testing.assert_allclose(top, lam[:8], rtol=1e-10)
    np.testing.assert_allclose(np.abs(V.T @ Q[:, :8]), np.eye(8), atol=1e-8)
    assert res.max() < 1e-6 * lam[0]
    # full size with a degenerate spectrum needs restarts: still exact
    full, Vf, _ = lanczos_eigsh(lambda v: A @ v, n, n, rng=2)
    np.testing.assert_allclose(np.sort(full), np.sort(lam), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(Vf.T @ Vf, np.eye(n), atol=1e-10)
    rl, rV = randomized_eigsh(lambda X: A @ X, n, 8, oversample=10, power_iters=2, rng=3)
    np.testing.assert_allclose(rl, lam[:8], rtol=1e-5)  # randomised: approximate
    with pytest.raises(InputError):
        lanczos_eigsh(lambda v: v, 4, 5)


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_full_rank_low_rank_posterior_equals_dense(rng, method):
    post = mixed_posterior(rng)
    theta = rng.standard_normal(post.size)
    F = fisher_matrix(post, theta)
    C = np.linalg.inv(F)
    lr = low_rank_laplace(post, theta, rank=post.size, method=method, rng=4,
                          fallback_diag=np.full(post.size, 2.0))
    assert lr.rank == post.size
    np.testing.assert_allclose(lr.dense_covariance(), C, rtol=0, atol=1e-10 * np.abs(C).max())
    np.testing.assert_allclose(lr.marginal_variances(), np.diag(C), rtol=1e-10)
    blk = np.array([2, 31, 35, 40])
    np.testing.assert_allclose(lr.covariance_block(blk), C[np.ix_(blk, blk)], rtol=1e-10,
                               atol=1e-12 * np.abs(C).max())
    v = rng.standard_normal(post.size)
    np.testing.assert_allclose(lr.precision_product(v), F @ v, rtol=1e-9,
                               atol=1e-10 * np.abs(F @ v).max())
    np.testing.assert_allclose(lr.covariance_product(F @ v), v, rtol=1e-8, atol=1e-10)


def test_truncated_rank_only_drops_information_and_samples(rng):
    # 10 complex data on 60 parameters with a sigma prior: the whitened data term has rank 20
    n, m = 60, 10
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(m, complex), weights=25.0),
                        [GaussianPrior(0.0, sigma=rng.uniform(0.5, 2.0, n))])
    theta = np.zeros(n)
    C = np.linalg.inv(fisher_matrix(post, theta))
    exact = low_rank_laplace(post, theta, rank=20, method="lanczos", steps=40)
    np.testing.assert_allclose(exact.marginal_variances(), np.diag(C), rtol=1e-9)
    part = low_rank_laplace(post, theta, rank=8)
    ratio = part.marginal_variances() / np.diag(C)
    assert np.all(ratio >= 1 - 1e-9)  # fewer eigenpairs: more variance, never less
    rnd = low_rank_laplace(post, theta, rank=20, method="randomized")
    np.testing.assert_allclose(rnd.marginal_variances(), np.diag(C), rtol=1e-6)
    draws = exact.sample(np.random.default_rng(5), size=4000)
    emp = np.cov(draws.T)
    # sample covariance within a few standard errors (relative error ~ sqrt(2 / 4000))
    rel = np.abs(np.diag(emp) / np.diag(C) - 1)
    assert np.median(rel) < 0.03 and rel.max() < 0.12
    with pytest.raises(InputError):
        LowRankPosterior(DiagonalFactor(np.ones(3)), np.eye(3)[:, :1], np.array([-1.0]))


def test_improper_and_overlapping_priors_fall_back_to_a_diagonal(rng):
    n = 8
    A = rng.standard_normal((20, n)) + 1j * rng.standard_normal((20, n))
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(20, complex), weights=1.0),
                        [SmoothnessPrior((n,), sigma=0.5), GaussianPrior(0.0, sigma=2.0)])
    f = prior_factor(post, np.zeros(n))
    assert isinstance(f, DiagonalFactor)
    hd = post.prior_hessian_diagonal(np.zeros(n))
    np.testing.assert_allclose(f.scale, 1 / np.sqrt(hd), rtol=1e-14)
    # exact anyway at full rank
    C = np.linalg.inv(fisher_matrix(post, np.zeros(n)))
    lr = low_rank_laplace(post, np.zeros(n), rank=n, factor=f)
    np.testing.assert_allclose(lr.dense_covariance(), C, atol=1e-10 * np.abs(C).max())
    d = DenseFactor.from_precision(np.array([[2.0, 0.5], [0.5, 1.0]]))
    np.testing.assert_allclose(d.covariance_product(np.array([1.0, 3.0])),
                               np.linalg.solve([[2.0, 0.5], [0.5, 1.0]], [1.0, 3.0]),
                               rtol=1e-14)


def test_cheap_prior_diagonal_matches_the_posteriors(rng):
    from linlim.inference.lowrank import prior_hessian_diagonal

    post = mixed_posterior(rng)
    theta = rng.standard_normal(post.size)
    full = post.prior_hessian_diagonal(theta)
    np.testing.assert_allclose(prior_hessian_diagonal(post, theta), full, rtol=1e-12)
    cols = np.array([40, 3, 31, 36])
    np.testing.assert_allclose(prior_hessian_diagonal(post, theta, cols), full[cols],
                               rtol=1e-12)


class ModePrior(GaussianPrior):
    """A band-power-like prior (test-local): blocks S_k over the columns of (Ns, Nk)
    coefficients, exposing ``chol`` and ``shape`` as linlim's BandPowerPrior does."""

    def __init__(self, S_blocks):
        nk, ns, _ = S_blocks.shape
        C = np.zeros((ns * nk, ns * nk))
        for k in range(nk):
            C[np.ix_(np.arange(ns) * nk + k, np.arange(ns) * nk + k)] = S_blocks[k]
        super().__init__(0.0, cov=C)
        self.chol = np.linalg.cholesky(S_blocks)
        self.shape = (ns, nk)


def test_mode_block_factor_for_band_power_priors(rng):
    from linlim.inference.lowrank import ModeBlockFactor, prior_hessian_diagonal

    nk, ns = 3, 5
    X = rng.standard_normal((nk, ns, ns))
    S = X @ np.swapaxes(X, 1, 2) + np.eye(ns)
    prior = ModePrior(S)
    n = ns * nk
    A = rng.standard_normal((30, n)) + 1j * rng.standard_normal((30, n))
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(30, complex), weights=1.0), [prior])
    f = prior_factor(post)
    assert isinstance(f, ModeBlockFactor)
    eye = np.eye(n)
    L = np.stack([f.apply(eye[j]) for j in range(n)], axis=1)
    Cov = np.linalg.inv(post.prior_hessian_dense(np.zeros(n)))
    np.testing.assert_allclose(L @ L.T, Cov, atol=1e-10 * np.abs(Cov).max())
    np.testing.assert_allclose(np.stack([f.apply_t(eye[j]) for j in range(n)], axis=1), L.T,
                               atol=1e-14)
    np.testing.assert_allclose(f.inv(L @ eye[4]), eye[4], atol=1e-12)
    np.testing.assert_allclose(f.inv_t(L.T @ eye[7]), eye[7], atol=1e-12)
    np.testing.assert_allclose(f.cov_diagonal(), np.diag(Cov), rtol=1e-10)
    np.testing.assert_allclose(prior_hessian_diagonal(post, np.zeros(n)),
                               np.diag(post.prior_hessian_dense(np.zeros(n))), rtol=1e-10)
    lr = low_rank_laplace(post, np.zeros(n), rank=n)
    Cp = np.linalg.inv(fisher_matrix(post, np.zeros(n)))
    np.testing.assert_allclose(lr.dense_covariance(), Cp, atol=1e-10 * np.abs(Cp).max())
    g = factor_from_state("modeblock", f.state())
    np.testing.assert_array_equal(g.apply(eye[2]), f.apply(eye[2]))
