"""Ingest: the one place that knows the order of the stages.

read (capture) → decode → mark direction → fingerprint → enrich → store packets;
                          └→ reassemble payloads ─┐
read Cowrie log / sensor events → sessions ───────┴→ classify → enrich → store sessions, logins.

Sessions from every source have one shape (:class:`teiten.session.Session`);
:class:`SessionStage` classifies (``classify/``), enriches (country) and turns
them into rows with the same code, and every input is committed by the same
code path.

Each input file becomes one catalog entry; its packets become visible only
when all of them are written. With ``threads >= 2`` decoding (numba, GIL
released) overlaps with Parquet writing (Arrow, GIL released) in a second
thread.

One input goes :func:`admit` (a capture? a duplicate?) → :func:`register`
(catalog row, transaction) → :func:`stage` (read and write its files into its
staging folder; no catalog) → :func:`commit` (files listed with the ``done``
row at once). :func:`ingest_file` does the four in a row; a distributed ingest
runs :func:`stage_detached` on Spark executors and the rest on the driver. The
run itself (settings, lock, enrichers, engine) is the use case
:func:`teiten.app.ingest.ingest`.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from teiten.capture import expand_paths, open_source
from teiten.capture.cowrie import CowrieResult, read_cowrie, sniff_cowrie
from teiten.capture.events import EventsResult, read_events, sniff_events
from teiten.capture.source import RecordChunk, Source
from teiten.classify.evidence import EVIDENCE
from teiten.classify.session import CLASSIFIED, SessionClassifier
from teiten.classify.signatures import SignatureSet
from teiten.decode.batch import PacketBatch
from teiten.decode.decoder import decode
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import COUNTRIES, CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import EnrichmentError, FormatError, InputError, TeitenError
from teiten.fingerprint import registry
from teiten.flows.datagram import Datagrams, datagrams
from teiten.flows.reassembly import Finished, Reassembler, order_key
from teiten.schema import DECODE_ERRORS, LOGINS, SESSIONS
from teiten.session import Session
from teiten.store.arrow import table_schema
from teiten.store.lake import DayBudget, Lake, PacketWriter, Staged, TableWriter

SESSIONS_SCHEMA = table_schema(SESSIONS)
LOGINS_SCHEMA = table_schema(LOGINS)

Progress = Callable[[str, int, int], None]
"""Called as ``progress(input name, bytes read, bytes total)``."""


@dataclass(frozen=True)
class IngestOptions:
    """The values ingest needs, as plain data (the library does not read settings).

    The application layer builds them from the settings (:meth:`of`); the
    meaning and default of each is the setting of the same name (``teiten settings``).
    """

    data_dir: Path
    sensor: str
    sensor_networks: tuple[str, ...]
    session_bytes: int
    chunk_mb: int
    max_days_per_input: int
    row_group_rows: int
    max_expansion: int
    threads: int
    lock_wait: float
    country_source: str
    asn_source: str

    @classmethod
    def of(cls, values: Any) -> IngestOptions:
        """The options from any object with these attributes (``Settings``, or options)."""
        if isinstance(values, cls):
            return values
        got = {f.name: getattr(values, f.name) for f in fields(cls)}
        return cls(
            Path(got["data_dir"]), str(got["sensor"]),
            tuple(str(n) for n in got["sensor_networks"]),
            int(got["session_bytes"]), int(got["chunk_mb"]), int(got["max_days_per_input"]),
            int(got["row_group_rows"]), int(got["max_expansion"]), int(got["threads"]),
            float(got["lock_wait"]), str(got["country_source"]), str(got["asn_source"]),
        )  # fmt: skip


@dataclass
class InputResult:
    """What happened to one input."""

    path: str
    status: str
    """``ingested``, ``stopped`` (a limit stopped it; what was read before is
    committed), ``duplicate`` (content already in the store), ``not_capture``
    (a file found in a directory that is not a capture) or ``failed``."""
    input_id: int | None = None
    records: int = 0
    packets: int = 0
    outbound: int = 0
    sessions: int = 0
    quarantined: int = 0
    """Packets stored in the quarantine file (implausible time, or days over the budget)."""
    malformed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    """Things the operator should know that did not stop the input (no records…)."""


@dataclass
class IngestResult:
    """What an ingest run did, input by input."""

    inputs: list[InputResult] = field(default_factory=list)
    seconds: float = 0.0
    enrichment: str = ""
    warnings: list[str] = field(default_factory=list)
    """Run-wide warnings (an empty folder, no sensor networks given)."""
    error: str = ""
    """Why the run stopped before its last input (disk full, a damaged enrichment
    source); the inputs committed before it stay in the store."""

    @property
    def packets(self) -> int:
        return sum(r.packets for r in self.inputs)

    @property
    def malformed(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.inputs:
            total.update(r.malformed)
        return total

    @property
    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.inputs:
            total.update(r.skipped)
        return total

    @property
    def failed(self) -> list[InputResult]:
        return [r for r in self.inputs if r.status == "failed"]

    @property
    def stopped(self) -> list[InputResult]:
        return [r for r in self.inputs if r.status == "stopped"]

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.inputs)

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + sum(len(r.warnings) for r in self.inputs)


def enrichment_text(country: CountryEnricher, asn: AsnEnricher | None) -> str:
    """What enriched the sources, as recorded in the catalog (``iptocc 3.3.170``)."""
    text = country.description
    return text if asn is None else f"{text}; asn {asn.description}"


QUICK_BYTES = 1 << 20


def quick_key(path: Path, size: int) -> str:
    """SHA-256 of the size and the first and last MiB: equal for equal files, cheap."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(QUICK_BYTES))
        if size > QUICK_BYTES:
            f.seek(max(QUICK_BYTES, size - QUICK_BYTES))
            h.update(f.read(QUICK_BYTES))
    return h.hexdigest()


