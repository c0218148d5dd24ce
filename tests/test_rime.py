"""Tests of linlim.rime: agreement with matvis, symmetries, kernels, chunking, caching."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError, ShapeError
from linlim.rime import RIME, RIMEIntensity, kernels_numba, kernels_numpy
from linlim.rime.simulate import evaluate_beams, simulate_vis
from linlim.testing import dottest, gradcheck

HERA = (21.428303826863015, -30.72152612068957, 1051.6900000218302)


def _enu(rng, nt, ns):
    v = rng.standard_normal((nt, 3, ns))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _astropy_enu(ra, dec, times, loc):
    """Topocentric unit vectors exactly as matvis' CoordinateRotationAstropy computes them."""
    import astropy.units as u
    from astropy.coordinates import AltAz, SkyCoord

    sc = SkyCoord(ra=ra * u.rad, dec=dec * u.rad, frame="icrs")
    out = np.empty((len(times), 3, ra.size))
    for t in range(len(times)):
        aa = sc.transform_to(AltAz(obstime=times[t], location=loc))
        el, az = aa.alt.rad, aa.az.rad
        out[t] = [np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)]
    return out


@pytest.fixture(scope="module")
def small_problem():
    """7 antennas, 50 sources (half below the horizon), 4 channels, 3 times, HERA site."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    rng = np.random.default_rng(20240601)
    loc = EarthLocation.from_geodetic(HERA[0] * u.deg, HERA[1] * u.deg, HERA[2] * u.m)
    na, ns = 7, 50
    antpos = rng.uniform(-40, 40, (na, 3))
    antpos[:, 2] = rng.uniform(-1, 1, na)
    ra = rng.uniform(0, 2 * np.pi, ns)
    dec = np.arcsin(rng.uniform(-1, 1, ns))
    freqs = np.linspace(100e6, 130e6, 4)
    times = Time(2459855.0 + np.arange(3) * 0.01, format="jd")
    flux = rng.uniform(0.5, 2.0, (ns, 4)) * (freqs / 1e8) ** -0.8
    return dict(loc=loc, antpos=antpos, ra=ra, dec=dec, freqs=freqs, times=times,
                flux=flux, enu=_astropy_enu(ra, dec, times, loc))


def _matvis(p, precision):
    matvis = pytest.importorskip("matvis")
    from pyuvdata.analytic_beam import AiryBeam

    return matvis.simulate_vis(
        ants={i: p["antpos"][i] for i in range(len(p["antpos"]))}, fluxes=p["flux"],
        ra=p["ra"], dec=p["dec"], freqs=p["freqs"], times=p["times"],
        beams=[AiryBeam(diameter=14.0)], telescope_loc=p["loc"], precision=precision)


def _cross_reldiff(V, ref, a1, a2):
    cross = a1 != a2
    d = np.abs(V - ref)[..., cross]
    return float(d.max() / np.abs(ref[..., cross]).max())


@pytest.mark.parametrize("precision,tol", [(2, 1e-10), (1, 1e-4)])
@pytest.mark.parametrize("method", ["gemm", "direct"])
def test_agrees_with_matvis(small_problem, precision, tol, method):
    from pyuvdata.analytic_beam import AiryBeam

    p = small_problem
    na = len(p["antpos"])
    ref = np.moveaxis(_matvis(p, precision), 0, 1)          # (Nt, Nf, Na^2)
    a1, a2 = np.divmod(np.arange(na * na), na)
    A = evaluate_beams([AiryBeam(diameter=14.0)], p["enu"], p["freqs"])
    dtype = "complex64" if precision == 1 else "complex128"
    rd = np.float32 if precision == 1 else np.float64
    op = RIME(p["enu"], p["antpos"], p["freqs"], a1, a2, dtype=dtype, method=method)
    V = op((p["flux"].astype(rd), A.astype(rd)))
    assert V.dtype == np.dtype(dtype)
    assert _cross_reldiff(V, ref, a1, a2) < tol
    # symmetries: V_ji = conj(V_ij); autos real and positive
    Vm = V.reshape(3, 4, na, na)
    np.testing.assert_allclose(Vm, np.conj(np.swapaxes(Vm, 2, 3)), rtol=0,
                               atol=10 * np.finfo(rd).eps * np.abs(Vm).max())
    autos = np.diagonal(Vm, axis1=2, axis2=3)
    assert np.all(autos.real > 0)
    assert np.abs(autos.imag).max() <= 10 * np.finfo(rd).eps * autos.real.max()


def test_simulate_vis_matches_matvis(small_problem):
    """End to end: linlim's own coordinates, beams and RIME against matvis."""
    from pyuvdata.analytic_beam import AiryBeam

    p = small_problem
    ref = _matvis(p, 2)
    V = simulate_vis({i: x for i, x in enumerate(p["antpos"])}, p["flux"], p["ra"],
                     p["dec"], p["freqs"], p["times"], [AiryBeam(diameter=14.0)], p["loc"])
    na = len(p["antpos"])
    a1, a2 = np.divmod(np.arange(na * na), na)
    assert V.shape == ref.shape
    assert _cross_reldiff(V, ref, a1, a2) < 1e-10


