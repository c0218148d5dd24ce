"""The RIME engine: geometry, per-(time, channel-block) phasors, the GEMM products.

This module holds the arithmetic shared by :class:`~linlim.rime.operator.RIME` and
:class:`~linlim.rime.operator.RIMEIntensity`; it is not an operator itself. Everything is
written against the bound array module ``xp`` (NumPy or CuPy); the only backend branch is
the choice of the kernel twin (numba on NumPy, the ``xp`` reference on CuPy).

Layout of one (time ``t``, channel block ``F``) work unit, with ``Nup`` the sources above
the horizon at ``t``, ``R = Nant Nfeed`` rows and ``C = Nax Nup`` columns:

* ``e[f, a, s] = exp(-2 pi i nu_f x_a . s_hat / c)`` (Nf_blk, Nant, Nup),
* ``Z[f, (a, p), (k, s)] = A[beam(a), p, k, s, f] e[f, a, s]`` (Nf_blk, R, C),
* ``V_full = pf Z diag(I) Z^H`` (Nf_blk, R, R), one batched GEMM,

so ``V_ij = pf sum_s A_i conj(A_j) I_s exp(+2 pi i nu (x_j - x_i) . s_hat / c)`` with
``pf = 1/2`` (the unpolarised sky split evenly between two linear feeds).

With one feed, one beam and fixed positions on a redundant array, the products run once
per unique baseline vector instead (:meth:`RimeEngine.ub_vis`): ``sum_s w_s e_i conj(e_j)``
for one representative pair per class, from the antennas' phasors (numba, float64),
``w = |A|^2 I`` for the forward (or a Jacobian's weights); chosen by cost (``ub``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import asarray, backend_name_of, scatter_add
from ..errors import InputError, ShapeError
from ..units import SPEED_OF_LIGHT as C_LIGHT
from ..validation import check_indices
from . import kernels_numpy
from .chunking import default_memory_budget, plan_frequency_chunks

__all__ = ["RimeEngine", "C_LIGHT", "METHODS", "SRC_BLOCK", "GRAD_SRC_BLOCK"]

#: Visibility methods: "auto" picks by cost among the others.
METHODS = ("auto", "gemm", "direct", "nufft")
TWO_PI = 2.0 * np.pi
#: Sources per block of the fused kernel and its Hermitian rank-k update.
SRC_BLOCK = 4096
#: Cost of one unique-baseline product (numba) relative to one ZHERK entry (BLAS), per
#: source and channel: ~2.5 ns against ~0.55 ns, measured side by side on this project's
#: loaded 2-core CPU (37-antenna hexagon, 10^4 sources; docs/benchmarks.md).
UB_FACTOR = 4.5
#: Sources per block of the gradient's phasors (ZTRMM form): a quarter of the forward's
#: block keeps forward + gradient peak memory within twice the forward's.
GRAD_SRC_BLOCK = 1024


def _kernels(xp: Any) -> Any:
    if backend_name_of(xp) == "numpy":
        from . import kernels_numba

        return kernels_numba
    return kernels_numpy


class RimeEngine:
    """Fixed geometry of a visibility simulation and its per-chunk products.

    Parameters
    ----------
    enu : array, shape (Ntimes, 3, Nsrc), float64
        Topocentric unit vectors (east, north, up) of each source at each time. Sources
        with ``up <= 0`` are below the horizon and excluded (as matvis does).
    antpos : array, shape (Nant, 3), float64
        Antenna positions, ENU metres.
    freqs : array, shape (Nfreq,), float64
        Frequencies in Hz.
    ant1, ant2 : array, shape (Nbl,), int
        Antenna indices (rows of ``antpos``) of each baseline, pyuvdata order.
    beam_index : array, shape (Nant,), int, optional
        Beam of each antenna (default: all antennas share beam 0).
    nbeam : int, optional
        Number of distinct beams (default ``max(beam_index) + 1``).
    nfeed : {1, 2}
        One feed (unpolarised beam) or two feeds (Jones beam with two sky axes).
    dtype : {"complex128", "complex64"}
        Working and output precision.
    method : {"auto", "gemm", "direct", "nufft"}
        Per-antenna factorisation with GEMMs, a direct sum over sources per baseline, or
        type-3 NUFFTs over the unique baselines (one feed, one beam, finufft; see
        :mod:`.nufft`). ``"auto"`` picks by a cost model.
    memory_budget : int, optional
        Bytes of working memory per (time, channel block); default
        :func:`~linlim.rime.chunking.default_memory_budget`.
    reseed : int
        Phasor recurrence re-seeding interval (uniform channels only).
    nufft_eps : float, optional
        finufft tolerance (default 1e-12 in complex128, 1e-6 in complex64).
    nufft_ok : bool
        Whether ``"auto"`` may choose the NUFFT (the caller needs no position Jacobian).
    full_units : bool
        The caller's products use full-width ``Z`` per block (positions, several beams or
        feeds, :class:`RIMEIntensity`); sizes the channel blocks for it. Otherwise, with
        one feed and one beam, blocks are sized for the phasor-only products.
    ub : {"auto", True, False}
        Lean products (one feed, one beam, fixed positions, ``"gemm"``) over the unique
        baselines (:meth:`ub_vis`) instead of ZHERK/ZTRMM: ``"auto"`` when the array is
        redundant enough (``UB_FACTOR Nu < R (R + 1) / 2``).
    xp : module
    """

    def __init__(self, enu: Any, antpos: Any, freqs: Any, ant1: Any, ant2: Any, *,
                 beam_index: Any = None, nbeam: int | None = None, nfeed: int = 1,
                 dtype: Any = "complex128", method: str = "auto",
                 memory_budget: int | None = None, reseed: int = 16,
                 nufft_eps: float | None = None, nufft_ok: bool = True,
                 full_units: bool = False, ub: str | bool = "auto", xp: Any = np) -> None:
        self.xp = xp
        enu = np.asarray(_host(enu), dtype=np.float64)
        antpos_h = np.asarray(_host(antpos), dtype=np.float64)
        freqs_h = np.asarray(_host(freqs), dtype=np.float64).ravel()
        ant1, ant2 = check_indices(_host(ant1), "ant1"), check_indices(_host(ant2), "ant2")
        if enu.ndim != 3 or enu.shape[1] != 3:
            raise ShapeError(f"enu: expected shape (Ntimes, 3, Nsrc), received {enu.shape}")
        if antpos_h.ndim != 2 or antpos_h.shape[1] != 3:
            raise ShapeError(f"antpos: expected shape (Nant, 3), received {antpos_h.shape}")
        if ant1.shape != ant2.shape:
            raise ShapeError(f"ant2: expected shape {ant1.shape} like ant1, received {ant2.shape}")
        self.nt, _, self.ns = enu.shape
        self.na = antpos_h.shape[0]
        self.nf = freqs_h.size
        self.nbl = ant1.size
        for name, a in (("ant1", ant1), ("ant2", ant2)):
            if a.size and (a.min() < 0 or a.max() >= self.na):
                raise InputError(f"{name}: expected antenna indices in [0, {self.na}), "
                                 f"received values in [{a.min()}, {a.max()}]")
        if beam_index is None:
            beam_index = np.zeros(self.na, dtype=np.int64)
        beam_index = np.asarray(_host(beam_index), dtype=np.int64).ravel()
        if beam_index.shape != (self.na,):
            raise ShapeError(f"beam_index: expected shape ({self.na},), received "
                             f"{beam_index.shape}")
        self.nbeam = int(beam_index.max()) + 1 if nbeam is None else int(nbeam)
        if beam_index.min() < 0 or beam_index.max() >= self.nbeam:
            raise InputError(f"beam_index: expected values in [0, {self.nbeam}), received "
                             f"[{beam_index.min()}, {beam_index.max()}]")
        if nfeed not in (1, 2):
            raise InputError(f"nfeed: expected 1 or 2, received {nfeed}")
        self.nfeed = self.nax = int(nfeed)
        self.cdtype = np.dtype(dtype)
        if self.cdtype not in (np.complex64, np.complex128):
            raise InputError(f"dtype: expected 'complex128' or 'complex64', received {dtype!r}")
        self.rdtype = np.dtype(np.float32 if self.cdtype == np.complex64 else np.float64)
        self.pf = 0.5
        self.reseed = int(reseed)

        # geometry, on the device once
        self.up_idx = []
        self.enu_up = []
        for t in range(self.nt):
            idx = np.nonzero(enu[t, 2] > 0)[0]
            self.up_idx.append(asarray(idx, xp))
            self.enu_up.append(asarray(np.ascontiguousarray(enu[t][:, idx]), xp))
        self.nup = [int(i.size) for i in self.up_idx]
        self.nup_max = max(self.nup) if self.nup else 0
        self.antpos = asarray(antpos_h, xp)
        self.freqs = asarray(freqs_h, xp)
        self.freqs_host = freqs_h
        d = np.diff(freqs_h)
        self.df = float(d.mean()) if d.size and np.all(
            np.abs(d - d.mean()) <= 1e-9 * abs(d.mean())) else None
        self.ant1_h, self.ant2_h = ant1, ant2
        self.beam_index_h = beam_index
        self.beam_index = asarray(beam_index, xp)
        self.b1 = asarray(beam_index[ant1], xp)
        self.b2 = asarray(beam_index[ant2], xp)
        self.ant1, self.ant2 = asarray(ant1, xp), asarray(ant2, xp)
        nfd = self.nfeed
        p = np.arange(nfd)
        r1 = ant1[None, None, :] * nfd + p[:, None, None]  # (p, q, bl): row of (ant1, p)
        r2 = ant2[None, None, :] * nfd + p[None, :, None]  # column of (ant2, q)
        r1, r2 = np.broadcast_arrays(r1, r2)
        self.r1, self.r2 = asarray(r1.copy(), xp), asarray(r2.copy(), xp)
        self.flat = asarray((r1 * (self.na * nfd) + r2).ravel(), xp)
        self.flat_unique = np.unique(r1 * (self.na * nfd) + r2).size == r1.size
        # Hermitian (upper-triangle) reads: V[r1, r2] = conj(C[r1, r2]) for r1 <= r2, else
        # C[r2, r1], with C = conj(U)^T-style HERK output (upper triangle valid)
        lo, hi = np.minimum(r1, r2).ravel(), np.maximum(r1, r2).ravel()
        self.up_flat = asarray(lo * (self.na * nfd) + hi, xp)
        self.up_swap = asarray((r1 > r2).ravel(), xp)

        self.R = self.na * nfd
        if method not in METHODS:
            raise InputError(f"method: expected one of {METHODS}, received {method!r}")
        if method == "direct" and nfd != 1:
            raise InputError("method: 'direct' supports one feed only; use 'gemm' with "
                             "nfeed=2")
        if method == "nufft" and (nfd != 1 or self.nbeam != 1):
            raise InputError("method: 'nufft' needs one feed and one shared beam, received "
                             f"nfeed={nfd}, nbeam={self.nbeam}; use 'gemm'")
        if method == "nufft" and backend_name_of(xp) != "numpy":
            raise InputError("method: 'nufft' runs on the NumPy backend (finufft); use "
                             "'gemm' on the GPU")
        self.nufft_eps = float(nufft_eps) if nufft_eps is not None else (
            1e-6 if self.cdtype == np.complex64 else 1e-12)
        self._ub = None
        self._ub_reps = None
        self._ub_pref = ub
        self.nufft_ok = bool(nufft_ok)
        self.method = self._choose(method)
        self.memory_budget = (default_memory_budget(xp) if memory_budget is None
                              else int(memory_budget))
        csize = self.cdtype.itemsize
        nup1 = max(self.nup_max, 1)
        self.lean_products = self.lean and not full_units
        if self.lean_products:   # source-blocked ZHERK forward; phasors (+ ZTRMM copy) in J
            per_f = csize * (2 * self.R * min(nup1, SRC_BLOCK) + 2 * self.na * nup1
                             + 3 * self.R * self.R)
        else:                    # full-width Z, W (or G) and phasors
            per_f = csize * (3 * self.R * self.nax * nup1 + self.na * nup1
                             + 2 * self.R * self.R)
        self.bytes_per_channel = per_f
        self.chunks = plan_frequency_chunks(self.nf, per_f, self.memory_budget)
        self.kern = _kernels(xp)
        self._bufs: dict = {}
        self.ub_products = self._use_ub(ub)

    # ---- unique baselines (one feed, one beam, fixed positions) ---------------------------
    def _use_ub(self, ub: str | bool) -> bool:
        """Whether the lean products run over unique baselines (:meth:`ub_vis`) instead of
        Hermitian rank-k updates: ``ub`` True/False forces it, ``"auto"`` compares costs
        (``UB_FACTOR`` Nu against ``R (R + 1) / 2`` per source and channel)."""
        if not (self.lean_products and self.method == "gemm"
                and backend_name_of(self.xp) == "numpy"):
            if ub is True:
                raise InputError("ub: products over unique baselines need one feed, one "
                                 "beam, fixed positions, method 'gemm' and NumPy")
            return False
        if ub == "auto":
            return UB_FACTOR * self.unique_baselines.n < self.R * (self.R + 1) / 2
        return bool(ub)

    def ub_reps(self) -> tuple:
        """``(ui, uj, inv, flip)``: antennas of one representative per unique baseline
        class with ``x_j - x_i`` the class vector, each baseline's class, and whether the
        baseline is the class vector's negative (its visibility the conjugate)."""
        if self._ub_reps is None:
            ubl = self.unique_baselines
            first = np.full(ubl.n, -1, dtype=np.int64)
            for k in range(self.nbl - 1, -1, -1):
                first[ubl.inv[k]] = k
            flip = ubl.flip[first]
            a1, a2 = self.ant1_h[first], self.ant2_h[first]
            ui, uj = np.where(flip, a2, a1), np.where(flip, a1, a2)
            used = np.unique(np.r_[ui, uj])           # phasors of these antennas only
            self._ub_ants = used
            self._ub_reps = (np.searchsorted(used, ui), np.searchsorted(used, uj), ubl.inv,
                             ubl.flip)
        return self._ub_reps

    def _ub_tau(self, t: int, pos: Any) -> Any:
        self.ub_reps()
        return self.tau(t, pos[self._ub_ants])

    def ub_vis(self, w: Any, t: int, pos: Any, out: Any) -> Any:
        """``out[f, bl] = pf sum_s w[f, s] exp(+2 pi i nu (x_j - x_i) . s_hat / c)`` at time
        ``t`` (``w`` (Nfreq, Nup) real), evaluated once per unique baseline from the
        antennas' phasors (numba, float64) and copied to its baselines."""
        ui, uj, inv, flip = self.ub_reps()
        acc = np.zeros((self.nf, ui.size), dtype=np.complex128)
        self.kern.ubvis(self._ub_tau(t, pos), self.freqs, self.df, self.reseed, w, ui, uj, acc)
        v = self.pf * acc[:, inv]
        out[...] = np.where(flip[None, :], np.conj(v), v)
        return out

    def ub_phasors(self, t: int, pos: Any) -> Any:
        """Unique-baseline phasors of time ``t`` as real planes (Nfreq, 2 Nu, Nup) float64
        (:func:`~linlim.rime.kernels_numpy.ubphasors`): the Jacobian's cache."""
        ui, uj = self.ub_reps()[:2]
        P = np.empty((self.nf, 2 * ui.size, self.nup[t]), dtype=np.float64)
        return self.kern.ubphasors(self._ub_tau(t, pos), self.freqs, self.df, self.reseed,
                                   ui, uj, P)

    def ub_cache_bytes(self) -> int:
        """Bytes of :meth:`ub_phasors` for every time."""
        return int(16 * self.unique_baselines.n * self.nf * sum(self.nup))

    def ub_vis_cached(self, P: Any, w: Any, out: Any) -> Any:
        """:meth:`ub_vis` from cached phasors ``P`` (one real matrix-vector product per
        channel, BLAS)."""
        inv, flip = self.ub_reps()[2:]
        nu = P.shape[1] // 2
        r = np.matmul(P, np.ascontiguousarray(w, dtype=np.float64)[:, :, None])[:, :, 0]
        v = self.pf * (r[:, :nu] + 1j * r[:, nu:])[:, inv]
        out[...] = np.where(flip[None, :], np.conj(v), v)
        return out

    def _ub_classes(self, dV: Any) -> Any:
        """``dV`` (Nfreq, Nbl) summed per unique-baseline class (conjugated where a baseline
        is its class vector's negative): (Nfreq, Nu) complex128."""
        ui, uj, inv, flip = self.ub_reps()
        D = np.zeros((self.nf, ui.size), dtype=np.complex128)
        vals = np.where(flip[None, :], np.conj(dV), dV)
        for f in range(self.nf):
            D[f] = np.bincount(inv, weights=vals[f].real, minlength=ui.size) + 1j * \
                np.bincount(inv, weights=vals[f].imag, minlength=ui.size)
        return D

    def ub_form_cached(self, P: Any, dV: Any) -> Any:
        """:meth:`ub_form` from cached phasors ``P``: ``q = 2 (Re D . Re P + Im D . Im P)``,
        one real vector-matrix product per channel."""
        D = self._ub_classes(dV)
        Dc = 2.0 * np.concatenate([D.real, D.imag], axis=1)[:, :, None]
        return np.matmul(P.transpose(0, 2, 1), Dc)[:, :, 0]

    def ub_form(self, dV: Any, t: int, pos: Any) -> Any:
        """``q[f, s] = 2 Re sum_bl dV[f, bl] exp(-2 pi i nu (x_j - x_i) . s_hat / c)``
        (Nfreq, Nup), the adjoint of :meth:`ub_vis` without ``pf``: ``dV`` summed per class
        (conjugated where the baseline is the class vector's negative) first."""
        ui, uj = self.ub_reps()[:2]
        D = self._ub_classes(dV)
        q = np.empty((self.nf, self.nup[t]), dtype=np.float64)
        return self.kern.ubform(self._ub_tau(t, pos), self.freqs, self.df, self.reseed, D, ui,
                                uj, q)

    @property
    def unique_baselines(self) -> Any:
        """:class:`~linlim.rime.nufft.UniqueBaselines` of the (fixed) antenna positions."""
        if self._ub is None:
            from .nufft import UniqueBaselines

            a = _host(self.antpos)
            self._ub = UniqueBaselines(a[self.ant2_h] - a[self.ant1_h])
        return self._ub

    def costs(self) -> dict:
        """Modelled seconds of one forward per method (constants measured side by side on
        this project's loaded 2-core machine, one BLAS/OpenMP thread; only their ratios
        matter, docs/benchmarks.md)."""
        nup = float(sum(self.nup))
        out = {"gemm": self.nf * nup * (32e-9 * self.na + 0.4e-9 * self.R * self.R)}
        if (self.nfeed == 1 and self.nbeam == 1 and self._ub_pref is not False
                and backend_name_of(self.xp) == "numpy"):
            nu = self.unique_baselines.n
            if self._ub_pref is True or UB_FACTOR * nu < self.R * (self.R + 1) / 2:
                self.ub_reps()
                # ~2x the measured 2 ns per antenna and 2.5 ns per class, in line with
                # the other constants (taken on a busier machine)
                out["gemm"] = self.nf * nup * (4e-9 * self._ub_ants.size + 5e-9 * nu)
        if self.nfeed == 1:
            out["direct"] = 80e-9 * self.nbl * nup * self.nf
        from .nufft import grid_size, have_finufft

        if (self.nfeed == 1 and self.nbeam == 1 and have_finufft()
                and backend_name_of(self.xp) == "numpy"):
            ub = self.unique_baselines
            width = max(2.0, np.ceil(-np.log10(self.nufft_eps)) + 1.0)
            dims = 2 if ub.planar else 3
            g = grid_size(ub, float(self.freqs_host.max()), self.nufft_eps)
            per = (4e-9 * (nup / max(self.nt, 1) + ub.n) * width**dims
                   + 6e-9 * g * np.log2(max(g, 2.0)) + 2e-4)
            out["nufft"] = per * self.nf * self.nt
        return out

    def _choose(self, method: str) -> str:
        if method != "auto":
            return method
        if backend_name_of(self.xp) != "numpy" or self.nfeed != 1:
            return "gemm"
        c = self.costs()
        if not self.nufft_ok:
            c.pop("nufft", None)
        return min(c, key=c.get)

    # ---- per time ------------------------------------------------------------------------
    def tau(self, t: int, pos: Any) -> Any:
        """Delays ``x_a . s_hat / c`` (Nant, Nup) in seconds."""
        return self.xp.matmul(pos, self.enu_up[t]) * (1.0 / C_LIGHT)

    def beam_t(self, A6: Any, t: int) -> Any:
        """Beam at time ``t`` above the horizon, (Nfreq, Nbeam, Nfeed, Nax, Nup)."""
        xp = self.xp
        a = xp.take(A6[:, :, :, t], self.up_idx[t], axis=3)  # (Nb, Nfd, Nax, Nup, Nf)
        return xp.ascontiguousarray(xp.moveaxis(a, -1, 0))

    def intens_t(self, I: Any, t: int) -> Any:
        """Intensities at time ``t`` above the horizon, (Nfreq, Nup)."""
        xp = self.xp
        return xp.ascontiguousarray(xp.take(I, self.up_idx[t], axis=0).T)

    # ---- per chunk -----------------------------------------------------------------------
    def buffer(self, name: str, shape: tuple, dtype: Any) -> Any:
        """A reusable work array (kept between calls; grown when too small)."""
        n = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < n or buf.dtype != np.dtype(dtype):
            buf = self._bufs[name] = self.xp.empty(n, dtype=dtype)
        return buf[:n].reshape(shape)

    def zw(self, tau: Any, fsl: slice, Ab: Any, It: Any, *, want_e: bool, want_w: bool,
           fresh: bool) -> tuple:
        """``(e, Z, W)`` of one block via the fused kernel; ``W = conj(Z) I``; ``e`` and
        ``W`` are ``None`` unless wanted. ``fresh`` allocates new arrays (for caches)."""
        xp = self.xp
        nfc, nup = fsl.stop - fsl.start, int(tau.shape[1])
        shp = (nfc, self.R, self.nax * nup)
        if fresh:
            Z = xp.empty(shp, dtype=self.cdtype)
            e = xp.empty((nfc, self.na, nup), dtype=self.cdtype) if want_e else None
        else:
            Z = self.buffer("Z", shp, self.cdtype)
            e = self.buffer("e", (nfc, self.na, nup), self.cdtype) if want_e else None
        W = self.buffer("W", shp, self.cdtype) if want_w else None
        self.kern.zmatrix(tau, self.freqs[fsl], self.df, self.reseed, Ab[fsl],
                          self.beam_index, It if want_w else None, e, Z, W)
        return e, Z, W

    def phasors(self, tau: Any, fsl: slice, out: Any = None) -> Any:
        """``e`` (Nf_blk, Nant, Nup) for channel block ``fsl``."""
        nfc = fsl.stop - fsl.start
        if out is None:
            out = self.xp.empty((nfc, self.na, tau.shape[1]), dtype=self.cdtype)
        return self.kern.phasors(tau, self.freqs[fsl], self.df, self.reseed, out)

    def zmat(self, e: Any, Ab: Any, out: Any = None) -> Any:
        """``Z`` (Nf_blk, R, C) from phasors and the block's beams (Nf_blk, Nb, Nfd, Nax, Nup)."""
        xp = self.xp
        nfc, na, nup = e.shape
        if out is None:
            out = xp.empty((nfc, self.R, self.nax * nup), dtype=self.cdtype)
        Aant = Ab if self.nbeam == 1 else xp.take(Ab, self.beam_index, axis=1)
        xp.multiply(e[:, :, None, None, :], Aant,
                    out=out.reshape(nfc, na, self.nfeed, self.nax, nup))
        return out

    def gram(self, Z: Any, W: Any) -> Any:
        """``conj(W Z^H)``, i.e. ``conj(W) Z^T`` (Nf_blk, R, R) by one batched GEMM."""
        xp = self.xp
        return xp.matmul(xp.conj(W), Z.swapaxes(1, 2))

    def scale_cols(self, Z: Any, It: Any) -> Any:
        """``Z * I`` with ``I`` (Nf_blk, Nup) broadcast over rows and sky axes."""
        nfc, R, C = Z.shape
        nup = C // self.nax
        return (Z.reshape(nfc, R, self.nax, nup) * It[:, None, None, :]).reshape(nfc, R, C)

    def gather(self, Mc: Any, conj: bool = True, swap: bool = False) -> Any:
        """Baseline entries ``Mc[r1, r2]`` (``Mc[r2, r1]`` with ``swap``), conjugated with
        ``conj``, as (Nfeed, Nfeed, Nf_blk, Nbl)."""
        xp = self.xp
        g = Mc[:, self.r2, self.r1] if swap else Mc[:, self.r1, self.r2]
        g = xp.moveaxis(g, 0, 2)
        return xp.conj(g) if conj else g

    def scatter_h(self, dV: Any, nfc: int) -> Any:
        """``H = D + D^H`` (Nf_blk, R, R) with ``D`` the baselines' ``dV`` placed at
        (r1, r2) (repeated baselines add); ``dV`` is (Nfeed, Nfeed, Nf_blk, Nbl)."""
        xp = self.xp
        R = self.R
        H = xp.zeros((nfc, R * R), dtype=self.cdtype)
        vals = xp.moveaxis(dV, 2, 0).reshape(nfc, -1)
        if self.flat_unique:
            H[:, self.flat] = vals
        else:
            scatter_add(H, self.flat, vals, axis=1)
        H = H.reshape(nfc, R, R)
        return H + xp.conj(H.swapaxes(1, 2))

    # ---- Hermitian rank-k products (ZHERK) and triangular forms (ZTRMM) ----------------
    @property
    def lean(self) -> bool:
        """One feed and one beam: ``V = pf E diag(|A|^2 I) E^H`` needs phasors only."""
        return self.nfeed == 1 and self.nbeam == 1

    def layout(self, w: Any, ncolrows: int) -> tuple:
        """``(order, npos, nneg, offp, offn)`` of signed column weights ``w`` (Nf_blk, Nup)
        for blocks of ``ncolrows`` (rows x sky axes) values per column."""
        xp = self.xp
        nfc, nup = w.shape
        order = self.buffer("order", (nfc, nup), np.int64)
        npos = self.buffer("npos", (nfc,), np.int64)
        nneg = self.buffer("nneg", (nfc,), np.int64)
        self.kern.signmap(w, order, npos, nneg)
        offp = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(npos)[:-1] * ncolrows])
        offn = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(nneg)[:-1] * ncolrows])
        return order, npos, nneg, offp, offn

    def _cols_buffers(self, lay: tuple, ncolrows: int) -> tuple:
        npos, nneg = lay[1], lay[2]
        pos = self.buffer("Upos", (max(int(npos.sum()) * ncolrows, 1),), self.cdtype)
        neg = self.buffer("Uneg", (max(int(nneg.sum()) * ncolrows, 1),), self.cdtype)
        return pos, neg

    def herk_units(self, tau: Any, fsl: slice, Ab: Any, w: Any, e_out: Any = None) -> tuple:
        """``Z sqrt|w|`` split by sign (fused phasor x beam x weight kernel); ``e_out``
        receives the phasors when given. Returns ``(pos, neg, layout, rows)``."""
        rows = self.R * self.nax
        lay = self.layout(w, rows)
        pos, neg = self._cols_buffers(lay, rows)
        self.kern.zcols(tau, self.freqs[fsl], self.df, self.reseed, Ab[fsl],
                        self.beam_index, w, lay[0], lay[1], lay[2], lay[3], lay[4], e_out,
                        pos, neg)
        return pos, neg, lay, self.R

    def herk_units_e(self, e: Any, w: Any, k0: int = 0) -> tuple:
        """As :meth:`herk_units` from given phasors (one feed, no beam); ``e`` and ``w``
        may be a slice of channels starting at channel ``k0`` of the block."""
        lay = self.layout(w, self.na)
        pos, neg = self._cols_buffers(lay, self.na)
        self.kern.ecols(e, w, *lay, pos, neg)
        return pos, neg, lay, self.na, k0

    def source_blocks(self, nup: int, grad: bool = False) -> list:
        """Slices of at most :data:`SRC_BLOCK` sources (:data:`GRAD_SRC_BLOCK` with
        ``grad``; one empty slice when none): the fused kernel's working set stays in
        cache and the ZHERK updates accumulate."""
        size = GRAD_SRC_BLOCK if grad else SRC_BLOCK
        if nup == 0:
            return [slice(0, 0)]
        return [slice(i, min(i + size, nup)) for i in range(0, nup, size)]

    def herk_sum(self, units_iter: Any, nfc: int, alpha: float, out: Any) -> Any:
        """``alpha sum (U+ U+^H - U- U-^H)`` over the units (one per source block), per
        channel, read at the baselines into ``out`` (Nfeed, Nfeed, Nf_blk, Nbl)."""
        xp = self.xp
        cs: list = [None] * nfc
        for pos, neg, lay, R, *k0 in units_iter:
            npos, nneg, offp, offn = (_host(a) for a in lay[1:])
            ncol = self.nax if R == self.R else 1
            k0 = k0[0] if k0 else 0
            for k in range(npos.shape[0]):
                for buf, off, m, sgn in ((pos, offp, npos, 1.0), (neg, offn, nneg, -1.0)):
                    mk = int(m[k]) * ncol
                    if mk:
                        o = int(off[k])
                        cs[k0 + k] = _herk(xp, sgn * alpha,
                                           buf[o:o + R * mk].reshape(R, mk), cs[k0 + k])
        R = self.R
        C = self.buffer("C", (nfc, R * R), self.cdtype)
        for k in range(nfc):   # column-major flat: C[k][i + j R] = c[i, j]
            C[k] = 0 if cs[k] is None else cs[k].ravel(order="F")
        vals = xp.take(C, self._up_t(), axis=1)
        vals = xp.where(self.up_swap[None, :], vals, xp.conj(vals)) + 0j   # no -0 imag
        out[...] = xp.moveaxis(vals.reshape(nfc, self.nfeed, self.nfeed, self.nbl), 0, 2)
        return out

    def _up_t(self) -> Any:
        """Column-major flat indices ``lo + hi R`` of the upper-triangle reads."""
        if not hasattr(self, "_up_t_idx"):
            n = self.na * self.nfeed
            lo, hi = np.divmod(_host(self.up_flat), n)
            self._up_t_idx = asarray(hi * n + lo, self.xp)
        return self._up_t_idx

    def upper_scatter(self, dV: Any, nfc: int) -> Any:
        """``D'`` (Nf_blk, R, R), upper triangular, with ``z^H (D + D^H) z = 2 Re z^H D' z``
        for every ``z``: the baselines' ``dV`` at (min, max) of (r1, r2), conjugated where
        ``r1 > r2`` (repeated baselines add); ``dV`` is (Nfeed, Nfeed, Nf_blk, Nbl)."""
        xp = self.xp
        R = self.R
        vals = xp.moveaxis(dV, 2, 0).reshape(nfc, -1)
        vals = xp.where(self.up_swap[None, :], xp.conj(vals), vals)
        D = xp.zeros((nfc, R * R), dtype=self.cdtype)
        scatter_add(D, self.up_flat, vals, axis=1)
        return D.reshape(nfc, R, R)

    def qform_units(self, e: Any, D: Any) -> Any:
        """``q[f, s] = 2 Re e_s^H D'_f e_s`` (Nf_blk, Nup) from phasors (Nf_blk, Na, Nup) and
        the upper-triangular ``D'`` of :meth:`upper_scatter` (one ZTRMM per channel)."""
        nfc, na, nup = e.shape
        q = self.buffer("q", (nfc, nup), self.rdtype)
        T = self.buffer("T", (1, na, nup), self.cdtype)
        for k in range(nfc):   # one channel at a time: T stays in cache for qform
            T[0] = e[k]
            _trmm(self.xp, D[k], T[0])
            self.kern.qform(e[k:k + 1], T, q[k:k + 1])
        return q

    def nufft(self, w: Any, t: int, out: Any) -> Any:
        """``out[f, bl] = pf sum_s w[f, s] exp(+2 pi i nu b . s_hat / c)`` at time ``t``,
        ``w`` (Nfreq, Nup) real, by type-3 NUFFTs (:func:`.nufft.nufft_vis`)."""
        from .nufft import nufft_vis

        return nufft_vis(self.unique_baselines, _host(self.enu_up[t]), self.freqs_host,
                         _host(w), self.pf, self.nufft_eps, out)

    def nufft_form(self, D: Any, t: int) -> Any:
        """``q[f, s] = 2 Re sum_bl D[f, bl] exp(-2 pi i nu b . s_hat / c)`` (Nfreq, Nup)."""
        from .nufft import nufft_form

        q = np.empty((self.nf, self.nup[t]), dtype=np.float64)
        return nufft_form(self.unique_baselines, _host(self.enu_up[t]), self.freqs_host,
                          _host(D), self.nufft_eps, q)

    def direct(self, I: Any, A6: Any, pos: Any, out: Any) -> Any:
        """Forward by the direct sum (one feed): fills ``out`` (Ntimes, Nfreq, Nbl)."""
        xp = self.xp
        for t in range(self.nt):
            idx = self.up_idx[t]
            delay = xp.matmul(pos[self.ant2] - pos[self.ant1], self.enu_up[t]) / C_LIGHT
            At = xp.ascontiguousarray(xp.take(A6[:, 0, 0, t], idx, axis=1))
            It = xp.ascontiguousarray(xp.take(I, idx, axis=0))
            self.kern.direct_sum(It, At, self.b1, self.b2, delay, self.freqs, self.pf,
                                 out[t])
        return out


