"""Fisher matrices of a :class:`~linlim.likelihood.LogPosterior`, and what follows from them.

Over real parameters, with the noise convention of :mod:`linlim.likelihood`,

    F = 2 Re(J^H W_eff J)  (+ H_prior, the Hessian of -log prior)

which is also the Gauss-Newton Hessian of ``-log posterior``. Its inverse approximates the
posterior covariance (exactly, for a linear model with Gaussian prior and noise).

This module is linlim's one Fisher builder: every dense Fisher matrix (of a posterior, or
of a bare operator as :func:`linlim.calibration.operator_fisher` asks) is assembled from
Jacobian columns by :func:`operator_jacobian`, which applies ``J`` to a whole batch of unit
vectors in one call when the linearised operator offers ``matvec_batch`` (see
:func:`apply_columns`) and column by column otherwise.

* :func:`fisher_matrix` -- dense ``F`` from Jacobian columns (jvps, in batches).
* :func:`operator_fisher` -- dense ``F`` of an operator (real or complex input) at ``x``.
* :func:`fisher_marginal_block` -- the Fisher matrix of one parameter block with every
  other parameter marginalised (Schur complement ``F_aa - F_ab F_bb^-1 F_ba``), from
  ``len(a)`` preconditioned CG solves: no other block is formed.
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

from ..backend import asarray, to_numpy
from ..errors import InputError, ShapeError
from ..operators.base import Operator
from ..validation import check_dense_matrix_memory, first_indices

__all__ = [
    "apply_columns",
    "operator_jacobian",
    "operator_fisher",
    "fisher_marginal_block",
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


def apply_columns(J: Any, vectors: Any, *, batch_size: int = 64) -> Any:
    """``[J v_1, ..., J v_p]`` stacked, (p, M), for input vectors ``vectors`` (p, *in_shape).

    The blocked path: a linear operator that can apply itself to a batch exposes
    ``matvec_batch(X)`` mapping ``(p, *in_shape) -> (p, *out_shape)``; it is called once per
    batch of ``batch_size`` vectors. Otherwise ``matvec`` runs vector by vector.

    Parameters
    ----------
    J : LinearOperator
    vectors : array (p, *J.in_shape)
    batch_size : int

    Returns
    -------
    array (p, M), ``M = prod(J.out_shape)``, on ``J``'s array module
    """
    xp = J.xp
    p = int(vectors.shape[0])
    batched = getattr(J, "matvec_batch", None)
    out = []
    for start in range(0, p, max(1, int(batch_size))):
        X = vectors[start:start + batch_size]
        if batched is not None:
            Y = batched(X)
            out.append(Y.reshape(X.shape[0], -1))
        else:
            out.append(xp.stack([J.matvec(X[j]).ravel() for j in range(X.shape[0])]))
    if not out:
        return xp.zeros((0, int(np.prod(J.out_shape))), dtype=np.dtype(J.out_dtype))
    return xp.concatenate(out, axis=0)


def _unit_vectors(cols: np.ndarray, in_shape: tuple, in_dtype: Any, xp: Any,
                  split_complex: bool) -> Any:
    """Unit inputs for the requested columns: ``e_k`` (real input), or ``e_k`` and
    ``i e_k`` interleaved (complex input, ``split_complex``), shape (p, *in_shape)."""
    n = int(np.prod(in_shape))
    cplx = np.dtype(in_dtype).kind == "c" and split_complex
    units = (1.0, 1j) if cplx else (1.0,)
    E = xp.zeros((cols.size * len(units), n), dtype=in_dtype)
    rows = xp.arange(cols.size * len(units))
    idx = asarray(np.repeat(cols, len(units)), xp)
    vals = asarray(np.tile(np.asarray(units, dtype=in_dtype), cols.size), xp)
    E[rows, idx] = vals
    return E.reshape((-1,) + tuple(in_shape))


def operator_jacobian(op: Operator, x: Any = None, cols: Any = None, *, J: Any = None,
                      batch_size: int = 64) -> Any:
    """Jacobian columns of an operator at ``x``, one row per real parameter.

    Parameters
    ----------
    op : Operator
        Single-array input (real, or complex: split into interleaved ``(Re, Im)`` real
        parameters, as :class:`linlim.Params` stores them).
    x : array, optional
        Linearisation point (not needed with ``J`` or for a LinearOperator).
    cols : int array, optional
        Input entries (flat index into ``op.in_shape``; complex entries give two rows).
    J : LinearOperator, optional
        The linearisation at ``x``, to reuse.
    batch_size : int

    Returns
    -------
    array (P, M)
        Row ``j`` is ``J e_j`` flattened, ``P = len(cols)`` (real) or ``2 len(cols)``.
    """
    if J is None:
        if op.is_linear:
            J = op
        else:
            _, J = op.linearize(asarray(x, op.xp))
    n = int(np.prod(J.in_shape))
    cols = np.arange(n) if cols is None else np.asarray(cols, dtype=np.int64).ravel()
    bs = max(1, int(batch_size))
    out = [apply_columns(J, _unit_vectors(cols[s:s + bs], tuple(J.in_shape), J.in_dtype,
                                          J.xp, True), batch_size=2 * bs)
           for s in range(0, cols.size, bs)]  # unit vectors made per batch (memory)
    if not out:
        return J.xp.zeros((0, int(np.prod(J.out_shape))), dtype=np.dtype(J.out_dtype))
    return J.xp.concatenate(out, axis=0)


def operator_fisher(op: Operator, x: Any, weights: Any, *, batch_size: int = 64) -> Any:
    """Dense Fisher matrix ``F = 2 Re(J^H W J)`` of an operator at ``x`` (small problems).

    Parameters
    ----------
    op : Operator
        Single-array input, real or complex (complex: interleaved ``(Re, Im)`` parameters).
    x : array
        Linearisation point.
    weights : array, broadcastable to ``op.out_shape``
        ``1/sigma^2`` per output sample (0 for flags), with ``E|n|^2 = sigma^2``.

    Returns
    -------
    array (P, P) float64, symmetric, on ``op``'s array module
    """
    xp = op.xp
    w = asarray(weights, xp, np.float64)
    A = operator_jacobian(op, x, batch_size=batch_size)
    sw = xp.sqrt(xp.broadcast_to(w, tuple(op.out_shape)).ravel())
    A = A * sw[None, :]
    F = _gram(A, A)
    return 0.5 * (F + F.T)


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
        Columns computed per batch (one ``matvec_batch`` call where ``J`` offers it).

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
    if not cols.size:
        return xp.zeros((0, sw.shape[0]), dtype=lik.data.dtype)
    A = operator_jacobian(lik.model, cols=cols, J=J, batch_size=batch_size)
    post.counts["jvp"] += int(cols.size)
    return sw[None, :] * A


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
    bad = ~np.isfinite(np.asarray(to_numpy(theta)))
    if bad.any():
        raise InputError(f"fisher_matrix: theta: expected finite parameters, received "
                         f"{int(bad.sum())} NaN/inf values (first at indices "
                         f"{first_indices(bad)})")
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


def _prior_block(post: Any, theta: Any, cols: np.ndarray) -> Any:
    """``H_prior[cols][:, cols]`` from ``len(cols)`` prior Hessian products (no n x n)."""
    xp = post.xp
    idx = asarray(cols, xp)
    out = []
    for k in cols:
        e = xp.zeros(post.size, dtype=np.float64)
        e[int(k)] = 1.0
        out.append(post.prior_hess_product(theta, e)[idx])
    return xp.stack(out, axis=1) if out else xp.zeros((0, 0))


def fisher_block_diagonal(post: Any, theta: Any, blocks: Sequence[Any], *,
                          include_prior: bool = True, batch_size: int = 64,
                          J: Any = None) -> list:
    """Dense Fisher blocks ``F[b, b]`` for parameter blocks ``b`` (cross terms ignored).

    Only each block's own Jacobian columns (``len(b)`` jvps) and prior products are
    computed.

    Parameters
    ----------
    blocks : sequence of slice, int array or str (Params block name)
    J : LinearOperator, optional
        The model's linearisation at ``theta`` to reuse.

    Returns
    -------
    list of arrays (k_b, k_b) float64
    """
    theta = post._check(theta)
    if J is None:
        post.counts["forward"] += 1
        _, J = post.likelihood.model.linearize(theta)
    out = []
    for b in blocks:
        cols = _columns(post, b)
        A = jacobian_columns(post, theta, cols, J=J, batch_size=batch_size)
        F = _gram(A, A)
        if include_prior:
            F = F + _prior_block(post, theta, cols)
        out.append(0.5 * (F + F.T))
    return out


def fisher_operator(post: Any, theta: Any) -> Any:
    """Matrix-free Fisher (Gauss-Newton) operator at ``theta``: a LinearOperator (n,)->(n,)
    whose ``matvec`` costs one jvp and one vjp (the Jacobian is cached)."""
    return post.linearize_gn(theta)


def fisher_diagonal(post: Any, theta: Any, *, include_prior: bool = True,
                    batch_size: int = 64, J: Any = None, cols: Any = None) -> Any:
    """``diag(F)`` (all, or the entries ``cols``), float64, from one jvp per entry and no
    n x n storage.

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,)
    include_prior : bool
    batch_size : int
    J : LinearOperator, optional
        The model's linearisation at ``theta`` to reuse.
    cols : None, slice, int array or str
        Which diagonal entries.
    """
    theta = post._check(theta)
    xp = post.xp
    if J is None:
        post.counts["forward"] += 1
        _, J = post.likelihood.model.linearize(theta)
    cols = _columns(post, cols)
    d = xp.zeros(cols.size, dtype=np.float64)
    for start in range(0, cols.size, batch_size):
        A = jacobian_columns(post, theta, cols[start:start + batch_size], J=J,
                             batch_size=batch_size)
        d[start:start + A.shape[0]] = 2.0 * (A.real**2 + (A.imag**2 if A.dtype.kind == "c"
                                                          else 0.0)).sum(axis=1)
    if include_prior:
        from .lowrank import prior_hessian_diagonal

        d = d + prior_hessian_diagonal(post, theta, cols)
    return d


def fisher_marginal_block(post: Any, theta: Any, block: Any, *, method: str = "cg",
                          preconditioner: Any = "prior", cg_tol: float = 1e-12,
                          cg_maxiter: int | None = None, H: Any = None,
                          return_covariance: bool = False) -> Any:
    """Fisher matrix of one parameter block with all other parameters marginalised.

    ``F_a|marg = F_aa - F_ab F_bb^-1 F_ba = ([H^-1]_aa)^-1`` (Schur complement), where
    ``H`` is the full Gauss-Newton Hessian (data + prior). Its inverse is the marginal
    covariance of block ``a`` including every covariance with the rest (e.g. band powers
    with foregrounds, beam and gains).

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,)
    block : str, slice or int array
        The kept block ``a`` (``k`` parameters).
    method : {"cg", "dense"}
        "cg": ``k`` preconditioned CG solves ``H x = e_j`` (matrix-free; ``F_bb`` is never
        formed); "dense": the full dense Fisher matrix (small problems, reference).
    preconditioner : see :func:`~linlim.inference.preconditioners.make_preconditioner`
    cg_tol, cg_maxiter : float, int
    H : LinearOperator, optional
        The GN operator at ``theta`` to reuse.
    return_covariance : bool
        Also return the marginal covariance ``[H^-1]_aa``.

    Returns
    -------
    array (k, k) float64 [, array (k, k)]

    Raises
    ------
    InputError
        When a CG solve does not converge (H singular along the block: add a prior).
    """
    xp = post.xp
    cols = _columns(post, block)
    idx = asarray(cols, xp)
    if method == "dense":
        F = fisher_matrix(post, theta)
        C = xp.linalg.inv(F)[idx[:, None], idx[None, :]]
    elif method == "cg":
        from ..operators.cg import conjugate_gradient
        from .preconditioners import make_preconditioner

        if H is None:
            H = post.linearize_gn(theta)
        M = make_preconditioner(preconditioner)
        if M is not None:
            M.update(post, theta, H)
        cols_out = []
        for k in cols:
            e = xp.zeros(post.size, dtype=np.float64)
            e[int(k)] = 1.0
            res = conjugate_gradient(H.matvec, e, tol=cg_tol, maxiter=cg_maxiter, precond=M)
            if not res.converged:
                raise InputError(f"fisher_marginal_block: CG for parameter {int(k)} stopped "
                                 f"({res.reason}, relative residual {res.residual_norm:.2e}); "
                                 "the Hessian may be singular along this block: add a prior")
            cols_out.append(res.x[idx])
        C = xp.stack(cols_out, axis=1)
    else:
        raise InputError(f"fisher_marginal_block: method must be 'cg' or 'dense', received "
                         f"{method!r}")
    C = 0.5 * (C + C.T)
    S = xp.linalg.inv(C)
    S = 0.5 * (S + S.T)
    return (S, C) if return_covariance else S


@dataclass
class LowRankFisher:
    """``F ~ U diag(s) U^T + diag(d)`` (U (n, r), s (r,) >= 0, d (n,) > 0).

    ``matvec`` applies the approximation; ``solve`` and ``covariance_diagonal`` go through
    :meth:`posterior` (the Woodbury identity in an orthonormal, diagonally whitened basis,
    shared with :class:`~linlim.inference.metric.LowRankMetric`).
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

    def posterior(self) -> Any:
        """The same approximation as a :class:`~linlim.inference.lowrank.LowRankPosterior`
        (diagonal factor ``D^-1/2``), whose products give the inverse."""
        from .lowrank import DiagonalFactor, LowRankPosterior
        from .metric import _whitened_eigen

        xp = self.xp
        d, U, s = (to_numpy(a) for a in (self.d, self.U, self.s))
        Y, lam = _whitened_eigen(d, U, s)
        return LowRankPosterior(DiagonalFactor(1.0 / np.sqrt(d), xp), asarray(Y, xp),
                                1.0 + lam)

    def solve(self, b: Any) -> Any:
        """``F^-1 b`` for the approximation."""
        return self.posterior().covariance_product(b)

    def covariance_diagonal(self) -> Any:
        """``diag(F^-1)`` of the approximation (marginal variances)."""
        return self.posterior().marginal_variances()


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
    if diagonal == "prior":
        from .lowrank import prior_hessian_diagonal

        dp = prior_hessian_diagonal(post, theta)
        if not bool((dp > 0).all()):
            raise InputError("low_rank_fisher: diagonal='prior' needs a prior Hessian with a "
                             "positive diagonal; use diagonal='exact' or 'hutchinson'")
        sq = xp.sqrt(dp)

        def op(v: Any) -> Any:
            return H.data_product(v / sq) / sq
    else:
        op = H.matvec
    from .lowrank import block_apply, randomized_eigsh

    lam, U = randomized_eigsh(block_apply(op, xp), n, int(rank), oversample=int(oversample),
                              power_iters=int(power_iters), xp=xp, rng=rng)
    s = xp.maximum(lam, 0.0)
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
