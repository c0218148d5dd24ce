"""The joint model's Fisher matrix built from its structure, not column by column.

The linear sky components (signal, diffuse; :class:`~linlim.pipelines.joint.LinearComponent`)
enter the visibilities, at fixed beam and gains, through one dense matrix per (time,
channel)::

    V[t, f, b] = sum_p K[t, f, b, p] I[p, f],   I[p, f] = sum_m x[p, m] E[f, m]
    K[t, f, b, p] = g_i conj(g_j) 1/2 A_p(t, f)^2 exp(2 pi i f (x_j - x_i) . s_p(t) / c)

(the RIME's convention, checked against :class:`~linlim.rime.operator.RIMEIntensity` on every
build). So the linear block of ``F = 2 Re(J^H W J)`` is

    F[(p, a), (q, b)] = sum_f E[f, a] E[f, b] M_f[p, q],   M_f = 2 Re sum_{t,b} w conj(K) K

(one batched GEMM over channels, then one GEMM over mode pairs), its products with any
vector cost ``O(Nf Npix^2)`` (:meth:`StructuredFisher.matvec`), and the cross terms with the
few hundred non-linear parameters (point sources, beam, gains) come from their Jacobian
columns (one jvp each) contracted with ``K``. No column of ``J`` is formed for the
thousands of linear coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..inference.fisher import jacobian_columns
from ..units import SPEED_OF_LIGHT
from .joint import LinearComponent, beam_values

__all__ = ["StructuredFisher", "structured_fisher", "linear_response", "redundant_groups",
           "memory_estimate", "check_memory"]

_C = SPEED_OF_LIGHT


def linear_response(obs: Any, ra: np.ndarray, dec: np.ndarray, ref_freq: float,
                    ripple_delay: float, beam_params: np.ndarray,
                    gains: np.ndarray | None) -> np.ndarray:
    """``K[t, f, b, p]`` (complex128): visibility per Jy at pixel ``p`` (see module doc)."""
    enu, az, za = obs.directions(ra, dec)                       # (Nt, 3, P)
    A = beam_values(obs, az, za, ref_freq, ripple_delay, beam_params)[0]   # (Nt, P, Nf)
    bvec = obs.antpos[obs.ant2] - obs.antpos[obs.ant1]          # (Nbl, 3)
    proj = np.einsum("bi,tip->tbp", bvec, enu)                  # metres
    phase = np.exp(2j * np.pi * obs.freqs[None, :, None, None] / _C * proj[:, None, :, :])
    K = 0.5 * (A**2).transpose(0, 2, 1)[:, :, None, :] * phase  # (Nt, Nf, Nbl, P)
    if gains is not None:
        K *= (gains[obs.ant1] * np.conj(gains[obs.ant2]))[None, None, :, None]
    return K


def redundant_groups(obs: Any, decimals: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Baselines grouped by their vector (metres, rounded to ``decimals``).

    Returns ``first`` (Nu,), one baseline index per group, and ``inverse`` (Nbl,), the group
    of every baseline. With one beam for all antennas, ``K`` without gains depends on the
    baseline only through its vector, so redundant baselines share it.
    """
    bvec = np.round(obs.antpos[obs.ant2] - obs.antpos[obs.ant1], decimals)
    _, first, inverse = np.unique(bvec, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _group_observation(obs: Any, first: np.ndarray) -> SimpleNamespace:
    """What :func:`linear_response` reads of ``obs``, restricted to baselines ``first``."""
    return SimpleNamespace(antpos=obs.antpos, ant1=obs.ant1[first], ant2=obs.ant2[first],
                           freqs=obs.freqs, directions=obs.directions, times_jd=obs.times_jd)


def _check_response(K: np.ndarray, obs: Any, ra: np.ndarray, dec: np.ndarray,
                    ref_freq: float, ripple_delay: float, beam_params: np.ndarray,
                    gains: np.ndarray | None, inverse: np.ndarray | None = None) -> None:
    """One product against the RIME operator (catches a convention drift at once). ``K``
    may be per group of redundant baselines without gains (``inverse``: each baseline's
    group)."""
    from ..rime.operator import RIMEIntensity

    enu, az, za = obs.directions(ra, dec)
    A = beam_values(obs, az, za, ref_freq, ripple_delay, beam_params)
    op = RIMEIntensity(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2, beam=A)
    x = np.random.default_rng(0).standard_normal((ra.size, obs.freqs.size))
    ref = np.asarray(op.matvec(x))
    if gains is not None:
        ref = ref * (gains[obs.ant1] * np.conj(gains[obs.ant2]))
    got = np.einsum("tfbp,pf->tfb", K, x, optimize=True)
    if inverse is not None:
        got = got[:, :, inverse]
        if gains is not None:
            got = got * (gains[obs.ant1] * np.conj(gains[obs.ant2]))
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300)
    if not err < 1e-8:
        raise RuntimeError(f"linear_response: K disagrees with RIMEIntensity (relative "
                           f"error {err:.2e}); the RIME convention changed")


