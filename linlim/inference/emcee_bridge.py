"""emcee's affine-invariant ensemble sampler on a linlim log posterior.

A cross-check for low-dimensional problems: :func:`emcee_sample` runs
``emcee.EnsembleSampler`` (Goodman & Weare 2010; Foreman-Mackey et al. 2013) on any object
with the log-posterior protocol's ``size``, ``xp`` and ``value(theta)`` -- a
:class:`linlim.likelihood.LogPosterior`, a Dask-distributed posterior, or a hand-written
target -- and returns the draws in the layout of :attr:`linlim.inference.hmc.HMCResult.draws`,
``(chains, draws, n)``, so the same diagnostics and plots apply.

Layout: each **walker is reported as a chain**. emcee's chain ``(steps, walkers, n)`` is cut
after ``burn`` steps, thinned by ``thin`` and transposed to ``(walkers, draws, n)``. Walkers of
one ensemble are not independent chains (each stretch move uses another walker's position),
but the cross-walker correlation is weak once the ensemble has mixed, and the split-R-hat/ESS
machinery of :mod:`linlim.inference.diagnostics` treats them well when ``nsteps - burn`` is
many autocorrelation times (check ``autocorr_time``; emcee advises ``> 50 tau``).

The log probability handed to emcee is ``posterior.value`` itself: the number emcee stores
for a position is the float ``posterior.value(theta)`` returns, bit for bit. The one change:
a NaN is passed on as ``-inf`` (emcee aborts on NaN) and counted in ``n_nonfinite``.

Backends: emcee is a NumPy (host) sampler. Positions live on the host; each one is moved to
the posterior's array module (``asarray(theta, posterior.xp)``, a host-to-device copy on
CuPy) before ``value`` is called, and the float result comes back. On a GPU posterior this
costs one small transfer per evaluation, acceptable for the low-dimensional cross-checks
this bridge is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import asarray, to_numpy
from ..errors import InputError, ShapeError
from .diagnostics import ChainDraws

__all__ = ["EmceeResult", "emcee_sample", "emcee_log_prob"]


class _LogProb:
    """Picklable wrapper: host position -> ``float(posterior.value(theta))`` (NaN -> -inf)."""

    def __init__(self, posterior: Any) -> None:
        self.posterior = posterior
        self.xp = getattr(posterior, "xp", np)
        self.n_nonfinite = 0

    def __call__(self, theta: np.ndarray) -> float:
        x = theta if self.xp is np else asarray(np.ascontiguousarray(theta), self.xp)
        v = float(self.posterior.value(x))
        if math.isnan(v):
            self.n_nonfinite += 1
            return -math.inf
        return v


def emcee_log_prob(posterior: Any) -> Any:
    """The callable handed to emcee: ``theta (n,) numpy -> float(posterior.value(theta))``.

    NaN is returned as ``-inf`` (emcee rejects the move instead of aborting); every other
    value, ``-inf`` included, is passed through unchanged.
    """
    return _LogProb(posterior)


@dataclass
class EmceeResult(ChainDraws):
    """Output of :func:`emcee_sample`.

    Attributes
    ----------
    draws : ndarray (chains, num_draws, n) float64
        Post-burn-in, thinned positions; chain ``c`` is walker ``c`` (host memory).
    log_prob : ndarray (chains, num_draws) float64
        ``posterior.value`` at each draw, as stored by emcee.
    acceptance_fraction : ndarray (chains,) float64
        emcee's per-walker acceptance fraction over all ``nsteps`` steps.
    autocorr_time : ndarray (n,) float64
        emcee's integrated autocorrelation time per parameter, in **steps** (not thinned
        draws), estimated from the post-burn-in chain with ``quiet=True`` (a warning
        instead of an error when the chain is shorter than 50 tau).
    config : dict
        ``nwalkers, nsteps, burn, thin, seed, n``.
    n_nonfinite : int
        Evaluations that returned NaN (passed to emcee as ``-inf``).
    sampler : emcee.EnsembleSampler
        The sampler itself, for anything not copied here.
    """

    draws: np.ndarray
    log_prob: np.ndarray
    acceptance_fraction: np.ndarray
    autocorr_time: np.ndarray
    config: dict[str, Any]
    n_nonfinite: int = 0
    sampler: Any = field(default=None, repr=False)

    def summary(self, names: list[str] | None = None) -> Any:
        """:func:`linlim.inference.diagnostics.summary` of the draws (walkers as chains)."""
        from .diagnostics import summary

        return summary(self.draws, names=names) if names is not None else summary(self.draws)


def _initial_positions(init: Any, nwalkers: int, n: int, init_scale: float,
                       rng: np.random.Generator) -> np.ndarray:
    p = np.asarray(to_numpy(init), dtype=np.float64)
    if p.shape == (n,):
        return p[None, :] + init_scale * rng.standard_normal((nwalkers, n))
    if p.shape == (nwalkers, n):
        return p.copy()
    raise ShapeError(f"emcee_sample: init must have shape ({n},) (a point, walkers start in a "
                     f"Gaussian ball of radius init_scale around it) or ({nwalkers}, {n}) (one "
                     f"position per walker), received {p.shape}")


def emcee_sample(posterior: Any, nwalkers: int, nsteps: int, init: Any, seed: int | None = 0,
                 burn: int | None = None, thin: int = 1, init_scale: float = 1e-3,
                 moves: Any = None, progress: bool = False) -> EmceeResult:
    """Sample ``posterior`` with emcee's ensemble sampler; draws as ``(chains, draws, n)``.

    Parameters
    ----------
    posterior : object
        Has ``size`` (int, ``n``), ``xp`` (array module) and ``value(theta) -> float``
        (log density up to a constant, ``theta`` (n,) float64 on ``xp``), e.g.
        :class:`linlim.likelihood.LogPosterior`.
    nwalkers : int
        Ensemble size, even and ``>= 2 n`` (emcee's stretch move needs it).
    nsteps : int
        Ensemble steps (each costs ``nwalkers`` evaluations of ``value``).
    init : array, shape (n,) or (nwalkers, n)
        Start: a point (walkers start at ``init + init_scale * N(0, I)``) or one position
        per walker. NumPy or CuPy.
    seed : int or None
        Seeds both the initial ball (``numpy.random.default_rng(seed)``) and emcee's
        ``RandomState``; equal seeds give bit-identical runs.
    burn : int, optional
        Steps discarded at the start (default ``nsteps // 2``).
    thin : int
        Keep every ``thin``-th step after ``burn``.
    init_scale : float
        Radius of the initial Gaussian ball (parameter units).
    moves : emcee move or list, optional
        Passed to ``emcee.EnsembleSampler`` (default: the stretch move).
    progress : bool
        emcee's progress bar.

    Returns
    -------
    EmceeResult
        ``draws`` (nwalkers, (nsteps - burn) // thin rounded up, n); see the class.

    Raises
    ------
    InputError
        ``nwalkers`` odd or below ``2 n``, ``nsteps < 1``, ``burn`` outside
        ``[0, nsteps)``, ``thin < 1``, or a start position whose log density is not finite.
    ShapeError
        ``init`` of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> class Std:
    ...     size, xp = 2, np
    ...     def value(self, x):
    ...         return -0.5 * float(x @ x)
    >>> r = emcee_sample(Std(), nwalkers=8, nsteps=50, init=np.zeros(2), seed=1)
    >>> r.draws.shape
    (8, 25, 2)
    """
    import emcee

    n = int(posterior.size)
    where = "emcee_sample"
    if not (isinstance(nwalkers, (int, np.integer)) and nwalkers >= 2 * n
            and nwalkers % 2 == 0):
        raise InputError(f"{where}: nwalkers must be an even int >= 2 * n = {2 * n}, "
                         f"received {nwalkers!r}")
    if not (isinstance(nsteps, (int, np.integer)) and nsteps >= 1):
        raise InputError(f"{where}: nsteps must be a positive int, received {nsteps!r}")
    burn = nsteps // 2 if burn is None else burn
    if not (isinstance(burn, (int, np.integer)) and 0 <= burn < nsteps):
        raise InputError(f"{where}: burn must be an int in [0, nsteps={nsteps}), "
                         f"received {burn!r}")
    if not (isinstance(thin, (int, np.integer)) and thin >= 1):
        raise InputError(f"{where}: thin must be a positive int, received {thin!r}")
    if not init_scale >= 0:
        raise InputError(f"{where}: init_scale must be >= 0, received {init_scale!r}")

    rng = np.random.default_rng(seed)
    p0 = _initial_positions(init, int(nwalkers), n, float(init_scale), rng)
    fn = _LogProb(posterior)
    bad = [i for i in range(nwalkers) if not math.isfinite(fn(p0[i]))]
    if bad:
        raise InputError(f"{where}: the log density is not finite at the start of walkers "
                         f"{bad[:5]} (of {len(bad)}); choose init inside the support")
    fn.n_nonfinite = 0
    sampler = emcee.EnsembleSampler(int(nwalkers), n, fn, moves=moves)
    sampler.random_state = np.random.RandomState(
        None if seed is None else int(rng.integers(2**32))).get_state()
    sampler.run_mcmc(p0, int(nsteps), progress=progress)

    chain = sampler.get_chain(discard=int(burn), thin=int(thin))  # (draws, walkers, n)
    lp = sampler.get_log_prob(discard=int(burn), thin=int(thin))  # (draws, walkers)
    tau = sampler.get_autocorr_time(discard=int(burn), quiet=True)
    return EmceeResult(
        draws=np.ascontiguousarray(chain.transpose(1, 0, 2)),
        log_prob=np.ascontiguousarray(lp.T),
        acceptance_fraction=np.asarray(sampler.acceptance_fraction, dtype=np.float64),
        autocorr_time=np.asarray(tau, dtype=np.float64),
        config={"nwalkers": int(nwalkers), "nsteps": int(nsteps), "burn": int(burn),
                "thin": int(thin), "seed": seed, "n": n},
        n_nonfinite=fn.n_nonfinite,
        sampler=sampler,
    )
