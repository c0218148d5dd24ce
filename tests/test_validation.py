"""Regression tests for the silent failures of issue 21, one class per section: each input
below once gave a wrong answer with no error (or a raw traceback) and must now raise a
linlim error naming the argument, or recover with a warning."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.time import Time

from linlim.errors import InputError, InsufficientMemoryError, LinlimError, ShapeError
from linlim.validation import (
    NonFiniteDataWarning,
    check_axes,
    check_axis,
    check_directions,
    check_finite_data,
    check_flags,
    check_freqs,
    check_memory,
    check_times_jd,
    check_weights,
    format_bytes,
)

JD0 = 2459000.5


# ------------------------------------------------------------------------------ helpers
def _triangle_problem(rng, nt=2, nf=3):
    a1, a2 = np.array([0, 0, 1]), np.array([1, 2, 2])
    g = np.array([1.2 + 0.1j, 0.8 - 0.3j, 1.1 + 0.2j])
    M = rng.normal(size=(nt, nf, 3)) + 1j * rng.normal(size=(nt, nf, 3))
    return g[a1] * np.conj(g[a2]) * M, M, a1, a2, g


# -------------------------------------------------------------- stefcal: degeneracy
def test_stefcal_one_baseline_is_degenerate(rng):
    from linlim.calibration import DegenerateCalibrationError, stefcal

    g = np.array([1.2 + 0.1j, 0.8 - 0.3j])
    M = rng.normal(size=(3, 4, 1)) + 1j * rng.normal(size=(3, 4, 1))
    with pytest.raises(DegenerateCalibrationError, match="no closed triangle"):
        stefcal(g[0] * np.conj(g[1]) * M, M, [0], [1], 2)


@pytest.mark.parametrize("a1, a2, nants, why", [
    ([0, 1, 2, 0], [1, 2, 3, 3], 4, "no closed triangle"),         # a square: bipartite
    ([0, 0, 1, 3, 3, 4], [1, 2, 2, 4, 5, 5], 6, "2 separate groups"),  # two triangles
])
def test_stefcal_bipartite_or_disconnected_is_degenerate(rng, a1, a2, nants, why):
    from linlim.calibration import DegenerateCalibrationError, stefcal

    M = rng.normal(size=(1, 2, len(a1))) + 1j * rng.normal(size=(1, 2, len(a1)))
    with pytest.raises(DegenerateCalibrationError, match=why):
        stefcal(M, M, a1, a2, nants)


def test_stefcal_triangle_solves_and_degenerate_cells_can_be_flagged(rng):
    from linlim.calibration import stefcal

    D, M, a1, a2, g = _triangle_problem(rng)
    r = stefcal(D, M, a1, a2, 3, gauge="none", tol=1e-12)
    np.testing.assert_allclose(np.abs(r.gains[:, 0, 0]), np.abs(g), rtol=1e-8)
    flags = np.zeros(D.shape, dtype=bool)
    flags[0, 1, 2] = True                  # cell (0, 1) keeps 2 baselines: degenerate
    with pytest.raises(InputError, match=r"cell \(time 0, freq 1\)"):
        stefcal(D, M, a1, a2, 3, flags=flags)
    with pytest.warns(UserWarning, match="1 of 6 solution cells are degenerate"):
        r = stefcal(D, M, a1, a2, 3, flags=flags, degenerate="flag")
    assert not r.converged[0, 1] and r.flags[:, 0, 1].all()
    assert r.converged.sum() == 5 and not r.flags[:, 0, 0].any()


def test_stefcal_agrees_with_solve_gains_on_degeneracy(rng):
    from linlim.calibration import DegenerateCalibrationError, stefcal
    from linlim.calibration.solve import gain_problem, solve_gains

    g = np.array([1.2 + 0.1j, 0.8 - 0.3j])
    M = rng.normal(size=(1, 1, 1)) + 1j * rng.normal(size=(1, 1, 1))
    D = g[0] * np.conj(g[1]) * M
    for solver in (lambda: stefcal(D, M, [0], [1], 2),
                   lambda: solve_gains(gain_problem(D, M, [0], [1], 2))):
        with pytest.raises(DegenerateCalibrationError):
            solver()


# ------------------------------------------------------------- NaN/inf policy
def test_stefcal_refuses_one_unflagged_nan_and_flags_on_request(rng):
    from linlim.calibration import stefcal

    D, M, a1, a2, _ = _triangle_problem(rng, nt=4, nf=1)
    D[2, 0, 1] = np.nan
    with pytest.raises(InputError, match=r"data has 1 NaN/inf.*\(2, 0, 1\)"):
        stefcal(D, M, a1, a2, 3)
    with pytest.warns(NonFiniteDataWarning, match="flagged 1"):
        r = stefcal(D, M, a1, a2, 3, nonfinite="flag", time_interval=4)
    assert np.all(np.isfinite(r.gains)) and r.converged.all()
    flags = np.zeros(D.shape, dtype=bool)
    flags[2, 0, 1] = True                  # flagged NaN: fine without asking
    assert np.all(np.isfinite(stefcal(D, M, a1, a2, 3, flags=flags, time_interval=4).gains))
    M2 = M.copy()
    M2[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="model has 1 NaN/inf"):
        stefcal(D, M2, a1, a2, 3, flags=flags, time_interval=4)
    with pytest.raises(InputError, match="nonfinite"):
        stefcal(D, M, a1, a2, 3, nonfinite="ignore")


def test_calibrate_pipeline_refuses_unflagged_nan(rng):
    """One unflagged NaN visibility once gave a calfits of NaN gains and exit status 0."""
    from linlim.calibration.pipeline import calibrate_from_config
    from linlim.io.uvdata import vis_to_uvdata
    from linlim.telescope import hera_site

    antpos = np.array([[0.0, 0, 0], [14.6, 0, 0], [7.3, 12.6, 0]])
    a1, a2 = np.array([0, 0, 1]), np.array([1, 2, 2])
    freqs = np.linspace(100e6, 101e6, 2)
    times = JD0 + np.arange(2) / 86400.0
    V = rng.normal(size=(2, 2, 3)) + 1j * rng.normal(size=(2, 2, 3))
    kw = dict(antpos=antpos, freqs=freqs, times_jd=times, ant1=a1, ant2=a2,
              telescope_loc=hera_site())
    model = vis_to_uvdata(V, **kw)
    bad = V.copy()
    bad[1, 0, 2] = np.nan
    data = vis_to_uvdata(bad, **kw)
    with pytest.raises(InputError, match="NaN|non-finite"):
        calibrate_from_config({}, model_uvdata=model, data_uvdata=data)


def test_likelihood_nonfinite_policy_and_all_flagged():
    from linlim.likelihood import GaussianLikelihood
    from linlim.operators.linear import Identity

    op = Identity((4,))
    d = np.array([1.0, np.nan, 3.0, 4.0])
    with pytest.raises(InputError, match=r"data has 1 NaN/inf.*\[1\]"):
        GaussianLikelihood(op, d, sigma=1.0)
    with pytest.warns(NonFiniteDataWarning):
        lik = GaussianLikelihood(op, d, sigma=1.0, nonfinite="flag")
    assert lik.ndata == 3 and np.isfinite(lik.value(np.zeros(4)))
    with pytest.raises(InputError, match="every sample flagged"):
        GaussianLikelihood(op, d, sigma=1.0, flags=np.ones(4, dtype=bool))
    with pytest.raises(InputError, match="every sample flagged"):
        GaussianLikelihood(op, np.ones(4), weights=0.0)


def test_gauss_newton_cannot_start_on_all_flagged_data(rng):
    """Gauss-Newton once reported success at its starting point with every sample flagged."""
    from linlim.calibration.solve import gain_problem

    D, M, a1, a2, _ = _triangle_problem(rng)
    with pytest.raises(InputError, match="every sample flagged"):
        gain_problem(D, M, a1, a2, 3, flags=np.ones(D.shape, dtype=bool))


def test_stefcal_all_flagged_is_an_error(rng):
    from linlim.calibration import stefcal

    D, M, a1, a2, _ = _triangle_problem(rng)
    with pytest.raises(InputError, match="every sample flagged"):
        stefcal(D, M, a1, a2, 3, flags=np.ones(D.shape, dtype=bool))
    with pytest.raises(InputError, match="every sample flagged"):   # autos only
        stefcal(D[..., :1], M[..., :1], [0], [0], 1)


def test_check_finite_data_reports_count_and_first_indices():
    d = np.zeros((3, 4))
    d[1, 2] = d[2, 0] = np.inf
    with pytest.raises(InputError, match=r"has 2 NaN/inf.*\[\(1, 2\), \(2, 0\)\]"):
        check_finite_data(d, 1.0)
    with pytest.warns(NonFiniteDataWarning, match="flagged 2"):
        w = check_finite_data(d, np.ones((3, 4)), nonfinite="flag")
    assert w.sum() == 10 and w[1, 2] == 0


# ----------------------------------------------------------------------- times / MJD
@pytest.mark.parametrize("bad, hint", [
    ([59000.5], "MJD"),
    (Time(59000.5, format="jd"), "MJD"),       # an MJD given to Time as a JD
    ([1.6e9], "Unix"),
    ([3e6], r"AD 1858"),
    ([np.nan], "finite"),
])
def test_times_refuse_mjd_and_nonsense(bad, hint):
    from linlim.telescope import lst, source_enu

    with pytest.raises(InputError, match=hint):
        check_times_jd(bad)
    with pytest.raises(InputError, match="times_jd"):
        lst(bad, "HERA")
    with pytest.raises(InputError, match=hint):
        source_enu([0.1], [-0.5], bad, "HERA")
    assert check_times_jd(Time(59000.5, format="mjd"))[0] == pytest.approx(2459001.0)


# ----------------------------------------------------------------- frequencies in Hz
def test_freqs_in_mhz_or_nonpositive_are_named():
    with pytest.raises(InputError, match="look like MHz; multiply by 1e6"):
        check_freqs([150.0, 160.0])
    with pytest.raises(InputError, match="look like GHz; multiply by 1e9"):
        check_freqs([1.4])
    with pytest.raises(InputError, match=r"positive.*index 1"):
        check_freqs([1e8, -1e8])
    with pytest.raises(InputError, match=r"2 NaN/inf.*\[0, 2\]"):
        check_freqs([np.nan, 1e8, np.inf])
    with pytest.raises(ShapeError, match=">= 2"):
        check_freqs([1e8], min_channels=2)
    import astropy.units as u

    assert check_freqs([150.0] * u.MHz)[0] == 150e6


def test_every_frequency_checker_is_the_shared_one():
    """The six former checkers (beam, spectra, filters, signal, gp, telescope-adjacent)
    all name MHz the same way."""
    from linlim import filters, gp
    from linlim.beam.base import check_freqs as beam_check
    from linlim.sky import signal, spectra

    for call in (lambda: beam_check([150.0], "AiryBeam"),
                 lambda: spectra.validate_freqs([150.0]),
                 lambda: filters.delays([150.0, 151.0]),
                 lambda: signal._check_freqs([150.0], "sig"),
                 lambda: gp._freqs([150.0], "gp")):
        with pytest.raises(InputError, match="look like MHz"):
            call()


def _simulate_args(freqs, beams, times=None):
    from linlim.telescope import hera_site

    ants = np.array([[0.0, 0, 0], [14.6, 0, 0]])
    return (ants, np.ones((1, np.size(freqs))), np.array([0.3]), np.array([-0.5]),
            np.asarray(freqs), Time([JD0], format="jd") if times is None else times,
            beams, hera_site())


def test_simulate_vis_refuses_mhz_through_pyuvdata_and_array_beams():
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import simulate_vis

    with pytest.raises(InputError, match="simulate_vis: freqs.*MHz"):
        simulate_vis(*_simulate_args([150.0], AiryBeam(diameter=14.0)))
    with pytest.raises(InputError, match="simulate_vis: freqs.*MHz"):
        simulate_vis(*_simulate_args([150.0], np.ones((1, 1, 1, 1))))
    with pytest.raises(InputError, match="simulate_vis: freqs.*positive"):
        simulate_vis(*_simulate_args([0.0], np.ones((1, 1, 1, 1))))
    A = np.ones((1, 1, 1, 1))
    A[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="simulate_vis: beams.*finite"):
        simulate_vis(*_simulate_args([150e6], A))
    with pytest.raises(InputError, match="simulate_vis: times.*MJD"):
        simulate_vis(*_simulate_args([150e6], A, Time([59000.5], format="jd")))
    V = simulate_vis(*_simulate_args([150e6], AiryBeam(diameter=14.0)))
    assert np.all(np.isfinite(V))


def test_uvbeam_band_is_checked(tmp_path):
    from pyuvdata import UVBeam
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.validation import check_pyuvdata_beam

    uvb = AiryBeam(diameter=14.0).to_uvbeam(freq_array=np.array([100e6, 120e6]),
                                            axis1_array=np.linspace(0, 2 * np.pi, 8,
                                                                    endpoint=False),
                                            axis2_array=np.linspace(0, np.pi / 2, 5))
    assert isinstance(uvb, UVBeam)
    check_pyuvdata_beam(uvb, [110e6])
    with pytest.raises(InputError, match=r"beams: expected freqs inside the beam's band"):
        check_pyuvdata_beam(uvb, [150e6])
    uvb.freq_array = uvb.freq_array / 1e6              # a beam file written in MHz
    with pytest.raises(InputError, match=r"beams.freq_array.*MHz"):
        check_pyuvdata_beam(uvb, [110e6])


# ------------------------------------------------------------------------ directions
def test_nan_direction_is_an_error_not_below_horizon():
    from linlim.rime import RIME
    from linlim.telescope import horizon_mask

    enu = np.array([[[0.0, np.nan], [0.0, 0.0], [1.0, 1.0]]])
    with pytest.raises(InputError, match="RIME: enu.*NaN"):
        RIME(enu, np.zeros((2, 3)), np.array([1e8]), [0], [1])
    with pytest.raises(InputError, match="horizon_mask: enu.*NaN"):
        horizon_mask(enu)


def test_non_unit_directions_are_refused():
    from linlim.rime import RIME, RIMEIntensity
    from linlim.telescope import enu_to_az_za

    enu = np.array([[[0.0, 0.5], [0.0, 0.0], [1.0, 1.0]]])
    with pytest.raises(InputError, match=r"unit vectors.*worst length 1.118"):
        RIME(enu, np.zeros((2, 3)), np.array([1e8]), [0], [1])
    with pytest.raises(InputError, match="unit vectors"):
        RIMEIntensity(enu, np.zeros((2, 3)), np.array([1e8]), [0], [1])
    with pytest.raises(InputError, match="unit vectors"):
        enu_to_az_za(enu, axis=1)
    ok = enu / np.linalg.norm(enu, axis=1, keepdims=True)
    assert check_directions(ok, axis=1).shape == enu.shape
    assert check_directions(ok.astype(np.float32), axis=1).dtype == np.float64


# ------------------------------------------------------------------------------- axes
def test_out_of_range_axes_do_not_wrap():
    from linlim.operators.linear import FFT, MatrixMult, SumAxis, Take

    with pytest.raises(InputError, match=r"SumAxis: axis.*received 5"):
        SumAxis((3, 4), axis=5)
    with pytest.raises(InputError, match=r"SumAxis: axis.*distinct"):
        SumAxis((3, 4), axis=(0, -2))
    with pytest.raises(InputError, match=r"Take: axis.*received 2"):
        Take((3, 4), [0], axis=2)
    with pytest.raises(InputError, match=r"Take: axis.*received -3"):
        Take((3, 4), [0], axis=-3)
    with pytest.raises(InputError, match="MatrixMult: axis"):
        MatrixMult(np.ones((2, 3)), in_shape=(3, 4), axis=4)
    with pytest.raises(InputError, match="FFT: axis"):
        FFT((3, 4), axis=2)
    assert SumAxis((3, 4), axis=-1).out_shape == (3,)
    assert check_axes((-1, 0), 3) == (0, 2) and check_axis(np.int64(1), 2) == 1
    with pytest.raises(InputError, match="integer"):
        check_axis(1.0, 2)


# ----------------------------------------------------------------- flags and weights
def test_flags_and_weights():
    with pytest.raises(InputError, match="flags: expected booleans"):
        check_flags(np.array([0.5, 1.0]), (2,))
    with pytest.raises(ShapeError, match="flags"):
        check_flags(np.zeros(3, dtype=bool), (2,))
    assert check_flags(np.array([0, 1]), (3, 2)).dtype == bool
    with pytest.raises(InputError, match=r"weights: expected weights >= 0"):
        check_weights([-1.0], (2,))
    with pytest.raises(InputError, match="weights: expected finite"):
        check_weights([np.nan, 1.0], (2,))


# ---------------------------------------------------------------------------- memory
def test_memory_estimate_before_huge_rime(monkeypatch):
    from linlim.rime import RIME

    enu = np.tile(np.array([[[0.0], [0.0], [1.0]]]), (50, 1, 1))
    monkeypatch.setenv("LINLIM_MEMORY_LIMIT", "1MiB")
    with pytest.raises(InsufficientMemoryError, match=r"needs .* MiB but 1.0 MiB.*time_chunk"):
        RIME(enu, np.zeros((2, 3)), np.linspace(1e8, 2e8, 2000), [0, 0, 1], [0, 1, 1])
    monkeypatch.delenv("LINLIM_MEMORY_LIMIT")
    RIME(enu, np.zeros((2, 3)), np.linspace(1e8, 2e8, 20), [0, 0, 1], [0, 1, 1])


def test_memory_estimate_before_huge_simulate_vis(monkeypatch):
    """A 244 GiB output was once refused only by numpy at allocation."""
    from linlim.rime import simulate_vis

    times = Time(JD0 + np.arange(200) / 1440.0, format="jd")
    args = list(_simulate_args(np.linspace(100e6, 200e6, 1024), np.ones((1, 1, 1, 1024)),
                               times))
    args[0] = np.random.default_rng(0).normal(size=(350, 3)) * 100
    with pytest.raises(InsufficientMemoryError) as err:
        simulate_vis(*args, polarized=False)
    msg = str(err.value)
    assert "simulate_vis" in msg and "GiB" in msg and "time_chunk" in msg


def test_check_memory_and_dense_fisher(monkeypatch):
    from linlim.validation import check_dense_matrix_memory

    with pytest.raises(InsufficientMemoryError, match=r"needs 1.0 GiB but 1.0 MiB"):
        check_memory(2**30, "thing", option="chunk it", available=2**20)
    assert check_memory(10, "thing", option="x", available=100) == 10
    assert format_bytes(1536) == "1.5 KiB"
    monkeypatch.setenv("LINLIM_MEMORY_LIMIT", "1MiB")
    with pytest.raises(InsufficientMemoryError, match="fisher_matrix.*block-diagonal"):
        check_dense_matrix_memory(1000)
    monkeypatch.setenv("LINLIM_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="LINLIM_MEMORY_LIMIT"):
        check_dense_matrix_memory(10)
    assert issubclass(InsufficientMemoryError, MemoryError)
    assert issubclass(InsufficientMemoryError, LinlimError)


# --------------------------------------------------------------------------- recovery
class _Gauss:
    def __init__(self, n=3, fail_after=None):
        self.size, self.xp, self.calls, self.fail_after = n, np, 0, fail_after

    def value_and_grad(self, x):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        return -0.5 * float(x @ x), -x

    def value(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]


def _run(path, fail_after=None, counter=None):
    from linlim.inference.hmc import HMC

    post = _Gauss(fail_after=fail_after)
    res = HMC(post, metric="identity").sample(
        20, 20, chains=1, seed=3, path=str(path), checkpoint_every=4, progress=False)
    if counter is not None:
        counter.append(post.calls)
    return res


def test_corrupt_newest_segment_resumes_from_last_good_bit_identical(tmp_path):
    from linlim.io.chains import ChainStore, CorruptChainWarning, read_chains

    calls: list = []
    ref = _run(tmp_path / "ref.h5", counter=calls)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        _run(out, fail_after=int(0.7 * calls[0]))
    segs = ChainStore(out).segments()
    assert len(segs) >= 3
    with open(segs[-1], "r+b") as fh:           # truncate the newest segment
        fh.truncate(200)
    (out.parent / ".out.h5.tmp999999999").write_bytes(b"junk")   # a dead writer's temp
    (Path(str(out) + ".parts") / ".seg_000099.h5.tmp999999999").write_bytes(b"junk")
    with pytest.warns(CorruptChainWarning, match="corrupt"):
        partial = read_chains(out)                # a reader skips it, says so
    assert partial["complete"] is False
    with pytest.warns(CorruptChainWarning, match="corrupt") as rec:
        res = _run(out)
    assert any("set aside" in str(w.message) for w in rec)
    np.testing.assert_array_equal(res.draws, ref.draws)
    assert not list(tmp_path.glob(".*tmp*")) and not Path(str(out) + ".parts").exists()


def test_truncated_chain_file_is_reported_as_corrupt(tmp_path):
    from linlim.io.chains import CorruptChainWarning, read_chains

    path = tmp_path / "chains.h5"
    ref = _run(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="corrupt"):
        read_chains(path)
    with pytest.warns(CorruptChainWarning, match="corrupt"):
        again = _run(path)                        # resume: set aside, rerun, same draws
    np.testing.assert_array_equal(again.draws, ref.draws)
    assert (tmp_path / "chains.h5.corrupt").exists()
    with pytest.raises(InputError, match="no chain file"):
        read_chains(tmp_path / "missing.h5")


def test_optimizer_checkpoint_falls_back_to_previous(tmp_path):
    from linlim.inference.checkpoint import (
        CorruptCheckpointWarning,
        load_checkpoint,
        previous_checkpoint_path,
        save_checkpoint,
    )

    path = tmp_path / "opt.h5"
    save_checkpoint(path, "lbfgs", {"it": 1, "x": np.arange(3.0)}, {"f": np.ones(1)})
    save_checkpoint(path, "lbfgs", {"it": 2, "x": np.arange(3.0)}, {"f": np.ones(2)})
    assert load_checkpoint(path, "lbfgs")[0]["it"] == 2
    path.write_bytes(path.read_bytes()[:100])
    stale = tmp_path / ".ckpt-999999999-abcd.h5.tmp"
    stale.write_bytes(b"x")
    with pytest.warns(CorruptCheckpointWarning, match="previous"):
        state, _ = load_checkpoint(path, "lbfgs")
    assert state["it"] == 1 and not stale.exists()
    Path(previous_checkpoint_path(path)).write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(path, "lbfgs")


def test_optimizer_resume_after_corrupt_checkpoint_is_bit_identical(tmp_path):
    from linlim.inference import lbfgs
    from linlim.inference.checkpoint import CorruptCheckpointWarning

    A = np.diag([1.0, 3.0, 10.0, 30.0]) + 0.1

    def fun(x):
        return 0.5 * float(x @ A @ x), A @ x

    x0 = np.ones(4)
    kw = dict(ftol=0.0, pgtol=0.0, progress=False)
    full = lbfgs(fun, x0, maxiter=6, **kw)
    ck = tmp_path / "ck.h5"
    lbfgs(fun, x0, maxiter=3, checkpoint=ck, **kw)
    lbfgs(fun, x0, maxiter=4, checkpoint=ck, resume=ck, **kw)
    ck.write_bytes(ck.read_bytes()[:64])       # newest (iteration 4) damaged
    with pytest.warns(CorruptCheckpointWarning):
        res = lbfgs(fun, x0, maxiter=6, resume=ck, **kw)
    np.testing.assert_array_equal(res.x, full.x)


def test_sample_checkpoint_interval_setting():
    from linlim.pipelines.sample import SAMPLE_DEFAULTS, checkpoint_interval

    assert checkpoint_interval(SAMPLE_DEFAULTS["hmc"]) == (20, 30.0)
    assert checkpoint_interval({"checkpoint_every": 1, "checkpoint_seconds": 5}) == (1, 5.0)
    for bad in ({"checkpoint_every": 0}, {"checkpoint_every": "10"},
                {"checkpoint_every": True}, {"checkpoint_every": 2.5}):
        with pytest.raises(InputError, match="hmc.checkpoint_every"):
            checkpoint_interval(bad)
    for bad in ({"checkpoint_seconds": -1}, {"checkpoint_seconds": "60"},
                {"checkpoint_seconds": float("nan")}):
        with pytest.raises(InputError, match="hmc.checkpoint_seconds"):
            checkpoint_interval(bad)


def test_no_warning_on_clean_input(rng):
    from linlim.calibration import stefcal

    D, M, a1, a2, _ = _triangle_problem(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stefcal(D, M, a1, a2, 3)
        check_freqs([1e8])
        check_times_jd([JD0])
    assert os.environ.get("LINLIM_MEMORY_LIMIT") is None
    assert h5py is not None
