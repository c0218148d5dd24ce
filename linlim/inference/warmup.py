"""Warm-up for HMC, as Stan does it: dual averaging of the step size and windowed
estimation of the metric.

- :class:`DualAveraging` is Stan's ``stepsize_adaptation`` (Hoffman & Gelman 2014, Alg. 6,
  with Stan's defaults ``delta = 0.8, gamma = 0.05, kappa = 0.75, t0 = 10`` and
  ``mu = log(10 eps0)``), restarted after every metric update.
- :class:`WindowedAdaptation` is Stan's ``windowed_adaptation`` state machine: an initial
  fast buffer (75 iterations), slow windows starting at 25 and doubling (the last one
  stretched to the terminal buffer), and a terminal fast buffer (50).
- :class:`WelfordVariance` / :class:`WelfordCovariance` are Stan's running estimators with
  its regularisation ``(n / (n + 5)) S + 1e-3 (5 / (n + 5)) I``.

All state is plain Python floats / NumPy arrays so that it can be checkpointed exactly.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "DualAveraging",
    "WindowedAdaptation",
    "WelfordVariance",
    "WelfordCovariance",
    "window_ends",
]


#: Stan's dual-averaging constants: the defaults of :class:`DualAveraging` and of
#: :class:`~linlim.inference.hmc.HMC`.
STAN_GAMMA, STAN_KAPPA, STAN_T0 = 0.05, 0.75, 10.0
#: Stan's warm-up windows: the defaults of :class:`WindowedAdaptation` and of
#: :class:`~linlim.inference.hmc.HMC`.
STAN_INIT_BUFFER, STAN_TERM_BUFFER, STAN_BASE_WINDOW = 75, 50, 25


class DualAveraging:
    """Nesterov dual averaging of ``log(step size)``, exactly as Stan's
    ``stan::mcmc::stepsize_adaptation``.

    Parameters
    ----------
    delta : float
        Target acceptance statistic, in (0, 1). Default 0.8.
    gamma, kappa, t0 : float
        Regularisation scale, relaxation exponent and iteration offset (Stan: 0.05, 0.75, 10).
    mu : float
        Log step size the iterates are shrunk towards; Stan uses ``log(10 eps0)``.

    Notes
    -----
    With ``t`` the adaptation counter and ``a_t`` the acceptance statistic (capped at 1),

    ``eta = 1 / (t + t0)``, ``s_t = (1 - eta) s_{t-1} + eta (delta - a_t)``,
    ``x_t = mu - s_t sqrt(t) / gamma``, ``xbar_t = (1 - t^-kappa) xbar_{t-1} + t^-kappa x_t``;
    the step size used next is ``exp(x_t)`` and, when adaptation ends, ``exp(xbar_t)``.
    """

    def __init__(
        self,
        delta: float = 0.8,
        gamma: float = STAN_GAMMA,
        kappa: float = STAN_KAPPA,
        t0: float = STAN_T0,
        mu: float = 0.5,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise InputError(f"delta: expected a value in (0, 1), received {delta!r}")
        for name, val in (("gamma", gamma), ("kappa", kappa), ("t0", t0)):
            if not val > 0:
                raise InputError(f"{name}: expected a positive value, received {val!r}")
        self.delta = float(delta)
        self.gamma = float(gamma)
        self.kappa = float(kappa)
        self.t0 = float(t0)
        self.mu = float(mu)
        self.restart()

    def restart(self) -> None:
        """Reset the counter and both averages (Stan calls this after a metric update)."""
        self.counter = 0.0
        self.s_bar = 0.0
        self.x_bar = 0.0

    def learn(self, adapt_stat: float) -> float:
        """Update with one acceptance statistic; return the next step size ``exp(x_t)``."""
        self.counter += 1.0
        adapt_stat = 1.0 if adapt_stat > 1.0 else float(adapt_stat)
        eta = 1.0 / (self.counter + self.t0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.delta - adapt_stat)
        x = self.mu - self.s_bar * math.sqrt(self.counter) / self.gamma
        x_eta = self.counter ** (-self.kappa)
        self.x_bar = (1.0 - x_eta) * self.x_bar + x_eta * x
        return math.exp(x)

    def final(self) -> float:
        """Step size at the end of adaptation, ``exp(xbar)``."""
        return math.exp(self.x_bar)

    def state(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("delta", "gamma", "kappa", "t0", "mu",
                                              "counter", "s_bar", "x_bar")}

    def set_state(self, state: dict[str, float]) -> None:
        for k, v in state.items():
            setattr(self, k, float(v))


class WindowedAdaptation:
    """Stan's windowed metric-adaptation schedule.

    Parameters
    ----------
    num_warmup : int
        Number of warm-up iterations.
    init_buffer, term_buffer, base_window : int
        Stan's defaults 75, 50, 25.

    Notes
    -----
    The schedule is a port of ``stan::mcmc::windowed_adaptation``: call :meth:`step` once per
    warm-up iteration, after the transition; it returns ``(add, end)``: whether the draw
    enters the current covariance estimate, and whether the window closes on it (then the
    metric is updated and the step size adaptation restarted).

    When ``init_buffer + base_window + term_buffer > num_warmup`` (and ``num_warmup >= 20``)
    Stan shrinks the stages to 15% / 75% / 10% of the warm-up. Stan's C++ forgets to
    recompute the end of the first window in that branch (``restart()`` is not called), so
    CmdStan then never updates the metric; here the window is restarted as intended and
    closes at ``init_buffer + base_window - 1``. Below 20 warm-up iterations no metric is
    estimated (as in Stan).
    """

    def __init__(
        self,
        num_warmup: int,
        init_buffer: int = STAN_INIT_BUFFER,
        term_buffer: int = STAN_TERM_BUFFER,
        base_window: int = STAN_BASE_WINDOW,
    ) -> None:
        for name, val in (("num_warmup", num_warmup), ("init_buffer", init_buffer),
                          ("term_buffer", term_buffer), ("base_window", base_window)):
            if int(val) != val or val < 0:
                raise InputError(f"{name}: expected a non-negative integer, received {val!r}")
        self.num_warmup = int(num_warmup)
        self.shrunk = False
        if num_warmup < 20:
            self.active = False
            self.init_buffer = self.term_buffer = self.base_window = 0
        else:
            self.active = True
            if init_buffer + base_window + term_buffer > num_warmup:
                self.shrunk = True
                self.init_buffer = int(0.15 * num_warmup)
                self.term_buffer = int(0.10 * num_warmup)
                self.base_window = num_warmup - (self.init_buffer + self.term_buffer)
            else:
                self.init_buffer = int(init_buffer)
                self.term_buffer = int(term_buffer)
                self.base_window = int(base_window)
        self.restart()

    def restart(self) -> None:
        self.counter = 0
        self.window_size = self.base_window
        self.next_window = self.init_buffer + self.window_size - 1

    def adaptation_window(self) -> bool:
        """Whether the current iteration's draw enters the covariance estimate."""
        return (
            self.active
            and self.counter >= self.init_buffer
            and self.counter < self.num_warmup - self.term_buffer
            and self.counter != self.num_warmup
        )

    def end_adaptation_window(self) -> bool:
        """Whether the current iteration closes a slow window."""
        return self.active and self.counter == self.next_window and (
            self.counter != self.num_warmup
        )

    def compute_next_window(self) -> None:
        last = self.num_warmup - self.term_buffer - 1
        if self.next_window == last:
            return
        self.window_size *= 2
        self.next_window = self.counter + self.window_size
        if self.next_window == last:
            return
        if self.next_window + 2 * self.window_size >= self.num_warmup - self.term_buffer:
            self.next_window = last

    def step(self) -> tuple[bool, bool]:
        """Advance one warm-up iteration; return ``(add_sample, end_of_window)``."""
        add = self.adaptation_window()
        end = self.end_adaptation_window()
        if end:
            self.compute_next_window()
        self.counter += 1
        return add, end

    def state(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in (
            "num_warmup", "init_buffer", "term_buffer", "base_window", "counter",
            "window_size", "next_window", "active", "shrunk")}

    def set_state(self, state: dict[str, int]) -> None:
        for k, v in state.items():
            setattr(self, k, bool(v) if k in ("active", "shrunk") else int(v))


