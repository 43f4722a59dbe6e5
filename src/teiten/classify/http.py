"""Parse the client side of an HTTP/1.x connection into requests, tolerating broken input.

Everything here is attacker-controlled, so the parser is bounded and never
raises: input is cut at :data:`MAX_INPUT` bytes, a request keeps at most
:data:`MAX_HEADERS` header lines of at most :data:`MAX_LINE` bytes each, at
most :data:`MAX_REQUESTS` pipelined requests are read, and each step scans
forward only (no quadratic re-scans). What could not be read is recorded as a
note on the request or on the parse.

>>> p = parse_http(b"GET /a?b=1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
>>> p.requests[0].method, p.requests[0].path, p.requests[0].header("HOST")
('GET', '/a', 'x')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_INPUT = 64 * 1024
MAX_HEADERS = 100
MAX_LINE = 8 * 1024
MAX_REQUESTS = 16
MAX_CHUNKS = 1024

_REQUEST_LINE = re.compile(r"[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]{1,32})[ \t]+(\S+)(?:[ \t]+(\S+))?")
_METHOD_START = re.compile(rb"[A-Z][A-Z_-]{1,31} +[^\s]")
_VERSION = re.compile(r"HTTP/\d(?:\.\d)?\Z")
_KNOWN_METHODS = frozenset(b"GET POST HEAD PUT DELETE OPTIONS CONNECT TRACE PATCH".split())
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,8})")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class HttpRequest:
    """One request: the request line, the headers in order (duplicates kept) and the body."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    notes: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The target before any ``?`` (``*`` and absolute forms as sent)."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The target after the first ``?`` (empty when there is none)."""
        return self.target.partition("?")[2]

    def header_values(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name`` (any case), in the order sent."""
        key = name.lower()
        return tuple(v for k, v in self.headers if k.lower() == key)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        values = self.header_values(name)
        return values[0] if values else None


@dataclass(frozen=True)
class HttpParse:
    """The requests read from one client stream, and notes about the stream as a whole."""

    requests: tuple[HttpRequest, ...]
    notes: tuple[str, ...] = ()


def looks_like_http(data: bytes) -> bool:
    """Whether ``data`` starts (after blank lines) with something shaped like a request line."""
    start = data[:512].lstrip(b"\r\n")
    if not start[:1].isupper():  # most payloads: no method's first letter (A-Z), no split
        return False
    line = start.split(b"\n", 1)[0]
    if not _METHOD_START.match(line):
        return False
    return b" HTTP/" in line or line.split(b" ", 1)[0] in _KNOWN_METHODS


def parse_http(data: bytes) -> HttpParse:
    """Every request in ``data`` (pipelined requests in order), never raising."""
    notes: list[str] = []
    if len(data) > MAX_INPUT:
        notes.append(f"input cut at {MAX_INPUT} of {len(data)} bytes")
        data = data[:MAX_INPUT]
    requests: list[HttpRequest] = []
    pos = 0
    while pos < len(data) and len(requests) < MAX_REQUESTS:
        while data.startswith((b"\r\n", b"\n"), pos):
            pos += 2 if data.startswith(b"\r\n", pos) else 1
        if pos >= len(data):
            break
        if requests and not _METHOD_START.match(data, pos):
            notes.append(f"{len(data) - pos} bytes after request {len(requests)} are not a request")
            break
        request, pos = _parse_one(data, pos)
        requests.append(request)
    if pos < len(data) and len(requests) == MAX_REQUESTS:
        notes.append(f"stopped after {MAX_REQUESTS} pipelined requests")
    return HttpParse(tuple(requests), tuple(notes))


def _parse_one(data: bytes, pos: int) -> tuple[HttpRequest, int]:
    """The request starting at ``pos`` and where the next one starts."""
    notes: list[str] = []
    lines, pos, complete = _head_lines(data, pos, notes)
    method, target, version = _request_line(lines[0] if lines else "", notes)
    headers = _headers(lines[1:], notes)
    if not complete:
        notes.append("headers not terminated by an empty line")
        return HttpRequest(method, target, version, headers, b"", tuple(notes)), pos
    body, pos = _body(data, pos, method, headers, notes)
    return HttpRequest(method, target, version, headers, body, tuple(notes)), pos


