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
           "memory_estimate", "check_memory", "SpectralBlockInverse",
           "structured_preconditioner", "structured_memory_estimate", "prior_matvec"]

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
        K *= obs.gain_products(gains)[None, None, :, None]
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
    """What :func:`linear_response` reads of ``obs``, restricted to baselines ``first``
    (no ``gain_products``: pass it with ``gains=None``, the response per redundant group
    without gains)."""
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
        ref = ref * obs.gain_products(gains)
    got = np.einsum("tfbp,pf->tfb", K, x, optimize=True)
    if inverse is not None:
        got = got[:, :, inverse]
        if gains is not None:
            got = got * obs.gain_products(gains)
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
        Ks *= obs.gain_products(gains)[None, None, :, None]
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


def check_memory(need: int, where: str, limit: int | None = None, route: str = "dense"
                 ) -> None:
    """Refuse (InputError) a configuration needing more than the available memory
    (``route``: "dense", the dense Fisher route, or "structured", the matrix-free MAP)."""
    have = _available_bytes() if limit is None else int(limit)
    if need > have:
        hint = ("reduce the signal pixels or modes, or set fisher: none (MAP only)"
                if route == "dense" else "reduce the signal pixels, channels or times")
        what = ("the dense Fisher route" if route == "dense"
                else "the structured Gauss-Newton route (fisher: none)")
        raise InputError(f"{where}: this configuration needs about {need / 2**30:.1f} GiB "
                         f"of memory for {what}, but only {have / 2**30:.1f} GiB is "
                         f"available; {hint}")


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

    def component_block(self, i: int, j: int) -> np.ndarray:
        """Dense block of linear components ``i`` x ``j`` (their order in ``linear``),
        ``(npix_i * nm_i, npix_j * nm_j)``, coefficients pixel-major (``O(Nf n_i n_j)``)."""
        _sl, El, pl = self.linear[i]
        _sm, Em, pm = self.linear[j]
        W = np.einsum("fa,fb->fab", El, Em).reshape(El.shape[0], -1)
        X = self.M[:, pl, pm].reshape(self.M.shape[0], -1)
        R = (W.T @ X).reshape(El.shape[1], Em.shape[1], pl.stop - pl.start,
                              pm.stop - pm.start)
        return R.transpose(2, 0, 3, 1).reshape((pl.stop - pl.start) * El.shape[1],
                                               (pm.stop - pm.start) * Em.shape[1])

    def linear_block(self) -> np.ndarray:
        """Dense linear x linear block (n_linear, n_linear), linear-block order."""
        k = len(self.linear)
        return np.concatenate([np.concatenate([self.component_block(i, j) for j in range(k)],
                                              axis=1) for i in range(k)], axis=0)

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
    gg = np.ones(nbl, complex) if gains is None else obs.gain_products(gains)
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


def prior_matvec(prior: Any, v: np.ndarray) -> np.ndarray:
    """``H_prior v`` for a :class:`~linlim.pipelines.power.PriorHessian` (its ``diag`` and
    small dense ``blocks``), without forming a matrix; ``v`` is (n,) or columns (n, C)."""
    v = np.asarray(v, float)
    out = (prior.diag * v.T).T
    for idx, B in prior.blocks:
        out[idx] += B @ v[idx]
    return out


