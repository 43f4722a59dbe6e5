"""The column tables teiten stores, declared once as data.

Everything else derives from these declarations: the numpy dtypes the decoder
fills, the Arrow schema and Parquet encodings the store writes, and the data
model page in the docs (``docs/data-model.md`` is checked against it by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

from teiten.schema.column import Column as Column
from teiten.schema.daytables import (
    PORT_GROUPS,
    PORT_HOUR_SEGMENTS,
    PORT_SEGMENTS,
    PORT_SKETCHES,
    PORT_TOPS,
)

# Reasons a packet could not be decoded completely. Code 0 means none.
# Declared as data: the decoder writes the code, views and reports show the name.
DECODE_ERRORS: tuple[str, ...] = (
    "",  # 0: decoded
    "unsupported_link",  # 1: link type teiten does not decode
    "truncated_link",  # 2: capture ends inside the link header
    "not_ip",  # 3: link payload is not IPv4/IPv6 (ARP, LLDP, …)
    "truncated_ip",  # 4: capture ends inside the IP header
    "bad_ip_header",  # 5: IPv4 IHL < 5, total length < header, version mismatch
    "truncated_l4",  # 6: capture ends inside the TCP/UDP/ICMP header
    "bad_tcp_header",  # 7: TCP data offset < 5
    "truncated_ext",  # 8: IPv6 extension header chain runs past the capture
    "fragment",  # 9: a non-first IPv4/IPv6 fragment: no transport header, so no ports
    "truncated_ports",  # 10: capture ends before the TCP/UDP destination port
)


PORT_CAPTURED: tuple[str, ...] = ("", "truncated_l4", "bad_tcp_header")
"""Decode states of a TCP/UDP packet whose destination port was captured.

