"""Regression tests for the issue-21 bad-input probe (Python API)."""

import numpy as np
import pytest

from linlim.errors import InputError


def test_jd_array_refuses_mjd_start():
    from linlim.telescope.times import jd_array

    with pytest.raises(InputError, match=r"start_jd.*MJD"):
        jd_array(59000.5, 10, 3)
    assert jd_array(2459000.5, 10, 3).shape == (3,)


def test_az_za_to_enu_refuses_nonfinite():
    from linlim.telescope.coordinates import az_za_to_enu

    with pytest.raises(InputError, match="az"):
        az_za_to_enu([np.nan], [0.1])
    with pytest.raises(InputError, match="za"):
        az_za_to_enu([0.0], [np.inf])
    assert np.allclose(az_za_to_enu([0.0], [0.0])[:, 0], [0, 0, 1])


def _stefcal_inputs(nants=3, seed=0):
    rng = np.random.default_rng(seed)
    a1, a2 = np.triu_indices(nants, 1)
    nbl = a1.size
    m = rng.normal(size=(2, 3, nbl)) + 1j * rng.normal(size=(2, 3, nbl))
    g = 1 + 0.1 * (rng.normal(size=nants) + 1j * rng.normal(size=nants))
    return g[a1] * np.conj(g[a2]) * m, m, a1, a2


def test_stefcal_zero_model_is_an_error():
    from linlim.calibration import stefcal

    d, m, a1, a2 = _stefcal_inputs()
    with pytest.raises(InputError, match="model.*zero"):
        stefcal(d, np.zeros_like(m), a1, a2, 3)


def test_stefcal_zero_model_on_one_antenna_flags_it():
    from linlim.calibration import stefcal

    d, m, a1, a2 = _stefcal_inputs(nants=4)
    m[..., (a1 == 3) | (a2 == 3)] = 0
    with pytest.warns(UserWarning, match=r"antenna\(s\) \[3\]"):
        res = stefcal(d, m, a1, a2, 4)
    assert np.asarray(res.flags)[3].all()
    assert not np.asarray(res.flags)[:3].any()


@pytest.mark.parametrize("tol", [-1.0, np.nan, "x"])
def test_stefcal_refuses_bad_tol(tol):
    from linlim.calibration import stefcal

    d, m, a1, a2 = _stefcal_inputs()
    with pytest.raises(InputError, match="tol"):
        stefcal(d, m, a1, a2, 3, tol=tol)
    with pytest.raises(InputError, match="maxiter"):
        stefcal(d, m, a1, a2, 3, maxiter=0)


def test_flags_must_be_boolean_or_exactly_0_1():
    from linlim.likelihood import GaussianLikelihood, noise_weights
    from linlim.operators.linear import Identity
    from linlim.validation import check_flags

    with pytest.raises(InputError, match=r"GaussianLikelihood: flags: expected booleans"):
        GaussianLikelihood(Identity((4,)), np.ones(4), sigma=1.0,
                           flags=np.array([0.5, 0, 0, 0]))
    with pytest.raises(InputError, match=r"noise_weights: flags"):
        noise_weights(1.0, flags=np.array([0.5, 0.0]), shape=(2,))
    assert check_flags(np.array([1.0, 0.0]), (2,)).tolist() == [True, False]
    lik = GaussianLikelihood(Identity((4,)), np.ones(4), sigma=1.0,
                             flags=np.array([1.0, 0, 0, 0]))
    assert np.asarray(lik.weights).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_smoothness_prior_axis_is_checked():
    from linlim.priors import FiniteDifference, SmoothnessPrior

    with pytest.raises(InputError, match=r"SmoothnessPrior: axis.*received 3"):
        SmoothnessPrior((4,), axis=3)
    with pytest.raises(InputError, match=r"FiniteDifference: axis.*received -3"):
        FiniteDifference((4, 5), axis=-3)
    assert SmoothnessPrior((4, 5), axis=-1).D.axis == 1


def _posterior():
    from linlim.likelihood import GaussianLikelihood, LogPosterior
    from linlim.operators.linear import Identity

    return LogPosterior(GaussianLikelihood(Identity((4,)), np.ones(4), sigma=1.0))


@pytest.mark.parametrize("lr", [np.nan, 0.0, -1e-3, np.inf])
def test_adam_refuses_bad_lr(lr):
    from linlim.inference.adam import adam

    with pytest.raises(InputError, match="adam: lr"):
        adam(_posterior(), np.zeros(4), lr=lr)
    with pytest.raises(InputError, match="adam: lr\\(1\\)"):
        adam(_posterior(), np.zeros(4), lr=lambda k: lr)


def test_adam_stops_on_nonfinite_loss():
    from linlim.inference.adam import adam

    def fun(x):
        v = float(x @ x)
        return (np.nan if v > 1.0 else v), 2 * x

    res = adam(fun, np.array([0.5]), lr=10.0, maxiter=50)
    assert not res.success and "non-finite" in res.message and res.nit == 1


def test_lbfgs_refuses_bad_maxiter_and_fisher_nan_theta():
    from linlim.inference.fisher import fisher_matrix
    from linlim.inference.lbfgs import lbfgs

    with pytest.raises(InputError, match="lbfgs: maxiter"):
        lbfgs(_posterior(), np.zeros(4), maxiter=-3)
    with pytest.raises(InputError, match="lbfgs: maxfun"):
        lbfgs(_posterior(), np.zeros(4), maxfun=2.5)
    with pytest.raises(InputError, match=r"fisher_matrix: theta.*\[1\]"):
        fisher_matrix(_posterior(), np.array([0.0, np.nan, 0.0, 0.0]))
    assert np.asarray(fisher_matrix(_posterior(), np.zeros(4))).shape == (4, 4)