def test_polarized_matches_matvis(small_problem):
    matvis = pytest.importorskip("matvis")
    from pyuvdata.analytic_beam import AiryBeam

    p = small_problem
    kw = dict(fluxes=p["flux"], ra=p["ra"], dec=p["dec"], freqs=p["freqs"],
              times=p["times"], beams=[AiryBeam(diameter=14.0)], telescope_loc=p["loc"],
              polarized=True)
    ants = {i: x for i, x in enumerate(p["antpos"])}
    ref = matvis.simulate_vis(ants=ants, precision=2, **kw)
    V = simulate_vis(ants, **kw)
    assert V.shape == ref.shape
    assert np.abs(V - ref).max() <= 1e-10 * np.abs(ref).max()


def test_horizon_zero_flux_and_zero_sources(rng):
    enu = _enu(rng, 2, 5)
    enu[0, :, 0] = [1.0, 0.0, 0.0]    # exactly on the horizon: excluded
    enu[1, 2, :] = -np.abs(enu[1, 2, :])  # all below the horizon at t = 1
    antpos = rng.uniform(-10, 10, (3, 3))
    a1, a2 = np.triu_indices(3)
    freqs = np.array([150e6])          # one channel
    I = rng.uniform(1, 2, (5, 1))
    I[1] = 0.0
    A = np.ones((1, 2, 5, 1))
    for method in ("gemm", "direct"):
        op = RIME(enu, antpos, freqs, a1, a2, method=method)
        V = op((I, A))
        assert np.all(V[1] == 0)
        I2 = I.copy()
        I2[0] = 1e6                    # the horizon source does not contribute
        np.testing.assert_array_equal(op((I2, A)), V)
        # zero-flux source contributes nothing: compare with it removed
        keep = [0, 2, 3, 4]
        op2 = RIME(enu[:, :, keep], antpos, freqs, a1, a2, method=method)
        np.testing.assert_allclose(op2((I[keep], A[:, :, keep])), V, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("nf,df", [(1, None), (7, None), (40, 97.65625e3)])
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_kernel_twins(rng, nf, df, dtype):
    na, ns = 4, 9
    tau = rng.standard_normal((na, ns)) * 1e-7
    tau[:, 0] = 0.0                                # a source whose delay vanishes
    freqs = 1e8 + (np.arange(nf) * df if df else np.sort(rng.uniform(0, 5e7, nf)))
    tol = 1e-12 if dtype == "complex128" else 2e-5
    outs = []
    for kern in (kernels_numpy, kernels_numba):
        outs.append(kern.phasors(tau, freqs, df, 8, np.empty((nf, na, ns), dtype)))
    exact = np.exp(-2j * np.pi * freqs[:, None, None] * tau)
    for o in outs:
        np.testing.assert_allclose(o, exact, rtol=0, atol=tol)
    # fused Z / conj(Z) I kernel, two beams, two feeds
    A = rng.standard_normal((nf, 2, 2, 2, ns)) + 1j * rng.standard_normal((nf, 2, 2, 2, ns))
    I = rng.uniform(0, 1, (nf, ns))
    I[:, 1] = 0.0
    bidx = np.array([0, 1, 1, 0])
    res = []
    for kern in (kernels_numpy, kernels_numba):
        e = np.empty((nf, na, ns), dtype)
        z = np.empty((nf, na * 2, 2 * ns), dtype)
        w = np.empty_like(z)
        kern.zmatrix(tau, freqs, df, 8, A.astype(dtype), bidx, I, e, z, w)
        res.append((e, z, w))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=0, atol=5 * tol)
    # direct sum with autos (b1 == b2 and zero delay) and zero flux
    nbl = 3
    delay = rng.standard_normal((nbl, ns)) * 1e-7
    delay[0] = 0.0
    Ab = rng.standard_normal((2, ns, nf))
    I2 = rng.uniform(0, 1, (ns, nf))
    I2[2] = 0
    b1, b2 = np.array([0, 0, 1]), np.array([0, 1, 1])
    o1 = kernels_numpy.direct_sum(I2, Ab, b1, b2, delay, freqs, 0.5, np.empty((nf, nbl), dtype))
    o2 = kernels_numba.direct_sum(I2, Ab, b1, b2, delay, freqs, 0.5, np.empty((nf, nbl), dtype))
    np.testing.assert_allclose(o1, o2, rtol=0, atol=tol * np.abs(o1).max())
    assert np.all(np.abs(o1[:, 0].imag) <= tol * np.abs(o1).max())


