"""Optimiser checkpoints: one HDF5 file per run, kept by the one checkpoint system.

A checkpoint holds the method name, a flat ``state`` dict (scalars, arrays; lists of
equal-length vectors such as L-BFGS memory as 2-D arrays) and the history arrays, so an
optimiser can resume and reproduce an uninterrupted run exactly.

Writing, rotation, recovery and clean-up are those of :mod:`linlim.io.chains` (the
samplers' chain store uses the same functions):

- each save is atomic (:func:`~linlim.io.chains.atomic_h5`) and keeps the previous
  checkpoint as ``.<name>.prev`` beside the new one (rotation);
- if the newest file cannot be read (damaged after it was written: a full disk, a copy cut
  short), :func:`load_checkpoint` warns (:class:`CorruptCheckpointWarning`) and resumes from
  the previous one (:func:`~linlim.io.chains.read_newest_good`), which reproduces the
  uninterrupted run as exactly as the newest would;
- temporaries left by a killed process (``.<name>.tmp<pid>``; ``.ckpt-<pid>-*.h5.tmp``
  from linlim before 0.9) are removed by the next save or load in that folder, once the
  process that wrote them is gone.

File format ``linlim-optimizer-checkpoint-2``: groups ``state`` and ``history`` written by
:func:`~linlim.io.chains.write_tree` (scalars as attributes). Files of format 1 (scalars as
plain attributes) still load.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..errors import InputError
from ..io.chains import (
    CorruptChainWarning,
    CorruptFileError,
    atomic_h5,
    read_newest_good,
    read_tree,
    remove_stale_files,
    remove_stale_temporaries,
    write_tree,
)

__all__ = ["save_checkpoint", "load_checkpoint", "previous_checkpoint_path",
           "remove_stale_checkpoint_temporaries", "CorruptCheckpointWarning"]

_FORMAT = "linlim-optimizer-checkpoint-2"
_FORMAT_1 = "linlim-optimizer-checkpoint-1"
_LEGACY_TMP_RE = re.compile(r"^\.ckpt-(?:(?P<pid>\d+)-)?.*\.h5\.tmp$")
_SCALARS = (bool, np.bool_, int, np.integer, float, np.floating, str)


class CorruptCheckpointWarning(CorruptChainWarning):
    """The newest checkpoint could not be read; the previous one was used."""


def previous_checkpoint_path(path: Any) -> str:
    """Where the checkpoint before ``path``'s newest is kept: ``<dir>/.<name>.prev``."""
    path = os.fspath(path)
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.prev")


def remove_stale_checkpoint_temporaries(directory: Any, name: str = "") -> list[str]:
    """Delete checkpoint temporaries in ``directory`` whose writer has ended.

    Names carry the writer's process id (``.<name>.tmp<pid>``, or ``.ckpt-<pid>-XXXX.h5.tmp``
    from older linlim); a file of a live process is kept, a legacy name without a pid is
    removed.

    Parameters
    ----------
    directory : path
        Folder to clean.
    name : str
        Only temporaries of checkpoint files whose name starts with this (default: all).

    Returns
    -------
    list of str
        The paths removed.
    """
    directory = os.fspath(directory)
    removed = remove_stale_temporaries(directory, name)
    removed += remove_stale_files(directory, _LEGACY_TMP_RE)
    return [str(p) for p in removed]


def save_checkpoint(path: Any, method: str, state: dict, history: dict) -> None:
    """Write ``state`` and ``history`` to ``path`` (HDF5) atomically, keeping the previous.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its directory must exist.
    method : str
        Optimiser name (checked on load).
    state : dict
        Values: None, int/float/bool/str scalars, or arrays (NumPy or CuPy; copied to host;
        a list of equal-length vectors becomes a 2-D array).
    history : dict of 1-D arrays
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    remove_stale_checkpoint_temporaries(directory, name)
    tree = {k: v if v is None or isinstance(v, _SCALARS) else np.asarray(to_numpy(v))
            for k, v in state.items()}

    def fill(f: Any) -> None:
        f.attrs["format"] = _FORMAT
        f.attrs["method"] = method
        write_tree(f.create_group("state"), tree, scalar_attrs=True)
        write_tree(f.create_group("history"),
                   {k: np.asarray(v, dtype=np.float64) for k, v in history.items()})

    atomic_h5(path, fill, keep_previous=previous_checkpoint_path(path))


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
    directory, name = os.path.split(os.path.abspath(path))
    remove_stale_checkpoint_temporaries(directory, name)
    prev = previous_checkpoint_path(path)
    if not os.path.exists(path) and not os.path.exists(prev):
        raise InputError(f"load_checkpoint: resume file {path!r} does not exist")
    k, out, errors = read_newest_good([path, prev], lambda p: _read(str(p), method))
    if k < 0:
        raise InputError(f"load_checkpoint: resume file {path!r} is corrupt and no good "
                         f"previous checkpoint exists ({'; '.join(errors)}); start again "
                         "without resume")
    if k == 1:
        warnings.warn(f"load_checkpoint: the newest checkpoint could not be used "
                      f"({errors[0]}); resuming from the previous one, {prev!r}",
                      CorruptCheckpointWarning, stacklevel=2)
    return out


def _read(path: str, method: str | None) -> tuple[dict, dict]:
    import h5py

    if not Path(path).exists():
        raise CorruptFileError(f"{path!r} is missing")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(f"{path!r} cannot be opened as HDF5 (truncated?): "
                               f"{exc}") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt not in (_FORMAT, _FORMAT_1):
            raise InputError(f"load_checkpoint: {path!r} is not a linlim optimiser checkpoint "
                             f"(format {fmt!r}, expected {_FORMAT!r})")
        m = str(f.attrs["method"])
        if method is not None and m != method:
            raise InputError(f"load_checkpoint: {path!r} was written by {m!r}, cannot resume "
                             f"{method!r}")
        try:
            state = read_tree(f["state"])
            if fmt == _FORMAT_1:                 # scalars were plain attributes
                for k, v in f["state"].attrs.items():
                    state[k] = (None if isinstance(v, (bytes, str)) and str(v) == "__none__"
                                else v.item() if isinstance(v, np.generic) else v)
            history = read_tree(f["history"])
        except (OSError, KeyError, RuntimeError) as exc:
            raise CorruptFileError(f"{path!r} is damaged: {exc}") from None
    return state, history
