"""The friendly views over the stored tables, generated from the declarations.

Storage is compact (``teiten.store.layout``: packed bit fields, residuals,
split timestamps, columns in the path); ``packets_raw`` undoes the layout into
the logical columns of ``teiten.schema.PACKETS`` and the friendly views show
text addresses, timestamps, protocol and fingerprint names. Engines register
each table's committed files as ``TABLE_stored`` (the stored columns, the
path's ``sensor`` and the file's path as ``filename``) and then create the views
:func:`views` lists, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from teiten.schema import HOUR_NS, PACKETS
from teiten.sql.dialect import Dialect
from teiten.sql.expressions import (
    address_text,
    decode_error_text,
    fingerprint_list,
    port_rule,
    proto_text,
    segment,
    sources,
    sources24,
)
from teiten.store.layout import FROM_PATH, PACKED, RESIDUALS

ADDED_LATER: dict[str, str] = {"src_asn": "CAST(0 AS BIGINT)", "src_as_org": "''"}
"""Stored columns that older stores lack, with the value read for them."""

_INPUT_ID = "CAST(regexp_extract(filename, 'in([0-9]+)-[0-9]+[.]parquet$', 1) AS BIGINT)"
_FILE = "regexp_extract(filename, '(date=[^/]+/[^/]+)$', 1)"
"""A file's name within its sensor's folder, the same text on every engine (Spark's
``filename`` is a URI)."""
"""The catalog id of the input a row came from, read from its file's name."""


def country_text(d: Dialect, code: str) -> str:
    """The two-letter text of a country code (``teiten.enrich.country``), '' for 0."""
    first = f"chr(CAST(65 + {d.intdiv(f'({code} - 1)', '26')} AS INT))"
    second = f"chr(CAST(65 + ({code} - 1) % 26 AS INT))"
    return f"CASE WHEN {code} = 0 THEN '' ELSE concat({first}, {second}) END"


def logical_columns(d: Dialect, present: Collection[str] | None = None) -> dict[str, str]:
    """The expression of every logical packet column over the stored ones.

    ``src_cc_code`` (the integer code of ``src_cc``, cheaper to compare) is
    included; ``sensor`` and ``input_id`` come from the path. ``present``
    names the stored columns the files have: columns added in later releases
    read as their default in older stores.
    """
    sql: dict[str, str] = {"ts": "(ts_us * 1000 + ts_ns)"}
    for p in PACKED:
        for column, shift, bits in p.shifts():
            expr = f"({d.shr(p.name, shift)} & {(1 << bits) - 1})"
            if column == "is_outbound":
                expr = f"({expr} = 1)"
            elif column == "src_cc":
                sql["src_cc_code"] = expr
                expr = country_text(d, expr)
            sql[column] = expr
    for c in PACKETS:
        if c.name not in sql and c.name not in FROM_PATH:
            sql[c.name] = c.name
    sql["src_asn"] = "coalesce(src_asn, 0)"
    sql["src_as_org"] = "coalesce(src_as_org, '')"
    if present is not None:
        for name, default in ADDED_LATER.items():
            if name not in present:
                sql[name] = default
    for name, others in RESIDUALS.items():
        width = np.dtype(next(c.dtype for c in PACKETS if c.name == name)).itemsize * 8
        expr = f"CAST({name} AS BIGINT)"
        for other in others:
            expr = d.xor(expr, f"CAST({other} AS BIGINT)")
        sql[name] = f"({expr} & {(1 << width) - 1})"
    sql["input_id"] = _INPUT_ID
    sql["sensor"] = "sensor"
    return sql


def raw_view(d: Dialect, source: str, present: Collection[str] | None = None) -> str:
    """``packets_raw``: the logical columns over the stored rows of ``source``.

    ``source`` provides the stored columns plus the path column ``sensor``.
    """
    exprs = logical_columns(d, present)
    names = [c.name for c in PACKETS] + ["src_cc_code"]
    cols = ",\n    ".join(f"{exprs[n]} AS {n}" if exprs[n] != n else n for n in names)
    return f"SELECT\n    {cols}\nFROM {source}"


