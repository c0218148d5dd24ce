"""Mass matrices (metrics) for Hamiltonian Monte Carlo.

The kinetic energy is ``K(p) = p^T M^{-1} p / 2`` with momentum ``p ~ N(0, M)``. A sampler
needs three things from a metric, all written against the array module ``xp`` of the
posterior (NumPy or CuPy):

- ``velocity(p) = M^{-1} p``   (the leapfrog position update and the NUTS "sharp" momentum),
- ``kinetic(p) = p . M^{-1} p / 2``,
- ``sample_momentum(rng)``, a draw from ``N(0, M)``.

Random numbers are always drawn on the host from a :class:`numpy.random.Generator` (one
stream per chain) and moved to the device once per draw, so a chain is reproducible bit for
bit whichever backend runs it and its generator state can be checkpointed.

In Stan's language the *inverse metric* ``M^{-1}`` is the posterior covariance estimate:
:class:`DiagonalMetric` and :class:`DenseMetric` are built from a covariance (adapted in
warm-up); the Fisher-matrix metrics take ``M = F`` (a precision), dense or in the low-rank
plus diagonal form of :class:`LowRankMetric` that never forms an ``n x n`` matrix, or
``M = Sigma^{-1}`` of a low-rank Laplace posterior with any prior factor
(:class:`LaplaceMetric`, of which :class:`LowRankMetric` is the diagonal-factor case).
"""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..backend import asarray, get_xp, to_numpy
from ..errors import InputError, ShapeError

__all__ = [
    "Metric",
    "IdentityMetric",
    "DiagonalMetric",
    "DenseMetric",
    "LowRankMetric",
    "LaplaceMetric",
    "fisher_metric",
    "metric_from_state",
]


#: Rows of a dense metric per panel in :func:`_apply_to_rows` (a
#: 512 x 5,363 float64 panel is 22 MB; measured best of 32-512 on a 2-core EPYC VM).
_PANEL_ROWS = 512


def _apply_to_rows(xp: ModuleType, S: Any, P: Any) -> Any:
    """``S p`` for every row ``p`` of ``P`` (C, n): ``(S P^T)^T``, ``S`` (n, n).

    Row panels of ``S`` times ``P^T``: each panel is read from memory once for all ``C``
    columns (a plain GEMM packs, i.e. copies, the whole ``n x n`` matrix first, so on the
    CPU it costs no less than ``C`` matrix-vector products)."""
    if P.shape[0] == 1:
        return (S @ P[0])[None]
    PT = xp.ascontiguousarray(P.T)
    out = xp.empty((S.shape[0], P.shape[0]))
    for i in range(0, S.shape[0], _PANEL_ROWS):
        out[i:i + _PANEL_ROWS] = S[i:i + _PANEL_ROWS] @ PT
    return out.T


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: expected finite values, received non-finite entries")


