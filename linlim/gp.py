"""Gaussian-process (Wiener) filtering of visibilities along frequency.

A foreground ``f`` smooth in frequency is modelled as a Gaussian process with covariance
``C[n, n'] = variance * k(nu_n - nu_n')`` along frequency, independently for every
(time, baseline); the noise ``n`` is independent between channels with variance
``sigma_n^2 = 1 / w_n`` (``w = 0`` for flagged channels: infinite variance). For data
``x = f + n`` the posterior mean of the foreground is the Wiener filter

    W = C (C + N)^-1,        R = I - W = N (C + N)^-1  (the residual),

and the posterior covariance of ``f`` is ``C - C (C + N)^-1 C``.

Kernels, defined by their delay-space meaning
----------------------------------------------
Each stationary kernel is the Fourier transform of a delay power spectrum ``P(tau)``
normalised to ``int P = 1``: ``k(dnu) = int P(tau) exp(2 pi i tau dnu) dtau`` (Wiener-
Khinchin), so ``k(0) = 1`` and ``variance`` is the total power (Jy^2). The delay scales
``tau`` are in seconds (e.g. the horizon delay ``|b| / c`` of a baseline).

* ``"se"``: ``k = exp(-2 pi^2 tau_s^2 dnu^2)``; ``P`` a Gaussian of std ``tau_s``.
* ``"exponential"``: ``k = exp(-2 pi tau_s |dnu|)``; ``P`` a Lorentzian of half-width at
  half-maximum ``tau_s``, ``P = 1 / (pi tau_s (1 + (tau / tau_s)^2))``.
* ``"sinc"``: ``k = sinc(2 tau_s dnu)``; ``P`` a top hat, ``1 / (2 tau_s)`` for
  ``|tau| < tau_s``.
* ``"gauss-sinc"``: ``k = sinc(2 tau_s dnu) exp(-2 pi^2 tau_g^2 dnu^2)``; ``P`` the top hat
  convolved with a Gaussian of std ``tau_g`` (softened edges).

(``sinc(x) = sin(pi x) / (pi x)``.) The sinc kernel is the one behind DPSS / DAYENU delay
filtering; the Gaussian-sinc softens its edges.

Numerically stable form
-----------------------
With ``S = diag(sqrt(w))`` (so ``N^-1 = S^2``, flags are ``S = 0``) and ``B = I + S C S``,

    (C + N)^-1 = S B^-1 S,     W = C S B^-1 S,     R = S^-1 B^-1 S  (unflagged rows),

by the push-through identity. ``B`` is symmetric with eigenvalues in ``[1, 1 + ||C|| max w]``:
it never needs ``N^-1`` to be finite or ``C`` to be invertible (smooth kernels have
eigenvalues at round-off level), and flags enter as exact zeros. ``R``'s unflagged rows
come from ``B^-1`` without the cancellation in ``I - W`` at high signal-to-noise; its
flagged rows are ``e_n - W[n]``: the data minus the filter's interpolation there (which does
not use the flagged value). This is the formulation of Rasmussen & Williams (2006), Alg. 3.2.

Adjoints
--------
``W`` and ``R`` are real matrices acting on (real or complex) spectra, so under
``Re <x, y>`` the adjoints are the transposes: ``W^H = S B^-1 S C = (C + N)^-1 C``,
``R^H = (C + N)^-1 N``. They differ from ``W`` and ``R`` unless ``N`` is a multiple of the
identity (white noise, no flags), when ``C`` and ``(C + N)^-1`` commute.

Noise convention (DESIGN.md): for complex visibilities ``sigma^2 = E|n|^2`` per complex
sample, and ``variance`` is likewise ``E|f|^2``; for real data both are real variances.

Examples
--------
>>> import numpy as np
>>> from linlim.gp import FrequencyKernel, WienerFilter
>>> freqs = 1.5e8 + 1e5 * np.arange(32)
>>> K = FrequencyKernel("se", tau=200e-9, variance=100.0)
>>> Wf = WienerFilter((2, 32, 3), freqs, K, weights=np.ones(32))
>>> x = np.ones((2, 32, 3), complex) * 5.0           # a flat spectrum: all foreground
>>> bool(np.allclose(Wf.matvec(x), x, atol=0.1))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import asarray, get_xp, to_numpy
from .errors import InputError, ShapeError
from .operators.base import LinearOperator
from .operators.spaces import normalize_shape
from .validation import check_freqs

__all__ = [
    "KERNELS",
    "FrequencyKernel",
    "kernel_covariance",
    "WienerFilter",
    "wiener_matrices",
    "posterior_covariance",
    "draw_gp",
]

KERNELS = ("se", "exponential", "sinc", "gauss-sinc")


@dataclass(frozen=True)
class FrequencyKernel:
    """A stationary covariance along frequency, parametrised in delay.

    Parameters
    ----------
    kind : {"se", "exponential", "sinc", "gauss-sinc"}
        See the module docstring's table.
    tau : float
        Delay scale ``tau_s``, seconds (Gaussian std, Lorentzian HWHM, or top-hat
        half-width).
    variance : float
        ``k(0)``, the total power, Jy^2 (``E|f|^2``).
    tau_gauss : float, optional
        Gaussian std ``tau_g`` (s) of ``"gauss-sinc"`` (required there, unused otherwise).
    """

    kind: str
    tau: float
    variance: float = 1.0
    tau_gauss: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KERNELS:
            raise InputError(f"FrequencyKernel: kind must be one of {KERNELS}, received "
                             f"{self.kind!r}")
        for name in ("tau", "variance"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"FrequencyKernel: {name} must be finite and > 0, "
                                 f"received {v!r}")
        if self.kind == "gauss-sinc":
            if self.tau_gauss is None or not (np.isfinite(self.tau_gauss)
                                              and self.tau_gauss > 0):
                raise InputError("FrequencyKernel: 'gauss-sinc' needs tau_gauss > 0 "
                                 f"(seconds), received {self.tau_gauss!r}")

    def __call__(self, dnu: Any) -> np.ndarray:
        """``variance * k(dnu)``, ``dnu`` in Hz (any shape), float64."""
        d = np.asarray(dnu, dtype=np.float64)
        ts = self.tau
        if self.kind == "se":
            k = np.exp(-2.0 * np.pi ** 2 * ts ** 2 * d ** 2)
        elif self.kind == "exponential":
            k = np.exp(-2.0 * np.pi * ts * np.abs(d))
        elif self.kind == "sinc":
            k = np.sinc(2.0 * ts * d)
        else:
            k = np.sinc(2.0 * ts * d) * np.exp(-2.0 * np.pi ** 2 * self.tau_gauss ** 2
                                               * d ** 2)
        return self.variance * k

    def delay_psd(self, tau: Any) -> np.ndarray:
        """The delay power spectrum ``variance * P(tau)``, Jy^2 s, ``tau`` in s; its Fourier
        transform ``int P(tau) exp(2 pi i tau dnu) dtau`` is :meth:`__call__`."""
        t = np.asarray(tau, dtype=np.float64)
        ts = self.tau
        if self.kind == "se":
            p = np.exp(-0.5 * (t / ts) ** 2) / (np.sqrt(2.0 * np.pi) * ts)
        elif self.kind == "exponential":
            p = 1.0 / (np.pi * ts * (1.0 + (t / ts) ** 2))
        elif self.kind == "sinc":
            p = np.where(np.abs(t) < ts, 0.5 / ts, 0.0)
        else:   # top hat (half-width ts, height 1/(2 ts)) convolved with N(0, tau_g^2)
            from scipy.special import ndtr

            g = self.tau_gauss
            p = (ndtr((t + ts) / g) - ndtr((t - ts) / g)) / (2.0 * ts)
        return self.variance * p

    def covariance(self, freqs: Any) -> np.ndarray:
        """The covariance matrix ``C[n, n'] = variance k(nu_n - nu_n')``, (Nfreq, Nfreq),
        float64, Jy^2."""
        return kernel_covariance(freqs, self)


def _freqs(freqs: Any, where: str) -> np.ndarray:
    return check_freqs(np.ravel(to_numpy(freqs)), "freqs", where)


def kernel_covariance(freqs: Any, kernel: FrequencyKernel) -> np.ndarray:
    """Covariance matrix of a :class:`FrequencyKernel` on channels ``freqs`` (Hz, any
    spacing): (Nfreq, Nfreq), float64, symmetric positive semi-definite."""
    f = _freqs(freqs, "kernel_covariance")
    return kernel(f[:, None] - f[None, :])


def _check_cov(cov: Any, nf: int, where: str) -> np.ndarray:
    C = np.asarray(to_numpy(cov), dtype=np.float64)
    if C.shape != (nf, nf):
        raise ShapeError(f"{where}: covariance must have shape ({nf}, {nf}), received "
                         f"{C.shape}")
    if not np.all(np.isfinite(C)):
        raise InputError(f"{where}: covariance must be finite")
    if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * np.abs(C).max()):
        raise InputError(f"{where}: covariance must be symmetric")
    return 0.5 * (C + C.T)


def wiener_matrices(cov: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Wiener filter and residual matrices for one or more weight vectors.

    Parameters
    ----------
    cov : array, shape (Nfreq, Nfreq), float64
        Foreground covariance ``C`` (Jy^2).
    weights : array, shape (..., Nfreq), float64
        ``1 / sigma^2`` per channel (Jy^-2), 0 where flagged.

    Returns
    -------
    W, R : ndarray, shape (..., Nfreq, Nfreq), float64
        ``W = C S B^-1 S`` and ``R = I - W`` (unflagged rows ``S^-1 B^-1 S``), with
        ``S = diag(sqrt(w))``, ``B = I + S C S`` (see the module docstring).
    """
    w = np.asarray(weights, dtype=np.float64)
    nf = w.shape[-1]
    C = _check_cov(cov, nf, "wiener_matrices")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError("wiener_matrices: weights must be finite and >= 0")
    s = np.sqrt(w)
    eye = np.eye(nf)
    B = eye + s[..., :, None] * C * s[..., None, :]
    Binv = np.linalg.solve(B, np.broadcast_to(eye, B.shape))
    Binv = 0.5 * (Binv + np.swapaxes(Binv, -1, -2))
    Bs = Binv * s[..., None, :]                                 # B^-1 S
    W = (C * s[..., None, :]) @ Bs                              # C S B^-1 S
    safe = np.where(s > 0, s, 1.0)
    R = np.where((s > 0)[..., :, None], Bs / safe[..., :, None], eye - W)
    return W, R


