"""Operator cases for linlim.gains.coupling: MutualCoupling in its three input modes
(free (E, V), fixed V, fixed E; with and without the second-order term), the power-law
coupling and the composed per-pair coupling model."""

from __future__ import annotations

import numpy as np

from linlim.gains.coupling import CouplingPowerLaw, MutualCoupling, coupling_pair_model
from linlim.operators import Composition, FixInput, LinearComposition
from linlim.testing import operator_case


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _pos(rng, n=4):
    return rng.standard_normal((n, 3)) * 20.0


@operator_case(MutualCoupling, dtypes=("complex128",), name="MutualCoupling:(E,V)")
def _coupling_free(dtype, rng):
    a1, a2 = np.triu_indices(4)
    return MutualCoupling(a1, a2, 4, 2, 3)


@operator_case(FixInput, dtypes=("complex128",), name="MutualCoupling:fixed-V-first")
def _coupling_fixed_vis(dtype, rng):
    a2, a1 = np.triu_indices(4)              # flipped orientation
    return MutualCoupling(a1, a2, 4, 2, 3, vis=_c(rng, 2, 3, a1.size), second_order=False)


@operator_case(FixInput, dtypes=("complex128",), name="MutualCoupling:fixed-E")
def _coupling_fixed_e(dtype, rng):
    a1, a2 = np.triu_indices(4, 1)           # no autos
    return MutualCoupling(a1, a2, 4, 2, 3, coupling=0.3 * _c(rng, 4, 4, 3))


@operator_case(CouplingPowerLaw, dtypes=("float64",))
def _power_law(dtype, rng):
    op = CouplingPowerLaw(_pos(rng), np.linspace(100e6, 120e6, 3), phase=np.exp(0.4j))
    return op, np.array([0.2, 1.3])


@operator_case(LinearComposition, dtypes=("complex128",), name="coupling_pair_model")
def _pair_model(dtype, rng):
    return coupling_pair_model(_pos(rng), np.linspace(100e6, 120e6, 3), exponent=1.0)


@operator_case(Composition, dtypes=("float64",), name="MutualCoupling@CouplingPowerLaw")
def _coupling_chain(dtype, rng):
    a1, a2 = np.triu_indices(3)
    freqs = np.linspace(100e6, 120e6, 3)
    mc = MutualCoupling(a1, a2, 3, 1, 3, vis=_c(rng, 1, 3, a1.size))
    return mc @ CouplingPowerLaw(_pos(rng, 3), freqs), np.array([0.1, 1.0])
