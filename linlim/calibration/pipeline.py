"""The work behind ``linlim calibrate``: read data and model, solve, write solutions and a plot.

Config keys (a plain dict, e.g. loaded from YAML; :data:`DEFAULTS` lists every key)::

    data: raw.uvh5                 # UVData file of the observed (uncalibrated) data
    model: model.uvh5              # UVData file of model visibilities (same times, channels,
                                   # baselines), e.g. written by ``linlim simulate``; or pass
                                   # ``model_uvdata=`` to calibrate_from_config
    pols: null                     # parallel-hand pols to solve (default all of xx, yy, ...)
    noise:
      sigma: null                  # noise rms per complex sample (Jy) for one nsample unit;
                                   # null: unit weights times nsamples
    solver:
      method: stefcal              # stefcal | gn | lm
      time_interval: 1             # samples per solution cell (int)
      freq_interval: 1
      gauge: ref_antenna           # ref_antenna | mean_phase | none
      ref_ant: 0                   # index into the data's antenna list
      tol: 1.0e-10                 # stefcal relative change / optimiser ftol
      maxiter: 200
      include_autos: false
    output:
      solutions: gains.calh5       # .calh5/.h5 or .calfits/.fits
      plot: residuals.png          # residual plot (null: none)
      calibrated: null             # optional calibrated UVData (.uvh5)
      clobber: false

Only parallel-hand polarisations are solved (one Jones term each, feeds independent);
flagged samples carry zero weight and the gauge is reported per Jones term.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.uvcal import calibrate_uvdata, gains_to_uvcal, uvdata_to_vis, write_uvcal
from .gains import di_gains
from .solve import gain_problem, solve_gains
from .stefcal import stefcal
from .weights import make_weights

__all__ = ["DEFAULTS", "CalibrationResult", "calibrate_from_config"]

DEFAULTS: dict = {
    "data": None,
    "model": None,
    "pols": None,
    "noise": {"sigma": None},
    "solver": {"method": "stefcal", "time_interval": 1, "freq_interval": 1,
               "gauge": "ref_antenna", "ref_ant": 0, "tol": 1e-10, "maxiter": 200,
               "include_autos": False},
    "output": {"solutions": None, "plot": None, "calibrated": None, "clobber": False},
}

_PARALLEL = {-5: -5, -6: -6, -1: -1, -2: -2}  # pol -> Jones


def _merge(defaults: dict, user: dict, path: str = "") -> dict:
    out = copy.deepcopy(defaults)
    for k, v in (user or {}).items():
        if k not in defaults:
            raise InputError(f"calibrate config: unknown key {path + k!r}; allowed "
                             f"{sorted(defaults)}")
        if isinstance(defaults[k], dict):
            if not isinstance(v, dict):
                raise InputError(f"calibrate config: {path + k!r} must be a mapping")
            out[k] = _merge(defaults[k], v, path + k + ".")
        else:
            out[k] = v
    return out


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate_from_config`.

    Attributes
    ----------
    gains : complex array, shape (Njones, Nant, Ntimes_sol, Nfreqs_sol)
    flags : bool array, same shape
    jones : list of int
    uvcal : pyuvdata.UVCal
    info : list of dict
        Per Jones term: solver, iterations (or optimiser iterations), gauge, chi2,
        reduced chi2.
    paths : dict
        Files written (solutions, plot, calibrated).
    """

    gains: Any
    flags: Any
    jones: list
    uvcal: Any
    info: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)


def _read(path: Any) -> Any:
    from pyuvdata import UVData

    if path is None:
        raise InputError("calibrate config: 'data' and 'model' must name UVData files")
    return UVData.from_file(str(path))


