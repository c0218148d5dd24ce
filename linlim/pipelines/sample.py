"""``linlim sample``: Hamiltonian Monte Carlo on the joint posterior.

Fits the MAP first (as ``linlim fit``), then samples with a Fisher-matrix metric from the
MAP. Draws and statistics go to ``chains.h5`` as they are made (kill-safe checkpoints; a
rerun with the same config resumes), with a summary table (R-hat, ESS, MCSE) and trace and
corner plots of the beam parameters. ``chains.h5`` and the summary carry the parameter
names of ``fit.h5`` (:func:`linlim.io.results.parameter_names`: ``beam.diameter_m``, ...).

Checkpoints are written every ``hmc.checkpoint_every`` iterations or
``hmc.checkpoint_seconds`` seconds, whichever comes first, so a kill loses at most that
much work. Neither setting is part of the run's fingerprint: a run may be resumed with
other values, and the draws are the same bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..io.results import add_parameter_names
from .fit import FIT_DEFAULTS, beam_indices, fit_from_config
from .progress import is_quiet

__all__ = ["SAMPLE_DEFAULTS", "run_sample", "checkpoint_interval"]

#: Built-in defaults of ``linlim sample``.
SAMPLE_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in FIT_DEFAULTS.items() if k != "plots"},   # the same inputs as fit
    "output": "linlim_sample_output",
    "hmc": {"chains": 2, "warmup": 100, "draws": 100, "seed": 1, "algorithm": "hmc",
            "resume": True, "checkpoint_every": 20, "checkpoint_seconds": 30.0},
    "plots": True,
}


def checkpoint_interval(hmc: dict) -> tuple[int, float]:
    """``(checkpoint_every, checkpoint_seconds)`` from the ``hmc`` config section, checked.

    Raises
    ------
    InputError
        ``checkpoint_every`` not an integer >= 1, or ``checkpoint_seconds`` not a finite
        number > 0 (booleans and strings are refused).
    """
    every, seconds = hmc.get("checkpoint_every", 20), hmc.get("checkpoint_seconds", 30.0)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise InputError(f"config: hmc.checkpoint_every: expected an integer >= 1 "
                         f"(iterations), received {every!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)) \
            or not np.isfinite(seconds) or seconds <= 0:
        raise InputError(f"config: hmc.checkpoint_seconds: expected a number > 0 (seconds), "
                         f"received {seconds!r}")
    return int(every), float(seconds)


def run_sample(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Fit, then sample the joint posterior; returns a summary dict."""
    from ..inference.diagnostics import summary as chain_summary
    from ..inference.hmc import sample
    from ..inference.metric import fisher_metric

    user_hmc = (config or {}).get("hmc") if isinstance(config, dict) else None
    if isinstance(user_hmc, dict):   # refuse a bad interval before the (long) MAP fit
        checkpoint_interval({**SAMPLE_DEFAULTS["hmc"], **user_hmc})
    cfg, out, _, sim, fit, F = fit_from_config(config, SAMPLE_DEFAULTS, output)
    theta_map = fit["result"].x
    h = cfg["hmc"]
    every, seconds = checkpoint_interval(h)
    res = sample(fit["post"], num_draws=int(h["draws"]), num_warmup=int(h["warmup"]),
                 chains=int(h["chains"]), seed=int(h["seed"]), metric=fisher_metric(F),
                 algorithm=h["algorithm"], init=theta_map, path=str(out / "chains.h5"),
                 resume=bool(h["resume"]), checkpoint_every=every,
                 checkpoint_seconds=seconds, progress=not is_quiet())
    names = fit["model"].names
    add_parameter_names(out / "chains.h5", names)
    beam_idx = beam_indices(fit["model"])
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
