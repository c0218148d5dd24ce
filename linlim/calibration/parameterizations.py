"""Moved to :mod:`linlim.gains.parameterizations` (gain operators are forward-model blocks, beside
:mod:`linlim.rime`); this module re-exports its public names so old imports keep working."""

from ..gains.parameterizations import *  # noqa: F401,F403
from ..gains.parameterizations import __all__  # noqa: F401
