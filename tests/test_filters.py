"""Tests of the tapers, the delay transform, the delay filter and the delay power spectrum."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal.windows as sw

from linlim.errors import InputError
from linlim.filters import (
    DelayFilter,
    DelayTransform,
    beam_omega_pp,
    delay_power_spectrum,
    delay_to_kpar,
    delays,
    jy2hz2_to_mk2mpc3,
    split_even_odd,
    taper,
)
from linlim.plotting.spectra import plot_delay_spectrum, plot_power_comparison, plot_waterfall
from linlim.sky.signal import cosmo_scalars

NF, DNU = 128, 1e5
FREQS = 1.4e8 + DNU * np.arange(NF)
SHAPE = (6, NF, 3)


@pytest.mark.parametrize("kind,ref", [
    ("blackman-harris", sw.blackmanharris(NF, sym=True)),
    ("hann", sw.hann(NF, sym=True)),
    ("tukey", sw.tukey(NF, 0.3, sym=True)),
    ("none", np.ones(NF)),
])
def test_tapers_match_scipy(kind, ref):
    w = taper(NF, kind, alpha=0.3, norm="peak")
    np.testing.assert_allclose(w, ref / ref.max(), atol=1e-14)
    np.testing.assert_allclose(np.mean(taper(NF, kind, alpha=0.3) ** 2), 1.0, rtol=1e-14)


def test_delay_transform_matches_numpy_fft(rng):
    D = DelayTransform(SHAPE, FREQS, taper="hann")
    x = rng.standard_normal(SHAPE) + 1j * rng.standard_normal(SHAPE)
    w = taper(NF, "hann")[None, :, None]
    ref = np.fft.fftshift(np.fft.fft(DNU * w * x, axis=1), axes=1)
    np.testing.assert_allclose(D(x), ref, atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(D.delays, np.fft.fftshift(np.fft.fftfreq(NF, DNU)))
    # a sinusoid at a DFT delay peaks there, with amplitude dnu * sum(w)
    j = 80
    s = np.exp(2j * np.pi * delays(FREQS)[j] * DNU * np.arange(NF))
    y = D(np.broadcast_to(s[None, :, None], SHAPE).copy())
    assert np.argmax(np.abs(y[0, :, 0])) == j
    assert abs(y[0, j, 0]) == pytest.approx(DNU * taper(NF, "hann").sum(), rel=1e-12)


def _foreground(rng, max_delay=100e-9, nsrc=60):
    tau = rng.uniform(-max_delay, max_delay, nsrc)
    amp = rng.uniform(1, 50, nsrc)
    alpha = rng.uniform(-3.0, -0.5, nsrc)
    v = (amp[:, None] * (FREQS / 1.5e8) ** alpha[:, None]
         * np.exp(-2j * np.pi * tau[:, None] * FREQS)).sum(0)
    return np.broadcast_to(v[None, :, None], SHAPE).copy()


def test_delay_filter_suppresses_foreground_and_passes_high_delays(rng):
    tau_cut = 150e-9
    fg = _foreground(rng)
    P = DelayFilter(SHAPE, FREQS, tau_cut)
    D = DelayTransform(SHAPE, FREQS, taper="none")
    hi = np.abs(D.delays) > tau_cut
    p_in = (np.abs(D(fg)) ** 2)[:, hi].sum()
    p_out = (np.abs(D(P(fg))) ** 2)[:, hi].sum()
    assert p_out / p_in < 1e-6, p_out / p_in  # measured 5e-13
    assert (np.abs(P(fg)) ** 2).sum() / (np.abs(fg) ** 2).sum() < 1e-10
    # a high-delay sinusoid loses only its overlap with the ~12 low-delay modes
    s = np.exp(2j * np.pi * 1.5e-6 * FREQS)
    x = np.broadcast_to(s[None, :, None], SHAPE).copy()
    loss = 1 - (np.abs(P(x)) ** 2).sum() / (np.abs(x) ** 2).sum()
    assert 0 <= loss < 0.03, loss  # measured 1.7% (12 DPSS modes of 128 channels)
    # P is a projection that leaves its output unchanged
    np.testing.assert_allclose(P(P(x)), P(x), atol=1e-9)


def test_delay_filter_with_flags(rng):
    tau_cut = 150e-9
    fg = _foreground(rng)
    w = (rng.random(SHAPE) > 0.1) * rng.uniform(0.5, 2.0, SHAPE)
    P = DelayFilter(SHAPE, FREQS, tau_cut, weights=w)
    r = P(fg + 1e3 * (w == 0))  # wild values at flagged samples do not leak
    assert (w * np.abs(r) ** 2).sum() / (w * np.abs(fg) ** 2).sum() < 1e-8
    # not self-adjoint, but W-self-adjoint: W P = P^H W
    x = rng.standard_normal(SHAPE) + 1j * rng.standard_normal(SHAPE)
    assert np.abs(P(x) - P.H(x)).max() > 1e-3
    np.testing.assert_allclose(w * P(x), P.H(w * x), atol=1e-10)
    Pf = DelayFilter(SHAPE, FREQS, tau_cut, weights=w, modes="fourier")
    np.testing.assert_allclose(Pf(Pf(x)), Pf(x), atol=1e-8)


def _noise(rng, shape, sigma):
    return sigma * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def test_cross_power_unbiased_and_errors_match_scatter(rng):
    sigma, nreal = 2.0, 300
    shape = (4, 64, 3)
    f = FREQS[:64]
    est = []
    for _ in range(nreal):
        v = _noise(rng, (8,) + shape[1:], sigma)
        v1, v2 = split_even_odd(v, axis=0)
        ps = delay_power_spectrum(v1, v2, f, sigma1=sigma)
        est.append(ps.power)
    est = np.array(est)
    err = ps.error
    # unbiased: the mean over realisations is zero within its error
    z = est.mean(0) / (err / np.sqrt(nreal))
    assert np.abs(z).max() < 4.5 and np.mean(z**2) < 2.0
    # auto power would be biased by dnu^2 sigma^2 sum w^2
    auto = delay_power_spectrum(v1, v1, f).power
    assert auto.mean() == pytest.approx((DNU * sigma) ** 2 * 64, rel=0.3)
    # analytic error bars match the scatter (to the precision of 300 realisations)
    ratio = est.std(0) / err
    assert 0.9 < ratio.mean() < 1.1, ratio.mean()
    assert np.all(np.abs(ratio - 1) < 0.3)


def test_cross_power_recovers_signal(rng):
    tau0, amp = 2e-6, 3.0
    sig = amp * np.exp(2j * np.pi * tau0 * FREQS)
    s = np.broadcast_to(sig[None, :, None], SHAPE)
    ps = delay_power_spectrum(s + _noise(rng, SHAPE, 1.0), s + _noise(rng, SHAPE, 1.0),
                              FREQS, sigma1=1.0, taper="blackman-harris")
    ref = np.abs(DelayTransform(SHAPE, FREQS)(s.copy())[0, :, 0]) ** 2
    j = np.argmax(ref)
    assert abs(ps.power[j] - ref[j]) < 5 * ps.error[j] + 0.05 * ref[j]
    assert ps.bandwidth == pytest.approx(NF * DNU)


def test_cosmological_conversion_against_astropy():
    """Parsons et al. (2012, 2014): P = |V~|^2 (lambda^2 / 2 k_B)^2 X^2 Y / (Omega_pp B),
    written here with astropy units and constants only, for a visibility of I |A|^2; one
    linear feed (linlim's XX = 0.5 I |A|^2) carries half that amplitude, a quarter of the
    power."""
    import astropy.constants as ac
    import astropy.units as u
    from astropy.cosmology import Planck18

    X, Y = cosmo_scalars(FREQS)
    k = delay_to_kpar(np.array([1e-6]), FREQS)
    assert k[0] == pytest.approx(2 * np.pi * 1e-6 / Y)
    nu = 0.5 * (FREQS[0] + FREQS[-1]) * u.Hz
    z = 1420.405751768 * u.MHz / nu - 1
    Xa = Planck18.comoving_transverse_distance(z) / u.rad
    Ya = ac.c * (1 + z) ** 2 / (Planck18.H(z) * 1420.405751768 * u.MHz)
    lam = (ac.c / nu).to(u.m)
    omega, band = 0.05 * u.sr, NF * DNU * u.Hz
    k_per_jy_sr = lam**2 / (2 * ac.k_B) * u.sr  # K per (Jy / sr)
    ref = (1 * u.Jy * u.Hz) ** 2 * k_per_jy_sr**2 * Xa**2 * Ya / (omega * band)
    ref = ref.to_value(u.mK**2 * u.Mpc**3, equivalencies=u.dimensionless_angles())
    # the same mK per Jy/sr from astropy's Rayleigh-Jeans equivalency
    rj = (1 * u.Jy / u.sr).to(u.mK, u.brightness_temperature(nu))
    assert (k_per_jy_sr * u.Jy / u.sr).to_value(u.mK) == pytest.approx(rj.value, rel=1e-10)
    stokes = jy2hz2_to_mk2mpc3(1.0, FREQS, 0.05, polarization="stokes_i")
    assert stokes == pytest.approx(ref, rel=1e-6)
    assert jy2hz2_to_mk2mpc3(1.0, FREQS, 0.05) == pytest.approx(4 * ref, rel=1e-6)
    with pytest.raises(InputError, match="polarization"):
        jy2hz2_to_mk2mpc3(1.0, FREQS, 0.05, polarization="I")


def _omega_pp_gaussian(sigma):
    """int A^4 dOmega over the hemisphere for A = exp(-za^2 / (2 sigma^2)) (quadrature)."""
    from scipy.integrate import quad

    val, _ = quad(lambda t: np.exp(-2 * t**2 / sigma**2) * 2 * np.pi * np.sin(t), 0,
                  np.pi / 2, epsabs=0, epsrel=1e-12, points=[sigma])
    return val


def test_white_field_power_recovered_end_to_end(rng):
    """A white 21 cm field of known power, through linlim's Gaussian beam and RIME (XX),
    delay-transformed and converted, comes back at its true power to 2%.

    The field is cell-averaged white noise on HEALPix pixels x channels: each voxel has
    volume ``D_M(z)^2 Omega_pix |dr/dnu| dnu`` (astropy, per channel), so its temperature
    variance is ``P / V_vox``. Nothing here uses linlim's cosmology or unit helpers."""
    import healpy as hp
    from astropy.cosmology import Planck18

    from linlim.beam.analytic import GaussianBeam
    from linlim.rime import RIMEIntensity

    c, kb, f21 = 299792458.0, 1.380649e-23, 1420.405751768e6
    nside, sigma, nf, dnu, nant, nreal = 64, 0.15, 64, 1e5, 24, 10
    freqs = 150e6 + dnu * np.arange(nf)
    pix = hp.query_disc(nside, [0.0, 0.0, 1.0], 5 * sigma)
    enu = np.stack(hp.pix2vec(nside, pix))[None]
    za, az = np.arccos(enu[0, 2]), np.arctan2(enu[0, 1], enu[0, 0])
    A = np.asarray(GaussianBeam(az, za, freqs, sigma=sigma).evaluate())  # (1, Ndir, Nf)
    pos = np.zeros((nant, 3))
    pos[:, :2] = rng.uniform(-100, 100, (nant, 2))
    a1, a2 = np.triu_indices(nant, 1)
    K = RIMEIntensity(enu, pos, freqs, a1, a2, beam=A[:, None])
    om = hp.nside2pixarea(nside)
    z = f21 / freqs - 1
    dm = Planck18.comoving_transverse_distance(z).to_value("Mpc")
    drdnu = c / 1e3 * (1 + z) ** 2 / (Planck18.H(z).to_value("km/(s Mpc)") * f21)
    p_true = 2.5e5  # mK^2 Mpc^3
    sig_t = np.sqrt(p_true / (dm**2 * om * drdnu * dnu)) * 1e-3  # K per voxel
    jy_per_k = 2 * kb * freqs**2 / c**2 * 1e26 * om  # Jy per pixel per K
    omega_pp = _omega_pp_gaussian(sigma)
    # the pixel sum of the beam and the quadrature agree (the beam is linlim's own)
    assert beam_omega_pp(A[0, :, nf // 2] ** 2, om) == pytest.approx(omega_pp, rel=5e-3)
    ratios = []
    for _ in range(nreal):
        T = rng.standard_normal((pix.size, nf)) * sig_t
        V = K.matvec(T * jy_per_k)
        ps = delay_power_spectrum(V, V, freqs, average_axes=(0, 2))
        ratios.append(np.mean(jy2hz2_to_mk2mpc3(ps.power, freqs, omega_pp)) / p_true)
    ratio, err = np.mean(ratios), np.std(ratios, ddof=1) / np.sqrt(nreal)
    assert err < 0.007
    assert abs(ratio - 1) < 0.02, (ratio, err)
    # the old convention (a visibility of I |A|^2) is off by exactly the feed's 1/4
    old = np.mean(jy2hz2_to_mk2mpc3(ps.power, freqs, omega_pp, polarization="stokes_i"))
    assert old / p_true == pytest.approx(ratios[-1] / 4, rel=1e-12)


def test_plots_written(tmp_path, rng):
    v = _foreground(rng)[:, :, 0] + _noise(rng, SHAPE[:2], 1.0)
    times = 2459000.0 + np.arange(SHAPE[0]) / 1440
    p1 = plot_waterfall(v, FREQS, times, tmp_path / "w.png", title="bl 0")
    ps = delay_power_spectrum(v[None], v[None], FREQS, sigma1=1.0, average_axes=(0, 1),
                              axis=2)
    p2 = plot_delay_spectrum(ps.delays, np.stack([ps.power, 0.5 * ps.power]),
                             np.stack([ps.error, ps.error]), tmp_path / "d.png",
                             reference=ps.power, labels=["a", "b"], tau_cut=150e-9)
    k = np.geomspace(0.05, 1, 8)
    p3 = plot_power_comparison(k, 1 / k + 0.1, 0.1 / k, 1 / k, tmp_path / "sub" / "p.pdf",
                               labels=["res"])
    for p in (p1, p2, p3):
        assert p.exists() and p.stat().st_size > 1000
