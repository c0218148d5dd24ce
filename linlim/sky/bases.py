"""The 21 cm signal bases: ``T[p, f] = S C B^T`` with a spatial matrix ``S`` and
frequency modes ``B``, each a LinearOperator with an exact adjoint and a prior covariance
implied by a 3-D power spectrum (see :mod:`linlim.sky.signal` for the overview); and the
K -> Jy per pixel operator that feeds their output to the RIME."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import asarray, get_xp, scatter_add
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator
from ..operators.linear import Diagonal
from ..units import rayleigh_jeans_factor
from .cosmology import _check_freqs, _uniform_spacing, cosmo_scalars
from .freq_modes import frequency_modes, mode_k_parallel
from .geometry import _radec, _unit_vectors, real_spherical_harmonics

__all__ = [
    "HealpixFreqBasis",
    "SphericalHarmonicFreqBasis",
    "dense_coefficient_covariance",
    "kelvin_to_jy_per_pixel",
]


class _SignalBasis(LinearOperator):
    """Shared pieces of the ``spatial x frequency`` bases: ``T = S C B^T``."""

    _abstract = True

    def _setup_freq(self, freqs: Any, nk: int, freq_modes: str, where: str) -> np.ndarray:
        self.freqs = _check_freqs(freqs, where)
        self.nk, self.freq_kind = int(nk), freq_modes
        B = frequency_modes(self.freqs.size, nk, freq_modes)
        self.freq_basis = B
        return B

    def k_parallel(self, cosmo: Any = None) -> np.ndarray:
        """Line-of-sight wavenumber of each frequency mode, shape (Nk,), Mpc^-1."""
        return mode_k_parallel(self.freqs, self.nk, self.freq_kind, cosmo)

    def _spatial_dense(self) -> np.ndarray:
        """The spatial matrix ``S`` (Ntarget, Nspace) of ``T = S C B^T``, NumPy."""
        raise NotImplementedError

    #: The basis' own ``prior_covariance`` method besides ``"projection"``.
    _own_method = ""

    def _covariance(self, pk: Callable, cosmo: Any, method: str, kperp_max: float | None,
                    max_targets: int) -> np.ndarray:
        """``prior_covariance`` by ``method``: ``"projection"`` or the basis' own."""
        if method == "projection":
            return self._projected_covariance(pk, cosmo, kperp_max, max_targets)
        if method != self._own_method:
            raise InputError(f"{self.name}.prior_covariance: method must be 'projection' or "
                             f"{self._own_method!r}, received {method!r}")
        return self._own_covariance(pk, cosmo)

    def _own_covariance(self, pk: Callable, cosmo: Any) -> np.ndarray:
        raise NotImplementedError

    def prior_variance(self, pk: Callable, cosmo: Any = None, **kwargs: Any) -> np.ndarray:
        """Diagonal of :meth:`prior_covariance`, shape (Nspace, Nk) (Nspace: low-resolution
        pixels or harmonics), K^2."""
        cov = self.prior_covariance(pk, cosmo, **kwargs)
        return np.diagonal(cov, axis1=1, axis2=2).T.copy()

    def _projected_covariance(self, pk: Callable, cosmo: Any, kperp_max: float | None,
                              max_targets: int) -> np.ndarray:
        """``Cov C[., k] = S^+ xi_k(|x_p - x_q|) S^+T`` (see ``prior_covariance``)."""
        return self._projected_covariance_multi([pk], cosmo, kperp_max, max_targets)[0]

    def _projector(self) -> Callable:
        """``Xi -> S^+ Xi S^+T`` for symmetric target matrices ``Xi`` (Ntarget, Ntarget)."""
        Splus = np.linalg.pinv(self._spatial_dense())  # (Nspace, Ntarget)
        return lambda Xi: Splus @ Xi @ Splus.T

    def _projected_covariance_multi(self, pks: Any, cosmo: Any, kperp_max: float | None,
                                    max_targets: int) -> np.ndarray:
        """:meth:`_projected_covariance` for several spectra, sharing the geometry (target
        separations, Bessel table, projector): shape (Npk, Nk, Nspace, Nspace)."""
        from scipy.special import j0

        where = f"{self.name}.prior_covariance"
        nt = self.ra.size
        if nt > max_targets:
            raise InputError(f"{where}: {nt} targets exceed max_targets={max_targets} "
                             "(the target covariance is dense); raise it or use another method")
        X, _ = cosmo_scalars(self.freqs, cosmo)
        n = _unit_vectors(self.ra, self.dec)
        sep = X * np.sqrt(np.maximum(((n[:, None, :] - n[None, :, :]) ** 2).sum(-1), 0.0))
        pos = sep[sep > 0]
        smin = pos.min() if pos.size else X * 1e-3
        smax = max(sep.max(), smin)
        kmax = np.pi / smin if kperp_max is None else float(kperp_max)
        dk = np.pi / (4 * smax)
        k1 = min(kmax, 4000 * dk)
        kp = np.unique(np.concatenate([np.linspace(0, k1, int(round(k1 / dk)) + 2),
                                       np.geomspace(max(k1, 1e-12), max(kmax, k1), 2000)]))
        sg = np.concatenate([[0.0], np.geomspace(smin / 4, smax * 1.001, 600)])
        J = j0(np.outer(sg, kp))  # (Ns, Nkp)
        project = self._projector()
        ns = self.in_shape[0]
        out = np.empty((len(pks), self.nk, ns, ns))
        for i, pk in enumerate(pks):
            peff = self._los_power(pk, kp, cosmo, kmax)  # (Nk, Nkp)
            for k in range(self.nk):
                xi = np.trapezoid(J * (kp * peff[k] / (2 * np.pi))[None, :], kp, axis=1)
                out[i, k] = project(np.interp(sep, sg, xi))
        return out

    def prior_covariance_bands(self, pks: Any, cosmo: Any = None, **kwargs: Any
                               ) -> np.ndarray:
        """:meth:`prior_covariance` of several spectra at once, (Npk, Nk, Nspace, Nspace).

        With ``method="projection"`` the geometry is computed once for all spectra (e.g.
        the top-hat bands of :class:`~linlim.sky.bandpower.BandPowerCovariance`); other
        methods call :meth:`prior_covariance` per spectrum."""
        import inspect

        method = kwargs.get(
            "method", inspect.signature(self.prior_covariance).parameters["method"].default)
        if method == "projection":
            return self._projected_covariance_multi(list(pks), cosmo,
                                                    kwargs.get("kperp_max"),
                                                    kwargs.get("max_targets", 8000))
        return np.stack([self.prior_covariance(pk, cosmo, **kwargs) for pk in pks])

    def _los_power(self, pk: Callable, kperp: np.ndarray, cosmo: Any,
                   kmax: float | None = None) -> np.ndarray:
        """Line-of-sight-projected power of each frequency mode, K^2 Mpc^2.

        ``P_k(k_perp) = int dk_z / (2 pi) |B~_k(k_z)|^2 P(sqrt(k_perp^2 + k_z^2))`` with
        ``B~_k(k_z) = sum_n B[n, k] exp(i k_z n dr)`` the mode's line-of-sight window
        (``int dk_z / 2 pi |B~_k|^2 = 1 / dr`` over one alias period), so a coefficient's
        transverse 2-D power is ``P_k``. The ``k_z`` integral runs over
        ``|k_z| <= max(kmax, pi / dr)``: by default the field is taken as band-limited at
        the channel resolution (one alias period; white noise then gives ``P / dr``);
        a larger ``kmax`` adds the aliases of finer line-of-sight structure.

        Returns
        -------
        ndarray, shape (Nk, Nkperp)
        """
        dnu = _uniform_spacing(self.freqs, f"{self.name}.prior_covariance")
        _, Y = cosmo_scalars(self.freqs, cosmo)
        dr = Y * dnu
        nf = self.freqs.size
        kzmax = max(np.pi / dr, 0.0 if kmax is None else float(kmax))
        dkz = 2 * np.pi / (nf * dr) / 16
        kz = np.linspace(0.0, kzmax, int(np.ceil(kzmax / dkz)) + 1)
        win = np.abs(np.exp(1j * np.outer(kz, np.arange(nf) * dr)) @ self.freq_basis) ** 2
        out = np.empty((self.nk, np.size(kperp)))
        for i0 in range(0, np.size(kperp), 256):
            kp = np.asarray(kperp, np.float64)[i0:i0 + 256]
            pkk = np.asarray(pk(np.sqrt(kp[:, None] ** 2 + kz[None, :] ** 2)), np.float64)
            # symmetric in k_z: twice the integral over k_z >= 0
            out[:, i0:i0 + 256] = 2 * np.trapezoid(
                pkk[None, :, :] * win.T[:, None, :], kz, axis=-1) / (2 * np.pi)
        return out


