"""The visibility operator (RIME) and its intensity-only linear form (beams fixed by
:class:`~linlim.operators.FixInput`).

Convention (DESIGN.md, the one matvis, fftvis and pyuvsim share)::

    V_ij(nu, t) = 1/2 sum_s A_i(s) conj(A_j(s)) I_s(nu) exp(+2 pi i nu (x_j - x_i) . s_hat(t) / c)

over the sources above the horizon (``s_hat . up > 0``), the factor 1/2 splitting the
unpolarised sky evenly between two linear feeds (XX = I |A|^2 / 2 for identical beams).
With two feeds, ``A`` is a Jones matrix ``J[p, k]`` (feed ``p``, sky axis ``k``) and
``V_pq,ij = 1/2 sum_s sum_k J_i[p, k] conj(J_j[q, k]) I_s exp(...)``.

Both operators evaluate it through the per-antenna factorisation ``V = pf Z diag(I) Z^H``
(one batched GEMM per time and channel block, :mod:`.engine`), or through a direct sum
over sources per baseline (numba on the CPU) when few baselines are wanted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_xp, scatter_add
from ..errors import InputError
from ..operators.base import LinearOperator, Operator
from ..validation import check_rime_inputs
from .chunking import available_memory
from .engine import C_LIGHT, TWO_PI, RimeEngine

__all__ = ["RIME", "RIMEIntensity"]

DEFAULT_CACHE_FRACTION = 0.25


def _cache_budget(xp: Any, cache_budget: int | None) -> int:
    return int(DEFAULT_CACHE_FRACTION * available_memory(xp)) if cache_budget is None \
        else int(cache_budget)


def _cache_bytes(eng: RimeEngine, with_phasors: bool, with_z: bool = True) -> int:
    per_src_chan = (eng.R * eng.nax if with_z else 0) + (eng.na if with_phasors else 0)
    return int(sum(eng.nup) * eng.nf * per_src_chan * eng.cdtype.itemsize)


class _RimeBase:
    """Shared set-up of :class:`RIME` and :class:`RIMEIntensity`."""

    def _setup(self, enu, antpos, freqs, ant1, ant2, beam_index, nbeam, polarized, dtype,
               method, memory_budget, reseed, xp, nufft_eps=None,
               nufft_ok=True, full_units=True, ub="auto") -> RimeEngine:
        check_rime_inputs(enu, antpos, freqs, ant1, polarized=polarized, dtype=dtype, xp=xp)
        eng = RimeEngine(enu, antpos, freqs, ant1, ant2, beam_index=beam_index, nbeam=nbeam,
                         nfeed=2 if polarized else 1, dtype=dtype, method=method,
                         memory_budget=memory_budget, reseed=reseed, nufft_eps=nufft_eps,
                         nufft_ok=nufft_ok, full_units=full_units, ub=ub, xp=xp)
        self.engine = eng
        self.polarized = bool(polarized)
        if self.polarized:
            self._a_shape = (eng.nbeam, 2, 2, eng.nt, eng.ns, eng.nf)
            self._v_shape = (2, 2, eng.nt, eng.nf, eng.nbl)
        else:
            self._a_shape = (eng.nbeam, eng.nt, eng.ns, eng.nf)
            self._v_shape = (eng.nt, eng.nf, eng.nbl)
        self._a6_shape = (eng.nbeam, eng.nfeed, eng.nax, eng.nt, eng.ns, eng.nf)
        return eng

    def _units(self, I, A6, pos, cache=None, store=None, want_e=True, want_w=False):
        """Yield ``(t, fsl, e, Z, It, W)`` per (time, channel block), from ``cache`` when
        present (a lean entry ``(e, None)`` rebuilds ``Z`` from the cached phasors),
        storing computed ``(e, Z)`` into ``store`` when given; ``W = conj(Z) I`` only with
        ``want_w`` (``None`` otherwise), ``e`` may be ``None`` without ``want_e``."""
        eng = self.engine
        for t in range(eng.nt):
            It = eng.intens_t(I, t)
            tau = Ab = None
            for ci, fsl in enumerate(eng.chunks):
                hit = cache.get((t, ci)) if cache is not None else None
                if (hit is None or hit[1] is None) and tau is None:
                    tau, Ab = eng.tau(t, pos), eng.beam_t(A6, t)
                if hit is None:
                    e, Z, W = eng.zw(tau, fsl, Ab, It[fsl], want_e=want_e,
                                     want_w=want_w, fresh=store is not None)
                    if store is not None:
                        store[(t, ci)] = (e, Z)
                else:
                    e, Z = hit
                    if Z is None:
                        nfc = fsl.stop - fsl.start
                        Z = eng.zmat(e, Ab[fsl], out=eng.buffer(
                            "Z", (nfc, eng.R, eng.nax * e.shape[2]), eng.cdtype))
                    W = self.xp.conj(eng.scale_cols(Z, It[fsl])) if want_w else None
                yield t, fsl, e, Z, It[fsl], W

    def _herk_forward(self, I, A6, pos, store=None, keep_z=False) -> Any:
        """Forward by the fused ``Z sqrt|I|`` kernel and Hermitian rank-k updates (only
        ``i <= j`` of ``V`` computed); ``store`` receives ``(e, Z if keep_z else None)``."""
        eng, xp = self.engine, self.xp
        V = xp.empty((eng.nfeed, eng.nfeed, eng.nt, eng.nf, eng.nbl), dtype=eng.cdtype)
        if eng.ub_products:   # unique baselines: w = |A|^2 I, no cache needed
            for t in range(eng.nt):
                At = eng.beam_t(A6, t)[:, 0, 0, 0]
                eng.ub_vis((At.real ** 2 + At.imag ** 2) * eng.intens_t(I, t), t, pos,
                           V[0, 0, t])
            return V.reshape(self._v_shape)
        for t in range(eng.nt):
            It = eng.intens_t(I, t)
            tau, Ab = eng.tau(t, pos), eng.beam_t(A6, t)
            for ci, fsl in enumerate(eng.chunks):
                nfc = fsl.stop - fsl.start
                e = (xp.empty((nfc, eng.na, eng.nup[t]), dtype=eng.cdtype)
                     if store is not None else None)
                Itf = It[fsl]
                units = (eng.herk_units(tau[:, sb], fsl, Ab[..., sb], Itf[:, sb],
                                        e_out=None if e is None else e[:, :, sb])
                         for sb in eng.source_blocks(eng.nup[t]))
                eng.herk_sum(units, nfc, eng.pf, V[:, :, t, fsl])
                if store is not None:
                    store[(t, ci)] = (e, eng.zmat(e, Ab[fsl]) if keep_z else None)
        return V.reshape(self._v_shape)

    def _nufft_vis(self, weights) -> Any:
        """Visibilities ``pf sum_s w_s exp(...)`` by NUFFT with ``weights(t)`` (Nfreq, Nup)."""
        eng, xp = self.engine, self.xp
        V = np.empty((eng.nt, eng.nf, eng.nbl), dtype=np.complex128)
        for t in range(eng.nt):
            eng.nufft(weights(t), t, V[t])
        return xp.asarray(V.astype(eng.cdtype, copy=False)).reshape(self._v_shape)

    def _nufft_weights(self, I, A6, dI=None, dA6=None):
        """``w(t)``: ``|A|^2 I`` (forward), or the JVP's ``2 I Re(conj(A) dA) + |A|^2 dI``."""
        eng = self.engine

        def w(t):
            It, At = eng.intens_t(I, t), eng.beam_t(A6, t)[:, 0, 0, 0]
            a2 = At.real ** 2 + At.imag ** 2
            if dI is None:
                return a2 * It
            dAt = eng.beam_t(dA6, t)[:, 0, 0, 0]
            return 2.0 * It * (At.conj() * dAt).real + a2 * eng.intens_t(dI, t)
        return w

    def _nufft_vjp(self, I, A6, dy, want_A=True) -> tuple:
        """``J^H dy`` by the adjoint NUFFT: ``q_s = 2 Re sum_b pf dV_b exp(-...)``, then
        ``dI = |A|^2 q / 2`` and ``dA = I A q`` (one feed, one beam)."""
        eng, xp = self.engine, self.xp
        dV = dy.reshape(eng.nt, eng.nf, eng.nbl)
        dI = xp.zeros((eng.ns, eng.nf), dtype=eng.rdtype)
        dA = xp.zeros(self._a6_shape, dtype=self._grad_a_dtype()) if want_A else None
        for t in range(eng.nt):
            idx = eng.up_idx[t]
            q = xp.asarray(eng.nufft_form(eng.pf * dV[t], t))
            At = eng.beam_t(A6, t)[:, 0, 0, 0]
            dI[idx] += (0.5 * (At.real ** 2 + At.imag ** 2) * q).T
            if want_A:
                dA[0, 0, 0, t, idx] = (eng.intens_t(I, t) * At * q).T
        return dI, dA

    def _lean_phasors(self, t, ci, fsl, sb, pos, cache, tau):
        """Phasors of (t, channel block, source block ``sb``) from the cache, else computed
        into a reused buffer (``tau`` per time)."""
        eng = self.engine
        if cache:
            return cache[(t, ci)][0][:, :, sb], tau
        if tau is None:
            tau = eng.tau(t, pos)
        nfc = fsl.stop - fsl.start
        ts = tau[:, sb]
        return eng.phasors(ts, fsl, out=eng.buffer("e", (nfc, eng.na, ts.shape[1]),
                                                   eng.cdtype)), tau

    def _lean_jvp(self, I, A6, pos, dI, dA6, cache=None) -> Any:
        """``J dx`` with one feed and one beam: ``dV = pf E diag(w) E^H`` with
        ``w = 2 I Re(conj(A) dA) + |A|^2 dI`` (one Hermitian rank-k update per channel)."""
        eng, xp = self.engine, self.xp
        dV = xp.empty((1, 1, eng.nt, eng.nf, eng.nbl), dtype=eng.cdtype)
        for t in range(eng.nt):
            It, dIt = eng.intens_t(I, t), eng.intens_t(dI, t)
            At, dAt = eng.beam_t(A6, t)[:, 0, 0, 0], eng.beam_t(dA6, t)[:, 0, 0, 0]
            w_all = 2.0 * It * (xp.conj(At) * dAt).real + (xp.abs(At) ** 2) * dIt
            if eng.ub_products:
                if cache:
                    eng.ub_vis_cached(cache[t], w_all, dV[0, 0, t])
                else:
                    eng.ub_vis(w_all, t, pos, dV[0, 0, t])
                continue
            tau = [None]
            ones = None
            if not cache:   # no cache: the forward's fused kernel, weights w and A = 1
                tau[0] = eng.tau(t, pos)
                ones = xp.ones((eng.nf, 1, 1, 1, eng.nup[t]), dtype=eng.rdtype)
            for ci, fsl in enumerate(eng.chunks):
                w = xp.ascontiguousarray(w_all[fsl], dtype=eng.rdtype)

                def units(t=t, ci=ci, fsl=fsl, w=w, tau=tau, ones=ones):
                    for sb in eng.source_blocks(eng.nup[t]):
                        if not cache:
                            yield eng.herk_units(tau[0][:, sb], fsl, ones[..., sb], w[:, sb])
                            continue
                        e, tau[0] = self._lean_phasors(t, ci, fsl, sb, pos, cache, tau[0])
                        yield eng.herk_units_e(e, w[:, sb])
                eng.herk_sum(units(), fsl.stop - fsl.start, eng.pf, dV[:, :, t, fsl])
        return dV.reshape(self._v_shape)

    def _lean_vjp(self, I, A6, pos, dy, want_A=True, cache=None) -> tuple:
        """``J^H dy`` with one feed and one beam: with ``q_s = e_s^H H e_s`` (from one
        triangular product per channel), ``dI = |A|^2 q / 2`` and ``dA = I A q``."""
        eng, xp = self.engine, self.xp
        dV = dy.reshape(1, 1, eng.nt, eng.nf, eng.nbl)
        dI = xp.zeros((eng.ns, eng.nf), dtype=eng.rdtype)
        dA = xp.zeros(self._a6_shape, dtype=self._grad_a_dtype()) if want_A else None
        for t in range(eng.nt):
            idx = eng.up_idx[t]
            It = eng.intens_t(I, t)
            At = eng.beam_t(A6, t)[:, 0, 0, 0]
            if eng.ub_products:
                q = (eng.ub_form_cached(cache[t], eng.pf * dV[0, 0, t]) if cache
                     else eng.ub_form(eng.pf * dV[0, 0, t], t, pos))
                a2 = At.real ** 2 + At.imag ** 2 if At.dtype.kind == "c" else At * At
                dI[idx] += (0.5 * a2 * q).T
                if want_A:
                    dA[0, 0, 0, t, idx] = (It * At * q).T
                continue
            tau = None
            for ci, fsl in enumerate(eng.chunks):
                D = eng.upper_scatter(eng.pf * dV[:, :, t, fsl], fsl.stop - fsl.start)
                for sb in eng.source_blocks(eng.nup[t], grad=True):   # small working set
                    e, tau = self._lean_phasors(t, ci, fsl, sb, pos, cache, tau)
                    q = eng.qform_units(e, D)
                    Af = At[fsl][:, sb]
                    isb = idx[sb]
                    dI[isb, fsl] += (0.5 * (Af.real ** 2 + Af.imag ** 2) * q).T
                    if want_A:
                        dA[0, 0, 0, t, isb, fsl] = (It[fsl][:, sb] * Af * q).T
        return dI, dA

    def _grad_a_dtype(self) -> Any:
        """Real beam gradients for real beams (half the memory), complex otherwise."""
        bd = np.dtype(self.in_dtype[1]) if isinstance(self.in_dtype, tuple) else None
        return self.engine.cdtype if bd is None or bd.kind == "c" else self.engine.rdtype

    def _adjoint_units(self, units, dV, want_I=True, want_A=False, want_pos=False,
                       a_dtype=np.complex128):
        """``J^H dV`` parts: dI (Nsrc, Nfreq), dA (A6 shape), dpos (Nant, 3)."""
        eng, xp = self.engine, self.xp
        dV = dV.reshape(eng.nfeed, eng.nfeed, eng.nt, eng.nf, eng.nbl)
        dI = xp.zeros((eng.ns, eng.nf), dtype=eng.rdtype) if want_I else None
        dA = xp.zeros(self._a6_shape, dtype=a_dtype) if want_A else None
        dpos = xp.zeros((eng.na, 3), dtype=np.float64) if want_pos else None
        for t, fsl, e, Z, It, _W in units:
            nfc, R, C = Z.shape
            nup = C // eng.nax
            idx = eng.up_idx[t]
            H = eng.scatter_h(eng.pf * dV[:, :, t, fsl], nfc)   # pf (D + D^H)
            G = xp.matmul(H, Z)                                  # (H Z)[f, r, c]
            ZG = (xp.conj(Z) * G).reshape(nfc, eng.na, eng.nfeed, eng.nax, nup)
            if want_I:   # dI_s = 1/2 Re sum_r conj(Z_rs) (H Z)_rs
                dI[idx, fsl] += 0.5 * ZG.real.sum(axis=(1, 2, 3)).T
            if want_A:   # dA_b += sum_{a in b} conj(e_a) I (H Z)_a
                gZ = eng.scale_cols(G, It).reshape(nfc, eng.na, eng.nfeed, eng.nax, nup)
                gA = xp.conj(e)[:, :, None, None, :] * gZ
                if eng.nbeam == 1:
                    gB = gA.sum(axis=1, keepdims=True)
                else:
                    gB = xp.zeros((nfc, eng.nbeam) + gA.shape[2:], dtype=gA.dtype)
                    scatter_add(gB, eng.beam_index, gA, axis=1)
                dA[:, :, :, t, idx, fsl] = xp.moveaxis(gB, 0, -1)
            if want_pos:  # dx_a = -(2 pi / c) sum_{f,s} nu_f Im(conj(Z) I (H Z))_a s_hat
                q = (ZG.imag.sum(axis=(2, 3)) * It[:, None, :])      # (nfc, Na, Nup)
                w = xp.tensordot(eng.freqs[fsl], q, axes=(0, 0))      # (Na, Nup)
                dpos += xp.matmul(w, eng.enu_up[t].T) * (-TWO_PI / C_LIGHT)
        return dI, dA, dpos


