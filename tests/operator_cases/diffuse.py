"""Operator cases for linlim.sky.diffuse."""

from __future__ import annotations

import numpy as np

from linlim.sky.diffuse import DiffuseSky, global_spectral_modes
from linlim.testing import operator_case

_FREQS = 1.2e8 + 2e6 * np.arange(6)


@operator_case(DiffuseSky)
def _logpoly(dtype, rng):
    return DiffuseSky(2, _FREQS, 1.25e8, n_modes=3, pixels=np.arange(5, 30), dtype=dtype)


@operator_case(DiffuseSky, name="DiffuseSky:global_modes_galactic")
def _global(dtype, rng):
    spectra = rng.uniform(1, 2, (40, 1)) * (_FREQS / 1.25e8)[None, :] ** rng.normal(
        -2.5, 0.1, (40, 1))
    return DiffuseSky(1, _FREQS, spectral_modes=global_spectral_modes(spectra, 2),
                      frame="galactic", dtype=dtype)
