"""The structured Gauss-Newton route of the joint fit (``fit.fisher: none``, the large
config's route): its preconditioner, and that it reaches the dense route's MAP."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import InputError
from linlim.inference.preconditioners import SchurPreconditioner
from linlim.io.config import merge_config
from linlim.pipelines.scenario import SCENARIO_DEFAULTS, build_scenario

TINY = {"seed": 5, "array": {"hex_num": 2}, "band": {"nfreq": 32}, "times": {"ntimes": 3},
        "foregrounds": {"nsources": 4},
        "signal": {"nside": 8, "radius_deg": 22.0, "nk": 12, "nbands": 3},
        "diffuse": {"radius_deg": 22.0, "temperature_k": 0.5}}


def _fit_options(**kw):
    from linlim.pipelines.fit import FIT_OPTIONS
    from linlim.pipelines.signalfit import SIGNAL_FIT_OPTIONS

    return {**FIT_OPTIONS, **SIGNAL_FIT_OPTIONS, "maxiter": 30, **kw}


def _matrix(fn, n):
    return np.stack([fn(e) for e in np.eye(n)], axis=1)


def test_schur_preconditioner_exact_with_exact_block_and_spd_otherwise() -> None:
    """With ``P = A^-1`` the Schur preconditioner is ``H^-1``; with a cruder ``P`` (the
    inverse diagonal of ``A``) it is still symmetric positive definite, and a ``P`` too
    large for the Schur complement is clipped to an SPD one."""
    rng = np.random.default_rng(3)
    n, k = 40, 7
    G = rng.standard_normal((n, n))
    H = G @ G.T + n * np.eye(n)
    small = np.sort(rng.choice(n, k, replace=False))
    big = np.setdiff1d(np.arange(n), small)
    A, B, C = H[np.ix_(big, big)], H[np.ix_(small, big)], H[np.ix_(small, small)]
    Ainv = np.linalg.inv(A)
    pc = SchurPreconditioner(n, big, small, lambda X: X @ Ainv, C, B)
    assert np.allclose(_matrix(pc, n) @ H, np.eye(n), atol=1e-10)
    assert pc.clipped == 0
    d = 1.0 / np.diag(A)
    for scale in (1.0, 50.0):        # 50: P >> A^-1 makes C - B P B^T indefinite
        pc = SchurPreconditioner(n, big, small, lambda X, s=scale: s * X * d, C, B)
        Minv = _matrix(pc, n)
        assert np.allclose(Minv, Minv.T, atol=1e-12 * np.abs(Minv).max())
        assert np.linalg.eigvalsh(0.5 * (Minv + Minv.T)).min() > 0
        assert (pc.clipped > 0) == (scale > 1.0)
    with pytest.raises(InputError, match="cover"):
        SchurPreconditioner(n, big[1:], small, lambda X: X, C, B[:, 1:])


def _tiny(nk: int):
    from linlim.likelihood import GaussianLikelihood, LogPosterior
    from linlim.pipelines.fit import start_and_priors
    from linlim.pipelines.joint import build_joint_model
    from linlim.pipelines.signalfit import fiducial_power, linear_components
    from linlim.pipelines.simulate import simulate_data
    from linlim.priors import GaussianPrior

    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, {**TINY, "signal": {
        **TINY["signal"], "nk": nk}}))
    sim = simulate_data(sc)
    comps = linear_components(sc, fiducial_power(sc, 5.0))
    jm = build_joint_model(sc.obs, sc.catalog.ra, sc.catalog.dec, sc.ref_freq,
                           sc.ripple_delay, linear=comps)
    _, priors = start_and_priors(sc, _fit_options(), np.random.default_rng(1), True)
    for c in comps:
        priors.append(GaussianPrior(np.zeros(int(np.prod(c.shape))), sigma=1.0, index=c.name))
    post = LogPosterior(GaussianLikelihood(jm.model, sim["data"], sigma=sc.sigma), priors,
                        params=jm.params)
    return sc, comps, jm, post


@pytest.mark.parametrize("nk", [32, 12])
def test_structured_preconditioner_spd_and_exact_without_mode_cut(nk: int) -> None:
    """The structured preconditioner at a generic point is symmetric positive definite; with
    every k_par mode kept (nk = nfreq) the per-channel inverse of the signal block is exact
    and so is the whole preconditioner (M^-1 H = I, H the dense structured GN Hessian)."""
    from linlim.pipelines.power import PriorHessian
    from linlim.pipelines.signalfit import _beam_of, _gains_of, _signal_sigma_f
    from linlim.pipelines.structured import (
        prior_matvec,
        structured_fisher,
        structured_preconditioner,
    )

    sc, comps, jm, post = _tiny(nk)
    rng = np.random.default_rng(2)
    x = 0.1 * rng.standard_normal(jm.params.size)
    x[jm.params.slices["beam"]] = [14.2, 0.03, 0.1, -0.05]
    SF = structured_fisher(post, jm.params, x, sc.obs, comps, sc.ref_freq, sc.ripple_delay,
                           _beam_of(jm, x, None), _gains_of(jm, x),
                           sources=(sc.catalog.ra, sc.catalog.dec))
    prior = PriorHessian(post, x)
    isig = [i for i, c in enumerate(comps) if c.name == "signal"][0]
    pc = structured_preconditioner(SF, prior, {isig: _signal_sigma_f(sc, comps[isig])})
    H = prior.add_to(SF.dense())
    v = rng.standard_normal(x.size)
    assert np.allclose(prior_matvec(prior, v) + SF.matvec(v), H @ v, rtol=1e-10,
                       atol=1e-10 * np.abs(H @ v).max())
    Minv = _matrix(pc, x.size)
    assert np.abs(Minv - Minv.T).max() < 1e-9 * np.abs(Minv).max()
    d = np.sqrt(np.diag(Minv))            # entries span ~1e10: test the scaled matrix
    assert np.linalg.eigvalsh(0.5 * (Minv + Minv.T) / np.outer(d, d)).min() > 0
    R = Minv @ H
    if nk == TINY["band"]["nfreq"]:
        assert pc.clipped == 0
        assert np.abs(R - np.eye(x.size)).max() < 1e-6
    else:
        # a k_par cut below the beam ripple's delay (the cut modes absorb foreground
        # structure in the completed model, so a few Schur directions are clipped): the
        # spectrum of M^-1 H stays within a decade of 1 (CG needs tens of iterations, not n)
        ev = np.linalg.eigvals(R).real
        assert ev.min() > 0.1 and ev.max() < 20.0


def test_structured_route_reaches_dense_map_and_logs(capsys) -> None:
    """fit.fisher 'none' (structured Gauss-Newton-CG, no n x n matrix) reaches the dense
    route's MAP to far below the posterior errors, logs every iteration, and says so;
    stopped early, it says it has not converged."""
    from linlim.pipelines.power import PriorHessian
    from linlim.pipelines.signalfit import _hessian_factor, fit_with_signal
    from linlim.pipelines.simulate import simulate_data

    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, TINY))
    data = simulate_data(sc)["data"]
    nominal = [14.0, 0.0, 0.0, 0.0]
    lines: list[str] = []
    dense = fit_with_signal(sc, data, _fit_options(map_solver="dense"), beam="fit", seed=3)
    big = fit_with_signal(sc, data, _fit_options(fisher="none"), beam="fit", seed=3,
                          log=lines.append)
    rd, rb = dense["result"], big["result"]
    assert rd.success and rb.success
    assert rd.method == "gauss-newton (staged CG)" != rb.method      # two different routes
    # the default (fit.fisher 'dense' for the errors) finds its MAP by the structured route
    default = fit_with_signal(sc, data, _fit_options(), beam="fit", seed=3)["result"]
    assert default.method == rb.method and np.array_equal(default.x, rb.x)
    with pytest.raises(InputError, match="map_solver.*needs fit.fisher 'dense'"):
        fit_with_signal(sc, data, _fit_options(fisher="none", map_solver="dense"),
                        beam="fit", seed=3)
    assert rb.message.startswith("converged: the last Gauss-Newton step predicted")
    it_lines = [ln for ln in lines if "Gauss-Newton iteration" in ln]
    assert len(it_lines) == rb.nit >= 3
    assert all("loss" in ln and "|grad|_inf" in ln and ln.rstrip().endswith(" s")
               for ln in it_lines)
    assert "no Jacobian or n x n matrix" in lines[0]
    # the same MAP: the difference is far below every posterior error
    jm, post = dense["model"], dense["post"]
    _, cf = _hessian_factor(sc, post, jm, dense["components"], rd.x,
                            np.asarray(nominal).reshape(1, 4))
    import scipy.linalg as sla

    d = rb.x - rd.x
    n = d.size
    sigma = np.sqrt(np.diag(sla.cho_solve(cf, np.eye(n))))
    assert np.abs(d / sigma).max() < 1e-3
    assert abs(rb.fun - rd.fun) < 1e-6 * abs(rd.fun)
    # the convergence bound's mu: the prior Hessian's smallest eigenvalue, from its parts
    from linlim.pipelines.signalfit import _prior_min_eigenvalue

    prior = PriorHessian(post, rd.x)
    full = np.linalg.eigvalsh(prior.add_to(np.zeros((n, n))))[0]
    assert _prior_min_eigenvalue(prior) == pytest.approx(full, rel=1e-10)
    # stopped after one iteration: an honest message
    early = fit_with_signal(sc, data, _fit_options(fisher="none", maxiter=1), beam="fit",
                            seed=3)["result"]
    assert not early.success and early.message.startswith("not converged: stopped at "
                                                          "fit.maxiter = 1")


def test_structured_route_memory_check() -> None:
    """fit.fisher 'none' refuses a config whose structured route would not fit, naming the
    GiB it needs; the large config's need is a few GiB."""
    import pathlib

    import yaml

    from linlim.pipelines.demo import DEMO_DEFAULTS
    from linlim.pipelines.signalfit import check_dense_memory, structured_route_memory

    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, TINY))
    fit = _fit_options(fisher="none", memory_limit_gib=1e-4)
    with pytest.raises(InputError, match=r"needs about \d+\.\d GiB of memory for the "
                                         r"structured Gauss-Newton route"):
        check_dense_memory(sc, fit)
    assert check_dense_memory(sc, {**fit, "memory_limit_gib": 64}) == 0
    path = pathlib.Path(__file__).parents[1] / "examples" / "configs" / "large.yaml"
    cfg = merge_config(DEMO_DEFAULTS, yaml.safe_load(path.read_text()))
    need = structured_route_memory(build_scenario(cfg["scenario"]))
    nf, P = 384, 372 + 34
    assert 8 * nf * P**2 < need < 16 * 2**30