class RIME(_RimeBase, Operator):
    """Visibilities from intensities, beams and (optionally) antenna positions.

    ``F(I, A[, x]) = V`` with ``V[t, f, bl]`` (one feed) or ``V[p, q, t, f, bl]`` (two
    feeds), in the convention of the module docstring.

    Parameters
    ----------
    enu : array, shape (Ntimes, 3, Nsrc), float64
        Topocentric unit vectors (east, north, up) of each source at each time (see
        ``linlim.telescope.coordinates.source_enu``). Sources below the horizon
        (``up <= 0``) contribute nothing.
    antpos : array, shape (Nant, 3), float64
        Antenna positions in ENU metres (the fixed positions, or the reference when
        ``fit_positions``; then they are an input).
    freqs : array, shape (Nfreq,), float64
        Frequencies in Hz. Uniform channels use phasors by recurrence in frequency.
    ant1, ant2 : array, shape (Nbl,), int
        Antenna indices of each baseline (pyuvdata order; autos allowed).
    beam_index : array, shape (Nant,), int, optional
        Distinct beam of each antenna (default: one shared beam).
    nbeam : int, optional
        Number of distinct beams (default ``max(beam_index) + 1``).
    beam_dtype : dtype, optional
        ``"float64"`` (real beams) or ``"complex128"``; the single-precision twins with
        ``dtype="complex64"``.
    polarized : bool
        Two feeds: ``A`` has shape (Nbeam, 2, 2, Ntimes, Nsrc, Nfreq) (feed, sky axis).
    fit_positions : bool
        Take antenna positions (Nant, 3) as a third input. Without it the RIME equals
        ``FixInput(RIME(..., fit_positions=True), 2, antpos)`` (tested), but stays a
        constructor flag: positions known at construction are what let the phasors be
        cached (:meth:`linearize`) and the one-feed, one-beam products run on phasors
        alone (ZHERK/ZTRMM) or by NUFFT; a fixed-input composite around the
        position-taking RIME would pass the positions as data to every call.
    dtype : {"complex128", "complex64"}
        Output precision; intensities and real beams are float64 or float32 to match.
    method : {"auto", "gemm", "direct", "nufft"}
        Forward by per-antenna GEMMs (Hermitian rank-k updates), by a direct sum per
        baseline (numba; one feed), or by type-3 NUFFTs over the unique baselines
        (finufft; one feed, one shared beam, fixed positions; accurate to ``nufft_eps``).
        ``"auto"`` picks the cheapest by a cost model (:meth:`RimeEngine.costs`).
        Jacobian products use the GEMM form, except with ``"nufft"`` (its exact adjoint).
    memory_budget : int, optional
        Working bytes per (time, channel block); default 10% of free memory (capped at
        256 MiB on the CPU).
    cache_budget : int, optional
        Bytes that :meth:`linearize` may keep (phasors and ``Z`` for every time and
        channel); default 25% of free memory. When only the phasors fit they alone are
        kept (a lean cache); with one feed and one beam they are all the Jacobian needs.
    reseed : int
        Re-seeding interval of the phasor recurrence.
    nufft_eps : float, optional
        finufft tolerance (default 1e-12 in complex128, 1e-6 in complex64).
    ub : {"auto", True, False}
        With one feed, one beam, fixed positions and ``"gemm"`` on NumPy: evaluate the
        forward, J and J^H once per *unique* baseline vector (redundant arrays; numba,
        float64) instead of by Hermitian rank-k updates; ``"auto"`` when the array is
        redundant enough (:data:`~linlim.rime.engine.UB_FACTOR`). Exact (no tolerance).
    xp : module, optional
        Array module (default: the active backend).

    Notes
    -----
    With ``Z[(a, p), (k, s)] = A_b(a)[p, k, s] e_a(s)``, ``e_a = exp(-2 pi i nu x_a.s/c)``,
    the forward is ``V_full = pf Z diag(I) Z^H``, read at the baselines' (row, column).

    *JVP.* ``dZ = dA e + Z (-2 pi i nu / c)(dx . s)``; with ``Y = dZ I + Z dI / 2``,
    ``dV_full = pf (Y Z^H + Z Y^H)`` (one GEMM; ``I``, ``dI`` real).

    *VJP* under ``Re <., .>``. Scatter ``pf dV`` at the baselines into ``D`` and let
    ``H = D + D^H`` (Hermitian). Since ``V`` depends on ``Z`` and ``conj(Z)``,
    ``d/dZ* <V, dV> = I (H Z) =: g`` and, with ``G = H Z`` (one GEMM),

    * ``dI_s = 1/2 Re sum_r conj(Z_rs) G_rs``,
    * ``dA_b = sum_{a: beam(a) = b} conj(e_a) g_a`` (real part for real beams),
    * ``dx_a = -(2 pi / c) sum_{s, nu} nu Im(conj(Z_a) g_a) s_hat``.

    Examples
    --------
    >>> import numpy as np
    >>> enu = np.array([[[0.0], [0.0], [1.0]]])           # one source at zenith, one time
    >>> op = RIME(enu, np.zeros((2, 3)), np.array([1e8]), [0, 0], [0, 1])
    >>> V = op((np.full((1, 1), 2.0), np.ones((1, 1, 1, 1))))
    >>> V.ravel().real, np.abs(V.ravel().imag).max()
    (array([1., 1.]), np.float64(0.0))
    """

    _abstract = False

    def __init__(self, enu: Any, antpos: Any, freqs: Any, ant1: Any, ant2: Any, *,
                 beam_index: Any = None, nbeam: int | None = None,
                 beam_dtype: Any = None, polarized: bool = False,
                 fit_positions: bool = False, dtype: Any = "complex128",
                 method: str = "auto", memory_budget: int | None = None,
                 cache_budget: int | None = None, reseed: int = 16,
                 nufft_eps: float | None = None, ub: str | bool = "auto", xp: Any = None,
                 name: str | None = None) -> None:
        xp = get_xp() if xp is None else xp
        if method == "nufft" and fit_positions:
            raise InputError("method: 'nufft' keeps antenna positions fixed, received "
                             "fit_positions=True; use 'gemm'")
        eng = self._setup(enu, antpos, freqs, ant1, ant2, beam_index, nbeam, polarized,
                          dtype, method, memory_budget, reseed, xp, nufft_eps=nufft_eps,
                          nufft_ok=not fit_positions, full_units=bool(fit_positions), ub=ub)
        bd = np.dtype(eng.rdtype if beam_dtype is None else beam_dtype)
        if bd.kind not in "fc" or bd.itemsize not in (eng.rdtype.itemsize,
                                                      eng.cdtype.itemsize):
            raise InputError(f"beam_dtype: expected {eng.rdtype.name} or {eng.cdtype.name} "
                             f"for dtype={eng.cdtype.name}, received {bd.name}")
        self.fit_positions = bool(fit_positions)
        in_shape = [(eng.ns, eng.nf), self._a_shape]
        in_dtype = [eng.rdtype, bd]
        if self.fit_positions:
            in_shape.append((eng.na, 3))
            in_dtype.append(np.float64)
        super().__init__(tuple(in_shape), self._v_shape, tuple(in_dtype), eng.cdtype,
                         xp=xp, name=name or "RIME")
        self.cache_budget = _cache_budget(xp, cache_budget)

    def __repr__(self) -> str:
        e = self.engine
        return (f"RIME(Ntimes={e.nt}, Nsrc={e.ns}, Nfreq={e.nf}, Nant={e.na}, Nbl={e.nbl}, "
                f"Nbeam={e.nbeam}, polarized={self.polarized}, "
                f"fit_positions={self.fit_positions}, dtype={e.cdtype.name}, "
                f"method={e.method!r})")

    @property
    def method(self) -> str:
        """The forward method in use (``"gemm"``, ``"direct"`` or ``"nufft"``)."""
        return self.engine.method

    def _split(self, x: Any) -> tuple:
        I, A = x[0], x[1].reshape(self._a6_shape)
        pos = x[2] if self.fit_positions else self.engine.antpos
        return I, A, pos

    def _forward(self, x: Any) -> Any:
        I, A6, pos = self._split(x)
        eng = self.engine
        if eng.method == "direct":
            out = self.xp.empty((eng.nt, eng.nf, eng.nbl), dtype=eng.cdtype)
            return eng.direct(I, A6, pos, out)
        if eng.method == "nufft":
            return self._nufft_vis(self._nufft_weights(I, A6))
        return self._herk_forward(I, A6, pos)

    @property
    def _lean(self) -> bool:
        return self.engine.lean_products

    @property
    def _nufft(self) -> bool:
        return self._lean and self.engine.method == "nufft"

    def _jvp_units(self, units, dx: Any) -> Any:
        eng, xp = self.engine, self.xp
        dI, dA6 = dx[0], dx[1].reshape(self._a6_shape)
        dpos = dx[2] if self.fit_positions else None
        dV = xp.empty((eng.nfeed, eng.nfeed, eng.nt, eng.nf, eng.nbl), dtype=eng.cdtype)
        tcur = -1
        for t, fsl, e, Z, It, _W in units:
            if t != tcur:
                tcur, dIt, dAb = t, eng.intens_t(dI, t), eng.beam_t(dA6, t)
                dtau = eng.tau(t, dpos) if dpos is not None else None
            nfc, R, C = Z.shape
            dZ = eng.zmat(e, dAb[fsl])
            if dtau is not None:   # dZ += Z (-2 pi i nu / c) (dx . s)
                ph = (-1j * TWO_PI) * (eng.freqs[fsl][:, None, None] * dtau[None])
                dZ5 = dZ.reshape(nfc, eng.na, eng.nfeed, eng.nax, -1)
                dZ5 += Z.reshape(dZ5.shape) * ph[:, :, None, None, :].astype(eng.cdtype)
            Y = eng.scale_cols(dZ, It) + 0.5 * eng.scale_cols(Z, dIt[fsl])
            Xc = eng.gram(Z, Y)                                   # conj(Y Z^H)
            dV[:, :, t, fsl] = eng.pf * (eng.gather(Xc) + eng.gather(Xc, conj=False,
                                                                      swap=True))
        return dV.reshape(self._v_shape)

    def _vjp_units(self, units, dy: Any) -> Any:
        dI, dA6, dpos = self._adjoint_units(
            units, dy, want_I=True, want_A=True, want_pos=self.fit_positions,
            a_dtype=self.engine.cdtype)
        out = (dI, dA6.reshape(self._a_shape))
        return out + (dpos,) if self.fit_positions else out

    def _jvp(self, x: Any, dx: Any) -> Any:
        if self._nufft:
            I, A6, _ = self._split(x)
            return self._nufft_vis(self._nufft_weights(I, A6, dx[0],
                                                       dx[1].reshape(self._a6_shape)))
        if self._lean:
            return self._lean_jvp(*self._split(x), dx[0], dx[1].reshape(self._a6_shape))
        return self._jvp_units(self._units(*self._split(x)), dx)

    def _vjp(self, x: Any, dy: Any) -> Any:
        if self._nufft:
            dI, dA = self._nufft_vjp(self._split(x)[0], self._split(x)[1], dy)
            return dI, dA.reshape(self._a_shape)
        if self._lean:
            dI, dA = self._lean_vjp(*self._split(x), dy)
            return dI, dA.reshape(self._a_shape)
        return self._vjp_units(self._units(*self._split(x)), dy)  # e needed for dA

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        """Forward and Jacobian; the Jacobian caches phasors and ``Z`` per (time, block)
        when they fit ``cache_budget``, the phasors alone (a lean cache) when only they
        fit, or nothing. With one feed and one beam the phasors are all it needs; with the
        unique-baseline products it keeps their phasors ``e_i conj(e_j)`` per class
        (J and J^H are then one real matrix-vector product per channel)."""
        I, A6, pos = self._split(x)
        eng = self.engine
        if self._nufft:   # NUFFT products need no cache
            return self._forward(x), _RIMEJacobian(self, x, None)
        if eng.ub_products:   # cache: the unique-baseline phasors of every time
            store = ({t: eng.ub_phasors(t, pos) for t in range(eng.nt)}
                     if eng.ub_cache_bytes() <= self.cache_budget else None)
            return self._herk_forward(I, A6, pos), _RIMEJacobian(self, x, store)
        full = not self._lean and _cache_bytes(eng, True) <= self.cache_budget
        lean = _cache_bytes(eng, True, with_z=False) <= self.cache_budget
        store = {} if (full or lean) else None
        if eng.method in ("direct", "nufft") and store is None:
            y = self._forward(x)
        else:
            y = self._herk_forward(I, A6, pos, store=store, keep_z=full)
        return y, _RIMEJacobian(self, x, store)


