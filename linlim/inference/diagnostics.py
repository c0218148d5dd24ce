"""MCMC diagnostics following Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat", computed exactly as
ArviZ (>= 0.12) computes them, so the numbers agree with ``arviz.rhat``, ``arviz.ess`` and
``arviz.mcse`` to rounding.

Every function takes draws shaped ``(chains, draws)`` or ``(chains, draws, *shape)`` and
returns a float or an array of ``shape``. A parameter whose draws hold a NaN gets NaN
(NaN in, NaN out, as in ArviZ); so does a chain's E-BFMI when its energies hold one. The
autocovariances of all parameters are computed in one batched FFT; Geyer's
initial-monotone-sequence truncation runs per parameter.

- :func:`rhat`: rank-normalised split R-hat, the maximum of the bulk (z-scaled ranks) and
  tail (z-scaled ranks of ``|x - median|``) versions.
- :func:`ess_bulk`, :func:`ess_tail`, :func:`ess_mean`, :func:`ess_sd`,
  :func:`ess_quantile`: effective sample sizes.
- :func:`mcse_mean`, :func:`mcse_sd`, :func:`mcse_quantile`: Monte Carlo standard errors.
- :func:`autocorrelation`, :func:`integrated_autocorr_time`.
- :func:`ebfmi`: energy Bayesian fraction of missing information per chain.
- :func:`summary`: a table with sampler statistics; :func:`to_inference_data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as _fft
from scipy import stats as _stats
from scipy.stats.mstats import mquantiles as _mquantiles

from ..errors import InputError, ShapeError

__all__ = [
    "rhat",
    "ess_bulk",
    "ess_tail",
    "ess_mean",
    "ess_sd",
    "ess_quantile",
    "mcse_mean",
    "mcse_sd",
    "mcse_quantile",
    "autocovariance",
    "autocorrelation",
    "integrated_autocorr_time",
    "ebfmi",
    "Summary",
    "summary",
    "to_inference_data",
]


# -- array plumbing -----------------------------------------------------------------------
def _as3d(x: Any, name: str = "x") -> tuple[np.ndarray, tuple[int, ...]]:
    """(chains, draws, *shape) -> ((K, chains, draws), shape)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim < 2:
        raise ShapeError(f"{name}: expected (chains, draws[, ...]), received shape {a.shape}")
    shape = a.shape[2:]
    k = int(np.prod(shape)) if shape else 1
    a = a.reshape(a.shape[0], a.shape[1], k)
    return np.ascontiguousarray(np.moveaxis(a, 2, 0)), shape


def _out(vals: np.ndarray, shape: tuple[int, ...], a: np.ndarray) -> Any:
    """Shape the per-parameter values; NaN for every parameter whose draws (``a``,
    (K, chains, draws)) hold a NaN, as ArviZ does (NaN in, NaN out)."""
    vals = np.array(vals, dtype=np.float64)
    vals[np.isnan(a).any(axis=(1, 2))] = np.nan
    return float(vals[0]) if not shape else vals.reshape(shape)


def _split(a: np.ndarray) -> np.ndarray:
    """Split each chain in halves (the middle draw is dropped for odd lengths): (K, 2m, n/2)."""
    half = a.shape[-1] // 2
    return np.concatenate([a[..., :half], a[..., a.shape[-1] - half:]], axis=-2)


def _z_scale(a: np.ndarray) -> np.ndarray:
    """Rank-normalise each parameter over all its chains and draws (Blom offset 3/8)."""
    k, m, n = a.shape
    flat = a.reshape(k, m * n)
    ranks = _stats.rankdata(flat, method="average", axis=1)
    size = m * n
    z = _stats.norm.ppf((ranks - 3.0 / 8.0) / (size - 2.0 * 3.0 / 8.0 + 1.0))
    return z.reshape(k, m, n)


def autocovariance(x: Any) -> np.ndarray:
    """Biased autocovariance of each chain for every lag, by FFT.

    Parameters
    ----------
    x : array (..., draws)
        Draws along the last axis.

    Returns
    -------
    ndarray, same shape
        ``acov[..., t] = sum_i (x_i - xbar)(x_{i+t} - xbar) / draws``.
    """
    a = np.asarray(x, dtype=np.float64)
    n = a.shape[-1]
    m = _fft.next_fast_len(2 * n, real=True)
    a = a - a.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(a, n=m, axis=-1)
    f *= np.conjugate(f)
    return np.fft.irfft(f, n=m, axis=-1)[..., :n] / n


