"""Delay transform, delay (high-pass) filter and delay power spectra.

Visibilities are laid out ``(Ntimes, Nfreq, Nbl)`` (DESIGN.md); everything here acts
along the frequency axis (``axis=1`` by default).

* :func:`taper` -- Blackman-Harris (4-term), Hann, Tukey or no window, normalised to
  ``mean(w^2) = 1`` (``norm="rms"``: white noise keeps its power, the effective
  bandwidth is ``N dnu``) or to a peak of 1.
* :class:`DelayTransform` -- ``V~(tau) = dnu sum_n w_n V(nu_n) exp(-2 pi i tau n dnu)``
  (Jy Hz), built by composing the foundation's ``Take`` (fftshift) ``@ FFT @ Diagonal``.
* :class:`DelayFilter` -- weighted least-squares removal of low-delay modes,
  ``P = I - A (A^H W A)^-1 A^H W`` with ``A`` the DPSS (or Fourier) modes of delays
  ``|tau| < tau_cut``; exact adjoint ``P^H = I - W A (A^H W A)^-1 A^H``.
* :func:`delay_power_spectrum` -- cross power of two data halves with independent noise
  (no noise bias), with analytic noise error bars; :func:`jy2hz2_to_mk2mpc3` and
  :func:`delay_to_kpar` convert to cosmological units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .backend import asarray, get_xp, to_numpy, xp_of
from .errors import InputError, ShapeError
from .gp import (  # the GP / Wiener filter is part of the filters API
    KERNELS,
    FrequencyKernel,
    WienerFilter,
    kernel_covariance,
    posterior_covariance,
    wiener_matrices,
)
from .operators.base import LinearOperator
from .operators.composite import LinearComposition
from .operators.linear import FFT, Diagonal, Take
from .operators.spaces import normalize_shape
from .units import K_BOLTZMANN, SPEED_OF_LIGHT
from .validation import check_freqs

__all__ = [
    "FrequencyKernel", "KERNELS", "kernel_covariance", "WienerFilter",
    "wiener_matrices", "posterior_covariance",
    "TAPERS",
    "taper",
    "delays",
    "DelayTransform",
    "dpss_modes",
    "fourier_modes",
    "DelayFilter",
    "split_even_odd",
    "DelaySpectrum",
    "delay_power_spectrum",
    "delay_to_kpar",
    "baseline_to_kperp",
    "jy2hz2_to_mk2mpc3",
    "beam_omega_pp",
    "POLARIZATION_FACTORS",
]

TAPERS = ("blackman-harris", "hann", "tukey", "none")


def taper(nfreq: int, kind: str = "blackman-harris", alpha: float = 0.5,
          norm: str = "rms") -> np.ndarray:
    """A window along frequency.

    Parameters
    ----------
    nfreq : int
        Number of channels ``N``.
    kind : {"blackman-harris", "hann", "tukey", "none"}
        Symmetric windows over ``x = n / (N - 1)``:

        * Blackman-Harris 4-term: ``0.35875 - 0.48829 cos 2 pi x + 0.14128 cos 4 pi x
          - 0.01168 cos 6 pi x`` (first sidelobe -92 dB);
        * Hann: ``0.5 - 0.5 cos 2 pi x``;
        * Tukey(alpha): flat, with cosine edges over a fraction ``alpha`` of the band;
        * none: ones.
    alpha : float
        Tukey taper fraction in [0, 1].
    norm : {"rms", "peak"}
        ``"rms"``: scale so ``mean(w^2) = 1`` (white noise keeps its delay-space power;
        ``dnu sum w^2 = N dnu`` is the effective bandwidth); ``"peak"``: ``max w = 1``.

    Returns
    -------
    ndarray, shape (nfreq,), float64
    """
    if not (isinstance(nfreq, (int, np.integer)) and nfreq >= 1):
        raise InputError(f"taper: nfreq must be a positive int, received {nfreq!r}")
    n = np.arange(nfreq)
    x = n / (nfreq - 1) if nfreq > 1 else np.zeros(1)
    if kind == "blackman-harris":
        w = (0.35875 - 0.48829 * np.cos(2 * np.pi * x) + 0.14128 * np.cos(4 * np.pi * x)
             - 0.01168 * np.cos(6 * np.pi * x))
    elif kind == "hann":
        w = 0.5 - 0.5 * np.cos(2 * np.pi * x)
    elif kind == "tukey":
        if not 0 <= alpha <= 1:
            raise InputError(f"taper: tukey alpha must be in [0, 1], received {alpha}")
        w = np.ones(nfreq)
        if alpha > 0:
            edge = x < alpha / 2
            w[edge] = 0.5 * (1 - np.cos(2 * np.pi * x[edge] / alpha))
            edge = x > 1 - alpha / 2
            w[edge] = 0.5 * (1 - np.cos(2 * np.pi * (1 - x[edge]) / alpha))
    elif kind == "none":
        w = np.ones(nfreq)
    else:
        raise InputError(f"taper: kind must be one of {TAPERS}, received {kind!r}")
    if nfreq == 1:
        w = np.ones(1)
    if norm == "rms":
        return w / np.sqrt(np.mean(w**2))
    if norm == "peak":
        return w / w.max()
    raise InputError(f"taper: norm must be 'rms' or 'peak', received {norm!r}")


def _freqs(freqs: Any, where: str) -> tuple[np.ndarray, float]:
    f = check_freqs(freqs, "freqs", where, min_channels=2)
    d = np.diff(f)
    if not np.allclose(d, d[0], rtol=1e-6, atol=0) or d[0] == 0:
        raise InputError(f"{where}: freqs must be uniformly spaced")
    return f, float(abs(d[0]))


def delays(freqs: Any) -> np.ndarray:
    """Delays of the delay transform's output, ascending (fftshifted), seconds.

    ``tau_j = (j - N//2) / (N dnu)``, ``j = 0 .. N-1``.
    """
    f, dnu = _freqs(freqs, "delays")
    return np.fft.fftshift(np.fft.fftfreq(f.size, dnu))


class DelayTransform(LinearComposition):
    """Tapered delay transform along frequency, Jy -> Jy Hz.

    ``V~[..., j, ...] = dnu sum_n w_n V[..., n, ...] exp(-2 pi i tau_j n dnu)`` with
    ``tau_j`` from :func:`delays` (ascending). The phase reference is the first channel
    (a factor ``exp(-2 pi i tau nu_0)`` relative to absolute frequency; irrelevant for
    power spectra).

    Built by composition of foundation operators: ``Take(fftshift) @ FFT @ Diagonal(dnu w)``,
    so its adjoint is ``Diagonal^H FFT^H Take^H`` (exact).

    Parameters
    ----------
    in_shape : tuple of int
        Shape of the data, e.g. ``(Ntimes, Nfreq, Nbl)``.
    freqs : array (Nfreq,), Hz, uniformly spaced
    axis : int
        Frequency axis (1 for the visibility layout).
    taper : str
        See :func:`taper`.
    alpha : float
        Tukey parameter.
    norm : {"rms", "peak"}
        Taper normalisation.
    dtype : dtype
        Input dtype (float64 or complex128); the output is complex.

    Attributes
    ----------
    delays : ndarray (Nfreq,), s
    window : ndarray (Nfreq,)
    dnu : float, Hz
    """

    _abstract = False

    def __init__(self, in_shape: Any, freqs: Any, axis: int = 1,
                 taper: str = "blackman-harris", alpha: float = 0.5, norm: str = "rms",
                 dtype: Any = np.complex128, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        in_shape = normalize_shape(in_shape)
        f, dnu = _freqs(freqs, "DelayTransform")
        axis = axis % len(in_shape)
        if in_shape[axis] != f.size:
            raise ShapeError(f"DelayTransform: in_shape[{axis}] = {in_shape[axis]} must equal "
                             f"the {f.size} channels in freqs")
        w = _taper_fn(f.size, taper, alpha, norm)
        bshape = [1] * len(in_shape)
        bshape[axis] = f.size
        D = Diagonal((dnu * w).reshape(bshape), in_shape=in_shape, in_dtype=dtype, xp=xp)
        F = FFT(in_shape, axis=axis, norm="backward", in_dtype=D.out_dtype, xp=xp)
        S = Take(in_shape, np.fft.fftshift(np.arange(f.size)), axis=axis,
                 dtype=F.out_dtype, xp=xp)
        super().__init__(LinearComposition(S, F), D)
        self.name = "DelayTransform"
        self.freqs, self.dnu, self.axis = f, dnu, axis
        self.window, self.taper = w, taper
        self.delays = delays(f)


_taper_fn = taper


# -- the delay filter --------------------------------------------------------------------
def dpss_modes(freqs: Any, tau_cut: float, eigenval_cutoff: float = 1e-12) -> np.ndarray:
    """Discrete prolate spheroidal sequences concentrated in ``|tau| < tau_cut``.

    The half-bandwidth is ``W = tau_cut dnu`` cycles per channel (``NW = N tau_cut dnu``);
    every sequence whose concentration ratio in that band exceeds ``eigenval_cutoff`` is
    kept (about ``2 NW`` well-concentrated ones plus a tail).

    Returns
    -------
    ndarray, shape (Nfreq, Nmodes), float64, orthonormal columns
    """
    from scipy.signal.windows import dpss

    f, dnu = _freqs(freqs, "dpss_modes")
    n = f.size
    NW = n * tau_cut * dnu
    if not 0 < NW < n / 2:
        raise InputError(f"dpss_modes: tau_cut must be in (0, {0.5 / dnu:.4g}) s, received "
                         f"{tau_cut}")
    kmax = min(n, int(2 * NW) + 64)
    win, ratios = dpss(n, NW, Kmax=kmax, return_ratios=True, norm=2)
    keep = np.asarray(ratios) > eigenval_cutoff
    A = np.asarray(win)[keep].T
    return A / np.linalg.norm(A, axis=0)


def fourier_modes(freqs: Any, tau_cut: float) -> np.ndarray:
    """Complex exponentials ``exp(2 pi i tau_m n dnu) / sqrt(N)`` for the DFT delays
    ``tau_m = m / (N dnu)`` with ``|tau_m| <= tau_cut``.

    Returns
    -------
    ndarray, shape (Nfreq, Nmodes), complex128, orthonormal columns
    """
    f, dnu = _freqs(freqs, "fourier_modes")
    n = f.size
    mmax = int(np.floor(tau_cut * n * dnu + 1e-9))
    if mmax < 0 or 2 * mmax + 1 > n:
        raise InputError(f"fourier_modes: tau_cut {tau_cut} s keeps no modes or more than "
                         f"{n}")
    m = np.arange(-mmax, mmax + 1)
    return np.exp(2j * np.pi * np.outer(np.arange(n), m) / n) / np.sqrt(n)


class DelayFilter(LinearOperator):
    """Weighted least-squares delay high-pass filter along frequency.

    ``y = P x``, ``P = I - A G A^H W``, ``G = (A^H W A + eps I)^-1``, independently for
    every sample along the other axes, where ``A`` (Nfreq, Nm) are the low-delay modes
    (``|tau| < tau_cut``) and ``W = diag(w)`` the weights (0 for flagged channels).
    ``A G A^H W x`` is the weighted least-squares fit of low-delay modes to ``x``, so ``P``
    removes smooth-spectrum (foreground) structure and keeps high delays.

    Parameters
    ----------
    in_shape : tuple of int
        Data shape, e.g. ``(Ntimes, Nfreq, Nbl)``.
    freqs : array (Nfreq,), Hz, uniform
    tau_cut : float
        Filter half-width, s (the horizon delay of the longest baseline plus a buffer).
    weights : array, optional
        Non-negative weights broadcastable to ``in_shape`` (e.g. ``1/sigma^2``, 0 where
        flagged); uniform by default. Size-1 axes share one factorisation.
    modes : {"dpss", "fourier"}
        :func:`dpss_modes` (default) or :func:`fourier_modes`.
    eigenval_cutoff : float
        DPSS concentration cutoff.
    regularization : float
        ``eps`` relative to ``trace(A^H W A) / Nm`` (guards rank loss from flags).
    axis : int
        Frequency axis.
    dtype : dtype
        Input dtype.

    Notes
    -----
    ``P`` is C-linear, so under ``Re <x, y>`` its adjoint is the conjugate transpose::

        P^H = I - W A G^H A^H

    (``G`` is Hermitian up to round-off; ``G^H`` is used literally so the adjoint is
    exact). ``P`` is a projection (``P^2 = P`` for ``eps = 0``) but not self-adjoint
    unless ``W`` is a multiple of the identity: it is orthogonal under the
    ``W``-weighted inner product. Output values at flagged channels are the data minus
    the fit there; multiply by the weights before forming spectra.

    Applied along the last axis after moving the frequency axis there::

        u = (w x) @ conj(A);  v = G u;  y = x - v @ A^T
        adjoint: u = y @ conj(A);  v = G^H u;  x' = y - w (v @ A^T)
    """

    _abstract = False

    def __init__(self, in_shape: Any, freqs: Any, tau_cut: float, weights: Any = None,
                 modes: str = "dpss", eigenval_cutoff: float = 1e-12,
                 regularization: float = 1e-12, axis: int = 1,
                 dtype: Any = np.complex128, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        where = "DelayFilter"
        in_shape = normalize_shape(in_shape)
        axis = axis % len(in_shape)
        f, dnu = _freqs(freqs, where)
        if in_shape[axis] != f.size:
            raise ShapeError(f"{where}: in_shape[{axis}] = {in_shape[axis]} must equal the "
                             f"{f.size} channels in freqs")
        if modes == "dpss":
            A = dpss_modes(f, tau_cut, eigenval_cutoff)
        elif modes == "fourier":
            A = fourier_modes(f, tau_cut)
        else:
            raise InputError(f"{where}: modes must be 'dpss' or 'fourier', received {modes!r}")
        nm = A.shape[1]
        if weights is None:
            w = np.ones(f.size)
            wshape = (1,) * (len(in_shape) - 1) + (f.size,)
            w = w.reshape(wshape)
        else:
            w = to_numpy(weights).astype(np.float64)
            try:
                np.broadcast_shapes(w.shape, in_shape)
            except ValueError as exc:
                raise ShapeError(f"{where}: weights of shape {w.shape} do not broadcast to "
                                 f"in_shape {in_shape}") from exc
            if w.ndim < len(in_shape):
                w = w.reshape((1,) * (len(in_shape) - w.ndim) + w.shape)
            if np.any(w < 0) or not np.all(np.isfinite(w)):
                raise InputError(f"{where}: weights must be finite and >= 0")
            w = np.moveaxis(w, axis, -1)
            if w.shape[-1] == 1:
                w = np.broadcast_to(w, w.shape[:-1] + (f.size,))
        # G = (A^H W A + eps I)^-1 over the weights' own (possibly size-1) leading axes
        M = (A.conj().T * w[..., None, :]) @ A
        scale = np.real(np.trace(M, axis1=-2, axis2=-1)) / nm
        empty = scale <= 0
        reg = np.where(empty, 1.0, regularization * scale)[..., None, None]
        G = np.linalg.inv(M + reg * np.eye(nm))
        G = np.where(empty[..., None, None], 0.0, G)
        out_dtype = np.result_type(dtype, A.dtype)
        super().__init__(in_shape, in_shape, dtype, out_dtype, xp=xp, name=where)
        self.freqs, self.tau_cut, self.axis, self.modes = f, float(tau_cut), axis, modes
        self.nmodes = nm
        self.A = asarray(A, xp)
        self._AT, self._Ac = asarray(A.T.copy(), xp), asarray(A.conj(), xp)
        self.w = asarray(np.ascontiguousarray(w), xp)
        self.G = asarray(G, xp)
        self._GH = asarray(np.conj(np.swapaxes(G, -1, -2)), xp)

    def _apply(self, x: Any, G: Any, weight_in: bool) -> Any:
        xp = self.xp
        xm = xp.moveaxis(x, self.axis, -1)
        u = ((self.w * xm) if weight_in else xm) @ self._Ac
        v = (G @ u[..., None])[..., 0]
        m = v @ self._AT
        y = xm - (m if weight_in else self.w * m)
        return xp.moveaxis(y, -1, self.axis)

    def _matvec(self, x: Any) -> Any:
        return self._apply(x, self.G, True)

    def _rmatvec(self, y: Any) -> Any:
        return self._apply(y, self._GH, False)


# -- power spectra -----------------------------------------------------------------------
def split_even_odd(vis: Any, axis: int = 0) -> tuple[Any, Any]:
    """Interleaved halves ``(vis[0::2], vis[1::2])`` along ``axis`` (equal lengths).

    With noise independent between integrations, the two halves have independent noise
    and the same sky (to the extent it does not change between neighbouring times).
    """
    n = vis.shape[axis] // 2
    if n < 1:
        raise ShapeError(f"split_even_odd: need >= 2 samples along axis {axis}, received "
                         f"{vis.shape[axis]}")
    xp = xp_of(vis)
    even = xp.take(vis, xp.arange(0, 2 * n, 2), axis=axis)
    odd = xp.take(vis, xp.arange(1, 2 * n, 2), axis=axis)
    return even, odd


@dataclass
class DelaySpectrum:
    """A delay power spectrum.

    Attributes
    ----------
    delays : ndarray (Nfreq,), s, ascending
    power : ndarray (Nfreq, ...), Jy^2 Hz^2 (averaged axes removed)
    error : ndarray like ``power``, 1-sigma noise error, Jy^2 Hz^2 (None without sigma)
    nsamples : int
        Number of cross products averaged into each delay.
    bandwidth : float
        Effective bandwidth ``dnu sum w^2``, Hz.
    """

    delays: np.ndarray
    power: Any
    error: Any
    nsamples: int
    bandwidth: float


def delay_power_spectrum(vis1: Any, vis2: Any, freqs: Any, sigma1: Any = None,
                         sigma2: Any = None, taper: str = "blackman-harris",
                         alpha: float = 0.5, axis: int = 1,
                         average_axes: Sequence[int] | None = (0, 2)) -> DelaySpectrum:
    """Cross delay power spectrum of two data halves with independent noise.

    ``P(tau) = < Re( V1~(tau) conj(V2~(tau)) ) >`` averaged over ``average_axes``, with
    ``V~`` the :class:`DelayTransform` (rms-normalised taper). The noise of the two halves
    is uncorrelated, so ``E P = |S~|^2`` (no noise bias), unlike ``|V~|^2``.

    Noise error (``sigma^2 = E|n|^2`` per complex sample, DESIGN.md): each ``V_i~`` has
    noise variance ``s_i^2 = dnu^2 sum_n w_n^2 sigma_i,n^2``; ``Re(N1~ conj N2~)`` of two
    independent circular Gaussians has variance ``s_1^2 s_2^2 / 2``; the average of ``M``
    such products (independent between times/baselines) has variance
    ``sum_j s_1j^2 s_2j^2 / (2 M^2)``. Signal-noise cross terms (variance
    ``|S~|^2 (s_1^2 + s_2^2) / 2`` per sample) are not included.

    Parameters
    ----------
    vis1, vis2 : array, e.g. (Ntimes, Nfreq, Nbl), Jy
        The halves (e.g. :func:`split_even_odd`, or two filtered halves).
    freqs : array (Nfreq,), Hz
    sigma1, sigma2 : float or array broadcastable to the data, Jy, optional
        Noise rms per complex sample of each half (``sigma2`` defaults to ``sigma1``).
    taper, alpha : see :func:`taper`
    axis : int
        Frequency axis.
    average_axes : sequence of int or None
        Axes averaged over (default times and baselines); None keeps all.

    Returns
    -------
    DelaySpectrum
    """
    xp = xp_of(vis1)
    if vis1.shape != vis2.shape:
        raise ShapeError(f"delay_power_spectrum: vis1 {vis1.shape} and vis2 {vis2.shape} "
                         "differ in shape")
    f, dnu = _freqs(freqs, "delay_power_spectrum")
    axis = axis % vis1.ndim
    dt = np.result_type(vis1.dtype, np.complex64)
    D = DelayTransform(vis1.shape, f, axis, taper, alpha, "rms", dtype=dt, xp=xp)
    p = (D.matvec(vis1) * D.matvec(vis2).conj()).real
    avg = tuple(sorted(a % vis1.ndim for a in (average_axes or ())))
    if axis in avg:
        raise InputError("delay_power_spectrum: average_axes must not include the frequency "
                         "axis")
    nsamp = int(np.prod([vis1.shape[a] for a in avg])) if avg else 1
    power = p.mean(axis=avg) if avg else p
    w2 = D.window**2
    err = None
    if sigma1 is not None:
        s2 = sigma1 if sigma2 is None else sigma2

        def var(sig: Any) -> Any:
            sig = xp.broadcast_to(asarray(sig, xp, np.float64), vis1.shape)
            wb = asarray(w2.reshape([-1 if i == axis else 1 for i in range(vis1.ndim)]), xp)
            return dnu**2 * (wb * sig**2).sum(axis=axis, keepdims=True)

        v = var(sigma1) * var(s2) / 2.0
        v = xp.broadcast_to(v, vis1.shape)
        v = v.sum(axis=avg) / nsamp**2 if avg else v
        err = xp.sqrt(v)
    return DelaySpectrum(D.delays, power, err, nsamp, float(dnu * w2.sum()))


def delay_to_kpar(delay: Any, freqs: Any, cosmo: Any = None) -> np.ndarray:
    """Line-of-sight wavenumber of a delay, ``k_par = 2 pi tau / Y``, Mpc^-1.

    ``Y = |dr/dnu|`` at the band centre (:func:`linlim.sky.signal.cosmo_scalars`).
    """
    from .sky.signal import cosmo_scalars

    _, Y = cosmo_scalars(freqs, cosmo)
    return 2 * np.pi * np.asarray(delay, np.float64) / Y


def baseline_to_kperp(length: Any, freqs: Any, cosmo: Any = None) -> np.ndarray:
    """Transverse wavenumber of a baseline, ``k_perp = 2 pi |b| nu_c / (c X)``, Mpc^-1."""
    from .sky.signal import cosmo_scalars

    f, _ = _freqs(freqs, "baseline_to_kperp")
    X, _ = cosmo_scalars(f, cosmo)
    nu_c = 0.5 * (f.min() + f.max())
    return 2 * np.pi * np.asarray(length, np.float64) * nu_c / (SPEED_OF_LIGHT * X)


#: Visibility amplitude per unit ``I |A|^2`` for each accepted ``polarization``: one linear
#: feed of an unpolarised sky carries half of it (linlim's RIME, pyuvdata ``"sum"``).
POLARIZATION_FACTORS = {"xx": 0.5, "yy": 0.5, "stokes_i": 1.0}


def beam_omega_pp(power_beam: Any, solid_angle: Any) -> float:
    """Beam-squared solid angle ``Omega_pp = sum_s P(s)^2 dOmega_s``, sr.

    Parameters
    ----------
    power_beam : array, shape (Ndir,)
        Power beam ``P = |A|^2`` (peak-normalised, dimensionless) at the directions of a
        pixelisation of the sky above the horizon (0 below it). For linlim's analytic
        beams ``A`` is what ``beam.evaluate()`` returns, so pass ``A**2``.
    solid_angle : float or array (Ndir,)
        Solid angle of each direction's pixel, sr.

    Returns
    -------
    float, sr
    """
    p = np.asarray(power_beam, dtype=np.float64)
    om = np.broadcast_to(np.asarray(solid_angle, dtype=np.float64), p.shape)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(om <= 0):
        raise InputError(f"beam_omega_pp: expected a finite 1-D power beam and positive "
                         f"solid angles, received shape {p.shape}")
    return float(np.sum(p**2 * om))


def jy2hz2_to_mk2mpc3(power: Any, freqs: Any, omega_pp: float,
                      bandwidth: float | None = None, cosmo: Any = None,
                      polarization: str = "xx") -> Any:
    """Convert delay power (Jy^2 Hz^2) to a cosmological power spectrum (mK^2 Mpc^3).

    ``P(k) = |V~|^2 / p^2 (c^2 / (2 k_B nu_c^2))^2 X^2 Y / (Omega_pp B)`` (Parsons et al.
    2012, 2014), with ``X``, ``Y`` from :func:`linlim.sky.signal.cosmo_scalars`, ``B`` the
    effective bandwidth ``dnu sum w^2`` (``N dnu`` for an rms-normalised taper, the
    default), ``Omega_pp = int |A(s)|^4 dOmega`` the integral of the squared *power* beam
    ``|A|^2`` (peak 1; :func:`beam_omega_pp`), and ``p`` the fraction of ``I |A|^2`` that the
    visibility carries (``polarization``).

    Parsons' formula is written for a visibility ``V = int I |A|^2 e^{...} dOmega``. linlim's
    visibilities are those of one linear feed, ``V_xx = 0.5 I |A|^2`` (DESIGN.md, pyuvdata
    ``pol_convention="sum"``), so their delay power is ``p^2 = 1/4`` of that and the
    default (``polarization="xx"``) divides it back out. Before this was made explicit the
    conversion returned a quarter of the true power for linlim's own XX data (measured
    end to end in ``tests/test_filters.py``).

    Derivation for a white field of power ``P`` (voxels of volume
    ``X^2 Omega_pix Y dnu``, temperature variance ``P / V_vox``): per channel
    ``E|V|^2 = p^2 (2 k_B nu^2 / c^2)^2 P Omega_pp / (X^2 Y dnu)``; the delay transform
    (rms taper) sums ``N`` such channels times ``dnu^2``, so
    ``E|V~|^2 = p^2 (2 k_B nu^2/c^2)^2 P Omega_pp B / (X^2 Y)``: inverting gives the formula.

    Parameters
    ----------
    power : array, Jy^2 Hz^2
    freqs : array (Nfreq,), Hz
    omega_pp : float, sr
        ``int |A|^4 dOmega`` of the (per-feed) power beam ``|A|^2`` at the band centre.
    bandwidth : float, Hz, optional (default ``N dnu``)
    cosmo : astropy.cosmology.Cosmology, optional
    polarization : {"xx", "yy", "stokes_i"}
        ``"xx"``/``"yy"`` (default): one linear feed of linlim's RIME, ``V = 0.5 I |A|^2``
        (``p = 1/2``); ``"stokes_i"``: a visibility of ``I |A|^2`` (pseudo-Stokes
        ``XX + YY`` in the ``"sum"`` convention, or one feed in pyuvdata's ``"avg"``
        convention; ``p = 1``).

    Returns
    -------
    array like ``power``, mK^2 Mpc^3
    """
    from .sky.signal import cosmo_scalars

    f, dnu = _freqs(freqs, "jy2hz2_to_mk2mpc3")
    if not omega_pp > 0:
        raise InputError(f"jy2hz2_to_mk2mpc3: omega_pp must be > 0 sr, received {omega_pp}")
    if polarization not in POLARIZATION_FACTORS:
        raise InputError(f"jy2hz2_to_mk2mpc3: polarization must be one of "
                         f"{tuple(POLARIZATION_FACTORS)}, received {polarization!r}")
    pfac = POLARIZATION_FACTORS[polarization]
    B = f.size * dnu if bandwidth is None else float(bandwidth)
    X, Y = cosmo_scalars(f, cosmo)
    nu = 0.5 * (f.min() + f.max())
    k_per_jy = SPEED_OF_LIGHT**2 / (2 * K_BOLTZMANN * nu**2) * 1e-26 * 1e3  # mK per (Jy/sr)
    return power / pfac**2 * k_per_jy**2 * X**2 * Y / (omega_pp * B)
