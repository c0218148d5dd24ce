"""Benchmark of the Dask scale-out layer (``linlim.distributed``).

Measures

(a) the per-iteration overhead of :class:`DistributedLogPosterior.value_and_grad` over the
    in-process :class:`LogPosterior` on a tiny problem (so the difference is the layer:
    one broadcast of ``theta``, one task per chunk, one gather);
(b) the scaling from 1 to 2 workers on the synthetic linear-Gaussian chunks, large enough
    that the chunks' compute dominates;
(c) the distributed simulation (:func:`linlim.distributed.simulate.simulate_uvh5`) of a
    synthetic scenario in-process, with 1 and with 2 workers, twice:

    * cold: a fresh Python interpreter from its launch to the file written (imports, the
      driver's scenario, the ``LocalCluster`` start-up, the workers' imports, first numba
      and astropy calls and scenario builds, the blocks and the writes), one run each;
    * prepared: clusters prepared with :func:`linlim.distributed.prepare_workers`
      (outside the timing, reported), then ``simulate_uvh5`` alone, median and best of
      ``--reps`` runs per configuration; one cluster alive at a time, in three rounds
      that alternate 1 and 2 workers, each round's runs interleaved with in-process ones
      (the reference, after ``prepare_workers("serial", sim)``);
    * prepared and paired: both clusters alive together, 3 x ``--reps`` pairs of a
      1-worker and a 2-worker run one right after the other (the order flipped every
      pair), so that the host's drift over minutes cancels within a pair: the ratio of
      the medians and the median and quartiles of the pairs' ratios.

    It also reports the blocks' compute time on the workers (Dask's task stream, in
    separate runs), the driver's CPU time per run, from the 1-worker runs the serial
    fraction ``f`` (time outside block compute) and Amdahl's bound
    ``1 / (f + (1 - f) / 2)`` for 2 workers, and, in each round, what the host charges
    for two blocks at once without Dask: one block in a plain process alone, and in two
    plain processes started together at a barrier (the bound ``2 t_alone / t_pair``),
    right after the barrier and after :data:`IDLE_GAP` seconds of sleep (as a worker
    idles between runs).

Every cluster comes from :func:`linlim.distributed.local_cluster`: single-threaded worker
processes with one BLAS, OpenMP and numba thread each, under linlim's lean Dask
configuration (``--dask-defaults``: Dask's own, for comparison; the benchmark prints the
idle clusters' CPU use under either); the driver (and so the in-process reference) has
one BLAS and numba thread too. Run ``python benchmarks/bench_distributed.py`` (``--quick`` for a
smoke run; ``--sim-only --scenario demo`` for (c) alone at the demo's size,
``--scenario bench`` at a larger size); prints Markdown tables, the versions and the load
average at the start and the end, which on a shared machine decide what a 1 -> 2 worker
ratio means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"     # the driver and (inherited) every worker process

import numpy as np  # noqa: E402

#: Clusters under linlim's lean Dask configuration (``--dask-defaults``: Dask's own).
LEAN = True
#: Times per block of (c) (``--time-chunk``; None: the scenario's default plan).
TIME_CHUNK: int | None = None


def _cluster(n: int):
    from linlim.distributed import local_cluster

    t0 = time.perf_counter()
    cluster, client = local_cluster(n, lean=LEAN, silence_logs=40)
    client.run(_offline_astropy)
    return cluster, client, time.perf_counter() - t0


def _idle_cpu(seconds: float = 2.0) -> float:
    """CPU time (core-seconds per second) this process and its children (the workers)
    use while the cluster idles: Dask's housekeeping."""
    import psutil

    procs = [psutil.Process()]
    procs += procs[0].children(recursive=True)

    def used() -> float:
        total = 0.0
        for p in procs:
            try:
                total += sum(p.cpu_times()[:2])
            except psutil.NoSuchProcess:  # pragma: no cover - a process that ended
                pass
        return total

    c0 = used()
    time.sleep(seconds)
    return (used() - c0) / seconds


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


