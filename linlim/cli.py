"""The ``linlim`` command: ``demo``, ``simulate``, ``calibrate``, ``fit``, ``sample`` and
``config``, each driven by a YAML config merged over built-in defaults.

Examples
--------
::

    linlim demo                          # the main job on built-in defaults
    linlim config demo > my.yaml         # print the defaults, edit, then
    linlim demo --config my.yaml --out results/
    linlim calibrate --config cal.yaml   # calibration.data / calibration.model uvh5 paths
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import yaml

from .errors import LinlimError

__all__ = ["main", "COMMANDS"]


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
                     "simulate a drift scan and write uvh5 files"),
        "calibrate": (CALIBRATE_DEFAULTS, run_calibrate,
                      "direction-independent calibration (StEFCal or Gauss-Newton)"),
        "fit": (FIT_DEFAULTS, run_fit, "joint MAP fit with Fisher errors"),
        "sample": (SAMPLE_DEFAULTS, run_sample, "Hamiltonian Monte Carlo on the posterior"),
    }


COMMANDS = ("demo", "simulate", "calibrate", "fit", "sample", "config")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``linlim`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="linlim", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmds = _commands()
    for name, (_, _, text) in cmds.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", help="YAML file overriding the built-in defaults")
        p.add_argument("--out", help="output folder (overrides the config's 'output')")
    p = sub.add_parser("config", help="print a command's built-in defaults as YAML")
    p.add_argument("name", choices=sorted(cmds))
    args = parser.parse_args(argv)
    if args.command == "config":
        yaml.safe_dump(cmds[args.name][0], sys.stdout, sort_keys=False)
        return 0
    from .io.config import load_config

    defaults, run, _ = cmds[args.command]
    try:
        config = load_config(args.config, defaults)
        run(config, output=args.out)
    except LinlimError as exc:
        print(f"linlim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
