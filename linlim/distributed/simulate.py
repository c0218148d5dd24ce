"""Distributed simulation: (time, frequency) chunks as Dask tasks, written to one uvh5 file.

A simulation is described by a :class:`ChunkedSimulation`: a *chunk builder* (a top-level
function ``builder(description, times, freqs) -> V`` that rebuilds everything it needs from
a small picklable ``description`` and returns the noise-free visibilities of one block of
times and channels), the description itself, the file metadata, and the noise level and
seed. :func:`simulate_uvh5` splits the (Ntimes, Nfreq) plane into blocks, runs one task per
block on a ``distributed.Client`` and writes each block into a single uvh5 file as soon as
it arrives (pyuvdata's ``initialize_uvh5_file`` on a metadata-only ``UVData``, then each
block into the file's ``visdata`` at its slices, as ``write_uvh5_part`` does; the constant
``flags`` and ``nsamples`` are the data sets' fill values), so the driver never holds more
than a few blocks of visibilities.

Two builders are provided:

* :func:`scenario_simulation`: the synthetic scenario of :mod:`linlim.pipelines.scenario`
  (foregrounds and 21 cm signal through the true chromatic beam and gains, as
  :func:`linlim.pipelines.simulate.simulate_data`), from its config dict;
* :func:`point_source_simulation`: point sources with given spectra through an analytic
  Airy beam of a given dish diameter.

Reproducibility: a block's visibilities depend only on the description and the block;
its noise is drawn from ``numpy.random.default_rng([seed, index])`` with ``index`` the
block's position in the chunk plan. The file is therefore independent of the number of
workers, of the order in which blocks finish and of retried tasks; it depends on the chunk
plan only through the noise realisation.

Checkpoints: the file records which blocks it holds (and what it is a simulation of);
``simulate_uvh5(..., resume=True)`` after a crash computes only the missing blocks, and
the file equals an uninterrupted run bit for bit.

Prepared clusters: a worker process pays, before its first block, the import of linlim and
its dependencies, the first calls of numba and astropy, and the builder's per-process
state (the scenario of :func:`scenario_chunk`, built once per process and kept).
:func:`prepare_workers` pays all of that once, when the cluster is set up, on every worker
(and on every worker that joins later), and leaves the description on the workers, so a
simulation submitted to a prepared, persistent cluster ships only a digest with each task
and pays only the blocks' work. Without it (a "cold" cluster) the first block on each
worker pays those costs inside the job; the result is the same bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

import numpy as np

from ..backend import to_numpy
from ..errors import InputError, ShapeError

__all__ = ["ChunkedSimulation", "plan_chunks", "simulate_chunk", "simulate_uvh5",
           "prepare_workers", "prepare_process", "scenario_simulation", "scenario_chunk",
           "point_source_simulation", "point_source_chunk", "SCENARIO_COMPONENTS"]

#: What :func:`scenario_chunk` can simulate (see :func:`linlim.pipelines.simulate.simulate_data`).
SCENARIO_COMPONENTS = ("data", "foregrounds", "signal", "sky_model")

# worker-local cache of built scenarios: digest of the config -> Scenario
_SCENARIOS: dict[str, Any] = {}
# worker-local descriptions of prepared simulations: ChunkedSimulation.digest -> description
_DESCRIPTIONS: dict[str, Any] = {}
# driver-side file headers of prepared simulations: (metadata digest, history) -> the
# initialised (header-only) uvh5 file's bytes
_HEADERS: dict[tuple[str, str], bytes] = {}


@dataclass(frozen=True)
class _Prepared:
    """What a task carries instead of a description the workers already hold."""

    digest: str


def _resolve(description: Any) -> Any:
    if isinstance(description, _Prepared):
        try:
            return _DESCRIPTIONS[description.digest]
        except KeyError:
            raise InputError(f"simulate_chunk: this process was not prepared for the "
                             f"simulation with digest {description.digest!r} (see "
                             f"prepare_workers)") from None
    return description


@dataclass(frozen=True)
class ChunkedSimulation:
    """A simulation that any worker can compute block by block.

    Attributes
    ----------
    builder : callable
        ``builder(description, times, freqs) -> V`` with ``times``, ``freqs`` slices of the
        time and frequency axes and ``V`` the noise-free visibilities (Nt_chunk, Nf_chunk,
        Nbl) complex128 in Jy. A top-level (importable) function.
    description : picklable
        Small description the builder rebuilds its inputs from (a config dict, source
        arrays, file paths). Shipped with every task.
    metadata : dict
        File metadata, the keyword arguments of :func:`linlim.io.uvdata.vis_to_uvdata`
        other than ``vis``: ``antpos`` (Nant, 3) ENU m, ``freqs`` (Nfreq,) Hz,
        ``times_jd`` (Ntimes,), ``ant1``, ``ant2`` (Nbl,) antenna indices,
        ``telescope_loc`` (EarthLocation); optional ``antenna_diameter``.
    sigma : float
        Noise rms per complex visibility in Jy (``E|n|^2 = sigma^2``); 0 for none.
    seed : int
        Seed of the noise; block ``i`` uses ``default_rng([seed, i])``.
    """

    builder: Callable[[Any, slice, slice], np.ndarray]
    description: Any
    metadata: dict = field(repr=False)
    sigma: float = 0.0
    seed: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """Visibility shape (Ntimes, Nfreq, Nbl)."""
        m = self.metadata
        return (np.size(m["times_jd"]), np.size(m["freqs"]), np.size(m["ant1"]))

    @cached_property
    def digest(self) -> str:
        """SHA-1 of the builder's qualified name and the pickled description (what the
        blocks depend on besides the noise); computed once per object."""
        b = self.builder
        name = f"{getattr(b, '__module__', '')}.{getattr(b, '__qualname__', repr(b))}"
        return _digest((name, self.description))

    @cached_property
    def metadata_digest(self) -> str:
        """SHA-1 of the pickled file metadata (what the file's header depends on besides
        the history); computed once per object."""
        return _digest(self.metadata)


def plan_chunks(ntimes: int, nfreqs: int, time_chunk: int | None = None,
                freq_chunk: int | None = None) -> list[tuple[slice, slice]]:
    """Blocks of ``time_chunk`` times by ``freq_chunk`` channels, time-major.

    Parameters
    ----------
    ntimes, nfreqs : int
        Size of the time and frequency axes.
    time_chunk, freq_chunk : int, optional
        Block size along each axis (default: the whole axis); the last block of an axis
        may be shorter.

    Returns
    -------
    list of (slice, slice)
        ``(times, freqs)`` of each block; block ``i`` is the ``i``-th entry.

    Examples
    --------
    >>> plan_chunks(3, 4, time_chunk=2, freq_chunk=4)
    [(slice(0, 2, None), slice(0, 4, None)), (slice(2, 3, None), slice(0, 4, None))]
    """
    def axis(n: int, step: int | None, name: str) -> list[slice]:
        step = n if step is None else step
        if int(step) != step or step < 1:
            raise InputError(f"plan_chunks: {name} must be a positive integer, received "
                             f"{step!r}")
        return [slice(i, min(i + int(step), n)) for i in range(0, n, int(step))]

    if ntimes < 1 or nfreqs < 1:
        raise InputError(f"plan_chunks: expected ntimes, nfreqs >= 1, received {ntimes}, "
                         f"{nfreqs}")
    return [(t, f) for t in axis(ntimes, time_chunk, "time_chunk")
            for f in axis(nfreqs, freq_chunk, "freq_chunk")]


def simulate_chunk(builder: Callable, description: Any, times: slice, freqs: slice,
                   sigma: float = 0.0, seed: int = 0, index: int = 0) -> np.ndarray:
    """Visibilities of one block, with noise (what the workers' task,
    :func:`_uvh5_block`, computes before it reorders them for the file).

    Parameters
    ----------
    builder, description
        As in :class:`ChunkedSimulation`; on a prepared worker (:func:`prepare_workers`)
        ``description`` may be the reference to the one the worker holds.
    times, freqs : slice
        The block.
    sigma : float
        Noise rms per complex visibility (Jy); 0 adds none.
    seed, index : int
        The noise is ``sigma / sqrt(2) (a + i b)`` with ``a``, ``b`` standard normal from
        ``numpy.random.default_rng([seed, index])``.

    Returns
    -------
    numpy.ndarray, (Nt_chunk, Nf_chunk, Nbl) complex128
    """
    vis = np.asarray(to_numpy(builder(_resolve(description), times, freqs)),
                     dtype=np.complex128)
    nt = len(range(*times.indices(10**12)))
    nf = len(range(*freqs.indices(10**12)))
    if vis.ndim != 3 or vis.shape[:2] != (nt, nf):
        raise ShapeError(f"simulate_chunk: builder {getattr(builder, '__name__', builder)!r} "
                         f"returned shape {vis.shape}, expected ({nt}, {nf}, Nbl)")
    if sigma:
        rng = np.random.default_rng([int(seed), int(index)])
        vis += (float(sigma) / np.sqrt(2)) * (rng.standard_normal(vis.shape)
                                              + 1j * rng.standard_normal(vis.shape))
    return vis


def _uvh5_block(builder: Callable, description: Any, times: slice, freqs: slice,
                sigma: float, seed: int, index: int) -> np.ndarray:
    """:func:`simulate_chunk` in the layout of the file's ``visdata``: the task
    :func:`simulate_uvh5` runs.

    Parameters
    ----------
    builder, description, times, freqs, sigma, seed, index
        As in :func:`simulate_chunk`.

    Returns
    -------
    numpy.ndarray, (Nt_chunk * Nbl, Nf_chunk, 1) complex128
        Visibilities (Jy), baseline-times time-major, C-contiguous: the worker reorders
        its block, so that the driver, through which every block passes, only writes it.
    """
    vis = simulate_chunk(builder, description, times, freqs, sigma, seed, index)
    return np.ascontiguousarray(vis.transpose(0, 2, 1)).reshape(-1, vis.shape[1], 1)


# --------------------------------------------------------------------------- the driver

def _metadata_uvdata(meta: dict, history: str) -> Any:
    """A metadata-only ``UVData`` laid out as :func:`linlim.io.uvdata.vis_to_uvdata`
    lays out its objects (time-major baseline-times, one ``xx`` polarisation)."""
    from pyuvdata import Telescope, UVData
    from pyuvdata.utils import ECEF_from_ENU

    from ..io.uvdata import DEFAULT_POL_CONVENTION

    loc = meta["telescope_loc"]
    antpos = np.asarray(meta["antpos"], dtype=np.float64)
    freqs = np.asarray(meta["freqs"], dtype=np.float64).ravel()
    times = np.asarray(meta["times_jd"], dtype=np.float64).ravel()
    ant1 = np.asarray(meta["ant1"], dtype=np.int64).ravel()
    ant2 = np.asarray(meta["ant2"], dtype=np.int64).ravel()
    na = antpos.shape[0]
    numbers = np.arange(na)
    rel_ecef = ECEF_from_ENU(antpos, center_loc=loc) - np.array(
        [loc.x.to_value("m"), loc.y.to_value("m"), loc.z.to_value("m")])
    tel = Telescope.new(location=loc, name="linlim", instrument="linlim",
                        antenna_positions={int(n): p for n, p in zip(numbers, rel_ecef)},
                        antenna_names=[f"ant{n}" for n in numbers], antenna_numbers=numbers,
                        antenna_diameters=np.full(na, float(meta.get("antenna_diameter", 14.0))))
    if tel.feed_array is None:  # as pyuvdata fills them for a full object
        tel.set_feeds_from_x_orientation("east", feeds=["x"])
        tel.mount_type = ["fixed"] * na
    itime = float(np.median(np.diff(times))) * 86400.0 if times.size > 1 else 1.0
    cw = float(np.median(np.diff(freqs))) if freqs.size > 1 else 1.0
    uv = UVData.new(freq_array=freqs, polarization_array=np.array([-5]), times=times,
                    telescope=tel, antpairs=list(zip(ant1.tolist(), ant2.tolist())),
                    do_blt_outer=True, integration_time=itime, channel_width=cw,
                    vis_units="Jy", time_axis_faster_than_bls=False, history=history)
    uv.history = history   # without new()'s time stamp: same inputs, same file
    uv.pol_convention = DEFAULT_POL_CONVENTION
    uv.check()
    return uv


#: What every sample of a simulated file holds in the ``flags`` and ``nsamples`` data sets.
_CONSTANT_DATASETS = {"flags": False, "nsamples": 1.0}


def _visdata_chunks(nbl: int, nfreq: int) -> tuple[int, int, int]:
    """HDF5 chunk shape of the simulated file's ``visdata``: one integration (all ``nbl``
    baselines) by at most as many channels as fit in 1 MiB (HDF5's default chunk cache
    per data set), at least one, the band split into chunks of equal width (HDF5 stores
    a partly filled last chunk whole: 98 of 128 channels would take 196 channels of
    disk). A block of whole integrations and whole chunk widths fills whole chunks."""
    fit = max(1, 2**20 // (16 * nbl))        # channels of complex128 in 1 MiB
    nchunks = -(-int(nfreq) // fit)
    return int(nbl), -(-int(nfreq) // nchunks), 1


def _initialise_file(path: str, meta: dict, history: str) -> None:
    """Initialise a uvh5 file for ``meta``: pyuvdata's header and empty data sets, with
    ``flags`` and ``nsamples`` re-created alike (shape, dtype, chunks, filter, attributes)
    but with the values of :data:`_CONSTANT_DATASETS` as their HDF5 fill value, and
    ``visdata`` re-created with the chunks of :func:`_visdata_chunks`.

    A chunk never written reads as the fill value (HDF5's rule for chunked data sets,
    which pyuvdata's are), so ``flags`` and ``nsamples`` hold their constant values
    everywhere with no chunk written: the blocks write ``visdata`` alone (this saves the
    driver compressing and writing 5 of every 21 bytes a sample takes, off the tail of a
    run). ``visdata``'s chunks are one integration deep rather than h5py's automatic
    guess (a few channels of a fraction of the baselines: 666 x 4 for a 37-antenna
    array), which made writing a block a few thousand small chunk writes; measured here,
    a 10.9 MB block took 10-13 ms to write into the automatic chunks and 3-4.5 ms into
    these.
    """
    import h5py

    _metadata_uvdata(meta, history).initialize_uvh5_file(path)
    with h5py.File(path, "r+") as f:
        group = f["Data"]
        for name, value in (*_CONSTANT_DATASETS.items(), ("visdata", None)):
            old = group[name]
            spec = dict(shape=old.shape, dtype=old.dtype, chunks=old.chunks,
                        maxshape=old.maxshape, compression=old.compression,
                        compression_opts=old.compression_opts, shuffle=old.shuffle,
                        fletcher32=old.fletcher32)
            if name == "visdata":
                spec["chunks"] = _visdata_chunks(np.size(meta["ant1"]), old.shape[1])
            else:
                spec["fillvalue"] = value
            attrs = dict(old.attrs)
            del old, group[name]
            new = group.create_dataset(name, **spec)
            new.attrs.update(attrs)


def _initialised_file(meta: dict, history: str) -> bytes:
    """The bytes of a uvh5 file initialised for ``meta`` (:func:`_initialise_file`)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        name = os.path.join(tmp, "header.uvh5")
        _initialise_file(name, meta, history)
        with open(name, "rb") as fh:
            return fh.read()


def _start_file(path: str, sim: ChunkedSimulation, history: str) -> None:
    """Initialise the uvh5 file: a copy of the header :func:`prepare_workers` kept, or
    :func:`_initialise_file`."""
    header = _HEADERS.get((sim.metadata_digest, history))
    if os.path.exists(path):
        os.remove(path)
    if header is None:
        _initialise_file(path, sim.metadata, history)
    else:
        with open(path, "wb") as fh:
            fh.write(header)


def prepare_process(builder: Callable, description: Any, digest: str | None = None) -> float:
    """Prepare this process for a simulation: what :func:`prepare_workers` runs on each
    worker, and what an in-process reference runs in the driver.

    Stores ``description`` under ``digest`` (so tasks may carry the digest alone) and
    computes one 1 x 1 block, discarded: this builds the builder's per-process state (for
    :func:`scenario_chunk`, the scenario, cached per process) and pays the first calls
    (numba compilation, astropy's tables).

    Parameters
    ----------
    builder, description
        As in :class:`ChunkedSimulation`.
    digest : str, optional
        :attr:`ChunkedSimulation.digest` (default: computed here).

    Returns
    -------
    float
        Seconds spent.
    """
    t0 = time.perf_counter()
    if digest is None:
        digest = ChunkedSimulation(builder, description, {}).digest
    _DESCRIPTIONS[digest] = description
    builder(description, slice(0, 1), slice(0, 1))
    return time.perf_counter() - t0


def _plugin_name(sim: ChunkedSimulation) -> str:
    return f"linlim-simulation-{sim.digest}"


def prepare_workers(client: Any, sim: ChunkedSimulation,
                    history: str = "simulated with linlim (distributed)") -> float:
    """Prepare every worker of a cluster, now and when one joins later, for ``sim``.

    Registers a worker plugin (:class:`linlim.distributed._plugin.SimulationPreparer`)
    that runs :func:`prepare_process` on each worker: the description is kept on the
    worker and the builder's per-process state is built (for a scenario, the scenario),
    with numba and astropy's first calls, before any block is submitted. In this (the
    driver's) process it builds the file header (a metadata-only ``UVData``, written by
    pyuvdata's ``initialize_uvh5_file`` into a header-only file) and keeps that file's
    bytes (the header arrays: about 60 bytes per baseline-time). Afterwards
    :func:`simulate_uvh5` on this cluster sends each task the simulation's digest instead
    of its description, the blocks pay only their own work, and the driver only copies
    the header-only file and writes the blocks into it. Call it once per simulation
    description when the (persistent) cluster is set up; a worker that dies and is
    restarted is prepared again before it takes work (Dask sets up a joining worker's
    plugins before it reads its first task). What a worker keeps (the description, the
    builder's state) stays until the worker process ends.

    Parameters
    ----------
    client : distributed.Client or "serial"
        The cluster; ``"serial"`` prepares this process only (the in-process reference of
        ``simulate_uvh5(..., client="serial")``).
    sim : ChunkedSimulation
    history : str
        History string of the files to write (the header kept is for this one).

    Returns
    -------
    float
        Wall-clock seconds the preparation took (all workers in parallel).

    Notes
    -----
    The preparation changes no result: a prepared and a cold cluster write the same file
    bit for bit. Workers use astropy's configuration as they find it; a cluster without
    network access should set ``astropy.utils.iers.conf.auto_download = False`` on its
    workers first (another plugin registered before this one).
    """
    t0 = time.perf_counter()
    if isinstance(client, str) and client != "serial":
        raise InputError(f"prepare_workers: client must be a distributed.Client or "
                         f"'serial', received {client!r}")
    _HEADERS[(sim.metadata_digest, history)] = _initialised_file(sim.metadata, history)
    if client == "serial":
        prepare_process(sim.builder, sim.description, sim.digest)
        return time.perf_counter() - t0
    from ._plugin import SimulationPreparer

    client.register_plugin(SimulationPreparer(sim.builder, sim.description, sim.digest),
                           name=_plugin_name(sim))
    return time.perf_counter() - t0


def _cluster_state(name: str, dask_scheduler: Any = None) -> tuple[bool, int]:
    """On the scheduler: whether the worker plugin ``name`` is registered, and the number
    of workers (one round trip for both, before the first block is submitted)."""
    return name in dask_scheduler.worker_plugins, len(dask_scheduler.workers)


class _Blocks:
    """Blocks submitted to the cluster, at most ``max_in_flight`` at a time; iterating
    yields ``(index, block)`` as blocks finish, ``block`` in the file's layout
    (:func:`_uvh5_block`); blocks finished together are fetched in one gather, and each
    future is released once yielded."""

    def __init__(self, client: Any, sim: ChunkedSimulation, plan: list[tuple[slice, slice]],
                 todo: list[int], retries: int, max_in_flight: int | None,
                 workers: Any = None) -> None:
        from distributed import as_completed

        self.client, self.sim, self.plan, self.retries = client, sim, plan, retries
        # Client.map takes a str or a list (Client.submit also took a tuple)
        self.workers = (workers if workers is None or isinstance(workers, str)
                        else list(workers))
        prepared, nworkers = client.run_on_scheduler(_cluster_state, _plugin_name(sim))
        if self.workers:
            nworkers = 1 if isinstance(self.workers, str) else len(self.workers)
        if max_in_flight is None:
            max_in_flight = 2 * max(1, nworkers)
        self.description = _Prepared(sim.digest) if prepared else sim.description
        self.index: dict[str, int] = {}
        self.queue = iter(todo)
        first = self._submit([i for _, i in zip(range(max_in_flight), self.queue)])
        # results are fetched here, one gather per batch of finished blocks, not by
        # as_completed(with_results=True): its background gathers run concurrently and
        # can lose one (dask/distributed #7331), which left the driver waiting forever
        # for a block already in memory (seen here twice in about 400 runs)
        # on this client's event loop: as_completed defaults to the loop of Dask's
        # default client (the one created last), and on another client's loop the
        # completions reached the driver up to ~150 ms late (measured with two clients)
        self.done = as_completed(first, loop=client.loop)

    def _submit(self, indices: list[int]) -> list[Any]:
        """Submit these blocks in one message to the scheduler (one ``update_graph``: the
        client batches its messages at most every 10 ms, so blocks submitted one by one
        could reach the scheduler that much apart)."""
        sim, n = self.sim, len(indices)
        futs = self.client.map(_uvh5_block, [sim.builder] * n, [self.description] * n,
                               [self.plan[i][0] for i in indices],
                               [self.plan[i][1] for i in indices], [sim.sigma] * n,
                               [sim.seed] * n, indices, retries=self.retries, pure=False,
                               key=[f"linlim-simulate-{i}-{os.urandom(6).hex()}"
                                    for i in indices], workers=self.workers)
        self.index.update({fut.key: i for fut, i in zip(futs, indices)})
        return futs

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for batch in self.done.batches():        # the blocks finished so far
            results = self.client.gather(batch)  # one call: fetched side by side
            index = [self.index.pop(fut.key) for fut in batch]
            for fut in batch:                    # released, then as many submitted:
                fut.release()                    # at most max_in_flight held
            more = [i for _, i in zip(batch, self.queue)]
            if more:
                self.done.update(self._submit(more))
            yield from zip(index, results)


class _Uvh5Blocks:
    """Writes blocks (:func:`_uvh5_block`) into the ``visdata`` of a single-polarisation
    uvh5 file initialised by :func:`_start_file` (baseline-times time-major; ``flags`` and
    ``nsamples`` hold their constant values as fill values), the file open from
    :meth:`open` to the end of the ``with`` block.

    Checkpoints: ``visdata`` carries two attributes, ``linlim_run`` (the digest of what
    the file is a simulation of: :func:`_run_id`) and ``linlim_blocks_done`` (one bit per
    block of the plan, ``numpy.packbits``), written with a flush of the file at most every
    ``checkpoint_seconds`` and when the file is closed (also after an error), so that a
    run that dies leaves a file :func:`simulate_uvh5` can resume (``resume=True``).
    """

    def __init__(self, path: str, nbl: int, run_id: str, nblocks: int,
                 checkpoint_seconds: float) -> None:
        self.path, self.nbl, self.file, self.vis = path, nbl, None, None
        self.run_id, self.every = run_id, float(checkpoint_seconds)
        self.done = np.zeros(nblocks, dtype=bool)
        self.last = 0.0

    def open(self, done: np.ndarray | None = None) -> None:
        """Open the file; ``done``: the blocks already in it (a resumed run)."""
        import h5py

        self.file = h5py.File(self.path, "r+")
        self.vis = self.file["Data"]["visdata"]
        if self.vis.shape[2] != 1:
            raise ShapeError(f"simulate_uvh5: the file has {self.vis.shape[2]} "
                             f"polarisations, expected 1")
        if done is not None:
            self.done[:] = done
        self.vis.attrs["linlim_run"] = self.run_id
        self._checkpoint(flush_data=False)   # no block written by this run yet

    def _checkpoint(self, flush_data: bool = True, flush_list: bool = True) -> None:
        # the blocks' data on disk first, then the list that claims them: a flush that
        # fails (a full disk) or a kill in between leaves the previous list.
        # flush_list=False: the caller closes the file next, which flushes the list
        done = np.packbits(self.done)
        if flush_data:
            self.file.flush()
        self.vis.attrs["linlim_blocks_done"] = done
        if flush_list:
            self.file.flush()
        self.last = time.monotonic()

    def __enter__(self) -> _Uvh5Blocks:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self.file is None:
            return
        try:
            if self.vis is not None:
                self._checkpoint(flush_list=False)   # the close below flushes the list
        except Exception:
            if exc_type is None:
                raise
            # the error on its way out is the one to report, not this one's echo
        finally:
            self.vis = None   # the data set closed before the file
            try:
                self.file.close()   # writes the list set above
            except Exception:
                if exc_type is None:
                    raise
            finally:
                self.file = None

    def write(self, i: int, t: slice, f: slice, block: np.ndarray) -> None:
        """Write block ``i`` of the plan, ``block`` in the file's layout
        (:func:`_uvh5_block`), at times ``t`` and channels ``f``."""
        nbl, nt = self.nbl, t.stop - t.start
        expected = (nt * nbl, f.stop - f.start, 1)
        if block.shape != expected:
            raise ShapeError(f"simulate_uvh5: block {i} has shape {block.shape}, expected "
                             f"{expected} (Nt_block * Nbl, Nf_block, 1) for the metadata's "
                             f"{nbl} baselines (the block's builder returned "
                             f"{block.shape[0] / nt:g} baselines a time)")
        self.vis[t.start * nbl:t.stop * nbl, f, :] = block
        self.done[i] = True
        if time.monotonic() - self.last >= self.every:
            self._checkpoint()


#: Most blocks a checkpoint lists: one bit each in an attribute of at most 64 KiB (HDF5's
#: limit for the files pyuvdata creates), less room for the rest of the object header.
_MAX_BLOCKS = 8 * 60_000


def _run_id(sim: ChunkedSimulation, plan: list[tuple[slice, slice]], history: str) -> str:
    """What a file written by :func:`simulate_uvh5` holds: the simulation (builder and
    description), its metadata, noise, seed, history and chunk plan."""
    blocks = [(t.start, t.stop, f.start, f.stop) for t, f in plan]
    return _digest((sim.digest, sim.metadata_digest, float(sim.sigma), int(sim.seed),
                    history, blocks))


def _blocks_done(path: str, run_id: str, nblocks: int) -> np.ndarray:
    """The blocks a checkpointed file holds (``simulate_uvh5(resume=True)``)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = f["Data"]["visdata"].attrs
            found = attrs.get("linlim_run")
            bits = attrs.get("linlim_blocks_done")
    except (OSError, KeyError) as err:
        raise InputError(f"simulate_uvh5: cannot resume {path!r}: not a readable uvh5 file "
                         f"with Data/visdata ({err})") from None
    if found is None or bits is None:
        raise InputError(f"simulate_uvh5: cannot resume {path!r}: it carries no linlim "
                         f"checkpoint (not written by simulate_uvh5, or its run stopped "
                         f"before the first checkpoint); start again with clobber=True")
    if isinstance(found, bytes):
        found = found.decode()
    if found != run_id:
        raise InputError(f"simulate_uvh5: cannot resume {path!r}: it holds another "
                         f"simulation or chunk plan (run {found[:12]}..., this call "
                         f"{run_id[:12]}...); use the same sim, time_chunk, freq_chunk "
                         f"and history, or start again with clobber=True")
    return np.unpackbits(np.asarray(bits, dtype=np.uint8), count=nblocks).astype(bool)


def simulate_uvh5(path: str | os.PathLike, sim: ChunkedSimulation, *, client: Any = None,
                  time_chunk: int | None = None, freq_chunk: int | None = None,
                  n_workers: int = 2, retries: int = 3, max_in_flight: int | None = None,
                  clobber: bool = False, history: str = "simulated with linlim (distributed)",
                  workers: Any = None, resume: bool = False,
                  checkpoint_seconds: float = 10.0) -> str:
    """Simulate block by block on a Dask cluster and write one uvh5 file.

    Parameters
    ----------
    path : str or PathLike
        Output uvh5 file.
    sim : ChunkedSimulation
        What to simulate (see :func:`scenario_simulation`, :func:`point_source_simulation`).
    client : distributed.Client, None or "serial"
        The cluster. ``None`` starts a ``LocalCluster`` of ``n_workers`` single-threaded
        worker processes (:func:`~linlim.distributed.cluster.local_cluster`) for this
        call and closes it afterwards; ``"serial"`` computes the blocks one after the
        other in this process, without Dask (the reference the distributed result equals
        bit for bit). A client whose workers were prepared for
        ``sim`` (:func:`prepare_workers`) gets the digest of the description with each
        task instead of the description.
    time_chunk, freq_chunk : int, optional
        Block size in times and channels (default: whole axes, i.e. one block). A few
        blocks per worker balance the load; each block also pays a fixed set-up (the
        operators of its sub-band and the source directions at its times), so many small
        blocks cost more in all. The noise depends on the plan, so compare runs with the
        same plan.
    n_workers : int
        Workers of the ``LocalCluster`` started when ``client`` is None.
    retries : int
        Times a failed block (e.g. its worker died) is rerun.
    max_in_flight : int, optional
        Blocks submitted but not yet written (default: twice the number of workers), which
        bounds the memory held by the cluster.
    clobber : bool
        Overwrite an existing file.
    history : str
        History string of the file.
    workers : str or list of str, optional
        Restrict the blocks to these workers (addresses), as ``Client.map(workers=)``;
        default: any worker of the cluster.
    resume : bool
        Continue a run that stopped (a killed driver, a failed block): compute only the
        blocks the checkpoint in ``path`` does not list and write them into it. The call
        must describe the same simulation, chunk plan and history (else ``InputError``);
        the result equals an uninterrupted run bit for bit (each block's noise depends on
        its index only). Without a file at ``path`` it starts afresh. Not together with
        ``clobber``.
    checkpoint_seconds : float
        Longest time between checkpoints (the list of blocks written, flushed to the
        file); a run that dies loses at most the blocks written since. 0: after every
        block.

    Returns
    -------
    str
        The path written. The file holds (Ntimes * Nbl, Nfreq, 1) ``xx`` visibilities in Jy,
        baseline-times time-major, ``pol_convention="sum"``, like
        :func:`linlim.io.uvdata.write_uvh5`.

    Notes
    -----
    The blocks are submitted first; the driver then initialises the file with pyuvdata
    (``UVData.initialize_uvh5_file`` of a metadata-only ``UVData``; after
    :func:`prepare_workers`, a copy of the header-only file it wrote) while the workers
    compute, and writes each block as it finishes (``distributed.as_completed``; the
    driver fetches the blocks finished so far in one gather) into the file's
    ``visdata`` at its ``(blt, freq)`` slices, the file kept open (what
    ``UVData.write_uvh5_part`` does, without reopening the file and re-deriving the
    indices per block). ``flags`` (False) and ``nsamples`` (1) are never written: the
    file is initialised with those values as the data sets' HDF5 fill values, which
    every reader (pyuvdata, h5py) returns for unwritten chunks. The order of arrival does not
    matter and the driver holds the metadata and at most ``max_in_flight`` blocks. A
    killed worker's block is recomputed elsewhere.
    """
    path = os.fspath(path)
    if resume and clobber:
        raise InputError("simulate_uvh5: resume=True continues the file at path, "
                         "clobber=True overwrites it; pass one of them")
    resuming = bool(resume) and os.path.exists(path)
    if os.path.exists(path) and not (clobber or resuming):
        raise InputError(f"simulate_uvh5: path {path!r} exists; pass clobber=True (or "
                         f"resume=True to continue a run that stopped)")
    if isinstance(client, str) and client != "serial":
        raise InputError(f"simulate_uvh5: client must be a distributed.Client, None or "
                         f"'serial', received {client!r}")
    if not checkpoint_seconds >= 0:
        raise InputError(f"simulate_uvh5: checkpoint_seconds must be >= 0, received "
                         f"{checkpoint_seconds!r}")
    nt, nf, nbl = sim.shape
    plan = plan_chunks(nt, nf, time_chunk, freq_chunk)
    if len(plan) > _MAX_BLOCKS:
        raise InputError(f"simulate_uvh5: the plan has {len(plan)} blocks, more than the "
                         f"{_MAX_BLOCKS} the file's checkpoint can list (an HDF5 attribute "
                         f"of at most 64 KiB); use larger time_chunk or freq_chunk")
    run_id = _run_id(sim, plan, history)
    done = _blocks_done(path, run_id, len(plan)) if resuming else None
    todo = [i for i in range(len(plan)) if done is None or not done[i]]
    writer = _Uvh5Blocks(path, nbl, run_id, len(plan), checkpoint_seconds)

    def start_file() -> None:
        if done is None:
            _start_file(path, sim, history)
        writer.open(done)

    if not todo:
        return path
    if client == "serial":
        start_file()
        with writer:
            for i in todo:
                t, f = plan[i]
                writer.write(i, t, f, _uvh5_block(sim.builder, sim.description, t, f,
                                                  sim.sigma, sim.seed, i))
        return path

    if max_in_flight is not None and int(max_in_flight) < 1:
        raise InputError(f"simulate_uvh5: max_in_flight must be >= 1, received "
                         f"{max_in_flight}")
    own = client is None
    cluster = None
    if own:
        from .cluster import local_cluster

        cluster, client = local_cluster(int(n_workers))
    try:
        blocks = _Blocks(client, sim, plan, todo, retries,
                         None if max_in_flight is None else int(max_in_flight),
                         workers)                               # workers start now
        start_file()                                           # meanwhile, the header
        with writer:
            for i, block in blocks:
                writer.write(i, *plan[i], block)
    finally:
        if own:
            client.close()
            cluster.close()
    return path


# --------------------------------------------------------------------------- builders

def _digest(obj: Any) -> str:
    return hashlib.sha1(pickle.dumps(obj)).hexdigest()


def _scenario(cfg: dict) -> Any:
    """The scenario of ``cfg``, built once per process (its draws are seeded by the
    config, so every worker builds the same one)."""
    from ..pipelines.scenario import build_scenario

    key = _digest(cfg)
    sc = _SCENARIOS.get(key)
    if sc is None:
        sc = _SCENARIOS[key] = build_scenario(cfg)
    return sc


def scenario_chunk(description: dict, times: slice, freqs: slice) -> np.ndarray:
    """Noise-free visibilities of a synthetic scenario on a block of times and channels.

    Parameters
    ----------
    description : dict
        ``{"scenario": <scenario config, complete>, "component": one of
        SCENARIO_COMPONENTS}``.
    times, freqs : slice

    Returns
    -------
    numpy.ndarray, (Nt_chunk, Nf_chunk, Nbl) complex128, Jy
        ``"foregrounds"``: the point sources through the true beam and gains;
        ``"signal"``: the 21 cm signal through the same; ``"data"``: their sum (noise is
        added by :func:`simulate_chunk`); ``"sky_model"``: the foregrounds without gains.

    Notes
    -----
    The block is simulated on the sub-band and sub-times with the full band's reference
    frequency and ripple, so it equals the corresponding block of
    :func:`linlim.pipelines.simulate.simulate_data` to rounding (the phasor recurrence
    restarts at the block's first channel).
    """
    from ..pipelines.joint import beam_values, build_joint_model
    from ..pipelines.scenario import Observation
    from ..rime.operator import RIMEIntensity

    component = description.get("component", "data")
    if component not in SCENARIO_COMPONENTS:
        raise InputError(f"scenario_chunk: component must be one of {SCENARIO_COMPONENTS}, "
                         f"received {component!r}")
    sc = _scenario(description["scenario"])
    full = sc.obs
    obs = Observation(full.layout, full.site, full.antpos, full.ant1, full.ant2,
                      full.freqs[freqs], full.times_jd[times])
    gains = sc.gains
    out = np.zeros(obs.shape, dtype=np.complex128)
    if component in ("data", "foregrounds", "sky_model"):
        cat = sc.catalog
        with_gains = gains is not None and component != "sky_model"
        model = build_joint_model(obs, cat.ra, cat.dec, sc.ref_freq, sc.ripple_delay,
                                  fit_gains=with_gains)
        values = {"fg_logflux": np.log(cat.flux), "fg_index": cat.spectral_index,
                  "beam": sc.beam_params}
        if with_gains:
            values["gains"] = np.stack([np.log(np.abs(gains)),
                                        np.angle(gains)]).reshape(2, -1, 1, 1)
        out += to_numpy(model.model(model.params.pack(values)))
    dif = getattr(sc, "diffuse", None)          # the diffuse foreground (pipelines.skymodel)
    if component in ("data", "foregrounds", "sky_model") and dif is not None:
        enu, az, za = obs.directions(dif.ra, dif.dec)
        A = beam_values(obs, az, za, sc.ref_freq, sc.ripple_delay, sc.beam_params)
        K = RIMEIntensity(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2, beam=A)
        vd = to_numpy(K.matvec(np.ascontiguousarray(dif.intensity(dif.coeffs)[:, freqs])))
        if gains is not None and component != "sky_model":
            vd = vd * obs.gain_products(gains)
        out += vd
    if component in ("data", "signal") and sc.signal_ra.size:
        enu, az, za = obs.directions(sc.signal_ra, sc.signal_dec)
        A = beam_values(obs, az, za, sc.ref_freq, sc.ripple_delay, sc.beam_params)
        K = RIMEIntensity(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2, beam=A)
        sig = to_numpy(K.matvec(np.ascontiguousarray(sc.signal_jy[:, freqs])))
        if gains is not None:
            sig = sig * obs.gain_products(gains)
        out += sig
    return out


def scenario_simulation(config: dict | None = None, component: str = "data", *,
                        noise: bool | None = None, seed: int | None = None
                        ) -> ChunkedSimulation:
    """A :class:`ChunkedSimulation` of the synthetic scenario of a config.

    Parameters
    ----------
    config : dict, optional
        The ``scenario`` config section (merged into
        :data:`linlim.pipelines.scenario.SCENARIO_DEFAULTS`).
    component : {"data", "foregrounds", "signal", "sky_model"}
        What to simulate (see :func:`scenario_chunk`).
    noise : bool, optional
        Add thermal noise of the config's ``noise.sigma_jy`` (default: only for ``"data"``).
    seed : int, optional
        Noise seed (default: the config's ``seed``).

    Notes
    -----
    The noise is drawn per block (see the module docstring), so it is a different
    realisation from :func:`linlim.pipelines.simulate.simulate_data`'s; the noise-free
    part agrees with it to rounding.
    """
    from ..io.config import merge_config
    from ..pipelines.scenario import SCENARIO_DEFAULTS

    cfg = merge_config(SCENARIO_DEFAULTS, config or {})
    if component not in SCENARIO_COMPONENTS:
        raise InputError(f"scenario_simulation: component must be one of "
                         f"{SCENARIO_COMPONENTS}, received {component!r}")
    sc = _scenario(cfg)
    obs = sc.obs
    meta = dict(antpos=obs.antpos, freqs=obs.freqs, times_jd=obs.times_jd, ant1=obs.ant1,
                ant2=obs.ant2, telescope_loc=obs.site)
    with_noise = component == "data" if noise is None else bool(noise)
    return ChunkedSimulation(scenario_chunk, {"scenario": cfg, "component": component},
                             meta, sc.sigma if with_noise else 0.0,
                             int(cfg["seed"]) if seed is None else int(seed))


def point_source_chunk(description: dict, times: slice, freqs: slice) -> np.ndarray:
    """Noise-free visibilities of point sources through an Airy beam on one block.

    Parameters
    ----------
    description : dict
        As built by :func:`point_source_simulation`.
    times, freqs : slice

    Returns
    -------
    numpy.ndarray, (Nt_chunk, Nf_chunk, Nbl) complex128, Jy

    Notes
    -----
    ``V_ij = sum_s 0.5 A(s)^2 S_s(nu) exp(2 pi i nu (x_j - x_i) . s_hat / c)`` with
    ``A = 2 J1(x)/x`` of the dish diameter (:class:`linlim.beam.AiryBeam`), source
    directions from astropy per time (``method="precise"``). Runs on the active backend
    (``LINLIM_BACKEND``) and returns NumPy.
    """
    from ..backend import get_xp
    from ..beam.analytic import AiryBeam
    from ..rime.operator import RIMEIntensity
    from ..telescope.coordinates import enu_to_az_za, source_enu

    xp = get_xp()
    f = np.asarray(description["freqs"], dtype=np.float64)[freqs]
    t = np.asarray(description["times_jd"], dtype=np.float64)[times]
    enu = source_enu(description["ra"], description["dec"], t, description["site"],
                     method="precise")
    az, za = enu_to_az_za(enu, axis=1, orientation="uvbeam")
    nt, _, ns = enu.shape
    beam = AiryBeam(np.asarray(az).ravel(), np.asarray(za).ravel(), f,
                    diameter=float(description["diameter"]), xp=xp)
    A = beam.evaluate().reshape(1, nt, ns, f.size)
    K = RIMEIntensity(enu, description["antpos"], f, description["ant1"], description["ant2"],
                      beam=A, xp=xp)
    flux = np.ascontiguousarray(np.asarray(description["fluxes"], dtype=np.float64)[:, freqs])
    return to_numpy(K.matvec(xp.asarray(flux)))


def point_source_simulation(antpos: Any, fluxes: Any, ra: Any, dec: Any, freqs: Any,
                            times_jd: Any, site: Any, *, diameter: float = 14.0,
                            ant1: Any = None, ant2: Any = None, sigma: float = 0.0,
                            seed: int = 0) -> ChunkedSimulation:
    """A :class:`ChunkedSimulation` of point sources through an Airy beam.

    Parameters
    ----------
    antpos : array_like (Nant, 3)
        ENU antenna positions, metres.
    fluxes : array_like (Nsrc, Nfreq)
        Stokes I flux densities, Jy.
    ra, dec : array_like (Nsrc,)
        ICRS coordinates, radians.
    freqs : array_like (Nfreq,), Hz
    times_jd : array_like (Ntimes,), JD (UTC)
    site : str, EarthLocation or (lat_deg, lon_deg, height_m)
        Array centre (see :func:`linlim.telescope.site.get_site`).
    diameter : float
        Airy dish diameter, metres (achromatic).
    ant1, ant2 : array_like (Nbl,), optional
        Antenna indices of the baselines (default: the cross-correlations ``i < j``).
    sigma : float
        Noise rms per complex visibility (Jy).
    seed : int
        Noise seed.

    Notes
    -----
    The arrays travel with every task: fine for up to ~1e5 sources; beyond, write a builder
    that reads the catalogue from a file named in its description.
    """
    from ..telescope.site import get_site

    antpos = np.asarray(antpos, dtype=np.float64)
    if antpos.ndim != 2 or antpos.shape[1] != 3:
        raise ShapeError(f"antpos: expected shape (Nant, 3), received {antpos.shape}")
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    freqs = np.asarray(freqs, dtype=np.float64).ravel()
    times_jd = np.asarray(times_jd, dtype=np.float64).ravel()
    fluxes = np.asarray(fluxes, dtype=np.float64)
    if fluxes.shape != (ra.size, freqs.size) or dec.size != ra.size:
        raise ShapeError(f"fluxes: expected shape ({ra.size}, {freqs.size}) (Nsrc, Nfreq) "
                         f"with dec ({ra.size},), received {fluxes.shape} and {dec.shape}")
    if not diameter > 0:
        raise InputError(f"diameter: expected > 0 m, received {diameter!r}")
    if not sigma >= 0:
        raise InputError(f"sigma: expected >= 0 Jy, received {sigma!r}")
    if ant1 is None or ant2 is None:
        ant1, ant2 = np.triu_indices(antpos.shape[0], 1)
    ant1 = np.asarray(ant1, dtype=np.int64).ravel()
    ant2 = np.asarray(ant2, dtype=np.int64).ravel()
    loc = get_site(site)
    desc = dict(antpos=antpos, fluxes=fluxes, ra=ra, dec=dec, freqs=freqs, times_jd=times_jd,
                site=(loc.lat.deg, loc.lon.deg, loc.height.to_value("m")),
                diameter=float(diameter), ant1=ant1, ant2=ant2)
    meta = dict(antpos=antpos, freqs=freqs, times_jd=times_jd, ant1=ant1, ant2=ant2,
                telescope_loc=loc, antenna_diameter=float(diameter))
    return ChunkedSimulation(point_source_chunk, desc, meta, float(sigma), int(seed))
