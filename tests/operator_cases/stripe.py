"""Operator cases for the stripe-harmonic and spherical Fourier-Bessel bases."""

from __future__ import annotations

import numpy as np

from linlim.sky.stripe import (
    SphericalFourierBesselBasis,
    StripeHarmonicFreqBasis,
    stripe_theta_range,
)
from linlim.testing import operator_case

_FREQS = 1.5e8 + 2e5 * np.arange(10)


def _targets(rng, n=40):
    dec = rng.uniform(-0.5, -0.1, n)
    return rng.uniform(0, 2 * np.pi, n), dec


@operator_case(StripeHarmonicFreqBasis)
def _stripe_freq(dtype, rng):
    ra, dec = _targets(rng)
    a, b = stripe_theta_range(-0.5, -0.1)
    return StripeHarmonicFreqBasis(ra, dec, _FREQS, a, b, lmax=14, nk=3, bc="neumann",
                                   dtype=dtype)


@operator_case(SphericalFourierBesselBasis)
def _sfb(dtype, rng):
    ra, dec = _targets(rng)
    a, b = stripe_theta_range(-0.5, -0.1)
    return SphericalFourierBesselBasis(ra, dec, _FREQS, a, b, lmax=12, nk=3, dtype=dtype)
