"""Matrix-free Gauss-Newton at 10^4-10^5 parameters: CG iterations with and without
preconditioning, time per GN iteration, and accuracy against the closed-form MAP.

The problem is the one of ``tests/test_solver_scale.py``: a real field on an N x N grid with a
steep power-law GRF prior, observed as m noisy samples of the Fourier transform of the
beam-tapered field (an interferometer-like linear-Gaussian inverse problem), plus a mildly
nonlinear variant ``A (x + c x^2)`` with a second, prior-free parameter block.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_solver.py [--quick]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_solver_scale import closed_form_map, make_problem  # noqa: E402

from linlim.inference.gauss_newton import gauss_newton  # noqa: E402
from linlim.inference.preconditioners import (  # noqa: E402
    JacobiPreconditioner,
    LowRankPreconditioner,
    PriorPreconditioner,
)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def linear_rows(N, m, noise, cap, chunk):
    post, info = make_problem(N=N, m=m, noise=noise)
    t0 = time.perf_counter()
    x_ref = closed_form_map(info, chunk=chunk)
    t_ref = time.perf_counter() - t0
    x0 = np.zeros(post.size)
    rows = []
    for name, pc in [("none", None), ("jacobi (probe, 32)", JacobiPreconditioner(method="probe")),
                     ("prior", PriorPreconditioner()),
                     ("lowrank k=60", LowRankPreconditioner(rank=60))]:
        t0 = time.perf_counter()
        res = gauss_newton(post, x0, cg_tol=1e-10, maxiter=1, preconditioner=pc,
                           cg_maxiter=cap, cg_window=500)
        dt = time.perf_counter() - t0
        rows.append((post.size, noise, name, int(res.history["cg_iters"][1]), res.njvp, dt,
                     _rel(res.x, x_ref)))
    return rows, t_ref


def nonlinear_rows(N, m):
    post, info = make_problem(N=N, m=m, nonlinear=0.05, extra=12, extra_prior=False)
    x0 = np.zeros(post.size)
    g0 = np.abs(post.grad(x0)).max()
    rows = []
    for name, pc, kw in [("prior", PriorPreconditioner(), {}),
                         ("lowrank k=40", LowRankPreconditioner(rank=40), {}),
                         ("none", None, dict(cg_maxiter=3000))]:
        t0 = time.perf_counter()
        res = gauss_newton(post, x0, preconditioner=pc, cg_tol="adaptive",
                           maxiter=30 if pc is not None else 6, gtol=1e-8 * g0, **kw)
        dt = time.perf_counter() - t0
        rows.append((post.size, name, res.nit, int(res.history["cg_iters"].sum()), res.njvp,
                     dt, dt / max(res.nit, 1), float(np.abs(post.grad(res.x)).max() / g0)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10^4 parameters only")
    args = ap.parse_args()
    cases = [(100, 600, 0.3, 8000, 200), (100, 600, 0.05, 8000, 200)]
    if not args.quick:
        cases.append((316, 600, 0.3, 8000, 100))
    print("| parameters | noise/signal | preconditioner | CG iterations | GN products | "
          "seconds | rel. error vs closed form |")
    print("|---|---|---|---|---|---|---|")
    for N, m, noise, cap, chunk in cases:
        rows, t_ref = linear_rows(N, m, noise, cap, chunk)
        for r in rows:
            print(f"| {r[0]:,} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.1e} |")
        print(f"| {N * N:,} | {noise} | (closed form, {m} complex data) | | | {t_ref:.1f} | |")
        sys.stdout.flush()
    print()
    print("| parameters | preconditioner | GN iterations | CG iterations (total) | GN products "
          "| seconds | s / GN iteration | final grad / initial |")
    print("|---|---|---|---|---|---|---|---|")
    for r in nonlinear_rows(100, 600):
        print(f"| {r[0]:,} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.2f} | "
              f"{r[7]:.1e} |")


if __name__ == "__main__":
    main()
