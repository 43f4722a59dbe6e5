"""Finished sessions from any source (captures, sensor events, Cowrie logs) → rows.

One code path classifies, enriches and converts every session to the ``sessions``
and ``logins`` columns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from teiten.classify.evidence import EVIDENCE
from teiten.classify.session import CLASSIFIED, SessionClassifier
from teiten.classify.signatures import SignatureSet
from teiten.decode.batch import PacketBatch
from teiten.enrich.country import COUNTRIES, CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.flows.datagram import Datagrams, datagrams
from teiten.flows.reassembly import Finished, Reassembler, order_key
from teiten.schema import LOGINS, SESSIONS
from teiten.session import Session
from teiten.store.arrow import bytes16_array, table_schema

SESSIONS_SCHEMA = table_schema(SESSIONS)
LOGINS_SCHEMA = table_schema(LOGINS)


class SessionStage:
    """Finished sessions from any source → the ``sessions`` and ``logins`` rows.

    Leaves out sessions whose client is inside the sensor's own networks
    (counted in :attr:`left_out` as ``from_sensor``), classifies the rest
    (:class:`~teiten.classify.session.SessionClassifier`), gives each client its
    country, and numbers them ``s<input_id>-<n>`` in the order they come.

    A capture's batches come in two parts (:meth:`batch_tables`): its UDP
    datagrams as columns (:mod:`teiten.flows.datagram`), each distinct payload
    classified once, and the TCP sessions reassembly finished; they are merged in
    the order the reassembler alone gives them, so the rows and ids do not
    depend on the path a session took.
    """

    def __init__(
        self,
        enricher: CountryEnricher,
        input_id: int = 0,
        nets: NetworkSet | None = None,
        signatures: SignatureSet | None = None,
    ) -> None:
        self.enricher = enricher
        self.input_id = input_id
        self.nets = nets if nets is not None else NetworkSet(())
        self.classifier = SessionClassifier(signatures)
        self.count = 0
        self.left_out: Counter[str] = Counter()

    def _clients(self, sessions: list[Session]) -> tuple[Any, Any, Any]:
        """The clients' addresses as columns: (ip_version, IPv4 integer, IPv6 bytes)."""
        versions = np.fromiter((s.ip_version for s in sessions), np.uint8, len(sessions))
        joined = b"".join(s.client if s.ip_version == 4 else b"\0\0\0\0" for s in sessions)
        v4 = np.frombuffer(joined, ">u4").astype(np.uint32)
        v6 = np.zeros((len(sessions), 16), np.uint8)
        six = np.flatnonzero(versions == 6)
        if len(six):
            v6[six] = np.frombuffer(b"".join(sessions[i].client for i in six), np.uint8).reshape(
                -1, 16
            )
        return versions, v4, v6

    def tables(self, sessions: Iterable[Session]) -> tuple[pa.Table, pa.Table]:
        """The ``sessions`` and ``logins`` rows of some finished sessions (built column-wise)."""
        return self._numbered([self._part(list(sessions))])

    def batch_tables(
        self, reassembler: Reassembler, batch: PacketBatch, data: Any
    ) -> tuple[pa.Table, pa.Table]:
        """The rows of one decoded batch (``data`` is its chunk): its UDP datagrams as
        columns, its TCP payloads fed to ``reassembler`` (made with ``datagrams=False``;
        lone segments come back as columns too), in the order
        ``Reassembler(datagrams=True).feed`` would give them (a datagram at its packet, a
        flow after the packet that finished it)."""
        udp = datagrams(
            batch, data, per_flow_cap=reassembler.per_flow_cap, server_cap=reassembler.server_cap
        )
        return self.finished_tables(reassembler.feed_columns(batch, data), udp)

    def finished_tables(
        self, done: Finished, udp: Datagrams | None = None
    ) -> tuple[pa.Table, pa.Table]:
        """The rows of what reassembly finished (and of a batch's datagrams), in order."""
        parts = [] if udp is None else [self._datagram_part(udp, order_key(udp.rows, 0) - 2**32)]
        parts.append(self._datagram_part(done.lone, done.lone_keys))
        parts.append(self._part(done.sessions, done.session_keys))
        return self._numbered(parts)

    def _numbered(self, parts: list[_Part]) -> tuple[pa.Table, pa.Table]:
        """The parts' rows merged by their order keys, with ids."""
        parts = [p for p in parts if p.rows.num_rows] or parts[:1]
        keys = np.concatenate([p.order for p in parts]) if len(parts) > 1 else np.zeros(0)
        if len(parts) == 1 or bool(np.all(keys[1:] >= keys[:-1])):  # in order already
            rows = pa.concat_tables([p.rows for p in parts])
            logins = pa.concat_tables([p.logins for p in parts])
        else:
            order = np.argsort(keys, kind="stable")
            rows = pa.concat_tables([p.rows for p in parts]).take(pa.array(order))
            rank = np.empty(len(order), np.int64)
            rank[order] = np.arange(len(order))
            starts = np.cumsum([0] + [p.rows.num_rows for p in parts[:-1]])
            owner = np.concatenate([p.owner + at for p, at in zip(parts, starts, strict=True)])
            logins = pa.concat_tables([p.logins for p in parts])
            if logins.num_rows:
                logins = logins.take(pa.array(np.argsort(rank[owner], kind="stable")))
        first, self.count = self.count, self.count + rows.num_rows
        numbers = pa.array(np.arange(first + 1, self.count + 1, dtype=np.int64)).cast(pa.string())
        ids = pc.binary_join_element_wise(f"s{self.input_id}-", numbers, "")
        return rows.add_column(0, SESSIONS_SCHEMA.field(0), ids), logins

    def _part(self, done: list[Session], order: Any = None) -> _Part:
        """Rows (without ids) of sessions given as objects."""
        order = np.zeros(len(done), np.int64) if order is None else order
        versions, v4, v6 = self._clients(done)
        if self.nets and done:
            own = self.nets.contains(versions, v4, v6)
            if own.any():
                self.left_out["from_sensor"] += int(own.sum())
                keep = ~own
                done = [s for s, k in zip(done, keep.tolist(), strict=True) if k]
                versions, v4, order = versions[keep], v4[keep], order[keep]
        codes = self.enricher.codes_ip4(v4).tolist() if done else []
        is4 = (versions == 4).tolist()
        verdicts = [self.classifier(s) for s in done]
        # Bots repeat themselves: each distinct evidence value is converted to Arrow once.
        seen: dict[int, int] = {}
        distinct: list[dict[str, Any]] = []
        which: list[int] = []
        for v in verdicts:
            at = seen.setdefault(id(v.evidence), len(distinct))
            if at == len(distinct):
                distinct.append(v.evidence)
            which.append(at)
        server6 = [None if four or len(s.server) != 16 or not any(s.server) else s.server
                   for s, four in zip(done, is4, strict=True)]  # fmt: skip
        cols: dict[str, Any] = {
            "ts_first": [s.ts_first for s in done], "ts_last": [s.ts_last for s in done],
            "ip_version": versions, "proto": [s.proto for s in done], "src_ip4": v4,
            "dst_ip4": [int.from_bytes(s.server, "big") if four else 0
                        for s, four in zip(done, is4, strict=True)],
            "src_ip6": [None if four else s.client for s, four in zip(done, is4, strict=True)],
            "dst_ip6": server6, "src_port": [s.client_port for s in done],
            "dst_port": [s.server_port for s in done], "packets": [s.packets for s in done],
            "client_total": [min(s.client_total, 2**32 - 1) for s in done],
            "gap": [s.gap for s in done], "truncated": [s.truncated for s in done],
            "src_cc": [COUNTRIES[c] if four else "" for c, four in zip(codes, is4, strict=True)],
            "client_bytes": [s.client_bytes for s in done],
            "server_bytes": [s.server_bytes for s in done],
            "evidence_cut": [min(v.cut, 2**32 - 1) for v in verdicts],
        }  # fmt: skip
        for name in CLASSIFIED:
            cols[name] = [v.columns[name] for v in verdicts]
        take = pa.array(which, pa.int32())
        for name in EVIDENCE:
            kind = SESSIONS_SCHEMA.field(name).type
            cols[name] = pa.array([d[name] for d in distinct], kind).take(take)
        lrows: list[dict[str, Any]] = []
        owner: list[int] = []
        for n, (s, v, four) in enumerate(zip(done, verdicts, is4, strict=True)):
            for login in v.classification.logins:
                ip6 = None if four else s.client
                row = _login_row(login, s.ts_first, s.ip_version, s.server_port, int(v4[n]), ip6)
                lrows.append(row)
                owner.append(n)
        return _Part(
            pa.Table.from_pydict(cols, schema=_ROWS_SCHEMA),
            pa.Table.from_pylist(lrows, schema=LOGINS_SCHEMA),
            np.array(owner, np.int64),
            order,
        )

    def _datagram_part(self, d: Datagrams, order: Any) -> _Part:
        """Rows (without ids) of one-packet sessions given as columns; each distinct
        payload is classified once, its columns converted to Arrow once."""
        if self.nets and len(d):
            own = self.nets.contains(d.ip_version, d.client4, d.client6)
            if own.any():
                self.left_out["from_sensor"] += int(own.sum())
                d, order = d.select(~own), order[~own]
        n = len(d)
        used, group = np.unique(d.group, return_inverse=True)
        group = group.reshape(-1).astype(np.int32)
        verdicts = [self.classifier.verdict(*d.distinct[g]) for g in used.tolist()]
        take = pa.array(group, pa.int32())
        four = d.ip_version == 4
        codes = self.enricher.codes_ip4(d.client4) if n else np.zeros(0, np.int16)
        cc = _COUNTRY_TEXT.take(pa.array(np.where(four, codes, 0).astype(np.int32)))
        cut = np.array([min(v.cut, 2**32 - 1) for v in verdicts], np.uint32)
        cols: dict[str, Any] = {
            "ts_first": d.ts, "ts_last": d.ts, "ip_version": d.ip_version,
            "proto": d.proto, "src_ip4": d.client4, "dst_ip4": d.server4,
            "src_ip6": bytes16_array(d.client6, ~four),
            "dst_ip6": bytes16_array(d.server6, ~four & d.server6.any(axis=1)),
            "src_port": d.client_port, "dst_port": d.server_port,
            "packets": np.ones(n, np.uint32),
            "client_total": np.minimum(d.length, 2**32 - 1).astype(np.uint32),
            "gap": np.zeros(n, np.bool_), "truncated": d.truncated,
            "src_cc": cc, "client_bytes": d.client_bytes,
            "server_bytes": d.server_bytes, "evidence_cut": cut[group],
        }  # fmt: skip
        for name in CLASSIFIED:
            kind = SESSIONS_SCHEMA.field(name).type
            cols[name] = pa.array([v.columns[name] for v in verdicts], kind).take(take)
        seen: dict[int, int] = {}
        distinct: list[dict[str, Any]] = []
        for v in verdicts:
            if seen.setdefault(id(v.evidence), len(distinct)) == len(distinct):
                distinct.append(v.evidence)
        which = np.array([seen[id(v.evidence)] for v in verdicts], np.int32)[group]
        for name in EVIDENCE:
            kind = SESSIONS_SCHEMA.field(name).type
            cols[name] = pa.array([e[name] for e in distinct], kind).take(pa.array(which))
        logins, owner = _datagram_logins(d, verdicts, group)
        return _Part(pa.Table.from_pydict(cols, schema=_ROWS_SCHEMA), logins, owner, order)


