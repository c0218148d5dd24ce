"""Plots of dirty maps: HEALPix (Mollweide or Cartesian projection) and (l, m) images.

Both functions take host or device arrays (moved to the host once), render into a
matplotlib ``Figure`` on the Agg canvas (no pyplot state), write ``path`` (format from its
suffix) and return the path. NaN pixels (never seen, or a zero normalisation) are blank.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import InputError, ShapeError

__all__ = ["plot_healpix_map", "plot_lm_image"]


def _figure(figsize: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _save(fig: Any, path: Any) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_healpix_map(hmap: Any, path: Any, *, nside: int | None = None, pixels: Any = None,
                     nest: bool = False, projection: str = "mollweide",
                     lonra: Sequence[float] = (-180.0, 180.0),
                     latra: Sequence[float] = (-90.0, 90.0), xsize: int = 600,
                     title: str = "", unit: str = "Jy", cmap: str = "viridis",
                     vmin: float | None = None, vmax: float | None = None) -> pathlib.Path:
    """A HEALPix map in equatorial coordinates (RA increasing to the left).

    Parameters
    ----------
    hmap : array, shape (Npix,), float
        Values on all pixels (``12 nside^2``), or on ``pixels`` (others are blank).
    path : str or Path
    nside : int, optional
        Required with ``pixels``; otherwise taken from ``hmap``'s length.
    pixels : array of int, optional
        Pixel indices of ``hmap`` (a partial map, e.g. ``DirtyImager.pixels``).
    nest : bool
        NESTED ordering.
    projection : {"mollweide", "cartesian"}
    lonra, latra : (float, float)
        Cartesian window, degrees of RA (around 0) and Dec.
    xsize : int
        Width of the projected image, pixels.
    title, unit, cmap, vmin, vmax
        Matplotlib options (``unit`` labels the colour bar).

    Returns
    -------
    pathlib.Path
    """
    import healpy as hp

    v = np.asarray(to_numpy(hmap), dtype=np.float64).ravel()
    if pixels is None:
        nside = hp.npix2nside(v.size) if nside is None else int(nside)
        if v.size != hp.nside2npix(nside):
            raise ShapeError(f"plot_healpix_map: hmap has {v.size} values, expected "
                             f"{hp.nside2npix(nside)} for nside={nside}")
        full = v
    else:
        if nside is None:
            raise InputError("plot_healpix_map: nside is required with pixels")
        pix = np.asarray(pixels).ravel()
        if pix.shape != v.shape:
            raise ShapeError(f"plot_healpix_map: pixels {pix.shape} and hmap {v.shape} "
                             "differ in shape")
        full = np.full(hp.nside2npix(nside), np.nan)
        full[pix] = v
    if projection == "mollweide":
        proj = hp.projector.MollweideProj(xsize=xsize)
    elif projection == "cartesian":
        proj = hp.projector.CartesianProj(xsize=xsize, lonra=list(lonra), latra=list(latra))
    else:
        raise InputError(f"plot_healpix_map: projection must be 'mollweide' or "
                         f"'cartesian', received {projection!r}")
    img = proj.projmap(full, lambda x, y, z: hp.vec2pix(nside, x, y, z, nest=nest))
    img = np.where(np.isfinite(img) & (img != hp.UNSEEN), img, np.nan)
    fig, ax = _figure((8, 4.5))
    extent = proj.get_extent()
    im = ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.05, pad=0.04, label=unit)
    ax.set_title(title)
    return _save(fig, path)


def plot_lm_image(image: Any, path: Any, *, extent: float | None = None,
                  l: Any = None, m: Any = None, title: str = "", unit: str = "Jy",
                  cmap: str = "viridis", vmin: float | None = None,
                  vmax: float | None = None) -> pathlib.Path:
    """An (l, m) image (``DirtyImager.image`` output) with east to the right.

    Parameters
    ----------
    image : array, shape (Nm, Nl), float
        Rows in ``m`` (south to north), columns in ``l``.
    path : str or Path
    extent : float, optional
        Full width in direction cosines (as given to :func:`linlim.imaging.lm_grid`);
        or give the flattened pixel coordinates ``l`` and ``m``.
    title, unit, cmap, vmin, vmax
        Matplotlib options.

    Returns
    -------
    pathlib.Path
    """
    img = np.asarray(to_numpy(image), dtype=np.float64)
    if img.ndim != 2:
        raise ShapeError(f"plot_lm_image: image must be 2-D (Nm, Nl), received {img.shape}")
    if extent is not None:
        half = 0.5 * float(extent)
        box = (-half, half, -half, half)
    elif l is not None and m is not None:
        la, ma = np.asarray(l), np.asarray(m)
        dl = (la.max() - la.min()) / max(img.shape[1] - 1, 1)
        dm = (ma.max() - ma.min()) / max(img.shape[0] - 1, 1)
        box = (la.min() - dl / 2, la.max() + dl / 2, ma.min() - dm / 2, ma.max() + dm / 2)
    else:
        box = None
    fig, ax = _figure((5.5, 4.5))
    im = ax.imshow(img, origin="lower", extent=box, cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_xlabel("l (east)")
    ax.set_ylabel("m (north)")
    fig.colorbar(im, ax=ax, label=unit)
    ax.set_title(title)
    return _save(fig, path)
