"""The day tables, declared as data: the day sketches (``port_sketches``,
``port_segments``) and the port lists (``port_groups``, ``port_tops``), derived from the
``port_hours`` rows of each input's day file (``teiten.store.sketch``,
``teiten.store.portlists``), with the constants of their sketches and row groups.
``teiten.schema.ROLLUPS`` lists them with the other rollups.
"""

from __future__ import annotations

import math

from teiten.schema.column import Column

SKETCH_BITS = 12
"""Distinct sources in ``port_sketches`` are HyperLogLog registers: 2**SKETCH_BITS of them per
group (standard error 1.04 / 2**(SKETCH_BITS / 2) = 1.6 %; ``teiten.store.sketch``)."""

SKETCH_REGISTERS = 1 << SKETCH_BITS
"""Registers per sketch (m)."""

SKETCH_ALPHA = 1 / (2 * math.log(2))
"""The constant of Ertl's HyperLogLog estimator, 1 / (2 ln 2)."""

SKETCH_SIGMA_TERMS = 24
"""Terms of Ertl's σ series kept: x**(2**k) vanishes (below 2**-5000) for k > 24 when
one register of 4,096 is set; with none set the estimate rounds to 0, as it should."""

SKETCH_DENSE_BYTES = SKETCH_REGISTERS
"""A sketch's ``registers`` are dense (one rank byte per register, this many bytes) when
that is shorter than sparse (3 bytes per register set: its number, little-endian in two
bytes, then its rank): from 1,366 registers set on."""

_SKETCH_KEYS = (
    Column(
        "busy",
        "bool",
        "Whether the port's day is among the busiest of the file (SKETCH_BUSY_PORTS, each"
        " with SKETCH_BUSY_SOURCES sources at least): busy rows come first, in small row"
        " groups.",
        "dict",
    ),
    Column("day", "int32", "Local day in the store's day zone: days since the epoch.", "dict"),
    Column("proto", "uint8", "6 (TCP) or 17 (UDP).", "dict"),
    Column("dst_port", "uint16", "Destination port."),
)
"""The columns both day sketch tables start with (what their row groups are cut and
skipped by)."""

# One row per (local day, protocol, destination port, source country) of the
# ``port_hours`` rows of a day file: their packets and the HyperLogLog sketch of their
# sources (``teiten.store.sketch``). Summing ``packets`` over rows gives their packets
# exactly; merging the rows' registers (the highest rank per register) estimates their
# distinct sources. Days are local days of the store's day zone (``Lake.day_zone``);
# rows sorted busy first, then by protocol, port, day and country.
PORT_SKETCHES: tuple[Column, ...] = (
    *_SKETCH_KEYS,
    Column("src_cc", "uint16", "Country code of the sources (0 unknown).", "dict"),
    Column("packets", "int64", "Packets of these sources to this port that day."),
    Column(
        "registers",
        "binary",
        "The sources' HyperLogLog registers: dense (SKETCH_DENSE_BYTES rank bytes) or"
        " sparse (3 bytes per register set: register number little-endian, rank).",
    ),
)

# One row per (local day, protocol, destination port, segment) of a ``port_sketches``
# file: its rows' packets and registers merged over the countries of the segment
# (1 domestic: the store's home country, ``Lake.sketch_home``; 2 foreign; 3 unknown),
# and the sources these estimate. What rankings, detection and domestic/foreign series
# read: a few rows per port and day instead of one per country. Summed over a window's
# files and segments, ``sources`` bounds a port's distinct sources from above; the
# largest row bounds them from below. Rows sorted busy first, then by protocol, port,
# day and segment; row groups cut by bytes (ROLLUP_ROW_GROUP_BYTES).
PORT_SEGMENTS: tuple[Column, ...] = (
    *_SKETCH_KEYS,
    Column("seg", "uint8", "1 domestic, 2 foreign, 3 unknown country.", "dict"),
    Column("packets", "int64", "Packets of the segment's sources to this port that day."),
    Column("sources", "int64", "Distinct sources of the segment that day (estimated)."),
    Column("registers", "binary", "The segment's merged registers (as in port_sketches)."),
)

