"""Params: flat vector <-> named blocks, transforms and their Jacobians."""

from __future__ import annotations

import numpy as np
import pytest

from linlim import BoundedTransform, LogTransform, ParamBlock, Params, gradcheck
from linlim.errors import InputError, ShapeError


def _params() -> Params:
    return Params([
        ParamBlock("logs", (3,), transform=LogTransform()),
        ParamBlock("gains", (2, 2), dtype="complex128"),
        ParamBlock("diam", 1, transform=BoundedTransform(10.0, 16.0)),
    ])


def test_pack_unpack_round_trip(rng) -> None:
    p = _params()
    values = {"logs": np.exp(rng.standard_normal(3)),
              "gains": rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2)),
              "diam": np.array([14.0])}
    theta = p.pack(values)
    assert theta.shape == (p.size,) == (3 + 8 + 1,)
    out = p.unpack(theta)
    for k, v in values.items():
        np.testing.assert_allclose(out[k], v, rtol=1e-14)
    # complex blocks are interleaved (re, im) pairs
    np.testing.assert_array_equal(theta[3:5], [values["gains"][0, 0].real, values["gains"][0, 0].imag])


def test_bounded_transform_stays_inside() -> None:
    p = _params()
    theta = np.zeros(p.size)
    theta[-1] = 1e3
    assert p.unpack(theta)["diam"][0] <= 16.0
    theta[-1] = -1e3
    assert p.unpack(theta)["diam"][0] >= 10.0


def test_log_det_jacobian_matches_finite_differences(rng) -> None:
    p = _params()
    theta = rng.standard_normal(p.size)
    g = p.grad_log_det_jacobian(theta)
    h = 1e-6
    for i in range(p.size):
        e = np.zeros(p.size)
        e[i] = h
        fd = (p.log_det_jacobian(theta + e) - p.log_det_jacobian(theta - e)) / (2 * h)
        assert abs(fd - g[i]) < 1e-7
    # log-det of exp transform is the sum of the unconstrained values
    s = 16.0 - 10.0
    sig = 1 / (1 + np.exp(-theta[-1]))
    expected = theta[:3].sum() + np.log(s * sig * (1 - sig))
    assert p.log_det_jacobian(theta) == pytest.approx(expected, rel=1e-12)


def test_params_gradcheck(rng) -> None:
    assert gradcheck(_params(), rng.standard_normal(12), rng=rng).passed


def test_bad_input_names_the_block() -> None:
    p = _params()
    good = {"logs": np.ones(3), "gains": np.ones((2, 2)), "diam": np.array([12.0])}
    with pytest.raises(InputError, match="missing block 'diam'"):
        p.pack({k: v for k, v in good.items() if k != "diam"})
    with pytest.raises(ShapeError, match=r"block 'logs' expected shape \(3,\), received \(4,\)"):
        p.pack({**good, "logs": np.ones(4)})
    with pytest.raises(InputError, match="LogTransform: expected positive values"):
        p.pack({**good, "logs": -np.ones(3)})
    with pytest.raises(InputError, match="strictly inside"):
        p.pack({**good, "diam": np.array([20.0])})
    with pytest.raises(InputError, match="contains NaN"):
        p.pack({**good, "logs": np.array([1.0, np.nan, 1.0])})
    with pytest.raises(InputError, match="unique"):
        Params([ParamBlock("a", 1), ParamBlock("a", 2)])
    with pytest.raises(InputError, match="transforms apply to real blocks"):
        ParamBlock("g", 2, dtype="complex128", transform=LogTransform())