class _Hasher(threading.Thread):
    """Computes a file's SHA-256 beside the ingest (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="teiten-hash", daemon=True)
        self.path, self.digest, self.error = path, "", ""

    def run(self) -> None:
        try:
            self.digest = content_hash(self.path)
        except OSError as e:
            self.error = e.strerror or str(e)

    def result(self) -> str:
        self.join()
        if self.error:
            raise InputError(f"cannot read {self.path}: {self.error}")
        return self.digest


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the catalog's identity of an input)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


JUNK_MIN_RECORDS = 100_000
"""Records an input must have given before the junk rule may stop it."""
JUNK_SHARE = 0.99
"""Share of malformed records (reader skips plus the decode errors in
:data:`JUNK_ERRORS`) above which an input is stopped as junk."""
JUNK_ERRORS = np.array(
    [name not in ("", "unsupported_link", "fragment") for name in DECODE_ERRORS], bool
)
"""Decode errors that count as junk: damage, not merely traffic teiten does not decode
(unsupported link types, non-first fragments)."""
EXPANSION_FLOOR = 1 << 20
"""Content bytes below which the expansion rule never stops an input."""
RECORD_HEADER_BYTES = 16
"""A pcap record header; content bytes are counted as captured bytes plus this per record
(a lower bound of the decompressed size for pcapng too)."""


class _Guard:
    """The limits that stop an input early: expansion ratio and junk share.

    Checked after each chunk in the decoding thread; :attr:`reason` is the
    one-line message once a limit is passed.
    """

    def __init__(self, source: Source, max_expansion: int) -> None:
        self.source = source
        self.max_expansion = max_expansion
        self.content = 0
        self.junk = 0
        self.reason = ""

    def check(self, chunk: RecordChunk, errors: Any) -> bool:
        """Count a decoded chunk; True when the input must stop."""
        stats = self.source.stats
        self.content += int(chunk.caplen.sum(dtype=np.int64)) + RECORD_HEADER_BYTES * len(chunk)
        self.junk += int(errors[JUNK_ERRORS].sum())
        skipped = sum(stats.skipped.values())
        seen = stats.records + skipped
        junk = self.junk + skipped
        packed = max(stats.bytes, 1)
        if self.content > EXPANSION_FLOOR and self.content > self.max_expansion * packed:
            self.reason = (
                f"its content grew past {self.max_expansion:,}× the file's size "
                f"({self.content:,} bytes from {packed:,}; setting max_expansion)"
            )
        elif seen >= JUNK_MIN_RECORDS and junk > JUNK_SHARE * seen:
            self.reason = (
                f"{junk:,} of the first {seen:,} records are malformed (more than {JUNK_SHARE:.0%})"
            )
        return bool(self.reason)


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
        ids = pa.array([f"s{self.input_id}-{n}" for n in range(first + 1, self.count + 1)],
                       pa.string())  # fmt: skip
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
        cc = _COUNTRY_TEXT[codes]
        cc[~four] = ""
        cut = np.array([min(v.cut, 2**32 - 1) for v in verdicts], np.uint32)
        cols: dict[str, Any] = {
            "ts_first": d.ts, "ts_last": d.ts, "ip_version": d.ip_version,
            "proto": d.proto, "src_ip4": d.client4, "dst_ip4": d.server4,
            "src_ip6": _bytes16(d.client6, ~four),
            "dst_ip6": _bytes16(d.server6, ~four & d.server6.any(axis=1)),
            "src_port": d.client_port, "dst_port": d.server_port,
            "packets": np.ones(n, np.uint32),
            "client_total": np.minimum(d.length, 2**32 - 1).astype(np.uint32),
            "gap": np.zeros(n, np.bool_), "truncated": d.truncated,
            "src_cc": pa.array(cc, pa.string()), "client_bytes": d.client_bytes,
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
        lrows: list[dict[str, Any]] = []
        owner: list[int] = []
        for k in (k for k, v in enumerate(verdicts) if v.classification.logins):
            for i in np.flatnonzero(group == k).tolist():
                ip6 = None if four[i] else d.client6[i].tobytes()
                for login in verdicts[k].classification.logins:
                    row = _login_row(
                        login, int(d.ts[i]), int(d.ip_version[i]), int(d.server_port[i]),
                        int(d.client4[i]), ip6,
                    )  # fmt: skip
                    lrows.append(row)
                    owner.append(i)
        if owner:  # in session order, as :meth:`_part` gives them
            at = np.argsort(np.array(owner), kind="stable")
            lrows, owner = [lrows[j] for j in at], [owner[j] for j in at]
        return _Part(
            pa.Table.from_pydict(cols, schema=_ROWS_SCHEMA),
            pa.Table.from_pylist(lrows, schema=LOGINS_SCHEMA),
            np.array(owner, np.int64),
            order,
        )


_ROWS_SCHEMA = SESSIONS_SCHEMA.remove(0)
"""The ``sessions`` columns but ``id`` (numbered last, once the parts are merged)."""
_COUNTRY_TEXT = np.array(COUNTRIES, object)


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
    return {
        "ts": ts, "ip_version": version, "src_ip4": ip4, "src_ip6": ip6, "dst_port": port,
        "username": login.username, "password": login.password or "",
        "success": -1 if login.success is None else int(login.success),
        "mirai_dict": login.mirai_dict, "commands": list(login.commands),
    }  # fmt: skip


def _bytes16(values: Any, valid: Any) -> pa.Array:
    """A ``binary(16)`` column of ``(n, 16)`` bytes, null where ``valid`` is false."""
    n = values.shape[0]
    if not valid.any():
        return pa.nulls(n, pa.binary(16))
    bits = pa.py_buffer(np.packbits(valid, bitorder="little"))
    flat = pa.py_buffer(np.ascontiguousarray(values, np.uint8).reshape(-1))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [bits, flat])


def session_tables(
    sessions: Iterable[Session],
    enricher: CountryEnricher,
    input_id: int = 0,
    sensor_networks: Iterable[str] = (),
) -> tuple[pa.Table, pa.Table]:
    """The ``sessions`` and ``logins`` rows ingest stores for ``sessions`` (one batch)."""
    stage = SessionStage(enricher, input_id, NetworkSet(sensor_networks))
    return stage.tables(sessions)


class _Stages:
    """The per-batch stages after decoding, with their state (caches, labels)."""

    def __init__(
        self,
        settings: IngestOptions,
        input_id: int,
        enricher: CountryEnricher,
        asn: AsnEnricher | None = None,
    ) -> None:
        self.nets = NetworkSet(settings.sensor_networks)
        self.enricher = enricher
        self.asn = asn
        self.reassembler = Reassembler(per_flow_cap=int(settings.session_bytes), datagrams=False)
        self.sessions = SessionStage(enricher, input_id, self.nets)

    def apply(self, batch: PacketBatch) -> dict[str, Any]:
        c = batch.columns  # sensor and input_id are not columns on disk: the path holds them
        c["is_outbound"] = self.nets.contains(c["ip_version"], c["src_ip4"], c["src_ip6"])
        c["fp"] = registry.apply(c)
        self.enricher.fill(c)
        if self.asn is not None:
            self.asn.fill(c)
        return c


@dataclass
class _Prepared:
    """A decoded batch's stored tables, with what the summary counts."""

    parts: list[tuple[int, Any]]
    packets: int
    outbound: int
    malformed: Any
    sessions: pa.Table | None = None
    logins: pa.Table | None = None


