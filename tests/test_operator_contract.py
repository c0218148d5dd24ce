"""The shared operator suite: every concrete operator class in linlim passes the dot test
and the gradient check, in float64 and complex128, on every backend present, on both
derivative paths (``jvp``/``vjp`` and the Jacobian returned by ``linearize``).

Cases live in ``tests/operator_cases/*.py``, registered with
:func:`linlim.testing.operator_case`. A concrete operator class without a case fails here.
"""

from __future__ import annotations

import importlib.util
import pathlib
import zlib

import numpy as np
import pytest

import linlim
from linlim.testing import concrete_operator_classes, dottest, gradcheck, registered_cases

_CASE_DIR = pathlib.Path(__file__).parent / "operator_cases"


def _load_cases() -> None:
    for path in sorted(_CASE_DIR.glob("[!_]*.py")):
        name = f"linlim_operator_cases_{path.stem}"
        if name in globals():
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        globals()[name] = module


_load_cases()
CASES = registered_cases()
PARAMS = [pytest.param(case, dtype, id=f"{case.name}-{dtype}")
          for case in CASES for dtype in ("float64", "complex128") if dtype in case.dtypes]


def test_every_operator_class_has_a_case() -> None:
    covered = {case.cls for case in CASES}
    missing = [f"{c.__module__}.{c.__name__}" for c in concrete_operator_classes()
               if c not in covered]
    assert not missing, (
        "operator classes without a case in tests/operator_cases (register one with "
        f"linlim.testing.operator_case): {missing}"
    )


@pytest.mark.parametrize("case,dtype", PARAMS)
def test_operator_contract(case, dtype, backend) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{case.name}-{dtype}".encode()))
    with linlim.use_backend(backend):
        op, x = case.build(dtype, rng)
        d = dottest(op, x, rng=rng)
        assert d.passed, str(d)
        g = gradcheck(op, x, rng=rng)
        assert g.passed, str(g)
