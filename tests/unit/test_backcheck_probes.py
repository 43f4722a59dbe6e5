"""The application probes' requests and readers: exact bytes sent, tolerant parsing of answers."""

from __future__ import annotations

import pytest

from teiten.backcheck.model import Probe
from teiten.backcheck.probes import (
    USER_AGENT,
    Reading,
    banner_row,
    dechunk,
    host_header,
    http_complete,
    http_request,
    http_row,
    parse_http,
    ssdp_request,
    strip_telnet,
)

DESC = (
    b'<?xml version="1.0"?><root><device><manufacturer>Realtek Semiconductor</manufacturer>'
    b"<modelName>LAN-W300N/R</modelName><modelNumber>2.27</modelNumber></device></root>"
)


def response(body: bytes, server: bytes = b"miniupnpd/1.0 UPnP/1.0") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nServer: " + server + b"\r\nContent-Type: text/xml\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_http_request_is_a_plain_get() -> None:
    req = http_request("198.51.100.7", 52869, "/picsdesc.xml")
    assert req == (
        b"GET /picsdesc.xml HTTP/1.1\r\nHost: 198.51.100.7:52869\r\n"
        b"User-Agent: " + USER_AGENT.encode() + b"\r\nAccept: text/xml, text/html, */*\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert "teiten" in USER_AGENT
    assert b"Host: 198.51.100.7\r\n" in http_request("198.51.100.7", 80, "/")
    with pytest.raises(ValueError):
        http_request("198.51.100.7", 80, "/x\r\nX-Injected: 1")


def test_host_header_and_ssdp_request() -> None:
    assert host_header("2001:db8::7", 8080) == "[2001:db8::7]:8080"
    req = ssdp_request("198.51.100.7")
    assert req.startswith(b"M-SEARCH * HTTP/1.1\r\nHOST: 198.51.100.7:1900\r\n")
    assert b'MAN: "ssdp:discover"' in req and b"ST: upnp:rootdevice" in req
    assert b"MX:" not in req and req.endswith(b"\r\n\r\n")


def test_parse_http_and_completion() -> None:
    data = response(DESC)
    resp = parse_http(data)
    assert resp is not None and resp.status == 200 and resp.body == DESC
    assert resp.headers["server"] == "miniupnpd/1.0 UPnP/1.0"
    assert http_complete(data) and not http_complete(data[:-1])
    assert parse_http(b"\x00\x01garbage") is None and parse_http(b"HTTP/1.1 OK") is None
    assert parse_http(b"") is None


def test_chunked_bodies() -> None:
    body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    assert dechunk(body) == b"hello world"
    assert dechunk(b"zz\r\nbad") == b""
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    assert http_complete(data) and parse_http(data).body == b"hello world"  # type: ignore[union-attr]


def test_http_row_reads_server_description_and_advisories() -> None:
    row = http_row("198.51.100.7", 52869, "/picsdesc.xml", Reading(response(DESC)))
    assert (row.manufacturer, row.model, row.firmware) == (
        "Realtek Semiconductor",
        "LAN-W300N/R",
        "2.27",
    )
    assert row.server_header == "miniupnpd/1.0 UPnP/1.0" and row.http_status == 200
    assert row.advisory_status == "affected" and "logitec-2017-12-19" in row.advisory_ids
    assert row.banner.startswith(b"HTTP/1.1 200 OK") and DESC not in row.banner


def test_http_row_title_realm_and_failures() -> None:
    page = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<title>Home &amp; Router</title>"
    assert http_row("t", 80, "/", Reading(page)).title == "Home & Router"
    auth = b'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="Wireless Router"\r\n\r\n'
    assert http_row("t", 80, "/", Reading(auth)).title == "Wireless Router"
    silent = http_row("t", 80, "/", Reading(timed_out=True))
    assert silent.http_status is None and silent.note == "no answer; timed out"
    junk = http_row("t", 80, "/", Reading(b"\x1b[2J\xff"))
    assert junk.note == "not an HTTP response" and junk.banner == b"\x1b[2J\xff"
    cut = http_row("t", 80, "/", Reading(b"HTTP/1.1 200 OK\r\n\r\n" + b"A" * 100, truncated=True))
    assert cut.truncated and cut.note.startswith("cut at 119 bytes")


def test_strip_telnet() -> None:
    raw = b"\xff\xfd\x01\xff\xfb\x03\xff\xfa\x18\x01\xff\xf0Realtek\xff\xff login: \xff\xf1"
    assert strip_telnet(raw) == b"Realtek\xff login: "
    assert strip_telnet(b"\xff\xfa\x18 never ends") == b""
    assert strip_telnet(b"\xff") == b""


def test_banner_rows_from_scanners() -> None:
    base = Probe("198.51.100.7", 52869, source="masscan")
    head = banner_row(base, "http", b"HTTP/1.1 404 Not Found\r\nServer: miniupnpd/1.0\r\n\r\n")
    assert head.server_header == "miniupnpd/1.0" and head.advisory_status == "possibly_affected"
    assert banner_row(base, "http.server", b"Realtek/1.0").server_header == "Realtek/1.0"
    assert banner_row(base, "title", b"Wireless Router").title == "Wireless Router"
    assert banner_row(base, "telnet", b"\xff\xfd\x01login: ").banner == b"login: "
