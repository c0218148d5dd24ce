"""Gaussian likelihood for visibilities, and the log posterior that solvers and samplers see.

Noise convention (DESIGN.md): ``sigma^2 = E|n|^2`` per *complex* sample (each of the real
and imaginary parts has variance ``sigma^2 / 2``), weights ``w = 1 / sigma^2`` (flags:
``w = 0``), and::

    log L(theta) = - sum w |d - m(theta)|^2                      (complex data)

Its gradient over the real ``theta`` is ``grad log L = 2 Re J^H W (d - m)`` and the Fisher
matrix (the Gauss-Newton Hessian of ``-log L``) is ``F = 2 Re(J^H W J)``. With a Gaussian
prior ``-1/2 x^T S^-1 x`` on a linear model ``m = A x``, the MAP therefore solves
``(2 Re(A^H W A) + S^-1) x = 2 Re(A^H W d)``.

For *real* data the same ``w = 1/sigma^2`` means the variance of each real sample and
``log L = -1/2 sum w (d - m)^2``. Internally both cases use effective weights
``W_eff = w`` (complex) or ``w / 2`` (real), so ``log L = -sum W_eff |d - m|^2``,
``grad = 2 J^H W_eff (d - m)`` and ``F = 2 Re(J^H W_eff J)`` hold in both.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .backend import asarray, to_numpy
from .errors import InputError, ShapeError
from .operators.base import LinearOperator, Operator
from .params import BoundedTransform, Params
from .priors import Prior
from .validation import check_finite_data, check_flags, check_not_all_flagged, check_weights

__all__ = ["GaussianLikelihood", "LogPosterior", "GaussNewtonOperator", "noise_weights"]


def noise_weights(sigma: Any = None, *, weights: Any = None, nsamples: Any = None,
                  flags: Any = None, shape: Sequence[int] | None = None, ant1: Any = None,
                  ant2: Any = None, include_autos: bool = False,
                  where: str = "noise_weights") -> np.ndarray:
    """Weights ``w = nsamples / sigma^2`` (0 where flagged) from a noise model.

    The one builder of per-sample weights in linlim: :class:`GaussianLikelihood`, the
    calibration solvers (:func:`linlim.calibration.weights.make_weights` is a thin wrapper)
    and the pipelines all call it.

    Parameters
    ----------
    sigma : float or array, optional
        Noise rms per complex sample for one unit of ``nsamples`` (Jy), with
        ``sigma^2 = E|n|^2`` (e.g. from the radiometer equation
        ``sigma = 2 k T_sys / (A_eff sqrt(dnu dt))`` expressed in Jy).
    weights : float or array, optional
        Explicit inverse variances ``1/sigma^2`` (1/Jy^2), finite and ``>= 0``; exclusive
        with ``sigma``. With neither, unit weights (times ``nsamples``).
    nsamples : array, optional
        Number of samples integrated into each visibility (pyuvdata's ``nsample_array``),
        so the variance is ``sigma^2 / nsamples``.
    flags : bool array, optional
        True where the sample is flagged (weight 0).
    shape : tuple of int, optional
        Shape to broadcast the result to, e.g. visibilities ``(..., Ntimes, Nfreqs, Nbl)``.
    ant1, ant2 : array of int, shape (Nbl,), optional
        Antenna indices of the last axis; with ``include_autos=False`` (default)
        auto-correlations (``ant1 == ant2``) get weight 0.
    include_autos : bool
        Keep auto-correlation weights (only used with ``ant1``/``ant2``).
    where : str
        The caller's name, used in error messages.

    Returns
    -------
    w : numpy.ndarray, float64
        Inverse noise variance per sample (1/Jy^2), ``shape`` when given.

    Raises
    ------
    InputError
        ``sigma`` not finite and > 0, ``weights`` negative or not finite, ``nsamples``
        negative or not finite, both ``sigma`` and ``weights``, or flags not boolean.
    ShapeError
        Inputs that do not broadcast to ``shape``.

    Examples
    --------
    >>> noise_weights(0.5, nsamples=[1.0, 2.0], flags=[False, True])
    array([4., 0.])
    """
    if sigma is not None and weights is not None:
        raise InputError(f"{where}: give sigma (noise rms) or weights, not both")
    if weights is not None:
        w = check_weights(weights, np.shape(to_numpy(weights)) if shape is None else shape,
                          "weights", where)
    elif sigma is not None:
        if np.iscomplexobj(to_numpy(sigma)):
            raise InputError(f"{where}: sigma: expected a real noise rms (Jy), received "
                             "complex values")
        s = np.asarray(to_numpy(sigma), dtype=np.float64)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError(f"{where}: sigma (the noise rms) must be finite and > 0, "
                             f"received min {float(np.min(s))}")
        w = 1.0 / s**2
    else:
        w = np.ones((), dtype=np.float64)
    if nsamples is not None:
        ns = np.asarray(to_numpy(nsamples), dtype=np.float64)
        if not np.all(np.isfinite(ns)) or np.any(ns < 0):
            raise InputError(f"{where}: nsamples must be finite and non-negative")
        w = w * ns
    if shape is not None:
        try:
            w = np.broadcast_to(w, tuple(shape))
        except ValueError:
            src = "weights" if weights is not None else "sigma (with nsamples): the weights"
            raise ShapeError(f"{where}: {src} of shape {np.shape(w)} do not broadcast to "
                             f"the data shape {tuple(shape)}") from None
    if flags is not None:
        try:
            fshape = (tuple(shape) if shape is not None
                      else np.broadcast_shapes(np.shape(w), np.shape(to_numpy(flags))))
        except ValueError:
            fshape = np.shape(w)                     # check_flags names the mismatch
        w = np.where(check_flags(flags, fshape, "flags", where), 0.0, w)
    if ant1 is not None and not include_autos:
        autos = np.asarray(to_numpy(ant1)) == np.asarray(to_numpy(ant2))
        w = np.where(autos, 0.0, w)
    return np.array(w, dtype=np.float64)


class GaussianLikelihood:
    """Gaussian likelihood of data ``d`` given a forward model ``m(theta)``.

    Parameters
    ----------
    model : Operator
        Forward model from ``theta`` (n,) float64 to model visibilities (any shape, complex
        or real), e.g. ``rime @ params``.
    data : array
        Data of the model's output shape (Jy). NaN/inf are allowed only where flagged.
    weights : float or array, optional
        Inverse noise variance ``w = 1/sigma^2`` per sample (1/Jy^2), broadcastable to the
        data; 0 means flagged. Give either ``weights`` or ``sigma``.
    sigma : float or array, optional
        Noise rms per sample (``E|n|^2 = sigma^2`` for complex data); combined with
        ``nsamples`` as in :func:`noise_weights`.
    nsamples : array, optional
        Samples per visibility (variance ``sigma^2 / nsamples``); only with ``sigma``.
    flags : bool array, optional
        True where flagged (weight 0), broadcastable to the data.
    nonfinite : {"raise", "flag"}
        Unflagged NaN/inf data: refused with their count and first indices (default), or
        flagged (weight 0) with a :class:`~linlim.validation.NonFiniteDataWarning`.

    Raises
    ------
    InputError, ShapeError
        For negative or non-finite weights, shapes that do not broadcast, unflagged
        NaN/inf data (see ``nonfinite``), every sample flagged (nothing to fit: a solver
        would otherwise report success at its start), complex data for a real model, or a
        model whose input is not (n,) float64.

    Notes
    -----
    ``log L = -sum W_eff |d - m|^2`` with ``W_eff = w`` for complex data and ``w / 2`` for
    real data (module docstring). Gradient over real ``theta``:
    ``d log L = -2 Re sum W_eff conj(m - d) J dtheta = <2 J^H W_eff (d - m), dtheta>``.
    """

    def __init__(self, model: Operator, data: Any, weights: Any = None, *, sigma: Any = None,
                 nsamples: Any = None, flags: Any = None, nonfinite: str = "raise") -> None:
        if not isinstance(model, Operator):
            raise InputError(f"GaussianLikelihood: model must be an Operator, received "
                             f"{type(model).__name__}")
        if (isinstance(model.in_shape[0], tuple) or len(model.in_shape) != 1
                or np.dtype(model.in_dtype).kind != "f"):
            raise ShapeError(f"GaussianLikelihood: model must take theta of shape (n,) float64, "
                             f"it takes {model.in_shape} {model.in_dtype}")
        if isinstance(model.out_shape[0], tuple) if model.out_shape else False:
            raise ShapeError("GaussianLikelihood: model must return one array, not a tuple; "
                             "stack the outputs first")
        self.model = model
        self.xp = xp = model.xp
        self.size = int(model.in_shape[0])
        shape = tuple(model.out_shape)
        self.is_complex = np.dtype(model.out_dtype).kind == "c"
        d = np.asarray(to_numpy(data))
        if d.shape != shape:
            raise ShapeError(f"GaussianLikelihood: data must have the model's output shape "
                             f"{shape}, received {d.shape}")
        if d.dtype.kind == "c" and not self.is_complex:
            raise InputError("GaussianLikelihood: data is complex but the model returns real "
                             f"{model.out_dtype}")
        if weights is not None and (sigma is not None or nsamples is not None):
            raise InputError("GaussianLikelihood: give weights, or sigma (with nsamples), "
                             "not both")
        if weights is None and sigma is None:
            raise InputError("GaussianLikelihood: weights or sigma is required")
        w = noise_weights(sigma, weights=weights, nsamples=nsamples, flags=flags, shape=shape,
                          where="GaussianLikelihood")
        w = check_finite_data(d, w, "data", "GaussianLikelihood", nonfinite=nonfinite)
        check_not_all_flagged(w, "data", "GaussianLikelihood")
        bad = ~np.isfinite(d)
        d = np.where(bad | (w == 0), 0, d).astype(model.out_dtype)  # flagged: never pull
        self.data = asarray(d, xp)
        self.weights = asarray(w, xp)
        self.w_eff = asarray(w if self.is_complex else 0.5 * w, xp)
        self.ndata = int(np.sum(w > 0)) * (2 if self.is_complex else 1)

    def residual(self, m: Any) -> Any:
        """``d - m`` for model visibilities ``m``."""
        return self.data - m

    def value_of(self, m: Any) -> float:
        """``log L`` for model visibilities ``m``."""
        r = self.data - m
        return -float(to_numpy((self.w_eff * (r.real**2 + (r.imag**2 if self.is_complex
                                                           else 0.0))).sum()))

    def value(self, theta: Any) -> float:
        """``log L(theta) = -sum W_eff |d - m(theta)|^2``."""
        return self.value_of(self.model.forward(theta))

    def chi2(self, theta: Any) -> float:
        """``sum w |d - m|^2`` (complex) or ``sum w (d - m)^2`` (real): ``-2 log L`` for
        real data and ``-log L`` for complex data; its expectation is the number of
        unflagged complex (or real) samples at the truth."""
        v = -self.value(theta)
        return v if self.is_complex else 2.0 * v

    def __repr__(self) -> str:
        return (f"GaussianLikelihood(n={self.size}, data {tuple(self.data.shape)} "
                f"{self.data.dtype}, {self.ndata} real degrees of freedom)")


def _neg_logjac_hess_diag(params: Params, theta: Any) -> Any:
    """Diagonal Hessian of ``-log|dp/dtheta|`` (BoundedTransform: ``2 s (1 - s)``;
    identity and log transforms: 0)."""
    xp = params.xp
    h = xp.zeros(params.size, dtype=np.float64)
    for b in params.blocks:
        if b.dtype.kind == "f" and isinstance(b.transform, BoundedTransform):
            sl = params.slices[b.name]
            s = b.transform._sigmoid(theta[sl], xp)
            h[sl] = 2.0 * s * (1.0 - s)
    return h


class LogPosterior:
    """Log posterior ``log L(theta) + sum log prior(theta) [+ log|Jacobian|]``.

    Parameters
    ----------
    likelihood : GaussianLikelihood
    priors : sequence of Prior
        Priors on (selections of) ``theta``; a prior's ``index`` may name a Params block.
    params : Params, optional
        The parameter layout (for block-named priors and the log-Jacobian).
    include_log_jacobian : bool
        Add ``params.log_det_jacobian(theta)`` (for sampling a density over the
        unconstrained ``theta`` of transformed blocks). Leave False for MAP/Fisher in the
        physical sense of the model.

    Attributes
    ----------
    size : int
        Number of real parameters ``n``.
    xp : module
        Array module.
    counts : dict
        ``value``, ``grad`` (value_and_grad counts both), ``forward``, ``jvp`` (J products)
        and ``vjp`` (J^H products) made through this object.

    Notes
    -----
    This is the protocol optimisers and samplers use: ``value`` (higher is better),
    ``grad``, ``value_and_grad`` (one forward + one vjp, via ``linearize``),
    ``gn_product(theta, v)`` = (Gauss-Newton Hessian of ``-log posterior``) ``v`` =
    ``2 Re(J^H W_eff J v) + H_prior v [+ H_logjac v]``, and ``linearize_gn(theta)`` -> a
    :class:`GaussNewtonOperator` that caches ``J`` at ``theta``. The log-Jacobian's Hessian
    enters the GN product only for BoundedTransform blocks (``2 s (1 - s) >= 0``, PSD).
    """

    def __init__(self, likelihood: GaussianLikelihood, priors: Sequence[Prior] = (),
                 params: Params | None = None, include_log_jacobian: bool = False) -> None:
        self.likelihood = likelihood
        self.size = likelihood.size
        self.xp = likelihood.xp
        priors = [priors] if isinstance(priors, Prior) else priors   # one prior, not a list
        self.priors = [p.bind(self.size, params) for p in (priors or ())]
        for p in self.priors:
            if p.xp is not self.xp:
                raise InputError(f"LogPosterior: prior {p!r} was built under another backend")
        if params is not None and params.size != self.size:
            raise ShapeError(f"LogPosterior: params has size {params.size}, the model takes "
                             f"{self.size}")
        if include_log_jacobian and params is None:
            raise InputError("LogPosterior: include_log_jacobian=True needs params")
        self.params = params
        self.include_log_jacobian = bool(include_log_jacobian)
        self.counts = dict.fromkeys(("value", "grad", "forward", "jvp", "vjp"), 0)

    # -- checks ---------------------------------------------------------------------------
    def _check(self, theta: Any, name: str = "theta") -> Any:
        theta = asarray(theta, self.xp, np.float64) if not hasattr(theta, "dtype") else theta
        if tuple(theta.shape) != (self.size,):
            raise ShapeError(f"LogPosterior: {name} must have shape ({self.size},), received "
                             f"{tuple(theta.shape)}")
        if theta.dtype.kind == "c":
            raise InputError(f"LogPosterior: {name} must be real, received {theta.dtype}")
        return theta.astype(np.float64, copy=False)

    def _prior_value(self, theta: Any) -> float:
        v = sum(p.logpdf(theta) for p in self.priors)
        if self.include_log_jacobian:
            v += self.params.log_det_jacobian(theta)
        return float(v)

    def _prior_grad(self, theta: Any) -> Any:
        g = self.xp.zeros(self.size, dtype=np.float64)
        for p in self.priors:
            g += p.grad(theta)
        if self.include_log_jacobian:
            g += self.params.grad_log_det_jacobian(theta)
        return g

    def prior_hess_product(self, theta: Any, v: Any) -> Any:
        """Hessian of ``-log prior`` (and of ``-log|Jacobian|``, bounded blocks) times v."""
        out = self.xp.zeros(self.size, dtype=np.float64)
        for p in self.priors:
            out += p.hess_product(theta, v)
        if self.include_log_jacobian:
            out += _neg_logjac_hess_diag(self.params, theta) * v
        return out

    def prior_hessian_diagonal(self, theta: Any) -> Any:
        """Diagonal of the Hessian of ``-log prior`` (+ log-Jacobian term), (n,)."""
        theta = self._check(theta)
        d = self.xp.zeros(self.size, dtype=np.float64)
        for p in self.priors:
            d += p.hessian_diagonal(theta)
        if self.include_log_jacobian:
            d += _neg_logjac_hess_diag(self.params, theta)
        return d

    def prior_hessian_dense(self, theta: Any) -> Any:
        """Hessian of ``-log prior`` (+ log-Jacobian term) as an (n, n) array."""
        theta = self._check(theta)
        H = self.xp.zeros((self.size, self.size), dtype=np.float64)
        for p in self.priors:
            H += p.hessian_dense(theta)
        if self.include_log_jacobian:
            H += self.xp.diag(_neg_logjac_hess_diag(self.params, theta))
        return H

    # -- the protocol -----------------------------------------------------------------------
    def value(self, theta: Any) -> float:
        """Log posterior at ``theta`` (n,) float64 (up to a constant; higher is better)."""
        theta = self._check(theta)
        self.counts["value"] += 1
        self.counts["forward"] += 1
        return self.likelihood.value(theta) + self._prior_value(theta)

    def value_and_grad(self, theta: Any) -> tuple[float, Any]:
        """``(log posterior, gradient (n,))`` from one forward and one vjp."""
        theta = self._check(theta)
        self.counts["value"] += 1
        self.counts["grad"] += 1
        self.counts["forward"] += 1
        self.counts["vjp"] += 1
        lik = self.likelihood
        m, J = lik.model.linearize(theta)
        r = lik.data - m
        val = lik.value_of(m) + self._prior_value(theta)
        g = J.rmatvec(2.0 * lik.w_eff * r) + self._prior_grad(theta)
        return val, g

    def grad(self, theta: Any) -> Any:
        """Gradient of the log posterior, (n,) float64."""
        return self.value_and_grad(theta)[1]

    def loss_and_grad(self, theta: Any) -> tuple[float, Any]:
        """``(-value, -grad)``: what the optimisers minimise."""
        v, g = self.value_and_grad(theta)
        return -v, -g

    def linearize_gn(self, theta: Any) -> GaussNewtonOperator:
        """The Gauss-Newton Hessian of ``-log posterior`` at ``theta`` as a LinearOperator
        (n,) -> (n,) that keeps the model's linearisation ``J``."""
        theta = self._check(theta)
        self.counts["forward"] += 1
        _, J = self.likelihood.model.linearize(theta)
        return GaussNewtonOperator(self, theta, J)

    def linearize(self, theta: Any) -> tuple[float, Any, GaussNewtonOperator]:
        """``(value, grad, GN operator)`` from one linearisation of the model."""
        theta = self._check(theta)
        for k in ("value", "grad", "forward", "vjp"):
            self.counts[k] += 1
        lik = self.likelihood
        m, J = lik.model.linearize(theta)
        val = lik.value_of(m) + self._prior_value(theta)
        g = J.rmatvec(2.0 * lik.w_eff * (lik.data - m)) + self._prior_grad(theta)
        return val, g, GaussNewtonOperator(self, theta, J)

    def gn_product(self, theta: Any, v: Any) -> Any:
        """``2 Re(J^H W_eff J v) + H_prior v`` at ``theta`` (Gauss-Newton Hessian of the
        negative log posterior times ``v``), (n,) float64."""
        return self.linearize_gn(theta).matvec(self._check(v, "v"))

    def __repr__(self) -> str:
        return (f"LogPosterior(n={self.size}, {self.likelihood!r}, priors={self.priors}, "
                f"log_jacobian={self.include_log_jacobian})")


class GaussNewtonOperator(LinearOperator):
    """Gauss-Newton Hessian ``H v = 2 Re(J^H W_eff J v) + H_prior v`` at a fixed ``theta``.

    Built by :meth:`LogPosterior.linearize_gn`; keeps the model's Jacobian ``J`` (and what
    it caches) so repeated products (CG iterations, Fisher columns) cost one jvp and one
    vjp each. Symmetric positive semi-definite; ``A^H = A``.

    Parameters
    ----------
    post : LogPosterior
    theta : array (n,) float64
    J : LinearOperator
        The model's Jacobian at ``theta``.

    Notes
    -----
    ``<H u, v> = 2 Re <J u, W_eff J v> + u^T H_p v`` is symmetric in ``u, v``, hence
    ``_rmatvec = _matvec``. The real part is taken by the operator contract when ``J^H``
    maps back to the real space of ``theta``.
    """

    _abstract = False

    def __init__(self, post: LogPosterior, theta: Any, J: LinearOperator) -> None:
        super().__init__((post.size,), (post.size,), np.float64, np.float64, post.xp,
                         name="GaussNewton")
        self.post, self.theta, self.J = post, theta, J

    def data_product(self, v: Any) -> Any:
        """``2 Re(J^H W_eff J v)`` only (no prior term)."""
        self.post.counts["jvp"] += 1
        self.post.counts["vjp"] += 1
        return self.J.rmatvec(2.0 * self.post.likelihood.w_eff * self.J.matvec(v))

    def _matvec(self, v: Any) -> Any:
        return self.data_product(v) + self.post.prior_hess_product(self.theta, v)

    def _rmatvec(self, v: Any) -> Any:
        return self._matvec(v)
