"""Orthonormal frequency (line-of-sight) modes of the signal bases and their k_parallel.

The lowest ``nk`` DCT-II or real Fourier modes along frequency (:func:`frequency_modes`),
and the line-of-sight wavenumber each one carries (:func:`mode_k_parallel`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .cosmology import _check_freqs, _uniform_spacing, cosmo_scalars

__all__ = ["frequency_modes", "mode_k_parallel"]


def frequency_modes(nfreq: int, nk: int, kind: str = "dct") -> np.ndarray:
    """Lowest ``nk`` orthonormal real modes along frequency.

    Parameters
    ----------
    nfreq : int
        Number of (uniformly spaced) channels.
    nk : int
        Number of modes kept, ``1 <= nk <= nfreq``.
    kind : {"dct", "fourier"}
        ``"dct"``: DCT-II, ``B[n, k] = c_k cos(pi k (n + 1/2) / N)`` with
        ``c_0 = sqrt(1/N)``, ``c_k = sqrt(2/N)``. ``"fourier"``: ``1, cos(2 pi n/N),
        sin(2 pi n/N), cos(4 pi n/N), ...`` normalised to unit norm.

    Returns
    -------
    ndarray, shape (nfreq, nk), float64
        Columns orthonormal: ``B^T B = I``.
    """
    if not (isinstance(nfreq, (int, np.integer)) and nfreq >= 1):
        raise InputError(f"frequency_modes: nfreq must be a positive int, received {nfreq!r}")
    if not (isinstance(nk, (int, np.integer)) and 1 <= nk <= nfreq):
        raise InputError(f"frequency_modes: nk must be an int in [1, {nfreq}], received {nk!r}")
    n = np.arange(nfreq)[:, None]
    if kind == "dct":
        k = np.arange(nk)[None, :]
        B = np.sqrt(2.0 / nfreq) * np.cos(np.pi * k * (n + 0.5) / nfreq)
        B[:, 0] = np.sqrt(1.0 / nfreq)
        return B
    if kind == "fourier":
        cols = []
        for j in range(nk):
            m = (j + 1) // 2
            if j == 0:
                col = np.ones(nfreq)
            elif j % 2 == 1:
                col = np.cos(2 * np.pi * m * n[:, 0] / nfreq)
            else:
                col = np.sin(2 * np.pi * m * n[:, 0] / nfreq)
            cols.append(col / np.linalg.norm(col))
        B = np.stack(cols, axis=1)
        if nk > 1 and not np.allclose(B.T @ B, np.eye(nk), atol=1e-10):
            raise InputError(
                f"frequency_modes: {nk} real Fourier modes are not independent on {nfreq} "
                "channels (a sine at the Nyquist frequency vanishes); use fewer modes"
            )
        return B
    raise InputError(f"frequency_modes: kind must be 'dct' or 'fourier', received {kind!r}")


def _mode_index_wavenumber(nk: int, kind: str) -> np.ndarray:
    """Cycles-per-band index of each mode: DCT mode k -> k/2, Fourier pair m -> m."""
    j = np.arange(nk)
    return j / 2.0 if kind == "dct" else (j + 1) // 2 * 1.0


def mode_k_parallel(freqs: Any, nk: int, kind: str = "dct", cosmo: Any = None) -> np.ndarray:
    """Line-of-sight wavenumber of each frequency mode, Mpc^-1.

    A mode with ``q`` cycles across the band (DCT mode ``k``: ``q = k/2``; Fourier pair
    ``m``: ``q = m``) has ``k_par = 2 pi q / (N dr)`` with ``dr = |dr/dnu| dnu`` the
    comoving channel depth at the band centre (:func:`cosmo_scalars`).

    Parameters
    ----------
    freqs : array, shape (Nfreq,), Hz (uniform spacing)
    nk : int
    kind : {"dct", "fourier"}
    cosmo : astropy.cosmology.Cosmology, optional
        Planck18 by default.

    Returns
    -------
    ndarray, shape (nk,), float64, Mpc^-1
    """
    f = _check_freqs(freqs, "mode_k_parallel")
    dnu = _uniform_spacing(f, "mode_k_parallel")
    _, Y = cosmo_scalars(f, cosmo)
    return 2 * np.pi * _mode_index_wavenumber(nk, kind) / (f.size * dnu * Y)
