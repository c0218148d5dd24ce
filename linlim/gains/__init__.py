"""Gain operators: the forward-model stage after the RIME (sky -> beam -> RIME -> gains ->
likelihood).

* :mod:`.antenna` -- :class:`GainProduct` (the one kernel ``g_a conj(g_b) V``),
  :func:`di_gains`, :func:`dd_gains`, :func:`solution_index`.
* :mod:`.parameterizations` -- complex, amplitude/phase, phase-only, delay, phase-slope and
  smooth-bandpass gains, all composed from generic operators.
* :mod:`.coupling` -- first-order mutual coupling between antennas.

The solvers that fit these operators (StEFCal, Gauss-Newton calibration, redundant
calibration) live in :mod:`linlim.calibration`, which imports from here (never the reverse).
The old paths ``linlim.calibration.gains``, ``.parameterizations`` and ``.coupling`` still
import, re-exporting these names.
"""

from .antenna import POL_FEEDS, GainProduct, dd_gains, di_gains, solution_index
from .coupling import CouplingPowerLaw, MutualCoupling, coupling_pair_model, pair_separations
from .parameterizations import (
    amplitude_phase_gains,
    bandpass_basis,
    bandpass_gains,
    delay_gains,
    multiply_gains,
    phase_gains,
    phase_slope_gains,
    reim_gains,
)

__all__ = [
    "GainProduct", "di_gains", "dd_gains", "solution_index", "POL_FEEDS",
    "reim_gains", "amplitude_phase_gains", "phase_gains", "delay_gains",
    "phase_slope_gains", "bandpass_basis", "bandpass_gains", "multiply_gains",
    "MutualCoupling", "CouplingPowerLaw", "coupling_pair_model", "pair_separations",
]
