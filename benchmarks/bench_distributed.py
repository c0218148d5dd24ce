"""Benchmark of the Dask scale-out layer (``linlim.distributed``).

Measures

(a) the per-iteration overhead of :class:`DistributedLogPosterior.value_and_grad` over the
    in-process :class:`LogPosterior` on a tiny problem (so the difference is the layer:
    one broadcast of ``theta``, one task per chunk, one gather);
(b) the scaling from 1 to 2 workers on the synthetic linear-Gaussian chunks, large enough
    that the chunks' compute dominates;
(c) the distributed simulation (:func:`linlim.distributed.simulate.simulate_uvh5`) of a
    synthetic scenario with 1 and 2 workers, against the same blocks computed in-process.

Every cluster is a ``LocalCluster`` of single-threaded worker processes; BLAS in the
driver is limited to one thread so the in-process references do the same work per core.
Run ``python benchmarks/bench_distributed.py`` (``--quick`` for a smoke run;
``--sim-only --scenario demo`` for (c) alone at the demo's size); prints a Markdown table
and the load average, which on a shared machine decides what a 1 -> 2 worker ratio means.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def _cluster(n: int):
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    client.run(_offline_astropy)
    return cluster, client, time.perf_counter() - t0


def _offline_astropy() -> None:
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None


def _repeat(f, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return out


def _in_process(desc: dict, nchunks: int):
    from linlim.distributed.synthetic import linear_gaussian_chunk

    chunks = [linear_gaussian_chunk(desc, i) for i in range(nchunks)]

    def value_and_grad(theta):
        parts = [c.value_and_grad(theta) for c in chunks]
        return sum(p[0] for p in parts), np.sum([p[1] for p in parts], axis=0)

    return value_and_grad


def bench_overhead(client, reps: int) -> dict:
    """(a) ms per value_and_grad, tiny chunks (4 x 40 rows, 12 parameters)."""
    from linlim.distributed import DistributedLogPosterior
    from linlim.distributed.synthetic import linear_gaussian_chunk

    desc, nchunks = {"seed": 7, "nparams": 12, "nrows": 40}, 4
    dist = DistributedLogPosterior(client, linear_gaussian_chunk, desc, nchunks)
    local = _in_process(desc, nchunks)
    theta = np.random.default_rng(0).standard_normal(12)
    dist.value_and_grad(theta)  # warm: chunks resident
    t_d = statistics.median(_repeat(lambda: dist.value_and_grad(theta), reps))
    t_l = statistics.median(_repeat(lambda: local(theta), reps))
    return {"dist_ms": 1e3 * t_d, "local_ms": 1e3 * t_l}


def bench_scaling(clients: dict, reps: int, nrows: int, nparams: int, nchunks: int) -> dict:
    """(b) s per value_and_grad on ``nchunks`` chunks of ``nrows`` x ``nparams``."""
    from linlim.distributed import DistributedLogPosterior
    from linlim.distributed.synthetic import linear_gaussian_chunk

    desc = {"seed": 11, "nparams": nparams, "nrows": nrows}
    theta = np.random.default_rng(1).standard_normal(nparams)
    out = {}
    local = _in_process(desc, nchunks)
    local(theta)
    out["in-process"] = statistics.median(_repeat(lambda: local(theta), reps))
    for n, client in clients.items():
        dist = DistributedLogPosterior(client, linear_gaussian_chunk, desc, nchunks)
        dist.value_and_grad(theta)  # build the resident chunks
        out[f"{n} worker(s)"] = statistics.median(
            _repeat(lambda d=dist: d.value_and_grad(theta), reps))
        client.run(_drop_resident)
    return out


def _clear_scenarios() -> None:
    from linlim.distributed import simulate

    simulate._SCENARIOS.clear()


def _warm(sim) -> None:
    """Imports, numba and astropy first calls and one block on this worker."""
    sim.builder(sim.description, slice(0, 1), slice(0, 1))


def _drop_resident() -> None:
    from linlim.distributed import posterior

    posterior._RESIDENT.clear()
    posterior._LINEARIZED.clear()


def bench_simulation(clients: dict, cfg: dict, chunks: dict) -> dict:
    """(c) s to simulate a scenario into one uvh5 file (scenario built on each worker)."""
    from linlim.distributed import simulate as dsim

    sim = dsim.scenario_simulation(cfg, "data")
    out = {"shape": sim.shape, "nblocks": len(dsim.plan_chunks(*sim.shape[:2], **chunks))}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sim.uvh5")
        dsim._SCENARIOS.clear()   # as a worker: build the scenario inside the timing
        t0 = time.perf_counter()
        dsim.simulate_uvh5(path, sim, client="serial", clobber=True, **chunks)
        out["in-process"] = time.perf_counter() - t0
        for n, client in clients.items():
            # cold: fresh worker processes (imports, numba and astropy first calls, the
            # scenario build); warm: the same workers again, scenario cache cleared, so
            # each worker builds the scenario once more but pays no process start-up
            for kind in ("cold", "warm"):
                if kind == "warm":   # every worker: one block, so none is still cold
                    client.run(_warm, sim)
                client.run(_clear_scenarios)
                t0 = time.perf_counter()
                dsim.simulate_uvh5(path, sim, client=client, clobber=True, **chunks)
                out[f"{n} worker(s) {kind}"] = time.perf_counter() - t0
        dsim._SCENARIOS.clear()   # in-process again, warm, scenario rebuilt
        t0 = time.perf_counter()
        dsim.simulate_uvh5(path, sim, client="serial", clobber=True, **chunks)
        out["in-process warm"] = time.perf_counter() - t0
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--sim-only", action="store_true",
                    help="only (c), the distributed simulation")
    ap.add_argument("--scenario", choices=("bench", "demo"), default="bench",
                    help="(c) on this script's scenario (37 antennas, 128 ch, 32 times, "
                         "100 sources) or on the demo's (linlim demo defaults)")
    args = ap.parse_args()
    _offline_astropy()
    if args.quick:
        reps, scale = 10, dict(nrows=1000, nparams=64, nchunks=4)
        cfg = {"array": {"hex_num": 2}, "band": {"nfreq": 16}, "times": {"ntimes": 4},
               "foregrounds": {"nsources": 5}, "signal": {"nside": 16, "radius_deg": 15.0}}
        chunks = {"time_chunk": 2, "freq_chunk": 8}
    else:
        reps, scale = 30, dict(nrows=24000, nparams=512, nchunks=4)
        cfg = {"array": {"hex_num": 3}, "band": {"nfreq": 128}, "times": {"ntimes": 32},
               "foregrounds": {"nsources": 100}}
        chunks = {"time_chunk": 4, "freq_chunk": 64}
    if args.scenario == "demo":
        from linlim.pipelines.demo import DEMO_DEFAULTS

        cfg = DEMO_DEFAULTS["scenario"]
        chunks = {"time_chunk": 2, "freq_chunk": 48}

    load = {"start": os.getloadavg()}
    clusters, clients, startup = {}, {}, {}
    for n in (1, 2):
        clusters[n], clients[n], startup[n] = _cluster(n)
    try:
        over = scal = None
        if not args.sim_only:
            over = bench_overhead(clients[2], reps)
            scal = bench_scaling(clients, max(5, reps // 3), **scale)
            load["after (b)"] = os.getloadavg()
        sim = bench_simulation(clients, cfg, chunks)
        load["after (c)"] = os.getloadavg()
    finally:
        for n in (1, 2):
            clients[n].close()
            clusters[n].close()

    import dask
    import distributed

    print(f"\nMachine: {os.cpu_count()} cores, {_cpu_model()}; {datetime.date.today()}; "
          f"numpy {np.__version__}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}; one BLAS thread per process.\n")
    print(f"LocalCluster start-up: {startup[1]:.2f} s (1 worker), {startup[2]:.2f} s "
          f"(2 workers)\n")
    print("Load average (1, 5, 15 min): " + "; ".join(
        f"{k} {v[0]:.1f}, {v[1]:.1f}, {v[2]:.1f}" for k, v in load.items()) + "\n")
    print("| measurement | in-process | 1 worker | 2 workers | speed-up 1 -> 2 |")
    print("|---|---|---|---|---|")
    if over is not None:
        _print_ab(over, scal, scale)
    nt, nf, nbl = sim["shape"]
    for kind in ("cold", "warm"):
        m1, m2 = sim[f"1 worker(s) {kind}"], sim[f"2 worker(s) {kind}"]
        ref = sim["in-process" if kind == "cold" else "in-process warm"]
        print(f"| (c) simulate_uvh5 ({kind} workers), {args.scenario} scenario {nt} times x "
              f"{nf} ch x {nbl} bl, {sim['nblocks']} blocks (s) | {ref:.2f} | {m1:.2f} | "
              f"{m2:.2f} | {m1 / m2:.2f}x |")


def _print_ab(over: dict, scal: dict, scale: dict) -> None:
    print(f"| (a) value_and_grad, 4 chunks x 40 rows, 12 params (ms/iteration) | "
          f"{over['local_ms']:.3f} | | {over['dist_ms']:.2f} | overhead "
          f"{over['dist_ms'] - over['local_ms']:.2f} ms |")
    s1, s2 = scal["1 worker(s)"], scal["2 worker(s)"]
    print(f"| (b) value_and_grad, {scale['nchunks']} chunks x {scale['nrows']} rows x "
          f"{scale['nparams']} params (s/iteration) | {scal['in-process']:.4f} | {s1:.4f} | "
          f"{s2:.4f} | {s1 / s2:.2f}x |")


if __name__ == "__main__":
    main()