def test_recurrence_accuracy_many_channels(rng):
    tau = rng.uniform(-1, 1, (5, 20)) * 300.0 / 299792458.0   # 300 m baselines
    freqs = 50e6 + np.arange(1024) * 0.1e6
    exact = np.exp(-2j * np.pi * freqs[:, None, None] * tau)
    out = kernels_numba.phasors(tau, freqs, 0.1e6, 16, np.empty((1024, 5, 20), complex))
    assert np.abs(out - exact).max() < 1e-12


def test_chunked_equals_unchunked_and_linearize(rng):
    enu = _enu(rng, 3, 30)
    antpos = rng.uniform(-30, 30, (6, 3))
    a1, a2 = np.triu_indices(6)
    freqs = np.linspace(100e6, 150e6, 11)
    x = (rng.standard_normal((30, 11)), rng.standard_normal((2, 3, 30, 11)), antpos)
    kw = dict(beam_index=[0, 1, 0, 1, 0, 1], fit_positions=True)
    big = RIME(enu, antpos, freqs, a1, a2, **kw)
    small = RIME(enu, antpos, freqs, a1, a2, memory_budget=1, **kw)
    assert len(big.engine.chunks) == 1 and len(small.engine.chunks) == 11
    np.testing.assert_allclose(small(x), big(x), rtol=0, atol=1e-13 * np.abs(big(x)).max())
    y, J = big.linearize(x)
    assert J.cache
    dx = (rng.standard_normal((30, 11)), rng.standard_normal((2, 3, 30, 11)),
          rng.standard_normal((6, 3)))
    dy = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
    np.testing.assert_allclose(J.matvec(dx), small.jvp(x, dx), rtol=1e-12, atol=1e-12)
    for a, b in zip(J.rmatvec(dy), small.vjp(x, dy)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())
    # no cache when the budget is too small: same products, recomputed
    nocache = RIME(enu, antpos, freqs, a1, a2, cache_budget=0, **kw)
    _, J0 = nocache.linearize(x)
    assert J0.cache is None
    np.testing.assert_allclose(J0.matvec(dx), J.matvec(dx), rtol=1e-12, atol=1e-12)


def test_intensity_operator_matches_rime(rng):
    enu = _enu(rng, 2, 20)
    antpos = rng.uniform(-30, 30, (5, 3))
    a1, a2 = np.triu_indices(5)
    freqs = np.linspace(100e6, 150e6, 6)
    A = rng.uniform(0, 1, (1, 2, 20, 6))
    I = rng.standard_normal((20, 6))    # negative intensities are fine (no sqrt)
    ref = RIME(enu, antpos, freqs, a1, a2)((I, A))
    for method, cache in (("gemm", None), ("gemm", 0), ("direct", None)):
        K = RIMEIntensity(enu, antpos, freqs, a1, a2, beam=A, method=method,
                          cache_budget=cache)
        for _ in range(2):   # second call uses the cache
            np.testing.assert_allclose(K.matvec(I), ref, rtol=0, atol=1e-13)
        assert dottest(K).passed


def test_direct_used_for_few_baselines(rng):
    enu = _enu(rng, 1, 10)
    antpos = rng.uniform(-30, 30, (40, 3))
    bidx = np.arange(40) % 2     # two beams: no unique-baseline path
    op = RIME(enu, antpos, np.array([1e8, 1.1e8]), [0, 1], [5, 7], beam_index=bidx)
    assert op.method == "direct"
    # one beam: the two baselines by the unique-baseline products (phasors of 4 antennas)
    one = RIME(enu, antpos, np.array([1e8, 1.1e8]), [0, 1], [5, 7])
    assert one.method == "gemm" and one.engine.ub_products
    x1 = (np.ones((10, 2)), np.ones((1, 1, 10, 2)))
    np.testing.assert_allclose(one(x1), RIME(enu, antpos, np.array([1e8, 1.1e8]), [0, 1],
                                             [5, 7], method="direct")(x1), rtol=1e-13)
    a1, a2 = np.triu_indices(40)
    assert RIME(enu, antpos, np.array([1e8]), a1, a2).method == "gemm"
    assert gradcheck(op, rng=1).passed   # Jacobians use the GEMM form


