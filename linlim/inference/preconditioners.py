"""Preconditioners for the conjugate-gradient inner solves of Gauss-Newton and LM.

A preconditioner applies ``r -> M^-1 r`` with ``M`` symmetric positive definite and close
to the Gauss-Newton Hessian ``H = P + F`` (prior precision ``P``, data Fisher
``F = 2 Re J^H W J``). :meth:`Preconditioner.update` is called at every linearisation point.

* :class:`PriorPreconditioner` -- ``M = P`` (a whitening change of variables for Gaussian
  priors: diagonal, dense, or a GRF's Fourier factor), with a diagonal for parameters the
  priors do not cover. Free to apply; CG then needs about as many iterations as the data
  constrain directions above the prior.
* :class:`LowRankPreconditioner` -- ``M^-1 = L (I + V (1/lam - 1) V^T) L^T`` from ``k``
  Lanczos eigenpairs of the prior-whitened Hessian ``L^T H L``: the prior plus the ``k``
  best-measured directions (the low-rank Laplace posterior of
  :mod:`linlim.inference.lowrank`). Costs ``~2k + 20`` GN products per refresh.
* :class:`JacobiPreconditioner` -- ``M = diag(H)``, supplied, exact (n jvps: small problems)
  or estimated by Hutchinson probing (``nprobe`` GN products).
* :class:`BlockJacobiPreconditioner` -- dense ``H`` blocks for named parameter blocks
  (jvps only over each block's columns), Cholesky-inverted; the rest diagonal.
* :class:`RebuiltPreconditioner` -- a user function rebuilding ``M^-1`` from the current
  point every ``refresh_every`` linearisations (structured, model-aware preconditioners).
* :class:`SchurPreconditioner` -- a large block known only through an approximate inverse
  (e.g. per-channel solves of a sky block) coupled exactly, through the Schur complement,
  to a small dense block (non-linear and few-mode parameters); nothing ``n x n`` is formed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..backend import asarray, to_numpy
from ..errors import InputError
from .lowrank import (
    LowRankPosterior,
    lanczos_eigsh,
    prior_factor,
    prior_hessian_diagonal,
    whitened_hessian,
)

__all__ = [
    "Preconditioner",
    "FixedPreconditioner",
    "RebuiltPreconditioner",
    "JacobiPreconditioner",
    "BlockJacobiPreconditioner",
    "PriorPreconditioner",
    "LowRankPreconditioner",
    "SchurPreconditioner",
    "make_preconditioner",
    "gn_diagonal",
]


class Preconditioner:
    """Base class: ``__call__(r) = M^-1 r``; ``update(post, theta, H)`` at each new
    linearisation point (``H`` the Gauss-Newton operator there)."""

    def update(self, post: Any, theta: Any, H: Any) -> None:
        pass

    def __call__(self, r: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FixedPreconditioner(Preconditioner):
    """A user callable ``r -> M^-1 r`` that does not change with ``theta``."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, r: Any) -> Any:
        return self.fn(r)


class RebuiltPreconditioner(Preconditioner):
    """A preconditioner rebuilt from the current point every ``refresh_every``
    linearisations by a user function (e.g. a structured Gauss-Newton Hessian, Cholesky
    factorised) -- no restart loop around the optimiser is needed.

    Parameters
    ----------
    build : callable
        ``build(post, theta, H) -> (r -> M^-1 r)``.
    refresh_every : int
        Rebuild at the first linearisation and then every this many.

    Examples
    --------
    >>> import numpy as np
    >>> pc = RebuiltPreconditioner(lambda post, th, H: (lambda r: r / 2.0), refresh_every=3)
    >>> pc.update(None, np.zeros(2), None); pc(np.array([2.0, 4.0]))
    array([1., 2.])
    """

    def __init__(self, build: Callable[[Any, Any, Any], Callable[[Any], Any]],
                 refresh_every: int = 1) -> None:
        if int(refresh_every) < 1:
            raise InputError(f"RebuiltPreconditioner: refresh_every must be >= 1, received "
                             f"{refresh_every}")
        self.build, self.refresh_every = build, int(refresh_every)
        self.count, self.builds = 0, 0
        self.fn: Callable[[Any], Any] | None = None

    def update(self, post: Any, theta: Any, H: Any) -> None:
        if self.fn is None or self.count % self.refresh_every == 0:
            self.fn = self.build(post, theta, H)
            self.builds += 1
        self.count += 1

    def __call__(self, r: Any) -> Any:
        return self.fn(r)


