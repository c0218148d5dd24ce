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
zmatrix(...)
    The per-antenna factors ``Z`` (and ``conj(Z) I``) of one (time, channel block).
signmap, zcols, ecols
    ``Z sqrt|w|`` split by the sign of ``w`` into positive and negative column blocks,
    for ``Z diag(w) Z^H`` by Hermitian rank-k updates (ZHERK).
qform(e, t, out)
    ``2 Re sum_a conj(e) t`` (the diagonal of a Hermitian form, for the gradients).
ubvis, ubform, ubphasors
    Products once per unique baseline vector (one feed, one beam, redundant arrays): the
    weighted sums ``sum_s w e_i conj(e_j)``, their adjoint, and the cached phasors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import xp_of

__all__ = ["phasors", "direct_sum", "zmatrix", "signmap", "zcols", "ecols", "qform", "ubvis",
           "ubform", "ubphasors"]

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


def signmap(w: Any, order: Any, npos: Any, nneg: Any) -> Any:
    """Column order of signed weights, per channel.

    Parameters
    ----------
    w : array, shape (Nf, Nsrc), float
        Real column weights (intensities, or a Jacobian's weights).
    order : array, shape (Nf, Nsrc), int64
        Receives, per channel, the sources with ``w > 0`` or NaN (in index order), then
        those with ``w < 0``, then those with ``w == 0`` (which contribute nothing).
    npos, nneg : array, shape (Nf,), int64
        Receive the number of positive and of negative weights per channel.

    Returns
    -------
    order
    """
    xp = xp_of(w)
    p, n = ~(w <= 0), w < 0      # NaN counts as positive, so that it propagates
    key = xp.where(p, 0, xp.where(n, 1, 2))
    order[...] = xp.argsort(key, axis=1, kind="stable")
    npos[...] = p.sum(axis=1)
    nneg[...] = n.sum(axis=1)
    return order


def zcols(tau: Any, freqs: Any, df: float | None, reseed: int, A: Any, beam_index: Any,
          w: Any, order: Any, npos: Any, nneg: Any, offp: Any, offn: Any, e_out: Any,
          pos_out: Any, neg_out: Any) -> Any:
    """``Z sqrt|w|`` split by the sign of ``w``, for a Hermitian rank-k product.

    With ``Z`` as in :func:`zmatrix` (rows ``R = Nant Nfeed``, columns ``(k, s)``), channel
    ``f`` writes ``U+ = Z[:, w > 0] sqrt(w)`` as an (R, Nax n+) C-ordered block at
    ``pos_out[offp[f]:]`` and ``U- = Z[:, w < 0] sqrt(-w)`` at ``neg_out[offn[f]:]``
    (columns ``k n + c`` in the channel's ``order``), so that ``Z diag(w) Z^H = U+ U+^H - U- U-^H``.

    Parameters
    ----------
    tau, freqs, df, reseed, A, beam_index
        As in :func:`zmatrix`.
    w : array, shape (Nf, Nup), float
        Column weights.
    order, npos, nneg : arrays from :func:`signmap`
    offp, offn : array, shape (Nf,), int64
        Offsets of each channel's blocks in ``pos_out`` and ``neg_out``.
    e_out : array, shape (Nf, Nant, Nup), complex, or None
        Receives the phasors when given.
    pos_out, neg_out : array, 1-d, complex
        Flat outputs.

    Returns
    -------
    pos_out
    """
    xp = xp_of(pos_out)
    nf, na, nup = int(freqs.shape[0]), int(tau.shape[0]), int(tau.shape[1])
    nfd, nax = int(A.shape[2]), int(A.shape[3])
    R = na * nfd
    z = xp.empty((nf, R, nax * nup), dtype=pos_out.dtype)
    zmatrix(tau, freqs, df, reseed, A, beam_index, None, e_out, z, None)
    _split_cols(z.reshape(nf, R, nax, nup), w, npos, offp, offn, pos_out, neg_out)
    return pos_out


def ecols(e: Any, w: Any, order: Any, npos: Any, nneg: Any, offp: Any, offn: Any,
          pos_out: Any, neg_out: Any) -> Any:
    """:func:`zcols` from given phasors ``e`` (Nf, Nant, Nup) and no beam (one feed)."""
    nf, na, nup = e.shape
    _split_cols(e.reshape(nf, na, 1, nup), w, npos, offp, offn, pos_out, neg_out)
    return pos_out


