"""The friendly SQL views over the stored tables, generated from declarations.

Storage is compact (integer IPv4 addresses, ns timestamps, fingerprint
bitmasks); the views show text addresses, timestamps, protocol names and
fingerprint names. One :class:`Dialect` per engine supplies the few
expressions that differ between DuckDB and Spark SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from teiten.schema import DECODE_ERRORS, PACKETS, PORT_CAPTURED, decode_error_code
from teiten.store.layout import ADDED_LATER, logical_sql

PROTO_NAMES: dict[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


@dataclass(frozen=True)
class Dialect:
    """Engine-specific SQL pieces."""

    name: str
    timestamp_ns: Callable[[str], str]
    """Expression turning an int64 ns column into a UTC TIMESTAMP."""
    ip6_text: Callable[[str], str]
    """Expression turning a 16-byte binary column into IPv6 text."""
    non_null_list: Callable[[str], str]
    """Expression for the list of the non-null items of a comma-separated SQL list."""
    xor: Callable[[str, str], str]
    """Bitwise XOR of two BIGINT expressions."""
    intdiv: Callable[[str, str], str]
    """Integer division of two BIGINT expressions."""
    source_file: str
    """Expression for the path of the Parquet file a row was read from."""


DUCKDB = Dialect(
    "duckdb",
    timestamp_ns=lambda c: f"make_timestamp({c} // 1000)",
    ip6_text=lambda c: f"teiten_ip6_text({c})",
    non_null_list=lambda items: f"list_filter([{items}], lambda x: x IS NOT NULL)",
    xor=lambda a, b: f"xor({a}, {b})",
    intdiv=lambda a, b: f"({a} // {b})",
    source_file="filename",
)

SPARK = Dialect(
    "spark",
    timestamp_ns=lambda c: f"timestamp_micros({c} div 1000)",
    ip6_text=lambda c: f"teiten_ip6_text({c})",
    non_null_list=lambda items: f"filter(array({items}), x -> x IS NOT NULL)",
    xor=lambda a, b: f"({a} ^ {b})",
    intdiv=lambda a, b: f"({a} div {b})",
    source_file="input_file_name()",
)


def ip4_text(col: str) -> str:
    """Portable SQL for dotted-quad text of an integer IPv4 column."""
    parts = [f"({col} >> {s}) & 255" if s else f"{col} & 255" for s in (24, 16, 8, 0)]
    return "concat_ws('.', " + ", ".join(f"CAST({p} AS VARCHAR(3))" for p in parts) + ")"


def address_text(d: Dialect, side: str) -> str:
    return (
        f"CASE ip_version WHEN 4 THEN {ip4_text(side + '_ip4')}"
        f" WHEN 6 THEN {d.ip6_text(side + '_ip6')} END"
    )


def proto_text() -> str:
    whens = " ".join(f"WHEN {n} THEN '{t}'" for n, t in sorted(PROTO_NAMES.items()))
    return f"CASE proto {whens} ELSE CAST(proto AS VARCHAR(3)) END"


def decode_error_text() -> str:
    whens = " ".join(f"WHEN {i} THEN '{n}'" for i, n in enumerate(DECODE_ERRORS) if n)
    return f"CASE decode_error {whens} END"


def port_rule() -> str:
    """SQL condition: the row is a TCP/UDP packet whose destination port was captured.

    The one rule every per-port query uses (``ports``, the ``series`` view,
    ``trend``, ``detect``): see :data:`teiten.schema.PORT_CAPTURED`.
    """
    codes = ", ".join(str(decode_error_code(n)) for n in PORT_CAPTURED)
    return f"(proto IN (6, 17) AND decode_error IN ({codes}))"


def fingerprint_list(d: Dialect, names_by_bit: list[tuple[int, str]]) -> str:
    """SQL for the list of fingerprint names set in the ``fp`` bitmask."""
    items = ", ".join(f"CASE WHEN (fp >> {b}) & 1 = 1 THEN '{n}' END" for b, n in names_by_bit)
    return d.non_null_list(items or "CAST(NULL AS VARCHAR)")


def packets_view(d: Dialect, source: str, names_by_bit: list[tuple[int, str]]) -> str:
    """``SELECT`` of the friendly ``packets`` view over the stored rows in ``source``."""
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
    CAST(src_port AS INTEGER) AS src_port,
    CAST(dst_port AS INTEGER) AS dst_port,
    CAST(tcp_flags AS INTEGER) AS tcp_flags,
    CAST(tcp_seq AS BIGINT) AS tcp_seq,
    CAST(tcp_ack AS BIGINT) AS tcp_ack,
    CAST(tcp_window AS INTEGER) AS tcp_window,
    CAST(tcp_options_len AS INTEGER) AS tcp_options_len,
    CAST(tcp_mss AS INTEGER) AS tcp_mss,
    CAST(ip_id AS INTEGER) AS ip_id,
    CAST(ip_ttl AS INTEGER) AS ip_ttl,
    CAST(ip_len AS INTEGER) AS ip_len,
    CAST(ip_frag AS INTEGER) AS ip_frag,
    CAST(payload_len AS INTEGER) AS payload_len,
    CASE WHEN src_cc = '' THEN NULL ELSE src_cc END AS src_cc,
    CASE WHEN src_asn = 0 THEN NULL ELSE CAST(src_asn AS BIGINT) END AS src_asn,
    CASE WHEN src_as_org = '' THEN NULL ELSE CAST(src_as_org AS VARCHAR) END AS src_as_org,
    {fingerprint_list(d, names_by_bit)} AS fingerprints,
    CASE WHEN is_outbound THEN 'out' ELSE 'in' END AS direction,
    {decode_error_text()} AS decode_error,
    CAST(input_id AS BIGINT) AS input_id
FROM {source}"""