def window_ends(num_warmup: int, init_buffer: int = 75, term_buffer: int = 50,
                base_window: int = 25) -> list[int]:
    """Zero-based warm-up iterations at which the metric is updated (ends of slow windows).

    Examples
    --------
    >>> window_ends(1000)
    [99, 149, 249, 449, 949]
    """
    w = WindowedAdaptation(num_warmup, init_buffer, term_buffer, base_window)
    ends = []
    for it in range(num_warmup):
        _, end = w.step()
        if end:
            ends.append(it)
    return ends


class WelfordVariance:
    """Running mean and variance (Welford), Stan's ``welford_var_estimator``.

    Parameters
    ----------
    size : int
        Number of parameters.
    xp : module
        Array module the samples live on.
    """

    def __init__(self, size: int, xp: ModuleType) -> None:
        self.size = int(size)
        self.xp = xp
        self.restart()

    def restart(self) -> None:
        self.n = 0
        self.mean = self.xp.zeros(self.size)
        self.m2 = self.xp.zeros(self._m2_shape())

    def _m2_shape(self) -> tuple[int, ...]:
        return (self.size,)

    def add_sample(self, q: Any) -> None:
        """Add one draw ``q`` (array (n,))."""
        self.n += 1
        delta = q - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + (q - self.mean) * delta

    def regularized(self) -> Any:
        """Stan's regularised estimate ``(n/(n+5)) var + 1e-3 (5/(n+5))``."""
        n = float(self.n)
        var = self.m2 / (n - 1.0) if self.n > 1 else self.xp.zeros(self._m2_shape())
        return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0)) * self._unit()

    def _unit(self) -> Any:
        return self.xp.ones(self.size)

    def state(self) -> dict[str, Any]:
        from ..backend import to_numpy

        return {"n": np.array(self.n), "mean": to_numpy(self.mean), "m2": to_numpy(self.m2)}

    def set_state(self, state: dict[str, Any]) -> None:
        from ..backend import asarray

        self.n = int(state["n"])
        self.mean = asarray(np.asarray(state["mean"]), self.xp)
        self.m2 = asarray(np.asarray(state["m2"]), self.xp)


class WelfordCovariance(WelfordVariance):
    """Running mean and covariance, Stan's ``welford_covar_estimator``; the regularised
    estimate is ``(n/(n+5)) C + 1e-3 (5/(n+5)) I``. Memory ``O(n^2)``."""

    def _m2_shape(self) -> tuple[int, ...]:
        return (self.size, self.size)

    def add_sample(self, q: Any) -> None:
        self.n += 1
        delta = q - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 + self.xp.outer(q - self.mean, delta)

    def _unit(self) -> Any:
        return self.xp.eye(self.size)
