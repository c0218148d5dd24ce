"""Physics tests of linlim.beam against pyuvdata, matvis and scipy (independent truths).

Dot tests and gradient checks of every beam operator live in tests/operator_cases/beam.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pyuvdata import BeamInterface
from pyuvdata.analytic_beam import AiryBeam as PyuvAiry
from pyuvdata.analytic_beam import GaussianBeam as PyuvGaussian
from pyuvdata.analytic_beam import ShortDipoleBeam
from scipy.special import j1, jv

import linlim
from linlim.backend import to_numpy
from linlim.beam import (
    AiryBeam,
    BasisBeam,
    DiameterToSigma,
    GaussianBeam,
    PixelBeam,
    UnpolarizedJones,
    airy_and_derivative,
    az_from_astropy,
    az_za_from_enu,
    zernike_matrix,
)
from linlim.errors import InputError, ShapeError

FREQS = np.linspace(1.0e8, 2.0e8, 7)
C = 299792458.0


def _sky(rng, n=400, za_max=0.5 * np.pi):
    return rng.uniform(0.0, 2 * np.pi, n), rng.uniform(0.0, za_max, n)


def _pyuv_efield(beam, az, za, freqs):
    """pyuvdata's efield response (Naxes_vec, Nfeeds, Nfreq, Ndir), via BeamInterface."""
    return BeamInterface(beam, beam_type="efield").compute_response(
        az_array=az.copy(), za_array=za.copy(), freq_array=freqs.copy())


# -- agreement with pyuvdata's analytic beams ----------------------------------------------
@pytest.mark.parametrize("kind", ["airy", "gauss-efield", "gauss-power", "gauss-powerlaw",
                                  "gauss-diameter"])
def test_analytic_beams_match_pyuvdata(kind, rng, xp):
    az, za = _sky(rng)
    if kind == "airy":
        ours = AiryBeam(az, za, FREQS, diameter=14.0)
        theirs = PyuvAiry(diameter=14.0)
        p = None
    elif kind == "gauss-efield":
        ours, theirs, p = GaussianBeam(az, za, FREQS, sigma=0.12), PyuvGaussian(sigma=0.12), None
    elif kind == "gauss-power":
        ours = GaussianBeam(az, za, FREQS, sigma=0.12, sigma_type="power")
        theirs, p = PyuvGaussian(sigma=0.12, sigma_type="power"), None
    elif kind == "gauss-powerlaw":
        ours = GaussianBeam(az, za, FREQS, chromatic="powerlaw", ref_freq=1.4e8)
        theirs = PyuvGaussian(sigma=0.12, spectral_index=-1.3, reference_frequency=1.4e8)
        p = ours.params(sigma=0.12, spectral_index=-1.3)
    else:
        ours = GaussianBeam(az, za, FREQS, parameter="diameter", diameter=14.0)
        theirs, p = PyuvGaussian(diameter=14.0), None
    e = _pyuv_efield(theirs, az, za, FREQS)
    A = to_numpy(ours.evaluate(p))
    assert A.shape == (1, az.size, FREQS.size) and A.dtype == np.float64
    # each E-field component of each feed is A / sqrt(2), real
    for comp in range(2):
        for feed in range(2):
            np.testing.assert_allclose(A[0], np.sqrt(2.0) * e[comp, feed].T.real,
                                       rtol=0, atol=1e-12)
    assert np.abs(e.imag).max() == 0.0
    # the Jones form is pyuvdata's efield array transposed to (feed, component, dir, freq)
    J = to_numpy(ours.jones(p))
    assert J.shape == (1, 2, 2, az.size, FREQS.size) and J.dtype == np.complex128
    np.testing.assert_allclose(J[0], np.transpose(e, (1, 0, 3, 2)), rtol=0, atol=1e-12)


