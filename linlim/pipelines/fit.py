"""``linlim fit``: the joint MAP fit of foregrounds, beam and gains, with Fisher errors.

The data are a synthetic scenario's (simulated in memory) or a uvh5 file whose array,
band and times match the scenario config (``data:`` key). Writes ``fit.h5`` (names,
truth when known, MAP, Fisher errors and matrix, history), ``model.uvh5`` and plots.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..inference.fisher import fisher_covariance, fisher_matrix, marginal_errors
from ..inference.gauss_newton import gauss_newton
from ..io.config import start_run
from ..io.uvdata import write_uvh5
from ..likelihood import GaussianLikelihood, LogPosterior
from ..priors import GaussianPrior
from .joint import build_joint_model
from .scenario import SCENARIO_DEFAULTS, Scenario, build_scenario
from .simulate import simulate_data, uvh5_metadata

__all__ = ["FIT_DEFAULTS", "FIT_OPTIONS", "gain_gauge_covariance", "start_and_priors",
           "fit_scenario", "run_fit",
           "load_data", "fit_from_config"]

#: Options of the joint fit (the ``fit`` section of the fit, sample and demo configs).
FIT_OPTIONS: dict[str, Any] = {
    "maxiter": 15,
    "solver": "dense",              # "dense" (n jvps/iteration) or "cg" (matrix-free)
    "catalog_flux_error": 0.10,     # fractional flux error of the starting catalogue
    "catalog_index_error": 0.10,
    "nominal_beam": [14.0, 0.0, 0.0, 0.0],   # start, prior mean, and the "wrong" beam
    "prior_logflux_sigma": 0.5,
    "prior_index_sigma": 0.5,
    "prior_beam_sigma": [1.0, 0.3, 0.5, 0.5],
    "prior_gain_sigma": 0.3,
}

#: Built-in defaults of ``linlim fit``.
FIT_DEFAULTS: dict[str, Any] = {
    "output": "linlim_fit_output",
    "data": None,
    "scenario": SCENARIO_DEFAULTS,
    "fit": FIT_OPTIONS,
    "plots": True,
}


def gain_gauge_covariance(nant: int, sigma: float, gauge_sigma: float = 1e-4) -> np.ndarray:
    """Prior covariance of ``(ln|g|, arg g)`` per antenna with the gauge fixed.

    The overall gain amplitude is exactly degenerate with the sky's flux scale and the
    overall phase cancels in every visibility; the simulation and the fit fix both by
    convention (mean log-amplitude and mean phase zero): each half has covariance
    ``sigma^2 (I - 11^T / n) + gauge_sigma^2 11^T / n``. Without this, a joint MAP with
    thousands of signal coefficients drifts along the amplitude gauge (shrinking them).
    """
    P = np.full((nant, nant), 1.0 / nant)
    half = sigma**2 * (np.eye(nant) - P) + gauge_sigma**2 * P
    cov = np.zeros((2 * nant, 2 * nant))
    cov[:nant, :nant] = half
    cov[nant:, nant:] = half
    return cov


def start_and_priors(sc: Scenario, fit: dict, rng: np.random.Generator, fit_beam: bool
                      ) -> tuple[dict, list]:
    cat = sc.catalog
    ns = cat.ra.size
    logflux = np.log(cat.flux) + fit["catalog_flux_error"] * rng.standard_normal(ns)
    index = cat.spectral_index + fit["catalog_index_error"] * rng.standard_normal(ns)
    start = {"fg_logflux": logflux, "fg_index": index}
    priors = [GaussianPrior(logflux, sigma=fit["prior_logflux_sigma"], index="fg_logflux"),
              GaussianPrior(index, sigma=fit["prior_index_sigma"], index="fg_index")]
    nominal = np.asarray(fit["nominal_beam"], float).reshape(1, 4)
    if fit_beam:
        start["beam"] = nominal
        priors.append(GaussianPrior(nominal.ravel(), sigma=np.asarray(
            fit["prior_beam_sigma"], float), index="beam"))
    if sc.gains is not None:
        na = sc.gains.size
        start["gains"] = np.zeros((2, na, 1, 1))           # unit gains
        priors.append(GaussianPrior(np.zeros(2 * na), cov=gain_gauge_covariance(
            na, float(fit["prior_gain_sigma"])), index="gains"))
    return start, priors


def fit_scenario(sc: Scenario, data: np.ndarray, fit: dict, *, beam: str, seed: int) -> dict:
    """MAP fit of the joint model (beam fitted or held at the nominal value).

    When the scenario has a diffuse foreground it is fitted too (the signal is not: that is
    :func:`linlim.pipelines.signalfit.fit_with_signal`, the demo's joint posterior)."""
    if getattr(sc, "diffuse", None) is not None:
        from .signalfit import SIGNAL_FIT_OPTIONS, fit_with_signal

        opts = {**SIGNAL_FIT_OPTIONS, **fit}
        return fit_with_signal(sc, data, opts, beam=beam, seed=seed, model_signal=False)
    cat = sc.catalog
    nominal = np.asarray(fit["nominal_beam"], float).reshape(1, 4)
    jm = build_joint_model(sc.obs, cat.ra, cat.dec, sc.ref_freq, sc.ripple_delay,
                           beam=beam, fixed_beam=nominal, fit_gains=sc.gains is not None)
    start, priors = start_and_priors(sc, fit, np.random.default_rng(seed), beam == "fit")
    post = LogPosterior(GaussianLikelihood(jm.model, data, sigma=sc.sigma), priors,
                        params=jm.params)
    theta0 = jm.params.pack(start)
    t0 = time.perf_counter()
    res = gauss_newton(post, theta0, maxiter=int(fit["maxiter"]), solver=fit["solver"],
                       preconditioner="jacobi" if fit["solver"] == "cg" else None,
                       cg_tol=1e-8, ftol=1e-10)
    return {"model": jm, "post": post, "result": res, "theta0": theta0,
            "seconds": time.perf_counter() - t0,
            "residual": data - np.asarray(jm.model(res.x))}


def load_data(path: str, sc: Scenario) -> np.ndarray:
    """Visibilities (Ntimes, Nfreq, Nbl) from a uvh5 file matching the scenario's array."""
    from ..io.uvdata import read_uvh5

    vis, meta = read_uvh5(path, antpairs=list(zip(sc.obs.ant1.tolist(),
                                                  sc.obs.ant2.tolist())))
    vis = np.asarray(vis)[0]
    if vis.shape != sc.obs.shape:
        raise InputError(f"fit: data in {path!r} have shape {vis.shape} (Ntimes, Nfreq, Nbl), "
                         f"the scenario config describes {sc.obs.shape}")
    return vis


def fit_from_config(config: dict | None, defaults: dict, output: str | None
                    ) -> tuple[dict, pathlib.Path, Scenario, dict, dict, np.ndarray]:
    """Shared start of ``fit`` and ``sample``: merge the config, prepare the output folder,
    build the scenario and its data (simulated, or read from ``cfg["data"]``), fit the MAP
    and compute the Fisher matrix there. Returns ``(cfg, out, scenario, sim, fit, F)``."""
    cfg, out = start_run(config, defaults, output)
    sc = build_scenario(cfg["scenario"])
    sim = simulate_data(sc)
    data = sim["data"] if cfg["data"] is None else load_data(cfg["data"], sc)
    fit = fit_scenario(sc, data, cfg["fit"], beam="fit", seed=int(cfg["scenario"]["seed"]) + 1)
    return cfg, out, sc, sim, fit, fisher_matrix(fit["post"], fit["result"].x)


def run_fit(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Run the joint fit and write its files; returns a summary dict."""
    cfg, out, sc, sim, fit, F = fit_from_config(config, FIT_DEFAULTS, output)
    res = fit["result"]
    err = np.asarray(marginal_errors(cov=fisher_covariance(F)))
    write_uvh5(out / "model.uvh5", np.asarray(fit["model"].model(res.x)), clobber=True,
               **uvh5_metadata(sc))
    import h5py

    with h5py.File(out / "fit.h5", "w") as f:
        f["names"] = np.array(fit["model"].names, dtype="S")
        f["map"], f["error"], f["fisher"] = res.x, err, F
        if cfg["data"] is None and len(sim["truth"]) == res.x.size:
            f["truth"] = sim["truth"]
        for key, arr in res.history.items():
            f[f"history/{key}"] = np.asarray(arr)
    if cfg["plots"]:
        from ..plotting.fisher import plot_convergence

        plot_convergence(res, out / "convergence.png")
    print(f"[linlim fit] {res.nit} Gauss-Newton iterations in {fit['seconds']:.1f} s "
          f"({res.message}); wrote {out / 'fit.h5'}, {out / 'model.uvh5'}")
    return {"iterations": int(res.nit), "seconds": fit["seconds"], "output": str(out)}
