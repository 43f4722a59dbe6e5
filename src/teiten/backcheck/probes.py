"""The application probes of a back-check: what is sent to a port and how the answer is read.

Four probes, each only a descriptive request:

* TCP connect: open, closed (refused) or filtered (no answer in time).
* HTTP ``GET`` of a UPnP description path (``/picsdesc.xml``, ``/rootDesc.xml``)
  or ``/``, with a ``Host`` header naming the target and a plain user agent;
  the ``Server`` header, title and UPnP description are read.
* Telnet: the banner is read passively (nothing is sent, options are not
  answered); IAC sequences are stripped.
* SSDP: one unicast ``M-SEARCH`` datagram to udp/1900 of the target.

The I/O goes through a :class:`Link` that the prober provides: it enforces the
allowlist, rate limits, timeouts and the byte cap, and logs what is sent.
Nothing here opens a socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from teiten import __version__
from teiten.backcheck.model import BANNER_CAP, Probe, clip, match_advisories
from teiten.backcheck.upnp import (
    MAX_DESCRIPTION,
    looks_like_description,
    safe_path,
    ssdp_banner,
    with_description,
)

USER_AGENT = f"teiten/{__version__} back-check (reads device descriptions only)"
DESCRIPTION_PATHS = ("/picsdesc.xml", "/rootDesc.xml", "/")
_TITLE = re.compile(rb"<title[^>]{0,64}>([^<]{0,512})</title", re.I)
_REALM = re.compile(r'realm="([^"]{0,128})"', re.I)
_IAC, _SB, _SE = 0xFF, 0xFA, 0xF0


@dataclass(frozen=True)
class Reading:
    """What one read of a connection or datagram exchange got."""

    data: bytes = b""
    truncated: bool = False
    """The byte cap was reached and reading stopped."""
    timed_out: bool = False
    refused: bool = False
    """An ICMP port unreachable came back (UDP only)."""
    error: str = ""


class ConnectFailed(Exception):
    """A TCP connection was not made: ``state`` is closed, filtered or error."""

    def __init__(self, state: str, note: str) -> None:
        super().__init__(note)
        self.state = state
        self.note = note


class BoundedConn:
    """An open TCP connection whose sends are recorded first and whose reads are bounded."""

    def __init__(
        self,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        record: Callable[[bytes, str], None],
        timeout: float,
        cap: int,
    ) -> None:
        self.reader, self.writer = streams
        self.record, self.timeout, self.cap = record, timeout, cap

    async def send(self, data: bytes, what: str) -> None:
        self.record(data, what)
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def read(
        self, *, done: Callable[[bytes], bool] | None = None, idle: float | None = None
    ) -> Reading:
        """Until EOF, ``done``, the byte cap, the timeout, or ``idle`` seconds of quiet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        buf, timed_out, error = bytearray(), False, ""
        while len(buf) < self.cap and not (done and done(bytes(buf))):
            wait = max(deadline - loop.time(), 0)
            quiet = idle is not None and bool(buf) and idle < wait
            try:
                chunk = await asyncio.wait_for(
                    self.reader.read(self.cap - len(buf)), idle if quiet and idle else wait
                )
            except TimeoutError:
                timed_out = not quiet
                break
            except OSError as e:
                error = type(e).__name__
                break
            if not chunk:
                break
            buf += chunk
        data = bytes(buf)
        cut = len(data) >= self.cap and not (done and done(data))
        return Reading(data, truncated=cut, timed_out=timed_out, error=error)

    async def close(self) -> None:
        """Close, or abort if the peer does not let the close finish within a second."""
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, TimeoutError):
            self.writer.transport.abort()


class Conn(Protocol):
    """An open TCP connection, as the prober hands it to a probe."""

    async def send(self, data: bytes, what: str) -> None: ...

    async def read(
        self, *, done: Callable[[bytes], bool] | None = None, idle: float | None = None
    ) -> Reading: ...


class Link(Protocol):
    """The prober's guarded I/O: every connection and datagram goes through it."""

    def tcp(self, target: str, port: int) -> AbstractAsyncContextManager[Conn]: ...

    async def udp(self, target: str, port: int, payload: bytes, what: str) -> Reading: ...

    def http_port(self, port: int) -> bool: ...


@dataclass(frozen=True)
class HttpResponse:
    """A parsed HTTP response head and (de-chunked) body."""

    status: int
    headers: dict[str, str]
    head: bytes
    body: bytes


