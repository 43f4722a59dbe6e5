"""Result values as plain JSON values: one conversion for the CLI's ``--format json``
and the HTTP API, so both print the same rows."""

from __future__ import annotations

from typing import Any


def jsonable(v: Any) -> Any:
    """``v`` with bytes as text (undecodable bytes as ``\\xNN``), dates as ISO text,
    tuples as lists, dicts and lists walked."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v