class Metric:
    """Base class: a symmetric positive-definite mass matrix ``M`` of size ``n``.

    Parameters
    ----------
    size : int
        Number of parameters ``n``.
    xp : module, optional
        Array module of the posterior (default: the active backend).
    """

    kind = "abstract"

    def __init__(self, size: int, xp: ModuleType | None = None) -> None:
        if int(size) < 1:
            raise InputError(f"metric size: expected a positive integer, received {size!r}")
        self.size = int(size)
        self.xp = xp if xp is not None else get_xp()

    # -- what the sampler uses -------------------------------------------------------
    def velocity(self, p: Any) -> Any:
        """``M^{-1} p``; ``p`` is an array (n,) float64 on ``xp``."""
        raise NotImplementedError

    def velocity_batch(self, P: Any) -> Any:
        """``M^{-1}`` applied to each row of ``P`` (C, n): (C, n). Metrics whose product
        vectorises override this with one matrix-matrix product."""
        return self.xp.stack([self.velocity(p) for p in P])

    def mass_batch(self, X: Any) -> Any:
        """``M`` applied to each row of ``X`` (C, n): (C, n) (split HMC's Gaussian part)."""
        raise InputError(f"{type(self).__name__}: no product with the mass matrix; split HMC "
                         "needs a DenseMetric, DiagonalMetric or IdentityMetric")

    def sample_momentum(self, rng: np.random.Generator) -> Any:
        """A draw ``p ~ N(0, M)``, array (n,) float64 on ``xp``."""
        z = asarray(rng.standard_normal(self.size), self.xp)
        return self._sqrt_mass(z)

    def _sqrt_mass(self, z: Any) -> Any:
        """``B z`` with ``B B^T = M``."""
        raise NotImplementedError

    def sqrt_mass_batch(self, Z: Any) -> Any:
        """``B z`` (``B B^T = M``) for every row ``z`` of ``Z`` (C, n): momenta ``N(0, M)``
        from standard normal rows. Metrics whose product vectorises override this."""
        return self.xp.stack([self._sqrt_mass(z) for z in Z])

    def kinetic(self, p: Any, v: Any | None = None) -> float:
        """Kinetic energy ``p . M^{-1} p / 2`` (pass ``v = M^{-1} p`` if already known)."""
        if v is None:
            v = self.velocity(p)
        return 0.5 * float(self.xp.dot(p, v))

    # -- checkpointing ---------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Host arrays that rebuild this metric with :func:`metric_from_state`."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash of the metric's arrays (used to check a resumed run)."""
        h = hashlib.sha256(self.kind.encode())
        for key, val in sorted(self.state().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(val).tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, xp={self.xp.__name__})"


class IdentityMetric(Metric):
    """``M = I``: velocity equals momentum, ``p ~ N(0, I)``."""

    kind = "identity"

    def velocity(self, p: Any) -> Any:
        return p

    def velocity_batch(self, P: Any) -> Any:
        return P

    def mass_batch(self, X: Any) -> Any:
        return X

    def _sqrt_mass(self, z: Any) -> Any:
        return z

    def state(self) -> dict[str, np.ndarray]:
        return {"size": np.array(self.size)}


class DiagonalMetric(Metric):
    """Diagonal metric from an inverse-mass (variance) vector.

    Parameters
    ----------
    inv_mass : array (n,) float64
        ``diag(M^{-1})``, the posterior variance estimate (Stan's ``inv_metric``), > 0.
    xp : module, optional
        Array module.

    Notes
    -----
    ``M^{-1} p = inv_mass * p`` and ``p = z / sqrt(inv_mass)`` with ``z ~ N(0, I)``.
    """

    kind = "diag"

    def __init__(self, inv_mass: Any, xp: ModuleType | None = None) -> None:
        a = np.asarray(to_numpy(inv_mass), dtype=np.float64)
        if a.ndim != 1:
            raise ShapeError(f"inv_mass: expected shape (n,), received {a.shape}")
        _check_finite("inv_mass", a)
        if np.any(a <= 0):
            raise InputError("inv_mass: expected strictly positive variances")
        super().__init__(a.size, xp)
        self._inv_mass_host = a
        self.inv_mass = asarray(a, self.xp)
        self._inv_sqrt = asarray(1.0 / np.sqrt(a), self.xp)

    def velocity(self, p: Any) -> Any:
        return self.inv_mass * p

    def velocity_batch(self, P: Any) -> Any:
        return P * self.inv_mass

    def mass_batch(self, X: Any) -> Any:
        return X / self.inv_mass

    def _sqrt_mass(self, z: Any) -> Any:
        return self._inv_sqrt * z

    def state(self) -> dict[str, np.ndarray]:
        return {"inv_mass": self._inv_mass_host}


