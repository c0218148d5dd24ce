"""The 21 cm signal: sparse bases, mock Gaussian random fields and their prior.

The 21 cm brightness temperature on a set of sky positions over the band,
``T[p, f]`` in **kelvin**, is described by a small real coefficient array through one of
two linear bases (each a :class:`~linlim.operators.LinearOperator` with an exact
adjoint):

* :class:`HealpixFreqBasis` -- a low-resolution HEALPix grid (``nside_low``, RING,
  equatorial/ICRS: ``theta = pi/2 - dec``, ``phi = ra``) times ``nk`` frequency modes,
  interpolated onto the target positions (nearest parent or healpy's bilinear weights):
  ``T = W C B^T`` with ``C`` of shape ``(Nlow, Nk)``;
* :class:`SphericalHarmonicFreqBasis` -- real spherical harmonics ``Y_lm`` (``l <= lmax``)
  evaluated at the target positions times the frequency modes: ``T = Y C B^T`` with
  ``C`` of shape ``(Nlm, Nk)``; optionally orthonormalised over the target pixels.

The frequency modes ``B`` (:func:`frequency_modes`) are the lowest ``nk`` orthonormal
DCT-II or real Fourier modes along frequency, i.e. line-of-sight ``k_par`` modes
(:func:`mode_k_parallel`).

Units: ``T`` is in K. :func:`rayleigh_jeans_factor` (:mod:`linlim.units`) gives the Jy/sr
per K at each frequency (``2 k_B nu^2 / c^2``) and :func:`kelvin_to_jy_per_pixel` the
linear operator that turns ``T`` (K) into the intensities the visibility operator takes,
``I[s, f]`` in Jy per pixel, ``I = T * 2 k_B nu^2 / c^2 * Omega_pix * 1e26``.

Mock signals: :func:`gaussian_random_box` draws a Gaussian random field with a given
3-D power spectrum ``P(k)`` [K^2 Mpc^3] on a periodic Cartesian box of comoving
coordinates, :func:`box_power_spectrum` measures it back, and
:func:`gaussian_random_sky` samples such a box at the true comoving positions
``r(nu) n_hat`` of sky pixels over the band (astropy cosmology, Planck18 by default).
The matching prior on basis coefficients is ``basis.prior_covariance(pk)`` (or its
diagonal ``basis.prior_variance(pk)``).

The code lives in one module per concern; this module re-exports every public name (and
the helpers :mod:`linlim.sky.stripe` uses):

* :mod:`linlim.sky.freq_modes` -- frequency modes and their ``k_parallel``;
* :mod:`linlim.sky.geometry` -- pixel centres, stripes, spherical harmonics;
* :mod:`linlim.sky.bases` -- the bases, their prior covariance, K -> Jy per pixel;
* :mod:`linlim.sky.cosmology` -- redshift, comoving distance, ``X`` and ``Y``;
* :mod:`linlim.sky.random_fields` -- Gaussian random boxes and skies;
* :mod:`linlim.units` -- constants, ``rayleigh_jeans_factor``.
"""

from __future__ import annotations

from ..units import F21_HZ, rayleigh_jeans_factor
from .bases import (
    HealpixFreqBasis,
    SphericalHarmonicFreqBasis,
    _SignalBasis,
    dense_coefficient_covariance,
    kelvin_to_jy_per_pixel,
)
from .cosmology import (
    _check_freqs,
    _cosmo,
    _uniform_spacing,
    comoving_distance,
    cosmo_scalars,
    redshift_of,
)
from .freq_modes import _mode_index_wavenumber, frequency_modes, mode_k_parallel
from .geometry import (
    _radec,
    _unit_vectors,
    drift_stripe_pixels,
    healpix_radec,
    real_spherical_harmonics,
)
from .random_fields import box_power_spectrum, gaussian_random_box, gaussian_random_sky

__all__ = [
    "F21_HZ",
    "frequency_modes",
    "mode_k_parallel",
    "healpix_radec",
    "drift_stripe_pixels",
    "real_spherical_harmonics",
    "HealpixFreqBasis",
    "SphericalHarmonicFreqBasis",
    "dense_coefficient_covariance",
    "rayleigh_jeans_factor",
    "kelvin_to_jy_per_pixel",
    "redshift_of",
    "comoving_distance",
    "cosmo_scalars",
    "gaussian_random_box",
    "box_power_spectrum",
    "gaussian_random_sky",
]

# private helpers re-exported for linlim.sky.stripe and older imports
_PRIVATE = (_SignalBasis, _check_freqs, _cosmo, _uniform_spacing, _mode_index_wavenumber,
            _radec, _unit_vectors)
