"""Back-check results in the store: the ``probes`` table, written per run, read back (use cases).

Each back-check run or scan import is one catalog input (``backcheck:…``),
committed like a capture: its rows become visible all at once, and
``teiten backcheck show``, the ``probes`` SQL view and the report read them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq

from teiten.backcheck.model import Probe, Summary, summarize, to_table
from teiten.config import Settings
from teiten.errors import StoreError
from teiten.store.lake import Lake


def store_probes(settings: Settings, probes: Sequence[Probe], label: str) -> int:
    """Commit a run's probes to the data directory (today's partition); returns the input id."""
    table = to_table(probes)
    digest = uuid.uuid4().hex  # each run is new content: never a duplicate of another
    sensor = str(settings.sensor)
    today = dt.datetime.now(dt.UTC).date().toordinal() - dt.date(1970, 1, 1).toordinal()
    with Lake(settings.data_dir, create=True) as lake:
        lake.lock()
        input_id = lake.catalog.begin(f"backcheck:{label}", table.nbytes, digest, sensor)
        with lake.transaction(input_id) as tx:
            tx.write("probes", sensor, today, table)
            tx.commit(records=len(probes), packets=0, malformed={}, skipped={}, enrichment="")
    return input_id


def load_probes(settings: Settings) -> list[Probe]:
    """Every stored probe row, oldest run first."""
    with Lake(settings.data_dir) as lake:
        paths = lake.files("probes")
    names = {f.name for f in dataclasses.fields(Probe)}
    out: list[Probe] = []
    for path in paths:
        for row in pq.read_table(path, partitioning=None).to_pylist():
            values: dict[str, Any] = {k: v for k, v in row.items() if k in names}
            for k in ("advisory_ids", "advisory_statuses"):
                values[k] = tuple(values.get(k) or ())
            values["banner"] = values.get("banner") or b""
            out.append(Probe(**values))
    return out


def stored_summary(settings: Settings, port: int = 52869) -> Summary | None:
    """The summary of every stored probe (None when no back-check was stored)."""
    try:
        probes = load_probes(settings)
    except StoreError:  # no data directory yet: no back-check either
        return None
    return summarize(probes, port=port) if probes else None
