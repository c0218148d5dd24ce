"""Operator cases for linlim.gains: the GainProduct kernel and the composed DI/DD gain
operators and parameterisations (registered as extra Composition cases)."""

from __future__ import annotations

import numpy as np

from linlim.gains import (
    GainProduct,
    amplitude_phase_gains,
    bandpass_gains,
    dd_gains,
    delay_gains,
    di_gains,
    multiply_gains,
    phase_slope_gains,
)
from linlim.operators import Composition, ElementwiseProduct, FixInput
from linlim.testing import operator_case


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@operator_case(GainProduct, dtypes=("complex128",), name="GainProduct:model-input")
def _gain_product(dtype, rng):
    a1, a2 = np.triu_indices(4, 0)
    return GainProduct(a1, a2, 4, 2, 3)


@operator_case(FixInput, dtypes=("complex128",), name="GainProduct:fixed-model")
def _gain_product_fixed(dtype, rng):
    a1, a2 = np.triu_indices(4, 1)
    rows1 = np.concatenate([a1, a1 + 4])     # two "rows" per baseline (e.g. two feeds)
    rows2 = np.concatenate([a2 + 4, a2])
    return GainProduct(rows1, rows2, 8, 2, 3, model=_c(rng, 2, 3, 2 * a1.size))


@operator_case(Composition, dtypes=("complex128",), name="di_gains:intervals+feeds")
def _di(dtype, rng):
    a1, a2 = np.triu_indices(4, 0)
    return di_gains(a1, a2, 4, 3, 5, time_interval=2, freq_interval=[0, 0, 1, 1, 1],
                    pols=[-5, -6, -7, -8])


@operator_case(Composition, dtypes=("complex128",), name="dd_gains:fixed-model")
def _dd(dtype, rng):
    a1, a2 = np.triu_indices(4, 1)
    return dd_gains(a1, a2, 4, 2, 3, 3, freq_interval=3, model=_c(rng, 3, 2, 3, a1.size))


@operator_case(Composition, dtypes=("float64",), name="delay_gains@di_gains")
def _delay(dtype, rng):
    a1, a2 = np.triu_indices(3, 1)
    freqs = np.linspace(100e6, 120e6, 4)
    gains = di_gains(a1, a2, 3, 2, 4, model=_c(rng, 2, 4, a1.size))
    return gains @ delay_gains(3, 2, freqs)


@operator_case(Composition, dtypes=("float64",), name="amplitude_phase+slope")
def _amp(dtype, rng):
    return phase_slope_gains(rng.standard_normal((3, 2)) * 10, 2, freqs=[1e8, 1.1e8])


@operator_case(ElementwiseProduct, dtypes=("complex128",), name="bandpass*amp_phase")
def _product(dtype, rng):
    freqs = np.linspace(100e6, 120e6, 5)
    bp = bandpass_gains(3, 1, freqs, 2)
    ap = amplitude_phase_gains((3, 1, 5), log_amplitude=False)
    return multiply_gains(bp, ap)
