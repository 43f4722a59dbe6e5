"""Statements about source addresses: one source's profile, and the sources a notification
feed names.

A source is filtered on the *stored* address columns (``src_ip4``, an integer;
``src_ip6``, 16 bytes) — never on the text the friendly views compute — so the
engine pushes the comparison down into the Parquet scan (row-group statistics,
then a filter before the other columns are read) instead of turning every row's
address into text. IPv6 addresses are written as ``unhex('…')``, a function both
engines share.

The feed's statement reads the hourly rollup (``port_hours_raw``: packets to a
captured TCP/UDP port per hour, port and source) plus the sessions and logins,
so it never scans the packets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from teiten.schema import HOUR_NS
from teiten.sql.dialect import Dialect
from teiten.sql.expressions import has_fingerprint, proto_text, quote
from teiten.sql.statement import statement

_HEX = re.compile(r"[0-9A-F]{0,32}")


def _unhex(hex_digits: str) -> str:
    if not _HEX.fullmatch(hex_digits) or len(hex_digits) % 2:
        raise ValueError(f"not upper-case hex bytes: {hex_digits!r}")
    return f"unhex('{hex_digits}')"


@dataclass(frozen=True)
class Source:
    """One source address in the form the stored columns hold it."""

    version: int
    ip4: int = 0
    ip6_hex: str = ""
    """32 upper-case hex digits of an IPv6 address ('' for IPv4)."""

    @classmethod
    def of(cls, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Source:
        if ip.version == 4:
            return cls(4, int(ip))
        return cls(6, 0, ip.packed.hex().upper())

    @classmethod
    def from_key(cls, a4: int, a6: str) -> Source:
        """The source of a result's key columns (``a4``, ``a6``, see :func:`suspect_sources`)."""
        return cls(6, 0, a6) if a6 else cls(4, int(a4))

    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        if self.version == 4:
            return ipaddress.IPv4Address(int(self.ip4))
        return ipaddress.IPv6Address(bytes.fromhex(self.ip6_hex))

    def where(self, side: str = "src") -> str:
        """The rows from this address (``side`` ``dst``: to it), the stored-column comparison
        first, so it is pushed down."""
        if side not in ("src", "dst"):
            raise ValueError(f"side must be src or dst, not {side!r}")
        if self.version == 4:
            return f"{side}_ip4 = {int(self.ip4)} AND ip_version = 4"
        return f"{side}_ip6 = {_unhex(self.ip6_hex)} AND ip_version = 6"


