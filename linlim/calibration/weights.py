"""Weights from noise and flags for the calibration solvers (built by
:func:`linlim.likelihood.noise_weights`).

Noise convention (DESIGN.md): ``sigma^2 = E|n|^2`` per complex sample, ``w = 1 / sigma^2``,
``log L = -sum w |d - m|^2``. Flagged samples get ``w = 0`` *and* their data are replaced by
zero, so that no value there (1e300, inf, NaN) can reach a solution.
"""

from __future__ import annotations

from typing import Any

from ..backend import asarray, get_xp, xp_of
from ..likelihood import noise_weights

__all__ = ["make_weights", "clean_data"]


def make_weights(shape: tuple, *, noise: Any = None, weights: Any = None, flags: Any = None,
                 ant1: Any = None, ant2: Any = None, include_autos: bool = False,
                 xp: Any = None) -> Any:
    """Per-sample weights ``w = 1/sigma^2`` (or given weights), zero where flagged.

    A thin wrapper of :func:`linlim.likelihood.noise_weights` (the one weight builder),
    keeping the calibration solvers' argument names and returning an array of the active
    backend (or ``xp``).

    Parameters
    ----------
    shape : tuple of int
        Visibility shape ``(..., Ntimes, Nfreqs, Nbl)``.
    noise : float or array, optional
        ``sigma`` (not sigma^2), broadcastable to ``shape``; ``E|n|^2 = sigma^2``.
    weights : array, optional
        Explicit non-negative weights (``1/sigma^2``); exclusive with ``noise``.
    flags : bool array, optional
        True where a sample must not be used.
    ant1, ant2 : array of int, shape (Nbl,), optional
        With ``include_autos=False`` (default) auto-correlations get zero weight.
    xp : module, optional
        Array module of the result (default: the active backend).

    Returns
    -------
    array of float64, ``shape``
    """
    xp = get_xp() if xp is None else xp
    w = noise_weights(noise, weights=weights, flags=flags, shape=tuple(shape), ant1=ant1,
                      ant2=ant2, include_autos=include_autos, where="make_weights")
    return asarray(w, xp)


def clean_data(data: Any, w: Any) -> Any:
    """Return ``data`` with zero-weight samples set to 0 (a copy)."""
    xp = xp_of(data)
    return xp.where(w > 0, data, 0.0)