class DenseMetric(Metric):
    """Dense metric, from a covariance ``M^{-1}`` or from a precision ``M`` (a Fisher matrix).

    Parameters
    ----------
    inv_mass : array (n, n) float64, optional
        Covariance estimate ``M^{-1}`` (what warm-up adapts). Exactly one of ``inv_mass``
        and ``mass`` is given.
    mass : array (n, n) float64, optional
        Mass matrix ``M`` itself, e.g. the Fisher matrix ``F`` at the MAP.
    xp : module, optional
        Array module.

    Notes
    -----
    With ``Sigma = M^{-1} = L L^T`` (Cholesky), ``p = L^{-T} z`` has covariance
    ``L^{-T} L^{-1} = Sigma^{-1} = M``. Given ``M = C C^T`` instead, ``p = C z`` and
    ``M^{-1} = C^{-T} C^{-1}``. Both matrices are formed once, so each application costs one
    ``n x n`` matrix-vector product; use :class:`LowRankMetric` when ``n`` is large.
    """

    kind = "dense"

    def __init__(
        self,
        inv_mass: Any | None = None,
        mass: Any | None = None,
        xp: ModuleType | None = None,
    ) -> None:
        if (inv_mass is None) == (mass is None):
            raise InputError("DenseMetric: expected exactly one of inv_mass and mass")
        given = inv_mass if inv_mass is not None else mass
        name = "inv_mass" if inv_mass is not None else "mass"
        a = np.asarray(to_numpy(given), dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ShapeError(f"{name}: expected a square matrix (n, n), received {a.shape}")
        _check_finite(name, a)
        a = 0.5 * (a + a.T)
        super().__init__(a.shape[0], xp)
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError as exc:
            raise InputError(f"{name}: expected a positive-definite matrix ({exc})") from exc
        if inv_mass is not None:
            minv = a
            # L^{-T}: a triangular inverse (n^3 / 3 flops), not a general solve
            sqrt_mass = sla.solve_triangular(chol, np.eye(self.size), lower=True).T
        else:
            # C^{-T} C^{-1} from the Cholesky factor (LAPACK potri: n^3 / 3 flops)
            inv, info = sla.lapack.dpotri(chol, lower=True)
            if info != 0:
                raise InputError(f"{name}: expected a positive-definite matrix (potri {info})")
            minv = np.tril(inv) + np.tril(inv, -1).T
            sqrt_mass = chol
        self._given = {name: a}
        self._mass = asarray(a, self.xp) if inv_mass is None else None
        self.inv_mass = asarray(minv, self.xp)
        self._sqrt = asarray(np.ascontiguousarray(sqrt_mass), self.xp)

    def velocity(self, p: Any) -> Any:
        return self.inv_mass @ p

    def velocity_batch(self, P: Any) -> Any:
        return _apply_to_rows(self.xp, self.inv_mass, P)

    def sqrt_mass_batch(self, Z: Any) -> Any:
        return _apply_to_rows(self.xp, self._sqrt, Z)

    def mass_batch(self, X: Any) -> Any:
        if self._mass is not None:
            return _apply_to_rows(self.xp, self._mass, X)
        return (X @ self._sqrt) @ self._sqrt.T       # M = B B^T, B = L^{-T}

    def _sqrt_mass(self, z: Any) -> Any:
        return self._sqrt @ z

    def state(self) -> dict[str, np.ndarray]:
        return dict(self._given)


class LaplaceMetric(Metric):
    r"""Metric from a low-rank Laplace posterior: ``M^{-1} = Sigma = L A^{-1} L^T``.

    ``L`` is a square-root factor (:class:`~linlim.inference.lowrank.Factor`: diagonal,
    dense, Fourier/GRF or block) and ``A = I + V diag(lam - 1) V^T`` with orthonormal ``V``
    (n, k), as :class:`~linlim.inference.lowrank.LowRankPosterior` holds them.

    Parameters
    ----------
    factor : Factor
    V : array (n, k)
    lam : array (k,)
        Eigenvalues of ``A`` on ``span(V)``, > 0.
    xp : module, optional
        Array module (default: the factor's).

    Notes
    -----
    ``velocity(p) = Sigma p = L (u + V (1/lam - 1) V^T u)``, ``u = L^T p``, and
    ``p = L^{-T} (z + V (sqrt(lam) - 1) V^T z)`` has covariance
    ``L^{-T} A L^{-1} = Sigma^{-1} = M`` for ``z ~ N(0, I)``. Set-up ``O(n k)``, each
    application the factor's cost plus ``O(n k)``: a posterior with ``10^5`` parameters
    and a GRF prior never forms an ``n x n`` matrix.
    """

    kind = "laplace"

    def __init__(self, factor: Any, V: Any, lam: Any, xp: ModuleType | None = None) -> None:
        from .lowrank import LowRankPosterior

        if xp is not None and xp is not factor.xp:
            raise InputError("LaplaceMetric: xp differs from the factor's array module; "
                             "build the factor on the posterior's backend")
        super().__init__(factor.size, factor.xp)
        self.posterior = LowRankPosterior(factor, V, lam)
        self.eigenvalues = np.asarray(to_numpy(lam), dtype=np.float64)

    def velocity(self, p: Any) -> Any:
        return self.posterior.covariance_product(p)

    def _sqrt_mass(self, z: Any) -> Any:
        return self.posterior.sqrt_precision_product(z)

    def state(self) -> dict[str, np.ndarray]:
        from .lowrank import _KINDS

        f = self.posterior.factor
        st = {"V": to_numpy(self.posterior.V), "lam": self.eigenvalues,
              "factor_kind": np.array(_KINDS.index(f.kind))}
        if f.kind == "fourier":
            st["factor_shape"] = np.asarray(f.shape, dtype=np.int64)
        st.update({f"factor_{k}": v for k, v in f.state().items()})
        return st

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], xp: ModuleType) -> LaplaceMetric:
        from .lowrank import _KINDS, factor_from_state

        sub = {k[len("factor_"):]: v for k, v in state.items() if k.startswith("factor_")}
        f = factor_from_state(_KINDS[int(sub.pop("kind"))], sub, xp)
        return cls(f, asarray(state["V"], xp), state["lam"])


