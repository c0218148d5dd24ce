"""``linlim sample``: Hamiltonian Monte Carlo on the joint posterior.

Fits the MAP first (as ``linlim fit``), then samples with a Fisher-matrix metric from the
MAP. Draws and statistics go to ``chains.h5`` as they are made (kill-safe checkpoints; a
rerun with the same config resumes), with a summary table (R-hat, ESS, MCSE) and trace and
corner plots of the beam parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fit import FIT_OPTIONS, fit_from_config
from .progress import is_quiet
from .scenario import SCENARIO_DEFAULTS

__all__ = ["SAMPLE_DEFAULTS", "run_sample"]

#: Built-in defaults of ``linlim sample``.
SAMPLE_DEFAULTS: dict[str, Any] = {
    "output": "linlim_sample_output",
    "data": None,
    "catalog": None,
    "pol": "ee",
    "unphase": False,
    "scenario": SCENARIO_DEFAULTS,
    "fit": FIT_OPTIONS,
    "hmc": {"chains": 2, "warmup": 100, "draws": 100, "seed": 1, "algorithm": "hmc",
            "resume": True},
    "plots": True,
}


def run_sample(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Fit, then sample the joint posterior; returns a summary dict."""
    from ..inference.diagnostics import summary as chain_summary
    from ..inference.hmc import sample
    from ..inference.metric import fisher_metric

    cfg, out, _, sim, fit, F = fit_from_config(config, SAMPLE_DEFAULTS, output)
    theta_map = fit["result"].x
    h = cfg["hmc"]
    res = sample(fit["post"], num_draws=int(h["draws"]), num_warmup=int(h["warmup"]),
                 chains=int(h["chains"]), seed=int(h["seed"]), metric=fisher_metric(F),
                 algorithm=h["algorithm"], init=theta_map, path=str(out / "chains.h5"),
                 resume=bool(h["resume"]), progress=not is_quiet())
    names = fit["model"].names
    beam_idx = [names.index(n) for n in ("D0", "gamma", "ripple_cos", "ripple_sin")]
    table = chain_summary(res.draws[:, :, beam_idx], names=[names[i] for i in beam_idx])
    text = str(table)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    if cfg["plots"]:
        from ..plotting.mcmc import corner_plot, trace_plot

        trace_plot(res.draws, out / "trace_beam.png", indices=beam_idx, names=names)
        truths = sim["truth"][beam_idx] if cfg["data"] is None else None
        corner_plot(res.draws, out / "corner_beam.png", indices=beam_idx, names=names,
                    truths=truths)
    ndiv = int(np.sum(res.sample_stats["divergent"]))
    print(f"[linlim sample] {h['chains']} chains x {h['draws']} draws, {ndiv} divergences; "
          f"wrote {out / 'chains.h5'}")
    return {"divergences": ndiv, "output": str(out)}
