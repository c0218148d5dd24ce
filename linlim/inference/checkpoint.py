"""HDF5 checkpoints of optimiser state, written atomically (temp file + ``os.replace``).

A checkpoint holds the method name, a flat ``state`` dict (scalars as attributes, arrays as
datasets; lists of equal-length vectors such as L-BFGS memory as 2-D datasets) and the
history arrays, so an optimiser can resume and reproduce an uninterrupted run exactly.

Recovery. Each save keeps the previous checkpoint as ``.<name>.prev`` beside the new one.
If the newest file cannot be read (damaged after it was written: a full disk, a copy cut
short), :func:`load_checkpoint` warns (:class:`CorruptCheckpointWarning`) and resumes from
the previous one, which reproduces the uninterrupted run as exactly as the newest would.
Temporary files (``.ckpt-<pid>-*.h5.tmp``) left by a killed process are removed by the next
save or load in that folder, once the process that wrote them is gone.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..errors import InputError
from ..io.chains import remove_stale_files

__all__ = ["save_checkpoint", "load_checkpoint", "previous_checkpoint_path",
           "remove_stale_checkpoint_temporaries", "CorruptCheckpointWarning"]

_FORMAT = "linlim-optimizer-checkpoint-1"
_TMP_RE = re.compile(r"^\.ckpt-(?:(?P<pid>\d+)-)?.*\.h5\.tmp$")


class CorruptCheckpointWarning(UserWarning):
    """The newest checkpoint could not be read; the previous one was used."""


def previous_checkpoint_path(path: Any) -> str:
    """Where the checkpoint before ``path``'s newest is kept: ``<dir>/.<name>.prev``."""
    path = os.fspath(path)
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.prev")


def remove_stale_checkpoint_temporaries(directory: Any) -> list[str]:
    """Delete ``.ckpt-*.h5.tmp`` files in ``directory`` whose writer has ended.

    Names carry the writer's process id (``.ckpt-<pid>-XXXX.h5.tmp``); a file of a live
    process is kept. Names without one (older linlim) are removed.

    Returns
    -------
    list of str
        The paths removed.
    """
    return [str(p) for p in remove_stale_files(os.fspath(directory), _TMP_RE)]


def save_checkpoint(path: Any, method: str, state: dict, history: dict) -> None:
    """Write ``state`` and ``history`` to ``path`` (HDF5) atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its directory must exist.
    method : str
        Optimiser name (checked on load).
    state : dict
        Values: int/float/bool/str scalars, or arrays (NumPy or CuPy; copied to host).
    history : dict of 1-D arrays
    """
    import h5py

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_checkpoint_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".ckpt-{os.getpid()}-", suffix=".h5.tmp",
                               dir=directory)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["method"] = method
            g = f.create_group("state")
            for k, v in state.items():
                if v is None:
                    g.attrs[k] = "__none__"
                elif isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating, str)):
                    g.attrs[k] = v
                else:
                    g.create_dataset(k, data=np.asarray(to_numpy(v)))
            h = f.create_group("history")
            for k, v in history.items():
                h.create_dataset(k, data=np.asarray(v, dtype=np.float64))
        if os.path.exists(path):   # keep the last good checkpoint until the new one is in
            os.replace(path, previous_checkpoint_path(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: Any, method: str | None = None) -> tuple[dict, dict]:
    """Read ``(state, history)`` from a checkpoint written by :func:`save_checkpoint`.

    If the newest file is missing or unreadable but the previous one
    (:func:`previous_checkpoint_path`) is good, that one is returned with a
    :class:`CorruptCheckpointWarning`.

    Raises
    ------
    InputError
        If neither file exists, both are unreadable (corrupt), or the file is not a linlim
        checkpoint or was written by another method.
    """
    path = os.fspath(path)
    remove_stale_checkpoint_temporaries(os.path.dirname(os.path.abspath(path)))
    prev = previous_checkpoint_path(path)
    if not os.path.exists(path) and not os.path.exists(prev):
        raise InputError(f"load_checkpoint: resume file {path!r} does not exist")
    errors = []
    for cand in (path, prev):
        if not os.path.exists(cand):
            errors.append(f"{cand!r} is missing")
            continue
        try:
            out = _read(cand, method)
        except _Corrupt as exc:
            errors.append(str(exc))
            continue
        if cand == prev:
            warnings.warn(f"load_checkpoint: the newest checkpoint could not be used "
                          f"({errors[0]}); resuming from the previous one, {prev!r}",
                          CorruptCheckpointWarning, stacklevel=2)
        return out
    raise InputError(f"load_checkpoint: resume file {path!r} is corrupt and no good previous "
                     f"checkpoint exists ({'; '.join(errors)}); start again without resume")


class _Corrupt(Exception):
    pass


def _read(path: str, method: str | None) -> tuple[dict, dict]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _Corrupt(f"{path!r} cannot be opened as HDF5 (truncated?): {exc}") from None
    with f:
        if f.attrs.get("format") != _FORMAT:
            raise InputError(f"load_checkpoint: {path!r} is not a linlim optimiser checkpoint")
        m = str(f.attrs["method"])
        if method is not None and m != method:
            raise InputError(f"load_checkpoint: {path!r} was written by {m!r}, cannot resume "
                             f"{method!r}")
        try:
            state: dict[str, Any] = {}
            for k, v in f["state"].attrs.items():
                if isinstance(v, (bytes, str)) and str(v) == "__none__":
                    state[k] = None
                elif isinstance(v, np.generic):
                    state[k] = v.item()
                else:
                    state[k] = v
            for k in f["state"]:
                state[k] = f["state"][k][()]
            history = {k: f["history"][k][()] for k in f["history"]}
        except (OSError, KeyError, RuntimeError) as exc:
            raise _Corrupt(f"{path!r} is damaged: {exc}") from None
    return state, history
