"""Moved to :mod:`linlim.pipelines.calibrate` (``calibrate_from_config``,
``CalibrationResult``, ``DEFAULTS``); this name stays importable.

The re-export is resolved by name on first use (importlib), so the calibration layer
never imports the pipelines layer above it.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []
_MOVED = ("DEFAULTS", "CalibrationResult", "calibrate_from_config")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module("linlim.pipelines.calibrate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
