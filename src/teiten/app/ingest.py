"""Ingest as a use case: from settings and paths to committed inputs.

Reads the settings, opens the enrichment sources (checked before any input is
read), opens and locks the data folder, and ingests the inputs through the
pipeline — one by one in this process, or, with ``engine = "spark"``, spread
over Spark executors (:func:`ingest` says how). The pipeline itself reads no
settings: it gets an :class:`~teiten.pipeline.IngestOptions`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from teiten.app.sketches import pack_lake
from teiten.config import Settings
from teiten.enrich.asn import AsnEnricher
from teiten.enrich.country import CountryEnricher
from teiten.enrich.sources import open_asn_source, open_country_source
from teiten.errors import EnrichmentError, FormatError, StoreError, TeitenError, first_line
from teiten.pipeline import (
    IngestOptions,
    IngestResult,
    InputPlan,
    InputResult,
    Progress,
    StagedInput,
    admit,
    commit,
    enrichment_text,
    expand,
    ingest_file,
    register,
    store_error,
    store_message,
)
from teiten.pipeline.detached import stage_detached
from teiten.pipeline.identity import content_hash
from teiten.store.lake import Lake

NO_SENSOR_NETWORKS = (
    "no sensor networks given (--sensor-net or setting sensor_networks):"
    " the sensor's own replies will count as inbound"
)


def ingest(
    paths: Sequence[str | Path],
    settings: Settings | IngestOptions | Any,
    progress: Progress | None = None,
    *,
    spark: bool | None = None,
) -> IngestResult:
    """Ingest capture files, directories or globs into the data directory.

    A file that cannot be read is reported as failed and the others go on;
    a file whose content is already in the store is skipped. A full disk or a
    damaged enrichment source stops the run (:attr:`IngestResult.error`),
    keeping what was committed. The enrichment sources are opened (and mmdb
    files checked) before any input is read.

    ``spark`` (default: whether the ``engine`` setting is ``"spark"``) spreads the files
    over Spark executors (``spark_master``): the driver — this process —
    takes the lock and registers every input in the catalog in order, each
    executor task writes one input's files into its staging folder (a
    filesystem the executors share with the driver) and returns a manifest,
    and the driver commits each input with its transaction. Otherwise the
    inputs are ingested here, one after the other.

    >>> result = ingest(["captures/"], load_settings())   # doctest: +SKIP
    >>> result.packets
    """
    options = IngestOptions.of(settings)
    if spark is None:
        spark = str(getattr(settings, "engine", "duckdb")) == "spark"
    start = time.perf_counter()
    out = IngestResult()
    files = expand(paths, out.warnings)
    named = {Path(p) for p in paths}
    if not options.sensor_networks:
        out.warnings.append(NO_SENSOR_NETWORKS)
    enricher = CountryEnricher(open_country_source(str(options.country_source)))
    asn_source = open_asn_source(str(options.asn_source))
    asn = AsnEnricher(asn_source) if asn_source is not None else None
    with Lake(options.data_dir, create=True) as lake:
        lake.lock(wait=float(options.lock_wait))
        # The store's first ingest fixes how its sketches are cut (day zone, home
        # country); every later one (and every Spark task, which opens no catalog)
        # cuts them the same way.
        options = replace(
            options,
            tz=lake.day_zone(options.tz) or options.tz,
            home_country=lake.sketch_home(options.home_country) or options.home_country,
        )
        if spark and files:
            master = str(getattr(settings, "spark_master", "local[*]"))
            _spread(lake, files, named, options, master, progress, out)
        else:
            _one_by_one(lake, files, named, options, enricher, asn, progress, out)
        if options.pack_files and not out.error:
            _pack(lake, options, out)
    out.seconds = time.perf_counter() - start
    out.enrichment = enrichment_text(enricher, asn)
    return out


def _pack(lake: Lake, options: IngestOptions, out: IngestResult) -> None:
    """Pack the months with ``pack_files`` files of a day table; a failure (a full disk)
    leaves the files as they were and is a warning, not an error of the ingest."""
    try:
        out.packed = pack_lake(lake, options.pack_files).files
    except (StoreError, OSError) as e:
        out.warnings.append(f"day tables not packed: {first_line(e)}")


def _one_by_one(
    lake: Lake,
    files: list[Path],
    named: set[Path],
    options: IngestOptions,
    enricher: CountryEnricher,
    asn: AsnEnricher | None,
    progress: Progress | None,
    out: IngestResult,
) -> None:
    """Ingest the files in this process, each committed before the next is read."""
    for path in files:
        try:
            r = ingest_file(lake, path, options, enricher, progress, asn)
        except FormatError as e:
            status = "failed" if path in named else "not_capture"
            r = InputResult(str(path), status, message=str(e))
        except EnrichmentError as e:
            out.inputs.append(InputResult(str(path), "failed", message=str(e)))
            out.error = str(e)
            break
        except TeitenError as e:
            r = InputResult(str(path), "failed", message=str(e))
        except (OSError, sqlite3.Error) as e:
            out.error = store_error(e, lake.root)
            out.inputs.append(InputResult(str(path), "failed", message=out.error))
            break
        out.inputs.append(r)


class _Admitted:
    """The driver's list of a distributed run: per file its result so far, or its plan."""

    def __init__(self) -> None:
        self.slots: list[InputResult | InputPlan] = []
        self.by_quick: dict[str, list[int]] = {}
        """Slots of the registered inputs of each quick key in this run."""
        self.same_as: dict[int, int] = {}
        """Slot of an input with the content of an earlier one of this run → that one's slot."""

    def add(self, lake: Lake, plan: InputPlan, options: IngestOptions) -> None:
        """Register ``plan``, unless an input of this run has the same content."""
        earlier = self.by_quick.setdefault(plan.quick, [])
        if earlier:  # equal quick keys: compare the whole contents
            plan = plan if plan.sha256 else _hashed(plan)
            for at in earlier:
                other = self.slots[at]
                assert isinstance(other, InputPlan)
                if not other.sha256:
                    other = self.slots[at] = _hashed(other)
                if plan.sha256 == other.sha256:
                    self.same_as[len(self.slots)] = at
                    self.slots.append(plan)
                    return
        earlier.append(len(self.slots))
        self.slots.append(register(lake, plan, options))

    def plans(self) -> list[InputPlan]:
        """The registered inputs, in order (the tasks of the run)."""
        return [
            p
            for i, p in enumerate(self.slots)
            if isinstance(p, InputPlan) and i not in self.same_as
        ]