def _nonlinear_columns(post: Any, params: Any, theta: np.ndarray, obs: Any,
                       nonlinear: np.ndarray, sources: tuple, ref_freq: float,
                       ripple_delay: float, beam_params: np.ndarray,
                       gains: np.ndarray | None) -> np.ndarray:
    """``sqrt(w) dV/dtheta_c`` (Nn, Nt, Nf, Nbl) for the non-linear parameters: point
    sources and gains from the structure, anything else by jvp."""
    nt, nf, nbl = obs.shape
    n = theta.size
    cols = np.zeros((nonlinear.size, nt, nf, nbl), complex)
    pos = {int(i): j for j, i in enumerate(nonlinear)}
    done = np.zeros(nonlinear.size, bool)
    ra, dec = sources
    lnS = theta[params.slices["fg_logflux"]]
    alpha = theta[params.slices["fg_index"]]
    x = np.log(obs.freqs / ref_freq)
    I = np.exp(lnS[:, None] + alpha[:, None] * x[None, :])                  # (Ns, Nf)
    first, inverse = redundant_groups(obs)
    Ks = linear_response(_group_observation(obs, first), ra, dec, ref_freq, ripple_delay,
                         beam_params, None)[:, :, inverse, :]       # per redundant group
    if gains is not None:
        Ks *= (gains[obs.ant1] * np.conj(gains[obs.ant2]))[None, None, :, None]
    Vs = Ks * I.T[None, :, None, :]                                        # (Nt, Nf, Nbl, Ns)
    il = np.arange(n)[params.slices["fg_logflux"]]
    ia = np.arange(n)[params.slices["fg_index"]]
    for s_ in range(ra.size):
        cols[pos[int(il[s_])]] = Vs[..., s_]
        cols[pos[int(ia[s_])]] = Vs[..., s_] * x[None, :, None]
        done[pos[int(il[s_])]] = done[pos[int(ia[s_])]] = True
    del Ks, Vs
    if "gains" in params.names:
        V = np.asarray(post.likelihood.model(theta))
        ig = np.arange(n)[params.slices["gains"]].reshape(2, -1)
        for a in range(ig.shape[1]):
            m1 = (obs.ant1 == a).astype(float)
            m2 = (obs.ant2 == a).astype(float)
            cols[pos[int(ig[0, a])]] = V * (m1 + m2)[None, None, :]
            cols[pos[int(ig[1, a])]] = V * (1j * (m1 - m2))[None, None, :]
            done[pos[int(ig[0, a])]] = done[pos[int(ig[1, a])]] = True
    sw = np.sqrt(np.broadcast_to(np.asarray(post.likelihood.w_eff, float), (nt, nf, nbl)))
    cols *= sw[None]
    rest = nonlinear[~done]
    if rest.size:
        cols[~done] = np.asarray(jacobian_columns(post, theta, rest)).reshape(
            rest.size, nt, nf, nbl)
    return cols


def memory_estimate(n_params: int, n_linear_pix: int, n_nonlinear: int, vis_shape: tuple
                    ) -> int:
    """Bytes the dense Fisher route needs: four ``n x n`` float64 matrices (Fisher,
    Cholesky factor, inverse, workspace), ``K`` and its weighted copy, and the non-linear
    Jacobian columns."""
    nvis = int(np.prod(vis_shape))
    return int(8 * 4 * n_params**2 + 16 * 3 * nvis * n_linear_pix
               + 16 * 2 * n_nonlinear * nvis + 8 * vis_shape[1] * n_linear_pix**2 * 2)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_memory(need: int, where: str, limit: int | None = None) -> None:
    """Refuse (InputError) a configuration needing more than the available memory."""
    have = _available_bytes() if limit is None else int(limit)
    if need > have:
        raise InputError(f"{where}: this configuration needs about {need / 2**30:.1f} GiB "
                         f"of memory for the dense Fisher route, but only {have / 2**30:.1f} "
                         "GiB is available; reduce the signal pixels or modes, or set "
                         "fisher: none (MAP only)")


