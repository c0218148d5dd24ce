"""The operator algebra against explicit matrices, and the contract's error messages."""

from __future__ import annotations

import numpy as np
import pytest

from linlim.errors import DtypeError, ShapeError
from linlim.operators import (
    FFT,
    Abs2,
    Diagonal,
    Exp,
    Identity,
    LinearOperator,
    MatrixMult,
    Real,
    Reshape,
    Select,
    Take,
    ZeroPad,
    block_diag,
    hstack,
    vstack,
)


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_composition_of_matrices_is_the_matrix_product(rng) -> None:
    A, B = _c(rng, 4, 3), _c(rng, 3, 5)
    x, y = _c(rng, 5), _c(rng, 4)
    AB = MatrixMult(A) @ MatrixMult(B)
    assert isinstance(AB, LinearOperator)
    np.testing.assert_allclose(AB @ x, A @ B @ x, rtol=1e-13)
    np.testing.assert_allclose(AB.H @ y, (A @ B).conj().T @ y, rtol=1e-13)
    np.testing.assert_allclose(((2 - 1j) * AB) @ x, (2 - 1j) * (A @ B @ x), rtol=1e-13)
    np.testing.assert_allclose((AB + AB) @ x, 2 * (A @ B @ x), rtol=1e-13)
    np.testing.assert_allclose((AB - AB) @ x, 0 * x[:4], atol=1e-13)


def test_fft_matches_numpy_and_its_adjoint_is_the_scaled_inverse(rng) -> None:
    x = _c(rng, 8)
    F = FFT((8,))
    np.testing.assert_allclose(F @ x, np.fft.fft(x), rtol=1e-13)
    np.testing.assert_allclose(F.H @ x, 8 * np.fft.ifft(x), rtol=1e-13)
    U = FFT((8,), norm="ortho")
    np.testing.assert_allclose(U.H @ (U @ x), x, rtol=1e-13)


def test_stacks_and_block_diagonal(rng) -> None:
    A, B = _c(rng, 2, 3), _c(rng, 4, 3)
    x = _c(rng, 3)
    v = vstack([MatrixMult(A), MatrixMult(B)])
    ya, yb = v @ x
    np.testing.assert_allclose(ya, A @ x)
    np.testing.assert_allclose(yb, B @ x)
    np.testing.assert_allclose(v.H @ (ya, yb), A.conj().T @ ya + B.conj().T @ yb)
    h = hstack([MatrixMult(A.T), MatrixMult(B.T)])
    np.testing.assert_allclose(h @ (ya, yb), A.T @ ya + B.T @ yb)
    bd = block_diag([MatrixMult(A), Identity((2,), "complex128")])
    out = bd @ (x, ya)
    np.testing.assert_allclose(out[0], A @ x)
    np.testing.assert_allclose(out[1], ya)


def test_take_adjoint_adds_repeats() -> None:
    T = Take((3,), [0, 2, 2])
    np.testing.assert_array_equal(T.H @ np.array([1.0, 2.0, 3.0]), [1.0, 0.0, 5.0])


def test_zero_pad_and_select() -> None:
    Z = ZeroPad((2,), [(1, 2)])
    np.testing.assert_array_equal(Z @ np.array([1.0, 2.0]), [0, 1, 2, 0, 0])
    S = Select(((2,), (3,)), ("float64", "float64"), 1)
    a, b = S.H @ np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a, [0, 0])
    np.testing.assert_array_equal(b, [1, 2, 3])


def test_chain_rule_matches_hand_derivative(rng) -> None:
    # F(x) = |exp(M x)|^2 ; J = 2 Re(conj(e) e M) with e = exp(M x)
    M = 0.3 * _c(rng, 3, 2)
    F = Abs2((3,)) @ Exp((3,), "complex128") @ MatrixMult(M, in_dtype="float64")
    x, dx = rng.standard_normal(2), rng.standard_normal(2)
    e = np.exp(M @ x)
    np.testing.assert_allclose(F(x), np.abs(e) ** 2, rtol=1e-13)
    np.testing.assert_allclose(F.jvp(x, dx), 2 * (np.conj(e) * e * (M @ dx)).real, rtol=1e-12)
    y, J = F.linearize(x)
    np.testing.assert_allclose(J @ dx, F.jvp(x, dx), rtol=1e-13)
    dy = rng.standard_normal(3)
    np.testing.assert_allclose(J.H @ dy, F.vjp(x, dy), rtol=1e-13)


def test_product_rule(rng) -> None:
    A, B = _c(rng, 3, 2), _c(rng, 3, 2)
    P = MatrixMult(A) * MatrixMult(B)  # bilinear: P(x) = (A x)(B x)
    x, dx = _c(rng, 2), _c(rng, 2)
    np.testing.assert_allclose(P(x), (A @ x) * (B @ x))
    np.testing.assert_allclose(P.jvp(x, dx), (A @ dx) * (B @ x) + (A @ x) * (B @ dx))


def test_errors_name_operator_expected_and_received() -> None:
    D = Diagonal(np.ones(3))
    with pytest.raises(ShapeError, match=r"Diagonal.matvec\(x\): expected shape \(3,\), received \(4,\)"):
        D.matvec(np.ones(4))
    with pytest.raises(ShapeError, match=r"Diagonal.rmatvec\(y\): expected shape \(3,\)"):
        D.rmatvec(np.ones(2))
    with pytest.raises(DtypeError, match="expected dtype float64.*received complex128"):
        D.matvec(np.ones(3, complex))
    with pytest.raises(ShapeError, match="expected a tuple of 2 arrays"):
        hstack([D, D]).forward(np.ones(3))
    with pytest.raises(ShapeError, match=r"in_shape \(3,\) != .*out_shape \(4,\)"):
        D @ MatrixMult(np.ones((4, 2)))
    with pytest.raises(DtypeError, match="insert a Real/Imag view"):
        Diagonal(np.ones(3)) @ FFT((3,))
    with pytest.raises(ShapeError, match="cannot reshape"):
        Reshape((2, 3), (4,))


def test_safe_casts_are_applied() -> None:
    F = FFT((4,))  # complex input
    np.testing.assert_allclose(F @ np.ones(4), [4, 0, 0, 0])  # float64 -> complex128 is safe
    R = Real((4,))
    assert (R.H @ np.ones(4)).dtype == np.complex128


def test_repr_shows_spaces_and_backend() -> None:
    r = repr(Diagonal(np.ones(3, complex)))
    assert "(3,) complex128 -> (3,) complex128" in r and "backend=numpy" in r
    assert str(MatrixMult(np.ones((2, 2))) @ Diagonal(np.ones(2))) == "(MatrixMult @ Diagonal)"


def test_call_counters(rng) -> None:
    A = MatrixMult(_c(rng, 3, 3))
    for _ in range(4):
        A.matvec(_c(rng, 3))
    A.rmatvec(_c(rng, 3))
    assert A.counts["matvec"] == 4 and A.counts["rmatvec"] == 1