# One row per (local day, protocol, destination port, UTC hour, segment) of the busy
# port days of a day file (``teiten.store.hoursketch``): what ``port_segments`` holds
# per day, per hour. Hourly series of a busy port read these (a few rows an hour)
# instead of its ``port_hours`` rows (80,000 sources an hour at 10^9) when every file
# of the window's days has the port day busy. Rows sorted busy first (all of them),
# then by protocol, port, day, hour and segment.
PORT_HOUR_SEGMENTS: tuple[Column, ...] = (
    *_SKETCH_KEYS,
    Column("hour", "int32", "UTC hour: hours since the epoch.", "delta"),
    Column("seg", "uint8", "1 domestic, 2 foreign, 3 unknown country.", "dict"),
    Column("packets", "int64", "Packets of the segment's sources to this port that hour."),
    Column("registers", "binary", "The segment's merged registers (as in port_sketches)."),
)

PORT_ASNS_KEPT = 64
"""ASNs a ``port_groups`` port day keeps by name (those with most sources); the others
share one row (``key`` 4294967295)."""

PORT_TOPS_KEPT = 20
"""Sources a ``port_tops`` port day keeps (those with most packets)."""

# One row per (local day, protocol, destination port, dim, key) of the ``port_hours``
# rows of a day file (``teiten.store.portlists``): dim 1 one source ASN (``key`` the
# ASN; a port day's ASNs beyond PORT_ASNS_KEPT merged into key 4294967295), dim 2 one
# fingerprint bit (``key`` the bit), dim 3 the packets without fingerprint (key 0);
# their packets and the sketch of their sources, as in ``port_sketches``. Rows sorted
# busy first (the busy port days of the file's ``port_sketches``), then by protocol,
# port, day, dim and key.
PORT_GROUPS: tuple[Column, ...] = (
    *_SKETCH_KEYS,
    Column("dim", "uint8", "1 source ASN, 2 fingerprint bit, 3 no fingerprint.", "dict"),
    Column("key", "uint32", "The ASN (4294967295: the others), or the fingerprint bit."),
    Column("packets", "int64", "Packets of these sources to this port that day."),
    Column(
        "registers",
        "binary",
        "The sources' HyperLogLog registers (as in port_sketches); empty for a port day's"
        " only ASN row when that ASN is unknown: the port day's fingerprint rows hold them.",
    ),
)

# One row per (local day, protocol, destination port, source) for the PORT_TOPS_KEPT
# sources with most packets of each port day of a day file (``teiten.store.portlists``),
# and the port day's ``floor``: the packets a source not listed may have sent to the
# port that day (0: the list is complete, every count exact). Rows sorted busy first,
# then by protocol, port, day, and most packets first.
PORT_TOPS: tuple[Column, ...] = (
    *_SKETCH_KEYS,
    Column("ip_version", "uint8", "4 or 6.", "dict"),
    Column("src_ip4", "uint32", "IPv4 source address as an integer (0 for IPv6)."),
    Column("src_ip6", "bytes16", "IPv6 source address (null for IPv4).", nullable=True),
    Column("src_cc", "uint16", "Country code of the source (0 unknown).", "dict"),
    Column("src_asn", "uint32", "Autonomous system of the source (0 unknown).", "dict"),
    Column("packets", "int64", "Packets of the source to this port that day (at least)."),
    Column(
        "floor",
        "int64",
        "Packets to this port that day that any source's listed count may lack (0: exact).",
    ),
)

SKETCH_BUSY_PORTS = 256
"""The port days of a sketch file with the most sources (at most this many) are *busy*:
the ones rankings and series of busy ports read, in small row groups of their own."""

ROLLUP_ROW_BYTES = 16
"""What a row without ``registers`` counts as in ROLLUP_ROW_GROUP_BYTES."""

SKETCH_BUSY_SOURCES = 64
"""A port's day is busy only from this many sources (estimated)."""

ROLLUP_ROW_GROUP_BYTES: dict[str, tuple[int, int]] = {
    "port_sketches": (1 << 16, 1 << 18),
    "port_segments": (1 << 15, 1 << 17),
    "port_hour_segments": (1 << 18, 1 << 18),
    "port_groups": (1 << 16, 1 << 18),
    "port_tops": (1 << 16, 1 << 19),
}
"""Bytes of ``registers`` (``port_tops``: ROLLUP_ROW_BYTES per row) per row group of the
day files, for busy rows and for the others (cut between rows, and where ``busy``
changes). A filter on a port reads the groups whose port range holds it (their
statistics): a busy port's rows sit in a few small groups of busy ports only, not among
the thousands of rows of the quiet tail; and a file has a few hundred groups at most
(each costs a statement ~20 µs to skip)."""
