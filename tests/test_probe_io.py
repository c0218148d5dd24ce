"""Bad-input probe of the file path (uvh5, calfits, catalogues): clear errors, no silent
failures."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from linlim.errors import InputError


@pytest.fixture
def small_uvh5(tmp_path):
    """A 4-antenna, 2-time, 3-channel, ee+nn drift-scan uvh5 of unit visibilities."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    from linlim.io.uvdata import write_uvh5

    loc = EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                      1051.69 * u.m)
    rng = np.random.default_rng(3)
    antpos = rng.uniform(-30, 30, (4, 3))
    antpos[:, 2] = 0.0
    a1, a2 = np.triu_indices(4)
    vis = np.ones((2, 2, 3, a1.size), dtype=complex)
    vis[..., a1 == a2] = 5.0
    path = tmp_path / "small.uvh5"
    write_uvh5(path, vis, antpos=antpos, freqs=np.linspace(150e6, 151e6, 3),
               times_jd=2459855.0 + np.arange(2) * 10.0 / 86400, ant1=a1, ant2=a2,
               telescope_loc=loc, pols=("ee", "nn"))
    return path


def _edit(src, dst, fn):
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


# ---------------------------------------------------------------- 1. file freqs / times
def _mhz(f):
    f["Header/freq_array"][...] = f["Header/freq_array"][...] / 1e6
    f["Header/channel_width"][...] = f["Header/channel_width"][...] / 1e6


def _mjd(f):
    f["Header/time_array"][...] = f["Header/time_array"][...] - 2400000.5


@pytest.mark.parametrize("edit, match", [(_mhz, "freq_array.*look like MHz"),
                                         (_mjd, "time_array.*modified Julian")])
def test_file_freqs_times_checked(small_uvh5, tmp_path, edit, match):
    from linlim.io.uvdata import read_uvdata, read_uvh5

    bad = _edit(small_uvh5, tmp_path / "bad.uvh5", edit)
    with pytest.raises(InputError, match=f"read_uvh5: file .*bad.uvh5.*{match}"):
        read_uvh5(bad)
    with pytest.raises(InputError, match=f"calibrate --data: file .*bad.uvh5.*{match}"):
        read_uvdata(bad, where="calibrate --data")
    read_uvh5(small_uvh5)   # the good file still reads




