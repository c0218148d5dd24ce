"""numba twins of :mod:`.kernels_numpy` (same names, signatures and results; NumPy only).

Small plain loops with explicit output buffers, ``cache=True`` and no ``fastmath`` (so NaN
guards and 1e-10 agreement survive); they also run with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

__all__ = ["phasors", "direct_sum", "zmatrix", "signmap", "zcols", "ecols", "qform", "ubvis",
           "ubform", "ubphasors"]

TWO_PI = 2.0 * np.pi


# Taylor coefficients of sin and cos on [-pi/4, pi/4] (truncation below 5e-17)
_S = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 8))
_C = tuple((-1) ** k / math.factorial(2 * k) for k in range(1, 9))
S1, S2, S3, S4, S5, S6, S7 = _S
C1, C2, C3, C4, C5, C6, C7, C8 = _C


@numba.njit(cache=True, inline="always")
def _cis(u):  # pragma: no cover - jitted
    """``exp(-2 pi i u)`` for real ``u`` (turns).

    Reduced exactly to ``u = n / 4 + f`` with ``|f| <= 1/8`` (``u - n / 4`` is exact in
    float64), then a polynomial in ``r = 2 pi f`` and a quarter-turn rotation, all with
    branch-free selects so that loops over sources vectorise. About 10x faster than numba's
    complex ``exp`` or ``cos`` + ``sin``, and more accurate (no ``2 pi u`` rounding of a
    large angle: within 3e-16 of the exact phasor of ``u``). NaN and inf give NaN.
    """
    n = np.rint(4.0 * u)
    r = (u - 0.25 * n) * TWO_PI
    r2 = r * r
    s = r + r * r2 * (S1 + r2 * (S2 + r2 * (S3 + r2 * (S4 + r2 * (S5 + r2 * (
        S6 + r2 * S7))))))
    c = 1.0 + r2 * (C1 + r2 * (C2 + r2 * (C3 + r2 * (C4 + r2 * (C5 + r2 * (
        C6 + r2 * (C7 + r2 * C8)))))))
    m = n - 4.0 * np.floor(0.25 * n)      # quarter turns, 0..3
    odd = m == 1.0 or m == 3.0
    re = s if odd else c
    im = c if odd else s
    re = -re if (m == 1.0 or m == 2.0) else re
    im = -im if m >= 2.0 else im
    return complex(re, -im)


@numba.njit(cache=True, inline="always")
def _phasor_steps(df, tau_a, sr, si):  # pragma: no cover - jitted
    """The per-channel step ``exp(-2 pi i df tau)`` of one antenna's sources, as (re, im)."""
    for s in range(tau_a.shape[0]):
        z = _cis(df * tau_a[s])
        sr[s] = z.real
        si[s] = z.imag


@numba.njit(cache=True, inline="always")
def _advance_phasors(k, freqs, tau_a, use_step, reseed, pr, pi, sr, si):  # pragma: no cover
    """One antenna's phasors at channel ``k`` in place: exact every ``reseed`` channels (or
    always without a uniform step), otherwise one step of the recurrence."""
    if (not use_step) or k % reseed == 0:
        for s in range(tau_a.shape[0]):
            z = _cis(freqs[k] * tau_a[s])
            pr[s] = z.real
            pi[s] = z.imag
    else:
        for s in range(tau_a.shape[0]):
            x, y = pr[s], pi[s]
            pr[s] = x * sr[s] - y * si[s]
            pi[s] = x * si[s] + y * sr[s]


@numba.njit(cache=True)
def _phasors(tau, freqs, df, use_step, reseed, out, pr, pi, sr, si):  # pragma: no cover
    # antenna-outer, sources innermost (contiguous writes, vectorised); the recurrence in
    # the precision of ``pr`` (that of ``out``, as the NumPy twin), seeds and steps
    # computed in float64 and rounded once
    nf, na, ns = out.shape
    for a in range(na):
        _phasor_steps(df, tau[a], sr, si)
        for k in range(nf):
            _advance_phasors(k, freqs, tau[a], use_step, reseed, pr, pi, sr, si)
            for s in range(ns):
                out[k, a, s] = complex(pr[s], pi[s])
    return out