def gn_diagonal(post: Any, theta: Any, H: Any, *, method: str = "exact", cols: Any = None,
                nprobe: int = 32, rng: Any = 0, batch_size: int = 64) -> Any:
    """Diagonal of the Gauss-Newton Hessian ``H`` (data term + prior), (len(cols),).

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,)
    H : GaussNewtonOperator at ``theta``
    method : {"exact", "probe"}
        "exact": ``2 sum W |J e_k|^2`` from one jvp per column (``cols`` only) plus the
        prior diagonal. "probe": Hutchinson's estimator ``mean(z * H z)`` over ``nprobe``
        Rademacher vectors ``z`` (``nprobe`` GN products, unbiased, variance from the
        off-diagonal mass of ``H``).
    cols : int array, optional
        Which diagonal entries (all by default).
    """
    xp = post.xp
    n = post.size
    cols = np.arange(n) if cols is None else np.asarray(cols, dtype=np.int64)
    if method == "exact":
        if not (hasattr(H, "J") and hasattr(post, "likelihood")):
            eye = xp.eye(n)
            return xp.stack([H.matvec(eye[int(k)])[int(k)] for k in cols])
        from .fisher import fisher_diagonal

        return fisher_diagonal(post, theta, J=H.J, cols=cols, batch_size=batch_size)
    if method == "probe":
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        acc = xp.zeros(n, dtype=np.float64)
        for _ in range(int(nprobe)):
            z = asarray(rng.choice([-1.0, 1.0], size=n), xp)
            acc += z * H.matvec(z)
        return (acc / int(nprobe))[asarray(cols, xp)]
    raise InputError(f"gn_diagonal: method must be 'exact' or 'probe', received {method!r}")


def _positive(d: Any, xp: Any, floor: float) -> Any:
    dmax = float(to_numpy(xp.abs(d).max())) if d.size else 1.0
    return xp.where(d > floor * dmax, d, max(floor * dmax, 1e-300))


class JacobiPreconditioner(Preconditioner):
    """``M = diag(H)``.

    Parameters
    ----------
    diag : array (n,), optional
        A fixed diagonal (then nothing is computed).
    method : {"exact", "probe"}
        How to compute ``diag(H)`` at each update (:func:`gn_diagonal`). "exact" builds
        every Jacobian column once per outer iteration: for small problems only.
    nprobe : int
    floor : float
        Entries below ``floor * max`` are raised to it.
    """

    def __init__(self, diag: Any = None, method: str = "exact", nprobe: int = 32,
                 rng: Any = 0, floor: float = 1e-10) -> None:
        self.fixed = diag
        self.method, self.nprobe, self.rng, self.floor = method, int(nprobe), rng, floor
        self.d = None

    def update(self, post: Any, theta: Any, H: Any) -> None:
        xp = post.xp
        if self.fixed is not None:
            d = asarray(self.fixed, xp, np.float64)
            self.d = xp.where(d > 0, d, 1.0)
            return
        d = gn_diagonal(post, theta, H, method=self.method, nprobe=self.nprobe, rng=self.rng)
        self.d = _positive(d, xp, self.floor)

    def __call__(self, r: Any) -> Any:
        return r / self.d


