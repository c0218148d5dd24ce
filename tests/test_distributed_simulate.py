"""Distributed simulation: the uvh5 file written from Dask workers equals the in-process
one bit for bit, reads back with pyuvdata, and survives a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time

import h5py
import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the dist extra (dask) is not installed")

from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

from linlim.distributed import local_cluster  # noqa: E402
from linlim.distributed import simulate as dsim  # noqa: E402
from linlim.distributed.simulate import (  # noqa: E402
    ChunkedSimulation,
    plan_chunks,
    point_source_chunk,
    point_source_simulation,
    prepare_workers,
    scenario_simulation,
    simulate_uvh5,
)
from linlim.errors import InputError, ShapeError  # noqa: E402

# 7 antennas (21 baselines), 16 channels, 4 times, 5 foreground sources, a small signal
CFG = {"array": {"hex_num": 2}, "band": {"nfreq": 16}, "times": {"ntimes": 4},
       "foregrounds": {"nsources": 5}, "signal": {"nside": 16, "radius_deg": 15.0}}
CHUNKS = {"time_chunk": 2, "freq_chunk": 6}   # 2 x 3 blocks, the last channel block short


class OfflineAstropy(WorkerPlugin):
    """Workers use astropy's bundled IERS tables, as the test process does (conftest)."""

    def setup(self, worker) -> None:
        from astropy.utils import iers

        iers.conf.auto_download = False
        iers.conf.auto_max_age = None


@pytest.fixture(scope="module")
def client():
    cluster, c = local_cluster(2, silence_logs=40)
    c.register_plugin(OfflineAstropy())
    yield c
    c.close()
    cluster.close()


def _read(path):
    from pyuvdata import UVData

    return UVData.from_file(str(path))


def _points(rng, sigma=0.0):
    """Five sources near the zenith of the HERA site over the four times."""
    from linlim.telescope.layout import hex_array
    from linlim.telescope.site import get_site
    from linlim.telescope.times import jd_array, lst

    site = get_site("HERA")
    times = jd_array(2459500.25, 60.0, 4)
    ra0, dec0 = float(lst(times[1:2], site)[0]), float(site.lat.rad)
    ra = ra0 + rng.uniform(-0.2, 0.2, 5)
    dec = dec0 + rng.uniform(-0.2, 0.2, 5)
    freqs = np.linspace(140e6, 160e6, 16)
    fluxes = rng.uniform(1, 10, (5, 1)) * (freqs / 150e6) ** rng.normal(-0.8, 0.2, (5, 1))
    antpos = hex_array(2, 14.6, site=site).antpos
    return dict(antpos=antpos, fluxes=fluxes, ra=ra, dec=dec, freqs=freqs, times_jd=times,
                site=site), point_source_simulation(antpos, fluxes, ra, dec, freqs, times,
                                                    site, diameter=14.0, sigma=sigma, seed=5)


def test_plan_chunks_covers_the_plane_once() -> None:
    plan = plan_chunks(5, 16, time_chunk=2, freq_chunk=6)
    hits = np.zeros((5, 16), int)
    for t, f in plan:
        hits[t, f] += 1
    assert (hits == 1).all() and len(plan) == 3 * 3
    with pytest.raises(InputError, match="freq_chunk"):
        plan_chunks(5, 16, freq_chunk=0)