def _drop_resident() -> None:
    from linlim.distributed import posterior

    posterior._RESIDENT.clear()
    posterior._LINEARIZED.clear()


def _config(scenario: str, quick: bool) -> tuple[dict, dict]:
    """(scenario config, chunk plan) of (c)."""
    if scenario == "demo":
        from linlim.pipelines.demo import DEMO_DEFAULTS

        # 8 times x 96 channels: blocks of TIME_CHUNK times x 96 channels (default 4: one
        # block per worker on 2 workers; a block's fixed set-up, ~0.03 s of astropy
        # directions and operators, is most of a 2-time block's ~0.04 s in-process)
        return DEMO_DEFAULTS["scenario"], {"time_chunk": TIME_CHUNK or 4, "freq_chunk": 96}
    if quick:
        return ({"array": {"hex_num": 2}, "band": {"nfreq": 16}, "times": {"ntimes": 4},
                 "foregrounds": {"nsources": 5}, "signal": {"nside": 16, "radius_deg": 15.0}},
                {"time_chunk": 1, "freq_chunk": 16})
    # 37 antennas, 128 channels, 32 times, 100 sources: 4 blocks of 8 times x 128 channels
    return ({"array": {"hex_num": 4}, "band": {"nfreq": 128}, "times": {"ntimes": 32},
             "foregrounds": {"nsources": 100}}, {"time_chunk": TIME_CHUNK or 8,
                                                 "freq_chunk": 128})


def _threads() -> dict:
    """Threads a process would use: BLAS/OpenMP pools and numba."""
    import numba
    from threadpoolctl import threadpool_info

    return {"pools": sorted({p["num_threads"] for p in threadpool_info()}),
            "numba": numba.config.NUMBA_NUM_THREADS}


def _cold_child(mode: str, scenario: str, quick: bool, launched: float) -> None:
    """(c) cold, in this fresh interpreter: print the seconds since ``launched``."""
    t_import = time.time()
    _offline_astropy()
    from linlim.distributed import simulate as dsim

    phases = {"interpreter start": t_import - launched}
    t0 = time.time()
    phases["imports"] = t0 - t_import
    cfg, chunks = _config(scenario, quick)
    sim = dsim.scenario_simulation(cfg, "data")
    phases["driver scenario"] = time.time() - t0
    cluster = client = None
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "serial":
            target = "serial"
        else:
            t0 = time.time()
            cluster, client, _ = _cluster(int(mode))
            phases["cluster start-up"] = time.time() - t0
            target = client
        t0 = time.time()
        dsim.simulate_uvh5(os.path.join(tmp, "sim.uvh5"), sim, client=target, **chunks)
        done = time.time()
        phases["simulate_uvh5"] = done - t0
        if client is not None:
            client.close()
            cluster.close()
    print(json.dumps({"total": done - launched, "phases": phases}))


