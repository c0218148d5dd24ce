"""GP / Wiener filtering along frequency (linlim.gp): kernels against their delay-space
definitions, the filter against the dense closed form, adjoints, and the posterior
covariance on seeded draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from linlim.errors import InputError, ShapeError
from linlim.gp import (
    FrequencyKernel,
    WienerFilter,
    draw_gp,
    kernel_covariance,
    posterior_covariance,
    wiener_matrices,
)
from linlim.testing import dottest

FREQS = 1.2e8 + 1.5e5 * np.arange(20)
KERNELS = [FrequencyKernel("se", 250e-9, 3.0),
           FrequencyKernel("exponential", 150e-9, 2.0),
           FrequencyKernel("sinc", 400e-9, 1.5),
           FrequencyKernel("gauss-sinc", 400e-9, 1.0, tau_gauss=120e-9)]


@pytest.mark.parametrize("kern", KERNELS, ids=lambda k: k.kind)
def test_kernel_is_fourier_transform_of_its_delay_spectrum(kern):
    # k(dnu) = int P(tau) cos(2 pi tau dnu) dtau (P even), by quadrature (QAWF for the
    # infinite range); the delay-space definition is the independent truth
    upper = {"se": 20 * kern.tau, "sinc": kern.tau,
             "gauss-sinc": kern.tau + 20 * (kern.tau_gauss or 0)}.get(kern.kind)
    for dnu in (0.0, 3e5, 1.1e6, 2.9e6):
        if upper is not None:   # QAWO on the (effective) support
            val = 2 * quad(lambda t: kern.delay_psd(t), 0, upper, weight="cos",
                           wvar=2 * np.pi * dnu, limit=200)[0]
        elif dnu == 0.0:        # Lorentzian: closed-form integral of P
            val = 2 * quad(lambda t: kern.delay_psd(t), 0, 1e3 * kern.tau, limit=400)[0]
            val += 2 * kern.variance * (0.5 - np.arctan(1e3) / np.pi)
        else:                   # QAWF over the infinite range
            val = 2 * quad(lambda t: kern.delay_psd(t), 0, np.inf, weight="cos",
                           wvar=2 * np.pi * dnu, limlst=200)[0]
        assert val == pytest.approx(float(kern(dnu)), abs=2e-6 * kern.variance)
    C = kernel_covariance(FREQS, kern)
    assert np.allclose(C, C.T) and np.linalg.eigvalsh(C).min() > -1e-10 * kern.variance
    assert np.allclose(np.diag(C), kern.variance)


def test_se_kernel_formula():
    k = FrequencyKernel("se", 200e-9)
    assert float(k(1e6)) == pytest.approx(np.exp(-2 * np.pi ** 2 * (200e-9 * 1e6) ** 2))


def _dense_wiener(C, var):
    """Closed form on the unflagged channels u: W = C[:, u] (C[u, u] + N[u, u])^-1 P_u."""
    nf = C.shape[0]
    u = np.isfinite(var)
    W = np.zeros((nf, nf))
    W[:, u] = C[:, u] @ np.linalg.inv(C[np.ix_(u, u)] + np.diag(var[u]))
    return W


@pytest.mark.parametrize("kern", KERNELS, ids=lambda k: k.kind)
def test_matrices_match_closed_form(kern, rng):
    C = kern.covariance(FREQS)
    var = rng.uniform(0.05, 0.5, FREQS.size)
    W, R = wiener_matrices(C, 1 / var)
    Wd = C @ np.linalg.inv(C + np.diag(var))
    assert np.allclose(W, Wd, atol=1e-10, rtol=0)
    assert np.allclose(R, np.diag(var) @ np.linalg.inv(C + np.diag(var)), atol=1e-10)
    # flags: infinite variance
    var[[0, 7, 8]] = np.inf
    w = np.where(np.isfinite(var), 1 / np.where(np.isfinite(var), var, 1), 0.0)
    W, R = wiener_matrices(C, w)
    assert np.allclose(W, _dense_wiener(C, var), atol=1e-10, rtol=0)
    assert np.allclose(R, np.eye(FREQS.size) - _dense_wiener(C, var), atol=1e-10)
    assert np.all(W[:, [0, 7, 8]] == 0)                    # flagged data never used


def test_operator_applies_per_sample(rng):
    kern = KERNELS[3]
    C = kern.covariance(FREQS)
    shape = (3, FREQS.size, 4)
    w = rng.uniform(0.5, 3.0, shape) * (rng.random(shape) > 0.2)
    w[:, :, 0] = 2.0                                       # some rows share a matrix
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    for residual in (False, True):
        op = WienerFilter(shape, FREQS, kern, weights=w, residual=residual)
        y = op.matvec(x)
        for t in range(3):
            for b in range(4):
                var = np.where(w[t, :, b] > 0, 1 / np.where(w[t, :, b] > 0, w[t, :, b], 1),
                               np.inf)
                Wd = _dense_wiener(C, var)
                M = np.eye(FREQS.size) - Wd if residual else Wd
                assert np.allclose(y[t, :, b], M @ x[t, :, b], atol=1e-10)
        assert op.weight_rows.shape[0] == 1 + 3 * 3        # (t, b=0) rows are identical
        assert dottest(op, x, rng=rng).passed


def test_adjoint_is_transpose_not_self(rng):
    kern = KERNELS[0]
    C = kern.covariance(FREQS)
    var = rng.uniform(0.05, 0.5, FREQS.size)
    op = WienerFilter((FREQS.size,), FREQS, kern, noise_variance=var, axis=0,
                      dtype="float64")
    A = np.stack([op.rmatvec(e) for e in np.eye(FREQS.size)], axis=1)
    expected = np.linalg.inv(C + np.diag(var)) @ C       # W^H = (C + N)^-1 C
    assert np.allclose(A, expected, atol=1e-10)
    assert not np.allclose(A, op.matrices[0], atol=1e-3)  # coloured noise: W != W^H
    white = WienerFilter((FREQS.size,), FREQS, kern, noise_variance=np.full(20, 0.3),
                         axis=0, dtype="float64")
    assert np.allclose(white.matrices[0], white.matrices[0].T, atol=1e-10)


def test_foreground_error_matches_posterior_covariance():
    rng = np.random.default_rng(1414)
    freqs = 1.5e8 + 2e5 * np.arange(12)
    kern = FrequencyKernel("se", 300e-9, variance=4.0)
    C = kern.covariance(freqs)
    var = np.linspace(0.2, 1.0, freqs.size)
    var[5] = np.inf                                       # a flagged channel
    shape = (400, freqs.size, 10)                          # 4,000 independent spectra
    fg = draw_gp(C, shape, rng)
    noise = draw_gp(np.diag(np.where(np.isfinite(var), var, 1e6)), shape, rng)
    op = WienerFilter(shape, freqs, kern, noise_variance=var)
    err = np.moveaxis(op.matvec(fg + noise) - fg, 1, -1).reshape(-1, freqs.size)
    emp = err.T @ err.conj() / err.shape[0]                # E[e e^H]
    P = posterior_covariance(C, op.weight_rows[0])
    se = np.sqrt(np.outer(np.diag(P), np.diag(P)) / err.shape[0])
    z = np.abs(emp - P) / se
    assert z.max() < 5.0, z.max()
    assert abs(np.mean(np.diag(emp.real) / np.diag(P)) - 1) < 0.05
    # the test discriminates: the prior covariance is far off
    assert np.abs(emp - C).max() / se.max() > 20
    # the flagged channel is interpolated: its error is far below the prior variance
    assert P[5, 5] < 0.5 * C[5, 5]


def test_residual_removes_foreground():
    rng = np.random.default_rng(7)
    kern = FrequencyKernel("sinc", 200e-9, variance=1e4)
    shape = (50, FREQS.size, 4)
    fg = draw_gp(kern.covariance(FREQS), shape, rng)
    noise = draw_gp(np.eye(FREQS.size) * 0.01, shape, rng)
    R = WienerFilter(shape, FREQS, kern, weights=np.full(FREQS.size, 100.0), residual=True)
    res = R.matvec(fg + noise)
    # foreground power 1e4 -> residual comparable to the noise (variance 0.01)
    assert np.mean(np.abs(res) ** 2) < 0.02
    assert np.mean(np.abs(fg) ** 2) > 5e3


def test_bad_input():
    with pytest.raises(InputError, match="kind"):
        FrequencyKernel("matern", 1e-7)
    with pytest.raises(InputError, match="tau_gauss"):
        FrequencyKernel("gauss-sinc", 1e-7)
    with pytest.raises(InputError, match="tau"):
        FrequencyKernel("se", -1e-7)
    with pytest.raises(InputError, match="exactly one"):
        WienerFilter((2, 20), FREQS, KERNELS[0])
    with pytest.raises(ShapeError, match="channels"):
        WienerFilter((2, 19), FREQS, KERNELS[0], weights=np.ones(19))
    with pytest.raises(ShapeError, match="broadcast"):
        WienerFilter((2, 20, 3), FREQS, KERNELS[0], weights=np.ones((2, 20, 4)))
    with pytest.raises(InputError, match=">= 0"):
        WienerFilter((2, 20), FREQS, KERNELS[0], weights=-np.ones(20))
    with pytest.raises(ShapeError, match="covariance"):
        WienerFilter((2, 20), FREQS, np.eye(3), weights=np.ones(20))
