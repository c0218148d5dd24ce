"""Bad-input probe of the public API (issue 21's "done when": no silent results, no hangs,
no unclear errors).

Each case below is a *different* mistake a new user makes, fed to a public entry point
(not the command line). Every one must raise a linlim error (:class:`LinlimError`) whose
message names the argument at fault; a wrong result, a NumPy/h5py traceback, or a message
that does not say which input is wrong fails the probe. The cases cover the classes of the
issue: frequencies (Hz, > 0), times (JD vs MJD/Unix), directions, axes, flags/weights,
NaN/inf data, degenerate or empty calibration, shapes, enumerations, memory and files.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time

from linlim.errors import LinlimError

JD0 = 2459000.5
FREQS = np.linspace(100e6, 120e6, 3)
AZ = np.linspace(0.1, 6.0, 5)
ZA = np.linspace(0.0, 1.2, 5)
ENU1 = np.array([[[0.0], [0.0], [1.0]]])           # one source at zenith, one time
ANTPOS2 = np.array([[0.0, 0, 0], [14.6, 0, 0]])
TRI1, TRI2 = np.array([0, 0, 1]), np.array([1, 2, 2])


def _rng():
    return np.random.default_rng(21)


def _vis(shape=(2, 3, 3)):
    r = _rng()
    return r.normal(size=shape) + 1j * r.normal(size=shape)


def _with_nan(a, idx):
    a = a.copy()
    a[idx] = np.nan
    return a


def _uvbeam():
    from pyuvdata.analytic_beam import AiryBeam

    return AiryBeam(diameter=14.0).to_uvbeam(
        freq_array=np.array([100e6, 110e6]),
        axis1_array=np.linspace(0, 2 * np.pi, 8, endpoint=False),
        axis2_array=np.linspace(0, np.pi / 2, 5))


def _simulate(**over):
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import simulate_vis
    from linlim.telescope import hera_site

    kw = dict(ants=ANTPOS2, fluxes=np.ones((1, 3)), ra=np.array([0.3]), dec=np.array([-0.5]),
              freqs=FREQS, times=Time([JD0], format="jd"), beams=AiryBeam(diameter=14.0),
              telescope_loc=hera_site())
    kw.update(over)
    return simulate_vis(**kw)


def _rime(**over):
    from linlim.rime import RIME

    kw = dict(enu=ENU1, antpos=ANTPOS2, freqs=FREQS, ant1=[0], ant2=[1])
    kw.update(over)
    return RIME(**kw)


def _stefcal(**over):
    from linlim.calibration import stefcal

    g = np.array([1.1 + 0.1j, 0.9 - 0.2j, 1.0 + 0.3j])
    M = _vis()
    kw = dict(data=g[TRI1] * np.conj(g[TRI2]) * M, model=M, ant1=TRI1, ant2=TRI2, nants=3)
    kw.update(over)
    return stefcal(**kw)


def _likelihood(data=None, **over):
    from linlim.likelihood import GaussianLikelihood
    from linlim.operators.linear import Identity

    kw = dict(sigma=1.0)
    kw.update(over)
    return GaussianLikelihood(Identity((4,)), np.ones(4) if data is None else data, **kw)


def _airy(**over):
    from linlim.beam import AiryBeam

    kw = dict(az=AZ, za=ZA, freqs=FREQS, diameter=14.0)
    kw.update(over)
    return AiryBeam(**kw)


def _read_truncated_chains(tmp_path):
    from linlim.inference.hmc import HMC
    from linlim.io.chains import read_chains

    class Gauss:
        size, xp = 2, np

        def value_and_grad(self, x):
            return -0.5 * float(x @ x), -x

    path = tmp_path / "chains.h5"
    HMC(Gauss(), metric="identity").sample(5, 5, chains=1, seed=1, path=str(path),
                                           progress=False)
    path.write_bytes(path.read_bytes()[:500])
    return read_chains(path)


def _load_garbage_checkpoint(tmp_path):
    from linlim.inference.checkpoint import load_checkpoint

    path = tmp_path / "opt.h5"
    path.write_bytes(b"not hdf5 at all")
    return load_checkpoint(path, "lbfgs")


def _hmc(**over):
    from linlim.inference.hmc import HMC

    class Gauss:
        size, xp = 2, np

        def value_and_grad(self, x):
            return -0.5 * float(x @ x), -x

    kw = dict(num_draws=5, num_warmup=5, chains=1, progress=False)
    kw.update(over)
    return HMC(Gauss(), metric="identity").sample(**kw)


def _sum_axis(axis):
    from linlim.operators.linear import SumAxis

    return SumAxis((3, 4), axis=axis)


def _take(**over):
    from linlim.operators.linear import Take

    kw = dict(in_shape=(3, 4), index=[0, 1], axis=0)
    kw.update(over)
    return Take(**kw)


def _source_enu(**over):
    from linlim.telescope import source_enu

    kw = dict(ra=[0.3], dec=[-0.5], times_jd=[JD0], site="HERA")
    kw.update(over)
    return source_enu(**kw)


def _gain_problem_all_flagged():
    from linlim.calibration.solve import gain_problem

    M = _vis()
    return gain_problem(M, M, TRI1, TRI2, 3, flags=np.ones(M.shape, dtype=bool))


def _sample_interval(**over):
    from linlim.pipelines.sample import SAMPLE_DEFAULTS, checkpoint_interval

    return checkpoint_interval({**SAMPLE_DEFAULTS["hmc"], **over})


def _layout(**over):
    from linlim.telescope import ArrayLayout

    kw = dict(antpos=ANTPOS2)
    kw.update(over)
    return ArrayLayout(**kw)


# (id, call, word the message must contain: the argument's name)
CASES = [
    # frequencies: Hz, > 0, finite
    ("airy-freqs-MHz", lambda tmp: _airy(freqs=FREQS / 1e6), "freqs"),
    ("airy-freqs-negative", lambda tmp: _airy(freqs=-FREQS), "freqs"),
    ("rime-freqs-GHz", lambda tmp: _rime(freqs=FREQS / 1e9), "freqs"),
    ("rime-freqs-nan", lambda tmp: _rime(freqs=_with_nan(FREQS, 1)), "freqs"),
    ("simulate-freqs-MHz-pyuvdata-beam", lambda tmp: _simulate(freqs=FREQS / 1e6), "freqs"),
    ("simulate-freqs-zero-array-beam",
     lambda tmp: _simulate(freqs=np.zeros(3), beams=np.ones((1, 1, 1, 3))), "freqs"),
    ("pixelbeam-freqs-outside-band",
     lambda tmp: __import__("linlim.beam", fromlist=["PixelBeam"]).PixelBeam(
         _uvbeam(), AZ, ZA, np.array([150e6])), "freqs"),
    ("spectrum-freqs-2d",
     lambda tmp: __import__("linlim.sky", fromlist=["PowerLawSpectrum"]).PowerLawSpectrum(
         np.ones((2, 2)) * 1e8, 1.5e8, 2), "freqs"),
    ("delays-freqs-uneven",
     lambda tmp: __import__("linlim.filters", fromlist=["delays"]).delays(
         np.array([1e8, 1.1e8, 1.5e8])), "freqs"),
    # times: JD, not MJD / Unix / nonsense
    ("lst-mjd", lambda tmp: __import__("linlim.telescope", fromlist=["lst"]).lst(
        [59000.5], "HERA"), "times_jd"),
    ("source-enu-unix-seconds", lambda tmp: _source_enu(times_jd=[1.6e9]), "times_jd"),
    ("simulate-mjd-as-jd-Time",
     lambda tmp: _simulate(times=Time([59000.5], format="jd")), "times"),
    ("jd-array-ntimes-0", lambda tmp: __import__(
        "linlim.telescope", fromlist=["jd_array"]).jd_array(JD0, 10.0, 0), "ntimes"),
    ("jd-array-negative-step", lambda tmp: __import__(
        "linlim.telescope", fromlist=["jd_array"]).jd_array(JD0, -10.0, 3), "integration_s"),
    # directions and angles
    ("rime-enu-nan-direction", lambda tmp: _rime(enu=np.array([[[np.nan], [0.0], [1.0]]])),
     "enu"),
    ("rime-enu-not-unit", lambda tmp: _rime(enu=ENU1 * 2.0), "enu"),
    ("rime-enu-wrong-shape", lambda tmp: _rime(enu=np.ones((1, 4, 1))), "enu"),
    ("horizon-mask-inf", lambda tmp: __import__(
        "linlim.telescope", fromlist=["horizon_mask"]).horizon_mask(
        np.array([[[np.inf], [0.0], [0.0]]])), "enu"),
    ("source-enu-ra-degrees", lambda tmp: _source_enu(ra=[350.0]), "ra"),
    ("source-enu-dec-too-large", lambda tmp: _source_enu(dec=[2.0]), "dec"),
    ("airy-za-degrees", lambda tmp: _airy(za=np.rad2deg(ZA)), "za"),
    ("airy-az-nan", lambda tmp: _airy(az=_with_nan(AZ, 2)), "az"),
    ("enu-to-az-za-orientation", lambda tmp: __import__(
        "linlim.telescope", fromlist=["enu_to_az_za"]).enu_to_az_za(
        ENU1[0], orientation="north"), "orientation"),
    # positions, layouts, sites
    ("rime-antpos-nan", lambda tmp: _rime(antpos=_with_nan(ANTPOS2, (1, 0))), "antpos"),
    ("rime-ant1-out-of-range", lambda tmp: _rime(ant1=[0], ant2=[5]), "ant2"),
    ("layout-antnums-repeated", lambda tmp: _layout(antnums=[3, 3]), "antnums"),
    ("site-latitude-100", lambda tmp: __import__(
        "linlim.telescope", fromlist=["site_from_geodetic"]).site_from_geodetic(
        100.0, 21.4, 1000.0), "lat_deg"),
    # axes: in range, no wrap-around
    ("sumaxis-axis-5", lambda tmp: _sum_axis(5), "axis"),
    ("sumaxis-duplicate-axes", lambda tmp: _sum_axis((1, -1)), "axis"),
    ("take-axis-negative-out-of-range", lambda tmp: _take(axis=-3), "axis"),
    ("take-index-out-of-range", lambda tmp: _take(index=[7]), "index"),
    ("fft-axis-2", lambda tmp: __import__(
        "linlim.operators.linear", fromlist=["FFT"]).FFT((3, 4), axis=2), "axis"),
    # beam arrays and beam options
    ("simulate-beam-array-nan",
     lambda tmp: _simulate(beams=_with_nan(np.ones((1, 1, 1, 3)), (0, 0, 0, 1))), "beams"),
    ("gaussian-beam-sigma-0", lambda tmp: __import__(
        "linlim.beam", fromlist=["GaussianBeam"]).GaussianBeam(AZ, ZA, FREQS, sigma=0.0)
     .evaluate(), "sigma"),
    ("simulate-precision-3", lambda tmp: _simulate(precision=3), "precision"),
    ("simulate-fluxes-inf",
     lambda tmp: _simulate(fluxes=np.array([[1.0, np.inf, 1.0]])), "fluxes"),
    ("rime-dtype-float", lambda tmp: _rime(dtype="float64"), "dtype"),
    # calibration: NaN, degenerate, empty, shapes
    ("stefcal-one-baseline", lambda tmp: _stefcal(
        data=_vis((2, 3, 1)), model=_vis((2, 3, 1)), ant1=[0], ant2=[1], nants=2), "ant1"),
    ("stefcal-unflagged-nan", lambda tmp: _stefcal(data=_with_nan(_vis(), (1, 2, 0))),
     "data"),
    ("stefcal-all-flagged", lambda tmp: _stefcal(flags=np.ones((2, 3, 3), dtype=bool)),
     "data"),
    ("stefcal-nonfinite-policy", lambda tmp: _stefcal(nonfinite="zero"), "nonfinite"),
    ("stefcal-nants-0", lambda tmp: _stefcal(nants=0), "nants"),
    ("stefcal-ant1-floats", lambda tmp: _stefcal(ant1=TRI1 + 0.5), "ant1"),
    ("stefcal-gains0-shape", lambda tmp: _stefcal(gains0=np.ones((3, 1))), "gains0"),
    ("stefcal-negative-weights", lambda tmp: _stefcal(weights=-np.ones((2, 3, 3))),
     "weights"),
    ("gain-problem-all-flagged", lambda tmp: _gain_problem_all_flagged(), "data"),
    # likelihood
    ("likelihood-unflagged-inf", lambda tmp: _likelihood(np.array([1.0, np.inf, 0, 0])),
     "data"),
    ("likelihood-all-weights-zero", lambda tmp: _likelihood(sigma=None, weights=0.0), "data"),
    ("likelihood-flags-shape", lambda tmp: _likelihood(flags=np.zeros(3, dtype=bool)),
     "flags"),
    ("likelihood-sigma-zero", lambda tmp: _likelihood(sigma=0.0), "sigma"),
    ("likelihood-weights-nan", lambda tmp: _likelihood(sigma=None, weights=np.nan), "weights"),
    # samplers, checkpoints, files
    ("hmc-negative-draws", lambda tmp: _hmc(num_draws=-1), "num_draws"),
    ("read-chains-truncated", _read_truncated_chains, "corrupt"),
    ("load-checkpoint-garbage", _load_garbage_checkpoint, "corrupt"),
    ("sample-checkpoint-every-string", lambda tmp: _sample_interval(checkpoint_every="100"),
     "checkpoint_every"),
    ("sample-checkpoint-seconds-negative",
     lambda tmp: _sample_interval(checkpoint_seconds=-5.0), "checkpoint_seconds"),
]


def test_probe_has_at_least_40_distinct_cases():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_linlim_error_naming_the_argument(case, tmp_path):
    _, call, word = case
    with pytest.raises(LinlimError) as err:
        call(tmp_path)
    assert word in str(err.value), f"message does not name {word!r}: {err.value}"
