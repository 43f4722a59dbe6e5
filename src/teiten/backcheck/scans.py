"""Import of other scanners' results (masscan, ZGrab2, Nmap) as back-check ``Probe`` rows.

Formats: masscan ``-oJ`` (a JSON list, also as written by old versions one
record a line with ``{finished: 1}``) and ``-oL`` (``open tcp 52869
198.51.100.7 1509500000``, ``banner tcp 80 … http …``), ZGrab2 JSON lines,
and Nmap XML (parsed with ``defusedxml``: entity declarations are refused).

A file that is not of the format raises :class:`~teiten.errors.InputError`
naming the file and the line or element. A scan cut short (its last line
without a newline, an Nmap file without its closing tags) and records with
missing or invalid fields are skipped and counted. Files larger than
``max_bytes`` are refused.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from xml.etree.ElementTree import Element, ParseError

from teiten.backcheck.model import BANNER_CAP, Probe, ScanImport, clip, match_advisories
from teiten.backcheck.probes import HttpResponse, banner_row, with_response
from teiten.backcheck.upnp import MAX_DESCRIPTION, upnp_info_fields, with_description
from teiten.errors import FormatError, InputError

FORMATS = ("masscan", "zgrab2", "nmap")
MAX_SCAN_BYTES = 256 << 20
_defused = importlib.import_module("defusedxml")
_iterparse = cast(
    Callable[..., Iterator[tuple[str, Element]]],
    importlib.import_module("defusedxml.ElementTree").iterparse,
)
_LIST_LINE = re.compile(r"(open|closed|banner) (tcp|udp|sctp) \d+ \S+ \d+")
_ZGRAB_STATE = {
    "success": "open",
    "connection-refused": "closed",
    "connection-timeout": "filtered",
    "unknown-error": "error",
}


class _Reader:
    """State shared by the parsers: file name, rows, counts and skip reasons."""

    def __init__(self, path: str, source: str) -> None:
        self.path, self.source = path, source
        self.rows: list[Probe] = []
        self.records = self.skipped = 0
        self.skips: list[str] = []

    def row(self, ip: str, port: Any, proto: Any, when: datetime, **kw: Any) -> Probe:
        """A row from this file's source (ValueError if the port is invalid)."""
        return Probe(
            ip, _port(port), proto=str(proto)[:8], probed_at=when, source=self.source, **kw
        )

    def skip(self, where: str, why: str) -> None:
        self.skipped += 1
        if len(self.skips) < 20:
            self.skips.append(f"{where}: {why}")

    def fail(self, where: str, why: str) -> InputError:
        return InputError(f"{self.path}: {where}: {why}")

    def done(self, fmt: str) -> ScanImport:
        return ScanImport(
            self.path, fmt, tuple(self.rows), self.records, self.skipped, tuple(self.skips)
        )


def _lines(data: bytes) -> Iterator[tuple[int, str, bool]]:
    """(number, text, cut) per line; ``cut`` marks a last line with no newline."""
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        cut = n == len(lines) and bool(raw.strip())
        yield n, raw.decode("utf-8", "replace").rstrip("\r"), cut


def _ip(value: Any) -> str:
    return str(ipaddress.ip_address(str(value).strip()))


def _port(value: Any) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return port


def _when(value: Any) -> datetime:
    """A time given as Unix seconds or in ISO 8601 (ValueError otherwise)."""
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(int(float(text)), UTC)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# masscan -oJ ------------------------------------------------------------------------------


