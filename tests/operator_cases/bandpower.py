"""Operator cases for linlim.sky.bandpower."""

from __future__ import annotations

import numpy as np

from linlim.sky.bandpower import ModeBlockMatrix
from linlim.testing import operator_case


@operator_case(ModeBlockMatrix)
def _mode_block(dtype, rng):
    M = rng.standard_normal((3, 5, 4))
    if np.dtype(dtype).kind == "c":
        M = M + 1j * rng.standard_normal(M.shape)
    return ModeBlockMatrix(M, in_dtype=dtype)
