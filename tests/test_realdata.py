"""Real data in: the one UVData reader and its checks against the model, ``linlim``
command-line errors and options, the typed config schema, the batched per-cell
Gauss-Newton calibration, and (where the BayesLIM reference files are present) the
simulate -> corrupt -> calibrate chain on them, checked against matvis and the true gains.
"""

from __future__ import annotations

import json
import os
import pathlib

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation

from linlim.cli import main
from linlim.errors import InputError
from linlim.io.config import load_config, validate_config
from linlim.io.uvdata import read_uvdata, vis_to_uvdata

ROOT = pathlib.Path(__file__).resolve().parents[1]


def reference_data() -> pathlib.Path | None:
    """The BayesLIM reference folder: ``$LINLIM_REFERENCE_DATA``, else
    ``<repo>/../shared/data/bayeslim`` (or one level further up, for git worktrees)."""
    env = os.environ.get("LINLIM_REFERENCE_DATA")
    cands = [pathlib.Path(env)] if env else []
    cands += [ROOT.parent / "shared/data/bayeslim", ROOT.parent.parent / "shared/data/bayeslim"]
    for c in cands:
        if (c / "realization_0_downselect.uvh5").exists():
            return c
    return None


REF = reference_data()
needs_ref = pytest.mark.skipif(
    REF is None, reason="BayesLIM reference data not found: set LINLIM_REFERENCE_DATA or put "
    "it in <repo>/../shared/data/bayeslim")
TEMPLATE = "realization_0_downselect.uvh5"
GAINS = "2458101.sum.true_gains.singletime_downselect.calfits"


@pytest.fixture
def loc():
    return EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                       1051.69 * u.m)


def _uv(loc, rng, *, freqs=None, pols=("ee", "nn", "en", "ne"), nant=4, ntimes=3,
        numbers=None):
    antpos = np.c_[rng.uniform(-30, 30, (nant, 2)), np.zeros(nant)]
    a1, a2 = np.triu_indices(nant)
    freqs = np.linspace(150e6, 151e6, 5) if freqs is None else freqs
    times = 2459855.0 + np.arange(ntimes) * 10.0 / 86400
    shape = (len(pols), ntimes, freqs.size, a1.size)
    vis = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    vis[..., a1 == a2] = 10.0 + 1e-15j      # autos with rounding-level imaginary parts
    return vis_to_uvdata(vis, antpos=antpos, freqs=freqs, times_jd=times, ant1=a1, ant2=a2,
                         telescope_loc=loc, pols=pols, ant_numbers=numbers,
                         integration_time=10.0), vis


# ---------------------------------------------------------------- reading and its checks
def test_write_round_trip_ee_nn_autos_integration_time(loc, rng, tmp_path):
    uv, vis = _uv(loc, rng)
    assert list(uv.polarization_array) == [-5, -6, -7, -8]      # ee = xx for x east
    auto = uv.ant_1_array == uv.ant_2_array
    assert np.all(uv.data_array[auto][:, :, :2].imag == 0)
    uv.write_uvh5(str(tmp_path / "a.uvh5"))
    r = read_uvdata(tmp_path / "a.uvh5", pols=("ee", "nn"))
    assert r["pol_names"] == ["ee", "nn"] and r["x_orientation"] == "east"
    np.testing.assert_allclose(r["integration_time"], 10.0)
    cross = r["ant1"] != r["ant2"]
    np.testing.assert_array_equal(r["data"][..., cross], vis[:2][..., cross])


def test_read_checks_name_both_values(loc, rng):
    uv, _ = _uv(loc, rng)
    with pytest.raises(InputError, match=r"frequencies 150\.0+-151\.0+ MHz.*100\.0+-101"):
        read_uvdata(uv, freqs=np.linspace(100e6, 101e6, 5))
    with pytest.raises(InputError, match="times .* do not match"):
        read_uvdata(uv, times=2459855.5 + np.arange(3) * 10.0 / 86400)
    with pytest.raises(InputError, match="cross-hand"):
        read_uvdata(uv, pols=["en"])
    assert read_uvdata(uv, pols=["en"], polarized_model=True)["pols"].tolist() == [-7]
    assert read_uvdata(uv)["pol_names"] == ["ee", "nn"]      # default: parallel hands only
    with pytest.raises(InputError, match="'xy'|'pI'|not in the file"):
        read_uvdata(uv, pols=["pI"])
    with pytest.raises(InputError, match=r"antenna numbers \[3\] are not in"):
        read_uvdata(uv, ant_numbers=[0, 1, 2])
    with pytest.raises(InputError, match="unknown polarisation 'zz'"):
        read_uvdata(uv, pols=["zz"])


