"""Hamiltonian Monte Carlo for linlim posteriors: static HMC with jittered trajectory
lengths or multinomial NUTS, Stan's warm-up, several reproducible chains, and resumable
HDF5 output.

The sampler consumes any object with the log-posterior protocol

- ``post.size`` (int), ``post.xp`` (array module, optional: NumPy when absent),
- ``post.value(theta) -> float`` (log density, higher is better),
- ``post.grad(theta) -> array (n,)``,
- ``post.value_and_grad(theta) -> (float, array (n,))``,
- optionally ``post.value_and_grad_batch(thetas) -> (array (C,), array (C, n))``, the same at
  ``C`` points at once,

and runs on its array module (NumPy or CuPy); only random numbers (drawn on the host, one
:class:`numpy.random.Generator` per chain) and scalars cross to the host.

Algorithm
---------
Warm-up follows Stan exactly (see :mod:`linlim.inference.warmup`): dual averaging of the
step size towards ``target_accept``, Stan's step-size initialisation heuristic, windowed
estimation of a diagonal or dense inverse metric with the windows 75 / 25, 50, 100, ... /
50, and the dual averaging restarted at ``mu = log(10 eps)`` after every metric update.
A fixed metric (identity, or the Fisher matrix via :func:`~linlim.inference.metric.fisher_metric`,
dense or low-rank plus diagonal) can be given instead, then only the step size is adapted.

A static-HMC transition integrates for ``L = max(1, ceil(T / eps))`` leapfrog steps with the
integration time ``T`` jittered uniformly in ``[(1 - jitter) int_time, (1 + jitter) int_time]``
(this breaks the periodicities that make fixed-length HMC non-ergodic on near-Gaussian
targets), then accepts with probability ``min(1, exp(H0 - H))``. NUTS is a port of Stan's.

Static-HMC chains that share one fixed metric are advanced **in lockstep**
(:func:`static_transitions`): each leapfrog step applies the metric to all chains' momenta
as one matrix-matrix product (a dense ``n x n`` metric is read once per step instead of once
per chain) and evaluates the gradient at all positions in one ``value_and_grad_batch`` call
when the posterior has one. Every chain keeps its own step size, trajectory length, random
stream and accept/reject, drawn in the same order as one chain alone, so a chain's draws
equal those of the one-chain-at-a-time loop up to floating-point rounding.

A transition is **divergent** when its energy error ``H - H0`` exceeds ``max_delta_h``
(1000, as Stan) or becomes non-finite; static HMC also stops the trajectory as soon as the
potential energy alone passes that bound. Divergent static transitions are rejected.
Divergences are counted per chain, reported in :meth:`HMCResult.summary` and in a
:class:`DivergenceWarning` after sampling.

Checkpoints
-----------
With ``path=...`` every ``checkpoint_every`` iterations (or ``checkpoint_seconds``) the new
draws, statistics and the complete state go to an atomic HDF5 segment
(:mod:`linlim.io.chains`). Rerunning the same call resumes from the last checkpoint and
produces results bit-identical to an uninterrupted run (same machine and BLAS threads),
whatever instant the previous process was killed at.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import asarray, to_numpy
from ..errors import InputError, ShapeError
from .diagnostics import ChainDraws
from .metric import (
    DenseMetric,
    DiagonalMetric,
    IdentityMetric,
    Metric,
    metric_from_state,
)
from .nuts import Point, leapfrog, nuts_transition
from .optimize import check_count
from .warmup import (
    STAN_BASE_WINDOW,
    STAN_GAMMA,
    STAN_INIT_BUFFER,
    STAN_KAPPA,
    STAN_T0,
    STAN_TERM_BUFFER,
    DualAveraging,
    WelfordCovariance,
    WelfordVariance,
    WindowedAdaptation,
)

__all__ = ["HMC", "HMCResult", "DivergenceWarning", "sample", "load_result",
           "static_transition", "static_transitions"]

_STATS = ("lp", "accept_stat", "energy", "step_size", "tree_depth", "n_leapfrog", "divergent")
_STAT_DTYPES = {"tree_depth": np.int32, "n_leapfrog": np.int64, "divergent": np.bool_}


class DivergenceWarning(UserWarning):
    """Issued after sampling when post-warm-up transitions diverged."""


def static_transition(
    post: Any,
    metric: Metric,
    z0: Point,
    eps: float,
    n_steps: int,
    rng: np.random.Generator,
    max_delta_h: float = 1000.0,
    centre: Any | None = None,
) -> dict[str, Any]:
    """One static HMC transition of ``n_steps`` leapfrog steps with Metropolis correction.

    Parameters
    ----------
    post : object
        Log posterior (see module docstring).
    metric : Metric
        Mass matrix.
    z0 : Point
        Current state (its momentum is redrawn).
    eps : float
        Step size.
    n_steps : int
        Number of leapfrog steps.
    rng : numpy.random.Generator
        Chain generator: one momentum draw and one uniform are taken from it.
    max_delta_h : float
        Divergence threshold on ``H - H0``.
    centre : array (n,), optional
        Split the Hamiltonian about the Gaussian ``N(centre, M^{-1})`` (see
        :func:`static_transitions`).

    Returns
    -------
    dict
        ``point``, ``accept_stat`` (``min(1, exp(H0 - H))``, 0 if divergent), ``energy``,
        ``n_leapfrog``, ``tree_depth`` (0), ``divergent``.
    """
    return static_transitions(post, metric, [z0], [eps], [n_steps], [rng], max_delta_h,
                              centre)[0]


def _fingerprint(a: Any) -> str:
    """A short hash of an array (pins a run's split centre in its checkpoints)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(to_numpy(a), np.float64).tobytes()).hexdigest()[:16]


def _kinetic_rows(xp: Any, P: Any, V: Any) -> np.ndarray:
    """``p . M^{-1} p / 2`` per row, as :meth:`Metric.kinetic` forms it (one dot each)."""
    return np.array([0.5 * float(xp.dot(p, v)) for p, v in zip(P, V)])


def static_transitions(
    post: Any,
    metric: Metric,
    points: list[Point],
    eps: list[float],
    n_steps: list[int],
    rngs: list[np.random.Generator],
    max_delta_h: float = 1000.0,
    centre: Any | None = None,
) -> list[dict[str, Any]]:
    r"""Static HMC transitions of ``C`` chains that share one metric, in lockstep.

    Chain ``c`` draws its momentum and then its uniform from ``rngs[c]``, runs
    ``n_steps[c]`` steps of size ``eps[c]`` and is accepted or rejected alone; a chain
    alone (``C = 1``) is :func:`static_transition`. Only the work is shared: at each step
    the momenta of the chains still moving go through ``metric.velocity_batch`` together
    (one matrix-matrix product) and their positions through ``post.value_and_grad_batch``
    when the posterior provides it.

    **Split HMC** (``centre`` given; Shahbaba et al. 2014, Stat. Comput. 24, 339). The
    potential is split as ``U = U0 + U1`` with the Gaussian part
    ``U0 = (x - m)^T M (x - m) / 2`` (``m = centre``, ``M`` the metric's mass). The
    Hamiltonian flow of ``U0 + K`` is a rotation, solved exactly for a time ``eps``
    (``c = cos eps``, ``s = sin eps``, ``d = x - m``, ``v = M^{-1} p``, ``a = M d``):

    .. math::

        d' = c\,d + s\,v,\quad p' = c\,p - s\,a,\quad a' = c\,a + s\,p,\quad
        v' = c\,v - s\,d,

    and only the residual force ``-grad U1 = grad log pi + a`` is integrated by half kicks
    around it (Strang splitting: symplectic, volume-preserving and reversible, so the
    Metropolis step with the full ``H`` keeps the target exact). On a near-Gaussian
    posterior with ``M`` its Hessian the residual is small and a trajectory needs a few
    steps where leapfrog needs ``O(d^{1/4})`` times more. Each step costs one gradient and
    one ``M^{-1}`` product, as a leapfrog step; ``a`` is carried by the rotation (one ``M``
    product per trajectory).

    Parameters
    ----------
    post : object
        Log posterior (see module docstring).
    metric : Metric
        Mass matrix shared by all chains (with ``centre``: also ``mass_batch``).
    points : list of Point
        Current states (their momenta are redrawn).
    eps : list of float
        Step size of each chain.
    n_steps : list of int
        Steps of each chain.
    rngs : list of numpy.random.Generator
        Each chain's generator.
    max_delta_h : float
        Divergence threshold on ``H - H0``.
    centre : array (n,), optional
        The Gaussian part's mean ``m`` (split HMC); None for plain leapfrog.

    Returns
    -------
    list of dict
        Per chain, as :func:`static_transition`.
    """
    xp = metric.xp
    C = len(points)
    # p = B z ~ N(0, M) (B B^T = M), drawn as Metric.sample_momentum draws it, for all chains
    # in one product; its kinetic energy p . M^-1 p / 2 is exactly z . z / 2
    Z = [r.standard_normal(metric.size) for r in rngs]
    u = [r.uniform() for r in rngs]
    P = metric.sqrt_mass_batch(asarray(np.stack(Z), xp))
    Q = xp.stack([z.theta for z in points])
    G = xp.stack([z.grad for z in points])
    logp = np.array([z.logp for z in points], float)
    H0 = -logp + np.array([0.5 * float(z @ z) for z in Z])
    e = np.asarray(eps, float)
    steps = np.asarray(n_steps, int)
    n_done = np.zeros(C, int)
    divergent = np.zeros(C, bool)
    split = centre is not None
    A = metric.mass_batch(Q - centre) if split else None          # M (x - m)
    batch_grad = getattr(post, "value_and_grad_batch", None)
    for s in range(int(steps.max(initial=0))):
        act = np.flatnonzero((steps > s) & ~divergent)       # chains still moving (host)
        if act.size == 0:
            break
        ia = asarray(act, xp)                                # the same, to index on xp
        half = asarray(0.5 * e[act], xp)[:, None]
        force = G[ia] + A[ia] if split else G[ia]
        p_half = P[ia] + half * force
        v_half = metric.velocity_batch(p_half)
        if split:
            cs = asarray(np.cos(e[act]), xp)[:, None]
            sn = asarray(np.sin(e[act]), xp)[:, None]
            theta = centre + cs * (Q[ia] - centre) + sn * v_half
            p_half, a_new = cs * p_half - sn * A[ia], cs * A[ia] + sn * p_half
            A[ia] = a_new
        else:
            theta = Q[ia] + asarray(e[act], xp)[:, None] * v_half
        if batch_grad is not None:
            lp, g = batch_grad(theta)
            lp = to_numpy(lp).astype(float)
        else:
            pairs = [post.value_and_grad(t) for t in theta]
            lp = np.array([float(v) for v, _ in pairs])
            g = xp.stack([gr for _, gr in pairs])
        lp[~np.isfinite(lp)] = -math.inf
        P[ia] = p_half + half * (g + A[ia] if split else g)
        Q[ia], G[ia] = theta, g
        logp[act] = lp
        n_done[act] += 1
        divergent[act[-lp - H0[act] > max_delta_h]] = True
    h = np.full(C, math.inf)
    ok = np.flatnonzero(~divergent)
    if ok.size:
        Pok = P[asarray(ok, xp)]
        h[ok] = -logp[ok] + _kinetic_rows(xp, Pok, metric.velocity_batch(Pok))
    out = []
    for c in range(C):
        div = bool(divergent[c]) or not math.isfinite(h[c]) or h[c] - H0[c] > max_delta_h
        accept_stat = 0.0 if div else min(1.0, math.exp(min(0.0, H0[c] - h[c])))
        if not div and u[c] < accept_stat:
            z = Point(Q[c].copy(), None, float(logp[c]), G[c].copy())
            out.append({"point": z, "accept_stat": accept_stat, "energy": float(h[c]),
                        "n_leapfrog": int(n_done[c]), "tree_depth": 0, "divergent": False})
        else:
            out.append({"point": points[c], "accept_stat": accept_stat, "energy": float(H0[c]),
                        "n_leapfrog": int(n_done[c]), "tree_depth": 0, "divergent": div})
    return out


@dataclass
class HMCResult(ChainDraws):
    """Output of :meth:`HMC.sample`.

    Attributes
    ----------
    draws : ndarray (chains, num_draws, n) float64
        Post-warm-up draws (host memory).
    sample_stats : dict of ndarray (chains, num_draws)
        ``lp`` (log density), ``accept_stat``, ``energy`` (Hamiltonian), ``step_size``,
        ``tree_depth``, ``n_leapfrog``, ``divergent``.
    warmup_stats : dict of ndarray (chains, num_warmup)
        The same during warm-up.
    warmup_draws : ndarray (chains, num_warmup, n) or None
        Only with ``save_warmup=True``.
    config : dict
        The run configuration.
    metrics : list of Metric or None
        Each chain's final metric (None when loaded from a file of a run with a fixed,
        unadapted metric, which is not stored: the config's fingerprint identifies it).
    """

    draws: np.ndarray
    sample_stats: dict[str, np.ndarray]
    warmup_stats: dict[str, np.ndarray]
    config: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    warmup_draws: np.ndarray | None = None

    @property
    def step_size(self) -> np.ndarray:
        """Step size used after warm-up, per chain, (chains,)."""
        return self.sample_stats["step_size"][:, -1] if self.num_draws else np.array([])

    @property
    def n_divergent(self) -> int:
        """Number of divergent post-warm-up transitions (all chains)."""
        return int(np.sum(self.sample_stats["divergent"]))

    @property
    def n_divergent_warmup(self) -> int:
        return int(np.sum(self.warmup_stats["divergent"])) if self.warmup_stats else 0

    @property
    def n_grad(self) -> int:
        """Gradient evaluations after warm-up (leapfrog steps), all chains."""
        return int(np.sum(self.sample_stats["n_leapfrog"]))

    def summary(self, names: list[str] | None = None, **kwargs: Any):
        """Per-parameter diagnostics and sampler statistics; see
        :func:`linlim.inference.diagnostics.summary`."""
        from .diagnostics import summary

        return summary(self, names=names, **kwargs)

    def to_inference_data(self, names: list[str] | None = None):
        """ArviZ ``InferenceData`` (requires arviz)."""
        from .diagnostics import to_inference_data

        return to_inference_data(self, names=names)


def load_result(path: str) -> HMCResult:
    """Load an :class:`HMCResult` from a chain file written by :meth:`HMC.sample` (finished
    or in progress; see :func:`linlim.io.chains.read_chains`)."""
    from ..io.chains import read_chains

    data = read_chains(path)
    state = data.get("state", {})
    metrics = []
    for c in range(int(data["config"]["chains"])):
        cs = state.get(f"chain_{c}")
        if cs is not None:   # a fixed metric is not stored (None; the caller has it)
            metrics.append(metric_from_state(cs["metric_kind"], cs["metric"], np)
                           if "metric" in cs else None)
    return HMCResult(
        draws=np.asarray(data["draws"]),
        sample_stats={k: np.asarray(v) for k, v in data["sample_stats"].items()},
        warmup_stats={k: np.asarray(v) for k, v in data["warmup_stats"].items()},
        config=data["config"],
        metrics=metrics,
        warmup_draws=data.get("warmup_draws"),
    )


class _Chain:
    """Mutable state of one chain."""

    def __init__(self) -> None:
        self.z: Point
        self.rng: np.random.Generator
        self.eps: float
        self.da: DualAveraging
        self.window: WindowedAdaptation
        self.est: WelfordVariance | None
        self.metric: Metric


class _DrawBuffer:
    """Draws and transition statistics since the last checkpoint (all iterations when
    sampling in memory), per chain.

    Parameters
    ----------
    chains, size : int
    first_kept : int
        First iteration whose draw is kept (0 to keep warm-up draws, else ``num_warmup``).
    """

    def __init__(self, chains: int, size: int, first_kept: int) -> None:
        self.chains, self.size, self.first_kept = chains, size, first_kept
        self.iterations: list[int] = []
        self.draw_iterations: list[int] = []
        self.stats: dict[str, list[list[Any]]] = {k: [[] for _ in range(chains)]
                                                  for k in _STATS}
        self.draws: list[list[np.ndarray]] = [[] for _ in range(chains)]
        self.accept_recent = np.zeros(chains)

    def record(self, c: int, ch: _Chain, res: dict[str, Any], eps: float, it: int) -> None:
        """Store chain ``c``'s transition at iteration ``it`` (taken with step ``eps``)."""
        st = self.stats
        st["lp"][c].append(ch.z.logp)
        st["accept_stat"][c].append(res["accept_stat"])
        st["energy"][c].append(res["energy"])
        st["step_size"][c].append(eps)
        st["tree_depth"][c].append(res["tree_depth"])
        st["n_leapfrog"][c].append(res["n_leapfrog"])
        st["divergent"][c].append(res["divergent"])
        if it >= self.first_kept:
            self.draws[c].append(to_numpy(ch.z.theta).astype(np.float64, copy=True))
        self.accept_recent[c] = 0.9 * self.accept_recent[c] + 0.1 * res["accept_stat"]

    def end_iteration(self, it: int) -> None:
        self.iterations.append(it)
        if it >= self.first_kept:
            self.draw_iterations.append(it)

    def _draw_array(self) -> np.ndarray:
        if self.draw_iterations:
            return np.asarray(self.draws, dtype=np.float64)
        return np.zeros((self.chains, 0, self.size))

    def _stat_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=_STAT_DTYPES.get(k, np.float64))
                for k, v in self.stats.items()}

    def arrays(self) -> dict[str, Any]:
        """The buffered segment as arrays (the layout of :mod:`linlim.io.chains`)."""
        return {"iteration": np.asarray(self.iterations, dtype=np.int64),
                "draw_iteration": np.asarray(self.draw_iterations, dtype=np.int64),
                "stats": self._stat_arrays(), "draws": self._draw_array()}

    def clear(self) -> None:
        self.iterations.clear()
        self.draw_iterations.clear()
        for v in self.stats.values():
            for lst in v:
                lst.clear()
        for lst in self.draws:
            lst.clear()

    def result(self, num_warmup: int, config: dict[str, Any], metrics: list,
               save_warmup: bool) -> HMCResult:
        """An in-memory run's :class:`HMCResult` (every iteration is buffered)."""
        stats = self._stat_arrays()
        w = np.asarray(self.iterations, dtype=np.int64) < num_warmup
        draws = self._draw_array()
        dit = np.asarray(self.draw_iterations, dtype=np.int64)
        return HMCResult(
            draws=draws[:, dit >= num_warmup, :],
            sample_stats={k: v[:, ~w] for k, v in stats.items()},
            warmup_stats={k: v[:, w] for k, v in stats.items()},
            config=config,
            metrics=metrics,
            warmup_draws=draws[:, dit < num_warmup, :] if save_warmup else None,
        )


