"""The multinomial No-U-Turn sampler, a port of Stan's ``base_nuts`` transition.

One transition draws a momentum, then doubles a trajectory forwards or backwards in time
(a fair coin each time) until the generalised no-U-turn criterion fails, the tree reaches
``max_depth``, or a divergence occurs. The next state is drawn from the trajectory with
multinomial weights ``exp(-H)``: within a new subtree by progressive sampling, and between
the old trajectory and a new subtree with the biased step of Betancourt (2017) that favours
the new subtree. Stan's additional U-turn checks across the two halves of every merge are
included. The acceptance statistic returned for step-size adaptation is the mean over all
leapfrog states of ``min(1, exp(H0 - H))``.

The random numbers are drawn in the same places as in Stan (one uniform per doubling
direction, one per subtree merge when the new weight is not larger, one per top-level
merge under the same condition), from the chain's :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metric import Metric

__all__ = ["nuts_transition", "Point"]


class Point:
    """A phase-space point: position, momentum, log density and its gradient (arrays on xp)."""

    __slots__ = ("theta", "p", "logp", "grad")

    def __init__(self, theta: Any, p: Any, logp: float, grad: Any) -> None:
        self.theta = theta
        self.p = p
        self.logp = logp
        self.grad = grad


def leapfrog(post: Any, metric: Metric, z: Point, eps: float) -> Point:
    """One leapfrog step of size ``eps`` (negative: backwards in time).

    ``p_{1/2} = p + eps/2 grad log pi(theta)``, ``theta' = theta + eps M^{-1} p_{1/2}``,
    ``p' = p_{1/2} + eps/2 grad log pi(theta')``. A non-finite log density is mapped to
    ``-inf`` so the caller sees an infinite energy.
    """
    half = 0.5 * eps
    p_half = z.p + half * z.grad
    theta = z.theta + eps * metric.velocity(p_half)
    logp, grad = post.value_and_grad(theta)
    logp = float(logp)
    if not math.isfinite(logp):
        logp = -math.inf
    return Point(theta, p_half + half * grad, logp, grad)


def _crit(xp: Any, p_sharp_minus: Any, p_sharp_plus: Any, rho: Any) -> bool:
    return bool(float(xp.dot(p_sharp_plus, rho)) > 0) & bool(float(xp.dot(p_sharp_minus, rho)) > 0)


class _Ctx:
    __slots__ = ("post", "metric", "xp", "eps", "H0", "rng", "max_delta_h", "n_leapfrog",
                 "sum_metro_prob", "divergent")

    def __init__(self, post: Any, metric: Metric, eps: float, H0: float,
                 rng: np.random.Generator, max_delta_h: float) -> None:
        self.post, self.metric, self.xp = post, metric, metric.xp
        self.eps, self.H0, self.rng, self.max_delta_h = eps, H0, rng, max_delta_h
        self.n_leapfrog = 0
        self.sum_metro_prob = 0.0
        self.divergent = False


def _build_tree(ctx: _Ctx, depth: int, z: Point, sign: float) -> tuple:
    """Stan's ``build_tree``. Returns ``(valid, z_end, z_propose, p_sharp_beg, p_sharp_end,
    rho, p_beg, p_end, log_sum_weight)``; only ``valid`` is meaningful when it is False."""
    if depth == 0:
        z1 = leapfrog(ctx.post, ctx.metric, z, sign * ctx.eps)
        ctx.n_leapfrog += 1
        v = ctx.metric.velocity(z1.p)
        h = -z1.logp + 0.5 * float(ctx.xp.dot(z1.p, v))
        if not math.isfinite(h):
            h = math.inf
        if h - ctx.H0 > ctx.max_delta_h:
            ctx.divergent = True
        dH = ctx.H0 - h
        ctx.sum_metro_prob += 1.0 if dH > 0 else math.exp(dH)
        return (not ctx.divergent, z1, z1, v, v, z1.p, z1.p, z1.p, dH)

    init = _build_tree(ctx, depth - 1, z, sign)
    if not init[0]:
        return (False,) + (None,) * 8
    _, z_mid, prop_init, ps_beg, ps_init_end, rho_init, p_beg, p_init_end, lsw_init = init
    final = _build_tree(ctx, depth - 1, z_mid, sign)
    if not final[0]:
        return (False,) + (None,) * 8
    _, z_end, prop_final, ps_final_beg, ps_end, rho_final, p_final_beg, p_end, lsw_final = final

    lsw_subtree = float(np.logaddexp(lsw_init, lsw_final))
    if lsw_final > lsw_subtree:
        z_propose = prop_final
    else:
        accept_prob = math.exp(lsw_final - lsw_subtree)
        z_propose = prop_final if ctx.rng.uniform() < accept_prob else prop_init

    rho_subtree = rho_init + rho_final
    xp = ctx.xp
    persist = _crit(xp, ps_beg, ps_end, rho_subtree)
    persist &= _crit(xp, ps_beg, ps_final_beg, rho_init + p_final_beg)
    persist &= _crit(xp, ps_init_end, ps_end, rho_final + p_init_end)
    return (persist, z_end, z_propose, ps_beg, ps_end, rho_subtree, p_beg, p_end, lsw_subtree)


def nuts_transition(
    post: Any,
    metric: Metric,
    z0: Point,
    eps: float,
    rng: np.random.Generator,
    max_depth: int = 10,
    max_delta_h: float = 1000.0,
) -> dict[str, Any]:
    """One multinomial NUTS transition from ``z0`` (its momentum is ignored and redrawn).

    Parameters
    ----------
    post : object
        Log posterior with ``value_and_grad(theta) -> (float, array (n,))``.
    metric : Metric
        Mass matrix.
    z0 : Point
        Current position with its log density and gradient.
    eps : float
        Step size.
    rng : numpy.random.Generator
        The chain's generator.
    max_depth : int
        Maximum tree depth (at most ``2**max_depth`` leapfrog steps).
    max_delta_h : float
        Energy error ``H - H0`` above which a transition is divergent (Stan: 1000).

    Returns
    -------
    dict
        ``point`` (Point), ``accept_stat``, ``energy`` (H at the new point),
        ``n_leapfrog``, ``tree_depth``, ``divergent``.
    """
    xp = metric.xp
    p = metric.sample_momentum(rng)
    v0 = metric.velocity(p)
    z0 = Point(z0.theta, p, z0.logp, z0.grad)
    H0 = -z0.logp + 0.5 * float(xp.dot(p, v0))
    ctx = _Ctx(post, metric, eps, H0, rng, max_delta_h)

    z_fwd = z_bck = z_sample = z0
    p_fwd_fwd = p_fwd_bck = p_bck_fwd = p_bck_bck = p
    ps_fwd_fwd = ps_fwd_bck = ps_bck_fwd = ps_bck_bck = v0
    rho = p
    log_sum_weight = 0.0
    depth = 0
    energy_sample = H0
    while depth < max_depth:
        if rng.uniform() > 0.5:
            rho_bck = rho
            p_bck_fwd, ps_bck_fwd = p_fwd_fwd, ps_fwd_fwd
            res = _build_tree(ctx, depth, z_fwd, 1.0)
            if not res[0]:
                break
            (_, z_fwd, z_propose, ps_fwd_bck, ps_fwd_fwd, rho_fwd, p_fwd_bck, p_fwd_fwd,
             lsw_sub) = res
        else:
            rho_fwd = rho
            p_fwd_bck, ps_fwd_bck = p_bck_bck, ps_bck_bck
            res = _build_tree(ctx, depth, z_bck, -1.0)
            if not res[0]:
                break
            (_, z_bck, z_propose, ps_bck_fwd, ps_bck_bck, rho_bck, p_bck_fwd, p_bck_bck,
             lsw_sub) = res
        depth += 1
        if lsw_sub > log_sum_weight:
            z_sample = z_propose
        else:
            if rng.uniform() < math.exp(lsw_sub - log_sum_weight):
                z_sample = z_propose
        log_sum_weight = float(np.logaddexp(log_sum_weight, lsw_sub))

        rho = rho_bck + rho_fwd
        persist = _crit(xp, ps_bck_bck, ps_fwd_fwd, rho)
        persist &= _crit(xp, ps_bck_bck, ps_fwd_bck, rho_bck + p_fwd_bck)
        persist &= _crit(xp, ps_bck_fwd, ps_fwd_fwd, rho_fwd + p_bck_fwd)
        if not persist:
            break

    if z_sample is not z0:
        energy_sample = -z_sample.logp + metric.kinetic(z_sample.p)
    return {
        "point": z_sample,
        "accept_stat": ctx.sum_metro_prob / max(ctx.n_leapfrog, 1),
        "energy": energy_sample,
        "n_leapfrog": ctx.n_leapfrog,
        "tree_depth": depth,
        "divergent": ctx.divergent,
    }
