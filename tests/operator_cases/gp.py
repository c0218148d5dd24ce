"""Operator cases for the GP / Wiener filter along frequency (linlim.gp)."""

from __future__ import annotations

import numpy as np

from linlim.gp import FrequencyKernel, WienerFilter
from linlim.testing import operator_case

_FREQS = 1.5e8 + 2e5 * np.arange(16)


@operator_case(WienerFilter, name="WienerFilter:estimate")
def _wiener_estimate(dtype, rng):
    # per-sample noise with flags: W is not self-adjoint here
    w = rng.uniform(0.5, 2.0, (3, 16, 2)) * (rng.random((3, 16, 2)) > 0.2)
    K = FrequencyKernel("gauss-sinc", tau=300e-9, variance=10.0, tau_gauss=100e-9)
    return WienerFilter((3, 16, 2), _FREQS, K, weights=w, dtype=dtype)


@operator_case(WienerFilter, name="WienerFilter:residual")
def _wiener_residual(dtype, rng):
    var = rng.uniform(0.5, 2.0, 16)
    var[[3, 9]] = np.inf                                   # flagged channels
    K = FrequencyKernel("exponential", tau=200e-9, variance=5.0)
    return WienerFilter((2, 4, 16), _FREQS, K, noise_variance=var, residual=True, axis=2,
                        dtype=dtype)
