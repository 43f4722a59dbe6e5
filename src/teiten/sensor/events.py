"""The responders' event files: one JSON line per finished connection, rotated atomically.

An event is written to ``spool/events/.NAME.tmp``; :meth:`EventWriter.rotate`
closes that file (flushed and fsynced) and renames it to
``spool/events/NAME.jsonl``, so a reader only ever sees whole files. Each
event is bounded (:data:`MAX_EVENT` bytes): the client's bytes are capped by
the responder and the server's by :data:`SERVER_CAP`. The line format is read
back by :mod:`teiten.capture.events`.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

FORMAT = "sensor-event/1"
"""The value of every event's first key, ``teiten``."""
CLIENT_CAP = 64 << 10
"""Most client bytes an event keeps."""
SERVER_CAP = 4 << 10
"""Most server bytes an event keeps."""
MAX_EVENT = 128 << 10
"""Longest event line (bytes); base64 of both caps plus the fixed fields fits."""


@dataclass
class Event:
    """One finished connection as a responder saw it."""

    sensor: str
    responder: str
    src: str
    src_port: int
    dst: str
    dst_port: int
    ts_first: int
    ts_last: int
    client: bytes
    client_total: int
    server: bytes
    end: str
    """Why it ended: ``closed``, ``idle``, ``total``, ``bytes``, ``shutdown``, ``error``, or
    ``bug`` (the responder failed; logged)."""

    def line(self) -> bytes:
        """The event as one JSON line (newline included), at most :data:`MAX_EVENT` bytes."""
        obj = {
            "teiten": FORMAT, "sensor": self.sensor, "responder": self.responder,
            "src": self.src, "src_port": self.src_port, "dst": self.dst,
            "dst_port": self.dst_port, "ts_first": self.ts_first, "ts_last": self.ts_last,
            "client": base64.b64encode(self.client[:CLIENT_CAP]).decode("ascii"),
            "client_total": self.client_total,
            "truncated": self.client_total > min(len(self.client), CLIENT_CAP),
            "server": base64.b64encode(self.server[:SERVER_CAP]).decode("ascii"),
            "end": self.end,
        }  # fmt: skip
        return (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode()[
            :MAX_EVENT
        ]


class EventWriter:
    """Appends events to the current file of a folder and rotates it (see the module notes)."""

    def __init__(self, folder: Path, sensor: str) -> None:
        self.folder, self.sensor = folder, sensor
        self._file: IO[bytes] | None = None
        self._name = ""
        self._seq = 0
        self.events = 0
        self.dirty = False

    def recover(self) -> list[Path]:
        """Close files a previous run left open (a crash): rename them to ``.jsonl``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        done = []
        for tmp in sorted(self.folder.glob(".*.tmp")):
            if tmp.stat().st_size:
                target = self.folder / (tmp.name[1:-4] + ".jsonl")
                os.replace(tmp, target)
                done.append(target)
            else:
                tmp.unlink()
        return done

    def write(self, event: Event) -> None:
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            self._name = f"{self.sensor}-{stamp}-{os.getpid()}-{self._seq}"
            self._file = (self.folder / f".{self._name}.tmp").open("xb")
        self._file.write(event.line())
        self.events += 1
        self.dirty = True

    def flush(self) -> None:
        """Push buffered events to the operating system."""
        if self._file is not None and self.dirty:
            self._file.flush()
            self.dirty = False

    def rotate(self) -> Path | None:
        """Close the current file and give it its final name; None when nothing was written."""
        f, self._file = self._file, None
        if f is None:
            return None
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self.dirty = False
        target = self.folder / f"{self._name}.jsonl"
        os.replace(self.folder / f".{self._name}.tmp", target)
        return target
