"""NaN in, NaN out: every diagnostic returns NaN for a parameter (or chain) whose draws
hold a NaN, exactly where ArviZ does, and the other parameters' values are untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from linlim.inference import diagnostics as D

az = pytest.importorskip("arviz")


@pytest.fixture
def draws(rng):
    x = rng.standard_normal((4, 120, 3))
    x[:, :, 2] += 0.5 * np.cumsum(rng.standard_normal((4, 120)), axis=1) / 10
    x[1, 17, 1] = np.nan  # parameter 1 holds one NaN
    return x


def _arviz(fn, x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(az.convert_to_dataset(x), **kw)["x"].values


CASES = {
    "rhat": (D.rhat, lambda x: _arviz(az.rhat, x)),
    "ess_bulk": (D.ess_bulk, lambda x: _arviz(az.ess, x, method="bulk")),
    "ess_tail": (D.ess_tail, lambda x: _arviz(az.ess, x, method="tail")),
    "ess_mean": (D.ess_mean, lambda x: _arviz(az.ess, x, method="mean")),
    "ess_sd": (D.ess_sd, lambda x: _arviz(az.ess, x, method="sd")),
    "ess_quantile": (lambda x: D.ess_quantile(x, 0.3),
                     lambda x: _arviz(az.ess, x, method="quantile", prob=0.3)),
    "mcse_mean": (D.mcse_mean, lambda x: _arviz(az.mcse, x, method="mean")),
    "mcse_sd": (D.mcse_sd, lambda x: _arviz(az.mcse, x, method="sd")),
    "mcse_quantile": (lambda x: D.mcse_quantile(x, 0.3),
                      lambda x: _arviz(az.mcse, x, method="quantile", prob=0.3)),
    "integrated_autocorr_time": (
        D.integrated_autocorr_time,
        lambda x: x.shape[0] * x.shape[1] / _arviz(az.ess, x, method="mean")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_nan_in_nan_out_as_arviz(name, draws) -> None:
    ours_fn, theirs_fn = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = np.asarray(ours_fn(draws))
    theirs = np.asarray(theirs_fn(draws))
    assert np.isnan(theirs[1]) and np.isnan(ours[1]), (ours, theirs)
    np.testing.assert_allclose(ours[[0, 2]], theirs[[0, 2]], rtol=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_scalar_parameter(name, draws) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(CASES[name][0](draws[:, :, 1]))


def test_autocorrelation_and_ebfmi_nan_per_chain(draws) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = D.autocorrelation(draws[:, :, 1])
        theirs = np.stack([az.autocorr(c) for c in draws[:, :, 1]])
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
        assert np.isnan(ours[1]).all() and np.isfinite(ours[[0, 2, 3]]).all()
        energy = draws[:, :, 1] + 3.0
        np.testing.assert_allclose(D.ebfmi(energy), az.bfmi(energy), rtol=1e-10)
        assert np.isnan(D.ebfmi(energy)[1])


def test_summary_rows_with_nan(draws) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cols = D.summary(draws).columns
    for name, col in cols.items():
        assert np.isnan(col[1]), name
        assert np.isfinite(col[[0, 2]]).all(), name
