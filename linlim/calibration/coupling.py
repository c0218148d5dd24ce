"""Moved to :mod:`linlim.gains.coupling` (gain operators are forward-model blocks, beside
:mod:`linlim.rime`); this module re-exports its public names so old imports keep working."""

from ..gains.coupling import *  # noqa: F401,F403
from ..gains.coupling import __all__  # noqa: F401