def _cold(mode: str, scenario: str, quick: bool) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--cold-child", mode,
           "--scenario", scenario, "--launched", repr(time.time())]
    if quick:
        cmd.append("--quick")
    if not LEAN:
        cmd.append("--dask-defaults")
    if TIME_CHUNK:
        cmd += ["--time-chunk", str(TIME_CHUNK)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


#: Seconds the plain processes of the host probe sleep before each block: about what a
#: worker idles between two runs of this benchmark (an in-process run and the file's
#: work). On this project's KVM guest a block that follows such a pause runs slower,
#: and two of them side by side slower still (1.17x against 1.01x without the pause,
#: measured 2026-12-03), so the probe measures both.
IDLE_GAP = 0.15


def _plain_child(barrier: Any, queue: Any, scenario: str, quick: bool,
                 time_chunk: int | None, slots: list[int], nrep: int, gap: float) -> None:
    """In a fresh process without Dask: ``nrep`` blocks, cycling through plan blocks
    ``slots``, each started at a barrier shared with the other plain processes (and
    ``gap`` seconds of sleep after it)."""
    global TIME_CHUNK
    TIME_CHUNK = time_chunk
    _offline_astropy()
    from linlim.distributed import simulate as dsim

    cfg, chunks = _config(scenario, quick)
    sim = dsim.scenario_simulation(cfg, "data")
    dsim.prepare_process(sim.builder, sim.description, sim.digest)
    plan = dsim.plan_chunks(*sim.shape[:2], **chunks)

    def block(slot: int) -> float:
        t, f = plan[slot % len(plan)]
        t0 = time.perf_counter()
        dsim._uvh5_block(sim.builder, sim.description, t, f, sim.sigma, sim.seed, slot)
        return time.perf_counter() - t0

    for slot in slots:
        block(slot)
    times = []
    for k in range(nrep):
        barrier.wait()
        if gap:
            time.sleep(gap)
        times.append(block(slots[k % len(slots)]))
    queue.put(times)


def _plain_processes(scenario: str, quick: bool, n: int, nrep: int,
                     gap: float = 0.0) -> list[float]:
    """Seconds per block of ``n`` plain processes (no Dask) computing one block each at
    the same moment (after ``gap`` seconds idle): what the host itself charges for
    running blocks side by side."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    # alone: blocks 0 and 1 in turn; side by side: block i in process i (the same blocks)
    slots = [[0, 1]] if n == 1 else [[i] for i in range(n)]
    procs = [ctx.Process(target=_plain_child, args=(barrier, queue, scenario, quick,
                                                     TIME_CHUNK, sl, nrep, gap))
             for sl in slots]
    for pr in procs:
        pr.start()
    times = [t for _ in procs for t in queue.get(timeout=600)]   # a dead child: an error
    for pr in procs:
        pr.join()
    return times


def _compute_seconds(stream) -> tuple[float, int]:
    """Sum of the blocks' compute time in a task stream, and the number of blocks."""
    total, n = 0.0, 0
    for task in stream.data:
        if str(task["key"]).startswith("linlim-simulate"):
            n += 1
            total += sum(s["stop"] - s["start"] for s in task["startstops"]
                         if s["action"] == "compute")
    return total, n


def bench_simulation(scenario: str, quick: bool, reps: int) -> dict:
    """(c): cold runs in fresh interpreters, then prepared persistent clusters."""
    from distributed import get_task_stream

    from linlim.distributed import prepare_workers
    from linlim.distributed import simulate as dsim

    cfg, chunks = _config(scenario, quick)
    out: dict = {"cold": {}, "prepared": {}, "compute": {}, "driver_cpu": {}, "startup": {},
                 "prepare": {}, "serial_fraction": {}}
    for mode in ("serial", "1", "2"):
        out["cold"][mode] = _cold(mode, scenario, quick)
    sim = dsim.scenario_simulation(cfg, "data")
    out["shape"], out["nblocks"] = sim.shape, len(dsim.plan_chunks(*sim.shape[:2], **chunks))
    hdr = []
    for _ in range(3):
        t0 = time.perf_counter()
        dsim._initialised_file(sim.metadata, "h")
        hdr.append(time.perf_counter() - t0)
    out["header"] = min(hdr)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sim.uvh5")

        def timed(client) -> tuple[float, float]:
            c0, t0 = time.process_time(), time.perf_counter()
            dsim.simulate_uvh5(path, sim, client=client, clobber=True, **chunks)
            return time.perf_counter() - t0, time.process_time() - c0

        out["prepare"]["serial"] = prepare_workers("serial", sim)
        out["threads"] = {"driver": _threads()}
        # one cluster at a time (an idle second cluster's housekeeping would take CPU
        # from the measured one), in rounds that alternate 1 and 2 workers, each round's
        # runs interleaved with in-process ones, so that a change of the machine's load
        # hits all three alike
        rounds = min(3, reps)
        per_round = -(-reps // rounds)
        runs: dict = {k: [] for k in ("serial", "1", "2")}
        comp: dict = {"1": [], "2": []}
        plain: dict = {"1": [], "2": []}
        plain_idle: dict = {"1": [], "2": []}
        for r in range(rounds):
            for n in ("1", "2"):
                cluster, client, startup = _cluster(int(n))
                try:
                    prep = prepare_workers(client, sim)
                    if r == 0:
                        out["startup"][n], out["prepare"][n] = startup, prep
                        out["threads"][f"{n} worker(s)"] = list(client.run(_threads).values())
                        out.setdefault("idle_cpu", {})[n] = _idle_cpu()
                    for _ in range(per_round):
                        runs[n].append(timed(client))
                        runs["serial"].append(timed("serial"))
                    # a separate run (the task stream costs scheduler time): the blocks'
                    # compute and the share of the run's wall time outside it
                    with get_task_stream(client) as stream:
                        wall = timed(client)[0]
                    comp[n].append((wall, _compute_seconds(stream)[0]))
                finally:
                    client.close()
                    cluster.close()
            # the host's own cost of two blocks at once, in the same round (no Dask)
            for n in ("1", "2"):
                plain[n] += _plain_processes(scenario, quick, int(n), 2 * per_round)
                plain_idle[n] += _plain_processes(scenario, quick, int(n), 2 * per_round,
                                                  IDLE_GAP)
        # paired: both clusters alive at once, runs alternating 1 and 2 workers (each
        # followed by an in-process run, as above, and the order flipped every pair), so
        # that every 1-worker run has a 2-worker run within a fraction of a second of it.
        # The host's speed drifts over minutes (in-process runs of one benchmark vary by
        # up to 1.9x here); within a pair the drift cancels. The price: the idle cluster's
        # housekeeping (reported) runs beside the measured one.
        clusters: dict = {}
        try:
            for n in ("1", "2"):
                clusters[n] = _cluster(int(n))
                prepare_workers(clusters[n][1], sim)
            out["paired_idle_cpu"] = _idle_cpu()
            pairs = []
            for k in range(3 * reps):
                t = {}
                for n in (("1", "2") if k % 2 == 0 else ("2", "1")):
                    t[n] = timed(clusters[n][1])[0]
                    timed("serial")
                pairs.append((t["1"], t["2"]))
            out["paired"] = pairs
        finally:
            for cluster, client, _ in clusters.values():
                client.close()
                cluster.close()
        out["plain"] = {n: statistics.median(v) for n, v in plain.items()}
        out["plain_idle"] = {n: statistics.median(v) for n, v in plain_idle.items()}
        out["plain_count"] = {n: len(v) for n, v in plain.items()}
        for k in runs:
            out["prepared"][k] = [r[0] for r in runs[k]]
            out["driver_cpu"][k] = statistics.median(r[1] for r in runs[k])
        for n, pairs in comp.items():
            out["compute"][n] = statistics.median(c for _, c in pairs)
            out["serial_fraction"][n] = statistics.median(max(0.0, (w - c) / w)
                                                          for w, c in pairs)
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


def _versions() -> str:
    import astropy
    import dask
    import distributed
    import numba
    import pyuvdata

    return (f"Python {platform.python_version()}, numpy {np.__version__}, numba "
            f"{numba.__version__}, astropy {astropy.__version__}, pyuvdata "
            f"{pyuvdata.__version__}, dask {dask.__version__}, distributed "
            f"{distributed.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--sim-only", action="store_true",
                    help="only (c), the distributed simulation")
    ap.add_argument("--scenario", choices=("bench", "demo"), default="bench",
                    help="(c) on the demo's scenario (linlim demo defaults: 19 antennas, "
                         "8 times x 96 channels, 30 sources) or on a larger one (37 antennas, "
                         "32 times x 128 channels, 100 sources)")
    ap.add_argument("--reps", type=int, default=7,
                    help="(c) prepared runs per configuration (median reported)")
    ap.add_argument("--dask-defaults", action="store_true",
                    help="clusters under Dask's default configuration instead of "
                         "linlim.distributed.LEAN_DASK_CONFIG")
    ap.add_argument("--time-chunk", type=int, default=None,
                    help="(c) times per block (default: 4 for demo, i.e. 2 blocks, one per "
                         "worker; 8 for bench, i.e. 4 blocks)")
    ap.add_argument("--cold-child", choices=("serial", "1", "2"), help=argparse.SUPPRESS)
    ap.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global LEAN, TIME_CHUNK
    LEAN = not args.dask_defaults
    TIME_CHUNK = args.time_chunk
    if args.cold_child:
        _cold_child(args.cold_child, args.scenario, args.quick, args.launched)
        return
    _offline_astropy()
    if args.quick:
        reps, scale = 10, dict(nrows=1000, nparams=64, nchunks=4)
    else:
        reps, scale = 30, dict(nrows=24000, nparams=512, nchunks=4)

    load = {"start": os.getloadavg()}
    over = scal = None
    startup = {}
    if not args.sim_only:
        clusters, clients = {}, {}
        for n in (1, 2):
            clusters[n], clients[n], startup[n] = _cluster(n)
        try:
            over = bench_overhead(clients[2], reps)
            scal = bench_scaling(clients, max(5, reps // 3), **scale)
        finally:
            for n in (1, 2):
                clients[n].close()
                clusters[n].close()
        load["after (a), (b)"] = os.getloadavg()
    sim = bench_simulation(args.scenario, args.quick, max(1, args.reps))
    load["end"] = os.getloadavg()

    print(f"\nMachine: {os.cpu_count()} cores, {_cpu_model()}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"{_versions()}.")
    print(f"Threads (BLAS/OpenMP pools, numba): {sim['threads']}")
    print("Dask configuration: " + ("linlim.distributed.LEAN_DASK_CONFIG" if LEAN
                                    else "Dask's defaults (--dask-defaults)") + "\n")
    print("Load average (1, 5, 15 min): " + "; ".join(
        f"{k} {v[0]:.2f}, {v[1]:.2f}, {v[2]:.2f}" for k, v in load.items()) + "\n")
    if over is not None:
        print(f"LocalCluster start-up: {startup[1]:.2f} s (1 worker), {startup[2]:.2f} s "
              f"(2 workers)\n")
        print("| measurement | in-process | 1 worker | 2 workers | speed-up 1 -> 2 |")
        print("|---|---|---|---|---|")
        _print_ab(over, scal, scale)
        print()
    _print_c(sim, args.scenario)


def _print_c(sim: dict, scenario: str) -> None:
    nt, nf, nbl = sim["shape"]
    cold = {k: v["total"] for k, v in sim["cold"].items()}
    med = {k: statistics.median(v) for k, v in sim["prepared"].items()}
    best = {k: min(v) for k, v in sim["prepared"].items()}
    nrep = len(sim["prepared"]["1"])               # per worker count (in-process: twice)
    print(f"(c) simulate_uvh5, {scenario} scenario: {nt} times x {nf} channels x {nbl} "
          f"baselines, {sim['nblocks']} blocks; seconds\n")
    print("| run | in-process | 1 worker | 2 workers | speed-up 1 -> 2 |")
    print("|---|---|---|---|---|")
    print(f"| cold: fresh interpreter, launch to file written | {cold['serial']:.2f} | "
          f"{cold['1']:.2f} | {cold['2']:.2f} | {cold['1'] / cold['2']:.2f}x |")
    print(f"| prepared cluster: `simulate_uvh5`, median of {nrep} (in-process "
          f"{len(sim['prepared']['serial'])}) | {med['serial']:.3f} | "
          f"{med['1']:.3f} | {med['2']:.3f} | {med['1'] / med['2']:.2f}x |")
    print(f"| prepared cluster: `simulate_uvh5`, best of {nrep} (in-process "
          f"{len(sim['prepared']['serial'])}) | {best['serial']:.3f} | "
          f"{best['1']:.3f} | {best['2']:.3f} | {best['1'] / best['2']:.2f}x |")
    print(f"| prepared: blocks' compute on the workers (sum, median) | | "
          f"{sim['compute']['1']:.3f} | {sim['compute']['2']:.3f} | |")
    print(f"| prepared: driver CPU time per run (median) | {sim['driver_cpu']['serial']:.3f} "
          f"| {sim['driver_cpu']['1']:.3f} | {sim['driver_cpu']['2']:.3f} | |")
    pairs = sim["paired"]
    p1, p2 = (statistics.median(p[k] for p in pairs) for k in (0, 1))
    ratios = sorted(a / b for a, b in pairs)
    if len(ratios) >= 8:
        q = statistics.quantiles(ratios, n=4)
        spread = f"quartiles {q[0]:.2f}-{q[2]:.2f}x"
    else:                                           # too few pairs for quartiles
        spread = f"range {ratios[0]:.2f}-{ratios[-1]:.2f}x"
    print(f"| prepared, paired: both clusters alive, 1 and 2 workers alternating, median "
          f"of {len(pairs)} pairs | | {p1:.3f} | {p2:.3f} | {p1 / p2:.2f}x (pairs: median "
          f"{statistics.median(ratios):.2f}x, {spread}) |")
    pa, ps = sim["plain"]["1"], sim["plain"]["2"]
    print(f"| no Dask: one block in plain processes, alone / two side by side (median of "
          f"{sim['plain_count']['1']} / {sim['plain_count']['2']}) | | {pa:.4f} | "
          f"{ps:.4f} | host bound {2 * pa / ps:.2f}x |")
    ia, ip = sim["plain_idle"]["1"], sim["plain_idle"]["2"]
    print(f"| no Dask, each block after {IDLE_GAP:.2f} s idle (as a worker between runs): "
          f"alone / side by side | | {ia:.4f} | {ip:.4f} | host bound {2 * ia / ip:.2f}x |")
    print()
    for mode, label in (("serial", "in-process"), ("1", "1 worker"), ("2", "2 workers")):
        ph = ", ".join(f"{k} {v:.2f}" for k, v in sim["cold"][mode]["phases"].items())
        print(f"- cold {label}: {ph} s")
    print(f"- prepared clusters: LocalCluster start-up {sim['startup']['1']:.2f} s "
          f"(1 worker), {sim['startup']['2']:.2f} s (2 workers); prepare_workers "
          f"{sim['prepare']['1']:.2f} s (1 worker), {sim['prepare']['2']:.2f} s "
          f"(2 workers), {sim['prepare']['serial']:.2f} s (in-process); the file header "
          f"(metadata-only UVData and header-only uvh5 file, built by prepare_workers, "
          f"copied in the prepared runs) takes {sim['header']:.3f} s")
    idle = sim["idle_cpu"]
    print(f"- idle prepared cluster, driver and workers together: {idle['1']:.3f} (1 worker), "
          f"{idle['2']:.3f} (2 workers) core-s per s; both clusters idle (the paired "
          f"runs): {sim['paired_idle_cpu']:.3f}")
    t1, c1, d1 = med["1"], sim["compute"]["1"], sim["driver_cpu"]["1"]
    f = sim["serial_fraction"]["1"]
    cores = os.cpu_count() or 1
    print(f"- Amdahl, from the 1-worker prepared runs with the task stream: serial fraction "
          f"f = {f:.2f} (median share of the run's wall time outside block compute); "
          f"bound for 2 workers 1 / (f + (1 - f) / 2) = {1 / (f + (1 - f) / 2):.2f}x")
    print(f"- the host: in each round, after the clusters, {sim['plain_count']['1']} blocks in "
          f"one plain process and {sim['plain_count']['2'] // 2} pairs in two started "
          f"together (a barrier before each): two blocks side by side take {ps / pa:.2f}x "
          f"one alone, so no scheduler can make 2 workers more than 2 / {ps / pa:.2f} = "
          f"{2 * pa / ps:.2f}x faster than 1 on this host in this window; the same with "
          f"{IDLE_GAP:.2f} s of sleep before each block: {ip / ia:.2f}x, bound "
          f"{2 * ia / ip:.2f}x")
    if cores <= 2:
        cap = (c1 + d1) / cores
        print(f"- CPU capacity on {cores} cores: 2 workers need the blocks' {c1:.3f} s and "
              f"the driver's {d1:.3f} s of CPU time (Dask's scheduler and client threads, "
              f"the file writes) on {cores} cores, at least {cap:.3f} s: at most "
              f"{t1 / cap:.2f}x over the 1-worker run")


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
