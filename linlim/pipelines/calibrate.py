"""``linlim calibrate``: direction-independent calibration of data against a model.

With ``data`` and ``model`` files in the ``calibration`` section (``--data``, ``--model``)
the data are calibrated against the model (:func:`calibrate_from_config`). With neither
(the default), a synthetic scenario is simulated in memory (data with the true gains, the
sky model without them) and the recovered gains are compared with the truth.

Config keys of the ``calibration`` section (:data:`CALIBRATION_OPTIONS` lists every key)::

    data: raw.uvh5                 # observed (uncalibrated) data, any pyuvdata format
    model: model.uvh5              # model visibilities (same channels and times, every
                                   # baseline of the data), e.g. from ``linlim simulate``
    pols: null                     # parallel hands to solve, by name (ee, nn, xx, ...);
                                   # default every parallel hand in the data
    unphase: false                 # unproject phased data with pyuvdata (else refused)
    noise:
      sigma: null                  # noise rms per complex sample (Jy) for one nsample unit;
                                   # null: unit weights times nsamples
    solver:
      method: stefcal              # stefcal | gn (batched per-cell Gauss-Newton) | lm
      time_interval: 1             # times per solution cell (int or "all")
      freq_interval: 1             # channels per solution cell (int or "all")
      gauge: ref_antenna           # ref_antenna | mean_phase | none
      ref_ant: 0                   # index into the data's antenna list
      tol: 1.0e-10                 # relative change of the gains at convergence
      maxiter: 1000
      include_autos: false
      min_snr: 3.0                 # flag gains whose S/N (from the cell's Fisher
                                   # information and reduced chi^2) is below this
    output:
      solutions: gains.calfits     # .calh5/.h5 or .calfits/.fits
      plot: residuals.png          # residual plot (null: none)
      calibrated: null             # optional calibrated UVData (.uvh5)
      clobber: false

Only parallel-hand polarisations are solved (one Jones term each, feeds independent);
flagged samples carry zero weight. The calfits carries each antenna's chi^2 per degree of
freedom as its quality and each cell's reduced chi^2 as the total quality; without
``noise.sigma`` (weights = nsamples) both are residual variances in the data's units
squared, not chi^2 (see :func:`fit_quality`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calibration.gains import di_gains, solution_index
from ..calibration.solve import gain_problem, gauss_newton_cells, solve_gains
from ..calibration.stefcal import stefcal
from ..errors import InputError
from ..io.config import create_output, merge_config, prepare_run, validate_config
from ..io.uvcal import calibrate_uvdata, gains_to_uvcal, write_uvcal
from ..io.uvdata import PARALLEL_POLS, read_uvdata, vis_to_uvdata
from ..likelihood import noise_weights
from ..validation import check_finite_data
from .progress import is_quiet, progress_bar
from .scenario import SCENARIO_DEFAULTS, build_scenario
from .simulate import simulate_data, uvh5_metadata

__all__ = ["CALIBRATE_DEFAULTS", "CALIBRATION_OPTIONS", "DEFAULTS", "CalibrationResult",
           "calibrate_from_config", "fit_quality", "run_calibrate"]

#: Options of the ``calibration`` section.
CALIBRATION_OPTIONS: dict = {
    "data": None,
    "model": None,
    "pols": None,
    "unphase": False,
    "noise": {"sigma": None},
    "solver": {"method": "stefcal", "time_interval": 1, "freq_interval": 1,
               "gauge": "ref_antenna", "ref_ant": 0, "tol": 1e-10, "maxiter": 1000,
               "include_autos": False, "min_snr": 3.0},
    "output": {"solutions": None, "plot": None, "calibrated": None, "clobber": False},
}
#: Former name (``linlim.calibration.pipeline.DEFAULTS``).
DEFAULTS = CALIBRATION_OPTIONS

#: Built-in defaults of ``linlim calibrate``.
CALIBRATE_DEFAULTS: dict[str, Any] = {
    "output": "linlim_calibrate_output",
    "scenario": SCENARIO_DEFAULTS,
    "calibration": CALIBRATION_OPTIONS,
}


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate_from_config`.

    Attributes
    ----------
    gains : complex array, shape (Njones, Nant, Ntimes_sol, Nfreqs_sol)
    flags : bool array, same shape
        No data, or S/N below ``solver.min_snr``.
    jones : list of int
    uvcal : pyuvdata.UVCal
    info : list of dict
        Per Jones term: solver, iterations, converged cells, gauge, chi2, reduced chi2,
        the noise sigma used (None: unit weights times nsamples, so the reduced chi2 is
        the residual variance in the data's units squared; see :func:`fit_quality`),
        low-S/N flags, seconds.
    paths : dict
        Files written (solutions, plot, calibrated).
    """

    gains: Any
    flags: Any
    jones: list
    uvcal: Any
    info: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)


