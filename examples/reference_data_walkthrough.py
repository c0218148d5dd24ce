"""Worked example on the public BayesLIM reference files: simulate GLEAM on the RIMEz
file's geometry, corrupt it with HERA's true gains and 0.5 Jy noise, calibrate, form a
delay spectrum and image.

Run::

    python examples/reference_data_walkthrough.py [WORKDIR]

The reference folder is ``$LINLIM_REFERENCE_DATA``, else ``<repo>/../shared/data/bayeslim``
(or one level further up); the script exits with a message when it is absent. Every step
is the ``linlim`` command a user would type (shown as it runs); the last two steps use
the Python API. Writes, under WORKDIR (default ``reference_walkthrough``):

* ``sim/model.uvh5`` -- GLEAM + A-team through an Airy beam (14 m) on the file's
  antennas, baselines (autos included), times, channels, polarisations and site;
* ``sim/data.uvh5`` -- the same with 0.5 Jy sky noise, corrupted by the true gains;
* ``cal/gains.calfits`` -- the solutions (quality and chi^2 arrays, passes ``check()``);
* ``delay_spectrum.png`` and ``dirty_map.png``; ``summary.json`` with the figures.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATE = "realization_0_downselect.uvh5"
GAINS = "2458101.sum.true_gains.singletime_downselect.calfits"
CATALOG = "GLEAM_ATEAM.yml"


def reference_folder() -> pathlib.Path | None:
    env = os.environ.get("LINLIM_REFERENCE_DATA")
    cands = [pathlib.Path(env)] if env else []
    cands += [ROOT.parent / "shared/data/bayeslim", ROOT.parent.parent / "shared/data/bayeslim"]
    return next((c for c in cands if (c / TEMPLATE).exists()), None)


def linlim(*args: str) -> float:
    """Run one ``linlim`` command in this process; returns its wall-clock seconds."""
    from linlim.cli import main

    print("$ linlim " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    status = main(list(args))
    if status != 0:
        sys.exit(status)
    return time.perf_counter() - t0


def main(work: pathlib.Path) -> dict:
    ref = reference_folder()
    if ref is None:
        print("reference data not found: set LINLIM_REFERENCE_DATA to the BayesLIM data folder")
        return {}
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    # 1-2. simulate on the file's geometry; corrupt with the true gains and sky noise
    summary["simulate_s"] = linlim(
        "simulate", "--overwrite", "--template", str(ref / TEMPLATE), "--catalog",
        str(ref / CATALOG), "--beam", "airy:14", "--gains", str(ref / GAINS), "--noise-jy",
        "0.5", "--out", str(work / "sim"))
    # 3. calibrate (StEFCal, one solution per channel over all times)
    summary["calibrate_s"] = linlim(
        "calibrate", "--overwrite", "--data", str(work / "sim/data.uvh5"), "--model",
        str(work / "sim/model.uvh5"), "--time-interval", "all", "--out", str(work / "cal"))

    from pyuvdata import UVCal, UVData
    from pyuvdata.utils import uvcalibrate

    from linlim.io.uvcal import uvcal_to_gains
    from linlim.io.uvdata import read_uvdata

    cal = UVCal.from_file(str(work / "cal/gains.calfits"))
    cal.check()
    est = uvcal_to_gains(cal)
    true = uvcal_to_gains(UVCal.from_file(str(ref / GAINS)), ant_numbers=est["ant_numbers"])
    e, t = est["gains"][:, :, 0], true["gains"][:, :, 0]
    ph = np.angle(np.sum(e * t.conj(), axis=1, keepdims=True))     # the phase gauge
    rel = np.abs(e * np.exp(-1j * ph) - t) / np.abs(t)
    summary["gain_rms_relative_error"] = float(np.sqrt(np.mean(rel**2)))
    print(f"gains vs truth after the phase gauge: {100 * summary['gain_rms_relative_error']:.2f}"
          " % rms")
    # apply with pyuvdata and read the calibrated data back (ee, cross-correlations)
    raw = UVData.from_file(str(work / "sim/data.uvh5"))
    fixed = uvcalibrate(raw, cal, inplace=False)
    fixed.vis_units = "Jy"
    fixed.pol_convention = "sum"
    d = read_uvdata(fixed, pols=["ee"], include_autos=False)
    m = read_uvdata(work / "sim/model.uvh5", pols=["ee"], include_autos=False)
    resid = d["data"][0] - m["data"][0]
    summary["calibrated_residual_rms_jy"] = float(np.sqrt(np.mean(np.abs(resid) ** 2)))

    # 4. delay spectrum of the calibrated data (even x odd times: no noise bias)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linlim.filters import delay_power_spectrum, split_even_odd

    v1, v2 = split_even_odd(d["data"][0], axis=0)
    n = min(v1.shape[0], v2.shape[0])
    ps = delay_power_spectrum(v1[:n], v2[:n], d["freqs"], sigma1=0.5, axis=1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.asarray(ps.delays) * 1e9, np.abs(np.asarray(ps.power)), lw=1)
    ax.set_xlabel("delay (ns)")
    ax.set_ylabel("|P(tau)| (Jy^2 Hz^2)")
    ax.set_title("calibrated ee, even x odd times, mean over baselines")
    fig.tight_layout()
    fig.savefig(work / "delay_spectrum.png", dpi=100)
    plt.close(fig)

    # 5. a dirty map around zenith at the middle time (multi-frequency synthesis)
    from linlim.imaging import DirtyImager

    k = d["times"].size // 2
    im = DirtyImager.lm(101, 1.0, d["antpos"], d["freqs"], d["ant1"], d["ant2"])
    img = im.image(im.dirty_map(d["data"][0][k:k + 1], "weights", mfs=True)[:, None])[0]
    fig, ax = plt.subplots(figsize=(5, 4.4))
    h = ax.imshow(img, origin="lower", extent=(-0.5, 0.5, -0.5, 0.5), cmap="magma")
    fig.colorbar(h, ax=ax, label="Jy/beam")
    ax.set_xlabel("l (east)")
    ax.set_ylabel("m (north)")
    ax.set_title(f"dirty map, JD {d['times'][k]:.4f}")
    fig.tight_layout()
    fig.savefig(work / "dirty_map.png", dpi=100)
    plt.close(fig)
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "reference_walkthrough"))
