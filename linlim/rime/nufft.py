"""Type-3 NUFFT evaluation of the RIME for one feed and one (shared) beam.

With identical beams the visibility of baseline ``b = x_j - x_i`` is a non-uniform Fourier
sum over sources, and its adjoint a sum over baselines::

    V_b(nu)  = pf sum_s w_s exp(+2 pi i nu b . s_hat / c),      w_s = I_s |A_s|^2
    q_s(nu)  = 2 Re sum_b D_b exp(-2 pi i nu b . s_hat / c)

(``q_s = e_s^H (D + D^H) e_s``, the Hermitian form the gradients need). Both are one
finufft type-3 transform per (time, channel), on the *unique* baselines (redundant
baselines and their conjugates share a transform), in 2-D when the array is planar
(``b_up = 0``) and 3-D otherwise. finufft (CPU) is an optional dependency
(``pip install linlim[nufft]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BackendError
from ..units import SPEED_OF_LIGHT

__all__ = ["have_finufft", "UniqueBaselines", "nufft_vis", "nufft_form", "grid_size"]

TWO_PI = 2.0 * np.pi
#: Resolution (metres) at which baseline vectors count as equal.
B_TOL = 1e-12


def have_finufft() -> bool:
    """Whether :mod:`finufft` imports."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


def _finufft() -> Any:
    try:
        import finufft
    except ImportError as exc:  # pragma: no cover - exercised only without finufft
        raise BackendError("method: 'nufft' needs the finufft package "
                           "(pip install linlim[nufft])") from exc
    return finufft


class UniqueBaselines:
    """Baselines grouped into unique vectors up to sign.

    Parameters
    ----------
    b : array, shape (Nbl, 3), float64
        Baseline vectors ``x_j - x_i`` in metres.

    Attributes
    ----------
    vec : array, shape (Nu, 3)
        One representative per class (first nonzero component positive).
    inv : array, shape (Nbl,), int
        Class of each baseline.
    flip : array, shape (Nbl,), bool
        ``b = -vec[inv]`` (the visibility is the conjugate).
    planar : bool
        All up components zero (2-D transforms).
    """

    def __init__(self, b: np.ndarray) -> None:
        b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
        key = np.round(b / B_TOL).astype(np.int64)
        first = np.argmax(key != 0, axis=1)
        lead = key[np.arange(key.shape[0]), first]
        flip = lead < 0
        key = np.where(flip[:, None], -key, key)
        classes: dict = {}
        inv = np.empty(b.shape[0], dtype=np.int64)
        rep = []
        for i in range(b.shape[0]):
            k = key[i].tobytes()
            c = classes.get(k)
            if c is None:
                c = classes[k] = len(rep)
                rep.append(-b[i] if flip[i] else b[i])
            inv[i] = c
        self.vec = np.array(rep).reshape(-1, 3)
        self.inv = inv
        self.flip = flip
        self.planar = bool(np.all(self.vec[:, 2] == 0.0))

    @property
    def n(self) -> int:
        return int(self.vec.shape[0])


def grid_size(ub: UniqueBaselines, fmax: float, eps: float) -> float:
    """Approximate fine-grid points of one type-3 transform (for the cost model)."""
    width = max(2.0, np.ceil(-np.log10(eps)) + 1.0)
    ext = np.abs(ub.vec).max(axis=0) * (TWO_PI * fmax / SPEED_OF_LIGHT) if ub.n else np.zeros(3)
    dims = 2 if ub.planar else 3
    g = 1.0
    for d in range(dims):
        g *= 2.0 * 2.0 * ext[d] / np.pi + 2.0 * width
    return g


def nufft_vis(ub: UniqueBaselines, shat: np.ndarray, freqs: np.ndarray, w: np.ndarray,
              scale: float, eps: float, out: np.ndarray) -> np.ndarray:
    """``out[f, bl] = scale sum_s w[f, s] exp(+2 pi i nu_f b_bl . shat_s / c)``.

    Parameters
    ----------
    ub : UniqueBaselines
    shat : array, shape (3, Nup), float64
        Source unit vectors (east, north, up).
    freqs : array, shape (Nf,), Hz
    w : array, shape (Nf, Nup), real
        Source weights.
    scale : float
    eps : float
        finufft tolerance.
    out : array, shape (Nf, Nbl), complex
        Output (returned).
    """
    fin = _finufft()
    c = SPEED_OF_LIGHT
    x, y, z = (np.ascontiguousarray(shat[i], dtype=np.float64) for i in range(3))
    for k in range(freqs.shape[0]):
        kv = ub.vec * (TWO_PI * float(freqs[k]) / c)
        st = np.ascontiguousarray(w[k], dtype=np.complex128)
        if ub.planar:
            fu = fin.nufft2d3(x, y, st, kv[:, 0].copy(), kv[:, 1].copy(), eps=eps, isign=1)
        else:
            fu = fin.nufft3d3(x, y, z, st, kv[:, 0].copy(), kv[:, 1].copy(),
                              kv[:, 2].copy(), eps=eps, isign=1)
        v = fu[ub.inv]
        out[k] = scale * np.where(ub.flip, np.conj(v), v)
    return out


def nufft_form(ub: UniqueBaselines, shat: np.ndarray, freqs: np.ndarray, D: np.ndarray,
               eps: float, out: np.ndarray) -> np.ndarray:
    """``out[f, s] = 2 Re sum_bl D[f, bl] exp(-2 pi i nu_f b_bl . shat_s / c)`` (the
    adjoint of :func:`nufft_vis` with real weights, up to the factor 2).

    Parameters
    ----------
    ub, shat, freqs, eps
        As in :func:`nufft_vis`.
    D : array, shape (Nf, Nbl), complex
    out : array, shape (Nf, Nup), real (returned)
    """
    fin = _finufft()
    c = SPEED_OF_LIGHT
    x, y, z = (np.ascontiguousarray(shat[i], dtype=np.float64) for i in range(3))
    nu = ub.n
    for k in range(freqs.shape[0]):
        # fold baselines onto their class; a flipped one enters conjugated (real part kept)
        d = np.where(ub.flip, np.conj(D[k]), D[k]).astype(np.complex128)
        du = np.zeros(nu, dtype=np.complex128)
        np.add.at(du, ub.inv, d)
        kv = ub.vec * (TWO_PI * float(freqs[k]) / c)
        if ub.planar:
            g = fin.nufft2d3(kv[:, 0].copy(), kv[:, 1].copy(), du, x, y, eps=eps, isign=-1)
        else:
            g = fin.nufft3d3(kv[:, 0].copy(), kv[:, 1].copy(), kv[:, 2].copy(), du, x, y, z,
                             eps=eps, isign=-1)
        out[k] = 2.0 * g.real
    return out
