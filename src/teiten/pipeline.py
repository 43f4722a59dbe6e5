"""Ingest: the one place that knows the order of the stages.

read (capture) → decode → mark direction → fingerprint → enrich → store packets;
                          └→ reassemble payloads → classify → store sessions, logins.

Each input file becomes one catalog entry; its packets become visible only
when all of them are written. With ``threads >= 2`` decoding (numba, GIL
released) overlaps with Parquet writing (Arrow, GIL released) in a second
thread.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from teiten.capture import expand_paths, open_source
from teiten.capture.cowrie import read_cowrie, sniff_cowrie
from teiten.capture.source import Source
from teiten.config import Settings
from teiten.decode.batch import PacketBatch
from teiten.decode.decoder import decode
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher
from teiten.enrich.network import NetworkSet
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import FormatError, InputError, TeitenError
from teiten.fingerprint import registry
from teiten.flows.reassembly import Reassembler
from teiten.flows.sessions import (
    LOGINS_SCHEMA,
    SESSIONS_SCHEMA,
    SessionTables,
    fill_session_countries,
)
from teiten.schema import DECODE_ERRORS
from teiten.store.lake import Lake, PacketWriter, TableWriter

Progress = Callable[[str, int, int], None]
"""Called as ``progress(input name, bytes read, bytes total)``."""


@dataclass
class InputResult:
    """What happened to one input."""

    path: str
    status: str
    """``ingested``, ``duplicate`` (content already in the store), ``not_capture``
    (a file found in a directory that is not a capture) or ``failed``."""
    input_id: int | None = None
    records: int = 0
    packets: int = 0
    outbound: int = 0
    sessions: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""


@dataclass
class IngestResult:
    """What an ingest run did, input by input."""

    inputs: list[InputResult] = field(default_factory=list)
    seconds: float = 0.0
    enrichment: str = ""

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


class _Stages:
    """The per-batch stages after decoding, with their state (caches, labels)."""

    def __init__(
        self,
        settings: Settings,
        input_id: int,
        enricher: CountryEnricher,
        asn: AsnEnricher | None = None,
    ) -> None:
        self.nets = NetworkSet(settings.sensor_networks)
        self.enricher = enricher
        self.asn = asn
        self.reassembler = Reassembler(per_flow_cap=int(settings.session_bytes))
        self.sessions = SessionTables(enricher, input_id)

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


def _batches(source: Source, stages: _Stages, writer: PacketWriter) -> Iterator[_Prepared]:
    """Decode, mark, fingerprint, enrich and reassemble; the chunk buffer is not kept."""
    for chunk in source.chunks():
        if len(chunk):
            batch = decode(chunk)
            c = stages.apply(batch)
            sessions, logins = stages.sessions.rows(stages.reassembler.feed(batch, chunk.data))
            yield _Prepared(
                writer.prepare(c),
                len(c["ts"]),
                int(np.count_nonzero(c["is_outbound"])),
                np.bincount(c["decode_error"], minlength=len(DECODE_ERRORS)),
                sessions,
                logins,
            )
    sessions, logins = stages.sessions.rows(stages.reassembler.flush())
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


def ingest_file(
    lake: Lake,
    path: Path,
    settings: Settings,
    enricher: CountryEnricher,
    progress: Progress | None = None,
    asn: AsnEnricher | None = None,
) -> InputResult:
    """Ingest one capture file (or Cowrie JSON log) into a locked lake."""
    start = time.perf_counter()
    cowrie = sniff_cowrie(path)
    source = None if cowrie else open_source(path, chunk_bytes=int(settings.chunk_mb) << 20)
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
    hasher = None
    if not digest:
        hasher = _Hasher(path)
        hasher.start()
    input_id = lake.catalog.begin(str(path), size, digest, str(settings.sensor), quick)
    if hasher is not None and source is None:
        digest = hasher.result()
        hasher = None
    if source is None:
        return _ingest_cowrie(lake, path, settings, enricher, input_id, start, digest)
    sensor = str(settings.sensor)
    writer = PacketWriter(lake, input_id, sensor, row_group_rows=int(settings.row_group_rows))
    side = {
        "sessions": TableWriter(lake, input_id, sensor, "sessions", SESSIONS_SCHEMA, "ts_first"),
        "logins": TableWriter(lake, input_id, sensor, "logins", LOGINS_SCHEMA, "ts"),
    }
    result = InputResult(str(path), "ingested", input_id)
    malformed = np.zeros(len(DECODE_ERRORS), np.int64)
    try:
        stages = _Stages(settings, input_id, enricher, asn)
        if asn is not None:
            writer.labels["src_as_org"] = asn.orgs
        batches = _batches(source, stages, writer)
        if int(settings.threads) >= 2:
            batches = _threaded(batches)
        for b in batches:
            malformed += b.malformed
            result.outbound += b.outbound
            result.packets += b.packets
            writer.write_parts(b.parts)
            for name, table in (("sessions", b.sessions), ("logins", b.logins)):
                if table is not None:
                    side[name].write(table)
            if progress:
                progress(str(path), source.stats.bytes, size)
        staged = writer.close() + [f for w in side.values() for f in w.close()]
        result.sessions = stages.sessions.count
    except BaseException as e:
        writer.abort()
        lake.discard(input_id)
        lake.catalog.fail(input_id, str(e) or type(e).__name__)
        raise
    result.records = source.stats.records
    result.skipped = dict(source.stats.skipped)
    result.malformed = {DECODE_ERRORS[i]: int(v) for i, v in enumerate(malformed) if i and v}
    files = lake.publish(input_id, staged)
    lake.catalog.commit(
        input_id,
        files,
        records=result.records,
        packets=result.packets,
        malformed=result.malformed,
        skipped=result.skipped,
        enrichment=enrichment_text(enricher, asn),
        sha256=hasher.result() if hasher is not None else digest,
    )
    result.seconds = time.perf_counter() - start
    return result


def _ingest_cowrie(
    lake: Lake,
    path: Path,
    settings: Settings,
    enricher: CountryEnricher,
    input_id: int,
    start: float,
    digest: str,
) -> InputResult:
    """A Cowrie honeypot's JSON log: its sessions and logins, no packets."""
    sensor = str(settings.sensor)
    try:
        read = read_cowrie(path, sensor_networks=settings.sensor_networks, input_id=input_id)
        sessions = fill_session_countries(read.sessions, enricher)
        writers = [
            TableWriter(lake, input_id, sensor, "sessions", SESSIONS_SCHEMA, "ts_first"),
            TableWriter(lake, input_id, sensor, "logins", LOGINS_SCHEMA, "ts"),
        ]
        writers[0].write(sessions)
        writers[1].write(read.logins)
        staged = [f for w in writers for f in w.close()]
    except BaseException as e:
        lake.discard(input_id)
        lake.catalog.fail(input_id, str(e) or type(e).__name__)
        raise
    files = lake.publish(input_id, staged)
    skipped = dict(read.stats.skipped)
    lake.catalog.commit(
        input_id,
        files,
        records=read.stats.records,
        packets=0,
        malformed={},
        skipped=skipped,
        enrichment=enricher.description,
        sha256=digest,
    )
    return InputResult(
        str(path),
        "ingested",
        input_id,
        records=read.stats.records,
        sessions=sessions.num_rows,
        skipped=skipped,
        seconds=time.perf_counter() - start,
    )


def ingest(
    paths: Sequence[str | Path], settings: Settings, progress: Progress | None = None
) -> IngestResult:
    """Ingest capture files, directories or globs into the data directory.

    A file that cannot be read is reported as failed and the others go on;
    a file whose content is already in the store is skipped.

    >>> result = ingest(["captures/"], load_settings())   # doctest: +SKIP
    >>> result.packets
    """
    start = time.perf_counter()
    files = expand_paths(paths)
    named = {Path(p) for p in paths}
    out = IngestResult()
    enricher = CountryEnricher(open_country_source(str(settings.country_source)))
    asn_source = open_asn_source(str(settings.asn_source))
    asn = AsnEnricher(asn_source) if asn_source is not None else None
    with Lake(settings.data_dir, create=True) as lake:
        lake.lock()
        for path in files:
            try:
                r = ingest_file(lake, path, settings, enricher, progress, asn)
            except FormatError as e:
                status = "failed" if path in named else "not_capture"
                r = InputResult(str(path), status, message=str(e))
            except TeitenError as e:
                r = InputResult(str(path), "failed", message=str(e))
            out.inputs.append(r)
    out.seconds = time.perf_counter() - start
    out.enrichment = enrichment_text(enricher, asn)
    return out