def phasors(tau: Any, freqs: Any, df: float | None, reseed: int, out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.phasors` (same arguments)."""
    use_step = df is not None and freqs.shape[0] > 1 and reseed > 1
    rd = np.float32 if out.dtype == np.complex64 else np.float64
    ns = out.shape[2]
    _phasors(np.ascontiguousarray(tau, dtype=np.float64), np.asarray(freqs, dtype=np.float64),
             float(df or 0.0), use_step, max(int(reseed), 1), out,
             *(np.empty(ns, dtype=rd) for _ in range(4)))
    return out


@numba.njit(cache=True)
def _direct_sum(I, A, b1, b2, delay, freqs, scale, out):  # pragma: no cover - jitted
    nbl = b1.shape[0]
    ns, nf = I.shape
    acc = np.zeros(nf, dtype=np.complex128)
    for k in range(nbl):
        acc[:] = 0.0
        for s in range(ns):
            d = delay[k, s]
            for f in range(nf):
                w = I[s, f] * A[b1[k], s, f] * np.conj(A[b2[k], s, f])
                ph = TWO_PI * freqs[f] * d
                acc[f] += w * (np.cos(ph) + 1j * np.sin(ph))
        for f in range(nf):
            out[f, k] = scale * acc[f]
    return out


def direct_sum(I: Any, A: Any, b1: Any, b2: Any, delay: Any, freqs: Any, scale: float,
               out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.direct_sum` (same arguments)."""
    _direct_sum(I, A, np.asarray(b1, dtype=np.int64), np.asarray(b2, dtype=np.int64),
                np.ascontiguousarray(delay, dtype=np.float64),
                np.asarray(freqs, dtype=np.float64), float(scale), out)
    return out


@numba.njit(cache=True)
def _zmatrix(tau, freqs, df, use_step, reseed, A, bidx, I, e_out, z_out, w_out,
             has_e, has_w):  # pragma: no cover - jitted
    nf = z_out.shape[0]
    na, ns = tau.shape
    nfd = A.shape[2]
    nax = A.shape[3]
    prev = np.empty(ns, dtype=np.complex128)
    step = np.empty(ns, dtype=np.complex128)
    for a in range(na):
        b = bidx[a]
        for s in range(ns):
            step[s] = _cis(df * tau[a, s])
        for k in range(nf):
            seed = (not use_step) or k % reseed == 0
            for s in range(ns):
                if seed:
                    prev[s] = _cis(freqs[k] * tau[a, s])
                else:
                    prev[s] = prev[s] * step[s]
            if has_e:
                for s in range(ns):
                    e_out[k, a, s] = prev[s]
            for p in range(nfd):
                r = a * nfd + p
                for q in range(nax):
                    for s in range(ns):
                        z = A[k, b, p, q, s] * prev[s]
                        z_out[k, r, q * ns + s] = z
                        if has_w:
                            w_out[k, r, q * ns + s] = np.conj(z) * I[k, s]
    return z_out


def zmatrix(tau: Any, freqs: Any, df: float | None, reseed: int, A: Any, beam_index: Any,
            I: Any, e_out: Any, z_out: Any, w_out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.zmatrix` (same arguments).

    The recurrence runs in complex128 and is rounded once per element to ``z_out.dtype``.
    """
    nf = freqs.shape[0]
    use_step = df is not None and nf > 1 and reseed > 1
    has_e, has_w = e_out is not None, w_out is not None
    e = e_out if has_e else np.empty((1, 1, 1), dtype=z_out.dtype)
    w = w_out if has_w else np.empty((1, 1, 1), dtype=z_out.dtype)
    Iv = I if I is not None else np.empty((1, 1), dtype=np.float64)
    bidx = np.asarray(beam_index, dtype=np.int64)
    if A.shape[1] == 1:
        bidx = np.zeros_like(bidx)
    _zmatrix(np.ascontiguousarray(tau, dtype=np.float64),
             np.asarray(freqs, dtype=np.float64), float(df or 0.0), use_step,
             max(int(reseed), 1), A, bidx, Iv, e, z_out, w, has_e, has_w)
    return z_out


@numba.njit(cache=True)
def _signmap(w, order, npos, nneg):  # pragma: no cover - jitted
    nf, ns = w.shape
    for k in range(nf):
        ip = 0
        for s in range(ns):
            if not w[k, s] <= 0:   # positive, or NaN (which then propagates)
                order[k, ip] = s
                ip += 1
        ineg = ip
        for s in range(ns):
            if w[k, s] < 0:
                order[k, ineg] = s
                ineg += 1
        iz = ineg
        for s in range(ns):
            if w[k, s] == 0:
                order[k, iz] = s
                iz += 1
        npos[k] = ip
        nneg[k] = ineg - ip
    return order


def signmap(w: Any, order: Any, npos: Any, nneg: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.signmap` (same arguments)."""
    _signmap(np.ascontiguousarray(w), order, npos, nneg)
    return order


@numba.njit(cache=True)
def _zcols(tau, freqs, df, use_step, reseed, A, bidx, nbeam, w, order, npos, nneg, offp,
           offn, e_out, has_e, pos, neg):  # pragma: no cover - jitted
    # Antenna-outer order: one antenna's phasor recurrence (Nup values) stays in cache
    # across the channels; real and imaginary parts in separate arrays (the loops over
    # sources vectorise); beam x sqrt|w| formed once per channel for all antennas; no
    # gather when every weight of a channel is positive (the columns keep source order).
    nf = freqs.shape[0]
    na, ns = tau.shape
    nfd = A.shape[2]
    nax = A.shape[3]
    pr = np.empty(ns)
    pi = np.empty(ns)
    sr = np.empty(ns)
    si = np.empty(ns)
    gr = np.empty(ns)
    gi = np.empty(ns)
    # beam x sqrt|w| in each channel's column order (positives, then negatives)
    awr = np.empty((nf, nbeam, nfd, nax, ns))
    awi = np.empty((nf, nbeam, nfd, nax, ns))
    for k in range(nf):
        for c in range(npos[k] + nneg[k]):
            s = order[k, c]
            sq = np.sqrt(abs(np.float64(w[k, s])))
            for b in range(nbeam):
                for p in range(nfd):
                    for q in range(nax):
                        v = A[k, b, p, q, s]
                        awr[k, b, p, q, c] = v.real * sq
                        awi[k, b, p, q, c] = v.imag * sq
    for a in range(na):
        b = bidx[a]
        _phasor_steps(df, tau[a], sr, si)
        for k in range(nf):
            _advance_phasors(k, freqs, tau[a], use_step, reseed, pr, pi, sr, si)
            if has_e:
                for s in range(ns):
                    e_out[k, a, s] = complex(pr[s], pi[s])
            np_, nn_ = npos[k], nneg[k]
            if np_ == ns:          # all positive: order is the identity
                cr, ci = pr, pi
            else:
                for c in range(np_ + nn_):
                    gr[c] = pr[order[k, c]]
                    gi[c] = pi[order[k, c]]
                cr, ci = gr, gi
            for p in range(nfd):
                r = a * nfd + p
                op = offp[k] + r * nax * np_
                on = offn[k] + r * nax * nn_
                for q in range(nax):
                    ar, ai = awr[k, b, p, q], awi[k, b, p, q]
                    for c in range(np_):
                        pos[op + q * np_ + c] = complex(ar[c] * cr[c] - ai[c] * ci[c],
                                                        ar[c] * ci[c] + ai[c] * cr[c])
                    for c in range(nn_):
                        d = np_ + c
                        neg[on + q * nn_ + c] = complex(ar[d] * cr[d] - ai[d] * ci[d],
                                                        ar[d] * ci[d] + ai[d] * cr[d])
    return pos


def zcols(tau: Any, freqs: Any, df: float | None, reseed: int, A: Any, beam_index: Any,
          w: Any, order: Any, npos: Any, nneg: Any, offp: Any, offn: Any, e_out: Any,
          pos_out: Any, neg_out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.zcols` (same arguments)."""
    nf = freqs.shape[0]
    use_step = df is not None and nf > 1 and reseed > 1
    has_e = e_out is not None
    e = e_out if has_e else np.empty((1, 1, 1), dtype=pos_out.dtype)
    bidx = np.asarray(beam_index, dtype=np.int64)
    if A.shape[1] == 1:
        bidx = np.zeros_like(bidx)
    _zcols(np.ascontiguousarray(tau, dtype=np.float64), np.asarray(freqs, dtype=np.float64),
           float(df or 0.0), use_step, max(int(reseed), 1), A, bidx, A.shape[1],
           np.ascontiguousarray(w), order, npos, nneg, offp, offn, e, has_e, pos_out,
           neg_out)
    return pos_out


@numba.njit(cache=True)
def _ecols(e, w, order, npos, nneg, offp, offn, pos, neg):  # pragma: no cover - jitted
    nf, na, ns = e.shape
    sq = np.empty(ns, dtype=np.float64)
    for k in range(nf):
        np_, nn_ = npos[k], nneg[k]
        for c in range(np_ + nn_):
            sq[c] = np.sqrt(abs(w[k, order[k, c]]))
        for a in range(na):
            op = offp[k] + a * np_
            on = offn[k] + a * nn_
            for c in range(np_):
                pos[op + c] = e[k, a, order[k, c]] * sq[c]
            for c in range(nn_):
                neg[on + c] = e[k, a, order[k, np_ + c]] * sq[np_ + c]
    return pos


def ecols(e: Any, w: Any, order: Any, npos: Any, nneg: Any, offp: Any, offn: Any,
          pos_out: Any, neg_out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.ecols` (same arguments)."""
    _ecols(e, np.ascontiguousarray(w), order, npos, nneg, offp, offn, pos_out, neg_out)
    return pos_out


@numba.njit(cache=True)
def _qform(e, t, out):  # pragma: no cover - jitted
    nf, na, ns = e.shape
    for k in range(nf):
        for s in range(ns):
            out[k, s] = 0.0
        for a in range(na):
            for s in range(ns):
                x = e[k, a, s]
                y = t[k, a, s]
                out[k, s] += 2.0 * (x.real * y.real + x.imag * y.imag)
    return out


def qform(e: Any, t: Any, out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.qform` (same arguments)."""
    _qform(e, t, out)
    return out


_UB_SB = 512   # sources per block of the unique-baseline kernels (phasors stay in L2)
_UB_L = 8      # independent partial sums (vectorisable without reassociation)


@numba.njit(cache=True)
def _ub_phasor_block(tau, freqs, df, use_step, reseed, s0, n, k, pr, pi, sr, si):
    # pragma: no cover - jitted
    na = tau.shape[0]
    if k == 0:
        for a in range(na):
            _phasor_steps(df, tau[a, s0:s0 + n], sr[a], si[a])
    for a in range(na):
        _advance_phasors(k, freqs, tau[a, s0:s0 + n], use_step, reseed, pr[a], pi[a], sr[a],
                         si[a])


@numba.njit(cache=True)
def _ubvis(tau, freqs, df, use_step, reseed, w, ui, uj, out):  # pragma: no cover - jitted
    nf = freqs.shape[0]
    na, ns = tau.shape
    nu = ui.shape[0]
    work = np.empty((4, na, _UB_SB))        # phasors and steps (re, im) of one block
    pr, pi, sr, si = work[0], work[1], work[2], work[3]
    accr = np.empty(_UB_L)
    acci = np.empty(_UB_L)
    for s0 in range(0, ns, _UB_SB):
        n = min(_UB_SB, ns - s0)
        nl = (n // _UB_L) * _UB_L
        for k in range(nf):
            _ub_phasor_block(tau, freqs, df, use_step, reseed, s0, n, k, pr, pi, sr, si)
            for u in range(nu):
                i, j = ui[u], uj[u]
                for m in range(_UB_L):
                    accr[m] = 0.0
                    acci[m] = 0.0
                for b in range(0, nl, _UB_L):
                    for m in range(_UB_L):
                        s = b + m
                        ww = w[k, s0 + s]
                        # e_i conj(e_j) = exp(+2 pi i nu (x_j - x_i) . s / c)
                        accr[m] += ww * (pr[i, s] * pr[j, s] + pi[i, s] * pi[j, s])
                        acci[m] += ww * (pi[i, s] * pr[j, s] - pr[i, s] * pi[j, s])
                re = 0.0
                im = 0.0
                for m in range(_UB_L):
                    re += accr[m]
                    im += acci[m]
                for s in range(nl, n):
                    ww = w[k, s0 + s]
                    re += ww * (pr[i, s] * pr[j, s] + pi[i, s] * pi[j, s])
                    im += ww * (pi[i, s] * pr[j, s] - pr[i, s] * pi[j, s])
                out[k, u] += complex(re, im)
    return out


def _ub_args(tau: Any, freqs: Any, df: float | None, reseed: int, ui: Any, uj: Any
             ) -> tuple:
    """The unique-baseline kernels' common arguments, typed for numba: ``(tau, freqs, df,
    use_step, reseed, ui, uj)``."""
    use_step = df is not None and freqs.shape[0] > 1 and reseed > 1
    return (np.ascontiguousarray(tau, dtype=np.float64), np.asarray(freqs, dtype=np.float64),
            float(df or 0.0), use_step, max(int(reseed), 1), np.asarray(ui, dtype=np.int64),
            np.asarray(uj, dtype=np.int64))


def ubvis(tau: Any, freqs: Any, df: float | None, reseed: int, w: Any, ui: Any, uj: Any,
          out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.ubvis` (same arguments)."""
    t, f, d, step, rs, i, j = _ub_args(tau, freqs, df, reseed, ui, uj)
    _ubvis(t, f, d, step, rs, np.ascontiguousarray(w, dtype=np.float64), i, j, out)
    return out


@numba.njit(cache=True)
def _ubform(tau, freqs, df, use_step, reseed, D, ui, uj, out):  # pragma: no cover - jitted
    nf = freqs.shape[0]
    na, ns = tau.shape
    nu = ui.shape[0]
    work = np.empty((4, na, _UB_SB))        # phasors and steps (re, im) of one block
    pr, pi, sr, si = work[0], work[1], work[2], work[3]
    q = np.empty(_UB_SB)
    for s0 in range(0, ns, _UB_SB):
        n = min(_UB_SB, ns - s0)
        for k in range(nf):
            _ub_phasor_block(tau, freqs, df, use_step, reseed, s0, n, k, pr, pi, sr, si)
            for s in range(n):
                q[s] = 0.0
            for u in range(nu):
                i, j = ui[u], uj[u]
                dr, di = 2.0 * D[k, u].real, 2.0 * D[k, u].imag
                for s in range(n):   # 2 Re(D conj(P)), P = e_i conj(e_j)
                    q[s] += dr * (pr[i, s] * pr[j, s] + pi[i, s] * pi[j, s]) + di * (
                        pi[i, s] * pr[j, s] - pr[i, s] * pi[j, s])
            for s in range(n):
                out[k, s0 + s] = q[s]
    return out


def ubform(tau: Any, freqs: Any, df: float | None, reseed: int, D: Any, ui: Any, uj: Any,
           out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.ubform` (same arguments)."""
    t, f, d, step, rs, i, j = _ub_args(tau, freqs, df, reseed, ui, uj)
    _ubform(t, f, d, step, rs, np.ascontiguousarray(D, dtype=np.complex128), i, j, out)
    return out


@numba.njit(cache=True)
def _ubphasors(tau, freqs, df, use_step, reseed, ui, uj, out):  # pragma: no cover - jitted
    nf = freqs.shape[0]
    na, ns = tau.shape
    nu = ui.shape[0]
    work = np.empty((4, na, _UB_SB))        # phasors and steps (re, im) of one block
    pr, pi, sr, si = work[0], work[1], work[2], work[3]
    for s0 in range(0, ns, _UB_SB):
        n = min(_UB_SB, ns - s0)
        for k in range(nf):
            _ub_phasor_block(tau, freqs, df, use_step, reseed, s0, n, k, pr, pi, sr, si)
            for u in range(nu):
                i, j = ui[u], uj[u]
                for s in range(n):
                    out[k, u, s0 + s] = pr[i, s] * pr[j, s] + pi[i, s] * pi[j, s]
                    out[k, nu + u, s0 + s] = pi[i, s] * pr[j, s] - pr[i, s] * pi[j, s]
    return out


def ubphasors(tau: Any, freqs: Any, df: float | None, reseed: int, ui: Any, uj: Any,
              out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.ubphasors` (same arguments)."""
    _ubphasors(*_ub_args(tau, freqs, df, reseed, ui, uj), out)
    return out
