"""Priors over the flat parameter vector ``theta``: Gaussian, smoothness, Gaussian random field.

Every prior is a log density ``log p(z)`` (up to a constant) of a selection ``z`` of ``theta``
(all of it, a slice, an integer index array, or a :class:`~linlim.params.Params` block name
resolved by :class:`~linlim.likelihood.LogPosterior`), with

* ``logpdf(theta)`` -> float,
* ``grad(theta)`` -> (n,) gradient of ``logpdf``,
* ``hess_product(theta, v)`` -> (n,) Hessian of the *negative* log prior times ``v``,
* ``hessian_dense(theta)`` -> (n, n) that Hessian as a matrix.

All priors here are Gaussian in ``z`` (quadratic ``-1/2 (z - mu)^T P (z - mu)`` with a
precision ``P``), so the Hessian is ``P``, constant, and Gauss-Newton is exact for them.
Normalising constants (``log det P``) are dropped: they do not depend on ``theta``.

Bounds are not priors here: they are Params transforms (``BoundedTransform``,
``LogTransform``), whose log-Jacobian :class:`~linlim.likelihood.LogPosterior` adds when a
density over ``theta`` is sampled (``include_log_jacobian=True``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .backend import asarray, get_xp, to_numpy
from .errors import InputError, ShapeError
from .operators.base import LinearOperator
from .operators.cg import conjugate_gradient
from .operators.linear import FFT
from .validation import check_axis

__all__ = [
    "Prior",
    "GaussianPrior",
    "SmoothnessPrior",
    "GRFPrior",
    "FiniteDifference",
    "BandPowerPrior",
]


class Prior:
    """Base class: a log density of a selection ``z = theta[index]``.

    Subclasses implement ``_logpdf(z)``, ``_grad(z)`` (of ``log p``) and ``_hess(z, v)``
    (Hessian of ``-log p`` times ``v``) on the selection.

    Parameters
    ----------
    size : int or None
        Length of ``z``; None to take it from the selection when the prior is bound.
    index : None, slice, int array or str
        Which entries of ``theta`` the prior acts on: all (None, then ``theta`` must have
        ``size`` entries), a slice, integer indices, or the name of a Params block (resolved
        when the prior is given to a ``LogPosterior`` with ``params``).
    xp : module, optional
        Array module (the active backend's by default).
    """

    def __init__(self, size: int | None, index: Any = None, xp: Any = None) -> None:
        self.size = None if size is None else int(size)
        self.xp = get_xp() if xp is None else xp
        self.index = index
        self._sel: Any = None if index is None or isinstance(index, str) else (
            index if isinstance(index, slice) else asarray(np.asarray(index, np.int64), self.xp)
        )
        self._n: int | None = None

    # -- binding to a parameter vector ---------------------------------------------------
    def bind(self, n: int, params: Any = None) -> Prior:
        """Resolve ``index`` against a parameter vector of ``n`` entries (and ``params``).

        Raises
        ------
        InputError, ShapeError
            For an unknown block name or a selection whose length is not ``size``.
        """
        if isinstance(self.index, str):
            if params is None:
                raise InputError(
                    f"{type(self).__name__}: index={self.index!r} names a Params block but "
                    "the LogPosterior received params=None"
                )
            params.index(self.index)  # raises for an unknown name
            self._sel = params.slices[self.index]
        if self._sel is None:
            m = n
        elif isinstance(self._sel, slice):
            m = len(range(*self._sel.indices(n)))
        else:
            m = int(self._sel.shape[0])
            if m and (int(self._sel.min()) < 0 or int(self._sel.max()) >= n):
                raise InputError(
                    f"{type(self).__name__}: index entries must lie in [0, {n}), received "
                    f"[{int(self._sel.min())}, {int(self._sel.max())}]"
                )
        if self.size is None:
            self.size = m
        if m != self.size:
            raise ShapeError(
                f"{type(self).__name__}: the selection of theta (index={self.index!r}) has "
                f"{m} entries, but the prior has size {self.size}"
            )
        self._n = int(n)
        return self

    def _select(self, theta: Any) -> Any:
        if self._n is None:
            self.bind(int(theta.shape[0]))
        if int(theta.shape[0]) != self._n:
            raise ShapeError(
                f"{type(self).__name__}: expected theta of shape ({self._n},), received "
                f"{tuple(theta.shape)}"
            )
        return theta if self._sel is None else theta[self._sel]

    def _embed(self, z: Any) -> Any:
        if self._sel is None:
            return z
        out = self.xp.zeros(self._n, dtype=np.float64)
        out[self._sel] = z
        return out

    # -- public API ------------------------------------------------------------------------
    def logpdf(self, theta: Any) -> float:
        """``log p`` (up to a constant) at ``theta`` (n,) float64."""
        return float(to_numpy(self._logpdf(self._select(theta))))

    def grad(self, theta: Any) -> Any:
        """Gradient of ``log p`` with respect to ``theta``, shape (n,)."""
        return self._embed(self._grad(self._select(theta)))

    def hess_product(self, theta: Any, v: Any) -> Any:
        """Hessian of ``-log p`` at ``theta`` times ``v`` (both (n,)), shape (n,)."""
        return self._embed(self._hess(self._select(theta), self._select(v)))

    def hessian_dense(self, theta: Any) -> Any:
        """Hessian of ``-log p`` as an (n, n) float64 array (zero outside the selection)."""
        z = self._select(theta)
        H = self._hess_dense(z)
        if self._sel is None:
            return H
        out = self.xp.zeros((self._n, self._n), dtype=np.float64)
        idx = self.xp.arange(self._n)[self._sel]
        out[idx[:, None], idx[None, :]] = H
        return out

    def hessian_diagonal(self, theta: Any) -> Any:
        """Diagonal of the Hessian of ``-log p``, (n,) (zero outside the selection)."""
        return self._embed(self._hess_diag(self._select(theta)))

    def _hess_diag(self, z: Any) -> Any:
        return self.xp.diag(self._hess_dense(z)).copy()

    def _hess_dense(self, z: Any) -> Any:
        eye = self.xp.eye(self.size, dtype=np.float64)
        return self.xp.stack([self._hess(z, eye[k]) for k in range(self.size)], axis=1)

    def _logpdf(self, z: Any) -> Any:
        raise NotImplementedError

    def _grad(self, z: Any) -> Any:
        raise NotImplementedError

    def _hess(self, z: Any, v: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, index={self.index!r})"


def _cg_solve(apply: Callable, b: Any, xp: Any, tol: float = 1e-13,
              maxiter: int | None = None) -> Any:
    """``S^-1 b`` for an SPD covariance operator, by the package's one CG solver."""

    return conjugate_gradient(apply, b, tol=tol, maxiter=maxiter or 10 * b.shape[0]).x


class GaussianPrior(Prior):
    """Gaussian prior ``log p(z) = -1/2 (z - mu)^T S^-1 (z - mu)``.

    Give exactly one of ``sigma`` (diagonal, scalar or (k,)), ``cov`` (dense (k, k)),
    ``precision`` (dense (k, k), ``S^-1``), ``cov_operator`` (a :class:`LinearOperator`
    (k,) -> (k,) applying ``S``, inverted by conjugate gradients) or ``precision_operator``
    (a LinearOperator applying ``S^-1``).

    Parameters
    ----------
    mean : float or array (k,)
        Prior mean ``mu`` (units of ``theta``).
    sigma, cov, precision, cov_operator, precision_operator
        The covariance, in one of the forms above.
    size : int, optional
        ``k``; inferred from the mean or the covariance when omitted.
    index : None, slice, int array or str
        Selection of ``theta`` (see :class:`Prior`).
    cg_tol : float
        Relative residual for the CG solves of ``cov_operator``.

    Notes
    -----
    ``grad log p = -S^-1 (z - mu)``; the Hessian of ``-log p`` is ``S^-1``. A dense
    covariance is Cholesky-factorised once (on the host) and its inverse stored.

    Examples
    --------
    >>> import numpy as np
    >>> p = GaussianPrior(mean=np.zeros(2), sigma=np.array([1.0, 2.0]))
    >>> p.logpdf(np.array([1.0, 2.0]))
    -1.0
    """

    def __init__(self, mean: Any = 0.0, *, sigma: Any = None, cov: Any = None,
                 precision: Any = None, cov_operator: LinearOperator | None = None,
                 precision_operator: LinearOperator | None = None, size: int | None = None,
                 index: Any = None, cg_tol: float = 1e-13, xp: Any = None) -> None:
        given = {k: v for k, v in dict(sigma=sigma, cov=cov, precision=precision,
                                       cov_operator=cov_operator,
                                       precision_operator=precision_operator).items()
                 if v is not None}
        if len(given) != 1:
            raise InputError(
                "GaussianPrior: give exactly one of sigma, cov, precision, cov_operator, "
                f"precision_operator; received {sorted(given) or 'none'}"
            )
        kind, value = next(iter(given.items()))
        xp = get_xp() if xp is None else xp
        mean_np = np.asarray(to_numpy(mean), dtype=np.float64)
        k = size
        if k is None:
            if mean_np.ndim == 1:
                k = mean_np.shape[0]
            elif kind in ("cov", "precision"):
                k = np.asarray(to_numpy(value)).shape[0]
            elif kind == "sigma" and np.ndim(to_numpy(value)) == 1:
                k = np.asarray(to_numpy(value)).shape[0]
            elif kind in ("cov_operator", "precision_operator"):
                k = value.in_shape[0]
            # else: a scalar mean and sigma; the size comes from the selection at bind time
        super().__init__(k, index, xp)
        if mean_np.ndim not in (0, 1) or (mean_np.ndim == 1 and mean_np.shape[0] != k):
            raise ShapeError(f"GaussianPrior: mean must be a scalar or shape ({k},), "
                             f"received shape {mean_np.shape}")
        if not np.all(np.isfinite(mean_np)):
            raise InputError("GaussianPrior: mean contains non-finite values")
        self.mean = asarray(mean_np.copy(), xp)
        self.kind = kind
        self.cg_tol = cg_tol
        if kind == "sigma":
            s = np.asarray(to_numpy(value), dtype=np.float64)
            if s.ndim not in (0, 1) or (s.ndim == 1 and s.shape[0] != k):
                raise ShapeError(f"GaussianPrior: sigma must be a scalar or shape ({k},), "
                                 f"received shape {s.shape}")
            if not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise InputError("GaussianPrior: sigma must be finite and positive, "
                                 f"received min {float(s.min())}")
            self._pdiag = asarray(1.0 / s**2, xp)
        elif kind in ("cov", "precision"):
            M = np.asarray(to_numpy(value), dtype=np.float64)
            if M.shape != (k, k):
                raise ShapeError(f"GaussianPrior: {kind} must have shape ({k}, {k}), "
                                 f"received {M.shape}")
            if not np.all(np.isfinite(M)) or not np.allclose(M, M.T, rtol=1e-12, atol=0):
                raise InputError(f"GaussianPrior: {kind} must be finite and symmetric")
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                raise InputError(f"GaussianPrior: {kind} is not positive definite") from None
            if kind == "cov":
                Linv = np.linalg.solve(L, np.eye(k))
                P = Linv.T @ Linv
            else:
                P = M
            self._P = asarray(0.5 * (P + P.T), xp)
        else:
            op = value
            if op.in_shape != (k,) or op.out_shape != (k,):
                raise ShapeError(f"GaussianPrior: {kind} must map ({k},) -> ({k},), received "
                                 f"{op.in_shape} -> {op.out_shape}")
            self._op = op

    def _prec(self, r: Any) -> Any:
        if self.kind == "sigma":
            return self._pdiag * r
        if self.kind in ("cov", "precision"):
            return self._P @ r
        if self.kind == "precision_operator":
            return self._op.matvec(r)
        return _cg_solve(self._op.matvec, r, self.xp, self.cg_tol)

    def _logpdf(self, z: Any) -> Any:
        r = z - self.mean
        return -0.5 * (r @ self._prec(r))

    def _grad(self, z: Any) -> Any:
        return -self._prec(z - self.mean)

    def _hess(self, z: Any, v: Any) -> Any:
        return self._prec(v)

    def _hess_diag(self, z: Any) -> Any:
        if self.kind == "sigma":
            return self._pdiag * self.xp.ones(self.size)
        if self.kind in ("cov", "precision"):
            return self.xp.diag(self._P).copy()
        return super()._hess_diag(z)

    def _hess_dense(self, z: Any) -> Any:
        if self.kind == "sigma":
            return self.xp.diag(self._pdiag * self.xp.ones(self.size))
        if self.kind in ("cov", "precision"):
            return self._P.copy()
        return super()._hess_dense(z)


class FiniteDifference(LinearOperator):
    """Forward difference of order ``k`` along one axis: ``y = diff(x, n=k, axis)``.

    Parameters
    ----------
    in_shape : tuple of int
        Input shape; the output has ``in_shape[axis] - order`` entries along ``axis``.
    order : int
        Difference order (1: slope, 2: curvature).
    axis : int
    dtype : dtype

    Notes
    -----
    For order 1, ``y_i = x_{i+1} - x_i`` (i < N - 1). Under ``Re <., .>``,
    ``sum conj(y_i) w_i = sum conj(x_j) (w_{j-1} - w_j)`` with ``w_{-1} = w_{N-1} = 0``, so
    ``A^H w = -diff(pad(w, (1, 1)))``. Order ``k`` applies order 1 ``k`` times, and its
    adjoint the adjoints in reverse order.
    """

    _abstract = False

    def __init__(self, in_shape: Any, order: int = 1, axis: int = -1,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        in_shape = tuple(int(s) for s in in_shape)
        axis = check_axis(axis, len(in_shape), "axis", "FiniteDifference")
        if int(order) < 1 or in_shape[axis] <= int(order):
            raise InputError(
                f"FiniteDifference: need 1 <= order < in_shape[axis]; received order={order}, "
                f"in_shape[{axis}]={in_shape[axis]}"
            )
        out = list(in_shape)
        out[axis] -= int(order)
        super().__init__(in_shape, tuple(out), dtype, dtype, xp=xp)
        self.order, self.axis = int(order), axis
        self._pad = [(0, 0)] * len(in_shape)
        self._pad[axis] = (1, 1)

    def _matvec(self, x: Any) -> Any:
        return self.xp.diff(x, n=self.order, axis=self.axis)

    def _rmatvec(self, y: Any) -> Any:
        for _ in range(self.order):
            y = -self.xp.diff(self.xp.pad(y, self._pad), axis=self.axis)
        return y


class SmoothnessPrior(Prior):
    """Finite-difference smoothness penalty ``log p(z) = -1/2 ||D^k z||^2 / sigma^2``.

    Parameters
    ----------
    shape : tuple of int
        Shape of the selected parameters as a grid (``prod(shape)`` entries of ``theta``,
        C order), e.g. ``(Nfreqs,)`` for a spectrum or ``(Nants, Nfreqs)`` for gains.
    sigma : float or array
        Scale of the allowed ``k``-th difference (units of ``theta`` per sample^k);
        broadcastable against the differenced grid.
    order : int
        Difference order ``k``.
    axis : int
        Grid axis along which differences are taken.
    index : None, slice, int array or str
        Selection of ``theta``.

    Notes
    -----
    ``grad log p = -D^T (D z / sigma^2)`` and the Hessian of ``-log p`` is
    ``D^T sigma^-2 D``, with ``D`` the :class:`FiniteDifference` operator. The prior is
    improper along polynomials of degree < k (they have zero penalty).
    """

    def __init__(self, shape: Sequence[int], sigma: Any = 1.0, order: int = 1, axis: int = -1,
                 index: Any = None, xp: Any = None) -> None:
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        super().__init__(int(np.prod(shape)), index, xp)
        self.shape = shape
        axis = check_axis(axis, len(shape), "axis", "SmoothnessPrior")
        self.D = FiniteDifference(shape, order, axis, xp=self.xp)
        s = np.asarray(to_numpy(sigma), dtype=np.float64)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError("SmoothnessPrior: sigma must be finite and positive")
        try:
            np.broadcast_shapes(s.shape, self.D.out_shape)
        except ValueError:
            raise ShapeError(f"SmoothnessPrior: sigma of shape {s.shape} does not broadcast "
                             f"against the differenced grid {self.D.out_shape}") from None
        self._w = asarray(1.0 / s**2, self.xp)

    def _logpdf(self, z: Any) -> Any:
        dz = self.D.matvec(z.reshape(self.shape))
        return -0.5 * (self._w * dz * dz).sum()

    def _grad(self, z: Any) -> Any:
        return -self._hess(z, z)

    def _hess(self, z: Any, v: Any) -> Any:
        dv = self.D.matvec(v.reshape(self.shape))
        return self.D.rmatvec(self._w * dv).reshape(-1)


class GRFPrior(Prior):
    """Stationary (periodic) Gaussian random field prior given by a power spectrum.

    The selected parameters form a grid ``z`` of ``shape``; its covariance is circulant,
    diagonal in the unitary DFT ``F`` (``norm="ortho"``) with eigenvalues ``P_k``::

        log p(z) = -1/2 sum_k |(F (z - mu))_k|^2 / P_k

    Parameters
    ----------
    power : array of ``shape`` or callable
        ``P_k`` (units of ``theta``^2), in FFT order (as ``numpy.fft.fftfreq``), or a
        callable ``P(kmag)`` of the wavenumber magnitude ``kmag`` (cycles per unit length)
        on the grid of ``fftfreq(n, spacing)`` along each axis. ``P_k = inf`` leaves a mode
        unconstrained (e.g. the mean, k = 0); ``P_k`` must otherwise be positive.
    shape : tuple of int
        Grid shape; ``prod(shape)`` entries of ``theta`` (C order).
    spacing : float or sequence of float
        Grid spacing per axis (only for a callable ``power``), e.g. channel width in Hz for
        a delay power spectrum (then ``k`` is delay in s).
    mean : float or array
        Prior mean field.
    index : None, slice, int array or str

    Notes
    -----
    With ``c = F (z - mu)``, ``grad log p = -Re F^H (c / P)`` and the Hessian of ``-log p``
    is ``F^H diag(1/P) F`` (real symmetric because ``P_k = P_{-k}`` for a real field: a
    power array that is not symmetric under ``k -> -k`` is refused). The covariance of
    the field is ``cov(z_i, z_j) = (1/N) sum_k P_k exp(2 pi i k (i - j) / N)``, so
    ``P_k = N * (discrete power per mode)`` in the usual ``|fft(z)|^2 / N`` normalisation.
    """

    def __init__(self, power: Any, shape: Sequence[int], spacing: Any = 1.0, mean: Any = 0.0,
                 index: Any = None, xp: Any = None) -> None:
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        if not shape or min(shape) < 1:
            raise ShapeError(f"GRFPrior: shape: expected lengths >= 1, received {shape}")
        sp = np.asarray(spacing, dtype=np.float64)
        if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
            raise InputError(f"GRFPrior: spacing: expected finite grid spacings > 0, "
                             f"received {spacing!r}")
        super().__init__(int(np.prod(shape)), index, xp)
        self.shape = shape
        if callable(power):
            sp = np.broadcast_to(sp, (len(shape),))
            ks = np.meshgrid(*[np.fft.fftfreq(n, d) for n, d in zip(shape, sp)], indexing="ij")
            P = np.asarray(power(np.sqrt(sum(k**2 for k in ks))), dtype=np.float64)
        else:
            P = np.asarray(to_numpy(power), dtype=np.float64)
        if P.shape != shape:
            raise ShapeError(f"GRFPrior: power must have shape {shape}, received {P.shape}")
        if np.any(np.isnan(P)) or np.any(P <= 0):
            raise InputError("GRFPrior: power must be positive (inf for unconstrained modes)")
        flipped = P
        for a, n in enumerate(shape):
            flipped = np.take(flipped, (-np.arange(n)) % n, axis=a)
        if not np.array_equal(P, flipped) and not np.allclose(P, flipped, rtol=1e-12, atol=0):
            raise InputError("GRFPrior: power must satisfy P(k) = P(-k) for a real field")
        self.power = asarray(P, self.xp)
        self._ipow = asarray(np.where(np.isinf(P), 0.0, 1.0 / np.where(np.isinf(P), 1.0, P)),
                             self.xp)
        m = np.asarray(to_numpy(mean), dtype=np.float64)
        if m.ndim == 0:
            m = np.full(shape, float(m))
        elif m.size == self.size:
            m = m.reshape(shape)
        else:
            raise ShapeError(f"GRFPrior: mean must be a scalar or have {self.size} entries, "
                             f"received shape {m.shape}")
        self.mean = asarray(m, self.xp)
        # the unitary DFT over all axes, composed from one-axis FFT operators
        ops = [FFT(shape, axis=a, norm="ortho", in_dtype=np.float64 if a == 0 else
                   np.complex128, xp=self.xp) for a in range(len(shape))]
        F = ops[0]
        for op in ops[1:]:
            F = op @ F
        self.F = F

    def _prec(self, v: Any) -> Any:
        c = self.F.matvec(v.reshape(self.shape))
        return self.F.rmatvec(c * self._ipow).reshape(-1)

    def _logpdf(self, z: Any) -> Any:
        c = self.F.matvec(z.reshape(self.shape) - self.mean)
        return -0.5 * (self._ipow * (c.real**2 + c.imag**2)).sum()

    def _grad(self, z: Any) -> Any:
        return -self._prec(z - self.mean.reshape(-1))

    def _hess(self, z: Any, v: Any) -> Any:
        return self._prec(v)


class BandPowerPrior(Prior):
    """Gaussian prior on 21 cm signal coefficients from band powers (the GRF prior).

    ``c ~ N(0, S(P))`` with ``S(P) = sum_b P_b S_b``
    (:class:`~linlim.sky.bandpower.BandPowerCovariance`), block-diagonal over the
    frequency modes: ``S(P) = blockdiag_k S_k``. The coefficients are the ``(Nspace, Nk)``
    array of the signal basis, flattened in C order (index ``j * Nk + k``), i.e. the
    ``Params`` block of the basis's input.

    Parameters
    ----------
    bands : BandPowerCovariance
    power : array (Nband,), mK^2 Mpc^3
        Band powers, all > 0 (an :class:`~linlim.errors.InputError` names the band and
        value otherwise).
    index : None, slice, int array or str
        Selection of ``theta`` (see :class:`Prior`), e.g. the ``"signal"`` block name.
    jitter : float
        Relative diagonal loading of each block before factorising (0 by default; use
        ~1e-10 when a basis has more coefficients than the bands constrain).

    Attributes
    ----------
    chol : ndarray (Nk, Nspace, Nspace)
        ``L_k`` with ``S_k = L_k L_k^T``, K.
    whitening : :class:`~linlim.sky.bandpower.ModeBlockMatrix`
        ``z -> c = S^{1/2} z`` (``L_k`` per mode) on the ``(Nspace, Nk)`` coefficients:
        the prior-whitened parameterisation / preconditioner.

    Notes
    -----
    ``log p = -1/2 c^T S^-1 c`` with ``S^-1`` applied blockwise by Cholesky solves;
    Hessian of ``-log p`` is ``S^-1``; with ``c = L z``, ``log p = -1/2 |z|^2``.
    """

    def __init__(self, bands: Any, power: Any, index: Any = None, jitter: float = 0.0,
                 xp: Any = None) -> None:
        from .sky.bandpower import BandPowerCovariance, ModeBlockMatrix

        if not isinstance(bands, BandPowerCovariance):
            raise InputError(f"BandPowerPrior: bands must be a BandPowerCovariance, received "
                             f"{type(bands).__name__}")
        super().__init__(bands.size, index, xp)
        self.bands = bands
        self.power = bands.check_power(power)
        self.shape = (bands.nspace, bands.nk)
        L = bands.cholesky_blocks(self.power, jitter)
        eye = np.eye(bands.nspace)
        Linv = np.stack([np.linalg.solve(Lk, eye) for Lk in L])
        P = np.einsum("kji,kjl->kil", Linv, Linv)  # S_k^-1 = L^-T L^-1
        self.chol = L
        self._Pb = asarray(0.5 * (P + np.swapaxes(P, 1, 2)), self.xp)
        self._Linv = Linv
        self.whitening = ModeBlockMatrix(L, xp=self.xp)
        self._unwhiten = ModeBlockMatrix(Linv, xp=self.xp)

    def whiten(self, c: Any) -> Any:
        """``z = L^-1 c`` for coefficients ``c`` (Nspace, Nk) -> (Nspace, Nk)."""
        return self._unwhiten.matvec(c)

    def color(self, z: Any) -> Any:
        """``c = L z`` (``S^{1/2} z``): (Nspace, Nk) -> (Nspace, Nk)."""
        return self.whitening.matvec(z)

    def sample(self, rng: np.random.Generator) -> Any:
        """A draw of the coefficients, shape (Nspace, Nk), K."""
        return self.color(asarray(rng.standard_normal(self.shape), self.xp))

    def _prec(self, v: Any) -> Any:
        x = v.reshape(self.shape)
        return self.xp.einsum("kij,jk->ik", self._Pb, x).reshape(-1)

    def _logpdf(self, z: Any) -> Any:
        return -0.5 * (z @ self._prec(z))

    def _grad(self, z: Any) -> Any:
        return -self._prec(z)

    def _hess(self, z: Any, v: Any) -> Any:
        return self._prec(v)

    def _hess_diag(self, z: Any) -> Any:
        return self.xp.diagonal(self._Pb, axis1=1, axis2=2).T.reshape(-1).copy()

    def _hess_dense(self, z: Any) -> Any:
        ns, nk = self.shape
        out = self.xp.zeros((ns, nk, ns, nk), dtype=np.float64)
        for k in range(nk):
            out[:, k, :, k] = self._Pb[k]
        return out.reshape(ns * nk, ns * nk)
