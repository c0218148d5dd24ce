"""Spaces of plain arrays and tuples of arrays (product spaces).

linlim never wraps arrays in element classes. A *space* is described by metadata kept on
the operator: a shape (a tuple of ints) and a dtype, or, for a product space, a tuple of
shapes and a tuple of dtypes. Elements are plain arrays, or tuples of plain arrays.

All spaces carry the real inner product

.. math:: \\langle x, y \\rangle = \\mathrm{Re} \\sum \\overline{x} \\, y,

summed over the parts of a product space, so that a complex array is treated as the real
vector space of its real and imaginary parts (DESIGN.md, "Complex numbers").
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import check_same_module
from ..errors import DtypeError, ShapeError

__all__ = [
    "is_product_shape",
    "normalize_shape",
    "normalize_dtype",
    "tree_map",
    "inner",
    "norm",
    "zeros",
    "random_element",
    "check_element",
    "is_complex",
    "real_dtype",
    "complex_dtype",
    "unbroadcast",
]


def is_product_shape(shape: Any) -> bool:
    """True if ``shape`` describes a product space (a tuple of shapes)."""
    return isinstance(shape, tuple) and len(shape) > 0 and all(
        isinstance(s, tuple) for s in shape
    )


def normalize_shape(shape: Any) -> tuple:
    """Turn an int, a list or nested lists into a shape tuple (or tuple of shapes)."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    shape = tuple(shape)
    if len(shape) and all(isinstance(s, (tuple, list)) for s in shape):
        return tuple(normalize_shape(s) for s in shape)
    out = tuple(int(s) for s in shape)
    if any(n < 0 for n in out):
        raise ShapeError(f"shape: expected non-negative integer lengths, received {out}")
    return out


def normalize_dtype(dtype: Any, shape: tuple) -> Any:
    """Return ``np.dtype`` (or a tuple of them, nested like a product ``shape``)."""
    if is_product_shape(shape):
        if isinstance(dtype, (tuple, list)):
            if len(dtype) != len(shape):
                raise ShapeError(
                    f"dtype: expected {len(shape)} dtypes for a product space of "
                    f"{len(shape)} parts, received {len(dtype)}"
                )
            return tuple(normalize_dtype(d, s) for d, s in zip(dtype, shape))
        return tuple(normalize_dtype(dtype, s) for s in shape)
    return np.dtype(dtype)


def is_complex(dtype: Any) -> bool:
    """True for complex dtypes (any part complex, for a tuple)."""
    if isinstance(dtype, tuple):
        return any(is_complex(d) for d in dtype)
    return np.dtype(dtype).kind == "c"


def real_dtype(dtype: Any) -> np.dtype:
    """float32 for complex64/float32, float64 otherwise."""
    return np.dtype(np.float32) if np.dtype(dtype) in (np.float32, np.complex64) else (
        np.dtype(np.float64)
    )


def complex_dtype(dtype: Any) -> np.dtype:
    """complex64 for complex64/float32, complex128 otherwise."""
    return np.dtype(np.complex64) if np.dtype(dtype) in (np.float32, np.complex64) else (
        np.dtype(np.complex128)
    )


def tree_map(f: Callable, *xs: Any) -> Any:
    """Apply ``f`` part by part to arrays or to equally structured tuples of arrays."""
    if isinstance(xs[0], tuple):
        return tuple(tree_map(f, *parts) for parts in zip(*xs))
    return f(*xs)


def inner(x: Any, y: Any) -> float:
    """Real inner product ``Re sum(conj(x) * y)`` (summed over tuple parts)."""
    if isinstance(x, tuple):
        return float(sum(inner(a, b) for a, b in zip(x, y)))
    xp = type(x).__module__
    val = (x.conj() * y).real.sum() if x.dtype.kind == "c" else (x * y.real).sum()
    return float(val.get() if xp.startswith("cupy") else val)


def norm(x: Any) -> float:
    """Euclidean norm under the real inner product."""
    return float(np.sqrt(max(inner(x, x), 0.0)))


def zeros(shape: tuple, dtype: Any, xp: Any) -> Any:
    """Zero element of a space."""
    if is_product_shape(shape):
        return tuple(zeros(s, d, xp) for s, d in zip(shape, dtype))
    return xp.zeros(shape, dtype=dtype)


def random_element(shape: tuple, dtype: Any, xp: Any, rng: np.random.Generator) -> Any:
    """Standard-normal element of a space; complex parts have random real *and* imaginary
    parts, so a sign error in either half of an adjoint is visible."""
    if is_product_shape(shape):
        return tuple(random_element(s, d, xp, rng) for s, d in zip(shape, dtype))
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return xp.asarray(a.astype(dtype))


def check_element(x: Any, shape: tuple, dtype: Any, xp: Any, where: str) -> Any:
    """Check an element against its space and return it cast to the space's dtype.

    A safe cast is applied (float64 -> complex128, float32 -> float64); a cast that would
    lose information (complex -> real, float64 -> float32) is refused.

    Raises
    ------
    ShapeError, DtypeError, BackendMismatchError
        With a message naming ``where``, the expected and the received value.
    """
    if is_product_shape(shape):
        if not isinstance(x, tuple) or len(x) != len(shape):
            got = f"a tuple of {len(x)} arrays" if isinstance(x, tuple) else (
                f"{type(x).__name__}"
            )
            raise ShapeError(
                f"{where}: expected a tuple of {len(shape)} arrays with shapes {shape}, "
                f"received {got}"
            )
        return tuple(
            check_element(a, s, d, xp, f"{where}[{i}]")
            for i, (a, s, d) in enumerate(zip(x, shape, dtype))
        )
    if isinstance(x, tuple):
        raise ShapeError(
            f"{where}: expected one array of shape {shape}, received a tuple of {len(x)}"
        )
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(
            f"{where}: expected an array of shape {shape} and dtype {dtype}, received "
            f"{type(x).__name__}"
        )
    check_same_module(x, xp, where)
    if tuple(x.shape) != tuple(shape):
        raise ShapeError(f"{where}: expected shape {tuple(shape)}, received {tuple(x.shape)}")
    if x.dtype != dtype:
        if not np.can_cast(x.dtype, dtype, casting="safe"):
            raise DtypeError(
                f"{where}: expected dtype {dtype} (or one that casts to it safely), "
                f"received {x.dtype}"
            )
        x = x.astype(dtype)
    return x


def unbroadcast(a: Any, shape: tuple) -> Any:
    """Sum ``a`` over the axes that broadcasting added to reach its shape from ``shape``
    (the adjoint of broadcasting)."""
    extra = a.ndim - len(shape)
    if extra:
        a = a.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    if axes:
        a = a.sum(axis=axes, keepdims=True)
    return a