def host_header(target: str, port: int, default: int = 80) -> str:
    """The ``Host`` value for an IP literal: brackets for IPv6, ``:port`` unless default."""
    host = f"[{target}]" if ":" in target else target
    return host if port == default else f"{host}:{port}"


def http_request(target: str, port: int, path: str) -> bytes:
    """The GET request sent for ``path`` (which must be a :func:`safe_path`)."""
    if not safe_path(path):
        raise ValueError(f"refusing to request path {path[:80]!r}")
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host_header(target, port)}\r\n"
        f"User-Agent: {USER_AGENT}\r\nAccept: text/xml, text/html, */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")


def ssdp_request(target: str, port: int = 1900) -> bytes:
    """A unicast SSDP M-SEARCH for the root device (no MX: it is unicast)."""
    return (
        f"M-SEARCH * HTTP/1.1\r\nHOST: {host_header(target, port, 0)}\r\n"
        'MAN: "ssdp:discover"\r\nST: upnp:rootdevice\r\n'
        f"USER-AGENT: {USER_AGENT}\r\n\r\n"
    ).encode("ascii")


def _split_head(data: bytes) -> tuple[bytes, bytes, bool]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return data[:at], data[at + len(sep) :], True
    return data, b"", False


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\n")[1:101]:
        name, colon, value = line.partition(b":")
        if colon:
            key = name.strip().decode("latin-1").lower()
            out.setdefault(key, value.strip().decode("latin-1")[:512])
    return out


def dechunk(body: bytes) -> bytes:
    """A chunked body decoded as far as it is well-formed."""
    out, at = bytearray(), 0
    while at < len(body):
        end = body.find(b"\r\n", at)
        try:
            size = int(body[at:end].split(b";")[0], 16) if 0 <= end - at <= 32 else -1
        except ValueError:
            size = -1
        if size <= 0:
            break
        out += body[end + 2 : end + 2 + size]
        at = end + 2 + size + 2
    return bytes(out)


def parse_http(data: bytes) -> HttpResponse | None:
    """The response in ``data``, or None if it does not start with an HTTP status line."""
    head, body, _ = _split_head(data)
    first = head.split(b"\n", 1)[0].split(None, 2)
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        return None
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = dechunk(body)
    return HttpResponse(int(first[1][:3]), headers, head, body)


