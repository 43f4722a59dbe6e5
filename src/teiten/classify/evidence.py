"""A session's classification as typed, bounded evidence: the sessions table's evidence columns.

The columns (``notes``, ``requests``, ``telnet``, ``honeypot``) and their
limits are declared in :data:`teiten.schema.SESSIONS`; :func:`bounded` applies
any declaration's limits to a value and counts what it cut, so the limits are
written once and nothing is dropped without ``evidence_cut`` saying so.

>>> from teiten.schema import Column
>>> bounded(["abcdef", "g", "h"], Column("x", "list_str", "", limit=2,
...         fields=(Column("i", "str", "", limit=3),)))
(['abc', 'g'], 2)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from teiten.classify.classifier import Classification, Request
from teiten.schema import SESSIONS, Column
from teiten.session import Session, Shell

EVIDENCE: dict[str, Column] = {
    c.name: c for c in SESSIONS if c.name in ("notes", "requests", "telnet", "honeypot")
}
"""The declared evidence columns, by name."""


def bounded(value: Any, column: Column) -> tuple[Any, int]:
    """``value`` cut to ``column``'s declared limits (recursively), and how many values were
    shortened or left out."""
    return _bounder(column)(value)


Bound = Callable[[Any], tuple[Any, int]]
"""A column's limits applied to one value: the value as kept, and the count cut."""


@cache
def _bounder(column: Column) -> Bound:
    """:func:`bounded` for one declaration, built once: every verdict's evidence passes
    through these, so the declaration is read when the bounder is made, not per value."""
    if column.dtype == "str":
        return _text_bounder(column.limit)
    if column.dtype in ("list_str", "list_struct"):
        item: Bound = _as_text
        if column.dtype == "list_struct":
            item = _bounder(Column("item", "struct", "", fields=column.fields))
        elif column.fields:
            item = _bounder(column.fields[0])
        return _list_bounder(column.limit, item)
    if column.dtype == "struct":
        return _struct_bounder(tuple((f.name, _bounder(f)) for f in column.fields))
    return _as_is


def _as_is(value: Any) -> tuple[Any, int]:
    return value, 0


def _as_text(value: Any) -> tuple[Any, int]:
    return str(value), 0


def _text_bounder(limit: int) -> Bound:
    def bound(value: Any) -> tuple[Any, int]:
        if value is None:
            return None, 0
        text = str(value)
        if limit and len(text) > limit:
            return text[:limit], 1
        return text, 0

    return bound


def _list_bounder(limit: int, item: Bound) -> Bound:
    def bound(value: Any) -> tuple[Any, int]:
        if value is None:
            return None, 0
        items = list(value)
        cut = 0
        if limit and len(items) > limit:
            cut, items = len(items) - limit, items[:limit]
        out = []
        for x in items:
            y, n = item(x)
            out.append(y)
            cut += n
        return out, cut

    return bound


def _struct_bounder(fields: tuple[tuple[str, Bound], ...]) -> Bound:
    def bound(value: Any) -> tuple[Any, int]:
        if value is None:
            return None, 0
        out: dict[str, Any] = {}
        cut = 0
        for name, field in fields:
            out[name], n = field(value.get(name))
            cut += n
        return out, cut

    return bound


_BOUNDERS = {name: _bounder(column) for name, column in EVIDENCE.items()}


def _request(r: Request) -> dict[str, Any]:
    h, s = r.http, r.soap
    soap = None
    if s is not None:
        soap = {
            "action": s.action, "namespace": s.namespace, "header_action": s.header_action,
            "args": [{"name": n, "value": v} for n, v in s.args], "notes": list(s.notes),
        }  # fmt: skip
    return {
        "method": h.method, "target": h.target, "path": h.path, "version": h.version,
        "headers": [{"name": n, "value": v} for n, v in h.headers],
        "body_length": min(len(h.body), 2**32 - 1), "soap": soap,
        "signatures": list(r.signatures), "notes": list(h.notes),
    }  # fmt: skip


def _honeypot(shell: Shell) -> dict[str, Any]:
    return {
        "name": shell.honeypot, "session": shell.session, "protocol": shell.protocol,
        "sensor": shell.sensor, "client_version": shell.client_version,
        "duration_s": shell.duration_s, "logins": min(len(shell.logins), 2**32 - 1),
        "commands": min(shell.command_count, 2**32 - 1),
        "downloads": [{"url": d.url, "shasum": d.shasum, "outfile": d.outfile}
                      for d in shell.downloads],
        "failed_downloads": list(shell.failed_downloads),
    }  # fmt: skip


def classification_evidence(c: Classification) -> tuple[dict[str, Any], int]:
    """The evidence columns of a classification (``honeypot`` null), bounded, and the count cut.

    A function of the classification alone, so a cached classification's evidence can be
    cached (and stored as one shared value) with it; :func:`session_evidence` adds what
    belongs to one session.
    """
    t = c.telnet
    raw = {
        "notes": list(c.notes),
        "honeypot": None,
        "requests": [_request(r) for r in c.requests] if c.app == "http" else None,
        "telnet": None if t is None else {
            "lines": list(t.lines), "options": list(t.options),
            "server_events": None if t.events is None else list(t.events),
        },
    }  # fmt: skip
    out, cut = {}, 0
    for name, value in raw.items():
        out[name], n = _BOUNDERS[name](value)
        cut += n
    return out, cut


def session_evidence(
    s: Session, c: Classification, evidence: dict[str, Any], cut: int
) -> tuple[dict[str, Any], int]:
    """A classification's ``evidence`` (and ``cut``) completed with what the reader said of
    the session: its notes after the parsers', and what a honeypot logged. The same
    ``evidence`` object comes back when the session adds nothing."""
    if not s.notes and s.shell is None:
        return evidence, cut
    notes, n = _BOUNDERS["notes"]([*c.notes, *s.notes])
    honeypot, m = _BOUNDERS["honeypot"](None if s.shell is None else _honeypot(s.shell))
    old = _BOUNDERS["notes"](list(c.notes))[1]  # counted in cut already
    return {**evidence, "notes": notes, "honeypot": honeypot}, cut - old + n + m
