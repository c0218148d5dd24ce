"""Standard RIME benchmark: linlim vs matvis, fftvis and a plain-numpy direct sum.

HERA-like hexagon (37 antennas, 14.6 m) at the HERA site, 64 channels 100-200 MHz,
20 times 10 s apart, 10^3 and 10^4 power-law point sources uniform on the sphere, one
Airy beam (14 m dish), XX only, complex128 unless stated. Run::

    .venv/bin/python benchmarks/bench_rime.py [--nsrc 1000 10000] [--skip-numpy-large]

Prints a table; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def hexagon(sep: float = 14.6, rings: int = 3) -> np.ndarray:
    pos = []
    for r in range(-rings, rings + 1):
        n = 2 * rings + 1 - abs(r)
        for c in range(n):
            pos.append([(c - (n - 1) / 2) * sep, r * sep * np.sqrt(3) / 2, 0.0])
    return np.array(pos)


def problem(nsrc: int, seed: int = 42) -> dict:
    import astropy.units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    rng = np.random.default_rng(seed)
    loc = EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                      1051.6900000218302 * u.m)
    freqs = np.linspace(100e6, 200e6, 64, endpoint=False)
    times = Time(2459855.25 + np.arange(20) * 10.0 / 86400, format="jd")
    ra = rng.uniform(0, 2 * np.pi, nsrc)
    dec = np.arcsin(rng.uniform(-1, 1, nsrc))
    flux = rng.uniform(0.1, 10.0, nsrc)[:, None] * (freqs[None] / 150e6) ** rng.uniform(
        -1.2, -0.4, nsrc)[:, None]
    return dict(loc=loc, freqs=freqs, times=times, ra=ra, dec=dec, flux=flux,
                antpos=hexagon())


def source_enu(p: dict) -> np.ndarray:
    """linlim.telescope.coordinates.source_enu when present, else astropy AltAz per time
    (matvis' own pipeline, vectorised over times)."""
    try:
        from linlim.telescope.coordinates import source_enu as se

        return se(p["ra"], p["dec"], p["times"].jd, p["loc"], method="precise")
    except ImportError:
        import astropy.units as u
        from astropy.coordinates import AltAz, SkyCoord

        sc = SkyCoord(ra=p["ra"] * u.rad, dec=p["dec"] * u.rad, frame="icrs")
        aa = sc[None, :].transform_to(AltAz(obstime=p["times"][:, None], location=p["loc"]))
        el, az = aa.alt.rad, aa.az.rad
        return np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], 1)


