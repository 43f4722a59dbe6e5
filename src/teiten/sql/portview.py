"""Statements of the dashboard's port page: who reached one port in a window, and what they sent.

Each counts inbound packets to one TCP/UDP port under the port rule, reading
the hourly rollup (``port_hours_raw``) when the window is whole UTC hours and
the packets otherwise, exactly as :mod:`teiten.sql.traffic` decides
(:func:`~teiten.sql.traffic.hourly`). Sources are exact either way: rollup
rows name their source. Ties are broken by the stored columns, so both
engines return the same rows in the same order.

Over whole local days of the store's day zone the port lists answer instead
(``teiten.store.portlists``; ``teiten.analysis.portlists`` decides and merges):
:func:`port_group_rows` and :func:`port_top_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence

from teiten.sql.dialect import Dialect
from teiten.sql.expressions import (
    PROTO_NUMBERS,
    SOURCE,
    address_text,
    has_fingerprint,
    per_source,
    quote,
)
from teiten.sql.statement import statement
from teiten.sql.traffic import Rows, Span, hourly, sketch_where


def _where(w: Span, proto: str, port: int) -> tuple[Rows, str]:
    rows = Rows(hourly(w))
    where = (
        f"{rows.between(w.start_ns, w.end_ns)}"
        f" AND proto = {PROTO_NUMBERS[proto]} AND dst_port = {int(port)}"
    )
    return rows, where


@statement
def port_sources(d: Dialect, w: Span, proto: str, port: int, *, limit: int) -> str:
    """The busiest sources of a port (``src`` as text, ``packets``, ``src_cc`` — '' when
    unknown — and ``src_asn`` — 0 when unknown), most packets first, at most ``limit``."""
    r, where = _where(w, proto, port)
    return f"""
SELECT {address_text(d, "src")} AS src, {r.packets} AS packets,
       max(src_cc) AS src_cc, max(src_asn) AS src_asn
FROM {r.table}
WHERE {where}
GROUP BY ip_version, src_ip4, src_ip6
ORDER BY packets DESC, ip_version, src_ip4, src_ip6
LIMIT {int(limit)}"""


def _per(column: str, w: Span, proto: str, port: int, limit: int) -> str:
    """Sources and packets of a port per value of ``column``, most sources first."""
    r, where = _where(w, proto, port)
    return f"""
SELECT {column}, count(*) AS sources, CAST(sum(packets) AS BIGINT) AS packets
FROM {per_source([(column, column)], r.table, where, r.packets)} AS s
GROUP BY {column}
ORDER BY sources DESC, packets DESC, {column}
LIMIT {int(limit)}"""


@statement
def port_countries(d: Dialect, w: Span, proto: str, port: int, *, limit: int) -> str:
    """Sources and packets of a port per source country (``src_cc``, '' unknown),
    most sources first, at most ``limit``."""
    return _per("src_cc", w, proto, port, limit)


@statement
def port_asns(d: Dialect, w: Span, proto: str, port: int, *, limit: int) -> str:
    """Sources and packets of a port per source ASN (``src_asn``, 0 unknown),
    most sources first, at most ``limit``."""
    return _per("src_asn", w, proto, port, limit)


@statement
def port_fingerprints(
    d: Dialect, w: Span, proto: str, port: int, fingerprints: Sequence[tuple[int, str]]
) -> str:
    """One row, one scan: packets ``p{i}`` and sources ``s{i}`` of a port for every packet
    (``i = 0``), each fingerprint of ``fingerprints`` in order (``i = 1…``), and packets with
    none (the last ``i``)."""
    r, where = _where(w, proto, port)
    conditions = ["TRUE", *(has_fingerprint(d, bit) for bit, _ in fingerprints), "fp = 0"]
    by_source = ", ".join(
        f"sum(CASE WHEN {c} THEN {r.weight} ELSE 0 END) AS p{i}, "
        f"max(CASE WHEN {c} THEN 1 ELSE 0 END) AS f{i}"
        for i, c in enumerate(conditions)
    )
    cols = ", ".join(
        f"CAST(coalesce(sum(p{i}), 0) AS BIGINT) AS p{i}, "
        f"CAST(coalesce(sum(f{i}), 0) AS BIGINT) AS s{i}"
        for i in range(len(conditions))
    )
    source = ", ".join(SOURCE)  # one row per source: its rows' flags count it once
    return (
        f"SELECT {cols} FROM (SELECT {source}, {by_source} FROM {r.table}"
        f" WHERE {where} GROUP BY {source}) AS s"
    )


@statement
def port_sessions(
    d: Dialect, proto: str, port: int, start_ns: int, end_ns: int, *, limit: int
) -> str:
    """The latest classified sessions to a port whose first packet is in ``[start_ns,
    end_ns)``, newest first, at most ``limit`` (the columns of ``session_list``)."""
    return f"""
SELECT id, ts_first, src, src_port, dst_port, proto, app, kind, signatures, cves,
       indicators, client_total AS bytes
FROM sessions
WHERE dst_port = {int(port)} AND proto = {quote(proto)} AND kind IS NOT NULL
  AND ts_first_ns >= {int(start_ns)} AND ts_first_ns < {int(end_ns)}
ORDER BY ts_first_ns DESC, id DESC
LIMIT {int(limit)}"""


@statement
def port_group_rows(d: Dialect, days: tuple[int, int], proto: str, port: int) -> str:
    """The port lists' sketches of one port over the local days ``[first, end)``: ``day``,
    ``proto``, ``dst_port``, ``dim`` (1 ASN, 2 fingerprint bit, 3 none), ``key``,
    ``packets``, ``registers`` and the rows' list (``sensor``, ``file``, ``busy``). The
    caller fills in the registers stored empty (``teiten.store.portlists.expand``) and
    merges them (``teiten.store.registers.merge``)."""
    where = sketch_where(days, [(proto, port)], None)
    return (
        "SELECT day, proto, dst_port, dim, key, packets, registers, sensor, file, busy"
        f" FROM port_groups_raw WHERE {where}"
    )


@statement
def port_top_rows(d: Dialect, days: tuple[int, int], proto: str, port: int) -> str:
    """The rows of the port lists' busiest sources of a port over the local days ``[first,
    end)``: the source (``src`` as text; ``ip_version``, ``src_ip4``, ``src_ip6``),
    ``src_cc``, ``src_asn``, its listed ``packets``, and the list it is in (``sensor``,
    ``file``, ``day``, ``busy``) with that list's ``floor``. The caller sums a source's
    packets over lists and the floors once per list."""
    return f"""
SELECT {address_text(d, "src")} AS src, ip_version, src_ip4, src_ip6, src_cc, src_asn,
       packets, floor, sensor, file, day, busy
FROM port_tops_raw
WHERE {sketch_where(days, [(proto, port)], None)}"""
