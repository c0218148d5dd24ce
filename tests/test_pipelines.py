"""The jobs behind the ``linlim`` command, on small configs: each writes files that
pyuvdata and h5py read back, and the demo's central claim holds."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from pyuvdata import UVCal, UVData

from linlim.cli import main
from linlim.errors import InputError
from linlim.io.config import load_config, merge_config
from linlim.pipelines.scenario import SCENARIO_DEFAULTS, build_scenario

SMALL = {
    "seed": 5,
    "array": {"hex_num": 2},
    "band": {"nfreq": 48},
    "times": {"ntimes": 4},
    "foregrounds": {"nsources": 6},
    "signal": {"nside": 16, "radius_deg": 25.0},
}


def _write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_scenario_defaults_and_validation() -> None:
    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, SMALL))
    assert sc.obs.shape == (4, 48, 21)          # 7 antennas -> 21 cross baselines
    assert sc.catalog.ra.size == 6 and sc.signal_jy.shape[1] == 48
    assert np.isclose(np.mean(np.angle(sc.gains)), 0.0)
    with pytest.raises(InputError, match="freq_min_hz"):
        build_scenario(merge_config(SCENARIO_DEFAULTS, {"band": {"freq_min_hz": 140.0}}))
    with pytest.raises(InputError, match="unknown key 'band.nfreqs'"):
        merge_config(SCENARIO_DEFAULTS, {"band": {"nfreqs": 3}})


def test_simulate_calibrate_fit_sample_commands(tmp_path, capsys) -> None:
    import yaml

    scen = yaml.safe_dump({"scenario": SMALL})
    assert main(["simulate", "--config", str(_write(tmp_path, scen)),
                 "--out", str(tmp_path / "sim")]) == 0
    uv = UVData.from_file(str(tmp_path / "sim" / "data.uvh5"))
    assert uv.Nfreqs == 48 and uv.Ntimes == 4 and uv.Nbls == 21
    with h5py.File(tmp_path / "sim" / "truth.h5") as f:
        assert f["gains"].shape == (7,)

    # the calibration sky model holds the foregrounds only: switch the signal off so that
    # only noise limits the gains (with it on, the unmodelled signal biases them by ~2%)
    nosig = {**SMALL, "signal": {**SMALL["signal"], "enabled": False}}
    cal = yaml.safe_dump({"scenario": nosig, "calibration": {
        "solver": {"time_interval": 4, "freq_interval": 48}}})
    assert main(["calibrate", "--config", str(_write(tmp_path, cal)),
                 "--out", str(tmp_path / "cal")]) == 0
    uvc = UVCal.from_file(str(tmp_path / "cal" / "gains.calfits"))
    assert uvc.Nants_data == 7
    out = capsys.readouterr().out
    assert "after gauge alignment" in out
    rms = float(out.split("rms ")[1].split(",")[0])
    assert rms < 5e-3

    fitcfg = yaml.safe_dump({"scenario": SMALL, "data": str(tmp_path / "sim" / "data.uvh5"),
                             "fit": {"maxiter": 8}})
    assert main(["fit", "--config", str(_write(tmp_path, fitcfg)),
                 "--out", str(tmp_path / "fit")]) == 0
    with h5py.File(tmp_path / "fit" / "fit.h5") as f:
        names = [n.decode() for n in f["names"][()]]
        assert "beam.diameter_m" in names and np.all(np.isfinite(f["error"][()]))
    UVData.from_file(str(tmp_path / "fit" / "model.uvh5"))

    samp = yaml.safe_dump({"scenario": SMALL, "fit": {"maxiter": 8},
                           "hmc": {"chains": 2, "warmup": 20, "draws": 10}})
    assert main(["sample", "--config", str(_write(tmp_path, samp)),
                 "--out", str(tmp_path / "sample")]) == 0
    with h5py.File(tmp_path / "sample" / "chains.h5") as f:
        assert f["draws"].shape[:2] == (2, 10)


def test_config_command_and_bad_config(tmp_path, capsys) -> None:
    assert main(["config", "demo"]) == 0
    import yaml

    defaults = yaml.safe_load(capsys.readouterr().out)
    assert defaults["scenario"]["array"]["hex_num"] == 3
    bad = _write(tmp_path, "scenario:\n  array:\n    hexnum: 3\n")
    assert main(["fit", "--config", str(bad)]) == 2
    assert "unknown key 'scenario.array.hexnum'" in capsys.readouterr().err
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", defaults)


def test_stripe_harmonic_signal_option() -> None:
    """The demo's signal can come from the stripe-harmonic basis (YAML: signal.basis)."""
    cfg = merge_config(SCENARIO_DEFAULTS, {**SMALL, "signal": {**SMALL["signal"],
                                                              "basis": "stripe", "lmax": 12,
                                                              "nk": 8}})
    sc = build_scenario(cfg)
    assert sc.signal_jy.shape == (sc.signal_ra.size, 48) and np.all(np.isfinite(sc.signal_jy))
    ref = build_scenario(merge_config(SCENARIO_DEFAULTS, SMALL))
    assert not np.allclose(sc.signal_jy, ref.signal_jy)       # a different field, same pixels
    np.testing.assert_array_equal(sc.signal_ra, ref.signal_ra)
    with pytest.raises(InputError, match="signal.basis"):
        build_scenario(merge_config(SCENARIO_DEFAULTS, {**SMALL, "signal": {"basis": "x"}}))