class BlockJacobiPreconditioner(Preconditioner):
    """Dense diagonal blocks of ``H`` for chosen parameter blocks; diagonal elsewhere.

    Parameters
    ----------
    blocks : sequence of str (Params block names), slices or int arrays
        Each block's ``H_bb`` is built from ``len(b)`` jvps (its own columns only) plus the
        prior block, and Cholesky-factorised. Keep blocks small (beam, gains per cell).
    rest : {"exact", "probe", "prior"}
        The diagonal for parameters in no block: exact (a jvp per parameter), probed, or
        the prior Hessian diagonal alone.
    """

    def __init__(self, blocks: Sequence[Any], rest: str = "exact", nprobe: int = 32,
                 floor: float = 1e-10) -> None:
        self.blocks, self.rest, self.nprobe, self.floor = list(blocks), rest, nprobe, floor

    def update(self, post: Any, theta: Any, H: Any) -> None:
        from .fisher import _columns, fisher_block_diagonal

        xp = self.xp = post.xp
        n = post.size
        covered = np.zeros(n, dtype=bool)
        self.solves = []
        cols_list = [_columns(post, b) for b in self.blocks]
        for cols, Hb in zip(cols_list, fisher_block_diagonal(post, theta, cols_list, J=H.J)):
            L = xp.linalg.cholesky(Hb)
            self.solves.append((asarray(cols, xp), L))
            covered[cols] = True
        rest = np.nonzero(~covered)[0]
        self.rest_idx = asarray(rest, xp)
        if rest.size:
            if self.rest == "prior":
                d = prior_hessian_diagonal(post, theta, rest)
            else:
                d = gn_diagonal(post, theta, H, method=self.rest, cols=rest, nprobe=self.nprobe)
            self.d_rest = _positive(d, xp, self.floor)

    def __call__(self, r: Any) -> Any:
        xp = self.xp
        out = r.copy()
        for idx, L in self.solves:
            y = xp.linalg.solve(L, r[idx])
            out[idx] = xp.linalg.solve(L.T, y)
        if self.rest_idx.shape[0]:
            out[self.rest_idx] = r[self.rest_idx] / self.d_rest
        return out


class PriorPreconditioner(Preconditioner):
    """``M^-1 = L L^T``, the prior covariance (:func:`~linlim.inference.lowrank.prior_factor`).

    Parameters
    ----------
    fallback : {"auto", "exact", "probe", "prior"}
        Diagonal for parameters without a factorable prior: exact Jacobian columns (only
        over those parameters), Hutchinson probing, or the prior Hessian diagonal alone.
        "auto": exact when at most ``max_exact`` parameters are uncovered, else probing.
    max_exact, nprobe : int
    inf_power : float, optional
        Power given to unconstrained GRF modes (default: the largest finite one).
    refresh : bool
        Recompute the fallback diagonal at every linearisation (the priors' factors are
        constant for Gaussian priors and built once).
    """

    def __init__(self, fallback: str = "auto", max_exact: int = 1024, nprobe: int = 32,
                 inf_power: float | None = None, refresh: bool = True) -> None:
        if fallback not in ("auto", "exact", "probe", "prior"):
            raise InputError(f"PriorPreconditioner: fallback must be 'auto', 'exact', "
                             f"'probe' or 'prior', received {fallback!r}")
        self.fallback, self.max_exact, self.nprobe = fallback, int(max_exact), int(nprobe)
        self.inf_power, self.refresh = inf_power, refresh
        self.factor = None
        self._cache: dict = {}  # the priors' own factors, built once

    def build_factor(self, post: Any, theta: Any, H: Any) -> Any:
        """The whitening factor at ``theta`` (cached unless ``refresh``)."""
        if self.factor is not None and not self.refresh:
            return self.factor

        def fallback(rest: np.ndarray) -> Any:
            mode = self.fallback
            if mode == "auto":
                mode = "exact" if rest.size <= self.max_exact else "probe"
            if mode == "prior":
                return np.zeros(rest.size)
            if mode == "exact":  # the data term only (prior_factor adds the prior's)
                from .fisher import fisher_diagonal

                return fisher_diagonal(post, theta, J=H.J, cols=rest, include_prior=False)
            d = gn_diagonal(post, theta, H, method=mode, cols=rest, nprobe=self.nprobe)
            return to_numpy(d) - to_numpy(prior_hessian_diagonal(post, theta, rest))

        self.factor = prior_factor(post, theta, fallback_diag=fallback,
                                   inf_power=self.inf_power, cache=self._cache)
        return self.factor

    def update(self, post: Any, theta: Any, H: Any) -> None:
        self.build_factor(post, theta, H)

    def __call__(self, r: Any) -> Any:
        return self.factor.covariance_product(r)