def test_input_errors(rng):
    enu = _enu(rng, 2, 4)
    antpos = np.zeros((3, 3))
    with pytest.raises(ShapeError, match="enu"):
        RIME(enu[:, :2], antpos, [1e8], [0], [1])
    with pytest.raises(InputError, match="ant2"):
        RIME(enu, antpos, [1e8], [0], [3])
    with pytest.raises(InputError, match="method"):
        RIME(enu, antpos, [1e8], [0], [1], method="fft")
    with pytest.raises(InputError, match="direct"):
        RIME(enu, antpos, [1e8], [0], [1], method="direct", polarized=True)
    op = RIME(enu, antpos, [1e8], [0], [1])
    with pytest.raises(ShapeError):
        op((np.ones((4, 2)), np.ones((1, 2, 4, 1))))


def test_simulate_vis_accepts_linlim_beams(small_problem):
    """A linlim AiryBeam gives the same visibilities as pyuvdata's AiryBeam (identical
    beams: matvis' |A_i||A_j| equals linlim's A_i A_j)."""
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.beam import AiryBeam as LinlimAiry

    p = small_problem
    ants = {i: x for i, x in enumerate(p["antpos"])}
    args = (p["flux"], p["ra"], p["dec"], p["freqs"], p["times"])
    ref = simulate_vis(ants, *args, [AiryBeam(diameter=14.0)], p["loc"])
    lin = LinlimAiry(np.zeros(1), np.zeros(1), p["freqs"], diameter=14.0)
    V = simulate_vis(ants, *args, [lin], p["loc"])
    assert np.abs(V - ref).max() <= 1e-10 * np.abs(ref).max()


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_herk_kernel_twins(rng, dtype):
    """Signed-column kernels: numba twins equal the NumPy reference, and the split gives
    ``Z diag(w) Z^H`` (negative, zero and NaN weights; two beams, two feeds)."""
    na, ns, nf, df = 4, 9, 5, 97.65625e3
    tau = rng.standard_normal((na, ns)) * 1e-7
    freqs = 1e8 + np.arange(nf) * df
    A = (rng.standard_normal((nf, 2, 2, 2, ns))
         + 1j * rng.standard_normal((nf, 2, 2, 2, ns))).astype(dtype)
    bidx = np.array([0, 1, 1, 0])
    w = rng.standard_normal((nf, ns))
    w[:, 2] = 0.0
    w[1] = np.abs(w[1])            # a channel with no negative weight
    tol = 1e-12 if dtype == "complex128" else 2e-5
    res = []
    for kern in (kernels_numpy, kernels_numba):
        order = np.empty((nf, ns), np.int64)
        npos, nneg = np.empty(nf, np.int64), np.empty(nf, np.int64)
        kern.signmap(w, order, npos, nneg)
        offp = np.r_[0, np.cumsum(npos)[:-1]] * 16     # R Nax = 8 x 2 values per source
        offn = np.r_[0, np.cumsum(nneg)[:-1]] * 16
        pos = np.zeros(npos.sum() * 16, dtype)
        neg = np.zeros(nneg.sum() * 16, dtype)
        e = np.empty((nf, na, ns), dtype)
        kern.zcols(tau, freqs, df, 4, A, bidx, w, order, npos, nneg, offp, offn, e, pos, neg)
        res.append((order, npos, nneg, e, pos, neg))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=0, atol=5 * tol)
    order, npos, nneg, e, pos, neg = res[1]
    assert list(npos) == list((w > 0).sum(1)) and list(nneg) == list((w < 0).sum(1))
    z = np.empty((nf, 8, 2 * ns), dtype)
    kernels_numpy.zmatrix(tau, freqs, df, 4, A, bidx, None, None, z, None)
    for f in range(nf):
        up = pos[offp[f]:offp[f] + 8 * 2 * npos[f]].reshape(8, -1)
        un = neg[offn[f]:offn[f] + 8 * 2 * nneg[f]].reshape(8, -1)
        ref = (z[f] * np.tile(w[f], 2)) @ z[f].conj().T
        np.testing.assert_allclose(up @ up.conj().T - un @ un.conj().T, ref, rtol=0,
                                   atol=20 * tol * np.abs(ref).max())
    # phasor-only twin and the Hermitian-form kernel
    outs = []
    t = rng.standard_normal(e.shape).astype(dtype)
    for kern in (kernels_numpy, kernels_numba):
        p2, n2 = np.zeros_like(pos[: npos.sum() * na]), np.zeros_like(neg[: nneg.sum() * na])
        kern.ecols(e, w, order, npos, nneg, offp // 4, offn // 4, p2, n2)
        q = kern.qform(e, t * 1j + t, np.empty((nf, ns), e.real.dtype))
        outs.append((p2, n2, q))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=0, atol=5 * tol * max(np.abs(a).max(), 1))
    # NaN weights propagate instead of vanishing
    w[0, 0] = np.nan
    kernels_numba.signmap(w, order, npos, nneg)
    assert npos[0] == 1 + (w[0, 1:] > 0).sum()