def test_scenario_distributed_equals_in_process(client, tmp_path) -> None:
    from linlim.io.config import merge_config
    from linlim.io.uvdata import write_uvh5
    from linlim.pipelines.scenario import SCENARIO_DEFAULTS, build_scenario
    from linlim.pipelines.simulate import simulate_data

    clean = scenario_simulation(CFG, "data", noise=False)
    noisy = scenario_simulation(CFG, "data")
    assert clean.sigma == 0.0 and noisy.sigma == 0.005
    p_ser = simulate_uvh5(tmp_path / "serial.uvh5", clean, client="serial", **CHUNKS)
    p_dis = simulate_uvh5(tmp_path / "dist.uvh5", clean, client=client, **CHUNKS)
    p_noisy = simulate_uvh5(tmp_path / "noisy.uvh5", noisy, client=client, **CHUNKS)
    ser, dis, noi = _read(p_ser), _read(p_dis), _read(p_noisy)
    # the noise-free part: bit for bit, and the same file otherwise
    assert np.array_equal(dis.data_array, ser.data_array)
    assert dis == ser
    # it is the scenario's truth (simulate_data on the full band; phasors differ by rounding)
    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, CFG))
    ref = simulate_data(sc)
    truth = ref["foregrounds"] + ref["signal"]                  # (Ntimes, Nfreq, Nbl)
    nt, nf, nbl = truth.shape
    as_file = np.transpose(truth, (0, 2, 1)).reshape(nt * nbl, nf)
    scale = np.abs(truth).max()
    assert np.abs(ser.data_array[:, :, 0] - as_file).max() < 1e-12 * scale
    # the noise is default_rng([seed, block index]) per block, whatever the scheduling
    expected = ser.data_array.copy()
    for i, (t, f) in enumerate(plan_chunks(nt, nf, **CHUNKS)):
        rng = np.random.default_rng([noisy.seed, i])
        shape = (t.stop - t.start, f.stop - f.start, nbl)
        n = noisy.sigma / np.sqrt(2) * (rng.standard_normal(shape)
                                        + 1j * rng.standard_normal(shape))
        block = np.transpose(n, (0, 2, 1)).reshape(-1, shape[1])
        rows = slice(t.start * nbl, t.stop * nbl)
        expected[rows, f, 0] = ser.data_array[rows, f, 0] + block
    assert np.array_equal(noi.data_array, expected)
    # metadata: what linlim.io.uvdata.write_uvh5 writes for the whole array at once
    whole = write_uvh5(tmp_path / "whole.uvh5", truth, clobber=True, **{
        k: clean.metadata[k] for k in ("antpos", "freqs", "times_jd", "ant1", "ant2")},
        telescope_loc=clean.metadata["telescope_loc"])
    back = _read(tmp_path / "whole.uvh5")
    assert (ser.Nblts, ser.Nfreqs, ser.Npols, ser.Nbls, ser.Ntimes) == (
        nt * nbl, nf, 1, nbl, nt) == (back.Nblts, back.Nfreqs, back.Npols, back.Nbls,
                                       back.Ntimes)
    ser.history = back.history = whole.history
    back.data_array = ser.data_array   # the data agree to rounding (checked above)
    assert ser == back
    assert ser.pol_convention == "sum" and ser.vis_units == "Jy"
    assert not ser.flag_array.any() and (ser.nsample_array == 1).all()
    # flags and nsamples are the data sets' fill values: also in a partial read, and to
    # h5py directly
    from pyuvdata import UVData

    part = UVData.from_file(str(p_dis), times=np.unique(ser.time_array)[1:3],
                            freq_chans=np.arange(3, 11))
    assert not part.flag_array.any() and (part.nsample_array == 1).all()
    assert np.array_equal(part.data_array, ser.select(
        times=np.unique(ser.time_array)[1:3], freq_chans=np.arange(3, 11),
        inplace=False).data_array)
    with h5py.File(p_dis, "r") as f:
        assert not f["Data/flags"][()].any() and (f["Data/nsamples"][()] == 1).all()
        # never written (no chunk stored), and laid out as pyuvdata lays them out
        plain = tmp_path / "pyuvdata_header.uvh5"
        dsim._metadata_uvdata(clean.metadata, "h").initialize_uvh5_file(str(plain))
        with h5py.File(plain, "r") as g:
            for name in ("flags", "nsamples"):
                d = f["Data"][name]
                assert d.id.get_storage_size() == 0 and d.compression == "lzf"
                assert d.chunks == g["Data"][name].chunks and d.dtype == g["Data"][name].dtype
            vis = f["Data/visdata"]
            assert vis.id.get_storage_size() > 0
            # one integration deep, as many channels as fit in 1 MiB (here: all)
            nbl = clean.metadata["ant1"].size
            assert vis.chunks == (nbl, vis.shape[1], 1) == dsim._visdata_chunks(
                nbl, vis.shape[1])
            assert vis.dtype == g["Data/visdata"].dtype and vis.compression is None


