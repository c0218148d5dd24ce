"""The joint posterior with the 21 cm signal: structured Fisher, band powers, the
hierarchical HMC target, bad input, and the demo's claims on a small case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linlim.errors import InputError
from linlim.io.config import merge_config
from linlim.pipelines.power import band_powers
from linlim.pipelines.scenario import SCENARIO_DEFAULTS, build_scenario
from linlim.pipelines.structured import StructuredFisher, check_memory
from linlim.sky.bandpower import check_basis_frequencies

TINY = {"seed": 5, "array": {"hex_num": 2}, "band": {"nfreq": 32}, "times": {"ntimes": 3},
        "foregrounds": {"nsources": 4},
        "signal": {"nside": 8, "radius_deg": 22.0, "nk": 12, "nbands": 3},
        "diffuse": {"radius_deg": 22.0, "temperature_k": 0.5}}


def _tiny_model():
    from linlim.likelihood import GaussianLikelihood, LogPosterior
    from linlim.pipelines.fit import FIT_OPTIONS, start_and_priors
    from linlim.pipelines.joint import build_joint_model
    from linlim.pipelines.signalfit import SIGNAL_FIT_OPTIONS, fiducial_power, linear_components
    from linlim.pipelines.simulate import simulate_data
    from linlim.priors import GaussianPrior

    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, TINY))
    sim = simulate_data(sc)
    fit = {**FIT_OPTIONS, **SIGNAL_FIT_OPTIONS}
    comps = linear_components(sc, fiducial_power(sc, 5.0))
    jm = build_joint_model(sc.obs, sc.catalog.ra, sc.catalog.dec, sc.ref_freq,
                           sc.ripple_delay, linear=comps)
    _, priors = start_and_priors(sc, fit, np.random.default_rng(1), True)
    for c in comps:
        priors.append(GaussianPrior(np.zeros(int(np.prod(c.shape))), sigma=1.0, index=c.name))
    post = LogPosterior(GaussianLikelihood(jm.model, sim["data"], sigma=sc.sigma), priors,
                        params=jm.params)
    return sc, sim, comps, jm, post


def test_structured_fisher_equals_jacobian_products() -> None:
    """F v from the structure (K per time, channel and redundant group, analytic source and
    gain columns) equals 2 Re J^H W J v from the model's own jvp/vjp, at a generic point
    (random gain amplitudes and phases)."""
    from linlim.pipelines.signalfit import _beam_of, _gains_of
    from linlim.pipelines.structured import redundant_groups, structured_fisher

    sc, sim, comps, jm, post = _tiny_model()
    first, inverse = redundant_groups(sc.obs)       # K is built per redundant group
    assert first.size < inverse.size
    rng = np.random.default_rng(2)
    x = 0.1 * rng.standard_normal(jm.params.size)
    x[jm.params.slices["beam"]] = [14.2, 0.03, 0.1, -0.05]
    SF = structured_fisher(post, jm.params, x, sc.obs, comps, sc.ref_freq, sc.ripple_delay,
                           _beam_of(jm, x, None), _gains_of(jm, x),
                           sources=(sc.catalog.ra, sc.catalog.dec))
    _, J = jm.model.linearize(x)
    for _ in range(2):
        v = rng.standard_normal(x.size)
        ref = np.asarray(J.rmatvec(2 * post.likelihood.w_eff * J.matvec(v)))
        scale = np.abs(ref).max()
        assert np.abs(SF.dense() @ v - ref).max() < 1e-10 * scale
        assert np.abs(SF.matvec(v) - ref).max() < 1e-10 * scale


def _gaussian_case(seed: int, truth: np.ndarray, nper: int = 200):
    """Whitened coefficients with known band powers and a known diagonal noise."""
    rng = np.random.default_rng(seed)
    nb = truth.size
    band = np.repeat(np.arange(nb), nper)
    p0 = np.ones(nb)
    g = rng.uniform(0.5, 20.0, band.size)              # data precision per coefficient
    c = rng.standard_normal(band.size) * np.sqrt(truth[band])
    xml = c + rng.standard_normal(band.size) / np.sqrt(g)
    G = np.diag(g)
    z_hat = g * xml / (1.0 + g)                        # MAP under the fiducial N(0, 1)
    return G, z_hat, band, p0


def test_band_powers_recover_known_power_and_null() -> None:
    truth = np.array([3.0, 1.0, 0.3])
    zs, nulls = [], []
    for seed in range(12):
        G, z, band, p0 = _gaussian_case(seed, truth)
        bp = band_powers(G, z, band, p0, iterations=4)
        zs.append((bp.estimate - truth) / bp.sigma)
        G, z, band, p0 = _gaussian_case(100 + seed, np.zeros(3))
        bn = band_powers(G, z, band, p0, iterations=4)
        nulls.append(bn.estimate / bn.sigma)
    zs, nulls = np.array(zs), np.array(nulls)
    assert abs(zs.mean()) < 0.5 and 0.6 < zs.std() < 1.4        # unbiased, honest errors
    assert np.mean(np.abs(zs) < 2) > 0.85
    assert abs(nulls.mean()) < 0.5 and np.abs(nulls).max() < 4.5  # negative allowed
    assert (nulls < 0).any()


def test_hierarchical_posterior_gradient() -> None:
    from linlim.pipelines.hierarchical import HierarchicalLaplacePosterior

    rng = np.random.default_rng(0)
    nf, P = 5, 3
    E = rng.standard_normal((nf, 2))
    K = rng.standard_normal((nf, P, 4)) + 1j * rng.standard_normal((nf, P, 4))
    K2 = rng.standard_normal((nf, 6, 5)) + 1j * rng.standard_normal((nf, 6, 5))
    M = 2 * np.real(np.einsum("fpx,fqx->fpq", K.conj(), K))
    SF = StructuredFisher(8, np.array([0, 1]), [(slice(2, 8), E, slice(0, 3))], M,
                          rng.standard_normal((2, 6)), 5 * np.eye(2))
    v = rng.standard_normal(8)
    np.testing.assert_allclose(SF.dense() @ v, SF.matvec(v), rtol=1e-12, atol=1e-12)
    # two linear components, and a block of columns
    E2 = rng.standard_normal((nf, 3))
    SF2 = StructuredFisher(17, np.array([0, 1]), [(slice(2, 8), E, slice(0, 3)),
                                                 (slice(8, 17), E2, slice(3, 6))],
                           2 * np.real(np.einsum("fpx,fqx->fpq", K2.conj(), K2)),
                           rng.standard_normal((2, 15)), 5 * np.eye(2))
    V = rng.standard_normal((17, 4))
    np.testing.assert_allclose(SF2.matvec(V), SF2.dense() @ V, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(SF2.matvec(V[:, 1]), SF2.dense() @ V[:, 1], rtol=1e-12,
                               atol=1e-10)

    class Prior:                          # a dense block on the non-signal pair
        diag = np.r_[0.0, 0.0, np.ones(6)]
        blocks: list = [(np.array([0, 1]), np.array([[2.0, 0.5], [0.5, 3.0]]))]

    hp = HierarchicalLaplacePosterior(SF, Prior(), rng.standard_normal(8),
                                      rng.standard_normal(8), rng.standard_normal(8),
                                      np.arange(2, 8), np.array([0, 1] * 3), 2,
                                      centring=rng.uniform(0, 1, 6))
    x = 0.3 * rng.standard_normal(hp.size)
    _, g = hp.value_and_grad(x)
    # a block of points at once (the sampler's lockstep chains) equals one at a time
    X = 0.3 * rng.standard_normal((3, hp.size))
    vals, grads = hp.value_and_grad_batch(X)
    for i in range(3):
        vi, gi = hp.value_and_grad(X[i])
        np.testing.assert_allclose([vals[i]], [vi], rtol=1e-12)
        np.testing.assert_allclose(grads[i], gi, rtol=1e-12, atol=1e-12)
    num = np.array([(hp.value(x + 1e-6 * e) - hp.value(x - 1e-6 * e)) / 2e-6
                    for e in np.eye(hp.size)])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6)
    # the dense metric assembled from the dense Fisher equals n Hessian products
    from linlim.pipelines.hierarchical import dense_hessian

    H_slow = dense_hessian(hp, x)
    H_fast = dense_hessian(hp, x, SF.dense())
    np.testing.assert_allclose(H_fast, H_slow, rtol=1e-12, atol=1e-12)
    assert H_fast.shape == (hp.size, hp.size)


def test_bad_input_errors(tmp_path) -> None:
    sc = build_scenario(merge_config(SCENARIO_DEFAULTS, TINY))
    sf = sc.signal_field
    with pytest.raises(InputError, match=r"fit: signal basis frequencies \(31 channels .*"
                                         r"do not match the observation's frequencies "
                                         r"\(32 channels"):
        check_basis_frequencies(sf.freqs[:-1], sc.obs.freqs, where="fit")
    with pytest.raises(InputError, match="band powers must be 3 positive"):
        sf.coeff_std(np.array([1.0, 0.0, 1.0]))
    with pytest.raises(InputError, match="needs about 2.0 GiB .* only 1.0 GiB"):
        check_memory(2 * 2**30, "fit", limit=2**30)
    with pytest.raises(InputError, match="nbands"):
        build_scenario(merge_config(SCENARIO_DEFAULTS, {**TINY, "signal": {
            **TINY["signal"], "nk": 4, "nbands": 5}}))
    from linlim.pipelines.demo import run_demo

    out = tmp_path / "refused"
    with pytest.raises(InputError, match="GiB"):
        run_demo({"scenario": TINY, "fit": {"memory_limit_gib": 0.001},
                  "progress": False}, output=str(out))
    assert not (out / "summary.json").exists() and not (out / "data.uvh5").exists()


@pytest.mark.slow
def test_demo_joint_posterior_small(tmp_path, capsys) -> None:
    """The demo's claims on a small case: the joint fit recovers the beam and the band
    powers within their errors, the null test is consistent with zero, the wrong-beam fit
    is not, and every file and summary key is written."""
    from linlim.pipelines.demo import run_demo

    # the coverage benchmark's reduced config (benchmarks/bench_coverage.py, "small"), seed 6
    cfg = {"scenario": {"seed": 6, "array": {"hex_num": 2}, "band": {"nfreq": 48},
                        "times": {"ntimes": 4}, "foregrounds": {"nsources": 6},
                        "signal": {"nside": 8, "radius_deg": 22.0, "nk": 24, "nbands": 4},
                        "diffuse": {"radius_deg": 22.0}},
           "hmc": {"chains": 2, "warmup": 60, "draws": 60},
           "progress": True}
    s = run_demo(cfg, output=str(tmp_path / "demo"))
    assert "8/8" in capsys.readouterr().err      # the step bar ends at its total
    assert s["joint_fit"]["parameters"] > 500
    assert all(abs(b["z"]) < 4 for b in s["beam"])
    assert s["foregrounds"]["rms_z"] < 3
    sp = s["signal_power"]
    assert len(sp["k"]) == len(sp["estimate"]) == len(sp["sigma"]) == len(sp["truth"]) == 4
    assert np.mean(np.abs(sp["z"]) <= 2.5) >= 0.75
    assert s["null_test"]["max_abs_z"] < 3.5
    assert max(abs(z) for z in s["wrong_beam"]["signal_power"]["z"]) > 5
    assert "rhat_band_powers" in s["hmc"] and len(sp["hmc_mean"]) == 4
    assert s["hmc"]["integrator"].startswith("split"), s["hmc"]
    # the HMC band powers agree with the Laplace ones within the errors
    hz = (np.array(sp["hmc_mean"]) - np.array(sp["estimate"])) / np.array(sp["sigma"])
    assert np.all(np.abs(hz) < 1.5), hz
    saved = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert saved["joint_fit"]["parameters"] == s["joint_fit"]["parameters"]
    for name in ("data.uvh5", "model.uvh5", "fit.h5", "chains.h5", "power_spectrum.png",
                 "corner_beam.png", "corner_band_powers.png", "delay_spectra.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0


def test_large_config_counts_and_memory_refusal() -> None:
    """The shipped large config has >= 1e5 parameters; on the dense route it is refused
    with the memory it would need."""
    import pathlib

    import yaml

    from linlim.pipelines.demo import DEMO_DEFAULTS
    from linlim.pipelines.signalfit import check_dense_memory

    path = pathlib.Path(__file__).parents[1] / "examples" / "configs" / "large.yaml"
    cfg = merge_config(DEMO_DEFAULTS, yaml.safe_load(path.read_text()))
    sc = build_scenario(cfg["scenario"])
    n = (int(np.prod(sc.signal_field.shape)) + int(np.prod(sc.diffuse.shape))
         + 2 * sc.catalog.ra.size + 4 + 2 * sc.obs.antpos.shape[0])
    assert n >= 100_000
    assert check_dense_memory(sc, cfg["fit"]) == 0          # matrix-free: no dense matrices
    with pytest.raises(InputError, match=r"needs about \d+\.\d GiB"):
        check_dense_memory(sc, {**cfg["fit"], "fisher": "dense", "memory_limit_gib": 64})


def _old_pipeline_band_powers(G, z_hat, band, p0, iterations=8, floor=1e-3, tol=0.02):
    """The pipeline's own BJK iteration before it was routed through linlim.sky.bandpower
    (kept here, verbatim in its maths, as the reference for the equality test)."""
    import scipy.linalg as sla

    nb = p0.size
    E = np.zeros((band.size, nb))
    E[np.arange(band.size), band] = 1.0
    b = z_hat + G @ z_hat
    P = p0.copy()
    niter = 0
    for _ in range(iterations):
        niter += 1
        s = (P / p0)[band]
        A = G.copy()
        A[np.diag_indices_from(A)] += 1.0 / s
        Q = sla.inv(A)
        Q = 0.5 * (Q + Q.T)
        u = (Q @ b) / s
        Cinv = -Q / s[:, None] / s[None, :]
        Cinv[np.diag_indices_from(Cinv)] += 1.0 / s
        q = 0.5 * (E.T @ u**2) / p0
        t = 0.5 * (E.T @ np.diag(Cinv)) / p0
        Fb = 0.5 * (E.T @ (Cinv**2) @ E) / np.outer(p0, p0)
        est = P + np.linalg.solve(Fb, q - t)
        newP = np.clip(np.maximum(est, floor * p0), P / 10.0, P * 10.0)
        sig = np.sqrt(np.maximum(np.diag(np.linalg.inv(Fb)), 0.0))
        done = bool(np.all(np.abs(newP - P) <= tol * sig))
        P = newP
        if done:
            break
    cov = np.linalg.inv(Fb)
    return est, np.sqrt(np.diag(cov)), Fb, niter


@pytest.mark.parametrize("seed", [0, 3, 107])
@pytest.mark.parametrize("layout", ["bands", "tiled"])
def test_band_powers_equal_old_pipeline_iteration(seed: int, layout: str) -> None:
    """band_powers (through the library's precision-form step) reproduces the pipeline's
    former whitened-unit iteration to 1e-8, on the _gaussian_case data (contiguous bands)
    and on a dense G with the signal fit's (pixel, mode) tiling of bands."""
    truth = np.array([3.0, 1.0, 0.3]) if seed < 100 else np.zeros(3)
    if layout == "bands":
        G, z, band, p0 = _gaussian_case(seed, truth, nper=60)
        p0 = np.array([1.0, 2.0, 0.5])
    else:
        rng = np.random.default_rng(seed)
        band = np.tile(np.array([0, 0, 1, 1, 2, 2]), 20)             # 20 pixels x 6 modes
        J = rng.standard_normal((band.size - 10, band.size))      # rank-deficient G
        G = J.T @ J / 10.0
        p0 = np.array([1.0, 2.0, 0.5])
        z = rng.standard_normal(band.size) * np.sqrt((truth + 0.1)[band] / p0[band])
    old = _old_pipeline_band_powers(G, z, band, p0, iterations=4)
    new = band_powers(G, z, band, p0, iterations=4)
    assert new.iterations == old[3]
    for a, b in ((new.estimate, old[0]), (new.sigma, old[1]), (new.fisher, old[2])):
        assert np.max(np.abs(a - b)) <= 1e-8 * np.max(np.abs(b))


@pytest.mark.parametrize("nmodes", [1, 3])
def test_diffuse_field_spectra_equal_former_formula(nmodes: int) -> None:
    """make_diffuse_field's spectra, now DiffuseSky's operator in Jy per pixel at f0, equal
    the pipeline's former closed form (f / f0)^(index + 2) ln(f / f0)^m to 1e-12."""
    from types import SimpleNamespace

    from linlim.pipelines.skymodel import make_diffuse_field

    cfg = {**SCENARIO_DEFAULTS["diffuse"], "nmodes": nmodes, "enabled": True}
    freqs = 1.2e8 + 2.5e5 * np.arange(24)
    f0 = 1.23e8
    d = make_diffuse_field(cfg, SimpleNamespace(freqs=freqs), (0.3, -0.5), f0,
                           np.random.default_rng(1))
    beta = float(cfg["index_mean"]) + 2.0
    old = (freqs / f0)[:, None] ** beta * np.log(freqs / f0)[:, None] ** np.arange(nmodes)
    assert np.max(np.abs(d.spectra - old)) <= 1e-12 * np.max(np.abs(old))
    # the whitened spectral matrix the fit uses and the intensities agree too
    ref = old * d.prior_sigma[None, :]
    assert np.max(np.abs(d.spectral_matrix() - ref)) <= 1e-12 * np.max(np.abs(ref))
    a = np.random.default_rng(2).standard_normal((d.npix, nmodes))
    assert np.max(np.abs(d.intensity(a) - a @ old.T)) <= 1e-12 * np.max(np.abs(a @ old.T))
