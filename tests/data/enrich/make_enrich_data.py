"""Write the enrichment test data: small RIR statistics files and small MaxMind DB files.

``python tests/data/enrich/make_enrich_data.py`` rewrites every file in this
folder byte for byte. Nothing is downloaded: the ranges are typed in below, and
the ``.mmdb`` files come from the small writer here, written from the MaxMind
DB format specification (binary search tree, data section, metadata).
Autonomous systems use the documentation numbers 64496–64511 (RFC 5398) and
made-up organisation names.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_EPOCH = 1716249600  # 2024-05-21 00:00:00 UTC

APNIC = """\
# A small, made-up excerpt in the delegated-apnic-extended-latest format.
2.3|apnic|20240521|11|19830613|20240520|+1000
apnic|*|asn|*|1|summary
apnic|*|ipv4|*|7|summary
apnic|*|ipv6|*|2|summary
apnic|JP|asn|64496|1|20020801|allocated|A91A7381
apnic|CN|ipv4|1.0.1.0|256|20110414|allocated|A92E1062
apnic|CN|ipv4|1.0.2.0|512|20110414|allocated|A92E1062
apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated|A92D9378
apnic|JP|ipv4|1.1.64.0|12288|20110412|allocated|A92D9378
apnic|ZZ|ipv4|1.0.32.0|8192||available
apnic|AU|ipv4|1.1.1.0|256|20110811|reserved|A91872ED
apnic|JP|ipv6|2001:200::|32|19990813|allocated|A91A7381
apnic|CN|ipv6|2001:250::|31|20000426|allocated|A915E8F1
"""

ARIN = """\
# A small, made-up excerpt in the delegated-arin-extended-latest format.
2.3|arin|1716350545823|5|19700101|20240521|-0400
arin|*|asn|*|0|summary
arin|*|ipv4|*|3|summary
arin|*|ipv6|*|1|summary
arin|US|ipv4|3.0.0.0|16777216|19880223|allocated|9b7f2b7e-5ed6-4b6b-8a6c-1e0c4bd7ad11
arin|US|ipv4|8.8.8.0|256|20230803|assigned|5f1cbc5a-2c3a-4f33-9e1c-0f2d7a3e7a52
arin||ipv4|23.128.0.0|65536||reserved|
arin|US|ipv6|2600::|12|20061005|allocated|9b7f2b7e-5ed6-4b6b-8a6c-1e0c4bd7ad11
"""

RIPE_PLAIN = """\
# A small, made-up excerpt in the plain delegated-ripencc-latest format (7 fields).
2|ripencc|20240519|4|19930901|20240519|+0200
ripencc|*|ipv4|*|3|summary
ripencc|*|ipv6|*|1|summary
ripencc|DE|ipv4|5.1.0.0|65536|20110930|allocated
ripencc|DE|ipv4|5.9.0.0|768|20120105|assigned
ripencc|EU|ipv4|5.10.0.0|1024|20120105|allocated
ripencc|DE|ipv6|2003::|19|20010123|allocated
"""

OVERLAP = """\
# Overlaps the APNIC excerpt: one record disagrees (DE), one agrees (JP).
2.3|testnic|20240522|3|20240101|20240522|+0000
testnic|DE|ipv4|1.0.16.0|256|20240101|allocated
testnic|JP|ipv4|1.1.64.0|1024|20240101|allocated
testnic|DE|ipv4|9.9.9.0|256|20240101|allocated
"""

MALFORMED = (
    b"2.3|testnic|20240523|9|20240101|20240523|+0000\n"
    b"testnic|JP|ipv4|192.0.2.0|256|20240101|allocated\n"
    b"testnic|JP|ipv4|198.51.100.0|many|20240101|allocated\n"
    b"testnic|JP|ipv4|198.51.100.300|256|20240101|allocated\n"
    b"testnic|JP|ipv4\n"
    b"testnic|JP|ipv4|198.51.100.0|256|20240101|borrowed\n"
    b"testnic|JP|ipx|198.51.100.0|256|20240101|allocated\n"
    b"testnic|J1|ipv4|198.51.100.0|256|20240101|allocated\n"
    b"testnic|JP|ipv4|255.255.255.0|512|20240101|allocated\n"
    b"testnic|JP|ipv6|2001:db8::1|32|20240101|allocated\n"
    b"testnic|\xff\xfe|ipv4|203.0.113.0|256|20240101|allocated\n"
    b"testnic|US|ipv6|2001:db8::|32|20240101|assigned\n"
)


# --- MaxMind DB writer ---------------------------------------------------------------


def _ctrl(kind: int, size: int) -> bytes:
    """Control byte(s) of a data-section field: type (extended past 7) and payload size."""
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes([size - 29])
    elif size < 65821:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if kind <= 7:
        return bytes([(kind << 5) | head]) + extra
    return bytes([head, kind - 7]) + extra


def encode(value: Any, uint_kind: int = 6) -> bytes:
    """One value in the data-section encoding (ints are uint32 unless said otherwise)."""
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return _ctrl(uint_kind, len(raw)) + raw
    if isinstance(value, float):
        return _ctrl(3, 8) + struct.pack(">d", value)
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(encode(k) + encode(v) for k, v in value.items())
        return _ctrl(7, len(value)) + body
    raise TypeError(f"cannot encode {value!r}")


Tree = list[Any]  # [left, right]: each None (no data), a Tree, or a data-section offset


def _insert(root: Tree, bits: int, width: int, length: int, leaf: int) -> None:
    node = root
    for depth in range(length):
        side = (bits >> (width - 1 - depth)) & 1
        if depth == length - 1:
            node[side] = leaf
        else:
            if not isinstance(node[side], list):  # a wider network's data fills both halves
                node[side] = [node[side], node[side]]
            node = node[side]


def write_mmdb(
    path: Path,
    networks: list[tuple[str, dict[str, Any]]],
    *,
    database_type: str,
    ip_version: int = 6,
    record_size: int = 24,
) -> None:
    """Write an MMDB file with ``networks`` (CIDR, record); narrower networks override."""
    data, offsets, root = b"", {}, [None, None]
    width = 128 if ip_version == 6 else 32
    nets = [(ipaddress.ip_network(c), rec) for c, rec in networks]
    for net, rec in sorted(nets, key=lambda n: n[0].prefixlen):
        blob = encode(rec)
        if blob not in offsets:
            offsets[blob] = len(data)
            data += blob
        shift = 96 if net.version == 4 and ip_version == 6 else 0
        bits = int(net.network_address)
        _insert(root, bits, width, net.prefixlen + shift, offsets[blob])
    nodes: list[Tree] = [root]
    i = 0
    while i < len(nodes):  # breadth first: a node's number is its place in this list
        nodes += [child for child in nodes[i] if isinstance(child, list)]
        i += 1
    number = {id(n): i for i, n in enumerate(nodes)}
    count = len(nodes)

    def record(child: Any) -> int:
        if isinstance(child, list):
            return number[id(child)]
        return count if child is None else count + 16 + child

    tree = b"".join(_node(record(n[0]), record(n[1]), record_size) for n in nodes)
    meta = {
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "build_epoch": BUILD_EPOCH,
        "database_type": database_type,
        "description": {"en": f"teiten test data: {database_type}"},
        "ip_version": ip_version,
        "languages": ["en"],
        "node_count": count,
        "record_size": record_size,
    }
    kinds = {"build_epoch": 9, "node_count": 6}  # uint64, uint32; the other ints uint16
    body = b"".join(encode(k) + encode(v, kinds.get(k, 5)) for k, v in meta.items())
    tail = b"\xab\xcd\xefMaxMind.com" + _ctrl(7, len(meta)) + body
    path.write_bytes(tree + bytes(16) + data + tail)


def _node(left: int, right: int, record_size: int) -> bytes:
    assert max(left, right) < 1 << record_size
    if record_size == 24:
        return left.to_bytes(3, "big") + right.to_bytes(3, "big")
    if record_size == 28:
        middle = ((left >> 24) << 4) | (right >> 24)
        return (
            (left & 0xFFFFFF).to_bytes(3, "big")
            + bytes([middle])
            + (right & 0xFFFFFF).to_bytes(3, "big")
        )
    return left.to_bytes(4, "big") + right.to_bytes(4, "big")


# --- the files -----------------------------------------------------------------------


def _country(cc: str, name: str, *, registered: str | None = None) -> dict[str, Any]:
    place = {"iso_code": cc, "names": {"en": name}}
    return {"country": place, "registered_country": {"iso_code": registered or cc}}


COUNTRY_NETS = [
    ("1.0.1.0/24", _country("CN", "China")),
    ("1.0.16.0/20", _country("JP", "Japan")),
    ("1.1.64.0/19", _country("JP", "Japan")),
    ("3.0.0.0/8", _country("US", "United States")),
    ("3.5.0.0/16", _country("DE", "Germany", registered="US")),  # geolocated, not allocated
    ("5.1.0.0/16", {"registered_country": {"iso_code": "DE"}}),  # fallback to registered
    ("2001:200::/32", _country("JP", "Japan")),
    ("2003::/19", _country("DE", "Germany")),
]

ASN_NETS = [
    (
        "1.0.16.0/20",
        {"autonomous_system_number": 64496, "autonomous_system_organization": "Example Net Japan"},
    ),
    (
        "1.0.1.0/24",
        {
            "autonomous_system_number": 64497,
            "autonomous_system_organization": "Example Backbone China",
        },
    ),
    (
        "3.0.0.0/8",
        {"autonomous_system_number": 64498, "autonomous_system_organization": "Example Cloud"},
    ),
    (
        "3.5.0.0/16",
        {"autonomous_system_number": 64498, "autonomous_system_organization": "Example Cloud"},
    ),
    ("5.1.0.0/16", {"autonomous_system_number": 64499}),  # no organisation
    (
        "2001:200::/32",
        {"autonomous_system_number": 64496, "autonomous_system_organization": "Example Net Japan"},
    ),
]

VENDOR_NETS = [  # other vendors' flat keys, in an IPv4-only database
    (
        "1.0.16.0/20",
        {
            "country": "JP",
            "country_name": "Japan",
            "asn": "AS64496",
            "as_name": "Example Net Japan",
        },
    ),
    ("1.0.1.0/24", {"country_code": "CN"}),
    ("3.0.0.0/8", {"country_code": "US", "asn": 64498, "as_org": "Example Cloud"}),
]


def main() -> None:
    for name, text in (
        ("delegated-apnic-extended-latest", APNIC),
        ("delegated-arin-extended-latest", ARIN),
        ("delegated-ripencc-latest", RIPE_PLAIN),
        ("delegated-overlap-latest", OVERLAP),
    ):
        (HERE / name).write_text(text)
    (HERE / "delegated-malformed-latest").write_bytes(MALFORMED)
    write_mmdb(HERE / "country.mmdb", COUNTRY_NETS, database_type="GeoLite2-Country")
    write_mmdb(HERE / "asn.mmdb", ASN_NETS, database_type="GeoLite2-ASN", record_size=28)
    write_mmdb(
        HERE / "vendor.mmdb",
        VENDOR_NETS,
        database_type="ipinfo country_asn",
        ip_version=4,
        record_size=32,
    )


if __name__ == "__main__":
    main()
