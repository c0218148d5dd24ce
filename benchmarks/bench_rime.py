"""RIME benchmark: every figure of issue 20 side by side in one process.

HERA-like hexagon (37 antennas, 14.6 m) at the HERA site, power-law point sources uniform
on the sphere, one Airy beam (14 m dish), XX only, the 703 baselines i <= j, complex128
unless stated. Two problems:

* **A** (Jacobians and the forward's bound): 32 channels 100-200 MHz, 10 times 10 s
  apart, 10^3 and 10^4 sources (``--nsrc``): forward, vjp, ``linearize`` and its J and
  J^H (the default: products over the unique baselines of this redundant array), the same
  by Hermitian rank-k updates (``ub=False``), peak memory (tracemalloc) of forward and of
  forward + gradient, the complex64 ZHERK-path forward against this CPU's complex64 GEMM
  rate measured here (and the default complex64 forward's time), matvis on the same
  inputs.
* **B** (large skies): 10^5 sources, 16 channels, 4 times: ``simulate_vis`` with its
  default method (``"auto"``) against fftvis, set-up included for both.

Every timing is the best of ``--repeat`` calls. On a shared machine only the ratios, taken
in one run, mean anything. BLAS and OpenMP run single-threaded unless ``--threads`` says
otherwise (set before NumPy loads): on a 2-core VM shared by several users, two BLAS threads
thrash. Run::

    .venv/bin/python benchmarks/bench_rime.py [--nsrc 1000 10000] [--large 100000]

and copy the printed table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":   # thread counts must be fixed before NumPy loads
    _t = "1"
    if "--threads" in sys.argv:
        _t = sys.argv[sys.argv.index("--threads") + 1]
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_v, _t)

import platform  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402


def hexagon(sep: float = 14.6, rings: int = 3) -> np.ndarray:
    pos = []
    for r in range(-rings, rings + 1):
        n = 2 * rings + 1 - abs(r)
        for c in range(n):
            pos.append([(c - (n - 1) / 2) * sep, r * sep * np.sqrt(3) / 2, 0.0])
    return np.array(pos)


def problem(nsrc: int, nf: int, nt: int, seed: int = 42) -> dict:
    import astropy.units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    rng = np.random.default_rng(seed)
    loc = EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                      1051.6900000218302 * u.m)
    freqs = np.linspace(100e6, 200e6, nf, endpoint=False)
    times = Time(2459855.25 + np.arange(nt) * 10.0 / 86400, format="jd")
    ra = rng.uniform(0, 2 * np.pi, nsrc)
    dec = np.arcsin(rng.uniform(-1, 1, nsrc))
    flux = rng.uniform(0.1, 10.0, nsrc)[:, None] * (freqs[None] / 150e6) ** rng.uniform(
        -1.2, -0.4, nsrc)[:, None]
    return dict(loc=loc, freqs=freqs, times=times, ra=ra, dec=dec, flux=flux,
                antpos=hexagon())


def timed(f, *a, repeat: int = 2, **k):
    """``(result, best wall time of repeat calls)``."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f(*a, **k)
        best = min(best, time.perf_counter() - t0)
    return out, best


