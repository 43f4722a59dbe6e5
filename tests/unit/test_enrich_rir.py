"""RIR statistics files: parsing, the status filter, ranges, overlaps, malformed lines, lookups."""

from __future__ import annotations

import ipaddress
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teiten.enrich import rir
from teiten.enrich.country import COUNTRIES
from teiten.enrich.rir import RirSource, parse_ip4_text
from teiten.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "enrich"
APNIC = DATA / "delegated-apnic-extended-latest"
ARIN = DATA / "delegated-arin-extended-latest"
RIPE = DATA / "delegated-ripencc-latest"
OVERLAP = DATA / "delegated-overlap-latest"
MALFORMED = DATA / "delegated-malformed-latest"
HEADER = "2.3|testnic|20240101|0|20240101|20240101|+0000\n"


@pytest.fixture(scope="module")
def three() -> RirSource:
    return RirSource([APNIC, ARIN, RIPE])


def test_counts_and_skips() -> None:
    (f,) = RirSource([APNIC]).files
    assert (f.registry, f.date, f.records, f.malformed) == ("apnic", "20240520", 6, 0)
    assert f.skipped == {"asn": 1, "summary": 3, "available": 1, "reserved": 1}


def test_plain_format_and_arin_header() -> None:
    s = RirSource([RIPE, ARIN])
    assert [(f.registry, f.date, f.records) for f in s.files] == [
        ("ripencc", "20240519", 4),
        ("arin", "20240521", 3),
    ]
    assert s.version == "delegated-ripencc-latest,delegated-arin-extended-latest 2024-05-21"
    assert s.name == "rir"


def test_status_filter(three: RirSource) -> None:
    # available, reserved (APNIC), reserved without a country (ARIN), assigned (ARIN)
    assert three.lookup(["1.0.32.1", "1.1.1.1", "23.128.0.1", "8.8.8.8"]) == [
        None,
        None,
        None,
        "US",
    ]


def test_ipv4_counts_not_powers_of_two(three: RirSource) -> None:
    # 1.1.64.0 + 12288 addresses = 1.1.64.0/19 + 1.1.96.0/20; 5.9.0.0 + 768 = /23 + /24
    assert three.lookup(["1.1.63.255", "1.1.64.0", "1.1.96.0", "1.1.111.255", "1.1.112.0"]) == [
        None,
        "JP",
        "JP",
        "JP",
        None,
    ]
    assert three.lookup(["5.9.2.255", "5.9.3.0", "1.0.3.255", "1.0.4.0"]) == [
        "DE",
        None,
        "CN",
        None,
    ]
    assert three.lookup(["5.10.3.1", "3.255.255.255", "4.0.0.0"]) == ["EU", "US", None]


def test_ipv6_prefixes(three: RirSource) -> None:
    cases = {
        "2001:200::1": "JP",
        "2001:200:ffff:ffff:ffff:ffff:ffff:ffff": "JP",
        "2001:201::": None,
        "2001:251:ffff::1": "CN",
        "2001:252::": None,
        "260f:ffff::1": "US",
        "2610::": None,
        "2003:1fff::": "DE",
        "2003:2000::": None,
    }
    assert three.lookup(list(cases)) == list(cases.values())


def test_text_that_is_no_address(three: RirSource) -> None:
    texts = ["bogus", "", "01.0.16.1", "1.0.16", "1.0.16.1.5", "1.0.16.256", "::ffff:1.0.16.1"]
    assert three.lookup([*texts, "1.0.16.1"]) == [None] * len(texts) + ["JP"]
    assert three.lookup(["1.0.16.1\n", "1.0.16.1"]) == [None, "JP"]  # a newline: all go slow
    assert three.lookup([]) == []


def test_codes_ip4(three: RirSource) -> None:
    ips = np.array([0x01001001, 0x08080808, 0, 0xFFFFFFFF], np.uint32)
    assert [COUNTRIES[c] for c in three.codes_ip4(ips)] == ["JP", "US", "", ""]


@pytest.mark.parametrize("order", ["apnic-first", "overlap-first"])
def test_overlaps_first_file_wins(order: str) -> None:
    first = order == "apnic-first"
    s = RirSource([APNIC, OVERLAP] if first else [OVERLAP, APNIC])
    assert (s.overlaps, s.conflicts) == (2, 1)
    assert s.lookup(["1.0.16.1", "1.0.17.1", "1.1.64.1", "9.9.9.9"]) == [
        "JP" if first else "DE",
        "JP",
        "JP",
        "DE",
    ]
    assert "2 records overlap earlier ones (1 with another country)" in s.report()[-1]


def test_overlap_within_one_file(tmp_path: Path) -> None:
    f = tmp_path / "delegated-x-latest"
    f.write_text(
        HEADER + "x|US|ipv4|10.0.0.0|65536|0|allocated\n"
        "x|JP|ipv4|10.0.255.0|512|0|allocated\n"
        "x|US|ipv4|10.0.0.0|256|0|allocated\n"
    )
    s = RirSource([f])
    assert (s.overlaps, s.conflicts) == (2, 1)
    assert s.lookup(["10.0.255.1", "10.1.0.1", "10.1.2.0"]) == ["US", "JP", None]


def test_malformed_lines_counted() -> None:
    s = RirSource([MALFORMED])
    (f,) = s.files
    assert (f.records, f.malformed, s.malformed) == (2, 9, 9)
    assert f.examples[0] == "line 3: bad range '198.51.100.0' 'many'"
    assert len(f.examples) == 5
    assert "9 malformed lines" in s.report()[0]
    assert s.lookup(["192.0.2.1", "2001:db8::1", "203.0.113.1"]) == ["JP", "US", None]
    assert s.version == "delegated-malformed-latest 2024-05-23"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"ip,country\n1.0.0.0,JP\n", 1),
        (b"# comment\n\n<html><body>Not found</body></html>\n", 3),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1),
        (b"apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated\n", 1),  # no version line
        (HEADER.encode() + b"x" * 5000 + b"\n", 2),
    ],
)
def test_not_statistics_file(tmp_path: Path, content: bytes, line: int) -> None:
    f = tmp_path / "wrong.txt"
    f.write_bytes(content)
    with pytest.raises(InputError, match=rf"^{f}: line {line}: .*not an RIR statistics file"):
        RirSource([f])


