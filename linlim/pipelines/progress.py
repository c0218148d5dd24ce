"""Progress bars of the long ``linlim`` jobs (tqdm), silenced by ``--quiet``.

Every job draws its bars through :func:`progress_bar`; :func:`set_quiet` (the CLI's
``--quiet``) turns all of them off, as do ``disable=True`` and a non-terminal stderr.

Examples
--------
>>> from linlim.pipelines.progress import progress_bar, set_quiet
>>> set_quiet(True)
>>> sum(progress_bar(range(3), desc="demo"))
3
>>> set_quiet(False)
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["progress_bar", "set_quiet", "is_quiet"]

_QUIET = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) every progress bar and status line of the pipelines."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    """True when :func:`set_quiet` silenced the pipelines."""
    return _QUIET


def progress_bar(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None,
                 disable: bool = False, **kwargs: Any) -> Any:
    """A ``tqdm.auto.tqdm`` over ``iterable`` (or a manual bar with ``total``), or a plain
    pass-through when quiet or disabled.

    Parameters
    ----------
    iterable : iterable, optional
    desc : str
        Label, e.g. ``"simulate"``.
    total : int, optional
    disable : bool
    **kwargs
        Passed to tqdm.

    Returns
    -------
    tqdm or _Silent
        Iterable; ``update(n)``, ``set_postfix(...)`` and ``close()`` work either way.
    """
    if disable or _QUIET:
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, **kwargs)


class _Silent:
    """The no-op stand-in for a tqdm bar."""

    def __init__(self, iterable: Iterable | None) -> None:
        self._it = iterable

    def __iter__(self) -> Any:
        return iter(self._it if self._it is not None else ())

    def update(self, n: int = 1) -> None:
        """No-op."""

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """No-op."""

    def close(self) -> None:
        """No-op."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None
