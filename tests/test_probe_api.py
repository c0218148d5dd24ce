"""Regression tests for the issue-21 bad-input probe (Python API)."""

import numpy as np
import pytest

from linlim.errors import InputError


def test_jd_array_refuses_mjd_start():
    from linlim.telescope.times import jd_array

    with pytest.raises(InputError, match=r"start_jd.*MJD"):
        jd_array(59000.5, 10, 3)
    assert jd_array(2459000.5, 10, 3).shape == (3,)

