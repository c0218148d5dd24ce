"""The one checkpoint system: atomic HDF5 files, rotation, corrupt-file fallback, and the
segment-based chain store built on them.

Shared by every kill-safe writer in linlim (samplers here, optimisers through
:mod:`linlim.inference.checkpoint`):

- :func:`atomic_h5` writes an HDF5 file to a temporary name ``.<name>.tmp<pid>``, fsyncs and
  renames it with :func:`os.replace`; with ``keep_previous`` the file it replaces is kept
  (rotation), so a damaged newest file has a good predecessor;
- :func:`read_newest_good` reads the newest readable of several generations (newest first),
  reporting each damaged one, so a run resumes from the last good checkpoint;
- :func:`remove_stale_files` removes temporaries whose writer has ended;
- :func:`write_tree` / :func:`read_tree` store nested state dicts bit-exactly.

A running sampler writes its output in *segments*: every checkpoint creates one small HDF5
file ``<path>.parts/seg_000012.h5`` holding the iterations since the previous checkpoint
(draws and per-iteration statistics) and the complete sampler state at its end (positions,
gradients, generator states, step sizes, adaptation state, metric). Each segment is written
to a temporary name, flushed, ``fsync``-ed and renamed with :func:`os.replace`, which is
atomic on POSIX: a process killed at any instant (``SIGKILL`` included) leaves either the
complete new segment or none of it, never a half-written file that a reader would open.
Writing costs ``O(new draws)`` per checkpoint, not ``O(all draws)``.

When the run finishes, the segments are consolidated into a single HDF5 file ``<path>``
(again via a temporary file and ``os.replace``) and the ``.parts`` directory is removed. A
kill during consolidation is harmless: the segments are deleted only after the final file
is in place, and a resumed run that finds a complete final file simply loads it.

Layout of the final file::

    /draws                (chains, num_draws, n) float64
    /sample_stats/<name>  (chains, num_draws)     lp, accept_stat, energy, step_size,
                                                   tree_depth, n_leapfrog, divergent
    /warmup_stats/<name>  (chains, num_warmup)
    /warmup_draws         (chains, num_warmup, n)  only with save_warmup
    /state/...            sampler state after the last iteration
    attrs: config (JSON), complete = True, format = "linlim-chains-1"

:func:`read_chains` reads either form (a finished file, or the segments of a run in
progress), so a run can be inspected while it goes.

Recovery. Atomic writes protect against kills, not against a file damaged afterwards (a
full disk, a copy cut short). A segment that cannot be read, or that does not continue its
predecessor, is reported with a :class:`CorruptChainWarning`; a resuming run sets it and
every later segment aside (renamed ``seg_NNNNNN.h5.corrupt``) and continues from the last
good one, which reproduces the uninterrupted run bit for bit. A final file that cannot be
read is reported as corrupt by :func:`read_chains` (never as missing) and set aside
(``<path>.corrupt``) by a resuming run. Temporary files left by a killed process
(``.<name>.tmp<pid>``) are removed when a store is opened, once that process is gone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np

from ..errors import InputError
from ..validation import check_chain_memory

__all__ = ["ChainStore", "read_chains", "read_names", "write_tree", "read_tree",
           "CorruptChainWarning",
           "CorruptFileError", "atomic_h5", "read_newest_good", "set_aside",
           "remove_stale_files", "remove_stale_temporaries"]

FORMAT = "linlim-chains-1"
_SEG_RE = re.compile(r"^seg_(\d{6})\.h5$")
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")
STAT_NAMES = ("lp", "accept_stat", "energy", "step_size", "tree_depth", "n_leapfrog",
              "divergent")


class CorruptChainWarning(UserWarning):
    """A chain file or checkpoint could not be read and was skipped or set aside."""


class CorruptFileError(Exception):
    """Raised by a reader given to :func:`read_newest_good`: the file exists (or should) but
    cannot be used; the message says why."""


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_files(directory: str | os.PathLike, pattern: re.Pattern,
                       select: Any = None) -> list[Path]:
    """Delete the files in ``directory`` matching ``pattern`` whose writing process has ended.

    The one clean-up every kill-safe writer (chains, optimiser checkpoints) uses.

    Parameters
    ----------
    directory : path
        Folder to clean (missing folders are ignored).
    pattern : re.Pattern
        File-name pattern; its optional group ``pid`` is the writer's process id (a file of
        a live process is kept; a name without a pid is always stale).
    select : callable, optional
        ``select(match) -> bool``: only matches for which it is true are considered.

    Returns
    -------
    list of Path
        The files removed.
    """
    d = Path(directory)
    removed: list[Path] = []
    if not d.is_dir():
        return removed
    for entry in d.iterdir():
        m = pattern.match(entry.name)
        if not m or (select is not None and not select(m)):
            continue
        pid = m.groupdict().get("pid")
        if pid is not None and _pid_alive(int(pid)):
            continue
        try:
            entry.unlink()
            removed.append(entry)
        except OSError:  # pragma: no cover - raced with another cleaner
            pass
    return removed


def remove_stale_temporaries(directory: str | os.PathLike, prefix: str = "") -> list[Path]:
    """Delete temporary files ``.<name>.tmp<pid>`` whose writing process has ended.

    Parameters
    ----------
    directory : path
        Folder to clean (missing folders are ignored).
    prefix : str
        Only names starting with ``prefix`` (after the dot).

    Returns
    -------
    list of Path
        The files removed.
    """
    return remove_stale_files(directory, _TMP_RE,
                              lambda m: m.group("name").startswith(prefix))


def _segment_ok(path: Path, expect_start: int | None) -> tuple[bool, str, int]:
    """``(ok, why, iteration_end)`` of one segment file."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                return False, "not a linlim chain segment", -1
            start, end = int(f.attrs["iteration_start"]), int(f.attrs["iteration_end"])
            if "data" not in f or "state" not in f:
                return False, "missing its data or state", -1
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return False, f"unreadable ({type(exc).__name__}: {exc})", -1
    if expect_start is not None and start != expect_start:
        return False, (f"starts at iteration {start} but the previous segment ends at "
                       f"{expect_start}"), -1
    return True, "", end


