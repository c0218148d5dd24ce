"""Generic linear building blocks.

Every class keeps its forward (``_matvec``) and adjoint (``_rmatvec``) side by side; the
adjoint is derived under the real inner product ``<x, y> = Re sum(conj(x) y)`` in each
docstring's Notes. A complex result destined for a real input space keeps its real part
(done once, in the base class).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import asarray, get_xp, scatter_add
from ..errors import InputError, ShapeError
from ..validation import check_axes, check_axis, check_finite, check_indices
from .base import LinearOperator
from .spaces import (
    complex_dtype,
    is_product_shape,
    normalize_shape,
    real_dtype,
    unbroadcast,
)

__all__ = [
    "Identity",
    "Diagonal",
    "MatrixMult",
    "Reshape",
    "Transpose",
    "Take",
    "Slice",
    "ZeroPad",
    "FFT",
    "Real",
    "Imag",
    "Conj",
    "SumAxis",
    "Broadcast",
    "Select",
]


class Identity(LinearOperator):
    """The identity on a space: ``y = x``, ``A^H = A``.

    Parameters
    ----------
    shape : tuple of int (or tuple of shapes)
        Shape of the space.
    dtype : dtype
        dtype of the space.
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.float64, xp: Any = None) -> None:
        super().__init__(shape, shape, dtype, dtype, xp=xp)

    def _matvec(self, x: Any) -> Any:
        return x

    def _rmatvec(self, y: Any) -> Any:
        return y


