"""``linlim fit``: the joint MAP fit of foregrounds, beam and gains, with Fisher errors.

The data are a synthetic scenario's (simulated in memory) or a uvh5 file whose array,
band and times match the scenario config (``data:`` key). Writes ``fit.h5`` (names,
truth when known, MAP, Fisher errors and matrix, history), ``model.uvh5``,
``summary.json`` (with the beam's MAP and error by name) and plots. Parameter names are
those of :func:`linlim.io.results.parameter_names`: the beam's are the keys of
``scenario.beam`` in the config (``beam.diameter_m``, ``beam.spectral_index``, ...).
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..inference.fisher import fisher_covariance, fisher_matrix, marginal_errors
from ..inference.gauss_newton import gauss_newton
from ..io.config import create_output, prepare_run
from ..io.results import write_fit_file
from ..io.uvdata import write_uvh5
from ..likelihood import GaussianLikelihood, LogPosterior
from ..priors import GaussianPrior
from .joint import JointModel, build_joint_model
from .progress import is_quiet
from .scenario import SCENARIO_DEFAULTS, Scenario, build_scenario
from .simulate import simulate_data, uvh5_metadata

__all__ = ["FIT_DEFAULTS", "FIT_OPTIONS", "beam_indices", "gain_gauge_covariance",
           "start_and_priors", "fit_scenario", "run_fit", "load_data", "fit_from_config",
           "scenario_from_data"]


def _results(defaults: dict) -> tuple[str, ...]:
    """Files that mark a finished run of ``fit`` (fit.h5) or ``sample`` (summary.txt)."""
    return ("chains.h5",) if "hmc" in defaults else ("fit.h5",)

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
    "template": None,
    "catalog": None,
    "pol": "ee",
    "unphase": False,
    "scenario": SCENARIO_DEFAULTS,
    "fit": FIT_OPTIONS,
    "plots": True,
}


def beam_indices(jm: JointModel) -> list[int]:
    """Positions in ``theta`` of the fitted beam's components (``beam.diameter_m``, ...;
    :data:`~linlim.pipelines.joint.BEAM_COMPONENTS`), empty when the beam is fixed."""
    if "beam" not in jm.params.names:
        return []
    return list(range(jm.params.size))[jm.params.slices["beam"]]


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


def fit_scenario(sc: Scenario, data: np.ndarray, fit: dict, *, beam: str, seed: int,
                 flags: np.ndarray | None = None) -> dict:
    """MAP fit of the joint model (beam fitted or held at the nominal value).

    ``flags`` (optional, bool, the shape of ``data``): samples left out of the likelihood
    (a data file's flags); the residual is zero there.

    When the scenario has a diffuse foreground it is fitted too (the signal is not: that is
    :func:`linlim.pipelines.signalfit.fit_with_signal`, the demo's joint posterior)."""
    if getattr(sc, "diffuse", None) is not None:
        from .signalfit import SIGNAL_FIT_OPTIONS, fit_with_signal

        opts = {**SIGNAL_FIT_OPTIONS, **fit}
        out = fit_with_signal(sc, data, opts, beam=beam, seed=seed, model_signal=False,
                              flags=flags)
        if flags is not None:
            out["residual"] = np.where(flags, 0.0, out["residual"])
        return out
    cat = sc.catalog
    nominal = np.asarray(fit["nominal_beam"], float).reshape(1, 4)
    jm = build_joint_model(sc.obs, cat.ra, cat.dec, sc.ref_freq, sc.ripple_delay,
                           beam=beam, fixed_beam=nominal, fit_gains=sc.gains is not None)
    start, priors = start_and_priors(sc, fit, np.random.default_rng(seed), beam == "fit")
    post = LogPosterior(GaussianLikelihood(jm.model, data, sigma=sc.sigma, flags=flags),
                        priors, params=jm.params)
    theta0 = jm.params.pack(start)
    t0 = time.perf_counter()
    res = gauss_newton(post, theta0, maxiter=int(fit["maxiter"]), solver=fit["solver"],
                       preconditioner="jacobi" if fit["solver"] == "cg" else None,
                       cg_tol=1e-8, ftol=1e-10, progress=not is_quiet())
    return {"model": jm, "post": post, "result": res, "theta0": theta0,
            "seconds": time.perf_counter() - t0,
            "residual": (data - np.asarray(jm.model(res.x))) if flags is None else
            np.where(flags, 0.0, data - np.asarray(jm.model(res.x)))}


def _file_flags(r: dict, path: Any, where: str) -> np.ndarray:
    """The flags (Ntimes, Nfreq, Nbl) of the one polarisation read (``r`` from
    :func:`~linlim.io.uvdata.read_uvdata`); every sample flagged is an InputError."""
    fl = np.asarray(r["flags"][0], dtype=bool)
    if fl.all():
        raise InputError(f"{where}: every sample of {str(path)!r} (polarisation "
                         f"{r['pol_names'][0]}, {fl.size} samples) is flagged; expected "
                         "some unflagged data to fit")
    return fl


def load_data(path: str, sc: Scenario, pol: str = "ee", unphase: bool = False, *,
              with_flags: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Visibilities (Ntimes, Nfreq, Nbl) of one polarisation from a file, checked against
    the scenario's observation (antenna numbers and pairs, channels, times, phase type,
    pol_convention and units: a mismatch is an :class:`InputError` naming both values).
    ``with_flags``: also return the file's flags (same shape); all flagged is an error."""
    from ..io.uvdata import read_uvdata

    obs = sc.obs
    nums = np.asarray(obs.layout.antnums)
    pairs = list(zip(nums[obs.ant1].tolist(), nums[obs.ant2].tolist()))
    r = read_uvdata(path, pols=[pol], antpairs=pairs, freqs=obs.freqs, times=obs.times_jd,
                    ant_numbers=nums, unphase=unphase, where="fit --data",
                    model="the scenario config")
    if with_flags:
        return r["data"][0], _file_flags(r, path, "fit --data")
    return r["data"][0]


def scenario_from_data(cfg: dict, *, with_flags: bool = False) -> tuple:
    """The observation of a data file (``cfg["data"]``: its antennas, cross-correlations,
    channels, times and site) with the foregrounds of ``cfg["catalog"]`` (the
    ``scenario.foregrounds`` radius and number of sources around the field centre), and
    the data of polarisation ``cfg["pol"]``. The beam, noise and ripple delay come from
    the scenario config; no gains or signal are modelled. ``with_flags``: also return the
    file's flags of that polarisation (all flagged is an error)."""
    from .scenario import _field_centre
    from .simulate import observation_from_file, read_catalog

    obs, r = observation_from_file(cfg["data"], pol=cfg["pol"], unphase=bool(cfg["unphase"]),
                                   where="fit --data", vis_units=("Jy",))
    scfg = cfg["scenario"]
    ref_freq = float(np.mean(obs.freqs))
    catalog = cfg["catalog"] or scfg["foregrounds"]["catalog"]
    ra0, dec0 = _field_centre(obs)
    fg = scfg["foregrounds"]
    cat = read_catalog(catalog).within_radius(ra0, dec0, np.deg2rad(float(fg["radius_deg"])))
    if cat.ra.size == 0:
        raise InputError(f"fit: no source of {catalog!r} lies within {fg['radius_deg']} deg "
                         "of the field centre (scenario.foregrounds.radius_deg)")
    cat = cat.with_ref_freq(ref_freq).brightest(int(fg["nsources"]))
    b = scfg["beam"]
    nominal = np.asarray(cfg["fit"]["nominal_beam"], float).reshape(1, 4)
    sc = Scenario(obs, cat, ref_freq, nominal, float(b["ripple_delay_s"]), None,
                  np.zeros(0), np.zeros(0), np.zeros((0, obs.freqs.size)), 0.0,
                  float(scfg["noise"]["sigma_jy"]), np.random.default_rng(int(scfg["seed"])))
    if with_flags:
        return sc, r["data"][0], _file_flags(r, cfg["data"], "fit --data")
    return sc, r["data"][0]


def fit_from_config(config: dict | None, defaults: dict, output: str | None
                    ) -> tuple[dict, pathlib.Path, Scenario, dict, dict, np.ndarray]:
    """Shared start of ``fit`` and ``sample``: merge the config, prepare the output folder,
    build the scenario and its data (simulated, or read from ``cfg["data"]``), fit the MAP
    and compute the Fisher matrix there. Returns ``(cfg, out, scenario, sim, fit, F)``."""
    cfg, out = prepare_run(config, defaults, output, results=_results(defaults))
    flags = None
    if cfg["data"] is None:
        obs = None
        if cfg["template"] is not None:   # the scenario's sky on a file's geometry
            from .simulate import observation_from_file

            obs, _ = observation_from_file(cfg["template"], where="--template")
        sc = build_scenario(cfg["scenario"], obs=obs)
        sim = simulate_data(sc)
        data = sim["data"]
    elif cfg["catalog"] or cfg["scenario"]["foregrounds"]["catalog"]:
        # a real file: its geometry, the catalogue's sources (read before any output)
        sc, data, flags = scenario_from_data(cfg, with_flags=True)
        sim = None
    else:   # a file of the scenario's observation (checked against it)
        sc = build_scenario(cfg["scenario"])
        data, flags = load_data(cfg["data"], sc, cfg["pol"], bool(cfg["unphase"]),
                                with_flags=True)
        sim = None
    create_output(cfg, out)
    fit = fit_scenario(sc, data, cfg["fit"], beam="fit", seed=int(cfg["scenario"]["seed"]) + 1,
                       flags=flags)
    return cfg, out, sc, sim, fit, fisher_matrix(fit["post"], fit["result"].x)


def run_fit(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Run the joint fit and write its files; returns a summary dict."""
    cfg, out, sc, sim, fit, F = fit_from_config(config, FIT_DEFAULTS, output)
    res = fit["result"]
    err = np.asarray(marginal_errors(cov=fisher_covariance(F)))
    write_uvh5(out / "model.uvh5", np.asarray(fit["model"].model(res.x)), clobber=True,
               **uvh5_metadata(sc))
    names = fit["model"].names
    truth = sim["truth"] if cfg["data"] is None and len(sim["truth"]) == res.x.size else None
    write_fit_file(out / "fit.h5", names, res.x, err, F, history=res.history, truth=truth)
    if cfg["plots"]:
        from ..plotting.fisher import plot_convergence

        plot_convergence(res, out / "convergence.png")
    summary = {"iterations": int(res.nit), "seconds": fit["seconds"], "output": str(out),
               "message": str(res.message), "chi2": float(np.sum(np.abs(fit["residual"])**2)
                                                          / sc.sigma**2),
               "nparams": int(res.x.size), "data": cfg["data"],
               "beam": {names[i]: {"map": float(res.x[i]), "error": float(err[i])}
                        for i in beam_indices(fit["model"])}}
    import json

    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not is_quiet():
        print(f"[linlim fit] {res.nit} Gauss-Newton iterations in {fit['seconds']:.1f} s "
              f"({res.message}), chi^2 {summary['chi2']:.4g}; wrote {out / 'fit.h5'}, "
              f"{out / 'model.uvh5'}, {out / 'summary.json'}")
    return summary
