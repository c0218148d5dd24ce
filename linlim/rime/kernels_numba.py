"""numba twins of :mod:`.kernels_numpy` (same names, signatures and results; NumPy only).

Small plain loops with explicit output buffers, ``cache=True`` and no ``fastmath`` (so NaN
guards and 1e-10 agreement survive); they also run with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["phasors", "direct_sum", "zmatrix", "signmap", "zcols", "ecols", "qform"]

TWO_PI = 2.0 * np.pi


@numba.njit(cache=True, inline="always")
def _cis(x):  # pragma: no cover - jitted
    """``exp(i x)`` for real ``x`` by cosine and sine (about 2.5x numba's complex exp)."""
    return complex(np.cos(x), np.sin(x))


@numba.njit(cache=True)
def _phasors(tau, freqs, df, use_step, reseed, out):  # pragma: no cover - jitted
    nf, na, ns = out.shape
    for a in range(na):
        for s in range(ns):
            t = tau[a, s]
            step = _cis(-TWO_PI * df * t)
            prev = 0j
            for k in range(nf):
                if (not use_step) or k % reseed == 0:
                    prev = _cis(-TWO_PI * (freqs[k] * t))
                else:
                    prev = prev * step
                out[k, a, s] = prev
    return out


@numba.njit(cache=True)
def _phasors_c64(tau, freqs, df, use_step, reseed, out):  # pragma: no cover - jitted
    nf, na, ns = out.shape
    for a in range(na):
        for s in range(ns):
            t = tau[a, s]
            step = np.complex64(_cis(-TWO_PI * df * t))
            prev = np.complex64(0j)
            for k in range(nf):
                if (not use_step) or k % reseed == 0:
                    prev = np.complex64(_cis(-TWO_PI * (freqs[k] * t)))
                else:
                    prev = prev * step
                out[k, a, s] = prev
    return out


def phasors(tau: Any, freqs: Any, df: float | None, reseed: int, out: Any) -> Any:
    """numba twin of :func:`linlim.rime.kernels_numpy.phasors` (same arguments)."""
    use_step = df is not None and freqs.shape[0] > 1 and reseed > 1
    fn = _phasors_c64 if out.dtype == np.complex64 else _phasors
    fn(np.ascontiguousarray(tau, dtype=np.float64), np.asarray(freqs, dtype=np.float64),
       float(df or 0.0), use_step, max(int(reseed), 1), out)
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
            step[s] = _cis(-TWO_PI * df * tau[a, s])
        for k in range(nf):
            seed = (not use_step) or k % reseed == 0
            for s in range(ns):
                if seed:
                    prev[s] = _cis(-TWO_PI * (freqs[k] * tau[a, s]))
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
    # across the channels, and beam x sqrt|w| is formed once per channel for all antennas.
    nf = freqs.shape[0]
    na, ns = tau.shape
    nfd = A.shape[2]
    nax = A.shape[3]
    prev = np.empty(ns, dtype=np.complex128)
    step = np.empty(ns, dtype=np.complex128)
    pc = np.empty(ns, dtype=np.complex128)
    # beam x sqrt|w| in each channel's column order (positives, then negatives)
    aw = np.empty((nf, nbeam, nfd, nax, ns), dtype=A.dtype)
    for k in range(nf):
        for c in range(npos[k] + nneg[k]):
            s = order[k, c]
            sq = np.sqrt(abs(w[k, s]))
            for b in range(nbeam):
                for p in range(nfd):
                    for q in range(nax):
                        aw[k, b, p, q, c] = A[k, b, p, q, s] * sq
    for a in range(na):
        b = bidx[a]
        for s in range(ns):
            step[s] = _cis(-TWO_PI * df * tau[a, s])
        for k in range(nf):
            if (not use_step) or k % reseed == 0:
                for s in range(ns):
                    prev[s] = _cis(-TWO_PI * (freqs[k] * tau[a, s]))
            else:
                for s in range(ns):
                    prev[s] = prev[s] * step[s]
            if has_e:
                for s in range(ns):
                    e_out[k, a, s] = prev[s]
            np_, nn_ = npos[k], nneg[k]
            for c in range(np_ + nn_):
                pc[c] = prev[order[k, c]]
            for p in range(nfd):
                r = a * nfd + p
                op = offp[k] + r * nax * np_
                on = offn[k] + r * nax * nn_
                for q in range(nax):
                    for c in range(np_):
                        pos[op + q * np_ + c] = aw[k, b, p, q, c] * pc[c]
                    for c in range(nn_):
                        neg[on + q * nn_ + c] = aw[k, b, p, q, np_ + c] * pc[np_ + c]
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
