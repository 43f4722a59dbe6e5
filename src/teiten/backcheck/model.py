"""The ``Probe`` result row of a back-check, its ``probes`` table schema, and run summaries.

One row per (target, port, probe): the prober's TCP connect, each HTTP GET,
the Telnet banner read and the SSDP search each give a row, and every
imported scan record gives one. Rows are matched to firmware advisories with
:func:`match_advisories`; :func:`summarize` answers the question of the NPA
report of 2017-12-19 ("of N sources checked, M had 52869 open; banners: …").

Text fields hold what a device sent (capped, never escaped here): print them
with :func:`teiten.escape.terminal`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from teiten.advisories.check import WORST_FIRST, Verdict, check, check_banner
from teiten.schema import PROBES
from teiten.store.arrow import table_schema

BANNER_CAP = 2048
"""Bytes of a banner (response head, Telnet greeting, SSDP reply) kept per row."""
TEXT_CAP = 256
"""Characters kept of each descriptive field (server header, model, title…)."""


@dataclass(frozen=True)
class Probe:
    """One observation of one port of one target, by the prober or from a scan file."""

    target: str
    port: int
    proto: str = "tcp"
    probe: str = "connect"
    """connect, http, telnet, ssdp (prober); port, banner, service… (imports)."""
    state: str = "open"
    """open, closed, filtered (no answer in time) or error."""
    path: str = ""
    http_status: int | None = None
    server_header: str = ""
    title: str = ""
    """HTML ``<title>`` of a page, else the realm of a ``WWW-Authenticate`` challenge."""
    manufacturer: str = ""
    model: str = ""
    model_number: str = ""
    friendly_name: str = ""
    model_description: str = ""
    firmware: str = ""
    banner: bytes = b""
    bytes_read: int = 0
    truncated: bool = False
    advisory_status: str = ""
    advisory_ids: tuple[str, ...] = ()
    advisory_statuses: tuple[str, ...] = ()
    note: str = ""
    probed_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    source: str = "prober"
    """prober, masscan, zgrab2 or nmap."""

    def to_row(self) -> dict[str, Any]:
        """The row as plain values (tuples as lists), in schema order."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }


PROBES_SCHEMA = table_schema(PROBES)
"""The ``probes`` table (:data:`teiten.schema.PROBES`): one row per :class:`Probe`."""


def to_table(probes: Iterable[Probe]) -> pa.Table:
    """The probes as an Arrow table of :data:`PROBES_SCHEMA`."""
    rows = [p.to_row() for p in probes]
    columns = {f.name: [r[f.name] for r in rows] for f in PROBES_SCHEMA}
    return pa.table(columns, schema=PROBES_SCHEMA)


def clip(text: str, limit: int = TEXT_CAP) -> str:
    """``text`` with blanks collapsed and cut to ``limit`` characters."""
    return " ".join(text.split())[:limit]


def rank(status: str) -> int:
    """Where a verdict status sorts, worst (``affected``) first; unknown text last."""
    return WORST_FIRST.index(status) if status in WORST_FIRST else len(WORST_FIRST)


_FINAL = ("affected", "fixed", "not_affected")


def _verdicts(v: Verdict) -> list[Verdict]:
    return [v, *v.also] if v.status != "unknown_model" else list(v.also)


def match_advisories(probe: Probe) -> Probe:
    """The probe with the advisories its model, firmware or banners match.

    A model with a firmware version goes to ``check``: its ``affected``,
    ``fixed`` or ``not_affected`` verdict for an advisory is final. The server
    header, manufacturer and model go to ``check_banner``; for the other
    advisories the worst status wins. Ordered worst first.
    """
    final: dict[str, str] = {}
    found: list[Verdict] = []
    if probe.model and probe.firmware:
        for v in _verdicts(check(probe.model, probe.firmware)):
            if v.status in _FINAL:
                final[v.advisory_id] = v.status
            else:
                found.append(v)
    if probe.server_header or probe.manufacturer or probe.model:
        banner = check_banner(
            server_header=probe.server_header,
            manufacturer=probe.manufacturer,
            model_name=probe.model,
        )
        found += _verdicts(banner)
    best: dict[str, str] = {}
    for v in found:
        if v.advisory_id and rank(v.status) < rank(best.get(v.advisory_id, "")):
            best[v.advisory_id] = v.status
    ranked = sorted({**best, **final}.items(), key=lambda kv: (rank(kv[1]), kv[0]))
    return dataclasses.replace(
        probe,
        advisory_status=ranked[0][1] if ranked else "",
        advisory_ids=tuple(k for k, _ in ranked),
        advisory_statuses=tuple(s for _, s in ranked),
    )


