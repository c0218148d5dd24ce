"""Tests of the HMC sampler: Stan's adaptation constants, metrics, integrator, statistical
validation on targets with known answers, divergences, checkpoint/resume bit-identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats

from linlim.errors import InputError, ShapeError
from linlim.inference.diagnostics import ess_bulk, mcse_mean, mcse_quantile, rhat
from linlim.inference.hmc import HMC, DivergenceWarning, load_result, sample
from linlim.inference.metric import (
    DenseMetric,
    DiagonalMetric,
    IdentityMetric,
    LowRankMetric,
    fisher_metric,
)
from linlim.inference.nuts import Point, leapfrog
from linlim.inference.warmup import (
    DualAveraging,
    WelfordCovariance,
    WelfordVariance,
    WindowedAdaptation,
    window_ends,
)
from linlim.io.chains import ChainStore, read_chains

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ test targets
class Gaussian:
    """N(mu, Sigma) given by its precision P (dense) — log density up to a constant."""

    def __init__(self, prec, mu=None):
        self.prec = np.asarray(prec, dtype=float)
        self.size = self.prec.shape[0]
        self.mu = np.zeros(self.size) if mu is None else np.asarray(mu, float)
        self.xp = np
        self.ncalls = 0

    def value_and_grad(self, x):
        self.ncalls += 1
        r = x - self.mu
        g = self.prec @ r
        return -0.5 * float(r @ g), -g

    def value(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]


class StdNormal:
    def __init__(self, n):
        self.size, self.xp = n, np

    def value_and_grad(self, x):
        return -0.5 * float(x @ x), -x

    def value(self, x):
        return -0.5 * float(x @ x)

    def grad(self, x):
        return -x


class LowRankGaussian:
    """Precision P = I + U diag(s) U^T with orthonormal U: a rotated Gaussian whose condition
    number is 1 + max(s), at O(n k) per gradient."""

    def __init__(self, n, k, cond, rng):
        self.size, self.xp = n, np
        self.U = np.linalg.qr(rng.standard_normal((n, k)))[0]
        self.s = np.geomspace(cond - 1.0, 1.0, k)
        self.mu = rng.standard_normal(n)

    def value_and_grad(self, x):
        r = x - self.mu
        g = r + self.U @ (self.s * (self.U.T @ r))
        return -0.5 * float(r @ g), -g

    def value(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]

    def whiten(self, x):
        """P^{1/2} (x - mu), standard normal under the target; x (..., n)."""
        r = x - self.mu
        return r + ((r @ self.U) * (np.sqrt(1.0 + self.s) - 1.0)) @ self.U.T


class Funnel:
    """Neal's funnel: v ~ N(0, 3^2), x_i | v ~ N(0, exp(v))."""

    def __init__(self, n=9):
        self.size, self.xp = n + 1, np

    def value_and_grad(self, z):
        v, x = z[0], z[1:]
        n = x.size
        lp = -v * v / 18.0 - 0.5 * n * v - 0.5 * float(x @ x) * np.exp(-v)
        g = np.empty_like(z)
        g[0] = -v / 9.0 - 0.5 * n + 0.5 * float(x @ x) * np.exp(-v)
        g[1:] = -x * np.exp(-v)
        return float(lp), g

    def value(self, z):
        return self.value_and_grad(z)[0]

    def grad(self, z):
        return self.value_and_grad(z)[1]


class Banana:
    """x0 ~ N(0, a^2), x1 | x0 ~ N(b (x0^2 - a^2), 1), x2.. ~ N(0, 1)."""

    def __init__(self, n=10, a=2.0, b=0.5):
        self.size, self.xp, self.a, self.b = n, np, a, b

    def value_and_grad(self, x):
        a, b = self.a, self.b
        r = x[1] - b * (x[0] ** 2 - a * a)
        lp = -0.5 * x[0] ** 2 / a**2 - 0.5 * r * r - 0.5 * float(x[2:] @ x[2:])
        g = -x.copy()
        g[0] = -x[0] / a**2 + r * 2 * b * x[0]
        g[1] = -r
        return float(lp), g

    def value(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]

    def exact_draws(self, m, rng):
        x = rng.standard_normal((m, self.size))
        x[:, 0] *= self.a
        x[:, 1] += self.b * (x[:, 0] ** 2 - self.a**2)
        return x


def fw_bound(d):
    """Family-wise two-sided bound Phi^-1(1 - 0.001 / (2 d)) for d z-scores."""
    return stats.norm.ppf(1.0 - 0.001 / (2.0 * d))


