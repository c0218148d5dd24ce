"""Operator cases for linlim.rime: RIME (intensities, beams, positions) and RIMEIntensity."""

from __future__ import annotations

import numpy as np

from linlim.rime import RIME, RIMEIntensity
from linlim.testing import operator_case


def _enu(rng, nt, ns):
    v = rng.standard_normal((nt, 3, ns))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _geometry(rng):
    antpos = rng.uniform(-20.0, 20.0, (4, 3))
    a1, a2 = np.triu_indices(4)
    return _enu(rng, 3, 6), antpos, np.linspace(100e6, 112e6, 4), a1, a2


@operator_case(RIME)
def _rime(dtype, rng):
    # float64 family: real beams; complex128 family: complex beams and two feeds; both fit
    # positions, use two beams and a memory budget that splits the channels into blocks
    enu, antpos, freqs, a1, a2 = _geometry(rng)
    cplx = dtype == "complex128"
    op = RIME(enu, antpos, freqs, a1, a2, beam_index=[0, 1, 1, 0], beam_dtype=dtype,
              polarized=cplx, fit_positions=True, memory_budget=4000)
    shapes = op.in_shape
    A = rng.standard_normal(shapes[1])
    if cplx:
        A = A + 1j * rng.standard_normal(shapes[1])
    return op, (rng.standard_normal(shapes[0]), A.astype(dtype),
                antpos + 0.05 * rng.standard_normal((4, 3)))


@operator_case(RIMEIntensity)
def _rime_intensity(dtype, rng):
    enu, antpos, freqs, a1, a2 = _geometry(rng)
    beam = rng.standard_normal((2, 3, 6, 4))
    if dtype == "complex128":
        beam = beam + 1j * rng.standard_normal(beam.shape)
    return RIMEIntensity(enu, antpos, freqs, a1, a2, beam=beam, beam_index=[0, 1, 1, 0],
                         memory_budget=4000)


@operator_case(RIME, name="RIME:nufft")
def _rime_nufft(dtype, rng):
    # one feed, one shared beam (real or complex), method="nufft": the type-3 NUFFT forward
    # and its exact adjoint; without finufft the GEMM path stands in (same operator)
    from linlim.rime.nufft import have_finufft

    enu, antpos, freqs, a1, a2 = _geometry(rng)
    antpos = antpos / 4.0                     # small NUFFT grids keep the case fast
    op = RIME(enu, antpos, freqs, a1, a2, beam_dtype=dtype,
              method="nufft" if have_finufft() else "gemm")
    shapes = op.in_shape
    A = rng.standard_normal(shapes[1])
    if dtype == "complex128":
        A = A + 1j * rng.standard_normal(shapes[1])
    return op, (rng.standard_normal(shapes[0]), A.astype(dtype))


@operator_case(RIME, name="RIME:ub")
def _rime_ub(dtype, rng):
    # one feed, one shared beam (real or complex), a redundant array (a 2 x 3 grid, one
    # baseline repeated): products once per unique baseline vector (ub=True)
    enu = _enu(rng, 3, 7)
    antpos = np.array([[x * 14.6, y * 14.6, 0.0] for y in range(2) for x in range(3)])
    a1, a2 = np.triu_indices(6)
    a1, a2 = np.r_[a1, 0], np.r_[a2, 1]
    op = RIME(enu, antpos, np.linspace(100e6, 112e6, 5), a1, a2, beam_dtype=dtype, ub=True)
    assert op.engine.ub_products
    shapes = op.in_shape
    A = rng.standard_normal(shapes[1])
    if dtype == "complex128":
        A = A + 1j * rng.standard_normal(shapes[1])
    return op, (rng.standard_normal(shapes[0]), A.astype(dtype))
