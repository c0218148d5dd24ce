"""Fisher matrices: dense, blockwise, matrix-free, low-rank; covariance, errors, plots."""

from __future__ import annotations

import numpy as np
import pytest

from linlim import ParamBlock, Params
from linlim.errors import InputError
from linlim.inference.fisher import (
    correlation_matrix,
    fisher_block_diagonal,
    fisher_covariance,
    fisher_diagonal,
    fisher_eigen,
    fisher_matrix,
    fisher_operator,
    low_rank_fisher,
    marginal_errors,
)
from linlim.inference.gauss_newton import gauss_newton
from linlim.likelihood import GaussianLikelihood, LogPosterior
from linlim.operators import MatrixMult, Operator
from linlim.plotting.fisher import plot_convergence, plot_correlation_matrix
from linlim.priors import GaussianPrior


def _linear(rng, m=300, n=12, prior=True):
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    sigma = rng.uniform(0.5, 3.0, m)
    d = A @ rng.standard_normal(n) + sigma * (rng.standard_normal(m)
                                              + 1j * rng.standard_normal(m)) / np.sqrt(2)
    P = rng.standard_normal((n, n))
    S = P @ P.T / n + 0.5 * np.eye(n)
    params = Params([ParamBlock("a", (4,)), ParamBlock("b", (n - 4,))])
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"), d, sigma=sigma),
                        [GaussianPrior(0.0, cov=S)] if prior else [], params=params)
    return post, A, sigma, S


def test_dense_fisher_closed_form_and_posterior_covariance(rng):
    post, A, sigma, S = _linear(rng)
    theta = rng.standard_normal(post.size)
    F = fisher_matrix(post, theta, batch_size=5)
    W = 1 / sigma**2
    F_closed = 2 * np.real(A.conj().T @ (W[:, None] * A)) + np.linalg.inv(S)
    assert np.abs(F - F_closed).max() <= 1e-12 * np.abs(F_closed).max()
    # posterior covariance of the linear-Gaussian model in the stacked real form, each real
    # part with noise variance sigma^2 / 2, written as S - S Ar^T (N + Ar S Ar^T)^-1 Ar S
    Ar = np.vstack([A.real, A.imag])
    N = np.diag(np.concatenate([sigma**2, sigma**2]) / 2)
    C_post = S - S @ Ar.T @ np.linalg.solve(N + Ar @ S @ Ar.T, Ar @ S)
    C = fisher_covariance(F)
    assert np.abs(C - C_post).max() <= 1e-8 * np.abs(C_post).max()
    np.testing.assert_allclose(marginal_errors(F), np.sqrt(np.diag(C_post)), rtol=1e-8)
    np.testing.assert_allclose(marginal_errors(cov=C), np.sqrt(np.diag(C)), rtol=1e-14)
    # column-blockwise Gauss-Newton path (no n x M Jacobian) gives the same matrix
    F2 = fisher_matrix(post, theta, max_bytes=0, batch_size=4)
    assert np.abs(F2 - F).max() <= 1e-12 * np.abs(F).max()


def test_block_diagonal_operator_and_diagonal(rng):
    post, *_ = _linear(rng, n=10)
    theta = rng.standard_normal(10)
    F = fisher_matrix(post, theta)
    Fa, Fb = fisher_block_diagonal(post, theta, ["a", "b"])
    np.testing.assert_allclose(Fa, F[:4, :4], rtol=1e-12)
    np.testing.assert_allclose(Fb, F[4:, 4:], rtol=1e-12)
    (Fs,) = fisher_block_diagonal(post, theta, [np.array([1, 7])])
    np.testing.assert_allclose(Fs, F[np.ix_([1, 7], [1, 7])], rtol=1e-12)
    v = rng.standard_normal(10)
    np.testing.assert_allclose(fisher_operator(post, theta).matvec(v), F @ v, rtol=1e-12)
    np.testing.assert_allclose(fisher_diagonal(post, theta), np.diag(F), rtol=1e-12)
    with pytest.raises(InputError, match="no block named"):
        fisher_block_diagonal(post, theta, ["c"])


