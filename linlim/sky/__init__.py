"""Sky models: point-source catalogues, spectra, HEALPix diffuse skies, foregrounds.

Everything a sky model hands to the RIME is a set of sources: ICRS positions ``ra, dec``
(Nsrc,) in radians and intensities ``I`` (Nsrc, Nfreq) float64 in Jy. Diffuse HEALPix
pixels are sources too (brightness in Jy/sr times the pixel solid angle).
"""

from .bandpower import (
    BandPowerCovariance,
    BandPowerEstimate,
    ModeBlockMatrix,
    check_basis_frequencies,
    estimate_band_powers,
    estimate_band_powers_from_map,
    quadratic_band_powers,
)
from .catalog import PointSourceCatalog, angular_distance, random_catalog
from .diffuse import (
    DiffuseSky,
    global_spectral_modes,
    log_polynomial_modes,
    synthetic_foreground_sky,
)
from .foregrounds import (
    BlockConcat,
    ForegroundSky,
    LinearBlockConcat,
    SourceSet,
    gaussian_random_field,
    synthetic_diffuse_sky,
)
from .healpix import (
    HealpixSky,
    galactic_to_icrs,
    pixel_area,
    pixel_coords,
    rayleigh_jeans_factor,
    rotate_map,
)
from .signal import (
    F21_HZ,
    HealpixFreqBasis,
    SphericalHarmonicFreqBasis,
    box_power_spectrum,
    comoving_distance,
    cosmo_scalars,
    dense_coefficient_covariance,
    drift_stripe_pixels,
    frequency_modes,
    gaussian_random_box,
    gaussian_random_sky,
    healpix_radec,
    kelvin_to_jy_per_pixel,
    mode_k_parallel,
    real_spherical_harmonics,
    redshift_of,
)
from .spectra import (
    AmplitudePowerLawSpectrum,
    ChannelAmplitudes,
    FixedIndexSpectrum,
    LogPolynomialSpectrum,
    PolynomialSpectrum,
    PowerLawSpectrum,
    validate_freqs,
    validate_ref_freq,
)
from .stripe import (
    SphericalFourierBesselBasis,
    StripeHarmonicFreqBasis,
    fourier_bessel_k,
    fourier_bessel_radial,
    stripe_degrees,
    stripe_harmonics,
    stripe_radial,
    stripe_theta_range,
)

__all__ = [
    "PointSourceCatalog", "random_catalog", "angular_distance",
    "PowerLawSpectrum", "AmplitudePowerLawSpectrum", "FixedIndexSpectrum",
    "ChannelAmplitudes", "PolynomialSpectrum", "LogPolynomialSpectrum",
    "validate_freqs", "validate_ref_freq",
    "HealpixSky", "pixel_area", "pixel_coords", "galactic_to_icrs", "rotate_map",
    "rayleigh_jeans_factor",
    "ForegroundSky", "SourceSet", "BlockConcat", "LinearBlockConcat",
    "gaussian_random_field", "synthetic_diffuse_sky",
    "HealpixFreqBasis", "SphericalHarmonicFreqBasis", "frequency_modes",
    "drift_stripe_pixels", "gaussian_random_sky", "kelvin_to_jy_per_pixel",
    "dense_coefficient_covariance", "F21_HZ", "box_power_spectrum", "comoving_distance",
    "cosmo_scalars", "gaussian_random_box", "healpix_radec", "mode_k_parallel",
    "real_spherical_harmonics", "redshift_of",
    "StripeHarmonicFreqBasis", "SphericalFourierBesselBasis", "stripe_harmonics",
    "stripe_degrees", "stripe_radial", "stripe_theta_range", "fourier_bessel_k",
    "fourier_bessel_radial",
    "BandPowerCovariance", "BandPowerEstimate", "ModeBlockMatrix", "estimate_band_powers",
    "quadratic_band_powers", "check_basis_frequencies", "estimate_band_powers_from_map",
    "DiffuseSky", "log_polynomial_modes", "global_spectral_modes", "synthetic_foreground_sky",
]