# ------------------------------------------------------------------ Stan's adaptation
@pytest.mark.parametrize(
    "init, eps, stat, out",
    [
        # stan/src/test/unit/mcmc/stepsize_adaptation_test.cpp (counter, s_bar, x_bar, mu)
        ((273, 0.00513820936953773, 0.886351350781597, 2.488109515349), 2.2037632781885,
         1.0, (3.95863527373545, None, None)),
        ((79, 0.0209457573689391, 0.821976337071218, 4.13018724667137), 1.50198560950968,
         0.728285153733299, (2.40769920051673, 0.0181765250233587, 0.824095816988227)),
        ((79, 0.0206811620891896, 0.825842987938587, 4.13018305456267), 1.574313439903,
         0.684248188546772, (2.31161210908631, 0.0184041693043455, 0.826295412288499)),
    ],
)
def test_dual_averaging_matches_stan_unit_tests(init, eps, stat, out):
    da = DualAveraging(delta=0.5, gamma=0.05, kappa=0.75, t0=10, mu=init[3])
    da.counter, da.s_bar, da.x_bar = float(init[0]), init[1], init[2]
    new = da.learn(stat)
    assert new == pytest.approx(out[0], rel=1e-12, abs=0)
    assert da.counter == init[0] + 1
    if out[1] is not None:
        assert da.s_bar == pytest.approx(out[1], rel=1e-12, abs=0)
        assert da.x_bar == pytest.approx(out[2], rel=1e-12, abs=0)


def test_dual_averaging_fixed_point_and_restart():
    # Stan's learn_stepsize test: with adapt_stat == delta and mu = log(1) the step is 1.
    da = DualAveraging(delta=0.65, mu=0.0)
    assert da.learn(0.65) == 1.0
    da.restart()
    assert (da.counter, da.s_bar, da.x_bar) == (0.0, 0.0, 0.0)
    assert da.final() == 1.0
    # Default constants are Stan's
    d = DualAveraging()
    assert (d.delta, d.gamma, d.kappa, d.t0) == (0.8, 0.05, 0.75, 10.0)
    with pytest.raises(InputError, match="delta"):
        DualAveraging(delta=1.2)


@pytest.mark.parametrize(
    "num_warmup, ends",
    [
        # hand-traced from stan::mcmc::windowed_adaptation (75 / 25 doubling / 50)
        (1000, [99, 149, 249, 449, 949]),
        (2000, [99, 149, 249, 449, 849, 1949]),
        (500, [99, 149, 249, 449]),
        (300, [99, 149, 249]),
        (200, [99, 149]),
        (150, [99]),
        (100, [89]),  # shrunk to 15/75/10 (init 15, window 75, term 10)
        (19, []),  # Stan: no metric estimation below 20 warm-up iterations
    ],
)
def test_warmup_windows_equal_stans(num_warmup, ends):
    assert window_ends(num_warmup) == ends
    w = WindowedAdaptation(num_warmup)
    added = [it for it in range(num_warmup) if w.step()[0]]
    if num_warmup >= 150:
        assert added == list(range(75, num_warmup - 50))
    w100 = WindowedAdaptation(100)
    assert (w100.init_buffer, w100.base_window, w100.term_buffer) == (15, 75, 10)


def test_welford_regularisation_matches_stan():
    # stan/src/test/unit/mcmc/var_adaptation_test.cpp: 10 zero draws give
    # var = 1e-3 * 5 / (10 + 5) exactly.
    est = WelfordVariance(10, np)
    for _ in range(10):
        est.add_sample(np.zeros(10))
    assert np.array_equal(est.regularized(), np.full(10, 1e-3 * 5.0 / 15.0))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    cov = WelfordCovariance(3, np)
    var = WelfordVariance(3, np)
    for row in x:
        cov.add_sample(row)
        var.add_sample(row)
    ref = np.cov(x.T)
    expect = 50 / 55 * ref + 1e-3 * 5 / 55 * np.eye(3)
    np.testing.assert_allclose(cov.regularized(), expect, rtol=1e-12)
    np.testing.assert_allclose(var.regularized(), np.diag(expect), rtol=1e-12)


# ------------------------------------------------------------------ metrics
def _dense_of(metric, n):
    eye = np.eye(n)
    minv = np.stack([metric.velocity(eye[i]) for i in range(n)], axis=1)
    sqrt = np.stack([metric._sqrt_mass(eye[i]) for i in range(n)], axis=1)
    return minv, sqrt


def test_metrics_inverse_and_square_root(rng):
    n, k = 30, 4
    a = rng.standard_normal((n, n))
    spd = a @ a.T + n * np.eye(n)
    d = rng.uniform(0.5, 2.0, n)
    U = rng.standard_normal((n, k))
    U = 0.2 * U
    s = np.array([50.0, 3.0, -0.1, 0.7])
    lowrank_dense = np.diag(d) + U @ np.diag(s) @ U.T
    cases = [
        (IdentityMetric(n, np), np.eye(n)),
        (DiagonalMetric(d, np), np.diag(1.0 / d)),
        (DenseMetric(inv_mass=spd, xp=np), np.linalg.inv(spd)),
        (DenseMetric(mass=spd, xp=np), spd),
        (fisher_metric(spd), spd),
        (LowRankMetric(d, U, s, np), lowrank_dense),
        (fisher_metric((d, U, s)), lowrank_dense),
    ]
    for metric, mass in cases:
        minv, sqrt = _dense_of(metric, n)
        np.testing.assert_allclose(minv, np.linalg.inv(mass), rtol=1e-9, atol=1e-12)
        # p = B z has covariance B B^T, which must equal M
        np.testing.assert_allclose(sqrt @ sqrt.T, mass, rtol=1e-9, atol=1e-9)
        p = rng.standard_normal(n)
        assert metric.kinetic(p) == pytest.approx(0.5 * p @ np.linalg.solve(mass, p), rel=1e-10)


