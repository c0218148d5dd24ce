"""Shared test configuration: offline astropy, backend selection, seeded randomness."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# operator_cases/ modules are loaded by test_operator_contract.py (they register cases);
# the doctest collector must not import them a second time
collect_ignore_glob = ["operator_cases/*"]

try:  # never download IERS tables in tests (CI is offline)
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
except ImportError:  # pragma: no cover
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="store",
        default=os.environ.get("LINLIM_TEST_BACKEND", "auto"),
        help="numpy, cupy, or auto (numpy plus cupy when a GPU is present)",
    )


def backends_under_test(config: pytest.Config) -> list[str]:
    """Backends the operator suite runs on. ``cupy`` requested explicitly must work: a
    missing CuPy then fails the suite rather than skipping."""
    choice = config.getoption("--backend")
    if choice == "numpy":
        return ["numpy"]
    if choice == "cupy":
        return ["numpy", "cupy"]
    from linlim.backend import cupy_available

    return ["numpy", "cupy"] if cupy_available() else ["numpy"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends_under_test(metafunc.config))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's name, so every test is reproducible."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture
def xp(backend: str):
    """The array module of the backend under test, active for the test's duration."""
    import linlim

    with linlim.use_backend(backend) as mod:
        yield mod
