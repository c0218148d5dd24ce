"""Preconditioned matrix-free Gauss-Newton at scale (>= 10^4 parameters).

An interferometer-like linear-Gaussian inverse problem: a real field on an N x N grid with a
stationary Gaussian-random-field prior of steep power-law power, observed as noisy samples of
the Fourier transform of the beam-tapered field at m random uv cells (complex data,
heteroscedastic noise). The MAP has a closed form in data space,

    x_map = S B^T (I + B S B^T)^-1 d_w,

(S the prior covariance, B the whitened real-stacked measurement matrix), computed here from
an explicit measurement matrix and numpy FFTs, independently of the operators and solvers
under test. A mildly nonlinear variant observes ``A (x + c x^2)``.

``benchmarks/bench_solver.py`` runs the same problems at 10^4-10^5 parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError
from linlim.inference.gauss_newton import gauss_newton
from linlim.inference.preconditioners import (
    JacobiPreconditioner,
    LowRankPreconditioner,
    PriorPreconditioner,
)
from linlim.likelihood import GaussianLikelihood, LogPosterior
from linlim.operators import LinearOperator, Operator
from linlim.priors import GaussianPrior, GRFPrior


class FourierSampling(LinearOperator):
    """``y = (F (b * x))[idx]``: unitary 2-D DFT of a beam-tapered real field, sampled.

    Notes: for real x, ``<A x, y> = Re sum conj(y) (F B x)[idx] = <x, Re(B F^H S^T y)>``,
    so the adjoint scatters ``y`` into the uv grid, inverse-transforms and keeps the real
    part times the beam.
    """

    _abstract = True  # test-local; dot-tested below

    def __init__(self, N, beam, idx):
        self.N, self.beam, self.idx = N, beam, idx
        super().__init__((N * N,), (idx.size,), np.float64, np.complex128)

    def _matvec(self, x):
        return np.fft.fft2((self.beam * x).reshape(self.N, self.N), norm="ortho").ravel()[
            self.idx]

    def _rmatvec(self, y):
        c = np.zeros(self.N * self.N, complex)
        c[self.idx] = y
        return self.beam * np.fft.ifft2(c.reshape(self.N, self.N), norm="ortho").real.ravel()


class QuadraticField(Operator):
    """``y = A (x + c x^2)`` (test-local): ``J v = A ((1 + 2 c x) v)``,
    ``J^H y = (1 + 2 c x) A^H y``."""

    _abstract = True

    def __init__(self, A, c):
        self.A, self.c = A, c
        super().__init__(A.in_shape, A.out_shape, np.float64, np.complex128)

    def _forward(self, x):
        return self.A.matvec(x + self.c * x * x)

    def _jvp(self, x, dx):
        return self.A.matvec((1 + 2 * self.c * x) * dx)

    def _vjp(self, x, y):
        return (1 + 2 * self.c * x) * self.A.rmatvec(y)


def grf_power(N, alpha=3.5, k0=0.02, amp=1.0):
    k = np.fft.fftfreq(N)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    return amp * (kk**2 + k0**2) ** (-alpha / 2) / (k0 ** (-alpha))


def make_problem(N=100, m=600, seed=0, nonlinear=0.0, extra=0, noise=0.3, alpha=3.5,
                 extra_prior=True):
    """The inverse problem. Returns ``(post, info)``; ``extra`` > 0 appends that many
    parameters with a plain diagonal Gaussian prior (a second block, e.g. nuisance
    amplitudes), entering as a constant offset per datum group."""
    rng = np.random.default_rng(seed)
    n = N * N
    P = grf_power(N, alpha=alpha)
    # a field drawn from the prior: x = F^H sqrt(P) F w
    w = rng.standard_normal((N, N))
    x_true = np.fft.ifft2(np.sqrt(P) * np.fft.fft2(w, norm="ortho"), norm="ortho").real.ravel()
    xx = (np.arange(N) - N / 2) / N
    beam = np.exp(-(xx[:, None] ** 2 + xx[None, :] ** 2) / (2 * 0.25**2)).ravel()
    # uv cells concentrated at low |k| (an interferometer's short baselines dominate)
    k = np.fft.fftfreq(N)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2).ravel()
    prob = np.exp(-kk / 0.12)
    idx = np.sort(rng.choice(n, size=m, replace=False, p=prob / prob.sum()))
    A = FourierSampling(N, beam, idx)
    sigma = rng.uniform(0.5, 2.0, m) * noise * np.sqrt(np.mean(np.abs(A.matvec(x_true)) ** 2))
    model = A if nonlinear == 0 else QuadraticField(A, nonlinear)
    d = model.forward(x_true) + sigma * (rng.standard_normal(m)
                                         + 1j * rng.standard_normal(m)) / np.sqrt(2)
    priors = [GRFPrior(P, (N, N), index=slice(0, n))]
    if extra:
        G = np.zeros((m, extra), complex)
        G[np.arange(m), np.arange(m) % extra] = 1.0
        model = WithOffsets(model, G)
        d = d + G @ rng.standard_normal(extra)
        if extra_prior:
            priors.append(GaussianPrior(0.0, sigma=np.full(extra, 3.0),
                                        index=slice(n, n + extra)))
    post = LogPosterior(GaussianLikelihood(model, d, sigma=sigma), priors)
    return post, dict(A=A, P=P, sigma=sigma, d=d, x_true=x_true, beam=beam, idx=idx, N=N)


class WithOffsets(Operator):
    """``theta (n + e,) -> core(theta[:n]) + G theta[n:]`` (test-local): a second parameter
    block of per-group offsets."""

    _abstract = True

    def __init__(self, core, G):
        self.core, self.G, self.n = core, G, core.in_shape[0]
        super().__init__((self.n + G.shape[1],), core.out_shape, np.float64, np.complex128)

    def _forward(self, t):
        return self.core.forward(t[: self.n]) + self.G @ t[self.n:]

    def _jvp(self, t, dt):
        return self.core.jvp(t[: self.n], dt[: self.n]) + self.G @ dt[self.n:]

    def _vjp(self, t, y):
        return np.concatenate([self.core.vjp(t[: self.n], y), (self.G.conj().T @ y).real])


def closed_form_map(info, chunk=200):
    """``S B^T (I + B S B^T)^-1 d_w`` from an explicit measurement matrix (linear case).

    ``B = sqrt(2 W) [Re A; Im A]`` (2m x n) is regenerated chunk by chunk from its formula
    (rows ``beam * exp(-2 pi i (u x + v y) / N) / N``), so memory stays at two chunks."""
    N, idx, beam, P, sigma, d = (info[k] for k in ("N", "idx", "beam", "P", "sigma", "d"))
    m = idx.size
    u, v = np.unravel_index(idx, (N, N))
    X, Y = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    sw = np.sqrt(2.0) / sigma
    starts = list(range(0, m, chunk))

    cache = {} if 2 * m * N * N * 8 <= 2**28 else None  # keep B when it fits in 256 MiB

    def rows(s):  # the Re and Im rows of B for data s .. s + chunk
        if cache is not None and s in cache:
            return cache[s]
        ph = np.exp(-2j * np.pi * (u[s:s + chunk, None] * X.ravel()[None]
                                   + v[s:s + chunk, None] * Y.ravel()[None]) / N) / N
        a = ph * (beam[None] * sw[s:s + chunk, None])
        out = np.vstack([a.real, a.imag])
        if cache is not None:
            cache[s] = out
        return out

    def cov(Bc):  # S B_c^T, (n, rows)
        return np.fft.ifft2(P[None] * np.fft.fft2(Bc.reshape(-1, N, N), norm="ortho"),
                            norm="ortho").real.reshape(Bc.shape[0], -1).T

    def order(s):  # positions of chunk s's rows in the stacked [Re; Im] ordering
        c = min(chunk, m - s)
        return np.concatenate([np.arange(s, s + c), m + np.arange(s, s + c)])

    K = np.zeros((2 * m, 2 * m))
    for s in starts:
        SBt = cov(rows(s))
        for r in starts:
            K[np.ix_(order(r), order(s))] = rows(r) @ SBt
    dw = np.concatenate([(sw * d).real, (sw * d).imag])
    w = np.linalg.solve(np.eye(2 * m) + 0.5 * (K + K.T), dw)
    x = np.zeros(N * N)
    for s in starts:
        x += cov(rows(s)) @ w[order(s)]
    return x


def test_measurement_operator_is_adjoint():
    from linlim.testing import dottest, gradcheck

    post, info = make_problem(N=16, m=40)
    assert dottest(info["A"]).passed
    q = QuadraticField(info["A"], 0.3)
    assert gradcheck(q, np.random.default_rng(1).standard_normal(256)).passed
    post, info = make_problem(N=16, m=40, nonlinear=0.3, extra=3)
    t = np.random.default_rng(2).standard_normal(post.size)
    assert gradcheck(post.likelihood.model, t).passed


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.slow
def test_preconditioning_cuts_cg_iterations_and_map_is_exact_1e4():
    # low S/N per datum and a steep prior (the 21 cm regime): the prior dominates H's
    # conditioning, so whitening it removes most of the CG work (figures at 10^4 and 10^5
    # parameters, and at high S/N, in benchmarks/bench_solver.py)
    post, info = make_problem(N=100, m=600)
    assert post.size == 10_000
    x_ref = closed_form_map(info)
    x0 = np.zeros(post.size)
    runs = {}
    for name, pc, cap in [("none", None, 1500), ("prior", PriorPreconditioner(), 4000),
                          ("lowrank", LowRankPreconditioner(rank=60), 4000)]:
        res = gauss_newton(post, x0, cg_tol=1e-12, maxiter=1, preconditioner=pc,
                           cg_maxiter=cap, cg_window=300)
        runs[name] = (res, int(res.history["cg_iters"][1]))
    # one GN step on a linear model is the MAP (to the CG tolerance)
    for name in ("prior", "lowrank"):
        assert _rel(runs[name][0].x, x_ref) < 1e-8, name
    n_none, n_prior, n_low = (runs[k][1] for k in ("none", "prior", "lowrank"))
    assert n_prior * 5 <= n_none, (n_none, n_prior)  # none stops at its cap of 1500
    assert _rel(runs["none"][0].x, x_ref) > 1e-8  # ... unconverged
    assert n_low * 2 < n_prior, (n_prior, n_low)
    # the Lanczos set-up (2 * 60 + 20 products) is counted in the J products
    assert runs["lowrank"][0].njvp == n_low + 140


@pytest.mark.slow
def test_nonlinear_and_two_block_problem_converges_with_preconditioning():
    # a mildly nonlinear field model plus 12 offset parameters without a prior (the
    # preconditioner's exact-diagonal fallback covers them)
    post, info = make_problem(N=100, m=600, nonlinear=0.05, extra=12, extra_prior=False)
    assert post.size == 10_012
    x0 = np.zeros(post.size)
    kw = dict(cg_tol="adaptive", maxiter=30, gtol=0.0, ftol=1e-15, xtol=0.0)
    pre = gauss_newton(post, x0, preconditioner=PriorPreconditioner(), **kw)
    g0 = np.abs(post.grad(x0)).max()
    assert np.abs(post.grad(pre.x)).max() < 1e-8 * g0
    lr = gauss_newton(post, x0, preconditioner=LowRankPreconditioner(rank=40), **kw)
    assert np.abs(post.grad(lr.x)).max() < 1e-8 * g0
    assert _rel(lr.x, pre.x) < 1e-7
    # the first Newton system at a fixed tolerance, with and without the prior
    one = dict(cg_tol=1e-8, maxiter=1, cg_window=300)
    p1 = gauss_newton(post, x0, preconditioner=PriorPreconditioner(), **one)
    n1 = gauss_newton(post, x0, cg_maxiter=1500, **one)
    assert 5 * p1.history["cg_iters"][1] <= n1.history["cg_iters"][1]


def test_jacobi_probe_and_supplied_diagonal_small(rng):
    post, info = make_problem(N=24, m=120, seed=3)
    x_ref = closed_form_map(info)
    x0 = np.zeros(post.size)
    for pc in (JacobiPreconditioner(method="probe", nprobe=16),
               JacobiPreconditioner(method="exact"), "prior", "lowrank", "jacobi-probe"):
        res = gauss_newton(post, x0, cg_tol=1e-13, maxiter=1, preconditioner=pc,
                           cg_maxiter=5000, cg_window=300)
        assert _rel(res.x, x_ref) < 1e-8, pc


def test_block_jacobi_and_lm_with_preconditioners():
    from linlim.inference.gauss_newton import levenberg_marquardt
    from linlim.inference.preconditioners import BlockJacobiPreconditioner

    post, info = make_problem(N=20, m=120, seed=5, extra=4, extra_prior=False)
    n = post.size
    x0 = np.zeros(n)
    ref = gauss_newton(post, x0, solver="dense", maxiter=1)
    bj = BlockJacobiPreconditioner([slice(400, 404), np.arange(0, 10)], rest="exact")
    res = gauss_newton(post, x0, cg_tol=1e-12, maxiter=1, preconditioner=bj, cg_maxiter=4000,
                       cg_window=300)
    assert _rel(res.x, ref.x) < 1e-8
    # the dense blocks equal H's blocks
    H = post.linearize_gn(x0)
    Hd = np.stack([H.matvec(e) for e in np.eye(n)], axis=1)
    r = np.random.default_rng(0).standard_normal(n)
    z = bj(r)
    np.testing.assert_allclose(Hd[400:404, 400:404] @ z[400:404], r[400:404], rtol=1e-10)
    np.testing.assert_allclose(np.diag(Hd)[20:30] * z[20:30], r[20:30], rtol=1e-10)
    lm = levenberg_marquardt(post, x0, preconditioner="prior", cg_tol=1e-12, maxiter=40,
                             cg_maxiter=4000)
    assert lm.success and _rel(lm.x, ref.x) < 1e-7


def test_rebuilt_preconditioner_refreshes_on_schedule():
    from linlim.inference.preconditioners import RebuiltPreconditioner

    post, info = make_problem(N=16, m=60, seed=2, nonlinear=0.1)
    x0 = np.zeros(post.size)
    seen = []

    def build(p, theta, H):  # the exact dense GN Hessian at theta, as a structured M would be
        seen.append(theta.copy())
        Hd = np.stack([H.matvec(e) for e in np.eye(p.size)], axis=1)
        C = np.linalg.cholesky(0.5 * (Hd + Hd.T))
        return lambda r: np.linalg.solve(C.T, np.linalg.solve(C, r))

    pc = RebuiltPreconditioner(build, refresh_every=2)
    res = gauss_newton(post, x0, preconditioner=pc, cg_tol=1e-12, maxiter=5, ftol=0, xtol=0)
    assert res.nit == 5
    assert pc.builds == len(seen) == 3  # at linearisations 0, 2, 4
    # an exact M at theta solves the first Newton system in one or two CG iterations
    assert res.history["cg_iters"][1] <= 2
    with pytest.raises(InputError):
        RebuiltPreconditioner(build, refresh_every=0)
