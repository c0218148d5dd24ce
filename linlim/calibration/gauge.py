"""The phase gauge of antenna gains: fixing it, aligning to a reference, describing it.

``g_a conj(g_b)`` is unchanged by ``g -> g exp(i alpha)`` for one alpha per solution cell
(per cluster for DD gains, per feed when no cross-hand data tie the feeds). No data can fix
alpha, so every solver reports which convention it applied:

* ``"ref_antenna"``: the reference antenna's gain is real and positive (the next unflagged
  antenna in a cell where the reference is flagged);
* ``"mean_phase"``: the circular mean phase is zero, ``sum_a g_a / |g_a|`` real positive
  (to first order the zero-mean-phase gauge ``sum_a arg g_a = 0``);
* ``"none"``: left as the solver ended.

:func:`align_phase` rotates an estimate onto a reference (e.g. the truth in a test) with the
alpha that minimises ``sum_a |g_a e^{i alpha} - g_ref,a|^2``; to first order this removes the
error component along the gauge direction ``i g``, which is what the pseudo-inverse of the
Fisher matrix (the Cramér-Rao bound in that gauge) describes.
"""

from __future__ import annotations

from typing import Any

from ..backend import xp_of
from ..errors import InputError

__all__ = ["apply_gauge", "align_phase"]


def _unit(z: Any, xp: Any) -> Any:
    r = xp.abs(z)
    return xp.where(r > 0, z / xp.where(r > 0, r, 1.0), 1.0 + 0j)


def apply_gauge(gains: Any, gauge: str = "ref_antenna", *, ref_ant: int = 0,
                flags: Any = None, ant_axis: int = -3) -> tuple[Any, str]:
    """Rotate gains into a phase gauge, cell by cell.

    Parameters
    ----------
    gains : complex array, shape (..., Nant, Ntimes_sol, Nfreqs_sol)
        Antenna axis at ``ant_axis``; every other axis (clusters, feeds, cells) gets its
        own rotation.
    gauge : {"ref_antenna", "mean_phase", "none"}
    ref_ant : int
        Reference antenna index.
    flags : bool array, same shape, optional
        Flagged gains do not take part in the gauge.

    Returns
    -------
    gains : complex array, same shape
    description : str
    """
    xp = xp_of(gains)
    ax = ant_axis % gains.ndim
    ok = xp.ones(gains.shape, dtype=bool) if flags is None else ~flags
    if gauge == "none":
        return gains, "none (as solved)"
    if gauge == "mean_phase":
        s = (_unit(gains, xp) * ok).sum(axis=ax, keepdims=True)
        return gains * _unit(s, xp).conj(), "zero circular-mean phase per cell"
    if gauge == "ref_antenna":
        nant = gains.shape[ax]
        if not 0 <= ref_ant < nant:
            raise InputError(f"apply_gauge: ref_ant must be in [0, {nant}), received {ref_ant}")
        order = [ref_ant] + [a for a in range(nant) if a != ref_ant]
        g = xp.moveaxis(gains, ax, 0)
        okm = xp.moveaxis(ok, ax, 0)
        ref = g[ref_ant].copy()
        have = okm[ref_ant].copy()
        for a in order[1:]:  # fall back to the next unflagged antenna
            if bool(have.all()):
                break
            ref = xp.where(have, ref, g[a])
            have = have | okm[a]
        rot = xp.expand_dims(_unit(ref, xp).conj(), ax)
        return gains * rot, f"reference antenna {ref_ant}: gain real and positive"
    raise InputError(f"apply_gauge: gauge must be 'ref_antenna', 'mean_phase' or 'none', "
                     f"received {gauge!r}")


def align_phase(est: Any, ref: Any, *, ant_axis: int = -3) -> Any:
    """Rotate ``est`` by the per-cell phase that best matches ``ref`` (least squares).

    ``alpha = arg sum_a conj(est_a) ref_a`` over the antenna axis, separately for every
    other index (cells, clusters, feeds).
    """
    xp = xp_of(est)
    s = (est.conj() * ref).sum(axis=ant_axis % est.ndim, keepdims=True)
    return est * _unit(s, xp)