class SpectralBlockInverse:
    """Approximate inverse of one linear component's block of the Gauss-Newton Hessian,
    ``A = lam I + E^T blockdiag_f(M_f) E`` (coefficients ``(Npix, Nm)``, pixel-major), by
    per-channel solves.

    The component's per-pixel spectra are ``T[p] = E x[p]``. Were ``E`` square
    (``Nm = Nf``) with ``E E^T = diag(sigma_f^2)``, then exactly
    ``A^-1 = Z^T (lam diag(1/sigma_f^2) + M)^-1 Z`` with ``Z = diag(1/sigma_f^2) E``: one
    ``Npix x Npix`` inverse per channel. With fewer modes than channels (a k_par cut) the
    same formula, with ``Z = W E (E^T W E)^-1`` (``W = diag(1/sigma_f^2)``, so
    ``Z^T E = I``), is the exact inverse of the Hessian of the component completed with the
    left-out modes (prior variance ``sigma_f^2`` per channel) restricted to the kept ones:
    symmetric positive definite, and off only for the kept modes the channel dependence of
    ``M_f`` couples to the cut ones.

    Parameters
    ----------
    M : ndarray (Nf, Npix, Npix)
        ``2 Re sum w conj(K) K`` per channel over this component's pixels.
    E : ndarray (Nf, Nm)
        Spectral matrix (Jy per pixel per unit coefficient).
    sigma_f : ndarray (Nf,)
        Prior standard deviation (Jy per pixel per unit ``lam^-1/2``) of the spectrum at
        each channel were every mode kept: for ``E = diag(d) U s`` (``U`` orthonormal
        columns, ``s`` scalar), ``d s``.
    lam : float
        Prior precision of each coefficient (1 when whitened).
    """

    def __init__(self, M: np.ndarray, E: np.ndarray, sigma_f: np.ndarray, lam: float) -> None:
        import scipy.linalg as sla

        E = np.asarray(E, float)
        sigma_f = np.asarray(sigma_f, float)
        nf, npix, _ = M.shape
        if E.shape[0] != nf or sigma_f.shape != (nf,) or not np.all(sigma_f > 0):
            raise InputError(f"SpectralBlockInverse: expected E ({nf}, Nm) and sigma_f "
                             f"({nf},) > 0, received E {E.shape}, sigma_f {sigma_f.shape}")
        if not lam > 0:
            raise InputError(f"SpectralBlockInverse: prior precision lam: expected > 0, "
                             f"received {lam!r}")
        w = 1.0 / sigma_f**2
        WE = w[:, None] * E
        self.Z = np.ascontiguousarray(sla.solve(E.T @ WE, WE.T, assume_a="pos").T)  # (Nf, Nm)
        self.npix, self.nm = npix, E.shape[1]
        Ainv = np.empty((nf, npix, npix))
        potrf, potri = sla.lapack.dpotrf, sla.lapack.dpotri
        iu = np.triu_indices(npix, 1)
        for f in range(nf):
            A = M[f] + lam * w[f] * np.eye(npix)
            c, info = potrf(A, lower=False)
            if info != 0:
                raise RuntimeError(f"SpectralBlockInverse: channel {f} block is not positive "
                                   f"definite (dpotrf info {info})")
            inv, info = potri(c, lower=False)
            inv[(iu[1], iu[0])] = inv[iu]
            Ainv[f] = inv
        self.Ainv = Ainv

    @property
    def nbytes(self) -> int:
        return int(self.Ainv.nbytes + self.Z.nbytes)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """``P X`` for ``X`` (Npix * Nm,) or (k, Npix * Nm)."""
        X = np.asarray(X, float)
        one = X.ndim == 1
        Xr = X.reshape(-1, self.npix, self.nm)
        T = (Xr @ self.Z.T).transpose(2, 1, 0)                   # (Nf, Npix, k)
        Y = np.matmul(self.Ainv, T).transpose(2, 1, 0)           # (k, Npix, Nf)
        out = (Y @ self.Z).reshape(Xr.shape[0], -1)
        return out[0] if one else out


