"""Exception classes raised by linlim.

Every error a user can trigger with bad input is one of these. They subclass the
built-in ``ValueError`` / ``TypeError`` so ordinary ``except ValueError`` code keeps
working, and their messages name the argument (or operator and method), the expected
value and the received one.
"""

from __future__ import annotations

__all__ = [
    "LinlimError",
    "ShapeError",
    "DtypeError",
    "BackendError",
    "BackendMismatchError",
    "InputError",
    "CheckFailedError",
    "InsufficientMemoryError",
]


class LinlimError(Exception):
    """Base class of every linlim exception."""


class ShapeError(LinlimError, ValueError):
    """An array has the wrong shape (or a tuple the wrong number of parts)."""


class DtypeError(LinlimError, TypeError):
    """An array has a dtype that cannot be used without losing information."""


class BackendError(LinlimError, RuntimeError):
    """A backend was requested that is unknown or not usable on this machine."""


class BackendMismatchError(LinlimError, TypeError):
    """An array lives on another device / array module than the operator."""


class InputError(LinlimError, ValueError):
    """A physical input is invalid: out of range, NaN, wrong units, bad flags."""


class CheckFailedError(LinlimError, AssertionError):
    """A dot test or gradient check failed (raised only when asked to assert)."""


class InsufficientMemoryError(LinlimError, MemoryError):
    """A planned allocation does not fit in the free memory (raised before allocating)."""
