"""The main job (``linlim demo``): the 21 cm signal as a parameter of one joint posterior
with point-source and diffuse foregrounds, an unknown chromatic beam and antenna gains.

Steps (each printed as it runs, with a progress bar on stderr):

1. Simulate a HERA-like drift scan (:mod:`linlim.pipelines.scenario`): point sources with
   power-law spectra, a diffuse foreground (low-resolution HEALPix map x log-polynomial
   spectra), an Airy beam whose diameter follows a power law with a reflection ripple,
   per-antenna gains, a mock 21 cm signal drawn from the band-power prior the fit uses
   (HEALPix pixels x DCT k_par modes) and noise. Data go to ``data.uvh5``.
2. Joint MAP of everything, signal included (thousands of parameters), by Gauss-Newton
   with CG inner solves preconditioned by the structured Gauss-Newton Hessian
   (:mod:`linlim.pipelines.signalfit`).
3. The Laplace posterior at the MAP: beam, gain and foreground errors with the signal
   marginalised; the signal's band powers P(k) in mK^2 Mpc^3 with Fisher errors
   (quadratic/BJK estimator on the nuisance-marginalised signal, cosmic variance included).
4. Side by side: the same fit with the beam held at its nominal (wrong) value; the old route
   (foregrounds and instrument fitted, the signal left in the residual, delay-filtered and
   compared with the injected signal); and a null test (the same data without the signal).
5. HMC over the joint hierarchical posterior (band powers as log hyperparameters,
   non-centred signal, linearised likelihood, low-rank metric): band-power means and sds,
   R-hat on band powers and beam.

All files go to the output folder; ``summary.json`` holds the numbers.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..filters import DelayFilter, delay_power_spectrum, split_even_odd
from ..io.config import start_run
from ..io.uvdata import write_uvh5
from .fit import FIT_OPTIONS
from .scenario import SCENARIO_DEFAULTS, Scenario, build_scenario
from .signalfit import (
    SIGNAL_FIT_OPTIONS,
    check_dense_memory,
    fit_with_signal,
    laplace_analysis,
)
from .simulate import simulate_data, uvh5_metadata

__all__ = ["DEMO_DEFAULTS", "run_demo", "delay_comparison"]

#: Built-in defaults of ``linlim demo`` (print them with ``linlim config demo``).
DEMO_DEFAULTS: dict[str, Any] = {
    "output": "linlim_demo_output",
    "scenario": SCENARIO_DEFAULTS,
    "fit": {**FIT_OPTIONS, **SIGNAL_FIT_OPTIONS},
    "filter": {"tau_cut_s": 300e-9, "wedge_margin_s": 100e-9,
               "taper": "blackman-harris"},
    "hmc": {"enabled": True, "chains": 4, "warmup": 100, "draws": 500, "seed": 1,
            "metric": "auto", "metric_rank": 300, "dense_max": 6000, "split": True,
            "jitter": 0.25},
    "steps": {"wrong_beam": True, "old_route": True, "null_test": True},
    "plots": True,
    "progress": True,
}

def _log(msg: str) -> None:
    print(f"[linlim demo] {msg}", flush=True)


def delay_comparison(residual: np.ndarray, injected: np.ndarray, freqs: np.ndarray,
                     tau_cut: float, taper: str) -> dict[str, np.ndarray]:
    """Delay-filter a residual and the injected signal, form cross-power delay spectra of
    even x odd times per baseline, and compare them.

    Returns delays (s), the baseline-averaged spectra of both, the mean difference and its
    standard error from the scatter across baselines (Jy^2 Hz^2).
    """
    P = DelayFilter(residual.shape, freqs, tau_cut)
    out = {}
    per_bl = {}
    for name, v in (("residual", residual), ("injected", injected)):
        e, o = split_even_odd(np.asarray(P.matvec(v)), axis=0)
        ds = delay_power_spectrum(e, o, freqs, taper=taper, axis=1, average_axes=(0,))
        per_bl[name] = np.asarray(ds.power)             # (Ndelay, Nbl)
        out["delays"] = ds.delays
    diff = per_bl["residual"] - per_bl["injected"]
    nbl = diff.shape[1]
    out["residual"] = per_bl["residual"].mean(axis=1)
    out["injected"] = per_bl["injected"].mean(axis=1)
    out["difference"] = diff.mean(axis=1)
    out["error"] = diff.std(axis=1, ddof=1) / np.sqrt(nbl)
    out["injected_error"] = per_bl["injected"].std(axis=1, ddof=1) / np.sqrt(nbl)
    return out


def _z_table(names: list, truth: np.ndarray, est: np.ndarray, err: np.ndarray,
             select: list) -> list[dict]:
    return [{"name": names[i], "truth": float(truth[i]), "map": float(est[i]),
             "error": float(err[i]), "z": float((est[i] - truth[i]) / err[i])} for i in select]




class _Steps:
    """The ``[linlim demo]`` step log plus a tqdm progress bar (stderr)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="linlim demo", unit="step", leave=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")

    def start(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _band_table(bp: dict, sf: Any) -> dict:
    """Band powers in mK^2 Mpc^3 (K^2 -> mK^2: 1e6) with the truth and k in h/Mpc."""
    est, sig = 1e6 * np.asarray(bp["estimate"]), 1e6 * np.asarray(bp["sigma"])
    truth = 1e6 * np.asarray(sf.truth_power)
    z = (est - truth) / sig
    return {"k": sf.k_band_h.tolist(), "estimate": est.tolist(), "sigma": sig.tolist(),
            "truth": truth.tolist(), "z": z.tolist(),
            "fraction_within_1sigma": float(np.mean(np.abs(z) <= 1)),
            "fraction_within_2sigma": float(np.mean(np.abs(z) <= 2))}


def _fg_truth(sc: Scenario, jm: Any) -> tuple[np.ndarray, np.ndarray]:
    idx = np.concatenate([np.arange(jm.params.size)[jm.params.slices["fg_logflux"]],
                          np.arange(jm.params.size)[jm.params.slices["fg_index"]]])
    return idx, np.concatenate([np.log(sc.catalog.flux), sc.catalog.spectral_index])


def run_demo(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Run the demo; returns the summary dict (also written to ``summary.json``).

    Parameters
    ----------
    config : dict, optional
        Overrides of :data:`DEMO_DEFAULTS` (unknown keys raise :class:`InputError`).
    output : str, optional
        Output folder (overrides ``config["output"]``).
    """
    cfg, out = start_run(config, DEMO_DEFAULTS, output)
    t_start = time.perf_counter()
    fit, steps_cfg = cfg["fit"], cfg["steps"]
    dense = fit["fisher"] == "dense"
    # simulate, joint fit; then (dense route) Laplace, the side fits, HMC, plots + summary
    nsteps = 2 + ((2 + sum(bool(v) for v in steps_cfg.values())
                   + (1 if cfg["hmc"]["enabled"] else 0)) if dense else 0)
    bar = _Steps(nsteps, bool(cfg["progress"]))
    try:
        summary = _run(cfg, out, fit, steps_cfg, dense, bar, t_start)
    finally:
        bar.close()
    return summary


def _run(cfg: dict, out: pathlib.Path, fit: dict, steps_cfg: dict, dense: bool, bar: _Steps,
         t_start: float) -> dict[str, Any]:
    bar.start("simulate")
    sc = build_scenario(cfg["scenario"])
    obs, sf = sc.obs, sc.signal_field
    if sc.catalog.ra.size < 1:
        raise InputError("demo: the scenario has no foreground sources")
    if sf is None:
        raise InputError("demo: the joint posterior models the signal in the 'modes' basis; "
                         f"set scenario.signal.basis: modes (received "
                         f"{cfg['scenario']['signal']['basis']!r})")
    need = check_dense_memory(sc, fit)
    nt, nf, nbl = obs.shape
    ndif = 0 if sc.diffuse is None else sc.diffuse.npix
    _log(f"array: {obs.antpos.shape[0]} antennas, {nbl} baselines; {nf} channels "
         f"{obs.freqs[0] / 1e6:.1f}-{obs.freqs[-1] / 1e6:.1f} MHz; {nt} times; "
         f"{sc.catalog.ra.size} point sources, {ndif} diffuse pixels; signal {sf.npix} "
         f"pixels x {sf.nk} k_par modes in {sf.nbands} bands"
         + (f"; dense Fisher route needs ~{need / 2**30:.1f} GiB" if need else ""))
    sim = simulate_data(sc)
    data = sim["data"]
    meta = uvh5_metadata(sc)
    write_uvh5(out / "data.uvh5", data, clobber=True, **meta)
    _log(f"simulated data -> {out / 'data.uvh5'} (rms foregrounds "
         f"{np.sqrt(np.mean(abs(sim['foregrounds'])**2)):.3g} Jy, signal "
         f"{np.sqrt(np.mean(abs(sim['signal'])**2)):.3g} Jy, noise {sc.sigma:.3g} Jy)")
    bar.done()
    seed = int(cfg["scenario"]["seed"]) + 1

    bar.start("joint fit")
    _log("joint MAP (signal, diffuse, point sources, beam, gains) by Gauss-Newton-CG:")
    joint = fit_with_signal(sc, data, fit, beam="fit", seed=seed, log=_log)
    res, jm = joint["result"], joint["model"]
    _log(f"joint fit: {joint['n_params']} parameters, {res.nit} iterations, {res.njvp} J and "
         f"{res.nvjp} J^H products, {joint['seconds']:.1f} s; {res.message}")
    write_uvh5(out / "model.uvh5", np.asarray(jm.model(res.x)), clobber=True, **meta)
    summary: dict[str, Any] = {
        "array": {"nant": int(obs.antpos.shape[0]), "nbl": nbl, "nfreq": nf, "ntimes": nt},
        "joint_fit": {"parameters": int(joint["n_params"]), "iterations": int(res.nit),
                      "njvp": int(res.njvp), "nvjp": int(res.nvjp),
                      "seconds": joint["seconds"], "message": res.message,
                      "converged": bool(res.success), "loss": float(res.fun),
                      "chi2_per_dof": float(np.mean(abs(joint["residual"])**2) / sc.sigma**2),
                      "blocks": {b.name: int(np.prod(b.shape)) for b in jm.params.blocks}},
    }
    bar.done()
    if not dense:
        # MAP only: the beam against the truth without errors (they need the dense route)
        xm = np.asarray(res.x)
        bi = np.arange(xm.size)[jm.params.slices["beam"]] if "beam" in jm.params.names else []
        summary["beam_map"] = [{"name": jm.names[i], "truth": float(t), "map": float(xm[i])}
                               for i, t in zip(bi, sc.beam_params.ravel())]
        _log("  beam MAP vs truth (no errors without the Fisher matrix): " + ", ".join(
            f"{b['name']} {b['map']:.5g} ({b['truth']:.5g})" for b in summary["beam_map"]))
        _log(f"  chi2/dof {summary['joint_fit']['chi2_per_dof']:.4f}")
        summary["seconds"] = time.perf_counter() - t_start
        with open(out / "summary.json", "w") as fh:
            json.dump(summary, fh, indent=2)
        _log(f"fit.fisher is 'none': MAP only; done in {summary['seconds']:.0f} s")
        return summary

    bar.start("Laplace posterior")
    t0 = time.perf_counter()
    lap = laplace_analysis(sc, joint, fit)
    x, err = np.asarray(res.x), lap["error"]
    names = jm.names
    beam_idx = list(np.arange(x.size)[jm.params.slices["beam"]])
    truth_beam = sc.beam_params.ravel()
    beam_table = [{"name": names[i], "truth": float(t), "map": float(x[i]),
                   "error": float(err[i]), "z": float((x[i] - t) / err[i])}
                  for i, t in zip(beam_idx, truth_beam)]
    fg_idx, fg_truth = _fg_truth(sc, jm)
    fg_z = (x[fg_idx] - fg_truth) / err[fg_idx]
    pk = _band_table(lap["bandpowers"], sf)
    _log(f"Laplace posterior at the MAP ({time.perf_counter() - t0:.1f} s): errors with the "
         "signal, diffuse and gains marginalised")
    for row in beam_table:
        # digits to the error's scale (a fixed 4 decimals printed errors of 5e-5 as 0.0000)
        nd = max(4, 2 - int(np.floor(np.log10(row["error"])))) if row["error"] > 0 else 4
        _log(f"  {row['name']:>10s}: truth {row['truth']:+.{nd}f}  MAP {row['map']:+.{nd}f} "
             f"+- {row['error']:.2g}  z = {row['z']:+.2f}")
    _log(f"  point sources: rms z over {fg_idx.size} amplitudes and indices = "
         f"{np.sqrt(np.mean(fg_z**2)):.2f}")
    _log("  band powers P(k) [mK^2 Mpc^3] (estimate +- Fisher sigma, truth, z):")
    for kb, e, s_, t_, z_ in zip(pk["k"], pk["estimate"], pk["sigma"], pk["truth"], pk["z"]):
        _log(f"    k = {kb:6.3f} h/Mpc: {e:10.4g} +- {s_:9.3g}  truth {t_:10.4g}  "
             f"z = {z_:+.2f}")
    summary["beam"] = beam_table
    summary["foregrounds"] = {"rms_z": float(np.sqrt(np.mean(fg_z**2))),
                              "fraction_within_3sigma": float(np.mean(np.abs(fg_z) < 3)),
                              "n": int(fg_idx.size)}
    summary["signal_power"] = {**pk, "units": "mK^2 Mpc^3; k in h/Mpc",
                               "method": "Laplace (nuisance-marginalised) + BJK, Fisher sigma"}
    eb = lap["theta_eb"]
    summary["beam_empirical_bayes"] = [
        {"name": names[i], "map": float(eb[i]), "error": float(lap["error_eb"][i]),
         "z": float((eb[i] - t) / lap["error_eb"][i])} for i, t in zip(beam_idx, truth_beam)]
    bar.done()

    stories: dict[str, Any] = {}
    wrong = None
    # the side fits start from the joint MAP's sources, gains and diffuse (not its signal)
    warm = {b.name: x[jm.params.slices[b.name]].reshape(b.shape) for b in jm.params.blocks
            if b.name in ("fg_logflux", "fg_index", "gains", "diffuse")}
    if steps_cfg["wrong_beam"]:
        bar.start("wrong-beam fit")
        wrong = fit_with_signal(sc, data, fit, beam="fixed", seed=seed, log=lambda m: None,
                                init=warm)
        lapw = laplace_analysis(sc, wrong, fit)
        pw = _band_table(lapw["bandpowers"], sf)
        stories["wrong_beam"] = {"iterations": int(wrong["result"].nit),
                                 "seconds": wrong["seconds"], "signal_power": pw,
                                 "chi2_per_dof": float(np.mean(abs(wrong["residual"])**2)
                                                       / sc.sigma**2)}
        _log(f"wrong-beam fit (beam held at nominal {fit['nominal_beam']}): chi2/dof "
             f"{stories['wrong_beam']['chi2_per_dof']:.2f}; band-power z vs truth "
             f"{np.round(pw['z'], 1).tolist()}")
        bar.done()
    cmp_old = None
    if steps_cfg["old_route"]:
        bar.start("old route")
        old = fit_with_signal(sc, data, fit, beam="fit", seed=seed, model_signal=False,
                              log=lambda m: None, init=warm)
        lapo = laplace_analysis(sc, old, fit)
        xo, eo = np.asarray(old["result"].x), lapo["error"]
        bo = np.arange(xo.size)[old["model"].params.slices["beam"]]
        flt = cfg["filter"]
        tau_cut = float(flt["tau_cut_s"])
        cmp_old = delay_comparison(old["residual"], sim["signal"], obs.freqs, tau_cut,
                                   flt["taper"])
        outside = np.abs(cmp_old["delays"]) > tau_cut + float(flt["wedge_margin_s"])
        zd = cmp_old["difference"][outside] / cmp_old["error"][outside]
        stories["old_route"] = {
            "description": "foregrounds, diffuse, beam and gains fitted; the signal left in "
                           "the residual, delay-filtered, cross-power (even x odd times)",
            "beam_z": ((xo[bo] - truth_beam) / eo[bo]).tolist(),
            "delay_spectra": {"tau_cut_s": tau_cut, "ndelays": int(outside.sum()),
                              "residual_minus_injected_chi2_per_dof": float(np.mean(zd**2)),
                              "max_abs_z": float(np.max(np.abs(zd)))}}
        bz = np.round(stories["old_route"]["beam_z"], 1).tolist()
        _log(f"old route (signal unmodelled): beam z {bz}; "
             f"filtered residual - injected chi2/dof outside the wedge "
             f"{np.mean(zd**2):.2f}")
        bar.done()
    if steps_cfg["null_test"]:
        bar.start("null test")
        null = fit_with_signal(sc, data - sim["signal"], fit, beam="fit", seed=seed,
                               log=lambda m: None, init=warm)
        lapn = laplace_analysis(sc, null, fit)
        bpn = lapn["bandpowers"]
        zn = np.asarray(bpn["estimate"]) / np.asarray(bpn["sigma"])
        summary["null_test"] = {"estimate": (1e6 * np.asarray(bpn["estimate"])).tolist(),
                                "sigma": (1e6 * np.asarray(bpn["sigma"])).tolist(),
                                "z": zn.tolist(), "max_abs_z": float(np.max(np.abs(zn)))}
        _log(f"null test (same data, no signal): band-power z = estimate / sigma "
             f"{np.round(zn, 2).tolist()}; max |z| {np.max(np.abs(zn)):.2f}")
        bar.done()
    summary.update(stories)

    hmc_res = None
    if cfg["hmc"]["enabled"]:
        bar.start("HMC")
        hmc_res = _hmc(cfg["hmc"], sc, joint, lap, out, summary, beam_idx,
                       progress=bool(cfg["progress"]))
        bar.done()

    _save_fit(out / "fit.h5", names, x, err, lap, summary)
    if cfg["plots"]:
        bar.start("plots")
        _plots(out, sc, sim, joint, wrong, cmp_old, cfg["filter"], summary, hmc_res, beam_idx,
               names)
    summary["seconds"] = time.perf_counter() - t_start
    with open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    bar.done()
    _log(f"done in {summary['seconds']:.0f} s; results in {out}/")
    return summary


def _hmc(h: dict, sc: Scenario, joint: dict, lap: dict, out: pathlib.Path, summary: dict,
         beam_idx: list, progress: bool = False) -> Any:
    from ..inference.diagnostics import ess_bulk, rhat
    from ..inference.hmc import sample
    from .hierarchical import HierarchicalLaplacePosterior, dense_metric, lowrank_metric

    t0 = time.perf_counter()
    jm, post = joint["model"], joint["post"]
    x = np.asarray(joint["result"].x, float)
    sig = np.arange(x.size)[jm.params.slices["signal"]]
    sf = sc.signal_field
    p0 = joint["p0"]
    _, g_post = post.value_and_grad(x)
    g_prior = np.asarray(post._prior_grad(x), float)
    g_lik = np.asarray(g_post, float) - g_prior
    est = np.asarray(lap["bandpowers"]["estimate"])
    u0 = np.log(np.maximum(est, 0.05 * p0) / p0)
    band = sf.band_of_coeff()
    # partial non-centring: a_i = 1 / (1 + data precision / prior precision)
    centring = 1.0 / (1.0 + np.diag(lap["G"]) * np.exp(u0)[band])
    hp = HierarchicalLaplacePosterior(lap["structured"], lap["prior"], x, g_lik, g_prior, sig,
                                      band, sf.nbands, centring=centring)
    x0 = hp.initial(u0)
    if h["metric"] not in ("auto", "dense", "lowrank"):
        raise InputError(f"config hmc.metric: expected 'auto', 'dense' or 'lowrank', received "
                         f"{h['metric']!r}")
    if h["metric"] == "dense" or (h["metric"] == "auto" and hp.size <= int(h["dense_max"])):
        metric = dense_metric(hp, x0, lap["F"])
    else:
        metric = lowrank_metric(hp, x0, np.diag(lap["F"]).copy(), rank=int(h["metric_rank"]),
                                seed=int(h["seed"]))
    t_metric = time.perf_counter() - t0
    # split HMC about the Gaussian N(x0, H^-1) of the dense metric: its exact rotation
    # carries the near-Gaussian bulk, leapfrog kicks only the residual (longer steps)
    split = bool(h["split"]) and metric.kind == "dense"
    r = sample(hp, num_draws=int(h["draws"]), num_warmup=int(h["warmup"]),
               chains=int(h["chains"]), seed=int(h["seed"]), metric=metric, init=x0,
               split_centre=x0 if split else None, jitter=float(h["jitter"]),
               path=str(out / "chains.h5"), resume=False, progress=progress)
    draws = r.draws                                     # (chains, draws, n)
    u = draws[:, :, hp.nr + hp.ns:]
    P = 1e6 * p0[None, None, :] * np.exp(u)             # mK^2 Mpc^3
    pos = {int(i): j for j, i in enumerate(hp.rest)}
    bcols = [pos[int(i)] for i in beam_idx]
    beam_draws = draws[:, :, bcols]
    rh_p = np.atleast_1d(rhat(P))
    rh_b = np.atleast_1d(rhat(beam_draws))
    ess_p = np.atleast_1d(ess_bulk(P))
    ndiv = int(np.sum(r.sample_stats["divergent"]))
    truth = 1e6 * sf.truth_power
    mean, sd = P.reshape(-1, sf.nbands).mean(0), P.reshape(-1, sf.nbands).std(0, ddof=1)
    zh = (mean - truth) / sd
    summary["hmc"] = {
        "seconds": time.perf_counter() - t0, "metric_seconds": t_metric,
        "chains": int(h["chains"]), "draws": int(h["draws"]), "warmup": int(h["warmup"]),
        "divergences": ndiv, "rhat_band_powers": rh_p.tolist(), "rhat_beam": rh_b.tolist(),
        "integrator": "split (Gaussian part exact)" if split else "leapfrog",
        "step_size": np.asarray(r.step_size).tolist(),
        "gradients_per_draw": float(r.n_grad) / (int(h["chains"]) * int(h["draws"])),
        "ess_bulk_band_powers": ess_p.tolist(),
        "ess_bulk_beam": np.atleast_1d(ess_bulk(beam_draws)).tolist(),
        "posterior_sd_beam": beam_draws.reshape(-1, 4).std(0, ddof=1).tolist(),
        "likelihood": "Gauss-Newton (Laplace) expansion at the joint MAP; band powers as "
                      "log hyperparameters, non-centred signal",
    }
    sp = summary["signal_power"]
    sp["hmc_mean"], sp["hmc_sd"], sp["hmc_z"] = mean.tolist(), sd.tolist(), zh.tolist()
    sp["hmc_fraction_within_2sigma"] = float(np.mean(np.abs(zh) <= 2))
    kind = "dense" if metric.kind == "dense" else f"low-rank (rank {h['metric_rank']})"
    _log(f"HMC over the joint hierarchical posterior ({hp.size} parameters, {h['chains']} "
         f"chains x {h['draws']} draws, {kind} metric, {summary['hmc']['integrator']} "
         f"integrator, {summary['hmc']['gradients_per_draw']:.1f} gradients per draw): "
         f"{summary['hmc']['seconds']:.0f} s, {ndiv} divergences")
    _log(f"  R-hat band powers {np.round(rh_p, 3).tolist()}, beam {np.round(rh_b, 3).tolist()}")
    _log("  band powers (HMC mean +- sd): "
         + ", ".join(f"{m:.3g}+-{s:.2g}" for m, s in zip(mean, sd)))
    r.band_power_draws = P
    r.beam_draws = beam_draws
    return r


def _save_fit(path: pathlib.Path, names: list, x: np.ndarray, err: np.ndarray, lap: dict,
              summary: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f["names"] = np.array(names, dtype="S")
        f["map"], f["error"] = x, err
        for key in ("estimate", "sigma", "covariance", "fisher"):
            f[f"band_powers/{key}"] = np.asarray(lap["bandpowers"][key])
        f["band_powers/truth_mk2mpc3"] = np.asarray(summary["signal_power"]["truth"])
        f["band_powers/k_h_mpc"] = np.asarray(summary["signal_power"]["k"])


def _plots(out: pathlib.Path, sc: Scenario, sim: dict, joint: dict, wrong: dict | None,
           cmp_old: dict | None, flt: dict, summary: dict, hmc_res: Any, beam_idx: list,
           names: list) -> None:
    from ..plotting.fisher import plot_convergence
    from ..plotting.power import plot_band_powers
    from ..plotting.spectra import plot_delay_spectrum, plot_waterfall

    obs = sc.obs
    b = int(np.argmax(np.linalg.norm(obs.antpos[obs.ant2] - obs.antpos[obs.ant1], axis=1)))
    plot_waterfall(sim["data"][:, :, b], obs.freqs, obs.times_jd, out / "waterfall_data.png",
                   title=f"data, baseline {obs.ant1[b]}-{obs.ant2[b]}")
    plot_waterfall(joint["residual"][:, :, b], obs.freqs, obs.times_jd,
                   out / "waterfall_residual.png", title="joint-fit residual",
                   log_amplitude=False)
    results = [joint["result"]] + ([wrong["result"]] if wrong is not None else [])
    plot_convergence(results, out / "convergence.png",
                     labels=["joint (signal, beam fitted)", "beam held at nominal"][:len(results)])
    sp = summary["signal_power"]
    series = [{"estimate": sp["estimate"], "sigma": sp["sigma"],
               "label": "joint fit (Laplace + BJK, Fisher errors)"}]
    if "hmc_mean" in sp:
        series.append({"estimate": sp["hmc_mean"], "sigma": sp["hmc_sd"],
                       "label": "joint fit, HMC mean +- sd", "fmt": "s"})
    if "wrong_beam" in summary:
        w = summary["wrong_beam"]["signal_power"]
        series.append({"estimate": w["estimate"], "sigma": w["sigma"],
                       "label": "beam held at nominal", "fmt": "^"})
    if "null_test" in summary:
        series.append({"estimate": summary["null_test"]["estimate"],
                       "sigma": summary["null_test"]["sigma"],
                       "label": "null test (no signal in the data)", "fmt": "x"})
    plot_band_powers(sp["k"], series, out / "power_spectrum.png", truth=sp["truth"],
                     title="21 cm band powers from the joint posterior")
    if cmp_old is not None:
        tau_cut = float(flt["tau_cut_s"])
        plot_delay_spectrum(cmp_old["delays"], cmp_old["residual"][None], cmp_old["error"][None],
                            out / "delay_spectra.png", reference=cmp_old["injected"],
                            labels=["old route: filtered residual"], tau_cut=tau_cut,
                            title="old route: filtered residual vs injected 21 cm signal")
    if hmc_res is not None:
        from ..plotting.mcmc import corner_plot, trace_plot

        bnames = [names[i] for i in beam_idx]
        truths = sc.beam_params.ravel()
        corner_plot(hmc_res.beam_draws, out / "corner_beam.png", indices=list(range(4)),
                    names=bnames, truths=truths)
        trace_plot(hmc_res.beam_draws, out / "trace_beam.png", indices=list(range(4)),
                   names=bnames)
        P = hmc_res.band_power_draws
        shown = list(range(min(P.shape[2], 5)))
        corner_plot(np.log10(np.maximum(P, 1e-30)), out / "corner_band_powers.png",
                    indices=shown,
                    names=[f"log10 P(k{b})" for b in range(P.shape[2])],
                    truths=np.log10(np.maximum(np.asarray(summary["signal_power"]["truth"])
                                               [shown], 1e-30)))