class LowRankPreconditioner(Preconditioner):
    """Prior whitening plus ``rank`` Lanczos eigenpairs of the whitened Hessian.

    ``M^-1 = L (I + V diag(1/lam - 1) V^T) L^T``, exact on ``span(L V)``; CG then works only
    on the eigenvalues left out.

    Parameters
    ----------
    rank : int
        Eigenpairs kept.
    steps : int, optional
        Lanczos steps (default ``2 rank + 20``), each one GN product.
    refresh_every : int
        Recompute the eigenpairs every this many linearisations (the Hessian changes slowly
        near the optimum; an old ``M`` is still a valid SPD preconditioner).
    base : PriorPreconditioner, optional
        Where ``L`` comes from.
    rng : int
    """

    def __init__(self, rank: int = 50, steps: int | None = None, refresh_every: int = 1,
                 base: PriorPreconditioner | None = None, rng: Any = 0) -> None:
        if int(rank) < 1 or int(refresh_every) < 1:
            raise InputError(f"LowRankPreconditioner: rank and refresh_every must be >= 1, "
                             f"received {rank}, {refresh_every}")
        self.rank, self.steps, self.refresh_every = int(rank), steps, int(refresh_every)
        self.base = base if base is not None else PriorPreconditioner()
        self.rng = rng
        self.posterior: LowRankPosterior | None = None
        self.count = 0
        self.products = 0

    def update(self, post: Any, theta: Any, H: Any) -> None:
        if self.posterior is not None and self.count % self.refresh_every:
            self.count += 1
            return
        self.count += 1
        factor = self.base.build_factor(post, theta, H)
        k = min(self.rank, post.size)
        steps = self.steps if self.steps is not None else min(post.size, 2 * k + 20)
        lam, V, _ = lanczos_eigsh(whitened_hessian(H, factor), post.size, k, steps=steps,
                                  xp=post.xp, rng=self.rng)
        lam = post.xp.maximum(lam, 1e-12 * float(to_numpy(lam.max())))
        self.products += steps
        self.posterior = LowRankPosterior(factor, V, lam, mean=theta)

    def __call__(self, r: Any) -> Any:
        return self.posterior.covariance_product(r)


