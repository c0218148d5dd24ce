"""Weights from noise and flags, shared by every calibration solver.

Noise convention (DESIGN.md): ``sigma^2 = E|n|^2`` per complex sample, ``w = 1 / sigma^2``,
``log L = -sum w |d - m|^2``. Flagged samples get ``w = 0`` *and* their data are replaced by
zero, so that no value there (1e300, inf, NaN) can reach a solution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import asarray, get_xp, xp_of
from ..errors import InputError, ShapeError

__all__ = ["make_weights", "clean_data"]


def make_weights(shape: tuple, *, noise: Any = None, weights: Any = None, flags: Any = None,
                 ant1: Any = None, ant2: Any = None, include_autos: bool = False,
                 xp: Any = None) -> Any:
    """Per-sample weights ``w = 1/sigma^2`` (or given weights), zero where flagged.

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

    Returns
    -------
    array of float64, ``shape``
    """
    xp = get_xp() if xp is None else xp
    if noise is not None and weights is not None:
        raise InputError("make_weights: give noise or weights, not both")
    if weights is not None:
        w = asarray(weights, xp, dtype=np.float64)
        if bool((w < 0).any()) or not bool(xp.isfinite(w).all()):
            raise InputError("make_weights: weights must be finite and >= 0")
    elif noise is not None:
        s = asarray(noise, xp, dtype=np.float64)
        if bool((s <= 0).any()) or not bool(xp.isfinite(s).all()):
            raise InputError("make_weights: noise sigma must be finite and > 0")
        w = 1.0 / s**2
    else:
        w = xp.ones((), dtype=np.float64)
    try:
        w = xp.broadcast_to(w, shape).copy()
    except ValueError as exc:
        raise ShapeError(f"make_weights: weights/noise of shape {w.shape} do not broadcast to "
                         f"{shape}") from exc
    if flags is not None:
        f = asarray(flags, xp, dtype=bool)
        w = xp.where(xp.broadcast_to(f, shape), 0.0, w)
    if ant1 is not None and not include_autos:
        autos = asarray(np.asarray(ant1) == np.asarray(ant2), xp)
        w = xp.where(autos, 0.0, w)
    return w


def clean_data(data: Any, w: Any) -> Any:
    """Return ``data`` with zero-weight samples set to 0 (a copy)."""
    xp = xp_of(data)
    return xp.where(w > 0, data, 0.0)