def test_cli_calibrate_mhz_file(small_uvh5, tmp_path, capsys):
    from linlim.cli import main

    bad = _edit(small_uvh5, tmp_path / "mhz.uvh5", _mhz)
    rc = main(["calibrate", "--data", str(bad), "--model", str(small_uvh5), "--time-interval",
               "all", "--out", str(tmp_path / "cal"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "linlim calibrate: error: calibrate --data: file" in err and "MHz" in err


# ------------------------------------------------------- 2. per-time solutions to calfits
def test_cli_calibrate_default_time_interval_writes_calfits(small_uvh5, tmp_path, capsys):
    from pyuvdata import UVCal

    from linlim.cli import main

    rc = main(["calibrate", "--data", str(small_uvh5), "--model", str(small_uvh5),
               "--out", str(tmp_path / "cal"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    uvc = UVCal.from_file(str(tmp_path / "cal" / "gains.calfits"))
    uvc.check()
    assert uvc.Ntimes == 2 and uvc.time_range is None
    np.testing.assert_allclose(uvc.time_array, 2459855.0 + np.arange(2) * 10.0 / 86400,
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.abs(uvc.gain_array), 1.0, atol=1e-6)


def test_write_uvcal_time_ranges(small_uvh5, tmp_path):
    from pyuvdata import UVCal, UVData

    from linlim.io.uvcal import gains_to_uvcal, read_uvcal, write_uvcal

    tel = UVData.from_file(str(small_uvh5)).telescope
    t0 = 2459855.0
    dt = 10.0 / 86400
    trange = np.stack([t0 + (np.arange(3) - 0.5) * dt, t0 + (np.arange(3) + 0.5) * dt], axis=1)
    g = np.ones((1, 4, 3, 2), dtype=complex) * (1 + 0.5j)
    uvc = gains_to_uvcal(g, telescope=tel, times=trange.mean(axis=1), freqs=[150e6, 151e6],
                         ant_numbers=[0, 1, 2, 3], jones=[-5], time_range=trange,
                         integration_time=np.full(3, 10.0))
    write_uvcal(uvc, tmp_path / "g.calfits")
    back = read_uvcal(tmp_path / "g.calfits")
    back.check()
    assert isinstance(back, UVCal) and back.Ntimes == 3
    np.testing.assert_allclose(back.time_array, trange.mean(axis=1), rtol=0, atol=1e-7)
    np.testing.assert_allclose(back.gain_array, uvc.gain_array)
    assert uvc.time_range is not None          # the caller's object is left as it was
    write_uvcal(uvc, tmp_path / "g.calh5")    # calh5 keeps the ranges
    np.testing.assert_allclose(read_uvcal(tmp_path / "g.calh5").time_range, trange)
    # uneven cells calfits cannot hold: a clear error, not a pyuvdata traceback
    tr2 = np.array([[t0, t0 + dt], [t0 + dt, t0 + 3 * dt]])
    uv2 = gains_to_uvcal(g[:, :, :2], telescope=tel, times=tr2.mean(axis=1),
                         freqs=[150e6, 151e6], ant_numbers=[0, 1, 2, 3], jones=[-5],
                         time_range=tr2, integration_time=np.array([10.0, 20.0]))
    with pytest.raises(InputError, match="g2.calfits.*calh5"):
        write_uvcal(uv2, tmp_path / "g2.calfits")


# ------------------------------------------------------- 3. pol_convention data vs model
def _polconv(conv):
    def fn(f):
        if "pol_convention" in f["Header"]:
            del f["Header/pol_convention"]
        f["Header"]["pol_convention"] = np.bytes_(conv)
    return fn


@pytest.mark.parametrize("dconv, mconv, g2", [("avg", "sum", 0.5), ("sum", "avg", 2.0),
                                              ("avg", "avg", 1.0)])
def test_calibrate_pol_convention_mismatch(small_uvh5, tmp_path, dconv, mconv, g2):
    from pyuvdata import UVCal

    from linlim.cli import main

    d = _edit(small_uvh5, tmp_path / "d.uvh5", _polconv(dconv))
    m = _edit(small_uvh5, tmp_path / "m.uvh5", _polconv(mconv))
    rc = main(["calibrate", "--data", str(d), "--model", str(m), "--time-interval", "all",
               "--out", str(tmp_path / "cal"), "--quiet"])
    assert rc == 0
    uvc = UVCal.from_file(str(tmp_path / "cal" / "gains.calfits"))
    # same numbers, labelled in different conventions: |g|^2 carries the factor 2
    np.testing.assert_allclose(np.abs(uvc.gain_array) ** 2, g2, rtol=1e-5)
    assert uvc.pol_convention == dconv


_CAT = """\
freq_mode : 'powerlaw'
mode_kwargs :
  f0 : 150e6
sources :
  name : ['a']
  ra : [20.0]
  dec : [-30.7]
  amp : [10.0]
  alpha : [-0.8]
"""


# ------------------------------------------------- 4. bad gains when corrupting / applying
def _gains(small_uvh5, g, ant_numbers=(0, 1, 2, 3)):
    from pyuvdata import UVData

    from linlim.io.uvcal import gains_to_uvcal

    uv = UVData.from_file(str(small_uvh5))
    g = np.broadcast_to(np.asarray(g, dtype=complex), (2, len(ant_numbers), 1, 3)).copy()
    return uv, gains_to_uvcal(g, telescope=uv.telescope, times=[2459855.0],
                              freqs=np.linspace(150e6, 151e6, 3), ant_numbers=ant_numbers,
                              jones=[-5, -6], integration_time=20.0,
                              channel_width=np.full(3, 0.5e6))


def test_calibrate_uvdata_nan_gains_flagged_with_warning(small_uvh5):
    from linlim.io.uvcal import calibrate_uvdata

    uv, uvc = _gains(small_uvh5, 1.0 + 0.5j)
    uvc.gain_array[0, 0, 0, 0] = np.nan
    with pytest.warns(UserWarning, match=r"flagged \d+ of \d+ samples.*NaN"):
        out = calibrate_uvdata(uv, uvc, undo=True, where="simulate --gains 'g.calfits'")
    assert np.all(np.isfinite(out.data_array[~out.flag_array]))
    assert np.all(out.flag_array[~np.isfinite(out.data_array)])
    assert 0 < out.flag_array.sum() < out.flag_array.size


@pytest.mark.parametrize("g, ants, match", [
    (0.0, (0, 1, 2, 3), "flagged, zero or NaN"),
    (1.0, (20, 21, 22, 23), r"without a solution \[0, 1, 2, 3\]")])
def test_calibrate_uvdata_everything_flagged_refused(small_uvh5, g, ants, match):
    from linlim.io.uvcal import calibrate_uvdata, uvcal_to_gains

    uv, uvc = _gains(small_uvh5, g)
    uvc = {**uvcal_to_gains(uvc), "ant_numbers": np.asarray(ants)}
    with pytest.raises(InputError, match=f"simulate --gains 'g.calfits': the gains flag "
                                         f"every sample.*{match}"):
        calibrate_uvdata(uv, uvc, undo=True, where="simulate --gains 'g.calfits'")


def test_cli_simulate_zero_gains_and_garbage_gains(small_uvh5, tmp_path, capsys):
    from linlim.cli import main
    from linlim.io.uvcal import write_uvcal

    _, uvc = _gains(small_uvh5, 0.0)
    write_uvcal(uvc, tmp_path / "zero.calfits")
    cat = tmp_path / "cat.yml"
    cat.write_text(_CAT)
    (tmp_path / "garbage.uvh5").write_bytes(b"hello not hdf5")
    for name, needle in [("zero.calfits", "the gains flag every sample"),
                         ("garbage.uvh5", "cannot read")]:
        rc = main(["simulate", "--template", str(small_uvh5), "--catalog", str(cat),
                   "--gains", str(tmp_path / name), "--out", str(tmp_path / name[:4]),
                   "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2, err
        line = [s for s in err.splitlines() if "error" in s][-1]
        assert line.startswith("linlim simulate: error: simulate --gains")
        assert name in line and needle in line


def test_read_uvcal_garbage(tmp_path):
    from linlim.io.uvcal import read_uvcal

    (tmp_path / "g.calfits").write_bytes(b"hello")
    with pytest.raises(InputError, match="read_uvcal: pyuvdata cannot read .*g.calfits"):
        read_uvcal(tmp_path / "g.calfits")


# --------------------------------------------------------------- 5. fit uses file flags
def _catalog_at_zenith(small_uvh5, path):
    from pyuvdata import UVData

    uv = UVData.from_file(str(small_uvh5))
    ra = float(np.rad2deg(uv.lst_array[0]))
    path.write_text(_CAT.replace("ra : [20.0]", f"ra : [{ra:.6f}]"))
    return path


def test_fit_uses_file_flags(small_uvh5, tmp_path, capsys):
    import h5py

    from linlim.cli import main

    cat = _catalog_at_zenith(small_uvh5, tmp_path / "cat.yml")

    def flag_some(garbage):
        def fn(f):
            fl = f["Data/flags"][...]
            fl[::3] = True
            f["Data/flags"][...] = fl
            if garbage:
                v = f["Data/visdata"][...]
                v[::3] = 1e6
                f["Data/visdata"][...] = v
        return fn

    maps = []
    for garbage in (False, True):
        d = _edit(small_uvh5, tmp_path / f"d{garbage}.uvh5", flag_some(garbage))
        out = tmp_path / f"fit{garbage}"
        rc = main(["fit", "--data", str(d), "--catalog", str(cat), "--out", str(out),
                   "--quiet"])
        assert rc == 0, capsys.readouterr().err
        with h5py.File(out / "fit.h5") as f:
            maps.append(f["map"][...])
    # flagged samples do not enter the fit: their values do not matter
    np.testing.assert_allclose(maps[1], maps[0], rtol=1e-6, atol=1e-8)

    allflag = _edit(small_uvh5, tmp_path / "allflag.uvh5",
                    lambda f: f["Data/flags"].__setitem__(Ellipsis, True))
    rc = main(["fit", "--data", str(allflag), "--catalog", str(cat), "--out",
               str(tmp_path / "fitall"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "linlim fit: error: fit --data: every sample of" in err and "allflag.uvh5" in err


# ----------------------------------------------------------- 6. unclear errors, clarified
def test_malformed_catalog_yaml(small_uvh5, tmp_path, capsys):
    from linlim.cli import main
    from linlim.sky.catalog import PointSourceCatalog

    bad = tmp_path / "badcat.yml"
    bad.write_text("sources: [ {ra: 1, dec: \n")
    with pytest.raises(InputError, match=r"badcat.yml.*catalogue file is not valid YAML "
                                         r"at line \d+, column \d+"):
        PointSourceCatalog.from_bayeslim_yaml(bad)
    rc = main(["simulate", "--template", str(small_uvh5), "--catalog", str(bad), "--out",
               str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    line = [s for s in err.splitlines() if "error" in s][-1]
    assert line.startswith("linlim simulate: error: ") and "badcat.yml" in line
    assert "config is not valid" not in line