def _batches(
    source: Source, stages: _Stages, writer: PacketWriter, guard: _Guard
) -> Iterator[_Prepared]:
    """Decode, mark, fingerprint, enrich and reassemble; the chunk buffer is not kept.

    Stops reading (and flushes the reassembler) once ``guard`` says so.
    """
    for chunk in source.chunks():
        if len(chunk):
            batch = decode(chunk)
            c = stages.apply(batch)
            sessions, logins = stages.sessions.batch_tables(stages.reassembler, batch, chunk.data)
            errors = np.bincount(c["decode_error"], minlength=len(DECODE_ERRORS))
            yield _Prepared(
                writer.prepare(c),
                len(c["ts"]),
                int(np.count_nonzero(c["is_outbound"])),
                errors,
                sessions,
                logins,
            )
            if guard.check(chunk, errors):
                break
    sessions, logins = stages.sessions.finished_tables(stages.reassembler.flush_columns())
    yield _Prepared([], 0, 0, np.zeros(len(DECODE_ERRORS), np.int64), sessions, logins)


def _threaded(gen: Iterator[_Prepared], depth: int = 4) -> Iterator[_Prepared]:
    """Run a generator in a worker thread, ``depth`` batches ahead of the consumer.

    The depth lets the worker go on decoding while the consumer writes a whole
    row group (several batches) at once.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer thread
            q.put(e)

    t = threading.Thread(target=work, name="teiten-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def _log_batches(sessions: list[Session], stage: SessionStage) -> Iterator[_Prepared]:
    """The stored tables of a log's sessions (Cowrie, sensor events), a batch at a time."""
    empty = np.zeros(len(DECODE_ERRORS), np.int64)
    for at in range(0, max(len(sessions), 1), LOG_BATCH):
        tables = stage.tables(sessions[at : at + LOG_BATCH])
        yield _Prepared([], 0, 0, empty, *tables)