def test_visdata_chunks_fit_the_chunk_cache() -> None:
    # 666 baselines: 10.6 KiB a channel, 98 channels in 1 MiB, so 128 channels are two
    # chunks of 64 (not 98 + a last chunk stored whole); never less than one channel
    assert dsim._visdata_chunks(666, 128) == (666, 64, 1)
    assert dsim._visdata_chunks(666, 300) == (666, 75, 1)
    assert dsim._visdata_chunks(666, 16) == (666, 16, 1)
    assert dsim._visdata_chunks(100_000, 64) == (100_000, 1, 1)
    for nbl, nf in ((666, 128), (666, 300), (171, 1024), (8128, 1024)):
        _, width, _ = dsim._visdata_chunks(nbl, nf)
        assert 16 * nbl * width <= 2**20 or width == 1
        nchunks = -(-nf // width)
        assert nchunks * width - nf < nchunks          # at most one channel short each


def _one_baseline_too_many(description, times, freqs):
    vis = point_source_chunk(description, times, freqs)
    return np.concatenate([vis, vis[..., :1]], axis=2)


def test_block_of_the_wrong_shape_is_refused(tmp_path) -> None:
    _, sim = _points(np.random.default_rng(0))
    bad = ChunkedSimulation(_one_baseline_too_many, sim.description, sim.metadata)
    nbl = sim.shape[2]
    with pytest.raises(ShapeError, match=rf"block 0 has shape \({2 * (nbl + 1)}, 16, 1\), "
                       rf"expected \({2 * nbl}, 16, 1\).* returned {nbl + 1} baselines"):
        simulate_uvh5(tmp_path / "b.uvh5", bad, client="serial", time_chunk=2)


def test_blocks_are_awaited_on_their_clients_loop(client, tmp_path) -> None:
    """A client created later is Dask's default and has its own event loop; the blocks
    submitted through ``client`` are awaited on ``client``'s loop (on the default
    client's, each completion reached the driver late: up to ~150 ms, measured here)."""
    from distributed import Client, default_client

    _, sim = _points(np.random.default_rng(0))
    plan = plan_chunks(*sim.shape[:2], time_chunk=2)
    other = Client(client.scheduler.address)
    try:
        assert default_client() is other and other.loop is not client.loop
        blocks = dsim._Blocks(client, sim, plan, list(range(len(plan))), 0, None)
        assert blocks.done.loop is client.loop
        assert sorted(i for i, _ in blocks) == list(range(len(plan)))
        p_dis = simulate_uvh5(tmp_path / "d.uvh5", sim, client=client, time_chunk=2)
        p_ser = simulate_uvh5(tmp_path / "s.uvh5", sim, client="serial", time_chunk=2)
        assert _read(p_dis) == _read(p_ser)
    finally:
        other.close()


def test_point_sources_distributed_equals_in_process(client, tmp_path, rng) -> None:
    from astropy.time import Time

    from linlim.rime.simulate import simulate_vis

    inputs, sim = _points(rng, sigma=0.01)
    p_ser = simulate_uvh5(tmp_path / "s.uvh5", sim, client="serial", time_chunk=3,
                          freq_chunk=5)
    p_dis = simulate_uvh5(tmp_path / "d.uvh5", sim, client=client, time_chunk=3,
                          freq_chunk=5, max_in_flight=1)
    ser, dis = _read(p_ser), _read(p_dis)
    assert np.array_equal(ser.data_array, dis.data_array) and ser == dis
    # the noise-free blocks against linlim's matvis-style entry point with pyuvdata's Airy
    # beam (an independent beam implementation)
    from pyuvdata.analytic_beam import AiryBeam

    a1, a2 = sim.metadata["ant1"], sim.metadata["ant2"]
    ref = simulate_vis(inputs["antpos"], inputs["fluxes"], inputs["ra"], inputs["dec"],
                       inputs["freqs"], Time(inputs["times_jd"], format="jd"),
                       AiryBeam(diameter=14.0), inputs["site"],
                       antpairs=np.stack([a1, a2], 1))            # (Nfreq, Ntimes, Nbl)
    t, f = slice(0, 3), slice(5, 10)
    block = point_source_chunk(sim.description, t, f)
    np.testing.assert_allclose(block, np.transpose(ref, (1, 0, 2))[t, f],
                               rtol=0, atol=1e-9 * np.abs(ref).max())


def _held(digest: str, cfg_digest: str | None = None) -> tuple[bool, bool]:
    """On a worker: (description held, scenario built) for a prepared simulation."""
    from linlim.distributed import simulate

    return (digest in simulate._DESCRIPTIONS,
            cfg_digest is not None and cfg_digest in simulate._SCENARIOS)


def _forget(digest: str) -> None:
    from linlim.distributed import simulate

    simulate._DESCRIPTIONS.pop(digest, None)


def test_prepared_cluster_one_and_two_workers_equal_in_process(client, tmp_path) -> None:
    sim = scenario_simulation(CFG, "foregrounds", noise=True, seed=3)
    cfg_digest = dsim._digest(sim.description["scenario"])
    chunks = {"time_chunk": 2, "freq_chunk": 8}
    p_ser = simulate_uvh5(tmp_path / "s.uvh5", sim, client="serial", **chunks)
    p_cold = simulate_uvh5(tmp_path / "c.uvh5", sim, client=client, **chunks)  # unprepared
    assert prepare_workers(client, sim) > 0
    # every worker holds the description and has built the scenario before any block
    assert set(client.run(_held, sim.digest, cfg_digest).values()) == {(True, True)}
    p_two = simulate_uvh5(tmp_path / "2.uvh5", sim, client=client, **chunks)
    one = sorted(client.scheduler_info()["workers"])[0]
    with distributed.get_task_stream(client) as stream:
        p_one = simulate_uvh5(tmp_path / "1.uvh5", sim, client=client, workers=(one,),
                              **chunks)                         # a tuple, as submit took
    assert {t["worker"] for t in stream.data if t["key"].startswith("linlim-")} == {one}
    ser = _read(p_ser)
    for p in (p_cold, p_two, p_one):
        other = _read(p)
        assert np.array_equal(other.data_array, ser.data_array) and other == ser
    # tasks on a prepared cluster carry the digest only: a worker that lost the
    # description cannot compute a block (and says why)
    client.run(_forget, sim.digest)
    with pytest.raises(InputError, match="not prepared"):
        simulate_uvh5(tmp_path / "x.uvh5", sim, client=client, retries=0, **chunks)
    prepare_workers(client, sim)         # registering again prepares the workers again
    assert set(client.run(_held, sim.digest).values()) == {(True, False)}
    with pytest.raises(InputError, match="client"):
        prepare_workers("threads", sim)


def slow_point_source_chunk(description: dict, times: slice, freqs: slice) -> np.ndarray:
    """A point-source block that takes ``description["delay_s"]`` seconds."""
    time.sleep(description["delay_s"])
    return point_source_chunk(description, times, freqs)


def test_worker_killed_mid_run_is_survived(client, tmp_path, rng) -> None:
    _, sim = _points(rng, sigma=0.01)
    slow = ChunkedSimulation(slow_point_source_chunk, {**sim.description, "delay_s": 0.4},
                             sim.metadata, sim.sigma, sim.seed)
    chunks = {"time_chunk": 1, "freq_chunk": 8}    # 8 blocks of 0.4 s on 2 workers
    p_ser = simulate_uvh5(tmp_path / "s.uvh5", sim, client="serial", **chunks)
    prepare_workers(client, slow)      # tasks carry the digest; a restarted worker is
    #                                    prepared again before it takes a block
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def kill() -> None:
        time.sleep(0.6)  # while blocks are running
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill)
    killer.start()
    p_dis = simulate_uvh5(tmp_path / "d.uvh5", slow, client=client, **chunks)
    killer.join()
    assert victim not in client.run(os.getpid).values()  # the worker really died
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(_held, slow.digest).values()) == {(True, False)}
    ser, dis = _read(p_ser), _read(p_dis)
    assert np.array_equal(ser.data_array, dis.data_array) and ser == dis