The one port rule: an inbound TCP or UDP packet counts for its destination
port when its ``decode_error`` is one of these (a header cut after the ports
still counts; a non-first ``fragment`` and ``truncated_ports`` never do).
:func:`teiten.sql.expressions.port_rule` is its SQL form, used by every query.
"""


def decode_error_code(name: str) -> int:
    """Code of a decode-error reason, e.g. ``decode_error_code("truncated_ip") == 4``."""
    return DECODE_ERRORS.index(name)


PACKETS: tuple[Column, ...] = (
    Column("ts", "int64", "Capture time, ns since the epoch, UTC.", "delta"),
    Column("sensor", "str", "Sensor name given at ingest.", "dict"),
    Column("input_id", "uint32", "Catalog id of the input file the packet came from.", "dict"),
    Column("ip_version", "uint8", "4 or 6; 0 when the packet is not IP.", "dict"),
    Column("src_ip4", "uint32", "IPv4 source address as an integer (0 for IPv6).", "plain"),
    Column("dst_ip4", "uint32", "IPv4 destination address as an integer (0 for IPv6).", "dict"),
    Column("src_ip6", "bytes16", "IPv6 source address (null for IPv4).", "plain", True),
    Column("dst_ip6", "bytes16", "IPv6 destination address (null for IPv4).", "dict", True),
    Column(
        "proto", "uint8", "IP protocol number of the transport header (6 TCP, 17 UDP…).", "dict"
    ),
    Column("src_port", "uint16", "TCP/UDP source port; ICMP type.", "plain"),
    Column("dst_port", "uint16", "TCP/UDP destination port; ICMP code.", "dict"),
    Column("tcp_flags", "uint8", "TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16…).", "dict"),
    Column("tcp_seq", "uint32", "TCP sequence number.", "plain"),
    Column("tcp_ack", "uint32", "TCP acknowledgement number.", "plain"),
    Column("tcp_window", "uint16", "TCP window (unscaled).", "dict"),
    Column("tcp_options_len", "uint8", "Bytes of TCP options (data offset × 4 − 20).", "dict"),
    Column("tcp_mss", "uint16", "TCP MSS option value, 0 when absent.", "dict"),
    Column(
        "ip_id", "uint16", "IPv4 identification (IPv6: low 16 bits of the fragment id).", "plain"
    ),
    Column("ip_ttl", "uint8", "IPv4 TTL or IPv6 hop limit.", "dict"),
    Column("ip_len", "uint16", "IP total length in bytes as stated in the header.", "dict"),
    Column(
        "ip_frag", "uint16", "IPv4 flags and fragment offset field (DF 0x4000, MF 0x2000).", "dict"
    ),
    Column("payload_len", "uint16", "Transport payload bytes as stated by the headers.", "dict"),
    Column("fp", "uint32", "Bitmask of scanner fingerprints (see teiten.fingerprint).", "dict"),
    Column("src_cc", "str", "ISO country the source address is allocated to ('' unknown).", "dict"),
    Column(
        "src_asn", "uint32", "Autonomous system of the source (0 unknown or no ASN source).", "dict"
    ),
    Column("src_as_org", "str", "Name of the source's autonomous system ('' unknown).", "dict"),
    Column(
        "is_outbound", "bool", "True when the source is inside the sensor's own networks.", "dict"
    ),
    Column("decode_error", "uint8", "Decode-error code (see DECODE_ERRORS), 0 if none.", "dict"),
)

# Columns the decoder fills (the rest are filled by the pipeline: sensor,
# input_id, fp, src_cc, is_outbound).
DECODED: tuple[str, ...] = tuple(
    c.name
    for c in PACKETS
    if c.name not in {"sensor", "input_id", "fp", "src_cc", "src_asn", "src_as_org", "is_outbound"}
)

# The typed evidence of a session (the ``notes``, ``requests``, ``telnet`` and
# ``honeypot`` columns of SESSIONS): lists and structs of text, each bounded by
# its ``limit`` (strings in characters, lists in items). Bots send the same
# requests over and over, so the text a parser takes from them is declared
# ``dict``: on the payload-heavy mix every such leaf was as small or smaller with a
# dictionary (headers 0.54 -> 0.34 bytes a session, signatures 0.14 -> 0.07), and
# Arrow's writer falls back to plain pages where one grows past its page limit.
_TEXT = (Column("note", "str", "One item.", limit=256),)


def _pair(value_limit: int) -> tuple[Column, ...]:
    """A name and a value (a header, a SOAP argument), the value up to ``value_limit``."""
    return (
        Column("name", "str", "Name.", "dict", limit=128),
        Column("value", "str", "Value.", "dict", limit=value_limit),
    )


SOAP: tuple[Column, ...] = (
    Column("action", "str", "The action element's name (AddPortMapping…).", "dict", limit=256),
    Column("namespace", "str", "The action element's namespace.", "dict", limit=256),
    Column(
        "header_action",
        "str",
        "The SOAPAction header without quotes ('' if none).",
        "dict",
        limit=512,
    ),
    Column("args", "list_struct", "Arguments in order.", limit=64, fields=_pair(4096)),
    Column(
        "notes",
        "list_str",
        "Parser notes (XML refused, not well-formed…).",
        "dict",
        limit=8,
        fields=_TEXT,
    ),
)
REQUEST: tuple[Column, ...] = (
    Column("method", "str", "HTTP method.", "dict", limit=32),
    Column("target", "str", "Request target as sent.", "dict", limit=2048),
    Column("path", "str", "Path of the target.", "dict", limit=2048),
    Column("version", "str", "HTTP version.", "dict", limit=16),
    Column(
        "headers",
        "list_struct",
        "Headers in order.",
        limit=32,
        fields=_pair(1024),
    ),
    Column("body_length", "uint32", "Body bytes received."),
    Column(
        "soap", "struct", "The SOAP call in the body (null if none).", nullable=True, fields=SOAP
    ),
    Column(
        "signatures",
        "list_str",
        "Ids of the signatures this request matched.",
        "dict",
        limit=64,
        fields=_TEXT,
    ),
    Column("notes", "list_str", "Parser notes on this request.", "dict", limit=8, fields=_TEXT),
)
TELNET: tuple[Column, ...] = (
    Column(
        "lines",
        "list_str",
        "Client lines without negotiation.",
        "dict",
        limit=64,
        fields=(Column("line", "str", "One line.", limit=512),),
    ),
    Column(
        "options",
        "list_str",
        "Client option negotiation (WILL NAWS…).",
        "dict",
        limit=32,
        fields=_TEXT,
    ),
    Column(
        "server_events",
        "list_str",
        "The server's prompts in order (null: unknown).",
        "dict",
        nullable=True,
        limit=32,
        fields=_TEXT,
    ),
)
HONEYPOT: tuple[Column, ...] = (
    Column("name", "str", "Which honeypot (cowrie).", limit=32),
    Column("session", "str", "The honeypot's session id.", limit=128),
    Column("protocol", "str", "ssh, telnet or '' as the honeypot logged it.", limit=16),
    Column("sensor", "str", "Sensor name in the log ('' if none).", limit=128),
    Column("client_version", "str", "SSH client version ('' if none).", limit=256),
    Column(
        "duration_s", "float64", "Session duration in seconds (null if unknown).", nullable=True
    ),
    Column("logins", "uint32", "Login attempts logged."),
    Column("commands", "uint32", "Commands typed."),
    Column(
        "downloads",
        "list_struct",
        "Files fetched or uploaded.",
        limit=16,
        fields=(
            Column("url", "str", "URL ('' for an upload).", limit=1024),
            Column("shasum", "str", "SHA-256 as logged.", limit=128),
            Column("outfile", "str", "Where the honeypot stored it.", limit=256),
        ),
    ),
    Column(
        "failed_downloads",
        "list_str",
        "URLs that failed to download.",
        limit=16,
        fields=(Column("url", "str", "URL.", limit=1024),),
    ),
)

# One row per TCP connection or UDP datagram that carried client payload.
# "src" is the client (the side outside the sensor), "dst" the sensor.
SESSIONS: tuple[Column, ...] = (
    Column("id", "str", "Session id: s<input id>-<number within the input>, stable."),
    Column(
        "ts_first",
        "int64",
        "First payload packet of the session, ns since the epoch, UTC.",
        "delta",
    ),
    Column("ts_last", "int64", "Last packet of the session, ns, UTC.", "delta"),
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("proto", "uint8", "6 (TCP) or 17 (UDP).", "dict"),
    Column("src_ip4", "uint32", "Client IPv4 address (0 for IPv6)."),
    Column("dst_ip4", "uint32", "Sensor IPv4 address (0 for IPv6)."),
    Column("src_ip6", "bytes16", "Client IPv6 address (null for IPv4).", nullable=True),
    Column("dst_ip6", "bytes16", "Sensor IPv6 address (null for IPv4).", nullable=True),
    Column("src_port", "uint16", "Client port."),
    Column("dst_port", "uint16", "Sensor port.", "dict"),
    Column("packets", "uint32", "Payload-carrying packets of the session, both directions."),
    Column("client_total", "uint32", "Client payload bytes seen, including any not kept."),
    Column("gap", "bool", "The client stream has a hole (a segment was not captured)."),
    Column("truncated", "bool", "More client bytes were sent than the per-session cap keeps."),
    Column("src_cc", "str", "Country the client address is allocated to ('' unknown).", "dict"),
    Column("app", "str", "http, telnet or unknown.", "dict"),
    Column("kind", "str", "Strongest kind among matched signatures (exploit, …) or ''.", "dict"),
    Column("signatures", "list_str", "Ids of the payload signatures that matched.", "dict"),
    Column("cves", "list_str", "CVE ids of the matched signatures.", "dict"),
    Column("jvn", "list_str", "JVN ids of the matched signatures.", "dict"),
    Column(
        "indicator_types", "list_str", "Types of the extracted indicators (url, ip, …).", "dict"
    ),
    Column("indicators", "list_str", "Extracted indicators, exact values (never fetched)."),
    Column("method", "str", "HTTP method of the first request ('' if none).", "dict"),
    Column("path", "str", "HTTP path of the first request ('' if none).", "dict"),
    Column("soap_action", "str", "SOAP action of the first request ('' if none).", "dict"),
    Column("client_bytes", "binary", "What the client sent (capped, default 64 KiB)."),
    Column("server_bytes", "binary", "What the sensor answered (capped, default 4 KiB)."),
    Column(
        "notes",
        "list_str",
        "What the parsers and the reader found odd (bounded).",
        "dict",
        limit=32,
        fields=(Column("note", "str", "One note.", limit=256),),
    ),
    Column(
        "requests",
        "list_struct",
        "Each HTTP request the client sent, as parsed.",
        nullable=True,
        limit=16,
        fields=REQUEST,
    ),
    Column(
        "telnet",
        "struct",
        "The Telnet stream as parsed (null unless app is telnet from bytes).",
        nullable=True,
        fields=TELNET,
    ),
    Column(
        "honeypot",
        "struct",
        "What a honeypot logged of the shell (null for captures and sensor events).",
        nullable=True,
        fields=HONEYPOT,
    ),
    Column(
        "evidence_cut",
        "uint32",
        "Evidence values shortened or left out by the declared "
        "limits (0: notes, requests, telnet and honeypot are complete).",
    ),
)

# One row per Telnet login attempt (from captures or Cowrie logs).
LOGINS: tuple[Column, ...] = (
    Column("ts", "int64", "Start of the session the attempt was in, ns, UTC.", "delta"),
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("src_ip4", "uint32", "Client IPv4 address (0 for IPv6)."),
    Column("src_ip6", "bytes16", "Client IPv6 address (null for IPv4).", nullable=True),
    Column("dst_port", "uint16", "Sensor port.", "dict"),
    Column("username", "str", "Username typed.", "dict"),
    Column("password", "str", "Password typed ('' if none was seen).", "dict"),
    Column("success", "int8", "1 logged in, 0 refused, -1 unknown.", "dict"),
    Column("mirai_dict", "bool", "The pair is in the Mirai source's default credential table."),
    Column("commands", "list_str", "Commands typed after the login.", "dict"),
)

# --- Rollups written at ingest (docs/architecture.md, "Rollups") ------------
# Per input, in the same transaction as its packets and partitioned like them:
# aggregates of the packets of the input's day files (never of quarantined rows),
# which the per-port statements read instead of the packets when a window's
# buckets are whole UTC hours. Sources stay exact: every row names its source.

HOUR_NS = 3_600_000_000_000
"""The granularity of the rollups: one UTC hour, in ns."""

DAY_NS = 24 * HOUR_NS
"""One day in ns: the granularity of the day sketches (``port_sketches``)."""

# One row per (UTC hour, protocol, destination port, source address, source
# country, source ASN, fingerprint bitmask) of the inbound TCP/UDP packets the
# port rule counts (PORT_CAPTURED), with their number.
PORT_HOURS: tuple[Column, ...] = (
    Column("hour", "int32", "UTC hour of the packets: hours since the epoch.", "delta"),
    Column("proto", "uint8", "6 (TCP) or 17 (UDP).", "dict"),
    Column("dst_port", "uint16", "Destination port.", "dict"),
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("src_ip4", "uint32", "IPv4 source address as an integer (0 for IPv6).", "delta"),
    Column("src_ip6", "bytes16", "IPv6 source address (null for IPv4).", nullable=True),
    Column(
        "src_cc", "uint16", "Country code of the source (teiten.enrich.country; 0 unknown).", "dict"
    ),
    Column("src_asn", "uint32", "Autonomous system of the source (0 unknown).", "dict"),
    Column("fp", "uint32", "Bitmask of scanner fingerprints of the packets.", "dict"),
    Column("packets", "int64", "Packets of the input with these values in this hour.", "dict"),
)

# One row per (UTC hour, destination address) that received any inbound packet
# (all protocols): what ``active_addresses`` counts, and what tells the sensor's own
# addresses from sources. Sorted by address, then hour (files of earlier releases: by
# hour), with statistics on both, so one address is one row group of each file.
ADDRESS_HOURS: tuple[Column, ...] = (
    Column("hour", "int32", "UTC hour: hours since the epoch.", "delta"),
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("dst_ip4", "uint32", "IPv4 destination (sensor) address (0 for IPv6).", "delta"),
    Column("dst_ip6", "bytes16", "IPv6 destination address (null for IPv4).", nullable=True),
)

# One row per (source address, protocol, destination port, fingerprint bitmask) of
# the inbound packets of a day file, with their number and the seconds of the first
# and the last of them: one source's whole profile (``teiten.store.sourceports``). Packets the port
# rule does not count (ICMP, a port not captured) have ``counted`` false and port 0.
# Rows are sorted by source and their files keep the source columns' statistics, so
# a statement about one source reads one row group of each file, not the packets.
# Seconds, not ns: a row's instants were 14 of its 16 bytes, and a profile is read
# to the second (rows of one packet, most of them, have span 0 and cost nothing).
SOURCE_PORTS: tuple[Column, ...] = (
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("src_ip4", "uint32", "IPv4 source address as an integer (0 for IPv6).", "delta"),
    Column("src_ip6", "bytes16", "IPv6 source address (null for IPv4).", nullable=True),
    Column("proto", "uint8", "IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 …).", "dict"),
    Column("dst_port", "uint16", "Destination port (0 where ``counted`` is false).", "dict"),
    Column("counted", "bool", "Whether the port rule counts the packets (PORT_CAPTURED).", "dict"),
    Column("fp", "uint32", "Bitmask of scanner fingerprints of the packets.", "dict"),
    Column("src_cc", "uint16", "Country code of the source (0 unknown).", "dict"),
    Column("src_asn", "uint32", "Autonomous system of the source (0 unknown).", "dict"),
    Column("src_as_org", "str", "Name of the source's AS ('' unknown).", "dict"),
    Column("packets", "int64", "Packets of the day file with these values."),
    Column("first_s", "uint32", "Second of the first of them, since the epoch, UTC (floor)."),
    Column("span_s", "uint32", "Seconds from the first to the second of the last of them."),
)

ROLLUP_ROW_GROUP_ROWS: dict[str, int] = {"source_ports": 1 << 17, "address_hours": 1 << 17}
"""Rows per row group of the rollups sorted by address, in their files and packs alike:
one address's rows are read as the one or two row groups holding them."""