class _Progress:
    """Optional tqdm bar: mean recent acceptance, step sizes, phase."""

    def __init__(self, progress: bool | None, start: int, total: int, desc: str) -> None:
        show = sys.stderr.isatty() if progress is None else bool(progress)
        self.bar = None
        if show and start < total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=desc, unit="it")

    def update(self, it: int, total: int, warm: bool, accept: np.ndarray,
               chs: list[_Chain]) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if it % 10 == 0 or it == total - 1:
            self.bar.set_postfix(accept=f"{accept.mean():.2f}",
                                 eps=",".join(f"{ch.eps:.3g}" for ch in chs),
                                 phase="warmup" if warm else "sampling", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class HMC:
    """Hamiltonian Monte Carlo sampler (static with jitter, or NUTS) with Stan's warm-up.

    Parameters
    ----------
    posterior : object
        Log posterior implementing ``size``, ``xp``, ``value``, ``grad``,
        ``value_and_grad``.
    metric : {"diag", "dense", "identity"} or Metric
        ``"diag"`` / ``"dense"``: start from the identity and adapt a diagonal / dense inverse
        metric in Stan's windows. ``"identity"``: fixed unit metric. A :class:`Metric`
        instance (e.g. ``fisher_metric(F)``) is used as given and not adapted unless
        ``adapt_metric=True`` (then it is only the starting point).
    algorithm : {"hmc", "nuts"}
        Static HMC with jittered integration time, or multinomial NUTS.
    target_accept : float
        Dual-averaging target ``delta`` (Stan: 0.8).
    int_time : float
        Static HMC integration time ``T`` in the metric's whitened units; pi/2 is a quarter
        period of a unit Gaussian (independent draws when the metric whitens the target).
    jitter : float in [0, 1)
        Relative half-width of the uniform jitter of ``T``.
    step_size : float
        Initial step size ``eps0`` (``mu = log(10 eps0)``), or the fixed step size when
        ``adapt_step_size=False``.
    adapt_step_size : bool
        Dual averaging during warm-up.
    adapt_metric : bool, optional
        Default: True for "diag"/"dense", False otherwise.
    split_centre : array (n,), optional
        Static HMC only, with a fixed metric: split the Hamiltonian about the Gaussian
        ``N(split_centre, M^{-1})`` and integrate that part exactly (split HMC; see
        :func:`static_transitions`). For posteriors close to that Gaussian (the metric their
        Hessian at the mode, the centre the mode) it allows much longer steps. The draws
        target the posterior exactly whatever the centre; only efficiency depends on it.
    batch_chains : bool
        Advance static-HMC chains that share one fixed metric in lockstep
        (:func:`static_transitions`: one metric and one gradient evaluation per step for
        all chains). The draws equal the one-chain-at-a-time loop's up to rounding.
    max_depth : int
        NUTS maximum tree depth (Stan: 10).
    max_delta_h : float
        Divergence threshold on the energy error (Stan: 1000).
    init_buffer, term_buffer, base_window : int
        Stan's warm-up windows (75, 50, 25).
    gamma, kappa, t0 : float
        Dual-averaging constants (Stan: 0.05, 0.75, 10).
    """

    def __init__(
        self,
        posterior: Any,
        *,
        metric: str | Metric = "diag",
        algorithm: str = "hmc",
        target_accept: float = 0.8,
        int_time: float = 0.5 * math.pi,
        jitter: float = 0.5,
        step_size: float = 1.0,
        adapt_step_size: bool = True,
        adapt_metric: bool | None = None,
        split_centre: Any | None = None,
        batch_chains: bool = True,
        max_depth: int = 10,
        max_delta_h: float = 1000.0,
        init_buffer: int = STAN_INIT_BUFFER,
        term_buffer: int = STAN_TERM_BUFFER,
        base_window: int = STAN_BASE_WINDOW,
        gamma: float = STAN_GAMMA,
        kappa: float = STAN_KAPPA,
        t0: float = STAN_T0,
    ) -> None:
        for attr in ("size", "value_and_grad"):
            if not hasattr(posterior, attr):
                raise InputError(
                    f"posterior: expected an object with size, value, grad and value_and_grad, "
                    f"received {type(posterior).__name__} without {attr!r}"
                )
        self.post = posterior
        self.size = int(posterior.size)
        self.xp = getattr(posterior, "xp", None) or np
        if algorithm not in ("hmc", "nuts"):
            raise InputError(f"algorithm: expected 'hmc' or 'nuts', received {algorithm!r}")
        if isinstance(metric, Metric):
            if metric.size != self.size:
                raise ShapeError(
                    f"metric: expected size {self.size} (posterior.size), received {metric.size}")
            if metric.xp is not self.xp:
                raise InputError(
                    f"metric: built on {metric.xp.__name__}, posterior uses {self.xp.__name__}; "
                    "construct the metric with xp=posterior.xp")
            self.metric_kind = metric.kind
            self.metric0 = metric
            adapt_default = False
        elif metric in ("diag", "dense", "identity"):
            self.metric_kind = metric
            self.metric0 = IdentityMetric(self.size, self.xp)
            adapt_default = metric != "identity"
        else:
            raise InputError(
                f"metric: expected 'diag', 'dense', 'identity' or a Metric, received {metric!r}")
        self.adapt_metric = adapt_default if adapt_metric is None else bool(adapt_metric)
        if self.adapt_metric and self.metric_kind not in ("diag", "dense"):
            self.adapt_kind = "diag" if self.metric_kind in ("identity", "lowrank") else "dense"
        else:
            self.adapt_kind = self.metric_kind
        if not 0.0 < target_accept < 1.0:
            raise InputError(f"target_accept: expected a value in (0, 1), received {target_accept}")
        if not 0.0 <= jitter < 1.0:
            raise InputError(f"jitter: expected a value in [0, 1), received {jitter}")
        if not (int_time > 0 and step_size > 0 and max_delta_h > 0 and max_depth >= 1):
            raise InputError("int_time, step_size, max_delta_h and max_depth must be positive")
        self.algorithm = algorithm
        self.batch_chains = bool(batch_chains)
        self.centre = None
        if split_centre is not None:
            if algorithm != "hmc" or self.adapt_metric:
                raise InputError(
                    f"split_centre: expected algorithm 'hmc' with a fixed metric (the Gaussian "
                    f"part's precision), received algorithm {algorithm!r}, adapt_metric "
                    f"{self.adapt_metric}")
            c = np.asarray(to_numpy(split_centre), dtype=np.float64)
            if c.shape != (self.size,) or not np.all(np.isfinite(c)):
                raise ShapeError(f"split_centre: expected finite values of shape ({self.size},), "
                                 f"received shape {c.shape}")
            self.metric0.mass_batch(asarray(c[None], self.xp))      # refuses a metric without
            self.centre = asarray(c, self.xp)
        self.target_accept = float(target_accept)
        self.int_time = float(int_time)
        self.jitter = float(jitter)
        self.step_size0 = float(step_size)
        self.adapt_step_size = bool(adapt_step_size)
        self.max_depth = int(max_depth)
        self.max_delta_h = float(max_delta_h)
        self.windows = (int(init_buffer), int(term_buffer), int(base_window))
        self.da_consts = (float(gamma), float(kappa), float(t0))

    # ------------------------------------------------------------------------------------
    def _config(self, num_draws: int, num_warmup: int, chains: int, seed: int,
                save_warmup: bool, init_fp: str) -> dict[str, Any]:
        return {
            "size": self.size, "num_draws": int(num_draws), "num_warmup": int(num_warmup),
            "chains": int(chains), "seed": int(seed), "algorithm": self.algorithm,
            "metric": self.metric_kind, "adapt_metric": self.adapt_metric,
            "metric_fingerprint": (self.metric0.fingerprint()
                                   if not self.adapt_metric
                                   or self.metric_kind not in ("diag", "dense") else ""),
            "target_accept": self.target_accept, "int_time": self.int_time,
            "jitter": self.jitter, "step_size": self.step_size0,
            "adapt_step_size": self.adapt_step_size, "max_depth": self.max_depth,
            "max_delta_h": self.max_delta_h, "windows": list(self.windows),
            "dual_averaging": list(self.da_consts), "save_warmup": bool(save_warmup),
            "init": init_fp,
        } | ({} if self.centre is None else {"split_centre": _fingerprint(self.centre)})

    def _eval(self, theta: Any) -> Point:
        logp, grad = self.post.value_and_grad(theta)
        return Point(theta, None, float(logp), grad)

    def _init_chain(self, c: int, seed_seq: np.random.SeedSequence, init: np.ndarray | None,
                    num_warmup: int) -> _Chain:
        ch = _Chain()
        ch.rng = np.random.Generator(np.random.PCG64(seed_seq))
        if init is not None:
            theta = asarray(init[c], self.xp)
            z = self._eval(theta)
            if not (math.isfinite(z.logp) and bool(self.xp.all(self.xp.isfinite(z.grad)))):
                raise InputError(
                    f"init: log density or gradient not finite at the initial point of chain {c}")
        else:
            for _ in range(100):
                theta = asarray(ch.rng.uniform(-2.0, 2.0, self.size), self.xp)
                z = self._eval(theta)
                if math.isfinite(z.logp) and bool(self.xp.all(self.xp.isfinite(z.grad))):
                    break
            else:
                raise InputError(
                    "init: no finite log density found in 100 uniform(-2, 2) draws; pass init=")
        ch.z = z
        ch.metric = self.metric0
        gamma, kappa, t0 = self.da_consts
        ch.da = DualAveraging(self.target_accept, gamma, kappa, t0,
                              mu=math.log(10.0 * self.step_size0))
        ch.window = WindowedAdaptation(num_warmup, *self.windows)
        ch.est = None
        if self.adapt_metric:
            cls = WelfordCovariance if self.adapt_kind == "dense" else WelfordVariance
            ch.est = cls(self.size, self.xp)
        ch.eps = self.step_size0
        if num_warmup > 0 and self.adapt_step_size:
            ch.eps = self._init_stepsize(ch, ch.eps)
        return ch

    def _init_stepsize(self, ch: _Chain, eps: float) -> float:
        """Stan's heuristic: double or halve ``eps`` until one leapfrog step's acceptance
        probability crosses 0.8."""
        if eps == 0 or eps > 1e7 or math.isnan(eps):
            return eps
        log08 = math.log(0.8)

        def delta_h() -> float:
            if self.centre is not None:     # one split step; only "accept > 0.8" matters
                a = static_transition(self.post, ch.metric, ch.z, eps, 1, ch.rng,
                                      self.max_delta_h, self.centre)["accept_stat"]
                return math.log(a) if a > 0 else -math.inf
            p = ch.metric.sample_momentum(ch.rng)
            H0 = -ch.z.logp + ch.metric.kinetic(p)
            z1 = leapfrog(self.post, ch.metric, Point(ch.z.theta, p, ch.z.logp, ch.z.grad), eps)
            h = -z1.logp + ch.metric.kinetic(z1.p)
            if math.isnan(h):
                h = math.inf
            return H0 - h

        direction = 1 if delta_h() > log08 else -1
        while True:
            dh = delta_h()
            if direction == 1 and not dh > log08:
                break
            if direction == 1 and self.centre is not None and eps >= self.int_time:
                break                   # split HMC: one step already spans a trajectory
            if direction == -1 and not dh < log08:
                break
            eps = 2.0 * eps if direction == 1 else 0.5 * eps
            if eps > 1e7:
                raise InputError("posterior: step size diverged above 1e7; the posterior "
                                 "looks improper")
            if eps == 0:
                raise InputError("posterior: no acceptably small step size; is the log "
                                 "density continuous?")
        return eps

    def _trajectory(self, ch: _Chain, eps: float) -> tuple[float, int]:
        """A static trajectory's step size and number of steps (one jitter uniform from the
        chain). Split HMC shortens the step to ``t / ceil(t / eps)`` so the trajectory lasts
        exactly ``t``: its exact rotation makes any step stable, and a step beyond the
        integration time would rotate past it (a full period returns to the start)."""
        t = self.int_time * (1.0 + self.jitter * (2.0 * ch.rng.uniform() - 1.0))
        n = max(1, math.ceil(t / eps))
        return (t / n if self.centre is not None else eps), n

    def _transition(self, ch: _Chain, eps: float) -> dict[str, Any]:
        if self.algorithm == "nuts":
            return nuts_transition(self.post, ch.metric, ch.z, eps, ch.rng,
                                   self.max_depth, self.max_delta_h)
        step, n = self._trajectory(ch, eps)
        return static_transition(self.post, ch.metric, ch.z, step, n, ch.rng,
                                 self.max_delta_h, self.centre)

    def _transitions(self, chs: list[_Chain]) -> list[dict[str, Any]]:
        """One transition of every chain: in lockstep when they are static HMC chains with
        one shared metric (``batch_chains``), else one chain after the other."""
        if (self.batch_chains and self.algorithm == "hmc" and len(chs) > 1
                and all(ch.metric is chs[0].metric for ch in chs)):
            step, n = zip(*[self._trajectory(ch, ch.eps) for ch in chs])
            return static_transitions(self.post, chs[0].metric, [ch.z for ch in chs],
                                      list(step), list(n), [ch.rng for ch in chs],
                                      self.max_delta_h, self.centre)
        return [self._transition(ch, ch.eps) for ch in chs]

    def _adapt(self, ch: _Chain, it: int, num_warmup: int, accept_stat: float) -> None:
        if self.adapt_step_size:
            ch.eps = ch.da.learn(accept_stat)
        add, end = ch.window.step()
        if ch.est is not None:
            if add:
                ch.est.add_sample(ch.z.theta)
            if end:
                cov = ch.est.regularized()
                if not bool(self.xp.all(self.xp.isfinite(cov))):
                    raise InputError(
                        "metric adaptation: non-finite covariance estimate; the posterior may "
                        "be improper or the chain diverged")
                ch.metric = (DenseMetric(inv_mass=cov, xp=self.xp) if self.adapt_kind == "dense"
                             else DiagonalMetric(cov, self.xp))
                ch.est.restart()
                if self.adapt_step_size:
                    ch.eps = self._init_stepsize(ch, ch.eps)
                    ch.da.mu = math.log(10.0 * ch.eps)
                    ch.da.restart()
        if it == num_warmup - 1 and self.adapt_step_size:
            ch.eps = ch.da.final()

    # -- checkpoint state -------------------------------------------------------------------
    def _chain_state(self, ch: _Chain) -> dict[str, Any]:
        st: dict[str, Any] = {
            "theta": to_numpy(ch.z.theta), "grad": to_numpy(ch.z.grad),
            "logp": np.float64(ch.z.logp), "eps": np.float64(ch.eps),
            "rng": json.dumps(ch.rng.bit_generator.state),
            "da": {k: np.float64(v) for k, v in ch.da.state().items()},
            "window": {k: np.int64(v) for k, v in ch.window.state().items()},
            "metric_kind": ch.metric.kind,
        }
        if self.adapt_metric:
            # a fixed metric is not state: the config's fingerprint pins it, and it is not
            # rewritten at every checkpoint (a dense one is n^2 numbers per chain)
            st["metric"] = ch.metric.state()
        if ch.est is not None:
            st["est"] = ch.est.state()
        return st

    def _restore_chain(self, st: dict[str, Any], num_warmup: int) -> _Chain:
        ch = _Chain()
        ch.rng = np.random.Generator(np.random.PCG64())
        ch.rng.bit_generator.state = json.loads(st["rng"])
        ch.z = Point(asarray(np.asarray(st["theta"]), self.xp), None, float(st["logp"]),
                     asarray(np.asarray(st["grad"]), self.xp))
        ch.eps = float(st["eps"])
        ch.da = DualAveraging()
        ch.da.set_state(st["da"])
        ch.window = WindowedAdaptation(num_warmup, *self.windows)
        ch.window.set_state(st["window"])
        if "metric" not in st or (st["metric_kind"] == self.metric0.kind
                                  and st["metric_kind"] not in ("diag", "dense")):
            ch.metric = self.metric0
        else:
            ch.metric = metric_from_state(st["metric_kind"], st["metric"], self.xp)
        ch.est = None
        if self.adapt_metric:
            cls = WelfordCovariance if self.adapt_kind == "dense" else WelfordVariance
            ch.est = cls(self.size, self.xp)
            ch.est.set_state(st["est"])
        return ch

    # ------------------------------------------------------------------------------------
    def sample(
        self,
        num_draws: int = 1000,
        num_warmup: int = 1000,
        chains: int = 4,
        seed: int = 0,
        init: Any | None = None,
        path: str | None = None,
        resume: bool = True,
        save_warmup: bool = False,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 60.0,
        progress: bool | None = None,
    ) -> HMCResult:
        """Run ``chains`` chains (in lockstep or one after the other within each iteration).

        This is the driver: it opens or resumes the chain store, then per iteration lets
        each chain take one transition with its warm-up adaptation (``_step``), buffers
        the draws and statistics (``_DrawBuffer``) and writes a checkpoint when due.

        Parameters
        ----------
        num_draws, num_warmup : int
            Post-warm-up draws and warm-up iterations per chain.
        chains : int
            Number of chains; chain ``c`` uses ``SeedSequence(seed).spawn(chains)[c]``.
        seed : int
            Master seed.
        init : array (n,) or (chains, n), optional
            Initial positions; default uniform(-2, 2) per coordinate, as Stan.
        path : str, optional
            HDF5 output file; checkpoints go to ``<path>.parts`` while running.
        resume : bool
            Continue from the checkpoints at ``path`` (or load the finished file) when the
            configuration matches; with False any previous output at ``path`` is removed.
        save_warmup : bool
            Also store warm-up draws.
        checkpoint_every : int
            Iterations between checkpoints.
        checkpoint_seconds : float
            Also checkpoint when this much wall time passed since the last one.
        progress : bool, optional
            tqdm progress bar with mean acceptance and step sizes (default: if stderr is a
            terminal).

        Returns
        -------
        HMCResult
        """
        num_draws = check_count(num_draws, "num_draws", "HMC.sample", 1)
        num_warmup = check_count(num_warmup, "num_warmup", "HMC.sample", 0)
        chains = check_count(chains, "chains", "HMC.sample", 1)
        seed = check_count(seed, "seed", "HMC.sample", 0)
        init_np, init_fp = self._check_init(init, chains)
        config = self._config(num_draws, num_warmup, chains, seed, save_warmup, init_fp)
        total = num_warmup + num_draws

        store, start, chs = None, 0, []
        if path is not None:
            store, start, chs, done = self._open_store(path, resume, config, chains, num_warmup)
            if done is not None:
                return self._finish(done)
        if not chs:
            seqs = np.random.SeedSequence(int(seed)).spawn(chains)
            chs = [self._init_chain(c, seqs[c], init_np, num_warmup) for c in range(chains)]

        buf = _DrawBuffer(chains, self.size, 0 if save_warmup else num_warmup)
        bar = _Progress(progress, start, total, f"{self.algorithm} x{chains}")
        t_last, since = time.monotonic(), 0
        for it in range(start, total):
            eps = [ch.eps for ch in chs]
            for c, res in enumerate(self._step(chs, it, num_warmup)):
                buf.record(c, chs[c], res, eps[c], it)
            buf.end_iteration(it)
            since += 1
            now = time.monotonic()
            if store is not None and (since >= checkpoint_every or it == total - 1
                                      or now - t_last >= checkpoint_seconds):
                self._checkpoint(store, config, buf, it + 1, chs)
                since, t_last = 0, now
            bar.update(it, total, it < num_warmup, buf.accept_recent, chs)
        bar.close()

        if store is not None:
            if store.segments():
                store.consolidate(num_warmup, save_warmup)
            result = load_result(path)
            result.metrics = [ch.metric for ch in chs] if chs else result.metrics
            return self._finish(result)
        return self._finish(buf.result(num_warmup, config, [ch.metric for ch in chs],
                                       save_warmup))

    # -- the driver's parts -------------------------------------------------------------
    def _check_init(self, init: Any, chains: int) -> tuple[np.ndarray | None, str]:
        """Initial positions as a (chains, n) host array and their fingerprint."""
        if init is None:
            return None, ""
        init_np = np.asarray(to_numpy(init), dtype=np.float64)
        if init_np.shape == (self.size,):
            init_np = np.broadcast_to(init_np, (chains, self.size))
        if init_np.shape != (chains, self.size):
            raise ShapeError(
                f"init: expected shape ({self.size},) or ({chains}, {self.size}), "
                f"received {init_np.shape}")
        return init_np, _fingerprint(init_np)

    def _open_store(self, path: str, resume: bool, config: dict[str, Any], chains: int,
                    num_warmup: int) -> tuple[Any, int, list[_Chain], HMCResult | None]:
        """Open the chain store at ``path``: ``(store, first iteration, restored chains,
        finished result or None)``."""
        from ..io.chains import ChainStore

        store = ChainStore(path)
        if not resume:
            store.reset()
        old = store.config()
        if old is not None and old != json.loads(json.dumps(config, sort_keys=True)):
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise InputError(
                f"path: {path} holds a run with a different configuration (differs in "
                f"{diff}); use another path or resume=False")
        if store.is_complete():
            if store.parts.exists():  # killed between consolidation and clean-up
                import shutil

                shutil.rmtree(store.parts)
            return store, 0, [], load_result(path)
        last = store.last_state()
        if last is None:
            return store, 0, [], None
        start, state = last
        chs = [self._restore_chain(state[f"chain_{c}"], num_warmup) for c in range(chains)]
        return store, start, chs, None

    def _step(self, chs: list[_Chain], it: int, num_warmup: int) -> list[dict[str, Any]]:
        """One transition of every chain at its current step size, then (in warm-up) each
        chain's step-size and metric adaptation. Returns the transitions' statistics."""
        results = self._transitions(chs)
        for ch, res in zip(chs, results):
            pt = res["point"]
            ch.z = Point(pt.theta, None, pt.logp, pt.grad)
            if it < num_warmup:
                self._adapt(ch, it, num_warmup, res["accept_stat"])
        return results

    def _checkpoint(self, store: Any, config: dict[str, Any], buf: _DrawBuffer, it_end: int,
                    chs: list[_Chain]) -> None:
        """Write the buffered iterations and every chain's state as one segment."""
        if not buf.iterations:
            return
        state = {f"chain_{c}": self._chain_state(ch) for c, ch in enumerate(chs)}
        store.write_segment(config, buf.iterations[0], it_end, buf.arrays(), state)
        buf.clear()

    @staticmethod
    def _finish(result: HMCResult) -> HMCResult:
        nd = result.n_divergent
        if nd:
            per_chain = np.sum(result.sample_stats["divergent"], axis=1).tolist()
            total = result.sample_stats["divergent"].size
            warnings.warn(
                f"{nd} of {total} post-warm-up transitions diverged (per chain: {per_chain}); "
                "the draws may be biased. Reparametrise, raise target_accept, or use a better "
                "metric.",
                DivergenceWarning,
                stacklevel=3,
            )
        return result


def sample(posterior: Any, num_draws: int = 1000, num_warmup: int = 1000, chains: int = 4,
           seed: int = 0, **kwargs: Any) -> HMCResult:
    """Convenience wrapper: ``HMC(posterior, **sampler_options).sample(...)``.

    Keyword arguments accepted by :meth:`HMC.sample` (``init``, ``path``, ``resume``,
    ``save_warmup``, ``checkpoint_every``, ``checkpoint_seconds``, ``progress``) go there, all
    others to :class:`HMC`.
    """
    run_keys = {"init", "path", "resume", "save_warmup", "checkpoint_every",
                "checkpoint_seconds", "progress"}
    run = {k: kwargs.pop(k) for k in list(kwargs) if k in run_keys}
    return HMC(posterior, **kwargs).sample(num_draws, num_warmup, chains, seed, **run)