def _datagram_logins(d: Datagrams, verdicts: list[Any], group: Any) -> tuple[pa.Table, Any]:
    """The ``logins`` rows of one-packet sessions (``group``: each row's verdict), in
    session order, and each one's session (row index): a verdict's logins are converted
    to Arrow once and repeated for every session that has them."""
    counts = np.array([len(v.classification.logins) for v in verdicts], np.int64)
    per_row = counts[group]
    rows = np.flatnonzero(per_row)
    if len(rows) == 0:
        return LOGINS_SCHEMA.empty_table(), np.zeros(0, np.int64)
    owner = np.repeat(rows, per_row[rows])
    starts = np.cumsum(counts) - counts  # where each verdict's logins start among all
    first_of_row = np.cumsum(per_row[rows]) - per_row[rows]
    which = np.repeat(starts[group[rows]] - first_of_row, per_row[rows]) + np.arange(len(owner))
    attempts = pa.Table.from_pylist(
        [_login_fields(x) for v in verdicts for x in v.classification.logins],
        schema=_ATTEMPT_SCHEMA,
    ).take(pa.array(which))
    sessions = {
        "ts": pa.array(d.ts[owner]),
        "ip_version": pa.array(d.ip_version[owner]),
        "src_ip4": pa.array(d.client4[owner]),
        "src_ip6": bytes16_array(d.client6[owner], d.ip_version[owner] != 4),
        "dst_port": pa.array(d.server_port[owner]),
    }
    arrays = [
        sessions[f.name].cast(f.type) if f.name in sessions else attempts.column(f.name)
        for f in LOGINS_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=LOGINS_SCHEMA), owner


