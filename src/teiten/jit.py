"""numba kernels compiled on their first call, so that importing a module that holds one
does not import numba.

Importing numba costs about 0.2 s, a third of what ``teiten trend`` or ``teiten
ports`` spend before they read anything; most commands that import the store, the
sketches or the country table never run a kernel of theirs (an exact trend, a report
from rollups, every ``--help``). ``@kernel(...)`` takes the options of
``numba.njit`` and gives back a :class:`Kernel`: on its first call it imports numba,
compiles (or loads from numba's cache, as ``cache=True`` always did) and from then on
calls the compiled function.

A kernel that calls another kernel finds it, like numba always does, among its
module's globals when it is compiled. So before a kernel compiles, every
:class:`Kernel` in its module's globals (its own module's, and those it imported
by name) is swapped for its numba dispatcher there, and so on down.

The decoder keeps ``teiten.decode.jit``: ingest always runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


_KERNELS: list[Kernel] = []
"""Every kernel made so far (:func:`bind_all`)."""


class Kernel:
    """A function compiled by ``numba.njit(**options)`` when it is first called."""

    def __init__(self, func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = func
        self.options = options
        self._compiled: Any = None
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        _KERNELS.append(self)

    def __call__(self, *args: Any) -> Any:
        return self.dispatcher()(*args)

    def dispatcher(self) -> Any:
        """The numba dispatcher (made on first use; numba compiles it on its first call)."""
        if self._compiled is None:
            from numba import njit

            try:
                self._compiled = njit(**self.options)(self.py_func)
            except RuntimeError:  # cache=True with no folder it may write: compile each run
                self._compiled = njit(**{**self.options, "cache": False})(self.py_func)
            _bind(self.py_func.__globals__)
        return self._compiled

    def __repr__(self) -> str:
        state = "compiled" if self._compiled is not None else "not compiled yet"
        return f"<kernel {self.__module__}.{self.__qualname__} ({state})>"


def _bind(namespace: dict[str, Any]) -> None:
    """Swap every :class:`Kernel` among a module's globals for its dispatcher."""
    for name, value in list(namespace.items()):
        if isinstance(value, Kernel):
            namespace[name] = value.dispatcher()


def bind_all() -> None:
    """Make the dispatcher of every kernel of the modules imported so far.

    numba picks a kernel's cache folder when its dispatcher is made, among those the
    process may write then. The sensor calls this before it drops root, so its kernels
    keep the installation's cache (as they did when numba compiled at import), which
    the unprivileged user can read but could not have chosen."""
    for each in list(_KERNELS):
        each.dispatcher()


def kernel(**options: Any) -> Callable[[F], F]:
    """``@njit(**options)``, compiled on the first call (typed as the function for mypy)."""

    def wrap(func: F) -> F:
        return cast(F, Kernel(func, options))

    return wrap