def test_metric_validation():
    with pytest.raises(InputError, match="positive"):
        DiagonalMetric(np.array([1.0, -1.0]), np)
    with pytest.raises(ShapeError, match="U"):
        LowRankMetric(np.ones(3), np.ones((4, 1)), np.ones(1), np)
    with pytest.raises(InputError, match="positive definite"):
        LowRankMetric(np.ones(3), np.ones((3, 1)), np.array([-1.0]), np)
    with pytest.raises(InputError, match="exactly one"):
        DenseMetric(xp=np)
    with pytest.raises(InputError, match="positive-definite"):
        DenseMetric(mass=-np.eye(2), xp=np)


def test_leapfrog_reversible_and_second_order(rng):
    post = Gaussian(np.diag([1.0, 4.0, 0.25]))
    metric = DiagonalMetric(np.array([1.0, 0.5, 2.0]), np)
    theta = rng.standard_normal(3)
    lp, g = post.value_and_grad(theta)
    p = rng.standard_normal(3)
    z = Point(theta, p, lp, g)
    for _ in range(7):
        z = leapfrog(post, metric, z, 0.1)
    for _ in range(7):
        z = leapfrog(post, metric, z, -0.1)
    np.testing.assert_allclose(z.theta, theta, atol=1e-13)
    np.testing.assert_allclose(z.p, p, atol=1e-13)

    def energy_error(eps, t=1.0):
        z = Point(theta, p, lp, g)
        h0 = -lp + metric.kinetic(p)
        for _ in range(int(round(t / eps))):
            z = leapfrog(post, metric, z, eps)
        return abs(-z.logp + metric.kinetic(z.p) - h0)

    e1, e2 = energy_error(0.02), energy_error(0.01)
    assert 3.0 < e1 / e2 < 5.0  # O(eps^2)


# ------------------------------------------------------------------ sampler behaviour
def test_seeds_reproducible_and_chains_independent_of_count():
    post = StdNormal(5)
    r1 = sample(post, 50, 60, chains=2, seed=3, progress=False)
    r2 = sample(post, 50, 60, chains=2, seed=3, progress=False)
    r3 = sample(post, 50, 60, chains=3, seed=3, progress=False)
    r4 = sample(post, 50, 60, chains=2, seed=4, progress=False)
    assert np.array_equal(r1.draws, r2.draws)
    assert np.array_equal(r1.draws, r3.draws[:2])
    assert not np.array_equal(r1.draws[0], r1.draws[1])
    assert not np.array_equal(r1.draws, r4.draws)
    assert set(r1.sample_stats) == {"lp", "accept_stat", "energy", "step_size", "tree_depth",
                                    "n_leapfrog", "divergent"}
    assert r1.warmup_stats["lp"].shape == (2, 60)


@pytest.mark.parametrize("target", [0.6, 0.8, 0.95])
def test_static_hmc_acceptance_hits_target(target):
    # Standard normal, D = 100 (D = 1000 in benchmarks/bench_hmc.py): the post-warm-up mean
    # acceptance statistic lands within 0.05 of the dual-averaging target.
    r = HMC(StdNormal(100), metric="identity", target_accept=target).sample(
        600, 600, chains=2, seed=11, progress=False)
    assert abs(r.sample_stats["accept_stat"].mean() - target) < 0.05
    assert r.n_divergent == 0


def _zscore_check(w, mean_true=0.0):
    """Mean and second-moment z-scores of whitened draws w (chains, draws, d): all below the
    family-wise bound, and their mean square inside the central 99.8% of chi^2_n / n (n z-scores;
    a fixed [0.75, 1.33] window would fail ~15% of honest samplers at n = 20). Returns
    (max|z|, mean z^2)."""
    d = w.shape[2]
    z_mean = (w.mean(axis=(0, 1)) - mean_true) / mcse_mean(w)
    w2 = w**2
    z_var = (w2.mean(axis=(0, 1)) - 1.0) / mcse_mean(w2)
    z = np.concatenate([z_mean, z_var])
    bound = fw_bound(z.size)
    assert np.all(np.abs(z) < bound), (np.abs(z).max(), bound)
    msq = float(np.mean(z**2))
    lo, hi = stats.chi2.ppf([0.001, 0.999], z.size) / z.size
    assert lo <= msq <= hi, (msq, lo, hi)
    return np.abs(z).max(), msq, d


