"""Gallery of the toolbox parts: one small, seeded simulation and one PNG per part.

Run with ``python examples/toolbox_gallery.py [OUTDIR]`` (default the repository's
``docs/gallery/``). Every number in the plots comes from linlim's own operators; each part
takes a few seconds on a laptop CPU and the whole script well under a minute.

* ``imaging_dirty_map.png`` -- :mod:`linlim.imaging`: dirty maps of four point sources
  seen through a Gaussian primary beam, with the ``"weights"`` normalisation (sources
  attenuated by the beam squared) and the ``"aw"`` normalisation (each source at its true
  flux).
* ``gp_wiener_filter.png`` -- :mod:`linlim.gp`: one baseline's spectrum (smooth foreground
  + noise + a faint high-delay signal), its Wiener foreground estimate and the residual, in
  frequency and in delay.
* ``coupling_delay_signature.png`` -- :mod:`linlim.calibration.coupling`: delay spectra of
  coupled minus uncoupled visibilities peaking at ``|x_i - x_j| / c``, before and after a
  Gauss-Newton fit of the per-pair coupling.
* ``redcal_gains.png`` -- :mod:`linlim.calibration.redundant`: redundant calibration of a
  19-antenna hexagon, recovered vs true gains after degeneracy fixing.
* ``stripe_modes.png`` -- :mod:`linlim.sky.stripe`: stripe harmonics of non-integer degree
  on a declination band, and spherical Fourier-Bessel radial modes vs comoving distance.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 100
C_LIGHT = 299792458.0


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    fig.savefig(path, dpi=DPI)
    return path


# --------------------------------------------------------------------------- 1. imaging
def imaging_dirty_map(outdir: pathlib.Path) -> pathlib.Path:
    """Dirty maps of point sources through a Gaussian beam, ``"weights"`` vs ``"aw"``."""
    from linlim.imaging import DirtyImager
    from linlim.telescope import hex_array

    lay = hex_array(4, jitter=3.0, rng=3)                     # HERA-37, jittered by 3 m
    antpos = lay.antpos
    a1, a2 = np.triu_indices(lay.nants, 1)
    freqs = np.linspace(100e6, 200e6, 16)
    npix, extent = 81, 0.5

    def beam(enu: np.ndarray) -> np.ndarray:
        """Gaussian in sin(zenith angle), width ~ 1/nu: (1, Ntimes, Npix, Nfreq)."""
        s2 = enu[:, 0] ** 2 + enu[:, 1] ** 2                  # l^2 + m^2, (Nt, Npix)
        width = 0.3 * (150e6 / freqs)
        return np.exp(-0.5 * s2[None, :, :, None] / width ** 2)

    im = DirtyImager.lm(npix, extent, antpos, freqs, a1, a2, beam=beam)
    # four flat-spectrum sources on pixel centres (row = m index, column = l index)
    rows, cols = np.array([40, 55, 22, 62]), np.array([40, 24, 58, 60])
    flux = np.array([10.0, 8.0, 6.0, 5.0])
    pix = rows * npix + cols
    sky = np.zeros((im.npix, freqs.size))
    sky[pix] = flux[:, None]
    vis = im.K.matvec(sky)                                    # the RIME, (Nt, Nf, Nbl)
    maps = {k: im.image(im.dirty_map(vis, k, mfs=True)[:, None])[0]
            for k in ("weights", "aw")}

    fig = Figure(figsize=(9.6, 4.4))
    axes = fig.subplots(1, 2)
    half = extent / 2
    box = (-half, half, -half, half)
    for ax, (kind, img) in zip(axes, maps.items()):
        h = ax.imshow(img, origin="lower", extent=box, cmap="magma", vmin=-1.5, vmax=10.5,
                      interpolation="nearest")
        ax.scatter(im.l[pix], im.m[pix], s=160, facecolors="none", edgecolors="cyan",
                   linewidths=1.0)
        for p, s in zip(pix, flux):
            got = img.ravel()[p]
            ax.annotate(f"{s:g} Jy -> {got:.2f}", (im.l[p], im.m[p]), xytext=(7, 7),
                        textcoords="offset points", color="cyan", fontsize=8)
        ax.set_xlabel("l (east)")
        ax.set_ylabel("m (north)")
        ax.set_title(f'normalization="{kind}"', fontsize=10)
        fig.colorbar(h, ax=ax, label="Jy", shrink=0.85)
    fig.suptitle("Dirty maps (MFS over 100-200 MHz, jittered HERA-37) of 4 sources through a "
                 "Gaussian beam\ncircles: true positions; labels: true -> mapped flux (the "
                 "small differences in \"aw\" are the other sources' sidelobes)", fontsize=9.5)
    fig.tight_layout()
    return _save(fig, outdir / "imaging_dirty_map.png")


# --------------------------------------------------------------------------- 2. GP filter
def gp_wiener_filter(outdir: pathlib.Path) -> pathlib.Path:
    """One baseline: foreground + noise + high-delay signal, Wiener estimate and residual."""
    from linlim.filters import DelayTransform
    from linlim.gp import FrequencyKernel, WienerFilter, draw_gp

    rng = np.random.default_rng(11)
    freqs = 1.2e8 + 1.25e5 * np.arange(160)                   # 120-140 MHz, 125 kHz
    nf = freqs.size
    sigma = 1.0                                               # Jy per complex sample
    kern = FrequencyKernel("gauss-sinc", tau=250e-9, variance=1e4, tau_gauss=40e-9)
    fg = draw_gp(kern.covariance(freqs), (1, nf, 1), rng)
    noise = draw_gp(sigma ** 2 * np.eye(nf), (1, nf, 1), rng)
    tau_sig = 1.5e-6
    sig = 0.6 * np.exp(2j * np.pi * tau_sig * (freqs - freqs[0]))[None, :, None]
    data = fg + noise + sig
    shape = data.shape
    wf = WienerFilter(shape, freqs, kern, noise_variance=np.full(nf, sigma ** 2))
    rf = WienerFilter(shape, freqs, kern, noise_variance=np.full(nf, sigma ** 2),
                      residual=True)
    fg_hat, res = wf.matvec(data), rf.matvec(data)

    dt = DelayTransform(shape, freqs)
    tau_us = dt.delays * 1e6
    noise_level = dt.dnu * sigma * np.sqrt((dt.window ** 2).sum())

    def dspec(x: np.ndarray) -> np.ndarray:
        return np.abs(dt(x))[0, :, 0]

    fig = Figure(figsize=(9.0, 7.2))
    ax1, ax2, ax3 = fig.subplots(3, 1, height_ratios=[1.2, 0.8, 1.4])
    f_mhz = freqs / 1e6
    ax1.plot(f_mhz, data[0, :, 0].real, color="0.75", lw=3.0,
             label="data x (fg + noise + signal)")
    ax1.plot(f_mhz, fg[0, :, 0].real, color="k", lw=1.0, label="true foreground")
    ax1.plot(f_mhz, fg_hat[0, :, 0].real, color="C0", lw=1.0, ls="--",
             label="Wiener estimate W x")
    ax1.set_ylabel("Re V (Jy)")
    lo, hi = data.real.min(), data.real.max()
    ax1.set_ylim(lo - 0.05 * (hi - lo), hi + 0.4 * (hi - lo))
    ax1.legend(fontsize=8, ncol=3, loc="upper center")
    ax1.set_title('One baseline: kernel "gauss-sinc" (tau = 250 ns), noise 1 Jy per channel, '
                  "signal 0.6 Jy at 1.5 us", fontsize=10)
    ax2.plot(f_mhz, (noise + sig)[0, :, 0].real, color="0.75", lw=2.5,
             label="true noise + signal")
    ax2.plot(f_mhz, res[0, :, 0].real, color="C3", lw=0.9, label="residual R x = x - W x")
    ax2.set_xlabel("frequency (MHz)")
    ax2.set_ylabel("Re V (Jy)")
    lim = np.abs(res.real).max()
    ax2.set_ylim(-1.2 * lim, 2.2 * lim)
    ax2.legend(fontsize=8, ncol=2, loc="upper right")

    ax3.semilogy(tau_us, dspec(data), color="0.75", lw=3.0, label="data")
    ax3.semilogy(tau_us, dspec(fg_hat), color="C0", lw=1.2, label="Wiener estimate")
    ax3.semilogy(tau_us, dspec(res), color="C3", lw=0.9, label="residual")
    ax3.semilogy(tau_us, dspec(sig), color="C2", lw=1.2, ls="--", label="injected signal")
    ax3.axhline(noise_level, color="k", lw=0.8, ls=":", label="noise level")
    ax3.axvspan(-kern.tau * 1e6, kern.tau * 1e6, color="C0", alpha=0.12,
                label="kernel support |tau| < 250 ns")
    ax3.set_xlim(tau_us.min(), tau_us.max())
    ax3.set_ylim(noise_level * 1e-2, dspec(data).max() * 300)
    ax3.set_xlabel("delay (us)")
    ax3.set_ylabel("|delay transform| (Jy Hz)")
    ax3.legend(fontsize=8, ncol=3, loc="upper left")
    fig.tight_layout()
    return _save(fig, outdir / "gp_wiener_filter.png")


# --------------------------------------------------------------------------- 3. coupling
def coupling_delay_signature(outdir: pathlib.Path) -> pathlib.Path:
    """Delay spectra of coupled - uncoupled visibilities, before and after a fit of E."""
    from linlim.calibration.coupling import (
        CouplingPowerLaw,
        MutualCoupling,
        coupling_pair_model,
        pair_separations,
    )
    from linlim.filters import DelayTransform
    from linlim.inference.gauss_newton import gauss_newton
    from linlim.likelihood import GaussianLikelihood, LogPosterior
    from linlim.operators import Select
    from linlim.params import ParamBlock, Params
    from linlim.telescope import hex_array

    rng = np.random.default_rng(7)
    lay = hex_array(2)                                        # 7 antennas, 14.6 m
    pos, n = lay.antpos, lay.nants
    freqs = np.linspace(100e6, 200e6, 128)
    a1, a2 = np.triu_indices(n)                               # with autos
    nt = 2
    s_hat = rng.uniform(-0.3, 0.3, (5, 2))
    s_hat = np.column_stack([s_hat, np.sqrt(1 - (s_hat ** 2).sum(1))])
    flux = rng.uniform(1, 5, 5)
    b = pos[a2] - pos[a1]
    V = np.einsum("s,fbs->fb", flux, np.exp(2j * np.pi * freqs[:, None, None]
                                             * (b @ s_hat.T)[None] / C_LIGHT))
    V = np.broadcast_to(V, (nt,) + V.shape).copy()
    V[..., a1 == a2] += 200.0                                 # bright smooth autos
    E_true = CouplingPowerLaw(pos, freqs, phase=np.exp(0.6j))(np.array([3e-3, 1.0]))
    Vc = MutualCoupling(a1, a2, n, nt, freqs.size, coupling=E_true)(V)
    sigma = 0.05
    data = Vc + sigma / np.sqrt(2) * (rng.standard_normal(V.shape)
                                      + 1j * rng.standard_normal(V.shape))

    pm = coupling_pair_model(pos, freqs)
    mc = MutualCoupling(a1, a2, n, nt, freqs.size, vis=V)
    params = Params([ParamBlock("coupling", pm.in_shape, "complex128")])
    model = mc @ pm @ Select(params.out_shape, params.out_dtype, 0) @ params
    post = LogPosterior(GaussianLikelihood(model, data, sigma=sigma), params=params)
    fit = model(gauss_newton(post, np.zeros(params.size), maxiter=20).x)

    dt = DelayTransform(V.shape, freqs)
    tau_ns = dt.delays * 1e9
    noise_level = dt.dnu * sigma * np.sqrt((dt.window ** 2).sum())
    before = np.abs(dt(data - V)).mean(axis=0)
    after = np.abs(dt(data - fit)).mean(axis=0)
    d = pair_separations(pos)[a1, a2]
    picks = []
    for length in np.unique(np.round(d[a1 != a2], 1))[:3]:   # 14.6, 25.3, 29.2 m
        picks.append(int(np.flatnonzero((a1 != a2) & (np.round(d, 1) == length))[0]))

    fig = Figure(figsize=(9.6, 6.4))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, spec, label in ((axes[0], before, "data - uncoupled model (before the fit)"),
                            (axes[1], after, "data - fitted coupled model (after the fit)")):
        for c, bl in enumerate(picks):
            col = f"C{c}"
            ax.semilogy(tau_ns, spec[:, bl], color=col, lw=1.1,
                        label=f"({a1[bl]}, {a2[bl]}): |x_i - x_j| = {d[bl]:.1f} m")
            for sgn in (-1, 1):
                ax.axvline(sgn * d[bl] / C_LIGHT * 1e9, color=col, lw=0.8, ls="--")
        ax.axhline(noise_level, color="k", lw=0.8, ls=":", label="noise level")
        ax.set_ylabel("|delay transform| (Jy Hz)")
        ax.set_title(label, fontsize=10)
        ax.set_ylim(noise_level * 0.1, before[:, picks].max() * 3)
    axes[0].legend(fontsize=8, loc="upper right", title="baseline (dashed: +-|x_i - x_j|/c)",
                   title_fontsize=8)
    axes[1].set_xlim(-300, 300)
    axes[1].set_xlabel("delay (ns)")
    fig.suptitle("Mutual coupling on a 7-antenna hexagon (power law a = 3e-3, p = 1; "
                 "200 Jy autos)", fontsize=10)
    fig.tight_layout()
    return _save(fig, outdir / "coupling_delay_signature.png")


# --------------------------------------------------------------------------- 4. redcal
def redcal_gains(outdir: pathlib.Path) -> pathlib.Path:
    """19-antenna hexagon: true gains vs redcal's solution before and after the gauge fix."""
    from linlim.calibration.redundant import drop_small_groups, redcal, redcal_problem
    from linlim.telescope import hex_array
    from linlim.telescope.baselines import redundant_groups

    rng = np.random.default_rng(20250514)
    nt, nf, sigma = 1, 1, 0.02
    lay = hex_array(3)
    red = drop_small_groups(redundant_groups(lay, autos=False))
    n, ng = lay.nants, red.ngroups
    gt = ((1 + 0.1 * rng.standard_normal((n, nt, nf)))
          * np.exp(0.3j * rng.standard_normal((n, nt, nf))))
    ut = rng.uniform(0.5, 1.5, (nt, nf, ng)) * np.exp(2j * np.pi * rng.uniform(size=(nt, nf, ng)))
    prob = redcal_problem(np.zeros((nt, nf, red.pairs.shape[0]), complex), red, lay,
                          noise=sigma)
    vt = prob.model(prob.pack(gt, ut))
    data = vt + sigma / np.sqrt(2) * (rng.standard_normal(vt.shape)
                                      + 1j * rng.standard_normal(vt.shape))
    sol = redcal(data, red, lay, noise=sigma, reference=gt)
    g_raw = sol.problem.unpack(sol.result.x)[0][:, 0, 0]       # before the gauge move
    g, err, g_true = sol.gains[:, 0, 0], sol.gain_errors[:, 0, 0], gt[:, 0, 0]

    ant = np.arange(n)
    fig = Figure(figsize=(9.6, 5.6))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(ant, np.abs(g_raw), "s", color="0.7", ms=5, label="Gauss-Newton (raw gauge)")
    ax1.plot(ant, np.abs(g_true), "x", color="k", ms=8, label="true")
    ax1.errorbar(ant, np.abs(g), yerr=err, fmt="o", color="C0", ms=4, capsize=2,
                 label="after fix_degeneracies (+- Fisher error)")
    ax1.set_ylabel("|g|")
    ax1.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, 1.32))
    ax2.plot(ant, np.degrees(np.angle(g_raw)), "s", color="0.7", ms=5)
    ax2.plot(ant, np.degrees(np.angle(g_true)), "x", color="k", ms=8)
    ax2.errorbar(ant, np.degrees(np.angle(g)), yerr=np.degrees(err / np.abs(g)), fmt="o",
                 color="C0", ms=4, capsize=2)
    ax2.set_ylabel("arg g (deg)")
    ax2.set_xlabel("antenna")
    ax2.set_xticks(ant)
    deg = sol.degeneracies
    grad = np.degrees(deg["gradient"][:2, 0, 0]) * 100
    fig.suptitle(f"redcal on a 19-antenna hexagon ({red.pairs.shape[0]} baselines, {ng} "
                 f"groups, noise {sigma} Jy)\ndegeneracies removed: amplitude "
                 f"{deg['amplitude'][0, 0]:+.3f}, phase "
                 f"{np.degrees(deg['phase'][0, 0]):+.1f} deg, gradient "
                 f"({grad[0]:+.1f}, {grad[1]:+.1f}) deg/100 m; max |g - g_true| = "
                 f"{np.abs(g - g_true).max():.4f} (median Fisher error {np.median(err):.4f})",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, outdir / "redcal_gains.png")


