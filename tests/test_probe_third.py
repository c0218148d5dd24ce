"""Regression tests for the third bad-input probe of issue 21 (different cases of the same
classes: operators and axes, RIME, times, directions, beams, files, likelihood, solvers,
diagnostics, config and command line).

Each case was a silent result or an unclear error before its fix; it must now raise a
linlim error naming the argument (and what was expected), or (for the few legitimate inputs
that used to crash) work.
"""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError, LinlimError, ShapeError

FREQS = np.linspace(150e6, 160e6, 4)
JD0 = 2459000.5
ANT2 = np.array([[0.0, 0, 0], [14.6, 0, 0]])
A1, A2 = np.triu_indices(4, 1)


def _vis(shape, seed=3):
    r = np.random.default_rng(seed)
    return r.normal(size=shape) + 1j * r.normal(size=shape)


def _rime(**over):
    from linlim.rime import RIME

    kw = dict(enu=np.array([[[0.0], [0.0], [1.0]]]), antpos=ANT2, freqs=FREQS, ant1=[0],
              ant2=[1])
    kw.update(over)
    return RIME(**kw)


def _uvbeam():
    from pyuvdata.analytic_beam import AiryBeam

    return AiryBeam(diameter=14.0).to_uvbeam(
        freq_array=np.array([140e6, 150e6, 160e6, 170e6]),
        axis1_array=np.linspace(0, 2 * np.pi, 8, endpoint=False),
        axis2_array=np.linspace(0, np.pi / 2, 5))


def _pixelbeam(**over):
    from linlim.beam import PixelBeam

    kw = dict(az=np.linspace(0.1, 6.0, 5), za=np.linspace(0.0, 1.2, 5), freqs=FREQS)
    kw.update(over)
    return PixelBeam(_uvbeam(), **kw)


def _lik(**over):
    from linlim.likelihood import GaussianLikelihood
    from linlim.operators.linear import Identity

    kw = dict(sigma=1.0)
    kw.update(over)
    data = kw.pop("data", np.ones(4))
    return GaussianLikelihood(Identity((4,)), data, **kw)


def _post():
    from linlim.likelihood import LogPosterior

    return LogPosterior(_lik())


class _Gauss:
    size, xp = 2, np

    def value_and_grad(self, x):
        return -0.5 * float(x @ x), -x


def _write_uvh5(path, **over):
    from linlim.io.uvdata import write_uvh5
    from linlim.telescope import hera_site

    a1, a2 = np.triu_indices(2)
    kw = dict(antpos=ANT2, freqs=FREQS, times_jd=[JD0], ant1=a1, ant2=a2,
              telescope_loc=hera_site(), pols=("ee",), clobber=True)
    kw.update(over)
    vis = kw.pop("vis", np.ones((1, 1, 4, 3), complex))
    return write_uvh5(path, vis, **kw)


def _edit_file(src, dst, fn):
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def _dup_freq(f):
    a = f["Header/freq_array"][...]
    a[..., 1] = a[..., 0]
    f["Header/freq_array"][...] = a


def _calfits(tmp_path, edit=None):
    """A calfits from linlim's own writer (2 antennas, 4 channels), optionally edited."""
    from linlim.io.uvcal import gains_to_uvcal

    uv = _write_uvh5(tmp_path / "for_cal.uvh5")
    uvc = gains_to_uvcal(np.ones((1, 2, 1, 4), complex), telescope=uv.telescope,
                         times=np.array([JD0]), freqs=FREQS, ant_numbers=[0, 1], jones=[-5])
    if edit is not None:
        edit(uvc)
    path = tmp_path / "g.calfits"
    uvc.write_calfits(str(path), clobber=True, run_check=False)
    return path


def _mhz_cal(uvc):
    uvc.freq_array = uvc.freq_array / 1e6
    uvc.channel_width = uvc.channel_width / 1e6


def _mjd_cal(uvc):
    if uvc.time_array is not None:
        uvc.time_array = uvc.time_array - 2400000.5
    if uvc.time_range is not None:
        uvc.time_range = uvc.time_range - 2400000.5


def _read_uvcal(tmp_path, edit):
    from linlim.io.uvcal import read_uvcal

    return read_uvcal(_calfits(tmp_path, edit))


def _stefcal_real_data(tmp):
    from linlim.calibration import stefcal

    m = _vis((2, 4, 6))
    return stefcal(np.abs(m), m, A1, A2, 4)


