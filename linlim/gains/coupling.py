"""Mutual coupling between antennas: ``V -> (I + E) V (I + E)^H`` per time and channel.

Signal scattered off (or re-radiated by) antenna ``k`` and picked up by antenna ``i``
adds ``E_ik`` times antenna ``k``'s voltage to antenna ``i``'s, so the correlation matrix
of the array, the Hermitian antenna-by-antenna visibility matrix ``V`` (``V_ij`` the
visibility of baseline ``(i, j)``, ``V_ji = conj(V_ij)``, autos on the diagonal), becomes::

    V' = (I + E) V (I + E)^H = V + E V + V E^H + E V E^H

with ``E`` (Nant, Nant, Nfreq) complex. The last term is second order in the coupling and
can be left out (``second_order=False``). A reflection that travels from antenna ``j`` to
antenna ``i`` is delayed by ``|x_i - x_j| / c``, and its amplitude falls off with the
separation; the physical forms

* :class:`CouplingPowerLaw`: ``E_ij(nu) = a (d_ij / x0)^(-p) exp(-2 pi i nu d_ij / c)``,
  two real parameters ``(a, p)``;
* :func:`coupling_pair_model`: one free complex amplitude per antenna pair,
  ``E_ij(nu) = E_ji(nu) = c_ij (d_ij / x0)^(-p0) exp(-2 pi i nu d_ij / c)`` (a linear map
  composed of foundation operators),

with ``d_ij = |x_i - x_j|`` and ``E_ii = 0``, carry that delay. In a coupled baseline the
term ``E_ij V_jj`` (the bright auto-correlation of antenna ``j`` leaking in) is therefore
a copy of a spectrally smooth signal at delay ``-d_ij / c``, and ``V_ii conj(E_ji)`` one at
``+d_ij / c``: the classic coupling bump at the baseline's own geometric delay.

Examples
--------
>>> import numpy as np
>>> from linlim.gains.coupling import CouplingPowerLaw, MutualCoupling
>>> pos = np.array([[0.0, 0, 0], [14.6, 0, 0], [0, 14.6, 0]])
>>> freqs = np.linspace(100e6, 120e6, 4)
>>> E = CouplingPowerLaw(pos, freqs)(np.array([1e-2, 1.0]))
>>> E.shape
(3, 3, 4)
>>> a1, a2 = np.triu_indices(3)                 # baselines incl. autos
>>> op = MutualCoupling(a1, a2, 3, ntimes=1, nfreqs=4, coupling=E)
>>> op.in_shape, op.out_shape
((1, 4, 6), (1, 4, 6))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import asarray, get_xp
from ..errors import InputError, ShapeError
from ..operators.base import Operator
from ..operators.composite import Composition, FixInput
from ..operators.linear import Diagonal, Reshape, Take, ZeroPad
from ..operators.powerlaw import PowerLaw, power_law_columns
from ..units import SPEED_OF_LIGHT as C_LIGHT

__all__ = ["MutualCoupling", "CouplingPowerLaw", "coupling_pair_model", "pair_separations",
           "C_LIGHT"]



def _check_pairs(ant1: Any, ant2: Any, nants: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    a1 = np.asarray(ant1, dtype=np.int64).ravel()
    a2 = np.asarray(ant2, dtype=np.int64).ravel()
    if a1.shape != a2.shape:
        raise ShapeError(f"{where}: ant1 {a1.shape} and ant2 {a2.shape} must have the same "
                         "shape")
    for name, a in (("ant1", a1), ("ant2", a2)):
        if a.size and (a.min() < 0 or a.max() >= nants):
            raise InputError(f"{where}: {name} must hold antenna indices in [0, {nants}), "
                             f"received {a.min()}..{a.max()}")
    key = np.minimum(a1, a2) * nants + np.maximum(a1, a2)
    if np.unique(key).size != key.size:
        raise InputError(f"{where}: every antenna pair may appear once (as (i, j) or (j, i)); "
                         "the baseline list repeats a pair")
    return a1, a2


def pair_separations(antpos: Any) -> np.ndarray:
    """Antenna separations ``d_ij = |x_i - x_j|``, shape (Nant, Nant), metres.

    Parameters
    ----------
    antpos : array, shape (Nant, D), float, metres (ENU)
    """
    pos = np.asarray(antpos, dtype=np.float64)
    if pos.ndim != 2:
        raise ShapeError(f"antpos must have shape (Nant, D), received {pos.shape}")
    return np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))


class MutualCoupling(Operator):
    """Coupled visibilities ``V' = V + E V + V E^H [+ E V E^H]`` on a baseline list.

    Parameters
    ----------
    ant1, ant2 : array of int, shape (Nbl,)
        Antenna indices (``0 .. Nant-1``) of each baseline; each unordered pair at most once.
        Auto-correlations ``(a, a)`` should be included: the coupling mixes the bright autos
        into the cross-correlations. Missing pairs are treated as zero visibility.
    nants : int
    ntimes, nfreqs : int
    coupling : array, shape (Nant, Nant, Nfreq), complex, optional
        Fixed coupling matrix; the input is then the visibilities alone.
    vis : array, shape (Ntimes, Nfreqs, Nbl), complex, optional
        Fixed (uncoupled) visibilities; the input is then the coupling matrix alone.
        Without ``coupling`` and ``vis`` the input is the pair ``(E, V)``. With one of
        them the result is ``FixInput(MutualCoupling(...), 0 or 1, value)``
        (:class:`~linlim.operators.FixInput`), not a mode of this class.
    second_order : bool
        Include ``E V E^H`` (default True; then ``V' = (I + E) V (I + E)^H`` exactly).
    dtype : complex dtype

    Notes
    -----
    The full matrix is ``M = H(V)``: ``M[a1, a2] = V_b``, ``M[a2, a1] = conj(V_b)`` for
    cross baselines, ``M[a, a] = V_b`` for autos (R-linear). With ``s = 1`` (second order)
    or ``0``, ``P = I + s E`` and ``M' = M + E M + (M + s E M) E^H``, the output is
    ``y_b = M'[a1, a2]``. Per time and channel (``E`` acts on every time)::

        dM' = dE M P^H + P M dE^H + dM + E dM + (dM + s E dM) E^H            (jvp)

    Under ``<X, Y> = Re tr(X^H Y)``, ``<dE M P^H, W> = Re tr(dE^H W P M^H)`` and
    ``<P M dE^H, W> = Re tr(dE^H W^H P M)``, so with ``W[a1, a2] = w_b`` (zeros
    elsewhere)::

        dE = sum_t (W P M^H + W^H P M)
        dM = W + E^H W + (W + s E^H W) E
        dV_b = dM[a1, a2] + conj(dM[a2, a1])   (cross),   dM[a, a]   (autos)  (vjp)
    """

    _abstract = False

    def __new__(cls, ant1: Any, ant2: Any, nants: int, ntimes: int, nfreqs: int, *,
                coupling: Any = None, vis: Any = None, second_order: bool = True,
                dtype: Any = np.complex128, xp: Any = None) -> Operator:
        if coupling is not None and vis is not None:
            raise InputError("MutualCoupling: give at most one of coupling= and vis= (with "
                             "both fixed there is nothing to differentiate)")
        if coupling is None and vis is None:
            return super().__new__(cls)
        # a fixed E or V is the generic "fix an input" composite, not a mode in here
        full = cls(ant1, ant2, nants, ntimes, nfreqs, second_order=second_order,
                   dtype=dtype, xp=xp)
        index, value, name = (0, coupling, "coupling") if vis is None else (1, vis, "vis")
        value = asarray(value, full.xp, dtype=full.out_dtype)
        if tuple(value.shape) != full.in_shape[index]:
            axes = "(Nant, Nant, Nfreq)" if index == 0 else "(Ntimes, Nfreqs, Nbl)"
            raise ShapeError(f"MutualCoupling: {name} must have shape {axes} = "
                             f"{full.in_shape[index]}, received {tuple(value.shape)}")
        return FixInput(full, index, value, name=name)

    def __init__(self, ant1: Any, ant2: Any, nants: int, ntimes: int, nfreqs: int, *,
                 coupling: Any = None, vis: Any = None, second_order: bool = True,
                 dtype: Any = np.complex128, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        dtype = np.dtype(dtype)
        if dtype.kind != "c":
            raise InputError(f"MutualCoupling: dtype must be complex, received {dtype}")
        n = int(nants)
        a1, a2 = _check_pairs(ant1, ant2, n, "MutualCoupling")
        eshape = (n, n, int(nfreqs))
        vshape = (int(ntimes), int(nfreqs), a1.size)
        super().__init__((eshape, vshape), vshape, (dtype, dtype), dtype, xp,
                         name="MutualCoupling")
        self.nants, self.s = n, 1.0 if second_order else 0.0
        self.second_order = bool(second_order)
        self.ant1, self.ant2 = asarray(a1, xp), asarray(a2, xp)
        cross = a1 != a2
        self._c1, self._c2 = asarray(a1[cross], xp), asarray(a2[cross], xp)
        self._cross = asarray(cross, xp)
        self.eshape, self.vshape = eshape, vshape

    # -- helpers: V <-> full matrix, E layout --------------------------------------------
    def _matrix(self, V: Any) -> Any:
        """``M = H(V)``, shape (Nt, Nf, Nant, Nant)."""
        nt, nf, _ = V.shape
        M = self.xp.zeros((nt, nf, self.nants, self.nants), dtype=V.dtype)
        M[..., self.ant1, self.ant2] = V
        M[..., self._c2, self._c1] = V[..., self._cross].conj()
        return M

    def _matrix_adjoint(self, G: Any) -> Any:
        """``H^H``: ``dV_b = G[a1, a2] + conj(G[a2, a1])`` (cross) or ``G[a, a]`` (autos)."""
        dV = G[..., self.ant1, self.ant2]
        dV[..., self._cross] += G[..., self._c2, self._c1].conj()
        return dV

    def _pick_adjoint(self, w: Any) -> Any:
        """Adjoint of ``y_b = M'[a1, a2]``: ``W[a1, a2] = w_b``, zeros elsewhere."""
        nt, nf, _ = w.shape
        W = self.xp.zeros((nt, nf, self.nants, self.nants), dtype=w.dtype)
        W[..., self.ant1, self.ant2] = w
        return W

    def _emat(self, E: Any) -> Any:
        """(Nant, Nant, Nf) -> (Nf, Nant, Nant), broadcasting against (Nt, Nf, N, N)."""
        return self.xp.moveaxis(E, -1, 0)

    @staticmethod
    def _h(X: Any) -> Any:
        return X.conj().swapaxes(-1, -2)

    def _apply(self, Ef: Any, M: Any) -> Any:
        EM = Ef @ M
        return M + EM + (M + self.s * EM) @ self._h(Ef)

    # -- forward / jvp / vjp, adjacent ---------------------------------------------------
    def _forward(self, x: Any) -> Any:
        E, V = x
        Mp = self._apply(self._emat(E), self._matrix(V))
        return Mp[..., self.ant1, self.ant2]

    def _jvp(self, x: Any, dx: Any) -> Any:
        return self._jvp_parts(x, dx, (True, True))

    def _vjp(self, x: Any, w: Any) -> Any:
        return self._vjp_parts(x, w, (True, True))

    def _jvp_parts(self, x: Any, dx: Any, needed: tuple) -> Any:
        (E, V), (dE, dV) = x, dx
        Ef = self._emat(E)
        out = 0
        if needed[1]:                                  # dM + E dM + (dM + s E dM) E^H
            out = self._apply(Ef, self._matrix(dV))
        if needed[0]:                                  # dE M P^H + P M dE^H
            M = self._matrix(V)
            P = self.s * Ef + self.xp.eye(self.nants, dtype=Ef.dtype)
            dEf = self._emat(dE)
            out = out + dEf @ M @ self._h(P) + P @ M @ self._h(dEf)
        return out[..., self.ant1, self.ant2]

    def _vjp_parts(self, x: Any, w: Any, needed: tuple) -> Any:
        E, V = x
        Ef = self._emat(E)
        W = self._pick_adjoint(w)
        dE = dV = None
        if needed[0]:                                  # dE = sum_t (W P M^H + W^H P M)
            M = self._matrix(V)
            P = self.s * Ef + self.xp.eye(self.nants, dtype=Ef.dtype)
            G = W @ P @ self._h(M) + self._h(W) @ P @ M
            dE = self.xp.moveaxis(G.sum(axis=0), 0, -1)
        if needed[1]:                                  # W + E^H W + (W + s E^H W) E
            EhW = self._h(Ef) @ W
            dV = self._matrix_adjoint(W + EhW + (W + self.s * EhW) @ Ef)
        return dE, dV


class CouplingPowerLaw(Composition):
    """Power-law coupling ``E_ij(nu) = a (d_ij / x0)^(-p) exp(-2 pi i nu d_ij / c)``.

    Input ``(a, p)`` float64 (dimensionless amplitude at ``x0`` and fall-off exponent);
    output ``E`` complex128 ``(Nant, Nant, Nfreq)`` with ``E_ii = 0``.

    Parameters
    ----------
    antpos : array, shape (Nant, D), metres
        Antenna positions (ENU).
    freqs : array, shape (Nfreq,), Hz
    x0 : float, optional
        Reference separation (metres) at which the amplitude is ``a``; default the
        shortest separation.
    phase : complex, optional
        Fixed unit-modulus (or any) complex factor on every coefficient (the reflection's
        phase), default 1.

    Notes
    -----
    Composed, not hand-derived: the shared :class:`~linlim.operators.PowerLaw`
    ``a exp(p L')`` over the antenna pairs with ``L' = -log(d_ij / x0)`` (0 on the
    diagonal), reshaped to ``(Nant, Nant, 1)`` and multiplied by the fixed delay phasor
    ``phase exp(-2 pi i nu d / c)`` (zero on the diagonal) as a
    :class:`~linlim.operators.Diagonal`.
    """

    _abstract = False

    def __init__(self, antpos: Any, freqs: Any, *, x0: float | None = None,
                 phase: complex = 1.0, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        d = pair_separations(antpos)
        nu = np.asarray(freqs, dtype=np.float64).ravel()
        n = d.shape[0]
        off = ~np.eye(n, dtype=bool)
        if np.any(d[off] <= 0):
            raise InputError("CouplingPowerLaw: two antennas share a position (separation 0)")
        x0 = float(d[off].min()) if (x0 is None and n > 1) else float(x0 or 1.0)
        if not x0 > 0:
            raise InputError(f"CouplingPowerLaw: x0 must be > 0 metres, received {x0}")
        L = np.where(off, np.log(np.where(off, d, 1.0) / x0), 0.0)
        ph = complex(phase) * np.exp(-2j * np.pi * nu[None, None, :] * d[:, :, None] / C_LIGHT)
        ph = ph * off[:, :, None]
        law = PowerLaw(*power_law_columns(None, xp), -L.ravel(), name="CouplingFalloff")
        phasor = Diagonal(asarray(ph, xp), in_shape=(n, n, 1), in_dtype=np.float64, xp=xp)
        super().__init__(phasor @ Reshape((1, n * n), (n, n, 1), np.float64, xp=xp), law)
        self.name = "CouplingPowerLaw"
        self.x0 = x0


def coupling_pair_model(antpos: Any, freqs: Any, *, exponent: float = 0.0,
                        x0: float | None = None, xp: Any = None) -> Operator:
    """Free complex amplitude per antenna pair, delayed by the separation (linear).

    ``E_ij(nu) = E_ji(nu) = c_k (d_ij / x0)^(-exponent) exp(-2 pi i nu d_ij / c)`` for the
    pair ``k = (i, j)``, ``i < j`` (``numpy.triu_indices(Nant, 1)`` order), ``E_ii = 0``.
    Composed as ``Diagonal(falloff * phasor) @ Reshape @ Take @ ZeroPad`` (the pad supplies
    the zero that ``Take`` copies onto the diagonal), so the adjoint is exact by
    construction.

    Parameters
    ----------
    antpos : array, shape (Nant, D), metres
    freqs : array, shape (Nfreq,), Hz
    exponent : float
        Fixed fall-off exponent ``p0`` (0: the amplitudes alone carry the fall-off).
    x0 : float, optional
        Reference separation, default the shortest.

    Returns
    -------
    LinearOperator
        complex128 ``(Nant (Nant - 1) / 2,)`` -> complex128 ``(Nant, Nant, Nfreq)``.
    """
    xp = get_xp() if xp is None else xp
    d = pair_separations(antpos)
    nu = np.asarray(freqs, dtype=np.float64).ravel()
    n = d.shape[0]
    if n < 2:
        raise InputError("coupling_pair_model: needs at least two antennas")
    i, j = np.triu_indices(n, 1)
    npair = i.size
    if np.any(d[i, j] <= 0):
        raise InputError("coupling_pair_model: two antennas share a position (separation 0)")
    x0 = float(d[i, j].min()) if x0 is None else float(x0)
    index = np.full((n, n), npair, dtype=np.int64)     # the padded zero
    index[i, j] = index[j, i] = np.arange(npair)
    off = ~np.eye(n, dtype=bool)
    fall = np.where(off, (np.where(off, d, x0) / x0) ** (-float(exponent)), 0.0)
    diag = fall[:, :, None] * np.exp(-2j * np.pi * nu[None, None, :] * d[:, :, None] / C_LIGHT)
    c = np.complex128
    pad = ZeroPad((npair,), [(0, 1)], c, xp=xp)
    take = Take((npair + 1,), index.ravel(), axis=0, dtype=c, xp=xp)
    shape = Reshape((n * n,), (n, n, 1), c, xp=xp)
    phasor = Diagonal(diag, in_shape=(n, n, 1), in_dtype=c, xp=xp)
    op = phasor @ shape @ take @ pad
    op.name = "CouplingPairModel"
    return op