def _split_cols(z4: Any, w: Any, npos: Any, offp: Any, offn: Any, pos_out: Any,
                neg_out: Any) -> None:
    xp = xp_of(pos_out)
    nf, R, nax, _ = z4.shape
    for f in range(nf):
        for sel, off, buf, sgn in ((~(w[f] <= 0), offp, pos_out, 1.0), (w[f] < 0, offn, neg_out,
                                                                     -1.0)):
            m = int(sel.sum())
            if m == 0:
                continue
            blk = z4[f][:, :, sel] * xp.sqrt(sgn * w[f][sel])
            o = int(off[f])
            buf[o:o + R * nax * m] = blk.reshape(-1).astype(buf.dtype, copy=False)


def qform(e: Any, t: Any, out: Any) -> Any:
    """``out[f, s] = 2 Re sum_a conj(e[f, a, s]) t[f, a, s]`` (a Hermitian form's diagonal
    from ``t = D e`` with ``D`` upper triangular). Shapes (Nf, Nant, Nup) -> (Nf, Nup)."""
    xp = xp_of(out)
    out[...] = 2.0 * (xp.conj(e) * t).real.sum(axis=1)
    return out


def ubvis(tau: Any, freqs: Any, df: float | None, reseed: int, w: Any, ui: Any, uj: Any,
          out: Any) -> Any:
    """Weighted sums over sources on unique baselines (one feed, one beam).

    Parameters
    ----------
    tau : array, shape (Nant, Nsrc), float64
        Delays ``x_a . s_hat / c`` in seconds.
    freqs, df, reseed
        As in :func:`phasors`.
    w : array, shape (Nf, Nsrc), float
        Real source weights (``|A|^2 I``, or a Jacobian's weights).
    ui, uj : array, shape (Nu,), int
        Antennas of one representative baseline per unique baseline class, oriented so
        that ``x_j - x_i`` is the class vector.
    out : array, shape (Nf, Nu), complex128
        Accumulates ``sum_s w[f, s] e_i conj(e_j)``, i.e.
        ``sum_s w exp(+2 pi i nu (x_j - x_i) . s_hat / c)`` (returned).
    """
    xp = xp_of(out)
    e = phasors(tau, freqs, df, reseed, xp.empty((int(freqs.shape[0]),) + tuple(tau.shape),
                                                   dtype=np.complex128))
    P = e[:, ui, :] * xp.conj(e[:, uj, :])                     # (Nf, Nu, Nsrc)
    out += xp.einsum("fus,fs->fu", P, w.astype(np.float64))
    return out


def ubform(tau: Any, freqs: Any, df: float | None, reseed: int, D: Any, ui: Any, uj: Any,
           out: Any) -> Any:
    """``out[f, s] = 2 Re sum_u D[f, u] conj(e_i conj(e_j))`` (the adjoint of :func:`ubvis`
    under ``Re <., .>``); ``D`` (Nf, Nu) complex, ``out`` (Nf, Nsrc) float (returned)."""
    xp = xp_of(out)
    e = phasors(tau, freqs, df, reseed, xp.empty((int(freqs.shape[0]),) + tuple(tau.shape),
                                                   dtype=np.complex128))
    P = e[:, ui, :] * xp.conj(e[:, uj, :])
    out[...] = 2.0 * xp.einsum("fu,fus->fs", D, xp.conj(P)).real
    return out


def ubphasors(tau: Any, freqs: Any, df: float | None, reseed: int, ui: Any, uj: Any,
              out: Any) -> Any:
    """Unique-baseline phasors ``P = e_i conj(e_j)`` as real planes: ``out[f, u, s] =
    Re P``, ``out[f, Nu + u, s] = Im P``; ``out`` (Nf, 2 Nu, Nsrc) float64 (returned), so
    that :func:`ubvis` is one real matrix-vector product per channel."""
    xp = xp_of(out)
    e = phasors(tau, freqs, df, reseed, xp.empty((int(freqs.shape[0]),) + tuple(tau.shape),
                                                   dtype=np.complex128))
    P = e[:, ui, :] * xp.conj(e[:, uj, :])
    nu = int(P.shape[1])
    out[:, :nu] = P.real
    out[:, nu:] = P.imag
    return out
