"""HMC over the joint hierarchical posterior: band powers, signal, beam, gains, foregrounds.

Parameters ``x = (theta_r, w, u)``:

* ``theta_r``: every non-signal parameter of the joint fit (point sources, beam, gains,
  diffuse), with the fit's priors;
* ``w``: the signal, partially non-centred: the fit's whitened coefficients are
  ``zeta_i = exp(a_i u_b(i) / 2) w_i`` with ``zeta ~ N(0, exp(u_b))``, i.e.
  ``c ~ N(0, S(P))``. ``a_i = 1`` is the non-centred form (good for coefficients the
  data barely constrain), ``a_i = 0`` the centred one (good for well-measured ones);
  ``a_i = 1 / (1 + lambda_i)`` with ``lambda_i`` the coefficient's data-to-prior
  precision ratio (Papaspiliopoulos, Roberts & Skold 2007), so neither a funnel nor its
  inverse slows the sampler;
* ``u_b = ln(P_b / P0_b)``: the band powers as log hyperparameters (prior ``N(0, 10^2)``,
  effectively flat).

The likelihood is the Gauss-Newton (Laplace) expansion of the joint likelihood at the MAP
``phi_hat``: ``ln L = g . d - d^T F d / 2`` with ``d = phi - phi_hat``, ``g`` the likelihood
gradient at the MAP and ``F`` the structured Fisher matrix
(:class:`~linlim.pipelines.structured.StructuredFisher`; one product costs
``O(Nf Npix^2)``). This is exact for the linear parameters (signal, diffuse) and
linearises the beam, gains and sources about the MAP, where their posterior is close to
Gaussian (their errors are small compared with the scale on which the model bends).

The metric is low-rank plus diagonal (:class:`~linlim.inference.metric.LowRankMetric`): the
diagonal of the Gauss-Newton Hessian in these coordinates at the mode, and its leading
eigen-directions after Jacobi whitening (a randomised eigendecomposition from Hessian
products, never an ``n x n`` factorisation).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from ..inference.metric import LowRankMetric
from .structured import prior_matvec

__all__ = ["HierarchicalLaplacePosterior", "lowrank_metric", "dense_hessian", "dense_metric"]


class HierarchicalLaplacePosterior:
    """``log p(x)`` and its gradient (see the module docstring).

    Parameters
    ----------
    SF : StructuredFisher
        Data Fisher at the MAP (theta order).
    prior : PriorHessian
        The fit's prior precision (its signal part is ignored: ``w`` has its own prior).
    theta_hat : ndarray (n,)
        The joint MAP.
    grad_loglik : ndarray (n,)
        Likelihood gradient at the MAP.
    grad_logprior : ndarray (n,)
        Prior gradient at the MAP (Gaussian priors: exact quadratic expansion).
    sig : ndarray of int
        Signal indices in ``theta``.
    band : ndarray (Nsig,) int
        Band of each signal coefficient.
    nbands : int
    u_sigma : float
        Prior sd of each ``u_b``.
    centring : ndarray (Nsig,), optional
        ``a_i`` in [0, 1] (default 1: non-centred).
    """

    def __init__(self, SF: Any, prior: Any, theta_hat: np.ndarray, grad_loglik: np.ndarray,
                 grad_logprior: np.ndarray, sig: np.ndarray, band: np.ndarray, nbands: int,
                 u_sigma: float = 10.0, centring: np.ndarray | None = None) -> None:
        self.SF, self.prior = SF, prior
        self.theta_hat = np.asarray(theta_hat, float)
        n = self.theta_hat.size
        self.sig = np.asarray(sig)
        self.rest = np.setdiff1d(np.arange(n), self.sig)
        self.band, self.nb = np.asarray(band), int(nbands)
        self.g = np.asarray(grad_loglik, float)
        self.gp = np.asarray(grad_logprior, float)
        self.u_sigma = float(u_sigma)
        self.nr, self.ns = self.rest.size, self.sig.size
        self.a = np.ones(self.ns) if centring is None else np.clip(
            np.asarray(centring, float), 0.0, 1.0)
        self.size = self.nr + self.ns + self.nb
        self.xp = np
        self._band_matrix = (self.band[:, None] == np.arange(self.nb)).astype(float)
        # prior precision restricted to the non-signal parameters, as (diag, blocks)
        mask = np.zeros(n, bool)
        mask[self.rest] = True
        self._prior_rest = SimpleNamespace(
            diag=np.where(mask, prior.diag, 0.0),
            blocks=[(i, B) for i, B in prior.blocks if mask[i].all()])

    # -- coordinates -------------------------------------------------------------------
    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return x[:self.nr], x[self.nr:self.nr + self.ns], x[self.nr + self.ns:]

    def theta(self, x: np.ndarray) -> np.ndarray:
        """Joint-fit parameters ``theta`` (signal whitened by ``P0``) of a point ``x``."""
        r, w, u = self.split(np.asarray(x, float))
        th = np.empty(self.theta_hat.size)
        th[self.rest] = r
        th[self.sig] = np.exp(0.5 * self.a * u[self.band]) * w
        return th

    def initial(self, u: np.ndarray) -> np.ndarray:
        """``x`` at the MAP with band powers ``P0 e^u``."""
        u = np.asarray(u, float)
        w = self.theta_hat[self.sig] * np.exp(-0.5 * self.a * u[self.band])
        return np.concatenate([self.theta_hat[self.rest], w, u])

    def _prior_prec(self, d: np.ndarray) -> np.ndarray:
        """Prior precision (non-signal part) times ``d``: (n,) or columns (n, C)."""
        return prior_matvec(self._prior_rest, d)

    # -- density ----------------------------------------------------------------------
    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        vals, grads = self.value_and_grad_batch(np.asarray(x, float)[None])
        return float(vals[0]), grads[0]

    def value_and_grad_batch(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log p`` and its gradient at ``C`` points at once.

        Parameters
        ----------
        X : ndarray (C, size)

        Returns
        -------
        values : ndarray (C,)
        grads : ndarray (C, size)

        One structured Fisher product serves all ``C`` points (a matrix-matrix product,
        so the chains of a sampler share one pass over ``F``).
        """
        X = np.asarray(X, float)
        r, w, u = X[:, :self.nr], X[:, self.nr:self.nr + self.ns], X[:, self.nr + self.ns:]
        ub = u[:, self.band]
        scale = np.exp(0.5 * self.a * ub)
        th = np.empty((X.shape[0], self.theta_hat.size))
        th[:, self.rest] = r
        th[:, self.sig] = scale * w
        d = th - self.theta_hat
        Fd = self.SF.matvec(d.T).T
        Pd = self._prior_prec(d.T).T
        h = self.g - Fd                                  # d lnL / d theta
        dr, Pr = d[:, self.rest], Pd[:, self.rest]
        q = np.exp((self.a - 1.0) * ub)                   # prior precision of w
        val = (d @ self.g - 0.5 * np.sum(d * Fd, axis=1) + dr @ self.gp[self.rest]
               - 0.5 * np.sum(dr * Pr, axis=1) - 0.5 * np.sum(w * w * q, axis=1)
               - 0.5 * ub @ (1.0 - self.a) - 0.5 * np.sum(u * u, axis=1) / self.u_sigma**2)
        gr = h[:, self.rest] + self.gp[self.rest] - Pr
        hs = h[:, self.sig]
        gw = hs * scale - w * q
        per = 0.5 * self.a * hs * th[:, self.sig] + 0.5 * (1.0 - self.a) * (w * w * q - 1.0)
        gu = self._band_sum(per) - u / self.u_sigma**2
        return val, np.concatenate([gr, gw, gu], axis=1)

    def _band_sum(self, per: np.ndarray) -> np.ndarray:
        """Sum of ``per`` (C, Nsig) over each band's coefficients: (C, Nband)."""
        return per @ self._band_matrix

    def value(self, x: np.ndarray) -> float:
        return self.value_and_grad(x)[0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]

    # -- Gauss-Newton Hessian products in x (for the metric) ---------------------------
    def _jac(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        r, w, u = self.split(x)
        vr, vw, vu = self.split(v)
        out = np.empty(self.theta_hat.size)
        out[self.rest] = vr
        sc = np.exp(0.5 * self.a * u[self.band])
        out[self.sig] = sc * vw + 0.5 * self.a * sc * w * vu[self.band]
        return out

    def _jac_t(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        r, w, u = self.split(x)
        sc = np.exp(0.5 * self.a * u[self.band])
        ts = t[self.sig]
        gu = 0.5 * np.bincount(self.band, self.a * ts * sc * w, minlength=self.nb)
        return np.concatenate([t[self.rest], ts * sc, gu])

    def _prior_w_u(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal Gauss-Newton prior curvature of ``w`` and ``u``."""
        r, w, u = self.split(x)
        q = np.exp((self.a - 1.0) * u[self.band])
        du = 0.25 * np.bincount(self.band, (1.0 - self.a) ** 2 * w * w * q,
                                minlength=self.nb) + 1.0 / self.u_sigma**2
        return q, du

    def hess_product(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Gauss-Newton Hessian of ``-log p`` at ``x`` times ``v``."""
        jv = self._jac(x, v)
        t = self.SF.matvec(jv) + self._prior_prec(jv)
        out = self._jac_t(x, t)
        q, du = self._prior_w_u(x)
        out[self.nr:self.nr + self.ns] += q * self.split(v)[1]
        out[self.nr + self.ns:] += du * self.split(v)[2]
        return out

    def hess_diagonal(self, x: np.ndarray, dense_F_diag: np.ndarray) -> np.ndarray:
        """Diagonal of the Gauss-Newton Hessian (``dense_F_diag`` = diag of ``F``)."""
        r, w, u = self.split(x)
        fd = dense_F_diag + self._prior_rest.diag
        for idx, B in self._prior_rest.blocks:
            fd[idx] += np.diag(B) - self._prior_rest.diag[idx]
        sc2 = np.exp(self.a * u[self.band])
        q, du = self._prior_w_u(x)
        dw = fd[self.sig] * sc2 + q
        # band-power diagonal: (1/4) sum_i,j in b a_i zeta_i F_ij a_j zeta_j (by products)
        th = self.theta(x)
        for b in range(self.nb):
            e = np.zeros(self.theta_hat.size)
            sel = self.band == b
            e[self.sig[sel]] = self.a[sel] * th[self.sig[sel]]
            du[b] += 0.25 * float(e @ self.SF.matvec(e))
        return np.concatenate([fd[self.rest], dw, du])


def lowrank_metric(post: HierarchicalLaplacePosterior, x: np.ndarray, F_diag: np.ndarray,
                   rank: int = 300, power_iters: int = 2, seed: int = 0) -> LowRankMetric:
    """Low-rank plus diagonal mass matrix from the Gauss-Newton Hessian at ``x``.

    ``M = D^{1/2} (I + V diag(lam) V^T) D^{1/2}``, ``D`` the Hessian diagonal and
    ``(lam, V)`` the ``rank`` leading eigenpairs of ``D^{-1/2} H D^{-1/2} - I`` from a
    randomised range finder (``power_iters`` subspace iterations; ``rank + 10`` Hessian
    products each).
    """
    d = post.hess_diagonal(x, F_diag)
    d = np.maximum(d, 1e-12)
    s = 1.0 / np.sqrt(d)
    n = d.size
    k = min(int(rank), n - 1)
    rng = np.random.default_rng(seed)

    def A(V: np.ndarray) -> np.ndarray:   # (D^-1/2 H D^-1/2 - I) V, column by column
        return np.stack([s * post.hess_product(x, s * V[:, j]) - V[:, j]
                         for j in range(V.shape[1])], axis=1)

    Q, _ = np.linalg.qr(A(rng.standard_normal((n, k + 10))))
    for _ in range(int(power_iters)):
        Q, _ = np.linalg.qr(A(Q))
    AQ = A(Q)
    T = Q.T @ AQ
    lam, W = np.linalg.eigh(0.5 * (T + T.T))
    keep = np.argsort(-np.abs(lam))[:k]
    lam, V = lam[keep], Q @ W[:, keep]
    lam = np.maximum(lam, -0.9)
    return LowRankMetric(d, np.sqrt(d)[:, None] * V, lam)


def dense_hessian(post: HierarchicalLaplacePosterior, x: np.ndarray,
                  F: np.ndarray | None = None) -> np.ndarray:
    """The Gauss-Newton Hessian of ``-log p`` at ``x`` as a dense ``(size, size)`` matrix.

    With the dense data Fisher ``F`` (theta order) it is assembled from the structure:
    ``x -> theta`` is a diagonal scaling of ``(r, w)`` plus one column per band ``u_b``,
    so ``H = J^T (F + prior) J + diag(0, q, du)`` costs ``O(n^2)`` (a reordering, two
    scalings and ``Nband`` products) instead of ``n`` Hessian products.
    """
    n = post.size
    if F is None:
        H = np.stack([post.hess_product(x, e) for e in np.eye(n)], axis=1)
        return 0.5 * (H + H.T)
    r, w, u = post.split(np.asarray(x, float))
    order = np.concatenate([post.rest, post.sig])             # theta index of x's (r, w)
    A = np.asarray(F, float)[np.ix_(order, order)]
    A[np.diag_indices_from(A)] += post._prior_rest.diag[order]
    pos = np.full(post.theta_hat.size, -1)
    pos[order] = np.arange(order.size)
    for idx, B in post._prior_rest.blocks:
        j = pos[idx]
        A[np.ix_(j, j)] += B
    sc = np.exp(0.5 * post.a * u[post.band])
    d = np.concatenate([np.ones(post.nr), sc])                 # d theta / d (r, w)
    A *= d[:, None]
    A *= d[None, :]
    H = np.zeros((n, n))
    m = post.nr + post.ns
    H[:m, :m] = A
    # the Nband columns of u (whose Jacobian column is 0.5 a sc w on its band): products
    Fu = np.stack([post.hess_product(x, np.r_[np.zeros(m), np.eye(post.nb)[b]])
                   for b in range(post.nb)], axis=1)          # full Hessian columns of u
    H[:, m:] = Fu
    H[m:, :] = Fu.T
    q, _ = post._prior_w_u(x)
    H[post.nr + np.arange(post.ns), post.nr + np.arange(post.ns)] += q
    return 0.5 * (H + H.T)


def dense_metric(post: HierarchicalLaplacePosterior, x: np.ndarray,
                 F: np.ndarray | None = None) -> Any:
    """Dense mass matrix: the Gauss-Newton Hessian at ``x`` (:func:`dense_hessian`; small
    problems: each leapfrog step then costs one ``n x n`` product)."""
    from ..inference.metric import DenseMetric

    return DenseMetric(mass=dense_hessian(post, x, F))