def test_moments_fisher_preconditioned_rotated_gaussian_d1000():
    rng = np.random.default_rng(1000)
    post = LowRankGaussian(1000, 8, 1e4, rng)
    metric = fisher_metric((np.ones(1000), post.U, post.s))
    r = HMC(post, metric=metric).sample(600, 150, chains=4, seed=5, init=post.mu,
                                        progress=False)
    w = post.whiten(r.draws)
    # convergence gate sized to the ESS (Vehtari et al. 2021)
    ess = ess_bulk(w)
    assert ess.min() > 400
    assert rhat(w).max() < 1.01 + 4.0 / ess.min()
    _zscore_check(w)
    assert r.n_divergent == 0


def test_moments_dense_adaptation_rotated_gaussian():
    # D = 40, condition number 1e4, default windowed warm-up with a dense metric.
    # (D = 100 with diag adaptation + NUTS is in benchmarks/bench_hmc.py.)
    rng = np.random.default_rng(40)
    d = 40
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = np.geomspace(1e-2, 1e2, d)  # covariance eigenvalues
    cov = q @ np.diag(lam) @ q.T
    prec = q @ np.diag(1 / lam) @ q.T
    post = Gaussian(prec, mu=rng.standard_normal(d))
    r = HMC(post, metric="dense", algorithm="nuts").sample(600, 500, chains=4, seed=8,
                                                           progress=False)
    chol = np.linalg.cholesky(prec)  # whitening: L^T (x - mu) ~ N(0, I)
    w = (r.draws - post.mu) @ chol
    ess = ess_bulk(w)
    assert ess.min() > 400 and rhat(w).max() < 1.01 + 4.0 / ess.min()
    _zscore_check(w)
    # the adapted inverse metric whitens the target: eigenvalues of L^T M^-1 L near 1
    # (a covariance from the last 200-draw window: Marchenko-Pastur spreads the eigenvalues
    # over (1 -+ sqrt(d / 200))^2 = [0.31, 2.09]; allow a margin)
    ev = np.linalg.eigvalsh(chol.T @ r.metrics[0].inv_mass @ chol)
    mp = np.sqrt(d / 200.0)
    assert 0.5 * (1 - mp) ** 2 < ev.min() and ev.max() < 1.5 * (1 + mp) ** 2, (ev.min(), ev.max())
    assert np.allclose(np.linalg.inv(prec), cov)


def test_fisher_preconditioning_beats_unpreconditioned():
    # Min-ESS per gradient, same rotated target (D = 20, condition 1e3): Fisher-preconditioned
    # static HMC vs NUTS with Stan's default diagonal adaptation. (D = 100 in benchmarks.)
    rng = np.random.default_rng(20)
    d = 20
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    prec = q @ np.diag(np.geomspace(1e-1, 1e2, d)) @ q.T
    post = Gaussian(prec)
    rf = HMC(post, metric=fisher_metric(prec)).sample(500, 150, chains=2, seed=1,
                                                      progress=False)
    ru = HMC(post, metric="diag", algorithm="nuts").sample(300, 300, chains=2, seed=1,
                                                           progress=False)
    eff_f = ess_bulk(rf.draws).min() / rf.n_grad
    eff_u = ess_bulk(ru.draws).min() / ru.n_grad
    assert eff_f > 10 * eff_u, (eff_f, eff_u)


def test_nuts_on_correlated_gaussian():
    rng = np.random.default_rng(7)
    d = 10
    a = rng.standard_normal((d, d))
    cov = a @ a.T / d + 0.1 * np.eye(d)
    post = Gaussian(np.linalg.inv(cov))
    r = HMC(post, algorithm="nuts", metric="diag").sample(600, 400, chains=4, seed=2,
                                                          progress=False)
    chol = np.linalg.cholesky(np.linalg.inv(cov))
    w = r.draws @ chol
    _zscore_check(w)
    assert r.sample_stats["tree_depth"].max() <= 10
    assert r.n_divergent == 0


