"""Fisher matrices of a :class:`~linlim.likelihood.LogPosterior`, and what follows from them.

Over real parameters, with the noise convention of :mod:`linlim.likelihood`,

    F = 2 Re(J^H W_eff J)  (+ H_prior, the Hessian of -log prior)

which is also the Gauss-Newton Hessian of ``-log posterior``. Its inverse approximates the
posterior covariance (exactly, for a linear model with Gaussian prior and noise).

* :func:`fisher_matrix` -- dense ``F`` from Jacobian columns (jvps, in batches).
* :func:`fisher_block_diagonal` -- dense blocks per parameter block (ignores cross terms).
* :func:`fisher_operator` -- matrix-free products (one jvp + one vjp each).
* :func:`fisher_diagonal` -- ``diag(F)``.
* :func:`low_rank_fisher` -- ``U diag(s) U^T + diag(d)`` for large problems.
* :func:`fisher_covariance`, :func:`marginal_errors`, :func:`correlation_matrix`,
  :func:`fisher_eigen`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import InputError, ShapeError
from ..validation import check_dense_matrix_memory

__all__ = [
    "jacobian_columns",
    "fisher_matrix",
    "fisher_block_diagonal",
    "fisher_operator",
    "fisher_diagonal",
    "LowRankFisher",
    "low_rank_fisher",
    "fisher_covariance",
    "marginal_errors",
    "correlation_matrix",
    "FisherEigen",
    "fisher_eigen",
]


def _columns(post: Any, cols: Any) -> np.ndarray:
    if cols is None:
        return np.arange(post.size)
    if isinstance(cols, slice):
        return np.arange(post.size)[cols]
    if isinstance(cols, str):
        if getattr(post, "params", None) is None:
            raise InputError(f"fisher: block name {cols!r} needs a LogPosterior with params")
        post.params.index(cols)
        return np.arange(post.size)[post.params.slices[cols]]
    c = np.asarray(cols, dtype=np.int64).ravel()
    if c.size and (c.min() < 0 or c.max() >= post.size):
        raise InputError(f"fisher: column indices must lie in [0, {post.size})")
    return c


def jacobian_columns(post: Any, theta: Any, cols: Any = None, *, J: Any = None,
                     batch_size: int = 64) -> Any:
    """Weighted Jacobian rows ``A[k] = sqrt(W_eff) * (J e_k)``, flattened.

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,) float64
    cols : None, slice, int array or str
        Which parameters (all by default; a name selects a Params block).
    J : LinearOperator, optional
        A linearisation of the model at ``theta`` to reuse.
    batch_size : int
        Columns computed per batch (each batch is stacked into one array).

    Returns
    -------
    A : array (len(cols), M), complex (or real) on the posterior's array module
        So that the data part of the Fisher matrix is ``2 Re(conj(A) @ A.T)``.
    """
    xp = post.xp
    cols = _columns(post, cols)
    lik = post.likelihood
    if J is None:
        theta = post._check(theta)
        post.counts["forward"] += 1
        _, J = lik.model.linearize(theta)
    sw = xp.sqrt(lik.w_eff).ravel()
    out = []
    for start in range(0, cols.size, max(1, int(batch_size))):
        batch = []
        for k in cols[start:start + batch_size]:
            e = xp.zeros(post.size, dtype=np.float64)
            e[int(k)] = 1.0
            batch.append(J.matvec(e).ravel())
            post.counts["jvp"] += 1
        out.append(sw[None, :] * xp.stack(batch))
    if not out:
        return xp.zeros((0, sw.shape[0]), dtype=lik.data.dtype)
    return xp.concatenate(out, axis=0)


def _gram(A: Any, B: Any) -> Any:
    """``2 Re(conj(A) @ B.T)``."""
    G = A.conj() @ B.T
    return 2.0 * (G.real if G.dtype.kind == "c" else G)


def fisher_matrix(post: Any, theta: Any, *, include_prior: bool = True, batch_size: int = 64,
                  max_bytes: float = 2**31, J: Any = None) -> Any:
    """Dense Fisher matrix ``F = 2 Re(J^H W_eff J) (+ H_prior)``, (n, n) float64.

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,) float64
    include_prior : bool
        Add the prior's Hessian (and the log-Jacobian's, if the posterior includes it).
    batch_size : int
        Jacobian columns per batch.
    max_bytes : float
        If the weighted Jacobian (n x M) fits, it is built (n jvps) and ``F`` is one
        matrix product; otherwise ``F`` is built column-blockwise from Gauss-Newton
        products (n jvps + n vjps, memory n x n).
    J : LinearOperator, optional
        The model's linearisation at ``theta``, to reuse (e.g. a GaussNewtonOperator's ``J``).

    Notes
    -----
    Column ``k`` of ``J`` is ``J e_k`` (a jvp), so ``F_kl = 2 Re sum W_eff conj(J e_k) J e_l``.
    """
    theta = post._check(theta)
    xp = post.xp
    n = post.size
    check_dense_matrix_memory(n, "fisher_matrix", xp=xp)
    if J is None:
        post.counts["forward"] += 1
        _, J = post.likelihood.model.linearize(theta)
    M = int(post.likelihood.data.size)
    if n * M * post.likelihood.data.dtype.itemsize <= max_bytes:
        A = jacobian_columns(post, theta, J=J, batch_size=batch_size)
        F = _gram(A, A)
    else:
        from ..likelihood import GaussNewtonOperator

        H = GaussNewtonOperator(post, theta, J)
        F = xp.zeros((n, n), dtype=np.float64)
        for start in range(0, n, batch_size):
            for k in range(start, min(n, start + batch_size)):
                e = xp.zeros(n, dtype=np.float64)
                e[k] = 1.0
                F[:, k] = H.data_product(e)
        F = 0.5 * (F + F.T)
    if include_prior:
        F = F + post.prior_hessian_dense(theta)
    return F


def fisher_block_diagonal(post: Any, theta: Any, blocks: Sequence[Any], *,
                          include_prior: bool = True, batch_size: int = 64) -> list:
    """Dense Fisher blocks ``F[b, b]`` for parameter blocks ``b`` (cross terms ignored).

    Parameters
    ----------
    blocks : sequence of slice, int array or str (Params block name)

    Returns
    -------
    list of arrays (k_b, k_b) float64
    """
    theta = post._check(theta)
    post.counts["forward"] += 1
    _, J = post.likelihood.model.linearize(theta)
    Hp = post.prior_hessian_dense(theta) if include_prior else None
    out = []
    for b in blocks:
        cols = _columns(post, b)
        A = jacobian_columns(post, theta, cols, J=J, batch_size=batch_size)
        F = _gram(A, A)
        if Hp is not None:
            idx = post.xp.asarray(cols)
            F = F + Hp[idx[:, None], idx[None, :]]
        out.append(F)
    return out


def fisher_operator(post: Any, theta: Any) -> Any:
    """Matrix-free Fisher (Gauss-Newton) operator at ``theta``: a LinearOperator (n,)->(n,)
    whose ``matvec`` costs one jvp and one vjp (the Jacobian is cached)."""
    return post.linearize_gn(theta)


def fisher_diagonal(post: Any, theta: Any, *, include_prior: bool = True,
                    batch_size: int = 64) -> Any:
    """``diag(F)``, (n,) float64, from n jvps (no n x n storage)."""
    theta = post._check(theta)
    xp = post.xp
    post.counts["forward"] += 1
    _, J = post.likelihood.model.linearize(theta)
    d = xp.zeros(post.size, dtype=np.float64)
    for start in range(0, post.size, batch_size):
        cols = np.arange(start, min(post.size, start + batch_size))
        A = jacobian_columns(post, theta, cols, J=J, batch_size=batch_size)
        d[start:start + cols.size] = 2.0 * (A.real**2 + (A.imag**2 if A.dtype.kind == "c"
                                                          else 0.0)).sum(axis=1)
    if include_prior:
        d = d + xp.diag(post.prior_hessian_dense(theta))
    return d


@dataclass
class LowRankFisher:
    """``F ~ U diag(s) U^T + diag(d)`` (U (n, r), s (r,) >= 0, d (n,) > 0).

    ``matvec`` applies the approximation; ``solve`` and ``covariance_diagonal`` use the
    Woodbury identity ``(D + U S U^T)^-1 = D^-1 - D^-1 U (S^-1 + U^T D^-1 U)^-1 U^T D^-1``.
    """

    U: Any
    s: Any
    d: Any

    def matvec(self, v: Any) -> Any:
        return self.U @ (self.s * (self.U.T @ v)) + self.d * v

    def dense(self) -> Any:
        return (self.U * self.s) @ self.U.T + self.xp.diag(self.d)

    @property
    def xp(self) -> Any:
        from ..backend import xp_of

        return xp_of(self.U)

    def _core(self) -> Any:
        xp = self.xp
        DU = self.U / self.d[:, None]
        C = xp.diag(1.0 / self.s) + self.U.T @ DU
        return DU, C

    def solve(self, b: Any) -> Any:
        """``F^-1 b`` for the approximation."""
        DU, C = self._core()
        return b / self.d - DU @ self.xp.linalg.solve(C, DU.T @ b)

    def covariance_diagonal(self) -> Any:
        """``diag(F^-1)`` of the approximation (marginal variances)."""
        DU, C = self._core()
        X = self.xp.linalg.solve(C, DU.T)
        return 1.0 / self.d - (DU * X.T).sum(axis=1)


def low_rank_fisher(post: Any, theta: Any, rank: int, *, oversample: int = 10,
                    power_iters: int = 1, diagonal: str = "prior", nprobe: int = 32,
                    rng: Any = 0, floor: float = 1e-12) -> LowRankFisher:
    """Randomised low-rank + diagonal approximation of the Fisher matrix.

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,) float64
    rank : int
        Number of eigenpairs kept.
    oversample, power_iters : int
        Randomised range finder settings (Halko et al. 2011, Alg. 4.4 and 5.3).
    diagonal : {"prior", "exact", "hutchinson", "none"}
        ``"prior"``: ``d = diag(H_prior)`` (must be positive) and the low-rank part is the
        leading eigen-decomposition of the prior-preconditioned data term
        ``D^-1/2 2 Re(J^H W J) D^-1/2 = V L V^T``, so ``F ~ D + (D^1/2 V) L (D^1/2 V)^T`` --
        exact when the data constrain at most ``rank`` directions and the prior is
        diagonal. The others take the leading eigenpairs ``U S U^T`` of ``F`` itself and
        fill ``d = diag(F - U S U^T)`` exactly (n jvps), by Hutchinson's estimator
        (``nprobe`` Rademacher probes) or with zeros (then ``floor``).
    rng : int or Generator
    floor : float
        ``d`` is clipped below at ``floor * max(s)`` so the approximation stays invertible.

    Notes
    -----
    Cost: ``(rank + oversample) (2 + 2 power_iters)`` GN products (one jvp + one vjp each)
    plus the diagonal.
    """
    xp = post.xp
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    H = post.linearize_gn(theta)
    n = post.size
    k = min(n, int(rank) + int(oversample))
    if diagonal == "prior":
        dp = post.prior_hessian_diagonal(theta)
        if not bool((dp > 0).all()):
            raise InputError("low_rank_fisher: diagonal='prior' needs a prior Hessian with a "
                             "positive diagonal; use diagonal='exact' or 'hutchinson'")
        sq = xp.sqrt(dp)

        def op(v: Any) -> Any:
            return H.data_product(v / sq) / sq
    else:
        op = H.matvec

    def apply(V: Any) -> Any:
        return xp.stack([op(V[:, j]) for j in range(V.shape[1])], axis=1)

    Om = xp.asarray(rng.standard_normal((n, k)))
    Q, _ = xp.linalg.qr(apply(Om))
    for _ in range(int(power_iters)):
        Q, _ = xp.linalg.qr(apply(Q))
    B = Q.T @ apply(Q)
    lam, V = xp.linalg.eigh(0.5 * (B + B.T))
    order = xp.argsort(lam)[::-1][: int(rank)]
    s, U = xp.maximum(lam[order], 0.0), Q @ V[:, order]
    if diagonal == "prior":
        return LowRankFisher(sq[:, None] * U, s, dp)
    lr_diag = ((U * s) * U).sum(axis=1)
    if diagonal == "exact":
        d = fisher_diagonal(post, theta) - lr_diag
    elif diagonal == "hutchinson":
        acc = xp.zeros(n, dtype=np.float64)
        for _ in range(int(nprobe)):
            z = xp.asarray(rng.choice([-1.0, 1.0], size=n))
            acc += z * (H.matvec(z) - U @ (s * (U.T @ z)))
        d = acc / nprobe
    elif diagonal == "none":
        d = xp.zeros(n, dtype=np.float64)
    else:
        raise InputError(f"low_rank_fisher: diagonal must be 'prior', 'exact', 'hutchinson' "
                         f"or 'none', received {diagonal!r}")
    smax = float(to_numpy(s.max())) if s.size else 1.0
    d = xp.maximum(d, floor * smax)
    return LowRankFisher(U, s, d)


def fisher_covariance(F: Any) -> Any:
    """Inverse Fisher matrix (posterior covariance approximation), (n, n).

    Raises
    ------
    InputError
        If ``F`` is not positive definite (see :func:`fisher_eigen` for the directions).
    """
    F = _square(F)
    xp = _xp(F)
    Fs = 0.5 * (F + F.T)
    try:
        L = xp.linalg.cholesky(Fs)
    except Exception:  # numpy LinAlgError or cupy's
        raise InputError("fisher_covariance: F is not positive definite; inspect "
                         "fisher_eigen(F) for unconstrained directions or add a prior") from None
    if not bool(xp.isfinite(L).all()):  # CuPy returns NaN instead of raising
        raise InputError("fisher_covariance: F is not positive definite")
    Linv = xp.linalg.solve(L, xp.eye(F.shape[0]))
    return Linv.T @ Linv


def marginal_errors(F: Any = None, *, cov: Any = None) -> Any:
    """Marginal 1-sigma errors ``sqrt(diag(F^-1))`` (or ``sqrt(diag(cov))``), (n,)."""
    if cov is None:
        if F is None:
            raise InputError("marginal_errors: give F or cov")
        cov = fisher_covariance(F)
    return _xp(cov).sqrt(_xp(cov).diag(_square(cov)))


def correlation_matrix(cov: Any) -> Any:
    """Correlation matrix ``C_ij / sqrt(C_ii C_jj)`` of a covariance, (n, n)."""
    cov = _square(cov)
    s = _xp(cov).sqrt(_xp(cov).diag(cov))
    return cov / (s[:, None] * s[None, :])


@dataclass
class FisherEigen:
    """Eigen-decomposition of a Fisher matrix (eigenvalues ascending).

    Attributes
    ----------
    eigenvalues : array (n,)
    eigenvectors : array (n, n)
        Columns; the first ones are the worst-constrained directions.
    condition_number : float
        ``max |lambda| / min |lambda|`` (inf if singular).
    """

    eigenvalues: Any
    eigenvectors: Any
    condition_number: float

    def poorly_constrained(self, rtol: float = 1e-10) -> Any:
        """Eigenvectors (columns) whose eigenvalue is below ``rtol * max eigenvalue``."""
        lam = to_numpy(self.eigenvalues)
        keep = np.nonzero(lam < rtol * lam.max())[0]
        return self.eigenvectors[:, keep]

    def errors_along(self) -> Any:
        """1-sigma errors along each eigenvector, ``1/sqrt(lambda)`` (inf for lambda <= 0)."""
        lam = to_numpy(self.eigenvalues)
        with np.errstate(divide="ignore"):
            return np.where(lam > 0, 1.0 / np.sqrt(np.maximum(lam, 1e-300)), np.inf)


def fisher_eigen(F: Any) -> FisherEigen:
    """Eigen-decomposition of ``F`` (symmetrised) to find ill-conditioned directions."""
    F = _square(F)
    xp = _xp(F)
    lam, V = xp.linalg.eigh(0.5 * (F + F.T))
    la = np.abs(to_numpy(lam))
    cond = float(la.max() / la.min()) if la.min() > 0 else float("inf")
    return FisherEigen(lam, V, cond)


def _xp(a: Any) -> Any:
    from ..backend import xp_of

    return xp_of(a)


def _square(F: Any) -> Any:
    if F.ndim != 2 or F.shape[0] != F.shape[1]:
        raise ShapeError(f"fisher: expected a square matrix, received shape {tuple(F.shape)}")
    return F
