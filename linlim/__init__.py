"""linlim: Bayesian forward modelling of 21 cm line-intensity-mapping interferometer data.

Operators with hand-derived adjoints and Jacobian-vector products, on NumPy + numba (CPU)
or CuPy (GPU), switched by one flag (:func:`set_backend`).
"""

from . import operators, testing
from .backend import get_backend, get_xp, set_backend, to_numpy, use_backend
from .errors import (
    BackendError,
    BackendMismatchError,
    CheckFailedError,
    DtypeError,
    InputError,
    LinlimError,
    ShapeError,
)
from .operators import LinearOperator, Operator
from .params import BoundedTransform, IdentityTransform, LogTransform, ParamBlock, Params
from .testing import dottest, gradcheck

__version__ = "0.1.0"

__all__ = [
    "operators", "testing",
    "get_backend", "get_xp", "set_backend", "use_backend", "to_numpy",
    "LinlimError", "ShapeError", "DtypeError", "BackendError", "BackendMismatchError",
    "InputError", "CheckFailedError",
    "Operator", "LinearOperator",
    "Params", "ParamBlock", "IdentityTransform", "LogTransform", "BoundedTransform",
    "dottest", "gradcheck",
    "__version__",
]
