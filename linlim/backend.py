"""Array backends: NumPy (CPU, with numba kernels) and CuPy (GPU).

linlim code asks for the array module once (``xp``) and is written against it. The active
backend is chosen, in order of precedence, by a ``with use_backend(...)`` block,
:func:`set_backend`, or the ``LINLIM_BACKEND`` environment variable (default ``"numpy"``).
Operators bind the backend that is active when they are *constructed*: their fixed arrays
are moved to that device once, and arrays from another module are refused with a message
that says how to move them (arrays never silently cross devices).

CuPy is imported lazily, the first time it is asked for. Asking for it on a machine without
a usable GPU raises :class:`~linlim.errors.BackendError` explaining how to fall back.

Examples
--------
>>> import linlim
>>> linlim.get_backend()
'numpy'
>>> with linlim.use_backend("numpy"):
...     xp = linlim.get_xp()
>>> xp.__name__
'numpy'
"""

from __future__ import annotations

import contextlib
import os
import threading
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from .errors import BackendError, BackendMismatchError

__all__ = [
    "BACKENDS",
    "HAS_NUMBA",
    "get_backend",
    "set_backend",
    "use_backend",
    "get_xp",
    "xp_of",
    "backend_name_of",
    "asarray",
    "to_numpy",
    "check_same_module",
    "cupy_available",
    "scatter_add",
]

BACKENDS = ("numpy", "cupy")

try:  # numba is a hard dependency on CPU; the flag exists so errors can say so.
    import numba  # noqa: F401

    HAS_NUMBA = True
except ImportError:  # pragma: no cover - numba is in install_requires
    HAS_NUMBA = False

_state = threading.local()
_default: str | None = None


def _validate(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise BackendError(
            f"backend: expected one of {BACKENDS}, received {name!r}"
        )
    return name.lower()


def _import_cupy() -> ModuleType:
    """Import CuPy and check that a GPU can actually be used."""
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "backend 'cupy' requested but CuPy is not installed; install the GPU extra "
            "(pip install 'linlim[gpu]') on a machine with a CUDA GPU, or fall back with "
            "linlim.set_backend('numpy') / LINLIM_BACKEND=numpy"
        ) from exc
    try:
        ndev = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendError(
            f"backend 'cupy' requested but no usable GPU was found ({exc}); fall back "
            "with linlim.set_backend('numpy') / LINLIM_BACKEND=numpy"
        ) from exc
    if ndev < 1:
        raise BackendError(
            "backend 'cupy' requested but CUDA reports 0 devices; fall back with "
            "linlim.set_backend('numpy') / LINLIM_BACKEND=numpy"
        )
    return cupy


def cupy_available() -> bool:
    """Return True if CuPy imports and sees at least one GPU."""
    try:
        _import_cupy()
    except BackendError:
        return False
    return True


def get_backend() -> str:
    """Name of the active backend: ``"numpy"`` or ``"cupy"``."""
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    if _default is not None:
        return _default
    return _validate(os.environ.get("LINLIM_BACKEND", "numpy"))


def set_backend(name: str) -> None:
    """Set the process-wide default backend.

    Parameters
    ----------
    name : {"numpy", "cupy"}
        Backend to use for operators constructed from now on.

    Raises
    ------
    BackendError
        If the name is unknown, or ``"cupy"`` is requested without a usable GPU.
    """
    global _default
    name = _validate(name)
    if name == "cupy":
        _import_cupy()
    _default = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[ModuleType]:
    """Context manager that activates a backend inside a ``with`` block.

    Yields the array module.
    """
    name = _validate(name)
    xp = get_xp(name)
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append(name)
    try:
        yield xp
    finally:
        stack.pop()


def get_xp(name: str | None = None) -> ModuleType:
    """Array module of a backend (the active one by default)."""
    name = get_backend() if name is None else _validate(name)
    if name == "numpy":
        return np
    return _import_cupy()


def backend_name_of(xp: ModuleType) -> str:
    """Backend name of an array module."""
    return "cupy" if xp.__name__.startswith("cupy") else "numpy"


def xp_of(*arrays: Any) -> ModuleType:
    """Array module of the given arrays (tuples are searched), NumPy for scalars."""
    for a in arrays:
        if isinstance(a, (tuple, list)):
            if a:
                return xp_of(*a)
            continue
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy

            return cupy
    return np


def asarray(a: Any, xp: ModuleType | None = None, dtype: Any = None) -> Any:
    """Move ``a`` to the device of ``xp`` (explicitly, at set-up time) and cast."""
    xp = get_xp() if xp is None else xp
    if xp is np:
        return np.asarray(to_numpy(a), dtype=dtype)
    return xp.asarray(a, dtype=dtype)


def to_numpy(a: Any) -> np.ndarray:
    """Copy an array from any backend to host NumPy memory."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def check_same_module(a: Any, xp: ModuleType, where: str) -> None:
    """Raise if array ``a`` does not belong to array module ``xp``.

    Parameters
    ----------
    a : array
        The received array.
    xp : module
        The module the operator was bound to at construction.
    where : str
        Name of the operator/method/argument, for the message.
    """
    have = "cupy" if type(a).__module__.startswith("cupy") else "numpy"
    want = backend_name_of(xp)
    if have != want:
        how = "cupy.asarray(x)" if want == "cupy" else "linlim.backend.to_numpy(x)"
        raise BackendMismatchError(
            f"{where}: expected a {want} array, received a {have} array; the operator was "
            f"built under the {want!r} backend. Move the input with {how}, or rebuild the "
            f"operator under linlim.use_backend({have!r})."
        )


def scatter_add(out: Any, index: Any, values: Any, axis: int = 0) -> Any:
    """Add ``values`` into ``out`` at ``index`` along ``axis`` (repeated indices sum).

    This is the adjoint of ``take(x, index, axis)``; it works on NumPy and CuPy.
    """
    xp = xp_of(out)
    sl = (slice(None),) * (axis % out.ndim) + (index,)
    if xp is np:
        np.add.at(out, sl, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        if out.dtype.kind == "c":  # cupyx.scatter_add has no complex support
            v = xp.asarray(values).astype(out.dtype, copy=False)
            cupyx.scatter_add(out.real, sl, v.real)
            cupyx.scatter_add(out.imag, sl, v.imag)
        else:
            cupyx.scatter_add(out, sl, values)
    return out
