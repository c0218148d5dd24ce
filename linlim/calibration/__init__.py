"""Calibration solvers: StEFCal, Gauss-Newton calibration, redundant calibration.

* :mod:`linlim.gains` -- the gain operators these solvers fit (:class:`GainProduct`,
  :func:`di_gains`, parameterisations, mutual coupling); re-exported here, and the old
  paths ``.gains``, ``.parameterizations``, ``.coupling`` still import.
* :mod:`.stefcal` -- StEFCal (Salvini & Wijnholds 2014).
* :mod:`.solve` -- Gauss-Newton / Levenberg-Marquardt through the shared optimisers.
* :mod:`.redundant` -- redundant calibration (logcal, redcal).
* :mod:`.fisher`, :mod:`.gauge`, :mod:`.weights` -- Cramér-Rao bounds, gauge, weights
  (built by :func:`linlim.likelihood.noise_weights`).
* :mod:`linlim.pipelines.calibrate` -- :func:`calibrate_from_config` behind ``linlim
  calibrate`` (formerly ``.pipeline``, still importable there).
"""

from ..gains import *  # noqa: F403 -- the gain operators (linlim.gains.__all__), re-exported
from ..gains import __all__ as _GAIN_NAMES
from .fisher import (
    DegenerateCalibrationError,
    antenna_variance,
    crb_covariance,
    di_fisher,
    gauge_covariance,
    null_space_dimension,
    operator_fisher,
)
from .gauge import align_phase, apply_gauge
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
    *_GAIN_NAMES,
    "RedundantVisibilities", "redundant_visibilities", "drop_small_groups", "logcal",
    "redcal_problem", "RedcalProblem", "redcal", "RedcalSolution", "fix_degeneracies",
    "degeneracy_count",
    "stefcal", "StefcalResult",
    "operator_fisher", "di_fisher", "crb_covariance", "antenna_variance", "gauge_covariance",
    "null_space_dimension", "DegenerateCalibrationError",
    "apply_gauge", "align_phase", "make_weights", "clean_data",
]