def _head_lines(data: bytes, pos: int, notes: list[str]) -> tuple[list[str], int, bool]:
    """The request line and header lines (CRLF or bare LF), capped in count and length."""
    m = _HEAD_END.search(data, pos)
    end, after = (m.start(), m.end()) if m else (len(data), len(data))
    raw = _text(data[pos:end]).split("\n", MAX_HEADERS + 1)
    dropped = raw.pop().count("\n") + 1 if len(raw) > MAX_HEADERS + 1 else 0
    lines: list[str] = []
    cut = 0
    for line in raw:
        line = line.rstrip("\r")
        if len(line) > MAX_LINE:
            line, cut = line[:MAX_LINE], cut + 1
        if line:
            lines.append(line)
    notes.extend(_cap_notes(cut, dropped))
    return lines, after, m is not None and bool(lines)


def _cap_notes(cut: int, dropped: int) -> list[str]:
    out = []
    if cut:
        out.append(f"{cut} line(s) longer than {MAX_LINE} bytes cut")
    if dropped:
        out.append(f"{dropped} header line(s) beyond {MAX_HEADERS} dropped")
    return out


def _request_line(line: str, notes: list[str]) -> tuple[str, str, str]:
    m = _REQUEST_LINE.match(line)
    if not m:
        notes.append("no request line")
        return "", "", ""
    method, target, version = m[1], m[2], m[3] or ""
    if not _VERSION.match(version):
        notes.append(f"unexpected version {version[:40]!r}" if version else "no HTTP version")
    if m.end() < len(line.rstrip()):
        notes.append("extra text after the request line")
    return method, target, version


def _headers(lines: list[str], notes: list[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:  # obsolete line folding
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            notes.append("header line without a name and colon")
            continue
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _body(
    data: bytes, pos: int, method: str, headers: tuple[tuple[str, str], ...], notes: list[str]
) -> tuple[bytes, int]:
    """The body by Transfer-Encoding chunked, then Content-Length, else none or the rest."""
    lowered = [(k.lower(), v) for k, v in headers]
    codings = [v.lower() for k, v in lowered if k == "transfer-encoding"]
    lengths = [v for k, v in lowered if k == "content-length"]
    if codings and "chunked" in codings[-1]:
        if lengths:
            notes.append("both Transfer-Encoding and Content-Length sent")
        return _chunked(data, pos, notes)
    if lengths:
        if len(set(lengths)) > 1:
            notes.append("conflicting Content-Length headers; the first is used")
        if not lengths[0].isdigit():
            notes.append(f"bad Content-Length {lengths[0][:20]!r}; the rest is the body")
            return data[pos:], len(data)
        want = int(lengths[0])
        if want > len(data) - pos:
            notes.append(f"body is {len(data) - pos} of {want} bytes announced")
        return data[pos : pos + want], min(len(data), pos + want)
    if method in {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"} or pos >= len(data):
        return b"", pos
    notes.append("no Content-Length; the rest is the body")
    return data[pos:], len(data)


def _chunked(data: bytes, pos: int, notes: list[str]) -> tuple[bytes, int]:
    parts: list[bytes] = []
    for _ in range(MAX_CHUNKS):
        end = data.find(b"\n", pos, pos + MAX_LINE)
        m = _CHUNK_SIZE.match(data, pos, end if end >= 0 else pos)
        if end < 0 or not m:
            notes.append("bad or missing chunk size line")
            return b"".join(parts), len(data)
        size, pos = int(m[1], 16), end + 1
        if size == 0:
            while pos < len(data):  # trailers, up to an empty line
                end = data.find(b"\n", pos)
                line = data[pos:] if end < 0 else data[pos:end]
                pos = len(data) if end < 0 else end + 1
                if not line.strip():
                    break
            return b"".join(parts), pos
        parts.append(data[pos : pos + size])
        if pos + size > len(data):
            notes.append("last chunk cut short")
            return b"".join(parts), len(data)
        pos += size
        pos += 2 if data.startswith(b"\r\n", pos) else 1 if data.startswith(b"\n", pos) else 0
    notes.append(f"more than {MAX_CHUNKS} chunks")
    return b"".join(parts), len(data)