def peak(f, *a) -> float:
    """Peak traced (NumPy) memory of ``f(*a)`` in bytes."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    f(*a)
    p = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(p)


def gemm_rate(dtype=np.complex64, n=1024) -> float:
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(dtype)
    _, t = timed(np.matmul, a, a, repeat=3)
    return 8.0 * n**3 / t


def run_a(nsrc: int, repeat: int) -> dict:
    import matvis
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import RIME
    from linlim.rime.simulate import evaluate_beams
    from linlim.telescope.coordinates import source_enu

    nf, nt = 32, 10
    p = problem(nsrc, nf, nt)
    na = len(p["antpos"])
    a1, a2 = np.triu_indices(na)
    beam = AiryBeam(diameter=14.0)
    enu = source_enu(p["ra"], p["dec"], p["times"], p["loc"], method="precise")
    A = evaluate_beams([beam], enu, p["freqs"])
    r: dict = {"nsrc": nsrc}
    op = RIME(enu, p["antpos"], p["freqs"], a1, a2, method="gemm")
    x = (p["flux"], A)
    V = op(x)
    op.vjp(x, V)
    _, r["fwd"] = timed(op, x, repeat=repeat)
    _, r["vjp"] = timed(op.vjp, x, V, repeat=repeat)
    (_, J), r["linearize"] = timed(op.linearize, x, repeat=repeat)
    if op.engine.ub_products:
        r["cache"] = "unique-baseline phasors" if J.cache else "none"
    else:
        r["cache"] = "phasors" if J.cache and next(iter(J.cache.values()))[1] is None else (
            "full" if J.cache else "none")
    r["ub"] = op.engine.ub_products
    _, r["J"] = timed(J.matvec, x, repeat=repeat)
    _, r["JH"] = timed(J.rmatvec, V, repeat=repeat)
    # the same products by Hermitian rank-k updates (ZHERK/ZTRMM), side by side
    hk = RIME(enu, p["antpos"], p["freqs"], a1, a2, method="gemm", ub=False)
    Vh = hk(x)
    r["rel_herk"] = float(np.abs(V - Vh).max() / np.abs(Vh).max())
    _, r["fwd_herk"] = timed(hk, x, repeat=repeat)
    Jh = hk.linearize(x)[1]
    _, r["J_herk"] = timed(Jh.matvec, x, repeat=repeat)
    _, r["JH_herk"] = timed(Jh.rmatvec, V, repeat=repeat)
    del Jh
    # fresh operators, so that reused work buffers count (inputs excluded)
    mk = lambda: RIME(enu, p["antpos"], p["freqs"], a1, a2, method="gemm")  # noqa: E731
    r["mem_fwd"] = peak(lambda z: mk()(z), x)
    r["mem_fwd_grad"] = peak(lambda z: (lambda o: o.vjp(z, o(z)))(mk()), x)
    # the same with the inputs (I, A) allocated inside the measurement, as a process's
    # resident memory would count them (the gradient has the inputs' size)
    cp = lambda z: tuple(a.copy() for a in z)  # noqa: E731
    r["mem_fwd_in"] = peak(lambda z: mk()(cp(z)), x)
    r["mem_fwd_grad_in"] = peak(lambda z: (lambda o, c: o.vjp(c, o(c)))(mk(), cp(z)), x)
    # complex64 forward against the complex64 GEMM rate measured now
    op64 = RIME(enu, p["antpos"], p["freqs"], a1, a2, dtype="complex64", method="gemm",
                ub=False)   # the GEMM-rate figure is about the (C)HERK path
    x32 = (p["flux"].astype(np.float32), A.astype(np.float32))
    V64 = op64(x32)
    _, r["fwd_c64"] = timed(op64, x32, repeat=repeat)
    flops = 8.0 * na**2 * sum(op64.engine.nup) * nf
    r["gemm_c64_gflops"] = gemm_rate() / 1e9
    r["fwd_c64_gflops"] = flops / r["fwd_c64"] / 1e9
    op64d = RIME(enu, p["antpos"], p["freqs"], a1, a2, dtype="complex64", method="gemm")
    op64d(x32)
    _, r["fwd_c64_default"] = timed(op64d, x32, repeat=repeat)
    # matvis, same inputs (all Nant^2 pairs; ours compared on i <= j)
    kw = dict(ants={i: q for i, q in enumerate(p["antpos"])}, fluxes=p["flux"], ra=p["ra"],
              dec=p["dec"], freqs=p["freqs"], times=p["times"], beams=[beam],
              telescope_loc=p["loc"])
    vm, r["matvis"] = timed(matvis.simulate_vis, precision=2, repeat=1, **kw)
    vm = np.moveaxis(vm, 0, 1).reshape(nt, nf, na, na)[:, :, a1, a2]
    cross = a1 != a2
    r["rel_matvis"] = float(np.abs(V - vm)[..., cross].max() / np.abs(vm[..., cross]).max())
    vm1 = np.moveaxis(matvis.simulate_vis(precision=1, **kw), 0, 1).reshape(
        nt, nf, na, na)[:, :, a1, a2]
    r["rel_matvis_c64"] = float(np.abs(V64 - vm1)[..., cross].max()
                                / np.abs(vm1[..., cross]).max())
    return r


def run_b(nsrc: int, repeat: int) -> dict:
    from pyuvdata.analytic_beam import AiryBeam

    from linlim.rime import RIME, simulate_vis
    from linlim.rime.simulate import evaluate_beams
    from linlim.telescope.coordinates import source_enu

    nf, nt = 16, 4
    p = problem(nsrc, nf, nt, seed=7)
    na = len(p["antpos"])
    a1, a2 = np.triu_indices(na)
    pairs = list(zip(a1.tolist(), a2.tolist()))
    beam = AiryBeam(diameter=14.0)
    ants = {i: q for i, q in enumerate(p["antpos"])}
    args = (ants, p["flux"], p["ra"], p["dec"], p["freqs"], p["times"], [beam], p["loc"])
    r: dict = {"nsrc": nsrc}
    enu = source_enu(p["ra"], p["dec"], p["times"], p["loc"], method="precise")
    op = RIME(enu, p["antpos"], p["freqs"], a1, a2)
    r["auto_method"] = op.method + (" (unique baselines)" if op.engine.ub_products else "")
    vl, r["simulate_vis"] = timed(simulate_vis, *args, antpairs=pairs, repeat=repeat)
    # the exact method on the same inputs (forward only), and the vjp at this size
    A = evaluate_beams([beam], enu, p["freqs"])
    x = (p["flux"], A)
    gem = RIME(enu, p["antpos"], p["freqs"], a1, a2, method="gemm", ub=False)   # ZHERK
    vg, r["gemm_fwd"] = timed(gem, x, repeat=1)
    _, r["gemm_vjp"] = timed(gem.vjp, x, vg, repeat=1)
    vg = np.moveaxis(vg, 0, 1)
    cross = a1 != a2
    r["rel_auto_gemm"] = float(np.abs(vl - vg)[..., cross].max() / np.abs(vg[..., cross]).max())
    try:
        import fftvis

        vf, r["fftvis"] = timed(fftvis.simulate_vis, ants=ants, fluxes=p["flux"], ra=p["ra"],
                                dec=p["dec"], freqs=p["freqs"], times=p["times"], beam=beam,
                                telescope_loc=p["loc"], precision=2, baselines=pairs,
                                repeat=1)
        r["rel_fftvis"] = float(np.abs(vl - vf)[..., cross].max()
                                / np.abs(vf[..., cross]).max())
    except ImportError:
        r["fftvis"] = r["rel_fftvis"] = float("nan")
    return r


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for m in ("numpy", "scipy", "numba", "finufft", "matvis", "fftvis"):
        try:
            out.append(f"{m} {version(m)}")
        except PackageNotFoundError:
            out.append(f"{m} -")
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nsrc", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--large", type=int, nargs="*", default=[100000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=str, default="1")
    args = ap.parse_args()
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}  {cpu}, nproc={os.cpu_count()}, load "
          f"average {load:.1f} at start; threads={args.threads}; {versions()}")
    print("\n| problem A: 37-ant hexagon, 32 ch, 10 times | " + " | ".join(
        f"10^{int(np.log10(n))} sources" for n in args.nsrc) + " | target |")
    print("|---|" + "---|" * (len(args.nsrc) + 1))
    ra = [run_a(n, args.repeat) for n in args.nsrc]
    rows = [
        ("forward (s)", lambda r: f"{r['fwd']:.3g}", ""),
        ("vjp / forward", lambda r: f"{r['vjp'] / r['fwd']:.2f}", "<= 1.5"),
        ("linearize / forward", lambda r: f"{r['linearize'] / r['fwd']:.2f}", ""),
        ("products over unique baselines (default)", lambda r: str(r["ub"]), ""),
        ("J cache", lambda r: r["cache"], ""),
        ("cached J / forward", lambda r: f"{r['J'] / r['fwd']:.2f}", "<= 0.5"),
        ("cached J^H / forward", lambda r: f"{r['JH'] / r['fwd']:.2f}", "<= 0.5"),
        ("ZHERK path (ub=False): forward (s); J, J^H / its forward",
         lambda r: f"{r['fwd_herk']:.3g}; {r['J_herk'] / r['fwd_herk']:.2f}, "
                   f"{r['JH_herk'] / r['fwd_herk']:.2f}", ""),
        ("default forward / ZHERK forward; max rel. diff.",
         lambda r: f"{r['fwd'] / r['fwd_herk']:.2f}; {r['rel_herk']:.1e}", ""),
        ("peak memory forward + gradient / forward (inputs not counted)",
         lambda r: f"{r['mem_fwd_grad'] / r['mem_fwd']:.2f} "
                   f"({r['mem_fwd'] / 2**20:.0f} MiB fwd)", "<= 2"),
        ("the same, inputs counted",
         lambda r: f"{r['mem_fwd_grad_in'] / r['mem_fwd_in']:.2f} "
                   f"({r['mem_fwd_in'] / 2**20:.0f} MiB fwd)", "<= 2"),
        ("forward / matvis", lambda r: f"{r['fwd'] / r['matvis']:.3f}", "<= 0.1"),
        ("max rel. diff. to matvis (c128, c64)",
         lambda r: f"{r['rel_matvis']:.1e}, {r['rel_matvis_c64']:.1e}", "1e-10"),
        ("complex64 ZHERK-path forward GFLOP/s / GEMM GFLOP/s",
         lambda r: f"{r['fwd_c64_gflops']:.1f} / {r['gemm_c64_gflops']:.1f} = "
                   f"{100 * r['fwd_c64_gflops'] / r['gemm_c64_gflops']:.0f}%", ">= 40%"),
        ("complex64 default forward / complex64 ZHERK-path forward",
         lambda r: f"{r['fwd_c64_default'] / r['fwd_c64']:.2f}", ""),
    ]
    for name, fmt, target in rows:
        print(f"| {name} | " + " | ".join(fmt(r) for r in ra) + f" | {target} |")
    if args.large:
        print("\n| problem B: 37-ant hexagon, 16 ch, 4 times | " + " | ".join(
            f"10^{int(np.log10(n))} sources" for n in args.large) + " | target |")
        print("|---|" + "---|" * (len(args.large) + 1))
        rb = [run_b(n, 1) for n in args.large]
        rows = [
            ("simulate_vis default method", lambda r: r["auto_method"], ""),
            ("simulate_vis (s, set-up included)", lambda r: f"{r['simulate_vis']:.3g}", ""),
            ("simulate_vis / fftvis", lambda r: f"{r['simulate_vis'] / r['fftvis']:.2f}",
             "<= 0.5"),
            ("max rel. diff. to fftvis", lambda r: f"{r['rel_fftvis']:.1e}", "1e-8"),
            ("max rel. diff. default vs ZHERK", lambda r: f"{r['rel_auto_gemm']:.1e}",
             ""),
            ("ZHERK forward (s); vjp / forward",
             lambda r: f"{r['gemm_fwd']:.3g}; {r['gemm_vjp'] / r['gemm_fwd']:.2f}", "<= 1.5"),
        ]
        for name, fmt, target in rows:
            print(f"| {name} | " + " | ".join(fmt(r) for r in rb) + f" | {target} |")
    if hasattr(os, "getloadavg"):
        print("\n# load average at the end (1, 5, 15 min): "
              + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
