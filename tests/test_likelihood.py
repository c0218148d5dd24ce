"""Gaussian likelihood, priors and the LogPosterior protocol."""

from __future__ import annotations

import numpy as np
import pytest

from linlim import BoundedTransform, LogTransform, ParamBlock, Params
from linlim.errors import InputError, ShapeError
from linlim.likelihood import GaussianLikelihood, LogPosterior, noise_weights
from linlim.operators import Exp, HStack, MatrixMult
from linlim.priors import FiniteDifference, GaussianPrior, GRFPrior, SmoothnessPrior


def _cplx(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _nonlinear_post(rng, n=5, m=40, priors=()):
    A = _cplx(rng, m, n)
    model = MatrixMult(A, in_dtype="float64") @ Exp((n,), "float64")
    data = _cplx(rng, m)
    w = rng.uniform(0.2, 3.0, m)
    return LogPosterior(GaussianLikelihood(model, data, weights=w), priors), A, data, w


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_value_matches_explicit_formula(rng):
    post, A, d, w = _nonlinear_post(rng)
    theta = 0.3 * rng.standard_normal(5)
    m = A @ np.exp(theta)
    assert post.value(theta) == pytest.approx(-np.sum(w * np.abs(d - m) ** 2), rel=1e-13)


def test_real_data_uses_half_weight(rng):
    # real data: sigma^2 is the variance of each real sample, log L = -1/2 sum w r^2
    A = rng.standard_normal((30, 4))
    d = rng.standard_normal(30)
    w = rng.uniform(0.5, 2.0, 30)
    post = LogPosterior(GaussianLikelihood(MatrixMult(A), d, weights=w))
    x = rng.standard_normal(4)
    assert post.value(x) == pytest.approx(-0.5 * np.sum(w * (d - A @ x) ** 2), rel=1e-13)
    # and the Fisher / GN matrix is then A^T W A
    v = rng.standard_normal(4)
    np.testing.assert_allclose(post.gn_product(x, v), A.T @ (w * (A @ v)), rtol=1e-12)


def test_gradient_against_finite_differences_with_all_priors(rng):
    n = 6
    priors = [
        GaussianPrior(0.1, cov=np.eye(3) + 0.3 * np.ones((3, 3)), index=slice(0, 3)),
        SmoothnessPrior((n,), sigma=0.7, order=2),
        GRFPrior(lambda k: 1.0 / (0.1 + k**2), (n,), spacing=0.5),
    ]
    post, *_ = _nonlinear_post(rng, n=n, priors=priors)
    theta = 0.2 * rng.standard_normal(n)
    val, g = post.value_and_grad(theta)
    assert val == pytest.approx(post.value(theta), rel=1e-14)
    np.testing.assert_allclose(g, _fd_grad(post.value, theta), rtol=1e-6, atol=1e-6)


def test_value_and_grad_costs_one_forward_and_one_vjp(rng):
    post, *_ = _nonlinear_post(rng)
    model = post.likelihood.model
    before = dict(model.counts)
    post.value_and_grad(np.zeros(5))
    assert model.counts["linearize"] - before["linearize"] == 1
    assert model.counts["forward"] == before["forward"]
    assert post.counts["vjp"] == 1 and post.counts["forward"] == 1


def test_gn_product_is_2re_jhwj_plus_prior_hessian(rng):
    n = 5
    P = rng.standard_normal((n, n))
    cov = P @ P.T + n * np.eye(n)
    post, A, d, w = _nonlinear_post(rng, n=n, priors=[GaussianPrior(0.0, cov=cov)])
    theta = 0.3 * rng.standard_normal(n)
    J = A * np.exp(theta)[None, :]
    H = 2 * np.real(J.conj().T @ (w[:, None] * J)) + np.linalg.inv(cov)
    v = rng.standard_normal(n)
    np.testing.assert_allclose(post.gn_product(theta, v), H @ v, rtol=1e-12)
    op = post.linearize_gn(theta)
    np.testing.assert_allclose(op.matvec(v), H @ v, rtol=1e-12)
    np.testing.assert_allclose(op.H.matvec(v), H @ v, rtol=1e-12)
    # the gradient is 2 Re J^H W (d - m) + prior gradient
    g = 2 * np.real(J.conj().T @ (w * (d - A @ np.exp(theta)))) - np.linalg.solve(cov, theta)
    np.testing.assert_allclose(post.grad(theta), g, rtol=1e-11)


def test_log_jacobian_of_params_transforms(rng):
    params = Params([ParamBlock("amp", (3,), transform=LogTransform()),
                     ParamBlock("frac", (2,), transform=BoundedTransform(-1.0, 2.0))])
    A1, A2 = _cplx(rng, 20, 3), _cplx(rng, 20, 2)
    model = HStack([MatrixMult(A1, in_dtype="float64"), MatrixMult(A2, in_dtype="float64")])
    model = model @ params
    lik = GaussianLikelihood(model, _cplx(rng, 20), sigma=0.5)
    post = LogPosterior(lik, [GaussianPrior(0.0, sigma=1.0, index="amp")], params=params,
                        include_log_jacobian=True)
    theta = 0.4 * rng.standard_normal(5)
    base = LogPosterior(lik, [GaussianPrior(0.0, sigma=1.0, index="amp")], params=params)
    u = theta[3:]
    s = 1 / (1 + np.exp(-u))
    logjac = np.sum(theta[:3]) + np.sum(np.log(3.0 * s * (1 - s)))
    assert post.value(theta) - base.value(theta) == pytest.approx(logjac, rel=1e-12)
    np.testing.assert_allclose(post.grad(theta), _fd_grad(post.value, theta), rtol=1e-6,
                               atol=1e-7)
    # GN includes the (PSD) Hessian of -log|Jacobian| for the bounded block: 2 s (1 - s)
    v = np.zeros(5)
    v[4] = 1.0
    diff = post.gn_product(theta, v) - base.gn_product(theta, v)
    assert diff[4] == pytest.approx(2 * s[1] * (1 - s[1]), rel=1e-12)
    assert np.all(diff[:4] == 0)


def test_gaussian_prior_forms_agree(rng):
    k = 4
    P = rng.standard_normal((k, k))
    cov = P @ P.T + np.eye(k)
    mean = rng.standard_normal(k)
    z, v = rng.standard_normal(k), rng.standard_normal(k)
    forms = [GaussianPrior(mean, cov=cov), GaussianPrior(mean, precision=np.linalg.inv(cov)),
             GaussianPrior(mean, cov_operator=MatrixMult(cov)),
             GaussianPrior(mean, precision_operator=MatrixMult(np.linalg.inv(cov)))]
    ref = -0.5 * (z - mean) @ np.linalg.solve(cov, z - mean)
    for p in forms:
        assert p.logpdf(z) == pytest.approx(ref, rel=1e-10)
        np.testing.assert_allclose(p.grad(z), -np.linalg.solve(cov, z - mean), rtol=1e-9)
        np.testing.assert_allclose(p.hess_product(z, v), np.linalg.solve(cov, v), rtol=1e-9)
    diag = GaussianPrior(mean, sigma=np.arange(1.0, k + 1))
    assert diag.logpdf(z) == pytest.approx(-0.5 * np.sum((z - mean) ** 2 / np.arange(1, k + 1)
                                                          ** 2), rel=1e-13)
    np.testing.assert_allclose(diag.hessian_dense(z), np.diag(1 / np.arange(1.0, k + 1) ** 2))


def test_smoothness_prior_equals_explicit_difference_matrix(rng):
    shape = (3, 7)
    z = rng.standard_normal(21)
    p = SmoothnessPrior(shape, sigma=0.3, order=2, axis=1)
    D1 = np.diff(np.eye(7), axis=0)
    D2 = np.diff(np.eye(7), n=2, axis=0)
    np.testing.assert_allclose(D2, D1[1:, 1:] @ D1, atol=0)  # order 2 = order 1 twice
    Dfull = np.kron(np.eye(3), D2)
    assert p.logpdf(z) == pytest.approx(-0.5 * np.sum((Dfull @ z) ** 2) / 0.09, rel=1e-13)
    np.testing.assert_allclose(p.hessian_dense(z), Dfull.T @ Dfull / 0.09, atol=1e-12)
    fd = FiniteDifference((7,), order=1)
    y = rng.standard_normal(6)
    np.testing.assert_allclose(fd.rmatvec(y), D1.T @ y, atol=1e-15)


def test_grf_prior_equals_circulant_covariance(rng):
    N = 8
    power = 1.0 / (0.2 + np.minimum(np.arange(N), N - np.arange(N)) ** 2)
    p = GRFPrior(power, (N,))
    F = np.fft.fft(np.eye(N), norm="ortho")
    S = np.real(F.conj().T @ np.diag(power) @ F)  # cov = F^H diag(P) F
    z = rng.standard_normal(N)
    assert p.logpdf(z) == pytest.approx(-0.5 * z @ np.linalg.solve(S, z), rel=1e-12)
    np.testing.assert_allclose(p.hessian_dense(z), np.linalg.inv(S), atol=1e-10)
    # 2-D grid, unconstrained mean mode
    P2 = np.ones((4, 6))
    P2[0, 0] = np.inf
    p2 = GRFPrior(P2, (4, 6))
    z2 = rng.standard_normal(24)
    assert p2.logpdf(z2) == pytest.approx(-0.5 * (z2 @ z2 - 24 * z2.mean() ** 2), rel=1e-12)
    with pytest.raises(InputError, match="P\\(k\\) = P\\(-k\\)"):
        GRFPrior(np.arange(1.0, 5.0), (4,))


def test_prior_selection_by_block_name(rng):
    params = Params([ParamBlock("a", (2,)), ParamBlock("b", (3,))])
    model = MatrixMult(rng.standard_normal((6, 5)))
    lik = GaussianLikelihood(model, rng.standard_normal(6), weights=1.0)
    post = LogPosterior(lik, [GaussianPrior(1.0, sigma=2.0, index="b")], params=params)
    theta = rng.standard_normal(5)
    post0 = LogPosterior(lik)
    assert post.value(theta) - post0.value(theta) == pytest.approx(
        -0.5 * np.sum((theta[2:] - 1.0) ** 2) / 4, rel=1e-13)
    with pytest.raises(InputError, match="no block named"):
        LogPosterior(lik, [GaussianPrior(0.0, sigma=1.0, size=2, index="c")], params=params)
    with pytest.raises(ShapeError, match="has 3 entries"):
        LogPosterior(lik, [GaussianPrior(0.0, sigma=1.0, size=2, index="b")], params=params)


def test_weights_flags_and_nan_validation(rng):
    A = _cplx(rng, 6, 2)
    model = MatrixMult(A, in_dtype="float64")
    d = _cplx(rng, 6)
    with pytest.raises(InputError, match="weights >= 0"):
        GaussianLikelihood(model, d, weights=-np.ones(6))
    with pytest.raises(InputError, match="finite"):
        GaussianLikelihood(model, d, weights=np.array([1, 1, np.nan, 1, 1, 1.0]))
    with pytest.raises(ShapeError, match="broadcast"):
        GaussianLikelihood(model, d, weights=np.ones(5))
    with pytest.raises(ShapeError, match="data"):
        GaussianLikelihood(model, d[:5], weights=1.0)
    with pytest.raises(InputError, match="weights or sigma"):
        GaussianLikelihood(model, d)
    bad = d.copy()
    bad[2] = np.nan
    with pytest.raises(InputError, match="data has 1 NaN"):
        GaussianLikelihood(model, bad, weights=1.0)
    flags = np.zeros(6, bool)
    flags[2] = True
    lik = GaussianLikelihood(model, bad, weights=1.0, flags=flags)
    x = rng.standard_normal(2)
    keep = ~flags
    assert lik.value(x) == pytest.approx(-np.sum(np.abs(d - A @ x)[keep] ** 2), rel=1e-13)
    assert lik.ndata == 10
    # sigma and nsamples: w = nsamples / sigma^2
    ns = rng.integers(1, 4, 6).astype(float)
    lik2 = GaussianLikelihood(model, d, sigma=0.5, nsamples=ns)
    np.testing.assert_allclose(lik2.weights, ns / 0.25)
    np.testing.assert_allclose(noise_weights(0.5, nsamples=ns, flags=flags), np.where(flags, 0,
                                                                                      ns / 0.25))
    with pytest.raises(InputError, match="complex"):
        GaussianLikelihood(MatrixMult(rng.standard_normal((6, 2))), d, weights=1.0)


def test_noise_convention_chi2_expectation(rng):
    # E|n|^2 = sigma^2 per complex sample: chi2 at the truth averages the sample count
    A = _cplx(rng, 400, 3)
    x = rng.standard_normal(3)
    sigma = rng.uniform(0.5, 2.0, 400)
    noise = sigma * (rng.standard_normal(400) + 1j * rng.standard_normal(400)) / np.sqrt(2)
    lik = GaussianLikelihood(MatrixMult(A, in_dtype="float64"), A @ x + noise, sigma=sigma)
    assert lik.chi2(x) == pytest.approx(400, abs=4 * np.sqrt(400))