def _interval(value: Any, n: int) -> Any:
    return n if isinstance(value, str) and value == "all" else value


def _cell_statistics(d: Any, m: Any, w: Any, g: Any, ant1: Any, ant2: Any, tidx: Any,
                     fidx: Any) -> dict:
    """chi^2 per cell and per (antenna, cell), degrees of freedom, and the gains' S/N.

    ``snr[p] = |g_p| sqrt(F_pp / chi2_red)`` with ``F_pp = sum w |g_q|^2 |m_pq|^2`` the
    Fisher information of ``g_p`` and the cell's reduced chi^2 standing in for the noise
    scale when the weights are not ``1 / sigma^2``."""
    nant, nts, nfs = g.shape
    gs = g[:, tidx][:, :, fidx]                          # (Nant, Nt, Nf)
    cross = ant1 != ant2
    a1, a2 = ant1[cross], ant2[cross]
    wc = w[..., cross]
    pred = gs[a1].transpose(1, 2, 0) * gs[a2].transpose(1, 2, 0).conj() * m[..., cross]
    res = np.where(wc > 0, d[..., cross] - pred, 0.0)   # flagged data never read
    r2 = wc * (res.real**2 + res.imag**2)                # (Nt, Nf, Nbl)
    info = wc * np.abs(m[..., cross]) ** 2
    chi_cell = np.zeros((nts, nfs))
    nvis = np.zeros((nts, nfs))
    chi_ant = np.zeros((nant, nts, nfs))
    nvis_ant = np.zeros((nant, nts, nfs))
    fisher = np.zeros((nant, nts, nfs))
    ti, fi = np.meshgrid(tidx, fidx, indexing="ij")
    used = (wc > 0).astype(float)
    np.add.at(chi_cell, (ti, fi), r2.sum(-1))
    np.add.at(nvis, (ti, fi), used.sum(-1))
    amp2 = np.abs(gs) ** 2
    for a, b in ((a1, a2), (a2, a1)):
        for k in range(a.size):
            np.add.at(chi_ant[a[k]], (ti, fi), r2[..., k])
            np.add.at(nvis_ant[a[k]], (ti, fi), used[..., k])
            np.add.at(fisher[a[k]], (ti, fi), info[..., k] * amp2[b[k]])
    # complex samples minus complex gains (less one gauge phase): real dof / 2
    ndof = np.maximum(nvis - (nant - 0.5), 1.0)
    red = chi_cell / ndof
    ndof_ant = np.maximum(nvis_ant - 1.0, 1.0)
    # noiseless data (chi^2 = 0): infinite S/N, never flagged as low
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.abs(g) * np.sqrt(fisher / np.where(red > 0, red, 0.0)[None])
    return {"chi2": chi_cell, "reduced": red, "ndof": ndof,
            "quality": chi_ant / ndof_ant, "snr": snr}


