"""Chromatic width models: beam parameters per beam -> a width per (beam, frequency).

An analytic beam is a *profile* (Airy, Gaussian) of a width ``w[b, f]`` (a dish diameter
in metres or an angular sigma in radians) composed with one of these width models, so the
chain rule lives only in :class:`~linlim.operators.Composition`:

* :class:`PolynomialWidth` (linear): ``w[b, f] = sum_j p[b, j] t_f^j`` with
  ``t_f = (f - f0) / f0``; order 0 is an achromatic width (one number per beam).
* :class:`PowerLawWidth`: ``w[b, f] = p[b, 0] (f / f0)^p[b, 1]`` (pyuvdata's
  ``GaussianBeam(sigma=, spectral_index=, reference_frequency=)`` law).
* :class:`DiameterToSigma`: pyuvdata's ``diameter_to_sigma``, the Gaussian sigma whose FWHM
  matches an Airy disk of diameter ``D`` at each frequency.
* :func:`ripple_powerlaw_width`: a power law plus a sinusoidal ripple at a fixed delay (a
  reflection-like chromatic structure), composed from the blocks above and the
  foundation's ``Slice``/``MatrixMult``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_xp
from ..errors import InputError
from ..operators.base import LinearOperator, Operator
from ..operators.linear import MatrixMult, Slice
from ..operators.powerlaw import PowerLaw, power_law_columns
from .base import SPEED_OF_LIGHT, check_freqs, to_xp

__all__ = ["PolynomialWidth", "PowerLawWidth", "DiameterToSigma", "ripple_powerlaw_width",
           "AIRY_FWHM_SCALAR"]

#: pyuvdata's constant in ``diameter_to_sigma`` (a Gaussian fitted to an Airy disk).
AIRY_FWHM_SCALAR = 2.2150894


def _ref_freq(freqs: np.ndarray, ref_freq: float | None, where: str) -> float:
    if ref_freq is None:
        return float(np.mean(freqs))
    f0 = float(ref_freq)
    if not np.isfinite(f0) or f0 <= 0:
        raise InputError(f"{where}: ref_freq must be a positive frequency in Hz, "
                         f"received {ref_freq!r}")
    check_freqs(np.array([f0]), where)
    return f0


class PolynomialWidth(LinearOperator):
    """Width polynomial in fractional frequency: ``w[b, f] = sum_j p[b, j] t_f^j``.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    nbeam : int
        Number of beams (1 shared, or Nant).
    order : int
        Polynomial order ``n >= 0`` (``n + 1`` coefficients per beam); 0 is achromatic.
    ref_freq : float, optional
        Reference frequency ``f0`` in Hz (default: mean of ``freqs``); ``p[b, 0]`` is the
        width at ``f0``.
    xp : module, optional

    Notes
    -----
    Input ``p``: (nbeam, order + 1) float64 (width units); output ``w``: (nbeam, Nfreq).
    With ``T[f, j] = t_f^j``: forward ``w = p T^T``, adjoint ``p = w T`` (T real).
    """

    _abstract = False

    def __init__(self, freqs: Any, nbeam: int = 1, order: int = 0,
                 ref_freq: float | None = None, xp: Any = None) -> None:
        freqs = check_freqs(freqs, "PolynomialWidth")
        if int(order) != order or order < 0:
            raise InputError(f"PolynomialWidth: order must be an integer >= 0, received {order!r}")
        self.order = int(order)
        self.ref_freq = _ref_freq(freqs, ref_freq, "PolynomialWidth")
        xp = get_xp() if xp is None else xp
        super().__init__((nbeam, self.order + 1), (nbeam, freqs.size), np.float64,
                         np.float64, xp=xp, name="PolynomialWidth")
        t = (freqs - self.ref_freq) / self.ref_freq
        self.T = to_xp(t[:, None] ** np.arange(self.order + 1)[None, :], xp, np.float64)

    def _matvec(self, x: Any) -> Any:
        return x @ self.T.T

    def _rmatvec(self, y: Any) -> Any:
        return y @ self.T


class PowerLawWidth(PowerLaw):
    """Power-law width: ``w[b, f] = p[b, 0] (f / f0)^p[b, 1]``.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    nbeam : int
    ref_freq : float, optional
        Reference frequency ``f0`` in Hz (default: mean of ``freqs``).
    xp : module, optional

    Notes
    -----
    Input ``p``: (nbeam, 2) float64 = (width at ``f0``, spectral index ``gamma``); output
    ``w``: (nbeam, Nfreq) float64. The composed :class:`~linlim.operators.PowerLaw` with
    ``L = ln(f / f0)`` (its derivatives come from the product rule).
    """

    _abstract = False

    def __init__(self, freqs: Any, nbeam: int = 1, ref_freq: float | None = None,
                 xp: Any = None) -> None:
        freqs = check_freqs(freqs, "PowerLawWidth")
        self.ref_freq = _ref_freq(freqs, ref_freq, "PowerLawWidth")
        xp = get_xp() if xp is None else xp
        super().__init__(*power_law_columns(nbeam, xp), np.log(freqs / self.ref_freq),
                         name="PowerLawWidth")


class DiameterToSigma(Operator):
    """pyuvdata's Gaussian width from a dish diameter, per (beam, frequency).

    ``sigma = (2 / 2.355) arcsin(u)``, ``u = s lambda_f / (pi D)``, ``s = 2.2150894``: the
    E-field sigma (radians) of a Gaussian whose FWHM matches an Airy disk's main lobe
    (``pyuvdata.analytic_beam.diameter_to_sigma``).

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    nbeam : int
    xp : module, optional

    Notes
    -----
    Input ``D``: (nbeam, Nfreq) float64 metres (a chromatic diameter is allowed); output
    ``sigma``: (nbeam, Nfreq) float64 radians. Elementwise, ``du/dD = -u / D`` so
    ``dsigma/dD = -(2/2.355) u / (D sqrt(1 - u^2))``; the adjoint multiplies by the same
    (real) factor. Requires ``u < 1`` (``D > s lambda / pi``).
    """

    _abstract = False

    def __init__(self, freqs: Any, nbeam: int = 1, xp: Any = None) -> None:
        freqs = check_freqs(freqs, "DiameterToSigma")
        xp = get_xp() if xp is None else xp
        super().__init__((nbeam, freqs.size), (nbeam, freqs.size), np.float64, np.float64,
                         xp=xp, name="DiameterToSigma")
        lam = SPEED_OF_LIGHT / freqs
        self.scaled_lambda = to_xp(AIRY_FWHM_SCALAR * lam / np.pi, xp, np.float64)

    def _u(self, d: Any) -> Any:
        xp = self.xp
        bad = ~(d > 0.0) | ~xp.isfinite(d)
        if bool(xp.any(bad)):
            b, f = (int(i) for i in xp.argwhere(bad)[0])
            raise InputError(f"{self.name}: diameter must be positive and finite (metres), "
                             f"received {float(d[b, f])!r} for beam {b} at frequency index {f}")
        u = self.scaled_lambda[None, :] / d
        if bool(xp.any(u >= 1.0)):
            raise InputError(
                f"{self.name}: diameter too small for the wavelength: need "
                f"D > {AIRY_FWHM_SCALAR:.7g} lambda / pi = "
                f"{float(self.scaled_lambda.max()):.6g} m at the lowest frequency")
        return u

    def _forward(self, x: Any) -> Any:
        return (2.0 / 2.355) * self.xp.arcsin(self._u(x))

    def _deriv(self, x: Any) -> Any:
        u = self._u(x)
        return -(2.0 / 2.355) * u / (x * self.xp.sqrt(1.0 - u * u))

    def _jvp(self, x: Any, dx: Any) -> Any:
        return self._deriv(x) * dx

    def _vjp(self, x: Any, dy: Any) -> Any:
        return self._deriv(x) * dy


def ripple_powerlaw_width(freqs: Any, ripple_delay: float, nbeam: int = 1,
                          ref_freq: float | None = None, xp: Any = None) -> Operator:
    """Power-law width with a sinusoidal ripple at a fixed delay.

    ``w[b, f] = p0 (f/f0)^gamma + a cos(2 pi tau (f - f0)) + b sin(2 pi tau (f - f0))``
    with parameters ``p[b] = (p0, gamma, a, b)`` (width units, -, width units, width
    units) and a fixed ripple delay ``tau`` (s). A standing-wave reflection inside the
    antenna imprints such a ripple on the beam's frequency response; its delay ``tau``
    places foreground power at ``|tau|`` in delay space, where the 21 cm signal is sought,
    unless the ripple is modelled.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    ripple_delay : float
        Ripple delay ``tau`` in seconds (e.g. ``600e-9``).
    nbeam : int
    ref_freq : float, optional
        ``f0`` in Hz (default: mean of ``freqs``).
    xp : module, optional

    Returns
    -------
    Operator
        (nbeam, 4) float64 -> (nbeam, Nfreq) float64: ``PowerLawWidth @ Slice[:, :2] +
        MatrixMult(R) @ Slice[:, 2:]`` with ``R[f] = (cos, sin)(2 pi tau (f - f0))``.
    """
    freqs = check_freqs(freqs, "ripple_powerlaw_width")
    tau = float(ripple_delay)
    if not np.isfinite(tau) or tau <= 0 or tau > 1e-3:
        raise InputError(f"ripple_powerlaw_width: ripple_delay must be a delay in seconds in "
                         f"(0, 1e-3], received {ripple_delay!r}")
    f0 = _ref_freq(freqs, ref_freq, "ripple_powerlaw_width")
    xp = get_xp() if xp is None else xp
    phase = 2.0 * np.pi * tau * (freqs - f0)
    R = np.stack([np.cos(phase), np.sin(phase)], axis=1)          # (Nfreq, 2)
    smooth = PowerLawWidth(freqs, nbeam, f0, xp=xp) @ Slice(
        (nbeam, 4), (slice(None), slice(0, 2)), xp=xp)
    ripple = MatrixMult(R, in_shape=(nbeam, 2), axis=1, in_dtype=np.float64, xp=xp) @ Slice(
        (nbeam, 4), (slice(None), slice(2, 4)), xp=xp)
    return smooth + ripple