def packets_view(d: Dialect, source: str, names_by_bit: Sequence[tuple[int, str]]) -> str:
    """``packets``: the friendly view over ``packets_raw``."""
    return f"""
SELECT
    {d.timestamp_ns("ts")} AS ts,
    ts AS ts_ns,
    sensor,
    {address_text(d, "src")} AS src,
    {address_text(d, "dst")} AS dst,
    ip_version,
    {proto_text()} AS proto,
    proto AS proto_number,
    CAST(src_port AS INT) AS src_port,
    CAST(dst_port AS INT) AS dst_port,
    CAST(tcp_flags AS INT) AS tcp_flags,
    CAST(tcp_seq AS BIGINT) AS tcp_seq,
    CAST(tcp_ack AS BIGINT) AS tcp_ack,
    CAST(tcp_window AS INT) AS tcp_window,
    CAST(tcp_options_len AS INT) AS tcp_options_len,
    CAST(tcp_mss AS INT) AS tcp_mss,
    CAST(ip_id AS INT) AS ip_id,
    CAST(ip_ttl AS INT) AS ip_ttl,
    CAST(ip_len AS INT) AS ip_len,
    CAST(ip_frag AS INT) AS ip_frag,
    CAST(payload_len AS INT) AS payload_len,
    CASE WHEN src_cc = '' THEN NULL ELSE src_cc END AS src_cc,
    CASE WHEN src_asn = 0 THEN NULL ELSE CAST(src_asn AS BIGINT) END AS src_asn,
    CASE WHEN src_as_org = '' THEN NULL ELSE CAST(src_as_org AS STRING) END AS src_as_org,
    {fingerprint_list(d, names_by_bit)} AS fingerprints,
    CASE WHEN is_outbound THEN 'out' ELSE 'in' END AS direction,
    {decode_error_text()} AS decode_error,
    CAST(input_id AS BIGINT) AS input_id
FROM {source}"""


def series_view(d: Dialect, home: int) -> str:
    """``series``: inbound packets and sources per UTC day, protocol, destination port
    and segment (domestic / foreign / unknown)."""
    return f"""
SELECT
    {d.days_to_date(d.intdiv("ts", "86400000000000"))} AS date,
    {proto_text()} AS proto,
    CAST(dst_port AS INT) AS port,
    {segment(home)} AS segment,
    count(*) AS packets,
    {sources()} AS sources,
    {sources24(d)} AS sources24
FROM packets_raw
WHERE NOT is_outbound AND {port_rule()}
GROUP BY 1, 2, 3, 4"""


def sessions_view(d: Dialect) -> str:
    """``sessions``: one row per classified session, addresses and times as text."""
    return f"""
SELECT
    id,
    {d.timestamp_ns("ts_first")} AS ts_first,
    {d.timestamp_ns("ts_last")} AS ts_last,
    sensor,
    {address_text(d, "src")} AS src,
    CAST(src_port AS INT) AS src_port,
    {address_text(d, "dst")} AS dst,
    CAST(dst_port AS INT) AS dst_port,
    {proto_text()} AS proto,
    CASE WHEN src_cc = '' THEN NULL ELSE src_cc END AS src_cc,
    app,
    CASE WHEN kind = '' THEN NULL ELSE kind END AS kind,
    signatures, cves, jvn, indicators, indicator_types,
    CASE WHEN method = '' THEN NULL ELSE method END AS method,
    CASE WHEN path = '' THEN NULL ELSE path END AS path,
    CASE WHEN soap_action = '' THEN NULL ELSE soap_action END AS soap_action,
    CAST(packets AS BIGINT) AS packets,
    CAST(client_total AS BIGINT) AS client_total,
    gap, truncated, client_bytes, server_bytes, notes, requests, telnet, honeypot,
    CAST(evidence_cut AS BIGINT) AS evidence_cut,
    {_INPUT_ID} AS input_id,
    ts_first AS ts_first_ns
FROM sessions_stored"""


def logins_view(d: Dialect) -> str:
    """``logins``: credential attempts and the commands that followed."""
    return f"""
SELECT
    {d.timestamp_ns("ts")} AS ts,
    sensor,
    {address_text(d, "src")} AS src,
    CAST(dst_port AS INT) AS dst_port,
    username,
    password,
    CASE success WHEN 1 THEN TRUE WHEN 0 THEN FALSE END AS success,
    mirai_dict,
    commands
FROM logins_stored"""


