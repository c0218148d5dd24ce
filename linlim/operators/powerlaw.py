"""The power law, composed once: ``y[b, k] = a_b exp(g_b L_k)``.

A power law in some ratio ``r`` (frequency over a reference frequency, separation over a
reference separation) is ``a r^g = a exp(g ln r)``. :class:`PowerLaw` builds it from generic
blocks, so its derivatives come from the product and chain rules of
:mod:`linlim.operators.composite` and are never derived by hand::

    PowerLaw = amplitude(x) * Exp(Diagonal(L) index(x))      (ElementwiseProduct)

with ``amplitude`` and ``index`` any operators that pick the columns ``a`` (n, 1) and
``g`` (n, 1) out of the input. The chromatic beam width
(:class:`~linlim.beam.chromatic.PowerLawWidth`), the mutual-coupling fall-off
(:class:`~linlim.gains.coupling.CouplingPowerLaw`) and the sky's amplitude power law
(:class:`~linlim.sky.spectra.AmplitudePowerLawSpectrum`) are this operator with their own
column selectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, ShapeError
from .base import Operator
from .composite import ElementwiseProduct
from .elementwise import Exp
from .linear import Diagonal, Reshape, Slice

__all__ = ["PowerLaw", "power_law_columns"]


class PowerLaw(ElementwiseProduct):
    """``y[b, k] = a_b exp(g_b L_k)``: amplitudes times a power law in a fixed log ratio.

    Parameters
    ----------
    amplitude : Operator
        Input -> ``a``, real, shape (n, 1).
    index : Operator
        Input -> ``g`` (the exponent), real, shape (n, 1); same input space as
        ``amplitude``.
    log_ratio : array_like, shape (K,)
        ``L_k = ln(r_k)``, e.g. ``ln(f_k / f0)``; finite.
    name : str, optional

    Notes
    -----
    Output (n, K) real. By the product rule (no hand derivation)::

        J dx   = (A dx) e + a (L (G dx)) e,            e = exp(g L)
        J^H dy = A^H[sum_k e dy] + G^H[sum_k a L e dy]

    where ``A``, ``G`` are the Jacobians of ``amplitude`` and ``index``.

    Examples
    --------
    >>> import numpy as np
    >>> amp, idx = power_law_columns(1)
    >>> op = PowerLaw(amp, idx, np.log([1.0, 2.0]))
    >>> op(np.array([[3.0, 2.0]]))                   # 3 * r^2 at r = 1, 2
    array([[ 3., 12.]])
    """

    _abstract = False

    def __init__(self, amplitude: Operator, index: Operator, log_ratio: Any,
                 name: str | None = None) -> None:
        L = np.atleast_1d(np.asarray(log_ratio, dtype=np.float64))
        if L.ndim != 1 or not np.all(np.isfinite(L)):
            raise InputError(f"PowerLaw(log_ratio): expected a finite 1-D array, received "
                             f"shape {L.shape}")
        for what, op in (("amplitude", amplitude), ("index", index)):
            if len(op.out_shape) != 2 or op.out_shape[1] != 1:
                raise ShapeError(f"PowerLaw({what}): expected an operator with output shape "
                                 f"(n, 1), received {op.out_shape}")
        n, xp = index.out_shape[0], index.xp
        outer = Diagonal(xp.asarray(L[None, :]), in_shape=(n, 1), in_dtype=np.float64, xp=xp)
        spectrum = Exp((n, L.size), np.float64, xp=xp) @ outer @ index
        super().__init__(amplitude, spectrum)
        self.log_ratio = L
        self.name = name or "PowerLaw"


def power_law_columns(n: int | None, xp: Any = None) -> tuple[Operator, Operator]:
    """Selectors of the amplitude and index columns of an input ``[a, g]``.

    Parameters
    ----------
    n : int or None
        Number of power laws: the input is ``(n, 2)``; ``None`` for a single power law
        whose input is the vector ``(2,)``.
    xp : module, optional

    Returns
    -------
    amplitude, index : LinearOperator
        Input -> ``(n, 1)`` (``(1, 1)`` for ``n=None``), the first and second column.
    """
    rows = 1 if n is None else int(n)
    amp, idx = (Slice((rows, 2), (slice(None), slice(k, k + 1)), np.float64, xp=xp)
                for k in (0, 1))
    if n is None:
        flat = Reshape((2,), (1, 2), np.float64, xp=xp)
        return amp @ flat, idx @ flat
    return amp, idx