class SchurPreconditioner(Preconditioner):
    """Block preconditioner: an approximate inverse of a large block, exact coupling to a
    small one.

    With ``H = [[A, B^T], [B, C]]`` (``A`` on ``big``, ``C`` on ``small``, ``B`` their
    coupling) and ``P ~ A^-1`` symmetric positive definite, ``M^-1`` is the exact inverse of
    ``[[P^-1, B^T], [B, C]]`` by block elimination::

        y = P r_big,   z_small = S^-1 (r_small - B y),   z_big = y - (P B^T) z_small,
        S = C - B P B^T   (the Schur complement, dense, small x small, Cholesky-factorised)

    ``M`` is symmetric positive definite when ``P`` and ``S`` are; ``P B^T`` is formed once
    (``len(small)`` applications of ``P``). When ``S`` is not positive definite (``P``
    overestimates ``A^-1`` along ``B``), each eigenvalue of ``S`` below ``floor v^T C v``
    (``v`` its eigenvector; the true Schur complement lies between ``S`` and ``C``) is
    raised to it (``clipped`` counts them), which keeps ``M`` SPD.

    Parameters
    ----------
    n : int
        Size of ``H``.
    big, small : int arrays
        Disjoint indices covering ``0 .. n-1``.
    apply_big : callable
        ``X -> P X`` for ``X`` of shape ``(len(big),)`` or ``(k, len(big))`` (rows).
    C : array (len(small), len(small))
        The small block of ``H`` (symmetric positive definite).
    B : array (len(small), len(big))
        The coupling block ``H[small, big]``.
    floor : float

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    >>> pc = SchurPreconditioner(3, np.array([0, 1]), np.array([2]),
    ...                          lambda X: X @ np.linalg.inv(H[:2, :2]), H[2:, 2:], H[2:, :2])
    >>> bool(np.allclose(pc(H @ np.array([1.0, -2.0, 3.0])), [1.0, -2.0, 3.0]))
    True
    """

    def __init__(self, n: int, big: Any, small: Any, apply_big: Callable[[Any], Any],
                 C: Any, B: Any, floor: float = 1e-3) -> None:
        big = np.asarray(big, dtype=np.int64)
        small = np.asarray(small, dtype=np.int64)
        C = np.asarray(C, float)
        B = np.asarray(B, float)
        cover = np.zeros(int(n), int)
        np.add.at(cover, big, 1)
        np.add.at(cover, small, 1)
        if not np.all(cover == 1):
            raise InputError(f"SchurPreconditioner: big and small must be disjoint and cover "
                             f"0..{n - 1}; {int(np.sum(cover != 1))} indices are not covered "
                             "exactly once")
        if C.shape != (small.size, small.size) or B.shape != (small.size, big.size):
            raise InputError(f"SchurPreconditioner: expected C {(small.size, small.size)} and "
                             f"B {(small.size, big.size)}, received {C.shape} and {B.shape}")
        self.n, self.big, self.small, self.apply_big = int(n), big, small, apply_big
        self.B = B
        self.PBt = np.asarray(apply_big(B), float) if small.size else np.zeros((0, big.size))
        S = C - B @ self.PBt.T
        S = 0.5 * (S + S.T)
        self.clipped = 0
        if small.size:
            try:
                self.L = np.linalg.cholesky(S)
            except np.linalg.LinAlgError:
                lam, V = np.linalg.eigh(S)
                lo = floor * np.einsum("ij,ik,kj->j", V, C, V)   # floor * v^T C v
                self.clipped = int(np.sum(lam < lo))
                S = (V * np.maximum(lam, lo)) @ V.T
                self.L = np.linalg.cholesky(0.5 * (S + S.T))

    def __call__(self, r: Any) -> Any:
        import scipy.linalg as sla

        r = np.asarray(r, float)
        out = np.empty_like(r)
        y = np.asarray(self.apply_big(r[self.big]), float)
        if self.small.size:
            t = r[self.small] - self.B @ y
            zs = sla.cho_solve((self.L, True), t)
            out[self.small] = zs
            out[self.big] = y - self.PBt.T @ zs
        else:
            out[self.big] = y
        return out


def make_preconditioner(spec: Any) -> Preconditioner | None:
    """A :class:`Preconditioner` from a short description.

    Parameters
    ----------
    spec : None, str, array, callable or Preconditioner
        ``None``: none; ``"prior"``, ``"lowrank"``, ``"jacobi"`` (exact diagonal),
        ``"jacobi-probe"``; an array: a fixed ``diag(H)``; a callable ``r -> M^-1 r``;
        a Preconditioner instance is returned as is.
    """
    if spec is None or isinstance(spec, Preconditioner):
        return spec
    if isinstance(spec, str):
        table = {"jacobi": lambda: JacobiPreconditioner(method="exact"),
                 "jacobi-probe": lambda: JacobiPreconditioner(method="probe"),
                 "prior": PriorPreconditioner,
                 "lowrank": LowRankPreconditioner}
        if spec not in table:
            raise InputError(f"preconditioner must be None, one of {sorted(table)}, an "
                             f"array, a callable or a Preconditioner, received {spec!r}")
        return table[spec]()
    if callable(spec):
        return FixedPreconditioner(spec)
    if hasattr(spec, "shape"):
        return JacobiPreconditioner(diag=spec)
    raise InputError(f"preconditioner must be None, a string, an array, a callable or a "
                     f"Preconditioner, received {type(spec).__name__}")