class Diagonal(LinearOperator):
    """Elementwise multiplication by a fixed array: ``y = d * x``.

    Parameters
    ----------
    diag : array
        Multiplier, broadcastable against ``in_shape``; real or complex.
    in_shape : tuple of int, optional
        Input shape (default ``diag.shape``); the output shape is the broadcast shape.
    in_dtype : dtype, optional
        Input dtype (default: ``diag``'s dtype). The output dtype is the result type.

    Notes
    -----
    ``<d x, y> = Re sum conj(d x) y = Re sum conj(x) (conj(d) y)``, so the adjoint is
    ``A^H y = unbroadcast(conj(d) * y)`` (broadcast axes summed back to ``in_shape``).
    """

    _abstract = False

    def __init__(self, diag: Any, in_shape: Any = None, in_dtype: Any = None,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        d = asarray(diag, xp)
        in_shape = d.shape if in_shape is None else normalize_shape(in_shape)
        in_dtype = d.dtype if in_dtype is None else np.dtype(in_dtype)
        try:
            out_shape = np.broadcast_shapes(d.shape, tuple(in_shape))
        except ValueError as exc:
            raise ShapeError(
                f"Diagonal: diag of shape {d.shape} does not broadcast with in_shape "
                f"{tuple(in_shape)}"
            ) from exc
        if xp is np:   # host arrays only (no device sync): a NaN/inf multiplier is an error
            check_finite(d, "diag", "Diagonal")
        super().__init__(in_shape, out_shape, in_dtype, np.result_type(d.dtype, in_dtype), xp)
        self.diag = d

    def _matvec(self, x: Any) -> Any:
        return self.diag * x

    def _rmatvec(self, y: Any) -> Any:
        return unbroadcast(self.diag.conj() * y, self.in_shape)


class MatrixMult(LinearOperator):
    """Multiply by a dense matrix along one axis: ``y[..., i, ...] = sum_j M[i, j] x[..., j, ...]``.

    Parameters
    ----------
    matrix : array, shape (m, n)
        The matrix (real or complex).
    in_shape : tuple of int, optional
        Input shape; default ``(n,)``. ``in_shape[axis]`` must equal ``n``.
    axis : int
        Axis of the input the matrix acts on.
    in_dtype : dtype, optional
        Input dtype (default: the matrix dtype).

    Notes
    -----
    ``<M x, y> = Re sum conj(M x) y = Re sum conj(x) (M^H y)``: the adjoint multiplies by
    the conjugate transpose along the same axis.
    """

    _abstract = False

    def __init__(self, matrix: Any, in_shape: Any = None, axis: int = 0,
                 in_dtype: Any = None, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        M = asarray(matrix, xp)
        if M.ndim != 2:
            raise ShapeError(f"MatrixMult: matrix must be 2-D, received shape {M.shape}")
        if xp is np:   # host arrays only (no device sync)
            check_finite(M, "matrix", "MatrixMult")
        in_shape = (M.shape[1],) if in_shape is None else normalize_shape(in_shape)
        axis = check_axis(axis, len(in_shape), "axis", "MatrixMult")
        if in_shape[axis] != M.shape[1]:
            raise ShapeError(
                f"MatrixMult: in_shape[{axis}] = {in_shape[axis]} must equal the matrix's "
                f"{M.shape[1]} columns"
            )
        out_shape = list(in_shape)
        out_shape[axis] = M.shape[0]
        in_dtype = M.dtype if in_dtype is None else np.dtype(in_dtype)
        super().__init__(in_shape, tuple(out_shape), in_dtype,
                         np.result_type(M.dtype, in_dtype), xp)
        self.matrix, self.axis = M, axis % len(in_shape)
        self._MH = M.conj().T

    def _apply(self, M: Any, x: Any) -> Any:
        xm = self.xp.moveaxis(x, self.axis, 0)
        y = self.xp.tensordot(M, xm, axes=(1, 0))
        return self.xp.moveaxis(y, 0, self.axis)

    def _matvec(self, x: Any) -> Any:
        return self._apply(self.matrix, x)

    def _rmatvec(self, y: Any) -> Any:
        return self._apply(self._MH, y)


class Reshape(LinearOperator):
    """Reshape (C order): ``y = x.reshape(out_shape)``; the adjoint reshapes back."""

    _abstract = False

    def __init__(self, in_shape: Any, out_shape: Any, dtype: Any = np.float64,
                 xp: Any = None) -> None:
        if int(np.prod(in_shape)) != int(np.prod(out_shape)):
            raise ShapeError(
                f"Reshape: cannot reshape {tuple(in_shape)} ({int(np.prod(in_shape))} "
                f"elements) to {tuple(out_shape)} ({int(np.prod(out_shape))} elements)"
            )
        super().__init__(in_shape, out_shape, dtype, dtype, xp=xp)

    def _matvec(self, x: Any) -> Any:
        return x.reshape(self.out_shape)

    def _rmatvec(self, y: Any) -> Any:
        return y.reshape(self.in_shape)


class Transpose(LinearOperator):
    """Permute axes: ``y = x.transpose(axes)``; the adjoint applies the inverse permutation."""

    _abstract = False

    def __init__(self, in_shape: Any, axes: Sequence[int], dtype: Any = np.float64,
                 xp: Any = None) -> None:
        in_shape = normalize_shape(in_shape)
        axes = tuple(int(a) for a in axes)
        if sorted(axes) != list(range(len(in_shape))):
            raise ShapeError(
                f"Transpose: axes {axes} is not a permutation of {len(in_shape)} axes"
            )
        super().__init__(in_shape, tuple(in_shape[a] for a in axes), dtype, dtype, xp=xp)
        self.axes, self._inverse = axes, tuple(np.argsort(axes))

    def _matvec(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def _rmatvec(self, y: Any) -> Any:
        return y.transpose(self._inverse)


class Take(LinearOperator):
    """Select entries by integer index along an axis: ``y = take(x, index, axis)``.

    Repeated indices are allowed. Notes: the adjoint scatters, adding repeats:
    ``(A^H y)[..., index[k], ...] += y[..., k, ...]``.
    """

    _abstract = False

    def __init__(self, in_shape: Any, index: Any, axis: int = 0,
                 dtype: Any = np.float64, xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        in_shape = normalize_shape(in_shape)
        idx = check_indices(index, "index", "Take")
        axis = check_axis(axis, len(in_shape), "axis", "Take")
        if idx.size and (idx.min() < 0 or idx.max() >= in_shape[axis]):
            raise InputError(
                f"Take: index must lie in [0, {in_shape[axis]}), received values from "
                f"{idx.min()} to {idx.max()}"
            )
        out_shape = list(in_shape)
        out_shape[axis] = idx.size
        super().__init__(in_shape, tuple(out_shape), dtype, dtype, xp)
        self.index, self.axis = asarray(idx, xp), axis

    def _matvec(self, x: Any) -> Any:
        return self.xp.take(x, self.index, axis=self.axis)

    def _rmatvec(self, y: Any) -> Any:
        out = self.xp.zeros(self.in_shape, dtype=np.result_type(y.dtype, self.in_dtype))
        return scatter_add(out, self.index, y, axis=self.axis)


class Slice(LinearOperator):
    """Basic slicing ``y = x[key]`` (slices only); the adjoint embeds y into zeros."""

    _abstract = False

    def __init__(self, in_shape: Any, key: Sequence[slice], dtype: Any = np.float64,
                 xp: Any = None) -> None:
        in_shape = normalize_shape(in_shape)
        key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        if not all(isinstance(k, slice) for k in key):
            raise InputError(
                f"Slice: key must be a tuple of slice objects, received {key!r}; use Take "
                "for integer indices"
            )
        if len(key) > len(in_shape):
            raise ShapeError(f"Slice: key has {len(key)} slices for in_shape {in_shape} "
                             f"({len(in_shape)} axes)")
        for ax, k in enumerate(key):
            if k.step == 0:
                raise InputError(f"Slice: key[{ax}] = {k!r} has step 0 (in_shape {in_shape}); "
                                 "expected a non-zero step")
        out_shape = np.empty(in_shape, dtype=bool)[key].shape
        empty = [ax for ax in range(len(key)) if out_shape[ax] == 0 < in_shape[ax]]
        if empty:
            ax = empty[0]
            raise ShapeError(f"Slice: key[{ax}] = {key[ax]!r} selects nothing from axis {ax} "
                             f"of length {in_shape[ax]} (in_shape {in_shape}, output shape "
                             f"would be {out_shape})")
        super().__init__(in_shape, out_shape, dtype, dtype, xp=xp)
        self.key = key

    def _matvec(self, x: Any) -> Any:
        return x[self.key]

    def _rmatvec(self, y: Any) -> Any:
        out = self.xp.zeros(self.in_shape, dtype=y.dtype)
        out[self.key] = y
        return out


class ZeroPad(LinearOperator):
    """Zero padding: ``pad_width`` as in ``numpy.pad``; the adjoint crops."""

    _abstract = False

    def __init__(self, in_shape: Any, pad_width: Sequence[tuple[int, int]],
                 dtype: Any = np.float64, xp: Any = None) -> None:
        in_shape = normalize_shape(in_shape)
        pw = tuple((int(a), int(b)) for a, b in pad_width)
        if len(pw) != len(in_shape) or any(a < 0 or b < 0 for a, b in pw):
            raise InputError(
                f"ZeroPad: pad_width needs {len(in_shape)} non-negative (before, after) "
                f"pairs, received {pad_width!r}"
            )
        super().__init__(in_shape, tuple(n + a + b for n, (a, b) in zip(in_shape, pw)),
                         dtype, dtype, xp=xp)
        self.pad_width = pw
        self._crop = tuple(slice(a, a + n) for n, (a, _) in zip(in_shape, pw))

    def _matvec(self, x: Any) -> Any:
        return self.xp.pad(x, self.pad_width)

    def _rmatvec(self, y: Any) -> Any:
        return y[self._crop]


class FFT(LinearOperator):
    """Discrete Fourier transform along one axis, ``y = fft(x, axis, norm)``.

    Parameters
    ----------
    in_shape : tuple of int
    axis : int
    norm : {"backward", "ortho", "forward"}
        As in ``numpy.fft``; "ortho" makes the operator unitary.
    in_dtype : dtype
        Real or complex input; the output is complex.

    Notes
    -----
    With the DFT matrix ``W`` (``W_kn = exp(-2 pi i k n / N)``) times a real scale ``c``,
    ``A^H y = c W^H y = conj(c W conj(y)) = conj(fft(conj(y), norm))``.
    """

    _abstract = False

    def __init__(self, in_shape: Any, axis: int = -1, norm: str = "backward",
                 in_dtype: Any = np.complex128, xp: Any = None) -> None:
        if norm not in ("backward", "ortho", "forward"):
            raise InputError(
                f"FFT: norm must be 'backward', 'ortho' or 'forward', received {norm!r}"
            )
        axis = check_axis(axis, len(normalize_shape(in_shape)), "axis", "FFT")
        super().__init__(in_shape, in_shape, in_dtype, complex_dtype(in_dtype), xp=xp)
        self.axis, self.norm = axis, norm

    def _matvec(self, x: Any) -> Any:
        return self.xp.fft.fft(x, axis=self.axis, norm=self.norm)

    def _rmatvec(self, y: Any) -> Any:
        return self.xp.fft.fft(y.conj(), axis=self.axis, norm=self.norm).conj()


class Real(LinearOperator):
    """Real part, complex -> real: ``y = Re x``.

    Notes: ``<Re x, y> = sum Re(x) y = Re sum conj(x) y`` for real ``y``, so ``A^H y = y``
    (as a complex array).
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.complex128, xp: Any = None) -> None:
        super().__init__(shape, shape, complex_dtype(dtype), real_dtype(dtype), xp=xp)

    def _matvec(self, x: Any) -> Any:
        return x.real

    def _rmatvec(self, y: Any) -> Any:
        return y.astype(self.in_dtype)


class Imag(LinearOperator):
    """Imaginary part, complex -> real: ``y = Im x``.

    Notes: ``Re sum conj(x) (i y) = sum Im(x) y``, so ``A^H y = i y``.
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.complex128, xp: Any = None) -> None:
        super().__init__(shape, shape, complex_dtype(dtype), real_dtype(dtype), xp=xp)

    def _matvec(self, x: Any) -> Any:
        return x.imag

    def _rmatvec(self, y: Any) -> Any:
        return 1j * y


class Conj(LinearOperator):
    """Complex conjugation, R-linear but not C-linear: ``y = conj(x)``.

    Notes: ``Re sum conj(conj x) y = Re sum x y = Re sum conj(x) conj(y)``, so
    ``A^H y = conj(y)``.
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.complex128, xp: Any = None) -> None:
        super().__init__(shape, shape, dtype, dtype, xp=xp)

    def _matvec(self, x: Any) -> Any:
        return x.conj()

    def _rmatvec(self, y: Any) -> Any:
        return y.conj()


class SumAxis(LinearOperator):
    """Sum over one or more axes: ``y = x.sum(axis)``; the adjoint broadcasts back."""

    _abstract = False

    def __init__(self, in_shape: Any, axis: int | Sequence[int], dtype: Any = np.float64,
                 xp: Any = None) -> None:
        in_shape = normalize_shape(in_shape)
        axes = check_axes(axis, len(in_shape), "axis", "SumAxis")
        out_shape = tuple(n for i, n in enumerate(in_shape) if i not in axes)
        super().__init__(in_shape, out_shape, dtype, dtype, xp=xp)
        self.axes = axes
        self._keep = tuple(1 if i in axes else n for i, n in enumerate(in_shape))

    def _matvec(self, x: Any) -> Any:
        return x.sum(axis=self.axes)

    def _rmatvec(self, y: Any) -> Any:
        return self.xp.broadcast_to(y.reshape(self._keep), self.in_shape).copy()


class Broadcast(LinearOperator):
    """Broadcast to a larger shape (NumPy rules); the adjoint sums over broadcast axes."""

    _abstract = False

    def __init__(self, in_shape: Any, out_shape: Any, dtype: Any = np.float64,
                 xp: Any = None) -> None:
        in_shape, out_shape = normalize_shape(in_shape), normalize_shape(out_shape)
        try:
            ok = np.broadcast_shapes(in_shape, out_shape) == out_shape
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise ShapeError(f"Broadcast: in_shape {in_shape} does not broadcast to "
                             f"out_shape {out_shape} (NumPy rules: trailing axes must be "
                             "equal or 1 in in_shape)")
        super().__init__(in_shape, out_shape, dtype, dtype, xp=xp)

    def _matvec(self, x: Any) -> Any:
        return self.xp.broadcast_to(x, self.out_shape).copy()

    def _rmatvec(self, y: Any) -> Any:
        return unbroadcast(y, self.in_shape)


class Select(LinearOperator):
    """Pick part ``index`` of a product space: ``(x_0, ..., x_k, ...) -> x_index``.

    Notes: the adjoint embeds ``y`` in a tuple of zeros at position ``index``.

    Parameters
    ----------
    shapes : tuple of shapes
        Shapes of the product space's parts.
    dtypes : tuple of dtypes
    index : int
    """

    _abstract = False

    def __init__(self, shapes: Any, dtypes: Any, index: int, xp: Any = None) -> None:
        shapes = normalize_shape(shapes)
        if not is_product_shape(shapes):
            raise ShapeError(f"Select: shapes must be a tuple of shapes, received {shapes}")
        if not 0 <= index < len(shapes):
            raise InputError(f"Select: index must be in [0, {len(shapes)}), received {index}")
        dtypes = tuple(np.dtype(d) for d in dtypes)
        super().__init__(shapes, shapes[index], dtypes, dtypes[index], xp=xp)
        self.index = index

    def _matvec(self, x: Any) -> Any:
        return x[self.index]

    def _rmatvec(self, y: Any) -> Any:
        return tuple(
            y if i == self.index else self.xp.zeros(s, dtype=d)
            for i, (s, d) in enumerate(zip(self.in_shape, self.in_dtype))
        )
