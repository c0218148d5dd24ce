"""Operator cases for the delay transform and the delay filter (linlim.filters)."""

from __future__ import annotations

import numpy as np

from linlim.filters import DelayFilter, DelayTransform
from linlim.testing import operator_case

_FREQS = 1.5e8 + 2e5 * np.arange(24)


@operator_case(DelayTransform)
def _delay_transform(dtype, rng):
    return DelayTransform((3, 24, 2), _FREQS, axis=1, taper="tukey", alpha=0.3, dtype=dtype)


@operator_case(DelayFilter)
def _delay_filter(dtype, rng):
    # per-sample weights with flagged channels: P is not self-adjoint here
    w = rng.uniform(0.5, 2.0, (3, 24, 2)) * (rng.random((3, 24, 2)) > 0.15)
    modes = "fourier" if dtype == "complex128" else "dpss"
    return DelayFilter((3, 24, 2), _FREQS, tau_cut=600e-9, weights=w, modes=modes,
                       dtype=dtype)