def test_divergences_funnel_forced_step_and_clean_normal():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rf = HMC(Funnel(9), algorithm="nuts").sample(300, 300, chains=2, seed=3,
                                                      progress=False)
    assert rf.n_divergent + rf.n_divergent_warmup > 0
    if rf.n_divergent:
        assert any(issubclass(w.category, DivergenceWarning) for w in rec)
        assert "divergent" in str(rf.summary())
    # A forced huge step size flags nearly every transition, and they are all rejected.
    with pytest.warns(DivergenceWarning, match="diverged"):
        rb = HMC(StdNormal(50), metric="identity", step_size=50.0,
                 adapt_step_size=False).sample(200, 0, chains=2, seed=1, progress=False)
    assert rb.sample_stats["divergent"].mean() > 0.95
    assert np.all(rb.sample_stats["accept_stat"][rb.sample_stats["divergent"]] == 0.0)
    # NUTS too
    with pytest.warns(DivergenceWarning):
        rn = HMC(StdNormal(50), algorithm="nuts", metric="identity", step_size=50.0,
                 adapt_step_size=False).sample(100, 0, chains=1, seed=1, progress=False)
    assert rn.sample_stats["divergent"].mean() > 0.95
    # Defaults on a standard normal: none, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        for alg in ("hmc", "nuts"):
            rc = HMC(StdNormal(20), algorithm=alg).sample(300, 300, chains=2, seed=1,
                                                          progress=False)
            assert rc.n_divergent == 0  # post-warm-up, as Stan reports them


@pytest.mark.parametrize("alg", ["hmc", "nuts"])
def test_banana_quantiles_within_mcse(alg):
    post = Banana()
    opts = {"int_time": 3.0} if alg == "hmc" else {}
    r = HMC(post, algorithm=alg, target_accept=0.9, **opts).sample(
        600, 300, chains=4, seed=9, progress=False)
    exact = post.exact_draws(2_000_000, np.random.default_rng(0))
    for p in (0.05, 0.25, 0.5, 0.75, 0.95):
        q_ref = np.quantile(exact, p, axis=0)
        q_hat = np.quantile(r.draws.reshape(-1, post.size), p, axis=0)
        se = mcse_quantile(r.draws, p)
        assert np.all(np.abs(q_hat - q_ref) < 4 * se), (p, (q_hat - q_ref) / se)