class HealpixFreqBasis(_SignalBasis):
    """Low-resolution HEALPix grid times frequency modes, interpolated to target positions.

    ``T[p, f] = sum_j W[p, j] sum_k C[j, k] B[f, k]``, K.

    Parameters
    ----------
    nside_low : int
        ``nside`` of the coefficient grid (RING ordering, equatorial coordinates).
    ra, dec : array, shape (Ntarget,)
        Target positions (radians or astropy Quantities), e.g. the centres of a
        higher-``nside`` HEALPix region (:func:`healpix_radec`) or point sources.
    freqs : array, shape (Nfreq,)
        Channel frequencies, Hz (uniform spacing for ``k_parallel``/``prior_variance``).
    nk : int
        Number of frequency (line-of-sight) modes kept.
    freq_modes : {"dct", "fourier"}
        See :func:`frequency_modes`.
    interp : {"bilinear", "nearest"}
        ``"bilinear"``: ``healpy.get_interp_weights`` (4 neighbours, weights sum to 1);
        ``"nearest"``: the parent pixel containing the target (weight 1).
    low_pixels : array of int, optional
        RING indices of the coefficient pixels; by default every pixel the targets touch.
        Each target's interpolation neighbours must be in this set.
    dtype : dtype
        Coefficient (and output) dtype: float64 (default) or complex128.
    method : {"auto", "sparse", "gather"}
        How the interpolation is applied: a ``scipy.sparse`` CSR matrix (NumPy only) or
        ``take``/``scatter_add`` on index/weight arrays (any backend). ``"auto"`` picks
        sparse on NumPy. Both give the same numbers.

    Attributes
    ----------
    low_pixels : ndarray (Nlow,) int64
    index, weights : arrays (Ntarget, 4)
        Positions in ``low_pixels`` and weights of each target's neighbours (padding
        entries have weight 0).
    freq_basis : ndarray (Nfreq, Nk)

    Notes
    -----
    Forward and adjoint (``W`` and ``B`` are real)::

        S = C B^T               (Nlow, Nfreq)
        T[p] = sum_j w[p, j] S[index[p, j]]
        adjoint:  G[index[p, j]] += w[p, j] T'[p]   (scatter-add, = W^T T')
                  C' = G B

    ``<W C B^T, T'> = Re tr((W C B^T)^H T') = Re tr(C^H W^T T' B) = <C, W^T T' B>``.
    With ``interp="nearest"`` and every target's parent a distinct set of ``n`` children
    per low pixel, ``W^T W = n I``, so ``A^H A = n I`` on the coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.sky.geometry import healpix_radec
    >>> ra, dec = healpix_radec(8, np.arange(40))
    >>> op = HealpixFreqBasis(4, ra, dec, np.linspace(1e8, 1.1e8, 16), nk=3)
    >>> op.out_shape
    (40, 16)
    """

    _abstract = False

    def __init__(self, nside_low: int, ra: Any, dec: Any, freqs: Any, nk: int,
                 freq_modes: str = "dct", interp: str = "bilinear",
                 low_pixels: Any = None, dtype: Any = np.float64, xp: Any = None,
                 method: str = "auto") -> None:
        import healpy as hp

        where = "HealpixFreqBasis"
        xp = get_xp() if xp is None else xp
        if not hp.isnsideok(nside_low):
            raise InputError(f"{where}: nside_low must be a power of 2, received {nside_low!r}")
        ra, dec = _radec(ra, dec, where)
        theta, phi = np.pi / 2 - dec, ra
        if interp == "bilinear":
            pix, w = hp.get_interp_weights(nside_low, theta, phi)
            pix, w = pix.T.astype(np.int64), w.T.astype(np.float64)
        elif interp == "nearest":
            pix = hp.ang2pix(nside_low, theta, phi)[:, None].astype(np.int64)
            w = np.ones(pix.shape)
        else:
            raise InputError(f"{where}: interp must be 'bilinear' or 'nearest', received "
                             f"{interp!r}")
        w = np.where(np.abs(w) < 1e-15, 0.0, w)  # zero weights: neighbour not needed
        if low_pixels is None:
            low = np.unique(pix[w != 0])
        else:
            low = np.unique(np.asarray(low_pixels, dtype=np.int64))
            missing = np.setdiff1d(pix[w != 0], low)
            if missing.size:
                raise InputError(
                    f"{where}: low_pixels misses {missing.size} pixels the targets "
                    f"interpolate from (e.g. {missing[:5].tolist()}); leave low_pixels=None "
                    "to take them all"
                )
        local = np.searchsorted(low, pix)
        local = np.where(w != 0, np.minimum(local, low.size - 1), 0)
        if method not in ("auto", "sparse", "gather"):
            raise InputError(f"{where}: method must be 'auto', 'sparse' or 'gather', "
                             f"received {method!r}")
        if method == "sparse" and xp is not np:
            raise InputError(f"{where}: method='sparse' needs the numpy backend")
        B = self._setup_freq(freqs, nk, freq_modes, where)
        super().__init__((low.size, nk), (ra.size, self.freqs.size), dtype, dtype, xp=xp,
                         name=where)
        self.nside_low, self.interp, self.low_pixels = int(nside_low), interp, low
        self.ra, self.dec = ra, dec
        self._idx_np, self._w_np = local, w
        self.index, self.weights = asarray(local, xp), asarray(w, xp)
        self._B = asarray(B, xp)
        self.method = ("sparse" if xp is np else "gather") if method == "auto" else method
        if self.method == "sparse":
            self._W = self.interpolation_matrix()
            self._WT = self._W.T.tocsr()

    def interpolation_matrix(self) -> Any:
        """The interpolation matrix ``W`` as ``scipy.sparse.csr_matrix`` (Ntarget, Nlow)."""
        import scipy.sparse as sp

        n, k = self._idx_np.shape
        rows = np.repeat(np.arange(n), k)
        return sp.csr_matrix((self._w_np.ravel(), (rows, self._idx_np.ravel())),
                             shape=(n, self.low_pixels.size))

    def _matvec(self, c: Any) -> Any:
        S = c @ self._B.T  # (Nlow, Nfreq)
        if self.method == "sparse":
            return self._W @ S
        return (self.weights[:, :, None] * self.xp.take(S, self.index, axis=0)).sum(axis=1)

    def _rmatvec(self, t: Any) -> Any:
        if self.method == "sparse":
            G = self._WT @ t
        else:
            nf = t.shape[1]
            G = self.xp.zeros((self.low_pixels.size, nf), dtype=t.dtype)
            vals = (self.weights[:, :, None] * t[:, None, :]).reshape(-1, nf)
            G = scatter_add(G, self.index.reshape(-1), vals, axis=0)
        return G @ self._B  # (Nlow, Nk)

    def _spatial_dense(self) -> np.ndarray:
        return self.interpolation_matrix().toarray()

    def _projector(self) -> Callable:
        """``W^+ Xi W^+T`` with ``W^+ = (W^T W)^-1 W^T`` and sparse ``W`` (``W^T Xi W``
        costs ``O(nnz Ntarget)``), or the pseudo-inverse if ``W^T W`` is ill-conditioned."""
        W = self.interpolation_matrix()
        M = (W.T @ W).toarray()
        try:
            L = np.linalg.cholesky(M)
            d = np.abs(np.diag(L))
            ok = d.min() > 1e-6 * d.max()
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            return super()._projector()
        Minv = np.linalg.inv(M)
        Minv = 0.5 * (Minv + Minv.T)
        WT = W.T.tocsr()

        def project(Xi: np.ndarray) -> np.ndarray:
            A = WT @ (WT @ Xi).T  # W^T Xi W (Xi symmetric)
            return Minv @ (0.5 * (A + A.T)) @ Minv

        return project

    def prior_covariance(self, pk: Callable, cosmo: Any = None, method: str = "projection",
                         kperp_max: float | None = None, max_targets: int = 8000
                         ) -> np.ndarray:
        """Prior covariance of the coefficients implied by a 3-D power spectrum, K^2.

        Separable line-of-sight treatment (band-centre distances, no light-cone
        evolution, frequency modes uncorrelated): frequency mode ``k`` sees the projected
        power ``P_k(k_perp) = int dk_z / 2 pi |B~_k(k_z)|^2 P(sqrt(k_perp^2 + k_z^2))``
        (``B~_k`` the mode's window in ``k_z``; ``P / dr`` for white noise, ``dr`` the
        channel depth), and transversely the field at the targets has, for chord
        separation ``s``, the correlation::

            xi_k(s) = int_0^kmax k dk / (2 pi) P_k(k) J0(k s)

        ``method="projection"`` (default): the coefficients are the least-squares
        projection of the target field, ``C = W^+ T``, so
        ``Cov C[., ., k] = W^+ xi_k(S) W^+T`` (dense in the targets: at most
        ``max_targets``). ``kmax`` (``kperp_max``, Mpc^-1) defaults to ``pi / s_min``
        (the targets' own sampling scale); set it to the resolution of the field.

        ``method="disc"``: diagonal, each low pixel a disc of equal area
        ``pi R^2 = Omega_low r_c^2`` averaging the field:
        ``Var = int d^2k / (2 pi)^2 P_k(k) |2 J1(k R) / (k R)|^2``. Cheaper and
        coarser: it models a pixel average, not the point samples the fit sees.

        Parameters
        ----------
        pk : callable
            ``pk(k)`` with ``k`` in Mpc^-1 (array) returning K^2 Mpc^3.
        cosmo : astropy.cosmology.Cosmology, optional (Planck18)
        method : {"projection", "disc"}
        kperp_max : float, optional
        max_targets : int

        Returns
        -------
        ndarray, shape (Nk, Nlow, Nlow), float64, K^2
        """
        return self._covariance(pk, cosmo, method, kperp_max, max_targets)

    _own_method = "disc"

    def _own_covariance(self, pk: Callable, cosmo: Any) -> np.ndarray:
        import healpy as hp
        from scipy.special import j1

        X, _ = cosmo_scalars(self.freqs, cosmo)
        R = X * np.sqrt(hp.nside2pixarea(self.nside_low) / np.pi)
        kp = np.geomspace(1e-4 / R, 200.0 / R, 4000)
        x = kp * R
        win = (2 * j1(x) / x) ** 2

        peff = self._los_power(pk, kp, cosmo)  # (Nk, Nkp)
        f = kp[None, :] * peff * win[None, :] / (2 * np.pi)
        # int f dk = int k f dln k, plus the small-k end (f ~ const k)
        v = np.trapezoid(f * kp, np.log(kp), axis=1) + f[:, 0] * kp[0] / 2
        eye = np.eye(self.low_pixels.size)
        return v[:, None, None] * eye[None]