def fit_quality(row: dict) -> str:
    """What a calibration's residuals say, in words a user can act on.

    With ``noise.sigma`` given, the weights are ``nsamples / sigma^2`` and the reduced
    chi^2 should be about 1. Without it the weights are ``nsamples``: the "reduced chi^2"
    is then the residual variance per complex sample (one nsample unit) in the data's
    units squared, i.e. the noise variance the fit implies, not a goodness of fit (for
    uncalibrated data it is in the raw units, however small the true gains make it).

    Parameters
    ----------
    row : dict
        One entry of :attr:`CalibrationResult.info` (``chi2``, ``reduced_chi2``,
        ``noise_sigma``).

    Returns
    -------
    str
        One clause for the log: the reduced chi^2 against ``noise.sigma``, or the
        residual variance and rms the fit implies when no sigma was given.
    """
    red = float(row["reduced_chi2"])
    if row.get("noise_sigma") is None:
        return (f"residual variance {red:.4g} per complex sample (data units^2; rms "
                f"{np.sqrt(red):.4g}): no noise.sigma given, so this is the noise the fit "
                f"implies, not a chi^2")
    return (f"chi^2 {row['chi2']:.4g}, reduced {red:.4g} against noise.sigma "
            f"{row['noise_sigma']:.4g} (about 1 if the noise level is right)")


def _data_pol_convention(vd: dict) -> str:
    """The data file's pol_convention ('sum' or 'avg'); 'sum' when it states none."""
    pc = vd.get("pol_convention")
    return pc if pc in ("sum", "avg") else "sum"


