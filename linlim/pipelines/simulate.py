"""``linlim simulate``: visibilities of a synthetic scenario, or of a catalogue on the
geometry of a user's file, written as uvh5 files.

Scenario mode (no ``template``) writes ``data.uvh5`` (foregrounds + 21 cm signal, through
the true beam and gains, plus noise), ``model.uvh5`` (the foregrounds through the true beam,
no gains: the sky model a calibration uses), ``signal.uvh5`` (the signal alone),
``truth.h5`` (true parameters) and a waterfall plot.

Template mode (``template: file.uvh5`` with ``catalog`` and ``beam``) simulates the
catalogue's point sources through the beam on the file's geometry: its antenna numbers,
names and positions, its baselines including autos, times, LSTs, channels, polarisations,
x_orientation and site are kept; ``data.uvh5`` holds the unpolarised sky (parallel hands
equal, cross-hands zero, ``pol_convention="sum"``), optionally with noise.

Example::

    linlim simulate --template realization_0_downselect.uvh5 \
        --catalog GLEAM_ATEAM.yml --beam airy:14 --out D
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.config import create_output, prepare_run
from ..io.uvdata import PARALLEL_POLS, make_autos_real, read_uvdata, write_uvh5
from ..rime.operator import RIMEIntensity
from .joint import beam_values, build_joint_model
from .progress import is_quiet
from .scenario import SCENARIO_DEFAULTS, Scenario, build_scenario

__all__ = ["SIMULATE_DEFAULTS", "simulate_data", "run_simulate", "uvh5_metadata",
           "read_catalog", "parse_beam", "simulate_template", "add_noise_and_gains",
           "observation_from_file"]

#: Built-in defaults of ``linlim simulate``.
SIMULATE_DEFAULTS: dict[str, Any] = {
    "output": "linlim_simulate_output",
    "template": None,      # uvh5 whose geometry becomes the observation
    "catalog": None,       # point sources: BayesLIM YAML, CSV or HDF5 (template mode)
    "beam": "airy:14",     # airy:DIAMETER_M, gaussian:FWHM_DEG, or a pyuvdata beam file
    "noise_jy": 0.0,       # template mode: sky noise rms per complex visibility (Jy)
    "gains": None,         # template mode: calfits/calh5 gains to corrupt data.uvh5 with
    #                        (then model.uvh5 holds the noise-free sky without gains)
    "seed": 0,             # template mode: noise seed
    "scenario": SCENARIO_DEFAULTS,
    "plots": True,
    "quiet": False,
}


def observation_from_file(path: Any, *, pol: str | int | None = None,
                          unphase: bool = False, where: str = "data",
                          vis_units: Any = ("Jy", "UNCALIB", "uncalib")) -> tuple[Any, dict]:
    """The :class:`~linlim.pipelines.scenario.Observation` of a file: its antennas (numbers,
    names, ENU positions), cross-correlations in file order, channels, times and site.

    Parameters
    ----------
    path : path or pyuvdata.UVData
    pol : str or int, optional
        Polarisation read (default the first parallel hand).
    unphase : bool
        Unproject phased data with pyuvdata (else refused).
    where : str
        Name in messages.
    vis_units : str or sequence of str
        Units accepted (a template's values are not used; data must be in Jy).

    Returns
    -------
    (Observation, dict)
        The observation and :func:`~linlim.io.uvdata.read_uvdata`'s dict.
    """
    from ..telescope.layout import ArrayLayout
    from .scenario import Observation

    r = read_uvdata(path, pols=None if pol is None else [pol], include_autos=False,
                    unphase=unphase, pol_convention="sum", vis_units=vis_units,
                    where=where)
    layout = ArrayLayout(r["antpos"], antnums=r["ant_numbers"], names=r["ant_names"],
                         site=r["site"])
    obs = Observation(layout, r["site"], np.asarray(r["antpos"], float), r["ant1"],
                      r["ant2"], r["freqs"], r["times"])
    return obs, r


def read_catalog(path: str | os.PathLike) -> Any:
    """A :class:`~linlim.sky.catalog.PointSourceCatalog` from a BayesLIM YAML
    (``.yml``/``.yaml``), CSV (``.csv``) or HDF5 (``.h5``/``.hdf5``) file.

    Raises
    ------
    InputError
        For a missing file or an unknown extension.
    """
    from ..sky.catalog import PointSourceCatalog

    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"catalog: file {p!r} does not exist")
    ext = os.path.splitext(p)[1].lower()
    if ext in (".yml", ".yaml"):
        return PointSourceCatalog.from_bayeslim_yaml(p)
    if ext == ".csv":
        return PointSourceCatalog.from_csv(p)
    if ext in (".h5", ".hdf5"):
        return PointSourceCatalog.from_hdf5(p)
    raise InputError(f"catalog: extension of {p!r} must be .yml/.yaml (BayesLIM), .csv or "
                     ".h5/.hdf5")


def parse_beam(spec: Any) -> Any:
    """A pyuvdata beam from ``"airy:DIAMETER_M"``, ``"gaussian:FWHM_DEG"`` (FWHM of the
    power beam, achromatic) or the path of a beam file pyuvdata reads (beamfits, ...).

    Raises
    ------
    InputError
        Naming the spec and the accepted forms.
    """
    from pyuvdata.analytic_beam import AiryBeam, GaussianBeam

    if not isinstance(spec, str):
        return spec
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("airy", "gaussian") and arg:
        try:
            val = float(arg)
        except ValueError:
            val = float("nan")
        if not np.isfinite(val) or val <= 0:
            raise InputError(f"beam: expected a positive number after {kind!r}:, received "
                             f"{spec!r}")
        if kind == "airy":
            return AiryBeam(diameter=val)
        sigma = np.deg2rad(val) / (2 * np.sqrt(2 * np.log(2)))
        return GaussianBeam(sigma=sigma, sigma_type="power")
    if os.path.exists(spec):
        from pyuvdata import UVBeam

        try:
            return UVBeam.from_file(spec)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"beam: pyuvdata cannot read {spec!r}: {exc}") from None
    raise InputError(f"beam: expected 'airy:DIAMETER_M', 'gaussian:FWHM_DEG' or an existing "
                     f"beam file, received {spec!r}")


def simulate_template(template: Any, catalog: Any, beam: Any, *,
                      progress: bool = False) -> Any:
    """Simulate a point-source catalogue through a beam on a file's geometry.

    Parameters
    ----------
    template : path or pyuvdata.UVData
        Drift-scan file whose antennas, baselines (autos included), times, channels,
        polarisations, x_orientation and site are kept.
    catalog : PointSourceCatalog or path
    beam : pyuvdata beam or str (:func:`parse_beam`)
    progress : bool
        A progress bar over times.

    Returns
    -------
    pyuvdata.UVData
        A copy of the template holding the simulation (Jy, ``pol_convention="sum"``:
        parallel hands ``I |A|^2 / 2``, cross-hands zero), flags cleared, nsamples 1.
    """
    from astropy.time import Time

    from ..rime.simulate import simulate_vis
    from .progress import progress_bar

    cat = read_catalog(catalog) if isinstance(catalog, (str, os.PathLike)) else catalog
    bm = parse_beam(beam)
    meta = read_uvdata(template, allow_cross_pols=True, pol_convention=None,
                       vis_units=["Jy", "UNCALIB", "K str", "uncalib"], where="template")
    uv = meta["uvdata"].copy()
    freqs, times = meta["freqs"], meta["times"]
    fluxes = cat.fluxes(freqs)
    pairs = np.stack([meta["ant1"], meta["ant2"]], axis=1)
    nt, nf, nb = times.size, freqs.size, pairs.shape[0]
    V = np.zeros((nt, nf, nb), dtype=np.complex128)
    site = meta["site"]
    tobj = Time(times, format="jd", scale="utc")
    for t in progress_bar(range(nt), desc="simulate", total=nt, disable=not progress):
        V[t] = simulate_vis(meta["antpos"], fluxes, cat.ra, cat.dec, freqs, tobj[t:t + 1],
                            bm, site, antpairs=pairs)[:, 0, :]
    # fill the template's rows (time, baseline) in its own order
    tpos = np.searchsorted(times, uv.time_array)
    key = {(int(a), int(b)): k for k, (a, b) in enumerate(meta["antpairs"])}
    rows = np.array([key.get((int(a), int(b)), -1) for a, b in
                     zip(uv.ant_1_array, uv.ant_2_array)])
    if np.any(rows < 0):
        raise InputError("template: some baselines are stored in both orders; cannot "
                         "simulate onto this file")
    data = np.zeros(uv.data_array.shape, dtype=np.complex128)
    pols = [int(p) for p in uv.polarization_array]
    for ip, p in enumerate(pols):
        if p in PARALLEL_POLS:
            data[:, :, ip] = V[tpos, :, rows]
    uv.data_array = data          # complex128: the simulation at full precision
    uv.flag_array = np.zeros(uv.data_array.shape, dtype=bool)
    uv.nsample_array = np.ones(uv.data_array.shape, dtype=np.float32)
    uv.vis_units = "Jy"
    uv.pol_convention = "sum"
    if uv.Nspws == 1:
        # number the window 0, as calfits files always do (pyuvdata's uvcalibrate matches
        # windows by number, and older files such as the RIMEz reference call theirs 1)
        uv.spw_array = np.array([0])
        uv.flex_spw_id_array = np.zeros(uv.Nfreqs, dtype=int)
    make_autos_real(uv)
    uv.history += (f"\nlinlim simulate: {cat.ra.size} point sources through "
                   f"{beam if isinstance(beam, str) else type(bm).__name__} on this "
                   "geometry")
    return uv


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
            v = v * obs.gain_products(sc.gains)
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
        sky_model = v_fg / obs.gain_products(sc.gains)
    return {"truth": truth, "foregrounds": v_fg, "signal": v_sig, "noise": noise,
            "data": v_fg + v_sig + noise, "names": truth_model.names,
            "sky_model": sky_model}


def uvh5_metadata(sc: Scenario) -> dict[str, Any]:
    """Keyword arguments of :func:`linlim.io.uvdata.write_uvh5` for a scenario."""
    obs = sc.obs
    return dict(antpos=obs.antpos, freqs=obs.freqs, times_jd=obs.times_jd, ant1=obs.ant1,
                ant2=obs.ant2, telescope_loc=obs.site,
                ant_numbers=np.asarray(obs.layout.antnums).tolist(),
                ant_names=list(obs.layout.names))


def add_noise_and_gains(uv: Any, noise_jy: float = 0.0, gains: Any = None, *,
                        seed: int = 0) -> Any:
    """A copy of ``uv`` with complex Gaussian sky noise added (``E|n|^2 = noise_jy^2`` per
    cross-correlation, Jy) and then antenna gains applied (``raw = g_p conj(g_q) (V + n)``,
    the "divide" convention of calfits); the data become ``vis_units="UNCALIB"`` when
    gains are applied. A single-time gain file (a HERA time range) applies to every time.

    Parameters
    ----------
    uv : pyuvdata.UVData
    noise_jy : float
    gains : path or pyuvdata.UVCal, optional
    seed : int
    """
    from ..io.uvcal import calibrate_uvdata, read_uvcal

    out = uv.copy()
    if noise_jy:
        rng = np.random.default_rng(int(seed))
        shape = out.data_array.shape
        n = noise_jy / np.sqrt(2) * (rng.standard_normal(shape)
                                     + 1j * rng.standard_normal(shape))
        n[out.ant_1_array == out.ant_2_array] = 0.0
        out.data_array = out.data_array + n
        out.history += f"\nlinlim: added {noise_jy} Jy noise (seed {seed})"
    if gains is not None:
        if isinstance(gains, (str, os.PathLike)):
            where = f"simulate --gains {os.fspath(gains)!r}"
            uvc = read_uvcal(gains, where="simulate --gains")
        else:
            where, uvc = "simulate --gains", gains
        out = calibrate_uvdata(out, uvc, undo=True, where=where)
        out.vis_units = "UNCALIB"
        out.pol_convention = None    # pyuvdata: a convention belongs to calibrated data
        out.history += f"\nlinlim: corrupted with the gains of {gains}"
    return out


def run_simulate(config: dict | None = None, output: str | None = None,
                 overwrite: bool | None = None) -> dict[str, Any]:
    """Simulate a scenario (or a catalogue on a template's geometry) and write its files;
    returns the paths written. The output folder is created once the inputs were read."""
    cfg, out = prepare_run(config, SIMULATE_DEFAULTS, output, overwrite=overwrite,
                           results=("data.uvh5",))
    if cfg["template"] is not None:
        if cfg["catalog"] is None:
            raise InputError("simulate: template mode needs a catalog (--catalog FILE)")
        quiet = cfg["quiet"] or is_quiet()
        uv = simulate_template(cfg["template"], cfg["catalog"], cfg["beam"],
                               progress=not quiet)
        paths = {"data": out / "data.uvh5"}
        data = uv
        if cfg["noise_jy"] or cfg["gains"]:
            data = add_noise_and_gains(uv, float(cfg["noise_jy"]), cfg["gains"],
                                       seed=int(cfg["seed"]))
        create_output(cfg, out)
        if cfg["gains"]:
            paths["model"] = out / "model.uvh5"
            uv.write_uvh5(str(paths["model"]), clobber=True)
        data.write_uvh5(str(paths["data"]), clobber=True)
        if not quiet:
            print(f"[linlim simulate] {uv.Nbls} baselines x {uv.Ntimes} times x "
                  f"{uv.Nfreqs} channels x {uv.Npols} pols; wrote "
                  f"{', '.join(str(p) for p in paths.values())}")
        return {k: str(v) for k, v in paths.items()}
    if cfg["catalog"] is not None:
        cfg["scenario"]["foregrounds"]["catalog"] = cfg["catalog"]
    sc = build_scenario(cfg["scenario"])
    sim = simulate_data(sc)
    meta = uvh5_metadata(sc)
    create_output(cfg, out)
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
    if not cfg["quiet"]:
        print(f"[linlim simulate] wrote {', '.join(str(p) for p in paths.values())}")
    return {k: str(v) for k, v in paths.items()}
