"""YAML configuration files for the ``linlim`` command: reading, a typed schema, and the
start of every job.

A config is a nested mapping. Each command has built-in defaults; a user file overrides
any subset of them. Unknown keys are refused (a typo never silently falls back to a
default), and the message names the full key path and the allowed keys.

Every value is checked against a schema (:func:`validate_config`): its type is the
default's (bool, int, float, str, list) unless :data:`SCHEMA` says more (enumerations,
ranges, paths, ``null`` allowed). A wrong type is an :class:`~linlim.errors.InputError`
naming the key, the value and what is allowed: ``resume: 'false'`` (a string) is refused
rather than read as true, ``ntimes: 2.7`` is refused rather than truncated. YAML 1.1 reads
``100.0e6`` as a string; :func:`load_config` reads it as the float it means.

Relative paths in a config file resolve against the file's folder, not the working
directory. The output folder is created only after the whole config (and its input files)
passed the checks, and an existing result is not overwritten unless asked
(:func:`start_run`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import yaml

from ..errors import InputError

__all__ = ["load_config", "merge_config", "dump_config", "start_run", "prepare_run",
           "create_output", "validate_config", "Spec", "SCHEMA", "INPUT_PATH_KEYS",
           "OUTPUT_PATH_KEYS", "overwrite_policy", "read_yaml"]


@dataclass(frozen=True)
class Spec:
    """Type and range of one config value.

    Attributes
    ----------
    kind : {"bool", "int", "float", "str", "path", "list", "any", "int_or_all"}
    nullable : bool
        ``null`` allowed.
    low, high : float or None
        Inclusive bounds (``low_open``/``high_open`` make them strict).
    choices : tuple of str, optional
        Allowed values of an enumeration.
    must_exist : bool
        A path that must exist (an input file).
    """

    kind: str
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    must_exist: bool = False

    def allowed(self) -> str:
        """What is allowed, in words (for messages)."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "int_or_all":
            text = "an integer >= 1 or 'all'"
        else:
            text = {"bool": "true or false", "int": "an integer", "float": "a number",
                    "str": "a string", "path": "a file path", "list": "a list",
                    "any": "any value"}[self.kind]
            if self.low is not None or self.high is not None:
                lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
                hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
                text += " " + " and ".join(x for x in (lo, hi) if x)
        if self.nullable:
            text += " (or null)"
        return text


_POS = dict(low=0.0, low_open=True)
_NONNEG = dict(low=0.0)
_GE1 = dict(low=1)