def calibrate_from_config(config: dict, *, model_uvdata: Any = None,
                          data_uvdata: Any = None, progress: bool | None = None
                          ) -> CalibrationResult:
    """Run a DI calibration described by ``config`` (module docstring for the keys).

    Parameters
    ----------
    config : dict
        User config (merged over :data:`CALIBRATION_OPTIONS`; unknown keys and wrong types
        raise).
    model_uvdata, data_uvdata : pyuvdata.UVData, optional
        In-memory model / data (instead of ``config["model"]`` / ``config["data"]``).
    progress : bool, optional
        Progress bar over polarisations (default: unless quiet).

    Returns
    -------
    CalibrationResult
    """
    cfg = validate_config(merge_config(CALIBRATION_OPTIONS, config), CALIBRATION_OPTIONS)
    sv = cfg["solver"]
    src_d = data_uvdata if data_uvdata is not None else cfg["data"]
    src_m = model_uvdata if model_uvdata is not None else cfg["model"]
    if src_d is None or src_m is None:
        raise InputError("calibrate: give both calibration.data and calibration.model "
                         "(--data, --model)")
    vd = read_uvdata(src_d, pols=cfg["pols"], include_autos=True, unphase=cfg["unphase"],
                     pol_convention=None, vis_units=("Jy", "UNCALIB", "uncalib"),
                     where="calibrate --data", model="the model file")
    if any(int(p) not in PARALLEL_POLS for p in vd["pols"]):
        raise InputError(f"calibrate: pols must be parallel hands (ee, nn, xx, yy), "
                         f"received {vd['pol_names']}")
    # the model is brought to the data's pol_convention (a factor 2 between 'sum' and
    # 'avg'), so that the gains calibrate the data into its own convention
    pc = _data_pol_convention(vd)
    vm = read_uvdata(src_m, pols=[int(p) for p in vd["pols"]], antpairs=vd["antpairs"],
                     freqs=vd["freqs"], times=vd["times"], unphase=cfg["unphase"],
                     pol_convention=pc, vis_units=("Jy",), where="calibrate --model",
                     model="the data")
    pols = [int(p) for p in vd["pols"]]
    nant = vd["ant_numbers"].size
    nt, nf = vd["times"].size, vd["freqs"].size
    ti_arg = _interval(sv["time_interval"], nt)
    fi_arg = _interval(sv["freq_interval"], nf)
    tidx = solution_index(nt, ti_arg, "time")
    fidx = solution_index(nf, fi_arg, "freq")
    sigma = cfg["noise"]["sigma"]
    method = sv["method"]
    quiet = is_quiet() if progress is None else not progress
    gains, flags, info, qual, tqual = [], [], [], [], []
    for k in progress_bar(range(len(pols)), desc=f"calibrate ({method})", total=len(pols),
                          disable=quiet):
        d, m = vd["data"][k], vm["data"][k]
        ns = np.where(vd["nsamples"][k] > 0, vd["nsamples"][k], 1.0)
        w = noise_weights(sigma, nsamples=ns, flags=vd["flags"][k] | vm["flags"][k],
                          shape=d.shape, ant1=vd["ant1"], ant2=vd["ant2"],
                          include_autos=sv["include_autos"], where="calibrate")
        w = np.asarray(check_finite_data(d, w, "data", f"calibrate (pol {vd['pol_names'][k]})"))
        w = np.asarray(check_finite_data(m, w, "model",
                                         f"calibrate (pol {vd['pol_names'][k]})"))
        kw = dict(time_interval=ti_arg, freq_interval=fi_arg)
        t0 = time.perf_counter()
        if method == "stefcal":
            r = stefcal(d, m, vd["ant1"], vd["ant2"], nant, weights=w, gauge=sv["gauge"],
                        ref_ant=sv["ref_ant"], tol=sv["tol"], maxiter=sv["maxiter"], **kw)
            g, fl, its, conv, gauge = r.gains, r.flags, r.iterations, r.converged, r.gauge
        elif method == "gn":
            r = gauss_newton_cells(d, m, vd["ant1"], vd["ant2"], nant, weights=w,
                                   gauge=sv["gauge"], ref_ant=sv["ref_ant"],
                                   tol=min(float(sv["tol"]), 1e-10),
                                   maxiter=sv["maxiter"], **kw)
            g, fl, its, conv, gauge = r.gains, r.flags, r.iterations, r.converged, r.gauge
        else:   # lm: the shared optimiser on the composed operators
            prob = gain_problem(d, m, vd["ant1"], vd["ant2"], nant, weights=w,
                                include_autos=True, **kw)
            s = solve_gains(prob, method=method, gauge=sv["gauge"], ref_ant=sv["ref_ant"],
                            maxiter=sv["maxiter"], ftol=sv["tol"])
            g, gauge = np.asarray(s.gains), s.gauge
            fl = np.zeros(g.shape, bool)
            its = np.full((g.shape[1], g.shape[2]), int(s.result.nit))
            conv = np.full(its.shape, bool(s.result.success))
        seconds = time.perf_counter() - t0
        g, fl = np.asarray(g), np.asarray(fl)
        st = _cell_statistics(d, m, w, g, vd["ant1"], vd["ant2"], tidx, fidx)
        low = (st["snr"] < float(sv["min_snr"])) & ~fl
        fl = fl | low
        chi2 = float(st["chi2"].sum())
        ndof = float(st["ndof"].sum())
        info.append({"pol": vd["pol_names"][k], "jones": pols[k], "method": method,
                     "iterations_max": int(np.max(its)),
                     "iterations_median": float(np.median(its)),
                     "converged_cells": int(np.sum(conv)), "cells": int(np.size(conv)),
                     "gauge": gauge, "chi2": chi2, "reduced_chi2": chi2 / max(ndof, 1.0),
                     "noise_sigma": None if sigma is None else float(sigma),
                     "low_snr_flags": int(low.sum()), "seconds": seconds})
        gains.append(g)
        flags.append(fl)
        qual.append(st["quality"])
        tqual.append(st["reduced"])
    G, FL = np.stack(gains), np.stack(flags)
    times = np.array([vd["times"][tidx == c].mean() for c in range(int(tidx.max()) + 1)])
    freqs = np.array([vd["freqs"][fidx == c].mean() for c in range(int(fidx.max()) + 1)])
    dt = vd["integration_time"]
    tt = vd["times"]
    if tt.size > 1:
        dt = min(dt, float(np.min(np.diff(tt))) * 86400)
    first = np.array([tt[tidx == c].min() for c in range(times.size)])
    last = np.array([tt[tidx == c].max() for c in range(times.size)])
    edges = np.concatenate([[first[0] - dt / 2 / 86400], 0.5 * (last[:-1] + first[1:]),
                            [last[-1] + dt / 2 / 86400]])
    trange = np.stack([edges[:-1], edges[1:]], axis=1)
    itime = np.array([np.sum(tidx == c) * dt for c in range(times.size)])
    cw = np.array([np.sum(fidx == c) * vd["channel_width"] for c in range(freqs.size)])
    tel = vd["uvdata"].telescope
    tel_names = list(tel.antenna_names)
    tel_nums = [int(n) for n in tel.antenna_numbers]
    ref_name = tel_names[tel_nums.index(int(vd["ant_numbers"][sv["ref_ant"]]))]
    uvc = gains_to_uvcal(G, telescope=tel, times=times, freqs=freqs,
                         ant_numbers=vd["ant_numbers"], jones=pols, flags=FL,
                         ref_antenna_name=ref_name, integration_time=itime,
                         channel_width=cw, time_range=trange, quality=np.stack(qual),
                         total_quality=np.stack(tqual), pol_convention=pc,
                         spw_id=int(np.ravel(vd["uvdata"].spw_array)[0])
                         if np.size(vd["uvdata"].spw_array) == 1 else None,
                         history=f"linlim calibrate ({method}); gauge: {info[0]['gauge']}")
    out = cfg["output"]
    paths = {}
    if out["solutions"]:
        write_uvcal(uvc, out["solutions"], clobber=out["clobber"])
        paths["solutions"] = str(out["solutions"])
    if out["calibrated"]:
        cal = calibrate_uvdata(vd["uvdata"], uvc)
        cal.write_uvh5(str(out["calibrated"]), clobber=out["clobber"])
        paths["calibrated"] = str(out["calibrated"])
    if out["plot"]:
        _residual_plot(out["plot"], vd, vm, G, tidx, fidx)
        paths["plot"] = str(out["plot"])
    return CalibrationResult(G, FL, pols, uvc, info, paths)


