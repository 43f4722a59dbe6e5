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
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from teiten.capture import expand_paths, open_source
from teiten.capture.cowrie import CowrieResult, read_cowrie, sniff_cowrie
from teiten.capture.events import EventsResult, read_events, sniff_events
from teiten.capture.source import Source
from teiten.decode.batch import PacketBatch
from teiten.decode.decoder import decode
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher, country_code
from teiten.enrich.network import NetworkSet
from teiten.errors import InputError, first_line
from teiten.fingerprint import registry
from teiten.flows.reassembly import Reassembler
from teiten.pipeline.guard import Guard
from teiten.pipeline.identity import Hasher, content_hash, quick_key
from teiten.pipeline.sessions import LOGINS_SCHEMA, SESSIONS_SCHEMA, SessionStage
from teiten.schema import DECODE_ERRORS
from teiten.session import Session
from teiten.store.budget import DayBudget
from teiten.store.lake import Lake
from teiten.store.sketch import SketchCut
from teiten.store.transaction import Staged
from teiten.store.writers import PacketWriter, Part, TableWriter

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
    tz: str
    """The zone of a new store's day sketches (a store keeps the zone it has: ``Lake.day_zone``)."""
    home_country: str
    """Whose sources a new store's segment sketches count as domestic (``Lake.sketch_home``)."""
    pack_files: int = 8
    """After the inputs, a month with this many files of a day table is packed
    (``teiten.store.pack``); 0 never packs."""

    @classmethod
    def of(cls, values: Any) -> IngestOptions:
        """The options from any object with these attributes (``Settings``, or options)."""
        if isinstance(values, cls):
            return values
        got = {f.name: getattr(values, f.name) for f in fields(cls) if hasattr(values, f.name)}
        return cls(
            Path(got["data_dir"]), str(got["sensor"]),
            tuple(str(n) for n in got["sensor_networks"]),
            int(got["session_bytes"]), int(got["chunk_mb"]), int(got["max_days_per_input"]),
            int(got["row_group_rows"]), int(got["max_expansion"]), int(got["threads"]),
            float(got["lock_wait"]), str(got["country_source"]), str(got["asn_source"]),
            str(got["tz"]), str(got["home_country"]),
            int(got.get("pack_files", cls.pack_files)),
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
    packed: int = 0
    """Files of the day tables packed after the inputs (``teiten.store.pack``)."""

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

    parts: list[Part]
    packets: int
    outbound: int
    malformed: Any
    sessions: pa.Table | None = None
    logins: pa.Table | None = None


def _batches(
    source: Source, stages: _Stages, writer: PacketWriter, guard: Guard
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
        hasher = Hasher(path)
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
            lake,
            input_id,
            sensor,
            row_group_rows=int(settings.row_group_rows),
            budget=budget,
            # how the store's sketches are cut (``app.ingest`` put it there)
            cut=SketchCut(str(settings.tz), country_code(str(settings.home_country))),
            threads=int(settings.threads),
        )
        side = {
            "sessions": TableWriter(
                lake, input_id, sensor, "sessions", SESSIONS_SCHEMA, "ts_first", budget=budget
            ),
            "logins": TableWriter(
                lake, input_id, sensor, "logins", LOGINS_SCHEMA, "ts", budget=budget
            ),
        }
        guard = Guard(source, int(settings.max_expansion)) if source is not None else None
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
    return store_message(first_line(e), e.errno if isinstance(e, OSError) else None, root)


def store_message(text: str, code: int | None, root: Path) -> str:
    """:func:`store_error` of an error's first line and errno (as an executor reports it)."""
    full = "No space left" in text or "disk is full" in text
    if full or code in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"disk full while writing {root}; the run stopped, inputs committed before"
            " stay in the store (free space and run it again)"
        )
    return f"cannot write to {root}: {text}; the run stopped (inputs committed before are kept)"
