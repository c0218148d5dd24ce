"""Operator cases for the likelihood/prior area: FiniteDifference, GaussNewtonOperator."""

from __future__ import annotations

from linlim.backend import get_xp
from linlim.likelihood import GaussianLikelihood, GaussNewtonOperator, LogPosterior
from linlim.operators import Exp, MatrixMult
from linlim.priors import FiniteDifference, GaussianPrior, SmoothnessPrior
from linlim.testing import operator_case


@operator_case(FiniteDifference)
def _finite_difference(dtype, rng):
    return FiniteDifference((4, 6), order=2, axis=1, dtype=dtype)


@operator_case(GaussNewtonOperator, dtypes=("float64",))
def _gauss_newton_operator(dtype, rng):
    n, m = 4, 7
    A = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    # a complex-output model of a real theta: Exp (real) then a complex matrix
    model = MatrixMult(A, in_dtype="float64") @ Exp((n,), "float64")
    data = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    lik = GaussianLikelihood(model, data, weights=rng.uniform(0.5, 2.0, m))
    post = LogPosterior(lik, [GaussianPrior(0.0, sigma=2.0, size=n),
                              SmoothnessPrior((n,), sigma=0.5)])
    theta = get_xp().asarray(0.3 * rng.standard_normal(n))   # on the backend under test
    return post.linearize_gn(theta), theta

