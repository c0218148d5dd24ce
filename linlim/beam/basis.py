"""A beam expanded in smooth angular modes with frequency-dependent coefficients.

``A[b, d, f] = sum_k sum_j a[b, k, j] B_k(d) P_j(f)``: the unknown chromatic beam a joint
fit recovers. The angular modes ``B_k`` are Zernike polynomials on the disk of direction
cosines ``(l, m) = sin(za) (cos az, sin az)`` (azimuth East towards North), scaled to
``rho = sin(za) / rho_max``; the frequency functions ``P_j`` are Legendre polynomials on
the band mapped to ``[-1, 1]``. The beam is linear in ``a``, so it is a
:class:`~linlim.operators.LinearOperator` with an exact adjoint: two dense matrices built
once at construction and applied by matrix products (GEMM).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import eval_jacobi, eval_legendre

from ..backend import get_xp, to_numpy
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator
from .base import UnpolarizedJones, check_directions, check_freqs, to_xp

__all__ = ["BasisBeam", "zernike_modes", "zernike_matrix", "legendre_matrix"]


def zernike_modes(n_max: int, m_max: int | None = None) -> list[tuple[int, int]]:
    """Zernike mode indices ``(n, m)``, ``0 <= n <= n_max``, ``|m| <= min(n, m_max)``,
    ``n - |m|`` even; ``m > 0`` is ``cos(m az)``, ``m < 0`` is ``sin(|m| az)``.

    Ordered by ``n``, then ``m`` from ``-n`` to ``n``.
    """
    if int(n_max) != n_max or n_max < 0:
        raise InputError(f"zernike_modes: n_max must be an integer >= 0, received {n_max!r}")
    m_max = n_max if m_max is None else m_max
    if int(m_max) != m_max or m_max < 0:
        raise InputError(f"zernike_modes: m_max must be an integer >= 0, received {m_max!r}")
    return [(n, m) for n in range(int(n_max) + 1) for m in range(-n, n + 1, 2)
            if abs(m) <= m_max]


def zernike_matrix(rho: np.ndarray, az: np.ndarray, modes: list[tuple[int, int]]) -> np.ndarray:
    """Orthonormal Zernike polynomials at ``(rho, az)``, shape (N, len(modes)), float64.

    ``Z_n^m = c R_n^|m|(rho) cos(m az)`` (``sin(|m| az)`` for ``m < 0``) with
    ``c = sqrt(n + 1)`` for ``m = 0`` and ``sqrt(2 (n + 1))`` otherwise, so that
    ``(1/pi) int_disk Z Z' = delta``; the radial part is computed stably as
    ``R_n^m(rho) = (-1)^((n-m)/2) rho^m P^(m,0)_((n-m)/2)(1 - 2 rho^2)`` (Jacobi). Zero for
    ``rho > 1``.
    """
    rho = np.asarray(rho, dtype=np.float64)
    az = np.asarray(az, dtype=np.float64)
    out = np.zeros((rho.size, len(modes)))
    inside = rho <= 1.0
    r = np.where(inside, rho, 0.0)
    for k, (n, m) in enumerate(modes):
        am = abs(m)
        s = (n - am) // 2
        radial = (-1.0) ** s * r**am * eval_jacobi(s, am, 0.0, 1.0 - 2.0 * r * r)
        if m == 0:
            out[:, k] = np.sqrt(n + 1.0) * radial
        elif m > 0:
            out[:, k] = np.sqrt(2.0 * (n + 1.0)) * radial * np.cos(am * az)
        else:
            out[:, k] = np.sqrt(2.0 * (n + 1.0)) * radial * np.sin(am * az)
    return out * inside[:, None]


def legendre_matrix(freqs: np.ndarray, order: int, f_lo: float, f_hi: float) -> np.ndarray:
    """Legendre polynomials ``P_j(t)``, ``t = 2 (f - f_lo) / (f_hi - f_lo) - 1``, ``j <= order``.

    Shape (Nfreq, order + 1), float64. For ``f_lo == f_hi``, ``t = 0``.
    """
    f = np.asarray(freqs, dtype=np.float64)
    t = np.zeros_like(f) if f_hi == f_lo else 2.0 * (f - f_lo) / (f_hi - f_lo) - 1.0
    return np.stack([eval_legendre(j, t) for j in range(order + 1)], axis=1)


class BasisBeam(LinearOperator):
    """Beam linear in its coefficients: Zernike modes in angle times Legendre in frequency.

    Parameters
    ----------
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North) and zenith angle, radians.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    n_max : int
        Highest Zernike radial order.
    m_max : int, optional
        Highest azimuthal order (default ``n_max``; 0 gives an azimuthally symmetric beam).
    freq_order : int
        Highest Legendre order in frequency.
    rho_max : float
        The modes cover ``sin(za) <= rho_max`` (``0 < rho_max <= 1``); the beam is 0 beyond,
        and below the horizon.
    freq_range : (float, float), optional
        Band ``(f_lo, f_hi)`` in Hz mapped to ``[-1, 1]`` (default: min and max of
        ``freqs``); fix it to evaluate the same coefficients at other frequencies.
    nbeam : int
        1 shared beam, or one coefficient set per antenna.
    dtype : {"float64", "complex128"}
        Coefficient (and output) dtype; complex coefficients model a complex E-field beam.
    coeffs : array_like (nbeam, Nmodes, freq_order + 1), optional
        Default coefficients used by :meth:`evaluate`/:meth:`jones`.
    xp : module, optional

    Attributes
    ----------
    modes : list of (n, m)
    B : array (Ndir, Nmodes) float64
        Angular mode matrix (zero rows below the horizon / beyond ``rho_max``).
    P : array (Nfreq, freq_order + 1) float64
        Frequency matrix.

    Notes
    -----
    Input ``a``: (nbeam, K, J); output ``A``: (nbeam, Ndir, Nfreq), both ``dtype``.
    Forward ``A[b] = B a[b] P^T``; since ``B`` and ``P`` are real, the adjoint under
    ``Re <., .>`` is ``a[b] = B^T y[b] P``.

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.beam import BasisBeam
    >>> bb = BasisBeam(np.zeros(3), np.array([0.0, 0.2, 0.4]), np.array([1e8, 2e8]),
    ...                n_max=4, m_max=0, freq_order=1)
    >>> bb.in_shape, bb.out_shape
    ((1, 3, 2), (1, 3, 2))
    """

    _abstract = False

    def __init__(self, az: Any, za: Any, freqs: Any, *, n_max: int = 8,
                 m_max: int | None = None, freq_order: int = 3, rho_max: float = 1.0,
                 freq_range: tuple[float, float] | None = None, nbeam: int = 1,
                 dtype: Any = np.float64, coeffs: Any = None, xp: Any = None) -> None:
        az, za = check_directions(az, za, "BasisBeam")
        freqs = check_freqs(freqs, "BasisBeam")
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float64), np.dtype(np.complex128)):
            raise InputError(f"BasisBeam: dtype must be float64 or complex128, received {dtype}")
        if not (0.0 < float(rho_max) <= 1.0):
            raise InputError(f"BasisBeam: rho_max must be in (0, 1], received {rho_max!r}")
        if int(freq_order) != freq_order or freq_order < 0:
            raise InputError(f"BasisBeam: freq_order must be an integer >= 0, "
                             f"received {freq_order!r}")
        if int(nbeam) != nbeam or nbeam < 1:
            raise InputError(f"BasisBeam: nbeam must be a positive integer, received {nbeam!r}")
        self.modes = zernike_modes(n_max, m_max)
        if freq_range is None:
            freq_range = (float(freqs.min()), float(freqs.max()))
        f_lo, f_hi = (float(v) for v in freq_range)
        if not (f_lo <= freqs.min() and freqs.max() <= f_hi):
            raise InputError(f"BasisBeam: freqs [{freqs.min():.6g}, {freqs.max():.6g}] Hz lie "
                             f"outside freq_range ({f_lo:.6g}, {f_hi:.6g})")
        xp = get_xp() if xp is None else xp
        K, J = len(self.modes), int(freq_order) + 1
        super().__init__((int(nbeam), K, J), (int(nbeam), az.size, freqs.size), dtype, dtype,
                         xp=xp, name="BasisBeam")
        self.az, self.za, self.freqs = az, za, freqs
        self.n_max, self.m_max = int(n_max), (int(n_max) if m_max is None else int(m_max))
        self.freq_order, self.rho_max, self.freq_range = int(freq_order), float(rho_max), (
            f_lo, f_hi)
        rho = np.where(za <= 0.5 * np.pi, np.sin(za) / self.rho_max, np.inf)
        self._B_np = zernike_matrix(rho, az, self.modes)
        self._P_np = legendre_matrix(freqs, self.freq_order, f_lo, f_hi)
        self.B = to_xp(self._B_np, xp, np.float64)
        self.P = to_xp(self._P_np, xp, np.float64)
        self.default_params = None if coeffs is None else self._coeffs(coeffs, "coeffs")

    @property
    def nmodes(self) -> int:
        """Number of angular modes ``K``."""
        return len(self.modes)

    def _coeffs(self, c: Any, what: str) -> Any:
        c = np.asarray(to_numpy(c))
        if c.shape != self.in_shape:
            raise ShapeError(f"BasisBeam: {what} must have shape {self.in_shape}, "
                             f"received {c.shape}")
        return to_xp(c.astype(self.in_dtype), self.xp)

    def _matvec(self, x: Any) -> Any:
        return (self.B @ x) @ self.P.T          # (nbeam, Ndir, J) @ (J, Nfreq)

    def _rmatvec(self, y: Any) -> Any:
        return self.B.T @ (y @ self.P)          # (K, Ndir) @ (nbeam, Ndir, J)

    def at(self, az: Any = None, za: Any = None, freqs: Any = None) -> BasisBeam:
        """The same basis (modes, ``rho_max``, ``freq_range``, default coefficients) at other
        directions and/or frequencies (``None`` keeps this operator's)."""
        return BasisBeam(self.az if az is None else az, self.za if za is None else za,
                         self.freqs if freqs is None else freqs, n_max=self.n_max,
                         m_max=self.m_max, freq_order=self.freq_order, rho_max=self.rho_max,
                         freq_range=self.freq_range, nbeam=self.in_shape[0],
                         dtype=self.in_dtype, coeffs=self.default_params, xp=self.xp)

    def evaluate(self, params: Any = None, *, az: Any = None, za: Any = None,
                 freqs: Any = None) -> Any:
        """Beam values (nbeam, Ndir, Nfreq) at coefficients ``params`` (default: ``coeffs``
        given at construction or set by :meth:`fit`); at ``az``, ``za``, ``freqs`` if given
        (frequencies inside ``freq_range``)."""
        if az is not None or za is not None or freqs is not None:
            return self.at(az, za, freqs).evaluate(params)
        if params is None:
            if self.default_params is None:
                raise InputError("BasisBeam.evaluate: no params given and no default coeffs")
            params = self.default_params
        return self.matvec(params)

    def jones(self, params: Any = None) -> Any:
        """Jones form (nbeam, 2 [feed], 2 [az, za], Ndir, Nfreq) complex128, ``A/sqrt(2)``
        in every entry (an unpolarised beam, as pyuvdata fills its analytic beams)."""
        return self.jones_operator().forward(self.evaluate(params))

    def jones_operator(self) -> LinearOperator:
        """:class:`~linlim.beam.base.UnpolarizedJones` taking this beam's output."""
        nb, nd, nf = self.out_shape
        return UnpolarizedJones(nb, nd, nf, self.in_dtype, xp=self.xp)

    def fit(self, target: Any, weights: Any = None, rcond: float | None = None,
            set_default: bool = True) -> Any:
        """Least-squares coefficients reproducing ``target`` (e.g. an Airy beam).

        Parameters
        ----------
        target : array, shape (nbeam, Ndir, Nfreq) or (Ndir, Nfreq)
            Beam values at this operator's directions and frequencies (any backend).
        weights : array_like, shape (Ndir,), optional
            Non-negative weight per direction (e.g. 1 inside the main lobe, 0 elsewhere).
        rcond : float, optional
            Cut-off for small singular values (``numpy.linalg.pinv``).
        set_default : bool
            Store the result as the default coefficients.

        Returns
        -------
        array, shape (nbeam, K, J), this operator's dtype and backend

        Notes
        -----
        ``min_a sum_b sum_{d,f} w_d |(B a_b P^T - T_b)[d, f]|^2`` separates: with
        ``W = diag(sqrt w)``, ``a_b = (W B)^+ W T_b (P^T)^+`` (the pseudo-inverse of a
        Kronecker product is the Kronecker product of the pseudo-inverses). Computed on the
        CPU with NumPy.
        """
        t = np.asarray(to_numpy(target))
        nb, nd, nf = self.out_shape
        if t.shape == (nd, nf):
            t = np.broadcast_to(t, (nb, nd, nf))
        if t.shape != (nb, nd, nf):
            raise ShapeError(f"BasisBeam.fit: target must have shape {(nb, nd, nf)} or "
                             f"{(nd, nf)}, received {t.shape}")
        if not np.all(np.isfinite(t)):
            raise InputError("BasisBeam.fit: target contains NaN or inf")
        w = np.ones(nd) if weights is None else np.asarray(to_numpy(weights), dtype=np.float64)
        if w.shape != (nd,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InputError(f"BasisBeam.fit: weights must be finite, non-negative, shape "
                             f"({nd},), received shape {w.shape}")
        sw = np.sqrt(w)
        kw = {} if rcond is None else {"rcond": rcond}
        Bp = np.linalg.pinv(sw[:, None] * self._B_np, **kw)     # (K, Ndir)
        Pp = np.linalg.pinv(self._P_np, **kw)                    # (J, Nfreq)
        a = Bp @ (sw[None, :, None] * t) @ Pp.T
        if np.dtype(self.in_dtype).kind == "f":
            if np.iscomplexobj(a):
                raise InputError("BasisBeam.fit: complex target for real (float64) "
                                 "coefficients; build the BasisBeam with dtype='complex128'")
        out = self._coeffs(a, "fitted coefficients")
        if set_default:
            self.default_params = out
        return out
