"""Tests of the MCMC diagnostics: against ArviZ on fixed chains, and against cases with
known answers (iid and AR(1) chains)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from linlim.errors import InputError, ShapeError
from linlim.inference import diagnostics as D

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz as az
except ImportError:  # pragma: no cover - depends on the environment
    az = None

needs_arviz = pytest.mark.skipif(az is None, reason="arviz is not installed")


def ar1(rng, chains, draws, d, rho):
    """AR(1) chains with unit stationary variance: integrated time (1 + rho) / (1 - rho)."""
    x = np.empty((chains, draws, d))
    x[:, 0] = rng.standard_normal((chains, d))
    e = rng.standard_normal((chains, draws, d)) * np.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


def fixed_chains():
    rng = np.random.default_rng(12345)
    x = ar1(rng, 4, 501, 6, 0.6)  # odd length exercises the split
    x[..., 1] = np.exp(x[..., 1])  # skewed
    x[2, :, 2] += 0.4  # one shifted chain
    x[..., 3] = np.round(x[..., 3], 1)  # ties in the ranks
    return x


@needs_arviz
@pytest.mark.parametrize("draws", [501, 40])
def test_matches_arviz(draws):
    x = fixed_chains()[:, :draws]
    idata = az.from_dict(posterior={"a": x})

    def ref(v):
        return np.asarray(v["a"].values)

    rtol = 1e-8
    np.testing.assert_allclose(D.rhat(x), ref(az.rhat(idata)), rtol=rtol)
    np.testing.assert_allclose(D.ess_bulk(x), ref(az.ess(idata, method="bulk")), rtol=rtol)
    np.testing.assert_allclose(D.ess_tail(x), ref(az.ess(idata, method="tail")), rtol=rtol)
    np.testing.assert_allclose(D.ess_mean(x), ref(az.ess(idata, method="mean")), rtol=rtol)
    np.testing.assert_allclose(D.ess_sd(x), ref(az.ess(idata, method="sd")), rtol=rtol)
    for p in (0.1, 0.5, 0.83):
        np.testing.assert_allclose(D.ess_quantile(x, p),
                                   ref(az.ess(idata, method="quantile", prob=p)), rtol=rtol)
        np.testing.assert_allclose(D.mcse_quantile(x, p),
                                   ref(az.mcse(idata, method="quantile", prob=p)), rtol=rtol)
    np.testing.assert_allclose(D.mcse_mean(x), ref(az.mcse(idata, method="mean")), rtol=rtol)
    np.testing.assert_allclose(D.mcse_sd(x), ref(az.mcse(idata, method="sd")), rtol=rtol)
    energy = x[..., 0] ** 2
    np.testing.assert_allclose(D.ebfmi(energy), az.bfmi(energy), rtol=rtol)
    # the summary table (even draws: ArviZ's summary folds around the unsplit median)
    if draws % 2 == 0:
        s = az.summary(idata, kind="diagnostics", round_to="none")
        mine = D.summary(x)
        for col in ("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
            np.testing.assert_allclose(mine.columns[col], s[col].values, rtol=rtol)


@needs_arviz
def test_inference_data_export_round_trip():
    from linlim.inference.hmc import HMC

    class Std:
        size, xp = 3, np

        def value_and_grad(self, x):
            return -0.5 * float(x @ x), -x

        def value(self, x):
            return -0.5 * float(x @ x)

        def grad(self, x):
            return -x

    r = HMC(Std()).sample(100, 100, chains=2, seed=0, progress=False)
    idata = D.to_inference_data(r)
    assert idata.posterior["theta"].shape == (2, 100, 3)
    for name in ("lp", "acceptance_rate", "energy", "step_size", "diverging", "n_steps"):
        assert name in idata.sample_stats
    np.testing.assert_allclose(np.asarray(az.rhat(idata)["theta"]), D.rhat(r.draws), rtol=1e-8)
    np.testing.assert_allclose(az.bfmi(idata), D.ebfmi(r.sample_stats["energy"]), rtol=1e-8)
    named = r.to_inference_data(names=["a", "b", "c"])
    assert set(named.posterior.data_vars) == {"a", "b", "c"}
    assert "warmup_sample_stats" in named.groups()


def test_iid_normal_known_answers():
    # 4 x 2000 iid N(0,1) draws, 50 parameters. Statistical bounds: the bulk ESS estimate of
    # N = 8000 iid draws has relative sd ~ 3%; |R-hat - 1| is O(1/N) ~ 1e-3 (bound 0.01);
    # MCSE of the mean is 1/sqrt(N) within the ESS error.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 2000, 50))
    n = x.shape[0] * x.shape[1]
    for f in (D.ess_bulk, D.ess_mean, D.ess_sd):
        ess = f(x)
        assert np.all(np.abs(ess / n - 1) < 0.2), (f.__name__, ess.min(), ess.max())
    assert np.all(D.ess_tail(x) / n > 0.75)
    assert np.all(np.abs(D.rhat(x) - 1) < 0.01)
    np.testing.assert_allclose(D.mcse_mean(x), 1 / np.sqrt(n), rtol=0.15)
    # MCSE of the sd of a normal: sd / sqrt(2 N)
    np.testing.assert_allclose(D.mcse_sd(x), 1 / np.sqrt(2 * n), rtol=0.2)
    # MCSE of the median: sqrt(pi / 2) / sqrt(N)
    # (ArviZ's order-statistic interval is itself noisy: check the average over 50 parameters
    # tightly and each one loosely)
    mq = D.mcse_quantile(x, 0.5) / np.sqrt(np.pi / 2 / n)
    assert abs(mq.mean() - 1) < 0.1 and np.all(np.abs(mq - 1) < 0.6), mq
    # iid energies: E[(e_t+1 - e_t)^2] = 2 var, so E-BFMI ~ 2
    np.testing.assert_allclose(D.ebfmi(x[..., 0]), 2.0, rtol=0.1)


def test_ar1_autocorrelation_and_ess():
    rng = np.random.default_rng(8)
    rho = 0.8
    x = ar1(rng, 4, 5000, 10, rho)
    tau = (1 + rho) / (1 - rho)  # = 9
    np.testing.assert_allclose(D.integrated_autocorr_time(x), tau, rtol=0.2)
    np.testing.assert_allclose(D.ess_mean(x), x.shape[0] * x.shape[1] / tau, rtol=0.2)
    acf = D.autocorrelation(x[0, :, 0])
    np.testing.assert_allclose(acf[:4], rho ** np.arange(4), atol=0.05)
    # autocovariance against the direct sum
    y = x[1, :300, 2]
    yc = y - y.mean()
    direct = np.array([yc[: 300 - t] @ yc[t:] / 300 for t in range(5)])
    np.testing.assert_allclose(D.autocovariance(y)[:5], direct, rtol=1e-12)
    # a random-walk energy has E-BFMI << 0.3
    e = np.cumsum(rng.standard_normal((2, 2000)), axis=1)
    assert np.all(D.ebfmi(e) < 0.05)


def test_rhat_detects_nonconvergence():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 1000, 3))
    x[0, :, 0] += 2.0  # a chain stuck elsewhere
    x[1, :, 1] *= 5.0  # a chain with another scale (only the folded R-hat sees it)
    r = D.rhat(x)
    assert r[0] > 1.1 and r[1] > 1.1 and r[2] < 1.01
    # trend within chains: split R-hat catches it
    y = rng.standard_normal((4, 1000)) + np.linspace(0, 2, 1000)
    assert D.rhat(y) > 1.1


def test_shapes_and_small_inputs():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 100, 2, 4))
    assert D.rhat(x).shape == (2, 4)
    assert D.ess_bulk(x).shape == (2, 4)
    assert isinstance(D.ess_bulk(x[..., 0, 0]), float)
    assert np.isnan(D.rhat(rng.standard_normal((1, 100))))  # needs 2 chains
    assert np.isnan(D.ess_bulk(rng.standard_normal((2, 3))))  # needs 4 draws
    assert D.ess_mean(np.ones((2, 50))) == 100  # constant chains: ArviZ returns the size
    with pytest.raises(ShapeError):
        D.ebfmi(np.ones((2, 3, 4)))


def test_summary_table_and_plots(tmp_path):
    from linlim.inference.hmc import HMC
    from linlim.plotting.mcmc import corner_plot, trace_plot

    class Std:
        size, xp = 4, np

        def value_and_grad(self, x):
            return -0.5 * float(x @ x), -x

        def value(self, x):
            return -0.5 * float(x @ x)

        def grad(self, x):
            return -x

    r = HMC(Std()).sample(500, 300, chains=4, seed=1, progress=False)
    s = r.summary(names=["a", "b", "c", "d"])
    text = str(s)
    for token in ("mean", "ess_bulk", "r_hat", "E-BFMI", "divergent: 0", "a", "d"):
        assert token in text
    assert s.converged()
    assert s.sampler["n_grad"] == r.n_grad > 0
    assert len(s.sampler["ebfmi"]) == 4 and min(s.sampler["ebfmi"]) > 0.3
    assert np.all(np.abs(s.columns["q50"]) < 0.2)
    p1 = trace_plot(r, tmp_path / "trace.png", names=["a", "b", "c", "d"])
    p2 = corner_plot(r, tmp_path / "corner.png", indices=[0, 2], truths=[0.0, 0.0])
    # truths for every parameter (the demo's band powers: 7 bands, 5 shown) are subset
    p3 = corner_plot(r, tmp_path / "corner_all.png", indices=[1, 3], truths=[0.0] * 4)
    with pytest.raises(InputError, match="truths: expected 2 values"):
        corner_plot(r, tmp_path / "bad.png", indices=[1, 3], truths=[0.0] * 3)
    for p in (p1, p2, p3):
        assert (tmp_path / p.split("/")[-1]).stat().st_size > 1000