def test_power_beam_and_matvis_unpolarized_value(rng):
    """A^2 is pyuvdata's power beam; matvis' unpolarised beam value is sqrt(power) = |A|."""
    matvis_beams = pytest.importorskip("matvis.cpu.beams")
    az, za = _sky(rng, 300)
    A = AiryBeam(az, za, FREQS, diameter=14.0).evaluate()
    power = BeamInterface(PyuvAiry(diameter=14.0), beam_type="power").compute_response(
        az_array=az.copy(), za_array=za.copy(), freq_array=FREQS)
    np.testing.assert_allclose(A[0] ** 2, power[0, 0].T, rtol=0, atol=1e-12)
    assert (A < -0.01).any()  # sidelobes are negative: |A| and A differ there
    tx, ty = np.sin(za) * np.cos(az), np.sin(za) * np.sin(az)   # matvis' (E, N) cosines
    for i, f in enumerate(FREQS[[0, 3]]):
        interp = matvis_beams.UVBeamInterpolator(
            beam_list=[PyuvAiry(diameter=14.0)], beam_idx=None, polarized=False, nant=1,
            freq=f, nsrc=az.size, precision=2)
        interp.setup()
        got = interp(tx, ty)[0, 0, 0]
        np.testing.assert_allclose(got.real, np.abs(A[0, :, 3 * i]), rtol=0, atol=1e-12)
    # and PixelBeam's default ("power") mode reproduces matvis for any pyuvdata beam
    pb = PixelBeam(PyuvAiry(diameter=14.0), az, za, FREQS)
    np.testing.assert_allclose(pb.values, np.abs(A), rtol=0, atol=1e-12)


def test_per_antenna_and_chromatic_diameters(rng):
    az, za = _sky(rng, 100)
    d = np.array([12.0, 14.0, 15.5])
    many = AiryBeam(az, za, FREQS, diameter=d, nbeam=3).evaluate()
    for b in range(3):
        one = AiryBeam(az, za, FREQS, diameter=d[b]).evaluate()
        np.testing.assert_array_equal(many[b], one[0])
    # chromatic diameter D(f) = D0 (f/f0)^gamma: per channel, pyuvdata's Airy of D(f)
    f0, gamma = 1.5e8, -0.4
    beam = AiryBeam(az, za, FREQS, chromatic="powerlaw", ref_freq=f0)
    A = beam.evaluate(beam.params(diameter=14.0, spectral_index=gamma))
    poly = AiryBeam(az, za, FREQS, chromatic="polynomial", order=2, ref_freq=f0)
    Ap = poly.evaluate(poly.params(diameter=14.0, diameter_1=2.0, diameter_2=-3.0))
    for i, f in enumerate(FREQS):
        t = (f - f0) / f0
        for D, got in ((14.0 * (f / f0) ** gamma, A), (14.0 + 2.0 * t - 3.0 * t * t, Ap)):
            e = _pyuv_efield(PyuvAiry(diameter=D), az, za, np.array([f]))
            np.testing.assert_allclose(got[0, :, i], np.sqrt(2) * e[0, 0, 0].real, atol=1e-12)


def test_evaluate_at_other_directions(rng, airy_beamfits):
    az, za = _sky(rng, 40)
    az2, za2 = _sky(rng, 15)
    f2 = FREQS[[0, 2]]
    beam = GaussianBeam(az, za, FREQS, sigma=0.2, chromatic="powerlaw", ref_freq=1.2e8)
    p = beam.params(sigma=0.2, spectral_index=-0.7)
    got = beam.evaluate(p, az=az2, za=za2, freqs=f2)
    e = _pyuv_efield(PyuvGaussian(sigma=0.2, spectral_index=-0.7, reference_frequency=1.2e8),
                     az2, za2, f2)
    np.testing.assert_allclose(got[0], np.sqrt(2) * e[0, 0].T.real, atol=1e-12)
    airy = AiryBeam(az, za, FREQS, diameter=13.0)
    np.testing.assert_array_equal(airy.evaluate(za=za2, az=az2),
                                  AiryBeam(az2, za2, FREQS, diameter=13.0).evaluate())
    bb = BasisBeam(az, za, FREQS, n_max=3, freq_order=2)
    a = rng.normal(size=bb.in_shape)
    np.testing.assert_allclose(bb.evaluate(a, az=az2, za=za2, freqs=f2),
                               BasisBeam(az2, za2, FREQS, n_max=3, freq_order=2).matvec(a)
                               [..., [0, 2]], atol=1e-14)
    path, freqs, _ = airy_beamfits
    pb = PixelBeam(path, az, za, freqs[:3])
    np.testing.assert_array_equal(pb.evaluate(az=az2, za=za2), PixelBeam(path, az2, za2,
                                                                         freqs[:3]).values)