def http_complete(data: bytes) -> bool:
    """Whether a response is whole: head read and Content-Length met, or the last chunk seen."""
    head, body, whole = _split_head(data)
    if not whole:
        return False
    headers = _headers(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return body.endswith(b"0\r\n\r\n")
    length = headers.get("content-length", "")
    return length.isdigit() and len(body) >= int(length)


def _title(resp: HttpResponse) -> str:
    m = _TITLE.search(resp.body[:65536])
    if m:
        return clip(html.unescape(m.group(1).decode("utf-8", "replace")))
    realm = _REALM.search(resp.headers.get("www-authenticate", ""))
    return clip(realm.group(1)) if realm else ""


def with_response(row: Probe, resp: HttpResponse) -> Probe:
    """``row`` with the status, Server header, title and (if 200) UPnP description of ``resp``."""
    row = dataclasses.replace(
        row,
        http_status=resp.status,
        server_header=clip(resp.headers.get("server", "")),
        title=_title(resp),
    )
    if resp.status == 200 and looks_like_description(resp.body):
        row = with_description(row, resp.body[:MAX_DESCRIPTION])
    return row


def http_row(target: str, port: int, path: str, r: Reading) -> Probe:
    """The row for one HTTP exchange: status, Server header, title, UPnP description."""
    base = Probe(
        target,
        port,
        probe="http",
        path=path,
        bytes_read=len(r.data),
        truncated=r.truncated,
        banner=r.data[:BANNER_CAP],
    )
    resp = parse_http(r.data)
    if resp is None:
        why = "no answer" if not r.data else "not an HTTP response"
        why = f"{why} ({r.error})" if r.error else why
        return dataclasses.replace(base, note=why + ("; timed out" if r.timed_out else ""))
    row = with_response(dataclasses.replace(base, banner=resp.head[:BANNER_CAP]), resp)
    if r.truncated:
        row = dataclasses.replace(row, note=f"cut at {len(r.data)} bytes; {row.note}".strip("; "))
    return match_advisories(row)


def banner_row(base: Probe, service: str, banner: bytes) -> Probe:
    """A row for a banner a scanner grabbed (``service`` as the scanner names it)."""
    shown = strip_telnet(banner) if service == "telnet" else banner
    row = dataclasses.replace(
        base, probe=service or "banner", banner=shown[:BANNER_CAP], bytes_read=len(banner)
    )
    if service == "http.server":
        row = dataclasses.replace(row, server_header=clip(banner.decode("latin-1")))
    elif service in ("title", "http.title"):
        row = dataclasses.replace(row, title=clip(banner.decode("utf-8", "replace")))
    elif (resp := parse_http(banner)) is not None:
        row = dataclasses.replace(
            row, http_status=resp.status, server_header=clip(resp.headers.get("server", ""))
        )
    return match_advisories(row)


def strip_telnet(data: bytes) -> bytes:
    """``data`` without Telnet IAC commands and option negotiation (IAC IAC is a 0xFF byte)."""
    out, i, n = bytearray(), 0, len(data)
    while i < n:
        b = data[i]
        if b != _IAC:
            out.append(b)
            i += 1
        elif i + 1 < n and data[i + 1] == _IAC:
            out.append(_IAC)
            i += 2
        elif i + 1 < n and data[i + 1] == _SB:
            end = data.find(bytes([_IAC, _SE]), i + 2)
            i = n if end < 0 else end + 2
        elif i + 1 < n and 0xFB <= data[i + 1] <= 0xFE:
            i += 3
        else:
            i += 2
    return bytes(out)


async def probe_tcp(link: Link, target: str, port: int, paths: tuple[str, ...]) -> list[Probe]:
    """Connect to ``port``; then GET each path (HTTP ports) or read the banner (Telnet)."""
    try:
        async with link.tcp(target, port) as conn:
            opened = Probe(target, port, probe="connect", state="open")
            if link.http_port(port):
                first = await _http_exchange(conn, target, port, paths[0])
            else:
                first = _telnet_row(target, port, await conn.read(idle=0.5))
    except ConnectFailed as e:
        return [Probe(target, port, probe="connect", state=e.state, note=e.note)]
    rows = [opened, first]
    if first.probe == "http" and first.http_status is not None:
        rows += await http_paths(link, target, port, paths[1:])
    elif first.probe == "http":
        rows[-1] = dataclasses.replace(first, note=first.note + "; other paths skipped")
    return rows


async def http_paths(
    link: Link, target: str, port: int, paths: tuple[str, ...], note: str = ""
) -> list[Probe]:
    """GET each path on its own connection; stop at the first that fails to connect."""
    rows: list[Probe] = []
    for path in paths:
        try:
            async with link.tcp(target, port) as conn:
                row = await _http_exchange(conn, target, port, path)
        except ConnectFailed as e:
            rows.append(Probe(target, port, probe="http", path=path, state=e.state, note=e.note))
            break
        rows.append(dataclasses.replace(row, note=f"{note}; {row.note}".strip("; ")))
    return rows


async def _http_exchange(conn: Conn, target: str, port: int, path: str) -> Probe:
    try:
        await conn.send(http_request(target, port, path), f"GET {path}")
    except OSError as e:
        why = f"send failed: {type(e).__name__}"
        return Probe(target, port, probe="http", path=path, note=why)
    return http_row(target, port, path, await conn.read(done=http_complete))


def _telnet_row(target: str, port: int, r: Reading) -> Probe:
    text = strip_telnet(r.data)
    note = "no banner" if not text.strip() else ""
    if r.truncated:
        note = f"cut at {len(r.data)} bytes"
    return Probe(
        target,
        port,
        probe="telnet",
        banner=text[:BANNER_CAP],
        bytes_read=len(r.data),
        truncated=r.truncated,
        note=note,
    )


async def probe_ssdp(link: Link, target: str, port: int = 1900) -> tuple[Probe, str]:
    """One unicast M-SEARCH; the row and the reply's LOCATION (empty if none)."""
    r = await link.udp(target, port, ssdp_request(target, port), "SSDP M-SEARCH")
    base = Probe(target, port, proto="udp", probe="ssdp", bytes_read=len(r.data))
    if r.refused:
        return dataclasses.replace(base, state="closed", note="port unreachable"), ""
    if not r.data:
        note = r.error or "no reply (UDP: open or filtered)"
        return dataclasses.replace(base, state="filtered", note=note), ""
    resp = parse_http(r.data)
    if resp is None:
        return dataclasses.replace(base, banner=ssdp_banner(r.data), note="not SSDP"), ""
    row = dataclasses.replace(
        base, banner=ssdp_banner(r.data), server_header=clip(resp.headers.get("server", ""))
    )
    return match_advisories(row), resp.headers.get("location", "")[:512]
