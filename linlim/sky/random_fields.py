"""Mock 21 cm signals: Gaussian random fields on periodic boxes and on the sky.

:func:`gaussian_random_box` draws a field with a 3-D power spectrum ``P(k)`` [K^2 Mpc^3]
on a periodic Cartesian box, :func:`box_power_spectrum` measures it back, and
:func:`gaussian_random_sky` samples such a box at the comoving positions ``r(nu) n_hat``
of sky pixels over the band.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import InputError
from .cosmology import _check_freqs, _uniform_spacing, comoving_distance, cosmo_scalars
from .geometry import _radec, _unit_vectors

__all__ = ["gaussian_random_box", "box_power_spectrum", "gaussian_random_sky"]


def _box_k(shape: tuple, box_size: tuple, real: bool) -> np.ndarray:
    ks = []
    for i, (n, L) in enumerate(zip(shape, box_size)):
        d = L / n
        if real and i == len(shape) - 1:
            ks.append(2 * np.pi * np.fft.rfftfreq(n, d))
        else:
            ks.append(2 * np.pi * np.fft.fftfreq(n, d))
    grids = np.meshgrid(*ks, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))


def _box_args(shape: Any, box_size: Any, where: str) -> tuple[tuple, tuple]:
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    L = np.broadcast_to(np.asarray(box_size, np.float64), (len(shape),))
    if len(shape) != 3 or min(shape) < 2 or np.any(L <= 0):
        raise InputError(f"{where}: need a 3-D shape of sizes >= 2 and positive box sizes, "
                         f"received shape {shape}, box_size {tuple(L)}")
    return shape, tuple(float(v) for v in L)


def gaussian_random_box(pk: Callable, shape: Any, box_size: Any,
                        rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with power spectrum ``P(k)`` on a periodic box.

    With ``delta_k = dV sum_x delta(x) exp(-i k.x)`` the convention is
    ``<|delta_k|^2> = V P(k)``. The field is ``delta = IFFT(FFT(w) sqrt(P(k) / dV))``
    with ``w`` unit white noise; the ``k = 0`` mode is set to zero (zero mean).

    Parameters
    ----------
    pk : callable
        ``pk(k)``, ``k`` in Mpc^-1 (array), returning K^2 Mpc^3.
    shape : tuple of 3 int
        Cells per axis.
    box_size : float or tuple of 3 float
        Side lengths, Mpc (cells may be anisotropic).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape ``shape``, float64, K
    """
    shape, L = _box_args(shape, box_size, "gaussian_random_box")
    dV = float(np.prod([l / n for l, n in zip(L, shape)]))
    k = _box_k(shape, L, real=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = np.sqrt(np.where(k > 0, np.asarray(pk(np.where(k > 0, k, 1.0))), 0.0) / dV)
    if not np.all(np.isfinite(amp)) or np.any(amp < 0):
        raise InputError("gaussian_random_box: pk(k) must be finite and >= 0 for k > 0")
    wk = np.fft.rfftn(rng.standard_normal(shape))
    return np.fft.irfftn(wk * amp, s=shape, axes=(0, 1, 2))


def box_power_spectrum(field: Any, box_size: Any, k_edges: Any
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spherically averaged power spectrum of a box, with sample-variance errors.

    ``P_hat(k_b) = mean_{k in bin b} |delta_k|^2 / V``. For a Gaussian field each
    ``|delta_k|^2 / V`` is exponential with mean ``P`` and the modes ``k`` and ``-k`` are
    the same, so the error of the bin mean is ``P_hat / sqrt(N_b / 2)``.

    Parameters
    ----------
    field : array, shape (Nx, Ny, Nz), K
    box_size : float or tuple of 3 floats, Mpc
    k_edges : array (Nbins + 1,), Mpc^-1

    Returns
    -------
    k_mean : (Nbins,) mean |k| of the modes in each bin (nan if empty)
    power : (Nbins,) K^2 Mpc^3
    error : (Nbins,) K^2 Mpc^3
    nmodes : (Nbins,) int, Fourier modes counted (each +-k pair twice)
    """
    f = np.asarray(field, np.float64)
    shape, L = _box_args(f.shape, box_size, "box_power_spectrum")
    dV = float(np.prod([l / n for l, n in zip(L, shape)]))
    V = float(np.prod(L))
    p = (np.abs(np.fft.fftn(f)) * dV) ** 2 / V
    k = np.broadcast_to(_box_k(shape, L, real=False), shape)
    edges = np.asarray(k_edges, np.float64)
    b = np.digitize(k.ravel(), edges) - 1
    ok = (b >= 0) & (b < edges.size - 1) & (k.ravel() > 0)
    nb = edges.size - 1
    n = np.bincount(b[ok], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.bincount(b[ok], p.ravel()[ok], minlength=nb) / n
        kmean = np.bincount(b[ok], k.ravel()[ok], minlength=nb) / n
        err = power / np.sqrt(n / 2.0)
    return kmean, power, err, n


def gaussian_random_sky(pk: Callable, ra: Any, dec: Any, freqs: Any,
                        rng: np.random.Generator, cosmo: Any = None,
                        cell_size: Any = None, pad: float = 0.1,
                        max_cells: int = 2**25) -> np.ndarray:
    """Mock 21 cm signal ``T[p, f]`` (K) at sky positions over the band.

    Each (pixel, channel) sits at its comoving position ``r(nu) n_hat`` (astropy
    cosmology), expressed in a Cartesian frame whose third axis points at the mean
    direction of the targets. A periodic box covering those positions (plus ``pad`` of
    its extent on each side) is drawn with :func:`gaussian_random_box` and sampled by
    trilinear interpolation.

    Approximations: one ``P(k)`` for the whole band (no light-cone evolution); periodic
    box (modes longer than the box are missing); trilinear interpolation smooths the
    field at the cell scale, so choose ``cell_size`` below the pixel spacing and the
    channel depth.

    Parameters
    ----------
    pk : callable
        ``pk(k)``, Mpc^-1 -> K^2 Mpc^3.
    ra, dec : array (Npix,), radians (or Quantities)
    freqs : array (Nfreq,), Hz
    rng : numpy.random.Generator
    cosmo : astropy.cosmology.Cosmology, optional (Planck18)
    cell_size : float or (3,) floats, Mpc, optional
        Cell sizes (transverse, transverse, line of sight); default: the channel depth
        ``|dr/dnu| dnu`` on every axis.
    pad : float
        Extra box length on each side, as a fraction of the extent.
    max_cells : int
        Refuse boxes larger than this (memory guard).

    Returns
    -------
    ndarray, shape (Npix, Nfreq), float64, K (NumPy; move it to the device yourself)
    """
    from scipy.ndimage import map_coordinates

    where = "gaussian_random_sky"
    ra, dec = _radec(ra, dec, where)
    f = _check_freqs(freqs, where)
    r = comoving_distance(f, cosmo)
    n = _unit_vectors(ra, dec)
    ez = n.mean(axis=0)
    if np.linalg.norm(ez) < 1e-3:
        raise InputError(f"{where}: targets span the whole sky; the box method needs a patch")
    ez /= np.linalg.norm(ez)
    ex = np.cross([0.0, 0.0, 1.0], ez)
    if np.linalg.norm(ex) < 1e-8:
        ex = np.array([1.0, 0.0, 0.0])
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    pos = (n @ np.stack([ex, ey, ez], axis=1))[:, None, :] * r[None, :, None]  # (P, F, 3)
    lo, hi = pos.reshape(-1, 3).min(0), pos.reshape(-1, 3).max(0)
    ext = hi - lo
    if cell_size is None:
        dnu = _uniform_spacing(f, where) if f.size > 1 else 1e5
        cell = np.full(3, cosmo_scalars(f, cosmo)[1] * dnu)
    else:
        cell = np.broadcast_to(np.asarray(cell_size, np.float64), (3,)).copy()
    if np.any(cell <= 0):
        raise InputError(f"{where}: cell_size must be positive, received {cell}")
    L = ext * (1 + 2 * pad) + 2 * cell
    shape = np.maximum(np.ceil(L / cell).astype(int), 2)
    if int(np.prod(shape)) > max_cells:
        raise InputError(f"{where}: the box would have {tuple(shape)} cells (> max_cells "
                         f"{max_cells}); use a larger cell_size or a smaller patch")
    L = shape * cell
    box = gaussian_random_box(pk, tuple(shape), tuple(L), rng)
    origin = lo - (L - ext) / 2
    coords = ((pos - origin) / cell).reshape(-1, 3).T
    vals = map_coordinates(box, coords, order=1, mode="grid-wrap")
    return vals.reshape(ra.size, f.size)
