"""Band-power plot: estimates with error bars from several fits against the truth."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import numpy as np

__all__ = ["plot_band_powers"]


def plot_band_powers(k: Any, series: Sequence[dict], path: str | os.PathLike, *,
                     truth: Any = None, title: str = "", ylabel: str = r"$P(k)$ [mK$^2$ Mpc$^3$]"
                     ) -> pathlib.Path:
    """Band powers ``P(k_b)`` with 1-sigma error bars against the truth.

    Parameters
    ----------
    k : array (Nb,)
        Band centres (h/Mpc).
    series : sequence of dict
        Each with ``estimate`` and ``sigma`` (Nb,) and a ``label``; slightly offset in ``k``
        so the bars do not overlap. Non-positive values are drawn on a symmetric-log axis.
    path : str or Path
    truth : array (Nb,), optional
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.asarray(k, float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if truth is not None:
        ax.plot(k, np.asarray(truth, float), "k-", lw=1.5, label="truth (input P(k), band mean)")
    offs = np.linspace(-0.04, 0.04, max(len(series), 1))
    lo = np.inf
    for s, off in zip(series, offs):
        est, sig = np.asarray(s["estimate"], float), np.asarray(s["sigma"], float)
        ax.errorbar(k * (1 + off), est, yerr=sig, fmt=s.get("fmt", "o"), ms=4, capsize=2,
                    label=s.get("label"))
        lo = min(lo, float(np.min(sig[sig > 0])) if np.any(sig > 0) else lo)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=lo if np.isfinite(lo) else 1.0)
    ax.set_xlabel(r"$k$ [$h$ Mpc$^{-1}$]")
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="0.6", lw=0.8)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
