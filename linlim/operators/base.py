"""The operator contract: :class:`Operator` and :class:`LinearOperator`.

An :class:`Operator` is a differentiable map ``F`` between spaces of arrays (or tuples of
arrays). It offers

* ``forward(x)`` = F(x) (also ``op(x)``),
* ``jvp(x, dx)`` = J(x) dx, the Jacobian-vector product,
* ``vjp(x, dy)`` = J(x)^H dy, the adjoint (vector-Jacobian) product,
* ``linearize(x)`` -> ``(F(x), J)``, where ``J`` is a :class:`LinearOperator` that keeps
  whatever was computed at ``x`` (phasors, beams) so repeated products are cheap.

Adjoints are taken under the real inner product ``<x, y> = Re sum(conj(x) y)``, so
``<J dx, dy> = <dx, J^H dy>`` holds for every R-linear ``J``, holomorphic or not; for a
real-valued loss ``L(z)`` of complex ``z`` the gradient is ``dL/dRe z + i dL/dIm z``.

Subclasses implement private methods; the public ones check shapes, dtypes and the array
module once (template method, as in scipy's ``LinearOperator``) and count calls:

* nonlinear operators write ``_forward`` and either ``_jvp`` + ``_vjp`` or ``_linearize``;
* linear operators write ``_matvec`` and ``_rmatvec``.

Derivatives have one path per operator: an operator that writes ``_linearize`` gets its
``jvp``/``vjp`` from the Jacobian it returns (``J.matvec``, ``J.rmatvec``); one that writes
``_jvp``/``_vjp`` gets a ``linearize`` whose Jacobian calls them. The composites of
:mod:`linlim.operators.composite` write only ``_forward`` and ``_linearize``, so the chain
rule lives there once, and a ``vjp`` through a chain of depth ``d`` evaluates every inner
forward once. :mod:`linlim.testing` checks both ``jvp``/``vjp`` and the ``linearize``
Jacobian, so an operator that writes both paths has each verified.

Physics operators never call another operator's private methods.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..backend import get_xp
from ..errors import DtypeError, ShapeError
from .spaces import (
    check_element,
    is_product_shape,
    normalize_dtype,
    normalize_shape,
)

__all__ = ["Operator", "LinearOperator"]


def _space_str(shape: Any, dtype: Any) -> str:
    if is_product_shape(shape):
        return "(" + ", ".join(_space_str(s, d) for s, d in zip(shape, dtype)) + ")"
    return f"{tuple(shape)} {np.dtype(dtype).name}"


class Operator:
    """A differentiable map between spaces of arrays.

    Parameters
    ----------
    in_shape, out_shape : tuple of int, or tuple of tuples
        Shapes of the input and output (a tuple of shapes is a product space whose
        elements are tuples of arrays).
    in_dtype, out_dtype : dtype or tuple of dtypes
        dtypes of the input and output parts.
    xp : module, optional
        Array module; the active backend's module by default (bound at construction).
    name : str, optional
        Short name used in ``repr`` and error messages.

    Attributes
    ----------
    counts : dict
        Number of ``forward``, ``jvp``, ``vjp``, ``linearize``, ``matvec`` and ``rmatvec``
        calls made on this operator (for benchmarks: "J products per solve").
    """

    _abstract: ClassVar[bool] = True
    is_linear: ClassVar[bool] = False
    __array_ufunc__ = None  # so that ``array @ op`` defers to the operator

    def __init__(
        self,
        in_shape: Any,
        out_shape: Any,
        in_dtype: Any = np.float64,
        out_dtype: Any = None,
        xp: Any = None,
        name: str | None = None,
    ) -> None:
        self.in_shape = normalize_shape(in_shape)
        self.out_shape = normalize_shape(out_shape)
        self.in_dtype = normalize_dtype(in_dtype, self.in_shape)
        self.out_dtype = normalize_dtype(
            in_dtype if out_dtype is None else out_dtype, self.out_shape
        )
        self.xp = get_xp() if xp is None else xp
        self.name = name or type(self).__name__
        self.counts = dict.fromkeys(
            ("forward", "jvp", "vjp", "linearize", "matvec", "rmatvec"), 0
        )

    # -- checks --------------------------------------------------------------------
    def _check_in(self, x: Any, method: str, arg: str = "x") -> Any:
        return check_element(
            x, self.in_shape, self.in_dtype, self.xp, f"{self.name}.{method}({arg})"
        )

    def _check_out(self, y: Any, method: str, arg: str = "dy") -> Any:
        return check_element(
            y, self.out_shape, self.out_dtype, self.xp, f"{self.name}.{method}({arg})"
        )

    #: Methods whose result lies in the input space of an R-linear map (the adjoint
    #: direction): there, and only there, a complex result for a real space keeps its
    #: real part, because ``Re`` *is* the adjoint of the real-to-complex embedding under
    #: ``Re <., .>``.
    _ADJOINT_METHODS: ClassVar[frozenset] = frozenset({"vjp", "rmatvec"})

    def _conform(self, r: Any, shape: Any, dtype: Any, method: str) -> Any:
        """Check a result computed by a subclass and cast it to its space.

        Shapes must match exactly. A complex result destined for a real space keeps its
        real part only in the adjoint direction (``vjp``, ``rmatvec``), where that is the
        definition of the adjoint; in every other method (``forward``, ``jvp``,
        ``matvec``, ``linearize``) it raises :class:`~linlim.errors.DtypeError`, since
        dropping an imaginary part there would hide a bug. Other dtype differences
        (float32 -> float64, real -> complex) are exact casts.
        """
        if is_product_shape(shape):
            if not isinstance(r, tuple) or len(r) != len(shape):
                raise ShapeError(
                    f"{self.name}.{method}: implementation returned "
                    f"{type(r).__name__}, expected a tuple of {len(shape)} arrays"
                )
            return tuple(self._conform(a, s, d, method) for a, s, d in zip(r, shape, dtype))
        if tuple(r.shape) != tuple(shape):
            raise ShapeError(
                f"{self.name}.{method}: implementation returned shape {tuple(r.shape)}, "
                f"expected {tuple(shape)}"
            )
        if r.dtype != dtype:
            if r.dtype.kind == "c" and np.dtype(dtype).kind != "c":
                if method not in self._ADJOINT_METHODS:
                    raise DtypeError(
                        f"{self.name}.{method}: implementation returned {r.dtype.name} for "
                        f"a real {np.dtype(dtype).name} space; refusing to drop the "
                        "imaginary part (take .real or .imag explicitly, or declare a "
                        "complex output dtype)"
                    )
                r = r.real
            r = r.astype(dtype, copy=False)
        return r

    # -- public API -------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Evaluate F(x). ``x`` has ``in_shape``/``in_dtype``; returns ``out_shape``."""
        x = self._check_in(x, "forward")
        self.counts["forward"] += 1
        return self._conform(self._forward(x), self.out_shape, self.out_dtype, "forward")

    __call__ = forward

    def jvp(self, x: Any, dx: Any) -> Any:
        """Jacobian-vector product J(x) dx (an element of the output space)."""
        x = self._check_in(x, "jvp")
        dx = self._check_in(dx, "jvp", "dx")
        self.counts["jvp"] += 1
        return self._conform(self._jvp(x, dx), self.out_shape, self.out_dtype, "jvp")

    def vjp(self, x: Any, dy: Any) -> Any:
        """Adjoint product J(x)^H dy (an element of the input space)."""
        x = self._check_in(x, "vjp")
        dy = self._check_out(dy, "vjp")
        self.counts["vjp"] += 1
        return self._conform(self._vjp(x, dy), self.in_shape, self.in_dtype, "vjp")

    def linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        """Return ``(F(x), J)`` with ``J`` the Jacobian at ``x`` as a LinearOperator that
        caches the intermediates computed at ``x``."""
        x = self._check_in(x, "linearize")
        self.counts["linearize"] += 1
        y, jac = self._linearize(x)
        return self._conform(y, self.out_shape, self.out_dtype, "linearize"), jac

    # -- default private implementations ------------------------------------------------
    def _forward(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _overrides(self, method: str) -> bool:
        return getattr(type(self), method) is not getattr(Operator, method)

    def _jvp(self, x: Any, dx: Any) -> Any:
        # derived from the Jacobian of ``_linearize`` (one path; composites rely on it)
        return self._derived_jacobian(x).matvec(dx)

    def _vjp(self, x: Any, dy: Any) -> Any:
        return self._derived_jacobian(x).rmatvec(dy)

    def _derived_jacobian(self, x: Any) -> LinearOperator:
        if not (self._overrides("_linearize") or self._overrides("_jacobian")):
            raise NotImplementedError(
                f"{type(self).__name__} must implement _jvp and _vjp, or _linearize"
            )
        return self._jacobian(x)

    def _jacobian(self, x: Any) -> LinearOperator:
        """The Jacobian at ``x`` for one-shot products, without the value: the products of
        ``_jvp``/``_vjp`` when the operator writes them (its fast single-product path, no
        forward and no cache), else ``_linearize(x)[1]``. Composites apply the chain rule
        here too and skip their last stage's forward."""
        if self._overrides("_linearize") and not (self._overrides("_jvp")
                                                  and self._overrides("_vjp")):
            return self._linearize(x)[1]
        return _JacobianAt(self, x)

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        return self._forward(x), _JacobianAt(self, x)

    # Optional, for operators on a product space: derivatives of only some input parts
    # (``needed[i]`` false: ``dx[i]`` is zero and the i-th adjoint part may be None).
    # :class:`~linlim.operators.composite.FixInput` uses them to skip a fixed part's work;
    # an operator implementing them defines ``_jvp``/``_vjp`` as the all-needed case.
    def _jvp_parts(self, x: Any, dx: Any, needed: tuple) -> Any:
        return self._jvp(x, dx)

    def _vjp_parts(self, x: Any, dy: Any, needed: tuple) -> Any:
        return self._vjp(x, dy)

    # -- algebra (implemented once, in composite.py) -----------------------------------
    def __matmul__(self, other: Any) -> Any:
        from .composite import compose

        if isinstance(other, Operator):
            return compose(self, other)
        if self.is_linear and (hasattr(other, "shape") or isinstance(other, tuple)):
            return self.matvec(other)
        return NotImplemented

    def __add__(self, other: Any) -> Operator:
        from .composite import add

        return add(self, other) if isinstance(other, Operator) else NotImplemented

    def __sub__(self, other: Any) -> Operator:
        from .composite import add, scale

        return add(self, scale(-1.0, other)) if isinstance(other, Operator) else (
            NotImplemented
        )

    def __neg__(self) -> Operator:
        from .composite import scale

        return scale(-1.0, self)

    def __mul__(self, other: Any) -> Operator:
        from .composite import ElementwiseProduct, scale

        if isinstance(other, Operator):
            return ElementwiseProduct(self, other)
        if np.isscalar(other):
            return scale(other, self)
        return NotImplemented

    def __rmul__(self, other: Any) -> Operator:
        from .composite import scale

        return scale(other, self) if np.isscalar(other) else NotImplemented

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({_space_str(self.in_shape, self.in_dtype)} -> "
            f"{_space_str(self.out_shape, self.out_dtype)}, "
            f"backend={self.xp.__name__.split('.')[0]})"
        )

    def __str__(self) -> str:
        return self.name


class LinearOperator(Operator):
    """A linear (over the reals) operator ``A``; implement ``_matvec`` and ``_rmatvec``.

    ``jvp(x, dx) = A dx``, ``vjp(x, dy) = A^H dy`` and ``linearize(x) = (A x, A)``.
    ``A.H`` is the adjoint, ``A @ x`` applies ``A`` to an array.
    """

    _abstract: ClassVar[bool] = True
    is_linear: ClassVar[bool] = True

    def matvec(self, x: Any) -> Any:
        """Apply A to ``x`` (input space) and return A x (output space)."""
        x = self._check_in(x, "matvec")
        self.counts["matvec"] += 1
        return self._conform(self._matvec(x), self.out_shape, self.out_dtype, "matvec")

    def rmatvec(self, y: Any) -> Any:
        """Apply the adjoint A^H to ``y`` (output space) and return an input element."""
        y = self._check_out(y, "rmatvec", "y")
        self.counts["rmatvec"] += 1
        return self._conform(self._rmatvec(y), self.in_shape, self.in_dtype, "rmatvec")

    @property
    def H(self) -> LinearOperator:
        """The adjoint operator A^H (with respect to ``Re <., .>``)."""
        return AdjointOperator(self)

    def _matvec(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement _matvec")

    def _rmatvec(self, y: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement _rmatvec")

    def _forward(self, x: Any) -> Any:
        return self._matvec(x)

    def _jvp(self, x: Any, dx: Any) -> Any:
        return self._matvec(dx)

    def _vjp(self, x: Any, dy: Any) -> Any:
        return self._rmatvec(dy)

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        return self._matvec(x), self

    def _jacobian(self, x: Any) -> LinearOperator:
        return self


class AdjointOperator(LinearOperator):
    """The adjoint ``A^H`` of a linear operator: matvec and rmatvec swapped."""

    _abstract = False

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.out_shape, op.in_shape, op.out_dtype, op.in_dtype, op.xp,
                         name=f"{op.name}.H")
        self.op = op

    def _matvec(self, x: Any) -> Any:
        return self.op.rmatvec(x)

    def _rmatvec(self, y: Any) -> Any:
        return self.op.matvec(y)

    @property
    def H(self) -> LinearOperator:
        return self.op


class _JacobianAt(LinearOperator):
    """Jacobian of an operator at a fixed point, through its ``_jvp``/``_vjp`` (no cache)."""

    _abstract = True  # constructed only by Operator.linearize; checked through its parent

    def __init__(self, op: Operator, x: Any) -> None:
        super().__init__(op.in_shape, op.out_shape, op.in_dtype, op.out_dtype, op.xp,
                         name=f"J[{op.name}]")
        self.op, self.x = op, x

    def _matvec(self, dx: Any) -> Any:
        return self.op._jvp(self.x, dx)

    def _rmatvec(self, dy: Any) -> Any:
        return self.op._vjp(self.x, dy)