def structured_preconditioner(SF: StructuredFisher, prior: Any,
                              spectral: dict[int, np.ndarray], *, linear_only: bool = False
                              ) -> Any:
    """A :class:`~linlim.inference.preconditioners.SchurPreconditioner` for the Gauss-Newton
    Hessian ``F + H_prior`` from its structure, without any ``n x n`` matrix.

    The linear components listed in ``spectral`` (index in ``SF.linear`` -> ``sigma_f``)
    form the large block, approximately inverted per channel
    (:class:`SpectralBlockInverse`; one per component, their mutual coupling left out);
    everything else (point sources, beam, gains, few-mode components such as the diffuse
    foreground) is the small block, kept dense and coupled exactly through the Schur
    complement.

    Parameters
    ----------
    SF : StructuredFisher
    prior : PriorHessian
        Its diagonal must be constant over each large component (a whitened prior) and its
        dense blocks must not touch them.
    spectral : dict
        ``{component index: sigma_f (Nf,)}`` (see :class:`SpectralBlockInverse`).
    linear_only : bool
        Precondition the linear block alone (the non-linear parameters held fixed): the
        preconditioner then acts on ``theta[sort(SF.linear_index)]``.

    Returns
    -------
    SchurPreconditioner
        With ``blocks`` (the SpectralBlockInverse objects) attached.
    """
    from ..inference.preconditioners import SchurPreconditioner

    n = SF.n
    big_parts, inverses = [], []
    for i, sigma_f in sorted(spectral.items()):
        if not 0 <= i < len(SF.linear):
            raise InputError(f"structured_preconditioner: spectral component index: expected "
                             f"0..{len(SF.linear) - 1}, received {i}")
        sl, E, pl = SF.linear[i]
        idx = np.arange(sl.start, sl.stop)
        lam = prior.diag[idx]
        if np.ptp(lam) > 1e-12 * abs(lam).max() or any(np.isin(b, idx).any()
                                                         for b, _ in prior.blocks):
            raise InputError("structured_preconditioner: the prior of a spectral component "
                             "must be a constant diagonal (whitened coefficients)")
        inverses.append(SpectralBlockInverse(SF.M[:, pl, pl], E, sigma_f, float(lam[0])))
        big_parts.append(idx)
    big = np.concatenate(big_parts) if big_parts else np.zeros(0, np.int64)
    sizes = [p.size for p in big_parts]

    def apply_big(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, float)
        if not inverses:
            return X.copy()
        parts = np.split(X, np.cumsum(sizes)[:-1], axis=-1)
        return np.concatenate([inv(p) for inv, p in zip(inverses, parts)], axis=-1)

    # positions of every linear coefficient in SF.cross's columns (linear-block order)
    lin_pos = np.full(n, -1)
    lin_pos[SF.linear_index] = np.arange(SF.linear_index.size)
    nl = np.zeros(0, np.int64) if linear_only else SF.nonlinear
    small_lin = [i for i in range(len(SF.linear)) if i not in spectral]
    small_order = np.concatenate([nl] + [np.arange(SF.linear[i][0].start, SF.linear[i][0].stop)
                                         for i in small_lin]).astype(np.int64)
    # C = H[small, small], B = H[small, big] (rows in small_order, then permuted to `small`)
    C = np.zeros((small_order.size, small_order.size))
    B = np.zeros((small_order.size, big.size))
    nn = nl.size
    if nn:
        C[:nn, :nn] = SF.Fnn
    off = nn
    row_of = {}
    for i in small_lin:
        sl = SF.linear[i][0]
        row_of[i] = slice(off, off + sl.stop - sl.start)
        off += sl.stop - sl.start
    for i in small_lin:
        ri = row_of[i]
        cols = lin_pos[np.arange(SF.linear[i][0].start, SF.linear[i][0].stop)]
        C[:nn, ri] = SF.cross[:nn, cols]
        C[ri, :nn] = SF.cross[:nn, cols].T
        for j in small_lin:
            C[ri, row_of[j]] = SF.component_block(i, j)
    B[:nn] = SF.cross[:nn, lin_pos[big]]
    boff = 0
    for j, sz in zip(sorted(spectral), sizes):
        for i in small_lin:
            B[row_of[i], boff:boff + sz] = SF.component_block(i, j)
        boff += sz
    prior.add_to(C, small_order)
    C = 0.5 * (C + C.T)
    perm = np.argsort(small_order)               # small_order -> ascending `small`
    space = np.sort(SF.linear_index) if linear_only else np.arange(n)
    pos = np.full(n, -1)
    pos[space] = np.arange(space.size)
    pc = SchurPreconditioner(space.size, pos[big], pos[small_order[perm]], apply_big,
                             C[np.ix_(perm, perm)], B[perm])
    pc.blocks = inverses
    return pc


def structured_memory_estimate(vis_shape: tuple, n_unique: int, n_pix: int, n_big_pix: int,
                               n_nonlinear: int, n_sources: int, n_small: int, n_big: int
                               ) -> int:
    """Bytes the structured (matrix-free) Gauss-Newton route needs at its peak, the larger
    of its two phases plus the visibilities it keeps (data, model, residual):

    * the Hessian build: the response ``K`` per redundant group with its real and weighted
      copies, the non-linear Jacobian columns and their weighted copy, the point sources'
      visibilities, and ``M`` (``Nf x P x P``);
    * the preconditioner: ``M``, the per-channel inverses of the large block, the Schur
      coupling ``B`` with ``P B^T``, and their per-channel workspace.

    No ``n x n`` matrix. (Measured on the shipped large config: 3.1 GiB peak resident for
    an estimate of 4.0 GiB.)"""
    nt, nf, nbl = vis_shape
    nvis = nt * nf * nbl
    m = 8 * nf * n_pix**2
    build = 16 * 3 * nt * nf * n_unique * n_pix + 16 * nvis * (2 * n_nonlinear + n_sources) + m
    precond = (m + 8 * nf * n_big_pix**2 + 2 * 8 * n_small * n_big
               + 3 * 8 * n_small * n_big_pix * nf)
    return int(max(build, precond) + 16 * 8 * nvis)
