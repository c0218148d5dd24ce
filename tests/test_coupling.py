"""Mutual coupling: exact matrix form, the delay signature at |x_i - x_j| / c, and its
removal by a Gauss-Newton fit of the coupling coefficients."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.calibration.coupling import (
    C_LIGHT,
    CouplingPowerLaw,
    MutualCoupling,
    coupling_pair_model,
    pair_separations,
)
from linlim.errors import InputError, ShapeError
from linlim.filters import DelayTransform
from linlim.inference.gauss_newton import gauss_newton
from linlim.likelihood import GaussianLikelihood, LogPosterior
from linlim.operators import Select
from linlim.params import ParamBlock, Params
from linlim.telescope import hex_array


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_matches_explicit_matrix_product(rng):
    n, nt, nf = 4, 2, 3
    a1, a2 = np.triu_indices(n)
    E, V = 0.2 * _c(rng, n, n, nf), _c(rng, nt, nf, a1.size)
    M = np.zeros((nt, nf, n, n), complex)
    for b, (i, j) in enumerate(zip(a1, a2)):
        M[..., i, j] = V[..., b]
        M[..., j, i] = V[..., b].conj() if i != j else V[..., b]
    Ef = np.moveaxis(E, -1, 0)
    A = np.eye(n) + Ef
    full = (A @ M @ A.conj().swapaxes(-1, -2))[..., a1, a2]
    first = (M + Ef @ M + M @ Ef.conj().swapaxes(-1, -2))[..., a1, a2]
    np.testing.assert_allclose(MutualCoupling(a1, a2, n, nt, nf)((E, V)), full, rtol=1e-12)
    np.testing.assert_allclose(
        MutualCoupling(a1, a2, n, nt, nf, second_order=False)((E, V)), first, rtol=1e-12)


def test_physical_forms():
    pos = np.array([[0.0, 0, 0], [14.6, 0, 0], [0, 29.2, 0]])
    freqs = np.array([100e6, 150e6])
    E = CouplingPowerLaw(pos, freqs)(np.array([0.01, 2.0]))
    d = pair_separations(pos)
    assert np.all(E[np.arange(3), np.arange(3)] == 0)
    np.testing.assert_allclose(abs(E[0, 2]), 0.01 * (29.2 / 14.6) ** -2.0)
    np.testing.assert_allclose(np.angle(E[0, 1, 1] / E[0, 1, 0]),
                               -2 * np.pi * 50e6 * d[0, 1] / C_LIGHT % (2 * np.pi) - 2 * np.pi,
                               atol=1e-9)
    Ep = coupling_pair_model(pos, freqs)(np.array([1.0, 2j, 3.0]))
    np.testing.assert_allclose(Ep, Ep.transpose(1, 0, 2))
    np.testing.assert_allclose(Ep[1, 2], 3 * np.exp(-2j * np.pi * freqs * d[1, 2] / C_LIGHT))


def test_bad_input():
    a1, a2 = np.triu_indices(3)
    with pytest.raises(ShapeError, match=r"coupling must have shape \(Nant, Nant, Nfreq\)"):
        MutualCoupling(a1, a2, 3, 1, 4, coupling=np.zeros((3, 4, 4), complex))
    with pytest.raises(ShapeError, match="vis must have shape"):
        MutualCoupling(a1, a2, 3, 1, 4, vis=np.zeros((1, 4, 5), complex))
    with pytest.raises(InputError, match="once"):
        MutualCoupling([0, 1], [1, 0], 3, 1, 4)
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        MutualCoupling([0], [3], 3, 1, 4)


@pytest.fixture(scope="module")
def coupled_sim():
    rng = np.random.default_rng(7)
    lay = hex_array(2)                                   # 7 antennas, 14.6 m spacing
    pos = lay.antpos
    n = lay.nants
    freqs = np.linspace(100e6, 200e6, 128)
    a1, a2 = np.triu_indices(n)                          # with autos
    nt = 2
    # sky: a few flat-spectrum point sources; bright, smooth autos (receiver noise power)
    s_hat = rng.uniform(-0.3, 0.3, (5, 2))
    s_hat = np.column_stack([s_hat, np.sqrt(1 - (s_hat**2).sum(1))])
    flux = rng.uniform(1, 5, 5)
    b = pos[a2] - pos[a1]
    V = np.einsum("s,fbs->fb", flux, np.exp(2j * np.pi * freqs[:, None, None]
                                             * (b @ s_hat.T)[None] / C_LIGHT))
    V = np.broadcast_to(V, (nt,) + V.shape).copy()
    V[..., a1 == a2] += 200.0
    E_true = CouplingPowerLaw(pos, freqs, phase=np.exp(0.6j))(np.array([3e-3, 1.0]))
    Vc = MutualCoupling(a1, a2, n, nt, freqs.size, coupling=E_true)(V)
    sigma = 0.05
    data = Vc + sigma / np.sqrt(2) * (rng.standard_normal(V.shape)
                                      + 1j * rng.standard_normal(V.shape))
    return dict(pos=pos, freqs=freqs, a1=a1, a2=a2, V=V, Vc=Vc, data=data, sigma=sigma,
                n=n, nt=nt)


def test_coupling_signature_at_the_coupling_delay(coupled_sim):
    s = coupled_sim
    dt = DelayTransform(s["V"].shape, s["freqs"], axis=1)
    diff = np.abs(dt(s["Vc"] - s["V"])).mean(axis=0)     # (Ndelay, Nbl)
    tau = dt.delays
    d = pair_separations(s["pos"])[s["a1"], s["a2"]]
    dtau = tau[1] - tau[0]
    cross = np.flatnonzero(s["a1"] != s["a2"])
    for bl in cross:
        peak = abs(tau[np.argmax(diff[:, bl])])
        assert abs(peak - d[bl] / C_LIGHT) <= 1.5 * dtau, (bl, peak, d[bl] / C_LIGHT)


def test_fit_removes_coupling(coupled_sim):
    s = coupled_sim
    nf = s["freqs"].size
    pm = coupling_pair_model(s["pos"], s["freqs"])
    mc = MutualCoupling(s["a1"], s["a2"], s["n"], s["nt"], nf, vis=s["V"])
    params = Params([ParamBlock("coupling", pm.in_shape, "complex128")])
    model = mc @ pm @ Select(params.out_shape, params.out_dtype, 0) @ params
    post = LogPosterior(GaussianLikelihood(model, s["data"], sigma=s["sigma"]), params=params)
    res = gauss_newton(post, np.zeros(params.size), maxiter=20)
    assert res.success, res.message
    fit = model(res.x)
    dt = DelayTransform(s["V"].shape, s["freqs"], axis=1)
    tau = dt.delays
    d = pair_separations(s["pos"])[s["a1"], s["a2"]]
    before = np.abs(dt(s["data"] - s["V"]))
    after = np.abs(dt(s["data"] - fit))
    # noise level of the delay transform: dnu * sigma * sqrt(sum w^2) (rms-normalised taper)
    noise = dt.dnu * s["sigma"] * np.sqrt((dt.window**2).sum())
    for bl in np.flatnonzero(s["a1"] != s["a2"]):
        ks = np.flatnonzero(np.abs(np.abs(tau) - d[bl] / C_LIGHT) <= (tau[1] - tau[0]))
        assert before[:, ks, bl].max() > 30 * noise
        assert after[:, ks, bl].max() < 5 * noise, (bl, after[:, ks, bl].max() / noise)
    # and the residual is noise-like overall: chi2 per complex sample ~ 1
    r = s["data"] - fit
    assert abs((np.abs(r) ** 2).mean() / s["sigma"] ** 2 - 1) < 0.05
