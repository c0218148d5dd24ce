"""Primary beams as differentiable operators.

Every beam maps its fitted parameters to the unpolarised E-field beam ``A`` of shape
``(Nbeam, Ndir, Nfreq)`` at directions (``az`` East towards North, ``za`` from zenith,
radians) and frequencies (Hz) fixed at construction; ``V_xx = 0.5 I A_i conj(A_j)``. See
:mod:`linlim.beam.base` for the conventions and ``docs/beam.rst`` for the models.

* :class:`AiryBeam`, :class:`GaussianBeam`: analytic, with optional chromatic widths
  (:mod:`linlim.beam.chromatic`) and one set of parameters per antenna if wanted.
* :class:`BasisBeam`: Zernike x Legendre expansion, linear in its coefficients.
* :class:`PixelBeam`: a pyuvdata ``UVBeam`` (beamfits) interpolated with pyuvdata.
"""

from .analytic import AiryBeam, AiryProfile, GaussianBeam, GaussianProfile
from .base import (
    SPEED_OF_LIGHT,
    UnpolarizedJones,
    airy_and_derivative,
    az_from_astropy,
    az_za_from_enu,
    check_directions,
    check_freqs,
)
from .basis import BasisBeam, legendre_matrix, zernike_matrix, zernike_modes
from .chromatic import DiameterToSigma, PolynomialWidth, PowerLawWidth, ripple_powerlaw_width
from .uvbeam import PixelBeam, load_beam

__all__ = [
    "AiryBeam", "GaussianBeam", "AiryProfile", "GaussianProfile",
    "BasisBeam", "PixelBeam", "load_beam",
    "PolynomialWidth", "PowerLawWidth", "DiameterToSigma", "ripple_powerlaw_width",
    "UnpolarizedJones", "airy_and_derivative", "az_from_astropy", "az_za_from_enu",
    "check_directions", "check_freqs", "SPEED_OF_LIGHT",
    "zernike_modes", "zernike_matrix", "legendre_matrix",
]
