"""The HTTP/1.x request parser: fields, bodies, pipelining, caps, and garbage that never raises."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from teiten.classify.http import (
    MAX_HEADERS,
    MAX_INPUT,
    MAX_LINE,
    MAX_REQUESTS,
    looks_like_http,
    parse_http,
)


def test_request_line_headers_and_body() -> None:
    data = (b"POST /picdesc.xml?a=1 HTTP/1.1\r\nHost: 203.0.113.5:52869\r\nX-A: 1\r\n"
            b"x-a: 2\r\nContent-Length: 5\r\n\r\nhello")  # fmt: skip
    (r,) = parse_http(data).requests
    assert (r.method, r.target, r.path, r.query, r.version) == (
        "POST", "/picdesc.xml?a=1", "/picdesc.xml", "a=1", "HTTP/1.1")  # fmt: skip
    assert r.header("host") == "203.0.113.5:52869"
    assert r.header_values("X-A") == ("1", "2")  # case-insensitive, duplicates kept in order
    assert r.body == b"hello" and r.notes == ()


def test_bare_lf_leading_blank_lines_and_folding() -> None:
    (r,) = parse_http(b"\r\n\nGET / HTTP/1.0\nA: x\n  y\nB:z\n\n").requests
    assert r.method == "GET" and r.header("A") == "x y" and r.header("b") == "z"


def test_pipelined_requests_honour_content_length() -> None:
    data = (b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n"
            b"GET /c HTTP/1.1\r\n\r\n")  # fmt: skip
    assert [(r.target, r.body) for r in parse_http(data).requests] == [
        ("/a", b"abc"), ("/b", b""), ("/c", b"")]  # fmt: skip


def test_chunked_body_and_what_follows() -> None:
    data = (b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
            b"GET /next HTTP/1.1\r\n\r\n")  # fmt: skip
    first, second = parse_http(data).requests
    assert first.body == b"abcde" and second.target == "/next"


def test_broken_bodies_are_noted() -> None:
    (short,) = parse_http(b"POST / HTTP/1.1\r\nContent-Length: 99\r\n\r\nabc").requests
    assert short.body == b"abc" and any("announced" in n for n in short.notes)
    (bad,) = parse_http(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").requests
    assert any("chunk" in n for n in bad.notes)
    (both,) = parse_http(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
                         b"\r\n\r\n1\r\nx\r\n0\r\n\r\n").requests  # fmt: skip
    assert both.body == b"x" and any("both" in n for n in both.notes)
    (cut,) = parse_http(b"GET / HTTP/1.1\r\nHost: x").requests
    assert any("not terminated" in n for n in cut.notes)


def test_caps_on_line_length_header_count_and_input() -> None:
    huge = b"GET / HTTP/1.1\r\nX-Big: " + b"A" * (1 << 20) + b"\r\n\r\n"
    p = parse_http(huge)
    assert any("cut at" in n for n in p.notes)
    (r,) = p.requests
    assert len(r.header("X-Big") or "") <= MAX_LINE and any("longer" in n for n in r.notes)
    many = b"GET / HTTP/1.1\r\n" + b"H: v\r\n" * 5000 + b"\r\n"
    (m,) = parse_http(many).requests
    assert len(m.headers) == MAX_HEADERS and any("dropped" in n for n in m.notes)
    flood = b"GET / HTTP/1.1\r\n\r\n" * 1000
    p = parse_http(flood)
    assert len(p.requests) == MAX_REQUESTS and p.notes


def test_detection() -> None:
    assert looks_like_http(b"GET / HTTP/1.1\r\n")
    assert looks_like_http(b"\r\nM-SEARCH * HTTP/1.1\r\n")
    assert not looks_like_http(b"\xff\xfb\x01root\r\n")
    assert not looks_like_http(b"root\r\nxc3511\r\n")


@given(st.binary(max_size=4096))
def test_garbage_never_raises(data: bytes) -> None:
    p = parse_http(data)
    assert len(p.requests) <= MAX_REQUESTS
    assert sum(len(r.body) for r in p.requests) <= min(len(data), MAX_INPUT)


@given(st.lists(st.sampled_from([b"GET", b" ", b"/", b"HTTP/1.1", b"\r\n", b":", b"a",
                                 b"Content-Length: 4", b"Transfer-Encoding: chunked",
                                 b"0", b"ff", b"\n"]), max_size=60))  # fmt: skip
def test_request_shaped_garbage_never_raises(parts: list[bytes]) -> None:
    for r in parse_http(b"".join(parts)).requests:
        assert isinstance(r.method, str) and isinstance(r.body, bytes)