def test_lean_path_equals_general_path(rng):
    """One feed and one beam uses phasors only (ZHERK / ZTRMM); it equals the general
    per-antenna path (the same beam given twice through ``beam_index``), for the forward,
    jvp, vjp and the cached, lean-cached and uncached Jacobian; negative intensities."""
    enu = _enu(rng, 2, 25)
    antpos = rng.uniform(-30, 30, (5, 3))
    a1, a2 = np.divmod(np.arange(25), 5)     # all ordered pairs: both triangles, autos
    freqs = np.linspace(100e6, 150e6, 7)
    I = rng.standard_normal((25, 7))
    A1 = rng.uniform(-1, 1, (1, 2, 25, 7))
    lean = RIME(enu, antpos, freqs, a1, a2, memory_budget=3000)
    assert lean._lean and len(lean.engine.chunks) > 1
    gen = RIME(enu, antpos, freqs, a1, a2, beam_index=[0, 1, 0, 1, 0], memory_budget=3000)
    assert not gen._lean
    A2 = np.concatenate([A1, A1])
    V = lean((I, A1))
    np.testing.assert_allclose(V, gen((I, A2)), rtol=0, atol=1e-12 * np.abs(V).max())
    dI, dA = rng.standard_normal(I.shape), rng.standard_normal(A1.shape)
    ref_jvp = gen.jvp((I, A2), (dI, np.concatenate([dA, dA])))
    dy = rng.standard_normal(V.shape) + 1j * rng.standard_normal(V.shape)
    gI, gA = gen.vjp((I, A2), dy)
    for budget in (None, 0, 25 * 7 * 5 * 16 * 2):     # full, none, phasors only
        op = RIME(enu, antpos, freqs, a1, a2, memory_budget=3000, cache_budget=budget)
        y, J = op.linearize((I, A1))
        assert (J.cache is None) == (budget == 0)
        np.testing.assert_allclose(y, V, rtol=0, atol=1e-12 * np.abs(V).max())
        for jv in (J.matvec((dI, dA)), op.jvp((I, A1), (dI, dA))):
            np.testing.assert_allclose(jv, ref_jvp, rtol=0, atol=1e-12 * np.abs(ref_jvp).max())
        for lI, lA in (J.rmatvec(dy), op.vjp((I, A1), dy)):
            np.testing.assert_allclose(lI, gI, rtol=0, atol=1e-12 * np.abs(gI).max())
            np.testing.assert_allclose(lA[0], (gA[0] + gA[1]), rtol=0,
                                       atol=1e-12 * np.abs(gA).max())
    assert gradcheck(lean, rng=2).passed
    assert dottest(lean.linearize((I, A1))[1]).passed


def test_source_blocks_accumulate(rng, monkeypatch):
    """Several source blocks (ZHERK updates accumulated; the gradient's smaller blocks)
    equal one block."""
    import linlim.rime.engine as engine_mod

    enu = _enu(rng, 2, 30)
    antpos = rng.uniform(-30, 30, (4, 3))
    a1, a2 = np.triu_indices(4)
    freqs = np.linspace(100e6, 150e6, 3)
    x = (rng.standard_normal((30, 3)), rng.uniform(-1, 1, (2, 2, 30, 3)))
    dx = (rng.standard_normal((30, 3)), rng.standard_normal((2, 2, 30, 3)))
    kw = dict(beam_index=[0, 1, 1, 0])
    ref = RIME(enu, antpos, freqs, a1, a2, **kw)
    lean = RIME(enu, antpos, freqs, a1, a2)
    V, Vl = ref(x), lean((x[0], x[1][:1]))
    Jl = lean.linearize((x[0], x[1][:1]))[1].matvec((dx[0], dx[1][:1]))
    dy = rng.standard_normal(Vl.shape) + 1j * rng.standard_normal(Vl.shape)
    gl = lean.vjp((x[0], x[1][:1]), dy)
    monkeypatch.setattr(engine_mod, "SRC_BLOCK", 4)
    monkeypatch.setattr(engine_mod, "GRAD_SRC_BLOCK", 3)
    assert len(RIME(enu, antpos, freqs, a1, a2).engine.source_blocks(15)) == 4
    assert len(RIME(enu, antpos, freqs, a1, a2).engine.source_blocks(15, grad=True)) == 5
    np.testing.assert_allclose(RIME(enu, antpos, freqs, a1, a2, **kw)(x), V, rtol=0,
                               atol=1e-13 * np.abs(V).max())
    small = RIME(enu, antpos, freqs, a1, a2)
    np.testing.assert_allclose(small((x[0], x[1][:1])), Vl, rtol=0, atol=1e-13 * np.abs(Vl).max())
    J = small.linearize((x[0], x[1][:1]))[1]
    np.testing.assert_allclose(J.matvec((dx[0], dx[1][:1])), Jl, rtol=0,
                               atol=1e-13 * np.abs(Jl).max())
    for g in (small.vjp((x[0], x[1][:1]), dy), J.rmatvec(dy)):
        for a, b in zip(g, gl):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


