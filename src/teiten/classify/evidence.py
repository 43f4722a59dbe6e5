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
    if value is None:
        return None, 0
    if column.dtype == "str":
        text = str(value)
        if column.limit and len(text) > column.limit:
            return text[: column.limit], 1
        return text, 0
    if column.dtype in ("list_str", "list_struct"):
        items = list(value)
        cut = 0
        if column.limit and len(items) > column.limit:
            cut, items = len(items) - column.limit, items[: column.limit]
        item = column.fields[0] if column.dtype == "list_str" and column.fields else None
        if column.dtype == "list_struct":
            item = Column("item", "struct", "", fields=column.fields)
        out = []
        for x in items:
            y, n = bounded(x, item) if item is not None else (str(x), 0)
            out.append(y)
            cut += n
        return out, cut
    if column.dtype == "struct":
        out_struct: dict[str, Any] = {}
        cut = 0
        for f in column.fields:
            out_struct[f.name], n = bounded(value.get(f.name), f)
            cut += n
        return out_struct, cut
    return value, 0


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
        out[name], n = bounded(value, EVIDENCE[name])
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
    notes, n = bounded([*c.notes, *s.notes], EVIDENCE["notes"])
    honeypot, m = bounded(None if s.shell is None else _honeypot(s.shell), EVIDENCE["honeypot"])
    old = bounded(list(c.notes), EVIDENCE["notes"])[1]  # counted in cut already
    return {**evidence, "notes": notes, "honeypot": honeypot}, cut - old + n + m
