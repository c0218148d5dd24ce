"""The joint fit with the 21 cm signal as a parameter: model, MAP, Laplace posterior.

``theta = (ln S0, alpha, beam, gains, diffuse, signal)``: point sources, the chromatic beam
and per-antenna gains (non-linear, a few hundred numbers), and the diffuse foreground and
the signal (linear, thousands of whitened coefficients; :mod:`linlim.pipelines.skymodel`),
all in one RIME and one posterior.

1. MAP by matrix-free Gauss-Newton with CG inner solves. The preconditioner is the
   Gauss-Newton Hessian built from the model's structure
   (:mod:`linlim.pipelines.structured`: no Jacobian column of a linear coefficient is ever
   formed) and Cholesky-factorised (``fit.fisher: dense``), or, for large fits
   (``fit.fisher: none``), never formed: CG then runs on the structured Hessian's
   products, preconditioned per channel on the signal block with the other parameters
   coupled exactly through a Schur complement (:func:`_structured_gauss_newton`).
2. The Laplace posterior at the MAP: the same structured Fisher matrix, the errors of every
   non-signal parameter with the signal marginalised, and the signal block of the
   likelihood Fisher with everything else marginalised (:func:`marginal_signal_fisher`).
3. Band powers with Fisher errors (:func:`linlim.pipelines.power.band_powers`), then an
   empirical-Bayes Laplace step: the non-signal parameters' MAP and errors under the
   estimated band powers (one Newton step of the linearised posterior).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import scipy.linalg as sla

from ..errors import InputError
from ..inference.gauss_newton import gauss_newton
from ..likelihood import GaussianLikelihood, LogPosterior
from ..priors import GaussianPrior
from ..sky.bandpower import check_basis_frequencies
from .fit import start_and_priors
from .joint import LinearComponent, build_joint_model
from .power import PriorHessian, band_powers, marginal_signal_fisher
from .scenario import Scenario
from .structured import (
    check_memory,
    memory_estimate,
    prior_matvec,
    redundant_groups,
    structured_fisher,
    structured_memory_estimate,
    structured_preconditioner,
)

__all__ = ["SIGNAL_FIT_OPTIONS", "fiducial_power", "linear_components", "fit_with_signal",
           "laplace_analysis", "check_dense_memory", "structured_route_memory"]

#: Options of the signal part of the joint fit (merged into the ``fit`` section).
SIGNAL_FIT_OPTIONS: dict[str, Any] = {
    "fiducial_rms_mk": 5.0,        # flat fiducial P(k) with this rms (the whitening prior)
    "cg_maxiter": 30,
    "cg_tol": 1e-6,
    "refresh_every": 1,            # rebuild the structured preconditioner every k iterations
    "ftol": 1e-9,
    "loss_atol": 1e-3,             # also stop when -log posterior falls by less than this:
    #                                every parameter then moves far less than its error
    "bjk_iterations": 8,           # most BJK steps (stops at convergence)
    "fisher": "dense",             # "dense": structured dense Fisher (errors, band powers);
    #                                "none": MAP only (large configs)
    "map_solver": "structured",    # MAP by "structured" Gauss-Newton-CG (no n x n matrix;
    #                                the only route with fisher 'none') or by CG
    #                                preconditioned with the "dense" Hessian's Cholesky factor
    "memory_limit_gib": None,      # refuse configs needing more (default: available memory)
}


def fiducial_power(sc: Scenario, rms_mk: float) -> np.ndarray:
    """A flat band-power spectrum (K^2 Mpc^3) whose field has rms ``rms_mk``."""
    sf = sc.signal_field
    if not rms_mk > 0:
        raise InputError(f"config fit.fiducial_rms_mk: expected > 0 mK, received {rms_mk!r}")
    p = (1e-3 * rms_mk) ** 2 * sf.freqs.size * sf.v_cell / sf.nk
    return np.full(sf.nbands, p)


def linear_components(sc: Scenario, p0: np.ndarray, with_signal: bool = True
                      ) -> list[LinearComponent]:
    """The diffuse and signal components of the fit (whitened)."""
    comps = []
    if sc.diffuse is not None:
        d = sc.diffuse
        comps.append(LinearComponent("diffuse", d.ra, d.dec, d.spectral_matrix()))
    if with_signal:
        sf = sc.signal_field
        if sf is None:
            raise InputError("fit: the signal is modelled only with scenario.signal.basis: "
                             "'modes'")
        check_basis_frequencies(sf, sc.obs.freqs, where="fit")
        comps.append(LinearComponent("signal", sf.ra, sf.dec, sf.spectral_matrix(p0)))
    return comps


def _sizes(sc: Scenario, model_signal: bool) -> tuple[int, int, int, int, int]:
    """(non-linear parameters, linear pixels, linear coefficients, signal pixels, signal
    coefficients) of the joint fit."""
    ns, na = sc.catalog.ra.size, sc.obs.antpos.shape[0]
    n_nl = 2 * ns + 4 + (2 * na if sc.gains is not None else 0)
    pix, n_lin = 0, 0
    for comp in ([sc.diffuse] if sc.diffuse is not None else []) + (
            [sc.signal_field] if model_signal and sc.signal_field is not None else []):
        pix += comp.npix
        n_lin += int(np.prod(comp.shape))
    sig = sc.signal_field if model_signal else None
    return (n_nl, pix, n_lin, 0 if sig is None else sig.npix,
            0 if sig is None else int(np.prod(sig.shape)))


def structured_route_memory(sc: Scenario, model_signal: bool = True) -> int:
    """Bytes the structured Gauss-Newton route (``fit.fisher: none``) needs at its peak
    (:func:`~linlim.pipelines.structured.structured_memory_estimate`)."""
    n_nl, pix, n_lin, sig_pix, n_sig = _sizes(sc, model_signal)
    first, _ = redundant_groups(sc.obs)
    return structured_memory_estimate(sc.obs.shape, int(first.size), pix, sig_pix, n_nl,
                                      int(sc.catalog.ra.size), n_nl + n_lin - n_sig, n_sig)


def check_dense_memory(sc: Scenario, fit: dict, model_signal: bool = True) -> int:
    """Refuse (InputError, naming the GiB needed) a configuration whose fit would not fit in
    memory; call before writing anything. Returns the bytes the dense Fisher route needs
    (0 with ``fit.fisher: none``, whose structured route is checked too:
    :func:`structured_route_memory`)."""
    lim = fit.get("memory_limit_gib")
    limit = None if lim is None else int(float(lim) * 2**30)
    if fit["fisher"] != "dense":
        check_memory(structured_route_memory(sc, model_signal), "fit", limit,
                     route="structured")
        return 0
    n_nl, pix, n_lin, _, _ = _sizes(sc, model_signal)
    need = memory_estimate(n_nl + n_lin, pix, n_nl, sc.obs.shape)
    check_memory(need, "fit", limit)
    return need


def _gains_of(jm: Any, theta: np.ndarray) -> np.ndarray | None:
    if "gains" not in jm.params.names:
        return None
    g = np.asarray(theta[jm.params.slices["gains"]]).reshape(2, -1)
    return np.exp(g[0] + 1j * g[1])


def _beam_of(jm: Any, theta: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    if "beam" in jm.params.names:
        return np.asarray(theta[jm.params.slices["beam"]]).reshape(1, 4)
    return fixed


def fit_with_signal(sc: Scenario, data: np.ndarray, fit: dict, *, beam: str, seed: int,
                    model_signal: bool = True, log: Callable[[str], None] | None = None,
                    init: dict | None = None, flags: Any = None) -> dict:
    """MAP of the joint posterior with the signal (and diffuse) modelled.

    ``flags`` (optional, bool, the shape of ``data``): samples left out of the likelihood.

    ``init`` (optional) maps block names to starting values (e.g. another fit's MAP); the
    priors stay those of the catalogue start.

    Returns a dict with ``model`` (JointModel), ``post``, ``result``, ``theta0``,
    ``components``, ``p0`` (fiducial band powers, K^2 Mpc^3), ``seconds``, ``residual``.
    """
    log = log or (lambda m: None)
    nominal = np.asarray(fit["nominal_beam"], float).reshape(1, 4)
    p0 = fiducial_power(sc, float(fit["fiducial_rms_mk"])) if sc.signal_field else None
    comps = linear_components(sc, p0, with_signal=model_signal)
    cat = sc.catalog
    jm = build_joint_model(sc.obs, cat.ra, cat.dec, sc.ref_freq, sc.ripple_delay, beam=beam,
                           fixed_beam=nominal, fit_gains=sc.gains is not None, linear=comps)
    n = jm.params.size
    check_dense_memory(sc, fit, model_signal)
    start, priors = start_and_priors(sc, fit, np.random.default_rng(seed), beam == "fit")
    for c in comps:
        start[c.name] = np.zeros(c.shape)
        priors.append(GaussianPrior(np.zeros(int(np.prod(c.shape))), sigma=1.0, index=c.name))
    post = LogPosterior(GaussianLikelihood(jm.model, data, sigma=sc.sigma, flags=flags),
                        priors, params=jm.params)
    for name, val in (init or {}).items():
        if name in start and np.shape(val) == np.shape(start[name]):
            start[name] = np.asarray(val, float)
    theta0 = jm.params.pack(start)
    t0 = time.perf_counter()
    res = _staged_gauss_newton(sc, post, jm, comps, theta0, fit, nominal, log)
    return {"model": jm, "post": post, "result": res, "theta0": theta0, "components": comps,
            "p0": p0, "nominal": nominal, "seconds": time.perf_counter() - t0,
            "residual": data - np.asarray(jm.model(res.x)), "n_params": n}


def _hessian_factor(sc: Scenario, post: Any, jm: Any, comps: list, theta: np.ndarray,
                    nominal: np.ndarray) -> Any:
    SF = structured_fisher(post, jm.params, theta, sc.obs, comps, sc.ref_freq,
                           sc.ripple_delay, _beam_of(jm, theta, nominal), _gains_of(jm, theta),
                           sources=(sc.catalog.ra, sc.catalog.dec))
    H = PriorHessian(post, theta).add_to(SF.dense())
    return SF, sla.cho_factor(H, lower=True, overwrite_a=True)


def _staged_gauss_newton(sc: Scenario, post: Any, jm: Any, comps: list, theta0: np.ndarray,
                         fit: dict, nominal: np.ndarray, log: Callable[[str], None]) -> Any:
    """Gauss-Newton with CG inner solves, preconditioned by the structured Gauss-Newton
    Hessian, refreshed every ``fit.refresh_every`` iterations (the Hessian moves while the
    beam and gains do). The first step solves the linear blocks exactly at the start. Stops
    when an iteration lowers ``-log p`` by less than ``max(fit.ftol |f|, fit.loss_atol)``."""
    from types import SimpleNamespace

    maxiter = int(fit["maxiter"])
    if not comps:
        # no linear sky component: plain matrix-free Gauss-Newton-CG
        return gauss_newton(post, theta0, maxiter=maxiter, solver="cg", preconditioner=None,
                            cg_tol=float(fit["cg_tol"]), cg_maxiter=int(fit["cg_maxiter"]),
                            ftol=1e-10)
    route = fit.get("map_solver", SIGNAL_FIT_OPTIONS["map_solver"])
    if route not in ("structured", "dense"):
        raise InputError(f"config fit.map_solver: expected 'structured' or 'dense', received "
                         f"{route!r}")
    if route == "dense" and fit["fisher"] != "dense":
        raise InputError("config fit.map_solver: 'dense' needs fit.fisher 'dense' (it "
                         "factorises the n x n Hessian), received fit.fisher "
                         f"{fit['fisher']!r}")
    if route == "structured":
        return _structured_gauss_newton(sc, post, jm, comps, theta0, fit, nominal, log)
    theta = np.asarray(theta0, float).copy()
    t0 = time.perf_counter()
    SF, cf = _hessian_factor(sc, post, jm, comps, theta, nominal)
    lin = SF.linear_index
    _, g = post.loss_and_grad(theta)
    g = np.asarray(g)
    # exact solve of the linear blocks at fixed non-linear parameters: H_ll dx = -g_l
    dl = _solve_block(SF, post, theta, lin, -g[lin])
    theta[lin] += dl
    log(f"  start: linear blocks solved exactly ({lin.size} coefficients), structured "
        f"Hessian {theta.size} x {theta.size} factorised, {time.perf_counter() - t0:.1f} s")
    hist: dict[str, list] = {}
    path = [theta]
    nit = njvp = nvjp = 0
    res = None
    every = max(1, int(fit["refresh_every"]))
    while nit < maxiter:
        if res is not None:
            SF, cf = _hessian_factor(sc, post, jm, comps, theta, nominal)

        def precond(r: np.ndarray, _cf: Any = cf) -> np.ndarray:
            return sla.cho_solve(_cf, r)
        res = gauss_newton(post, theta, maxiter=min(every, maxiter - nit), solver="cg",
                           preconditioner=precond, cg_tol=float(fit["cg_tol"]),
                           cg_maxiter=int(fit["cg_maxiter"]), ftol=float(fit["ftol"]))
        for k, v in res.history.items():
            v = np.asarray(v, float)
            if k in ("njvp", "nvjp", "nfev", "ngev"):
                v = v + (hist[k][-1][-1] if k in hist else 0.0)
            hist.setdefault(k, []).append(v if not hist.get(k) else v[1:])
        nit += int(res.nit)
        njvp += int(res.njvp)
        nvjp += int(res.nvjp)
        theta = np.asarray(res.x, float)
        path.append(theta)
        loss = hist["loss"]
        log(f"  Gauss-Newton iteration {nit}: loss {float(res.fun):.6g}, "
            f"|grad|_inf {float(np.abs(np.asarray(res.grad)).max()):.3g}, "
            f"{time.perf_counter() - t0:.0f} s")
        success, message = bool(res.success), str(res.message)
        if res.success or int(res.nit) == 0:
            break
        flat = np.concatenate(loss)
        tol = max(float(fit["ftol"]) * abs(flat[-1]),
                  float(fit.get("loss_atol", SIGNAL_FIT_OPTIONS["loss_atol"])))
        if flat.size > 2 and flat[-2] - flat[-1] <= tol:
            success = True
            message = (f"converged: -log p fell by {flat[-2] - flat[-1]:.3g} <= "
                       f"max(ftol |f|, loss_atol) = {tol:.3g} in the last iteration")
            break
    else:
        success, message = False, f"stopped at fit.maxiter = {maxiter} Gauss-Newton iterations"
    history = {k: np.concatenate(v) for k, v in hist.items()}
    return SimpleNamespace(x=theta, fun=float(res.fun), grad=res.grad, success=success,
                           message=message, nit=nit, njvp=njvp, nvjp=nvjp,
                           history=history, method="gauss-newton (staged CG)", path=path)


def _signal_sigma_f(sc: Scenario, comp: Any) -> np.ndarray:
    """Per-channel prior standard deviation (Jy per pixel) of the signal's spectrum were
    every k_par mode kept: ``E = diag(jy_per_kelvin) U diag(s)`` with orthonormal DCT
    modes ``U``, so ``sigma_f = jy_per_kelvin_f * rms(s)``."""
    sf = sc.signal_field
    d = sf.jy_per_kelvin()
    # per-mode scale s_k = |E[:, k] / d| / |U[:, k]| (column norms: no division by a mode's
    # zero crossings)
    s = (np.linalg.norm(np.asarray(comp.spectral, float) / d[:, None], axis=0)
         / np.linalg.norm(sf.modes, axis=0))
    return d * float(np.sqrt(np.mean(s**2)))


def _prior_min_eigenvalue(prior: Any) -> float:
    """Smallest eigenvalue of the prior Hessian (diagonal plus small dense blocks): a lower
    bound on every eigenvalue of the Gauss-Newton Hessian ``F + H_prior`` (``F`` is PSD)."""
    n = prior.diag.size
    touched = np.zeros(n, bool)
    for idx, _ in prior.blocks:
        touched[idx] = True
    mu = float(prior.diag[~touched].min()) if (~touched).any() else np.inf
    if touched.any():
        u = np.flatnonzero(touched)
        mu = min(mu, float(np.linalg.eigvalsh(prior.add_to(np.zeros((u.size, u.size)), u))[0]))
    return mu


def _structured_gauss_newton(sc: Scenario, post: Any, jm: Any, comps: list,
                             theta0: np.ndarray, fit: dict, nominal: np.ndarray,
                             log: Callable[[str], None]) -> Any:
    """Gauss-Newton for large joint fits, never forming ``J`` or an ``n x n`` matrix.

    First the linear blocks are solved at the start's non-linear parameters (as on the
    dense route). Then every iteration, at the current point: the true loss and gradient;
    the structured Gauss-Newton Hessian ``F + H_prior`` (:func:`structured_fisher`: exact,
    ``F v`` in ``O(Nf P^2 + Nn n)``); CG on it,
    preconditioned by :func:`structured_preconditioner` (per-channel inverses of the signal
    block, the non-linear and diffuse parameters exact through the Schur complement); a
    backtracking (Armijo) line search on the true loss.

    Converged when the Gauss-Newton step predicts a reduction of ``-log p`` of at most
    ``max(fit.ftol |f|, fit.loss_atol)``: half the Newton decrement ``g^T H^-1 g``, the
    squared distance to the Gauss-Newton optimum in posterior standard deviations (so the
    step is ``sqrt(2 tol)`` standard deviations or less in every direction). Any
    approximate solve ``x`` bounds it from above: with ``r = -g - H x``,
    ``lambda^2 = -g^T x - g^T H^-1 r <= c + lambda rho`` (``c = -g^T x``, ``rho = |r| /
    sqrt(mu)``, ``mu`` the prior Hessian's smallest eigenvalue, ``H >= H_prior``), so
    ``lambda <= (rho + sqrt(rho^2 + 4 c)) / 2`` whether or not CG reached ``fit.cg_tol``.
    That last step is still taken.
    """
    from types import SimpleNamespace

    from ..operators.cg import conjugate_gradient

    maxiter, cg_tol = int(fit["maxiter"]), float(fit["cg_tol"])
    cg_maxiter = int(fit["cg_maxiter"])
    ftol = float(fit["ftol"])
    atol = float(fit.get("loss_atol", SIGNAL_FIT_OPTIONS["loss_atol"]))
    t0 = time.perf_counter()
    theta = np.asarray(theta0, float).copy()
    prior = PriorHessian(post, theta)          # Gaussian priors: constant
    mu = _prior_min_eigenvalue(prior)
    spectral = {i: _signal_sigma_f(sc, c) for i, c in enumerate(comps) if c.name == "signal"}
    need = structured_route_memory(sc, any(c.name == "signal" for c in comps))
    f, g = post.loss_and_grad(theta)
    f, g = float(f), np.asarray(g, float)
    njvp, nvjp, nfev = 0, 1, 1
    hist: dict[str, list] = {"loss": [f], "grad_norm": [float(np.abs(g).max())],
                             "cg_iters": [0], "step": [0.0], "decrement": [np.nan],
                             "seconds": [time.perf_counter() - t0]}
    path = [theta.copy()]
    log(f"  structured Gauss-Newton-CG ({theta.size} parameters; no Jacobian or n x n "
        f"matrix; needs ~{need / 2**30:.1f} GiB): start loss {f:.6g}, |grad|_inf "
        f"{hist['grad_norm'][0]:.3g}")
    # jvps per structured build: the beam's columns (sources and gains come analytically)
    n_beam = int(np.size(theta[jm.params.slices["beam"]])) if "beam" in jm.params.names else 0
    njvp += n_beam
    # the start: linear blocks (signal, diffuse) solved at the catalogue's non-linear
    # parameters, as the dense route does (the first Gauss-Newton steps then need less
    # backtracking)
    SF = structured_fisher(post, jm.params, theta, sc.obs, comps, sc.ref_freq,
                           sc.ripple_delay, _beam_of(jm, theta, nominal), _gains_of(jm, theta),
                           sources=(sc.catalog.ra, sc.catalog.dec))
    lin = np.sort(SF.linear_index)
    pcl = structured_preconditioner(SF, prior, spectral, linear_only=True)

    def mv_lin(u: np.ndarray, _SF: Any = SF) -> np.ndarray:
        v = np.zeros(theta.size)
        v[lin] = u
        return (_SF.matvec(v) + prior_matvec(prior, v))[lin]

    cgl = conjugate_gradient(mv_lin, -g[lin], tol=cg_tol, maxiter=cg_maxiter, precond=pcl)
    trial = theta.copy()
    trial[lin] += np.asarray(cgl.x, float)
    f_l, g_l = post.loss_and_grad(trial)
    nfev += 1
    nvjp += 1
    if float(f_l) < f:
        theta, f, g = trial, float(f_l), np.asarray(g_l, float)
    del SF, pcl, mv_lin, trial           # the next build needs the memory
    log(f"  start: linear blocks ({lin.size} coefficients) solved by CG ({cgl.niter} "
        f"iterations): loss {f:.6g}, |grad|_inf {float(np.abs(g).max()):.3g}, "
        f"{time.perf_counter() - t0:.0f} s")
    success, message, nit = False, "", 0
    for nit in range(1, maxiter + 1):
        ti = time.perf_counter()
        SF = structured_fisher(post, jm.params, theta, sc.obs, comps, sc.ref_freq,
                               sc.ripple_delay, _beam_of(jm, theta, nominal),
                               _gains_of(jm, theta), check=False,
                               sources=(sc.catalog.ra, sc.catalog.dec))
        njvp += n_beam
        pc = structured_preconditioner(SF, prior, spectral)
        t_build = time.perf_counter() - ti

        def mv(v: np.ndarray, _SF: Any = SF) -> np.ndarray:
            return _SF.matvec(v) + prior_matvec(prior, v)

        cg = conjugate_gradient(mv, -g, tol=cg_tol, maxiter=cg_maxiter, precond=pc)
        cg_rel = float(cg.residual_norm) / max(float(np.linalg.norm(g)), 1e-300)
        dx = np.asarray(cg.x, float)
        slope = float(g @ dx)
        if not slope < 0:                       # CG failed: preconditioned steepest descent
            dx = -pc(g)
            slope = float(g @ dx)
        pred = -0.5 * slope                     # GN model's reduction at the full step
        # upper bound on half the Newton decrement g^T H^-1 g from the true residual
        # r = -g - H dx (see the docstring); inf without a proper prior on every parameter
        rho = float(np.linalg.norm(-g - mv(dx))) / np.sqrt(mu) if mu > 0 else np.inf
        bound = 0.5 * (0.5 * (rho + np.sqrt(rho**2 + 4.0 * max(-slope, 0.0)))) ** 2
        del SF, pc, mv                          # the next build needs the memory
        tol = max(ftol * abs(f), atol)
        step, f_new = 1.0, np.inf
        for _ in range(31):
            f_new = float(-post.value(theta + step * dx))
            nfev += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            message = (f"not converged: the line search could not lower -log p along the "
                       f"Gauss-Newton step (predicted reduction {pred:.3g}) at iteration "
                       f"{nit}")
            log(f"  Gauss-Newton iteration {nit}: {message}")
            break
        theta = theta + step * dx
        f, g = post.loss_and_grad(theta)
        f, g = float(f), np.asarray(g, float)
        nfev += 1
        nvjp += 1
        path.append(theta.copy())
        for k, v in (("loss", f), ("grad_norm", float(np.abs(g).max())),
                     ("cg_iters", cg.niter), ("step", step), ("decrement", pred),
                     ("seconds", time.perf_counter() - t0)):
            hist[k].append(v)
        log(f"  Gauss-Newton iteration {nit}: loss {f:.6g}, |grad|_inf "
            f"{hist['grad_norm'][-1]:.3g}, predicted reduction {pred:.3g}, step {step:.3g}, "
            f"CG {cg.niter} iterations (residual {cg_rel:.1e}; Hessian and preconditioner "
            f"{t_build:.0f} s), {time.perf_counter() - t0:.0f} s")
        if bound <= tol:
            success = True
            message = (f"converged: the last Gauss-Newton step predicted a reduction of "
                       f"-log p of {pred:.3g} (at most {bound:.3g} with the CG residual) <= "
                       f"max(ftol |f|, loss_atol) = {tol:.3g}")
            break
    else:
        message = (f"not converged: stopped at fit.maxiter = {maxiter} Gauss-Newton "
                   f"iterations; the last step still predicted a reduction of -log p of "
                   f"{hist['decrement'][-1]:.3g} (> {max(ftol * abs(f), atol):.3g})")
    history = {k: np.asarray(v, float) for k, v in hist.items()}
    return SimpleNamespace(x=theta, fun=f, grad=g, success=success, message=message,
                           nit=len(path) - 1, njvp=njvp, nvjp=nvjp, nfev=nfev,
                           history=history, method="gauss-newton (structured CG)", path=path)


def _solve_block(SF: Any, post: Any, theta: np.ndarray, idx: np.ndarray, rhs: np.ndarray
                 ) -> np.ndarray:
    """Solve ``(F_ll + prior_ll) x = rhs`` on the linear blocks (dense Cholesky)."""
    H = PriorHessian(post, theta).add_to(SF.linear_block(), idx)
    return sla.cho_solve(sla.cho_factor(H, lower=True, overwrite_a=True), rhs)


def laplace_analysis(sc: Scenario, fitres: dict, fit: dict) -> dict:
    """Fisher errors, marginalised signal Fisher, band powers and the empirical-Bayes step.

    Returns a dict with ``F`` (data Fisher, dense), ``prior`` (PriorHessian), ``error`` (marginal
    errors of every parameter under the fiducial prior), ``bandpowers`` (K^2 Mpc^3:
    ``estimate``, ``sigma``, ``covariance``), ``theta_eb`` and ``error_eb`` (MAP and errors of
    all parameters under the estimated band powers), ``structured`` (StructuredFisher).
    """
    jm, post, res = fitres["model"], fitres["post"], fitres["result"]
    theta = np.asarray(res.x, float)
    SF = structured_fisher(post, jm.params, theta, sc.obs, fitres["components"], sc.ref_freq,
                           sc.ripple_delay, _beam_of(jm, theta, fitres["nominal"]),
                           _gains_of(jm, theta), sources=(sc.catalog.ra, sc.catalog.dec))
    F = SF.dense()
    prior = PriorHessian(post, theta)
    out: dict[str, Any] = {"F": F, "prior": prior, "structured": SF}
    names = jm.params.names
    has_sig = "signal" in names
    if not has_sig:
        H = prior.add_to(F.copy())
        out["error"] = np.sqrt(np.diag(np.linalg.inv(H)))
        return out
    sig = np.arange(theta.size)[jm.params.slices["signal"]]
    sf = sc.signal_field
    band = sf.band_of_coeff()
    p0 = fitres["p0"]
    G = marginal_signal_fisher(F, prior, sig)
    bp = band_powers(G, theta[sig], band, p0, iterations=int(fit["bjk_iterations"]))
    out["bandpowers"] = {"estimate": bp.estimate, "sigma": bp.sigma,
                         "covariance": bp.covariance, "fisher": bp.fisher,
                         "fiducial": bp.fiducial}
    out["G"] = G

    def errors_and_step(prior_sig: np.ndarray, grad_sig: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray]:
        H = prior.add_to(F.copy())
        H[sig, sig] += prior_sig - prior.diag[sig]
        cf = sla.cho_factor(H, lower=True, overwrite_a=True)
        step = np.zeros(theta.size)
        if grad_sig is not None:
            g = np.zeros(theta.size)
            g[sig] = grad_sig
            step = -sla.cho_solve(cf, g)
        rest = np.setdiff1d(np.arange(theta.size), sig)
        E = np.zeros((theta.size, rest.size))
        E[rest, np.arange(rest.size)] = 1.0
        err = np.full(theta.size, np.nan)
        err[rest] = np.sqrt(np.einsum("ij,ij->j", E, sla.cho_solve(cf, E)))
        return err, step

    err, _ = errors_and_step(np.ones(sig.size), None)
    out["error"] = err
    # empirical Bayes: prior N(0, diag(P_hat / P0)) on the whitened signal
    s = np.maximum((np.maximum(bp.estimate, 0.02 * p0) / p0)[band], 1e-3)
    err_eb, step = errors_and_step(1.0 / s, (1.0 / s - 1.0) * theta[sig])
    out["theta_eb"] = theta + step
    out["error_eb"] = err_eb
    return out
