"""Waterfalls, delay spectra and power-spectrum comparisons, saved to files (Agg backend).

Every function takes host or device arrays (moved to the host once), writes ``path``
(format from its suffix, e.g. ``.png``, ``.pdf``) and returns the path.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import ShapeError

__all__ = ["plot_waterfall", "plot_delay_spectrum", "plot_power_comparison"]


def _figure(nrows: int = 1, ncols: int = 1, figsize: Any = None,
            **subplot_kw: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: rendered by the Agg canvas

    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def _save(fig: Any, path: Any) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_waterfall(vis: Any, freqs: Any, times: Any, path: Any, title: str = "",
                   log_amplitude: bool = True, flags: Any = None) -> pathlib.Path:
    """Amplitude and phase of one baseline's visibilities over time and frequency.

    Parameters
    ----------
    vis : array, shape (Ntimes, Nfreq), complex, Jy
        One baseline (slice ``V[:, :, b]`` of the ``(Ntimes, Nfreq, Nbl)`` layout).
    freqs : array (Nfreq,), Hz
    times : array (Ntimes,), JD (or any time axis, plotted relative to the first)
    path : str or Path
    title : str
    log_amplitude : bool
        Plot ``log10 |V|`` instead of ``|V|``.
    flags : bool array (Ntimes, Nfreq), optional
        Masked (shown blank).

    Returns
    -------
    pathlib.Path
    """
    v = to_numpy(vis)
    f, t = np.asarray(to_numpy(freqs), float), np.asarray(to_numpy(times), float)
    if v.shape != (t.size, f.size):
        raise ShapeError(f"plot_waterfall: vis must have shape (Ntimes, Nfreq) = "
                         f"({t.size}, {f.size}), received {v.shape}")
    mask = np.zeros(v.shape, bool) if flags is None else np.asarray(to_numpy(flags), bool)
    amp = np.abs(v)
    if log_amplitude:
        amp = np.log10(np.where(amp > 0, amp, np.nan))
    amp = np.ma.masked_array(amp, mask | ~np.isfinite(amp))
    phs = np.ma.masked_array(np.angle(v), mask)
    dt = (t - t[0]) * (24.0 if t.size and t[0] > 2e6 else 1.0)
    ext = (f[0] / 1e6, f[-1] / 1e6, dt[-1], dt[0])
    fig, ax = _figure(1, 2, figsize=(11, 4.2))
    im = ax[0, 0].imshow(amp, aspect="auto", extent=ext, interpolation="nearest")
    fig.colorbar(im, ax=ax[0, 0], label="log10 |V| [Jy]" if log_amplitude else "|V| [Jy]")
    im = ax[0, 1].imshow(phs, aspect="auto", extent=ext, cmap="twilight", vmin=-np.pi,
                         vmax=np.pi, interpolation="nearest")
    fig.colorbar(im, ax=ax[0, 1], label="phase [rad]")
    for a, name in zip(ax[0], ("amplitude", "phase")):
        a.set_xlabel("frequency [MHz]")
        a.set_ylabel("time [h]" if t.size and t[0] > 2e6 else "time")
        a.set_title(f"{title} {name}".strip())
    return _save(fig, path)


def plot_delay_spectrum(delays: Any, power: Any, errors: Any, path: Any,
                        reference: Any = None, labels: Sequence[str] | None = None,
                        tau_cut: float | None = None, title: str = "",
                        units: str = "Jy$^2$ Hz$^2$") -> pathlib.Path:
    """Delay power spectrum with error bars (symlog y: cross spectra can be negative).

    Parameters
    ----------
    delays : array (Ndelay,), s
    power : array (Ndelay,) or (Nspec, Ndelay)
        One or several spectra (e.g. residual and a wrong-beam fit).
    errors : array like ``power``, or None
        1-sigma error bars.
    path : str or Path
    reference : array (Ndelay,), optional
        A reference spectrum (e.g. the injected signal's), drawn as a line.
    labels : sequence of str, optional
    tau_cut : float, optional
        Filter half-width, s (shaded).
    title, units : str

    Returns
    -------
    pathlib.Path
    """
    d = np.asarray(to_numpy(delays), float) * 1e9
    p = np.atleast_2d(np.asarray(to_numpy(power), float))
    e = None if errors is None else np.atleast_2d(np.asarray(to_numpy(errors), float))
    if p.shape[-1] != d.size or (e is not None and e.shape != p.shape):
        raise ShapeError(f"plot_delay_spectrum: power {p.shape} and errors "
                         f"{None if e is None else e.shape} must end in Ndelay = {d.size}")
    fig, ax = _figure(figsize=(7, 4.5))
    a = ax[0, 0]
    for i, row in enumerate(p):
        lab = labels[i] if labels is not None and i < len(labels) else None
        a.errorbar(d, row, yerr=None if e is None else e[i], fmt=".", ms=3, capsize=1.5,
                   label=lab)
    if reference is not None:
        a.plot(d, np.asarray(to_numpy(reference), float), "k-", lw=1, label="reference")
    if tau_cut is not None:
        a.axvspan(-tau_cut * 1e9, tau_cut * 1e9, color="0.85", zorder=0, label="filtered")
    finite = np.abs(p[np.isfinite(p)])
    lin = float(np.percentile(finite[finite > 0], 5)) if np.any(finite > 0) else 1.0
    a.set_yscale("symlog", linthresh=lin)
    a.set_xlabel("delay [ns]")
    a.set_ylabel(f"P [{units}]")
    a.set_title(title)
    if labels is not None or reference is not None or tau_cut is not None:
        a.legend(fontsize=8)
    return _save(fig, path)


def plot_power_comparison(k: Any, measured: Any, errors: Any, expected: Any, path: Any,
                          labels: Sequence[str] | None = None, title: str = "",
                          xlabel: str = "k [Mpc$^{-1}$]",
                          ylabel: str = "P(k) [mK$^2$ Mpc$^3$]") -> pathlib.Path:
    """Measured power spectra (with errors) against an expected one, with the ratio.

    Parameters
    ----------
    k : array (Nk,)
    measured : array (Nk,) or (Nspec, Nk)
    errors : array like ``measured`` or None
    expected : array (Nk,)
    path : str or Path
    labels : sequence of str, optional
    title, xlabel, ylabel : str

    Returns
    -------
    pathlib.Path
    """
    kk = np.asarray(to_numpy(k), float)
    m = np.atleast_2d(np.asarray(to_numpy(measured), float))
    e = None if errors is None else np.atleast_2d(np.asarray(to_numpy(errors), float))
    ex = np.asarray(to_numpy(expected), float)
    if m.shape[-1] != kk.size or ex.shape != kk.shape:
        raise ShapeError(f"plot_power_comparison: measured {m.shape} and expected {ex.shape} "
                         f"must end in Nk = {kk.size}")
    fig, ax = _figure(2, 1, figsize=(7, 6), sharex=True,
                      gridspec_kw={"height_ratios": (3, 1)})
    top, bot = ax[0, 0], ax[1, 0]
    top.plot(kk, ex, "k-", lw=1, label="expected")
    for i, row in enumerate(m):
        lab = labels[i] if labels is not None and i < len(labels) else None
        err = None if e is None else e[i]
        top.errorbar(kk, row, yerr=err, fmt="o", ms=3, capsize=2, label=lab)
        with np.errstate(divide="ignore", invalid="ignore"):
            bot.errorbar(kk, row / ex, yerr=None if err is None else err / np.abs(ex),
                         fmt="o", ms=3, capsize=2)
    top.set_xscale("log")
    top.set_yscale("symlog", linthresh=max(float(np.min(np.abs(ex[ex != 0]))), 1e-30)
                   if np.any(ex != 0) else 1.0)
    top.set_ylabel(ylabel)
    top.set_title(title)
    top.legend(fontsize=8)
    bot.axhline(1.0, color="k", lw=0.8)
    bot.set_xlabel(xlabel)
    bot.set_ylabel("ratio")
    return _save(fig, path)
