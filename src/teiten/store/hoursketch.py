"""Hour sketches: the ``port_segments`` of a busy port day, per UTC hour.

An hourly series counts a port's distinct sources per hour. Exactly, that is a
group by source over the port's ``port_hours`` rows: 4 M rows for 23/tcp over two
days at 10^9 packets, 0.5–0.8 s however the statement is written. For every day
of its busiest ports (``teiten.store.sketch.DaySketch``: the ports of its
SKETCH_BUSY_PORTS port days with most sources) a day file keeps, per UTC hour and
segment (domestic, foreign, unknown), the packets and the HyperLogLog registers
of the sources, as ``port_segments`` keeps them per day: ``port_hour_segments``.
A series reads them where they hold every packet its ports' days have in the day
sketches (a file's port day is sketched by the hour whole or not at all, so equal
packets mean every file's rows are there), and the exact rows otherwise.

The sketches are built from the rows' registers that the day sketches hash once
(``registers.row_registers``), for every hour and port of a part as it comes
(which ports are the busiest is known only when the day file closes), then merged
over the parts and kept for those ports only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from teiten.schema.daytables import PORT_HOUR_SEGMENTS
from teiten.store.registers import Registers, merge, sketch
from teiten.store.rollup import schema

TABLE = "port_hour_segments"


def _key(
    proto: Any, port: Any, day: Any, hour: Any, seg: Any, first_day: int, first_hour: int
) -> npt.NDArray[np.int64]:
    """One integer per row ordering rows by protocol, port, day, hour and segment (days and
    hours relative to the first: a day file spans a few of each)."""
    key: npt.NDArray[np.int64] = (
        (np.asarray(proto) == 17).astype(np.int64) << 62
        | np.asarray(port, np.int64) << 46
        | (np.asarray(day, np.int64) - first_day) << 30
        | (np.asarray(hour, np.int64) - first_hour) << 2
        | np.asarray(seg, np.int64)
    )
    return key


def _table(
    key: npt.NDArray[np.int64], packets: Any, registers: pa.Array, first_day: int, first_hour: int
) -> pa.Table:
    target = schema(PORT_HOUR_SEGMENTS)
    arrays = {
        "busy": pa.array(np.ones(len(key), bool)),
        "day": pa.array(first_day + (key >> 30 & 0xFFFF)),
        "proto": pa.array(np.where(key >> 62 & 1, 17, 6)),
        "dst_port": pa.array(key >> 46 & 0xFFFF),
        "hour": pa.array(first_hour + (key >> 2 & 0xFFFFFFF)),
        "seg": pa.array(key & 3),
        "packets": pa.array(np.asarray(packets, np.int64)),
        "registers": registers,
    }
    return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in target], schema=target)


def hour_rows(
    port_hours: pa.Table, days: npt.NDArray[Any], seg: npt.NDArray[Any], registers: Registers
) -> pa.Table:
    """Per protocol, port, local day, UTC hour and segment of ``port_hours`` rows (``days``,
    ``seg``: each row's, ``teiten.store.sketch.segment_codes``), their packets and their
    sources' registers (``registers``: each row's, ``registers.row_registers``)."""
    if port_hours.num_rows == 0:
        return schema(PORT_HOUR_SEGMENTS).empty_table()
    hour = port_hours.column("hour").to_numpy().astype(np.int64)
    first_day, first_hour = int(days.min()), int(hour.min())
    key = _key(
        port_hours.column("proto").to_numpy(), port_hours.column("dst_port").to_numpy(),
        days, hour, seg, first_day, first_hour,
    )  # fmt: skip
    reg, rank = registers
    groups, packets, sketches = sketch(key, reg, rank, port_hours.column("packets").to_numpy())
    return _table(groups, packets, sketches, first_day, first_hour)


def combine_hours(parts: Sequence[pa.Table]) -> pa.Table:
    """Rows of several tables (parts of a day file, or files of a pack) as one: the rows of
    a protocol, port, day, hour and segment merged, in :func:`hour_rows`' order."""
    rows = [p for p in parts if p.num_rows]
    if not rows:
        return schema(PORT_HOUR_SEGMENTS).empty_table()
    t = pa.concat_tables(rows)
    day = t.column("day").to_numpy().astype(np.int64)
    hour = t.column("hour").to_numpy().astype(np.int64)
    first_day, first_hour = int(day.min()), int(hour.min())
    key = _key(
        t.column("proto").to_numpy(), t.column("dst_port").to_numpy(), day, hour,
        t.column("seg").to_numpy(), first_day, first_hour,
    )  # fmt: skip
    m = merge(key, t.column("packets").to_numpy(), t.column("registers"), keep=True)
    assert m.registers is not None
    return _table(m.group, m.packets, m.registers, first_day, first_hour)


def kept(table: pa.Table, port_days: npt.NDArray[np.int64]) -> pa.Table:
    """The rows of the port days ``port_days`` (their ``sketch.port_day_keys``)."""
    if table.num_rows == 0:
        return table
    key = (
        table.column("proto").to_numpy().astype(np.int64) << 48
        | table.column("dst_port").to_numpy().astype(np.int64) << 32
        | table.column("day").to_numpy().astype(np.int64)
    )
    return table.filter(pa.array(np.isin(key, port_days)))