#: Schema entries by the last part of the key path (or the full dotted path, which wins).
SCHEMA: dict[str, Spec] = {
    # inputs and outputs
    "template": Spec("path", nullable=True, must_exist=True),
    "data": Spec("path", nullable=True, must_exist=True),
    "model": Spec("path", nullable=True, must_exist=True),
    "catalog": Spec("path", nullable=True, must_exist=True),
    "gains": Spec("path", nullable=True, must_exist=True),
    "output": Spec("path"),
    "solutions": Spec("path", nullable=True),
    "plot": Spec("path", nullable=True),
    "calibrated": Spec("path", nullable=True),
    "beam": Spec("str"),
    "pols": Spec("list", nullable=True),
    "pol": Spec("str"),
    "pol_convention": Spec("str", choices=("sum", "avg")),
    # calibration
    "method": Spec("str", choices=("stefcal", "gn", "lm")),
    "time_interval": Spec("int_or_all"),
    "freq_interval": Spec("int_or_all"),
    "gauge": Spec("str", choices=("ref_antenna", "mean_phase", "none")),
    "ref_ant": Spec("int", low=0),
    "tol": Spec("float", **_POS),
    "maxiter": Spec("int", **_GE1),
    "sigma": Spec("float", nullable=True, **_POS),
    "min_snr": Spec("float", **_NONNEG),
    # scenario
    "seed": Spec("int", low=0),
    "hex_num": Spec("int", **_GE1),
    "spacing_m": Spec("float", **_POS),
    "freq_min_hz": Spec("float", **_POS),
    "freq_max_hz": Spec("float", **_POS),
    "nfreq": Spec("int", **_GE1),
    "ntimes": Spec("int", **_GE1),
    "integration_s": Spec("float", **_POS),
    "start_jd": Spec("float", low=2_000_000.0, high=3_000_000.0),
    "nsources": Spec("int", **_GE1),
    "radius_deg": Spec("float", low=0.0, high=180.0, low_open=True),
    "flux_min_jy": Spec("float", **_POS),
    "flux_max_jy": Spec("float", **_POS),
    "index_std": Spec("float", **_NONNEG),
    "diameter_m": Spec("float", **_POS),
    "nside": Spec("int", **_GE1),
    "rms_mk": Spec("float", **_NONNEG),
    "basis": Spec("str", choices=("modes", "grf", "stripe")),
    "lmax": Spec("int", **_GE1),
    "nk": Spec("int", **_GE1),
    "sigma_jy": Spec("float", **_POS),
    "noise_jy": Spec("float", **_NONNEG),
    "amplitude_rms": Spec("float", **_NONNEG),
    "phase_rms_rad": Spec("float", **_NONNEG),
    # fit / sample / demo
    "fit.solver": Spec("str", choices=("dense", "cg")),
    "catalog_flux_error": Spec("float", **_NONNEG),
    "catalog_index_error": Spec("float", **_NONNEG),
    "prior_logflux_sigma": Spec("float", **_POS),
    "prior_index_sigma": Spec("float", **_POS),
    "prior_gain_sigma": Spec("float", **_POS),
    "chains": Spec("int", **_GE1),
    "warmup": Spec("int", low=0),
    "draws": Spec("int", **_GE1),
    "algorithm": Spec("str", choices=("hmc", "nuts")),
    "checkpoint_every": Spec("int", **_GE1),
    "checkpoint_seconds": Spec("float", **_POS),
    "tau_cut_s": Spec("float", **_POS),
    "wedge_margin_s": Spec("float", **_NONNEG),
    "taper": Spec("str", choices=("blackman-harris", "hann", "tukey", "none")),
    "fit.fisher": Spec("str", choices=("dense", "none")),
    "map_solver": Spec("str", choices=("structured", "dense")),
    "jitter": Spec("float", low=0.0, high=1.0, high_open=True),
    "memory_limit_gib": Spec("float", nullable=True, **_POS),
    "fiducial_rms_mk": Spec("float", **_POS),
    "cg_maxiter": Spec("int", **_GE1),
    "cg_tol": Spec("float", low=0.0, high=1.0, low_open=True, high_open=True),
    "refresh_every": Spec("int", **_GE1),
    "fit.ftol": Spec("float", **_NONNEG),
    "loss_atol": Spec("float", **_NONNEG),
    "bjk_iterations": Spec("int", **_GE1),
}

#: (lower, upper) key pairs of one mapping: the lower must not exceed the upper.
ORDERED_PAIRS = (("flux_min_jy", "flux_max_jy"), ("freq_min_hz", "freq_max_hz"))
#: Keys of one mapping that cannot both be set (``template`` is only used without data).
EXCLUSIVE_PAIRS = (("data", "template"),)

#: Keys whose values are input files (checked to exist before anything is written).
INPUT_PATH_KEYS = ("template", "data", "model", "catalog", "gains")
#: Keys whose values are output paths.
OUTPUT_PATH_KEYS = ("output", "solutions", "plot", "calibrated")

