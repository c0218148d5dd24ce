"""Calibration: gain operators against direct formulas, StEFCal and Gauss-Newton at the
Cramér-Rao bound, flags, gauge, direction-dependent gains and their degeneracy."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.calibration import (
    DegenerateCalibrationError,
    align_phase,
    antenna_variance,
    apply_gauge,
    bandpass_basis,
    bandpass_gains,
    crb_covariance,
    dd_gains,
    delay_gains,
    di_fisher,
    di_gains,
    make_weights,
    operator_fisher,
    phase_slope_gains,
    stefcal,
)
from linlim.calibration.solve import gain_problem, solve_gains
from linlim.errors import InputError, ShapeError
from linlim.inference.fisher import fisher_matrix

C = 299792458.0


def hex_positions(rings: int = 3, spacing: float = 14.6) -> np.ndarray:
    """ENU (east, north) positions of a hexagon with ``rings`` rings (37 for 3)."""
    pts = [(q, r) for q in range(-rings, rings + 1) for r in range(-rings, rings + 1)
           if abs(q + r) <= rings]
    return spacing * np.array([(q + 0.5 * r, np.sqrt(3) / 2 * r) for q, r in pts])


def cnoise(rng, shape, sigma):
    """Complex noise with E|n|^2 = sigma^2."""
    return sigma / np.sqrt(2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def point_source_model(pos, a1, a2, freqs, s, flux):
    """V_ij(nu) = S exp(+2 pi i nu (x_j - x_i) . s / c), shape (Nfreqs, Nbl)."""
    b = pos[a2] - pos[a1]
    return flux * np.exp(2j * np.pi * np.asarray(freqs)[:, None] / C * (b @ s)[None, :])


def crb_analytic(N, S, sigma):
    return sigma**2 / (2 * S**2) * ((2 * N - 3) / (2 * (N - 1) * (N - 2)) + (N - 1) / N**2)


# -- operators -------------------------------------------------------------------------
def test_di_gains_direct_formula_with_intervals_and_feeds(rng):
    a1, a2 = np.triu_indices(4, 0)
    g = rng.standard_normal((2, 4, 2, 2)) + 1j * rng.standard_normal((2, 4, 2, 2))
    V = rng.standard_normal((4, 3, 5, a1.size)) + 1j * rng.standard_normal((4, 3, 5, a1.size))
    op = di_gains(a1, a2, 4, 3, 5, time_interval=2, freq_interval=[0, 0, 1, 1, 1],
                  pols=[-5, -6, -7, -8])
    y = op((g, V))
    ti, fi = [0, 0, 1], [0, 0, 1, 1, 1]
    for k, (p, q) in enumerate([(0, 0), (1, 1), (0, 1), (1, 0)]):
        for t in range(3):
            for f in range(5):
                ref = g[p, a1, ti[t], fi[f]] * np.conj(g[q, a2, ti[t], fi[f]]) * V[k, t, f]
                np.testing.assert_allclose(y[k, t, f], ref, rtol=1e-14)


def test_dd_gains_sum_of_clusters(rng):
    a1, a2 = np.triu_indices(5, 1)
    g = rng.standard_normal((3, 5, 1, 2)) + 1j * rng.standard_normal((3, 5, 1, 2))
    M = rng.standard_normal((3, 2, 4, a1.size)) + 1j * rng.standard_normal((3, 2, 4, a1.size))
    op = dd_gains(a1, a2, 5, 2, 4, 3, time_interval=2, freq_interval=2, model=M)
    ref = sum(g[c, a1][:, 0, [0, 0, 1, 1]].T * np.conj(g[c, a2][:, 0, [0, 0, 1, 1]].T) * M[c]
              for c in range(3))
    np.testing.assert_allclose(op(g), ref, rtol=1e-13)


def test_parameterizations_values(rng):
    freqs = np.linspace(100e6, 120e6, 7)
    x = rng.standard_normal((3, 2, 2))
    g = delay_gains(3, 2, freqs)(x)
    ref = np.exp(1j * (2 * np.pi * freqs * 1e-9 * x[..., :1] + x[..., 1:]))
    np.testing.assert_allclose(g, ref, rtol=1e-13)
    pos = rng.uniform(-50, 50, (3, 2))
    s = rng.standard_normal((2, 2, 1)) * 1e-2
    ref = np.exp(2j * np.pi * freqs / C * np.einsum("ak,kt->at", pos, s[..., 0])[..., None])
    np.testing.assert_allclose(phase_slope_gains(pos, 2, freqs=freqs)(s), ref, rtol=1e-12)
    B = bandpass_basis(freqs, 3)
    np.testing.assert_allclose(B[:, 1], np.cos(np.pi * (np.arange(7) + 0.5) / 7))
    c = rng.standard_normal((3, 2, 3)) + 0j
    np.testing.assert_allclose(bandpass_gains(3, 2, freqs, 3)(c), c @ B.T, rtol=1e-13)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="ant2"):
        di_gains([0, 1], [1, 5], 3, 1, 1)
    with pytest.raises(ShapeError, match="model"):
        di_gains([0], [1], 2, 2, 2, model=np.ones((2, 2, 3), complex))
    with pytest.raises(InputError, match="noise"):
        make_weights((2, 2), noise=0.0)


# -- Fisher and the analytic Cramér-Rao bound ---------------------------------------------
def test_fisher_crb_equals_analytic_unit_gains():
    pos = hex_positions()
    N = len(pos)
    a1, a2 = np.triu_indices(N, 0)     # autos present in the data, weight 0 by default
    S, sigma = 2.5, 0.4
    M = np.full((1, 1, a1.size), S, dtype=complex)
    prob = gain_problem(M, M, a1, a2, N, noise=sigma)
    theta = prob.theta_from_gains(np.ones((N, 1, 1), complex))
    F = fisher_matrix(prob.posterior, theta, include_prior=False)   # linlim's Fisher
    var = antenna_variance(crb_covariance(np.asarray(F)))
    np.testing.assert_allclose(var, crb_analytic(N, S, sigma), rtol=1e-10)
    # the structured per-cell Fisher and the operator-level one agree with it
    w = make_weights(M.shape, noise=sigma, ant1=a1, ant2=a2)
    F2 = di_fisher(np.ones((N, 1, 1), complex), M, w, a1, a2, [0], [0])[0, 0]
    F3 = operator_fisher(prob.gain_op, np.ones((N, 1, 1), complex), w)
    np.testing.assert_allclose(F2, F, atol=1e-9 * np.abs(F).max())
    np.testing.assert_allclose(F3, F, atol=1e-9 * np.abs(F).max())


@pytest.mark.parametrize("hetero", [False, True], ids=["homoscedastic", "heteroscedastic"])
def test_stefcal_reaches_cramer_rao_bound(hetero):
    """37-antenna hexagon, one point source, 2000 independent cells: MSE / CRB per antenna."""
    rng = np.random.default_rng(1234 + hetero)
    pos = hex_positions()
    N = len(pos)
    a1, a2 = np.triu_indices(N, 1)
    nt, nf = 40, 50
    g = (1 + 0.1 * rng.standard_normal(N)) * np.exp(1j * rng.uniform(-np.pi, np.pi, N))
    m1 = point_source_model(pos, a1, a2, [150e6], np.array([0.1, -0.05]), 1.0)[0]
    sigma_b = rng.uniform(0.15, 0.6, a1.size) if hetero else np.full(a1.size, 0.3)
    M = np.broadcast_to(m1, (nt, nf, a1.size))
    d = g[a1] * g[a2].conj() * M + cnoise(rng, M.shape, 1.0) * sigma_b
    res = stefcal(d, M, a1, a2, N, noise=sigma_b, tol=1e-10, gauge="none")
    assert res.converged.all()
    est = align_phase(res.gains, np.broadcast_to(g[:, None, None], res.gains.shape))
    mse = (np.abs(est - g[:, None, None]) ** 2).mean(axis=(1, 2))
    # the bound from linlim's own Fisher matrix at the true gains (all cells alike)
    prob = gain_problem(M[:1, :1], M[:1, :1], a1, a2, N, noise=sigma_b)
    F = fisher_matrix(prob.posterior, prob.theta_from_gains(g[:, None, None]),
                      include_prior=False)
    crb = antenna_variance(crb_covariance(np.asarray(F)))
    ratio = mse / crb
    assert abs(ratio.mean() - 1) < 0.05, ratio
    assert ratio.max() < 1.15, ratio


# -- solvers agree, flags, gauge --------------------------------------------------------------
def _di_case(rng, N=10, nt=4, nf=6, sigma=0.05):
    a1, a2 = np.triu_indices(N, 0)
    g = (1 + 0.1 * rng.standard_normal((N, 2, 3))) * np.exp(
        1j * rng.uniform(-np.pi, np.pi, (N, 2, 3)))
    ge = g[:, [0, 0, 1, 1]][:, :, [0, 0, 1, 1, 2, 2]]
    M = rng.standard_normal((nt, nf, a1.size)) + 1j * rng.standard_normal((nt, nf, a1.size))
    d = ge[a1].transpose(1, 2, 0) * ge[a2].conj().transpose(1, 2, 0) * M
    return a1, a2, g, M, d + cnoise(rng, d.shape, sigma)


def test_stefcal_and_gauss_newton_agree(rng):
    a1, a2, g, M, d = _di_case(rng)
    kw = dict(noise=0.05, time_interval=2, freq_interval=2)
    st = stefcal(d, M, a1, a2, 10, tol=1e-13, **kw)
    prob = gain_problem(d, M, a1, a2, 10, **kw)
    gn = solve_gains(prob, method="gn", maxiter=30)
    assert gn.null_dim == 6                     # one phase per cell: the gauge, nothing more
    assert np.abs(gn.gains - st.gains).max() / np.abs(st.gains).max() < 1e-8
    lm = solve_gains(prob, method="lm", maxiter=60, check=False)
    assert np.abs(lm.gains - st.gains).max() / np.abs(st.gains).max() < 1e-8
    assert st.iterations.max() < 100            # tens of iterations
    assert st.gauge.startswith("reference antenna 0")
    np.testing.assert_allclose(st.gains[0].imag, 0, atol=1e-14)
    assert np.all(st.gains[0].real > 0)


def test_flagged_baselines_never_pull_the_solution(rng):
    a1, a2, g, M, d = _di_case(rng)
    bad = np.array([3, 17, 30, 41])              # baselines to flag (cross-correlations)
    assert np.all(a1[bad] != a2[bad])
    dflag = d.copy()
    dflag[:, :, bad] = 1e200
    flags = np.zeros(d.shape, bool)
    flags[:, :, bad] = True
    keep = np.setdiff1d(np.arange(a1.size), bad)
    kw = dict(noise=0.05, time_interval=2, freq_interval=2, tol=1e-14)
    s1 = stefcal(dflag, M, a1, a2, 10, flags=flags, **kw)
    s2 = stefcal(d[..., keep], M[..., keep], a1[keep], a2[keep], 10, **kw)
    assert np.abs(s1.gains - s2.gains).max() < 1e-10
    kw = dict(noise=0.05, time_interval=2, freq_interval=2)
    p1 = gain_problem(dflag, M, a1, a2, 10, flags=flags, **kw)
    p2 = gain_problem(d[..., keep], M[..., keep], a1[keep], a2[keep], 10, **kw)
    gn1 = solve_gains(p1, maxiter=30, check=False)
    gn2 = solve_gains(p2, maxiter=30, check=False)
    assert np.abs(gn1.gains - gn2.gains).max() < 1e-10
    assert np.abs(gn1.gains - s2.gains).max() < 1e-8


def test_gauges(rng):
    g = rng.standard_normal((5, 3, 2)) + 1j * rng.standard_normal((5, 3, 2))
    flags = np.zeros(g.shape, bool)
    flags[2, 1, 1] = True
    r, _ = apply_gauge(g, "ref_antenna", ref_ant=2, flags=flags)
    np.testing.assert_allclose(np.abs(r), np.abs(g))
    ok = ~flags[2]
    assert np.allclose(r[2].imag[ok], 0) and np.all(r[2].real[ok] > 0)
    assert abs(r[0, 1, 1].imag) < 1e-14          # falls back to antenna 0 where 2 is flagged
    m, desc = apply_gauge(g, "mean_phase")
    s = (m / np.abs(m)).sum(axis=0)
    np.testing.assert_allclose(s.imag, 0, atol=1e-13)
    assert "mean phase" in desc
    with pytest.raises(InputError, match="gauge"):
        apply_gauge(g, "nope")


def test_stefcal_iterations_against_noise():
    counts = {}
    for sigma in (1e-3, 0.1, 1.0):
        a1, a2, g, M, d = _di_case(np.random.default_rng(5), N=12, sigma=sigma)
        counts[sigma] = stefcal(d, M, a1, a2, 12, noise=sigma, tol=1e-10).iterations.max()
    assert max(counts.values()) < 150, counts


def test_delay_parameterization_gauss_newton(rng):
    """GN through a composed parameterisation: delays and phases, noise-free."""
    N, nf = 6, 16
    a1, a2 = np.triu_indices(N, 1)
    freqs = np.linspace(100e6, 130e6, nf)
    par = delay_gains(N, 1, freqs)
    x = np.stack([rng.uniform(-5, 5, (N, 1)), rng.uniform(-0.5, 0.5, (N, 1))], axis=-1)
    M = rng.standard_normal((1, nf, a1.size)) + 1j * rng.standard_normal((1, nf, a1.size))
    gtrue = par(x)
    d = di_gains(a1, a2, N, 1, nf, model=M)(gtrue)
    prob = gain_problem(d, M, a1, a2, N, parameterization=par, gauge_dim=2)
    sol = solve_gains(prob, maxiter=50, gauge="none")
    assert sol.null_dim == 2                     # common delay and common phase
    xs = prob.params.unpack(sol.theta)["gain_params"]
    # common delay and common phase are the gauge: compare differences to antenna 0
    np.testing.assert_allclose(xs - xs[:1], x - x[:1], atol=1e-8)


# -- direction-dependent gains --------------------------------------------------------------
def _dd_case(rng, N=8, nt=1, nf=6, ncl=2):
    a1, a2 = np.triu_indices(N, 1)
    pos = rng.uniform(-40, 40, (N, 2))
    freqs = np.linspace(100e6, 115e6, nf)
    dirs = np.array([[0.05, 0.02], [-0.12, 0.08], [0.02, -0.1]])[:ncl]
    flux = np.array([1.0, 0.7, 0.5])[:ncl]
    M = np.stack([point_source_model(pos, a1, a2, freqs, dirs[c], flux[c])
                  for c in range(ncl)])[:, None].repeat(nt, axis=1)
    g = (1 + 0.1 * rng.standard_normal((ncl, N, nt, 1))) * np.exp(
        1j * rng.uniform(-0.5, 0.5, (ncl, N, nt, 1)))
    return a1, a2, M, g


def test_dd_noise_free_recovery(rng):
    a1, a2, M, g = _dd_case(rng, nt=2, ncl=3)
    d = dd_gains(a1, a2, 8, 2, 6, 3, freq_interval=6, model=M)(g)
    prob = gain_problem(d, M, a1, a2, 8, nclusters=3, noise=1.0, freq_interval=6)
    sol = solve_gains(prob, maxiter=100, gauge="none")
    assert sol.null_dim == prob.gauge_dim == 6
    est = align_phase(sol.gains, g)              # per cluster and cell
    assert np.abs(est - g).max() < 1e-8


def test_dd_noisy_recovery_at_crb():
    rng = np.random.default_rng(77)
    nt, sigma = 120, 0.1
    a1, a2, M1, g1 = _dd_case(rng, nt=1)
    M = np.repeat(M1, nt, axis=1)
    g = np.repeat(g1, nt, axis=2)
    op = dd_gains(a1, a2, 8, nt, 6, 2, freq_interval=6, model=M)
    d = op(g) + cnoise(rng, (nt, 6, a1.size), sigma)
    prob = gain_problem(d, M, a1, a2, 8, nclusters=2, noise=sigma, freq_interval=6)
    sol = solve_gains(prob, prob.theta_from_gains(np.ones(g.shape, complex)), maxiter=30,
                      gauge="none", check=False, cg_tol=1e-5)
    est = align_phase(sol.gains, g)
    mse = (np.abs(est - g) ** 2).mean(axis=(2, 3))            # (cluster, antenna)
    p1 = gain_problem(np.zeros((1, 6, a1.size), complex), M1, a1, a2, 8, nclusters=2, noise=sigma,
                      freq_interval=6)
    F = fisher_matrix(p1.posterior, p1.theta_from_gains(g1), include_prior=False)
    crb = antenna_variance(crb_covariance(np.asarray(F))).reshape(2, 8)
    assert abs((mse / crb).mean() - 1) < 0.10, mse / crb


def test_dd_degenerate_problem_is_reported(rng):
    a1, a2, M, g = _dd_case(rng, nf=1)           # point sources, one time, one channel
    d = dd_gains(a1, a2, 8, 1, 1, 2, model=M)(g)
    prob = gain_problem(d, M, a1, a2, 8, nclusters=2, noise=1.0)
    with pytest.raises(DegenerateCalibrationError, match="degenerate"):
        solve_gains(prob)
