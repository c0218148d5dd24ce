"""YAML configuration files for the ``linlim`` command.

A config is a nested mapping. Each command has built-in defaults; a user file overrides
any subset of them. Unknown keys are refused (a typo never silently falls back to a
default), and the message names the full key path and the allowed keys.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any, Mapping

import yaml

from ..errors import InputError

__all__ = ["load_config", "merge_config", "dump_config", "start_run"]


def merge_config(defaults: Mapping[str, Any], override: Mapping[str, Any] | None,
                 path: str = "") -> dict:
    """Deep-merge ``override`` into a copy of ``defaults``.

    Parameters
    ----------
    defaults : mapping
        Built-in defaults; its keys are the allowed keys.
    override : mapping or None
        User values.
    path : str
        Key path prefix, for messages.

    Raises
    ------
    InputError
        For a key not in ``defaults``, or a mapping given where a value is expected (or the
        reverse).
    """
    out = copy.deepcopy(dict(defaults))
    for key, value in (override or {}).items():
        where = f"{path}.{key}" if path else str(key)
        if key not in out:
            raise InputError(
                f"config: unknown key {where!r}; allowed keys here are {sorted(out)}"
            )
        if isinstance(out[key], Mapping):
            if not isinstance(value, Mapping):
                raise InputError(
                    f"config: {where!r} expects a mapping with keys {sorted(out[key])}, "
                    f"received {value!r}"
                )
            out[key] = merge_config(out[key], value, where)
        else:
            if isinstance(value, Mapping):
                raise InputError(f"config: {where!r} expects a value, received a mapping")
            out[key] = value
    return out


def load_config(path: str | pathlib.Path | None, defaults: Mapping[str, Any]) -> dict:
    """Read a YAML file (or nothing) and merge it over ``defaults``."""
    if path is None:
        return copy.deepcopy(dict(defaults))
    path = pathlib.Path(path)
    if not path.exists():
        raise InputError(f"config: file {str(path)!r} does not exist")
    with open(path) as fh:
        user = yaml.safe_load(fh) or {}
    if not isinstance(user, Mapping):
        raise InputError(
            f"config: {str(path)!r} must hold a mapping, received {type(user).__name__}"
        )
    return merge_config(defaults, user)


def dump_config(config: Mapping[str, Any], path: str | pathlib.Path) -> None:
    """Write a config to YAML (the demo saves the config it ran with beside its outputs)."""
    with open(path, "w") as fh:
        yaml.safe_dump(dict(config), fh, sort_keys=False)


def start_run(config: Mapping[str, Any] | None, defaults: Mapping[str, Any],
              output: str | pathlib.Path | None) -> tuple[dict, pathlib.Path]:
    """Common start of a ``linlim`` job: merge ``config`` over ``defaults``, create the
    output folder (``output``, else the config's ``output``) and save the merged config
    there as ``config.yaml``. Returns ``(config, output folder)``."""
    cfg = merge_config(defaults, config or {})
    out = pathlib.Path(output or cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    return cfg, out