def indicators_view(d: Dialect) -> str:
    """``indicators``: each indicator with first/last seen, sessions, sources, signatures."""
    return f"""
SELECT
    type,
    value,
    min(ts_first) AS first_seen,
    max(ts_last) AS last_seen,
    count(*) AS sessions,
    count(DISTINCT src) AS sources,
    {d.merged_list("signatures")} AS signatures
FROM (
    SELECT {d.zip_unnest("indicator_types", "indicators", "type", "value")},
           ts_first, ts_last, src, signatures
    FROM sessions
) AS pairs
GROUP BY type, value"""


def _in_inputs(ids: Collection[int]) -> str:
    return f"input_id IN ({', '.join(str(int(i)) for i in sorted(ids))})"


def port_hours_view(d: Dialect, unrolled: Collection[int] = ()) -> str:
    """``port_hours_raw``: the ``port_hours`` rollup in the columns of ``packets_raw``
    (``ts`` the start of the row's UTC hour, ``hour`` its number) plus ``packets``.

    Inputs listed in ``unrolled`` (ingested before the rollups existed) are
    rolled up here from their packets, so the view is complete for every store.
    """
    sql = f"""
SELECT
    hour,
    CAST(hour AS BIGINT) * {HOUR_NS} AS ts,
    CAST(proto AS BIGINT) AS proto,
    CAST(dst_port AS BIGINT) AS dst_port,
    CAST(ip_version AS BIGINT) AS ip_version,
    CAST(src_ip4 AS BIGINT) AS src_ip4,
    src_ip6,
    CAST(src_cc AS BIGINT) AS src_cc_code,
    {country_text(d, "src_cc")} AS src_cc,
    CAST(src_asn AS BIGINT) AS src_asn,
    CAST(fp AS BIGINT) AS fp,
    CAST(packets AS BIGINT) AS packets,
    sensor,
    {_INPUT_ID} AS input_id
FROM port_hours_stored"""
    if not unrolled:
        return sql
    hour = d.intdiv("ts", str(HOUR_NS))
    return f"""{sql}
UNION ALL
SELECT CAST({hour} AS INT), {hour} * {HOUR_NS}, CAST(proto AS BIGINT),
       CAST(dst_port AS BIGINT), CAST(ip_version AS BIGINT), CAST(src_ip4 AS BIGINT), src_ip6,
       CAST(src_cc_code AS BIGINT), src_cc, CAST(src_asn AS BIGINT), CAST(fp AS BIGINT),
       count(*), sensor, input_id
FROM packets_raw
WHERE {_in_inputs(unrolled)} AND NOT is_outbound AND {port_rule()}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14"""


def address_hours_view(d: Dialect, unrolled: Collection[int] = ()) -> str:
    """``address_hours_raw``: the ``address_hours`` rollup (``hour``, ``ts`` its start,
    ``ip_version``, ``dst_ip4``, ``dst_ip6``), completed like :func:`port_hours_view`."""
    sql = f"""
SELECT hour, CAST(hour AS BIGINT) * {HOUR_NS} AS ts, CAST(ip_version AS BIGINT) AS ip_version,
       CAST(dst_ip4 AS BIGINT) AS dst_ip4, dst_ip6
FROM address_hours_stored"""
    if not unrolled:
        return sql
    hour = d.intdiv("ts", str(HOUR_NS))
    return f"""{sql}
UNION ALL
SELECT DISTINCT CAST({hour} AS INT), {hour} * {HOUR_NS}, CAST(ip_version AS BIGINT),
       CAST(dst_ip4 AS BIGINT), dst_ip6
FROM packets_raw
WHERE {_in_inputs(unrolled)} AND NOT is_outbound AND ip_version IN (4, 6)"""