LOG_BATCH = 4096
"""Sessions of a log classified and written at a time."""


def _read_log(path: Path, events: bool) -> CowrieResult | EventsResult:
    return read_events(path) if events else read_cowrie(path)


@dataclass(frozen=True)
class InputPlan:
    """An input admitted for ingest: registered in the catalog, its files still to write.

    Plain, picklable data: the driver of a distributed ingest sends it to the
    executor that writes the input's files (:func:`stage_detached`).
    """

    path: str
    input_id: int
    size: int
    quick: str
    sha256: str = ""
    """The content hash when already known (its quick key matched); '' = hash while reading."""


@dataclass
class StagedInput:
    """What writing one input left in its staging folder: the small manifest a task returns.

    ``files`` are the staged files per catalog table; ``error`` (with
    ``error_kind``: ``format``, ``enrichment``, ``store``, ``input`` or
    ``internal``) says why nothing was staged.
    """

    result: InputResult
    files: list[Staged] = field(default_factory=list)
    sha256: str = ""
    enrichment: str = ""
    stop: str = ""
    """Why a limit stopped the input ('' when it was read to the end)."""
    error: str = ""
    error_kind: str = ""
    errno: int | None = None


def admit(lake: Lake, path: Path, settings: IngestOptions) -> InputPlan | InputResult:
    """Decide whether ``path`` is to be ingested; no catalog row is written.

    Returns the plan (``input_id`` 0 until :func:`register`), or the result of
    a duplicate (content already committed). Raises
    :class:`~teiten.errors.FormatError` for a file that is not a capture or a
    log, :class:`~teiten.errors.InputError` for one that cannot be read.
    """
    if not (sniff_events(path) or sniff_cowrie(path)):
        open_source(path, chunk_bytes=int(settings.chunk_mb) << 20)  # raises if not a capture
    try:
        size = path.stat().st_size
        quick = quick_key(path, size)
        # Only a file whose quick key matches a committed one can be a duplicate;
        # any other file is hashed in full beside its ingest.
        digest = content_hash(path) if lake.catalog.quick_matches(quick) else ""
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    done = lake.catalog.find_done(digest) if digest else None
    if done is not None:
        return InputResult(
            str(path),
            "duplicate",
            done.id,
            message=f"already ingested as input {done.id} ({done.path})",
        )
    return InputPlan(str(path), 0, size, quick, digest)


