"""HMC validation at full size (the "Done when" statistics of the HMC issue) and ESS per
gradient / per second. Run: ``python benchmarks/bench_hmc.py [--quick]``; prints Markdown.

Targets come from tests/test_hmc.py (same classes). Set OMP_NUM_THREADS=1 for timings.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_hmc import Gaussian, LowRankGaussian, StdNormal  # noqa: E402

from linlim.inference.diagnostics import ess_bulk, mcse_mean, rhat  # noqa: E402
from linlim.inference.hmc import HMC  # noqa: E402
from linlim.inference.metric import fisher_metric  # noqa: E402


def zstats(w):
    z1 = w.mean(axis=(0, 1)) / mcse_mean(w)
    z2 = ((w**2).mean(axis=(0, 1)) - 1) / mcse_mean(w**2)
    z = np.concatenate([z1, z2])
    bound = stats.norm.ppf(1 - 0.001 / (2 * z.size))
    return float(np.abs(z).max()), float(bound), float(np.mean(z**2))


def row(name, r, w, t):
    ess = ess_bulk(w)
    zmax, bound, msq = zstats(w)
    print(f"| {name} | {ess.min():.0f} | {rhat(w).max():.4f} | {zmax:.2f} / {bound:.2f} | "
          f"{msq:.3f} | {r.n_grad} | {ess.min() / r.n_grad:.4f} | {ess.min() / t:.0f} | "
          f"{r.n_divergent} |")
    return ess.min() / r.n_grad


class EightSchools:
    """Centred eight schools: mu ~ N(0, 5), tau ~ HalfCauchy(5) (log tau unconstrained),
    theta_j ~ N(mu, tau), y_j ~ N(theta_j, sigma_j)."""

    y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
    sig = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
    size, xp = 10, np

    def value_and_grad(self, z):
        mu, lt, th = z[0], z[1], z[2:]
        tau = np.exp(lt)
        r = (th - mu) / tau
        lp = (-mu**2 / 50 - np.log1p(tau**2 / 25) + lt - 8 * lt - 0.5 * r @ r
              - 0.5 * np.sum(((self.y - th) / self.sig) ** 2))
        g = np.empty(10)
        g[0] = -mu / 25 + np.sum(r) / tau
        g[1] = -2 * tau**2 / 25 / (1 + tau**2 / 25) + 1 - 8 + r @ r
        g[2:] = -r / tau + (self.y - th) / self.sig**2
        return float(lp), g

    def value(self, z):
        return self.value_and_grad(z)[0]

    def grad(self, z):
        return self.value_and_grad(z)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    nd = 500 if args.quick else 1000

    print("## Acceptance statistic, static HMC, standard normal (4 chains, 1000 warm-up)\n")
    print("| D | metric | target | mean accept_stat |\n|---|---|---|---|")
    for d in (100, 1000):
        for metric in ("identity", "diag"):
            for tgt in (0.6, 0.8, 0.95):
                r = HMC(StdNormal(d), metric=metric, target_accept=tgt).sample(
                    nd, 1000, chains=4, seed=2, progress=False)
                print(f"| {d} | {metric} | {tgt} | {r.sample_stats['accept_stat'].mean():.3f} |")

    print("\n## Moments on rotated Gaussians, condition number 1e4 (4 chains)\n")
    print("| run | min bulk ESS | max R-hat | max abs z / bound | mean z^2 | gradients | "
          "min ESS / grad | min ESS / s | divergent |\n|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(1000)
    post = LowRankGaussian(1000, 10, 1e4, rng)
    t = time.perf_counter()
    r = HMC(post, metric=fisher_metric((np.ones(1000), post.U, post.s))).sample(
        nd, 200, chains=4, seed=5, init=post.mu, progress=False)
    row("D=1000, Fisher low-rank metric, static HMC", r, post.whiten(r.draws),
        time.perf_counter() - t)

    rng = np.random.default_rng(100)
    d = 100
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    prec = q @ np.diag(np.geomspace(1e-2, 1e2, d)) @ q.T
    g = Gaussian(prec, mu=rng.standard_normal(d))
    chol = np.linalg.cholesky(prec)
    t = time.perf_counter()
    r = HMC(g, metric=fisher_metric(prec)).sample(nd, 200, chains=4, seed=1, progress=False)
    ef = row("D=100, Fisher dense metric, static HMC", r, (r.draws - g.mu) @ chol,
             time.perf_counter() - t)
    t = time.perf_counter()
    r = HMC(g, metric="diag", algorithm="nuts").sample(nd, 1000, chains=4, seed=1,
                                                       progress=False)
    eu = row("D=100, default adaptation (diag), NUTS", r, (r.draws - g.mu) @ chol,
             time.perf_counter() - t)
    t = time.perf_counter()
    r = HMC(g, metric="diag").sample(nd, 1000, chains=4, seed=1, progress=False)
    es = row("D=100, default adaptation (diag), static HMC", r, (r.draws - g.mu) @ chol,
             time.perf_counter() - t)
    print(f"\nFisher / unpreconditioned min-ESS per gradient: {ef / eu:.1f}x (vs NUTS), "
          f"{ef / es:.1f}x (vs static HMC)\n")

    print("## Eight schools, centred (NUTS, diag, 4 chains)\n")
    for tgt in (0.8, 0.95):
        r = HMC(EightSchools(), algorithm="nuts", target_accept=tgt).sample(
            nd, 1000, chains=4, seed=3, progress=False)
        s = r.summary()
        print(f"- target {tgt}: {r.n_divergent} divergent of {r.draws.shape[0] * nd}; "
              f"min E-BFMI {min(s.sampler['ebfmi']):.2f}; max R-hat "
              f"{s.columns['r_hat'].max():.3f}")

    print("\n## Cost per leapfrog step at large D (low-rank Fisher metric, k = 20)\n")
    for d in (10_000, 100_000):
        rng = np.random.default_rng(d)
        post = LowRankGaussian(d, 20, 1e4, rng)
        m = fisher_metric((np.ones(d), post.U, post.s))
        t = time.perf_counter()
        r = HMC(post, metric=m).sample(100, 50, chains=1, seed=1, init=post.mu,
                                       progress=False)
        dt = time.perf_counter() - t
        ng = r.n_grad + int(r.warmup_stats["n_leapfrog"].sum())
        print(f"- D={d}: {dt / ng * 1e3:.2f} ms per leapfrog step incl. gradient "
              f"({ng} steps, {dt:.1f} s); bulk ESS of 100 draws: median "
              f"{np.median(eb := ess_bulk(post.whiten(r.draws))):.0f}, min {eb.min():.0f} "
              f"(iid normal draws of the same shape: min "
              f"{ess_bulk(rng.standard_normal((1, 100, d))).min():.0f})")


if __name__ == "__main__":
    main()