def calibrate_from_config(config: dict, *, model_uvdata: Any = None,
                          data_uvdata: Any = None) -> CalibrationResult:
    """Run a DI calibration described by ``config`` (module docstring for the keys).

    Parameters
    ----------
    config : dict
        User config (merged over :data:`DEFAULTS`; unknown keys raise).
    model_uvdata, data_uvdata : pyuvdata.UVData, optional
        In-memory model / data (instead of ``config["model"]`` / ``config["data"]``), e.g. a
        model simulated by the RIME from a sky and beam config.

    Returns
    -------
    CalibrationResult
    """
    cfg = _merge(DEFAULTS, config)
    sv = cfg["solver"]
    uvd = data_uvdata if data_uvdata is not None else _read(cfg["data"])
    uvm = model_uvdata if model_uvdata is not None else _read(cfg["model"])
    pols = cfg["pols"] or [int(p) for p in uvd.polarization_array if int(p) in _PARALLEL]
    if not pols or any(int(p) not in _PARALLEL for p in pols):
        raise InputError(f"calibrate: pols must be parallel hands {sorted(_PARALLEL)}, "
                         f"received {pols}")
    vd = uvdata_to_vis(uvd, pols)
    vm = uvdata_to_vis(uvm, pols)
    if vd["data"].shape != vm["data"].shape or not np.array_equal(vd["ant1"], vm["ant1"]):
        raise InputError(f"calibrate: data {vd['data'].shape} and model {vm['data'].shape} "
                         "must share times, channels and baselines")
    nant = vd["ant_numbers"].size
    sigma = cfg["noise"]["sigma"]
    method = sv["method"]
    gains, flags, info = [], [], []
    for k, pol in enumerate(pols):
        d, m = vd["data"][k], vm["data"][k]
        ns = np.where(vd["nsamples"][k] > 0, vd["nsamples"][k], 1.0)
        w = make_weights(d.shape, weights=ns / (1.0 if sigma is None else float(sigma) ** 2),
                         flags=vd["flags"][k], ant1=vd["ant1"], ant2=vd["ant2"],
                         include_autos=sv["include_autos"])
        kw = dict(time_interval=sv["time_interval"], freq_interval=sv["freq_interval"])
        if method == "stefcal":
            r = stefcal(d, m, vd["ant1"], vd["ant2"], nant, weights=w, gauge=sv["gauge"],
                        ref_ant=sv["ref_ant"], tol=sv["tol"], maxiter=sv["maxiter"], **kw)
            g, fl = r.gains, r.flags
            it, gauge = int(r.iterations.max()), r.gauge
        elif method in ("gn", "lm"):
            prob = gain_problem(d, m, vd["ant1"], vd["ant2"], nant, weights=w,
                                include_autos=True, **kw)
            s = solve_gains(prob, method=method, gauge=sv["gauge"], ref_ant=sv["ref_ant"],
                            maxiter=sv["maxiter"], ftol=sv["tol"])
            g, it, gauge = s.gains, int(s.result.nit), s.gauge
            fl = np.zeros(g.shape, bool)
        else:
            raise InputError(f"calibrate: solver.method must be stefcal, gn or lm, received "
                             f"{method!r}")
        op = di_gains(vd["ant1"], vd["ant2"], nant, d.shape[0], d.shape[1], model=m, **kw)
        r = np.where(w > 0, d - op(g), 0.0)     # flagged samples never enter
        chi2 = float((w * np.abs(r) ** 2).sum())
        ndof = int((w > 0).sum()) - g.size      # complex samples minus complex gains
        info.append({"pol": int(pol), "jones": _PARALLEL[int(pol)], "method": method,
                     "iterations": it, "gauge": gauge, "chi2": chi2,
                     "reduced_chi2": chi2 / max(ndof, 1)})
        gains.append(g)
        flags.append(fl)
    G, FL = np.stack(gains), np.stack(flags)
    tidx = di_gains(vd["ant1"], vd["ant2"], nant, len(vd["times"]), len(vd["freqs"]),
                    time_interval=sv["time_interval"], freq_interval=sv["freq_interval"])
    ti, fi = tidx.time_index, tidx.freq_index
    times = np.array([vd["times"][ti == c].mean() for c in range(int(ti.max()) + 1)])
    freqs = np.array([vd["freqs"][fi == c].mean() for c in range(int(fi.max()) + 1)])
    jones = [_PARALLEL[int(p)] for p in pols]
    tel_names = list(uvd.telescope.antenna_names)
    tel_nums = list(uvd.telescope.antenna_numbers)
    ref_name = tel_names[tel_nums.index(int(vd["ant_numbers"][sv["ref_ant"]]))]
    uvc = gains_to_uvcal(G, telescope=uvd.telescope, times=times, freqs=freqs,
                         ant_numbers=vd["ant_numbers"], jones=jones, flags=FL,
                         ref_antenna_name=ref_name,
                         history=f"linlim calibrate ({method}); gauge: {info[0]['gauge']}")
    out = cfg["output"]
    paths = {}
    if out["solutions"]:
        write_uvcal(uvc, out["solutions"], clobber=out["clobber"])
        paths["solutions"] = str(out["solutions"])
    if out["calibrated"] or out["plot"]:
        same_grid = len(times) == len(vd["times"]) and len(freqs) == len(vd["freqs"])
        if out["calibrated"]:
            if not same_grid:
                raise InputError("calibrate: output.calibrated needs time_interval = "
                                 "freq_interval = 1 (one solution per sample)")
            cal = calibrate_uvdata(uvd, uvc)
            cal.write_uvh5(str(out["calibrated"]), clobber=out["clobber"])
            paths["calibrated"] = str(out["calibrated"])
        if out["plot"]:
            _residual_plot(out["plot"], vd, vm, G, tidx, pols)
            paths["plot"] = str(out["plot"])
    return CalibrationResult(G, FL, jones, uvc, info, paths)


def _residual_plot(path: Any, vd: dict, vm: dict, G: Any, op: Any, pols: list) -> None:
    """Residual |d - g g* m| averaged over cross-baselines (time x channel), and |g|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nant = vd["ant_numbers"].size
    cross = vd["ant1"] != vd["ant2"]
    fig, axes = plt.subplots(len(pols), 2, figsize=(10, 3.2 * len(pols)), squeeze=False)
    for k, pol in enumerate(pols):
        nt, nf = vd["data"].shape[1:3]
        full = di_gains(vd["ant1"], vd["ant2"], nant, nt, nf, time_interval=op.time_index,
                        freq_interval=op.freq_index, model=vm["data"][k])
        d = np.where(vd["flags"][k], np.nan, vd["data"][k])
        r = np.abs(d - full(G[k]))[..., cross]
        im = axes[k, 0].imshow(np.nanmean(r, axis=-1), aspect="auto", origin="lower",
                               extent=(vd["freqs"][0] / 1e6, vd["freqs"][-1] / 1e6, 0, nt))
        fig.colorbar(im, ax=axes[k, 0], label="mean |residual| (Jy)")
        axes[k, 0].set_xlabel("frequency (MHz)")
        axes[k, 0].set_ylabel("time index")
        axes[k, 0].set_title(f"pol {int(pol)} residual")
        axes[k, 1].plot(np.abs(G[k][:, 0, :]).T, lw=0.8)
        axes[k, 1].set_xlabel("frequency cell")
        axes[k, 1].set_ylabel("|g| (first time cell)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