def _read_dup_freq(tmp):
    from linlim.io.uvdata import read_uvh5

    _write_uvh5(tmp / "ok.uvh5")
    return read_uvh5(_edit_file(tmp / "ok.uvh5", tmp / "dup.uvh5", _dup_freq))


def _garbage_beam(tmp):
    from linlim.beam.uvbeam import load_beam

    p = tmp / "notabeam.uvh5"
    _write_uvh5(p)
    return load_beam(p)


def _garbage_h5_catalog(tmp):
    from linlim.sky import PointSourceCatalog

    (tmp / "cat.h5").write_bytes(b"not hdf5")
    return PointSourceCatalog.from_hdf5(tmp / "cat.h5")


def _existing_uvh5(tmp):
    _write_uvh5(tmp / "x.uvh5")
    return _write_uvh5(tmp / "x.uvh5", clobber=False)


def _op(name):
    import linlim.operators.elementwise as el
    import linlim.operators.linear as lin

    return getattr(lin, name, None) or getattr(el, name)


# (id, call(tmp_path), exception, pattern the message must match)
CASES = [
    ("take-float-index", lambda t: _op("Take")((3, 4), index=[0.5, 1.7], axis=1), InputError,
     r"Take: index: expected integer indices.*0\.5"),
    ("identity-negative-shape", lambda t: _op("Identity")((-3,)), ShapeError,
     r"shape: expected non-negative.*\(-3,\)"),
    ("reshape-negative-shape", lambda t: _op("Reshape")((3, 4), (-2, -6)), ShapeError,
     r"non-negative.*\(-2, -6\)"),
    ("diagonal-nan", lambda t: _op("Diagonal")(np.array([1.0, np.nan])), InputError,
     r"Diagonal: diag: expected finite.*\[1\]"),
    ("matrixmult-inf", lambda t: _op("MatrixMult")(np.array([[1.0, np.inf]])), InputError,
     r"MatrixMult: matrix: expected finite"),
    ("power-nan-exponent", lambda t: _op("Power")((3,), np.nan), InputError,
     r"Power: p: expected a finite"),
    ("rime-ant-float", lambda t: _rime(ant1=[0.5]), InputError,
     r"ant1: expected integer indices"),
    ("rime-freqs-quantity-metres",
     lambda t: _rime(freqs=np.ones(4) * __import__("astropy.units").units.m), InputError,
     r"RIME: freqs: expected a quantity convertible to Hz"),
    ("az-za-to-enu-za-above-pi", lambda t: __import__(
        "linlim.telescope", fromlist=["az_za_to_enu"]).az_za_to_enu([0.1], [4.0]), InputError,
     r"za: expected zenith angles in \[0, pi\]"),
    ("angular-separation-nan", lambda t: __import__(
        "linlim.telescope.coordinates", fromlist=["angular_separation"]).angular_separation(
        np.array([[np.nan], [0.0], [1.0]]), np.array([[0.0], [0.0], [1.0]])), InputError,
     r"angular_separation: a: expected finite"),
    ("lm-directions-nan", lambda t: __import__(
        "linlim.imaging", fromlist=["lm_directions"]).lm_directions([np.nan], [0.1]),
     InputError, r"lm_directions: l: expected finite"),
    ("pixelbeam-feed-typo", lambda t: _pixelbeam(feed="q"), InputError,
     r"PixelBeam: feed: expected one of.*'x'.*received 'q'"),
    ("pixelbeam-interp-kind-typo", lambda t: _pixelbeam(freq_interp_kind="cubik"),
     InputError, r"PixelBeam: freq_interp_kind: expected one of.*'cubik'"),
    ("load-beam-not-a-beam-file", _garbage_beam, InputError,
     r"PixelBeam: pyuvdata cannot read beam file"),
    ("catalog-hdf5-garbage", _garbage_h5_catalog, InputError,
     r"from_hdf5: cannot read .*cat\.h5"),
    ("read-uvh5-duplicate-freqs", _read_dup_freq, InputError,
     r"freq_array: expected distinct channel frequencies"),
    ("read-uvcal-mhz", lambda t: _read_uvcal(t, _mhz_cal), InputError,
     r"freq_array: expected frequencies in Hz.*MHz"),
    ("read-uvcal-mjd", lambda t: _read_uvcal(t, _mjd_cal), InputError,
     r"time_(array|range): expected Julian dates.*MJD"),
    ("write-uvh5-site-name", lambda t: _write_uvh5(t / "a.uvh5", telescope_loc="HERRA"),
     InputError, r"unknown site name.*HERRA"),
    ("write-uvh5-mhz", lambda t: _write_uvh5(t / "b.uvh5", freqs=FREQS / 1e6), InputError,
     r"vis_to_uvdata: freqs: .*MHz"),
    ("write-uvh5-mjd", lambda t: _write_uvh5(t / "c.uvh5", times_jd=[59000.5]), InputError,
     r"vis_to_uvdata: times_jd: .*MJD"),
    ("write-uvh5-existing", _existing_uvh5, InputError,
     r"write_uvh5: path: .* already exists; pass clobber=True"),
    ("likelihood-sigma-shape", lambda t: _lik(sigma=np.ones(3)), ShapeError,
     r"GaussianLikelihood: sigma .* do not broadcast"),
    ("likelihood-sigma-complex", lambda t: _lik(sigma=np.ones(4) * (1 + 1j)), InputError,
     r"sigma: expected a real noise rms"),
    ("likelihood-data-strings", lambda t: _lik(data=np.array(["1", "2", "3", "4"])),
     LinlimError, r"data.*(dtype|expected)"),
    ("lbfgs-bounds-shape", lambda t: __import__(
        "linlim.inference", fromlist=["lbfgs"]).lbfgs(
        _post(), np.zeros(4), bounds=(np.zeros(3), np.ones(3))), ShapeError,
     r"lbfgs: bounds: expected lo and hi .*\(4,\)"),
    ("hmc-seed-string", lambda t: __import__(
        "linlim.inference.hmc", fromlist=["HMC"]).HMC(_Gauss(), metric="identity").sample(
        5, 5, chains=1, seed="abc", progress=False), InputError,
     r"HMC.sample: seed: expected an integer >= 0"),
    ("gauss-newton-ftol-negative", lambda t: __import__(
        "linlim.inference", fromlist=["gauss_newton"]).gauss_newton(
        _post(), np.zeros(4), ftol=-1.0), InputError,
     r"gauss_newton: ftol: expected a finite number >= 0"),
    ("ess-quantile-prob-2", lambda t: __import__(
        "linlim.inference.diagnostics", fromlist=["ess_quantile"]).ess_quantile(
        np.random.default_rng(0).normal(size=(2, 50)), 2.0), InputError,
     r"ess_quantile: prob: expected a probability in \(0, 1\)"),
    ("grf-prior-shape-zero", lambda t: __import__(
        "linlim.priors", fromlist=["GRFPrior"]).GRFPrior(lambda k: np.ones_like(k), (0,)),
     ShapeError, r"GRFPrior: shape: expected lengths >= 1"),
    ("grf-prior-spacing-negative", lambda t: __import__(
        "linlim.priors", fromlist=["GRFPrior"]).GRFPrior(lambda k: np.ones_like(k), (8,),
                                                         spacing=-1.0),
     InputError, r"GRFPrior: spacing: expected finite"),
    ("stefcal-real-data", _stefcal_real_data, InputError,
     r"stefcal: data: expected complex visibilities"),
]


