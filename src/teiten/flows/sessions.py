"""Classified sessions as table rows: reassembled sessions → ``sessions`` and ``logins`` tables.

Each session's client bytes go through :func:`teiten.classify.classifier.classify`
(parsers, payload signatures, indicators, Telnet logins) once, at ingest; the
rows keep the capped bytes, so a later signature set can classify them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from teiten.classify.classifier import Classification, classify
from teiten.classify.signatures import SignatureSet, load_signatures
from teiten.classify.telnet import Login
from teiten.enrich.country import COUNTRIES, CountryEnricher
from teiten.flows.reassembly import Session
from teiten.schema import LOGINS, SESSIONS
from teiten.store.arrow import table_schema

SESSIONS_SCHEMA = table_schema(SESSIONS)
LOGINS_SCHEMA = table_schema(LOGINS)
DETAILS_MAX = 16 << 10
"""Longest ``details`` JSON kept per session (characters)."""


def _addresses(s: Session) -> dict[str, Any]:
    client, server = s.client, s.server
    if s.ip_version == 4:
        return {
            "src_ip4": int.from_bytes(client, "big"),
            "dst_ip4": int.from_bytes(server, "big"),
            "src_ip6": None,
            "dst_ip6": None,
        }
    return {
        "src_ip4": 0,
        "dst_ip4": 0,
        "src_ip6": client,
        "dst_ip6": server,
    }


def _first_request(c: Classification) -> tuple[str, str, str]:
    if not c.requests:
        return "", "", ""
    r = c.requests[0]
    action = r.soap.action if r.soap is not None and r.soap.action else ""
    return r.http.method, r.http.path, action


def _details(c: Classification) -> str:
    text = json.dumps(c.to_dict(), ensure_ascii=True, sort_keys=True)
    if len(text) > DETAILS_MAX:
        return json.dumps({"truncated": True, "app": c.app, "signatures": list(c.signatures)})
    return text


CACHE_ENTRIES = 50_000
CACHE_MAX_BYTES = 8 << 10


@dataclass(frozen=True)
class _Verdict:
    fields: dict[str, Any]
    logins: tuple[Login, ...]


class SessionTables:
    """Classifies finished sessions and builds the Arrow rows of both tables."""

    def __init__(
        self, enricher: CountryEnricher, input_id: int = 0, signatures: SignatureSet | None = None
    ) -> None:
        self.enricher = enricher
        self.input_id = input_id
        self.signatures = signatures if signatures is not None else load_signatures()
        self.count = 0
        self._cache: dict[tuple[bytes, int, bytes], _Verdict] = {}

    def _countries(self, sessions: list[Session]) -> list[str]:
        v4 = np.array(
            [int.from_bytes(s.client, "big") if s.ip_version == 4 else 0 for s in sessions],
            np.uint32,
        )
        codes = self.enricher.codes_ip4(v4)
        return [
            COUNTRIES[int(c)] if s.ip_version == 4 else ""
            for s, c in zip(sessions, codes, strict=True)
        ]

    def _classified(self, s: Session) -> _Verdict:
        """Classification of a session's bytes, cached: darknet payloads repeat a lot."""
        key = (s.client_bytes, s.server_port, s.server_bytes)
        small = len(s.client_bytes) + len(s.server_bytes) <= CACHE_MAX_BYTES
        hit = self._cache.get(key) if small else None
        if hit is not None:
            return hit
        c = classify(
            s.client_bytes,
            dst_port=s.server_port,
            server_bytes=s.server_bytes or None,
            signatures=self.signatures,
        )
        method, path, action = _first_request(c)
        verdict = _Verdict(
            {"app": c.app, "kind": c.kind or "", "signatures": list(c.signatures),
             "cves": list(c.cves), "jvn": list(c.jvn),
             "indicator_types": [i.type for i in c.indicators],
             "indicators": [i.value for i in c.indicators], "method": method, "path": path,
             "soap_action": action, "details": _details(c)},
            c.logins,
        )  # fmt: skip
        if small:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def rows(self, sessions: Iterable[Session]) -> tuple[pa.Table, pa.Table]:
        """The ``sessions`` and ``logins`` rows of some finished sessions."""
        done = list(sessions)
        cols: dict[str, list[Any]] = {name: [] for name in SESSIONS_SCHEMA.names}
        lrows: list[dict[str, Any]] = []
        for n, (s, cc) in enumerate(zip(done, self._countries(done), strict=True)):
            v = self._classified(s)
            row = {
                "id": f"s{self.input_id}-{self.count + n + 1}",
                "ts_first": s.ts_first, "ts_last": s.ts_last, "ip_version": s.ip_version,
                "proto": s.proto, **_addresses(s), "src_port": s.client_port,
                "dst_port": s.server_port, "packets": s.packets,
                "client_total": min(s.client_total, 2**32 - 1), "gap": s.gap,
                "truncated": s.truncated, "src_cc": cc, "client_bytes": s.client_bytes,
                "server_bytes": s.server_bytes, **v.fields,
            }  # fmt: skip
            for name, values in cols.items():
                values.append(row[name])
            for login in v.logins:
                lrows.append({
                    "ts": s.ts_first, "ip_version": s.ip_version, "src_ip4": row["src_ip4"],
                    "src_ip6": row["src_ip6"], "dst_port": s.server_port,
                    "username": login.username, "password": login.password or "",
                    "success": -1 if login.success is None else int(login.success),
                    "mirai_dict": login.mirai_dict, "commands": list(login.commands),
                })  # fmt: skip
        self.count += len(done)
        return (
            pa.Table.from_pydict(cols, schema=SESSIONS_SCHEMA),
            pa.Table.from_pylist(lrows, schema=LOGINS_SCHEMA),
        )


def fill_session_countries(table: pa.Table, enricher: CountryEnricher) -> pa.Table:
    """Set ``src_cc`` of sessions rows made elsewhere (Cowrie logs) from their client address."""
    ip4 = table.column("src_ip4").to_numpy()
    codes = enricher.codes_ip4(ip4.astype(np.uint32))
    cc = [COUNTRIES[int(c)] if a else "" for a, c in zip(ip4.tolist(), codes, strict=True)]
    i = table.schema.get_field_index("src_cc")
    return table.set_column(i, table.schema.field(i), pa.array(cc, pa.string()))