def test_pol_convention_and_units_converted_or_refused(loc, rng):
    uv, vis = _uv(loc, rng)
    base = read_uvdata(uv, pols=["ee"])["data"]
    uv.pol_convention = "avg"             # I = (XX + YY) / 2: visibilities twice as large
    np.testing.assert_allclose(read_uvdata(uv, pols=["ee"])["data"], 0.5 * base)
    uv.pol_convention = "sum"
    uv.vis_units = "K str"
    f = uv.freq_array.ravel()
    jy = 2 * 1.380649e-23 * f**2 / 299792458.0**2 * 1e26
    np.testing.assert_allclose(read_uvdata(uv, pols=["ee"])["data"],
                               base * jy[None, None, :, None], rtol=1e-12)
    uv.vis_units = "UNCALIB"
    with pytest.raises(InputError, match="vis_units 'UNCALIB' cannot be used.*'Jy'"):
        read_uvdata(uv, pols=["ee"])


def test_phased_data_refused_or_unprojected(loc, rng):
    uv, _ = _uv(loc, rng)
    drift = read_uvdata(uv, pols=["ee"])["data"]
    ph = uv.copy()
    ph.phase(ra=0.3, dec=-0.5, cat_name="field")
    with pytest.raises(InputError, match="phase type is 'sidereal'.*unphase"):
        read_uvdata(ph, pols=["ee"])
    back = read_uvdata(ph, pols=["ee"], unphase=True)["data"]
    np.testing.assert_allclose(back, drift, atol=1e-9 * np.abs(drift).max())


# ---------------------------------------------------------------- config schema
@pytest.mark.parametrize("section, key, value, allowed", [
    ("hmc", "resume", "false", "true or false"),
    (None, "plots", "false", "true or false"),
    ("scenario.times", "ntimes", 2.7, "an integer"),
    ("scenario.band", "nfreq", 0, ">= 1"),
    ("fit", "solver", "newton", "'dense', 'cg'"),
])
def test_config_types_and_ranges(section, key, value, allowed):
    from linlim.io.config import merge_config
    from linlim.pipelines.sample import SAMPLE_DEFAULTS

    user: dict = {key: value}
    for part in reversed((section or "").split(".") if section else []):
        user = {part: user}
    with pytest.raises(InputError, match=rf"'.*{key}' = .*{allowed[:8]}"):
        validate_config(merge_config(SAMPLE_DEFAULTS, user), SAMPLE_DEFAULTS)


def test_interval_values():
    from linlim.io.config import merge_config
    from linlim.pipelines.calibrate import CALIBRATE_DEFAULTS

    for value, want in (("5", 5), (5, 5), ("all", "all"), (3.0, 3)):
        cfg = merge_config(CALIBRATE_DEFAULTS, {"calibration": {"solver": {
            "time_interval": value}}})
        assert validate_config(cfg, CALIBRATE_DEFAULTS)["calibration"]["solver"][
            "time_interval"] == want
    for bad in ("some", 0, 2.5, True):
        cfg = merge_config(CALIBRATE_DEFAULTS, {"calibration": {"solver": {
            "freq_interval": bad}}})
        with pytest.raises(InputError, match="freq_interval' = .* or 'all'"):
            validate_config(cfg, CALIBRATE_DEFAULTS)


def test_yaml_floats_and_relative_paths(tmp_path):
    from linlim.pipelines.calibrate import CALIBRATE_DEFAULTS

    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "c.yaml").write_text(
        "scenario:\n  band: {freq_min_hz: 100.0e6, freq_max_hz: 1.2e+8}\n"
        "calibration: {data: raw.uvh5, model: /abs/model.uvh5}\n")
    cfg = load_config(sub / "c.yaml", CALIBRATE_DEFAULTS)
    assert cfg["scenario"]["band"]["freq_min_hz"] == 100.0e6
    assert isinstance(cfg["scenario"]["band"]["freq_min_hz"], float)
    assert cfg["calibration"]["data"] == str(sub.resolve() / "raw.uvh5")
    assert cfg["calibration"]["model"] == "/abs/model.uvh5"