def _herk(xp: Any, alpha: float, U: Any, c: Any) -> Any:
    """``c + alpha conj(U) U^T`` (R, R): upper triangle of a Fortran-ordered result by
    ZHERK/CHERK on NumPy (the full product on other backends)."""
    if xp is np:
        from scipy.linalg import blas

        herk = blas.zherk if U.dtype == np.complex128 else blas.cherk
        if c is None:
            return herk(alpha, U.T, trans=2)
        return herk(alpha, U.T, beta=1.0, c=c, trans=2, overwrite_c=1)
    r = alpha * xp.matmul(xp.conj(U), U.T)
    return r if c is None else c + r


def _trmm(xp: Any, D: Any, T: Any) -> Any:
    """``T <- D T`` in place, ``D`` (R, R) upper triangular (C order), ``T`` (R, C) C order:
    ZTRMM/CTRMM on NumPy as ``T^T <- T^T D^T`` (``D.T``, ``T.T`` are Fortran views)."""
    if xp is np:
        from scipy.linalg import blas

        trmm = blas.ztrmm if T.dtype == np.complex128 else blas.ctrmm
        r = trmm(1.0, D.T, T.T, side=1, lower=1, overwrite_b=1)
        if not np.shares_memory(r, T):   # pragma: no cover - f2py copied
            T[...] = r.T
        return T
    T[...] = xp.matmul(xp.triu(D), T)
    return T


def _host(a: Any) -> Any:
    return a.get() if type(a).__module__.startswith("cupy") else a