@dataclass
class StructuredFisher:
    """Data part of the joint Fisher matrix ``F = 2 Re(J^H W J)`` at one point.

    Attributes
    ----------
    n : int
    nonlinear : ndarray (Nn,) int
        Indices of the non-linear parameters (sources, beam, gains).
    linear : list of (slice, ndarray (Nf, Nm), slice)
        Per linear component: its slice of ``theta``, its spectral matrix ``E`` and its
        slice of the concatenated pixels.
    M : ndarray (Nf, P, P)
        ``2 Re sum_{t,b} w conj(K) K`` per channel over all linear pixels.
    cross : ndarray (Nn, n_linear)
        Non-linear x linear block (columns in linear-block order).
    Fnn : ndarray (Nn, Nn)
    """

    n: int
    nonlinear: np.ndarray
    linear: list
    M: np.ndarray
    cross: np.ndarray
    Fnn: np.ndarray

    @property
    def linear_index(self) -> np.ndarray:
        return np.concatenate([np.arange(s.start, s.stop) for s, _, _ in self.linear])

    def linear_block(self) -> np.ndarray:
        """Dense linear x linear block (n_linear, n_linear), linear-block order."""
        rows = []
        for _sl, El, pl in self.linear:
            row = []
            for _sm, Em, pm in self.linear:
                W = np.einsum("fa,fb->fab", El, Em).reshape(El.shape[0], -1)
                X = self.M[:, pl, pm].reshape(self.M.shape[0], -1)
                R = (W.T @ X).reshape(El.shape[1], Em.shape[1], pl.stop - pl.start,
                                      pm.stop - pm.start)
                row.append(R.transpose(2, 0, 3, 1).reshape((pl.stop - pl.start) * El.shape[1],
                                                           (pm.stop - pm.start) * Em.shape[1]))
            rows.append(np.concatenate(row, axis=1))
        return np.concatenate(rows, axis=0)

    def dense(self) -> np.ndarray:
        """The full ``n x n`` data Fisher matrix in ``theta`` order."""
        F = np.zeros((self.n, self.n))
        li, nl = self.linear_index, self.nonlinear
        F[np.ix_(li, li)] = self.linear_block()
        F[np.ix_(nl, li)] = self.cross
        F[np.ix_(li, nl)] = self.cross.T
        F[np.ix_(nl, nl)] = self.Fnn
        return 0.5 * (F + F.T)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``F v`` without forming ``F`` (``O(Nf P^2 + Nn n)`` per vector).

        ``v`` is one vector (n,) or a block of ``C`` columns (n, C); a block goes through
        the same products as one batched matrix-matrix product per channel (one pass over
        ``M`` for all columns).
        """
        v = np.asarray(v, float)
        V = v.reshape(self.n, -1)                          # (n, C)
        C = V.shape[1]
        li, nl = self.linear_index, self.nonlinear
        Vl = V[li]
        # coefficients -> per-pixel spectra T[f, q, c], then M_f, then back
        nf, P = self.M.shape[0], self.M.shape[1]
        T = np.zeros((nf, P, C))
        off = 0
        for _sl, E, pl in self.linear:
            nm, npx = E.shape[1], pl.stop - pl.start
            blk = Vl[off:off + npx * nm].reshape(npx, nm, C)
            T[:, pl] = np.matmul(E, blk.transpose(1, 2, 0).reshape(nm, -1)).reshape(
                nf, C, npx).transpose(0, 2, 1)
            off += npx * nm
        U = np.matmul(self.M, T)                           # (nf, P, C)
        out = np.empty((self.n, C))
        off = 0
        ol = np.empty((li.size, C))
        for _sl, E, pl in self.linear:
            nm, npx = E.shape[1], pl.stop - pl.start
            Up = U[:, pl].reshape(nf, npx * C)
            ol[off:off + npx * nm] = (E.T @ Up).reshape(nm, npx, C).transpose(1, 0, 2).reshape(
                npx * nm, C)
            off += npx * nm
        out[li] = ol + self.cross.T @ V[nl]
        out[nl] = self.cross @ Vl + self.Fnn @ V[nl]
        return out.reshape(v.shape)


def structured_fisher(post: Any, params: Any, theta: np.ndarray, obs: Any,
                      components: Sequence[LinearComponent], ref_freq: float,
                      ripple_delay: float, beam_params: np.ndarray,
                      gains: np.ndarray | None, *, check: bool = True,
                      sources: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> StructuredFisher:
    """Build :class:`StructuredFisher` at ``theta``.

    Parameters
    ----------
    post : LogPosterior
        Of the joint model (its Jacobian columns give the non-linear block).
    params : Params
        The model's layout (linear components are blocks named as the components).
    theta : ndarray (n,)
    obs : Observation
    components : sequence of LinearComponent
    ref_freq, ripple_delay : float
    beam_params : ndarray (1, 4)
        The beam at ``theta`` (fitted or held).
    gains : ndarray (Nant,) complex or None
        The gains at ``theta``.
    check : bool
        Compare ``K`` with the RIME operator once.
    sources : (ra, dec), optional
        Point-source positions of the ``fg_logflux``/``fg_index`` blocks: their and the
        gains' Jacobian columns are then formed from the structure too (``dV/d ln S_s`` is
        source ``s``'s own visibility, ``dV/d ln|g_a|`` the visibilities of antenna ``a``'s
        baselines), leaving one jvp per other parameter (the beam); without it every
        non-linear column is one jvp.
    """
    theta = np.asarray(theta, float)
    n = theta.size
    if not components:
        raise InputError("structured_fisher: needs at least one linear component")
    ra = np.concatenate([c.ra for c in components])
    dec = np.concatenate([c.dec for c in components])
    # K per group of redundant baselines, without gains: K_b = g_i conj(g_j) Ku_u(b), so
    # M = 2 Re sum_{t,u} W_u conj(Ku) Ku with W_u = sum_{b in u} w_b |g_i g_j|^2, and the
    # cross block contracts each group's sqrt(w) conj(g_i conj(g_j)) a first
    first, inverse = redundant_groups(obs)
    Ku = linear_response(_group_observation(obs, first), ra, dec, ref_freq, ripple_delay,
                         beam_params, None)
    if check:
        _check_response(Ku, obs, ra, dec, ref_freq, ripple_delay, beam_params, gains,
                        inverse)
    nt, nf, nu, P = Ku.shape
    nbl = inverse.size
    w = np.broadcast_to(np.asarray(post.likelihood.w_eff, float), (nt, nf, nbl))
    gg = np.ones(nbl, complex) if gains is None else gains[obs.ant1] * np.conj(gains[obs.ant2])
    group = np.zeros((nbl, nu))
    group[np.arange(nbl), inverse] = 1.0
    Wu = (w * np.abs(gg) ** 2) @ group                           # (Nt, Nf, Nu)
    # Re(a^H b) = ar.br + ai.bi: one real GEMM on stacked (real, imaginary) rows does the
    # work of a complex GEMM's real part at half the flops, and stays on the BLAS path
    Kf = Ku.transpose(1, 0, 2, 3).reshape(nf, nt * nu, P)
    R = np.concatenate([Kf.real, Kf.imag], axis=1)               # (Nf, 2 Nt Nu, P)
    del Ku, Kf
    sW = np.sqrt(Wu).transpose(1, 0, 2).reshape(nf, nt * nu, 1)
    RW = R * np.concatenate([sW, sW], axis=1)
    M = 2.0 * np.matmul(RW.transpose(0, 2, 1), RW)
    del RW
    linear, start, lin_mask = [], 0, np.zeros(n, bool)
    for comp in components:
        sl = params.slices[comp.name]
        lin_mask[sl] = True
        linear.append((sl, np.asarray(comp.spectral, float), slice(start, start + comp.ra.size)))
        start += comp.ra.size
    nonlinear = np.flatnonzero(~lin_mask)
    if sources is None:
        A = np.asarray(jacobian_columns(post, theta, nonlinear))  # (Nn, Nt*Nf*Nbl), sqrt(w) J
        A = A.reshape(nonlinear.size, nt, nf, nbl)
    else:
        A = _nonlinear_columns(post, params, theta, obs, nonlinear, sources, ref_freq,
                               ripple_delay, beam_params, gains)
    # Re sum_b conj(sqrt(w) gg K) a = Re sum_u conj(Ku) (sum_{b in u} sqrt(w) conj(gg) a)
    Au = (A * (np.sqrt(w) * np.conj(gg))[None]) @ group           # (Nn, Nt, Nf, Nu)
    Au = Au.transpose(2, 0, 1, 3).reshape(nf, nonlinear.size, nt * nu)
    Au = np.concatenate([Au.real, Au.imag], axis=2)              # (Nf, Nn, 2 Nt Nu)
    Y = np.matmul(Au, R)                                         # (Nf, Nn, P)
    del R, Au
    cross = []
    for _sl, E, pl in linear:
        cross.append(2.0 * np.einsum("fcp,fa->cpa", Y[:, :, pl], E, optimize=True).reshape(
            nonlinear.size, -1))
    cross = np.concatenate(cross, axis=1)
    A = A.reshape(nonlinear.size, -1)          # Fnn sums over every sample: order is free
    Fnn = 2.0 * (A.real @ A.real.T + A.imag @ A.imag.T)
    return StructuredFisher(n, nonlinear, linear, M, cross, 0.5 * (Fnn + Fnn.T))