# ---------------------------------------------------------------- command-line errors
def _one_line_error(capsys, cmd: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"linlim {cmd}: error: "), err
    return err[0]


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["calibrate", "--data", str(tmp_path / "missing.uvh5"), "--model",
                 str(tmp_path / "m.uvh5"), "--out", str(out)]) == 2
    assert "missing.uvh5" in _one_line_error(capsys, "calibrate") and not out.exists()
    (tmp_path / "bad.yaml").write_text("hmc: {resume: [\n")
    assert main(["sample", "--config", str(tmp_path / "bad.yaml"), "--out", str(out)]) == 2
    assert "not valid YAML" in _one_line_error(capsys, "sample")
    (tmp_path / "t.yaml").write_text("hmc: {resume: 'false'}\n")
    assert main(["sample", "--config", str(tmp_path / "t.yaml"), "--out", str(out)]) == 2
    assert "'hmc.resume' = 'false'" in _one_line_error(capsys, "sample")
    (tmp_path / "n.yaml").write_text("scenario: {times: {ntimes: 2.7}}\n")
    assert main(["simulate", "--config", str(tmp_path / "n.yaml"), "--out", str(out)]) == 2
    assert "ntimes' = 2.7" in _one_line_error(capsys, "simulate")
    (tmp_path / "afile").write_text("x")
    assert main(["simulate", "--out", str(tmp_path / "afile" / "sub")]) == 2
    _one_line_error(capsys, "simulate")
    assert not out.exists()


