"""Read the sensor's event files (``teiten sensor run``) as sessions, before classification.

Each line is one finished responder connection (:mod:`teiten.sensor.events`):
addresses, ports, times, and the bytes each side sent (base64, capped). The
reader turns each into the same :class:`~teiten.session.Session` a
reassembled capture gives; the pipeline classifies it with the same code —
parsers, payload signatures, indicators and Telnet login recovery — so a
responder's SOAP exploit and a captured one end up as identical rows. Lines
are bounded (:data:`MAX_LINE`); bad ones never raise but are counted in
``stats.skipped`` by reason.

>>> looks_like_events(b'{"teiten":"sensor-event/1","sensor":"lab-1"}\\n')
True
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teiten.capture.compressed import ByteStream
from teiten.capture.source import ReadStats
from teiten.session import Session

FORMAT = "sensor-event/1"
MAX_LINE = 256 << 10
"""Longest line read (bytes); longer ones are skipped as ``line_too_long``."""
CLIENT_CAP, SERVER_CAP = 64 << 10, 4 << 10
_HEAD = re.compile(rb'\A\{"teiten":"sensor-event/')
_SENSOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_READ = 1 << 20


@dataclass
class EventsResult:
    """The sessions read from one event file, and what was read and skipped."""

    sessions: list[Session]
    stats: ReadStats
    sensors: Counter[str] = field(default_factory=Counter)

    @property
    def sensor(self) -> str | None:
        """The file's sensor name when all its events name the same valid one, else None."""
        return next(iter(self.sensors)) if len(self.sensors) == 1 else None


def looks_like_events(head: bytes) -> bool:
    """Whether ``head`` starts like a sensor event file."""
    return _HEAD.match(head.lstrip(b" \t\r\n")) is not None


def sniff_events(path: Path) -> bool:
    """Whether the file at ``path`` (maybe compressed) is a sensor event file."""
    with ByteStream(path, str(path)) as stream:
        return looks_like_events(stream.read(64))


def _int(value: Any, lo: int, hi: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value < hi
    return int(value) if ok else None


def _bytes(value: Any, cap: int) -> bytes | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(binascii.Error, ValueError):
        return base64.b64decode(value, validate=True)[:cap]
    return None


def _session(obj: dict[str, Any]) -> tuple[Session | None, str]:
    """The session an event describes, or None and why it is skipped."""
    try:
        src = ipaddress.ip_address(str(obj.get("src", "")))
        dst = ipaddress.ip_address(str(obj.get("dst", "")))
    except ValueError:
        return None, "bad_address"
    if isinstance(src, ipaddress.IPv6Address) and src.ipv4_mapped is not None:
        src = src.ipv4_mapped
    if isinstance(dst, ipaddress.IPv6Address) and dst.ipv4_mapped is not None:
        dst = dst.ipv4_mapped
    if src.version != dst.version:
        return None, "bad_address"
    ports = _int(obj.get("src_port"), 0, 65536), _int(obj.get("dst_port"), 0, 65536)
    times = _int(obj.get("ts_first"), 0, 2**63), _int(obj.get("ts_last"), 0, 2**63)
    client, server = _bytes(obj.get("client"), CLIENT_CAP), _bytes(obj.get("server"), SERVER_CAP)
    total = _int(obj.get("client_total"), 0, 2**63)
    if ports[0] is None or ports[1] is None or times[0] is None or times[1] is None:
        return None, "missing_field"
    if client is None or server is None or total is None:
        return None, "missing_field"
    session = Session(
        proto=6, ip_version=src.version, client=src.packed, server=dst.packed,
        client_port=ports[0], server_port=ports[1], ts_first=times[0],
        ts_last=max(times[0], times[1]), client_bytes=client, server_bytes=server,
        client_total=max(total, len(client)), packets=0,
        truncated=bool(obj.get("truncated")) or total > len(client),
    )  # fmt: skip
    return session, ""


def read_events(path: Path | str) -> EventsResult:
    """The sessions of a sensor event file (see the module notes), in file order.

    Raises :class:`~teiten.errors.InputError` if the file cannot be opened.
    """
    stats, sensors = ReadStats(), Counter[str]()
    sessions: list[Session] = []
    with ByteStream(Path(path), str(path)) as stream:
        for line in stream.records(MAX_LINE, _READ, stats):
            obj: Any = None
            with contextlib.suppress(ValueError, RecursionError):
                obj = json.loads(line)
            if not isinstance(obj, dict) or obj.get("teiten") != FORMAT:
                stats.skipped["bad_json" if obj is None else "not_an_event"] += 1
                continue
            session, reason = _session(obj)
            if session is None:
                stats.skipped[reason] += 1
                continue
            name = obj.get("sensor")
            if isinstance(name, str) and _SENSOR.fullmatch(name):
                sensors[name] += 1
            sessions.append(session)
        stats.bytes = stream.tell()
        if stream.damage is not None:
            stats.skipped[stream.damage] += 1
    return EventsResult(sessions, stats, sensors)
