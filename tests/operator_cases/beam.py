"""Operator cases for linlim.beam: every beam operator, dot test and gradient check.

The analytic beams and width models act on real physical parameters (diameters, widths,
spectral indices), so they are registered for float64 only; the basis beam with complex
coefficients and the Jones lift of a complex beam cover complex128.
"""

from __future__ import annotations

import numpy as np

from linlim.beam import (
    AiryBeam,
    AiryProfile,
    BasisBeam,
    DiameterToSigma,
    GaussianBeam,
    GaussianProfile,
    PixelBeam,
    PolynomialWidth,
    PowerLawWidth,
    UnpolarizedJones,
)
from linlim.testing import operator_case

FREQS = np.linspace(1.0e8, 2.0e8, 5)


def _directions(rng, n=12):
    """Random directions including the zenith (x = 0) and two below the horizon."""
    za = rng.uniform(0.0, 0.5 * np.pi, n)
    za[0] = 0.0
    za[1] = 0.5 * np.pi + 0.1
    za[2] = 2.5
    az = rng.uniform(0.0, 2.0 * np.pi, n)
    return az, za


# real physical parameters: float64 only
@operator_case(AiryProfile, dtypes=("float64",))
def _airy_profile(dtype, rng):
    az, za = _directions(rng)
    op = AiryProfile(az, za, FREQS, nbeam=3)
    return op, op.xp.asarray(rng.uniform(10.0, 16.0, op.in_shape))


@operator_case(GaussianProfile, dtypes=("float64",))
def _gaussian_profile(dtype, rng):
    az, za = _directions(rng)
    op = GaussianProfile(az, za, FREQS, nbeam=2, sigma_scale=np.sqrt(2.0))
    return op, op.xp.asarray(rng.uniform(0.2, 0.6, op.in_shape))


@operator_case(AiryBeam, dtypes=("float64",))
def _airy_beam(dtype, rng):
    # per-antenna power-law diameters: derivative in D0 and gamma for each of 3 beams
    az, za = _directions(rng)
    op = AiryBeam(az, za, FREQS, nbeam=3, chromatic="powerlaw", ref_freq=1.5e8)
    x = np.stack([rng.uniform(10.0, 16.0, 3), rng.uniform(-0.5, 0.5, 3)], axis=1)
    return op, op.xp.asarray(x)


@operator_case(AiryBeam, dtypes=("float64",), name="AiryBeam:polynomial")
def _airy_beam_poly(dtype, rng):
    az, za = _directions(rng)
    op = AiryBeam(az, za, FREQS, nbeam=2, chromatic="polynomial", order=2)
    x = np.stack([rng.uniform(10.0, 16.0, 2), rng.normal(0, 1, 2), rng.normal(0, 1, 2)], 1)
    return op, op.xp.asarray(x)


@operator_case(GaussianBeam, dtypes=("float64",))
def _gaussian_beam(dtype, rng):
    az, za = _directions(rng)
    op = GaussianBeam(az, za, FREQS, nbeam=2, chromatic="powerlaw", sigma_type="power")
    x = np.stack([rng.uniform(0.2, 0.5, 2), rng.uniform(-1.0, 1.0, 2)], axis=1)
    return op, op.xp.asarray(x)


@operator_case(GaussianBeam, dtypes=("float64",), name="GaussianBeam:diameter")
def _gaussian_beam_diameter(dtype, rng):
    az, za = _directions(rng)
    za[3:] *= 0.3  # keep most directions inside the (narrow) main lobe
    op = GaussianBeam(az, za, FREQS, parameter="diameter", nbeam=3)
    return op, op.xp.asarray(rng.uniform(10.0, 16.0, (3, 1)))


@operator_case(PolynomialWidth, dtypes=("float64",))
def _poly_width(dtype, rng):
    return PolynomialWidth(FREQS, nbeam=3, order=2)


@operator_case(PowerLawWidth, dtypes=("float64",))
def _powerlaw_width(dtype, rng):
    op = PowerLawWidth(FREQS, nbeam=3)
    x = np.stack([rng.uniform(1.0, 3.0, 3), rng.normal(0, 1, 3)], axis=1)
    return op, op.xp.asarray(x)


@operator_case(DiameterToSigma, dtypes=("float64",))
def _diameter_to_sigma(dtype, rng):
    op = DiameterToSigma(FREQS, nbeam=2)
    return op, op.xp.asarray(rng.uniform(10.0, 16.0, op.in_shape))


@operator_case(PixelBeam, dtypes=("float64",))
def _pixel_beam(dtype, rng):
    # amplitudes are real; a pyuvdata analytic beam keeps the case fast
    from pyuvdata.analytic_beam import AiryBeam as PyuvAiry

    az, za = _directions(rng)
    za = np.minimum(za, 0.5 * np.pi)
    return PixelBeam([PyuvAiry(diameter=14.0), PyuvAiry(diameter=12.0)], az, za, FREQS)


@operator_case(PixelBeam, dtypes=("float64",), name="PixelBeam:efield")
def _pixel_beam_efield(dtype, rng):
    # complex output (efield mode) from a real amplitude: tests the Re of the adjoint
    from pyuvdata.analytic_beam import GaussianBeam as PyuvGaussian

    az, za = _directions(rng)
    za = np.minimum(za, 0.5 * np.pi)
    return PixelBeam(PyuvGaussian(sigma=0.3), az, za, FREQS, unpolarized="efield")


@operator_case(BasisBeam)
def _basis_beam(dtype, rng):
    az, za = _directions(rng)
    return BasisBeam(az, za, FREQS, n_max=4, m_max=2, freq_order=2, rho_max=0.8, nbeam=2,
                     dtype=dtype)


@operator_case(UnpolarizedJones)
def _unpol_jones(dtype, rng):
    return UnpolarizedJones(2, 3, 4, in_dtype=dtype)