def test_cli_ctrl_c_exits_130(monkeypatch, capsys, tmp_path):
    import linlim.cli as cli

    cmds = cli._commands()

    def interrupted(config, output=None):
        raise KeyboardInterrupt

    defaults, _, text = cmds["fit"]
    monkeypatch.setattr(cli, "_commands", lambda: {**cmds, "fit": (defaults, interrupted,
                                                                      text)})
    assert main(["fit", "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]


# ---------------------------------------------------------------- calibration
def _cal_problem(rng, nant=8, nt=4, nf=6, noise=0.0):

    a1, a2 = np.triu_indices(nant, 1)
    model = (rng.standard_normal((nt, nf, a1.size)) + 1j * rng.standard_normal(
        (nt, nf, a1.size))) * 5
    g = (1 + 0.2 * rng.standard_normal((nant, 1, nf))) * np.exp(
        1j * rng.uniform(-np.pi, np.pi, (nant, 1, nf)))
    gg = g[a1, 0].T[None] * g[a2, 0].T[None].conj()
    data = model * gg
    if noise:
        data = data + noise / np.sqrt(2) * (rng.standard_normal(data.shape)
                                            + 1j * rng.standard_normal(data.shape))
    return data, model, a1, a2, g


def test_gauss_newton_cells_agrees_with_stefcal_and_is_quadratic(rng):
    from linlim.calibration.solve import gauss_newton_cells
    from linlim.calibration.stefcal import stefcal

    data, model, a1, a2, g = _cal_problem(rng, noise=0.3)
    s = stefcal(data, model, a1, a2, 8, time_interval=4, tol=1e-14, maxiter=5000)
    n = gauss_newton_cells(data, model, a1, a2, 8, time_interval=4)
    assert n.converged.all() and s.converged.all()
    assert np.abs(n.gains - s.gains).max() <= 1e-8 * np.abs(s.gains).max()
    # noise-free: the gauge-aligned truth, with the relative step squaring near the end
    data, model, a1, a2, g = _cal_problem(rng)
    n = gauss_newton_cells(data, model, a1, a2, 8, time_interval=4, gauge="none")
    ph = np.angle(np.sum(n.gains * g.conj(), axis=0))
    np.testing.assert_allclose(n.gains * np.exp(-1j * ph)[None], g, atol=1e-12)
    h = np.array(n.step_history)
    k = int(np.argmax(h < 1e-2))
    assert h[k + 1] < 10 * h[k] ** 2 or h[k + 1] < 1e-13, h


def test_calibrate_cli_writes_checked_calfits_with_quality(loc, rng, tmp_path, capsys):
    from pyuvdata import UVCal, UVData
    from pyuvdata.utils import uvcalibrate

    from linlim.io.uvcal import gains_to_uvcal, uvcal_to_gains

    model, _ = _uv(loc, rng, pols=("ee", "nn"), nant=6, ntimes=4)
    model.write_uvh5(str(tmp_path / "model.uvh5"))
    nums = model.telescope.antenna_numbers
    g = (1 + 0.1 * rng.standard_normal((2, 6, 1, 5))) * np.exp(
        1j * rng.uniform(-3, 3, (2, 6, 1, 5)))
    uvc = gains_to_uvcal(g, telescope=model.telescope, times=[np.mean(model.time_array)],
                         freqs=model.freq_array, ant_numbers=nums, jones=[-5, -6])
    from linlim.pipelines.simulate import add_noise_and_gains

    raw = add_noise_and_gains(model, 0.0, uvc)
    raw.write_uvh5(str(tmp_path / "raw.uvh5"))
    args = ["calibrate", "--data", str(tmp_path / "raw.uvh5"), "--model",
            str(tmp_path / "model.uvh5"), "--time-interval", "all", "--out",
            str(tmp_path / "C")]
    assert main(args + ["--solver", "gn"]) == 0
    text = capsys.readouterr().out
    assert "chi^2" in text and "iterations" in text
    cal = UVCal.from_file(str(tmp_path / "C/gains.calfits"))
    cal.check()
    assert cal.quality_array is not None and cal.total_quality_array is not None
    est = uvcal_to_gains(cal)["gains"]
    ph = np.angle(np.sum(est * g.conj(), axis=1, keepdims=True))
    np.testing.assert_allclose(est * np.exp(-1j * ph), g, atol=1e-9)
    fixed = uvcalibrate(UVData.from_file(str(tmp_path / "raw.uvh5")), cal, inplace=False)
    cross = fixed.ant_1_array != fixed.ant_2_array
    np.testing.assert_allclose(fixed.data_array[cross], model.data_array[cross], rtol=1e-8,
                               atol=1e-9)
    summary = json.loads((tmp_path / "C/summary.json").read_text())
    assert summary["per_pol"][0]["method"] == "gn"
    # a second run into the same folder needs --overwrite
    assert main(args) == 2
    assert "--overwrite" in _one_line_error(capsys, "calibrate")
    assert main(args + ["--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    # a model on other channels: one line naming both bands, exit 2
    other, _ = _uv(loc, rng, pols=("ee", "nn"), nant=6, ntimes=4,
                   freqs=np.linspace(100e6, 101e6, 5))
    other.write_uvh5(str(tmp_path / "other.uvh5"))
    assert main(["calibrate", "--data", str(tmp_path / "raw.uvh5"), "--model",
                 str(tmp_path / "other.uvh5"), "--out", str(tmp_path / "D")]) == 2
    line = _one_line_error(capsys, "calibrate")
    assert "150.0" in line and "100.0" in line and not (tmp_path / "D").exists()


# ---------------------------------------------------------------- reference files
@needs_ref
def test_hera_calfits_time_range_and_ant_names():
    from linlim.io.uvcal import calibrate_uvdata, read_uvcal, uvcal_to_gains

    uvc = read_uvcal(REF / GAINS)
    sol = uvcal_to_gains(uvc)
    np.testing.assert_allclose(sol["times"], np.mean(uvc.time_range))
    r = read_uvdata(REF / TEMPLATE, pols=["ee", "nn"], pol_convention=None)
    out = calibrate_uvdata(r["uvdata"], uvc, undo=True)
    k = r["antpairs"].index((0, 23))
    g = sol["gains"][:, :, 0]
    a, b = list(sol["ant_numbers"]).index(0), list(sol["ant_numbers"]).index(23)
    np.testing.assert_allclose(out.get_data((0, 23, "ee")),
                               r["data"][0, :, :, k] * g[0, a] * g[0, b].conj(), rtol=1e-6)


@needs_ref
@pytest.mark.slow
def test_simulate_template_matches_matvis(tmp_path):
    """``linlim simulate --template --catalog --beam airy:14`` keeps the file's geometry, and
    its ee visibilities equal matvis' on the same sources and beam (the 150 brightest)."""
    matvis = pytest.importorskip("matvis")
    from astropy.time import Time
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.pipelines.simulate import read_catalog

    cat = read_catalog(REF / "GLEAM_ATEAM.yml").brightest(150)
    cat.to_csv(tmp_path / "cat.csv")
    assert main(["simulate", "--quiet", "--template", str(REF / TEMPLATE), "--catalog",
                 str(tmp_path / "cat.csv"), "--beam", "airy:14", "--out",
                 str(tmp_path / "D")]) == 0
    from pyuvdata import UVData

    sim = UVData.from_file(str(tmp_path / "D/data.uvh5"))
    tpl = UVData.from_file(str(REF / TEMPLATE))
    assert sim.get_antpairs() == tpl.get_antpairs() and (9, 9) in sim.get_antpairs()
    np.testing.assert_array_equal(sim.time_array, tpl.time_array)
    np.testing.assert_array_equal(sim.freq_array, tpl.freq_array)
    np.testing.assert_array_equal(sim.polarization_array, tpl.polarization_array)
    np.testing.assert_array_equal(sim.integration_time, tpl.integration_time)
    assert sim.telescope.get_x_orientation_from_feeds() == "east"
    np.testing.assert_allclose(sim.telescope._location.xyz(), tpl.telescope._location.xyz())
    r = read_uvdata(tmp_path / "D/data.uvh5", pols=["ee"])
    ants = dict(enumerate(r["antpos"]))
    cat2 = read_catalog(tmp_path / "cat.csv")
    V = matvis.simulate_vis(ants, cat2.fluxes(r["freqs"]), cat2.ra, cat2.dec, r["freqs"],
                            Time(r["times"], format="jd", scale="utc"),
                            [AiryBeam(diameter=14.0)], r["site"], precision=2,
                            antpairs=np.stack([r["ant1"], r["ant2"]], 1))
    mv = np.transpose(V, (1, 0, 2))
    assert np.abs(r["data"][0] - mv).max() <= 1e-8 * np.abs(mv).max()
    assert np.abs(r["data"][0] - mv).max() <= 1e-8


@needs_ref
@pytest.mark.slow
def test_reference_chain_recovers_true_gains(tmp_path):
    """simulate GLEAM on the RIMEz geometry, corrupt with the true gains and 0.5 Jy noise,
    calibrate with the default solver: <= 2% rms gain error after the phase gauge."""
    from linlim.io.uvcal import read_uvcal, uvcal_to_gains

    common = ["--quiet", "--template", str(REF / TEMPLATE), "--catalog",
              str(REF / "GLEAM_ATEAM.yml"), "--beam", "airy:14"]
    assert main(["simulate", *common, "--gains", str(REF / GAINS), "--noise-jy", "0.5",
                 "--out", str(tmp_path / "R")]) == 0
    assert main(["calibrate", "--quiet", "--data", str(tmp_path / "R/data.uvh5"), "--model",
                 str(tmp_path / "R/model.uvh5"), "--time-interval", "all", "--out",
                 str(tmp_path / "C")]) == 0
    est = uvcal_to_gains(read_uvcal(tmp_path / "C/gains.calfits"))
    true = uvcal_to_gains(read_uvcal(REF / GAINS), ant_numbers=est["ant_numbers"])
    e, t = est["gains"][:, :, 0], true["gains"][:, :, 0]          # (Njones, Nant, Nfreq)
    ph = np.angle(np.sum(e * t.conj(), axis=1, keepdims=True))
    rel = np.abs(e * np.exp(-1j * ph) - t) / np.abs(t)
    assert np.sqrt(np.mean(rel**2)) <= 0.02
    # pyuvdata applies the calfits: the calibrated data are the model plus the noise
    from pyuvdata import UVCal, UVData
    from pyuvdata.utils import uvcalibrate

    cal = UVCal.from_file(str(tmp_path / "C/gains.calfits"))
    cal.check()
    assert cal.quality_array is not None and cal.total_quality_array is not None
    fixed = uvcalibrate(UVData.from_file(str(tmp_path / "R/data.uvh5")), cal, inplace=False)
    model = UVData.from_file(str(tmp_path / "R/model.uvh5"))
    cross = fixed.ant_1_array != fixed.ant_2_array
    resid = fixed.data_array[cross][:, :, :2] - model.data_array[cross][:, :, :2]
    assert 0.4 < np.sqrt(np.mean(np.abs(resid) ** 2)) < 0.55       # 0.5 Jy sky noise


# ---------------------------------------------------------------- fit on a file
def test_fit_cli_on_a_file(loc, rng, tmp_path, capsys):
    """``linlim fit --data FILE --catalog FILE`` takes the file's geometry and writes
    fit.h5 and summary.json; a polarisation the file lacks is one line and exit 2."""
    import h5py

    from linlim.sky.catalog import PointSourceCatalog
    from linlim.telescope.times import lst

    uv, _ = _uv(loc, rng, pols=("ee", "nn"), nant=4, ntimes=2,
                freqs=np.linspace(150e6, 152e6, 4), numbers=[3, 5, 8, 13])
    uv.write_uvh5(str(tmp_path / "obs.uvh5"))
    ra0 = float(lst(np.array([uv.time_array.mean()]), loc)[0])
    cat = PointSourceCatalog(np.mod(ra0 + np.array([0.02, -0.05]), 2 * np.pi),
                             loc.lat.rad + np.array([0.03, -0.02]), [5.0, 3.0], 150e6,
                             spectral_index=[-0.8, -0.5])
    cat.to_csv(tmp_path / "cat.csv")
    (tmp_path / "f.yaml").write_text("plots: false\nfit: {maxiter: 2}\n"
                                     "scenario: {foregrounds: {nsources: 2}}\n")
    args = ["fit", "--quiet", "--config", str(tmp_path / "f.yaml"), "--data",
            str(tmp_path / "obs.uvh5"), "--catalog", str(tmp_path / "cat.csv"), "--out"]
    assert main(args + [str(tmp_path / "O")]) == 0
    summary = json.loads((tmp_path / "O/summary.json").read_text())
    assert summary["iterations"] >= 1 and summary["data"].endswith("obs.uvh5")
    with h5py.File(tmp_path / "O/fit.h5") as f:
        assert f["map"].shape == f["error"].shape and "truth" not in f
    from pyuvdata import UVData

    model = UVData.from_file(str(tmp_path / "O/model.uvh5"))
    assert sorted(model.telescope.antenna_numbers) == [3, 5, 8, 13]
    # --template: the scenario's sky on the file's geometry
    (tmp_path / "h.yaml").write_text(
        "plots: false\nfit: {maxiter: 1}\nscenario: {foregrounds: {nsources: 2}, "
        "signal: {enabled: false, nbands: 1}}\n")
    assert main(["fit", "--quiet", "--config", str(tmp_path / "h.yaml"), "--template",
                 str(tmp_path / "obs.uvh5"), "--out", str(tmp_path / "T")]) == 0
    sim = UVData.from_file(str(tmp_path / "T/model.uvh5"))
    assert sorted(sim.telescope.antenna_numbers) == [3, 5, 8, 13]
    np.testing.assert_allclose(np.unique(sim.time_array), np.unique(uv.time_array))
    np.testing.assert_allclose(sim.freq_array.ravel(), uv.freq_array.ravel())
    (tmp_path / "g.yaml").write_text("pol: en\nplots: false\n")
    assert main(["fit", "--config", str(tmp_path / "g.yaml"), "--data",
                 str(tmp_path / "obs.uvh5"), "--catalog", str(tmp_path / "cat.csv"),
                 "--out", str(tmp_path / "P")]) == 2
    assert "'en' is not in the file" in _one_line_error(capsys, "fit")
    assert not (tmp_path / "P").exists()


def test_every_commands_defaults_pass_the_schema():
    from linlim.cli import _commands

    for name, (defaults, _, _) in _commands().items():
        assert validate_config(defaults, defaults) == defaults, name


def test_solve_gains_projects_the_gauge(rng):
    """The shared Gauss-Newton on the composed operators, with the phase gauge projected
    out of CG, converges to StEFCal's solution on a multi-cell problem."""
    from linlim.calibration.solve import gain_problem, gauge_null_space, solve_gains
    from linlim.calibration.stefcal import stefcal

    data, model, a1, a2, g = _cal_problem(rng, nant=6, nt=2, nf=3, noise=0.2)
    prob = gain_problem(data, model, a1, a2, 6, time_interval=2)
    theta = prob.theta_from_gains(np.ones(prob.gain_op.in_shape, complex))
    N = np.asarray(gauge_null_space(prob)(theta))
    assert N.shape == (theta.size, prob.gauge_dim)
    lin = prob.posterior.likelihood
    # the data term does not change along a gauge direction (to first order)
    v = N[:, 0] / np.linalg.norm(N[:, 0])
    assert abs(lin.value(theta + 1e-6 * v) - lin.value(theta)) < 1e-6 * abs(lin.value(theta))
    s = stefcal(data, model, a1, a2, 6, time_interval=2, tol=1e-14, maxiter=5000)
    g0 = np.broadcast_to(s.gains, prob.gain_op.in_shape) * np.exp(0.3j)
    sol = solve_gains(prob, prob.theta_from_gains(0.9 * g0), method="gn", maxiter=30)
    assert np.abs(np.asarray(sol.gains) - s.gains).max() < 1e-8 * np.abs(s.gains).max()


def test_low_snr_gains_flagged(loc, rng):
    """An antenna whose model is 1e-4 of the others' (S/N << 3) is flagged; the rest not."""
    from linlim.pipelines.calibrate import calibrate_from_config
    from linlim.pipelines.simulate import add_noise_and_gains

    model, _ = _uv(loc, rng, pols=("ee",), nant=6, ntimes=4)
    faint = (model.ant_1_array == 5) | (model.ant_2_array == 5)
    model.data_array[faint] *= 1e-4
    raw = add_noise_and_gains(model, 0.1, None, seed=3)
    res = calibrate_from_config({"solver": {"time_interval": "all", "method": "gn"}},
                                data_uvdata=raw, model_uvdata=model, progress=False)
    fl = res.flags[0, :, 0, :]                          # (Nant, Nfreq)
    assert fl[5].all() and not fl[:5].any()
    assert res.info[0]["low_snr_flags"] == fl.shape[1]
    assert 0.5 < res.info[0]["reduced_chi2"] / 0.1**2 < 1.5     # noise variance recovered


def test_fit_quality_says_what_the_reduced_chi2_is(loc, rng):
    """Without noise.sigma the weights are nsamples, and the log calls the residual
    variance what it is (not a chi^2); with the true sigma the reduced chi^2 is ~1 and is
    called one. Gains of amplitude 1e-3 on 0.1 Jy noise, as in raw HERA data: the raw
    residual variance is (1e-3)^4 0.1^2 = 1e-14, the noise in the data's units 1e-7."""
    from linlim.pipelines.calibrate import calibrate_from_config, fit_quality
    from linlim.pipelines.simulate import add_noise_and_gains

    model, _ = _uv(loc, rng, pols=("ee",), nant=6, ntimes=4)
    raw = add_noise_and_gains(model, 0.1, None, seed=4)
    g = 1e-3 * np.exp(0.3j * rng.standard_normal(6))
    raw.data_array = raw.data_array * (g[raw.ant_1_array] * np.conj(g[raw.ant_2_array])
                                       )[:, None, None]
    raw.vis_units = "UNCALIB"
    cfg = {"solver": {"time_interval": "all", "method": "gn"}}
    row = calibrate_from_config(cfg, data_uvdata=raw, model_uvdata=model,
                                progress=False).info[0]
    assert row["noise_sigma"] is None and 0.5 < row["reduced_chi2"] / 1e-14 < 1.5
    text = fit_quality(row)
    assert "residual variance" in text and "not a chi^2" in text
    assert f"rms {np.sqrt(row['reduced_chi2']):.4g}" in text           # ~1e-7
    known = calibrate_from_config({**cfg, "noise": {"sigma": 1e-7}}, data_uvdata=raw,
                                  model_uvdata=model, progress=False).info[0]
    assert known["noise_sigma"] == 1e-7 and 0.5 < known["reduced_chi2"] < 1.5
    assert "against noise.sigma 1e-07" in fit_quality(known)