def test_bad_client_and_existing_file(tmp_path, rng) -> None:
    _, sim = _points(rng)
    path = simulate_uvh5(tmp_path / "a.uvh5", sim, client="serial")
    with pytest.raises(InputError, match="clobber"):
        simulate_uvh5(path, sim, client="serial")
    with pytest.raises(InputError, match="client"):
        simulate_uvh5(path, sim, client="threads", clobber=True)
    with pytest.raises(InputError, match="max_in_flight must be >= 1, received 0"):
        simulate_uvh5(path, sim, client=None, max_in_flight=0, clobber=True)  # no cluster
    with pytest.raises(InputError, match="checkpoint_seconds must be >= 0, received -1"):
        simulate_uvh5(path, sim, client="serial", checkpoint_seconds=-1, clobber=True)


def test_plan_beyond_what_a_checkpoint_lists_is_refused(tmp_path, monkeypatch) -> None:
    """More blocks than the checkpoint attribute can list: refused before any work, with
    the way out (the limit lowered here: the real one is 480,000 blocks)."""
    _, sim = _points(np.random.default_rng(0))
    monkeypatch.setattr(dsim, "_MAX_BLOCKS", 3)
    with pytest.raises(InputError, match="plan has 4 blocks, more than the 3 .*larger "
                                         "time_chunk"):
        simulate_uvh5(tmp_path / "a.uvh5", sim, client="serial", time_chunk=1)
    assert not (tmp_path / "a.uvh5").exists()