def test_demo_structured_route_logs_and_converges(tmp_path, capsys) -> None:
    """`linlim demo` with fit.fisher 'none' (the large config's route) on a tiny scenario:
    the start, every Gauss-Newton iteration and the convergence message are printed, and
    the summary records the message."""
    import json

    from linlim.pipelines.demo import run_demo

    s = run_demo({"scenario": TINY, "fit": {"fisher": "none", "maxiter": 30},
                  "hmc": {"enabled": False}, "plots": False, "progress": False,
                  "steps": {"wrong_beam": False, "old_route": False, "null_test": False}},
                 output=str(tmp_path / "demo"))
    out = capsys.readouterr().out
    assert "structured Gauss-Newton-CG" in out and "start: linear blocks" in out
    nit = s["joint_fit"]["iterations"]
    for k in range(1, nit + 1):
        assert f"Gauss-Newton iteration {k}: loss" in out
    assert f"Gauss-Newton iteration {nit + 1}:" not in out
    assert s["joint_fit"]["message"].startswith("converged: the last Gauss-Newton step")
    assert s["joint_fit"]["message"] in out
    saved = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert saved["joint_fit"]["message"] == s["joint_fit"]["message"]
    assert saved["joint_fit"]["converged"] is True
    assert 0.5 < saved["joint_fit"]["chi2_per_dof"] < 1.5       # noise-limited residual
    assert len(saved["beam_map"]) == 4
    assert all(b["name"].startswith("beam") for b in saved["beam_map"])
    assert "beam MAP vs truth" in out
