"""Operator cases for linlim.sky: spectra and the foreground block concatenation."""

from __future__ import annotations

import numpy as np

from linlim.backend import asarray
from linlim.operators import Exp, MatrixMult, Reshape
from linlim.operators.spaces import tree_map
from linlim.sky.foregrounds import BlockConcat, LinearBlockConcat
from linlim.sky.spectra import (
    AmplitudePowerLawSpectrum,
    ChannelAmplitudes,
    FixedIndexSpectrum,
    LogPolynomialSpectrum,
    PolynomialSpectrum,
    PowerLawSpectrum,
)
from linlim.testing import operator_case

FREQS = np.array([100e6, 130e6, 170e6, 200e6])
F0 = 150e6


def _on(op, x):
    """The case's point moved to the operator's backend (cases also run on CuPy)."""
    return op, tree_map(lambda a: asarray(a, op.xp), x)


def _arr(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


# Power laws, log-polynomials and amplitude power laws take log fluxes, spectral indices
# and curvatures: real parameters of a real, positive intensity (exp of a real exponent).
# A complex exponent has no physical meaning here, so these are checked in float64 only.
@operator_case(PowerLawSpectrum, dtypes=("float64",))
def _powerlaw(dtype, rng):
    op = PowerLawSpectrum(FREQS, F0, 5, curvature=True)
    x = (rng.normal(0.0, 1.0, 5), rng.normal(-0.8, 0.3, 5), rng.normal(0.0, 0.3, 5))
    return _on(op, x)


@operator_case(PowerLawSpectrum, dtypes=("float64",), name="PowerLawSpectrum:straight")
def _powerlaw_straight(dtype, rng):
    return _on(PowerLawSpectrum(FREQS, F0, 3), (rng.normal(0, 1, 3), rng.normal(-0.8, 0.3, 3)))


@operator_case(AmplitudePowerLawSpectrum, dtypes=("float64",))
def _amp_powerlaw(dtype, rng):
    op = AmplitudePowerLawSpectrum(FREQS, F0, 6, scale=rng.uniform(0.5, 2.0, FREQS.size))
    return _on(op, (rng.normal(0, 1, 6), rng.normal(-2.5, 0.3, 6)))


@operator_case(LogPolynomialSpectrum, dtypes=("float64",))
def _logpoly(dtype, rng):
    return _on(LogPolynomialSpectrum(FREQS, F0, 3, 4), 0.5 * rng.standard_normal((3, 4)))


# Linear spectra work for complex inputs too (their kernels are real), so both dtypes.
@operator_case(FixedIndexSpectrum)
def _fixed_index(dtype, rng):
    return FixedIndexSpectrum(FREQS, F0, rng.normal(-2.5, 0.2, 5),
                              scale=rng.uniform(0.5, 2, FREQS.size), dtype=dtype)


@operator_case(ChannelAmplitudes)
def _channel(dtype, rng):
    return ChannelAmplitudes(3, FREQS.size, reference=rng.uniform(0.5, 2, (3, FREQS.size)),
                             dtype=dtype)


@operator_case(ChannelAmplitudes, name="ChannelAmplitudes:per-channel")
def _channel_row(dtype, rng):
    return ChannelAmplitudes(3, FREQS.size, reference=rng.uniform(0.5, 2, FREQS.size),
                             dtype=dtype)


@operator_case(PolynomialSpectrum)
def _poly(dtype, rng):
    return PolynomialSpectrum(FREQS, F0, 3, 3, dtype=dtype)


@operator_case(BlockConcat)
def _block_concat(dtype, rng):
    # a tuple-input spectrum (2 parts), a single-input nonlinear block of another dtype
    # family, and a block concatenated along the source axis: input is the flat tuple
    pl = PowerLawSpectrum(FREQS, F0, 2)
    ex = Exp((3, FREQS.size), dtype)
    op = BlockConcat([pl, ex], axis=0)
    x = (rng.normal(0, 1, 2), rng.normal(-0.8, 0.3, 2), 0.5 * _arr(rng, (3, FREQS.size), dtype))
    return _on(op, x)


@operator_case(LinearBlockConcat)
def _linear_block_concat(dtype, rng):
    a = MatrixMult(_arr(rng, (4, 3), dtype), in_shape=(2, 3), axis=1)
    b = Reshape((8,), (2, 4), dtype)
    return LinearBlockConcat([a, b], axis=1)
