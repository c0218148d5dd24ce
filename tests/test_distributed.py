"""Dask scale-out: the distributed posterior equals the in-process one, and survives a
worker killed mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the dist extra (dask) is not installed")

from linlim.distributed import DistributedLogPosterior, local_cluster  # noqa: E402
from linlim.distributed.synthetic import linear_gaussian_chunk  # noqa: E402
from linlim.likelihood import GaussianLikelihood, LogPosterior  # noqa: E402
from linlim.operators import MatrixMult  # noqa: E402
from linlim.priors import GaussianPrior  # noqa: E402

DESC = {"seed": 7, "nparams": 12, "nrows": 40}
NCHUNKS = 4


@pytest.fixture(scope="module")
def client():
    cluster, c = local_cluster(2, silence_logs=40)
    yield c
    c.close()
    cluster.close()


def _in_process(desc: dict, prior) -> LogPosterior:
    """The same problem as one stacked in-process posterior."""
    chunks = [linear_gaussian_chunk(desc, i) for i in range(NCHUNKS)]
    A = np.vstack([c.likelihood.model.matrix for c in chunks])
    d = np.concatenate([c.likelihood.data for c in chunks])
    w = np.concatenate([c.likelihood.weights for c in chunks])
    return LogPosterior(GaussianLikelihood(MatrixMult(A, in_dtype=np.float64), d, w),
                        priors=[prior])


def test_distributed_equals_in_process(client, rng) -> None:
    prior = GaussianPrior(np.zeros(DESC["nparams"]), sigma=3.0)
    dist = DistributedLogPosterior(client, linear_gaussian_chunk, DESC, NCHUNKS, priors=[prior])
    local = _in_process(DESC, prior)
    assert dist.size == local.size == DESC["nparams"]
    theta, v = rng.standard_normal(dist.size), rng.standard_normal(dist.size)
    val_d, g_d = dist.value_and_grad(theta)
    val_l, g_l = local.value_and_grad(theta)
    assert val_d == pytest.approx(val_l, rel=1e-12)
    np.testing.assert_allclose(g_d, g_l, rtol=1e-11, atol=1e-11 * np.abs(g_l).max())
    assert dist.value(theta) == pytest.approx(val_l, rel=1e-12)
    gn = local.gn_product(theta, v)
    np.testing.assert_allclose(dist.gn_product(theta, v), gn, rtol=1e-11)
    H = dist.linearize_gn(theta)
    np.testing.assert_allclose(H.matvec(v), gn, rtol=1e-11)
    np.testing.assert_allclose(H.matvec(2 * v), 2 * gn, rtol=1e-11)


def test_fit_converges_to_the_same_map(client) -> None:
    from linlim.inference.gauss_newton import gauss_newton

    prior = GaussianPrior(np.zeros(DESC["nparams"]), sigma=3.0)
    dist = DistributedLogPosterior(client, linear_gaussian_chunk, DESC, NCHUNKS, priors=[prior])
    local = _in_process(DESC, prior)
    x0 = np.zeros(DESC["nparams"])
    r_d = gauss_newton(dist, x0, maxiter=5, progress=False)
    r_l = gauss_newton(local, x0, maxiter=5, progress=False)
    np.testing.assert_allclose(r_d.x, r_l.x, rtol=1e-9, atol=1e-12)


def test_worker_killed_mid_run_is_survived(client, rng) -> None:
    desc = {**DESC, "call_delay_s": 0.5}
    prior = GaussianPrior(np.zeros(DESC["nparams"]), sigma=3.0)
    dist = DistributedLogPosterior(client, linear_gaussian_chunk, desc, NCHUNKS, priors=[prior])
    theta = rng.standard_normal(dist.size)
    expected = _in_process(DESC, prior).value_and_grad(theta)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def kill() -> None:
        time.sleep(0.3)  # inside the first chunk calls
        os.kill(victim, signal.SIGKILL)

    t = threading.Thread(target=kill)
    t.start()
    value, grad = dist.value_and_grad(theta)
    t.join()
    assert victim not in client.run(os.getpid).values()  # the worker really died
    assert value == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-11, atol=1e-11 * np.abs(expected[1]).max())