_SCALARS = (bool, np.bool_, int, np.integer, float, np.floating)


def write_tree(group: h5py.Group, tree: dict[str, Any], *, scalar_attrs: bool = False) -> None:
    """Write a nested dict of arrays / scalars / strings into an HDF5 group.

    Strings become attributes ``str:<key>`` (exact round trip, e.g. JSON), ``None`` an
    attribute ``none:<key>``; everything else a dataset, so floats are stored bit-exactly as
    float64. With ``scalar_attrs``, Python/NumPy scalars become attributes ``val:<key>``
    and read back as Python ``bool``/``int``/``float`` (also bit-exact).
    """
    for key, val in tree.items():
        if isinstance(val, dict):
            write_tree(group.create_group(key), val, scalar_attrs=scalar_attrs)
        elif isinstance(val, str):
            group.attrs["str:" + key] = val
        elif val is None:
            group.attrs["none:" + key] = 0
        elif scalar_attrs and isinstance(val, _SCALARS):
            group.attrs["val:" + key] = val
        else:
            group.create_dataset(key, data=np.asarray(val))


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """Inverse of :func:`write_tree`."""
    out: dict[str, Any] = {}
    for key, val in group.attrs.items():
        if key.startswith("str:"):
            out[key[4:]] = val if isinstance(val, str) else val.decode()
        elif key.startswith("none:"):
            out[key[5:]] = None
        elif key.startswith("val:"):
            out[key[4:]] = val.item() if isinstance(val, np.generic) else val
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_tree(item)
        else:
            out[key] = item[()]
    return out


