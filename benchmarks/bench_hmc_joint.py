"""HMC on the demo's joint hierarchical posterior: split vs leapfrog, lockstep vs one chain
at a time.

Builds the default demo's posterior (simulate, joint MAP, Laplace step: ~1-2 min on 2
cores), then, from the same start and metric (the dense Gauss-Newton Hessian), times:

* the per-step parts: one structured gradient and a block of 4; one metric product and a
  block of 4 (the panelled product of :class:`~linlim.inference.metric.DenseMetric`);
* short runs (``--warmup``, ``--draws``; 4 chains): split HMC in lockstep, leapfrog in
  lockstep, and leapfrog one chain after the other, reporting the adapted step sizes, the
  leapfrog steps per iteration, acceptance, divergences and seconds.

Usage::

    python benchmarks/bench_hmc_joint.py [--warmup 75] [--draws 40]

No timing assertions; on a shared machine only the ratios in one run mean anything.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def build() -> tuple:
    """The demo's hierarchical posterior, its start and its dense metric."""
    from linlim.io.config import merge_config
    from linlim.pipelines.demo import DEMO_DEFAULTS
    from linlim.pipelines.hierarchical import HierarchicalLaplacePosterior, dense_metric
    from linlim.pipelines.scenario import build_scenario
    from linlim.pipelines.signalfit import fit_with_signal, laplace_analysis
    from linlim.pipelines.simulate import simulate_data

    cfg = merge_config(DEMO_DEFAULTS, {})
    sc = build_scenario(cfg["scenario"])
    joint = fit_with_signal(sc, simulate_data(sc)["data"], cfg["fit"], beam="fit",
                            seed=cfg["scenario"]["seed"])
    lap = laplace_analysis(sc, joint, cfg["fit"])
    jm, post, p0 = joint["model"], joint["post"], joint["p0"]
    x = np.asarray(joint["result"].x, float)
    sig = np.arange(x.size)[jm.params.slices["signal"]]
    _, g_post = post.value_and_grad(x)
    g_prior = np.asarray(post._prior_grad(x), float)
    est = np.asarray(lap["bandpowers"]["estimate"])
    u0 = np.log(np.maximum(est, 0.05 * p0) / p0)
    band = sc.signal_field.band_of_coeff()
    centring = 1.0 / (1.0 + np.diag(lap["G"]) * np.exp(u0)[band])
    hp = HierarchicalLaplacePosterior(lap["structured"], lap["prior"], x,
                                      np.asarray(g_post, float) - g_prior, g_prior, sig,
                                      band, sc.signal_field.nbands, centring=centring)
    x0 = hp.initial(u0)
    return hp, x0, dense_metric(hp, x0, lap["F"])


def best_ms(f, k: int = 10) -> float:
    f()
    t = []
    for _ in range(k):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return 1e3 * min(t)


def main() -> None:
    from linlim.inference.hmc import HMC

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=75)
    ap.add_argument("--draws", type=int, default=40)
    a = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    t0 = time.perf_counter()
    hp, x0, metric = build()
    print(f"posterior built in {time.perf_counter() - t0:.0f} s: {hp.size} parameters",
          flush=True)
    X = x0 + 1e-3 * np.random.default_rng(0).standard_normal((4, hp.size))
    print(f"gradient: 1 point {best_ms(lambda: hp.value_and_grad(X[0])):.1f} ms, 4 points "
          f"{best_ms(lambda: hp.value_and_grad_batch(X)):.1f} ms")
    print(f"metric product: 1 momentum {best_ms(lambda: metric.velocity(X[0])):.1f} ms, 4 "
          f"momenta {best_ms(lambda: metric.velocity_batch(X)):.1f} ms", flush=True)
    print("| run | seconds | step sizes | steps / iteration (mean, slowest chain) | "
          "acceptance | divergences |")
    print("|---|---|---|---|---|---|")
    for name, opts in (("split, lockstep", {"split_centre": x0}),
                       ("leapfrog, lockstep", {}),
                       ("leapfrog, one chain at a time", {"batch_chains": False})):
        t0 = time.perf_counter()
        r = HMC(hp, metric=metric, **opts).sample(a.draws, a.warmup, chains=4, seed=1,
                                                  init=x0, progress=False)
        dt = time.perf_counter() - t0
        n = r.sample_stats["n_leapfrog"]
        print(f"| {name} | {dt:.1f} | {', '.join(f'{e:.3f}' for e in r.step_size)} | "
              f"{n.mean():.2f}, {n.max(0).mean():.2f} | "
              f"{r.sample_stats['accept_stat'].mean():.2f} | {r.n_divergent} |", flush=True)
    print(f"# load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