ROLLUPS: dict[str, tuple[Column, ...]] = {
    "port_hours": PORT_HOURS,
    "address_hours": ADDRESS_HOURS,
    "source_ports": SOURCE_PORTS,
    "port_sketches": PORT_SKETCHES,
    "port_segments": PORT_SEGMENTS,
    "port_hour_segments": PORT_HOUR_SEGMENTS,
    "port_groups": PORT_GROUPS,
    "port_tops": PORT_TOPS,
}
"""The rollup tables, each written beside every packet day file of an input."""

LEGACY_ROLLUPS = ("port_days", "port_day_totals")
"""Rollup tables of earlier releases (day sketches as one row per register, totals
without registers): readers ignore them, ``teiten rollup`` drops them."""

ROLLUP_STATISTICS: dict[str, tuple[str, ...]] = {
    "port_hours": ("hour",),
    "address_hours": ("hour", "ip_version", "dst_ip4", "dst_ip6"),
    "port_sketches": ("busy", "day", "proto", "dst_port"),
    "port_segments": ("busy", "day", "proto", "dst_port"),
    "port_hour_segments": ("busy", "day", "proto", "dst_port", "hour"),
    "port_groups": ("busy", "day", "proto", "dst_port"),
    "port_tops": ("busy", "day", "proto", "dst_port"),
    "source_ports": ("ip_version", "src_ip4", "src_ip6"),
}
"""The columns whose Parquet statistics a rollup's files keep (what filters skip by)."""