@dataclass(frozen=True)
class Network:
    """The sources a feed keeps: one address range (a prefix), or one AS, or all."""

    version: int = 0
    """4 or 6 for a prefix; 0 when not filtering by prefix."""
    low4: int = 0
    high4: int = 0
    """IPv4: ``low4 ≤ src_ip4 ≤ high4``."""
    hex6: str = ""
    """IPv6: the upper-case hex digits the address's hex text starts with."""
    asn: int | None = None
    """Only sources announced by this AS (known from the packets only)."""

    @classmethod
    def prefix(cls, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Network:
        if net.version == 4:
            return cls(4, int(net.network_address), int(net.broadcast_address))
        if net.prefixlen % 4:
            raise ValueError("an IPv6 prefix length must be a multiple of 4")
        digits = net.network_address.packed.hex().upper()[: net.prefixlen // 4]
        return cls(6, hex6=digits)

    def where(self, rollup: bool) -> str:
        """`` AND …`` keeping the rows of the range (and of the AS, in the rollup's rows)."""
        out = ""
        if self.version == 4:
            out += f" AND src_ip4 >= {int(self.low4)} AND src_ip4 <= {int(self.high4)}"
            out += " AND ip_version = 4"
        elif self.version == 6:
            if not _HEX.fullmatch(self.hex6):
                raise ValueError(f"not upper-case hex digits: {self.hex6!r}")
            out += f" AND substr(hex(src_ip6), 1, {len(self.hex6)}) = '{self.hex6}'"
            out += " AND ip_version = 6"
        if self.asn is not None and rollup:
            out += f" AND src_asn = {int(self.asn)}"
        return out


def _fp_sums(d: Dialect, names_by_bit: Sequence[tuple[int, str]], weight: str) -> str:
    """``, sum(…) AS fp<bit>`` for each fingerprint: the rows (weighted) carrying it."""
    return "".join(
        f", sum(CASE WHEN {has_fingerprint(d, b)} THEN {weight} ELSE 0 END) AS fp{int(b)}"
        for b, _ in names_by_bit
    )


def _seconds(expr: str) -> str:
    """A timestamp (µs, as the views') of a seconds-since-the-epoch expression."""
    return f"CAST({expr} AS BIGINT) * 1000000000"


@statement
def source_packets(d: Dialect, src: Source, names_by_bit: Sequence[tuple[int, str]]) -> str:
    """One source's inbound packets: count, first/last second, country, AS, how many ports,
    and per fingerprint bit ``fp<bit>`` the packets carrying it (one row; count 0 if none).

    Reads ``source_ports_raw``, whose rows are sorted by source: one row group of each
    file, not the packets."""
    port = "proto * 65536 + dst_port"  # one number per protocol and port: no text per row
    return f"""
SELECT CAST(coalesce(sum(packets), 0) AS BIGINT) AS packets,
       {d.timestamp_ns(_seconds("min(first_s)"))} AS first_seen,
       {d.timestamp_ns(_seconds("max(last_s)"))} AS last_seen,
       max(CASE WHEN src_cc_code > 0 THEN src_cc END) AS country,
       max(CASE WHEN src_asn > 0 THEN src_asn END) AS asn,
       max(CASE WHEN src_as_org <> '' THEN src_as_org END) AS as_org,
       count(DISTINCT CASE WHEN counted THEN {port} END) AS ports
       {_fp_sums(d, names_by_bit, "packets")}
FROM source_ports_raw
WHERE {src.where()}"""


@statement
def source_received(d: Dialect, src: Source) -> str:
    """How many rollup hours and sessions an address *received* (``n``): more than 0 makes it
    the sensor's own."""
    return f"""
SELECT count(*) AS n FROM (
    SELECT hour FROM address_hours_raw WHERE {src.where("dst")}
    UNION ALL
    SELECT 0 AS hour FROM sessions_stored WHERE {src.where("dst")}
) AS received"""


@statement
def source_ports(d: Dialect, src: Source, *, limit: int) -> str:
    """One source's packets per destination port (port rule), most packets first, with the
    first and last second (``source_ports_raw``)."""
    return f"""
SELECT {proto_text()} AS proto_name, CAST(dst_port AS INT) AS port,
       CAST(sum(packets) AS BIGINT) AS packets,
       {d.timestamp_ns(_seconds("min(first_s)"))} AS first_seen,
       {d.timestamp_ns(_seconds("max(last_s)"))} AS last_seen
FROM source_ports_raw
WHERE {src.where()} AND counted
GROUP BY 1, 2
ORDER BY packets DESC, proto_name, port
LIMIT {int(limit)}"""


@statement
def source_sessions(d: Dialect, src: Source, *, limit: int) -> str:
    """One source's latest sessions with their classification, newest first."""
    return f"""
SELECT s.id AS id, {d.timestamp_ns("s.ts_first")} AS ts_first, CAST(s.dst_port AS INT) AS dst_port,
       {proto_text("s.proto")} AS proto, CASE WHEN s.kind = '' THEN NULL ELSE s.kind END AS kind,
       s.cves AS cves, s.signatures AS signatures
FROM sessions_stored AS s
WHERE {src.where()}
ORDER BY s.ts_first DESC, s.id DESC
LIMIT {int(limit)}"""


@statement
def source_session_kinds(d: Dialect, src: Source) -> str:
    """One source's sessions per kind and list of CVEs (``kind``, ``cves``, ``sessions``,
    ``first_ns``, ``last_ns``)."""
    return f"""
SELECT CASE WHEN kind = '' THEN NULL ELSE kind END AS kind, cves, count(*) AS sessions,
       min(ts_first) AS first_ns, max(ts_last) AS last_ns
FROM sessions_stored
WHERE {src.where()}
GROUP BY kind, cves"""


@statement
def source_logins(d: Dialect, src: Source, *, limit: int) -> str:
    """One source's latest login attempts (username, password, time), newest first."""
    return f"""
SELECT {d.timestamp_ns("g.ts")} AS ts, CAST(g.dst_port AS INT) AS dst_port,
       g.username AS username, g.password AS password,
       CASE g.success WHEN 1 THEN TRUE WHEN 0 THEN FALSE END AS success, g.mirai_dict AS mirai_dict
FROM logins_stored AS g
WHERE {src.where()}
ORDER BY g.ts DESC, g.username, g.password
LIMIT {int(limit)}"""


@statement
def source_login_counts(d: Dialect, src: Source) -> str:
    """One source's login attempts, distinct credential pairs, pairs from Mirai's table, and
    the first and last attempt (ns)."""
    return f"""
SELECT CAST(coalesce(sum(n), 0) AS BIGINT) AS attempts, count(*) AS pairs,
       CAST(coalesce(sum(mirai), 0) AS BIGINT) AS mirai_pairs,
       min(first_ns) AS first_ns, max(last_ns) AS last_ns
FROM (
    SELECT username, password, max(CASE WHEN mirai_dict THEN 1 ELSE 0 END) AS mirai,
           count(*) AS n, min(ts) AS first_ns, max(ts) AS last_ns
    FROM logins_stored
    WHERE {src.where()}
    GROUP BY username, password
) AS pairs"""


def _key() -> str:
    """The key columns of a source in any table: ``a4`` (0 for IPv6), ``a6`` ('' for IPv4)."""
    return "CAST(src_ip4 AS BIGINT) AS a4, coalesce(hex(src_ip6), '') AS a6"


@dataclass(frozen=True)
class Suspicion:
    """What makes a source a suspect for a feed (the thresholds of ``teiten.tags``)."""

    fingerprint_bit: int
    """A bot's fingerprint (Mirai) …"""
    share: float
    """… on at least this share of the source's port-counted packets;"""
    logins: int
    """or at least this many login attempts; or any session classified to a CVE."""


@statement
def suspect_sources(
    d: Dialect,
    names_by_bit: Sequence[tuple[int, str]],
    suspicion: Suspicion,
    *,
    start_ns: int,
    end_ns: int,
    network: Network = Network(),
    limit: int,
) -> str:
    """Sources whose evidence in ``[start_ns, end_ns)`` meets ``suspicion``, with that evidence.

    Per source (``a4``, ``a6``): ``packets`` to captured ports (rollup), ``first_ns`` and
    ``last_ns`` (the rollup's hours, and the sessions' and logins' times), ``asn``,
    ``country``, ``ports`` (distinct), ``fp<bit>`` per fingerprint, ``sessions``,
    ``exploits`` (sessions classified to a CVE), ``cves`` (merged), ``logins``. With an
    AS filter only sources seen in the packets are kept (sessions carry no AS).
    """

    def within(col: str) -> str:
        return f"{col} >= {int(start_ns)} AND {col} < {int(end_ns)}"

    fps = _fp_sums(d, names_by_bit, "packets")
    fp_cols = "".join(f", coalesce(p.fp{int(b)}, 0) AS fp{int(b)}" for b, _ in names_by_bit)
    join = "LEFT" if network.asn is not None else "FULL OUTER"
    bot = f"coalesce(p.fp{int(suspicion.fingerprint_bit)}, 0)"
    return f"""
WITH p AS (
    SELECT {_key()}, CAST(sum(packets) AS BIGINT) AS packets, min(ts) AS first_ns,
           max(ts) + {HOUR_NS - 1} AS last_ns, max(src_asn) AS asn,
           max(CASE WHEN src_cc_code > 0 THEN src_cc END) AS country,
           count(DISTINCT proto * 65536 + dst_port) AS ports{fps}
    FROM port_hours_raw
    WHERE {within("ts")}{network.where(True)}
    GROUP BY 1, 2
), s AS (
    SELECT {_key()}, count(*) AS sessions,
           count(*) FILTER (WHERE {d.list_len("cves")} > 0) AS exploits,
           {d.merged_list("cves")} AS cves, min(ts_first) AS first_ns, max(ts_last) AS last_ns
    FROM sessions_stored
    WHERE {within("ts_first")}{network.where(False)}
    GROUP BY 1, 2
), g AS (
    SELECT {_key()}, count(*) AS logins, min(ts) AS first_ns, max(ts) AS last_ns
    FROM logins_stored
    WHERE {within("ts")}{network.where(False)}
    GROUP BY 1, 2
)
SELECT coalesce(p.a4, s.a4, g.a4) AS a4, coalesce(p.a6, s.a6, g.a6) AS a6,
       coalesce(p.packets, 0) AS packets,
       least(p.first_ns, s.first_ns, g.first_ns) AS first_ns,
       greatest(p.last_ns, s.last_ns, g.last_ns) AS last_ns,
       CASE WHEN p.asn > 0 THEN p.asn END AS asn, p.country AS country,
       coalesce(p.ports, 0) AS ports{fp_cols},
       coalesce(s.sessions, 0) AS sessions, coalesce(s.exploits, 0) AS exploits, s.cves AS cves,
       coalesce(g.logins, 0) AS logins
FROM p {join} JOIN s ON p.a4 = s.a4 AND p.a6 = s.a6
       {join} JOIN g ON coalesce(p.a4, s.a4) = g.a4 AND coalesce(p.a6, s.a6) = g.a6
WHERE ({bot} > 0 AND {bot} >= {float(suspicion.share)!r} * coalesce(p.packets, 0))
   OR coalesce(s.exploits, 0) > 0 OR coalesce(g.logins, 0) >= {int(suspicion.logins)}
ORDER BY a4, a6
LIMIT {int(limit)}"""


def _among(sources: Sequence[Source]) -> str:
    """The rows of a bounded list of sources (``FALSE`` for none)."""
    v4 = ", ".join(str(int(s.ip4)) for s in sources if s.version == 4)
    v6 = ", ".join(
        f"'{s.ip6_hex}'" for s in sources if s.version == 6 and _HEX.fullmatch(s.ip6_hex)
    )
    terms = [f"(ip_version = 4 AND src_ip4 IN ({v4}))"] * bool(v4)
    terms += [f"(ip_version = 6 AND hex(src_ip6) IN ({v6}))"] * bool(v6)
    return f"({' OR '.join(terms) or 'FALSE'})"


@statement
def sources_top_ports(d: Dialect, sources: Sequence[Source], *, start_ns: int, end_ns: int) -> str:
    """Packets per source (``a4``, ``a6``) and port over ``[start_ns, end_ns)`` (rollup),
    for a bounded list of sources; ``port`` is ``23/tcp``."""
    return f"""
SELECT {_key()}, concat(CAST(dst_port AS STRING), '/', {proto_text()}) AS port,
       CAST(sum(packets) AS BIGINT) AS packets
FROM port_hours_raw
WHERE ts >= {int(start_ns)} AND ts < {int(end_ns)} AND {_among(sources)}
GROUP BY 1, 2, 3"""


@statement
def sources_fingerprints(
    d: Dialect,
    sources: Sequence[Source],
    names_by_bit: Sequence[tuple[int, str]],
    *,
    start_ns: int,
    end_ns: int,
) -> str:
    """Packets (rollup) and per fingerprint bit ``fp<bit>`` the packets carrying it, per
    source (``a4``, ``a6``), for a bounded list of sources."""
    return f"""
SELECT {_key()}, CAST(sum(packets) AS BIGINT) AS packets{_fp_sums(d, names_by_bit, "packets")}
FROM port_hours_raw
WHERE ts >= {int(start_ns)} AND ts < {int(end_ns)} AND {_among(sources)}
GROUP BY 1, 2"""


@statement
def sources_logins(d: Dialect, sources: Sequence[Source], *, start_ns: int, end_ns: int) -> str:
    """Login attempts per source (``a4``, ``a6``), for a bounded list of sources."""
    return f"""
SELECT {_key()}, count(*) AS logins
FROM logins_stored
WHERE ts >= {int(start_ns)} AND ts < {int(end_ns)} AND {_among(sources)}
GROUP BY 1, 2"""


@statement
def session_sources(d: Dialect, kinds: Sequence[str]) -> str:
    """The source (``a4``, ``a6``) of every session of the given kinds that named indicators
    (the sessions a STIX feed cites, ``teiten.sql.sessions.malicious_sessions``)."""
    listed = ", ".join(quote(k) for k in kinds) or "NULL"
    return f"""
SELECT id, {_key()}
FROM sessions_stored
WHERE {d.list_len("indicators")} > 0 AND kind IN ({listed})"""


@statement
def sources_cves(d: Dialect, sources: Sequence[Source], *, start_ns: int, end_ns: int) -> str:
    """Sessions per source (``a4``, ``a6``) and list of CVEs, over ``[start_ns, end_ns)``,
    for a bounded list of sources (sessions classified to no CVE left out)."""
    return f"""
SELECT {_key()}, cves, count(*) AS sessions
FROM sessions_stored
WHERE ts_first >= {int(start_ns)} AND ts_first < {int(end_ns)} AND {d.list_len("cves")} > 0
  AND {_among(sources)}
GROUP BY 1, 2, 3"""


@statement
def sensor_keys(d: Dialect) -> str:
    """Every address that received packets (from the hourly rollup) or sessions, as source
    keys (``a4``, ``a6``): the sensor's own, never to be listed as a source."""
    return """
SELECT DISTINCT CAST(dst_ip4 AS BIGINT) AS a4, coalesce(hex(dst_ip6), '') AS a6
FROM address_hours_raw
UNION
SELECT DISTINCT CAST(dst_ip4 AS BIGINT) AS a4, coalesce(hex(dst_ip6), '') AS a6
FROM sessions_stored"""