class SphericalHarmonicFreqBasis(_SignalBasis):
    """Real spherical harmonics times frequency modes at target positions.

    ``T[p, f] = sum_lm Y_lm(p) sum_k C[lm, k] B[f, k]``, K.

    Parameters
    ----------
    lmax : int
    ra, dec : array, shape (Ntarget,)
        Target positions, typically the pixels of the drift-scan stripe
        (:func:`drift_stripe_pixels`, :func:`healpix_radec`), radians.
    freqs : array, shape (Nfreq,), Hz
    nk : int
    freq_modes : {"dct", "fourier"}
    mmax : int, optional
        Largest ``|m|`` kept (default ``lmax``).
    orthonormalize : bool
        Replace the ``Y_lm`` columns by an orthonormal basis of their span over the target
        pixels (``Y = Q R``, thin QR; the basis is ``Q``, ``Q^T Q = I``), so that the
        adjoint inverts the operator on its range. Over a partial-sky stripe the ``Y_lm``
        are not orthogonal and can be ill-conditioned; this fixes both.
    dtype : dtype
        float64 (default) or complex128.

    Attributes
    ----------
    lm : ndarray (Nlm, 2) int
        ``(l, m)`` of each raw ``Y_lm`` column (see :func:`real_spherical_harmonics`).
    matrix : ndarray (Ntarget, Nlm)
        The spatial matrix used (``Y`` or ``Q``), on the backend.
    R : ndarray (Nlm, Nlm) or None
        The triangular factor when ``orthonormalize`` (``C_Y = R^-1 C_Q``).

    Notes
    -----
    Dense mode matrices are built once; ``T = M C B^T`` and ``C' = M^T T' B`` (both
    real), since ``Re tr((M C B^T)^H T') = Re tr(C^H M^T T' B)``.
    """

    _abstract = False

    def __init__(self, lmax: int, ra: Any, dec: Any, freqs: Any, nk: int,
                 freq_modes: str = "dct", mmax: int | None = None,
                 orthonormalize: bool = False, dtype: Any = np.float64,
                 xp: Any = None) -> None:
        where = "SphericalHarmonicFreqBasis"
        xp = get_xp() if xp is None else xp
        ra, dec = _radec(ra, dec, where)
        Y, lm = real_spherical_harmonics(lmax, np.pi / 2 - dec, ra, mmax)
        R = None
        if orthonormalize:
            if ra.size < Y.shape[1]:
                raise InputError(f"{where}: orthonormalize needs at least as many targets "
                                 f"({ra.size}) as harmonics ({Y.shape[1]})")
            Q, R = np.linalg.qr(Y)
            cond = np.abs(np.diag(R))
            if cond.min() <= 1e-10 * cond.max():
                raise InputError(
                    f"{where}: the Y_lm are linearly dependent over these {ra.size} targets "
                    f"(|R_ii| ratio {cond.min() / cond.max():.2g}); lower lmax/mmax or widen "
                    "the stripe"
                )
            M = Q
        else:
            M = Y
        B = self._setup_freq(freqs, nk, freq_modes, where)
        super().__init__((lm.shape[0], nk), (ra.size, self.freqs.size), dtype, dtype, xp=xp,
                         name=where)
        self.lmax, self.mmax = int(lmax), int(lmax if mmax is None else mmax)
        self.lm, self.R, self.orthonormalize = lm, R, bool(orthonormalize)
        self.ra, self.dec = ra, dec
        self._M_np = M
        self.matrix = asarray(M, xp)
        self._MT = asarray(np.ascontiguousarray(M.T), xp)
        self._B = asarray(B, xp)

    def _matvec(self, c: Any) -> Any:
        return self.matrix @ (c @ self._B.T)

    def _rmatvec(self, t: Any) -> Any:
        return (self._MT @ t) @ self._B

    def _spatial_dense(self) -> np.ndarray:
        return self._M_np

    def prior_covariance(self, pk: Callable, cosmo: Any = None, method: str = "harmonic",
                         kperp_max: float | None = None, max_targets: int = 8000
                         ) -> np.ndarray:
        """Prior covariance of the coefficients for each frequency mode, K^2.

        ``method="projection"``: as :meth:`HealpixFreqBasis.prior_covariance` (least-squares
        projection of the target field's correlation, ``M^+ xi_k(S) M^+T``).

        ``method="harmonic"`` (default): flat-sky, thin-shell relation at the
        band-centre distance ``r_c``: the raw ``Y_lm`` coefficient of frequency mode
        ``k`` has variance ``C_l,k = P_k((l + 1/2) / r_c) / r_c^2``, independent of
        ``m`` and uncorrelated, with ``P_k`` the mode's line-of-sight-projected power
        (``_los_power``: ``P(sqrt(k_perp^2 + k_z^2))`` weighted by the mode's window in
        ``k_z``; ``P / dr`` for white noise). With ``orthonormalize`` the coefficients are
        ``R C_Y``, with covariance ``R diag(C_l,k) R^T``.

        Parameters
        ----------
        pk : callable
            ``pk(k)``, k in Mpc^-1, returning K^2 Mpc^3.
        cosmo : astropy.cosmology.Cosmology, optional

        Returns
        -------
        ndarray, shape (Nk, Nlm, Nlm), float64, K^2
        """
        return self._covariance(pk, cosmo, method, kperp_max, max_targets)

    _own_method = "harmonic"

    def _own_covariance(self, pk: Callable, cosmo: Any) -> np.ndarray:
        X, _ = cosmo_scalars(self.freqs, cosmo)
        kperp = (self.lm[:, 0] + 0.5) / X
        diag = self._los_power(pk, kperp, cosmo).T / X**2  # (Nlm, Nk)
        cov = np.stack([np.diag(diag[:, k]) for k in range(self.nk)])
        if self.R is not None:
            cov = self.R[None] @ cov @ self.R.T[None]
        return cov