TABLES: dict[str, tuple[Column, ...]] = {
    "packets": PACKETS,
    "sessions": SESSIONS,
    "logins": LOGINS,
    **ROLLUPS,
}


def column(table: str, name: str) -> Column:
    """Look up one declared column, e.g. ``column("packets", "tcp_seq").dtype == "uint32"``."""
    for c in TABLES[table]:
        if c.name == name:
            return c
    raise KeyError(f"{table}.{name}")


# --- Back-check results and alert state ------------------------------------
# Declared like the tables above. ``timestamp_us`` is a UTC timestamp in
# microseconds; nullable columns of ``probes`` are fields a probe may not have.

# One row per (target, port, probe) of a back-check run or an imported scan
# (teiten.backcheck.model.Probe; columns in its field order). Stored in Parquet
# like the captured tables: probes/sensor=S/date=D/inNNNNNN-PPP.parquet.
PROBES: tuple[Column, ...] = (
    Column("target", "str", "Address that was probed (a source seen by the sensor)."),
    Column("port", "int32", "Port probed."),
    Column("proto", "str", "tcp or udp."),
    Column("probe", "str", "connect, http, telnet, ssdp (prober); port, banner… (imports)."),
    Column("state", "str", "open, closed, filtered (no answer in time) or error."),
    Column("path", "str", "HTTP path requested.", nullable=True),
    Column("http_status", "int32", "HTTP status of the answer.", nullable=True),
    Column("server_header", "str", "HTTP Server header (capped).", nullable=True),
    Column("title", "str", "HTML title, or the realm of an auth challenge.", nullable=True),
    Column("manufacturer", "str", "UPnP manufacturer.", nullable=True),
    Column("model", "str", "UPnP model name.", nullable=True),
    Column("model_number", "str", "UPnP model number.", nullable=True),
    Column("friendly_name", "str", "UPnP friendly name.", nullable=True),
    Column("model_description", "str", "UPnP model description.", nullable=True),
    Column("firmware", "str", "Firmware version the device named.", nullable=True),
    Column("banner", "binary", "What the device sent first (capped, 2 KiB).", nullable=True),
    Column("bytes_read", "int64", "Bytes read from the device.", nullable=True),
    Column("truncated", "bool", "The answer was longer than what was kept.", nullable=True),
    Column("advisory_status", "str", "Worst advisory verdict ('' none).", nullable=True),
    Column("advisory_ids", "list_str", "Advisories matched, worst first.", nullable=True),
    Column("advisory_statuses", "list_str", "Their verdicts, same order.", nullable=True),
    Column("note", "str", "Why a probe failed, or what an import said.", nullable=True),
    Column("probed_at", "timestamp_us", "When the probe ran (UTC)."),
    Column("source", "str", "prober, masscan, zgrab2 or nmap."),
)