def _residual_plot(path: Any, vd: dict, vm: dict, G: Any, tidx: Any, fidx: Any) -> None:
    """Residual |d - g g* m| averaged over cross-baselines (time x channel), and |g|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nant = vd["ant_numbers"].size
    cross = vd["ant1"] != vd["ant2"]
    npol = G.shape[0]
    fig, axes = plt.subplots(npol, 2, figsize=(10, 3.2 * npol), squeeze=False)
    for k in range(npol):
        nt, nf = vd["data"].shape[1:3]
        full = di_gains(vd["ant1"], vd["ant2"], nant, nt, nf, time_interval=tidx,
                        freq_interval=fidx, model=vm["data"][k])
        d = np.where(vd["flags"][k], np.nan, vd["data"][k])
        r = np.abs(d - np.asarray(full(G[k])))[..., cross]
        im = axes[k, 0].imshow(np.nanmean(r, axis=-1), aspect="auto", origin="lower",
                               extent=(vd["freqs"][0] / 1e6, vd["freqs"][-1] / 1e6, 0, nt))
        fig.colorbar(im, ax=axes[k, 0], label="mean |residual| (Jy)")
        axes[k, 0].set_xlabel("frequency (MHz)")
        axes[k, 0].set_ylabel("time index")
        axes[k, 0].set_title(f"pol {vd['pol_names'][k]} residual")
        axes[k, 1].plot(np.abs(G[k][:, 0, :]).T, lw=0.8)
        axes[k, 1].set_xlabel("frequency cell")
        axes[k, 1].set_ylabel("|g| (first time cell)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def run_calibrate(config: dict | None = None, output: str | None = None,
                  overwrite: bool | None = None) -> dict[str, Any]:
    """Calibrate and write the solutions (calfits), ``summary.json`` and a residual plot;
    prints iterations and the fit's quality (:func:`fit_quality`) per polarisation.
    Returns the summary."""
    import json

    cfg, out = prepare_run(config, CALIBRATE_DEFAULTS, output, overwrite=overwrite,
                           results=("gains.calfits",))
    cal = dict(cfg["calibration"])
    cal["output"] = {**cal["output"]}
    cal["output"]["solutions"] = cal["output"]["solutions"] or str(out / "gains.calfits")
    cal["output"]["plot"] = cal["output"]["plot"] or str(out / "calibration.png")
    cal["output"]["clobber"] = True
    truth = None
    kwargs: dict[str, Any] = {}
    if cal["data"] is None and cal["model"] is None:
        sc = build_scenario(cfg["scenario"])
        if sc.gains is None:
            raise InputError("calibrate: scenario.gains.enabled is false; nothing to solve")
        sim = simulate_data(sc)
        meta = uvh5_metadata(sc)
        kwargs = {"data_uvdata": vis_to_uvdata(sim["data"], **meta),
                  "model_uvdata": vis_to_uvdata(sim["sky_model"], **meta)}
        cal["noise"] = {"sigma": cal["noise"]["sigma"] or sc.sigma}
        truth = sc.gains
    elif cal["data"] is None or cal["model"] is None:
        raise InputError("calibrate: give both calibration.data and calibration.model "
                         "(--data and --model), or neither to calibrate a simulated scenario")
    # read and check the files before the output folder exists
    from ..io.uvdata import load_uvdata

    if not kwargs:
        kwargs = {"data_uvdata": load_uvdata(cal["data"], where="calibrate --data"),
                  "model_uvdata": load_uvdata(cal["model"], where="calibrate --model")}
    quiet = is_quiet()
    plot_path = cal["output"]["plot"]
    cal["output"]["plot"] = None
    sol_path = cal["output"]["solutions"]
    cal["output"]["solutions"] = None
    calibrated = cal["output"]["calibrated"]
    cal["output"]["calibrated"] = None
    result = calibrate_from_config(cal, **kwargs)
    create_output(cfg, out)
    write_uvcal(result.uvcal, sol_path, clobber=True)
    if calibrated:
        calibrate_uvdata(kwargs["data_uvdata"], result.uvcal).write_uvh5(
            str(calibrated), clobber=True)
    if plot_path:
        cal["output"]["plot"] = plot_path
    summary: dict[str, Any] = {"solutions": sol_path, "per_pol": result.info}
    if plot_path:
        vd = read_uvdata(kwargs["data_uvdata"], pols=[int(p) for p in result.jones],
                         pol_convention=None, vis_units=("Jy", "UNCALIB", "uncalib"))
        vm = read_uvdata(kwargs["model_uvdata"], pols=[int(p) for p in result.jones],
                         antpairs=vd["antpairs"], pol_convention=_data_pol_convention(vd))
        nt, nf = vd["times"].size, vd["freqs"].size
        sv = cal["solver"]
        _residual_plot(plot_path, vd, vm, result.gains,
                       solution_index(nt, _interval(sv["time_interval"], nt), "time"),
                       solution_index(nf, _interval(sv["freq_interval"], nf), "freq"))
        summary["plot"] = plot_path
    for row in result.info:
        if not quiet:
            print(f"[linlim calibrate] pol {row['pol']}: {row['method']}, iterations "
                  f"median {row['iterations_median']:.0f} / max {row['iterations_max']}, "
                  f"{row['converged_cells']}/{row['cells']} cells converged, "
                  f"{row['low_snr_flags']} low-S/N gains flagged, {row['seconds']:.2f} s; "
                  f"{fit_quality(row)}")
    if truth is not None:
        g = np.asarray(result.gains)[0]                      # (Nant, Ntimes_sol, Nfreqs_sol)
        t = truth[:, None, None]
        # the overall phase is a gauge: align each solution cell to the truth first
        ph = np.angle(np.sum(g * np.conj(t), axis=0))
        err = np.abs(g * np.exp(-1j * ph)[None] - t)
        summary["max_gain_error"] = float(err.max())
        summary["rms_gain_error"] = float(np.sqrt(np.mean(err**2)))
        if not quiet:
            print(f"[linlim calibrate] |g - g_true| after gauge alignment: rms "
                  f"{summary['rms_gain_error']:.2e}, max {summary['max_gain_error']:.2e} "
                  f"over {g.shape[1] * g.shape[2]} solution cells")
    with open(out / "summary.json", "w") as fh:
        json.dump(summary, fh, indent=2, default=str)
    if not quiet:
        print(f"[linlim calibrate] wrote {sol_path}")
    return summary
