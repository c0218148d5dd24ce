"""Named parameter blocks <-> one flat real vector ``theta``.

Solvers and samplers see one flat real vector. :class:`Params` maps it to the named blocks
of the physical model (sky amplitudes, beam coefficients, gains ...) through per-block
transforms, and is itself an :class:`~linlim.operators.Operator` from ``(n,)`` float64 to
the product space of the blocks, so its Jacobian (including the transforms') enters the
chain rule like any other operator's.

Complex blocks are stored as interleaved ``(re, im)`` pairs, so a block of ``m`` complex
numbers takes ``2 m`` entries of ``theta``. Transforms apply to real blocks:

* :class:`IdentityTransform` ``p = u``
* :class:`LogTransform` ``p = exp(u)`` (positive parameters)
* :class:`BoundedTransform` ``p = lo + (hi - lo) sigmoid(u)`` (box constraints)

When a density over ``theta`` is sampled, add :meth:`Params.log_det_jacobian` (the sum of
``log |dp/du|``) to the log posterior; its gradient is :meth:`Params.grad_log_det_jacobian`.

Examples
--------
>>> import numpy as np
>>> from linlim import Params, ParamBlock, LogTransform
>>> p = Params([ParamBlock("amp", (3,), transform=LogTransform()),
...             ParamBlock("gain", (2,), dtype="complex128")])
>>> p.size
7
>>> theta = p.pack({"amp": np.ones(3), "gain": np.array([1 + 1j, 2.0])})
>>> p.unpack(theta)["gain"]
array([1.+1.j, 2.+0.j])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .backend import asarray, to_numpy
from .errors import InputError, ShapeError
from .operators.base import LinearOperator, Operator
from .operators.linear import Diagonal

__all__ = [
    "Transform",
    "IdentityTransform",
    "LogTransform",
    "BoundedTransform",
    "ParamBlock",
    "Params",
]


class Transform:
    """A smooth bijection ``p = T(u)`` from unconstrained ``u`` to a physical ``p``."""

    def forward(self, u: Any, xp: Any) -> Any:
        """Physical value from the unconstrained one."""
        raise NotImplementedError

    def inverse(self, p: Any, xp: Any) -> Any:
        """Unconstrained value from the physical one (validates the domain)."""
        raise NotImplementedError

    def derivative(self, u: Any, xp: Any) -> Any:
        """Elementwise ``dp/du``."""
        raise NotImplementedError

    def log_det(self, u: Any, xp: Any) -> Any:
        """Elementwise ``log |dp/du|``."""
        return xp.log(xp.abs(self.derivative(u, xp)))

    def grad_log_det(self, u: Any, xp: Any) -> Any:
        """Elementwise ``d/du log |dp/du|``."""
        raise NotImplementedError


class IdentityTransform(Transform):
    """``p = u``."""

    def forward(self, u: Any, xp: Any) -> Any:
        return u

    def inverse(self, p: Any, xp: Any) -> Any:
        return p

    def derivative(self, u: Any, xp: Any) -> Any:
        return xp.ones_like(u)

    def log_det(self, u: Any, xp: Any) -> Any:
        return xp.zeros_like(u)

    def grad_log_det(self, u: Any, xp: Any) -> Any:
        return xp.zeros_like(u)

    def __repr__(self) -> str:
        return "IdentityTransform()"


class LogTransform(Transform):
    """``p = exp(u)`` for positive parameters; ``log|dp/du| = u``."""

    def forward(self, u: Any, xp: Any) -> Any:
        return xp.exp(u)

    def inverse(self, p: Any, xp: Any) -> Any:
        if bool((p <= 0).any()):
            raise InputError(
                f"LogTransform: expected positive values, received min {float(p.min())}"
            )
        return xp.log(p)

    def derivative(self, u: Any, xp: Any) -> Any:
        return xp.exp(u)

    def log_det(self, u: Any, xp: Any) -> Any:
        return u

    def grad_log_det(self, u: Any, xp: Any) -> Any:
        return xp.ones_like(u)

    def __repr__(self) -> str:
        return "LogTransform()"


class BoundedTransform(Transform):
    """``p = lo + (hi - lo) s(u)`` with the logistic ``s``; maps R onto (lo, hi).

    ``dp/du = (hi - lo) s (1 - s)``, ``d/du log(dp/du) = 1 - 2 s``.
    """

    def __init__(self, lo: float, hi: float) -> None:
        if not np.all(np.asarray(hi) > np.asarray(lo)):
            raise InputError(f"BoundedTransform: expected hi > lo, received lo={lo}, hi={hi}")
        self.lo, self.hi = lo, hi

    @staticmethod
    def _sigmoid(u: Any, xp: Any) -> Any:
        return 0.5 * (1.0 + xp.tanh(0.5 * u))  # stable for large |u|

    def forward(self, u: Any, xp: Any) -> Any:
        return self.lo + (self.hi - self.lo) * self._sigmoid(u, xp)

    def inverse(self, p: Any, xp: Any) -> Any:
        if bool(((p <= self.lo) | (p >= self.hi)).any()):
            raise InputError(
                f"BoundedTransform: values must lie strictly inside ({self.lo}, {self.hi}), "
                f"received range [{float(p.min())}, {float(p.max())}]"
            )
        s = (p - self.lo) / (self.hi - self.lo)
        return xp.log(s) - xp.log1p(-s)

    def derivative(self, u: Any, xp: Any) -> Any:
        s = self._sigmoid(u, xp)
        return (self.hi - self.lo) * s * (1.0 - s)

    def grad_log_det(self, u: Any, xp: Any) -> Any:
        return 1.0 - 2.0 * self._sigmoid(u, xp)

    def __repr__(self) -> str:
        return f"BoundedTransform({self.lo}, {self.hi})"


@dataclass
class ParamBlock:
    """One named block of parameters.

    Parameters
    ----------
    name : str
        Block name (e.g. ``"sky_logflux"``, ``"beam_coeffs"``, ``"gains"``).
    shape : tuple of int
        Shape of the physical array.
    dtype : str or dtype
        ``float64`` or ``complex128`` (complex blocks take two reals per element).
    transform : Transform
        Map from unconstrained to physical values (real blocks only).
    """

    name: str
    shape: tuple
    dtype: Any = "float64"
    transform: Transform = field(default_factory=IdentityTransform)

    def __post_init__(self) -> None:
        self.shape = (int(self.shape),) if np.isscalar(self.shape) else tuple(
            int(s) for s in self.shape
        )
        self.dtype = np.dtype(self.dtype)
        if self.dtype.kind not in "fc":
            raise InputError(
                f"ParamBlock {self.name!r}: dtype must be float or complex, received "
                f"{self.dtype}"
            )
        if self.dtype.kind == "c" and not isinstance(self.transform, IdentityTransform):
            raise InputError(
                f"ParamBlock {self.name!r}: transforms apply to real blocks; received "
                f"{self.transform!r} on a complex block"
            )

    @property
    def count(self) -> int:
        """Number of entries of ``theta`` this block uses."""
        n = int(np.prod(self.shape))
        return 2 * n if self.dtype.kind == "c" else n


class Params(Operator):
    """Flat real vector ``theta`` (n,) -> tuple of physical blocks.

    Parameters
    ----------
    blocks : sequence of ParamBlock
        The blocks, in order. Names must be unique.

    Notes
    -----
    For a real block, ``p = T(u)`` elementwise, so ``J du = T'(u) du`` and
    ``J^H dp = T'(u) dp``. For a complex block, ``p = u[0::2] + i u[1::2]``, and
    ``<J du, dp> = Re sum conj(du_re + i du_im) dp = sum du_re Re(dp) + du_im Im(dp)``, so
    ``J^H dp`` interleaves ``(Re dp, Im dp)``.
    """

    _abstract = False

    def __init__(self, blocks: Sequence[ParamBlock]) -> None:
        blocks = list(blocks)
        names = [b.name for b in blocks]
        if len(set(names)) != len(names) or not blocks:
            raise InputError(f"Params: block names must be unique and non-empty, received {names}")
        self.blocks = blocks
        self.names = names
        offsets = np.cumsum([0] + [b.count for b in blocks])
        self.slices = {b.name: slice(int(a), int(c)) for b, a, c in
                       zip(blocks, offsets[:-1], offsets[1:])}
        self.size = int(offsets[-1])
        super().__init__((self.size,), tuple(b.shape for b in blocks), np.float64,
                         tuple(b.dtype for b in blocks), name="Params")

    def index(self, name: str) -> int:
        """Position of block ``name`` in the output tuple."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"Params: no block named {name!r}; blocks are {self.names}") from None

    # -- conversions ------------------------------------------------------------------
    def _block_forward(self, b: ParamBlock, u: Any) -> Any:
        if b.dtype.kind == "c":
            return (u[0::2] + 1j * u[1::2]).reshape(b.shape)
        return b.transform.forward(u, self.xp).reshape(b.shape)

    def _forward(self, theta: Any) -> Any:
        return tuple(self._block_forward(b, theta[self.slices[b.name]]) for b in self.blocks)

    def _linearize(self, theta: Any) -> tuple[Any, LinearOperator]:
        if all(b.dtype.kind == "f" and isinstance(b.transform, IdentityTransform)
               for b in self.blocks):
            return self._forward(theta), _ParamsJacobian(self, None)
        scale = self.xp.ones(self.size, dtype=np.float64)
        for b in self.blocks:
            if b.dtype.kind == "f":
                sl = self.slices[b.name]
                scale[sl] = b.transform.derivative(theta[sl], self.xp)
        return self._forward(theta), _ParamsJacobian(self, scale)

    def pack(self, values: Mapping[str, Any]) -> Any:
        """Flat ``theta`` (n,) float64 from a dict of physical block values.

        Raises
        ------
        InputError, ShapeError
            For a missing block, a wrong shape, NaN, or a value outside a transform's range.
        """
        theta = self.xp.empty(self.size, dtype=np.float64)
        for b in self.blocks:
            if b.name not in values:
                raise InputError(f"Params.pack: missing block {b.name!r}")
            v = asarray(values[b.name], self.xp)
            if tuple(v.shape) != b.shape:
                raise ShapeError(
                    f"Params.pack: block {b.name!r} expected shape {b.shape}, received "
                    f"{tuple(v.shape)}"
                )
            if bool(self.xp.isnan(v).any()):
                raise InputError(f"Params.pack: block {b.name!r} contains NaN")
            sl = self.slices[b.name]
            if b.dtype.kind == "c":
                v = v.astype(np.complex128).ravel()
                theta[sl][0::2], theta[sl][1::2] = v.real, v.imag
            else:
                if v.dtype.kind == "c":
                    raise InputError(
                        f"Params.pack: block {b.name!r} is real, received complex values"
                    )
                theta[sl] = b.transform.inverse(v.astype(np.float64).ravel(), self.xp)
        return theta

    def unpack(self, theta: Any) -> dict[str, Any]:
        """Dict of physical block values from ``theta``."""
        return dict(zip(self.names, self.forward(theta)))

    def log_det_jacobian(self, theta: Any) -> float:
        """``sum log |dp/du|`` over real transformed blocks (add to a sampled density)."""
        theta = self._check_in(theta, "log_det_jacobian", "theta")
        total = 0.0
        for b in self.blocks:
            if b.dtype.kind == "f":
                total += float(to_numpy(b.transform.log_det(theta[self.slices[b.name]],
                                                            self.xp).sum()))
        return total

    def grad_log_det_jacobian(self, theta: Any) -> Any:
        """Gradient of :meth:`log_det_jacobian` with respect to ``theta``, shape (n,)."""
        theta = self._check_in(theta, "grad_log_det_jacobian", "theta")
        g = self.xp.zeros(self.size, dtype=np.float64)
        for b in self.blocks:
            if b.dtype.kind == "f":
                sl = self.slices[b.name]
                g[sl] = b.transform.grad_log_det(theta[sl], self.xp)
        return g

    def __repr__(self) -> str:
        parts = ", ".join(f"{b.name}{b.shape} {b.dtype.name} {b.transform!r}" for b in self.blocks)
        return f"Params(n={self.size}: {parts})"