class _RIMEJacobian(LinearOperator):
    """Jacobian of :class:`RIME` at ``x``, keeping phasors and ``Z`` per (time, block)."""

    _abstract = True  # built only by RIME.linearize; checked through its parent

    def __init__(self, op: RIME, x: Any, cache: dict | None) -> None:
        super().__init__(op.in_shape, op.out_shape, op.in_dtype, op.out_dtype, op.xp,
                         name=f"J[{op.name}]")
        self.op, self.x, self.cache = op, x, cache

    def _units(self):
        I, A6, pos = self.op._split(self.x)
        return self.op._units(I, A6, pos, cache=self.cache or None)

    def _matvec(self, dx: Any) -> Any:
        if self.op._nufft:
            return self.op._jvp(self.x, dx)
        if self.op._lean:
            I, A6, pos = self.op._split(self.x)
            return self.op._lean_jvp(I, A6, pos, dx[0], dx[1].reshape(self.op._a6_shape),
                                     cache=self.cache)
        return self.op._jvp_units(self._units(), dx)

    def _rmatvec(self, dy: Any) -> Any:
        if self.op._nufft:
            return self.op._vjp(self.x, dy)
        if self.op._lean:
            I, A6, pos = self.op._split(self.x)
            dI, dA = self.op._lean_vjp(I, A6, pos, dy, cache=self.cache)
            return dI, dA.reshape(self.op._a_shape)
        return self.op._vjp_units(self._units(), dy)