def _hashed(plan: InputPlan) -> InputPlan:
    try:
        return InputPlan(
            plan.path, plan.input_id, plan.size, plan.quick, content_hash(Path(plan.path))
        )
    except OSError as e:
        raise StoreError(f"cannot read {plan.path}: {e.strerror}") from None


def _spread(
    lake: Lake,
    files: list[Path],
    named: set[Path],
    options: IngestOptions,
    master: str,
    progress: Progress | None,
    out: IngestResult,
) -> None:
    """Distributed ingest: admit and register here, stage on executors, commit here."""
    admitted = _Admitted()
    stops_at = -1
    for path in files:  # in order, as a local run would register them (same input ids)
        try:
            plan = admit(lake, path, options)
            if isinstance(plan, InputResult):
                admitted.slots.append(plan)
            else:
                admitted.add(lake, plan, options)
        except FormatError as e:
            status = "failed" if path in named else "not_capture"
            admitted.slots.append(InputResult(str(path), status, message=str(e)))
        except TeitenError as e:
            admitted.slots.append(InputResult(str(path), "failed", message=str(e)))
        except (OSError, sqlite3.Error) as e:  # the run stops there, after the inputs before
            stops_at = len(admitted.slots)
            admitted.slots.append(
                InputResult(str(path), "failed", message=store_error(e, lake.root))
            )
            break
    plans = admitted.plans()
    done: dict[int, InputResult] = {}
    try:
        manifests = _run_tasks(lake, plans, options, master) if plans else {}
        for i, slot in enumerate(admitted.slots):
            if isinstance(slot, InputResult):
                r = slot
                if i == stops_at:
                    out.error = r.message
            elif i in admitted.same_as:
                first = admitted.slots[admitted.same_as[i]]
                assert isinstance(first, InputPlan)
                r = _same_content(slot, first, done.get(first.input_id))
            else:
                r = done[slot.input_id] = _commit(lake, slot, manifests[slot.input_id], named, out)
                if progress is not None:
                    progress(slot.path, slot.size, slot.size)
            out.inputs.append(r)
            if out.error:  # the run stops there; what is not committed is left out
                break
    finally:  # stopped or interrupted: no input stays registered without its commit
        for plan in plans:
            if plan.input_id not in done:
                with contextlib.suppress(sqlite3.Error, OSError):
                    lake.transaction(plan.input_id).fail(None)