@pytest.mark.parametrize("planar", [True, False])
def test_nufft_equals_gemm(rng, planar):
    """Type-3 NUFFT over unique baselines (redundant pairs, conjugate pairs, autos) equals
    the exact GEMM method to ~1e-11, for the forward, jvp, vjp and RIMEIntensity; its
    Jacobian passes the dot test and the gradient check."""
    pytest.importorskip("finufft", reason="finufft not installed (pip install linlim[nufft])")
    antpos = rng.uniform(-6, 6, (6, 3))                    # small grids keep the test fast
    antpos[:, 2] = 0.0 if planar else rng.uniform(-1, 1, 6)
    antpos[3] = antpos[0] + (antpos[2] - antpos[1])      # a redundant parallelogram
    a1, a2 = np.divmod(np.arange(36), 6)
    enu, freqs = _enu(rng, 2, 40), np.linspace(100e6, 150e6, 5)
    I, A = rng.standard_normal((40, 5)), rng.uniform(-1, 1, (1, 2, 40, 5))
    g = RIME(enu, antpos, freqs, a1, a2, method="gemm")
    n = RIME(enu, antpos, freqs, a1, a2, method="nufft")
    ub = n.engine.unique_baselines
    assert ub.planar == planar and ub.n == 14              # 15 pairs - 2 redundant + zero
    V = g((I, A))
    tol = 1e-10 * np.abs(V).max()
    np.testing.assert_allclose(n((I, A)), V, rtol=0, atol=tol)
    dx = (rng.standard_normal(I.shape), rng.standard_normal(A.shape))
    np.testing.assert_allclose(n.jvp((I, A), dx), g.jvp((I, A), dx), rtol=0, atol=1e-9)
    dy = rng.standard_normal(V.shape) + 1j * rng.standard_normal(V.shape)
    for u, w in zip(n.vjp((I, A), dy), g.vjp((I, A), dy)):
        np.testing.assert_allclose(u, w, rtol=0, atol=1e-10 * np.abs(w).max())
    K = RIMEIntensity(enu, antpos, freqs, a1, a2, beam=A, method="nufft")
    np.testing.assert_allclose(K.matvec(I), V, rtol=0, atol=tol)
    assert dottest(K).passed
    assert gradcheck(n, rng=3).passed
    assert dottest(n.linearize((I, A))[1]).passed


def test_nufft_limits_and_auto(rng):
    pytest.importorskip("finufft", reason="finufft not installed (pip install linlim[nufft])")
    enu = _enu(rng, 1, 5)
    antpos = rng.uniform(-10, 10, (3, 3))
    with pytest.raises(InputError, match="nufft"):
        RIME(enu, antpos, [1e8], [0], [1], method="nufft", polarized=True)
    with pytest.raises(InputError, match="nufft"):
        RIME(enu, antpos, [1e8], [0], [1], method="nufft", beam_index=[0, 1, 0])
    with pytest.raises(InputError, match="fit_positions"):
        RIME(enu, antpos, [1e8], [0], [1], method="nufft", fit_positions=True)
    # auto follows the cost model: GEMMs at 10^3 sources, the NUFFT at 10^6 on a
    # 37-antenna hexagon (many sources, few unique baselines); never with positions fitted
    hexpos = np.array([[(c - (n - 1) / 2) * 14.6, r * 14.6 * np.sqrt(3) / 2, 0.0]
                       for r in range(-3, 4) for n in [7 - abs(r)] for c in range(n)])
    a1, a2 = np.triu_indices(37)
    freqs = np.linspace(100e6, 200e6, 4)
    for ns, expect in ((1000, "gemm"), (1000000, "nufft")):
        op = RIME(_enu(rng, 1, ns), hexpos, freqs, a1, a2, ub=False)
        c = op.engine.costs()
        assert op.method == min(c, key=c.get) == expect
    # with the unique-baseline products (64 classes here) the exact method is cheaper
    # than the NUFFT's spreading (~169 grid points per source at 1e-12) at any size
    op = RIME(_enu(rng, 1, 1000000), hexpos, freqs, a1, a2)
    c = op.engine.costs()
    assert op.method == min(c, key=c.get) == "gemm" and op.engine.ub_products
    assert RIME(_enu(rng, 1, 1000000), hexpos, freqs, a1, a2,
                fit_positions=True).method == "gemm"


