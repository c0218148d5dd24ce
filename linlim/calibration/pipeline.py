"""Moved to :mod:`linlim.pipelines.calibrate` (``calibrate_from_config``,
``CalibrationResult``, ``DEFAULTS``); this name stays importable.

The import is lazy so that ``linlim.calibration`` never imports the pipelines layer above
it at import time.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []
_MOVED = ("DEFAULTS", "CalibrationResult", "calibrate_from_config")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from ..pipelines import calibrate

        return getattr(calibrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