def posterior_covariance(cov: Any, weights: Any) -> np.ndarray:
    """Posterior covariance of the foreground, ``C - C (C + N)^-1 C``.

    Parameters
    ----------
    cov : array (Nfreq, Nfreq), Jy^2
    weights : array (..., Nfreq), Jy^-2 (0 = flagged)

    Returns
    -------
    ndarray, shape (..., Nfreq, Nfreq), float64, Jy^2
        Computed as ``C - (C S) B^-1 (S C)``, symmetrised.
    """
    w = np.asarray(weights, dtype=np.float64)
    C = _check_cov(cov, w.shape[-1], "posterior_covariance")
    s = np.sqrt(w)
    B = np.eye(w.shape[-1]) + s[..., :, None] * C * s[..., None, :]
    CS = C * s[..., None, :]
    P = C - CS @ np.linalg.solve(B, np.swapaxes(CS, -1, -2))
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def draw_gp(cov: Any, shape: tuple, rng: np.random.Generator, axis: int = 1,
            complex_valued: bool = True) -> np.ndarray:
    """Draws of a zero-mean Gaussian process with covariance ``cov`` along ``axis``.

    Parameters
    ----------
    cov : array (Nfreq, Nfreq)
    shape : tuple of int
        Output shape, ``shape[axis] = Nfreq``.
    rng : numpy Generator
    axis : int
    complex_valued : bool
        Circular complex draws with ``E[f f^H] = cov`` (real and imaginary parts each
        ``cov / 2``); otherwise real with ``E[f f^T] = cov``.

    Returns
    -------
    ndarray of ``shape``, complex128 or float64 (host)
    """
    shape = tuple(int(n) for n in shape)
    nf = shape[axis]
    C = _check_cov(cov, nf, "draw_gp")
    lam, U = np.linalg.eigh(C)
    L = U * np.sqrt(np.clip(lam, 0.0, None))                    # L L^T = C (PSD part)
    lead = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    z = rng.standard_normal(lead + (nf,))
    if complex_valued:
        z = (z + 1j * rng.standard_normal(lead + (nf,))) / np.sqrt(2.0)
    return np.moveaxis(z @ L.T, -1, axis % len(shape))