def test_third_probe_cases_are_distinct():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_third_probe_bad_input_is_a_clear_error(case, tmp_path):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(tmp_path)


# ------------------------------------------------------------------ legitimate inputs
def test_simulate_vis_accepts_a_list_of_julian_dates():
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import simulate_vis
    from linlim.telescope import hera_site

    kw = dict(ants=ANT2, fluxes=np.ones((1, 4)), ra=np.array([0.3]), dec=np.array([-0.5]),
              freqs=FREQS, beams=AiryBeam(diameter=14.0), telescope_loc=hera_site())
    from astropy.time import Time

    a = simulate_vis(times=[JD0], **kw)
    b = simulate_vis(times=Time([JD0], format="jd"), **kw)
    assert np.allclose(a, b)


def test_log_posterior_accepts_one_prior_and_checks_its_size():
    from linlim.likelihood import LogPosterior
    from linlim.priors import GaussianPrior

    post = LogPosterior(_lik(), GaussianPrior(np.zeros(4), sigma=1.0))
    assert len(post.priors) == 1
    with pytest.raises(LinlimError, match="size|entries|shape"):
        LogPosterior(_lik(), GaussianPrior(np.zeros(3), sigma=1.0)).value_and_grad(
            np.zeros(4))


def test_read_uvh5_reports_vis_units(tmp_path):
    from linlim.io.uvdata import read_uvh5

    _write_uvh5(tmp_path / "u.uvh5", vis_units="K str")
    assert read_uvh5(tmp_path / "u.uvh5")[1]["vis_units"] == "K str"


