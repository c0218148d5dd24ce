"""dottest and gradcheck must catch a wrong derivative in *any* operator, on either path.

For every registered operator case a mutant delegates to the real operator but corrupts
exactly one derivative product:

* ``jvp`` or ``vjp`` (the pair used by gradients), or
* ``J.matvec`` or ``J.rmatvec`` of the Jacobian ``J`` returned by ``linearize`` (the one
  Gauss-Newton, Levenberg-Marquardt, Fisher and HMC use),

either scaled by 1.01 or conjugated (the classic complex-adjoint bug). Both checks must
fail on every mutant. A conjugation mutant is generated only where the corrupted product
lands in a space with a complex part: on a real space conjugation is the identity and
would not be a bug (such no-op mutants are not generated, rather than generated and
skipped).
"""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np
import pytest

from linlim.operators import Diagonal, LinearOperator, Operator
from linlim.operators.spaces import is_complex, random_element, tree_map
from linlim.testing import dottest, gradcheck

from .test_operator_contract import CASES

#: (product corrupted, corruption). ``jvp``/``vjp``: the operator's methods;
#: ``J``/``JH``: ``matvec``/``rmatvec`` of the Jacobian returned by ``linearize``.
MUTATIONS = tuple(f"{side}_{kind}" for side in ("jvp", "vjp", "J", "JH")
                  for kind in ("scale", "conj"))
_LANDS_IN = {"jvp": "out", "J": "out", "vjp": "in", "JH": "in"}


def _corrupt(kind: str, v):
    if kind == "scale":
        return tree_map(lambda a: 1.01 * a, v)
    return tree_map(lambda a: a.conj(), v)


class _MutantJacobian(LinearOperator):
    _abstract = True  # test-only

    def __init__(self, J: LinearOperator, side: str, kind: str) -> None:
        super().__init__(J.in_shape, J.out_shape, J.in_dtype, J.out_dtype, J.xp,
                         name=f"{J.name}[{side}_{kind}]")
        self.J, self.side, self.kind = J, side, kind

    def _matvec(self, x):
        r = self.J.matvec(x)
        return _corrupt(self.kind, r) if self.side == "J" else r

    def _rmatvec(self, y):
        r = self.J.rmatvec(y)
        return _corrupt(self.kind, r) if self.side == "JH" else r


class _Mutant(Operator):
    _abstract = True  # test-only

    def __init__(self, op: Operator, mutation: str) -> None:
        super().__init__(op.in_shape, op.out_shape, op.in_dtype, op.out_dtype, op.xp,
                         name=f"Mutant[{op.name}, {mutation}]")
        self.op, self.mutation = op, mutation
        self.side, self.kind = mutation.split("_")

    def _forward(self, x):
        return self.op.forward(x)

    def _jvp(self, x, dx):
        r = self.op.jvp(x, dx)
        return _corrupt(self.kind, r) if self.side == "jvp" else r

    def _vjp(self, x, dy):
        r = self.op.vjp(x, dy)
        return _corrupt(self.kind, r) if self.side == "vjp" else r

    def _linearize(self, x):
        y, J = self.op.linearize(x)
        return y, _MutantJacobian(J, self.side, self.kind)


def _complex_valued(r) -> bool:
    return any(p.dtype.kind == "c" and float(abs(p.imag).max()) > 1e-12 for p in _leaves(r))


@cache
def _conj_changes(case_index: int, dtype: str) -> dict:
    """For each side, whether conjugating that product changes it (at a built instance):
    false where the space is real, or complex-typed but holding real values (Re's
    adjoint, exp of a real input)."""
    rng = np.random.default_rng(zlib.crc32(f"{CASES[case_index].name}-{dtype}".encode()))
    op, x = CASES[case_index].build(dtype, rng)
    out = {}
    for side in ("jvp", "vjp"):
        space = op.out_dtype if side == "jvp" else op.in_dtype
        out[side] = _has_complex(space) and _complex_valued(_product(op, x, side, rng))
    out["J"], out["JH"] = out["jvp"], out["vjp"]  # same products, other path
    return out


def _has_complex(dtype) -> bool:
    if isinstance(dtype, tuple):
        return any(_has_complex(d) for d in dtype)
    return is_complex(dtype)


def _applies(case_index: int, dtype: str, mutation: str) -> bool:
    side, kind = mutation.split("_")
    return kind != "conj" or _conj_changes(case_index, dtype)[side]


def _product(op: Operator, x, side: str, rng):
    if side in ("jvp", "J"):
        dx = random_element(op.in_shape, op.in_dtype, op.xp, rng)
        return op.jvp(x, dx) if side == "jvp" else op.linearize(x)[1].matvec(dx)
    dy = random_element(op.out_shape, op.out_dtype, op.xp, rng)
    return op.vjp(x, dy) if side == "vjp" else op.linearize(x)[1].rmatvec(dy)


def _leaves(r):
    if isinstance(r, tuple):
        return [leaf for part in r for leaf in _leaves(part)]
    return [r]


PARAMS = [pytest.param(case, dtype, m, id=f"{case.name}-{dtype}-{m}")
          for i, case in enumerate(CASES) for dtype in ("float64", "complex128")
          if dtype in case.dtypes for m in MUTATIONS if _applies(i, dtype, m)]


@pytest.mark.parametrize("case,dtype,mutation", PARAMS)
def test_checks_catch_mutant(case, dtype, mutation) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{case.name}-{dtype}-{mutation}".encode()))
    op, x = case.build(dtype, rng)
    side, kind = mutation.split("_")
    mutant = _Mutant(op, mutation)
    d = dottest(mutant, x, rng=rng)
    g = gradcheck(mutant, x, rng=rng)
    assert not d.passed, f"dottest missed a wrong {side} ({kind}): {d}"
    assert not g.passed, f"gradcheck missed a wrong {side} ({kind}): {g}"


class _LinearizeOff(Operator):
    """exp(x) with exact jvp/vjp but a linearize Jacobian 1% off (or its adjoint only)."""

    _abstract = True  # test-only

    def __init__(self, n: int, dtype: str, which: str) -> None:
        super().__init__((n,), (n,), dtype)
        self.which = which

    def _forward(self, x):
        return np.exp(x)

    def _jvp(self, x, dx):
        return np.exp(x) * dx

    def _vjp(self, x, dy):
        return np.exp(x).conj() * dy

    def _linearize(self, x):
        d = np.exp(x)
        J = Diagonal(1.01 * d if self.which == "J" else d, self.in_shape, self.in_dtype)
        if self.which == "JH":
            J = _MutantJacobian(J, "JH", "scale")
        return np.exp(x), J


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("which", ["J", "JH"])
def test_linearize_one_percent_off_fails(dtype, which, rng) -> None:
    """The solvers' Jacobian 1% wrong while jvp/vjp are right: gradcheck fails (and
    dottest too when only J^H is off)."""
    op = _LinearizeOff(5, dtype, which)
    x = 0.3 * random_element(op.in_shape, op.in_dtype, np, rng)
    d = dottest(op, x, rng=rng)
    # a J scaled consistently with its adjoint is adjoint-consistent: finite differences
    # catch it; a J^H off alone breaks the dot identity
    assert d.passed == (which == "J"), str(d)
    g = gradcheck(op, x, rng=rng)
    assert not g.passed
    assert g.jvp_error < 1e-6 and g.vjp_error < 1e-12  # the jvp/vjp pair is right