def source_ports_view(d: Dialect, unsourced: Collection[int] = ()) -> str:
    """``source_ports_raw``: the ``source_ports`` rollup (``teiten.store.sourceports``) in
    the columns of ``packets_raw`` (``src_cc_code``, ``src_cc`` text, ``src_as_org`` text)
    plus ``counted`` (the port rule counts the packets; port 0 where not), ``packets``
    and ``first_s``, ``last_s`` (seconds since the epoch).

    Inputs listed in ``unsourced`` (ingested before the table existed, until ``teiten
    rollup`` adds it) are rolled up here from their packets, so the view is complete
    for every store.
    """
    sql = f"""
SELECT
    CAST(ip_version AS BIGINT) AS ip_version,
    CAST(src_ip4 AS BIGINT) AS src_ip4,
    src_ip6,
    CAST(proto AS BIGINT) AS proto,
    CAST(dst_port AS BIGINT) AS dst_port,
    counted,
    CAST(fp AS BIGINT) AS fp,
    CAST(src_cc AS BIGINT) AS src_cc_code,
    {country_text(d, "src_cc")} AS src_cc,
    CAST(src_asn AS BIGINT) AS src_asn,
    CAST(src_as_org AS STRING) AS src_as_org,
    CAST(packets AS BIGINT) AS packets,
    CAST(first_s AS BIGINT) AS first_s,
    CAST(first_s AS BIGINT) + CAST(span_s AS BIGINT) AS last_s,
    sensor
FROM source_ports_stored"""
    if not unsourced:
        return sql
    second = d.intdiv("ts", "1000000000")
    return f"""{sql}
UNION ALL
SELECT CAST(ip_version AS BIGINT), CAST(src_ip4 AS BIGINT), src_ip6, CAST(proto AS BIGINT),
       CASE WHEN {port_rule()} THEN CAST(dst_port AS BIGINT) ELSE CAST(0 AS BIGINT) END,
       {port_rule()}, CAST(fp AS BIGINT), CAST(src_cc_code AS BIGINT), src_cc,
       CAST(src_asn AS BIGINT), coalesce(src_as_org, ''), count(*), min({second}),
       max({second}), sensor
FROM packets_raw
WHERE {_in_inputs(unsourced)} AND NOT is_outbound AND ip_version IN (4, 6)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15"""


def port_sketches_view() -> str:
    """``port_sketches_raw``: the day sketches (``teiten.store.sketch``): ``day`` (local
    days of the store's day zone), ``proto``, ``dst_port``, ``src_cc_code`` (the country's
    code, as in ``packets_raw``), ``packets``, ``registers`` and ``busy`` (the port day
    is among its file's busiest)."""
    return f"""
SELECT
    day,
    CAST(proto AS BIGINT) AS proto,
    CAST(dst_port AS BIGINT) AS dst_port,
    CAST(src_cc AS BIGINT) AS src_cc_code,
    CAST(packets AS BIGINT) AS packets,
    registers,
    busy,
    sensor,
    {_INPUT_ID} AS input_id
FROM port_sketches_stored"""


def port_segments_view() -> str:
    """``port_segments_raw``: per ``port_sketches`` file, local ``day``, ``proto``,
    ``dst_port`` and ``seg`` (1 domestic, 2 foreign, 3 unknown), the ``packets``, the
    merged ``registers`` and the ``sources`` they estimate."""
    return f"""
SELECT day, CAST(proto AS BIGINT) AS proto, CAST(dst_port AS BIGINT) AS dst_port,
       CAST(seg AS BIGINT) AS seg, CAST(packets AS BIGINT) AS packets,
       CAST(sources AS BIGINT) AS sources, registers, sensor, {_INPUT_ID} AS input_id
FROM port_segments_stored"""


def port_hour_segments_view() -> str:
    """``port_hour_segments_raw``: the hour sketches of busy port days
    (``teiten.store.hoursketch``): local ``day``, ``proto``, ``dst_port``, UTC ``hour``,
    ``seg`` (1 domestic, 2 foreign, 3 unknown), ``packets`` and ``registers``."""
    return """
SELECT day, CAST(proto AS BIGINT) AS proto, CAST(dst_port AS BIGINT) AS dst_port,
       CAST(hour AS BIGINT) AS hour, CAST(seg AS BIGINT) AS seg,
       CAST(packets AS BIGINT) AS packets, registers, sensor
FROM port_hour_segments_stored"""


def port_groups_view() -> str:
    """``port_groups_raw``: the port lists' sketches (``teiten.store.portlists``): local
    ``day``, ``proto``, ``dst_port``, ``dim`` (1 ASN, 2 fingerprint bit, 3 none), ``key``,
    ``packets`` and ``registers``, and the list they belong to (``busy``, ``sensor``,
    ``file``: an unknown ASN's empty registers are its port day's in that list)."""
    return f"""
SELECT day, CAST(proto AS BIGINT) AS proto, CAST(dst_port AS BIGINT) AS dst_port,
       CAST(dim AS BIGINT) AS dim, CAST(key AS BIGINT) AS key,
       CAST(packets AS BIGINT) AS packets, registers, busy, sensor, {_FILE} AS file,
       {_INPUT_ID} AS input_id
FROM port_groups_stored"""