LAKE_TABLES: dict[str, tuple[Column, ...]] = {**TABLES, "probes": PROBES}
"""Every table stored as Parquet files listed in the catalog."""


@dataclass(frozen=True)
class StateTable:
    """A table kept inside the catalog (SQLite) rather than in Parquet: rows that change."""

    name: str
    columns: tuple[Column, ...]
    key: str
    """The primary key; an ``int64`` key is assigned when a row is inserted."""
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Columns restricted to a few values."""


ALERT_STATES: tuple[str, ...] = ("new", "ongoing", "ended")
"""new: first seen in this run and still rising; ongoing: seen again; ended: no longer rising."""

# One row per rise on one port (teiten.analysis.alerts.Alert), updated as detection runs again.
ALERTS = StateTable(
    "alerts",
    (
        Column("id", "int64", "Alert id, assigned when the rise is first stored."),
        Column("kind", "str", "surge (many new sources) or sweep (a few sources, many packets)."),
        Column("port", "str", "Port and protocol, e.g. 23/tcp."),
        Column("segment", "str", "all, domestic or foreign: the sources that rose."),
        Column("onset", "str", "First local day of the rise (YYYY-MM-DD, in the evidence's tz)."),
        Column("detected", "str", "Local day the rise was first detectable."),
        Column("last", "str", "Last local day of the rise seen so far."),
        Column("ratio", "float64", "Level after the onset over the baseline."),
        Column("score", "float64", "How far above the baseline (IQRs)."),
        Column("baseline", "float64", "Daily level before the onset."),
        Column("peak", "float64", "Highest daily level of the rise."),
        Column("ongoing", "bool", "Still rising on the last day of the window."),
        Column("state", "str", "new, ongoing or ended (see ALERT_STATES)."),
        Column("campaign", "str", "Campaign the alert was linked to.", nullable=True),
        Column("evidence", "str", "Per-segment levels, fingerprints, tz… as JSON."),
        Column("updated", "str", "When the row was last written (UTC, ISO 8601)."),
    ),
    key="id",
    choices=(("state", ALERT_STATES),),
)

# One row per webhook delivery made, so a change is sent once.
DELIVERIES = StateTable(
    "deliveries",
    (
        Column("key", "str", "Idempotency-Key of the delivery (alert id, state, last day)."),
        Column("sent", "str", "When it was delivered (UTC, ISO 8601)."),
    ),
    key="key",
)

STATE_TABLES: dict[str, StateTable] = {t.name: t for t in (ALERTS, DELIVERIES)}
"""Every table kept inside the catalog."""
