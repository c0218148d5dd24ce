"""Trace and corner plots of MCMC draws, saved to files (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ShapeError

__all__ = ["trace_plot", "corner_plot"]


def _draws(obj: Any) -> np.ndarray:
    a = np.asarray(obj.draws if hasattr(obj, "draws") else obj, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ShapeError(f"draws: expected (chains, draws, n), received {a.shape}")
    return a


def _select(n: int, indices: Sequence[int] | None, names: Sequence[str] | None,
            default: int) -> tuple[list[int], list[str]]:
    idx = list(range(min(n, default))) if indices is None else [int(i) for i in indices]
    for i in idx:
        if not 0 <= i < n:
            raise InputError(f"indices: expected values in [0, {n}), received {i}")
    if names is None:
        labels = [f"theta[{i}]" for i in idx]
    else:
        if len(names) != n:
            raise InputError(f"names: expected {n} names, received {len(names)}")
        labels = [str(names[i]) for i in idx]
    return idx, labels


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _prepare(obj: Any, indices: Sequence[int] | None, names: Sequence[str] | None,
             default: int) -> tuple[Any, np.ndarray, list[int], list[str]]:
    """``(pyplot, draws (chains, draws, n), shown indices, their labels)``."""
    draws = _draws(obj)
    idx, labels = _select(draws.shape[2], indices, names, default)
    return _pyplot(), draws, idx, labels


def _save(plt: Any, fig: Any, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def trace_plot(
    obj: Any,
    path: str | os.PathLike,
    indices: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    divergences: bool = True,
) -> str:
    """Trace (per chain) and marginal histogram of selected parameters.

    Parameters
    ----------
    obj : HMCResult or array (chains, draws, n)
    path : str or Path
        Output image file (format from the extension).
    indices : sequence of int, optional
        Parameters to show (default the first 8).
    names : sequence of str, optional
        Names of all ``n`` parameters.
    divergences : bool
        Mark divergent transitions (rug at the bottom) when ``obj`` has sampler statistics.

    Returns
    -------
    str
        The path written.
    """
    plt, draws, idx, labels = _prepare(obj, indices, names, 8)
    div = None
    if divergences and hasattr(obj, "sample_stats"):
        div = np.asarray(obj.sample_stats["divergent"], dtype=bool)
    fig, axes = plt.subplots(len(idx), 2, figsize=(10, 2.0 * len(idx) + 0.5), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    it = np.arange(draws.shape[1])
    for row, (i, lab) in enumerate(zip(idx, labels)):
        ax_t, ax_h = axes[row]
        for c in range(draws.shape[0]):
            ax_t.plot(it, draws[c, :, i], lw=0.5, alpha=0.8, label=f"chain {c}")
            ax_h.hist(draws[c, :, i], bins=40, histtype="step", density=True,
                      orientation="horizontal")
        if div is not None and div.any():
            lo = draws[:, :, i].min()
            for c in range(draws.shape[0]):
                ax_t.plot(it[div[c]], np.full(div[c].sum(), lo), "|", color="red", ms=8)
        ax_t.set_ylabel(lab)
        ax_h.set_yticklabels([])
    axes[-1, 0].set_xlabel("draw")
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=min(draws.shape[0], 4))
    return _save(plt, fig, path)


def corner_plot(
    obj: Any,
    path: str | os.PathLike,
    indices: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    truths: Sequence[float] | None = None,
    bins: int = 40,
) -> str:
    """Corner plot: 1-d histograms on the diagonal, 2-d histograms below it.

    Parameters
    ----------
    obj : HMCResult or array (chains, draws, n)
    path : str or Path
        Output image file.
    indices : sequence of int, optional
        Parameters to show (default the first 5).
    names : sequence of str, optional
        Names of all ``n`` parameters.
    truths : sequence of float, optional
        Reference values (lines): one per shown parameter, or one per parameter.
    bins : int
        Histogram bins.

    Returns
    -------
    str
        The path written.
    """
    plt, draws, idx, labels = _prepare(obj, indices, names, 5)
    if truths is not None:
        truths = np.asarray(truths, float).ravel()
        if truths.size == draws.shape[2] and truths.size != len(idx):
            truths = truths[idx]                       # one per parameter: pick the shown
        if truths.size != len(idx):
            raise InputError(f"truths: expected {len(idx)} values (the shown parameters) or "
                             f"{draws.shape[2]} (all), received {truths.size}")
    flat = draws.reshape(-1, draws.shape[2])[:, idx]
    k = len(idx)
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k + 0.5, 2.2 * k + 0.5), squeeze=False)
    for r in range(k):
        for c in range(k):
            ax = axes[r, c]
            if c > r:
                ax.set_visible(False)
                continue
            if r == c:
                ax.hist(flat[:, r], bins=bins, histtype="step", color="k")
                if truths is not None:
                    ax.axvline(truths[r], color="C1")
                ax.set_yticks([])
            else:
                ax.hist2d(flat[:, c], flat[:, r], bins=bins, cmap="Greys")
                if truths is not None:
                    ax.axvline(truths[c], color="C1")
                    ax.axhline(truths[r], color="C1")
            if r == k - 1:
                ax.set_xlabel(labels[c])
            else:
                ax.set_xticklabels([])
            if c == 0 and r > 0:
                ax.set_ylabel(labels[r])
            elif c > 0:
                ax.set_yticklabels([])
    return _save(plt, fig, path)
