"""Spherical stripe harmonics and spherical Fourier-Bessel modes on a cut sky.

A drift scan sees a stripe of the sky, colatitudes ``theta_min <= theta <= theta_max``
(``theta = pi/2 - dec``), or a cap (``theta_min = 0``). The ordinary ``Y_lm`` are not
orthogonal there. The complete orthogonal basis of the stripe (the BayesLIM "spherical
stripe harmonics", Kern 2025, arXiv:2504.07090) solves the Laplace eigenproblem on the
stripe with a boundary condition at its edges::

    Y_{nu m}(theta, phi) = f_{nu m}(theta) {cos m phi, sin m phi},
    f = alpha P_nu^m(cos theta) + beta Q_nu^m(cos theta),

with **non-integer degree** ``nu`` fixed, for each ``m``, by Dirichlet (``f = 0``) or
Neumann (``df/dtheta = 0``) conditions at both edges. As a second solution we use
``P_nu^m(-cos theta)``, which equals ``cos((nu+m) pi) P - (2/pi) sin((nu+m) pi) Q`` and
spans the same space for non-integer ``nu``; the boundary determinant
``D(nu) = u1(a) u2(b) - u1(b) u2(a)`` (``u1 = P(x)``, ``u2 = P(-x)``, or their
``theta``-derivatives) divided by ``sin((nu + m) pi)`` is, up to the constant ``-2/pi``,
the ``P``/``Q`` determinant, free of the spurious zeros ``D`` has at integer ``nu``. Its
roots are bracketed on a fine grid and refined with Brent's method. A cap keeps only
``P_nu^m(cos theta)`` (``Q`` is singular at the pole); the full sky (``0, pi``) gives the
integer ``l`` and the ordinary real ``Y_lm``. ``P_nu^m`` is ``scipy.special.lpmv``
(Condon-Shortley phase included), which accepts real degrees.

Each ``f`` is normalised on the stripe, ``int f^2 sin theta dtheta = 1`` (Gauss-Legendre),
and the real modes are ``f / sqrt(2 pi)`` (``m = 0``), ``f cos(m phi) / sqrt(pi)``
(``m > 0``) and ``f sin(|m| phi) / sqrt(pi)`` (``m < 0``), so that
``int_stripe Y_a Y_b dOmega = delta_ab`` -- on the full sky exactly the real harmonics of
:func:`linlim.sky.signal.real_spherical_harmonics`.

Along the line of sight, :func:`fourier_bessel_modes` gives the radial modes
``g_{nu n}(r) = A j_nu(k r) + B y_nu(k r)`` (spherical Bessel functions of real order,
``j_nu(x) = sqrt(pi / 2x) J_{nu+1/2}(x)``) with ``k_n`` the roots of the same kind of
determinant at ``r_min, r_max`` (comoving distances of the band, Planck18 by default,
21 cm redshifts ``z = f21 / nu - 1``), normalised by ``int g^2 r^2 dr = 1``.

Operators (dense mode matrices built once, applied by matmul; both real, so the adjoint is
the transpose under ``Re <x, y>``):

* :class:`StripeHarmonicFreqBasis` -- stripe harmonics times frequency modes
  (``T = Y C B^T``);
* :class:`SphericalFourierBesselBasis` -- stripe harmonics times their own radial
  Fourier-Bessel modes (``T[p, f] = sum_a Y[p, a] sum_n C[a, n] g_{nu_a n}(r_f)``).

Mode matrices can be cached to HDF5 (``cache_dir``), keyed by a SHA-256 hash of the full
specification (bounds, degrees, boundary conditions, target coordinates, frequencies,
cosmology); the default is no cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any, Callable

import numpy as np

from ..backend import asarray, get_xp
from ..errors import InputError
from ..operators.base import LinearOperator

__all__ = [
    "LMAX_LIMIT",
    "stripe_theta_range",
    "stripe_degrees",
    "stripe_radial",
    "stripe_harmonics",
    "fourier_bessel_k",
    "fourier_bessel_radial",
    "StripeHarmonicFreqBasis",
    "SphericalFourierBesselBasis",
]

LMAX_LIMIT = 256
"""Largest degree accepted (``scipy.special.lpmv``'s accuracy is checked up to here)."""

_BCS = ("dirichlet", "neumann")
_NU_STEP = 0.02  # root-bracketing grid in nu (roots are >= ~1 apart)
_NU_SHIFT = 0.00731  # keeps grid points off the integers, where D/sin is 0/0


# -- validation --------------------------------------------------------------------------
def _check_bounds(theta_min: float, theta_max: float, where: str) -> tuple[float, float]:
    a, b = float(theta_min), float(theta_max)
    if not (np.isfinite(a) and np.isfinite(b) and 0.0 <= a < b <= np.pi):
        raise InputError(f"{where}: stripe bounds must satisfy 0 <= theta_min < theta_max <= "
                         f"pi (colatitudes, radians), received theta_min={theta_min!r}, "
                         f"theta_max={theta_max!r}")
    return a, b


def _check_bc(bc: str, where: str) -> str:
    if bc not in _BCS:
        raise InputError(f"{where}: bc must be 'dirichlet' or 'neumann', received {bc!r}")
    return bc


def _check_lmax(lmax: Any, mmax: Any, where: str) -> tuple[float, int]:
    if not (isinstance(lmax, (int, float, np.integer, np.floating)) and np.isfinite(lmax)
            and 0 <= lmax <= LMAX_LIMIT):
        raise InputError(f"{where}: lmax must be a number in [0, {LMAX_LIMIT}], received "
                         f"{lmax!r}")
    mmax = int(np.floor(lmax)) if mmax is None else mmax
    if not (isinstance(mmax, (int, np.integer)) and 0 <= mmax <= lmax):
        raise InputError(f"{where}: mmax must be an int in [0, lmax={lmax}], received "
                         f"{mmax!r}")
    return float(lmax), int(mmax)


def stripe_theta_range(dec_min: float, dec_max: float) -> tuple[float, float]:
    """Colatitude bounds ``(theta_min, theta_max)`` of the declination band
    ``dec_min <= dec <= dec_max`` (radians; ``theta = pi/2 - dec``)."""
    if not -np.pi / 2 <= dec_min < dec_max <= np.pi / 2:
        raise InputError(f"stripe_theta_range: need -pi/2 <= dec_min < dec_max <= pi/2 "
                         f"(radians), received dec_min={dec_min!r}, dec_max={dec_max!r}")
    return max(np.pi / 2 - dec_max, 0.0), min(np.pi / 2 - dec_min, np.pi)


# -- Legendre functions of real degree ----------------------------------------------------
def _p_and_dp(nu: float, m: int, theta: Any) -> tuple[np.ndarray, np.ndarray]:
    """``P_nu^m(cos theta)`` and its ``theta``-derivative (``0 < theta < pi`` for the
    derivative): ``dP/dtheta = (nu x P_nu^m - (nu + m) P_{nu-1}^m) / sin theta``."""
    from scipy.special import lpmv

    theta = np.asarray(theta, np.float64)
    x = np.cos(theta)
    p = lpmv(m, nu, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = (nu * x * p - (nu + m) * lpmv(m, nu - 1.0, x)) / np.sin(theta)
    return p, dp


@functools.lru_cache(maxsize=32)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (cached: numpy solves an eigenproblem)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x.flags.writeable = w.flags.writeable = False
    return x, w


def _nquad(n: float) -> int:
    return int(64 * np.ceil(max(256.0, n) / 64))


def _values(nu: float, m: int, theta: Any) -> tuple[np.ndarray, np.ndarray]:
    """``u1 = P_nu^m(cos theta)`` and ``u2 = P_nu^m(-cos theta)``."""
    from scipy.special import lpmv

    x = np.cos(np.asarray(theta, np.float64))
    return lpmv(m, nu, x), lpmv(m, nu, -x)


def _solutions(nu: Any, m: int, theta: Any) -> tuple[np.ndarray, ...]:
    """``u1 = P(cos theta)``, ``u2 = P(-cos theta)`` and their ``theta``-derivatives."""
    u1, d1 = _p_and_dp(nu, m, theta)
    u2, d2 = _p_and_dp(nu, m, np.pi - np.asarray(theta, np.float64))
    return u1, d1, u2, -d2


def _kind(a: float, b: float) -> str:
    if a == 0.0 and b == np.pi:
        return "full"
    if a == 0.0:
        return "north"
    if b == np.pi:
        return "south"
    return "stripe"


def _boundary_function(m: int, a: float, b: float, bc: str) -> Callable[[float], float]:
    kind = _kind(a, b)
    k = 0 if bc == "dirichlet" else 1

    def h(nu: Any) -> Any:  # scalar or array of degrees
        if kind == "north":
            return _solutions(nu, m, b)[k]
        if kind == "south":
            return _solutions(nu, m, a)[2 + k]
        sa, sb = _solutions(nu, m, a), _solutions(nu, m, b)
        d = sa[k] * sb[2 + k] - sb[k] * sa[2 + k]
        return d / np.sin((np.asarray(nu) + m) * np.pi)

    return h


def stripe_degrees(m: int, theta_min: float, theta_max: float, lmax: float,
                   bc: str = "dirichlet") -> np.ndarray:
    """Degrees ``nu <= lmax`` of the stripe eigenfunctions of azimuthal order ``m``.

    Parameters
    ----------
    m : int
        Azimuthal order, ``m >= 0``.
    theta_min, theta_max : float
        Colatitude bounds, radians, ``0 <= theta_min < theta_max <= pi``.
        ``theta_min = 0`` (or ``theta_max = pi``) is a cap, both the full sky.
    lmax : float
        Largest degree returned.
    bc : {"dirichlet", "neumann"}
        ``f = 0`` or ``df/dtheta = 0`` at the edges (ignored on the full sky).

    Returns
    -------
    ndarray (Nnu,) float64
        Increasing degrees; on the full sky ``m, m + 1, ..., floor(lmax)``. Neumann with
        ``m = 0`` includes ``nu = 0`` (the constant).
    """
    from scipy.optimize import brentq

    where = "stripe_degrees"
    a, b = _check_bounds(theta_min, theta_max, where)
    bc = _check_bc(bc, where)
    lmax, _ = _check_lmax(lmax, 0, where)
    if not (isinstance(m, (int, np.integer)) and m >= 0):
        raise InputError(f"{where}: m must be an int >= 0, received {m!r}")
    if _kind(a, b) == "full":
        return np.arange(m, int(np.floor(lmax)) + 1, dtype=np.float64)
    out = [0.0] if (bc == "neumann" and m == 0) else []
    # Rayleigh quotient: nu (nu + 1) >= m^2 / sin^2 >= m^2, so nu > m - 1/2
    lo = max(m - 0.5, 0.0) + _NU_SHIFT
    if lo >= lmax:
        return np.asarray([v for v in out if v <= lmax], dtype=np.float64)
    grid = np.arange(lo, lmax + _NU_STEP, _NU_STEP)
    h = _boundary_function(m, a, b, bc)
    vals = h(grid)
    for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
        root = brentq(lambda v: float(h(v)), grid[i], grid[i + 1], xtol=1e-13, rtol=1e-15,
                      maxiter=200)
        if root <= lmax:
            out.append(root)
    return np.asarray(out, dtype=np.float64)


def _radial_coefficients(nu: float, m: int, a: float, b: float, bc: str
                         ) -> tuple[float, float, float]:
    """``(alpha, beta, norm)``: ``f = norm (alpha u1 + beta u2)`` is unit-normalised."""
    kind = _kind(a, b)
    if kind in ("full", "north") or (nu == 0.0 and m == 0):
        al, be = 1.0, 0.0  # P_0 = 1: the Neumann constant
    elif kind == "south":
        al, be = 0.0, 1.0
    else:
        k = 0 if bc == "dirichlet" else 1
        sa, sb = _solutions(nu, m, a), _solutions(nu, m, b)
        va, vb = np.array([sa[2 + k], -sa[k]]), np.array([sb[2 + k], -sb[k]])
        v = va if np.linalg.norm(va) >= np.linalg.norm(vb) else vb
        al, be = v / np.linalg.norm(v)
    x, w = _leggauss(_nquad(8 * nu + 64))
    th = 0.5 * (b - a) * x + 0.5 * (b + a)
    u = _values(nu, m, th)
    f = al * u[0] + be * u[1]
    nrm2 = 0.5 * (b - a) * float(np.sum(w * f * f * np.sin(th)))
    if not nrm2 > 0:
        raise InputError(f"stripe_radial: degenerate mode nu={nu}, m={m}")
    fixed = kind in ("full", "north", "south") or (nu == 0.0 and m == 0)
    s = 1.0 if fixed else float(np.sign(f[np.argmax(np.abs(f))]))
    return s * al, s * be, 1.0 / np.sqrt(nrm2)


def stripe_radial(nu: float, m: int, theta: Any, theta_min: float, theta_max: float,
                  bc: str = "dirichlet") -> np.ndarray:
    """Normalised colatitude function ``f_{nu m}(theta)`` of a stripe eigenmode.

    ``int_{theta_min}^{theta_max} f^2 sin theta dtheta = 1``. Sign: a positive multiple of
    ``P_nu^m(+-cos theta)`` on caps and the full sky, else positive at its largest
    magnitude.

    Parameters
    ----------
    nu : float
        A degree from :func:`stripe_degrees`.
    m : int
    theta : array, radians
    theta_min, theta_max : float
    bc : {"dirichlet", "neumann"}

    Returns
    -------
    ndarray, shape of ``theta``, float64
    """
    a, b = _check_bounds(theta_min, theta_max, "stripe_radial")
    al, be, nrm = _radial_coefficients(float(nu), int(m), a, b, _check_bc(bc, "stripe_radial"))
    u = _values(float(nu), int(m), theta)
    return nrm * (al * u[0] + be * u[1])


def stripe_harmonics(theta: Any, phi: Any, theta_min: float, theta_max: float, lmax: float,
                     mmax: int | None = None, bc: str = "dirichlet"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Real stripe harmonics at the given angles.

    Parameters
    ----------
    theta, phi : array, shape (N,)
        Colatitude (inside ``[theta_min, theta_max]``) and azimuth, radians.
    theta_min, theta_max : float
        Stripe bounds, radians.
    lmax : float
        Largest degree kept (modes with ``nu <= lmax``), ``0 <= lmax <= 256``.
    mmax : int, optional
        Largest ``|m|`` (default ``floor(lmax)``).
    bc : {"dirichlet", "neumann"}

    Returns
    -------
    Y : ndarray, shape (N, Nmodes), float64
        ``f / sqrt(2 pi)`` (m = 0), ``f cos(m phi) / sqrt(pi)`` (m > 0),
        ``f sin(|m| phi) / sqrt(pi)`` (m < 0); orthonormal over the stripe.
    lm : ndarray, shape (Nmodes, 2), float64
        ``(nu, m)`` of each column, sorted by ``nu`` then ``m`` (on the full sky the
        order of :func:`linlim.sky.signal.real_spherical_harmonics`).

    Raises
    ------
    InputError
        Bounds out of order or outside ``[0, pi]``, ``lmax``/``mmax`` out of range, targets
        outside the stripe, or no mode with ``nu <= lmax``.
    """
    where = "stripe_harmonics"
    a, b = _check_bounds(theta_min, theta_max, where)
    bc = _check_bc(bc, where)
    lmax, mmax = _check_lmax(lmax, mmax, where)
    theta, phi = np.asarray(theta, np.float64), np.asarray(phi, np.float64)
    if theta.ndim != 1 or theta.shape != phi.shape:
        raise InputError(f"{where}: theta and phi must be 1-D of equal length, received "
                         f"shapes {theta.shape}, {phi.shape}")
    tol = 1e-9
    if theta.size and (theta.min() < a - tol or theta.max() > b + tol):
        raise InputError(f"{where}: targets must lie in the stripe [{a:.6g}, {b:.6g}] rad "
                         f"(colatitude), received [{theta.min():.6g}, {theta.max():.6g}]")
    # HEALPix rings share a colatitude: evaluate the Legendre functions once per ring
    uth, inv = np.unique(np.clip(theta, a, b), return_inverse=True)
    cols, lm = [], []
    for m in range(mmax + 1):
        for nu in stripe_degrees(m, a, b, lmax, bc):
            f = stripe_radial(nu, m, uth, a, b, bc)[inv]
            if m == 0:
                cols.append(f / np.sqrt(2 * np.pi))
                lm.append((nu, 0))
            else:
                cols.append(f * np.cos(m * phi) / np.sqrt(np.pi))
                lm.append((nu, m))
                cols.append(f * np.sin(m * phi) / np.sqrt(np.pi))
                lm.append((nu, -m))
    if not cols:
        raise InputError(f"{where}: no {bc} mode with degree <= lmax={lmax} on the stripe "
                         f"[{a:.4g}, {b:.4g}] rad; raise lmax (the lowest degree grows as "
                         "the stripe narrows, ~ pi / width)")
    lm_arr = np.asarray(lm, dtype=np.float64)
    # sort by degree, then m (stable; a degree is shared by +m and -m exactly)
    order = np.lexsort((lm_arr[:, 1], np.round(lm_arr[:, 0], 9)))
    return np.stack(cols, axis=-1)[:, order], lm_arr[order]


# -- spherical Fourier-Bessel radial modes ------------------------------------------------
def _sph_jy(nu: float, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """``j_nu, y_nu`` and their derivatives in ``x`` (real order, ``x > 0``)."""
    from scipy.special import jv, jvp, yv, yvp

    x = np.asarray(x, np.float64)
    s = np.sqrt(np.pi / (2 * x))
    o = nu + 0.5
    J, Y = jv(o, x), yv(o, x)
    return s * J, s * (jvp(o, x) - J / (2 * x)), s * Y, s * (yvp(o, x) - Y / (2 * x))


def fourier_bessel_k(nu: float, r_min: float, r_max: float, nk: int,
                     bc: str = "dirichlet") -> np.ndarray:
    """First ``nk`` radial wavenumbers of the shell ``r_min <= r <= r_max``.

    Roots in ``k`` of ``j(k a) y(k b) - j(k b) y(k a)`` (Dirichlet) or of the same with
    ``r``-derivatives (Neumann). Neumann with ``nu = 0`` starts with ``k = 0`` (constant).

    Parameters
    ----------
    nu : float
        Angular degree (real, >= 0).
    r_min, r_max : float
        Shell bounds, Mpc, ``0 < r_min < r_max``.
    nk : int
    bc : {"dirichlet", "neumann"}

    Returns
    -------
    ndarray (nk,), Mpc^-1
    """
    from scipy.optimize import brentq

    where = "fourier_bessel_k"
    bc = _check_bc(bc, where)
    if not (0 < r_min < r_max and np.isfinite(r_max)):
        raise InputError(f"{where}: need 0 < r_min < r_max (Mpc), received r_min={r_min!r}, "
                         f"r_max={r_max!r}")
    if not (isinstance(nk, (int, np.integer)) and nk >= 1):
        raise InputError(f"{where}: nk must be a positive int, received {nk!r}")
    k = 0 if bc == "dirichlet" else 1

    def h(kk: float) -> float:
        sa, sb = _sph_jy(nu, kk * r_min), _sph_jy(nu, kk * r_max)
        return float(sa[k] * sb[2 + k] - sb[k] * sa[2 + k])

    out = [0.0] if (bc == "neumann" and nu == 0.0) else []
    dk = np.pi / (r_max - r_min) / 16
    k0 = dk / 2
    while len(out) < nk:
        grid = k0 + dk * np.arange(256)
        vals = np.array([h(v) for v in grid])
        for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
            out.append(brentq(h, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15, maxiter=200))
            if len(out) == nk:
                break
        k0 = grid[-1]
    return np.asarray(out[:nk], dtype=np.float64)


def fourier_bessel_radial(nu: float, k: float, r: Any, r_min: float, r_max: float,
                          bc: str = "dirichlet") -> np.ndarray:
    """Normalised radial mode ``g(r) = A j_nu(k r) + B y_nu(k r)``, Mpc^-3/2.

    ``int_{r_min}^{r_max} g^2 r^2 dr = 1``; positive at its largest magnitude.

    Parameters
    ----------
    nu : float
    k : float
        From :func:`fourier_bessel_k`, Mpc^-1.
    r : array, Mpc
    r_min, r_max : float, Mpc
    bc : {"dirichlet", "neumann"}

    Returns
    -------
    ndarray, shape of ``r``, float64
    """
    bc = _check_bc(bc, "fourier_bessel_radial")
    r = np.asarray(r, np.float64)
    x, w = _leggauss(_nquad(4 * k * (r_max - r_min) + 64))
    rq = 0.5 * (r_max - r_min) * x + 0.5 * (r_max + r_min)
    if k == 0.0:
        g, gq = np.ones_like(r), np.ones_like(rq)
    else:
        i = 0 if bc == "dirichlet" else 1
        sa, sb = _sph_jy(nu, k * r_min), _sph_jy(nu, k * r_max)
        va, vb = np.array([sa[2 + i], -sa[i]]), np.array([sb[2 + i], -sb[i]])
        A, B = va if np.linalg.norm(va) >= np.linalg.norm(vb) else vb
        sq, s = _sph_jy(nu, k * rq), _sph_jy(nu, k * r)
        gq, g = A * sq[0] + B * sq[2], A * s[0] + B * s[2]
    nrm2 = 0.5 * (r_max - r_min) * float(np.sum(w * gq * gq * rq * rq))
    sign = float(np.sign(gq[np.argmax(np.abs(gq))]))
    return sign * g / np.sqrt(nrm2)


# -- HDF5 cache --------------------------------------------------------------------------
def _spec_key(spec: dict, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def _cached(kind: str, spec: dict, arrays: list[np.ndarray], compute: Callable[[], dict],
            cache_dir: Any) -> dict:
    """``compute()`` (a dict of arrays), or its copy in ``cache_dir`` keyed by ``spec``."""
    if cache_dir is None:
        return compute()
    import h5py

    key = _spec_key(spec, arrays)
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(os.fspath(cache_dir), f"linlim_{kind}_{key[:32]}.h5")
    if os.path.exists(path):
        with h5py.File(path, "r") as fh:
            if fh.attrs.get("key") == key:
                return {name: fh[name][()] for name in fh}
    out = compute()
    tmp = f"{path}.{os.getpid()}.tmp"
    with h5py.File(tmp, "w") as fh:
        fh.attrs["key"] = key
        fh.attrs["spec"] = json.dumps(spec, sort_keys=True, default=str)
        for name, val in out.items():
            fh.create_dataset(name, data=val)
    os.replace(tmp, path)  # atomic: readers never see a half-written file
    return out


def _targets(ra: Any, dec: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    from .signal import _radec

    return _radec(ra, dec, where)


# -- operators ---------------------------------------------------------------------------
class _StripeBasis(LinearOperator):
    """Shared set-up: targets, stripe harmonics ``Y`` (cached), keyword checks."""

    _abstract = True

    def _setup_angular(self, ra: Any, dec: Any, theta_min: float, theta_max: float,
                       lmax: float, mmax: int | None, bc: str, cache_dir: Any,
                       where: str) -> np.ndarray:
        ra, dec = _targets(ra, dec, where)
        a, b = _check_bounds(theta_min, theta_max, where)
        bc = _check_bc(bc, where)
        lmax, mmax = _check_lmax(lmax, mmax, where)
        spec = {"what": "stripe_harmonics", "theta_min": a, "theta_max": b, "lmax": lmax,
                "mmax": mmax, "bc": bc, "n": int(ra.size), "version": 1}

        def compute() -> dict:
            Y, lm = stripe_harmonics(np.pi / 2 - dec, ra, a, b, lmax, mmax, bc)
            return {"Y": Y, "lm": lm}

        got = _cached("stripe", spec, [ra, dec], compute, cache_dir)
        self.ra, self.dec = ra, dec
        self.theta_min, self.theta_max, self.lmax, self.mmax, self.bc = a, b, lmax, mmax, bc
        self.lm = got["lm"]
        self._Y_np = got["Y"]
        return got["Y"]

    @classmethod
    def from_healpix(cls, nside: int, pixels: Any, *args: Any, **kwargs: Any) -> Any:
        """Build on HEALPix RING pixel centres (equatorial): ``ra = phi``,
        ``dec = pi/2 - theta``; remaining arguments as the constructor after ``dec``."""
        from .signal import healpix_radec

        ra, dec = healpix_radec(nside, np.asarray(pixels, dtype=np.int64))
        return cls(ra, dec, *args, **kwargs)


class StripeHarmonicFreqBasis(_StripeBasis):
    """Stripe harmonics times frequency modes at target positions.

    ``T[p, f] = sum_a Y_a(p) sum_k C[a, k] B[f, k]``, K.

    Parameters
    ----------
    ra, dec : array, shape (Ntarget,)
        Target positions (radians or astropy Quantities) inside the stripe
        (``pi/2 - dec`` in ``[theta_min, theta_max]``).
    freqs : array, shape (Nfreq,), Hz
    theta_min, theta_max : float
        Stripe colatitude bounds, radians (see :func:`stripe_theta_range`).
    lmax : float
        Largest degree kept.
    nk : int
        Frequency modes (:func:`linlim.sky.signal.frequency_modes`).
    freq_modes : {"dct", "fourier"}
    mmax : int, optional
    bc : {"dirichlet", "neumann"}
    dtype : float64 (default) or complex128
    xp : array module, optional
    cache_dir : path, optional
        Directory of the HDF5 mode-matrix cache (off by default).

    Attributes
    ----------
    lm : ndarray (Nmodes, 2) float64
        ``(nu, m)`` of each angular mode.
    matrix : (Ntarget, Nmodes) on the backend
    freq_basis : ndarray (Nfreq, Nk)

    Notes
    -----
    ``T = Y C B^T``; adjoint ``C' = Y^T T' B`` (``Y``, ``B`` real):
    ``Re tr((Y C B^T)^H T') = Re tr(C^H Y^T T' B)``.

    Examples
    --------
    >>> import numpy as np
    >>> ra, dec = np.linspace(0, 6, 50), np.linspace(-0.3, 0.3, 50)
    >>> op = StripeHarmonicFreqBasis(ra, dec, np.linspace(1e8, 1.1e8, 8),
    ...                              *stripe_theta_range(-0.3, 0.3), lmax=8, nk=2)
    >>> op.out_shape
    (50, 8)
    """

    _abstract = False

    def __init__(self, ra: Any, dec: Any, freqs: Any, theta_min: float, theta_max: float,
                 lmax: float, nk: int, freq_modes: str = "dct", mmax: int | None = None,
                 bc: str = "dirichlet", dtype: Any = np.float64, xp: Any = None,
                 cache_dir: Any = None) -> None:
        from .signal import _check_freqs, frequency_modes

        where = "StripeHarmonicFreqBasis"
        xp = get_xp() if xp is None else xp
        Y = self._setup_angular(ra, dec, theta_min, theta_max, lmax, mmax, bc, cache_dir,
                                where)
        self.freqs = _check_freqs(freqs, where)
        B = frequency_modes(self.freqs.size, nk, freq_modes)
        super().__init__((Y.shape[1], nk), (Y.shape[0], self.freqs.size), dtype, dtype,
                         xp=xp, name=where)
        self.nk, self.freq_kind, self.freq_basis = int(nk), freq_modes, B
        self.matrix = asarray(Y, xp)
        self._YT = asarray(np.ascontiguousarray(Y.T), xp)
        self._B = asarray(B, xp)

    def _matvec(self, c: Any) -> Any:
        return self.matrix @ (c @ self._B.T)  # T[p, f] = Y[p, a] C[a, k] B[f, k]

    def _rmatvec(self, t: Any) -> Any:
        return (self._YT @ t) @ self._B  # C'[a, k] = Y[p, a] T'[p, f] B[f, k]


class SphericalFourierBesselBasis(_StripeBasis):
    """Spherical Fourier-Bessel modes of a stripe shell at target positions and channels.

    ``T[p, f] = sum_a Y_a(p) sum_n C[a, n] g_{nu_a n}(r_f)``, K, with ``r_f`` the comoving
    distance of channel ``f`` (21 cm) and ``g`` the normalised radial modes
    (:func:`fourier_bessel_radial`) of each angular mode's own degree ``nu_a``.

    Parameters
    ----------
    ra, dec, theta_min, theta_max, lmax, mmax, bc : as :class:`StripeHarmonicFreqBasis`
    freqs : array, shape (Nfreq,), Hz (below 1420.405751768 MHz)
    nk : int
        Radial modes per angular mode.
    radial_bc : {"dirichlet", "neumann"}
        Condition at ``r_min`` and ``r_max``.
    r_min, r_max : float, optional
        Shell bounds, Mpc; default the distances of the extreme channels. Must enclose
        every channel.
    cosmo : astropy.cosmology.Cosmology, optional (Planck18)
    dtype, xp, cache_dir : as :class:`StripeHarmonicFreqBasis`

    Attributes
    ----------
    lm : ndarray (Nmodes, 2)
    k : ndarray (Nmodes, Nk), Mpc^-1
        Radial wavenumber of each coefficient.
    r : ndarray (Nfreq,), Mpc
    radial : ndarray (Nmodes, Nk, Nfreq)
        ``g_{nu_a n}(r_f)``.

    Notes
    -----
    Forward ``S[a, f] = sum_n C[a, n] G[a, n, f]``, ``T = Y S``. Adjoint (all real):
    ``S' = Y^T T'``, ``C'[a, n] = sum_f G[a, n, f] S'[a, f]``, since
    ``Re sum_pf conj(T) T' = Re sum_an conj(C[a, n]) sum_f G[a, n, f] (Y^T T')[a, f]``.
    """

    _abstract = False

    def __init__(self, ra: Any, dec: Any, freqs: Any, theta_min: float, theta_max: float,
                 lmax: float, nk: int, radial_bc: str = "dirichlet",
                 r_min: float | None = None, r_max: float | None = None, cosmo: Any = None,
                 mmax: int | None = None, bc: str = "dirichlet", dtype: Any = np.float64,
                 xp: Any = None, cache_dir: Any = None) -> None:
        from .signal import _check_freqs, comoving_distance

        where = "SphericalFourierBesselBasis"
        xp = get_xp() if xp is None else xp
        Y = self._setup_angular(ra, dec, theta_min, theta_max, lmax, mmax, bc, cache_dir,
                                where)
        self.freqs = _check_freqs(freqs, where)
        radial_bc = _check_bc(radial_bc, where)
        if not (isinstance(nk, (int, np.integer)) and nk >= 1):
            raise InputError(f"{where}: nk must be a positive int, received {nk!r}")
        r = comoving_distance(self.freqs, cosmo)
        r_min = float(r.min()) if r_min is None else float(r_min)
        r_max = float(r.max()) if r_max is None else float(r_max)
        if not (0 < r_min < r_max and r_min <= r.min() * (1 + 1e-12)
                and r_max >= r.max() * (1 - 1e-12)):
            raise InputError(f"{where}: need 0 < r_min < r_max enclosing the channel distances "
                             f"[{r.min():.6g}, {r.max():.6g}] Mpc, received r_min={r_min}, "
                             f"r_max={r_max}")
        spec = {"what": "fourier_bessel", "radial_bc": radial_bc, "r_min": r_min,
                "r_max": r_max, "nk": int(nk), "version": 1}

        def compute() -> dict:
            nus = np.unique(self.lm[:, 0])
            ks = {nu: fourier_bessel_k(nu, r_min, r_max, int(nk), radial_bc) for nu in nus}
            kk = np.stack([ks[nu] for nu in self.lm[:, 0]])
            G = {nu: np.stack([fourier_bessel_radial(nu, q, r, r_min, r_max, radial_bc)
                               for q in ks[nu]]) for nu in nus}
            return {"k": kk, "radial": np.stack([G[nu] for nu in self.lm[:, 0]])}

        got = _cached("sfb", spec, [self.lm, r], compute, cache_dir)
        super().__init__((Y.shape[1], nk), (Y.shape[0], self.freqs.size), dtype, dtype,
                         xp=xp, name=where)
        self.nk, self.radial_bc, self.r, self.r_min, self.r_max = (int(nk), radial_bc, r,
                                                                   r_min, r_max)
        self.k, self.radial = got["k"], got["radial"]
        self.matrix = asarray(Y, xp)
        self._YT = asarray(np.ascontiguousarray(Y.T), xp)
        self._G = asarray(self.radial, xp)

    def _matvec(self, c: Any) -> Any:
        S = (c[:, :, None] * self._G).sum(axis=1)  # S[a, f] = C[a, n] G[a, n, f]
        return self.matrix @ S

    def _rmatvec(self, t: Any) -> Any:
        Sp = self._YT @ t  # S'[a, f] = Y[p, a] T'[p, f]
        return (self._G * Sp[:, None, :]).sum(axis=2)  # C'[a, n] = G[a, n, f] S'[a, f]