def register(lake: Lake, plan: InputPlan, settings: IngestOptions) -> InputPlan:
    """Register an admitted input in the catalog (``ingesting``) and open its transaction."""
    tx = lake.begin(plan.path, plan.size, plan.sha256, str(settings.sensor), plan.quick)
    return replace(plan, input_id=int(tx.input_id or 0))


def stage(
    lake: Lake,
    plan: InputPlan,
    settings: IngestOptions,
    enricher: CountryEnricher,
    progress: Progress | None = None,
    asn: AsnEnricher | None = None,
) -> StagedInput:
    """Read, decode and write one registered input into its staging folder.

    Touches the lake only through the input's transaction (its staging
    folder), never the catalog, so it runs as well on a Spark executor
    (:func:`stage_detached`) as in the process holding the lock. On an
    exception the staged files are removed and the exception passes on.
    """
    start = time.perf_counter()
    path = Path(plan.path)
    events = sniff_events(path)
    log = events or sniff_cowrie(path)
    source = None if log else open_source(path, chunk_bytes=int(settings.chunk_mb) << 20)
    hasher = None
    if not plan.sha256:
        hasher = _Hasher(path)
        hasher.start()
    input_id = plan.input_id
    tx = lake.transaction(input_id)
    result = InputResult(plan.path, "ingested", input_id)
    writer: PacketWriter | None = None
    try:
        stages = _Stages(settings, input_id, enricher, asn)
        sensor = str(settings.sensor)
        read = _read_log(path, events) if source is None else None
        if read is not None:
            sensor = read.sensor or sensor  # the log's own sensor field names the sensor
        budget = DayBudget(int(settings.max_days_per_input))
        writer = PacketWriter(
            lake, input_id, sensor, row_group_rows=int(settings.row_group_rows), budget=budget
        )
        side = {
            "sessions": TableWriter(
                lake, input_id, sensor, "sessions", SESSIONS_SCHEMA, "ts_first", budget=budget
            ),
            "logins": TableWriter(
                lake, input_id, sensor, "logins", LOGINS_SCHEMA, "ts", budget=budget
            ),
        }
        guard = _Guard(source, int(settings.max_expansion)) if source is not None else None
        if read is not None:
            batches = _log_batches(read.sessions, stages.sessions)
        else:
            assert source is not None and guard is not None
            if asn is not None:
                writer.labels["src_as_org"] = asn.orgs
            batches = _batches(source, stages, writer, guard)
            if int(settings.threads) >= 2:
                batches = _threaded(batches)
        malformed = np.zeros(len(DECODE_ERRORS), np.int64)
        for b in batches:
            malformed += b.malformed
            result.outbound += b.outbound
            result.packets += b.packets
            writer.write_parts(b.parts)
            for name, table in (("sessions", b.sessions), ("logins", b.logins)):
                if table is not None and table.num_rows:
                    side[name].write(table)
            if progress and source is not None:
                progress(plan.path, source.stats.bytes, plan.size)
        writer.close()  # the writers add their files to the input's transaction
        for w in side.values():
            w.close()
        stats = source.stats if source is not None else read.stats if read is not None else None
        assert stats is not None
        result.sessions = stages.sessions.count
        result.records = stats.records
        result.skipped = dict(stats.skipped + stages.sessions.left_out)
        result.malformed = {DECODE_ERRORS[i]: int(v) for i, v in enumerate(malformed) if i and v}
        result.quarantined = writer.quarantined
        reason = guard.reason if guard is not None else ""
        if reason:
            result.status, result.message = "stopped", reason
        elif source is not None and not result.records and not result.skipped:
            result.warnings.append("no records (an empty capture)")
        unsupported = result.malformed.get("unsupported_link", 0)
        if unsupported * 2 > result.records:  # most packets: say so (docs/decoding.md)
            result.warnings.append(
                f"{unsupported:,} of {result.records:,} packets are of a link type teiten does"
                " not decode (stored as unsupported_link; see docs/decoding.md)"
            )
        sha = hasher.result() if hasher is not None else plan.sha256
    except BaseException:
        if writer is not None:
            writer.abort()
        tx.discard()
        raise
    result.seconds = time.perf_counter() - start
    return StagedInput(
        result,
        list(tx.staged),
        sha,
        enrichment_text(enricher, asn if source is not None else None),
        reason,
    )


