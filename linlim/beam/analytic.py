"""Analytic primary beams (Airy, Gaussian) as differentiable operators of their widths.

Each beam is ``Profile @ WidthModel``: a chromatic width model
(:mod:`linlim.beam.chromatic`) maps the fitted parameters ``p`` (Nbeam, P) to a width per
beam and frequency ``w`` (Nbeam, Nfreq), and a profile maps ``w`` to the unpolarised
E-field beam ``A`` (Nbeam, Ndir, Nfreq) float64 at directions fixed at construction. The
chain rule is :class:`~linlim.operators.Composition`'s.

Normalisation (see :mod:`linlim.beam.base`): ``A`` is ``sqrt(2)`` times the value pyuvdata
puts in each E-field component of its ``AiryBeam``/``GaussianBeam``, i.e. ``A = 2 J1(x)/x``
and ``A = exp(-za^2 / (2 sigma^2))``; ``V_xx = 0.5 I A_i A_j``. matvis' unpolarised mode
uses ``sqrt(power) = |A|``: identical visibilities for identical beams, and for per-antenna
beams wherever the two ``A`` have the same sign (everywhere for Gaussians; inside the
first null for Airy beams, beyond it matvis' ``|A_i| |A_j|`` differs from the
``A_i A_j`` of pyuvsim and of matvis' polarised mode, which this module follows).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..backend import get_xp
from ..errors import InputError, ShapeError
from ..operators.base import LinearOperator, Operator
from ..operators.composite import Composition, compose
from .base import (
    SPEED_OF_LIGHT,
    UnpolarizedJones,
    airy_and_derivative,
    check_directions,
    check_freqs,
    to_xp,
)
from .chromatic import DiameterToSigma, PolynomialWidth, PowerLawWidth

__all__ = ["AiryProfile", "GaussianProfile", "AiryBeam", "GaussianBeam"]


class _ProfileJacobian(LinearOperator):
    """``dA = G * dw[:, None, :]``; adjoint ``dw = sum_d G * y`` (G real, cached at w)."""

    _abstract = True  # built only by a profile's linearize; checked through its parent

    def __init__(self, parent: Operator, grad: Any) -> None:
        super().__init__(parent.in_shape, parent.out_shape, np.float64, np.float64,
                         parent.xp, name=f"J[{parent.name}]")
        self.grad = grad

    def _matvec(self, x: Any) -> Any:
        return self.grad * x[:, None, :]

    def _rmatvec(self, y: Any) -> Any:
        return (self.grad * y).sum(axis=1)


class _Profile(Operator):
    """Common set-up of the profiles: directions, frequencies, horizon mask."""

    _abstract = True
    width_name: ClassVar[str] = "width"

    def __init__(self, az: Any, za: Any, freqs: Any, nbeam: int = 1, xp: Any = None) -> None:
        name = type(self).__name__
        az, za = check_directions(az, za, name)
        freqs = check_freqs(freqs, name)
        if int(nbeam) != nbeam or nbeam < 1:
            raise InputError(f"{name}: nbeam must be a positive integer, received {nbeam!r}")
        xp = get_xp() if xp is None else xp
        super().__init__((int(nbeam), freqs.size), (int(nbeam), az.size, freqs.size),
                         np.float64, np.float64, xp=xp, name=name)
        self.az, self.za, self.freqs = az, za, freqs
        # 1 above (or on) the horizon, 0 below: sources below it contribute nothing
        self.visible = to_xp((za <= 0.5 * np.pi).astype(np.float64), xp)

    def _check_width(self, w: Any) -> None:
        xp = self.xp
        bad = ~(w > 0.0) | ~xp.isfinite(w)
        if bool(xp.any(bad)):
            b, f = (int(i) for i in xp.argwhere(bad)[0])
            raise InputError(
                f"{self.name}: {self.width_name} must be positive and finite at every "
                f"frequency, received {float(w[b, f])!r} for beam {b} at frequency index {f}")

    def _values(self, w: Any, derivative: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def _forward(self, x: Any) -> Any:
        return self._values(x, False)[0]

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        a, g = self._values(x, True)
        return a, _ProfileJacobian(self, g)


class AiryProfile(_Profile):
    """Airy E-field beam of a (chromatic) dish diameter: ``A = 2 J1(x) / x``.

    Parameters
    ----------
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North) and zenith angle, radians.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    nbeam : int
        Number of beams.
    xp : module, optional

    Notes
    -----
    Input ``D``: (nbeam, Nfreq) float64, metres. Output ``A``: (nbeam, Ndir, Nfreq)
    float64, ``A = h_d a(x)`` with ``x = pi D sin(za) f / c`` (pyuvdata's
    ``(D/2) sin(za) 2 pi f / c``), ``a(x) = 2 J1(x)/x``, ``a(0) = 1``, and ``h_d = 0`` below
    the horizon. ``dA/dD = h_d a'(x) pi sin(za) f / c`` with ``a'(x) = -2 J2(x)/x``
    (:func:`~linlim.beam.base.airy_and_derivative`); jvp ``dA = (dA/dD) dD[:, None, :]``,
    vjp ``dD = sum_d (dA/dD) dy``.
    """

    _abstract = False
    width_name = "diameter"

    def __init__(self, az: Any, za: Any, freqs: Any, nbeam: int = 1, xp: Any = None) -> None:
        super().__init__(az, za, freqs, nbeam, xp)
        xp = self.xp
        self.sin_za = to_xp(np.sin(self.za), xp, np.float64)
        self.k = to_xp(np.pi * self.freqs / SPEED_OF_LIGHT, xp, np.float64)

    def _values(self, w: Any, derivative: bool) -> tuple[Any, Any]:
        self._check_width(w)
        kd = self.k[None, :] * w                     # (nbeam, nfreq)
        x = self.sin_za[None, :, None] * kd[:, None, :]
        a, da = airy_and_derivative(x, self.xp, derivative)
        h = self.visible[None, :, None]
        if not derivative:
            return h * a, None
        return h * a, (h * self.sin_za[None, :, None]) * self.k[None, None, :] * da


class GaussianProfile(_Profile):
    """Gaussian E-field beam of a (chromatic) width: ``A = exp(-za^2 / (2 sigma^2))``.

    Parameters
    ----------
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North) and zenith angle, radians.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    nbeam : int
    sigma_scale : float
        The profile uses ``sigma_e = sigma_scale * w``: 1 when ``w`` is the E-field sigma
        (pyuvdata's ``sigma_type="efield"``), ``sqrt(2)`` when ``w`` is the power-beam
        sigma (``sigma_type="power"``).
    xp : module, optional

    Notes
    -----
    Input ``w``: (nbeam, Nfreq) float64 radians. Output ``A = h_d exp(-za^2 / (2 s^2 w^2))``
    (nbeam, Ndir, Nfreq) float64, the square root of pyuvdata's power beam
    ``exp(-za^2/sigma_e^2)``. ``dA/dw = A za^2 / (s^2 w^3)``; jvp/vjp as for
    :class:`AiryProfile`.
    """

    _abstract = False
    width_name = "sigma"

    def __init__(self, az: Any, za: Any, freqs: Any, nbeam: int = 1,
                 sigma_scale: float = 1.0, xp: Any = None) -> None:
        super().__init__(az, za, freqs, nbeam, xp)
        self.sigma_scale = float(sigma_scale)
        self.za2 = to_xp(self.za**2 / self.sigma_scale**2, self.xp, np.float64)

    def _values(self, w: Any, derivative: bool) -> tuple[Any, Any]:
        self._check_width(w)
        inv2 = 1.0 / (w * w)                          # (nbeam, nfreq)
        q = self.za2[None, :, None] * inv2[:, None, :]
        a = self.visible[None, :, None] * self.xp.exp(-0.5 * q)
        if not derivative:
            return a, None
        return a, a * q / w[:, None, :]


class _AnalyticBeam(Composition):
    """``Profile @ WidthModel`` with named parameters, ``evaluate`` and ``jones``."""

    _abstract = True
    width_name: ClassVar[str] = "width"

    def _build(self, profile: _Profile, freqs: np.ndarray, nbeam: int, chromatic: str | None,
               order: int, ref_freq: float | None, xp: Any, pre: Operator | None = None,
               ) -> None:
        if chromatic is None or chromatic == "none":
            width = PolynomialWidth(freqs, nbeam, 0, ref_freq, xp=xp)
            names = [self.width_name]
        elif chromatic == "polynomial":
            width = PolynomialWidth(freqs, nbeam, order, ref_freq, xp=xp)
            names = [self.width_name] + [f"{self.width_name}_{j}" for j in range(1, order + 1)]
        elif chromatic == "powerlaw":
            width = PowerLawWidth(freqs, nbeam, ref_freq, xp=xp)
            names = [self.width_name, "spectral_index"]
        else:
            raise InputError(f"{type(self).__name__}: chromatic must be None, 'powerlaw' or "
                             f"'polynomial', received {chromatic!r}")
        inner = width if pre is None else compose(pre, width)
        Composition.__init__(self, profile, inner)
        self.name = type(self).__name__
        self.profile, self.width = profile, width
        self.param_names = tuple(names)
        self.chromatic, self.order = chromatic, order
        self.ref_freq = width.ref_freq
        self.nbeam, self.ndir, self.nfreq = self.out_shape

    def params(self, **values: Any) -> Any:
        """Parameter array (Nbeam, P) from named values, e.g. ``params(diameter=14.0)``.

        Each value is a scalar (shared by every beam) or an array of shape (Nbeam,);
        coefficients not given are 0. Names: :attr:`param_names`.
        """
        unknown = set(values) - set(self.param_names)
        if unknown:
            raise InputError(f"{self.name}.params: unknown parameter(s) {sorted(unknown)}; "
                             f"expected names from {self.param_names}")
        p = np.zeros(self.in_shape)
        for j, name in enumerate(self.param_names):
            if name in values:
                v = np.asarray(values[name], dtype=np.float64)
                if v.ndim > 1 or (v.ndim == 1 and v.size != self.nbeam):
                    raise ShapeError(f"{self.name}.params: {name} must be a scalar or have "
                                     f"shape ({self.nbeam},), received shape {v.shape}")
                if not np.all(np.isfinite(v)):
                    raise InputError(f"{self.name}.params: {name} must be finite")
                p[:, j] = v
        return to_xp(p, self.xp, np.float64)

    def _default(self, params: Any) -> Any:
        if params is not None:
            return params
        if self.default_params is None:
            raise InputError(f"{self.name}.evaluate: no params given and no default "
                             f"{self.width_name} set at construction")
        return self.default_params

    def at(self, az: Any = None, za: Any = None, freqs: Any = None) -> _AnalyticBeam:
        """The same beam model (configuration, ``ref_freq`` and default parameters) at other
        directions and/or frequencies (``None`` keeps this operator's)."""
        cfg = dict(self._config)
        cfg["ref_freq"] = self.ref_freq
        new = type(self)(self.profile.az if az is None else az,
                         self.profile.za if za is None else za,
                         self.profile.freqs if freqs is None else freqs, **cfg)
        new.default_params = self.default_params
        return new

    def evaluate(self, params: Any = None, *, az: Any = None, za: Any = None,
                 freqs: Any = None) -> Any:
        """Beam values ``A`` (Nbeam, Ndir, Nfreq) float64 at ``params`` (Nbeam, P), by
        default the values given at construction; at this operator's directions and
        frequencies, or at ``az``, ``za`` (radians) and ``freqs`` (Hz) if given."""
        if az is not None or za is not None or freqs is not None:
            return self.at(az, za, freqs).evaluate(params)
        return self.forward(self._default(params))

    def jones(self, params: Any = None) -> Any:
        """Jones form (Nbeam, 2 [feed x, y], 2 [component az, za], Ndir, Nfreq) complex128:
        ``A / sqrt(2)`` in every entry (pyuvdata's efield response of its unpolarised beams).
        """
        return self.jones_operator().forward(self.evaluate(params))

    def jones_operator(self) -> LinearOperator:
        """:class:`~linlim.beam.base.UnpolarizedJones` taking this beam's output."""
        return UnpolarizedJones(self.nbeam, self.ndir, self.nfreq, np.float64, xp=self.xp)


class AiryBeam(_AnalyticBeam):
    """Airy beam of a circular dish, a differentiable operator of its (chromatic) diameter.

    Parameters
    ----------
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North, pyuvdata's convention) and zenith angle, radians.
        ``Ndir`` is typically ``Ntimes * Nsrc`` flattened, time-major.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    diameter : float or array_like (Nbeam,), optional
        Default dish diameter in metres, used by :meth:`evaluate`/:meth:`jones` when no
        ``params`` are given (and by :attr:`default_params`).
    nbeam : int
        1 for one shared beam, Nant for one diameter (and chromatic law) per antenna.
    chromatic : {None, "powerlaw", "polynomial"}
        ``None``: achromatic diameter, params ``(diameter,)``. ``"powerlaw"``:
        ``D(f) = D0 (f/f0)^gamma``, params ``(diameter, spectral_index)``.
        ``"polynomial"``: ``D(f) = D0 + sum_j D_j ((f - f0)/f0)^j``, params
        ``(diameter, diameter_1, ..., diameter_order)``.
    order : int
        Polynomial order for ``chromatic="polynomial"``.
    ref_freq : float, optional
        ``f0`` in Hz (default: mean of ``freqs``).
    xp : module, optional

    Notes
    -----
    Input ``p``: (nbeam, P) float64. Output ``A``: (nbeam, Ndir, Nfreq) float64,
    ``A = 2 J1(x)/x``, ``x = pi D(f) sin(za) f / c``; ``A = 0`` below the horizon. This is
    ``sqrt(2)`` times each E-field component of ``pyuvdata.analytic_beam.AiryBeam``
    (agreement to 1e-10 is tested). Derivatives: :class:`AiryProfile` and the width models.

    Examples
    --------
    >>> import numpy as np
    >>> from linlim.beam import AiryBeam
    >>> beam = AiryBeam(np.zeros(2), np.array([0.0, 0.1]), np.array([1.5e8]), diameter=14.0)
    >>> beam.evaluate().shape
    (1, 2, 1)
    """

    _abstract = False
    width_name = "diameter"

    def __init__(self, az: Any, za: Any, freqs: Any, diameter: Any = None, *, nbeam: int = 1,
                 chromatic: str | None = None, order: int = 1, ref_freq: float | None = None,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        profile = AiryProfile(az, za, freqs, nbeam, xp=xp)
        self._build(profile, profile.freqs, nbeam, chromatic, order, ref_freq, xp)
        self._config = dict(nbeam=nbeam, chromatic=chromatic, order=order, xp=xp)
        self.default_params = None if diameter is None else self.params(diameter=diameter)


class GaussianBeam(_AnalyticBeam):
    """Gaussian beam, a differentiable operator of its (chromatic) width.

    Parameters
    ----------
    az, za : array_like, shape (Ndir,)
        Beam azimuth (East towards North) and zenith angle, radians.
    freqs : array_like, shape (Nfreq,)
        Frequencies in Hz.
    sigma : float or array_like (Nbeam,), optional
        Default width in radians (with ``parameter="sigma"``).
    diameter : float or array_like (Nbeam,), optional
        Default diameter in metres (with ``parameter="diameter"``).
    parameter : {"sigma", "diameter"}
        What the fitted width is: an angular ``sigma`` (radians), or a dish diameter ``D``
        (metres) turned into ``sigma(f)`` by pyuvdata's ``diameter_to_sigma`` (FWHM matched
        to an Airy disk), i.e. pyuvdata's ``GaussianBeam(diameter=)``.
    sigma_type : {"efield", "power"}
        With ``parameter="sigma"``: whether sigma is the width of the E-field beam
        (pyuvdata's default) or of the power beam (``sigma_e = sqrt(2) sigma``).
    nbeam, chromatic, order, ref_freq, xp
        As for :class:`AiryBeam`; ``chromatic="powerlaw"`` with ``parameter="sigma"`` is
        pyuvdata's ``sigma (f / reference_frequency)^spectral_index``.

    Notes
    -----
    Output ``A = exp(-za^2 / (2 sigma_e(f)^2))`` (nbeam, Ndir, Nfreq) float64, 0 below the
    horizon: ``sqrt(2)`` times each E-field component of pyuvdata's ``GaussianBeam`` and
    the square root of its power beam.
    """

    _abstract = False

    def __init__(self, az: Any, za: Any, freqs: Any, sigma: Any = None, diameter: Any = None,
                 *, parameter: str = "sigma", sigma_type: str = "efield", nbeam: int = 1,
                 chromatic: str | None = None, order: int = 1, ref_freq: float | None = None,
                 xp: Any = None) -> None:
        xp = get_xp() if xp is None else xp
        if parameter not in ("sigma", "diameter"):
            raise InputError(f"GaussianBeam: parameter must be 'sigma' or 'diameter', "
                             f"received {parameter!r}")
        if sigma_type not in ("efield", "power"):
            raise InputError(f"GaussianBeam: sigma_type must be 'efield' or 'power', "
                             f"received {sigma_type!r}")
        given = {"sigma": sigma, "diameter": diameter}
        other = "diameter" if parameter == "sigma" else "sigma"
        if given[other] is not None:
            raise InputError(f"GaussianBeam: with parameter={parameter!r} give a default "
                             f"{parameter}=, not {other}=")
        self.width_name = parameter
        self.sigma_type = sigma_type
        scale = np.sqrt(2.0) if (parameter == "sigma" and sigma_type == "power") else 1.0
        profile = GaussianProfile(az, za, freqs, nbeam, sigma_scale=scale, xp=xp)
        pre = DiameterToSigma(profile.freqs, nbeam, xp=xp) if parameter == "diameter" else None
        self._build(profile, profile.freqs, nbeam, chromatic, order, ref_freq, xp, pre)
        self._config = dict(parameter=parameter, sigma_type=sigma_type, nbeam=nbeam,
                            chromatic=chromatic, order=order, xp=xp)
        value = given[parameter]
        self.default_params = None if value is None else self.params(**{parameter: value})