def read_names(group: h5py.Group | h5py.Dataset) -> list[str]:
    """Parameter names stored in a result file (``group["names"]``, or that dataset)."""
    ds = group["names"] if isinstance(group, h5py.Group) else group
    return [n.decode() if isinstance(n, bytes) else str(n) for n in ds[()]]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def temporary_path(final: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_h5` writes ``final`` under: ``.<name>.tmp<pid>``."""
    final = Path(final)
    return final.with_name(f".{final.name}.tmp{os.getpid()}")


def atomic_h5(final: str | os.PathLike, fill: Callable[[h5py.File], None], *,
              keep_previous: str | os.PathLike | None = None) -> None:
    """Create ``final`` atomically: write to a temporary file, fsync, ``os.replace``.

    Parameters
    ----------
    final : path
        The file to create or replace; its folder must exist.
    fill : callable
        ``fill(f)`` writes the content into the open ``h5py.File``.
    keep_previous : path, optional
        Rotation: an existing ``final`` is moved here just before the new file takes its
        place, so the last good file survives until the new one is in.

    Notes
    -----
    A process killed at any instant leaves either the complete new file or the old one
    (and, with ``keep_previous``, never neither), plus at most a temporary that
    :func:`remove_stale_temporaries` removes once the process is gone.
    """
    final = Path(final)
    tmp = temporary_path(final)
    try:
        with h5py.File(tmp, "w") as f:
            fill(f)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_previous is not None and final.exists():
            os.replace(final, keep_previous)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(final.parent)


def set_aside(path: str | os.PathLike) -> Path:
    """Rename a damaged file to ``<name>.corrupt`` (kept for inspection); returns the new path."""
    path = Path(path)
    aside = path.with_name(path.name + ".corrupt")
    path.replace(aside)
    return aside


def read_newest_good(candidates: Sequence[str | os.PathLike], read: Callable[[Path], Any], *,
                     on_corrupt: Callable[[Path, str], None] | None = None,
                     ) -> tuple[int, Any, list[str]]:
    """Read the newest usable file of several checkpoint generations.

    Parameters
    ----------
    candidates : sequence of path
        Generations, newest first.
    read : callable
        ``read(path)`` returns the content, or raises :class:`CorruptFileError` (with the
        reason) for a file that is missing or damaged; other errors propagate.
    on_corrupt : callable, optional
        ``on_corrupt(path, reason)`` for each damaged generation skipped (e.g. warn and
        :func:`set_aside` it).

    Returns
    -------
    index : int
        Position in ``candidates`` of the file read, ``-1`` when none was usable.
    value : any
        What ``read`` returned (None when ``index == -1``).
    reasons : list of str
        Why each skipped generation was unusable, newest first.
    """
    reasons: list[str] = []
    for k, cand in enumerate(candidates):
        try:
            return k, read(Path(cand)), reasons
        except CorruptFileError as exc:
            reasons.append(str(exc))
            if on_corrupt is not None:
                on_corrupt(Path(cand), str(exc))
    return -1, None, reasons


class ChainStore:
    """Segment-based HDF5 store for one sampling run.

    Parameters
    ----------
    path : str or Path
        Final output file (``.h5``); segments live in ``<path>.parts/`` while running.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.parts = Path(str(self.path) + ".parts")
        self._checked: dict[str, tuple[tuple, bool, str, int]] = {}
        self._warned: set[str] = set()
        remove_stale_temporaries(self.path.parent, self.path.name)
        remove_stale_temporaries(self.parts)

    def _warn(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            warnings.warn(text, CorruptChainWarning, stacklevel=3)

    def final_file_corrupt(self) -> bool:
        """True if the final file exists but cannot be read as a complete chain file."""
        if not self.path.exists():
            return False
        try:
            with h5py.File(self.path, "r") as f:
                return not (f.attrs.get("format") == FORMAT and bool(f.attrs.get("complete")))
        except OSError:
            return True

    # -- state of the store -------------------------------------------------------------
    def is_complete(self) -> bool:
        """True if the consolidated final file exists and is marked complete."""
        if not self.path.exists():
            return False
        try:
            with h5py.File(self.path, "r") as f:
                return bool(f.attrs.get("complete", False))
        except OSError:
            return False

    def segments(self, repair: bool = False) -> list[Path]:
        """Readable segment files, in order, stopping at the first gap or bad segment.

        A segment that cannot be read or does not continue its predecessor ends the list
        with a :class:`CorruptChainWarning`; with ``repair`` it and every later segment are
        renamed ``*.corrupt`` so that a resumed run continues from the last good one.
        """
        if not self.parts.is_dir():
            return []
        found = {}
        for entry in self.parts.iterdir():
            m = _SEG_RE.match(entry.name)
            if m:
                found[int(m.group(1))] = entry
        out: list[Path] = []
        prev_end: int | None = None
        for k in range(len(found)):
            if k not in found:
                break
            seg = found[k]
            st = seg.stat()
            key = (st.st_size, st.st_mtime_ns, prev_end)
            hit = self._checked.get(seg.name)
            if hit is not None and hit[0] == key:
                ok, why, end = hit[1:]
            else:
                ok, why, end = _segment_ok(seg, prev_end)
                self._checked[seg.name] = (key, ok, why, end)
            if not ok:
                later = sorted(i for i in found if i >= k)
                action = ("set aside (renamed *.corrupt) with the "
                          f"{len(later) - 1} segment(s) after it; resuming from iteration "
                          f"{prev_end or 0}" if repair else "ignored with any later segments")
                self._warn(f"{self.parts}: checkpoint segment {seg.name} is corrupt ({why}); "
                           f"{action}")
                if repair:
                    for i in later:
                        set_aside(found[i])
                        self._checked.pop(found[i].name, None)
                break
            out.append(seg)
            prev_end = end
        return out

    def config(self) -> dict[str, Any] | None:
        """The run configuration recorded in the store, or None if it is empty.

        A final file that cannot be read is set aside (``<path>.corrupt``) with a
        :class:`CorruptChainWarning`, and the run continues from its segments, if any.
        """
        if self.final_file_corrupt():
            aside = set_aside(self.path)
            self._warn(f"{self.path}: the chain file is corrupt (truncated or not a linlim "
                       f"chain file); moved to {aside.name}; "
                       + ("resuming from its checkpoint segments" if self.segments()
                          else "no checkpoints remain, so the run starts again"))
        if self.is_complete():
            with h5py.File(self.path, "r") as f:
                return json.loads(f.attrs["config"])
        segs = self.segments()
        if not segs:
            return None
        with h5py.File(segs[0], "r") as f:
            return json.loads(f.attrs["config"])

    def last_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(iterations_done, state)`` from the newest good segment, or None (a corrupt
        newest segment is set aside with a warning, see :meth:`segments`)."""
        def read(seg: Path) -> tuple[int, dict[str, Any]]:
            try:
                with h5py.File(seg, "r") as f:
                    return int(f.attrs["iteration_end"]), read_tree(f["state"])
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                raise CorruptFileError(str(exc)) from None

        def corrupt(seg: Path, why: str) -> None:
            self._warn(f"{self.parts}: checkpoint segment {seg.name} is corrupt (its sampler "
                       f"state cannot be read: {why}); set aside (renamed *.corrupt), "
                       "resuming from the segment before it")
            set_aside(seg)
            self._checked.pop(seg.name, None)

        segs = self.segments(repair=True)
        return read_newest_good(segs[::-1], read, on_corrupt=corrupt)[1]

    # -- writing ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Remove a previous run's output (final file and segments)."""
        if self.parts.exists():
            shutil.rmtree(self.parts)
        if self.path.exists():
            self.path.unlink()

    def write_segment(
        self,
        config: dict[str, Any],
        iteration_start: int,
        iteration_end: int,
        arrays: dict[str, Any],
        state: dict[str, Any],
    ) -> None:
        """Append one checkpoint atomically.

        Parameters
        ----------
        config : dict
            JSON-serialisable run configuration (checked on resume).
        iteration_start, iteration_end : int
            Global iterations ``[start, end)`` covered by this segment.
        arrays : dict
            ``"iteration"`` (m,), ``"stats"`` {name: (chains, m)}, ``"draws"``
            (chains, m_draws, n) and ``"draw_iteration"`` (m_draws,).
        state : dict
            Nested dict with the complete sampler state after ``iteration_end``.
        """
        self.parts.mkdir(parents=True, exist_ok=True)
        k = len(self.segments(repair=True))
        cfg = json.dumps(config, sort_keys=True)

        def fill(f: h5py.File) -> None:
            f.attrs["format"] = FORMAT
            f.attrs["config"] = cfg
            f.attrs["segment"] = k
            f.attrs["iteration_start"] = int(iteration_start)
            f.attrs["iteration_end"] = int(iteration_end)
            write_tree(f.create_group("data"), arrays)
            write_tree(f.create_group("state"), state)

        atomic_h5(self.parts / f"seg_{k:06d}.h5", fill)

    def consolidate(self, num_warmup: int, save_warmup: bool) -> None:
        """Merge the segments into the final file atomically, then delete them.

        Datasets are filled segment by segment, so memory stays ``O(one segment)``.
        """
        segs = self.segments()
        if not segs:
            raise InputError(f"{self.parts}: no segments to consolidate")
        with h5py.File(segs[0], "r") as f0:
            cfg = f0.attrs["config"]
            config = json.loads(cfg)
        with h5py.File(segs[-1], "r") as fl:
            state = read_tree(fl["state"])
        chains, n = int(config["chains"]), int(config["size"])
        num_draws = int(config["num_draws"])

        def fill(f: h5py.File) -> None:
            f.attrs["format"] = FORMAT
            f.attrs["config"] = cfg
            d_draws = f.create_dataset("draws", (chains, num_draws, n), dtype="f8")
            d_wdraws = (f.create_dataset("warmup_draws", (chains, num_warmup, n), dtype="f8")
                        if save_warmup else None)
            g_s, g_w = f.create_group("sample_stats"), f.create_group("warmup_stats")
            stat_ds: dict[str, tuple[Any, Any]] = {}
            for seg in segs:
                with h5py.File(seg, "r") as s:
                    data = s["data"]
                    it = data["iteration"][()]
                    for name, ds in data["stats"].items():
                        if name not in stat_ds:
                            dt = ds.dtype
                            stat_ds[name] = (
                                g_w.create_dataset(name, (chains, num_warmup), dtype=dt),
                                g_s.create_dataset(name, (chains, num_draws), dtype=dt),
                            )
                        vals = ds[()]
                        w = it < num_warmup
                        if w.any():
                            stat_ds[name][0][:, it[w]] = vals[:, w]
                        if (~w).any():
                            stat_ds[name][1][:, it[~w] - num_warmup] = vals[:, ~w]
                    dit = data["draw_iteration"][()]
                    if dit.size:
                        dr = data["draws"][()]
                        w = dit < num_warmup
                        if w.any() and d_wdraws is not None:
                            d_wdraws[:, dit[w], :] = dr[:, w, :]
                        if (~w).any():
                            d_draws[:, dit[~w] - num_warmup, :] = dr[:, ~w, :]
            write_tree(f.create_group("state"), state)
            f.attrs["complete"] = True

        atomic_h5(self.path, fill)
        shutil.rmtree(self.parts)


def read_chains(path: str | os.PathLike) -> dict[str, Any]:
    """Read a chain file, finished or in progress.

    Parameters
    ----------
    path : str or Path
        The run's output path (as given to the sampler).

    Returns
    -------
    dict
        ``config`` (dict), ``complete`` (bool), ``draws`` (chains, m, n) float64,
        ``sample_stats`` {name: (chains, m)}, ``warmup_stats`` {name: (chains, m_w)},
        ``warmup_draws`` if saved, ``names`` (list of str) if the job stored parameter
        names (:func:`linlim.io.results.add_parameter_names`), and ``state`` (the last
        checkpoint's sampler state).
        For a run in progress only the iterations checkpointed so far are returned.
    """
    store = ChainStore(path)
    if store.final_file_corrupt():
        raise InputError(f"path: the chain file {store.path} is corrupt (truncated, or not a "
                         "complete linlim chain file) and cannot be read; rerun the sampler "
                         "(it sets the file aside and resumes from any checkpoints) or "
                         "restore the file")
    if store.is_complete():
        with h5py.File(store.path, "r") as f:
            check_chain_memory(*f["draws"].shape, what=f"read_chains({store.path})")
            out = read_tree(f)
            out["config"] = json.loads(f.attrs["config"])
            if "names" in f:
                out["names"] = read_names(f)
        out["complete"] = True
        return out
    segs = store.segments()
    if not segs:
        raise InputError(f"path: no chain file or checkpoints found at {store.path}")
    config = store.config()
    if config is None:  # pragma: no cover - segments() found files, so this cannot happen
        raise InputError(f"path: unreadable checkpoints at {store.parts}")
    num_warmup = int(config["num_warmup"])
    its, draws, dits = [], [], []
    stats: dict[str, list[np.ndarray]] = {}
    state: dict[str, Any] = {}
    for seg in segs:
        with h5py.File(seg, "r") as s:
            data = read_tree(s["data"])
            state = read_tree(s["state"])
        its.append(data["iteration"])
        dits.append(data["draw_iteration"])
        draws.append(data["draws"])
        for name, v in data["stats"].items():
            stats.setdefault(name, []).append(v)
    it = np.concatenate(its)
    dit = np.concatenate(dits)
    allst = {k: np.concatenate(v, axis=1) for k, v in stats.items()}
    alldr = np.concatenate(draws, axis=1)
    w = it < num_warmup
    wd = dit < num_warmup
    out = {
        "config": config,
        "complete": False,
        "draws": alldr[:, ~wd, :],
        "sample_stats": {k: v[:, ~w] for k, v in allst.items()},
        "warmup_stats": {k: v[:, w] for k, v in allst.items()},
        "state": state,
    }
    if config.get("save_warmup"):
        out["warmup_draws"] = alldr[:, wd, :]
    return out