def test_missing_empty_and_huge_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="no such file"):
        RirSource([tmp_path / "absent"])
    with pytest.raises(InputError, match="not a file"):
        RirSource([tmp_path])
    (tmp_path / "empty").write_text("# only a comment\n")
    with pytest.raises(InputError, match="empty"):
        RirSource([tmp_path / "empty"])
    with pytest.raises(InputError, match="no statistics files"):
        RirSource([])
    monkeypatch.setattr(rir, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match="larger than 100 bytes"):
        RirSource([APNIC])


@given(st.lists(st.integers(0, 2**32 - 1), max_size=40))
def test_parse_ip4_text_integers(ips: list[int]) -> None:
    out, ok = parse_ip4_text([str(ipaddress.IPv4Address(i)) for i in ips])
    assert out.tolist() == ips and ok.all()


@given(st.lists(st.text(alphabet="0123456789.x:\n ", max_size=17), max_size=20))
def test_parse_ip4_text_agrees_with_ipaddress(texts: list[str]) -> None:
    out, ok = parse_ip4_text(texts)
    for text, value, good in zip(texts, out.tolist(), ok.tolist(), strict=True):
        try:
            expected: int | None = int(ipaddress.IPv4Address(text))
        except ValueError:
            expected = None
        if good:
            assert value == expected
        else:  # left for ipaddress (texts with newlines make every text go slow)
            assert expected is None or any("\n" in t for t in texts)


# --- lookups agree with a brute force over the records, first record first ----------

DENSE = 0x0A000000  # most ranges start in a small stretch, so that they overlap
V4 = st.tuples(
    st.one_of(st.integers(DENSE, DENSE + 20000), st.integers(0, 2**32 - 1)),
    st.integers(1, 3000),
    st.sampled_from(["JP", "US", "CN"]),
)
V6 = st.tuples(st.integers(0, 255), st.integers(32, 48), st.sampled_from(["JP", "DE"]))


def _near(v4: list[tuple[int, int, str]]) -> st.SearchStrategy[int]:
    edges = [e for s, n, _ in v4 for e in (s - 1, s, s + n - 1, s + n) if 0 <= e < 2**32]
    return st.sampled_from(edges) if edges else st.integers(0, 2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(V4, max_size=25), st.lists(V6, max_size=8), st.integers(0, 3), st.data())
def test_lookup_agrees_with_brute_force(
    v4: list[tuple[int, int, str]], v6: list[tuple[int, int, str]], cut: int, data: st.DataObject
) -> None:
    v4 = [(s, min(n, 2**32 - s), cc) for s, n, cc in v4]
    nets = [
        (ipaddress.IPv6Network(((0x20010DB8 << 96) | (i << 80), plen), strict=False), cc)
        for i, plen, cc in v6
    ]
    lines = [f"x|{cc}|ipv4|{ipaddress.IPv4Address(s)}|{n}|0|allocated" for s, n, cc in v4]
    lines += [f"x|{cc}|ipv6|{net.network_address}|{net.prefixlen}|0|assigned" for net, cc in nets]
    addresses = [str(ipaddress.IPv4Address(a)) for a in data.draw(st.lists(_near(v4), max_size=30))]
    addresses += [
        str(ipaddress.IPv4Address(a))
        for a in data.draw(st.lists(st.integers(0, 2**32 - 1), max_size=10))
    ]
    addresses += [
        str(net.network_address + data.draw(st.integers(0, 2**80)) % (2 * net.num_addresses))
        for net, _ in nets
    ]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "a", Path(tmp) / "b"]
        paths[0].write_text(HEADER + "".join(line + "\n" for line in lines[:cut]))
        paths[1].write_text(HEADER + "".join(line + "\n" for line in lines[cut:]))
        source = RirSource(paths)
        got = source.lookup(addresses)

    def brute(text: str) -> str | None:
        ip = ipaddress.ip_address(text)
        if ip.version == 4:
            return next((cc for s, n, cc in v4 if s <= int(ip) < s + n), None)
        return next((cc for net, cc in nets if ip in net), None)

    assert got == [brute(a) for a in addresses]
    ranges = [(s, s + n, cc) for s, n, cc in v4]
    ranges6 = [(int(n.network_address), int(n.broadcast_address) + 1, cc) for n, cc in nets]
    counts = [_overlaps(ranges), _overlaps(ranges6)]
    assert (source.overlaps, source.conflicts) == tuple(map(sum, zip(*counts, strict=True)))


def _overlaps(ranges: list[tuple[int, int, str]]) -> tuple[int, int]:
    """Records losing addresses to an earlier one, and those losing some to another country."""
    edges = sorted({e for s, z, _ in ranges for e in (s, z)})
    first: dict[int, int | None] = {}  # elementary segment start -> the first record covering it
    for lo, hi in pairwise(edges):
        first[lo] = next((i for i, (s, z, _) in enumerate(ranges) if s <= lo and hi <= z), None)
    overlaps = conflicts = 0
    for i, (s, z, cc) in enumerate(ranges):
        owners = {first[e] for e in edges if s <= e < z} - {i}
        overlaps += bool(owners)
        conflicts += any(ranges[j][2] != cc for j in owners if j is not None)
    return overlaps, conflicts
