"""The joint forward model: foreground spectra, a chromatic beam and antenna gains.

``theta -> Params -> (ln S0, alpha, beam, gains) -> V``, assembled entirely by composing
operators (so its Jacobian is the chain rule of theirs)::

    I   = PowerLawSpectrum @ vstack(Select[ln S0], Select[alpha])          (Nsrc, Nfreq)
    A   = Reshape @ AiryProfile @ ripple_powerlaw_width @ Select[beam]     (1, Nt, Nsrc, Nf)
    V0  = RIME @ vstack(I, A)                                              (Nt, Nf, Nbl)
    V   = di_gains @ vstack(amplitude_phase_gains @ Select[gains], V0)   (gains fitted)

With ``beam="fixed"`` the beam is held at given values and the model is linear in the
intensities: ``V0 = RIMEIntensity(beam=A_fixed) @ I``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..beam.analytic import AiryProfile
from ..beam.chromatic import ripple_powerlaw_width
from ..calibration.gains import di_gains
from ..calibration.parameterizations import amplitude_phase_gains
from ..errors import InputError
from ..io.results import parameter_names
from ..operators import Operator, Reshape, Select, add, vstack
from ..operators.linear import ZeroPad
from ..params import ParamBlock, Params
from ..rime.operator import RIME, RIMEIntensity
from ..sky.spectra import PowerLawSpectrum
from .scenario import Observation

__all__ = ["JointModel", "LinearComponent", "build_joint_model", "beam_values",
           "BEAM_COMPONENTS", "GAIN_COMPONENTS"]

#: Components of the ``beam`` block (1, 4): the keys of ``scenario.beam`` in the config
#: (D(f) = diameter_m (f/f0)^spectral_index + ripple), so results carry the config's names.
BEAM_COMPONENTS = ("diameter_m", "spectral_index", "ripple_cos_m", "ripple_sin_m")
#: Components of the ``gains`` block (2, Nant, 1, 1): log-amplitude and phase (rad).
GAIN_COMPONENTS = ("ln_amp", "phase")


@dataclass
class LinearComponent:
    """A sky component linear in its coefficients, at pixel centres beside the sources.

    ``I[p, f] = sum_m x[p, m] spectral[f, m]`` (Jy per pixel) for the parameter block
    ``name`` of shape (Npix, Nmodes) (whitened: prior ``N(0, 1)`` when ``spectral`` carries
    the prior scale).

    Attributes
    ----------
    name : str
    ra, dec : ndarray (Npix,), radians
    spectral : ndarray (Nfreq, Nmodes)
    """

    name: str
    ra: np.ndarray
    dec: np.ndarray
    spectral: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.ra.size), int(self.spectral.shape[1]))


@dataclass
class JointModel:
    """A joint model and its parameter layout.

    Attributes
    ----------
    params : Params
        Blocks ``fg_logflux`` (Nsrc,), ``fg_index`` (Nsrc,), ``beam`` (1, 4) when the beam
        is fitted, ``gains`` (2, Nant, 1, 1) when gains are fitted: log-amplitude and
        phase (rad) of one complex gain per antenna. In these coordinates the gauge (an
        overall phase) and the flux-gain amplitude degeneracy are straight lines, so the
        posterior stays close to Gaussian (complex Re/Im gains would bend the phase gauge
        into a thin curved ridge that defeats HMC).
    model : Operator
        ``theta`` (n,) float64 -> visibilities (Ntimes, Nfreq, Nbl) complex128.
    names : list of str
        One name per entry of ``theta`` (:func:`linlim.io.results.parameter_names`):
        ``fg_logflux[i]``, ``fg_index[i]``, ``beam.<BEAM_COMPONENTS>``,
        ``gains.ln_amp[a]``, ``gains.phase[a]``, ``<component>[p,m]``.
    """

    params: Params
    model: Operator
    names: list


def _beam_operator(obs: Observation, az: np.ndarray, za: np.ndarray, ref_freq: float,
                   ripple_delay: float) -> Operator:
    width = ripple_powerlaw_width(obs.freqs, ripple_delay, 1, ref_freq)
    return AiryProfile(az, za, obs.freqs, 1) @ width


def beam_values(obs: Observation, az: np.ndarray, za: np.ndarray, ref_freq: float,
                ripple_delay: float, beam_params: np.ndarray) -> np.ndarray:
    """Beam values (1, Ntimes, Nsrc, Nfreq) for ``beam_params`` (1, 4) at directions
    flattened time-major (``az``, ``za`` of shape (Ntimes * Nsrc,))."""
    op = _beam_operator(obs, az, za, ref_freq, ripple_delay)
    nt = obs.times_jd.size
    return np.asarray(op(np.asarray(beam_params, float))).reshape(1, nt, -1, obs.freqs.size)


def build_joint_model(obs: Observation, ra: np.ndarray, dec: np.ndarray, ref_freq: float,
                      ripple_delay: float, *, beam: str = "fit",
                      fixed_beam: np.ndarray | None = None, fit_gains: bool = True,
                      linear: Sequence[LinearComponent] = ()) -> JointModel:
    """Build the joint model for sources at (``ra``, ``dec``).

    Parameters
    ----------
    obs : Observation
    ra, dec : ndarray (Nsrc,), radians
    ref_freq : float
        Reference frequency of the spectra and the beam law (Hz).
    ripple_delay : float
        Delay of the beam's ripple term (s).
    beam : {"fit", "fixed"}
        Fit the beam's ``(D0, gamma, ripple_cos, ripple_sin)``, or hold it at
        ``fixed_beam``.
    fixed_beam : ndarray (1, 4), optional
        Beam parameters when ``beam="fixed"``.
    fit_gains : bool
        Fit one complex gain per antenna (constant over the observation).
    linear : sequence of LinearComponent
        Sky components linear in their coefficients (the 21 cm signal, the diffuse
        foreground): their pixels join the sources in one RIME, seen through the same beam
        and gains; each adds a parameter block after the gains.
    """
    if beam not in ("fit", "fixed"):
        raise InputError(f"build_joint_model: beam must be 'fit' or 'fixed', received {beam!r}")
    if beam == "fixed" and fixed_beam is None:
        raise InputError("build_joint_model: beam='fixed' needs fixed_beam (1, 4)")
    npt, na = ra.size, obs.antpos.shape[0]
    nt, nf, nbl = obs.shape
    for comp in linear:
        if comp.spectral.shape[0] != nf or comp.ra.shape != comp.dec.shape:
            raise InputError(f"build_joint_model: component {comp.name!r} has spectral shape "
                             f"{comp.spectral.shape} for {comp.ra.size} pixels; expected "
                             f"({nf}, Nmodes) for the {nf} channels")
    all_ra = np.concatenate([ra] + [c.ra for c in linear])
    all_dec = np.concatenate([dec] + [c.dec for c in linear])
    ns = all_ra.size
    enu, az, za = obs.directions(all_ra, all_dec)
    blocks = [ParamBlock("fg_logflux", (npt,)), ParamBlock("fg_index", (npt,))]
    if beam == "fit":
        blocks.append(ParamBlock("beam", (1, 4)))
    if fit_gains:
        blocks.append(ParamBlock("gains", (2, na, 1, 1)))
    for comp in linear:
        blocks.append(ParamBlock(comp.name, comp.shape))
    params = Params(blocks)

    def sel(name: str) -> Select:
        return Select(params.out_shape, params.out_dtype, params.index(name))

    sky = PowerLawSpectrum(obs.freqs, ref_freq, npt) @ vstack([sel("fg_logflux"),
                                                               sel("fg_index")])
    if linear:
        from .skymodel import component_operator

        parts = [ZeroPad((npt, nf), ((0, ns - npt), (0, 0))) @ sky]
        start = npt
        for comp in linear:
            n = comp.ra.size
            op = component_operator(comp.spectral, n, sel(comp.name))
            parts.append(ZeroPad((n, nf), ((start, ns - start - n), (0, 0))) @ op)
            start += n
        sky = add(*parts)
    if beam == "fit":
        A = Reshape((1, nt * ns, nf), (1, nt, ns, nf)) @ _beam_operator(
            obs, az, za, ref_freq, ripple_delay) @ sel("beam")
        vis = RIME(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2) @ vstack([sky, A])
    else:
        A = beam_values(obs, az, za, ref_freq, ripple_delay, fixed_beam)
        vis = RIMEIntensity(enu, obs.antpos, obs.freqs, obs.ant1, obs.ant2, beam=A) @ sky
    if fit_gains:
        G = di_gains(obs.ant1, obs.ant2, na, nt, nf, time_interval=nt, freq_interval=nf)
        gains = amplitude_phase_gains((na, 1, 1)) @ sel("gains")
        vis = G @ vstack([gains, vis])
    model = vis @ params
    comps = {"beam": (1, BEAM_COMPONENTS), "gains": (0, GAIN_COMPONENTS)}
    names = parameter_names(params, {k: v for k, v in comps.items() if k in params.names})
    return JointModel(params, model, names)