def timed(f, *a, repeat: int = 1, **k):
    """``(result, best wall time of repeat calls)``: on a shared machine the best of a few
    runs is the reproducible number."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f(*a, **k)
        best = min(best, time.perf_counter() - t0)
    return out, best


def gemm_rate(dtype=np.complex64, n=2048) -> float:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(dtype)
    a @ a
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 8.0 * n**3 / best


def numpy_direct(p, enu, A, a1, a2) -> np.ndarray:
    """Plain-numpy direct sum per time and channel (the textbook loop, vectorised over
    baselines and sources)."""
    c = 299792458.0
    V = np.zeros((enu.shape[0], p["freqs"].size, a1.size), complex)
    b = p["antpos"][a2] - p["antpos"][a1]
    for t in range(enu.shape[0]):
        up = enu[t, 2] > 0
        d = b @ enu[t][:, up] / c
        for f, nu in enumerate(p["freqs"]):
            w = 0.5 * p["flux"][up, f] * A[0, t, up, f] ** 2
            V[t, f] = np.exp(2j * np.pi * nu * d) @ w
    return V


def run(nsrc: int, skip_numpy: bool) -> dict:
    import matvis
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import RIME
    from linlim.rime.simulate import evaluate_beams

    p = problem(nsrc)
    na = len(p["antpos"])
    a1, a2 = np.triu_indices(na)
    beam = AiryBeam(diameter=14.0)
    res = {"nsrc": nsrc}

    # linlim, set-up included: coordinates, beams, operator, forward
    def linlim_all(dtype="complex128"):
        enu = source_enu(p)
        A = evaluate_beams([beam], enu, p["freqs"])
        rd = np.float32 if dtype == "complex64" else np.float64
        op = RIME(enu, p["antpos"], p["freqs"], a1, a2, dtype=dtype)
        return op((p["flux"].astype(rd), A.astype(rd))), op, enu, A

    linlim_all()  # warm numba's on-disk cache and astropy's tables
    (V, op, enu, A), res["linlim_total"] = timed(linlim_all, repeat=3)
    _, res["linlim_coords"] = timed(source_enu, p, repeat=3)
    _, res["linlim_beams"] = timed(evaluate_beams, [beam], enu, p["freqs"], repeat=3)
    x = (p["flux"], A)
    _, res["linlim_fwd"] = timed(op, x, repeat=3)
    _, res["linlim_vjp"] = timed(op.vjp, x, V, repeat=3)
    (_, J), res["linlim_linearize"] = timed(op.linearize, x, repeat=3)
    res["cached"] = J.cache is not None
    _, res["J"] = timed(J.matvec, x, repeat=3)
    _, res["JH"] = timed(J.rmatvec, V, repeat=3)
    (V64, op64, _, _), res["linlim_total_c64"] = timed(linlim_all, "complex64", repeat=3)
    x32 = (p["flux"].astype(np.float32), A.astype(np.float32))
    _, res["linlim_fwd_c64"] = timed(op64, x32, repeat=3)
    flops = 8.0 * na**2 * sum(op64.engine.nup) * p["freqs"].size
    res["gemm_c64"] = gemm_rate()
    res["fwd_c64_gflops"] = flops / res["linlim_fwd_c64"] / 1e9

    # matvis (its default CPU path), same inputs; all Nant^2 pairs, we compare ours
    ants = {i: x for i, x in enumerate(p["antpos"])}
    kw = dict(ants=ants, fluxes=p["flux"], ra=p["ra"], dec=p["dec"], freqs=p["freqs"],
              times=p["times"], beams=[beam], telescope_loc=p["loc"])
    vm, res["matvis"] = timed(matvis.simulate_vis, precision=2, **kw)
    vm = np.moveaxis(vm, 0, 1).reshape(20, 64, na, na)[:, :, a1, a2]
    cross = a1 != a2
    res["rel_matvis"] = float(np.abs(V - vm)[..., cross].max() / np.abs(vm[..., cross]).max())
    vm1 = np.moveaxis(matvis.simulate_vis(precision=1, **kw), 0, 1).reshape(
        20, 64, na, na)[:, :, a1, a2]
    res["rel_matvis_c64"] = float(np.abs(V64 - vm1)[..., cross].max()
                                  / np.abs(vm1[..., cross]).max())
    try:
        import fftvis

        fkw = dict(kw)
        fkw["beam"] = fkw.pop("beams")[0]
        fkw["baselines"] = list(zip(a1.tolist(), a2.tolist()))
        vf, res["fftvis"] = timed(fftvis.simulate_vis, precision=2, **fkw)
        vf = np.moveaxis(vf, 0, 1)
        res["rel_fftvis"] = float(np.abs(V - vf)[..., cross].max()
                                  / np.abs(vf[..., cross]).max())
    except ImportError:
        res["fftvis"] = None
    if not skip_numpy:
        vn, res["numpy_direct"] = timed(numpy_direct, p, enu, A, a1, a2)
        res["rel_numpy"] = float(np.abs(V - vn).max() / np.abs(vn).max())
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nsrc", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--skip-numpy-large", action="store_true",
                    help="skip the plain-numpy direct sum above 1000 sources")
    args = ap.parse_args()
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  nproc={os.cpu_count()}  cpu={cpu}  "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}  "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    for n in args.nsrc:
        r = run(n, args.skip_numpy_large and n > 1000)
        for k, v in r.items():
            print(f"{n:6d} {k:18s} {v:.4g}" if isinstance(v, float) else f"{n:6d} {k:18s} {v}")
        t = r["linlim_total"]
        print(f"{n:6d} ratio matvis/linlim_total {r['matvis'] / t:.1f}; fftvis/linlim_total "
              f"{(r['fftvis'] or np.nan) / t:.1f}; numpy/linlim_total "
              f"{r.get('numpy_direct', np.nan) / t:.1f}; vjp/fwd "
              f"{r['linlim_vjp'] / r['linlim_fwd']:.2f}; fwd/J "
              f"{r['linlim_fwd'] / r['J']:.2f}; fwd/JH {r['linlim_fwd'] / r['JH']:.2f}"
              f"; c64 fwd {r['fwd_c64_gflops']:.1f} GFLOP/s of {r['gemm_c64'] / 1e9:.1f}")


if __name__ == "__main__":
    main()
