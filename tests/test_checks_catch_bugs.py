"""dottest and gradcheck must catch a wrong adjoint or a wrong jvp in *any* operator.

For every registered operator case, a mutant operator delegates to the real one but
corrupts its ``vjp`` (scaled by 1.01, or conjugated — the classic complex-adjoint bug) or
its ``jvp`` (scaled, or conjugated). The checks must fail on each mutant. Conjugation is
skipped where it leaves the result unchanged for this operator (real vectors), since it is
then not a bug.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from linlim.operators import Operator
from linlim.operators.spaces import random_element, tree_map
from linlim.testing import dottest, gradcheck

from .test_operator_contract import CASES

MUTATIONS = ("vjp_scale", "vjp_conj", "jvp_scale", "jvp_conj")


class _Mutant(Operator):
    _abstract = True  # test-only

    def __init__(self, op: Operator, mutation: str) -> None:
        super().__init__(op.in_shape, op.out_shape, op.in_dtype, op.out_dtype, op.xp,
                         name=f"Mutant[{op.name}, {mutation}]")
        self.op, self.mutation = op, mutation

    def _corrupt(self, v):
        if self.mutation.endswith("scale"):
            return tree_map(lambda a: 1.01 * a, v)
        return tree_map(lambda a: a.conj(), v)

    def _forward(self, x):
        return self.op.forward(x)

    def _jvp(self, x, dx):
        r = self.op.jvp(x, dx)
        return self._corrupt(r) if self.mutation.startswith("jvp") else r

    def _vjp(self, x, dy):
        r = self.op.vjp(x, dy)
        return self._corrupt(r) if self.mutation.startswith("vjp") else r


def _conj_changes(op: Operator, x, rng, side: str) -> bool:
    """Whether conjugating the jvp/vjp result changes it for this operator at x."""
    if side == "jvp":
        r = op.jvp(x, random_element(op.in_shape, op.in_dtype, op.xp, rng))
    else:
        r = op.vjp(x, random_element(op.out_shape, op.out_dtype, op.xp, rng))
    return any(p.dtype.kind == "c" and float(abs(p.imag).max()) > 1e-12 for p in _leaves(r))


def _leaves(r):
    if isinstance(r, tuple):
        return [leaf for part in r for leaf in _leaves(part)]
    return [r]


PARAMS = [pytest.param(case, dtype, m, id=f"{case.name}-{dtype}-{m}")
          for case in CASES for dtype in ("float64", "complex128") if dtype in case.dtypes
          for m in MUTATIONS]


@pytest.mark.parametrize("case,dtype,mutation", PARAMS)
def test_checks_catch_mutant(case, dtype, mutation) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{case.name}-{dtype}-{mutation}".encode()))
    op, x = case.build(dtype, rng)
    side = mutation.split("_")[0]
    if mutation.endswith("conj") and not _conj_changes(op, x, rng, side):
        pytest.skip("conjugation is the identity on this operator's real results")
    mutant = _Mutant(op, mutation)
    d = dottest(mutant, x, rng=rng)
    g = gradcheck(mutant, x, rng=rng)
    if side == "vjp":
        assert not d.passed, f"dottest missed a wrong adjoint: {d}"
        assert not g.passed, f"gradcheck missed a wrong adjoint: {g}"
    else:
        assert not g.passed, f"gradcheck missed a wrong jvp: {g}"
