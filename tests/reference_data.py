"""Where the optional BayesLIM reference files live, for tests that use them.

The folder is ``$LINLIM_REFERENCE_DATA`` when set, else ``<repository>/../shared/data/bayeslim``
(never an absolute path written into a test). Tests that need a file use
:func:`needs_reference_data`, which skips with the folder searched and the variable to set
when the file is absent.
"""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def reference_data_dir() -> pathlib.Path:
    """The reference-data folder (it may not exist)."""
    env = os.environ.get("LINLIM_REFERENCE_DATA")
    if env:
        return pathlib.Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "data" / "bayeslim"


REFERENCE_DATA = reference_data_dir()


def needs_reference_data(*names: str) -> pytest.MarkDecorator:
    """Skip unless every file in ``names`` is in :data:`REFERENCE_DATA`."""
    missing = [n for n in names if not (REFERENCE_DATA / n).exists()]
    return pytest.mark.skipif(
        bool(missing),
        reason=(f"BayesLIM reference data {missing} not found in {REFERENCE_DATA}; set "
                "LINLIM_REFERENCE_DATA to the folder holding them to run this test"),
    )
