"""Plots of Fisher-matrix results and optimiser convergence, saved to files (Agg backend)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import ShapeError

__all__ = ["plot_correlation_matrix", "plot_convergence"]


def _figure(figsize: tuple) -> tuple:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=figsize)


def plot_correlation_matrix(corr: Any, path: str | os.PathLike, *,
                            labels: Sequence[str] | None = None, title: str | None = None,
                            dpi: int = 120) -> str:
    """Save an image of a correlation matrix (values in [-1, 1], diverging colour map).

    Parameters
    ----------
    corr : array (n, n)
        Correlation matrix, e.g. from :func:`linlim.inference.fisher.correlation_matrix`.
    path : str or PathLike
        Output file (format from the extension: .png, .pdf, .svg).
    labels : sequence of str, optional
        Parameter names for the axes (shown when n <= 40).
    title : str, optional
    dpi : int

    Returns
    -------
    str
        The path written.
    """
    C = np.asarray(to_numpy(corr), dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ShapeError(f"plot_correlation_matrix: expected a square matrix, received {C.shape}")
    if labels is not None and len(labels) != C.shape[0]:
        raise ShapeError(f"plot_correlation_matrix: {len(labels)} labels for {C.shape[0]} "
                         "parameters")
    plt, fig = _figure((6, 5))
    ax = fig.add_subplot(111)
    im = ax.imshow(C, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="correlation")
    if labels is not None and C.shape[0] <= 40:
        ax.set_xticks(range(C.shape[0]), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(C.shape[0]), labels, fontsize=7)
    ax.set_title(title or "parameter correlations")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return os.fspath(path)


def plot_convergence(results: Any, path: str | os.PathLike, *,
                     labels: Sequence[str] | None = None, dpi: int = 120) -> str:
    """Save loss and gradient-norm histories of one or more optimiser results.

    Parameters
    ----------
    results : OptimizeResult or sequence of them
        Anything with a ``history`` dict holding ``loss`` and ``grad_norm`` arrays.
    path : str or PathLike
    labels : sequence of str, optional
        Legend entries (default: each result's ``method``).

    Returns
    -------
    str
        The path written.

    Notes
    -----
    The loss is shown relative to the lowest loss reached by any result
    (``loss - min + tiny``) on a log axis, so linear and quadratic convergence are visible.
    """
    results = [results] if hasattr(results, "history") else list(results)
    labels = labels or [getattr(r, "method", f"run {i}") for i, r in enumerate(results)]
    fmin = min(float(np.nanmin(r.history["loss"])) for r in results)
    plt, fig = _figure((9, 3.5))
    ax1, ax2 = fig.add_subplot(121), fig.add_subplot(122)
    for r, lab in zip(results, labels):
        loss = np.asarray(r.history["loss"], dtype=float)
        ax1.semilogy(loss - fmin + 1e-300 + 1e-16 * max(1.0, abs(fmin)), label=lab)
        ax2.semilogy(np.asarray(r.history["grad_norm"], dtype=float), label=lab)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("loss - min loss")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("gradient inf-norm")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return os.fspath(path)
