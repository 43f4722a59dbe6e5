"""Classified sessions as table rows: reassembled sessions → ``sessions`` and ``logins`` tables.

Each session's client bytes go through :func:`teiten.classify.classifier.classify`
(parsers, payload signatures, indicators, Telnet logins) once, at ingest; the
rows keep the capped bytes, so a later signature set can classify them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from teiten.classify.classifier import Classification, classify
from teiten.classify.signatures import SignatureSet, load_signatures
from teiten.enrich.country import COUNTRIES, CountryEnricher
from teiten.flows.reassembly import Session
from teiten.schema import LOGINS, SESSIONS
from teiten.store.arrow import table_schema

SESSIONS_SCHEMA = table_schema(SESSIONS)
LOGINS_SCHEMA = table_schema(LOGINS)
DETAILS_MAX = 16 << 10
"""Longest ``details`` JSON kept per session (characters)."""


def _addresses(s: Session, prefix: str) -> dict[str, Any]:
    client, server = s.client, s.server
    if s.ip_version == 4:
        return {
            f"{prefix}src_ip4": int.from_bytes(client, "big"),
            f"{prefix}dst_ip4": int.from_bytes(server, "big"),
            f"{prefix}src_ip6": None,
            f"{prefix}dst_ip6": None,
        }
    return {
        f"{prefix}src_ip4": 0,
        f"{prefix}dst_ip4": 0,
        f"{prefix}src_ip6": client,
        f"{prefix}dst_ip6": server,
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


class SessionTables:
    """Classifies finished sessions and builds the Arrow rows of both tables."""

    def __init__(self, enricher: CountryEnricher, signatures: SignatureSet | None = None) -> None:
        self.enricher = enricher
        self.signatures = signatures if signatures is not None else load_signatures()
        self.count = 0

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

    def rows(self, sessions: Iterable[Session]) -> tuple[pa.Table, pa.Table]:
        """The ``sessions`` and ``logins`` rows of some finished sessions."""
        srows: list[dict[str, Any]] = []
        lrows: list[dict[str, Any]] = []
        done = list(sessions)
        for s, cc in zip(done, self._countries(done), strict=True):
            c = classify(
                s.client_bytes,
                dst_port=s.server_port,
                server_bytes=s.server_bytes or None,
                signatures=self.signatures,
            )
            method, path, action = _first_request(c)
            srows.append({
                "ts_first": s.ts_first, "ts_last": s.ts_last, "ip_version": s.ip_version,
                "proto": s.proto, **_addresses(s, ""), "src_port": s.client_port,
                "dst_port": s.server_port, "packets": s.packets,
                "client_total": min(s.client_total, 2**32 - 1), "gap": s.gap,
                "truncated": s.truncated, "src_cc": cc, "app": c.app,
                "kind": c.kind or "", "signatures": list(c.signatures), "cves": list(c.cves),
                "jvn": list(c.jvn), "indicator_types": [i.type for i in c.indicators],
                "indicators": [i.value for i in c.indicators], "method": method, "path": path,
                "soap_action": action, "client_bytes": s.client_bytes,
                "server_bytes": s.server_bytes, "details": _details(c),
            })  # fmt: skip
            for login in c.logins:
                addr = _addresses(s, "")
                lrows.append({
                    "ts": s.ts_first, "ip_version": s.ip_version, "src_ip4": addr["src_ip4"],
                    "src_ip6": addr["src_ip6"], "dst_port": s.server_port,
                    "username": login.username, "password": login.password or "",
                    "success": -1 if login.success is None else int(login.success),
                    "mirai_dict": login.mirai_dict, "commands": list(login.commands),
                })  # fmt: skip
        self.count += len(srows)
        return (
            pa.Table.from_pylist(srows, schema=SESSIONS_SCHEMA),
            pa.Table.from_pylist(lrows, schema=LOGINS_SCHEMA),
        )
