"""Moved to :mod:`linlim.gains.antenna` (gain operators are forward-model blocks, beside
:mod:`linlim.rime`); this module re-exports its public names so old imports keep working."""

from ..gains.antenna import *  # noqa: F401,F403
from ..gains.antenna import __all__  # noqa: F401
