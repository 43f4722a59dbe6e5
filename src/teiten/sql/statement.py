"""The registry of SQL statements, so that a test can require each to run on every engine."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

STATEMENTS: dict[str, Callable[..., str]] = {}
"""Every statement function, by ``module.function`` (``traffic.top_ports``)."""

USED: set[str] = set()
"""The statements built in this process (read by the engine parity test)."""


def statement(fn: Callable[P, str]) -> Callable[P, str]:
    """Register a function that returns one SQL statement."""
    name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"

    @functools.wraps(fn)
    def built(*args: P.args, **kwargs: P.kwargs) -> str:
        USED.add(name)
        return fn(*args, **kwargs)

    STATEMENTS[name] = built
    return built