class _ParamsJacobian(LinearOperator):
    """Jacobian of :class:`Params` at a point: a diagonal scale then the block split."""

    _abstract = True  # built by Params.linearize; checked through Params

    def __init__(self, params: Params, scale: Any) -> None:
        super().__init__(params.in_shape, params.out_shape, params.in_dtype,
                         params.out_dtype, params.xp, name="J[Params]")
        self.params = params
        self.scale = None if scale is None else Diagonal(scale, xp=params.xp)

    def _matvec(self, dtheta: Any) -> Any:
        d = dtheta if self.scale is None else self.scale.matvec(dtheta)
        return tuple(self.params._block_forward(b, d[self.params.slices[b.name]])
                     if b.dtype.kind == "c" else d[self.params.slices[b.name]].reshape(b.shape)
                     for b in self.params.blocks)

    def _rmatvec(self, dp: Any) -> Any:
        g = self.xp.empty(self.params.size, dtype=np.float64)
        for b, d in zip(self.params.blocks, dp):
            sl = self.params.slices[b.name]
            d = d.ravel()
            if b.dtype.kind == "c":
                g[sl][0::2], g[sl][1::2] = d.real, d.imag
            else:
                g[sl] = d.real
        return g if self.scale is None else self.scale.rmatvec(g)
