"""The conjugate-gradient solver lives in :mod:`linlim.operators.cg` (a Krylov solve on a
linear operator, below the priors and solvers that use it); this module re-exports it so
``linlim.inference.cg`` imports keep working."""

from ..operators.cg import *  # noqa: F401,F403
from ..operators.cg import __all__  # noqa: F401
