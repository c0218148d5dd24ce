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


#: Tests that take over ~10 s on the shared 2-core CI machine (measured with
#: ``--durations``), marked ``slow`` here so their files need no edit; they still run in
#: ``make test``. Deselect them for a quick pass with ``-m "not slow"``. Entries are node
#: ids without parameters (every parametrisation is marked).
SLOW_TESTS = frozenset({
    "tests/test_backend.py::test_environment_variable_selects_backend",
    "tests/test_bandpower.py::test_iterated_ml_coverage_and_null",
    "tests/test_distributed.py::test_distributed_equals_in_process",
    "tests/test_distributed_simulate.py::test_scenario_distributed_equals_in_process",
    "tests/test_emcee_bridge.py::test_banana_quantiles_within_mcse",
    "tests/test_examples.py::test_gradients_vs_finite_differences_runs",
    "tests/test_examples.py::test_toolbox_gallery_writes_five_pngs",
    "tests/test_fisher.py::test_fisher_errors_match_scatter_of_map_estimates",
    "tests/test_hmc.py::test_banana_quantiles_within_mcse",
    "tests/test_hmc.py::test_fisher_preconditioning_beats_unpreconditioned",
    "tests/test_hmc.py::test_kill_and_resume_bit_identical",
    "tests/test_hmc.py::test_moments_dense_adaptation_rotated_gaussian",
    "tests/test_hmc.py::test_moments_fisher_preconditioned_rotated_gaussian_d1000",
    "tests/test_pipelines.py::test_demo_reveals_signal_only_when_the_beam_is_fitted",
    "tests/test_pipelines.py::test_simulate_calibrate_fit_sample_commands",
    "tests/test_realdata.py::test_reference_chain_recovers_true_gains",
    "tests/test_realdata.py::test_simulate_template_matches_matvis",
    "tests/test_signal.py::test_grf_sky_and_projected_prior",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


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