def _worker_settings() -> tuple:
    import dask

    return (dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.admin.tick.interval"),
            os.environ.get("NUMBA_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS"),
            os.environ.get("MALLOC_TRIM_THRESHOLD_"))


def test_local_cluster_workers_run_lean_and_single_threaded(client) -> None:
    """The fixture's cluster comes from local_cluster: every worker (the one restarted
    after the kill test included) holds the lean configuration, one BLAS/numba thread and
    no MALLOC_TRIM_THRESHOLD_, though the driver's configuration is Dask's default again
    (the settings were applied while the cluster and its client started)."""
    import dask

    from linlim.distributed import LEAN_DASK_CONFIG

    got = set(client.run(_worker_settings).values())
    assert got == {(False, LEAN_DASK_CONFIG["distributed.admin.tick.interval"], "1", "1", None)}
    assert dask.config.get("distributed.admin.tick.interval") != "1s"   # not leaked
    assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._tick_interval) == 1
    assert client.direct_to_workers is True      # results fetched from the workers


@pytest.mark.parametrize("kwargs, match", [({"n_workers": 0}, "n_workers"),
                                           ({"threads_per_worker": 1.5}, "threads_per_worker"),
                                           ({"n_workers": True}, "n_workers")])
def test_local_cluster_bad_input(kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        local_cluster(**kwargs)


def test_killed_run_resumes_bit_for_bit(client, tmp_path) -> None:
    """A driver killed (SIGKILL) after 4 of 8 blocks leaves a file whose checkpoint lists
    those 4; resumed in-process or on the cluster, the file equals an uninterrupted run
    bit for bit. A resume with another plan, or of a file linlim did not write, is
    refused with the reason."""
    import pickle
    import shutil
    import subprocess
    import sys

    from linlim.distributed.simulate import ChunkedSimulation

    from .simulation_helpers import point_source_chunk_or_die

    _, base = _points(np.random.default_rng(3), sigma=0.05)
    sim = ChunkedSimulation(point_source_chunk_or_die, base.description, base.metadata,
                            base.sigma, base.seed)
    chunks = {"time_chunk": 1, "freq_chunk": 8}       # 4 times x 2 channel blocks
    whole = simulate_uvh5(tmp_path / "whole.uvh5", sim, client="serial", **chunks)
    killed = tmp_path / "killed.uvh5"
    with open(tmp_path / "sim.pkl", "wb") as fh:
        pickle.dump(sim, fh)
    script = ("import pickle, sys\n"
              "from linlim.distributed import simulate_uvh5\n"
              "sim = pickle.load(open(sys.argv[1], 'rb'))\n"
              "simulate_uvh5(sys.argv[2], sim, client='serial', time_chunk=1, "
              "freq_chunk=8, checkpoint_seconds=0)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "sim.pkl"),
                          str(killed)], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "LINLIM_TEST_DIE_AT": "2", "PYTHONPATH": root},
                         timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr
    with h5py.File(killed, "r") as f:
        done = np.unpackbits(f["Data/visdata"].attrs["linlim_blocks_done"], count=8)
    assert done.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]        # times 0 and 1 written
    on_cluster = tmp_path / "killed_cluster.uvh5"
    shutil.copy(killed, on_cluster)
    with pytest.raises(InputError, match="path .* exists; pass clobber=True .*resume"):
        simulate_uvh5(killed, sim, client="serial", **chunks)
    with pytest.raises(InputError, match="pass one of them"):
        simulate_uvh5(killed, sim, client="serial", resume=True, clobber=True, **chunks)
    with pytest.raises(InputError, match="another simulation or chunk plan"):
        simulate_uvh5(killed, sim, client="serial", time_chunk=2, freq_chunk=8,
                      resume=True)
    simulate_uvh5(killed, sim, client="serial", resume=True, **chunks)
    with distributed.get_task_stream(client) as stream:
        simulate_uvh5(on_cluster, sim, client=client, resume=True, **chunks)
    assert len([t for t in stream.data if t["key"].startswith("linlim-")]) == 4  # the rest
    with h5py.File(whole, "r") as f:
        ref = f["Data/visdata"][()]
    for path in (killed, on_cluster):
        with h5py.File(path, "r") as f:
            assert np.array_equal(f["Data/visdata"][()], ref)
            assert np.unpackbits(f["Data/visdata"].attrs["linlim_blocks_done"],
                                 count=8).all()
        assert _read(path) == _read(whole)
    # nothing left to do: the file is not touched
    before = killed.read_bytes()
    simulate_uvh5(killed, sim, client="serial", resume=True, **chunks)
    assert killed.read_bytes() == before
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("Data/visdata", data=np.zeros((4, 16, 1), complex))
    with pytest.raises(InputError, match="carries no linlim checkpoint"):
        simulate_uvh5(plain, sim, client="serial", resume=True, **chunks)


