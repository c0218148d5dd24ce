"""StEFCal against the batched per-cell Gauss-Newton on the BayesLIM reference geometry.

GLEAM + A-team through a 14 m Airy beam on ``realization_0_downselect.uvh5`` (33 antennas,
54 cross-correlations, 10 times, 200 channels), corrupted with the HERA true-gains calfits
and 0.5 Jy sky noise; one solution per channel over all times (200 cells), ee. Prints the
seconds of each solver (best of ``--repeat``), their iterations, their agreement, the rms
relative gain error after the phase gauge, and GN's relative steps on noise-free data.

Run::

    python benchmarks/bench_reference_calibration.py [--repeat 3]

Needs the reference folder (``$LINLIM_REFERENCE_DATA`` or ``<repo>/../shared/data/bayeslim``).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sources", type=int, default=0, help="brightest N (0: all)")
    args = ap.parse_args()
    env = os.environ.get("LINLIM_REFERENCE_DATA")
    cands = ([pathlib.Path(env)] if env else []) + [
        ROOT.parent / "shared/data/bayeslim", ROOT.parent.parent / "shared/data/bayeslim"]
    ref = next((c for c in cands if (c / "GLEAM_ATEAM.yml").exists()), None)
    if ref is None:
        print("reference data not found (LINLIM_REFERENCE_DATA)")
        return 0
    from linlim.calibration.solve import gauss_newton_cells
    from linlim.calibration.stefcal import stefcal
    from linlim.io.uvcal import read_uvcal, uvcal_to_gains
    from linlim.io.uvdata import read_uvdata
    from linlim.pipelines.simulate import read_catalog, simulate_template

    cat = read_catalog(ref / "GLEAM_ATEAM.yml")
    if args.sources:
        cat = cat.brightest(args.sources)
    uv = simulate_template(ref / "realization_0_downselect.uvh5", cat, "airy:14")
    m = read_uvdata(uv, pols=["ee"], include_autos=False)
    sol = uvcal_to_gains(read_uvcal(ref / "2458101.sum.true_gains.singletime_downselect"
                                    ".calfits"), ant_numbers=m["ant_numbers"])
    g = sol["gains"][0, :, 0, :]                                      # (Nant, Nfreq)
    V = m["data"][0]
    a1, a2, na = m["ant1"], m["ant2"], m["ant_numbers"].size
    rng = np.random.default_rng(1)
    n = 0.5 / np.sqrt(2) * (rng.standard_normal(V.shape) + 1j * rng.standard_normal(V.shape))
    gg = g[a1].T[None] * g[a2].T[None].conj()
    gt = g[:, None, :]

    def rms(x: np.ndarray) -> float:
        ph = np.angle(np.sum(x * gt.conj(), axis=0))
        return float(np.sqrt(np.mean(np.abs(x * np.exp(-1j * ph) - gt) ** 2 / np.abs(gt) ** 2)))

    for label, raw in (("0.5 Jy noise", (V + n) * gg), ("noise-free", V * gg)):
        ts, tg = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            s = stefcal(raw, V, a1, a2, na, time_interval=10, tol=1e-10, maxiter=1000)
            ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = gauss_newton_cells(raw, V, a1, a2, na, time_interval=10, tol=1e-10)
            tg.append(time.perf_counter() - t0)
        agree = np.abs(s.gains - r.gains).max() / np.abs(r.gains).max()
        print(f"{label}: StEFCal {min(ts):.3f} s ({int(s.iterations.max())} iterations, "
              f"{int(s.converged.sum())}/{s.converged.size} converged), GN {min(tg):.3f} s "
              f"({int(r.iterations.max())} iterations, {int(r.converged.sum())}/"
              f"{r.converged.size} converged), GN/StEFCal {min(tg) / min(ts):.2f}; "
              f"max |g_GN - g_StEFCal| / max |g| = {agree:.1e}; rms gain error StEFCal "
              f"{rms(s.gains):.4%}, GN {rms(r.gains):.4%}")
        print("  GN relative steps: " + ", ".join(f"{h:.1e}" for h in r.step_history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