class RIMEIntensity(LinearOperator):
    """Visibilities as a linear function of intensities, beams fixed (imaging, sky fits).

    ``V = K I`` with ``K`` the :class:`RIME` with its beam input held fixed by the one "fix
    an input" composite, :class:`~linlim.operators.FixInput`: ``K`` is the Jacobian of
    ``FixInput(RIME(...), 1, beam)`` (exact, since the RIME is linear in ``I``), taken once
    with :meth:`RIME.linearize` and reused, so products use the RIME's cached phasors (one
    feed, one beam: a Hermitian rank-k update per channel forward, a triangular product
    per channel adjoint) or its cached ``Z`` (several beams or feeds) when they fit
    ``cache_budget``.

    Why a class of its own and not ``FixInput(...)`` itself: ``FixInput`` returns an
    :class:`~linlim.operators.Operator` (nonlinear in general), while ``K`` is used as a
    :class:`~linlim.operators.LinearOperator` (``matvec``, ``rmatvec``, ``K.H``, solvers
    and imaging); this class only builds the composite and exposes its Jacobian.

    Parameters
    ----------
    enu, antpos, freqs, ant1, ant2, beam_index, polarized : see RIME
        As in :class:`RIME`.
    dtype, method, memory_budget, cache_budget, reseed, nufft_eps, ub, xp : see RIME
        As in :class:`RIME`.
    beam : array or None
        Fixed beam values, shape (Nbeam, Ntimes, Nsrc, Nfreq) (or (Nbeam, 2, 2, Ntimes,
        Nsrc, Nfreq) when polarized), float or complex; ``None`` means ``A = 1``.

    Notes
    -----
    Forward ``V_full = pf Z diag(I) Z^H``; adjoint ``dI_s = 1/2 Re sum_r conj(Z_rs)
    (H Z)_rs`` with ``H = pf (D + D^H)`` (see :class:`RIME`).

    Examples
    --------
    >>> import numpy as np
    >>> enu = np.array([[[0.6], [0.0], [0.8]]])
    >>> K = RIMEIntensity(enu, np.array([[0.0, 0, 0], [3.0, 0, 0]]), np.array([1e8]),
    ...                   [0], [1], beam=None)
    >>> V = K.matvec(np.ones((1, 1)))
    >>> bool(np.isclose(abs(V[0, 0, 0]), 0.5))
    True
    """

    _abstract = False

    def __init__(self, enu: Any, antpos: Any, freqs: Any, ant1: Any, ant2: Any,
                 beam: Any = None, *, beam_index: Any = None, polarized: bool = False,
                 dtype: Any = "complex128", method: str = "auto",
                 memory_budget: int | None = None, cache_budget: int | None = None,
                 reseed: int = 16, nufft_eps: float | None = None, ub: str | bool = "auto",
                 xp: Any = None, name: str | None = None) -> None:
        from ..backend import asarray
        from ..operators.composite import FixInput

        xp = get_xp() if xp is None else xp
        nbeam = None if beam is None else int(np.shape(beam)[0])
        beam_dtype = None
        if beam is not None:
            beam = asarray(beam, xp)
            beam_dtype = (np.dtype(dtype) if beam.dtype.kind == "c"
                          else np.dtype(np.float32 if np.dtype(dtype) == np.complex64
                                        else np.float64))
        rime = RIME(enu, antpos, freqs, ant1, ant2, beam_index=beam_index, nbeam=nbeam,
                    beam_dtype=beam_dtype, polarized=polarized, dtype=dtype, method=method,
                    memory_budget=memory_budget, cache_budget=cache_budget, reseed=reseed,
                    nufft_eps=nufft_eps, ub=ub, xp=xp)
        eng = rime.engine
        if beam is None:
            if eng.nbeam != 1:
                raise InputError("beam: None (A = 1) needs a single beam, but beam_index "
                                 f"names {eng.nbeam}")
            beam = xp.ones(rime._a6_shape, dtype=eng.rdtype)
            if eng.nfeed == 2:   # identity Jones matrix
                beam[:, 0, 1] = 0
                beam[:, 1, 0] = 0
        if tuple(beam.shape) not in (rime._a_shape, rime._a6_shape):
            raise InputError(f"beam: expected shape {rime._a_shape}, received "
                             f"{tuple(beam.shape)}")
        bdt = eng.cdtype if beam.dtype.kind == "c" else eng.rdtype
        self.A6 = beam.astype(bdt, copy=False).reshape(rime._a6_shape)
        self.rime = rime
        self.fixed = FixInput(rime, 1, self.A6.reshape(rime._a_shape), name="beam")
        super().__init__((eng.ns, eng.nf), rime.out_shape, eng.rdtype, eng.cdtype, xp=xp,
                         name=name or "RIMEIntensity")
        self._J: LinearOperator | None = None

    def __repr__(self) -> str:
        e = self.engine
        return (f"RIMEIntensity(Ntimes={e.nt}, Nsrc={e.ns}, Nfreq={e.nf}, Nbl={e.nbl}, "
                f"polarized={self.rime.polarized}, dtype={e.cdtype.name}, "
                f"method={e.method!r})")

    @property
    def engine(self) -> RimeEngine:
        """The :class:`~linlim.rime.engine.RimeEngine` of the underlying :class:`RIME`."""
        return self.rime.engine

    @property
    def polarized(self) -> bool:
        """Two feeds (Jones beams)."""
        return self.rime.polarized

    @property
    def method(self) -> str:
        """The forward method in use (``"gemm"``, ``"direct"`` or ``"nufft"``)."""
        return self.engine.method

    def _jac(self) -> LinearOperator:
        """The composite's Jacobian (at zero intensities; ``K`` does not depend on them),
        built by :meth:`RIME.linearize` on the first product and kept."""
        if self._J is None:
            zero = self.xp.zeros((self.engine.ns, self.engine.nf), dtype=self.engine.rdtype)
            self._J = self.fixed.linearize(zero)[1]
        return self._J

    def _matvec(self, x: Any) -> Any:
        return self._jac().matvec(x)

    def _rmatvec(self, y: Any) -> Any:
        return self._jac().rmatvec(y)