class LowRankMetric(LaplaceMetric):
    r"""Low-rank plus diagonal metric ``M = diag(d) + U diag(s) U^T``, never formed densely.

    Parameters
    ----------
    diag : array (n,) float64
        ``d > 0``, e.g. the diagonal of a Fisher matrix or a prior precision.
    U : array (n, k) float64
        Low-rank factor (any columns; need not be orthonormal), ``k << n``.
    s : array (k,) float64
        Weights of the low-rank part; may be negative as long as ``M`` stays positive
        definite.
    xp : module, optional
        Array module.

    Notes
    -----
    Whiten by the diagonal: ``M = D^{1/2} (I + W S W^T) D^{1/2}`` with
    ``W = D^{-1/2} U``. A thin QR ``W = Q R`` (``Q`` n x k orthonormal) and the small
    eigendecomposition ``R S R^T = V diag(lam) V^T`` give ``W S W^T = Y diag(lam) Y^T``
    with ``Y = Q V`` orthonormal. This is the :class:`LaplaceMetric` with the diagonal
    factor ``L = D^{-1/2}`` and eigenvalues ``1 + lam`` on ``span(Y)``, so

    - ``M^{-1} p = D^{-1/2} [u + Y ((1 + lam)^{-1} - 1) (Y^T u)]``, ``u = D^{-1/2} p``
      (the Woodbury identity in an orthonormal basis),
    - ``p = D^{1/2} [z + Y ((1 + lam)^{1/2} - 1) (Y^T z)]`` has covariance ``M``,
    - ``M`` is positive definite iff ``1 + lam > 0``.

    Set-up costs ``O(n k^2)``, each application ``O(n k)`` and memory ``O(n k)``.
    """

    kind = "lowrank"

    def __init__(self, diag: Any, U: Any, s: Any, xp: ModuleType | None = None) -> None:
        from .lowrank import DiagonalFactor

        d = np.asarray(to_numpy(diag), dtype=np.float64)
        u = np.asarray(to_numpy(U), dtype=np.float64)
        w = np.asarray(to_numpy(s), dtype=np.float64)
        if d.ndim != 1:
            raise ShapeError(f"diag: expected shape (n,), received {d.shape}")
        if u.ndim != 2 or u.shape[0] != d.size:
            raise ShapeError(f"U: expected shape ({d.size}, k), received {u.shape}")
        if w.shape != (u.shape[1],):
            raise ShapeError(f"s: expected shape ({u.shape[1]},), received {w.shape}")
        for name, a in (("diag", d), ("U", u), ("s", w)):
            _check_finite(name, a)
        if np.any(d <= 0):
            raise InputError("diag: expected strictly positive entries")
        y, lam = _whitened_eigen(d, u, w)
        if np.any(1.0 + lam <= 0):
            raise InputError(
                "LowRankMetric: diag(d) + U diag(s) U^T is not positive definite "
                f"(smallest eigenvalue factor 1 + lam = {1.0 + lam.min():.3g})"
            )
        xp = xp if xp is not None else get_xp()
        super().__init__(DiagonalFactor(1.0 / np.sqrt(d), xp), asarray(y, xp), 1.0 + lam)
        self._host = {"diag": d, "U": u, "s": w}

    def state(self) -> dict[str, np.ndarray]:
        return dict(self._host)


