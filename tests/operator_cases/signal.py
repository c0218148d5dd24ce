"""Operator cases for the 21 cm signal bases (linlim.sky.signal)."""

from __future__ import annotations

import numpy as np

from linlim.sky.signal import (
    HealpixFreqBasis,
    SphericalHarmonicFreqBasis,
    drift_stripe_pixels,
    healpix_radec,
)
from linlim.testing import operator_case

_FREQS = 1.5e8 + 1e5 * np.arange(12)


def _stripe():
    return healpix_radec(8, drift_stripe_pixels(8, np.radians(-30.7), np.radians(12)))


@operator_case(HealpixFreqBasis)
def _healpix_bilinear(dtype, rng):
    ra, dec = _stripe()
    # the gather path (take/scatter_add, the one CuPy uses) on every backend
    return HealpixFreqBasis(4, ra, dec, _FREQS, nk=4, interp="bilinear", dtype=dtype,
                            method="gather")


@operator_case(HealpixFreqBasis, name="HealpixFreqBasis:nearest_fourier")
def _healpix_nearest(dtype, rng):
    ra, dec = rng.uniform(0, 2 * np.pi, 15), rng.uniform(-1.2, 1.2, 15)
    return HealpixFreqBasis(2, ra, dec, _FREQS, nk=5, freq_modes="fourier",
                            interp="nearest", dtype=dtype)


@operator_case(SphericalHarmonicFreqBasis)
def _sph(dtype, rng):
    ra, dec = _stripe()
    return SphericalHarmonicFreqBasis(4, ra, dec, _FREQS, nk=3, mmax=3,
                                      orthonormalize=True, dtype=dtype)