def commit(lake: Lake, staged: StagedInput) -> InputResult:
    """List a staged input's files with its ``done`` row, in one catalog transaction.

    The files may have been written by another process (a Spark executor):
    the manifest's files join the input's transaction before it commits. On
    an exception the input is marked failed and its staged files removed.
    """
    result = staged.result
    assert result.input_id is not None
    tx = lake.transaction(result.input_id)
    try:
        known = set(tx.staged)
        for f in staged.files:
            if f not in known:
                tx.add(f.table, f.path, f.rows)
        tx.commit(
            records=result.records,
            packets=result.packets,
            malformed=result.malformed,
            skipped=result.skipped,
            enrichment=staged.enrichment,
            sha256=staged.sha256,
            message=f"stopped: {staged.stop}" if staged.stop else "",
        )
    except BaseException as e:
        tx.fail(e)
        raise
    return result


def ingest_file(
    lake: Lake,
    path: Path,
    settings: IngestOptions,
    enricher: CountryEnricher,
    progress: Progress | None = None,
    asn: AsnEnricher | None = None,
) -> InputResult:
    """Ingest one capture file, Cowrie JSON log or sensor event file into a locked lake.

    :func:`admit`, :func:`register`, :func:`stage` and :func:`commit` in a row;
    any exception after the input is registered marks it failed (staged files removed).
    """
    plan = admit(lake, path, settings)
    if isinstance(plan, InputResult):
        return plan
    plan = register(lake, plan, settings)
    try:
        staged = stage(lake, plan, settings, enricher, progress, asn)
    except BaseException as e:
        lake.transaction(plan.input_id).fail(e)
        raise
    return commit(lake, staged)


