"""uvh5 round trips of linlim visibilities through pyuvdata."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import ShapeError
from linlim.io.uvdata import read_uvh5, uvdata_to_visibilities, vis_to_uvdata, write_uvh5


@pytest.fixture
def setup(rng):
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    loc = EarthLocation.from_geodetic(21.428303826863015 * u.deg, -30.72152612068957 * u.deg,
                                      1051.69 * u.m)
    antpos = rng.uniform(-30, 30, (4, 3))
    a1, a2 = np.triu_indices(4)
    freqs = np.linspace(100e6, 110e6, 5)
    times = 2459855.0 + np.arange(3) * 10.0 / 86400
    vis = rng.standard_normal((2, 3, 5, a1.size)) + 1j * rng.standard_normal((2, 3, 5, a1.size))
    auto = a1 == a2
    vis[..., auto] = np.abs(vis[..., auto])   # autos are real and positive
    return dict(loc=loc, antpos=antpos, a1=a1, a2=a2, freqs=freqs, times=times, vis=vis)


def test_uvh5_round_trip(setup, tmp_path):
    s = setup
    kw = dict(antpos=s["antpos"], freqs=s["freqs"], times_jd=s["times"], ant1=s["a1"],
              ant2=s["a2"], telescope_loc=s["loc"], pols=("xx", "yy"), ant_numbers=[10, 11, 12, 13])
    uv = write_uvh5(tmp_path / "v.uvh5", s["vis"], **kw)
    assert uv.pol_convention == "sum" and uv.vis_units == "Jy"
    # uvw = x[ant2] - x[ant1] (ENU, drift scan)
    k = 4
    np.testing.assert_allclose(uv.uvw_array[k], s["antpos"][s["a2"][k]] - s["antpos"][s["a1"][k]],
                               atol=1e-6)
    vis, meta = read_uvh5(tmp_path / "v.uvh5")
    np.testing.assert_array_equal(vis, s["vis"])
    assert meta["pols"] == [-5, -6] and meta["pol_convention"] == "sum"
    np.testing.assert_allclose(meta["times_jd"], s["times"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(meta["freqs"], s["freqs"])
    assert meta["antpairs"][1] == (10, 11)
    np.testing.assert_allclose(meta["antpos"], s["antpos"], atol=1e-6)
    # one polarisation, 3-D layout, and a subset of baselines read back
    uv1 = vis_to_uvdata(s["vis"][0], **{**kw, "pols": ("xx",)})
    v1, _ = uvdata_to_visibilities(uv1, antpairs=[(11, 13)])
    j = int(np.nonzero((s["a1"] == 1) & (s["a2"] == 3))[0][0])
    np.testing.assert_array_equal(v1[0, :, :, 0], s["vis"][0, :, :, j])


def test_shape_error(setup):
    s = setup
    with pytest.raises(ShapeError, match="vis"):
        vis_to_uvdata(s["vis"][:, :2], antpos=s["antpos"], freqs=s["freqs"],
                      times_jd=s["times"], ant1=s["a1"], ant2=s["a2"], telescope_loc=s["loc"],
                      pols=("xx", "yy"))