def test_low_rank_plus_diagonal(rng):
    # 6 complex data -> data Fisher of rank 12, plus a diagonal prior
    n, m = 60, 6
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    sig = rng.uniform(0.5, 2.0, n)
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(m, complex), weights=10.0),
                        [GaussianPrior(0.0, sigma=sig)])
    theta = np.zeros(n)
    F = fisher_matrix(post, theta)
    lr = low_rank_fisher(post, theta, rank=12, oversample=8, rng=1)
    # data constrain 12 directions, the prior is diagonal: prior-preconditioned low rank is
    # exact up to round-off
    assert np.abs(lr.dense() - F).max() <= 1e-9 * np.abs(F).max()
    v = rng.standard_normal(n)
    np.testing.assert_allclose(lr.matvec(v), F @ v, rtol=1e-9)
    np.testing.assert_allclose(lr.solve(v), np.linalg.solve(F, v), rtol=1e-8)
    np.testing.assert_allclose(lr.covariance_diagonal(), np.diag(np.linalg.inv(F)), rtol=1e-8)
    # a truncated rank still gives marginal errors close to the exact ones
    lr6 = low_rank_fisher(post, theta, rank=8, rng=1)
    ratio = np.sqrt(lr6.covariance_diagonal()) / marginal_errors(F)
    assert np.all(ratio >= 1 - 1e-9) and np.median(ratio) < 1.3  # drops information only
    lr_e = low_rank_fisher(post, theta, rank=12, diagonal="exact", rng=1)
    np.testing.assert_allclose(np.diag(lr_e.dense()), np.diag(F), rtol=1e-9)
    lr_h = low_rank_fisher(post, theta, rank=12, diagonal="hutchinson", nprobe=64, rng=2)
    assert np.all(lr_h.d > 0)


def test_eigen_finds_unconstrained_direction_and_covariance_refuses(rng):
    A = rng.standard_normal((50, 4)) + 1j * rng.standard_normal((50, 4))
    A[:, 3] = A[:, 2]  # parameters 2 and 3 enter only through their sum
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(50, complex), weights=1.0))
    F = fisher_matrix(post, np.zeros(4))
    eig = fisher_eigen(F)
    assert eig.condition_number > 1e12
    bad = eig.poorly_constrained(1e-10)
    assert bad.shape == (4, 1)
    np.testing.assert_allclose(np.abs(bad[:, 0]), [0, 0, 1 / np.sqrt(2), 1 / np.sqrt(2)],
                               atol=1e-8)
    with pytest.raises(InputError, match="not positive definite"):
        fisher_covariance(F - 1e-3 * np.eye(4))


