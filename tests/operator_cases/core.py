"""Operator cases for the foundation: generic blocks, composites, Params."""

from __future__ import annotations

import numpy as np

from linlim.operators import (
    FFT,
    Abs2,
    AdjointOperator,
    BlockDiag,
    Broadcast,
    Composition,
    Conj,
    Diagonal,
    ElementwiseProduct,
    Exp,
    ExpI,
    FixInput,
    HStack,
    Identity,
    Imag,
    LinearBlockDiag,
    LinearComposition,
    LinearHStack,
    LinearScaled,
    LinearSum,
    LinearVStack,
    Log,
    MatrixMult,
    Power,
    PowerLaw,
    Real,
    Reshape,
    Scaled,
    Select,
    Slice,
    Sum,
    SumAxis,
    Take,
    Transpose,
    VStack,
    ZeroPad,
    power_law_columns,
)
from linlim.params import BoundedTransform, LogTransform, ParamBlock, Params
from linlim.testing import operator_case


def _arr(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


@operator_case(Identity)
def _identity(dtype, rng):
    return Identity((3, 2), dtype)


@operator_case(Diagonal)
def _diagonal(dtype, rng):
    # broadcasting diag (4, 1) against input (4, 3): the adjoint must sum the broadcast axis
    return Diagonal(_arr(rng, (4, 1), dtype), in_shape=(1, 3), in_dtype=dtype)


@operator_case(MatrixMult)
def _matrix(dtype, rng):
    return MatrixMult(_arr(rng, (5, 3), dtype), in_shape=(2, 3, 4), axis=1)


@operator_case(Reshape)
def _reshape(dtype, rng):
    return Reshape((2, 6), (3, 4), dtype)


@operator_case(Transpose)
def _transpose(dtype, rng):
    return Transpose((2, 3, 4), (2, 0, 1), dtype)


@operator_case(Take)
def _take(dtype, rng):
    return Take((5, 3), [0, 4, 4, 2], axis=0, dtype=dtype)  # repeated index


@operator_case(Slice)
def _slice(dtype, rng):
    return Slice((6, 4), (slice(1, 5, 2), slice(None, 3)), dtype)


@operator_case(ZeroPad)
def _zeropad(dtype, rng):
    return ZeroPad((3, 4), ((1, 2), (0, 3)), dtype)


@operator_case(FFT)
def _fft(dtype, rng):
    return FFT((3, 8), axis=1, norm="backward", in_dtype=dtype)


@operator_case(Real, dtypes=("complex128",))
def _real(dtype, rng):
    return Real((4,), dtype)


@operator_case(Imag, dtypes=("complex128",))
def _imag(dtype, rng):
    return Imag((4,), dtype)


@operator_case(Conj, dtypes=("complex128",))
def _conj(dtype, rng):
    return Conj((4,), dtype)


@operator_case(SumAxis)
def _sumaxis(dtype, rng):
    return SumAxis((3, 4, 5), (0, 2), dtype)


@operator_case(Broadcast)
def _broadcast(dtype, rng):
    return Broadcast((4, 1), (2, 4, 3), dtype)


@operator_case(Select)
def _select(dtype, rng):
    return Select(((3,), (2, 2)), ("float64", dtype), 1)


@operator_case(Exp)
def _exp(dtype, rng):
    return Exp((5,), dtype), 0.5 * _arr(rng, (5,), dtype)


@operator_case(Log)
def _log(dtype, rng):
    x = np.exp(_arr(rng, (5,), "float64")).astype(dtype) + (0.5j if dtype == "complex128" else 0)
    return Log((5,), dtype), x


@operator_case(Power)
def _power(dtype, rng):
    return Power((5,), 3.0, dtype)


@operator_case(ExpI, dtypes=("float64",))
def _expi(dtype, rng):
    return ExpI((5,), dtype)


@operator_case(Abs2)
def _abs2(dtype, rng):
    return Abs2((5,), dtype)


def _nonlinear_pair(dtype):
    return Exp((4,), dtype), Power((4,), 2.0, dtype)


@operator_case(Composition)
def _composition(dtype, rng):
    A = MatrixMult(_arr(rng, (4, 3), dtype), in_dtype=dtype)
    return Exp((4,), dtype) @ A @ Power((3,), 2.0, dtype), 0.3 * _arr(rng, (3,), dtype)


@operator_case(LinearComposition)
def _lincomposition(dtype, rng):
    return MatrixMult(_arr(rng, (4, 3), dtype)) @ Diagonal(_arr(rng, (3,), dtype))


@operator_case(Sum)
def _sum(dtype, rng):
    f, g = _nonlinear_pair(dtype)
    return f + g - Diagonal(_arr(rng, (4,), dtype)), 0.5 * _arr(rng, (4,), dtype)


@operator_case(LinearSum)
def _linsum(dtype, rng):
    return Diagonal(_arr(rng, (4,), dtype)) + FFT((4,), in_dtype=dtype) if dtype == "complex128" \
        else Diagonal(_arr(rng, (4,), dtype)) + MatrixMult(_arr(rng, (4, 4), dtype))


@operator_case(Scaled)
def _scaled(dtype, rng):
    alpha = 2.0 - 1.5j if dtype == "complex128" else -1.5
    return alpha * Exp((4,), dtype), 0.5 * _arr(rng, (4,), dtype)


@operator_case(LinearScaled)
def _linscaled(dtype, rng):
    alpha = 2.0 - 1.5j if dtype == "complex128" else -1.5
    return Diagonal(_arr(rng, (4,), dtype)) * alpha


@operator_case(VStack)
def _vstack(dtype, rng):
    return VStack([Exp((4,), dtype), MatrixMult(_arr(rng, (2, 4), dtype))]), \
        0.5 * _arr(rng, (4,), dtype)


@operator_case(LinearVStack)
def _linvstack(dtype, rng):
    return LinearVStack([Identity((4,), dtype), MatrixMult(_arr(rng, (2, 4), dtype))])


@operator_case(HStack)
def _hstack(dtype, rng):
    op = HStack([Exp((4,), dtype), MatrixMult(_arr(rng, (4, 2), dtype))])
    return op, (0.5 * _arr(rng, (4,), dtype), _arr(rng, (2,), dtype))


@operator_case(LinearHStack)
def _linhstack(dtype, rng):
    return LinearHStack([Identity((4,), dtype), MatrixMult(_arr(rng, (4, 2), dtype))])


@operator_case(BlockDiag)
def _blockdiag(dtype, rng):
    op = BlockDiag([Exp((3,), dtype), Abs2((2,), dtype)])
    return op, (0.5 * _arr(rng, (3,), dtype), _arr(rng, (2,), dtype))


@operator_case(LinearBlockDiag)
def _linblockdiag(dtype, rng):
    return LinearBlockDiag([Diagonal(_arr(rng, (3,), dtype)), Transpose((2, 3), (1, 0), dtype)])


@operator_case(ElementwiseProduct)
def _product(dtype, rng):
    # factors of different output shapes that broadcast: (4, 1) * (4,) -> (4, 4)
    f = Reshape((4,), (4, 1), dtype) @ Exp((4,), dtype)
    g = MatrixMult(_arr(rng, (4, 4), dtype))
    return f * g, 0.5 * _arr(rng, (4,), dtype)


@operator_case(AdjointOperator)
def _adjoint(dtype, rng):
    return MatrixMult(_arr(rng, (5, 3), dtype)).H


@operator_case(Params, dtypes=("float64",))
def _params(dtype, rng):
    return Params([
        ParamBlock("a", (3,), transform=LogTransform()),
        ParamBlock("g", (2, 2), dtype="complex128"),
        ParamBlock("b", (2,), transform=BoundedTransform(-1.0, 2.0)),
        ParamBlock("c", (1,)),
    ])


@operator_case(BlockDiag, name="BlockDiag:nested_product_space")
def _nested(dtype, rng):
    # a product space whose second part is itself a product space
    inner = HStack([Identity((3,), dtype), Exp((3,), dtype)])
    return BlockDiag([Exp((2,), dtype), inner]), (
        0.5 * _arr(rng, (2,), dtype), (_arr(rng, (3,), dtype), 0.5 * _arr(rng, (3,), dtype)))


@operator_case(Composition, name="Composition:real_into_complex")
def _real_into_complex(dtype, rng):
    # G returns real values that F takes as complex: the adjoint must map back with Re
    return Exp((3,), "complex128") @ Power((3,), 2.0, "float64"), 0.5 * _arr(rng, (3,), "float64")


@operator_case(LinearComposition, name="LinearComposition:real_into_complex")
def _lin_real_into_complex(dtype, rng):
    return MatrixMult(_arr(rng, (2, 3), "complex128")) @ Diagonal(_arr(rng, (3,), "float64"))


@operator_case(PowerLaw, dtypes=("float64",))
def _power_law(dtype, rng):
    op = PowerLaw(*power_law_columns(3), np.log(np.linspace(0.5, 2.0, 4)))
    return op, np.column_stack([rng.standard_normal(3), 0.5 * rng.standard_normal(3)])


@operator_case(PowerLaw, dtypes=("float64",), name="PowerLaw:vector")
def _power_law_vector(dtype, rng):
    return PowerLaw(*power_law_columns(None), -np.log([1.0, 1.5, 3.0])), np.array([0.7, 1.2])


@operator_case(FixInput, name="FixInput:middle-of-three")
def _fix_input(dtype, rng):
    # (a, b, c) -> exp(a) * b + c^2 with b fixed: the input is the pair (a, c)
    spaces = (((3,), (3,), (3,)), (dtype, dtype, dtype))
    a, b, c = (Select(*spaces, k) for k in range(3))
    op = (Exp((3,), dtype) @ a) * b + Power((3,), 2.0, dtype) @ c
    return FixInput(op, -2, _arr(rng, (3,), dtype)), (0.5 * _arr(rng, (3,), dtype),
                                                     _arr(rng, (3,), dtype))
