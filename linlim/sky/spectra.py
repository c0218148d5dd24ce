"""Source spectra as differentiable operators: parameters -> intensities ``I[s, f]`` in Jy.

Every spectrum maps per-source parameters to an ``(Nsrc, Nfreq)`` float64 array of
intensities, the layout the RIME consumes. All are built by composing foundation operators
(STYLE habit 4), so their ``jvp``/``vjp`` come from the chain and product rules written once
in :mod:`linlim.operators.composite`, and each class only assembles the pieces.

With ``x_f = ln(f / f0)`` (``f0`` the reference frequency):

================================  ===========================  ==============================
class                             input                        output ``I[s, f]``
================================  ===========================  ==============================
:class:`PowerLawSpectrum`         ``(lnS0, alpha[, beta])``     ``exp(lnS0 + alpha x + beta x^2)``
:class:`AmplitudePowerLawSpectrum` ``(A, alpha)``               ``c_f A exp(alpha x)``
:class:`FixedIndexSpectrum`       ``A`` (linear)               ``c_f A exp(alpha_s x)``
:class:`ChannelAmplitudes`        ``a[s, f]`` (linear)         ``r[s, f] a[s, f]``
:class:`PolynomialSpectrum`       ``c[s, k]`` (linear)         ``sum_k c[s, k] x^k``
:class:`LogPolynomialSpectrum`    ``c[s, k]``                  ``exp(sum_k c[s, k] x^k)``
================================  ===========================  ==============================

``c_f`` and ``r`` are fixed multipliers (for a HEALPix map: pixel solid angle times the
Rayleigh-Jeans factor, see :mod:`linlim.sky.healpix`). A curved power law is the log-parabola
``S(f) = S0 (f / f0)^(alpha + beta ln(f / f0))``.

Frequencies are in Hz everywhere; :func:`validate_freqs` refuses values below 1 kHz, which
almost always means MHz were passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_xp
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator
from ..operators.composite import Composition, LinearHStack
from ..operators.elementwise import Exp
from ..operators.linear import Diagonal, MatrixMult, Reshape, Select
from ..operators.powerlaw import PowerLaw
from ..units import MIN_FREQ_HZ
from ..validation import check_freqs

__all__ = [
    "MIN_FREQ_HZ",
    "validate_freqs",
    "validate_ref_freq",
    "log_freq_ratio",
    "PowerLawSpectrum",
    "AmplitudePowerLawSpectrum",
    "FixedIndexSpectrum",
    "ChannelAmplitudes",
    "PolynomialSpectrum",
    "LogPolynomialSpectrum",
]



def validate_freqs(freqs: Any, name: str = "freqs") -> np.ndarray:
    """Check a frequency array and return it as a 1-D float64 NumPy array in Hz.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz (a scalar becomes a 1-element array).
    name : str
        Argument name for error messages.

    Returns
    -------
    numpy.ndarray, shape (Nfreq,), float64

    Raises
    ------
    InputError
        Empty, not 1-D, non-finite, non-positive, or below :data:`MIN_FREQ_HZ` (with a hint
        that MHz should be converted to Hz).
    """
    f = np.atleast_1d(np.asarray(getattr(freqs, "to_value", lambda u: freqs)("Hz")))
    if f.ndim != 1 or f.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D array of frequencies in Hz, "
                         f"received shape {f.shape}")
    return check_freqs(f, name)


def validate_ref_freq(ref_freq: Any, name: str = "ref_freq") -> float:
    """Check a scalar reference frequency in Hz (same rules as :func:`validate_freqs`)."""
    arr = np.asarray(ref_freq, dtype=np.float64)
    if arr.ndim != 0:
        raise InputError(f"{name}: expected a scalar frequency in Hz, received shape "
                         f"{arr.shape}")
    return float(validate_freqs(arr, name)[0])


def log_freq_ratio(freqs: Any, ref_freq: Any) -> np.ndarray:
    """``x_f = ln(f / f0)``, shape (Nfreq,) float64 (both validated, in Hz)."""
    return np.log(validate_freqs(freqs) / validate_ref_freq(ref_freq))


def _check_count(n: Any, name: str) -> int:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{name}: expected a positive integer, received {n!r}")
    return int(n)


def _row_multiplier(scale: Any, nfreq: int, name: str) -> np.ndarray:
    """A fixed per-channel multiplier ``c_f`` as a (1, Nfreq) float64 array."""
    if scale is None:
        return np.ones((1, nfreq))
    c = np.asarray(scale, dtype=np.float64)
    if c.ndim == 0:
        c = np.full(nfreq, float(c))
    if c.shape != (nfreq,):
        raise ShapeError(f"{name}: expected a scalar or shape ({nfreq},), received {c.shape}")
    if not np.all(np.isfinite(c)):
        raise InputError(f"{name}: expected finite values, received NaN/inf")
    return c[None, :]


def _log_freqs(op: Any, freqs: Any, ref_freq: Any) -> np.ndarray:
    """Check and store ``op.freqs`` (Hz) and ``op.ref_freq`` (Hz); return ``ln(f / f0)``."""
    op.freqs, op.ref_freq = validate_freqs(freqs), validate_ref_freq(ref_freq)
    return log_freq_ratio(op.freqs, op.ref_freq)


def _broadcast_column(n: int, row: np.ndarray, dtype: Any, xp: Any) -> LinearOperator:
    """Linear map ``a (n,) -> a[:, None] * row[None, :]`` of shape (n, Nfreq)."""
    return Diagonal(row, in_shape=(n, 1), in_dtype=dtype, xp=xp) @ Reshape(
        (n,), (n, 1), dtype, xp=xp)


class PowerLawSpectrum(Composition):
    """(Curved) power law with log amplitudes: ``I = exp(lnS0 + alpha x + beta x^2)``.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    ref_freq : float
        Reference frequency ``f0`` in Hz.
    n_sources : int
        Number of sources ``Nsrc``.
    curvature : bool
        If True the input has a third part ``beta`` (log-parabola).
    xp : module, optional
        Array module (the active backend by default).

    Notes
    -----
    Input: the tuple ``(lnS0, alpha)`` or ``(lnS0, alpha, beta)``, each (Nsrc,) float64
    (``lnS0`` the natural log of the flux in Jy at ``f0``). Output (Nsrc, Nfreq) float64 Jy.

    Built as ``Exp @ L`` with the linear map ``L(p) = sum_k p_k[:, None] x^k[None, :]``
    (``x = ln(f/f0)``), an :class:`~linlim.operators.LinearHStack` of broadcasting diagonals.
    Hence ``J dp = I * L(dp)`` and ``J^H dy = L^H(I * dy)``, i.e.
    ``(sum_f I dy, sum_f I dy x, sum_f I dy x^2)``.

    Examples
    --------
    >>> import numpy as np
    >>> op = PowerLawSpectrum([100e6, 200e6], 100e6, 1)
    >>> np.round(op((np.log([2.0]), np.array([-1.0]))), 12)
    array([[2., 1.]])
    """

    _abstract = False

    def __init__(self, freqs: Any, ref_freq: Any, n_sources: int, curvature: bool = False,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        x = _log_freqs(self, freqs, ref_freq)
        self.n_sources = _check_count(n_sources, "PowerLawSpectrum(n_sources)")
        self.curvature = bool(curvature)
        nfreq = x.size
        powers = (0, 1, 2) if self.curvature else (0, 1)
        log_model = LinearHStack([
            _broadcast_column(self.n_sources, (x ** k)[None, :], np.float64, xp)
            for k in powers
        ])
        super().__init__(Exp((self.n_sources, nfreq), np.float64, xp=xp), log_model)
        self.name = "PowerLawSpectrum"


class AmplitudePowerLawSpectrum(Composition):
    """Power law with a linear amplitude: ``I = c_f A exp(alpha x)``, ``x = ln(f/f0)``.

    Unlike :class:`PowerLawSpectrum`, ``A`` may be zero or negative (a diffuse map's
    fluctuations), so this is the per-pixel spectrum of a HEALPix sky.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    ref_freq : float
        Reference frequency in Hz.
    n_sources : int
        Number of sources (or pixels).
    scale : array_like, shape (Nfreq,) or scalar, optional
        Fixed multiplier ``c_f`` (e.g. pixel solid angle [sr] times the K -> Jy/sr factor).
    xp : module, optional

    Notes
    -----
    Input ``(A, alpha)``, each (Nsrc,) float64; output (Nsrc, Nfreq) float64.
    Built as ``Diagonal(c) @ (a(A) * e(alpha))`` with ``a(A) = A[:, None]`` (shape (N, 1))
    and ``e(alpha) = exp(alpha[:, None] x[None, :])``; the product rule gives
    ``J (dA, dalpha) = c e (dA + A x dalpha)`` and
    ``J^H dy = (sum_f c e dy, sum_f A x c e dy)``.
    """

    _abstract = False

    def __init__(self, freqs: Any, ref_freq: Any, n_sources: int, scale: Any = None,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        x = _log_freqs(self, freqs, ref_freq)
        self.n_sources = n = _check_count(n_sources, "AmplitudePowerLawSpectrum(n_sources)")
        nfreq = x.size
        self.scale = _row_multiplier(scale, nfreq, "AmplitudePowerLawSpectrum(scale)")
        shapes, dtypes = ((n,), (n,)), (np.float64, np.float64)
        amp, index = (Reshape((n,), (n, 1), xp=xp) @ Select(shapes, dtypes, k, xp=xp)
                      for k in (0, 1))
        product = PowerLaw(amp, index, x)  # the shared composed power law
        super().__init__(Diagonal(self.scale, in_shape=(n, nfreq), xp=xp), product)
        self.name = "AmplitudePowerLawSpectrum"


class FixedIndexSpectrum(LinearOperator):
    """Amplitudes times a fixed per-source power law: ``I[s, f] = c_f A_s (f/f0)^alpha_s``.

    Linear in ``A`` (the spectral indices are fixed), e.g. a diffuse map whose amplitude is
    fitted with a known spectral-index map.

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    ref_freq : float
        Reference frequency in Hz.
    index : array_like, shape (Nsrc,)
        Spectral index per source (fixed).
    scale : array_like, shape (Nfreq,) or scalar, optional
        Fixed multiplier ``c_f``.
    dtype : dtype
        Input dtype (``float64``; ``complex128`` works, the kernel is real).
    xp : module, optional

    Notes
    -----
    With ``K[s, f] = c_f (f/f0)^alpha_s`` (real): ``y = A[:, None] K``;
    ``<A[:, None] K, y> = Re sum_s conj(A_s) sum_f K[s, f] y[s, f]``, so
    ``A^H y = sum_f K[s, f] y[s, f]``.
    """

    _abstract = False

    def __init__(self, freqs: Any, ref_freq: Any, index: Any, scale: Any = None,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        x = _log_freqs(self, freqs, ref_freq)
        idx = np.atleast_1d(np.asarray(index, dtype=np.float64))
        if idx.ndim != 1:
            raise ShapeError(f"FixedIndexSpectrum(index): expected shape (Nsrc,), received "
                             f"{idx.shape}")
        if not np.all(np.isfinite(idx)):
            raise InputError("FixedIndexSpectrum(index): expected finite spectral indices")
        c = _row_multiplier(scale, x.size, "FixedIndexSpectrum(scale)")
        kernel = c * np.exp(idx[:, None] * x[None, :])
        super().__init__((idx.size,), (idx.size, x.size), dtype, dtype, xp=xp)
        self.index = idx
        self.kernel = xp.asarray(kernel)

    def _matvec(self, x: Any) -> Any:
        return x[:, None] * self.kernel

    def _rmatvec(self, y: Any) -> Any:
        return (self.kernel * y).sum(axis=1)  # kernel is real: conj(K) = K


class ChannelAmplitudes(Diagonal):
    """Free amplitude per source and channel: ``I[s, f] = r[s, f] a[s, f]``.

    Parameters
    ----------
    n_sources : int
        Number of sources ``Nsrc``.
    n_freqs : int
        Number of channels ``Nfreq``.
    reference : array_like, optional
        Fixed multiplier ``r``, shape (Nfreq,) (per channel, e.g. pixel area times a
        K -> Jy/sr factor) or (Nsrc, Nfreq) (a reference spectrum per source, so that
        ``a`` is a relative correction around 1). Default: 1 (``a`` is ``I`` in Jy).
    dtype : dtype
        Input dtype (``float64``; ``complex128`` is allowed for generality).
    xp : module, optional

    Notes
    -----
    A :class:`~linlim.operators.Diagonal`: ``A^H y = conj(r) y`` (``r`` real here).
    """

    _abstract = False

    def __init__(self, n_sources: int, n_freqs: int, reference: Any = None,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        n = _check_count(n_sources, "ChannelAmplitudes(n_sources)")
        nf = _check_count(n_freqs, "ChannelAmplitudes(n_freqs)")
        if reference is None:
            r = np.ones((1, 1))
        else:
            r = np.asarray(reference, dtype=np.float64)
            if r.shape == (nf,):
                r = r[None, :]
            elif r.shape != (n, nf):
                raise ShapeError(
                    f"ChannelAmplitudes(reference): expected shape ({nf},) or ({n}, {nf}), "
                    f"received {r.shape}")
            if not np.all(np.isfinite(r)):
                raise InputError("ChannelAmplitudes(reference): expected finite values")
        super().__init__(r, in_shape=(n, nf), in_dtype=dtype, xp=xp)
        self.name = "ChannelAmplitudes"


class PolynomialSpectrum(MatrixMult):
    """Polynomial in ``x = ln(f/f0)``: ``I[s, f] = sum_k c[s, k] x_f^k`` (linear in ``c``).

    Parameters
    ----------
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    ref_freq : float
        Reference frequency in Hz.
    n_sources : int
    n_coef : int
        Number of coefficients ``Ncoef`` (degree ``Ncoef - 1``).
    dtype : dtype
        Input dtype.
    xp : module, optional

    Notes
    -----
    A :class:`~linlim.operators.MatrixMult` by the Vandermonde matrix ``V[f, k] = x_f^k``
    along axis 1 of ``c`` (Nsrc, Ncoef): ``A^H y = y V`` (``V`` real).
    """

    _abstract = False

    def __init__(self, freqs: Any, ref_freq: Any, n_sources: int, n_coef: int,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        x = _log_freqs(self, freqs, ref_freq)
        n = _check_count(n_sources, "PolynomialSpectrum(n_sources)")
        k = _check_count(n_coef, "PolynomialSpectrum(n_coef)")
        V = x[:, None] ** np.arange(k)[None, :]
        super().__init__(V, in_shape=(n, k), axis=1, in_dtype=dtype, xp=xp)
        self.name = "PolynomialSpectrum"


class LogPolynomialSpectrum(Composition):
    """Log-polynomial spectrum ``I[s, f] = exp(sum_k c[s, k] x_f^k)``, ``x = ln(f/f0)``.

    ``Ncoef = 3`` is the log-parabola of :class:`PowerLawSpectrum` with the coefficients
    packed in one (Nsrc, 3) array ``(lnS0, alpha, beta)``.

    Parameters
    ----------
    freqs, ref_freq, n_sources, n_coef
        As for :class:`PolynomialSpectrum`.
    xp : module, optional

    Notes
    -----
    ``Exp @ PolynomialSpectrum``: ``J dc = I * (dc V^T)``, ``J^H dy = (I * dy) V``.
    """

    _abstract = False

    def __init__(self, freqs: Any, ref_freq: Any, n_sources: int, n_coef: int,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        poly = PolynomialSpectrum(freqs, ref_freq, n_sources, n_coef, xp=xp)
        self.freqs, self.ref_freq = poly.freqs, poly.ref_freq
        super().__init__(Exp(poly.out_shape, np.float64, xp=xp), poly)
        self.name = "LogPolynomialSpectrum"

