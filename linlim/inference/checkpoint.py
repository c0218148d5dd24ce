"""HDF5 checkpoints of optimiser state, written atomically (temp file + ``os.replace``).

A checkpoint holds the method name, a flat ``state`` dict (scalars as attributes, arrays as
datasets; lists of equal-length vectors such as L-BFGS memory as 2-D datasets) and the
history arrays, so an optimiser can resume and reproduce an uninterrupted run exactly.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..errors import InputError

__all__ = ["save_checkpoint", "load_checkpoint"]

_FORMAT = "linlim-optimizer-checkpoint-1"


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
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".h5.tmp", dir=directory)
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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: Any, method: str | None = None) -> tuple[dict, dict]:
    """Read ``(state, history)`` from a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    InputError
        If the file is not a linlim checkpoint or was written by another method.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"load_checkpoint: resume file {path!r} does not exist")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _FORMAT:
            raise InputError(f"load_checkpoint: {path!r} is not a linlim optimiser checkpoint")
        m = str(f.attrs["method"])
        if method is not None and m != method:
            raise InputError(f"load_checkpoint: {path!r} was written by {m!r}, cannot resume "
                             f"{method!r}")
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
    return state, history
