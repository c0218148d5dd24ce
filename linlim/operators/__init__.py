"""Operator algebra: the contract, composites, generic linear and elementwise blocks."""

from .base import AdjointOperator, LinearOperator, Operator
from .composite import (
    BlockDiag,
    Composition,
    ElementwiseProduct,
    FixInput,
    HStack,
    LinearBlockDiag,
    LinearComposition,
    LinearHStack,
    LinearScaled,
    LinearSum,
    LinearVStack,
    Scaled,
    Sum,
    VStack,
    add,
    block_diag,
    compose,
    hstack,
    scale,
    vstack,
)
from .elementwise import Abs2, Elementwise, Exp, ExpI, Log, Power
from .linear import (
    FFT,
    Broadcast,
    Conj,
    Diagonal,
    Identity,
    Imag,
    MatrixMult,
    Real,
    Reshape,
    Select,
    Slice,
    SumAxis,
    Take,
    Transpose,
    ZeroPad,
)
from .powerlaw import PowerLaw, power_law_columns
from .spaces import inner, norm, random_element, zeros

__all__ = [
    "Operator", "LinearOperator", "AdjointOperator",
    "compose", "add", "scale", "vstack", "hstack", "block_diag",
    "Composition", "LinearComposition", "Sum", "LinearSum", "Scaled", "LinearScaled",
    "VStack", "LinearVStack", "HStack", "LinearHStack", "BlockDiag", "LinearBlockDiag",
    "ElementwiseProduct", "FixInput",
    "Elementwise", "Exp", "Log", "Power", "ExpI", "Abs2",
    "Identity", "Diagonal", "MatrixMult", "Reshape", "Transpose", "Take", "Slice",
    "ZeroPad", "FFT", "Real", "Imag", "Conj", "SumAxis", "Broadcast", "Select",
    "PowerLaw", "power_law_columns",
    "inner", "norm", "random_element", "zeros",
]
