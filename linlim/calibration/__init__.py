"""Calibration: DI and DD antenna-gain operators, parameterisations, StEFCal and GN solvers.

* :mod:`.gains` -- :class:`GainProduct` (the one kernel), :func:`di_gains`, :func:`dd_gains`.
* :mod:`.parameterizations` -- complex, amplitude/phase, phase-only, delay, phase-slope and
  smooth-bandpass gains, all composed from generic operators.
* :mod:`.stefcal` -- StEFCal (Salvini & Wijnholds 2014).
* :mod:`.solve` -- Gauss-Newton / Levenberg-Marquardt through the shared optimisers.
* :mod:`.fisher`, :mod:`.gauge`, :mod:`.weights` -- Cramér-Rao bounds, gauge, weights.
* :mod:`linlim.pipelines.calibrate` -- :func:`calibrate_from_config` behind ``linlim
  calibrate`` (formerly ``.pipeline``, still importable there).
"""

from .coupling import CouplingPowerLaw, MutualCoupling, coupling_pair_model, pair_separations
from .fisher import (
    DegenerateCalibrationError,
    antenna_variance,
    crb_covariance,
    di_fisher,
    gauge_covariance,
    null_space_dimension,
    operator_fisher,
)
from .gains import POL_FEEDS, GainProduct, dd_gains, di_gains, solution_index
from .gauge import align_phase, apply_gauge
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
from .redundant import (
    RedcalProblem,
    RedcalSolution,
    RedundantVisibilities,
    degeneracy_count,
    drop_small_groups,
    fix_degeneracies,
    logcal,
    redcal,
    redcal_problem,
    redundant_visibilities,
)
from .stefcal import StefcalResult, stefcal
from .weights import clean_data, make_weights

__all__ = [
    "MutualCoupling", "CouplingPowerLaw", "coupling_pair_model", "pair_separations",
    "RedundantVisibilities", "redundant_visibilities", "drop_small_groups", "logcal",
    "redcal_problem", "RedcalProblem", "redcal", "RedcalSolution", "fix_degeneracies",
    "degeneracy_count",
    "GainProduct", "di_gains", "dd_gains", "solution_index", "POL_FEEDS",
    "reim_gains", "amplitude_phase_gains", "phase_gains", "delay_gains",
    "phase_slope_gains", "bandpass_basis", "bandpass_gains", "multiply_gains",
    "stefcal", "StefcalResult",
    "operator_fisher", "di_fisher", "crb_covariance", "antenna_variance", "gauge_covariance",
    "null_space_dimension", "DegenerateCalibrationError",
    "apply_gauge", "align_phase", "make_weights", "clean_data",
]