def _run_tasks(
    lake: Lake, plans: list[InputPlan], options: IngestOptions, master: str
) -> dict[int, StagedInput]:
    """One Spark task per input; the manifests by input id.

    A Spark job that fails as a whole (an executor lost for good) fails every
    input of the run with its one-line reason.
    """
    from teiten.engine.spark import session

    context = session(master).sparkContext
    task = partial(stage_detached, str(lake.root.resolve()), options)
    # An executor's working directory is not the driver's: it gets absolute paths.
    sent = [replace(p, path=str(Path(p.path).absolute())) for p in plans]
    try:
        staged = context.parallelize(sent, len(sent)).map(task).collect()
        for s, plan in zip(staged, plans, strict=True):
            s.result.path = plan.path  # reported as given, as a local run does
    except Exception as e:  # a failed job: Py4J's text, Spark's reason on a line of its own
        lines = str(e).strip().splitlines() or [type(e).__name__]
        text = next((x for x in lines if "SparkException" in x), lines[0]).strip(" :")[:300]
        message = f"the Spark job failed: {text}"
        staged = [
            StagedInput(
                InputResult(p.path, "failed", p.input_id, message=message),
                error=message,
                error_kind="input",
            )
            for p in plans
        ]
    return {s.result.input_id or 0: s for s in staged}


def _commit(
    lake: Lake, plan: InputPlan, staged: StagedInput, named: set[Path], out: IngestResult
) -> InputResult:
    """Commit one staged input, or fail it with its executor's error (as a local run would)."""
    if not staged.error_kind:
        try:
            return commit(lake, staged)
        except TeitenError as e:
            return InputResult(plan.path, "failed", message=str(e))
        except (OSError, sqlite3.Error) as e:
            out.error = store_error(e, lake.root)
            return InputResult(plan.path, "failed", message=out.error)
    lake.transaction(plan.input_id).fail(StoreError(staged.error))
    path, kind, message = Path(plan.path), staged.error_kind, staged.error
    if kind == "format":
        return InputResult(plan.path, "failed" if path in named else "not_capture", message=message)
    if kind == "enrichment":
        out.error = message
    elif kind == "store":
        out.error = message = store_message(message, staged.errno, lake.root)
    return InputResult(plan.path, "failed", message=message)


def _same_content(plan: InputPlan, first: InputPlan, result: InputResult | None) -> InputResult:
    """The result of an input with the content of an earlier input of the same run."""
    if result is not None and result.status in ("ingested", "stopped"):
        return InputResult(
            plan.path,
            "duplicate",
            first.input_id,
            message=f"already ingested as input {first.input_id} ({first.path})",
        )
    return InputResult(
        plan.path, "failed", message=f"same content as {first.path}, which was not ingested"
    )
