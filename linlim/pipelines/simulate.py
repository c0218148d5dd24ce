"""``linlim simulate``: visibilities of a synthetic scenario, written as uvh5 files.

Writes ``data.uvh5`` (foregrounds + 21 cm signal, through the true beam and gains, plus
noise), ``model.uvh5`` (the foregrounds through the true beam, no gains: the sky model a
calibration uses), ``signal.uvh5`` (the signal alone), ``truth.h5`` (true parameters) and a
waterfall plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io.config import start_run
from ..io.uvdata import write_uvh5
from ..rime.operator import RIMEIntensity
from .joint import beam_values, build_joint_model
from .scenario import SCENARIO_DEFAULTS, Scenario, build_scenario

__all__ = ["SIMULATE_DEFAULTS", "simulate_data", "run_simulate", "uvh5_metadata"]

#: Built-in defaults of ``linlim simulate``.
SIMULATE_DEFAULTS: dict[str, Any] = {
    "output": "linlim_simulate_output",
    "scenario": SCENARIO_DEFAULTS,
    "plots": True,
}


def simulate_data(sc: Scenario) -> dict[str, np.ndarray]:
    """Simulate foreground, signal and noise visibilities (Ntimes, Nfreq, Nbl) for a
    scenario; the foregrounds and the signal see the true beam and gains."""
    obs, cat = sc.obs, sc.catalog
    truth_model = build_joint_model(obs, cat.ra, cat.dec, sc.ref_freq, sc.ripple_delay,
                                    fit_gains=sc.gains is not None)
    values = {"fg_logflux": np.log(cat.flux), "fg_index": cat.spectral_index,
              "beam": sc.beam_params}
    if sc.gains is not None:
        values["gains"] = np.stack([np.log(np.abs(sc.gains)),
                                    np.angle(sc.gains)]).reshape(2, -1, 1, 1)
    truth = truth_model.params.pack(values)
    v_fg = np.asarray(truth_model.model(truth))

    def through_beam_and_gains(ra: np.ndarray, dec: np.ndarray, jy: np.ndarray) -> np.ndarray:
        enu, az, za = obs.directions(ra, dec)
        A = beam_values(obs, az, za, sc.ref_freq, sc.ripple_delay, sc.beam_params)
        K = RIMEIntensity(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2, beam=A)
        v = np.asarray(K.matvec(jy))
        if sc.gains is not None:
            v = v * (sc.gains[obs.ant1] * np.conj(sc.gains[obs.ant2]))
        return v

    v_sig = np.zeros_like(v_fg)
    if sc.signal_ra.size:
        v_sig = through_beam_and_gains(sc.signal_ra, sc.signal_dec, sc.signal_jy)
    dif = getattr(sc, "diffuse", None)
    if dif is not None:   # the diffuse foreground (linlim.pipelines.skymodel) joins v_fg
        v_fg = v_fg + through_beam_and_gains(dif.ra, dif.dec, dif.intensity(dif.coeffs))
    shape = v_fg.shape
    noise = sc.sigma / np.sqrt(2) * (sc.rng.standard_normal(shape)
                                     + 1j * sc.rng.standard_normal(shape))
    sky_model = v_fg
    if sc.gains is not None:  # the foregrounds without the gains: a calibration's model
        sky_model = v_fg / (sc.gains[obs.ant1] * np.conj(sc.gains[obs.ant2]))
    return {"truth": truth, "foregrounds": v_fg, "signal": v_sig, "noise": noise,
            "data": v_fg + v_sig + noise, "names": truth_model.names,
            "sky_model": sky_model}


def uvh5_metadata(sc: Scenario) -> dict[str, Any]:
    """Keyword arguments of :func:`linlim.io.uvdata.write_uvh5` for a scenario."""
    obs = sc.obs
    return dict(antpos=obs.antpos, freqs=obs.freqs, times_jd=obs.times_jd, ant1=obs.ant1,
                ant2=obs.ant2, telescope_loc=obs.site)


def run_simulate(config: dict | None = None, output: str | None = None) -> dict[str, Any]:
    """Simulate a scenario and write its files; returns the paths written."""
    cfg, out = start_run(config, SIMULATE_DEFAULTS, output)
    sc = build_scenario(cfg["scenario"])
    sim = simulate_data(sc)
    meta = uvh5_metadata(sc)
    paths = {"data": out / "data.uvh5", "signal": out / "signal.uvh5",
             "model": out / "model.uvh5", "truth": out / "truth.h5"}
    write_uvh5(paths["data"], sim["data"], clobber=True, **meta)
    write_uvh5(paths["signal"], sim["signal"], clobber=True, **meta)
    write_uvh5(paths["model"], sim["sky_model"], clobber=True, **meta)
    import h5py

    with h5py.File(paths["truth"], "w") as f:
        f["names"] = np.array(sim["names"], dtype="S")
        f["theta"] = sim["truth"]
        f["sigma_jy"] = sc.sigma
        if sc.gains is not None:
            f["gains"] = sc.gains
        f["beam_params"] = sc.beam_params
    if cfg["plots"]:
        from ..plotting.spectra import plot_waterfall

        obs = sc.obs
        b = int(np.argmax(np.linalg.norm(obs.antpos[obs.ant2] - obs.antpos[obs.ant1], axis=1)))
        paths["waterfall"] = plot_waterfall(sim["data"][:, :, b], obs.freqs, obs.times_jd,
                                            out / "waterfall_data.png",
                                            title=f"baseline {obs.ant1[b]}-{obs.ant2[b]}")
    print(f"[linlim simulate] wrote {', '.join(str(p) for p in paths.values())}")
    return {k: str(v) for k, v in paths.items()}