class WienerFilter(LinearOperator):
    """The GP / Wiener filter along frequency: foreground estimate ``W`` or residual ``R``.

    ``y = W x`` with ``W = C (C + N)^-1`` (or ``y = R x``, ``R = I - W``, with
    ``residual=True``), independently for every sample along the other axes.

    Parameters
    ----------
    in_shape : tuple of int
        Data shape, e.g. (Ntimes, Nfreq, Nbl).
    freqs : array, shape (Nfreq,), Hz
    covariance : FrequencyKernel or array (Nfreq, Nfreq)
        Foreground covariance ``C`` (Jy^2).
    weights : array, optional
        ``1 / sigma^2`` (Jy^-2), 0 for flagged samples: shape (Nfreq,) (per channel) or
        broadcastable to ``in_shape`` (see Notes). Exactly one of ``weights`` and
        ``noise_variance``.
    noise_variance : array, optional
        ``sigma^2`` (Jy^2), ``inf`` for flagged samples, broadcastable like ``weights``.
    residual : bool
        Build ``R = I - W`` instead of ``W``.
    axis : int
        Frequency axis.
    dtype : dtype
        Input dtype (float64 or complex128; the output has the same kind).
    xp : module, optional

    Notes
    -----
    A 1-D ``weights``/``noise_variance`` of length Nfreq is taken as per-channel and
    applies to every sample. Otherwise it is broadcast against ``in_shape`` as usual;
    one ``(Nfreq, Nfreq)`` matrix is built per *distinct* weight spectrum (rows with the
    same flags and noise share it), so per-sample weights cost ``Nfreq^2`` memory per
    distinct spectrum.

    Forward and adjoint, per sample along the last axis after moving frequency there::

        y = x @ M^T            (M = W or R, real)
        adjoint: x' = y @ M    (M^T: W^H = (C + N)^-1 C, R^H = (C + N)^-1 N)
    """

    _abstract = False

    def __init__(self, in_shape: Any, freqs: Any, covariance: Any, weights: Any = None, *,
                 noise_variance: Any = None, residual: bool = False, axis: int = 1,
                 dtype: Any = np.complex128, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        where = "WienerFilter"
        in_shape = normalize_shape(in_shape)
        axis = axis % len(in_shape)
        f = _freqs(freqs, where)
        nf = f.size
        if in_shape[axis] != nf:
            raise ShapeError(f"{where}: in_shape[{axis}] = {in_shape[axis]} must equal the "
                             f"{nf} channels in freqs")
        if isinstance(covariance, FrequencyKernel):
            self.kernel: FrequencyKernel | None = covariance
            C = covariance.covariance(f)
        else:
            self.kernel = None
            C = _check_cov(covariance, nf, where)
        if (weights is None) == (noise_variance is None):
            raise InputError(f"{where}: give exactly one of weights and noise_variance")
        if weights is not None:
            w = np.asarray(to_numpy(weights), dtype=np.float64)
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise InputError(f"{where}: weights must be finite and >= 0")
        else:
            v = np.asarray(to_numpy(noise_variance), dtype=np.float64)
            if np.any(np.isnan(v)) or np.any(v <= 0):
                raise InputError(f"{where}: noise_variance must be > 0 (inf for flagged "
                                 "samples)")
            w = np.where(np.isinf(v), 0.0, 1.0 / np.where(np.isinf(v), 1.0, v))
        if w.ndim == 1 and w.size == nf:                         # per channel
            w = w.reshape((1,) * axis + (nf,) + (1,) * (len(in_shape) - axis - 1))
        try:
            np.broadcast_shapes(w.shape, in_shape)
        except ValueError as exc:
            raise ShapeError(f"{where}: weights of shape {w.shape} do not broadcast to "
                             f"in_shape {in_shape}") from exc
        w = w.reshape((1,) * (len(in_shape) - w.ndim) + w.shape)
        w = np.moveaxis(w, axis, -1)
        w = np.broadcast_to(w, w.shape[:-1] + (nf,))
        rows, inv = np.unique(w.reshape(-1, nf), axis=0, return_inverse=True)
        lead = tuple(np.delete(np.array(in_shape), axis))
        inv = np.broadcast_to(inv.reshape(w.shape[:-1]), lead).ravel()
        Wm, Rm = wiener_matrices(C, rows)
        M = Rm if residual else Wm
        dt = np.dtype(dtype)
        if dt.kind not in "fc":
            raise InputError(f"{where}: dtype must be real or complex floating, received "
                             f"{dt}")
        super().__init__(in_shape, in_shape, dt, np.result_type(dt, np.float64), xp=xp,
                         name="WienerResidual" if residual else where)
        self.freqs, self.axis, self.residual = f, axis, bool(residual)
        self.cov = C
        self.weight_rows = rows                                  # (U, Nf), host
        self._M = asarray(M, xp)                                 # (U, Nf, Nf)
        self._MT = asarray(np.ascontiguousarray(np.swapaxes(M, -1, -2)), xp)
        self._groups = None if rows.shape[0] == 1 else [
            asarray(np.flatnonzero(inv == u), xp) for u in range(rows.shape[0])]

    def __repr__(self) -> str:
        return (f"WienerFilter(in_shape={self.in_shape}, axis={self.axis}, "
                f"residual={self.residual}, kernel={self.kernel}, "
                f"distinct_weights={self.weight_rows.shape[0]})")

    @property
    def matrices(self) -> np.ndarray:
        """The filter matrices, (Ndistinct, Nfreq, Nfreq), float64 (host copy)."""
        return to_numpy(self._M)

    def posterior_covariance(self) -> np.ndarray:
        """``C - C (C + N)^-1 C`` per distinct weight spectrum, (Ndistinct, Nfreq, Nfreq)."""
        return posterior_covariance(self.cov, self.weight_rows)

    def _apply(self, x: Any, mats: Any) -> Any:
        xp = self.xp
        xm = xp.moveaxis(x, self.axis, -1)
        shp = xm.shape
        xr = xm.reshape(-1, shp[-1])
        if self._groups is None:
            y = xr @ mats[0]
        else:
            y = xp.empty(xr.shape, dtype=self.out_dtype)
            for u, idx in enumerate(self._groups):
                y[idx] = xr[idx] @ mats[u]
        return xp.moveaxis(y.reshape(shp), -1, self.axis)

    def _matvec(self, x: Any) -> Any:
        return self._apply(x, self._MT)      # y[n] = sum_n' M[n, n'] x[n']

    def _rmatvec(self, y: Any) -> Any:
        return self._apply(y, self._M)       # x'[n'] = sum_n M[n, n'] y[n]
