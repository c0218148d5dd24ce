"""Band-power estimator speed at the demo's scale: ~5,000 signal coefficients, 8 bands.

Builds the band covariance blocks of a HealpixFreqBasis (nside_low 16 over a drift-scan
stripe of nside-32 targets, 8 DCT modes), a dense SPD noise covariance (n x n), draws one
coefficient vector from the model, and times (a) the blocks, (b) one quadratic-estimator
step with a dense N_c, (c) the full Newton iteration, (d) the block-diagonal fast path.
Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_bandpower.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from linlim.sky.bandpower import (
    BandPowerCovariance,
    estimate_band_powers,
    estimate_band_powers_from_map,
    quadratic_band_powers,
)
from linlim.sky.signal import HealpixFreqBasis, drift_stripe_pixels, healpix_radec


def main() -> None:
    rng = np.random.default_rng(0)
    freqs = 1.5e8 + 2e5 * np.arange(32)
    ra, dec = healpix_radec(32, drift_stripe_pixels(32, np.radians(-30.7), np.radians(9)))
    basis = HealpixFreqBasis(16, ra, dec, freqs, nk=8)
    t0 = time.perf_counter()
    edges = [0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2, 0.25, 0.35]
    bands = BandPowerCovariance(basis, edges)
    t_blocks = time.perf_counter() - t0
    n = bands.size
    power = np.full(bands.nband, 1e5)
    S = bands.dense_covariance(power)
    s = np.diag(S).mean()
    Q = rng.standard_normal((n, n)) / np.sqrt(n)
    N = s * (np.eye(n) + 0.3 * Q @ Q.T)
    Ls = np.linalg.cholesky(S + 1e-10 * s * np.eye(n))
    c = Ls @ rng.standard_normal(n) + np.linalg.cholesky(N) @ rng.standard_normal(n)
    t0 = time.perf_counter()
    quadratic_band_powers(c, N, bands, power)
    t_step = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = estimate_band_powers(c, N, bands)
    t_ml = time.perf_counter() - t0
    # a fit with the prior S(P0): Wiener-filtered MAP and posterior covariance
    S0 = bands.dense_covariance(power * 2)
    Ni = np.linalg.inv(N)
    Sig = np.linalg.inv(np.linalg.inv(S0 + 1e-10 * s * np.eye(n)) + Ni)
    Sig = 0.5 * (Sig + Sig.T)
    c_map = Sig @ (Ni @ c)
    t0 = time.perf_counter()
    rm = estimate_band_powers_from_map(c_map, Sig, bands, power * 2, jitter=1e-10)
    t_map = time.perf_counter() - t0
    Nb = np.stack([s * np.eye(bands.nspace)] * bands.nk)
    t0 = time.perf_counter()
    estimate_band_powers(c, Nb, bands)
    t_blk = time.perf_counter() - t0
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"coefficients n = {n} (Nspace {bands.nspace} x Nk {bands.nk}), bands "
          f"{bands.nband}")
    print("| step | seconds |\n|---|---|")
    print(f"| band blocks S_b | {t_blocks:.1f} |")
    print(f"| one quadratic step, dense N_c | {t_step:.1f} |")
    print(f"| ML iteration, dense N_c ({r.iterations} steps + null Fisher) | {t_ml:.1f} |")
    print(f"| ML iteration from MAP + posterior covariance ({rm.iterations} steps + null) | "
          f"{t_map:.1f} |")
    print(f"| ML iteration, block-diagonal N_c | {t_blk:.2f} |")


if __name__ == "__main__":
    main()