def test_failed_flush_claims_no_block_and_is_the_error_reported(tmp_path, monkeypatch
                                                                ) -> None:
    """A flush that fails (a full disk) after the file was initialised: the error that
    stops the run is that one (not an echo from the clean-up), and the checkpoint on disk
    lists no block whose data were not flushed first."""
    _, sim = _points(np.random.default_rng(0))
    calls = {"n": 0}
    real = h5py.File.flush

    def flaky(self) -> None:
        calls["n"] += 1
        if calls["n"] == 2:                # the flush at open passes; the first block's
            raise OSError("disk full (simulated)")   # data flush fails
        if calls["n"] > 2:                 # what the clean-up would meet: not to be shown
            raise RuntimeError("flush failed again")
        real(self)

    monkeypatch.setattr(h5py.File, "flush", flaky)
    path = tmp_path / "a.uvh5"
    with pytest.raises(OSError, match="disk full"):
        simulate_uvh5(path, sim, client="serial", time_chunk=1, checkpoint_seconds=0)
    monkeypatch.setattr(h5py.File, "flush", real)
    with h5py.File(path, "r") as f:
        assert not np.unpackbits(f["Data/visdata"].attrs["linlim_blocks_done"]).any()
    done = simulate_uvh5(path, sim, client="serial", time_chunk=1, resume=True)
    ref = simulate_uvh5(tmp_path / "ref.uvh5", sim, client="serial", time_chunk=1)
    assert _read(done) == _read(ref)
