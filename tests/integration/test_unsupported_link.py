"""An input whose packets are mostly of a link type teiten does not decode gets a warning."""

from __future__ import annotations

import struct
from pathlib import Path

from teiten.app.ingest import ingest
from teiten.cli.ingest import summary
from teiten.config import Settings


def pcap(linktype: int, count: int) -> bytes:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    record = bytes(range(60))
    return head + b"".join(
        struct.pack("<IIII", 1_700_000_000 + i, 0, len(record), len(record)) + record
        for i in range(count)
    )


def test_mostly_unsupported_link_type_is_warned(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "radiotap.pcap"
    path.write_bytes(pcap(127, 5))  # LINKTYPE_IEEE802_11_RADIOTAP: not decoded
    result = ingest([path], settings)
    (only,) = result.inputs
    assert only.malformed == {"unsupported_link": 5}
    assert any("5 of 5 packets are of a link type" in w for w in only.warnings)
    assert any("link type teiten does not decode" in line for line in summary(result))


def test_decoded_link_type_is_not_warned(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    path.write_bytes(pcap(101, 3))  # raw IP: decoded (as bad IP headers), not a link problem
    (only,) = ingest([path], settings).inputs
    assert not any("link type" in w for w in only.warnings)
