"""Operator algebra: composition, sums, scalar multiples, stacks, products.

The chain rule is written here once (:class:`Composition`) and the product rule once
(:class:`ElementwiseProduct`). Each composite has a linear twin used when all its parts
are linear, so that ``A @ B`` of two :class:`LinearOperator` is again linear (with ``.H``).

Nonlinear composites write only ``_forward`` and ``_linearize``: the Jacobian they return
(built from their parts' Jacobians) is the one place each rule is written, and ``jvp`` /
``vjp`` are its ``matvec`` / ``rmatvec`` (:class:`~linlim.operators.base.Operator`). At any
depth every inner forward is evaluated once per ``jvp``, ``vjp`` or ``linearize``.

Notes
-----
Chain rule, for ``H = F o G``::

    J_H(x) dx   = J_F(G(x)) J_G(x) dx
    J_H(x)^H dy = J_G(x)^H J_F(G(x))^H dy

Product rule, for ``P(x) = F(x) * G(x)`` (elementwise, broadcasting)::

    J_P dx   = (J_F dx) G + F (J_G dx)
    J_P^H dy = J_F^H [conj(G) dy] + J_G^H [conj(F) dy]

(under ``Re <., .>``: ``Re sum conj(a G) dy = Re sum conj(a) conj(G) dy``), with broadcast
axes summed back to each factor's shape.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import asarray
from ..errors import DtypeError, ShapeError
from .base import LinearOperator, Operator
from .spaces import check_element, is_complex, is_product_shape, unbroadcast, zeros

__all__ = [
    "compose",
    "add",
    "scale",
    "vstack",
    "hstack",
    "block_diag",
    "Composition",
    "LinearComposition",
    "Sum",
    "LinearSum",
    "Scaled",
    "LinearScaled",
    "VStack",
    "LinearVStack",
    "HStack",
    "LinearHStack",
    "BlockDiag",
    "LinearBlockDiag",
    "ElementwiseProduct",
    "FixInput",
]


def _same_space(ops: Sequence[Operator], side: str, what: str) -> None:
    ref = ops[0]
    for op in ops[1:]:
        if getattr(op, f"{side}_shape") != getattr(ref, f"{side}_shape"):
            raise ShapeError(
                f"{what}: all operators need the same {side}_shape; {ref.name} has "
                f"{getattr(ref, f'{side}_shape')}, {op.name} has {getattr(op, f'{side}_shape')}"
            )
        if op.xp is not ref.xp:
            raise ShapeError(f"{what}: operators were built under different backends")


def _result_dtype(dtypes: Sequence[Any]) -> Any:
    if isinstance(dtypes[0], tuple):
        return tuple(np.result_type(*parts) for parts in zip(*dtypes))
    return np.result_type(*dtypes)


def compose(F: Operator, G: Operator) -> Operator:
    """Return ``F @ G`` (apply G, then F); linear if both are linear."""
    cls = LinearComposition if (F.is_linear and G.is_linear) else Composition
    return cls(F, G)


def add(*ops: Operator) -> Operator:
    """Return ``F + G + ...`` (same input and output spaces)."""
    cls = LinearSum if all(op.is_linear for op in ops) else Sum
    return cls(ops)


def vstack(ops: Sequence[Operator]) -> Operator:
    """Return ``x -> (F1(x), F2(x), ...)``; linear if all parts are linear."""
    return (LinearVStack if all(op.is_linear for op in ops) else VStack)(ops)


def hstack(ops: Sequence[Operator]) -> Operator:
    """Return ``(x1, x2, ...) -> F1(x1) + F2(x2) + ...``; linear if all parts are linear."""
    return (LinearHStack if all(op.is_linear for op in ops) else HStack)(ops)


def block_diag(ops: Sequence[Operator]) -> Operator:
    """Return ``(x1, x2, ...) -> (F1(x1), F2(x2), ...)``; linear if all parts are linear."""
    return (LinearBlockDiag if all(op.is_linear for op in ops) else BlockDiag)(ops)


def scale(alpha: complex, F: Operator) -> Operator:
    """Return ``alpha * F`` for a real or complex scalar ``alpha``."""
    cls = LinearScaled if F.is_linear else Scaled
    return cls(alpha, F)


def _to_real_if(u: Any, dtype: Any) -> Any:
    """Keep the real part of ``u`` where ``dtype`` is real: when G returns real values
    that F takes as complex, F^H's complex result is mapped back by the adjoint of the
    real-to-complex embedding, which is ``Re``."""
    if isinstance(u, tuple):
        return tuple(_to_real_if(a, d) for a, d in zip(u, dtype))
    return u.real if (u.dtype.kind == "c" and np.dtype(dtype).kind != "c") else u


class _CompositionBase:
    def _setup(self, F: Operator, G: Operator) -> tuple:
        if F.in_shape != G.out_shape:
            raise ShapeError(
                f"compose {F.name} @ {G.name}: {F.name}.in_shape {F.in_shape} != "
                f"{G.name}.out_shape {G.out_shape}"
            )
        if F.xp is not G.xp:
            raise ShapeError(f"compose {F.name} @ {G.name}: built under different backends")
        if is_complex(G.out_dtype) and not is_complex(F.in_dtype):
            raise DtypeError(
                f"compose {F.name} @ {G.name}: {G.name} returns {G.out_dtype} but {F.name} "
                f"takes {F.in_dtype}; insert a Real/Imag view to make the choice explicit"
            )
        self.F, self.G = F, G
        return (G.in_shape, F.out_shape, G.in_dtype, F.out_dtype, F.xp,
                f"({F.name} @ {G.name})")


class Composition(_CompositionBase, Operator):
    """``F @ G``: x -> F(G(x)); ``linearize`` applies the chain rule ``J_F(G(x)) J_G(x)``
    (``jvp``/``vjp`` are that Jacobian's products)."""

    _abstract = False

    def __init__(self, F: Operator, G: Operator) -> None:
        Operator.__init__(self, *self._setup(F, G))

    def _forward(self, x: Any) -> Any:
        return self.F.forward(self.G.forward(x))


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        gx, JG = self.G.linearize(x)
        fx, JF = self.F.linearize(gx)
        return fx, compose(JF, JG)

    def _jacobian(self, x: Any) -> LinearOperator:
        # the same chain rule; F's value is not needed for jvp/vjp (gx is a checked
        # element of F's input space, so F's private method may take it)
        gx, JG = self.G.linearize(x)
        return compose(self.F._jacobian(gx), JG)


class LinearComposition(_CompositionBase, LinearOperator):
    """``A @ B`` of two linear operators; ``(A B)^H = B^H A^H``."""

    _abstract = False

    def __init__(self, F: LinearOperator, G: LinearOperator) -> None:
        LinearOperator.__init__(self, *self._setup(F, G))

    def _matvec(self, x: Any) -> Any:
        return self.F.matvec(self.G.matvec(x))

    def _rmatvec(self, y: Any) -> Any:
        return self.G.rmatvec(_to_real_if(self.F.rmatvec(y), self.G.out_dtype))


def _tree_sum(parts: Sequence[Any]) -> Any:
    total = parts[0]
    for p in parts[1:]:
        total = tuple(a + b for a, b in zip(total, p)) if isinstance(total, tuple) else (
            total + p
        )
    return total


class _SumBase:
    def _setup(self, ops: Sequence[Operator]) -> tuple:
        ops = tuple(ops)
        if len(ops) < 1:
            raise ShapeError("Sum: needs at least one operator")
        _same_space(ops, "in", "Sum")
        _same_space(ops, "out", "Sum")
        self.ops = ops
        return (ops[0].in_shape, ops[0].out_shape, ops[0].in_dtype,
                _result_dtype([op.out_dtype for op in ops]), ops[0].xp,
                "(" + " + ".join(op.name for op in ops) + ")")


class Sum(_SumBase, Operator):
    """``F + G + ...``: derivatives add."""

    _abstract = False

    def __init__(self, ops: Sequence[Operator]) -> None:
        Operator.__init__(self, *self._setup(ops))

    def _forward(self, x: Any) -> Any:
        return _tree_sum([op.forward(x) for op in self.ops])


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        ys, Js = zip(*(op.linearize(x) for op in self.ops))
        return _tree_sum(ys), add(*Js)


class LinearSum(_SumBase, LinearOperator):
    """Sum of linear operators; the adjoint is the sum of adjoints."""

    _abstract = False

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        LinearOperator.__init__(self, *self._setup(ops))

    def _matvec(self, x: Any) -> Any:
        return _tree_sum([op.matvec(x) for op in self.ops])

    def _rmatvec(self, y: Any) -> Any:
        return _tree_sum([op.rmatvec(y) for op in self.ops])


def _times(alpha: complex, y: Any) -> Any:
    return tuple(alpha * a for a in y) if isinstance(y, tuple) else alpha * y


class _ScaledBase:
    def _setup(self, alpha: complex, F: Operator) -> tuple:
        if not np.isscalar(alpha):
            raise ShapeError(f"Scaled: alpha must be a scalar, received {type(alpha)}")
        if np.iscomplexobj(alpha) and not is_complex(F.out_dtype):
            raise DtypeError(
                f"Scaled: complex scalar {alpha} times {F.name} whose output is real "
                f"({F.out_dtype}); compose with a complex embedding first"
            )
        self.alpha, self.F = alpha, F
        return (F.in_shape, F.out_shape, F.in_dtype, F.out_dtype, F.xp,
                f"{alpha} * {F.name}")


class Scaled(_ScaledBase, Operator):
    """``alpha * F`` for a scalar alpha; ``J^H dy = J_F^H (conj(alpha) dy)``."""

    _abstract = False

    def __init__(self, alpha: complex, F: Operator) -> None:
        Operator.__init__(self, *self._setup(alpha, F))

    def _forward(self, x: Any) -> Any:
        return _times(self.alpha, self.F.forward(x))


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        y, J = self.F.linearize(x)
        return _times(self.alpha, y), scale(self.alpha, J)


class LinearScaled(_ScaledBase, LinearOperator):
    """``alpha * A`` for a linear A; adjoint ``conj(alpha) A^H``."""

    _abstract = False

    def __init__(self, alpha: complex, F: LinearOperator) -> None:
        LinearOperator.__init__(self, *self._setup(alpha, F))

    def _matvec(self, x: Any) -> Any:
        return _times(self.alpha, self.F.matvec(x))

    def _rmatvec(self, y: Any) -> Any:
        return self.F.rmatvec(_times(np.conj(self.alpha), y))


class _VStackBase:
    def _setup(self, ops: Sequence[Operator]) -> tuple:
        ops = tuple(ops)
        _same_space(ops, "in", "VStack")
        self.ops = ops
        return (ops[0].in_shape, tuple(op.out_shape for op in ops), ops[0].in_dtype,
                tuple(op.out_dtype for op in ops), ops[0].xp,
                "[" + "; ".join(op.name for op in ops) + "]")


class VStack(_VStackBase, Operator):
    """x -> (F1(x), F2(x), ...): one input, a tuple of outputs (a product space)."""

    _abstract = False

    def __init__(self, ops: Sequence[Operator]) -> None:
        Operator.__init__(self, *self._setup(ops))

    def _forward(self, x: Any) -> Any:
        return tuple(op.forward(x) for op in self.ops)


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        ys, Js = zip(*(op.linearize(x) for op in self.ops))
        return tuple(ys), LinearVStack(Js)


class LinearVStack(_VStackBase, LinearOperator):
    """Vertical stack of linear operators; adjoint sums the parts' adjoints."""

    _abstract = False

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        LinearOperator.__init__(self, *self._setup(ops))

    def _matvec(self, x: Any) -> Any:
        return tuple(op.matvec(x) for op in self.ops)

    def _rmatvec(self, y: Any) -> Any:
        return _tree_sum([op.rmatvec(d) for op, d in zip(self.ops, y)])


class _HStackBase:
    def _setup(self, ops: Sequence[Operator]) -> tuple:
        ops = tuple(ops)
        _same_space(ops, "out", "HStack")
        self.ops = ops
        return (tuple(op.in_shape for op in ops), ops[0].out_shape,
                tuple(op.in_dtype for op in ops),
                _result_dtype([op.out_dtype for op in ops]), ops[0].xp,
                "[" + ", ".join(op.name for op in ops) + "]")


class HStack(_HStackBase, Operator):
    """(x1, x2, ...) -> F1(x1) + F2(x2) + ...: a tuple input, one summed output."""

    _abstract = False

    def __init__(self, ops: Sequence[Operator]) -> None:
        Operator.__init__(self, *self._setup(ops))

    def _forward(self, x: Any) -> Any:
        return _tree_sum([op.forward(a) for op, a in zip(self.ops, x)])


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        ys, Js = zip(*(op.linearize(a) for op, a in zip(self.ops, x)))
        return _tree_sum(ys), LinearHStack(Js)


class LinearHStack(_HStackBase, LinearOperator):
    """Horizontal stack of linear operators; the adjoint is a vertical stack."""

    _abstract = False

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        LinearOperator.__init__(self, *self._setup(ops))

    def _matvec(self, x: Any) -> Any:
        return _tree_sum([op.matvec(a) for op, a in zip(self.ops, x)])

    def _rmatvec(self, y: Any) -> Any:
        return tuple(op.rmatvec(y) for op in self.ops)


class _BlockDiagBase:
    def _setup(self, ops: Sequence[Operator]) -> tuple:
        ops = tuple(ops)
        if len({op.xp for op in ops}) != 1:
            raise ShapeError("BlockDiag: operators were built under different backends")
        self.ops = ops
        return (tuple(op.in_shape for op in ops), tuple(op.out_shape for op in ops),
                tuple(op.in_dtype for op in ops), tuple(op.out_dtype for op in ops),
                ops[0].xp, "diag(" + ", ".join(op.name for op in ops) + ")")


class BlockDiag(_BlockDiagBase, Operator):
    """(x1, x2, ...) -> (F1(x1), F2(x2), ...)."""

    _abstract = False

    def __init__(self, ops: Sequence[Operator]) -> None:
        Operator.__init__(self, *self._setup(ops))

    def _forward(self, x: Any) -> Any:
        return tuple(op.forward(a) for op, a in zip(self.ops, x))


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        ys, Js = zip(*(op.linearize(a) for op, a in zip(self.ops, x)))
        return tuple(ys), LinearBlockDiag(Js)


class LinearBlockDiag(_BlockDiagBase, LinearOperator):
    """Block-diagonal linear operator; the adjoint is block-diagonal of adjoints."""

    _abstract = False

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        LinearOperator.__init__(self, *self._setup(ops))

    def _matvec(self, x: Any) -> Any:
        return tuple(op.matvec(a) for op, a in zip(self.ops, x))

    def _rmatvec(self, y: Any) -> Any:
        return tuple(op.rmatvec(d) for op, d in zip(self.ops, y))


class ElementwiseProduct(Operator):
    """``P(x) = F(x) * G(x)`` elementwise (NumPy broadcasting), with the product rule.

    Both factors take the same input. Derivatives (module docstring)::

        J_P dx   = (J_F dx) G + F (J_G dx)
        J_P^H dy = J_F^H[unb(conj(G) dy)] + J_G^H[unb(conj(F) dy)]

    where ``unb`` sums broadcast axes back to the factor's shape.
    """

    _abstract = False

    def __init__(self, F: Operator, G: Operator) -> None:
        if F.in_shape != G.in_shape:
            raise ShapeError(
                f"ElementwiseProduct: {F.name}.in_shape {F.in_shape} != "
                f"{G.name}.in_shape {G.in_shape}"
            )
        try:
            out_shape = np.broadcast_shapes(F.out_shape, G.out_shape)
        except ValueError as exc:
            raise ShapeError(
                f"ElementwiseProduct: output shapes {F.out_shape} and {G.out_shape} do "
                "not broadcast"
            ) from exc
        self.F, self.G = F, G
        super().__init__(F.in_shape, out_shape, F.in_dtype,
                         np.result_type(F.out_dtype, G.out_dtype), F.xp,
                         name=f"({F.name} * {G.name})")

    def _forward(self, x: Any) -> Any:
        return self.F.forward(x) * self.G.forward(x)


    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        f, JF = self.F.linearize(x)
        g, JG = self.G.linearize(x)
        return f * g, _ProductJacobian(self, f, g, JF, JG)


class _ProductJacobian(LinearOperator):
    """Jacobian of an :class:`ElementwiseProduct` at a point (cached factor values)."""

    _abstract = True  # built by ElementwiseProduct.linearize; checked through it

    def __init__(self, prod: ElementwiseProduct, f: Any, g: Any,
                 JF: LinearOperator, JG: LinearOperator) -> None:
        super().__init__(prod.in_shape, prod.out_shape, prod.in_dtype, prod.out_dtype,
                         prod.xp, name=f"J[{prod.name}]")
        self.prod, self.f, self.g, self.JF, self.JG = prod, f, g, JF, JG

    def _matvec(self, dx: Any) -> Any:
        return self.JF.matvec(dx) * self.g + self.f * self.JG.matvec(dx)

    def _rmatvec(self, dy: Any) -> Any:
        def cast(a: Any, J: LinearOperator) -> Any:
            # back to the factor's shape; Re where its space is real (the adjoint of the
            # real-to-complex embedding)
            a = unbroadcast(a, J.out_shape)
            if a.dtype.kind == "c" and not is_complex(J.out_dtype):
                a = a.real
            return a.astype(J.out_dtype, copy=False)

        return _tree_sum([self.JF.rmatvec(cast(self.g.conj() * dy, self.JF)),
                          self.JG.rmatvec(cast(self.f.conj() * dy, self.JG))])


class FixInput(Operator):
    """``F`` with one part of its product-space input held fixed: the one "fix an input"
    composite (instead of fixed-input branches inside operators).

    For ``F((x_0, ..., x_{k-1}))`` and a fixed ``value`` of part ``index``, the operator maps
    the remaining parts (one array when one part remains, else their tuple) to
    ``F((..., value, ...))``. Its Jacobian is ``J_F @ E``, where the embedding ``E`` inserts a
    zero at ``index`` (``E^H`` drops that part), so no derivative is written here.

    Parameters
    ----------
    op : Operator
        An operator whose input is a product space of at least two parts.
    index : int
        The part to hold fixed (negative counts from the end).
    value : array
        Its value (shape and dtype of that part; a safe cast is applied).
    name : str, optional
        What the fixed part is called in error messages (default ``"value"``).

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.operators import ElementwiseProduct, FixInput, Select
    >>> spaces = (((2,), (2,)), ("float64", "float64"))
    >>> prod = ElementwiseProduct(Select(*spaces, 0), Select(*spaces, 1))  # (a, b) -> a * b
    >>> FixInput(prod, 1, np.array([2.0, 3.0]))(np.array([1.0, 1.0]))
    array([2., 3.])
    """

    _abstract = False

    def __init__(self, op: Operator, index: int, value: Any, name: str = "value") -> None:
        if not is_product_shape(op.in_shape) or len(op.in_shape) < 2:
            raise ShapeError(f"FixInput({op.name}): expected an operator whose input is a "
                             f"product space of at least two parts, received in_shape "
                             f"{op.in_shape}")
        k = len(op.in_shape)
        if not -k <= int(index) < k:
            raise ShapeError(f"FixInput({op.name}): index must lie in [-{k}, {k}), received "
                             f"{index}")
        index = int(index) % k
        # constructor-time data moves to the operator's device once, like any fixed array
        value = check_element(asarray(value, op.xp), op.in_shape[index], op.in_dtype[index],
                              op.xp, f"{op.name}({name})")
        rest = [i for i in range(k) if i != index]
        shapes = tuple(op.in_shape[i] for i in rest)
        dtypes = tuple(op.in_dtype[i] for i in rest)
        if len(rest) == 1:
            shapes, dtypes = shapes[0], dtypes[0]
        super().__init__(shapes, op.out_shape, dtypes, op.out_dtype, op.xp,
                         name=f"{op.name}[{name} fixed]")
        self.op, self.index, self.value = op, index, value
        self._embed = _InsertZero(self)

    def _full(self, x: Any) -> tuple:
        parts = list(x) if is_product_shape(self.in_shape) else [x]
        parts.insert(self.index, self.value)
        return tuple(parts)

    def _forward(self, x: Any) -> Any:
        return self.op.forward(self._full(x))

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        full = self._full(x)
        if self.op._overrides("_jvp_parts"):
            return self.op.forward(full), _PartialJacobian(self, full)
        y, J = self.op.linearize(full)
        return y, compose(J, self._embed)

    def _jacobian(self, x: Any) -> LinearOperator:
        full = self._full(x)
        if self.op._overrides("_jvp_parts"):
            return _PartialJacobian(self, full)
        return compose(self.op._jacobian(full), self._embed)


class _PartialJacobian(LinearOperator):
    """Jacobian of a :class:`FixInput` whose operator can skip the derivative of a part
    (it implements ``_jvp_parts``/``_vjp_parts``, as PyTorch's ``needs_input_grad``): the
    fixed part's zero direction is never propagated and its adjoint never computed."""

    _abstract = True  # built by FixInput; checked through it

    def __init__(self, fix: FixInput, x_full: tuple) -> None:
        super().__init__(fix.in_shape, fix.out_shape, fix.in_dtype, fix.out_dtype, fix.xp,
                         name=f"J[{fix.name}]")
        self.fix, self.x = fix, x_full
        self.needed = tuple(i != fix.index for i in range(len(x_full)))

    def _matvec(self, dx: Any) -> Any:
        return self.fix.op._jvp_parts(self.x, self.fix._embed.matvec(dx), self.needed)

    def _rmatvec(self, dy: Any) -> Any:
        parts = self.fix.op._vjp_parts(self.x, dy, self.needed)
        rest = tuple(a for j, a in enumerate(parts) if j != self.fix.index)
        return rest if is_product_shape(self.in_shape) else rest[0]


class _InsertZero(LinearOperator):
    """The embedding of :class:`FixInput`: insert a zero part at ``index`` (adjoint: drop
    it)."""

    _abstract = True  # built by FixInput; checked through it

    def __init__(self, fix: FixInput) -> None:
        op = fix.op
        super().__init__(fix.in_shape, op.in_shape, fix.in_dtype, op.in_dtype, op.xp,
                         name=f"insert0[{fix.index}]")
        self.fix = fix

    def _matvec(self, x: Any) -> Any:
        parts = list(x) if is_product_shape(self.in_shape) else [x]
        i = self.fix.index
        parts.insert(i, zeros(self.out_shape[i], self.out_dtype[i], self.xp))
        return tuple(parts)

    def _rmatvec(self, y: Any) -> Any:
        rest = tuple(a for j, a in enumerate(y) if j != self.fix.index)
        return rest if is_product_shape(self.in_shape) else rest[0]


def zeros_like_space(op: Operator, side: str = "in") -> Any:
    """Zero element of an operator's input (``side="in"``) or output space."""
    return zeros(getattr(op, f"{side}_shape"), getattr(op, f"{side}_dtype"), op.xp)
