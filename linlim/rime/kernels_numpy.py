"""Reference RIME kernels written against an array module ``xp`` (NumPy or CuPy).

Each kernel has a twin of the same name and signature in :mod:`.kernels_numba` (NumPy
only); the tests check every twin against these on edge cases (a source at the horizon,
zero flux, autocorrelations, one channel). The operator picks the twin by backend.

Kernels
-------
phasors(tau, freqs, df, reseed, out)
    ``out[f, a, s] = exp(-2 pi i freqs[f] tau[a, s])``, by recurrence in frequency when
    ``df`` (the uniform channel width) is given.
direct_sum(I, A, b1, b2, delay, freqs, scale, out)
    ``out[f, k] = scale * sum_s I[s, f] A[b1[k], s, f] conj(A[b2[k], s, f])
    exp(+2 pi i freqs[f] delay[k, s])``, one baseline at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import xp_of

__all__ = ["phasors", "direct_sum"]

TWO_PI = 2.0 * np.pi


def phasors(tau: Any, freqs: Any, df: float | None, reseed: int, out: Any) -> Any:
    """Per-antenna phasors ``exp(-2 pi i nu tau)``, optionally by recurrence in frequency.

    Parameters
    ----------
    tau : array, shape (Nant, Nsrc), float64
        Geometric delays ``x_a . s_hat / c`` in seconds.
    freqs : array, shape (Nfreq,), float64
        Frequencies in Hz.
    df : float or None
        Uniform channel width in Hz (``freqs[k] = freqs[0] + k df``); ``None`` computes
        every channel with its own complex exponential.
    reseed : int
        With ``df``, compute channel ``k`` directly when ``k % reseed == 0`` and as
        ``out[k - 1] * exp(-2 pi i df tau)`` otherwise (bounds the recurrence error to
        about ``reseed`` roundings).
    out : array, shape (Nfreq, Nant, Nsrc), complex64 or complex128
        Output buffer (returned).

    Notes
    -----
    Seeds and steps are computed from float64 phases and rounded once to ``out.dtype``.
    """
    xp = xp_of(out)
    nf = int(freqs.shape[0])
    step = None
    if df is not None and nf > 1 and reseed > 1:
        step = xp.exp((-1j * TWO_PI * float(df)) * tau).astype(out.dtype, copy=False)
    for k in range(nf):
        if step is None or k % reseed == 0:
            out[k] = xp.exp((-1j * TWO_PI) * (freqs[k] * tau))
        else:
            xp.multiply(out[k - 1], step, out=out[k])
    return out


def direct_sum(I: Any, A: Any, b1: Any, b2: Any, delay: Any, freqs: Any, scale: float,
               out: Any) -> Any:
    """Visibilities of selected baselines by a direct sum over sources (no factorisation).

    Parameters
    ----------
    I : array, shape (Nsrc, Nfreq), float
        Source intensities in Jy.
    A : array, shape (Nbeam, Nsrc, Nfreq), float or complex
        Unpolarised E-field beam of each distinct beam.
    b1, b2 : array, shape (Nbl,), int
        Beam index of the first and second antenna of each baseline.
    delay : array, shape (Nbl, Nsrc), float64
        ``(x_j - x_i) . s_hat / c`` in seconds.
    freqs : array, shape (Nfreq,), float64
        Frequencies in Hz.
    scale : float
        Overall factor (0.5 for one linear feed of an unpolarised sky).
    out : array, shape (Nfreq, Nbl), complex
        Output buffer (overwritten and returned).
    """
    xp = xp_of(out)
    for k in range(int(b1.shape[0])):
        w = I * A[int(b1[k])] * A[int(b2[k])].conj()  # (Nsrc, Nfreq)
        ph = xp.exp((1j * TWO_PI) * (delay[k][:, None] * freqs[None, :]))
        out[:, k] = scale * (w * ph).sum(axis=0)
    return out


def zmatrix(tau: Any, freqs: Any, df: float | None, reseed: int, A: Any, beam_index: Any,
            I: Any, e_out: Any, z_out: Any, w_out: Any) -> Any:
    """Per-antenna factors ``Z`` (and ``conj(Z) I``) of one (time, channel block).

    Parameters
    ----------
    tau : array, shape (Nant, Nup), float64
        Delays ``x_a . s_hat / c`` in seconds.
    freqs : array, shape (Nf,), float64
        Channel frequencies (Hz).
    df, reseed
        As in :func:`phasors`.
    A : array, shape (Nf, Nbeam, Nfeed, Nax, Nup), float or complex
        Beam of each distinct beam at this time.
    beam_index : array, shape (Nant,), int
        Beam of each antenna.
    I : array, shape (Nf, Nup), float, or None
        Intensities (needed only for ``w_out``).
    e_out : array, shape (Nf, Nant, Nup), complex, or None
        Receives the phasors ``exp(-2 pi i nu tau)`` when given.
    z_out : array, shape (Nf, Nant Nfeed, Nax Nup), complex
        Receives ``Z[f, (a, p), (k, s)] = A[f, beam(a), p, k, s] e[f, a, s]``.
    w_out : array like ``z_out``, or None
        Receives ``conj(Z) I`` when given.

    Returns
    -------
    z_out
    """
    xp = xp_of(z_out)
    nf, na, nup = int(freqs.shape[0]), int(tau.shape[0]), int(tau.shape[1])
    nfd, nax = int(A.shape[2]), int(A.shape[3])
    e = e_out if e_out is not None else xp.empty((nf, na, nup), dtype=z_out.dtype)
    phasors(tau, freqs, df, reseed, e)
    Aant = A if A.shape[1] == 1 else xp.take(A, beam_index, axis=1)
    z5 = z_out.reshape(nf, na, nfd, nax, nup)
    xp.multiply(e[:, :, None, None, :], Aant, out=z5)
    if w_out is not None:
        xp.multiply(xp.conj(z5), I[:, None, None, None, :],
                    out=w_out.reshape(nf, na, nfd, nax, nup))
    return z_out