def _whitened_eigen(d: np.ndarray, u: np.ndarray, w: np.ndarray) -> tuple:
    """``Y, lam`` with ``D^{-1/2} U diag(w) U^T D^{-1/2} = Y diag(lam) Y^T``, Y orthonormal."""
    wmat = u / np.sqrt(d)[:, None]
    q, r = np.linalg.qr(wmat, mode="reduced")
    small = r @ (w[:, None] * r.T)
    lam, v = np.linalg.eigh(0.5 * (small + small.T))
    return np.ascontiguousarray(q @ v), lam


def fisher_metric(fisher: Any, xp: ModuleType | None = None) -> Metric:
    """Metric ``M = F`` from a Fisher (or Gauss-Newton) matrix.

    Parameters
    ----------
    fisher : array (n, n) float64, tuple (diag, U, s), LowRankFisher or LowRankPosterior
        A dense positive-definite precision matrix, the low-rank plus diagonal
        description ``F ~ diag(diag) + U diag(s) U^T`` with shapes (n,), (n, k), (k,)
        (or a :class:`~linlim.inference.fisher.LowRankFisher` holding it), or a low-rank
        Laplace posterior (:func:`~linlim.inference.lowrank.low_rank_laplace`; any
        prior factor, e.g. a GRF).
    xp : module, optional
        Array module of the posterior.

    Returns
    -------
    Metric
        :class:`DenseMetric` (``mass=F``), :class:`LowRankMetric` or
        :class:`LaplaceMetric`.
    """
    from .lowrank import LowRankPosterior

    if isinstance(fisher, LowRankPosterior):
        return LaplaceMetric(fisher.factor, fisher.V, fisher.lam, xp=xp)
    if all(hasattr(fisher, a) for a in ("U", "s", "d")) and not hasattr(fisher, "shape"):
        return LowRankMetric(fisher.d, fisher.U, fisher.s, xp=xp)
    if isinstance(fisher, (tuple, list)):
        if len(fisher) != 3:
            raise InputError(
                f"fisher: expected an (n, n) array or a (diag, U, s) tuple, received a "
                f"sequence of length {len(fisher)}"
            )
        return LowRankMetric(*fisher, xp=xp)
    return DenseMetric(mass=fisher, xp=xp)


def metric_from_state(kind: str, state: dict[str, np.ndarray], xp: ModuleType) -> Metric:
    """Rebuild a metric from :meth:`Metric.state` (used when resuming a checkpoint)."""
    if kind == "identity":
        return IdentityMetric(int(state["size"]), xp)
    if kind == "diag":
        return DiagonalMetric(state["inv_mass"], xp)
    if kind == "dense":
        if "mass" in state:
            return DenseMetric(mass=state["mass"], xp=xp)
        return DenseMetric(inv_mass=state["inv_mass"], xp=xp)
    if kind == "lowrank":
        return LowRankMetric(state["diag"], state["U"], state["s"], xp)
    if kind == "laplace":
        return LaplaceMetric.from_state(state, xp)
    raise InputError(f"metric kind: expected identity, diag, dense, lowrank or laplace, "
                     f"received {kind!r}")
