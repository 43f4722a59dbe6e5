"""Read Cowrie honeypot JSON-lines logs as sessions, before any classification.

Cowrie's ``jsonlog`` output writes one JSON object per line, each with an
``eventid`` (``cowrie.session.connect``, ``cowrie.login.failed``…), a
``session`` id, a ``timestamp`` (ISO 8601, UTC) and the client's ``src_ip``.
:func:`read_cowrie` streams such a file (plain, or gzip/zstd/xz by magic) one
bounded line at a time, groups the events by session and gives one
:class:`~teiten.session.Session` per Cowrie session — the shape the
reassembler gives for a capture — whose :class:`~teiten.session.Shell` holds
what Cowrie logged: commands (also the session's ``client_bytes``, one per
line), login attempts with the commands typed after each, downloads (also
``cowrie.session.file_download`` events without a ``url``: a file written by a
redirection, or uploaded over SFTP/SCP) and failed downloads. The pipeline
classifies them like every other session (``classify_shell``: the commands go
through the Telnet signatures and the indicator extractor; each download's URL
and SHA-256 are indicators). The log's
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from teiten.capture.compressed import ByteStream
from teiten.capture.source import ReadStats
from teiten.session import Download, Session, Shell, ShellLogin

MAX_LINE = 1 << 20
"""Longest line read (bytes); longer ones are skipped as ``line_too_long``."""
SNIFF_BYTES = 64 << 10
"""Content bytes :func:`sniff_cowrie` reads to recognise a log."""
CLIENT_CAP = 64 << 10
"""Most command bytes kept per session in ``client_bytes``."""
MAX_OPEN = 1 << 16
"""Most sessions held open at once; the oldest is emitted as it is when more arrive."""
MAX_COMMAND, MAX_COMMANDS, MAX_LOGINS, MAX_DOWNLOADS = 4096, 1000, 1000, 16
_READ = 1 << 20
_CONNECT, _CLOSED = "cowrie.session.connect", "cowrie.session.closed"
_LOGIN_OK, _LOGIN_FAIL = "cowrie.login.success", "cowrie.login.failed"
_COMMAND, _VERSION = "cowrie.command.input", "cowrie.client.version"
_DOWNLOAD, _DOWNLOAD_FAIL = "cowrie.session.file_download", "cowrie.session.file_download.failed"
_HANDLED = frozenset({_CONNECT, _CLOSED, _LOGIN_OK, _LOGIN_FAIL, _COMMAND, _VERSION, _DOWNLOAD,
                      _DOWNLOAD_FAIL})  # fmt: skip
_TS = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:[.,](\d{1,9})\d*)?(Z|z|[+-]\d\d:?\d\d)?")
_HEAD = re.compile(rb'\A\{.*"eventid"\s*:\s*"cowrie\.', re.DOTALL)
_SENSOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A sensor name teiten can store (it names a folder), as for the ``sensor`` setting."""
Address = tuple[int, int | bytes]  # (4, integer) or (6, 16 bytes)


@dataclass
class CowrieResult:
    """The sessions read from one Cowrie log, and what was read and skipped."""

    sessions: list[Session]
    stats: ReadStats
    counts: Counter[str] = field(default_factory=Counter)
    """Sessions emitted with something odd (``no_connect``, ``open_at_end``, ``evicted_open``,
    ``reused_id``, ``bad_sensor_name``) or left out (``no_source_address``), by reason."""
    sensors: Counter[str] = field(default_factory=Counter)
    """Sessions emitted per valid sensor name given in the log's ``sensor`` field."""

    @property
    def sensor(self) -> str | None:
        """The log's sensor name when all its sessions that name one name the same, else None.

        A log merged from several honeypots names several: their rows are then stored
        under the sensor given at ingest, and each session's ``honeypot.sensor`` keeps its own.
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
    """Open sessions and finished sessions of one log."""

    def __init__(self) -> None:
        self.counts, self.sensors = Counter[str](), Counter[str]()
        self.open: dict[str, _Session] = {}
        self.done: list[Session] = []

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
        if src is None:
            self.counts["no_source_address"] += 1
            return
        sensor = s.info.get("sensor")
        if sensor and _SENSOR.fullmatch(sensor):
            self.sensors[sensor] += 1
        elif sensor:
            self.counts["bad_sensor_name"] += 1
        self.done.append(_session(s, src))

    def finish(self) -> list[Session]:
        for sid in list(self.open):
            self.emit(self.open.pop(sid), "open_at_end")
        return self.done


def _packed(address: Address) -> bytes:
    _, value = address
    return value.to_bytes(4, "big") if isinstance(value, int) else value


def _session(s: _Session, src: Address) -> Session:
    """The reassembled-session shape of a finished Cowrie session (not classified)."""
    dst = _address(s.dst)
    if dst is not None and dst[0] != src[0]:
        s.notes.append("address families differ")
        dst = None
    client = _packed(src)
    shell = Shell(
        "cowrie", s.sid, s.protocol, tuple(s.commands), s.command_count,
        tuple(ShellLogin(x.username, x.password, x.success, tuple(x.commands)) for x in s.logins),
        tuple(Download(d["url"], d["shasum"], d["outfile"]) for d in s.downloads),
        tuple(s.failed), str(s.info.get("sensor") or ""),
        str(s.info.get("client_version") or ""), s.info.get("duration"),
    )  # fmt: skip
    return Session(
        proto=6, ip_version=src[0], client=client,
        server=_packed(dst) if dst is not None else bytes(len(client)),
        client_port=s.ports[0], server_port=s.ports[1], ts_first=s.ts_first, ts_last=s.ts_last,
        client_bytes="\n".join(s.commands).encode("utf-8")[:CLIENT_CAP], server_bytes=b"",
        client_total=s.command_bytes, packets=0,
        truncated=s.command_bytes > CLIENT_CAP or s.command_count > len(s.commands),
        notes=tuple(s.notes), shell=shell,
    )  # fmt: skip


def read_cowrie(path: Path | str) -> CowrieResult:
    """The sessions of a Cowrie JSON log (see the module notes), in the order they end.

    Raises :class:`~teiten.errors.InputError` if the file cannot be opened.
    """
    reader = _Reader()
    stats = ReadStats()
    with ByteStream(Path(path), str(path)) as stream:
        for line in stream.records(MAX_LINE, _READ, stats):
            if (parsed := _parse(line, stats)) is not None:
                reader.feed(*parsed, stats)
        stats.bytes = stream.tell()
        if stream.damage is not None:
            stats.skipped[stream.damage] += 1
    return CowrieResult(reader.finish(), stats, reader.counts, reader.sensors)
