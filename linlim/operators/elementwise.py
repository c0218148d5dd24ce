"""Elementwise nonlinear operators: exp, log, power, exp(i x), |x|^2.

For a holomorphic f applied elementwise (exp, log, power), ``J dx = f'(x) dx`` and, under
``Re <., .>``, ``J^H dy = conj(f'(x)) dy``; :meth:`Elementwise._linearize` returns that
Jacobian as a :class:`~linlim.operators.linear.Diagonal` holding ``f'(x)``. Non-holomorphic
maps (``|x|^2``) and real-to-complex maps (``exp(i x)``) state their own rule.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from .base import LinearOperator, Operator
from .composite import compose
from .linear import Diagonal, Real
from .spaces import complex_dtype, real_dtype

__all__ = ["Elementwise", "Exp", "Log", "Power", "ExpI", "Abs2"]


class Elementwise(Operator):
    """Base class: ``y = f(x)`` elementwise for a holomorphic (or real-analytic) ``f``.

    Subclasses define ``_f(x)`` and ``_df(x)`` (the derivative). ``J dx = f'(x) dx``,
    ``J^H dy = conj(f'(x)) dy``.

    Parameters
    ----------
    shape : tuple of int
        Shape of input and output.
    dtype : dtype
        Input dtype (real or complex).
    """

    _abstract: ClassVar[bool] = True

    def __init__(self, shape: Any, dtype: Any = np.float64, out_dtype: Any = None,
                 xp: Any = None) -> None:
        super().__init__(shape, shape, dtype, out_dtype, xp=xp)

    def _f(self, x: Any) -> Any:
        raise NotImplementedError

    def _df(self, x: Any) -> Any:
        raise NotImplementedError

    def _forward(self, x: Any) -> Any:
        return self._f(x)

    def _jvp(self, x: Any, dx: Any) -> Any:
        return self._df(x) * dx

    def _vjp(self, x: Any, dy: Any) -> Any:
        return self._df(x).conj() * dy

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        return self._f(x), Diagonal(self._df(x), self.in_shape, self.in_dtype, xp=self.xp)


class Exp(Elementwise):
    """``y = exp(x)``, ``f'(x) = exp(x)``."""

    _abstract = False

    def _f(self, x: Any) -> Any:
        return self.xp.exp(x)

    _df = _f


class Log(Elementwise):
    """``y = log(x)`` (principal branch for complex), ``f'(x) = 1 / x``.

    Real inputs must be positive: non-positive values raise :class:`InputError`.
    """

    _abstract = False

    def _f(self, x: Any) -> Any:
        if x.dtype.kind != "c" and bool((x <= 0).any()):
            raise InputError(
                f"{self.name}: expected positive real input, received "
                f"{int((x <= 0).sum())} values <= 0 (min {float(x.min())})"
            )
        return self.xp.log(x)

    def _df(self, x: Any) -> Any:
        return 1.0 / x


class Power(Elementwise):
    """``y = x ** p`` for a fixed real exponent ``p``, ``f'(x) = p x^(p-1)``.

    Parameters
    ----------
    shape : tuple of int
    p : float
        The exponent. For non-integer ``p`` real inputs should be positive.
    dtype : dtype
    """

    _abstract = False

    def __init__(self, shape: Any, p: float, dtype: Any = np.float64, xp: Any = None) -> None:
        super().__init__(shape, dtype, xp=xp)
        if not (isinstance(p, (int, float, np.integer, np.floating))
                and not isinstance(p, bool) and np.isfinite(p)):
            raise InputError(f"Power: p: expected a finite real exponent, received {p!r}")
        self.p = float(p)
        self.name = f"Power[{self.p:g}]"

    def _f(self, x: Any) -> Any:
        return x ** self.p

    def _df(self, x: Any) -> Any:
        return self.p * x ** (self.p - 1.0)


class ExpI(Elementwise):
    """Phase factor of a real angle: ``y = exp(i x)``, real -> complex.

    Notes
    -----
    ``J dx = i exp(i x) dx``; ``<J dx, dy> = Re sum conj(i e^{ix} dx) dy``, so
    ``J^H dy = Re(conj(i e^{ix}) dy) = Im(conj(e^{ix}) dy)`` (the real part is taken by the
    base class because the input space is real).
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.float64, xp: Any = None) -> None:
        super().__init__(shape, real_dtype(dtype), complex_dtype(dtype), xp=xp)

    def _f(self, x: Any) -> Any:
        return self.xp.exp(1j * x)

    def _df(self, x: Any) -> Any:
        return 1j * self.xp.exp(1j * x)


class Abs2(Operator):
    """Squared modulus ``y = |x|^2`` (real output); not holomorphic.

    Notes
    -----
    ``J dx = 2 Re(conj(x) dx)``, and ``<J dx, dy> = sum 2 Re(conj(x) dx) dy =
    Re sum conj(dx) (2 x dy)`` for real ``dy``, so ``J^H dy = 2 x dy``. The Jacobian is
    ``Real @ Diagonal(2 conj(x))`` (just ``Diagonal(2 x)`` for real ``x``).
    """

    _abstract = False

    def __init__(self, shape: Any, dtype: Any = np.complex128, xp: Any = None) -> None:
        super().__init__(shape, shape, dtype, real_dtype(dtype), xp=xp)

    def _forward(self, x: Any) -> Any:
        return (x * x.conj()).real if x.dtype.kind == "c" else x * x

    def _jvp(self, x: Any, dx: Any) -> Any:
        return 2.0 * (x.conj() * dx).real

    def _vjp(self, x: Any, dy: Any) -> Any:
        return 2.0 * x * dy

    def _linearize(self, x: Any) -> tuple[Any, LinearOperator]:
        if x.dtype.kind != "c":
            return x * x, Diagonal(2.0 * x, self.in_shape, self.in_dtype, xp=self.xp)
        J = compose(Real(self.in_shape, self.in_dtype, xp=self.xp),
                    Diagonal(2.0 * x.conj(), self.in_shape, self.in_dtype, xp=self.xp))
        return self._forward(x), J
