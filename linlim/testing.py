"""Verification of operators: the dot test, the gradient check, the operator registry.

These are library functions so users can teach and validate their own operators:

* :func:`dottest` checks ``<J dx, dy> = <dx, J^H dy>`` (``J`` the operator itself if linear,
  its Jacobian at ``x`` otherwise) with random complex ``dx``, ``dy`` whose real *and*
  imaginary parts are random, so a sign error in either half is visible. For a nonlinear
  operator both derivative paths are tested: the Jacobian returned by ``linearize`` (the
  one Gauss-Newton, Fisher and HMC use) and the pair ``jvp``/``vjp``.
* :func:`gradcheck` checks ``jvp`` *and* the ``linearize`` Jacobian's ``matvec`` against
  central finite differences along random directions (trying several steps), ``vjp`` and
  ``J.rmatvec`` against them through the dot identity, and the value returned by
  ``linearize`` against ``forward``.

Both return a result object with the measured discrepancy and raise
:class:`~linlim.errors.CheckFailedError` with a readable message when ``raise_error=True``.

The registry (:func:`operator_case`) maps each concrete operator class to factories that
build a small instance; the package's test suite runs both checks on every registered case
in float64 and complex128 on every backend present, and fails for any concrete operator
class in ``linlim`` that has no case.

Examples
--------
>>> import numpy as np
>>> from linlim.operators import Diagonal
>>> from linlim.testing import dottest
>>> dottest(Diagonal(np.array([1.0 + 2j, 3.0]))).passed
True
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .errors import CheckFailedError
from .operators.base import Operator
from .operators.spaces import inner, is_product_shape, norm, random_element, tree_map

__all__ = [
    "DotTestResult",
    "GradCheckResult",
    "dottest",
    "gradcheck",
    "default_tolerance",
    "operator_case",
    "registered_cases",
    "concrete_operator_classes",
    "OperatorCase",
]


def _eps(dtype: Any) -> float:
    if isinstance(dtype, tuple):
        return max(_eps(d) for d in dtype)
    return float(np.finfo(np.dtype(dtype)).eps)


def default_tolerance(op: Operator, kind: str = "dot") -> float:
    """Default relative tolerance: ``1000 eps`` for dot tests, ``eps^(1/3)`` scaled for
    finite differences (``1e-6`` in float64, ``1e-2`` in float32)."""
    eps = max(_eps(op.in_dtype), _eps(op.out_dtype))
    return 1e3 * eps if kind == "dot" else (1e-6 if eps < 1e-10 else 3e-2)


@dataclass
class DotTestResult:
    """Outcome of :func:`dottest`.

    Attributes
    ----------
    lhs, rhs : float
        ``<J dx, dy>`` and ``<dx, J^H dy>`` of the worst trial.
    rel_error : float
        ``|lhs - rhs| / (|J dx| |dy| + |dx| |J^H dy|)``, the worst over trials and paths.
    tol : float
    passed : bool
    path : str
        Which products gave the worst trial: ``"linearize"`` (``J.matvec`` /
        ``J.rmatvec`` of the Jacobian returned by ``linearize``) or ``"jvp/vjp"``.
    """

    operator: str
    lhs: float
    rhs: float
    rel_error: float
    tol: float
    passed: bool
    path: str = "linearize"

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"dottest {verdict} for {self.operator} ({self.path}): <J dx, dy> = "
                f"{self.lhs:.17g}, <dx, J^H dy> = {self.rhs:.17g}, relative error "
                f"{self.rel_error:.3g} (tolerance {self.tol:.3g})")


@dataclass
class GradCheckResult:
    """Outcome of :func:`gradcheck`.

    Attributes
    ----------
    jvp_error : float
        Worst relative error of ``jvp`` against central finite differences (best step).
    vjp_error : float
        Worst relative error of ``<v, J^H w>`` (``vjp``) against ``<J v, w>`` (``jvp``).
    steps : list of float
        Finite-difference step chosen for each direction.
    lin_jvp_error, lin_vjp_error : float
        The same two errors for ``J.matvec`` and ``J.rmatvec`` of the Jacobian ``J``
        returned by ``linearize`` (checked separately: solvers use that one).
    lin_value_error : float
        ``|y - F(x)| / |F(x)|`` for the value ``y`` returned by ``linearize``.
    """

    operator: str
    jvp_error: float
    vjp_error: float
    jvp_tol: float
    vjp_tol: float
    steps: list
    passed: bool
    lin_jvp_error: float = 0.0
    lin_vjp_error: float = 0.0
    lin_value_error: float = 0.0

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"gradcheck {verdict} for {self.operator}: jvp vs finite differences "
                f"{self.jvp_error:.3g}, linearize J vs finite differences "
                f"{self.lin_jvp_error:.3g} (tol {self.jvp_tol:.3g}); vjp vs jvp "
                f"{self.vjp_error:.3g}, J^H vs J {self.lin_vjp_error:.3g}, linearize value "
                f"vs forward {self.lin_value_error:.3g} (tol {self.vjp_tol:.3g}); steps "
                f"{[float(f'{s:.2g}') for s in self.steps]}")


def _rng(rng: Any) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def dottest(op: Operator, x: Any = None, *, rng: Any = 0, rtol: float | None = None,
            ntrials: int = 3, raise_error: bool = False) -> DotTestResult:
    """Adjoint (dot) test of a linear operator or of an operator's Jacobian at ``x``.

    Parameters
    ----------
    op : Operator
        Linear operator, or nonlinear operator (its Jacobian at ``x`` is tested).
    x : array or tuple, optional
        Linearisation point (random if omitted; ignored for linear operators).
    rng : int or numpy.random.Generator
        Seed or generator for the random vectors.
    rtol : float, optional
        Tolerance on the relative error (default :func:`default_tolerance`).
    ntrials : int
        Number of random pairs; the worst is reported.
    raise_error : bool
        Raise :class:`CheckFailedError` instead of returning a failed result.
    """
    rng = _rng(rng)
    if x is None:
        x = random_element(op.in_shape, op.in_dtype, op.xp, rng)
    _, J = op.linearize(x)
    tol = default_tolerance(op) if rtol is None else rtol
    paths = [("linearize", J.matvec, J.rmatvec)]
    if not op.is_linear:  # a linear operator's jvp/vjp are its matvec/rmatvec
        paths.append(("jvp/vjp", lambda d: op.jvp(x, d), lambda d: op.vjp(x, d)))
    worst = (0.0, 0.0, 0.0, paths[0][0])
    for _ in range(ntrials):
        dx = random_element(op.in_shape, op.in_dtype, op.xp, rng)
        dy = random_element(op.out_shape, op.out_dtype, op.xp, rng)
        for path, fwd, adj in paths:
            Jdx, JHdy = fwd(dx), adj(dy)
            lhs, rhs = inner(Jdx, dy), inner(dx, JHdy)
            scale = norm(Jdx) * norm(dy) + norm(dx) * norm(JHdy)
            err = abs(lhs - rhs) / scale if scale > 0 else abs(lhs - rhs)
            if err >= worst[2]:
                worst = (lhs, rhs, err, path)
    res = DotTestResult(op.name, worst[0], worst[1], worst[2], tol, worst[2] <= tol,
                        worst[3])
    if raise_error and not res.passed:
        raise CheckFailedError(str(res))
    return res


def _size(x: Any) -> int:
    return sum(_size(a) for a in x) if isinstance(x, tuple) else int(np.prod(x.shape))


def _axpy(x: Any, h: float, v: Any) -> Any:
    return tree_map(lambda a, b: a + h * b, x, v)


def _diff(a: Any, b: Any, scale: float) -> Any:
    return tree_map(lambda p, q: (p - q) * scale, a, b)


def gradcheck(op: Operator, x: Any = None, *, rng: Any = 0, ndirections: int = 3,
              steps: Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
              rtol: float | None = None, raise_error: bool = False) -> GradCheckResult:
    """Check both derivative paths against central finite differences and the dot identity.

    Along each random direction ``v`` (complex inputs perturbed in real and imaginary
    parts), the central difference ``(F(x + h v) - F(x - h v)) / 2h`` is compared with
    ``J v`` for every step ``h`` in ``steps`` (relative to ``1 + rms(x)``), keeping the best
    (finite differences trade truncation against round-off). ``J v`` is computed twice:
    by ``jvp(x, v)`` and by ``J.matvec(v)`` for the Jacobian ``J`` returned by
    ``linearize(x)``. The adjoints (``vjp`` and ``J.rmatvec``) are then checked through
    ``<J v, w> = <v, J^H w>`` with random ``w``, and the value returned by ``linearize``
    against ``forward(x)``.

    Parameters
    ----------
    op : Operator
    x : array or tuple, optional
        Point at which to check (random if omitted).
    rng : int or numpy.random.Generator
    ndirections : int
    steps : sequence of float
    rtol : float, optional
        Tolerance for the jvp check (default ``1e-6`` in double precision); the vjp check
        uses the dot-test tolerance.
    raise_error : bool
    """
    rng = _rng(rng)
    if x is None:
        x = random_element(op.in_shape, op.in_dtype, op.xp, rng)
    jtol = default_tolerance(op, "fd") if rtol is None else rtol
    vtol = default_tolerance(op, "dot")
    size = _size(x)
    xscale = 1.0 + (norm(x) / np.sqrt(max(size, 1)))
    fx = op.forward(x)
    y_lin, J = op.linearize(x)
    nfx = norm(fx)
    lin_value_err = norm(_diff(y_lin, fx, 1.0)) / nfx if nfx > 0 else norm(y_lin)
    paths = {"jvp": (lambda d: op.jvp(x, d), lambda d: op.vjp(x, d)),
             "linearize": (J.matvec, J.rmatvec)}
    errs = {name: [0.0, 0.0] for name in paths}
    chosen = []
    for _ in range(ndirections):
        v = random_element(op.in_shape, op.in_dtype, op.xp, rng)
        fds = [(h * xscale, _diff(op.forward(_axpy(x, h * xscale, v)),
                                  op.forward(_axpy(x, -h * xscale, v)), 0.5 / (h * xscale)))
               for h in steps]
        w = random_element(op.out_shape, op.out_dtype, op.xp, rng)
        for name, (fwd, adj) in paths.items():
            Jv = fwd(v)
            nJv = norm(Jv)
            best, best_h = np.inf, None
            for h, fd in fds:
                err = norm(_diff(fd, Jv, 1.0)) / max(nJv, norm(fd), 1e-300)
                if nJv == 0.0 and norm(fd) == 0.0:
                    err = 0.0
                if err < best:
                    best, best_h = err, h
            if name == "jvp":
                chosen.append(float(best_h))
            JHw = adj(w)
            lhs, rhs = inner(Jv, w), inner(v, JHw)
            scale = nJv * norm(w) + norm(v) * norm(JHw)
            verr = abs(lhs - rhs) / scale if scale > 0 else abs(lhs - rhs)
            errs[name] = [max(errs[name][0], best), max(errs[name][1], verr)]
    (jerr, verr), (ljerr, lverr) = errs["jvp"], errs["linearize"]
    passed = (max(jerr, ljerr) <= jtol and max(verr, lverr) <= vtol
              and lin_value_err <= vtol)
    res = GradCheckResult(op.name, jerr, verr, jtol, vtol, chosen, bool(passed),
                          ljerr, lverr, float(lin_value_err))
    if raise_error and not res.passed:
        raise CheckFailedError(str(res))
    return res


# -- registry ---------------------------------------------------------------------------
@dataclass
class OperatorCase:
    """A registered factory: ``factory(dtype, rng) -> op`` or ``(op, x)``.

    ``dtype`` is ``"float64"`` or ``"complex128"`` (the precision family under test); a
    factory builds the most complex variant of its operator that the dtype allows.
    """

    cls: type
    factory: Callable
    dtypes: tuple
    name: str

    def build(self, dtype: str, rng: np.random.Generator) -> tuple[Operator, Any]:
        out = self.factory(dtype, rng)
        op, x = out if isinstance(out, tuple) else (out, None)
        if not isinstance(op, self.cls):
            raise TypeError(f"case {self.name} built {type(op).__name__}, not {self.cls.__name__}")
        if x is None:
            x = random_element(op.in_shape, op.in_dtype, op.xp, rng)
        else:  # factories may build x with NumPy; move it to the operator's device
            from .backend import asarray

            x = tree_map(lambda a: asarray(a, op.xp), x)
        return op, x


_CASES: list[OperatorCase] = []


def operator_case(*classes: type, dtypes: tuple = ("float64", "complex128"),
                  name: str | None = None) -> Callable:
    """Decorator registering a factory as the test case of one or more operator classes.

    Examples
    --------
    >>> from linlim.operators import Exp
    >>> @operator_case(Exp)
    ... def _exp(dtype, rng):
    ...     return Exp((3,), dtype)
    """

    def deco(factory: Callable) -> Callable:
        for cls in classes:
            _CASES.append(OperatorCase(cls, factory, tuple(dtypes),
                                       name or f"{cls.__name__}:{factory.__name__}"))
        return factory

    return deco


def registered_cases() -> list[OperatorCase]:
    """All registered operator cases."""
    return list(_CASES)


def _all_subclasses(cls: type) -> set:
    out = set()
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _all_subclasses(sub)
    return out


def concrete_operator_classes(package: str = "linlim") -> list[type]:
    """Every concrete :class:`Operator` subclass defined in ``package`` (all submodules
    are imported first). A class is abstract when its own body sets ``_abstract = True``."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if info.name.split(".")[-1].startswith("_") or ".cli" in info.name:
            continue
        importlib.import_module(info.name)
    classes = [c for c in _all_subclasses(Operator) if c.__module__.startswith(package + ".")
               and not c.__dict__.get("_abstract", False)]
    return sorted(classes, key=lambda c: (c.__module__, c.__name__))


def is_product(op: Operator) -> bool:
    """True if the operator's input is a product space (tuple of arrays)."""
    return is_product_shape(op.in_shape)