def test_simulation_based_calibration_linear_gaussian():
    # theta ~ N(0, I_2), y = A theta + N(0, s^2 I_3); ranks of theta* among 49 thinned
    # posterior draws must be uniform on {0..49} (chi-square over 10 bins, p > 1e-3).
    rng = np.random.default_rng(2024)
    A = np.array([[1.0, 0.5], [0.2, -1.0], [0.7, 0.7]])
    s2 = 0.5**2
    prec = np.eye(2) + A.T @ A / s2
    ranks = []
    for rep in range(120):
        th = rng.standard_normal(2)
        y = A @ th + np.sqrt(s2) * rng.standard_normal(3)
        mu = np.linalg.solve(prec, A.T @ y / s2)
        post = Gaussian(prec, mu)
        r = HMC(post, metric="identity").sample(98, 120, chains=1, seed=rep, progress=False)
        dr = r.draws[0, ::2]  # 49 draws
        ranks.append((dr < th).sum(axis=0))
    ranks = np.asarray(ranks).ravel()  # 240 ranks in 0..49
    counts = np.bincount(ranks // 5, minlength=10)
    p = stats.chisquare(counts).pvalue
    assert p > 1e-3, (p, counts)


# ------------------------------------------------------------------ HDF5 output, resume
def test_hdf5_output_matches_in_memory_and_reads(tmp_path):
    post = StdNormal(4)
    kw = dict(num_draws=30, num_warmup=40, chains=2, seed=5, progress=False)
    mem = HMC(post).sample(**kw)
    path = tmp_path / "run.h5"
    disk = HMC(post).sample(path=str(path), checkpoint_every=7, save_warmup=True, **kw)
    assert np.array_equal(mem.draws, disk.draws)
    for k in mem.sample_stats:
        assert np.array_equal(mem.sample_stats[k], disk.sample_stats[k])
        assert np.array_equal(mem.warmup_stats[k], disk.warmup_stats[k])
    assert disk.warmup_draws.shape == (2, 40, 4)
    assert not Path(str(path) + ".parts").exists()
    data = read_chains(path)
    assert data["complete"] and data["draws"].shape == (2, 30, 4)
    assert data["config"]["seed"] == 5
    # rerun loads the finished file; a different configuration is refused
    again = HMC(post).sample(path=str(path), save_warmup=True, **kw)
    assert np.array_equal(again.draws, disk.draws)
    with pytest.raises(InputError, match="different configuration"):
        HMC(post, target_accept=0.9).sample(path=str(path), save_warmup=True, **kw)
    fresh = HMC(post, target_accept=0.9).sample(path=str(path), resume=False,
                                                 save_warmup=True, **kw)
    assert fresh.config["target_accept"] == 0.9


_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import numpy as np
from linlim.inference.hmc import HMC

class Target:
    size, xp = 6, np
    def value_and_grad(self, x):
        s2 = np.arange(1.0, 7.0) ** 2
        return -0.5 * float(np.sum(x * x / s2)) - 0.1 * float(np.sum(x ** 4) / 24), \\
            -x / s2 - 0.1 * x ** 3 / 6
    def value(self, x): return self.value_and_grad(x)[0]
    def grad(self, x): return self.value_and_grad(x)[1]

HMC(Target(), algorithm=sys.argv[2], metric=sys.argv[3]).sample(
    150, 150, chains=2, seed=17, path=sys.argv[1], checkpoint_every=2, progress=False)
"""


def _h5_equal(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = []
        fa.visit(names.append)
        for name in names:
            if isinstance(fa[name], h5py.Dataset):
                assert np.array_equal(fa[name][()], fb[name][()], equal_nan=True), name
        assert dict(fa.attrs) == dict(fb.attrs)
        return len(names)


def test_kill_and_resume_bit_identical(tmp_path):
    alg, metric = "nuts", "dense"  # static HMC is checkpointed by the same code paths
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_SCRIPT.format(repo=str(REPO))))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    ref = tmp_path / "ref.h5"
    subprocess.run([sys.executable, str(script), str(ref), alg, metric], env=env, check=True,
                   timeout=300)
    out = tmp_path / "out.h5"
    parts = Path(str(out) + ".parts")
    kills = 0
    for k_seg in (30, 110):  # once in warm-up (iteration ~60), once while sampling (~220)
        proc = subprocess.Popen([sys.executable, str(script), str(out), alg, metric], env=env)
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 300:
            if parts.is_dir() and len(list(parts.glob("seg_*.h5"))) >= k_seg:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.002)
        proc.wait()
        assert not out.exists()  # killed before the end
        state = ChainStore(out).last_state()
        assert state is not None and state[0] >= 2 * k_seg
        partial = load_result(str(out))  # a run in progress can be read
        assert partial.draws.shape[0] == 2
    assert kills == 2
    subprocess.run([sys.executable, str(script), str(out), alg, metric], env=env, check=True,
                   timeout=300)
    assert _h5_equal(ref, out) > 10


def test_input_validation():
    with pytest.raises(InputError, match="posterior"):
        HMC(object())
    with pytest.raises(InputError, match="algorithm"):
        HMC(StdNormal(2), algorithm="mala")
    with pytest.raises(InputError, match="metric"):
        HMC(StdNormal(2), metric="full")
    with pytest.raises(ShapeError, match="metric"):
        HMC(StdNormal(2), metric=IdentityMetric(3, np))
    with pytest.raises(ShapeError, match="init"):
        HMC(StdNormal(2)).sample(5, 5, chains=2, init=np.zeros(3), progress=False)

    class Bad(StdNormal):
        def value_and_grad(self, x):
            return -np.inf, -x

    with pytest.raises(InputError, match="init"):
        HMC(Bad(2)).sample(5, 5, chains=1, init=np.zeros(2), progress=False)


def test_backend_leapfrog_matches_numpy(xp):
    """On CuPy (when a GPU is present) the integrator gives NumPy's numbers."""

    class XPGauss:
        def __init__(self, xp):
            self.size, self.xp = 8, xp
            self.s2 = xp.asarray(np.arange(1.0, 9.0))

        def value_and_grad(self, x):
            return -0.5 * float(self.xp.sum(x * x / self.s2)), -x / self.s2

        def value(self, x):
            return self.value_and_grad(x)[0]

        def grad(self, x):
            return self.value_and_grad(x)[1]

    post_np, post_xp = XPGauss(np), XPGauss(xp)
    r_np = HMC(post_np, metric=LowRankMetric(np.ones(8), np.ones((8, 1)), np.ones(1), np)
               ).sample(20, 30, chains=1, seed=1, init=np.ones(8), progress=False)
    r_xp = HMC(post_xp, metric=LowRankMetric(np.ones(8), np.ones((8, 1)), np.ones(1), xp)
               ).sample(20, 30, chains=1, seed=1, init=np.ones(8), progress=False)
    np.testing.assert_allclose(r_xp.draws, r_np.draws, rtol=1e-9, atol=1e-12)
    # chains in lockstep with split HMC about a dense metric, on the same array module
    from linlim.inference.metric import DenseMetric

    mass = np.diag(1.0 / np.arange(1.0, 9.0)) + 0.01
    runs = [HMC(post, metric=DenseMetric(mass=mass, xp=mod), split_centre=0.1 * np.ones(8)
                ).sample(20, 30, chains=3, seed=1, init=np.ones(8), progress=False)
            for post, mod in ((post_np, np), (post_xp, xp))]
    np.testing.assert_allclose(runs[1].draws, runs[0].draws, rtol=1e-9, atol=1e-12)


def test_fixed_dense_metric_not_checkpointed_and_pinned(tmp_path):
    """A fixed (unadapted) dense metric is pinned by the config's fingerprint, not rewritten
    into every checkpoint segment; resuming continues to the uninterrupted draws, and a
    different metric is refused."""
    from linlim.inference.metric import DenseMetric

    post = StdNormal(5)
    A = np.diag(np.arange(1.0, 6.0)) + 0.1
    kw = dict(num_draws=20, num_warmup=20, chains=2, seed=3, progress=False)
    ref = HMC(post, metric=DenseMetric(mass=A)).sample(**kw)
    path = tmp_path / "fixed.h5"
    HMC(post, metric=DenseMetric(mass=A)).sample(path=str(path), checkpoint_every=5,
                                                 **{**kw, "num_draws": 10})
    data = read_chains(path)
    assert "metric" not in data["state"]["chain_0"]
    assert data["config"]["metric_fingerprint"] == DenseMetric(mass=A).fingerprint()
    # interrupted mid-run (the target raises), then resumed: the uninterrupted draws
    class Interrupted(StdNormal):
        calls = 0

        def value_and_grad(self, x):
            Interrupted.calls += 1
            if Interrupted.calls == 60:
                raise KeyboardInterrupt
            return super().value_and_grad(x)

    path2 = tmp_path / "fixed2.h5"
    with pytest.raises(KeyboardInterrupt):
        HMC(Interrupted(5), metric=DenseMetric(mass=A)).sample(
            path=str(path2), checkpoint_every=5, **kw)
    assert ChainStore(path2).last_state() is not None and not path2.exists()
    full = HMC(post, metric=DenseMetric(mass=A)).sample(path=str(path2),
                                                        checkpoint_every=5, **kw)
    assert np.array_equal(full.draws, ref.draws)
    assert load_result(str(path2)).metrics == [None, None]
    with pytest.raises(InputError, match="different configuration"):
        HMC(post, metric=DenseMetric(mass=A + 0.5 * np.eye(5))).sample(path=str(path2), **kw)


class BatchedGaussian(Gaussian):
    """Gaussian with the optional ``value_and_grad_batch`` of the sampler protocol."""

    nbatch = 0

    def value_and_grad_batch(self, X):
        BatchedGaussian.nbatch += 1
        R = X - self.mu
        G = R @ self.prec
        return -0.5 * np.sum(R * G, axis=1), -G


@pytest.mark.parametrize("batched_post,split", [(True, False), (False, False), (True, True)])
def test_lockstep_chains_equal_one_at_a_time(batched_post, split):
    """Static-HMC chains sharing a fixed dense metric, advanced in lockstep (one metric
    product and one batched gradient per leapfrog step for all chains), give each chain the
    draws, step counts, divergences and acceptances of the one-chain-at-a-time loop, to
    rounding; the batched gradient is used when the posterior has it."""
    from linlim.inference.metric import DenseMetric

    rng = np.random.default_rng(8)
    A = rng.standard_normal((30, 30))
    prec = A @ A.T + 3 * np.eye(30)
    post = (BatchedGaussian if batched_post else Gaussian)(prec, mu=rng.standard_normal(30))
    metric = DenseMetric(mass=0.7 * prec + 0.3 * np.diag(np.diag(prec)))
    kw = dict(num_draws=40, num_warmup=40, chains=3, seed=2, progress=False)
    opt = {"split_centre": post.mu + 0.1} if split else {}
    BatchedGaussian.nbatch = 0
    lock = HMC(post, metric=metric, **opt).sample(**kw)
    assert (BatchedGaussian.nbatch > 0) == batched_post
    one = HMC(post, metric=metric, batch_chains=False, **opt).sample(**kw)
    np.testing.assert_allclose(lock.draws, one.draws, rtol=1e-9, atol=1e-9)
    for key in ("n_leapfrog", "divergent"):
        assert np.array_equal(lock.sample_stats[key], one.sample_stats[key])
    np.testing.assert_allclose(lock.sample_stats["accept_stat"],
                               one.sample_stats["accept_stat"], rtol=1e-7, atol=1e-9)
    # chains that diverge stop early and alone: a forced huge step on one chain's scale
    with pytest.warns(DivergenceWarning):
        big = HMC(post, metric=metric, step_size=30.0, adapt_step_size=False).sample(
            20, 0, chains=3, seed=1, progress=False)
    with pytest.warns(DivergenceWarning):
        ref = HMC(post, metric=metric, step_size=30.0, adapt_step_size=False,
                  batch_chains=False).sample(20, 0, chains=3, seed=1, progress=False)
    assert np.array_equal(big.sample_stats["divergent"], ref.sample_stats["divergent"])
    assert np.array_equal(big.sample_stats["n_leapfrog"], ref.sample_stats["n_leapfrog"])
    np.testing.assert_allclose(big.draws, ref.draws, rtol=1e-9, atol=1e-9)


def test_dense_velocity_batch_panels_equal_products():
    """The panelled multi-vector product of a dense metric (more rows than one panel)
    equals the matrix-vector products, for 1 and several momenta."""
    from linlim.inference.metric import _PANEL_ROWS, DenseMetric

    rng = np.random.default_rng(3)
    n = _PANEL_ROWS + 37
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    metric = DenseMetric(mass=A @ A.T + np.eye(n))
    for c in (1, 3):
        P = rng.standard_normal((c, n))
        ref = np.stack([metric.velocity(p) for p in P])
        np.testing.assert_allclose(metric.velocity_batch(P), ref, rtol=1e-12, atol=1e-12)


def test_split_hmc_exact_on_its_gaussian_and_on_skew_normals():
    """Split HMC (the Gaussian part N(m, M^-1) integrated exactly, only the residual force
    by leapfrog kicks). On a Gaussian equal to its split part every transition is accepted
    in one step; on correlated skew-normals (a non-Gaussian residual) the draws are exact:
    quantiles agree with scipy's within their MCSE, and it takes far fewer gradient
    evaluations than leapfrog with the same metric."""
    from linlim.inference.metric import DenseMetric

    rng = np.random.default_rng(12)
    A = rng.standard_normal((40, 40))
    prec = A @ A.T / 40 + np.diag(np.geomspace(1.0, 1e3, 40))
    post = Gaussian(prec, mu=rng.standard_normal(40))
    r = HMC(post, metric=DenseMetric(mass=prec), split_centre=post.mu).sample(
        300, 50, chains=2, seed=4, init=post.mu, progress=False)
    assert r.sample_stats["accept_stat"].min() > 1 - 1e-9
    assert np.all(r.sample_stats["n_leapfrog"] == 1)
    L = np.linalg.cholesky(prec)
    _zscore_check((r.draws - post.mu) @ L)          # whitened: N(0, I)

    # a correlated, strongly skewed target: x = S y, y_i ~ skew-normal(lam = 4)
    post = SkewNormals(6, 4.0, np.random.default_rng(5))
    hess = DenseMetric(mass=post.hessian(post.mode))
    kw = dict(num_draws=1000, num_warmup=300, chains=4, seed=9, init=post.mode, progress=False)
    rs = HMC(post, metric=hess, split_centre=post.mode).sample(**kw)
    assert rs.n_divergent == 0
    y = rs.draws @ np.linalg.inv(post.S).T
    for p in (0.05, 0.25, 0.5, 0.75, 0.95):
        q_ref = stats.skewnorm.ppf(p, post.lam)
        q_hat = np.quantile(y.reshape(-1, post.size), p, axis=0)
        assert np.all(np.abs(q_hat - q_ref) < 4 * mcse_quantile(y, p)), (p, q_hat, q_ref)
    rl = HMC(post, metric=hess).sample(**kw)
    assert rs.n_grad < rl.n_grad


class SkewNormals:
    """``x = S y`` with independent ``y_i ~ skew-normal(lam)``: log-concave, smooth and
    skewed (its exact quantiles are scipy's)."""

    def __init__(self, n, lam, rng):
        from scipy.optimize import brentq

        self.size, self.xp, self.lam = n, np, lam
        self.S = rng.standard_normal((n, n)) + 2 * np.eye(n)
        self.Sinv = np.linalg.inv(self.S)
        y0 = brentq(lambda y: -y + lam * self._ratio(lam * y), -5, 5)
        self.mode = self.S @ np.full(n, y0)

    @staticmethod
    def _ratio(t):                      # phi(t) / Phi(t), stably
        from scipy.special import log_ndtr

        return np.exp(-0.5 * t * t - 0.5 * np.log(2 * np.pi) - log_ndtr(t))

    def value_and_grad(self, x):
        from scipy.special import log_ndtr

        y = self.Sinv @ x
        lp = float(np.sum(-0.5 * y * y + log_ndtr(self.lam * y)))
        gy = -y + self.lam * self._ratio(self.lam * y)
        return lp, self.Sinv.T @ gy

    def hessian(self, x):
        """Hessian of ``-log p`` at ``x``."""
        t = self.lam * (self.Sinv @ x)
        r = self._ratio(t)
        return self.Sinv.T @ np.diag(1 + self.lam**2 * r * (t + r)) @ self.Sinv

    def value(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]


def test_split_hmc_input_errors():
    from linlim.inference.metric import LowRankMetric

    with pytest.raises(InputError, match="split_centre"):
        HMC(StdNormal(3), metric="identity", algorithm="nuts", split_centre=np.zeros(3))
    with pytest.raises(InputError, match="split_centre"):
        HMC(StdNormal(3), metric="diag", split_centre=np.zeros(3))
    with pytest.raises(ShapeError, match=r"split_centre.*\(3,\)"):
        HMC(StdNormal(3), metric="identity", split_centre=np.zeros(4))
    with pytest.raises(ShapeError, match="split_centre"):
        HMC(StdNormal(3), metric="identity", split_centre=np.r_[0.0, np.nan, 0.0])
    lowrank = LowRankMetric(np.ones(3), np.eye(3)[:, :1], np.array([0.5]))
    with pytest.raises(InputError, match="split HMC needs"):
        HMC(StdNormal(3), metric=lowrank, split_centre=np.zeros(3))