# --------------------------------------------------------------------------- 5. stripe
def stripe_modes(outdir: pathlib.Path) -> pathlib.Path:
    """Stripe harmonics on a declination band and Fourier-Bessel radial modes."""
    from linlim.sky.signal import comoving_distance
    from linlim.sky.stripe import (
        fourier_bessel_k,
        fourier_bessel_radial,
        stripe_harmonics,
        stripe_theta_range,
    )

    lat, hw = np.radians(-30.7), np.radians(10.0)
    a, b = stripe_theta_range(lat - hw, lat + hw)
    nra, ndec = 360, 60
    ra = (np.arange(nra) + 0.5) * (2 * np.pi / nra)
    theta = a + (np.arange(ndec) + 0.5) * ((b - a) / ndec)
    th, ph = np.meshgrid(theta, ra, indexing="ij")
    Y, lm = stripe_harmonics(th.ravel(), ph.ravel(), a, b, lmax=24, mmax=6)
    wanted = [(0, 0), (0, 1), (3, 0), (6, 0)]                 # (m, index among that m)
    cols = []
    for m, k in wanted:
        idx = np.flatnonzero(lm[:, 1] == m)
        cols.append(int(idx[k]))

    freqs = np.linspace(120e6, 160e6, 200)
    r = comoving_distance(freqs)
    r_min, r_max = float(r.min()), float(r.max())
    nu0 = float(lm[cols[0], 0])
    ks = fourier_bessel_k(nu0, r_min, r_max, 4)

    fig = Figure(figsize=(9.2, 7.4), layout="constrained")
    gs = fig.add_gridspec(len(cols) + 1, 1, height_ratios=[1] * len(cols) + [1.6])
    dec_deg = 90 - np.degrees(theta)
    box = (360, 0, dec_deg[-1], dec_deg[0])                   # RA increasing to the left
    for i, c in enumerate(cols):
        ax = fig.add_subplot(gs[i])
        img = Y[:, c].reshape(ndec, nra)
        vmax = np.abs(img).max()
        h = ax.imshow(img[::-1], origin="lower", extent=box, aspect="auto", cmap="RdBu_r",
                      vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_ylabel("Dec (deg)")
        ax.text(0.01, 0.85, f"nu = {lm[c, 0]:.3f}, m = {int(lm[c, 1])}",
                transform=ax.transAxes, fontsize=9,
                bbox=dict(facecolor="white", alpha=0.8, lw=0))
        fig.colorbar(h, ax=ax, pad=0.01, fraction=0.03)
        if i == 0:
            ax.set_title("Dirichlet stripe harmonics on Dec -40.7 to -20.7 deg (real, "
                         "orthonormal on the stripe)", fontsize=10)
        if i == len(cols) - 1:
            ax.set_xlabel("RA (deg)")
        else:
            ax.set_xticklabels([])
    ax = fig.add_subplot(gs[-1])
    rr = np.linspace(r_min, r_max, 400)
    for n, k in enumerate(ks):
        ax.plot(rr, fourier_bessel_radial(nu0, k, rr, r_min, r_max) * 1e6, lw=1.3,
                label=f"n = {n}, k = {k:.3f} / Mpc")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("comoving distance r (Mpc), 21 cm at 160 -> 120 MHz (Planck18)")
    ax.set_ylabel("g(r) (1e-6 Mpc^-3/2)")
    ax.set_title(f"Fourier-Bessel radial modes of degree nu = {nu0:.3f} (Dirichlet at "
                 f"r_min, r_max)", fontsize=10)
    top = ax.get_ylim()[1]
    ax.set_ylim(-1.7 * top, 1.15 * top)
    ax.legend(fontsize=8, ncol=4, loc="lower center")
    return _save(fig, outdir / "stripe_modes.png")


PARTS: dict[str, Callable[[pathlib.Path], pathlib.Path]] = {
    "imaging": imaging_dirty_map,
    "gp": gp_wiener_filter,
    "coupling": coupling_delay_signature,
    "redcal": redcal_gains,
    "stripe": stripe_modes,
}


def main(argv: list[str] | None = None) -> int:
    """Write the five gallery PNGs into ``outdir``; print each file and its time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = pathlib.Path(__file__).resolve().parents[1] / "docs" / "gallery"
    parser.add_argument("outdir", nargs="?", default=str(default),
                        help="output folder (created if missing; default the repository's "
                             "docs/gallery)")
    parser.add_argument("--only", nargs="*", choices=sorted(PARTS), default=None,
                        help="make only these parts")
    args = parser.parse_args(argv)
    outdir = pathlib.Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for name, make in PARTS.items():
        if args.only is not None and name not in args.only:
            continue
        t0 = time.perf_counter()
        path = make(outdir)
        print(f"{path}  ({path.stat().st_size / 1024:.0f} kB, "
              f"{time.perf_counter() - t0:.1f} s)")
    print(f"total {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