# -- Bessel functions, the x -> 0 limit, the horizon -----------------------------------------
def test_airy_function_and_derivative_against_scipy(xp):
    x = np.concatenate([[0.0, 1e-300, 1e-12, 1e-6, 1e-3, 0.0999, 0.1, 0.1001],
                        np.linspace(0.2, 60.0, 3001), [3.8317059702075125]])
    a, da = airy_and_derivative(xp.asarray(x), xp)
    a, da = to_numpy(a), to_numpy(da)
    xs = np.where(x == 0, 1.0, x)
    ref_a = np.where(x == 0, 1.0, 2 * j1(xs) / xs)
    ref_da = np.where(x == 0, 0.0, -2.0 * jv(2, xs) / xs)     # independent: scipy's jv
    # scipy's j1 on the CPU; CuPy's own j1 kernel differs from scipy by up to 1.7e-14
    # (measured on an H100), far below anything a beam-parameter gradient could feel
    atol = 2e-16 if xp is np else 5e-14
    np.testing.assert_allclose(a, ref_a, rtol=0, atol=atol)
    np.testing.assert_allclose(da, ref_da, rtol=1e-12, atol=max(atol, 1e-15))
    assert a[0] == 1.0 and da[0] == 0.0
    # continuity across the series switch at x = 0.1 (value and slope)
    assert abs(da[6] - da[5]) < 2e-4 and abs(da[7] - da[6]) < 2e-4


def test_zenith_limit_and_horizon(xp):
    az = np.zeros(5)
    za = np.array([0.0, 1e-9, 0.5 * np.pi, 0.5 * np.pi + 1e-9, 3.0])
    beam = AiryBeam(az, za, FREQS, diameter=14.0)
    p = beam.default_params
    A = to_numpy(beam.evaluate())
    assert np.all(A[0, 0] == 1.0)
    np.testing.assert_allclose(A[0, 1], 1.0, atol=1e-15)
    assert np.all(A[0, 3:] == 0.0)                     # below the horizon: 0
    assert np.all(A[0, 2] != 0.0)                      # on the horizon: still visible
    # derivative: zero at the zenith and below the horizon
    dA = to_numpy(beam.jvp(p, xp.ones_like(p)))
    assert np.all(dA[0, 0] == 0.0) and np.all(dA[0, 3:] == 0.0)
    g = GaussianBeam(az, za, FREQS, sigma=0.3)
    assert np.all(to_numpy(g.evaluate())[0, 3:] == 0.0)


