"""Low-rank Laplace posteriors: prior whitening, Lanczos, and what follows from them.

For a posterior whose Gauss-Newton Hessian is ``H = P + F`` (prior precision ``P``, likelihood
Fisher ``F = 2 Re J^H W J``) take a square-root factor ``L`` of the prior covariance,
``L L^T = P^-1`` (a whitening change of variables ``theta = L z``). Then

    L^T H L = I + L^T F L = I + V diag(d) V^T + (the rest, dropped),

and the ``k`` leading eigenpairs ``(1 + d_j, v_j)`` of ``L^T H L`` (Lanczos, matrix-free: one
jvp + one vjp per step) give

    Sigma = H^-1 ~= L (I - V diag(d / (1 + d)) V^T) L^T.

The same object is a preconditioner for CG (``M^-1 = Sigma``), a posterior covariance
(marginal variances, blocks, samples) and an HMC metric (``M = Sigma^-1``). Written with
``lam = 1 + d`` it is exact for any ``L`` when ``k`` equals the dimension, so the factor may
also come from something other than a prior (e.g. a diagonal scaling for unconstrained
parameters).

* Factors: :class:`DiagonalFactor`, :class:`DenseFactor`, :class:`FourierFactor` (a
  stationary Gaussian random field), :class:`ModeBlockFactor` (a band-power prior,
  block-diagonal over frequency modes), :class:`BlockFactor`; :func:`prior_factor` builds one
  from a :class:`~linlim.likelihood.LogPosterior`'s priors.
* Eigen-solvers: :func:`lanczos_eigsh` (full reorthogonalisation, restarts on invariant
  subspaces) and :func:`randomized_eigsh` (Halko et al. 2011; uses block products).
* :class:`LowRankPosterior` and :func:`low_rank_laplace`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..backend import asarray, get_xp, to_numpy, xp_of
from ..errors import InputError, ShapeError

__all__ = [
    "Factor",
    "DiagonalFactor",
    "DenseFactor",
    "FourierFactor",
    "BlockFactor",
    "ModeBlockFactor",
    "prior_factor",
    "prior_hessian_diagonal",
    "lanczos_eigsh",
    "randomized_eigsh",
    "LowRankPosterior",
    "low_rank_laplace",
]


# -- square-root factors ----------------------------------------------------------------------
class Factor:
    """A square matrix ``L`` (n x n) with ``L L^T = C``, a covariance (or approximation).

    Subclasses implement ``apply`` (``L z``), ``apply_t`` (``L^T x``), ``inv`` (``L^-1 x``),
    ``inv_t`` (``L^-T z``), ``cov_diagonal`` (``diag(L L^T)``) and ``state`` (host arrays
    that rebuild the factor with :func:`factor_from_state`). Vectors are (n,) float64 on the
    factor's array module ``xp``.
    """

    kind = "abstract"
    size: int
    xp: Any

    def apply(self, z: Any) -> Any:
        raise NotImplementedError

    def apply_t(self, x: Any) -> Any:
        raise NotImplementedError

    def inv(self, x: Any) -> Any:
        raise NotImplementedError

    def inv_t(self, z: Any) -> Any:
        raise NotImplementedError

    def cov_diagonal(self) -> Any:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def precision_diagonal(self) -> Any:
        """``diag(C^-1) = diag(L^-T L^-1)``, (n,)."""
        raise NotImplementedError

    def covariance_product(self, x: Any) -> Any:
        """``C x = L L^T x``."""
        return self.apply(self.apply_t(x))

    def precision_product(self, x: Any) -> Any:
        """``C^-1 x = L^-T L^-1 x``."""
        return self.inv_t(self.inv(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class DiagonalFactor(Factor):
    """``L = diag(scale)``: independent Gaussians of standard deviations ``scale`` (> 0).

    Examples
    --------
    >>> import numpy as np
    >>> DiagonalFactor(np.array([1.0, 2.0])).cov_diagonal()
    array([1., 4.])
    """

    kind = "diag"

    def __init__(self, scale: Any, xp: Any = None) -> None:
        self.xp = xp if xp is not None else xp_of(scale) if hasattr(scale, "shape") else get_xp()
        s = asarray(scale, self.xp, np.float64)
        if s.ndim != 1:
            raise ShapeError(f"DiagonalFactor: scale must have shape (n,), received "
                             f"{tuple(s.shape)}")
        if not bool(self.xp.isfinite(s).all()) or not bool((s > 0).all()):
            raise InputError("DiagonalFactor: scale must be finite and positive")
        self.scale, self.size = s, int(s.shape[0])

    def apply(self, z: Any) -> Any:
        return self.scale * z

    apply_t = apply

    def inv(self, x: Any) -> Any:
        return x / self.scale

    inv_t = inv

    def cov_diagonal(self) -> Any:
        return self.scale**2

    def precision_diagonal(self) -> Any:
        return 1.0 / self.scale**2

    def state(self) -> dict[str, np.ndarray]:
        return {"scale": to_numpy(self.scale)}


class DenseFactor(Factor):
    """An explicit ``L`` (n x n, invertible), e.g. ``L = C^-T`` from a precision ``P = C C^T``.

    Parameters
    ----------
    L : array (n, n) float64
    """

    kind = "dense"

    def __init__(self, L: Any, xp: Any = None) -> None:
        Lh = np.asarray(to_numpy(L), dtype=np.float64)
        if Lh.ndim != 2 or Lh.shape[0] != Lh.shape[1]:
            raise ShapeError(f"DenseFactor: L must be square, received {Lh.shape}")
        self.xp = get_xp() if xp is None else xp
        self.size = Lh.shape[0]
        self._host = Lh
        self.L = asarray(Lh, self.xp)
        self.Linv = asarray(np.linalg.inv(Lh), self.xp)

    @classmethod
    def from_precision(cls, P: Any, xp: Any = None) -> DenseFactor:
        """``L = C^-T`` with ``P = C C^T`` (Cholesky), so ``L L^T = P^-1``."""
        C = np.linalg.cholesky(np.asarray(to_numpy(P), dtype=np.float64))
        return cls(np.linalg.inv(C).T, xp)

    def apply(self, z: Any) -> Any:
        return self.L @ z

    def apply_t(self, x: Any) -> Any:
        return self.L.T @ x

    def inv(self, x: Any) -> Any:
        return self.Linv @ x

    def inv_t(self, z: Any) -> Any:
        return self.Linv.T @ z

    def cov_diagonal(self) -> Any:
        return (self.L**2).sum(axis=1)

    def precision_diagonal(self) -> Any:
        return (self.Linv**2).sum(axis=0)

    def state(self) -> dict[str, np.ndarray]:
        return {"L": self._host}


class FourierFactor(Factor):
    """``L = F^H diag(s) F`` for the unitary DFT ``F`` over a real grid (a stationary
    Gaussian random field of power ``P_k = s_k^2``, as :class:`~linlim.priors.GRFPrior`).

    Parameters
    ----------
    shape : tuple of int
        Grid shape (``prod(shape) = n``, C order).
    s : array of ``shape``
        ``sqrt(P_k)`` in FFT order, positive and symmetric under ``k -> -k`` (so ``L`` maps
        real fields to real fields and is symmetric: ``L^T = L``).

    Notes
    -----
    ``diag(L L^T) = mean(s^2)`` on every pixel (``|F_ki|^2 = 1/n``).
    """

    kind = "fourier"

    def __init__(self, shape: Sequence[int], s: Any, xp: Any = None) -> None:
        self.xp = get_xp() if xp is None else xp
        self.shape = tuple(int(a) for a in shape)
        sh = np.asarray(to_numpy(s), dtype=np.float64)
        if sh.shape != self.shape:
            raise ShapeError(f"FourierFactor: s must have shape {self.shape}, received "
                             f"{sh.shape}")
        if not np.all(np.isfinite(sh)) or np.any(sh <= 0):
            raise InputError("FourierFactor: s must be finite and positive")
        self._host = sh
        self.s = asarray(sh, self.xp)
        self.size = int(np.prod(self.shape))

    def _filter(self, z: Any, s: Any) -> Any:
        xp = self.xp
        c = xp.fft.fftn(z.reshape(self.shape), norm="ortho")
        return xp.fft.ifftn(c * s, norm="ortho").real.reshape(-1)

    def apply(self, z: Any) -> Any:
        return self._filter(z, self.s)

    apply_t = apply

    def inv(self, x: Any) -> Any:
        return self._filter(x, 1.0 / self.s)

    inv_t = inv

    def cov_diagonal(self) -> Any:
        return self.xp.full(self.size, float(np.mean(self._host**2)))

    def precision_diagonal(self) -> Any:
        return self.xp.full(self.size, float(np.mean(1.0 / self._host**2)))

    def state(self) -> dict[str, np.ndarray]:
        return {"s": self._host}


class ModeBlockFactor(Factor):
    """Block-diagonal ``L`` over the columns of an ``(Nspace, Nk)`` coefficient array (C order,
    index ``j * Nk + k``): ``c[:, k] = L_k z[:, k]`` -- the band-power (GRF) prior of a signal
    basis, block-diagonal over frequency modes (``BandPowerPrior.chol``).

    Parameters
    ----------
    chol : array (Nk, Nspace, Nspace)
        ``L_k`` (invertible, e.g. the Cholesky factor of mode ``k``'s covariance).
    """

    kind = "modeblock"

    def __init__(self, chol: Any, xp: Any = None) -> None:
        Lh = np.asarray(to_numpy(chol), dtype=np.float64)
        if Lh.ndim != 3 or Lh.shape[1] != Lh.shape[2]:
            raise ShapeError(f"ModeBlockFactor: chol must have shape (Nk, Nspace, Nspace), "
                             f"received {Lh.shape}")
        self.xp = get_xp() if xp is None else xp
        self.nk, self.ns = Lh.shape[0], Lh.shape[1]
        self.size = self.nk * self.ns
        self._host = Lh
        self.L = asarray(Lh, self.xp)
        self.Linv = asarray(np.linalg.inv(Lh), self.xp)

    def _map(self, M: Any, v: Any, transpose: bool) -> Any:
        spec = "kji,jk->ik" if transpose else "kij,jk->ik"
        return self.xp.einsum(spec, M, v.reshape(self.ns, self.nk)).reshape(-1)

    def apply(self, z: Any) -> Any:
        return self._map(self.L, z, False)

    def apply_t(self, x: Any) -> Any:
        return self._map(self.L, x, True)

    def inv(self, x: Any) -> Any:
        return self._map(self.Linv, x, False)

    def inv_t(self, z: Any) -> Any:
        return self._map(self.Linv, z, True)

    def cov_diagonal(self) -> Any:
        return (self.L**2).sum(axis=2).T.reshape(-1)

    def precision_diagonal(self) -> Any:
        return (self.Linv**2).sum(axis=1).T.reshape(-1)

    def state(self) -> dict[str, np.ndarray]:
        return {"chol": self._host}


class BlockFactor(Factor):
    """Block-diagonal ``L`` over disjoint index sets covering ``0..n-1``.

    Parameters
    ----------
    size : int
    pieces : sequence of (int array, Factor)
        Each index set and the factor acting on it.
    """

    kind = "block"

    def __init__(self, size: int, pieces: Sequence[tuple[Any, Factor]], xp: Any = None) -> None:
        self.xp = get_xp() if xp is None else xp
        self.size = int(size)
        seen = np.zeros(self.size, dtype=np.int64)
        self.pieces = []
        for idx, f in pieces:
            ih = np.asarray(to_numpy(idx), dtype=np.int64).ravel()
            if ih.size != f.size:
                raise ShapeError(f"BlockFactor: an index set of {ih.size} entries carries a "
                                 f"factor of size {f.size}")
            seen[ih] += 1
            self.pieces.append((ih, asarray(ih, self.xp), f))
        if np.any(seen != 1):
            raise InputError("BlockFactor: the index sets must cover every parameter exactly "
                             f"once ({int(np.sum(seen == 0))} uncovered, "
                             f"{int(np.sum(seen > 1))} repeated)")

    def _map(self, v: Any, method: str) -> Any:
        out = self.xp.empty_like(v)
        for _, idx, f in self.pieces:
            out[idx] = getattr(f, method)(v[idx])
        return out

    def apply(self, z: Any) -> Any:
        return self._map(z, "apply")

    def apply_t(self, x: Any) -> Any:
        return self._map(x, "apply_t")

    def inv(self, x: Any) -> Any:
        return self._map(x, "inv")

    def inv_t(self, z: Any) -> Any:
        return self._map(z, "inv_t")

    def cov_diagonal(self) -> Any:
        out = self.xp.empty(self.size, dtype=np.float64)
        for _, idx, f in self.pieces:
            out[idx] = f.cov_diagonal()
        return out

    def precision_diagonal(self) -> Any:
        out = self.xp.empty(self.size, dtype=np.float64)
        for _, idx, f in self.pieces:
            out[idx] = f.precision_diagonal()
        return out

    def state(self) -> dict[str, np.ndarray]:
        st: dict[str, np.ndarray] = {"size": np.array(self.size)}
        for j, (ih, _, f) in enumerate(self.pieces):
            st[f"p{j}_index"] = ih
            st[f"p{j}_kind"] = np.array(_KINDS.index(f.kind))
            if f.kind == "fourier":
                st[f"p{j}_shape"] = np.asarray(f.shape, dtype=np.int64)
            for k, v in f.state().items():
                st[f"p{j}_{k}"] = v
        return st

    def __repr__(self) -> str:
        return f"BlockFactor(size={self.size}, pieces={[f for _, _, f in self.pieces]})"


_KINDS = ("diag", "dense", "fourier", "block", "modeblock")


def factor_from_state(kind: str, state: dict[str, np.ndarray], xp: Any = None) -> Factor:
    """Rebuild a factor from its ``kind`` and :meth:`Factor.state`."""
    if kind == "diag":
        return DiagonalFactor(state["scale"], xp)
    if kind == "dense":
        return DenseFactor(state["L"], xp)
    if kind == "fourier":
        return FourierFactor(state["shape"], state["s"], xp)
    if kind == "modeblock":
        return ModeBlockFactor(state["chol"], xp)
    if kind == "block":
        pieces = []
        j = 0
        while f"p{j}_index" in state:
            sub = {k[len(f"p{j}_"):]: v for k, v in state.items() if k.startswith(f"p{j}_")}
            pieces.append((sub["index"], factor_from_state(_KINDS[int(sub["kind"])], sub, xp)))
            j += 1
        return BlockFactor(int(state["size"]), pieces, xp)
    raise InputError(f"factor kind: expected one of {_KINDS}, received {kind!r}")


def _selection(prior: Any, n: int) -> np.ndarray:
    sel = getattr(prior, "_sel", None)
    if sel is None:
        return np.arange(n)
    if isinstance(sel, slice):
        return np.arange(n)[sel]
    return np.asarray(to_numpy(sel), dtype=np.int64)


def _factor_of_prior(prior: Any, xp: Any, inf_power: float | None) -> Factor | None:
    """The exact whitening factor of one prior, or None when it has no cheap one.

    Recognised: a prior's own ``whitening_factor()`` (returning a :class:`Factor`), a
    GaussianPrior with ``sigma``/``cov``/``precision``, a GRFPrior, and a prior exposing
    mode blocks ``chol`` (Nk, Nspace, Nspace) with ``shape = (Nspace, Nk)`` (the band-power
    prior of a signal basis).
    """
    from ..priors import GaussianPrior, GRFPrior

    if hasattr(prior, "whitening_factor"):
        return prior.whitening_factor()
    chol = getattr(prior, "chol", None)
    if chol is not None and np.ndim(chol) == 3 and tuple(getattr(prior, "shape", ())) == (
            np.shape(chol)[1], np.shape(chol)[0]):
        return ModeBlockFactor(chol, xp)
    if isinstance(prior, GaussianPrior):
        if prior.kind == "sigma":
            pd = np.broadcast_to(np.asarray(to_numpy(prior._pdiag), dtype=np.float64),
                                 (prior.size,))
            return DiagonalFactor(1.0 / np.sqrt(pd), xp)
        if prior.kind in ("cov", "precision"):
            return DenseFactor.from_precision(prior._P, xp)
        return None
    if isinstance(prior, GRFPrior):
        P = np.asarray(to_numpy(prior.power), dtype=np.float64)
        finite = np.isfinite(P)
        fill = float(P[finite].max()) if inf_power is None and finite.any() else (
            1.0 if inf_power is None else float(inf_power))
        return FourierFactor(prior.shape, np.sqrt(np.where(finite, P, fill)), xp)
    return None


def prior_hessian_diagonal(post: Any, theta: Any, cols: Any = None, *,
                           skip: Sequence[int] = ()) -> Any:
    """Diagonal of the prior Hessian (+ bounded-transform log-Jacobian term) at ``cols``.

    Unlike ``LogPosterior.prior_hessian_diagonal`` this never builds a dense Hessian for a
    stationary GRF prior (its diagonal is ``mean(1/P_k)``, a constant) and touches only the
    priors whose selection meets ``cols`` (``skip``: indices of priors to leave out).

    Returns
    -------
    array (len(cols),) float64
    """
    from ..likelihood import _neg_logjac_hess_diag
    from ..priors import GRFPrior

    xp = post.xp
    n = post.size
    cols = np.arange(n) if cols is None else np.asarray(cols, dtype=np.int64).ravel()
    pos = np.full(n, -1, dtype=np.int64)
    pos[cols] = np.arange(cols.size)
    out = np.zeros(cols.size)
    for j, p in enumerate(post.priors):
        if j in skip:
            continue
        idx = _selection(p, n)
        hit = pos[idx] >= 0
        if not hit.any():
            continue
        if isinstance(p, GRFPrior):  # mean(1/P_k), with unconstrained modes contributing 0
            vals = np.full(idx.size, float(np.mean(to_numpy(p._ipow))))
        elif hasattr(p, "chol") and _factor_of_prior(p, xp, None) is not None:
            vals = to_numpy(_factor_of_prior(p, xp, None).precision_diagonal())
        else:
            z = p._select(theta)
            vals = np.asarray(to_numpy(p._hess_diag(z)), dtype=np.float64).ravel()
            vals = np.broadcast_to(vals, (idx.size,))
        out[pos[idx[hit]]] += vals[hit]
    if getattr(post, "include_log_jacobian", False):
        out += to_numpy(_neg_logjac_hess_diag(post.params, theta))[cols]
    return asarray(out, xp)


def prior_factor(post: Any, theta: Any = None, *, fallback_diag: Any = None,
                 inf_power: float | None = None, cache: dict | None = None) -> Factor:
    """Whitening factor ``L`` (``L L^T ~ P^-1``) from a LogPosterior's priors.

    Each prior that alone covers its parameters and has a cheap square root contributes its
    exact factor: :class:`~linlim.priors.GaussianPrior` with ``sigma`` (diagonal), ``cov``
    or ``precision`` (dense Cholesky), and :class:`~linlim.priors.GRFPrior` (Fourier;
    unconstrained modes ``P_k = inf`` get ``inf_power``, default the largest finite
    ``P_k``). Every other parameter (no prior, an improper or operator prior, or priors that
    overlap) gets ``1 / sqrt(h_k)`` with ``h_k`` the prior Hessian diagonal plus
    ``fallback_diag`` (an estimate of the data term's diagonal there).

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,), optional
        Where the prior Hessian diagonal is taken (Gaussian priors: anywhere).
    fallback_diag : array (n,) or callable, optional
        ``diag`` of the data Fisher (or of ``H``) for the parameters not covered, or a
        callable ``indices -> values`` computing it only there; values <= 0 are floored.
    inf_power : float, optional
    cache : dict, optional
        Per-prior factors from an earlier call, reused (Gaussian priors do not depend on
        ``theta``); filled on first use.

    Returns
    -------
    BlockFactor (or the single factor when one prior covers everything)
    """
    xp = post.xp
    n = post.size
    count = np.zeros(n, dtype=np.int64)
    sels = []
    for p in post.priors:
        idx = _selection(p, n)
        sels.append(idx)
        count[idx] += 1
    pieces = []
    covered = np.zeros(n, dtype=bool)
    for j, (p, idx) in enumerate(zip(post.priors, sels)):
        if np.all(count[idx] == 1):
            if cache is not None and j in cache:
                f = cache[j]
            else:
                f = _factor_of_prior(p, xp, inf_power)
                if cache is not None:
                    cache[j] = f
            if f is not None:
                pieces.append((idx, f))
                covered[idx] = True
    rest = np.nonzero(~covered)[0]
    if rest.size:
        theta = xp.zeros(n) if theta is None else theta
        h = to_numpy(prior_hessian_diagonal(post, theta, rest))
        if fallback_diag is not None:
            extra = fallback_diag(rest) if callable(fallback_diag) else \
                to_numpy(fallback_diag)[rest]
            h = h + np.asarray(to_numpy(extra), dtype=np.float64)
        good = h > 0
        floor = float(h[good].min()) if good.any() else 1.0
        h = np.where(good, h, floor)
        pieces.append((rest, DiagonalFactor(1.0 / np.sqrt(h), xp)))
    if len(pieces) == 1 and np.array_equal(pieces[0][0], np.arange(n)):
        return pieces[0][1]
    return BlockFactor(n, pieces, xp)


# -- symmetric eigen-solvers -------------------------------------------------------------------
def _norm(v: Any) -> float:
    return float(to_numpy(v @ v)) ** 0.5


def lanczos_eigsh(matvec: Callable[[Any], Any], n: int, k: int, *, steps: int | None = None,
                  xp: Any = None, rng: Any = 0) -> tuple[Any, Any, np.ndarray]:
    """Leading ``k`` eigenpairs of a symmetric operator by Lanczos with full
    reorthogonalisation.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` on (n,) float64 vectors.
    n, k : int
        Dimension and number of eigenpairs (``k <= n``).
    steps : int, optional
        Lanczos steps ``m`` (products of ``A``); default ``min(n, 2 k + 20)``.
    xp : module, optional
    rng : int or Generator
        Start vector (drawn on the host).

    Returns
    -------
    lam : array (k,)
        Ritz values, descending.
    V : array (n, k)
        Ritz vectors (orthonormal columns).
    residual : numpy array (k,)
        ``||A v - lam v||`` estimates ``|beta_m s_mj|`` (0 when ``m = n``).

    Notes
    -----
    With ``m = n`` steps (restarting with a fresh orthogonal vector whenever an invariant
    subspace is reached) the decomposition is exact to rounding. Memory ``O(n m)``.
    """
    xp = get_xp() if xp is None else xp
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n, k = int(n), int(k)
    if not 1 <= k <= n:
        raise InputError(f"lanczos_eigsh: need 1 <= k <= n = {n}, received k={k}")
    m = min(n, 2 * k + 20) if steps is None else min(n, max(int(steps), k))
    Q = xp.zeros((m, n), dtype=np.float64)
    alpha = np.zeros(m)
    beta = np.zeros(m)
    q = asarray(rng.standard_normal(n), xp)
    q = q / _norm(q)
    scale = 0.0
    for j in range(m):
        Q[j] = q
        w = matvec(q)
        a = float(to_numpy(q @ w))
        alpha[j] = a
        w = w - a * q
        if j > 0:
            w = w - beta[j - 1] * Q[j - 1]
        for _ in range(2):  # full reorthogonalisation ("twice is enough")
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        b = _norm(w)
        scale = max(scale, abs(a), b)
        beta[j] = b
        if j == m - 1:
            break
        if b <= 1e-12 * max(scale, 1e-300):  # invariant subspace: restart orthogonally
            beta[j] = 0.0
            for _ in range(5):
                q = asarray(rng.standard_normal(n), xp)
                for _ in range(2):
                    q = q - Q[: j + 1].T @ (Q[: j + 1] @ q)
                nq = _norm(q)
                if nq > 1e-8:
                    break
            q = q / nq
        else:
            q = w / b
    T = np.diag(alpha) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
    theta, S = np.linalg.eigh(T)
    order = np.argsort(theta)[::-1][:k]
    resid = np.abs(beta[m - 1] * S[m - 1, order]) if m < n else np.zeros(k)
    V = Q.T @ asarray(np.ascontiguousarray(S[:, order]), xp)
    return asarray(theta[order], xp), V, resid


def randomized_eigsh(matmat: Callable[[Any], Any], n: int, k: int, *, oversample: int = 10,
                     power_iters: int = 1, xp: Any = None, rng: Any = 0) -> tuple[Any, Any]:
    """Leading ``k`` eigenpairs of a symmetric PSD operator by a randomised range finder
    (Halko, Martinsson & Tropp 2011, Alg. 4.4 + 5.3).

    Parameters
    ----------
    matmat : callable
        ``X (n, p) -> A X (n, p)`` (apply to a block of vectors at once where the operator
        can; see :func:`block_apply`).
    n, k : int
    oversample, power_iters : int
    xp : module, optional
    rng : int or Generator

    Returns
    -------
    lam : array (k,) descending, V : array (n, k)
    """
    xp = get_xp() if xp is None else xp
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    p = min(n, int(k) + int(oversample))
    Om = asarray(rng.standard_normal((n, p)), xp)
    Q, _ = xp.linalg.qr(matmat(Om))
    for _ in range(int(power_iters)):
        Q, _ = xp.linalg.qr(matmat(Q))
    B = Q.T @ matmat(Q)
    lam, S = xp.linalg.eigh(0.5 * (B + B.T))
    order = xp.argsort(lam)[::-1][: int(k)]
    return lam[order], Q @ S[:, order]


def block_apply(matvec: Callable[[Any], Any], xp: Any) -> Callable[[Any], Any]:
    """``X (n, p) -> [matvec(X[:, j])]`` as a block product (column by column)."""
    def matmat(X: Any) -> Any:
        return xp.stack([matvec(X[:, j]) for j in range(X.shape[1])], axis=1)

    return matmat


# -- the low-rank posterior --------------------------------------------------------------------
class LowRankPosterior:
    """Gaussian (Laplace) posterior ``N(mean, Sigma)`` with
    ``Sigma = L (I + V diag(1/lam - 1) V^T) L^T``.

    Parameters
    ----------
    factor : Factor
        ``L`` (a prior square root, ``L L^T ~ P^-1``).
    V : array (n, k)
        Orthonormal eigenvectors of the whitened Hessian ``L^T H L``.
    lam : array (k,)
        Their eigenvalues (``1 + d`` when ``L`` whitens the prior exactly), > 0.
    mean : array (n,), optional
        The MAP (for :meth:`sample`).

    Notes
    -----
    With ``A = L^T H L = I + V (lam - 1) V^T`` on ``span(V)`` and ``I`` on its complement,
    any function acts as ``f(A) = I + V (f(lam) - 1) V^T``: ``Sigma = L A^-1 L^T``,
    ``Sigma^-1 = L^-T A L^-1`` and ``Sigma^1/2 = L A^-1/2``. All products cost the
    factor's plus ``O(n k)``.
    """

    def __init__(self, factor: Factor, V: Any, lam: Any, mean: Any = None) -> None:
        xp = factor.xp
        V = asarray(V, xp, np.float64)
        lam_h = np.asarray(to_numpy(lam), dtype=np.float64).ravel()
        if V.ndim != 2 or V.shape[0] != factor.size or V.shape[1] != lam_h.size:
            raise ShapeError(f"LowRankPosterior: V must have shape ({factor.size}, "
                             f"{lam_h.size}), received {tuple(V.shape)}")
        if not np.all(np.isfinite(lam_h)) or np.any(lam_h <= 0):
            raise InputError("LowRankPosterior: eigenvalues of L^T H L must be positive "
                             f"(min {lam_h.min() if lam_h.size else 'n/a'}); is H positive "
                             "definite?")
        self.factor, self.V, self.xp, self.size = factor, V, xp, factor.size
        self.lam = asarray(lam_h, xp)
        self._lam_host = lam_h
        self.mean = None if mean is None else asarray(mean, xp, np.float64)
        self._LV = None

    @property
    def rank(self) -> int:
        return int(self._lam_host.size)

    def _f(self, v: Any, g: Any) -> Any:
        return v + self.V @ (g * (self.V.T @ v))

    def covariance_product(self, v: Any) -> Any:
        """``Sigma v`` (also the preconditioner ``M^-1 v``)."""
        return self.factor.apply(self._f(self.factor.apply_t(v), 1.0 / self.lam - 1.0))

    __call__ = covariance_product

    def precision_product(self, v: Any) -> Any:
        """``Sigma^-1 v``."""
        return self.factor.inv_t(self._f(self.factor.inv(v), self.lam - 1.0))

    def sqrt_covariance_product(self, z: Any) -> Any:
        """``S z`` with ``S S^T = Sigma`` (``S = L A^-1/2``)."""
        return self.factor.apply(self._f(z, 1.0 / self.xp.sqrt(self.lam) - 1.0))

    def sqrt_precision_product(self, z: Any) -> Any:
        """``R z`` with ``R R^T = Sigma^-1`` (``R = L^-T A^1/2``)."""
        return self.factor.inv_t(self._f(z, self.xp.sqrt(self.lam) - 1.0))

    def _lv(self) -> Any:
        if self._LV is None:
            self._LV = self.xp.stack([self.factor.apply(self.V[:, j])
                                      for j in range(self.rank)], axis=1) if self.rank else \
                self.xp.zeros((self.size, 0))
        return self._LV

    def marginal_variances(self) -> Any:
        """``diag(Sigma)``, (n,): ``diag(L L^T) + sum_j (1/lam_j - 1) (L v_j)^2``."""
        LV = self._lv()
        return self.factor.cov_diagonal() + (LV**2 * (1.0 / self.lam - 1.0)).sum(axis=1)

    def marginal_errors(self) -> Any:
        """``sqrt(diag(Sigma))``, (n,)."""
        return self.xp.sqrt(self.marginal_variances())

    def covariance_block(self, index: Any) -> Any:
        """``Sigma[index][:, index]`` as a dense (m, m) array (m factor products)."""
        idx = np.asarray(to_numpy(index) if not isinstance(index, slice) else
                         np.arange(self.size)[index], dtype=np.int64).ravel()
        xp = self.xp
        cols = []
        for i in idx:
            e = xp.zeros(self.size, dtype=np.float64)
            e[int(i)] = 1.0
            cols.append(self.factor.covariance_product(e)[asarray(idx, xp)])
        prior = xp.stack(cols, axis=1) if cols else xp.zeros((0, 0))
        LVi = self._lv()[asarray(idx, xp)]
        C = prior + (LVi * (1.0 / self.lam - 1.0)) @ LVi.T
        return 0.5 * (C + C.T)

    def sample(self, rng: Any = None, size: int = 1) -> Any:
        """Draws from ``N(mean, Sigma)``, array (size, n) on ``xp``."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        mean = self.mean if self.mean is not None else self.xp.zeros(self.size)
        out = [mean + self.sqrt_covariance_product(asarray(rng.standard_normal(self.size),
                                                           self.xp)) for _ in range(int(size))]
        return self.xp.stack(out)

    def dense_covariance(self) -> Any:
        """``Sigma`` as an (n, n) array (small problems and tests)."""
        eye = self.xp.eye(self.size)
        C = self.xp.stack([self.covariance_product(eye[k]) for k in range(self.size)], axis=1)
        return 0.5 * (C + C.T)

    def metric(self) -> Any:
        """An HMC metric with ``M = Sigma^-1`` (:class:`~linlim.inference.metric.LaplaceMetric`)."""
        from .metric import LaplaceMetric

        return LaplaceMetric(self.factor, self.V, self.lam)

    def __repr__(self) -> str:
        return f"LowRankPosterior(size={self.size}, rank={self.rank}, factor={self.factor!r})"


def whitened_hessian(H: Any, factor: Factor) -> Callable[[Any], Any]:
    """``z -> L^T H L z`` for a Gauss-Newton operator (or any SPD product) ``H``."""
    mv = H.matvec if hasattr(H, "matvec") else H

    def apply(z: Any) -> Any:
        return factor.apply_t(mv(factor.apply(z)))

    return apply


def low_rank_laplace(post: Any, theta: Any, rank: int, *, factor: Factor | None = None,
                     method: str = "auto", steps: int | None = None, H: Any = None,
                     fallback_diag: Any = None, rng: Any = 0) -> LowRankPosterior:
    """Low-rank Laplace approximation of a posterior at ``theta`` (the MAP).

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,)
    rank : int
        Eigenpairs ``k`` of the whitened Hessian kept (``k = n`` is exact).
    factor : Factor, optional
        ``L``; default :func:`prior_factor` (with ``fallback_diag``).
    method : {"auto", "lanczos", "randomized", "dense"}
        "auto": dense when ``rank >= n`` (n products), else Lanczos.
    steps : int, optional
        Lanczos steps (default ``min(n, 2 rank + 20)``).
    H : LinearOperator, optional
        The Gauss-Newton operator at ``theta`` (default ``post.linearize_gn(theta)``).
    fallback_diag : array or callable, optional
        Passed to :func:`prior_factor`.
    rng : int or Generator

    Returns
    -------
    LowRankPosterior

    Notes
    -----
    Cost: ``steps`` (Lanczos) or ``rank + oversample`` x (2 + 2 power iterations)
    (randomised) Gauss-Newton products, each one jvp + one vjp.
    """
    xp = post.xp
    n = post.size
    rank = int(rank)
    if rank < 1:
        raise InputError(f"low_rank_laplace: rank must be >= 1, received {rank}")
    rank = min(rank, n)
    if H is None:
        H = post.linearize_gn(theta)
    if factor is None:
        factor = prior_factor(post, theta, fallback_diag=fallback_diag)
    A = whitened_hessian(H, factor)
    if method == "auto":
        method = "dense" if rank >= n else "lanczos"
    if method == "dense":
        eye = xp.eye(n)
        M = xp.stack([A(eye[j]) for j in range(n)], axis=1)
        lam, V = xp.linalg.eigh(0.5 * (M + M.T))
        order = xp.argsort(lam)[::-1][:rank]
        lam, V = lam[order], V[:, order]
    elif method == "lanczos":
        lam, V, _ = lanczos_eigsh(A, n, rank, steps=steps, xp=xp, rng=rng)
    elif method == "randomized":
        lam, V = randomized_eigsh(block_apply(A, xp), n, rank, xp=xp, rng=rng)
    else:
        raise InputError(f"low_rank_laplace: method must be 'auto', 'lanczos', 'randomized' "
                         f"or 'dense', received {method!r}")
    return LowRankPosterior(factor, V, lam, mean=theta)
