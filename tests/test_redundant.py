"""Redundant calibration on a 19-element hexagon: model operator, logcal, Gauss-Newton,
degeneracies (Fisher null space) and agreement with truth within the Fisher errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from linlim.calibration.redundant import (
    RedundantVisibilities,
    degeneracy_count,
    drop_small_groups,
    fix_degeneracies,
    logcal,
    redcal,
    redcal_problem,
)
from linlim.errors import InputError
from linlim.inference.fisher import fisher_matrix
from linlim.telescope import hex_array
from linlim.telescope.baselines import redundant_groups

NT, NF, SIGMA = 2, 3, 0.01


@pytest.fixture(scope="module")
def hexcal():
    rng = np.random.default_rng(20250514)
    lay = hex_array(3)
    red = drop_small_groups(redundant_groups(lay, autos=False))
    n, ng = lay.nants, red.ngroups
    gt = ((1 + 0.1 * rng.standard_normal((n, NT, NF)))
          * np.exp(0.3j * rng.standard_normal((n, NT, NF))))
    ut = rng.uniform(0.5, 1.5, (NT, NF, ng)) * np.exp(2j * np.pi * rng.uniform(size=(NT, NF, ng)))
    prob = redcal_problem(np.zeros((NT, NF, red.pairs.shape[0]), complex), red, lay,
                          noise=SIGMA)
    vt = prob.model(prob.pack(gt, ut))
    noise = SIGMA / np.sqrt(2) * (rng.standard_normal(vt.shape)
                                  + 1j * rng.standard_normal(vt.shape))
    data = vt + noise
    sol = redcal(data, red, lay, noise=SIGMA, reference=gt)
    return dict(lay=lay, red=red, gt=gt, ut=ut, data=data, vt=vt, sol=sol, prob=prob)


_EIG: dict = {}


def _fisher_chi2(prob, gt, ut, g, u):
    """``delta^T F delta`` over the non-null eigen-directions of F at the truth."""
    if id(prob) not in _EIG:
        F = fisher_matrix(prob.posterior, prob.pack(gt, ut), include_prior=False)
        _EIG[id(prob)] = np.linalg.eigh(F)
    lam, U = _EIG[id(prob)]
    keep = lam > 1e-9 * lam.max()
    d = prob.pack(g, u) - prob.pack(gt, ut)
    return float((lam[keep] * (U[:, keep].T @ d) ** 2).sum()), int(keep.sum()), \
        int((~keep).sum())


def test_redundant_visibilities_expand_with_conjugation():
    R = RedundantVisibilities([1, 0, 1, 0], [False, False, True, True], 1, 2)
    u = np.array([[[1 + 1j, 2 - 3j], [0.5j, -1.0]]])
    y = R(u)
    np.testing.assert_array_equal(y[0, :, 0], u[0, :, 1])
    np.testing.assert_array_equal(y[0, :, 2], u[0, :, 1].conj())
    np.testing.assert_array_equal(y[0, :, 3], u[0, :, 0].conj())
    # adjoint on a basis vector: conj for flipped members
    w = np.zeros((1, 2, 4), complex)
    w[0, 0, 3] = 2 + 5j
    np.testing.assert_array_equal(R.rmatvec(w)[0, 0], [2 - 5j, 0])


def test_single_baseline_group_is_an_error():
    with pytest.raises(InputError, match="at least 2 baselines"):
        RedundantVisibilities([0, 0, 1], [False, False, False], 1, 1)
    lay = hex_array(3)
    red = redundant_groups(lay, autos=False)
    with pytest.raises(InputError, match="drop_small_groups"):
        logcal(np.ones((1, 1, red.pairs.shape[0]), complex), red, lay)
    kept = drop_small_groups(red)
    assert min(len(m) for m in kept.groups) >= 2
    assert kept.pairs.shape[0] == red.pairs.shape[0] - 3      # hex-3: three singletons


def test_redundant_model_matches_explicit_sum(hexcal):
    red, gt, ut, vt = hexcal["red"], hexcal["gt"], hexcal["ut"], hexcal["vt"]
    lay = hexcal["lay"]
    i1, i2 = lay.index_of(red.pairs[:, 0]), lay.index_of(red.pairs[:, 1])
    for b in (0, 17, 100):
        u = ut[..., red.group_of[b]]
        u = u.conj() if red.conj_of[b] else u
        np.testing.assert_allclose(vt[..., b], gt[i1[b]] * gt[i2[b]].conj() * u, rtol=1e-13)
    # the redundancy is physical: members' vectors agree with the representative's
    b = lay.antpos[i2] - lay.antpos[i1]
    sgn = np.where(red.conj_of, -1.0, 1.0)[:, None]
    np.testing.assert_allclose(sgn * b, red.vectors[red.group_of], atol=1e-6)


def test_fisher_null_space_is_the_degeneracies(hexcal):
    sol = hexcal["sol"]
    assert degeneracy_count(hexcal["lay"].antpos) == 4
    assert sol.expected_null_dim == 4 * NT * NF
    assert sol.null_dim == sol.expected_null_dim


def test_degeneracy_fix_is_exact(hexcal):
    prob, red, lay = hexcal["prob"], hexcal["red"], hexcal["lay"]
    gt, ut = hexcal["gt"], hexcal["ut"]
    x = lay.antpos
    k = np.array([3e-3, -2e-3, 0.0])
    rot = np.exp(0.7 + 1j * (0.4 + x @ k))[:, None, None]
    g2 = gt * rot
    u2 = ut * np.exp(-1.4 + 1j * red.vectors @ k)
    np.testing.assert_allclose(prob.model(prob.pack(g2, u2)), hexcal["vt"], rtol=1e-12)
    g3, u3, deg = fix_degeneracies(g2, u2, red, lay, reference=gt)
    np.testing.assert_allclose(g3, gt, atol=1e-12)
    np.testing.assert_allclose(u3, ut, atol=1e-12)
    np.testing.assert_allclose(deg["amplitude"], 0.7)
    np.testing.assert_allclose(deg["gradient"][:2], k[:2, None, None] + 0 * deg["phase"],
                               atol=1e-12)


def test_redcal_agrees_with_truth_within_fisher_errors(hexcal):
    sol, prob = hexcal["sol"], hexcal["prob"]
    chi2, dof, null = _fisher_chi2(prob, hexcal["gt"], hexcal["ut"], sol.gains, sol.vis)
    assert null == 4 * NT * NF
    # two-sided, p = 1e-6 each side: a correct solver fails with probability 2e-6
    lo, hi = stats.chi2.ppf(1e-6, dof), stats.chi2.isf(1e-6, dof)
    assert lo < chi2 < hi, (chi2, dof, lo, hi)
    # the data chi-square at the solution also has its expected size
    lo, hi = stats.chi2.ppf(1e-6, sol.dof), stats.chi2.isf(1e-6, sol.dof)
    assert lo < 2 * sol.chi2 < hi
    # per-antenna errors: |g - g_true| / sigma_g small for every antenna
    z = np.abs(sol.gains - hexcal["gt"]) / sol.gain_errors
    assert z.max() < 6.0


def test_statistic_detects_wrong_solutions(hexcal):
    """The chi-square test above can fail: logcal alone (noise-biased) and an unfixed
    gauge both fall far outside its range."""
    prob, red, lay, gt, ut = hexcal["prob"], hexcal["red"], hexcal["lay"], hexcal["gt"], \
        hexcal["ut"]
    sol = hexcal["sol"]
    _, dof, _ = _fisher_chi2(prob, gt, ut, sol.gains, sol.vis)
    hi = stats.chi2.isf(1e-6, dof)
    g0, u0 = logcal(hexcal["data"], red, lay)
    g0, u0, _ = fix_degeneracies(g0, u0, red, lay, reference=gt)
    assert np.abs(g0 - gt).max() < 0.1                        # logcal is close ...
    g1, u1, _ = fix_degeneracies(sol.gains, sol.vis, red, lay)  # unit-gain gauge
    assert _fisher_chi2(prob, gt, ut, g1, u1)[0] > hi         # ... gauge matters
    g2 = sol.gains.copy()
    g2[3] *= 1 + 6 * sol.gain_errors[3]                      # a 6-sigma error on one antenna
    assert _fisher_chi2(prob, gt, ut, g2, sol.vis)[0] > _fisher_chi2(prob, gt, ut, sol.gains,
                                                                      sol.vis)[0] + 20


def test_logcal_bad_samples_are_dropped(hexcal):
    """Zero, NaN and infinite samples (and NaN weights) are dropped, not logged: the start
    stays finite and equals logcal with those samples given zero weight; cells with
    different sample masks are solved with their own matrices."""
    red, lay = hexcal["red"], hexcal["lay"]
    data = np.array(hexcal["data"])
    bad = data.copy()
    bad[0, 0, 0] = 0.0
    bad[0, 1, 3] = np.nan
    bad[1, 2, 5] = np.inf
    w = np.ones(data.shape)
    w[1, 0, 7] = np.nan
    g, u = logcal(bad, red, lay, weights=w)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(u))
    w0 = w.copy()
    w0[0, 0, 0] = w0[0, 1, 3] = w0[1, 2, 5] = w0[1, 0, 7] = 0.0
    g0, u0 = logcal(data, red, lay, weights=w0)
    np.testing.assert_allclose(g, g0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(u, u0, rtol=0, atol=1e-12)
    # the unaffected cell (1, 1) equals logcal of that cell alone
    g1, _ = logcal(data[1:2, 1:2], red, lay)
    np.testing.assert_allclose(g[:, 1, 1], g1[:, 0, 0], rtol=0, atol=1e-12)