# -- conventions -------------------------------------------------------------------------
def test_azimuth_convention_is_east_towards_north():
    # astropy azimuth: N = 0, E = 90 deg; the beam azimuth: E = 0, N = 90 deg
    np.testing.assert_allclose(az_from_astropy(np.deg2rad([0.0, 90.0, 180.0, 270.0])),
                               np.deg2rad([90.0, 0.0, 270.0, 180.0]), atol=1e-15)
    az, za = az_za_from_enu([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(az, [0.0, 0.5 * np.pi, 0.0], atol=1e-15)
    np.testing.assert_allclose(za, [0.25 * np.pi, 0.25 * np.pi, 0.0], atol=1e-15)
    # pyuvdata itself: the East dipole's power falls as 1 - (sin za cos az)^2, so its null
    # on the horizon lies at az = 0 -> East is az = 0 in what compute_response expects
    za = np.full(2, 0.5 * np.pi)
    east_north = az_from_astropy(np.deg2rad([90.0, 0.0]))
    p = BeamInterface(ShortDipoleBeam(), beam_type="power").compute_response(
        az_array=east_north, za_array=za, freq_array=np.array([1e8]))
    feeds = list(ShortDipoleBeam().feed_array)  # x is East by default
    east_feed = p[0, feeds.index("x"), 0]
    np.testing.assert_allclose(east_feed, [0.0, 1.0], atol=1e-15)


def test_matvis_uses_the_same_azimuth():
    coords = pytest.importorskip("matvis.coordinates")
    rng = np.random.default_rng(3)
    e, n = rng.uniform(-0.7, 0.7, (2, 50))
    u = np.sqrt(1 - e * e - n * n)
    az_m, za_m = coords.enu_to_az_za(enu_e=e, enu_n=n, orientation="uvbeam")
    az, za = az_za_from_enu(e, n, u)
    np.testing.assert_allclose(np.mod(az - az_m + np.pi, 2 * np.pi) - np.pi, 0.0, atol=1e-12)
    np.testing.assert_allclose(za, za_m, atol=1e-12)


def test_unpolarized_jones_and_visibility_normalisation(rng):
    A = rng.normal(size=(2, 3, 4))
    J = UnpolarizedJones(2, 3, 4).matvec(A)
    # V_xx = J_i C J_j^H with C = (I/2) 1 gives 0.5 I A_i A_j
    vxx = 0.5 * (J[0, 0] * J[1, 0].conj()).sum(axis=0)
    np.testing.assert_allclose(vxx, 0.5 * A[0] * A[1], atol=1e-15)


# -- basis beam --------------------------------------------------------------------------
def test_zernike_modes_explicit():
    rng = np.random.default_rng(1)
    r, phi = rng.uniform(0, 1, 20), rng.uniform(0, 2 * np.pi, 20)
    Z = zernike_matrix(r, phi, [(0, 0), (1, 1), (1, -1), (2, 0), (2, -2), (4, 0)])
    ref = np.stack([np.ones_like(r), 2 * r * np.cos(phi), 2 * r * np.sin(phi),
                    np.sqrt(3) * (2 * r**2 - 1), np.sqrt(6) * r**2 * np.sin(2 * phi),
                    np.sqrt(5) * (6 * r**4 - 6 * r**2 + 1)], axis=1)
    np.testing.assert_allclose(Z, ref, atol=1e-13)
    assert np.all(zernike_matrix(np.array([1.01]), np.zeros(1), [(0, 0)]) == 0.0)


def test_basis_beam_fit_reproduces_airy_main_lobe(rng):
    """Zernike (radial orders <= 24, m = 0) x Legendre (order 8) on sin(za) <= 0.5, fitted
    to a 14 m Airy beam over 100-200 MHz: |error| < 1e-5 inside the main lobe (first null
    x = 3.8317) at fresh directions (measured 6e-7)."""
    freqs = np.linspace(1.0e8, 2.0e8, 32)
    def cap(n):
        return rng.uniform(0, 2 * np.pi, n), np.arcsin(0.5 * np.sqrt(rng.uniform(0, 1, n)))
    az, za = cap(3000)
    kw = dict(n_max=24, m_max=0, freq_order=8, rho_max=0.5)
    coeffs = BasisBeam(az, za, freqs, **kw).fit(AiryBeam(az, za, freqs, diameter=14.0)
                                                .evaluate())
    az2, za2 = cap(500)
    fitted = BasisBeam(az2, za2, freqs, coeffs=coeffs, **kw).evaluate()
    truth = AiryBeam(az2, za2, freqs, diameter=14.0).evaluate()
    x = np.pi * 14.0 * np.sin(za2)[:, None] * freqs[None, :] / C
    main = x < 3.8317
    assert main.sum() > 1000
    assert np.abs(fitted - truth)[0][main].max() < 1e-5
    # weights: fitting only the main lobe is at least as good there
    w = (np.pi * 14.0 * np.sin(za) * freqs.max() / C < 3.8317).astype(float)
    bb = BasisBeam(az, za, freqs, n_max=8, m_max=0, freq_order=6, rho_max=0.5)
    target = AiryBeam(az, za, freqs, diameter=14.0).evaluate()
    r_w = np.abs(bb.matvec(bb.fit(target, weights=w)) - target)[0][w > 0].max()
    r_u = np.abs(bb.matvec(bb.fit(target)) - target)[0][w > 0].max()
    assert r_w < r_u


def test_basis_beam_complex_coefficients_and_extra_frequencies(rng):
    az, za = _sky(rng, 50)
    bb = BasisBeam(az, za, FREQS, n_max=3, freq_order=2, dtype="complex128",
                   freq_range=(0.9e8, 2.1e8))
    a = rng.normal(size=bb.in_shape) + 1j * rng.normal(size=bb.in_shape)
    A = bb.matvec(a)
    assert A.dtype == np.complex128
    # linear in a (complex-linear): A(i a) = i A(a)
    np.testing.assert_allclose(bb.matvec(1j * a), 1j * A, atol=1e-14)
    # the same coefficients at other frequencies of the same band: channel by channel equal
    sub = BasisBeam(az, za, FREQS[[1, 4]], n_max=3, freq_order=2, dtype="complex128",
                    freq_range=(0.9e8, 2.1e8), coeffs=a)
    np.testing.assert_allclose(sub.evaluate(), A[..., [1, 4]], atol=1e-14)
    assert bb.jones(a).shape == (1, 2, 2, 50, FREQS.size)


# -- pixel beams from beamfits ------------------------------------------------------------
@pytest.fixture(scope="module")
def airy_beamfits(tmp_path_factory):
    freqs = np.linspace(1.0e8, 2.0e8, 21)
    uvb = PyuvAiry(diameter=14.0).to_uvbeam(
        freq_array=freqs, axis1_array=np.deg2rad(np.arange(0.0, 360.0, 1.0)),
        axis2_array=np.deg2rad(np.arange(0.0, 90.01, 0.5)))
    path = tmp_path_factory.mktemp("beam") / "airy.beamfits"
    uvb.write_beamfits(str(path))
    return path, freqs, uvb


def test_beamfits_round_trip_at_grid_points(airy_beamfits):
    path, freqs, uvb = airy_beamfits
    azg, zag = np.meshgrid(uvb.axis1_array[::7], uvb.axis2_array[::5])
    az, za = azg.ravel(), zag.ravel()
    f = freqs[[0, 7, 20]]
    A = AiryBeam(az, za, f, diameter=14.0).evaluate()
    pe = PixelBeam(path, az, za, f, unpolarized="efield")
    assert pe.values.dtype == np.complex128
    np.testing.assert_allclose(pe.values, A, rtol=0, atol=1e-10)
    pp = PixelBeam(str(path), az, za, f)
    assert pp.values.dtype == np.float64
    np.testing.assert_allclose(pp.values, np.abs(A), rtol=0, atol=1e-10)
    J = pe.jones()
    np.testing.assert_allclose(J, AiryBeam(az, za, f, diameter=14.0).jones(), atol=1e-10)


def test_beamfits_interpolated_points(airy_beamfits):
    """Off-grid directions and frequencies (cubic in frequency, 21 channels over 100-200
    MHz; cubic splines on a 1 deg x 0.5 deg grid): within the main lobe the interpolated
    E-field beam is within 2e-5 of the analytic Airy beam (measured 3.2e-6)."""
    path, freqs, _ = airy_beamfits
    rng = np.random.default_rng(7)
    az, za = rng.uniform(0, 2 * np.pi, 400), rng.uniform(0, 0.35, 400)
    f = np.array([1.025e8, 1.333e8, 1.777e8])
    A = AiryBeam(az, za, f, diameter=14.0).evaluate()
    pe = PixelBeam(path, az, za, f, unpolarized="efield")
    x = np.pi * 14.0 * np.sin(za)[:, None] * f[None, :] / C
    main = x < 3.8317
    assert main.sum() > 600
    assert np.abs(pe.values - A)[0][main].max() < 2e-5


def test_pixel_beam_agrees_with_matvis_interpolation(airy_beamfits):
    matvis_beams = pytest.importorskip("matvis.cpu.beams")
    from pyuvdata import UVBeam

    path, freqs, _ = airy_beamfits
    rng = np.random.default_rng(11)
    az, za = rng.uniform(0, 2 * np.pi, 300), rng.uniform(0, 1.2, 300)
    f = np.array([1.0e8, 1.333e8])
    pb = PixelBeam(path, az, za, f, check_azza_domain=False)
    uvb = UVBeam.from_file(str(path))
    tx, ty = np.sin(za) * np.cos(az), np.sin(za) * np.sin(az)
    for i, fr in enumerate(f):
        interp = matvis_beams.UVBeamInterpolator(beam_list=[uvb], beam_idx=None,
                                                 polarized=False, nant=1, freq=fr,
                                                 nsrc=az.size, precision=2)
        interp.setup()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # matvis: sqrt of P < 0
            got = interp(tx, ty, check=False)[0, 0, 0].real
        ok = np.isfinite(got)
        np.testing.assert_allclose(pb.values[0, ok, i], got[ok], rtol=0, atol=1e-12)
        assert np.all(pb.values[0, ~ok, i] == 0.0)   # clipped where matvis gives NaN


def test_pixel_beam_amplitude_and_per_antenna(rng):
    az, za = _sky(rng, 30)
    pb = PixelBeam([PyuvAiry(diameter=14.0), PyuvGaussian(sigma=0.2)], az, za, FREQS)
    assert pb.in_shape == (2, FREQS.size) and pb.out_shape == (2, 30, FREQS.size)
    g = rng.uniform(0.5, 1.5, pb.in_shape)
    np.testing.assert_allclose(pb.evaluate(g), g[:, None, :] * pb.values, atol=0)
    np.testing.assert_allclose(pb.values[1], GaussianBeam(az, za, FREQS, sigma=0.2)
                               .evaluate()[0], atol=1e-12)


# -- bad input -----------------------------------------------------------------------------
def test_bad_input(rng, airy_beamfits):
    az, za = _sky(rng, 10)
    with pytest.raises(InputError, match="diameter"):
        AiryBeam(az, za, FREQS, diameter=14.0).evaluate(np.array([[-1.0]]))
    with pytest.raises(InputError, match="diameter"):
        AiryBeam(az, za, FREQS, diameter=0.0).evaluate()
    with pytest.raises(InputError, match="sigma"):
        GaussianBeam(az, za, FREQS, sigma=0.0).evaluate()
    with pytest.raises(InputError, match="Hz"):
        AiryBeam(az, za, FREQS / 1e6, diameter=14.0)            # MHz
    with pytest.raises(InputError, match=r"\[0, pi\]"):
        AiryBeam(az, np.rad2deg(za), FREQS)                      # degrees
    with pytest.raises(InputError, match="finite"):
        AiryBeam(np.where(np.arange(10) == 3, np.nan, az), za, FREQS)
    with pytest.raises(InputError, match="finite"):
        AiryBeam(az, za, FREQS).evaluate(np.array([[np.nan]]))
    with pytest.raises(ShapeError, match="same shape"):
        AiryBeam(az, za[:-1], FREQS)
    with pytest.raises(ShapeError, match="one-dimensional"):
        AiryBeam(az.reshape(2, 5), za.reshape(2, 5), FREQS)
    with pytest.raises(ShapeError):
        AiryBeam(az, za, FREQS, diameter=[14.0, 12.0])           # nbeam = 1
    with pytest.raises(ShapeError):
        AiryBeam(az, za, FREQS, diameter=14.0).forward(np.ones((2, 1)))
    with pytest.raises(InputError, match="chromatic"):
        AiryBeam(az, za, FREQS, chromatic="cubic")
    with pytest.raises(InputError, match="not sigma"):
        GaussianBeam(az, za, FREQS, sigma=0.1, parameter="diameter")
    with pytest.raises(InputError, match="too small"):
        DiameterToSigma(FREQS).forward(np.full((1, FREQS.size), 0.5))
    with pytest.raises(InputError, match="unknown"):
        AiryBeam(az, za, FREQS).params(sigma=1.0)
    bb = BasisBeam(az, za, FREQS, n_max=2)
    with pytest.raises(ShapeError):
        bb.fit(np.ones((3, 10, FREQS.size)))
    with pytest.raises(InputError, match="rho_max"):
        BasisBeam(az, za, FREQS, rho_max=1.5)
    with pytest.raises(InputError, match="does not exist"):
        PixelBeam("/nonexistent/beam.fits", az, za, FREQS)
    path, _, _ = airy_beamfits
    with pytest.raises(InputError, match="interpolate"):
        PixelBeam(path, az, za, np.array([2.5e8]))               # outside the beam's band
    power_uvb = PyuvGaussian(sigma=0.2).to_uvbeam(
        freq_array=FREQS, beam_type="power", axis1_array=np.deg2rad(np.arange(0, 360, 5.0)),
        axis2_array=np.deg2rad(np.arange(0, 90.1, 5.0)))
    with pytest.raises(InputError, match="efield"):
        PixelBeam(power_uvb, az, za, FREQS, unpolarized="efield")
    with pytest.raises(InputError, match="two feeds"):
        PixelBeam(power_uvb, az, za, FREQS).jones()


def test_backend_bound_at_construction(rng, xp):
    az, za = _sky(rng, 20)
    with linlim.use_backend(xp.__name__.split(".")[0]):
        beam = AiryBeam(az, za, FREQS, diameter=14.0)
    assert beam.xp is xp
    ref = AiryBeam(az, za, FREQS, diameter=14.0, xp=np).evaluate()
    np.testing.assert_allclose(to_numpy(beam.evaluate()), ref, atol=1e-14)