def test_calibrate_noiseless_data_is_not_flagged_as_low_snr():
    """Noiseless data (chi^2 = 0) used to give S/N = |g| sqrt(F) (noise scale 1), flagging
    every gain of a small array as low S/N, with exit status 0."""
    from linlim.pipelines.calibrate import _cell_statistics

    m = np.ones((2, 1, 6), complex)
    g = np.ones((4, 1, 1), complex)
    st = _cell_statistics(m, m, np.ones(m.shape), g, A1, A2, np.zeros(2, int),
                          np.zeros(1, int))
    assert np.all(st["snr"] > 3.0)


def test_stefcal_refuses_all_zero_data():
    """All-zero data used to give a calfits of NaN gains, unflagged, with exit status 0."""
    from linlim.calibration import stefcal

    m = _vis((2, 4, 6))
    with pytest.raises(InputError, match=r"stefcal: data: expected non-zero visibilities"):
        stefcal(np.zeros_like(m), m, A1, A2, 4)


# ------------------------------------------------------------------------ command line
def _cli(argv, capsys):
    from linlim.cli import main

    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.mark.parametrize("yaml_text, pattern", [
    ("seed: 1\nseed: 2\n", r"duplicate key 'seed' \(first given on line 1\)"),
    ("scenario:\n  foregrounds:\n    flux_min_jy: 50\n",
     r"'scenario.foregrounds.flux_min_jy' = 50 exceeds 'scenario.foregrounds.flux_max_jy'"),
])
def test_cli_simulate_config_checks(tmp_path, capsys, yaml_text, pattern):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    rc, err = _cli(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("linlim simulate: error: ")
    assert __import__("re").search(pattern, err[0]), err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("yaml_text, key", [
    ("fit:\n  fisher: sparse\n", "fit.fisher"),
    ("filter:\n  taper: hann2\n", "filter.taper"),
    ("fit:\n  memory_limit_gib: -1\n", "fit.memory_limit_gib"),
    ("fit:\n  cg_tol: 2\n", "fit.cg_tol"),
    ("fit:\n  bjk_iterations: 0\n", "fit.bjk_iterations"),
])
def test_cli_demo_config_values_are_checked(tmp_path, capsys, yaml_text, key):
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml_text)
    rc, err = _cli(["demo", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"],
                   capsys)
    assert rc == 2 and len(err) == 1
    assert f"config: '{key}' = " in err[0] and "is not allowed; expected" in err[0]
    assert not (tmp_path / "o").exists()


def test_cli_refuses_empty_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, err = _cli(["simulate", "--out", ""], capsys)
    assert rc == 2 and err == ["linlim simulate: error: --out: expected an output folder "
                               "path, received '' (an empty string; an unset shell "
                               "variable?)"]
    assert not any(tmp_path.iterdir())


def test_cli_config_unwritable_stdout_is_one_line(capsys, monkeypatch):
    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    from linlim.cli import main

    monkeypatch.setattr("sys.stdout", Full())
    rc = main(["config", "fit"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["linlim config: error: cannot write the defaults to standard "
                               "output: No space left on device"]


def test_cli_version(capsys):
    from linlim import __version__
    from linlim.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out.strip() == f"linlim {__version__}"


def test_cli_calibrate_unwritable_solutions_path(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    data = tmp_path / "d.uvh5"
    _write_uvh5(data)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"calibration:\n  output:\n    solutions: {blocker}/g.calfits\n")
    rc, err = _cli(["calibrate", "--config", str(cfg), "--data", str(data), "--model",
                    str(data), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and len(err) == 1
    assert "'calibration.output.solutions'" in err[0] and "not a writable folder" in err[0]
    assert not (tmp_path / "o").exists()


def test_cli_fit_refuses_data_and_template(tmp_path, capsys):
    data = tmp_path / "d.uvh5"
    _write_uvh5(data)
    rc, err = _cli(["fit", "--data", str(data), "--template", str(data), "--out",
                    str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and len(err) == 1
    assert "'data' and 'template' are both set" in err[0]
    assert not (tmp_path / "o").exists()
