"""Regression tests for the issue-21 bad-input probe (Python API)."""

import numpy as np
import pytest

from linlim.errors import InputError


def test_jd_array_refuses_mjd_start():
    from linlim.telescope.times import jd_array

    with pytest.raises(InputError, match=r"start_jd.*MJD"):
        jd_array(59000.5, 10, 3)
    assert jd_array(2459000.5, 10, 3).shape == (3,)


def test_az_za_to_enu_refuses_nonfinite():
    from linlim.telescope.coordinates import az_za_to_enu

    with pytest.raises(InputError, match="az"):
        az_za_to_enu([np.nan], [0.1])
    with pytest.raises(InputError, match="za"):
        az_za_to_enu([0.0], [np.inf])
    assert np.allclose(az_za_to_enu([0.0], [0.0])[:, 0], [0, 0, 1])
