"""The ``linlim`` command: ``demo``, ``simulate``, ``calibrate``, ``fit``, ``sample`` and
``config``, each driven by a YAML config merged over built-in defaults; command-line
options override the config.

Examples
--------
::

    linlim demo                          # the main job on built-in defaults
    linlim config demo > my.yaml         # print the defaults, edit, then
    linlim demo --config my.yaml --out results/
    linlim simulate --template obs.uvh5 --catalog GLEAM_ATEAM.yml --beam airy:14 --out D
    linlim calibrate --data raw.uvh5 --model D/data.uvh5 --time-interval all --out C
    linlim fit --data obs.uvh5 --catalog GLEAM_ATEAM.yml --out O

Every error is one line, ``linlim CMD: error: ...``, with exit status 2; Ctrl-C prints one
line, keeps the checkpoints written so far and exits with status 130. The output folder
is created only after the config and its input files passed the checks, and a folder
holding a result is not overwritten without ``--overwrite`` (or an explicit resume).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Mapping

import yaml

from .errors import InputError, LinlimError

__all__ = ["main", "COMMANDS", "OPTIONS"]


def _commands() -> dict[str, tuple[dict, Callable[..., Any], str]]:
    from .pipelines.calibrate import CALIBRATE_DEFAULTS, run_calibrate
    from .pipelines.demo import DEMO_DEFAULTS, run_demo
    from .pipelines.fit import FIT_DEFAULTS, run_fit
    from .pipelines.sample import SAMPLE_DEFAULTS, run_sample
    from .pipelines.simulate import SIMULATE_DEFAULTS, run_simulate

    return {
        "demo": (DEMO_DEFAULTS, run_demo,
                 "joint foreground/beam/gain fit revealing a 21 cm signal (the main job)"),
        "simulate": (SIMULATE_DEFAULTS, run_simulate,
                     "simulate a drift scan (a scenario, or a catalogue on a file's "
                     "geometry) and write uvh5 files"),
        "calibrate": (CALIBRATE_DEFAULTS, run_calibrate,
                      "direction-independent calibration (StEFCal or Gauss-Newton)"),
        "fit": (FIT_DEFAULTS, run_fit, "joint MAP fit with Fisher errors"),
        "sample": (SAMPLE_DEFAULTS, run_sample, "Hamiltonian Monte Carlo on the posterior"),
    }


COMMANDS = ("demo", "simulate", "calibrate", "fit", "sample", "config")

#: Command-line options: (flag, metavar, help, config key paths tried in order). An option
#: is offered by a command whose defaults have one of the key paths.
OPTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("--template", "FILE", "uvh5 whose geometry (antennas, baselines, times, channels, "
     "pols, site) becomes the observation", ("template",)),
    ("--data", "FILE", "data file (uvh5 or any format pyuvdata reads)",
     ("data", "calibration.data")),
    ("--model", "FILE", "model visibilities (uvh5) to calibrate against",
     ("calibration.model",)),
    ("--catalog", "FILE", "point sources: BayesLIM YAML, CSV or HDF5", ("catalog",)),
    ("--beam", "SPEC", "airy:DIAMETER_M, gaussian:FWHM_DEG, or a pyuvdata beam file",
     ("beam",)),
    ("--gains", "FILE", "calfits/calh5 gains to corrupt the simulation with", ("gains",)),
    ("--noise-jy", "SIGMA", "sky noise rms per complex visibility (Jy)", ("noise_jy",)),
    ("--solver", "NAME", "calibration solver: stefcal, gn or lm",
     ("calibration.solver.method",)),
    ("--time-interval", "N|all", "times per solution cell",
     ("calibration.solver.time_interval",)),
    ("--freq-interval", "N|all", "channels per solution cell",
     ("calibration.solver.freq_interval",)),
    ("--checkpoint-every", "N", "write the chains at least every N iterations",
     ("hmc.checkpoint_every",)),
    ("--checkpoint-seconds", "S", "write the chains at least every S seconds",
     ("hmc.checkpoint_seconds",)),
)


def _has(defaults: Mapping, path: str) -> bool:
    node: Any = defaults
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _set(config: dict, path: str, value: Any) -> None:
    node = config
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _parser(cmds: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linlim", description=__doc__.split("\n\n")[0])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"linlim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (defaults, _, text) in cmds.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", help="YAML file overriding the built-in defaults")
        p.add_argument("--out", help="output folder (overrides the config's 'output')")
        for flag, metavar, helptext, paths in OPTIONS:
            if any(_has(defaults, k) for k in paths):
                p.add_argument(flag, metavar=metavar, help=helptext + " (overrides the "
                               f"config's {next(k for k in paths if _has(defaults, k))})")
        p.add_argument("--quiet", action="store_true",
                       help="no progress bars or status lines")
        p.add_argument("--overwrite", action="store_true",
                       help="replace the results already in the output folder")
    p = sub.add_parser("config", help="print a command's built-in defaults as YAML")
    p.add_argument("name", choices=sorted(cmds))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``linlim`` command; returns the exit status."""
    cmds = _commands()
    parser = _parser(cmds)
    args = parser.parse_args(argv)
    if args.command == "config":
        try:
            yaml.safe_dump(cmds[args.name][0], sys.stdout, sort_keys=False)
            sys.stdout.flush()
        except OSError as exc:
            print(f"linlim config: error: cannot write the defaults to standard output: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
        return 0
    from .io.config import load_config, overwrite_policy
    from .pipelines.progress import set_quiet

    defaults, run, _ = cmds[args.command]
    out = args.out
    try:
        if out is not None and not out.strip():
            raise InputError("--out: expected an output folder path, received '' (an empty "
                             "string; an unset shell variable?)")
        config = load_config(args.config, defaults)
        for flag, _, _, paths in OPTIONS:
            value = getattr(args, flag[2:].replace("-", "_"), None)
            if value is not None:
                _set(config, next(k for k in paths if _has(defaults, k)), value)
        if args.quiet:
            set_quiet(True)
            if "quiet" in defaults:
                config["quiet"] = True
        out = out or config.get("output")
        with overwrite_policy(args.overwrite):
            run(config, output=args.out)
    except KeyboardInterrupt:
        print(f"linlim {args.command}: interrupted; checkpoints written so far are kept "
              f"in {out!s}", file=sys.stderr)
        return 130
    except LinlimError as exc:
        print(f"linlim {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"linlim {args.command}: error: config is not valid YAML: {_one_line(exc)}",
              file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        name = getattr(exc, "filename", None)
        what = f"{exc.strerror}: {name!r}" if getattr(exc, "strerror", None) and name \
            else _one_line(exc) or type(exc).__name__
        print(f"linlim {args.command}: error: {what}", file=sys.stderr)
        return 2
    finally:
        set_quiet(False)
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
