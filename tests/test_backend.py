"""Backend selection: default, set_backend, environment variable, with-block, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import linlim
from linlim import backend
from linlim.errors import BackendError, BackendMismatchError
from linlim.operators import Diagonal


def test_default_is_numpy() -> None:
    assert linlim.get_backend() == "numpy"
    assert linlim.get_xp() is np


def test_with_block_restores() -> None:
    with linlim.use_backend("numpy") as xp:
        assert xp is np
        assert linlim.get_backend() == "numpy"
    assert linlim.get_backend() == "numpy"


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(BackendError, match=r"expected one of \('numpy', 'cupy'\), received 'torch'"):
        linlim.set_backend("torch")


def test_environment_variable_selects_backend() -> None:
    code = "import linlim; print(linlim.get_backend())"
    base = {"PATH": "", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**base, "LINLIM_BACKEND": "numpy"}, check=True)
    assert out.stdout.strip() == "numpy"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**base, "LINLIM_BACKEND": "fortran"})
    assert bad.returncode != 0 and "received 'fortran'" in bad.stderr


@pytest.mark.skipif(backend.cupy_available(), reason="a GPU is present")
def test_cupy_without_gpu_says_how_to_fall_back() -> None:
    with pytest.raises(BackendError, match="set_backend\\('numpy'\\)"):
        linlim.set_backend("cupy")
    with pytest.raises(BackendError, match="LINLIM_BACKEND=numpy"):
        with linlim.use_backend("cupy"):
            pass
    assert linlim.get_backend() == "numpy"


def test_numba_is_available() -> None:
    assert backend.HAS_NUMBA


class _FakeCupyArray:
    """Stands in for a CuPy array: only its module name matters to the check."""

    __module__ = "cupy._core.core"
    shape = (2,)
    dtype = np.dtype(np.float64)


def test_arrays_never_silently_cross_devices() -> None:
    op = Diagonal(np.ones(2))
    with pytest.raises(BackendMismatchError, match="expected a numpy array, received a cupy"):
        op.matvec(_FakeCupyArray())


def test_scatter_add_sums_repeats() -> None:
    out = np.zeros(4)
    backend.scatter_add(out, np.array([1, 1, 3]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(out, [0.0, 3.0, 0.0, 5.0])