def port_tops_view(d: Dialect) -> str:
    """``port_tops_raw``: each port day's busiest sources (``teiten.store.portlists``) in
    the columns of ``port_hours_raw``, with the list's ``floor``, ``busy`` and its
    ``file`` (``date=…/NAME.parquet``: a list is the rows of one file, day, port and
    ``busy``)."""
    return f"""
SELECT day, CAST(proto AS BIGINT) AS proto, CAST(dst_port AS BIGINT) AS dst_port,
       CAST(ip_version AS BIGINT) AS ip_version, CAST(src_ip4 AS BIGINT) AS src_ip4, src_ip6,
       {country_text(d, "src_cc")} AS src_cc, CAST(src_asn AS BIGINT) AS src_asn,
       CAST(packets AS BIGINT) AS packets, CAST(floor AS BIGINT) AS floor, busy, sensor,
       {_FILE} AS file
FROM port_tops_stored"""


@dataclass(frozen=True)
class Stored:
    """What an engine knows of the stored tables before it creates the views."""

    packets: Collection[str]
    """The stored columns the packet files have."""
    quarantine: Collection[str]
    """The stored columns the quarantined packet files have."""
    probes: Sequence[str]
    """The probe columns, in order."""
    unrolled: Collection[int] = ()
    """Inputs with packet files but no rollup files (``teiten.store.lake.Lake.unrolled``)."""
    unsourced: Collection[int] = ()
    """Inputs with packet files but no ``source_ports`` files (``Lake.unsourced``)."""


def views(
    d: Dialect, stored: Stored, *, home: int, names_by_bit: Sequence[tuple[int, str]]
) -> list[tuple[str, str]]:
    """``(name, SELECT)`` of every view, in the order they must be created.

    The engine has registered ``packets_stored``, ``sessions_stored``,
    ``logins_stored``, ``probes_stored``, ``packets_quarantine_stored`` and the
    rollups' ``port_hours_stored``, ``address_hours_stored``, ``source_ports_stored``,
    ``port_sketches_stored``, ``port_hour_segments_stored``,
    ``port_segments_stored``, ``port_groups_stored`` and ``port_tops_stored``.
    """
    statements = view_statements(d, stored, home=home, names_by_bit=names_by_bit)
    return [(name, select()) for name, select in statements.items()]


def view_statements(
    d: Dialect, stored: Stored, *, home: int, names_by_bit: Sequence[tuple[int, str]]
) -> dict[str, Callable[[], str]]:
    """Each view's name and what makes its SELECT, in the order of :func:`views`: an
    engine that creates a view only when a statement names it (DuckDB) makes only
    those it needs, and reads ``stored.packets`` only for ``packets_raw``."""
    return {
        "packets_raw": lambda: raw_view(d, "packets_stored", stored.packets),
        "port_hours_raw": lambda: port_hours_view(d, stored.unrolled),
        "address_hours_raw": lambda: address_hours_view(d, stored.unrolled),
        "source_ports_raw": lambda: source_ports_view(d, stored.unsourced),
        "port_sketches_raw": port_sketches_view,
        "port_segments_raw": port_segments_view,
        "port_hour_segments_raw": port_hour_segments_view,
        "port_groups_raw": port_groups_view,
        "port_tops_raw": lambda: port_tops_view(d),
        "packets": lambda: packets_view(d, "packets_raw", names_by_bit),
        "series": lambda: series_view(d, home),
        "sessions": lambda: sessions_view(d),
        "logins": lambda: logins_view(d),
        "indicators": lambda: indicators_view(d),
        "probes": lambda: f"SELECT {', '.join(stored.probes)} FROM probes_stored",
        # Rows an ingest set aside (implausible timestamps, days over an input's
        # budget): the logical columns, for inspection only; no analysis reads them.
        "quarantine": lambda: raw_view(d, "packets_quarantine_stored", stored.quarantine),
    }