@pytest.mark.parametrize("kw, name", [(dict(num_draws=5, num_warmup=2.5), "num_warmup"),
                                      (dict(num_draws=0, num_warmup=2), "num_draws"),
                                      (dict(num_draws=5.0, num_warmup=2), "num_draws"),
                                      (dict(num_draws=5, num_warmup=-1), "num_warmup")])
def test_hmc_sample_counts_must_be_integers(kw, name):
    from linlim.inference.hmc import HMC

    with pytest.raises(InputError, match=f"HMC.sample: {name}"):
        HMC(_posterior(), metric="identity").sample(**kw, chains=1, seed=0, progress=False)


def test_band_powers_checks_inputs():
    from linlim.pipelines.power import band_powers

    rng = np.random.default_rng(1)
    ns = 6
    G = np.diag(rng.uniform(1, 3, ns))
    z = rng.normal(size=ns)
    band = np.array([0, 0, 0, 1, 1, 1])
    p0 = np.ones(2)
    assert np.all(np.isfinite(band_powers(G, z, band, p0).estimate))
    with pytest.raises(InputError, match=r"band_powers: z_hat.*NaN"):
        band_powers(G, np.where(np.arange(ns) == 2, np.nan, z), band, p0)
    with pytest.raises(InputError, match=r"band_powers: G.*NaN"):
        band_powers(G * np.nan, z, band, p0)
    with pytest.raises(InputError, match=r"band_powers: band.*\[0, 1\].*\[0, 2\]"):
        band_powers(G, z, np.array([0, 0, 1, 1, 2, 2]), p0)
    with pytest.raises(InputError, match=r"band_powers: band.*band\(s\) \[2\]"):
        band_powers(G, z, band, np.ones(3))


def test_broadcast_and_slice_errors_name_shapes():
    from linlim.errors import ShapeError
    from linlim.operators.linear import Broadcast, Slice

    with pytest.raises(ShapeError, match=r"Broadcast: in_shape \(3,\).*out_shape \(4, 2\)"):
        Broadcast((3,), (4, 2))
    with pytest.raises(InputError, match=r"Slice: key\[0\].*step 0.*\(3, 4\)"):
        Slice((3, 4), [slice(0, 3, 0)])
    with pytest.raises(ShapeError, match=r"Slice: key\[0\].*selects nothing.*length 3"):
        Slice((3, 4), [slice(5, 9)])
    with pytest.raises(ShapeError, match=r"Slice: key has 3 slices"):
        Slice((3, 4), [slice(None)] * 3)
    assert Slice((3, 4), [slice(1, 3)]).out_shape == (2, 4)
    assert Broadcast((1, 2), (4, 2)).out_shape == (4, 2)


def test_simulate_vis_checks_beam_array_shape():
    from astropy.time import Time

    from linlim.errors import ShapeError
    from linlim.rime import simulate_vis
    from linlim.telescope import hera_site

    kw = dict(ants=np.array([[0.0, 0, 0], [14.6, 0, 0]]), fluxes=np.ones((1, 3)),
              ra=np.array([0.3]), dec=np.array([-0.5]), freqs=np.linspace(150e6, 160e6, 3),
              times=Time([2459000.5], format="jd"), telescope_loc=hera_site())
    with pytest.raises(ShapeError, match=r"simulate_vis: beams:.*\(Nbeam, 1, 1, 3\).*"
                                         r"\(1, 1, 1, 5\)"):
        simulate_vis(beams=np.ones((1, 1, 1, 5)), **kw)
    assert simulate_vis(beams=np.ones((1, 1, 1, 3)), **kw).shape == (3, 1, 4)


def test_solve_gains_refuses_nonfinite_theta0():
    from linlim.calibration.solve import gain_problem, solve_gains

    d, m, a1, a2 = _stefcal_inputs()
    p = gain_problem(d, m, a1, a2, 3)
    n = p.params.size
    with pytest.raises(InputError, match=r"solve_gains: theta0.*1 NaN/inf.*\[0\]"):
        solve_gains(p, theta0=np.where(np.arange(n) == 0, np.nan, 1.0))


def test_pixelbeam_cubic_needs_four_beam_frequencies():
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.beam import PixelBeam

    uvb = AiryBeam(diameter=14.0).to_uvbeam(
        freq_array=np.array([140e6, 170e6]),
        axis1_array=np.linspace(0, 2 * np.pi, 8, endpoint=False),
        axis2_array=np.linspace(0, np.pi / 2, 5))
    az, za = np.linspace(0.1, 6.0, 5), np.linspace(0.0, 1.2, 5)
    freqs = np.linspace(150e6, 160e6, 3)
    with pytest.raises(InputError, match=r"PixelBeam: freq_interp_kind='cubic' needs >= 4.*"
                                         r"with 2.*'linear'"):
        PixelBeam(uvb, az, za, freqs)
    pb = PixelBeam(uvb, az, za, freqs, freq_interp_kind="linear")
    assert np.all(np.isfinite(np.asarray(pb.values)))
