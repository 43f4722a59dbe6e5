"""Import Cowrie honeypot JSON-lines logs as ``sessions`` and ``logins`` table rows.

Cowrie's ``jsonlog`` output writes one JSON object per line, each with an
``eventid`` (``cowrie.session.connect``, ``cowrie.login.failed``…), a
``session`` id, a ``timestamp`` (ISO 8601, UTC) and the client's ``src_ip``.
:func:`read_cowrie` streams such a file (plain, or gzip/zstd/xz by magic) one
bounded line at a time, groups the events by session and gives one
``sessions`` row per Cowrie session and one ``logins`` row per login event.
A session's commands are its ``client_bytes`` (one per line) and go through
the payload signatures (protocol ``telnet``, whose conditions test shell
commands) and the indicator extractor; download URLs add their indicators, and
every downloaded file's SHA-256 (``shasum``) is a ``sha256`` indicator — also
for ``cowrie.session.file_download`` events without a ``url`` (a file written
by a redirection, or uploaded over SFTP/SCP), which are kept. The log's
``sensor`` field names the sensor (:attr:`CowrieResult.sensor`) when every
session that gives one gives the same valid name. Nothing in the log is
resolved, fetched or run; bad lines never raise but are counted in
``stats.skipped`` by reason.

>>> looks_like_cowrie(b'{"eventid": "cowrie.session.connect", "session": "a1"}\\n')
True
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from teiten.capture.compressed import ByteStream
from teiten.capture.source import ReadStats
from teiten.classify.indicators import MAX_INDICATORS, Indicator, extract_indicators
from teiten.classify.mirai_credentials import is_mirai_pair
from teiten.classify.signatures import KINDS, Fields, SignatureSet, load_signatures
from teiten.enrich.network import NetworkSet
from teiten.flows.sessions import DETAILS_MAX, LOGINS_SCHEMA, SESSIONS_SCHEMA

MAX_LINE = 1 << 20
"""Longest line read (bytes); longer ones are skipped as ``line_too_long``."""
SNIFF_BYTES = 64 << 10
"""Content bytes :func:`sniff_cowrie` reads to recognise a log."""
CLIENT_CAP = 64 << 10
"""Most command bytes kept per session in ``client_bytes``."""
MAX_OPEN = 1 << 16
"""Most sessions held open at once; the oldest is emitted as it is when more arrive."""
MAX_COMMAND, MAX_COMMANDS, MAX_LOGINS, MAX_DOWNLOADS = 4096, 1000, 1000, 16
_READ, _BATCH = 1 << 20, 4096
_CONNECT, _CLOSED = "cowrie.session.connect", "cowrie.session.closed"
_LOGIN_OK, _LOGIN_FAIL = "cowrie.login.success", "cowrie.login.failed"
_COMMAND, _VERSION = "cowrie.command.input", "cowrie.client.version"
_DOWNLOAD, _DOWNLOAD_FAIL = "cowrie.session.file_download", "cowrie.session.file_download.failed"
_HANDLED = frozenset({_CONNECT, _CLOSED, _LOGIN_OK, _LOGIN_FAIL, _COMMAND, _VERSION, _DOWNLOAD,
                      _DOWNLOAD_FAIL})  # fmt: skip
_PORT_APPS = {22: "ssh", 2222: "ssh", 23: "telnet", 2323: "telnet"}
_TS = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:[.,](\d{1,9})\d*)?(Z|z|[+-]\d\d:?\d\d)?")
_HEAD = re.compile(rb'\A\{.*"eventid"\s*:\s*"cowrie\.', re.DOTALL)
_SENSOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A sensor name teiten can store (it names a folder), as for the ``sensor`` setting."""
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SCHEMAS = (SESSIONS_SCHEMA, LOGINS_SCHEMA)
Address = tuple[int, int | bytes]  # (4, integer) or (6, 16 bytes)


@dataclass
class CowrieResult:
    """The rows read from one Cowrie log, and what was read and skipped."""

    sessions: pa.Table
    logins: pa.Table
    stats: ReadStats
    counts: Counter[str] = field(default_factory=Counter)
    """Sessions emitted with something odd (``no_connect``, ``open_at_end``, ``evicted_open``,
    ``reused_id``, ``bad_sensor_name``) or left out (``from_sensor``, ``no_source_address``),
    by reason."""
    sensors: Counter[str] = field(default_factory=Counter)
    """Sessions emitted per valid sensor name given in the log's ``sensor`` field."""

    @property
    def sensor(self) -> str | None:
        """The log's sensor name when all its sessions that name one name the same, else None.

        A log merged from several honeypots names several: their rows are then stored
        under the sensor given at ingest, and each session's ``details`` keeps its own.
        """
        return next(iter(self.sensors)) if len(self.sensors) == 1 else None