def autocorrelation(x: Any) -> np.ndarray:
    """Autocorrelation of each chain for every lag (``acov / acov[0]``), shape of ``x``."""
    acov = autocovariance(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return acov / acov[..., :1]


def _ess_one(a: np.ndarray, acov: np.ndarray) -> float:
    """Geyer's initial monotone sequence ESS of one (chains, draws) array (ArviZ ``_ess``)."""
    if np.isnan(a).any():
        return np.nan
    if (np.max(a) - np.min(a)) < np.finfo(float).resolution:
        return float(a.size)
    n_chain, n_draw = a.shape
    chain_mean = a.mean(axis=1)
    mean_var = np.mean(acov[:, 0]) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(chain_mean, ddof=1)
    macov = acov.mean(axis=0)
    rho_hat_t = np.zeros(n_draw)
    rho_hat_even = 1.0
    rho_hat_t[0] = rho_hat_even
    rho_hat_odd = 1.0 - (mean_var - macov[1]) / var_plus
    rho_hat_t[1] = rho_hat_odd
    t = 1
    while t < (n_draw - 3) and (rho_hat_even + rho_hat_odd) > 0.0:
        rho_hat_even = 1.0 - (mean_var - macov[t + 1]) / var_plus
        rho_hat_odd = 1.0 - (mean_var - macov[t + 2]) / var_plus
        if (rho_hat_even + rho_hat_odd) >= 0:
            rho_hat_t[t + 1] = rho_hat_even
            rho_hat_t[t + 2] = rho_hat_odd
        t += 2
    max_t = t - 2
    if rho_hat_even > 0:
        rho_hat_t[max_t + 1] = rho_hat_even
    t = 1
    while t <= max_t - 2:
        if (rho_hat_t[t + 1] + rho_hat_t[t + 2]) > (rho_hat_t[t - 1] + rho_hat_t[t]):
            rho_hat_t[t + 1] = (rho_hat_t[t - 1] + rho_hat_t[t]) / 2.0
            rho_hat_t[t + 2] = rho_hat_t[t + 1]
        t += 2
    ess = n_chain * n_draw
    tau_hat = (-1.0 + 2.0 * np.sum(rho_hat_t[: max_t + 1])
               + np.sum(rho_hat_t[max_t + 1: max_t + 2]))
    tau_hat = max(tau_hat, 1 / np.log10(ess))
    ess = ess / tau_hat
    if np.isnan(rho_hat_t).any():
        ess = np.nan
    return float(ess)


def _ess_batch(a: np.ndarray) -> np.ndarray:
    """ESS of each (chains, draws) slice of a (K, chains, draws) array."""
    if a.shape[-1] < 4:
        return np.full(a.shape[0], np.nan)
    acov = autocovariance(a)
    return np.array([_ess_one(a[i], acov[i]) for i in range(a.shape[0])])


def _rhat_plain(a: np.ndarray) -> np.ndarray:
    """Split-free potential scale reduction of each (chains, draws) slice."""
    n = a.shape[-1]
    chain_mean = a.mean(axis=-1)
    chain_var = a.var(axis=-1, ddof=1)
    between = n * chain_mean.var(axis=-1, ddof=1)
    within = chain_var.mean(axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _valid(a: np.ndarray, min_chains: int = 1) -> bool:
    return a.shape[1] >= min_chains and a.shape[2] >= 4


# -- public diagnostics -------------------------------------------------------------------
def rhat(x: Any) -> Any:
    """Rank-normalised split R-hat (max of bulk and folded tail versions).

    Parameters
    ----------
    x : array (chains, draws, ...)

    Returns
    -------
    float or ndarray (shape)
        NaN with fewer than 2 chains or 4 draws.
    """
    a, shape = _as3d(x)
    if not _valid(a, 2):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    s = _split(a)
    bulk = _rhat_plain(_z_scale(s))
    med = np.median(s.reshape(s.shape[0], -1), axis=1)[:, None, None]
    tail = _rhat_plain(_z_scale(np.abs(s - med)))
    return _out(np.maximum(bulk, tail), shape, a)


def ess_bulk(x: Any) -> Any:
    """Bulk ESS: ESS of the rank-normalised split chains."""
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    return _out(_ess_batch(_z_scale(_split(a))), shape, a)


def _quantiles(a: np.ndarray, prob: float) -> np.ndarray:
    """Type-7 quantile of each parameter over all chains and draws, (K,), computed with
    ``scipy.stats.mstats.mquantiles`` as ArviZ does (bitwise the same threshold)."""
    flat = a.reshape(a.shape[0], -1)
    return np.array([np.asarray(_mquantiles(flat[i], [prob], alphap=1, betap=1))[0]
                     for i in range(flat.shape[0])])


def _ess_quantile3(a: np.ndarray, prob: float) -> np.ndarray:
    q = _quantiles(a, prob)
    ind = (a <= q[:, None, None]).astype(np.float64)
    return _ess_batch(_split(ind))


def _check_prob(prob: Any, where: str) -> float:
    """A probability strictly between 0 and 1 (a quantile level); else InputError."""
    try:
        p = float(prob)
    except (TypeError, ValueError):
        p = float("nan")
    if not 0.0 < p < 1.0:
        raise InputError(f"{where}: prob: expected a probability in (0, 1), received {prob!r}")
    return p


def ess_quantile(x: Any, prob: float) -> Any:
    """ESS of the indicator ``x <= q_prob`` (split chains)."""
    prob = _check_prob(prob, "ess_quantile")
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    return _out(_ess_quantile3(a, float(prob)), shape, a)


def ess_tail(x: Any, prob: float | Sequence[float] | None = None) -> Any:
    """Tail ESS: the smaller of the quantile ESS at ``prob`` (default 0.05 and 0.95)."""
    if prob is None:
        prob = (0.05, 0.95)
    elif not isinstance(prob, Sequence):
        prob = (_check_prob(prob, "ess_tail"), 1.0 - _check_prob(prob, "ess_tail"))
    else:
        prob = tuple(_check_prob(p, "ess_tail") for p in prob)
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    lo = _ess_quantile3(a, prob[0])
    hi = _ess_quantile3(a, prob[1])
    return _out(np.minimum(lo, hi), shape, a)


def ess_mean(x: Any) -> Any:
    """ESS for the mean (split chains, no rank normalisation)."""
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    return _out(_ess_batch(_split(a)), shape, a)


def ess_sd(x: Any) -> Any:
    """ESS of the squared deviations from the overall mean (ArviZ's ``method="sd"``)."""
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    mu = a.reshape(a.shape[0], -1).mean(axis=1)[:, None, None]
    return _out(_ess_batch(_split((a - mu) ** 2)), shape, a)


def mcse_mean(x: Any) -> Any:
    """Monte Carlo standard error of the mean: ``sd / sqrt(ess_mean)``."""
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    ess = _ess_batch(_split(a))
    sd = a.reshape(a.shape[0], -1).std(axis=1, ddof=1)
    return _out(sd / np.sqrt(ess), shape, a)


def mcse_sd(x: Any) -> Any:
    """Monte Carlo standard error of the standard deviation (ArviZ >= 0.16).

    Notes
    -----
    With ``s2 = (x - mean)^2``: ``Var[var] ~ (E[s2^2] - E[s2]^2) / ess_mean(s2)`` and the
    delta method ``Var[sd] = Var[var] / (4 var)``.
    """
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    flat = a.reshape(a.shape[0], -1)
    s2 = (a - flat.mean(axis=1)[:, None, None]) ** 2
    ess = _ess_batch(_split(s2))
    s2f = s2.reshape(s2.shape[0], -1)
    evar = s2f.mean(axis=1)
    varvar = ((s2f ** 2).mean(axis=1) - evar ** 2) / ess
    return _out(np.sqrt(varvar / evar / 4.0), shape, a)


def mcse_quantile(x: Any, prob: float) -> Any:
    """Monte Carlo standard error of the ``prob`` quantile (ArviZ's beta-interval method).

    Notes
    -----
    With ``S = ess_quantile``, the 16% and 84% points of ``Beta(S p + 1, S (1 - p) + 1)``
    index the sorted draws; half their distance is the standard error.
    """
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    prob = float(prob)
    ess = _ess_quantile3(a, prob)
    out = np.empty(a.shape[0])
    srt = np.sort(a.reshape(a.shape[0], -1), axis=1)
    size = srt.shape[1]
    for i in range(a.shape[0]):
        with np.errstate(invalid="ignore"):
            ppf = _stats.beta.ppf([0.1586553, 0.8413447], ess[i] * prob + 1,
                                  ess[i] * (1 - prob) + 1)
        ppf_size = ppf * size - 1
        th1 = srt[i, int(np.floor(np.nanmax((ppf_size[0], 0))))]
        th2 = srt[i, int(np.ceil(np.nanmin((ppf_size[1], size - 1))))]
        out[i] = (th2 - th1) / 2
    return _out(out, shape, a)


def integrated_autocorr_time(x: Any) -> Any:
    """Integrated autocorrelation time ``tau = N / ESS_mean`` (N = chains x draws), in
    iterations; ``tau < 1`` for antithetic chains."""
    a, shape = _as3d(x)
    if not _valid(a):
        return _out(np.full(a.shape[0], np.nan), shape, a)
    return _out(a.shape[1] * a.shape[2] / _ess_batch(_split(a)), shape, a)


def ebfmi(energy: Any) -> np.ndarray:
    """Energy Bayesian fraction of missing information, per chain.

    Parameters
    ----------
    energy : array (chains, draws)
        Hamiltonian at each draw (``sample_stats["energy"]``).

    Returns
    -------
    ndarray (chains,)
        ``mean(diff(E)^2) / var(E)``; values below 0.3 indicate that momentum resampling
        explores the energy distribution poorly (Betancourt 2016).
    """
    e = np.atleast_2d(np.asarray(energy, dtype=np.float64))
    if e.ndim != 2:
        raise ShapeError(f"energy: expected (chains, draws), received {e.shape}")
    return np.square(np.diff(e, axis=1)).mean(axis=1) / np.var(e, axis=1, ddof=1)


# -- summary ------------------------------------------------------------------------------
@dataclass
class Summary:
    """Diagnostics table.

    Attributes
    ----------
    names : list of str
        Parameter names (rows).
    columns : dict of ndarray (n,)
        ``mean, sd, q<percent>..., mcse_mean, mcse_sd, ess_bulk, ess_tail, r_hat``.
    sampler : dict
        Sampler statistics: divergences (post-warm-up and warm-up), E-BFMI per chain, mean
        acceptance statistic, step sizes, mean tree depth, gradient evaluations.
    """

    names: list[str]
    columns: dict[str, np.ndarray]
    sampler: dict[str, Any] = field(default_factory=dict)

    def converged(self, max_rhat: float = 1.01, min_ess: float = 400.0) -> bool:
        """Vehtari et al.'s bar: every R-hat < ``max_rhat`` and bulk/tail ESS > ``min_ess``
        (and no post-warm-up divergences when sampler statistics are present)."""
        ok = bool(np.all(self.columns["r_hat"] < max_rhat)
                  and np.all(self.columns["ess_bulk"] > min_ess)
                  and np.all(self.columns["ess_tail"] > min_ess))
        return ok and int(self.sampler.get("divergent", 0)) == 0

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), **{k: v.tolist() for k, v in self.columns.items()},
                "sampler": self.sampler}

    def format(self, max_rows: int = 30) -> str:
        """Text table; with more rows than ``max_rows``, the worst by R-hat are shown."""
        cols = list(self.columns)
        idx = np.arange(len(self.names))
        note = ""
        if len(idx) > max_rows:
            idx = np.argsort(-np.nan_to_num(self.columns["r_hat"], nan=np.inf))[:max_rows]
            note = f"({max_rows} of {len(self.names)} parameters, largest R-hat first)\n"
        w = max([len(str(self.names[i])) for i in idx] + [4])
        lines = [note + " " * w + "".join(f"{c:>11s}" for c in cols)]
        for i in idx:
            row = []
            for c in cols:
                v = self.columns[c][i]
                row.append(f"{v:11.0f}" if c.startswith("ess") else f"{v:11.4g}")
            lines.append(f"{str(self.names[i]):>{w}s}" + "".join(row))
        if self.sampler:
            s = self.sampler
            lines.append("")
            lines.append(
                f"divergent: {s['divergent']} of {s['n_transitions']} post-warm-up transitions"
                f" ({s['divergent_warmup']} in warm-up); E-BFMI per chain: "
                + ", ".join(f"{v:.2f}" for v in s["ebfmi"]))
            lines.append(
                f"mean accept_stat {s['accept_stat']:.3f}; step sizes "
                + ", ".join(f"{v:.3g}" for v in s["step_size"])
                + f"; mean tree depth {s['tree_depth']:.2f}; gradients {s['n_grad']}")
            if s["divergent"]:
                lines.append("WARNING: divergent transitions; the draws may be biased.")
            low = [i for i, v in enumerate(s["ebfmi"]) if v < 0.3]
            if low:
                lines.append(f"WARNING: E-BFMI below 0.3 in chains {low}.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _draws_and_stats(obj: Any) -> tuple[np.ndarray, Any]:
    if hasattr(obj, "draws") and hasattr(obj, "sample_stats"):
        return np.asarray(obj.draws), obj
    a = np.asarray(obj, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ShapeError(f"draws: expected (chains, draws, n), received {a.shape}")
    return a, None


def summary(
    obj: Any,
    names: list[str] | None = None,
    prob: Sequence[float] = (0.05, 0.5, 0.95),
) -> Summary:
    """Summary table of an :class:`~linlim.inference.hmc.HMCResult` or of draws.

    Parameters
    ----------
    obj : HMCResult or array (chains, draws, n)
    names : list of str, optional
        Parameter names (default ``theta[i]``).
    prob : sequence of float
        Quantiles to tabulate.

    Returns
    -------
    Summary
    """
    draws, res = _draws_and_stats(obj)
    n = draws.shape[2]
    if names is None:
        names = [f"theta[{i}]" for i in range(n)]
    if len(names) != n:
        raise InputError(f"names: expected {n} names, received {len(names)}")
    flat = draws.reshape(-1, n)
    cols: dict[str, np.ndarray] = {
        "mean": flat.mean(axis=0),
        "sd": flat.std(axis=0, ddof=1),
    }
    for p in prob:
        cols[f"q{100 * p:g}"] = np.quantile(flat, p, axis=0)
    cols["mcse_mean"] = np.atleast_1d(mcse_mean(draws))
    cols["mcse_sd"] = np.atleast_1d(mcse_sd(draws))
    cols["ess_bulk"] = np.atleast_1d(ess_bulk(draws))
    cols["ess_tail"] = np.atleast_1d(ess_tail(draws))
    cols["r_hat"] = np.atleast_1d(rhat(draws))
    sampler: dict[str, Any] = {}
    if res is not None and res.sample_stats and draws.shape[1] > 1:
        st = res.sample_stats
        sampler = {
            "divergent": int(np.sum(st["divergent"])),
            "divergent_per_chain": np.sum(st["divergent"], axis=1).tolist(),
            "divergent_warmup": int(np.sum(res.warmup_stats["divergent"]))
            if res.warmup_stats else 0,
            "n_transitions": int(st["divergent"].size),
            "ebfmi": ebfmi(st["energy"]).tolist(),
            "accept_stat": float(np.mean(st["accept_stat"])),
            "step_size": np.asarray(st["step_size"][:, -1]).tolist(),
            "tree_depth": float(np.mean(st["tree_depth"])),
            "n_grad": int(np.sum(st["n_leapfrog"])),
        }
    return Summary(list(names), cols, sampler)


def to_inference_data(obj: Any, names: list[str] | None = None):
    """Convert an :class:`~linlim.inference.hmc.HMCResult` to an ArviZ ``InferenceData``.

    Parameters
    ----------
    obj : HMCResult
    names : list of str, optional
        One variable per parameter with these names; default a single variable ``theta``
        with dimension ``theta_dim_0``.

    Returns
    -------
    arviz.InferenceData
        ``posterior`` and ``sample_stats`` (``lp``, ``acceptance_rate``, ``energy``,
        ``step_size``, ``tree_depth``, ``n_steps``, ``diverging``), plus the warm-up groups
        when present.

    Raises
    ------
    ImportError
        If arviz is not installed.
    """
    try:
        import arviz as az
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_inference_data needs arviz: pip install arviz") from exc
    draws = np.asarray(obj.draws)

    def post_dict(d: np.ndarray) -> dict[str, np.ndarray]:
        if names is None:
            return {"theta": d}
        if len(names) != d.shape[2]:
            raise InputError(f"names: expected {d.shape[2]} names, received {len(names)}")
        return {nm: d[:, :, i] for i, nm in enumerate(names)}

    rename = {"accept_stat": "acceptance_rate", "n_leapfrog": "n_steps",
              "divergent": "diverging"}

    def stats_dict(st: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {rename.get(k, k): np.asarray(v) for k, v in st.items()}

    kwargs: dict[str, Any] = {
        "posterior": post_dict(draws),
        "sample_stats": stats_dict(obj.sample_stats),
    }
    if obj.warmup_stats and next(iter(obj.warmup_stats.values())).shape[1] > 0:
        kwargs["warmup_sample_stats"] = stats_dict(obj.warmup_stats)
        if obj.warmup_draws is not None:
            kwargs["warmup_posterior"] = post_dict(np.asarray(obj.warmup_draws))
        kwargs["save_warmup"] = True
    return az.from_dict(**kwargs)


class ChainDraws:
    """Mixin for sampler results holding ``draws`` of shape (chains, num_draws, n)."""

    draws: Any

    @property
    def chains(self) -> int:
        """Number of chains (walkers for ensemble samplers)."""
        return int(self.draws.shape[0])

    @property
    def num_draws(self) -> int:
        """Draws kept per chain."""
        return int(self.draws.shape[1])
