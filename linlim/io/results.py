"""Result files of the jobs (``fit.h5``, names in ``chains.h5``) and the parameter names
they carry.

Every entry of ``theta`` gets one name, built from the :class:`~linlim.params.Params`
block it belongs to (:func:`parameter_names`):

- ``<block>[i, j]`` by default (singleton axes left out; no brackets when the block holds
  one value), e.g. ``fg_logflux[3]``;
- ``<block>.<component>[rest]`` when the block's entries along one axis are named
  components, e.g. the beam block ``beam.diameter_m``, ``beam.spectral_index`` (the keys
  the user writes under ``scenario.beam`` in YAML) or the gains ``gains.ln_amp[2]``,
  ``gains.phase[2]``;
- complex blocks add ``.re`` / ``.im`` (two reals per element).

The same names are written to ``fit.h5`` (dataset ``names``), ``chains.h5`` (dataset
``names``, added atomically after sampling) and the summary tables, so a name in the
config is the name in every output.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..errors import InputError, ShapeError
from ..params import Params
from .chains import _fsync_dir, atomic_h5, read_names, remove_stale_temporaries, temporary_path

__all__ = ["parameter_names", "write_fit_file", "read_fit_file", "read_names",
           "add_parameter_names"]

FIT_FORMAT = "linlim-fit-1"


def _index(idx: tuple[int, ...], shape: tuple[int, ...]) -> str:
    kept = [str(i) for i, n in zip(idx, shape) if n != 1]
    return f"[{','.join(kept)}]" if kept else ""


def parameter_names(params: Params,
                    components: Mapping[str, tuple[int, Sequence[str]]] | None = None
                    ) -> list[str]:
    """One name per entry of ``theta``, in order.

    Parameters
    ----------
    params : Params
        The parameter layout.
    components : dict, optional
        ``{block: (axis, names)}``: the entries of ``block`` along ``axis`` are the named
        components ``names`` (``len(names) == shape[axis]``).

    Returns
    -------
    list of str
        ``params.size`` names (see the module docstring for the rules).

    Raises
    ------
    InputError
        A component entry for a block that does not exist.
    ShapeError
        A component list whose length is not the block's size along its axis.

    Examples
    --------
    >>> from linlim.params import ParamBlock, Params
    >>> p = Params([ParamBlock("flux", (2,)), ParamBlock("beam", (1, 2))])
    >>> parameter_names(p, {"beam": (-1, ["diameter_m", "spectral_index"])})
    ['flux[0]', 'flux[1]', 'beam.diameter_m', 'beam.spectral_index']
    """
    components = dict(components or {})
    unknown = sorted(set(components) - set(params.names))
    if unknown:
        raise InputError(f"parameter_names: components: no block named {unknown}; blocks are "
                         f"{params.names}")
    out: list[str] = []
    for b in params.blocks:
        shape = tuple(b.shape)
        comp = components.get(b.name)
        if comp is not None:
            axis, labels = int(comp[0]) % len(shape), [str(s) for s in comp[1]]
            if len(labels) != shape[axis]:
                raise ShapeError(f"parameter_names: components of block {b.name!r}: expected "
                                 f"{shape[axis]} names along axis {axis} of shape {shape}, "
                                 f"received {len(labels)}")
            rest = shape[:axis] + shape[axis + 1:]
        for idx in np.ndindex(*shape):
            if comp is None:
                name = b.name + _index(idx, shape)
            else:
                name = (f"{b.name}.{labels[idx[axis]]}"
                        + _index(idx[:axis] + idx[axis + 1:], rest))
            out += [name + ".re", name + ".im"] if b.dtype.kind == "c" else [name]
    return out


def _names_dataset(f: h5py.Group, names: Sequence[str], size: int, where: str) -> None:
    names = [str(n) for n in names]
    if len(names) != size:
        raise ShapeError(f"{where}: names: expected {size} names (one per parameter), "
                         f"received {len(names)}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"{where}: names: expected unique names, received duplicates {dup}")
    f.create_dataset("names", data=np.array(names, dtype=object),
                     dtype=h5py.string_dtype("utf-8"))


def write_fit_file(path: str | os.PathLike, names: Sequence[str], x: Any, error: Any,
                   fisher: Any, history: Mapping[str, Any] | None = None,
                   truth: Any = None) -> None:
    """Write a MAP fit's ``fit.h5`` atomically.

    Parameters
    ----------
    path : path
        The file.
    names : sequence of str, (n,)
        Parameter names (:func:`parameter_names`).
    x, error : array (n,)
        MAP and marginal (Fisher) errors.
    fisher : array (n, n)
        Fisher matrix at the MAP.
    history : dict of 1-D arrays, optional
        Optimiser history (group ``history``).
    truth : array (n,), optional
        True values, when known (simulations).
    """
    x = np.asarray(x, dtype=np.float64)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = FIT_FORMAT
        _names_dataset(f, names, x.size, "write_fit_file")
        f["map"], f["error"], f["fisher"] = x, np.asarray(error), np.asarray(fisher)
        if truth is not None:
            f["truth"] = np.asarray(truth, dtype=np.float64)
        for key, arr in (history or {}).items():
            f[f"history/{key}"] = np.asarray(arr)

    atomic_h5(path, fill)


def read_fit_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``fit.h5``: ``names`` (list of str), ``map``, ``error``, ``fisher``, ``truth``
    (if stored), ``history`` (dict) and ``by_name`` ({name: (map, error)})."""
    with h5py.File(path, "r") as f:
        out: dict[str, Any] = {"names": read_names(f)}
        for k in ("map", "error", "fisher", "truth"):
            if k in f:
                out[k] = f[k][()]
        out["history"] = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
    out["by_name"] = {n: (float(m), float(e))
                      for n, m, e in zip(out["names"], out["map"], out["error"])}
    return out


def add_parameter_names(path: str | os.PathLike, names: Sequence[str]) -> None:
    """Store ``names`` in a finished chain file (dataset ``names``), atomically.

    The file is copied to a temporary, the names written there and the copy renamed over
    the original, so a kill leaves the old file or the new one. A file that already holds
    exactly these names is left alone; different names replace the old ones.

    Raises
    ------
    ShapeError
        ``len(names)`` is not the number of parameters of the draws.
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "draws" not in f:
            raise InputError(f"add_parameter_names: {path} is not a finished chain file "
                             "(no draws)")
        n = int(f["draws"].shape[-1])
        if "names" in f and read_names(f) == [str(s) for s in names]:
            return
    remove_stale_temporaries(path.parent, path.name)
    tmp = temporary_path(path)
    try:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            if "names" in f:
                del f["names"]
            _names_dataset(f, names, n, "add_parameter_names")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