def test_fixed_inputs_are_the_fix_input_composite(rng):
    """Fixed positions and fixed beams are ``FixInput`` of the fuller RIME: the
    ``fit_positions=False`` RIME equals ``FixInput(RIME(fit_positions=True), 2, antpos)``
    (forward, jvp, vjp), and ``RIMEIntensity`` is ``FixInput(RIME, 1, beam)`` (products
    and adjoint), with two beams and with one (the lean path)."""
    from linlim.operators import FixInput

    enu = _enu(rng, 2, 25)
    antpos = rng.uniform(-30, 30, (4, 3))
    a1, a2 = np.triu_indices(4)
    freqs = np.linspace(100e6, 150e6, 4)
    for nbeam, kw in ((2, dict(beam_index=[0, 1, 1, 0])), (1, {})):
        A = rng.uniform(0.1, 1, (nbeam, 2, 25, 4))
        I = rng.standard_normal((25, 4))
        dx = (rng.standard_normal((25, 4)), rng.standard_normal(A.shape))
        fixed = RIME(enu, antpos, freqs, a1, a2, method="gemm", **kw)
        comp = FixInput(RIME(enu, antpos, freqs, a1, a2, fit_positions=True, **kw), 2,
                        antpos, name="antpos")
        V = fixed((I, A))
        tol = 1e-12 * np.abs(V).max()
        np.testing.assert_allclose(comp((I, A)), V, rtol=0, atol=tol)
        np.testing.assert_allclose(comp.jvp((I, A), dx), fixed.jvp((I, A), dx), rtol=0,
                                   atol=tol)
        dy = rng.standard_normal(V.shape) + 1j * rng.standard_normal(V.shape)
        for a, b in zip(comp.vjp((I, A), dy), fixed.vjp((I, A), dy)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
        K = RIMEIntensity(enu, antpos, freqs, a1, a2, beam=A, method="gemm", **kw)
        beam_fixed = FixInput(fixed, 1, A, name="beam")
        np.testing.assert_allclose(K.matvec(I), beam_fixed(I), rtol=0, atol=tol)
        np.testing.assert_allclose(K.rmatvec(dy), beam_fixed.vjp(I, dy), rtol=0,
                                   atol=1e-12 * np.abs(K.rmatvec(dy)).max())
        assert dottest(K).passed


@pytest.mark.parametrize("df", [None, 2e6])
def test_ub_kernel_twins(rng, df):
    """Unique-baseline kernels: numba twins equal the NumPy reference, ``ubform`` is the
    adjoint of ``ubvis`` under ``Re <., .>``, and ``ubphasors`` gives ``ubvis`` by a
    product."""
    na, ns, nf = 5, 1100, 20       # more than one 512-source block, a ragged tail
    tau = rng.standard_normal((na, ns)) * 1e-7
    freqs = 1e8 + (np.arange(nf) * df if df else np.sort(rng.uniform(0, 5e7, nf)))
    ui, uj = np.array([0, 1, 3, 2]), np.array([1, 0, 4, 2])   # incl. an auto (2, 2)
    w = rng.standard_normal((nf, ns))
    D = rng.standard_normal((nf, 4)) + 1j * rng.standard_normal((nf, 4))
    outs = []
    for kern in (kernels_numpy, kernels_numba):
        v = kern.ubvis(tau, freqs, df, 8, w, ui, uj, np.zeros((nf, 4), complex))
        q = kern.ubform(tau, freqs, df, 8, D, ui, uj, np.empty((nf, ns)))
        P = kern.ubphasors(tau, freqs, df, 8, ui, uj, np.empty((nf, 8, ns)))
        outs.append((v, q, P[:, :4] + 1j * P[:, 4:]))
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * np.abs(a).max())
    e = np.exp(-2j * np.pi * freqs[:, None, None] * tau)
    exact = np.einsum("fus,fs->fu", e[:, ui] * np.conj(e[:, uj]), w)
    np.testing.assert_allclose(outs[1][0], exact, rtol=0, atol=1e-12 * np.abs(exact).max())
    v, q, P = outs[1]
    assert np.isclose(np.sum(w * q), 2 * np.real(np.vdot(D, v)), rtol=1e-12)
    np.testing.assert_allclose(np.einsum("fus,fs->fu", P, w), v, rtol=0,
                               atol=1e-12 * np.abs(v).max())


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_unique_baseline_path_equals_herk(rng, dtype):
    """On a redundant array (hexagon, baselines in both orientations and one repeated),
    the unique-baseline products equal the ZHERK/ZTRMM ones: forward, jvp, vjp, the
    ``linearize`` Jacobian (cached and not); and they refuse what they cannot do
    (``"auto"`` picking them on the 37-antenna hexagon: ``test_nufft_limits_and_auto``)."""
    from linlim.rime.engine import RimeEngine

    sep = 14.6
    antpos = np.array([[(c - (n - 1) / 2) * sep, r * sep * np.sqrt(3) / 2, 0.0]
                       for r in (-1, 0, 1) for n in [3 - abs(r) + 1] for c in range(n)])
    na = len(antpos)
    a1, a2 = np.triu_indices(na)
    a1, a2 = np.r_[a1, 3, 5], np.r_[a2, 1, 5]      # a reversed and a repeated baseline
    enu = _enu(rng, 2, 40)
    freqs = np.linspace(100e6, 130e6, 7)
    A = rng.uniform(0.1, 1, (1, 2, 40, 7)) * np.exp(1j * rng.uniform(0, 1, (1, 2, 40, 7)))
    I = rng.standard_normal((40, 7))                 # negative intensities are fine
    rd = np.float32 if dtype == "complex64" else np.float64
    x = (I.astype(rd), A.astype(dtype))
    dx = (rng.standard_normal(I.shape).astype(rd),
          (rng.standard_normal(A.shape) + 1j).astype(dtype))
    kw = dict(beam_dtype=dtype, dtype=dtype)
    ub = RIME(enu, antpos, freqs, a1, a2, ub=True, **kw)
    ref = RIME(enu, antpos, freqs, a1, a2, ub=False, **kw)
    assert ub.engine.ub_products and not ref.engine.ub_products
    tol = 1e-12 if dtype == "complex128" else 2e-5
    V = ref(x)
    np.testing.assert_allclose(ub(x), V, rtol=0, atol=tol * np.abs(V).max())
    dy = (rng.standard_normal(V.shape) + 1j * rng.standard_normal(V.shape)).astype(dtype)
    Jv = ref.jvp(x, dx)
    np.testing.assert_allclose(ub.jvp(x, dx), Jv, rtol=0, atol=tol * np.abs(Jv).max())
    y, J = ub.linearize(x)       # cached unique-baseline phasors
    J0 = RIME(enu, antpos, freqs, a1, a2, cache_budget=0, ub=True, **kw).linearize(x)[1]
    assert sorted(J.cache) == [0, 1] and J0.cache is None
    np.testing.assert_allclose(y, V, rtol=0, atol=tol * np.abs(V).max())
    for Jx in (J, J0):
        np.testing.assert_allclose(Jx.matvec(dx), Jv, rtol=0, atol=tol * np.abs(Jv).max())
    for g in (ub.vjp(x, dy), J.rmatvec(dy), J0.rmatvec(dy)):
        for a, b in zip(g, ref.vjp(x, dy)):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())
    if dtype == "complex128":
        assert dottest(J).passed and dottest(J0).passed
        assert gradcheck(ub, rng=3).passed
    with pytest.raises(InputError, match="ub"):
        RimeEngine(enu, antpos, freqs, a1, a2, nfeed=2, ub=True)
    # "auto": yes on a 37-antenna hexagon (64 classes for 703 baselines), no on this
    # 10-antenna one (15 classes for 55) nor on a random array
    hexpos = np.array([[(c - (n - 1) / 2) * sep, r * sep * np.sqrt(3) / 2, 0.0]
                       for r in range(-3, 4) for n in [7 - abs(r)] for c in range(n)])
    h1, h2 = np.triu_indices(37)
    assert RIME(enu, hexpos, freqs, h1, h2).engine.ub_products
    assert not RIME(enu, antpos, freqs, a1, a2).engine.ub_products
    rnd = rng.uniform(-50, 50, (37, 3))
    assert not RIME(enu, rnd, freqs, h1, h2).engine.ub_products
