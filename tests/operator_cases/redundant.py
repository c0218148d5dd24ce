"""Operator cases for linlim.calibration.redundant: the group -> baseline expansion and the
joint (gains, group visibilities) redundant-calibration model."""

from __future__ import annotations

import numpy as np

from linlim.calibration.redundant import (
    RedundantVisibilities,
    drop_small_groups,
    redcal_problem,
)
from linlim.operators import Composition
from linlim.telescope import hex_array
from linlim.telescope.baselines import redundant_groups
from linlim.testing import operator_case


@operator_case(RedundantVisibilities, dtypes=("complex128",))
def _redvis(dtype, rng):
    return RedundantVisibilities([0, 1, 0, 2, 1, 2, 0], [False, True, True, False, False,
                                                         True, False], 2, 3)


@operator_case(Composition, dtypes=("float64",), name="redcal model (hex 7)")
def _redcal_model(dtype, rng):
    lay = hex_array(2)
    red = drop_small_groups(redundant_groups(lay, autos=False))
    prob = redcal_problem(np.zeros((1, 2, red.pairs.shape[0]), complex), red, lay, noise=1.0)
    return prob.model
