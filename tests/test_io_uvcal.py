"""UVCal round trips (calfits, calh5) and gains on UVData, checked against pyuvdata."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from pyuvdata import Telescope, UVData
from pyuvdata.utils import uvcalibrate

from linlim.calibration import stefcal
from linlim.errors import InputError
from linlim.io.uvcal import (
    calibrate_uvdata,
    gains_to_uvcal,
    read_uvcal,
    uvcal_to_gains,
    uvdata_to_vis,
    write_uvcal,
)

NANT = 5


@pytest.fixture
def telescope():
    loc = EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                      1051.69 * u.m)
    pos = {10 + i: np.array([14.6 * i, 3.0 * i * i, 0.0]) for i in range(NANT)}
    return Telescope.new(name="TEST", location=loc, antenna_positions=pos, instrument="TEST",
                         feeds=["x", "y"], mount_type="fixed",
                         antenna_diameters=np.full(NANT, 14.0), x_orientation="east",
                         update_from_known=False)


@pytest.fixture
def uvdata(telescope, rng):
    times = 2458101.3 + np.arange(3) * 10 / 86400
    freqs = np.linspace(100e6, 110e6, 4)
    nums = list(telescope.antenna_numbers)
    pairs = [(a, b) for a in nums for b in nums if a <= b]
    uvd = UVData.new(freq_array=freqs, polarization_array=np.array([-5, -6, -7, -8]),
                     times=times, telescope=telescope, antpairs=pairs, empty=True,
                     time_axis_faster_than_bls=False)
    uvd.vis_units = "Jy"
    uvd.pol_convention = "sum"
    shape = uvd.data_array.shape
    uvd.data_array[:] = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return uvd


def _gains(rng, nj=2):
    return (1 + 0.1 * rng.standard_normal((nj, NANT, 3, 4))) * np.exp(
        1j * rng.standard_normal((nj, NANT, 3, 4)))


@pytest.mark.parametrize("ext", ["calfits", "calh5"])
def test_uvcal_round_trip(tmp_path, telescope, uvdata, rng, ext):
    g = _gains(rng)
    flags = rng.random(g.shape) < 0.1
    uvc = gains_to_uvcal(g, telescope=telescope, times=np.unique(uvdata.time_array),
                         freqs=uvdata.freq_array, ant_numbers=telescope.antenna_numbers,
                         jones=[-5, -6], flags=flags)
    uvc.check()
    assert uvc.gain_convention == "divide"
    path = tmp_path / f"sol.{ext}"
    write_uvcal(uvc, path)
    back = uvcal_to_gains(read_uvcal(path))
    np.testing.assert_array_equal(back["gains"], g)
    np.testing.assert_array_equal(back["flags"], flags)
    np.testing.assert_array_equal(back["jones"], [-5, -6])
    np.testing.assert_allclose(back["times"], np.unique(uvdata.time_array), rtol=0, atol=1e-9)


def test_calibrate_matches_pyuvdata(telescope, uvdata, rng):
    g = _gains(rng)
    uvc = gains_to_uvcal(g, telescope=telescope, times=np.unique(uvdata.time_array),
                         freqs=uvdata.freq_array, ant_numbers=telescope.antenna_numbers,
                         jones=[-5, -6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for undo in (False, True):
            ours = calibrate_uvdata(uvdata, uvc, undo=undo)
            ref = uvcalibrate(uvdata, uvc, inplace=False, undo=undo)
            np.testing.assert_allclose(ours.data_array, ref.data_array, rtol=1e-13)
    # undo after apply is the identity
    back = calibrate_uvdata(calibrate_uvdata(uvdata, uvc), uvc, undo=True)
    np.testing.assert_allclose(back.data_array, uvdata.data_array, rtol=1e-13)


def test_uvdata_to_vis_and_stefcal_round_trip(telescope, uvdata, rng):
    """Corrupt a model UVData with known gains, solve from the arrays, write, calibrate."""
    g = _gains(rng, nj=1)[:, :, :, :]
    uvc_true = gains_to_uvcal(g, telescope=telescope, times=np.unique(uvdata.time_array),
                              freqs=uvdata.freq_array, ant_numbers=telescope.antenna_numbers)
    model = uvdata.copy()
    model.select(polarizations=[-5])
    raw = calibrate_uvdata(model, uvc_true, undo=True)
    v, m = uvdata_to_vis(raw), uvdata_to_vis(model)
    assert v["data"].shape == (1, 3, 4, 15)
    np.testing.assert_array_equal(v["ant_numbers"], telescope.antenna_numbers)
    res = stefcal(v["data"][0], m["data"][0], v["ant1"], v["ant2"], NANT, tol=1e-13)
    uvc = gains_to_uvcal(res.gains, telescope=telescope, times=v["times"], freqs=v["freqs"],
                         ant_numbers=v["ant_numbers"])
    cal = calibrate_uvdata(raw, uvc)
    np.testing.assert_allclose(cal.data_array, model.data_array, rtol=1e-9)


def test_errors(telescope, uvdata, rng, tmp_path):
    with pytest.raises(InputError, match="extension"):
        write_uvcal(None, tmp_path / "x.txt")
    with pytest.raises(InputError, match="no such file"):
        read_uvcal(tmp_path / "missing.calh5")
    uvc = gains_to_uvcal(_gains(rng, 1)[..., :2], telescope=telescope,
                         times=np.unique(uvdata.time_array), freqs=uvdata.freq_array[:2],
                         ant_numbers=telescope.antenna_numbers)
    with pytest.raises(InputError, match="frequencies"):
        calibrate_uvdata(uvdata, uvc)


@pytest.mark.parametrize("method", ["stefcal", "gn"])
def test_calibrate_from_config(tmp_path, telescope, uvdata, rng, method):
    from linlim.calibration.pipeline import calibrate_from_config

    model = uvdata.copy()
    model.select(polarizations=[-5, -6])
    autos = model.ant_1_array == model.ant_2_array
    model.data_array[autos] = np.abs(model.data_array[autos]) + 5.0   # real autos
    g = _gains(rng)
    uvc_true = gains_to_uvcal(g, telescope=telescope, times=np.unique(uvdata.time_array),
                              freqs=uvdata.freq_array, ant_numbers=telescope.antenna_numbers,
                              jones=[-5, -6])
    raw = calibrate_uvdata(model, uvc_true, undo=True)
    raw.data_array[autos] = raw.data_array[autos].real
    sel = (raw.ant_1_array == 10) & (raw.ant_2_array == 12)
    raw.flag_array[sel, 1, 0] = True                         # some flags
    raw.data_array[raw.flag_array] = 1e200
    raw.write_uvh5(str(tmp_path / "raw.uvh5"))
    model.write_uvh5(str(tmp_path / "model.uvh5"))
    cfg = {"data": str(tmp_path / "raw.uvh5"), "model": str(tmp_path / "model.uvh5"),
           "solver": {"method": method, "tol": 1e-13 if method == "stefcal" else 1e-14},
           "output": {"solutions": str(tmp_path / "g.calh5"), "plot": str(tmp_path / "r.png"),
                      "calibrated": str(tmp_path / "cal.uvh5")}}
    res = calibrate_from_config(cfg)
    assert (tmp_path / "g.calh5").exists() and (tmp_path / "r.png").stat().st_size > 0
    assert res.jones == [-5, -6] and res.info[0]["gauge"].startswith("reference antenna")
    sol = uvcal_to_gains(read_uvcal(tmp_path / "g.calh5"))
    from linlim.calibration import align_phase

    est = align_phase(sol["gains"], g, ant_axis=1)
    assert np.abs(est - g).max() < 1e-8
    cal = UVData.from_file(str(tmp_path / "cal.uvh5"))
    ok = ~cal.flag_array
    np.testing.assert_allclose(cal.data_array[ok], model.data_array[ok], rtol=1e-8)
    with pytest.raises(InputError, match="unknown key"):
        calibrate_from_config({"solvr": {}})