@dataclass(frozen=True)
class Match:
    """A model (or banner) matched to an advisory, and how many sources showed it."""

    model: str
    firmware: str
    advisory_id: str
    status: str
    sources: int


@dataclass(frozen=True)
class Summary:
    """What a back-check found, as numbers and as one English sentence."""

    sources: int
    port: int
    open_on_port: int
    banners: dict[str, int]
    matches: tuple[Match, ...]
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return dataclasses.asdict(self)


NPA_KEYWORDS = ("Realtek", "Wireless Router")


def _texts(p: Probe) -> str:
    fields = (
        p.server_header,
        p.title,
        p.manufacturer,
        p.model,
        p.friendly_name,
        p.model_description,
        p.banner[:BANNER_CAP].decode("utf-8", "replace"),
    )
    return "\n".join(fields).casefold()


def _specific(p: Probe) -> tuple[bool, bool, bool]:
    return bool(p.model), bool(p.firmware), bool(p.manufacturer)


def _matches(probes: Sequence[Probe]) -> tuple[Match, ...]:
    """Per target and advisory: the worst status, named by its most specific row."""
    best: dict[tuple[str, str], Probe] = {}
    status: dict[tuple[str, str], str] = {}
    for p in probes:
        for aid, s in zip(p.advisory_ids, p.advisory_statuses, strict=True):
            key, old = (p.target, aid), best.get((p.target, aid))
            if (
                old is None
                or rank(s) < rank(status[key])
                or (rank(s) == rank(status[key]) and _specific(p) > _specific(old))
            ):
                best[key], status[key] = p, s
    counts: dict[tuple[str, str, str, str], int] = {}
    for key, p in best.items():
        label = (p.model or p.manufacturer or p.server_header, p.firmware, key[1], status[key])
        counts[label] = counts.get(label, 0) + 1
    out = [Match(m, f, a, s, n) for (m, f, a, s), n in counts.items()]
    out.sort(key=lambda m: (rank(m.status), -m.sources, m.model, m.advisory_id))
    return tuple(out)


def summarize(
    probes: Sequence[Probe], *, port: int = 52869, keywords: Sequence[str] = NPA_KEYWORDS
) -> Summary:
    """How many sources were checked, had ``port`` open, showed each banner keyword, matched.

    >>> s = summarize([Probe("198.51.100.7", 52869, server_header="Realtek/1.0")])
    >>> s.open_on_port, s.banners
    (1, {'Realtek': 1, 'Wireless Router': 0})
    >>> s.sentence[:40]
    'of 1 sources checked, 1 had 52869 open; '
    """
    targets = {p.target for p in probes}
    open_on = {
        p.target for p in probes if p.port == port and p.proto == "tcp" and p.state == "open"
    }
    banners = {k: len({p.target for p in probes if k.casefold() in _texts(p)}) for k in keywords}
    matches = _matches(probes)
    listed = ", ".join(
        f"{m.model}{' ' + m.firmware if m.firmware else ''} → {m.advisory_id} {m.status} "
        f"({m.sources})"
        for m in matches
    )
    shown = ", ".join(f"{k} ({n})" for k, n in banners.items()) or "none"
    sentence = (
        f"of {len(targets)} sources checked, {len(open_on)} had {port} open; "
        f"banners: {shown}; models matched to advisories: {listed or 'none'}"
    )
    return Summary(len(targets), port, len(open_on), banners, matches, sentence)


@dataclass(frozen=True)
class Refusal:
    """A target that was not contacted, and why."""

    target: str
    reason: str


@dataclass(frozen=True)
class RunResult:
    """What a back-check run did: its rows, the refused targets, and what was sent."""

    probes: tuple[Probe, ...]
    refused: tuple[Refusal, ...]
    targets: tuple[str, ...]
    sent: int
    """Connect attempts, requests and datagrams sent (each one log line)."""
    sent_bytes: int
    elapsed: float

    def summary(self, port: int = 52869) -> Summary:
        """:func:`teiten.backcheck.model.summarize` of the rows."""
        return summarize(self.probes, port=port)


@dataclass(frozen=True)
class ScanImport:
    """The rows read from one scan file and what was skipped."""

    path: str
    fmt: str
    probes: tuple[Probe, ...]
    records: int
    skipped: int
    skips: tuple[str, ...]
    """The first reasons for skipping (``line 7: truncated record``), at most 20."""
