"""Imaging through the adjoint (linlim.imaging): dirty maps against an explicit sum over
baselines, point sources at their position with their flux, the A w diagonal against
explicit K^H W K columns, PSFs, directions and plots."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from linlim.errors import InputError, ShapeError
from linlim.imaging import DirtyImager, healpix_directions, lm_directions, lm_grid
from linlim.plotting.imaging import plot_healpix_map, plot_lm_image
from linlim.telescope.coordinates import pole_rotation_matrix
from linlim.testing import dottest

C = 299792458.0
JD = 2459000.5 + np.array([0.0, 0.01, 0.02])
HERA_LAT = np.deg2rad(-30.72152612068957)


def _array(rng, nant=6):
    pos = np.zeros((nant, 3))
    pos[:, :2] = rng.uniform(-20, 20, (nant, 2))
    a1, a2 = np.triu_indices(nant, 1)
    a1 = np.concatenate([a1, [0]])                         # one auto as well
    a2 = np.concatenate([a2, [0]])
    return pos, a1, a2


def _explicit_map(enu, pos, freqs, a1, a2, beams, bidx, w, vis):
    """map(p, f) = 1/2 Re sum_{t, b} w conj(A_i) A_j exp(-2 pi i nu (x_j - x_i).s / c) V_b,
    over pixels above the horizon; plain loops, independent of the RIME engine."""
    nt, _, npix = enu.shape
    out = np.zeros((npix, freqs.size))
    for t in range(nt):
        up = enu[t, 2] > 0
        for b, (i, j) in enumerate(zip(a1, a2)):
            delay = (pos[j] - pos[i]) @ enu[t] / C                     # (Npix,)
            for f, nu in enumerate(freqs):
                Ai, Aj = beams[bidx[i], t, :, f], beams[bidx[j], t, :, f]
                ph = np.exp(-2j * np.pi * nu * delay)
                term = 0.5 * np.real(w[t, f, b] * np.conj(Ai) * Aj * ph * vis[t, f, b])
                out[:, f] += np.where(up, term, 0.0)
    return out


def test_dirty_map_equals_explicit_sum(rng):
    pos, a1, a2 = _array(rng)
    freqs = np.array([1.0e8, 1.3e8])
    enu = healpix_directions(4, JD, "HERA")                 # half the pixels below horizon
    npix = enu.shape[2]
    beams = (rng.uniform(0.3, 1.0, (2, JD.size, npix, 2))
             * np.exp(1j * rng.uniform(-0.3, 0.3, (2, JD.size, npix, 2))))
    bidx = np.array([0, 1, 0, 1, 1, 0])
    w = rng.uniform(0.2, 2.0, (JD.size, 2, a1.size)) * (rng.random((JD.size, 2, a1.size)) > .1)
    vis = rng.standard_normal(w.shape) + 1j * rng.standard_normal(w.shape)
    im = DirtyImager(enu, pos, freqs, a1, a2, beams, weights=w, beam_index=bidx)
    got = im.dirty_map(vis, "none")
    ref = _explicit_map(enu, pos, freqs, a1, a2, beams, bidx, w, vis)
    assert np.allclose(got, ref, rtol=0, atol=1e-11 * np.abs(ref).max())
    assert np.all(got[(enu[:, 2] <= 0).all(axis=0)] == 0)
    # the "aw" normalisation is the diagonal of K^H W K: compare with explicit columns
    naw = im.normalization("aw")
    for p in rng.choice(np.flatnonzero((enu[:, 2] > 0).any(axis=0)), 5, replace=False):
        col = im.psf(int(p), "none")                        # K^H W K e_p
        assert np.allclose(naw[p], col[p], rtol=1e-12)
        assert np.allclose(im.psf(int(p), "aw")[p], 1.0, rtol=1e-12)
    # the imaging operator: same map, exact adjoint
    op = im.operator("none")
    assert np.allclose(op.matvec(vis), got, atol=1e-12 * np.abs(got).max())
    assert dottest(op, vis, rng=rng).passed


def _point_source_vis(s_enu, flux, pos, freqs, a1, a2, beam_at_src):
    """XX visibilities of one source, from its ENU direction per time (Ntimes, 3)."""
    b = pos[a2] - pos[a1]                                   # (Nbl, 3)
    delay = s_enu @ b.T / C                                 # (Nt, Nbl)
    ph = np.exp(2j * np.pi * freqs[None, :, None] * delay[:, None, :])
    return 0.5 * flux * beam_at_src[:, :, None] ** 2 * ph


def test_healpix_point_source_images_with_its_flux(rng):
    pos, a1, a2 = _array(rng, 8)
    freqs = 1.2e8 + 1e6 * np.arange(4)
    nside = 16
    times = 2459000.5 + np.linspace(0, 0.02, 4)
    # pixels within 40 deg of the zenith at the first time
    enu_all = healpix_directions(nside, times[:1], "HERA")
    pixels = np.flatnonzero(enu_all[0, 2] > np.cos(np.deg2rad(40)))

    def gauss_beam(enu):
        za = np.arccos(np.clip(enu[:, 2], -1, 1))             # (Nt, Npix)
        return np.repeat(np.exp(-0.5 * (za / 0.4) ** 2)[None, :, :, None], freqs.size, -1)

    im = DirtyImager.healpix(nside, times, "HERA", pos, freqs, a1, a2, gauss_beam,
                             pixels=pixels)
    enu = healpix_directions(nside, times, "HERA", pixels=pixels)
    p0 = int(np.argmax(enu[0, 2]))                          # source near zenith
    za0 = np.arccos(enu[:, 2, p0])
    A0 = np.repeat(np.exp(-0.5 * (za0 / 0.4) ** 2)[:, None], freqs.size, 1)
    flux = 37.0
    vis = _point_source_vis(enu[:, :, p0], flux, pos, freqs, a1[:-1], a2[:-1], A0)
    vis = np.concatenate([vis, 0.5 * flux * A0[:, :, None] ** 2], axis=2)  # the auto
    aw = im.dirty_map(vis, "aw")
    # at its position: within the main lobe (|A|^2 > 1/2; "aw" divides sidelobes by
    # |A|^4, which blows them up towards the beam edge) and on the whole "weights" map
    lobe = np.exp(-(np.arccos(enu[0, 2]) / 0.4) ** 2) > 0.5
    assert lobe.sum() > 20
    assert np.all(np.flatnonzero(lobe)[np.argmax(aw[lobe], axis=0)] == p0)
    assert np.all(np.argmax(im.dirty_map(vis, "weights"), axis=0) == p0)
    assert np.allclose(aw[p0], flux, rtol=1e-10)            # with its flux (within 1%)
    # "weights": peak S times the weighted mean of |A|^4 at the source
    wts = im.dirty_map(vis, "weights")
    assert np.allclose(wts[p0], flux * np.mean(A0 ** 4, axis=0), rtol=1e-10)
    # "apparent": S times the weighted mean of |A|^4 over that of |A|^2
    app = im.dirty_map(vis, "apparent")
    assert np.allclose(app[p0], flux * np.mean(A0 ** 4, 0) / np.mean(A0 ** 2, 0),
                       rtol=1e-10)
    mfs = im.dirty_map(vis, "aw", mfs=True)
    assert mfs.shape == (pixels.size,) and np.isclose(mfs[p0], flux, rtol=1e-10)


def test_lm_point_source_and_psf(rng, tmp_path):
    pos, a1, a2 = _array(rng, 8)
    freqs = np.array([1.5e8, 1.6e8])
    npix, extent = 41, 0.5
    im = DirtyImager.lm(npix, extent, pos, freqs, a1[:-1], a2[:-1])   # A = 1, no auto
    l, m = lm_grid(npix, extent)
    p0 = 30 * npix + 12                                     # an off-centre pixel
    s = np.array([l[p0], m[p0], np.sqrt(1 - l[p0] ** 2 - m[p0] ** 2)])
    vis = _point_source_vis(s[None], 5.0, pos, freqs, a1[:-1], a2[:-1], np.ones((1, 2)))
    aw = im.dirty_map(vis, "aw")
    assert np.all(np.argmax(aw, axis=0) == p0)
    assert np.allclose(aw[p0], 5.0, rtol=1e-10)
    assert np.allclose(im.dirty_map(vis, "weights")[p0], 5.0, rtol=1e-10)  # A = 1
    psf = im.psf()                                          # V = 1/2: unit source at zenith
    centre = (npix // 2) * npix + npix // 2
    assert np.allclose(psf[centre], 1.0) and np.all(psf <= 1.0 + 1e-12)
    img = im.image(aw)
    assert img.shape == (2, npix, npix) and img[0, 30, 12] == aw[p0, 0]
    out = plot_lm_image(img[0], tmp_path / "lm.png", extent=extent, title="point source")
    assert out.exists() and out.stat().st_size > 1000


def test_lm_directions_track_the_sky():
    # a phase centre moving by a rotation about the pole: every pixel moves with it
    lat = HERA_LAT
    s0 = np.array([0.2, -0.1, 0.97])
    s0 /= np.linalg.norm(s0)
    angles = np.array([0.0, 0.05, 0.2])
    R = pole_rotation_matrix(lat, angles)                   # (3, 3, 3)
    centre = np.einsum("tij,j->ti", R, s0)
    l, m = np.array([0.0, 0.1, -0.05, 0.9]), np.array([0.0, 0.02, 0.15, 0.9])
    enu = lm_directions(l, m, centre=centre, latitude=lat)
    assert np.allclose(enu[:, :, 0], centre)
    moved = np.einsum("tij,jp->tip", R, enu[0])
    assert np.allclose(enu[:, :, :3], moved[:, :, :3], atol=1e-12)
    assert np.allclose(enu[:, :, 3], [0, 0, -1])            # outside the unit circle
    zen = lm_directions(l[:3], m[:3], 2)
    assert np.allclose(zen[1, :, 1], [0.1, 0.02, np.sqrt(1 - 0.01 - 0.0004)])
    pole_side = np.array([0.0, np.cos(lat), np.sin(lat)])
    east = lm_directions([0.1], [0.0], centre=[0, 0, 1], latitude=lat)[0, :, 0]
    assert east[0] > 0 and abs(east[1]) < 1e-12            # l is east at zenith
    assert np.dot(np.cross(pole_side, [0, 0, 1]), [1, 0, 0]) > 0


def test_healpix_plot(tmp_path, rng):
    nside = 8
    v = rng.standard_normal(hp.nside2npix(nside))
    out = plot_healpix_map(v, tmp_path / "moll.png", title="noise")
    assert out.exists() and out.stat().st_size > 1000
    pix = np.arange(100)
    out = plot_healpix_map(v[:100], tmp_path / "cart.png", nside=nside, pixels=pix,
                           projection="cartesian", lonra=(-60, 60), latra=(-30, 60))
    assert out.exists()


def test_bad_input(rng):
    pos, a1, a2 = _array(rng, 4)
    im = DirtyImager(lm_directions(*lm_grid(5, 0.2)), pos, np.array([1e8]), a1, a2)
    vis = np.zeros((1, 1, a1.size), complex)
    with pytest.raises(InputError, match="normalization"):
        im.dirty_map(vis, "natural")
    with pytest.raises(InputError, match="pixel"):
        im.psf(25)
    with pytest.raises(ShapeError, match="weights"):
        DirtyImager(lm_directions(*lm_grid(5, 0.2)), pos, np.array([1e8]), a1, a2,
                    weights=np.ones((2, 1, a1.size)))
    with pytest.raises(InputError, match="extent"):
        lm_grid(5, 3.0)
    with pytest.raises(InputError, match="latitude"):
        lm_directions([0.0], [0.0], centre=[0, 0, 1])
    with pytest.raises(InputError, match="nside"):
        healpix_directions(0, JD, "HERA")
    with pytest.raises(InputError, match="0 at some"):
        DirtyImager(lm_directions([0.0, 1.5], [0.0, 0.0]), pos, np.array([1e8]), a1,
                    a2).operator("aw")