def raw_view(d: Dialect, source: str, present: set[str] | None = None) -> str:
    """``SELECT`` of ``packets_raw``: the logical columns (teiten.schema) over stored rows.

    ``source`` must provide the stored columns plus the hive path column
    ``sensor``; ``present`` names the stored columns the files have (columns
    added in later releases read as their default in older stores).
    """
    exprs = logical_sql(d.xor, d.intdiv)
    if present is not None:
        for name, default in ADDED_LATER.items():
            if name not in present:
                exprs[name] = default
    exprs["input_id"] = (
        f"CAST(regexp_extract({d.source_file}, 'in([0-9]+)-[0-9]+[.]parquet$', 1) AS BIGINT)"
    )
    exprs["sensor"] = "sensor"
    names = [c.name for c in PACKETS] + ["src_cc_code"]
    cols = ",\n    ".join(f"{exprs[n]} AS {n}" if exprs[n] != n else n for n in names)
    return f"SELECT\n    {cols}\nFROM {source}"


def series_view(home_country: str) -> str:
    """``SELECT`` of the ``series`` view: inbound packets and sources per UTC day,
    protocol, destination port and segment (domestic / foreign / unknown)."""
    from teiten.enrich.country import country_code

    home = country_code(home_country)
    return f"""
SELECT
    DATE '1970-01-01' + CAST(ts // 86400000000000 AS INTEGER) AS date,
    {proto_text()} AS proto,
    CAST(dst_port AS INTEGER) AS port,
    CASE WHEN src_cc_code = {home} THEN 'domestic' WHEN src_cc_code = 0 THEN 'unknown'
         ELSE 'foreign' END AS segment,
    count(*) AS packets,
    count(DISTINCT src_ip4) FILTER (WHERE ip_version = 4)
      + count(DISTINCT src_ip6) FILTER (WHERE ip_version = 6) AS sources,
    count(DISTINCT src_ip4 >> 8) FILTER (WHERE ip_version = 4) AS sources24
FROM packets_raw
WHERE NOT is_outbound AND {port_rule()}
GROUP BY 1, 2, 3, 4"""


def _ts(d: Dialect, col: str) -> str:
    return d.timestamp_ns(col)


def payload_views(d: Dialect) -> dict[str, str]:
    """``SELECT``s of the ``sessions``, ``logins`` and ``indicators`` views."""
    sessions = f"""
SELECT
    id,
    {_ts(d, "ts_first")} AS ts_first,
    {_ts(d, "ts_last")} AS ts_last,
    sensor,
    {address_text(d, "src")} AS src,
    CAST(src_port AS INTEGER) AS src_port,
    {address_text(d, "dst")} AS dst,
    CAST(dst_port AS INTEGER) AS dst_port,
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
    gap, truncated, client_bytes, server_bytes, details,
    CAST(regexp_extract({d.source_file}, 'in([0-9]+)-[0-9]+[.]parquet$', 1) AS BIGINT)
        AS input_id,
    ts_first AS ts_first_ns
FROM sessions_stored"""
    src = (
        f"CASE ip_version WHEN 4 THEN {ip4_text('src_ip4')} WHEN 6 THEN {d.ip6_text('src_ip6')} END"
    )
    logins = f"""
SELECT
    {_ts(d, "ts")} AS ts,
    sensor,
    {src} AS src,
    CAST(dst_port AS INTEGER) AS dst_port,
    username,
    password,
    CASE success WHEN 1 THEN TRUE WHEN 0 THEN FALSE END AS success,
    mirai_dict,
    commands
FROM logins_stored"""
    indicators = """
SELECT
    type,
    value,
    min(ts_first) AS first_seen,
    max(ts_last) AS last_seen,
    count(*) AS sessions,
    count(DISTINCT src) AS sources,
    list_sort(list_distinct(flatten(list(signatures)))) AS signatures
FROM (
    SELECT unnest(indicator_types) AS type, unnest(indicators) AS value,
           ts_first, ts_last, src, signatures
    FROM sessions
)
GROUP BY type, value"""
    return {"sessions": sessions, "logins": logins, "indicators": indicators}