@dataclass
class _Login:
    username: str
    password: str
    success: bool
    commands: list[str] = field(default_factory=list)


@dataclass
class _Session:
    sid: str
    ts_first: int
    ts_last: int
    connected: bool = False
    src: str = ""
    dst: str = ""
    ports: tuple[int, int] = (0, 0)  # client, server
    protocol: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # sensor, client version, duration
    commands: list[str] = field(default_factory=list)
    command_bytes: int = 0
    command_count: int = 0
    logins: list[_Login] = field(default_factory=list)
    downloads: list[dict[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def looks_like_cowrie(head: bytes) -> bool:
    """Whether ``head``'s first non-blank line is a JSON object with a ``cowrie.*`` eventid
    (a line cut off by the end of ``head`` is judged by its start)."""
    line, newline, _ = head.lstrip(b"\xef\xbb\xbf \t\r\n").partition(b"\n")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return not newline and _HEAD.match(line) is not None
    event = obj.get("eventid") if isinstance(obj, dict) else None
    return isinstance(event, str) and event.startswith("cowrie.")


def sniff_cowrie(path: Path) -> bool:
    """Whether the file at ``path`` (maybe compressed) is a Cowrie JSON log."""
    with ByteStream(path, str(path)) as stream:
        return looks_like_cowrie(stream.read(SNIFF_BYTES))


def timestamp_ns(value: Any) -> int | None:
    """ns since the epoch of an ISO 8601 time (UTC unless an offset is given), or None.

    >>> timestamp_ns("2017-11-01T00:00:01.5Z"), timestamp_ns("2017-11-01T09:00:01.5+09:00")
    (1509494401500000000, 1509494401500000000)
    """
    m = _TS.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        return None
    zone = "+00:00" if m[3] in (None, "Z", "z") else m[3]
    try:
        dt = datetime.fromisoformat(m[1].replace("t", "T") + zone)
    except ValueError:
        return None
    ns = int(dt.timestamp()) * 10**9 + int((m[2] or "0").ljust(9, "0"))
    return ns if -(2**63) <= ns < 2**63 else None


def _text(value: Any, limit: int = MAX_COMMAND) -> str | None:
    """A JSON scalar as text (lone surrogates escaped so Arrow can store it), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return str(value)[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _port(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 65536
    return int(value) if ok else 0


def _address(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return 4, int(ip.ipv4_mapped)
    return (4, int(ip)) if ip.version == 4 else (6, ip.packed)


def _parse(line: bytes, stats: ReadStats) -> tuple[str, str, int, dict[str, Any]] | None:
    """(eventid, session id, time, event) of a line that is a usable Cowrie event, else None."""
    obj, reason = None, "bad_json"
    with contextlib.suppress(ValueError, RecursionError):
        obj, reason = json.loads(line), "not_an_object"
    if isinstance(obj, dict):
        event, sid = obj.get("eventid"), _text(obj.get("session"), 128)
        ns = timestamp_ns(obj.get("timestamp"))
        if not isinstance(event, str) or not event.startswith("cowrie."):
            reason = "unknown_event"
        elif event not in _HANDLED:
            reason = "unused_event"
        elif not sid or obj.get("timestamp") is None:
            reason = "missing_field"
        elif ns is None:
            reason = "bad_timestamp"
        else:
            return event, sid, ns, obj
    stats.skipped[reason] += 1
    return None


def _apply(s: _Session, event: str, ev: dict[str, Any]) -> bool:
    """Fold one event into its session; False if a field it needs is missing."""
    if event == _CONNECT:
        s.connected, s.dst = True, _text(ev.get("dst_ip"), 64) or s.dst
        s.ports = (_port(ev.get("src_port")) or s.ports[0], _port(ev.get("dst_port")) or s.ports[1])
    elif event in (_LOGIN_OK, _LOGIN_FAIL):
        user = _text(ev.get("username"))
        if user is None:
            return False
        if len(s.logins) < MAX_LOGINS:
            s.logins.append(_Login(user, _text(ev.get("password")) or "", event == _LOGIN_OK))
    elif event == _COMMAND:
        return _command(s, _text(ev.get("input"), MAX_LINE))
    elif event == _DOWNLOAD_FAIL:
        url = _text(ev.get("url"), 1024)
        if url is None:
            return False
        if len(s.failed) < MAX_DOWNLOADS:
            s.failed.append(url)
    elif event == _DOWNLOAD:  # without a url (redirection, SFTP/SCP upload) the hash still counts
        url, shasum = _text(ev.get("url"), 1024), _text(ev.get("shasum"), 128) or ""
        if url is None and not shasum:
            return False
        if len(s.downloads) < MAX_DOWNLOADS:
            s.downloads.append({"url": url or "", "shasum": shasum,
                                "outfile": _text(ev.get("outfile"), 256) or ""})  # fmt: skip
    elif event == _VERSION:
        s.info["client_version"] = _text(ev.get("version"), 256)
    elif event == _CLOSED:
        with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):
            d = float(ev["duration"])
            s.info["duration"] = d if math.isfinite(d) else None
    return True


def _command(s: _Session, raw: str | None) -> bool:
    if raw is None:
        return False
    s.command_bytes += len(raw.encode("utf-8")) + bool(s.command_count)
    s.command_count += 1
    cmd = raw[:MAX_COMMAND]
    if len(s.commands) < MAX_COMMANDS:
        s.commands.append(cmd)
    if s.logins and len(s.logins[-1].commands) < MAX_COMMANDS:
        s.logins[-1].commands.append(cmd)
    return True


class _Reader:
    """Open sessions and finished rows of one log."""

    def __init__(self, sigs: SignatureSet, nets: NetworkSet, input_id: int) -> None:
        self.nets = [ipaddress.ip_network(c) for c in nets.cidrs]
        self.sigs, self.counts, self.input_id, self.emitted = sigs, Counter[str](), input_id, 0
        self.sensors = Counter[str]()
        self.open: dict[str, _Session] = {}
        self.rows: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        self.tables: tuple[list[pa.Table], list[pa.Table]] = ([], [])

    def feed(self, event: str, sid: str, ns: int, ev: dict[str, Any], stats: ReadStats) -> None:
        if event == _CONNECT and sid in self.open and self.open[sid].connected:
            self.emit(self.open.pop(sid), "reused_id")
        if (s := self.open.get(sid)) is None:
            if len(self.open) >= MAX_OPEN:
                self.emit(self.open.pop(next(iter(self.open))), "evicted_open")
            s = self.open[sid] = _Session(sid, ns, ns)
        s.ts_first, s.ts_last = min(s.ts_first, ns), max(s.ts_last, ns)
        s.src = s.src or _text(ev.get("src_ip"), 64) or ""
        s.protocol = s.protocol or (_text(ev.get("protocol"), 16) or "").lower()
        s.info.setdefault("sensor", _text(ev.get("sensor"), 128))
        if not _apply(s, event, ev):
            stats.skipped["missing_field"] += 1
        if event == _CLOSED:
            self.emit(self.open.pop(sid))

    def emit(self, s: _Session, reason: str = "") -> None:
        for note in (reason, "" if s.connected else "no_connect"):
            if note:
                self.counts[note] += 1
                s.notes.append(note)
        src = _address(s.src)
        if src is None or any(ipaddress.ip_address(src[1]) in n for n in self.nets):
            self.counts["no_source_address" if src is None else "from_sensor"] += 1
            return
        sensor = s.info.get("sensor")
        if sensor and _SENSOR.fullmatch(sensor):
            self.sensors[sensor] += 1
        elif sensor:
            self.counts["bad_sensor_name"] += 1
        session, logins = _rows(s, src, self.sigs)
        self.emitted += 1
        self.rows[0].append({"id": f"s{self.input_id}-{self.emitted}", **session})
        self.rows[1].extend(logins)
        if len(self.rows[0]) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        for rows, tables, schema in zip(self.rows, self.tables, _SCHEMAS, strict=True):
            tables.append(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()

    def finish(self) -> tuple[pa.Table, pa.Table]:
        for sid in list(self.open):
            self.emit(self.open.pop(sid), "open_at_end")
        self.flush()
        return pa.concat_tables(self.tables[0]), pa.concat_tables(self.tables[1])


def _classify(
    commands: list[str], downloads: Iterable[dict[str, str]], sigs: SignatureSet
) -> tuple[str, list[str], list[str], list[str], list[Indicator]]:
    """(kind, signature ids, CVEs, JVN ids, indicators) of a session's commands and downloads."""
    hits = sigs.match(Fields("telnet", commands=tuple(commands)))
    kind = next((k for k in KINDS if k in {h.kind for h in hits}), "")
    found = dict.fromkeys(extract_indicators("\n".join(commands)))
    for d in downloads:
        if d["url"]:
            found.update(dict.fromkeys(extract_indicators("wget " + d["url"].replace("\n", " "))))
        if _SHA256.fullmatch(d["shasum"]):
            found[Indicator("sha256", d["shasum"].lower())] = None
    return (kind, [h.id for h in hits], sorted({c for h in hits for c in h.cves}),
            sorted({j for h in hits for j in h.jvn}), list(found)[:MAX_INDICATORS])  # fmt: skip


def _details(s: _Session, head: dict[str, Any]) -> str:
    """The classification as JSON plus what Cowrie said (bounded by ``DETAILS_MAX``)."""
    cowrie = {**s.info, "session": s.sid, "protocol": s.protocol, "logins": len(s.logins),
              "commands": s.command_count, "downloads": s.downloads,
              "failed_downloads": s.failed}  # fmt: skip
    text = json.dumps({**head, "notes": s.notes, "cowrie": cowrie}, sort_keys=True)
    if len(text) > DETAILS_MAX:
        cowrie["downloads"] = [{"shasum": d["shasum"]} for d in s.downloads]
        cowrie["failed_downloads"] = len(s.failed)
        head = {**head, "indicators": head["indicators"][:8]}
        text = json.dumps({**head, "notes": s.notes, "cowrie": cowrie}, sort_keys=True)
    return text


def _rows(
    s: _Session, src: Address, sigs: SignatureSet
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``sessions`` row of a finished session and its ``logins`` rows."""
    dst = _address(s.dst)
    if dst is not None and dst[0] != src[0]:
        s.notes.append("address families differ")
        dst = None
    v4, port = src[0] == 4, s.ports[1]
    addr = {"ip_version": src[0], "src_ip4": src[1] if v4 else 0,
            "src_ip6": None if v4 else src[1], "dst_ip4": dst[1] if v4 and dst else 0,
            "dst_ip6": dst[1] if dst and not v4 else None}  # fmt: skip
    app = s.protocol if s.protocol in ("ssh", "telnet") else _PORT_APPS.get(port, "unknown")
    kind, ids, cves, jvn, found = _classify(s.commands, s.downloads, sigs)
    head = {"app": app, "dst_port": port, "kind": kind or None, "signatures": ids,
            "cves": cves, "jvn": jvn,
            "indicators": [{"type": i.type, "value": i.value} for i in found]}  # fmt: skip
    session = {
        "ts_first": s.ts_first, "ts_last": s.ts_last, "proto": 6, **addr,
        "src_port": s.ports[0], "dst_port": port, "packets": 0,
        "client_total": min(s.command_bytes, 2**32 - 1), "gap": False,
        "truncated": s.command_bytes > CLIENT_CAP or s.command_count > len(s.commands),
        "src_cc": "", "app": app, "kind": kind, "signatures": ids, "cves": cves, "jvn": jvn,
        "indicator_types": [i.type for i in found], "indicators": [i.value for i in found],
        "method": "", "path": "", "soap_action": "", "server_bytes": b"",
        "client_bytes": "\n".join(s.commands).encode("utf-8")[:CLIENT_CAP],
        "details": _details(s, head),
    }  # fmt: skip
    logins = [{
        "ts": s.ts_first, "ip_version": src[0], "src_ip4": addr["src_ip4"],
        "src_ip6": addr["src_ip6"], "dst_port": port, "username": x.username,
        "password": x.password, "success": int(x.success),
        "mirai_dict": is_mirai_pair(x.username, x.password), "commands": x.commands,
    } for x in s.logins]  # fmt: skip
    return session, logins


def read_cowrie(
    path: Path | str,
    *,
    sensor_networks: Iterable[str] = (),
    input_id: int = 0,
    signatures: SignatureSet | None = None,
) -> CowrieResult:
    """The ``sessions`` and ``logins`` rows of a Cowrie JSON log (see the module notes).

    Sessions whose client is inside ``sensor_networks`` (the operator's own
    connections) are left out and counted as ``from_sensor``. Session ids are
    ``s<input_id>-<n>`` in the order sessions end (as for captures). Raises
    :class:`~teiten.errors.InputError` if the file cannot be opened and
    :class:`~teiten.errors.ConfigError` for a bad network.
    """
    reader = _Reader(signatures or load_signatures(), NetworkSet(sensor_networks), input_id)
    stats = ReadStats()
    with ByteStream(Path(path), str(path)) as stream:
        for line in stream.lines(MAX_LINE, _READ):
            if line is not None and not line.strip():
                continue
            stats.records += 1
            if line is None:
                stats.skipped["line_too_long"] += 1
            elif (parsed := _parse(line, stats)) is not None:
                reader.feed(*parsed, stats)
        stats.bytes = stream.tell()
        if stream.damage is not None:
            stats.skipped[stream.damage] += 1
    sessions, logins = reader.finish()
    return CowrieResult(sessions, logins, stats, reader.counts, reader.sensors)
