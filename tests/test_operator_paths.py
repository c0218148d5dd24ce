"""One derivative path per operator, and no silent casts.

* Composites derive ``jvp``/``vjp`` from ``linearize``: a vjp through a chain of depth d
  evaluates each part once (no inner forward rerun d - 1 times).
* An operator that writes only ``_jvp``/``_vjp`` gets a ``linearize`` built on them, and
  one that writes only ``_linearize`` gets ``jvp``/``vjp`` from its Jacobian.
* ``Operator._conform`` refuses a complex result for a real space except in the adjoint
  direction (``vjp``, ``rmatvec``), where ``Re`` is the definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import DtypeError, LinlimError
from linlim.operators import Diagonal, Exp, LinearOperator, MatrixMult, Operator, Power
from linlim.testing import dottest, gradcheck


def _chain(depth: int):
    parts = [Exp((4,)) if i % 2 else Power((4,), 2.0) for i in range(depth)]
    op = parts[0]
    for p in parts[1:]:
        op = p @ op
    return op, parts


@pytest.mark.parametrize("method", ["jvp", "vjp", "linearize"])
def test_chain_evaluates_each_part_once(method, rng) -> None:
    depth = 6
    op, parts = _chain(depth)
    x = 0.1 * rng.standard_normal(4)
    if method == "jvp":
        op.jvp(x, rng.standard_normal(4))
    elif method == "vjp":
        op.vjp(x, rng.standard_normal(4))
    else:
        op.linearize(x)
    for p in parts:
        evaluations = p.counts["forward"] + p.counts["linearize"]
        # each inner part once; the outermost one needs no value for jvp/vjp
        assert evaluations == (1 if (method == "linearize" or p is not parts[-1]) else 0), (
            p.name, p.counts)


def test_composite_jvp_vjp_agree_with_linearize(rng) -> None:
    A = MatrixMult(rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3)))
    op = (Exp((4,), "complex128") @ A) * (A @ Power((3,), 2.0, "complex128"))
    x = 0.3 * (rng.standard_normal(3) + 1j * rng.standard_normal(3))
    dx = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    dy = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    y, J = op.linearize(x)
    np.testing.assert_array_equal(op.jvp(x, dx), J.matvec(dx))
    np.testing.assert_array_equal(op.vjp(x, dy), J.rmatvec(dy))
    np.testing.assert_allclose(y, op.forward(x), rtol=1e-14)


class _JvpOnly(Operator):
    _abstract = True  # test-only

    def _forward(self, x):
        return np.sin(x)

    def _jvp(self, x, dx):
        return np.cos(x) * dx

    def _vjp(self, x, dy):
        return np.cos(x) * dy


class _LinearizeOnly(Operator):
    _abstract = True  # test-only

    def _forward(self, x):
        return np.sin(x)

    def _linearize(self, x):
        return np.sin(x), Diagonal(np.cos(x), self.in_shape, self.in_dtype)


@pytest.mark.parametrize("cls", [_JvpOnly, _LinearizeOnly])
def test_either_path_gives_the_other(cls, rng) -> None:
    op = cls((5,), (5,))
    x = rng.standard_normal(5)
    assert dottest(op, x, rng=rng).passed
    g = gradcheck(op, x, rng=rng)
    assert g.passed, str(g)
    with pytest.raises(NotImplementedError, match="_jvp and _vjp, or _linearize"):
        Operator((2,), (2,)).jvp(np.zeros(2), np.zeros(2))


class _LeaksComplex(LinearOperator):
    """Declares a real output but computes a complex one (the bug _conform must catch)."""

    _abstract = True  # test-only

    def __init__(self) -> None:
        super().__init__((3,), (3,), np.float64, np.float64, name="Leaky")

    def _matvec(self, x):
        return (1 + 1j) * x

    def _rmatvec(self, y):
        return (1 - 1j) * y


class _NonlinearLeak(Operator):
    _abstract = True  # test-only

    def __init__(self) -> None:
        super().__init__((3,), (3,), np.float64, np.float64, name="NonlinearLeak")

    def _forward(self, x):
        return np.exp(1j * x)

    def _jvp(self, x, dx):
        return 1j * np.exp(1j * x) * dx

    def _vjp(self, x, dy):
        return (-1j * np.exp(-1j * x) * dy)  # complex into the real input space: Re


@pytest.mark.parametrize("method", ["forward", "matvec", "jvp", "linearize"])
def test_complex_into_real_space_raises(method) -> None:
    op = _LeaksComplex()
    x = np.ones(3)
    call = {"forward": lambda: op.forward(x), "matvec": lambda: op.matvec(x),
            "jvp": lambda: op.jvp(x, x), "linearize": lambda: op.linearize(x)}[method]
    with pytest.raises(DtypeError) as err:
        call()
    assert isinstance(err.value, LinlimError)
    msg = str(err.value)
    assert "Leaky" in msg and method in msg and "complex128" in msg and "float64" in msg


def test_nonlinear_forward_and_jvp_leak_raise() -> None:
    op = _NonlinearLeak()
    x = np.ones(3)
    for call, method in ((lambda: op.forward(x), "forward"), (lambda: op.jvp(x, x), "jvp")):
        with pytest.raises(DtypeError, match=f"NonlinearLeak.{method}"):
            call()


def test_adjoint_direction_takes_the_real_part() -> None:
    """vjp and rmatvec into a real input space: Re is the adjoint of the embedding."""
    x, dy = np.linspace(0.1, 0.5, 3), np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(_NonlinearLeak().vjp(x, dy),
                               (-1j * np.exp(-1j * x) * dy).real)
    np.testing.assert_allclose(_LeaksComplex().rmatvec(dy), dy)
