"""Gain parameterisations, each composed from the generic operators (no new kernels).

Every function returns an :class:`~linlim.operators.Operator` from a parameter array to
complex gains of shape ``(*lead, Nant, Ntimes_sol, Nfreqs_sol)``, ready to be composed with
:func:`~linlim.gains.antenna.di_gains` or :func:`~linlim.gains.antenna.dd_gains`
(``gain_op @ param_op``). ``lead`` holds optional cluster/feed axes.

* :func:`reim_gains`: ``g = x[0] + i x[1]`` (``Reshape @ MatrixMult([1, i])``);
* :func:`amplitude_phase_gains`: ``g = exp(eta + i phi)`` (``Exp @ MatrixMult``) or
  ``A exp(i phi)`` (``ElementwiseProduct`` of ``A`` and ``ExpI @ phi``);
* :func:`phase_gains`: ``g = A0 exp(i phi)`` (``Diagonal(A0) @ ExpI``);
* :func:`delay_gains`: ``g = exp(i (2 pi nu tau + phi0))`` (``ExpI @ DelayToPhase``, the
  latter a ``MatrixMult``);
* :func:`phase_slope_gains`: ``g_a = exp(i x_a . s)`` (``ExpI @ MatrixMult(positions)``);
* :func:`bandpass_gains`: ``g(nu) = sum_k c_k B_k(nu)`` (``MatrixMult(basis)``);
* :func:`multiply_gains`: products of the above (``ElementwiseProduct`` of
  ``op_i @ Select(i)``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import get_xp
from ..errors import InputError, ShapeError
from ..operators.base import Operator
from ..operators.composite import ElementwiseProduct
from ..operators.elementwise import Exp, ExpI
from ..operators.linear import Diagonal, MatrixMult, Reshape, Select, Take
from ..units import SPEED_OF_LIGHT as C_LIGHT

__all__ = [
    "reim_gains",
    "amplitude_phase_gains",
    "phase_gains",
    "delay_gains",
    "phase_slope_gains",
    "bandpass_basis",
    "bandpass_gains",
    "multiply_gains",
]



def _shape(shape: Any) -> tuple:
    return (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)


def _named(op: Operator, name: str) -> Operator:
    op.name = name
    return op


def reim_gains(shape: Any, xp: Any = None) -> Operator:
    """Complex gains from real and imaginary parts: ``g = x[0] + i x[1]``.

    Parameters
    ----------
    shape : tuple of int
        Gain shape ``(*lead, Nant, Ntimes_sol, Nfreqs_sol)``.

    Returns
    -------
    Operator
        float64 ``(2, *shape)`` -> complex128 ``shape``.
    """
    xp = get_xp() if xp is None else xp
    shape = _shape(shape)
    mm = MatrixMult(np.array([[1.0, 1.0j]]), in_shape=(2,) + shape, axis=0,
                    in_dtype=np.float64, xp=xp)
    return _named(Reshape(mm.out_shape, shape, np.complex128, xp=xp) @ mm, "ReImGains")


def amplitude_phase_gains(shape: Any, log_amplitude: bool = True, xp: Any = None) -> Operator:
    """Gains from amplitude and phase.

    Parameters
    ----------
    shape : tuple of int
        Gain shape.
    log_amplitude : bool
        If True (default), ``x[0]`` is the log-amplitude ``eta`` and ``g = exp(eta + i phi)``
        (``Exp`` of a complex combination, positivity built in); otherwise ``x[0]`` is the
        amplitude ``A`` and ``g = A exp(i phi)`` (an elementwise product).

    Returns
    -------
    Operator
        float64 ``(2, *shape)`` (amplitude part, phase in radians) -> complex128 ``shape``.
    """
    xp = get_xp() if xp is None else xp
    shape = _shape(shape)
    if log_amplitude:
        lin = reim_gains(shape, xp=xp)  # eta + i phi
        return _named(Exp(shape, np.complex128, xp=xp) @ lin, "LogAmpPhaseGains")
    part = [Reshape((1,) + shape, shape, np.float64, xp=xp)
            @ Take((2,) + shape, [k], axis=0, dtype=np.float64, xp=xp) for k in (0, 1)]
    return _named(ElementwiseProduct(part[0], ExpI(shape, xp=xp) @ part[1]), "AmpPhaseGains")


def phase_gains(shape: Any, amplitude: Any = None, xp: Any = None) -> Operator:
    """Phase-only gains ``g = A0 exp(i phi)`` with a fixed amplitude ``A0`` (default 1).

    Returns
    -------
    Operator
        float64 ``shape`` (radians) -> complex128 ``shape``.
    """
    xp = get_xp() if xp is None else xp
    shape = _shape(shape)
    op = ExpI(shape, xp=xp)
    if amplitude is not None:
        op = Diagonal(amplitude, in_shape=shape, in_dtype=np.complex128, xp=xp) @ op
    return _named(op, "PhaseGains")


def delay_gains(nants: int, ntimes_sol: int, freqs: Any, *, lead: Sequence[int] = (),
                with_phase: bool = True, xp: Any = None) -> Operator:
    """Delay (and phase-offset) gains ``g(nu) = exp(i (2 pi nu tau + phi0))``.

    Composed as ``ExpI @ DelayToPhase`` where ``DelayToPhase`` is a ``MatrixMult`` along the
    last axis with rows ``(2 pi nu_f 1e-9, 1)``.

    Parameters
    ----------
    nants, ntimes_sol : int
    freqs : array, shape (Nfreqs,)
        Channel frequencies in Hz (one gain per channel: use ``freq_interval=1``).
    lead : tuple of int
        Leading (cluster/feed) axes.
    with_phase : bool
        Include the phase offset ``phi0``.

    Returns
    -------
    Operator
        float64 ``(*lead, Nant, Ntimes_sol, P)`` with ``P = 2`` (tau in ns, phi0 in rad) or
        ``P = 1`` (tau only) -> complex128 ``(*lead, Nant, Ntimes_sol, Nfreqs)``.
    """
    xp = get_xp() if xp is None else xp
    nu = np.asarray(freqs, dtype=np.float64).ravel()
    cols = [2.0 * np.pi * nu * 1e-9] + ([np.ones_like(nu)] if with_phase else [])
    M = np.stack(cols, axis=1)
    lead = _shape(lead) if len(lead) else ()
    to_phase = _named(MatrixMult(M, in_shape=lead + (int(nants), int(ntimes_sol), M.shape[1]),
                                 axis=-1, in_dtype=np.float64, xp=xp), "DelayToPhase")
    return _named(ExpI(to_phase.out_shape, xp=xp) @ to_phase, "DelayGains")


def phase_slope_gains(antpos: Any, ntimes_sol: int, nfreqs_sol: int | None = None, *,
                      freqs: Any = None, xp: Any = None) -> Operator:
    """Phase slopes across the array, ``g_a = exp(i phi_a)`` with ``phi_a`` linear in position.

    Two forms:

    * ``freqs`` None: ``phi[a, t, f] = sum_k x[a, k] s[k, t, f]``, ``s`` in rad/m per cell.
    * ``freqs`` given: an achromatic direction offset, ``phi[a, t, f] = 2 pi nu_f / c
      sum_k x[a, k] s[k, t]`` with ``s`` dimensionless (direction cosines), one gain per
      channel.

    Composed as ``ExpI @ [Diagonal(2 pi nu / c) @] MatrixMult(antpos)``.

    Parameters
    ----------
    antpos : array, shape (Nant, D)
        Antenna positions in metres (ENU; D = 2 or 3).

    Returns
    -------
    Operator
        float64 ``(D, Ntimes_sol, Nfreqs_sol)`` (or ``(D, Ntimes_sol, 1)`` with ``freqs``) ->
        complex128 ``(Nant, Ntimes_sol, Nfreqs_sol or Nfreqs)``.
    """
    xp = get_xp() if xp is None else xp
    pos = np.asarray(antpos, dtype=np.float64)
    if pos.ndim != 2:
        raise ShapeError(f"phase_slope_gains: antpos must be (Nant, D), received {pos.shape}")
    if freqs is None:
        if nfreqs_sol is None:
            raise InputError("phase_slope_gains: give nfreqs_sol or freqs")
        op: Operator = MatrixMult(pos, in_shape=(pos.shape[1], int(ntimes_sol), int(nfreqs_sol)),
                                  axis=0, in_dtype=np.float64, xp=xp)
    else:
        nu = np.asarray(freqs, dtype=np.float64).ravel()
        geo = MatrixMult(pos, in_shape=(pos.shape[1], int(ntimes_sol), 1), axis=0,
                         in_dtype=np.float64, xp=xp)
        scale = Diagonal((2.0 * np.pi / C_LIGHT) * nu[None, None, :], in_shape=geo.out_shape,
                         in_dtype=np.float64, xp=xp)
        op = scale @ geo
    return _named(ExpI(op.out_shape, xp=xp) @ op, "PhaseSlopeGains")


def bandpass_basis(freqs: Any, nterms: int, kind: str = "dct") -> np.ndarray:
    """Smooth frequency basis, shape (Nfreqs, nterms).

    ``kind="dct"``: ``B[n, k] = cos(pi k (n + 1/2) / N)`` (DCT-II rows, channel index n);
    ``kind="legendre"``: Legendre polynomials ``P_k(x)`` of ``x`` mapping the band to
    [-1, 1].
    """
    nu = np.asarray(freqs, dtype=np.float64).ravel()
    n, k = nu.size, int(nterms)
    if not 1 <= k <= n:
        raise InputError(f"bandpass_basis: nterms must be in [1, {n}], received {nterms}")
    if kind == "dct":
        return np.cos(np.pi * np.arange(k)[None, :] * (np.arange(n)[:, None] + 0.5) / n)
    if kind == "legendre":
        span = nu.max() - nu.min()
        x = np.zeros(n) if span == 0 else 2.0 * (nu - nu.min()) / span - 1.0
        return np.polynomial.legendre.legvander(x, k - 1)
    raise InputError(f"bandpass_basis: kind must be 'dct' or 'legendre', received {kind!r}")


def bandpass_gains(nants: int, ntimes_sol: int, freqs: Any, nterms: int, *,
                   kind: str = "dct", lead: Sequence[int] = (), xp: Any = None) -> Operator:
    """Smooth complex bandpass ``g[a, t, nu] = sum_k c[a, t, k] B_k(nu)`` (``MatrixMult``).

    Returns
    -------
    Operator
        complex128 ``(*lead, Nant, Ntimes_sol, nterms)`` -> complex128
        ``(*lead, Nant, Ntimes_sol, Nfreqs)``.
    """
    xp = get_xp() if xp is None else xp
    B = bandpass_basis(freqs, nterms, kind).astype(np.complex128)
    lead = _shape(lead) if len(lead) else ()
    return _named(MatrixMult(B, in_shape=lead + (int(nants), int(ntimes_sol), B.shape[1]),
                             axis=-1, in_dtype=np.complex128, xp=xp), "BandpassGains")


def multiply_gains(*ops: Operator) -> Operator:
    """Product of gain terms, ``g = g_1(x_1) g_2(x_2) ...`` (e.g. bandpass times delay).

    Returns
    -------
    Operator
        Input the tuple ``(x_1, x_2, ...)``; output the broadcast product.
    """
    if len(ops) < 2:
        raise InputError("multiply_gains: needs at least two gain terms")
    shapes = tuple(op.in_shape for op in ops)
    dtypes = tuple(op.in_dtype for op in ops)
    xp = ops[0].xp
    parts = [op @ Select(shapes, dtypes, i, xp=xp) for i, op in enumerate(ops)]
    out = parts[0]
    for p in parts[1:]:
        out = ElementwiseProduct(out, p)
    return _named(out, "(" + " * ".join(op.name for op in ops) + ")")