_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e6`` and ``100.0e6`` (YAML 1.2 floats) as floats, and
    refuses a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:   # an unhashable key: PyYAML reports it
                continue
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file (1.2-style floats); a syntax error is an :class:`InputError`
    naming the file, line and column."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"config: file {p!r} does not exist")
    try:
        with open(p) as fh:
            return yaml.load(fh, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"config: {p!r} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"config: cannot read {p!r}: {exc}") from None


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


def _spec_for(path: str, default: Any) -> Spec:
    leaf = path.rsplit(".", 1)[-1]
    for key in (path, ".".join(path.split(".")[-2:]), leaf):
        if key in SCHEMA:
            return SCHEMA[key]
    nullable = default is None
    if isinstance(default, bool):
        return Spec("bool")
    if isinstance(default, int):
        return Spec("int")
    if isinstance(default, float):
        return Spec("float")
    if isinstance(default, str):
        return Spec("str")
    if isinstance(default, (list, tuple)):
        return Spec("list")
    return Spec("any", nullable=nullable)


def _bad(path: str, value: Any, spec: Spec, extra: str = "") -> InputError:
    kind = f" (a {type(value).__name__})" if isinstance(value, str) and spec.kind in (
        "bool", "int", "float") else ""
    return InputError(f"config: {path!r} = {value!r}{kind} is not allowed; expected "
                      f"{spec.allowed()}{extra}")


def _check_value(path: str, value: Any, spec: Spec, default: Any) -> Any:
    if value is None:
        if spec.nullable or default is None:
            return None
        raise _bad(path, value, spec)
    k = spec.kind
    if k == "bool":
        if not isinstance(value, bool):
            raise _bad(path, value, spec)
        return value
    if k == "int_or_all":
        if isinstance(value, str) and value.strip().lower() == "all":
            return "all"
        if isinstance(value, str) and value.strip().isdigit():   # from the command line
            value = int(value.strip())
        spec_i = Spec("int", low=1)
        try:
            return _check_value(path, value, spec_i, default)
        except InputError:
            raise _bad(path, value, spec) from None
    if k == "int":
        if isinstance(value, bool):
            raise _bad(path, value, spec)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise _bad(path, value, spec)
    elif k == "float":
        if isinstance(value, bool):
            raise _bad(path, value, spec)
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            value = float(value)
        if not isinstance(value, (int, float)):
            raise _bad(path, value, spec)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise _bad(path, value, spec)
    elif k in ("str", "path"):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise _bad(path, value, spec)
        if spec.choices and value not in spec.choices:
            raise _bad(path, value, spec)
        return value
    elif k == "list":
        if not isinstance(value, (list, tuple)):
            raise _bad(path, value, spec)
        if isinstance(default, (list, tuple)) and default and all(
                isinstance(d, (int, float)) and not isinstance(d, bool) for d in default):
            if len(value) != len(default) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise _bad(path, value, spec, f" of {len(default)} numbers")
        return list(value)
    else:
        return value
    if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
        raise _bad(path, value, spec)
    if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
        raise _bad(path, value, spec)
    return value


def validate_config(config: Mapping[str, Any], defaults: Mapping[str, Any],
                    path: str = "", check_inputs: bool = True) -> dict:
    """Check every value of a merged config against the schema; returns the config with
    values normalised (``"1e8"`` -> ``1e8``, ``3.0`` -> ``3`` for an integer key).

    Parameters
    ----------
    config : mapping
        Merged over ``defaults`` already.
    defaults : mapping
    check_inputs : bool
        Input files (:data:`INPUT_PATH_KEYS`) must exist.

    Raises
    ------
    InputError
        Naming the key, the value received and what is allowed.
    """
    out = dict(config)
    for lo, hi in ORDERED_PAIRS:
        a, b = config.get(lo), config.get(hi)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b:
            p = f"{path}." if path else ""
            raise InputError(f"config: {p + lo!r} = {a!r} exceeds {p + hi!r} = {b!r}; "
                             f"expected {lo} <= {hi}")
    for a, b in EXCLUSIVE_PAIRS:
        if config.get(a) is not None and config.get(b) is not None:
            p = f"{path}." if path else ""
            raise InputError(f"config: {p + a!r} and {p + b!r} are both set "
                             f"({config[a]!r}, {config[b]!r}); expected one of them: the "
                             f"{b} is only used to simulate when there is no {a}")
    for key, value in config.items():
        where = f"{path}.{key}" if path else str(key)
        default = defaults.get(key) if isinstance(defaults, Mapping) else None
        if isinstance(value, Mapping):
            out[key] = validate_config(value, default or {}, where, check_inputs)
            continue
        spec = _spec_for(where, default)
        out[key] = v = _check_value(where, value, spec, default)
        if check_inputs and spec.kind == "path" and spec.must_exist and v is not None \
                and not os.path.exists(v):
            raise InputError(f"config: {where!r}: file {v!r} does not exist")
        if check_inputs and where.rsplit(".", 1)[-1] == "beam" and isinstance(v, str) \
                and ":" not in v and not os.path.exists(v):
            raise InputError(f"config: {where!r} = {v!r}: expected 'airy:DIAMETER_M', "
                             "'gaussian:FWHM_DEG' or an existing beam file")
    return out


def _resolve_paths(user: Any, base: pathlib.Path, path: str = "") -> Any:
    """Relative input/output paths of a config file, made relative to its folder."""
    if not isinstance(user, Mapping):
        return user
    out = {}
    for key, value in user.items():
        where = f"{path}.{key}" if path else str(key)
        leaf = str(key)
        if isinstance(value, Mapping):
            out[key] = _resolve_paths(value, base, where)
        elif isinstance(value, str) and (leaf in INPUT_PATH_KEYS or leaf in OUTPUT_PATH_KEYS
                                         or (leaf == "beam" and ":" not in value)) \
                and not os.path.isabs(os.path.expanduser(value)):
            out[key] = str(base / value)
        else:
            out[key] = value
    return out


def load_config(path: str | pathlib.Path | None, defaults: Mapping[str, Any]) -> dict:
    """Read a YAML file (or nothing) and merge it over ``defaults``; relative paths in the
    file resolve against the file's folder."""
    if path is None:
        return copy.deepcopy(dict(defaults))
    path = pathlib.Path(path)
    user = read_yaml(path) or {}
    if not isinstance(user, Mapping):
        raise InputError(
            f"config: {str(path)!r} must hold a mapping, received {type(user).__name__}"
        )
    user = _resolve_paths(user, path.resolve().parent)
    return merge_config(defaults, user)


def dump_config(config: Mapping[str, Any], path: str | pathlib.Path) -> None:
    """Write a config to YAML (every job saves the config it ran with beside its outputs)."""
    with open(path, "w") as fh:
        yaml.safe_dump(dict(config), fh, sort_keys=False)


_OVERWRITE: list[bool | None] = [None]


@contextlib.contextmanager
def overwrite_policy(overwrite: bool) -> Iterator[None]:
    """Within the block, :func:`start_run` refuses (False) or allows (True) an output folder
    that already holds a result; the ``linlim`` command sets it from ``--overwrite``.
    Outside any block (the Python API) results are overwritten, as before."""
    _OVERWRITE.append(bool(overwrite))
    try:
        yield
    finally:
        _OVERWRITE.pop()


def prepare_run(config: Mapping[str, Any] | None, defaults: Mapping[str, Any],
                output: str | pathlib.Path | None, *, overwrite: bool | None = None,
                results: Sequence[str] = ("config.yaml",)) -> tuple[dict, pathlib.Path]:
    """Merge and validate a job's config and check its output folder, creating nothing.

    Parameters
    ----------
    config : mapping or None
        User values over ``defaults``.
    defaults : mapping
    output : path, optional
        Output folder (else the config's ``output``).
    overwrite : bool, optional
        Allow an output folder already holding one of ``results`` (default: the
        :func:`overwrite_policy` in force; outside one, True). A config with
        ``hmc.resume: true`` may reuse its folder (an explicit resume).
    results : sequence of str
        File names that mark a finished (or started) run.

    Returns
    -------
    (config, output folder)

    Raises
    ------
    InputError
        Bad config values, missing input files, an output path that is a file or not
        writable, or an existing result without ``overwrite``.
    """
    cfg = merge_config(defaults, config or {})
    cfg = validate_config(cfg, defaults)
    out = pathlib.Path(output or cfg["output"])
    if overwrite is None:
        overwrite = True if _OVERWRITE[-1] is None else _OVERWRITE[-1]
    resume = bool(isinstance(cfg.get("hmc"), Mapping) and cfg["hmc"].get("resume") is True
                  and "resume" in (config or {}).get("hmc", {}))
    if out.exists():
        if not out.is_dir():
            raise InputError(f"output: {str(out)!r} exists and is not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"output: folder {str(out)!r} is not writable")
        present = [r for r in results if (out / r).exists()]
        if present and not overwrite and not resume:
            raise InputError(f"output: folder {str(out)!r} already holds a result "
                             f"({', '.join(present)}); pass --overwrite to replace it, or "
                             "choose another --out")
    else:
        parent = out.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"output: cannot create {str(out)!r}: {str(parent)!r} is not "
                             "writable")
    _check_output_files(cfg)
    return cfg, out


def _check_output_files(cfg: Mapping[str, Any], path: str = "") -> None:
    """Output files named in the config (``solutions``, ``plot``, ``calibrated``) must lie
    in a writable folder (or one that can be created), checked before anything runs."""
    for key, value in cfg.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, Mapping):
            _check_output_files(value, where)
        elif key in OUTPUT_PATH_KEYS and key != "output" and isinstance(value, str) and value:
            parent = pathlib.Path(value).resolve().parent
            while not parent.exists():
                parent = parent.parent
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"config: {where!r} = {value!r}: expected a file in a "
                                 f"writable folder, but {str(parent)!r} is not a writable "
                                 "folder")


def create_output(cfg: Mapping[str, Any], out: pathlib.Path) -> pathlib.Path:
    """Create the output folder and save the config there as ``config.yaml``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    except OSError as exc:
        raise InputError(f"output: cannot write to {str(out)!r}: {exc.strerror or exc}"
                         ) from None
    return out


def start_run(config: Mapping[str, Any] | None, defaults: Mapping[str, Any],
              output: str | pathlib.Path | None, *, overwrite: bool | None = None,
              results: Sequence[str] = ("config.yaml",)) -> tuple[dict, pathlib.Path]:
    """Common start of a ``linlim`` job: :func:`prepare_run` (merge, validate, check the
    output folder), then :func:`create_output`. Returns ``(config, output folder)``."""
    cfg, out = prepare_run(config, defaults, output, overwrite=overwrite, results=results)
    create_output(cfg, out)
    return cfg, out
