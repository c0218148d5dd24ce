"""Tutorial: write your own operator, check it, break it, and watch the checks catch it.

Run with ``python examples/gradients_vs_finite_differences.py``.

We write a small nonlinear operator from scratch — a per-antenna complex gain applied to
model visibilities of one baseline per antenna pair,

    V'_k = g_{a_k} conj(g_{b_k}) V_k,

as a function of the gains ``g`` (complex, shape (Nant,)) with ``V`` fixed. It is not
holomorphic in ``g`` (it involves ``conj(g)``), which is exactly where hand-written adjoints
go wrong. Under linlim's convention (real inner product ``<x, y> = Re sum conj(x) y``):

    J dg = dg_a conj(g_b) V + g_a conj(dg_b) V

For the adjoint, pair each term with ``dy`` and move everything onto ``conj(dg)``:

    Re sum conj(dg_a conj(g_b) V) dy = Re sum conj(dg_a) [g_b conj(V) dy]
    Re sum conj(g_a conj(dg_b) V) dy = Re sum dg_b conj(g_a V) dy
                                     = Re sum conj(dg_b) [g_a V conj(dy)]

(the last step conjugates the whole summand, which leaves its real part unchanged), so

    J^H dy = scatter_a( g_b conj(V) dy ) + scatter_b( g_a V conj(dy) ).

Forgetting the final conjugation — writing ``conj(g_a V) dy`` into ``b`` — is the classic
bug. The dot test and the gradient check below pass the right operator and catch it.
"""

from __future__ import annotations

import numpy as np

from linlim.backend import scatter_add
from linlim.operators import Operator
from linlim.testing import dottest, gradcheck


class PairGains(Operator):
    """``V'_k = g[a_k] conj(g[b_k]) V_k`` as a function of complex gains ``g`` (Nant,)."""

    _abstract = True  # a tutorial class, not part of the package's operator suite

    def __init__(self, vis, ant1, ant2, nant, wrong=None):
        super().__init__((nant,), vis.shape, np.complex128, np.complex128)
        self.vis, self.a, self.b, self.wrong = vis, ant1, ant2, wrong

    def _forward(self, g):
        return g[self.a] * g[self.b].conj() * self.vis

    def _jvp(self, g, dg):
        out = dg[self.a] * g[self.b].conj() * self.vis + g[self.a] * dg[self.b].conj() * self.vis
        return 1.001 * out if self.wrong == "jvp" else out

    def _vjp(self, g, dy):
        out = np.zeros_like(g)
        scatter_add(out, self.a, (g[self.b].conj() * self.vis).conj() * dy)
        if self.wrong == "vjp":  # the classic bug: forgetting that conj(dg_b) flips the term
            scatter_add(out, self.b, (g[self.a] * self.vis).conj() * dy)
        else:
            scatter_add(out, self.b, g[self.a] * self.vis * dy.conj())
        return out


def main() -> None:
    rng = np.random.default_rng(1)
    nant = 5
    ant1, ant2 = np.triu_indices(nant, 1)
    vis = rng.standard_normal(ant1.size) + 1j * rng.standard_normal(ant1.size)
    g0 = 1 + 0.1 * (rng.standard_normal(nant) + 1j * rng.standard_normal(nant))

    print("Correct operator")
    op = PairGains(vis, ant1, ant2, nant)
    print("  ", dottest(op, g0))
    print("  ", gradcheck(op, g0))

    print("Adjoint broken on purpose (conjugation error in the second term)")
    bad = PairGains(vis, ant1, ant2, nant, wrong="vjp")
    print("  ", dottest(bad, g0))
    print("  ", gradcheck(bad, g0))

    print("jvp broken on purpose (0.1% scale error)")
    bad = PairGains(vis, ant1, ant2, nant, wrong="jvp")
    print("  ", gradcheck(bad, g0))

    assert dottest(op, g0).passed and gradcheck(op, g0).passed
    assert not dottest(PairGains(vis, ant1, ant2, nant, wrong="vjp"), g0).passed
    assert not gradcheck(PairGains(vis, ant1, ant2, nant, wrong="jvp"), g0).passed
    print("All as expected: the checks pass the right operator and catch both bugs.")


if __name__ == "__main__":
    main()