class _StagingLake(Lake):
    """The lake as a Spark executor sees it: its root, to write an input's staging folder.

    No catalog is opened (only the driver lists files); any use of one fails.
    """

    def __init__(self, root: Path) -> None:  # deliberately not Lake.__init__: no catalog
        self.root = Path(root)
        self._lock = None
        self._transactions = {}

    def close(self) -> None:
        self._transactions.clear()


@functools.lru_cache(maxsize=4)
def _enrichers(country: str, asn: str) -> tuple[CountryEnricher, AsnEnricher | None]:
    """The enrichers of an executor's Python worker (opened once, kept for its next tasks)."""
    source = open_asn_source(asn)
    return CountryEnricher(open_country_source(country)), (
        AsnEnricher(source) if source is not None else None
    )


ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (FormatError, "format"),
    (EnrichmentError, "enrichment"),
    (TeitenError, "input"),
    (OSError, "store"),
)
"""How an executor names an error for the driver (first match; anything else ``internal``)."""


def error_kind(e: BaseException) -> str:
    """The name :func:`stage_detached` reports an error under."""
    return next((kind for t, kind in ERROR_KINDS if isinstance(e, t)), "internal")


def stage_detached(root: str, settings: IngestOptions, plan: InputPlan) -> StagedInput:
    """:func:`stage` as a Spark task: the lake's root is a path the executor shares with the
    driver; the enrichers come from the options' sources; the catalog is never opened.

    Never raises (a raised task would fail every input of the job): an error
    is returned in the manifest, its staged files removed.
    """
    lake = _StagingLake(Path(root))
    lake.discard(plan.input_id)  # a retried task starts from an empty staging folder
    try:
        enricher, asn = _enrichers(str(settings.country_source), str(settings.asn_source))
        return stage(lake, plan, settings, enricher, None, asn)
    except Exception as e:  # reported by the driver as that input's failure
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        kind = error_kind(e)
        if kind == "internal":
            text = f"{type(e).__name__}: {text}" if text else type(e).__name__
        return StagedInput(
            InputResult(plan.path, "failed", plan.input_id, message=text),
            error=text,
            error_kind=kind,
            errno=e.errno if isinstance(e, OSError) else None,
        )
    finally:
        lake.close()


def expand(paths: Sequence[str | Path], warnings: list[str]) -> list[Path]:
    """The files the arguments name; an empty folder or a pattern matching nothing is a
    warning, a missing path an error."""
    files: dict[Path, None] = {}
    for arg in paths:
        text = str(arg)
        try:
            found = expand_paths([arg])
        except InputError:
            if Path(text).exists() or not set("*?[") & set(text):
                raise
            found = []
        if not found:
            what = "folder" if Path(text).is_dir() else "pattern"
            warnings.append(f"{text}: no files in this {what}")
        for f in found:
            files.setdefault(f, None)
    return list(files)


def store_error(e: OSError | sqlite3.Error, root: Path) -> str:
    """One line for a failure to write the data folder (the run stops there)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return store_message(text, e.errno if isinstance(e, OSError) else None, root)


def store_message(text: str, code: int | None, root: Path) -> str:
    """:func:`store_error` of an error's first line and errno (as an executor reports it)."""
    full = "No space left" in text or "disk is full" in text
    if full or code in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full while writing {root}; the run stopped, inputs committed before"
            " stay in the store (free space and run it again)"
        )
    return f"cannot write to {root}: {text}; the run stopped (inputs committed before are kept)"