def test_plots_are_written(rng, tmp_path):
    post, *_ = _linear(rng, n=8)
    theta = np.zeros(8)
    C = fisher_covariance(fisher_matrix(post, theta))
    R = correlation_matrix(C)
    np.testing.assert_allclose(np.diag(R), 1.0, rtol=1e-14)
    assert np.all(np.abs(R) <= 1 + 1e-12)
    p = plot_correlation_matrix(R, tmp_path / "corr.png", labels=[f"p{i}" for i in range(8)])
    res = gauss_newton(post, theta, maxiter=3)
    q = plot_convergence([res], tmp_path / "conv.png")
    for f in (p, q):
        with open(f, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


class _Gains(Operator):
    """V_ab = g_a conj(g_b) M_ab (a < b), theta = (Re g, Im g[1:]); see test_optimize."""

    _abstract = True

    def __init__(self, nant, M):
        self.nant = nant
        self.a1, self.a2 = np.triu_indices(nant, 1)
        self.M = M
        super().__init__((2 * nant - 1,), (self.a1.size,), np.float64, np.complex128)

    def _g(self, t):
        return t[: self.nant] + 1j * np.concatenate([[0.0], t[self.nant:]])

    def _forward(self, t):
        g = self._g(t)
        return g[self.a1] * g[self.a2].conj() * self.M

    def _jvp(self, t, dt):
        g, dg = self._g(t), self._g(dt)
        return (dg[self.a1] * g[self.a2].conj() + g[self.a1] * dg[self.a2].conj()) * self.M

    def _vjp(self, t, y):
        g = self._g(t)
        G = np.zeros(self.nant, complex)
        np.add.at(G, self.a1, g[self.a2] * self.M.conj() * y)
        np.add.at(G, self.a2, g[self.a1] * self.M * y.conj())
        return np.concatenate([G.real, G.imag[1:]])


def test_fisher_errors_match_scatter_of_map_estimates(rng):
    nant, nreal = 6, 400
    nbl = nant * (nant - 1) // 2
    M = rng.standard_normal(nbl) + 1j * rng.standard_normal(nbl) + 2.0
    model = _Gains(nant, M)
    g = (1 + 0.1 * rng.standard_normal(nant)) * np.exp(0.3j * rng.standard_normal(nant))
    g[0] = abs(g[0])
    truth = np.concatenate([g.real, g.imag[1:]])
    sigma = rng.uniform(0.05, 0.15, nbl)  # heteroscedastic; E|n|^2 = sigma^2
    clean = model.forward(truth)
    estimates = []
    for _ in range(nreal):
        n = sigma * (rng.standard_normal(nbl) + 1j * rng.standard_normal(nbl)) / np.sqrt(2)
        post = LogPosterior(GaussianLikelihood(model, clean + n, sigma=sigma))
        res = gauss_newton(post, truth, solver="dense", maxiter=20)
        assert res.success
        estimates.append(res.x)
    est = np.array(estimates)
    post0 = LogPosterior(GaussianLikelihood(model, clean, sigma=sigma))
    C = fisher_covariance(fisher_matrix(post0, truth))
    err = np.sqrt(np.diag(C))
    ratio = est.std(axis=0, ddof=1) / err
    # sampling error of a standard deviation from 400 draws is ~3.5 %
    assert np.all(np.abs(ratio - 1) < 0.15), ratio
    assert abs(np.mean(ratio) - 1) < 0.05, ratio
    # unbiased to within the errors, and the correlations agree too
    assert np.all(np.abs(est.mean(axis=0) - truth) < 4 * err / np.sqrt(nreal))
    # correlations: the sampling error of r from N draws is ~(1 - r^2) / sqrt(N)
    R, Remp = correlation_matrix(C), correlation_matrix(np.cov(est.T))
    assert np.all(np.abs(Remp - R) <= 4.5 * (1 - R**2) / np.sqrt(nreal) + 1e-12)


# -- the one Fisher builder: blocked columns, operators, marginal blocks ---------------------
class BatchedMatrix(MatrixMult):
    """A MatrixMult whose Jacobian applies to a batch of inputs at once (test-local)."""

    _abstract = True
    batch_calls = 0

    def matvec_batch(self, X):
        BatchedMatrix.batch_calls += 1
        return (X @ self.matrix.T).astype(complex)


def test_blocked_builder_uses_batches_and_matches_columns(rng):
    from linlim.inference.fisher import apply_columns, operator_fisher, operator_jacobian

    m, n = 30, 11
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    op = BatchedMatrix(A, in_dtype="float64")
    BatchedMatrix.batch_calls = 0
    Jc = operator_jacobian(op, batch_size=4)
    assert BatchedMatrix.batch_calls == 3  # ceil(11 / 4) block products, no per-column loop
    np.testing.assert_allclose(Jc, A.T, rtol=1e-14)
    plain = apply_columns(MatrixMult(A, in_dtype="float64"), np.eye(n), batch_size=4)
    np.testing.assert_allclose(plain, A.T, rtol=1e-14)
    w = rng.uniform(0.5, 2.0, m)
    F = operator_fisher(op, np.zeros(n), w)
    np.testing.assert_allclose(F, 2 * np.real(A.conj().T @ (w[:, None] * A)), rtol=1e-12)
    # complex input: interleaved (Re, Im) parameters, as the calibration Fisher uses
    opc = MatrixMult(A)
    Fc = operator_fisher(opc, np.zeros(n, complex), w)
    Ar = np.empty((m, 2 * n), complex)
    Ar[:, 0::2], Ar[:, 1::2] = A, 1j * A
    Fref = 2 * np.real(Ar.conj().T @ (w[:, None] * Ar))
    np.testing.assert_allclose(Fc, Fref, rtol=1e-12, atol=1e-13 * np.abs(Fref).max())
    from linlim.calibration.fisher import operator_fisher as cal_fisher

    np.testing.assert_array_equal(cal_fisher(opc, np.zeros(n, complex), w), Fc)


def test_marginal_block_is_the_schur_complement(rng):
    from linlim.inference.fisher import fisher_marginal_block

    post, A, sigma, S = _linear(rng, n=12)
    theta = rng.standard_normal(12)
    F = fisher_matrix(post, theta)
    a, b = np.arange(4), np.arange(4, 12)
    schur = F[np.ix_(a, a)] - F[np.ix_(a, b)] @ np.linalg.solve(F[np.ix_(b, b)], F[np.ix_(b, a)])
    for method in ("cg", "dense"):
        Sm, C = fisher_marginal_block(post, theta, "a", method=method, return_covariance=True)
        np.testing.assert_allclose(Sm, schur, rtol=1e-9, atol=1e-10 * np.abs(schur).max())
        np.testing.assert_allclose(C, np.linalg.inv(F)[np.ix_(a, a)], rtol=1e-9)
    # without a prior along a direction the data cannot see, CG says so
    A2 = rng.standard_normal((20, 3)) + 1j * rng.standard_normal((20, 3))
    A2[:, 2] = A2[:, 1]
    bad = LogPosterior(GaussianLikelihood(MatrixMult(A2, in_dtype="float64"),
                                          np.zeros(20, complex), weights=1.0))
    with pytest.raises(InputError, match="singular"):
        fisher_marginal_block(bad, np.zeros(3), [1], preconditioner=None, cg_maxiter=50)


def test_low_rank_fisher_metric_and_laplace_metric_agree(rng):
    from linlim.inference.lowrank import low_rank_laplace
    from linlim.inference.metric import LaplaceMetric, fisher_metric, metric_from_state

    n, m = 40, 8
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    post = LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype="float64"),
                                           np.zeros(m, complex), weights=10.0),
                        [GaussianPrior(0.0, sigma=rng.uniform(0.5, 2.0, n))])
    theta = np.zeros(n)
    F = fisher_matrix(post, theta)
    lrf = low_rank_fisher(post, theta, rank=16, oversample=8, rng=1)
    lap = low_rank_laplace(post, theta, rank=16, steps=n)
    p = rng.standard_normal(n)
    m1, m2 = fisher_metric(lrf), fisher_metric(lap)
    assert isinstance(m2, LaplaceMetric)
    np.testing.assert_allclose(m1.velocity(p), np.linalg.solve(F, p), rtol=1e-8)
    np.testing.assert_allclose(m2.velocity(p), np.linalg.solve(F, p), rtol=1e-8)
    # momenta have covariance M = F: check the square root exactly through the basis
    Z = np.eye(n)
    R = np.stack([m2._sqrt_mass(Z[k]) for k in range(n)], axis=1)
    np.testing.assert_allclose(R @ R.T, F, rtol=1e-8, atol=1e-10 * np.abs(F).max())
    back = metric_from_state(m2.kind, m2.state(), np)
    np.testing.assert_array_equal(back.velocity(p), m2.velocity(p))
    assert back.fingerprint() == m2.fingerprint()