def dense_coefficient_covariance(cov_blocks: Any) -> np.ndarray:
    """Full covariance of the flattened coefficients from per-mode blocks.

    Coefficients ``C`` of shape ``(Nspace, Nk)`` flatten (C order) to index
    ``j * Nk + k``; modes are uncorrelated, so the result is
    ``Cov[j Nk + k, j' Nk + k'] = delta_kk' cov_blocks[k, j, j']``. Feed it to
    ``linlim.priors.GaussianPrior(cov=...)``.

    Parameters
    ----------
    cov_blocks : array, shape (Nk, Nspace, Nspace), K^2
        From ``basis.prior_covariance(pk)``.

    Returns
    -------
    ndarray, shape (Nspace * Nk, Nspace * Nk), float64, K^2
    """
    c = np.asarray(cov_blocks, np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2]:
        raise ShapeError(f"dense_coefficient_covariance: expected (Nk, Ns, Ns), received "
                         f"{c.shape}")
    nk, ns = c.shape[0], c.shape[1]
    out = np.zeros((ns, nk, ns, nk))
    for k in range(nk):
        out[:, k, :, k] = c[k]
    return out.reshape(ns * nk, ns * nk)


def kelvin_to_jy_per_pixel(npix: int, freqs: Any, pixel_solid_angle: Any,
                           dtype: Any = np.float64, xp: Any = None) -> Diagonal:
    """Linear operator from brightness temperature (K) to intensity per pixel (Jy).

    ``I[p, f] = T[p, f] * 2 k_B nu_f^2 / c^2 * Omega_p * 1e26``: compose it after a signal
    basis to feed the visibility operator (``I[s, f]``, Jy).

    Parameters
    ----------
    npix : int
        Number of pixels (rows of ``T``).
    freqs : array, shape (Nfreq,), Hz
    pixel_solid_angle : float or array (npix,)
        Solid angle of each pixel, sr (``healpy.nside2pixarea(nside)`` for HEALPix).
    dtype : dtype
        Input dtype.

    Returns
    -------
    Diagonal
        ``(npix, Nfreq) -> (npix, Nfreq)``.
    """
    om = np.asarray(pixel_solid_angle, dtype=np.float64)
    if om.ndim > 1 or (om.ndim == 1 and om.size != npix) or np.any(om <= 0):
        raise InputError(f"kelvin_to_jy_per_pixel: pixel_solid_angle must be a positive "
                         f"scalar or ({npix},) array, received shape {om.shape}")
    fac = rayleigh_jeans_factor(freqs)[None, :] * (om[:, None] if om.ndim else om)
    return Diagonal(fac, in_shape=(npix, fac.shape[1]), in_dtype=dtype, xp=xp)