def _masscan_record(r: _Reader, rec: Any, where: str) -> None:
    try:
        ip, when = _ip(rec["ip"]), _when(rec.get("timestamp", 0))
        items = list(rec["ports"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        r.skip(where, f"record without a valid ip, timestamp or ports ({type(e).__name__})")
        return
    r.records += 1
    for item in items:
        try:
            base = r.row(ip, item["port"], item.get("proto", "tcp"), when)
        except (KeyError, TypeError, ValueError) as e:
            r.skip(where, f"port entry without a valid port ({type(e).__name__})")
            continue
        if isinstance(item.get("service"), dict):
            svc = item["service"]
            text = str(svc.get("banner", ""))[: 64 * 1024]
            banner = _unescape(text)
            r.rows.append(banner_row(base, str(svc.get("name", ""))[:32], banner))
        else:
            note = f"reason {item.get('reason', '')}, ttl {item.get('ttl', '')}"
            state = str(item.get("status", "open"))[:16]
            r.rows.append(dataclasses.replace(base, probe="port", note=note, state=state))


def parse_masscan_json(data: bytes, path: str) -> ScanImport:
    """masscan ``-oJ`` output: a JSON list, or one record a line (old versions)."""
    r = _Reader(path, "masscan")
    try:
        whole = json.loads(data)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, list):
        for n, rec in enumerate(whole, 1):
            if not (isinstance(rec, dict) and "finished" in rec):
                _masscan_record(r, rec, f"record {n}")
        return r.done("masscan")
    for n, text, cut in _lines(data):
        s = text.strip().strip(",").strip()
        if s in ("", "[", "]") or re.fullmatch(r"\{\s*finished:\s*1\s*\}", s):
            continue
        try:
            rec = json.loads(s)
        except (ValueError, RecursionError):
            if cut:
                r.skip(f"line {n}", "truncated record")
                continue
            raise r.fail(f"line {n}", "not a masscan JSON record") from None
        _masscan_record(r, rec, f"line {n}")
    return r.done("masscan")


# masscan -oL ------------------------------------------------------------------------------


def _unescape(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def parse_masscan_list(data: bytes, path: str) -> ScanImport:
    """masscan ``-oL`` output: ``open|closed tcp PORT IP TIME`` and ``banner … SERVICE TEXT``."""
    r = _Reader(path, "masscan")
    for n, text, cut in _lines(data):
        if not text.strip() or text.startswith("#"):
            continue
        fields = text.split(" ", 6)
        if not _LIST_LINE.match(text) or (fields[0] != "banner" and len(fields) != 5):
            if cut:
                r.skip(f"line {n}", "truncated record")
                continue
            raise r.fail(f"line {n}", "not a masscan -oL line (open tcp PORT IP TIME)")
        try:
            base = r.row(_ip(fields[3]), fields[2], fields[1], _when(fields[4]))
        except (ValueError, OverflowError) as e:
            r.skip(f"line {n}", f"invalid field ({e})")
            continue
        r.records += 1
        if fields[0] == "banner":
            service = fields[5] if len(fields) > 5 else ""
            banner = _unescape(fields[6] if len(fields) > 6 else "")
            r.rows.append(banner_row(base, service[:32], banner))
        else:
            r.rows.append(dataclasses.replace(base, probe="port", state=fields[0]))
    return r.done("masscan")


# ZGrab2 -----------------------------------------------------------------------------------


def _first(value: Any) -> str:
    return str(value[0] if isinstance(value, list) and value else value or "")


def _url_port(result: dict[str, Any], default: int) -> int:
    host = str(result.get("response", {}).get("request", {}).get("url", {}).get("host", ""))
    tail = host.rsplit("]", 1)[-1]
    return int(tail.rsplit(":", 1)[1]) if ":" in tail else default


def _zgrab_module(r: _Reader, ip: str, name: str, entry: dict[str, Any]) -> Probe:
    proto = str(entry.get("protocol") or name)[:32]
    result, status = entry.get("result") or {}, str(entry.get("status", ""))
    port = entry.get("port") or _url_port(result, 23 if proto == "telnet" else 80)
    when = _when(entry["timestamp"]) if entry.get("timestamp") else datetime.now(UTC)
    state, note = _ZGRAB_STATE.get(status, "open"), f"zgrab2 status {status}"[:80]
    row = r.row(ip, port, "tcp", when, probe=proto, state=state, note=note)
    if proto == "telnet":
        banner = str(result.get("banner", "")).encode("utf-8", "surrogateescape")
        return dataclasses.replace(row, banner=banner[:BANNER_CAP], bytes_read=len(banner))
    response = result.get("response") or {}
    if proto != "http" or not response:
        return row
    headers = response.get("headers") or {}
    body = str(response.get("body", ""))[:MAX_DESCRIPTION].encode("utf-8", "surrogateescape")
    names = {k.replace("_", "-"): _first(headers.get(k)) for k in ("server", "www_authenticate")}
    code = int(response.get("status_code") or 0)
    row = with_response(row, HttpResponse(code, names, b"", body))
    return match_advisories(
        dataclasses.replace(row, bytes_read=len(body), http_status=code or None)
    )


def parse_zgrab2(data: bytes, path: str) -> ScanImport:
    """ZGrab2 output: one JSON object a line, ``ip`` and ``data.<module>.result``."""
    r = _Reader(path, "zgrab2")
    for n, text, cut in _lines(data):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError):
            if cut:
                r.skip(f"line {n}", "truncated record")
                continue
            raise r.fail(f"line {n}", "not a ZGrab2 JSON line") from None
        try:
            ip = _ip(rec["ip"])
            modules = dict(rec["data"])
            rows = [_zgrab_module(r, ip, str(k), v) for k, v in modules.items()]
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            r.skip(f"line {n}", f"record without a valid ip or data ({type(e).__name__})")
            continue
        r.records += 1
        r.rows += rows
    return r.done("zgrab2")


# Nmap XML ---------------------------------------------------------------------------------


def _scripts(port: Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in port.findall("script"):
        out.setdefault(str(s.get("id", "")), str(s.get("output", ""))[:4096])
    return out


def _nmap_port(r: _Reader, ip: str, port: Element, when: datetime) -> Probe:
    state = port.find("state")
    service = port.find("service")
    svc = service.attrib if service is not None else {}
    scripts = _scripts(port)
    text = " ".join(svc.get(k, "") for k in ("product", "version", "extrainfo") if svc.get(k))
    row = r.row(
        ip,
        port.get("portid", ""),
        port.get("protocol", "tcp"),
        when,
        probe="service",
        state=str(state.get("state", "") if state is not None else "")[:16],
        server_header=clip(scripts.get("http-server-header", "")),
        title=clip(scripts.get("http-title", "")),
        banner=text.encode()[:BANNER_CAP],
        note=f"nmap service {svc.get('name', '')}".strip(),
    )
    if "upnp-info" in scripts:
        row = with_description(row, upnp_info_fields(scripts["upnp-info"]))
    return match_advisories(row)


def _nmap_host(r: _Reader, host: Element, n: int, start: datetime) -> None:
    where = f"<host> {n}"
    ips = [a.get("addr", "") for a in host.findall("address") if a.get("addrtype") != "mac"]
    try:
        ip = _ip(ips[0] if ips else "")
        when = _when(host.get("starttime")) if host.get("starttime") else start
        rows = [_nmap_port(r, ip, p, when) for p in host.findall("ports/port")]
    except (ValueError, OverflowError) as e:
        r.skip(where, f"invalid address or port ({e})")
        return
    r.records += 1
    r.rows += rows


def parse_nmap(data: bytes, path: str) -> ScanImport:
    """Nmap XML (``-oX``): ``host/address@addr`` and ``ports/port`` with state and service."""
    r = _Reader(path, "nmap")
    hosts, start, root = 0, datetime.now(UTC), ""
    try:
        for event, el in _iterparse(io.BytesIO(data), events=("start", "end")):
            if not root:
                root = str(el.tag)
                if root != "nmaprun":
                    raise FormatError(f"{path}: root element <{root[:40]}> is not <nmaprun>")
                start = _when(el.get("start")) if el.get("start") else start
            elif event == "end" and el.tag == "host":
                hosts += 1
                _nmap_host(r, el, hosts, start)
                el.clear()
    except _defused.DefusedXmlException as e:
        raise r.fail("XML", f"refused ({type(e).__name__}: entities are not allowed)") from None
    except ParseError as e:
        line, col = e.position
        if not (hosts and line >= data.rstrip().count(b"\n") + 1):
            raise r.fail(f"line {line}, column {col}", "not well-formed XML") from None
        r.skip(f"line {line}", "scan cut short (the file ends inside the XML)")
    except (ValueError, OverflowError) as e:
        raise r.fail("<nmaprun>", f"invalid start time ({e})") from None
    return r.done("nmap")


# Files ------------------------------------------------------------------------------------


def detect_format(data: bytes, path: str) -> str:
    """``masscan``, ``masscan-list``, ``zgrab2`` or ``nmap``, from the first bytes."""
    head = data[:4096].lstrip()
    first = head.split(b"\n", 1)[0].strip()
    if head.startswith(b"<"):
        return "nmap"
    if head.startswith(b"[") or (first.startswith(b"{") and b'"ports"' in first):
        return "masscan"
    if first.startswith(b"{"):
        return "zgrab2"
    text = first.decode("utf-8", "replace")
    if first.startswith(b"#masscan") or _LIST_LINE.match(text):
        return "masscan-list"
    raise FormatError(f"{path}: not a masscan, ZGrab2 or Nmap file (first line {text[:60]!r})")


def read_scan(
    path: Path | str, fmt: str = "auto", *, max_bytes: int = MAX_SCAN_BYTES
) -> ScanImport:
    """The rows of a scan file; ``fmt`` is ``masscan`` (-oJ or -oL), ``zgrab2``, ``nmap``, ``auto``.

    >>> read_scan("/nonexistent.json")
    Traceback (most recent call last):
    ...
    teiten.errors.InputError: cannot read /nonexistent.json: No such file or directory
    """
    p = Path(path)
    if fmt not in (*FORMATS, "auto"):
        raise InputError(f"unknown scan format {fmt!r} (known: {', '.join(FORMATS)}, auto)")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise InputError(f"{p}: {size} bytes is more than the {max_bytes} read at most")
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror}") from None
    kind = detect_format(data, str(p)) if fmt in ("auto", "masscan") else fmt
    if fmt == "masscan" and kind not in ("masscan", "masscan-list"):
        kind = "masscan"
    if kind == "masscan-list":
        return parse_masscan_list(data, str(p))
    parser = {"masscan": parse_masscan_json, "zgrab2": parse_zgrab2, "nmap": parse_nmap}[kind]
    return parser(data, str(p))
