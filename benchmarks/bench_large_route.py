"""The joint fit's structured Gauss-Newton route (``fit.fisher: none``) against the dense one.

Two modes:

``compare``: on a mid-size scenario where the dense route still runs, fit the joint
posterior both ways from the same start and report iterations, seconds per iteration,
the final loss and how far apart the two MAPs are in posterior standard deviations (from
the dense route's Hessian at its MAP)::

    python benchmarks/bench_large_route.py compare --nfreq 192 --nside 16 --nk 56

``parts``: the cost of one structured Gauss-Newton iteration on a config (by default the
shipped large one) without running the fit: the loss and gradient, the structured
Hessian build, the preconditioner, one Hessian product and the CG solve of the first
step, with the peak memory; and an estimate of the whole fit for a number of
iterations::

    python benchmarks/bench_large_route.py parts --config examples/configs/large.yaml

Both print the machine's load average, and write ``bench_large_route.json`` in ``--out``.
No timing assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import time

import numpy as np
import scipy.linalg as sla
import yaml

from linlim.io.config import merge_config
from linlim.pipelines.demo import DEMO_DEFAULTS
from linlim.pipelines.scenario import build_scenario
from linlim.pipelines.simulate import simulate_data


def _scenario(cfg: dict):
    sc = build_scenario(cfg["scenario"])
    return sc, simulate_data(sc)["data"]


def compare(args: argparse.Namespace) -> dict:
    from linlim.pipelines.signalfit import _hessian_factor, fit_with_signal

    over = {"scenario": {"band": {"nfreq": args.nfreq},
                         "signal": {"nside": args.nside, "nk": args.nk}},
            "fit": {"maxiter": args.maxiter, "cg_maxiter": 60}}
    cfg = merge_config(DEMO_DEFAULTS, over)
    sc, data = _scenario(cfg)
    seed = int(cfg["scenario"]["seed"]) + 1
    out: dict = {"load_before": os.getloadavg()}
    fits = {}
    for route in ("dense", "none"):
        fit = {**cfg["fit"], "fisher": route}
        t0 = time.perf_counter()
        r = fit_with_signal(sc, data, fit, beam="fit", seed=seed,
                            log=lambda m, _r=route: print(f"[{_r}] {m}", flush=True))
        sec = time.perf_counter() - t0
        res = r["result"]
        fits[route] = r
        out[route] = {"parameters": int(r["n_params"]), "iterations": int(res.nit),
                      "seconds": sec, "seconds_per_iteration": sec / max(int(res.nit), 1),
                      "loss": float(res.fun),
                      "grad_inf": float(np.abs(np.asarray(res.grad)).max()),
                      "message": str(res.message), "load_after": os.getloadavg()}
        print(route, out[route], flush=True)
    rd, rs = fits["dense"], fits["none"]
    x0, x1 = np.asarray(rd["result"].x), np.asarray(rs["result"].x)
    _, cf = _hessian_factor(sc, rd["post"], rd["model"], rd["components"], x0,
                            np.asarray(cfg["fit"]["nominal_beam"], float).reshape(1, 4))
    sigma = np.sqrt(np.diag(sla.cho_solve(cf, np.eye(x0.size))))
    out["max_abs_difference_sigma"] = float(np.abs((x1 - x0) / sigma).max())
    print(f"MAPs differ by at most {out['max_abs_difference_sigma']:.2e} sigma", flush=True)
    return out


def parts(args: argparse.Namespace) -> dict:
    from linlim.likelihood import GaussianLikelihood, LogPosterior
    from linlim.operators.cg import conjugate_gradient
    from linlim.pipelines.fit import start_and_priors
    from linlim.pipelines.joint import build_joint_model
    from linlim.pipelines.power import PriorHessian
    from linlim.pipelines.signalfit import (
        _beam_of,
        _gains_of,
        _signal_sigma_f,
        fiducial_power,
        linear_components,
        structured_route_memory,
    )
    from linlim.pipelines.structured import (
        prior_matvec,
        structured_fisher,
        structured_preconditioner,
    )
    from linlim.priors import GaussianPrior

    cfg = merge_config(DEMO_DEFAULTS, yaml.safe_load(pathlib.Path(args.config).read_text()))
    T: dict = {"load_before": os.getloadavg()}
    t = time.perf_counter()
    sc, data = _scenario(cfg)
    T["simulate_s"] = time.perf_counter() - t
    fit = cfg["fit"]
    comps = linear_components(sc, fiducial_power(sc, float(fit["fiducial_rms_mk"])))
    nominal = np.asarray(fit["nominal_beam"], float).reshape(1, 4)
    jm = build_joint_model(sc.obs, sc.catalog.ra, sc.catalog.dec, sc.ref_freq,
                           sc.ripple_delay, beam="fit", fixed_beam=nominal,
                           fit_gains=sc.gains is not None, linear=comps)
    start, priors = start_and_priors(sc, fit, np.random.default_rng(
        int(cfg["scenario"]["seed"]) + 1), True)
    for c in comps:
        start[c.name] = np.zeros(c.shape)
        priors.append(GaussianPrior(np.zeros(int(np.prod(c.shape))), sigma=1.0, index=c.name))
    post = LogPosterior(GaussianLikelihood(jm.model, data, sigma=sc.sigma), priors,
                        params=jm.params)
    theta = jm.params.pack(start)
    T["parameters"] = int(theta.size)
    T["memory_estimate_gib"] = structured_route_memory(sc) / 2**30
    t = time.perf_counter()
    _, g = post.loss_and_grad(theta)
    T["loss_and_grad_s"] = time.perf_counter() - t
    t = time.perf_counter()
    post.value(theta)
    T["loss_s"] = time.perf_counter() - t
    t = time.perf_counter()
    SF = structured_fisher(post, jm.params, theta, sc.obs, comps, sc.ref_freq,
                           sc.ripple_delay, _beam_of(jm, theta, nominal), _gains_of(jm, theta),
                           check=False, sources=(sc.catalog.ra, sc.catalog.dec))
    T["structured_hessian_s"] = time.perf_counter() - t
    prior = PriorHessian(post, theta)
    t = time.perf_counter()
    pc = structured_preconditioner(SF, prior, {i: _signal_sigma_f(sc, c)
                                               for i, c in enumerate(comps)
                                               if c.name == "signal"})
    T["preconditioner_s"] = time.perf_counter() - t
    T["schur_clipped"] = int(pc.clipped)
    v = np.random.default_rng(0).standard_normal(theta.size)
    t = time.perf_counter()
    SF.matvec(v) + prior_matvec(prior, v)
    T["hessian_product_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cg = conjugate_gradient(lambda u: SF.matvec(u) + prior_matvec(prior, u),
                            -np.asarray(g, float), tol=float(fit["cg_tol"]),
                            maxiter=int(fit["cg_maxiter"]), precond=pc)
    T["cg_s"], T["cg_iterations"] = time.perf_counter() - t, int(cg.niter)
    T["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    # an iteration: Hessian + preconditioner + CG (~5 iterations near the MAP) + a few loss
    # evaluations in the line search + the gradient at the new point
    per_it = (T["structured_hessian_s"] + T["preconditioner_s"]
              + 5 * (T["hessian_product_s"] * 2) + 2 * T["loss_s"] + T["loss_and_grad_s"])
    T["iteration_estimate_s"] = per_it
    T["fit_estimate_s"] = {str(n): T["simulate_s"] + (n + 1) * per_it
                           for n in (10, 15, 20, 30)}
    T["load_after"] = os.getloadavg()
    print(json.dumps(T, indent=1), flush=True)
    return T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--nfreq", type=int, default=192)
    c.add_argument("--nside", type=int, default=16)
    c.add_argument("--nk", type=int, default=56)
    c.add_argument("--maxiter", type=int, default=30)
    p = sub.add_parser("parts")
    p.add_argument("--config", default=str(pathlib.Path(__file__).parents[1] / "examples"
                                           / "configs" / "large.yaml"))
    for q in (c, p):
        q.add_argument("--out", default=".")
    args = ap.parse_args()
    res = compare(args) if args.mode == "compare" else parts(args)
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path = pathlib.Path(args.out) / "bench_large_route.json"
    path.write_text(json.dumps(res, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