_ROWS_SCHEMA = SESSIONS_SCHEMA.remove(0)
"""The ``sessions`` columns but ``id`` (numbered last, once the parts are merged)."""
_COUNTRY_TEXT = pa.array(COUNTRIES, pa.string())
"""Each country code's text (code 0: none)."""


@dataclass
class _Part:
    """Rows of some sessions before numbering: the sessions (no ``id``), their logins,
    each login's session (row index), and each session's merge key."""

    rows: pa.Table
    logins: pa.Table
    owner: Any
    order: Any


def _login_row(
    login: Any, ts: int, version: int, port: int, ip4: int, ip6: bytes | None
) -> dict[str, Any]:
    """One ``logins`` row."""
    session = {"ts": ts, "ip_version": version, "src_ip4": ip4, "src_ip6": ip6, "dst_port": port}
    return {**session, **_login_fields(login)}


def _login_fields(login: Any) -> dict[str, Any]:
    """The ``logins`` columns of one attempt (:data:`_ATTEMPT_SCHEMA`); its session's
    columns come from the caller."""
    return {
        "username": login.username, "password": login.password or "",
        "success": -1 if login.success is None else int(login.success),
        "mirai_dict": login.mirai_dict, "commands": list(login.commands),
    }  # fmt: skip


_ATTEMPT_SCHEMA = pa.schema(
    [LOGINS_SCHEMA.field(n) for n in ("username", "password", "success", "mirai_dict", "commands")]
)


def session_tables(
    sessions: Iterable[Session],
    enricher: CountryEnricher,
    input_id: int = 0,
    sensor_networks: Iterable[str] = (),
) -> tuple[pa.Table, pa.Table]:
    """The ``sessions`` and ``logins`` rows ingest stores for ``sessions`` (one batch)."""
    stage = SessionStage(enricher, input_id, NetworkSet(sensor_networks))
    return stage.tables(sessions)
