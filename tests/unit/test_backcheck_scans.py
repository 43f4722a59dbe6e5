"""Scan imports: the sample files of each tool, format detection, bad and partial input."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from teiten.backcheck import scans
from teiten.backcheck.scans import read_scan
from teiten.errors import FormatError, InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "scans"


def rows(name: str, fmt: str = "auto") -> list[tuple[str, int, str, str]]:
    return [(p.target, p.port, p.probe, p.state) for p in read_scan(DATA / name, fmt).probes]


def test_doctest() -> None:
    assert doctest.testmod(scans).failed == 0


def test_masscan_json() -> None:
    s = read_scan(DATA / "masscan.json")
    assert (s.fmt, s.records, s.skipped) == ("masscan", 7, 0)
    assert {p.source for p in s.probes} == {"masscan"}
    assert rows("masscan.json")[:3] == [
        ("198.51.100.7", 52869, "port", "open"),
        ("198.51.100.7", 52869, "http", "open"),
        ("198.51.100.8", 52881, "port", "open"),
    ]
    http = s.probes[1]
    assert http.server_header == "miniupnpd/1.0 UPnP/1.0" and http.http_status == 404
    assert http.advisory_ids == ("realtek-sdk-miniigd-cve-2014-8361",)
    assert s.probes[0].probed_at.timestamp() == 1509500000
    assert s.probes[3].title == "Wireless Router"
    assert s.probes[5].banner == b"\r\nRealtek login: "  # \xNN unescaped, IAC stripped
    assert s.probes[6].state == "closed"


def test_masscan_old_json_one_record_a_line() -> None:
    s = read_scan(DATA / "masscan-old.json", "masscan")
    assert (s.records, s.skipped) == (2, 1) and s.skips[0].startswith("line 4: record without")


def test_masscan_list_gives_the_same_rows_as_json() -> None:
    s = read_scan(DATA / "masscan.txt")
    assert s.fmt == "masscan" and s.skipped == 0
    assert rows("masscan.txt") == [r for r in rows("masscan.json") if r[2] != "title"]
    assert s.probes[1].server_header == "miniupnpd/1.0 UPnP/1.0"


def test_zgrab2() -> None:
    s = read_scan(DATA / "zgrab2.jsonl")
    assert (s.fmt, s.records, s.skipped) == ("zgrab2", 5, 0)
    realtek, huawei, timeout, telnet, refused = s.probes
    assert (realtek.port, realtek.model, realtek.firmware, realtek.advisory_status) == (
        52869,
        "LAN-W300N/R",
        "2.27",
        "affected",
    )
    assert realtek.server_header == "miniupnpd/1.0 UPnP/1.0" and realtek.source == "zgrab2"
    assert (huawei.port, huawei.model, huawei.advisory_ids) == (
        37215,
        "HG532e",
        ("huawei-hg532-cve-2017-17215",),
    )
    assert (timeout.port, timeout.state) == (80, "filtered")
    assert (telnet.port, telnet.banner) == (23, b"\r\nRealtek Wireless Router\r\nlogin: ")
    assert refused.state == "closed"


def test_nmap() -> None:
    s = read_scan(DATA / "nmap.xml")
    assert (s.fmt, s.records, s.skipped) == ("nmap", 2, 0)
    got = [(p.target, p.port, p.proto, p.state) for p in s.probes]
    assert got[:4] == [
        ("198.51.100.7", 23, "tcp", "closed"),
        ("198.51.100.7", 52869, "tcp", "open"),
        ("198.51.100.7", 52881, "tcp", "open"),
        ("198.51.100.7", 1900, "udp", "open"),
    ]
    assert s.probes[1].server_header == "miniupnpd/1.0 UPnP/1.0"
    assert s.probes[1].banner == b"MiniUPnP 1.0 Linux 2.6"
    upnp = s.probes[3]
    assert (upnp.manufacturer, upnp.model, upnp.firmware) == (
        "Realtek Semiconductor",
        "LAN-W300N/R",
        "2.27",
    )
    assert upnp.advisory_status == "affected" and upnp.probed_at.timestamp() == 1509494400


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_cut_short_files_count_a_skip(tmp_path: Path) -> None:
    for name, marker in [
        ("masscan.json", b'"ip"'),
        ("masscan.txt", b"closed"),
        ("zgrab2.jsonl", b'{"ip"'),
    ]:
        data = (DATA / name).read_bytes()
        s = read_scan(write(tmp_path, name, data[: data.rfind(marker) + 12]))
        assert s.skipped == 1 and "truncated record" in s.skips[0], name
        assert s.records == read_scan(DATA / name).records - 1
    xml = (DATA / "nmap.xml").read_bytes()
    s = read_scan(write(tmp_path, "n.xml", xml[: xml.index(b"<host", 2000) + 40]))
    assert (s.records, s.skipped) == (1, 1) and "cut short" in s.skips[0]


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        ("a.json", b'[\n{"ip": "198.51.100.7", "ports": []},\nnot json\n]\n', "line 3"),
        ("a.txt", b"#masscan\nopen tcp 1 198.51.100.7 1509500000\nhello world\n", "line 3"),
        ("a.jsonl", b'{"ip": "198.51.100.7", "data": {}}\n{oops\n{"ip": "x"}\n', "line 2"),
        ("a.xml", b"<nmaprun><host><address addr='1'/></hostx></nmaprun>", "line 1, column"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, data: bytes, where: str
) -> None:
    p = write(tmp_path, name, data)
    with pytest.raises(InputError) as e:
        read_scan(p)
    assert str(e.value).startswith(f"{p}: {where}") and "\n" not in str(e.value)


def test_unknown_and_refused_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a masscan, ZGrab2 or Nmap file"):
        read_scan(write(tmp_path, "x", b"hello\n"))
    with pytest.raises(FormatError, match="root element <html>"):
        read_scan(write(tmp_path, "y.xml", b"<html><body/></html>"))
    bomb = b'<!DOCTYPE n [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><nmaprun>&b;</nmaprun>'
    with pytest.raises(InputError, match="refused"):
        read_scan(write(tmp_path, "bomb.xml", bomb))
    with pytest.raises(InputError, match="more than the 100 read at most"):
        read_scan(DATA / "nmap.xml", max_bytes=100)
    with pytest.raises(InputError, match="unknown scan format"):
        read_scan(DATA / "nmap.xml", "shodan")


def test_bad_records_are_skipped_and_counted(tmp_path: Path) -> None:
    data = (
        b'{"ip": "198.51.100.7", "data": {"http": {"status": "success", "protocol": "http", '
        b'"result": {"response": {"status_code": 200, '
        b'"request": {"url": {"host": "198.51.100.7:99999"}}}}}}}\n'
        b'{"ip": "host.example", "data": {}}\n'
        b'{"data": {}}\n'
    )
    s = read_scan(write(tmp_path, "z.jsonl", data), "zgrab2")
    assert (s.records, s.skipped, len(s.probes)) == (0, 3, 0)
